#!/bin/sh
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each one for
# SECONDS (default 30) under ASan/UBSan, seeded with a temporary copy of its
# corpus tests/fuzz/corpus/<name>/ (the repository is never written).
# Fails on the first crash, leak, timeout or sanitizer report; the input that
# did it is kept in build-fuzz/fuzz-artifacts/ and printed.
#   tests/fuzz/run.sh [SECONDS] [NAME...]      (names as in build-fuzz/fuzz/targets.txt)
# Environment: LLMPIN_FUZZ_JOBS (build parallelism, default nproc),
# LLMPIN_FUZZ_KEEP=DIR (keep the grown corpora in DIR/<name>).
set -e
cd "$(dirname "$0")/../.."
secs=${1:-30}
[ $# -gt 0 ] && shift
case $secs in *[!0-9]*|'') echo "run.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac

LLMPIN_FUZZ=1 sh scripts/deps.sh
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DLLMPIN_FUZZ=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-fuzz --target fuzz_all llmpin-ggufwrite -j"${LLMPIN_FUZZ_JOBS:-$(nproc)}"

names=${*:-$(cat build-fuzz/fuzz/targets.txt)}
work=$(mktemp -d "${TMPDIR:-/tmp}/llmpin-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
art="$PWD/build-fuzz/fuzz-artifacts"
mkdir -p "$art"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

failed=""
for n in $names; do
  exe=build-fuzz/fuzz/fuzz_$n
  [ -x "$exe" ] || { echo "run.sh: no fuzz target '$n' ($exe)" >&2; exit 2; }
  mkdir -p "$work/$n"
  cp tests/fuzz/corpus/"$n"/* "$work/$n/"
  # seeds the repository does not keep (model files), written afresh
  [ -f "tests/fuzz/${n}_seeds.sh" ] && sh "tests/fuzz/${n}_seeds.sh" "$work/$n" build-fuzz/tools/llmpin-ggufwrite >/dev/null
  dict=""
  [ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
  echo "== fuzz_$n: ${secs}s, seeds: $(ls tests/fuzz/corpus/"$n" | wc -l)"
  if "$exe" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$art/$n-" $dict "$work/$n" >"$work/$n.log" 2>&1; then
    grep -aE '^#[0-9]+[[:space:]]+(DONE|INITED)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
      "$work/$n.log" | tr '\n' ' '
    echo "corpus: $(ls "$work/$n" | wc -l) files"
  else
    tail -n 60 "$work/$n.log"
    for f in "$art/$n"-*; do
      [ -f "$f" ] || continue
      echo "-- input $f (base64):"
      base64 "$f" | head -c 4096
      echo
    done
    failed="$failed $n"
  fi
  if [ -n "$LLMPIN_FUZZ_KEEP" ]; then
    mkdir -p "$LLMPIN_FUZZ_KEEP/$n" && cp "$work/$n"/* "$LLMPIN_FUZZ_KEEP/$n/"
  fi
done
if [ -n "$failed" ]; then
  echo "run.sh: FAILED:$failed (inputs in $art)" >&2
  exit 1
fi
echo "run.sh: every target ran ${secs}s clean"
