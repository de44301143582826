/*
 * test_policy_plan.c - the plan of each mode: remote/local single target,
 * fallback chains skipping open circuits and drifted targets, weighted
 * split (distribution over 10,000 draws, stickiness by key), shadow
 * sampling and its in-flight bound, and fallback_on bits.
 */
#include "tests/policy/ptest.h"

static char *m_star[] = {"*"};

/* splitmix64: a deterministic stream of test random numbers */
static uint64_t next_rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Open the breaker of a target: consecutive failures. */
static void open_breaker(struct policy *p, int tid, int64_t now) {
    for (int i = 0; i < 5; i++) policy_breaker_report(p, tid, POL_5XX, now);
}

static const uint64_t R_LOW = 0;                       /* unit 0.0 */
static const uint64_t R_HIGH = 0xFFFFFFFFFFFFFFFFULL;  /* unit ~1.0 */

static void test_remote_local(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target tr[] = {t_up("openai", "gpt-4o"), t_local("tiny")};
    struct cfg_target tl[] = {t_local("tiny")};
    struct cfg_route routes[] = {
        t_route("remote", m_star, 1, CFG_MODE_REMOTE, tr, N(tr)),
        t_route("local", m_star, 1, CFG_MODE_LOCAL, tl, N(tl)),
    };
    c.routes = routes;
    c.n_routes = N(routes);
    struct policy *p = t_policy(&c);
    const struct policy_route *rr = policy_route_by_name(p, "remote");
    const struct policy_route *rl = policy_route_by_name(p, "local");
    struct policy_plan pl;

    CHECK_INT(policy_plan(p, rr, NULL, 42, 0, &pl), 0);
    CHECK_INT(pl.n, 1);           /* remote: first target only, even with two */
    CHECK_INT(pl.index[0], 0);
    CHECK_INT(pl.shadow, -1);
    CHECK_INT(pl.probe, -1);
    CHECK_INT(pl.n_skipped, 0);
    CHECK_INT(policy_plan(p, rl, NULL, 42, 0, &pl), 0);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 0);

    /* remote with an open circuit: fail fast, 503 */
    open_breaker(p, policy_target_id(rr, 0), 1000);
    CHECK_INT(policy_plan(p, rr, NULL, 42, 2000, &pl), -1);
    CHECK_INT(pl.n, 0);
    CHECK_INT(pl.n_skipped, 1);
    CHECK_STR(pl.skipped[0].reason, "circuit_open");
    CHECK_INT(pl.error.status, 503);
    CHECK_STR(pl.error.code, "no_target_available");
    CHECK_STR(pl.error.type, "server_error");
    CHECK_STR(pl.error.message, "No target of route 'remote' is available (circuit open).");
    /* after the cooldown it is half-open and planned again */
    CHECK_INT(policy_plan(p, rr, NULL, 42, 1000 + 30000, &pl), 0);
    CHECK_INT(pl.n, 1);

    /* local targets have no breaker */
    for (int i = 0; i < 50; i++) policy_breaker_report(p, policy_target_id(rl, 0), POL_5XX, 100);
    CHECK_INT(policy_plan(p, rl, NULL, 42, 200, &pl), 0);
    CHECK_INT(pl.n, 1);
    CHECK_INT(policy_breaker_allow(p, policy_target_id(rl, 0), 200), 1);
    CHECK_INT(policy_breaker_state(p, policy_target_id(rl, 0), 200), POL_CLOSED);
    CHECK_INT(policy_target_id(rr, 2), -1);
    CHECK_INT(policy_target_id(rr, -1), -1);
    policy_free(p);
}

