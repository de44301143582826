/*
 * model.h - decoder-only transformers on the CPU: llama (incl. Llama 3.x
 * rope factors and scaling), qwen2, qwen3, phi3, gemma2 and gemma3, as one
 * forward pass driven by each architecture's description (hyperparameters
 * and flags), not one copy per model.
 *
 * lm_model: hyperparameters and weight views into a GGUF mapping (no copies
 * of matrices; fused QKV and gate/up tensors are viewed as their parts).
 * Loading checks the architecture, every hyperparameter's range, and every
 * tensor's presence, exact shape and type (model_load.c).
 *
 * lm_kv: one sequence's key/value cache (F32 or F16), allocated lazily by
 * the kernel (anonymous mmap), so a large context costs memory only as far
 * as it is used.
 *
 * lm_ctx: the scratch buffers and worker pool for running forward passes. A
 * forward pass takes a batch of tokens, each with its own position and KV
 * cache: a prompt chunk (one sequence, consecutive positions) or one decode
 * step of several sequences. Decode uses row-dot kernels whose results do not
 * depend on the batch; long prompt chunks use OpenBLAS sgemm on F32 weight
 * tiles for F32/F16/BF16 weights, and an int8 product (VNNI where the CPU
 * has it, int8 tiles otherwise) for Q8_0 weights.
 */
#ifndef LLMPIN_MODEL_H
#define LLMPIN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "localmodel/gguf.h"
#include "localmodel/kernels.h"
#include "localmodel/pool.h"

#define LM_MAX_LAYERS 512

enum lm_arch {
    LM_ARCH_LLAMA, LM_ARCH_QWEN2, LM_ARCH_QWEN3, LM_ARCH_PHI3, LM_ARCH_GEMMA2, LM_ARCH_GEMMA3,
    LM_ARCH_FALCON, LM_ARCH_MPT,
};
/* "llama, qwen2, qwen3, phi3, gemma2, gemma3, falcon, mpt": the architectures that load. */
extern const char LM_ARCHS_SUPPORTED[];

enum lm_rope_scaling { LM_ROPE_NONE, LM_ROPE_LINEAR, LM_ROPE_YARN, LM_ROPE_LONGROPE };

/* One rotary embedding as ggml_rope_ext computes it: for pair i of
 * rope_dim/2, theta = pos * base^(-2i/rope_dim) / factors[i], interpolated
 * by freq_scale (YaRN: blended with the extrapolated angle by ext_factor
 * between the correction dims corr[0..1]); cos and sin scaled by mscale. */
struct lm_rope {
    float base, freq_scale, ext_factor, mscale, corr[2];
    const float *factors;        /* [rope_dim/2] or NULL */
};

struct lm_hparams {
    enum lm_arch arch;
    int n_vocab;
    int dim;                 /* embedding_length */
    int n_layers;            /* block_count */
    int n_heads, n_kv_heads;
    int head_dim;            /* attention.key_length (default dim / n_heads) */
    int q_dim;               /* n_heads * head_dim: rows of attn_q, columns of attn_output */
    int ffn_dim;             /* feed_forward_length */
    int n_ctx_train;         /* context_length */
    int rope_dim;            /* rope.dimension_count (default head_dim) */
    int rope_neox;           /* rotate (i, i + rope_dim/2) pairs, not (2i, 2i+1) */
    float rope_base;         /* rope.freq_base (default 10000) */
    float norm_eps;          /* attention.layer_norm_rms_epsilon */
    enum lm_rope_scaling rope_scaling;
    float rope_freq_scale;   /* 1 / rope.scaling.factor */
    float rope_attn_factor;  /* rope.scaling.attn_factor (default 1) */
    int n_ctx_orig;          /* rope.scaling.original_context_length (default context_length) */
    float rope_base_swa;     /* sliding-window layers' rope base (gemma3) */
    int n_swa;               /* sliding window (0: none): a key at p0 is seen from p1 iff p1 - p0 < n_swa */
    int gelu;                /* GeGLU feed-forward (gemma), else SwiGLU; GELU without a gate (falcon) */
    int layer_norm;          /* LayerNorm (mean and variance, weight and bias), else RMSNorm */
    int parallel;            /* attention and feed-forward both read the layer input (falcon) */
    int ffn_gated;           /* act(gate) * up; else act(up) */
    int rope;                /* rotary embedding on Q and K (all but mpt) */
    float alibi_bias;        /* ALiBi's maximum bias (attention.max_alibi_bias, mpt); 0 = none */
    float clamp_kqv;         /* Q, K, V clamped to [-c, c] (attention.clamp_kqv); 0 = none */
    float emb_scale;         /* embeddings times this (gemma: sqrt(dim)); 0 = 1 */
    float attn_scale;        /* q.k multiplier (default 1/sqrt(head_dim)) */
    float attn_softcap;      /* scores -> c tanh(s / c) before the softmax; 0 = none */
    float final_softcap;     /* the same on the logits */
};

