/*
 * text_tokenizer.c - the SentencePiece BPE tokenizer on small vocabularies
 * built in code, where every expected id can be worked out by hand: merge
 * order by score, leftmost tie-break, byte fallback, UNK, special tokens,
 * decoding, the encode buffer protocol and input validation.
 */
#include "localmodel/tokenizer.h"
#include "tests/text/check.h"

#include <math.h>
#include <stdint.h>

#define SP "\xe2\x96\x81"   /* U+2581 */

struct vocab {
    const char *tok[400];
    uint32_t len[400];
    float score[400];
    int32_t type[400];
    int n;
    char bytes[256][8];
};

static int add(struct vocab *v, const char *s, float score, int type)
{
    v->tok[v->n] = s;
    v->len[v->n] = (uint32_t)strlen(s);
    v->score[v->n] = score;
    v->type[v->n] = type;
    return v->n++;
}

/* ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the pieces. */
static void base(struct vocab *v, int with_bytes)
{
    memset(v, 0, sizeof *v);
    add(v, "<unk>", 0, LM_TOK_UNKNOWN);
    add(v, "<s>", 0, LM_TOK_CONTROL);
    add(v, "</s>", 0, LM_TOK_CONTROL);
    if (with_bytes) {
        for (int b = 0; b < 256; b++) {
            snprintf(v->bytes[b], sizeof v->bytes[b], "<0x%02X>", b);
            add(v, v->bytes[b], 0, LM_TOK_BYTE);
        }
    }
}

static struct lm_tokenizer *build(struct vocab *v, int add_bos, int add_prefix)
{
    char err[256] = "";
    struct lm_tokenizer *t = lm_tok_new(v->n, v->tok, v->len, v->score, v->type, 1, 2, 0,
                                        add_bos, add_prefix, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    return t;
}

static int enc(struct lm_tokenizer *t, const char *s, int bos, int special, int32_t *out)
{
    return lm_tok_encode(t, s, strlen(s), bos, special, out, 64);
}

#define CHECK_IDS(got, n, ...) do { int32_t _e[] = { __VA_ARGS__ }; int _ne = (int)(sizeof _e / sizeof _e[0]); \
    int _ok = (n) == _ne; for (int _i = 0; _ok && _i < _ne; _i++) _ok = (got)[_i] == _e[_i]; \
    if (!_ok) { fprintf(stderr, "%s:%d: ids [", __FILE__, __LINE__); \
        for (int _i = 0; _i < (n); _i++) fprintf(stderr, "%s%d", _i ? ", " : "", (got)[_i]); \
        fprintf(stderr, "] expected ["); \
        for (int _i = 0; _i < _ne; _i++) fprintf(stderr, "%s%d", _i ? ", " : "", _e[_i]); \
        fprintf(stderr, "]\n"); failures++; } } while (0)

static void decode(struct lm_tokenizer *t, const int32_t *ids, int n, char *out, size_t cap)
{
    size_t o = 0;
    int32_t prev = -1;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = lm_tok_piece(t, prev, ids[i], &l);
        if (o + l < cap) { memcpy(out + o, p, l); o += l; }
        prev = ids[i];
    }
    out[o] = '\0';
}

