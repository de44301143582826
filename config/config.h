/*
 * config.h - llmpin's configuration, loaded once and then read-only.
 *
 * A config file is JSON with // line and slash-star block comments allowed and ${ENV_VAR}
 * expansion inside string values ("${VAR:-default}" gives a default). It is
 * validated completely at load: every error names the file, the JSON path of
 * the field (e.g. routes[2].targets[0].upstream) and what is wrong.
 *
 * The loaded struct cfg is immutable. Hot reload builds a new struct cfg and
 * swaps the pointer; the old one is freed when its last request finishes
 * (see cfg_ref/cfg_unref).
 *
 * Secrets: client keys and upstream API keys are held only in the fields
 * marked SECRET below. Nothing may print those fields.
 */
#ifndef LLMPIN_CONFIG_H
#define LLMPIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* ---- server ------------------------------------------------------------ */

struct cfg_server {
    char *listen_host;            /* default "127.0.0.1" */
    int listen_port;              /* default 8080 */
    int allow_unauthenticated;    /* allow no client keys on a non-loopback address */
    size_t max_body_bytes;        /* request body limit, default 8 MiB */
    int request_timeout_ms;       /* total deadline per request, default 600000 */
    int drain_timeout_ms;         /* SIGTERM: wait this long for in-flight, default 30000 */
    int idle_timeout_ms;          /* a kept-alive connection between requests, default 75000 */
    int header_timeout_ms;        /* a request head, from its first byte, default 10000 */
    int body_timeout_ms;          /* a request body, from the end of its head, default 60000 */
    int send_timeout_ms;          /* a client that takes none of its answer, default 60000 */
    int max_connections;          /* client connections, default 10000 */
    char *log_level;              /* "debug" | "info" | "warn" | "error", default "info" */
    char *access_log;             /* path, "-" for stderr (default), "off" */
};

/* ---- client keys ------------------------------------------------------- */

struct cfg_client_key {
    char *name;                   /* shown in logs and records instead of the key */
    char *key;                    /* SECRET */
    int admin;                    /* may call the /admin/ endpoints */
    int route_override;           /* may use the X-Llmpin-Route header */
    int rpm;                      /* requests per minute, 0 = unlimited */
    int tpm;                      /* tokens per minute, 0 = unlimited */
};

/* ---- remote upstreams -------------------------------------------------- */

enum cfg_upstream_kind {
    CFG_UPSTREAM_OPENAI = 0,      /* any OpenAI-compatible server */
    CFG_UPSTREAM_AZURE,           /* Azure OpenAI: api-key header, api-version query */
    CFG_UPSTREAM_ANTHROPIC,
};

struct cfg_header {
    char *name;
    char *value;                  /* may be SECRET: never logged */
};

struct cfg_upstream {
    char *name;
    enum cfg_upstream_kind kind;
    char *base_url;               /* e.g. https://api.openai.com/v1 (no trailing /) */
    char *api_key_env;            /* name of the environment variable, or NULL */
    char *api_key;                /* SECRET: value of that variable at load, or NULL */
    char *api_version;            /* azure only */
    struct cfg_header *headers;   /* extra headers sent upstream */
    size_t n_headers;
    int connect_timeout_ms;       /* default 10000 */
    int first_byte_timeout_ms;    /* default 60000 */
    int idle_timeout_ms;          /* between stream chunks, default 60000 */
    int total_timeout_ms;         /* default 600000 */
    int max_connections;          /* per upstream host, default 256 */
    int tls_verify;               /* default 1 */
    int use_curl;                 /* http_client "libcurl": never the built-in client */
    char *ca_file;                /* optional CA bundle */
};

/* ---- local models ------------------------------------------------------ */

