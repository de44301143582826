/*
 * fuzz_tokenizer.c - libFuzzer target for the SentencePiece tokenizer
 * (localmodel/tokenizer.c) on fuzzed text.
 *
 * Input: one flag byte, then the text. Flag bits: 0 = which vocabulary
 * (stories260K.gguf when present, else the in-memory one of fuzz_vocab.h),
 * 1 = parse_special, 2 = add_bos, 3-7 = where plain spans cut the text for
 * lm_tok_encode_spans. What must hold, beyond no crash, leak or UB:
 *   - asking with too little room returns the same count, and the ids
 *     written are a prefix of the full encoding;
 *   - every id is in the vocabulary, and BOS comes first when asked for;
 *   - without special tokens, decoding gives the text back (U+2581 aside,
 *     which SentencePiece decodes as a space);
 *   - encode_spans with one span over the whole text equals plain encoding
 *     without special tokens, and with no span equals parse_special = 1.
 */
#include "tests/fuzz/fuzz_vocab.h"

#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct lm_tokenizer *vocabs[2];
static int has_user_tokens[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vocabs[0] = fuzz_vocab_small();
    vocabs[1] = fuzz_vocab_model();
    if (!vocabs[1]) {
        fprintf(stderr, "fuzz_tokenizer: stories260K.gguf not found (set LLMPIN_FUZZ_VOCAB); "
                        "using the in-memory vocabulary only\n");
        vocabs[1] = vocabs[0];
    }
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < lm_tok_n_vocab(vocabs[v]); i++)
            has_user_tokens[v] |= lm_tok_type(vocabs[v], i) == LM_TOK_USER;
    return 0;
}

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_tokenizer: " __VA_ARGS__);              \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

/* ids[0..n) encoded with cap = n (the count from a first call). */
static int32_t *encode_all(const struct lm_tokenizer *t, const char *s, size_t len, int bos,
                           int special, int *n)
{
    int32_t probe[4];
    int want = lm_tok_encode(t, s, len, bos, special, probe, 4);
    if (want < 0) FAIL("encode failed on %zu bytes", len);
    int32_t *ids = malloc(((size_t)want + 1) * sizeof *ids);
    if (!ids) abort();
    int got = lm_tok_encode(t, s, len, bos, special, ids, want);
    if (got != want) FAIL("encode gave %d ids with room for 4 and %d with room for %d", want, got, want);
    for (int i = 0; i < want && i < 4; i++)
        if (ids[i] != probe[i]) FAIL("id %d differs between a short and a full buffer", i);
    *n = want;
    return ids;
}

static int same(const int32_t *a, int na, const int32_t *b, int nb)
{
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const struct lm_tokenizer *t = vocabs[data[0] & 1];
    int user = has_user_tokens[data[0] & 1];
    int special = (data[0] >> 1) & 1, bos = (data[0] >> 2) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    int n;
    int32_t *ids = encode_all(t, text, len, bos, special, &n);
    int nv = lm_tok_n_vocab(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= nv) FAIL("id %d at %d is outside the vocabulary", ids[i], i);
    if (bos && lm_tok_bos(t) >= 0 && (n < 1 || ids[0] != lm_tok_bos(t)))
        FAIL("BOS asked for but not first");

    /* round trip: plain text, BOS first so that the prefix space is dropped */
    if (!special && !user && !memmem(text, len, "\xe2\x96\x81", 3) && lm_tok_bos(t) >= 0) {
        int m;
        int32_t *rt = encode_all(t, text, len, 1, 0, &m);
        char *back = malloc(len + 1);
        size_t at = 0;
        int32_t prev = -1;
        for (int i = 0; i < m; i++) {
            size_t pl;
            const char *p = lm_tok_piece(t, prev, rt[i], &pl);
            if (at + pl > len) FAIL("decoding gives more than the %zu bytes encoded", len);
            memcpy(back + at, p, pl);
            at += pl;
            prev = rt[i];
        }
        if (at != len || memcmp(back, text, len) != 0)
            FAIL("round trip of %zu bytes gave %zu different bytes", len, at);
        free(back);
        free(rt);
    }

    /* spans: none = parse_special; whole text = plain; some = no crash, in range */
    int32_t *sp = malloc((len + 2) * sizeof *sp);
    if (!sp) abort();
    int k = lm_tok_encode_spans(t, text, len, bos, NULL, 0, sp, (int)len + 2);
    int ns;
    int32_t *ref = encode_all(t, text, len, bos, 1, &ns);
    if (k != ns || (k <= (int)len + 2 && !same(sp, k, ref, ns)))
        FAIL("encode_spans with no span differs from parse_special = 1");
    free(ref);
    size_t whole[2] = {0, len};
    if (!user) {
        k = lm_tok_encode_spans(t, text, len, bos, whole, 1, sp, (int)len + 2);
        ref = encode_all(t, text, len, bos, 0, &ns);
        if (k != ns || (k <= (int)len + 2 && !same(sp, k, ref, ns)))
            FAIL("encode_spans over the whole text differs from parse_special = 0");
        free(ref);
    }
    size_t cut[4];
    unsigned shape = data[0] >> 3;
    cut[0] = len ? (shape * 7919u) % (len + 1) : 0;
    cut[1] = cut[0] + (len - cut[0]) / 2;
    cut[2] = cut[1] + (shape & 3);
    if (cut[2] > len) cut[2] = len;
    cut[3] = len;
    int sn;
    k = lm_tok_encode_spans(t, text, len, bos, cut, 2, NULL, 0);
    if (k < 0) FAIL("encode_spans refused valid spans [%zu,%zu) [%zu,%zu)", cut[0], cut[1], cut[2], cut[3]);
    int32_t *all = malloc(((size_t)k + 1) * sizeof *all);
    sn = lm_tok_encode_spans(t, text, len, bos, cut, 2, all, k);
    if (sn != k) FAIL("encode_spans count changed with the buffer size");
    for (int i = 0; i < sn; i++)
        if (all[i] < 0 || all[i] >= nv) FAIL("spans: id %d outside the vocabulary", all[i]);
    free(all);
    free(sp);
    free(ids);
    return 0;
}
