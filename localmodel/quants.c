/*
 * quants.c - block-quantized weight types (quants.h).
 *
 * Two views of each block. Dequantization writes floats computed in the
 * same order of operations as ggml's, so they are bit for bit the same.
 * For dot products a block is unpacked to integers q[i] and, per 16
 * weights, a scale a and an offset b with w = a * q + b; the dot with an
 * activation block (xd, xq[32]) is then xd * (a * sum(q * xq) + b * sum(xq))
 * per 16 weights, in integers inside.
 */
#include "localmodel/quants.h"

#include <immintrin.h>
#include <string.h>

#define QK 32
#define QKK 256

static const int8_t IQ4NL_VALUES[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

static inline float half_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return lm_f16_to_f32(h);
}

/* 6-bit scale and min j (0..7) of a Q4_K / Q5_K block's 12 scale bytes */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K: 16 signed 6-bit scales (stored +32) from 12 bytes */
static void scales_q3k(const uint8_t *s12, int8_t out[16])
{
    uint32_t aux[4];
    memcpy(aux, s12, 12);
    uint32_t tmp = aux[2];
    const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
    aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
    aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
    aux[0] = (aux[0] & k2) | (((tmp >> 0) & k1) << 4);
    aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
    memcpy(out, aux, 16);
}

int lm_quant_is_block(enum gguf_ttype t)
{
    switch (t) {
    case GGUF_TT_Q4_0: case GGUF_TT_Q4_1: case GGUF_TT_Q5_0: case GGUF_TT_Q5_1:
    case GGUF_TT_Q2_K: case GGUF_TT_Q3_K: case GGUF_TT_Q4_K: case GGUF_TT_Q5_K:
    case GGUF_TT_Q6_K: case GGUF_TT_IQ4_NL: case GGUF_TT_IQ4_XS:
        return 1;
    default:
        return 0;
    }
}

/* ---- unpacking: w[i] = a[i/16] * q[i] + b[i/16] ------------------------- */

/* One block of t at p into q (32 or 256 values), a, b (per 16); returns the
 * number of weights. */
