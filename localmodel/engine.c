/*
 * engine.c - lm.h: a hash-verified model, a job queue and a scheduler thread
 * that decodes all active sequences together.
 *
 * Why a single scheduler thread: the forward pass is already parallel inside
 * (the worker pool splits every matrix product), and decoding is bound by
 * reading the weights. Running B sequences in one forward pass reads the
 * weights once for all of them, so B streams cost little more than one. The
 * scheduler therefore loops:
 *
 *   admit queued jobs into free KV slots (up to max_batch);
 *   feed ONE chunk (PREFILL_CHUNK tokens, through sgemm) of the prompt of
 *   the oldest job still prefilling; when its prompt is all in, sample its
 *   first token;
 *   one decode step for every sequence that is generating; sample each with
 *   its own sampler; push the token's bytes through its lm_textout (stop
 *   strings, UTF-8) and emit the text that is ready;
 *   finish sequences that hit EOS, a stop string, max_tokens or the context
 *   end, or were cancelled.
 *
 * Prompts go in one chunk per turn so that a long prompt does not stall the
 * running streams: each of their tokens waits for at most one chunk, not for
 * a whole 2000-token prompt. Chunk boundaries are the same whatever else is
 * running, so a job's output does not depend on its neighbours.
 *
 * Chat prompts are rendered with the model's Jinja template (or a built-in
 * family, prompt.h) and encoded so that only the template's own markers
 * become control tokens; the messages' content is always plain text
 * (lm_engine_encode).
 *
 * completion_tokens counts every sampled token, including the EOS or
 * end-of-turn token that ended generation (as OpenAI's usage does).
 *
 * Jobs are reference counted: one reference for the caller (dropped by
 * lm_job_release) and one for the engine (dropped after the last emit).
 */
#include "localmodel/lm.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "localmodel/chat.h"
#include "localmodel/gguf.h"
#include "localmodel/model.h"
#include "localmodel/prompt.h"
#include "localmodel/sampler.h"
#include "localmodel/grammar.h"
#include "localmodel/toolfmt.h"
#include "localmodel/sha256.h"
#include "localmodel/tokenizer.h"

#define PREFILL_CHUNK 64
#define MAX_CONTEXT_DEFAULT 4096
#define MAX_STOP_IDS 16

struct lm_job {
    struct lm_engine *e;
    atomic_int refs;
    atomic_int cancelled;
    enum lm_job_kind kind;
    char *text;                  /* the prompt as text, until the scheduler tokenizes it */
    size_t *spans;               /* chat: message contents in text (plain, no special tokens) */
    int n_spans;
    int add_bos;                 /* LM_TOK_ADD_* the tokenizer adds around text */
    int32_t *prompt;
    int n_prompt;
    struct lm_params params;     /* stop strings point into `stops`, the bias into bias_id/bias */
    char **stops;
    int32_t *bias_id;
    float *bias;
    float *lp_raw;               /* logprobs: the step's raw logits */
    void (*emit)(void *ud, const struct lm_event *ev);
    void *ud;
    struct lm_job *next;         /* queue link */

    /* scheduler state (scheduler thread only) */
    int slot;
    int n_past;                  /* tokens in the KV cache */
    int n_gen;                   /* tokens generated */
    int32_t pending;             /* sampled, not yet fed */
    int32_t prev;                /* previous token, for lm_tok_piece */
    struct lm_sampler *sampler;
    struct lm_textout *tout;
    struct lm_grammar *grammar;  /* constrained output, or NULL */
    struct lm_gmatch *gm;        /* its matcher (scheduler thread) */
    char *trig;                  /* tool calls: the text that starts them, or NULL */
    size_t trig_len;
    int32_t trig_id;             /* a control token of that text, or -1 */
    int trig_at_start, lazy;     /* lazy: no matcher until the trigger came */
    int fed;                     /* the matcher has had this step's token (it came with the trigger) */
    char *tail;                  /* lazy: the output's last bytes that may start the trigger */
    size_t tail_n;
    double *emb_sum;             /* embedding jobs: sum of final hidden states */
    uint64_t order;              /* admission order: oldest prefills first */
};

struct lm_engine {
    char sha[65];
    char *path;
    struct gguf_file *gf;
    struct lm_model *m;
    struct lm_tokenizer *tok;
    struct lm_prompt *prompt;    /* how chat messages become the prompt */
    struct lm_vtrie *vtrie;      /* token bytes for grammar masks; built by the scheduler on first use */
    int32_t *eog_ids;            /* end-of-generation tokens, with the vtrie (where a document may end) */
    int n_eog;
    int32_t stop_ids[MAX_STOP_IDS];
    int n_stop_ids;
    int n_ctx, max_queue, max_batch;
    enum lm_kv_type kv_type;     /* of every slot's cache */
    size_t max_piece;            /* input bytes one token can cover, at most */
    enum lm_isa isa;

    struct lm_pool *pool;
    struct lm_ctx *ctx;
    struct lm_kv **slots;
    struct lm_job **active;      /* [max_batch], NULL = free slot */
    float *logits;               /* [max_batch][n_vocab] */
    float *hidden;               /* [PREFILL_CHUNK][dim] */

