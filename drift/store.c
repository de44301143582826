/*
 * store.c - the recorder: a bounded queue, one writer thread, SQLite.
 *
 * Why this shape: the event loop must never wait for a disk. The loop only
 * appends to a linked list under a mutex (a few pointer writes) and signals a
 * condition variable; one writer thread owns the SQLite connection and writes
 * whatever has accumulated in ONE transaction (group commit). The writer waits
 * at most commit_interval_ms after the first item of a batch arrived, so under
 * load a batch holds thousands of records and costs one commit, and when idle
 * a record is on disk within the interval. WAL with synchronous=NORMAL means a
 * commit survives the process being killed (the OS has the pages); only a
 * power cut can lose the last commits, which is the trade we want for a
 * recorder.
 *
 * The queue is bounded (DRIFT_QUEUE_MAX items). When the disk is slower than
 * traffic, new records are dropped and counted: a proxy that stalls because
 * its flight recorder is full would be worse than a gap in the record. Events
 * (alarms) are never dropped.
 *
 * State that detection needs on the hot path (versions seen, detector state)
 * lives in memory on the loop thread, loaded from the database at open; the
 * loop sends copies of every change to the writer, so the database is the
 * durable mirror and the memory is the truth while running.
 *
 * Passive output drift is computed by the writer: for a deterministic record
 * it looks up the previous output hash of (target, request_hash) in
 * drift_outputs and counts a change per (target, fingerprint).
 */
#include "drift/internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BATCH_SOFT_MAX 5000           /* wake the writer early when this many wait */
#define RECENT_EVENTS 32
#define VERSION_FLUSH_MS 1000         /* coalesce last_seen/count updates */
#define RETENTION_CHECK_MS 60000
#define MAX_VERSION_PAIRS 10000       /* (target, requested model) pairs tracked */
#define MAX_VALUES_PER_FIELD 256      /* known models / fingerprints per pair */

/* ---- small helpers ------------------------------------------------------------ */

char *drift_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void drift_fmt_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- queue items -------------------------------------------------------------- */

enum item_kind {
    IT_RECORD,
    IT_EVENT,
    IT_VERSION,          /* a=target b=requested c=field d=value; n=count, t0=first, t1=last */
    IT_BASELINE,         /* a=suite b=target c=probe_id d=answer */
    IT_BASELINE_CLEAR,   /* a=suite b=target */
    IT_DETECTOR,         /* a=suite b=target c=state json */
};

struct item {
    enum item_kind kind;
    int in_record;                    /* lives in rec's block (drift_record_make) */
    struct item *next;
    size_t bytes;                     /* request body + answer text held by rec */
    struct drift_record *rec;
    struct drift_event ev;
    char *a, *b, *c, *d;
    int64_t n, t0, t1;
};

static void item_free(struct item *it)
{
    struct drift_record *rec = it->rec;
    drift_event_clear(&it->ev);
    free(it->a);
    free(it->b);
    free(it->c);
    free(it->d);
    if (!it->in_record)
        free(it);
    drift_record_free(rec);           /* last: it may hold the item */
}

/* ---- loop-side state ------------------------------------------------------------ */

struct vval {
    char *value;
    int64_t first_ms, last_ms, count;
    int64_t pending;                  /* observations not yet sent to the writer */
    int64_t flushed_ms;               /* when we last sent them */
};

struct vfield {
    struct vval *v;
    size_t n, cap;
    int current;                      /* index of the latest value, -1 none */
};

struct vpair {
    char *target, *requested;
    struct vfield model, fp;
    struct vpair *next;
};

struct det {
    char *suite, *target;
    struct drift_detector *dt;
    /* graded results since this process started (for /admin/drift) */
    int64_t graded, correct, compared, changed, no_answer, refused, with_len, sum_len;
    struct det *next;
};

struct outcount {                     /* writer-side, read under mu */
    char *target, *fingerprint;
    int64_t compared, changed;
    struct outcount *next;
};

struct drift {
    char *db_path;
    enum cfg_store_outputs store_outputs;
    int commit_interval_ms;
    int writer_nice;
    int retention_days, retention_mb;
    struct drift_detector_params dprm;

    sqlite3 *db;                      /* writer thread only, after open */
    pthread_t thread;
    int thread_started;
    pthread_t catchup;                /* see writer_loop */
    int catchup_started;
    pthread_mutex_t wmu;              /* one writer thread at a time on the connection */
    pthread_cond_t catchup_cv;
    int stall_writer;                 /* drift_debug_stall_writer */
    int catchup_waiting;              /* atomic: the catch-up thread wants wmu */
    int64_t writing_since;            /* first arrival of the batch the low-priority
                                       * writer is writing, 0 = none (under mu) */

    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct item *head, *tail;
    size_t qlen;
    size_t qbytes;                    /* sum of the queued items' bytes */
    int64_t first_arrival_ms;         /* monotonic, of the oldest queued item */
    int stop, flush_req;
    uint64_t seq_pushed, seq_done;
    struct drift_stats st;
    struct outcount *outcounts;

    drift_log_fn log;
    void *log_ud;

    /* loop thread only */
    struct vpair **vtab;
    size_t vtab_n, n_pairs;
    struct det *dets;
    struct drift_event recent[RECENT_EVENTS];
    size_t recent_pos, recent_len;
    int64_t last_retention_ms;        /* writer only */
    int retention_pending;            /* writer only: retention stopped early */

    /* Where drift_record_make puts records (see struct drift_seg). */
    struct drift_seg *seg;            /* loop only: the segment being filled */
    pthread_mutex_t segmu;            /* guards free_segs */
    struct drift_seg *free_segs;
    int n_free_segs;
};

/* Records live in segments: large blocks that the loop fills front to back
 * (a pointer bump per record) and that go back on a free list once every
 * record in them has been written. Why: a malloc per record on the loop and
 * a free per record on the writer meant cross-thread frees into the loop's
 * arena, and the writer walked the batch once more to hand blocks back.
 * Now the loop makes a record with no allocation, the writer reads records
 * in the order they were laid out, and releasing a batch costs one atomic
 * subtraction per segment.
 *
 * refs counts the records not yet released, plus SEG_OPEN while the loop
 * still fills the segment, so that it cannot reach 0 before the loop has
 * said how many records it made there (seg_seal). Whoever brings it
 * to 0 recycles the segment. */
#define SEG_SIZE (256u * 1024)
#define SEG_RECORD_MAX (16u * 1024)   /* larger records get their own malloc */
#define SEG_OPEN (1L << 40)
#define SEG_KEEP 32                   /* free segments kept for reuse (8 MiB) */

struct drift_seg {
    struct drift *d;
    struct drift_seg *next;           /* on the free list */
    long refs;                        /* atomic */
    long made;                        /* loop only: records made here */
    size_t used;                      /* loop only: bytes of data used */
    _Alignas(16) char data[];
};

static void seg_recycle(struct drift_seg *g)
{
    struct drift *d = g->d;
    pthread_mutex_lock(&d->segmu);
    if (d->n_free_segs < SEG_KEEP) {
        g->next = d->free_segs;
        d->free_segs = g;
        d->n_free_segs++;
        g = NULL;
    }
    pthread_mutex_unlock(&d->segmu);
    free(g);
}

void drift_seg_release(struct drift_seg *g, long n)
{
    if (__atomic_sub_fetch(&g->refs, n, __ATOMIC_ACQ_REL) == 0)
        seg_recycle(g);
}

/* The loop is done filling g. */
static void seg_seal(struct drift_seg *g)
{
    drift_seg_release(g, SEG_OPEN - g->made);
}

/* n bytes (a multiple of 16) for a record, from the loop's segment. */
static void *seg_alloc(struct drift *d, size_t n, struct drift_seg **gout)
{
    struct drift_seg *g = d->seg;
    if (!g || g->used + n > SEG_SIZE - sizeof *g) {
        if (g)
            seg_seal(g);
        pthread_mutex_lock(&d->segmu);
        if ((g = d->free_segs)) {
            d->free_segs = g->next;
            d->n_free_segs--;
        }
        pthread_mutex_unlock(&d->segmu);
        if (!g && !(g = malloc(SEG_SIZE))) {
            d->seg = NULL;
            return NULL;
        }
        g->d = d;
        g->next = NULL;
        g->made = 0;
        g->used = 0;
        __atomic_store_n(&g->refs, SEG_OPEN, __ATOMIC_RELAXED);
        d->seg = g;
    }
    void *p = g->data + g->used;
    g->used += n;
    g->made++;
    *gout = g;
    return p;
}

static void segs_free(struct drift *d)
{
    if (d->seg) {
        struct drift_seg *g = d->seg;
        d->seg = NULL;
        seg_seal(g);                  /* recycled now if nothing in it is alive */
    }
    while (d->free_segs) {
        struct drift_seg *g = d->free_segs;
        d->free_segs = g->next;
        free(g);
    }
    d->n_free_segs = 0;
}

static void default_log(void *ud, const char *level, const char *msg)
{
    fprintf(stderr, "drift %s: %s\n", level, msg);
}

static void logf_(struct drift *d, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->log(d->log_ud, level, msg);
}

void drift_set_log(struct drift *d, drift_log_fn fn, void *ud)
{
    d->log = fn ? fn : default_log;
    d->log_ud = ud;
}