static int unpack(enum gguf_ttype t, const uint8_t *p, int8_t *q, float *a, float *b)
{
    switch (t) {
    case GGUF_TT_Q4_0: case GGUF_TT_IQ4_NL: {
        float d = half_at(p);
        const uint8_t *qs = p + 2;
        for (int j = 0; j < 16; j++) {
            if (t == GGUF_TT_Q4_0) {
                q[j] = (int8_t)((qs[j] & 0xF) - 8);
                q[j + 16] = (int8_t)((qs[j] >> 4) - 8);
            } else {
                q[j] = IQ4NL_VALUES[qs[j] & 0xF];
                q[j + 16] = IQ4NL_VALUES[qs[j] >> 4];
            }
        }
        a[0] = a[1] = d;
        b[0] = b[1] = 0.0f;
        return QK;
    }
    case GGUF_TT_Q4_1: {
        float d = half_at(p), m = half_at(p + 2);
        const uint8_t *qs = p + 4;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(qs[j] & 0xF);
            q[j + 16] = (int8_t)(qs[j] >> 4);
        }
        a[0] = a[1] = d;
        b[0] = b[1] = m;
        return QK;
    }
    case GGUF_TT_Q5_0: case GGUF_TT_Q5_1: {
        int one = t == GGUF_TT_Q5_1;
        float d = half_at(p), m = one ? half_at(p + 2) : 0.0f;
        uint32_t qh;
        memcpy(&qh, p + (one ? 4 : 2), 4);
        const uint8_t *qs = p + (one ? 8 : 6);
        int off = one ? 0 : 16;
        for (int j = 0; j < 16; j++) {
            int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            q[j] = (int8_t)(((qs[j] & 0xF) | h0) - off);
            q[j + 16] = (int8_t)(((qs[j] >> 4) | h1) - off);
        }
        a[0] = a[1] = d;
        b[0] = b[1] = m;
        return QK;
    }
    case GGUF_TT_Q2_K: {
        const uint8_t *sc = p, *qs = p + 16;
        float d = half_at(p + 80), dmin = half_at(p + 82);
        int is = 0, o = 0;
        for (int n = 0; n < QKK; n += 128, qs += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++, is++) {
                    a[is] = d * (float)(sc[is] & 0xF);
                    b[is] = -(dmin * (float)(sc[is] >> 4));
                    for (int l = 0; l < 16; l++) q[o++] = (int8_t)((qs[l + 16 * half] >> shift) & 3);
                }
            }
        }
        return QKK;
    }
    case GGUF_TT_Q3_K: {
        const uint8_t *hm = p, *qs = p + 32;
        int8_t s[16];
        scales_q3k(p + 96, s);
        float d = half_at(p + 108);
        int is = 0, o = 0;
        uint8_t m = 1;
        for (int n = 0; n < QKK; n += 128, qs += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++, is++) {
                    a[is] = d * (float)(s[is] - 32);
                    b[is] = 0.0f;
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * half;
                        q[o++] = (int8_t)(((qs[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                    }
                }
            }
        }
        return QKK;
    }
    case GGUF_TT_Q4_K: case GGUF_TT_Q5_K: {
        int five = t == GGUF_TT_Q5_K;
        float d = half_at(p), dmin = half_at(p + 2);
        const uint8_t *sc = p + 4, *qh = p + 16, *ql = p + (five ? 48 : 16);
        int o = 0;
        for (int j = 0; j < 8; j += 2, ql += 32) {
            for (int k = 0; k < 2; k++) {
                uint8_t s, m;
                scale_min_k4(j + k, sc, &s, &m);
                a[2 * (j + k)] = a[2 * (j + k) + 1] = d * (float)s;
                b[2 * (j + k)] = b[2 * (j + k) + 1] = -(dmin * (float)m);
                uint8_t u = (uint8_t)(1u << (j + k));
                for (int l = 0; l < 32; l++) {
                    int v = k ? ql[l] >> 4 : ql[l] & 0xF;
                    if (five && (qh[l] & u)) v += 16;
                    q[o++] = (int8_t)v;
                }
            }
        }
        return QKK;
    }
    case GGUF_TT_Q6_K: {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        float d = half_at(p + 208);
        for (int i = 0; i < 16; i++) {
            a[i] = d * (float)sc[i];
            b[i] = 0.0f;
        }
        for (int n = 0; n < QKK; n += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                q[n + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[n + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[n + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[n + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        return QKK;
    }
    case GGUF_TT_IQ4_XS: {
        float d = half_at(p);
        uint16_t sh;
        memcpy(&sh, p + 2, 2);
        const uint8_t *sl = p + 4, *qs = p + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16) {
            int ls = ((sl[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((sh >> 2 * ib) & 3) << 4);
            a[2 * ib] = a[2 * ib + 1] = d * (float)(ls - 32);
            b[2 * ib] = b[2 * ib + 1] = 0.0f;
            for (int j = 0; j < 16; j++) {
                q[32 * ib + j] = IQ4NL_VALUES[qs[j] & 0xF];
                q[32 * ib + j + 16] = IQ4NL_VALUES[qs[j] >> 4];
            }
        }
        return QKK;
    }
    default:
        return 0;
    }
}

/* ---- dequantization, in ggml's order of operations ---------------------- */

void lm_quant_dequant(enum gguf_ttype t, const void *row, float *out, size_t n)
{
    const uint8_t *p = row;
    size_t bs = gguf_ttype_nbytes(t, gguf_ttype_block(t));
    int8_t q[QKK];
    float a[16], b[16];
    for (size_t done = 0; done < n; p += bs) {
        int nw = unpack(t, p, q, a, b);
        if (nw == 0) return;
        float *y = out + done;
        /* ggml computes d*q (times a sub-block scale first where there is
         * one) and adds a min only for the types that have one: adding a
         * zero offset would turn its -0.0 results into +0.0 */
        int offset = t == GGUF_TT_Q4_1 || t == GGUF_TT_Q5_1 || t == GGUF_TT_Q2_K || t == GGUF_TT_Q4_K ||
                     t == GGUF_TT_Q5_K;
        for (int i = 0; i < nw; i++)
            y[i] = offset ? a[i / 16] * (float)q[i] + b[i / 16] : a[i / 16] * (float)q[i];
        done += (size_t)nw;
    }
}

/* ---- dot products with Q8 activations ------------------------------------ */

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))

static inline T_AVX2 float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* sum over pairs of u8 (unsigned weights) times s8 (activations), as 8 int32 */
static inline T_AVX2 __m256i dot_u8s8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The AVX2 dots below take G tokens at once (G <= 4, a constant once
 * inlined): each weight block is unpacked once and dotted with every
 * token's activations while in registers, so batched decode and prompts
 * share one read and one unpacking of the weights. Each (row, token) value is
 * computed by the same operations in the same order whatever G is.
 *
 * Q4_K and Q6_K take activations with one scale per 256 (lm_quantize_q8k,
 * as ggml's Q8_K): a block's sub-block products are multiplied by their
 * integer scales and summed in int32, then converted and scaled once per
 * 256 weights. (With a float scale per 32 activations every 32 weights cost
 * a convert, a permute and an FMA on one dependent chain; this halves the
 * Q4_K instructions and measured 1.3-3.5x per row.) Bounds: maddubs pairs
 * <= 2*15*127 (Q4_K) or 2*32*127 (Q6_K, |w| <= 32); times a scale <= 63 or
 * 128 and summed over a block, well inside int32. */
#define MAXG_Q 4

/* pshufb masks: int16 lane j of a 128-bit half broadcast to all 8 lanes */
static const uint8_t SCALE_SHUF[8][32] __attribute__((aligned(32))) = {
#define SHUF_J(j) { 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, \
                    2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, \
                    2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1 }
    SHUF_J(0), SHUF_J(1), SHUF_J(2), SHUF_J(3), SHUF_J(4), SHUF_J(5), SHUF_J(6), SHUF_J(7),
#undef SHUF_J
};

static inline T_AVX2 float f16c(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* A Q4_K block's 8 scales (6 bits, packed with the mins in 12 bytes),
 * unpacked 4 at a time in integer registers: as 8 int16 broadcast to both
 * halves (for SCALE_SHUF), and the 8 mins each twice as 16 int16 (lane j
 * pairs with the activation sum of 16-weight group j). */
static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
q4k_scales(const uint8_t *q, __m256i *sc, __m256i *mn)
{
    uint32_t u0, u1, u2;
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    uint32_t s_lo = u0 & 0x3f3f3f3fu, m_lo = u1 & 0x3f3f3f3fu;
    uint32_t s_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
    __m128i sm = _mm_set_epi32((int)m_hi, (int)m_lo, (int)s_hi, (int)s_lo);
    *sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    __m128i m8 = _mm_srli_si128(sm, 8);
    *mn = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
}

/* Q4_K: per block, d * xd * sum_sb(sc_sb * sum(q * x)) - dmin * xd *
 * sum_sb(m_sb * xs_sb), xs the int16 sums of the activations by 16
 * (k_act_sums). The one-token kernel (decode) and the G-token one compute
 * the same integers and the same float operations in the same order. */
static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
q4k_block_1(const uint8_t *p, float xdb, const int8_t *x, const int16_t *xs, __m256 *acc, __m256 *macc)
{
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256i sc, mn;
    q4k_scales(p + 4, &sc, &mn);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
        __m256i q0 = _mm256_and_si256(q, low4), q1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        __m256i p0 = _mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)(x + 64 * c)));
        __m256i p1 = _mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(x + 64 * c + 32)));
        __m256i s0 = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)SCALE_SHUF[2 * c]));
        __m256i s1 = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)SCALE_SHUF[2 * c + 1]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, s0));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, s1));
    }
    __m256i pm = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)xs));
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(f16c(p) * xdb), *acc);
    *macc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pm), _mm256_set1_ps(f16c(p + 2) * xdb), *macc);
}

