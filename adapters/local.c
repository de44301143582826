/*
 * local.c - the local adapter. See local.h.
 *
 * Thread hand-off: the engine calls emit() on a worker thread. emit copies
 * the event into the call's queue under the call's mutex and wakes the loop
 * with event_active(). The loop drains the queue and turns events into
 * OpenAI bytes for the proxy.
 *
 * A call has two owners: the loop side (until the final event is handled or
 * the request is cancelled) and the engine side (until the engine's last
 * emit, which is always DONE or ERROR). The last owner frees it; after a
 * cancel the engine side no longer touches the loop's event.
 */
#include "adapters/local.h"
#include "adapters/local_int.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "localmodel/lm.h"
#include "localmodel/grammar.h"
#include "localmodel/toolfmt.h"

struct local_model {
    struct event_base *base;
    struct lm_engine *eng;
    char *name, *path, *sha256, *cfg_sha, *tmpl, *tmpl_file, *tmpl_name;
    int ctx, threads, max_queue, max_batch;
    char fingerprint[32];
};

struct qev {
    enum lm_ev_type type;
    char *text;
    size_t len;
    const char *finish;
    int prompt_tokens, completion_tokens;
    float *emb;
    int n_embd;
    int status;                 /* ERROR: 400 = the request's fault */
    const char *code;           /* static string, with status 400 */
    int index;                  /* the choice it belongs to */
    struct qev *next;
};

struct local_call;

/* A tool call read from a choice's answer (non-stream: sent at the end). */
struct tcall {
    char id[40];
    struct buf name, args;
};

/* One of the n choices of a chat or completion request: its own job, text
 * (non-stream), logprobs not yet sent, and with tools the reader of its
 * answer and the calls found. Embeddings use choice 0. */
struct choice {
    struct local_call *c;
    int index;
    struct lm_job *job;
    struct buf text;
    struct buf lp;
    const char *finish;
    struct lm_tscan *scan;      /* tools: the answer's calls are read from its text */
    struct tcall *calls;
    int n_calls;
    int stopped;                /* the consumer stopped while a call's bytes went out */
};

struct local_call {
    struct local_model *m;
    pthread_mutex_t mu;
    int refs;                   /* loop side + engine side */
    int cancelled;
    struct qev *head, *tail;
    struct event *ev;
    struct choice *ch;          /* [n_choices] */
    int n_choices, n_done;
    int prompt_tokens, completion_tokens;
    struct upstream_req cb;
    /* request */
    enum lm_job_kind kind;
    int stream, include_usage, chat;
    char *model_name;
    char id[48];
    long created;
    /* progress */
    int sent_head;
    /* embeddings: one job per input, run one after another */
    struct lm_job_req jr;
    char **inputs;
    int n_inputs, next_input;
    struct buf emb_json;
    int emb_tokens;
    int emb_base64;             /* encoding_format "base64": little-endian float32, base64 */
    int logprobs;               /* chat logprobs: entries gathered per choice until sent */
    struct lm_grammar **grammars; /* [n_choices] until each lm_submit took its own */
    char *tools_json;           /* tools shown to the template, until lm_submit rendered them */
    int32_t *bias_id;           /* logit_bias, until lm_submit copied it */
    float *bias;
};

/* OpenAI's encoding_format "base64": the float32 values' little-endian
 * bytes, base64 (RFC 4648, padded). */
static void append_base64_f32(struct buf *b, const float *v, int n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nb = (size_t)n * 4;
    unsigned char *p = util_xcalloc(nb ? nb : 1, 1);
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) p[4 * (size_t)i + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    char q[4];
    for (size_t i = 0; i < nb; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < nb ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < nb ? p[i + 2] : 0);
        q[0] = tab[w >> 18 & 63];
        q[1] = tab[w >> 12 & 63];
        q[2] = i + 1 < nb ? tab[w >> 6 & 63] : '=';
        q[3] = i + 2 < nb ? tab[w & 63] : '=';
        buf_append(b, q, 4);
    }
    free(p);
}

static void call_unref(struct local_call *c) {
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left > 0) return;
    struct qev *e = c->head;
    while (e) {
        struct qev *n = e->next;
        free(e->text);
        free(e->emb);
        free(e);
        e = n;
    }
    pthread_mutex_destroy(&c->mu);
    for (int i = 0; i < c->n_choices; i++) {
        buf_free(&c->ch[i].text);
        buf_free(&c->ch[i].lp);
        lm_tscan_free(c->ch[i].scan);
        for (int k = 0; k < c->ch[i].n_calls; k++) {
            buf_free(&c->ch[i].calls[k].name);
            buf_free(&c->ch[i].calls[k].args);
        }
        free(c->ch[i].calls);
        if (c->grammars) lm_grammar_free(c->grammars[i]);
    }
    free(c->ch);
    free(c->grammars);
    free(c->tools_json);
    buf_free(&c->emb_json);
    free(c->bias_id);
    free(c->bias);
    for (int i = 0; i < c->n_inputs; i++) free(c->inputs[i]);
    free(c->inputs);
    free(c->model_name);
    free(c);
}

