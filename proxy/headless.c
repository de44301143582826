/*
 * headless.c - requests with no client: shadow mirrors of client requests,
 * scheduled drift probe suites, and the drift webhook. They run the same
 * request path as client requests (app.c's struct rq) on an exchange with
 * no connection, so their answers reach only the drift recorder.
 */
#include "proxy/app_internal.h"
#include "proxy/rq.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/upstream.h"
#include "common/llm.h"
#include "common/log.h"
#include "common/util.h"
#include "drift/drift.h"
#include "policy/policy.h"
#include "proxy/http.h"

/* ---- headless requests: shadow mirrors and probes ----------------------------------- */

/* An exchange with no connection: the response functions of http.c only
 * mark it finished, so the whole request path runs unchanged and its answer
 * goes nowhere but the drift recorder. */
static struct http_exchange *detached_exchange(struct app *a, const char *path, const char *body, size_t len) {
    struct http_exchange *ex = util_xcalloc(1, sizeof *ex);
    snprintf(ex->method, sizeof ex->method, "POST");
    ex->head_copy = util_strdup(path); /* the exchange owns its strings through head_copy */
    ex->path = ex->head_copy;
    ex->query = "";
    ex->body = util_xmalloc(len + 1);
    memcpy(ex->body, body, len);
    ex->body[len] = 0;
    ex->body_len = len;
    snprintf(ex->peer, sizeof ex->peer, "llmpin");
    ex->start_us = util_now_us();
    ex->srv = a->http;
    return ex;
}

/* Mirror the client's request to the route's shadow target. Never touches
 * the client's exchange; failures only show in records and metrics. */
void app_start_shadow(struct rq *primary) {
    struct app *a = primary->app;
    struct http_exchange *ex = detached_exchange(a, primary->ex->path, primary->ex->body, primary->ex->body_len);
    char id[48];
    snprintf(id, sizeof id, "%s-shadow", primary->id);
    struct rq *q = app_rq_new(a, ex, primary->kind, primary->key, id);
    q->is_shadow = 1;
    q->shadow_route = primary->route;
    char param[96], code[64], msg[400];
    enum llm_endpoint ep = q->kind == RQ_CHAT ? LLM_CHAT : q->kind == RQ_COMPLETIONS ? LLM_COMPLETIONS : LLM_EMBEDDINGS;
    if (q->kind == RQ_PASSTHROUGH ||
        llm_request_parse(ep, ex->body, ex->body_len, &q->req, param, sizeof param, code, sizeof code, msg, sizeof msg)) {
        q->parsed = q->kind != RQ_PASSTHROUGH;
        http_abandon(ex);
        app_rq_free(q);
        policy_shadow_end(a->gen->pol, primary->route);
        return;
    }
    q->parsed = 1;
    q->model = q->req.model;
    q->route = primary->route;
    q->plan.n = 1;
    q->plan.index[0] = primary->plan.shadow;
    q->plan.shadow = q->plan.probe = -1;
    app_rq_start_attempt(q);
}

static void probe_send(struct probe_run *pr, const struct drift_probe *p) {
    struct app *a = pr->app;
    cJSON *body = drift_probe_request(p, pr->model);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) return;
    struct http_exchange *ex = detached_exchange(a, "/v1/chat/completions", text, strlen(text));
    free(text);
    char id[40];
    util_make_id("probe_", id, sizeof id);
    struct rq *q = app_rq_new(a, ex, RQ_CHAT, NULL, id);
    q->probe_run = pr;
    q->probe = p;
    pr->inflight++;
    char param[96], code[64], msg[400];
    struct policy_error pe;
    if (llm_request_parse(LLM_CHAT, ex->body, ex->body_len, &q->req, param, sizeof param, code, sizeof code, msg,
                          sizeof msg) != 0 ||
        !(q->route = pr->route ? pr->route : policy_match(q->gen->pol, q->req.model, NULL, NULL, 0, &pe)) ||
        policy_plan(q->gen->pol, q->route, NULL, util_rand64(), util_now_ms(), &q->plan) != 0) {
        q->parsed = 1;
        log_warn("probe suite %s: cannot send probe %s to '%s'", pr->ps->name, p->id, pr->model);
        http_abandon(ex);
        q->probe_run = NULL;
        app_rq_free(q);
        pr->inflight--;
        return;
    }
    q->parsed = 1;
    q->model = q->req.model;
    if (q->plan.shadow >= 0) policy_shadow_end(q->gen->pol, q->route);
    q->plan.shadow = -1;
    app_rq_start_attempt(q);
}

#define PROBE_CONCURRENCY 2

/* Keep PROBE_CONCURRENCY probes of a run in flight; free the run at the end. */
void app_probe_run_step(struct probe_run *pr, int finished_one) {
    if (finished_one) pr->inflight--;
    while (!pr->app->draining && pr->inflight < PROBE_CONCURRENCY && pr->next < pr->ps->suite->n) {
        const struct drift_probe *p = &pr->ps->suite->probes[pr->next++];
        probe_send(pr, p);
    }
    if (pr->inflight == 0 && (pr->next >= pr->ps->suite->n || pr->app->draining)) {
        pr->ps->running--;
        free(pr->model);
        free(pr);
    }
}

/* A probe target names a route, a local model, "upstream/model" or a model
 * name. Probes then go through that route (with the route's own model name)
 * or are routed by model like any client request. */