static T_AVX2 float dot_q4k_1(const uint8_t *p, const float *xd, const int8_t *xq, const int16_t *xs, int cols)
{
    __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    for (int b = 0; b < cols / QKK; b++)
        q4k_block_1(p + 144 * (size_t)b, xd[b], xq + (size_t)b * QKK, xs + 16 * b, &acc, &macc);
    return hsum_ps(acc) - hsum_ps(macc);
}

static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
dot_q4k_g(const uint8_t *p, const float *xd, size_t ldd, const int8_t *xq, size_t ldq, int cols,
          int G, const int16_t *xs, float *y, size_t ldy)
{
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc[MAXG_Q], macc[MAXG_Q];
    for (int g = 0; g < G; g++) {
        acc[g] = _mm256_setzero_ps();
        macc[g] = _mm256_setzero_ps();
    }
    for (int b = 0; b < cols / QKK; b++, p += 144) {
        __m256i sc, mn;
        q4k_scales(p + 4, &sc, &mn);
        __m256i sumi[MAXG_Q];
        for (int g = 0; g < G; g++) sumi[g] = _mm256_setzero_si256();
        /* 64 weights and their two scales at a time, in registers for all
         * the tokens */
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
            __m256i q0 = _mm256_and_si256(q, low4), q1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            __m256i s0 = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)SCALE_SHUF[2 * c]));
            __m256i s1 = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)SCALE_SHUF[2 * c + 1]));
            for (int g = 0; g < G; g++) {
                const int8_t *x = xq + g * ldq + (size_t)b * QKK + 64 * c;
                __m256i p0 = _mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)x));
                __m256i p1 = _mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(x + 32)));
                sumi[g] = _mm256_add_epi32(sumi[g], _mm256_add_epi32(_mm256_madd_epi16(p0, s0),
                                                                     _mm256_madd_epi16(p1, s1)));
            }
        }
        float d = f16c(p), dmin = f16c(p + 2);
        for (int g = 0; g < G; g++) {
            float xdb = xd[g * ldd + b];
            __m256i pm = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)(xs + g * (ldq / 16) + 16 * b)));
            acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[g]), _mm256_set1_ps(d * xdb), acc[g]);
            macc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pm), _mm256_set1_ps(dmin * xdb), macc[g]);
        }
    }
    for (int g = 0; g < G; g++) y[g * ldy] = hsum_ps(acc[g]) - hsum_ps(macc[g]);
}