/* Append an item. force: accept even when the queue is full (events). */
static int enqueue(struct drift *d, struct item *it, int force)
{
    pthread_mutex_lock(&d->mu);
    if (!force && (d->qlen >= DRIFT_QUEUE_MAX || d->qbytes + it->bytes > DRIFT_QUEUE_MAX_BYTES)) {
        d->st.dropped++;
        pthread_mutex_unlock(&d->mu);
        item_free(it);
        return -1;
    }
    it->next = NULL;
    if (d->tail)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    d->qbytes += it->bytes;
    if (d->qlen++ == 0) {
        d->first_arrival_ms = mono_ms();
        pthread_cond_signal(&d->work);
    } else if (d->qlen == BATCH_SOFT_MAX) {
        pthread_cond_signal(&d->work);
    }
    d->seq_pushed++;
    d->st.pushed++;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

void drift_push(struct drift *d, struct drift_record *r)
{
    if (!r)
        return;
    if (!d) {
        drift_record_free(r);
        return;
    }
    struct item *it;
    if (r->block_size) {              /* drift_record_make left room for it */
        it = (struct item *)(void *)((char *)r + sizeof *r);
        memset(it, 0, sizeof *it);
        it->in_record = 1;
    } else if (!(it = calloc(1, sizeof *it))) {
        pthread_mutex_lock(&d->mu);
        d->st.dropped++;
        pthread_mutex_unlock(&d->mu);
        drift_record_free(r);
        return;
    }
    if (!r->ts_ms)
        r->ts_ms = drift_now_ms();
    it->kind = IT_RECORD;
    it->rec = r;
    it->bytes = r->request_raw_len + (r->output_text ? strlen(r->output_text) : 0);
    enqueue(d, it, 0);
}

static int record_set_request(struct drift_hasher *h, struct drift_record *r, const cJSON *body)
{
    if (!r || drift_canonical_request_hash_with(h, body, r->request_hash) != 0)
        return -1;
    r->deterministic = drift_request_is_deterministic(body, &r->seed, &r->has_seed);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!r->requested_model && cJSON_IsString(m) && !(r->requested_model = strdup(m->valuestring)))
        return -1;
    return 0;
}

int drift_record_set_request(struct drift_record *r, const cJSON *body)
{
    return record_set_request(NULL, r, body);
}

int drift_record_set_output(struct drift *d, struct drift_record *r, const char *text,
                            size_t len)
{
    if (!d || !r)
        return -1;
    /* the length is kept even with store_outputs = none: like the token
     * counts, it says how much was answered, not what */
    r->output_len = drift_text_chars(text, len);
    if (d->store_outputs == CFG_STORE_NONE)
        return 0;
    /* a copy now, the hash on the writer thread (write_record) */
    r->output_hash[0] = '\0';
    drift_record_free_field(r, r->output_text);
    r->output_text = malloc(len + 1);
    if (!r->output_text)
        return -1;
    if (len)
        memcpy(r->output_text, text, len);
    r->output_text[len] = '\0';
    return 0;
}

struct drift_record *drift_record_make(struct drift *d, const struct drift_record_fields *f)
{
    if (!d || !f)
        return NULL;
    const char *strs[9] = {f->request_id, f->key_name, f->route, f->target,
                           f->requested_model, f->served_model, f->system_fingerprint,
                           f->upstream_request_id, f->version_headers};
    size_t lens[9], size = sizeof(struct drift_record) + sizeof(struct item);
    for (int i = 0; i < 9; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
        size += lens[i];
    }
    const char *body = f->request_body;
    size_t body_len = body ? f->request_body_len : 0;
    if (body)
        size += body_len + 1;
    int keep_output = f->output && (d->store_outputs != CFG_STORE_NONE || f->keep_output);
    if (keep_output)
        size += f->output_len + 1;
    struct drift_record *r = NULL;
    struct drift_seg *seg = NULL;
    size = (size + 15) & ~(size_t)15;
    if (size <= SEG_RECORD_MAX)
        r = seg_alloc(d, size, &seg);
    if (!r && !(r = malloc(size)))
        return NULL;
    memset(r, 0, sizeof *r);
    r->probe_correct = r->probe_changed = r->probe_parsed = r->probe_refused = -1;
    r->output_len = -1;
    r->ttft_ms = -1;
    r->block_size = size;
    r->seg = seg;
    char *p = (char *)r + sizeof *r + sizeof(struct item);
    char **dst[9] = {&r->request_id, &r->key_name, &r->route, &r->target,
                     &r->requested_model, &r->served_model, &r->system_fingerprint,
                     &r->upstream_request_id, &r->version_headers};
    for (int i = 0; i < 9; i++) {
        if (!strs[i])
            continue;
        memcpy(p, strs[i], lens[i]);
        *dst[i] = p;
        p += lens[i];
    }
    if (body) {
        if (body_len)
            memcpy(p, body, body_len);
        p[body_len] = '\0';
        r->request_raw = p;
        r->request_raw_len = body_len;
        p += body_len + 1;
    }
    if (f->output) {
        r->output_len = drift_text_chars(f->output, f->output_len);
        if (keep_output) {          /* hashed by the writer */
            if (f->output_len)
                memcpy(p, f->output, f->output_len);
            p[f->output_len] = '\0';
            r->output_text = p;
        }
    }
    return r;
}

int drift_record_set_request_raw(struct drift_record *r, const char *body, size_t len)
{
    if (!r)
        return -1;
    drift_record_free_field(r, r->request_raw);
    r->request_raw = malloc(len + 1);
    r->request_raw_len = 0;
    if (!r->request_raw)
        return -1;
    if (len)
        memcpy(r->request_raw, body, len);
    r->request_raw[len] = '\0';
    r->request_raw_len = len;
    return 0;
}

static struct item *item_new(enum item_kind k, const char *a, const char *b, const char *c,
                             const char *dd)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->kind = k;
    it->a = drift_strdup(a);
    it->b = drift_strdup(b);
    it->c = drift_strdup(c);
    it->d = drift_strdup(dd);
    if ((a && !it->a) || (b && !it->b) || (c && !it->c) || (dd && !it->d)) {
        item_free(it);
        return NULL;
    }
    return it;
}

static void ev_copy(struct drift_event *dst, const struct drift_event *src)
{
    dst->ts_ms = src->ts_ms;
    dst->kind = drift_strdup(src->kind);
    dst->target = drift_strdup(src->target);
    dst->subject = drift_strdup(src->subject);
    dst->old_value = drift_strdup(src->old_value);
    dst->new_value = drift_strdup(src->new_value);
    dst->summary = drift_strdup(src->summary);
    dst->evidence = drift_strdup(src->evidence);
}

/* Loop side: remember, count, log and queue a new event. */
static void raise_event(struct drift *d, const struct drift_event *ev)
{
    struct drift_event *slot = &d->recent[d->recent_pos];
    drift_event_clear(slot);
    ev_copy(slot, ev);
    d->recent_pos = (d->recent_pos + 1) % RECENT_EVENTS;
    if (d->recent_len < RECENT_EVENTS)
        d->recent_len++;
    pthread_mutex_lock(&d->mu);
    d->st.events++;
    pthread_mutex_unlock(&d->mu);
    logf_(d, "warn", "%s drift on %s (%s): %s", ev->kind, ev->target ? ev->target : "?",
          ev->subject ? ev->subject : "?", ev->summary ? ev->summary : "");
    struct item *it = calloc(1, sizeof *it);
    if (!it)
        return;
    it->kind = IT_EVENT;
    ev_copy(&it->ev, ev);
    enqueue(d, it, 1);
}

/* ---- schema ---------------------------------------------------------------------- */

/* migrations[i] takes the schema from version i to i+1. To add version 2,
 * append its SQL here and bump DRIFT_SCHEMA_VERSION in drift.h. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE drift_records("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " request_id TEXT, key_name TEXT, route TEXT, target TEXT,"
    " requested_model TEXT, served_model TEXT, system_fingerprint TEXT,"
    " upstream_request_id TEXT, version_headers TEXT,"
    " status INTEGER, latency_ms INTEGER, ttft_ms INTEGER,"
    " prompt_tokens INTEGER, completion_tokens INTEGER,"
    " request_hash TEXT, output_hash TEXT, output_text TEXT,"
    " is_probe INTEGER NOT NULL DEFAULT 0, probe_suite TEXT, probe_id TEXT,"
    " probe_correct INTEGER, probe_answer TEXT, probe_changed INTEGER,"
    " is_shadow INTEGER NOT NULL DEFAULT 0, deterministic INTEGER NOT NULL DEFAULT 0,"
    " seed INTEGER);"
    "CREATE INDEX drift_records_ts ON drift_records(ts_ms);"
    "CREATE INDEX drift_records_target_ts ON drift_records(target, ts_ms);"
    "CREATE INDEX drift_records_request_id ON drift_records(request_id);"
    "CREATE TABLE drift_versions("
    " target TEXT NOT NULL, requested_model TEXT NOT NULL, field TEXT NOT NULL,"
    " value TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    " count INTEGER NOT NULL,"
    " PRIMARY KEY(target, requested_model, field, value));"
    "CREATE TABLE drift_events("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
    " target TEXT, subject TEXT, old_value TEXT, new_value TEXT, summary TEXT,"
    " evidence TEXT, acknowledged INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX drift_events_ts ON drift_events(ts_ms);"
    "CREATE TABLE drift_outputs("
    " target TEXT NOT NULL, request_hash TEXT NOT NULL, output_hash TEXT NOT NULL,"
    " fingerprint TEXT, ts_ms INTEGER NOT NULL,"
    " PRIMARY KEY(target, request_hash)) WITHOUT ROWID;"
    "CREATE TABLE drift_output_changes("
    " target TEXT NOT NULL, fingerprint TEXT NOT NULL,"
    " compared INTEGER NOT NULL, changed INTEGER NOT NULL,"
    " PRIMARY KEY(target, fingerprint));"
    "CREATE TABLE drift_probe_baseline("
    " suite TEXT NOT NULL, target TEXT NOT NULL, probe_id TEXT NOT NULL, answer TEXT,"
    " PRIMARY KEY(suite, target, probe_id));"
    "CREATE TABLE drift_detectors("
    " suite TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, updated_ms INTEGER,"
    " PRIMARY KEY(suite, target));",
    /* 1 -> 2: verbosity and refusal/format-failure rates need the answer's
     * length and whether a probe answer was parsed, also when the text is
     * not kept. Older rows get what their stored text tells (length() counts
     * characters, as drift_text_chars does). Two of the three indexes on
     * drift_records go, because every insert pays for them on the writer
     * thread (measured: each about 15% of a record's cost): request_id
     * (random keys) was never used, since `drift compare` pairs ids it
     * computes; (target, ts_ms) only served queries that the ts_ms index
     * serves nearly as well (a time range, then grouped by target). */
    "ALTER TABLE drift_records ADD COLUMN output_len INTEGER;"
    "ALTER TABLE drift_records ADD COLUMN probe_parsed INTEGER;"
    "ALTER TABLE drift_records ADD COLUMN probe_refused INTEGER;"
    "UPDATE drift_records SET output_len = length(output_text) WHERE output_text IS NOT NULL;"
    "UPDATE drift_records SET probe_parsed = (probe_answer IS NOT NULL)"
    " WHERE is_probe = 1 AND probe_correct IS NOT NULL;"
    "UPDATE drift_records SET probe_refused = drift_is_refusal(output_text)"
    " WHERE probe_parsed = 0 AND output_text IS NOT NULL;"
    "UPDATE drift_records SET probe_refused = 0 WHERE probe_parsed = 1;"
    "DROP INDEX IF EXISTS drift_records_request_id;"
    "DROP INDEX IF EXISTS drift_records_target_ts;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == DRIFT_SCHEMA_VERSION,
               "one migration per schema version");

