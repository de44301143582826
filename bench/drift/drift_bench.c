/*
 * drift_bench.c - simulate an upstream that changes under a fixed name and
 * measure how fast llmpin's drift module notices, and how often it cries
 * wolf. See README.md in this folder.
 *
 * The simulated upstream answers the built-in probe suite. Its fingerprint
 * changes at request N (a version event is expected on that very request),
 * and its accuracy falls from 84% to 51% at request M (the figures of Chen,
 * Zaharia & Zou for GPT-4, March -> June 2023). Wrong answers are the other
 * of yes/no (or an off-by-one integer), so answers change too.
 */
#include "drift/drift.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rng {
    uint64_t s;
};

static double unif(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An answer text for probe p: right with probability acc. */
static void answer(const struct drift_probe *p, int right, char *out, size_t n)
{
    switch (p->kind) {
    case DRIFT_EXPECT_YESNO:
        snprintf(out, n, "Let me think step by step. ... [%s]",
                 (strcmp(p->expect, "yes") == 0) == right ? "Yes" : "No");
        break;
    case DRIFT_EXPECT_INT:
        snprintf(out, n, "Working it out...\n%lld", atoll(p->expect) + (right ? 0 : 1));
        break;
    case DRIFT_EXPECT_BRACKET:
        snprintf(out, n, "[%s%s]", p->expect, right ? "" : "x");
        break;
    case DRIFT_EXPECT_JSON:
        snprintf(out, n, "%s", right ? p->expect : "{\"id\":0}");
        break;
    default:
        snprintf(out, n, "%s", right ? p->expect : "?");
    }
}

static void quiet(void *ud, const char *level, const char *msg) {}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: llmpin-bench-drift [--suite builtin:default] [--fp-change N]\n"
                    "  [--acc-change M] [--requests R] [--trials T] [--stable P] [--seed S]\n"
                    "  [--baseline B] [--records K]\n");
}