/* Q6_K: w = q - 32 (q 0..63 in 4+2 bits) with an int8 scale per 16. The
 * products are taken with q unsigned (maddubs) and the offset subtracted
 * once per block from the activation sums: 32 * sum_j(sc_j * xs_j).
 * q6k_unpack gives half c (0 or 1) of a block: 4 x 32 weights, 0..63. */
static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
q6k_unpack(const uint8_t *p, int c, __m256i q[4])
{
    const __m256i low4 = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
    const uint8_t *ql = p + 64 * c, *qh = p + 128 + 32 * c;
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, three), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), three), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), three), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), three), 4));
}

/* pshufb masks for Q6_K's 32-weight chunk k of a half: scale 2k of the half
 * to the low 8 int16 lanes, 2k+1 to the high 8 */
static const uint8_t SCALE6_SHUF[4][32] __attribute__((aligned(32))) = {
#define SHUF_K(k) { 4*k, 4*k+1, 4*k, 4*k+1, 4*k, 4*k+1, 4*k, 4*k+1, 4*k, 4*k+1, 4*k, 4*k+1, 4*k, 4*k+1, 4*k, 4*k+1, \
                    4*k+2, 4*k+3, 4*k+2, 4*k+3, 4*k+2, 4*k+3, 4*k+2, 4*k+3, \
                    4*k+2, 4*k+3, 4*k+2, 4*k+3, 4*k+2, 4*k+3, 4*k+2, 4*k+3 }
    SHUF_K(0), SHUF_K(1), SHUF_K(2), SHUF_K(3),
