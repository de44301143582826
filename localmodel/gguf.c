/*
 * gguf.c - a reader for GGUF v2/v3 files that treats the file as hostile.
 *
 * Why this file is careful: a model file comes from the internet. The
 * readers in other projects had a series of bugs where a count, a length or
 * a tensor dimension taken from the file was multiplied, added or allocated
 * before being checked (integer overflow -> undersized buffer -> overflow on
 * read; dims whose product wraps to 0; string lengths bigger than the file).
 *
 * The rules here:
 *   - Every read goes through the cursor functions below, which check that
 *     the bytes are inside the buffer before touching them.
 *   - Every multiplication or addition of file-supplied numbers uses the
 *     __builtin_*_overflow checks.
 *   - No allocation is sized by a count before that count has been checked
 *     against the bytes that remain: tables grow as entries are parsed, and
 *     a string array's index is allocated only after the whole array was
 *     walked and found to fit.
 *   - Nested arrays are walked with a bounded depth.
 *   - Errors say where: "<file>: offset N: key 'x': ...". Names taken from
 *     the file are printed escaped and truncated, so a hostile name cannot
 *     put control characters on a terminal.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor_count,
 * u64 kv_count, kv_count x (string key, u32 type, value), tensor_count x
 * (string name, u32 n_dims, n_dims x u64 ne, u32 ggml type, u64 offset),
 * padding to general.alignment, tensor data.
 */
#include "localmodel/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian values with memcpy; port it for big-endian hosts"
#endif

#define GGUF_MAX_ARRAY_DEPTH 8
#define GGUF_MAX_NAME 256          /* tensor names; ggml itself allows 63 */
#define GGUF_DEFAULT_ALIGNMENT 32

/* The public struct plus private lookup tables, allocated together so
 * gguf_close() frees one thing. */
struct gguf_file_priv {
    struct gguf_file pub;            /* must be first */
    struct gguf_kv **kv_sorted;      /* by key, for lookup */
    struct gguf_tensor **t_sorted;   /* by name, for lookup */
    uint64_t *t_info_off;            /* file offset of each tensor info, for messages */
    int owns_map;
};

/* Parsing cursor over the buffer. */
struct cur {
    const uint8_t *buf;
    size_t size;
    size_t pos;
    const char *name;                /* file name for messages */
    char *err;
    size_t errlen;
};

/* ---- messages ------------------------------------------------------------ */

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

/* Printable, truncated copy of a name from the file. */
static const char *safe_name(const char *p, uint64_t len, char *out, size_t outlen)
{
    size_t o = 0;
    uint64_t i;
    for (i = 0; i < len && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            out[o++] = (char)c;
        } else if (c >= 0x80) {
            out[o++] = (char)c;      /* UTF-8 bytes pass; only ASCII controls are escaped */
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        }
    }
    if (i < len && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
    return out;
}

static const char *vtype_name(uint32_t t)
{
    static const char *const names[] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64",
    };
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

