/*
 * test_policy_breaker.c - the circuit breaker state machine with a fake
 * clock: consecutive failures, error rate over the sliding window,
 * cooldown to half-open, trial slots, close on success, reopen on
 * failure, cancelled trials, lost trial slots, late reports, breakers
 * shared across routes, and the /admin/targets JSON.
 */
#include "tests/policy/ptest.h"

static char *m_a[] = {"a"};
static char *m_b[] = {"b"};

static const cJSON *field(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static struct cfg c;
static struct cfg_target ta[1], tb[1];
static struct cfg_route routes[2];

static struct policy *setup(void) {
    t_defaults(&c);
    c.breaker.consecutive_failures = 3;
    c.breaker.error_rate = 0.5;
    c.breaker.window_s = 10;
    c.breaker.min_requests = 4;
    c.breaker.cooldown_ms = 1000;
    c.breaker.half_open_requests = 2;
    ta[0] = t_up("openai", "gpt-4o");
    ta[0].pin_fingerprint = "fp_1";
    tb[0] = t_up("openai", "gpt-4o");         /* same upstream+model, other pin */
    tb[0].pin_fingerprint = "fp_2";
    routes[0] = t_route("ra", m_a, 1, CFG_MODE_REMOTE, ta, 1);
    routes[1] = t_route("rb", m_b, 1, CFG_MODE_REMOTE, tb, 1);
    c.routes = routes;
    c.n_routes = 2;
    return t_policy(&c);
}

static void test_state_machine(void) {
    struct policy *p = setup();
    c.breaker.error_rate = 0;        /* the run rule alone; the rate rule is tested below */
    int id = policy_target_id(policy_route_by_name(p, "ra"), 0);
    int id2 = policy_target_id(policy_route_by_name(p, "rb"), 0);
    CHECK(id != id2);
    CHECK_INT(policy_n_targets(p), 2);
    CHECK_STR(policy_target_name(p, id), "openai:gpt-4o");
    CHECK_STR(policy_target_name(p, id2), "openai:gpt-4o#2");   /* names are unique */
    CHECK(policy_target_name(p, 99) == NULL);

    /* closed: failures short of the threshold, a success resets the run */
    CHECK_INT(policy_breaker_allow(p, id, 0), 1);
    policy_breaker_report(p, id, POL_5XX, 0);
    policy_breaker_report(p, id, POL_TIMEOUT, 0);
    CHECK_INT(policy_breaker_state(p, id, 0), POL_CLOSED);
    policy_breaker_report(p, id, POL_OK, 0);
    policy_breaker_report(p, id, POL_CONNECT, 0);
    policy_breaker_report(p, id, POL_429, 0);
    CHECK_INT(policy_breaker_state(p, id, 0), POL_CLOSED);
    /* 4xx and drift are answers, not failures: they reset the run too */
    policy_breaker_report(p, id, POL_4XX, 0);
    policy_breaker_report(p, id, POL_5XX, 0);
    policy_breaker_report(p, id, POL_DRIFT, 0);
    policy_breaker_report(p, id, POL_5XX, 0);
    policy_breaker_report(p, id, POL_5XX, 0);
    CHECK_INT(policy_breaker_state(p, id, 0), POL_CLOSED);

    /* third failure in a row: open */
    policy_breaker_report(p, id, POL_5XX, 0);
    CHECK_INT(policy_breaker_state(p, id, 0), POL_OPEN);
    /* shared breaker: the other route's target sees it open too */
    CHECK_INT(policy_breaker_state(p, id2, 0), POL_OPEN);
    CHECK_INT(policy_breaker_allow(p, id, 999), 0);
    CHECK_INT(policy_breaker_allow(p, id2, 999), 0);
    CHECK_INT(policy_breaker_state(p, id, 999), POL_OPEN);

    /* cooldown passed: half-open, two trial slots */
    CHECK_INT(policy_breaker_state(p, id, 1000), POL_HALF_OPEN);
    CHECK_INT(policy_breaker_allow(p, id, 1000), 1);
    CHECK_INT(policy_breaker_allow(p, id2, 1000), 1);
    CHECK_INT(policy_breaker_allow(p, id, 1000), 0);
    /* a cancelled trial gives its slot back */
    policy_breaker_report(p, id, POL_CANCELLED, 1001);
    CHECK_INT(policy_breaker_state(p, id, 1001), POL_HALF_OPEN);
    CHECK_INT(policy_breaker_allow(p, id, 1002), 1);
    CHECK_INT(policy_breaker_allow(p, id, 1002), 0);
    /* reporting the refusal gives back nothing: the refused attempt held no slot */
    policy_breaker_report(p, id, POL_CIRCUIT_OPEN, 1003);
    CHECK_INT(policy_breaker_allow(p, id, 1003), 0);
    CHECK_INT(policy_breaker_state(p, id, 1003), POL_HALF_OPEN);
    /* a failed trial: open again, cooldown restarts */
    policy_breaker_report(p, id, POL_5XX, 1500);
    CHECK_INT(policy_breaker_state(p, id, 1500), POL_OPEN);
    CHECK_INT(policy_breaker_allow(p, id, 2499), 0);
    CHECK_INT(policy_breaker_state(p, id, 2500), POL_HALF_OPEN);
    CHECK_INT(policy_breaker_allow(p, id, 2500), 1);
    /* a successful trial closes it and clears the window */
    policy_breaker_report(p, id, POL_OK, 2600);
    CHECK_INT(policy_breaker_state(p, id, 2600), POL_CLOSED);
    CHECK_INT(policy_breaker_allow(p, id, 2600), 1);

    cJSON *j = policy_targets_json(p, 2600);
    const cJSON *o = cJSON_GetArrayItem(j, id);
    CHECK_STR(field(o, "state")->valuestring, "closed");
    CHECK_INT(field(o, "consecutive_failures")->valueint, 0);
    CHECK_INT(field(o, "window_requests")->valueint, 0);
    CHECK_INT(field(o, "times_opened")->valueint, 2);
    CHECK_INT(field(o, "opened_at_ms")->valueint, 1500);
    CHECK_INT(field(o, "requests")->valueint, 13);   /* the cancelled trial is not counted */
    CHECK_INT(field(o, "failures")->valueint, 9);
    cJSON_Delete(j);

    /* a late report while open (request started before it opened) does not
     * change the state */
    for (int i = 0; i < 3; i++) policy_breaker_report(p, id, POL_5XX, 3000);
    CHECK_INT(policy_breaker_state(p, id, 3000), POL_OPEN);
    policy_breaker_report(p, id, POL_OK, 3100);
    CHECK_INT(policy_breaker_state(p, id, 3100), POL_OPEN);
    /* half-open: a lost trial slot is freed after request_timeout_ms */
    c.breaker.half_open_requests = 1;
    c.server.request_timeout_ms = 5000;
    CHECK_INT(policy_breaker_allow(p, id, 4000), 1);
    CHECK_INT(policy_breaker_allow(p, id, 9000), 0);
    CHECK_INT(policy_breaker_allow(p, id, 9001), 1);
    /* bad ids */
    CHECK_INT(policy_breaker_allow(p, -1, 0), 0);
    CHECK_INT(policy_breaker_allow(p, 2, 0), 0);
    policy_breaker_report(p, 7, POL_5XX, 0);
    CHECK_INT(policy_breaker_state(p, 7, 0), POL_CLOSED);
    policy_free(p);
}

static void test_error_rate(void) {
    struct policy *p = setup();
    int id = policy_target_id(policy_route_by_name(p, "ra"), 0);
    /* alternating: never 3 in a row; opens when 4 requests reach 50% errors */
    policy_breaker_report(p, id, POL_OK, 0);
    policy_breaker_report(p, id, POL_5XX, 100);
    policy_breaker_report(p, id, POL_OK, 200);
    CHECK_INT(policy_breaker_state(p, id, 200), POL_CLOSED);
    policy_breaker_report(p, id, POL_5XX, 300);
    CHECK_INT(policy_breaker_state(p, id, 300), POL_OPEN);
    policy_free(p);

    /* errors below the rate: stays closed */
    p = setup();
    for (int i = 0; i < 10; i++) {
        policy_breaker_report(p, id, POL_OK, i * 10);
        policy_breaker_report(p, id, POL_OK, i * 10);
        policy_breaker_report(p, id, POL_5XX, i * 10);
    }
    CHECK_INT(policy_breaker_state(p, id, 100), POL_CLOSED);
    policy_free(p);

    /* the window slides: old successes drop out */
    p = setup();
    for (int i = 0; i < 3; i++) policy_breaker_report(p, id, POL_OK, 0);
    policy_breaker_report(p, id, POL_5XX, 9999);   /* 4 requests, 1 error */
    CHECK_INT(policy_breaker_state(p, id, 9999), POL_CLOSED);
    policy_breaker_report(p, id, POL_OK, 11000);   /* t=0 slice gone: 2 req */
    policy_breaker_report(p, id, POL_5XX, 11000);  /* 3 req 2 err: < min_requests */
    CHECK_INT(policy_breaker_state(p, id, 11000), POL_CLOSED);
    cJSON *j = policy_targets_json(p, 11000);
    const cJSON *o = cJSON_GetArrayItem(j, id);
    CHECK_INT(field(o, "window_requests")->valueint, 3);
    CHECK_INT(field(o, "window_errors")->valueint, 2);
    CHECK_INT(field(o, "consecutive_failures")->valueint, 1);
    CHECK(cJSON_IsNull(field(o, "opened_at_ms")));
    cJSON_Delete(j);
    policy_breaker_report(p, id, POL_OK, 11500);   /* 4 req 2 err, but a success */
    CHECK_INT(policy_breaker_state(p, id, 11500), POL_CLOSED);
    policy_breaker_report(p, id, POL_5XX, 12000);  /* 5 req 3 err */
    CHECK_INT(policy_breaker_state(p, id, 12000), POL_OPEN);
    /* cancellations are not counted */
    j = policy_targets_json(p, 12000);
    CHECK_INT(field(cJSON_GetArrayItem(j, id), "window_requests")->valueint, 5);
    CHECK_STR(field(cJSON_GetArrayItem(j, id), "state")->valuestring, "open");
    cJSON_Delete(j);
    policy_free(p);

    /* error_rate 0 disables the rate rule; consecutive 0 disables the run rule */
    p = setup();
    c.breaker.error_rate = 0;
    c.breaker.consecutive_failures = 0;
    for (int i = 0; i < 50; i++) policy_breaker_report(p, id, POL_5XX, i);
    CHECK_INT(policy_breaker_state(p, id, 50), POL_CLOSED);
    policy_free(p);

    /* long windows use wider slices: 600 s in 120 slices of 5 s */
    {
        struct cfg c2;
        t_defaults(&c2);
        c2.breaker.window_s = 600;
        c2.breaker.min_requests = 1000;
        c2.breaker.consecutive_failures = 1000;
        struct cfg_target t2[] = {t_up("u", "m")};
        struct cfg_route r2[] = {t_route("r", m_a, 1, CFG_MODE_REMOTE, t2, 1)};
        c2.routes = r2;
        c2.n_routes = 1;
        p = t_policy(&c2);
        policy_breaker_report(p, 0, POL_5XX, 0);
        j = policy_targets_json(p, 599999);
        CHECK_INT(field(cJSON_GetArrayItem(j, 0), "window_requests")->valueint, 1);
        cJSON_Delete(j);
        j = policy_targets_json(p, 600000);
        CHECK_INT(field(cJSON_GetArrayItem(j, 0), "window_requests")->valueint, 0);
        CHECK_INT(field(cJSON_GetArrayItem(j, 0), "requests")->valueint, 1);
        cJSON_Delete(j);
        policy_free(p);
    }
}

static void test_json(void) {
    struct policy *p = setup();
    int id = policy_target_id(policy_route_by_name(p, "ra"), 0);
    policy_pin_check(p, id, "gpt-4o", "fp_9", 500, NULL, 0);
    cJSON *j = policy_targets_json(p, 1000);
    char *s = cJSON_PrintUnformatted(j);
    CHECK_STR(s,
        "[{\"routes\":[\"ra\"],\"id\":0,\"name\":\"openai:gpt-4o\",\"upstream\":\"openai\",\"local\":null,"
        "\"model\":\"gpt-4o\",\"state\":\"closed\",\"consecutive_failures\":0,\"window_requests\":0,"
        "\"window_errors\":0,\"opened_at_ms\":null,\"times_opened\":0,\"requests\":0,\"failures\":0,"
        "\"drifted\":true,\"drifted_since_ms\":500,"
        "\"drift_reason\":\"system_fingerprint \\\"fp_9\\\" does not match pin \\\"fp_1\\\"\","
        "\"pin_model\":null,\"pin_fingerprint\":\"fp_1\"},"
        "{\"routes\":[\"rb\"],\"id\":1,\"name\":\"openai:gpt-4o#2\",\"upstream\":\"openai\",\"local\":null,"
        "\"model\":\"gpt-4o\",\"state\":\"closed\",\"consecutive_failures\":0,\"window_requests\":0,"
        "\"window_errors\":0,\"opened_at_ms\":null,\"times_opened\":0,\"requests\":0,\"failures\":0,"
        "\"drifted\":false,\"drifted_since_ms\":null,\"drift_reason\":null,"
        "\"pin_model\":null,\"pin_fingerprint\":\"fp_2\"}]");
    free(s);
    cJSON_Delete(j);
    policy_free(p);

    /* a target shared by two routes lists both; local targets read closed */
    struct cfg c3;
    t_defaults(&c3);
    struct cfg_target t1[] = {t_local("tiny")};
    struct cfg_target t2[] = {t_up("openai", NULL), t_local("tiny")};
    struct cfg_route r3[] = {
        t_route("one", m_a, 1, CFG_MODE_LOCAL, t1, 1),
        t_route("two", m_b, 1, CFG_MODE_FALLBACK, t2, 2),
    };
    c3.routes = r3;
    c3.n_routes = 2;
    p = t_policy(&c3);
    CHECK_INT(policy_n_targets(p), 2);
    CHECK_INT(policy_target_id(policy_route_by_name(p, "two"), 1), 0);
    CHECK_STR(policy_target_name(p, 0), "local:tiny");
    CHECK_STR(policy_target_name(p, 1), "openai");
    for (int i = 0; i < 10; i++) policy_breaker_report(p, 0, POL_5XX, 0);
    j = policy_targets_json(p, 0);
    const cJSON *o = t_find_target(j, "local:tiny");
    CHECK(o != NULL);
    if (o) {
        CHECK_INT(cJSON_GetArraySize(field(o, "routes")), 2);
        CHECK_STR(field(o, "state")->valuestring, "closed");
        CHECK_INT(field(o, "failures")->valueint, 10);
        CHECK_STR(field(o, "local")->valuestring, "tiny");
        CHECK(cJSON_IsNull(field(o, "upstream")));
    }
    cJSON_Delete(j);
    CHECK_STR(policy_breaker_state_name(POL_CLOSED), "closed");
    CHECK_STR(policy_breaker_state_name(POL_OPEN), "open");
    CHECK_STR(policy_breaker_state_name(POL_HALF_OPEN), "half_open");
    policy_free(p);
}

int main(void) {
    test_state_machine();
    test_error_rate();
    test_json();
    DONE();
}
