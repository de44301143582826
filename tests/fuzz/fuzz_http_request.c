/*
 * fuzz_http_request.c - libFuzzer target for the request framing of
 * proxy/h1req.c: the head finder, the head parser with its path
 * normaliser, and the chunked body decoder.
 *
 * Input: bytes as a client would send them on a connection. What must
 * hold: the head is found at the same place whether the bytes come at once
 * or one by one; a parsed path starts with '/', holds no dot segment, no
 * backslash and no encoded '/', '\' or NUL, and normalising it again
 * changes nothing; Content-Length and chunked are never both set; a
 * chunked body decodes to the same bytes, the same end and the same
 * verdict whether fed at once or one byte at a time, and never exceeds
 * its limit.
 */
#include "proxy/h1req.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_http_request: " __VA_ARGS__);           \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

#define MAX_BODY 4096

static void check_path(const char *p)
{
    if (p[0] != '/') FAIL("path '%s' does not start with '/'", p);
    if (strstr(p, "/../") || strstr(p, "/./") || strchr(p, '\\')) FAIL("path '%s' kept a dot segment or '\\'", p);
    size_t n = strlen(p);
    if ((n >= 3 && strcmp(p + n - 3, "/..") == 0) || (n >= 2 && strcmp(p + n - 2, "/.") == 0))
        FAIL("path '%s' ends in a dot segment", p);
    for (const char *q = p; (q = strchr(q, '%')) != NULL; q++) {
        if (strncmp(q, "%2f", 3) == 0 || strncmp(q, "%2F", 3) == 0 || strncmp(q, "%5c", 3) == 0 ||
            strncmp(q, "%5C", 3) == 0 || strncmp(q, "%00", 3) == 0)
            FAIL("path '%s' kept an encoded separator or NUL", p);
    }
    char *again = strdup(p);
    struct h1req_error e;
    if (!again) abort();
    if (h1req_normalize_path(again, &e) != 0) FAIL("normalised path '%s' refused: %s", p, e.message);
    if (strcmp(again, p) != 0) FAIL("normalising '%s' again gave '%s'", p, again);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t scan = 0;
    size_t end = h1req_head_end(in, size, &scan);
    size_t scan1 = 0, end1 = 0;
    for (size_t i = 1; i <= size && !end1; i++)
        end1 = h1req_head_end(in, i, &scan1);
    if (end != end1) FAIL("head ends at %zu at once, %zu byte by byte", end, end1);
    if (!end) return 0;
    if (end > size) FAIL("head end %zu past the input %zu", end, size);

    char *head = malloc(end + 1);
    if (!head) abort();
    memcpy(head, in, end);
    head[end] = 0;
    struct h1req_head h;
    struct h1req_error e;
    int rc = h1req_parse_head(head, end, &h, &e);
    if (rc != 0) {
        if (rc != -1 || e.status < 400 || e.status > 599 || !e.code || !e.message[0])
            FAIL("refusal without a status, code and message (rc %d, status %d)", rc, e.status);
        free(head);
        return 0;
    }
    check_path(h.path);
    if (h.chunked && h.content_length) FAIL("both chunked and Content-Length %llu", (unsigned long long)h.content_length);
    if (h.n_hdrs < 0 || h.n_hdrs > HTTP_MAX_HEADERS) FAIL("%d headers", h.n_hdrs);

    if (h.chunked) {
        const char *body = in + end;
        size_t blen = size - end;
        struct h1chunk c1 = {0}, c2 = {0};
        struct buf b1 = {0}, b2 = {0};
        struct h1req_error e1, e2;
        size_t used1 = 0, used2 = 0;
        int r1 = h1chunk_feed(&c1, body, blen, &used1, &b1, MAX_BODY, 512, &e1);
        int r2 = 0;
        size_t off = 0;
        for (; off < blen; off++) {
            size_t u = 0;
            r2 = h1chunk_feed(&c2, body + off, 1, &u, &b2, MAX_BODY, 512, &e2);
            if (r2 != 0) {
                used2 = off + u;
                break;
            }
        }
        if (r1 != r2) FAIL("chunked verdict %d at once, %d byte by byte", r1, r2);
        if (r1 == 1 && used1 != used2) FAIL("chunked body ends at %zu at once, %zu byte by byte", used1, used2);
        if (r1 >= 0 && (b1.len != b2.len || (b1.len && memcmp(b1.p, b2.p, b1.len) != 0)))
            FAIL("chunked body differs: %zu vs %zu bytes", b1.len, b2.len);
        if (b1.len > MAX_BODY || b2.len > MAX_BODY) FAIL("body of %zu bytes over the %d limit", b1.len, MAX_BODY);
        if (r1 == 1 && used1 > blen) FAIL("used %zu of %zu bytes", used1, blen);
        if (r1 == -1 && (e1.status != 400 && e1.status != 413 && e1.status != 431))
            FAIL("chunked refusal with status %d", e1.status);
        buf_free(&b1);
        buf_free(&b2);
    }
    free(head);
    return 0;
}