struct cfg_local_model {
    char *name;                   /* client-visible model name */
    char *path;                   /* GGUF file; relative paths resolve against the config file's folder */
    char *sha256;                 /* 64 lowercase hex digits, or "unpinned" */
    int context_length;           /* 0 = the model's own (capped at 4096) */
    int threads;                  /* 0 = number of CPUs */
    char *chat_template;          /* NULL = the model's Jinja template; or llama2|llama3|chatml|zephyr|mistral|gemma|phi3|plain */
    char *chat_template_file;     /* a Jinja file used instead (resolved against the config's folder) */
    char *chat_template_name;     /* tokenizer.chat_template.NAME instead of tokenizer.chat_template */
    int max_queue;                /* queued requests before 429, default 64 */
    int max_batch;                /* sequences decoded together, default 8 */
    int kv_f32;                   /* kv_cache "f32" (default "f16") */
};

/* ---- routes ------------------------------------------------------------ */

enum cfg_route_mode {
    CFG_MODE_REMOTE = 0,          /* first target only (retries apply) */
    CFG_MODE_LOCAL,               /* first target, which must be local */
    CFG_MODE_FALLBACK,            /* targets in order */
    CFG_MODE_SPLIT,               /* weighted choice among targets */
    CFG_MODE_SHADOW,              /* targets[0] serves; targets[1] gets a sampled mirror */
};

/* Conditions that move a fallback route to its next target (bit set). */
enum {
    CFG_FB_CONNECT      = 1 << 0, /* connect error, DNS failure, reset before response */
    CFG_FB_TIMEOUT      = 1 << 1,
    CFG_FB_429          = 1 << 2,
    CFG_FB_5XX          = 1 << 3,
    CFG_FB_CIRCUIT_OPEN = 1 << 4,
    CFG_FB_DRIFT        = 1 << 5, /* version pin mismatch with on_drift = fallback */
    CFG_FB_ALL          = (1 << 6) - 1,
};

enum cfg_on_drift {
    CFG_DRIFT_RECORD = 0,         /* serve and record a drift event */
    CFG_DRIFT_FALLBACK,           /* serve from the next target until re-pinned */
    CFG_DRIFT_REJECT,             /* 409 */
};

struct cfg_target {
    char *upstream;               /* name of a cfg_upstream, or NULL */
    char *local;                  /* name of a cfg_local_model, or NULL (exactly one is set) */
    char *model;                  /* model name sent upstream; NULL = the requested name */
    double weight;                /* split mode, default 1 */
    char *pin_model;              /* expected served "model" (glob), or NULL */
    char *pin_fingerprint;        /* expected "system_fingerprint" (glob), or NULL */
    /* resolved at load (indexes into struct cfg arrays, -1 if none) */
    int upstream_idx;
    int local_idx;
};

struct cfg_retry {
    int max_attempts;             /* per target, including the first; default 2 */
    int base_ms;                  /* default 200 */
    int max_ms;                   /* default 5000 */
};

struct cfg_route {
    char *name;
    char **match;                 /* model names or globs ("gpt-4o*", "*") */
    size_t n_match;
    char **keys;                  /* client key names allowed; NULL = all */
    size_t n_keys;
    enum cfg_route_mode mode;
    struct cfg_target *targets;
    size_t n_targets;
    unsigned fallback_on;         /* CFG_FB_* bits, default CFG_FB_ALL */
    enum cfg_on_drift on_drift;
    struct cfg_retry retry;
    int sticky;                   /* split: same client key -> same target */
    double shadow_sample;         /* shadow: share mirrored, 0..1, default 1 */
    int shadow_max_inflight;      /* shadow: concurrency bound, default 4 */
    char *enabled_if_env;         /* route kept only if this env var is set and non-empty
                                     at load (routes failing it are dropped), or NULL */
};

/* ---- circuit breaker (applies to every remote target) -------------------- */

struct cfg_breaker {
    int consecutive_failures;     /* open after this many in a row, default 5 */
    double error_rate;            /* or this failure share over the window, default 0.5 */
    int window_s;                 /* default 30 */
    int min_requests;             /* in the window before error_rate applies, default 20 */
    int cooldown_ms;              /* open -> half-open, default 30000 */
    int half_open_requests;       /* trial requests in half-open, default 1 */
};

