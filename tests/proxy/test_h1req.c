/*
 * test_h1req.c - the request framing of proxy/h1req.c without a server:
 * every smuggling shape RFC 9112 names is refused with its status, the
 * path normaliser's output is exact, and the chunked decoder gives the
 * same body whatever the split of its input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "proxy/h1req.h"

#include "ptest.h"

/* Parse a complete head (given without its terminating blank line when
 * add_end); returns the status: 0 accepted, else the refusal's status. */
static int parse(const char *text, struct h1req_head *h, struct h1req_error *e) {
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    memcpy(copy, text, n + 1);
    size_t scan = 0;
    size_t end = h1req_head_end(copy, n, &scan);
    static char keep[8192];
    int rc;
    if (end == 0) {
        free(copy);
        return -1; /* incomplete */
    }
    memcpy(keep, copy, end);
    free(copy);
    rc = h1req_parse_head(keep, end, h, e);
    return rc == 0 ? 0 : e->status;
}

static void expect_status(const char *text, int status) {
    struct h1req_head h;
    struct h1req_error e = {0};
    int st = parse(text, &h, &e);
    CHECK(st == status, "head %s: status %d, want %d (%s)", text, st, status, st > 0 ? e.message : "");
}

static void test_heads(void) {
    struct h1req_head h;
    struct h1req_error e;
    CHECK(parse("POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0012\r\n"
                "Connection: close\r\n\r\n", &h, &e) == 0, "plain POST");
    CHECK(strcmp(h.method, "POST") == 0 && strcmp(h.path, "/v1/chat/completions") == 0 &&
          strcmp(h.query, "x=1") == 0 && h.content_length == 12 && !h.chunked && !h.keep_alive && h.minor == 1,
          "fields: %s %s %s %llu", h.method, h.path, h.query, (unsigned long long)h.content_length);
    CHECK(h.n_hdrs == 3 && strcmp(h.hdrs[1].value, "0012") == 0, "headers kept");

    /* bare LF and leading empty lines are accepted (RFC 9112 2.2) */
    CHECK(parse("\r\n\nGET /healthz HTTP/1.1\nHost: a\n\n", &h, &e) == 0, "bare LF: %s", e.message);
    CHECK(h.keep_alive == 1 && strcmp(h.path, "/healthz") == 0, "bare LF fields");
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &h, &e) == 0 && h.keep_alive == 0, "HTTP/1.0 without Host");
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, &e) == 0 && h.keep_alive == 1,
          "HTTP/1.0 keep-alive");
    CHECK(parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", &h, &e) == 0 && h.chunked,
          "chunked, any case");
    CHECK(parse("POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", &h, &e) == 0 &&
          h.expect_continue, "expect");
    CHECK(parse("POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &h, &e) == 0 && !h.expect_continue,
          "expect without a body is ignored");
    CHECK(parse("GET /x HTTP/1.1\r\nHost: a\r\nX-Y:   v  w \t\r\n\r\n", &h, &e) == 0 &&
          strcmp(h.hdrs[1].value, "v  w") == 0, "OWS trimmed, inner kept: '%s'", h.hdrs[1].value);

    /* request smuggling and other framing ambiguities */
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400);
    expect_status("POST /x HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400);
    {
        static const char nul[] = "GET /x HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
        char buf[sizeof nul];
        memcpy(buf, nul, sizeof nul);
        struct h1req_error e2;
        CHECK(h1req_parse_head(buf, sizeof nul - 1, &h, &e2) == -1 && e2.status == 400, "NUL in a header");
    }
    expect_status("GET /x HTTP/1.1\r\n\r\n", 400);                       /* no Host */
    expect_status("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_status("GET /x HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    expect_status("GET /x HTTP/1.2\r\nHost: a\r\n\r\n", 505);
    expect_status("GET /x HTTP/1.1x\r\nHost: a\r\n\r\n", 400);
    expect_status("GET /x  HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_status("GET http://evil/x HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_status("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_status("GET /x#f HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_status("VERYLONGMETHODNAME /x HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    expect_status("G(T /x HTTP/1.1\r\nHost: a\r\n\r\n", 400);

    /* 100 headers pass, 101 do not */
    struct buf b = {0};
    buf_appends(&b, "GET /x HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 99; i++) {
        char line[32];
        snprintf(line, sizeof line, "X-%d: v\r\n", i);
        buf_appends(&b, line);
    }
    buf_appends(&b, "\r\n");
    buf_append(&b, "", 1);
    expect_status(b.p, 0);
    b.len -= 3; /* drop "\r\n" and the NUL */
    buf_appends(&b, "X-last: v\r\n\r\n");
    buf_append(&b, "", 1);
    expect_status(b.p, 431);
    buf_free(&b);

    /* the end of the head is found however the bytes arrive */
    const char *req = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
    size_t scan = 0, end = 0, n = strlen(req);
    for (size_t i = 1; i <= n && !end; i++) end = h1req_head_end(req, i, &scan);
    CHECK(end == n - 4, "head end %zu, want %zu", end, n - 4);
}

static void expect_path(const char *in, const char *want) {
    char p[256];
    struct h1req_error e = {0};
    util_strlcpy(p, in, sizeof p);
    int rc = h1req_normalize_path(p, &e);
    if (!want) CHECK(rc == -1 && e.status == 400, "path %s: accepted as %s", in, p);
    else CHECK(rc == 0 && strcmp(p, want) == 0, "path %s: got %s (rc %d %s), want %s", in, p, rc, e.message, want);
}

static void test_paths(void) {
    expect_path("/", "/");
    expect_path("/v1/chat/completions", "/v1/chat/completions");
    expect_path("/v1//chat///completions", "/v1/chat/completions");
    expect_path("/v1/./models", "/v1/models");
    expect_path("/v1/x/../models", "/v1/models");
    expect_path("/v1/%2e%2E/v1/models", "/v1/models");
    expect_path("/v1/files/", "/v1/files/");
    expect_path("/v1/..", "/");
    expect_path("/a/b/c/../../d", "/a/d");
    expect_path("/v1/...", "/v1/...");
    expect_path("/v1/.hidden", "/v1/.hidden");
    expect_path("/v1/files/file-abc%20x", "/v1/files/file-abc%20x");
    expect_path("/..", NULL);
    expect_path("/v1/../../admin", NULL);
    expect_path("/v1/%2e%2e/%2e%2e/admin", NULL);
    expect_path("/v1/a%2fb", NULL);
    expect_path("/v1/a%2Fb", NULL);
    expect_path("/v1/a%5cb", NULL);
    expect_path("/v1/a\\b", NULL);
    expect_path("/v1/a%00b", NULL);
    expect_path("/v1/a%zz", NULL);
    expect_path("/v1/a%2", NULL);
    expect_path("v1/models", NULL);
}

/* Decode body in pieces of `step` bytes; returns the status (0 = done). */
static int decode(const char *in, size_t n, size_t step, struct buf *out, size_t *rest, size_t max_body) {
    struct h1chunk c = {0};
    struct h1req_error e = {0};
    size_t off = 0;
    out->len = 0;
    while (off < n) {
        size_t k = n - off < step ? n - off : step, used = 0;
        int rc = h1chunk_feed(&c, in + off, k, &used, out, max_body, 1024, &e);
        if (rc < 0) return e.status;
        off += used;
        if (rc == 1) {
            *rest = n - off;
            return 0;
        }
        CHECK(used == k, "partial use without completion");
    }
    return -1; /* incomplete */
}

static void expect_chunked(const char *in, int status, const char *body, size_t rest_want) {
    struct buf out = {0};
    size_t n = strlen(in);
    for (size_t step = 1; step <= n; step = step < 8 ? step + 1 : step * 2) {
        size_t rest = 0;
        int st = decode(in, n, step, &out, &rest, 1000);
        CHECK(st == status, "chunked %s step %zu: status %d, want %d", in, step, st, status);
        if (status == 0 && st == 0) {
            buf_append(&out, "", 1);
            CHECK(strcmp(out.p, body) == 0, "chunked %s: body '%s', want '%s'", in, out.p, body);
            CHECK(rest == rest_want, "chunked %s: rest %zu, want %zu", in, rest, rest_want);
        }
    }
    buf_free(&out);
}

static void test_chunked(void) {
    expect_chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, "hello world", 0);
    expect_chunked("5\r\nhello\r\n0\r\n\r\nGET /", 0, "hello", 5);
    expect_chunked("5;name=v\r\nhello\r\n0;x\r\n\r\n", 0, "hello", 0);
    expect_chunked("5 ;x\r\nhello\r\n0\r\n\r\n", 0, "hello", 0);
    expect_chunked("A\nabcdefghij\n0\nTrailer: x\n\n", 0, "abcdefghij", 0);
    expect_chunked("000005\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", 0, "hello", 0);
    expect_chunked("0x5\r\nhello\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked(" 5\r\nhello\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked("-1\r\nhello\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked("+5\r\nhello\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked("5 x\r\nhello\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked("5\r\nhello!\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked("5\rXhello\r\n0\r\n\r\n", 400, NULL, 0);
    expect_chunked("5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n", 400, NULL, 0);
    expect_chunked("5\r\nhello\r\n0\r\n: v\r\n\r\n", 400, NULL, 0);
    expect_chunked("1111111111111111\r\n", 413, NULL, 0);
    expect_chunked("3E9\r\n", 413, NULL, 0);                  /* 1001 > max_body 1000 */
    /* many small chunks: linear, and adds up */
    struct buf in = {0}, out = {0};
    for (int i = 0; i < 2000; i++) buf_appends(&in, "1\r\nx\r\n");
    buf_appends(&in, "0\r\n\r\n");
    size_t rest = 0;
    CHECK(decode(in.p, in.len, 4096, &out, &rest, 1 << 20) == 0 && out.len == 2000, "2000 chunks: %zu", out.len);
    CHECK(decode(in.p, in.len, 4096, &out, &rest, 1999) == 413, "2000 chunks over a 1999-byte limit");
    buf_free(&in);
    buf_free(&out);
}

int main(void) {
    test_heads();
    test_paths();
    test_chunked();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("h1req: all checks passed\n");
    return 0;
}