/* A token's bytes as JSON text: characters cut by the token boundary (or
 * invalid) become U+FFFD there; the exact bytes go in "bytes". */
static void token_json(struct buf *b, const char *t, size_t n) {
    struct buf v = {0};
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)t[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        int ok = k > 0 && i + k <= n;
        for (size_t j = 1; ok && j < k; j++) ok = ((unsigned char)t[i + j] & 0xC0) == 0x80;
        if (ok) {
            buf_append(&v, t + i, k);
            i += k;
        } else {
            buf_appends(&v, "\xEF\xBF\xBD");
            i++;
        }
    }
    buf_json_strn(b, v.p ? v.p : "", v.len);
    buf_free(&v);
    buf_appends(b, ",\"bytes\":[");
    for (size_t j = 0; j < n; j++) buf_printf(b, "%s%u", j ? "," : "", (unsigned char)t[j]);
    buf_appends(b, "]");
}

/* One entry of choices[].logprobs.content, as OpenAI writes it. */
static void logprob_json(struct buf *b, const struct lm_event *ev) {
    buf_appends(b, "{\"token\":");
    token_json(b, ev->text ? ev->text : "", ev->len);
    buf_printf(b, ",\"logprob\":%.9g,\"top_logprobs\":[", (double)ev->logprob);
    for (int i = 0; i < ev->n_top; i++) {
        buf_appends(b, i ? ",{\"token\":" : "{\"token\":");
        token_json(b, ev->top[i].text, ev->top[i].len);
        buf_printf(b, ",\"logprob\":%.9g}", (double)ev->top[i].logprob);
    }
    buf_appends(b, "]}");
}

