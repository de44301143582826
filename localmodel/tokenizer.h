/*
 * tokenizer.h - the tokenizers of GGUF files:
 *   - "llama": SentencePiece-style BPE: merges by score, U+2581 for spaces, a
 *     leading space prefix, byte fallback through <0xXX> tokens;
 *   - "gpt2": byte-level BPE: a pre-tokenizer named by tokenizer.ggml.pre
 *     splits the text (PCRE2 patterns), the GPT-2 byte->unicode mapping, merges
 *     ranked by their position in tokenizer.ggml.merges.
 *
 * Built from plain arrays, so it is independent of the GGUF reader; the model
 * loader copies the arrays out of the file. All strings are copied.
 */
#ifndef LLMPIN_TOKENIZER_H
#define LLMPIN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* token_type values as in GGUF */
enum { LM_TOK_NORMAL = 1, LM_TOK_UNKNOWN = 2, LM_TOK_CONTROL = 3,
       LM_TOK_USER = 4, LM_TOK_UNUSED = 5, LM_TOK_BYTE = 6 };

struct lm_tokenizer;

enum { LM_TOKENIZER_SPM = 0, LM_TOKENIZER_BPE, LM_TOKENIZER_WPM, LM_TOKENIZER_UGM };

/* tokens[i] has length lens[i] (not NUL-terminated). scores and types may be
 * NULL (scores 0, types NORMAL except <0xXX> -> BYTE). bos/eos/unk may be -1.
 * Returns NULL with err on invalid input (e.g. special id >= n_vocab). */
struct lm_tokenizer *lm_tok_new(int n_vocab, const char *const *tokens, const uint32_t *lens,
                                const float *scores, const int32_t *types,
                                int bos, int eos, int unk, int add_bos, int add_space_prefix,
                                char *err, size_t errlen);
void lm_tok_free(struct lm_tokenizer *t);

int lm_tok_n_vocab(const struct lm_tokenizer *t);
int lm_tok_bos(const struct lm_tokenizer *t);
int lm_tok_eos(const struct lm_tokenizer *t);
int lm_tok_add_bos(const struct lm_tokenizer *t);
/* LM_TOKENIZER_* of t, and the GGUF name of that kind ("llama", "gpt2"...). */
int lm_tok_kind(const struct lm_tokenizer *t);
const char *lm_tok_kind_name(const struct lm_tokenizer *t);
/* tokenizer.ggml.pre of a byte-level BPE vocabulary ("" otherwise). */
const char *lm_tok_pre(const struct lm_tokenizer *t);
/* 1 if id ends generation: the EOS, EOT and EOM tokens the file names and
 * the end-of-turn tokens chat models use (<|eot_id|>, <|im_end|>,
 * <end_of_turn>, <|end|>, <|endoftext|>...), as llama.cpp decides them. */
int lm_tok_is_eog(const struct lm_tokenizer *t, int32_t id);

/* Id of an exact token string (e.g. "<|eot_id|>"), or -1. */
int lm_tok_find(const struct lm_tokenizer *t, const char *piece);

/* Flags of the add_bos argument below: LM_TOK_ADD_BOS prepends BOS (so a
 * plain 1 still means "BOS"), LM_TOK_ADD_EOS appends EOS. */
enum { LM_TOK_ADD_BOS = 1, LM_TOK_ADD_EOS = 2 };
/* What the vocabulary asks for around a text: tokenizer.ggml.add_bos_token
 * and add_eos_token as LM_TOK_ADD_* flags (llama.cpp's add_special). */
int lm_tok_add_special(const struct lm_tokenizer *t);

/* Encode UTF-8 text. Writes at most cap ids into out and returns the total
 * number of ids the text needs (may exceed cap: call again with more room),
 * or -1 on error. add_bos: LM_TOK_ADD_* flags. parse_special: text such as "<s>" or
 * "<|im_start|>" matching a CONTROL/USER token is emitted as that token. */
int lm_tok_encode(const struct lm_tokenizer *t, const char *text, size_t len,
                  int add_bos, int parse_special, int32_t *out, int cap);

/* Bytes of token id for output: byte tokens give their byte, U+2581 becomes
 * a space, control tokens give "" . `prev` is the previous token id (-1 at
 * the start): after BOS, a leading space is dropped, like SentencePiece. */
const char *lm_tok_piece(const struct lm_tokenizer *t, int32_t prev, int32_t id, size_t *len);

/* ---- additions (text helper) ---------------------------------------------- */

/* Encoding details (SentencePiece/llama.cpp behaviour): the space prefix is
 * added at the start of the text and after every special token; USER-type
 * tokens are split out even when parse_special is 0; characters that are not
 * pieces become <0xXX> byte tokens (UNK when the vocabulary has none). Text
 * containing U+2581 decodes with a space in its place. */

/* Like lm_tok_encode with parse_special = 1, except that no special token is
 * recognised inside the byte ranges [plain[2k], plain[2k+1]) (k < n_plain,
 * sorted, non-overlapping, within len), nor straddling their edges. For
 * rendered chat prompts: the template's markers are special tokens, the
 * messages' content is only text, so a user cannot inject "<|im_start|>".
 * Returns -1 on invalid spans. */
int lm_tok_encode_spans(const struct lm_tokenizer *t, const char *text, size_t len, int add_bos,
                        const size_t *plain, int n_plain, int32_t *out, int cap);

int lm_tok_unk(const struct lm_tokenizer *t);
/* LM_TOK_* type of id (0 = undefined is reported as LM_TOK_NORMAL), or -1
 * if id is out of range. */
int lm_tok_type(const struct lm_tokenizer *t, int32_t id);
/* The raw vocabulary string of id (e.g. "<s>", "\xe2\x96\x81the"), NUL-
 * terminated, owned by t; "" with *len 0 if id is out of range. For chat
 * templates that need the BOS/EOS text. */
const char *lm_tok_text(const struct lm_tokenizer *t, int32_t id, size_t *len);

/* Build a tokenizer from a GGUF file's metadata: tokenizer.ggml.model
 * "llama" or "gpt2" (then tokenizer.ggml.merges and tokenizer.ggml.pre, whose
 * unknown values are refused naming the known ones); tokens (string array), scores (float32 array of n_vocab, optional),
 * token_type (int32 array of n_vocab, optional), bos/eos/unknown_token_id
 * (defaults 1/2/0), add_bos_token (default true), add_space_prefix (default
 * true). Returns NULL with err naming the file and key on failure. The
 * result does not reference f (strings are copied). */
struct gguf_file;
struct lm_tokenizer *lm_tok_from_gguf(const struct gguf_file *f, char *err, size_t errlen);

#endif