/* SQL function for the 1 -> 2 migration: drift_is_refusal(text) */
static void sql_is_refusal(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    const unsigned char *t = sqlite3_value_text(argv[0]);
    sqlite3_result_int(cx, t ? drift_output_is_refusal((const char *)t) : 0);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char what[512];
    snprintf(what, sizeof what, "%s: schema", path);
    if (exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", err,
             errlen, what))
        return -1;
    int version = 0, have_row = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
        have_row = 1;
    }
    sqlite3_finalize(st);
    int latest = (int)(sizeof migrations / sizeof migrations[0]);
    if (sqlite3_create_function(db, "drift_is_refusal", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                NULL, sql_is_refusal, NULL, NULL) != SQLITE_OK) {
        set_err(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
        return -1;
    }
    if (version > latest) {
        set_err(err, errlen,
                "%s: database schema version %d is newer than this llmpin understands (%d)",
                path, version, latest);
        return -1;
    }
    for (int v = version; v < latest; v++) {
        char step[600];
        snprintf(step, sizeof step, "%s: migration to version %d", path, v + 1);
        if (exec(db, "BEGIN IMMEDIATE", err, errlen, step))
            return -1;
        if (exec(db, migrations[v], err, errlen, step)) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        char sql[128];
        if (!have_row)
            snprintf(sql, sizeof sql, "INSERT INTO schema_version(version) VALUES(%d)", v + 1);
        else
            snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", v + 1);
        have_row = 1;
        if (exec(db, sql, err, errlen, step) || exec(db, "COMMIT", err, errlen, step)) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    return 0;
}

/* ---- version map (loop thread) ----------------------------------------------------- */

static size_t hash2(const char *a, const char *b)
{
    size_t h = 1469598103934665603ULL;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct vpair *vpair_get(struct drift *d, const char *target, const char *req, int create)
{
    size_t slot = hash2(target, req) % d->vtab_n;
    for (struct vpair *p = d->vtab[slot]; p; p = p->next)
        if (strcmp(p->target, target) == 0 && strcmp(p->requested, req) == 0)
            return p;
    /* requested model names come from clients: bound what they can make us keep */
    if (!create || d->n_pairs >= MAX_VERSION_PAIRS)
        return NULL;
    struct vpair *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->target = strdup(target);
    p->requested = strdup(req);
    if (!p->target || !p->requested) {
        free(p->target);
        free(p->requested);
        free(p);
        return NULL;
    }
    p->model.current = p->fp.current = -1;
    p->next = d->vtab[slot];
    d->vtab[slot] = p;
    d->n_pairs++;
    return p;
}

static int vfield_find(const struct vfield *f, const char *v)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].value, v) == 0)
            return (int)i;
    return -1;
}

static int vfield_add(struct vfield *f, const char *v, int64_t first, int64_t last, int64_t count)
{
    if (f->n >= MAX_VALUES_PER_FIELD) {
        /* a backend that reports a new fingerprint every time: forget the
         * value seen longest ago (it stays in the database) */
        size_t old = 0;
        for (size_t i = 1; i < f->n; i++)
            if (f->v[i].last_ms < f->v[old].last_ms)
                old = i;
        char *nv = strdup(v);
        if (!nv)
            return -1;
        free(f->v[old].value);
        memset(&f->v[old], 0, sizeof f->v[old]);
        f->v[old].value = nv;
        f->v[old].first_ms = first;
        f->v[old].last_ms = last;
        f->v[old].count = count;
        return (int)old;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        struct vval *nv = realloc(f->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        f->v = nv;
        f->cap = cap;
    }
    struct vval *e = &f->v[f->n];
    memset(e, 0, sizeof *e);
    if (!(e->value = strdup(v)))
        return -1;
    e->first_ms = first;
    e->last_ms = last;
    e->count = count;
    return (int)f->n++;
}

static void vfield_free(struct vfield *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].value);
    free(f->v);
}

static void send_version(struct drift *d, struct vpair *p, const char *field, struct vval *v,
                         int64_t now)
{
    struct item *it = item_new(IT_VERSION, p->target, p->requested, field, v->value);
    if (!it)
        return;
    it->n = v->pending;
    it->t0 = v->first_ms;
    it->t1 = v->last_ms;
    v->pending = 0;
    v->flushed_ms = now;
    enqueue(d, it, 1);
}

/* Returns 1 when v is new for a field that already had values. */
static int observe_field(struct drift *d, struct vpair *p, struct vfield *f, const char *field,
                         const char *v, int64_t now, int *is_new)
{
    *is_new = 0;
    if (!v || !*v)
        return 0;
    int i = vfield_find(f, v);
    int alarm = 0;
    if (i < 0) {
        alarm = f->n > 0;
        *is_new = 1;
        i = vfield_add(f, v, now, now, 0);
        if (i < 0)
            return 0;
    }
    struct vval *e = &f->v[i];
    e->count++;
    e->pending++;
    e->last_ms = now;
    f->current = i;
    if (*is_new || now - e->flushed_ms >= VERSION_FLUSH_MS)
        send_version(d, p, field, e, now);
    return alarm;
}

int drift_observe_version(struct drift *d, const char *target, const char *requested_model,
                          const char *served_model, const char *fingerprint,
                          struct drift_event *ev_out)
{
    if (ev_out)
        memset(ev_out, 0, sizeof *ev_out);
    if (!d || !target)
        return 0;
    if (!requested_model)
        requested_model = "";
    struct vpair *p = vpair_get(d, target, requested_model, 1);
    if (!p)
        return 0;
    int64_t now = drift_now_ms();
    /* the common case (known values) allocates nothing */
    int maybe_new = (served_model && *served_model && vfield_find(&p->model, served_model) < 0) ||
                    (fingerprint && *fingerprint && vfield_find(&p->fp, fingerprint) < 0);
    char old_buf[512];                /* not "= \"\"": that zeroes all of it per request */
    old_buf[0] = '\0';
    char *old_model_c = NULL, *old_fp_c = NULL;
    if (maybe_new) {
        const char *om = p->model.current >= 0 ? p->model.v[p->model.current].value : NULL;
        const char *of = p->fp.current >= 0 ? p->fp.v[p->fp.current].value : NULL;
        snprintf(old_buf, sizeof old_buf, "%s / %s", om ? om : "-", of ? of : "-");
        old_model_c = drift_strdup(om);
        old_fp_c = drift_strdup(of);
    }
    int new_m, new_f;
    int a_m = observe_field(d, p, &p->model, "served_model", served_model, now, &new_m);
    int a_f = observe_field(d, p, &p->fp, "system_fingerprint", fingerprint, now, &new_f);
    int alarm = a_m || a_f;
    if (alarm) {
        struct drift_event ev = {0};
        char new_buf[512], summary[1400];
        const char *cur_m = p->model.current >= 0 ? p->model.v[p->model.current].value : "-";
        const char *cur_f = p->fp.current >= 0 ? p->fp.v[p->fp.current].value : "-";
        snprintf(new_buf, sizeof new_buf, "%s / %s", cur_m, cur_f);
        snprintf(summary, sizeof summary,
                 "%s answered a request for \"%s\" with %s%s%s%s%s never seen before "
                 "(previously %s)",
                 target, requested_model, a_m ? "model " : "", a_m ? served_model : "",
                 a_m && a_f ? " and " : "", a_f ? "fingerprint " : "", a_f ? fingerprint : "",
                 old_buf);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "requested_model", requested_model);
        cJSON *ch = cJSON_AddArrayToObject(e, "changed");
        if (a_m)
            cJSON_AddItemToArray(ch, cJSON_CreateString("served_model"));
        if (a_f)
            cJSON_AddItemToArray(ch, cJSON_CreateString("system_fingerprint"));
        cJSON_AddItemToObject(e, "old_served_model",
                              old_model_c ? cJSON_CreateString(old_model_c) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "new_served_model",
                              served_model ? cJSON_CreateString(served_model) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "old_fingerprint",
                              old_fp_c ? cJSON_CreateString(old_fp_c) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "new_fingerprint",
                              fingerprint ? cJSON_CreateString(fingerprint) : cJSON_CreateNull());
        cJSON_AddNumberToObject(e, "known_models", (double)p->model.n);
        cJSON_AddNumberToObject(e, "known_fingerprints", (double)p->fp.n);
        ev.ts_ms = now;
        ev.kind = strdup("version");
        ev.target = strdup(target);
        ev.subject = strdup(requested_model);
        ev.old_value = strdup(old_buf);
        ev.new_value = strdup(new_buf);
        ev.summary = strdup(summary);
        ev.evidence = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        raise_event(d, &ev);
        if (ev_out)
            *ev_out = ev;
        else
            drift_event_clear(&ev);
    }
    free(old_model_c);
    free(old_fp_c);
    return alarm;
}

/* ---- detectors (loop thread) --------------------------------------------------------- */

