/*
 * gguf_write.c - GGUF v3 writer, random llama generator, row conversions.
 *
 * Why it exists: the engine's tests and the benchmarks need models of any
 * shape and tensor type, and the reader's tests need valid files to mutate.
 * Real models are large and come with licences; a generated model with real
 * llama tensor names and metadata exercises the same code paths.
 *
 * The writer serialises metadata as it is added (one growing byte buffer),
 * keeps tensor infos in a table with their offsets computed at add time, and
 * streams tensor data at write time through a large stdio buffer, so a
 * 400 MB model is written without holding it in memory twice.
 */
#include "localmodel/gguf_write.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    enum gguf_ttype type;
    uint64_t nbytes;
    uint64_t offset;           /* relative to the data section */
    void *data;                /* owned copy, or NULL: filled at write time */
};

struct gguf_writer {
    uint8_t *kv;               /* serialised metadata */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;               /* for duplicate detection */
    size_t keys_cap;
    struct wtensor *t;
    uint64_t n_t, t_cap;
    uint64_t data_end;         /* end of the last tensor, relative */
    uint32_t alignment;
    int failed;
    char err[256];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int wfail(struct gguf_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int wfail(struct gguf_writer *w, const char *fmt, ...)
{
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
        w->failed = 1;
    }
    return -1;
}

struct gguf_writer *gguf_writer_new(void)
{
    struct gguf_writer *w = calloc(1, sizeof(*w));
    if (w) w->alignment = 32;
    return w;
}

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w->kv);
    free(w);
}

/* ---- metadata ----------------------------------------------------------- */

static int put(struct gguf_writer *w, const void *p, size_t n)
{
    if (w->kv_len + n > w->kv_cap) {
        size_t c = w->kv_cap ? w->kv_cap : 1024;
        while (c < w->kv_len + n) c *= 2;
        uint8_t *q = realloc(w->kv, c);
        if (!q) return wfail(w, "out of memory");
        w->kv = q;
        w->kv_cap = c;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 0;
}

static int put_u32(struct gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(struct gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(struct gguf_writer *w, const char *s, size_t n)
{
    return put_u64(w, n) < 0 || put(w, s, n) < 0 ? -1 : 0;
}

/* Start a kv: check the key, append key and type. */
static int begin_kv(struct gguf_writer *w, const char *key, enum gguf_vtype t)
{
    if (w->failed) return -1;
    if (!key || !*key) return wfail(w, "empty metadata key");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return wfail(w, "duplicate key '%s'", key);
    if (w->n_kv == w->keys_cap) {
        size_t c = w->keys_cap ? w->keys_cap * 2 : 32;
        char **k = realloc(w->keys, c * sizeof(*k));
        if (!k) return wfail(w, "out of memory");
        w->keys = k;
        w->keys_cap = c;
    }
    char *dup = strdup(key);
    if (!dup) return wfail(w, "out of memory");
    w->keys[w->n_kv++] = dup;
    if (put_str(w, key, strlen(key)) < 0 || put_u32(w, (uint32_t)t) < 0) return -1;
    return 0;
}

static int add_scalar(struct gguf_writer *w, const char *key, enum gguf_vtype t,
                      const void *v, size_t n)
{
    if (begin_kv(w, key, t) < 0) return -1;
    return put(w, v, n);
}

int gguf_writer_add_u8(struct gguf_writer *w, const char *key, uint8_t v) { return add_scalar(w, key, GGUF_T_UINT8, &v, 1); }
int gguf_writer_add_i8(struct gguf_writer *w, const char *key, int8_t v) { return add_scalar(w, key, GGUF_T_INT8, &v, 1); }
int gguf_writer_add_u16(struct gguf_writer *w, const char *key, uint16_t v) { return add_scalar(w, key, GGUF_T_UINT16, &v, 2); }
int gguf_writer_add_i16(struct gguf_writer *w, const char *key, int16_t v) { return add_scalar(w, key, GGUF_T_INT16, &v, 2); }
int gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v) { return add_scalar(w, key, GGUF_T_INT32, &v, 4); }
int gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v) { return add_scalar(w, key, GGUF_T_UINT64, &v, 8); }
int gguf_writer_add_i64(struct gguf_writer *w, const char *key, int64_t v) { return add_scalar(w, key, GGUF_T_INT64, &v, 8); }
int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v) { return add_scalar(w, key, GGUF_T_FLOAT32, &v, 4); }
int gguf_writer_add_f64(struct gguf_writer *w, const char *key, double v) { return add_scalar(w, key, GGUF_T_FLOAT64, &v, 8); }

int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    if (key && strcmp(key, "general.alignment") == 0) {
        if (v == 0 || (v & (v - 1)) != 0)
            return wfail(w, "general.alignment must be a power of two, got %u", v);
        if (w->n_t > 0) return wfail(w, "general.alignment must be set before adding tensors");
        if (!w->failed) w->alignment = v;
    }
    return add_scalar(w, key, GGUF_T_UINT32, &v, 4);
}

int gguf_writer_add_bool(struct gguf_writer *w, const char *key, int v)
{
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, GGUF_T_BOOL, &b, 1);
}

int gguf_writer_add_strn(struct gguf_writer *w, const char *key, const char *v, size_t len)
{
    if (begin_kv(w, key, GGUF_T_STRING) < 0) return -1;
    return put_str(w, v, len);
}

int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v)
{
    return gguf_writer_add_strn(w, key, v, strlen(v));
}

