/*
 * engine_kernels.c - every kernel against a naive double-precision
 * reference, for each weight type and each instruction set this CPU has, at
 * odd sizes (tails shorter than a vector), plus batch invariance (a token's
 * result is the same whether it is dotted alone or with others), the SIMD
 * activation quantizers, the Q8_0 prompt GEMM, one attention head, silu, the
 * fp16 and bf16 conversions, and the worker pool.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "localmodel/kernels.h"
#include "localmodel/pool.h"
#include "tests/engine/etest.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void)   /* uniform in [-1, 1) */
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

/* Encode a row of f32 as type t; naive, independent of kernels.c except for
 * the scalar fp16/bf16 conversions tested separately below. */
static void encode(enum gguf_ttype t, const float *x, int n, uint8_t *out)
{
    switch (t) {
    case GGUF_TT_F32: memcpy(out, x, 4 * (size_t)n); break;
    case GGUF_TT_F16: for (int i = 0; i < n; i++) { uint16_t h = lm_f32_to_f16(x[i]); memcpy(out + 2 * i, &h, 2); } break;
    case GGUF_TT_BF16: for (int i = 0; i < n; i++) { uint16_t h = lm_f32_to_bf16(x[i]); memcpy(out + 2 * i, &h, 2); } break;
    case GGUF_TT_Q8_0:
        for (int b = 0; b < n / 32; b++) {
            struct lm_q8_block blk;
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
            float d = amax / 127.0f;
            blk.d = lm_f32_to_f16(d);
            for (int i = 0; i < 32; i++) blk.qs[i] = (int8_t)(d > 0 ? lrintf(x[b * 32 + i] / d) : 0);
            memcpy(out + 34 * b, &blk, 34);
        }
        break;
    default: break;
    }
}

static double decode_one(enum gguf_ttype t, const uint8_t *row, int i)
{
    uint16_t h;
    switch (t) {
    case GGUF_TT_F32: { float f; memcpy(&f, row + 4 * i, 4); return f; }
    case GGUF_TT_F16: memcpy(&h, row + 2 * i, 2); return lm_f16_to_f32(h);
    case GGUF_TT_BF16: memcpy(&h, row + 2 * i, 2); return lm_bf16_to_f32(h);
    case GGUF_TT_Q8_0: {
        struct lm_q8_block blk;
        memcpy(&blk, row + 34 * (i / 32), 34);
        return (double)lm_f16_to_f32(blk.d) * blk.qs[i % 32];
    }
    default: return 0;
    }
}

static size_t row_bytes(enum gguf_ttype t, int cols)
{
    return t == GGUF_TT_F32 ? 4 * (size_t)cols : t == GGUF_TT_Q8_0 ? 34 * (size_t)cols / 32 : 2 * (size_t)cols;
}

