/*
 * util.c - see util.h.
 */
#include "common/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

int64_t util_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64 over a per-thread state seeded from the kernel. */
uint64_t util_rand64(void) {
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    if (!seeded) {
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state)
            state = (uint64_t)util_now_us() ^ (uint64_t)(uintptr_t)&state;
        seeded = 1;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void util_hex(const unsigned char *in, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = 0;
}

int util_ct_equal(const char *a, size_t alen, const char *b, size_t blen) {
    unsigned diff = (unsigned)(alen ^ blen);
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

void *util_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fputs("llmpin: out of memory\n", stderr); abort(); }
    return p;
}

void *util_xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) { fputs("llmpin: out of memory\n", stderr); abort(); }
    return p;
}

void *util_xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) { fputs("llmpin: out of memory\n", stderr); abort(); }
    return p;
}

char *util_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = util_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

size_t util_strlcpy(char *dst, const char *src, size_t cap) {
    size_t n = strlen(src);
    if (cap) {
        size_t k = n < cap ? n : cap - 1;
        memcpy(dst, src, k);
        dst[k] = 0;
    }
    return n;
}

void util_make_id(const char *prefix, char *out, size_t cap) {
    unsigned char r[12];
    uint64_t a = util_rand64(), b = util_rand64();
    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 4);
    char hex[25];
    util_hex(r, 12, hex);
    size_t n = util_strlcpy(out, prefix, cap);
    if (n + 1 < cap) util_strlcpy(out + n, hex, cap - n);
}

void buf_init_on(struct buf *b, char *mem, size_t cap) {
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->borrowed = 1;
    if (cap) mem[0] = 0;
}

static void buf_grow(struct buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    if (b->borrowed) {
        char *p = util_xmalloc(cap);
        if (b->len) memcpy(p, b->p, b->len);
        b->p = p;
        b->borrowed = 0;
    } else {
        b->p = util_xrealloc(b->p, cap);
    }
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t n) {
    buf_grow(b, n);
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void buf_appends(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_printf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { buf_append(b, tmp, (size_t)n); return; }
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_json_strn(struct buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_grow(b, n + 2);
    b->p[b->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i; /* copy runs that need no escape in one go */
        while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\') j++;
        if (j > i) buf_append(b, s + i, j - i);
        if (j == n) break;
        unsigned char c = (unsigned char)s[j];
        char e[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t el = 2;
        if (c == '\n') e[1] = 'n';
        else if (c == '\r') e[1] = 'r';
        else if (c == '\t') e[1] = 't';
        else if (c < 0x20) {
            e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
            el = 6;
        }
        buf_append(b, e, el);
        i = j + 1;
    }
    buf_append(b, "\"", 1);
}

void buf_json_str(struct buf *b, const char *s) {
    if (!s) { buf_appends(b, "null"); return; }
    buf_json_strn(b, s, strlen(s));
}

void buf_u64(struct buf *b, uint64_t v) {
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof tmp - (size_t)i);
}

void buf_us_as_ms(struct buf *b, int64_t us) {
    if (us < 0) {
        buf_append(b, "-", 1);
        us = -us;
    }
    buf_u64(b, (uint64_t)us / 1000);
    char f[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10)};
    buf_append(b, f, 4);
}

void buf_reset(struct buf *b) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
}

void buf_free(struct buf *b) {
    if (!b->borrowed) free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->borrowed = 0;
}

int util_has_token(const char *v, const char *tok) {
    size_t tl = strlen(tok);
    while (v && *v) {
        while (*v == ' ' || *v == ',' || *v == '\t') v++;
        const char *e = v;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if ((size_t)(t - v) == tl && strncasecmp(v, tok, tl) == 0) return 1;
        v = e;
    }
    return 0;
}
