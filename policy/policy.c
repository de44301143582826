/*
 * policy.c - the route table: building it from a config, matching a
 * request to a route, and planning which targets to try.
 *
 * Matching is two flat lists built once: exact model names and globs,
 * each in config order. Exact names win over globs because a config that
 * says "gpt-4o-mini": local and "gpt-4o*": openai means the first for
 * gpt-4o-mini whatever the order of the routes; among globs the first
 * route in the file wins, as in a firewall. Configs hold tens of routes,
 * so a linear scan beats anything cleverer.
 *
 * Planning turns a route and the state of its targets (open circuits,
 * drift marks) into an ordered list of target indexes. The plan only
 * looks at breakers; taking a half-open trial slot happens when the
 * caller really starts an attempt (policy_breaker_allow), so a plan that
 * never reaches its third target does not starve that target's trials.
 */
#include "policy/policy_int.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void set_perr(struct policy_error *e, int status, const char *type,
                     const char *code, const char *fmt, ...) {
    if (!e) return;
    e->status = status;
    e->type = type;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

static int is_glob(const char *s) {
    return strchr(s, '*') != NULL || strchr(s, '?') != NULL;
}

/* ---- identities ------------------------------------------------------------ */

/* Fields joined by the ASCII unit separator, which no name contains in
 * practice and which keeps ("a","bc") apart from ("ab","c"). */
static char *make_ident(const struct cfg_target *t, int with_pins) {
    const char *kind = t->local ? "L" : "U";
    const char *who = t->local ? t->local : (t->upstream ? t->upstream : "");
    const char *model = t->model ? t->model : "";
    const char *pm = with_pins && t->pin_model ? t->pin_model : "";
    const char *pf = with_pins && t->pin_fingerprint ? t->pin_fingerprint : "";
    size_t n = strlen(kind) + strlen(who) + strlen(model) + strlen(pm) + strlen(pf) + 16;
    char *s = malloc(n);
    if (!s) return NULL;
    snprintf(s, n, "%s\x1f%s\x1f%s\x1f%s%s\x1f%s%s", kind, who, model,
             with_pins && t->pin_model ? "=" : "-", pm,
             with_pins && t->pin_fingerprint ? "=" : "-", pf);
    return s;
}

static char *make_name(const struct cfg_target *t) {
    const char *who = t->local ? t->local : (t->upstream ? t->upstream : "?");
    size_t n = strlen(who) + (t->model ? strlen(t->model) : 0) + 8;
    char *s = malloc(n);
    if (!s) return NULL;
    if (t->local)
        snprintf(s, n, "local:%s", who);
    else if (t->model)
        snprintf(s, n, "%s:%s", who, t->model);
    else
        snprintf(s, n, "%s", who);
    return s;
}

static int find_breaker(const struct policy *p, const char *ident) {
    for (size_t i = 0; i < p->n_breakers; i++)
        if (strcmp(p->breakers[i].ident, ident) == 0) return (int)i;
    return -1;
}

static int find_target(const struct policy *p, const char *ident) {
    for (size_t i = 0; i < p->n_targets; i++)
        if (strcmp(p->targets[i].ident, ident) == 0) return (int)i;
    return -1;
}

static int find_name(const struct policy *p, const char *name) {
    for (size_t i = 0; i < p->n_targets; i++)
        if (strcmp(p->targets[i].name, name) == 0) return (int)i;
    return -1;
}

/* Target id for t, adding the target (and its breaker) if new. -1 on OOM. */
static int intern_target(struct policy *p, const struct cfg_target *t) {
    char *tid = make_ident(t, 1);
    char *bid = make_ident(t, 0);
    int ret = -1;
    if (!tid || !bid) goto out;
    int i = find_target(p, tid);
    if (i >= 0) { ret = i; goto out; }

    int b = find_breaker(p, bid);
    if (b < 0) {
        struct pol_breaker *nb = realloc(p->breakers, (p->n_breakers + 1) * sizeof *nb);
        if (!nb) goto out;
        p->breakers = nb;
        struct pol_breaker *br = &p->breakers[p->n_breakers];
        if (pol_breaker_init(br, &p->cfg->breaker) < 0) goto out;
        br->ident = bid;
        bid = NULL;
        br->remote = t->local == NULL;
        b = (int)p->n_breakers++;
    }

    struct pol_target *nt = realloc(p->targets, (p->n_targets + 1) * sizeof *nt);
    if (!nt) goto out;
    p->targets = nt;
    struct pol_target *pt = &p->targets[p->n_targets];
    memset(pt, 0, sizeof *pt);
    pt->name = make_name(t);
    if (!pt->name) goto out;
    /* Names label metrics, so they must be unique: a second target with
     * the same upstream and model (other pins) becomes "openai:gpt-4o#2". */
    for (int n = 2; find_name(p, pt->name) >= 0; n++) {
        char *base = make_name(t);
        size_t len = base ? strlen(base) + 16 : 0;
        char *nn = base ? malloc(len) : NULL;
        if (nn) snprintf(nn, len, "%s#%d", base, n);
        free(base);
        free(pt->name);
        pt->name = nn;
        if (!nn) goto out;
    }
    pt->ident = tid;
    tid = NULL;
    pt->upstream = t->upstream;
    pt->local = t->local;
    pt->model = t->model;
    pt->pin_model = t->pin_model;
    pt->pin_fingerprint = t->pin_fingerprint;
    pt->breaker = b;
    pt->drifted_since_ms = -1;
    pt->last_probe_ms = -1;
    ret = (int)p->n_targets++;
out:
    free(tid);
    free(bid);
    return ret;
}

/* ---- building ------------------------------------------------------------ */

static int add_match(struct pol_match **list, size_t *n, const char *pattern, int route) {
    struct pol_match *nl = realloc(*list, (*n + 1) * sizeof *nl);
    if (!nl) return -1;
    *list = nl;
    nl[*n].pattern = pattern;
    nl[*n].route = route;
    (*n)++;
    return 0;
}

struct policy *policy_new(const struct cfg *c, char *err, size_t errlen) {
    return policy_new_from(c, NULL, err, errlen);
}

struct policy *policy_new_from(const struct cfg *c, const struct policy *old,
                               char *err, size_t errlen) {
    if (!c) {
        set_err(err, errlen, "policy: no configuration");
        return NULL;
    }
    struct policy *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->cfg = c;
    if (c->n_routes) {
        p->routes = calloc(c->n_routes, sizeof *p->routes);
        if (!p->routes) goto oom;
    }
    p->n_routes = c->n_routes;

    for (size_t i = 0; i < c->n_routes; i++) {
        const struct cfg_route *cr = &c->routes[i];
        struct policy_route *r = &p->routes[i];
        const char *rname = cr->name ? cr->name : "";
        r->cfg = cr;
        r->index = i;
        if (cr->n_targets == 0) {
            set_err(err, errlen, "%s: routes[%zu] \"%s\": no targets",
                    c->path ? c->path : "config", i, rname);
            goto fail;
        }
        if (cr->n_targets > POLICY_MAX_TARGETS) {
            set_err(err, errlen, "%s: routes[%zu] \"%s\": %zu targets, at most %d are supported",
                    c->path ? c->path : "config", i, rname, cr->n_targets, POLICY_MAX_TARGETS);
            goto fail;
        }
        for (size_t t = 0; t < cr->n_targets; t++) {
            const struct cfg_target *ct = &cr->targets[t];
            if (!ct->upstream == !ct->local) {
                set_err(err, errlen, "%s: routes[%zu].targets[%zu]: exactly one of upstream and local must be set",
                        c->path ? c->path : "config", i, t);
                goto fail;
            }
            int id = intern_target(p, ct);
            if (id < 0) goto oom;
            r->target_ids[t] = id;
        }
        for (size_t m = 0; m < cr->n_match; m++) {
            const char *pat = cr->match[m];
            if (!pat) continue;
            if (add_match(is_glob(pat) ? &p->globs : &p->exact,
                          is_glob(pat) ? &p->n_globs : &p->n_exact, pat, (int)i) < 0)
                goto oom;
        }
    }
    if (pol_rl_build(p, err, errlen) < 0) goto fail;

    if (old) {
        for (size_t i = 0; i < p->n_breakers; i++) {
            int o = find_breaker(old, p->breakers[i].ident);
            if (o >= 0) pol_breaker_carry(&p->breakers[i], &old->breakers[o]);
        }
        for (size_t i = 0; i < p->n_targets; i++) {
            int o = find_target(old, p->targets[i].ident);
            if (o < 0) continue;
            struct pol_target *t = &p->targets[i];
            const struct pol_target *ot = &old->targets[o];
            t->drifted = ot->drifted;
            t->drifted_since_ms = ot->drifted_since_ms;
            t->last_probe_ms = ot->last_probe_ms;
            memcpy(t->drift_reason, ot->drift_reason, sizeof t->drift_reason);
        }
        pol_rl_carry(p, old);
    }
    return p;

oom:
    set_err(err, errlen, "policy: out of memory");
fail:
    policy_free(p);
    return NULL;
}

void policy_free(struct policy *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_breakers; i++) pol_breaker_free(&p->breakers[i]);
    for (size_t i = 0; i < p->n_targets; i++) {
        free(p->targets[i].ident);
        free(p->targets[i].name);
    }
    free(p->breakers);
    free(p->targets);
    free(p->routes);
    free(p->exact);
    free(p->globs);
    free(p->rl);
    free(p);
}

