/*
 * cusum.c - change detectors for probe results.
 *
 * Why CUSUM: probes arrive one at a time, forever. Re-testing a sliding
 * window with a two-proportion test after every probe inflates the false
 * alarm rate without bound; Page's cumulative sum does not. For a Bernoulli
 * series with in-control rate p0 and a design alternative p1, the statistic
 * S accumulates the log-likelihood ratio and resets at 0; an alarm at S >= h
 * has an average run length to a false alarm of at least e^h (Lorden), so
 * h = ln(1/alpha) bounds false alarms to about alpha per probe, per chart.
 *
 * One detector per (suite, target) runs three charts:
 *   drop    correctness rate p0 -> p0 - min_drop   (the model got worse)
 *   rise    correctness rate p0 -> p0 + min_drop   (the model changed for the better)
 *   change  "answer differs from the baseline run's answer for this probe",
 *           q0 -> q0 + min_drop; catches a new model that is as accurate
 *           as the old one but answers differently.
 * p0 comes from the first baseline_probes results (Laplace-smoothed). q0 is
 * the flip rate of repeated probes within the baseline when there are at
 * least MIN_REPEATS of them, otherwise it is measured over the next
 * baseline_probes comparisons (a calibration window) before that chart arms.
 * After an alarm everything re-baselines: the new behaviour is the new
 * normal, and another change will be another alarm.
 *
 * Estimated, not known, rates. Lorden's bound assumes p0 is known. From 100
 * results the estimate has a standard error near 0.037, and a drop chart
 * built on a p0 that is 0.04 too high has almost no downward drift in
 * control: simulated, 19% of fresh baselines false-alarmed within 1,000
 * probes. Two remedies, measured with bench/drift: (1) the pool grows: any
 * result older than both charts' change-point estimates (the last time S was
 * 0) was in control and joins the estimate; (2) each chart is designed with
 * its in-control rate moved EST_Z standard errors towards the side it does
 * not watch. With EST_Z = 1.5 a fresh baseline false-alarms at about 1.3e-5
 * per probe (target 1e-4) and an 84% -> 51% change is found after ~50
 * probes (38 with a known p0).
 *
 * Nothing here does I/O; the store persists the JSON state.
 */
#include "drift/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 2048                 /* recent observations kept for evidence */
#define MIN_REPEATS 20
#define MAX_FLIPPED_IDS 50
#ifndef EST_Z
#define EST_Z 1.5                 /* design margin, in standard errors of the estimate */
#endif

double drift_cusum_h(double false_alarm_rate)
{
    if (!(false_alarm_rate > 0) || false_alarm_rate >= 1)
        false_alarm_rate = 1e-4;
    return log(1.0 / false_alarm_rate);
}

int drift_cusum_init(struct drift_cusum *c, double p0, double p1, double h)
{
    memset(c, 0, sizeof *c);
    if (!(p0 > 0 && p0 < 1 && p1 > 0 && p1 < 1) || p0 == p1 || !(h > 0))
        return -1;
    c->p0 = p0;
    c->p1 = p1;
    c->h = h;
    c->w1 = log(p1 / p0);
    c->w0 = log((1 - p1) / (1 - p0));
    return 0;
}

int drift_cusum_update(struct drift_cusum *c, int x)
{
    c->s += x ? c->w1 : c->w0;
    c->n++;
    if (c->s <= 0) {
        c->s = 0;
        c->n_since_zero = 0;
        c->x_since_zero = 0;
    } else {
        c->n_since_zero++;
        c->x_since_zero += x ? 1 : 0;
    }
    return c->s >= c->h;
}

void drift_cusum_reset(struct drift_cusum *c)
{
    c->s = 0;
    c->n = 0;
    c->n_since_zero = 0;
    c->x_since_zero = 0;
}

double drift_cusum_drift(const struct drift_cusum *c, double p)
{
    return p * c->w1 + (1 - p) * c->w0;
}

/* ---- the detector ------------------------------------------------------------ */

struct obs {
    char id[48];
    signed char correct;
    signed char changed;          /* -1: no baseline answer to compare with */
};

struct bl {
    char *id;
    char *answer;
    struct bl *next;
};

