/*
 * tokenizer.c - SentencePiece BPE ("llama" tokenizer model in GGUF).
 *
 * Why this shape: the Llama 2 family, TinyLlama, Mistral 7B v0.1 and the
 * llama2.c story models all use SentencePiece in BPE mode. Their vocabulary
 * carries one score per piece instead of a merge list, and encoding is:
 *
 *   1. split the input on special tokens (CONTROL/UNKNOWN tokens only when the
 *      caller asks for it with parse_special; USER tokens always, as
 *      SentencePiece treats user-defined symbols as atomic pieces);
 *   2. for each run of plain text: prepend a space if the model adds a space
 *      prefix and the run starts the text or follows a special token, then
 *      replace every ' ' by U+2581 ("▁");
 *   3. cut the run into UTF-8 characters, then repeatedly merge the adjacent
 *      pair whose concatenation is a NORMAL vocabulary piece with the highest
 *      score (ties: the leftmost pair). A priority queue holds candidate pairs;
 *      entries made stale by an earlier merge are recognised by their length
 *      and skipped when popped;
 *   4. each final symbol is its piece id, or, for characters that are not in
 *      the vocabulary, one <0xXX> byte token per byte (byte fallback), or UNK
 *      when the vocabulary has no byte tokens for it.
 *
 * Piece lookup is an open-addressing hash table keyed by the piece bytes, so
 * a merge candidate costs one hash of a few bytes and no allocation: the
 * candidate text is always a contiguous slice of the escaped input.
 *
 * Decoding (lm_tok_piece) is precomputed per id at load time: "▁" becomes
 * ' ', byte tokens become their byte, control tokens become nothing. After
 * BOS, or at the very start, the leading space the encoder added is dropped,
 * as SentencePiece's decoder does.
 *
 * lm_tok_encode_spans() is the same with byte ranges in which special tokens
 * are never recognised: chat prompts mark message content that way, so the
 * text a user sends cannot forge a turn marker.
 *
 * lm_tok_from_gguf() is the glue from the GGUF metadata to lm_tok_new().
 */
#include "localmodel/tokenizer.h"
#include "localmodel/tok_internal.h"
#include "localmodel/gguf.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VOCAB (1 << 24)
#define MAX_PIECE_LEN 65536
#define MAX_TEXT ((size_t)INT_MAX / 4)


static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t tok_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;          /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* Id of the piece s[0..n), or -1. */
int tok_lookup(const struct lm_tokenizer *t, const char *s, size_t n)
{
    size_t i = (size_t)tok_hash(s, n) & t->mask;
    for (;;) {
        uint32_t v = t->slot[i];
        if (v == 0) return -1;
        int id = (int)v - 1;
        if (t->len[id] == n && memcmp(t->text + t->off[id], s, n) == 0) return id;
        i = (i + 1) & t->mask;
    }
}

size_t tok_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t l = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
    if (l > n) return 1;
    for (size_t k = 1; k < l; k++)
        if ((s[k] & 0xc0) != 0x80) return 1;
    return l;
}

/* "<0xXX>" -> XX, else -1. */
static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

void lm_tok_free(struct lm_tokenizer *t)
{
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->dec);
    free(t->doff);
    free(t->dlen);
    free(t->slot);
    free(t->spec);
    free(t->eog);
    lm_bpe_free(t->bpe);
    free(t);
}

static int is_special_type(int type)
{
    return type == LM_TOK_CONTROL || type == LM_TOK_USER || type == LM_TOK_UNKNOWN;
}

/* qsort context-free comparator for special ids: by first byte, then longer
 * first, then lower id. Needs the tokenizer, so ids are pre-packed with
 * their sort keys. */
struct spec_key { uint32_t first, len; int32_t id; };