/* ---- matching ------------------------------------------------------------ */

int policy_route_allows_key(const struct policy_route *r, const char *key_name) {
    if (!r) return 0;
    if (!r->cfg->keys) return 1;
    if (!key_name) return 0;
    for (size_t i = 0; i < r->cfg->n_keys; i++)
        if (r->cfg->keys[i] && strcmp(r->cfg->keys[i], key_name) == 0) return 1;
    return 0;
}

const struct policy_route *policy_route_by_name(struct policy *p, const char *name) {
    if (!p || !name) return NULL;
    for (size_t i = 0; i < p->n_routes; i++)
        if (p->routes[i].cfg->name && strcmp(p->routes[i].cfg->name, name) == 0)
            return &p->routes[i];
    return NULL;
}

const struct policy_route *policy_match(struct policy *p, const char *model,
                                        const char *key_name,
                                        const char *route_override,
                                        int override_allowed,
                                        struct policy_error *e) {
    if (!model) model = "";
    if (route_override && route_override[0]) {
        if (!override_allowed) {
            set_perr(e, 403, "permission_error", "route_override_forbidden",
                     "This API key may not choose a route with the X-Llmpin-Route header.");
            return NULL;
        }
        const struct policy_route *r = policy_route_by_name(p, route_override);
        if (!r) {
            set_perr(e, 404, "invalid_request_error", "route_not_found",
                     "No route named '%.128s' (X-Llmpin-Route).", route_override);
            return NULL;
        }
        if (!policy_route_allows_key(r, key_name)) {
            set_perr(e, 403, "permission_error", "route_forbidden",
                     "This API key may not use route '%.128s'.", route_override);
            return NULL;
        }
        return r;
    }
    for (size_t i = 0; i < p->n_exact; i++) {
        const struct policy_route *r = &p->routes[p->exact[i].route];
        if (strcmp(p->exact[i].pattern, model) == 0 && policy_route_allows_key(r, key_name))
            return r;
    }
    for (size_t i = 0; i < p->n_globs; i++) {
        const struct policy_route *r = &p->routes[p->globs[i].route];
        if (cfg_glob_match(p->globs[i].pattern, model) && policy_route_allows_key(r, key_name))
            return r;
    }
    set_perr(e, 404, "invalid_request_error", "model_not_found",
             "The model `%.200s` does not exist or you do not have access to it.", model);
    return NULL;
}

