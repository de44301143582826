#!/bin/sh
# bench/proxy/run.sh - llmpin's proxy overhead, side by side in one run.
#
# Why side by side: absolute req/s on a shared 2-core machine are noise;
# the ratios between servers measured in the same minute are the figure.
# Every server forwards the same small non-stream chat request to the same
# mock upstream (llmpin-mock-upstream), which is also measured directly:
#
#   direct        wrk -> mock
#   nginx-1w      wrk -> nginx (1 worker, upstream keepalive) -> mock
#   nginx-2w      same with 2 workers
#   llmpin        wrk -> llmpin --no-drift -> mock
#   llmpin-drift  wrk -> llmpin (drift recording on) -> mock
#
# then holds STREAMS concurrent SSE streams open through llmpin and reports
# its resident memory (VmRSS). See README.md for how to read the output.
#
# Environment: LLMPIN_BUILD (build dir, default ./build), DURATION (10s),
# CONNS (32), THREADS (1), WARMUP (2s), STREAMS (1000).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/proxy"
BUILD=${LLMPIN_BUILD:-$ROOT/build}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2s}
STREAMS=${STREAMS:-1000}
LAT_DURATION=${LAT_DURATION:-5s}
LAT_DURATION_S=${LAT_DURATION%s}

LLMPIN_BENCH=1 sh "$ROOT/scripts/deps.sh"

