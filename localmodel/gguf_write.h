/*
 * gguf_write.h - a small GGUF v3 writer for test fixtures and benchmarks,
 * a random-weight llama model generator, and reference fp32 <-> F16 / BF16 /
 * Q8_0 row conversions (laid out exactly as ggml stores them).
 *
 * The writer only produces VALID files; hostile-input tests build bytes by
 * hand. Errors while adding are sticky (like stdio): the add functions return
 * -1 and remember the first error, and gguf_writer_write_*() reports it.
 */
#ifndef LLMPIN_GGUF_WRITE_H
#define LLMPIN_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include "localmodel/gguf.h"

struct gguf_writer;

/* New empty writer (alignment 32). Free with gguf_writer_free. */
struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);

/* Metadata, in insertion order. Keys are copied; a duplicate key is an
 * error. Adding "general.alignment" (u32, power of two) sets the alignment. */
int gguf_writer_add_u8(struct gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_add_i8(struct gguf_writer *w, const char *key, int8_t v);
int gguf_writer_add_u16(struct gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_add_i16(struct gguf_writer *w, const char *key, int16_t v);
int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v);
int gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_add_i64(struct gguf_writer *w, const char *key, int64_t v);
int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_add_f64(struct gguf_writer *w, const char *key, double v);
int gguf_writer_add_bool(struct gguf_writer *w, const char *key, int v);
int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v);
/* String with explicit length (may contain NUL bytes). */
int gguf_writer_add_strn(struct gguf_writer *w, const char *key, const char *v, size_t len);
/* Array of a fixed-size element type (not STRING/ARRAY); data holds n
 * elements in that type's little-endian layout (bool: one byte, 0 or 1). */
int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype et,
                        const void *data, uint64_t n);
int gguf_writer_add_arr_str(struct gguf_writer *w, const char *key, const char *const *s,
                            uint64_t n);

/* Tensor info. ne[] in ggml order (ne[0] = row length), 1..4 dims; ne[0]
 * must be a multiple of the type's block size. If data is not NULL, nbytes
 * (= gguf_ttype_nbytes(type, nelements)) are copied now; if NULL, the data is
 * produced at write time by the fill callback. Tensors are laid out in
 * insertion order, each aligned. */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t n_dims,
                           const uint64_t *ne, enum gguf_ttype type, const void *data);

/* Fills dst (nbytes) with the data of tensor number `index` (insertion
 * order). Returns 0, or -1 to abort the write. */
typedef int (*gguf_writer_fill_fn)(void *ud, uint64_t index, void *dst, uint64_t nbytes);

/* Write the file (buffered; written to "<path>.tmp" then renamed). fill may
 * be NULL if every tensor was given data. 0 or -1 with err. */
int gguf_writer_write_file(struct gguf_writer *w, const char *path, gguf_writer_fill_fn fill,
                           void *ud, char *err, size_t errlen);
/* Same into memory: *out is malloc'd (caller frees), *len its size. */
int gguf_writer_write_mem(struct gguf_writer *w, void **out, size_t *len,
                          gguf_writer_fill_fn fill, void *ud, char *err, size_t errlen);

/* ---- random llama models ------------------------------------------------ */

