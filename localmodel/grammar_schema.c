/*
 * grammar_schema.c - JSON schemas (and the regexes of their patterns and
 * formats) compiled to the byte grammar of grammar_int.h.
 *
 * What is compiled is the set of documents llmpin lets the model write,
 * which is a subset of what the schema accepts, chosen so that every one of
 * them validates:
 *   - objects list their properties in the schema's order; optional ones may
 *     be left out; no property the schema does not name is written (even
 *     when additionalProperties allows them), except in a map
 *     (additionalProperties a schema and no properties);
 *   - numbers are written without exponent, at most 18 integer and 15
 *     fraction digits; bounds are met exactly for integers, and for numbers
 *     by an integer-aligned range inside the bounds;
 *   - whitespace between tokens is a space or a newline and an indent of up
 *     to 8 spaces per gap, and none after
 *     the document, so it ends as soon as it is complete;
 *   - patterns are JSON Schema's (unanchored unless ^/$ say otherwise) over
 *     the string's characters; a character that JSON must escape is written
 *     escaped; "." and negated classes write printable characters.
 * Whatever is not supported is refused naming its path and keyword, never
 * ignored: a schema keyword that constrains values and is not in the list
 * below makes the compile fail.
 */
#include "localmodel/grammar.h"
#include "localmodel/grammar_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_COUNT 10000        /* minItems and regex {m,n} above this are refused */
#define WS_INDENT 8
#define INT_DIGITS 18
#define FRAC_DIGITS 15
#define INF_BOUND ((long long)999999999999999999LL)   /* 18 nines */

/* ---- builder ----------------------------------------------------------------------- */

static void fail(struct gbuild *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    b->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
}

int gb_node(struct gbuild *b, int kind, int a, int n, int max, int set)
{
    struct lm_grammar *g = b->g;
    if (b->failed)
        return -1;
    if (g->n_nodes >= LM_GRAMMAR_MAX_NODES) {
        fail(b, "schema: needs more than %d grammar nodes; make it smaller", LM_GRAMMAR_MAX_NODES);
        return -1;
    }
    if (g_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes) != 0) {
        fail(b, "out of memory");
        return -1;
    }
    struct gnode *x = &g->nodes[g->n_nodes];
    x->kind = (uint8_t)kind;
    x->a = a;
    x->n = n;
    x->max = max;
    x->set = set;
    return g->n_nodes++;
}

static int nset(struct gbuild *b, const uint32_t set[8])
{
    struct lm_grammar *g = b->g;
    if (b->failed)
        return -1;
    if (g_grow((void **)&g->sets, &g->cap_sets, g->n_sets + 1, sizeof *g->sets) != 0) {
        fail(b, "out of memory");
        return -1;
    }
    memcpy(g->sets[g->n_sets], set, sizeof g->sets[0]);
    return gb_node(b, G_BYTES, 0, 0, 0, g->n_sets++);
}

static void set_add(uint32_t s[8], unsigned c) { s[c >> 5] |= 1u << (c & 31); }
static void set_range(uint32_t s[8], unsigned lo, unsigned hi)
{
    for (unsigned c = lo; c <= hi; c++)
        set_add(s, c);
}

static int nrange(struct gbuild *b, unsigned lo, unsigned hi)
{
    uint32_t s[8] = { 0 };
    set_range(s, lo, hi);
    return nset(b, s);
}

static int nbyte(struct gbuild *b, unsigned char c)
{
    if (b->byte_node[c] < 0)
        b->byte_node[c] = nrange(b, c, c);
    return b->byte_node[c];
}

/* SEQ/ALT of ids[0..n); a single id is itself (no node). */
static int nlist(struct gbuild *b, int kind, const int *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0)
            return -1;
    if (n == 1)
        return ids[0];
    struct lm_grammar *g = b->g;
    if (b->failed || g_grow((void **)&g->kids, &g->cap_kids, g->n_kids + n, sizeof *g->kids) != 0) {
        fail(b, "out of memory");
        return -1;
    }
    int a = g->n_kids;
    if (n > 0)
        memcpy(g->kids + a, ids, (size_t)n * sizeof *ids);
    g->n_kids += n;
    return gb_node(b, kind, a, n, 0, 0);
}
#define NARGS(...) ((int)(sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)))
#define SEQ(b, ...) nlist(b, G_SEQ, (int[]){ __VA_ARGS__ }, NARGS(__VA_ARGS__))
#define ALT(b, ...) nlist(b, G_ALT, (int[]){ __VA_ARGS__ }, NARGS(__VA_ARGS__))

static int nrep(struct gbuild *b, int kid, int min, int max)
{
    if (kid < 0)
        return -1;
    return gb_node(b, G_REP, kid, min, max, 0);
}
static int nopt(struct gbuild *b, int kid) { return nrep(b, kid, 0, 1); }

static int neps(struct gbuild *b)
{
    if (b->eps < 0)
        b->eps = nlist(b, G_SEQ, NULL, 0);
    return b->eps;
}

