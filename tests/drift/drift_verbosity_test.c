/*
 * drift_verbosity_test.c - verbosity (mean answer length in characters) and
 * the refusal / format-failure rates, per (suite, target) and per time
 * bucket, with exact figures; and the schema migration 1 -> 2 that adds
 * output_len, probe_parsed and probe_refused to a version 1 database in
 * place, filling them for old rows from the text they kept.
 */
#include "drift_test.h"

#include <fcntl.h>
#include <sqlite3.h>

/* Run drift_cli_main with stdout captured into out (caller frees). */
static int cli(char **out, int argc, const char **argv)
{
    char path[] = "/tmp/llmpin-drift-cli-XXXXXX";
    int fd = mkstemp(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = drift_cli_main(argc, (char **)argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    unlink(path);
    *out = buf;
    return rc;
}

#define CHECK_HAS(hay, needle)                                                   \
    do {                                                                         \
        if (!strstr((hay), (needle))) {                                          \
            fprintf(stderr, "%s:%d: output lacks \"%s\":\n%s\n", __FILE__,       \
                    __LINE__, (needle), (hay));                                  \
            t_failures++;                                                        \
        }                                                                        \
    } while (0)

/* The version 1 schema as llmpin 1 created it. */
static const char *const v1_schema =
    "CREATE TABLE schema_version(version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES(1);"
    "CREATE TABLE drift_records("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
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
    " count INTEGER NOT NULL, PRIMARY KEY(target, requested_model, field, value));"
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
    " compared INTEGER NOT NULL, changed INTEGER NOT NULL, PRIMARY KEY(target, fingerprint));"
    "CREATE TABLE drift_probe_baseline("
    " suite TEXT NOT NULL, target TEXT NOT NULL, probe_id TEXT NOT NULL, answer TEXT,"
    " PRIMARY KEY(suite, target, probe_id));"
    "CREATE TABLE drift_detectors("
    " suite TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, updated_ms INTEGER,"
    " PRIMARY KEY(suite, target));"
    /* T0 = 2026-01-01 00:00:00 UTC: three graded probes of suite "old" (a
     * refusal of 34 characters, a format failure of 6, a parsed answer of 9)
     * and one ordinary answer of 5 characters (6 bytes) */
    "INSERT INTO drift_records(ts_ms, target, status, latency_ms, output_text, is_probe,"
    " probe_suite, probe_id, probe_correct, probe_answer) VALUES"
    " (1767225600000, 't/a', 200, 100, 'I''m sorry, I can''t help with that.', 1, 'old', 'q1', 0, NULL),"
    " (1767225601000, 't/a', 200, 100, 'banana', 1, 'old', 'q2', 0, NULL),"
    " (1767225602000, 't/a', 200, 100, 'So: [Yes]', 1, 'old', 'q3', 1, 'yes'),"
    " (1767225603000, 't/a', 200, 100, 'h\xc3\xa9llo', 0, NULL, NULL, NULL, NULL);";

static long long q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    long long v = -999;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "sql: %s: %s\n", sql, sqlite3_errmsg(db));
        return -998;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static const char *suite_text =
    "{\"id\":\"p1\",\"messages\":[{\"role\":\"user\",\"content\":\"Is 7 prime? [Yes] or [No]\"}],"
    "\"expect\":{\"yesno\":\"yes\"}}\n"
    "{\"id\":\"p2\",\"messages\":[{\"role\":\"user\",\"content\":\"Is 8 prime? [Yes] or [No]\"}],"
    "\"expect\":{\"yesno\":\"no\"}}\n";

int main(void)
{
    char dir[256], path[512], err[512];
    t_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/v.db", dir);

    /* 1. a version 1 database */
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, v1_schema, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "v1 schema: %s\n", msg);
        return 1;
    }
    sqlite3_close(db);

    /* a newer CLI reads it before any server migrated it: no lengths yet */
    char *out = NULL;
    const char *rep_argv[] = {"drift", "report", "--drift-db", path, "--since", "2026-01-01",
                              "--until", "2026-01-02"};
    CHECK_INT(cli(&out, 8, rep_argv), 0);
    CHECK_HAS(out, "  old                       t/a                            3     33.3%"
                   "        -        -     0.0%     0.0%");
    free(out);

    /* 2. drift_open migrates it in place */
    struct cfg_drift cfg = t_cfg(path);
    cfg.store_outputs = CFG_STORE_HASH;
    cfg.retention_days = 0;             /* the records are from 2026-01-01 */
    struct drift *d = drift_open(&cfg, err, sizeof err);
    CHECK(d != NULL);
    if (!d) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    drift_flush(d);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK_INT(q_int(db, "SELECT version FROM schema_version"), 2);
    CHECK_INT(q_int(db, "SELECT count(*) FROM schema_version"), 1);
    CHECK_INT(q_int(db, "SELECT output_len FROM drift_records WHERE probe_id = 'q1'"), 34);
    CHECK_INT(q_int(db, "SELECT output_len FROM drift_records WHERE probe_id = 'q2'"), 6);
    CHECK_INT(q_int(db, "SELECT output_len FROM drift_records WHERE probe_id = 'q3'"), 9);
    CHECK_INT(q_int(db, "SELECT output_len FROM drift_records WHERE is_probe = 0"), 5);
    CHECK_INT(q_int(db, "SELECT probe_parsed FROM drift_records WHERE probe_id = 'q1'"), 0);
    CHECK_INT(q_int(db, "SELECT probe_refused FROM drift_records WHERE probe_id = 'q1'"), 1);
    CHECK_INT(q_int(db, "SELECT probe_parsed FROM drift_records WHERE probe_id = 'q2'"), 0);
    CHECK_INT(q_int(db, "SELECT probe_refused FROM drift_records WHERE probe_id = 'q2'"), 0);
    CHECK_INT(q_int(db, "SELECT probe_parsed FROM drift_records WHERE probe_id = 'q3'"), 1);
    CHECK_INT(q_int(db, "SELECT probe_refused FROM drift_records WHERE probe_id = 'q3'"), 0);
    CHECK_INT(q_int(db, "SELECT probe_parsed FROM drift_records WHERE is_probe = 0"), -1);
    CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'drift_records_request_id'"), 0);
    CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'drift_records_ts'"), 1);
    CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'drift_records_target_ts'"), 0);
    sqlite3_close(db);

    /* 3. new results through the recorder, one hour later */
    struct drift_probe_suite *suite = drift_probe_suite_parse(suite_text, strlen(suite_text),
                                                              "s", err, sizeof err);
    CHECK(suite != NULL);
    if (!suite)
        return 1;
    const char *outs[] = {"[Yes]", "I'm sorry, but I can't answer that.", "maybe!",
                          "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 [No]"};
    for (int i = 0; i < 4; i++) {
        struct drift_record *r = drift_record_new();
        r->ts_ms = 1767229200000LL + i * 1000;
        r->target = strdup("t/a");
        r->status = 200;
        r->latency_ms = 100;
        r->output_text = strdup(outs[i]);
        struct drift_event ev;
        CHECK_INT(drift_probe_result(d, "s", &suite->probes[i % 2], r, &ev), 0);
    }
    /* an ordinary answer with store_outputs = hash: its length, not its text */
    struct drift_record *r = drift_record_new();
    r->ts_ms = 1767229205000LL;
    r->target = strdup("t/a");
    r->request_id = strdup("plain-1");
    r->status = 200;
    r->latency_ms = 100;
    const char *plain = "h\xc3\xa9llo w\xc3\xb6rld";
    CHECK_INT(drift_record_set_output(d, r, plain, strlen(plain)), 0);
    CHECK_INT(r->output_len, 11);
    drift_push(d, r);                   /* the writer hashes the text, then drops it */

    cJSON *adm = drift_admin_json(d);
    const cJSON *det = cJSON_GetArrayItem(cJSON_GetObjectItem(adm, "detectors"), 0);
    const cJSON *sc = cJSON_GetObjectItem(det, "since_start");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(det, "suite")), "s");
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "graded")), 4);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "correct")), 2);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "compared")), 2);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "changed")), 2);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "no_answer")), 2);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "refusals")), 1);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "format_failures")), 1);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "mean_output_chars")) == 14.5);
    cJSON_Delete(adm);
    drift_close(d);

    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK_INT(q_int(db, "SELECT output_len FROM drift_records WHERE probe_suite = 's'"
                        " ORDER BY id DESC LIMIT 1"), 12);
    CHECK_INT(q_int(db, "SELECT sum(probe_parsed) FROM drift_records WHERE probe_suite = 's'"), 2);
    CHECK_INT(q_int(db, "SELECT sum(probe_refused) FROM drift_records WHERE probe_suite = 's'"), 1);
    CHECK_INT(q_int(db, "SELECT output_len FROM drift_records WHERE request_id = 'plain-1'"), 11);
    CHECK_INT(q_int(db, "SELECT output_text IS NULL FROM drift_records WHERE request_id = 'plain-1'"), 1);
    sqlite3_close(db);

    /* 4. the report: per suite and target, and per hour bucket */
    CHECK_INT(cli(&out, 8, rep_argv), 0);
    /* old: 1 of 3 correct, no baseline comparison, (34 + 6 + 9) / 3 characters,
     * one refusal and one format failure in three */
    CHECK_HAS(out, "  old                       t/a                            3     33.3%"
                   "        -     16.3    33.3%    33.3%");
    /* s: 2 of 4 correct; the second answer to each probe differs from its
     * first; (5 + 35 + 6 + 12) / 4 = 14.5 characters; 1 refusal, 1 format
     * failure in four */
    CHECK_HAS(out, "  s                         t/a                            4     50.0%"
                   "   100.0%     14.5    25.0%    25.0%");
    /* timeline, buckets of 1 minute: 2026-01-01 00:00 holds the three old
     * probes and the plain answer, 01:00 the four new probes and one plain */
    CHECK_HAS(out, "  2026-01-01 00:00         4    0.0%      100       3     33.3%        -"
                   "     16.3    33.3%    33.3%");
    CHECK_HAS(out, "  2026-01-01 01:00         5    0.0%      100       4     50.0%   100.0%"
                   "     14.5    25.0%    25.0%");
    free(out);

    char html[600];
    snprintf(html, sizeof html, "%s/r.html", dir);
    const char *h_argv[] = {"drift", "report", "--drift-db", path, "--since", "2026-01-01",
                            "--until", "2026-01-02", "--html", html};
    CHECK_INT(cli(&out, 10, h_argv), 0);
    free(out);
    FILE *f = fopen(html, "rb");
    CHECK(f != NULL);
    if (f) {
        static char hb[1 << 20];
        size_t n = fread(hb, 1, sizeof hb - 1, f);
        hb[n] = '\0';
        fclose(f);
        CHECK_HAS(hb, "Verbosity: mean probe answer length per target");
        CHECK_HAS(hb, "characters per answer");
        CHECK_HAS(hb, "refusals and format failures");
        CHECK_HAS(hb, "<tr><td>s</td><td>t/a</td><td>4</td><td>50.0%</td><td>100.0%</td>"
                      "<td>14.5</td><td>25.0%</td><td>25.0%</td></tr>");
    }

    /* 5. status: all time, the same figures */
    const char *st_argv[] = {"drift", "status", "--drift-db", path};
    CHECK_INT(cli(&out, 4, st_argv), 0);
    CHECK_HAS(out, "  s                         t/a                            4     50.0%"
                   "   100.0%     14.5    25.0%    25.0%");
    CHECK_HAS(out, "  old                       t/a                            3     33.3%"
                   "        -     16.3    33.3%    33.3%");
    free(out);

    drift_probe_suite_free(suite);
    t_rmdir(dir);
    return t_done("drift_verbosity_test");
}
