/*
 * drift.h - record every answer, and notice when the model behind a name
 * changes without anyone saying so.
 *
 * Three signals, from cheapest to most expensive:
 *
 *   1. Version drift. Upstreams tell us which snapshot served a request (the
 *      body's "model") and which backend ran it ("system_fingerprint"). A
 *      value never seen before for a (target, requested model) pair is an
 *      event, raised on the very response that carried it.
 *   2. Passive output drift. A deterministic request (temperature 0 or a seed)
 *      that was seen before and now gets a different output hash is counted,
 *      per target and per fingerprint.
 *   3. Probes. A suite of questions with computable answers is sent on a
 *      timer; two Bernoulli CUSUM charts per (suite, target) watch the
 *      correctness rate and the share of answers that differ from the
 *      baseline run. An alarm is an event with evidence.
 *
 * Threads. Everything in this header that takes a struct drift is called on
 * the event loop thread, except drift_close (owner's thread) and the CLI.
 * Loop-side calls never touch SQLite: drift_push and the observers copy what
 * must be stored into a bounded queue (mutex + condvar) that ONE writer thread
 * drains, writing each batch in one transaction (group commit). When the queue
 * is full (DRIFT_QUEUE_MAX items), new items are dropped and counted in
 * drift_stats.dropped: serving a request matters more than recording it.
 *
 * Ownership. drift_push takes over the record. Events filled by the observers
 * belong to the caller and are released with drift_event_clear.
 */
#ifndef LLMPIN_DRIFT_H
#define LLMPIN_DRIFT_H

#include <stddef.h>
#include <stdint.h>
#include <regex.h>
#include <cjson/cJSON.h>

#include "config/config.h"

#define DRIFT_QUEUE_MAX 100000      /* queued items before drops */
#define DRIFT_QUEUE_MAX_BYTES (256u * 1024 * 1024)  /* queued request bodies and answer
                                                      * texts before drops */
#define DRIFT_SCHEMA_VERSION 2

struct drift;                        /* opaque */

/* ---- hashing --------------------------------------------------------------- */

/* SHA-256 (64 lowercase hex digits + NUL) of the canonical form of an
 * OpenAI-style request body: only the fields that decide the answer (model,
 * messages/prompt/input, tools, tool_choice, response_format and the sampling
 * parameters) are kept; object keys are sorted recursively, there is no
 * whitespace, strings use minimal escapes and numbers print the same however
 * they were written (1, 1.0 and 1e0 agree). Fields such as stream, user or
 * metadata do not take part. Returns 0, or -1 if body is not an object. */
int drift_canonical_request_hash(const cJSON *body, char hex[65]);

/* The canonical text itself (caller frees), for debugging and tests. */
char *drift_canonical_request_json(const cJSON *body);

/* SHA-256 of raw bytes, as hex. */
void drift_output_hash(const char *text, size_t len, char hex[65]);

/* 1 if the request is meant to be reproducible: temperature 0, or a seed.
 * *seed and *has_seed are filled when non-NULL. */
int drift_request_is_deterministic(const cJSON *body, int64_t *seed, int *has_seed);

/* ---- records --------------------------------------------------------------- */

/* One upstream answer. Every string is heap-allocated (or NULL) and owned by
 * the record; drift_record_free releases them and the record. */
struct drift_record {
    int64_t ts_ms;                   /* wall clock, ms since the epoch (0 = now) */
    char *request_id;                /* llmpin's id for the client request */
    char *key_name;                  /* client key NAME, never the key */
    char *route;
    char *target;                    /* e.g. "openai/gpt-4o" or "local/qwen" */
    char *requested_model;
    char *served_model;              /* the response body's "model" */
    char *system_fingerprint;
    char *upstream_request_id;       /* x-request-id / request-id */
    char *version_headers;           /* small JSON object of version headers */
    int status;                      /* HTTP status returned to the client */
    int latency_ms;
    int ttft_ms;                     /* -1 when not streamed */
    int prompt_tokens;
    int completion_tokens;
    char request_hash[65];           /* drift_canonical_request_hash, or "" */
    char *request_raw;               /* drift_record_set_request_raw: the body, for the writer */
    size_t request_raw_len;
    char output_hash[65];            /* drift_output_hash of the text, or "" */
    char *output_text;               /* stored only with store_outputs = full */
    int output_len;                  /* answer length in characters (UTF-8 code
                                      * points), -1 = unknown */
    int is_probe;
    char *probe_suite;
    char *probe_id;
    int probe_correct;               /* 1, 0, or -1 = not graded */
    char *probe_answer;              /* extracted answer, NULL = none found */
    int probe_changed;               /* answer differs from baseline: 1, 0, -1 = n/a */
    int probe_parsed;                /* a parsable answer was found: 1, 0, -1 = not graded */
    int probe_refused;               /* no answer and the output is a refusal: 1, 0, -1 = n/a */
    int is_shadow;
    int deterministic;
    int has_seed;
    int64_t seed;
    size_t block_size;               /* internal: the one block of drift_record_make
                                      * (record, queue slot, copies); 0 otherwise */
    struct drift_seg *seg;           /* internal: the segment holding that block, or NULL */
};