static int cmp_spec(const void *a, const void *b)
{
    const struct spec_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static int index_specials(struct lm_tokenizer *t);

/* The vocabulary of any tokenizer kind; bpe (owned from here on, freed on
 * failure) is the byte-level BPE state for LM_TOKENIZER_BPE. */
static struct lm_tokenizer *tok_build(int kind, struct lm_bpe *bpe, int n_vocab,
                                      const char *const *tokens, const uint32_t *lens,
                                      const float *scores, const int32_t *types,
                                      int bos, int eos, int unk, int add_bos, int add_space_prefix,
                                      char *err, size_t errlen)
{
    struct lm_tokenizer *t = NULL;
    if (n_vocab <= 0 || n_vocab > MAX_VOCAB) {
        set_err(err, errlen, "tokenizer: vocabulary size %d out of range (1..%d)", n_vocab, MAX_VOCAB);
        goto fail;
    }
    if (!tokens || !lens) {
        set_err(err, errlen, "tokenizer: token strings missing");
        goto fail;
    }
    const int sp[3] = { bos, eos, unk };
    const char *spn[3] = { "bos", "eos", "unk" };
    for (int i = 0; i < 3; i++) {
        if (sp[i] < -1 || sp[i] >= n_vocab) {
            set_err(err, errlen, "tokenizer: %s token id %d out of range (vocabulary has %d tokens)",
                    spn[i], sp[i], n_vocab);
            goto fail;
        }
    }
    if (add_bos && bos < 0) {
        set_err(err, errlen, "tokenizer: add_bos is set but there is no bos token");
        goto fail;
    }

    size_t total = 0;
    for (int i = 0; i < n_vocab; i++) {
        int ty = types ? types[i] : LM_TOK_NORMAL;
        if (ty < 0 || ty > LM_TOK_BYTE) {
            set_err(err, errlen, "tokenizer: token %d: unknown token type %d", i, ty);
            goto fail;
        }
        if (!tokens[i] && lens[i] > 0) {
            set_err(err, errlen, "tokenizer: token %d: string missing", i);
            goto fail;
        }
        if (lens[i] > MAX_PIECE_LEN) {
            set_err(err, errlen, "tokenizer: token %d: length %u exceeds %d bytes", i,
                    (unsigned)lens[i], MAX_PIECE_LEN);
            goto fail;
        }
        if (lens[i] == 0 && (ty == 0 || ty == LM_TOK_NORMAL || ty == LM_TOK_BYTE || ty == LM_TOK_USER)) {
            set_err(err, errlen, "tokenizer: token %d: empty string", i);
            goto fail;
        }
        if (ty == LM_TOK_BYTE && parse_byte_token(tokens[i], lens[i]) < 0) {
            set_err(err, errlen, "tokenizer: token %d: byte token is '%.*s', expected <0xXX>", i,
                    (int)(lens[i] > 32 ? 32 : lens[i]), tokens[i]);
            goto fail;
        }
        if (scores && !isfinite(scores[i])) {
            set_err(err, errlen, "tokenizer: token %d: score is not a finite number", i);
            goto fail;
        }
        total += (size_t)lens[i] + 1;
    }

    t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->kind = kind;
    t->bpe = bpe;
    bpe = NULL;
    t->n = n_vocab;
    t->sep = -1;
    t->bos = bos;
    t->eos = eos;
    t->unk = unk;
    t->add_bos = add_bos ? 1 : 0;
    t->add_space_prefix = add_space_prefix ? 1 : 0;
    size_t nv = (size_t)n_vocab;
    t->text = malloc(total);
    t->off = malloc(nv * sizeof *t->off);
    t->len = malloc(nv * sizeof *t->len);
    t->score = malloc(nv * sizeof *t->score);
    t->type = malloc(nv);
    t->doff = malloc(nv * sizeof *t->doff);
    t->dlen = malloc(nv * sizeof *t->dlen);
    t->eog = calloc(nv, 1);
    /* decoded pieces are never longer than the token text (3-byte U+2581
     * becomes 1 byte; the unknown marker is 3 bytes) */
    t->dec = malloc(total + 3 * nv);
    size_t cap = 16;
    while (cap < nv * 2) cap <<= 1;
    t->slot = calloc(cap, sizeof *t->slot);
    t->mask = cap - 1;
    if (!t->text || !t->off || !t->len || !t->score || !t->type || !t->doff || !t->dlen ||
        !t->dec || !t->slot || !t->eog)
        goto oom;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;

    size_t pos = 0, dpos = 0;
    for (int i = 0; i < n_vocab; i++) {
        int ty = types ? types[i] : LM_TOK_NORMAL;
        const char *s = tokens[i];
        uint32_t n = lens[i];
        if (!types && parse_byte_token(s, n) >= 0) ty = LM_TOK_BYTE;
        if (ty == 0) ty = LM_TOK_NORMAL;
        t->type[i] = (uint8_t)ty;
        t->score[i] = scores ? scores[i] : 0.0f;
        t->off[i] = pos;
        t->len[i] = n;
        if (n > t->max_len) t->max_len = n;
        if (n) memcpy(t->text + pos, s, n);
        t->text[pos + n] = '\0';
        pos += (size_t)n + 1;

        /* insert; a later duplicate replaces an earlier one */
        size_t h = (size_t)tok_hash(s, n) & t->mask;
        for (;;) {
            uint32_t v = t->slot[h];
            if (v == 0) { t->slot[h] = (uint32_t)i + 1; break; }
            int id = (int)v - 1;
            if (t->len[id] == n && memcmp(t->text + t->off[id], s, n) == 0) {
                t->slot[h] = (uint32_t)i + 1;
                break;
            }
            h = (h + 1) & t->mask;
        }

        t->doff[i] = dpos;
        char *d = t->dec + dpos;
        size_t dl = 0;
        if (ty == LM_TOK_BYTE) {
            int b = parse_byte_token(s, n);
            d[dl++] = (char)b;
            if (t->byte_id[b] < 0) t->byte_id[b] = i;
        } else if (ty == LM_TOK_CONTROL) {
            /* nothing */
        } else if (kind == LM_TOKENIZER_BPE && (ty == LM_TOK_UNKNOWN || ty == LM_TOK_UNUSED)) {
            /* nothing, as llama.cpp prints them */
        } else if (kind == LM_TOKENIZER_BPE && ty == LM_TOK_NORMAL) {
            dl = lm_bpe_decode_piece(t->bpe, s, n, d);
        } else if (ty == LM_TOK_UNKNOWN) {
            memcpy(d, "\xe2\x96\x85", 3);       /* U+2585, as llama.cpp prints UNK */
            dl = 3;
        } else if (ty == LM_TOK_USER) {
            memcpy(d, s, n);
            dl = n;
        } else {
            for (uint32_t k = 0; k < n;) {
                if (k + 2 < n && (unsigned char)s[k] == 0xe2 && (unsigned char)s[k + 1] == 0x96 &&
                    (unsigned char)s[k + 2] == 0x81) {
                    d[dl++] = ' ';
                    k += 3;
                } else {
                    d[dl++] = s[k++];
                }
            }
        }
        t->dlen[i] = (uint32_t)dl;
        dpos += dl;
    }

    if (index_specials(t) < 0) goto oom;
    if (eos >= 0) t->eog[eos] = 1;
    return t;

oom:
    set_err(err, errlen, "tokenizer: out of memory for %d tokens", n_vocab);
fail:
    lm_bpe_free(bpe);
    lm_tok_free(t);
    return NULL;
}

struct lm_tokenizer *lm_tok_new(int n_vocab, const char *const *tokens, const uint32_t *lens,
                                const float *scores, const int32_t *types,
                                int bos, int eos, int unk, int add_bos, int add_space_prefix,
                                char *err, size_t errlen)
{
    return tok_build(LM_TOKENIZER_SPM, NULL, n_vocab, tokens, lens, scores, types, bos, eos, unk,
                     add_bos, add_space_prefix, err, errlen);
}

int lm_tok_n_vocab(const struct lm_tokenizer *t) { return t->n; }
int lm_tok_bos(const struct lm_tokenizer *t) { return t->bos; }
int lm_tok_eos(const struct lm_tokenizer *t) { return t->eos; }
int lm_tok_unk(const struct lm_tokenizer *t) { return t->unk; }
int lm_tok_add_bos(const struct lm_tokenizer *t) { return t->add_bos; }
int lm_tok_add_special(const struct lm_tokenizer *t)
{
    return (t->add_bos ? LM_TOK_ADD_BOS : 0) | (t->add_eos && t->eos >= 0 ? LM_TOK_ADD_EOS : 0);
}
int lm_tok_kind(const struct lm_tokenizer *t) { return t->kind; }
const char *lm_tok_pre(const struct lm_tokenizer *t) { return t->pre; }

const char *lm_tok_kind_name(const struct lm_tokenizer *t)
{
    static const char *const names[] = { "llama", "gpt2", "bert", "t5" };
    return t->kind >= 0 && t->kind < 4 ? names[t->kind] : "?";
}

int lm_tok_is_eog(const struct lm_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n && t->eog[id];
}

int lm_tok_find(const struct lm_tokenizer *t, const char *piece)
{
    if (!piece) return -1;
    return tok_lookup(t, piece, strlen(piece));
}

int lm_tok_type(const struct lm_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n) return -1;
    return t->type[id];
}