static int nlit(struct gbuild *b, const char *s, size_t n)
{
    if (n == 0)
        return neps(b);
    int ids[64];
    if (n <= 64) {
        for (size_t i = 0; i < n; i++)
            ids[i] = nbyte(b, (unsigned char)s[i]);
        return nlist(b, G_SEQ, ids, (int)n);
    }
    int *big = malloc(n * sizeof *big);
    if (!big) {
        fail(b, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        big[i] = nbyte(b, (unsigned char)s[i]);
    int r = nlist(b, G_SEQ, big, (int)n);
    free(big);
    return r;
}
static int nlits(struct gbuild *b, const char *s) { return nlit(b, s, strlen(s)); }

/* ---- JSON lexical pieces ----------------------------------------------------------------- */

struct sc {
    struct gbuild b;
    const cJSON *root;
    char path[512];
    int depth;
    /* lazily built shared pieces */
    int ws, sep, chr, str, any, utf8;
    struct { char *ref; int node; } *refs;
    int n_refs, cap_refs;
};

/* Between tokens: nothing, one space, or a newline and an indent of up to
 * WS_INDENT spaces: pretty-printed and compact JSON both fit, and a weak
 * model cannot spend its tokens on whitespace. */
static int ws(struct sc *c)
{
    struct gbuild *b = &c->b;
    if (c->ws < 0)
        c->ws = nopt(b, ALT(b, nbyte(b, ' '), SEQ(b, nbyte(b, '\n'), nrep(b, nbyte(b, ' '), 0, WS_INDENT))));
    return c->ws;
}

static int sep(struct sc *c)
{
    if (c->sep < 0)
        c->sep = SEQ(&c->b, ws(c), nbyte(&c->b, ','), ws(c));
    return c->sep;
}

/* One non-ASCII character, as well-formed UTF-8. */
static int utf8_multi(struct sc *c)
{
    struct gbuild *b = &c->b;
    if (c->utf8 < 0) {
        int t = nrange(b, 0x80, 0xBF);
        c->utf8 = ALT(b, SEQ(b, nrange(b, 0xC2, 0xDF), t),
                      SEQ(b, nbyte(b, 0xE0), nrange(b, 0xA0, 0xBF), t),
                      SEQ(b, ALT(b, nrange(b, 0xE1, 0xEC), nrange(b, 0xEE, 0xEF)), t, t),
                      SEQ(b, nbyte(b, 0xED), nrange(b, 0x80, 0x9F), t),
                      SEQ(b, nbyte(b, 0xF0), nrange(b, 0x90, 0xBF), t, t),
                      SEQ(b, nrange(b, 0xF1, 0xF3), t, t, t),
                      SEQ(b, nbyte(b, 0xF4), nrange(b, 0x80, 0x8F), t, t));
    }
    return c->utf8;
}

/* One character of a JSON string's text: unescaped, an escape, or UTF-8. */
static int json_char(struct sc *c)
{
    struct gbuild *b = &c->b;
    if (c->chr < 0) {
        uint32_t plain[8] = { 0 }, esc[8] = { 0 }, hex[8] = { 0 };
        set_range(plain, 0x20, 0x7F);
        plain['"' >> 5] &= ~(1u << ('"' & 31));
        plain['\\' >> 5] &= ~(1u << ('\\' & 31));
        for (const char *p = "\"\\/bfnrt"; *p; p++)
            set_add(esc, (unsigned char)*p);
        set_range(hex, '0', '9');
        set_range(hex, 'a', 'f');
        set_range(hex, 'A', 'F');
        int h = nset(b, hex);
        /* \uXXXX names a character: no lone surrogate (parsers refuse
         * them), a high one only with its low one after it */
        uint32_t h_nod[8], lo7[8] = { 0 }, hi_s[8] = { 0 }, lo_s[8] = { 0 }, d[8] = { 0 };
        memcpy(h_nod, hex, sizeof hex);
        h_nod['d' >> 5] &= ~(1u << ('d' & 31));
        h_nod['D' >> 5] &= ~(1u << ('D' & 31));
        set_range(lo7, '0', '7');
        set_range(hi_s, '8', '9');
        set_range(hi_s, 'a', 'b');
        set_range(hi_s, 'A', 'B');
        set_range(lo_s, 'c', 'f');
        set_range(lo_s, 'C', 'F');
        set_add(d, 'd');
        set_add(d, 'D');
        int nd = nset(b, d);
        int u = ALT(b, SEQ(b, nset(b, h_nod), h, h, h), SEQ(b, nd, nset(b, lo7), h, h),
                    SEQ(b, nd, nset(b, hi_s), h, h, nbyte(b, '\\'), nbyte(b, 'u'), nd, nset(b, lo_s), h, h));
        c->chr = ALT(b, nset(b, plain),
                     SEQ(b, nbyte(b, '\\'), ALT(b, nset(b, esc), SEQ(b, nbyte(b, 'u'), u))),
                     utf8_multi(c));
    }
    return c->chr;
}

static int json_string(struct sc *c)
{
    if (c->str < 0)
        c->str = SEQ(&c->b, nbyte(&c->b, '"'), nrep(&c->b, json_char(c), 0, -1), nbyte(&c->b, '"'));
    return c->str;
}

/* ---- integers in a range -------------------------------------------------------------- */

static int digits_any(struct gbuild *b, int n)
{
    return n == 0 ? neps(b) : nrep(b, nrange(b, '0', '9'), n, n);
}

/* Digit strings of x's length between x and y (same length) inclusive. */
static int digits_between(struct gbuild *b, const char *x, const char *y, int n)
{
    if (n == 0)
        return neps(b);
    if (memcmp(x, y, (size_t)n) == 0)
        return nlit(b, x, (size_t)n);
    int full = 1;   /* 00..0 to 99..9: any digits (keeps this linear in n) */
    for (int i = 0; i < n && full; i++)
        full = x[i] == '0' && y[i] == '9';
    if (full)
        return digits_any(b, n);
    if (x[0] == y[0])
        return SEQ(b, nbyte(b, (unsigned char)x[0]), digits_between(b, x + 1, y + 1, n - 1));
    char nines[INT_DIGITS + 1], zeros[INT_DIGITS + 1];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    int alts[3], k = 0;
    alts[k++] = SEQ(b, nbyte(b, (unsigned char)x[0]), digits_between(b, x + 1, nines, n - 1));
    if (y[0] - x[0] > 1)
        alts[k++] = SEQ(b, nrange(b, (unsigned char)(x[0] + 1), (unsigned char)(y[0] - 1)), digits_any(b, n - 1));
    alts[k++] = SEQ(b, nbyte(b, (unsigned char)y[0]), digits_between(b, zeros, y + 1, n - 1));
    return nlist(b, G_ALT, alts, k);
}

/* Non-negative integers lo..hi (0 <= lo <= hi <= INF_BOUND), no leading zeros. */
static int uint_range(struct gbuild *b, long long lo, long long hi)
{
    char ls[32], hs[32];
    int alts[INT_DIGITS + 1], k = 0;
    long long p = 1;
    for (int len = 1; len <= INT_DIGITS; len++, p *= 10) {
        long long first = len == 1 ? 0 : p, last = len == INT_DIGITS ? INF_BOUND : p * 10 - 1;
        long long a = lo > first ? lo : first, z = hi < last ? hi : last;
        if (a > z)
            continue;
        snprintf(ls, sizeof ls, "%lld", a);
        snprintf(hs, sizeof hs, "%lld", z);
        alts[k++] = digits_between(b, ls, hs, len);
    }
    return nlist(b, G_ALT, alts, k);
}

/* Integers lo..hi (either may be -INF_BOUND / INF_BOUND for "unbounded"). */
static int int_range(struct gbuild *b, long long lo, long long hi)
{
    int alts[2], k = 0;
    if (hi >= 0)
        alts[k++] = uint_range(b, lo > 0 ? lo : 0, hi);
    if (lo < 0)     /* -1 .. lo, as magnitudes 1 .. -lo */
        alts[k++] = SEQ(b, nbyte(b, '-'), uint_range(b, hi < -1 ? -hi : 1, -lo));
    return nlist(b, G_ALT, alts, k);
}

/* Numbers in [lo, hi] (integers; unbounded as above): an integer part and
 * a fraction where the whole interval the fraction spans is inside. */
static int num_range(struct gbuild *b, long long lo, long long hi)
{
    int frac = SEQ(b, nbyte(b, '.'), nrep(b, nrange(b, '0', '9'), 1, FRAC_DIGITS));
    int alts[4], k = 0;
    /* positive: k.f in [k, k+1) needs max(lo,0) <= k <= hi-1; k exact needs k <= hi */
    long long a = lo > 0 ? lo : 0;
    if (hi >= a)
        alts[k++] = uint_range(b, a, hi);
    if (hi - 1 >= a)
        alts[k++] = SEQ(b, uint_range(b, a, hi - 1 < INF_BOUND ? hi - 1 : INF_BOUND), frac);
    /* negative: -k.f in (-(k+1), -k] needs max(-hi,0) <= k <= -lo-1; -k exact: 1.. */
    if (lo < 0) {
        long long m = hi < 0 ? -hi : 0;
        long long top = lo <= -INF_BOUND ? INF_BOUND : -lo;
        if (top >= (m > 1 ? m : 1))
            alts[k++] = SEQ(b, nbyte(b, '-'), uint_range(b, m > 1 ? m : 1, top));
        if (top - 1 >= m)
            alts[k++] = SEQ(b, nbyte(b, '-'), uint_range(b, m, top - 1), frac);
    }
    return nlist(b, G_ALT, alts, k);
}

/* ---- regexes (pattern, format) ------------------------------------------------------- */

/* A character class: ASCII members, non-ASCII members, negation. */
struct rclass {
    uint32_t ascii[4];
    uint32_t *cps;
    int n_cps, cap_cps;
    int neg, any_nonascii;
};

struct rx {
    struct sc *c;
    const char *p, *end;
    const char *kw;   /* "pattern" or "format 'x'" for errors */
    int depth;
};

static void sfail(struct sc *c, const char *fmt, ...);
static void rfail(struct rx *r, const char *what)
{
    sfail(r->c, "'%s' uses %s, which llmpin cannot constrain to", r->kw, what);
}

/* The JSON-string bytes of ASCII character ch. */
static int ascii_char_node(struct gbuild *b, unsigned ch)
{
    char e[8];
    switch (ch) {
    case '"': return nlits(b, "\\\"");
    case '\\': return nlits(b, "\\\\");
    case '\n': return nlits(b, "\\n");
    case '\t': return nlits(b, "\\t");
    case '\r': return nlits(b, "\\r");
    case '\f': return nlits(b, "\\f");
    case '\b': return nlits(b, "\\b");
    default:
        if (ch < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", ch);
            return nlits(b, e);
        }
        return nbyte(b, (unsigned char)ch);
    }
}

static int cp_utf8(uint32_t cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static int class_node(struct rx *r, struct rclass *k)
{
    struct gbuild *b = &r->c->b;
    int alts[130 + 1], n = 0;
    uint32_t plain[8] = { 0 };
    int nplain = 0;
    for (unsigned ch = 0; ch < 128; ch++) {
        int in = (k->ascii[ch >> 5] >> (ch & 31)) & 1;
        if (k->neg) /* negations write printable characters only */
            in = !in && ch >= 0x20 && ch < 0x7F;
        if (!in)
            continue;
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            set_add(plain, ch);
            nplain++;
        } else {
            alts[n++] = ascii_char_node(b, ch);
        }
    }
    if (nplain)
        alts[n++] = nset(b, plain);
    if (k->neg || k->any_nonascii)
        alts[n++] = utf8_multi(r->c);
    int r1 = nlist(b, G_ALT, alts, n);
    if (!k->neg && k->n_cps > 0) {
        int *more = malloc((size_t)(k->n_cps + 1) * sizeof *more);
        if (!more) {
            fail(b, "out of memory");
            return -1;
        }
        int m = 0;
        if (n)
            more[m++] = r1;
        for (int i = 0; i < k->n_cps; i++) {
            char u[4];
            more[m++] = nlit(b, u, (size_t)cp_utf8(k->cps[i], u));
        }
        r1 = nlist(b, G_ALT, more, m);
        free(more);
    }
    return r1;
}

static void class_add(struct rx *r, struct rclass *k, uint32_t cp)
{
    if (cp < 128) {
        k->ascii[cp >> 5] |= 1u << (cp & 31);
        return;
    }
    if (k->n_cps >= 4096) {
        rfail(r, "a character class with more than 4096 non-ASCII characters");
        return;
    }
    if (k->n_cps == k->cap_cps) {
        k->cap_cps = k->cap_cps ? 2 * k->cap_cps : 16;
        uint32_t *q = realloc(k->cps, (size_t)k->cap_cps * sizeof *q);
        if (!q) {
            fail(&r->c->b, "out of memory");
            return;
        }
        k->cps = q;
    }
    k->cps[k->n_cps++] = cp;
}

/* Decode one UTF-8 character at r->p. */
static uint32_t rx_cp(struct rx *r)
{
    const unsigned char *s = (const unsigned char *)r->p;
    uint32_t cp = s[0];
    int n = cp < 0x80 ? 1 : cp >= 0xF0 ? 4 : cp >= 0xE0 ? 3 : cp >= 0xC0 ? 2 : 0;
    if (n == 0 || r->p + n > r->end) {
        rfail(r, "bytes that are not UTF-8");
        r->p = r->end;
        return 0;
    }
    if (n > 1) {
        cp &= 0x3Fu >> (n - 1);
        for (int i = 1; i < n; i++)
            cp = cp << 6 | (s[i] & 63);
    }
    r->p += n;
    return cp;
}

/* Shorthand classes \d \w \s (and uppercase negations) into k. 1 if c was one. */
static int shorthand(struct rclass *k, char c, int *negated)
{
    uint32_t s[4] = { 0 };
    switch (c | 0x20) {
    case 'd': for (int i = '0'; i <= '9'; i++) s[i >> 5] |= 1u << (i & 31); break;
    case 'w':
        for (int i = 0; i < 128; i++)
            if ((i >= '0' && i <= '9') || (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z') || i == '_')
                s[i >> 5] |= 1u << (i & 31);
        break;
    case 's': for (const char *p = " \t\n\r\f\v"; *p; p++) s[*p >> 5] |= 1u << (*p & 31); break;
    default: return 0;
    }
    *negated = (c >= 'A' && c <= 'Z');
    for (int i = 0; i < 4; i++)
        k->ascii[i] |= *negated ? ~s[i] : s[i];
    if (*negated)
        k->any_nonascii = 1;
    return 1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* An escape after '\' (r->p at the letter): a code point, or -1 for a
 * shorthand class put into k (k may be NULL outside a class: then -2). */
static long rx_escape(struct rx *r, struct rclass *k)
{
    if (r->p >= r->end) {
        rfail(r, "a trailing backslash");
        return -3;
    }
    char e = *r->p++;
    int neg;
    if (k && shorthand(k, e, &neg))
        return -1;
    if (!k && strchr("dwsDWS", e))
        return -2;
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    case 'x': case 'u': {
        int n = e == 'x' ? 2 : 4;
        long v = 0;
        for (int i = 0; i < n; i++) {
            int h = r->p < r->end ? hexval(*r->p) : -1;
            if (h < 0) {
                rfail(r, e == 'x' ? "a malformed \\x escape" : "a malformed \\u escape");
                return -3;
            }
            v = v * 16 + h;
            r->p++;
        }
        if (v >= 0xD800 && v <= 0xDFFF) {
            rfail(r, "a surrogate \\u escape");
            return -3;
        }
        return v;
    }
    default:
        if (e >= '1' && e <= '9') {
            rfail(r, "a backreference");
            return -3;
        }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
            char what[48];
            snprintf(what, sizeof what, "the escape \\%c", e);
            rfail(r, what);
            return -3;
        }
        r->p--;
        return (long)rx_cp(r);
    }
}

static int rx_alt(struct rx *r);

static int rx_class(struct rx *r)
{
    struct rclass k = { { 0 }, NULL, 0, 0, 0, 0 };
    if (r->p < r->end && *r->p == '^') {
        k.neg = 1;
        r->p++;
    }
    int first = 1;
    while (r->p < r->end && (*r->p != ']' || first) && !r->c->b.failed) {
        first = 0;
        long lo;
        if (*r->p == '\\') {
            r->p++;
            lo = rx_escape(r, &k);
            if (lo == -1)
                continue;
            if (lo < 0)
                break;
        } else {
            lo = (long)rx_cp(r);
        }
        long hi = lo;
        if (r->p + 1 < r->end && *r->p == '-' && r->p[1] != ']') {
            r->p++;
            if (*r->p == '\\') {
                r->p++;
                hi = rx_escape(r, NULL);
                if (hi < 0) {
                    if (hi == -2)
                        rfail(r, "a class shorthand as a range end");
                    break;
                }
            } else {
                hi = (long)rx_cp(r);
            }
            if (hi < lo) {
                rfail(r, "a character range whose end is before its start");
                break;
            }
            if (hi >= 128 && hi - lo > 4096) {
                rfail(r, "a non-ASCII character range wider than 4096");
                break;
            }
        }
        for (long cp = lo; cp <= hi && !r->c->b.failed; cp++)
            class_add(r, &k, (uint32_t)cp);
    }
    if (!r->c->b.failed && (r->p >= r->end || *r->p != ']'))
        rfail(r, "an unclosed '['");
    r->p++;
    if (k.neg && k.n_cps > 0)
        rfail(r, "a negated class with non-ASCII characters");
    int n = r->c->b.failed ? -1 : class_node(r, &k);
    free(k.cps);
    return n;
}

static int rx_atom(struct rx *r)
{
    struct gbuild *b = &r->c->b;
    char ch = *r->p;
    if (ch == '(') {
        r->p++;
        if (r->p < r->end && *r->p == '?') {
            if (r->p + 1 < r->end && r->p[1] == ':') {
                r->p += 2;
            } else {
                rfail(r, "a lookaround or group flag '(?'");
                return -1;
            }
        }
        if (++r->depth > 64) {
            rfail(r, "groups nested deeper than 64");
            return -1;
        }
        int n = rx_alt(r);
        r->depth--;
        if (r->p >= r->end || *r->p != ')') {
            rfail(r, "an unclosed '('");
            return -1;
        }
        r->p++;
        return n;
    }
    if (ch == '[') {
        r->p++;
        return rx_class(r);
    }
    if (ch == '.') {
        r->p++;
        struct rclass k = { { 0 }, NULL, 0, 0, 1, 0 };
        k.ascii['\n' >> 5] |= 1u << ('\n' & 31);
        return class_node(r, &k);
    }
    if (ch == '^' || ch == '$') {
        rfail(r, "an anchor ('^' or '$') inside the pattern");
        return -1;
    }
    if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
        rfail(r, "a quantifier with nothing before it");
        return -1;
    }
    if (ch == '\\') {
        r->p++;
        struct rclass k = { { 0 }, NULL, 0, 0, 0, 0 };
        long cp = rx_escape(r, &k);
        if (cp == -1)
            return class_node(r, &k);
        if (cp < 0)
            return -1;
        if (cp < 128)
            return ascii_char_node(b, (unsigned)cp);
        char u[4];
        return nlit(b, u, (size_t)cp_utf8((uint32_t)cp, u));
    }
    uint32_t cp = rx_cp(r);
    if (cp < 128)
        return ascii_char_node(b, cp);
    char u[4];
    return nlit(b, u, (size_t)cp_utf8(cp, u));
}

static int rx_number(struct rx *r, int *v)
{
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return 0;
    long x = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        x = x * 10 + (*r->p++ - '0');
        if (x > MAX_COUNT)
            x = MAX_COUNT + 1;
    }
    *v = (int)x;
    return 1;
}

static int rx_seq(struct rx *r)
{
    int cap = 0, n = 0;
    int *items = NULL;
    while (r->p < r->end && *r->p != '|' && *r->p != ')' && !r->c->b.failed) {
        int a = rx_atom(r);
        if (a < 0)
            break;
        while (r->p < r->end && strchr("*+?{", *r->p)) {
            int min, max;
            char q = *r->p++;
            if (q == '*') { min = 0; max = -1; }
            else if (q == '+') { min = 1; max = -1; }
            else if (q == '?') { min = 0; max = 1; }
            else {
                if (!rx_number(r, &min)) {
                    rfail(r, "a '{' that is not a {m,n} quantifier");
                    a = -1;
                    break;
                }
                max = min;
                if (r->p < r->end && *r->p == ',') {
                    r->p++;
                    if (!rx_number(r, &max))
                        max = -1;
                }
                if (r->p >= r->end || *r->p != '}') {
                    rfail(r, "an unclosed '{'");
                    a = -1;
                    break;
                }
                r->p++;
                if (min > MAX_COUNT || max > MAX_COUNT) {
                    rfail(r, "a repetition count above 10000");
                    a = -1;
                    break;
                }
                if (max >= 0 && max < min) {
                    rfail(r, "a {m,n} quantifier with n < m");
                    a = -1;
                    break;
                }
            }
            if (r->p < r->end && (*r->p == '?' || *r->p == '+'))
                r->p++;   /* lazy/possessive: the same language */
            a = nrep(&r->c->b, a, min, max);
        }
        if (a < 0)
            break;
        if (g_grow((void **)&items, &cap, n + 1, sizeof *items) != 0) {
            fail(&r->c->b, "out of memory");
            break;
        }
        items[n++] = a;
    }
    int res = r->c->b.failed ? -1 : n == 0 ? neps(&r->c->b) : nlist(&r->c->b, G_SEQ, items, n);
    free(items);
    return res;
}

static int rx_alt(struct rx *r)
{
    int cap = 0, n = 0;
    int *alts = NULL;
    for (;;) {
        int s = rx_seq(r);
        if (s < 0)
            break;
        if (g_grow((void **)&alts, &cap, n + 1, sizeof *alts) != 0) {
            fail(&r->c->b, "out of memory");
            break;
        }
        alts[n++] = s;
        if (r->p < r->end && *r->p == '|') {
            r->p++;
            continue;
        }
        break;
    }
    int res = r->c->b.failed ? -1 : nlist(&r->c->b, G_ALT, alts, n);
    free(alts);
    return res;
}

/* A JSON string whose text matches regex re (JSON Schema semantics: a
 * search, unless anchored). */
static int pattern_string(struct sc *c, const char *re, const char *kw)
{
    struct rx r = { c, re, re + strlen(re), kw, 0 };
    int anchored_start = 0, anchored_end = 0;
    if (r.p < r.end && *r.p == '^') {
        anchored_start = 1;
        r.p++;
    }
    if (r.end > r.p && r.end[-1] == '$' && (r.end - 1 == r.p || r.end[-2] != '\\')) {
        anchored_end = 1;
        r.end--;
    }
    int body = rx_alt(&r);
    if (body >= 0 && r.p < r.end)
        rfail(&r, "an unmatched ')'");
    if (c->b.failed)
        return -1;
    int any = nrep(&c->b, json_char(c), 0, -1);
    return SEQ(&c->b, nbyte(&c->b, '"'), anchored_start ? neps(&c->b) : any, body,
               anchored_end ? neps(&c->b) : any, nbyte(&c->b, '"'));
}

/* OpenAI's string formats, each as a regex whose every match is valid. */
static const struct { const char *name, *re; } formats[] = {
    { "date", "^([1-9]\\d{3}|0[1-9]\\d\\d|00[1-9]\\d|000[1-9])-((0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|(0[469]|11)-(0[1-9]|[12]\\d|30)|02-(0[1-9]|1\\d|2[0-8]))$" },
    { "time", "^([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,6})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$" },
    { "date-time", "^([1-9]\\d{3}|0[1-9]\\d\\d|00[1-9]\\d|000[1-9])-((0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|(0[469]|11)-(0[1-9]|[12]\\d|30)|02-(0[1-9]|1\\d|2[0-8]))"
                   "T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,6})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$" },
    { "duration", "^P(\\d{1,4}Y(\\d{1,2}M)?(\\d{1,2}D)?|\\d{1,2}M(\\d{1,2}D)?|\\d{1,3}D|\\d{1,3}W)"
                  "(T\\d{1,2}H(\\d{1,2}M)?(\\d{1,2}S)?)?$" },
    { "uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" },
    { "email", "^[a-zA-Z0-9_%+-]{1,32}(\\.[a-zA-Z0-9_%+-]{1,32}){0,3}@[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?"
               "(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?){0,3}\\.[a-zA-Z]{2,8}$" },
    { "hostname", "^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?){0,4}$" },
    { "ipv4", "^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$" },
    { "ipv6", "^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$" },
};

/* ---- schemas ------------------------------------------------------------------------- */

enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_NUM = 32, T_INT = 64 };