find_bin() {
    for c in "$@"; do
        [ -x "$c" ] && { echo "$c"; return 0; }
    done
    return 1
}
LLMPIN=$(find_bin "$BUILD/llmpin" "$BUILD/src/llmpin") || true
MOCK=$(find_bin "$BUILD/tests/mock/llmpin-mock-upstream") || true
if [ -z "$LLMPIN" ] || [ -z "$MOCK" ]; then
    echo "bench: building llmpin and the mock in $BUILD (Release)" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target llmpin llmpin-mock-upstream >/dev/null
    LLMPIN=$(find_bin "$BUILD/llmpin" "$BUILD/src/llmpin")
    MOCK=$(find_bin "$BUILD/tests/mock/llmpin-mock-upstream")
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# 1000 streams need ~3000 descriptors across client, llmpin and mock.
need=$((STREAMS * 3 + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || echo "bench: cannot raise the descriptor limit to $need" >&2
fi

TMP=$(mktemp -d /tmp/llmpin-bench.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready FILE: prints HOST:PORT once the process wrote it
wait_ready() {
    i=0
    while [ $i -lt 300 ]; do
        if [ -s "$1" ]; then head -n1 "$1"; return 0; fi
        sleep 0.05
        i=$((i + 1))
    done
    echo "bench: $1 never appeared" >&2
    return 1
}

wait_port() {
    i=0
    while [ $i -lt 300 ]; do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
        i=$((i + 1))
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}

# ---- servers ---------------------------------------------------------------
"$MOCK" --listen 127.0.0.1:0 --ready-file "$TMP/mock.ready" --fingerprint fp_bench >/dev/null 2>"$TMP/mock.err" &
PIDS="$PIDS $!"
MOCK_ADDR=$(wait_ready "$TMP/mock.ready")
MOCK_PORT=${MOCK_ADDR##*:}

# start_nginx WORKERS: sets NGINX_PORT. Not called in $(...): the server
# would inherit the substitution's pipe and the shell would wait forever.
start_nginx() {
    n=$1
    port=$(free_port)
    d="$TMP/nginx$n"
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
worker_processes $n;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
    "$NGINX" -p "$d" -c "$d/nginx.conf" >"$d/stdout" 2>"$d/stderr" &
    PIDS="$PIDS $!"
    wait_port "$port"
    NGINX_PORT=$port
}
start_nginx 1
NGINX1_PORT=$NGINX_PORT
start_nginx 2
NGINX2_PORT=$NGINX_PORT

(cd "$TMP" && exec "$LLMPIN" serve --listen 127.0.0.1:0 --upstream "http://$MOCK_ADDR/v1" \
    --no-drift --ready-file "$TMP/llmpin.ready" >/dev/null 2>"$TMP/llmpin.err") &
PIDS="$PIDS $!"
LLMPIN_ADDR=$(wait_ready "$TMP/llmpin.ready")

(cd "$TMP" && exec "$LLMPIN" serve --listen 127.0.0.1:0 --upstream "http://$MOCK_ADDR/v1" \
    --drift-db "$TMP/drift.db" --ready-file "$TMP/llmpin-drift.ready" >/dev/null 2>"$TMP/llmpin-drift.err") &
PIDS="$PIDS $!"
DRIFT_ADDR=$(wait_ready "$TMP/llmpin-drift.ready")

# ---- request rate and latency ---------------------------------------------
# the wrk script: BODIES=unique (default) or same, see chat.lua
cp "$HERE/chat.lua" "$TMP/chat.lua"

# sanity: every path answers the request the same way before it is timed
for a in "$MOCK_ADDR" "127.0.0.1:$NGINX1_PORT" "127.0.0.1:$NGINX2_PORT" "$LLMPIN_ADDR" "$DRIFT_ADDR"; do
    python3 - "$a" <<'EOF'
import http.client, json, sys
h, p = sys.argv[1].rsplit(":", 1)
c = http.client.HTTPConnection(h, int(p), timeout=10)
c.request("POST", "/v1/chat/completions", body=json.dumps({"model": "gpt-4o-mini",
          "messages": [{"role": "user", "content": "hello benchmark"}], "max_tokens": 16}),
          headers={"Content-Type": "application/json"})
r = c.getresponse()
d = json.loads(r.read())
assert r.status == 200 and d["choices"][0]["message"]["content"] == "mock answer to: hello benchmark", (sys.argv[1], r.status, d)
EOF
done

run_wrk() { # name addr
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$TMP/chat.lua" "http://$2/v1/chat/completions" >/dev/null 2>&1 || true
    line=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$TMP/chat.lua" "http://$2/v1/chat/completions" | grep '^RESULT')
    echo "$1 $line" >>"$TMP/results"
}
: >"$TMP/results"
run_wrk direct "$MOCK_ADDR"
run_wrk nginx-1w "127.0.0.1:$NGINX1_PORT"
run_wrk nginx-2w "127.0.0.1:$NGINX2_PORT"
run_wrk llmpin "$LLMPIN_ADDR"
run_wrk llmpin-drift "$DRIFT_ADDR"

# Latency one request at a time (wrk -c1): what a proxy adds to a single
# request when nothing queues. Two alternating rounds, so that a noisy
# minute hits every path alike; the medians of the rounds are reported.
run_lat() { # name addr
    line=$(wrk -t1 -c1 -d"$LAT_DURATION" -s "$TMP/chat.lua" "http://$2/v1/chat/completions" | grep '^RESULT')
    echo "$1 $line" >>"$TMP/lat"
}
: >"$TMP/lat"
for round in 1 2; do
    run_lat direct "$MOCK_ADDR"
    run_lat nginx-1w "127.0.0.1:$NGINX1_PORT"
    run_lat llmpin "$LLMPIN_ADDR"
    run_lat llmpin-drift "$DRIFT_ADDR"
done

echo "== proxy overhead: wrk -t$THREADS -c$CONNS -d$DURATION, small non-stream chat request, $(nproc) cores"
python3 - "$TMP/results" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, _, rest = line.strip().split(" ", 2)
    rows[name] = {k: float(v) for k, v in (kv.split("=") for kv in rest.split())}
print("%-13s %10s %9s %9s %8s %8s" % ("server", "req/s", "p50 ms", "p99 ms", "non2xx", "sockerr"))
for n, r in rows.items():
    print("%-13s %10.0f %9.3f %9.3f %8d %8d" % (n, r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000,
                                               r["non2xx"], r["sockerr"]))
d = rows["direct"]
print()
for n in ("llmpin", "llmpin-drift"):
    for ng in ("nginx-1w", "nginx-2w"):
        print("%s / %s req/s ratio: %.2f" % (n, ng, rows[n]["rps"] / rows[ng]["rps"]))
for n in ("nginx-1w", "nginx-2w", "llmpin", "llmpin-drift"):
    r = rows[n]
    print("%-13s added latency over direct: p50 %+.3f ms, p99 %+.3f ms" % (
        n, (r["p50_us"] - d["p50_us"]) / 1000, (r["p99_us"] - d["p99_us"]) / 1000))
EOF

echo
echo "== one request at a time: wrk -t1 -c1 -d$LAT_DURATION, two alternating rounds (medians)"
python3 - "$TMP/lat" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, _, rest = line.strip().split(" ", 2)
    rows.setdefault(name, []).append({k: float(v) for k, v in (kv.split("=") for kv in rest.split())})
med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in rows.items()}
print("%-13s %10s %9s %9s %14s %14s" % ("server", "req/s", "p50 us", "p99 us", "added p50 us", "added p99 us"))
d = med["direct"]
for n, r in med.items():
    print("%-13s %10.0f %9.0f %9.0f %+14.0f %+14.0f" % (n, r["rps"], r["p50_us"], r["p99_us"],
                                                       r["p50_us"] - d["p50_us"], r["p99_us"] - d["p99_us"]))
EOF

# ---- open-loop latency at fixed rates ----------------------------------------
# The same request sent at a fixed rate whatever the answers do (openloop.c),
# latency counted from each request's scheduled time: what each proxy adds at
# a load it sustains. Rates: OPENLOOP_SHARES of llmpin's closed-loop maximum
# measured above.
OPENLOOP_SHARES=${OPENLOOP_SHARES:-"0.5 0.8"}
cc -O2 -o "$TMP/openloop" "$HERE/openloop.c"
if [ "${BODIES:-unique}" = same ]; then
    printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello benchmark"}],"max_tokens":16}' >"$TMP/body.json"
else  # openloop puts the request number where {n} is
    printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello benchmark {n}"}],"max_tokens":16}' >"$TMP/body.json"
fi
LLMPIN_MAX=$(awk '$1=="llmpin"{for(i=2;i<=NF;i++) if ($i ~ /^rps=/) {sub("rps=","",$i); print int($i)}}' "$TMP/results")
: >"$TMP/open"
for share in $OPENLOOP_SHARES; do
    rate=$(awk -v m="$LLMPIN_MAX" -v s="$share" 'BEGIN{print int(m*s)}')
    for pair in "direct $MOCK_ADDR" "nginx-1w 127.0.0.1:$NGINX1_PORT" "llmpin $LLMPIN_ADDR" "llmpin-drift $DRIFT_ADDR"; do
        set -- $pair
        line=$("$TMP/openloop" "$2" /v1/chat/completions "$TMP/body.json" "$rate" "$LAT_DURATION_S" 64 | grep '^RESULT' || true)
        echo "$share $1 $line" >>"$TMP/open"
    done
done
echo
echo "== open loop: fixed rates (shares of llmpin's maximum), 64 connections, ${LAT_DURATION_S}s each"
python3 - "$TMP/open" <<'EOF'
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 3:
        continue
    kv = {k: float(v) for k, v in (x.split("=") for x in f[3:])}
    rows.append((f[0], f[1], kv))
print("%-6s %-13s %8s %6s %8s %8s %8s %14s %14s" % ("share", "server", "rate", "late", "p50 us", "p90 us",
                                                    "p99 us", "added p50 us", "added p99 us"))
direct = {share: kv for share, name, kv in rows if name == "direct"}
for share, name, kv in rows:
    d = direct.get(share)
    if not d or "p50_us" not in kv:
        print("%-6s %-13s (no result)" % (share, name))
        continue
    print("%-6s %-13s %8.0f %6d %8.0f %8.0f %8.0f %+14.0f %+14.0f" % (
        share, name, kv["rate"], kv["late"], kv["p50_us"], kv["p90_us"], kv["p99_us"],
        kv["p50_us"] - d["p50_us"], kv["p99_us"] - d["p99_us"]))
EOF

# ---- held streams ----------------------------------------------------------
# A config (not flags) so the upstream connection cap is above STREAMS.
cat >"$TMP/hold.json" <<EOF
{
  "server": {"listen": "127.0.0.1:0", "max_connections": $((STREAMS * 2 + 100))},
  "upstreams": {"mock": {"base_url": "http://$MOCK_ADDR/v1", "max_connections": $((STREAMS * 2))}},
  "routes": [{"name": "all", "match": "*", "targets": ["mock"]}]
}
EOF
(cd "$TMP" && exec "$LLMPIN" serve --config "$TMP/hold.json" --no-drift \
    --ready-file "$TMP/llmpin-hold.ready" >/dev/null 2>"$TMP/llmpin-hold.err") &
HOLD_PID=$!
PIDS="$PIDS $HOLD_PID"
HOLD_ADDR=$(wait_ready "$TMP/llmpin-hold.ready")
curl -s -o /dev/null -X POST "http://$MOCK_ADDR/_mock/reset" -d '{}' || true
echo
echo "== $STREAMS concurrent streams (model mock-forever) held through llmpin (pid $HOLD_PID)"
rc=0
python3 "$HERE/hold_streams.py" --addr "$HOLD_ADDR" --pid "$HOLD_PID" --n "$STREAMS" \
    --mock "$MOCK_ADDR" || rc=$?
[ $rc = 0 ] || { echo "bench: not every stream was held (rc=$rc); llmpin stderr tail:"; tail -n 5 "$TMP/llmpin-hold.err"; }
exit $rc
