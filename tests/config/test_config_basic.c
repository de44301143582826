/*
 * test_config_basic.c - the config functions other modules use directly:
 * glob matching, the loopback test, defaults, lookups, cfg_validate on a
 * config built in code (as the CLI does), and cfg_free on partial configs.
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)
#define CHECK_STR(got, want) do { const char *g_ = (got), *w_ = (want); \
    if (!g_ || strcmp(g_, w_) != 0) { fprintf(stderr, "%s:%d: got  \"%s\"\n%*s want \"%s\"\n", \
        __FILE__, __LINE__, g_ ? g_ : "(null)", (int)strlen(__FILE__) + 8, "", w_); failures++; } } while (0)

static void test_glob(void) {
    static const struct { const char *p, *s; int want; } t[] = {
        {"gpt-4o*", "gpt-4o", 1},
        {"gpt-4o*", "gpt-4o-mini", 1},
        {"gpt-4o*", "gpt-4", 0},
        {"*", "", 1},
        {"*", "anything", 1},
        {"", "", 1},
        {"", "a", 0},
        {"a", "", 0},
        {"?", "a", 1},
        {"?", "", 0},
        {"?", "ab", 0},
        {"gpt-?", "gpt-4", 1},
        {"gpt-?", "gpt-40", 0},
        {"*mini", "gpt-4o-mini", 1},
        {"*mini", "gpt-4o-mini-2", 0},
        {"*-*-*", "a-b-c", 1},
        {"*-*-*", "a-b", 0},
        {"a*b*c", "aXbYc", 1},
        {"a*b*c", "abc", 1},
        {"a*b*c", "acb", 0},
        {"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
        {"**", "x", 1},
        {"claude-*-4-5*", "claude-sonnet-4-5-20250929", 1},
        {"exact", "exact", 1},
        {"exact", "Exact", 0},
        {"?*?", "ab", 1},
        {"?*?", "a", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int got = cfg_glob_match(t[i].p, t[i].s);
        if (got != t[i].want) {
            fprintf(stderr, "glob(\"%s\", \"%s\") = %d, want %d\n", t[i].p, t[i].s, got, t[i].want);
            failures++;
        }
    }
    CHECK(cfg_glob_match(NULL, "a") == 0);
    CHECK(cfg_glob_match("a", NULL) == 0);
}

static void test_loopback(void) {
    static const struct { const char *h; int want; } t[] = {
        {"127.0.0.1", 1}, {"127.5.6.7", 1}, {"127.255.255.255", 1}, {"::1", 1}, {"[::1]", 1},
        {"localhost", 1}, {"LOCALHOST", 1}, {"::ffff:127.0.0.1", 1},
        {"0.0.0.0", 0}, {"10.0.0.1", 0}, {"::", 0}, {"[::]", 0}, {"128.0.0.1", 0},
        {"", 0}, {"[]", 0}, {"localhost.example.com", 0}, {"127.0.0.1.nip.io", 0},
        {"::2", 0}, {"192.168.1.1", 0}, {"[::1", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int got = cfg_host_is_loopback(t[i].h);
        if (got != t[i].want) {
            fprintf(stderr, "loopback(\"%s\") = %d, want %d\n", t[i].h, got, t[i].want);
            failures++;
        }
    }
    CHECK(cfg_host_is_loopback(NULL) == 0);
}

static void test_defaults(void) {
    struct cfg *c = cfg_new_default();
    CHECK(c != NULL);
    if (!c) return;
    CHECK_STR(c->path, "<command line>");
    CHECK_STR(c->server.listen_host, "127.0.0.1");
    CHECK(c->server.listen_port == 8080);
    CHECK(c->server.allow_unauthenticated == 0);
    CHECK(c->server.max_body_bytes == 8u * 1024 * 1024);
    CHECK(c->server.request_timeout_ms == 600000);
    CHECK(c->server.drain_timeout_ms == 30000);
    CHECK(c->server.max_connections == 10000);
    CHECK_STR(c->server.log_level, "info");
    CHECK_STR(c->server.access_log, "-");
    CHECK(c->n_keys == 0 && c->n_upstreams == 0 && c->n_local_models == 0 && c->n_routes == 0);
    CHECK(c->breaker.consecutive_failures == 5);
    CHECK(c->breaker.error_rate == 0.5);
    CHECK(c->breaker.window_s == 30);
    CHECK(c->breaker.min_requests == 20);
    CHECK(c->breaker.cooldown_ms == 30000);
    CHECK(c->breaker.half_open_requests == 1);
    CHECK(c->drift.enabled == 1);
    CHECK_STR(c->drift.db_path, "llmpin-drift.db");
    CHECK(c->drift.store_outputs == CFG_STORE_HASH);
    CHECK(c->drift.commit_interval_ms == 100);
    CHECK(c->drift.writer_nice == CFG_WRITER_IDLE);
    CHECK(c->drift.retention_days == 90);
    CHECK(c->drift.retention_mb == 1024);
    CHECK(c->drift.false_alarm_rate == 1e-4);
    CHECK(c->drift.min_drop == 0.15);
    CHECK(c->drift.baseline_probes == 100);
    CHECK(c->drift.webhook_url == NULL && c->drift.n_probes == 0);

    char err[512];
    CHECK(cfg_validate(c, err, sizeof(err)) == 0);
    CHECK(cfg_find_upstream(c, "openai") == -1);
    CHECK(cfg_find_local_model(c, "stories") == -1);
    CHECK(cfg_find_upstream(NULL, "x") == -1);
    cfg_free(c);
    cfg_free(NULL);
}

static char *dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    memcpy(d, s, n);
    return d;
}

/* Build what `llmpin serve --upstream URL` builds: one upstream and a
 * catch-all remote route. */