static void test_fallback(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target t[] = {t_up("openai", "gpt-4o"), t_up("azure", "gpt-4o"), t_local("tiny")};
    t[0].pin_model = "gpt-4o-2024-08-06";
    c.breaker.cooldown_ms = 1000000;   /* t1 stays open for the whole test */
    struct cfg_route routes[] = {t_route("fb", m_star, 1, CFG_MODE_FALLBACK, t, N(t))};
    c.routes = routes;
    c.n_routes = 1;
    struct policy *p = t_policy(&c);
    const struct policy_route *r = policy_route_by_name(p, "fb");
    struct policy_plan pl;
    int t0 = policy_target_id(r, 0), t1 = policy_target_id(r, 1);

    CHECK_INT(policy_plan(p, r, NULL, 1, 0, &pl), 0);
    CHECK_INT(pl.n, 3);
    CHECK_INT(pl.index[0], 0);
    CHECK_INT(pl.index[1], 1);
    CHECK_INT(pl.index[2], 2);

    /* open circuit on t1: skipped with reason */
    open_breaker(p, t1, 0);
    CHECK_INT(policy_plan(p, r, NULL, 1, 10, &pl), 0);
    CHECK_INT(pl.n, 2);
    CHECK_INT(pl.index[0], 0);
    CHECK_INT(pl.index[1], 2);
    CHECK_INT(pl.n_skipped, 1);
    CHECK_INT(pl.skipped[0].index, 1);
    CHECK_STR(pl.skipped[0].reason, "circuit_open");

    /* without CFG_FB_CIRCUIT_OPEN the chain stops at the open circuit */
    routes[0].fallback_on = CFG_FB_ALL & ~CFG_FB_CIRCUIT_OPEN;
    CHECK_INT(policy_plan(p, r, NULL, 1, 10, &pl), 0);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 0);
    CHECK_INT(pl.n_skipped, 1);
    routes[0].fallback_on = CFG_FB_ALL;

    /* drifted t0: recorded only (on_drift=record) -> still planned */
    char why[200];
    CHECK_INT(policy_pin_check(p, t0, "gpt-4o-2024-11-20", NULL, 100, why, sizeof why), 1);
    CHECK_INT(policy_plan(p, r, NULL, 1, 200, &pl), 0);
    CHECK_INT(pl.index[0], 0);
    /* on_drift=fallback: skipped with reason "drift" */
    routes[0].on_drift = CFG_DRIFT_FALLBACK;
    CHECK_INT(policy_plan(p, r, NULL, 1, 200, &pl), 0);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 2);
    CHECK_INT(pl.n_skipped, 2);
    CHECK_INT(pl.skipped[0].index, 0);
    CHECK_STR(pl.skipped[0].reason, "drift");
    CHECK_INT(pl.skipped[1].index, 1);
    CHECK_STR(pl.skipped[1].reason, "circuit_open");
    CHECK_INT(pl.probe, -1);
    /* ...but fallback_on without CFG_FB_DRIFT keeps it */
    routes[0].fallback_on = CFG_FB_ALL & ~CFG_FB_DRIFT;
    CHECK_INT(policy_plan(p, r, NULL, 1, 200, &pl), 0);
    CHECK_INT(pl.index[0], 0);
    routes[0].fallback_on = CFG_FB_ALL;
    /* 60 s after the mark one request probes the drifted target, once */
    CHECK_INT(policy_plan(p, r, NULL, 1, 100 + 59999, &pl), 0);
    CHECK_INT(pl.probe, -1);
    CHECK_INT(policy_plan(p, r, NULL, 1, 100 + 60000, &pl), 0);
    CHECK_INT(pl.probe, 0);
    CHECK_INT(pl.n, 2);
    CHECK_INT(pl.index[0], 0);
    CHECK_INT(pl.index[1], 2);
    CHECK_INT(policy_plan(p, r, NULL, 1, 100 + 60001, &pl), 0);
    CHECK_INT(pl.probe, -1);
    CHECK_INT(pl.index[0], 2);

    /* everything unavailable: 503 naming the drift */
    struct cfg_target t2[] = {t_up("openai", "gpt-4o")};
    t2[0].pin_model = "gpt-4o-2024-08-06";
    struct cfg_route r2[] = {t_route("only", m_star, 1, CFG_MODE_FALLBACK, t2, 1)};
    r2[0].on_drift = CFG_DRIFT_FALLBACK;
    policy_free(p);
    c.routes = r2;
    p = t_policy(&c);
    r = policy_route_by_name(p, "only");
    policy_pin_check(p, policy_target_id(r, 0), "other", NULL, 0, NULL, 0);
    CHECK_INT(policy_plan(p, r, NULL, 1, 10, &pl), -1);
    CHECK_STR(pl.error.message, "No target of route 'only' is available (version pin mismatch).");
    policy_free(p);
}

