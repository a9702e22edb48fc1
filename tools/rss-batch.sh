#!/usr/bin/env bash
# Peak RSS of --batch-file runs fed through a pipe (streamed input) on a fixture model, at
# 1 000 and at 1 000 000 prompts by default: the numbers must stay within 16 MiB of each other
# (input is read as a stream, results are written as items finish, per-item state is freed).
#   tools/rss-batch.sh [BLOOMZ_BINARY] [MODEL] [SIZES...]
# Prints one line per size: prompts, peak RSS (kB), wall time (s), results; exit 1 if the
# largest size peaks more than 16 MiB above the smallest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/src/bloomz}"
MODEL="${2:-tests/data/models/tiny-odd-q4_0.gguf}"
shift $(( $# < 2 ? $# : 2 ))
SIZES=("$@")
if [ "${#SIZES[@]}" -eq 0 ]; then SIZES=(1000 1000000); fi

# Short varied prompts: plain lines and JSON lines with per-item overrides, stop strings and
# logprobs; -n 1 so that the run measures the per-line overhead, not decoding.
measure() {  # $1 = number of prompts
  python3 - "$BIN" "$MODEL" "$1" <<'PY'
import json, os, subprocess, sys, time
binary, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
words = ["the", "cat", "Hola", "mundo", "数据", "привет", "x", "1234", "ok", "!"]
t0 = time.time()
p = subprocess.Popen([binary, "-m", model, "--batch-file", "-", "-n", "1", "-q", "-t", "1", "-s", "7"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
lines = 0
def count():
    global lines
    for chunk in iter(lambda: p.stdout.read(1 << 16), b""):
        lines += chunk.count(b"\n")
import threading
reader = threading.Thread(target=count)
reader.start()
buf = []
for i in range(n):
    text = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(1 + i % 5))
    if i % 3 == 0:
        buf.append(text + "\n")
    else:
        buf.append(json.dumps({"id": i, "prompt": text, "stop": ["zz"], "logprobs": i % 3, "temp": 0.5 * (i % 2)}) + "\n")
    if len(buf) == 4096 or i + 1 == n:
        p.stdin.write("".join(buf).encode())
        buf = []
p.stdin.close()
_, status, ru = os.wait4(p.pid, 0)
reader.join()
print(f"{n} prompts: peak RSS {ru.ru_maxrss} kB, {time.time() - t0:.1f} s, {lines} results, exit {os.waitstatus_to_exitcode(status)}")
sys.exit(0 if status == 0 else 1)
PY
}
first=""
last=""
for n in "${SIZES[@]}"; do
  r=$(measure "$n")
  echo "$r"
  k=$(sed -n 's/.*peak RSS \([0-9]*\) kB.*/\1/p' <<<"$r")
  if [ -z "$first" ]; then first=$k; fi
  last=$k
done
if [ "$last" -gt $(( first + 16384 )) ]; then
  echo "rss-batch: peak RSS grew from $first kB to $last kB (more than 16 MiB)" >&2
  exit 1
fi
echo "rss-batch: flat ($first kB -> $last kB)"