static void test_matmul(enum lm_isa best)
{
    static const enum gguf_ttype types[] = { GGUF_TT_F32, GGUF_TT_F16, GGUF_TT_BF16, GGUF_TT_Q8_0 };
    static const int cols_any[] = { 1, 7, 8, 15, 16, 17, 31, 33, 47, 100, 255, 768 };
    static const int cols_q8[] = { 32, 64, 96, 160, 416, 2048 };
    const int rows = 13, maxn = 9;
    for (size_t ti = 0; ti < 4; ti++) {
        enum gguf_ttype t = types[ti];
        int q8 = t == GGUF_TT_Q8_0;
        const int *cl = q8 ? cols_q8 : cols_any;
        int ncl = q8 ? 6 : 12;
        for (int ci = 0; ci < ncl; ci++) {
            int cols = cl[ci];
            size_t rb = row_bytes(t, cols);
            float *wf = malloc(sizeof(float) * (size_t)rows * cols);
            uint8_t *wb = malloc(rb * rows);
            float *x = malloc(sizeof(float) * (size_t)maxn * cols);
            float *xd = malloc(sizeof(float) * (size_t)maxn * (cols / 32 + 1));
            int8_t *xq = malloc((size_t)maxn * cols);
            float *y = malloc(sizeof(float) * (size_t)maxn * rows);
            float *y1 = malloc(sizeof(float) * (size_t)rows);
            for (int i = 0; i < rows * cols; i++) wf[i] = frand();
            for (int r = 0; r < rows; r++) encode(t, wf + (size_t)r * cols, cols, wb + rb * r);
            for (int i = 0; i < maxn * cols; i++) x[i] = frand() * 3.0f;
            if (q8) lm_quantize_q8(x, maxn, cols, xd, xq);
            struct lm_wmat w = { wb, t, rows, cols, rb };

            for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
                for (int n = 1; n <= maxn; n++) {
                    memset(y, 0, sizeof(float) * (size_t)maxn * rows);
                    /* split the rows in two calls, like two threads would */
                    lm_matmul_rows((enum lm_isa)isa, &w, 0, 5, x, xd, xq, n, y, rows);
                    lm_matmul_rows((enum lm_isa)isa, &w, 5, rows, x, xd, xq, n, y, rows);
                    for (int tk = 0; tk < n; tk++) {
                        for (int r = 0; r < rows; r++) {
                            /* naive: decoded weights . activations (the quantized
                             * activations for Q8_0, which is what is computed) */
                            double ref = 0, mag = 0;
                            for (int i = 0; i < cols; i++) {
                                double wi = decode_one(t, wb + rb * r, i);
                                double xi = q8 ? (double)xd[(size_t)tk * (cols / 32) + i / 32] * xq[(size_t)tk * cols + i]
                                               : x[(size_t)tk * cols + i];
                                ref += wi * xi;
                                mag += fabs(wi * xi);
                            }
                            double got = y[(size_t)tk * rows + r];
                            CHECK(fabs(got - ref) <= 1e-5 * mag + 1e-6,
                                  "%s %s cols %d n %d token %d row %d: got %.9g want %.9g",
                                  gguf_ttype_name(t), lm_isa_name((enum lm_isa)isa), cols, n, tk, r, got, ref);
                        }
                        /* batch invariance: same bits as a single-token call */
                        const float *xt = x + (size_t)tk * cols;
                        const float *xdt = xd + (size_t)tk * (cols / 32);
                        const int8_t *xqt = xq + (size_t)tk * cols;
                        lm_matmul_rows((enum lm_isa)isa, &w, 0, rows, xt, xdt, xqt, 1, y1, rows);
                        CHECK(memcmp(y1, y + (size_t)tk * rows, sizeof(float) * rows) == 0,
                              "%s %s cols %d: token %d of %d differs from a single-token call",
                              gguf_ttype_name(t), lm_isa_name((enum lm_isa)isa), cols, tk, n);
                    }
                }
            }
            /* Q8_0: activation quantization error stays small vs exact f32 */
            if (q8) {
                lm_matmul_rows(best, &w, 0, rows, x, xd, xq, 1, y, rows);
                for (int r = 0; r < rows; r++) {
                    double ref = 0, mag = 0;
                    for (int i = 0; i < cols; i++) {
                        ref += decode_one(t, wb + rb * r, i) * x[i];
                        mag += fabs(decode_one(t, wb + rb * r, i) * x[i]);
                    }
                    CHECK(fabs(y[r] - ref) <= 1e-2 * mag, "q8 activation error row %d: %g vs %g", r, y[r], ref);
                }
            }
            /* dequantization matches the naive decoder */
            float *dq = malloc(sizeof(float) * (size_t)rows * cols);
            for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
                lm_dequant_rows((enum lm_isa)isa, &w, 2, rows - 2, dq);
                int bad = 0;
                for (int r = 2; r < rows; r++)
                    for (int i = 0; i < cols; i++)
                        if (dq[(size_t)(r - 2) * cols + i] != (float)decode_one(t, wb + rb * r, i))
                            bad++;
                CHECK(bad == 0, "dequant %s %s cols %d: %d values differ", gguf_ttype_name(t),
                      lm_isa_name((enum lm_isa)isa), cols, bad);
            }
            free(dq);
            free(wf); free(wb); free(x); free(xd); free(xq); free(y); free(y1);
        }
    }
}