static void test_split(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target t[] = {t_up("openai", "gpt-4o"), t_local("tiny"), t_up("azure", "gpt-4o")};
    t[0].weight = 70;
    t[1].weight = 20;
    t[2].weight = 10;
    struct cfg_route routes[] = {t_route("split", m_star, 1, CFG_MODE_SPLIT, t, N(t))};
    c.routes = routes;
    c.n_routes = 1;
    struct policy *p = t_policy(&c);
    const struct policy_route *r = policy_route_by_name(p, "split");
    struct policy_plan pl;

    /* distribution: 10,000 draws within 3% of the weights */
    int count[3] = {0, 0, 0};
    uint64_t s = 12345;
    for (int i = 0; i < 10000; i++) {
        CHECK_INT(policy_plan(p, r, NULL, next_rnd(&s), 0, &pl), 0);
        count[pl.index[0]]++;
    }
    CHECK(count[0] > 6700 && count[0] < 7300);
    CHECK(count[1] > 1700 && count[1] < 2300);
    CHECK(count[2] > 700 && count[2] < 1300);
    /* edges of the unit interval */
    policy_plan(p, r, NULL, R_LOW, 0, &pl);
    CHECK_INT(pl.index[0], 0);
    policy_plan(p, r, NULL, R_HIGH, 0, &pl);
    CHECK_INT(pl.index[0], 2);
    /* the rest follow in config order as fallbacks */
    policy_plan(p, r, NULL, R_HIGH, 0, &pl);
    CHECK_INT(pl.n, 3);
    CHECK_INT(pl.index[1], 0);
    CHECK_INT(pl.index[2], 1);
    /* fallback_on = 0: the chosen one only */
    routes[0].fallback_on = 0;
    policy_plan(p, r, NULL, R_HIGH, 0, &pl);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 2);
    routes[0].fallback_on = CFG_FB_ALL;

    /* not sticky: the key does not matter */
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 100; i++) {
        policy_plan(p, r, "alice", next_rnd(&s), 0, &pl);
        seen[pl.index[0]] = 1;
    }
    CHECK(seen[0] && seen[1] && seen[2]);

    /* sticky: same key -> same target whatever rnd; keys spread by weight */
    routes[0].sticky = 1;
    int first;
    policy_plan(p, r, "alice", 1, 0, &pl);
    first = pl.index[0];
    for (int i = 0; i < 1000; i++) {
        policy_plan(p, r, "alice", next_rnd(&s), 0, &pl);
        if (pl.index[0] != first) { CHECK(pl.index[0] == first); break; }
    }
    int kc[3] = {0, 0, 0};
    for (int i = 0; i < 10000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        policy_plan(p, r, key, 0, 0, &pl);
        kc[pl.index[0]]++;
    }
    CHECK(kc[0] > 6700 && kc[0] < 7300);
    CHECK(kc[1] > 1700 && kc[1] < 2300);
    CHECK(kc[2] > 700 && kc[2] < 1300);
    /* sticky without a key: rnd decides */
    seen[0] = seen[1] = seen[2] = 0;
    for (int i = 0; i < 100; i++) {
        policy_plan(p, r, NULL, next_rnd(&s), 0, &pl);
        seen[pl.index[0]] = 1;
    }
    CHECK(seen[0] && seen[1] && seen[2]);

    /* zero weight is never drawn; its breaker skip applies to the chain */
    t[0].weight = 0;
    t[2].weight = 0;
    for (int i = 0; i < 1000; i++) {
        policy_plan(p, r, NULL, next_rnd(&s), 0, &pl);
        if (pl.index[0] != 1) { CHECK(pl.index[0] == 1); break; }
    }
    /* all weights zero: the first target */
    t[1].weight = 0;
    policy_plan(p, r, NULL, R_HIGH, 0, &pl);
    CHECK_INT(pl.index[0], 0);
    /* the drawn target's circuit open: the next in the chain serves */
    t[0].weight = 1;
    routes[0].sticky = 0;
    open_breaker(p, policy_target_id(r, 0), 0);
    CHECK_INT(policy_plan(p, r, NULL, R_LOW, 5, &pl), 0);
    CHECK_INT(pl.index[0], 1);
    CHECK_INT(pl.n_skipped, 1);
    CHECK_INT(pl.skipped[0].index, 0);
    policy_free(p);
}

