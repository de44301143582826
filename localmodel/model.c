/*
 * model.c - the forward pass of every architecture model_load.c reads.
 *
 * It reads top to bottom like llama2.c's run.c, but over a batch of tokens
 * (each with its own position and KV cache) so that one read of the weights
 * serves a whole prompt chunk or one decode step of several sequences. The
 * architectures differ only in the steps in brackets:
 *
 *   x = embedding rows [* sqrt(dim)]
 *   per layer:  xb = rmsnorm(x)         q,k,v = xb Wq, xb Wk, xb Wv [+ biases]
 *               [per-head rmsnorm(q), rmsnorm(k)]
 *               rope(q, k) (adjacent or [NEOX] pairs; the layer's base, factors, scaling)
 *               cache k, v at each token's position
 *               att = softmax([softcap](scale q k^T)) v   (grouped-query heads,
 *                     [over the layer's sliding window])
 *               x += [rmsnorm](att Wo)
 *               xb = rmsnorm(x)         x += [rmsnorm]((act(xb Wg) * (xb Wu)) Wd)
 *                                       act = silu, or [gelu]
 *   x = rmsnorm(x);  logits = [softcap](x Wout [+ bias])
 *
 * Matrix products and attention run on the worker pool (rows and heads split
 * across threads); the element-wise steps are cheap and run on the caller.
 */
#include "localmodel/model.h"
#include "localmodel/quants.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GEMM_MIN_TOKENS 8    /* prefill chunks at least this long use sgemm */
#define GEMM_TILE_ROWS 256
#ifndef INT8_GEMM_ISA
#define INT8_GEMM_ISA LM_ISA_AVX2
#endif

/* ---- KV cache ----------------------------------------------------------- */

uint64_t lm_kv_bytes(const struct lm_model *m, int n_ctx, enum lm_kv_type type)
{
    return 2ull * (uint64_t)m->hp.n_layers * (uint64_t)n_ctx *
           (uint64_t)m->hp.n_kv_heads * (uint64_t)m->hp.head_dim * (type == LM_KV_F16 ? 2u : 4u);
}