/* The SIMD activation quantizers give exactly lm_quantize_q8's output:
 * random rows, an all-zero block, a block of one large value among tiny
 * ones, values at x * inv = k + 0.5 (round half to even), negatives. */
static void test_quantize(enum lm_isa best)
{
    enum { N = 5, COLS = 256 };
    static float x[N * COLS], d0[N * COLS / 32], d1[N * COLS / 32];
    static int8_t q0[N * COLS], q1[N * COLS];
    for (int i = 0; i < N * COLS; i++)
        x[i] = frand() * 4.0f;
    for (int i = 32; i < 64; i++)
        x[i] = 0.0f;
    for (int i = 64; i < 96; i++)
        x[i] = 1e-6f * (float)(i - 80);
    x[70] = 1e4f;
    for (int i = 96; i < 128; i++)     /* amax 127: x * inv = x, so k + 0.5 */
        x[i] = (float)(i - 112) + 0.5f;
    x[127] = -127.0f;
    lm_quantize_q8(x, N, COLS, d0, q0);
    CHECK(q0[96 + 16] == 0 && q0[96 + 17] == 2 && q0[96 + 15] == 0 && q0[96 + 14] == -2,
          "scalar quantizer rounds half to even: %d %d %d %d", q0[112], q0[113], q0[111], q0[110]);
    for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
        memset(q1, 0x55, sizeof q1);
        lm_quantize_q8_isa((enum lm_isa)isa, x, N, COLS, d1, q1);
        CHECK(memcmp(q0, q1, sizeof q0) == 0 && memcmp(d0, d1, sizeof d0) == 0,
              "lm_quantize_q8_isa %s differs from lm_quantize_q8", lm_isa_name((enum lm_isa)isa));
    }
    /* one scale per 256 (the K-quants' activations): the block's amax is
     * 1e4 in the first row, so most of it quantizes to 0 */
    static float e0[N], e1[N];
    lm_quantize_q8k(x, N, COLS, e0, q0);
    CHECK(e0[0] == 1e4f / 127.0f && q0[70] == 127 && q0[0] == 0, "q8k scale %g, q %d %d", e0[0], q0[70], q0[0]);
    for (int t = 1; t < N; t++) {
        float amax = 0.0f;
        for (int i = 0; i < COLS; i++)
            amax = fmaxf(amax, fabsf(x[t * COLS + i]));
        CHECK(e0[t] == amax / 127.0f, "q8k token %d: scale %g, amax/127 %g", t, e0[t], amax / 127.0f);
    }
    for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
        memset(q1, 0x55, sizeof q1);
        lm_quantize_q8k_isa((enum lm_isa)isa, x, N, COLS, e1, q1);
        CHECK(memcmp(q0, q1, sizeof q0) == 0 && memcmp(e0, e1, sizeof e0) == 0,
              "lm_quantize_q8k_isa %s differs from lm_quantize_q8k", lm_isa_name((enum lm_isa)isa));
    }
}

/* lm_gemm_q8 (prompt product on interleaved activations) against the naive
 * sum of the decoded weights times the quantized activations, for token
 * counts around the groups of 16, rows that are not a multiple of the tile
 * (split in two calls), and a row of more than 512 blocks (corrections not
 * kept on the stack); every ISA gives the same bits. */
