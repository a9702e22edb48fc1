#!/usr/bin/env python3
"""Test double: a stand-in for the oracle's oneshot.py (outside the project) in tests/oneshot_vs_llama_test.sh.

The real oneshot.py runs the prebuilt llama.cpp (an npm package under the oracle's cache) on a
GGUF and prints one JSON object: load_ms, prompt_ms, prompt_n, gen_ms, gen_tps, total_ms (the
medians over --reps, rounded to 2 decimals). The test suite cannot use it (it lives outside
the project and needs llama.cpp installed), so this script takes the same command line (same argparse
options, so a wrong flag from tools/oneshot-vs-llama fails here as it would there) and prints
the same keys, in the same format, with values computed from its arguments instead of measured:

  load_ms   = 50 + (file size % 97)
  prompt_n  = number of bytes of the prompt // 4
  prompt_ms = 3 * prompt_n * 2 / threads
  gen_ms    = n * 10 * m * 2 / threads, where m cycles 1, 4, 2 over the calls made for the same
              file (counted in $ONESHOT_DOUBLE_LOG; m = 1 without it), so medians can be checked
  gen_tps   = n / (gen_ms / 1000)
  total_ms  = load_ms + prompt_ms + gen_ms

The model must exist and start with the GGUF magic (else it fails as a failed load would).
$ONESHOT_DOUBLE_FAIL=1 makes it fail as oneshot.py does when llama.cpp's decode fails.
$ONESHOT_DOUBLE_LOG=FILE: each call appends one JSON line {"model", "argv", "out"} to FILE, so the
test can check the arguments, the order of the calls (interleaving) and the values printed.
"""
import argparse
import json
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--prompt", default="Translate to English: Je t'aime.")
ap.add_argument("--n", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=1)
a = ap.parse_args()

with open(a.model, "rb") as f:
    if f.read(4) != b"GGUF":
        raise SystemExit(f"llama_model_load: {a.model}: not a GGUF file")
if os.environ.get("ONESHOT_DOUBLE_FAIL") == "1":
    print("llama_decode: failed to decode (test double told to fail)", file=sys.stderr)
    raise SystemExit("prompt decode failed")

log_path = os.environ.get("ONESHOT_DOUBLE_LOG")
calls = 0
if log_path and os.path.exists(log_path):
    with open(log_path, encoding="utf-8") as f:
        calls = sum(1 for line in f if json.loads(line)["model"] == a.model)
m = (1, 4, 2)[calls % 3]

load_ms = 50 + os.path.getsize(a.model) % 97
prompt_n = len(a.prompt.encode("utf-8")) // 4
prompt_ms = 3 * prompt_n * 2 / a.threads
gen_ms = a.n * 10 * m * 2 / a.threads
out = {"load_ms": load_ms, "prompt_ms": prompt_ms, "prompt_n": prompt_n, "gen_ms": gen_ms,
       "gen_tps": a.n / (gen_ms / 1e3), "total_ms": load_ms + prompt_ms + gen_ms}
out = {k: round(v, 2) for k, v in out.items()}
if log_path:
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"model": a.model, "argv": sys.argv[1:], "out": out}) + "\n")
print(json.dumps(out))
