/*
 * fuzz_h1resp.c - libFuzzer target for adapters/h1resp.c, the built-in
 * client's reading of an upstream's response head.
 *
 * Input: the bytes of a head (status line through the empty line; the
 * target cuts the input at its first blank line). What must hold: a
 * parsed head has a status 200..599, header names that are lowercase
 * tokens, values with no CR, LF or NUL and no surrounding blanks; at most
 * 100 fields; a head with a body running to close or framed both ways is
 * never kept alive; 204 and 304 have no body; two different
 * Content-Length values are refused; a 1xx is interim and a refusal
 * allocates nothing (the leak checker sees it).
 */
#include "adapters/h1resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_h1resp: " __VA_ARGS__);                 \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t n = 0;
    for (size_t i = 0; i + 1 < size && !n; i++) {
        if (p[i] == '\n' && p[i + 1] == '\n') n = i + 2;
        else if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < size && p[i + 2] == '\n') n = i + 3;
    }
    if (!n) return 0;
    struct h1resp_head h;
    char why[200];
    why[0] = 0;
    int rc = h1resp_parse_head(p, n, &h, why, sizeof why);
    if (rc == -1) {
        if (!why[0]) FAIL("refusal without a reason");
        if (h.hdrs || h.mem) FAIL("a refusal left memory behind");
        return 0;
    }
    if (rc == 1) {
        if (h.hdrs || h.mem) FAIL("an interim head allocated");
        return 0;
    }
    if (rc != 0) FAIL("rc %d", rc);
    if (h.status < 200 || h.status > 599) FAIL("status %d", h.status);
    if (h.n_hdrs < 0 || h.n_hdrs > 100) FAIL("%d fields", h.n_hdrs);
    int n_len = 0, chunked = 0;
    unsigned long long first_len = 0;
    for (int i = 0; i < h.n_hdrs; i++) {
        const char *k = h.hdrs[i].name, *v = h.hdrs[i].value;
        if (!*k) FAIL("an empty header name");
        for (const char *c = k; *c; c++)
            if (*c <= 0x20 || *c >= 0x7f || (*c >= 'A' && *c <= 'Z') || strchr("()<>@,;:\\\"/[]?={}", *c))
                FAIL("header name '%s' is not a lowercase token", k);
        size_t vl = strlen(v);
        for (const char *c = v; *c; c++)
            if (*c == '\r' || *c == '\n') FAIL("CR or LF in the value of %s", k);
        if (vl && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            FAIL("value of %s keeps its surrounding blanks", k);
        if (strcmp(k, "content-length") == 0) {
            /* leading zeros aside (any number of them), values must agree */
            unsigned long long x = strtoull(v, NULL, 10);
            if (n_len && x != first_len) FAIL("two Content-Length values %llu and %s accepted", first_len, v);
            first_len = x;
            n_len++;
        }
        if (strcmp(k, "transfer-encoding") == 0) chunked = 1;
    }
    if ((h.status == 204 || h.status == 304) && h.body != H1R_NONE) FAIL("%d with a body", h.status);
    if (h.body == H1R_UNTIL_CLOSE && h.keep_alive) FAIL("a body to close on a kept-alive connection");
    if (h.body == H1R_CHUNKED && n_len && h.keep_alive) FAIL("both framings on a kept-alive connection");
    if (h.body == H1R_CHUNKED && !chunked) FAIL("chunked without Transfer-Encoding");
    if (h.body == H1R_LENGTH && (!n_len || h.length == 0)) FAIL("a length body without Content-Length");
    h1resp_head_free(&h);
    return 0;
}
