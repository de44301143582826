/*
 * rq.h - one request on its way through the proxy (struct rq), shared by
 * the parts that run requests: app.c (client requests, the attempt and
 * response path) and headless.c (shadow mirrors, drift probes, webhook).
 */
#ifndef LLMPIN_RQ_H
#define LLMPIN_RQ_H

#include <stdint.h>

#include "common/llm.h"
#include "common/util.h"
#include "policy/policy.h"
#include "proxy/app_internal.h"
#include "proxy/http.h"

struct drift_probe;
struct drift_probe_suite;
struct drift_event;

enum rq_kind { RQ_CHAT, RQ_COMPLETIONS, RQ_EMBEDDINGS, RQ_PASSTHROUGH };

struct rq {
    struct app *app;
    struct gen *gen;
    struct http_exchange *ex;
    char id[40];
    enum rq_kind kind;
    const char *suffix;                 /* path after /v1, e.g. "/chat/completions" */
    struct llm_request req;
    int parsed;
    const char *model;                  /* requested model */
    const struct cfg_client_key *key;
    const struct policy_route *route;
    struct policy_plan plan;
    int plan_pos;
    int attempt;                        /* attempts on the current target */
    int target_idx;
    int target_id;
    const struct cfg_target *tgt;
    const char *target_name;
    char fallback[128];                 /* x-llmpin-fallback reason(s) */
    char tried[512];                    /* "target: why; ..." of the targets left behind */
    int64_t deadline_ms;
    int64_t t0_ms;
    /* the attempt in progress */
    struct upstream_xfer *xfer;
    struct local_call *lcall;
    struct event *retry_timer;
    int up_status;
    char *up_ctype;
    struct buf up_extra_headers;        /* upstream headers we pass on */
    char *up_request_id;
    char *version_headers;              /* JSON */
    int64_t retry_after_ms;
    struct buf body;                    /* non-stream body or error body */
    int sse;                            /* the response is an SSE stream */
    struct buf sse_pending;             /* bytes of an incomplete event */
    int started;                        /* client response head sent */
    int saw_done;                       /* data: [DONE] seen */
    int sse_unasked;                    /* an event stream answered stream: false */
    const char *refused;                /* why on_data refused the answer (then UP_ABORTED) */
    int broken_status;                  /* a started stream ended with an error event: 502 or 504 */
    char refused_detail[320];
    int paused;
    int64_t ttft_ms;
    /* what the answer revealed */
    char *served_model;                 /* served_mem, or the heap when longer */
    char *fingerprint;                  /* fp_mem, or the heap */
    int prompt_tokens, completion_tokens;
    struct buf output;                  /* captured output text */
    /* Storage for the usual sizes of the above and of body and
     * up_extra_headers, so that an ordinary answer costs no malloc. */
    char served_mem[64], fp_mem[48];
    char output_mem[256], hdr_mem[256], body_mem[1024];
    int status_sent;
    const char *outcome;                /* for the access log */
    int est_tokens;
    struct policy_rl_info rl;           /* limits of the client key, for x-ratelimit-* */
    int has_rl;
    int models_list;                    /* GET /v1/models passed through: merge ours */
    /* headless requests (no client): shadow mirrors and drift probes */
    int is_shadow;
    const struct policy_route *shadow_route; /* slot to give back */
    struct probe_run *probe_run;
    const struct drift_probe *probe;
};

/* One scheduled run of a probe suite against one model name. */
struct probe_run {
    struct app *app;
    struct probe_sched *ps;
    char *model;                        /* "model" sent in each probe */
    const struct policy_route *route;   /* a route named by the suite, or NULL: route by model */
    size_t next;                        /* next probe to send */
    int inflight;
};

struct probe_sched {
    struct app *app;
    struct drift_probe_suite *suite;
    char *name;
    char **targets;
    size_t n_targets;
    int interval_s;
    struct event *timer;
    int running;                        /* runs in progress */
};

/* app.c: a request object for ex (kind, client key, request id), freed
 * with app_rq_free; app_rq_start_attempt runs its plan from plan_pos. */
struct rq *app_rq_new(struct app *a, struct http_exchange *ex, enum rq_kind kind,
                      const struct cfg_client_key *key, const char *rid);
void app_rq_free(struct rq *q);
void app_rq_start_attempt(struct rq *q);

/* headless.c */
void app_start_shadow(struct rq *primary);              /* mirror to the route's shadow target */
void app_probe_run_step(struct probe_run *pr, int finished_one);
void app_webhook_post(struct app *a, const struct drift_event *ev);
void app_probes_start(struct app *a);                   /* schedule drift.probes */
void app_probes_stop(struct app *a);

#endif