uint64_t lm_mem_total(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

static double gib(uint64_t b)
{
    return (double)b / (1024.0 * 1024.0 * 1024.0);
}

int lm_model_fits(const struct lm_model *m, uint64_t weights, int n_ctx, int n_seq,
                  enum lm_kv_type type, uint64_t mem, char *err, size_t errlen)
{
    uint64_t kv = lm_kv_bytes(m, n_ctx, type) * (uint64_t)n_seq;
    if (mem == 0 || weights + kv <= mem)
        return 0;
    snprintf(err, errlen, "needs %.2f GiB of memory (weights %.2f GiB + KV cache %.2f GiB: %d sequences "
             "x %d positions in %s) but this machine has %.2f GiB; lower context_length or max_batch%s",
             gib(weights + kv), gib(weights), gib(kv), n_seq, n_ctx, type == LM_KV_F16 ? "F16" : "F32",
             gib(mem), type == LM_KV_F16 ? "" : ", or use kv_cache \"f16\"");
    return -1;
}

struct lm_kv *lm_kv_new(const struct lm_model *m, int n_ctx, enum lm_kv_type type,
                        char *err, size_t errlen)
{
    if (n_ctx < 1 || n_ctx > (1 << 24)) {
        snprintf(err, errlen, "KV cache: context length %d out of range", n_ctx);
        return NULL;
    }
    struct lm_kv *kv = calloc(1, sizeof *kv);
    if (!kv) {
        snprintf(err, errlen, "KV cache: out of memory");
        return NULL;
    }
    kv->n_ctx = n_ctx;
    kv->n_layers = m->hp.n_layers;
    kv->kv_dim = m->hp.n_kv_heads * m->hp.head_dim;
    kv->type = type;
    size_t es = type == LM_KV_F16 ? 2 : 4;
    kv->bytes = (size_t)kv->n_layers * (size_t)n_ctx * (size_t)kv->kv_dim * es;
    /* anonymous mappings: pages cost memory only once written */
    kv->k = mmap(NULL, kv->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    kv->v = mmap(NULL, kv->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (kv->k == MAP_FAILED || kv->v == MAP_FAILED) {
        snprintf(err, errlen, "KV cache: cannot map 2 x %zu bytes", kv->bytes);
        if (kv->k == MAP_FAILED) kv->k = NULL;
        if (kv->v == MAP_FAILED) kv->v = NULL;
        lm_kv_free(kv);
        return NULL;
    }
    return kv;
}

void lm_kv_free(struct lm_kv *kv)
{
    if (!kv)
        return;
    if (kv->k) munmap(kv->k, kv->bytes);
    if (kv->v) munmap(kv->v, kv->bytes);
    free(kv);
}

/* ---- context ------------------------------------------------------------ */

struct lm_ctx {
    const struct lm_model *m;
    struct lm_pool *pool;
    enum lm_isa isa;
    int max_tokens, n_ctx, nth, max_cols;
    float *x, *xb, *xb2;         /* [max_tokens][dim] */
    float *q, *k, *v, *att;      /* [max_tokens][q_dim or kv_dim] */
    float *hb, *hb2;             /* [max_tokens][ffn] */
    float *xn;                   /* [max_tokens][dim] the attention's input when it has its own norm */
    float *xd;                   /* Q8 scales [max_tokens][max_cols/32] */
    int8_t *xq;                  /* Q8 values [max_tokens][max_cols] */
    float *xdk;                  /* the same with a scale per 256 (lm_quantize_q8k) */
    int8_t *xqk;
    float *dt;                   /* xd/xq in groups of 16 tokens (lm_q8_interleave16) */
    uint8_t *qt;
    float *scores;               /* [nth][n_ctx] */
    float *alibi;                /* [n_heads] ALiBi slopes, or NULL */
    float *tiles;                /* [nth][GEMM_TILE_ROWS * max_cols] */
    struct lm_rope rope[2];      /* full-attention layers, sliding-window layers */
    int n_rope;                  /* 2 if the sliding layers rotate differently */
    float *rope_theta[2];        /* [rope_dim/2]: base^(-2i/rope_dim) / factor_i */
    float *rope_cs[2];           /* [max_tokens][rope_dim]: cos, sin pairs */
    atomic_int *lane_next;       /* [nth] matmul piece cursors, see mm_chunk */
    int *lane_end;               /* [nth] */
};

void lm_ctx_free(struct lm_ctx *c)
{
    if (!c)
        return;
    free(c->x); free(c->xb); free(c->xb2);
    free(c->q); free(c->k); free(c->v); free(c->att);
    free(c->hb); free(c->hb2); free(c->xd); free(c->xq); free(c->xdk); free(c->xqk); free(c->xn); free(c->alibi); free(c->dt); free(c->qt);
    free(c->scores); free(c->tiles);
    for (int i = 0; i < 2; i++) {
        free(c->rope_theta[i]);
        free(c->rope_cs[i]);
    }
    free(c->lane_next); free(c->lane_end);
    free(c);
}

int lm_ctx_max_tokens(const struct lm_ctx *c)
{
    return c->max_tokens;
}

static int max3(int a, int b, int c)
{
    int m = a > b ? a : b;
    return m > c ? m : c;
}

struct lm_ctx *lm_ctx_new(const struct lm_model *m, struct lm_pool *pool, int max_tokens,
                          int n_ctx, enum lm_isa isa, char *err, size_t errlen)
{
    const struct lm_hparams *hp = &m->hp;
    if (max_tokens < 1 || max_tokens > 4096 || n_ctx < 1) {
        snprintf(err, errlen, "forward context: bad sizes (max_tokens %d, n_ctx %d)", max_tokens, n_ctx);
        return NULL;
    }
    struct lm_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "forward context: out of memory");
        return NULL;
    }
    c->m = m;
    c->pool = pool;
    c->isa = isa;
    c->max_tokens = max_tokens;
    c->n_ctx = n_ctx;
    c->nth = lm_pool_size(pool);
    c->max_cols = max3(hp->dim, hp->ffn_dim, hp->q_dim);
    size_t T = (size_t)max_tokens, dim = (size_t)hp->dim, qd = (size_t)hp->q_dim;
    size_t kv_dim = (size_t)hp->n_kv_heads * hp->head_dim, ffn = (size_t)hp->ffn_dim;
    size_t mc = (size_t)c->max_cols;
    c->x = malloc(T * dim * 4);
    c->xb = malloc(T * dim * 4);
    c->xb2 = malloc(T * dim * 4);
    c->q = malloc(T * qd * 4);
    c->k = malloc(T * kv_dim * 4);
    c->v = malloc(T * kv_dim * 4);
    c->att = malloc(T * qd * 4);
    c->hb = malloc(T * ffn * 4);
    c->hb2 = malloc(T * ffn * 4);
    c->xd = malloc(T * (mc / LM_QK8 + 1) * 4);
    c->xq = malloc(T * mc);
    c->xn = malloc(T * dim * 4);
    c->xdk = malloc(T * (mc / LM_QKK + 1) * 4);
    c->xqk = malloc(T * mc);
    size_t T16 = (T + 15) / 16 * 16;
    c->dt = malloc(T16 * (mc / LM_QK8 + 1) * 4);
    c->qt = malloc(T16 * mc);
    c->scores = malloc((size_t)c->nth * (size_t)n_ctx * 4);
    c->tiles = malloc((size_t)c->nth * GEMM_TILE_ROWS * mc * 4);
    c->lane_next = malloc(sizeof(atomic_int) * (size_t)c->nth);
    c->lane_end = malloc(sizeof(int) * (size_t)c->nth);
    int any_swa = 0;
    for (int l = 0; l < hp->n_layers; l++)
        any_swa |= m->layers[l].swa;
    lm_model_rope(m, 0, n_ctx, &c->rope[0]);
    lm_model_rope(m, 1, n_ctx, &c->rope[1]);
    c->n_rope = any_swa && memcmp(&c->rope[0], &c->rope[1], sizeof c->rope[0]) != 0 ? 2 : 1;
    int rope_ok = 1;
    for (int i = 0; i < c->n_rope; i++) {
        c->rope_theta[i] = malloc((size_t)hp->rope_dim / 2 * 4);
        c->rope_cs[i] = malloc(T * (size_t)hp->rope_dim * 4);
        rope_ok &= c->rope_theta[i] && c->rope_cs[i];
    }
    if (hp->alibi_bias > 0.0f) {
        /* ggml's slopes: m0^(h+1) for the first 2^floor(log2 heads) heads,
         * then odd powers of m1 */
        c->alibi = malloc(sizeof(float) * (size_t)hp->n_heads);
        if (c->alibi) {
            int nl2 = 1;
            while (nl2 * 2 <= hp->n_heads)
                nl2 *= 2;
            float m0 = powf(2.0f, -hp->alibi_bias / (float)nl2);
            float m1 = powf(2.0f, -(hp->alibi_bias / 2.0f) / (float)nl2);
            for (int h = 0; h < hp->n_heads; h++)
                c->alibi[h] = h < nl2 ? powf(m0, (float)(h + 1)) : powf(m1, (float)(2 * (h - nl2) + 1));
        }
    }
    if (!c->lane_next || !c->lane_end || !rope_ok || (hp->alibi_bias > 0.0f && !c->alibi) ||
        !c->x || !c->xb || !c->xb2 || !c->q || !c->k || !c->v || !c->att || !c->hb ||
        !c->hb2 || !c->xd || !c->xq || !c->xdk || !c->xqk || !c->xn || !c->dt || !c->qt || !c->scores || !c->tiles) {
        snprintf(err, errlen, "forward context: out of memory");
        lm_ctx_free(c);
        return NULL;
    }
    /* theta_i = base^(-2i/n) as ggml builds it (a running product of
     * base^(-2/n)), divided by the file's frequency factor */
    for (int s = 0; s < c->n_rope; s++) {
        const struct lm_rope *r = &c->rope[s];
        float ts = powf(r->base, -2.0f / (float)hp->rope_dim), th = 1.0f;
        for (int i = 0; i < hp->rope_dim / 2; i++) {
            c->rope_theta[s][i] = th / (r->factors ? r->factors[i] : 1.0f);
            th *= ts;
        }
    }
    return c;
}

/* ---- parallel matrix products ------------------------------------------ */

/* Up to three matrices with the same input: y_j[t][r] = x[t] . W_j[r]; or
 * (glu) the gate and up projections, each piece doing the same rows of both
 * and then silu(gate) * up, so that the activation runs on all threads
 * with no pass of its own.
 * The rows of all of them are cut into pieces of about CHUNK_BYTES of
 * weights (GEMM_TILE_ROWS rows for sgemm), and the pieces into one
 * contiguous lane per thread. A thread takes the pieces of its own lane in
 * order, so that it reads its part of the weights as one long stream (the
 * pool's first-come order interleaved 64 KiB pieces between the threads,
 * and every piece restarted the hardware prefetchers: 2-thread decode read
 * ~25 GB/s where one long stream per core reads ~40); a thread whose lane is
 * done takes pieces from the next lanes, so a thread held up by another
 * process is still covered. */
#define CHUNK_BYTES (256 * 1024)   /* 64 KiB: F32 decode 10% slower (shorter streams) */

struct mm_op {
    struct lm_ctx *c;
    int nm;
    const struct lm_wmat *w[3];
    float *y[3];
    int chunk_rows[3], first_chunk[4];
    int lanes;
    const float *x;
    int n;
    int gemm;                    /* dequantized tiles + sgemm */
    int q8gemm;                  /* Q8_0 matrices: lm_gemm_q8 */
    int glu;                     /* w[0] gate, w[1] up: pieces cover both, y[0] = act(g) * u */
    int gelu;                    /* act = gelu (else silu) */
    const float *b[3];           /* biases of w[j] or NULL */
};

static void gemm_rows(struct lm_ctx *c, int ith, const struct lm_wmat *w, int r0, int r1,
                      const float *x, int n, float *y)
{
    float *tile = c->tiles + (size_t)ith * GEMM_TILE_ROWS * c->max_cols;
    for (int r = r0; r < r1; r += GEMM_TILE_ROWS) {
        int nr = r1 - r < GEMM_TILE_ROWS ? r1 - r : GEMM_TILE_ROWS;
        const float *wt;
        if (w->type == GGUF_TT_F32) {
            wt = (const float *)((const uint8_t *)w->data + (size_t)r * w->row_bytes);
        } else {
            lm_dequant_rows(c->isa, w, r, nr, tile);
            wt = tile;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nr, w->cols, 1.0f,
                    x, w->cols, wt, w->cols, 0.0f, y + r, w->rows);
    }
}

/* The pool calls this once per piece; each call claims one unclaimed piece
 * (its own lane first), which always exists: calls and pieces are equally
 * many, and a lane seen empty stays empty. */
static void mm_rows(struct mm_op *op, int ith, int j, int r0, int r1)
{
    struct lm_ctx *c = op->c;
    const struct lm_wmat *w = op->w[j];
    if (op->gemm)
        gemm_rows(c, ith, w, r0, r1, op->x, op->n, op->y[j]);
    else if (op->q8gemm && w->type == GGUF_TT_Q8_0)
        lm_gemm_q8(c->isa, w, r0, r1, c->dt, c->qt, op->n, op->y[j], (size_t)w->rows);
    else if (lm_quant_act_block(w->type) == LM_QKK)
        lm_matmul_rows(c->isa, w, r0, r1, op->x, c->xdk, c->xqk, op->n, op->y[j], (size_t)w->rows);
    else
        lm_matmul_rows(c->isa, w, r0, r1, op->x, c->xd, c->xq, op->n, op->y[j], (size_t)w->rows);
}

static void add_bias(float *y, const float *b, int n, int ldy, int r0, int r1)
{
    if (!b)
        return;
    for (int t = 0; t < n; t++)
        for (int r = r0; r < r1; r++)
            y[(size_t)t * ldy + r] += b[r];
}

/* g = gelu(g) * u with the tanh form of GELU, as ggml_gelu (which rounds
 * its input to F16 for a table; here it is computed in F32). */
static float gelu(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x)));
}

