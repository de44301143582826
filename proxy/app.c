/*
 * app.c - llmpin's request path: HTTP in, policy, adapters, HTTP out.
 *
 * One request is a `struct rq` that walks its policy plan:
 *
 *   parse + validate -> auth -> rate limit -> route -> plan
 *     -> attempt target plan[i]  (remote: libcurl; local: engine)
 *          failure before anything reached the client:
 *              retry the same target (backoff, Retry-After, deadline)
 *              or fall back to plan[i+1]
 *          failure after the first byte reached the client:
 *              end the stream with an OpenAI-style error event
 *     -> record (drift), log, metrics
 *
 * Streams are forwarded event by event. The first event is held until it
 * is complete so that the served model and system_fingerprint can be
 * checked against the target's version pins before the client sees
 * anything: a pin mismatch can still fall back.
 *
 * The configuration is a generation (cfg + policy) with a reference count;
 * a request keeps the generation it started with, so a reload never changes
 * the rules under a request in flight.
 */
#include "proxy/app.h"
#include "proxy/app_internal.h"
#include "proxy/rq.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adapters/local.h"
#include "adapters/upstream.h"
#include "common/jsonv.h"
#include "common/sse.h"
#include "common/llm.h"
#include "common/log.h"
#include "common/util.h"
#include "drift/drift.h"
#include "policy/policy.h"
#include "proxy/http.h"
#include "proxy/metrics.h"

#define MAX_UPSTREAM_BODY (64u << 20)
#define MAX_OUTPUT_CAPTURE (1u << 20)
#define STREAM_PAUSE_BYTES (1u << 20)

static void rq_finish(struct rq *q);
static void rq_next_target(struct rq *q, const char *why, const char *detail);

/* ---- generations ----------------------------------------------------------- */

void app_gen_unref(struct gen *g) {
    if (!g || --g->refs > 0) return;
    policy_free(g->pol);
    /* a model handed on to a newer generation is no longer owned here */
    for (size_t i = 0; g->local && i < g->cfg->n_local_models; i++)
        if (g->owned[i] && g->local[i]) local_model_close(g->local[i]);
    free(g->local);
    free(g->owned);
    cfg_free(g->cfg);
    free(g);
}

/* ---- errors ----------------------------------------------------------------- */

void app_error_json(struct buf *b, const char *msg, const char *type, const char *param,
                       const char *code) {
    buf_appends(b, "{\"error\":{\"message\":");
    buf_json_str(b, msg);
    buf_appends(b, ",\"type\":");
    buf_json_str(b, type);
    buf_appends(b, ",\"param\":");
    buf_json_str(b, param && *param ? param : NULL);
    buf_appends(b, ",\"code\":");
    buf_json_str(b, code);
    buf_appends(b, "}}");
}

static void common_headers(struct rq *q, struct buf *h) {
    buf_appends(h, "x-request-id: ");
    buf_appends(h, q->up_request_id ? q->up_request_id : q->id);
    buf_appends(h, "\r\n");
    if (q->has_rl) {
        char d[32];
        const struct policy_rl_info *rl = &q->rl;
        if (rl->limit_requests)
            buf_printf(h, "x-ratelimit-limit-requests: %d\r\nx-ratelimit-remaining-requests: %d\r\n"
                          "x-ratelimit-reset-requests: %s\r\n", rl->limit_requests, rl->remaining_requests,
                       policy_format_duration(rl->reset_requests_ms, d, sizeof d));
        if (rl->limit_tokens)
            buf_printf(h, "x-ratelimit-limit-tokens: %d\r\nx-ratelimit-remaining-tokens: %d\r\n"
                          "x-ratelimit-reset-tokens: %s\r\n", rl->limit_tokens, rl->remaining_tokens,
                       policy_format_duration(rl->reset_tokens_ms, d, sizeof d));
    }
    const char *names[3] = {"x-llmpin-route: ", "x-llmpin-target: ", "x-llmpin-fallback: "};
    const char *vals[3] = {q->route ? q->route->cfg->name : NULL, q->target_name, q->fallback[0] ? q->fallback : NULL};
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        buf_appends(h, names[i]);
        buf_appends(h, vals[i]);
        buf_appends(h, "\r\n");
    }
}

static void rq_error(struct rq *q, int status, const char *type, const char *code, const char *param,
                     const char *msg, const char *extra) {
    if (q->started) return;
    struct buf b = {0}, h = {0};
    app_error_json(&b, msg, type, param, code);
    buf_append(&b, "\n", 1);
    common_headers(q, &h);
    if (extra) buf_appends(&h, extra);
    q->status_sent = status;
    if (!q->outcome) q->outcome = code;
    http_respond(q->ex, status, "application/json", h.p, b.p, b.len);
    buf_free(&b);
    buf_free(&h);
}

/* ---- request lifecycle -------------------------------------------------------- */

static void rq_stop_attempt(struct rq *q) {
    if (q->xfer) { upstream_cancel(q->xfer); q->xfer = NULL; }
    if (q->lcall) { local_cancel(q->lcall); q->lcall = NULL; }
    if (q->retry_timer) evtimer_del(q->retry_timer);
}

static void rq_reset_attempt(struct rq *q) {
    q->up_status = 0;
    free(q->up_ctype); q->up_ctype = NULL;
    buf_reset(&q->up_extra_headers);
    free(q->up_request_id); q->up_request_id = NULL;
    free(q->version_headers); q->version_headers = NULL;
    q->retry_after_ms = -1;
    buf_reset(&q->body);
    buf_reset(&q->sse_pending);
    q->sse = 0;
    q->saw_done = 0;
    q->sse_unasked = 0;
    q->refused = NULL;
    q->refused_detail[0] = 0;
    if (q->served_model != q->served_mem) free(q->served_model);
    if (q->fingerprint != q->fp_mem) free(q->fingerprint);
    q->served_model = q->fingerprint = NULL;
    q->prompt_tokens = q->completion_tokens = 0;
    buf_reset(&q->output);
}

void app_rq_free(struct rq *q) {
    rq_stop_attempt(q);
    if (q->retry_timer) event_free(q->retry_timer);
    rq_reset_attempt(q);
    buf_free(&q->up_extra_headers);
    buf_free(&q->body);
    buf_free(&q->sse_pending);
    buf_free(&q->output);
    if (q->parsed) llm_request_free(&q->req);
    q->app->active_rqs--;
    q->app->m.inflight--;
    app_gen_unref(q->gen);
    free(q);
}

/* One JSON access-log line. Never includes a key, only its name. */
/* "2026-11-26T13:04:24Z" for now, formatted once per second. */
static const char *access_ts(void) {
    static _Thread_local time_t last;
    static _Thread_local char ts[32];
    time_t t = time(NULL);
    if (t != last) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        last = t;
    }
    return ts;
}

/* One JSON access-log line. Never includes a key, only its name. Built
 * without printf: it runs for every request. */
static void access_line(const struct http_exchange *ex, const char *id, int status, const char *model,
                        const char *route, const char *target, const char *fallback, const char *key_name,
                        int stream, const char *outcome) {
    char stack[1024];
    struct buf l;
    buf_init_on(&l, stack, sizeof stack);
    buf_appends(&l, "{\"ts\":\"");
    buf_appends(&l, access_ts());
    buf_appends(&l, "\",\"type\":\"access\",\"id\":");
    buf_json_str(&l, id);
    buf_appends(&l, ",\"method\":");
    buf_json_str(&l, ex->method);
    buf_appends(&l, ",\"path\":");
    buf_json_str(&l, ex->path);
    buf_appends(&l, ",\"status\":");
    buf_u64(&l, (uint64_t)(status > 0 ? status : 0));
    buf_appends(&l, ",\"model\":");
    buf_json_str(&l, model);
    buf_appends(&l, ",\"route\":");
    buf_json_str(&l, route);
    buf_appends(&l, ",\"target\":");
    buf_json_str(&l, target);
    buf_appends(&l, ",\"fallback\":");
    buf_json_str(&l, fallback);
    buf_appends(&l, ",\"key\":");
    buf_json_str(&l, key_name);
    buf_appends(&l, stream ? ",\"stream\":true,\"latency_ms\":" : ",\"stream\":false,\"latency_ms\":");
    buf_us_as_ms(&l, util_now_us() - ex->start_us);
    buf_appends(&l, ",\"ttfb_ms\":");
    buf_us_as_ms(&l, ex->first_byte_us ? ex->first_byte_us - ex->start_us : 0);
    buf_appends(&l, ",\"bytes\":");
    buf_u64(&l, ex->bytes_out);
    buf_appends(&l, ",\"peer\":");
    buf_json_str(&l, ex->peer);
    if (outcome) {
        buf_appends(&l, ",\"outcome\":");
        buf_json_str(&l, outcome);
    }
    buf_appends(&l, "}\n");
    log_access_line(l.p, l.len);
    buf_free(&l);
}

