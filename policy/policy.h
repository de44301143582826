/*
 * policy.h - routing decisions for llmpin, with no I/O of their own.
 *
 * Everything in this module is a pure decision over state it keeps in
 * memory: which route serves a model, which targets to try and in which
 * order, whether to retry or fall back after an outcome, whether a
 * target's circuit is open, whether a response broke a version pin,
 * whether a client key is over its rate limit. The module never reads a
 * clock, a socket, a file or a random source: callers pass `now_ms` (any
 * monotonic millisecond clock, the same one for every call) and random
 * 64-bit numbers. That keeps every branch testable with a fake clock.
 *
 * A struct policy is compiled from a struct cfg and BORROWS it: the cfg
 * must outlive the policy (keep both in the same reload generation).
 * Hot reload builds a new policy with policy_new_from(), which carries
 * over the state that must survive (circuit breakers, drift marks, rate
 * limit buckets) for targets and keys whose identity did not change.
 * Requests still in flight keep using the policy they started with; their
 * outcomes land in the old policy and are not carried over.
 *
 * Thread-compatible, not thread-safe: all calls on one policy come from
 * the event loop thread.
 *
 * Vocabulary
 *   route         a cfg_route; policy_match() picks one per request.
 *   target index  the position of a target in route->cfg->targets.
 *   target id     a policy-wide number for a target identity, shared by
 *                 every route that lists the same target (same upstream
 *                 or local model, same upstream model name, same pins).
 *                 Breakers are shared one level wider still: by upstream
 *                 (or local model) and model name, so two routes pinning
 *                 the same upstream model differently still share one
 *                 breaker. Get it with policy_target_id().
 */
#ifndef LLMPIN_POLICY_H
#define LLMPIN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct cJSON;
struct policy;

/* At most this many targets in one route (policy_new rejects more). */
#define POLICY_MAX_TARGETS 16

/* A drifted target gets one probe request through this often. */
#define POLICY_DRIFT_PROBE_INTERVAL_MS 60000

/* An OpenAI-shaped error: {"error":{"message","type","param","code"}}.
 * type and code point to static strings. */
struct policy_error {
    int status;                   /* HTTP status, e.g. 404 */
    const char *type;             /* e.g. "invalid_request_error" */
    const char *code;             /* e.g. "model_not_found" */
    char message[256];
};

/* A compiled route. Read-only for callers. */
struct policy_route {
    const struct cfg_route *cfg;  /* borrowed from the struct cfg */
    size_t index;                 /* position in cfg->routes */
    int target_ids[POLICY_MAX_TARGETS]; /* target id of cfg->targets[i] */
    int shadow_inflight;          /* mirrors running now (shadow mode) */
};

/* ---- building ------------------------------------------------------------ */

/*
 * Compile the route table of `c`. Returns a new policy (free with
 * policy_free) or NULL with err filled, e.g.
 *   routes[2] "chat": 17 targets, at most 16 are supported
 * `c` is borrowed and must outlive the policy.
 */
struct policy *policy_new(const struct cfg *c, char *err, size_t errlen);

/*
 * Same as policy_new, then carry state over from `old` (may be NULL; it
 * and its cfg must still be alive during the call):
 * breaker state and window for each breaker whose upstream/local + model
 * is unchanged, the drift mark for each target whose identity (including
 * its pins) is unchanged - so changing a pin is how one re-pins - and the
 * rate limit buckets of client keys that kept their name (levels capped to
 * the new limits). Half-open trial slots held by requests of the old
 * policy are released. `old` is not modified and is freed by the caller.
 */
struct policy *policy_new_from(const struct cfg *c, const struct policy *old,
                               char *err, size_t errlen);

void policy_free(struct policy *p);

/* ---- matching ------------------------------------------------------------ */

/*
 * Pick the route for a request.
 *   model           the request's "model" (NULL is treated as "").
 *   key_name        the authenticated client key's name, NULL if the server
 *                   runs without keys.
 *   route_override  the X-Llmpin-Route header, NULL or "" if absent.
 *   override_allowed whether this client key may use that header.
 *
 * Without override: routes whose match list names the model exactly are
 * tried first, in config order; then routes with a matching glob, in config
 * order. A route with a `keys` list is skipped for keys not in it (and for
 * key_name NULL), so another route may serve the same model to those keys.
 * No route left: 404, code "model_not_found", message
 *   The model `x` does not exist or you do not have access to it.
 * With override: 403 "route_override_forbidden" if not allowed, 404
 * "route_not_found" if no route has that name, 403 "route_forbidden" if the
 * route's keys exclude this key; otherwise that route, whatever the model.
 * Returns the route (owned by p) or NULL with *e filled.
 */