static void sfail(struct sc *c, const char *fmt, ...)
{
    if (c->b.failed)
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t pl = strlen(c->path);   /* a deep path keeps its end: the message must fit */
    if (pl > 160)
        fail(&c->b, "schema...%s: %s", c->path + pl - 150, msg);
    else
        fail(&c->b, "schema%s: %s", c->path, msg);
}

/* Path bookkeeping for error messages: push ".properties.name", pop. */
static size_t path_push(struct sc *c, const char *a, const char *b)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "%s%s", a, b ? b : "");
    return old;
}
static void path_pop(struct sc *c, size_t old) { c->path[old] = 0; }

static int sc_schema(struct sc *c, const cJSON *s);

static int any_value(struct sc *c)
{
    struct gbuild *b = &c->b;
    if (c->any >= 0)
        return c->any;
    /* a placeholder ALT whose one kid is patched after the value is built */
    int v = nlist(b, G_ALT, (int[]){ 0, 0 }, 2);
    if (v < 0)
        return -1;
    c->any = v;
    int member = SEQ(b, json_string(c), ws(c), nbyte(b, ':'), ws(c), v);
    int obj = SEQ(b, nbyte(b, '{'), ws(c), nopt(b, SEQ(b, member, nrep(b, SEQ(b, sep(c), member), 0, -1))), ws(c),
                  nbyte(b, '}'));
    int arr = SEQ(b, nbyte(b, '['), ws(c), nopt(b, SEQ(b, v, nrep(b, SEQ(b, sep(c), v), 0, -1))), ws(c),
                  nbyte(b, ']'));
    int num = SEQ(b, nopt(b, nbyte(b, '-')), uint_range(b, 0, INF_BOUND),
                  nopt(b, SEQ(b, nbyte(b, '.'), nrep(b, nrange(b, '0', '9'), 1, FRAC_DIGITS))));
    int scal = ALT(b, json_string(c), num, nlits(b, "true"), nlits(b, "false"), nlits(b, "null"));
    if (b->failed)
        return -1;
    struct gnode *x = &b->g->nodes[v];
    b->g->kids[x->a] = ALT(b, obj, arr);
    b->g->kids[x->a + 1] = scal;
    return v;
}

