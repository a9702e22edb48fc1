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
unset(_bk)
