/*
 * kernels.c - row-dot kernels for F32/F16/BF16/Q8_0 weights, scalar and
 * SIMD (AVX2+FMA+F16C, AVX-512, AVX-512 VNNI), chosen at run time.
 *
 * Shape of every kernel: for each weight row, stream the row once and dot it
 * with G activation vectors (G = 1..4, a compile-time constant after
 * inlining, so the accumulators live in registers). More than 4 tokens are
 * done in groups of 4, re-reading the row from L1, not from memory. Each
 * token has its own accumulators and the same reduction order whatever G is,
 * which makes results independent of batching (see kernels.h).
 *
 * SIMD functions carry __attribute__((target(...))) so the file is built
 * with the default flags and the caller picks the variant with
 * __builtin_cpu_supports().
 */
#include "localmodel/kernels.h"

#include <math.h>
#include <string.h>
#include <immintrin.h>

#define MAXG 4

/* ---- conversions ------------------------------------------------------- */

float lm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                       /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lm_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    if (ax >= 0x7f800000u)                              /* inf / nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u)                              /* overflow -> inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {                             /* subnormal or zero */
        if (ax < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                       /* 14..24 */
        uint32_t v = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1)))
            v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((ax >> 13) - ((127 - 15) << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1)))
        v++;
    return (uint16_t)(sign | v);
}

float lm_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lm_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- ISA selection ----------------------------------------------------- */

enum lm_isa lm_isa_detect(void)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
          __builtin_cpu_supports("f16c")))
        return LM_ISA_SCALAR;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl")))
        return LM_ISA_AVX2;
    if (__builtin_cpu_supports("avx512vnni"))
        return LM_ISA_AVX512VNNI;
    return LM_ISA_AVX512;
}

const char *lm_isa_name(enum lm_isa isa)
{
    switch (isa) {
    case LM_ISA_SCALAR: return "scalar";
    case LM_ISA_AVX2: return "avx2";
    case LM_ISA_AVX512: return "avx512";
    case LM_ISA_AVX512VNNI: return "avx512vnni";
    }
    return "?";
}

/* ---- activation quantization ------------------------------------------- */

void lm_quantize_q8(const float *x, int n, int cols, float *d, int8_t *qs)
{
    int nb = cols / LM_QK8;
    for (int t = 0; t < n; t++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)t * cols + (size_t)b * LM_QK8;
            int8_t *q = qs + (size_t)t * cols + (size_t)b * LM_QK8;
            float amax = 0.0f;
            for (int i = 0; i < LM_QK8; i++) {
                float a = fabsf(xb[i]);
                if (a > amax) amax = a;
            }
            float scale = amax / 127.0f;
            float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            for (int i = 0; i < LM_QK8; i++)
                q[i] = (int8_t)lrintf(xb[i] * inv);
            d[(size_t)t * nb + b] = scale;
        }
    }
}

/* ---- scalar kernels ---------------------------------------------------- */

static float row_get(const struct lm_wmat *w, const uint8_t *row, int i)
{
    switch (w->type) {
    case GGUF_TT_F32: { float f; memcpy(&f, row + 4 * (size_t)i, 4); return f; }
    case GGUF_TT_F16: { uint16_t h; memcpy(&h, row + 2 * (size_t)i, 2); return lm_f16_to_f32(h); }
    case GGUF_TT_BF16: { uint16_t h; memcpy(&h, row + 2 * (size_t)i, 2); return lm_bf16_to_f32(h); }
    case GGUF_TT_Q8_0: {
        const struct lm_q8_block *b = (const struct lm_q8_block *)row + i / LM_QK8;
        return lm_f16_to_f32(b->d) * (float)b->qs[i % LM_QK8];
    }
    default: return 0.0f;
    }
}

static void rows_scalar(const struct lm_wmat *w, int r0, int r1, const float *x,
                        const float *xd, const int8_t *xq, int n, float *y, size_t ldy)
{
    int cols = w->cols;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        if (w->type == GGUF_TT_Q8_0) {
            int nb = cols / LM_QK8;
            const struct lm_q8_block *blk = (const struct lm_q8_block *)row;
            for (int t = 0; t < n; t++) {
                const int8_t *q = xq + (size_t)t * cols;
                const float *dd = xd + (size_t)t * nb;
                float s = 0.0f;
                for (int b = 0; b < nb; b++) {
                    int32_t isum = 0;
                    for (int i = 0; i < LM_QK8; i++)
                        isum += (int32_t)blk[b].qs[i] * q[b * LM_QK8 + i];
                    s += lm_f16_to_f32(blk[b].d) * dd[b] * (float)isum;
                }
                y[(size_t)t * ldy + r] = s;
            }
        } else {
            for (int t = 0; t < n; t++) {
                const float *xt = x + (size_t)t * cols;
                float s = 0.0f;
                for (int i = 0; i < cols; i++)
                    s += row_get(w, row, i) * xt[i];
                y[(size_t)t * ldy + r] = s;
            }
        }
    }
}

