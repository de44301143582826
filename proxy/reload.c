/*
 * reload.c - hot reload of the config file (POST /admin/reload, SIGHUP).
 *
 * The file is read, validated and its new local models verified on a
 * thread (hashing a model takes seconds); the swap to the new generation
 * happens on the loop. In-flight requests keep the generation they started
 * with. The listening socket never moves: a file that changes
 * server.listen is refused, and the address rules are checked against the
 * bound address.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/local.h"
#include "adapters/upstream.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/policy.h"
#include "proxy/app_internal.h"

/* ---- hot reload ------------------------------------------------------------------------ */

/* A reload reads and validates the file and verifies any new local model
 * (hashing a model file takes seconds) on a thread; the swap itself happens
 * on the loop. In-flight requests keep the generation they started with. */
struct reload {
    struct app *app;
    struct http_exchange *ex;           /* POST /admin/reload, or NULL (SIGHUP) */
    char rid[40];
    struct cfg *cfg;
    struct local_model **local;         /* new models opened by the thread */
    int *reuse;                         /* reuse[i]: index in the old generation, or -1 */
    char err[1024];
    int ok;
    struct event *done;
    pthread_t th;
};

/* The new file must describe the socket that is actually bound: with
 * --listen the file's server.listen is ignored, as at start; without it a
 * changed server.listen is refused (restart to move the socket). Then the
 * rules that depend on the address (no keys only on loopback) are checked
 * again against the bound address. */
static int reload_check_listen(const struct app *a, struct cfg *c, char *err, size_t errlen) {
    if (!a->listen_from_cmdline &&
        (strcmp(c->server.listen_host, a->listen_host) != 0 || c->server.listen_port != a->listen_port)) {
        snprintf(err, errlen,
                 "%s: server.listen: changed from %s:%d to %s:%d; a reload cannot move the listening socket, "
                 "restart llmpin to change it",
                 c->path ? c->path : "<config>", a->listen_host, a->listen_port, c->server.listen_host,
                 c->server.listen_port);
        return -1;
    }
    free(c->server.listen_host);
    c->server.listen_host = util_strdup(a->listen_host);
    c->server.listen_port = a->listen_port;
    if (a->log_level_cmdline) {
        free(c->server.log_level);
        c->server.log_level = util_strdup(a->log_level_cmdline);
    }
    return cfg_validate(c, err, errlen) == 0 ? 0 : -1;
}

static void *reload_thread(void *arg) {
    struct reload *r = arg;
    const struct gen *old = r->app->gen; /* immutable while a reload runs */
    r->cfg = cfg_load_file(r->app->config_path, r->err, sizeof r->err);
    if (r->cfg && reload_check_listen(r->app, r->cfg, r->err, sizeof r->err) < 0) {
        cfg_free(r->cfg);
        r->cfg = NULL;
    }
    if (r->cfg) {
        size_t n = r->cfg->n_local_models;
        r->local = util_xcalloc(n ? n : 1, sizeof *r->local);
        r->reuse = util_xcalloc(n ? n : 1, sizeof *r->reuse);
        r->ok = 1;
        for (size_t i = 0; i < n && r->ok; i++) {
            r->reuse[i] = -1;
            for (size_t j = 0; j < old->cfg->n_local_models; j++)
                if (old->local[j] && strcmp(old->cfg->local_models[j].name, r->cfg->local_models[i].name) == 0 &&
                    local_model_same(old->local[j], &r->cfg->local_models[i]))
                    r->reuse[i] = (int)j;
            if (r->reuse[i] >= 0) continue;
            r->local[i] = local_model_open(r->app->base, &r->cfg->local_models[i], r->err, sizeof r->err);
            if (!r->local[i]) r->ok = 0;
        }
    }
    event_active(r->done, EV_READ, 0);
    return NULL;
}

static void reload_answer(struct reload *r, int status, const char *body) {
    if (!r->ex) return;
    char h[80];
    snprintf(h, sizeof h, "x-request-id: %s\r\n", r->rid);
    http_respond(r->ex, status, "application/json", h, body, strlen(body));
}

static void on_reload_abort(struct http_exchange *ex, void *ud) {
    struct reload *r = ud;
    http_abandon(ex);
    r->ex = NULL;
}

