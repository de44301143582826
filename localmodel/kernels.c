/*
 * kernels.c - row-dot kernels for F32/F16/BF16/Q8_0 weights, scalar and
 * SIMD (AVX2+FMA+F16C, AVX-512, AVX-512 VNNI), chosen at run time.
 *
 * Shape of every kernel: a tile of up to 4 weight rows x up to 4 tokens
 * (MAXG), streamed once over the columns with the accumulators in registers
 * (see "tiles" below). More than 4 tokens are done in groups of 4, re-reading
 * the rows from L1, not from memory. Each (row, token) has its own
 * accumulators and the same reduction order whatever the tile, which makes
 * results independent of batching (see kernels.h).
 *
 * SIMD functions carry __attribute__((target(...))) so the file is built
 * with the default flags and the caller picks the variant by lm_isa_detect()
 * (CPUID and the OS's saved register state).
 */
#include "localmodel/kernels.h"
#include "localmodel/quants.h"

#include <cpuid.h>
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

/* CPUID feature bits, and XCR0 for the register state the OS saves: AVX
 * needs XMM+YMM (bits 1-2), AVX-512 also opmask and ZMM (bits 5-7). Read
 * directly rather than with __builtin_cpu_supports, which clang 14 lacks
 * for f16c (the fuzz build). */
static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

enum lm_isa lm_isa_detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return LM_ISA_SCALAR;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx || !fma || !f16c)
        return LM_ISA_SCALAR;
    uint64_t x = xcr0();
    if ((x & 0x6) != 0x6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return LM_ISA_SCALAR;
    if (!((b >> 5) & 1))                                          /* avx2 */
        return LM_ISA_SCALAR;
    int avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);   /* f, bw, vl */
    if (!avx512 || (x & 0xe6) != 0xe6)
        return LM_ISA_AVX2;
    return (c >> 11) & 1 ? LM_ISA_AVX512VNNI : LM_ISA_AVX512;   /* avx512_vnni */
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

/* blk (32 or 256) values share one scale: amax / 127 */
static void quantize_blocks(const float *x, int n, int cols, int blk, float *d, int8_t *qs)
{
    int nb = cols / blk;
    for (int t = 0; t < n; t++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)t * cols + (size_t)b * blk;
            int8_t *q = qs + (size_t)t * cols + (size_t)b * blk;
            float amax = 0.0f;
            for (int i = 0; i < blk; i++) {
                float a = fabsf(xb[i]);
                if (a > amax) amax = a;
            }
            float scale = amax / 127.0f;
            float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            for (int i = 0; i < blk; i++)
                q[i] = (int8_t)lrintf(xb[i] * inv);
            d[(size_t)t * nb + b] = scale;
        }
    }
}

void lm_quantize_q8(const float *x, int n, int cols, float *d, int8_t *qs)
{
    quantize_blocks(x, n, cols, LM_QK8, d, qs);
}

