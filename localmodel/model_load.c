/*
 * model_load.c - a transformer's weights from GGUF: the architecture table
 * (what differs between llama, qwen2, qwen3, phi3, gemma2 and gemma3, as
 * llama.cpp builds them), hyperparameters with their ranges, and every
 * tensor checked for presence, exact shape and type.
 */
#include "localmodel/model.h"
#include "localmodel/quants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The tensors the loader has taken, by index (one load at a time per
 * thread): a file's other tensors are refused, as llama.cpp refuses them. */
static _Thread_local uint8_t *load_used;

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
    if (load_used)
        load_used[t - f->tensors] = 1;
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


/* A 1-D tensor of n elements as F32 (copied: norms and biases are tiny).
 * *out NULL if absent and optional. 0 or -1. */
static int get_vec(const struct gguf_file *f, const char *name, int n, int optional,
                   const float **out, struct lm_model *m, char *err, size_t errlen)
{
    const struct gguf_tensor *t;
    *out = NULL;
    int rc = get_tensor(f, name, n, 0, optional, &t, err, errlen);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    float **o = realloc(m->owned, sizeof *o * (size_t)(m->n_owned + 1));
    float *v = malloc(sizeof(float) * (size_t)n);
    if (o)
        m->owned = o;
    if (!o || !v) {
        free(v);
        snprintf(err, errlen, "%s: out of memory", f->path ? f->path : "model");
        return -1;
    }
    m->owned[m->n_owned++] = v;
    struct lm_wmat w = { t->data, t->type, 1, n, (size_t)gguf_ttype_nbytes(t->type, (uint64_t)n) };
    lm_dequant_rows(LM_ISA_SCALAR, &w, 0, 1, v);
    m->n_params += (uint64_t)n;
    *out = v;
    return 0;
}

/* Rows [r0, r0+rows) of w as a matrix of their own (fused QKV, gate/up). */
static struct lm_wmat sub_rows(const struct lm_wmat *w, int r0, int rows)
{
    struct lm_wmat s = *w;
    s.data = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    s.rows = rows;
    return s;
}

/* ---- architectures ------------------------------------------------------ */

/* What differs between the architectures, as llama.cpp builds them. */
struct arch_desc {
    const char *name;
    enum lm_arch id;
    int rope_neox;       /* rotary pairs (i, i + n/2) */
    int gelu;            /* GeGLU, else SwiGLU */
    int qk_norm;         /* attn_q_norm / attn_k_norm required */
    int post_norms;      /* post_attention_norm / post_ffw_norm required */
    int emb_scale;       /* embeddings times sqrt(dim) */
    int fused_up;        /* ffn_up is [dim, 2 ffn]: gate rows then up rows (phi3) */
    int always_tied;     /* the output projection is token_embd (gemma2) */
    int swa_period;      /* default sliding-window pattern: layer l slides iff l % p < p - 1 */
    int swa_default;     /* window when the key is absent (0: no sliding layers) */
    int swa;             /* has sliding-window layers: reads attention.sliding_window */
    int layer_norm;      /* LayerNorm with biases (attention.layer_norm_epsilon) */
    int parallel;        /* attention and feed-forward in parallel on the layer input */
    int no_gate;         /* feed-forward act(up x) without a gate */
    int no_rope;         /* no rotary embedding (mpt: ALiBi) */
};