/* ---- AVX2 + FMA + F16C ------------------------------------------------- */

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define INL_AVX2 static inline __attribute__((always_inline, target("avx2,fma,f16c")))

INL_AVX2 float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* load 8 weights as floats */
INL_AVX2 __m256 ld8_f32(const void *p) { return _mm256_loadu_ps((const float *)p); }
INL_AVX2 __m256 ld8_f16(const void *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
INL_AVX2 __m256 ld8_bf16(const void *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* One row against G activations; ES = weight element size. */
#define DEF_DOTS_AVX2(NAME, LD, ES, GETW)                                              \
INL_AVX2 void NAME(const uint8_t *w, const float *x, int cols, int G, float *out)      \
{                                                                                      \
    __m256 a0[MAXG], a1[MAXG];                                                         \
    for (int t = 0; t < G; t++) { a0[t] = _mm256_setzero_ps(); a1[t] = _mm256_setzero_ps(); } \
    int i = 0;                                                                         \
    for (; i + 16 <= cols; i += 16) {                                                  \
        __m256 w0 = LD(w + (size_t)i * ES), w1 = LD(w + (size_t)(i + 8) * ES);         \
        for (int t = 0; t < G; t++) {                                                  \
            a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[t]);     \
            a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + (size_t)t * cols + i + 8), a1[t]); \
        }                                                                              \
    }                                                                                  \
    for (; i + 8 <= cols; i += 8) {                                                    \
        __m256 w0 = LD(w + (size_t)i * ES);                                            \
        for (int t = 0; t < G; t++)                                                    \
            a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[t]);     \
    }                                                                                  \
    for (int t = 0; t < G; t++) {                                                      \
        float s = hsum256(_mm256_add_ps(a0[t], a1[t]));                                \
        for (int j = i; j < cols; j++) s += GETW(w, j) * x[(size_t)t * cols + j];      \
        out[t] = s;                                                                    \
    }                                                                                  \
}

static inline float getw_f32(const uint8_t *w, int j) { float f; memcpy(&f, w + 4 * (size_t)j, 4); return f; }
static inline float getw_f16(const uint8_t *w, int j) { uint16_t h; memcpy(&h, w + 2 * (size_t)j, 2); return lm_f16_to_f32(h); }
static inline float getw_bf16(const uint8_t *w, int j) { uint16_t h; memcpy(&h, w + 2 * (size_t)j, 2); return lm_bf16_to_f32(h); }

DEF_DOTS_AVX2(dots_f32_avx2, ld8_f32, 4, getw_f32)
DEF_DOTS_AVX2(dots_f16_avx2, ld8_f16, 2, getw_f16)
DEF_DOTS_AVX2(dots_bf16_avx2, ld8_bf16, 2, getw_bf16)

/* Q8_0 row against G quantized activations. VNNI selects vpdpbusd; the
 * integer sums are exact either way, so both give identical floats. */
#define DEF_Q8_AVX2(NAME, ATTR, VNNI)                                                  \
static inline __attribute__((always_inline, target(ATTR)))                            \
void NAME(const uint8_t *w, const float *xd, const int8_t *xq, int cols, int G, float *out) \
{                                                                                      \
    int nb = cols / LM_QK8;                                                            \
    const struct lm_q8_block *blk = (const struct lm_q8_block *)w;                     \
    __m256 acc[MAXG];                                                                  \
    for (int t = 0; t < G; t++) acc[t] = _mm256_setzero_ps();                          \
    for (int b = 0; b < nb; b++) {                                                     \
        __m256i wq = _mm256_loadu_si256((const __m256i *)blk[b].qs);                   \
        __m256i aw = _mm256_sign_epi8(wq, wq);                                         \
        float dw = _cvtsh_ss(blk[b].d);                                                \
        for (int t = 0; t < G; t++) {                                                  \
            __m256i q = _mm256_loadu_si256((const __m256i *)(xq + (size_t)t * cols + (size_t)b * LM_QK8)); \
            __m256i sq = _mm256_sign_epi8(q, wq);                                      \
            __m256i p32;                                                               \
            if (VNNI) {                                                                \
                p32 = Q8_VNNI_DOT(aw, sq);                                             \
            } else {                                                                   \
                __m256i p16 = _mm256_maddubs_epi16(aw, sq);                            \
                p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));                    \
            }                                                                          \
            __m256 sc = _mm256_set1_ps(dw * xd[(size_t)t * nb + b]);                   \
            acc[t] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p32), acc[t]);             \
        }                                                                              \
    }                                                                                  \
    for (int t = 0; t < G; t++) out[t] = hsum256(acc[t]);                              \
}

