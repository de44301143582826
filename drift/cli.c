/*
 * cli.c - `llmpin drift status | report | compare | probe | ack`.
 *
 * These run in the CLI process, never on the event loop, so they may block:
 * they open their own SQLite connection (WAL lets them read while a server
 * writes), and `probe` sends requests with libcurl's easy API one at a time.
 * Output is plain text meant for a terminal; the report can also be one
 * self-contained HTML page (report.c).
 */
#include "drift/internal.h"
#include "drift/report.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct opts {
    const char *db;
    const char *since, *until, *html, *target, *url, *key_env;
    long limit;
    int timeout_s;
    int baseline;
    const char *cmd;
    const char *pos[8];
    int npos;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: llmpin drift <command> [--drift-db FILE] [options]\n"
            "  status                              targets, versions seen, detectors, open alarms\n"
            "  report [--since T] [--until T] [--html FILE]\n"
            "                                      timeline per target (T: 2026-01-31, 24h, 7d)\n"
            "  compare A B [--since T]             shadow pairs of targets A and B: agreement\n"
            "  probe SUITE --target MODEL [--url URL] [--limit N] [--timeout S]\n"
            "        [--api-key-env VAR] [--baseline N]\n"
            "                                      send a probe suite (file or builtin:default)\n"
            "                                      through a running llmpin (default URL\n"
            "                                      http://127.0.0.1:8080/v1) and record results\n"
            "  ack ID|all                          close alarms\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->db = "llmpin-drift.db";
    o->url = "http://127.0.0.1:8080/v1";
    o->key_env = "LLMPIN_API_KEY";
    o->timeout_s = 300;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--drift-db") == 0)
            slot = &o->db;
        else if (strcmp(a, "--since") == 0)
            slot = &o->since;
        else if (strcmp(a, "--until") == 0)
            slot = &o->until;
        else if (strcmp(a, "--html") == 0)
            slot = &o->html;
        else if (strcmp(a, "--target") == 0)
            slot = &o->target;
        else if (strcmp(a, "--url") == 0)
            slot = &o->url;
        else if (strcmp(a, "--api-key-env") == 0)
            slot = &o->key_env;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "llmpin drift: %s needs a value\n", a);
                return -1;
            }
            *slot = argv[++i];
            continue;
        }
        if (strcmp(a, "--limit") == 0 || strcmp(a, "--timeout") == 0 ||
            strcmp(a, "--baseline") == 0) {
            char *end;
            if (i + 1 >= argc) {
                fprintf(stderr, "llmpin drift: %s needs a value\n", a);
                return -1;
            }
            long v = strtol(argv[++i], &end, 10);
            if (*end || v <= 0 || v > 100000000) {
                fprintf(stderr, "llmpin drift: %s: \"%s\" is not a positive integer\n", a,
                        argv[i]);
                return -1;
            }
            if (a[2] == 'l')
                o->limit = v;
            else if (a[2] == 't')
                o->timeout_s = (int)v;
            else
                o->baseline = (int)v;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "llmpin drift: unknown option %s\n", a);
            return -1;
        }
        if (!o->cmd) {               /* the first word is the command */
            o->cmd = a;
            continue;
        }
        if (o->npos >= 8) {
            fprintf(stderr, "llmpin drift: too many arguments\n");
            return -1;
        }
        o->pos[o->npos++] = a;
    }
    return 0;
}

