/*
 * model.c - llama weights from GGUF, and the forward pass.
 *
 * The forward pass reads top to bottom like llama2.c's run.c, but over a
 * batch of tokens (each with its own position and KV cache) so that one read
 * of the weights serves a whole prompt chunk or one decode step of several
 * sequences:
 *
 *   x = embedding rows
 *   per layer:  xb = rmsnorm(x)         q,k,v = xb Wq, xb Wk, xb Wv
 *               rope(q, k)              cache k, v at each token's position
 *               att = softmax(q k^T / sqrt(hd)) v   (grouped-query heads)
 *               x += att Wo
 *               xb = rmsnorm(x)         x += (silu(xb Wg) * (xb Wu)) Wd
 *   x = rmsnorm(x);  logits = x Wout
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

#define GEMM_MIN_TOKENS 8    /* prefill chunks at least this long use sgemm */
#define GEMM_TILE_ROWS 256
#ifndef INT8_GEMM_ISA
#define INT8_GEMM_ISA LM_ISA_AVX2
#endif

/* ---- loading ------------------------------------------------------------ */

static int kv_int(const struct gguf_file *f, const char *key, int required, int64_t def,
                  int64_t lo, int64_t hi, int *out, char *err, size_t errlen)
{
    int64_t v = def;
    if (gguf_find_kv(f, key)) {
        char e2[256];
        if (gguf_get_i64(f, key, &v, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "%s: %s", f->path ? f->path : "model", e2);
            return -1;
        }
    } else if (required) {
        snprintf(err, errlen, "%s: missing key '%s'", f->path ? f->path : "model", key);
        return -1;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "%s: key '%s': %lld out of range %lld..%lld",
                 f->path ? f->path : "model", key, (long long)v, (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int kv_float(const struct gguf_file *f, const char *key, double def, double lo, double hi,
                    float *out, char *err, size_t errlen)
{
    double v = def;
    if (gguf_find_kv(f, key)) {
        char e2[256];
        if (gguf_get_f64(f, key, &v, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "%s: %s", f->path ? f->path : "model", e2);
            return -1;
        }
    }
    if (!(v >= lo && v <= hi)) {
        snprintf(err, errlen, "%s: key '%s': %g out of range %g..%g",
                 f->path ? f->path : "model", key, v, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

/* Find tensor `name` with shape [cols, rows] (rows 0 = a vector of cols).
 * Returns 1 if absent and optional, 0 ok, -1 error. */
static int get_tensor(const struct gguf_file *f, const char *name, int cols, int rows,
                      int optional, const struct gguf_tensor **out, char *err, size_t errlen)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (optional)
            return 1;
        snprintf(err, errlen, "%s: missing tensor '%s'", f->path ? f->path : "model", name);
        return -1;
    }
    int want_dims = rows ? 2 : 1;
    int ok = t->n_dims >= (uint32_t)want_dims && t->ne[0] == (uint64_t)cols &&
             (!rows || t->ne[1] == (uint64_t)rows);
    for (uint32_t d = (uint32_t)want_dims; ok && d < t->n_dims; d++)
        if (t->ne[d] != 1)
            ok = 0;
    if (!ok) {
        char got[128];
        int len = 0;
        for (uint32_t d = 0; d < t->n_dims && d < GGUF_MAX_DIMS; d++)
            len += snprintf(got + len, sizeof got - (size_t)len, "%s%llu", d ? ", " : "",
                            (unsigned long long)t->ne[d]);
        if (rows)
            snprintf(err, errlen, "%s: tensor '%s': expected shape [%d, %d], got [%s]",
                     f->path ? f->path : "model", name, cols, rows, got);
        else
            snprintf(err, errlen, "%s: tensor '%s': expected shape [%d], got [%s]",
                     f->path ? f->path : "model", name, cols, got);
        return -1;
    }
    if (t->type != GGUF_TT_F32 && t->type != GGUF_TT_F16 && t->type != GGUF_TT_BF16 &&
        t->type != GGUF_TT_Q8_0 && !lm_quant_is_block(t->type)) {
        const char *tn = gguf_ttype_name(t->type);
        snprintf(err, errlen, "%s: tensor '%s': type %s (%u) is not supported (F32, F16, BF16, Q8_0, "
                 "Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS are)",
                 f->path ? f->path : "model", name, tn ? tn : "unknown", (unsigned)t->type);
        return -1;
    }
    uint32_t blk = gguf_ttype_block(t->type);
    if (blk > 1 && cols % (int)blk != 0) {
        snprintf(err, errlen, "%s: tensor '%s': %s rows of %d are not a multiple of %u",
                 f->path ? f->path : "model", name, gguf_ttype_name(t->type), cols, blk);
        return -1;
    }
    uint64_t need = gguf_ttype_nbytes(t->type, (uint64_t)cols) * (uint64_t)(rows ? rows : 1);
    if (need == 0 || t->nbytes < need) {
        snprintf(err, errlen, "%s: tensor '%s': data is %llu bytes, need %llu",
                 f->path ? f->path : "model", name, (unsigned long long)t->nbytes,
                 (unsigned long long)need);
        return -1;
    }
    *out = t;
    return 0;
}

static int get_mat(const struct gguf_file *f, const char *name, int cols, int rows, int optional,
                   struct lm_wmat *w, struct lm_model *m, char *err, size_t errlen)
{
    const struct gguf_tensor *t;
    int rc = get_tensor(f, name, cols, rows, optional, &t, err, errlen);
    if (rc != 0)
        return rc;
    w->data = t->data;
    w->type = t->type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)gguf_ttype_nbytes(t->type, (uint64_t)cols);
    m->n_params += (uint64_t)rows * (uint64_t)cols;
    m->weight_bytes += (uint64_t)rows * w->row_bytes;
    return 0;
}

/* Copy a norm vector to F32 at dst. */
static int get_norm(const struct gguf_file *f, const char *name, int dim, float *dst,
                    struct lm_model *m, char *err, size_t errlen)
{
    const struct gguf_tensor *t;
    if (get_tensor(f, name, dim, 0, 0, &t, err, errlen) != 0)
        return -1;
    struct lm_wmat w = { t->data, t->type, 1, dim, (size_t)gguf_ttype_nbytes(t->type, (uint64_t)dim) };
    lm_dequant_rows(LM_ISA_SCALAR, &w, 0, 1, dst);
    m->n_params += (uint64_t)dim;
    return 0;
}

int lm_model_load(const struct gguf_file *f, struct lm_model **out, char *err, size_t errlen)
{
    const char *path = f->path ? f->path : "model";
    *out = NULL;
    struct gguf_str arch;
    char e2[256];
    if (gguf_get_str(f, "general.architecture", &arch, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "%s: %s", path, e2);
        return -1;
    }
    if (arch.len != 5 || memcmp(arch.ptr, "llama", 5) != 0) {
        snprintf(err, errlen, "%s: general.architecture is '%.*s'; only 'llama' is supported",
                 path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
        return -1;
    }

    struct lm_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    struct lm_hparams *hp = &m->hp;
    if (kv_int(f, "llama.embedding_length", 1, 0, 1, 65536, &hp->dim, err, errlen) ||
        kv_int(f, "llama.block_count", 1, 0, 1, LM_MAX_LAYERS, &hp->n_layers, err, errlen) ||
        kv_int(f, "llama.feed_forward_length", 1, 0, 1, 1 << 20, &hp->ffn_dim, err, errlen) ||
        kv_int(f, "llama.attention.head_count", 1, 0, 1, 4096, &hp->n_heads, err, errlen) ||
        kv_int(f, "llama.context_length", 1, 0, 1, 1 << 24, &hp->n_ctx_train, err, errlen))
        goto fail;
    if (kv_int(f, "llama.attention.head_count_kv", 0, hp->n_heads, 1, hp->n_heads,
               &hp->n_kv_heads, err, errlen))
        goto fail;
    if (hp->dim % hp->n_heads != 0) {
        snprintf(err, errlen, "%s: embedding_length %d is not a multiple of head_count %d",
                 path, hp->dim, hp->n_heads);
        goto fail;
    }
    if (hp->n_heads % hp->n_kv_heads != 0) {
        snprintf(err, errlen, "%s: head_count %d is not a multiple of head_count_kv %d",
                 path, hp->n_heads, hp->n_kv_heads);
        goto fail;
    }
    hp->head_dim = hp->dim / hp->n_heads;
    if (kv_int(f, "llama.rope.dimension_count", 0, hp->head_dim, 2, hp->head_dim,
               &hp->rope_dim, err, errlen))
        goto fail;
    if (hp->rope_dim % 2 != 0) {
        snprintf(err, errlen, "%s: rope.dimension_count %d is odd", path, hp->rope_dim);
        goto fail;
    }
    if (kv_float(f, "llama.rope.freq_base", 10000.0, 1.0, 1e12, &hp->rope_base, err, errlen) ||
        kv_float(f, "llama.attention.layer_norm_rms_epsilon", 1e-5, 0.0, 1.0, &hp->norm_eps, err, errlen))
        goto fail;

    const struct gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) {
        snprintf(err, errlen, "%s: missing tensor 'token_embd.weight'", path);
        goto fail;
    }
    if (emb->n_dims < 2 || emb->ne[1] == 0 || emb->ne[1] > (1u << 22)) {
        snprintf(err, errlen, "%s: tensor 'token_embd.weight': bad vocabulary dimension", path);
        goto fail;
    }
    hp->n_vocab = (int)emb->ne[1];
    if (gguf_find_kv(f, "llama.vocab_size")) {
        int vs;
        if (kv_int(f, "llama.vocab_size", 1, 0, 1, 1 << 22, &vs, err, errlen))
            goto fail;
        if (vs != hp->n_vocab) {
            snprintf(err, errlen, "%s: llama.vocab_size is %d but token_embd.weight has %d rows",
                     path, vs, hp->n_vocab);
            goto fail;
        }
    }

    int dim = hp->dim, kv_dim = hp->n_kv_heads * hp->head_dim, ffn = hp->ffn_dim;
    if (get_mat(f, "token_embd.weight", dim, hp->n_vocab, 0, &m->tok_embd, m, err, errlen))
        goto fail;
    int rc = get_mat(f, "output.weight", dim, hp->n_vocab, 1, &m->output, m, err, errlen);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        m->output = m->tok_embd;
        m->tied_output = 1;
        m->weight_bytes += (uint64_t)hp->n_vocab * m->output.row_bytes;
    }
    /* only one embedding row is read per token */
    m->weight_bytes -= (uint64_t)hp->n_vocab * m->tok_embd.row_bytes;

    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    m->owned = malloc(sizeof(float) * (size_t)dim * (size_t)(2 * hp->n_layers + 1));
    if (!m->layers || !m->owned) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (int l = 0; l < hp->n_layers; l++) {
        struct lm_layer *L = &m->layers[l];
        char name[96];
        float *an = m->owned + (size_t)(2 * l) * dim, *fn = an + dim;
#define MAT(field, suffix, c, r)                                                       \
        snprintf(name, sizeof name, "blk.%d." suffix ".weight", l);                    \
        if (get_mat(f, name, c, r, 0, &L->field, m, err, errlen)) goto fail;
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        if (get_norm(f, name, dim, an, m, err, errlen)) goto fail;
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        if (get_norm(f, name, dim, fn, m, err, errlen)) goto fail;
        L->attn_norm = an;
        L->ffn_norm = fn;
        MAT(wq, "attn_q", dim, dim)
        MAT(wk, "attn_k", dim, kv_dim)
        MAT(wv, "attn_v", dim, kv_dim)
        MAT(wo, "attn_output", dim, dim)
        MAT(w_gate, "ffn_gate", dim, ffn)
        MAT(w_up, "ffn_up", dim, ffn)
        MAT(w_down, "ffn_down", ffn, dim)
#undef MAT
    }
    float *on = m->owned + (size_t)(2 * hp->n_layers) * dim;
    if (get_norm(f, "output_norm.weight", dim, on, m, err, errlen))
        goto fail;
    m->out_norm = on;
    *out = m;
    return 0;
fail:
    lm_model_free(m);
    return -1;
}

void lm_model_free(struct lm_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->owned);
    free(m);
}

/* ---- KV cache ----------------------------------------------------------- */

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
    float *q, *k, *v, *att;      /* [max_tokens][dim or kv_dim] */
    float *hb, *hb2;             /* [max_tokens][ffn] */
    float *xd;                   /* Q8 scales [max_tokens][max_cols/32] */
    int8_t *xq;                  /* Q8 values [max_tokens][max_cols] */
    float *dt;                   /* the same in groups of 16 tokens (lm_q8_interleave16) */
    uint8_t *qt;
    float *scores;               /* [nth][n_ctx] */
    float *tiles;                /* [nth][GEMM_TILE_ROWS * max_cols] */
    float *rope_inv;             /* [rope_dim/2] */
    float *rope_cs;              /* [max_tokens][rope_dim]: cos, sin pairs */
    atomic_int *lane_next;       /* [nth] matmul piece cursors, see mm_chunk */
    int *lane_end;               /* [nth] */
};

