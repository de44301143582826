/*
 * drift_report_test.c - end to end through the store and the CLI: a target
 * whose fingerprint changes and whose probe accuracy falls from 84% to 51%
 * produces a version event and an accuracy alarm (fed through
 * drift_probe_result, persisted across a reopen in the middle), and
 * `drift status`, `drift report --html`, `drift compare` and `drift ack`
 * show them.
 */
#include "drift_test.h"

#include <fcntl.h>
#include <sqlite3.h>

struct rng {
    uint64_t s;
};

static double unif(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

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

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    return b;
}

int main(void)
{
    char dir[256], path[512], html[512], err[512];
    t_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.db", dir);
    snprintf(html, sizeof html, "%s/report.html", dir);
    struct cfg_drift cfg = t_cfg(path);
    cfg.store_outputs = CFG_STORE_FULL;
    struct drift_probe_suite *suite = drift_probe_suite_load("builtin:primes", err, sizeof err);
    CHECK(suite != NULL);
    if (!suite)
        return 1;

    struct drift *d = drift_open(&cfg, err, sizeof err);
    CHECK(d != NULL);
    if (!d)
        return 1;
    struct rng r = {2024};
    int64_t t0 = drift_now_ms() - 2 * 86400000LL;   /* two days ago, one probe a minute */
    int version_events = 0, alarms = 0, first_alarm_at = -1;
    char alarm_summary[1024] = "";
    for (int i = 0; i < 1200; i++) {
        if (i == 500) {                    /* restart in the middle: state must persist */
            drift_close(d);
            d = drift_open(&cfg, err, sizeof err);
            CHECK(d != NULL);
            if (!d)
                return 1;
        }
        const struct drift_probe *p = &suite->probes[i % suite->n];
        int changed = i >= 700;
        const char *fp = changed ? "fp_new" : "fp_old";
        struct drift_event ev;
        if (drift_observe_version(d, "openai/gpt-4", "gpt-4", "gpt-4-0613", fp, &ev) == 1) {
            version_events++;
            drift_event_clear(&ev);
        }
        int correct = unif(&r) < (changed ? 0.51 : 0.84);
        int yes = strcmp(p->expect, "yes") == 0;
        char out[160];
        snprintf(out, sizeof out, "Checking divisors... so the answer is %s.",
                 (correct ? yes : !yes) ? "[Yes]" : "[No]");
        struct drift_record *rec = drift_record_new();
        rec->ts_ms = t0 + (int64_t)i * 60000;
        rec->target = strdup("openai/gpt-4");
        rec->requested_model = strdup("gpt-4");
        rec->served_model = strdup("gpt-4-0613");
        rec->system_fingerprint = strdup(fp);
        rec->status = 200;
        rec->latency_ms = changed ? 900 : 600;
        rec->output_text = strdup(out);
        if (drift_probe_result(d, suite->name, p, rec, &ev) == 1) {
            alarms++;
            if (first_alarm_at < 0) {
                first_alarm_at = i;
                snprintf(alarm_summary, sizeof alarm_summary, "%s", ev.summary);
                CHECK_STR(ev.kind, "accuracy");
                CHECK_STR(ev.subject, "builtin:primes");
            }
            drift_event_clear(&ev);
        }
    }
    /* shadow pairs for compare: same request id on two targets */
    const char *a_out[] = {"The capital of France is Paris.", "2 + 2 = 4", "Hello there"};
    const char *b_out[] = {"The capital of France is Paris.", "2 + 2 is 4", "Goodbye"};
    for (int i = 0; i < 3; i++) {
        char id[32];
        for (int side = 0; side < 2; side++) {
            struct drift_record *rec = drift_record_new();
            /* the mirror may carry the same id or the id + "-shadow" */
            snprintf(id, sizeof id, "req-%d%s", i, side && i == 2 ? "-shadow" : "");
            rec->request_id = strdup(id);
            rec->target = strdup(side ? "local/qwen" : "openai/gpt-4o");
            rec->is_shadow = side;
            rec->status = 200;
            rec->latency_ms = 100;
            rec->output_text = strdup(side ? b_out[i] : a_out[i]);
            drift_output_hash(rec->output_text, strlen(rec->output_text), rec->output_hash);
            drift_push(d, rec);
        }
    }
    cJSON *adm = drift_admin_json(d);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(adm, "detectors")) == 1);
    cJSON_Delete(adm);
    drift_close(d);
    printf("version events %d, alarms %d, first alarm %d probes after the change: %s\n",
           version_events, alarms, first_alarm_at - 700, alarm_summary);
    CHECK_INT(version_events, 1);
    CHECK(alarms >= 1);
    CHECK(first_alarm_at >= 700 && first_alarm_at <= 700 + 150);
    CHECK(strstr(alarm_summary, "accuracy fell from") != NULL);

    /* status */
    char *out = NULL;
    const char *st_argv[] = {"drift", "--drift-db", path, "status"};   /* options first is fine */
    CHECK_INT(cli(&out, 4, st_argv), 0);
    CHECK(strstr(out, "openai/gpt-4") != NULL);
    CHECK(strstr(out, "fp_new") != NULL && strstr(out, "fp_old") != NULL);
    CHECK(strstr(out, "Open alarms:") != NULL);
    CHECK(strstr(out, "accuracy fell from") != NULL);
    CHECK(strstr(out, "builtin:primes on openai/gpt-4") != NULL);
    free(out);

    /* report, text and HTML */
    const char *rep_argv[] = {"drift", "report", "--drift-db", path, "--since", "7d", "--html", html};
    CHECK_INT(cli(&out, 8, rep_argv), 0);
    CHECK(strstr(out, "== openai/gpt-4 ==") != NULL);
    CHECK(strstr(out, "** #") != NULL);
    free(out);
    char *h = slurp(html);
    CHECK(h != NULL);
    if (h) {
        CHECK(strstr(h, "<svg") != NULL);
        CHECK(strstr(h, "Probe accuracy per target") != NULL);
        CHECK(strstr(h, "time (UTC)") != NULL);
        CHECK(strstr(h, "Legend") != NULL);
        CHECK(strstr(h, "accuracy fell from") != NULL);
        CHECK(strstr(h, "never seen before") != NULL);
        CHECK(strstr(h, "<script") == NULL);
        CHECK(strstr(h, "http://www.w3.org/2000/svg") != NULL);
        CHECK(strstr(h, "src=") == NULL && strstr(h, "href=") == NULL);
        free(h);
    }

    /* compare: 1 of 3 identical; Jaccard named */
    const char *cmp_argv[] = {"drift", "compare", "openai/gpt-4o", "local/qwen", "--drift-db", path};
    CHECK_INT(cli(&out, 6, cmp_argv), 0);
    CHECK(strstr(out, "3 pairs") != NULL);
    CHECK(strstr(out, "identical output (SHA-256 of the text): 1 of 3 (33.3%)") != NULL);
    CHECK(strstr(out, "Jaccard") != NULL);
    free(out);

    /* ack all closes the alarms */
    const char *ack_argv[] = {"drift", "ack", "all", "--drift-db", path};
    CHECK_INT(cli(&out, 5, ack_argv), 0);
    free(out);
    CHECK_INT(cli(&out, 4, st_argv), 0);
    CHECK(strstr(out, "Open alarms:\n  (none)") != NULL);
    free(out);

    /* usage errors */
    const char *bad1[] = {"drift", "status", "--drift-db", "/nonexistent/x.db"};
    CHECK_INT(cli(&out, 4, bad1), 1);
    free(out);
    const char *bad2[] = {"drift", "frobnicate"};
    CHECK_INT(cli(&out, 2, bad2), 2);
    free(out);
    const char *bad3[] = {"drift", "report", "--since", "soon", "--drift-db", path};
    CHECK_INT(cli(&out, 6, bad3), 2);
    free(out);

    drift_probe_suite_free(suite);
    t_rmdir(dir);
    return t_done("drift_report_test");
}
