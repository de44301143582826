/*
 * fuzz_sse.c - libFuzzer target for common/sse.c, the event splitter that
 * reads every upstream stream.
 *
 * Input: one byte that seeds how the rest is cut into pieces, then the
 * stream's bytes. What must hold: the events (and the leftover tail) are
 * the same whether the stream comes at once, one byte at a time or in the
 * seeded pieces; no event is empty or holds a blank line; events, their
 * blank lines and the tail account for every byte; an event longer than
 * the limit is refused, never passed on; a callback's refusal stops the
 * split at once.
 */
#include "common/sse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_sse: " __VA_ARGS__);                    \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

#define MAX_EVENT 300

struct run {
    struct buf events;            /* each event, then a 0 byte */
    size_t n, bytes;
    size_t stop_after;            /* refuse event number stop_after (0 = never) */
};

static int on_event(void *ud, const char *ev, size_t len) {
    struct run *r = ud;
    if (len == 0) FAIL("an empty event");
    if (len > MAX_EVENT) FAIL("an event of %zu bytes passed the %d limit", len, MAX_EVENT);
    for (size_t i = 0; i + 1 < len; i++)
        if (ev[i] == '\n' && (ev[i + 1] == '\n' || (ev[i + 1] == '\r' && i + 2 < len && ev[i + 2] == '\n')))
            FAIL("an event holds a blank line");
    r->n++;
    if (r->stop_after && r->n == r->stop_after) return -1;
    buf_append(&r->events, ev, len);
    buf_append(&r->events, "", 1);
    r->bytes += len;
    return 0;
}

/* Feed s in pieces (piece(i) gives the next length); returns the last rc. */
static int feed(const char *s, size_t n, unsigned seed, int mode, struct run *r, struct buf *pending) {
    size_t off = 0;
    int rc = 0;
    while (off < n) {
        size_t k = mode == 0 ? n - off : mode == 1 ? 1 : 1 + (seed = seed * 1103515245u + 12345u) % 64;
        if (k > n - off) k = n - off;
        rc = sse_feed(pending, s + off, k, MAX_EVENT, on_event, r);
        off += k;
        if (rc != 0) break;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned seed = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    struct run r[3];
    struct buf pend[3];
    int rc[3];
    memset(r, 0, sizeof r);
    memset(pend, 0, sizeof pend);
    for (int m = 0; m < 3; m++) rc[m] = feed(s, n, seed, m, &r[m], &pend[m]);
    for (int m = 1; m < 3; m++) {
        if (rc[m] == 0 && rc[0] == 0) {
            if (r[m].events.len != r[0].events.len ||
                (r[0].events.len && memcmp(r[m].events.p, r[0].events.p, r[0].events.len) != 0))
                FAIL("pieces (mode %d) gave other events than the whole stream", m);
            if (pend[m].len != pend[0].len || (pend[0].len && memcmp(pend[m].p, pend[0].p, pend[0].len) != 0))
                FAIL("pieces (mode %d) left another tail", m);
        }
        /* a too-large event is refused however the bytes come; when it
         * completes inside one piece it may be seen as complete first */
        if ((rc[m] == 0) != (rc[0] == 0) && !(rc[0] == 0 && rc[m] == SSE_TOO_LARGE))
            FAIL("verdict %d at once, %d in pieces (mode %d)", rc[0], rc[m], m);
    }
    if (rc[0] == 0) {
        /* every byte is in an event, a blank line or the tail */
        size_t delim = n - r[0].bytes - pend[0].len;
        if (r[0].bytes + pend[0].len > n) FAIL("more bytes out than in");
        if (r[0].n && delim < 2 * r[0].n) FAIL("%zu events but %zu delimiter bytes", r[0].n, delim);
        /* a refusing callback stops at once: nothing after it is seen */
        if (r[0].n >= 1) {
            struct run stop = {.stop_after = 1};
            struct buf p = {0};
            int x = sse_feed(&p, s, n, MAX_EVENT, on_event, &stop);
            if (x != -1 || stop.n != 1) FAIL("a refusal did not stop the split (rc %d, %zu events)", x, stop.n);
            buf_free(&p);
            buf_free(&stop.events);
        }
    } else if (rc[0] != SSE_TOO_LARGE) {
        FAIL("rc %d", rc[0]);
    }
    for (int m = 0; m < 3; m++) {
        buf_free(&r[m].events);
        buf_free(&pend[m]);
    }
    return 0;
}