static void test_merges(void)
{
    struct vocab v;
    base(&v, 1);
    int sp = add(&v, SP, -10, LM_TOK_NORMAL);          /* 259 */
    int a = add(&v, "a", -10, LM_TOK_NORMAL);          /* 260 */
    int b = add(&v, "b", -10, LM_TOK_NORMAL);
    int c = add(&v, "c", -10, LM_TOK_NORMAL);
    int ab = add(&v, "ab", -1, LM_TOK_NORMAL);
    int bc = add(&v, "bc", -1, LM_TOK_NORMAL);         /* same score as ab */
    int spa = add(&v, SP "a", -2, LM_TOK_NORMAL);
    int cc = add(&v, "cc", -0.5f, LM_TOK_NORMAL);
    int spab = add(&v, SP "ab", -3, LM_TOK_NORMAL);
    struct lm_tokenizer *t = build(&v, 1, 1);
    if (!t) return;
    int32_t o[64];
    int n;

    /* "▁abc": pairs ▁a(-2) ab(-1) bc(-1): ab wins the tie by being leftmost,
     * then ▁+ab = "▁ab"(-3) merges; "▁abc" is not a piece. */
    n = enc(t, "abc", 0, 0, o);
    CHECK_IDS(o, n, spab, c);
    /* "▁bcc": bc(-1) vs cc(-0.5): cc first, leaving ▁ b cc */
    n = enc(t, "bcc", 0, 0, o);
    CHECK_IDS(o, n, sp, b, cc);
    /* BOS, and a space in the middle: "▁a▁b" */
    n = enc(t, "a b", 1, 0, o);
    CHECK_IDS(o, n, 1, spa, sp, b);
    /* leading space: "▁▁a" -> ▁ then ▁a (the leftmost "▁a"-pair is ▁▁, not a piece) */
    n = enc(t, " a", 0, 0, o);
    CHECK_IDS(o, n, sp, spa);
    /* byte fallback for characters that are not pieces: é = C3 A9 */
    n = enc(t, "a\xc3\xa9", 0, 0, o);
    CHECK_IDS(o, n, spa, 3 + 0xc3, 3 + 0xa9);
    /* empty text: nothing, or only BOS */
    CHECK_INT(enc(t, "", 0, 0, o), 0);
    n = enc(t, "", 1, 0, o);
    CHECK_IDS(o, n, 1);
    /* special tokens: only with parse_special; text after one gets the prefix */
    n = enc(t, "<s>ab</s>", 0, 1, o);
    CHECK_IDS(o, n, 1, spab, 2);
    n = enc(t, "a<s>", 0, 0, o);
    CHECK_IDS(o, n, spa, 3 + '<', 3 + 's', 3 + '>');
    (void)a; (void)bc;

    /* spans: special tokens only outside the plain (untrusted) ranges */
    const char *sx = "<s>ab</s>";
    size_t none[1] = { 0 };
    n = lm_tok_encode_spans(t, sx, 9, 0, none, 0, o, 64);
    CHECK_IDS(o, n, 1, spab, 2);
    size_t inner[2] = { 3, 5 };                     /* "ab" */
    n = lm_tok_encode_spans(t, sx, 9, 0, inner, 1, o, 64);
    CHECK_IDS(o, n, 1, spab, 2);
    size_t first[2] = { 0, 3 };                     /* "<s>" is content: text */
    n = lm_tok_encode_spans(t, sx, 9, 0, first, 1, o, 64);
    CHECK_IDS(o, n, sp, 3 + '<', 3 + 's', 3 + '>', ab, 2);
    size_t straddle[4] = { 2, 4, 8, 9 };            /* cuts both specials */
    n = lm_tok_encode_spans(t, sx, 9, 1, straddle, 2, o, 64);
    CHECK(n > 0 && o[0] == 1 && o[1] != 1 && o[n - 1] != 2);
    for (int i = 1; i < n; i++) CHECK(o[i] != 1 && o[i] != 2);
    size_t bad[4] = { 3, 5, 4, 6 };                 /* overlapping */
    CHECK_INT(lm_tok_encode_spans(t, sx, 9, 0, bad, 2, o, 64), -1);
    size_t past[2] = { 3, 10 };
    CHECK_INT(lm_tok_encode_spans(t, sx, 9, 0, past, 1, o, 64), -1);

    /* the buffer protocol: total count even when cap is smaller */
    int32_t small[2] = { -7, -7 };
    CHECK_INT(lm_tok_encode(t, "a b c", 5, 1, 0, small, 1), 6);
    CHECK_INT(small[0], 1);
    CHECK_INT(small[1], -7);
    CHECK_INT(lm_tok_encode(t, "a b c", 5, 1, 0, NULL, 0), 6);

    /* decoding */
    size_t l;
    const char *p = lm_tok_piece(t, 1, spab, &l);
    CHECK_MEM(p, l, "ab");                      /* after BOS the prefix space goes */
    p = lm_tok_piece(t, -1, spab, &l);
    CHECK_MEM(p, l, "ab");
    p = lm_tok_piece(t, a, spab, &l);
    CHECK_MEM(p, l, " ab");
    p = lm_tok_piece(t, a, 1, &l);
    CHECK_MEM(p, l, "");                        /* control */
    p = lm_tok_piece(t, a, 3 + 0xc3, &l);
    CHECK(l == 1 && (unsigned char)p[0] == 0xc3);
    p = lm_tok_piece(t, a, 3 + 0x20, &l);       /* byte token for space is kept after BOS */
    CHECK_MEM(p, l, " ");
    p = lm_tok_piece(t, a, 99999, &l);
    CHECK_MEM(p, l, "");

    CHECK_INT(lm_tok_find(t, "<s>"), 1);
    CHECK_INT(lm_tok_find(t, SP "ab"), spab);
    CHECK_INT(lm_tok_find(t, "zz"), -1);
    CHECK_INT(lm_tok_n_vocab(t), v.n);
    CHECK_INT(lm_tok_bos(t), 1);
    CHECK_INT(lm_tok_eos(t), 2);
    CHECK_INT(lm_tok_unk(t), 0);
    CHECK_INT(lm_tok_add_bos(t), 1);
    CHECK_INT(lm_tok_type(t, 2), LM_TOK_CONTROL);
    CHECK_INT(lm_tok_type(t, 3), LM_TOK_BYTE);
    CHECK_INT(lm_tok_type(t, -1), -1);
    p = lm_tok_text(t, 2, &l);
    CHECK_MEM(p, l, "</s>");

    /* round trips through byte fallback, including invalid UTF-8 */
    const char *rt[] = { "abc", "a b  c", "  leading", "trailing  ", "\n\ttab", "\xc3\xa9t\xc3\xa9",
                         "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\xa6\x99 llama", "\xff\xfe bad \x80",
                         "\xe2\x82", "x\xf0\x9f" };
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        int32_t ids[64];
        char back[256];
        n = enc(t, rt[i], 0, 0, ids);
        CHECK(n > 0 && n <= 64);
        decode(t, ids, n, back, sizeof back);
        CHECK_MSG(strcmp(back, rt[i]) == 0, "round trip of \"%s\" gave \"%s\"", rt[i], back);
    }
    lm_tok_free(t);

    /* without the space prefix: no ▁ in front, nothing stripped when decoding */
    t = build(&v, 0, 0);
    if (!t) return;
    n = enc(t, "ab", 0, 0, o);
    CHECK_IDS(o, n, ab);
    p = lm_tok_piece(t, -1, spab, &l);
    CHECK_MEM(p, l, " ab");
    lm_tok_free(t);
}

