/*
 * util.h - small helpers shared by every module: clocks, hex, randomness,
 * constant-time comparison, a growable byte buffer.
 */
#ifndef LLMPIN_UTIL_H
#define LLMPIN_UTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t util_now_ms(void);        /* CLOCK_MONOTONIC, milliseconds */
int64_t util_now_us(void);        /* CLOCK_MONOTONIC, microseconds */
int64_t util_wall_ms(void);       /* CLOCK_REALTIME, ms since the epoch */
uint64_t util_rand64(void);       /* thread-safe, seeded from getrandom */
void util_hex(const unsigned char *in, size_t n, char *out); /* out: 2n+1 */
/* 1 if equal; time depends only on the lengths. */
int util_ct_equal(const char *a, size_t alen, const char *b, size_t blen);
char *util_strdup(const char *s); /* NULL-safe; aborts on OOM */
/* Copy src into dst[cap] (cut to fit, always terminated when cap > 0); the
 * length of src. snprintf(dst, cap, "%s", src) without the format parsing. */
size_t util_strlcpy(char *dst, const char *src, size_t cap);
void *util_xmalloc(size_t n);     /* aborts on OOM */
void *util_xcalloc(size_t n, size_t sz);
void *util_xrealloc(void *p, size_t n);
/* 1 if tok is one of the comma-separated elements of the HTTP header value
 * v (case-insensitive, surrounding whitespace ignored), e.g. "close" in
 * "keep-alive, Close". v may be NULL. */
int util_has_token(const char *v, const char *tok);
/* Random id like "req_3f9a..." (prefix + 24 hex digits) into out[cap]. */
void util_make_id(const char *prefix, char *out, size_t cap);

/* Growable buffer. Zero-initialise; free with buf_free. */
struct buf {
    char *p;
    size_t len, cap;
    int borrowed;                 /* p is caller storage (see buf_init_on) */
};
/* Start b on caller storage mem[cap] (e.g. a stack array); it moves to the
 * heap only if it outgrows it. buf_free is still the way to release it. */
void buf_init_on(struct buf *b, char *mem, size_t cap);
void buf_append(struct buf *b, const void *data, size_t n);
void buf_appends(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal including quotes. */
void buf_json_str(struct buf *b, const char *s);
void buf_json_strn(struct buf *b, const char *s, size_t n);
/* Decimal integer, and microseconds as milliseconds with 3 decimals
 * ("12.345"), without printf: these run for every request. */
void buf_u64(struct buf *b, uint64_t v);
void buf_us_as_ms(struct buf *b, int64_t us);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