static void gelu_rows(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = gelu(x[i]);
}

static void gelu_mul(float *g, const float *u, int n)
{
    for (int i = 0; i < n; i++) {
        g[i] = gelu(g[i]) * u[i];
    }
}

static void mm_chunk(void *arg, int call, int ith)
{
    struct mm_op *op = arg;
    struct lm_ctx *c = op->c;
    int chunk = -1;
    for (int k = 0; k < op->lanes && chunk < 0; k++) {
        int lane = (ith + k) % op->lanes;
        if (atomic_load_explicit(&c->lane_next[lane], memory_order_relaxed) >= c->lane_end[lane])
            continue;
        int p = atomic_fetch_add(&c->lane_next[lane], 1);
        if (p < c->lane_end[lane])
            chunk = p;
    }
    if (chunk < 0)
        return;
    int j = 0;
    while (chunk >= op->first_chunk[j + 1])
        j++;
    const struct lm_wmat *w = op->w[j];
    int r0 = (chunk - op->first_chunk[j]) * op->chunk_rows[j];
    int r1 = r0 + op->chunk_rows[j] < w->rows ? r0 + op->chunk_rows[j] : w->rows;
    mm_rows(op, ith, j, r0, r1);
    add_bias(op->y[j], op->b[j], op->n, w->rows, r0, r1);
    if (op->glu) {
        /* the same rows of the up projection, then act(gate) * up */
        mm_rows(op, ith, 1, r0, r1);
        add_bias(op->y[1], op->b[1], op->n, w->rows, r0, r1);
        for (int t = 0; t < op->n; t++) {
            float *g = op->y[0] + (size_t)t * w->rows + r0;
            const float *u = op->y[1] + (size_t)t * w->rows + r0;
            if (op->gelu)
                gelu_mul(g, u, r1 - r0);
            else
                lm_silu_mul(c->isa, g, u, r1 - r0);
        }
    }
}

