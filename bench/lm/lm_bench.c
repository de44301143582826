/*
 * lm_bench.c - local model throughput against the memory-bandwidth roofline.
 *
 * Decoding one token reads every weight matrix once, so its ceiling is
 * (memory bandwidth) / (weight bytes per token). This program measures, in
 * one run on the same machine:
 *   - streaming-read bandwidth (1 and N threads);
 *   - for a ~110M-parameter random llama (vocab 32000, dim 768, 12 layers,
 *     12 heads, ffn 2048) in F32, F16 and Q8_0, at 1 and N threads:
 *     prompt processing tok/s (--prompt tokens, 128 by default, in 64-token chunks),
 *     decode tok/s and its percentage of the roofline,
 *     aggregate decode tok/s of 4 sequences batched vs 1;
 *   - prompt processing with OpenBLAS threading instead of the pool.
 * Ratios are the figures to report; absolute numbers on a shared machine
 * are noise. Models are generated once into --dir (default /tmp).
 *
 * --shape picks the model: 110m (above), llama3.2-1b (llama, vocab 128256,
 * dim 2048, 16 layers, GQA 32/8, ffn 8192, tied, rope_freqs, base 5e5) or
 * qwen2.5-0.5b (qwen2 with Q/K/V biases, vocab 151936, dim 896, 24 layers,
 * GQA 14/2, ffn 4864, tied; dim 896 is not a multiple of 256, so its Q4_K_M
 * is mostly Q5_0 and Q8_0, as llama.cpp's). The KV cache is F16, the
 * engine's default.
 *
 * usage: llmpin-bench-lm [--dir DIR] [--types f32,f16,q8_0,q4_k_m,q6_k] [--threads N]
 *                        [--gen 64] [--prompt 128] [--shape 110m|llama3.2-1b|qwen2.5-0.5b] [--quick]
 */
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "localmodel/gguf.h"
#include "localmodel/gguf_write.h"
#include "localmodel/model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- bandwidth ---------------------------------------------------------- */

struct bw_arg {
    const float *buf;
    size_t n;
    float sums[64];
};