static void test_gemm_q8(enum lm_isa best)
{
    static const int colsl[] = { 32, 96, 768, 16416 };
    static const int ns[] = { 1, 5, 16, 17, 40 };
    for (size_t ci = 0; ci < sizeof colsl / sizeof colsl[0]; ci++) {
        int cols = colsl[ci], nb = cols / 32, rows = cols > 4096 ? 3 : 11, maxn = 40;
        int n16 = (maxn + 15) / 16 * 16;
        size_t rb = 34 * (size_t)nb;
        float *wf = malloc(sizeof(float) * (size_t)cols);
        uint8_t *wb = malloc(rb * rows);
        float *x = malloc(sizeof(float) * (size_t)maxn * cols);
        float *xd = malloc(sizeof(float) * (size_t)maxn * nb);
        int8_t *xq = malloc((size_t)maxn * cols);
        float *dt = malloc(sizeof(float) * (size_t)n16 * nb);
        uint8_t *qt = malloc((size_t)n16 * cols);
        float *y = malloc(sizeof(float) * (size_t)maxn * rows), *y0 = malloc(sizeof(float) * (size_t)maxn * rows);
        REQUIRE(wf && wb && x && xd && xq && dt && qt && y && y0, "out of memory");
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++)
                wf[i] = frand();
            encode(GGUF_TT_Q8_0, wf, cols, wb + rb * r);
        }
        for (int i = 0; i < maxn * cols; i++)
            x[i] = frand() * 3.0f;
        struct lm_wmat w = { wb, GGUF_TT_Q8_0, rows, cols, rb };
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            int n = ns[ni];
            lm_quantize_q8(x, n, cols, xd, xq);
            lm_q8_interleave16(xd, xq, n, cols, dt, qt);
            for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
                memset(y, 0, sizeof(float) * (size_t)maxn * rows);
                lm_gemm_q8((enum lm_isa)isa, &w, 0, rows / 2 + 1, dt, qt, n, y, rows);
                lm_gemm_q8((enum lm_isa)isa, &w, rows / 2 + 1, rows, dt, qt, n, y, rows);
                int bad = 0;
                for (int t = 0; t < n; t++) {
                    for (int r = 0; r < rows; r++) {
                        double ref = 0, mag = 0;
                        for (int i = 0; i < cols; i++) {
                            double p = decode_one(GGUF_TT_Q8_0, wb + rb * r, i) *
                                       (double)xd[(size_t)t * nb + i / 32] * xq[(size_t)t * cols + i];
                            ref += p;
                            mag += fabs(p);
                        }
                        /* one float per token summed block after block: the
                         * rounding error grows with the number of blocks */
                        if (!(fabs(y[(size_t)t * rows + r] - ref) <= (1e-5 + 1.2e-7 * nb) * mag + 1e-6) && bad++ < 3)
                            printf("  gemm_q8 %s cols %d n %d token %d row %d: got %.9g want %.9g\n",
                                   lm_isa_name((enum lm_isa)isa), cols, n, t, r, y[(size_t)t * rows + r], ref);
                    }
                }
                CHECK(bad == 0, "lm_gemm_q8 %s cols %d n %d: %d values off", lm_isa_name((enum lm_isa)isa), cols, n, bad);
                if (isa == LM_ISA_SCALAR)
                    memcpy(y0, y, sizeof(float) * (size_t)n * rows);
                else
                    CHECK(memcmp(y0, y, sizeof(float) * (size_t)n * rows) == 0,
                          "lm_gemm_q8 %s cols %d n %d: not the scalar path's bits", lm_isa_name((enum lm_isa)isa), cols, n);
            }
        }
        free(wf); free(wb); free(x); free(xd); free(xq); free(dt); free(qt); free(y); free(y0);
    }
}

/* lm_silu_mul against double precision over [-120, 120] and beyond
 * (exp over- and underflow), lengths with vector tails. */
static void test_silu(enum lm_isa best)
{
    enum { N = 1000 };
    static float g[N], u[N], out[N];
    for (int i = 0; i < N; i++) {
        g[i] = (float)(i - N / 2) * 0.24f;
        u[i] = frand() * 2.0f;
    }
    g[0] = -1000.0f; g[1] = 1000.0f; g[2] = 0.0f; g[3] = -0.0f; g[4] = 88.5f; g[5] = -88.5f;
    for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
        for (int n = 1; n <= N; n += n < 40 ? 1 : 193) {
            memcpy(out, g, sizeof(float) * (size_t)n);
            lm_silu_mul((enum lm_isa)isa, out, u, n);
            int bad = 0;
            for (int i = 0; i < n; i++) {
                double ref = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
                if (!(fabs(out[i] - ref) <= 4e-7 * fabs(ref) + 1e-30))
                    bad++;
            }
            CHECK(bad == 0, "lm_silu_mul %s n %d: %d values off", lm_isa_name((enum lm_isa)isa), n, bad);
        }
    }
}