void lm_quantize_q8k(const float *x, int n, int cols, float *d, int8_t *qs)
{
    quantize_blocks(x, n, cols, LM_QKK, d, qs);
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

/* Block types of quants.c: one integer dot per (row, token) with the Q8
 * activations; the value does not depend on how many tokens share the call. */
static void rows_block(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1, const float *xd,
                       const int8_t *xq, int n, float *y, size_t ldy)
{
    int cols = w->cols, nb = cols / LM_QK8;
    (void)cols;
    (void)nb;
    lm_quant_rows(isa, w, r0, r1, xd, xq, n, y, ldy);
}

static void rows_scalar(const struct lm_wmat *w, int r0, int r1, const float *x,
                        const float *xd, const int8_t *xq, int n, float *y, size_t ldy)
{
    if (lm_quant_is_block(w->type)) {
        rows_block(LM_ISA_SCALAR, w, r0, r1, xd, xq, n, y, ldy);
        return;
    }
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

/* ---- tiles ---------------------------------------------------------------
 *
 * A tile is R weight rows x G tokens. Each activation vector loaded serves R
 * rows and each weight vector serves G tokens, and the R*G accumulator sets
 * live in registers: R and G are constants once the always_inline bodies are
 * inlined into the per-type functions, and the loops over them are fully
 * unrolled (UNROLL; without it gcc -O2 keeps the accumulators in memory and
 * the store-to-load chain, not memory, bounds F16 decode).
 *
 * Decode is bound by how fast the weights stream in. Rows read one after
 * the other are one linear stream, which the hardware prefetchers follow;
 * 4 adjacent rows side by side are 4 short streams that they do not
 * (measured ~25% slower for F32 on a 2-core EPYC). Fastest are two long
 * streams: the first and second half of the row range side by side, as a
 * 2-row tile whose row stride is half the range. 1 thread, 110M model,
 * 256 KiB pieces: F32 43 -> 51 tok/s, F16 88 -> 97, Q8_0 159 -> 179; 4
 * sequences batched, Q8_0 187 -> 386. So up to 4 tokens use 2 x G tiles
 * (AVX2: 1 token; it lacks the registers), shorter row ranges and more
 * tokens 1 x G or 2 x 2 (float) and 4 x G (Q8_0 with VNNI) tiles.
 *
 * The value for one (row, token) is computed by the same instructions in the
 * same order whatever R and G are, which is what keeps results independent
 * of the batch and of the row range.
 */
#define UNROLL _Pragma("GCC unroll 16")
#define TR 4

static inline float getw(enum gguf_ttype ty, const uint8_t *w, int j)
{
    uint16_t h;
    if (ty == GGUF_TT_F32) { float f; memcpy(&f, w + 4 * (size_t)j, 4); return f; }
    memcpy(&h, w + 2 * (size_t)j, 2);
    return ty == GGUF_TT_F16 ? lm_f16_to_f32(h) : lm_bf16_to_f32(h);
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

/* 8 weights of type ty at p, as floats */
INL_AVX2 __m256 ld8(enum gguf_ttype ty, const uint8_t *p)
{
    if (ty == GGUF_TT_F32)
        return _mm256_loadu_ps((const float *)p);
    if (ty == GGUF_TT_F16) {
        __m128i h = _mm_loadu_si128((const __m128i *)p);
        __asm__("" : "+x"(h));          /* see ld16 */
        return _mm256_cvtph_ps(h);
    }
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* Rows w, w+rb, .. (R) against tokens x, x+cols, .. (G): y[t*ldy + r]. */
INL_AVX2 void tile_f_avx2(enum gguf_ttype ty, const uint8_t *w, size_t rb, const float *x,
                          int cols, int R, int G, float *y, size_t ldy)
{
    size_t es = ty == GGUF_TT_F32 ? 4 : 2;
    __m256 a0[TR][MAXG], a1[TR][MAXG];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < G; t++)
            a0[r][t] = a1[r][t] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *wr = w + (size_t)r * rb + (size_t)i * es;
            __m256 w0 = ld8(ty, wr), w1 = ld8(ty, wr + 8 * es);
            UNROLL for (int t = 0; t < G; t++) {
                const float *xt = x + (size_t)t * cols + i;
                a0[r][t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xt), a0[r][t]);
                a1[r][t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xt + 8), a1[r][t]);
            }
        }
    }
    if (i + 8 <= cols) {
        UNROLL for (int r = 0; r < R; r++) {
            __m256 w0 = ld8(ty, w + (size_t)r * rb + (size_t)i * es);
            UNROLL for (int t = 0; t < G; t++)
                a0[r][t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[r][t]);
        }
        i += 8;
    }
    UNROLL for (int r = 0; r < R; r++) {
        UNROLL for (int t = 0; t < G; t++) {
            float s = hsum256(_mm256_add_ps(a0[r][t], a1[r][t]));
            for (int j = i; j < cols; j++)
                s += getw(ty, w + (size_t)r * rb, j) * x[(size_t)t * cols + j];
            y[(size_t)t * ldy + r] = s;
        }
    }
}

/* Q8_0 rows against quantized tokens (xd scales, xq values), R*G <= 4.
 * maddubs wants unsigned x signed bytes, so the weight signs move onto the
 * activations (|w| . sign(x, w)); no pair of products overflows int16
 * (2 * 128 * 127). */
INL_AVX2 void tile_q8_avx2(const uint8_t *w, size_t rb, const float *xd, const int8_t *xq,
                           int cols, int R, int G, float *y, size_t ldy)
{
    int nb = cols / LM_QK8;
    __m256 acc[TR][MAXG];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < G; t++)
            acc[r][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        UNROLL for (int r = 0; r < R; r++) {
            const struct lm_q8_block *blk = (const struct lm_q8_block *)(w + (size_t)r * rb) + b;
            __m256i wq = _mm256_loadu_si256((const __m256i *)blk->qs);
            __m256i aw = _mm256_sign_epi8(wq, wq);
            __m256 dw = _mm256_set1_ps(_cvtsh_ss(blk->d));
            UNROLL for (int t = 0; t < G; t++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(xq + (size_t)t * cols + (size_t)b * LM_QK8));
                __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(q, wq));
                __m256i p32 = _mm256_madd_epi16(p16, ones);
                __m256 sc = _mm256_mul_ps(dw, _mm256_set1_ps(xd[(size_t)t * nb + b]));
                acc[r][t] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p32), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < G; t++)
            y[(size_t)t * ldy + r] = hsum256(acc[r][t]);
}

/* ---- AVX-512 ----------------------------------------------------------- */

#define A512 "avx512f,avx512bw,avx512vl,avx2,fma,f16c"
#define INL_512 static inline __attribute__((always_inline, target(A512)))
#define AVNNI A512 ",avx512vnni"
#define INL_VNNI static inline __attribute__((always_inline, target(AVNNI)))

