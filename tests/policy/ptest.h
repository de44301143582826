/*
 * ptest.h - tiny helpers shared by the policy tests: CHECK macros and a
 * way to build a struct cfg in code (static strings, no cfg_free), so the
 * policy tests depend only on the config structs, not on the loader.
 */
#ifndef LLMPIN_TESTS_POLICY_PTEST_H
#define LLMPIN_TESTS_POLICY_PTEST_H

#include "config/config.h"
#include "policy/policy.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)
#define CHECK_INT(got, want) do { long long g_ = (long long)(got), w_ = (long long)(want); \
    if (g_ != w_) { fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", \
        __FILE__, __LINE__, #got, g_, w_); failures++; } } while (0)
#define CHECK_STR(got, want) do { const char *g_ = (got), *w_ = (want); \
    if (!g_ || strcmp(g_, w_) != 0) { fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", \
        __FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_); failures++; } } while (0)

#define DONE() do { if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; } \
    printf("ok\n"); return 0; } while (0)

static inline void t_defaults(struct cfg *c) {
    memset(c, 0, sizeof *c);
    c->path = "test.json";
    c->server.request_timeout_ms = 600000;
    c->breaker.consecutive_failures = 5;
    c->breaker.error_rate = 0.5;
    c->breaker.window_s = 30;
    c->breaker.min_requests = 20;
    c->breaker.cooldown_ms = 30000;
    c->breaker.half_open_requests = 1;
}

static inline struct cfg_target t_up(char *upstream, char *model) {
    struct cfg_target t;
    memset(&t, 0, sizeof t);
    t.upstream = upstream;
    t.model = model;
    t.weight = 1;
    t.upstream_idx = 0;
    t.local_idx = -1;
    return t;
}

static inline struct cfg_target t_local(char *name) {
    struct cfg_target t;
    memset(&t, 0, sizeof t);
    t.local = name;
    t.weight = 1;
    t.upstream_idx = -1;
    t.local_idx = 0;
    return t;
}

static inline struct cfg_route t_route(char *name, char **match, size_t n_match,
                                       enum cfg_route_mode mode,
                                       struct cfg_target *targets, size_t n_targets) {
    struct cfg_route r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.match = match;
    r.n_match = n_match;
    r.mode = mode;
    r.targets = targets;
    r.n_targets = n_targets;
    r.fallback_on = CFG_FB_ALL;
    r.on_drift = CFG_DRIFT_RECORD;
    r.retry.max_attempts = 2;
    r.retry.base_ms = 200;
    r.retry.max_ms = 5000;
    r.shadow_sample = 1;
    r.shadow_max_inflight = 4;
    return r;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static inline struct policy *t_policy(const struct cfg *c) {
    char err[256];
    struct policy *p = policy_new(c, err, sizeof err);
    if (!p) {
        fprintf(stderr, "policy_new: %s\n", err);
        exit(1);
    }
    return p;
}

/* Find the target object with this name in policy_targets_json output. */
static inline const cJSON *t_find_target(const cJSON *arr, const char *name) {
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return o;
    }
    return NULL;
}

#endif
