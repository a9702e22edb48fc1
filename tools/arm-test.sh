#!/usr/bin/env bash
# Cross-builds bloomz for AArch64 on an x86-64 Debian host and runs the unit and kernel tests under
# qemu-user (README "Building for ARM64", docs/kernels.md). Installs what is missing: the cross compiler, qemu-user,
# the arm64 fmt/spdlog -dev packages through multiarch and Debian's googletest sources (built here
# for the target). Exit status = the tests'. Emulation measures nothing about speed.
#   BUILD_DIR (build-arm64), JOBS (nproc), ARM_TEST_TIMEOUT (seconds for the whole ctest run, 1800)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR="${BUILD_DIR:-build-arm64}"
JOBS="${JOBS:-$(nproc)}"
ARM_TEST_TIMEOUT="${ARM_TEST_TIMEOUT:-1800}"
TOOLCHAIN="$ROOT/cmake/aarch64-linux-gnu.cmake"
start=$(date +%s)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ---- packages
packages=(cmake ninja-build g++-aarch64-linux-gnu qemu-user googletest libcli11-dev nlohmann-json3-dev
          libfmt-dev:arm64 libspdlog-dev:arm64)
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -ne 0 ]; then
  echo "arm-test: installing ${missing[*]}" >&2
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then $sudo dpkg --add-architecture arm64; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# ---- GoogleTest for the target, from /usr/src/googletest (built once per build tree)
GTEST_PREFIX="$ROOT/$BUILD_DIR/_gtest"
if [ ! -f "$GTEST_PREFIX/lib/cmake/GTest/GTestConfig.cmake" ]; then
  cmake -S /usr/src/googletest -B "$BUILD_DIR/_gtest-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_INSTALL_PREFIX="$GTEST_PREFIX" -DCMAKE_INSTALL_LIBDIR=lib \
    -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON >/dev/null
  cmake --build "$BUILD_DIR/_gtest-build" -j "$JOBS"
  cmake --install "$BUILD_DIR/_gtest-build" >/dev/null
fi

# ---- bloomz: the library, the CLI (model_load_test needs it) and the unit + kernel test executables
# (without `serve`: pkg-config would hand the host's cpp-httplib to the cross linker)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
  -DGTest_DIR="$GTEST_PREFIX/lib/cmake/GTest" -DBLOOMZ_BUILD_TOOLS=OFF -DBLOOMZ_SERVER=OFF >/dev/null
targets=(bloomz_core fp16_test kernels_test matmul_test gguf_test model_load_test tokenizer_test sampler_test)
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"
echo "arm-test: built in $(( $(date +%s) - start )) s" >&2

# ---- the tests under qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR), default CPU = max. Left out:
# ModelLoad.InspectJsonMatchesManifest, which runs the aarch64 CLI through the host's /bin/sh (that
# needs binfmt_misc, which a container may not have), and the two timing tests (LoadTime, SamplerPerf):
# emulation cannot time anything.
status=0
timeout --kill-after=30 "$ARM_TEST_TIMEOUT" \
  ctest --test-dir "$BUILD_DIR" -L 'unit|kernels' -E '^ModelLoad\.InspectJsonMatchesManifest$|^LoadTime\.|^SamplerPerf\.' \
        --output-on-failure -j "$JOBS" --timeout 900 || status=$?

# ---- a core without the dot product: detection must report neon-dot unrunnable (its tests skip)
SYSROOT=/usr/aarch64-linux-gnu
if [ "$status" -eq 0 ]; then
  a53_log="$BUILD_DIR/cortex-a53.log"
  if ! QEMU_CPU=cortex-a53 timeout 900 qemu-aarch64 -L "$SYSROOT" -E LD_LIBRARY_PATH="$SYSROOT/lib" \
      "$BUILD_DIR/tests/kernels_test" >"$a53_log" 2>&1; then
    echo "arm-test: kernels_test failed with QEMU_CPU=cortex-a53 (see $a53_log)" >&2
    status=1
  elif ! grep -q "this CPU cannot run ISA neon-dot" "$a53_log" || grep -q "OK \] .*neondot" "$a53_log"; then
    echo "arm-test: with QEMU_CPU=cortex-a53, neon-dot was not reported unrunnable (see $a53_log)" >&2
    status=1
  else
    echo "arm-test: cortex-a53: $(grep -c 'OK \] .*/neon (' "$a53_log") neon tests passed," \
         "$(grep -c '^\[  SKIPPED \] .*/neondot$' "$a53_log") neon-dot tests skipped" >&2
  fi
fi
echo "arm-test: done in $(( $(date +%s) - start )) s, status $status" >&2
exit "$status"