INL_512 __m512 ld16(enum gguf_ttype ty, const uint8_t *p)
{
    if (ty == GGUF_TT_F32)
        return _mm512_loadu_ps(p);
    if (ty == GGUF_TT_F16) {
        /* A plain load, then the conversion: gcc folds the load into
         * vcvtph2ps, and that form streamed a 4 KiB-paged file mapping at
         * ~20 GB/s against ~26 GB/s for this one (2-core EPYC, same rows).
         * The empty asm keeps the two apart. */
        __m256i h = _mm256_loadu_si256((const __m256i *)p);
        __asm__("" : "+v"(h));
        return _mm512_cvtph_ps(h);
    }
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* the first k < 16 weights at p, the rest zero (no access past them) */
INL_512 __m512 ld16_mask(enum gguf_ttype ty, const uint8_t *p, __mmask16 k)
{
    if (ty == GGUF_TT_F32)
        return _mm512_maskz_loadu_ps(k, p);
    __m256i h = _mm256_maskz_loadu_epi16(k, p);
    if (ty == GGUF_TT_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* FNA accumulators per (row, token), each summing every FNA-th 16-column
 * piece: a single token's dot product is then FNA independent FMA chains
 * (the FMA latency, not memory, bounds one chain). */
#define FNA 2

INL_512 void tile_f_512(enum gguf_ttype ty, const uint8_t *w, size_t rb, const float *x,
                        int cols, int R, int G, float *y, size_t ldy)
{
    size_t es = ty == GGUF_TT_F32 ? 4 : 2;
    __m512 a[FNA][TR][MAXG];
    UNROLL for (int k = 0; k < FNA; k++)
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int t = 0; t < G; t++)
                a[k][r][t] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 * FNA <= cols; i += 16 * FNA) {
        if (R == 1) {
            UNROLL for (int k = 0; k < FNA; k++) {
                __m512 wv = ld16(ty, w + (size_t)(i + 16 * k) * es);
                UNROLL for (int t = 0; t < G; t++)
                    a[k][0][t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + (size_t)t * cols + i + 16 * k), a[k][0][t]);
            }
        } else {
            UNROLL for (int k = 0; k < FNA; k++) {
                __m512 xv[MAXG];
                UNROLL for (int t = 0; t < G; t++)
                    xv[t] = _mm512_loadu_ps(x + (size_t)t * cols + i + 16 * k);
                UNROLL for (int r = 0; r < R; r++) {
                    __m512 wv = ld16(ty, w + (size_t)r * rb + (size_t)(i + 16 * k) * es);
                    UNROLL for (int t = 0; t < G; t++)
                        a[k][r][t] = _mm512_fmadd_ps(wv, xv[t], a[k][r][t]);
                }
            }
        }
    }
    /* whole 16-column pieces left, then a partial one (masked loads) */
    UNROLL for (int k = 0; k < FNA; k++) {
        if (i >= cols)
            break;
        __mmask16 m = cols - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - i)) - 1);
        UNROLL for (int r = 0; r < R; r++) {
            __m512 wv = ld16_mask(ty, w + (size_t)r * rb + (size_t)i * es, m);
            UNROLL for (int t = 0; t < G; t++)
                a[k][r][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + (size_t)t * cols + i), a[k][r][t]);
        }
        i += 16;
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < G; t++) {
            __m512 s = _mm512_add_ps(a[0][r][t], a[1][r][t]);
            UNROLL for (int k = 2; k < FNA; k++)
                s = _mm512_add_ps(s, a[k][r][t]);
            y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(s);
        }
}

/* Q8_0 with VNNI: vpdpbusd multiplies unsigned by signed bytes, so the
 * activations go in offset by 128 (q + 128 in 1..255) and the accumulator
 * starts at -128 * (sum of the weights of each 4-byte lane):
 * sum((q + 128) w) - 128 sum(w) = sum(q w), exactly, with no int16 step.
 * Two blocks share one 512-bit register (block b in the low half, b + 1 in
 * the high half, with their scale products dw * dx side by side), which
 * halves the instructions per product; an odd last block goes in with a
 * zero high half (its products and scales are 0, adding +0). */
INL_VNNI __m512i q8_w2(const struct lm_q8_block *blk, int two)
{
    __m256i lo = _mm256_loadu_si256((const __m256i *)blk[0].qs);
    if (!two)
        return _mm512_zextsi256_si512(lo);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                              _mm256_loadu_si256((const __m256i *)blk[1].qs), 1);
}

/* scales f[0] in the low 8 lanes, f[1] (or 0) in the high 8 */
INL_VNNI __m512 bcast2(__m128 f)
{
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

INL_VNNI void tile_q8_vnni(const uint8_t *w, size_t rb, const float *xd, const int8_t *xq,
                           int cols, int R, int G, float *y, size_t ldy)
{
    int nb = cols / LM_QK8;
    __m512 acc[TR][MAXG];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < G; t++)
            acc[r][t] = _mm512_setzero_ps();
    const __m512i off = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        __m512i xu[MAXG];
        __m512 dx[MAXG];
        UNROLL for (int t = 0; t < G; t++) {
            const int8_t *q = xq + (size_t)t * cols + (size_t)b * LM_QK8;
            const float *d = xd + (size_t)t * nb + b;
            if (two) {
                xu[t] = _mm512_xor_si512(_mm512_loadu_si512(q), off);
                dx[t] = bcast2(_mm_castsi128_ps(_mm_loadu_si64(d)));
            } else {
                xu[t] = _mm512_zextsi256_si512(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q),
                                                                _mm512_castsi512_si256(off)));
                dx[t] = bcast2(_mm_load_ss(d));
            }
        }
        UNROLL for (int r = 0; r < R; r++) {
            const struct lm_q8_block *blk = (const struct lm_q8_block *)(w + (size_t)r * rb) + b;
            __m512i wq = q8_w2(blk, two);
            __m512i ncorr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, wq));
            uint32_t dd = blk[0].d | (two ? (uint32_t)blk[1].d << 16 : 0);
            __m512 dw = bcast2(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)));
            UNROLL for (int t = 0; t < G; t++) {
                __m512i p32 = _mm512_dpbusd_epi32(ncorr, xu[t], wq);
                __m512 sc = _mm512_mul_ps(dw, dx[t]);
                acc[r][t] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(p32), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < G; t++)
            y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ---- row loops ----------------------------------------------------------
 *
 * Up to MAXG tokens over 8 rows or more: the two-stream 2 x G tiles (see
 * the tiles comment). Otherwise rows go in blocks of TR; within a block
 * every group of up to MAXG tokens is done while the block's weights are in
 * L1. */