#undef SHUF_K
};

static inline __attribute__((always_inline, target("avx2,fma,f16c"))) __m256i
q6k_half_scales(__m256i sc16, int c)
{
    return c ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
}

static T_AVX2 float dot_q6k_1(const uint8_t *p, const float *xd, const int8_t *xq, const int16_t *xs, int cols)
{
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < cols / QKK; b++, p += 210, xq += QKK, xs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
        __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)xs));
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            __m256i q[4];
            q6k_unpack(p, c, q);
            __m256i S = q6k_half_scales(sc16, c);
            for (int k = 0; k < 4; k++) {
                __m256i p16 = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(xq + 128 * c + 32 * k)));
                __m256i s = _mm256_shuffle_epi8(S, _mm256_load_si256((const __m256i *)SCALE6_SHUF[k]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, s));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(f16c(p + 208) * xd[b]), acc);
    }
    return hsum_ps(acc);
}

static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
dot_q6k_g(const uint8_t *p, const float *xd, size_t ldd, const int8_t *xq, size_t ldq, int cols,
          int G, const int16_t *xs, float *y, size_t ldy)
{
    __m256 acc[MAXG_Q];
    for (int g = 0; g < G; g++) acc[g] = _mm256_setzero_ps();
    for (int b = 0; b < cols / QKK; b++, p += 210) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
        __m256i sumi[MAXG_Q];
        for (int g = 0; g < G; g++) sumi[g] = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            __m256i q[4];
            q6k_unpack(p, c, q);
            __m256i S = q6k_half_scales(sc16, c);
            for (int k = 0; k < 4; k++) {
                __m256i s = _mm256_shuffle_epi8(S, _mm256_load_si256((const __m256i *)SCALE6_SHUF[k]));
                for (int g = 0; g < G; g++) {
                    __m256i x = _mm256_loadu_si256((const __m256i *)(xq + g * ldq + (size_t)b * QKK +
                                                                    128 * c + 32 * k));
                    sumi[g] = _mm256_add_epi32(sumi[g], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], x), s));
                }
            }
        }
        float d = f16c(p + 208);
        for (int g = 0; g < G; g++) {
            __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(xs + g * (ldq / 16) + 16 * b)));
            __m256i si = _mm256_sub_epi32(sumi[g], _mm256_slli_epi32(corr, 5));
            acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_set1_ps(d * xd[g * ldd + b]), acc[g]);
        }
    }
    for (int g = 0; g < G; g++) y[g * ldy] = hsum_ps(acc[g]);
}

/* Q5_0 (22 bytes per 32: fp16 d, 32 high bits, 16 bytes of nibbles; the
 * fallback of Q4_K_M files for rows that are not a multiple of 256, as
 * Qwen2.5-0.5B's 896): w = u - 16 with u = nibble | high << 4 in 0..31, so
 * the dot is d * xd * (sum(u * x) - 16 * sum(x)): maddubs takes u as it is
 * and the offset comes off the activation sums (k_act_sums) in integers,
 * one lane of the block's vector. Activations with a scale per 32
 * (lm_quantize_q8). */
static inline __attribute__((always_inline, target("avx2,fma,f16c"))) __m256i
q5_0_weights(const uint8_t *p)
{
    uint32_t qh;
    memcpy(&qh, p + 2, 4);
    __m128i qs = _mm_loadu_si128((const __m128i *)(p + 6));
    __m256i q = _mm256_and_si256(_mm256_setr_m128i(qs, _mm_srli_epi16(qs, 4)), _mm256_set1_epi8(0x0F));
    /* bit i of qh -> 0x10 in byte i */
    __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                     _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bits), bits), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(q, hb);
}