static size_t fixed_size(enum gguf_vtype t)
{
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype et,
                        const void *data, uint64_t n)
{
    size_t es = fixed_size(et), bytes;
    if (!es) return wfail(w, "key '%s': array element type %d is not a fixed-size type", key, (int)et);
    if (__builtin_mul_overflow((size_t)n, es, &bytes)) return wfail(w, "key '%s': array too large", key);
    if (begin_kv(w, key, GGUF_T_ARRAY) < 0) return -1;
    if (put_u32(w, (uint32_t)et) < 0 || put_u64(w, n) < 0) return -1;
    return bytes ? put(w, data, bytes) : 0;
}

int gguf_writer_add_arr_str(struct gguf_writer *w, const char *key, const char *const *s,
                            uint64_t n)
{
    if (begin_kv(w, key, GGUF_T_ARRAY) < 0) return -1;
    if (put_u32(w, GGUF_T_STRING) < 0 || put_u64(w, n) < 0) return -1;
    for (uint64_t i = 0; i < n; i++)
        if (put_str(w, s[i], strlen(s[i])) < 0) return -1;
    return 0;
}

int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv)
{
    char key[512];
    if (kv->key.len >= sizeof key) return -1;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = '\0';
    switch (kv->type) {
    case GGUF_T_UINT8: return gguf_writer_add_u8(w, key, (uint8_t)kv->v.u64);
    case GGUF_T_INT8: return gguf_writer_add_i8(w, key, (int8_t)kv->v.i64);
    case GGUF_T_UINT16: return gguf_writer_add_u16(w, key, (uint16_t)kv->v.u64);
    case GGUF_T_INT16: return gguf_writer_add_i16(w, key, (int16_t)kv->v.i64);
    case GGUF_T_UINT32: return gguf_writer_add_u32(w, key, (uint32_t)kv->v.u64);
    case GGUF_T_INT32: return gguf_writer_add_i32(w, key, (int32_t)kv->v.i64);
    case GGUF_T_UINT64: return gguf_writer_add_u64(w, key, kv->v.u64);
    case GGUF_T_INT64: return gguf_writer_add_i64(w, key, kv->v.i64);
    case GGUF_T_FLOAT32: return gguf_writer_add_f32(w, key, (float)kv->v.f64);
    case GGUF_T_FLOAT64: return gguf_writer_add_f64(w, key, kv->v.f64);
    case GGUF_T_BOOL: return gguf_writer_add_bool(w, key, kv->v.u64 != 0);
    case GGUF_T_STRING: return gguf_writer_add_strn(w, key, kv->v.str.ptr, kv->v.str.len);
    case GGUF_T_ARRAY:
        if (kv->arr_type == GGUF_T_STRING) {
            const char **s = malloc((kv->arr_n + 1) * sizeof *s);
            if (!s) return -1;
            int rc = 0;
            for (uint64_t i = 0; i < kv->arr_n && rc == 0; i++) {
                struct gguf_str e = gguf_arr_str(kv, i);
                char *c = malloc(e.len + 1);
                if (!c || memchr(e.ptr, 0, e.len)) rc = -1;     /* NUL inside: not copyable */
                else { memcpy(c, e.ptr, e.len); c[e.len] = '\0'; }
                s[i] = c;
                if (rc) { free(c); s[i] = NULL; }
            }
            if (rc == 0) rc = gguf_writer_add_arr_str(w, key, s, kv->arr_n);
            for (uint64_t i = 0; i < kv->arr_n; i++) free((void *)s[i]);
            free(s);
            return rc;
        }
        if (kv->arr_type == GGUF_T_ARRAY) return -1;
        return gguf_writer_add_arr(w, key, kv->arr_type, kv->arr_data, kv->arr_n);
    }
    return -1;
}

/* ---- tensors ------------------------------------------------------------ */

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t n_dims,
                           const uint64_t *ne, enum gguf_ttype type, const void *data)
{
    if (w->failed) return -1;
    if (!name || !*name) return wfail(w, "empty tensor name");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return wfail(w, "tensor '%s': n_dims %u not in 1..%d", name, n_dims, GGUF_MAX_DIMS);
    const char *tn = gguf_ttype_name(type);
    if (!tn) return wfail(w, "tensor '%s': unknown type %d", name, (int)type);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || __builtin_mul_overflow(n, ne[d], &n))
            return wfail(w, "tensor '%s': bad dimension %u", name, d);
    }
    if (ne[0] % gguf_ttype_block(type) != 0)
        return wfail(w, "tensor '%s': row length %llu is not a multiple of the %s block size %u",
                     name, (unsigned long long)ne[0], tn, gguf_ttype_block(type));
    uint64_t nbytes = gguf_ttype_nbytes(type, n);
    if (nbytes == 0 || nbytes > SIZE_MAX) return wfail(w, "tensor '%s': too large", name);
    for (uint64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return wfail(w, "duplicate tensor name '%s'", name);
    if (w->n_t == w->t_cap) {
        uint64_t c = w->t_cap ? w->t_cap * 2 : 64;
        struct wtensor *t = realloc(w->t, (size_t)c * sizeof(*t));
        if (!t) return wfail(w, "out of memory");
        w->t = t;
        w->t_cap = c;
    }
    struct wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof(*t));
    t->name = strdup(name);
    if (!t->name) return wfail(w, "out of memory");
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->nbytes = nbytes;
    t->offset = align_up(w->data_end, w->alignment);
    if (data) {
        t->data = malloc((size_t)nbytes);
        if (!t->data) {
            free(t->name);
            return wfail(w, "out of memory for tensor '%s' (%llu bytes)", name,
                         (unsigned long long)nbytes);
        }
        memcpy(t->data, data, (size_t)nbytes);
    }
    w->data_end = t->offset + nbytes;
    w->n_t++;
    return 0;
}