const struct policy_route *policy_match(struct policy *p, const char *model,
                                        const char *key_name,
                                        const char *route_override,
                                        int override_allowed,
                                        struct policy_error *e);

/* The route with this name, or NULL. */
const struct policy_route *policy_route_by_name(struct policy *p, const char *name);

/* 1 if the client key may use route r (no keys list, or key listed). */
int policy_route_allows_key(const struct policy_route *r, const char *key_name);

/*
 * The model list for GET /v1/models: every exact (non-glob) model name of
 * every route this key may use, first route wins, in config order, as
 *   {"id": name, "object": "model", "created": created, "owned_by": owner}
 * where owner is the upstream name of the route's first target, or
 * "llmpin-local" for a local one. Returns a new cJSON array (caller frees
 * with cJSON_Delete) or NULL on allocation failure.
 */
struct cJSON *policy_list_models(const struct policy *p, const char *key_name,
                                 int64_t created);

/* ---- planning ------------------------------------------------------------ */

/* The targets to try for one request, in order. */
struct policy_plan {
    int n;                              /* entries in index[] */
    int index[POLICY_MAX_TARGETS];      /* target indexes into r->cfg->targets */
    int n_skipped;                      /* targets left out, for x-llmpin-fallback */
    struct {
        int index;                      /* target index */
        const char *reason;             /* "circuit_open" or "drift" */
    } skipped[POLICY_MAX_TARGETS];
    int shadow;                         /* target index to mirror to, or -1 */
    int probe;                          /* target index let through as a drift probe, or -1 */
    struct policy_error error;          /* when policy_plan fails */
};

/*
 * Decide the targets to try.
 *   remote, local  [t0].
 *   shadow         [t0]; plus out->shadow = 1 (targets[1]) when a draw from
 *                  rnd falls under shadow_sample, targets[1]'s circuit is
 *                  not open and fewer than shadow_max_inflight mirrors run.
 *                  A chosen mirror holds a slot: call policy_shadow_end(r)
 *                  when the mirror finishes, fails or is abandoned.
 *   fallback       [t0, t1, ...] in config order, leaving out targets whose
 *                  circuit is open (reason "circuit_open", if fallback_on
 *                  has CFG_FB_CIRCUIT_OPEN; without it the chain stops at
 *                  the first open circuit) and drifted targets when the
 *                  route has on_drift = fallback and fallback_on has
 *                  CFG_FB_DRIFT (reason "drift"), except that a drifted
 *                  target whose probe is due stays in (out->probe).
 *   split          one target drawn by weight - from a hash of key_name if
 *                  the route is sticky and a key is known, else from rnd -
 *                  then, if fallback_on is not 0, the other targets in
 *                  config order; the result is filtered like fallback.
 * The breaker is only inspected here (no trial slot taken); call
 * policy_breaker_allow() right before each attempt.
 * Returns 0 with out->n >= 1, or -1 with out->n == 0 and out->error filled
 * (503, code "no_target_available") when every target is left out.
 */
int policy_plan(struct policy *p, const struct policy_route *r,
                const char *key_name, uint64_t rnd, int64_t now_ms,
                struct policy_plan *out);

/* Shadow slot accounting (policy_plan takes the slot itself). begin returns
 * 0 and takes a slot, or -1 if the route is at shadow_max_inflight. */
int policy_shadow_begin(struct policy *p, const struct policy_route *r);
void policy_shadow_end(struct policy *p, const struct policy_route *r);

/* ---- outcomes, fallback and retry ----------------------------------------- */

enum policy_outcome {
    POL_OK = 0,         /* 2xx */
    POL_CONNECT,        /* connect/DNS/TLS error, reset before the response */
    POL_TIMEOUT,
    POL_429,
    POL_5XX,
    POL_4XX,            /* other 4xx: the request's fault, never retried */
    POL_DRIFT,          /* response broke a version pin */
    POL_CANCELLED,      /* client went away; not the target's fault */
    POL_CIRCUIT_OPEN,   /* policy_breaker_allow refused the attempt */
};