enum { PH_BASELINE = 0, PH_WATCH = 1 };

struct drift_detector {
    struct drift_detector_params prm;
    double h;
    int phase;
    long n_base, base_correct;     /* baseline window */
    long n_rep, rep_changed;       /* repeats inside the baseline window */
    long n_cal, cal_changed;       /* change-chart calibration after the baseline */
    long pool_n, pool_x;           /* in-control evidence for p0 (baseline + quiet stretches) */
    long watch_seq;                /* observations since watching began */
    long acc_commit;               /* those before this one are in the pool */
    long cpool_n, cpool_x;         /* same for q0 */
    long cpend_n, cpend_x;
    double p0, q0;
    int drop_on, rise_on, change_on;
    struct drift_cusum drop, rise, change;
    long total, alarms;
    struct bl **tab;               /* probe id -> baseline answer */
    size_t tab_n, bl_count;
    struct obs *ring;
    long ring_pos, ring_len;
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct drift_detector *drift_detector_new(const struct drift_detector_params *prm)
{
    struct drift_detector *dt = calloc(1, sizeof *dt);
    if (!dt)
        return NULL;
    dt->prm = *prm;
    if (dt->prm.baseline_probes < 10)
        dt->prm.baseline_probes = 10;
    if (!(dt->prm.min_drop > 0 && dt->prm.min_drop < 1))
        dt->prm.min_drop = 0.15;
    dt->h = drift_cusum_h(dt->prm.false_alarm_rate);
    dt->tab_n = 1024;
    dt->tab = calloc(dt->tab_n, sizeof *dt->tab);
    dt->ring = calloc(RING, sizeof *dt->ring);
    if (!dt->tab || !dt->ring) {
        drift_detector_free(dt);
        return NULL;
    }
    return dt;
}

static void clear_baseline(struct drift_detector *dt)
{
    for (size_t i = 0; i < dt->tab_n; i++) {
        struct bl *b = dt->tab[i];
        while (b) {
            struct bl *nx = b->next;
            free(b->id);
            free(b->answer);
            free(b);
            b = nx;
        }
        dt->tab[i] = NULL;
    }
    dt->bl_count = 0;
}

void drift_detector_free(struct drift_detector *dt)
{
    if (!dt)
        return;
    if (dt->tab)
        clear_baseline(dt);
    free(dt->tab);
    free(dt->ring);
    free(dt);
}

static struct bl *bl_find(const struct drift_detector *dt, const char *id)
{
    for (struct bl *b = dt->tab[hash_str(id) % dt->tab_n]; b; b = b->next)
        if (strcmp(b->id, id) == 0)
            return b;
    return NULL;
}

const char *drift_detector_baseline(const struct drift_detector *dt, const char *probe_id)
{
    struct bl *b = bl_find(dt, probe_id);
    return b ? b->answer : NULL;
}

int drift_detector_set_baseline(struct drift_detector *dt, const char *id, const char *answer)
{
    struct bl *b = bl_find(dt, id);
    char *a = strdup(answer ? answer : "<none>");
    if (!a)
        return -1;
    if (b) {
        free(b->answer);
        b->answer = a;
        return 0;
    }
    b = calloc(1, sizeof *b);
    if (!b || !(b->id = strdup(id))) {
        free(b);
        free(a);
        return -1;
    }
    b->answer = a;
    size_t slot = hash_str(id) % dt->tab_n;
    b->next = dt->tab[slot];
    dt->tab[slot] = b;
    dt->bl_count++;
    return 0;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Standard error of a rate estimated from n results. */
static double se_of(double p, long n) { return sqrt(p * (1 - p) / (double)(n > 1 ? n : 1)); }

/* (Re)arm the answer-change chart from the pooled in-control comparisons.
 * Only called while its S is 0, so nothing accumulated is lost. */
static void arm_change_chart(struct drift_detector *dt)
{
    long n = dt->cpool_n, changed = dt->cpool_x, keep = dt->change.n;
    dt->q0 = clampd((changed + 1.0) / (n + 2.0), 0.01, 0.9);
    double q1 = fmin(dt->q0 + dt->prm.min_drop, 0.99);
    double q0 = fmin(dt->q0 + EST_Z * se_of(dt->q0, n), q1 - 0.05);
    dt->change_on = q0 > 0 && drift_cusum_init(&dt->change, q0, q1, dt->h) == 0;
    dt->change.n = keep;
}

/* (Re)arm the correctness charts from the pooled in-control results. */
static void rearm(struct drift_cusum *c, int *on, double p0, double p1, double h, int ok)
{
    struct drift_cusum old = *c;
    *on = ok && drift_cusum_init(c, p0, p1, h) == 0;
    /* keep what has accumulated; only the increments change */
    c->s = old.s;
    c->n = old.n;
    c->n_since_zero = old.n_since_zero;
    c->x_since_zero = old.x_since_zero;
}

static void arm_accuracy_charts(struct drift_detector *dt)
{
    dt->p0 = clampd((dt->pool_x + 1.0) / (dt->pool_n + 2.0), 0.02, 0.98);
    double d = dt->prm.min_drop, margin = EST_Z * se_of(dt->p0, dt->pool_n);
    /* each chart assumes the in-control rate is at the far edge of what the
     * pool allows, towards the alternative it does not watch */
    double p1 = dt->p0 - d, p0 = fmax(dt->p0 - margin, p1 + 0.05);
    rearm(&dt->drop, &dt->drop_on, fmin(p0, 0.99), p1, dt->h, p1 >= 0.01);
    p1 = fmin(dt->p0 + d, 0.99);
    p0 = fmin(dt->p0 + margin, p1 - 0.02);
    rearm(&dt->rise, &dt->rise_on, fmax(p0, 0.01), p1, dt->h, p1 - dt->p0 >= 0.02 && p0 > 0);
}

static void start_watch(struct drift_detector *dt)
{
    dt->phase = PH_WATCH;
    dt->pool_n = dt->n_base;
    dt->pool_x = dt->base_correct;
    dt->watch_seq = dt->acc_commit = 0;
    memset(&dt->drop, 0, sizeof dt->drop);
    memset(&dt->rise, 0, sizeof dt->rise);
    memset(&dt->change, 0, sizeof dt->change);
    arm_accuracy_charts(dt);
    dt->n_cal = dt->cal_changed = 0;
    dt->cpend_n = dt->cpend_x = 0;
    dt->change_on = 0;
    if (dt->n_rep >= MIN_REPEATS) {
        dt->cpool_n = dt->n_rep;
        dt->cpool_x = dt->rep_changed;
        arm_change_chart(dt);
    } else {
        dt->cpool_n = dt->cpool_x = 0;
    }
    dt->ring_len = 0;
    dt->ring_pos = 0;
}

static void rebaseline(struct drift_detector *dt)
{
    clear_baseline(dt);
    dt->phase = PH_BASELINE;
    dt->n_base = dt->base_correct = 0;
    dt->n_rep = dt->rep_changed = 0;
    dt->n_cal = dt->cal_changed = 0;
    dt->drop_on = dt->rise_on = dt->change_on = 0;
    dt->ring_len = dt->ring_pos = 0;
}

static void ring_push(struct drift_detector *dt, const char *id, int correct, int changed)
{
    struct obs *o = &dt->ring[dt->ring_pos];
    snprintf(o->id, sizeof o->id, "%s", id);
    o->correct = (signed char)correct;
    o->changed = (signed char)changed;
    dt->ring_pos = (dt->ring_pos + 1) % RING;
    if (dt->ring_len < RING)
        dt->ring_len++;
}

/* The last k observations, newest first. */
static const struct obs *ring_back(const struct drift_detector *dt, long i)
{
    return &dt->ring[(dt->ring_pos - 1 - i + 2 * RING) % RING];
}

static char *make_evidence(struct drift_detector *dt, const char *chart,
                           const struct drift_cusum *c, double *after_acc,
                           long *k_out, long *flipped_out, long *compared_out)
{
    long k = c->n_since_zero;
    if (k < 1)
        k = 1;
    if (k > dt->ring_len)
        k = dt->ring_len;
    long correct = 0, graded = 0, flipped = 0, compared = 0;
    cJSON *ids = cJSON_CreateArray();
    for (long i = k - 1; i >= 0; i--) {          /* oldest first */
        const struct obs *o = ring_back(dt, i);
        graded++;
        correct += o->correct == 1;
        if (o->changed >= 0)
            compared++;
        if (o->changed == 1) {
            flipped++;
            if (cJSON_GetArraySize(ids) < MAX_FLIPPED_IDS)
                cJSON_AddItemToArray(ids, cJSON_CreateString(o->id));
        }
    }
    double acc = graded ? (double)correct / graded : 0;
    if (c != &dt->change && c->n_since_zero > 0) {
        /* the correctness charts count their own excursion exactly, even
         * when the ring does not reach back that far (e.g. after a restart) */
        acc = (double)c->x_since_zero / (double)c->n_since_zero;
        k = c->n_since_zero;
    }
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "chart", chart);
    cJSON_AddNumberToObject(e, "baseline_accuracy", dt->p0);
    cJSON_AddNumberToObject(e, "recent_accuracy", acc);
    cJSON_AddNumberToObject(e, "probes_since_change", (double)k);
    if (dt->change_on)
        cJSON_AddNumberToObject(e, "baseline_change_rate", dt->q0);
    cJSON_AddNumberToObject(e, "recent_change_rate", compared ? (double)flipped / compared : 0);
    cJSON_AddNumberToObject(e, "flipped", (double)flipped);
    cJSON_AddItemToObject(e, "flipped_ids", ids);
    cJSON_AddNumberToObject(e, "cusum", c->s);
    cJSON_AddNumberToObject(e, "h", c->h);
    cJSON_AddNumberToObject(e, "design_p1", c->p1);
    cJSON_AddNumberToObject(e, "baseline_probes", (double)dt->pool_n);
    char *s = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    *after_acc = acc;
    *k_out = k;
    *flipped_out = flipped;
    *compared_out = compared;
    return s;
}

int drift_detector_feed_ex(struct drift_detector *dt, const char *probe_id, int correct,
                           const char *answer, const char **kind, char **evidence,
                           char *summary, size_t summary_len, int *changed_out,
                           int *new_baseline, int *rebaselined)
{
    if (kind)
        *kind = NULL;
    if (evidence)
        *evidence = NULL;
    if (summary && summary_len)
        summary[0] = '\0';
    if (new_baseline)
        *new_baseline = 0;
    if (rebaselined)
        *rebaselined = 0;
    if (changed_out)
        *changed_out = -1;
    if (!probe_id || (correct != 0 && correct != 1))
        return 0;
    if (!answer)
        answer = "<none>";
    dt->total++;

    struct bl *b = bl_find(dt, probe_id);
    int changed = b ? strcmp(b->answer, answer) != 0 : -1;
    if (changed_out)
        *changed_out = changed;
    if (!b) {
        if (drift_detector_set_baseline(dt, probe_id, answer) == 0 && new_baseline)
            *new_baseline = 1;
    }

    if (dt->phase == PH_BASELINE) {
        dt->n_base++;
        dt->base_correct += correct;
        if (changed >= 0) {
            dt->n_rep++;
            dt->rep_changed += changed;
        }
        if (dt->n_base >= dt->prm.baseline_probes)
            start_watch(dt);
        return 0;
    }

    ring_push(dt, probe_id, correct, changed);
    int a_drop = dt->drop_on && drift_cusum_update(&dt->drop, correct);
    int a_rise = dt->rise_on && drift_cusum_update(&dt->rise, correct);
    int a_change = 0;
    /* Results older than both charts' change-point estimates (the last time
     * each S was 0) were in control: they join the pool and p0 is
     * re-estimated from more data. An estimate from only baseline_probes
     * results is noisy, and a CUSUM designed around a p0 that is too high
     * (or too low) drifts towards a false alarm by itself. */
    dt->watch_seq++;
    long excursion = dt->drop_on ? dt->drop.n_since_zero : 0;
    if (dt->rise_on && dt->rise.n_since_zero > excursion)
        excursion = dt->rise.n_since_zero;
    long boundary = dt->watch_seq - excursion;
    if (boundary > dt->acc_commit) {
        for (long q = dt->acc_commit; q < boundary; q++) {
            long back = dt->watch_seq - 1 - q;
            if (back < dt->ring_len) {
                dt->pool_n++;
                dt->pool_x += ring_back(dt, back)->correct == 1;
            }
        }
        dt->acc_commit = boundary;
        arm_accuracy_charts(dt);
    }
    if (changed >= 0) {
        if (dt->change_on) {
            a_change = drift_cusum_update(&dt->change, changed);
            dt->cpend_n++;
            dt->cpend_x += changed;
            if (dt->change.s == 0) {
                dt->cpool_n += dt->cpend_n;
                dt->cpool_x += dt->cpend_x;
                dt->cpend_n = dt->cpend_x = 0;
                arm_change_chart(dt);
            }
        } else {
            dt->n_cal++;
            dt->cal_changed += changed;
            if (dt->n_cal >= dt->prm.baseline_probes) {
                dt->cpool_n = dt->n_cal;
                dt->cpool_x = dt->cal_changed;
                arm_change_chart(dt);
            }
        }
    }
    if (!a_drop && !a_rise && !a_change)
        return 0;

    const struct drift_cusum *c = a_drop ? &dt->drop : a_rise ? &dt->rise : &dt->change;
    const char *chart = a_drop ? "drop" : a_rise ? "rise" : "answer_change";
    double after;
    long k, flipped, compared;
    char *ev = make_evidence(dt, chart, c, &after, &k, &flipped, &compared);
    if (kind)
        *kind = a_change && !a_drop && !a_rise ? "answer_change" : "accuracy";
    if (summary && summary_len) {
        char flips[160] = "";
        if (compared)
            snprintf(flips, sizeof flips, "; %ld of %ld repeated probes answer differently "
                     "from the baseline run", flipped, compared);
        if (a_drop || a_rise)
            snprintf(summary, summary_len,
                     "accuracy %s from %.1f%% (baseline of %ld probes) to %.1f%% over the "
                     "last %ld probes%s",
                     a_drop ? "fell" : "rose", 100 * dt->p0, dt->pool_n, 100 * after, k, flips);
        else
            snprintf(summary, summary_len,
                     "answers changed: %ld of the last %ld probes differ from the baseline "
                     "run (usual rate %.1f%%); accuracy %.1f%% vs %.1f%% at baseline",
                     flipped, k, 100 * dt->q0, 100 * after, 100 * dt->p0);
    }
    if (evidence)
        *evidence = ev;
    else
        free(ev);
    dt->alarms++;
    rebaseline(dt);
    if (rebaselined)
        *rebaselined = 1;
    return 1;
}

int drift_detector_feed(struct drift_detector *dt, const char *probe_id, int correct,
                        const char *answer, const char **kind, char **evidence,
                        char *summary, size_t summary_len)
{
    return drift_detector_feed_ex(dt, probe_id, correct, answer, kind, evidence, summary,
                                  summary_len, NULL, NULL, NULL);
}

static cJSON *chart_json(const struct drift_cusum *c, int on)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "armed", on);
    cJSON_AddNumberToObject(o, "p0", c->p0);
    cJSON_AddNumberToObject(o, "p1", c->p1);
    cJSON_AddNumberToObject(o, "s", c->s);
    cJSON_AddNumberToObject(o, "h", c->h);
    cJSON_AddNumberToObject(o, "n", (double)c->n);
    cJSON_AddNumberToObject(o, "n_since_zero", (double)c->n_since_zero);
    cJSON_AddNumberToObject(o, "x_since_zero", (double)c->x_since_zero);
    return o;
}