/* Access log line, metrics and drift record; then free. */
static void rq_finish(struct rq *q) {
    struct app *a = q->app;
    int64_t now_us = util_now_us();
    double dur = (double)(now_us - q->ex->start_us) / 1e6;
    /* a client that left before the answer ended is 499, as nginx logs it,
     * even when the head of a stream was already sent */
    int status = q->ex->aborted ? 499 : q->status_sent;
    char st[8];
    struct buf sb;
    buf_init_on(&sb, st, sizeof st);
    buf_u64(&sb, (uint64_t)(status < 0 ? 0 : status));
    const char *route = q->route ? q->route->cfg->name : "";
    const char *target = q->target_name ? q->target_name : "";
    metrics_inc(&a->m.requests, 1, "route", route, "target", target, "status", st, NULL);
    metrics_observe(&a->m.duration, dur);
    if (q->ex->first_byte_us) metrics_observe(&a->m.ttfb, (double)(q->ex->first_byte_us - q->ex->start_us) / 1e6);

    access_line(q->ex, q->id, status, q->model, q->route ? route : NULL, q->target_name,
                q->fallback[0] ? q->fallback : NULL, q->key ? q->key->name : NULL, q->parsed && q->req.stream,
                q->outcome);

    if (q->key && q->gen->pol && q->parsed)
        policy_ratelimit_commit_tokens(q->gen->pol, q->key->name, q->est_tokens,
                                       q->prompt_tokens + q->completion_tokens, util_now_ms());

    if (a->drift && q->parsed && q->route && q->kind != RQ_PASSTHROUGH) {
        /* a stream cut by an upstream fault is on the record as the failure
         * it was, not as a 200 carrying half an answer */
        int rec_status = q->broken_status ? q->broken_status : status;
        int ok2xx = rec_status >= 200 && rec_status < 300;
        /* one allocation holds the record, its strings, the raw body and
         * the answer; the writer thread hashes them */
        struct drift_record_fields f = {
            .request_id = q->id, .key_name = q->key ? q->key->name : NULL, .route = route, .target = target,
            .requested_model = q->model, .served_model = q->served_model, .system_fingerprint = q->fingerprint,
            .upstream_request_id = q->up_request_id, .version_headers = q->version_headers,
            .request_body = q->ex->body, .request_body_len = q->ex->body_len,
            .output = ok2xx ? (q->output.p ? q->output.p : "") : NULL, .output_len = q->output.len,
            .keep_output = q->probe_run != NULL};
        struct drift_record *r = drift_record_make(a->drift, &f);
        if (!r) goto recorded;
        r->status = rec_status;
        r->latency_ms = (int)(dur * 1000);
        r->ttft_ms = q->req.stream ? (int)q->ttft_ms : -1;
        r->prompt_tokens = q->prompt_tokens;
        r->completion_tokens = q->completion_tokens;
        r->is_shadow = q->is_shadow;
        if (q->probe_run) {
            struct drift_event ev;
            memset(&ev, 0, sizeof ev);
            if (drift_probe_result(a->drift, q->probe_run->ps->name, q->probe, r, &ev) == 1) {
                metrics_inc(&a->m.drift_events, 1, "target", target, "kind", ev.kind ? ev.kind : "probe", NULL);
                app_webhook_post(a, &ev);
                drift_event_clear(&ev);
            }
        } else {
            drift_push(a->drift, r);
        }
    }
recorded:
    if (q->shadow_route) policy_shadow_end(q->gen->pol, q->shadow_route);
    struct probe_run *pr = q->probe_run;
    app_rq_free(q);
    if (pr) app_probe_run_step(pr, 1);
}

static void on_client_abort(struct http_exchange *ex, void *ud) {
    struct rq *q = ud;
    (void)ex;
    q->outcome = "client_disconnected";
    if (q->target_id >= 0 && (q->xfer || q->lcall))
        policy_breaker_report(q->gen->pol, q->target_id, POL_CANCELLED, util_now_ms());
    rq_stop_attempt(q);
    http_abandon(q->ex);
    rq_finish(q);
}

static void on_client_drain(struct http_exchange *ex, void *ud) {
    struct rq *q = ud;
    (void)ex;
    if (q->paused && http_out_pending(q->ex) < STREAM_PAUSE_BYTES / 2) {
        q->paused = 0;
        if (q->xfer) upstream_pause(q->xfer, 0);
    }
}

/* ---- parsing what an answer reveals ----------------------------------------------- */

/* *dst = a copy of s[0..n), in mem[cap] when it fits. */
static void keep_str(char **dst, char *mem, size_t cap, const char *s, size_t n) {
    char *d = n < cap ? mem : util_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    *dst = d;
}

static void set_str(char **dst, char *mem, size_t cap, const cJSON *v) {
    if (cJSON_IsString(v) && !*dst) keep_str(dst, mem, cap, v->valuestring, strlen(v->valuestring));
}

static void capture_output(struct rq *q, const char *s) {
    if (!s) return;
    size_t n = strlen(s);
    if (q->output.len + n > MAX_OUTPUT_CAPTURE) return;
    buf_append(&q->output, s, n);
}

/* An upstream's token count as an int: a count it cannot be (negative,
 * fractional, NaN, 1e300 - converting those to int is undefined) is 0. */
static int token_count(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    return d >= 0 && d <= 1e9 && d == (double)(int)d ? (int)d : 0;
}

static void capture_usage(struct rq *q, const cJSON *u) {
    if (!cJSON_IsObject(u)) return;
    int p = token_count(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
    int c = token_count(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
    if (p >= 0) q->prompt_tokens = p;
    if (c >= 0) q->completion_tokens = c;
}

/* One response object (a whole body or one stream chunk). */
static void inspect_object(struct rq *q, const cJSON *o, int is_chunk) {
    set_str(&q->served_model, q->served_mem, sizeof q->served_mem, cJSON_GetObjectItemCaseSensitive(o, "model"));
    set_str(&q->fingerprint, q->fp_mem, sizeof q->fp_mem, cJSON_GetObjectItemCaseSensitive(o, "system_fingerprint"));
    capture_usage(q, cJSON_GetObjectItemCaseSensitive(o, "usage"));
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *ch;
    cJSON_ArrayForEach(ch, choices) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(ch, "index");
        if (cJSON_IsNumber(idx) && idx->valuedouble != 0) continue; /* choice 0 is the record */
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ch, is_chunk ? "delta" : "message");
        if (m) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(c)) capture_output(q, c->valuestring);
            const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *tc;
            cJSON_ArrayForEach(tc, tcs) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(f, "name");
                const cJSON *ar = cJSON_GetObjectItemCaseSensitive(f, "arguments");
                if (cJSON_IsString(nm)) capture_output(q, nm->valuestring);
                if (cJSON_IsString(ar)) capture_output(q, ar->valuestring);
            }
        }
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(ch, "text"); /* completions */
        if (cJSON_IsString(text)) capture_output(q, text->valuestring);
    }
    if (!is_chunk) {
        /* embeddings: record a digest of the vectors' text form */
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        if (cJSON_IsArray(data) && !choices) {
            char *s = cJSON_PrintUnformatted(data);
            if (s) { capture_output(q, s); free(s); }
        }
    }
}

/* The same as inspect_object, read by drift_answer_scan without building a
 * cJSON tree (no allocation per node: this runs on the loop for every
 * answer). Returns 0, or -1 when the scanner is unsure and the caller must
 * parse with cJSON as before (nothing has been captured then). */
static void scan_output(void *ud, const char *raw, size_t len) {
    struct rq *q = ud;
    size_t old = q->output.len;
    /* copy, then unescape in place; keep it only if it fits, as capture_output */
    buf_append(&q->output, raw, len);
    size_t n = drift_json_unescape(q->output.p + old, len, q->output.p + old);
    q->output.len = old + n > MAX_OUTPUT_CAPTURE ? old : old + n;
    q->output.p[q->output.len] = 0;
}

static void scan_str(char **dst, char *mem, size_t cap, const char *raw, size_t len) {
    if (!raw || *dst) return;
    char *s = len < cap ? mem : util_xmalloc(len + 1); /* unescaping never lengthens */
    s[drift_json_unescape(raw, len, s)] = 0;
    *dst = s;
}

static int scan_answer(struct rq *q, const char *json, size_t len, int is_chunk) {
    struct drift_answer an;
    if (drift_answer_scan(json, len, is_chunk, &an, scan_output, q) != DRIFT_ANSWER_OK) return -1;
    scan_str(&q->served_model, q->served_mem, sizeof q->served_mem, an.model, an.model_len);
    scan_str(&q->fingerprint, q->fp_mem, sizeof q->fp_mem, an.fingerprint, an.fingerprint_len);
    if (an.has_prompt_tokens) q->prompt_tokens = (int)an.prompt_tokens;
    if (an.has_completion_tokens) q->completion_tokens = (int)an.completion_tokens;
    return 0;
}

/* Version pins and version drift for the answer just inspected. Returns 1
 * if the request must not be served from this target (fallback or reject
 * already handled). */