/* Q8_0 weights with SIMD: int8 products (activations quantized once per
 * op) beat dequantizing weight tiles to F32 for sgemm. 128-token prompt in
 * 64-token chunks, 1 thread, 2-core EPYC: 330 tok/s with sgemm; 557 with
 * the lm_matmul_rows tiles; ~1000 with lm_gemm_q8 (VNNI, 16 tokens or
 * more); without VNNI, 350 with the AVX2 tiles against 310 with sgemm.
 * Q4_K and Q6_K (the Q4_K_M mix): the AVX2 dots of quants.c, 4 tokens per
 * weight unpacking, beat unpacking to F32 for sgemm. */
static int int8_gemm(const struct lm_ctx *c, const struct lm_wmat *w)
{
    if (w->type == GGUF_TT_Q4_K || w->type == GGUF_TT_Q6_K || w->type == GGUF_TT_Q5_0)   /* quants.c's AVX2 dots */
        return c->isa >= LM_ISA_AVX2;
    return w->type == GGUF_TT_Q8_0 && c->isa >= INT8_GEMM_ISA;
}

/* One product of up to three matrices over the same input. */
struct mm_out {
    const struct lm_wmat *w;
    const float *b;              /* bias or NULL */
    float *y;
};

static void matmul(struct lm_ctx *c, int prefill, const float *x, int n, int nm,
                   const struct mm_out *o, int glu, int gelu)
{
    struct mm_op op = { .c = c, .nm = nm, .x = x, .n = n, .glu = glu, .gelu = gelu,
                        .gemm = prefill && n >= GEMM_MIN_TOKENS && !int8_gemm(c, o[0].w),
                        .q8gemm = prefill && n >= 16 && c->isa == LM_ISA_AVX512VNNI };
    for (int j = 0; j < nm; j++) {
        op.w[j] = o[j].w;
        op.b[j] = o[j].b;
        op.y[j] = o[j].y;
    }
    const struct lm_wmat *w0 = o[0].w;
    op.first_chunk[0] = 0;
    for (int j = 0; j < nm; j++) {
        int rows;
        if (op.gemm) {
            rows = GEMM_TILE_ROWS;
        } else {
            rows = (int)(CHUNK_BYTES / op.w[j]->row_bytes) & ~7;
            if (rows < 8)
                rows = 8;
            /* at least 4 chunks per thread so that the threads stay balanced */
            int most = (op.w[j]->rows / (4 * c->nth)) & ~7;
            if (most >= 8 && rows > most)
                rows = most;
        }
        op.chunk_rows[j] = rows;
        op.first_chunk[j + 1] = op.first_chunk[j] + (op.w[j]->rows + rows - 1) / rows;
    }
    if (!op.gemm) {
        /* the quantized input each matrix's dots take (both when a file
         * mixes 32- and 256-block types over one input) */
        int q8 = 0, q8k = 0;
        for (int j = 0; j < nm; j++) {
            if (lm_quant_is_block(op.w[j]->type) && lm_quant_act_block(op.w[j]->type) == LM_QKK)
                q8k = 1;
            else if (op.w[j]->type == GGUF_TT_Q8_0 || lm_quant_is_block(op.w[j]->type))
                q8 = 1;
        }
        if (q8)
            lm_quantize_q8_isa(c->isa, x, n, w0->cols, c->xd, c->xq);
        if (q8k)
            lm_quantize_q8k_isa(c->isa, x, n, w0->cols, c->xdk, c->xqk);
        if (q8 && op.q8gemm)
            lm_q8_interleave16(c->xd, c->xq, n, w0->cols, c->dt, c->qt);
    }
    int pieces = op.first_chunk[glu ? 1 : nm];
    op.lanes = c->nth < pieces ? c->nth : pieces;
    for (int l = 0; l < op.lanes; l++) {
        atomic_store(&c->lane_next[l], (int)((int64_t)pieces * l / op.lanes));
        c->lane_end[l] = (int)((int64_t)pieces * (l + 1) / op.lanes);
    }
    lm_pool_run(c->pool, pieces, mm_chunk, &op);
}

