/*
 * test_policy_retry.c - retry decisions (which outcomes, attempt limit,
 * backoff bound and cap, jitter range, Retry-After, deadline), the
 * Retry-After parser (seconds, HTTP-date in three forms, retry-after-ms),
 * status classification and the OpenAI-style duration format.
 */
#include "tests/policy/ptest.h"

static char *m_star[] = {"*"};
static const uint64_t R_LOW = 0;
static const uint64_t R_HIGH = 0xFFFFFFFFFFFFFFFFULL;

static uint64_t next_rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void test_should_retry(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target t[] = {t_up("openai", "gpt-4o")};
    struct cfg_route routes[] = {t_route("r", m_star, 1, CFG_MODE_REMOTE, t, 1)};
    routes[0].retry.max_attempts = 3;
    routes[0].retry.base_ms = 200;
    routes[0].retry.max_ms = 1000;
    c.routes = routes;
    c.n_routes = 1;
    struct policy *p = t_policy(&c);
    const struct policy_route *r = policy_route_by_name(p, "r");
    int64_t d = -7;

    /* which outcomes */
    static const enum policy_outcome yes[] = {POL_CONNECT, POL_TIMEOUT, POL_429, POL_5XX};
    static const enum policy_outcome no[] = {POL_OK, POL_4XX, POL_DRIFT, POL_CANCELLED, POL_CIRCUIT_OPEN};
    for (size_t i = 0; i < N(yes); i++) CHECK_INT(policy_should_retry(r, yes[i], 1, 0, 0, -1, R_LOW, &d), 1);
    for (size_t i = 0; i < N(no); i++) {
        CHECK_INT(policy_should_retry(r, no[i], 1, 0, 0, -1, R_LOW, &d), 0);
        CHECK_INT(d, 0);
    }

    /* bound doubles per attempt; full jitter spans [0, bound] */
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 0, 0, -1, R_HIGH, &d), 1);
    CHECK_INT(d, 200);
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 0, 0, -1, R_LOW, &d), 1);
    CHECK_INT(d, 0);
    CHECK_INT(policy_should_retry(r, POL_5XX, 2, 0, 0, -1, R_HIGH, &d), 1);
    CHECK_INT(d, 400);
    /* at most max_attempts per target */
    CHECK_INT(policy_should_retry(r, POL_5XX, 3, 0, 0, -1, R_HIGH, &d), 0);
    routes[0].retry.max_attempts = 1;
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 0, 0, -1, R_HIGH, &d), 0);
    /* cap */
    routes[0].retry.max_attempts = 100;
    CHECK_INT(policy_should_retry(r, POL_5XX, 3, 0, 0, -1, R_HIGH, &d), 1);
    CHECK_INT(d, 800);
    CHECK_INT(policy_should_retry(r, POL_5XX, 4, 0, 0, -1, R_HIGH, &d), 1);
    CHECK_INT(d, 1000);
    CHECK_INT(policy_should_retry(r, POL_5XX, 80, 0, 0, -1, R_HIGH, &d), 1);
    CHECK_INT(d, 1000);
    /* jitter over 10,000 draws: within [0, 400], mean near 200, both ends reached roughly */
    uint64_t s = 7;
    int64_t lo = 1 << 30, hi = -1, sum = 0;
    for (int i = 0; i < 10000; i++) {
        CHECK_INT(policy_should_retry(r, POL_TIMEOUT, 2, 0, 0, -1, next_rnd(&s), &d), 1);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
        sum += d;
    }
    CHECK(lo >= 0 && lo < 5);
    CHECK(hi <= 400 && hi > 395);
    CHECK(sum / 10000 > 190 && sum / 10000 < 210);

    /* Retry-After wins, even above max_ms */
    CHECK_INT(policy_should_retry(r, POL_429, 1, 0, 0, 3000, R_HIGH, &d), 1);
    CHECK_INT(d, 3000);
    CHECK_INT(policy_should_retry(r, POL_429, 1, 0, 0, 0, R_HIGH, &d), 1);
    CHECK_INT(d, 0);
    /* deadline */
    CHECK_INT(policy_should_retry(r, POL_429, 1, 1000, 5000, 3999, R_HIGH, &d), 1);
    CHECK_INT(d, 3999);
    CHECK_INT(policy_should_retry(r, POL_429, 1, 1000, 5000, 4000, R_HIGH, &d), 0);
    CHECK_INT(d, 0);
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 4900, 5000, -1, R_HIGH, &d), 0);
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 4900, 5000, -1, R_LOW, &d), 1);
    CHECK_INT(d, 0);
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 5000, 5000, -1, R_LOW, &d), 0);
    /* attempt 0 is read as 1 */
    CHECK_INT(policy_should_retry(r, POL_5XX, 0, 0, 0, -1, R_HIGH, &d), 1);
    CHECK_INT(d, 200);
    policy_free(p);
}

