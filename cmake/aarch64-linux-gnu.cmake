# Cross toolchain for AArch64 Linux with Debian's g++-aarch64-linux-gnu (see README "Building for
# ARM64"). Libraries come from two places: the cross sysroot /usr/aarch64-linux-gnu (libc, libstdc++,
# libgomp) and Debian multiarch (/usr/lib/aarch64-linux-gnu: the arm64 fmt / spdlog -dev packages).
# Test executables run under qemu-user, so `ctest` in the cross build tree just works:
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BLOOMZ_AARCH64_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BLOOMZ_AARCH64_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${BLOOMZ_AARCH64_TRIPLE}-g++)
# Selects lib/aarch64-linux-gnu (and its cmake/ package configs) wherever CMake searches.
set(CMAKE_LIBRARY_ARCHITECTURE ${BLOOMZ_AARCH64_TRIPLE})

set(BLOOMZ_AARCH64_SYSROOT /usr/${BLOOMZ_AARCH64_TRIPLE} CACHE PATH "sysroot of the cross toolchain")
set(CMAKE_FIND_ROOT_PATH ${BLOOMZ_AARCH64_SYSROOT})
# Build tools are the host's; headers, libraries and packages are looked up in the sysroot and then
# in the host's multiarch tree (CMAKE_LIBRARY_ARCHITECTURE keeps the x86-64 libraries out of it).
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Run target executables (tests, gtest discovery, try_run) under user-mode emulation. qemu's -L
# prefix makes the sysroot's ELF interpreter (ld.so) the guest's; LD_LIBRARY_PATH makes it load the
# sysroot's libc and libstdc++ too. Without it, ld.so would take libc from the host's ld.so.cache,
# i.e. the multiarch libc6:arm64, whose Debian revision may differ from the cross sysroot's: a
# mismatched ld.so/libc pair hangs in the first pthread_create. fmt and spdlog still come from the
# multiarch directories. qemu's default CPU ("max") has the ASIMD dot product and FP16; set QEMU_CPU
# (e.g. cortex-a53) in the environment to emulate a smaller core.
find_program(BLOOMZ_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(BLOOMZ_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BLOOMZ_QEMU_AARCH64} -L ${BLOOMZ_AARCH64_SYSROOT}
      -E LD_LIBRARY_PATH=${BLOOMZ_AARCH64_SYSROOT}/lib)
endif()