/* ---- attention ---------------------------------------------------------- */

struct att_op {
    struct lm_ctx *c;
    const struct lm_batch *b;
    int layer;
};

static void att_chunk(void *arg, int it, int ith)
{
    struct att_op *op = arg;
    struct lm_ctx *c = op->c;
    const struct lm_hparams *hp = &c->m->hp;
    int hd = hp->head_dim, nh = hp->n_heads, group = hp->n_heads / hp->n_kv_heads;
    int t = it / nh, h = it % nh, kh = h / group;
    const struct lm_kv *kv = op->b->kv[t];
    int pos = op->b->pos[t];
    /* a sliding layer sees the positions p with pos - p < n_swa */
    int first = c->m->layers[op->layer].swa && pos >= hp->n_swa ? pos - hp->n_swa + 1 : 0;
    size_t lbase = (((size_t)op->layer * hp->n_kv_heads + kh) * kv->n_ctx + (size_t)first) * hd;
    size_t es = kv->type == LM_KV_F16 ? 2 : 4;
    lm_attn_head(c->isa, c->q + (size_t)t * hp->q_dim + (size_t)h * hd, hd,
                 (const char *)kv->k + lbase * es, (const char *)kv->v + lbase * es,
                 kv->type == LM_KV_F16, (size_t)hd, pos + 1 - first, hp->attn_scale, hp->attn_softcap,
                 c->alibi ? c->alibi[h] : 0.0f, c->scores + (size_t)ith * c->n_ctx, c->att + (size_t)t * hp->q_dim + (size_t)h * hd);
}

