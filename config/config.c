/*
 * config.c - the parts of the configuration that do not read files:
 * defaults, freeing, lookups, glob matching, the loopback test, and
 * cfg_validate(), which checks the invariants every struct cfg must hold
 * whether it came from a file (config_load.c) or was built in code by the
 * command line (`llmpin serve --upstream URL`).
 *
 * Why validation lives here and not only in the loader: the CLI builds a
 * config without any JSON, and it must not be able to produce a server that
 * listens on 0.0.0.0 without keys, or a route that names a missing upstream.
 * The loader checks field syntax (types, ranges, units) with the JSON path of
 * each field; cfg_validate checks the cross references and global rules.
 *
 * Messages never contain the value of a secret (client keys, upstream API
 * keys, header values): a duplicate key is reported by the names of the two
 * entries, never by the key.
 */
#include "config/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers --------------------------------------------------------- */

char *cfg__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int cfg__errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *cfg_file(const struct cfg *c) {
    return (c && c->path) ? c->path : "<command line>";
}

static const char *const chat_templates[] = {
    "llama2", "llama3", "chatml", "zephyr", "mistral", "gemma", "phi3", "plain", NULL
};

int cfg__chat_template_known(const char *t) {
    for (int i = 0; t && chat_templates[i]; i++)
        if (strcmp(t, chat_templates[i]) == 0) return 1;
    return 0;
}

/* Append `name` to a comma-separated list in out, truncating with "..." when
 * the buffer is full. */
static void list_append(char *out, size_t outlen, const char *name) {
    size_t used = strlen(out);
    if (used + 1 >= outlen) return;
    int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", name);
    if (n < 0 || (size_t)n >= outlen - used) {
        if (outlen >= 4) memcpy(out + outlen - 4, "...", 4);
    }
}

void cfg__list_upstreams(const struct cfg *c, char *out, size_t outlen) {
    if (!outlen) return;
    out[0] = '\0';
    for (size_t i = 0; i < c->n_upstreams; i++)
        if (c->upstreams[i].name) list_append(out, outlen, c->upstreams[i].name);
    if (!out[0]) snprintf(out, outlen, "none defined");
}

void cfg__list_local_models(const struct cfg *c, char *out, size_t outlen) {
    if (!outlen) return;
    out[0] = '\0';
    for (size_t i = 0; i < c->n_local_models; i++)
        if (c->local_models[i].name) list_append(out, outlen, c->local_models[i].name);
    if (!out[0]) snprintf(out, outlen, "none defined");
}

/* ---- defaults -------------------------------------------------------------- */

struct cfg *cfg_new_default(void) {
    struct cfg *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->path = cfg__strdup("<command line>");
    c->server.listen_host = cfg__strdup("127.0.0.1");
    c->server.listen_port = 8080;
    c->server.allow_unauthenticated = 0;
    c->server.max_body_bytes = (size_t)8 << 20;
    c->server.request_timeout_ms = 600000;
    c->server.drain_timeout_ms = 30000;
    c->server.idle_timeout_ms = 75000;
    c->server.header_timeout_ms = 10000;
    c->server.body_timeout_ms = 60000;
    c->server.send_timeout_ms = 60000;
    c->server.max_connections = 10000;
    c->server.log_level = cfg__strdup("info");
    c->server.access_log = cfg__strdup("-");

    c->breaker.consecutive_failures = 5;
    c->breaker.error_rate = 0.5;
    c->breaker.window_s = 30;
    c->breaker.min_requests = 20;
    c->breaker.cooldown_ms = 30000;
    c->breaker.half_open_requests = 1;

    c->drift.enabled = 1;
    c->drift.db_path = cfg__strdup("llmpin-drift.db");
    c->drift.store_outputs = CFG_STORE_HASH;
    c->drift.commit_interval_ms = 100;
    c->drift.writer_nice = CFG_WRITER_IDLE;
    c->drift.retention_days = 90;
    c->drift.retention_mb = 1024;
    c->drift.false_alarm_rate = 1e-4;
    c->drift.min_drop = 0.15;
    c->drift.baseline_probes = 100;

