/*
 * metrics.h - Prometheus counters and histograms, touched only on the loop
 * thread (no locks). Labels are a small set (route, target, status), kept
 * in a linear table: a proxy has tens of routes, not thousands.
 */
#ifndef LLMPIN_METRICS_H
#define LLMPIN_METRICS_H

#include <stdint.h>
#include "common/util.h"

#define METRICS_NBUCKETS 17

struct metrics_hist {
    uint64_t counts[METRICS_NBUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t n;
};

struct metrics_series {
    char *labels;                /* rendered: route="a",target="b",status="200" */
    uint64_t value;
};

struct metrics_family {
    struct metrics_series *s;
    int n, cap;
};

struct metrics {
    struct metrics_family requests;        /* llmpin_requests_total */
    struct metrics_family upstream_errors; /* llmpin_upstream_errors_total */
    struct metrics_family fallbacks;       /* llmpin_fallbacks_total */
    struct metrics_family stream_errors;   /* llmpin_stream_errors_total */
    struct metrics_family drift_events;    /* llmpin_drift_events_total */
    struct metrics_hist duration;          /* llmpin_request_duration_seconds */
    struct metrics_hist ttfb;              /* llmpin_ttfb_seconds */
    int64_t inflight;
};

/* Add v to the series with these label values (pairs: name, value, ..., NULL). */
void metrics_inc(struct metrics_family *f, uint64_t v, ...);
void metrics_observe(struct metrics_hist *h, double seconds);
/* Append the text exposition of the fixed families to b. */
void metrics_render(const struct metrics *m, struct buf *b);
void metrics_free(struct metrics *m);

#endif
