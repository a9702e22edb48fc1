#!/usr/bin/env bash
# bloomz vs llama.cpp on the bloomz-560m-shaped files, measured in one run: for each file, llama.cpp
# (the oracle's bench_big.sh: pp512 and tg128, median of REPS runs) and then bloomz bench (the same
# tests, REPS timed runs after a warm-up), so both see the same machine state. Prints a Markdown
# table with the ratios bloomz / llama.cpp.
#
# Env: TYPES    files (default "f16 q8_0 q4_0 q4_k_m")
#      REPS     runs per test (default 3)
#      THREADS  threads (default 2; bench_big.sh always uses 2)
#      BLOOMZ   bloomz binary (default build/src/bloomz)
#      BIG      directory of bloom-560m-<type>.gguf (default ~/.cache/bloomz-oracle/big)
#      ORACLE   llama.cpp side (default ../shared/oracle/bench_big.sh, outside the project)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TYPES=$(echo "${TYPES:-f16 q8_0 q4_0 q4_k_m}" | tr 'A-Z' 'a-z')
REPS=${REPS:-3}
THREADS=${THREADS:-2}
BLOOMZ=${BLOOMZ:-$ROOT/build/src/bloomz}
BIG=${BIG:-$HOME/.cache/bloomz-oracle/big}
ORACLE=${ORACLE:-$ROOT/../shared/oracle/bench_big.sh}
[ -x "$BLOOMZ" ] || { echo "no bloomz binary at $BLOOMZ (set BLOOMZ=...)" >&2; exit 1; }
[ -x "$ORACLE" ] || { echo "no llama.cpp bench script at $ORACLE (set ORACLE=...)" >&2; exit 1; }

rows=()
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for t in $TYPES; do
  f="$BIG/bloom-560m-$t.gguf"
  [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
  echo "== $t: llama.cpp" >&2
  lout=$(TYPES=$t REPS=$REPS "$ORACLE" 2>&1)
  echo "$lout" >&2
  l=$(grep -E 'pp512 .* tg128' <<<"$lout" | tail -1)
  l_pp=$(sed -E 's/.*pp512 +([0-9.]+) t\/s.*/\1/' <<<"$l")
  l_tg=$(sed -E 's/.*tg128 +([0-9.]+) t\/s.*/\1/' <<<"$l")
  echo "== $t: bloomz" >&2
  b=$("$BLOOMZ" bench -m "$f" -p 512 -n 128 -r "$REPS" -t "$THREADS" -o md 2>/dev/null)
  echo "$b" >&2
  b_pp=$(awk -F'|' '$7 ~ /pp512/ {split($8, a, " "); print a[1]}' <<<"$b")
  b_tg=$(awk -F'|' '$7 ~ /tg128/ {split($8, a, " "); print a[1]}' <<<"$b")
  rows+=("$t $l_pp $b_pp $l_tg $b_tg")
done

echo
echo "| file | llama.cpp pp512 | bloomz pp512 | ratio | llama.cpp tg128 | bloomz tg128 | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for r in "${rows[@]}"; do
  read -r t lp bp lt bt <<<"$r"
  awk -v t="$t" -v lp="$lp" -v bp="$bp" -v lt="$lt" -v bt="$bt" 'BEGIN {
    rp = (lp > 0) ? sprintf("%.2fx", bp / lp) : "-"; rt = (lt > 0) ? sprintf("%.2fx", bt / lt) : "-";
    printf "| %s | %.1f | %.1f | %s | %.1f | %.1f | %s |\n", toupper(t), lp, bp, rp, lt, bt, rt }'
done
echo
echo "threads: $THREADS, reps: $REPS, load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