static void test_shadow(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target t[] = {t_up("openai", "gpt-4o"), t_local("tiny")};
    struct cfg_route routes[] = {t_route("sh", m_star, 1, CFG_MODE_SHADOW, t, N(t))};
    routes[0].shadow_sample = 0.25;
    routes[0].shadow_max_inflight = 2;
    c.routes = routes;
    c.n_routes = 1;
    struct policy *p = t_policy(&c);
    const struct policy_route *r = policy_route_by_name(p, "sh");
    struct policy_plan pl;

    /* sampling: ~25% of 10,000 draws mirrored (slots released each time) */
    int mirrored = 0;
    uint64_t s = 99;
    for (int i = 0; i < 10000; i++) {
        CHECK_INT(policy_plan(p, r, NULL, next_rnd(&s), 0, &pl), 0);
        CHECK_INT(pl.n, 1);
        CHECK_INT(pl.index[0], 0);
        if (pl.shadow == 1) {
            mirrored++;
            policy_shadow_end(p, r);
        } else {
            CHECK_INT(pl.shadow, -1);
        }
    }
    CHECK(mirrored > 2200 && mirrored < 2800);
    CHECK_INT(r->shadow_inflight, 0);

    /* in-flight bound: two mirrors running, the third is refused */
    policy_plan(p, r, NULL, R_LOW, 0, &pl);
    CHECK_INT(pl.shadow, 1);
    policy_plan(p, r, NULL, R_LOW, 0, &pl);
    CHECK_INT(pl.shadow, 1);
    CHECK_INT(r->shadow_inflight, 2);
    policy_plan(p, r, NULL, R_LOW, 0, &pl);
    CHECK_INT(pl.shadow, -1);
    CHECK_INT(pl.n, 1);                        /* the primary still serves */
    CHECK_INT(policy_shadow_begin(p, r), -1);
    policy_shadow_end(p, r);
    policy_plan(p, r, NULL, R_LOW, 0, &pl);
    CHECK_INT(pl.shadow, 1);
    policy_shadow_end(p, r);
    policy_shadow_end(p, r);
    policy_shadow_end(p, r);                   /* extra end is harmless */
    CHECK_INT(r->shadow_inflight, 0);
    CHECK_INT(policy_shadow_begin(p, r), 0);
    policy_shadow_end(p, r);

    /* sample 0: never; sample 1: always */
    routes[0].shadow_sample = 0;
    policy_plan(p, r, NULL, R_LOW, 0, &pl);
    CHECK_INT(pl.shadow, -1);
    routes[0].shadow_sample = 1;
    policy_plan(p, r, NULL, R_HIGH, 0, &pl);
    CHECK_INT(pl.shadow, 1);
    policy_shadow_end(p, r);
    policy_free(p);

    /* a remote shadow target with an open circuit gets no mirror */
    struct cfg_target t2[] = {t_local("tiny"), t_up("openai", "gpt-4o")};
    struct cfg_route r2[] = {t_route("sh2", m_star, 1, CFG_MODE_SHADOW, t2, N(t2))};
    c.routes = r2;
    p = t_policy(&c);
    r = policy_route_by_name(p, "sh2");
    open_breaker(p, policy_target_id(r, 1), 0);
    policy_plan(p, r, NULL, R_LOW, 1, &pl);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.shadow, -1);
    CHECK_INT(r->shadow_inflight, 0);
    policy_free(p);
}