const char *lm_tok_text(const struct lm_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = t->len[id];
    return t->text + t->off[id];
}

const char *lm_tok_piece(const struct lm_tokenizer *t, int32_t prev, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n) {
        *len = 0;
        return "";
    }
    const char *p = t->dec + t->doff[id];
    size_t n = t->dlen[id];
    if (t->add_space_prefix && (prev == -1 || (prev == t->bos && t->bos >= 0)) &&
        (t->type[id] == LM_TOK_NORMAL || t->type[id] == LM_TOK_UNUSED) && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    *len = n;
    return p;
}

/* ---- encoding ------------------------------------------------------------ */

int tok_ivec_push(struct ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) return -1;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

struct sym {
    int start;           /* byte offset in the escaped text */
    int n;               /* bytes; 0 once merged into its left neighbour */
    int prev, next;
};

struct bigram {
    int left, right;
    float score;
    int size;
};

/* a is popped before b */
static int bigram_before(const struct bigram *a, const struct bigram *b)
{
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

struct heap {
    struct bigram *v;
    size_t n, cap;
};

static int heap_push(struct heap *h, struct bigram b)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        struct bigram *nv = realloc(h->v, nc * sizeof *nv);
        if (!nv) return -1;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return 0;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->v[0];
    struct bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

/* A piece that merges may produce: any but CONTROL and UNKNOWN. llama.cpp
 * merges into every type (Gemma's whitespace runs "▁▁"... are USER_DEFINED
 * pieces that merges form); control tokens are left out so that text cannot
 * turn into <s> or a turn marker by merging. */
static int mergeable(const struct lm_tokenizer *t, int id)
{
    return id >= 0 && t->type[id] != LM_TOK_CONTROL && t->type[id] != LM_TOK_UNKNOWN;
}

static int try_pair(const struct lm_tokenizer *t, const char *e, const struct sym *s,
                    int left, int right, struct heap *h)
{
    if (left < 0 || right < 0) return 0;
    int size = s[left].n + s[right].n;
    int id = tok_lookup(t, e + s[left].start, (size_t)size);
    if (!mergeable(t, id)) return 0;
    struct bigram b = { left, right, t->score[id], size };
    return heap_push(h, b);
}

/* Length of the UTF-8 character starting with byte c (1 for stray bytes). */
static int utf8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1;
}

