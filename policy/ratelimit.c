/*
 * ratelimit.c - per client key token buckets for requests and tokens per
 * minute, reported the way OpenAI reports them (x-ratelimit-* headers).
 *
 * A bucket holds one minute's worth and refills continuously. To keep
 * the arithmetic exact in integers, levels are counted in 1/60000 of a
 * request (or token): a bucket with limit L then refills by exactly L
 * units per millisecond and holds L * 60000 units when full.
 *
 * Tokens are only known after the response, so a request takes an
 * estimate up front and policy_ratelimit_commit_tokens() corrects it;
 * the correction may push the bucket below zero (debt), which then holds
 * back the next requests of that key until it refills.
 */
#include "policy/policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNIT 60000LL             /* units per request or token */
#define MAX_REFILL_MS 1000000000LL /* clamp of the refill interval, against overflow */

static int cmp_rl(const void *a, const void *b) {
    return strcmp(((const struct pol_rl *)a)->key_name, ((const struct pol_rl *)b)->key_name);
}

int pol_rl_build(struct policy *p, char *err, size_t errlen) {
    const struct cfg *c = p->cfg;
    size_t n = 0;
    for (size_t i = 0; i < c->n_keys; i++)
        if (c->keys[i].name && (c->keys[i].rpm > 0 || c->keys[i].tpm > 0)) n++;
    if (n == 0) return 0;
    p->rl = calloc(n, sizeof *p->rl);
    if (!p->rl) {
        snprintf(err, errlen, "policy: out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->n_keys; i++) {
        const struct cfg_client_key *k = &c->keys[i];
        if (!k->name || (k->rpm <= 0 && k->tpm <= 0)) continue;
        struct pol_rl *b = &p->rl[p->n_rl++];
        b->key_name = k->name;
        b->rpm = k->rpm > 0 ? k->rpm : 0;
        b->tpm = k->tpm > 0 ? k->tpm : 0;
    }
    qsort(p->rl, p->n_rl, sizeof *p->rl, cmp_rl);
    return 0;
}

static struct pol_rl *find_rl(const struct policy *p, const char *key_name) {
    if (!key_name || p->n_rl == 0) return NULL;
    struct pol_rl k = {.key_name = key_name};
    return bsearch(&k, p->rl, p->n_rl, sizeof *p->rl, cmp_rl);
}

static void refill(struct pol_rl *b, int64_t now_ms) {
    if (!b->init) {
        b->init = 1;
        b->req_level = b->rpm * UNIT;
        b->tok_level = b->tpm * UNIT;
        b->last_ms = now_ms;
        return;
    }
    if (now_ms <= b->last_ms) return;
    int64_t dt = now_ms - b->last_ms;
    if (dt > MAX_REFILL_MS) dt = MAX_REFILL_MS;
    b->req_level += dt * b->rpm;
    if (b->req_level > b->rpm * UNIT) b->req_level = b->rpm * UNIT;
    b->tok_level += dt * b->tpm;
    if (b->tok_level > b->tpm * UNIT) b->tok_level = b->tpm * UNIT;
    b->last_ms = now_ms;
}

static int64_t ceil_div(int64_t a, int64_t b) {
    return a <= 0 ? 0 : (a + b - 1) / b;
}

void pol_rl_carry(struct policy *p, const struct policy *old) {
    for (size_t i = 0; i < p->n_rl; i++) {
        struct pol_rl *b = &p->rl[i];
        const struct pol_rl *o = find_rl(old, b->key_name);
        if (!o || !o->init) continue;
        b->init = 1;
        b->last_ms = o->last_ms;
        b->req_level = o->rpm > 0 ? o->req_level : b->rpm * UNIT;
        if (b->req_level > b->rpm * UNIT) b->req_level = b->rpm * UNIT;
        b->tok_level = o->tpm > 0 ? o->tok_level : b->tpm * UNIT;
        if (b->tok_level > b->tpm * UNIT) b->tok_level = b->tpm * UNIT;
    }
}

static void fill_info(const struct pol_rl *b, struct policy_rl_info *info) {
    info->limit_requests = b->rpm;
    info->remaining_requests = b->rpm && b->req_level > 0 ? (int)(b->req_level / UNIT) : 0;
    info->reset_requests_ms = b->rpm ? ceil_div(b->rpm * UNIT - b->req_level, b->rpm) : 0;
    info->limit_tokens = b->tpm;
    info->remaining_tokens = b->tpm && b->tok_level > 0 ? (int)(b->tok_level / UNIT) : 0;
    info->reset_tokens_ms = b->tpm ? ceil_div(b->tpm * UNIT - b->tok_level, b->tpm) : 0;
}

int policy_ratelimit_take(struct policy *p, const char *key_name, int64_t now_ms,
                          int est_tokens, struct policy_rl_info *info) {
    struct policy_rl_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    struct pol_rl *b = find_rl(p, key_name);
    if (!b) return 0;
    refill(b, now_ms);

    int64_t est = est_tokens > 0 ? est_tokens : 0;
    if (est > b->tpm) est = b->tpm;
    int64_t need_tok = est * UNIT;
    int64_t wait = 0;
    if (b->rpm && b->req_level < UNIT) wait = ceil_div(UNIT - b->req_level, b->rpm);
    if (b->tpm && b->tok_level < need_tok) {
        int64_t w = ceil_div(need_tok - b->tok_level, b->tpm);
        if (w > wait) wait = w;
    }
    if (b->tpm && b->tok_level < 0 && need_tok == 0) {
        int64_t w = ceil_div(-b->tok_level, b->tpm);
        if (w > wait) wait = w;
    }
    if (wait > 0) {
        fill_info(b, info);
        info->retry_after_ms = wait;
        return 1;
    }
    if (b->rpm) b->req_level -= UNIT;
    if (b->tpm) b->tok_level -= need_tok;
    fill_info(b, info);
    return 0;
}

void policy_ratelimit_commit_tokens(struct policy *p, const char *key_name, int est_tokens,
                                    int actual_tokens, int64_t now_ms) {
    struct pol_rl *b = find_rl(p, key_name);
    if (!b || !b->tpm) return;
    refill(b, now_ms);
    int64_t est = est_tokens > 0 ? est_tokens : 0;
    if (est > b->tpm) est = b->tpm;  /* what take() really took */
    int64_t actual = actual_tokens > 0 ? actual_tokens : 0;
    b->tok_level -= (actual - est) * UNIT;
    if (b->tok_level > b->tpm * UNIT) b->tok_level = b->tpm * UNIT;
    /* bound the debt to one day's refill so a bogus count cannot lock a key out for good */
    if (b->tok_level < -(int64_t)b->tpm * UNIT * 1440) b->tok_level = -(int64_t)b->tpm * UNIT * 1440;
}

char *policy_format_duration(int64_t ms, char *buf, size_t buflen) {
    if (!buf || buflen == 0) return buf;
    if (ms < 0) ms = 0;
    if (ms < 1000) {
        if (ms == 0)
            snprintf(buf, buflen, "0s");
        else
            snprintf(buf, buflen, "%lldms", (long long)ms);
        return buf;
    }
    int64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, frac = ms % 1000;
    char sec[32];
    if (frac == 0)
        snprintf(sec, sizeof sec, "%llds", (long long)s);
    else {
        /* trailing zeros of the millisecond part dropped: 1.5s, 1.25s, 1.125s */
        char f[8];
        snprintf(f, sizeof f, "%03lld", (long long)frac);
        for (int i = 2; i > 0 && f[i] == '0'; i--) f[i] = '\0';
        snprintf(sec, sizeof sec, "%lld.%ss", (long long)s, f);
    }
    if (h)
        snprintf(buf, buflen, "%lldh%lldm%s", (long long)h, (long long)m, sec);
    else if (m)
        snprintf(buf, buflen, "%lldm%s", (long long)m, sec);
    else
        snprintf(buf, buflen, "%s", sec);
    return buf;
}
