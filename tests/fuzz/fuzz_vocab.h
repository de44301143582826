/*
 * fuzz_vocab.h - the tokenizers the tokenizer and chat fuzz targets encode
 * with, built once at start-up.
 *
 * fuzz_vocab_small() is a vocabulary made in memory with the project's GGUF
 * writer and read back through gguf_open_buffer + lm_tok_from_gguf, the path
 * a model file takes: <unk> <s> </s>, the 256 byte tokens, the chat markers
 * of every family as CONTROL tokens, and a few hundred merge pieces with
 * scores. fuzz_vocab_model() is stories260K.gguf (a real SentencePiece
 * vocabulary) from $LLMPIN_FUZZ_VOCAB or the models directory baked in by
 * CMake, or NULL when the file is not there. Both live until exit: a fuzzer
 * process ends without freeing them, as libFuzzer expects of start-up state.
 */
#ifndef LLMPIN_FUZZ_VOCAB_H
#define LLMPIN_FUZZ_VOCAB_H

#include "localmodel/gguf.h"
#include "localmodel/gguf_write.h"
#include "localmodel/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every family's turn markers (chat.c), CONTROL tokens in the small vocab. */
static const char *const fuzz_markers[] = {
    "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eot_id|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<|user|>",
    "<|assistant|>", "<|system|>", "<|end|>", "<start_of_turn>", "<end_of_turn>",
};
#define FUZZ_N_MARKERS (sizeof fuzz_markers / sizeof fuzz_markers[0])

static inline struct lm_tokenizer *fuzz_vocab_from_gguf(const void *buf, size_t len, const char *name)
{
    struct gguf_file *f = NULL;
    char err[512];
    if (gguf_open_buffer(buf, len, name, &f, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_vocab: %s\n", err);
        abort();
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    if (!t) {
        fprintf(stderr, "fuzz_vocab: %s\n", err);
        abort();
    }
    gguf_close(f);
    return t;
}

static inline struct lm_tokenizer *fuzz_vocab_small(void)
{
    /* ASCII pieces that merge: letters, "▁"+letter, common bigrams and words */
    static const char *const words[] = {
        "the", "he", "th", "in", "an", "er", "on", "re", "at", "ou", "it", "is", "and",
        "ing", "hello", "world", "user", "assistant", "system", "tool", "model", "You",
        "are", "a", "helpful", "{", "}", "\":", "\",", "()", "12", "123", "00", "\n\n",
    };
    enum { N_WORDS = sizeof words / sizeof words[0] };
    const int n = 3 + 256 + (int)FUZZ_N_MARKERS + 26 + 26 + 2 * N_WORDS + 2;
    const char **tok = calloc((size_t)n, sizeof *tok);
    char (*store)[16] = calloc((size_t)n, sizeof *store);
    float *score = calloc((size_t)n, sizeof *score);
    int32_t *type = calloc((size_t)n, sizeof *type);
    if (!tok || !store || !score || !type) abort();
    int k = 0;
    tok[k] = "<unk>"; type[k++] = LM_TOK_UNKNOWN;
    tok[k] = "<s>"; type[k++] = LM_TOK_CONTROL;
    tok[k] = "</s>"; type[k++] = LM_TOK_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(store[k], sizeof store[k], "<0x%02X>", b);
        tok[k] = store[k];
        type[k++] = LM_TOK_BYTE;
    }
    for (size_t i = 0; i < FUZZ_N_MARKERS; i++) {
        tok[k] = fuzz_markers[i];
        type[k++] = LM_TOK_CONTROL;
    }
    for (int c = 0; c < 26; c++) {
        store[k][0] = (char)('a' + c);
        tok[k] = store[k];
        score[k] = -100.0f;
        type[k++] = LM_TOK_NORMAL;
        snprintf(store[k], sizeof store[k], "\xe2\x96\x81%c", 'a' + c);
        tok[k] = store[k];
        score[k] = -50.0f - (float)c;
        type[k++] = LM_TOK_NORMAL;
    }
    for (int i = 0; i < N_WORDS; i++) {
        tok[k] = words[i];
        score[k] = -(float)i;
        type[k++] = LM_TOK_NORMAL;
        snprintf(store[k], sizeof store[k], "\xe2\x96\x81%s", words[i]);
        tok[k] = store[k];
        score[k] = -(float)i - 0.5f;
        type[k++] = LM_TOK_NORMAL;
    }
    tok[k] = "\xe2\x96\x81"; score[k] = -200.0f; type[k++] = LM_TOK_NORMAL;
    tok[k] = " "; score[k] = -300.0f; type[k++] = LM_TOK_NORMAL;
    if (k != n) abort();

    struct gguf_writer *w = gguf_writer_new();
    char err[512];
    void *buf = NULL;
    size_t len = 0;
    if (!w || gguf_writer_add_str(w, "general.architecture", "llama") ||
        gguf_writer_add_str(w, "tokenizer.ggml.model", "llama") ||
        gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n) ||
        gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, score, (uint64_t)n) ||
        gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_T_INT32, type, (uint64_t)n) ||
        gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1) ||
        gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2) ||
        gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0) ||
        gguf_writer_write_mem(w, &buf, &len, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_vocab: the GGUF writer failed: %s\n", w ? err : "out of memory");
        abort();
    }
    gguf_writer_free(w);
    struct lm_tokenizer *t = fuzz_vocab_from_gguf(buf, len, "fuzz-vocab.gguf");
    free(buf);
    free(tok);
    free(store);
    free(score);
    free(type);
    return t;
}

static inline struct lm_tokenizer *fuzz_vocab_model(void)
{
    const char *path = getenv("LLMPIN_FUZZ_VOCAB");
#ifdef LLMPIN_MODELS_DIR
    if (!path || !*path) path = LLMPIN_MODELS_DIR "/stories260K.gguf";
#endif
    if (!path || !*path) return NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (!buf || fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        fprintf(stderr, "fuzz_vocab: cannot read %s\n", path);
        abort();
    }
    fclose(fp);
    struct lm_tokenizer *t = fuzz_vocab_from_gguf(buf, (size_t)size, path);
    free(buf);
    return t;
}

#endif