cJSON *drift_detector_to_json(const struct drift_detector *dt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", dt->phase == PH_BASELINE ? "baseline" : "watching");
    cJSON_AddNumberToObject(o, "n_base", (double)dt->n_base);
    cJSON_AddNumberToObject(o, "base_correct", (double)dt->base_correct);
    cJSON_AddNumberToObject(o, "n_rep", (double)dt->n_rep);
    cJSON_AddNumberToObject(o, "rep_changed", (double)dt->rep_changed);
    cJSON_AddNumberToObject(o, "n_cal", (double)dt->n_cal);
    cJSON_AddNumberToObject(o, "cal_changed", (double)dt->cal_changed);
    cJSON_AddNumberToObject(o, "pool_n", (double)dt->pool_n);
    cJSON_AddNumberToObject(o, "pool_x", (double)dt->pool_x);
    cJSON_AddNumberToObject(o, "cpool_n", (double)dt->cpool_n);
    cJSON_AddNumberToObject(o, "cpool_x", (double)dt->cpool_x);
    cJSON_AddNumberToObject(o, "cpend_n", (double)dt->cpend_n);
    cJSON_AddNumberToObject(o, "cpend_x", (double)dt->cpend_x);
    cJSON_AddNumberToObject(o, "baseline_accuracy", dt->p0);
    cJSON_AddNumberToObject(o, "baseline_change_rate", dt->q0);
    cJSON_AddNumberToObject(o, "total", (double)dt->total);
    cJSON_AddNumberToObject(o, "alarms", (double)dt->alarms);
    cJSON_AddNumberToObject(o, "baseline_answers", (double)dt->bl_count);
    cJSON_AddItemToObject(o, "drop", chart_json(&dt->drop, dt->drop_on));
    cJSON_AddItemToObject(o, "rise", chart_json(&dt->rise, dt->rise_on));
    cJSON_AddItemToObject(o, "answer_change", chart_json(&dt->change, dt->change_on));
    return o;
}

