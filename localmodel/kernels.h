/*
 * kernels.h - the arithmetic under the transformer: weight rows dotted with
 * activations, for F32, F16, BF16 and Q8_0 weights.
 *
 * Decoding one token is memory-bound: every weight byte is read once per
 * step, so the kernels stream each row once and dot it with up to a few
 * activation vectors while it is in L1 (batched decode: several sequences
 * share one read of the weights). Instruction sets are chosen at run time
 * (AVX2+FMA+F16C, AVX-512, AVX-512 VNNI, or portable C); nothing is compiled
 * with -march=native, so one binary runs on any x86-64 and uses what the CPU
 * has.
 *
 * Batch invariance: for a given ISA, the value computed for (row, token) does
 * not depend on how many tokens share the call, so a sequence decodes to the
 * same tokens alone or batched with others.
 *
 * Q8_0 weights are dotted with activations quantized to the same block shape
 * (32 values, one scale per block; here the activation scale is a float) so
 * the inner loop is an int8 dot product, as ggml does.
 */
#ifndef LLMPIN_KERNELS_H
#define LLMPIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "localmodel/gguf.h"

enum lm_isa {
    LM_ISA_SCALAR = 0,
    LM_ISA_AVX2 = 1,        /* AVX2 + FMA + F16C */
    LM_ISA_AVX512 = 2,      /* AVX-512 F/BW/VL (+ the AVX2 set) */
    LM_ISA_AVX512VNNI = 3,  /* the above + VNNI int8 dot products */
};

/* Best ISA this CPU supports. */
enum lm_isa lm_isa_detect(void);
const char *lm_isa_name(enum lm_isa isa);

#define LM_QK8 32
#define LM_QKK 256      /* activation block of the K-quant dots (ggml's Q8_K) */

/* One Q8_0 block exactly as stored in GGUF: fp16 scale then 32 int8. */
struct lm_q8_block {
    uint16_t d;
    int8_t qs[LM_QK8];
};

/* A weight matrix: rows x cols (cols = GGUF ne[0], the contiguous axis).
 * data points into the model mapping; not owned. */
struct lm_wmat {
    const void *data;
    enum gguf_ttype type;       /* F32, F16, BF16 or Q8_0 */
    int rows, cols;
    size_t row_bytes;
};

float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);    /* round to nearest even */
float lm_bf16_to_f32(uint16_t h);
uint16_t lm_f32_to_bf16(float f);   /* round to nearest even */

/* Quantize n tokens' activations x[t*cols ..] (cols a multiple of 32) into
 * qs[t*cols ..] and scales d[t*(cols/32) ..]. */
void lm_quantize_q8(const float *x, int n, int cols, float *d, int8_t *qs);
/* The same with SIMD for isa; the output is identical to lm_quantize_q8's. */
void lm_quantize_q8_isa(enum lm_isa isa, const float *x, int n, int cols, float *d, int8_t *qs);
/* The same with one scale per 256 values (cols a multiple of 256; d gets
 * cols/256 scales per token): the activations of the 256-weight block types
 * (lm_quant_act_block), whose dots then keep each block's sum in integers. */
void lm_quantize_q8k(const float *x, int n, int cols, float *d, int8_t *qs);
void lm_quantize_q8k_isa(enum lm_isa isa, const float *x, int n, int cols, float *d, int8_t *qs);

/* y[t*ldy + r] = dot(row r of w, activation t) for r in [r0, r1), t in
 * [0, n). F32/F16/BF16 weights read x[t*cols ..]; Q8_0 weights read the
 * quantized activations xd/xq made by lm_quantize_q8 (x may be NULL). */
void lm_matmul_rows(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1,
                    const float *x, const float *xd, const int8_t *xq, int n,
                    float *y, size_t ldy);

/* Attention helpers: dot product of two F32 vectors, and y += a * x. */
float lm_vec_dot(enum lm_isa isa, const float *x, const float *y, int n);
void lm_vec_axpy(enum lm_isa isa, float *y, float a, const float *x, int n);

/* Q8_0 prompt product, 16 tokens per vector: lm_q8_interleave16 turns
 * lm_quantize_q8 output for n tokens into groups of 16 (dt: (n+15)/16 * 16 *
 * cols/32 floats, qt: the same * 32 bytes; missing tokens are zero), and
 * lm_gemm_q8 computes y[t*ldy + r] for r in [r0, r1), t < n from it. Faster
 * than lm_matmul_rows for 16 or more tokens with VNNI; it rounds
 * differently (not batch-invariant with lm_matmul_rows). */
void lm_q8_interleave16(const float *xd, const int8_t *xq, int n, int cols, float *dt, uint8_t *qt);
void lm_gemm_q8(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1, const float *dt,
                const uint8_t *qt, int n, float *y, size_t ldy);

/* One attention head for one query: s_p = scale * dot(q, k_p) for the npos
 * positions p (k_p = k + p * stride elements, F32, or F16 if kv_f16; v_p
 * likewise), with softcap > 0 s_p = softcap * tanh(s_p / softcap) (gemma2),
 * then with alibi != 0 s_p -= alibi * (npos - 1 - p) (ALiBi: the query is at the
 * last position; mpt), softmax over p, out[0..hd) = sum_p softmax_p * v_p. sc is scratch for npos
 * floats (left holding the unnormalized exponentials). */
void lm_attn_head(enum lm_isa isa, const float *q, int hd, const void *k, const void *v,
                  int kv_f16, size_t stride, int npos, float scale, float softcap, float alibi,
                  float *sc, float *out);

/* g[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i], for i < n. */
void lm_silu_mul(enum lm_isa isa, float *g, const float *u, int n);

/* Convert rows [r0, r0+nr) of w to F32 into out[nr][cols]. */
void lm_dequant_rows(enum lm_isa isa, const struct lm_wmat *w, int r0, int nr, float *out);

#endif