int main(int argc, char **argv)
{
    const char *suite_name = "builtin:default";
    long fp_change = 300, acc_change = 600, requests = 2000, trials = 200, stable = 200000;
    long records = 90000, baseline = 100;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--suite"))
            suite_name = v;
        else if (!strcmp(a, "--fp-change"))
            fp_change = atol(v);
        else if (!strcmp(a, "--acc-change"))
            acc_change = atol(v);
        else if (!strcmp(a, "--requests"))
            requests = atol(v);
        else if (!strcmp(a, "--trials"))
            trials = atol(v);
        else if (!strcmp(a, "--stable"))
            stable = atol(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--baseline"))
            baseline = atol(v);
        else if (!strcmp(a, "--records"))
            records = atol(v);
        else {
            usage();
            return 2;
        }
    }
    char err[512];
    struct drift_probe_suite *suite = drift_probe_suite_load(suite_name, err, sizeof err);
    if (!suite) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char dir[] = "/tmp/llmpin-bench-drift-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256];
    struct cfg_drift cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.enabled = 1;
    cfg.store_outputs = CFG_STORE_HASH;
    cfg.commit_interval_ms = 100;
    cfg.false_alarm_rate = 1e-4;
    cfg.min_drop = 0.15;
    cfg.baseline_probes = (int)baseline;
    cfg.db_path = path;
    printf("llmpin drift simulation: suite %s (%zu probes), h = ln(1/1e-4) = %.2f, "
           "min_drop 0.15, baseline %ld probes, seed %llu\n\n", suite->name, suite->n,
           drift_cusum_h(1e-4), baseline, (unsigned long long)seed);

    /* 1. One scenario through the whole store, with the chronology. */
    struct rng r = {seed};
    long v_at = -1, a_at = -1;
    char a_sum[1024] = "";
    {
        snprintf(path, sizeof path, "%s/scenario.db", dir);
        struct drift *d = drift_open(&cfg, err, sizeof err);
        if (!d) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        drift_set_log(d, quiet, NULL);
        for (long i = 0; i < requests; i++) {
            const struct drift_probe *p = &suite->probes[i % suite->n];
            struct drift_event ev;
            if (drift_observe_version(d, "sim/gpt", "gpt", "gpt-sim",
                                      i < fp_change ? "fp_a" : "fp_b", &ev) == 1) {
                if (v_at < 0)
                    v_at = i;
                drift_event_clear(&ev);
            }
            double acc = i < acc_change ? 0.84 : 0.51;
            char out[512];
            answer(p, unif(&r) < acc, out, sizeof out);
            struct drift_record *rec = drift_record_new();
            rec->target = strdup("sim/gpt");
            rec->requested_model = strdup("gpt");
            rec->status = 200;
            rec->output_text = strdup(out);
            if (drift_probe_result(d, suite->name, p, rec, &ev) == 1) {
                if (a_at < 0 && i >= acc_change) {
                    a_at = i;
                    snprintf(a_sum, sizeof a_sum, "%s", ev.summary);
                }
                if (i < acc_change)
                    printf("  false alarm at request %ld: %s\n", i, ev.summary);
                drift_event_clear(&ev);
            }
        }
        drift_close(d);
    }
    printf("Scenario: fingerprint changes at request %ld, accuracy 84%% -> 51%% at request %ld\n",
           fp_change, acc_change);
    if (v_at >= 0)
        printf("  version event at request %ld (delay %ld requests)\n", v_at, v_at - fp_change);
    else
        printf("  version event: MISSED\n");
    if (a_at >= 0)
        printf("  accuracy/answer alarm at request %ld (delay %ld probes)\n    %s\n", a_at,
               a_at - acc_change, a_sum);
    else
        printf("  accuracy alarm: MISSED within %ld requests\n", requests);

    /* 2. Detection delay over many trials (detector only; same code path). */
    struct drift_detector_params prm = {1e-4, 0.15, (int)baseline};
    long *delays = calloc((size_t)trials, sizeof *delays), nd = 0, missed = 0, early = 0;
    for (long t = 0; t < trials; t++) {
        struct drift_detector *dt = drift_detector_new(&prm);
        for (long i = 0; i < acc_change + 5000; i++) {
            const struct drift_probe *p = &suite->probes[i % suite->n];
            char out[512], ans[512];
            answer(p, unif(&r) < (i < acc_change ? 0.84 : 0.51), out, sizeof out);
            int has = drift_probe_extract(p, out, ans, sizeof ans) == 0;
            const char *kind;
            char *ev = NULL, sum[512];
            if (drift_detector_feed(dt, p->id, drift_probe_grade(p, out), has ? ans : NULL, &kind,
                                    &ev, sum, sizeof sum)) {
                free(ev);
                if (i < acc_change) {
                    early++;
                    break;
                }
                delays[nd++] = i - acc_change + 1;
                break;
            }
            if (i == acc_change + 4999)
                missed++;
        }
        drift_detector_free(dt);
    }
    qsort(delays, (size_t)nd, sizeof *delays, cmp_long);
    double sum = 0;
    for (long i = 0; i < nd; i++)
        sum += delays[i];
    printf("\nDetection delay, %ld trials (change at probe %ld):\n", trials, acc_change);
    if (nd)
        printf("  mean %.1f  median %ld  p90 %ld  max %ld probes; missed %ld; false alarm "
               "before the change in %ld trials\n", sum / nd, delays[nd / 2],
               delays[nd * 9 / 10], delays[nd - 1], missed, early);
    free(delays);

    /* 3. False alarms over a long stable run. */
    struct drift_detector *dt = drift_detector_new(&prm);
    long fa = 0;
    for (long i = 0; i < stable; i++) {
        const struct drift_probe *p = &suite->probes[i % suite->n];
        char out[512], ans[512];
        answer(p, unif(&r) < 0.84, out, sizeof out);
        int has = drift_probe_extract(p, out, ans, sizeof ans) == 0;
        const char *kind;
        char *ev = NULL, s2[512];
        if (drift_detector_feed(dt, p->id, drift_probe_grade(p, out), has ? ans : NULL, &kind,
                                &ev, s2, sizeof s2)) {
            fa++;
            free(ev);
        }
    }
    drift_detector_free(dt);
    printf("\nFalse alarms, %ld stable probes at 84%%: %ld (%.2f per 10,000; design bound "
           "1 per 10,000 per chart)\n", stable, fa, fa * 1e4 / (double)stable);

    /* 4. Recorder throughput. */
    snprintf(path, sizeof path, "%s/throughput.db", dir);
    struct drift *d = drift_open(&cfg, err, sizeof err);
    if (d) {
        double t0 = now_s();
        for (long i = 0; i < records; i++) {
            struct drift_record *rec = drift_record_new();
            char id[32];
            snprintf(id, sizeof id, "req-%ld", i);
            rec->request_id = strdup(id);
            rec->target = strdup("sim/gpt");
            rec->requested_model = strdup("gpt");
            rec->served_model = strdup("gpt-sim");
            rec->status = 200;
            rec->latency_ms = 100;
            drift_push(d, rec);
        }
        double t1 = now_s();
        struct drift_stats st;
        drift_flush(d);
        drift_stats(d, &st);
        double t2 = now_s();
        drift_close(d);
        printf("\nRecorder: %ld records pushed in %.3f s (%.0f ns per push on the caller), "
               "committed after %.3f s (%.0f records/s) in %llu transactions, %llu dropped "
               "(queue bound %d)\n",
               records, t1 - t0, (t1 - t0) * 1e9 / records, t2 - t0, records / (t2 - t0),
               (unsigned long long)st.batches, (unsigned long long)st.dropped, DRIFT_QUEUE_MAX);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    drift_probe_suite_free(suite);
    return 0;
}
