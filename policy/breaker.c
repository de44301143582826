/*
 * breaker.c - circuit breakers, version pins and drift marks per target.
 *
 * A breaker protects clients from waiting on an upstream that is down:
 * after enough failures it opens and requests fail over (or fail fast)
 * without touching the upstream; after a cooldown a few trial requests
 * go through and decide whether it closes again.
 *
 *   closed --N failures in a row, or error share >= rate over the window--> open
 *   open   --cooldown_ms passed (seen by allow)-----------------------------> half_open
 *   half_open --a success--> closed          half_open --a failure--> open
 *
 * The sliding window is a ring of `nb` slices of width_ms each, covering
 * window_s seconds: one-second slices up to two minutes, wider slices
 * beyond, so memory stays small and the window moves in steps of one
 * slice. A slice is reused when its epoch is stale, so nothing has to be
 * swept on a timer.
 *
 * Pins compare what an upstream says it served ("model",
 * "system_fingerprint") with what the config expects. A mismatch marks
 * the target drifted; what that does is the route's business (on_drift).
 */
#include "policy/policy_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLICES 120

int pol_breaker_init(struct pol_breaker *b, const struct cfg_breaker *bc) {
    memset(b, 0, sizeof *b);
    int64_t window_ms = (int64_t)(bc->window_s > 0 ? bc->window_s : 1) * 1000;
    b->nb = bc->window_s > MAX_SLICES ? MAX_SLICES : (bc->window_s > 0 ? bc->window_s : 1);
    b->width_ms = window_ms / b->nb;
    b->buckets = calloc((size_t)b->nb, sizeof *b->buckets);
    if (!b->buckets) return -1;
    for (int i = 0; i < b->nb; i++) b->buckets[i].epoch = INT64_MIN;
    b->state = POL_CLOSED;
    b->opened_at_ms = -1;
    return 0;
}

void pol_breaker_free(struct pol_breaker *b) {
    free(b->ident);
    free(b->buckets);
}

/* Carry state over a reload. The window survives only if its geometry is
 * unchanged; trial slots belong to requests of the old policy, whose
 * reports will never reach this one, so they are released. */
void pol_breaker_carry(struct pol_breaker *to, const struct pol_breaker *from) {
    to->state = from->state;
    to->consecutive = from->consecutive;
    to->opened_at_ms = from->opened_at_ms;
    to->trials = 0;
    to->last_trial_ms = 0;
    to->requests = from->requests;
    to->failures = from->failures;
    to->times_opened = from->times_opened;
    if (to->nb == from->nb && to->width_ms == from->width_ms)
        memcpy(to->buckets, from->buckets, (size_t)to->nb * sizeof *to->buckets);
}

static void window_clear(struct pol_breaker *b) {
    for (int i = 0; i < b->nb; i++) {
        b->buckets[i].epoch = INT64_MIN;
        b->buckets[i].requests = b->buckets[i].errors = 0;
    }
}

static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static void window_add(struct pol_breaker *b, int failed, int64_t now_ms) {
    int64_t ep = floordiv(now_ms, b->width_ms);
    int64_t slot = ep % b->nb;
    if (slot < 0) slot += b->nb;
    struct pol_bucket *k = &b->buckets[slot];
    if (k->epoch != ep) {
        k->epoch = ep;
        k->requests = k->errors = 0;
    }
    k->requests++;
    if (failed) k->errors++;
}

static void window_sum(const struct pol_breaker *b, int64_t now_ms,
                       uint64_t *req, uint64_t *err) {
    int64_t ep = floordiv(now_ms, b->width_ms);
    *req = *err = 0;
    for (int i = 0; i < b->nb; i++) {
        const struct pol_bucket *k = &b->buckets[i];
        if (k->epoch == INT64_MIN || k->epoch > ep || k->epoch <= ep - b->nb) continue;
        *req += k->requests;
        *err += k->errors;
    }
}

static void trip(struct pol_breaker *b, int64_t now_ms) {
    b->state = POL_OPEN;
    b->opened_at_ms = now_ms;
    b->trials = 0;
    b->times_opened++;
}

static int64_t trial_timeout_ms(const struct policy *p) {
    int t = p->cfg->server.request_timeout_ms;
    return t > 0 ? t : 600000;
}

static int half_open_slots(const struct policy *p) {
    int n = p->cfg->breaker.half_open_requests;
    return n > 0 ? n : 1;
}

/* The state allow() would act on: an open breaker past its cooldown is
 * half-open with no trials yet. */
static enum policy_breaker_state effective_state(const struct policy *p,
                                                 const struct pol_breaker *b,
                                                 int64_t now_ms) {
    if (b->state == POL_OPEN && now_ms - b->opened_at_ms >= p->cfg->breaker.cooldown_ms)
        return POL_HALF_OPEN;
    return b->state;
}

static int trials_in_use(const struct policy *p, const struct pol_breaker *b, int64_t now_ms) {
    if (b->state != POL_HALF_OPEN) return 0;
    if (b->trials > 0 && now_ms - b->last_trial_ms > trial_timeout_ms(p)) return 0;
    return b->trials;
}

