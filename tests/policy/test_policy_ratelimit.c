/*
 * test_policy_ratelimit.c - per key token buckets: requests and tokens
 * per minute, continuous refill, the x-ratelimit-* values, retry-after
 * when limited, token corrections after the response (refund and debt),
 * unlimited and unknown keys.
 */
#include "tests/policy/ptest.h"

int main(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_client_key keys[4];
    memset(keys, 0, sizeof keys);
    keys[0].name = "carol"; keys[0].tpm = 600;
    keys[1].name = "alice"; keys[1].rpm = 3; keys[1].tpm = 1000;
    keys[2].name = "bob";                                  /* unlimited */
    keys[3].name = "dave"; keys[3].rpm = 60;
    c.keys = keys;
    c.n_keys = 4;
    struct policy *p = t_policy(&c);
    struct policy_rl_info in;

    /* requests: 3 per minute, one every 20 s */
    CHECK_INT(policy_ratelimit_take(p, "alice", 0, 100, &in), 0);
    CHECK_INT(in.limit_requests, 3);
    CHECK_INT(in.remaining_requests, 2);
    CHECK_INT(in.reset_requests_ms, 20000);
    CHECK_INT(in.limit_tokens, 1000);
    CHECK_INT(in.remaining_tokens, 900);
    CHECK_INT(in.reset_tokens_ms, 6000);
    CHECK_INT(in.retry_after_ms, 0);
    CHECK_INT(policy_ratelimit_take(p, "alice", 0, 100, &in), 0);
    CHECK_INT(policy_ratelimit_take(p, "alice", 0, 100, &in), 0);
    CHECK_INT(in.remaining_requests, 0);
    CHECK_INT(in.reset_requests_ms, 60000);
    CHECK_INT(policy_ratelimit_take(p, "alice", 0, 100, &in), 1);
    CHECK_INT(in.retry_after_ms, 20000);
    CHECK_INT(in.remaining_requests, 0);
    CHECK_INT(in.remaining_tokens, 700);          /* nothing taken when limited */
    CHECK_INT(policy_ratelimit_take(p, "alice", 19999, 100, &in), 1);
    CHECK_INT(in.retry_after_ms, 1);
    CHECK_INT(policy_ratelimit_take(p, "alice", 20000, 100, &in), 0);
    CHECK_INT(in.remaining_requests, 0);
    /* a minute idle refills to the limit, not beyond */
    CHECK_INT(policy_ratelimit_take(p, "alice", 1000000, 0, &in), 0);
    CHECK_INT(in.remaining_requests, 2);
    CHECK_INT(in.remaining_tokens, 1000);
    CHECK_INT(in.reset_tokens_ms, 0);

    /* tokens: 600 per minute = 10 per second */
    CHECK_INT(policy_ratelimit_take(p, "carol", 0, 500, &in), 0);
    CHECK_INT(in.limit_requests, 0);              /* no request limit: no headers */
    CHECK_INT(in.remaining_tokens, 100);
    CHECK_INT(in.reset_tokens_ms, 50000);
    CHECK_INT(policy_ratelimit_take(p, "carol", 0, 200, &in), 1);
    CHECK_INT(in.retry_after_ms, 10000);
    CHECK_INT(in.remaining_tokens, 100);
    CHECK_INT(policy_ratelimit_take(p, "carol", 10000, 200, &in), 0);
    CHECK_INT(in.remaining_tokens, 0);
    /* the answer used 500, not 200: the bucket goes 300 into debt */
    policy_ratelimit_commit_tokens(p, "carol", 200, 500, 10000);
    CHECK_INT(policy_ratelimit_take(p, "carol", 10000, 0, &in), 1);
    CHECK_INT(in.retry_after_ms, 30000);
    CHECK_INT(in.remaining_tokens, 0);
    CHECK_INT(in.reset_tokens_ms, 90000);
    CHECK_INT(policy_ratelimit_take(p, "carol", 40000, 0, &in), 0);
    CHECK_INT(policy_ratelimit_take(p, "carol", 40000, 1, &in), 1);
    CHECK_INT(in.retry_after_ms, 100);
    /* refund: used less than estimated */
    CHECK_INT(policy_ratelimit_take(p, "carol", 70000, 300, &in), 0);   /* level 300 -> 0 */
    CHECK_INT(in.remaining_tokens, 0);
    policy_ratelimit_commit_tokens(p, "carol", 300, 100, 70000);
    CHECK_INT(policy_ratelimit_take(p, "carol", 70000, 0, &in), 0);
    CHECK_INT(in.remaining_tokens, 200);
    /* refunds never overfill */
    policy_ratelimit_commit_tokens(p, "carol", 600, 0, 1000000);
    CHECK_INT(policy_ratelimit_take(p, "carol", 1000000, 0, &in), 0);
    CHECK_INT(in.remaining_tokens, 600);
    /* an estimate above the whole minute only needs a full bucket */
    CHECK_INT(policy_ratelimit_take(p, "carol", 1000000, 5000, &in), 0);
    CHECK_INT(in.remaining_tokens, 0);
    CHECK_INT(policy_ratelimit_take(p, "carol", 1000001, 5000, &in), 1);
    CHECK_INT(in.retry_after_ms, 59999);   /* 1 ms of refill already in */
    /* debt is bounded to a day's refill */
    policy_ratelimit_commit_tokens(p, "carol", 600, 2000000000, 1000001);
    CHECK_INT(policy_ratelimit_take(p, "carol", 1000001, 0, &in), 1);
    CHECK_INT(in.retry_after_ms, 86400000);

    /* both buckets checked before either is taken */
    CHECK_INT(policy_ratelimit_take(p, "alice", 2000000, 1000, &in), 0);    /* tokens now 0 */
    CHECK_INT(policy_ratelimit_take(p, "alice", 2000000, 10, &in), 1);      /* tokens short */
    CHECK_INT(in.remaining_requests, 2);                                    /* request not taken */
    CHECK_INT(in.retry_after_ms, 600);

    /* clock going backwards: no refill, no harm */
    CHECK_INT(policy_ratelimit_take(p, "dave", 5000, 0, &in), 0);
    CHECK_INT(in.remaining_requests, 59);
    CHECK_INT(policy_ratelimit_take(p, "dave", 1000, 0, &in), 0);
    CHECK_INT(in.remaining_requests, 58);
    CHECK_INT(in.limit_tokens, 0);

    /* unlimited, unknown, no key: always allowed, zero info */
    for (int i = 0; i < 1000; i++) CHECK_INT(policy_ratelimit_take(p, "bob", 0, 100000, &in), 0);
    CHECK_INT(in.limit_requests, 0);
    CHECK_INT(in.limit_tokens, 0);
    CHECK_INT(policy_ratelimit_take(p, "nobody", 0, 1, &in), 0);
    CHECK_INT(policy_ratelimit_take(p, NULL, 0, 1, &in), 0);
    CHECK_INT(policy_ratelimit_take(p, "alice", 3000000, 1, NULL), 0);
    policy_ratelimit_commit_tokens(p, "bob", 1, 100, 0);
    policy_ratelimit_commit_tokens(p, NULL, 1, 100, 0);
    policy_ratelimit_commit_tokens(p, "dave", 1, 100, 0);   /* no tpm: nothing to correct */
    policy_free(p);

    /* no keys at all */
    c.keys = NULL;
    c.n_keys = 0;
    p = t_policy(&c);
    CHECK_INT(policy_ratelimit_take(p, "alice", 0, 1, &in), 0);
    policy_free(p);
    DONE();
}