static int check_versions(struct rq *q) {
    struct app *a = q->app;
    if (!q->tgt || q->tgt->local) return 0;
    if (a->drift && q->kind != RQ_EMBEDDINGS) {
        struct drift_event ev;
        memset(&ev, 0, sizeof ev);
        if (drift_observe_version(a->drift, q->target_name, q->model, q->served_model, q->fingerprint, &ev) == 1) {
            metrics_inc(&a->m.drift_events, 1, "target", q->target_name, "kind", "version", NULL);
            app_webhook_post(a, &ev);
            drift_event_clear(&ev);
        }
    }
    if (!q->tgt->pin_model && !q->tgt->pin_fingerprint) return 0;
    char why[256];
    if (policy_pin_check(q->gen->pol, q->target_id, q->served_model, q->fingerprint, util_now_ms(), why,
                         sizeof why) != 1)
        return 0;
    log_warn("version pin broken on %s (route %s): %s", q->target_name, q->route->cfg->name, why);
    metrics_inc(&a->m.drift_events, 1, "target", q->target_name, "kind", "pin", NULL);
    enum cfg_on_drift od = q->route->cfg->on_drift;
    if (od == CFG_DRIFT_RECORD) return 0;
    rq_stop_attempt(q);
    policy_breaker_report(q->gen->pol, q->target_id, POL_DRIFT, util_now_ms());
    if (od == CFG_DRIFT_REJECT || !policy_should_fallback(q->route, POL_DRIFT) ||
        q->plan_pos + 1 >= q->plan.n) {
        char msg[400];
        snprintf(msg, sizeof msg, "The upstream model behind '%s' changed and the route pins it: %s.", q->model, why);
        rq_error(q, 409, "invalid_request_error", "model_version_changed", "model", msg, NULL);
        rq_finish(q);
        return 1;
    }
    rq_next_target(q, "drift", why);
    return 1;
}

/* ---- the response path --------------------------------------------------------- */

static void on_head(void *ud, const struct upstream_resp_head *h) {
    struct rq *q = ud;
    q->up_status = h->status;
    const char *ct = upstream_header(h, "content-type");
    q->up_ctype = util_strdup(ct ? ct : "application/json");
    q->sse = h->status >= 200 && h->status < 300 && ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    if (q->sse && q->kind != RQ_PASSTHROUGH && q->parsed && !q->req.stream) {
        /* the client asked for one JSON answer: an event stream is a bad
         * answer, read as a body and refused in on_done */
        q->sse = 0;
        q->sse_unasked = 1;
    }
    struct buf vh = {0};
    int nv = 0;
    buf_append(&vh, "{", 1);
    for (int i = 0; i < h->n_hdrs; i++) {
        const char *n = h->hdrs[i].name;
        if (!strchr("oxras", n[0])) continue; /* none of the names below: most headers */
        int pass = strncmp(n, "openai-", 7) == 0 || strncmp(n, "x-ratelimit-", 12) == 0 ||
                   strcmp(n, "retry-after") == 0 || strcmp(n, "retry-after-ms") == 0 ||
                   strncmp(n, "anthropic-", 10) == 0 || strcmp(n, "x-should-retry") == 0;
        int version = strcmp(n, "openai-version") == 0 || strcmp(n, "openai-model") == 0 ||
                      strcmp(n, "x-request-id") == 0 || strcmp(n, "request-id") == 0 ||
                      strcmp(n, "openai-processing-ms") == 0 || strcmp(n, "x-model-version") == 0 ||
                      strcmp(n, "server") == 0 || strcmp(n, "x-llmpin-local-sha256") == 0;
        if (pass && !strchr(h->hdrs[i].value, '\r') && !strchr(h->hdrs[i].value, '\n'))
        {
            buf_appends(&q->up_extra_headers, n);
            buf_append(&q->up_extra_headers, ": ", 2);
            buf_appends(&q->up_extra_headers, h->hdrs[i].value);
            buf_append(&q->up_extra_headers, "\r\n", 2);
        }
        if (version) {
            if (nv++) buf_append(&vh, ",", 1);
            buf_json_str(&vh, n);
            buf_append(&vh, ":", 1);
            buf_json_str(&vh, h->hdrs[i].value);
        }
    }
    buf_append(&vh, "}", 1);
    q->version_headers = vh.p;
    const char *rid = upstream_header(h, "x-request-id");
    if (!rid) rid = upstream_header(h, "request-id");
    if (rid && strlen(rid) < 200 && !strpbrk(rid, "\r\n")) q->up_request_id = util_strdup(rid);
    policy_parse_retry_after(upstream_header(h, "retry-after"), upstream_header(h, "retry-after-ms"),
                             util_wall_ms(), &q->retry_after_ms);
}

static void start_client_stream(struct rq *q) {
    struct buf h = {0};
    common_headers(q, &h);
    buf_append(&h, q->up_extra_headers.p ? q->up_extra_headers.p : "", q->up_extra_headers.len);
    q->started = 1;
    q->status_sent = q->up_status;
    q->ttft_ms = util_now_ms() - q->t0_ms;
    http_stream_start(q->ex, q->up_status, "text/event-stream; charset=utf-8", h.p);
    buf_free(&h);
}

/* The answer cannot be passed on: remember why (code, and a detail for
 * the message) and return -1, which ends the transfer as UP_ABORTED. */
__attribute__((format(printf, 3, 4))) static int refuse(struct rq *q, const char *code, const char *fmt, ...) {
    va_list ap;
    q->refused = code;
    va_start(ap, fmt);
    vsnprintf(q->refused_detail, sizeof q->refused_detail, fmt, ap);
    va_end(ap);
    return -1;
}

/* Handle one complete SSE event (without its blank-line terminator).
 * Returns -1 if the request left this attempt (pin fallback/reject) or
 * the event was refused (q->refused set). */
static int on_sse_event(struct rq *q, const char *ev, size_t len) {
    /* find the data: field(s); OpenAI sends one data line per event */
    const char *p = ev, *end = ev + len;
    struct buf data = {0};
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r') ll--;
        if (ll >= 5 && strncmp(p, "data:", 5) == 0) {
            const char *d = p + 5;
            if (*d == ' ') d++;
            if (data.len) buf_append(&data, "\n", 1);
            buf_append(&data, d, (size_t)(p + ll - d));
        }
        p = nl ? nl + 1 : end;
    }
    int first = !q->started;
    if (data.len) {
        struct jsonv_error je;
        if (strcmp(data.p, "[DONE]") == 0) {
            q->saw_done = 1;
        } else if (q->saw_done && q->kind != RQ_PASSTHROUGH) {
            buf_free(&data);
            return refuse(q, "upstream_bad_response", "an event after [DONE]");
        } else if (q->kind != RQ_PASSTHROUGH && jsonv_check(data.p, data.len, 0, &je) < 0) {
            /* never forward an event a client cannot decode */
            buf_free(&data);
            return refuse(q, "upstream_bad_response", "an event whose data is not JSON (%s at byte %zu)",
                          je.message, je.offset);
        } else {
            if (scan_answer(q, data.p, data.len, 1) != 0) {
                cJSON *o = cJSON_ParseWithLength(data.p, data.len);
                if (o) {
                    inspect_object(q, o, 1);
                    cJSON_Delete(o);
                }
            }
        }
    }
    buf_free(&data);
    if (first) {
        if (check_versions(q)) return -1;
        start_client_stream(q);
    }
    http_stream_write(q->ex, ev, len);
    http_stream_write(q->ex, "\n\n", 2);
    return 0;
}

static int sse_event_cb(void *ud, const char *ev, size_t len) { return on_sse_event(ud, ev, len); }

static int on_data(void *ud, const char *data, size_t len) {
    struct rq *q = ud;
    if (!q->sse) {
        if (q->body.len + len > MAX_UPSTREAM_BODY)
            return refuse(q, "upstream_response_too_large", "a body larger than the %u MiB llmpin accepts",
                          MAX_UPSTREAM_BODY >> 20);
        buf_append(&q->body, data, len);
        return 0;
    }
    int rc = sse_feed(&q->sse_pending, data, len, MAX_UPSTREAM_BODY, sse_event_cb, q);
    if (rc == SSE_TOO_LARGE)
        return refuse(q, "upstream_response_too_large", "an event larger than the %u MiB llmpin accepts",
                      MAX_UPSTREAM_BODY >> 20);
    if (rc < 0) return -1; /* q may have left this attempt: touch nothing more */
    if (!q->paused && http_out_pending(q->ex) > STREAM_PAUSE_BYTES && q->xfer) {
        q->paused = 1;
        upstream_pause(q->xfer, 1);
    }
    return 0;
}

/* End a stream that broke after the first byte: an error event, no [DONE]. */
static void stream_fail(struct rq *q, const char *code, const char *msg) {
    struct buf b = {0};
    buf_appends(&b, "data: ");
    app_error_json(&b, msg, "upstream_error", NULL, code);
    buf_appends(&b, "\n\n");
    http_stream_write(q->ex, b.p, b.len);
    buf_free(&b);
    http_stream_end(q->ex);
    q->outcome = code;
    q->broken_status = strcmp(code, "upstream_timeout") == 0 ? 504 : 502;
    metrics_inc(&q->app->m.stream_errors, 1, "target", q->target_name, "code", code, NULL);
}