/* A zeroed record with probe_correct = probe_changed = probe_parsed =
 * probe_refused = output_len = ttft_ms = -1. */
struct drift_record *drift_record_new(void);
void drift_record_free(struct drift_record *r);

/* What drift_record_make copies. Every pointer may be NULL. */
struct drift_record_fields {
    const char *request_id, *key_name, *route, *target, *requested_model, *served_model,
        *system_fingerprint, *upstream_request_id, *version_headers;
    const char *request_body;        /* the raw request (JSON text), for the writer to hash */
    size_t request_body_len;
    const char *output;              /* the answer text; NULL = none (an error) */
    size_t output_len;
    int keep_output;                 /* probes: keep the text whatever store_outputs says
                                      * (grading needs it; probe texts are llmpin's own) */
};

/* A record like drift_record_new's, with f's strings, request body and
 * answer copied into the record's own allocation: the same as strdup'ing
 * each field, then drift_record_set_request_raw and (when f->output is set)
 * drift_record_set_output, in one malloc instead of a dozen, and drift_push
 * queues it without another. The event loop makes one per request, and the
 * writer thread frees it: fewer allocations crossing threads keep malloc
 * cheap for the rest of the loop; the writer hands finished blocks back and
 * this reuses them, so call it from one thread only (the loop's), like the
 * other calls here that take a struct drift. To replace a string field afterwards,
 * release the old one with drift_record_free_field, never free(). Returns
 * NULL when out of memory. */
struct drift_record *drift_record_make(struct drift *d, const struct drift_record_fields *f);

/* free(p) unless p lies inside r's own block (drift_record_make). */
void drift_record_free_field(struct drift_record *r, void *p);

/* Fill r->request_hash, deterministic, has_seed, seed and (when unset)
 * requested_model from an OpenAI-style request body. Returns 0, or -1 if
 * body is not an object. */
int drift_record_set_request(struct drift_record *r, const cJSON *body);

/* The same work done by the writer thread instead of the caller's: keep a
 * copy of the raw request body (JSON text, len bytes); the writer parses it
 * and fills request_hash, deterministic, has_seed, seed and (when unset)
 * requested_model before storing the record. A body that is not a JSON
 * object leaves request_hash empty. This is what the event loop should call:
 * it costs a copy, where drift_record_set_request canonicalises and hashes
 * (about a microsecond for a small request, more for long conversations).
 * Returns 0, or -1 (out of memory). */
int drift_record_set_request_raw(struct drift_record *r, const char *body, size_t len);

/* Set r->output_len and keep what the store needs of an answer: nothing with
 * store_outputs = none; otherwise a copy in r->output_text, which the writer
 * thread hashes into output_hash (unless already set) and stores as text
 * only with store_outputs = full. Returns 0 or -1 (out of memory). For probes, set r->output_text yourself: grading needs it
 * whatever the privacy setting (probe texts are llmpin's own questions). */
int drift_record_set_output(struct drift *d, struct drift_record *r, const char *text,
                            size_t len);

/* ---- reading an answer (event loop) ------------------------------------------ */

/* What drift_answer_scan found in an upstream answer. Strings are spans of
 * the raw text between the quotes, still escaped (NULL = absent or not a
 * string); turn them into text with drift_json_unescape. */
struct drift_answer {
    const char *model;               /* top-level "model" */
    size_t model_len;
    const char *fingerprint;         /* top-level "system_fingerprint" */
    size_t fingerprint_len;
    int has_prompt_tokens, has_completion_tokens;   /* usage.* is a number */
    double prompt_tokens, completion_tokens;
};

#define DRIFT_ANSWER_OK 0
#define DRIFT_ANSWER_UNSURE 1

/* Called for each piece of output text of choice 0, in the order the proxy
 * records them: message (or, in a stream chunk, delta) content, then each
 * tool call's function name and arguments, then "text" (completions). raw
 * is escaped, as in struct drift_answer. */
