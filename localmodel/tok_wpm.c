/*
 * tok_wpm.c - WordPiece (tokenizer.ggml.model = "bert"), as llama.cpp runs
 * the BERT-family vocabularies its converter writes: word-start pieces carry
 * a U+2581 prefix and continuation pieces ("##ing" in tokenizer.json) none.
 *
 * The text is split into words: each character is replaced by the first
 * character of its canonical decomposition (so accents on precomposed
 * letters go; a combining mark typed on its own stays), lower-cased; white
 * space ends a word; control characters, NUL and U+FFFD are dropped;
 * punctuation, ASCII symbols and CJK ideographs are words of their own. Each
 * word, prefixed with U+2581, is cut greedily into the longest pieces of the
 * vocabulary from the left; a word with any part that matches nothing is one
 * [UNK].
 *
 * Unicode properties (categories, White_Space, simple lower case, canonical
 * decompositions) come from libunistring.
 */
#include "localmodel/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>

static int is_cjk_ideograph(ucs4_t c)
{
    /* the ranges BERT's basic tokenizer splits off (as llama.cpp and Hugging
     * Face's tokenizers have them, 0x2B920 included) */
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Next code point of s[*i..n); a broken sequence is one U+FFFD. */
static ucs4_t next_cpt(const unsigned char *s, size_t n, size_t *i)
{
    size_t k = tok_utf8_len(s + *i, n - *i);
    unsigned char b = s[*i];
    ucs4_t c;
    if (k == 1) c = b < 0x80 ? b : 0xFFFD;
    else if (k == 2) c = (ucs4_t)(b & 0x1F) << 6 | (s[*i + 1] & 0x3F);
    else if (k == 3) c = (ucs4_t)(b & 0x0F) << 12 | (ucs4_t)(s[*i + 1] & 0x3F) << 6 | (s[*i + 2] & 0x3F);
    else c = (ucs4_t)(b & 0x07) << 18 | (ucs4_t)(s[*i + 1] & 0x3F) << 12 |
             (ucs4_t)(s[*i + 2] & 0x3F) << 6 | (s[*i + 3] & 0x3F);
    *i += k;
    return c;
}

static size_t put_utf8(ucs4_t c, char *o)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18); o[1] = (char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (char)(0x80 | (c >> 6 & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* The first character of c's full canonical decomposition. */
static ucs4_t nfd_base(ucs4_t c)
{
    ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
    for (int depth = 0; c >= 0xC0 && depth < 8; depth++) {
        if (uc_canonical_decomposition(c, d) <= 0) break;
        c = d[0];
    }
    return c;
}

/* Cut one word (w[0..n), starting with U+2581) into pieces. */
static int emit_word(const struct lm_tokenizer *t, const char *w, size_t n, struct ivec *out)
{
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = n - i > t->max_len ? i + t->max_len : n;
        int id = -1;
        for (; j > i; j--)
            if ((id = tok_lookup(t, w + i, j - i)) >= 0) break;
        if (id < 0) {
            out->n = start;          /* a part matched nothing: the word is [UNK] */
            break;
        }
        if (tok_ivec_push(out, id) < 0) return -1;
        i = j;
    }
    if (out->n == start && t->unk >= 0 && tok_ivec_push(out, t->unk) < 0) return -1;
    return 0;
}

int lm_wpm_encode_run(const struct lm_tokenizer *t, const char *text, size_t len, struct ivec *out)
{
    const unsigned char *s = (const unsigned char *)text;
    /* the current word; grown below when lower-casing makes it longer */
    size_t cap = len + 8;
    char *w = malloc(cap);
    if (!w) return -1;
    memcpy(w, "\xe2\x96\x81", 3);
    size_t wn = 3;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        ucs4_t c = next_cpt(s, len, &i);
        c = nfd_base(c);
        if (uc_is_property_white_space(c)) {
            if (wn > 3) rc = emit_word(t, w, wn, out);
            wn = 3;
            continue;
        }
        if (c == 0 || c == 0xFFFD ||
            uc_is_general_category(c, UC_CATEGORY_Cc) || uc_is_general_category(c, UC_CATEGORY_Cf) ||
            uc_is_general_category(c, UC_CATEGORY_Co) || uc_is_general_category(c, UC_CATEGORY_Cs))
            continue;
        ucs4_t lc = uc_tolower(c);
        if (uc_is_general_category(c, UC_CATEGORY_P) || (c < 0x7F && uc_is_general_category(c, UC_CATEGORY_S)) ||
            is_cjk_ideograph(c)) {
            if (wn > 3 && (rc = emit_word(t, w, wn, out)) != 0) break;
            wn = 3 + put_utf8(lc, w + 3);
            rc = emit_word(t, w, wn, out);
            wn = 3;
            continue;
        }
        if (wn + 4 > cap) {
            char *nw = realloc(w, cap * 2);
            if (!nw) { rc = -1; break; }
            w = nw;
            cap *= 2;
        }
        wn += put_utf8(lc, w + wn);
    }
    if (rc == 0 && wn > 3) rc = emit_word(t, w, wn, out);
    free(w);
    return rc;
}