int pol_breaker_would_allow(const struct policy *p, const struct pol_breaker *b,
                            int64_t now_ms) {
    if (!b->remote) return 1;
    switch (effective_state(p, b, now_ms)) {
    case POL_CLOSED: return 1;
    case POL_OPEN: return 0;
    case POL_HALF_OPEN: return trials_in_use(p, b, now_ms) < half_open_slots(p);
    }
    return 0;
}

static struct pol_breaker *breaker_of(const struct policy *p, int target_id) {
    if (!p || target_id < 0 || (size_t)target_id >= p->n_targets) return NULL;
    return &p->breakers[p->targets[target_id].breaker];
}

int policy_breaker_allow(struct policy *p, int target_id, int64_t now_ms) {
    struct pol_breaker *b = breaker_of(p, target_id);
    if (!b) return 0;
    if (!b->remote) return 1;
    if (b->state == POL_OPEN && effective_state(p, b, now_ms) == POL_HALF_OPEN) {
        b->state = POL_HALF_OPEN;
        b->trials = 0;
    }
    switch (b->state) {
    case POL_CLOSED: return 1;
    case POL_OPEN: return 0;
    case POL_HALF_OPEN:
        b->trials = trials_in_use(p, b, now_ms);
        if (b->trials >= half_open_slots(p)) return 0;
        b->trials++;
        b->last_trial_ms = now_ms;
        return 1;
    }
    return 0;
}

static int is_failure(enum policy_outcome o) {
    return o == POL_CONNECT || o == POL_TIMEOUT || o == POL_429 || o == POL_5XX;
}

void policy_breaker_report(struct policy *p, int target_id, enum policy_outcome o,
                           int64_t now_ms) {
    struct pol_breaker *b = breaker_of(p, target_id);
    if (!b) return;
    /* A refused attempt held no slot: nothing to give back. */
    if (o == POL_CIRCUIT_OPEN) return;
    if (o == POL_CANCELLED) {
        if (b->state == POL_HALF_OPEN && b->trials > 0) b->trials--;
        return;
    }
    int failed = is_failure(o);
    b->requests++;
    if (failed) b->failures++;
    window_add(b, failed, now_ms);
    if (!b->remote) return;

    const struct cfg_breaker *bc = &p->cfg->breaker;
    switch (b->state) {
    case POL_CLOSED: {
        if (!failed) {
            b->consecutive = 0;
            return;
        }
        b->consecutive++;
        if (bc->consecutive_failures > 0 && b->consecutive >= bc->consecutive_failures) {
            trip(b, now_ms);
            return;
        }
        if (bc->error_rate > 0) {
            uint64_t req, err;
            window_sum(b, now_ms, &req, &err);
            uint64_t min = bc->min_requests > 0 ? (uint64_t)bc->min_requests : 1;
            if (req >= min && (double)err >= bc->error_rate * (double)req) trip(b, now_ms);
        }
        return;
    }
    case POL_OPEN:
        /* A late report from a request started before the breaker opened:
         * counted in the window, no transition. */
        if (failed) b->consecutive++;
        return;
    case POL_HALF_OPEN:
        if (b->trials > 0) b->trials--;
        if (failed) {
            b->consecutive++;
            trip(b, now_ms);
        } else {
            b->state = POL_CLOSED;
            b->consecutive = 0;
            b->trials = 0;
            window_clear(b);
        }
        return;
    }
}

enum policy_breaker_state policy_breaker_state(const struct policy *p, int target_id,
                                               int64_t now_ms) {
    const struct pol_breaker *b = breaker_of(p, target_id);
    if (!b || !b->remote) return POL_CLOSED;
    return effective_state(p, b, now_ms);
}

const char *policy_breaker_state_name(enum policy_breaker_state s) {
    switch (s) {
    case POL_CLOSED: return "closed";
    case POL_OPEN: return "open";
    case POL_HALF_OPEN: return "half_open";
    }
    return "unknown";
}

/* ---- targets ------------------------------------------------------------ */

int policy_n_targets(const struct policy *p) {
    return p ? (int)p->n_targets : 0;
}

const char *policy_target_name(const struct policy *p, int target_id) {
    if (!p || target_id < 0 || (size_t)target_id >= p->n_targets) return NULL;
    return p->targets[target_id].name;
}

/* ---- pins and drift -------------------------------------------------------- */

static struct pol_target *target_of(const struct policy *p, int target_id) {
    if (!p || target_id < 0 || (size_t)target_id >= p->n_targets) return NULL;
    return &p->targets[target_id];
}

void policy_set_drifted(struct policy *p, int target_id, int drifted, int64_t now_ms) {
    struct pol_target *t = target_of(p, target_id);
    if (!t) return;
    if (drifted && !t->drifted) {
        t->drifted = 1;
        t->drifted_since_ms = now_ms;
        t->last_probe_ms = now_ms;
    } else if (!drifted) {
        t->drifted = 0;
        t->drifted_since_ms = -1;
        t->last_probe_ms = -1;
        t->drift_reason[0] = '\0';
    }
}

int policy_is_drifted(const struct policy *p, int target_id) {
    const struct pol_target *t = target_of(p, target_id);
    return t ? t->drifted : 0;
}