typedef void (*drift_answer_output_fn)(void *ud, const char *raw, size_t len);

/* Read an OpenAI-style answer object (is_chunk: one stream chunk) in place,
 * allocating nothing: the first "model", "system_fingerprint", usage token
 * counts and the output texts, looked up as cJSON_GetObjectItemCaseSensitive
 * and cJSON_ArrayForEach would. Returns DRIFT_ANSWER_OK when json[0..len) is
 * strict JSON that cJSON_ParseWithLength reads the same way (then *a is
 * filled and output has been called), or DRIFT_ANSWER_UNSURE with nothing
 * reported, and the caller must ask cJSON: the text is not JSON, or is JSON
 * this scanner does not vouch for (\u0000, unpaired surrogates, raw control
 * characters, numbers over 63 characters, nesting over 64, a top level that
 * is not an object, trailing bytes, embeddings' "data" array). Never reads
 * outside json[0..len). */
int drift_answer_scan(const char *json, size_t len, int is_chunk, struct drift_answer *a,
                      drift_answer_output_fn output, void *ud);

/* Unescape len bytes of a JSON string's contents (a span given by
 * drift_answer_scan) into out, which has room for len bytes and may be raw
 * itself (unescaping in place). Returns the bytes written; adds no NUL. */
size_t drift_json_unescape(const char *raw, size_t len, char *out);

/* ---- events ---------------------------------------------------------------- */

/* kind: "version", "accuracy", "answer_change". Strings owned by the event;
 * release with drift_event_clear (the struct itself is usually on the stack). */
struct drift_event {
    int64_t ts_ms;
    char *kind;
    char *target;
    char *subject;                   /* requested model, or probe suite name */
    char *old_value;                 /* version: "model / fingerprint"; probes: baseline accuracy */
    char *new_value;
    char *summary;                   /* one plain sentence for people */
    char *evidence;                  /* JSON object text */
};

void drift_event_clear(struct drift_event *ev);

/* {"ts_ms","time","kind","target","subject","old","new","summary","evidence":{...}}
 * for the webhook and /admin. Caller frees with cJSON_Delete. */
cJSON *drift_event_to_json(const struct drift_event *ev);

/* ---- the store ------------------------------------------------------------- */

/* Open or create the database at cfg->db_path (WAL, synchronous=NORMAL),
 * migrate its schema, load the known versions, probe baselines and detector
 * state, and start the writer thread. cfg is copied; it need not outlive the
 * call. Returns NULL with err filled on failure. */
struct drift *drift_open(const struct cfg_drift *cfg, char *err, size_t errlen);

/* Drain the queue completely, commit, stop the writer, close the db and free
 * d. Every record pushed before this call is written. NULL is a no-op.
 * Records made by drift_record_make live in d's memory: each must have been
 * pushed or freed before this call. */
void drift_close(struct drift *d);

/* Queue a record for the writer; takes ownership of r (also on drop). Never
 * blocks beyond a short mutex hold. Safe from any thread. */
void drift_push(struct drift *d, struct drift_record *r);

struct drift_stats {
    uint64_t queued;                 /* items in the queue now */
    uint64_t pushed;                 /* items ever accepted */
    uint64_t written;                /* records committed */
    uint64_t dropped;                /* items refused because the queue was full */
    uint64_t batches;                /* transactions committed */
    uint64_t events;                 /* drift events raised */
    uint64_t write_errors;           /* batches lost to SQLite errors */
    uint64_t output_compared;        /* deterministic repeats compared */
    uint64_t output_changed;         /* ... whose output hash changed */
    uint64_t retention_deleted;      /* records removed by retention */
    uint64_t handovers;              /* batches the low-priority writer left half
                                      * done to the catch-up thread */
    uint64_t writer_stalls;          /* tests: times drift_debug_stall_writer 2 held it */
};
void drift_stats(struct drift *d, struct drift_stats *st);

/* Block until everything queued so far is committed (tests, CLI). */
void drift_flush(struct drift *d);

/* Tests only: keep the low-priority writer from taking batches (on = 1), or
 * hold it inside a batch, holding the database (on = 2), as if the machine
 * stopped giving it the CPU, so that the catch-up thread's taking over can
 * be checked. */
void drift_debug_stall_writer(struct drift *d, int on);

/* Where drift logs events and writer errors; default stderr. The callback is
 * called from the loop thread (events) and the writer thread (errors). */
typedef void (*drift_log_fn)(void *ud, const char *level, const char *msg);
void drift_set_log(struct drift *d, drift_log_fn fn, void *ud);

/* ---- version drift (event loop) -------------------------------------------- */

