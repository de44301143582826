#!/bin/sh
# Writes the fuzz_model seeds (tiny random-weight models of every
# architecture, 20-30 KB each) into OUTDIR with llmpin-ggufwrite, so that no
# model file is kept in the repository. Used by run.sh and by the
# fuzz_replay_model ctest.
#   tests/fuzz/model_seeds.sh OUTDIR path/to/llmpin-ggufwrite
set -e
out=$1
w=$2
[ -n "$out" ] && [ -x "$w" ] || { echo "usage: model_seeds.sh OUTDIR LLMPIN-GGUFWRITE" >&2; exit 2; }
mkdir -p "$out"
for a in llama qwen2 qwen3 phi3 gemma2 gemma3 falcon mpt; do
  "$w" --out "$out/$a-q8_0.gguf" --vocab 259 --dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 64 \
       --ctx 64 --seed 3 --arch "$a" --type q8_0 --tied
done
"$w" --out "$out/llama-q4_k_m.gguf" --vocab 259 --dim 32 --layers 1 --heads 2 --ffn 64 --ctx 64 \
     --arch llama --type q4_k_m --tied --rope-freqs
