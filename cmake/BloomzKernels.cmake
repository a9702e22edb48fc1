# Kernel sources of a bloomz core library: the portable parts, then one translation unit per ISA
# table, each compiled with exactly its own flags (never through CMAKE_CXX_FLAGS).
#
# bloomz_add_kernels(TARGET MODE): MODE "native" builds every table this target CPU family has;
# MODE "simde" (x86-64, tests only) builds the AVX2 table natively and the two AVX-512 tables
# against SIMDe with AVX2 flags, so that their code runs, emulated, on any x86-64 machine with AVX2;
# cpu_features.cpp then reports them runnable wherever AVX2 is (BLOOMZ_EMULATED_AVX512).
set(_bk ${PROJECT_SOURCE_DIR}/src)
# The reference code is the ground truth: no FMA contraction, no fast-math, on every target.
set_source_files_properties(${_bk}/fp16.cpp ${_bk}/kernels/ref.cpp ${_bk}/kernels/dequant.cpp
  PROPERTIES COMPILE_OPTIONS "-ffp-contract=off;-fno-fast-math")

set(BLOOMZ_KERNELS_X86 OFF)
if(BLOOMZ_X86_SIMD AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(BLOOMZ_KERNELS_X86 ON)
endif()
set(BLOOMZ_KERNELS_ARM OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64|AArch64)$")
  set(BLOOMZ_KERNELS_ARM ON)
endif()

set(_x86_base "-mavx2;-mfma;-mf16c;-ffp-contract=off")
set(_x86_512 "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;${_x86_base}")
if(BLOOMZ_KERNELS_X86)
  set_source_files_properties(${_bk}/kernels/x86_avx2.cpp PROPERTIES COMPILE_OPTIONS "${_x86_base}")
  set_source_files_properties(${_bk}/kernels/x86_avx512.cpp PROPERTIES COMPILE_OPTIONS "${_x86_512}")
  set_source_files_properties(${_bk}/kernels/x86_avx512vnni.cpp PROPERTIES COMPILE_OPTIONS "${_x86_512};-mavx512vnni")
  # SIMDe builds: AVX2 flags only (SIMDe uses native AVX2 for the halves of each 512-bit operation).
  # -Wno-psabi: 64-byte SIMDe values passed between internal functions of these TUs only.
  set_source_files_properties(${_bk}/kernels/x86_avx512_simde.cpp ${_bk}/kernels/x86_avx512vnni_simde.cpp
    PROPERTIES COMPILE_OPTIONS "${_x86_base};-Wno-psabi")
endif()
# AArch64: the NEON baseline table (ARMv8.0 Advanced SIMD, always present on AArch64) and the
# NEON + dot-product table (SDOT, ARMv8.2-A), one body (arm_neon.inl) compiled twice; the second is
# only selected at run time when the CPU reports the dot product (cpu_features.cpp).
if(BLOOMZ_KERNELS_ARM)
  set_source_files_properties(${_bk}/kernels/arm_neon.cpp PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
  set_source_files_properties(${_bk}/kernels/arm_neon_dotprod.cpp
    PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod;-ffp-contract=off")
endif()

function(bloomz_add_kernels target mode)
  set(_bk ${PROJECT_SOURCE_DIR}/src)
  target_sources(${target} PRIVATE
    ${_bk}/cpu_features.cpp
    ${_bk}/fp16.cpp
    ${_bk}/parallel.cpp
    ${_bk}/kernels/dispatch.cpp
    ${_bk}/kernels/dequant.cpp
    ${_bk}/kernels/matmul.cpp
    ${_bk}/kernels/ref.cpp
    ${_bk}/kernels/repack.cpp
  )
  if(BLOOMZ_KERNELS_X86)
    target_sources(${target} PRIVATE ${_bk}/kernels/x86_avx2.cpp)
    if(mode STREQUAL "simde")
      target_sources(${target} PRIVATE ${_bk}/kernels/x86_avx512_simde.cpp ${_bk}/kernels/x86_avx512vnni_simde.cpp)
      target_compile_definitions(${target} PRIVATE BLOOMZ_EMULATED_AVX512=1)
    else()
      target_sources(${target} PRIVATE ${_bk}/kernels/x86_avx512.cpp ${_bk}/kernels/x86_avx512vnni.cpp)
    endif()
    # Seen by dispatch.cpp / cpu_features.cpp only through the table declarations in kernels.hpp.
    target_compile_definitions(${target} PRIVATE BLOOMZ_HAVE_AVX2=1 BLOOMZ_HAVE_AVX512=1 BLOOMZ_HAVE_AVX512VNNI=1)
  endif()
  if(BLOOMZ_KERNELS_ARM)
    target_sources(${target} PRIVATE ${_bk}/kernels/arm_neon.cpp ${_bk}/kernels/arm_neon_dotprod.cpp)
    target_compile_definitions(${target} PRIVATE BLOOMZ_HAVE_NEON=1 BLOOMZ_HAVE_NEON_DOT=1)
  endif()
endfunction()
unset(_bk)
