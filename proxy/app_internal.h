/*
 * app_internal.h - what the parts of the proxy application share: the
 * generation (config, policy, local models) requests run under, the
 * process-wide state, and the helpers more than one part uses.
 *
 *   proxy/app.c     requests: routing, attempts, the response path,
 *                   endpoints, the process lifecycle (struct rq: proxy/rq.h)
 *   proxy/headless.c  requests without a client: shadow mirrors, drift
 *                   probe suites, the drift webhook
 *   proxy/reload.c  hot reload: read and check the file on a thread, swap
 *                   the generation on the loop
 *   proxy/tools_ep.c  /tokenize, /detokenize, /apply-template for local models
 */
#ifndef LLMPIN_APP_INTERNAL_H
#define LLMPIN_APP_INTERNAL_H

#include <event2/event.h>
#include <stdint.h>

#include "common/util.h"
#include "config/config.h"
#include "proxy/http.h"
#include "proxy/metrics.h"

struct local_model;
struct policy;
struct upstream_client;
struct drift;
struct probe_sched;
struct reload;

struct gen {
    struct cfg *cfg;
    struct policy *pol;
    struct local_model **local; /* parallel to cfg->local_models */
    char *owned;                /* owned[i]: this generation closes local[i] */
    int refs;
};

struct app {
    struct event_base *base;
    struct gen *gen;
    struct http_server *http;
    struct upstream_client *up;
    struct drift *drift;
    struct metrics m;
    struct event *ev_term, *ev_int, *ev_hup, *ev_drain, *ev_flush;
    int draining;
    int64_t drain_deadline_ms;
    int64_t started_ms;
    const char *config_path;
    int no_drift;
    /* What the socket is bound to (server.listen as it was at start, after
     * --listen): a reload cannot move it, so a new file is checked
     * against this address, not its own. */
    char *listen_host;
    int listen_port;
    int listen_from_cmdline;
    const char *log_level_cmdline;
    int reload_again;                   /* a SIGHUP came during a reload */
    int active_rqs;
    struct probe_sched **probes;
    int n_probes;
    struct reload *reload;              /* in progress, or NULL */
};

/* Drop a reference to a generation; the last one frees it. */
void app_gen_unref(struct gen *g);

/* An OpenAI-shaped error object {"error":{...}} appended to b. */
void app_error_json(struct buf *b, const char *msg, const char *type, const char *param, const char *code);

/* Answer ex with an OpenAI-shaped error and x-request-id rid. */
void app_simple_error(struct http_exchange *ex, int status, const char *type, const char *code, const char *param,
                      const char *msg, const char *rid);

/* The HTTP server's and the upstream client's settings from a config. */
struct http_server_opts app_server_opts(const struct cfg *c);
int app_max_upstream_conns(const struct cfg *c);

/* Count and log (access line) a request answered outside an rq. */
void app_log_request(struct app *a, const struct http_exchange *ex, const char *rid, int status, const char *model,
                     const char *key_name);

/* /tokenize, /detokenize, /apply-template (tools_ep.c): after auth. */
int app_is_tools_path(const char *path);
struct cfg_client_key;
void app_tools_endpoint(struct app *a, struct http_exchange *ex, const struct cfg_client_key *key, const char *rid);

/* Reload the config file: from POST /admin/reload (ex, answered when done)
 * or SIGHUP (ex NULL). reload.c. */
void app_start_reload(struct app *a, struct http_exchange *ex, const char *rid);
void app_on_hup(evutil_socket_t sig, short what, void *arg);

#endif