    pthread_t sched;
    int sched_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct lm_job *qhead, *qtail;
    int qlen;
    uint64_t admitted;           /* jobs admitted so far (scheduler) */
    int stop;
};

/* ---- jobs --------------------------------------------------------------- */

static void job_unref(struct lm_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    free(j->prompt);
    free(j->text);
    free(j->spans);
    if (j->stops) {
        for (int i = 0; i < j->params.n_stop; i++)
            free(j->stops[i]);
        free(j->stops);
    }
    lm_sampler_free(j->sampler);
    lm_textout_free(j->tout);
    lm_gmatch_free(j->gm);
    lm_grammar_free(j->grammar);
    free(j->trig);
    free(j->tail);
    free(j->bias_id);
    free(j->bias);
    free(j->lp_raw);
    free(j->emb_sum);
    free(j);
}

void lm_cancel(struct lm_job *j)
{
    if (j)
        atomic_store(&j->cancelled, 1);
}

void lm_job_release(struct lm_job *j)
{
    if (j)
        job_unref(j);
}

static void emit_text(struct lm_job *j)
{
    if (atomic_load(&j->cancelled))
        return;     /* after lm_cancel only the final event is delivered */
    size_t len;
    const char *s = lm_textout_take(j->tout, &len);
    if (len > 0) {
        struct lm_event ev = { .type = LM_EV_TEXT, .text = s, .len = len };
        j->emit(j->ud, &ev);
    }
}

static void emit_done(struct lm_job *j, const char *reason)
{
    struct lm_event ev = { .type = LM_EV_DONE, .finish_reason = reason,
                           .prompt_tokens = j->n_prompt, .completion_tokens = j->n_gen };
    j->emit(j->ud, &ev);
}

static void emit_error(struct lm_job *j, const char *msg)
{
    struct lm_event ev = { .type = LM_EV_ERROR, .text = msg, .len = strlen(msg) };
    j->emit(j->ud, &ev);
}

/* The request's fault, found by the scheduler: a 400 with this code. */
static void emit_refusal(struct lm_job *j, const char *code, const char *msg)
{
    struct lm_event ev = { .type = LM_EV_ERROR, .text = msg, .len = strlen(msg), .status = 400,
                           .code = code };
    j->emit(j->ud, &ev);
}

static int tokenize(struct lm_engine *e, const char *text, int add_bos, int special,
                    const size_t *spans, int n_spans, int32_t **out, char *err, size_t errlen);

/* ---- scheduler ---------------------------------------------------------- */

/* Remove a job from its slot and drop the engine's reference. */
static void retire(struct lm_engine *e, struct lm_job *j)
{
    if (j->slot >= 0)
        e->active[j->slot] = NULL;
    j->slot = -1;
    job_unref(j);
}

static void finish(struct lm_engine *e, struct lm_job *j, const char *reason)
{
    if (j->tout) {
        lm_textout_finish(j->tout);
        emit_text(j);
    }
    emit_done(j, reason);
    retire(e, j);
}

static int is_stop_id(const struct lm_engine *e, int32_t id)
{
    if (lm_tok_is_eog(e->tok, id))
        return 1;
    for (int i = 0; i < e->n_stop_ids; i++)
        if (e->stop_ids[i] == id)
            return 1;
    return 0;
}

/* Sample the next token of j from logits, emit its text, and decide whether
 * the sequence goes on. Returns 1 if it continues (j->pending set). */
/* Constrained output: every token the grammar refuses from here gets
 * -inf; the end-of-text tokens only where the document is complete.
 * Returns 0, -1 when nothing may follow, -2 when the matcher is out of
 * memory (either way the caller ends the job). */
static int apply_grammar(struct lm_engine *e, struct lm_job *j, float *logits)
{
    int n_allowed, can_end;
    const uint32_t *mask = lm_gmatch_mask(j->gm, &n_allowed, &can_end);
    if (!mask)
        return -2;
    int nv = e->m->hp.n_vocab, words = (nv + 31) / 32;
    float eog_logit[64], trig_logit = j->trig_id >= 0 ? logits[j->trig_id] : 0.0f;
    int n_eog = e->n_eog < 64 ? e->n_eog : 64;
    for (int i = 0; i < n_eog; i++)
        eog_logit[i] = logits[e->eog_ids[i]];
    for (int w = 0; w < words; w++) {
        uint32_t bits = mask[w];
        if (bits == 0xffffffffu)
            continue;
        int base = w * 32, end = base + 32 < nv ? base + 32 : nv;
        for (int id = base; id < end; id++)
            if (!((bits >> (id - base)) & 1))
                logits[id] = -INFINITY;
    }
    /* the vocabulary trie leaves out end-of-generation tokens; the extra
     * stop ids a chat family adds may be text there: never mid-document */
    for (int i = 0; i < e->n_stop_ids; i++)
        logits[e->stop_ids[i]] = -INFINITY;
    for (int i = 0; can_end && i < n_eog; i++)
        logits[e->eog_ids[i]] = eog_logit[i];   /* the model's own odds of ending here */
    /* a control token that writes the trigger (Mistral's [TOOL_CALLS]) is not
     * in the trie: allowed where the grammar takes its text */
    int trig_ok = 0;
    if (j->trig_id >= 0) {
        int r = lm_gmatch_try(j->gm, j->trig, j->trig_len);
        if (r < 0)
            return -2;
        if ((trig_ok = r == 1))
            logits[j->trig_id] = trig_logit;
    }
    return n_allowed > 0 || can_end || trig_ok ? 0 : -1;
}

