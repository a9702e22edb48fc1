#!/usr/bin/env bash
# Installs the Debian packages bloomz needs to build and test, if any is missing.
# Sourced by tools/test.sh and tools/quickstart.sh; safe to run again.
set -euo pipefail

# parallel: GNU parallel, the runner of the sharded batch test (batch_scale_test).
# libsimde-dev: the emulated AVX-512 kernel tables of the tests (bloomz_core_simde).
# libcpp-httplib-dev + pkg-config: `bloomz serve` (its .pc file carries the library's -D flags).
# python3: tools/oneshot-vs-llama and its test (Tools.OneshotVsLlama).
BLOOMZ_PACKAGES=(build-essential cmake ninja-build git libcli11-dev libfmt-dev libspdlog-dev
                 libgtest-dev nlohmann-json3-dev libsimde-dev parallel libcpp-httplib-dev pkg-config
                 python3)

bloomz_install_deps() {
  local missing=()
  for p in "${BLOOMZ_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  echo "bloomz: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