static void test_should_fallback(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target t[] = {t_up("openai", "gpt-4o"), t_local("tiny")};
    struct cfg_route routes[] = {
        t_route("fb", m_star, 1, CFG_MODE_FALLBACK, t, N(t)),
        t_route("remote", m_star, 1, CFG_MODE_REMOTE, t, N(t)),
        t_route("split", m_star, 1, CFG_MODE_SPLIT, t, N(t)),
    };
    c.routes = routes;
    c.n_routes = N(routes);
    struct policy *p = t_policy(&c);
    const struct policy_route *r = policy_route_by_name(p, "fb");
    static const struct { enum policy_outcome o; unsigned bit; } map[] = {
        {POL_CONNECT, CFG_FB_CONNECT}, {POL_TIMEOUT, CFG_FB_TIMEOUT}, {POL_429, CFG_FB_429},
        {POL_5XX, CFG_FB_5XX}, {POL_CIRCUIT_OPEN, CFG_FB_CIRCUIT_OPEN},
    };
    for (size_t i = 0; i < N(map); i++) {
        routes[0].fallback_on = CFG_FB_ALL;
        CHECK_INT(policy_should_fallback(r, map[i].o), 1);
        routes[0].fallback_on = CFG_FB_ALL & ~map[i].bit;
        CHECK_INT(policy_should_fallback(r, map[i].o), 0);
        routes[0].fallback_on = map[i].bit;
        CHECK_INT(policy_should_fallback(r, map[i].o), 1);
        for (size_t j = 0; j < N(map); j++)
            if (j != i) CHECK_INT(policy_should_fallback(r, map[j].o), 0);
    }
    routes[0].fallback_on = CFG_FB_ALL;
    CHECK_INT(policy_should_fallback(r, POL_OK), 0);
    CHECK_INT(policy_should_fallback(r, POL_4XX), 0);
    CHECK_INT(policy_should_fallback(r, POL_CANCELLED), 0);
    /* drift: needs on_drift=fallback and the bit */
    CHECK_INT(policy_should_fallback(r, POL_DRIFT), 0);
    routes[0].on_drift = CFG_DRIFT_FALLBACK;
    CHECK_INT(policy_should_fallback(r, POL_DRIFT), 1);
    routes[0].fallback_on = CFG_FB_ALL & ~CFG_FB_DRIFT;
    CHECK_INT(policy_should_fallback(r, POL_DRIFT), 0);
    routes[0].on_drift = CFG_DRIFT_REJECT;
    routes[0].fallback_on = CFG_FB_ALL;
    CHECK_INT(policy_should_fallback(r, POL_DRIFT), 0);
    /* single-target modes never move on; split follows the bits */
    CHECK_INT(policy_should_fallback(policy_route_by_name(p, "remote"), POL_5XX), 0);
    CHECK_INT(policy_should_fallback(policy_route_by_name(p, "split"), POL_5XX), 1);
    routes[2].fallback_on = 0;
    CHECK_INT(policy_should_fallback(policy_route_by_name(p, "split"), POL_5XX), 0);
    policy_free(p);
}

int main(void) {
    test_remote_local();
    test_fallback();
    test_split();
    test_shadow();
    test_should_fallback();
    DONE();
}