static struct det *det_get(struct drift *d, const char *suite, const char *target, int create)
{
    for (struct det *x = d->dets; x; x = x->next)
        if (strcmp(x->suite, suite) == 0 && strcmp(x->target, target) == 0)
            return x;
    if (!create)
        return NULL;
    struct det *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->suite = strdup(suite);
    x->target = strdup(target);
    x->dt = drift_detector_new(&d->dprm);
    if (!x->suite || !x->target || !x->dt) {
        free(x->suite);
        free(x->target);
        drift_detector_free(x->dt);
        free(x);
        return NULL;
    }
    x->next = d->dets;
    d->dets = x;
    return x;
}

int drift_probe_result(struct drift *d, const char *suite, const struct drift_probe *p,
                       struct drift_record *r, struct drift_event *ev_out)
{
    if (ev_out)
        memset(ev_out, 0, sizeof *ev_out);
    if (!d || !suite || !p || !r || !r->target) {
        drift_record_free(r);
        return -1;
    }
    if (!r->ts_ms)
        r->ts_ms = drift_now_ms();
    r->is_probe = 1;
    drift_record_free_field(r, r->probe_suite);
    drift_record_free_field(r, r->probe_id);
    r->probe_suite = strdup(suite);
    r->probe_id = strdup(p->id);
    if (!r->request_hash[0] && !r->request_raw) {   /* else the writer hashes the body */
        cJSON *req = drift_probe_request(p, r->requested_model ? r->requested_model : r->target);
        if (req) {
            drift_canonical_request_hash(req, r->request_hash);
            r->deterministic = drift_request_is_deterministic(req, &r->seed, &r->has_seed);
            cJSON_Delete(req);
        }
    }
    if (r->output_text && r->output_len < 0)
        r->output_len = drift_text_chars(r->output_text, strlen(r->output_text));

    int alarm = 0;
    int graded = r->output_text && r->status < 400;
    if (!graded) {
        r->probe_correct = -1;
        drift_push(d, r);
        return 0;
    }
    char answer[512];
    int has_answer = drift_probe_extract(p, r->output_text, answer, sizeof answer) == 0;
    r->probe_correct = drift_probe_grade(p, r->output_text);
    r->probe_parsed = has_answer;
    r->probe_refused = !has_answer && drift_output_is_refusal(r->output_text);
    drift_record_free_field(r, r->probe_answer);
    r->probe_answer = has_answer ? strdup(answer) : NULL;

    struct det *x = det_get(d, suite, r->target, 1);
    if (x) {
        x->graded++;
        x->correct += r->probe_correct == 1;
        x->no_answer += !has_answer;
        x->refused += r->probe_refused == 1;
        if (r->output_len >= 0) {
            x->with_len++;
            x->sum_len += r->output_len;
        }
        const char *kind = NULL;
        char *evidence = NULL, summary[1024];
        int changed, new_bl, rebl;
        alarm = drift_detector_feed_ex(x->dt, p->id, r->probe_correct,
                                       has_answer ? answer : NULL, &kind, &evidence, summary,
                                       sizeof summary, &changed, &new_bl, &rebl);
        r->probe_changed = changed;
        if (changed >= 0) {
            x->compared++;
            x->changed += changed == 1;
        }
        if (new_bl) {
            struct item *it = item_new(IT_BASELINE, suite, r->target, p->id,
                                       has_answer ? answer : "<none>");
            if (it)
                enqueue(d, it, 1);
        }
        if (rebl) {
            struct item *it = item_new(IT_BASELINE_CLEAR, suite, r->target, NULL, NULL);
            if (it)
                enqueue(d, it, 1);
        }
        cJSON *stj = drift_detector_to_json(x->dt);
        char *sts = stj ? cJSON_PrintUnformatted(stj) : NULL;
        cJSON_Delete(stj);
        if (sts) {
            struct item *it = item_new(IT_DETECTOR, suite, r->target, NULL, NULL);
            if (it) {
                it->c = sts;
                enqueue(d, it, 1);
            } else {
                free(sts);
            }
        }
        if (alarm) {
            struct drift_event ev = {0};
            char full[1400], oldv[32], newv[32];
            cJSON *e = evidence ? cJSON_Parse(evidence) : NULL;
            const cJSON *ba = cJSON_GetObjectItemCaseSensitive(e, "baseline_accuracy");
            const cJSON *ra = cJSON_GetObjectItemCaseSensitive(e, "recent_accuracy");
            snprintf(oldv, sizeof oldv, "%.1f%%", cJSON_IsNumber(ba) ? 100 * ba->valuedouble : 0);
            snprintf(newv, sizeof newv, "%.1f%%", cJSON_IsNumber(ra) ? 100 * ra->valuedouble : 0);
            cJSON_Delete(e);
            snprintf(full, sizeof full, "probe suite %s on %s: %s", suite, r->target, summary);
            ev.ts_ms = r->ts_ms;
            ev.kind = strdup(kind);
            ev.target = strdup(r->target);
            ev.subject = strdup(suite);
            ev.old_value = strdup(oldv);
            ev.new_value = strdup(newv);
            ev.summary = strdup(full);
            ev.evidence = evidence;
            raise_event(d, &ev);
            if (ev_out)
                *ev_out = ev;
            else
                drift_event_clear(&ev);
        } else {
            free(evidence);
        }
    }
    drift_push(d, r);
    return alarm;
}

/* ---- the writer -------------------------------------------------------------------------- */

/* Records in a row are inserted 64 or 16 to a statement: statement start,
 * reset and halt are paid once per statement (measured: 16 rows, ~10% less
 * writer time per record than one INSERT per row; 64, a few % more),
 * provided the statement journal a multi-row INSERT needs stays in memory:
 * temp_store = MEMORY. 16 x 30 parameters stay under SQLite's oldest limit
 * (999); 64 rows are used where the library allows 1,920. */
#define REC_ROWS 64
#define REC_ROWS_SMALL 16
#define REC_COLS 30

struct wstmts {
    sqlite3_stmt *rec, *rec_16, *rec_64, *ev, *ver, *bl, *blclr, *det, *out_get, *out_put, *oc;
    struct drift_hasher h;
    struct drift_reqscan scan;        /* reqscan.c's reusable scratch */
};

/* SQLITE_STATIC: every bound string outlives the step (the item is freed
 * after the batch), so SQLite need not copy it. */
static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void outcount_add(struct drift *d, const char *target, const char *fp, int changed)
{
    /* under d->mu */
    struct outcount *o;
    for (o = d->outcounts; o; o = o->next)
        if (strcmp(o->target, target) == 0 && strcmp(o->fingerprint, fp) == 0)
            break;
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o)
            return;
        o->target = strdup(target);
        o->fingerprint = strdup(fp);
        if (!o->target || !o->fingerprint) {
            free(o->target);
            free(o->fingerprint);
            free(o);
            return;
        }
        o->next = d->outcounts;
        d->outcounts = o;
    }
    o->compared++;
    o->changed += changed;
    d->st.output_compared++;
    d->st.output_changed += changed;
}

/* The hashing the event loop left to us (drift_record_set_request_raw,
 * drift_record_set_output): straight from the raw body (reqscan.c), or
 * through cJSON when the scanner is unsure. */
static void request_from_body(struct wstmts *w, struct drift_record *r)
{
    struct drift_reqinfo in;
    if (drift_request_scan(&w->scan, &w->h, r->request_raw, r->request_raw_len, &in) ==
        DRIFT_REQ_OK) {
        memcpy(r->request_hash, in.hash, sizeof r->request_hash);
        r->deterministic = in.deterministic;
        r->has_seed = in.has_seed;
        r->seed = in.seed;
        if (!r->requested_model && in.model)
            r->requested_model = strndup(in.model, in.model_len);
        return;
    }
    cJSON *body = cJSON_ParseWithLength(r->request_raw, r->request_raw_len);
    if (body)
        record_set_request(&w->h, r, body);
    cJSON_Delete(body);
}

static void prepare_record(struct drift *d, struct wstmts *w, struct drift_record *r)
{
    if (r->request_raw && !r->request_hash[0])
        request_from_body(w, r);
    if (d->store_outputs != CFG_STORE_NONE && r->output_text && !r->output_hash[0])
        drift_sha256_hex(&w->h, r->output_text, strlen(r->output_text), r->output_hash);
}

/* Bind r as the row whose first parameter is number b + 1 of s. */
static void bind_record(struct drift *d, sqlite3_stmt *s, int b, const struct drift_record *r)
{
    int keep_hash = d->store_outputs != CFG_STORE_NONE;
    int keep_text = d->store_outputs == CFG_STORE_FULL ||
                    (r->is_probe && d->store_outputs != CFG_STORE_NONE);
    sqlite3_bind_int64(s, b + 1, r->ts_ms);
    bind_text(s, b + 2, r->request_id);
    bind_text(s, b + 3, r->key_name);
    bind_text(s, b + 4, r->route);
    bind_text(s, b + 5, r->target);
    bind_text(s, b + 6, r->requested_model);
    bind_text(s, b + 7, r->served_model);
    bind_text(s, b + 8, r->system_fingerprint);
    bind_text(s, b + 9, r->upstream_request_id);
    bind_text(s, b + 10, r->version_headers);
    sqlite3_bind_int(s, b + 11, r->status);
    sqlite3_bind_int(s, b + 12, r->latency_ms);
    if (r->ttft_ms >= 0)
        sqlite3_bind_int(s, b + 13, r->ttft_ms);
    sqlite3_bind_int(s, b + 14, r->prompt_tokens);
    sqlite3_bind_int(s, b + 15, r->completion_tokens);
    bind_text(s, b + 16, r->request_hash[0] ? r->request_hash : NULL);
    bind_text(s, b + 17, keep_hash && r->output_hash[0] ? r->output_hash : NULL);
    bind_text(s, b + 18, keep_text ? r->output_text : NULL);
    sqlite3_bind_int(s, b + 19, r->is_probe);
    bind_text(s, b + 20, r->probe_suite);
    bind_text(s, b + 21, r->probe_id);
    if (r->is_probe && r->probe_correct >= 0)
        sqlite3_bind_int(s, b + 22, r->probe_correct);
    bind_text(s, b + 23, r->probe_answer);
    if (r->is_probe && r->probe_changed >= 0)
        sqlite3_bind_int(s, b + 24, r->probe_changed);
    sqlite3_bind_int(s, b + 25, r->is_shadow);
    sqlite3_bind_int(s, b + 26, r->deterministic);
    if (r->has_seed)
        sqlite3_bind_int64(s, b + 27, r->seed);
    if (r->output_len >= 0)
        sqlite3_bind_int(s, b + 28, r->output_len);
    if (r->is_probe && r->probe_parsed >= 0)
        sqlite3_bind_int(s, b + 29, r->probe_parsed);
    if (r->is_probe && r->probe_refused >= 0)
        sqlite3_bind_int(s, b + 30, r->probe_refused);
}