static int json_type_of(const cJSON *v)
{
    if (cJSON_IsNull(v)) return T_NULL;
    if (cJSON_IsBool(v)) return T_BOOL;
    if (cJSON_IsString(v)) return T_STR;
    if (cJSON_IsArray(v)) return T_ARR;
    if (cJSON_IsObject(v)) return T_OBJ;
    if (cJSON_IsNumber(v)) return T_NUM | (v->valuedouble == floor(v->valuedouble) ? T_INT : 0);
    return 0;
}

static int type_bit(const char *t)
{
    static const char *names[] = { "null", "boolean", "object", "array", "string", "number", "integer" };
    for (int i = 0; i < 7; i++)
        if (strcmp(t, names[i]) == 0)
            return 1 << i;
    return 0;
}

/* The literal JSON text of a value (enum, const). */
static int literal_value(struct sc *c, const cJSON *v)
{
    char *t = cJSON_PrintUnformatted(v);
    if (!t) {
        fail(&c->b, "out of memory");
        return -1;
    }
    int n = nlits(&c->b, t);
    free(t);
    return n;
}

static int enum_node(struct sc *c, const cJSON *values, int types, const char *kw)
{
    int cnt = cJSON_GetArraySize(values), n = 0;
    if (cnt > 10000) {
        sfail(c, "'%s' has %d values; at most 10000", kw, cnt);
        return -1;
    }
    int *alts = malloc((size_t)(cnt + 1) * sizeof *alts);
    if (!alts) {
        fail(&c->b, "out of memory");
        return -1;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, values) {
        int t = json_type_of(v);
        if (types && !(t & types))
            continue;
        alts[n++] = literal_value(c, v);
    }
    int r = -1;
    if (n == 0)
        sfail(c, "no value of '%s' has the type the schema asks for", kw);
    else
        r = nlist(&c->b, G_ALT, alts, n);
    free(alts);
    return r;
}