static struct cfg *cli_config(void) {
    struct cfg *c = cfg_new_default();
    c->upstreams = calloc(1, sizeof(*c->upstreams));
    c->n_upstreams = 1;
    struct cfg_upstream *u = &c->upstreams[0];
    u->name = dup("default");
    u->base_url = dup("http://127.0.0.1:9999/v1");
    u->connect_timeout_ms = 10000;
    u->first_byte_timeout_ms = 60000;
    u->idle_timeout_ms = 60000;
    u->total_timeout_ms = 600000;
    u->max_connections = 256;
    u->tls_verify = 1;

    c->routes = calloc(1, sizeof(*c->routes));
    c->n_routes = 1;
    struct cfg_route *r = &c->routes[0];
    r->name = dup("default");
    r->match = calloc(1, sizeof(char *));
    r->match[0] = dup("*");
    r->n_match = 1;
    r->mode = CFG_MODE_REMOTE;
    r->targets = calloc(1, sizeof(*r->targets));
    r->n_targets = 1;
    r->targets[0].upstream = dup("default");
    r->targets[0].weight = 1;
    r->targets[0].upstream_idx = -1;
    r->targets[0].local_idx = -1;
    r->fallback_on = CFG_FB_ALL;
    r->retry.max_attempts = 2;
    r->retry.base_ms = 200;
    r->retry.max_ms = 5000;
    r->shadow_sample = 1;
    r->shadow_max_inflight = 4;
    return c;
}

static void test_validate(void) {
    char err[512];
    struct cfg *c = cli_config();
    CHECK(cfg_validate(c, err, sizeof(err)) == 0);
    CHECK(c->routes[0].targets[0].upstream_idx == 0);
    CHECK(c->routes[0].targets[0].local_idx == -1);
    CHECK(cfg_find_upstream(c, "default") == 0);

    /* non-loopback without keys */
    free(c->server.listen_host);
    c->server.listen_host = dup("0.0.0.0");
    CHECK(cfg_validate(c, err, sizeof(err)) == -1);
    CHECK_STR(err, "<command line>: server.listen: refusing to listen on 0.0.0.0 without client keys; "
                   "add \"keys\" (with server.allow_unauthenticated, clients without a key are served too)");
    c->server.allow_unauthenticated = 1;
    CHECK(cfg_validate(c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "server.allow_unauthenticated: on 0.0.0.0 it needs a key with \"admin\": true") != NULL);
    free(c->server.listen_host);
    c->server.listen_host = dup("127.0.0.1");
    CHECK(cfg_validate(c, err, sizeof(err)) == 0);

    /* unknown upstream */
    free(c->routes[0].targets[0].upstream);
    c->routes[0].targets[0].upstream = dup("openia");
    CHECK(cfg_validate(c, err, sizeof(err)) == -1);
    CHECK_STR(err, "<command line>: routes[0].targets[0].upstream: no upstream named \"openia\" (known: default)");
    free(c->routes[0].targets[0].upstream);
    c->routes[0].targets[0].upstream = dup("default");

    /* bad URL */
    free(c->upstreams[0].base_url);
    c->upstreams[0].base_url = dup("ftp://x");
    CHECK(cfg_validate(c, err, sizeof(err)) == -1);
    CHECK_STR(err, "<command line>: upstreams.default.base_url: expected an http:// or https:// URL, got \"ftp://x\"");
    cfg_free(c);

    /* duplicate client keys are reported by name, never by value */
    c = cli_config();
    c->keys = calloc(2, sizeof(*c->keys));
    c->n_keys = 2;
    c->keys[0].name = dup("alice");
    c->keys[0].key = dup("sk-secret-value");
    c->keys[1].name = dup("bob");
    c->keys[1].key = dup("sk-secret-value");
    CHECK(cfg_validate(c, err, sizeof(err)) == -1);
    CHECK_STR(err, "<command line>: keys[1].key: same key as keys[0] (\"alice\"); every client needs its own key");
    CHECK(strstr(err, "sk-secret") == NULL);
    cfg_free(c);

    /* partial structs (zeroed entries) free cleanly */
    c = cfg_new_default();
    c->routes = calloc(3, sizeof(*c->routes));
    c->n_routes = 3;
    c->upstreams = calloc(2, sizeof(*c->upstreams));
    c->n_upstreams = 2;
    c->drift.probes = calloc(1, sizeof(*c->drift.probes));
    c->drift.n_probes = 1;
    cfg_free(c);
}

int main(void) {
    test_glob();
    test_loopback();
    test_defaults();
    test_validate();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("config basic: all passed\n");
    return 0;
}