static double jnum(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void chart_load(struct drift_cusum *c, int *on, const cJSON *o, double h)
{
    *on = 0;
    if (!cJSON_IsObject(o) || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "armed")))
        return;
    if (drift_cusum_init(c, jnum(o, "p0", 0), jnum(o, "p1", 0), h) != 0)
        return;
    *on = 1;
    c->s = fmin(fmax(jnum(o, "s", 0), 0), h);  /* a saved S above h would re-alarm at once */
    c->n = (long)jnum(o, "n", 0);
    c->n_since_zero = (long)jnum(o, "n_since_zero", 0);
    c->x_since_zero = (long)jnum(o, "x_since_zero", 0);
}

int drift_detector_load_json(struct drift_detector *dt, const cJSON *st)
{
    if (!cJSON_IsObject(st))
        return -1;
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(st, "phase");
    dt->phase = cJSON_IsString(ph) && strcmp(ph->valuestring, "watching") == 0 ? PH_WATCH
                                                                                : PH_BASELINE;
    dt->n_base = (long)jnum(st, "n_base", 0);
    dt->base_correct = (long)jnum(st, "base_correct", 0);
    dt->n_rep = (long)jnum(st, "n_rep", 0);
    dt->rep_changed = (long)jnum(st, "rep_changed", 0);
    dt->n_cal = (long)jnum(st, "n_cal", 0);
    dt->cal_changed = (long)jnum(st, "cal_changed", 0);
    dt->pool_n = (long)jnum(st, "pool_n", 0);
    dt->pool_x = (long)jnum(st, "pool_x", 0);
    dt->cpool_n = (long)jnum(st, "cpool_n", 0);
    dt->cpool_x = (long)jnum(st, "cpool_x", 0);
    dt->cpend_n = (long)jnum(st, "cpend_n", 0);
    dt->cpend_x = (long)jnum(st, "cpend_x", 0);
    dt->p0 = jnum(st, "baseline_accuracy", 0);
    dt->q0 = jnum(st, "baseline_change_rate", 0);
    dt->total = (long)jnum(st, "total", 0);
    dt->alarms = (long)jnum(st, "alarms", 0);
    if (dt->phase == PH_WATCH) {
        chart_load(&dt->drop, &dt->drop_on, cJSON_GetObjectItemCaseSensitive(st, "drop"), dt->h);
        chart_load(&dt->rise, &dt->rise_on, cJSON_GetObjectItemCaseSensitive(st, "rise"), dt->h);
        chart_load(&dt->change, &dt->change_on,
                   cJSON_GetObjectItemCaseSensitive(st, "answer_change"), dt->h);
    }
    return 0;
}