static void cur_err(struct cur *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cur_err(struct cur *c, size_t at, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0) return;
    int n = snprintf(c->err, c->errlen, "%s: offset %zu: ", c->name, at);
    if (n < 0 || (size_t)n >= c->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- cursor reads ------------------------------------------------------- */

static size_t cur_left(const struct cur *c) { return c->size - c->pos; }

static int cur_need(struct cur *c, uint64_t n, const char *what)
{
    if (n > cur_left(c)) {
        cur_err(c, c->pos, "truncated: %s needs %llu bytes but the file has %zu left",
                what, (unsigned long long)n, cur_left(c));
        return -1;
    }
    return 0;
}

static int rd_u32(struct cur *c, uint32_t *v, const char *what)
{
    if (cur_need(c, 4, what) < 0) return -1;
    memcpy(v, c->buf + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(struct cur *c, uint64_t *v, const char *what)
{
    if (cur_need(c, 8, what) < 0) return -1;
    memcpy(v, c->buf + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int rd_str(struct cur *c, struct gguf_str *s, const char *what)
{
    size_t at = c->pos;
    uint64_t len;
    if (rd_u64(c, &len, what) < 0) return -1;
    if (len > cur_left(c)) {
        cur_err(c, at, "%s: string length %llu is larger than the %zu bytes left in the file",
                what, (unsigned long long)len, cur_left(c));
        return -1;
    }
    s->ptr = (const char *)(c->buf + c->pos);
    s->len = len;
    c->pos += (size_t)len;
    return 0;
}

/* Size in bytes of a fixed-size value type, 0 for string/array/unknown. */
static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

/* Smallest encoding of one value of type t (used to bound counts). */
static size_t vtype_min_size(uint32_t t)
{
    if (t == GGUF_T_STRING) return 8;       /* length prefix */
    if (t == GGUF_T_ARRAY) return 12;       /* element type + count */
    return vtype_size(t);
}

/* ---- tensor types ------------------------------------------------------- */

struct ttype_info {
    uint32_t id;
    const char *name;
    uint32_t block;      /* elements per block */
    uint32_t bytes;      /* bytes per block */
};

static const struct ttype_info ttypes[] = {
    {GGUF_TT_F32, "F32", 1, 4},
    {GGUF_TT_F16, "F16", 1, 2},
    {GGUF_TT_Q4_0, "Q4_0", 32, 18},
    {GGUF_TT_Q4_1, "Q4_1", 32, 20},
    {GGUF_TT_Q5_0, "Q5_0", 32, 22},
    {GGUF_TT_Q5_1, "Q5_1", 32, 24},
    {GGUF_TT_Q8_0, "Q8_0", 32, 34},
    {GGUF_TT_Q8_1, "Q8_1", 32, 36},
    {GGUF_TT_Q2_K, "Q2_K", 256, 84},
    {GGUF_TT_Q3_K, "Q3_K", 256, 110},
    {GGUF_TT_Q4_K, "Q4_K", 256, 144},
    {GGUF_TT_Q5_K, "Q5_K", 256, 176},
    {GGUF_TT_Q6_K, "Q6_K", 256, 210},
    {GGUF_TT_Q8_K, "Q8_K", 256, 292},
    {GGUF_TT_IQ4_NL, "IQ4_NL", 32, 18},
    {GGUF_TT_IQ4_XS, "IQ4_XS", 256, 136},
    {GGUF_TT_BF16, "BF16", 1, 2},
};

static const struct ttype_info *ttype_find(uint32_t t)
{
    for (size_t i = 0; i < sizeof(ttypes) / sizeof(ttypes[0]); i++)
        if (ttypes[i].id == t) return &ttypes[i];
    return NULL;
}

const char *gguf_ttype_name(uint32_t t)
{
    const struct ttype_info *ti = ttype_find(t);
    return ti ? ti->name : NULL;
}

uint32_t gguf_ttype_block(uint32_t t)
{
    const struct ttype_info *ti = ttype_find(t);
    return ti ? ti->block : 0;
}

uint64_t gguf_ttype_nbytes(uint32_t t, uint64_t n)
{
    const struct ttype_info *ti = ttype_find(t);
    uint64_t r;
    if (!ti || n % ti->block != 0) return 0;
    if (__builtin_mul_overflow(n / ti->block, (uint64_t)ti->bytes, &r)) return 0;
    return r;
}

/* ---- metadata ----------------------------------------------------------- */

/* Walk (and validate) an array body whose element type and count were just
 * read. Fixed-size arrays are skipped in one step; strings are checked one
 * by one; nested arrays recurse up to GGUF_MAX_ARRAY_DEPTH. */
static int skip_array(struct cur *c, uint32_t et, uint64_t n, int depth, const char *key)
{
    size_t at = c->pos;
    if (et > GGUF_T_FLOAT64) {
        cur_err(c, at, "key '%s': array element type %u is unknown (valid: 0..12)", key, et);
        return -1;
    }
    uint64_t min = vtype_min_size(et), total;
    if (__builtin_mul_overflow(n, min, &total) || total > cur_left(c)) {
        cur_err(c, at, "key '%s': array of %llu %s elements cannot fit in the %zu bytes left",
                key, (unsigned long long)n, vtype_name(et), cur_left(c));
        return -1;
    }
    if (et == GGUF_T_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            struct gguf_str s;
            if (rd_str(c, &s, "array string") < 0) {
                size_t m = strlen(c->err ? c->err : "");
                if (c->err && m + 1 < c->errlen)
                    snprintf(c->err + m, c->errlen - m, " (key '%s', element %llu)", key,
                             (unsigned long long)i);
                return -1;
            }
        }
        return 0;
    }
    if (et == GGUF_T_ARRAY) {
        if (depth >= GGUF_MAX_ARRAY_DEPTH) {
            cur_err(c, at, "key '%s': arrays nested deeper than %d levels",
                    key, GGUF_MAX_ARRAY_DEPTH);
            return -1;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint32_t et2;
            uint64_t n2;
            if (rd_u32(c, &et2, "nested array type") < 0) return -1;
            if (rd_u64(c, &n2, "nested array count") < 0) return -1;
            if (skip_array(c, et2, n2, depth + 1, key) < 0) return -1;
        }
        return 0;
    }
    if (et == GGUF_T_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            if (c->buf[c->pos + i] > 1) {
                cur_err(c, c->pos + (size_t)i, "key '%s': bool array element %llu is %u, not 0 or 1",
                        key, (unsigned long long)i, c->buf[c->pos + i]);
                return -1;
            }
        }
    }
    c->pos += (size_t)total;
    return 0;
}

static int parse_kv(struct cur *c, struct gguf_kv *kv)
{
    char kname[96];
    kv->file_offset = c->pos;
    if (rd_str(c, &kv->key, "metadata key") < 0) return -1;
    if (kv->key.len == 0) {
        cur_err(c, (size_t)kv->file_offset, "metadata key is empty");
        return -1;
    }
    safe_name(kv->key.ptr, kv->key.len, kname, sizeof kname);
    size_t at = c->pos;
    uint32_t t;
    if (rd_u32(c, &t, "value type") < 0) return -1;
    if (t > GGUF_T_FLOAT64) {
        cur_err(c, at, "key '%s': value type %u is unknown (valid: 0..12)", kname, t);
        return -1;
    }
    kv->type = (enum gguf_vtype)t;
    at = c->pos;
    const uint8_t *p = c->buf + c->pos;
    size_t sz = vtype_size(t);
    if (sz) {
        if (cur_need(c, sz, "value") < 0) return -1;
        switch (t) {
        case GGUF_T_UINT8: kv->v.u64 = p[0]; break;
        case GGUF_T_INT8: { int8_t x; memcpy(&x, p, 1); kv->v.i64 = x; break; }
        case GGUF_T_UINT16: { uint16_t x; memcpy(&x, p, 2); kv->v.u64 = x; break; }
        case GGUF_T_INT16: { int16_t x; memcpy(&x, p, 2); kv->v.i64 = x; break; }
        case GGUF_T_UINT32: { uint32_t x; memcpy(&x, p, 4); kv->v.u64 = x; break; }
        case GGUF_T_INT32: { int32_t x; memcpy(&x, p, 4); kv->v.i64 = x; break; }
        case GGUF_T_FLOAT32: { float x; memcpy(&x, p, 4); kv->v.f64 = x; break; }
        case GGUF_T_BOOL:
            if (p[0] > 1) {
                cur_err(c, at, "key '%s': bool value is %u, not 0 or 1", kname, p[0]);
                return -1;
            }
            kv->v.u64 = p[0];
            break;
        case GGUF_T_UINT64: memcpy(&kv->v.u64, p, 8); break;
        case GGUF_T_INT64: memcpy(&kv->v.i64, p, 8); break;
        case GGUF_T_FLOAT64: memcpy(&kv->v.f64, p, 8); break;
        }
        c->pos += sz;
        return 0;
    }
    if (t == GGUF_T_STRING) {
        if (rd_str(c, &kv->v.str, "string value") < 0) {
            size_t m = strlen(c->err ? c->err : "");
            if (c->err && m + 1 < c->errlen)
                snprintf(c->err + m, c->errlen - m, " (key '%s')", kname);
            return -1;
        }
        return 0;
    }
    /* array */
    uint32_t et;
    if (rd_u32(c, &et, "array element type") < 0) return -1;
    if (rd_u64(c, &kv->arr_n, "array count") < 0) return -1;
    if (et > GGUF_T_FLOAT64) {
        cur_err(c, at, "key '%s': array element type %u is unknown (valid: 0..12)", kname, et);
        return -1;
    }
    kv->arr_type = (enum gguf_vtype)et;
    kv->arr_data = c->buf + c->pos;
    size_t start = c->pos;
    if (skip_array(c, et, kv->arr_n, 1, kname) < 0) return -1;
    if (et == GGUF_T_STRING && kv->arr_n > 0) {
        /* The walk proved arr_n strings fit in the file, so this allocation
         * is bounded by the file size. */
        kv->arr_str_index = malloc((size_t)kv->arr_n * sizeof(*kv->arr_str_index));
        if (!kv->arr_str_index) {
            cur_err(c, start, "key '%s': out of memory for %llu strings", kname,
                    (unsigned long long)kv->arr_n);
            return -1;
        }
        size_t q = start;
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            uint64_t len;
            kv->arr_str_index[i] = c->buf + q;
            memcpy(&len, c->buf + q, 8);
            q += 8 + (size_t)len;
        }
    }
    return 0;
}

/* ---- sorting helpers ---------------------------------------------------- */

static int cmp_str(struct gguf_str a, struct gguf_str b)
{
    uint64_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_kvp(const void *a, const void *b)
{
    const struct gguf_kv *x = *(const struct gguf_kv *const *)a;
    const struct gguf_kv *y = *(const struct gguf_kv *const *)b;
    int r = cmp_str(x->key, y->key);
    if (r) return r;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

static int cmp_tp_name(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    int r = cmp_str(x->name, y->name);
    if (r) return r;
    return x < y ? -1 : x > y;
}

static int cmp_tp_off(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* ---- tensors ------------------------------------------------------------ */

static int parse_tensor(struct cur *c, struct gguf_tensor *t)
{
    char tname[96];
    size_t at = c->pos;
    if (rd_str(c, &t->name, "tensor name") < 0) return -1;
    if (t->name.len == 0 || t->name.len > GGUF_MAX_NAME) {
        cur_err(c, at, "tensor name length %llu is not in 1..%d",
                (unsigned long long)t->name.len, GGUF_MAX_NAME);
        return -1;
    }
    safe_name(t->name.ptr, t->name.len, tname, sizeof tname);
    at = c->pos;
    if (rd_u32(c, &t->n_dims, "tensor n_dims") < 0) return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
        cur_err(c, at, "tensor '%s': n_dims is %u, must be 1..%d", tname, t->n_dims,
                GGUF_MAX_DIMS);
        return -1;
    }
    uint64_t n = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        at = c->pos;
        if (rd_u64(c, &t->ne[d], "tensor dimension") < 0) return -1;
        if (t->ne[d] == 0) {
            cur_err(c, at, "tensor '%s': dimension %u is 0", tname, d);
            return -1;
        }
        if (t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(n, t->ne[d], &n) ||
            n > (uint64_t)INT64_MAX) {
            cur_err(c, at, "tensor '%s': dimension %u (%llu) makes the element count overflow",
                    tname, d, (unsigned long long)t->ne[d]);
            return -1;
        }
    }
    t->nelements = n;
    at = c->pos;
    uint32_t type;
    if (rd_u32(c, &type, "tensor type") < 0) return -1;
    const struct ttype_info *ti = ttype_find(type);
    if (!ti) {
        cur_err(c, at, "tensor '%s': tensor type %u is unknown or unsupported", tname, type);
        return -1;
    }
    t->type = (enum gguf_ttype)type;
    if (t->ne[0] % ti->block != 0) {
        cur_err(c, at, "tensor '%s': row length %llu is not a multiple of the %s block size %u",
                tname, (unsigned long long)t->ne[0], ti->name, ti->block);
        return -1;
    }
    t->nbytes = gguf_ttype_nbytes(type, n);
    if (t->nbytes == 0) {
        cur_err(c, at, "tensor '%s': byte size of %llu %s elements overflows", tname,
                (unsigned long long)n, ti->name);
        return -1;
    }
    if (rd_u64(c, &t->offset, "tensor offset") < 0) return -1;
    return 0;
}

/* Check tensor data placement once the data section start is known. */
static int place_tensors(struct cur *c, struct gguf_file *f, const uint64_t *info_off)
{
    char tname[96];
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        safe_name(t->name.ptr, t->name.len, tname, sizeof tname);
        uint64_t start, end;
        if (t->offset % f->alignment != 0) {
            seterr(c->err, c->errlen,
                   "%s: offset %llu: tensor '%s': offset %llu is not a multiple of the alignment %u",
                   c->name, (unsigned long long)info_off[i], tname, (unsigned long long)t->offset,
                   f->alignment);
            return -1;
        }
        if (__builtin_add_overflow(f->data_offset, t->offset, &start) ||
            __builtin_add_overflow(start, t->nbytes, &end) || end > c->size) {
            seterr(c->err, c->errlen,
                   "%s: offset %llu: tensor '%s': data (offset %llu in the data section at %llu, "
                   "%llu bytes) extends past the end of the file (%zu bytes)",
                   c->name, (unsigned long long)info_off[i], tname, (unsigned long long)t->offset,
                   (unsigned long long)f->data_offset, (unsigned long long)t->nbytes, c->size);
            return -1;
        }
        t->data = c->buf + start;
    }
    return 0;
}

/* ---- open --------------------------------------------------------------- */

static int grow(void **arr, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap) return 0;
    uint64_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    size_t bytes;
    if (__builtin_mul_overflow((size_t)nc, elem, &bytes)) return -1;
    void *p = realloc(*arr, bytes);
    if (!p) return -1;
    memset((char *)p + (size_t)*cap * elem, 0, bytes - (size_t)*cap * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

static int parse(struct gguf_file_priv *fp, const char *name, char *err, size_t errlen)
{
    struct gguf_file *f = &fp->pub;
    struct cur c = {f->map, f->size, 0, name, err, errlen};
    char nm[96];

    if (f->size < 4 || memcmp(f->map, "GGUF", 4) != 0) {
        if (f->size >= 4 && memcmp(f->map, "FUGG", 4) == 0)
            seterr(err, errlen, "%s: offset 0: big-endian GGUF files are not supported", name);
        else
            seterr(err, errlen, "%s: offset 0: not a GGUF file (magic is not \"GGUF\")", name);
        return -1;
    }
    c.pos = 4;
    if (rd_u32(&c, &f->version, "version") < 0) return -1;
    if (f->version == 1) {
        cur_err(&c, 4, "GGUF version 1 is not supported (it used 32-bit counts); "
                "re-convert the model to GGUF v3");
        return -1;
    }
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && f->version != 0)
            cur_err(&c, 4, "GGUF version %u looks byte-swapped (big-endian); not supported",
                    f->version);
        else
            cur_err(&c, 4, "GGUF version %u is not supported (only 2 and 3)", f->version);
        return -1;
    }
    uint64_t n_tensors, n_kv;
    if (rd_u64(&c, &n_tensors, "tensor_count") < 0) return -1;
    if (rd_u64(&c, &n_kv, "metadata_kv_count") < 0) return -1;
    /* A tensor info is at least 8+4+8+4+8 = 32 bytes, a kv at least
     * 8+1+4+1 = 14 bytes (a non-empty key and a uint8). */
    uint64_t min_t, min_kv, min_all;
    if (__builtin_mul_overflow(n_tensors, (uint64_t)32, &min_t) || min_t > cur_left(&c)) {
        cur_err(&c, 8, "tensor_count %llu cannot fit in the %zu bytes left in the file",
                (unsigned long long)n_tensors, cur_left(&c));
        return -1;
    }
    if (__builtin_mul_overflow(n_kv, (uint64_t)14, &min_kv) ||
        __builtin_add_overflow(min_kv, min_t, &min_all) || min_all > cur_left(&c)) {
        cur_err(&c, 16, "metadata_kv_count %llu cannot fit in the %zu bytes left in the file",
                (unsigned long long)n_kv, cur_left(&c));
        return -1;
    }

    uint64_t cap = 0;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&f->kv, &cap, i + 1, sizeof(*f->kv)) < 0) {
            seterr(err, errlen, "%s: out of memory reading metadata", name);
            return -1;
        }
        f->n_kv = i + 1;
        struct gguf_kv *kv = &f->kv[i];
        if (parse_kv(&c, kv) < 0) return -1;
        if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0) {
            if (kv->type != GGUF_T_UINT32) {
                cur_err(&c, (size_t)kv->file_offset, "key 'general.alignment': must be uint32, got %s",
                        vtype_name(kv->type));
                return -1;
            }
            uint64_t a = kv->v.u64;
            if (a == 0 || (a & (a - 1)) != 0) {
                cur_err(&c, (size_t)kv->file_offset,
                        "key 'general.alignment': must be a nonzero power of two, got %llu",
                        (unsigned long long)a);
                return -1;
            }
            f->alignment = (uint32_t)a;
        }
    }

    /* Duplicate keys, and the sorted index used by gguf_find_kv. */
    if (f->n_kv) {
        fp->kv_sorted = malloc((size_t)f->n_kv * sizeof(*fp->kv_sorted));
        if (!fp->kv_sorted) {
            seterr(err, errlen, "%s: out of memory", name);
            return -1;
        }
        for (uint64_t i = 0; i < f->n_kv; i++) fp->kv_sorted[i] = &f->kv[i];
        qsort(fp->kv_sorted, (size_t)f->n_kv, sizeof(*fp->kv_sorted), cmp_kvp);
        for (uint64_t i = 1; i < f->n_kv; i++) {
            if (cmp_str(fp->kv_sorted[i - 1]->key, fp->kv_sorted[i]->key) == 0) {
                const struct gguf_kv *k = fp->kv_sorted[i];
                seterr(err, errlen, "%s: offset %llu: duplicate key '%s' (first at offset %llu)",
                       name, (unsigned long long)k->file_offset,
                       safe_name(k->key.ptr, k->key.len, nm, sizeof nm),
                       (unsigned long long)fp->kv_sorted[i - 1]->file_offset);
                return -1;
            }
        }
    }

    /* Tensor infos: bound again by what is left now. */
    if (n_tensors > cur_left(&c) / 32) {
        cur_err(&c, c.pos, "tensor_count %llu cannot fit in the %zu bytes left after the metadata",
                (unsigned long long)n_tensors, cur_left(&c));
        return -1;
    }
    cap = 0;
    uint64_t cap2 = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (grow((void **)&f->tensors, &cap, i + 1, sizeof(*f->tensors)) < 0 ||
            grow((void **)&fp->t_info_off, &cap2, i + 1, sizeof(*fp->t_info_off)) < 0) {
            seterr(err, errlen, "%s: out of memory reading tensor infos", name);
            return -1;
        }
        f->n_tensors = i + 1;
        fp->t_info_off[i] = c.pos;
        if (parse_tensor(&c, &f->tensors[i]) < 0) return -1;
    }

    /* Data section. */
    uint64_t end = c.pos, data;
    if (__builtin_add_overflow(end, (uint64_t)f->alignment - 1, &data)) {
        cur_err(&c, c.pos, "data section offset overflows");
        return -1;
    }
    data &= ~((uint64_t)f->alignment - 1);
    f->data_offset = data;
    if (f->n_tensors > 0 && data > f->size) {
        cur_err(&c, c.pos, "data section would start at %llu (alignment %u), past the end of the file (%zu bytes)",
                (unsigned long long)data, f->alignment, f->size);
        return -1;
    }

    if (f->n_tensors) {
        size_t nt = (size_t)f->n_tensors;
        fp->t_sorted = malloc(nt * sizeof(*fp->t_sorted));
        struct gguf_tensor **byoff = malloc(nt * sizeof(*byoff));
        if (!fp->t_sorted || !byoff) {
            free(byoff);
            seterr(err, errlen, "%s: out of memory", name);
            return -1;
        }
        for (size_t i = 0; i < nt; i++) fp->t_sorted[i] = byoff[i] = &f->tensors[i];
        qsort(fp->t_sorted, nt, sizeof(*fp->t_sorted), cmp_tp_name);
        for (size_t i = 1; i < nt; i++) {
            if (cmp_str(fp->t_sorted[i - 1]->name, fp->t_sorted[i]->name) == 0) {
                const struct gguf_tensor *t = fp->t_sorted[i];
                seterr(err, errlen, "%s: offset %llu: duplicate tensor name '%s'", name,
                       (unsigned long long)fp->t_info_off[t - f->tensors],
                       safe_name(t->name.ptr, t->name.len, nm, sizeof nm));
                free(byoff);
                return -1;
            }
        }
        if (place_tensors(&c, f, fp->t_info_off) < 0) {
            free(byoff);
            return -1;
        }
        qsort(byoff, nt, sizeof(*byoff), cmp_tp_off);
        for (size_t i = 1; i < nt; i++) {
            const struct gguf_tensor *a = byoff[i - 1], *b = byoff[i];
            if (a->offset + a->nbytes > b->offset) {   /* both sums checked in place_tensors */
                char n2[96];
                seterr(err, errlen,
                       "%s: tensors '%s' (data offset %llu, %llu bytes) and '%s' (data offset %llu) overlap",
                       name, safe_name(a->name.ptr, a->name.len, nm, sizeof nm),
                       (unsigned long long)a->offset, (unsigned long long)a->nbytes,
                       safe_name(b->name.ptr, b->name.len, n2, sizeof n2),
                       (unsigned long long)b->offset);
                free(byoff);
                return -1;
            }
        }
        free(byoff);
    }
    return 0;
}