static void test_unk_and_user(void)
{
    struct vocab v;
    base(&v, 0);                                        /* no byte tokens */
    int sp = add(&v, SP, -1, LM_TOK_NORMAL);
    int x = add(&v, "x", -1, LM_TOK_NORMAL);
    int user = add(&v, "<tool>", 0, LM_TOK_USER);
    int user2 = add(&v, "<tool>!", 0, LM_TOK_USER);     /* longer match wins */
    struct lm_tokenizer *t = build(&v, 1, 1);
    if (!t) return;
    int32_t o[64];
    int n = enc(t, "x\xc3\xa9x", 0, 0, o);              /* é has no bytes: one UNK */
    CHECK_IDS(o, n, sp, x, 0, x);
    /* USER tokens are split out even without parse_special */
    n = enc(t, "x<tool>x<tool>!", 0, 0, o);
    CHECK_IDS(o, n, sp, x, user, sp, x, user2);
    size_t l;
    const char *p = lm_tok_piece(t, x, user, &l);
    CHECK_MEM(p, l, "<tool>");
    p = lm_tok_piece(t, x, 0, &l);
    CHECK_MEM(p, l, "\xe2\x96\x85");
    lm_tok_free(t);
}

static void test_validation(void)
{
    struct vocab v;
    base(&v, 1);
    add(&v, "a", 0, LM_TOK_NORMAL);
    char err[256];
    struct lm_tokenizer *t;

    t = lm_tok_new(0, v.tok, v.len, NULL, NULL, -1, -1, -1, 0, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "vocabulary size 0");

    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, v.n, 2, 0, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "bos token id 260 out of range");

    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, 1, 2, -5, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "unk token id -5");

    v.score[5] = NAN;
    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, 1, 2, 0, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "token 5: score is not a finite number");
    v.score[5] = 0;

    v.len[259] = 0;
    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, 1, 2, 0, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "token 259: empty string");
    v.len[259] = 1;

    v.type[259] = LM_TOK_BYTE;
    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, 1, 2, 0, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "token 259: byte token is 'a', expected <0xXX>");
    v.type[259] = 9;
    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, 1, 2, 0, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "token 259: unknown token type 9");
    v.type[259] = LM_TOK_NORMAL;

    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, -1, 2, 0, 1, 1, err, sizeof err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, "add_bos is set but there is no bos token");

    /* an empty CONTROL token (padding) is allowed */
    v.len[2] = 0;
    t = lm_tok_new(v.n, v.tok, v.len, v.score, v.type, 1, 2, 0, 1, 1, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    lm_tok_free(t);
    v.len[2] = 4;

    /* NULL scores/types: byte tokens recognised by their text */
    t = lm_tok_new(v.n, v.tok, v.len, NULL, NULL, 1, 2, 0, 0, 1, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) {
        CHECK_INT(lm_tok_type(t, 3 + 0x41), LM_TOK_BYTE);
        int32_t o[8];
        int n = enc(t, "a\x01", 0, 0, o);
        CHECK_IDS(o, n, 3 + 0xe2, 3 + 0x96, 3 + 0x81, 259, 3 + 1);
        lm_tok_free(t);
    }
}

int main(void)
{
    test_merges();
    test_unk_and_user();
    test_validation();
    DONE();
}
