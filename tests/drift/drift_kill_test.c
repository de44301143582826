/*
 * drift_kill_test.c - durability under SIGKILL.
 *
 * A child pushes records as fast as it can with commit_interval_ms = 50 and
 * reports, through a pipe, every increase of drift_stats.written (records
 * whose transaction has committed). The parent kills it with SIGKILL in the
 * middle of the stream, reopens the database and checks: integrity_check is
 * "ok", every record the child knew committed is there, the records present
 * are exactly a prefix of what was pushed (nothing torn, nothing reordered),
 * and the loss is bounded by what was pushed after the last commit report.
 */
#include "drift_test.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>

static void child(const char *path, int fd)
{
    char err[512];
    struct cfg_drift cfg = t_cfg(path);
    cfg.commit_interval_ms = 50;
    struct drift *d = drift_open(&cfg, err, sizeof err);
    if (!d) {
        dprintf(fd, "E %s\n", err);
        _exit(3);
    }
    uint64_t last = 0;
    for (long i = 0;; i++) {
        struct drift_record *r = drift_record_new();
        char id[32];
        snprintf(id, sizeof id, "req-%ld", i);
        r->request_id = strdup(id);
        r->target = strdup("openai/gpt-4o");
        r->status = 200;
        r->latency_ms = 42;
        drift_push(d, r);
        if (i % 100 == 99) {
            struct drift_stats st;
            drift_stats(d, &st);
            if (st.written != last) {
                last = st.written;
                dprintf(fd, "W %llu %ld\n", (unsigned long long)st.written, i + 1);
            }
            /* stay far below the queue bound: a drop would be a gap */
            while (st.queued > 5000) {
                struct timespec ts = {0, 500000};
                nanosleep(&ts, NULL);
                drift_stats(d, &st);
            }
            if (st.dropped)
                dprintf(fd, "E dropped %llu\n", (unsigned long long)st.dropped);
        }
    }
}

int main(void)
{
    char dir[256], path[512];
    t_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/kill.db", dir);
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        close(p[0]);
        child(path, p[1]);
        _exit(0);
    }
    close(p[1]);
    FILE *in = fdopen(p[0], "r");
    char line[600];
    unsigned long long written = 0;
    long pushed_at_report = 0, reports = 0;
    while (fgets(line, sizeof line, in)) {
        if (line[0] == 'E') {
            fprintf(stderr, "child: %s", line);
            return 1;
        }
        unsigned long long w;
        long pu;
        if (sscanf(line, "W %llu %ld", &w, &pu) == 2) {
            written = w;
            pushed_at_report = pu;
            reports++;
        }
        if (written >= 20000 && reports >= 5)
            break;
    }
    kill(pid, SIGKILL);
    /* reports already in the pipe are commits that happened too */
    while (fgets(line, sizeof line, in)) {
        unsigned long long w;
        long pu;
        if (sscanf(line, "W %llu %ld", &w, &pu) == 2) {
            written = w;
            pushed_at_report = pu;
        }
    }
    fclose(in);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *s;
    char ic[64] = "";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            snprintf(ic, sizeof ic, "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
    }
    CHECK_STR(ic, "ok");
    long long count = -1, prefix = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*), sum(request_id = 'req-' || (id - 1))"
                           " FROM drift_records", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            count = sqlite3_column_int64(s, 0);
            prefix = sqlite3_column_int64(s, 1);
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    printf("child reported %llu committed (of %ld pushed at that report); db holds %lld\n",
           written, pushed_at_report, count);
    CHECK(written >= 20000);
    CHECK(count >= (long long)written);       /* nothing committed is lost */
    CHECK_INT(prefix, count);                 /* a gap-free prefix of what was pushed */
    t_rmdir(dir);
    return t_done("drift_kill_test");
}