#define WROW(r) ((const uint8_t *)w->data + (size_t)(r) * w->row_bytes)
#define SWITCH_G(G, CALL)                                                              \
    switch (G) {                                                                       \
    case 1: CALL(1); break;                                                            \
    case 2: CALL(2); break;                                                            \
    case 3: CALL(3); break;                                                            \
    default: CALL(4); break;                                                           \
    }

/* Float weights: 2 rows x 2 tokens, or 1 row x G tokens. */
#define FLOAT_ROWS(TILE, TY, G2MAX)                                                    \
    int cols = w->cols;                                                                \
    size_t rb = w->row_bytes;                                                          \
    if (TY != GGUF_TT_BF16 && n <= G2MAX && r1 - r0 >= 8) {  /* BF16 not measured */   \
        /* two streams, rows r0 + k and r0 + h + k (a 2-row tile whose row   \
         * stride is h rows); see the tiles comment */                                \
        int h = (r1 - r0) / 2;                                                         \
        for (int k = 0; k < h; k++) {                                                  \
            float o2[2 * MAXG];                                                        \
            SWITCH_G(n, FLOAT_2xG_##TILE)                                              \
            for (int t = 0; t < n; t++) {                                              \
                y[(size_t)t * ldy + r0 + k] = o2[2 * t];                               \
                y[(size_t)t * ldy + r0 + h + k] = o2[2 * t + 1];                       \
            }                                                                          \
        }                                                                              \
        if (r0 + 2 * h < r1) {                                                         \
            const float *xt = x;                                                       \
            float *yt = y + r1 - 1;                                                    \
            int r = r1 - 1, k = 0;                                                     \
            SWITCH_G(n, FLOAT_1xG_##TILE)                                              \
        }                                                                              \
        return;                                                                        \
    }                                                                                  \
    for (int r = r0; r < r1; r += TR) {                                                \
        int nr = r1 - r < TR ? r1 - r : TR;                                            \
        for (int t0 = 0; t0 < n; t0 += MAXG) {                                         \
            int G = n - t0 < MAXG ? n - t0 : MAXG;                                     \
            const float *xt = x + (size_t)t0 * cols;                                   \
            float *yt = y + (size_t)t0 * ldy + r;                                      \
            if (nr == TR && G == 2) {                                           \
                TILE(TY, WROW(r), rb, xt, cols, 2, 2, yt, ldy);                        \
                TILE(TY, WROW(r + 2), rb, xt, cols, 2, 2, yt + 2, ldy);                \
            } else {                                                                   \
                for (int k = 0; k < nr; k++) {                                         \
                    SWITCH_G(G, FLOAT_1xG_##TILE)                                      \
                }                                                                      \
            }                                                                          \
        }                                                                              \
    }
#define FLOAT_1xG_tile_f_avx2(g) tile_f_avx2(TY_ARG, WROW(r + k), rb, xt, cols, 1, g, yt + k, ldy)
#define FLOAT_2xG_tile_f_avx2(g) tile_f_avx2(TY_ARG, WROW(r0 + k), (size_t)h * rb, x, cols, 2, g, o2, 2)
#define FLOAT_2xG_tile_f_512(g) tile_f_512(TY_ARG, WROW(r0 + k), (size_t)h * rb, x, cols, 2, g, o2, 2)
#define FLOAT_1xG_tile_f_512(g) tile_f_512(TY_ARG, WROW(r + k), rb, xt, cols, 1, g, yt + k, ldy)

/* G2MAX: most tokens for the two-stream path (2 x G tiles; AVX2 has the
 * registers for 2 x 1 only) */
#define DEF_ROWS_F(NAME, ATTR, TILE, TY, G2MAX)                                        \
static __attribute__((target(ATTR))) void NAME(const struct lm_wmat *w, int r0, int r1, \
        const float *x, int n, float *y, size_t ldy)                                   \
{                                                                                      \
    const enum gguf_ttype TY_ARG = TY;                                                 \
    FLOAT_ROWS(TILE, TY_ARG, G2MAX)                                                    \
}

DEF_ROWS_F(rows_f32_avx2, "avx2,fma,f16c", tile_f_avx2, GGUF_TT_F32, 1)
DEF_ROWS_F(rows_f16_avx2, "avx2,fma,f16c", tile_f_avx2, GGUF_TT_F16, 1)
DEF_ROWS_F(rows_bf16_avx2, "avx2,fma,f16c", tile_f_avx2, GGUF_TT_BF16, 1)
DEF_ROWS_F(rows_f32_512, A512, tile_f_512, GGUF_TT_F32, MAXG)
DEF_ROWS_F(rows_f16_512, A512, tile_f_512, GGUF_TT_F16, MAXG)
DEF_ROWS_F(rows_bf16_512, A512, tile_f_512, GGUF_TT_BF16, MAXG)

static T_AVX2 void rows_q8_avx2(const struct lm_wmat *w, int r0, int r1, const float *xd,
                                const int8_t *xq, int n, float *y, size_t ldy)
{
    int cols = w->cols, nb = cols / LM_QK8;
    size_t rb = w->row_bytes;
    for (int r = r0; r < r1; r += TR) {
        int nr = r1 - r < TR ? r1 - r : TR;
        for (int t0 = 0; t0 < n; t0 += MAXG) {
            int G = n - t0 < MAXG ? n - t0 : MAXG;
            const float *dt = xd + (size_t)t0 * nb;
            const int8_t *qt = xq + (size_t)t0 * cols;
            float *yt = y + (size_t)t0 * ldy + r;
            if (nr == TR && G == 2) {
                tile_q8_avx2(WROW(r), rb, dt, qt, cols, 2, 2, yt, ldy);
                tile_q8_avx2(WROW(r + 2), rb, dt, qt, cols, 2, 2, yt + 2, ldy);
            } else {
                for (int k = 0; k < nr; k++) {
#define Q8_1xG(g) tile_q8_avx2(WROW(r + k), rb, dt, qt, cols, 1, g, yt + k, ldy)
                    SWITCH_G(G, Q8_1xG)
#undef Q8_1xG
                }
            }
        }
    }
}

static __attribute__((target(AVNNI))) void rows_q8_vnni(const struct lm_wmat *w, int r0, int r1,
        const float *xd, const int8_t *xq, int n, float *y, size_t ldy)
{
    int cols = w->cols, nb = cols / LM_QK8;
    size_t rb = w->row_bytes;
    if (n <= MAXG && r1 - r0 >= 8) {      /* two streams, as FLOAT_ROWS */
        int h = (r1 - r0) / 2;
        for (int k = 0; k < h; k++) {
            float o2[2 * MAXG];
#define Q8_2xG(g) tile_q8_vnni(WROW(r0 + k), (size_t)h * rb, xd, xq, cols, 2, g, o2, 2)
            SWITCH_G(n, Q8_2xG)
#undef Q8_2xG
            for (int t = 0; t < n; t++) {
                y[(size_t)t * ldy + r0 + k] = o2[2 * t];
                y[(size_t)t * ldy + r0 + h + k] = o2[2 * t + 1];
            }
        }
        if (r0 + 2 * h < r1) {
#define Q8_1xG(g) tile_q8_vnni(WROW(r1 - 1), rb, xd, xq, cols, 1, g, y + r1 - 1, ldy)
            SWITCH_G(n, Q8_1xG)
#undef Q8_1xG
        }
        return;
    }
    for (int r = r0; r < r1; r += TR) {
        int nr = r1 - r < TR ? r1 - r : TR;
        for (int t0 = 0; t0 < n; t0 += MAXG) {
            int G = n - t0 < MAXG ? n - t0 : MAXG;
            const float *dt = xd + (size_t)t0 * nb;
            const int8_t *qt = xq + (size_t)t0 * cols;
            float *yt = y + (size_t)t0 * ldy + r;
            if (nr == TR && G > 1) {
#define Q8_4xG(g) tile_q8_vnni(WROW(r), rb, dt, qt, cols, 4, g, yt, ldy)
                SWITCH_G(G, Q8_4xG)
#undef Q8_4xG
            } else {
                for (int k = 0; k < nr; k++) {
#define Q8_1xG(g) tile_q8_vnni(WROW(r + k), rb, dt, qt, cols, 1, g, yt + k, ldy)
                    SWITCH_G(G, Q8_1xG)
#undef Q8_1xG
                }
            }
        }
    }
}

/* ---- Q8_0 prompt GEMM (VNNI) ----------------------------------------------
 *
 * In the row-dot tiles each (row, token, block) product ends as 8 int32
 * lanes that need their own scale multiply, conversion and FMA. Here the
 * lanes are 16 tokens instead: the activations of 16 tokens are interleaved
 * so that one 64-byte vector holds the same 4 bytes of one block for all 16
 * (lm_q8_interleave16), the 4 weight bytes are broadcast, and 8 vpdpbusd
 * give the 16 tokens' whole block sums. The float work is then 3
 * instructions per row and block for 16 tokens. Activations are offset to
 * unsigned as in tile_q8_vnni; the -128 * sum(w) correction is one sum per
 * row and block (vpsadbw). Rounding differs from lm_matmul_rows (the blocks
 * are summed in order, in one float per token), so this is for prompts,
 * like sgemm. */

void lm_q8_interleave16(const float *xd, const int8_t *xq, int n, int cols, float *dt, uint8_t *qt)
{
    int nb = cols / LM_QK8, ng = (n + 15) / 16;
    for (int g = 0; g < ng; g++) {
        for (int b = 0; b < nb; b++) {
            uint8_t *o = qt + ((size_t)g * nb + b) * 16 * LM_QK8;
            float *od = dt + ((size_t)g * nb + b) * 16;
            for (int j = 0; j < 16; j++) {
                int t = g * 16 + j;
                od[j] = t < n ? xd[(size_t)t * nb + b] : 0.0f;
                for (int k = 0; k < 8; k++)
                    for (int i = 0; i < 4; i++)
                        o[k * 64 + j * 4 + i] = (uint8_t)((t < n ? xq[(size_t)t * cols + b * LM_QK8 + k * 4 + i] : 0) + 128);
            }
        }
    }
}

#define GR 4                 /* rows per GEMM tile */
#define CORR_MAXB 512        /* blocks per row whose corrections fit on the stack */

/* -128 * (sum of the block's weights): sum(w + 128) by vpsadbw */
static inline __attribute__((always_inline, target(AVNNI))) int32_t q8_corr(const struct lm_q8_block *blk)
{
    __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)blk->qs),
                                                   _mm256_set1_epi8((char)0x80)),
                                  _mm256_setzero_si256());
    __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
    s2 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
    return 128 * 128 * LM_QK8 - 128 * _mm_cvtsi128_si32(s2);
}

