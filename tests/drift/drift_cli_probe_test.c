/*
 * drift_cli_probe_test.c - `llmpin drift probe` against a mock OpenAI server
 * on 127.0.0.1: probes go out with the configured key, answers are graded
 * and recorded with the served model and fingerprint, and the key is never
 * printed.
 */
#include "drift_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void serve(int ls)
{
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            _exit(0);
        char req[65536];
        size_t len = 0;
        char *hdr_end = NULL;
        while (len < sizeof req - 1) {
            ssize_t n = read(c, req + len, sizeof req - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            req[len] = '\0';
            if (!hdr_end)
                hdr_end = strstr(req, "\r\n\r\n");
            if (hdr_end) {
                const char *cl = strcasestr(req, "content-length:");
                size_t want = cl ? (size_t)atol(cl + 15) : 0;
                if (len >= (size_t)(hdr_end + 4 - req) + want)
                    break;
            }
        }
        const char *body;
        int status;
        if (!strstr(req, "Authorization: Bearer sk-test-123")) {
            status = 401;
            body = "{\"error\":{\"message\":\"bad key\",\"type\":\"invalid_request_error\","
                   "\"param\":null,\"code\":null}}";
        } else if (!strstr(req, "POST /v1/chat/completions") ||
                   !strstr(req, "\"model\":\"sim-model\"") || !strstr(req, "X-Llmpin-Probe:")) {
            status = 400;
            body = "{\"error\":{\"message\":\"bad request\",\"type\":\"invalid_request_error\","
                   "\"param\":null,\"code\":null}}";
        } else {
            status = 200;
            body = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                   "\"model\":\"sim-model-2026-01-01\",\"system_fingerprint\":\"fp_mock\","
                   "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                   "\"content\":\"Thinking... [Yes]\"},\"finish_reason\":\"stop\"}],"
                   "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":4,\"total_tokens\":34}}";
        }
        char resp[1024];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         status, status == 200 ? "OK" : "Error", strlen(body), body);
        if (write(c, resp, (size_t)n) < 0)
            _exit(1);
        close(c);
    }
}

int main(void)
{
    char dir[256], path[512];
    t_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/p.db", dir);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 16) ||
        getsockname(ls, (struct sockaddr *)&a, &al)) {
        perror("mock server");
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0)
        serve(ls);
    close(ls);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", ntohs(a.sin_port));
    setenv("LLMPIN_API_KEY", "sk-test-123", 1);

    char out_path[] = "/tmp/llmpin-drift-probe-out-XXXXXX";
    int fd = mkstemp(out_path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    const char *argv[] = {"drift", "probe", "builtin:primes", "--target", "sim-model", "--url",
                          url, "--limit", "20", "--drift-db", path, "--baseline", "10"};
    int rc = drift_cli_main(13, (char **)argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    FILE *f = fopen(out_path, "r");
    static char out[1 << 16];
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    unlink(out_path);
    CHECK_INT(rc, 0);
    CHECK(strstr(out, "Sent 20, failed 0, graded 20") != NULL);
    CHECK(strstr(out, "sk-test-123") == NULL);
    CHECK(strstr(out, "correct") != NULL);

    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *s;
    long long probes = -1, graded = -1, yes_right = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*), sum(probe_correct IS NOT NULL),"
                           " sum(probe_correct = 1) FROM drift_records WHERE is_probe = 1"
                           " AND served_model = 'sim-model-2026-01-01'"
                           " AND system_fingerprint = 'fp_mock' AND probe_answer = 'yes'",
                           -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            probes = sqlite3_column_int64(s, 0);
            graded = sqlite3_column_int64(s, 1);
            yes_right = sqlite3_column_int64(s, 2);
        }
        sqlite3_finalize(s);
    }
    long long versions = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM drift_versions WHERE target = 'sim-model'",
                           -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            versions = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    CHECK_INT(probes, 20);
    CHECK_INT(graded, 20);
    CHECK(yes_right > 0 && yes_right < 20);   /* "[Yes]" is right only for the primes */
    CHECK_INT(versions, 2);                   /* one served model, one fingerprint */
    if (t_failures)
        fprintf(stderr, "CLI output:\n%s\n", out);
    t_rmdir(dir);
    return t_done("drift_cli_probe_test");
}