/* "ok", "connect", "timeout", "429", "5xx", "4xx", "drift", "cancelled",
 * "circuit_open". */
const char *policy_outcome_name(enum policy_outcome o);

/* Outcome of an HTTP status: 2xx OK, 408 TIMEOUT, 429, 5xx, other 4xx. */
enum policy_outcome policy_classify_status(int http_status);

/*
 * 1 if this outcome should move the request to the next target of its
 * plan: per the route's fallback_on bits (CONNECT, TIMEOUT, 429, 5XX,
 * CIRCUIT_OPEN; DRIFT needs on_drift = fallback as well). Always 0 for
 * OK, 4XX and CANCELLED, and for remote, local and shadow routes, whose
 * plans have one target.
 */
int policy_should_fallback(const struct policy_route *r, enum policy_outcome o);

/*
 * 1 if the same target should be tried again, with *delay_ms the wait.
 *   attempt         attempts already made on this target (1 after the first).
 *   elapsed_ms      time since the request arrived.
 *   deadline_ms     the request's total budget from arrival (0 = none).
 *   retry_after_ms  the upstream's Retry-After in ms (see
 *                   policy_parse_retry_after), or -1 if none.
 *   rnd             a random number for the jitter.
 * Only CONNECT, TIMEOUT, 429 and 5XX are retried, and only while
 * attempt < retry.max_attempts. Without Retry-After the delay is "full
 * jitter": uniform in [0, min(max_ms, base_ms * 2^(attempt-1))]. With
 * Retry-After the delay is exactly that value. No retry when
 * elapsed_ms + delay would reach the deadline.
 */
int policy_should_retry(const struct policy_route *r, enum policy_outcome o,
                        int attempt, int64_t elapsed_ms, int64_t deadline_ms,
                        int64_t retry_after_ms, uint64_t rnd, int64_t *delay_ms);

/*
 * Parse an upstream's wait hint. retry_after_ms (the "retry-after-ms"
 * header, a non-negative decimal number of milliseconds) wins when valid;
 * else retry_after ("retry-after": a non-negative decimal number of
 * seconds, or an HTTP-date in IMF-fixdate, RFC 850 or asctime form,
 * compared with now_unix_ms; a past date gives 0). Either may be NULL.
 * Returns 0 with *out_ms set, or -1 if neither is present and valid.
 * Values above one day are clamped to one day.
 */
int policy_parse_retry_after(const char *retry_after, const char *retry_after_ms,
                             int64_t now_unix_ms, int64_t *out_ms);

/* ---- targets, circuit breakers and pins ---------------------------------- */

/* Target id of r->cfg->targets[index], or -1 if index is out of range. */
int policy_target_id(const struct policy_route *r, int index);

/* Number of target ids (0 .. n-1). */
int policy_n_targets(const struct policy *p);

/* Display name of a target: "openai:gpt-4o", "openai" (model passed
 * through), "local:tinyllama". Owned by p. NULL for a bad id. */
const char *policy_target_name(const struct policy *p, int target_id);

enum policy_breaker_state { POL_CLOSED = 0, POL_OPEN, POL_HALF_OPEN };

/* "closed", "open", "half_open". */
const char *policy_breaker_state_name(enum policy_breaker_state s);

/*
 * Ask whether an attempt on this target may start now. Closed: yes. Open:
 * no until cooldown_ms has passed since it opened; then it turns half-open.
 * Half-open: yes while fewer than half_open_requests trials are running
 * (this call takes a trial slot; the matching policy_breaker_report gives
 * it back). A trial slot not reported within the server's
 * request_timeout_ms is considered lost and freed. Local targets have no
 * breaker: always yes. Returns 1 (go) or 0 (refused).
 */
int policy_breaker_allow(struct policy *p, int target_id, int64_t now_ms);

/*
 * Report the outcome of an attempt. CONNECT, TIMEOUT, 429 and 5XX are
 * failures; OK, 4XX and DRIFT are successes (the upstream answered);
 * CANCELLED only gives back a half-open trial slot (report it for every
 * allowed attempt that ends without an answer); CIRCUIT_OPEN (an attempt
 * policy_breaker_allow refused, which holds no slot) is ignored.
 * Closed -> open after breaker.consecutive_failures failures in a row, or
 * when at least min_requests outcomes in the last window_s seconds have an
 * error share >= error_rate. Half-open -> closed on a success (consecutive
 * count and window cleared), -> open again on a failure.
 */