/* worker thread */
static void emit(void *ud, const struct lm_event *ev) {
    struct choice *h = ud;
    struct local_call *c = h->c;
    int final = ev->type == LM_EV_DONE || ev->type == LM_EV_ERROR;
    pthread_mutex_lock(&c->mu);
    if (!c->cancelled) {
        struct qev *q = util_xcalloc(1, sizeof *q);
        q->type = ev->type;
        q->index = h->index;
        if (ev->type == LM_EV_LOGPROB) {
            struct buf j = {0};
            logprob_json(&j, ev);
            q->text = j.p;
            q->len = j.len;
        } else if (ev->text && ev->len) {
            q->text = util_xmalloc(ev->len + 1);
            memcpy(q->text, ev->text, ev->len);
            q->text[ev->len] = 0;
            q->len = ev->len;
        } else if (ev->type == LM_EV_ERROR) {
            q->text = util_strdup(ev->text ? ev->text : "local model error");
            q->len = strlen(q->text);
        }
        q->finish = ev->finish_reason && strcmp(ev->finish_reason, "length") == 0 ? "length" : "stop";
        q->prompt_tokens = ev->prompt_tokens;
        q->completion_tokens = ev->completion_tokens;
        q->status = ev->status;
        q->code = ev->code;
        if (ev->type == LM_EV_EMBEDDING && ev->embedding && ev->n_embd > 0) {
            q->emb = util_xmalloc((size_t)ev->n_embd * sizeof(float));
            memcpy(q->emb, ev->embedding, (size_t)ev->n_embd * sizeof(float));
            q->n_embd = ev->n_embd;
        }
        if (c->tail) c->tail->next = q; else c->head = q;
        c->tail = q;
        event_active(c->ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&c->mu);
    if (final) call_unref(c);
}

/* ---- OpenAI bytes ---------------------------------------------------------------- */

static void chunk_prefix(struct local_call *c, struct buf *b);
static int send_bytes(struct local_call *c, struct buf *b);

static void send_head(struct local_call *c, int status, const char *ctype) {
    if (c->sent_head) return;
    c->sent_head = 1;
    struct upstream_hdr h[2] = {{"content-type", (char *)ctype}, {"x-llmpin-local-sha256", c->m->sha256}};
    struct upstream_resp_head head = {status, h, 2};
    c->cb.on_head(c->cb.ud, &head);
    if (status == 200 && c->stream && c->chat) {
        /* like OpenAI: the first chunk announces the role */
        struct buf b = {0};
        for (int i = 0; i < c->n_choices; i++) {
            chunk_prefix(c, &b);
            buf_printf(&b, ",\"choices\":[{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                           "\"logprobs\":null,\"finish_reason\":null}]", i);
            if (c->include_usage) buf_appends(&b, ",\"usage\":null");
            buf_appends(&b, "}\n\n");
        }
        send_bytes(c, &b);
        buf_free(&b);
    }
}

static void chunk_prefix(struct local_call *c, struct buf *b) {
    buf_appends(b, "data: {\"id\":");
    buf_json_str(b, c->id);
    buf_printf(b, ",\"object\":\"%s\",\"created\":%ld,\"model\":",
               c->chat ? "chat.completion.chunk" : "text_completion", c->created);
    buf_json_str(b, c->model_name);
    buf_appends(b, ",\"system_fingerprint\":");
    buf_json_str(b, c->m->fingerprint);
}

static int send_bytes(struct local_call *c, struct buf *b) {
    int r = c->cb.on_data(c->cb.ud, b->p, b->len);
    buf_reset(b);
    return r;
}

static void send_usage_json(struct buf *b, int p, int n) {
    buf_printf(b, "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}", p, n, p + n);
}

/* "logprobs": null, or the entries gathered since the last chunk (then cleared). */
static void logprobs_field(struct local_call *c, struct choice *h, struct buf *b, int last) {
    if (!c->logprobs || (last && c->stream && h->lp.len == 0)) {
        buf_appends(b, "\"logprobs\":null");
        return;
    }
    buf_appends(b, "\"logprobs\":{\"content\":[");
    buf_append(b, h->lp.p ? h->lp.p : "", h->lp.len);
    buf_appends(b, "],\"refusal\":null}");
    buf_reset(&h->lp);
}

/* A stream chunk of choice h with this delta (a JSON object's members). */
/* End a stream chunk begun in b (usage null when asked for) and send it. */
static int send_chunk(struct local_call *c, struct buf *b) {
    if (c->include_usage) buf_appends(b, ",\"usage\":null");
    buf_appends(b, "}\n\n");
    int r = send_bytes(c, b);
    buf_free(b);
    return r;
}

static int send_delta(struct local_call *c, struct choice *h, const char *delta, size_t n) {
    struct buf b = {0};
    chunk_prefix(c, &b);
    buf_printf(&b, ",\"choices\":[{\"index\":%d,\"delta\":{", h->index);
    buf_append(&b, delta, n);
    buf_appends(&b, "},");
    logprobs_field(c, h, &b, 0);
    buf_appends(&b, ",\"finish_reason\":null}]");
    return send_chunk(c, &b);
}

/* What the reader found in a choice's answer (lm_tscan): text, a call's
 * start (OpenAI's first delta has its id, type, name and arguments ""),
 * its arguments' next bytes. */
static void on_scan(void *ud, const struct lm_ts_event *ev) {
    struct choice *h = ud;
    struct local_call *c = h->c;
    if (h->stopped) return;
    if (ev->kind == LM_TS_CALL) {
        h->calls = util_xrealloc(h->calls, (size_t)(h->n_calls + 1) * sizeof *h->calls);
        struct tcall *t = &h->calls[h->n_calls++];
        memset(t, 0, sizeof *t);
        util_make_id("call_", t->id, sizeof t->id);
        buf_append(&t->name, ev->s, ev->n);
    } else if (ev->kind == LM_TS_ARGS && ev->index < h->n_calls) {
        buf_append(&h->calls[ev->index].args, ev->s, ev->n);
    }
    if (!c->stream) {
        if (ev->kind == LM_TS_CONTENT) buf_append(&h->text, ev->s, ev->n);
        return;
    }
    struct buf d = {0};
    if (ev->kind == LM_TS_CONTENT) {
        buf_appends(&d, "\"content\":");
        buf_json_strn(&d, ev->s, ev->n);
    } else if (ev->kind == LM_TS_CALL) {
        struct tcall *t = &h->calls[h->n_calls - 1];
        buf_printf(&d, "\"tool_calls\":[{\"index\":%d,\"id\":", h->n_calls - 1);
        buf_json_str(&d, t->id);
        buf_appends(&d, ",\"type\":\"function\",\"function\":{\"name\":");
        buf_json_strn(&d, ev->s, ev->n);
        buf_appends(&d, ",\"arguments\":\"\"}}]");
    } else {
        buf_printf(&d, "\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", ev->index);
        buf_json_strn(&d, ev->s, ev->n);
        buf_appends(&d, "}}]");
    }
    if (send_delta(c, h, d.p, d.len) != 0) h->stopped = 1;
    buf_free(&d);
}

/* Returns 0, or -1 if the consumer stopped the call. */
static int handle_text(struct local_call *c, struct choice *h, const char *t, size_t n) {
    if (h->scan) {
        if (lm_tscan_feed(h->scan, t, n, 0, on_scan, h) != 0) h->stopped = 1;
        return h->stopped ? -1 : 0;
    }
    if (!c->stream) {
        buf_append(&h->text, t, n);
        return 0;
    }
    if (c->chat) {
        struct buf d = {0};
        buf_appends(&d, "\"content\":");
        buf_json_strn(&d, t, n);
        int r = send_delta(c, h, d.p, d.len);
        buf_free(&d);
        return r;
    }
    struct buf b = {0};
    chunk_prefix(c, &b);
    buf_printf(&b, ",\"choices\":[{\"index\":%d,\"text\":", h->index);
    buf_json_strn(&b, t, n);
    buf_appends(&b, ",\"logprobs\":null,\"finish_reason\":null}]");
    return send_chunk(c, &b);
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') return 0;
    return 1;
}

/* Choice h is done (DONE event e). A stream gets its finish chunk now; the
 * answer (usage, [DONE], or the whole body) goes once every choice is done.
 * Sets *all when that happened. Returns 0, or -1 if the consumer stopped. */
static int handle_done(struct local_call *c, struct choice *h, const struct qev *e, int *all) {
    struct buf b = {0};
    int r = 0;
    if (h->scan) {   /* the reader's held-back text, a call cut short */
        if (lm_tscan_feed(h->scan, "", 0, 1, on_scan, h) != 0) h->stopped = 1;
        if (h->stopped) return -1;
    }
    /* an answer that called tools and ended by itself ends with "tool_calls" */
    h->finish = h->n_calls > 0 && strcmp(e->finish, "stop") == 0 ? "tool_calls" : e->finish;
    c->prompt_tokens = e->prompt_tokens;     /* the same prompt for every choice */
    c->completion_tokens += e->completion_tokens;
    *all = ++c->n_done == c->n_choices;
    if (c->stream) {
        chunk_prefix(c, &b);
        if (c->chat) {
            buf_printf(&b, ",\"choices\":[{\"index\":%d,\"delta\":{},", h->index);
            logprobs_field(c, h, &b, 1);
            buf_printf(&b, ",\"finish_reason\":\"%s\"}]", h->finish);
        } else
            buf_printf(&b, ",\"choices\":[{\"index\":%d,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"%s\"}]",
                       h->index, e->finish);
        if (c->include_usage) buf_appends(&b, ",\"usage\":null");
        buf_appends(&b, "}\n\n");
        if (*all && c->include_usage) {
            chunk_prefix(c, &b);
            buf_appends(&b, ",\"choices\":[],\"usage\":");
            send_usage_json(&b, c->prompt_tokens, c->completion_tokens);
            buf_appends(&b, "}\n\n");
        }
        if (*all) buf_appends(&b, "data: [DONE]\n\n");
        r = send_bytes(c, &b);
    } else if (*all) {
        buf_appends(&b, "{\"id\":");
        buf_json_str(&b, c->id);
        buf_printf(&b, ",\"object\":\"%s\",\"created\":%ld,\"model\":", c->chat ? "chat.completion" : "text_completion",
                   c->created);
        buf_json_str(&b, c->model_name);
        buf_appends(&b, ",\"system_fingerprint\":");
        buf_json_str(&b, c->m->fingerprint);
        buf_appends(&b, ",\"choices\":[");
        for (int i = 0; i < c->n_choices; i++) {
            struct choice *x = &c->ch[i];
            if (c->chat) {
                buf_printf(&b, "%s{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":", i ? "," : "", i);
                if (x->n_calls > 0 && blank(x->text.p, x->text.len))
                    buf_appends(&b, "null"); /* as OpenAI: an answer that is only calls has no content */
                else
                    buf_json_strn(&b, x->text.p ? x->text.p : "", x->text.len);
                if (x->n_calls > 0) {
                    buf_appends(&b, ",\"tool_calls\":[");
                    for (int k = 0; k < x->n_calls; k++) {
                        const struct tcall *t = &x->calls[k];
                        buf_appends(&b, k ? ",{\"id\":" : "{\"id\":");
                        buf_json_str(&b, t->id);
                        buf_appends(&b, ",\"type\":\"function\",\"function\":{\"name\":");
                        buf_json_strn(&b, t->name.p ? t->name.p : "", t->name.len);
                        buf_appends(&b, ",\"arguments\":");
                        buf_json_strn(&b, t->args.p ? t->args.p : "", t->args.len);
                        buf_appends(&b, "}}");
                    }
                    buf_appends(&b, "]");
                }
                buf_appends(&b, ",\"refusal\":null},");
                logprobs_field(c, x, &b, 1);
                buf_printf(&b, ",\"finish_reason\":\"%s\"}", x->finish);
            } else {
                buf_printf(&b, "%s{\"index\":%d,\"text\":", i ? "," : "", i);
                buf_json_strn(&b, x->text.p ? x->text.p : "", x->text.len);
                buf_printf(&b, ",\"logprobs\":null,\"finish_reason\":\"%s\"}", x->finish);
            }
        }
        buf_appends(&b, "],\"usage\":");
        send_usage_json(&b, c->prompt_tokens, c->completion_tokens);
        buf_appends(&b, "}\n");
        r = send_bytes(c, &b);
    }
    buf_free(&b);
    return r;
}

static int submit_current(struct local_call *c, int *status, const char **code, char *err, size_t errlen);

/* An OpenAI-shaped error before anything was sent: a 400 names the field
 * the prompt came in (the request's fault); 429 and 5xx are the model's. */
static int send_error(struct local_call *c, int status, const char *code, const char *msg) {
    send_head(c, status, "application/json");
    struct buf b = {0};
    buf_appends(&b, "{\"error\":{\"message\":");
    buf_json_str(&b, msg ? msg : "local model error");
    if (status == 400) {
        buf_appends(&b, ",\"type\":\"invalid_request_error\",\"param\":");
        buf_json_str(&b, c->chat ? "messages" : c->kind == LM_JOB_EMBED ? "input" : "prompt");
    } else {
        buf_appends(&b, status == 429 ? ",\"type\":\"rate_limit_exceeded\",\"param\":null"
                                      : ",\"type\":\"server_error\",\"param\":null");
    }
    buf_appends(&b, ",\"code\":");
    buf_json_str(&b, code ? code : "local_model_error");
    buf_appends(&b, "}}");
    int r = send_bytes(c, &b);
    buf_free(&b);
    return r;
}

/* Loop thread: drain the queue. */
static void on_events(evutil_socket_t fd, short what, void *arg) {
    struct local_call *c = arg;
    (void)fd;
    (void)what;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        struct qev *e = c->head;
        if (e) {
            c->head = e->next;
            if (!c->head) c->tail = NULL;
        }
        pthread_mutex_unlock(&c->mu);
        if (!e) return;
        int stop = 0, finished = 0;
        struct choice *h = &c->ch[e->index];
        if (e->type == LM_EV_LOGPROB) {
            if (h->lp.len) buf_append(&h->lp, ",", 1);
            buf_append(&h->lp, e->text ? e->text : "", e->len);
        } else if (e->type == LM_EV_TEXT) {
            send_head(c, 200, c->stream ? "text/event-stream" : "application/json");
            stop = handle_text(c, h, e->text, e->len) != 0;
        } else if (e->type == LM_EV_EMBEDDING) {
            if (c->emb_json.len) buf_append(&c->emb_json, ",", 1);
            buf_printf(&c->emb_json, "{\"object\":\"embedding\",\"index\":%d,\"embedding\":", c->next_input);
            if (c->emb_base64) {
                buf_append(&c->emb_json, "\"", 1);
                append_base64_f32(&c->emb_json, e->emb, e->n_embd);
                buf_appends(&c->emb_json, "\"}");
            } else {
                buf_append(&c->emb_json, "[", 1);
                for (int i = 0; i < e->n_embd; i++) buf_printf(&c->emb_json, "%s%.9g", i ? "," : "", e->emb[i]); /* float32 round trip */
                buf_appends(&c->emb_json, "]}");
            }
        } else if (e->type == LM_EV_DONE) {
            if (c->kind == LM_JOB_EMBED) {
                c->emb_tokens += e->prompt_tokens;
                lm_job_release(h->job);
                h->job = NULL;
                if (++c->next_input < c->n_inputs) {
                    int st;
                    char err[256];
                    const char *code = NULL;
                    if (submit_current(c, &st, &code, err, sizeof err) != 0) {
                        /* as local_start names a refusal of the first input */
                        stop = send_error(c, st, st == 400 ? code : st == 429 ? "queue_full" : NULL, err) != 0;
                        finished = 1;
                    }
                } else {
                    send_head(c, 200, "application/json");
                    struct buf b = {0};
                    buf_appends(&b, "{\"object\":\"list\",\"data\":[");
                    buf_append(&b, c->emb_json.p ? c->emb_json.p : "", c->emb_json.len);
                    buf_appends(&b, "],\"model\":");
                    buf_json_str(&b, c->model_name);
                    buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}\n", c->emb_tokens,
                               c->emb_tokens);
                    stop = send_bytes(c, &b) != 0;
                    buf_free(&b);
                    finished = 1;
                }
            } else {
                send_head(c, 200, c->stream ? "text/event-stream" : "application/json");
                stop = handle_done(c, h, e, &finished) != 0;
            }
        } else { /* ERROR */
            finished = 1;
            if (!c->sent_head) {
                /* a prompt found too long by the scheduler is the request's
                 * fault: 400 naming the field, as a refusal at submit is */
                stop = send_error(c, e->status == 400 ? 400 : 500,
                                  e->status == 400 ? (e->code ? e->code : "invalid_value") : NULL, e->text) != 0;
            } else {
                free(e->text);
                free(e->emb);
                free(e);
                /* mid-stream: the proxy ends the stream with an error event */
                void (*done)(void *, enum upstream_result, const char *) = c->cb.on_done;
                void *ud = c->cb.ud;
                local_cancel(c);
                done(ud, UP_BROKEN, "local model failed during generation");
                return;
            }
        }
        free(e->text);
        free(e->emb);
        free(e);
        if (stop) { /* the proxy gave up on this call */
            local_cancel(c);
            return;
        }
        if (finished) {
            void (*done)(void *, enum upstream_result, const char *) = c->cb.on_done;
            void *ud = c->cb.ud;
            local_cancel(c); /* releases the loop side; no more callbacks */
            done(ud, UP_OK, "");
            return;
        }
    }
}

