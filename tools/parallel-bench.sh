#!/usr/bin/env bash
# Decode throughput of `--batch-file --parallel N` against N = 1 on the same prompts: N JSON Lines
# prompts of G generated tokens each (--ignore-eos), total generated tokens / decode time, where the
# decode time of a run is its wall time minus the model load (load_ms) and the prompt evaluations
# (the items' prompt_ms): the same accounting for both runs. (With N > 1 the prompts are evaluated
# one by one before the items decode together, so an item's own gen_ms also counts the prompts of
# the items after it; the longest gen_ms is printed too.) Also checks that every item's tokens are
# the same in both runs.
#
# Usage: [REPS=1] tools/parallel-bench.sh MODEL.gguf [N=8] [G=48] [THREADS=2]
# With REPS > 1 the pair of runs is repeated (interleaved, so that a slow spell of a noisy machine
# hits both) and the median speed-up is printed last.
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
run() {  # run P OUT: wall seconds of one run to OUT.wall
  local t0 t1
  t0=$(date +%s.%N)
  "$BLOOMZ" -m "$MODEL" --batch-file "$tmp/in.jsonl" --parallel "$1" -t "$T" > "$2" 2>/dev/null
  t1=$(date +%s.%N)
  echo "$t0 $t1" > "$2.wall"
}
REPS=${REPS:-1}
for r in $(seq 1 "$REPS"); do
run 1 "$tmp/p1.jsonl"
run "$N" "$tmp/pn.jsonl"
python3 - "$tmp/p1.jsonl" "$tmp/pn.jsonl" "$N" <<'PY' | tee -a "$tmp/lines"
import json, sys
def load(path):
    items = [json.loads(l) for l in open(path)]
    t0, t1 = map(float, open(path + ".wall").read().split())
    decode = (t1 - t0) - (items[0]["timings"]["load_ms"] + sum(r["timings"]["prompt_ms"] for r in items)) / 1000
    return items, decode
one, d1 = load(sys.argv[1])
par, dn = load(sys.argv[2])
n = sys.argv[3]
assert [r["tokens"] for r in one] == [r["tokens"] for r in par], "outputs differ between --parallel 1 and --parallel N"
tokens = sum(r["timings"]["gen_n"] for r in one)
g1 = sum(r["timings"]["gen_ms"] for r in one) / 1000
gn = max(r["timings"]["gen_ms"] for r in par) / 1000
print(f"{tokens} generated tokens, decode time = wall - load - prompts: --parallel 1 {tokens / d1:.1f} t/s, "
      f"--parallel {n} {tokens / dn:.1f} t/s, speed-up {d1 / dn:.2f}x; outputs identical")
print(f"  (sum of gen_ms {g1:.2f} s -> {tokens / g1:.1f} t/s; longest gen_ms {gn:.2f} s -> {tokens / gn:.1f} t/s)")
PY
done
if [ "$REPS" -gt 1 ]; then
  python3 - "$tmp/lines" <<'PY'
import re, statistics, sys
ups = [float(m.group(1)) for m in re.finditer(r"speed-up ([0-9.]+)x", open(sys.argv[1]).read())]
print(f"median speed-up over {len(ups)} pairs: {statistics.median(ups):.2f}x (min {min(ups):.2f}x, max {max(ups):.2f}x)")
PY
fi