/* ---- element-wise steps ------------------------------------------------- */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (ss * x[i]);
}

/* rmsnorm of rows vectors of n (o and x may be the same); none if w is NULL */
static void rmsnorm_rows(float *o, const float *x, int rows, int n, const float *w, float eps)
{
    for (int r = 0; w && r < rows; r++)
        rmsnorm(o + (size_t)r * n, x + (size_t)r * n, w, n, eps);
}

/* LayerNorm as ggml_norm then weight and bias: mean and variance summed in
 * double, y = (x - mean) / sqrt(var + eps) * w + b */
static void layernorm(float *o, const float *x, const float *w, const float *b, int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)x[i];
    float mean = (float)(sum / n);
    double sum2 = 0.0;
    for (int i = 0; i < n; i++) {
        float v = x[i] - mean;
        o[i] = v;
        sum2 += (double)(v * v);
    }
    float scale = 1.0f / sqrtf((float)(sum2 / n) + eps);
    for (int i = 0; i < n; i++) {
        o[i] = o[i] * scale * w[i];
        if (b)
            o[i] += b[i];
    }
}

/* The model's norm (RMSNorm, or LayerNorm with bias b) over rows vectors */
static void norm_rows(const struct lm_hparams *hp, float *o, const float *x, int rows, int n,
                      const float *w, const float *b)
{
    if (!hp->layer_norm) {
        rmsnorm_rows(o, x, rows, n, w, hp->norm_eps);
        return;
    }
    for (int r = 0; w && r < rows; r++)
        layernorm(o + (size_t)r * n, x + (size_t)r * n, w, b, n, hp->norm_eps);
}

/* Rotate the first rope_dim dims of each head: adjacent pairs (x[2i],
 * x[2i+1]) (llama.cpp "norm" mode, llama2.c), or with neox the pairs
 * (x[i], x[i + rope_dim/2]); pair i by cs[2i], cs[2i+1]. */
