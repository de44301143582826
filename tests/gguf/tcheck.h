/*
 * tcheck.h - tiny assertion helpers and a GGUF byte builder for the gguf tests.
 *
 * The builder writes raw GGUF bytes field by field so the hostile tests can
 * produce exactly the malformed file they want (the writer library only
 * produces valid files).
 */
#ifndef LLMPIN_TESTS_GGUF_TCHECK_H
#define LLMPIN_TESTS_GGUF_TCHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    t_failures++; } } while (0)

#define CHECK_MSG(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); t_failures++; } } while (0)

#define CHECK_EQ_U64(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
    fprintf(stderr, "%s:%d: %s == %s failed: %llu != %llu\n", __FILE__, __LINE__, \
            #a, #b, _a, _b); t_failures++; } } while (0)

#define CHECK_STR(s, len, lit) do { if ((len) != strlen(lit) || memcmp((s), (lit), (len)) != 0) { \
    fprintf(stderr, "%s:%d: string %.*s != %s\n", __FILE__, __LINE__, (int)(len), (s), lit); \
    t_failures++; } } while (0)

#define CHECK_CONTAINS(hay, needle) do { if (!strstr((hay), (needle))) { \
    fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
            (hay), (needle)); t_failures++; } } while (0)

#define T_DONE() do { if (t_failures) { fprintf(stderr, "%d check(s) failed\n", t_failures); \
    return 1; } printf("all checks passed\n"); return 0; } while (0)

struct tb {
    uint8_t *p;
    size_t n, cap;
};

static inline void tb_put(struct tb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void tb_u8(struct tb *b, uint8_t v) { tb_put(b, &v, 1); }
static inline void tb_u32(struct tb *b, uint32_t v) { tb_put(b, &v, 4); }
static inline void tb_u64(struct tb *b, uint64_t v) { tb_put(b, &v, 8); }
static inline void tb_f32(struct tb *b, float v) { tb_put(b, &v, 4); }
static inline void tb_str(struct tb *b, const char *s) { tb_u64(b, strlen(s)); tb_put(b, s, strlen(s)); }
static inline void tb_head(struct tb *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    tb_put(b, "GGUF", 4); tb_u32(b, version); tb_u64(b, nt); tb_u64(b, nkv);
}
static inline void tb_kv_u32(struct tb *b, const char *k, uint32_t v) { tb_str(b, k); tb_u32(b, 4); tb_u32(b, v); }
static inline void tb_kv_str(struct tb *b, const char *k, const char *v) { tb_str(b, k); tb_u32(b, 8); tb_str(b, v); }
/* Tensor info with up to 4 dims. */
static inline void tb_tensor(struct tb *b, const char *name, uint32_t nd, const uint64_t *ne,
                      uint32_t type, uint64_t off)
{
    tb_str(b, name); tb_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) tb_u64(b, ne[i]);
    tb_u32(b, type); tb_u64(b, off);
}
static inline void tb_pad(struct tb *b, size_t align) { while (b->n % align) tb_u8(b, 0); }
static inline void tb_zeros(struct tb *b, size_t n) { while (n--) tb_u8(b, 0); }
static inline void tb_free(struct tb *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

#endif
