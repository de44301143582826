/*
 * h1req.h - the framing of HTTP/1.1 requests, as RFC 9112 defines it, with
 * no sockets: the request head and the chunked body decoder.
 *
 * Why a module of its own: framing is where request smuggling lives. Two
 * readers that split the same bytes into different requests (two
 * Content-Length values, "Transfer-Encoding: gzip, chunked", a chunk size
 * of "0x5") let a client hide a request inside another. The rule here is
 * the one RFC 9112 section 6 allows a server to take: reject, never guess.
 * Whatever is not exactly the grammar is a 400 (or 501 for a transfer
 * coding llmpin does not implement) and the connection is closed. Being
 * pure functions over bytes, both parsers are fuzzed directly
 * (tests/fuzz) and unit-tested without a server (tests/proxy).
 *
 * What is accepted beyond the strict grammar, because RFC 9112 permits it
 * and nginx does the same: a bare LF as a line terminator (section 2.2),
 * empty lines before the request line, Content-Length with leading zeros.
 *
 * The request target is normalised here too: dot segments are removed as
 * RFC 3986 section 5.2.4 does (also when written %2e), a path that climbs
 * above "/" is refused, and so is an encoded slash or backslash (%2f, %5c,
 * "\"), so that the path llmpin routes on is the path an upstream sees
 * when llmpin appends it to a base URL.
 */
#ifndef LLMPIN_H1REQ_H
#define LLMPIN_H1REQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct http_hdr {
    const char *name;
    const char *value;
};

#define HTTP_MAX_HEADERS 100

/* Why a request was refused: the status to answer, an OpenAI-style error
 * code and a message for a person. */
struct h1req_error {
    int status;
    const char *code;
    char message[200];
};

struct h1req_head {
    char method[16];
    char *path;                   /* normalised, NUL-terminated, in the head buffer */
    char *query;                  /* after '?', or "" */
    int minor;                    /* HTTP/1.<minor> */
    struct http_hdr hdrs[HTTP_MAX_HEADERS];
    int n_hdrs;
    int keep_alive;               /* what the client asked for */
    int chunked;                  /* Transfer-Encoding: chunked */
    uint64_t content_length;      /* when !chunked; 0 when absent */
    int expect_continue;          /* Expect: 100-continue */
};

/* The length of the head at the start of buf[0..len) including the blank
 * line that ends it, or 0 while it is incomplete. *scan carries the offset
 * already searched between calls (start it at 0), so a head that arrives
 * byte by byte costs linear time. Leading empty lines are part of the head
   (h1req_parse_head skips them). */
size_t h1req_head_end(const char *buf, size_t len, size_t *scan);

/* Parse head[0..len) (as delimited by h1req_head_end) in place: strings in
 * *h point into head, which must stay alive as long as they are used.
 * Returns 0, or -1 with *e filled. */
int h1req_parse_head(char *head, size_t len, struct h1req_head *h, struct h1req_error *e);

/* Normalise the path part of a request target in place (see above).
 * Returns 0, or -1 with *e filled. */
int h1req_normalize_path(char *path, struct h1req_error *e);

/* Incremental chunked-body decoder: zero-initialise, then feed bytes as
 * they arrive. Every byte is looked at once, so a body sent in small
 * pieces costs linear time. */
struct h1chunk {
    int state;
    uint64_t left;                /* data bytes left in the current chunk */
    int digits;                   /* hex digits of the size read so far */
    size_t line;                  /* bytes of the current size/trailer line */
    size_t trailer_bytes;
    int trailer_colon;            /* the trailer line has had its ':' */
};

/* Feed in[0..len): body bytes are appended to body; the decoded body may
 * not exceed max_body and trailers may not exceed max_trailer bytes.
 * Returns 1 when the body is complete (*used = bytes of in that belonged
 * to it; the rest is the next request), 0 when all of in was used and more
 * is needed, -1 on a framing error or an oversized body (*e filled: 400
 * or 413). */
int h1chunk_feed(struct h1chunk *c, const char *in, size_t len, size_t *used, struct buf *body,
                 size_t max_body, size_t max_trailer, struct h1req_error *e);

#endif