/* logprobs: the chosen token's log-probability and the best alternatives,
 * from the raw logits saved before sampling changed them. */
static void emit_logprob(struct lm_engine *e, struct lm_job *j, int32_t id, const char *piece, size_t len)
{
    const float *raw = j->lp_raw;
    int nv = e->m->hp.n_vocab, k = j->params.top_logprobs;
    float mx = -INFINITY;
    for (int i = 0; i < nv; i++)
        if (raw[i] > mx)
            mx = raw[i];
    double sum = 0;
    for (int i = 0; i < nv; i++)
        sum += exp((double)raw[i] - mx);
    float lse = mx + (float)log(sum);
    /* the k best by logit, lowest id on ties: insertion into a short list */
    int32_t best[20];
    int nb = 0;
    for (int i = 0; i < nv && k > 0; i++) {
        if (nb == k && !(raw[i] > raw[best[nb - 1]]))
            continue;
        int p = nb < k ? nb++ : nb - 1;
        while (p > 0 && raw[i] > raw[best[p - 1]]) {
            best[p] = best[p - 1];
            p--;
        }
        best[p] = i;
    }
    struct lm_top top[20];
    for (int i = 0; i < nb; i++) {
        top[i].text = lm_tok_piece(e->tok, j->prev, best[i], &top[i].len);
        top[i].logprob = raw[best[i]] - lse;
    }
    struct lm_event ev = { .type = LM_EV_LOGPROB, .text = piece, .len = len, .logprob = raw[id] - lse,
                           .top = top, .n_top = nb };
    if (!atomic_load(&j->cancelled))
        j->emit(j->ud, &ev);
}

/* The grammar's matcher for j (the vocabulary trie is built on first use). */
static struct lm_gmatch *new_matcher(struct lm_engine *e, struct lm_job *j)
{
    if (!e->vtrie) {
        int nv = e->m->hp.n_vocab;
        e->n_eog = 0;
        free(e->eog_ids);
        if (!(e->eog_ids = malloc(64 * sizeof *e->eog_ids)))
            return NULL;
        for (int id = 0; id < nv && e->n_eog < 64; id++)
            if (lm_tok_is_eog(e->tok, id))
                e->eog_ids[e->n_eog++] = id;
        e->vtrie = lm_vtrie_new(e->tok);
    }
    return e->vtrie ? lm_gmatch_new(j->grammar, e->vtrie) : NULL;
}

/* The bytes token id writes: a control token that is the trigger writes it. */
static const char *token_piece(struct lm_engine *e, struct lm_job *j, int32_t id, size_t *len)
{
    if (id == j->trig_id) {
        *len = j->trig_len;
        return j->trig;
    }
    return lm_tok_piece(e->tok, j->prev, id, len);
}

/* Lazy grammar: would token id start the tool calls? If so the matcher
 * begins at the trigger and must take everything from there (1 when it
 * refuses: the caller draws another token). 0 when the token may come,
 * -1 on out of memory. */
static int trigger_step(struct lm_engine *e, struct lm_job *j, int32_t id)
{
    size_t len;
    const char *piece = token_piece(e, j, id, &len);
    size_t n = j->tail_n + len;
    char *buf = malloc(n + 1);
    if (!buf)
        return -1;
    if (j->tail_n)
        memcpy(buf, j->tail, j->tail_n);
    memcpy(buf + j->tail_n, piece, len);
    long at = lm_trigger_find(buf, n, j->trig, j->trig_at_start);
    if (at >= 0) {
        struct lm_gmatch *gm = new_matcher(e, j);
        if (!gm) {
            free(buf);
            return -1;
        }
        if (lm_gmatch_feed(gm, buf + at, n - (size_t)at) != 0) {
            lm_gmatch_free(gm);
            free(buf);
            return 1;
        }
        j->gm = gm;
        j->fed = 1;
    }
    if (at != -1) {                 /* the calls began, or (at_start) cannot any more */
        j->lazy = 0;
        free(buf);
        free(j->tail);
        j->tail = NULL;
        j->tail_n = 0;
        return 0;
    }
    size_t start = 0;
    if (j->trig_at_start)           /* whitespace, then a beginning of the trigger */
        while (start < n && (buf[start] == ' ' || buf[start] == '\n' || buf[start] == '\r' || buf[start] == '\t'))
            start++;
    else if (n >= j->trig_len)
        start = n - (j->trig_len - 1);
    memmove(buf, buf + start, n - start);
    free(j->tail);
    j->tail = buf;
    j->tail_n = n - start;
    return 0;
}

