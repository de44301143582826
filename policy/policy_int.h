/*
 * policy_int.h - the inside of struct policy, shared by the .c files of policy/
 * files and nothing else.
 *
 * A policy holds three kinds of state, each in a flat array:
 *   breakers  one per (upstream or local model, model name): the circuit
 *             breaker and its sliding error window.
 *   targets   one per target identity (breaker identity plus pins): drift
 *             mark and probe time. Target ids index this array.
 *   rl        one per client key with a limit, sorted by name: two token
 *             buckets.
 * Strings are borrowed from the struct cfg unless marked owned.
 */
#ifndef LLMPIN_POLICY_INT_H
#define LLMPIN_POLICY_INT_H

#include "policy/policy.h"

/* One slice of the sliding window. */
struct pol_bucket {
    int64_t epoch;                /* now_ms / width_ms when last written */
    uint32_t requests;
    uint32_t errors;
};

struct pol_breaker {
    char *ident;                  /* owned: identity string */
    int remote;                   /* local models have no breaker */
    enum policy_breaker_state state; /* stored state (open past cooldown stays OPEN here) */
    int consecutive;              /* failures in a row */
    int64_t opened_at_ms;         /* last transition to open, -1 never */
    int trials;                   /* half-open trial slots taken */
    int64_t last_trial_ms;        /* when the newest slot was taken */
    uint64_t requests, failures;  /* totals since start, for metrics */
    uint64_t times_opened;
    int nb;                       /* window slices */
    int64_t width_ms;             /* duration of one slice */
    struct pol_bucket *buckets;   /* owned, nb of them */
};

struct pol_target {
    char *ident;                  /* owned: identity string */
    char *name;                   /* owned: display name */
    const char *upstream, *local, *model, *pin_model, *pin_fingerprint;
    int breaker;                  /* index into breakers */
    int drifted;
    int64_t drifted_since_ms;
    int64_t last_probe_ms;
    char drift_reason[200];
};

struct pol_rl {
    const char *key_name;
    int rpm, tpm;
    int init;                     /* buckets filled on first use */
    /* Levels are in 1/60000 of a request/token, so a bucket refills by
     * exactly `rpm` (or `tpm`) units per millisecond. */
    int64_t req_level, tok_level;
    int64_t last_ms;
};

/* One entry of the match table. */
struct pol_match {
    const char *pattern;
    int route;
};

struct policy {
    const struct cfg *cfg;
    struct policy_route *routes;  /* owned, cfg->n_routes */
    size_t n_routes;
    struct pol_match *exact, *globs; /* owned */
    size_t n_exact, n_globs;
    struct pol_breaker *breakers; /* owned */
    size_t n_breakers;
    struct pol_target *targets;   /* owned */
    size_t n_targets;
    struct pol_rl *rl;            /* owned, sorted by key_name */
    size_t n_rl;
};

/* breaker.c */
int pol_breaker_init(struct pol_breaker *b, const struct cfg_breaker *bc);
void pol_breaker_free(struct pol_breaker *b);
void pol_breaker_carry(struct pol_breaker *to, const struct pol_breaker *from);
int pol_breaker_would_allow(const struct policy *p, const struct pol_breaker *b,
                            int64_t now_ms);

/* ratelimit.c */
int pol_rl_build(struct policy *p, char *err, size_t errlen);
void pol_rl_carry(struct policy *p, const struct policy *old);

/* Uniform double in [0, 1) from 53 bits of x. */
static inline double pol_unit(uint64_t x) {
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

#endif