static sqlite3 *open_db(const char *path, int writable)
{
    struct stat stt;
    if (stat(path, &stt) != 0) {
        fprintf(stderr, "llmpin drift: %s: cannot open drift database: %s\n", path,
                strerror(errno));
        return NULL;
    }
    sqlite3 *db = NULL;
    int flags = writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "llmpin drift: %s: cannot open drift database: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *s;
    int version = -1;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    if (version < 1) {
        fprintf(stderr, "llmpin drift: %s: not a drift database (no schema_version)\n", path);
        sqlite3_close(db);
        return NULL;
    }
    if (version > DRIFT_SCHEMA_VERSION) {
        fprintf(stderr, "llmpin drift: %s: schema version %d is newer than this llmpin (%d)\n",
                path, version, DRIFT_SCHEMA_VERSION);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static const char *col(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

/* ---- status ---------------------------------------------------------------------- */

static int cmd_status(const struct opts *o)
{
    sqlite3 *db = open_db(o->db, 0);
    if (!db)
        return 1;
    sqlite3_stmt *s;
    char t1[40], t2[40];
    printf("Drift database: %s\n", o->db);
    if (sqlite3_prepare_v2(db, "SELECT count(*), min(ts_ms), max(ts_ms) FROM drift_records", -1,
                           &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        long long n = sqlite3_column_int64(s, 0);
        if (n) {
            drift_fmt_time(sqlite3_column_int64(s, 1), t1, sizeof t1);
            drift_fmt_time(sqlite3_column_int64(s, 2), t2, sizeof t2);
            printf("Records: %lld, from %s to %s\n", n, t1, t2);
        } else {
            printf("Records: none yet\n");
        }
    }
    sqlite3_finalize(s);

    printf("\nTargets:\n");
    int any = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT target, count(*), sum(status >= 400), sum(is_probe),"
                           " max(ts_ms) FROM drift_records GROUP BY target ORDER BY target",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            any = 1;
            drift_fmt_time(sqlite3_column_int64(s, 4), t2, sizeof t2);
            long long n = sqlite3_column_int64(s, 1), e = sqlite3_column_int64(s, 2);
            printf("  %-32s %8lld records  %5.1f%% errors  %6lld probes  last %s\n",
                   col(s, 0), n, n ? 100.0 * e / n : 0.0, sqlite3_column_int64(s, 3), t2);
        }
    }
    sqlite3_finalize(s);
    if (!any)
        printf("  (none)\n");

    printf("\nVersions seen (per target and requested model):\n");
    any = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT target, requested_model, field, value, first_seen_ms,"
                           " last_seen_ms, count FROM drift_versions"
                           " ORDER BY target, requested_model, field, first_seen_ms",
                           -1, &s, NULL) == SQLITE_OK) {
        char last_pair[600] = "";
        while (sqlite3_step(s) == SQLITE_ROW) {
            any = 1;
            char pair[600];
            snprintf(pair, sizeof pair, "%s\x1f%s", col(s, 0), col(s, 1));
            if (strcmp(pair, last_pair) != 0) {
                printf("  %s  (requested \"%s\")\n", col(s, 0), col(s, 1));
                snprintf(last_pair, sizeof last_pair, "%s", pair);
            }
            drift_fmt_time(sqlite3_column_int64(s, 4), t1, sizeof t1);
            drift_fmt_time(sqlite3_column_int64(s, 5), t2, sizeof t2);
            printf("    %-18s %-36s first %s  last %s  %lld responses\n",
                   strcmp(col(s, 2), "served_model") == 0 ? "served model" : "fingerprint",
                   col(s, 3), t1, t2, sqlite3_column_int64(s, 6));
        }
    }
    sqlite3_finalize(s);
    if (!any)
        printf("  (none)\n");

    printf("\nOutput drift (deterministic requests seen again):\n");
    any = 0;
    if (sqlite3_prepare_v2(db, "SELECT target, fingerprint, compared, changed FROM"
                           " drift_output_changes ORDER BY target, fingerprint", -1, &s,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            any = 1;
            long long c = sqlite3_column_int64(s, 2), ch = sqlite3_column_int64(s, 3);
            printf("  %-32s fingerprint %-24s %lld repeats, %lld with a different output (%.1f%%)\n",
                   col(s, 0), *col(s, 1) ? col(s, 1) : "(none)", c, ch, c ? 100.0 * ch / c : 0.0);
        }
    }
    sqlite3_finalize(s);
    if (!any)
        printf("  (no repeated deterministic requests yet)\n");

    printf("\nProbe results per suite and target (all time; chars = mean answer length in\n"
           "characters; refused / format = no parsable answer, as a refusal / otherwise):\n");
    any = 0;
    int v2 = drift_report_schema_version(db) >= 2;
    if (sqlite3_prepare_v2(db, v2 ?
                           "SELECT probe_suite, target, count(*), sum(probe_correct = 1),"
                           " count(probe_changed), sum(probe_changed = 1), avg(output_len),"
                           " sum(probe_parsed = 0 AND probe_refused = 1),"
                           " sum(probe_parsed = 0 AND coalesce(probe_refused, 0) = 0)"
                           " FROM drift_records WHERE is_probe = 1 AND probe_correct IS NOT NULL"
                           " GROUP BY probe_suite, target ORDER BY probe_suite, target"
                           :
                           "SELECT probe_suite, target, count(*), sum(probe_correct = 1),"
                           " count(probe_changed), sum(probe_changed = 1), NULL, 0, 0"
                           " FROM drift_records WHERE is_probe = 1 AND probe_correct IS NOT NULL"
                           " GROUP BY probe_suite, target ORDER BY probe_suite, target",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            if (!any)
                printf("  %-24s  %-24s  %6s  %8s  %7s  %7s  %7s  %7s\n", "suite", "target",
                       "probes", "accuracy", "changed", "chars", "refused", "format");
            any = 1;
            long long n = sqlite3_column_int64(s, 2), cmp = sqlite3_column_int64(s, 4);
            char chg[16] = "-", chars[16] = "-";
            if (cmp)
                snprintf(chg, sizeof chg, "%.1f%%", 100.0 * sqlite3_column_int64(s, 5) / cmp);
            if (sqlite3_column_type(s, 6) != SQLITE_NULL)
                snprintf(chars, sizeof chars, "%.1f", sqlite3_column_double(s, 6));
            printf("  %-24s  %-24s  %6lld  %7.1f%%  %7s  %7s  %6.1f%%  %6.1f%%\n", col(s, 0),
                   col(s, 1), n, 100.0 * sqlite3_column_int64(s, 3) / n, chg, chars,
                   100.0 * sqlite3_column_int64(s, 7) / n, 100.0 * sqlite3_column_int64(s, 8) / n);
        }
    }
    sqlite3_finalize(s);
    if (!any)
        printf("  (no graded probes yet)\n");

    printf("\nProbe detectors:\n");
    any = 0;
    if (sqlite3_prepare_v2(db, "SELECT suite, target, state FROM drift_detectors"
                           " ORDER BY suite, target", -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            any = 1;
            cJSON *j = cJSON_Parse(col(s, 2));
            const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phase");
            const cJSON *nb = cJSON_GetObjectItemCaseSensitive(j, "n_base");
            const cJSON *ba = cJSON_GetObjectItemCaseSensitive(j, "baseline_accuracy");
            const cJSON *dr = cJSON_GetObjectItemCaseSensitive(j, "drop");
            const cJSON *ds = cJSON_GetObjectItemCaseSensitive(dr, "s");
            const cJSON *dh = cJSON_GetObjectItemCaseSensitive(dr, "h");
            int watching = cJSON_IsString(ph) && strcmp(ph->valuestring, "watching") == 0;
            if (watching)
                printf("  %s on %s: watching; baseline accuracy %.1f%%; drop chart %.2f of %.2f\n",
                       col(s, 0), col(s, 1), cJSON_IsNumber(ba) ? 100 * ba->valuedouble : 0,
                       cJSON_IsNumber(ds) ? ds->valuedouble : 0,
                       cJSON_IsNumber(dh) ? dh->valuedouble : 0);
            else
                printf("  %s on %s: collecting a baseline (%d probes so far)\n", col(s, 0),
                       col(s, 1), cJSON_IsNumber(nb) ? nb->valueint : 0);
            cJSON_Delete(j);
        }
    }
    sqlite3_finalize(s);
    if (!any)
        printf("  (no probe results yet)\n");

    printf("\nOpen alarms:\n");
    any = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, ts_ms, kind, summary FROM drift_events"
                           " WHERE acknowledged = 0 ORDER BY id", -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            any = 1;
            drift_fmt_time(sqlite3_column_int64(s, 1), t1, sizeof t1);
            printf("  #%lld  %s  %-13s %s\n", sqlite3_column_int64(s, 0), t1, col(s, 2),
                   col(s, 3));
        }
    }
    sqlite3_finalize(s);
    if (!any)
        printf("  (none)\n");
    else
        printf("  close with: llmpin drift ack ID|all\n");
    sqlite3_close(db);
    return 0;
}