    if (!c->path || !c->server.listen_host || !c->server.log_level ||
        !c->server.access_log || !c->drift.db_path) {
        cfg_free(c);
        return NULL;
    }
    return c;
}

/* ---- freeing ---------------------------------------------------------------- */

static void free_strv(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Overwrite a secret before freeing it so it does not linger in freed heap. */
static void free_secret(char *s) {
    if (!s) return;
    volatile char *p = s;
    while (*p) *p++ = 0;
    free(s);
}

void cfg__free_route(struct cfg_route *r) {
    free(r->name);
    free_strv(r->match, r->n_match);
    free_strv(r->keys, r->n_keys);
    for (size_t j = 0; r->targets && j < r->n_targets; j++) {
        struct cfg_target *t = &r->targets[j];
        free(t->upstream);
        free(t->local);
        free(t->model);
        free(t->pin_model);
        free(t->pin_fingerprint);
    }
    free(r->targets);
    free(r->enabled_if_env);
    memset(r, 0, sizeof(*r));
}

void cfg_free(struct cfg *c) {
    if (!c) return;
    free(c->path);
    free(c->server.listen_host);
    free(c->server.log_level);
    free(c->server.access_log);

    for (size_t i = 0; c->keys && i < c->n_keys; i++) {
        free(c->keys[i].name);
        free_secret(c->keys[i].key);
    }
    free(c->keys);

    for (size_t i = 0; c->upstreams && i < c->n_upstreams; i++) {
        struct cfg_upstream *u = &c->upstreams[i];
        free(u->name);
        free(u->base_url);
        free(u->api_key_env);
        free_secret(u->api_key);
        free(u->api_version);
        for (size_t j = 0; u->headers && j < u->n_headers; j++) {
            free(u->headers[j].name);
            free_secret(u->headers[j].value);
        }
        free(u->headers);
        free(u->ca_file);
    }
    free(c->upstreams);

    for (size_t i = 0; c->local_models && i < c->n_local_models; i++) {
        struct cfg_local_model *m = &c->local_models[i];
        free(m->name);
        free(m->path);
        free(m->sha256);
        free(m->chat_template);
        free(m->chat_template_file);
        free(m->chat_template_name);
    }
    free(c->local_models);

    for (size_t i = 0; c->routes && i < c->n_routes; i++)
        cfg__free_route(&c->routes[i]);
    free(c->routes);

    free(c->drift.db_path);
    free(c->drift.webhook_url);
    for (size_t i = 0; c->drift.probes && i < c->drift.n_probes; i++) {
        struct cfg_probe_suite *p = &c->drift.probes[i];
        free(p->name);
        free(p->path);
        free_strv(p->targets, p->n_targets);
    }
    free(c->drift.probes);
    free(c);
}

/* ---- lookups ---------------------------------------------------------------- */

int cfg_find_upstream(const struct cfg *c, const char *name) {
    if (!c || !name) return -1;
    for (size_t i = 0; i < c->n_upstreams; i++)
        if (c->upstreams[i].name && strcmp(c->upstreams[i].name, name) == 0) return (int)i;
    return -1;
}

int cfg_find_local_model(const struct cfg *c, const char *name) {
    if (!c || !name) return -1;
    for (size_t i = 0; i < c->n_local_models; i++)
        if (c->local_models[i].name && strcmp(c->local_models[i].name, name) == 0) return (int)i;
    return -1;
}

/* ---- glob and loopback -------------------------------------------------------- */

/*
 * '*' matches any run of bytes (including none), '?' exactly one byte; every
 * other byte matches itself. No escapes, no character classes: model names
 * do not need them. Linear backtracking: on a mismatch, retry from just after
 * the last '*' with one more byte consumed by it. O(len(p) * len(s)) worst.
 */
int cfg_glob_match(const char *p, const char *s) {
    if (!p || !s) return 0;
    const char *star = NULL, *retry = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            retry = s;
        } else if (*p == '?' || (*p && *p == *s)) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++retry;
        } else {
            return 0;
        }
    }
    while (*p == '*') p++;
    return *p == '\0';
}

int cfg_host_is_loopback(const char *host) {
    if (!host) return 0;
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf)) return 0;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "localhost") == 0 || strcasecmp(buf, "localhost.") == 0) return 1;

    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return 0;
}

