#!/bin/sh
# proxy_ab.sh - what drift recording costs on the request path: llmpin with
# --no-drift and llmpin with drift on, side by side, against the project's
# mock upstream, the same wrk load (the request of bench/proxy/run.sh), in
# alternating rounds so that noise from a shared machine hits both alike.
#
#   sh bench/drift/proxy_ab.sh           # ROUNDS=5 DURATION=8s CONNS=32
#   PERF=1 sh bench/drift/proxy_ab.sh    # also perf record -g both llmpins in round 1
#                                        # (PERF_OUT, default /tmp/perf-drift.data[.off])
#
# Prints one line per run, the CPU time per 1,000 requests of every thread
# of both processes, the ratio drift/no-drift per round (the two runs of a
# round in alternating order), and the median, mean and range of the ratios. Uses
# LLMPIN_BUILD (default ./build). Everything listens on 127.0.0.1 and is
# stopped on exit.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${LLMPIN_BUILD:-$ROOT/build}" && pwd)
DURATION=${DURATION:-8s}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2s}
LLMPIN=$BUILD/llmpin
MOCK=$BUILD/tests/mock/llmpin-mock-upstream
[ -x "$LLMPIN" ] && [ -x "$MOCK" ] || { echo "build llmpin and llmpin-mock-upstream in $BUILD first" >&2; exit 1; }

TMP=$(mktemp -d /tmp/llmpin-ab.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

wait_ready() {
    i=0
    while [ $i -lt 300 ]; do
        if [ -s "$1" ]; then head -n1 "$1"; return 0; fi
        sleep 0.05; i=$((i + 1))
    done
    echo "bench: $1 never appeared" >&2; return 1
}

"$MOCK" --listen 127.0.0.1:0 --ready-file "$TMP/mock.ready" --fingerprint fp_bench >/dev/null 2>"$TMP/mock.err" &
PIDS="$PIDS $!"
MOCK_ADDR=$(wait_ready "$TMP/mock.ready")

(cd "$TMP" && exec "$LLMPIN" serve --listen 127.0.0.1:0 --upstream "http://$MOCK_ADDR/v1" \
    --no-drift --ready-file "$TMP/off.ready" >/dev/null 2>"$TMP/off.err") &
OFFPID=$!
PIDS="$PIDS $OFFPID"
OFF=$(wait_ready "$TMP/off.ready")
(cd "$TMP" && exec "$LLMPIN" serve --listen 127.0.0.1:0 --upstream "http://$MOCK_ADDR/v1" \
    --drift-db "$TMP/drift.db" --ready-file "$TMP/on.ready" >/dev/null 2>"$TMP/on.err") &
ONPID=$!
PIDS="$PIDS $ONPID"
ON=$(wait_ready "$TMP/on.ready")

# the wrk script of bench/proxy: BODIES=unique (default) or same, see its chat.lua
cp "$ROOT/bench/proxy/chat.lua" "$TMP/chat.lua"

# CPU time (ms) of each thread of a process: "tid:name:ms ..."
cpu() {
    for t in /proc/$1/task/*; do
        awk -v t="${t##*/}" '{ sub(/^[^)]*\) /, ""); printf "%s:%d ", t, ($12 + $13) * 10 }' "$t/stat"
    done
}
run() {
    wrk -t1 -c"$CONNS" -d"$2" -s "$TMP/chat.lua" "http://$1/v1/chat/completions" | grep '^RESULT'
}
# per-thread CPU ms between two cpu() snapshots, divided by requests/1000
cpudiff() {
    n=$(echo "$3" | sed 's/.*requests=\([0-9]*\).*/\1/')
    echo "$1" "|" "$2" | awk -v n="$n" '{ for (i = 1; i <= NF && $i != "|"; i++) { split($i, a, ":"); b[a[1]] = a[2] }
        for (i++; i <= NF; i++) { split($i, a, ":"); if (a[2] - b[a[1]] > 0) printf "%s=%.1f ", a[1], (a[2] - b[a[1]]) * 1000 / n } }'
}
run "$OFF" "$WARMUP" >/dev/null
run "$ON" "$WARMUP" >/dev/null
echo "uptime: $(uptime)"
# one measured run: measure off|on -> sets res_off/res_on and cpu_off/cpu_on
measure() {
    if [ "$1" = off ]; then pid=$OFFPID; addr=$OFF; out=${PERF_OUT:-/tmp/perf-drift.data}.off
    else pid=$ONPID; addr=$ON; out=${PERF_OUT:-/tmp/perf-drift.data}; fi
    c0=$(cpu "$pid")
    if [ "${PERF:-0}" = 1 ] && [ "$r" = 1 ]; then
        perf record -g -o "$out" -p "$pid" -- sleep 5 >/dev/null 2>&1 &
        perfpid=$!
    fi
    res=$(run "$addr" "$DURATION")
    [ -n "${perfpid:-}" ] && { wait "$perfpid" || true; perfpid=""; }
    c1=$(cpu "$pid")
    eval "res_$1=\$res"
    eval "cpu_$1=\$(cpudiff \"\$c0\" \"\$c1\" \"\$res\")"
}
r=1
ratios=""
while [ "$r" -le "$ROUNDS" ]; do
    # alternate the order (off first, then on first), so that neither side
    # always runs second
    if [ $((r % 2)) = 1 ]; then measure off; measure on; else measure on; measure off; fi
    a=$(echo "$res_off" | sed 's/.*rps=\([0-9.]*\).*/\1/')
    b=$(echo "$res_on" | sed 's/.*rps=\([0-9.]*\).*/\1/')
    ratio=$(echo "$b $a" | awk '{printf "%.3f", $1/$2}')
    ratios="$ratios $ratio"
    echo "round $r  off: $res_off"
    echo "round $r  on:  $res_on"
    echo "round $r  cpu ms per 1000 requests, per thread: off $cpu_off  on $cpu_on"
    echo "round $r  drift/off req/s ratio: $ratio"
    r=$((r + 1))
done
echo "$ratios" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1; s += $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
          printf "summary: drift/off req/s over %d rounds: median %.3f, mean %.3f, min %.3f, max %.3f\n", NR, m, s / NR, v[1], v[NR] }'
echo "drift db: $(ls -la "$TMP/drift.db" | awk '{print $5}') bytes; $(sqlite3 "$TMP/drift.db" 'select count(*) from drift_records' 2>/dev/null || echo '?') records so far"