static const struct arch_desc ARCHS[] = {
    /* name     id              neox gelu qkn post emb fused tied period  win  swa  ln  par nogate norope */
    { "llama",  LM_ARCH_LLAMA,  0,   0,   0,  0,   0,  0,    0,   0,      0,   0,   0,  0,  0,  0 },
    { "qwen2",  LM_ARCH_QWEN2,  1,   0,   0,  0,   0,  0,    0,   0,      0,   0,   0,  0,  0,  0 },
    { "qwen3",  LM_ARCH_QWEN3,  1,   0,   1,  0,   0,  0,    0,   0,      0,   0,   0,  0,  0,  0 },
    { "phi3",   LM_ARCH_PHI3,   1,   0,   0,  0,   0,  1,    0,   0,      0,   0,   0,  0,  0,  0 },
    { "gemma2", LM_ARCH_GEMMA2, 1,   1,   0,  1,   1,  0,    1,   2,   4096,   1,   0,  0,  0,  0 },
    { "gemma3", LM_ARCH_GEMMA3, 1,   1,   1,  1,   1,  0,    0,   6,      0,   1,   0,  0,  0,  0 },
    { "falcon", LM_ARCH_FALCON, 1,   1,   0,  0,   0,  0,    0,   0,      0,   0,   1,  1,  1,  0 },
    { "mpt",    LM_ARCH_MPT,    0,   1,   0,  0,   0,  0,    0,   0,      0,   0,   1,  0,  1,  1 },
};
const char LM_ARCHS_SUPPORTED[] = "llama, qwen2, qwen3, phi3, gemma2, gemma3, falcon, mpt";

const char *lm_arch_name(enum lm_arch a)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (ARCHS[i].id == a)
            return ARCHS[i].name;
    return "?";
}

/* "<arch>.<suffix>" */
static const char *akey(char *buf, size_t n, const struct arch_desc *ad, const char *suffix)
{
    snprintf(buf, n, "%s.%s", ad->name, suffix);
    return buf;
}