/* ---- validation ------------------------------------------------------------------ */

static int empty(const char *s) { return !s || !*s; }

static int is_http_url(const char *u) {
    const char *rest;
    if (strncmp(u, "http://", 7) == 0) rest = u + 7;
    else if (strncmp(u, "https://", 8) == 0) rest = u + 8;
    else return 0;
    return *rest && *rest != '/';
}

static int is_token_char(unsigned char ch) {
    return isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

int cfg__check_route(struct cfg *c, struct cfg_route *r, size_t idx,
                     const char *file, char *err, size_t errlen) {
    char known[512];
    if (empty(r->name))
        return cfg__errf(err, errlen, "%s: routes[%zu].name: must not be empty", file, idx);
    if (r->n_match == 0)
        return cfg__errf(err, errlen, "%s: routes[%zu].match: required (a model name or glob such as \"gpt-4o*\")", file, idx);
    for (size_t j = 0; j < r->n_match; j++)
        if (empty(r->match[j]))
            return cfg__errf(err, errlen, "%s: routes[%zu].match[%zu]: must not be empty", file, idx, j);
    for (size_t j = 0; j < r->n_keys; j++) {
        size_t k;
        for (k = 0; k < c->n_keys; k++)
            if (c->keys[k].name && r->keys[j] && strcmp(c->keys[k].name, r->keys[j]) == 0) break;
        if (k == c->n_keys)
            return cfg__errf(err, errlen, "%s: routes[%zu].keys[%zu]: no client key named \"%s\"",
                             file, idx, j, r->keys[j] ? r->keys[j] : "");
    }
    if ((unsigned)r->mode > CFG_MODE_SHADOW)
        return cfg__errf(err, errlen, "%s: routes[%zu].mode: invalid mode %d", file, idx, (int)r->mode);
    if (r->n_targets == 0)
        return cfg__errf(err, errlen, "%s: routes[%zu].targets: must list at least one target", file, idx);
    if (r->mode == CFG_MODE_SHADOW && r->n_targets != 2)
        return cfg__errf(err, errlen, "%s: routes[%zu].targets: mode shadow needs exactly 2 targets (the one that serves, then the mirror), got %zu",
                         file, idx, r->n_targets);
    if (r->fallback_on & ~(unsigned)CFG_FB_ALL)
        return cfg__errf(err, errlen, "%s: routes[%zu].fallback_on: unknown condition bits 0x%x", file, idx, r->fallback_on);
    if ((unsigned)r->on_drift > CFG_DRIFT_REJECT)
        return cfg__errf(err, errlen, "%s: routes[%zu].on_drift: invalid value %d", file, idx, (int)r->on_drift);
    if (r->retry.max_attempts < 1 || r->retry.max_attempts > 10)
        return cfg__errf(err, errlen, "%s: routes[%zu].retry.max_attempts: must be between 1 and 10, got %d", file, idx, r->retry.max_attempts);
    if (r->retry.base_ms < 0)
        return cfg__errf(err, errlen, "%s: routes[%zu].retry.base: must not be negative", file, idx);
    if (r->retry.max_ms < r->retry.base_ms)
        return cfg__errf(err, errlen, "%s: routes[%zu].retry.max: must be at least retry.base (%d ms), got %d ms",
                         file, idx, r->retry.base_ms, r->retry.max_ms);
    if (!(r->shadow_sample >= 0.0 && r->shadow_sample <= 1.0))
        return cfg__errf(err, errlen, "%s: routes[%zu].shadow.sample: must be between 0 and 1, got %g", file, idx, r->shadow_sample);
    if (r->shadow_max_inflight < 1)
        return cfg__errf(err, errlen, "%s: routes[%zu].shadow.max_inflight: must be at least 1, got %d", file, idx, r->shadow_max_inflight);

    for (size_t j = 0; j < r->n_targets; j++) {
        struct cfg_target *t = &r->targets[j];
        t->upstream_idx = -1;
        t->local_idx = -1;
        if (!t->upstream == !t->local)
            return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu]: set exactly one of \"upstream\" or \"local\"", file, idx, j);
        if (t->upstream) {
            t->upstream_idx = cfg_find_upstream(c, t->upstream);
            if (t->upstream_idx < 0) {
                cfg__list_upstreams(c, known, sizeof(known));
                return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu].upstream: no upstream named \"%s\" (known: %s)",
                                 file, idx, j, t->upstream, known);
            }
            if (r->mode == CFG_MODE_LOCAL)
                return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu]: mode local allows only local targets, got upstream \"%s\"",
                                 file, idx, j, t->upstream);
        } else {
            t->local_idx = cfg_find_local_model(c, t->local);
            if (t->local_idx < 0) {
                cfg__list_local_models(c, known, sizeof(known));
                return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu].local: no local model named \"%s\" (known: %s)",
                                 file, idx, j, t->local, known);
            }
            if (r->mode == CFG_MODE_REMOTE)
                return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu]: mode remote allows only upstream targets, got local \"%s\" (use mode local or fallback)",
                                 file, idx, j, t->local);
            if (t->pin_model || t->pin_fingerprint)
                return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu].pin: pins apply only to upstream targets (a local model is pinned by its sha256)",
                                 file, idx, j);
            if (t->model)
                return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu].model: applies only to upstream targets", file, idx, j);
        }
        if (!(t->weight >= 0.0) || isinf(t->weight))
            return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu].weight: must be a finite number >= 0, got %g", file, idx, j, t->weight);
        if (r->mode == CFG_MODE_SPLIT && !(t->weight > 0.0))
            return cfg__errf(err, errlen, "%s: routes[%zu].targets[%zu].weight: mode split needs a weight > 0, got %g", file, idx, j, t->weight);
    }
    return 0;
}