/* ---- output ------------------------------------------------------------- */

static int write_all(struct gguf_writer *w, FILE *fp, gguf_writer_fill_fn fill, void *ud,
                     char *err, size_t errlen)
{
    static const uint8_t zeros[256];
    if (w->failed) {
        seterr(err, errlen, "%s", w->err);
        return -1;
    }
    uint32_t version = 3;
    uint64_t pos = 0;
    fwrite("GGUF", 1, 4, fp);
    fwrite(&version, 4, 1, fp);
    fwrite(&w->n_t, 8, 1, fp);
    fwrite(&w->n_kv, 8, 1, fp);
    fwrite(w->kv, 1, w->kv_len, fp);
    pos = 24 + w->kv_len;
    for (uint64_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        uint64_t len = strlen(t->name);
        fwrite(&len, 8, 1, fp);
        fwrite(t->name, 1, len, fp);
        fwrite(&t->n_dims, 4, 1, fp);
        fwrite(t->ne, 8, t->n_dims, fp);
        uint32_t type = (uint32_t)t->type;
        fwrite(&type, 4, 1, fp);
        fwrite(&t->offset, 8, 1, fp);
        pos += 8 + len + 4 + 8ull * t->n_dims + 4 + 8;
    }
    uint64_t data_start = align_up(pos, w->alignment);
    for (; pos < data_start; pos++) fputc(0, fp);

    uint64_t maxfill = 0;
    for (uint64_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data && w->t[i].nbytes > maxfill) maxfill = w->t[i].nbytes;
    if (maxfill && !fill) {
        seterr(err, errlen, "tensor data missing and no fill callback given");
        return -1;
    }
    void *buf = maxfill ? malloc((size_t)maxfill) : NULL;
    if (maxfill && !buf) {
        seterr(err, errlen, "out of memory (%llu bytes)", (unsigned long long)maxfill);
        return -1;
    }
    uint64_t rel = 0;
    for (uint64_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        while (rel < t->offset) {
            uint64_t k = t->offset - rel < sizeof zeros ? t->offset - rel : sizeof zeros;
            fwrite(zeros, 1, (size_t)k, fp);
            rel += k;
        }
        const void *src = t->data;
        if (!src) {
            if (fill(ud, i, buf, t->nbytes) < 0) {
                seterr(err, errlen, "tensor '%s': fill callback failed", t->name);
                free(buf);
                return -1;
            }
            src = buf;
        }
        fwrite(src, 1, (size_t)t->nbytes, fp);
        rel += t->nbytes;
        if (ferror(fp)) break;
    }
    free(buf);
    if (ferror(fp)) {
        seterr(err, errlen, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int gguf_writer_write_file(struct gguf_writer *w, const char *path, gguf_writer_fill_fn fill,
                           void *ud, char *err, size_t errlen)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (!tmp) {
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        seterr(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    char e2[300];
    int rc = write_all(w, fp, fill, ud, e2, sizeof e2);
    if (fclose(fp) != 0 && rc == 0) {
        snprintf(e2, sizeof e2, "close failed: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(e2, sizeof e2, "rename from %s failed: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc < 0) {
        unlink(tmp);
        seterr(err, errlen, "%s: %s", path, e2);
    }
    free(tmp);
    return rc;
}

int gguf_writer_write_mem(struct gguf_writer *w, void **out, size_t *len,
                          gguf_writer_fill_fn fill, void *ud, char *err, size_t errlen)
{
    char *p = NULL;
    size_t sz = 0;
    *out = NULL;
    *len = 0;
    FILE *fp = open_memstream(&p, &sz);
    if (!fp) {
        seterr(err, errlen, "open_memstream failed: %s", strerror(errno));
        return -1;
    }
    int rc = write_all(w, fp, fill, ud, err, errlen);
    if (fclose(fp) != 0 && rc == 0) {
        seterr(err, errlen, "memory stream failed");
        rc = -1;
    }
    if (rc < 0) {
        free(p);
        return -1;
    }
    *out = p;
    *len = sz;
    return 0;
}

/* ---- conversions -------------------------------------------------------- */

uint16_t lm_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff)                                   /* inf, NaN (keep quiet NaN) */
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);    /* overflow -> inf */
    if (e <= 0) {                                      /* half subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t q = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;   /* may carry into inf: correct */
    return (uint16_t)(sign | q);
}

float lm_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31)
        x = sign | 0x7f800000 | (mant << 13);
    else
        x = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t lm_fp32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);   /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float lm_bf16_to_fp32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void lm_row_to_f16(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = lm_fp32_to_fp16(x[i]);
}

void lm_row_from_f16(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = lm_fp16_to_fp32(x[i]);
}

void lm_row_to_bf16(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = lm_fp32_to_bf16(x[i]);
}

void lm_row_from_bf16(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = lm_bf16_to_fp32(x[i]);
}

int lm_row_to_q8_0(const float *x, void *y, size_t n)
{
    if (n % LM_Q8_0_BLOCK) return -1;
    uint8_t *o = y;
    for (size_t b = 0; b < n / LM_Q8_0_BLOCK; b++) {
        const float *v = x + b * LM_Q8_0_BLOCK;
        float amax = 0;
        for (int i = 0; i < LM_Q8_0_BLOCK; i++) {
            float a = fabsf(v[i]);
            if (a > amax) amax = a;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = lm_fp32_to_fp16(d);
        memcpy(o, &dh, 2);
        for (int i = 0; i < LM_Q8_0_BLOCK; i++) {
            float q = roundf(v[i] * id);
            if (q > 127.0f) q = 127.0f;
            if (q < -127.0f) q = -127.0f;
            o[2 + i] = (uint8_t)(int8_t)q;
        }
        o += LM_Q8_0_BYTES;
    }
    return 0;
}

int lm_row_from_q8_0(const void *x, float *y, size_t n)
{
    if (n % LM_Q8_0_BLOCK) return -1;
    const uint8_t *p = x;
    for (size_t b = 0; b < n / LM_Q8_0_BLOCK; b++) {
        uint16_t dh;
        memcpy(&dh, p, 2);
        float d = lm_fp16_to_fp32(dh);
        for (int i = 0; i < LM_Q8_0_BLOCK; i++) y[b * LM_Q8_0_BLOCK + i] = d * (float)(int8_t)p[2 + i];
        p += LM_Q8_0_BYTES;
    }
    return 0;
}

static int round_clamp(float v, int lo, int hi)
{
    int q = (int)lrintf(v);
    return q < lo ? lo : q > hi ? hi : q;
}

/* Q4_K: 8 sub-blocks of 32, each w = d*sc*q - dmin*m with 6-bit sc and m
 * and 4-bit q (layout: ../shared/NOTES.md §6). A plain min/max fit per
 * sub-block, not ggml's iterative search: valid blocks, a little more error. */
static int row_to_q4_k(const float *x, void *y, size_t n)
{
    if (n % 256) return -1;
    uint8_t *p = y;
    for (size_t b = 0; b < n; b += 256, p += 144) {
        const float *xb = x + b;
        float scale[8], mins[8], dmax = 0.0f, mmax = 0.0f;
        for (int s = 0; s < 8; s++) {
            float lo = 0.0f, hi = 0.0f;
            for (int i = 0; i < 32; i++) {
                float v = xb[32 * s + i];
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            scale[s] = (hi - lo) / 15.0f;
            mins[s] = -lo;
            if (scale[s] > dmax) dmax = scale[s];
            if (mins[s] > mmax) mmax = mins[s];
        }
        float d = lm_fp16_to_fp32(lm_fp32_to_fp16(dmax / 63.0f));
        float dmin = lm_fp16_to_fp32(lm_fp32_to_fp16(mmax / 63.0f));
        uint16_t dh = lm_fp32_to_fp16(d), mh = lm_fp32_to_fp16(dmin);
        memcpy(p, &dh, 2);
        memcpy(p + 2, &mh, 2);
        uint8_t sc[8], mq[8];
        for (int s = 0; s < 8; s++) {
            sc[s] = (uint8_t)(d > 0 ? round_clamp(scale[s] / d, 0, 63) : 0);
            mq[s] = (uint8_t)(dmin > 0 ? round_clamp(mins[s] / dmin, 0, 63) : 0);
        }
        uint8_t *k = p + 4;
        for (int j = 0; j < 4; j++) {
            k[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
            k[j + 4] = (uint8_t)(mq[j] | ((mq[j + 4] >> 4) << 6));
            k[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mq[j + 4] & 0xF) << 4));
        }
        uint8_t *qs = p + 16;
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int q2[2];
                for (int h = 0; h < 2; h++) {
                    int s = 2 * c + h;
                    float step = d * (float)sc[s];
                    q2[h] = step > 0 ? round_clamp((xb[32 * s + l] + dmin * (float)mq[s]) / step, 0, 15) : 0;
                }
                qs[32 * c + l] = (uint8_t)(q2[0] | (q2[1] << 4));
            }
        }
    }
    return 0;
}