/* ---- drift ----------------------------------------------------------------- */

enum cfg_store_outputs { CFG_STORE_NONE = 0, CFG_STORE_HASH, CFG_STORE_FULL };

struct cfg_probe_suite {
    char *name;
    char *path;                   /* JSONL file, or "builtin:default" */
    char **targets;               /* route or target names to probe */
    size_t n_targets;
    int interval_s;               /* default 3600 */
};

#define CFG_WRITER_IDLE 20           /* drift.writer_nice "idle" */

struct cfg_drift {
    int enabled;                  /* default 1 */
    char *db_path;                /* default "llmpin-drift.db" */
    enum cfg_store_outputs store_outputs; /* default CFG_STORE_HASH */
    int commit_interval_ms;       /* default 100 */
    int writer_nice;              /* the writer thread's priority: a nice value 0..19, or
                                   * CFG_WRITER_IDLE (SCHED_IDLE, the default) */
    int retention_days;           /* 0 = keep forever; default 90 */
    int retention_mb;             /* 0 = no size limit; default 1024 */
    char *webhook_url;            /* POSTed a JSON event on drift, or NULL */
    double false_alarm_rate;      /* per probe, default 1e-4 (h = ln(1/rate)) */
    double min_drop;              /* smallest accuracy drop worth an alarm, default 0.15 */
    int baseline_probes;          /* probes that make the baseline, default 100 */
    struct cfg_probe_suite *probes;
    size_t n_probes;
};

/* ---- the whole configuration ---------------------------------------------- */

struct cfg {
    char *path;                   /* file it was loaded from, or "<command line>" */
    struct cfg_server server;
    struct cfg_client_key *keys;
    size_t n_keys;
    struct cfg_upstream *upstreams;
    size_t n_upstreams;
    struct cfg_local_model *local_models;
    size_t n_local_models;
    struct cfg_route *routes;
    size_t n_routes;
    struct cfg_breaker breaker;
    struct cfg_drift drift;
};

/*
 * Load and validate a config file. On success returns a new struct cfg
 * (caller owns; free with cfg_free). On failure returns NULL and writes a
 * message like
 *   config/prod.json: routes[1].targets[0].upstream: no upstream named "openia"
 * or, for a syntax error,
 *   config/prod.json:12:7: expected ',' or '}' after object member
 * into err (always NUL-terminated).
 */
struct cfg *cfg_load_file(const char *path, char *err, size_t errlen);

/* Same, from text in memory; `name` is used in messages in place of a path and
 * `base_dir` resolves relative model paths (may be NULL for cwd). */
struct cfg *cfg_load_string(const char *text, size_t len, const char *name,
                            const char *base_dir, char *err, size_t errlen);

/* A config with the defaults filled in and nothing else (no routes). */
struct cfg *cfg_new_default(void);

/* Fill a zeroed entry with the documented defaults (timeouts, retry,
 * breaker-independent route settings, target weight and unresolved
 * indexes). The loader and the command line share these. */
void cfg_upstream_init(struct cfg_upstream *u);
void cfg_route_init(struct cfg_route *r);
void cfg_target_init(struct cfg_target *t);

/* Validate cross references and invariants of a config built in code (e.g.
 * from command-line flags). Returns 0 or -1 with err filled. cfg_load_* call
 * this themselves. */
int cfg_validate(struct cfg *c, char *err, size_t errlen);

void cfg_free(struct cfg *c);

/* Lookups; NULL / -1 when absent. */
int cfg_find_upstream(const struct cfg *c, const char *name);
int cfg_find_local_model(const struct cfg *c, const char *name);

/* 1 if the host is a loopback address or "localhost". */
int cfg_host_is_loopback(const char *host);

/* fnmatch-style glob with * and ? only; 1 on match. */
int cfg_glob_match(const char *pattern, const char *s);

#endif
