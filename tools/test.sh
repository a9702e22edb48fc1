#!/usr/bin/env bash
# Installs missing Debian packages, builds (Release) and runs the whole test suite with ctest.
# Exit status = the tests'. BUILD_DIR and BLOOMZ_CMAKE_ARGS may be set to change the build.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
bloomz_install_deps

BUILD_DIR="${BUILD_DIR:-build}"
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${BLOOMZ_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" ${BLOOMZ_CTEST_ARGS:-}