static __attribute__((target(AVNNI))) void gemm_q8_vnni(const struct lm_wmat *w, int r0, int r1,
        const float *dt, const uint8_t *qt, int n, float *y, size_t ldy)
{
    int cols = w->cols, nb = cols / LM_QK8, ng = (n + 15) / 16;
    for (int r = r0; r < r1; r += GR) {
        int nr = r1 - r < GR ? r1 - r : GR;
        const struct lm_q8_block *rows[GR];
        for (int k = 0; k < GR; k++)
            rows[k] = (const struct lm_q8_block *)WROW(k < nr ? r + k : r);
        /* the corrections of this tile's blocks, once for all token groups */
        int32_t corr_buf[GR * CORR_MAXB], *corr = NULL;
        if (ng > 1 && nb <= CORR_MAXB) {
            corr = corr_buf;
            for (int k = 0; k < GR; k++)
                for (int b = 0; b < nb; b++)
                    corr[k * nb + b] = q8_corr(rows[k] + b);
        }
        for (int g = 0; g < ng; g++) {
            __m512 acc[GR];
            UNROLL for (int k = 0; k < GR; k++)
                acc[k] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const uint8_t *xb = qt + ((size_t)g * nb + b) * 16 * LM_QK8;
                __m512i xv[8];
                UNROLL for (int k = 0; k < 8; k++)
                    xv[k] = _mm512_loadu_si512(xb + 64 * k);
                __m512 dx = _mm512_loadu_ps(dt + ((size_t)g * nb + b) * 16);
                UNROLL for (int k = 0; k < GR; k++) {
                    const struct lm_q8_block *blk = rows[k] + b;
                    __m512i a0 = _mm512_set1_epi32(corr ? corr[k * nb + b] : q8_corr(blk)), a1 = _mm512_setzero_si512();
                    /* Broadcasts straight from memory (a load, no shuffle port):
                     * gcc merges the eight 4-byte loads into one and extracts
                     * with shuffles, 15% slower overall, hence the asm. */
                    UNROLL for (int q = 0; q < 8; q += 2) {
                        __m512i w0, w1;
                        __asm__("vpbroadcastd %1, %0" : "=v"(w0) : "m"(*(const char (*)[4])(blk->qs + 4 * q)));
                        __asm__("vpbroadcastd %1, %0" : "=v"(w1) : "m"(*(const char (*)[4])(blk->qs + 4 * q + 4)));
                        a0 = _mm512_dpbusd_epi32(a0, xv[q], w0);
                        a1 = _mm512_dpbusd_epi32(a1, xv[q + 1], w1);
                    }
                    __m512 sc = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(blk->d)), dx);
                    acc[k] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), acc[k]);
                }
            }
            int nt = n - g * 16 < 16 ? n - g * 16 : 16;
            for (int k = 0; k < nr; k++) {
                float o[16];
                _mm512_storeu_ps(o, acc[k]);
                for (int j = 0; j < nt; j++)
                    y[(size_t)(g * 16 + j) * ldy + r + k] = o[j];
            }
        }
    }
}