static struct gguf_file_priv *priv_new(const char *name)
{
    struct gguf_file_priv *fp = calloc(1, sizeof(*fp));
    if (!fp) return NULL;
    fp->pub.fd = -1;
    fp->pub.path = strdup(name);
    if (!fp->pub.path) {
        free(fp);
        return NULL;
    }
    return fp;
}

int gguf_open_buffer(const void *buf, size_t size, const char *name,
                     struct gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!name) name = "(buffer)";
    struct gguf_file_priv *fp = priv_new(name);
    if (!fp) {
        seterr(err, errlen, "%s: out of memory", name);
        return -1;
    }
    fp->pub.map = buf;
    fp->pub.size = size;
    if (!buf && size) {
        seterr(err, errlen, "%s: NULL buffer", name);
        gguf_close(&fp->pub);
        return -1;
    }
    if (parse(fp, name, err, errlen) < 0) {
        gguf_close(&fp->pub);
        return -1;
    }
    *out = &fp->pub;
    return 0;
}

int gguf_open(const char *path, struct gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size < 24) {
        seterr(err, errlen, "%s: file is %lld bytes, too small to be a GGUF file", path,
               (long long)st.st_size);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        seterr(err, errlen, "%s: file too large to map", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        seterr(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    struct gguf_file_priv *fp = priv_new(path);
    if (!fp) {
        munmap(map, size);
        close(fd);
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    fp->pub.fd = fd;
    fp->pub.map = map;
    fp->pub.size = size;
    fp->owns_map = 1;
    if (parse(fp, path, err, errlen) < 0) {
        gguf_close(&fp->pub);
        return -1;
    }
    *out = &fp->pub;
    return 0;
}

void gguf_close(struct gguf_file *f)
{
    if (!f) return;
    struct gguf_file_priv *fp = (struct gguf_file_priv *)f;
    for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].arr_str_index);
    free(f->kv);
    free(f->tensors);
    free(fp->kv_sorted);
    free(fp->t_sorted);
    free(fp->t_info_off);
    if (fp->owns_map && f->map) munmap((void *)f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(fp);
}

/* ---- lookups ------------------------------------------------------------ */

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key)
{
    const struct gguf_file_priv *fp = (const struct gguf_file_priv *)f;
    if (!f || !key || !f->n_kv) return NULL;
    struct gguf_str k = {key, strlen(key)};
    size_t lo = 0, hi = (size_t)f->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_str(fp->kv_sorted[mid]->key, k);
        if (r == 0) return fp->kv_sorted[mid];
        if (r < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    const struct gguf_file_priv *fp = (const struct gguf_file_priv *)f;
    if (!f || !name || !f->n_tensors) return NULL;
    struct gguf_str k = {name, strlen(name)};
    size_t lo = 0, hi = (size_t)f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_str(fp->t_sorted[mid]->name, k);
        if (r == 0) return fp->t_sorted[mid];
        if (r < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i)
{
    struct gguf_str s = {NULL, 0};
    if (!kv || kv->type != GGUF_T_ARRAY || kv->arr_type != GGUF_T_STRING ||
        i >= kv->arr_n || !kv->arr_str_index)
        return s;
    memcpy(&s.len, kv->arr_str_index[i], 8);
    s.ptr = (const char *)kv->arr_str_index[i] + 8;
    return s;
}

/* ---- typed getters ------------------------------------------------------ */

static const char *kv_type_desc(const struct gguf_kv *kv, char *buf, size_t n)
{
    if (kv->type == GGUF_T_ARRAY)
        snprintf(buf, n, "array of %s", vtype_name(kv->arr_type));
    else
        snprintf(buf, n, "%s", vtype_name(kv->type));
    return buf;
}

static const struct gguf_kv *get_kv(const struct gguf_file *f, const char *key, char *err,
                                    size_t errlen)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) seterr(err, errlen, "%s: key '%s' is missing", f ? f->path : "(null)", key);
    return kv;
}

static int wrong_type(const struct gguf_file *f, const struct gguf_kv *kv, const char *key,
                      const char *expected, char *err, size_t errlen)
{
    char d[40];
    seterr(err, errlen, "%s: offset %llu: key '%s': expected %s, got %s", f->path,
           (unsigned long long)kv->file_offset, key, expected, kv_type_desc(kv, d, sizeof d));
    return -1;
}

static int is_uint(enum gguf_vtype t)
{
    return t == GGUF_T_UINT8 || t == GGUF_T_UINT16 || t == GGUF_T_UINT32 || t == GGUF_T_UINT64;
}

static int is_sint(enum gguf_vtype t)
{
    return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 || t == GGUF_T_INT64;
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, char *err, size_t errlen)
{
    const struct gguf_kv *kv = get_kv(f, key, err, errlen);
    if (!kv) return -1;
    if (is_uint(kv->type)) {
        *out = kv->v.u64;
        return 0;
    }
    if (is_sint(kv->type)) {
        if (kv->v.i64 < 0) {
            seterr(err, errlen, "%s: key '%s': value %lld is negative", f->path, key,
                   (long long)kv->v.i64);
            return -1;
        }
        *out = (uint64_t)kv->v.i64;
        return 0;
    }
    return wrong_type(f, kv, key, "an unsigned integer", err, errlen);
}

int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out, char *err, size_t errlen)
{
    const struct gguf_kv *kv = get_kv(f, key, err, errlen);
    if (!kv) return -1;
    if (is_sint(kv->type)) {
        *out = kv->v.i64;
        return 0;
    }
    if (is_uint(kv->type)) {
        if (kv->v.u64 > (uint64_t)INT64_MAX) {
            seterr(err, errlen, "%s: key '%s': value %llu does not fit in int64", f->path, key,
                   (unsigned long long)kv->v.u64);
            return -1;
        }
        *out = (int64_t)kv->v.u64;
        return 0;
    }
    return wrong_type(f, kv, key, "an integer", err, errlen);
}