#define Q8_VNNI_DOT(a, b) _mm256_setzero_si256()
DEF_Q8_AVX2(q8_dots_avx2, "avx2,fma,f16c", 0)
#undef Q8_VNNI_DOT
#define Q8_VNNI_DOT(a, b) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (a), (b))
DEF_Q8_AVX2(q8_dots_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", 1)
#undef Q8_VNNI_DOT

/* Dispatch G = 1..4 to constant-G inlined bodies. */
#define DEF_ROWS(NAME, ATTR, DOTS)                                                     \
static __attribute__((target(ATTR))) void NAME(const struct lm_wmat *w, int r0, int r1, \
        const float *x, int n, float *y, size_t ldy)                                   \
{                                                                                      \
    float o[MAXG];                                                                     \
    for (int r = r0; r < r1; r++) {                                                    \
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;      \
        for (int t0 = 0; t0 < n; t0 += MAXG) {                                         \
            int G = n - t0 < MAXG ? n - t0 : MAXG;                                     \
            const float *xt = x + (size_t)t0 * w->cols;                                \
            switch (G) {                                                               \
            case 1: DOTS(row, xt, w->cols, 1, o); break;                               \
            case 2: DOTS(row, xt, w->cols, 2, o); break;                               \
            case 3: DOTS(row, xt, w->cols, 3, o); break;                               \
            default: DOTS(row, xt, w->cols, 4, o); break;                              \
            }                                                                          \
            for (int t = 0; t < G; t++) y[(size_t)(t0 + t) * ldy + r] = o[t];          \
        }                                                                              \
    }                                                                                  \
}

#define DEF_ROWS_Q8(NAME, ATTR, DOTS)                                                  \
static __attribute__((target(ATTR))) void NAME(const struct lm_wmat *w, int r0, int r1, \
        const float *xd, const int8_t *xq, int n, float *y, size_t ldy)                \
{                                                                                      \
    float o[MAXG];                                                                     \
    int nb = w->cols / LM_QK8;                                                         \
    for (int r = r0; r < r1; r++) {                                                    \
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;      \
        for (int t0 = 0; t0 < n; t0 += MAXG) {                                         \
            int G = n - t0 < MAXG ? n - t0 : MAXG;                                     \
            const float *d = xd + (size_t)t0 * nb;                                     \
            const int8_t *q = xq + (size_t)t0 * w->cols;                               \
            switch (G) {                                                               \
            case 1: DOTS(row, d, q, w->cols, 1, o); break;                             \
            case 2: DOTS(row, d, q, w->cols, 2, o); break;                             \
            case 3: DOTS(row, d, q, w->cols, 3, o); break;                             \
            default: DOTS(row, d, q, w->cols, 4, o); break;                            \
            }                                                                          \
            for (int t = 0; t < G; t++) y[(size_t)(t0 + t) * ldy + r] = o[t];          \
        }                                                                              \
    }                                                                                  \
}

DEF_ROWS(rows_f32_avx2, "avx2,fma,f16c", dots_f32_avx2)
DEF_ROWS(rows_f16_avx2, "avx2,fma,f16c", dots_f16_avx2)
DEF_ROWS(rows_bf16_avx2, "avx2,fma,f16c", dots_bf16_avx2)
DEF_ROWS_Q8(rows_q8_avx2, "avx2,fma,f16c", q8_dots_avx2)
DEF_ROWS_Q8(rows_q8_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", q8_dots_vnni)

/* ---- AVX-512 ----------------------------------------------------------- */

#define A512 "avx512f,avx512bw,avx512vl,avx2,fma,f16c"
#define INL_512 static inline __attribute__((always_inline, target(A512)))

INL_512 __m512 ld16_f32(const void *p) { return _mm512_loadu_ps(p); }
INL_512 __m512 ld16_f16(const void *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
INL_512 __m512 ld16_bf16(const void *p)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

#define DEF_DOTS_512(NAME, LD, ES, GETW)                                               \
INL_512 void NAME(const uint8_t *w, const float *x, int cols, int G, float *out)       \
{                                                                                      \
    __m512 a0[MAXG], a1[MAXG];                                                         \
    for (int t = 0; t < G; t++) { a0[t] = _mm512_setzero_ps(); a1[t] = _mm512_setzero_ps(); } \
    int i = 0;                                                                         \
    for (; i + 32 <= cols; i += 32) {                                                  \
        __m512 w0 = LD(w + (size_t)i * ES), w1 = LD(w + (size_t)(i + 16) * ES);        \
        for (int t = 0; t < G; t++) {                                                  \
            a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)t * cols + i), a0[t]);      \
            a1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + (size_t)t * cols + i + 16), a1[t]); \
        }                                                                              \
    }                                                                                  \
    for (; i + 16 <= cols; i += 16) {                                                  \
        __m512 w0 = LD(w + (size_t)i * ES);                                            \
        for (int t = 0; t < G; t++)                                                    \
            a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)t * cols + i), a0[t]);      \
    }                                                                                  \
    for (int t = 0; t < G; t++) {                                                      \
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));                   \
        for (int j = i; j < cols; j++) s += GETW(w, j) * x[(size_t)t * cols + j];      \
        out[t] = s;                                                                    \
    }                                                                                  \
}

