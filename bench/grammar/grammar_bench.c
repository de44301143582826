/*
 * grammar_bench.c - constrained decoding costs (bench/grammar/README.md).
 *
 *   1. mask time per token: random constrained walks through a nested
 *      schema on the model's vocabulary; every lm_gmatch_mask call timed
 *      (median, p90, p99, max; how many were cache hits);
 *   2. tokens/s of the same model with and without the schema, in one run:
 *      chat jobs through the engine (lm_submit), alternating A/B.
 *
 * usage: llmpin-bench-grammar --model F.gguf [--threads N] [--gen N] [--runs N] [--walks N]
 */
#include "localmodel/grammar.h"
#include "localmodel/lm.h"
#include "localmodel/tokenizer.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *SCHEMA =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"id\",\"customer\",\"items\",\"status\"],"
    "\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"customer\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"email\",\"address\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"address\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"street\",\"city\",\"zip\"],"
    "\"properties\":{\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"},"
    "\"zip\":{\"type\":\"string\",\"pattern\":\"^\\\\d{5}$\"}}}}},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":5,\"items\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"sku\",\"qty\",\"price\",\"note\"],"
    "\"properties\":{\"sku\":{\"type\":\"string\"},\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":99},"
    "\"price\":{\"type\":\"number\",\"minimum\":0},\"note\":{\"type\":[\"string\",\"null\"]}}}},"
    "\"status\":{\"enum\":[\"pending\",\"paid\",\"shipped\"]}}}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct lm_grammar *compile(void)
{
    char err[512];
    cJSON *s = cJSON_Parse(SCHEMA);
    struct lm_grammar *g = lm_grammar_from_schema(s, err, sizeof err);
    cJSON_Delete(s);
    if (!g) {
        fprintf(stderr, "schema: %s\n", err);
        exit(1);
    }
    return g;
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void bench_masks(const struct lm_tokenizer *t, int walks)
{
    struct lm_grammar *g = compile();
    double t0 = now_s();
    struct lm_vtrie *vt = lm_vtrie_new(t);
    double t_trie = now_s() - t0;
    int nv = lm_tok_n_vocab(t);
    size_t cap = 1 << 20, n = 0;
    double *ms = malloc(cap * sizeof *ms);
    long hits = 0, calls = 0, docs = 0;
    for (int w = 0; w < walks; w++) {
        struct lm_gmatch *m = lm_gmatch_new(g, vt);
        for (int step = 0; step < 2000 && !lm_gmatch_done(m); step++) {
            int n_allowed, can_end;
            struct lm_gmatch_stats before, after;
            lm_gmatch_stats(m, &before);
            double a = now_s();
            const uint32_t *mask = lm_gmatch_mask(m, &n_allowed, &can_end);
            double b = now_s();
            lm_gmatch_stats(m, &after);
            hits += after.mask_hits - before.mask_hits;
            calls++;
            if (n < cap)
                ms[n++] = (b - a) * 1e6;
            if (!mask || n_allowed == 0)
                break;
            /* a token the mask allows, at random; short strings, as a model would */
            int pick = -1;
            for (int tries = 0; tries < 256 && pick < 0; tries++) {
                int id = (int)(rnd() % (uint32_t)nv);
                if ((mask[id >> 5] >> (id & 31)) & 1) {
                    size_t len;
                    const char *p = lm_tok_piece(t, -2, id, &len);
                    if (len && (memchr(p, '"', len) || rnd() % 8 == 0))
                        pick = id;
                }
            }
            if (pick < 0) {
                int k = (int)(rnd() % (uint32_t)n_allowed);
                for (int id = 0; id < nv && pick < 0; id++)
                    if (((mask[id >> 5] >> (id & 31)) & 1) && k-- == 0)
                        pick = id;
            }
            size_t len;
            const char *p = lm_tok_piece(t, -2, pick, &len);
            lm_gmatch_feed(m, p, len);
        }
        docs += lm_gmatch_done(m);
        lm_gmatch_free(m);
    }
    qsort(ms, n, sizeof *ms, dcmp);
    printf("vocabulary: %d tokens, trie built in %.1f ms; schema: %d grammar nodes\n", nv, t_trie * 1e3,
           lm_grammar_n_nodes(g));
    printf("mask per token over %ld steps of %d walks (%ld complete documents): median %.1f us, p90 %.1f us, "
           "p99 %.1f us, max %.1f us; %.1f%% cache hits\n",
           calls, walks, docs, ms[n / 2], ms[n * 9 / 10], ms[n * 99 / 100], ms[n - 1], 100.0 * hits / calls);
    free(ms);
    lm_vtrie_free(vt);
    lm_grammar_free(g);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, tokens;
    const char *reason;
};

static void emit(void *ud, const struct lm_event *ev)
{
    struct waiter *w = ud;
    if (ev->type != LM_EV_DONE && ev->type != LM_EV_ERROR)
        return;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->tokens = ev->completion_tokens;
    w->reason = ev->type == LM_EV_DONE ? ev->finish_reason : "error";
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static double run_job(struct lm_engine *e, int constrained, int gen, uint64_t seed, int *tokens)
{
    struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL };
    struct lm_message msg = { .role = "user", .content = "Write the order as JSON." };
    struct lm_job_req r = { 0 };
    r.kind = LM_JOB_CHAT;
    r.messages = &msg;
    r.n_messages = 1;
    r.params.temperature = 1.0f;
    r.params.top_p = 1.0f;
    r.params.has_seed = 1;
    r.params.seed = seed;
    r.params.max_tokens = gen;
    r.grammar = constrained ? compile() : NULL;
    r.emit = emit;
    r.ud = &w;
    int st;
    char err[256];
    double t0 = now_s();
    struct lm_job *j = lm_submit(e, &r, &st, NULL, err, sizeof err);
    if (!j) {
        fprintf(stderr, "submit: %s\n", err);
        exit(1);
    }
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    double dt = now_s() - t0;
    lm_job_release(j);
    *tokens = w.tokens;
    return dt;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int threads = 1, gen = 128, runs = 6, walks = 40;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--gen")) gen = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--walks")) walks = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "usage: %s --model F.gguf [--threads N] [--gen N] [--runs N] [--walks N]\n", argv[0]);
        return 2;
    }
    struct lm_engine_opts o = { .path = model, .sha256 = "unpinned", .threads = threads, .chat_template = "chatml",
                                .max_batch = 1 };
    char err[512];
    struct lm_engine *e = lm_engine_open(&o, err, sizeof err);
    if (!e) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    bench_masks(lm_engine_tokenizer(e), walks);
    /* throughput: A (free text) and B (the schema) alternate, same seeds */
    double ta = 0, tb = 0;
    long na = 0, nb = 0;
    for (int r = 0; r < runs; r++) {
        int k;
        ta += run_job(e, 0, gen, 1000 + (uint64_t)r, &k);
        na += k;
        tb += run_job(e, 1, gen, 1000 + (uint64_t)r, &k);
        nb += k;
    }
    double ra = na / ta, rb = nb / tb;
    printf("decode, %d thread(s), %d runs each: free text %.1f tok/s (%ld tokens), schema %.1f tok/s (%ld tokens): "
           "constrained/free %.2f\n", threads, runs, ra, na, rb, nb, rb / ra);
    lm_engine_close(e);
    return 0;
}