static int get_count(struct sc *c, const cJSON *s, const char *kw, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, kw);
    if (!v)
        return dflt;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble)) {
        sfail(c, "'%s' must be a non-negative integer", kw);
        return -2;
    }
    if (strcmp(kw, "maxItems") == 0)   /* counted as reached: any size costs the same */
        return v->valuedouble >= 2147483647.0 ? 2147483647 : (int)v->valuedouble;
    if (v->valuedouble > MAX_COUNT) {
        sfail(c, "'%s' is above %d", kw, MAX_COUNT);
        return -2;
    }
    return (int)v->valuedouble;
}

static int object_node(struct sc *c, const cJSON *s)
{
    struct gbuild *b = &c->b;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) {
        sfail(c, "'properties' must be an object");
        return -1;
    }
    if (req && !cJSON_IsArray(req)) {
        sfail(c, "'required' must be an array of property names");
        return -1;
    }
    if (addl && !cJSON_IsBool(addl) && !cJSON_IsObject(addl)) {
        sfail(c, "'additionalProperties' must be a boolean or a schema");
        return -1;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, req) {
        if (!cJSON_IsString(r)) {
            sfail(c, "'required' must be an array of property names");
            return -1;
        }
        if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring) && cJSON_IsFalse(addl)) {
            sfail(c, "'required' names '%s', which 'properties' does not define while 'additionalProperties' is false",
                  r->valuestring);
            return -1;
        }
    }
    int n_props = props ? cJSON_GetArraySize(props) : 0, n_extra = 0;
    cJSON_ArrayForEach(r, req)
        if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring))
            n_extra++;
    int total = n_props + n_extra;
    if (total == 0) {
        /* no named property: a map of additionalProperties, or any object */
        if (cJSON_IsFalse(addl))
            return SEQ(b, nbyte(b, '{'), ws(c), nbyte(b, '}'));
        int val;
        if (cJSON_IsObject(addl)) {
            size_t old = path_push(c, ".additionalProperties", NULL);
            val = sc_schema(c, addl);
            path_pop(c, old);
        } else {
            val = any_value(c);
        }
        int member = SEQ(b, json_string(c), ws(c), nbyte(b, ':'), ws(c), val);
        return SEQ(b, nbyte(b, '{'), ws(c), nopt(b, SEQ(b, member, nrep(b, SEQ(b, sep(c), member), 0, -1))), ws(c),
                   nbyte(b, '}'));
    }
    int *kv = malloc((size_t)total * 2 * sizeof *kv);
    if (!kv) {
        fail(b, "out of memory");
        return -1;
    }
    int *isreq = kv + total;
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, props) {
        size_t old = path_push(c, ".properties.", p->string);
        int val = sc_schema(c, p);
        path_pop(c, old);
        cJSON *key = cJSON_CreateString(p->string);
        int k = key ? literal_value(c, key) : -1;
        cJSON_Delete(key);
        kv[i] = SEQ(b, k, ws(c), nbyte(b, ':'), ws(c), val);
        isreq[i] = 0;
        cJSON_ArrayForEach(r, req)
            if (strcmp(r->valuestring, p->string) == 0)
                isreq[i] = 1;
        i++;
    }
    cJSON_ArrayForEach(r, req) {
        if (cJSON_GetObjectItemCaseSensitive(props, r->valuestring))
            continue;
        cJSON *key = cJSON_CreateString(r->valuestring);
        int k = key ? literal_value(c, key) : -1;
        cJSON_Delete(key);
        kv[i] = SEQ(b, k, ws(c), nbyte(b, ':'), ws(c), any_value(c));
        isreq[i++] = 1;
    }
    /* after[i]: properties i.. once one has been written (each after a comma);
     * first[i]: the same when none has been written yet */
    int after = neps(b), first = neps(b);
    for (i = total - 1; i >= 0 && !b->failed; i--) {
        int item = SEQ(b, sep(c), kv[i]);
        int with = SEQ(b, kv[i], after);
        first = isreq[i] ? with : ALT(b, with, first);
        after = SEQ(b, isreq[i] ? item : nopt(b, item), after);
    }
    free(kv);
    return SEQ(b, nbyte(b, '{'), ws(c), first, ws(c), nbyte(b, '}'));
}