int gguf_get_f64(const struct gguf_file *f, const char *key, double *out, char *err, size_t errlen)
{
    const struct gguf_kv *kv = get_kv(f, key, err, errlen);
    if (!kv) return -1;
    if (kv->type == GGUF_T_FLOAT32 || kv->type == GGUF_T_FLOAT64) {
        *out = kv->v.f64;
        return 0;
    }
    /* Integers convert when the double holds them exactly (|v| <= 2^53). */
    const uint64_t lim = (uint64_t)1 << 53;
    if (is_uint(kv->type) && kv->v.u64 <= lim) {
        *out = (double)kv->v.u64;
        return 0;
    }
    if (is_sint(kv->type) && kv->v.i64 <= (int64_t)lim && kv->v.i64 >= -(int64_t)lim) {
        *out = (double)kv->v.i64;
        return 0;
    }
    return wrong_type(f, kv, key, "a float", err, errlen);
}

int gguf_get_bool(const struct gguf_file *f, const char *key, int *out, char *err, size_t errlen)
{
    const struct gguf_kv *kv = get_kv(f, key, err, errlen);
    if (!kv) return -1;
    if (kv->type != GGUF_T_BOOL) return wrong_type(f, kv, key, "bool", err, errlen);
    *out = kv->v.u64 != 0;
    return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out, char *err,
                 size_t errlen)
{
    const struct gguf_kv *kv = get_kv(f, key, err, errlen);
    if (!kv) return -1;
    if (kv->type != GGUF_T_STRING) return wrong_type(f, kv, key, "string", err, errlen);
    *out = kv->v.str;
    return 0;
}

int gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_vtype et,
                 const struct gguf_kv **out, char *err, size_t errlen)
{
    const struct gguf_kv *kv = get_kv(f, key, err, errlen);
    *out = NULL;
    if (!kv) return -1;
    if (kv->type != GGUF_T_ARRAY || kv->arr_type != et) {
        char want[32];
        snprintf(want, sizeof want, "array of %s", vtype_name(et));
        return wrong_type(f, kv, key, want, err, errlen);
    }
    *out = kv;
    return 0;
}
