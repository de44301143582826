/*
 * jsonv.c - the strict JSON validator of jsonv.h.
 *
 * Recursive descent over the bytes with a depth limit; nothing is built.
 * For the duplicate-key check, the decoded keys of the objects being read
 * are kept in one arena (a stack: an object's keys are dropped when it
 * closes) and compared when the object closes: pairwise for a few keys,
 * sorted beyond, so a hostile object of 100,000 keys costs n log n.
 */
#include "common/jsonv.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct key {
    size_t off, len;             /* in the arena */
};

struct jv {
    const unsigned char *s;
    size_t len, i;
    int flags;
    struct jsonv_error *e;
    struct buf arena;            /* decoded keys of the open objects */
    struct key *keys;
    size_t n_keys, cap_keys;
};

static int failf(struct jv *v, size_t at, const char *fmt, ...) {
    va_list ap;
    v->e->offset = at;
    va_start(ap, fmt);
    vsnprintf(v->e->message, sizeof v->e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_ws(struct jv *v) {
    while (v->i < v->len) {
        unsigned char c = v->s[v->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        v->i++;
    }
}

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p[k];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = x;
    return 0;
}

static void put_utf8(struct buf *b, unsigned cp) {
    char o[4];
    size_t n;
    if (cp < 0x80) { o[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    buf_append(b, o, n);
}

/* Length of the valid UTF-8 sequence at p[0..avail), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    size_t n;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (avail < n + 1) return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n + 1;
}

/* A string at v->i (on its opening quote). When key, its decoded bytes go
 * to the arena. */
static int string(struct jv *v, int key) {
    size_t start = v->i++;
    size_t run = v->i; /* start of bytes not yet copied to the arena */
    for (;;) {
        if (v->i >= v->len) return failf(v, start, "unterminated string");
        unsigned char c = v->s[v->i];
        if (c == '"') {
            if (key) buf_append(&v->arena, v->s + run, v->i - run);
            v->i++;
            return 0;
        }
        if (c < 0x20) return failf(v, v->i, "control character 0x%02x inside a string (write it as \\u%04x)", c, c);
        if (c == '\\') {
            if (key) buf_append(&v->arena, v->s + run, v->i - run);
            size_t at = v->i;
            if (v->i + 1 >= v->len) return failf(v, at, "unterminated string");
            unsigned char x = v->s[v->i + 1];
            v->i += 2;
            if (x == 'u') {
                unsigned cp;
                if (v->i + 4 > v->len || hex4(v->s + v->i, &cp) < 0)
                    return failf(v, at, "\\u must be followed by four hex digits");
                v->i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && v->i + 6 <= v->len && v->s[v->i] == '\\' &&
                    v->s[v->i + 1] == 'u') {
                    unsigned lo;
                    if (hex4(v->s + v->i + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        v->i += 6;
                    }
                }
                if (cp == 0 && (v->flags & JSONV_NO_NUL))
                    return failf(v, at, "\\u0000 (a NUL character) inside a string is not accepted");
                if (key) put_utf8(&v->arena, cp);
            } else {
                static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
                const char *k = x ? strchr(from, x) : NULL;
                if (!k) return failf(v, at, "invalid escape \\%c inside a string", x >= 0x20 && x < 0x7f ? x : '?');
                if (key) buf_append(&v->arena, &to[k - from], 1);
            }
            run = v->i;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq(v->s + v->i, v->len - v->i);
            if (!n) return failf(v, v->i, "invalid UTF-8 inside a string");
            v->i += n;
            continue;
        }
        v->i++;
    }
}

static int number(struct jv *v) {
    size_t start = v->i;
    if (v->s[v->i] == '-') v->i++;
    if (v->i >= v->len) return failf(v, start, "invalid number");
    if (v->s[v->i] == '0') {
        v->i++;
    } else if (v->s[v->i] >= '1' && v->s[v->i] <= '9') {
        while (v->i < v->len && v->s[v->i] >= '0' && v->s[v->i] <= '9') v->i++;
    } else {
        return failf(v, start, "invalid number");
    }
    if (v->i < v->len && v->s[v->i] == '.') {
        v->i++;
        size_t d = v->i;
        while (v->i < v->len && v->s[v->i] >= '0' && v->s[v->i] <= '9') v->i++;
        if (v->i == d) return failf(v, start, "invalid number: digits must follow '.'");
    }
    if (v->i < v->len && (v->s[v->i] == 'e' || v->s[v->i] == 'E')) {
        v->i++;
        if (v->i < v->len && (v->s[v->i] == '+' || v->s[v->i] == '-')) v->i++;
        size_t d = v->i;
        while (v->i < v->len && v->s[v->i] >= '0' && v->s[v->i] <= '9') v->i++;
        if (v->i == d) return failf(v, start, "invalid number: digits must follow the exponent");
    }
    return 0;
}

struct span {
    const char *p;
    size_t len, idx;
};

static int span_cmp(const void *a, const void *b) {
    const struct span *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    int c = memcmp(x->p, y->p, x->len);
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Keys first..n_keys belong to one object: any two equal? *dup is the
 * later one of a pair, in document order. */
static int dup_keys(struct jv *v, size_t first, size_t *dup) {
    size_t n = v->n_keys - first;
    const struct key *k = v->keys + first;
    if (n < 2) return 0;
    if (n <= 16) {
        for (size_t a = 1; a < n; a++)
            for (size_t b = 0; b < a; b++)
                if (k[a].len == k[b].len && memcmp(v->arena.p + k[a].off, v->arena.p + k[b].off, k[a].len) == 0) {
                    *dup = a + first;
                    return 1;
                }
        return 0;
    }
    struct span *t = util_xmalloc(n * sizeof *t);
    for (size_t a = 0; a < n; a++) t[a] = (struct span){v->arena.p + k[a].off, k[a].len, a};
    qsort(t, n, sizeof *t, span_cmp);
    int found = 0;
    for (size_t a = 1; a < n; a++)
        if (t[a].len == t[a - 1].len && memcmp(t[a].p, t[a - 1].p, t[a].len) == 0 &&
            (!found || t[a].idx + first < *dup)) {
            found = 1;
            *dup = t[a].idx + first; /* the later of the pair: idx sorts ascending within equal keys */
        }
    free(t);
    return found;
}

static int value(struct jv *v, int depth);

static int object(struct jv *v, int depth) {
    size_t open = v->i++;
    size_t first = v->n_keys, arena_mark = v->arena.len;
    size_t key_at[16]; /* where the first keys started, for the message */
    skip_ws(v);
    if (v->i < v->len && v->s[v->i] == '}') {
        v->i++;
        return 0;
    }
    for (size_t nk = 0;; nk++) {
        skip_ws(v);
        if (v->i >= v->len) return failf(v, open, "unterminated object");
        if (v->s[v->i] != '"') return failf(v, v->i, "expected a string key in an object");
        size_t kat = v->i;
        if (nk < 16) key_at[nk] = kat;
        if (v->flags & JSONV_NO_DUP_KEYS) {
            size_t off = v->arena.len;
            if (string(v, 1) < 0) return -1;
            if (v->n_keys == v->cap_keys) {
                v->cap_keys = v->cap_keys ? v->cap_keys * 2 : 32;
                v->keys = util_xrealloc(v->keys, v->cap_keys * sizeof *v->keys);
            }
            v->keys[v->n_keys].off = off;
            v->keys[v->n_keys].len = v->arena.len - off;
            v->n_keys++;
        } else if (string(v, 0) < 0) {
            return -1;
        }
        skip_ws(v);
        if (v->i >= v->len || v->s[v->i] != ':') return failf(v, v->i, "expected ':' after an object key");
        v->i++;
        if (value(v, depth + 1) < 0) return -1;
        skip_ws(v);
        if (v->i >= v->len) return failf(v, open, "unterminated object");
        if (v->s[v->i] == ',') {
            v->i++;
            continue;
        }
        if (v->s[v->i] != '}') return failf(v, v->i, "expected ',' or '}' in an object");
        v->i++;
        break;
    }
    if (v->flags & JSONV_NO_DUP_KEYS) {
        size_t d = 0;
        if (dup_keys(v, first, &d)) {
            const struct key *k = &v->keys[d];
            size_t at = d - first < 16 ? key_at[d - first] : open;
            return failf(v, at, "duplicate key \"%.*s\" in an object (a key may appear once)",
                         (int)(k->len > 60 ? 60 : k->len), v->arena.p + k->off);
        }
        v->n_keys = first;
        v->arena.len = arena_mark;
    }
    return 0;
}

static int array(struct jv *v, int depth) {
    size_t open = v->i++;
    skip_ws(v);
    if (v->i < v->len && v->s[v->i] == ']') {
        v->i++;
        return 0;
    }
    for (;;) {
        if (value(v, depth + 1) < 0) return -1;
        skip_ws(v);
        if (v->i >= v->len) return failf(v, open, "unterminated array");
        if (v->s[v->i] == ',') {
            v->i++;
            continue;
        }
        if (v->s[v->i] != ']') return failf(v, v->i, "expected ',' or ']' in an array");
        v->i++;
        return 0;
    }
}

/* "unexpected 'x' where a value was expected", the byte shown printable */
static int unexpected(struct jv *v) {
    unsigned char c = v->s[v->i];
    if (c >= 0x21 && c < 0x7f) return failf(v, v->i, "unexpected '%c' where a value was expected", c);
    return failf(v, v->i, "unexpected byte 0x%02x where a value was expected", c);
}

static int literal(struct jv *v, const char *word) {
    size_t n = strlen(word);
    if (v->len - v->i < n || memcmp(v->s + v->i, word, n) != 0) return unexpected(v);
    v->i += n;
    return 0;
}

static int value(struct jv *v, int depth) {
    skip_ws(v);
    if (v->i >= v->len) return failf(v, v->i, "unexpected end of the document");
    if (depth > JSONV_MAX_DEPTH) return failf(v, v->i, "nested deeper than %d levels", JSONV_MAX_DEPTH);
    unsigned char c = v->s[v->i];
    switch (c) {
    case '{': return object(v, depth);
    case '[': return array(v, depth);
    case '"': return string(v, 0);
    case 't': return literal(v, "true");
    case 'f': return literal(v, "false");
    case 'n': return literal(v, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(v);
        return unexpected(v);
    }
}

int jsonv_check(const char *s, size_t len, int flags, struct jsonv_error *e) {
    struct jv v = {.s = (const unsigned char *)s, .len = len, .flags = flags, .e = e};
    e->offset = 0;
    e->message[0] = 0;
    skip_ws(&v);
    if (v.i >= len) {
        failf(&v, v.i, "the document is empty");
        return -1;
    }
    if ((flags & JSONV_OBJECT) && s[v.i] != '{') {
        failf(&v, v.i, "expected a JSON object");
        return -1;
    }
    int rc = value(&v, 1);
    if (rc == 0) {
        skip_ws(&v);
        if (v.i < len) rc = failf(&v, v.i, "unexpected data after the end of the JSON document");
    }
    buf_free(&v.arena);
    free(v.keys);
    return rc;
}