static int array_node(struct sc *c, const cJSON *s)
{
    struct gbuild *b = &c->b;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    int min = get_count(c, s, "minItems", 0), max = get_count(c, s, "maxItems", -1);
    if (min < -1 || max < -1)
        return -1;
    if (max >= 0 && max < min) {
        sfail(c, "'minItems' %d is above 'maxItems' %d", min, max);
        return -1;
    }
    if (items && cJSON_IsArray(items)) {
        sfail(c, "'items' as an array (a tuple) is not supported; use one schema");
        return -1;
    }
    int item;
    if (items) {
        size_t old = path_push(c, ".items", NULL);
        item = sc_schema(c, items);
        path_pop(c, old);
    } else {
        item = any_value(c);
    }
    if (max == 0)
        return SEQ(b, nbyte(b, '['), ws(c), nbyte(b, ']'));
    int body = SEQ(b, item, nrep(b, SEQ(b, sep(c), item), min > 0 ? min - 1 : 0, max < 0 ? -1 : max - 1));
    return SEQ(b, nbyte(b, '['), ws(c), min > 0 ? body : nopt(b, body), ws(c), nbyte(b, ']'));
}

static int string_node(struct sc *c, const cJSON *s)
{
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(s, "pattern");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
    if (pat && fmt) {
        sfail(c, "'pattern' together with 'format' is not supported; use one");
        return -1;
    }
    if (pat) {
        if (!cJSON_IsString(pat)) {
            sfail(c, "'pattern' must be a string");
            return -1;
        }
        if (strlen(pat->valuestring) > 4096) {
            sfail(c, "'pattern' is longer than 4096 bytes");
            return -1;
        }
        return pattern_string(c, pat->valuestring, "pattern");
    }
    if (fmt) {
        if (!cJSON_IsString(fmt)) {
            sfail(c, "'format' must be a string");
            return -1;
        }
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
            if (strcmp(fmt->valuestring, formats[i].name) == 0)
                return pattern_string(c, formats[i].re, "format");
        sfail(c, "'format' \"%.40s\" is not supported (date-time, date, time, duration, email, hostname, ipv4, "
              "ipv6, uuid are)", fmt->valuestring);
        return -1;
    }
    return json_string(c);
}

/* Bounds of a number: [lo, hi] as integers, tightened inward. */
static int bounds(struct sc *c, const cJSON *s, int integer, long long *lo, long long *hi)
{
    *lo = -INF_BOUND;
    *hi = INF_BOUND;
    static const char *kws[] = { "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum" };
    for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, kws[i]);
        if (!v)
            continue;
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
            sfail(c, "'%s' must be a number", kws[i]);
            return -1;
        }
        double x = v->valuedouble;
        int lower = i < 2;
        if (fabs(x) >= 1e18) {
            /* llmpin writes at most 18 integer digits: a bound out there
             * either constrains nothing or cannot be met */
            if ((lower && x > 0) || (!lower && x < 0)) {
                sfail(c, "'%s' %g needs more than the 18 integer digits llmpin writes", kws[i], x);
                return -1;
            }
            continue;
        }
        int excl = i == 1 || i == 3;
        long long k;
        if (lower) {
            k = (long long)ceil(x);
            if (excl && (double)k == x)
                k++;
            if (k > *lo)
                *lo = k;
        } else {
            k = (long long)floor(x);
            if (excl && (double)k == x)
                k--;
            if (k < *hi)
                *hi = k;
        }
    }
    if (*lo > *hi) {
        sfail(c, integer ? "no integer lies within the bounds ('minimum'/'maximum' contradict each other)"
                         : "no integer-aligned number lies within the bounds: llmpin cannot constrain a number to "
                           "a range this narrow");
        return -1;
    }
    const cJSON *mo = cJSON_GetObjectItemCaseSensitive(s, "multipleOf");
    if (mo && !(cJSON_IsNumber(mo) && mo->valuedouble == 1 && integer)) {
        sfail(c, "'multipleOf' is not supported (except 1 on integers)");
        return -1;
    }
    return 0;
}

static const char *const handled_kw[] = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum", "const",
    "anyOf", "$ref", "$defs", "definitions", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "nullable", "multipleOf",
    /* annotations: no effect on what is valid */
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
    "writeOnly", "$anchor", "contentMediaType", "contentEncoding", NULL
};
static const char *const annotation_kw[] = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
    "writeOnly", "$anchor", "contentMediaType", "contentEncoding", "$defs", "definitions", NULL
};

static int in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (strcmp(*l, s) == 0)
            return 1;
    return 0;
}

/* "#", "#/$defs/NAME", "#/definitions/NAME" (JSON pointer escapes). */
static const cJSON *resolve_ref(struct sc *c, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return c->root;
    const char *name = NULL, *box = NULL;
    if (strncmp(ref, "#/$defs/", 8) == 0) {
        box = "$defs";
        name = ref + 8;
    } else if (strncmp(ref, "#/definitions/", 14) == 0) {
        box = "definitions";
        name = ref + 14;
    }
    if (!name || strchr(name, '/'))
        return NULL;
    char key[256];
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < sizeof key; p++) {
        if (p[0] == '~' && p[1] == '0') { key[k++] = '~'; p++; }
        else if (p[0] == '~' && p[1] == '1') { key[k++] = '/'; p++; }
        else key[k++] = *p;
    }
    key[k] = 0;
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c->root, box), key);
}