/* Passive output drift of one stored record. */
static int record_output_drift(struct drift *d, struct wstmts *w, const struct drift_record *r)
{
    if (!r->deterministic || d->store_outputs == CFG_STORE_NONE || !r->output_hash[0] ||
        !r->request_hash[0] || !r->target || r->status >= 400)
        return 0;
    char prev[65] = "";
    sqlite3_bind_text(w->out_get, 1, r->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(w->out_get, 2, r->request_hash, -1, SQLITE_STATIC);
    if (sqlite3_step(w->out_get) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(w->out_get, 0);
        if (t)
            snprintf(prev, sizeof prev, "%s", (const char *)t);
    }
    sqlite3_reset(w->out_get);
    sqlite3_clear_bindings(w->out_get);
    sqlite3_bind_text(w->out_put, 1, r->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(w->out_put, 2, r->request_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(w->out_put, 3, r->output_hash, -1, SQLITE_STATIC);
    bind_text(w->out_put, 4, r->system_fingerprint);
    sqlite3_bind_int64(w->out_put, 5, r->ts_ms);
    if (step_done(w->out_put))
        return -1;
    if (prev[0]) {
        int changed = strcmp(prev, r->output_hash) != 0;
        const char *fp = r->system_fingerprint ? r->system_fingerprint : "";
        sqlite3_bind_text(w->oc, 1, r->target, -1, SQLITE_STATIC);
        sqlite3_bind_text(w->oc, 2, fp, -1, SQLITE_STATIC);
        sqlite3_bind_int(w->oc, 3, changed);
        if (step_done(w->oc))
            return -1;
        pthread_mutex_lock(&d->mu);
        outcount_add(d, r->target, fp, changed);
        pthread_mutex_unlock(&d->mu);
    }
    return 0;
}

/* Store n records (1, REC_ROWS_SMALL or REC_ROWS) with one INSERT. Returns how many
 * were stored. */
static int write_records(struct drift *d, struct wstmts *w, struct item **its, int n)
{
    sqlite3_stmt *s = n == REC_ROWS ? w->rec_64 : n == REC_ROWS_SMALL ? w->rec_16 : w->rec;
    for (int i = 0; i < n; i++) {
        prepare_record(d, w, its[i]->rec);
        bind_record(d, s, i * REC_COLS, its[i]->rec);
    }
    if (step_done(s))
        return 0;
    int ok = n;
    for (int i = 0; i < n; i++)
        if (record_output_drift(d, w, its[i]->rec))
            ok = -1;
    return ok;
}

static int write_item(struct drift *d, struct wstmts *w, struct item *it)
{
    sqlite3_stmt *s;
    switch (it->kind) {
    case IT_RECORD:
        return write_records(d, w, &it, 1) == 1 ? 0 : -1;
    case IT_EVENT:
        s = w->ev;
        sqlite3_bind_int64(s, 1, it->ev.ts_ms);
        bind_text(s, 2, it->ev.kind ? it->ev.kind : "unknown");
        bind_text(s, 3, it->ev.target);
        bind_text(s, 4, it->ev.subject);
        bind_text(s, 5, it->ev.old_value);
        bind_text(s, 6, it->ev.new_value);
        bind_text(s, 7, it->ev.summary);
        bind_text(s, 8, it->ev.evidence);
        return step_done(s);
    case IT_VERSION:
        s = w->ver;
        bind_text(s, 1, it->a);
        bind_text(s, 2, it->b);
        bind_text(s, 3, it->c);
        bind_text(s, 4, it->d);
        sqlite3_bind_int64(s, 5, it->t0);
        sqlite3_bind_int64(s, 6, it->t1);
        sqlite3_bind_int64(s, 7, it->n);
        return step_done(s);
    case IT_BASELINE:
        s = w->bl;
        bind_text(s, 1, it->a);
        bind_text(s, 2, it->b);
        bind_text(s, 3, it->c);
        bind_text(s, 4, it->d);
        return step_done(s);
    case IT_BASELINE_CLEAR:
        s = w->blclr;
        bind_text(s, 1, it->a);
        bind_text(s, 2, it->b);
        return step_done(s);
    case IT_DETECTOR:
        s = w->det;
        bind_text(s, 1, it->a);
        bind_text(s, 2, it->b);
        bind_text(s, 3, it->c);
        sqlite3_bind_int64(s, 4, drift_now_ms());
        return step_done(s);
    }
    return -1;
}

/* one, the INSERT of one row, repeated for n rows */
static int prepare_rows(sqlite3 *db, const char *one, int n, sqlite3_stmt **out)
{
    const char *values = strstr(one, " VALUES(");
    size_t head = (size_t)(values - one) + 7, row = strlen(values + 7);
    char *many = malloc(head + (size_t)n * (row + 1) + 1);
    if (!many)
        return -1;
    memcpy(many, one, head);
    char *p = many + head;
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, values + 7, row);
        p += row;
    }
    *p = '\0';
    int rc = sqlite3_prepare_v2(db, many, -1, out, NULL);
    free(many);
    return rc == SQLITE_OK ? 0 : -1;
}

static int prepare_all(sqlite3 *db, struct wstmts *w)
{
    struct {
        sqlite3_stmt **s;
        const char *sql;
    } q[] = {
        {&w->rec, "INSERT INTO drift_records(ts_ms, request_id, key_name, route, target,"
                  " requested_model, served_model, system_fingerprint, upstream_request_id,"
                  " version_headers, status, latency_ms, ttft_ms, prompt_tokens,"
                  " completion_tokens, request_hash, output_hash, output_text, is_probe,"
                  " probe_suite, probe_id, probe_correct, probe_answer, probe_changed,"
                  " is_shadow, deterministic, seed, output_len, probe_parsed, probe_refused)"
                  " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
        {&w->ev, "INSERT INTO drift_events(ts_ms, kind, target, subject, old_value, new_value,"
                 " summary, evidence) VALUES(?,?,?,?,?,?,?,?)"},
        {&w->ver, "INSERT INTO drift_versions(target, requested_model, field, value,"
                  " first_seen_ms, last_seen_ms, count) VALUES(?,?,?,?,?,?,?)"
                  " ON CONFLICT(target, requested_model, field, value) DO UPDATE SET"
                  " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),"
                  " count = count + excluded.count"},
        {&w->bl, "INSERT OR REPLACE INTO drift_probe_baseline(suite, target, probe_id, answer)"
                 " VALUES(?,?,?,?)"},
        {&w->blclr, "DELETE FROM drift_probe_baseline WHERE suite = ? AND target = ?"},
        {&w->det, "INSERT OR REPLACE INTO drift_detectors(suite, target, state, updated_ms)"
                  " VALUES(?,?,?,?)"},
        {&w->out_get, "SELECT output_hash FROM drift_outputs WHERE target = ? AND request_hash = ?"},
        {&w->out_put, "INSERT OR REPLACE INTO drift_outputs(target, request_hash, output_hash,"
                      " fingerprint, ts_ms) VALUES(?,?,?,?,?)"},
        {&w->oc, "INSERT INTO drift_output_changes(target, fingerprint, compared, changed)"
                 " VALUES(?1, ?2, 1, ?3) ON CONFLICT(target, fingerprint) DO UPDATE SET"
                 " compared = compared + 1, changed = changed + ?3"},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (sqlite3_prepare_v2(db, q[i].sql, -1, q[i].s, NULL) != SQLITE_OK)
            return -1;
    /* the same INSERT with 16 and 64 rows */
    if (prepare_rows(db, q[0].sql, REC_ROWS_SMALL, &w->rec_16))
        return -1;
    if (sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, -1) >= REC_ROWS * REC_COLS &&
        prepare_rows(db, q[0].sql, REC_ROWS, &w->rec_64))
        return -1;
    return 0;
}

static void finalize_all(struct wstmts *w)
{
    drift_hasher_clear(&w->h);
    drift_reqscan_free(&w->scan);
    sqlite3_finalize(w->rec);
    sqlite3_finalize(w->rec_16);
    sqlite3_finalize(w->rec_64);
    sqlite3_finalize(w->ev);
    sqlite3_finalize(w->ver);
    sqlite3_finalize(w->bl);
    sqlite3_finalize(w->blclr);
    sqlite3_finalize(w->det);
    sqlite3_finalize(w->out_get);
    sqlite3_finalize(w->out_put);
    sqlite3_finalize(w->oc);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Age first, then size: delete the oldest records until the live pages fit
 * in retention_mb, then give the freed pages back to the file system. */
/* Deletions go RETENTION_CHUNK rows to a statement, and retention stops
 * between two of them when the catch-up thread waits for the connection
 * (the writer runs at idle priority: a long DELETE by a starved writer
 * would hold up recording); it resumes at the next batch. */
#define RETENTION_CHUNK 10000

static int retention_yield(struct drift *d)
{
    if (!__atomic_load_n(&d->catchup_waiting, __ATOMIC_ACQUIRE))
        return 0;
    d->retention_pending = 1;
    return 1;
}

static void retention(struct drift *d)
{
    char sql[256];
    int64_t deleted = 0;
    d->retention_pending = 0;
    if (d->retention_days > 0) {
        int64_t cutoff = drift_now_ms() - (int64_t)d->retention_days * 86400000;
        for (;;) {
            snprintf(sql, sizeof sql,
                     "DELETE FROM drift_records WHERE id IN (SELECT id FROM drift_records"
                     " WHERE ts_ms < %lld LIMIT %d)", (long long)cutoff, RETENTION_CHUNK);
            if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                break;
            int n = sqlite3_changes(d->db);
            deleted += n;
            if (n < RETENTION_CHUNK || retention_yield(d))
                break;
        }
        snprintf(sql, sizeof sql, "DELETE FROM drift_outputs WHERE ts_ms < %lld",
                 (long long)cutoff);
        sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    }
    if (d->retention_mb > 0 && !d->retention_pending) {
        /* oldest first, 5% of the rows (at most a chunk) at a time, until
         * the live pages fit; the page counts are cheap to read each round,
         * a count of the rows is read once */
        int64_t limit = (int64_t)d->retention_mb * 1024 * 1024;
        int64_t psize = query_int(d->db, "PRAGMA page_size");
        int64_t chunk = -1;
        for (int round = 0;; round++) {
            int64_t pages = query_int(d->db, "PRAGMA page_count");
            int64_t free_pages = query_int(d->db, "PRAGMA freelist_count");
            if (pages < 0 || free_pages < 0 || psize <= 0 || (pages - free_pages) * psize <= limit)
                break;
            if (round == 1000 || retention_yield(d)) {   /* 10M rows: go on at the next batch */
                d->retention_pending = 1;
                break;
            }
            if (chunk < 0) {
                chunk = query_int(d->db, "SELECT count(*) FROM drift_records") / 20 + 1;
                if (chunk > RETENTION_CHUNK)
                    chunk = RETENTION_CHUNK;
            }
            snprintf(sql, sizeof sql,
                     "DELETE FROM drift_records WHERE id IN (SELECT id FROM drift_records"
                     " ORDER BY id LIMIT %lld)", (long long)chunk);
            if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                break;
            int n = sqlite3_changes(d->db);
            deleted += n;
            if (n == 0)
                break;                     /* the rest is not records */
        }
    }
    if (deleted > 0) {
        sqlite3_exec(d->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
        pthread_mutex_lock(&d->mu);
        d->st.retention_deleted += (uint64_t)deleted;
        pthread_mutex_unlock(&d->mu);
    }
}

/* Whether the catch-up thread waits for the connection. Tests can hold the
 * writer here (drift_debug_stall_writer 2), as if it got no CPU, once it
 * has written something (started). */
static int handed_over(struct drift *d, int started)
{
    int held = 0;
    for (;;) {
        if (__atomic_load_n(&d->catchup_waiting, __ATOMIC_ACQUIRE))
            return 1;
        if (!started || __atomic_load_n(&d->stall_writer, __ATOMIC_RELAXED) != 2 ||
            __atomic_load_n(&d->stop, __ATOMIC_RELAXED))
            return 0;
        if (!held) {
            held = 1;
            pthread_mutex_lock(&d->mu);
            d->st.writer_stalls++;
            pthread_mutex_unlock(&d->mu);
        }
        usleep(2000);
    }
}

/* Write list in one transaction. The low-priority writer (catchup = 0)
 * stops early when the catch-up thread is waiting for the connection: it
 * commits what it has written and leaves the rest in *rest (else NULL). */
static void write_batch(struct drift *d, struct wstmts *w, struct item *list, int catchup,
                        struct item **rest, uint64_t *nrec)
{
    *nrec = 0;
    *rest = NULL;
    int ok = sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        logf_(d, "error", "%s: BEGIN failed: %s", d->db_path, sqlite3_errmsg(d->db));
    int item_errors = 0;
    for (struct item *it = list; it && ok; it = it->next) {
        if (!catchup && handed_over(d, it != list)) {
            *rest = it;
            break;
        }
        /* REC_ROWS (or REC_ROWS_SMALL) records in a row: one INSERT */
        struct item *run[REC_ROWS];
        int n = 0, most = w->rec_64 ? REC_ROWS : REC_ROWS_SMALL;
        for (struct item *x = it; x && x->kind == IT_RECORD && n < most; x = x->next)
            run[n++] = x;
        if (n < most && n >= REC_ROWS_SMALL)
            n = REC_ROWS_SMALL;
        if (n == REC_ROWS || n == REC_ROWS_SMALL) {
            int stored = write_records(d, w, run, n);
            if (stored != 0)
                *nrec += (uint64_t)(stored < 0 ? n : stored);
            if (stored != n && item_errors++ == 0)
                logf_(d, "error", "%s: write failed: %s", d->db_path, sqlite3_errmsg(d->db));
            it = run[n - 1];
            continue;
        }
        if (write_item(d, w, it) == 0) {
            if (it->kind == IT_RECORD)
                (*nrec)++;
        } else if (item_errors++ == 0) {
            logf_(d, "error", "%s: write failed: %s", d->db_path, sqlite3_errmsg(d->db));
        }
    }
    if (ok && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        logf_(d, "error", "%s: COMMIT failed: %s", d->db_path, sqlite3_errmsg(d->db));
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        ok = 0;
    }
    if (!ok)
        *nrec = 0;
    pthread_mutex_lock(&d->mu);
    if (ok) {
        d->st.batches++;
        d->st.written += *nrec;
    }
    if (!ok || item_errors)
        d->st.write_errors++;
    pthread_mutex_unlock(&d->mu);
}

/* Two threads write, one at a time (wmu), with the same code:
 *
 *   - the writer proper runs at a low priority (drift.writer_nice, default
 *     19): when a request arrives the kernel lets the event loop preempt it
 *     at once, and it records in the gaps. On 2 cores at saturation
 *     (bench/drift/proxy_ab.sh) req/s with drift on went from ~0.87 of drift
 *     off at equal priority to ~0.92-0.95, and the p99 of one-at-a-time
 *     requests from 1.5 ms to about 1 ms;
 *   - a catch-up thread at normal priority sleeps, and takes over only when
 *     the oldest queued record has waited CATCHUP_INTERVALS commit intervals:
 *     on a machine that stays busy the low-priority writer would starve, and
 *     records would wait (and be lost on SIGKILL) far beyond the promised
 *     commit interval.
 *
 * A batch is taken off the queue under wmu, so batches reach the database
 * in the order they were queued. Per-thread nice is a Linux feature; where
 * setpriority() fails the writer runs at normal priority. */
#define CATCHUP_INTERVALS 2

/* The writer proper's priority (drift.writer_nice). SCHED_IDLE: any other
 * thread that wakes up preempts it at once, so a batch being written never
 * delays a request (at nice 19 the scheduler still let the writer finish
 * its time slice: one-at-a-time requests saw a p99 of 0.4 ms instead of
 * 0.2 ms), and a CPU that runs only it counts as free when the kernel
 * places a waking thread. Lowering one's own priority needs no privilege;
 * where it fails anyway the writer runs at normal priority. */
static void lower_priority(struct drift *d)
{
    if (d->writer_nice == CFG_WRITER_IDLE) {
        struct sched_param sp = {0};
        int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
        if (rc == 0)
            return;
        logf_(d, "warn", "cannot run the writer thread at idle priority (%s); using nice 19",
              strerror(rc));
        d->writer_nice = 19;
    }
    if (d->writer_nice > 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), d->writer_nice) != 0)
        logf_(d, "warn", "cannot lower the writer thread's priority: %s", strerror(errno));
}

static void writer_loop(struct drift *d, int catchup)
{
    if (!catchup)
        lower_priority(d);
    struct wstmts w = {0};
    pthread_mutex_lock(&d->wmu);      /* the connection is one thread's at a time */
    if (drift_hasher_init(&w.h) != 0)
        logf_(d, "warn", "%s: no reusable SHA-256 context; hashing the slow way", d->db_path);
    if (prepare_all(d->db, &w) != 0)
        logf_(d, "error", "%s: cannot prepare statements: %s", d->db_path,
              sqlite3_errmsg(d->db));
    int prepared = w.rec && w.rec_16 && w.ev && w.ver && w.bl && w.blclr && w.det && w.out_get &&
                   w.out_put && w.oc;
    pthread_mutex_unlock(&d->wmu);
    if (!catchup) {
        pthread_mutex_lock(&d->wmu);
        d->last_retention_ms = mono_ms();
        retention(d);
        pthread_mutex_unlock(&d->wmu);
    }

    pthread_mutex_lock(&d->mu);
    for (;;) {
        if (catchup) {
            /* wake every commit interval; act when the queue's oldest item
             * is overdue (the low-priority writer is not getting the CPU) */
            int64_t late = (int64_t)CATCHUP_INTERVALS * d->commit_interval_ms;
            while (!d->stop && !(d->head && mono_ms() - d->first_arrival_ms >= late) &&
                   !(d->writing_since && mono_ms() - d->writing_since >= late)) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += (long)d->commit_interval_ms * 1000000;
                ts.tv_sec += ts.tv_nsec / 1000000000;
                ts.tv_nsec %= 1000000000;
                pthread_cond_timedwait(&d->catchup_cv, &d->mu, &ts);
            }
            if (d->stop)
                break;        /* the writer proper drains the queue */
        } else {
            while (!d->head && !d->stop)
                pthread_cond_wait(&d->work, &d->mu);
            if (!d->head && d->stop)
                break;
            if (__atomic_load_n(&d->stall_writer, __ATOMIC_RELAXED) == 1 && !d->stop) {
                pthread_mutex_unlock(&d->mu);
                usleep(5000);
                pthread_mutex_lock(&d->mu);
                continue;
            }
        }
        /* group commit window */
        int64_t deadline = d->first_arrival_ms + d->commit_interval_ms;
        while (!catchup && !d->stop && !d->flush_req && d->qlen < BATCH_SOFT_MAX) {
            int64_t now = mono_ms();
            if (now >= deadline)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = deadline - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&d->work, &d->mu, &ts);
        }
        /* take the batch only once this thread may write it, so that
         * batches reach the database in queue order */
        pthread_mutex_unlock(&d->mu);
        if (catchup)   /* the writer hands over at its next statement */
            __atomic_store_n(&d->catchup_waiting, 1, __ATOMIC_RELEASE);
        pthread_mutex_lock(&d->wmu);
        if (catchup)
            __atomic_store_n(&d->catchup_waiting, 0, __ATOMIC_RELEASE);
        pthread_mutex_lock(&d->mu);
        struct item *list = d->head;
        size_t n = d->qlen;
        int64_t arrived = d->first_arrival_ms;
        if (!catchup && list)
            d->writing_since = arrived;
        d->qbytes = 0;
        d->head = d->tail = NULL;
        d->qlen = 0;
        d->flush_req = 0;
        pthread_mutex_unlock(&d->mu);
        if (!list) {          /* the other thread took it meanwhile */
            pthread_mutex_unlock(&d->wmu);
            pthread_mutex_lock(&d->mu);
            continue;
        }

        uint64_t nrec = 0;
        struct item *rest = NULL;
        if (prepared)
            write_batch(d, &w, list, catchup, &rest, &nrec);
        if (rest) {
            /* handed over: the unwritten items go back to the head of the
             * queue, for the catch-up thread, in their order */
            struct item *last = rest;
            size_t nr = 1, bytes = rest->bytes;
            for (; last->next; last = last->next, nr++)
                bytes += last->next->bytes;
            pthread_mutex_lock(&d->mu);
            last->next = d->head;
            if (!d->head)
                d->tail = last;
            d->head = rest;
            d->qlen += nr;
            d->qbytes += bytes;
            d->first_arrival_ms = arrived;
            d->writing_since = 0;         /* no batch in hand any more */
            d->st.handovers++;
            pthread_mutex_unlock(&d->mu);
            n -= nr;
        }
        /* records in segments are released a run at a time */
        struct drift_seg *run = NULL;
        long run_n = 0;
        while (list != rest) {
            struct item *nx = list->next;
            struct drift_record *rec = list->rec;
            if (list->in_record && rec->seg) {
                drift_record_free_fields(rec);   /* the item lives in the block */
                if (rec->seg != run) {
                    if (run)
                        drift_seg_release(run, run_n);
                    run = rec->seg;
                    run_n = 0;
                }
                run_n++;
            } else {
                item_free(list);
            }
            list = nx;
        }
        if (run)
            drift_seg_release(run, run_n);
        if ((d->retention_pending || mono_ms() - d->last_retention_ms >= RETENTION_CHECK_MS) &&
            !__atomic_load_n(&d->catchup_waiting, __ATOMIC_ACQUIRE)) {
            d->last_retention_ms = mono_ms();
            retention(d);
        }
        pthread_mutex_unlock(&d->wmu);

        pthread_mutex_lock(&d->mu);
        if (!catchup)
            d->writing_since = 0;
        d->seq_done += n;
        pthread_cond_broadcast(&d->done);
    }
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_lock(&d->wmu);
    finalize_all(&w);
    pthread_mutex_unlock(&d->wmu);
}