void lm_gemm_q8(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1, const float *dt,
                const uint8_t *qt, int n, float *y, size_t ldy)
{
    if (r0 >= r1 || n <= 0)
        return;
    if (isa == LM_ISA_AVX512VNNI) {
        gemm_q8_vnni(w, r0, r1, dt, qt, n, y, ldy);
        return;
    }
    /* portable: the same arithmetic, block sums in order */
    int cols = w->cols, nb = cols / LM_QK8;
    for (int r = r0; r < r1; r++) {
        const struct lm_q8_block *blk = (const struct lm_q8_block *)WROW(r);
        for (int t = 0; t < n; t++) {
            int g = t / 16, j = t % 16;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                const uint8_t *xb = qt + ((size_t)g * nb + b) * 16 * LM_QK8;
                int32_t isum = 0;
                for (int k = 0; k < 8; k++)
                    for (int i = 0; i < 4; i++)
                        isum += ((int32_t)xb[k * 64 + j * 4 + i] - 128) * blk[b].qs[k * 4 + i];
                float sc = lm_f16_to_f32(blk[b].d) * dt[((size_t)g * nb + b) * 16 + j];
                acc = fmaf(sc, (float)isum, acc);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

/* ---- activation quantization, SIMD --------------------------------------
 *
 * The same arithmetic as lm_quantize_q8 (amax / 127, its reciprocal, round
 * to nearest even), so the results are identical. */

static __attribute__((target(A512))) void quantize_q8_512(const float *x, int n, int cols, int blk,
                                                          float *d, int8_t *qs)
{
    int nb = cols / blk;
    for (int t = 0; t < n; t++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)t * cols + (size_t)b * blk;
            __m512 m = _mm512_setzero_ps();
            for (int i = 0; i < blk; i += 16)
                m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xb + i)));
            float amax = _mm512_reduce_max_ps(m);
            float scale = amax / 127.0f;
            float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            __m512 vi = _mm512_set1_ps(inv);
            int8_t *q = qs + (size_t)t * cols + (size_t)b * blk;
            for (int i = 0; i < blk; i += 16)
                _mm_storeu_si128((__m128i *)(q + i),
                                 _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + i), vi))));
            d[(size_t)t * nb + b] = scale;
        }
    }
}

