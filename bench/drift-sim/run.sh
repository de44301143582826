#!/bin/sh
# bench/drift-sim/run.sh - build what the drift simulation needs and run it.
#
#   bench/drift-sim/run.sh [BUILD_DIR] [drift_sim.py options...]
#
# BUILD_DIR defaults to build-drift-sim (Release) at the repository root; an
# existing build directory (any type) is reused as it is configured. Options
# after it go to drift_sim.py (--fp-change N, --acc-change M, --stable P,
# --bench-stable P, --requests R); see README.md.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD="$ROOT/build-drift-sim"
if [ $# -gt 0 ]; then
    case "$1" in
    -*) ;;
    *) BUILD=$(cd "$1" 2>/dev/null && pwd || echo "$1"); shift ;;
    esac
fi
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target llmpin llmpin-mock-upstream llmpin-bench-drift -j2 >/dev/null
exec python3 "$ROOT/bench/drift-sim/drift_sim.py" \
    --llmpin "$BUILD/src/llmpin" \
    --mock "$BUILD/tests/mock/llmpin-mock-upstream" \
    --bench-drift "$BUILD/tests/drift/llmpin-bench-drift" \
    "$@"