/* lm_attn_head against a double-precision softmax-attention, F32 and F16
 * caches, head sizes with and without an AVX-512 instance, position counts
 * around the groups of 4 and 16, scores spread wide enough that most
 * weights underflow, the same capped by gemma2's tanh soft-cap, and with an
 * ALiBi slope (mpt). */
static void test_attention(enum lm_isa best)
{
    static const int hds[] = { 7, 16, 32, 48, 64, 80, 96, 128, 256 };
    static const int nps[] = { 1, 3, 4, 5, 16, 17, 33, 70 };
    enum { MAXP = 70, MAXHD = 256, STRIDE = 300 };
    static float k32[MAXP * STRIDE], v32[MAXP * STRIDE], q[MAXHD], out[MAXHD], sc[MAXP];
    static uint16_t k16[MAXP * STRIDE], v16[MAXP * STRIDE];
    static double ref[MAXHD], w[MAXP];
    for (int i = 0; i < MAXP * STRIDE; i++) {
        k16[i] = lm_f32_to_f16(frand());
        v16[i] = lm_f32_to_f16(frand() * 2.0f);
        k32[i] = lm_f16_to_f32(k16[i]);   /* same values in both caches */
        v32[i] = lm_f16_to_f32(v16[i]);
    }
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        int hd = hds[hi];
        for (size_t pi = 0; pi < sizeof nps / sizeof nps[0]; pi++) {
            int np = nps[pi];
            for (int wide = 0; wide < 4; wide++) {
                float cap = wide == 2 ? 1.5f : 0.0f, slope = wide == 3 ? 0.25f : 0.0f;
                for (int i = 0; i < hd; i++)
                    q[i] = frand() * (wide ? 8.0f : 1.0f);
                float scale = 1.0f / sqrtf((float)hd);
                double mx = -1e300, sum = 0;
                for (int p = 0; p < np; p++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++)
                        s += (double)q[i] * k32[(size_t)p * STRIDE + i];
                    w[p] = s * scale;
                    if (cap != 0.0f)
                        w[p] = cap * tanh(w[p] / cap);
                    w[p] -= (double)slope * (np - 1 - p);
                    if (w[p] > mx) mx = w[p];
                }
                for (int p = 0; p < np; p++)
                    sum += (w[p] = exp(w[p] - mx));
                double mag = 0;
                for (int i = 0; i < hd; i++) {
                    ref[i] = 0;
                    for (int p = 0; p < np; p++)
                        ref[i] += w[p] / sum * v32[(size_t)p * STRIDE + i];
                    if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
                }
                for (int isa = LM_ISA_SCALAR; isa <= (int)best; isa++) {
                    for (int f16 = 0; f16 < 2; f16++) {
                        lm_attn_head((enum lm_isa)isa, q, hd, f16 ? (const void *)k16 : k32,
                                     f16 ? (const void *)v16 : v32, f16, STRIDE, np, scale, cap, slope, sc, out);
                        double worst = 0;
                        for (int i = 0; i < hd; i++)
                            worst = fmax(worst, fabs(out[i] - ref[i]));
                        CHECK(worst <= 2e-5 * (mag + 1.0), "attention %s %s hd %d npos %d%s: max error %g",
                              lm_isa_name((enum lm_isa)isa), f16 ? "f16" : "f32", hd, np,
                              wide == 3 ? " (ALiBi)" : wide == 2 ? " (soft-capped)" : wide ? " (wide scores)" : "", worst);
                    }
                }
            }
        }
    }
}