void lm_ctx_free(struct lm_ctx *c)
{
    if (!c)
        return;
    free(c->x); free(c->xb); free(c->xb2);
    free(c->q); free(c->k); free(c->v); free(c->att);
    free(c->hb); free(c->hb2); free(c->xd); free(c->xq); free(c->dt); free(c->qt);
    free(c->scores); free(c->tiles); free(c->rope_inv); free(c->rope_cs);
    free(c->lane_next); free(c->lane_end);
    free(c);
}

int lm_ctx_max_tokens(const struct lm_ctx *c)
{
    return c->max_tokens;
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
    c->max_cols = hp->dim > hp->ffn_dim ? hp->dim : hp->ffn_dim;
    size_t T = (size_t)max_tokens, dim = (size_t)hp->dim;
    size_t kv_dim = (size_t)hp->n_kv_heads * hp->head_dim, ffn = (size_t)hp->ffn_dim;
    size_t mc = (size_t)c->max_cols;
    c->x = malloc(T * dim * 4);
    c->xb = malloc(T * dim * 4);
    c->xb2 = malloc(T * dim * 4);
    c->q = malloc(T * dim * 4);
    c->k = malloc(T * kv_dim * 4);
    c->v = malloc(T * kv_dim * 4);
    c->att = malloc(T * dim * 4);
    c->hb = malloc(T * ffn * 4);
    c->hb2 = malloc(T * ffn * 4);
    c->xd = malloc(T * (mc / LM_QK8 + 1) * 4);
    c->xq = malloc(T * mc);
    size_t T16 = (T + 15) / 16 * 16;
    c->dt = malloc(T16 * (mc / LM_QK8 + 1) * 4);
    c->qt = malloc(T16 * mc);
    c->scores = malloc((size_t)c->nth * (size_t)n_ctx * 4);
    c->tiles = malloc((size_t)c->nth * GEMM_TILE_ROWS * mc * 4);
    c->rope_inv = malloc((size_t)hp->rope_dim / 2 * 4);
    c->rope_cs = malloc(T * (size_t)hp->rope_dim * 4);
    c->lane_next = malloc(sizeof(atomic_int) * (size_t)c->nth);
    c->lane_end = malloc(sizeof(int) * (size_t)c->nth);
    if (!c->lane_next || !c->lane_end ||
        !c->x || !c->xb || !c->xb2 || !c->q || !c->k || !c->v || !c->att || !c->hb ||
        !c->hb2 || !c->xd || !c->xq || !c->dt || !c->qt || !c->scores || !c->tiles || !c->rope_inv || !c->rope_cs) {
        snprintf(err, errlen, "forward context: out of memory");
        lm_ctx_free(c);
        return NULL;
    }
    for (int i = 0; i < hp->rope_dim / 2; i++)
        c->rope_inv[i] = powf(hp->rope_base, -(float)(2 * i) / (float)hp->rope_dim);
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
    int glu;                     /* w[0] gate, w[1] up: pieces cover both, y[0] = silu(g) * u */
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
    else
        lm_matmul_rows(c->isa, w, r0, r1, op->x, c->xd, c->xq, op->n, op->y[j], (size_t)w->rows);
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
    if (op->glu) {
        /* the same rows of the up projection, then silu(gate) * up */
        mm_rows(op, ith, 1, r0, r1);
        for (int t = 0; t < op->n; t++)
            lm_silu_mul(c->isa, op->y[0] + (size_t)t * w->rows + r0,
                        op->y[1] + (size_t)t * w->rows + r0, r1 - r0);
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
    if (w->type == GGUF_TT_Q4_K || w->type == GGUF_TT_Q6_K)   /* quants.c's AVX2 dots */
        return c->isa >= LM_ISA_AVX2;
    return w->type == GGUF_TT_Q8_0 && c->isa >= INT8_GEMM_ISA;
}

static void matmul(struct lm_ctx *c, int prefill, const float *x, int n, int nm,
                   const struct lm_wmat *w0, float *y0, const struct lm_wmat *w1, float *y1,
                   const struct lm_wmat *w2, float *y2, int glu)
{
    struct mm_op op = { .c = c, .nm = nm, .w = { w0, w1, w2 }, .y = { y0, y1, y2 }, .x = x, .n = n,
                        .glu = glu,
                        .gemm = prefill && n >= GEMM_MIN_TOKENS && !int8_gemm(c, w0),
                        .q8gemm = prefill && n >= 16 && c->isa == LM_ISA_AVX512VNNI };
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
        int q8 = 0;
        for (int j = 0; j < nm; j++)
            if (op.w[j]->type == GGUF_TT_Q8_0 || lm_quant_is_block(op.w[j]->type))
                q8 = 1;
        if (q8)
            lm_quantize_q8_isa(c->isa, x, n, w0->cols, c->xd, c->xq);
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
    size_t lbase = ((size_t)op->layer * hp->n_kv_heads + kh) * kv->n_ctx * hd;
    size_t es = kv->type == LM_KV_F16 ? 2 : 4;
    lm_attn_head(c->isa, c->q + (size_t)t * hp->dim + (size_t)h * hd, hd,
                 (const char *)kv->k + lbase * es, (const char *)kv->v + lbase * es,
                 kv->type == LM_KV_F16, (size_t)hd, op->b->pos[t] + 1, 1.0f / sqrtf((float)hd),
                 c->scores + (size_t)ith * c->n_ctx, c->att + (size_t)t * hp->dim + (size_t)h * hd);
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

/* Rotate adjacent pairs (x[2i], x[2i+1]) of the first rope_dim dims of each
 * head by pos * base^(-2i/rope_dim) (llama.cpp "norm" mode, llama2.c). */
static void rope(float *x, int n_heads, int hd, int rope_dim, const float *cs)
{
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (int i = 0; i < rope_dim; i += 2) {
            float c = cs[i], s = cs[i + 1];
            float a = v[i], b = v[i + 1];
            v[i] = a * c - b * s;
            v[i + 1] = a * s + b * c;
        }
    }
}

/* ---- forward ------------------------------------------------------------ */

int lm_forward(struct lm_ctx *c, const struct lm_batch *b, char *err, size_t errlen)
{
    const struct lm_model *m = c->m;
    const struct lm_hparams *hp = &m->hp;
    int n = b->n, dim = hp->dim, hd = hp->head_dim;
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
        lm_dequant_rows(c->isa, &m->tok_embd, b->tokens[t], 1, c->x + (size_t)t * dim);
        float *cs = c->rope_cs + (size_t)t * hp->rope_dim;
        for (int i = 0; i < hp->rope_dim / 2; i++) {
            float ang = (float)b->pos[t] * c->rope_inv[i];
            cs[2 * i] = cosf(ang);
            cs[2 * i + 1] = sinf(ang);
        }
    }

    for (int l = 0; l < hp->n_layers; l++) {
        const struct lm_layer *L = &m->layers[l];

        /* attention block */
        for (int t = 0; t < n; t++)
            rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->attn_norm, dim, hp->norm_eps);
        matmul(c, b->prefill, c->xb, n, 3, &L->wq, c->q, &L->wk, c->k, &L->wv, c->v, 0);
        for (int t = 0; t < n; t++) {
            const float *cs = c->rope_cs + (size_t)t * hp->rope_dim;
            rope(c->q + (size_t)t * dim, hp->n_heads, hd, hp->rope_dim, cs);
            rope(c->k + (size_t)t * kv_dim, hp->n_kv_heads, hd, hp->rope_dim, cs);
            struct lm_kv *kv = b->kv[t];
            /* cache layout [layer][kv head][position][head_dim]: one head's
             * keys (and values) are contiguous, read as one stream */
            const float *ks = c->k + (size_t)t * kv_dim, *vs = c->v + (size_t)t * kv_dim;
            for (int h = 0; h < hp->n_kv_heads; h++) {
                size_t o = (((size_t)l * hp->n_kv_heads + h) * kv->n_ctx + (size_t)b->pos[t]) * hd;
                const float *kh = ks + (size_t)h * hd, *vh = vs + (size_t)h * hd;
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
        matmul(c, b->prefill, c->att, n, 1, &L->wo, c->xb2, NULL, NULL, NULL, NULL, 0);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            c->x[i] += c->xb2[i];

        /* feed-forward block */
        for (int t = 0; t < n; t++)
            rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm, dim, hp->norm_eps);
        matmul(c, b->prefill, c->xb, n, 2, &L->w_gate, c->hb, &L->w_up, c->hb2, NULL, NULL, 1);
        matmul(c, b->prefill, c->hb, n, 1, &L->w_down, c->xb2, NULL, NULL, NULL, NULL, 0);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            c->x[i] += c->xb2[i];
    }

    /* final norm, hidden states, logits of the tokens that want them */
    int n_out = 0;
    for (int t = 0; t < n; t++) {
        float *xt = c->x + (size_t)t * dim;
        rmsnorm(xt, xt, m->out_norm, dim, hp->norm_eps);
        if (!b->want_logits || b->want_logits[t])
            memcpy(c->xb + (size_t)n_out++ * dim, xt, sizeof(float) * (size_t)dim);
    }
    if (b->hidden)
        memcpy(b->hidden, c->x, sizeof(float) * (size_t)n * dim);
    if (n_out > 0 && b->logits)
        matmul(c, b->prefill, c->xb, n_out, 1, &m->output, b->logits, NULL, NULL, NULL, NULL, 0);
    return 0;
}