static int ref_node(struct sc *c, const char *ref)
{
    for (int i = 0; i < c->n_refs; i++)
        if (strcmp(c->refs[i].ref, ref) == 0)
            return c->refs[i].node;
    const cJSON *target = resolve_ref(c, ref);
    if (!target) {
        sfail(c, "'$ref' \"%.100s\" is missing (only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\" "
              "within the schema are followed)", ref);
        return -1;
    }
    if (c->n_refs >= 4096) {
        sfail(c, "more than 4096 distinct '$ref' targets");
        return -1;
    }
    if (g_grow((void **)&c->refs, &c->cap_refs, c->n_refs + 1, sizeof *c->refs) != 0) {
        fail(&c->b, "out of memory");
        return -1;
    }
    /* a one-kid ALT now, its kid patched once the target is built: a
     * recursive reference finds this node and points back at it */
    int ph = nlist(&c->b, G_ALT, (int[]){ 0, 0 }, 2);
    if (ph < 0)
        return -1;
    c->b.g->nodes[ph].n = 1;
    char *dup = strdup(ref);
    if (!dup) {
        fail(&c->b, "out of memory");
        return -1;
    }
    c->refs[c->n_refs].ref = dup;
    c->refs[c->n_refs++].node = ph;
    /* errors inside name the definition: schema.$defs.node.properties... */
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    size_t k = 0;
    for (const char *p = ref + 1; *p && k + 1 < sizeof c->path; p++)
        c->path[k++] = *p == '/' ? '.' : *p;
    c->path[k] = 0;
    int body = sc_schema(c, target);   /* depth goes on counting: it bounds the C stack */
    if (!c->b.failed)
        memcpy(c->path, saved, sizeof saved);
    if (body < 0)
        return -1;
    c->b.g->kids[c->b.g->nodes[ph].a] = body;
    return ph;
}