static void test_conversions(void)
{
    CHECK(lm_f32_to_f16(1.0f) == 0x3c00, "1.0");
    CHECK(lm_f32_to_f16(-2.0f) == 0xc000, "-2.0");
    CHECK(lm_f32_to_f16(65504.0f) == 0x7bff, "max half");
    CHECK(lm_f32_to_f16(65520.0f) == 0x7c00, "overflow rounds to inf");
    CHECK(lm_f32_to_f16(5.9604645e-8f) == 0x0001, "smallest subnormal");
    CHECK(lm_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "tie rounds to even");
    CHECK(lm_f16_to_f32(0x0001) == 5.9604645e-8f, "subnormal decode");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN */
        if (lm_f32_to_f16(lm_f16_to_f32((uint16_t)h)) != h)
            bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
    CHECK(lm_f32_to_bf16(1.0f) == 0x3f80 && lm_bf16_to_f32(0x3f80) == 1.0f, "bf16 1.0");
    CHECK(lm_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 tie to even");
    CHECK(lm_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 tie to even (odd)");
}

struct pool_arg {
    atomic_int hits[1000];
    atomic_int by_thread[8];
};

static void pool_fn(void *arg, int chunk, int ith)
{
    struct pool_arg *a = arg;
    atomic_fetch_add(&a->hits[chunk], 1);
    atomic_fetch_add(&a->by_thread[ith], 1);
}

static void test_pool(void)
{
    char err[128];
    static struct pool_arg a;
    for (int n = 1; n <= 4; n++) {
        struct lm_pool *p = lm_pool_new(n, err, sizeof err);
        REQUIRE(p, "%s", err);
        CHECK(lm_pool_size(p) == n, "size");
        for (int chunks = 0; chunks <= 1000; chunks += chunks < 10 ? 1 : 97) {
            memset(&a, 0, sizeof a);
            for (int rep = 0; rep < 20; rep++)
                lm_pool_run(p, chunks, pool_fn, &a);
            int bad = 0, total = 0;
            for (int c = 0; c < 1000; c++)
                if (atomic_load(&a.hits[c]) != (c < chunks ? 20 : 0))
                    bad++;
            for (int t = 0; t < 8; t++) {
                total += atomic_load(&a.by_thread[t]);
                if (t >= n)
                    CHECK(atomic_load(&a.by_thread[t]) == 0, "thread id %d >= %d", t, n);
            }
            CHECK(bad == 0 && total == 20 * chunks, "pool %d, %d chunks: %d chunks ran the wrong number of times",
                  n, chunks, bad);
        }
        lm_pool_free(p);
    }
    CHECK(lm_pool_new(0, err, sizeof err) == NULL && strstr(err, "out of range"), "0 threads: %s", err);
}

/* Chunks run by workers take a while (the caller then sleeps until the last
 * one is done), and ops are spaced out (the workers then sleep between
 * them): every chunk still runs exactly once, and every op returns only
 * after all its chunks. */
static void slow_fn(void *arg, int chunk, int ith)
{
    struct pool_arg *a = arg;
    if (ith != 0) {
        struct timespec ts = { 0, 300 * 1000 };
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&a->hits[chunk], 1);
    atomic_fetch_add(&a->by_thread[ith], 1);
}

static void test_pool_sleep(void)
{
    char err[128];
    static struct pool_arg a;
    for (int n = 2; n <= 3; n++) {
        struct lm_pool *p = lm_pool_new(n, err, sizeof err);
        REQUIRE(p, "%s", err);
        int bad = 0;
        for (int rep = 0; rep < 60; rep++) {
            int chunks = 2 + rep % 7;
            memset(&a, 0, sizeof a);
            lm_pool_run(p, chunks, slow_fn, &a);
            for (int c = 0; c < 1000; c++)
                if (atomic_load(&a.hits[c]) != (c < chunks ? 1 : 0))
                    bad++;
            if (rep % 10 == 0) {
                struct timespec ts = { 0, 2 * 1000 * 1000 };
                nanosleep(&ts, NULL);
            }
        }
        CHECK(bad == 0, "pool %d with slow workers: %d chunk counts wrong", n, bad);
        lm_pool_free(p);
    }
}

int main(void)
{
    enum lm_isa best = lm_isa_detect();
    printf("CPU: %s\n", lm_isa_name(best));
    test_conversions();
    test_quantize(best);
    test_attention(best);
    test_silu(best);
    test_gemm_q8(best);
    test_matmul(best);
    test_pool();
    test_pool_sleep();
    return etest_done("engine_kernels");
}