/* Answer the client with the upstream's own status, headers we pass on and
 * body, as received. */
static void respond_as_upstream(struct rq *q, int status, const char *outcome) {
    struct buf h = {0};
    common_headers(q, &h);
    buf_append(&h, q->up_extra_headers.p ? q->up_extra_headers.p : "", q->up_extra_headers.len);
    q->status_sent = status;
    q->outcome = outcome;
    http_respond(q->ex, status, q->up_ctype ? q->up_ctype : "application/json", h.p, q->body.p ? q->body.p : "",
                 q->body.len);
    buf_free(&h);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    app_rq_start_attempt(arg);
}

/* The attempt failed before the client saw anything: retry, fall back, or
 * answer with an error. */
static void rq_attempt_failed(struct rq *q, enum policy_outcome o, int status, const char *detail) {
    struct app *a = q->app;
    int64_t now = util_now_ms();
    q->xfer = NULL;
    q->lcall = NULL;
    policy_breaker_report(q->gen->pol, q->target_id, o, now);
    metrics_inc(&a->m.upstream_errors, 1, "target", q->target_name, "kind", policy_outcome_name(o), NULL);
    int64_t delay;
    if (policy_should_retry(q->route, o, q->attempt, now - q->t0_ms,
                            q->deadline_ms - q->t0_ms, q->retry_after_ms, util_rand64(), &delay)) {
        log_debug("%s: retrying %s in %lld ms after %s", q->id, q->target_name, (long long)delay,
                  policy_outcome_name(o));
        if (!q->retry_timer) q->retry_timer = evtimer_new(a->base, on_retry_timer, q);
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        rq_reset_attempt(q);
        evtimer_add(q->retry_timer, &tv);
        return;
    }
    if (policy_should_fallback(q->route, o) && q->plan_pos + 1 < q->plan.n) {
        char hs[32];
        snprintf(hs, sizeof hs, "HTTP %d", status);
        rq_next_target(q, policy_outcome_name(o), status ? hs : detail && *detail ? detail : NULL);
        return;
    }
    /* Nothing left: tell the client. Upstream HTTP errors pass through. */
    if (status) {
        respond_as_upstream(q, status, policy_outcome_name(o));
    } else if (o == POL_TIMEOUT) {
        char msg[300];
        snprintf(msg, sizeof msg, "The upstream %s timed out: %s.", q->target_name, detail);
        rq_error(q, 504, "upstream_error", "upstream_timeout", NULL, msg, NULL);
    } else if (o == POL_CIRCUIT_OPEN) {
        char msg[300];
        snprintf(msg, sizeof msg, "The upstream %s is failing and its circuit breaker is open; try again later.",
                 q->target_name);
        rq_error(q, 503, "upstream_error", "circuit_open", NULL, msg, "retry-after: 5\r\n");
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "The upstream %s could not be reached: %s.", q->target_name, detail);
        rq_error(q, 502, "upstream_error", "upstream_unreachable", NULL, msg, NULL);
    }
    rq_finish(q);
}

/* Leave the current target for the next one; detail (or why) says why in
 * the 503 that ends a chain no target could serve. */
static void rq_next_target(struct rq *q, const char *why, const char *detail) {
    metrics_inc(&q->app->m.fallbacks, 1, "route", q->route->cfg->name, "reason", why, NULL);
    size_t fl = strlen(q->fallback);
    snprintf(q->fallback + fl, sizeof q->fallback - fl, "%s%s", fl ? "," : "", why);
    size_t tl = strlen(q->tried);
    snprintf(q->tried + tl, sizeof q->tried - tl, "%s%s: %s", tl ? "; " : "", q->target_name, detail ? detail : why);
    q->plan_pos++;
    q->attempt = 0;
    rq_reset_attempt(q);
    app_rq_start_attempt(q);
}

/* Add the configured model names the upstream's list lacks, and replace
 * the body with the merged list. */
static void merge_models(struct rq *q, cJSON *up) {
    cJSON *data = cJSON_GetObjectItemCaseSensitive(up, "data");
    if (!cJSON_IsArray(data)) return;
    cJSON *ours = policy_list_models(q->gen->pol, q->key ? q->key->name : NULL, q->app->started_ms / 1000);
    cJSON *m;
    while (ours && (m = cJSON_DetachItemFromArray(ours, 0))) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        int dup = 0;
        const cJSON *u;
        cJSON_ArrayForEach(u, data) {
            const cJSON *uid = cJSON_GetObjectItemCaseSensitive(u, "id");
            if (cJSON_IsString(uid) && cJSON_IsString(id) && strcmp(uid->valuestring, id->valuestring) == 0) dup = 1;
        }
        if (dup) cJSON_Delete(m);
        else cJSON_AddItemToArray(data, m);
    }
    cJSON_Delete(ours);
    char *s = cJSON_PrintUnformatted(up);
    if (!s) return;
    buf_reset(&q->body);
    buf_appends(&q->body, s);
    free(s);
}

/* The answer cannot go to the client as it is, and none of it has been
 * sent: the next target if the route has one, else a 502 naming what was
 * wrong. The target counts a failure (a server that sends broken answers
 * is broken). */
static void bad_answer(struct rq *q, const char *code, const char *what) {
    policy_breaker_report(q->gen->pol, q->target_id, POL_5XX, util_now_ms());
    metrics_inc(&q->app->m.upstream_errors, 1, "target", q->target_name, "kind", "bad_response", NULL);
    if (policy_should_fallback(q->route, POL_5XX) && q->plan_pos + 1 < q->plan.n) {
        rq_next_target(q, "bad_response", what);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "The upstream %s answered with %s.", q->target_name, what);
    rq_error(q, 502, "upstream_error", code, NULL, msg, NULL);
    rq_finish(q);
}

/* on_data refused the answer (q->refused says why): before the first byte
 * it is a bad answer; after it, the stream ends with an error event. */
static void refused_answer(struct rq *q) {
    const char *code = q->refused ? q->refused : "upstream_bad_response";
    const char *what = q->refused_detail[0] ? q->refused_detail : "an answer llmpin could not read";
    if (q->started) {
        char msg[400];
        snprintf(msg, sizeof msg, "The upstream %s failed mid-stream: it sent %s.", q->target_name, what);
        policy_breaker_report(q->gen->pol, q->target_id, POL_5XX, util_now_ms());
        stream_fail(q, code, msg);
        rq_finish(q);
        return;
    }
    bad_answer(q, code, what);
}

static int only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i])) return 0;
    return 1;
}

static void on_done(void *ud, enum upstream_result r, const char *detail) {
    struct rq *q = ud;
    q->xfer = NULL;
    q->lcall = NULL;
    if (r == UP_ABORTED) {
        refused_answer(q);
        return;
    }
    if (r == UP_OK && q->sse && q->sse_pending.len) {
        /* the last event lacked its blank line: read it as the SDKs'
         * decoders do at the end of a stream, with the same checks */
        if (!only_space(q->sse_pending.p, q->sse_pending.len) &&
            on_sse_event(q, q->sse_pending.p, q->sse_pending.len) < 0) {
            if (q->refused) refused_answer(q);
            return; /* else the request left this attempt (a pin) */
        }
        buf_reset(&q->sse_pending);
    }
    if (r != UP_OK || (q->sse && !q->saw_done && q->started)) {
        if (q->started) {
            char msg[300];
            snprintf(msg, sizeof msg, "The upstream %s failed mid-stream: %s.", q->target_name,
                     r == UP_OK ? "the stream ended without [DONE]" : detail);
            policy_breaker_report(q->gen->pol, q->target_id, r == UP_TIMEOUT ? POL_TIMEOUT : POL_CONNECT,
                                  util_now_ms());
            stream_fail(q, r == UP_TIMEOUT ? "upstream_timeout" : "upstream_stream_broken", msg);
            rq_finish(q);
            return;
        }
        if (r == UP_OK) { /* SSE that ended before its first event */
            rq_attempt_failed(q, POL_CONNECT, 0, "empty stream");
            return;
        }
        rq_attempt_failed(q, r == UP_TIMEOUT ? POL_TIMEOUT : POL_CONNECT, 0, detail);
        return;
    }
    if (q->sse) { /* complete stream */
        policy_breaker_report(q->gen->pol, q->target_id, POL_OK, util_now_ms());
        http_stream_end(q->ex);
        q->outcome = "ok";
        rq_finish(q);
        return;
    }
    enum policy_outcome o = policy_classify_status(q->up_status);
    if (o != POL_OK) {
        if (o == POL_4XX) {
            policy_breaker_report(q->gen->pol, q->target_id, o, util_now_ms());
            respond_as_upstream(q, q->up_status, "upstream_4xx");
            rq_finish(q);
            return;
        }
        rq_attempt_failed(q, o, q->up_status, "");
        return;
    }
    /* 2xx body of an endpoint llmpin understands: one complete JSON
     * object, checked whole (a truncated body is a bad answer, whatever
     * else reads it). Passthrough bodies go as they came. */
    if (q->kind != RQ_PASSTHROUGH) {
        struct jsonv_error je;
        if (q->sse_unasked) {
            bad_answer(q, "upstream_bad_response", "an event stream to a request with \"stream\": false");
            return;
        }
        if (jsonv_check(q->body.p ? q->body.p : "", q->body.len, JSONV_OBJECT, &je) < 0) {
            char what[320];
            snprintf(what, sizeof what, "a body that is not a JSON object (%s at byte %zu of %zu)", je.message,
                     je.offset, q->body.len);
            bad_answer(q, "upstream_bad_response", what);
            return;
        }
    }
    /* Parsing it is only needed when something reads it (drift, pins,
     * token limits, the models list). */
    int need = q->app->drift || q->models_list || (q->key && q->key->tpm) ||
               (q->tgt && (q->tgt->pin_model || q->tgt->pin_fingerprint));
    cJSON *o2 = NULL;
    if (need) {
        /* the allocation-free scanner first; cJSON when it is unsure, and
         * for the models list, which is rewritten */
        if (q->models_list || !q->body.len || scan_answer(q, q->body.p, q->body.len, 0) != 0)
            o2 = q->body.len ? cJSON_ParseWithLength(q->body.p, q->body.len) : NULL;
    }
    if (o2 && q->models_list) {
        merge_models(q, o2);
        cJSON_Delete(o2);
        o2 = NULL;
    }
    if (o2) {
        inspect_object(q, o2, 0);
        cJSON_Delete(o2);
    }
    if (check_versions(q)) return;
    policy_breaker_report(q->gen->pol, q->target_id, POL_OK, util_now_ms());
    respond_as_upstream(q, q->up_status, "ok");
    rq_finish(q);
}

