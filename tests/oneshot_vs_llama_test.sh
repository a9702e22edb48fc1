#!/usr/bin/env bash
# tools/oneshot-vs-llama (issue 16) end to end, with the real bloomz on fixture models and
# tests/oneshot_double.py standing in for the oracle's oneshot.py (the test suite reads only
# the project; the double takes oneshot.py's command line and prints its JSON format, with values
# computed from its arguments). Checks the table, the JSON, the medians and the interleaving, the
# ratio arithmetic, and the error paths.
#   tests/oneshot_vs_llama_test.sh BLOOMZ_BINARY
set -euo pipefail
BLOOMZ="$1"
HERE=$(cd "$(dirname "$0")" && pwd)
TOOL="$HERE/../tools/oneshot-vs-llama"
DOUBLE="$HERE/oneshot_double.py"
A="$HERE/data/models/tiny-odd-q4_0.gguf"
B="$HERE/data/models/tiny-odd-f16.gguf"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
WORK=$(mktemp -d /tmp/bloomz-oneshot-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$TOOL" ] || fail "$TOOL is not executable"
run_tool() { "$TOOL" --bloomz "$BLOOMZ" --oracle "$DOUBLE" --python "$PY" "$@"; }

# 1. JSON, one repetition, two files.
export ONESHOT_DOUBLE_LOG="$WORK/calls1.jsonl"
run_tool --reps 1 --n-predict 8 --json "$A" "$B" >"$WORK/r1.json" 2>"$WORK/r1.err" \
  || { cat "$WORK/r1.err" >&2; fail "the tool failed on fixture models"; }
"$BLOOMZ" inspect "$A" --json >"$WORK/inspect.json"
"$PY" - "$WORK/r1.json" "$WORK/calls1.jsonl" "$WORK/inspect.json" "$A" "$B" <<'EOF' || fail "JSON checks (reps 1)"
import json, sys
rep = json.load(open(sys.argv[1]))
calls = [json.loads(l) for l in open(sys.argv[2])]
isa = json.load(open(sys.argv[3]))["isa"]
files = sys.argv[4:]
def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")
check(rep["machine"]["bloomz_isa"] == isa, f"bloomz_isa {rep['machine']['bloomz_isa']} != inspect's {isa}")
check(rep["machine"]["cpu"] and isinstance(rep["machine"]["avx512"], list), "machine fields")
flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
check(rep["machine"]["avx512"] == [f for f in flags if f.startswith("avx512")], "avx512 flags")
check(len(rep["machine"]["loadavg_before"]) == 3 and len(rep["machine"]["loadavg_after"]) == 3, "load averages")
bw = rep["machine"]["read_bw_gbps"]
check(len(bw) == 2 and all(x > 0 for x in bw), f"read bandwidth before and after: {bw}")
s = rep["settings"]
check((s["n_predict"], s["threads"], s["reps"]) == (8, 2, 1), f"settings {s}")
check(s["prompt"] == "Translate to English: Je t'aime.", "default prompt")
check([f["file"] for f in rep["files"]] == files, "files in order")
check([c["model"] for c in calls] == files, f"oracle calls {[c['model'] for c in calls]}")
for f, c in zip(rep["files"], calls):
    argv = c["argv"]
    check(argv[0] == f["file"] and argv[argv.index("--n") + 1] == "8" and argv[argv.index("--threads") + 1] == "2"
          and argv[argv.index("--reps") + 1] == "1" and argv[argv.index("--prompt") + 1] == s["prompt"],
          f"oracle argv {argv}")
    l, b = f["llama"], f["bloomz"]
    check(abs(l["total_s"] - c["out"]["total_ms"] / 1e3) < 1e-9, f"llama total_s {l['total_s']} vs {c['out']}")
    for k in ("load_ms", "prompt_ms", "gen_ms", "gen_tps"):
        check(l[k] == c["out"][k], f"llama {k}: {l[k]} vs {c['out'][k]}")
    check(b["gen_n"] == 8, f"bloomz gen_n {b['gen_n']}")
    check(b["prompt_n"] > 0 and b["gen_tps"] > 0 and b["load_ms"] > 0, "bloomz timings")
    inner = (b["load_ms"] + b["prompt_ms"] + b["gen_ms"]) / 1e3
    check(b["total_s"] >= inner, f"bloomz wall {b['total_s']} s below its own timings {inner} s")
    check(abs(b["gen_tps"] - 8 / (b["gen_ms"] / 1e3)) / b["gen_tps"] < 0.01, "bloomz gen_tps = gen_n / gen_ms")
    check(abs(f["ratio"] - b["total_s"] / l["total_s"]) < 1e-12, f"ratio {f['ratio']}")
EOF

# 2. The Markdown table: header, one row per file, values that agree with each other.
export ONESHOT_DOUBLE_LOG="$WORK/calls2.jsonl"
run_tool --reps 1 --n-predict 8 "$A" "$B" >"$WORK/r2.md" 2>"$WORK/r2.err" \
  || { cat "$WORK/r2.err" >&2; fail "the tool failed (table)"; }
"$PY" - "$WORK/r2.md" "$WORK/calls2.jsonl" "$WORK/inspect.json" <<'EOF' || { cat "$WORK/r2.md" >&2; fail "table checks"; }
import json, sys
text = open(sys.argv[1]).read()
calls = [json.loads(l) for l in open(sys.argv[2])]
isa = json.load(open(sys.argv[3]))["isa"]
def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")
lines = text.splitlines()
check(lines[0].startswith("machine: "), "machine line")
check(any(l.startswith(f"bloomz kernels: {isa} ") for l in lines), "bloomz kernels line")
check(any(l.startswith("date: ") and "load average before" in l for l in lines), "date / load line")
import re
check(any(re.fullmatch(r"read bandwidth \(bloomz bench's probe, before / after\): [0-9.]+ / [0-9.]+ GB/s", l)
          for l in lines), "read bandwidth line")
header = ("| file | llama.cpp total s | llama.cpp decode t/s | bloomz total s | bloomz load ms "
          "| bloomz decode t/s | ratio |")
check(header in lines, "table header")
rows = [l for l in lines[lines.index(header) + 2:] if l.startswith("| ")]
check(len(rows) == 2, f"{len(rows)} rows")
for row, c in zip(rows, calls):
    cells = [x.strip() for x in row.strip("|").split("|")]
    check(len(cells) == 7, f"cells of {row}")
    name, lt, ltps, bt, bload, btps, ratio = cells
    check(name == c["model"].rsplit("/", 1)[1], f"file name {name}")
    check(lt == f"{c['out']['total_ms'] / 1e3:.3f}", f"llama total {lt} vs {c['out']['total_ms']}")
    check(ltps == f"{c['out']['gen_tps']:.1f}", f"llama decode {ltps} vs {c['out']['gen_tps']}")
    check(ratio.endswith("x"), f"ratio {ratio}")
    check(float(bload) > 0 and float(btps) > 0, "bloomz columns")
    check(abs(float(ratio[:-1]) - float(bt) / float(lt)) <= 0.011, f"ratio {ratio} vs {bt} / {lt}")
EOF

# 3. Medians and interleaving: three repetitions of two files.
export ONESHOT_DOUBLE_LOG="$WORK/calls3.jsonl"
run_tool --reps 3 --n-predict 8 --json --no-bandwidth "$A" "$B" >"$WORK/r3.json" 2>"$WORK/r3.err" \
  || { cat "$WORK/r3.err" >&2; fail "the tool failed (reps 3)"; }
"$PY" - "$WORK/r3.json" "$WORK/calls3.jsonl" "$A" "$B" <<'EOF' || fail "median / interleaving checks"
import json, statistics, sys
rep = json.load(open(sys.argv[1]))
calls = [json.loads(l) for l in open(sys.argv[2])]
a, b = sys.argv[3:]
def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")
check([c["model"] for c in calls] == [a, b] * 3, f"oracle call order {[c['model'] for c in calls]}")
check(rep["machine"]["read_bw_gbps"] == [], "--no-bandwidth skips the probe")
for f in rep["files"]:
    mine = [c["out"] for c in calls if c["model"] == f["file"]]
    l = f["llama"]
    check([r["total_ms"] for r in l["runs"]] == [o["total_ms"] for o in mine], "llama runs = the oracle's outputs")
    totals = sorted(o["total_ms"] for o in mine)
    check(len(set(totals)) == 3, "the double varies its totals")
    check(abs(l["total_s"] - totals[1] / 1e3) < 1e-9, f"llama median total {l['total_s']} vs {totals}")
    check(l["gen_tps"] == sorted(o["gen_tps"] for o in mine)[1], "llama median decode")
    bz = f["bloomz"]
    check(len(bz["runs"]) == 3, "three bloomz runs")
    check(bz["total_s"] == statistics.median(r["total_s"] for r in bz["runs"]), "bloomz median total")
    check(bz["load_ms"] == statistics.median(r["load_ms"] for r in bz["runs"]), "bloomz median load")
    check(abs(f["ratio"] - bz["total_s"] / l["total_s"]) < 1e-12, "ratio of the medians")
EOF
unset ONESHOT_DOUBLE_LOG

# 4. Error paths: one line on stderr naming the file at fault (besides the progress lines of the
#    runs made before the fault, "oneshot-vs-llama: rep I/N ..."), nothing on stdout, exit 1.
expect_error() {  # expect_error NAME NEEDLE -- command...
  local name=$1 needle=$2; shift 3
  local rc=0
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$WORK/$name.err" >&2; fail "$name: exit $rc, expected 1"; }
  [ ! -s "$WORK/$name.out" ] || fail "$name: something on stdout: $(head -c 300 "$WORK/$name.out")"
  grep -Ev '^oneshot-vs-llama: rep [0-9]+/[0-9]+ ' "$WORK/$name.err" >"$WORK/$name.msg" || true
  [ "$(wc -l <"$WORK/$name.msg")" -eq 1 ] || { cat "$WORK/$name.err" >&2; fail "$name: not one line on stderr"; }
  grep -qF -- "$needle" "$WORK/$name.msg" || { cat "$WORK/$name.err" >&2; fail "$name: stderr does not name $needle"; }
}
expect_error missing "$WORK/absent.gguf" -- run_tool --reps 1 --n-predict 8 --no-bandwidth "$A" "$WORK/absent.gguf"
ONESHOT_DOUBLE_FAIL=1 expect_error oracle_fails "$B" -- run_tool --reps 1 --n-predict 8 --no-bandwidth "$B"
grep -qF "prompt decode failed" "$WORK/oracle_fails.msg" || fail "the oracle's own message is not passed on"
expect_error no_oracle "$WORK/no-oneshot.py" -- run_tool --reps 1 --n-predict 8 --no-bandwidth --oracle "$WORK/no-oneshot.py" "$A"
expect_error bloomz_fails "$A" -- run_tool --reps 1 --n-predict 8 --no-bandwidth --bloomz-args='--top-p 7' "$A"
expect_error no_bloomz "$WORK/no-bloomz" -- run_tool --reps 1 --n-predict 8 --no-bandwidth --bloomz "$WORK/no-bloomz" "$A"
printf 'not a model' >"$WORK/bad.gguf"
expect_error bad_model "$WORK/bad.gguf" -- run_tool --reps 1 --n-predict 8 --no-bandwidth "$WORK/bad.gguf"
# Usage errors exit 2.
rc=0; run_tool --reps 0 "$A" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--reps 0: exit $rc, expected 2"
# 5. The warm read drops the file from the page cache first (posix_fadvise DONTNEED on the whole
# file), unless --keep-page-cache. warm() is called directly,
# with os.posix_fadvise recorded.
"$PY" - "$TOOL" "$A" <<'EOF' || fail "warm(): page-cache eviction"
import importlib.machinery, importlib.util, os, sys
loader = importlib.machinery.SourceFileLoader("oneshot_tool", sys.argv[1])
spec = importlib.util.spec_from_loader("oneshot_tool", loader)
tool = importlib.util.module_from_spec(spec)
loader.exec_module(tool)
calls, reads = [], []
real_read = os.read
tool.os.posix_fadvise = lambda fd, off, n, advice: calls.append((off, n, advice))
tool.warm(sys.argv[2])
if calls != [(0, 0, os.POSIX_FADV_DONTNEED)]:
    sys.exit(f"FAIL: warm() advised {calls}, expected one DONTNEED over the whole file")
calls.clear()
tool.warm(sys.argv[2], evict=False)
if calls:
    sys.exit(f"FAIL: warm(evict=False) still advised {calls}")
EOF
# and the flag reaches it: a run with --keep-page-cache succeeds and prints the table
run_tool --reps 1 --n-predict 8 --no-bandwidth --keep-page-cache "$A" >"$WORK/keep.md" 2>"$WORK/keep.err" \
  || { cat "$WORK/keep.err" >&2; fail "--keep-page-cache run failed"; }
grep -q "tiny-odd-q4_0.gguf" "$WORK/keep.md" || fail "--keep-page-cache: no table row for the file"
echo "oneshot-vs-llama: all checks passed"