void policy_breaker_report(struct policy *p, int target_id,
                           enum policy_outcome o, int64_t now_ms);

/* State as policy_breaker_allow would see it at now_ms (an open breaker
 * past its cooldown reads as half-open). POL_CLOSED for a bad id. */
enum policy_breaker_state policy_breaker_state(const struct policy *p,
                                               int target_id, int64_t now_ms);

/*
 * Check a response against the target's pins: the served "model" against
 * pin_model and "system_fingerprint" against pin_fingerprint, as globs
 * (cfg_glob_match). A NULL or empty value against a pin is a mismatch. A
 * target without pins always matches.
 * Mismatch: marks the target drifted (whatever the route's on_drift; the
 * routes decide what that means), writes a reason to why, e.g.
 *   system_fingerprint "fp_9b0" does not match pin "fp_44709d6fcb"
 * and returns 1. Match: clears a drift mark and returns 0. Bad id: -1.
 */
int policy_pin_check(struct policy *p, int target_id, const char *served_model,
                     const char *fingerprint, int64_t now_ms,
                     char *why, size_t whylen);

/* Mark or clear drift by hand (e.g. from the drift detector or an admin
 * call). Marking records now_ms as the start and as the last probe. */
void policy_set_drifted(struct policy *p, int target_id, int drifted, int64_t now_ms);
int policy_is_drifted(const struct policy *p, int target_id);

/*
 * 1 if the target is drifted and no probe went through in the last
 * POLICY_DRIFT_PROBE_INTERVAL_MS; records now_ms as the probe time, so
 * exactly one caller gets 1 per interval. policy_plan calls this itself.
 */
int policy_drift_probe_due(struct policy *p, int target_id, int64_t now_ms);

/*
 * Per-target state for GET /admin/targets and /metrics: a new cJSON array
 * (caller frees) of objects
 *   {"id", "name", "upstream", "local", "model", "routes": [...],
 *    "state", "consecutive_failures", "window_requests", "window_errors",
 *    "opened_at_ms", "times_opened", "requests", "failures",
 *    "drifted", "drifted_since_ms", "drift_reason",
 *    "pin_model", "pin_fingerprint"}
 * (absent values are null). NULL on allocation failure.
 */
struct cJSON *policy_targets_json(const struct policy *p, int64_t now_ms);

/* ---- rate limits ------------------------------------------------------------ */

/* What to put in x-ratelimit-* headers. A limit of 0 means "unlimited":
 * send no headers for that bucket. */
struct policy_rl_info {
    int limit_requests;           /* x-ratelimit-limit-requests */
    int remaining_requests;       /* x-ratelimit-remaining-requests */
    int64_t reset_requests_ms;    /* x-ratelimit-reset-requests (until full) */
    int limit_tokens;
    int remaining_tokens;         /* may be 0 when the bucket is in debt */
    int64_t reset_tokens_ms;
    int64_t retry_after_ms;       /* when limited: wait before retrying */
};

/*
 * Take one request and est_tokens tokens from the key's buckets (rpm and
 * tpm of its cfg_client_key; each refills continuously, a full bucket
 * holds one minute's worth). Both are checked before either is taken. A
 * request estimated above the whole tpm only needs a full bucket. Unknown
 * keys, NULL and unlimited buckets always pass.
 * Returns 0 (allowed, taken) or 1 (limited, nothing taken; info->
 * retry_after_ms says how long until it would pass). info may be NULL.
 */
int policy_ratelimit_take(struct policy *p, const char *key_name, int64_t now_ms,
                          int est_tokens, struct policy_rl_info *info);

/* After the response: correct the token bucket by actual - est (the
 * estimate given to policy_ratelimit_take). The bucket may go into debt. */
void policy_ratelimit_commit_tokens(struct policy *p, const char *key_name,
                                    int est_tokens, int actual_tokens,
                                    int64_t now_ms);

/* Format a duration like OpenAI's x-ratelimit-reset-* headers:
 * "0s", "20ms", "1s", "1.5s", "6m0s", "1h2m3s". Returns buf. */
char *policy_format_duration(int64_t ms, char *buf, size_t buflen);

#endif
