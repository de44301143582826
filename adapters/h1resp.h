/*
 * h1resp.h - the head of an upstream's HTTP/1.x response, parsed with no
 * sockets, for the built-in client (adapters/h1client.c).
 *
 * An upstream is trusted with its answers, not with its framing: a status
 * line that is not "HTTP/1.x NNN", a folded or nameless header line,
 * control characters in a value, two different Content-Length values or
 * more than 100 fields end the exchange as a bad answer. Both
 * Content-Length and chunked: chunked wins and the connection is not
 * reused (RFC 9112 section 6.3). A pure function over bytes, fuzzed in
 * tests/fuzz (fuzz_h1resp.c).
 */
#ifndef LLMPIN_H1RESP_H
#define LLMPIN_H1RESP_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/upstream.h"

enum h1resp_body {
    H1R_NONE,                     /* no body (204, 304, Content-Length: 0) */
    H1R_CHUNKED,
    H1R_LENGTH,                   /* `length` bytes */
    H1R_UNTIL_CLOSE,              /* the body runs to the end of the connection */
};

struct h1resp_head {
    int status;
    struct upstream_hdr *hdrs;    /* names lowercased; both point into mem */
    int n_hdrs;
    char *mem;
    int keep_alive;               /* the connection may carry another request */
    enum h1resp_body body;
    uint64_t length;
};

/* Parse a complete head p[0..n) (status line through the empty line).
 * Returns 0 with *h filled (free with h1resp_head_free), 1 for an interim
 * 1xx head (skip it; nothing allocated), or -1 with why (nothing left
 * allocated). */
int h1resp_parse_head(const char *p, size_t n, struct h1resp_head *h, char *why, size_t whylen);
void h1resp_head_free(struct h1resp_head *h);

#endif