/* ---- ack --------------------------------------------------------------------------- */

static int cmd_ack(const struct opts *o)
{
    if (o->npos != 1) {
        fprintf(stderr, "llmpin drift ack: give an alarm id or \"all\"\n");
        return 2;
    }
    long long id = 0;
    int all = strcmp(o->pos[0], "all") == 0;
    if (!all) {
        char *end;
        id = strtoll(o->pos[0], &end, 10);
        if (*end || id <= 0) {
            fprintf(stderr, "llmpin drift ack: \"%s\" is not an alarm id\n", o->pos[0]);
            return 2;
        }
    }
    sqlite3 *db = open_db(o->db, 1);
    if (!db)
        return 1;
    sqlite3_stmt *s;
    int rc = 1;
    if (sqlite3_prepare_v2(db, all ? "UPDATE drift_events SET acknowledged = 1 WHERE acknowledged = 0"
                                   : "UPDATE drift_events SET acknowledged = 1 WHERE id = ?",
                           -1, &s, NULL) == SQLITE_OK) {
        if (!all)
            sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_DONE) {
            int n = sqlite3_changes(db);
            if (!all && n == 0)
                fprintf(stderr, "llmpin drift ack: no alarm #%lld\n", id);
            else {
                printf("%d alarm%s acknowledged\n", n, n == 1 ? "" : "s");
                rc = 0;
            }
        } else {
            fprintf(stderr, "llmpin drift ack: %s: %s\n", o->db, sqlite3_errmsg(db));
        }
        sqlite3_finalize(s);
    } else {
        fprintf(stderr, "llmpin drift ack: %s: %s\n", o->db, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return rc;
}

/* ---- compare ------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lower-cased word tokens (runs of letters, digits and UTF-8 bytes), sorted
 * and de-duplicated. */
static char **tokens(const char *s, size_t *n_out)
{
    size_t cap = 64, n = 0;
    char **t = malloc(cap * sizeof *t);
    if (!t)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        while (*p && !(isalnum(*p) || *p >= 0x80))
            p++;
        if (!*p)
            break;
        const unsigned char *st = p;
        while (*p && (isalnum(*p) || *p >= 0x80))
            p++;
        if (n == cap) {
            char **nt = realloc(t, cap * 2 * sizeof *t);
            if (!nt)
                break;
            t = nt;
            cap *= 2;
        }
        char *w = strndup((const char *)st, (size_t)(p - st));
        if (!w)
            break;
        for (char *q = w; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        t[n++] = w;
    }
    qsort(t, n, sizeof *t, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u && strcmp(t[u - 1], t[i]) == 0)
            free(t[i]);
        else
            t[u++] = t[i];
    }
    *n_out = u;
    return t;
}