static T_AVX2 void quantize_q8_avx2(const float *x, int n, int cols, int blk, float *d, int8_t *qs)
{
    int nb = cols / blk;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int t = 0; t < n; t++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)t * cols + (size_t)b * blk;
            __m256 m = _mm256_setzero_ps();
            for (int i = 0; i < blk; i += 8)
                m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xb + i), absmask));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            float amax = _mm_cvtss_f32(m4);
            float scale = amax / 127.0f;
            float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            __m256 vi = _mm256_set1_ps(inv);
            for (int i = 0; i < blk; i += 32) {
                __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i), vi));
                __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 8), vi));
                __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 16), vi));
                __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 24), vi));
                /* packs interleave 128-bit lanes; the permute puts them back */
                __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
                p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256((__m256i *)(qs + (size_t)t * cols + (size_t)b * blk + i), p);
            }
            d[(size_t)t * nb + b] = scale;
        }
    }
}

static void quantize_isa(enum lm_isa isa, const float *x, int n, int cols, int blk, float *d, int8_t *qs)
{
    if (isa >= LM_ISA_AVX512)
        quantize_q8_512(x, n, cols, blk, d, qs);
    else if (isa == LM_ISA_AVX2)
        quantize_q8_avx2(x, n, cols, blk, d, qs);
    else
        quantize_blocks(x, n, cols, blk, d, qs);
}

void lm_quantize_q8_isa(enum lm_isa isa, const float *x, int n, int cols, float *d, int8_t *qs)
{
    quantize_isa(isa, x, n, cols, LM_QK8, d, qs);
}

void lm_quantize_q8k_isa(enum lm_isa isa, const float *x, int n, int cols, float *d, int8_t *qs)
{
    quantize_isa(isa, x, n, cols, LM_QKK, d, qs);
}

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
        if (lm_quant_is_block(w->type))
            rows_block(isa, w, r0, r1, xd, xq, n, y, ldy);
        else
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

/* ---- attention ----------------------------------------------------------
 *
 * One query head against npos cached positions. AVX-512 keeps q and the
 * output in registers (head_dim / 16 vectors each; head_dim 32, 64, 80, 96,
 * 128 or 256), reduces four positions' partial dot products together
 * (unpack/add trees instead of four full horizontal sums), and accumulates
 * the values without storing the output per position. Other shapes and
 * ISAs use the plain loops below. */

#define ATT_MAXV 16

/* e^x within 2 ulp (used for x <= 0 by the softmax, any x by silu):
 * x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so that n ln2 is exact
 * enough), e^r by its Taylor series to r^7 (truncation < 1e-8 relative),
 * times 2^n by vscalefps, which also gives 0 below about -104 and inf
 * above about 88.7. */
INL_512 __m512 exp_512(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-110.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682028622677e-06f), r);
    __m512 y = _mm512_set1_ps(1.0f / 5040.0f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 720.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 120.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 24.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 6.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

INL_512 __m512 ld_kv16(int f16, const void *base, size_t off)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + off)));
    return _mm512_loadu_ps((const float *)base + off);
}