/* ---- model lifecycle ----------------------------------------------------------------- */

struct local_model *local_model_open(struct event_base *base, const struct cfg_local_model *cm, char *err,
                                     size_t errlen) {
    struct lm_engine_opts o = {
        .path = cm->path,
        .sha256 = cm->sha256,
        .context_length = cm->context_length,
        .threads = cm->threads,
        .chat_template = cm->chat_template,
        .chat_template_file = cm->chat_template_file,
        .chat_template_name = cm->chat_template_name,
        .max_queue = cm->max_queue,
        .max_batch = cm->max_batch,
        .kv_f32 = cm->kv_f32,
    };
    char e2[768];
    struct lm_engine *eng = lm_engine_open(&o, e2, sizeof e2);
    if (!eng) {
        snprintf(err, errlen, "local_models.%s: %s", cm->name, e2);
        return NULL;
    }
    struct local_model *m = util_xcalloc(1, sizeof *m);
    m->base = base;
    m->eng = eng;
    m->name = util_strdup(cm->name);
    m->path = util_strdup(cm->path);
    m->cfg_sha = util_strdup(cm->sha256);
    m->tmpl = util_strdup(cm->chat_template);
    m->tmpl_file = util_strdup(cm->chat_template_file);
    m->tmpl_name = util_strdup(cm->chat_template_name);
    m->ctx = cm->context_length;
    m->threads = cm->threads;
    m->max_queue = cm->max_queue;
    m->max_batch = cm->max_batch;
    struct lm_info info;
    lm_engine_info(eng, &info);
    m->sha256 = util_strdup(info.sha256);
    /* the pinned hash is the local model's version signal */
    snprintf(m->fingerprint, sizeof m->fingerprint, "llmpin-%.12s", info.sha256);
    return m;
}

