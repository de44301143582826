/*
 * metrics.c - see metrics.h. Label values are escaped per the Prometheus
 * text format; they are route/target names and status codes, never keys.
 */
#include "proxy/metrics.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[METRICS_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                5,      10,    30,     60,    300};

static void label_escape(struct buf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') { buf_append(b, "\\", 1); buf_append(b, v, 1); }
        else if (*v == '\n') buf_append(b, "\\n", 2);
        else buf_append(b, v, 1);
    }
}

void metrics_inc(struct metrics_family *f, uint64_t v, ...) {
    /* render the labels on the stack: this runs for every request */
    char stack[512];
    struct buf lb;
    buf_init_on(&lb, stack, sizeof stack);
    va_list ap;
    va_start(ap, v);
    const char *name;
    int first = 1;
    while ((name = va_arg(ap, const char *))) {
        const char *val = va_arg(ap, const char *);
        if (!first) buf_append(&lb, ",", 1);
        first = 0;
        buf_append(&lb, name, strlen(name));
        buf_append(&lb, "=\"", 2);
        label_escape(&lb, val ? val : "");
        buf_append(&lb, "\"", 1);
    }
    va_end(ap);
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->s[i].labels, lb.p) == 0) {
            f->s[i].value += v;
            buf_free(&lb);
            return;
        }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->s = util_xrealloc(f->s, (size_t)f->cap * sizeof *f->s);
    }
    f->s[f->n].labels = util_strdup(lb.p);
    f->s[f->n].value = v;
    f->n++;
    buf_free(&lb);
}

void metrics_observe(struct metrics_hist *h, double s) {
    int i = 0;
    while (i < METRICS_NBUCKETS && s > bounds[i]) i++;
    h->counts[i]++;
    h->sum += s;
    h->n++;
}

static void render_family(struct buf *b, const char *name, const char *help,
                          const struct metrics_family *f) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < f->n; i++)
        buf_printf(b, "%s{%s} %llu\n", name, f->s[i].labels, (unsigned long long)f->s[i].value);
}

static void render_hist(struct buf *b, const char *name, const char *help, const struct metrics_hist *h) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_NBUCKETS; i++) {
        cum += h->counts[i];
        buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[METRICS_NBUCKETS];
    buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
               (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->n);
}

void metrics_render(const struct metrics *m, struct buf *b) {
    render_family(b, "llmpin_requests_total", "Requests answered, by route, target and HTTP status.", &m->requests);
    render_hist(b, "llmpin_request_duration_seconds", "Time from request to the end of the response.", &m->duration);
    render_hist(b, "llmpin_ttfb_seconds", "Time from request to the first response byte.", &m->ttfb);
    render_family(b, "llmpin_upstream_errors_total", "Failed upstream attempts, by target and kind.", &m->upstream_errors);
    render_family(b, "llmpin_fallbacks_total", "Requests moved to another target, by route and reason.", &m->fallbacks);
    render_family(b, "llmpin_stream_errors_total", "Streams ended with an error event after the first chunk.", &m->stream_errors);
    render_family(b, "llmpin_drift_events_total", "Version or output drift events, by target and kind.", &m->drift_events);
    buf_printf(b, "# HELP llmpin_inflight_requests Requests in progress.\n# TYPE llmpin_inflight_requests gauge\n"
                  "llmpin_inflight_requests %lld\n", (long long)m->inflight);
}

static void free_family(struct metrics_family *f) {
    for (int i = 0; i < f->n; i++) free(f->s[i].labels);
    free(f->s);
    memset(f, 0, sizeof *f);
}

void metrics_free(struct metrics *m) {
    free_family(&m->requests);
    free_family(&m->upstream_errors);
    free_family(&m->fallbacks);
    free_family(&m->stream_errors);
    free_family(&m->drift_events);
}
