/*
 * drift_cusum_test.c - the detectors, simulated with a fixed-seed generator
 * (so every figure below is deterministic):
 *   - delay to detect accuracy 84% -> 51% (design p1 = 69%, h = ln 10^4),
 *     mean over 500 trials, must be <= 60 probes;
 *   - false alarms over 200,000 stable probes at p = 0.84: <= 20 (one per
 *     10,000), for each chart and for the whole detector with an estimated
 *     baseline;
 *   - the answer-change chart fires when answers change at equal accuracy,
 *     and the accuracy charts do not;
 *   - detector state survives a round trip through JSON.
 */
#include "drift_test.h"
#include "drift/internal.h"

#include <math.h>

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

static void pure_charts(void)
{
    double h = drift_cusum_h(1e-4);
    CHECK(fabs(h - 9.2103) < 1e-3);
    struct drift_cusum c;
    CHECK(drift_cusum_init(&c, 0.84, 0.84, h) == -1);
    CHECK(drift_cusum_init(&c, 0, 0.5, h) == -1);
    CHECK(drift_cusum_init(&c, 0.84, 0.69, h) == 0);
    /* E[W] at p = 0.51 is about 0.22 (NOTES section 3) */
    CHECK(fabs(drift_cusum_drift(&c, 0.51) - 0.2238) < 0.001);
    CHECK(drift_cusum_drift(&c, 0.84) < 0);

    /* detection delay */
    struct rng r = {12345};
    long total = 0, trials = 500, pre_alarms = 0;
    for (long t = 0; t < trials; t++) {
        drift_cusum_init(&c, 0.84, 0.69, h);
        for (int i = 0; i < 200; i++)           /* in control first */
            if (drift_cusum_update(&c, unif(&r) < 0.84)) {
                pre_alarms++;
                drift_cusum_reset(&c);
            }
        long n = 0;
        while (!drift_cusum_update(&c, unif(&r) < 0.51))
            n++;
        total += n + 1;
    }
    double mean = (double)total / trials;
    printf("drop chart: mean detection delay 84%% -> 51%%: %.1f probes (%ld trials)\n", mean,
           trials);
    CHECK(mean <= 60);
    CHECK(mean >= 20);          /* sanity: not alarming on noise */

    /* false alarms over 200k stable probes, each one-sided chart */
    struct {
        const char *name;
        double p1;
    } charts[] = {{"drop", 0.69}, {"rise", 0.99}};
    for (int k = 0; k < 2; k++) {
        struct rng r2 = {777};
        drift_cusum_init(&c, 0.84, charts[k].p1, h);
        long alarms = 0;
        for (long i = 0; i < 200000; i++)
            if (drift_cusum_update(&c, unif(&r2) < 0.84)) {
                alarms++;
                drift_cusum_reset(&c);
            }
        printf("%s chart: %ld false alarms in 200000 stable probes\n", charts[k].name, alarms);
        CHECK(alarms <= 20);
    }
    /* change-point estimate: after a change, n_since_zero tracks the probes since */
    drift_cusum_init(&c, 0.84, 0.69, h);
    for (int i = 0; i < 30; i++)
        drift_cusum_update(&c, 1);
    CHECK_INT(c.s, 0);
    for (int i = 0; i < 5; i++)
        drift_cusum_update(&c, 0);
    CHECK_INT(c.n_since_zero, 5);
    CHECK_INT(c.x_since_zero, 0);
}

static struct drift_detector *new_det(void)
{
    struct drift_detector_params prm = {1e-4, 0.15, 100};
    return drift_detector_new(&prm);
}

/* A simulated model: probe i (a suite of 200, asked in turn) answered
 * correctly with probability p; a wrong answer is the other of yes/no. */
static int feed(struct drift_detector *dt, struct rng *r, int i, double p, const char **kind,
                char **ev)
{
    char id[32];
    snprintf(id, sizeof id, "prime-%04d", i % 200);
    int truth = (i % 200) % 2;
    int correct = unif(r) < p;
    const char *ans = (correct ? truth : !truth) ? "yes" : "no";
    char summary[512];
    return drift_detector_feed(dt, id, correct, ans, kind, ev, summary, sizeof summary);
}

