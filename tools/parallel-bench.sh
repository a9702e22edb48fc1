#!/usr/bin/env bash
# Decode throughput of `--batch-file --parallel N` against N = 1 on the same prompts: N JSON Lines
# prompts of G generated tokens each (--ignore-eos), total generated tokens / decode time. With
# N = 1 the decode time is the sum of the items' gen_ms; with N > 1 the items decode together, so it
# is the longest gen_ms (prompts are evaluated first, one by one, in both runs). Also checks that
# every item's tokens are the same in both runs.
#
# Usage: tools/parallel-bench.sh MODEL.gguf [N=8] [G=48] [THREADS=2]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOOMZ=${BLOOMZ:-$ROOT/build/src/bloomz}
MODEL=${1:?usage: tools/parallel-bench.sh MODEL.gguf [N] [G] [THREADS]}
N=${2:-8}
G=${3:-48}
T=${4:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq 1 "$N"); do
  printf '{"id": %d, "prompt": "Translate to English, sentence %d: Je t'"'"'aime beaucoup.", "n_predict": %d, "ignore_eos": true}\n' "$i" "$i" "$G"
done > "$tmp/in.jsonl"
"$BLOOMZ" -m "$MODEL" --batch-file "$tmp/in.jsonl" --parallel 1 -t "$T" > "$tmp/p1.jsonl" 2>/dev/null
"$BLOOMZ" -m "$MODEL" --batch-file "$tmp/in.jsonl" --parallel "$N" -t "$T" > "$tmp/pn.jsonl" 2>/dev/null
python3 - "$tmp/p1.jsonl" "$tmp/pn.jsonl" "$N" <<'PY'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
par = [json.loads(l) for l in open(sys.argv[2])]
n = sys.argv[3]
assert [r["tokens"] for r in one] == [r["tokens"] for r in par], "outputs differ between --parallel 1 and --parallel N"
tokens = sum(r["timings"]["gen_n"] for r in one)
t1 = sum(r["timings"]["gen_ms"] for r in one) / 1000
tn = max(r["timings"]["gen_ms"] for r in par) / 1000
print(f"{tokens} generated tokens: --parallel 1 {tokens / t1:.1f} t/s, --parallel {n} {tokens / tn:.1f} t/s, "
      f"speed-up {t1 / tn:.2f}x; outputs identical")
PY
