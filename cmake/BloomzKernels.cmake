# Kernel sources of bloomz_core: the portable parts, then one translation unit per ISA table,
# each compiled with exactly its own flags (never through CMAKE_CXX_FLAGS).
set(_bk ${PROJECT_SOURCE_DIR}/src)
target_sources(bloomz_core PRIVATE
  ${_bk}/cpu_features.cpp
  ${_bk}/fp16.cpp
  ${_bk}/parallel.cpp
  ${_bk}/kernels/dispatch.cpp
  ${_bk}/kernels/dequant.cpp
  ${_bk}/kernels/matmul.cpp
  ${_bk}/kernels/ref.cpp
  ${_bk}/kernels/repack.cpp
)
# The reference code is the ground truth: no FMA contraction, no fast-math, on every target.
set_source_files_properties(${_bk}/fp16.cpp ${_bk}/kernels/ref.cpp ${_bk}/kernels/dequant.cpp
  PROPERTIES COMPILE_OPTIONS "-ffp-contract=off;-fno-fast-math")

set(BLOOMZ_KERNELS_X86 OFF)
if(BLOOMZ_X86_SIMD AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(BLOOMZ_KERNELS_X86 ON)
endif()

if(BLOOMZ_KERNELS_X86)
  target_sources(bloomz_core PRIVATE ${_bk}/kernels/x86_avx2.cpp)
  set_source_files_properties(${_bk}/kernels/x86_avx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-ffp-contract=off")
  # Seen by dispatch.cpp / cpu_features.cpp only through the table declarations in kernels.hpp.
  target_compile_definitions(bloomz_core PRIVATE BLOOMZ_HAVE_AVX2=1)
endif()
# AArch64: the NEON baseline table (ARMv8.0 Advanced SIMD, always present on AArch64) and the
# NEON + dot-product table (SDOT, ARMv8.2-A), one body (arm_neon.inl) compiled twice; the second is
# only selected at run time when the CPU reports the dot product (cpu_features.cpp).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64|AArch64)$")
  target_sources(bloomz_core PRIVATE ${_bk}/kernels/arm_neon.cpp ${_bk}/kernels/arm_neon_dotprod.cpp)
  set_source_files_properties(${_bk}/kernels/arm_neon.cpp
    PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
  set_source_files_properties(${_bk}/kernels/arm_neon_dotprod.cpp
    PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod;-ffp-contract=off")
  target_compile_definitions(bloomz_core PRIVATE BLOOMZ_HAVE_NEON=1 BLOOMZ_HAVE_NEON_DOT=1)
endif()
unset(_bk)