static int advance(struct lm_engine *e, struct lm_job *j, float *logits)
{
    if (j->lp_raw)
        memcpy(j->lp_raw, logits, (size_t)e->m->hp.n_vocab * sizeof *logits);
    if (j->gm) {   /* a closed document ended the job when its last token came */
        int rc = apply_grammar(e, j, logits);
        if (rc != 0) {
            emit_error(j, rc == -2 ? "constrained decoding: the grammar matcher ran out of memory"
                                   : "constrained decoding: no token of the vocabulary can continue the document");
            retire(e, j);
            return 0;
        }
    }
    int32_t id = lm_sampler_sample(j->sampler, logits);
    if (j->lazy) {
        /* a token that starts the calls in a way their grammar refuses is
         * not taken: the next best is drawn instead */
        int rc = 0, tries = 0;
        while (!is_stop_id(e, id) && (rc = trigger_step(e, j, id)) == 1 && tries++ < 32) {
            logits[id] = -INFINITY;
            id = lm_sampler_sample(j->sampler, logits);
        }
        if (!is_stop_id(e, id) && rc != 0) {
            emit_error(j, rc < 0 ? "out of memory"
                                 : "constrained decoding: no token of the vocabulary starts the tool calls validly");
            retire(e, j);
            return 0;
        }
    }
    j->n_gen++;     /* usage counts the EOS / end-of-turn token too, as OpenAI does */
    if (is_stop_id(e, id)) {
        finish(e, j, "stop");
        return 0;
    }
    lm_sampler_accept(j->sampler, id);
    size_t len;
    const char *piece = token_piece(e, j, id, &len);
    if (j->lp_raw)
        emit_logprob(e, j, id, piece, len);
    j->prev = id;
    if (j->gm && !j->fed && lm_gmatch_feed(j->gm, piece, len) != 0) {
        emit_error(j, "constrained decoding: the sampled token does not continue the document");
        retire(e, j);
        return 0;
    }
    j->fed = 0;
    if (lm_textout_push(j->tout, piece, len)) {
        emit_text(j);
        emit_done(j, "stop");
        retire(e, j);
        return 0;
    }
    emit_text(j);
    if (j->gm && lm_gmatch_done(j->gm)) {   /* the document is closed: nothing may follow */
        finish(e, j, "stop");
        return 0;
    }
    if ((j->params.max_tokens > 0 && j->n_gen >= j->params.max_tokens) || j->n_past >= e->n_ctx) {
        finish(e, j, "length");
        return 0;
    }
    j->pending = id;
    return 1;
}

/* Set up a newly admitted job (sampler, text output, embedding sums). On
 * failure or cancel the job gets its final event and leaves its slot. */
static void start_job(struct lm_engine *e, struct lm_job *j)
{
    if (atomic_load(&j->cancelled)) {
        emit_error(j, "cancelled");
        retire(e, j);
        return;
    }
    /* the prompt is tokenized here, on the scheduler thread: a long one
     * costs the running sequences one pause, never the event loop */
    char err[200];
    int n = tokenize(e, j->text, j->add_bos, j->kind == LM_JOB_CHAT, j->spans, j->n_spans,
                     &j->prompt, err, sizeof err);
    free(j->text);
    free(j->spans);
    j->text = NULL;
    j->spans = NULL;
    if (n < 0) {
        emit_error(j, err);
        retire(e, j);
        return;
    }
    j->n_prompt = n;
    if (n == 0) {
        emit_refusal(j, "invalid_value", "prompt is empty");
        retire(e, j);
        return;
    }
    if (n > e->n_ctx) {
        snprintf(err, sizeof err, "prompt is %d tokens; context_length is %d", n, e->n_ctx);
        emit_refusal(j, "context_length_exceeded", err);
        retire(e, j);
        return;
    }
    if (j->kind == LM_JOB_EMBED) {
        j->emb_sum = calloc((size_t)e->m->hp.dim, sizeof *j->emb_sum);
        if (!j->emb_sum) {
            emit_error(j, "out of memory");
            retire(e, j);
        }
        return;
    }
    j->sampler = lm_sampler_new(&j->params, e->m->hp.n_vocab);
    j->tout = lm_textout_new((const char *const *)j->stops, j->params.n_stop);
    if (j->params.logprobs && !(j->lp_raw = malloc((size_t)e->m->hp.n_vocab * sizeof *j->lp_raw))) {
        emit_error(j, "out of memory");
        retire(e, j);
        return;
    }
    if (j->grammar && !j->lazy) {
        j->gm = new_matcher(e, j);
        if (!j->gm) {
            emit_error(j, "out of memory");
            retire(e, j);
            return;
        }
    }
    if (!j->sampler || !j->tout) {
        emit_error(j, "out of memory");
        retire(e, j);
    }
}

/* An embedding job's prompt is all in: emit the L2-normalised mean of its
 * final hidden states, then DONE. */