/* ---- starting an attempt -------------------------------------------------------- */

static char *upstream_url(const struct cfg_upstream *u, const char *model, const char *suffix,
                          const char *query) {
    struct buf b = {0};
    if (u->kind == CFG_UPSTREAM_AZURE) {
        /* base_url is the resource (https://R.openai.azure.com) or, as
         * Azure's own docs write it, the resource with /openai */
        char *esc = curl_easy_escape(NULL, model ? model : "", 0);
        size_t bl = strlen(u->base_url);
        int has_openai = bl >= 7 && strcmp(u->base_url + bl - 7, "/openai") == 0;
        buf_printf(&b, "%s%s/deployments/%s%s?api-version=%s", u->base_url, has_openai ? "" : "/openai",
                   esc ? esc : "", suffix, u->api_version ? u->api_version : "");
        curl_free(esc);
    } else {
        buf_appends(&b, u->base_url);
        buf_appends(&b, suffix);
        if (query && *query) {
            buf_append(&b, "?", 1);
            buf_appends(&b, query);
        }
    }
    return b.p;
}

/* The local target cannot serve this request (why->capability): skip it
 * (fallback reason "unsupported", whatever fallback_on says: nothing was
 * sent and nothing failed). With no target left, a 503 names every target
 * tried and why; the request itself is not at fault, since another model
 * may serve it. For the single model asked for, a prompt too long for it
 * and a JSON schema it cannot constrain to stay a 400 that names the
 * keyword, as OpenAI answers them. */
static void rq_unsupported(struct rq *q, const struct local_refusal *why) {
    if (q->plan_pos + 1 < q->plan.n) {
        rq_next_target(q, "unsupported", why->message);
        return;
    }
    if (!q->tried[0] && (strcmp(why->code, "context_length_exceeded") == 0 ||
                         (why->param && (strcmp(why->param, "response_format") == 0 ||
                                         strcmp(why->param, "tools") == 0)))) {
        rq_error(q, 400, "invalid_request_error", why->code, why->param, why->message, NULL);
        rq_finish(q);
        return;
    }
    char msg[1200];
    size_t wl = strlen(why->message);
    snprintf(msg, sizeof msg, "No target of route '%s' can serve this request: %s%s%s: %s%s",
             q->route->cfg->name, q->tried, q->tried[0] ? "; " : "", q->target_name, why->message,
             wl && why->message[wl - 1] == '.' ? "" : ".");
    rq_error(q, 503, "upstream_error", "no_capable_target", why->param, msg, NULL);
    rq_finish(q);
}

void app_rq_start_attempt(struct rq *q) {
    struct app *a = q->app;
    if (q->plan_pos >= q->plan.n) {
        rq_error(q, 503, "upstream_error", "no_target_available", NULL,
                 "No target of this route is available.", NULL);
        rq_finish(q);
        return;
    }
    q->target_idx = q->plan.index[q->plan_pos];
    q->tgt = &q->route->cfg->targets[q->target_idx];
    q->target_id = policy_target_id(q->route, q->target_idx);
    q->target_name = policy_target_name(q->gen->pol, q->target_id);
    int64_t now = util_now_ms();
    if (now >= q->deadline_ms) {
        rq_attempt_failed(q, POL_TIMEOUT, 0, "the request's total deadline passed");
        return;
    }
    /* An open circuit only matters when there is somewhere else to go: with
     * a single target, failing fast helps nobody, the upstream's own answer
     * (or error) is more useful to the client than a 503 from us. */
    if (q->plan.n > 1 && !policy_breaker_allow(q->gen->pol, q->target_id, now)) {
        q->attempt = 1 << 20; /* no retries on an open circuit */
        rq_attempt_failed(q, POL_CIRCUIT_OPEN, 0, "circuit open");
        return;
    }
    q->attempt++;
    const char *model = q->tgt->model ? q->tgt->model : q->model;
    struct upstream_req ur;
    memset(&ur, 0, sizeof ur);
    ur.on_head = on_head;
    ur.on_data = on_data;
    ur.on_done = on_done;
    ur.ud = q;
    char err[512];

    if (q->tgt->local) {
        struct local_model *lm = q->gen->local ? q->gen->local[q->tgt->local_idx] : NULL;
        struct local_refusal why = {.status = 500, .code = "local_model_error"};
        if (!lm) {
            why.status = 503;
            snprintf(why.message, sizeof why.message, "local model '%s' is not loaded", q->tgt->local);
        } else if (q->kind == RQ_PASSTHROUGH) {
            why.status = 404;
            why.code = "unknown_url";
            snprintf(why.message, sizeof why.message, "%s is not supported by local models", q->ex->path);
        } else {
            q->lcall = local_start(lm, &q->req, q->model, &ur, &why);
        }
        if (!q->lcall && why.capability) {
            rq_unsupported(q, &why);
            return;
        }
        if (!q->lcall) {
            policy_breaker_report(q->gen->pol, q->target_id, POL_CANCELLED, now);
            if (why.status == 429 && policy_should_fallback(q->route, POL_429) && q->plan_pos + 1 < q->plan.n) {
                rq_next_target(q, "429", why.message);
                return;
            }
            rq_error(q, why.status,
                     why.status == 429 ? "rate_limit_exceeded" : why.status >= 500 ? "server_error" : "invalid_request_error",
                     why.code, why.param, why.message, why.status == 429 ? "retry-after: 1\r\n" : NULL);
            rq_finish(q);
        }
        return;
    }

    const struct cfg_upstream *u = &q->gen->cfg->upstreams[q->tgt->upstream_idx];
    char *url = upstream_url(u, model, q->suffix, q->ex->query);
    const char *hdrs[40];
    int nh = 0;
    char auth[1024];
    hdrs[nh++] = "Content-Type: application/json";
    if (q->parsed && q->req.stream) hdrs[nh++] = "Accept: text/event-stream";
    if (u->api_key && *u->api_key) {
        if (u->kind == CFG_UPSTREAM_AZURE) snprintf(auth, sizeof auth, "api-key: %s", u->api_key);
        else snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->api_key);
        hdrs[nh++] = auth;
    } else if (q->gen->cfg->n_keys == 0) {
        /* transparent mode: the client's own upstream key goes through */
        const char *ca = http_header(q->ex, "Authorization");
        if (ca && strlen(ca) < 900) {
            snprintf(auth, sizeof auth, "Authorization: %s", ca);
            hdrs[nh++] = auth;
        }
    }
    char extra[16][512];
    for (size_t i = 0; i < u->n_headers && i < 16; i++) {
        snprintf(extra[i], sizeof extra[i], "%s: %s", u->headers[i].name, u->headers[i].value);
        hdrs[nh++] = extra[i];
    }
    const char *fwd[] = {"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", NULL};
    char fwdb[3][300];
    for (int i = 0; fwd[i]; i++) {
        const char *v = http_header(q->ex, fwd[i]);
        if (v && strlen(v) < 250) {
            snprintf(fwdb[i], sizeof fwdb[i], "%s: %s", fwd[i], v);
            hdrs[nh++] = fwdb[i];
        }
    }
    hdrs[nh] = NULL;
    ur.url = url;
    ur.method = strcmp(q->ex->method, "GET") == 0 ? "GET" : "POST";
    ur.headers = hdrs;
    /* Forward the client's bytes as they are unless the model is renamed. */
    char *rewritten = NULL;
    if (q->parsed && q->tgt->model && strcmp(q->tgt->model, q->model) != 0) {
        cJSON *copy = cJSON_Duplicate(q->req.body, 1);
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "model", cJSON_CreateString(q->tgt->model));
        rewritten = cJSON_PrintUnformatted(copy);
        cJSON_Delete(copy);
    }
    ur.body = rewritten ? rewritten : q->ex->body;
    ur.body_len = rewritten ? strlen(rewritten) : q->ex->body_len;
    ur.connect_timeout_ms = u->connect_timeout_ms;
    ur.first_byte_timeout_ms = u->first_byte_timeout_ms;
    ur.idle_timeout_ms = u->idle_timeout_ms;
    int64_t left = q->deadline_ms - now;
    ur.total_timeout_ms = (int)(u->total_timeout_ms > 0 && u->total_timeout_ms < left ? u->total_timeout_ms : left);
    ur.tls_verify = u->tls_verify;
    ur.ca_file = u->ca_file;
    ur.use_curl = u->use_curl;
    ur.max_conns = u->max_connections;
    q->xfer = upstream_start(a->up, &ur, err, sizeof err);
    free(url);
    free(rewritten);
    memset(auth, 0, sizeof auth);
    if (!q->xfer) rq_attempt_failed(q, POL_CONNECT, 0, err);
}

