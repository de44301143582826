/*
 * sse.h - splitting a server-sent event stream into events, as bytes
 * arrive.
 *
 * An upstream's stream reaches llmpin in pieces that do not respect event
 * boundaries: one read may end in the middle of an event, or between the
 * "\n" and "\r\n" of its blank line. sse_feed keeps the incomplete tail in
 * a buffer and hands over each complete event (its lines without the
 * blank line that ends it). Each byte is examined once, however small the
 * pieces, so a 64 MiB event sent 16 KiB at a time costs linear time. Pure
 * function over bytes: fuzzed in tests/fuzz (fuzz_sse.c).
 */
#ifndef LLMPIN_SSE_H
#define LLMPIN_SSE_H

#include <stddef.h>

#include "common/util.h"

#define SSE_TOO_LARGE (-2)

/* Called for each complete, non-empty event; a negative return stops the
 * split at once (pending is then not touched again by sse_feed). */
typedef int (*sse_event_fn)(void *ud, const char *event, size_t len);

/* Append data[0..len) to pending and call fn for each event it completes.
 * Events end at a blank line ("\n\n", or "\n\r\n" as in "\r\n\r\n"; the
 * event then keeps its last "\r"). Returns 0, fn's negative value, or
 * SSE_TOO_LARGE when an event, complete or not, is longer than max_event. */
int sse_feed(struct buf *pending, const char *data, size_t len, size_t max_event, sse_event_fn fn, void *ud);

#endif