static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
dot_q5_0_g(const uint8_t *p, const float *xd, size_t ldd, const int8_t *xq, size_t ldq, int cols,
           int G, const int16_t *xs, float *y, size_t ldy)
{
    __m256 acc[MAXG_Q];
    for (int g = 0; g < G; g++) acc[g] = _mm256_setzero_ps();
    for (int b = 0; b < cols / QK; b++, p += 22) {
        __m256i u = q5_0_weights(p);
        float d = f16c(p);
        for (int g = 0; g < G; g++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(xq + g * ldq + QK * b));
            const int16_t *s = xs + g * (ldq / 16) + 2 * b;
            __m256i corr = _mm256_castsi128_si256(_mm_cvtsi32_si128(16 * (s[0] + s[1])));
            __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(dot_u8s8(u, x), corr));
            acc[g] = _mm256_fmadd_ps(v, _mm256_set1_ps(d * xd[g * ldd + b]), acc[g]);
        }
    }
    for (int g = 0; g < G; g++) y[g * ldy] = hsum_ps(acc[g]);
}

/* xs[j] = sum of the 16 activations of group j (int16: |sum| <= 2032),
 * the activation side of Q4_K's mins and the Q6_K and Q5_0 offsets, once per token for
 * all the rows of a call */
static T_AVX2 void k_act_sums(const int8_t *xq, int cols, int16_t *xs)
{
    const __m256i ones = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int j = 0; j < cols / 16; j += 2) {
        /* 32 values: pairs, then quads (4 per 128-bit half), then the two
         * halves' sums in lanes 0 and 4 */
        __m256i v = _mm256_madd_epi16(_mm256_maddubs_epi16(ones, _mm256_loadu_si256((const __m256i *)(xq + 16 * j))),
                                      ones16);
        v = _mm256_hadd_epi32(v, v);
        v = _mm256_hadd_epi32(v, v);
        xs[j] = (int16_t)_mm256_extract_epi32(v, 0);
        xs[j + 1] = (int16_t)_mm256_extract_epi32(v, 4);
    }
}

#define ROWS_G(BODY, G) do {                                                             \
        for (int r = r0; r < r1; r++)                                                     \
            BODY(base + (size_t)r * rb, xd + t * ldd, ldd, xq + (size_t)t * cols, (size_t)cols, \
                 cols, G, xs, y + (size_t)t * ldy + r, ldy);                              \
    } while (0)

/* NAME: rows [r0, r1) of a matrix against n tokens, MAXG_Q at a time; ABLK
 * is the activation block (one xd per ABLK values), SUMS whether the kernel
 * reads k_act_sums. */
#define DEF_ROWS(NAME, BODY, ABLK, SUMS)                                                \
static T_AVX2 void NAME(const uint8_t *base, size_t rb, int r0, int r1, const float *xd,  \
                        const int8_t *xq, int cols, int n, float *y, size_t ldy)          \
{                                                                                       \
    size_t ldd = (size_t)cols / (ABLK);                                                 \
    int16_t xs[MAXG_Q * (MAX_COLS / 16)];                                               \
    for (int t = 0; t < n; t += MAXG_Q) {                                               \
        int G = n - t < MAXG_Q ? n - t : MAXG_Q;                                        \
        for (int g = 0; SUMS && g < G; g++)                                             \
            k_act_sums(xq + (size_t)(t + g) * cols, cols, xs + (size_t)g * (cols / 16)); \
        switch (G) {                                                                    \
        case 4: ROWS_G(BODY, 4); break;                                                 \
        case 3: ROWS_G(BODY, 3); break;                                                 \
        case 2: ROWS_G(BODY, 2); break;                                                 \
        default: ROWS_G(BODY, 1); break;                                                \
        }                                                                               \
    }                                                                                   \
}
#define MAX_COLS 65536
DEF_ROWS(rows_q4k_avx2, dot_q4k_g, QKK, 1)
DEF_ROWS(rows_q6k_avx2, dot_q6k_g, QKK, 1)
DEF_ROWS(rows_q5_0_avx2, dot_q5_0_g, QK, 1)