/* ---- endpoints ----------------------------------------------------------------- */

static const struct cfg_client_key *authenticate(struct app *a, struct http_exchange *ex, int *ok) {
    const struct cfg *c = a->gen->cfg;
    *ok = 1;
    if (c->n_keys == 0) return NULL;
    const char *h = http_header(ex, "Authorization");
    const char *tok = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) tok = h + 7;
    else tok = http_header(ex, "api-key");
    *ok = 0;
    if (!tok) {
        /* with allow_unauthenticated, a client with no key is served as
         * anonymous (no override, no admin); a wrong key is still a 401 */
        *ok = c->server.allow_unauthenticated && !h;
        return NULL;
    }
    while (*tok == ' ') tok++;
    size_t tl = strlen(tok);
    const struct cfg_client_key *found = NULL;
    for (size_t i = 0; i < c->n_keys; i++) /* no early exit: constant time over keys */
        if (util_ct_equal(c->keys[i].key, strlen(c->keys[i].key), tok, tl) && !found) found = &c->keys[i];
    *ok = found != NULL;
    return found;
}

static void respond_json(struct http_exchange *ex, int status, const char *body, const char *id) {
    char h[80];
    snprintf(h, sizeof h, "x-request-id: %s\r\n", id);
    http_respond(ex, status, "application/json", h, body, strlen(body));
}

void app_simple_error(struct http_exchange *ex, int status, const char *type, const char *code,
                         const char *param, const char *msg, const char *id) {
    struct buf b = {0};
    app_error_json(&b, msg, type, param, code);
    buf_append(&b, "\n", 1);
    char h[80];
    snprintf(h, sizeof h, "x-request-id: %s\r\n", id);
    http_respond(ex, status, "application/json", h, b.p, b.len);
    buf_free(&b);
}

static void handle_models(struct app *a, struct http_exchange *ex, const struct cfg_client_key *key,
                          const char *id, const char *rid) {
    cJSON *list = policy_list_models(a->gen->pol, key ? key->name : NULL, a->started_ms / 1000);
    if (!list) list = cJSON_CreateArray();
    /* local models: add their pinned hash */
    cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "id");
        int li = cJSON_IsString(mid) ? cfg_find_local_model(a->gen->cfg, mid->valuestring) : -1;
        if (li >= 0 && a->gen->local && a->gen->local[li])
            cJSON_AddStringToObject(m, "sha256", local_model_sha256(a->gen->local[li]));
    }
    char *out;
    if (id) {
        cJSON *hit = NULL;
        cJSON_ArrayForEach(m, list) {
            const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "id");
            if (cJSON_IsString(mid) && strcmp(mid->valuestring, id) == 0) hit = m;
        }
        if (!hit) {
            char msg[300];
            snprintf(msg, sizeof msg, "The model '%.200s' does not exist or you do not have access to it.", id);
            app_simple_error(ex, 404, "invalid_request_error", "model_not_found", "model", msg, rid);
            cJSON_Delete(list);
            return;
        }
        out = cJSON_PrintUnformatted(hit);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "object", "list");
        cJSON_AddItemToObject(root, "data", list);
        list = NULL;
        out = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
    }
    cJSON_Delete(list);
    respond_json(ex, 200, out, rid);
    free(out);
}

static void handle_metrics(struct app *a, struct http_exchange *ex) {
    struct buf b = {0};
    metrics_render(&a->m, &b);
    int64_t now = util_now_ms();
    buf_appends(&b, "# HELP llmpin_circuit_state Circuit breaker state per target (0 closed, 1 open, 2 half-open).\n"
                    "# TYPE llmpin_circuit_state gauge\n");
    for (int i = 0; i < policy_n_targets(a->gen->pol); i++)
        buf_printf(&b, "llmpin_circuit_state{target=\"%s\"} %d\n", policy_target_name(a->gen->pol, i),
                   (int)policy_breaker_state(a->gen->pol, i, now));
    buf_printf(&b, "# HELP llmpin_open_connections Client connections.\n# TYPE llmpin_open_connections gauge\n"
                   "llmpin_open_connections %d\n", http_server_connections(a->http));
    buf_printf(&b, "# HELP llmpin_upstream_connections Connections the built-in HTTP/1.1 client holds to "
                   "plain-http upstreams (idle and busy).\n# TYPE llmpin_upstream_connections gauge\n"
                   "llmpin_upstream_connections %d\n", upstream_open_connections(a->up));
    if (a->drift) {
        struct drift_stats st;
        drift_stats(a->drift, &st);
        buf_printf(&b, "# TYPE llmpin_drift_records_written_total counter\nllmpin_drift_records_written_total %llu\n"
                       "# TYPE llmpin_drift_records_dropped_total counter\nllmpin_drift_records_dropped_total %llu\n"
                       "# TYPE llmpin_drift_queue gauge\nllmpin_drift_queue %llu\n"
                       "# HELP llmpin_drift_writer_handovers_total Batches the low-priority drift writer, "
                       "starved of CPU, left to the catch-up thread.\n"
                       "# TYPE llmpin_drift_writer_handovers_total counter\nllmpin_drift_writer_handovers_total %llu\n",
                   (unsigned long long)st.written, (unsigned long long)st.dropped, (unsigned long long)st.queued,
                   (unsigned long long)st.handovers);
    }
    http_respond(ex, 200, "text/plain; version=0.0.4", NULL, b.p, b.len);
    buf_free(&b);
}

struct rq *app_rq_new(struct app *a, struct http_exchange *ex, enum rq_kind kind,
                         const struct cfg_client_key *key, const char *rid) {
    struct rq *q = util_xcalloc(1, sizeof *q);
    buf_init_on(&q->output, q->output_mem, sizeof q->output_mem);
    buf_init_on(&q->up_extra_headers, q->hdr_mem, sizeof q->hdr_mem);
    buf_init_on(&q->body, q->body_mem, sizeof q->body_mem);
    q->app = a;
    q->gen = a->gen;
    q->gen->refs++;
    q->ex = ex;
    q->kind = kind;
    q->key = key;
    q->target_id = -1;
    q->retry_after_ms = -1;
    q->suffix = ex->path + 3;
    q->t0_ms = util_now_ms();
    q->deadline_ms = q->t0_ms + q->gen->cfg->server.request_timeout_ms;
    util_strlcpy(q->id, rid, sizeof q->id);
    a->active_rqs++;
    a->m.inflight++;
    ex->ud = q;
    ex->on_abort = on_client_abort;
    ex->on_drain = on_client_drain;
    ex->hook_ud = q;
    return q;
}

/* GET /v1/models with a catch-all route to a remote upstream: the upstream
 * knows which models exist, so ask it, and add the configured names. */
static int models_passthrough(struct app *a, struct http_exchange *ex, const struct cfg_client_key *key,
                              const char *rid) {
    struct policy_error pe;
    const struct policy_route *r =
        policy_match(a->gen->pol, "\x7fllmpin-catch-all-probe", key ? key->name : NULL, NULL, 0, &pe);
    if (!r || !r->cfg->targets[0].upstream) return 0;
    struct rq *q = app_rq_new(a, ex, RQ_PASSTHROUGH, key, rid);
    q->models_list = strcmp(ex->path, "/v1/models") == 0;
    q->route = r;
    q->model = NULL;
    q->plan.n = 1;
    q->plan.index[0] = 0;
    q->plan.shadow = q->plan.probe = -1;
    app_rq_start_attempt(q);
    return 1;
}