static void rope(float *x, int n_heads, int hd, int rope_dim, int neox, const float *cs)
{
    int half = rope_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1];
            int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = a * s + b * c;
        }
    }
}

/* cos and sin of pair i at pos as ggml's rope_yarn: the interpolated angle
 * freq_scale * theta, blended toward the extrapolated one below the YaRN
 * ramp, times mscale. */
static void rope_table(const struct lm_rope *r, const float *theta, int rope_dim, int pos, float *cs)
{
    for (int i = 0; i < rope_dim / 2; i++) {
        float ex = (float)pos * theta[i];
        float ang = r->freq_scale * ex, ms = r->mscale;
        if (r->ext_factor != 0.0f) {
            float y = ((float)i - r->corr[0]) / fmaxf(0.001f, r->corr[1] - r->corr[0]);
            float mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * r->ext_factor;
            ang = ang * (1.0f - mix) + ex * mix;
            ms *= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
        }
        cs[2 * i] = cosf(ang) * ms;
        cs[2 * i + 1] = sinf(ang) * ms;
    }
}

static void clamp(float *x, size_t n, float c)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] < -c ? -c : x[i] > c ? c : x[i];
}

static void residual(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* ---- forward ------------------------------------------------------------ */

int lm_forward(struct lm_ctx *c, const struct lm_batch *b, char *err, size_t errlen)
{
    const struct lm_model *m = c->m;
    const struct lm_hparams *hp = &m->hp;
    int n = b->n, dim = hp->dim, hd = hp->head_dim, qd = hp->q_dim;
    int kv_dim = hp->n_kv_heads * hd;

    if (n < 1 || n > c->max_tokens) {
        snprintf(err, errlen, "forward: batch of %d tokens (max %d)", n, c->max_tokens);
        return -1;
    }
    for (int t = 0; t < n; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= hp->n_vocab) {
            snprintf(err, errlen, "forward: token id %d out of range 0..%d", b->tokens[t], hp->n_vocab - 1);
            return -1;
        }
        if (b->pos[t] < 0 || b->pos[t] >= b->kv[t]->n_ctx || b->kv[t]->n_ctx > c->n_ctx) {
            snprintf(err, errlen, "forward: position %d outside the context of %d", b->pos[t], b->kv[t]->n_ctx);
            return -1;
        }
    }

    /* embeddings and per-token rotary tables */
    for (int t = 0; t < n; t++) {
        float *xt = c->x + (size_t)t * dim;
        lm_dequant_rows(c->isa, &m->tok_embd, b->tokens[t], 1, xt);
        if (hp->emb_scale != 0.0f)
            for (int i = 0; i < dim; i++)
                xt[i] *= hp->emb_scale;
        for (int s = 0; s < c->n_rope; s++)
            rope_table(&c->rope[s], c->rope_theta[s], hp->rope_dim, b->pos[t],
                       c->rope_cs[s] + (size_t)t * hp->rope_dim);
    }

    for (int l = 0; l < hp->n_layers; l++) {
        const struct lm_layer *L = &m->layers[l];
        const float *rcs = c->rope_cs[L->swa && c->n_rope > 1];

        /* attention block (parallel layers: the feed-forward reads the
         * same normed input, c->xb; falcon 40B normalizes the attention's
         * input separately) */
        norm_rows(hp, c->xb, c->x, n, dim, L->attn_norm, L->attn_norm_b);
        const float *att_in = c->xb;
        if (L->attn_norm2) {
            norm_rows(hp, c->xn, c->x, n, dim, L->attn_norm2, L->attn_norm2_b);
            att_in = c->xn;
        }
        struct mm_out qkv[3] = { { &L->wq, L->bq, c->q }, { &L->wk, L->bk, c->k }, { &L->wv, L->bv, c->v } };
        matmul(c, b->prefill, att_in, n, 3, qkv, 0, 0);
        for (int t = 0; t < n; t++) {
            float *qt = c->q + (size_t)t * qd, *kt = c->k + (size_t)t * kv_dim;
            rmsnorm_rows(qt, qt, hp->n_heads, hd, L->q_norm, hp->norm_eps);
            rmsnorm_rows(kt, kt, hp->n_kv_heads, hd, L->k_norm, hp->norm_eps);
            if (hp->clamp_kqv > 0.0f) {
                clamp(qt, (size_t)qd, hp->clamp_kqv);
                clamp(kt, (size_t)kv_dim, hp->clamp_kqv);
                clamp(c->v + (size_t)t * kv_dim, (size_t)kv_dim, hp->clamp_kqv);
            }
            const float *cs = rcs + (size_t)t * hp->rope_dim;
            if (hp->rope) {
                rope(qt, hp->n_heads, hd, hp->rope_dim, hp->rope_neox, cs);
                rope(kt, hp->n_kv_heads, hd, hp->rope_dim, hp->rope_neox, cs);
            }
            struct lm_kv *kv = b->kv[t];
            /* cache layout [layer][kv head][position][head_dim]: one head's
             * keys (and values) are contiguous, read as one stream */
            const float *vs = c->v + (size_t)t * kv_dim;
            for (int h = 0; h < hp->n_kv_heads; h++) {
                size_t o = (((size_t)l * hp->n_kv_heads + h) * kv->n_ctx + (size_t)b->pos[t]) * hd;
                const float *kh = kt + (size_t)h * hd, *vh = vs + (size_t)h * hd;
                if (kv->type == LM_KV_F32) {
                    memcpy((float *)kv->k + o, kh, sizeof(float) * (size_t)hd);
                    memcpy((float *)kv->v + o, vh, sizeof(float) * (size_t)hd);
                } else {
                    for (int i = 0; i < hd; i++) {
                        ((uint16_t *)kv->k)[o + i] = lm_f32_to_f16(kh[i]);
                        ((uint16_t *)kv->v)[o + i] = lm_f32_to_f16(vh[i]);
                    }
                }
            }
        }
        struct att_op aop = { c, b, l };
        lm_pool_run(c->pool, n * hp->n_heads, att_chunk, &aop);
        struct mm_out wo = { &L->wo, L->bo, c->xb2 };
        matmul(c, b->prefill, c->att, n, 1, &wo, 0, 0);
        rmsnorm_rows(c->xb2, c->xb2, n, dim, L->attn_post_norm, hp->norm_eps);
        residual(c->x, c->xb2, (size_t)n * dim);

        /* feed-forward block */
        if (!hp->parallel)
            norm_rows(hp, c->xb, c->x, n, dim, L->ffn_norm, L->ffn_norm_b);
        if (hp->ffn_gated) {
            struct mm_out gu[2] = { { &L->w_gate, L->b_gate, c->hb }, { &L->w_up, L->b_up, c->hb2 } };
            matmul(c, b->prefill, c->xb, n, 2, gu, 1, hp->gelu);
        } else {
            struct mm_out up = { &L->w_up, L->b_up, c->hb };
            matmul(c, b->prefill, c->xb, n, 1, &up, 0, 0);
            gelu_rows(c->hb, (size_t)n * hp->ffn_dim);
        }
        struct mm_out down = { &L->w_down, L->b_down, c->xb2 };
        matmul(c, b->prefill, c->hb, n, 1, &down, 0, 0);
        rmsnorm_rows(c->xb2, c->xb2, n, dim, L->ffn_post_norm, hp->norm_eps);
        residual(c->x, c->xb2, (size_t)n * dim);
    }

    /* final norm, hidden states, logits of the tokens that want them */
    int n_out = 0;
    for (int t = 0; t < n; t++) {
        float *xt = c->x + (size_t)t * dim;
        norm_rows(hp, xt, xt, 1, dim, m->out_norm, m->out_norm_b);
        if (!b->want_logits || b->want_logits[t])
            memcpy(c->xb + (size_t)n_out++ * dim, xt, sizeof(float) * (size_t)dim);
    }
    if (b->hidden)
        memcpy(b->hidden, c->x, sizeof(float) * (size_t)n * dim);
    if (n_out > 0 && b->logits) {
        struct mm_out out = { &m->output, m->out_bias, b->logits };
        matmul(c, b->prefill, c->xb, n_out, 1, &out, 0, 0);
        if (hp->final_softcap != 0.0f) {
            float cap = hp->final_softcap;
            for (size_t i = 0; i < (size_t)n_out * hp->n_vocab; i++)
                b->logits[i] = cap * tanhf(b->logits[i] / cap);
        }
    }
    return 0;
}
