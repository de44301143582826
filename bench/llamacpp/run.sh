#!/bin/sh
# llmpin's local engine vs llama.cpp on the same GGUF files (bench/llamacpp/README.md).
#
# usage: bench/llamacpp/run.sh [build-dir]
# environment:
#   THREADS=2            thread counts 1..THREADS (llmpin-bench-lm runs 1..N)
#   TYPES="f32 f16 q8_0" weight types (f32 f16 bf16 q8_0)
#   GEN=128              decode steps after the 128-token prompt
#   REPS=3               runs of each engine per type; the table shows the best
#   MODELS_DIR=dir       keep/reuse the models there (default: a temp dir, removed at exit)
#   LLAMACPP_LIB=file    a libllama*.so to use instead of node-llama-cpp's prebuilt one
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-bench}
threads=${THREADS:-2}
types=${TYPES:-f32 f16 q8_0}
gen=${GEN:-128}
reps=${REPS:-3}
pin=3.21.1

# ---- build llmpin's benchmark, the GGUF writer and the llama.cpp driver ----
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target llmpin-bench-lm llmpin-ggufwrite >/dev/null
lm_bench=$build/tests/engine/llmpin-bench-lm
ggufwrite=$build/tools/llmpin-ggufwrite
lc_bench=$build/bench-llamacpp/llamacpp_bench
mkdir -p "$build/bench-llamacpp"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$lc_bench" "$root/bench/llamacpp/llamacpp_bench.c" -ldl

# ---- llama.cpp: node-llama-cpp's prebuilt CPU libraries, outside the repo ----
lib=${LLAMACPP_LIB:-}
if [ -z "$lib" ]; then
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
        echo "run.sh: only linux-x64 prebuilt libraries are wired up; set LLAMACPP_LIB" >&2
        exit 1
    fi
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/llmpin-bench/node-llama-cpp
    have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
        "$cache/node_modules/@node-llama-cpp/linux-x64/package.json" 2>/dev/null | head -n 1)
    if [ "$have" != "$pin" ]; then
        echo "installing node-llama-cpp@$pin into $cache ..." >&2
        mkdir -p "$cache"
        [ -f "$cache/package.json" ] || echo '{ "private": true }' >"$cache/package.json"
        (cd "$cache" && npm i -E --ignore-scripts --no-audit --no-fund "node-llama-cpp@$pin" >&2)
    fi
    # libllama.vX.Y.Z.so (libllama-common.so is llama.cpp's "common" helpers)
    lib=$(ls "$cache"/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.*so \
          2>/dev/null | head -n 1)
fi
[ -f "$lib" ] || { echo "run.sh: no libllama*.so found ($lib)" >&2; exit 1; }

# ---- models: the shape llmpin-bench-lm uses, so it reuses the same files ----
if [ -n "${MODELS_DIR:-}" ]; then
    dir=$MODELS_DIR
    mkdir -p "$dir"
    work=$(mktemp -d "${TMPDIR:-/tmp}/llmpin-llamacpp.XXXXXX")
    trap 'rm -rf "$work"' EXIT
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/llmpin-llamacpp.XXXXXX")
    work=$dir
    trap 'rm -rf "$dir"' EXIT
fi
for t in $types; do
    f=$dir/llmpin-bench-110m-$t.gguf
    [ -f "$f" ] || "$ggufwrite" --out "$f" --vocab 32000 --dim 768 --layers 12 --heads 12 \
        --kv-heads 12 --ffn 2048 --ctx 2048 --type "$t" --tied --seed 1
done

# ---- run both engines, type by type and rep by rep, so that a change in
# machine load hits both; the best of the reps goes in the table ----
tlist=$(seq -s, 1 "$threads")
echo "llama.cpp: $lib (node-llama-cpp $pin)"
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) CPUs;" \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$reps"); do
    for t in $types; do
        f=$dir/llmpin-bench-110m-$t.gguf
        echo "== $t, rep $r: llmpin"
        "$lm_bench" --dir "$dir" --types "$t" --threads "$threads" --gen "$gen" --quick \
            >"$work/lm-$t-$r.txt"
        cat "$work/lm-$t-$r.txt"
        echo "== $t, rep $r: llama.cpp"
        "$lc_bench" --lib "$lib" --model "$f" --threads "$tlist" --gen "$gen" --label "$t" \
            >"$work/lc-$t-$r.txt" 2>"$work/lc-$t.log" || { cat "$work/lc-$t.log" >&2; exit 1; }
        cat "$work/lc-$t-$r.txt"
        [ "$r" -gt 1 ] || grep -E 'loaded CPU backend|loaded /|flash_attn' "$work/lc-$t.log" | sort -u
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- side by side; ratio = llmpin / llama.cpp (> 1: llmpin is faster) ----
echo
echo "prompt: 128 tokens; decode: $gen tokens; best of $reps runs; ratio = llmpin / llama.cpp"
printf '%-5s %3s %12s %12s %6s %12s %12s %6s\n' type thr "llmpin pp" "llama.cpp pp" ratio \
    "llmpin tg" "llama.cpp tg" ratio
for t in $types; do
    cat "$work"/lm-"$t"-*.txt | sed 's/^/lm /' >"$work/all-$t.txt"
    cat "$work"/lc-"$t"-*.txt | sed 's/^/lc /' >>"$work/all-$t.txt"
    awk -v t="$t" '
        $2 == t && $3 ~ /^[0-9]+$/ {
            k = $1 SUBSEP $3
            if ($4 > pp[k]) pp[k] = $4
            if ($5 > tg[k]) tg[k] = $5
            thr[$3] = 1
        }
        END {
            for (n = 1; n <= 256; n++) {
                if (!(n in thr)) continue
                a = "lm" SUBSEP n; b = "lc" SUBSEP n
                if (!(a in pp) || !(b in pp)) continue
                printf "%-5s %3d %12.1f %12.1f %5.2fx %12.2f %12.2f %5.2fx\n", t, n,
                       pp[a], pp[b], pp[a] / pp[b], tg[a], tg[b], tg[a] / tg[b]
            }
        }' "$work/all-$t.txt"
done