static void test_parse_retry_after(void) {
    const int64_t now = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
    int64_t v = -7;
    CHECK_INT(policy_parse_retry_after("5", NULL, now, &v), 0);
    CHECK_INT(v, 5000);
    CHECK_INT(policy_parse_retry_after("1.5", NULL, now, &v), 0);
    CHECK_INT(v, 1500);
    CHECK_INT(policy_parse_retry_after(" 2 ", NULL, now, &v), 0);
    CHECK_INT(v, 2000);
    CHECK_INT(policy_parse_retry_after("0", NULL, now, &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(policy_parse_retry_after("0.0001", NULL, now, &v), 0);
    CHECK_INT(v, 1);                     /* rounded up */
    CHECK_INT(policy_parse_retry_after("999999999", NULL, now, &v), 0);
    CHECK_INT(v, 86400000);              /* clamped to a day */
    v = -7;
    CHECK_INT(policy_parse_retry_after("-1", NULL, now, &v), -1);
    CHECK_INT(policy_parse_retry_after("abc", NULL, now, &v), -1);
    CHECK_INT(policy_parse_retry_after("", NULL, now, &v), -1);
    CHECK_INT(policy_parse_retry_after(".", NULL, now, &v), -1);
    CHECK_INT(policy_parse_retry_after("1e3", NULL, now, &v), -1);
    CHECK_INT(policy_parse_retry_after("1234567890123", NULL, now, &v), -1);
    CHECK_INT(policy_parse_retry_after(NULL, NULL, now, &v), -1);
    CHECK_INT(v, -7);                    /* untouched on failure */

    /* retry-after-ms wins when valid */
    CHECK_INT(policy_parse_retry_after(NULL, "250", now, &v), 0);
    CHECK_INT(v, 250);
    CHECK_INT(policy_parse_retry_after("5", "250", now, &v), 0);
    CHECK_INT(v, 250);
    CHECK_INT(policy_parse_retry_after("5", "12.3", now, &v), 0);
    CHECK_INT(v, 13);
    CHECK_INT(policy_parse_retry_after("5", "bad", now, &v), 0);
    CHECK_INT(v, 5000);

    /* HTTP-date, the three forms of RFC 9110 */
    CHECK_INT(policy_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", NULL, now, &v), 0);
    CHECK_INT(v, 10000);
    CHECK_INT(policy_parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", NULL, now, &v), 0);
    CHECK_INT(v, 10000);
    CHECK_INT(policy_parse_retry_after("Sun Nov  6 08:49:47 1994", NULL, now, &v), 0);
    CHECK_INT(v, 10000);
    CHECK_INT(policy_parse_retry_after("Sun, 06 Nov 1994 09:49:37 GMT", NULL, now, &v), 0);
    CHECK_INT(v, 3600000);
    /* past date: no wait */
    CHECK_INT(policy_parse_retry_after("Sun, 06 Nov 1994 08:49:36 GMT", NULL, now, &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(policy_parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", NULL, now, &v), 0);
    CHECK_INT(v, 0);
    /* leap day and a far date, against known Unix times */
    CHECK_INT(policy_parse_retry_after("Thu, 29 Feb 2024 23:59:59 GMT", NULL, 1709251199000LL - 1500, &v), 0);
    CHECK_INT(v, 1500);
    CHECK_INT(policy_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", NULL, 4102444800000LL - 60000, &v), 0);
    CHECK_INT(v, 60000);
    /* malformed dates */
    static const char *bad[] = {
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Funday, 06-Nov-94 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 GMT junk", "Sun, 00 Nov 1994 08:49:37 GMT", "Sun,",
    };
    for (size_t i = 0; i < N(bad); i++) {
        if (policy_parse_retry_after(bad[i], NULL, now, &v) != -1) {
            fprintf(stderr, "accepted bad date: %s\n", bad[i]);
            failures++;
        }
    }
}

/* Hostile header values: random strings from the characters dates and
 * numbers are made of must never crash or read out of bounds (run under
 * ASan), and whatever parses must be within [0, one day]. */
static void test_parse_random(void) {
    static const char alphabet[] = "0123456789.,: -GMTSunNovFebday\t";
    uint64_t s = 2024;
    char buf[40];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = next_rnd(&s);
        int len = (int)(r % 36);
        for (int k = 0; k < len; k++) buf[k] = alphabet[next_rnd(&s) % (sizeof alphabet - 1)];
        buf[len] = '\0';
        int64_t v = -7;
        int rc = policy_parse_retry_after((r >> 8) & 1 ? buf : NULL, (r >> 9) & 1 ? buf : NULL, 1000, &v);
        if (rc == 0 && (v < 0 || v > 86400000)) {
            fprintf(stderr, "out of range: \"%s\" -> %lld\n", buf, (long long)v);
            failures++;
        }
        if (rc != 0 && v != -7) failures++;
    }
}

static void test_classify(void) {
    CHECK_INT(policy_classify_status(200), POL_OK);
    CHECK_INT(policy_classify_status(204), POL_OK);
    CHECK_INT(policy_classify_status(408), POL_TIMEOUT);
    CHECK_INT(policy_classify_status(429), POL_429);
    CHECK_INT(policy_classify_status(500), POL_5XX);
    CHECK_INT(policy_classify_status(503), POL_5XX);
    CHECK_INT(policy_classify_status(599), POL_5XX);
    CHECK_INT(policy_classify_status(400), POL_4XX);
    CHECK_INT(policy_classify_status(404), POL_4XX);
    CHECK_STR(policy_outcome_name(POL_OK), "ok");
    CHECK_STR(policy_outcome_name(POL_CONNECT), "connect");
    CHECK_STR(policy_outcome_name(POL_TIMEOUT), "timeout");
    CHECK_STR(policy_outcome_name(POL_429), "429");
    CHECK_STR(policy_outcome_name(POL_5XX), "5xx");
    CHECK_STR(policy_outcome_name(POL_4XX), "4xx");
    CHECK_STR(policy_outcome_name(POL_DRIFT), "drift");
    CHECK_STR(policy_outcome_name(POL_CANCELLED), "cancelled");
    CHECK_STR(policy_outcome_name(POL_CIRCUIT_OPEN), "circuit_open");
}

static void test_format_duration(void) {
    char b[32];
    CHECK_STR(policy_format_duration(0, b, sizeof b), "0s");
    CHECK_STR(policy_format_duration(-5, b, sizeof b), "0s");
    CHECK_STR(policy_format_duration(20, b, sizeof b), "20ms");
    CHECK_STR(policy_format_duration(1000, b, sizeof b), "1s");
    CHECK_STR(policy_format_duration(1500, b, sizeof b), "1.5s");
    CHECK_STR(policy_format_duration(1250, b, sizeof b), "1.25s");
    CHECK_STR(policy_format_duration(1125, b, sizeof b), "1.125s");
    CHECK_STR(policy_format_duration(60000, b, sizeof b), "1m0s");
    CHECK_STR(policy_format_duration(360000, b, sizeof b), "6m0s");
    CHECK_STR(policy_format_duration(3723000, b, sizeof b), "1h2m3s");
    CHECK_STR(policy_format_duration(3600500, b, sizeof b), "1h0m0.5s");
    char small[4];
    CHECK_STR(policy_format_duration(3723000, small, sizeof small), "1h2");
}

int main(void) {
    test_should_retry();
    test_parse_retry_after();
    test_parse_random();
    test_classify();
    test_format_duration();
    DONE();
}
