/*
 * engine_lm.c - the engine through lm.h, on stories260K: greedy text equals
 * the reference, four concurrent jobs give the same text as each alone
 * (batched decode), cancel, queue full (429), prompt longer than the context
 * (400), generation stopping at the context end, stop strings, embeddings,
 * and hash verification (mismatch error names both hashes).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include <unistd.h>

#include "localmodel/gguf_write.h"
#include "localmodel/lm.h"
#include "tests/engine/etest.h"

#define MODEL LLMPIN_MODELS_DIR "/stories260K.gguf"
#define SHA "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab"

struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char text[16384];
    size_t len;
    int n_text;
    int done;               /* DONE or ERROR seen */
    int after_done;         /* events after the last one: must stay 0 */
    int error;
    int err_status;         /* ERROR: its status (400 = the request's fault) */
    char err_code[48];
    char msg[256];
    char reason[16];
    int prompt_tokens, completion_tokens;
    float emb[256];
    int n_embd;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void rec_free(struct rec *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void on_event(void *ud, const struct lm_event *ev)
{
    struct rec *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->done) {
        r->after_done++;
    } else if (ev->type == LM_EV_TEXT) {
        if (r->len + ev->len < sizeof r->text) {
            memcpy(r->text + r->len, ev->text, ev->len);
            r->len += ev->len;
            r->text[r->len] = 0;
        }
        r->n_text++;
    } else if (ev->type == LM_EV_EMBEDDING) {
        r->n_embd = ev->n_embd;
        memcpy(r->emb, ev->embedding, sizeof(float) * (size_t)(ev->n_embd < 256 ? ev->n_embd : 256));
    } else if (ev->type == LM_EV_DONE) {
        r->done = 1;
        snprintf(r->reason, sizeof r->reason, "%s", ev->finish_reason);
        r->prompt_tokens = ev->prompt_tokens;
        r->completion_tokens = ev->completion_tokens;
    } else if (ev->type == LM_EV_ERROR) {
        r->done = 1;
        r->error = 1;
        r->err_status = ev->status;
        snprintf(r->err_code, sizeof r->err_code, "%s", ev->code ? ev->code : "");
        snprintf(r->msg, sizeof r->msg, "%.*s", (int)ev->len, ev->text);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void rec_wait(struct rec *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static struct lm_engine *open_engine(int ctx, int batch, int queue, char *err, size_t errlen)
{
    struct lm_engine_opts o = { .path = MODEL, .sha256 = SHA, .context_length = ctx,
                                .threads = 2, .max_queue = queue, .max_batch = batch };
    return lm_engine_open(&o, err, errlen);
}

static struct lm_job *submit(struct lm_engine *e, const char *prompt, int max_tokens,
                             struct rec *r, int *status, char *err, size_t errlen)
{
    struct lm_job_req q = { .kind = LM_JOB_COMPLETION, .prompt = prompt, .emit = on_event, .ud = r };
    q.params.temperature = 0;
    q.params.top_p = 1;
    q.params.max_tokens = max_tokens;
    return lm_submit(e, &q, status, NULL, err, errlen);
}

static void run_one(struct lm_engine *e, const char *prompt, int max_tokens, struct rec *r)
{
    char err[256];
    int status;
    rec_init(r);
    struct lm_job *j = submit(e, prompt, max_tokens, r, &status, err, sizeof err);
    REQUIRE(j, "submit: %d %s", status, err);
    rec_wait(r);
    lm_job_release(j);
}

static char *reference_text(void)
{
    FILE *f = fopen(LLMPIN_MODELS_DIR "/reference/stories260K_greedy_once_upon_a_time.json", "rb");
    REQUIRE(f, "reference json");
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    REQUIRE(j, "parse");
    char *s = strdup(cJSON_GetObjectItem(j, "generated_text")->valuestring);
    cJSON_Delete(j);
    return s;
}

static void test_hash(void)
{
    char err[512];
    struct lm_engine_opts o = { .path = MODEL,
        .sha256 = "0000000000000000000000000000000000000000000000000000000000000001" };
    struct lm_engine *e = lm_engine_open(&o, err, sizeof err);
    CHECK(e == NULL, "mismatched hash must not open");
    CHECK(strstr(err, "SHA-256 mismatch") && strstr(err, o.sha256) && strstr(err, SHA),
          "mismatch message names both hashes: %s", err);
    o.sha256 = "abc";
    CHECK(lm_engine_open(&o, err, sizeof err) == NULL && strstr(err, "64 hex digits"), "bad pin: %s", err);
    o.sha256 = "unpinned";
    e = lm_engine_open(&o, err, sizeof err);
    REQUIRE(e, "unpinned open: %s", err);
    struct lm_info info;
    lm_engine_info(e, &info);
    CHECK(strcmp(info.sha256, SHA) == 0, "info.sha256 %s", info.sha256);
    CHECK(strcmp(info.architecture, "llama") == 0 && info.n_params == 260032 &&
          info.context_length == 512 && info.n_vocab == 512 && strcmp(info.kv_cache, "f16") == 0, "info");
    lm_engine_close(e);
    o.path = LLMPIN_MODELS_DIR "/no-such-model.gguf";
    CHECK(lm_engine_open(&o, err, sizeof err) == NULL && strstr(err, "no-such-model"), "missing file: %s", err);
}

static void test_generation(void)
{
    char err[512];
    struct lm_engine *e = open_engine(0, 4, 16, err, sizeof err);
    REQUIRE(e, "%s", err);
    char *want = reference_text();

    struct rec r;
    run_one(e, "Once upon a time", 64, &r);
    CHECK(!r.error, "error: %s", r.msg);
    CHECK(strcmp(r.text, want) == 0, "greedy text\n got: [%s]\nwant: [%s]", r.text, want);
    CHECK(strcmp(r.reason, "length") == 0 && r.prompt_tokens == 5 && r.completion_tokens == 64,
          "reason %s usage %d/%d", r.reason, r.prompt_tokens, r.completion_tokens);
    CHECK(r.after_done == 0, "events after DONE");
    rec_free(&r);

    /* stop string: generation ends before "Lily", which is not emitted */
    {
        int status;
        rec_init(&r);
        const char *stops[] = { " Lily" };
        struct lm_job_req q = { .kind = LM_JOB_COMPLETION, .prompt = "Once upon a time",
                                .emit = on_event, .ud = &r };
        q.params.temperature = 0;
        q.params.max_tokens = 64;
        q.params.stop = stops;
        q.params.n_stop = 1;
        struct lm_job *j = lm_submit(e, &q, &status, NULL, err, sizeof err);
        REQUIRE(j, "%s", err);
        rec_wait(&r);
        lm_job_release(j);
        CHECK(strcmp(r.text, ", there was a little girl named") == 0 && strcmp(r.reason, "stop") == 0,
              "stop string: [%s] %s", r.text, r.reason);
        rec_free(&r);
    }

    /* four jobs alone, then together */
    const char *prompts[4] = { "Once upon a time", "Lily and Tom", "The cat sat", "One day, a big" };
    struct rec alone[4], together[4];
    for (int i = 0; i < 4; i++)
        run_one(e, prompts[i], 48, &alone[i]);
    struct lm_job *jobs[4];
    for (int i = 0; i < 4; i++) {
        int status;
        rec_init(&together[i]);
        jobs[i] = submit(e, prompts[i], 48, &together[i], &status, err, sizeof err);
        REQUIRE(jobs[i], "%s", err);
    }
    for (int i = 0; i < 4; i++) {
        rec_wait(&together[i]);
        lm_job_release(jobs[i]);
        CHECK(!together[i].error && strcmp(alone[i].text, together[i].text) == 0,
              "job %d batched differs:\n alone: [%s]\n batch: [%s]", i, alone[i].text, together[i].text);
        CHECK(alone[i].completion_tokens == together[i].completion_tokens, "usage %d", i);
        rec_free(&alone[i]);
        rec_free(&together[i]);
    }

    /* embeddings: unit length, deterministic, text-dependent */
    struct rec a, b, c;
    rec_init(&a); rec_init(&b); rec_init(&c);
    struct rec *rs[3] = { &a, &b, &c };
    const char *texts[3] = { "Once upon a time", "Once upon a time", "The dog ran away" };
    for (int i = 0; i < 3; i++) {
        int status;
        struct lm_job_req q = { .kind = LM_JOB_EMBED, .prompt = texts[i], .emit = on_event, .ud = rs[i] };
        struct lm_job *j = lm_submit(e, &q, &status, NULL, err, sizeof err);
        REQUIRE(j, "%s", err);
        rec_wait(rs[i]);
        lm_job_release(j);
    }
    double norm = 0, dot_ab = 0, dot_ac = 0;
    for (int d = 0; d < 64; d++) {
        norm += a.emb[d] * a.emb[d];
        dot_ab += a.emb[d] * b.emb[d];
        dot_ac += a.emb[d] * c.emb[d];
    }
    CHECK(a.n_embd == 64 && strcmp(a.reason, "stop") == 0 && a.prompt_tokens == 5, "embedding event");
    CHECK(fabs(norm - 1) < 1e-5 && fabs(dot_ab - 1) < 1e-5 && dot_ac < 0.999, "embeddings: |a|^2 %g a.b %g a.c %g",
          norm, dot_ab, dot_ac);
    rec_free(&a); rec_free(&b); rec_free(&c);

    /* chat job on a model without a template (plain family) */
    {
        int status;
        rec_init(&r);
        struct lm_message msgs[2] = { { .role = "system", .content = "Tell a story." }, { .role = "user", .content = "Once upon a time" } };
        struct lm_job_req q = { .kind = LM_JOB_CHAT, .messages = msgs, .n_messages = 2,
                                .emit = on_event, .ud = &r };
        q.params.temperature = 0.8f;
        q.params.top_p = 0.9f;
        q.params.seed = 7;
        q.params.has_seed = 1;
        q.params.max_tokens = 20;
        struct lm_job *j = lm_submit(e, &q, &status, NULL, err, sizeof err);
        REQUIRE(j, "chat submit: %s", err);
        rec_wait(&r);
        lm_job_release(j);
        CHECK(!r.error && r.done && r.completion_tokens >= 1 && r.completion_tokens <= 20,
              "chat: error %d %s, %d tokens", r.error, r.msg, r.completion_tokens);
        rec_free(&r);
    }

    /* cancel: after the first text, at most one more (final) event */
    {
        int status;
        rec_init(&r);
        struct lm_job *j = submit(e, "Once upon a time", 0, &r, &status, err, sizeof err);
        REQUIRE(j, "%s", err);
        pthread_mutex_lock(&r.mu);
        while (r.n_text == 0 && !r.done)
            pthread_cond_wait(&r.cv, &r.mu);
        int text_at_cancel = r.n_text;
        lm_cancel(j);
        pthread_mutex_unlock(&r.mu);
        rec_wait(&r);
        CHECK(r.n_text <= text_at_cancel + 0 || r.completion_tokens < 500, "cancel stops text");
        CHECK(r.completion_tokens < 400, "cancelled job ran to %d tokens", r.completion_tokens);
        CHECK(r.after_done == 0, "events after the final one");
        lm_job_release(j);
        rec_free(&r);
    }
    free(want);
    lm_engine_close(e);
}

static void test_limits(void)
{
    char err[512];
    int status;
    /* context of 16: a long prompt is refused with 400; a short one stops at
     * the context end with "length" */
    struct lm_engine *e = open_engine(16, 2, 4, err, sizeof err);
    REQUIRE(e, "%s", err);
    struct rec r;
    rec_init(&r);
    /* over the context by its tokens: queued (the submitting thread does not
     * tokenize), then ended by the scheduler with a 400 ERROR */
    struct lm_job *j = submit(e, "Once upon a time there was a little girl named Lily who loved to play",
                              0, &r, &status, err, sizeof err);
    CHECK(j != NULL, "a prompt that may fit is queued: %d %s", status, err);
    if (j) {
        rec_wait(&r);
        CHECK(r.error && r.err_status == 400 && strcmp(r.err_code, "context_length_exceeded") == 0 &&
                  strstr(r.msg, "context_length is 16") && strstr(r.msg, "prompt is "),
              "overflow: error %d status %d code %s: %s", r.error, r.err_status, r.err_code, r.msg);
        CHECK(r.after_done == 0, "events after the final one");
        lm_job_release(j);
    }
    rec_free(&r);
    /* over the context whatever its tokens: refused at submit, in O(1) */
    {
        size_t n = 1 << 20;
        char *big = malloc(n + 1);
        REQUIRE(big, "oom");
        for (size_t i = 0; i < n; i++) big[i] = "abcd "[i % 5];
        big[n] = 0;
        rec_init(&r);
        j = submit(e, big, 0, &r, &status, err, sizeof err);
        CHECK(j == NULL && status == 400 && strstr(err, "prompt is at least ") && strstr(err, "(1048576 bytes)") &&
                  strstr(err, "context_length is 16"),
              "1 MiB prompt: %d %s", status, err);
        rec_free(&r);
        free(big);
    }
    run_one(e, "Once upon a time", 0, &r);
    CHECK(strcmp(r.reason, "length") == 0 && r.completion_tokens == 16 - 5 + 1,
          "context end: %s after %d tokens", r.reason, r.completion_tokens);
    rec_free(&r);
    lm_engine_close(e);

    /* queue of 1, batch of 1: a third concurrent job gets 429 */
    e = open_engine(0, 1, 1, err, sizeof err);
    REQUIRE(e, "%s", err);
    struct rec rr[6];
    struct lm_job *jj[6];
    int got429 = 0, n = 0;
    for (int i = 0; i < 6 && !got429; i++) {
        rec_init(&rr[i]);
        jj[i] = submit(e, "Once upon a time", 400, &rr[i], &status, err, sizeof err);
        if (!jj[i]) {
            got429 = status == 429 && strstr(err, "queue is full") != NULL;
            CHECK(got429, "expected 429, got %d %s", status, err);
            rec_free(&rr[i]);
        } else {
            n++;
        }
    }
    CHECK(got429, "queue never filled");
    for (int i = 0; i < n; i++)
        lm_cancel(jj[i]);
    for (int i = 0; i < n; i++) {
        rec_wait(&rr[i]);
        lm_job_release(jj[i]);
        rec_free(&rr[i]);
    }
    lm_engine_close(e);

    /* close with queued work: every job gets a final event */
    e = open_engine(0, 1, 8, err, sizeof err);
    REQUIRE(e, "%s", err);
    for (int i = 0; i < 3; i++) {
        rec_init(&rr[i]);
        jj[i] = submit(e, "Once upon a time", 300, &rr[i], &status, err, sizeof err);
        REQUIRE(jj[i], "%s", err);
    }
    lm_engine_close(e);
    for (int i = 0; i < 3; i++) {
        CHECK(rr[i].done, "job %d got no final event at close", i);
        lm_job_release(jj[i]);
        rec_free(&rr[i]);
    }
}

/* A model whose caches cannot fit is refused up front with the numbers:
 * a 2-layer model trained for 2^20 positions, asked for all of them in 256
 * sequences (256 x 2 x 2 layers x 2^20 x 64 x 2 bytes = 128 GiB in F16). */
static void test_memory(void)
{
    char path[] = "/tmp/llmpin-engine-mem-XXXXXX", err[768];
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    struct lm_llama_shape s = { .n_vocab = 300, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                                .ffn_dim = 128, .context_length = 1u << 20, .seed = 3, .type = GGUF_TT_F32 };
    REQUIRE(lm_write_random_llama(path, &s, err, sizeof err) == 0, "%s", err);
    struct lm_engine_opts o = { .path = path, .sha256 = "unpinned", .context_length = 1 << 20,
                                .threads = 1, .max_batch = 256 };
    CHECK(lm_engine_open(&o, err, sizeof err) == NULL, "a 128 GiB cache must be refused");
    CHECK(strstr(err, "KV cache 128.00 GiB") &&
          strstr(err, "256 sequences x 1048576 positions in F16") && strstr(err, "lower context_length"),
          "refusal names the numbers: %s", err);
    o.kv_f32 = 1;
    CHECK(lm_engine_open(&o, err, sizeof err) == NULL && strstr(err, "KV cache 256.00 GiB") &&
          strstr(err, "in F32") && strstr(err, "kv_cache \"f16\""), "F32 refusal: %s", err);
    /* the same file with a context that fits opens */
    o.context_length = 256;
    o.max_batch = 2;
    struct lm_engine *e = lm_engine_open(&o, err, sizeof err);
    CHECK(e != NULL, "a small cache opens: %s", err);
    if (e) {
        struct lm_info info;
        lm_engine_info(e, &info);
        CHECK(strcmp(info.kv_cache, "f32") == 0, "kv_cache %s", info.kv_cache);
    }
    lm_engine_close(e);
    unlink(path);
}

/* Every architecture serves through the engine: a random qwen3 and gemma2
 * model (the writer's vocabulary) decode greedily to the requested length,
 * and the same prompt alone and batched with another gives the same text. */
static void test_architectures(void)
{
    static const struct { const char *arch; uint32_t head_dim; } as[] = { { "qwen3", 32 }, { "gemma2", 0 }, { "falcon", 0 }, { "mpt", 0 } };
    for (size_t i = 0; i < sizeof as / sizeof as[0]; i++) {
        char path[] = "/tmp/llmpin-engine-arch-XXXXXX", err[768];
        int fd = mkstemp(path);
        REQUIRE(fd >= 0, "mkstemp");
        close(fd);
        struct lm_llama_shape s = { .n_vocab = 400, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                    .ffn_dim = 128, .context_length = 256, .seed = 9, .type = GGUF_TT_Q8_0,
                                    .arch = as[i].arch, .head_dim = as[i].head_dim, .sliding_window = 8 };
        REQUIRE(lm_write_random_llama(path, &s, err, sizeof err) == 0, "%s", err);
        struct lm_engine_opts o = { .path = path, .sha256 = "unpinned", .threads = 2, .max_batch = 4 };
        struct lm_engine *e = lm_engine_open(&o, err, sizeof err);
        REQUIRE(e, "%s: %s", as[i].arch, err);
        struct lm_info info;
        lm_engine_info(e, &info);
        CHECK(strcmp(info.architecture, as[i].arch) == 0, "architecture %s", info.architecture);
        struct rec a, b, c;
        run_one(e, "abc ab", 24, &a);
        CHECK(!a.error && a.completion_tokens == 24 && strcmp(a.reason, "length") == 0,
              "%s: %s %d tokens (%s)", as[i].arch, a.reason, a.completion_tokens, a.msg);
        rec_init(&b);
        rec_init(&c);
        int status;
        struct lm_job *jb = submit(e, "abc ab", 24, &b, &status, err, sizeof err);
        struct lm_job *jc = submit(e, "b a c", 24, &c, &status, err, sizeof err);
        REQUIRE(jb && jc, "submit: %s", err);
        rec_wait(&b);
        rec_wait(&c);
        CHECK(strcmp(a.text, b.text) == 0, "%s: alone [%s], batched [%s]", as[i].arch, a.text, b.text);
        lm_job_release(jb);
        lm_job_release(jc);
        rec_free(&a);
        rec_free(&b);
        rec_free(&c);
        lm_engine_close(e);
        unlink(path);
    }
}

int main(void)
{
    test_memory();
    test_architectures();
    test_hash();
    test_generation();
    test_limits();
    return etest_done("engine_lm");
}