/* BPE over one run of plain text. */
static int encode_run(const struct lm_tokenizer *t, const char *text, size_t len, int prefix,
                      struct ivec *out)
{
    size_t m = (prefix ? 3 : 0);
    for (size_t i = 0; i < len; i++) m += text[i] == ' ' ? 3 : 1;
    if (m == 0) return 0;
    char *e = malloc(m);
    struct sym *s = malloc(m * sizeof *s);
    struct heap h = { 0 };
    int rc = -1;
    if (!e || !s) goto done;
    size_t p = 0;
    if (prefix) { memcpy(e, "\xe2\x96\x81", 3); p = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(e + p, "\xe2\x96\x81", 3); p += 3; }
        else e[p++] = text[i];
    }

    int ns = 0;
    for (size_t i = 0; i < m;) {
        /* a character is a lead byte and its continuation bytes; a broken
         * sequence splits into single bytes, so that an invalid lead byte
         * cannot swallow the "▁" after it */
        int n = utf8_len((unsigned char)e[i]);
        if ((size_t)n > m - i) n = 1;
        for (int k = 1; k < n; k++)
            if (((unsigned char)e[i + (size_t)k] & 0xc0) != 0x80) n = 1;
        s[ns].start = (int)i;
        s[ns].n = n;
        s[ns].prev = ns - 1;
        s[ns].next = (i + (size_t)n < m) ? ns + 1 : -1;
        ns++;
        i += (size_t)n;
    }
    for (int i = 1; i < ns; i++)
        if (try_pair(t, e, s, i - 1, i, &h) < 0) goto done;

    while (h.n > 0) {
        struct bigram b = heap_pop(&h);
        struct sym *l = &s[b.left], *r = &s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;   /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.left;
        if (try_pair(t, e, s, l->prev, b.left, &h) < 0) goto done;
        if (try_pair(t, e, s, b.left, l->next, &h) < 0) goto done;
    }

    for (int i = 0; i >= 0 && i < ns; i = s[i].next) {
        int id = tok_lookup(t, e + s[i].start, (size_t)s[i].n);
        if (mergeable(t, id)) {
            if (tok_ivec_push(out, id) < 0) goto done;
            continue;
        }
        int have_bytes = 1;
        for (int k = 0; k < s[i].n; k++)
            if (t->byte_id[(unsigned char)e[s[i].start + k]] < 0) have_bytes = 0;
        if (have_bytes) {
            for (int k = 0; k < s[i].n; k++)
                if (tok_ivec_push(out, t->byte_id[(unsigned char)e[s[i].start + k]]) < 0) goto done;
        } else {
            if (t->unk < 0) goto done;
            if (tok_ivec_push(out, t->unk) < 0) goto done;
        }
    }
    rc = 0;
done:
    free(e);
    free(s);
    free(h.v);
    return rc;
}