int policy_drift_probe_due(struct policy *p, int target_id, int64_t now_ms) {
    struct pol_target *t = target_of(p, target_id);
    if (!t || !t->drifted) return 0;
    if (now_ms - t->last_probe_ms < POLICY_DRIFT_PROBE_INTERVAL_MS) return 0;
    t->last_probe_ms = now_ms;
    return 1;
}

int policy_pin_check(struct policy *p, int target_id, const char *served_model,
                     const char *fingerprint, int64_t now_ms, char *why, size_t whylen) {
    struct pol_target *t = target_of(p, target_id);
    if (!t) return -1;
    char reason[sizeof t->drift_reason];
    reason[0] = '\0';
    if (t->pin_model) {
        if (!served_model || !served_model[0])
            snprintf(reason, sizeof reason, "model missing in the response, pinned \"%.60s\"",
                     t->pin_model);
        else if (!cfg_glob_match(t->pin_model, served_model))
            snprintf(reason, sizeof reason, "model \"%.60s\" does not match pin \"%.60s\"",
                     served_model, t->pin_model);
    }
    if (!reason[0] && t->pin_fingerprint) {
        if (!fingerprint || !fingerprint[0])
            snprintf(reason, sizeof reason,
                     "system_fingerprint missing in the response, pinned \"%.60s\"",
                     t->pin_fingerprint);
        else if (!cfg_glob_match(t->pin_fingerprint, fingerprint))
            snprintf(reason, sizeof reason,
                     "system_fingerprint \"%.60s\" does not match pin \"%.60s\"",
                     fingerprint, t->pin_fingerprint);
    }
    if (!reason[0]) {
        if (t->drifted) policy_set_drifted(p, target_id, 0, now_ms);
        if (why && whylen) why[0] = '\0';
        return 0;
    }
    policy_set_drifted(p, target_id, 1, now_ms);
    memcpy(t->drift_reason, reason, sizeof t->drift_reason);
    if (why && whylen) snprintf(why, whylen, "%s", reason);
    return 1;
}

/* ---- JSON view ------------------------------------------------------------ */

static int add_str_or_null(cJSON *o, const char *k, const char *v) {
    return (v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

static int add_ms_or_null(cJSON *o, const char *k, int64_t v) {
    return (v >= 0 ? cJSON_AddNumberToObject(o, k, (double)v) : cJSON_AddNullToObject(o, k)) != NULL;
}

cJSON *policy_targets_json(const struct policy *p, int64_t now_ms) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (size_t i = 0; i < p->n_targets; i++) {
        const struct pol_target *t = &p->targets[i];
        const struct pol_breaker *b = &p->breakers[t->breaker];
        cJSON *o = cJSON_CreateObject();
        if (!o) goto oom;
        cJSON_AddItemToArray(arr, o);
        uint64_t req, err;
        window_sum(b, now_ms, &req, &err);
        cJSON *routes = cJSON_AddArrayToObject(o, "routes");
        if (!routes) goto oom;
        for (size_t r = 0; r < p->n_routes; r++) {
            const struct policy_route *pr = &p->routes[r];
            for (size_t k = 0; k < pr->cfg->n_targets; k++) {
                if (pr->target_ids[k] != (int)i) continue;
                cJSON *s = cJSON_CreateString(pr->cfg->name ? pr->cfg->name : "");
                if (!s) goto oom;
                cJSON_AddItemToArray(routes, s);
                break;
            }
        }
        enum policy_breaker_state st = b->remote ? effective_state(p, b, now_ms) : POL_CLOSED;
        if (!cJSON_AddNumberToObject(o, "id", (double)i) ||
            !cJSON_AddStringToObject(o, "name", t->name) ||
            !add_str_or_null(o, "upstream", t->upstream) ||
            !add_str_or_null(o, "local", t->local) ||
            !add_str_or_null(o, "model", t->model) ||
            !cJSON_AddStringToObject(o, "state", policy_breaker_state_name(st)) ||
            !cJSON_AddNumberToObject(o, "consecutive_failures", b->consecutive) ||
            !cJSON_AddNumberToObject(o, "window_requests", (double)req) ||
            !cJSON_AddNumberToObject(o, "window_errors", (double)err) ||
            !add_ms_or_null(o, "opened_at_ms", b->opened_at_ms) ||
            !cJSON_AddNumberToObject(o, "times_opened", (double)b->times_opened) ||
            !cJSON_AddNumberToObject(o, "requests", (double)b->requests) ||
            !cJSON_AddNumberToObject(o, "failures", (double)b->failures) ||
            !cJSON_AddBoolToObject(o, "drifted", t->drifted) ||
            !add_ms_or_null(o, "drifted_since_ms", t->drifted ? t->drifted_since_ms : -1) ||
            !add_str_or_null(o, "drift_reason", t->drifted ? t->drift_reason : NULL) ||
            !add_str_or_null(o, "pin_model", t->pin_model) ||
            !add_str_or_null(o, "pin_fingerprint", t->pin_fingerprint))
            goto oom;
    }
    return arr;
oom:
    cJSON_Delete(arr);
    return NULL;
}