static void handle_inner(struct http_exchange *ex, struct app *a, const char *rid,
                         const struct cfg_client_key **keyp);

/* Entry point for every request. Requests answered without a struct rq
 * (health, metrics, models, auth failures, admin) are logged and counted
 * here; the others by rq_finish. */
static void handle(struct http_exchange *ex, void *ud) {
    struct app *a = ud;
    char rid[40];
    const struct cfg_client_key *key = NULL;
    util_make_id("req_", rid, sizeof rid);
    handle_inner(ex, a, rid, &key);
    if (ex->ud || ex->on_abort) return; /* an rq, a reload or a tools job owns it */
    app_log_request(a, ex, rid, ex->status, NULL, key ? key->name : NULL);
}

void app_log_request(struct app *a, const struct http_exchange *ex, const char *rid, int status, const char *model,
                     const char *key_name) {
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    metrics_inc(&a->m.requests, 1, "route", "", "target", "", "status", st, NULL);
    if (strcmp(ex->path, "/healthz") && strcmp(ex->path, "/readyz") && strcmp(ex->path, "/metrics"))
        access_line(ex, rid, status, model, NULL, NULL, NULL, key_name, 0, NULL);
}

static void handle_inner(struct http_exchange *ex, struct app *a, const char *rid,
                         const struct cfg_client_key **keyp) {
    const char *path = ex->path;
    int is_get = strcmp(ex->method, "GET") == 0, is_post = strcmp(ex->method, "POST") == 0;

    if (strcmp(path, "/healthz") == 0) {
        respond_json(ex, 200, "{\"status\":\"ok\"}\n", rid);
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (a->draining) respond_json(ex, 503, "{\"status\":\"draining\"}\n", rid);
        else respond_json(ex, 200, "{\"status\":\"ready\"}\n", rid);
        return;
    }
    if (strcmp(path, "/metrics") == 0 && is_get) {
        handle_metrics(a, ex);
        return;
    }
    int is_v1 = strncmp(path, "/v1/", 4) == 0;
    int is_admin = strncmp(path, "/admin/", 7) == 0;
    int is_tools = app_is_tools_path(path);
    if (!is_v1 && !is_admin && !is_tools) {
        char msg[200];
        snprintf(msg, sizeof msg, "Unknown path %.100s; llmpin serves the OpenAI API under /v1.", path);
        app_simple_error(ex, 404, "invalid_request_error", "unknown_url", NULL, msg, rid);
        return;
    }
    int auth_ok;
    const struct cfg_client_key *key = authenticate(a, ex, &auth_ok);
    *keyp = key;
    if (!auth_ok) {
        app_simple_error(ex, 401, "invalid_request_error", "invalid_api_key", NULL,
                     http_header(ex, "Authorization") || http_header(ex, "api-key")
                         ? "Incorrect API key provided. Use a key from llmpin's \"keys\" configuration."
                         : "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
                     rid);
        return;
    }
    if (is_tools) {
        app_tools_endpoint(a, ex, key, rid);
        return;
    }
    if (is_admin) {
        if (a->gen->cfg->n_keys > 0 && (!key || !key->admin)) {
            app_simple_error(ex, 403, "invalid_request_error", "admin_required", NULL,
                         "This endpoint needs a client key with \"admin\": true.", rid);
            return;
        }
        if (strcmp(path, "/admin/targets") == 0 && is_get) {
            cJSON *t = policy_targets_json(a->gen->pol, util_now_ms());
            char *s = cJSON_PrintUnformatted(t);
            respond_json(ex, 200, s, rid);
            free(s);
            cJSON_Delete(t);
            return;
        }
        if (strcmp(path, "/admin/drift") == 0 && is_get) {
            cJSON *t = a->drift ? drift_admin_json(a->drift) : cJSON_CreateObject();
            if (!a->drift) cJSON_AddBoolToObject(t, "enabled", 0);
            char *s = cJSON_PrintUnformatted(t);
            respond_json(ex, 200, s, rid);
            free(s);
            cJSON_Delete(t);
            return;
        }
        if (strcmp(path, "/admin/reload") == 0 && is_post) {
            app_start_reload(a, ex, rid);
            return;
        }
        app_simple_error(ex, 404, "invalid_request_error", "unknown_url", NULL, "Unknown admin endpoint.", rid);
        return;
    }
    if ((strcmp(path, "/v1/models") == 0 || strncmp(path, "/v1/models/", 11) == 0) && is_get &&
        models_passthrough(a, ex, key, rid))
        return;
    if (strcmp(path, "/v1/models") == 0 && is_get) {
        handle_models(a, ex, key, NULL, rid);
        return;
    }
    if (strncmp(path, "/v1/models/", 11) == 0 && is_get) {
        handle_models(a, ex, key, path + 11, rid);
        return;
    }
    enum rq_kind kind;
    if (strcmp(path, "/v1/chat/completions") == 0) kind = RQ_CHAT;
    else if (strcmp(path, "/v1/completions") == 0) kind = RQ_COMPLETIONS;
    else if (strcmp(path, "/v1/embeddings") == 0) kind = RQ_EMBEDDINGS;
    else kind = RQ_PASSTHROUGH;
    if (!is_post) {
        char msg[160];
        snprintf(msg, sizeof msg, "Method %s is not allowed on %.100s.", ex->method, path);
        app_simple_error(ex, kind == RQ_PASSTHROUGH ? 404 : 405, "invalid_request_error", "method_not_allowed", NULL,
                     msg, rid);
        return;
    }
    if (a->draining) {
        app_simple_error(ex, 503, "server_error", "shutting_down", NULL, "llmpin is shutting down.", rid);
        return;
    }

    struct rq *q = app_rq_new(a, ex, kind, key, rid);

    if (kind != RQ_PASSTHROUGH) {
        char param[96], code[64], msg[400];
        enum llm_endpoint ep = kind == RQ_CHAT ? LLM_CHAT : kind == RQ_COMPLETIONS ? LLM_COMPLETIONS : LLM_EMBEDDINGS;
        int rc = llm_request_parse(ep, ex->body, ex->body_len, &q->req, param, sizeof param, code, sizeof code, msg,
                                   sizeof msg);
        q->parsed = 1;
        if (rc) {
            rq_error(q, 400, "invalid_request_error", code, param, msg, NULL);
            rq_finish(q);
            return;
        }
        q->model = q->req.model;
    } else {
        /* unknown /v1 POST: route by "model" if the body has one. A body
         * that is a JSON object is held to the one-reading rule of
         * common/jsonv.h (it is routed on and forwarded as is); anything
         * else (multipart, binary) goes through unread. */
        size_t i = 0;
        while (i < ex->body_len && strchr(" \t\r\n", ex->body[i])) i++;
        cJSON *b = NULL;
        if (i < ex->body_len && ex->body[i] == '{') {
            struct jsonv_error je;
            if (jsonv_check(ex->body, ex->body_len, JSONV_NO_DUP_KEYS | JSONV_NO_NUL, &je) < 0) {
                char msg[400];
                int line, col;
                llm_line_col(ex->body, ex->body_len, je.offset, &line, &col);
                snprintf(msg, sizeof msg,
                         "We could not parse the JSON body of your request: %s at line %d, column %d (byte %zu).",
                         je.message, line, col, je.offset);
                rq_error(q, 400, "invalid_request_error", "invalid_json", NULL, msg, NULL);
                rq_finish(q);
                return;
            }
            b = cJSON_ParseWithLength(ex->body, ex->body_len);
        }
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(b, "model");
        if (cJSON_IsString(m)) {
            memset(&q->req, 0, sizeof q->req);
            q->req.body = b;
            q->req.model = m->valuestring;
            q->model = m->valuestring;
            q->parsed = 1;
        } else {
            cJSON_Delete(b);
            q->model = "*";
        }
    }

    struct policy_error pe;
    const char *ovr = http_header(ex, "X-Llmpin-Route");
    /* X-Llmpin-Route: a key's right; anonymous clients have it only where
     * there are no keys at all (loopback, see cfg_validate) */
    q->route = policy_match(q->gen->pol, q->model, key ? key->name : NULL, ovr,
                            key ? key->route_override : q->gen->cfg->n_keys == 0, &pe);
    if (!q->route) {
        rq_error(q, pe.status, pe.type, pe.code, strcmp(pe.code, "model_not_found") == 0 ? "model" : NULL, pe.message,
                 NULL);
        rq_finish(q);
        return;
    }
    if (key) {
        q->est_tokens = (int)(ex->body_len / 4) + (q->req.max_tokens ? q->req.max_tokens : 256);
        if (policy_ratelimit_take(q->gen->pol, key->name, util_now_ms(), q->est_tokens, &q->rl)) {
            char h[64];
            q->est_tokens = 0;
            q->has_rl = 1;
            snprintf(h, sizeof h, "retry-after: %lld\r\n", (long long)((q->rl.retry_after_ms + 999) / 1000));
            char msg[200];
            snprintf(msg, sizeof msg, "Rate limit reached for key '%s'. Try again in %.1fs.", key->name,
                     (double)q->rl.retry_after_ms / 1000);
            rq_error(q, 429, "requests", "rate_limit_exceeded", NULL, msg, h);
            rq_finish(q);
            return;
        }
        q->has_rl = q->rl.limit_requests || q->rl.limit_tokens;
    }
    if (policy_plan(q->gen->pol, q->route, key ? key->name : NULL, util_rand64(), util_now_ms(), &q->plan) != 0 &&
        q->route->cfg->n_targets == 1 && q->route->cfg->mode != CFG_MODE_SHADOW) {
        /* single target with an open circuit: still try it (see rq_start_attempt) */
        q->plan.n = 1;
        q->plan.index[0] = 0;
        q->plan.shadow = q->plan.probe = -1;
    }
    if (q->plan.n == 0) {
        rq_error(q, q->plan.error.status, q->plan.error.type, q->plan.error.code, NULL, q->plan.error.message, NULL);
        rq_finish(q);
        return;
    }
    for (int i = 0; i < q->plan.n_skipped; i++) {
        size_t fl = strlen(q->fallback);
        snprintf(q->fallback + fl, sizeof q->fallback - fl, "%s%s", fl ? "," : "", q->plan.skipped[i].reason);
    }
    /* Starting the mirror only queues a transfer (or a local job): it
     * does not delay the primary, and it holds its own copy of the body. */
    if (q->plan.shadow >= 0) app_start_shadow(q);
    app_rq_start_attempt(q);
}