/* Q6_K: 16 sub-blocks of 16, w = d*sc*(q-32) with int8 sc and 6-bit q. */
static int row_to_q6_k(const float *x, void *y, size_t n)
{
    if (n % 256) return -1;
    uint8_t *p = y;
    for (size_t b = 0; b < n; b += 256, p += 210) {
        const float *xb = x + b;
        float scale[16], smax = 0.0f;
        for (int s = 0; s < 16; s++) {
            float a = 0.0f;
            for (int i = 0; i < 16; i++) a = fmaxf(a, fabsf(xb[16 * s + i]));
            scale[s] = a / 31.0f;
            if (scale[s] > smax) smax = scale[s];
        }
        float d = lm_fp16_to_fp32(lm_fp32_to_fp16(smax / 127.0f));
        int8_t *sc = (int8_t *)(p + 192);
        for (int s = 0; s < 16; s++) sc[s] = (int8_t)(d > 0 ? round_clamp(scale[s] / d, -128, 127) : 0);
        uint16_t dh = lm_fp32_to_fp16(d);
        memcpy(p + 208, &dh, 2);
        int q[256];
        for (int i = 0; i < 256; i++) {
            float step = d * (float)sc[i / 16];
            q[i] = (step > 0 ? round_clamp(xb[i] / step, -32, 31) : 0) + 32;
        }
        uint8_t *ql = p, *qh = p + 128;
        for (int c = 0; c < 2; c++) {
            for (int l = 0; l < 32; l++) {
                const int *v = q + 128 * c + l;
                ql[64 * c + l] = (uint8_t)((v[0] & 0xF) | ((v[64] & 0xF) << 4));
                ql[64 * c + l + 32] = (uint8_t)((v[32] & 0xF) | ((v[96] & 0xF) << 4));
                qh[32 * c + l] = (uint8_t)((v[0] >> 4) | ((v[32] >> 4) << 2) | ((v[64] >> 4) << 4) |
                                           ((v[96] >> 4) << 6));
            }
        }
    }
    return 0;
}

