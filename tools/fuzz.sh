#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) and runs each for
# SECONDS_PER_TARGET (default 30), one process each, one after the other.
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      e.g. tools/fuzz.sh 3600 fuzz_gguf
# Targets: fuzz_gguf fuzz_model fuzz_tokenizer fuzz_detok fuzz_cli fuzz_server_request. Seeds come from
# tests/data/fuzz/<target>/ (and the fixture model); every file in tests/data/fuzz/regressions/
# <target>/ is replayed first. New corpus entries go to $FUZZ_DIR/corpus/<target> (kept between
# runs), crashes to $FUZZ_DIR/artifacts/<target>/. Exit status 0 only when nothing was found.
# FUZZ_DIR (default build-fuzz) and FUZZ_JOBS (build parallelism, default nproc) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET="${1:-30}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then TARGETS=(fuzz_gguf fuzz_model fuzz_tokenizer fuzz_detok fuzz_cli fuzz_server_request); fi
FUZZ_DIR="${FUZZ_DIR:-build-fuzz}"

source tools/deps.sh
bloomz_install_deps
fuzz_missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || fuzz_missing+=("$p")
done
if [ "${#fuzz_missing[@]}" -gt 0 ]; then
  echo "fuzz: installing ${fuzz_missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${fuzz_missing[@]}" >&2
fi

cmake -S tests/fuzz -B "$FUZZ_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$FUZZ_DIR" -j "${FUZZ_JOBS:-$(nproc)}" --target "${TARGETS[@]}"

DATA="$ROOT/tests/data/fuzz"
MODEL="$ROOT/tests/data/models/tiny-odd-q4_0.gguf"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
total=0
for t in "${TARGETS[@]}"; do
  bin="$FUZZ_DIR/$t"
  corpus="$FUZZ_DIR/corpus/$t"
  artifacts="$FUZZ_DIR/artifacts/$t"
  log="$FUZZ_DIR/$t.log"
  mkdir -p "$corpus" "$artifacts"
  # 1. Regression inputs: each must run cleanly.
  if compgen -G "$DATA/regressions/$t/*" >/dev/null; then
    if ! "$bin" -runs=1 "$DATA"/regressions/"$t"/* >"$FUZZ_DIR/$t.regressions.log" 2>&1; then
      echo "fuzz: $t: a regression input fails (see $FUZZ_DIR/$t.regressions.log)" >&2
      status=1
      continue
    fi
  fi
  # 2. Fuzz for the time given.
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  seeds=()
  seed_dir="$DATA/$t"
  [ "$t" = fuzz_model ] && seed_dir="$DATA/fuzz_gguf"  # the same small GGUFs
  [ -d "$seed_dir" ] && seeds+=("$seed_dir")
  [ -d "$DATA/regressions/$t" ] && seeds+=("$DATA/regressions/$t")
  case "$t" in
    fuzz_gguf) args+=(-max_len=16384 -seed_inputs="$MODEL") ;;  # the fixture truncated: its header
    fuzz_model) args+=(-max_len=16384) ;;
    fuzz_tokenizer) args+=(-max_len=1024) ;;
    fuzz_detok) args+=(-max_len=512) ;;
    fuzz_cli) args+=(-max_len=512 -dict="$DATA/cli.dict") ;;
    fuzz_server_request) args+=(-max_len=2048 -dict="$DATA/server.dict") ;;
  esac
  if "$bin" "${args[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "fuzz: $t: ${execs:-?} executions in ${SECONDS_PER_TARGET} s, no finding"
    total=$(( total + ${execs:-0} ))
  else
    echo "fuzz: $t: FINDING (log: $log, inputs: $artifacts/)" >&2
    grep -E "ERROR|SUMMARY|runtime error|deadly|Test unit written" "$log" | head -20 >&2 || true
    status=1
  fi
done
echo "fuzz: $total executions in total"
exit "$status"