int lm_quant_act_block(enum gguf_ttype t)
{
    return lm_quant_is_block(t) && gguf_ttype_block(t) == QKK ? QKK : QK;
}

void lm_quant_rows(enum lm_isa isa, const struct lm_wmat *w, int r0, int r1, const float *xd,
                   const int8_t *xq, int n, float *y, size_t ldy)
{
    const uint8_t *base = w->data;
    int cols = w->cols, nb = cols / lm_quant_act_block(w->type);
    if (isa >= LM_ISA_AVX2 && cols <= MAX_COLS && n == 1 &&
        (w->type == GGUF_TT_Q4_K || w->type == GGUF_TT_Q6_K)) {
        /* decode: the one-token kernels, every accumulator a register */
        int16_t xs[MAX_COLS / 16];
        k_act_sums(xq, cols, xs);
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = base + (size_t)r * w->row_bytes;
            y[r] = w->type == GGUF_TT_Q4_K ? dot_q4k_1(row, xd, xq, xs, cols) : dot_q6k_1(row, xd, xq, xs, cols);
        }
        return;
    }
    if (isa >= LM_ISA_AVX2 && cols <= MAX_COLS && w->type == GGUF_TT_Q4_K) {
        rows_q4k_avx2(base, w->row_bytes, r0, r1, xd, xq, cols, n, y, ldy);
        return;
    }
    if (isa >= LM_ISA_AVX2 && cols <= MAX_COLS && w->type == GGUF_TT_Q6_K) {
        rows_q6k_avx2(base, w->row_bytes, r0, r1, xd, xq, cols, n, y, ldy);
        return;
    }
    if (isa >= LM_ISA_AVX2 && cols <= MAX_COLS && w->type == GGUF_TT_Q5_0) {
        rows_q5_0_avx2(base, w->row_bytes, r0, r1, xd, xq, cols, n, y, ldy);
        return;
    }
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < n; t++)
            y[(size_t)t * ldy + r] = lm_quant_dot_q8(LM_ISA_SCALAR, w->type, base + (size_t)r * w->row_bytes,
                                                     xd + (size_t)t * nb, xq + (size_t)t * cols, cols);
}

float lm_quant_dot_q8(enum lm_isa isa, enum gguf_ttype t, const void *row, const float *xd,
                      const int8_t *xq, int cols)
{
    if (isa >= LM_ISA_AVX2 && (t == GGUF_TT_Q4_K || t == GGUF_TT_Q6_K || t == GGUF_TT_Q5_0) &&
        cols <= MAX_COLS) {
        struct lm_wmat w = { .data = row, .type = t, .rows = 1, .cols = cols,
                             .row_bytes = (size_t)gguf_ttype_nbytes(t, (uint64_t)cols) };
        float y;
        lm_quant_rows(isa, &w, 0, 1, xd, xq, 1, &y, 1);
        return y;
    }
    const uint8_t *p = row;
    int ab = lm_quant_act_block(t);
    size_t bs = gguf_ttype_nbytes(t, gguf_ttype_block(t));
    int8_t q[QKK];
    float a[16], b[16], sum = 0.0f;
    for (int done = 0; done < cols; p += bs) {
        int nw = unpack(t, p, q, a, b);
        if (nw == 0) break;
        for (int g = 0; g < nw / 16; g++) {
            const int8_t *x = xq + done + 16 * g, *w = q + 16 * g;
            int32_t isum = 0, xsum = 0;
            for (int i = 0; i < 16; i++) {
                isum += (int32_t)w[i] * x[i];
                xsum += x[i];
            }
            sum += xd[(done + 16 * g) / ab] * (a[g] * (float)isum + b[g] * (float)xsum);
        }
        done += nw;
    }
    return sum;
}