static void probe_target(struct app *a, const char *t, struct probe_run *pr) {
    const struct policy_route *r = policy_route_by_name(a->gen->pol, t);
    if (r) {
        const char *model = t;
        for (size_t i = 0; i < r->cfg->n_match; i++)
            if (!strpbrk(r->cfg->match[i], "*?")) { model = r->cfg->match[i]; break; }
        pr->route = r;
        pr->model = util_strdup(model);
        return;
    }
    const char *slash = strchr(t, '/');
    if (slash && cfg_find_local_model(a->gen->cfg, t) < 0) {
        /* upstream/model: the route that sends this model to that upstream */
        size_t ul = (size_t)(slash - t);
        for (size_t i = 0; i < a->gen->cfg->n_routes && !pr->route; i++) {
            const struct cfg_route *cr = &a->gen->cfg->routes[i];
            for (size_t k = 0; k < cr->n_targets; k++) {
                const struct cfg_target *ct = &cr->targets[k];
                if (ct->upstream && strlen(ct->upstream) == ul && strncmp(ct->upstream, t, ul) == 0 &&
                    (!ct->model || strcmp(ct->model, slash + 1) == 0)) {
                    pr->route = policy_route_by_name(a->gen->pol, cr->name);
                    break;
                }
            }
        }
        pr->model = util_strdup(slash + 1);
        return;
    }
    pr->model = util_strdup(t);
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg) {
    struct probe_sched *ps = arg;
    (void)fd;
    (void)what;
    if (ps->running || ps->app->draining || !ps->app->drift) return; /* previous run still going */
    for (size_t i = 0; i < ps->n_targets; i++) {
        struct probe_run *pr = util_xcalloc(1, sizeof *pr);
        pr->app = ps->app;
        pr->ps = ps;
        probe_target(ps->app, ps->targets[i], pr);
        ps->running++;
        log_info("probe suite %s: running %zu probes against '%s'", ps->name, ps->suite->n, pr->model);
        app_probe_run_step(pr, 0);
    }
}

/* ---- webhook ------------------------------------------------------------------------- */

static void webhook_head(void *ud, const struct upstream_resp_head *h) {
    (void)ud;
    if (h->status >= 300) log_warn("drift webhook answered HTTP %d", h->status);
}
static int webhook_data(void *ud, const char *d, size_t n) { (void)ud; (void)d; (void)n; return 0; }
static void webhook_done(void *ud, enum upstream_result r, const char *detail) {
    (void)ud;
    if (r != UP_OK) log_warn("drift webhook failed: %s", detail);
}

/* POST a drift event as JSON, fire and forget, on the loop (libcurl multi). */
void app_webhook_post(struct app *a, const struct drift_event *ev) {
    const char *url = a->gen->cfg->drift.webhook_url;
    if (!url || !*url) return;
    cJSON *j = drift_event_to_json(ev);
    char *body = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!body) return;
    const char *hdrs[] = {"Content-Type: application/json", "User-Agent: llmpin", NULL};
    struct upstream_req ur = {.url = url, .method = "POST", .headers = hdrs, .body = body,
                              .body_len = strlen(body), .connect_timeout_ms = 5000, .first_byte_timeout_ms = 10000,
                              .idle_timeout_ms = 10000, .total_timeout_ms = 15000, .tls_verify = 1,
                              .on_head = webhook_head, .on_data = webhook_data, .on_done = webhook_done};
    char err[256];
    if (!upstream_start(a->up, &ur, err, sizeof err)) log_warn("drift webhook: %s", err);
    free(body);
}

void app_probes_start(struct app *a) {
    const struct cfg_drift *d = &a->gen->cfg->drift;
    for (size_t i = 0; i < d->n_probes; i++) {
        char err[512];
        struct drift_probe_suite *s = drift_probe_suite_load(d->probes[i].path, err, sizeof err);
        if (!s) {
            log_error("drift.probes[%zu]: %s", i, err);
            continue;
        }
        struct probe_sched *ps = util_xcalloc(1, sizeof *ps);
        ps->app = a;
        ps->suite = s;
        ps->name = util_strdup(d->probes[i].name ? d->probes[i].name : d->probes[i].path);
        ps->n_targets = d->probes[i].n_targets;
        ps->targets = util_xcalloc(ps->n_targets + 1, sizeof *ps->targets);
        for (size_t k = 0; k < ps->n_targets; k++) ps->targets[k] = util_strdup(d->probes[i].targets[k]);
        ps->interval_s = d->probes[i].interval_s > 0 ? d->probes[i].interval_s : 3600;
        ps->timer = event_new(a->base, -1, EV_PERSIST, on_probe_timer, ps);
        struct timeval tv = {ps->interval_s, 0};
        event_add(ps->timer, &tv);
        a->probes = util_xrealloc(a->probes, (size_t)(a->n_probes + 1) * sizeof *a->probes);
        a->probes[a->n_probes++] = ps;
        log_info("probe suite %s: %zu probes every %d s", ps->name, s->n, ps->interval_s);
        /* first run right away, so there is a baseline */
        struct timeval now = {0, 1000};
        event_base_once(a->base, -1, EV_TIMEOUT, on_probe_timer, ps, &now);
    }
}

void app_probes_stop(struct app *a) {
    for (int i = 0; i < a->n_probes; i++) {
        struct probe_sched *ps = a->probes[i];
        event_free(ps->timer);
        drift_probe_suite_free(ps->suite);
        for (size_t k = 0; k < ps->n_targets; k++) free(ps->targets[k]);
        free(ps->targets);
        free(ps->name);
        free(ps);
    }
    free(a->probes);
    a->probes = NULL;
    a->n_probes = 0;
}
