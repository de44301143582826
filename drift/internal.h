/*
 * internal.h - what the drift/ sources share that is not part of the public API.
 */
#ifndef LLMPIN_DRIFT_INTERNAL_H
#define LLMPIN_DRIFT_INTERNAL_H

#include "drift/drift.h"

#include <openssl/evp.h>

/* drift_detector_feed with side outputs for persistence: *new_baseline = 1
 * when (probe_id, answer) became this probe's baseline answer;
 * *rebaselined = 1 when the baseline was cleared (after an alarm). */
int drift_detector_feed_ex(struct drift_detector *dt, const char *probe_id, int correct,
                           const char *answer, const char **kind, char **evidence,
                           char *summary, size_t summary_len, int *changed_out,
                           int *new_baseline, int *rebaselined);

/* Restore state saved by drift_detector_to_json (baseline answers are not in
 * it; add them with drift_detector_set_baseline). Returns 0 or -1. */
int drift_detector_load_json(struct drift_detector *dt, const cJSON *state);
int drift_detector_set_baseline(struct drift_detector *dt, const char *probe_id,
                                const char *answer);
const char *drift_detector_baseline(const struct drift_detector *dt, const char *probe_id);

/* Canonical JSON of any value (sorted keys, no whitespace); caller frees. */
char *drift_canonical_json(const cJSON *v);

/* SHA-256 with the implementation fetched once and a reused context (the
 * writer thread keeps one). A NULL or unset hasher works, more slowly. */
struct drift_hasher {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};
int drift_hasher_init(struct drift_hasher *h);      /* 0, or -1: out of memory */
void drift_hasher_clear(struct drift_hasher *h);
void drift_sha256_hex(struct drift_hasher *h, const char *text, size_t len, char hex[65]);
int drift_canonical_request_hash_with(struct drift_hasher *h, const cJSON *body, char hex[65]);
void drift_hex(const unsigned char *md, unsigned n, char *hex);   /* 2n digits + NUL */

/* The fields of a request that decide its answer (hash.c), sorted. */
extern const char *const drift_answer_fields[];
extern const size_t drift_n_answer_fields;

/* The canonical request hash and what the recorder reads from a request
 * (drift_request_is_deterministic, the "model"), straight from the raw body
 * with no cJSON tree (reqscan.c). Answers only when sure to agree with the
 * cJSON path; otherwise DRIFT_REQ_UNSURE and nothing is known. The scratch
 * state is reused from call to call: zero it first, free it at the end. */
struct drift_reqscan {
    void *nodes;
    size_t n, cap;
};
struct drift_reqinfo {
    char hash[65];
    int deterministic, has_seed, temperature_zero;
    int64_t seed;
    const char *model;               /* the first "model" if a string: inside */
    size_t model_len;                /* its quotes, with no escape; else NULL */
};
#define DRIFT_REQ_OK 0
#define DRIFT_REQ_UNSURE (-1)
int drift_request_scan(struct drift_reqscan *s, struct drift_hasher *h, const char *json,
                       size_t len, struct drift_reqinfo *info);
void drift_reqscan_free(struct drift_reqscan *s);

/* Release what a record holds outside its own block (drift_record_make),
 * leaving the block itself. */
void drift_record_free_fields(struct drift_record *r);

/* A record of drift_record_make lives in a segment (store.c); n records of
 * segment g are done with. */
void drift_seg_release(struct drift_seg *g, long n);

/* Strings */
char *drift_strdup(const char *s);          /* NULL-safe */
void drift_fmt_time(int64_t ms, char *out, size_t n);   /* "2026-01-31 12:00:00 UTC" */

#endif
