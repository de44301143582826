/*
 * quants.h - ggml's block-quantized weight types beyond Q8_0: Q4_0, Q4_1,
 * Q5_0, Q5_1, the K-quants Q2_K..Q6_K, IQ4_NL and IQ4_XS (block layouts:
 * ../shared/NOTES.md §6). Dequantization gives exactly the floats ggml's
 * to_float gives (tests/engine/engine_kquant.c checks it against stored
 * output of the libggml node-llama-cpp 3.21.1 bundles).
 *
 * Dot products use int8 activations with a float scale per
 * lm_quant_act_block(t) values: 32 (lm_quantize_q8) for the 32-weight block
 * types, 256 (lm_quantize_q8k, as ggml's Q8_K) for the K-quants and IQ4_XS.
 * Every type's sub-blocks are 16 or 32 weights wide and aligned to those
 * blocks, so the inner loops are integer.
 */
#ifndef LLMPIN_QUANTS_H
#define LLMPIN_QUANTS_H

#include <stddef.h>
#include <stdint.h>
#include "localmodel/gguf.h"
#include "localmodel/kernels.h"

/* 1 for the types of this file. */
int lm_quant_is_block(enum gguf_ttype t);

/* The activation block of t's dots: 256 for the 256-weight block types
 * (Q2_K..Q6_K, IQ4_XS), else 32. */
int lm_quant_act_block(enum gguf_ttype t);

/* n (a multiple of the type's block size) values of a row of type t. */
void lm_quant_dequant(enum gguf_ttype t, const void *row, float *out, size_t n);

/* dot(row of type t, activation) for cols values (a multiple of the block
 * size), the activation quantized with blocks of lm_quant_act_block(t):
 * xd[cols/block] scales, xq[cols] int8. */
float lm_quant_dot_q8(enum lm_isa isa, enum gguf_ttype t, const void *row, const float *xd,
                      const int8_t *xq, int cols);

/* y[t*ldy + r] = dot(row r of w, activation t) for r in [r0, r1), t < n
 * (activation t at xd + t*cols/block, xq + t*cols). Batch-invariant: each
 * value is what lm_quant_dot_q8 gives for that token alone with that isa. */
void lm_quant_rows(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1, const float *xd,
                   const int8_t *xq, int n, float *y, size_t ldy);

#endif