/* Note the served model and fingerprint of one upstream response. The first
 * observation of a (target, requested_model) pair is its baseline. A served
 * model or a fingerprint never seen before for that pair returns 1 and fills
 * ev_out (when non-NULL); the event is also queued for the db and logged.
 * Known values coming back (load balancers alternate between a few
 * fingerprints) are not events. NULL/empty values are "not reported" and
 * never an event. Returns 0 otherwise. In-memory; never blocks. */
int drift_observe_version(struct drift *d, const char *target,
                          const char *requested_model, const char *served_model,
                          const char *fingerprint, struct drift_event *ev_out);

/* ---- probes ---------------------------------------------------------------- */

enum drift_expect_kind {
    DRIFT_EXPECT_EXACT = 0,          /* trimmed output equals the value */
    DRIFT_EXPECT_ICASE,              /* same, ignoring ASCII case */
    DRIFT_EXPECT_REGEX,              /* POSIX ERE, case-insensitive, matches somewhere */
    DRIFT_EXPECT_YESNO,              /* last [Yes]/[No] (else last yes/no word) equals the value */
    DRIFT_EXPECT_INT,                /* last integer in the output equals the value */
    DRIFT_EXPECT_BRACKET,            /* text inside the last [...] equals the value, ignoring case */
    DRIFT_EXPECT_JSON,               /* first {...} parses and equals the value object exactly */
};

struct drift_probe {
    char *id;
    cJSON *messages;                 /* array of {"role","content"} */
    cJSON *params;                   /* object merged into the request, may be NULL */
    enum drift_expect_kind kind;
    char *expect;                    /* value as text (JSON text for DRIFT_EXPECT_JSON) */
    int has_regex;
    regex_t regex;
    char **tags;
    size_t n_tags;
};

struct drift_probe_suite {
    char *name;                      /* path, or "builtin:default" */
    struct drift_probe *probes;
    size_t n;
};

/* Load a JSONL suite, one probe per line:
 *   {"id":"p1","messages":[{"role":"user","content":"..."}],
 *    "params":{"temperature":0},"expect":{"regex":"\\bparis\\b"},"tags":["geo"]}
 * expect holds exactly one of exact, icase, regex, yesno, int, bracket, json.
 * Blank lines and lines starting with '#' are skipped. Or a built-in suite:
 *   "builtin:default"  primes (half prime), arithmetic, strings, JSON format
 *   "builtin:primes"   500 primes + 500 composites in 1,000..20,000
 * Errors read "FILE:LINE: what" (e.g. "s.jsonl:3: expect: unknown kind
 * \"foo\""). Returns NULL with err filled. Caller frees with
 * drift_probe_suite_free. Limits: 100,000 probes, 1 MiB per line. */
struct drift_probe_suite *drift_probe_suite_load(const char *path_or_builtin,
                                                 char *err, size_t errlen);
/* Same from memory; `name` is used in messages. */
struct drift_probe_suite *drift_probe_suite_parse(const char *text, size_t len,
                                                  const char *name, char *err,
                                                  size_t errlen);
void drift_probe_suite_free(struct drift_probe_suite *s);

/* Find a probe by id (linear); NULL if absent. */
const struct drift_probe *drift_probe_suite_find(const struct drift_probe_suite *s,
                                                 const char *id);

/* The chat completion request body for a probe: {"model":model,"messages":..}
 * plus the probe's params. Caller frees. */
cJSON *drift_probe_request(const struct drift_probe *p, const char *model);

/* Extract the answer the probe asks for from an output, normalised (yes/no
 * lowercase, integers without sign noise, bracket text lowercase and
 * trimmed, JSON canonical). Returns 0 and fills buf, or -1 when the output
 * holds no parsable answer (refusal or format failure). For exact/icase/regex
 * the "answer" is the trimmed output (cut to buflen). */
int drift_probe_extract(const struct drift_probe *p, const char *output,
                        char *buf, size_t buflen);

/* 1 if the output answers the probe correctly, else 0. */
int drift_probe_grade(const struct drift_probe *p, const char *output);

/* 1 if the output looks like a refusal ("I can't", "I'm sorry", "as an AI"). */
int drift_output_is_refusal(const char *output);

/* Length of a UTF-8 text in characters (code points; bytes 0x80-0xBF that
 * continue a sequence do not count), as SQLite's length() counts TEXT. */
int drift_text_chars(const char *text, size_t len);