static void *writer_main(void *arg)
{
    writer_loop(arg, 0);
    return NULL;
}

static void *catchup_main(void *arg)
{
    writer_loop(arg, 1);
    return NULL;
}

/* ---- open / load / close ------------------------------------------------------------ */

static int load_state(struct drift *d, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db,
                           "SELECT target, requested_model, field, value, first_seen_ms,"
                           " last_seen_ms, count FROM drift_versions ORDER BY last_seen_ms",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *rq = (const char *)sqlite3_column_text(s, 1);
        const char *f = (const char *)sqlite3_column_text(s, 2);
        const char *v = (const char *)sqlite3_column_text(s, 3);
        if (!t || !rq || !f || !v)
            continue;
        struct vpair *p = vpair_get(d, t, rq, 1);
        if (!p)
            continue;
        struct vfield *fld = strcmp(f, "served_model") == 0 ? &p->model : &p->fp;
        int i = vfield_add(fld, v, sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5),
                           sqlite3_column_int64(s, 6));
        if (i >= 0) {
            fld->current = i;   /* ordered by last_seen: the latest wins */
            fld->v[i].flushed_ms = drift_now_ms();
        }
    }
    sqlite3_finalize(s);

    if (sqlite3_prepare_v2(d->db, "SELECT suite, target, state FROM drift_detectors", -1, &s,
                           NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *su = (const char *)sqlite3_column_text(s, 0);
        const char *t = (const char *)sqlite3_column_text(s, 1);
        const char *js = (const char *)sqlite3_column_text(s, 2);
        if (!su || !t || !js)
            continue;
        struct det *x = det_get(d, su, t, 1);
        cJSON *j = cJSON_Parse(js);
        if (x && j)
            drift_detector_load_json(x->dt, j);
        cJSON_Delete(j);
    }
    sqlite3_finalize(s);

    if (sqlite3_prepare_v2(d->db, "SELECT suite, target, probe_id, answer FROM drift_probe_baseline",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *su = (const char *)sqlite3_column_text(s, 0);
        const char *t = (const char *)sqlite3_column_text(s, 1);
        const char *id = (const char *)sqlite3_column_text(s, 2);
        const char *a = (const char *)sqlite3_column_text(s, 3);
        struct det *x = su && t && id ? det_get(d, su, t, 1) : NULL;
        if (x)
            drift_detector_set_baseline(x->dt, id, a);
    }
    sqlite3_finalize(s);

    if (sqlite3_prepare_v2(d->db, "SELECT target, fingerprint, compared, changed"
                           " FROM drift_output_changes", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *f = (const char *)sqlite3_column_text(s, 1);
        struct outcount *o = calloc(1, sizeof *o);
        if (!o || !t || !f || !(o->target = strdup(t)) || !(o->fingerprint = strdup(f))) {
            if (o) {
                free(o->target);
                free(o);
            }
            continue;
        }
        o->compared = sqlite3_column_int64(s, 2);
        o->changed = sqlite3_column_int64(s, 3);
        o->next = d->outcounts;
        d->outcounts = o;
    }
    sqlite3_finalize(s);

    if (sqlite3_prepare_v2(d->db, "SELECT ts_ms, kind, target, subject, old_value, new_value,"
                           " summary, evidence FROM (SELECT * FROM drift_events WHERE"
                           " acknowledged = 0 ORDER BY id DESC LIMIT 32) ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(s) == SQLITE_ROW) {
        struct drift_event *ev = &d->recent[d->recent_pos];
        drift_event_clear(ev);
        ev->ts_ms = sqlite3_column_int64(s, 0);
        ev->kind = drift_strdup((const char *)sqlite3_column_text(s, 1));
        ev->target = drift_strdup((const char *)sqlite3_column_text(s, 2));
        ev->subject = drift_strdup((const char *)sqlite3_column_text(s, 3));
        ev->old_value = drift_strdup((const char *)sqlite3_column_text(s, 4));
        ev->new_value = drift_strdup((const char *)sqlite3_column_text(s, 5));
        ev->summary = drift_strdup((const char *)sqlite3_column_text(s, 6));
        ev->evidence = drift_strdup((const char *)sqlite3_column_text(s, 7));
        d->recent_pos = (d->recent_pos + 1) % RECENT_EVENTS;
        if (d->recent_len < RECENT_EVENTS)
            d->recent_len++;
    }
    sqlite3_finalize(s);
    return 0;
fail:
    set_err(err, errlen, "%s: loading drift state: %s", d->db_path, sqlite3_errmsg(d->db));
    return -1;
}

static void free_state(struct drift *d)
{
    if (d->vtab) {
        for (size_t i = 0; i < d->vtab_n; i++) {
            struct vpair *p = d->vtab[i];
            while (p) {
                struct vpair *nx = p->next;
                free(p->target);
                free(p->requested);
                vfield_free(&p->model);
                vfield_free(&p->fp);
                free(p);
                p = nx;
            }
        }
        free(d->vtab);
    }
    while (d->dets) {
        struct det *nx = d->dets->next;
        free(d->dets->suite);
        free(d->dets->target);
        drift_detector_free(d->dets->dt);
        free(d->dets);
        d->dets = nx;
    }
    while (d->outcounts) {
        struct outcount *nx = d->outcounts->next;
        free(d->outcounts->target);
        free(d->outcounts->fingerprint);
        free(d->outcounts);
        d->outcounts = nx;
    }
    for (size_t i = 0; i < RECENT_EVENTS; i++)
        drift_event_clear(&d->recent[i]);
}

/* SQLite's memory statistics take a global mutex on every allocation, and
 * nothing reads them. sqlite3_config works only before the library
 * initialises and while no other thread uses it: once, at the first open
 * (when the process starts). If something initialised SQLite earlier, it
 * fails harmlessly. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct drift *drift_open(const struct cfg_drift *cfg, char *err, size_t errlen)
{
    if (!cfg) {
        set_err(err, errlen, "drift: no configuration");
        return NULL;
    }
    struct drift *d = calloc(1, sizeof *d);
    if (!d) {
        set_err(err, errlen, "drift: out of memory");
        return NULL;
    }
    d->db_path = strdup(cfg->db_path && *cfg->db_path ? cfg->db_path : "llmpin-drift.db");
    d->store_outputs = cfg->store_outputs;
    d->commit_interval_ms = cfg->commit_interval_ms > 0 ? cfg->commit_interval_ms : 100;
    d->writer_nice = cfg->writer_nice >= 0 && cfg->writer_nice <= CFG_WRITER_IDLE ? cfg->writer_nice
                                                                                : CFG_WRITER_IDLE;
    d->retention_days = cfg->retention_days;
    d->retention_mb = cfg->retention_mb;
    d->dprm.false_alarm_rate = cfg->false_alarm_rate > 0 ? cfg->false_alarm_rate : 1e-4;
    d->dprm.min_drop = cfg->min_drop > 0 ? cfg->min_drop : 0.15;
    d->dprm.baseline_probes = cfg->baseline_probes > 0 ? cfg->baseline_probes : 100;
    d->log = default_log;
    d->vtab_n = 256;
    d->vtab = calloc(d->vtab_n, sizeof *d->vtab);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->wmu, NULL);
    pthread_mutex_init(&d->segmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->work, &ca);
    pthread_cond_init(&d->catchup_cv, &ca);  /* its waits are on CLOCK_MONOTONIC too */
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&d->done, NULL);
    if (!d->db_path || !d->vtab) {
        set_err(err, errlen, "drift: out of memory");
        goto fail;
    }
    /* NOMUTEX: one thread at a time uses this connection (this one until
     * the writer starts, the writer until it is joined, then drift_close),
     * so SQLite's per-call connection mutex would only cost time. */
    pthread_once(&sqlite_once, sqlite_setup);
    if (sqlite3_open_v2(d->db_path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot open drift database: %s", d->db_path,
                d->db ? sqlite3_errmsg(d->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(d->db, 5000);
    char what[600];
    snprintf(what, sizeof what, "%s: setting up the database", d->db_path);
    /* page_size and auto_vacuum only take effect before the first table
     * exists. 16 KiB pages: records are appended in batches, and larger
     * pages mean fewer page splits and b-tree levels per insert (measured:
     * the writer spends ~15% less per record than with 4 KiB). */
    if (exec(d->db, "PRAGMA page_size = 16384", err, errlen, what) ||
        exec(d->db, "PRAGMA auto_vacuum = INCREMENTAL", err, errlen, what))
        goto fail;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(s);
        const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
        if (rc != SQLITE_ROW || !mode ||
            (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
            set_err(err, errlen, "%s: cannot switch to WAL journal mode (%s): %s", d->db_path,
                    mode ? mode : "no answer", sqlite3_errmsg(d->db));
            sqlite3_finalize(s);
            goto fail;
        }
        sqlite3_finalize(s);
    } else {
        set_err(err, errlen, "%s: %s", what, sqlite3_errmsg(d->db));
        goto fail;
    }
    if (exec(d->db, "PRAGMA synchronous = NORMAL", err, errlen, what) ||
        /* a batch of thousands of records dirties megabytes of pages: with
         * SQLite's default 2 MB cache they spill to the WAL mid-transaction
         * (measured ~6% of the writer's time at 5,000-record batches) */
        exec(d->db, "PRAGMA cache_size = -16384", err, errlen, what) ||
        /* a multi-row INSERT keeps a statement journal; on disk it meant
         * a pwrite to a temporary file for every few rows */
        exec(d->db, "PRAGMA temp_store = MEMORY", err, errlen, what) ||
        exec(d->db, "PRAGMA foreign_keys = OFF", err, errlen, what))
        goto fail;
    if (migrate(d->db, d->db_path, err, errlen))
        goto fail;
    if (load_state(d, err, errlen))
        goto fail;
    if (pthread_create(&d->thread, NULL, writer_main, d) != 0) {
        set_err(err, errlen, "%s: cannot start the drift writer thread: %s", d->db_path,
                strerror(errno));
        goto fail;
    }
    d->thread_started = 1;
    pthread_setname_np(d->thread, "llmpin-drift");   /* for top -H and perf */
    if (d->writer_nice > 0) { /* only a low-priority writer can starve */
        if (pthread_create(&d->catchup, NULL, catchup_main, d) == 0) {
            d->catchup_started = 1;
            pthread_setname_np(d->catchup, "llmpin-drift-cu");
        } else {
            logf_(d, "warn", "%s: no catch-up writer thread: %s", d->db_path, strerror(errno));
        }
    }
    return d;
fail:
    if (d->db)
        sqlite3_close(d->db);
    free_state(d);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->wmu);
    pthread_mutex_destroy(&d->segmu);
    pthread_cond_destroy(&d->catchup_cv);
    pthread_cond_destroy(&d->work);
    pthread_cond_destroy(&d->done);
    free(d->db_path);
    free(d);
    return NULL;
}

void drift_debug_stall_writer(struct drift *d, int on)
{
    __atomic_store_n(&d->stall_writer, on, __ATOMIC_RELAXED);
}

void drift_flush(struct drift *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    uint64_t target = d->seq_pushed;
    d->flush_req = 1;
    pthread_cond_signal(&d->work);
    while (d->seq_done < target && d->thread_started)
        pthread_cond_wait(&d->done, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

void drift_close(struct drift *d)
{
    if (!d)
        return;
    /* send coalesced version counts that are still pending */
    int64_t now = drift_now_ms();
    for (size_t i = 0; i < d->vtab_n; i++)
        for (struct vpair *p = d->vtab[i]; p; p = p->next) {
            for (size_t j = 0; j < p->model.n; j++)
                if (p->model.v[j].pending)
                    send_version(d, p, "served_model", &p->model.v[j], now);
            for (size_t j = 0; j < p->fp.n; j++)
                if (p->fp.v[j].pending)
                    send_version(d, p, "system_fingerprint", &p->fp.v[j], now);
        }
    if (d->thread_started) {
        pthread_mutex_lock(&d->mu);
        __atomic_store_n(&d->stop, 1, __ATOMIC_RELAXED);   /* read unlocked in write_batch */
        pthread_cond_signal(&d->work);
        pthread_cond_signal(&d->catchup_cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        if (d->catchup_started)
            pthread_join(d->catchup, NULL);
    }
    sqlite3_exec(d->db, "PRAGMA optimize", NULL, NULL, NULL);
    sqlite3_close(d->db);
    segs_free(d);
    free_state(d);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->wmu);
    pthread_mutex_destroy(&d->segmu);
    pthread_cond_destroy(&d->catchup_cv);
    pthread_cond_destroy(&d->work);
    pthread_cond_destroy(&d->done);
    free(d->db_path);
    free(d);
}

void drift_stats(struct drift *d, struct drift_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    *st = d->st;
    st->queued = d->qlen;
    pthread_mutex_unlock(&d->mu);
}

/* ---- admin ----------------------------------------------------------------------------- */

static cJSON *vfield_json(const struct vfield *f)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < f->n; i++) {
        cJSON *o = cJSON_CreateObject();
        char t1[40], t2[40];
        drift_fmt_time(f->v[i].first_ms, t1, sizeof t1);
        drift_fmt_time(f->v[i].last_ms, t2, sizeof t2);
        cJSON_AddStringToObject(o, "value", f->v[i].value);
        cJSON_AddStringToObject(o, "first_seen", t1);
        cJSON_AddStringToObject(o, "last_seen", t2);
        cJSON_AddNumberToObject(o, "count", (double)f->v[i].count);
        cJSON_AddBoolToObject(o, "current", (int)i == f->current);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *drift_admin_json(struct drift *d)
{
    if (!d)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    struct drift_stats st;
    drift_stats(d, &st);
    cJSON *s = cJSON_AddObjectToObject(o, "stats");
    cJSON_AddNumberToObject(s, "queued", (double)st.queued);
    cJSON_AddNumberToObject(s, "pushed", (double)st.pushed);
    cJSON_AddNumberToObject(s, "written", (double)st.written);
    cJSON_AddNumberToObject(s, "dropped", (double)st.dropped);
    cJSON_AddNumberToObject(s, "batches", (double)st.batches);
    cJSON_AddNumberToObject(s, "events", (double)st.events);
    cJSON_AddNumberToObject(s, "write_errors", (double)st.write_errors);
    cJSON_AddNumberToObject(s, "output_compared", (double)st.output_compared);
    cJSON_AddNumberToObject(s, "output_changed", (double)st.output_changed);
    cJSON_AddNumberToObject(s, "writer_handovers", (double)st.handovers);
    cJSON_AddStringToObject(o, "db_path", d->db_path);

    cJSON *vs = cJSON_AddArrayToObject(o, "versions");
    for (size_t i = 0; i < d->vtab_n; i++)
        for (struct vpair *p = d->vtab[i]; p; p = p->next) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "target", p->target);
            cJSON_AddStringToObject(e, "requested_model", p->requested);
            cJSON_AddItemToObject(e, "served_models", vfield_json(&p->model));
            cJSON_AddItemToObject(e, "fingerprints", vfield_json(&p->fp));
            cJSON_AddItemToArray(vs, e);
        }

    cJSON *ds = cJSON_AddArrayToObject(o, "detectors");
    for (struct det *x = d->dets; x; x = x->next) {
        cJSON *e = drift_detector_to_json(x->dt);
        cJSON_AddStringToObject(e, "suite", x->suite);
        cJSON_AddStringToObject(e, "target", x->target);
        /* what this process graded since it started; the report has history */
        cJSON *sc = cJSON_AddObjectToObject(e, "since_start");
        cJSON_AddNumberToObject(sc, "graded", (double)x->graded);
        cJSON_AddNumberToObject(sc, "correct", (double)x->correct);
        cJSON_AddNumberToObject(sc, "compared", (double)x->compared);
        cJSON_AddNumberToObject(sc, "changed", (double)x->changed);
        cJSON_AddNumberToObject(sc, "no_answer", (double)x->no_answer);
        cJSON_AddNumberToObject(sc, "refusals", (double)x->refused);
        cJSON_AddNumberToObject(sc, "format_failures", (double)(x->no_answer - x->refused));
        if (x->with_len)
            cJSON_AddNumberToObject(sc, "mean_output_chars", (double)x->sum_len / (double)x->with_len);
        else
            cJSON_AddNullToObject(sc, "mean_output_chars");
        cJSON_AddItemToArray(ds, e);
    }

    cJSON *oc = cJSON_AddArrayToObject(o, "output_drift");
    pthread_mutex_lock(&d->mu);
    for (struct outcount *c = d->outcounts; c; c = c->next) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "target", c->target);
        cJSON_AddStringToObject(e, "fingerprint", c->fingerprint);
        cJSON_AddNumberToObject(e, "compared", (double)c->compared);
        cJSON_AddNumberToObject(e, "changed", (double)c->changed);
        cJSON_AddItemToArray(oc, e);
    }
    pthread_mutex_unlock(&d->mu);

    cJSON *ev = cJSON_AddArrayToObject(o, "recent_events");
    for (size_t i = 0; i < d->recent_len; i++) {
        size_t k = (d->recent_pos + RECENT_EVENTS - d->recent_len + i) % RECENT_EVENTS;
        cJSON_AddItemToArray(ev, drift_event_to_json(&d->recent[k]));
    }
    return o;
}