/* One run of plain text, by the vocabulary's kind. */
static int encode_plain(const struct lm_tokenizer *t, const char *text, size_t len,
                        int after_special, struct ivec *out)
{
    switch (t->kind) {
    case LM_TOKENIZER_BPE: return lm_bpe_encode_run(t, text, len, out);
    case LM_TOKENIZER_WPM: return lm_wpm_encode_run(t, text, len, out);
    default: return encode_run(t, text, len, t->add_space_prefix && after_special, out);
    }
}

/* Special token starting at text[i] and at most `limit` bytes long, or -1
 * (longest first). */
static int match_special(const struct lm_tokenizer *t, const char *text, size_t limit, size_t i,
                         int parse_special)
{
    unsigned char c = (unsigned char)text[i];
    for (uint32_t j = t->spec_start[c]; j < t->spec_start[c + 1]; j++) {
        int id = t->spec[j];
        if (!parse_special && t->type[id] != LM_TOK_USER) continue;
        size_t n = t->len[id];
        if (n <= limit && memcmp(text + i, t->text + t->off[id], n) == 0) return id;
    }
    return -1;
}

/* Encoding with special tokens recognised outside the `plain` byte ranges
 * (pairs [start, end), sorted, non-overlapping) and nowhere inside them. */
static int encode_impl(const struct lm_tokenizer *t, const char *text, size_t len, int add_bos,
                       int parse_special, const size_t *plain, int n_plain, int32_t *out, int cap)
{
    if (!text && len > 0) return -1;
    if (len > MAX_TEXT || cap < 0 || (cap > 0 && !out) || n_plain < 0) return -1;
    for (int k = 0; k < n_plain; k++) {
        if (plain[2 * k] > plain[2 * k + 1] || plain[2 * k + 1] > len ||
            (k > 0 && plain[2 * k] < plain[2 * k - 1]))
            return -1;
    }
    struct ivec v = { 0 };
    int rc = -1;
    if ((add_bos & LM_TOK_ADD_BOS) && t->bos >= 0 && tok_ivec_push(&v, t->bos) < 0) goto done;
    int prev_special = 1;
    size_t run = 0;          /* start of the current plain-text run */
    int have_spec = t->spec_start[256] > 0;
    int k = 0;               /* first plain span that ends after i */
    for (size_t i = 0; have_spec && i < len;) {
        while (k < n_plain && plain[2 * k + 1] <= i) k++;
        size_t limit = len - i;
        if (k < n_plain) {
            if (plain[2 * k] <= i) {         /* inside untrusted text */
                i = plain[2 * k + 1];
                continue;
            }
            limit = plain[2 * k] - i;        /* a match must end before it */
        }
        int id = match_special(t, text, limit, i, parse_special);
        if (id < 0) { i++; continue; }
        if (i > run) {
            if (encode_plain(t, text + run, i - run, prev_special, &v) < 0)
                goto done;
        }
        if (tok_ivec_push(&v, id) < 0) goto done;
        prev_special = 1;
        i += t->len[id];
        run = i;
    }
    if (len > run) {
        if (encode_plain(t, text + run, len - run, prev_special, &v) < 0)
            goto done;
    }
    if ((add_bos & LM_TOK_ADD_EOS) && t->eos >= 0 && tok_ivec_push(&v, t->eos) < 0) goto done;
    if (v.n > INT_MAX) goto done;
    size_t ncopy = v.n < (size_t)cap ? v.n : (size_t)cap;
    if (ncopy) memcpy(out, v.v, ncopy * sizeof *out);
    rc = (int)v.n;
done:
    free(v.v);
    return rc;
}

int lm_tok_encode(const struct lm_tokenizer *t, const char *text, size_t len,
                  int add_bos, int parse_special, int32_t *out, int cap)
{
    return encode_impl(t, text, len, add_bos, parse_special, NULL, 0, out, cap);
}

int lm_tok_encode_spans(const struct lm_tokenizer *t, const char *text, size_t len, int add_bos,
                        const size_t *plain, int n_plain, int32_t *out, int cap)
{
    return encode_impl(t, text, len, add_bos, 1, plain, n_plain, out, cap);
}

/* ---- GGUF glue ------------------------------------------------------------ */

static int get_opt_bool(const struct gguf_file *f, const char *key, int def, int *out,
                        char *err, size_t errlen)
{
    *out = def;
    if (!gguf_find_kv(f, key)) return 0;
    return gguf_get_bool(f, key, out, err, errlen);
}