/* Feed one probe result (event loop, or the CLI). r carries the response
 * (target, output_text, status, latency_ms, served_model, ...); this grades it
 * (r->output_text NULL or status >= 400 = not graded, probe_correct = -1),
 * fills r's probe fields (probe_parsed, probe_refused too), output_len and
 * request/output hashes, updates the detectors of
 * (suite, r->target) and pushes r (takes ownership). Returns 1 and fills
 * ev_out on an alarm (the event is also stored and logged), 0 otherwise, -1
 * on bad arguments (r is freed anyway). */
int drift_probe_result(struct drift *d, const char *suite,
                       const struct drift_probe *p, struct drift_record *r,
                       struct drift_event *ev_out);

/* ---- detectors (pure) ------------------------------------------------------ */

/* One-sided Bernoulli CUSUM (Page 1954) for a change of a success rate from
 * p0 to p1 (either direction): W = x ln(p1/p0) + (1-x) ln((1-p1)/(1-p0)),
 * S = max(0, S + W), alarm when S >= h. With h = ln(1/alpha) the average run
 * length to a false alarm is at least 1/alpha (Lorden). */
struct drift_cusum {
    double p0, p1, h;
    double w1, w0;                   /* increments for x = 1 and x = 0 */
    double s;
    long n;                          /* observations since the last reset */
    long n_since_zero;               /* observations since S was last 0: change-point estimate */
    long x_since_zero;               /* successes among those */
};

double drift_cusum_h(double false_alarm_rate);
/* p0, p1 must be in (0,1) and differ; returns -1 otherwise. */
int drift_cusum_init(struct drift_cusum *c, double p0, double p1, double h);
/* Add x (0/1). Returns 1 on alarm (S >= h); the chart is not reset. */
int drift_cusum_update(struct drift_cusum *c, int x);
void drift_cusum_reset(struct drift_cusum *c);
/* Expected increment E_p[W] when the true rate is p (for docs, benches). */
double drift_cusum_drift(const struct drift_cusum *c, double p);

/* The per-(suite, target) detector, pure and in memory: baseline collection,
 * the correctness charts (drop and rise) and the answer-change chart. */
struct drift_detector;

struct drift_detector_params {
    double false_alarm_rate;         /* per chart per probe */
    double min_drop;                 /* p1 = p0 -/+ min_drop */
    int baseline_probes;             /* results that make a baseline */
};

struct drift_detector *drift_detector_new(const struct drift_detector_params *prm);
void drift_detector_free(struct drift_detector *dt);

/* Feed one graded result. answer may be NULL (no parsable answer, treated as
 * the answer "<none>"). Returns 0, or 1 on alarm with *kind set to
 * "accuracy" or "answer_change" and the evidence JSON (caller frees) in
 * *evidence; after an alarm the detector re-baselines. */
int drift_detector_feed(struct drift_detector *dt, const char *probe_id, int correct,
                        const char *answer, const char **kind, char **evidence,
                        char *summary, size_t summary_len);

/* State for /admin and persistence. */
cJSON *drift_detector_to_json(const struct drift_detector *dt);

/* ---- admin and CLI --------------------------------------------------------- */

/* GET /admin/drift: stats, versions seen (first/last seen, counts), detector
 * state, recent events. In-memory only (no SQL): safe on the loop. Caller
 * frees. */
cJSON *drift_admin_json(struct drift *d);

/* `llmpin drift ...`; argv[0] is "drift". Subcommands:
 *   status                          targets, versions, open alarms
 *   report [--since T] [--html F]   timeline per target; HTML with SVG charts
 *   compare A B [--since T]         shadow pairs: output agreement
 *   probe SUITE --target T [--url U] [--limit N]   send a suite via HTTP
 *   ack ID|all                      close alarms
 * Every subcommand takes --drift-db FILE (default llmpin-drift.db). Output on
 * stdout; errors on stderr; returns the process exit status (0, 1 error,
 * 2 usage). Blocking; never call on the event loop. */
int drift_cli_main(int argc, char **argv);

/* Similarity of two texts for `drift compare`: the Jaccard index of their
 * sets of lower-cased word tokens (runs of letters, digits and non-ASCII
 * bytes): 1 = the same words, 0 = none in common; two empty texts are 1.
 * Returns -1 when out of memory. */
double drift_text_similarity(const char *a, const char *b);

/* Parse a --since value: "2026-01-31", "2026-01-31T12:00:00Z", "24h", "7d",
 * "90m", or ms since the epoch. Returns 0 with *ms, or -1. */
int drift_parse_time(const char *s, int64_t now_ms, int64_t *ms);

/* Wall clock in ms. */
int64_t drift_now_ms(void);

#endif