__attribute__((target("avx2")))
static void bw_worker(void *vp, int part, int ith)
{
    struct bw_arg *a = vp;
    size_t chunk = a->n / 64;
    const float *p = a->buf + chunk * (size_t)part;
    size_t n = chunk;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    a->sums[part] += t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

static double bandwidth(int threads, size_t bytes)
{
    char err[128];
    struct lm_pool *pool = lm_pool_new(threads, err, sizeof err);
    float *buf = malloc(bytes);
    if (!pool || !buf) {
        fprintf(stderr, "bandwidth: %s\n", pool ? "out of memory" : err);
        exit(1);
    }
    for (size_t i = 0; i < bytes / 4; i++)
        buf[i] = (float)(i & 7);
    struct bw_arg a = { buf, bytes / 4, { 0 } };
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        lm_pool_run(pool, 64, bw_worker, &a);
        double gbs = bytes / (now() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    free(buf);
    lm_pool_free(pool);
    return best;
}

/* ---- model runs --------------------------------------------------------- */

struct result {
    double pp, tg, tg4, roof_pct;
};

static void forward_or_die(struct lm_ctx *c, struct lm_batch *b)
{
    char err[256];
    if (lm_forward(c, b, err, sizeof err) < 0) {
        fprintf(stderr, "forward: %s\n", err);
        exit(1);
    }
}

static int n_prompt = 128;        /* --prompt, a multiple of 64 */

static struct result run_model(const struct lm_model *m, int threads, int n_gen, double bw,
                               int blas_threads)
{
    char err[256];
    struct result r = { 0 };
    int V = m->hp.n_vocab;
    struct lm_pool *pool = lm_pool_new(threads, err, sizeof err);
    int n_ctx = n_prompt + 2 * n_gen + 1;
    struct lm_ctx *c = pool ? lm_ctx_new(m, pool, 64, n_ctx, lm_isa_detect(), err, sizeof err) : NULL;
    struct lm_kv *kv[4];
    for (int i = 0; i < 4; i++)
        kv[i] = lm_kv_new(m, n_ctx, LM_KV_F16, err, sizeof err);    /* the engine's default */
    float *logits = malloc(sizeof(float) * 4 * (size_t)V);
    if (!c || !kv[0] || !kv[3] || !logits) {
        fprintf(stderr, "setup: %s\n", err);
        exit(1);
    }
    openblas_set_num_threads(blas_threads);
    int32_t toks[64];
    int pos[64];
    struct lm_kv *kvs[64];
    uint8_t want[64];

    /* warm-up: fault in the weights */
    toks[0] = 1; pos[0] = 0; kvs[0] = kv[0];
    struct lm_batch w = { 1, toks, pos, kvs, NULL, logits, NULL, 0 };
    forward_or_die(c, &w);

    /* prompt processing: n_prompt tokens in chunks of 64 */
    double t0 = now();
    for (int start = 0; start < n_prompt; start += 64) {
        for (int i = 0; i < 64; i++) {
            toks[i] = (int32_t)((start + i) * 7919 % V);
            pos[i] = start + i;
            kvs[i] = kv[0];
            want[i] = (start + i == n_prompt - 1);
        }
        struct lm_batch b = { 64, toks, pos, kvs, want, logits, NULL, 1 };
        forward_or_die(c, &b);
    }
    r.pp = n_prompt / (now() - t0);

    /* decode, one sequence */
    t0 = now();
    for (int g = 0; g < n_gen; g++) {
        toks[0] = (int32_t)(g * 31 % V);
        pos[0] = n_prompt + g;
        kvs[0] = kv[0];
        struct lm_batch b = { 1, toks, pos, kvs, NULL, logits, NULL, 0 };
        forward_or_die(c, &b);
    }
    r.tg = n_gen / (now() - t0);
    r.roof_pct = 100.0 * r.tg / (bw * 1e9 / (double)m->weight_bytes);

    /* decode, four sequences batched (each at its own position) */
    t0 = now();
    for (int g = 0; g < n_gen; g++) {
        for (int i = 0; i < 4; i++) {
            toks[i] = (int32_t)((g * 31 + i) % V);
            pos[i] = i == 0 ? n_prompt + n_gen + g : g;
            kvs[i] = kv[i];
        }
        struct lm_batch b = { 4, toks, pos, kvs, NULL, logits, NULL, 0 };
        forward_or_die(c, &b);
    }
    r.tg4 = 4.0 * n_gen / (now() - t0);

    openblas_set_num_threads(1);
    free(logits);
    for (int i = 0; i < 4; i++)
        lm_kv_free(kv[i]);
    lm_ctx_free(c);
    lm_pool_free(pool);
    return r;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    const char *types = "f32,f16,q8_0";
    int max_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int n_gen = 64, quick = 0;
    const char *shape = "110m";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) max_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--types f32,f16,q8_0,q4_k_m,q6_k] [--threads N] [--gen N] "
                    "[--prompt N] [--shape 110m|llama3.2-1b|qwen2.5-0.5b] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (n_prompt < 64 || n_prompt % 64 || n_prompt > 1 << 16 || n_gen < 1 || n_gen > 1 << 16) {
        fprintf(stderr, "%s: --prompt must be a multiple of 64 (64..65536) and --gen in 1..65536\n", argv[0]);
        return 2;
    }
    struct lm_llama_shape base = { .n_vocab = 32000, .dim = 768, .n_layers = 12, .n_heads = 12,
        .n_kv_heads = 12, .ffn_dim = 2048, .context_length = 2048, .tied_output = 1, .seed = 1 };
    if (!strcmp(shape, "llama3.2-1b")) {
        base = (struct lm_llama_shape){ .n_vocab = 128256, .dim = 2048, .n_layers = 16, .n_heads = 32,
            .n_kv_heads = 8, .ffn_dim = 8192, .context_length = 131072, .tied_output = 1, .seed = 1,
            .rope_freqs = 1, .rope_freq_base = 500000.0f };
    } else if (!strcmp(shape, "qwen2.5-0.5b")) {
        base = (struct lm_llama_shape){ .n_vocab = 151936, .dim = 896, .n_layers = 24, .n_heads = 14,
            .n_kv_heads = 2, .ffn_dim = 4864, .context_length = 32768, .tied_output = 1, .seed = 1,
            .arch = "qwen2", .rope_freq_base = 1000000.0f };
    } else if (strcmp(shape, "110m") != 0) {
        fprintf(stderr, "--shape: '%s' is not 110m, llama3.2-1b or qwen2.5-0.5b\n", shape);
        return 2;
    }
    if (max_threads < 1) max_threads = 1;
    if (n_gen < 1) n_gen = 1;

    printf("CPU ISA: %s, threads up to %d\n", lm_isa_name(lm_isa_detect()), max_threads);
    double bw[65] = { 0 }, bw_best = 0;
    for (int t = 1; t <= max_threads && t <= 64; t++) {
        bw[t] = bandwidth(t, quick ? (size_t)256 << 20 : (size_t)1 << 30);
        if (bw[t] > bw_best) bw_best = bw[t];
        printf("memory bandwidth, %d thread(s): %.1f GB/s\n", t, bw[t]);
    }

    static const struct { const char *name; enum gguf_ttype type; } all[] = {
        { "f32", GGUF_TT_F32 }, { "f16", GGUF_TT_F16 }, { "bf16", GGUF_TT_BF16 }, { "q8_0", GGUF_TT_Q8_0 },
        { "q4_k_m", GGUF_TT_Q4_K }, { "q6_k", GGUF_TT_Q6_K },
    };
    printf("\n%-5s %3s %10s %10s %9s %8s %12s %7s\n", "type", "thr", "pp tok/s", "tg tok/s",
           "roofline", "%roof", "4-seq tok/s", "x vs 1");
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        if (!strstr(types, all[k].name))
            continue;
        char path[512], err[512];
        snprintf(path, sizeof path, "%s/llmpin-bench-%s-%s.gguf", dir, shape, all[k].name);
        struct stat st;
        if (stat(path, &st) != 0) {
            struct lm_llama_shape s = base;
            s.type = all[k].type;
            fprintf(stderr, "writing %s ...\n", path);
            if (lm_write_random_llama(path, &s, err, sizeof err) < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
        }
        struct gguf_file *f;
        struct lm_model *m;
        if (gguf_open(path, &f, err, sizeof err) < 0 || lm_model_load(f, &m, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double roof_bw = 0;
        for (int t = 1; t <= max_threads; t++) {
            struct result r = run_model(m, t, n_gen, bw[t], 1);
            roof_bw = bw[t] * 1e9 / (double)m->weight_bytes;
            printf("%-5s %3d %10.1f %10.2f %9.2f %7.0f%% %12.2f %6.2fx\n", all[k].name, t, r.pp, r.tg,
                   roof_bw, r.roof_pct, r.tg4, r.tg4 / r.tg);
            fflush(stdout);
        }
        if (max_threads > 1 && !quick) {
            struct result r = run_model(m, 1, 8, bw[1], max_threads);
            printf("%-5s     prompt with OpenBLAS threads (%d) instead of the pool: %.1f tok/s\n",
                   all[k].name, max_threads, r.pp);
        }
        printf("%-5s     %.1f M params, %.1f MB of weights read per token\n", all[k].name,
               m->n_params / 1e6, m->weight_bytes / 1e6);
        lm_model_free(m);
        gguf_close(f);
    }
    return 0;
}