/* A token id key; when absent, def if it is inside the vocabulary, else -1. */
static int get_opt_id(const struct gguf_file *f, const char *key, int def, int n_vocab, int *out,
                      char *err, size_t errlen)
{
    *out = def < n_vocab ? def : -1;
    if (!gguf_find_kv(f, key)) return 0;
    int64_t v;
    if (gguf_get_i64(f, key, &v, err, errlen) < 0) return -1;
    if (v < -1 || v > INT_MAX) {
        set_err(err, errlen, "%s: key '%s': token id %lld out of range",
                f->path ? f->path : "gguf", key, (long long)v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Token texts that end a turn in the chat models that use them (llama.cpp
 * decides its end-of-generation set from the same texts). */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "[e~[", "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
    NULL,
};

/* The end-of-generation set: EOS, tokenizer.ggml.eot/eom_token_id, the FIM
 * pad/repo/file-separator tokens and the turn-ending texts above (made
 * CONTROL, so that template text containing them parses as the token). A
 * vocabulary with both <|return|> and <|call|> (gpt-oss) keeps <|end|> as a
 * plain separator, one with <|tool_response> (Gemma 4) keeps </s> as text. */
static int set_eog(struct lm_tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    const char *keys[2] = { "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" };
    for (int k = 0; k < 2; k++) {
        if (!gguf_find_kv(f, keys[k])) continue;
        int64_t v;
        if (gguf_get_i64(f, keys[k], &v, err, errlen) < 0) return -1;
        if (v == -1) continue;
        if (v < 0 || v >= t->n) {
            set_err(err, errlen, "%s: key '%s': id %lld is outside the vocabulary (%d tokens)",
                    f->path ? f->path : "gguf", keys[k], (long long)v, t->n);
            return -1;
        }
        t->eog[v] = 1;
    }
    static const char *const fim[] = { "<|fim_pad|>", "<|fim_repo|>", "<|repo_name|>",
                                       "<|file_sep|>", NULL };
    for (int k = 0; fim[k]; k++) {
        int id = lm_tok_find(t, fim[k]);
        if (id >= 0) t->eog[id] = 1;
    }
    int ret = lm_tok_find(t, "<|return|>"), call = lm_tok_find(t, "<|call|>");
    int tool_resp = lm_tok_find(t, "<|tool_response>");
    int changed = 0;
    for (int k = 0; EOG_TEXTS[k]; k++) {
        int id = lm_tok_find(t, EOG_TEXTS[k]);
        if (id < 0) continue;
        if (ret >= 0 && call >= 0 && strcmp(EOG_TEXTS[k], "<|end|>") == 0) continue;
        if (tool_resp >= 0 && strcmp(EOG_TEXTS[k], "</s>") == 0 && id != t->eos) continue;
        t->eog[id] = 1;
        if (t->type[id] != LM_TOK_CONTROL) {
            t->type[id] = LM_TOK_CONTROL;
            t->dlen[id] = 0;
            changed = 1;
        }
    }
    return changed;
}

/* Rebuild the special-token index after set_eog changed types. */
static int index_specials(struct lm_tokenizer *t)
{
    int n_spec = 0;
    for (int i = 0; i < t->n; i++)
        if (is_special_type(t->type[i]) && t->len[i] > 0) n_spec++;
    int32_t *spec = malloc(((size_t)n_spec + 1) * sizeof *spec);
    struct spec_key *keys = malloc(((size_t)n_spec + 1) * sizeof *keys);
    if (!spec || !keys) {
        free(spec);
        free(keys);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (is_special_type(t->type[i]) && t->len[i] > 0) {
            keys[k].first = (unsigned char)t->text[t->off[i]];
            keys[k].len = t->len[i];
            keys[k].id = i;
            k++;
        }
    }
    qsort(keys, (size_t)n_spec, sizeof *keys, cmp_spec);
    for (int c = 0, j = 0; c <= 256; c++) {
        while (j < n_spec && keys[j].first < (uint32_t)c) j++;
        t->spec_start[c] = (uint32_t)j;
    }
    for (int j = 0; j < n_spec; j++) spec[j] = keys[j].id;
    free(keys);
    free(t->spec);
    t->spec = spec;
    return 0;
}

/* tokenizer.ggml.merges and tokenizer.ggml.pre into a new byte-level BPE
 * state; info gets the pre-tokenizer's defaults. */
static struct lm_bpe *bpe_from_gguf(const struct gguf_file *f, struct lm_bpe_pre_info *info,
                                    char *pre_out, size_t pre_cap, char *err, size_t errlen)
{
    const char *path = f->path ? f->path : "gguf";
    struct gguf_str pre = { "default", 7 };
    if (gguf_find_kv(f, "tokenizer.ggml.pre") &&
        gguf_get_str(f, "tokenizer.ggml.pre", &pre, err, errlen) < 0)
        return NULL;
    char sub[1600];
    struct lm_bpe *b = lm_bpe_new(pre.ptr, (size_t)pre.len, info, sub, sizeof sub);
    if (!b) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.pre': %s", path, sub);
        return NULL;
    }
    snprintf(pre_out, pre_cap, "%.*s", (int)(pre.len < pre_cap ? pre.len : pre_cap - 1), pre.ptr);
    const struct gguf_kv *mk = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!mk) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.merges' is missing (a 'gpt2' tokenizer needs "
                "its BPE merges)", path);
        goto fail;
    }
    if (mk->type != GGUF_T_ARRAY || mk->arr_type != GGUF_T_STRING) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.merges': expected an array of strings", path);
        goto fail;
    }
    if (mk->arr_n > MAX_VOCAB * 4ULL) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.merges': %llu merges is more than %d",
                path, (unsigned long long)mk->arr_n, MAX_VOCAB * 4);
        goto fail;
    }
    size_t nm = (size_t)mk->arr_n;
    const char **ms = malloc((nm + 1) * sizeof *ms);
    uint64_t *ml = malloc((nm + 1) * sizeof *ml);
    if (!ms || !ml) {
        free(ms);
        free(ml);
        set_err(err, errlen, "%s: out of memory reading %zu merges", path, nm);
        goto fail;
    }
    for (size_t i = 0; i < nm; i++) {
        struct gguf_str m = gguf_arr_str(mk, (uint64_t)i);
        ms[i] = m.ptr;
        ml[i] = m.len;
    }
    int rc = lm_bpe_set_merges(b, ms, ml, nm, sub, sizeof sub);
    free(ms);
    free(ml);
    if (rc < 0) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.merges': %s", path, sub);
        goto fail;
    }
    return b;