static void detector_pipeline(void)
{
    /* whole detector, estimated baseline, 200k stable probes */
    struct drift_detector *dt = new_det();
    struct rng r = {4242};
    long alarms = 0;
    for (int i = 0; i < 200000; i++) {
        const char *kind;
        char *ev = NULL;
        if (feed(dt, &r, i, 0.84, &kind, &ev))
            alarms++;
        free(ev);
    }
    printf("detector (3 charts, estimated baseline): %ld false alarms in 200000 stable probes\n",
           alarms);
    CHECK(alarms <= 20);
    drift_detector_free(dt);

    /* a change 84% -> 51% after the baseline: alarm kind and evidence */
    struct rng r2 = {99};
    long delays = 0, n_trials = 50, detected = 0, by_drop = 0;
    for (long t = 0; t < n_trials; t++) {
        dt = new_det();
        int i = 0, alarm = 0;
        const char *kind = NULL;
        char *ev = NULL;
        for (; i < 400 && !alarm; i++)
            alarm = feed(dt, &r2, i, 0.84, &kind, &ev);
        if (alarm) {                      /* a false alarm before the change: skip trial */
            free(ev);
            drift_detector_free(dt);
            continue;
        }
        for (int k = 0; k < 1000 && !alarm; k++, i++) {
            alarm = feed(dt, &r2, i, 0.51, &kind, &ev);
            if (alarm) {
                detected++;
                delays += k + 1;
                /* usually the drop chart; the answer-change chart may win the race */
                CHECK(strcmp(kind, "accuracy") == 0 || strcmp(kind, "answer_change") == 0);
                by_drop += strcmp(kind, "accuracy") == 0;
                cJSON *e = cJSON_Parse(ev);
                CHECK(e != NULL);
                double before = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "baseline_accuracy"));
                double after = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "recent_accuracy"));
                CHECK(before > 0.7 && before < 0.95);
                CHECK(after < before - 0.1);
                CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "probes_since_change")) >= 5);
                CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(e, "flipped_ids")) >= 1);
                CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "chart")),
                          strcmp(kind, "accuracy") == 0 ? "drop" : "answer_change");
                cJSON_Delete(e);
                free(ev);
            }
        }
        /* after the alarm it re-baselines */
        cJSON *st = drift_detector_to_json(dt);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(st, "phase")), "baseline");
        cJSON_Delete(st);
        drift_detector_free(dt);
    }
    printf("detector: detected %ld of %ld changes 84%% -> 51%%, mean delay %.1f probes\n",
           detected, n_trials, detected ? (double)delays / detected : 0.0);
    CHECK(detected >= n_trials - 2);
    CHECK(by_drop >= n_trials / 2);
    CHECK(detected && (double)delays / detected <= 60);

    /* same accuracy, different answers: probes 0..83 right before, 16..99 right after */
    dt = new_det();
    int alarm = 0, at = -1;
    const char *kind = NULL;
    char *ev = NULL, summary[512];
    for (int round = 0; round < 6 && !alarm; round++)
        for (int q = 0; q < 100 && !alarm; q++) {
            char id[16];
            snprintf(id, sizeof id, "q%02d", q);
            /* the same 84% accuracy, on a different set of probes */
            int correct = round < 3 ? (q * 37) % 100 < 84 : (q * 37 + 50) % 100 < 84;
            const char *ans = correct ? "right" : "wrong";
            alarm = drift_detector_feed(dt, id, correct, ans, &kind, &ev, summary, sizeof summary);
            if (alarm)
                at = round * 100 + q;
        }
    CHECK(alarm == 1);
    CHECK_STR(kind, "answer_change");
    CHECK(at >= 300 && at < 360);
    CHECK(strstr(summary, "answers changed") != NULL);
    printf("answer-change chart: alarm %d probes after the switch (%s)\n", at - 300, summary);
    free(ev);
    drift_detector_free(dt);

    /* JSON round trip keeps the phase and the chart */
    dt = new_det();
    struct rng r3 = {5};
    for (int i = 0; i < 150; i++) {
        char *e2 = NULL;
        feed(dt, &r3, i, 0.84, &kind, &e2);
        free(e2);
    }
    cJSON *st = drift_detector_to_json(dt);
    struct drift_detector *dt2 = new_det();
    CHECK(drift_detector_load_json(dt2, st) == 0);
    cJSON *st2 = drift_detector_to_json(dt2);
    char *a = cJSON_PrintUnformatted(st), *b = cJSON_PrintUnformatted(st2);
    /* baseline answers are stored separately, so that count differs */
    cJSON_DeleteItemFromObject(st, "baseline_answers");
    cJSON_DeleteItemFromObject(st2, "baseline_answers");
    free(a);
    free(b);
    a = cJSON_PrintUnformatted(st);
    b = cJSON_PrintUnformatted(st2);
    CHECK_STR(a, b);
    free(a);
    free(b);
    cJSON_Delete(st);
    cJSON_Delete(st2);
    drift_detector_free(dt);
    drift_detector_free(dt2);
}

int main(void)
{
    pure_charts();
    detector_pipeline();
    return t_done("drift_cusum_test");
}