/* sums of a, b, c, d as one vector [sa, sb, sc, sd] */
INL_512 __m128 hsum4_512(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 abcd = _mm512_add_ps(
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

INL_512 void attn_512(int nv, int f16, const float *q, const void *k, const void *v,
                     size_t stride, int npos, float scale, float *sc, float *out)
{
    __m512 qv[ATT_MAXV];
    UNROLL for (int j = 0; j < nv; j++)
        qv[j] = _mm512_loadu_ps(q + 16 * j);
    float mx = -INFINITY;
    int p = 0;
    for (; p + 4 <= npos; p += 4) {
        __m512 a[4];
        /* fetch the values alongside the keys (into L2): two streams at
         * once instead of one after the other */
        UNROLL for (int u = 0; u < 4; u++)
            UNROLL for (int j = 0; j < nv; j += 4 >> f16)
                _mm_prefetch((const char *)v + (((size_t)(p + u) * stride + 16 * (size_t)j) << (2 - f16)), _MM_HINT_T1);
        UNROLL for (int u = 0; u < 4; u++) {
            size_t o = (size_t)(p + u) * stride;
            a[u] = _mm512_mul_ps(qv[0], ld_kv16(f16, k, o));
            UNROLL for (int j = 1; j < nv; j++)
                a[u] = _mm512_fmadd_ps(qv[j], ld_kv16(f16, k, o + 16 * (size_t)j), a[u]);
        }
        __m128 s4 = _mm_mul_ps(hsum4_512(a[0], a[1], a[2], a[3]), _mm_set1_ps(scale));
        _mm_storeu_ps(sc + p, s4);
        for (int u = 0; u < 4; u++)
            if (sc[p + u] > mx) mx = sc[p + u];
    }
    for (; p < npos; p++) {
        size_t o = (size_t)p * stride;
        __m512 a = _mm512_mul_ps(qv[0], ld_kv16(f16, k, o));
        UNROLL for (int j = 1; j < nv; j++)
            a = _mm512_fmadd_ps(qv[j], ld_kv16(f16, k, o + 16 * (size_t)j), a);
        sc[p] = _mm512_reduce_add_ps(a) * scale;
        if (sc[p] > mx) mx = sc[p];
    }
    __m512 vmx = _mm512_set1_ps(mx), vsum = _mm512_setzero_ps();
    for (p = 0; p + 16 <= npos; p += 16) {
        __m512 e = exp_512(_mm512_sub_ps(_mm512_loadu_ps(sc + p), vmx));
        _mm512_storeu_ps(sc + p, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    if (p < npos) {
        __mmask16 m = (__mmask16)((1u << (npos - p)) - 1);
        __m512 e = exp_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, sc + p), vmx));
        _mm512_mask_storeu_ps(sc + p, m, e);
        vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
    }
    float inv = 1.0f / _mm512_reduce_add_ps(vsum);
    __m512 ov[ATT_MAXV];
    UNROLL for (int j = 0; j < nv; j++)
        ov[j] = _mm512_setzero_ps();
    for (p = 0; p < npos; p++) {
        __m512 wt = _mm512_set1_ps(sc[p] * inv);
        size_t o = (size_t)p * stride;
        UNROLL for (int j = 0; j < nv; j++)
            ov[j] = _mm512_fmadd_ps(wt, ld_kv16(f16, v, o + 16 * (size_t)j), ov[j]);
    }
    UNROLL for (int j = 0; j < nv; j++)
        _mm512_storeu_ps(out + 16 * j, ov[j]);
}

/* head_dim / 16 and the KV type as constants, so that q and the output stay
 * in registers; 1 if this head size has an instance. */
static __attribute__((target(A512))) int attn_512_any(int nv, int f16, const float *q,
        const void *k, const void *v, size_t stride, int npos, float scale, float *sc, float *out)
{
#define ATT_CASE(N)                                                                    \
    case N:                                                                            \
        if (f16) attn_512(N, 1, q, k, v, stride, npos, scale, sc, out);                \
        else attn_512(N, 0, q, k, v, stride, npos, scale, sc, out);                    \
        return 1;
    switch (nv) {
    ATT_CASE(2) ATT_CASE(4) ATT_CASE(5) ATT_CASE(6) ATT_CASE(8) ATT_CASE(16)
    default: return 0;
    }
#undef ATT_CASE
}

static __attribute__((target(A512))) void silu_mul_512(float *g, const float *u, int n)
{
    int i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 e = exp_512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 e = exp_512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)),
                                                      _mm512_maskz_loadu_ps(m, u + i)));
    }
}

void lm_silu_mul(enum lm_isa isa, float *g, const float *u, int n)
{
    if (isa >= LM_ISA_AVX512) {
        silu_mul_512(g, u, n);
        return;
    }
    for (int i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float kv_at(int f16, const void *base, size_t i)
{
    if (f16)
        return lm_f16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

void lm_attn_head(enum lm_isa isa, const float *q, int hd, const void *k, const void *v,
                  int kv_f16, size_t stride, int npos, float scale, float softcap, float alibi,
                  float *sc, float *out)
{
    if (isa >= LM_ISA_AVX512 && hd % 16 == 0 && softcap == 0.0f && alibi == 0.0f &&
        attn_512_any(hd / 16, kv_f16, q, k, v, stride, npos, scale, sc, out))
        return;
    float mx = -INFINITY;
    for (int p = 0; p < npos; p++) {
        size_t o = (size_t)p * stride;
        float s = 0.0f;
        if (!kv_f16) {
            s = lm_vec_dot(isa, q, (const float *)k + o, hd);
        } else {
            for (int i = 0; i < hd; i++)
                s += q[i] * kv_at(1, k, o + i);
        }
        s *= scale;
        if (softcap != 0.0f)
            s = softcap * tanhf(s / softcap);
        if (alibi != 0.0f)
            s -= alibi * (float)(npos - 1 - p);
        sc[p] = s;
        if (s > mx) mx = s;
    }
    float sum = 0.0f;
    for (int p = 0; p < npos; p++) {
        sc[p] = expf(sc[p] - mx);
        sum += sc[p];
    }
    float inv = 1.0f / sum;
    memset(out, 0, sizeof(float) * (size_t)hd);
    for (int p = 0; p < npos; p++) {
        size_t o = (size_t)p * stride;
        float a = sc[p] * inv;
        if (!kv_f16) {
            lm_vec_axpy(isa, out, a, (const float *)v + o, hd);
        } else {
            for (int i = 0; i < hd; i++)
                out[i] += a * kv_at(1, v, o + i);
        }
    }
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
        if (lm_quant_is_block(w->type)) {
            for (int r = 0; r < nr; r++)
                lm_quant_dequant(w->type, base + (size_t)r * w->row_bytes, out + (size_t)r * cols, cols);
            return;
        }
        memset(out, 0, (size_t)nr * cols * 4);
        return;
    }
}
