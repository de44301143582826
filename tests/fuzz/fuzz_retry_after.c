/*
 * fuzz_retry_after.c - libFuzzer target for policy_parse_retry_after
 * (policy/retry.c), which reads the Retry-After and retry-after-ms headers
 * of an upstream's 429/503.
 *
 * Input: the Retry-After value, then optionally '\n' and the
 * retry-after-ms value (header values cannot hold a newline). What must
 * hold: a parsed wait is within [0, one day]; a later "now" never gives a
 * longer wait, and one second later gives at most one second less (a date
 * counts down, a number of seconds does not move); a retry-after-ms of
 * plain digits wins exactly.
 */
#include "policy/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ONE_DAY_MS (86400LL * 1000)
#define NOW_MS 1767225600000LL      /* 2026-01-01 00:00:00 UTC */

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_retry_after: " __VA_ARGS__);            \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ra = malloc(size + 1);
    if (!ra) abort();
    memcpy(ra, data, size);
    ra[size] = 0;
    char *ms = strchr(ra, '\n');
    if (ms) *ms++ = 0;

    int64_t now[3] = {NOW_MS, NOW_MS + 1000, NOW_MS + 400LL * ONE_DAY_MS};
    int64_t out[3] = {-7, -7, -7};
    int rc[3];
    for (int i = 0; i < 3; i++) {
        rc[i] = policy_parse_retry_after(ra, ms, now[i], &out[i]);
        if (rc[i] != 0 && rc[i] != -1) FAIL("returned %d", rc[i]);
        if (rc[i] == 0 && (out[i] < 0 || out[i] > ONE_DAY_MS)) FAIL("wait %lld ms", (long long)out[i]);
        if (rc[i] != 0 && out[i] != -7) FAIL("failed but wrote %lld", (long long)out[i]);
    }
    if (rc[0] != rc[1] || rc[0] != rc[2]) FAIL("validity depends on the clock");
    if (rc[0] == 0 && (out[1] > out[0] || out[0] - out[1] > 1000 || out[2] > out[1]))
        FAIL("waits %lld, %lld, %lld ms for later clocks", (long long)out[0], (long long)out[1],
             (long long)out[2]);

    if (ms) {
        size_t n = strlen(ms), i = 0;
        int64_t v = 0;
        while (i < n && i < 12 && ms[i] >= '0' && ms[i] <= '9') v = v * 10 + (ms[i++] - '0');
        if (n > 0 && i == n) {
            int64_t want = v > ONE_DAY_MS ? ONE_DAY_MS : v;
            if (rc[0] != 0 || out[0] != want)
                FAIL("retry-after-ms \"%s\" gave rc %d, %lld ms", ms, rc[0], (long long)out[0]);
        }
    }
    /* each header alone must parse the same whether or not the other is NULL */
    if (!ms || !*ms) {
        int64_t o = -7;
        int r = policy_parse_retry_after(ra, NULL, NOW_MS, &o);
        if (r != rc[0] || (r == 0 && o != out[0])) FAIL("an empty retry-after-ms changed the result");
    }
    free(ra);
    return 0;
}