struct lm_llama_shape {
    uint32_t n_vocab;          /* >= 259: 3 specials + 256 byte tokens + fillers */
    uint32_t dim;              /* embedding length */
    uint32_t n_layers;
    uint32_t n_heads;          /* dim % n_heads == 0, head size even */
    uint32_t n_kv_heads;       /* n_heads % n_kv_heads == 0 */
    uint32_t ffn_dim;
    uint32_t context_length;
    float rope_freq_base;      /* 0 = 10000 */
    float rms_eps;             /* 0 = 1e-5 */
    enum gguf_ttype type;      /* matrices incl. token_embd/output: F32, F16, BF16, Q8_0,
                                  Q4_K (the Q4_K_M mix) or Q6_K; norms are always F32 */
    int tied_output;           /* 1: no output.weight (token_embd is reused) */
    uint64_t seed;
    const char *chat_template; /* tokenizer.chat_template, NULL = none */
    const char *const *str_kv; /* more string keys: key, value, ..., NULL; NULL = none */
    const char *name;          /* general.name, NULL = "llmpin-random-llama" */
    const struct gguf_file *vocab_from; /* copy every tokenizer.* key from this file
                                           (n_vocab must be its token count) instead of
                                           the generated vocabulary; NULL = generate */
    /* Other architectures (NULL = "llama"): "qwen2" adds Q/K/V biases,
     * "qwen3" per-head Q/K norms, "phi3" fused attn_qkv and a [dim, 2 ffn]
     * ffn_up, "gemma2" post-attention/post-FFN norms and no output.weight,
     * "gemma3" both norms kinds, "falcon" LayerNorm biases, a fused
     * attn_qkv and an ungated ffn_up (attention and MLP in parallel), "mpt"
     * LayerNorm without biases, a fused attn_qkv, an ungated ffn_up and no
     * rotary tensors (ALiBi). Outside llama, norms are random in
     * [0.75, 1.25] so that a missed norm shows. */
    const char *arch;
    uint32_t head_dim;         /* attention.key_length; 0 = dim / n_heads */
    int rope_freqs;            /* write rope_freqs.weight (Llama 3.x factors, in [1, 4]) */
    uint32_t sliding_window;   /* <arch>.attention.sliding_window; 0 = not written */
    uint32_t swa_pattern;      /* <arch>.attention.sliding_window_pattern; 0 = not written */
    float attn_softcap, final_softcap; /* <arch>.*_logit_softcapping; 0 = not written */
    const char *rope_scaling;  /* <arch>.rope.scaling.type ("linear", "yarn"); NULL = not written */
    float rope_factor;         /* <arch>.rope.scaling.factor (with rope_scaling) */
    uint32_t rope_orig_ctx;    /* <arch>.rope.scaling.original_context_length; 0 = not written */
    float rope_attn_factor;    /* <arch>.rope.scaling.attn_factor; 0 = not written */
    int rope_long_short;       /* write rope_factors_long/short.weight (phi3 longrope), in [1, 4] */
    float alibi_bias;          /* mpt.attention.max_alibi_bias; 0 = 8 (MPT's) for mpt */
    float clamp_kqv;           /* <arch>.attention.clamp_kqv; 0 = not written */
};

/* Copy one key (any type, arrays included) from a file being read. */
struct gguf_kv;
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv);

/* Write a llama GGUF with real llama tensor names and metadata, a
 * SentencePiece-style vocabulary (<unk>, <s>, </s>, <0x00>..<0xFF>, then
 * deterministic filler pieces) and deterministic random weights: uniform in
 * +-1/sqrt(ne[0]) from the seed, norms = 1. Same shape+seed => same bytes. */
int lm_write_random_llama(const char *path, const struct lm_llama_shape *s, char *err,
                          size_t errlen);

/* The fp32 values lm_write_random_llama() generates for the named tensor
 * (before conversion to the matrix type): n must be its element count.
 * Returns 0, or -1 if the shape has no such tensor or n is wrong. */
int lm_random_llama_tensor(const struct lm_llama_shape *s, const char *name, float *out,
                           uint64_t n);

/* Filler token piece for id (>= 259) as written by lm_write_random_llama;
 * writes a NUL-terminated UTF-8 string into buf (>= 32 bytes). */
void lm_random_llama_piece(uint32_t id, char *buf, size_t buflen);

/* ---- conversions -------------------------------------------------------- */

uint16_t lm_fp32_to_fp16(float f);     /* IEEE half, round to nearest even */
float lm_fp16_to_fp32(uint16_t h);
uint16_t lm_fp32_to_bf16(float f);     /* round to nearest even; NaN stays NaN */
float lm_bf16_to_fp32(uint16_t h);

void lm_row_to_f16(const float *x, uint16_t *y, size_t n);
void lm_row_from_f16(const uint16_t *x, float *y, size_t n);
void lm_row_to_bf16(const float *x, uint16_t *y, size_t n);
void lm_row_from_bf16(const uint16_t *x, float *y, size_t n);

/* Q8_0: blocks of 32 elements, each 34 bytes: fp16 scale d = max|x|/127,
 * then 32 int8 q = round(x/d). n must be a multiple of 32 (else -1). */
#define LM_Q8_0_BLOCK 32
#define LM_Q8_0_BYTES 34
int lm_row_to_q8_0(const float *x, void *y, size_t n);
int lm_row_from_q8_0(const void *x, float *y, size_t n);

/* Dispatch on type: F32, F16, BF16, Q8_0. -1 for other types or a bad n. */
int lm_row_to_type(enum gguf_ttype t, const float *x, void *y, size_t n);
int lm_row_from_type(enum gguf_ttype t, const void *x, float *y, size_t n);

#endif
