/*
 * tok_internal.h - what the tokenizer's parts share: the vocabulary
 * (tokenizer.c owns it: strings, types, hash lookup, special tokens, decoding)
 * and the per-model encoders (SentencePiece in tokenizer.c, byte-level BPE in
 * tok_bpe.c, WordPiece and Unigram in tok_wpm.c / tok_ugm.c).
 *
 * Not a public header: only localmodel/tok*.c include it.
 */
#ifndef LLMPIN_TOK_INTERNAL_H
#define LLMPIN_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "localmodel/tokenizer.h"

struct gguf_file;
struct lm_bpe;

struct lm_tokenizer {
    int kind;            /* LM_TOKENIZER_* */
    int n;
    int bos, eos, unk, sep;
    int add_bos, add_eos, add_space_prefix;
    char *text;          /* all token strings, each NUL-terminated */
    size_t *off;         /* token i is text + off[i], length len[i] */
    uint32_t *len;
    float *score;
    uint8_t *type;
    uint8_t *eog;        /* 1 = ends generation */
    char *dec;           /* decoded pieces */
    size_t *doff;
    uint32_t *dlen;
    int32_t byte_id[256];
    uint32_t *slot;      /* hash table: id + 1, 0 = empty */
    size_t mask;
    int32_t *spec;       /* special ids, grouped by first byte, longest first */
    uint32_t spec_start[257];
    struct lm_bpe *bpe;  /* byte-level BPE: merges and pre-tokenizer */
    char pre[48];        /* tokenizer.ggml.pre as given ("" = none) */
    size_t max_len;      /* longest token string, bytes */
};

struct ivec {
    int32_t *v;
    size_t n, cap;
};

int tok_ivec_push(struct ivec *a, int32_t x);
/* Id of the vocabulary string s[0..n), or -1. */
int tok_lookup(const struct lm_tokenizer *t, const char *s, size_t n);
uint64_t tok_hash(const char *s, size_t n);
/* Length of the UTF-8 sequence at s[0..n) (1 for a stray or broken byte). */
size_t tok_utf8_len(const unsigned char *s, size_t n);

/* ---- byte-level BPE (tok_bpe.c) ------------------------------------------ */

/* Pre-tokenizer settings that change the vocabulary's defaults. */
struct lm_bpe_pre_info {
    int add_bos;         /* default add_bos_token (llama3, tekken, chameleon) */
    int no_bos;          /* the family has no BOS (chatglm) */
    int byte_encode;     /* GPT-2 byte->unicode mapping (else raw UTF-8, ▁ for spaces) */
    int escape_ws;       /* spaces become U+2581 before splitting */
    int clean_spaces;
};

/* Pre-tokenizer by name; NULL with err listing the known names if unknown. */
struct lm_bpe *lm_bpe_new(const char *pre, size_t pre_len, struct lm_bpe_pre_info *info,
                          char *err, size_t errlen);
/* Load tokenizer.ggml.merges (n strings "left right"); rank = position. */
int lm_bpe_set_merges(struct lm_bpe *b, const char *const *m, const uint64_t *lens, size_t n,
                      char *err, size_t errlen);
void lm_bpe_free(struct lm_bpe *b);
/* Encode one run of plain text (no special tokens in it). */
int lm_bpe_encode_run(const struct lm_tokenizer *t, const char *text, size_t len, struct ivec *out);
/* Decoded bytes of a byte-level token string: writes at most n bytes to out
 * (never more than n) and returns the decoded length. */
size_t lm_bpe_decode_piece(const struct lm_bpe *b, const char *s, size_t n, char *out);
/* Space-separated list of known pre-tokenizer names (static). */
const char *lm_bpe_known(void);

/* ---- WordPiece (tok_wpm.c) ---------------------------------------------- */

/* Encode one run of plain text with a BERT vocabulary (word-start pieces
 * prefixed with U+2581, as llama.cpp's converter writes them). */
int lm_wpm_encode_run(const struct lm_tokenizer *t, const char *text, size_t len, struct ivec *out);

#endif
