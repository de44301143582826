/*
 * drift_recorder_test.c - the recorder writes everything pushed before
 * close, honours store_outputs and retention; version drift raises an event
 * on the very response and survives a reopen; passive output drift counts
 * changed outputs of repeated deterministic requests.
 */
#include "drift_test.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/resource.h>

static long long q1(const char *path, const char *sql)
{
    sqlite3 *db;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -2;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    } else {
        fprintf(stderr, "sql error: %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return v;
}

/* The thread id of this process's drift writer proper ("llmpin-drift"),
 * or -1. */
static pid_t writer_tid(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    pid_t found = -1;
    struct dirent *e;
    while ((e = readdir(dir)) && found < 0) {
        char path[300], name[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(name, sizeof name, f) && strcmp(name, "llmpin-drift\n") == 0)
            found = (pid_t)atoi(e->d_name);
        fclose(f);
    }
    closedir(dir);
    return found;
}

/* The committed records of the database at path, once there are n of them
 * or 10 s have passed: what the catch-up thread wrote without any flush. */
static long long wait_records(const char *path, long long n)
{
    long long have = 0;
    for (int tries = 0; tries < 500 && have != n; tries++) {
        usleep(20000);
        have = q1(path, "SELECT count(*) FROM drift_records");
    }
    return have;
}

static struct drift_record *rec(const char *target, int i)
{
    struct drift_record *r = drift_record_new();
    char buf[64];
    snprintf(buf, sizeof buf, "req-%d", i);
    r->request_id = strdup(buf);
    r->target = strdup(target);
    r->requested_model = strdup("gpt-4o");
    r->served_model = strdup("gpt-4o-2024-08-06");
    r->status = 200;
    r->latency_ms = 100 + i % 50;
    r->output_text = strdup("hello");
    drift_output_hash("hello", 5, r->output_hash);
    return r;
}

static void logsink(void *ud, const char *level, const char *msg)
{
    (*(int *)ud)++;
}

int main(void)
{
    char dir[256], path[512], err[512];
    t_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/drift.db", dir);
    struct cfg_drift cfg = t_cfg(path);

    /* 1. push 10,000 records, close: all of them are in the db */
    struct drift *d = drift_open(&cfg, err, sizeof err);
    if (!d) {
        fprintf(stderr, "drift_open: %s\n", err);
        return 1;
    }
    for (int i = 0; i < 10000; i++)
        drift_push(d, rec("openai/gpt-4o", i));
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 10000);
    CHECK_INT(q1(path, "SELECT count(DISTINCT request_id) FROM drift_records"), 10000);
    CHECK_INT(q1(path, "SELECT version FROM schema_version"), DRIFT_SCHEMA_VERSION);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE output_text IS NOT NULL"), 0);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE output_hash IS NULL"), 0);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE ttft_ms IS NOT NULL"), 0);

    /* 2. version drift: first value is a baseline; a new fingerprint is an
     *    event on that call; the same again is not; known values alternating
     *    are not; persisted across reopen */
    d = drift_open(&cfg, err, sizeof err);
    CHECK(d != NULL);
    int logged = 0;
    drift_set_log(d, logsink, &logged);
    struct drift_event ev;
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", "fp_1", &ev), 0);
    CHECK(ev.kind == NULL);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", "fp_1", &ev), 0);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", NULL, &ev), 0);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", "fp_2", &ev), 1);
    CHECK_STR(ev.kind, "version");
    CHECK_STR(ev.target, "openai/gpt-4o");
    CHECK_STR(ev.subject, "gpt-4o");
    CHECK_STR(ev.old_value, "gpt-4o-2024-08-06 / fp_1");
    CHECK_STR(ev.new_value, "gpt-4o-2024-08-06 / fp_2");
    CHECK(ev.summary && strstr(ev.summary, "fingerprint fp_2 never seen before"));
    cJSON *ej = drift_event_to_json(&ev);
    CHECK(ej && cJSON_IsObject(cJSON_GetObjectItem(ej, "evidence")));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ej, "kind")), "version");
    cJSON_Delete(ej);
    drift_event_clear(&ev);
    CHECK_INT(logged, 1);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", "fp_2", &ev), 0);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", "fp_1", &ev), 0);
    /* another pair has its own baseline */
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "fp_9", &ev), 0);
    /* a new served model */
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-11-20", "fp_2", &ev), 1);
    CHECK(ev.summary && strstr(ev.summary, "model gpt-4o-2024-11-20"));
    drift_event_clear(&ev);
    cJSON *adm = drift_admin_json(d);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(adm, "versions")) == 2);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(adm, "recent_events")) == 2);
    cJSON_Delete(adm);
    struct drift_stats st;
    drift_stats(d, &st);
    CHECK_INT(st.events, 2);
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_events WHERE kind = 'version'"), 2);
    CHECK_INT(q1(path, "SELECT count FROM drift_versions WHERE value = 'fp_1'"), 3);
    CHECK_INT(q1(path, "SELECT count FROM drift_versions WHERE value = 'gpt-4o-2024-08-06'"), 6);

    d = drift_open(&cfg, err, sizeof err);
    CHECK(d != NULL);
    drift_set_log(d, logsink, &logged);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-11-20", "fp_1", &ev), 0);
    CHECK_INT(drift_observe_version(d, "openai/gpt-4o", "gpt-4o", "gpt-4o-2024-11-20", "fp_3", &ev), 1);
    drift_event_clear(&ev);
    adm = drift_admin_json(d);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(adm, "recent_events")) == 3);
    cJSON_Delete(adm);
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_events"), 3);
    CHECK_INT(q1(path, "SELECT count FROM drift_versions WHERE value = 'fp_1'"), 4);

    /* 3. passive output drift: deterministic repeats with a changed output */
    d = drift_open(&cfg, err, sizeof err);
    CHECK(d != NULL);
    const char *outs[] = {"four", "four", "4", "four", "4"};
    const char *fps[] = {"fp_a", "fp_a", "fp_b", "fp_a", "fp_b"};
    for (int i = 0; i < 5; i++) {
        struct drift_record *r = drift_record_new();
        r->target = strdup("local/qwen");
        r->status = 200;
        r->deterministic = 1;
        r->system_fingerprint = strdup(fps[i]);
        cJSON *body = cJSON_Parse("{\"model\":\"qwen\",\"temperature\":0,"
                                  "\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}]}");
        drift_canonical_request_hash(body, r->request_hash);
        cJSON_Delete(body);
        drift_output_hash(outs[i], strlen(outs[i]), r->output_hash);
        drift_push(d, r);
    }
    /* a non-deterministic request with changing output is not counted */
    for (int i = 0; i < 2; i++) {
        struct drift_record *r = drift_record_new();
        r->target = strdup("local/qwen");
        r->status = 200;
        snprintf(r->request_hash, sizeof r->request_hash, "%064d", 1);
        drift_output_hash(outs[i + 1], strlen(outs[i + 1]), r->output_hash);
        drift_push(d, r);
    }
    drift_flush(d);
    drift_stats(d, &st);
    CHECK_INT(st.output_compared, 4);
    CHECK_INT(st.output_changed, 3);
    CHECK_INT(st.queued, 0);
    drift_close(d);
    CHECK_INT(q1(path, "SELECT compared FROM drift_output_changes WHERE fingerprint = 'fp_b'"), 2);
    CHECK_INT(q1(path, "SELECT changed FROM drift_output_changes WHERE fingerprint = 'fp_b'"), 2);
    CHECK_INT(q1(path, "SELECT changed FROM drift_output_changes WHERE fingerprint = 'fp_a'"), 1);
    d = drift_open(&cfg, err, sizeof err);   /* counters reload */
    adm = drift_admin_json(d);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(adm, "output_drift")) == 2);
    cJSON_Delete(adm);
    drift_close(d);

    /* 4. store_outputs: full keeps text, none keeps neither hash nor text */
    snprintf(path, sizeof path, "%s/full.db", dir);
    cfg = t_cfg(path);
    cfg.store_outputs = CFG_STORE_FULL;
    d = drift_open(&cfg, err, sizeof err);
    drift_push(d, rec("t", 1));
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE output_text = 'hello'"), 1);
    snprintf(path, sizeof path, "%s/none.db", dir);
    cfg = t_cfg(path);
    cfg.store_outputs = CFG_STORE_NONE;
    d = drift_open(&cfg, err, sizeof err);
    drift_push(d, rec("t", 1));
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE output_text IS NULL AND output_hash IS NULL"), 1);

    /* 4b. helpers that fill a record from the request and the answer */
    {
        cJSON *body = cJSON_Parse("{\"model\":\"gpt-4o\",\"seed\":3,\"messages\":[]}");
        struct drift_record *r = drift_record_new();
        CHECK(drift_record_set_request(r, body) == 0);
        CHECK_STR(r->requested_model, "gpt-4o");
        CHECK_INT(r->deterministic, 1);
        CHECK_INT(r->seed, 3);
        CHECK_INT(strlen(r->request_hash), 64);
        snprintf(path, sizeof path, "%s/helpers.db", dir);
        cfg = t_cfg(path);
        d = drift_open(&cfg, err, sizeof err);
        /* store_outputs = hash: a copy for the writer to hash, not to store */
        CHECK(drift_record_set_output(d, r, "hi there", 2) == 0);
        CHECK_STR(r->output_text, "hi");
        CHECK_INT(r->output_len, 2);
        CHECK_STR(r->output_hash, "");
        r->request_id = strdup("helper-hash");
        drift_push(d, r);
        drift_close(d);
        char want[65], sql[800];
        drift_output_hash("hi", 2, want);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM drift_records WHERE request_id ="
                 " 'helper-hash' AND output_hash = '%s' AND output_text IS NULL"
                 " AND output_len = 2", want);
        CHECK_INT(q1(path, sql), 1);
        cfg.store_outputs = CFG_STORE_FULL;
        d = drift_open(&cfg, err, sizeof err);
        r = drift_record_new();
        r->request_id = strdup("helper-full");
        CHECK(drift_record_set_output(d, r, "hi there", 2) == 0);
        CHECK_STR(r->output_text, "hi");
        drift_push(d, r);
        drift_close(d);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM drift_records WHERE request_id ="
                 " 'helper-full' AND output_hash = '%s' AND output_text = 'hi'", want);
        CHECK_INT(q1(path, sql), 1);
        cfg.store_outputs = CFG_STORE_NONE;
        d = drift_open(&cfg, err, sizeof err);
        r = drift_record_new();
        CHECK(drift_record_set_output(d, r, "hi there", 8) == 0);
        CHECK(r->output_text == NULL);
        CHECK_INT(r->output_len, 8);
        drift_record_free(r);
        drift_close(d);

        /* the raw request body, canonicalised and hashed by the writer; two
         * deterministic repeats with different answers are output drift */
        const char *raw = "{ \"seed\": 3, \"messages\": [], \"model\": \"gpt-4o\" }";
        char rh[65];
        CHECK_INT(drift_canonical_request_hash(body, rh), 0);
        snprintf(path, sizeof path, "%s/raw.db", dir);
        cfg = t_cfg(path);
        d = drift_open(&cfg, err, sizeof err);
        for (int i = 0; i < 3; i++) {
            r = drift_record_new();
            r->request_id = strdup(i == 2 ? "raw-bad" : "raw");
            r->target = strdup("t");
            r->status = 200;
            CHECK_INT(i == 2 ? drift_record_set_request_raw(r, "[1, 2", 5)
                             : drift_record_set_request_raw(r, raw, strlen(raw)), 0);
            CHECK_STR(r->request_hash, "");
            CHECK(drift_record_set_output(d, r, i ? "two" : "one", 3) == 0);
            drift_push(d, r);
        }
        drift_flush(d);
        struct drift_stats st;
        drift_stats(d, &st);
        CHECK_INT(st.output_compared, 1);
        CHECK_INT(st.output_changed, 1);
        drift_close(d);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM drift_records WHERE request_id = 'raw'"
                 " AND request_hash = '%s' AND deterministic = 1 AND seed = 3"
                 " AND requested_model = 'gpt-4o'", rh);
        CHECK_INT(q1(path, sql), 2);
        CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE request_id = 'raw-bad'"
                           " AND request_hash IS NULL AND deterministic = 0"), 1);
        cJSON_Delete(body);

        /* the writer remembers what it learnt from a body: repeats of the
         * same bytes, mixed with other bodies and with records that name
         * their model, in runs long enough for the multi-row INSERT, give
         * the rows a fresh hashing gives */
        snprintf(path, sizeof path, "%s/memo.db", dir);
        cfg = t_cfg(path);
        d = drift_open(&cfg, err, sizeof err);
        static char big[20000];
        size_t bl = (size_t)snprintf(big, sizeof big, "{\"model\":\"big\",\"temperature\":0,"
                                     "\"messages\":[{\"role\":\"user\",\"content\":\"");
        memset(big + bl, 'x', 18000);
        snprintf(big + bl + 18000, sizeof big - bl - 18000, "\"}]}");
        const char *bodies[5] = {raw, "{\"messages\":[],\"temperature\":0.7}", "[1, 2", big,
                                 "{\"model\":\"m2\",\"seed\":-9,\"messages\":[]}"};
        char hashes[5][65], id[32];
        for (int k = 0; k < 5; k++) {
            cJSON *b = cJSON_Parse(bodies[k]);
            if (!cJSON_IsObject(b) || drift_canonical_request_hash(b, hashes[k]) != 0)
                hashes[k][0] = '\0';
            cJSON_Delete(b);
        }
        for (int i = 0; i < 100; i++) {
            int k = (i * 7) % 5;
            struct drift_record_fields mf = {
                .request_id = id, .target = "t", .requested_model = i % 3 == 0 ? "named" : NULL,
                .request_body = bodies[k], .request_body_len = strlen(bodies[k]),
                .output = "o", .output_len = 1};
            snprintf(id, sizeof id, "memo-%d-%d", k, i % 3 == 0);
            r = drift_record_make(d, &mf);
            r->status = 200;
            drift_push(d, r);
        }
        drift_close(d);
        CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 100);
        static const char *const models[5] = {"'gpt-4o'", "NULL", "NULL", "'big'", "'m2'"};
        static const char *const det[5] = {"deterministic = 1 AND seed = 3",
                                           "deterministic = 0 AND seed IS NULL",
                                           "deterministic = 0 AND seed IS NULL",
                                           "deterministic = 1 AND seed IS NULL",
                                           "deterministic = 1 AND seed = -9"};
        for (int k = 0; k < 5; k++)
            for (int named = 0; named < 2; named++) {
                char hq[100], mq[40];
                snprintf(hq, sizeof hq, hashes[k][0] ? "request_hash = '%s'" : "request_hash IS NULL",
                         hashes[k]);
                snprintf(mq, sizeof mq, named ? "requested_model = 'named'" : models[k][0] == 'N'
                         ? "requested_model IS NULL" : "requested_model = %s", models[k]);
                snprintf(sql, sizeof sql, "SELECT count(*) FROM drift_records WHERE"
                         " request_id = 'memo-%d-%d' AND NOT (%s AND %s AND %s)", k, named, hq,
                         mq, det[k]);
                CHECK_INT(q1(path, sql), 0);
                snprintf(sql, sizeof sql, "SELECT count(*) > 0 FROM drift_records WHERE"
                         " request_id = 'memo-%d-%d'", k, named);
                CHECK_INT(q1(path, sql), 1);
            }

        /* blocks handed back by the writer are reused for records of other
         * sizes (rounds flushed one by one), every row as made */
        snprintf(path, sizeof path, "%s/spare.db", dir);
        cfg = t_cfg(path);
        cfg.store_outputs = CFG_STORE_FULL;
        d = drift_open(&cfg, err, sizeof err);
        static char text[12000];
        memset(text, 'a', sizeof text);
        for (int round = 0; round < 4; round++) {
            for (int i = 0; i < 40; i++) {
                size_t tl = (size_t)((i * 997 + round * 131) % 11000);
                text[0] = (char)('A' + round);
                struct drift_record_fields sf = {
                    .request_id = id, .target = "t", .request_body = raw,
                    .request_body_len = strlen(raw), .output = text, .output_len = tl};
                snprintf(id, sizeof id, "sp-%d-%d-%zu", round, i, tl);
                r = drift_record_make(d, &sf);
                CHECK(r != NULL && r->output_len == (int)tl);
                r->status = 200;
                drift_push(d, r);
            }
            drift_flush(d);
        }
        drift_close(d);
        CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 160);
        for (int round = 0; round < 4; round++)
            for (int i = 0; i < 40; i++) {
                size_t tl = (size_t)((i * 997 + round * 131) % 11000);
                snprintf(sql, sizeof sql, "SELECT count(*) FROM drift_records WHERE"
                         " request_id = 'sp-%d-%d-%zu' AND output_len = %zu AND"
                         " length(output_text) = %zu AND (%zu = 0 OR substr(output_text, 1, 1)"
                         " = '%c') AND requested_model = 'gpt-4o'", round, i, tl, tl, tl, tl,
                         'A' + round);
                CHECK_INT(q1(path, sql), 1);
            }

        /* drift_record_make: one block, the same row as field by field */
        snprintf(path, sizeof path, "%s/make.db", dir);
        cfg = t_cfg(path);
        d = drift_open(&cfg, err, sizeof err);
        struct drift_record_fields f = {
            .request_id = "mk-1", .key_name = "team-a", .route = "chat", .target = "t",
            .requested_model = "gpt-4o", .served_model = "gpt-4o-2024-08-06",
            .system_fingerprint = "fp_1", .upstream_request_id = "up-1",
            .version_headers = "{\"openai-version\":\"2020-10-01\"}",
            .request_body = raw, .request_body_len = strlen(raw),
            .output = "h\xc3\xa9!", .output_len = 4,
        };
        r = drift_record_make(d, &f);
        CHECK(r != NULL);
        CHECK_STR(r->route, "chat");
        CHECK_STR(r->output_text, "h\xc3\xa9!");
        CHECK_INT(r->output_len, 3);
        CHECK_INT(r->probe_correct, -1);
        CHECK_INT(r->ttft_ms, -1);
        r->status = 200;
        /* a field replaced afterwards: the old one is in the block */
        drift_record_free_field(r, r->served_model);
        r->served_model = strdup("gpt-4o-2024-11-20");
        drift_push(d, r);
        /* made and freed without being pushed */
        f.request_id = "mk-never";
        r = drift_record_make(d, &f);
        drift_record_free_field(r, r->output_text);
        r->output_text = strdup("replaced");
        drift_record_free(r);
        /* without body or output */
        struct drift_record_fields g = {.request_id = "mk-2", .target = "t"};
        r = drift_record_make(d, &g);
        CHECK(r != NULL && r->output_text == NULL && r->request_raw == NULL);
        CHECK_INT(r->output_len, -1);
        r->status = 502;
        drift_push(d, r);
        drift_close(d);
        drift_output_hash("h\xc3\xa9!", 4, want);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM drift_records WHERE request_id = 'mk-1'"
                 " AND key_name = 'team-a' AND route = 'chat' AND target = 't'"
                 " AND requested_model = 'gpt-4o' AND served_model = 'gpt-4o-2024-11-20'"
                 " AND system_fingerprint = 'fp_1' AND upstream_request_id = 'up-1'"
                 " AND version_headers = '{\"openai-version\":\"2020-10-01\"}'"
                 " AND request_hash = '%s' AND deterministic = 1 AND seed = 3"
                 " AND output_hash = '%s' AND output_text IS NULL AND output_len = 3", rh, want);
        CHECK_INT(q1(path, sql), 1);
        CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE request_id = 'mk-2'"
                           " AND status = 502 AND request_hash IS NULL AND output_hash IS NULL"
                           " AND output_len IS NULL"), 1);
        CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 2);

        /* a probe answer made with keep_output is graded even with
         * store_outputs = none, and its text is not stored */
        snprintf(path, sizeof path, "%s/make-probe.db", dir);
        cfg = t_cfg(path);
        cfg.store_outputs = CFG_STORE_NONE;
        d = drift_open(&cfg, err, sizeof err);
        struct drift_probe_suite *ps = drift_probe_suite_parse(
            "{\"id\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":\"1+1?\"}],"
            "\"expect\":{\"int\":2}}\n", 76, "mk", err, sizeof err);
        CHECK(ps != NULL);
        struct drift_record_fields h = {.target = "t", .output = "It is 2.", .output_len = 8,
                                        .keep_output = 1};
        r = drift_record_make(d, &h);
        r->status = 200;
        if (ps)
            CHECK_INT(drift_probe_result(d, "mk", &ps->probes[0], r, NULL), 0);
        drift_close(d);
        CHECK_INT(q1(path, "SELECT count(*) FROM drift_records WHERE probe_correct = 1"
                           " AND probe_answer = '2' AND output_text IS NULL AND output_hash IS NULL"
                           " AND output_len = 8 AND probe_parsed = 1 AND probe_refused = 0"), 1);
        drift_probe_suite_free(ps);
    }

    /* 5. retention by age: records older than retention_days go at the next
     *    open, more than one deletion chunk (10,000) of them */
    snprintf(path, sizeof path, "%s/ret.db", dir);
    cfg = t_cfg(path);
    cfg.retention_days = 30;
    d = drift_open(&cfg, err, sizeof err);
    for (int i = 0; i < 25006; i++) {
        struct drift_record *r = rec("t", i);
        r->ts_ms = drift_now_ms() - (i < 25000 ? 40LL : 1LL) * 86400000LL;
        drift_push(d, r);
    }
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 25006);
    d = drift_open(&cfg, err, sizeof err);
    drift_flush(d);
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 6);

    /* 5b. retention by size: 3 MB of records with retention_mb = 1 keeps the newest */
    snprintf(path, sizeof path, "%s/size.db", dir);
    cfg = t_cfg(path);
    cfg.retention_mb = 1;
    d = drift_open(&cfg, err, sizeof err);
    char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    for (int i = 0; i < 10000; i++) {
        struct drift_record *r = rec("t", i);
        r->version_headers = strdup(big);
        drift_push(d, r);
    }
    drift_close(d);
    CHECK_INT(q1(path, "SELECT count(*) FROM drift_records"), 10000);
    d = drift_open(&cfg, err, sizeof err);   /* retention runs when the writer starts, */
    drift_push(d, rec("t", 10000));          /* before its first batch */
    drift_flush(d);
    drift_stats(d, &st);
    drift_close(d);
    long long left = q1(path, "SELECT count(*) FROM drift_records");
    long long used = q1(path, "SELECT (SELECT page_count FROM pragma_page_count()) - "
                              "(SELECT freelist_count FROM pragma_freelist_count())");
    long long psize = q1(path, "SELECT page_size FROM pragma_page_size()");
    printf("size retention: %lld of 10000 records left, %lld bytes live, %llu deleted\n", left,
           used * psize, (unsigned long long)st.retention_deleted);
    CHECK(left > 0 && left < 10001);
    CHECK(used * psize <= 1024 * 1024);
    CHECK_INT(q1(path, "SELECT max(request_id = 'req-9999') FROM drift_records"), 1);
    CHECK_INT(st.retention_deleted, 10001 - left);

    /* 6. a database from a newer llmpin is refused with a message */
    snprintf(path, sizeof path, "%s/new.db", dir);
    {
        sqlite3 *db;
        sqlite3_open(path, &db);
        sqlite3_exec(db, "CREATE TABLE schema_version(version INTEGER); INSERT INTO schema_version VALUES(99)", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    cfg = t_cfg(path);
    CHECK(drift_open(&cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "schema version 99 is newer") != NULL);

    /* 7. an unopenable path names the path */
    cfg = t_cfg("/nonexistent-dir/x/drift.db");
    CHECK(drift_open(&cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent-dir/x/drift.db") != NULL);

    /* 8. a starved low-priority writer: the catch-up thread commits what
     *    waited more than two commit intervals, without any flush or close */
    {
        char p8[600];
        snprintf(p8, sizeof p8, "%s/catchup.db", dir);
        struct cfg_drift c8 = t_cfg(p8);
        c8.commit_interval_ms = 20;
        c8.writer_nice = 19;
        struct drift *d8 = drift_open(&c8, err, sizeof err);
        CHECK(d8 != NULL);
        if (d8) {
            /* idle, the two writer threads sleep: a waiting thread that spins
             * (a wait on the wrong clock returns at once) would burn the
             * whole interval in CPU time */
            struct rusage ru0, ru1;
            getrusage(RUSAGE_SELF, &ru0);
            usleep(400000);
            getrusage(RUSAGE_SELF, &ru1);
            long long cpu_us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000LL +
                               (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                               (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000LL +
                               (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
            if (cpu_us > 200000)
                fprintf(stderr, "idle writer threads used %lld us of CPU in 400 ms\n", cpu_us);
            CHECK(cpu_us <= 200000);
            drift_debug_stall_writer(d8, 1);
            for (int i = 0; i < 100; i++)
                drift_push(d8, rec("openai/gpt-4o", i));
            CHECK_INT(wait_records(p8, 100), 100);
            drift_debug_stall_writer(d8, 0);
            for (int i = 100; i < 150; i++)
                drift_push(d8, rec("openai/gpt-4o", i));
            drift_close(d8);
            CHECK_INT(q1(p8, "SELECT count(*) FROM drift_records"), 150);
            CHECK_INT(q1(p8, "SELECT count(DISTINCT request_id) FROM drift_records"), 150);
        }
    }

    /* 9. a low-priority writer starved in the middle of a batch, holding the
     *    database: at its next statement it commits what it wrote and hands
     *    the rest to the catch-up thread, in order. Without the hand-over
     *    the records would wait for as long as the writer is held. */
    {
        char p9[600];
        snprintf(p9, sizeof p9, "%s/handover.db", dir);
        struct cfg_drift c9 = t_cfg(p9);
        c9.commit_interval_ms = 20;
        c9.writer_nice = CFG_WRITER_IDLE;   /* the default */
        struct drift *d9 = drift_open(&c9, err, sizeof err);
        CHECK(d9 != NULL);
        if (d9) {
            usleep(300000);          /* both writer threads ready */
            drift_debug_stall_writer(d9, 2);
            for (int i = 0; i < 300; i++)
                drift_push(d9, rec("openai/gpt-4o", i));
            CHECK_INT(wait_records(p9, 300), 300);
            struct drift_stats st9;
            drift_stats(d9, &st9);
            if (st9.writer_stalls)   /* the writer took the batch and was held: */
                CHECK(st9.handovers >= 1);   /* only a hand-over wrote the rest */
            else
                fprintf(stderr, "note: the catch-up thread took the whole batch\n");
            /* in push order: no later-pushed record got a smaller rowid */
            CHECK_INT(q1(p9, "SELECT count(*) FROM drift_records a, drift_records b"
                             " WHERE a.id < b.id AND CAST(substr(a.request_id, 5) AS INTEGER)"
                             " > CAST(substr(b.request_id, 5) AS INTEGER)"), 0);
            drift_debug_stall_writer(d9, 0);
            for (int i = 300; i < 350; i++)
                drift_push(d9, rec("openai/gpt-4o", i));
            drift_close(d9);
            CHECK_INT(q1(p9, "SELECT count(*) FROM drift_records"), 350);
            CHECK_INT(q1(p9, "SELECT count(DISTINCT request_id) FROM drift_records"), 350);
        }
    }

    /* 10. the writer thread runs at the configured priority: SCHED_IDLE by
     *     default, else the nice value */
    {
        int want[] = {CFG_WRITER_IDLE, 19, 0};
        for (int k = 0; k < 3; k++) {
            char p10[600];
            snprintf(p10, sizeof p10, "%s/prio%d.db", dir, k);
            struct cfg_drift c10 = t_cfg(p10);
            c10.writer_nice = want[k];
            struct drift *d10 = drift_open(&c10, err, sizeof err);
            CHECK(d10 != NULL);
            if (!d10)
                continue;
            int policy = -1, nice = -100;
            for (int tries = 0; tries < 200; tries++) {   /* until the thread has set it */
                pid_t tid = writer_tid();
                if (tid > 0) {
                    policy = sched_getscheduler(tid);
                    errno = 0;
                    nice = getpriority(PRIO_PROCESS, (id_t)tid);
                    if (want[k] == CFG_WRITER_IDLE ? policy == SCHED_IDLE : nice == want[k])
                        break;
                }
                usleep(10000);
            }
            if (want[k] == CFG_WRITER_IDLE) {
                CHECK_INT(policy, SCHED_IDLE);
            } else {
                CHECK_INT(policy, SCHED_OTHER);
                CHECK_INT(nice, want[k]);
            }
            drift_close(d10);
        }
    }

    t_rmdir(dir);
    return t_done("drift_recorder_test");
}