static void reload_done(evutil_socket_t fd, short what, void *arg) {
    struct reload *r = arg;
    struct app *a = r->app;
    (void)fd;
    (void)what;
    pthread_join(r->th, NULL);
    struct policy *pol = NULL;
    if (r->ok) {
        pol = policy_new_from(r->cfg, a->gen->pol, r->err, sizeof r->err);
        if (!pol) r->ok = 0;
    }
    struct buf b = {0};
    if (!r->ok) {
        for (size_t i = 0; r->cfg && r->local && i < r->cfg->n_local_models; i++)
            if (r->local[i]) local_model_close(r->local[i]);
        log_error("reload rejected, the old configuration stays in force: %s", r->err);
        app_error_json(&b, r->err, "invalid_request_error", NULL, "invalid_config");
        reload_answer(r, 400, b.p);
        cfg_free(r->cfg);
    } else {
        struct gen *old = a->gen, *g = util_xcalloc(1, sizeof *g);
        size_t n = r->cfg->n_local_models;
        g->cfg = r->cfg;
        g->pol = pol;
        g->refs = 1;
        g->local = r->local;
        g->owned = util_xcalloc(n ? n : 1, 1);
        for (size_t i = 0; i < n; i++) {
            if (r->reuse[i] >= 0) {
                g->local[i] = old->local[r->reuse[i]];
                old->owned[r->reuse[i]] = 0;
            }
            g->owned[i] = 1;
        }
        r->local = NULL;
        a->gen = g;
        struct http_server_opts ho = app_server_opts(g->cfg);
        http_server_set_opts(a->http, &ho);
        upstream_client_set_max_conns(a->up, app_max_upstream_conns(g->cfg));
        if (log_level_parse(g->cfg->server.log_level) >= 0)
            log_set_level((enum log_level)log_level_parse(g->cfg->server.log_level));
        app_gen_unref(old);
        log_info("configuration reloaded from %s: %zu routes, %zu upstreams, %zu local models", g->cfg->path,
                 g->cfg->n_routes, g->cfg->n_upstreams, n);
        buf_printf(&b, "{\"status\":\"reloaded\",\"routes\":%zu,\"upstreams\":%zu,\"local_models\":%zu}\n",
                   g->cfg->n_routes, g->cfg->n_upstreams, n);
        reload_answer(r, 200, b.p);
    }
    buf_free(&b);
    event_free(r->done);
    free(r->local);
    free(r->reuse);
    a->reload = NULL;
    free(r);
    if (a->reload_again && !a->draining) {
        a->reload_again = 0;
        log_info("SIGHUP: a signal came during the reload that just ended; reloading again");
        app_start_reload(a, NULL, "sighup");
    }
}

void app_start_reload(struct app *a, struct http_exchange *ex, const char *rid) {
    if (!a->config_path) {
        if (ex) app_simple_error(ex, 409, "invalid_request_error", "no_config_file",
                             NULL, "llmpin was started without --config; there is no file to reload.", rid);
        else log_warn("SIGHUP: started without --config, nothing to reload");
        return;
    }
    if (a->reload) {
        if (ex) {
            app_simple_error(ex, 409, "invalid_request_error", "reload_in_progress", NULL,
                         "A reload is already in progress.", rid);
        } else {
            /* the file may have changed after the running reload read it */
            a->reload_again = 1;
            log_info("SIGHUP: a reload is in progress; another one follows when it ends");
        }
        return;
    }
    struct reload *r = util_xcalloc(1, sizeof *r);
    r->app = a;
    r->ex = ex;
    snprintf(r->rid, sizeof r->rid, "%s", rid);
    r->done = event_new(a->base, -1, 0, reload_done, r);
    if (ex) {
        ex->on_abort = on_reload_abort;
        ex->hook_ud = r;
    }
    a->reload = r;
    if (pthread_create(&r->th, NULL, reload_thread, r) != 0) {
        log_error("reload: cannot start a thread: %s", strerror(errno));
        if (ex) app_simple_error(ex, 500, "server_error", "reload_failed", NULL, "Cannot start the reload thread.", rid);
        event_free(r->done);
        a->reload = NULL;
        free(r);
    }
}

void app_on_hup(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    log_info("SIGHUP: reloading configuration");
    app_start_reload(arg, NULL, "sighup");
}