cJSON *policy_list_models(const struct policy *p, const char *key_name, int64_t created) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (size_t i = 0; i < p->n_exact; i++) {
        const struct policy_route *r = &p->routes[p->exact[i].route];
        if (!policy_route_allows_key(r, key_name)) continue;
        const char *id = p->exact[i].pattern;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            if (strcmp(p->exact[j].pattern, id) == 0 &&
                policy_route_allows_key(&p->routes[p->exact[j].route], key_name))
                dup = 1;
        if (dup) continue;
        const struct cfg_target *t0 = &r->cfg->targets[0];
        const char *owner = t0->local ? "llmpin-local" : t0->upstream;
        cJSON *m = cJSON_CreateObject();
        if (!m) goto oom;
        cJSON_AddItemToArray(arr, m);
        if (!cJSON_AddStringToObject(m, "id", id) ||
            !cJSON_AddStringToObject(m, "object", "model") ||
            !cJSON_AddNumberToObject(m, "created", (double)created) ||
            !cJSON_AddStringToObject(m, "owned_by", owner ? owner : "llmpin"))
            goto oom;
    }
    return arr;
oom:
    cJSON_Delete(arr);
    return NULL;
}

/* ---- planning ------------------------------------------------------------ */

int policy_target_id(const struct policy_route *r, int index) {
    if (!r || index < 0 || (size_t)index >= r->cfg->n_targets) return -1;
    return r->target_ids[index];
}

