#!/usr/bin/env bash
# bloomz vs llama.cpp on the big synthetic files, measured in one run: for each file, REPS rounds
# of one llama.cpp run (the oracle's run_ref.py bench, what bench_big.sh runs: pp512 and tg128)
# and one bloomz bench run (the same tests, one timed run after a warm-up), the order alternating
# between rounds so both see the same machine state; each figure is the median over the rounds.
# Prints a Markdown table with the ratios bloomz / llama.cpp, bloomz's tg128 read rate against the
# read bandwidth its bench measures right after each tg128 run (the median of the rounds'
# fractions), and the share of tg128's time in stalled tokens (over twice the median token: the
# host descheduled a thread).
#
# Env: TYPES    files (default "f16 q8_0 q4_0 q4_k_m")
#      SHAPE    file shape: bloom-<SHAPE>-<type>.gguf (default 560m; 1b7 for the bloom-1b7-shaped files)
#      REPS     rounds per file (default 3)
#      THREADS  threads (default 2)
#      BLOOMZ   bloomz binary (default build/src/bloomz)
#      BIG      directory of the files (default ~/.cache/bloomz-oracle/big)
#      ORACLE   the oracle directory with run_ref.py (default ../shared/oracle, outside the project)
#      LLAMA    0: bloomz only (the read-rate columns and their median, no llama.cpp runs)
#      EVICT    0: read each file once as it is in the page cache; otherwise (default) its pages
#               are dropped from the page cache first, so the read fills it as a fresh read does
#               (docs/performance.md § 3.10: a file as its writer left it decoded 20 % slower)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TYPES=$(echo "${TYPES:-f16 q8_0 q4_0 q4_k_m}" | tr 'A-Z' 'a-z')
SHAPE=${SHAPE:-560m}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
BLOOMZ=${BLOOMZ:-$ROOT/build/src/bloomz}
BIG=${BIG:-$HOME/.cache/bloomz-oracle/big}
ORACLE=${ORACLE:-$ROOT/../shared/oracle}
PY=${PY:-/usr/bin/python3}
[ -x "$BLOOMZ" ] || { echo "no bloomz binary at $BLOOMZ (set BLOOMZ=...)" >&2; exit 1; }
LLAMA=${LLAMA:-1}
[ "$LLAMA" = 0 ] || [ -f "$ORACLE/run_ref.py" ] || { echo "no llama.cpp bench script at $ORACLE/run_ref.py (set ORACLE=...)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

rows=()
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for t in $TYPES; do
  f="$BIG/bloom-$SHAPE-$t.gguf"
  [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
  "$PY" - "$f" "${EVICT:-1}" <<'EOF'
import os, sys
with open(sys.argv[1], "rb", buffering=0) as f:
    if sys.argv[2] != "0":
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    while f.read(8 << 20):
        pass
EOF
  # REPS rounds, each one llama.cpp run and one bloomz run (-r 1 after its warm-up), the order
  # alternating (llama.cpp first in odd rounds), so a slow spell of a drifting machine hits both;
  # each column is the median over the rounds.
  lpp=() ltg=() bpp=() btg=() bgbs=() bbw=() bfr=() bst=()
  pp=512; [ "$LLAMA" != 0 ] || pp=0  # bloomz only: the decode test alone
  run_llama() {
    "$PY" "$ORACLE/run_ref.py" bench "$f" --threads "$THREADS" --reps 1 --out "$tmp/l.json" >/dev/null
    read -r x y < <("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["pp512"]["median_t_s"], r["tg128"]["median_t_s"])' "$tmp/l.json")
    lpp+=("$x"); ltg+=("$y")
    echo "$t round $rep llama.cpp: pp512 $x t/s, tg128 $y t/s" >&2
  }
  run_bloomz() {
    b=$("$BLOOMZ" bench -m "$f" -p "$pp" -n 128 -r 1 -t "$THREADS" -o md 2>&1)
    echo "$b" | grep -E 'pp512|tg128' >&2
    bpp+=("$(awk -F'|' '$7 ~ /pp512/ {split($8, a, " "); print a[1]}' <<<"$b")")
    btg+=("$(awk -F'|' '$7 ~ /tg128/ {split($8, a, " "); print a[1]}' <<<"$b")")
    bgbs+=("$(awk -F'|' '$7 ~ /tg128/ {gsub(/ /, "", $9); print $9}' <<<"$b")")
    bbw+=("$(awk -F'|' '$7 ~ /tg128/ {gsub(/ /, "", $10); print $10}' <<<"$b")")  # probed right after the tg128 run
    bfr+=("$(awk -v g="${bgbs[-1]}" -v w="${bbw[-1]}" 'BEGIN { if (w > 0) print g / w }')")  # this round's fraction
    # share of tg128's time in tokens that took over twice the median token (host stalls; 0 when none)
    local st; st=$(sed -n 's/^tg128: .*, \([0-9.]*\) % of the run.*/\1/p' <<<"$b"); bst+=("${st:-0}")
  }
  for rep in $(seq "$REPS"); do
    if [ "$LLAMA" = 0 ]; then run_bloomz
    elif [ $((rep % 2)) = 1 ]; then run_llama; run_bloomz
    else run_bloomz; run_llama
    fi
  done
  med() { printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (!NR) print 0; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
  l_pp=0 l_tg=0
  if [ "$LLAMA" != 0 ]; then l_pp=$(med "${lpp[@]}"); l_tg=$(med "${ltg[@]}"); fi
  b_pp=$(med "${bpp[@]}"); b_tg=$(med "${btg[@]}"); b_gbs=$(med "${bgbs[@]}"); b_bw=$(med "${bbw[@]}"); b_stall=$(med "${bst[@]}")
  b_fr=$(med "${bfr[@]}")
  rows+=("$t $l_pp ${b_pp:-0} $l_tg ${b_tg:-0} ${b_gbs:-0} ${b_bw:-0} ${b_stall:-0} ${b_fr:-0}")
done

echo
echo "| file ($SHAPE) | llama.cpp pp512 | bloomz pp512 | ratio | llama.cpp tg128 | bloomz tg128 | ratio | bloomz tg GB/s | read GB/s | of read | stalls |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${rows[@]}"; do
  read -r t lp bp lt bt gbs bw st fr <<<"$r"
  awk -v t="$t" -v lp="$lp" -v bp="$bp" -v lt="$lt" -v bt="$bt" -v gbs="$gbs" -v bw="$bw" -v st="$st" -v fr="$fr" 'BEGIN {
    rp = (lp > 0) ? sprintf("%.2fx", bp / lp) : "-"; rt = (lt > 0) ? sprintf("%.2fx", bt / lt) : "-";
    rb = (fr > 0) ? sprintf("%.2f", fr) : "-";
    printf "| %s | %.1f | %.1f | %s | %.1f | %.1f | %s | %.1f | %.1f | %s | %.1f %% |\n", toupper(t), lp, bp, rp, lt, bt, rt, gbs, bw, rb, st }'
done
printf '%s\n' "${rows[@]}" | awk '{ if ($9 > 0) print $9 }' | sort -g |
  awk '{ v[NR] = $1 } END { if (NR) printf "\nmedian tg128 read fraction: %.2f (min %.2f, max %.2f, %d files)\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR }'
echo
echo "threads: $THREADS, reps: $REPS, load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
