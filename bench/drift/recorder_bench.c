/*
 * recorder_bench.c - what one drift record costs: on the pushing (event
 * loop) thread, and on the writer thread, per record, with records shaped
 * like the ones proxy/app.c makes for bench/proxy's request.
 *
 *   llmpin-bench-recorder [N [RATE [parsed|raw|make|unique]]]
 *       N records (default 100000) at RATE per second (default 10000; 0 = as
 *       fast as possible); parsed: field by field, the request as parsed JSON
 *       (drift_record_set_request); raw: the same with the request as bytes
 *       (drift_record_set_request_raw); make: drift_record_make; unique: the
 *       same with a different request body every time
 *
 * Prints ns of thread CPU per record for the pusher and for the rest of the
 * process (the writer), and the database size. Not a test: figures vary
 * with the machine; compare two builds on the same one.
 */
#include "drift/drift.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long rate = argc > 2 ? atol(argv[2]) : 10000;
    const char *how = argc > 3 ? argv[3] : "parsed";
    int mode = strcmp(how, "raw") == 0 ? 1 : strcmp(how, "make") == 0 ? 2
             : strcmp(how, "unique") == 0 ? 3 : 0;
    char dir[] = "/tmp/llmpin-recbench-XXXXXX", path[128], err[512];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/d.db", dir);
    struct cfg_drift cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.enabled = 1;
    cfg.db_path = path;
    cfg.store_outputs = CFG_STORE_HASH;
    cfg.commit_interval_ms = 100;
    cfg.retention_days = 90;
    cfg.retention_mb = 4096;
    struct drift *d = drift_open(&cfg, err, sizeof err);
    if (!d) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const char *body = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"hello benchmark\"}],\"max_tokens\":16}";
    const char *out = "Hello! How can I help you today?";
    cJSON *req = cJSON_Parse(body);
    double c0 = process_cpu(), l0 = thread_cpu(), t0 = mono();
    double loop = 0;
    for (long i = 0; i < n; i++) {
        if (rate > 0 && i % 100 == 0) {
            double due = t0 + (double)i / rate;
            double now = mono();
            if (due > now)
                usleep((useconds_t)((due - now) * 1e6));
        }
        double a = thread_cpu();
        char id[40];
        snprintf(id, sizeof id, "%016lx%08lx", (unsigned long)i * 2654435761UL, (unsigned long)i);
        struct drift_record *r;
        char ubody[200];
        if (mode == 3) {              /* a different request every time */
            snprintf(ubody, sizeof ubody, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":"
                     "\"user\",\"content\":\"hello benchmark %ld\"}],\"max_tokens\":16}", i);
        }
        if (mode >= 2) {
            const char *b = mode == 3 ? ubody : body;
            struct drift_record_fields f = {
                .request_id = id, .key_name = "default", .route = "default",
                .target = "upstream/gpt-4o-mini", .requested_model = "gpt-4o-mini",
                .served_model = "gpt-4o-mini-2024-07-18", .system_fingerprint = "fp_bench",
                .upstream_request_id = id,
                .version_headers = "{\"openai-version\":\"2020-10-01\"}",
                .request_body = b, .request_body_len = strlen(b),
                .output = out, .output_len = strlen(out),
            };
            r = drift_record_make(d, &f);
        } else {
            r = drift_record_new();
            r->request_id = strdup(id);
            r->key_name = strdup("default");
            r->route = strdup("default");
            r->target = strdup("upstream/gpt-4o-mini");
            r->requested_model = strdup("gpt-4o-mini");
            r->served_model = strdup("gpt-4o-mini-2024-07-18");
            r->system_fingerprint = strdup("fp_bench");
            r->upstream_request_id = strdup(id);
            r->version_headers = strdup("{\"openai-version\":\"2020-10-01\"}");
            if (mode == 1)
                drift_record_set_request_raw(r, body, strlen(body));
            else
                drift_record_set_request(r, req);
            drift_record_set_output(d, r, out, strlen(out));
        }
        r->status = 200;
        r->latency_ms = 2;
        r->prompt_tokens = 9;
        r->completion_tokens = 9;
        drift_push(d, r);
        loop += thread_cpu() - a;
    }
    drift_flush(d);
    double wall = mono() - t0;
    double total = process_cpu() - c0, l1 = thread_cpu() - l0;
    struct drift_stats st;
    drift_stats(d, &st);
    drift_close(d);
    cJSON_Delete(req);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "du -k %s/d.db | cut -f1", dir);
    FILE *p = popen(cmd, "r");
    long kb = 0;
    if (p && fscanf(p, "%ld", &kb) != 1)
        kb = 0;
    if (p)
        pclose(p);
    printf("%s: records %ld in %.2f s (%ld batches, %llu dropped): pusher %.0f ns/record, "
           "writer %.0f ns/record, db %.0f bytes/record\n",
           how, n, wall, (long)st.batches, (unsigned long long)st.dropped, loop / n * 1e9,
           (total - l1) / n * 1e9, kb * 1024.0 / n);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
