/*
 * sse.c - see sse.h.
 */
#include "common/sse.h"

#include <string.h>

int sse_feed(struct buf *pending, const char *data, size_t len, size_t max_event, sse_event_fn fn, void *ud) {
    /* the bytes already pending hold no event end (they were scanned when
     * they came): resume two bytes back, where a split "\n\r\n" may start */
    size_t from = pending->len >= 2 ? pending->len - 2 : 0;
    buf_append(pending, data, len);
    size_t start = 0;
    for (size_t i = from; i + 1 < pending->len; i++) {
        const char *b = pending->p;
        size_t skip = 0;
        if (b[i] == '\n' && b[i + 1] == '\n') skip = 2;
        else if (b[i] == '\n' && b[i + 1] == '\r' && i + 2 < pending->len && b[i + 2] == '\n') skip = 3;
        if (!skip) continue;
        if (i - start > max_event) return SSE_TOO_LARGE;
        if (i > start) {
            int rc = fn(ud, b + start, i - start);
            if (rc < 0) return rc;
        }
        start = i + skip;
        i = start - 1;
    }
    if (start) {
        memmove(pending->p, pending->p + start, pending->len - start);
        pending->len -= start;
    }
    return pending->len > max_event ? SSE_TOO_LARGE : 0;
}