/* Q5_0: per 32, d = (the value of largest magnitude) / -16 as fp16, q =
 * round(x/d) + 16 clamped to 0..31, low nibbles in 16 bytes (element j and
 * j + 16 share byte j), the fifth bits in a 32-bit word (ggml's layout). */
static int row_to_q5_0(const float *x, void *y, size_t n)
{
    if (n % 32) return -1;
    uint8_t *o = y;
    for (size_t b = 0; b < n / 32; b++, o += 22, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < 32; i++)
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = lm_fp32_to_fp16(d);
        memcpy(o, &dh, 2);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = round_clamp(x[j] * id + 16.0f, 0, 31), q1 = round_clamp(x[j + 16] * id + 16.0f, 0, 31);
            o[6 + j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        memcpy(o + 2, &qh, 4);
    }
    return 0;
}

int lm_row_to_type(enum gguf_ttype t, const float *x, void *y, size_t n)
{
    switch (t) {
    case GGUF_TT_F32: memcpy(y, x, n * sizeof(float)); return 0;
    case GGUF_TT_F16: lm_row_to_f16(x, y, n); return 0;
    case GGUF_TT_BF16: lm_row_to_bf16(x, y, n); return 0;
    case GGUF_TT_Q8_0: return lm_row_to_q8_0(x, y, n);
    case GGUF_TT_Q4_K: return row_to_q4_k(x, y, n);
    case GGUF_TT_Q6_K: return row_to_q6_k(x, y, n);
    case GGUF_TT_Q5_0: return row_to_q5_0(x, y, n);
    default: return -1;
    }
}

int lm_row_from_type(enum gguf_ttype t, const void *x, float *y, size_t n)
{
    switch (t) {
    case GGUF_TT_F32: memcpy(y, x, n * sizeof(float)); return 0;
    case GGUF_TT_F16: lm_row_from_f16(x, y, n); return 0;
    case GGUF_TT_BF16: lm_row_from_bf16(x, y, n); return 0;
    case GGUF_TT_Q8_0: return lm_row_from_q8_0(x, y, n);
    default: return -1;
    }
}

/* ---- random llama ------------------------------------------------------- */

/* The tensor list of a model, in the order real files use. */
enum tkind { T_MAT, T_NORM, T_BIAS, T_ROPE };
struct ltensor {
    char name[48];
    uint32_t n_dims;
    uint64_t ne[2];
    enum tkind kind;
};

static const char *arch_of(const struct lm_llama_shape *s) { return s->arch ? s->arch : "llama"; }
static int is_arch(const struct lm_llama_shape *s, const char *a) { return strcmp(arch_of(s), a) == 0; }
static uint32_t head_of(const struct lm_llama_shape *s)
{
    return s->head_dim ? s->head_dim : s->dim / s->n_heads;
}

/* Fills out (may be NULL to count). Returns the number of tensors. */
static uint64_t llama_layout(const struct lm_llama_shape *s, struct ltensor *out)
{
    uint64_t n = 0;
    uint64_t hd = head_of(s), qd = hd * s->n_heads, kv_dim = hd * s->n_kv_heads;
    int qwen2 = is_arch(s, "qwen2"), phi3 = is_arch(s, "phi3"), falcon = is_arch(s, "falcon");
    int mpt = is_arch(s, "mpt");
    int qk_norm = is_arch(s, "qwen3") || is_arch(s, "gemma3");
    int post = is_arch(s, "gemma2") || is_arch(s, "gemma3");
#define ADD(nd, a, b, kind_, ...) do { if (out) { \
        snprintf(out[n].name, sizeof out[n].name, __VA_ARGS__); \
        out[n].n_dims = (nd); out[n].ne[0] = (a); out[n].ne[1] = (b); out[n].kind = (kind_); } \
        n++; } while (0)
    ADD(2, s->dim, s->n_vocab, T_MAT, "token_embd.weight");
    if (s->rope_freqs) ADD(1, hd / 2, 1, T_ROPE, "rope_freqs.weight");
    if (s->rope_long_short) {
        ADD(1, hd / 2, 1, T_ROPE, "rope_factors_long.weight");
        ADD(1, hd / 2, 1, T_ROPE, "rope_factors_short.weight");
    }
    for (uint32_t l = 0; l < s->n_layers; l++) {
        ADD(1, s->dim, 1, T_NORM, "blk.%u.attn_norm.weight", l);
        if (falcon) {
            /* LayerNorm with bias, fused QKV, attention and GELU MLP in parallel */
            ADD(1, s->dim, 1, T_BIAS, "blk.%u.attn_norm.bias", l);
            ADD(2, s->dim, qd + 2 * kv_dim, T_MAT, "blk.%u.attn_qkv.weight", l);
            ADD(2, qd, s->dim, T_MAT, "blk.%u.attn_output.weight", l);
            ADD(2, s->dim, s->ffn_dim, T_MAT, "blk.%u.ffn_up.weight", l);
            ADD(2, s->ffn_dim, s->dim, T_MAT, "blk.%u.ffn_down.weight", l);
            continue;
        }
        if (phi3 || mpt) {
            ADD(2, s->dim, qd + 2 * kv_dim, T_MAT, "blk.%u.attn_qkv.weight", l);
        } else {
            ADD(2, s->dim, qd, T_MAT, "blk.%u.attn_q.weight", l);
            ADD(2, s->dim, kv_dim, T_MAT, "blk.%u.attn_k.weight", l);
            ADD(2, s->dim, kv_dim, T_MAT, "blk.%u.attn_v.weight", l);
        }
        if (qwen2) {
            ADD(1, qd, 1, T_BIAS, "blk.%u.attn_q.bias", l);
            ADD(1, kv_dim, 1, T_BIAS, "blk.%u.attn_k.bias", l);
            ADD(1, kv_dim, 1, T_BIAS, "blk.%u.attn_v.bias", l);
        }
        if (qk_norm) {
            ADD(1, hd, 1, T_NORM, "blk.%u.attn_q_norm.weight", l);
            ADD(1, hd, 1, T_NORM, "blk.%u.attn_k_norm.weight", l);
        }
        ADD(2, qd, s->dim, T_MAT, "blk.%u.attn_output.weight", l);
        if (post) ADD(1, s->dim, 1, T_NORM, "blk.%u.post_attention_norm.weight", l);
        ADD(1, s->dim, 1, T_NORM, "blk.%u.ffn_norm.weight", l);
        if (!phi3 && !mpt) ADD(2, s->dim, s->ffn_dim, T_MAT, "blk.%u.ffn_gate.weight", l);
        ADD(2, s->ffn_dim, s->dim, T_MAT, "blk.%u.ffn_down.weight", l);
        ADD(2, s->dim, (uint64_t)s->ffn_dim * (phi3 ? 2 : 1), T_MAT, "blk.%u.ffn_up.weight", l);
        if (post) ADD(1, s->dim, 1, T_NORM, "blk.%u.post_ffw_norm.weight", l);
    }
    ADD(1, s->dim, 1, T_NORM, "output_norm.weight");
    if (falcon) ADD(1, s->dim, 1, T_BIAS, "output_norm.bias");
    if (!s->tied_output && !is_arch(s, "gemma2")) ADD(2, s->dim, s->n_vocab, T_MAT, "output.weight");