void local_model_close(struct local_model *m) {
    if (!m) return;
    lm_engine_close(m->eng);
    free(m->name);
    free(m->path);
    free(m->sha256);
    free(m->cfg_sha);
    free(m->tmpl);
    free(m->tmpl_file);
    free(m->tmpl_name);
    free(m);
}

const char *local_model_sha256(const struct local_model *m) { return m->sha256; }
struct lm_engine *local_model_engine(const struct local_model *m) { return m->eng; }

static int streq(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int local_model_same(const struct local_model *m, const struct cfg_local_model *c) {
    return streq(m->path, c->path) && streq(m->cfg_sha, c->sha256) && streq(m->tmpl, c->chat_template) &&
           streq(m->tmpl_file, c->chat_template_file) && streq(m->tmpl_name, c->chat_template_name) &&
           m->ctx == c->context_length && m->threads == c->threads && m->max_queue == c->max_queue &&
           m->max_batch == c->max_batch;
}

/* ---- calls ------------------------------------------------------------------------- */

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

struct lm_message *local_messages(const struct llm_request *r) {
    struct lm_message *m = util_xcalloc((size_t)r->n_messages + 1, sizeof *m);
    for (int i = 0; i < r->n_messages; i++) {
        const struct llm_msg *x = &r->messages[i];
        m[i].role = strcmp(x->role, "developer") == 0 ? "system" : x->role;
        m[i].content = x->content;
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(x->obj, "tool_calls");
        m[i].tool_calls = cJSON_IsArray(tc) && cJSON_GetArraySize(tc) > 0 ? tc : NULL;
        m[i].tool_call_id = str_field(x->obj, "tool_call_id");
        m[i].name = str_field(x->obj, "name");
    }
    return m;
}

/* Queue the job of every choice (embeddings: of the next input). Choice i
 * of n samples with seed + i, so a seeded request stays reproducible and
 * its choices differ. */
static int submit_current(struct local_call *c, int *status, const char **code, char *err, size_t errlen) {
    if (c->kind == LM_JOB_EMBED) c->jr.prompt = c->inputs[c->next_input];
    uint64_t seed = c->jr.params.seed;
    int rc = 0;
    for (int i = 0; i < c->n_choices && rc == 0; i++) {
        pthread_mutex_lock(&c->mu);
        c->refs++; /* the engine side */
        pthread_mutex_unlock(&c->mu);
        c->jr.ud = &c->ch[i];
        c->jr.params.seed = seed + (uint64_t)i;
        c->jr.grammar = c->grammars ? c->grammars[i] : NULL;
        if (c->grammars) c->grammars[i] = NULL; /* lm_submit owns it now */
        c->ch[i].job = lm_submit(c->m->eng, &c->jr, status, code, err, errlen);
        if (!c->ch[i].job) {
            pthread_mutex_lock(&c->mu);
            c->refs--;
            pthread_mutex_unlock(&c->mu);
            rc = -1;
        }
    }
    c->jr.params.seed = seed;
    c->jr.grammar = NULL;
    return rc;
}

struct local_call *local_start(struct local_model *m, const struct llm_request *r, const char *model_name,
                               const struct upstream_req *cb, struct local_refusal *why) {
    char *err = why->message;
    size_t errlen = sizeof why->message;
    int st = 400, *status = &st;
    why->status = 400;
    why->code = "invalid_value";
    why->param = NULL;
    why->capability = 0;
    int n_choices = r->n > 1 && r->ep != LLM_EMBEDDINGS ? r->n : 1;
    if (n_choices > 128) {
        why->param = "n";
        why->code = "integer_above_max_value";
        snprintf(err, errlen, "Invalid 'n': integer above maximum value. Expected a value <= 128, but got %d instead.",
                 r->n);
        return NULL;
    }
    /* Refuse what a local model cannot honour rather than answer as if it
     * had: an application relying on tools or a JSON schema must know. */
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(r->body, "response_format");
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(r->body, "logprobs");
    const char *unsupported = r->ep != LLM_CHAT && rf && !cJSON_IsNull(rf) ? "response_format"
                              : r->ep != LLM_CHAT && lp && !cJSON_IsNull(lp) && !cJSON_IsFalse(lp) ? "logprobs"
                              : NULL;
    if (unsupported) {
        why->code = "unsupported_parameter";
        why->param = unsupported;
        why->capability = 1;
        snprintf(err, errlen, "'%s' is not supported by the local model '%s'", unsupported, m->name);
        return NULL;
    }
    struct local_tools tl = {.choice = LOCAL_TC_NONE, .only = -1};
    if (r->ep == LLM_CHAT && local_tool_params(m->eng, m->name, r, &tl, why) != 0)
        return NULL;
    struct lm_sample_extra x;
    if (local_sample_extras(m->eng, m->name, r, &x, why) != 0) {
        free(tl.tools_json);
        return NULL;
    }
    /* one grammar per choice: each job's matcher owns its own */
    struct lm_grammar **grammars = NULL;
    for (int i = 0; r->ep == LLM_CHAT && i < n_choices; i++) {
        struct lm_grammar *g = NULL;
        if (tl.choice != LOCAL_TC_NONE ? !(g = local_tool_grammar(r, &tl, why))
                                       : local_response_grammar(m->name, r, &g, why) != 0) {
            for (int k = 0; grammars && k < i; k++) lm_grammar_free(grammars[k]);
            free(grammars);
            free(x.bias_id);
            free(x.bias);
            free(tl.tools_json);
            return NULL;
        }
        if (!g) break; /* free text */
        if (!grammars) grammars = util_xcalloc((size_t)n_choices, sizeof *grammars);
        grammars[i] = g;
    }
    struct local_call *c = util_xcalloc(1, sizeof *c);
    c->n_choices = n_choices;
    c->ch = util_xcalloc((size_t)n_choices, sizeof *c->ch);
    for (int i = 0; i < n_choices; i++) {
        c->ch[i].c = c;
        c->ch[i].index = i;
    }
    c->grammars = grammars;
    c->tools_json = tl.tools_json;
    for (int i = 0; tl.choice != LOCAL_TC_NONE && i < n_choices; i++) {
        c->ch[i].scan = lm_tscan_new(tl.st);
        if (!c->ch[i].scan) { fputs("llmpin: out of memory\n", stderr); abort(); }
    }
    c->logprobs = x.logprobs;
    c->bias_id = x.bias_id;
    c->bias = x.bias;
    pthread_mutex_init(&c->mu, NULL);
    c->refs = 1;
    c->m = m;
    c->cb = *cb;
    c->stream = r->stream;
    c->include_usage = r->include_usage;
    c->model_name = util_strdup(model_name);
    c->created = (long)(util_wall_ms() / 1000);
    util_make_id(r->ep == LLM_CHAT ? "chatcmpl-" : "cmpl-", c->id, sizeof c->id);
    c->ev = event_new(m->base, -1, 0, on_events, c);

    struct lm_job_req *jr = &c->jr;
    struct lm_message *msgs = NULL;
    jr->emit = emit;
    jr->ud = &c->ch[0];
    jr->params.temperature = r->has_temperature ? (float)r->temperature : 1.0f;
    jr->params.top_p = r->has_top_p ? (float)r->top_p : 1.0f;
    jr->params.top_k = r->top_k;
    jr->params.has_seed = r->has_seed;
    jr->params.seed = (uint64_t)r->seed;
    jr->params.frequency_penalty = (float)r->frequency_penalty;
    jr->params.presence_penalty = (float)r->presence_penalty;
    jr->params.max_tokens = r->max_tokens;
    jr->params.stop = (const char *const *)r->stop;
    jr->params.n_stop = r->n_stop;
    jr->params.logprobs = x.logprobs;
    jr->params.top_logprobs = x.top_logprobs;
    jr->params.bias_id = x.bias_id;
    jr->params.bias = x.bias;
    jr->params.n_bias = x.n_bias;
    if (r->ep == LLM_CHAT) {
        c->kind = jr->kind = LM_JOB_CHAT;
        c->chat = 1;
        msgs = local_messages(r);
        jr->messages = msgs;
        jr->n_messages = r->n_messages;
        if (tl.choice != LOCAL_TC_NONE) {
            /* auto: the model may answer or call, the grammar holds from its
             * first call on; required or a named tool: from the first token */
            jr->tools_json = c->tools_json;
            jr->trigger = tl.st->trigger;
            jr->trigger_at_start = tl.st->at_start;
            jr->lazy = tl.choice == LOCAL_TC_AUTO;
        }
    } else if (r->ep == LLM_COMPLETIONS) {
        if (!r->prompt) {
            why->code = "invalid_type";
            why->param = "prompt";
            snprintf(err, errlen, "Local models take 'prompt' as one string.");
            goto fail;
        }
        c->kind = jr->kind = LM_JOB_COMPLETION;
        jr->prompt = r->prompt;
    } else {
        if (r->n_inputs == 0) {
            why->code = "invalid_type";
            why->param = "input";
            snprintf(err, errlen, "Local models take 'input' as a string or an array of strings.");
            goto fail;
        }
        /* encoding_format: float (the default) or base64, as OpenAI's;
         * dimensions: only the model's own width (it cannot shorten them) */
        const cJSON *ef = cJSON_GetObjectItemCaseSensitive(r->body, "encoding_format");
        if (ef && !cJSON_IsNull(ef)) {
            if (!cJSON_IsString(ef) || (strcmp(ef->valuestring, "float") != 0 && strcmp(ef->valuestring, "base64") != 0)) {
                why->param = "encoding_format";
                snprintf(err, errlen, "'encoding_format' must be \"float\" or \"base64\".");
                goto fail;
            }
            c->emb_base64 = strcmp(ef->valuestring, "base64") == 0;
        }
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(r->body, "dimensions");
        if (dims && !cJSON_IsNull(dims)) {
            struct lm_info info;
            lm_engine_info(m->eng, &info);
            if (!cJSON_IsNumber(dims) || dims->valuedouble != (double)info.n_embd) {
                why->param = "dimensions";
                why->code = "unsupported_value";
                snprintf(err, errlen, "The local model '%s' makes %d-dimensional embeddings and cannot shorten them; "
                         "'dimensions' must be %d or absent.", m->name, info.n_embd, info.n_embd);
                goto fail;
            }
        }
        c->kind = jr->kind = LM_JOB_EMBED;
        c->stream = 0;
        c->inputs = util_xcalloc((size_t)r->n_inputs, sizeof *c->inputs);
        for (int i = 0; i < r->n_inputs; i++) c->inputs[i] = util_strdup(r->inputs[i]);
        c->n_inputs = r->n_inputs;
    }
    const char *code = NULL;
    int rc = submit_current(c, status, &code, err, errlen);
    if (rc != 0) {
        why->status = *status;
        why->code = *status == 429 ? "queue_full" : *status == 400 && code ? code : "local_model_error";
        why->param = *status != 400 ? NULL : r->ep == LLM_CHAT ? "messages" : r->ep == LLM_COMPLETIONS ? "prompt" : "input";
        /* a prompt this model's context cannot hold may fit another's */
        why->capability = *status == 400 && code && strcmp(code, "context_length_exceeded") == 0;
    }
    free(msgs);
    msgs = NULL;
    jr->messages = NULL;
    jr->tools_json = NULL;  /* lm_submit rendered the prompt */
    jr->grammar = NULL;     /* lm_submit took it */
    jr->params.stop = NULL; /* lm_submit copied what it needs */
    jr->params.n_stop = 0;
    if (rc != 0) goto fail;
    return c;
fail:
    free(msgs);
    local_cancel(c); /* choices already queued stop; the call goes when they have */
    return NULL;
}

void local_cancel(struct local_call *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->cancelled = 1;
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->n_choices; i++) {
        if (!c->ch[i].job) continue;
        lm_cancel(c->ch[i].job);
        lm_job_release(c->ch[i].job);
        c->ch[i].job = NULL;
    }
    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    call_unref(c);
}
