#!/bin/sh
# Build and run the local model benchmark (bench/lm/README.md).
# usage: bench/lm/run.sh [build-dir] [-- benchmark options]
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-bench}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target llmpin-bench-lm >/dev/null
exec "$build/tests/engine/llmpin-bench-lm" "$@"