#undef ADD
    return n;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Counter-based: element i of tensor k depends only on (seed, k, i). */
static void gen_row(const struct lm_llama_shape *s, const struct ltensor *lt, uint64_t k,
                    uint64_t first, float *out, uint64_t n)
{
    if (lt->kind == T_NORM && is_arch(s, "llama")) {
        for (uint64_t i = 0; i < n; i++) out[i] = 1.0f;
        return;
    }
    uint64_t key = mix64(s->seed ^ mix64(k + 0x1234567ULL));
    float scale = 1.0f / sqrtf((float)lt->ne[0]);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = mix64(key + (first + i + 1) * 0x9e3779b97f4a7c15ULL);
        float u = (float)(r >> 40) * (1.0f / 16777216.0f);     /* [0,1) */
        switch (lt->kind) {
        case T_NORM: out[i] = 0.75f + 0.5f * u; break;
        case T_BIAS: out[i] = (2.0f * u - 1.0f) * 0.5f; break;
        case T_ROPE: out[i] = 1.0f + 3.0f * u; break;
        default: out[i] = (2.0f * u - 1.0f) * scale; break;
        }
    }
}

static int shape_check(const struct lm_llama_shape *s, char *err, size_t errlen)
{
    if (s->n_vocab < 259) {
        seterr(err, errlen, "n_vocab %u: must be at least 259 (3 specials + 256 byte tokens)",
               s->n_vocab);
        return -1;
    }
    if (!s->dim || !s->n_layers || !s->n_heads || !s->n_kv_heads || !s->ffn_dim ||
        !s->context_length) {
        seterr(err, errlen, "dim, layers, heads, kv heads, ffn and context must be nonzero");
        return -1;
    }
    if ((!s->head_dim && s->dim % s->n_heads) || head_of(s) % 2) {
        seterr(err, errlen, "dim %u must be a multiple of heads %u with an even head size",
               s->dim, s->n_heads);
        return -1;
    }
    static const char *const archs[] = { "llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "falcon", "mpt" };
    int known = 0;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        known |= is_arch(s, archs[i]);
    if (!known) {
        seterr(err, errlen, "architecture '%s': the writer knows llama, qwen2, qwen3, phi3, gemma2, gemma3, falcon, mpt",
               arch_of(s));
        return -1;
    }
    if (s->n_heads % s->n_kv_heads) {
        seterr(err, errlen, "heads %u must be a multiple of kv heads %u", s->n_heads, s->n_kv_heads);
        return -1;
    }
    if (s->type != GGUF_TT_F32 && s->type != GGUF_TT_F16 && s->type != GGUF_TT_BF16 &&
        s->type != GGUF_TT_Q8_0 && s->type != GGUF_TT_Q4_K && s->type != GGUF_TT_Q6_K) {
        seterr(err, errlen, "matrix type must be F32, F16, BF16, Q8_0, Q4_K (the Q4_K_M mix) or Q6_K");
        return -1;
    }
    uint32_t qd = head_of(s) * s->n_heads;
    /* K-quant rows that are not a multiple of 256 fall back to Q5_0 / Q8_0 */
    if (s->type != GGUF_TT_F32 && s->type != GGUF_TT_F16 && s->type != GGUF_TT_BF16 &&
        (s->dim % 32 || s->ffn_dim % 32 || qd % 32)) {
        seterr(err, errlen, "%s needs dim (%u), ffn (%u) and heads x head size (%u) to be multiples of 32",
               gguf_ttype_name(s->type), s->dim, s->ffn_dim, qd);
        return -1;
    }
    return 0;
}

int lm_random_llama_tensor(const struct lm_llama_shape *s, const char *name, float *out,
                           uint64_t n)
{
    if (shape_check(s, NULL, 0) < 0) return -1;
    uint64_t nt = llama_layout(s, NULL);
    struct ltensor *lt = calloc((size_t)nt, sizeof(*lt));
    if (!lt) return -1;
    llama_layout(s, lt);
    int rc = -1;
    for (uint64_t k = 0; k < nt; k++) {
        if (strcmp(lt[k].name, name) == 0) {
            if (lt[k].ne[0] * lt[k].ne[1] == n) {
                gen_row(s, &lt[k], k, 0, out, n);
                rc = 0;
            }
            break;
        }
    }
    free(lt);
    return rc;
}

void lm_random_llama_piece(uint32_t id, char *buf, size_t buflen)
{
    /* Filler j: "▁" alone first, then "a", "▁a", "b", "▁b", ... "z", "▁z",
     * "aa", "▁aa", ... (bijective base 26), all distinct. */
    if (buflen == 0) return;
    if (id < 259) {
        buf[0] = '\0';
        return;
    }
    uint64_t j = id - 259;
    if (j == 0) {
        snprintf(buf, buflen, "\xe2\x96\x81");
        return;
    }
    j--;
    int space = (int)(j & 1);
    uint64_t m = j / 2;
    char word[16];
    int len = 0;
    for (;;) {
        word[len++] = (char)('a' + m % 26);
        if (m < 26) break;
        m = m / 26 - 1;
    }
    size_t o = 0;
    if (space && buflen > 4) {
        memcpy(buf, "\xe2\x96\x81", 3);
        o = 3;
    }
    while (len > 0 && o + 1 < buflen) buf[o++] = word[--len];
    buf[o] = '\0';
}

struct fill_ctx {
    const struct lm_llama_shape *s;
    struct ltensor *lt;
    float *row;
};

/* The type tensor lt is stored as. Q4_K means llama.cpp's Q4_K_M mix:
 * Q4_K matrices, Q6_K for attn_v, ffn_down and output, F32 norms; rows not a
 * multiple of 256 as Q5_0 (for Q4_K) and Q8_0 (for Q6_K). */
static enum gguf_ttype tensor_type(const struct lm_llama_shape *s, const struct ltensor *lt)
{
    if (lt->kind != T_MAT) return GGUF_TT_F32;
    enum gguf_ttype t = s->type;
    if (t == GGUF_TT_Q4_K && (strstr(lt->name, "attn_v.") || strstr(lt->name, "ffn_down.") ||
                              strcmp(lt->name, "output.weight") == 0))
        t = GGUF_TT_Q6_K;
    /* llama.cpp's fallback for rows that do not divide into 256 */
    if (lt->ne[0] % 256 && t == GGUF_TT_Q4_K) t = GGUF_TT_Q5_0;
    if (lt->ne[0] % 256 && t == GGUF_TT_Q6_K) t = GGUF_TT_Q8_0;
    return t;
}

static int fill_llama(void *ud, uint64_t k, void *dst, uint64_t nbytes)
{
    struct fill_ctx *c = ud;
    const struct ltensor *lt = &c->lt[k];
    enum gguf_ttype type = tensor_type(c->s, lt);
    uint64_t row_bytes = gguf_ttype_nbytes(type, lt->ne[0]);
    for (uint64_t r = 0; r < lt->ne[1]; r++) {
        gen_row(c->s, lt, k, r * lt->ne[0], c->row, lt->ne[0]);
        if (lm_row_to_type(type, c->row, (uint8_t *)dst + r * row_bytes, (size_t)lt->ne[0]) < 0)
            return -1;
    }
    return 0;
}

int lm_write_random_llama(const char *path, const struct lm_llama_shape *s, char *err,
                          size_t errlen)
{
    char e2[256];
    if (shape_check(s, e2, sizeof e2) < 0) {
        seterr(err, errlen, "%s: %s", path, e2);
        return -1;
    }
    if (s->vocab_from) {
        const struct gguf_kv *tk = gguf_find_kv(s->vocab_from, "tokenizer.ggml.tokens");
        if (!tk || tk->type != GGUF_T_ARRAY || tk->arr_n != s->n_vocab) {
            seterr(err, errlen, "%s: the vocabulary file has %llu tokens, the shape says %u", path,
                   tk ? (unsigned long long)tk->arr_n : 0ULL, s->n_vocab);
            return -1;
        }
    }
    struct gguf_writer *w = gguf_writer_new();
    uint64_t nt = llama_layout(s, NULL);
    struct ltensor *lt = calloc((size_t)nt, sizeof(*lt));
    size_t row_n = s->dim > s->ffn_dim ? s->dim : s->ffn_dim;
    if ((size_t)head_of(s) * s->n_heads + 2u * head_of(s) * s->n_kv_heads > row_n)
        row_n = (size_t)head_of(s) * s->n_heads + 2u * head_of(s) * s->n_kv_heads;
    float *row = malloc(row_n * sizeof(float));
    float *scores = malloc((size_t)s->n_vocab * sizeof(float));
    int32_t *types = malloc((size_t)s->n_vocab * sizeof(int32_t));
    char **tok = calloc(s->n_vocab, sizeof(char *));
    int rc = -1;
    if (!w || !lt || !row || !scores || !types || !tok) {
        seterr(err, errlen, "%s: out of memory", path);
        goto out;
    }
    llama_layout(s, lt);

    uint32_t file_type = s->type == GGUF_TT_F32 ? 0 : s->type == GGUF_TT_F16 ? 1
                       : s->type == GGUF_TT_Q8_0 ? 7 : s->type == GGUF_TT_Q4_K ? 15
                       : s->type == GGUF_TT_Q6_K ? 18 : 32;
    uint32_t head = head_of(s);
    const char *a = arch_of(s);
    char key[96];
#define AKEY(suffix) (snprintf(key, sizeof key, "%s." suffix, a), key)
    gguf_writer_add_str(w, "general.architecture", a);
    gguf_writer_add_str(w, "general.name", s->name ? s->name : "llmpin-random-llama");
    gguf_writer_add_u32(w, "general.file_type", file_type);
    gguf_writer_add_u32(w, "general.alignment", 32);
    gguf_writer_add_u32(w, AKEY("vocab_size"), s->n_vocab);
    gguf_writer_add_u32(w, AKEY("context_length"), s->context_length);
    gguf_writer_add_u32(w, AKEY("embedding_length"), s->dim);
    gguf_writer_add_u32(w, AKEY("block_count"), s->n_layers);
    gguf_writer_add_u32(w, AKEY("feed_forward_length"), s->ffn_dim);
    gguf_writer_add_u32(w, AKEY("attention.head_count"), s->n_heads);
    gguf_writer_add_u32(w, AKEY("attention.head_count_kv"), s->n_kv_heads);
    if (s->head_dim) {
        gguf_writer_add_u32(w, AKEY("attention.key_length"), head);
        gguf_writer_add_u32(w, AKEY("attention.value_length"), head);
    }
    gguf_writer_add_u32(w, AKEY("rope.dimension_count"), head);
    if (is_arch(s, "falcon") || is_arch(s, "mpt"))
        gguf_writer_add_f32(w, AKEY("attention.layer_norm_epsilon"), s->rms_eps > 0 ? s->rms_eps : 1e-5f);
    else
        gguf_writer_add_f32(w, AKEY("attention.layer_norm_rms_epsilon"),
                            s->rms_eps > 0 ? s->rms_eps : 1e-5f);
    gguf_writer_add_f32(w, AKEY("rope.freq_base"),
                        s->rope_freq_base > 0 ? s->rope_freq_base : 10000.0f);
    if (s->sliding_window)
        gguf_writer_add_u32(w, AKEY("attention.sliding_window"), s->sliding_window);
    if (s->swa_pattern)
        gguf_writer_add_u32(w, AKEY("attention.sliding_window_pattern"), s->swa_pattern);
    if (is_arch(s, "mpt"))
        gguf_writer_add_f32(w, AKEY("attention.max_alibi_bias"), s->alibi_bias > 0 ? s->alibi_bias : 8.0f);
    if (s->clamp_kqv > 0)
        gguf_writer_add_f32(w, AKEY("attention.clamp_kqv"), s->clamp_kqv);
    if (s->attn_softcap > 0)
        gguf_writer_add_f32(w, AKEY("attn_logit_softcapping"), s->attn_softcap);
    if (s->final_softcap > 0)
        gguf_writer_add_f32(w, AKEY("final_logit_softcapping"), s->final_softcap);
    if (s->rope_scaling) {
        gguf_writer_add_str(w, AKEY("rope.scaling.type"), s->rope_scaling);
        gguf_writer_add_f32(w, AKEY("rope.scaling.factor"), s->rope_factor);
    }
    if (s->rope_attn_factor > 0)
        gguf_writer_add_f32(w, AKEY("rope.scaling.attn_factor"), s->rope_attn_factor);
    if (s->rope_orig_ctx)
        gguf_writer_add_u32(w, AKEY("rope.scaling.original_context_length"), s->rope_orig_ctx);
#undef AKEY

    for (uint64_t k = 0; s->vocab_from && k < s->vocab_from->n_kv; k++) {
        const struct gguf_kv *kv = &s->vocab_from->kv[k];
        if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0 &&
            gguf_writer_copy_kv(w, kv) < 0) {
            seterr(err, errlen, "%s: cannot copy key '%.*s' from the vocabulary file", path,
                   (int)kv->key.len, kv->key.ptr);
            goto out;
        }
    }
    for (uint32_t i = 0; !s->vocab_from && i < s->n_vocab; i++) {
        char piece[32];
        if (i == 0) snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1) snprintf(piece, sizeof piece, "<s>");
        else if (i == 2) snprintf(piece, sizeof piece, "</s>");
        else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else lm_random_llama_piece(i, piece, sizeof piece);
        tok[i] = strdup(piece);
        if (!tok[i]) {
            seterr(err, errlen, "%s: out of memory", path);
            goto out;
        }
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    if (s->vocab_from) goto tensors;
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, s->n_vocab);
    gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, scores, s->n_vocab);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_T_INT32, types, s->n_vocab);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", 0);
    if (s->chat_template) gguf_writer_add_str(w, "tokenizer.chat_template", s->chat_template);
    for (int i = 0; s->str_kv && s->str_kv[i] && s->str_kv[i + 1]; i += 2)
        gguf_writer_add_str(w, s->str_kv[i], s->str_kv[i + 1]);

tensors:
    for (uint64_t k = 0; k < nt; k++)
        gguf_writer_add_tensor(w, lt[k].name, lt[k].n_dims, lt[k].ne,
                               tensor_type(s, &lt[k]), NULL);

    struct fill_ctx fc = {s, lt, row};
    rc = gguf_writer_write_file(w, path, fill_llama, &fc, err, errlen);
out:
    if (tok)
        for (uint32_t i = 0; i < s->n_vocab; i++) free(tok[i]);
    free(tok);
    free(types);
    free(scores);
    free(row);
    free(lt);
    gguf_writer_free(w);
    return rc;
}
