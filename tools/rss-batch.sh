#!/usr/bin/env bash
# Peak RSS of a --batch-file run on a fixture model with 1 000 and with 10 000 prompts: the two
# numbers must be about equal (per-item state is freed as each item completes).
#   tools/rss-batch.sh [BLOOMZ_BINARY] [MODEL]
# Prints one line per size: prompts, peak RSS (kB), wall time (s); exit 1 if 10 000 prompts
# take more than 10% (plus 4 MB) more peak RSS than 1 000.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/src/bloomz}"
MODEL="${2:-tests/data/models/tiny-odd-q4_0.gguf}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Varied prompts: plain lines and JSON lines with per-item overrides, stop strings and logprobs.
python3 - "$tmp/prompts.jsonl" <<'PY'
import json, sys
words = ["the", "cat", "Hola", "mundo", "数据", "привет", "x", "1234", "ok", "!"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i in range(10000):
        text = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(1 + i % 9))
        if i % 3 == 0:
            f.write(text + "\n")
        else:
            f.write(json.dumps({"id": i, "prompt": text, "n_predict": 1 + i % 8, "stop": ["zz"],
                                "logprobs": i % 3, "seed": i, "temp": 0.5 * (i % 2)}) + "\n")
PY

measure() {  # $1 = number of prompts
  head -n "$1" "$tmp/prompts.jsonl" >"$tmp/in.jsonl"
  python3 - "$BIN" "$MODEL" "$tmp/in.jsonl" <<'PY'
import resource, subprocess, sys, time
binary, model, path = sys.argv[1:4]
t0 = time.time()
with open(path, "rb") as f:
    out = subprocess.run([binary, "-m", model, "--batch-file", "-", "-n", "4", "-q", "-t", "1"],
                         stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
lines = out.stdout.count(b"\n")
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{sum(1 for _ in open(path, 'rb'))} prompts: peak RSS {rss} kB, {time.time() - t0:.1f} s, "
      f"{lines} results, exit {out.returncode}")
sys.exit(0 if out.returncode == 0 else 1)
PY
}
r1=$(measure 1000)
echo "$r1"
r2=$(measure 10000)
echo "$r2"
k1=$(sed -n 's/.*peak RSS \([0-9]*\) kB.*/\1/p' <<<"$r1")
k2=$(sed -n 's/.*peak RSS \([0-9]*\) kB.*/\1/p' <<<"$r2")
if [ "$k2" -gt $(( k1 + k1 / 10 + 4096 )) ]; then
  echo "rss-batch: peak RSS grew from $k1 kB to $k2 kB" >&2
  exit 1
fi
echo "rss-batch: flat ($k1 kB -> $k2 kB)"