DEF_DOTS_512(dots_f32_512, ld16_f32, 4, getw_f32)
DEF_DOTS_512(dots_f16_512, ld16_f16, 2, getw_f16)
DEF_DOTS_512(dots_bf16_512, ld16_bf16, 2, getw_bf16)
DEF_ROWS(rows_f32_512, A512, dots_f32_512)
DEF_ROWS(rows_f16_512, A512, dots_f16_512)
DEF_ROWS(rows_bf16_512, A512, dots_bf16_512)

/* ---- dispatch ---------------------------------------------------------- */

void lm_matmul_rows(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1,
                    const float *x, const float *xd, const int8_t *xq, int n,
                    float *y, size_t ldy)
{
    if (r0 >= r1 || n <= 0)
        return;
    if (isa == LM_ISA_SCALAR) {
        rows_scalar(w, r0, r1, x, xd, xq, n, y, ldy);
        return;
    }
    int wide = isa >= LM_ISA_AVX512;
    switch (w->type) {
    case GGUF_TT_F32:
        (wide ? rows_f32_512 : rows_f32_avx2)(w, r0, r1, x, n, y, ldy);
        break;
    case GGUF_TT_F16:
        (wide ? rows_f16_512 : rows_f16_avx2)(w, r0, r1, x, n, y, ldy);
        break;
    case GGUF_TT_BF16:
        (wide ? rows_bf16_512 : rows_bf16_avx2)(w, r0, r1, x, n, y, ldy);
        break;
    case GGUF_TT_Q8_0:
        (isa == LM_ISA_AVX512VNNI ? rows_q8_vnni : rows_q8_avx2)(w, r0, r1, xd, xq, n, y, ldy);
        break;
    default:
        rows_scalar(w, r0, r1, x, xd, xq, n, y, ldy);
        break;
    }
}

static T_AVX2 float vdot_avx2(const float *x, const float *y, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static T_AVX2 void vaxpy_avx2(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

float lm_vec_dot(enum lm_isa isa, const float *x, const float *y, int n)
{
    if (isa >= LM_ISA_AVX2)
        return vdot_avx2(x, y, n);
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

void lm_vec_axpy(enum lm_isa isa, float *y, float a, const float *x, int n)
{
    if (isa >= LM_ISA_AVX2) {
        vaxpy_avx2(y, a, x, n);
        return;
    }
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static T_AVX2 void dequant_f16_avx2(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

void lm_dequant_rows(enum lm_isa isa, const struct lm_wmat *w, int r0, int nr, float *out)
{
    size_t cols = (size_t)w->cols;
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    switch (w->type) {
    case GGUF_TT_F32:
        memcpy(out, base, (size_t)nr * cols * 4);
        return;
    case GGUF_TT_F16:
        if (isa >= LM_ISA_AVX2) {
            dequant_f16_avx2((const uint16_t *)base, out, (size_t)nr * cols);
            return;
        }
        for (size_t i = 0; i < (size_t)nr * cols; i++) {
            uint16_t h;
            memcpy(&h, base + 2 * i, 2);
            out[i] = lm_f16_to_f32(h);
        }
        return;
    case GGUF_TT_BF16:
        for (size_t i = 0; i < (size_t)nr * cols; i++) {
            uint16_t h;
            memcpy(&h, base + 2 * i, 2);
            out[i] = lm_bf16_to_f32(h);
        }
        return;
    case GGUF_TT_Q8_0: {
        const struct lm_q8_block *b = (const struct lm_q8_block *)base;
        size_t nb = (size_t)nr * cols / LM_QK8;
        for (size_t k = 0; k < nb; k++) {
            float d = lm_f16_to_f32(b[k].d);
            for (int i = 0; i < LM_QK8; i++)
                out[k * LM_QK8 + i] = d * (float)b[k].qs[i];
        }
        return;
    }
    default:
        memset(out, 0, (size_t)nr * cols * 4);
        return;
    }
}