/* ---- process lifecycle ------------------------------------------------------------- */

static void maybe_exit(struct app *a) {
    if (!a->draining) return;
    if (http_server_active(a->http) == 0 && a->active_rqs == 0) event_base_loopexit(a->base, NULL);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    (void)fd;
    (void)what;
    if (util_now_ms() >= a->drain_deadline_ms) {
        log_warn("drain timeout: %d requests still in flight are cut off", a->active_rqs);
        event_base_loopexit(a->base, NULL);
        return;
    }
    maybe_exit(a);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    log_access_flush();
}

static void on_term(evutil_socket_t sig, short what, void *arg) {
    struct app *a = arg;
    (void)what;
    if (a->draining) {
        log_warn("second signal: exiting now");
        event_base_loopexit(a->base, NULL);
        return;
    }
    log_info("signal %d: draining %d in-flight requests", (int)sig, a->active_rqs);
    a->draining = 1;
    a->drain_deadline_ms = util_now_ms() + a->gen->cfg->server.drain_timeout_ms;
    http_server_drain(a->http);
    a->ev_drain = event_new(a->base, -1, EV_PERSIST, on_drain_tick, a);
    struct timeval tv = {0, 20000};
    event_add(a->ev_drain, &tv);
    maybe_exit(a);
}

static int load_local_models(struct app *a, struct gen *g, char *err, size_t errlen) {
    const struct cfg *c = g->cfg;
    g->local = util_xcalloc(c->n_local_models ? c->n_local_models : 1, sizeof *g->local);
    g->owned = util_xcalloc(c->n_local_models ? c->n_local_models : 1, 1);
    for (size_t i = 0; i < c->n_local_models; i++) {
        g->owned[i] = 1;
        log_info("loading local model '%s' from %s", c->local_models[i].name, c->local_models[i].path);
        g->local[i] = local_model_open(a->base, &c->local_models[i], err, errlen);
        if (!g->local[i]) return -1;
        log_info("local model '%s' ready (sha256 %s)", c->local_models[i].name, local_model_sha256(g->local[i]));
    }
    return 0;
}

/* curl's connection limit is per host, for the whole multi handle: use the
 * largest max_connections of any upstream. */
/* The client-side limits of the HTTP server, from server.* */
struct http_server_opts app_server_opts(const struct cfg *c) {
    struct http_server_opts o = {.max_body_bytes = c->server.max_body_bytes,
                                 .max_connections = c->server.max_connections,
                                 .idle_timeout_ms = c->server.idle_timeout_ms,
                                 .header_timeout_ms = c->server.header_timeout_ms,
                                 .body_timeout_ms = c->server.body_timeout_ms,
                                 .send_timeout_ms = c->server.send_timeout_ms};
    return o;
}

int app_max_upstream_conns(const struct cfg *c) {
    int m = 0;
    for (size_t i = 0; i < c->n_upstreams; i++)
        if (c->upstreams[i].max_connections > m) m = c->upstreams[i].max_connections;
    return m > 0 ? m : 256;
}

static void drift_log(void *ud, const char *level, const char *msg) {
    (void)ud;
    int l = log_level_parse(level);
    log_msg(l < 0 ? LOG_WARN : (enum log_level)l, "drift: %s", msg);
}

int app_run(struct app_opts *o) {
    struct app a;
    memset(&a, 0, sizeof a);
    char err[1024];
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The changelist lets epoll coalesce the del/add pairs curl asks for
     * when a connection goes back to its cache and is reused at once. */
    struct event_config *ecfg = event_config_new();
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    a.base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    a.started_ms = util_wall_ms();
    a.config_path = o->config_path;
    a.no_drift = o->no_drift;
    struct cfg *cfg = o->cfg;
    a.listen_host = util_strdup(cfg->server.listen_host);
    a.listen_port = cfg->server.listen_port;
    a.listen_from_cmdline = o->listen_from_cmdline;
    a.log_level_cmdline = o->log_level_cmdline;
    o->cfg = NULL;
    int rc = 1;
    struct gen *g = util_xcalloc(1, sizeof *g);
    g->cfg = cfg;
    g->refs = 1;
    a.gen = g;
    if (log_level_parse(cfg->server.log_level) >= 0) log_set_level((enum log_level)log_level_parse(cfg->server.log_level));
    if (log_set_access_file(cfg->server.access_log) != 0) {
        fprintf(stderr, "llmpin: server.access_log: cannot open %s: %s\n", cfg->server.access_log, strerror(errno));
        goto out;
    }
    g->pol = policy_new(cfg, err, sizeof err);
    if (!g->pol) {
        fprintf(stderr, "llmpin: %s: %s\n", cfg->path, err);
        goto out;
    }
    if (load_local_models(&a, g, err, sizeof err) != 0) {
        fprintf(stderr, "llmpin: %s\n", err);
        goto out;
    }
    if (cfg->drift.enabled && !o->no_drift) {
        a.drift = drift_open(&cfg->drift, err, sizeof err);
        if (!a.drift) {
            fprintf(stderr, "llmpin: drift: %s\n", err);
            goto out;
        }
        drift_set_log(a.drift, drift_log, NULL);
    }
    app_probes_start(&a);
    a.up = upstream_client_new(a.base, app_max_upstream_conns(cfg), err, sizeof err);
    if (!a.up) {
        fprintf(stderr, "llmpin: %s\n", err);
        goto out;
    }
    struct http_server_opts ho = app_server_opts(cfg);
    a.http = http_server_new(a.base, cfg->server.listen_host, cfg->server.listen_port, &ho, handle, &a, err,
                             sizeof err);
    if (!a.http) {
        fprintf(stderr, "llmpin: %s\n", err);
        goto out;
    }
    a.ev_term = evsignal_new(a.base, SIGTERM, on_term, &a);
    a.ev_int = evsignal_new(a.base, SIGINT, on_term, &a);
    a.ev_hup = evsignal_new(a.base, SIGHUP, app_on_hup, &a);
    a.ev_flush = event_new(a.base, -1, EV_PERSIST, on_flush_timer, &a);
    struct timeval flush_tv = {0, 200000};
    event_add(a.ev_flush, &flush_tv);
    event_add(a.ev_term, NULL);
    event_add(a.ev_int, NULL);
    event_add(a.ev_hup, NULL);
    log_info("listening on %s:%d", cfg->server.listen_host, http_server_port(a.http));
    if (cfg->n_keys == 0)
        log_warn("no client keys: any process that can connect to %s:%d may call /admin/reload and choose "
                 "routes with X-Llmpin-Route (add \"keys\" with an admin key to close them)",
                 cfg->server.listen_host, http_server_port(a.http));
    if (o->ready_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", o->ready_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%s:%d\n", cfg->server.listen_host, http_server_port(a.http));
            fclose(f);
            rename(tmp, o->ready_file);
        }
    }
    event_base_dispatch(a.base);
    rc = 0;
    log_access_flush();
    log_info("stopped");
out:
    if (a.http) http_server_free(a.http);
    if (a.up) upstream_client_free(a.up);
    if (a.drift) drift_close(a.drift);
    if (a.ev_term) event_free(a.ev_term);
    if (a.ev_int) event_free(a.ev_int);
    if (a.ev_hup) event_free(a.ev_hup);
    if (a.ev_drain) event_free(a.ev_drain);
    if (a.ev_flush) event_free(a.ev_flush);
    log_access_flush();
    app_probes_stop(&a);
    app_gen_unref(a.gen);
    metrics_free(&a.m);
    free(a.listen_host);
    event_base_free(a.base);
    curl_global_cleanup();
    return rc;
}
