#!/usr/bin/env bash
# From a fresh Debian 12 machine to an answer: installs missing packages, builds Release,
# downloads the default model (unless it is there or BLOOMZ_MODEL names one), runs the
# model card's example.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
bloomz_install_deps

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target bloomz

MODEL="${BLOOMZ_MODEL:-models/bloomz-560m.Q4_K_M.gguf}"
if [ ! -f "$MODEL" ]; then
  tools/download-model.sh Q4_K_M
fi
build/src/bloomz -m "$MODEL" -p "Translate to English: Je t'aime."