static int load_hparams(const struct gguf_file *f, const struct arch_desc *ad, struct lm_hparams *hp,
                        char *err, size_t errlen)
{
    const char *path = f->path ? f->path : "model";
    char k[128];
#define AK(s) akey(k, sizeof k, ad, s)
    hp->arch = ad->id;
    hp->rope_neox = ad->rope_neox;
    hp->gelu = ad->gelu;
    hp->layer_norm = ad->layer_norm;
    hp->parallel = ad->parallel;
    hp->ffn_gated = !ad->no_gate;
    hp->rope = !ad->no_rope;
    if (kv_int(f, AK("embedding_length"), 1, 0, 1, 65536, &hp->dim, err, errlen) ||
        kv_int(f, AK("block_count"), 1, 0, 1, LM_MAX_LAYERS, &hp->n_layers, err, errlen) ||
        kv_int(f, AK("feed_forward_length"), 1, 0, 1, 1 << 20, &hp->ffn_dim, err, errlen) ||
        kv_int(f, AK("attention.head_count"), 1, 0, 1, 4096, &hp->n_heads, err, errlen) ||
        kv_int(f, AK("context_length"), 1, 0, 1, 1 << 24, &hp->n_ctx_train, err, errlen))
        return -1;
    if (kv_int(f, AK("attention.head_count_kv"), 0, hp->n_heads, 1, hp->n_heads,
               &hp->n_kv_heads, err, errlen))
        return -1;
    if (hp->n_heads % hp->n_kv_heads != 0) {
        snprintf(err, errlen, "%s: head_count %d is not a multiple of head_count_kv %d",
                 path, hp->n_heads, hp->n_kv_heads);
        return -1;
    }
    int has_kl = gguf_find_kv(f, AK("attention.key_length")) != NULL;
    if (!has_kl && hp->dim % hp->n_heads != 0) {
        snprintf(err, errlen, "%s: embedding_length %d is not a multiple of head_count %d",
                 path, hp->dim, hp->n_heads);
        return -1;
    }
    int vl;
    if (kv_int(f, AK("attention.key_length"), 0, hp->dim / hp->n_heads, 2, 4096, &hp->head_dim,
               err, errlen) ||
        kv_int(f, AK("attention.value_length"), 0, hp->head_dim, 1, 4096, &vl, err, errlen))
        return -1;
    if (vl != hp->head_dim) {
        snprintf(err, errlen, "%s: attention.value_length %d differs from key_length %d",
                 path, vl, hp->head_dim);
        return -1;
    }
    if ((int64_t)hp->n_heads * hp->head_dim > 65536 * 4) {
        snprintf(err, errlen, "%s: head_count %d x key_length %d is too large", path, hp->n_heads,
                 hp->head_dim);
        return -1;
    }
    hp->q_dim = hp->n_heads * hp->head_dim;
    if (kv_int(f, AK("rope.dimension_count"), 0, hp->head_dim, 2, hp->head_dim,
               &hp->rope_dim, err, errlen))
        return -1;
    if (hp->rope_dim % 2 != 0) {
        snprintf(err, errlen, "%s: rope.dimension_count %d is odd", path, hp->rope_dim);
        return -1;
    }
    if ((ad->id == LM_ARCH_LLAMA || ad->id == LM_ARCH_FALCON) && hp->rope_dim != hp->head_dim) {
        snprintf(err, errlen, "%s: %s.rope.dimension_count %d must equal the head size %d",
                 path, ad->name, hp->rope_dim, hp->head_dim);
        return -1;
    }
    if (kv_float(f, AK("rope.freq_base"), 10000.0, 1.0, 1e12, &hp->rope_base, err, errlen) ||
        kv_float(f, AK(ad->layer_norm ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"),
                 1e-5, 0.0, 1.0, &hp->norm_eps, err, errlen))
        return -1;

    /* rope scaling: type (default linear), factor, attn_factor, original context */
    hp->rope_scaling = LM_ROPE_LINEAR;
    if (gguf_find_kv(f, AK("rope.scaling.type"))) {
        struct gguf_str st;
        char e2[256];
        if (gguf_get_str(f, k, &st, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "%s: %s", path, e2);
            return -1;
        }
        static const char *const names[] = { "none", "linear", "yarn", "longrope" };
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (st.len == strlen(names[i]) && memcmp(st.ptr, names[i], st.len) == 0)
                found = i;
        if (found < 0) {
            snprintf(err, errlen, "%s: %s.rope.scaling.type '%.*s' is not supported (none, linear, "
                     "yarn, longrope are)", path, ad->name, (int)(st.len > 32 ? 32 : st.len), st.ptr);
            return -1;
        }
        hp->rope_scaling = (enum lm_rope_scaling)found;
    }
    float factor = 0.0f;
    if (kv_float(f, AK("rope.scaling.factor"), 0.0, 0.0, 1e6, &factor, err, errlen))
        return -1;
    if (factor == 0.0f && kv_float(f, AK("rope.scale_linear"), 0.0, 0.0, 1e6, &factor, err, errlen))
        return -1;
    hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    if (hp->rope_scaling == LM_ROPE_NONE)
        hp->rope_freq_scale = 1.0f;
    if (kv_float(f, AK("rope.scaling.attn_factor"), 1.0, 1e-6, 1e6, &hp->rope_attn_factor, err, errlen) ||
        kv_int(f, AK("rope.scaling.original_context_length"), 0, hp->n_ctx_train, 1, 1 << 24,
               &hp->n_ctx_orig, err, errlen))
        return -1;

    /* sliding window: gemma's layers only. llama.cpp reads no window for
     * llama, qwen2, qwen3 or phi3 (Qwen2.5 files carry one their config
     * disables; phi3's is unreliable), and neither does llmpin. */
    hp->n_swa = 0;
    if (ad->swa &&
        (kv_int(f, AK("attention.sliding_window"), 0, ad->swa_default, 0, 1 << 24, &hp->n_swa, err, errlen) ||
         kv_float(f, AK("rope.freq_base_swa"), ad->id == LM_ARCH_GEMMA2 ? hp->rope_base : 10000.0,
                  1.0, 1e12, &hp->rope_base_swa, err, errlen)))
        return -1;

    if (kv_float(f, AK("attention.clamp_kqv"), 0.0, 0.0, 1e30, &hp->clamp_kqv, err, errlen))
        return -1;
    if (ad->no_rope &&
        kv_float(f, AK("attention.max_alibi_bias"), 0.0, 0.0, 1e3, &hp->alibi_bias, err, errlen))
        return -1;

    hp->emb_scale = ad->emb_scale ? sqrtf((float)hp->dim) : 0.0f;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if (ad->id == LM_ARCH_GEMMA2 || ad->id == LM_ARCH_GEMMA3) {
        /* the 27B models scale by dim / heads (llama.cpp tells them by layer count) */
        int n27 = ad->id == LM_ARCH_GEMMA2 ? 46 : 62;
        if (hp->n_layers == n27)
            hp->attn_scale = 1.0f / sqrtf((float)(hp->dim / hp->n_heads));
    }
    if (ad->id == LM_ARCH_GEMMA2) {
        if (kv_float(f, AK("attn_logit_softcapping"), 50.0, 1e-3, 1e6, &hp->attn_softcap, err, errlen) ||
            kv_float(f, AK("final_logit_softcapping"), 30.0, 1e-3, 1e6, &hp->final_softcap, err, errlen))
            return -1;
    } else if (ad->id == LM_ARCH_GEMMA3) {
        if (kv_float(f, AK("final_logit_softcapping"), 0.0, 0.0, 1e6, &hp->final_softcap, err, errlen))
            return -1;
    }
#undef AK
    return 0;
}

/* Which layers slide: the pattern "l % period < period - 1" (gemma: 2 ->
 * even layers, 6 -> five of six), as llama.cpp's set_swa_pattern. */
static int swa_layers(const struct gguf_file *f, const struct arch_desc *ad, struct lm_model *m,
                      char *err, size_t errlen)
{
    struct lm_hparams *hp = &m->hp;
    if (hp->n_swa == 0)
        return 0;
    char k[128];
    int period;
    if (kv_int(f, akey(k, sizeof k, ad, "attention.sliding_window_pattern"), 0, ad->swa_period, 0,
               LM_MAX_LAYERS, &period, err, errlen))
        return -1;
    for (int l = 0; l < hp->n_layers; l++)
        m->layers[l].swa = period == 0 || l % period < period - 1;
    return 0;
}

void lm_model_rope(const struct lm_model *m, int swa, int n_ctx, struct lm_rope *r)
{
    const struct lm_hparams *hp = &m->hp;
    memset(r, 0, sizeof *r);
    int gemma_swa = swa && (hp->arch == LM_ARCH_GEMMA2 || hp->arch == LM_ARCH_GEMMA3);
    r->base = gemma_swa ? hp->rope_base_swa : hp->rope_base;
    r->freq_scale = gemma_swa && hp->arch == LM_ARCH_GEMMA3 ? 1.0f : hp->rope_freq_scale;
    r->factors = m->rope_freqs;
    if (!r->factors && (m->rope_long || m->rope_short))
        r->factors = n_ctx > hp->n_ctx_orig && m->rope_long ? m->rope_long : m->rope_short;
    r->ext_factor = hp->rope_scaling == LM_ROPE_YARN ? 1.0f : 0.0f;
    float mscale = 1.0f;
    if (r->ext_factor != 0.0f) {
        /* llama.cpp's YaRN magnitude: 0.1 ln(factor) + 1, cancelled by the
         * same term rope_yarn multiplies in again */
        float factor = 1.0f / r->freq_scale;
        mscale = factor <= 1.0f ? 1.0f : 0.1f * logf(factor) + 1.0f;
        mscale *= 1.0f / (1.0f + 0.1f * logf(factor));
    }
    r->mscale = mscale * hp->rope_attn_factor;
    /* YaRN correction dims (beta_fast 32, beta_slow 1) */
    float nd = (float)hp->rope_dim, base = r->base, orig = (float)hp->n_ctx_orig;
    float lo = floorf(nd * logf(orig / (32.0f * 2.0f * (float)M_PI)) / (2.0f * logf(base)));
    float hi = ceilf(nd * logf(orig / (1.0f * 2.0f * (float)M_PI)) / (2.0f * logf(base)));
    r->corr[0] = lo > 0.0f ? lo : 0.0f;
    r->corr[1] = hi < nd - 1.0f ? hi : nd - 1.0f;
}

/* ---- loading ------------------------------------------------------------ */

static uint64_t unused_count(const struct gguf_file *f)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        n += !load_used[i];
    return n;
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
    const struct arch_desc *ad = NULL;
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (arch.len == strlen(ARCHS[i].name) && memcmp(arch.ptr, ARCHS[i].name, arch.len) == 0)
            ad = &ARCHS[i];
    if (!ad) {
        snprintf(err, errlen, "%s: general.architecture is '%.*s'; supported: %s",
                 path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr, LM_ARCHS_SUPPORTED);
        return -1;
    }

    struct lm_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    struct lm_hparams *hp = &m->hp;
    load_used = calloc(f->n_tensors ? (size_t)f->n_tensors : 1, 1);
    if (!load_used) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (load_hparams(f, ad, hp, err, errlen))
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
    char key[128];
    if (gguf_find_kv(f, akey(key, sizeof key, ad, "vocab_size"))) {
        int vs;
        if (kv_int(f, key, 1, 0, 1, 1 << 22, &vs, err, errlen))
            goto fail;
        if (vs != hp->n_vocab) {
            snprintf(err, errlen, "%s: %s is %d but token_embd.weight has %d rows",
                     path, key, vs, hp->n_vocab);
            goto fail;
        }
    }

    int dim = hp->dim, qd = hp->q_dim, kv_dim = hp->n_kv_heads * hp->head_dim, ffn = hp->ffn_dim;
    if (get_mat(f, "token_embd.weight", dim, hp->n_vocab, 0, &m->tok_embd, m, err, errlen))
        goto fail;
    int rc = ad->always_tied ? 1 : get_mat(f, "output.weight", dim, hp->n_vocab, 1, &m->output, m, err, errlen);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        m->output = m->tok_embd;
        m->tied_output = 1;
        m->weight_bytes += (uint64_t)hp->n_vocab * m->output.row_bytes;
    }
    /* only one embedding row is read per token */
    m->weight_bytes -= (uint64_t)hp->n_vocab * m->tok_embd.row_bytes;
    if (get_vec(f, "output_norm.weight", dim, 0, &m->out_norm, m, err, errlen) ||
        get_vec(f, "output_norm.bias", dim, !ad->layer_norm || ad->id == LM_ARCH_MPT, &m->out_norm_b, m, err, errlen) ||
        get_vec(f, "output.bias", hp->n_vocab, 1, &m->out_bias, m, err, errlen) ||
        get_vec(f, "rope_freqs.weight", hp->rope_dim / 2, 1, &m->rope_freqs, m, err, errlen))
        goto fail;
    if (hp->rope_scaling == LM_ROPE_LONGROPE || ad->id == LM_ARCH_PHI3) {
        if (get_vec(f, "rope_factors_long.weight", hp->rope_dim / 2, 1, &m->rope_long, m, err, errlen) ||
            get_vec(f, "rope_factors_short.weight", hp->rope_dim / 2, 1, &m->rope_short, m, err, errlen))
            goto fail;
    }

    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (int l = 0; l < hp->n_layers; l++) {
        struct lm_layer *L = &m->layers[l];
        char name[96];
#define TN(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
#define MAT(field, suffix, c, r) \
        if (get_mat(f, TN(suffix ".weight"), c, r, 0, &L->field, m, err, errlen)) goto fail;
#define VEC(field, suffix, n, opt) \
        if (get_vec(f, TN(suffix), n, opt, &L->field, m, err, errlen)) goto fail;
        VEC(attn_norm, "attn_norm.weight", dim, 0)
        /* LayerNorm biases: falcon has them, mpt may (MPT-7B has none) */
        int ln_b_opt = !ad->layer_norm || ad->id == LM_ARCH_MPT;
        VEC(attn_norm_b, "attn_norm.bias", dim, ln_b_opt)
        if (ad->parallel) {
            VEC(attn_norm2, "attn_norm_2.weight", dim, 1)
            VEC(attn_norm2_b, "attn_norm_2.bias", dim, 1)
            if ((L->attn_norm2 != NULL) != (L->attn_norm2_b != NULL)) {
                snprintf(err, errlen, "%s: tensor 'blk.%d.%s' has no %s partner", path, l,
                         L->attn_norm2 ? "attn_norm_2.weight" : "attn_norm_2.bias",
                         L->attn_norm2 ? "attn_norm_2.bias" : "attn_norm_2.weight");
                goto fail;
            }
        } else {
            VEC(ffn_norm, "ffn_norm.weight", dim, 0)
            VEC(ffn_norm_b, "ffn_norm.bias", dim, ln_b_opt)
        }
        /* Q, K and V: one fused tensor (phi3, some conversions) or three */
        struct lm_wmat qkv;
        rc = get_mat(f, TN("attn_qkv.weight"), dim, qd + 2 * kv_dim, 1, &qkv, m, err, errlen);
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            L->wq = sub_rows(&qkv, 0, qd);
            L->wk = sub_rows(&qkv, qd, kv_dim);
            L->wv = sub_rows(&qkv, qd + kv_dim, kv_dim);
            const float *b;
            if (get_vec(f, TN("attn_qkv.bias"), qd + 2 * kv_dim, 1, &b, m, err, errlen))
                goto fail;
            if (b) {
                L->bq = b;
                L->bk = b + qd;
                L->bv = b + qd + kv_dim;
            }
        } else {
            MAT(wq, "attn_q", dim, qd)
            MAT(wk, "attn_k", dim, kv_dim)
            MAT(wv, "attn_v", dim, kv_dim)
            VEC(bq, "attn_q.bias", qd, 1)
            VEC(bk, "attn_k.bias", kv_dim, 1)
            VEC(bv, "attn_v.bias", kv_dim, 1)
        }
        MAT(wo, "attn_output", qd, dim)
        VEC(bo, "attn_output.bias", dim, 1)
        VEC(q_norm, "attn_q_norm.weight", hp->head_dim, !ad->qk_norm)
        VEC(k_norm, "attn_k_norm.weight", hp->head_dim, !ad->qk_norm)
        if ((L->q_norm != NULL) != (L->k_norm != NULL)) {
            snprintf(err, errlen, "%s: tensor '%s' has no %s partner", path,
                     L->q_norm ? "attn_q_norm" : "attn_k_norm", L->q_norm ? "attn_k_norm" : "attn_q_norm");
            goto fail;
        }
        if (ad->post_norms) {
            VEC(attn_post_norm, "post_attention_norm.weight", dim, 0)
            VEC(ffn_post_norm, "post_ffw_norm.weight", dim, 0)
        }
        if (ad->fused_up) {
            struct lm_wmat gu;
            if (get_mat(f, TN("ffn_up.weight"), dim, 2 * ffn, 0, &gu, m, err, errlen))
                goto fail;
            L->w_gate = sub_rows(&gu, 0, ffn);
            L->w_up = sub_rows(&gu, ffn, ffn);
        } else if (ad->no_gate) {
            MAT(w_up, "ffn_up", dim, ffn)
            VEC(b_up, "ffn_up.bias", ffn, 1)
        } else {
            MAT(w_gate, "ffn_gate", dim, ffn)
            MAT(w_up, "ffn_up", dim, ffn)
            VEC(b_gate, "ffn_gate.bias", ffn, 1)
            VEC(b_up, "ffn_up.bias", ffn, 1)
        }
        MAT(w_down, "ffn_down", ffn, dim)
        VEC(b_down, "ffn_down.bias", dim, 1)
#undef VEC
#undef MAT
#undef TN
    }
    if (swa_layers(f, ad, m, err, errlen))
        goto fail;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (!load_used[i]) {
            const struct gguf_str *nm = &f->tensors[i].name;
            snprintf(err, errlen, "%s: tensor '%.*s' is not part of a %s model (%llu of the file's %llu "
                     "tensors are not)", path, (int)(nm->len > 96 ? 96 : nm->len), nm->ptr, ad->name,
                     (unsigned long long)unused_count(f), (unsigned long long)f->n_tensors);
            goto fail;
        }
    }
    free(load_used);
    load_used = NULL;
    *out = m;
    return 0;
fail:
    free(load_used);
    load_used = NULL;
    lm_model_free(m);
    return -1;
}

void lm_model_free(struct lm_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m);
}
