# Debian packages only, found with find_package (no network at build time).
find_package(fmt REQUIRED)            # libfmt-dev
find_package(spdlog REQUIRED)         # libspdlog-dev (built on the external fmt)
find_package(CLI11 REQUIRED)          # libcli11-dev
find_package(nlohmann_json REQUIRED)  # nlohmann-json3-dev: JSON Lines in/out (see README)
find_package(Threads REQUIRED)
if(BLOOMZ_SERVER)
  # libcpp-httplib-dev ships a pkg-config file (its compiled library wants its own -D flags).
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
endif()
if(BLOOMZ_OPENMP)
  find_package(OpenMP REQUIRED COMPONENTS CXX)
endif()
if(BLOOMZ_BUILD_TESTS)
  find_package(GTest REQUIRED)        # libgtest-dev
endif()
# libsimde-dev (header-only): the emulated AVX-512 test build (issue 15). Required for the tests on
# x86-64, so that the AVX-512 tables are tested on every machine, with or without AVX-512.
if(BLOOMZ_BUILD_TESTS AND BLOOMZ_SIMDE_TESTS AND BLOOMZ_X86_SIMD AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  find_path(BLOOMZ_SIMDE_INCLUDE_DIR simde/x86/avx512.h)
  if(NOT BLOOMZ_SIMDE_INCLUDE_DIR)
    message(FATAL_ERROR "SIMDe headers not found (simde/x86/avx512.h): install libsimde-dev, or configure with -DBLOOMZ_SIMDE_TESTS=OFF")
  endif()
endif()
