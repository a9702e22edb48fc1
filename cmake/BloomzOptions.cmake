# Every option of the build, in one place.
option(BLOOMZ_BUILD_TESTS "Build the GoogleTest suites" ${PROJECT_IS_TOP_LEVEL})
option(BLOOMZ_BUILD_TOOLS "Build tools/ (kernel-bench)" ON)
option(BLOOMZ_OPENMP "Use OpenMP threads" ON)
option(BLOOMZ_X86_SIMD "Build the x86-64 SIMD kernel tables (AVX2, AVX-512, VNNI)" ON)
option(BLOOMZ_SERVER "Build `bloomz serve` (needs libcpp-httplib-dev and pkg-config)" ON)
option(BLOOMZ_SIMDE_TESTS "x86-64: also test the AVX-512 tables emulated through SIMDe (needs libsimde-dev)" ON)
option(BLOOMZ_WERROR "Treat warnings as errors" OFF)
set(BLOOMZ_SANITIZE "" CACHE STRING "Sanitizers for every target: '', 'address;undefined', 'thread'")
