#!/usr/bin/env bash
# Downloads one bloomz-560m GGUF file from Hugging Face (QuantFactory/bloomz-560m-GGUF) into
# models/, resuming a partial download, then validates it with `bloomz inspect`.
# Usage: tools/download-model.sh [QUANT]     QUANT defaults to Q4_K_M (see models/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."

QUANT="${1:-Q4_K_M}"
case "$QUANT" in
  F16|Q8_0|Q6_K|Q5_K_M|Q5_K_S|Q5_1|Q5_0|Q4_K_M|Q4_K_S|Q4_1|Q4_0|Q3_K_L|Q3_K_M|Q3_K_S|Q2_K) ;;
  *) echo "download-model.sh: unknown quant '$QUANT' (see models/README.md)" >&2; exit 2 ;;
esac
FILE="bloomz-560m.${QUANT}.gguf"
URL="https://huggingface.co/QuantFactory/bloomz-560m-GGUF/resolve/main/${FILE}"
mkdir -p models
if command -v curl >/dev/null; then
  curl -fL --retry 3 -C - -o "models/${FILE}.part" "$URL"
elif command -v wget >/dev/null; then
  wget -c -O "models/${FILE}.part" "$URL"
else
  echo "download-model.sh: needs curl or wget" >&2; exit 1
fi
mv "models/${FILE}.part" "models/${FILE}"

BLOOMZ=build/src/bloomz
if [ ! -x "$BLOOMZ" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build --target bloomz >/dev/null
fi
"$BLOOMZ" inspect "models/${FILE}" >/dev/null
echo "models/${FILE}: ok" >&2