static int drift_falls_back(const struct cfg_route *cr) {
    return cr->on_drift == CFG_DRIFT_FALLBACK && (cr->fallback_on & CFG_FB_DRIFT);
}

static void skip(struct policy_plan *out, int index, const char *reason) {
    out->skipped[out->n_skipped].index = index;
    out->skipped[out->n_skipped].reason = reason;
    out->n_skipped++;
}

/* 64-bit FNV-1a followed by the splitmix64 finaliser, so that short key
 * names still spread over all 64 bits. */
static uint64_t hash_name(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* Weighted draw; targets with weight <= 0 are never drawn. If every
 * weight is 0 the first target is used. */
static int draw_weighted(const struct cfg_route *cr, uint64_t x) {
    double total = 0;
    for (size_t i = 0; i < cr->n_targets; i++)
        if (cr->targets[i].weight > 0) total += cr->targets[i].weight;
    if (!(total > 0)) return 0;
    double u = pol_unit(x) * total;
    int last = 0;
    for (size_t i = 0; i < cr->n_targets; i++) {
        double w = cr->targets[i].weight;
        if (!(w > 0)) continue;
        last = (int)i;
        if (u < w) return (int)i;
        u -= w;
    }
    return last; /* rounding at the top end */
}

/* Filter a candidate order through breakers and drift marks. */
static void filter_chain(struct policy *p, const struct policy_route *r,
                         const int *order, int n, int64_t now_ms,
                         struct policy_plan *out) {
    const struct cfg_route *cr = r->cfg;
    for (int k = 0; k < n; k++) {
        int idx = order[k];
        int tid = r->target_ids[idx];
        struct pol_target *t = &p->targets[tid];
        if (!pol_breaker_would_allow(p, &p->breakers[t->breaker], now_ms)) {
            skip(out, idx, "circuit_open");
            /* without the bit an open circuit does not move this route on:
             * the chain ends here */
            if (!(cr->fallback_on & CFG_FB_CIRCUIT_OPEN)) return;
            continue;
        }
        if (t->drifted && drift_falls_back(cr)) {
            if (out->probe < 0 && policy_drift_probe_due(p, tid, now_ms)) {
                out->probe = idx;
            } else {
                skip(out, idx, "drift");
                continue;
            }
        }
        out->index[out->n++] = idx;
    }
}

int policy_plan(struct policy *p, const struct policy_route *r,
                const char *key_name, uint64_t rnd, int64_t now_ms,
                struct policy_plan *out) {
    memset(out, 0, sizeof *out);
    out->shadow = -1;
    out->probe = -1;
    const struct cfg_route *cr = r->cfg;
    int order[POLICY_MAX_TARGETS];
    int n = 0;

    switch (cr->mode) {
    case CFG_MODE_REMOTE:
    case CFG_MODE_LOCAL:
    case CFG_MODE_SHADOW: {
        int tid = r->target_ids[0];
        if (pol_breaker_would_allow(p, &p->breakers[p->targets[tid].breaker], now_ms))
            out->index[out->n++] = 0;
        else
            skip(out, 0, "circuit_open");
        if (cr->mode == CFG_MODE_SHADOW && out->n == 1 && cr->n_targets > 1 &&
            pol_unit(rnd) < cr->shadow_sample) {
            int sid = r->target_ids[1];
            if (pol_breaker_would_allow(p, &p->breakers[p->targets[sid].breaker], now_ms) &&
                policy_shadow_begin(p, r) == 0)
                out->shadow = 1;
        }
        break;
    }
    case CFG_MODE_FALLBACK:
        for (size_t i = 0; i < cr->n_targets; i++) order[n++] = (int)i;
        filter_chain(p, r, order, n, now_ms, out);
        break;
    case CFG_MODE_SPLIT: {
        uint64_t x = (cr->sticky && key_name) ? hash_name(key_name) : rnd;
        int chosen = draw_weighted(cr, x);
        order[n++] = chosen;
        if (cr->fallback_on)
            for (size_t i = 0; i < cr->n_targets; i++)
                if ((int)i != chosen) order[n++] = (int)i;
        filter_chain(p, r, order, n, now_ms, out);
        break;
    }
    }

    if (out->n == 0) {
        set_perr(&out->error, 503, "server_error", "no_target_available",
                 "No target of route '%.100s' is available (%s).",
                 cr->name ? cr->name : "",
                 out->n_skipped && strcmp(out->skipped[out->n_skipped - 1].reason, "drift") == 0
                     ? "version pin mismatch" : "circuit open");
        return -1;
    }
    return 0;
}

int policy_shadow_begin(struct policy *p, const struct policy_route *r) {
    struct policy_route *mr = &p->routes[r->index];
    if (mr->shadow_inflight >= r->cfg->shadow_max_inflight) return -1;
    mr->shadow_inflight++;
    return 0;
}

void policy_shadow_end(struct policy *p, const struct policy_route *r) {
    struct policy_route *mr = &p->routes[r->index];
    if (mr->shadow_inflight > 0) mr->shadow_inflight--;
}

/* ---- fallback ------------------------------------------------------------ */

int policy_should_fallback(const struct policy_route *r, enum policy_outcome o) {
    const struct cfg_route *cr = r->cfg;
    if (cr->mode != CFG_MODE_FALLBACK && cr->mode != CFG_MODE_SPLIT) return 0;
    switch (o) {
    case POL_CONNECT: return (cr->fallback_on & CFG_FB_CONNECT) != 0;
    case POL_TIMEOUT: return (cr->fallback_on & CFG_FB_TIMEOUT) != 0;
    case POL_429: return (cr->fallback_on & CFG_FB_429) != 0;
    case POL_5XX: return (cr->fallback_on & CFG_FB_5XX) != 0;
    case POL_CIRCUIT_OPEN: return (cr->fallback_on & CFG_FB_CIRCUIT_OPEN) != 0;
    case POL_DRIFT: return drift_falls_back(cr);
    case POL_OK:
    case POL_4XX:
    case POL_CANCELLED:
        return 0;
    }
    return 0;
}
