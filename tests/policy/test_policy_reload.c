/*
 * test_policy_reload.c - policy_new_from: breakers, drift marks and rate
 * buckets survive a reload for unchanged identities; a changed pin
 * re-pins (drops the drift mark, keeps the breaker); trial slots of the
 * old policy are released; a changed window geometry drops the window.
 */
#include "tests/policy/ptest.h"

static char *m_star[] = {"*"};
static char *m_other[] = {"other"};

int main(void) {
    /* ---- generation 1 ---- */
    struct cfg c1;
    t_defaults(&c1);
    c1.breaker.consecutive_failures = 2;
    c1.breaker.cooldown_ms = 1000;
    struct cfg_client_key k1[] = {{.name = "alice", .rpm = 3}, {.name = "gone", .rpm = 1}};
    c1.keys = k1;
    c1.n_keys = 2;
    struct cfg_target t1[] = {t_up("openai", "gpt-4o"), t_up("azure", "gpt-4o"), t_local("tiny")};
    t1[0].pin_fingerprint = "fp_1";
    t1[1].pin_fingerprint = "fp_a";
    struct cfg_route r1[] = {t_route("main", m_star, 1, CFG_MODE_FALLBACK, t1, N(t1))};
    c1.routes = r1;
    c1.n_routes = 1;
    struct policy *p1 = t_policy(&c1);
    const struct policy_route *rt = policy_route_by_name(p1, "main");
    int oa = policy_target_id(rt, 0), az = policy_target_id(rt, 1);

    policy_breaker_report(p1, oa, POL_5XX, 0);
    policy_breaker_report(p1, oa, POL_5XX, 0);               /* openai open at 0 */
    policy_pin_check(p1, oa, "gpt-4o", "fp_2", 100, NULL, 0); /* openai drifted */
    policy_pin_check(p1, az, "gpt-4o", "fp_b", 100, NULL, 0); /* azure drifted */
    policy_breaker_report(p1, az, POL_5XX, 0);
    policy_breaker_report(p1, az, POL_5XX, 0);               /* azure open at 0 */
    CHECK_INT(policy_breaker_allow(p1, az, 1000), 1);         /* azure trial taken... */
    CHECK_INT(policy_breaker_allow(p1, az, 1000), 0);         /* ...and never reported */
    for (int i = 0; i < 3; i++) CHECK_INT(policy_ratelimit_take(p1, "alice", 500, 0, NULL), 0);
    CHECK_INT(policy_ratelimit_take(p1, "alice", 500, 0, NULL), 1);

    /* ---- generation 2: routes renamed and reordered, azure re-pinned ---- */
    struct cfg c2;
    t_defaults(&c2);
    c2.breaker = c1.breaker;
    struct cfg_client_key k2[] = {{.name = "erin", .rpm = 5}, {.name = "alice", .rpm = 2}};
    c2.keys = k2;
    c2.n_keys = 2;
    struct cfg_target t2a[] = {t_local("tiny")};
    struct cfg_target t2b[] = {t_up("azure", "gpt-4o"), t_up("openai", "gpt-4o"), t_up("openai", "gpt-4o-mini")};
    t2b[0].pin_fingerprint = "fp_b";
    t2b[1].pin_fingerprint = "fp_1";
    struct cfg_route r2[] = {
        t_route("local-only", m_other, 1, CFG_MODE_LOCAL, t2a, 1),
        t_route("main2", m_star, 1, CFG_MODE_FALLBACK, t2b, N(t2b)),
    };
    c2.routes = r2;
    c2.n_routes = 2;
    char err[256];
    struct policy *p2 = policy_new_from(&c2, p1, err, sizeof err);
    CHECK(p2 != NULL);
    if (!p2) return 1;
    rt = policy_route_by_name(p2, "main2");
    int az2 = policy_target_id(rt, 0), oa2 = policy_target_id(rt, 1), mini2 = policy_target_id(rt, 2);

    /* openai: same identity -> still open (opened at 0) and still drifted */
    CHECK_INT(policy_breaker_state(p2, oa2, 500), POL_OPEN);
    CHECK_INT(policy_is_drifted(p2, oa2), 1);
    CHECK_INT(policy_drift_probe_due(p2, oa2, 100 + 60000), 1);   /* probe clock carried */
    /* azure: re-pinned -> drift mark gone, breaker (no pins in its identity) kept,
     * and the trial slot held by generation 1 released */
    CHECK_INT(policy_is_drifted(p2, az2), 0);
    CHECK_INT(policy_breaker_state(p2, az2, 1000), POL_HALF_OPEN);
    CHECK_INT(policy_breaker_allow(p2, az2, 1000), 1);
    /* new target: fresh */
    CHECK_INT(policy_breaker_state(p2, mini2, 0), POL_CLOSED);
    CHECK_INT(policy_is_drifted(p2, mini2), 0);
    /* counters carried */
    cJSON *j = policy_targets_json(p2, 500);
    const cJSON *o = t_find_target(j, "openai:gpt-4o");
    CHECK(o && cJSON_GetObjectItem(o, "times_opened")->valueint == 1);
    CHECK(o && cJSON_GetObjectItem(o, "window_requests")->valueint == 2);
    CHECK(o && cJSON_GetObjectItem(o, "opened_at_ms")->valueint == 0);
    cJSON_Delete(j);

    /* alice: bucket carried (empty), capped by the new limit of 2 */
    struct policy_rl_info in;
    CHECK_INT(policy_ratelimit_take(p2, "alice", 500, 0, &in), 1);
    CHECK_INT(in.limit_requests, 2);
    CHECK_INT(in.retry_after_ms, 30000);          /* 2 per minute now */
    CHECK_INT(policy_ratelimit_take(p2, "erin", 500, 0, &in), 0);
    CHECK_INT(in.remaining_requests, 4);
    /* the old policy is untouched and can be freed */
    CHECK_INT(policy_breaker_allow(p1, az, 1000), 0);
    policy_free(p1);

    /* ---- generation 3: window geometry changed -> window dropped, state kept ---- */
    struct cfg c3 = c2;
    c3.breaker.window_s = 60;
    struct policy *p3 = policy_new_from(&c3, p2, err, sizeof err);
    CHECK(p3 != NULL);
    if (!p3) return 1;
    rt = policy_route_by_name(p3, "main2");
    int oa3 = policy_target_id(rt, 1);
    CHECK_INT(policy_breaker_state(p3, oa3, 500), POL_OPEN);
    j = policy_targets_json(p3, 500);
    o = t_find_target(j, "openai:gpt-4o");
    CHECK(o && cJSON_GetObjectItem(o, "window_requests")->valueint == 0);
    CHECK(o && cJSON_GetObjectItem(o, "requests")->valueint == 2);
    cJSON_Delete(j);
    /* an error in the new config leaves the old policy in place */
    struct cfg c4 = c3;
    struct cfg_route bad[] = {t_route("bad", m_star, 1, CFG_MODE_REMOTE, t2a, 0)};
    c4.routes = bad;
    c4.n_routes = 1;
    CHECK(policy_new_from(&c4, p3, err, sizeof err) == NULL);
    CHECK_STR(err, "test.json: routes[0] \"bad\": no targets");
    CHECK_INT(policy_breaker_state(p3, oa3, 500), POL_OPEN);
    policy_free(p2);
    policy_free(p3);
    policy_free(NULL);
    DONE();
}