static void finish_embedding(struct lm_engine *e, struct lm_job *j)
{
    int dim = e->m->hp.dim;
    float *out = malloc(sizeof(float) * (size_t)dim);
    if (!out) {
        emit_error(j, "out of memory");
        retire(e, j);
        return;
    }
    double norm = 0;
    for (int d = 0; d < dim; d++) {
        j->emb_sum[d] /= j->n_prompt;
        norm += j->emb_sum[d] * j->emb_sum[d];
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0.0;
    for (int d = 0; d < dim; d++)
        out[d] = (float)(j->emb_sum[d] * norm);
    struct lm_event ev = { .type = LM_EV_EMBEDDING, .embedding = out, .n_embd = dim,
                           .prompt_tokens = j->n_prompt };
    j->emit(j->ud, &ev);
    emit_done(j, "stop");
    free(out);
    retire(e, j);
}

/* Feed the next PREFILL_CHUNK prompt tokens of j into its KV cache (for
 * embedding jobs, add up the final hidden states). After the last chunk, a
 * generating job samples its first token and joins the decode steps. */
static void prefill_chunk(struct lm_engine *e, struct lm_job *j)
{
    int32_t toks[PREFILL_CHUNK];
    int pos[PREFILL_CHUNK];
    struct lm_kv *kvs[PREFILL_CHUNK];
    uint8_t want[PREFILL_CHUNK];
    char err[256];
    int dim = e->m->hp.dim;
    int start = j->n_past;
    int n = j->n_prompt - start < PREFILL_CHUNK ? j->n_prompt - start : PREFILL_CHUNK;
    for (int i = 0; i < n; i++) {
        toks[i] = j->prompt[start + i];
        pos[i] = start + i;
        kvs[i] = e->slots[j->slot];
        want[i] = (j->emb_sum == NULL && start + i == j->n_prompt - 1);
    }
    struct lm_batch b = { n, toks, pos, kvs, want, j->emb_sum ? NULL : e->logits,
                          j->emb_sum ? e->hidden : NULL, 1 };
    if (lm_forward(e->ctx, &b, err, sizeof err) < 0) {
        emit_error(j, err);
        retire(e, j);
        return;
    }
    j->n_past += n;
    if (j->emb_sum)
        for (int i = 0; i < n; i++)
            for (int d = 0; d < dim; d++)
                j->emb_sum[d] += e->hidden[(size_t)i * dim + d];
    if (j->n_past < j->n_prompt)
        return;
    if (j->emb_sum) {
        finish_embedding(e, j);
        return;
    }
    j->prev = j->prompt[j->n_prompt - 1];
    advance(e, j, e->logits);
}

/* Final events for cancelled jobs, wherever they are (prefill or decode). */
static void sweep_cancelled(struct lm_engine *e)
{
    for (int s = 0; s < e->max_batch; s++) {
        struct lm_job *j = e->active[s];
        if (j && atomic_load(&j->cancelled)) {
            emit_error(j, "cancelled");
            retire(e, j);
        }
    }
}

/* The active job admitted first among those whose prompt is not all in. */
static struct lm_job *next_prefill(struct lm_engine *e)
{
    struct lm_job *best = NULL;
    for (int s = 0; s < e->max_batch; s++) {
        struct lm_job *j = e->active[s];
        if (j && j->n_past < j->n_prompt && (!best || j->order < best->order))
            best = j;
    }
    return best;
}

/* One decode step for every active sequence whose prompt is all in. */
static void decode_step(struct lm_engine *e)
{
    int32_t toks[256];
    int pos[256];
    struct lm_kv *kvs[256];
    struct lm_job *jobs[256];
    int n = 0;
    char err[256];
    for (int s = 0; s < e->max_batch; s++) {
        struct lm_job *j = e->active[s];
        if (!j || j->n_past < j->n_prompt)
            continue;
        toks[n] = j->pending;
        pos[n] = j->n_past;
        kvs[n] = e->slots[s];
        jobs[n] = j;
        n++;
    }
    if (n == 0)
        return;
    struct lm_batch b = { n, toks, pos, kvs, NULL, e->logits, NULL, 0 };
    if (lm_forward(e->ctx, &b, err, sizeof err) < 0) {
        for (int i = 0; i < n; i++) {
            emit_error(jobs[i], err);
            retire(e, jobs[i]);
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        jobs[i]->n_past++;
        advance(e, jobs[i], e->logits + (size_t)i * e->m->hp.n_vocab);
    }
}

/* Each turn: admit queued jobs into free slots, one prompt chunk of the
 * oldest job still prefilling, then one decode step for the sequences that
 * are generating. A long prompt thus costs the running streams one chunk
 * per token, never the whole prompt at once. */
static void *scheduler_main(void *arg)
{
    struct lm_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        struct lm_job *admitted[256];
        int n_new = 0, n_active = 0;
        for (int s = 0; s < e->max_batch; s++)
            if (e->active[s])
                n_active++;
        for (int s = 0; s < e->max_batch && e->qhead; s++) {
            if (e->active[s])
                continue;
            struct lm_job *j = e->qhead;
            e->qhead = j->next;
            if (!e->qhead)
                e->qtail = NULL;
            e->qlen--;
            j->next = NULL;
            j->slot = s;
            j->order = e->admitted++;
            e->active[s] = j;
            admitted[n_new++] = j;
        }
        if (n_new == 0 && n_active == 0) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        for (int i = 0; i < n_new; i++)
            start_job(e, admitted[i]);
        sweep_cancelled(e);
        struct lm_job *p = next_prefill(e);
        if (p)
            prefill_chunk(e, p);
        decode_step(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- submit ------------------------------------------------------------- */

/* Encode text. With spans (a rendered chat prompt), special tokens are
 * recognised only outside the message contents [spans[2k], spans[2k+1]);
 * without, text is plain (special = 0) or fully parsed (special = 1). */
static int tokenize(struct lm_engine *e, const char *text, int add_bos, int special,
                    const size_t *spans, int n_spans, int32_t **out, char *err, size_t errlen)
{
    size_t len = strlen(text);
    int cap = (int)(len < 1000000 ? len : 1000000) + 8;
    int32_t *ids = NULL;
    int n = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *bigger = realloc(ids, sizeof(int32_t) * (size_t)cap);
        if (!bigger) {
            free(ids);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        ids = bigger;
        if (spans || special)
            n = lm_tok_encode_spans(e->tok, text, len, add_bos, spans, n_spans, ids, cap);
        else
            n = lm_tok_encode(e->tok, text, len, add_bos, 0, ids, cap);
        if (n <= cap)
            break;
        cap = n;
    }
    if (n < 0 || n > cap) {
        free(ids);
        snprintf(err, errlen, "cannot tokenize the prompt");
        return -1;
    }
    *out = ids;
    return n;
}

/* The prompt of a request as token ids: chat messages rendered with the
 * model's template, the template's markers as special tokens and the
 * messages' content as plain text (a user who writes "<|im_end|>" or "</s>"
 * gets those characters, not the control token); completion and embedding
 * prompts are plain text. */
int lm_engine_encode(struct lm_engine *e, const struct lm_job_req *req, int32_t **ids,
                     char *err, size_t errlen)
{
    *ids = NULL;
    if (req->kind != LM_JOB_CHAT)
        return tokenize(e, req->prompt ? req->prompt : "", lm_tok_add_special(e->tok), 0, NULL, 0,
                        ids, err, errlen);
    size_t *spans = NULL;
    int n_spans = 0, add_bos, refused;
    char *text = lm_prompt_render(e->prompt, req->messages, req->n_messages, &spans, &n_spans,
                                  &add_bos, &refused, err, errlen);
    if (!text)
        return -1;
    int n = tokenize(e, text, add_bos, 1, spans, n_spans, ids, err, errlen);
    free(text);
    free(spans);
    return n;
}

const struct lm_tokenizer *lm_engine_tokenizer(const struct lm_engine *e) { return e->tok; }
const struct lm_tool_style *lm_engine_tool_style(const struct lm_engine *e) { return lm_prompt_tool_style(e->prompt); }

char *lm_engine_render(const struct lm_engine *e, const struct lm_message *m, int n,
                       const char *tools_json, int add_generation_prompt, size_t **spans,
                       int *n_spans, int *add_bos, int *refused, char *err, size_t errlen)
{
    return lm_prompt_render_ex(e->prompt, m, n, tools_json, add_generation_prompt, spans, n_spans,
                               add_bos, refused, err, errlen);
}

struct lm_job *lm_submit(struct lm_engine *e, const struct lm_job_req *req,
                         int *http_status, const char **code, char *err, size_t errlen)
{
    const char *code_dummy;
    if (!code)
        code = &code_dummy;
    *http_status = 0;
    *code = NULL;
    if (!req->emit) {
        lm_grammar_free(req->grammar);
        *http_status = 500;
        snprintf(err, errlen, "job has no emit callback");
        return NULL;
    }
    struct lm_job *j = calloc(1, sizeof *j);
    if (!j) {
        lm_grammar_free(req->grammar);
        *http_status = 500;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancelled, 0);
    j->e = e;
    j->kind = req->kind;
    j->emit = req->emit;
    j->ud = req->ud;
    j->slot = -1;
    j->grammar = req->grammar;   /* ours now, freed with the job */
    j->trig_id = -1;
    if (req->grammar && req->trigger && *req->trigger) {
        if (!(j->trig = strdup(req->trigger)))
            goto oom;
        j->trig_len = strlen(j->trig);
        j->trig_at_start = req->trigger_at_start;
        j->lazy = req->lazy;
        int id = lm_tok_find(e->tok, j->trig);
        size_t plen = 1;
        if (id >= 0)
            lm_tok_piece(e->tok, -1, id, &plen);
        if (id >= 0 && plen == 0)
            j->trig_id = id;     /* a control token: it writes nothing of its own */
    }
    j->params = req->params;
    j->params.stop = NULL;
    j->params.n_stop = 0;
    j->params.bias_id = NULL;
    j->params.bias = NULL;
    j->params.n_bias = 0;
    if (req->params.n_bias > 0 && req->params.bias_id && req->params.bias) {
        j->bias_id = malloc((size_t)req->params.n_bias * sizeof *j->bias_id);
        j->bias = malloc((size_t)req->params.n_bias * sizeof *j->bias);
        if (!j->bias_id || !j->bias)
            goto oom;
        memcpy(j->bias_id, req->params.bias_id, (size_t)req->params.n_bias * sizeof *j->bias_id);
        memcpy(j->bias, req->params.bias, (size_t)req->params.n_bias * sizeof *j->bias);
        j->params.bias_id = j->bias_id;
        j->params.bias = j->bias;
        j->params.n_bias = req->params.n_bias;
    }
    if (j->params.top_logprobs < 0)
        j->params.top_logprobs = 0;
    if (j->params.top_logprobs > 20)
        j->params.top_logprobs = 20;

    /* stop strings: the request's, then the built-in family's */
    const char *const *fam = req->kind == LM_JOB_CHAT ? lm_prompt_stops(e->prompt) : NULL;
    int n_fam = 0;
    while (fam && fam[n_fam])
        n_fam++;
    int n_req = req->params.stop && req->params.n_stop > 0 ? req->params.n_stop : 0;
    if (n_req + n_fam > 0) {
        j->stops = calloc((size_t)(n_req + n_fam), sizeof *j->stops);
        if (!j->stops)
            goto oom;
        for (int i = 0; i < n_req + n_fam; i++) {
            const char *s = i < n_req ? req->params.stop[i] : fam[i - n_req];
            if (!s || !*s)
                continue;
            if (!(j->stops[j->params.n_stop++] = strdup(s)))
                goto oom;
        }
    }

    /* the text now (rendering is a copy), the tokens on the scheduler
     * thread; what cannot fit whatever its tokens is refused at once: no
     * token covers more than max_piece bytes of input */
    j->add_bos = req->kind == LM_JOB_CHAT ? lm_tok_add_bos(e->tok) : lm_tok_add_special(e->tok);
    if (req->kind == LM_JOB_CHAT) {
        int refused;
        j->text = lm_prompt_render_ex(e->prompt, req->messages, req->n_messages, req->tools_json, 1, &j->spans,
                                      &j->n_spans, &j->add_bos, &refused, err, errlen);
        if (!j->text) {
            *http_status = 400;
            *code = refused ? "template_refused" : "invalid_value";
            job_unref(j);
            return NULL;
        }
    } else if (!(j->text = strdup(req->prompt ? req->prompt : ""))) {
        goto oom;
    }
    size_t len = strlen(j->text);
    if (len / e->max_piece > (size_t)e->n_ctx) {
        *http_status = 400;
        *code = "context_length_exceeded";
        snprintf(err, errlen, "prompt is at least %zu tokens (%zu bytes); context_length is %d",
                 len / e->max_piece, len, e->n_ctx);
        job_unref(j);
        return NULL;
    }
    if (len == 0 && !j->add_bos) {
        *http_status = 400;
        *code = "invalid_value";
        snprintf(err, errlen, "prompt is empty");
        job_unref(j);
        return NULL;
    }

    pthread_mutex_lock(&e->mu);
    if (e->stop) {
        pthread_mutex_unlock(&e->mu);
        *http_status = 503;
        snprintf(err, errlen, "local model is shutting down");
        job_unref(j);
        return NULL;
    }
    if (e->qlen >= e->max_queue) {
        int q = e->qlen;
        pthread_mutex_unlock(&e->mu);
        *http_status = 429;
        snprintf(err, errlen, "local model queue is full (%d jobs waiting)", q);
        job_unref(j);
        return NULL;
    }
    atomic_fetch_add(&j->refs, 1);     /* the engine's reference */
    if (e->qtail)
        e->qtail->next = j;
    else
        e->qhead = j;
    e->qtail = j;
    e->qlen++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return j;
oom:
    *http_status = 500;
    snprintf(err, errlen, "out of memory");
    job_unref(j);
    return NULL;
}

/* ---- open / close ------------------------------------------------------- */

struct lm_engine *lm_engine_open(const struct lm_engine_opts *o, char *err, size_t errlen)
{
    if (!o || !o->path || !o->sha256) {
        snprintf(err, errlen, "local model: path and sha256 are required");
        return NULL;
    }
    struct lm_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->path = strdup(o->path);
    if (!e->path) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    /* 1. the hash, before anything in the file is trusted */
    int unpinned = strcmp(o->sha256, "unpinned") == 0;
    if (!unpinned && !lm_sha256_hex_valid(o->sha256)) {
        snprintf(err, errlen, "%s: sha256 must be 64 hex digits or \"unpinned\", got \"%.80s\"",
                 o->path, o->sha256);
        goto fail;
    }
    if (lm_sha256_file(o->path, e->sha, NULL, NULL, err, errlen) < 0)
        goto fail;
    if (unpinned) {
        fprintf(stderr, "llmpin: warning: local model %s is unpinned; its SHA-256 is %s\n",
                o->path, e->sha);
    } else if (!lm_sha256_hex_equal(o->sha256, e->sha)) {
        char want[65];
        lm_sha256_hex_normalize(o->sha256, want);
        snprintf(err, errlen, "%s: SHA-256 mismatch: expected %s, got %s", o->path, want, e->sha);
        goto fail;
    }

    /* 2. the file, weights, tokenizer, chat prompt */
    if (gguf_open(o->path, &e->gf, err, errlen) < 0)
        goto fail;
    if (lm_model_load(e->gf, &e->m, err, errlen) < 0)
        goto fail;
    e->tok = lm_tok_from_gguf(e->gf, err, errlen);
    if (!e->tok)
        goto fail;
    if (lm_tok_n_vocab(e->tok) != e->m->hp.n_vocab) {
        snprintf(err, errlen, "%s: tokenizer has %d tokens but the model's vocabulary is %d",
                 o->path, lm_tok_n_vocab(e->tok), e->m->hp.n_vocab);
        goto fail;
    }
    char warn[800];
    e->prompt = lm_prompt_new(e->gf, e->tok, o->chat_template, o->chat_template_file,
                              o->chat_template_name, warn, sizeof warn, err, errlen);
    if (!e->prompt)
        goto fail;
    if (warn[0])
        fprintf(stderr, "llmpin: warning: %s\n", warn);
    /* the most input bytes one token can stand for: its text (SentencePiece
     * writes a space as the 3-byte U+2581, so the text is never shorter than
     * the input it covers), or one UTF-8 character for an unknown one */
    e->max_piece = 4;
    for (int id = 0; id < lm_tok_n_vocab(e->tok); id++) {
        size_t n = 0;
        lm_tok_text(e->tok, id, &n);
        if (n > e->max_piece)
            e->max_piece = n;
    }
    for (const char *const *s = lm_prompt_stops(e->prompt); s && *s && e->n_stop_ids < MAX_STOP_IDS; s++) {
        int id = lm_tok_find(e->tok, *s);
        if (id >= 0)
            e->stop_ids[e->n_stop_ids++] = id;
    }

    /* 3. sizes, threads, buffers */
    int train = e->m->hp.n_ctx_train;
    e->n_ctx = o->context_length > 0 ? o->context_length : (train < MAX_CONTEXT_DEFAULT ? train : MAX_CONTEXT_DEFAULT);
    if (e->n_ctx > train) {
        fprintf(stderr, "llmpin: warning: %s: context_length %d exceeds the model's %d; using %d\n",
                o->path, e->n_ctx, train, train);
        e->n_ctx = train;
    }
    e->max_queue = o->max_queue > 0 ? o->max_queue : 64;
    e->max_batch = o->max_batch > 0 ? o->max_batch : 8;
    if (e->max_batch > 256)
        e->max_batch = 256;
    e->kv_type = o->kv_f32 ? LM_KV_F32 : LM_KV_F16;
    {
        /* weights stay mapped: the tensor data must fit beside every
         * sequence's full cache, or the machine pages the model in and out */
        uint64_t wbytes = 0;
        for (uint64_t i = 0; i < e->gf->n_tensors; i++)
            wbytes += e->gf->tensors[i].nbytes;
        char e2[400];
        if (lm_model_fits(e->m, wbytes, e->n_ctx, e->max_batch, e->kv_type, lm_mem_total(), e2,
                          sizeof e2) < 0) {
            snprintf(err, errlen, "%s: %s", o->path, e2);
            goto fail;
        }
    }
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if (threads > 256)
        threads = 256;
    e->isa = lm_isa_detect();
    openblas_set_num_threads(1);    /* our pool splits the work; see bench/lm */
    e->pool = lm_pool_new(threads, err, errlen);
    if (!e->pool)
        goto fail;
    int max_tokens = e->max_batch > PREFILL_CHUNK ? e->max_batch : PREFILL_CHUNK;
    e->ctx = lm_ctx_new(e->m, e->pool, max_tokens, e->n_ctx, e->isa, err, errlen);
    if (!e->ctx)
        goto fail;
    e->slots = calloc((size_t)e->max_batch, sizeof *e->slots);
    e->active = calloc((size_t)e->max_batch, sizeof *e->active);
    e->logits = malloc(sizeof(float) * (size_t)e->max_batch * (size_t)e->m->hp.n_vocab);
    e->hidden = malloc(sizeof(float) * PREFILL_CHUNK * (size_t)e->m->hp.dim);
    if (!e->slots || !e->active || !e->logits || !e->hidden) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int s = 0; s < e->max_batch; s++) {
        e->slots[s] = lm_kv_new(e->m, e->n_ctx, e->kv_type, err, errlen);
        if (!e->slots[s])
            goto fail;
    }
    int rc = pthread_create(&e->sched, NULL, scheduler_main, e);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the scheduler thread: %s", strerror(rc));
        goto fail;
    }
    e->sched_started = 1;
    return e;
fail:
    lm_engine_close(e);
    return NULL;
}

void lm_engine_close(struct lm_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->sched_started)
        pthread_join(e->sched, NULL);
    /* the scheduler has exited: nothing else touches the queue or slots */
    while (e->qhead) {
        struct lm_job *j = e->qhead;
        e->qhead = j->next;
        emit_error(j, "local model engine closed");
        job_unref(j);
    }
    if (e->active)
        for (int s = 0; s < e->max_batch; s++)
            if (e->active[s]) {
                emit_error(e->active[s], "local model engine closed");
                retire(e, e->active[s]);
            }
    if (e->slots)
        for (int s = 0; s < e->max_batch; s++)
            lm_kv_free(e->slots[s]);
    free(e->slots);
    free(e->active);
    free(e->logits);
    free(e->hidden);
    lm_ctx_free(e->ctx);
    lm_pool_free(e->pool);
    lm_vtrie_free(e->vtrie);
    free(e->eog_ids);
    lm_tok_free(e->tok);
    lm_model_free(e->m);
    gguf_close(e->gf);
    lm_prompt_free(e->prompt);
    free(e->path);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

void lm_engine_info(const struct lm_engine *e, struct lm_info *out)
{
    out->sha256 = e->sha;
    out->architecture = lm_arch_name(e->m->hp.arch);
    out->kv_cache = e->kv_type == LM_KV_F16 ? "f16" : "f32";
    out->chat_template = lm_prompt_name(e->prompt);
    out->n_params = e->m->n_params;
    out->context_length = e->n_ctx;
    out->n_vocab = e->m->hp.n_vocab;
    out->n_embd = e->m->hp.dim;
}