struct lm_layer {
    const float *attn_norm, *ffn_norm;   /* [dim] (ffn_norm NULL for parallel layers) */
    const float *attn_norm_b, *ffn_norm_b; /* LayerNorm biases or NULL */
    const float *attn_norm2, *attn_norm2_b; /* falcon 40B: the attention's own input norm, or NULL */
    const float *attn_post_norm, *ffn_post_norm; /* [dim] (gemma2/3) or NULL */
    const float *q_norm, *k_norm;        /* [head_dim] per-head RMSNorm (qwen3, gemma3) or NULL */
    struct lm_wmat wq, wk, wv, wo;       /* wq: q_dim x dim, wk/wv: kv_dim x dim, wo: dim x q_dim */
    struct lm_wmat w_gate, w_up, w_down; /* ffn x dim, ffn x dim, dim x ffn */
    const float *bq, *bk, *bv, *bo;      /* biases or NULL (qwen2: q, k, v) */
    const float *b_gate, *b_up, *b_down;
    int swa;                             /* this layer attends over a sliding window */
};

struct lm_model {
    struct lm_hparams hp;
    struct lm_wmat tok_embd;             /* n_vocab x dim */
    struct lm_wmat output;               /* n_vocab x dim (= tok_embd when tied) */
    const float *out_norm, *out_norm_b;
    const float *out_bias;               /* [n_vocab] or NULL */
    const float *rope_freqs;             /* [rope_dim/2] Llama 3.x factors, or NULL */
    const float *rope_long, *rope_short; /* phi3 longrope factors, or NULL */
    struct lm_layer *layers;
    int tied_output;
    uint64_t n_params;                   /* elements of all tensors */
    uint64_t weight_bytes;               /* bytes read per decoded token (all matrices) */
    float **owned;                       /* F32 copies of vectors stored in other types */
    int n_owned;
};

/* Build a model over f (f must outlive the model). 0 or <0 with err naming
 * the key or tensor, e.g. "tensor 'blk.3.attn_k.weight': expected shape
 * [64, 32], got [64, 64]". *out freed with lm_model_free. */
int lm_model_load(const struct gguf_file *f, struct lm_model **out, char *err, size_t errlen);
void lm_model_free(struct lm_model *m);
const char *lm_arch_name(enum lm_arch a);

/* The rotary embedding of layer-kind swa (0: full-attention layers) for
 * contexts of n_ctx positions (phi3 picks its long factors past
 * n_ctx_orig), with llama.cpp's defaults for YaRN. */
void lm_model_rope(const struct lm_model *m, int swa, int n_ctx, struct lm_rope *r);

enum lm_kv_type { LM_KV_F32 = 0, LM_KV_F16 = 1 };

struct lm_kv {
    int n_ctx, n_layers, kv_dim;
    enum lm_kv_type type;
    void *k, *v;             /* [layer][kv_head][pos][head_dim] each: one head's
                              * keys (or values) are one contiguous stream */
    size_t bytes;            /* of each of k and v */
};

/* Bytes one sequence's cache of n_ctx positions takes once full (keys and
 * values, every layer). */
uint64_t lm_kv_bytes(const struct lm_model *m, int n_ctx, enum lm_kv_type type);

/* Physical memory of this machine in bytes (0 if unknown). */
uint64_t lm_mem_total(void);

/* Refuse up front a model whose weights (the mapped tensor data) and n_seq
 * full caches of n_ctx positions do not fit in mem bytes of memory: -1 with
 * err giving the numbers and what to lower, else 0. */
int lm_model_fits(const struct lm_model *m, uint64_t weights, int n_ctx, int n_seq,
                  enum lm_kv_type type, uint64_t mem, char *err, size_t errlen);

struct lm_kv *lm_kv_new(const struct lm_model *m, int n_ctx, enum lm_kv_type type,
                        char *err, size_t errlen);
void lm_kv_free(struct lm_kv *kv);

struct lm_ctx;

/* Scratch for batches of up to max_tokens tokens attending over up to n_ctx
 * positions. pool is borrowed (may be shared by contexts used one at a time).
 * Free with lm_ctx_free. */
struct lm_ctx *lm_ctx_new(const struct lm_model *m, struct lm_pool *pool, int max_tokens,
                          int n_ctx, enum lm_isa isa, char *err, size_t errlen);
void lm_ctx_free(struct lm_ctx *c);
int lm_ctx_max_tokens(const struct lm_ctx *c);

/* One forward pass. Token i is tokens[i] at position pos[i] of the sequence
 * whose cache is kv[i]; a sequence's tokens must be at consecutive positions
 * in order, and its earlier positions must already be in its cache.
 * Logits (n_vocab floats each) are written to logits for every i with
 * want_logits[i] != 0 (all if want_logits is NULL), in order. If hidden is
 * not NULL, the final-normed hidden states [n][dim] are written there.
 * prefill != 0 says all tokens belong to one sequence: large batches then use
 * the prompt products (sgemm, or int8 for Q8_0: slightly different rounding). Returns 0 or <0 with err. */
struct lm_batch {
    int n;
    const int32_t *tokens;
    const int *pos;
    struct lm_kv *const *kv;
    const uint8_t *want_logits;
    float *logits;
    float *hidden;
    int prefill;
};
int lm_forward(struct lm_ctx *c, const struct lm_batch *b, char *err, size_t errlen);

#endif