static int sc_schema(struct sc *c, const cJSON *s)
{
    struct gbuild *b = &c->b;
    if (b->failed)
        return -1;
    if (cJSON_IsBool(s)) {
        if (cJSON_IsTrue(s))
            return any_value(c);
        return nlist(b, G_ALT, NULL, 0);   /* false: nothing is valid */
    }
    if (!cJSON_IsObject(s)) {
        sfail(c, "a schema must be an object or a boolean");
        return -1;
    }
    if (++c->depth > MAX_DEPTH) {
        sfail(c, "nested deeper than %d", MAX_DEPTH);
        return -1;
    }
    int res = -1;
    const cJSON *k;
    cJSON_ArrayForEach(k, s) {
        if (!in_list(handled_kw, k->string)) {
            sfail(c, "'%.60s' is not supported", k->string);
            goto out;
        }
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    const cJSON *any_of = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    if (ref || any_of) {
        const char *kw = ref ? "$ref" : "anyOf";
        cJSON_ArrayForEach(k, s) {
            if (strcmp(k->string, kw) != 0 && !in_list(annotation_kw, k->string) &&
                !(strcmp(k->string, "nullable") == 0 && !cJSON_IsTrue(k))) {
                sfail(c, "'%s' beside '%.60s' is not supported; move '%.60s' into it", kw, k->string, k->string);
                goto out;
            }
        }
        if (ref) {
            if (!cJSON_IsString(ref)) {
                sfail(c, "'$ref' must be a string");
                goto out;
            }
            res = ref_node(c, ref->valuestring);
            goto out;
        }
        int cnt = cJSON_GetArraySize(any_of);
        if (!cJSON_IsArray(any_of) || cnt == 0) {
            sfail(c, "'anyOf' must be a non-empty array of schemas");
            goto out;
        }
        int *alts = malloc((size_t)cnt * sizeof *alts), i = 0;
        if (!alts) {
            fail(b, "out of memory");
            goto out;
        }
        const cJSON *a;
        cJSON_ArrayForEach(a, any_of) {
            char idx[16];
            snprintf(idx, sizeof idx, "[%d]", i);
            size_t old = path_push(c, ".anyOf", idx);
            alts[i++] = sc_schema(c, a);
            path_pop(c, old);
        }
        res = nlist(b, G_ALT, alts, cnt);
        free(alts);
        goto out;
    }

    int types = 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (t) {
        const cJSON *e;
        if (cJSON_IsString(t)) {
            types = type_bit(t->valuestring);
        } else if (cJSON_IsArray(t)) {
            cJSON_ArrayForEach(e, t) {
                int bit = cJSON_IsString(e) ? type_bit(e->valuestring) : 0;
                if (!bit) {
                    types = 0;
                    break;
                }
                types |= bit;
            }
        }
        if (!types) {
            sfail(c, "'type' must be one of null, boolean, object, array, string, number, integer, or an array "
                  "of them");
            goto out;
        }
    }
    const cJSON *nullable = cJSON_GetObjectItemCaseSensitive(s, "nullable");
    if (cJSON_IsTrue(nullable) && types)
        types |= T_NULL;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (en || cn) {
        if (en && !cJSON_IsArray(en)) {
            sfail(c, "'enum' must be an array");
            goto out;
        }
        if (cn) {
            cJSON *one = cJSON_CreateArray();
            cJSON *dup = cJSON_Duplicate(cn, 1);
            if (!one || !dup || !cJSON_AddItemToArray(one, dup)) {
                cJSON_Delete(one);
                cJSON_Delete(dup);
                fail(b, "out of memory");
                goto out;
            }
            res = enum_node(c, one, types, "const");
            cJSON_Delete(one);
        } else {
            res = enum_node(c, en, types, "enum");
        }
        goto out;
    }
    if (!types) {
        /* no type: what the keywords present are about, else anything */
        if (cJSON_GetObjectItemCaseSensitive(s, "properties") || cJSON_GetObjectItemCaseSensitive(s, "required") ||
            cJSON_GetObjectItemCaseSensitive(s, "additionalProperties"))
            types |= T_OBJ;
        if (cJSON_GetObjectItemCaseSensitive(s, "items") || cJSON_GetObjectItemCaseSensitive(s, "minItems") ||
            cJSON_GetObjectItemCaseSensitive(s, "maxItems"))
            types |= T_ARR;
        if (cJSON_GetObjectItemCaseSensitive(s, "pattern") || cJSON_GetObjectItemCaseSensitive(s, "format"))
            types |= T_STR;
        if (cJSON_GetObjectItemCaseSensitive(s, "minimum") || cJSON_GetObjectItemCaseSensitive(s, "maximum") ||
            cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum") ||
            cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum") ||
            cJSON_GetObjectItemCaseSensitive(s, "multipleOf"))
            types |= T_NUM;
        if (!types) {
            res = any_value(c);   /* null included */
            goto out;
        }
        if (cJSON_IsTrue(nullable))
            types |= T_NULL;
    }
    int alts[7], n = 0;
    if (types & T_OBJ) alts[n++] = object_node(c, s);
    if (types & T_ARR) alts[n++] = array_node(c, s);
    if (types & T_STR) alts[n++] = string_node(c, s);
    if (types & (T_NUM | T_INT)) {
        long long lo, hi;
        int integer = !(types & T_NUM);
        if (bounds(c, s, integer, &lo, &hi) != 0)
            goto out;
        alts[n++] = integer ? int_range(b, lo, hi) : num_range(b, lo, hi);
    }
    if (types & T_BOOL) alts[n++] = ALT(b, nlits(b, "true"), nlits(b, "false"));
    if (types & T_NULL) alts[n++] = nlits(b, "null");
    res = nlist(b, G_ALT, alts, n);
out:
    c->depth--;
    return b->failed ? -1 : res;
}

/* A compiler for a new grammar; -1 (err set) when it cannot be allocated. */
static int sc_init(struct sc *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct lm_grammar *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->b.g = g;
    c->b.err = err;
    c->b.errlen = errlen;
    c->b.eps = -1;
    for (int i = 0; i < 256; i++)
        c->b.byte_node[i] = -1;
    c->ws = c->sep = c->chr = c->str = c->any = c->utf8 = -1;
    return 0;
}

static void sc_done(struct sc *c)
{
    for (int i = 0; i < c->n_refs; i++)
        free(c->refs[i].ref);
    free(c->refs);
}

/* Any JSON object: the object alternative of the value grammar. */
static int any_object(struct sc *c)
{
    int v = any_value(c);
    if (v < 0)
        return -1;
    int oa = c->b.g->kids[c->b.g->nodes[v].a];   /* obj | arr */
    return c->b.g->kids[c->b.g->nodes[oa].a];
}

/* The grammar built in c with root: finished (grammar_int.h), or NULL with
 * c's err when building failed or the root cannot complete. */
static struct lm_grammar *sc_finish(struct sc *c, int root)
{
    struct lm_grammar *g = c->b.g;
    g->root = root;
    int ok = !c->b.failed && root >= 0;
    sc_done(c);
    if (!ok || g_finish(g, c->b.err, c->b.errlen) != 0) {
        lm_grammar_free(g);
        return NULL;
    }
    return g;
}

static struct lm_grammar *compile(const cJSON *schema, int object_only, char *err, size_t errlen)
{
    struct sc c;
    if (sc_init(&c, err, errlen) != 0)
        return NULL;
    c.root = schema;
    int body = object_only ? any_object(&c) : sc_schema(&c, schema);
    return sc_finish(&c, SEQ(&c.b, ws(&c), body));
}

struct lm_grammar *lm_grammar_from_schema(const cJSON *schema, char *err, size_t errlen)
{
    return compile(schema, 0, err, errlen);
}

struct lm_grammar *lm_grammar_json_object(void)
{
    char err[64];
    return compile(NULL, 1, err, sizeof err);
}

/* ---- tool calls ---------------------------------------------------------------------- */

/* A form's literal, nothing for NULL/"": each ' ' in it is whitespace
 * that may or may not be there ("{\"tool_calls\": [" also fits
 * "{\"tool_calls\":[" and a pretty-printed one). */
static int form_lit(struct sc *c, const char *s)
{
    struct gbuild *b = &c->b;
    if (!s || !*s)
        return neps(b);
    int parts[64], np = 0;
    while (*s && np < 63) {
        size_t k = strcspn(s, " ");
        if (k)
            parts[np++] = nlit(b, s, k);
        s += k;
        if (*s == ' ') {
            parts[np++] = ws(c);
            while (*s == ' ')
                s++;
        }
    }
    if (*s)
        parts[np++] = nlits(b, s);
    return nlist(b, G_SEQ, parts, np);
}

/* One call: prefix {"name_key": "NAME", "args_key": ARGS} suffix. */
static int call_node(struct sc *c, const struct lm_tool_form *f, const cJSON *fn, int loose)
{
    struct gbuild *b = &c->b;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    cJSON *nm = cJSON_CreateString(cJSON_IsString(name) ? name->valuestring : "");
    cJSON *nk = cJSON_CreateString(f->name_key), *ak = cJSON_CreateString(f->args_key);
    int vname = nm ? literal_value(c, nm) : -1, kname = nk ? literal_value(c, nk) : -1;
    int kargs = ak ? literal_value(c, ak) : -1;
    cJSON_Delete(nm);
    cJSON_Delete(nk);
    cJSON_Delete(ak);
    int args;
    if (loose || !params || cJSON_IsNull(params)) {
        args = any_object(c);
    } else {
        /* $refs are the tool's own: each parameters schema is a root */
        for (int k = 0; k < c->n_refs; k++)
            free(c->refs[k].ref);
        c->n_refs = 0;
        c->root = params;
        c->path[0] = 0;
        args = sc_schema(c, params);
    }
    int colon = SEQ(b, ws(c), nbyte(b, ':'), ws(c));
    int obj = SEQ(b, nbyte(b, '{'), ws(c), kname, colon, vname, sep(c), kargs, colon, args, ws(c), nbyte(b, '}'));
    /* whitespace only between parts: a call with nothing after it ends at its '}' */
    int pre = f->prefix && *f->prefix ? SEQ(b, form_lit(c, f->prefix), ws(c)) : neps(b);
    int suf = f->suffix && *f->suffix ? SEQ(b, ws(c), form_lit(c, f->suffix)) : neps(b);
    return SEQ(b, pre, obj, suf);
}

struct lm_grammar *lm_grammar_tool_calls(const struct lm_tool_form *f, const cJSON *tools, int only,
                                         int max_calls, char *err, size_t errlen)
{
    int n = cJSON_GetArraySize(tools);
    if (n <= 0 || n > LM_TOOLS_MAX || only >= n || max_calls < 0) {
        snprintf(err, errlen, "tools: 1 to %d tools, and a call of one of them", LM_TOOLS_MAX);
        return NULL;
    }
    /* which parameters compile: a tool that does not is refused when
     * strict, else its arguments are any JSON object */
    char loose[LM_TOOLS_MAX];
    for (int i = 0; i < n; i++) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, i), "function");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        loose[i] = 0;
        if ((only >= 0 && i != only) || !params || cJSON_IsNull(params))
            continue;
        char e2[400];
        struct lm_grammar *t = lm_grammar_from_schema(params, e2, sizeof e2);
        if (t) {
            lm_grammar_free(t);
            continue;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fn, "strict"))) {
            /* e2 is "schema...: why"; name the tool's parameters instead */
            snprintf(err, errlen, "tools[%d].function.parameters%s", i, strncmp(e2, "schema", 6) == 0 ? e2 + 6 : e2);
            return NULL;
        }
        loose[i] = 1;
    }
    struct sc c;
    if (sc_init(&c, err, errlen) != 0)
        return NULL;
    struct gbuild *b = &c.b;
    int *alts = malloc((size_t)n * sizeof *alts), na = 0;
    if (!alts)
        fail(b, "out of memory");
    for (int i = 0; i < n && !b->failed; i++) {
        if (only >= 0 && i != only)
            continue;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, i), "function");
        alts[na++] = call_node(&c, f, fn, loose[i]);
    }
    int call = b->failed ? -1 : nlist(b, G_ALT, alts, na);
    free(alts);
    int more = SEQ(b, ws(&c), form_lit(&c, f->sep), ws(&c), call);
    int calls = SEQ(b, call, nrep(b, more, 0, max_calls ? max_calls - 1 : -1));
    int begin = f->begin && *f->begin ? SEQ(b, form_lit(&c, f->begin), ws(&c)) : neps(b);
    int end = f->end && *f->end ? SEQ(b, ws(&c), form_lit(&c, f->end)) : neps(b);
    return sc_finish(&c, SEQ(b, begin, calls, end));
}

void lm_grammar_free(struct lm_grammar *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->kids);
    free(g->sets);
    free(g);
}

int lm_grammar_n_nodes(const struct lm_grammar *g) { return g->n_nodes; }