double drift_text_similarity(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char **ta = tokens(a ? a : "", &na), **tb = tokens(b ? b : "", &nb);
    double sim;
    if (!ta || !tb) {
        sim = -1;
    } else if (na == 0 && nb == 0) {
        sim = 1;
    } else {
        size_t i = 0, j = 0, inter = 0;
        while (i < na && j < nb) {
            int c = strcmp(ta[i], tb[j]);
            if (c == 0) {
                inter++;
                i++;
                j++;
            } else if (c < 0) {
                i++;
            } else {
                j++;
            }
        }
        sim = (double)inter / (double)(na + nb - inter);
    }
    for (size_t i = 0; ta && i < na; i++)
        free(ta[i]);
    for (size_t i = 0; tb && i < nb; i++)
        free(tb[i]);
    free(ta);
    free(tb);
    return sim;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_compare(const struct opts *o, int64_t since)
{
    if (o->npos != 2) {
        fprintf(stderr, "llmpin drift compare: give two targets, e.g. compare openai/gpt-4o local/qwen\n");
        return 2;
    }
    sqlite3 *db = open_db(o->db, 0);
    if (!db)
        return 1;
    sqlite3_stmt *s;
    /* The mirror of request X may carry X itself or "X-shadow": both pair. */
    if (sqlite3_prepare_v2(db,
                           "WITH r AS (SELECT id, target, output_hash, output_text,"
                           "  CASE WHEN request_id LIKE '%-shadow'"
                           "   THEN substr(request_id, 1, length(request_id) - 7)"
                           "   ELSE request_id END AS k"
                           "  FROM drift_records WHERE request_id IS NOT NULL AND ts_ms >= ?3"
                           "  AND status < 400 AND is_probe = 0 AND target IN (?1, ?2))"
                           " SELECT a.output_hash, b.output_hash, a.output_text, b.output_text"
                           " FROM r a JOIN r b ON a.k = b.k AND a.id <> b.id"
                           " WHERE a.target = ?1 AND b.target = ?2",
                           -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "llmpin drift compare: %s: %s\n", o->db, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    sqlite3_bind_text(s, 1, o->pos[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, o->pos[1], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, since);
    long pairs = 0, hashed = 0, same = 0, texts = 0;
    size_t cap = 0;
    double *sims = NULL, sum = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        pairs++;
        const char *ha = (const char *)sqlite3_column_text(s, 0);
        const char *hb = (const char *)sqlite3_column_text(s, 1);
        if (ha && hb) {
            hashed++;
            same += strcmp(ha, hb) == 0;
        }
        const char *xa = (const char *)sqlite3_column_text(s, 2);
        const char *xb = (const char *)sqlite3_column_text(s, 3);
        if (xa && xb) {
            double v = drift_text_similarity(xa, xb);
            if (v < 0)
                continue;
            if ((size_t)texts == cap) {
                size_t nc = cap ? cap * 2 : 256;
                double *ns = realloc(sims, nc * sizeof *ns);
                if (!ns)
                    continue;
                sims = ns;
                cap = nc;
            }
            sims[texts++] = v;
            sum += v;
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    printf("Compare %s (A) with %s (B): %ld pairs of records with the same request id\n",
           o->pos[0], o->pos[1], pairs);
    if (pairs == 0) {
        printf("  No pairs. Shadow mode records the mirrored request with the request id of the\n"
               "  served one (or that id + \"-shadow\"); check the target names with\n"
               "  `llmpin drift status`.\n");
        free(sims);
        return 0;
    }
    if (hashed)
        printf("  identical output (SHA-256 of the text): %ld of %ld (%.1f%%)\n", same, hashed,
               100.0 * same / hashed);
    else
        printf("  no output hashes stored (store_outputs = none)\n");
    if (texts) {
        qsort(sims, (size_t)texts, sizeof *sims, cmp_dbl);
        printf("  text similarity, Jaccard index of the sets of lower-cased word tokens\n"
               "  (1 = same words, 0 = no word in common), over %ld pairs stored in full:\n"
               "    mean %.3f  median %.3f  10th percentile %.3f  min %.3f\n",
               texts, sum / texts, sims[texts / 2], sims[texts / 10], sims[0]);
    } else {
        printf("  text similarity: not available (outputs are stored in full only with\n"
               "  drift.store_outputs = \"full\")\n");
    }
    free(sims);
    return 0;
}

/* ---- probe -------------------------------------------------------------------------- */

struct body {
    char *p;
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > 16 * 1024 * 1024)
        return 0;                      /* too large: abort the transfer */
    char *np = realloc(b->p, b->len + n + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static void print_event(const struct drift_event *ev)
{
    printf("  ** %s drift: %s\n", ev->kind, ev->summary ? ev->summary : "");
}

static int cmd_probe(const struct opts *o)
{
    if (o->npos != 1 || !o->target) {
        fprintf(stderr, "llmpin drift probe: usage: probe SUITE --target MODEL [--url URL]\n");
        return 2;
    }
    char err[512];
    struct drift_probe_suite *suite = drift_probe_suite_load(o->pos[0], err, sizeof err);
    if (!suite) {
        fprintf(stderr, "llmpin drift probe: %s\n", err);
        return 1;
    }
    struct cfg_drift cfg = {0};
    cfg.enabled = 1;
    cfg.db_path = (char *)o->db;
    cfg.store_outputs = CFG_STORE_HASH;
    cfg.commit_interval_ms = 100;
    cfg.retention_days = 0;
    cfg.retention_mb = 0;
    cfg.false_alarm_rate = 1e-4;
    cfg.min_drop = 0.15;
    cfg.baseline_probes = o->baseline ? o->baseline : 100;
    struct drift *d = drift_open(&cfg, err, sizeof err);
    if (!d) {
        fprintf(stderr, "llmpin drift probe: %s\n", err);
        drift_probe_suite_free(suite);
        return 1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "llmpin drift probe: cannot initialise libcurl\n");
        drift_close(d);
        drift_probe_suite_free(suite);
        return 1;
    }
    char url[2048];
    size_t ul = strlen(o->url);
    snprintf(url, sizeof url, "%.*s/chat/completions", (int)(ul && o->url[ul - 1] == '/' ? ul - 1 : ul),
             o->url);
    const char *key = o->key_env ? getenv(o->key_env) : NULL;
    size_t n = suite->n;
    if (o->limit > 0 && (size_t)o->limit < n)
        n = (size_t)o->limit;
    long sent = 0, failed = 0, correct = 0, graded = 0, noanswer = 0, alarms = 0;
    printf("Probing %s with %zu probes of %s via %s\n", o->target, n, suite->name, url);
    for (size_t i = 0; i < n; i++) {
        const struct drift_probe *p = &suite->probes[i];
        cJSON *req = drift_probe_request(p, o->target);
        char *payload = req ? cJSON_PrintUnformatted(req) : NULL;
        cJSON_Delete(req);
        if (!payload)
            continue;
        struct curl_slist *h = NULL;
        char hdr[600];
        h = curl_slist_append(h, "Content-Type: application/json");
        snprintf(hdr, sizeof hdr, "X-Llmpin-Probe: %s/%s", suite->name, p->id);
        h = curl_slist_append(h, hdr);
        if (key && *key) {
            char *auth = malloc(strlen(key) + 32);
            if (auth) {
                sprintf(auth, "Authorization: Bearer %s", key);
                h = curl_slist_append(h, auth);
                free(auth);
            }
        }
        struct body b = {0};
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)o->timeout_s);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CURLcode rc = curl_easy_perform(c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(h);
        free(payload);
        sent++;

        struct drift_record *r = drift_record_new();
        if (!r) {
            free(b.p);
            continue;
        }
        r->target = strdup(o->target);
        r->requested_model = strdup(o->target);
        r->route = strdup("probe");
        r->key_name = strdup("llmpin-drift-cli");
        r->latency_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        r->status = rc == CURLE_OK ? (int)status : 599;
        cJSON *resp = rc == CURLE_OK && b.p ? cJSON_Parse(b.p) : NULL;
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(resp, "model");
        const cJSON *fp = cJSON_GetObjectItemCaseSensitive(resp, "system_fingerprint");
        const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp, "choices"), 0);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(ch, "message"), "content");
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(resp, "usage");
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
        if (cJSON_IsString(model))
            r->served_model = strdup(model->valuestring);
        if (cJSON_IsString(fp))
            r->system_fingerprint = strdup(fp->valuestring);
        if (cJSON_IsNumber(pt))
            r->prompt_tokens = pt->valueint;
        if (cJSON_IsNumber(ct))
            r->completion_tokens = ct->valueint;
        if (cJSON_IsString(content) && status < 400)
            r->output_text = strdup(content->valuestring);
        if (!r->output_text && r->status < 400)
            r->status = 502;           /* no answer in the body */
        struct drift_event ev;
        if (r->status < 400 && drift_observe_version(d, o->target, o->target, r->served_model,
                                                     r->system_fingerprint, &ev) == 1) {
            print_event(&ev);
            drift_event_clear(&ev);
        }
        const char *verdict;
        if (r->status >= 400) {
            failed++;
            verdict = rc != CURLE_OK ? curl_easy_strerror(rc) : "upstream error";
        } else {
            graded++;
            char ans[256];
            int got = drift_probe_extract(p, r->output_text, ans, sizeof ans) == 0;
            int ok = drift_probe_grade(p, r->output_text);
            correct += ok;
            noanswer += !got;
            verdict = ok ? "correct" : !got ? (drift_output_is_refusal(r->output_text)
                                                   ? "refused" : "no answer found")
                                            : "wrong";
        }
        int lat = r->latency_ms, st = r->status;
        if (drift_probe_result(d, suite->name, p, r, &ev) == 1) {
            alarms++;
            print_event(&ev);
            drift_event_clear(&ev);
        }
        printf("  %-28s %-16s status %d  %d ms\n", p->id, verdict, st, lat);
        fflush(stdout);
        cJSON_Delete(resp);
        free(b.p);
    }
    curl_easy_cleanup(c);
    drift_close(d);
    drift_probe_suite_free(suite);
    printf("Sent %ld, failed %ld, graded %ld: %ld correct (%.1f%%), %ld without a parsable "
           "answer, %ld alarm%s\n", sent, failed, graded, correct,
           graded ? 100.0 * correct / graded : 0.0, noanswer, alarms, alarms == 1 ? "" : "s");
    return sent > 0 && failed == sent ? 1 : 0;
}

/* ---- entry ----------------------------------------------------------------------------- */

int drift_cli_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0 ||
            strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    struct opts o;
    if (parse_opts(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    if (!o.cmd) {
        usage(stderr);
        return 2;
    }
    int64_t now = drift_now_ms(), since = 0, until = INT64_MAX;
    if (o.since && drift_parse_time(o.since, now, &since)) {
        fprintf(stderr, "llmpin drift: --since: cannot read \"%s\" (use 2026-01-31, "
                        "2026-01-31T12:00:00Z, 24h, 7d or ms since the epoch)\n", o.since);
        return 2;
    }
    if (o.until && drift_parse_time(o.until, now, &until)) {
        fprintf(stderr, "llmpin drift: --until: cannot read \"%s\"\n", o.until);
        return 2;
    }
    const char *cmd = o.cmd;
    if (strcmp(cmd, "status") == 0)
        return o.npos ? (usage(stderr), 2) : cmd_status(&o);
    if (strcmp(cmd, "ack") == 0)
        return cmd_ack(&o);
    if (strcmp(cmd, "compare") == 0)
        return cmd_compare(&o, since);
    if (strcmp(cmd, "probe") == 0)
        return cmd_probe(&o);
    if (strcmp(cmd, "report") == 0) {
        if (o.npos) {
            usage(stderr);
            return 2;
        }
        sqlite3 *db = open_db(o.db, 0);
        if (!db)
            return 1;
        char err[512];
        int rc = drift_report_write(db, since, until, stdout, o.html, err, sizeof err);
        sqlite3_close(db);
        if (rc) {
            fprintf(stderr, "llmpin drift report: %s\n", err);
            return 1;
        }
        if (o.html)
            printf("\nHTML report written to %s\n", o.html);
        return 0;
    }
    fprintf(stderr, "llmpin drift: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
