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
        switch (t) {
        case GGUF_TT_Q4_0: case GGUF_TT_Q5_0: case GGUF_TT_IQ4_NL:
            for (int i = 0; i < nw; i++) y[i] = (float)q[i] * a[0];
            break;
        case GGUF_TT_Q4_1: case GGUF_TT_Q5_1:
            for (int i = 0; i < nw; i++) y[i] = (float)q[i] * a[0] + b[0];
            break;
        case GGUF_TT_Q6_K: {
            /* ggml: d * sc * q, i.e. (d * sc) * q */
            for (int i = 0; i < nw; i++) y[i] = a[i / 16] * (float)q[i];
            break;
        }
        case GGUF_TT_Q3_K: case GGUF_TT_IQ4_XS:
            for (int i = 0; i < nw; i++) y[i] = a[i / 16] * (float)q[i];
            break;
        default:        /* Q2_K, Q4_K, Q5_K: dl * q - ml */
            for (int i = 0; i < nw; i++) y[i] = a[i / 16] * (float)q[i] + b[i / 16];
            break;
        }
        done += (size_t)nw;
    }
}

/* ---- dot products with Q8 activations ------------------------------------ */

float lm_quant_dot_q8(enum lm_isa isa, enum gguf_ttype t, const void *row, const float *xd,
                      const int8_t *xq, int cols)
{
    (void)isa;
    const uint8_t *p = row;
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
            sum += xd[(done + 16 * g) / QK] * (a[g] * (float)isum + b[g] * (float)xsum);
        }
        done += nw;
    }
    return sum;
}