fail:
    lm_bpe_free(b);
    return NULL;
}

struct lm_tokenizer *lm_tok_from_gguf(const struct gguf_file *f, char *err, size_t errlen)
{
    const char *path = f->path ? f->path : "gguf";
    struct gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, err, errlen) < 0) return NULL;
    int kind;
    if (model.len == 5 && memcmp(model.ptr, "llama", 5) == 0) {
        kind = LM_TOKENIZER_SPM;
    } else if (model.len == 4 && memcmp(model.ptr, "gpt2", 4) == 0) {
        kind = LM_TOKENIZER_BPE;
    } else if (model.len == 4 && memcmp(model.ptr, "bert", 4) == 0) {
        kind = LM_TOKENIZER_WPM;
    } else {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.model': tokenizer '%.*s' is not supported "
                "(supported: 'llama' = SentencePiece BPE, 'gpt2' = byte-level BPE, 'bert' = WordPiece)", path,
                (int)(model.len > 64 ? 64 : model.len), model.ptr);
        return NULL;
    }
    const struct gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tk) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.tokens' is missing", path);
        return NULL;
    }
    if (tk->type != GGUF_T_ARRAY || tk->arr_type != GGUF_T_STRING) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.tokens': expected an array of strings", path);
        return NULL;
    }
    if (tk->arr_n == 0 || tk->arr_n > MAX_VOCAB) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.tokens': %llu tokens (expected 1..%d)", path,
                (unsigned long long)tk->arr_n, MAX_VOCAB);
        return NULL;
    }
    int n = (int)tk->arr_n;
    const struct gguf_kv *sk = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (sk && (sk->type != GGUF_T_ARRAY || sk->arr_type != GGUF_T_FLOAT32 || sk->arr_n != tk->arr_n)) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.scores': expected an array of %d float32",
                path, n);
        return NULL;
    }
    const struct gguf_kv *yk = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (yk && (yk->type != GGUF_T_ARRAY || yk->arr_type != GGUF_T_INT32 || yk->arr_n != tk->arr_n)) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.token_type': expected an array of %d int32",
                path, n);
        return NULL;
    }

    struct lm_bpe_pre_info info = { 0 };
    struct lm_bpe *bpe = NULL;
    char pre[48] = "";
    if (kind == LM_TOKENIZER_BPE) {
        bpe = bpe_from_gguf(f, &info, pre, sizeof pre, err, errlen);
        if (!bpe) return NULL;
    }
    /* defaults as llama.cpp: SentencePiece <s>=1 </s>=2 <unk>=0 with BOS and
     * the space prefix; byte-level BPE id 11 for both, no UNK, no BOS unless
     * the pre-tokenizer's family adds one */
    int def_bos = kind == LM_TOKENIZER_BPE ? 11 : 1, def_eos = kind == LM_TOKENIZER_BPE ? 11 : 2;
    int def_unk = kind == LM_TOKENIZER_BPE ? -1 : 0;
    int bos, eos, unk, add_bos, add_eos, add_prefix;
    if (kind == LM_TOKENIZER_WPM) {
        /* BERT: [CLS] text [SEP]; [SEP] plays the part of the EOS added */
        if (get_opt_id(f, "tokenizer.ggml.cls_token_id", 101, n, &def_bos, err, errlen) < 0 ||
            get_opt_id(f, "tokenizer.ggml.seperator_token_id", 102, n, &def_eos, err, errlen) < 0)
            goto fail;
        def_unk = 100;
    }
    if (get_opt_id(f, "tokenizer.ggml.bos_token_id", def_bos, n, &bos, err, errlen) < 0 ||
        get_opt_id(f, "tokenizer.ggml.eos_token_id", def_eos, n, &eos, err, errlen) < 0 ||
        get_opt_id(f, "tokenizer.ggml.unknown_token_id", def_unk, n, &unk, err, errlen) < 0)
        goto fail;
    if (kind == LM_TOKENIZER_WPM) {
        if (get_opt_id(f, "tokenizer.ggml.seperator_token_id", eos, n, &eos, err, errlen) < 0)
            goto fail;
    }
    if (info.no_bos) bos = -1;
    int def_add_bos = kind == LM_TOKENIZER_BPE ? info.add_bos : 1;
    if (get_opt_bool(f, "tokenizer.ggml.add_bos_token", def_add_bos && bos >= 0, &add_bos, err,
                     errlen) < 0 ||
        get_opt_bool(f, "tokenizer.ggml.add_eos_token", kind == LM_TOKENIZER_WPM, &add_eos, err,
                     errlen) < 0 ||
        get_opt_bool(f, "tokenizer.ggml.add_space_prefix", kind == LM_TOKENIZER_SPM, &add_prefix,
                     err, errlen) < 0)
        goto fail;
    const char *names[3] = { "bos_token_id", "eos_token_id", "unknown_token_id" };
    int *ids[3] = { &bos, &eos, &unk };
    for (int i = 0; i < 3; i++) {
        if (*ids[i] >= n) {
            set_err(err, errlen, "%s: key 'tokenizer.ggml.%s': id %d is outside the vocabulary "
                    "(%d tokens)", path, names[i], *ids[i], n);
            goto fail;
        }
    }
    if (add_bos && bos < 0) {
        set_err(err, errlen, "%s: key 'tokenizer.ggml.add_bos_token' is true but the vocabulary "
                "has no BOS token", path);
        goto fail;
    }

    const char **toks = malloc((size_t)n * sizeof *toks);
    uint32_t *lens = malloc((size_t)n * sizeof *lens);
    float *scores = sk ? malloc((size_t)n * sizeof *scores) : NULL;
    int32_t *types = yk ? malloc((size_t)n * sizeof *types) : NULL;
    struct lm_tokenizer *t = NULL;
    if (!toks || !lens || (sk && !scores) || (yk && !types)) {
        set_err(err, errlen, "%s: out of memory reading %d tokens", path, n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        struct gguf_str s = gguf_arr_str(tk, (uint64_t)i);
        if (s.len > MAX_PIECE_LEN) {
            set_err(err, errlen, "%s: key 'tokenizer.ggml.tokens': token %d is %llu bytes long",
                    path, i, (unsigned long long)s.len);
            goto done;
        }
        toks[i] = s.ptr;
        lens[i] = (uint32_t)s.len;
    }
    if (sk) memcpy(scores, sk->arr_data, (size_t)n * sizeof *scores);
    if (yk) memcpy(types, yk->arr_data, (size_t)n * sizeof *types);
    char sub[200];
    t = tok_build(kind, bpe, n, toks, lens, scores, types, bos, eos, unk, add_bos, add_prefix,
                  sub, sizeof sub);
    bpe = NULL;
    if (!t) {
        set_err(err, errlen, "%s: %s", path, sub);
        goto done;
    }
    memcpy(t->pre, pre, sizeof t->pre);
    t->add_eos = add_eos;
    int ch = set_eog(t, f, err, errlen);
    if (ch < 0 || (ch > 0 && index_specials(t) < 0)) {
        if (ch > 0) set_err(err, errlen, "%s: out of memory indexing special tokens", path);
        lm_tok_free(t);
        t = NULL;
    }
done:
    free(toks);
    free(lens);
    free(scores);
    free(types);
    return t;
fail:
    lm_bpe_free(bpe);
    return NULL;
}