int cfg_validate(struct cfg *c, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!c) return cfg__errf(err, errlen, "<command line>: no configuration");
    const char *file = cfg_file(c);
    const struct cfg_server *s = &c->server;

    /* server */
    if (empty(s->listen_host))
        return cfg__errf(err, errlen, "%s: server.listen: missing host (write \"127.0.0.1:8080\" for this machine only, or \"0.0.0.0:8080\" for all interfaces)", file);
    if (s->listen_port < 0 || s->listen_port > 65535)
        return cfg__errf(err, errlen, "%s: server.listen: port %d is out of range (0-65535)", file, s->listen_port);
    if (s->max_body_bytes == 0)
        return cfg__errf(err, errlen, "%s: server.max_body_bytes: must be greater than 0", file);
    if (s->request_timeout_ms <= 0)
        return cfg__errf(err, errlen, "%s: server.request_timeout: must be greater than 0, got %d ms", file, s->request_timeout_ms);
    if (s->drain_timeout_ms < 0)
        return cfg__errf(err, errlen, "%s: server.drain_timeout: must not be negative, got %d ms", file, s->drain_timeout_ms);
    if (s->max_connections < 1)
        return cfg__errf(err, errlen, "%s: server.max_connections: must be at least 1, got %d", file, s->max_connections);
    if (s->log_level && strcmp(s->log_level, "debug") && strcmp(s->log_level, "info") &&
        strcmp(s->log_level, "warn") && strcmp(s->log_level, "error"))
        return cfg__errf(err, errlen, "%s: server.log_level: expected one of debug, info, warn, error, got \"%s\"", file, s->log_level);
    if (s->access_log && !*s->access_log)
        return cfg__errf(err, errlen, "%s: server.access_log: must not be empty (a path, \"-\" for stderr, or \"off\")", file);

    /* client keys */
    for (size_t i = 0; i < c->n_keys; i++) {
        const struct cfg_client_key *k = &c->keys[i];
        if (empty(k->name))
            return cfg__errf(err, errlen, "%s: keys[%zu].name: must not be empty", file, i);
        if (empty(k->key))
            return cfg__errf(err, errlen, "%s: keys[%zu].key: must not be empty", file, i);
        if (k->rpm < 0)
            return cfg__errf(err, errlen, "%s: keys[%zu].rpm: must not be negative, got %d", file, i, k->rpm);
        if (k->tpm < 0)
            return cfg__errf(err, errlen, "%s: keys[%zu].tpm: must not be negative, got %d", file, i, k->tpm);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->keys[j].name, k->name) == 0)
                return cfg__errf(err, errlen, "%s: keys[%zu].name: duplicate name \"%s\" (also keys[%zu])", file, i, k->name, j);
            if (strcmp(c->keys[j].key, k->key) == 0)
                return cfg__errf(err, errlen, "%s: keys[%zu].key: same key as keys[%zu] (\"%s\"); every client needs its own key",
                                 file, i, j, c->keys[j].name);
        }
    }
    /* Without keys, anyone who can connect may also reload the config
     * (the admin endpoints) and pick routes (X-Llmpin-Route): fine on loopback only.
     * Anonymous /v1 traffic on a reachable address needs an admin key, so
     * those stay behind it. */
    if (!cfg_host_is_loopback(s->listen_host)) {
        int admin = 0;
        for (size_t i = 0; i < c->n_keys; i++) admin |= c->keys[i].admin;
        if (c->n_keys == 0 && !s->allow_unauthenticated)
            return cfg__errf(err, errlen, "%s: server.listen: refusing to listen on %s without client keys; add \"keys\" "
                             "(with server.allow_unauthenticated, clients without a key are served too)",
                             file, s->listen_host);
        if (s->allow_unauthenticated && !admin)
            return cfg__errf(err, errlen, "%s: server.allow_unauthenticated: on %s it needs a key with \"admin\": true in "
                             "\"keys\"; without one, /admin/reload and X-Llmpin-Route would be open to anyone who can connect",
                             file, s->listen_host);
    }

    /* upstreams */
    for (size_t i = 0; i < c->n_upstreams; i++) {
        const struct cfg_upstream *u = &c->upstreams[i];
        if (empty(u->name))
            return cfg__errf(err, errlen, "%s: upstreams: an upstream name must not be empty", file);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->upstreams[j].name, u->name) == 0)
                return cfg__errf(err, errlen, "%s: upstreams.%s: duplicate upstream name", file, u->name);
        if ((unsigned)u->kind > CFG_UPSTREAM_ANTHROPIC)
            return cfg__errf(err, errlen, "%s: upstreams.%s.kind: invalid kind %d", file, u->name, (int)u->kind);
        if (empty(u->base_url))
            return cfg__errf(err, errlen, "%s: upstreams.%s.base_url: required (e.g. \"https://api.openai.com/v1\")", file, u->name);
        if (!is_http_url(u->base_url))
            return cfg__errf(err, errlen, "%s: upstreams.%s.base_url: expected an http:// or https:// URL, got \"%s\"", file, u->name, u->base_url);
        if (u->kind == CFG_UPSTREAM_AZURE && empty(u->api_version))
            return cfg__errf(err, errlen, "%s: upstreams.%s.api_version: required for kind \"azure\" (e.g. \"2024-10-21\")", file, u->name);
        if (u->connect_timeout_ms <= 0 || u->first_byte_timeout_ms <= 0 ||
            u->idle_timeout_ms <= 0 || u->total_timeout_ms <= 0)
            return cfg__errf(err, errlen, "%s: upstreams.%s.timeouts: every timeout must be greater than 0", file, u->name);
        if (u->max_connections < 1)
            return cfg__errf(err, errlen, "%s: upstreams.%s.max_connections: must be at least 1, got %d", file, u->name, u->max_connections);
        for (size_t j = 0; j < u->n_headers; j++) {
            const struct cfg_header *h = &u->headers[j];
            if (empty(h->name))
                return cfg__errf(err, errlen, "%s: upstreams.%s.headers: a header name must not be empty", file, u->name);
            for (const char *p = h->name; *p; p++)
                if (!is_token_char((unsigned char)*p))
                    return cfg__errf(err, errlen, "%s: upstreams.%s.headers.%s: invalid character in header name", file, u->name, h->name);
            if (!h->value)
                return cfg__errf(err, errlen, "%s: upstreams.%s.headers.%s: missing value", file, u->name, h->name);
            if (strpbrk(h->value, "\r\n"))
                return cfg__errf(err, errlen, "%s: upstreams.%s.headers.%s: value contains a line break", file, u->name, h->name);
        }
    }

    /* local models */
    for (size_t i = 0; i < c->n_local_models; i++) {
        const struct cfg_local_model *m = &c->local_models[i];
        if (empty(m->name))
            return cfg__errf(err, errlen, "%s: local_models: a model name must not be empty", file);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->local_models[j].name, m->name) == 0)
                return cfg__errf(err, errlen, "%s: local_models.%s: duplicate model name", file, m->name);
        if (empty(m->path))
            return cfg__errf(err, errlen, "%s: local_models.%s.path: required (a GGUF file)", file, m->name);
        if (empty(m->sha256))
            return cfg__errf(err, errlen, "%s: local_models.%s.sha256: required; run `llmpin verify FILE` and paste the hash, or write \"unpinned\"", file, m->name);
        if (strcmp(m->sha256, "unpinned") != 0) {
            size_t n = strlen(m->sha256), k;
            for (k = 0; k < n; k++)
                if (!isdigit((unsigned char)m->sha256[k]) && !(m->sha256[k] >= 'a' && m->sha256[k] <= 'f')) break;
            if (n != 64 || k != n)
                return cfg__errf(err, errlen, "%s: local_models.%s.sha256: expected 64 lowercase hex digits or \"unpinned\"", file, m->name);
        }
        if (m->context_length < 0 || m->context_length > (1 << 20))
            return cfg__errf(err, errlen, "%s: local_models.%s.context_length: must be between 0 and 1048576, got %d", file, m->name, m->context_length);
        if (m->threads < 0 || m->threads > 256)
            return cfg__errf(err, errlen, "%s: local_models.%s.threads: must be between 0 and 256, got %d", file, m->name, m->threads);
        if (m->chat_template && !cfg__chat_template_known(m->chat_template))
            return cfg__errf(err, errlen, "%s: local_models.%s.chat_template: unknown template \"%s\" (known: llama2, llama3, chatml, zephyr, mistral, gemma, phi3, plain)",
                             file, m->name, m->chat_template);
        if (m->max_queue < 0)
            return cfg__errf(err, errlen, "%s: local_models.%s.max_queue: must not be negative, got %d", file, m->name, m->max_queue);
        if (m->max_batch < 1 || m->max_batch > 256)
            return cfg__errf(err, errlen, "%s: local_models.%s.max_batch: must be between 1 and 256, got %d", file, m->name, m->max_batch);
    }

    /* routes */
    for (size_t i = 0; i < c->n_routes; i++) {
        if (cfg__check_route(c, &c->routes[i], i, file, err, errlen) < 0) return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->routes[j].name, c->routes[i].name) == 0)
                return cfg__errf(err, errlen, "%s: routes[%zu].name: duplicate route name \"%s\" (also routes[%zu])",
                                 file, i, c->routes[i].name, j);
    }

    /* breaker */
    const struct cfg_breaker *b = &c->breaker;
    if (b->consecutive_failures < 0)
        return cfg__errf(err, errlen, "%s: breaker.consecutive_failures: must not be negative, got %d", file, b->consecutive_failures);
    if (!(b->error_rate > 0.0 && b->error_rate <= 1.0))
        return cfg__errf(err, errlen, "%s: breaker.error_rate: must be greater than 0 and at most 1, got %g", file, b->error_rate);
    if (b->window_s < 1)
        return cfg__errf(err, errlen, "%s: breaker.window: must be at least 1 second, got %d s", file, b->window_s);
    if (b->min_requests < 1)
        return cfg__errf(err, errlen, "%s: breaker.min_requests: must be at least 1, got %d", file, b->min_requests);
    if (b->cooldown_ms < 1)
        return cfg__errf(err, errlen, "%s: breaker.cooldown: must be greater than 0, got %d ms", file, b->cooldown_ms);
    if (b->half_open_requests < 1)
        return cfg__errf(err, errlen, "%s: breaker.half_open_requests: must be at least 1, got %d", file, b->half_open_requests);

    /* drift */
    const struct cfg_drift *d = &c->drift;
    if (empty(d->db_path))
        return cfg__errf(err, errlen, "%s: drift.db_path: must not be empty", file);
    if ((unsigned)d->store_outputs > CFG_STORE_FULL)
        return cfg__errf(err, errlen, "%s: drift.store_outputs: invalid value %d", file, (int)d->store_outputs);
    if (d->commit_interval_ms < 1)
        return cfg__errf(err, errlen, "%s: drift.commit_interval: must be greater than 0, got %d ms", file, d->commit_interval_ms);
    if (d->retention_days < 0)
        return cfg__errf(err, errlen, "%s: drift.retention_days: must not be negative, got %d", file, d->retention_days);
    if (d->retention_mb < 0)
        return cfg__errf(err, errlen, "%s: drift.retention_mb: must not be negative, got %d", file, d->retention_mb);
    if (d->webhook_url && !is_http_url(d->webhook_url))
        return cfg__errf(err, errlen, "%s: drift.webhook_url: expected an http:// or https:// URL", file);
    if (!(d->false_alarm_rate > 0.0 && d->false_alarm_rate < 1.0))
        return cfg__errf(err, errlen, "%s: drift.false_alarm_rate: must be strictly between 0 and 1, got %g", file, d->false_alarm_rate);
    if (!(d->min_drop > 0.0 && d->min_drop < 1.0))
        return cfg__errf(err, errlen, "%s: drift.min_drop: must be strictly between 0 and 1, got %g", file, d->min_drop);
    if (d->baseline_probes < 1)
        return cfg__errf(err, errlen, "%s: drift.baseline_probes: must be at least 1, got %d", file, d->baseline_probes);
    for (size_t i = 0; i < d->n_probes; i++) {
        const struct cfg_probe_suite *p = &d->probes[i];
        if (empty(p->name))
            return cfg__errf(err, errlen, "%s: drift.probes[%zu].name: must not be empty", file, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->probes[j].name, p->name) == 0)
                return cfg__errf(err, errlen, "%s: drift.probes[%zu].name: duplicate probe suite name \"%s\" (also drift.probes[%zu])", file, i, p->name, j);
        if (empty(p->path))
            return cfg__errf(err, errlen, "%s: drift.probes[%zu].path: must not be empty (a JSONL file or \"builtin:default\")", file, i);
        if (p->n_targets == 0)
            return cfg__errf(err, errlen, "%s: drift.probes[%zu].targets: must list at least one route or model", file, i);
        for (size_t j = 0; j < p->n_targets; j++) {
            const char *t = p->targets[j];
            int found = 0;
            for (size_t k = 0; !found && t && k < c->n_routes; k++)
                found = strcmp(c->routes[k].name, t) == 0;
            if (!found && t) found = cfg_find_local_model(c, t) >= 0 || cfg_find_upstream(c, t) >= 0;
            if (!found && t) {
                /* "upstream/model" names a model behind an upstream */
                const char *slash = strchr(t, '/');
                if (slash && slash[1]) {
                    char up[256];
                    size_t n = (size_t)(slash - t);
                    if (n > 0 && n < sizeof(up)) {
                        memcpy(up, t, n);
                        up[n] = '\0';
                        found = cfg_find_upstream(c, up) >= 0;
                    }
                }
            }
            if (!found)
                return cfg__errf(err, errlen, "%s: drift.probes[%zu].targets[%zu]: \"%s\" is not a route, local model, upstream or \"upstream/model\"",
                                 file, i, j, t ? t : "");
        }
        if (p->interval_s < 1)
            return cfg__errf(err, errlen, "%s: drift.probes[%zu].interval: must be at least 1 second, got %d s", file, i, p->interval_s);
    }
    return 0;
}

void cfg_upstream_init(struct cfg_upstream *u) {
    u->connect_timeout_ms = 10000;
    u->first_byte_timeout_ms = 60000;
    u->idle_timeout_ms = 60000;
    u->total_timeout_ms = 600000;
    u->max_connections = 256;
    u->tls_verify = 1;
}

void cfg_route_init(struct cfg_route *r) {
    r->fallback_on = CFG_FB_ALL;
    r->on_drift = CFG_DRIFT_RECORD;
    r->retry.max_attempts = 2;
    r->retry.base_ms = 200;
    r->retry.max_ms = 5000;
    r->shadow_sample = 1.0;
    r->shadow_max_inflight = 4;
}

void cfg_target_init(struct cfg_target *t) {
    t->weight = 1.0;
    t->upstream_idx = -1;
    t->local_idx = -1;
}
