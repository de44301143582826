/*
 * report.c - `llmpin drift report`: what happened to each target, over time.
 *
 * The report must make sense to someone who was not watching: so every
 * chart has a title, axis labels and a legend, version changes and alarms
 * are drawn as numbered vertical markers on every chart, and each alarm gets
 * one plain sentence plus its evidence. The HTML page is self-contained (CSS
 * and SVG inline, no scripts, no external fetches) so it can be mailed or
 * attached to an incident ticket as one file.
 *
 * Records are grouped into time buckets (a "nice" width chosen so the
 * period has at most ~80 of them); per bucket and target we keep request
 * and error counts, probe accuracy, the share of probe answers that differ
 * from the baseline run, the mean length of probe answers in characters
 * (verbosity), the shares of probe answers with nothing parsable (refusals
 * and format failures), and the median latency of successful requests.
 * The same probe figures are also summed per (suite, target) over the
 * whole period.
 */
#include "drift/internal.h"
#include "drift/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bucket {
    long n, errors, graded, correct, compared, changed;
    long with_len, refused, format_fail;   /* graded probes: length known; no answer */
    double sum_len;
    int *lat;
    size_t nlat, caplat;
    int p50;
};

struct series {
    char *target;
    struct bucket *b;
};

struct evrow {
    int64_t id, ts;
    int ack;
    char *kind, *target, *subject, *oldv, *newv, *summary, *evidence;
};

struct suite_row {                 /* probe figures per (suite, target), whole period */
    char *suite, *target;
    long graded, correct, compared, changed, with_len, refused, format_fail;
    double sum_len;
};

struct rep {
    struct suite_row *sr;
    size_t nsr;
    int64_t t0, bucket_ms;
    size_t nb;
    struct series *s;
    size_t ns;
    struct evrow *ev;
    size_t nev;
    int64_t first_ts, last_ts;
    long records;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void rep_free(struct rep *r)
{
    for (size_t i = 0; i < r->ns; i++) {
        for (size_t k = 0; r->s[i].b && k < r->nb; k++)
            free(r->s[i].b[k].lat);
        free(r->s[i].b);
        free(r->s[i].target);
    }
    free(r->s);
    for (size_t i = 0; i < r->nev; i++) {
        struct evrow *e = &r->ev[i];
        free(e->kind);
        free(e->target);
        free(e->subject);
        free(e->oldv);
        free(e->newv);
        free(e->summary);
        free(e->evidence);
    }
    free(r->ev);
    for (size_t i = 0; i < r->nsr; i++) {
        free(r->sr[i].suite);
        free(r->sr[i].target);
    }
    free(r->sr);
}

int drift_report_schema_version(sqlite3 *db)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    return v;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

static const char *ctext(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

static int rep_load(sqlite3 *db, int64_t since, int64_t until, struct rep *r, char *err,
                    size_t errlen)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *s;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    const char *range_sql[] = {
        "SELECT min(ts_ms), max(ts_ms), count(*) FROM drift_records WHERE ts_ms >= ?1 AND ts_ms < ?2",
        "SELECT min(ts_ms), max(ts_ms), count(*) FROM drift_events WHERE ts_ms >= ?1 AND ts_ms < ?2",
    };
    for (int q = 0; q < 2; q++) {
        if (sqlite3_prepare_v2(db, range_sql[q], -1, &s, NULL) != SQLITE_OK)
            goto sqlfail;
        sqlite3_bind_int64(s, 1, since);
        sqlite3_bind_int64(s, 2, until);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 2) > 0) {
            int64_t a = sqlite3_column_int64(s, 0), b = sqlite3_column_int64(s, 1);
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
            if (q == 0)
                r->records = (long)sqlite3_column_int64(s, 2);
        }
        sqlite3_finalize(s);
    }
    if (lo == INT64_MAX)
        return 0;                           /* nothing in range */
    r->first_ts = lo;
    r->last_ts = hi;
    static const int64_t widths[] = {
        60000, 300000, 900000, 3600000, 3 * 3600000LL, 6 * 3600000LL, 12 * 3600000LL,
        86400000LL, 7 * 86400000LL, 30 * 86400000LL,
    };
    size_t wi = 0;
    while (wi + 1 < sizeof widths / sizeof widths[0] && (hi - lo) / widths[wi] > 80)
        wi++;
    r->bucket_ms = widths[wi];
    r->t0 = lo - lo % r->bucket_ms;
    r->nb = (size_t)((hi - r->t0) / r->bucket_ms) + 1;

    /* a version 1 database (read by a newer CLI, not yet migrated by a
     * server) has no lengths or parse flags: those columns read as NULL */
    int v2 = drift_report_schema_version(db) >= 2;
    if (sqlite3_prepare_v2(db, v2 ?
                           "SELECT target, ts_ms, latency_ms, status, is_probe, probe_correct,"
                           " probe_changed, output_len, probe_parsed, probe_refused"
                           " FROM drift_records WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY target"
                           :
                           "SELECT target, ts_ms, latency_ms, status, is_probe, probe_correct,"
                           " probe_changed, NULL, NULL, NULL"
                           " FROM drift_records WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY target",
                           -1, &s, NULL) != SQLITE_OK)
        goto sqlfail;
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_int64(s, 2, until);
    size_t cap = 0;
    struct series *cur = NULL;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = ctext(s, 0);
        if (!cur || strcmp(cur->target, t) != 0) {
            if (r->ns == cap) {
                size_t nc = cap ? cap * 2 : 8;
                struct series *ns = realloc(r->s, nc * sizeof *ns);
                if (!ns)
                    goto oom;
                r->s = ns;
                cap = nc;
            }
            cur = &r->s[r->ns];
            cur->target = strdup(t);
            cur->b = calloc(r->nb, sizeof *cur->b);
            r->ns++;
            if (!cur->target || !cur->b)
                goto oom;
        }
        int64_t ts = sqlite3_column_int64(s, 1);
        size_t k = (size_t)((ts - r->t0) / r->bucket_ms);
        if (k >= r->nb)
            k = r->nb - 1;
        struct bucket *b = &cur->b[k];
        int status = sqlite3_column_int(s, 3);
        b->n++;
        if (status >= 400) {
            b->errors++;
        } else {
            if (b->nlat == b->caplat) {
                size_t nc = b->caplat ? b->caplat * 2 : 16;
                int *nl = realloc(b->lat, nc * sizeof *nl);
                if (!nl)
                    goto oom;
                b->lat = nl;
                b->caplat = nc;
            }
            b->lat[b->nlat++] = sqlite3_column_int(s, 2);
        }
        if (sqlite3_column_int(s, 4) && sqlite3_column_type(s, 5) != SQLITE_NULL) {
            b->graded++;
            b->correct += sqlite3_column_int(s, 5) == 1;
            if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
                b->with_len++;
                b->sum_len += sqlite3_column_int(s, 7);
            }
            if (sqlite3_column_type(s, 8) != SQLITE_NULL && sqlite3_column_int(s, 8) == 0) {
                if (sqlite3_column_int(s, 9) == 1)
                    b->refused++;
                else
                    b->format_fail++;
            }
        }
        if (sqlite3_column_int(s, 4) && sqlite3_column_type(s, 6) != SQLITE_NULL) {
            b->compared++;
            b->changed += sqlite3_column_int(s, 6) == 1;
        }
    }
    sqlite3_finalize(s);
    for (size_t i = 0; i < r->ns; i++)
        for (size_t k = 0; k < r->nb; k++) {
            struct bucket *b = &r->s[i].b[k];
            if (b->nlat) {
                qsort(b->lat, b->nlat, sizeof *b->lat, cmp_int);
                b->p50 = b->lat[(b->nlat - 1) / 2];
            }
        }

    /* per (suite, target) over the whole period */
    if (sqlite3_prepare_v2(db, v2 ?
                           "SELECT probe_suite, target, count(*), sum(probe_correct = 1),"
                           " count(probe_changed), sum(probe_changed = 1), count(output_len),"
                           " total(output_len), sum(probe_parsed = 0 AND probe_refused = 1),"
                           " sum(probe_parsed = 0 AND coalesce(probe_refused, 0) = 0)"
                           " FROM drift_records WHERE ts_ms >= ?1 AND ts_ms < ?2 AND is_probe = 1"
                           " AND probe_correct IS NOT NULL GROUP BY probe_suite, target"
                           " ORDER BY probe_suite, target"
                           :
                           "SELECT probe_suite, target, count(*), sum(probe_correct = 1),"
                           " count(probe_changed), sum(probe_changed = 1), 0, 0, 0, 0"
                           " FROM drift_records WHERE ts_ms >= ?1 AND ts_ms < ?2 AND is_probe = 1"
                           " AND probe_correct IS NOT NULL GROUP BY probe_suite, target"
                           " ORDER BY probe_suite, target",
                           -1, &s, NULL) != SQLITE_OK)
        goto sqlfail;
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_int64(s, 2, until);
    cap = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (r->nsr == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct suite_row *ns = realloc(r->sr, nc * sizeof *ns);
            if (!ns)
                goto oom;
            r->sr = ns;
            cap = nc;
        }
        struct suite_row *x = &r->sr[r->nsr++];
        memset(x, 0, sizeof *x);
        x->suite = strdup(ctext(s, 0));
        x->target = strdup(ctext(s, 1));
        if (!x->suite || !x->target)
            goto oom;
        x->graded = (long)sqlite3_column_int64(s, 2);
        x->correct = (long)sqlite3_column_int64(s, 3);
        x->compared = (long)sqlite3_column_int64(s, 4);
        x->changed = (long)sqlite3_column_int64(s, 5);
        x->with_len = (long)sqlite3_column_int64(s, 6);
        x->sum_len = sqlite3_column_double(s, 7);
        x->refused = (long)sqlite3_column_int64(s, 8);
        x->format_fail = (long)sqlite3_column_int64(s, 9);
    }
    sqlite3_finalize(s);

    if (sqlite3_prepare_v2(db,
                           "SELECT id, ts_ms, kind, target, subject, old_value, new_value,"
                           " summary, evidence, acknowledged FROM drift_events"
                           " WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY ts_ms, id",
                           -1, &s, NULL) != SQLITE_OK)
        goto sqlfail;
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_int64(s, 2, until);
    cap = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (r->nev == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct evrow *ne = realloc(r->ev, nc * sizeof *ne);
            if (!ne)
                goto oom;
            r->ev = ne;
            cap = nc;
        }
        struct evrow *e = &r->ev[r->nev++];
        e->id = sqlite3_column_int64(s, 0);
        e->ts = sqlite3_column_int64(s, 1);
        e->kind = strdup(ctext(s, 2));
        e->target = strdup(ctext(s, 3));
        e->subject = strdup(ctext(s, 4));
        e->oldv = strdup(ctext(s, 5));
        e->newv = strdup(ctext(s, 6));
        e->summary = strdup(ctext(s, 7));
        e->evidence = strdup(ctext(s, 8));
        e->ack = sqlite3_column_int(s, 9);
    }
    sqlite3_finalize(s);
    return 0;
sqlfail:
    set_err(err, errlen, "reading the drift database: %s", sqlite3_errmsg(db));
    rep_free(r);
    return -1;
oom:
    sqlite3_finalize(s);
    set_err(err, errlen, "out of memory");
    rep_free(r);
    return -1;
}

/* ---- text -------------------------------------------------------------------------- */

static void fmt_short(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M", &tm);
}

static const char *bucket_name(int64_t ms)
{
    switch (ms) {
    case 60000: return "1 minute";
    case 300000: return "5 minutes";
    case 900000: return "15 minutes";
    case 3600000: return "1 hour";
    case 3 * 3600000LL: return "3 hours";
    case 6 * 3600000LL: return "6 hours";
    case 12 * 3600000LL: return "12 hours";
    case 86400000LL: return "1 day";
    case 7 * 86400000LL: return "1 week";
    default: return "30 days";
    }
}

static int is_alarm(const struct evrow *e) { return strcmp(e->kind, "version") != 0; }

/* Probe results per (suite, target) over the period. Shares are of graded
 * probes (answers that came back with a 2xx status). */
static void suite_table(FILE *o, const struct rep *r)
{
    fprintf(o, "\nProbes per suite and target (chars = mean answer length in characters;\n"
               "refused / format = no parsable answer, as a refusal / otherwise):\n");
    if (!r->nsr) {
        fprintf(o, "  (no graded probes in this period)\n");
        return;
    }
    fprintf(o, "  %-24s  %-24s  %6s  %8s  %7s  %7s  %7s  %7s\n", "suite", "target", "probes",
            "accuracy", "changed", "chars", "refused", "format");
    for (size_t i = 0; i < r->nsr; i++) {
        const struct suite_row *x = &r->sr[i];
        char chg[16] = "-", chars[16] = "-";
        if (x->compared)
            snprintf(chg, sizeof chg, "%.1f%%", 100.0 * x->changed / x->compared);
        if (x->with_len)
            snprintf(chars, sizeof chars, "%.1f", x->sum_len / x->with_len);
        fprintf(o, "  %-24s  %-24s  %6ld  %7.1f%%  %7s  %7s  %6.1f%%  %6.1f%%\n", x->suite,
                x->target, x->graded, 100.0 * x->correct / x->graded, chg, chars,
                100.0 * x->refused / x->graded, 100.0 * x->format_fail / x->graded);
    }
}

static void text_report(FILE *o, const struct rep *r)
{
    char a[40], b[40];
    if (!r->nb) {
        fprintf(o, "No records or events in this period.\n");
        return;
    }
    drift_fmt_time(r->first_ts, a, sizeof a);
    drift_fmt_time(r->last_ts, b, sizeof b);
    fprintf(o, "Drift report: %s to %s, %ld records, buckets of %s\n", a, b, r->records,
            bucket_name(r->bucket_ms));
    for (size_t i = 0; i < r->ns; i++) {
        const struct series *s = &r->s[i];
        fprintf(o, "\n== %s ==\n", s->target);
        fprintf(o, "  %-16s  %8s  %6s  %7s  %6s  %8s  %7s  %7s  %7s  %7s\n", "time (UTC)",
                "requests", "errors", "p50 ms", "probes", "accuracy", "changed", "chars",
                "refused", "format");
        size_t e = 0;
        for (size_t k = 0; k < r->nb; k++) {
            int64_t bt = r->t0 + (int64_t)k * r->bucket_ms;
            const struct bucket *bk = &s->b[k];
            if (bk->n)
                fmt_short(bt, a, sizeof a);
            char acc[16] = "-", chg[16] = "-", p50[16] = "-", chars[16] = "-", ref[16] = "-",
                 fmt[16] = "-";
            if (bk->graded) {
                snprintf(acc, sizeof acc, "%.1f%%", 100.0 * bk->correct / bk->graded);
                snprintf(ref, sizeof ref, "%.1f%%", 100.0 * bk->refused / bk->graded);
                snprintf(fmt, sizeof fmt, "%.1f%%", 100.0 * bk->format_fail / bk->graded);
            }
            if (bk->with_len)
                snprintf(chars, sizeof chars, "%.1f", bk->sum_len / bk->with_len);
            if (bk->compared)
                snprintf(chg, sizeof chg, "%.1f%%", 100.0 * bk->changed / bk->compared);
            if (bk->nlat)
                snprintf(p50, sizeof p50, "%d", bk->p50);
            if (bk->n)
                fprintf(o, "  %-16s  %8ld  %5.1f%%  %7s  %6ld  %8s  %7s  %7s  %7s  %7s\n", a,
                        bk->n, 100.0 * bk->errors / bk->n, p50, bk->graded, acc, chg, chars,
                        ref, fmt);
            /* then the events of this bucket, at their own time */
            for (; e < r->nev && r->ev[e].ts < bt + r->bucket_ms; e++) {
                const struct evrow *ev = &r->ev[e];
                if (strcmp(ev->target, s->target) != 0)
                    continue;
                fmt_short(ev->ts, a, sizeof a);
                fprintf(o, "  %-16s  ** #%lld %s: %s\n", a, (long long)ev->id, ev->kind,
                        ev->summary);
            }
        }
    }
    suite_table(o, r);
    long alarms = 0;
    for (size_t e = 0; e < r->nev; e++)
        alarms += is_alarm(&r->ev[e]);
    fprintf(o, "\nAlarms: %ld\n", alarms);
    for (size_t e = 0; e < r->nev; e++) {
        if (!is_alarm(&r->ev[e]))
            continue;
        drift_fmt_time(r->ev[e].ts, a, sizeof a);
        fprintf(o, "  #%lld %s%s: %s\n", (long long)r->ev[e].id, a,
                r->ev[e].ack ? " (acknowledged)" : "", r->ev[e].summary);
    }
}

/* ---- HTML + SVG ----------------------------------------------------------------------- */

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const palette[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
};
#define NPAL (sizeof palette / sizeof palette[0])

enum metric { M_ACC, M_CHANGE, M_P50, M_CHARS, M_NOANS };

static int metric_value(const struct bucket *b, enum metric m, double *v)
{
    switch (m) {
    case M_ACC:
        if (!b->graded)
            return 0;
        *v = 100.0 * b->correct / b->graded;
        return 1;
    case M_CHANGE:
        if (!b->compared)
            return 0;
        *v = 100.0 * b->changed / b->compared;
        return 1;
    case M_P50:
        if (!b->nlat)
            return 0;
        *v = b->p50;
        return 1;
    case M_CHARS:
        if (!b->with_len)
            return 0;
        *v = b->sum_len / b->with_len;
        return 1;
    case M_NOANS:
        if (!b->graded)
            return 0;
        *v = 100.0 * (b->refused + b->format_fail) / b->graded;
        return 1;
    }
    return 0;
}

static double nice_max(double v)
{
    if (v <= 0)
        return 1;
    double p = 1;
    while (p * 10 <= v)
        p *= 10;
    while (p > v)
        p /= 10;
    for (double m = 1; m <= 10; m += (m < 2 ? 1 : m < 5 ? 3 : 5))
        if (m * p >= v)
            return m * p;
    return 10 * p;
}

static void svg_chart(FILE *f, const struct rep *r, enum metric m, const char *title,
                      const char *ylabel, const char *empty_msg)
{
    const double W = 960, H = 320, ml = 72, mr = 200, mt = 40, mb = 56;
    const double pw = W - ml - mr, ph = H - mt - mb;
    double ymax = 100;
    int any = 0;
    for (size_t i = 0; i < r->ns; i++)
        for (size_t k = 0; k < r->nb; k++) {
            double v;
            if (metric_value(&r->s[i].b[k], m, &v))
                any = 1;
        }
    if (m == M_P50 || m == M_CHARS) {
        double mx = 0, v;
        for (size_t i = 0; i < r->ns; i++)
            for (size_t k = 0; k < r->nb; k++)
                if (metric_value(&r->s[i].b[k], m, &v) && v > mx)
                    mx = v;
        ymax = nice_max(mx * 1.05);
    }
    int64_t t_end = r->t0 + (int64_t)r->nb * r->bucket_ms;
    double span = (double)(t_end - r->t0);
#define XT(t) (ml + ((double)((t) - r->t0) / span) * pw)
#define YV(v) (mt + ph - ((v) / ymax) * ph)
    fprintf(f, "<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
               "width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"", W, H, W, H);
    esc(f, title);
    fprintf(f, "\">\n<title>");
    esc(f, title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n",
            W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"16\" font-weight=\"bold\">", ml);
    esc(f, title);
    fprintf(f, "</text>\n");
    /* grid and y axis */
    for (int i = 0; i <= 5; i++) {
        double v = ymax * i / 5, y = YV(v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
                ml, y, ml + pw, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                ml - 6, y + 4, v);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", ml, mt,
            ml, mt + ph);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", ml,
            mt + ph, ml + pw, mt + ph);
    fprintf(f, "<text transform=\"translate(18,%.1f) rotate(-90)\" font-size=\"12\" "
               "text-anchor=\"middle\">", mt + ph / 2);
    esc(f, ylabel);
    fprintf(f, "</text>\n");
    /* x ticks */
    for (int i = 0; i <= 5; i++) {
        int64_t t = r->t0 + (int64_t)(span * i / 5);
        char lab[40];
        time_t tt = (time_t)(t / 1000);
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(lab, sizeof lab, r->bucket_ms >= 86400000 ? "%Y-%m-%d" : "%m-%d %H:%M", &tm);
        double x = XT(t);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", x,
                mt + ph, x, mt + ph + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
                x, mt + ph + 18, lab);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">time (UTC), "
               "one point per %s</text>\n", ml + pw / 2, H - 10, bucket_name(r->bucket_ms));
    /* markers */
    for (size_t e = 0; e < r->nev; e++) {
        const struct evrow *ev = &r->ev[e];
        double x = XT(ev->ts);
        int alarm = is_alarm(ev);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"%s\"%s><title>#%lld ",
                x, mt, x, mt + ph, alarm ? "#d62728" : "#777", alarm ? "2" : "1.2",
                alarm ? "" : " stroke-dasharray=\"5 4\"", (long long)ev->id);
        esc(f, ev->summary);
        fprintf(f, "</title></line>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
                   "text-anchor=\"middle\" fill=\"%s\">#%lld</text>\n",
                x, mt - 4, alarm ? "#d62728" : "#555", (long long)ev->id);
    }
    /* lines */
    for (size_t i = 0; i < r->ns; i++) {
        const char *color = palette[i % NPAL];
        int open = 0;
        for (size_t k = 0; k < r->nb; k++) {
            double v;
            if (!metric_value(&r->s[i].b[k], m, &v)) {
                if (open)
                    fprintf(f, "\"/>\n");
                open = 0;
                continue;
            }
            double x = XT(r->t0 + (int64_t)k * r->bucket_ms + r->bucket_ms / 2), y = YV(v);
            if (!open)
                fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                        color);
            fprintf(f, "%.1f,%.1f ", x, y);
            open = 1;
        }
        if (open)
            fprintf(f, "\"/>\n");
        for (size_t k = 0; k < r->nb; k++) {
            double v;
            if (metric_value(&r->s[i].b[k], m, &v))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                        XT(r->t0 + (int64_t)k * r->bucket_ms + r->bucket_ms / 2), YV(v), color);
        }
    }
    if (!any)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#777\" "
                   "text-anchor=\"middle\">%s</text>\n", ml + pw / 2, mt + ph / 2, empty_msg);
    /* legend */
    double lx = ml + pw + 16, ly = mt + 6;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\">Legend</text>\n",
            lx, ly);
    ly += 18;
    for (size_t i = 0; i < r->ns && i < 10; i++, ly += 17) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"3\"/>\n", lx, ly - 4, lx + 18, ly - 4, palette[i % NPAL]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", lx + 24, ly);
        char name[28];
        snprintf(name, sizeof name, "%s", r->s[i].target);
        esc(f, name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777\" "
               "stroke-dasharray=\"5 4\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">"
               "version change</text>\n", lx + 9, ly - 12, lx + 9, ly + 2, lx + 24, ly);
    ly += 19;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
               "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">"
               "alarm</text>\n", lx + 9, ly - 12, lx + 9, ly + 2, lx + 24, ly);
    fprintf(f, "</svg>\n</figure>\n");
#undef XT
#undef YV
}

static void html_alarm_sentence(FILE *f, const struct evrow *e)
{
    char when[40];
    drift_fmt_time(e->ts, when, sizeof when);
    fprintf(f, "<li><b>#%lld</b> On %s, ", (long long)e->id, when);
    esc(f, e->summary);
    fprintf(f, ".");
    cJSON *j = cJSON_Parse(e->evidence);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "flipped_ids");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "probes_since_change");
    if (cJSON_IsNumber(k))
        fprintf(f, " The change most likely began about %d probes before the alarm.",
                k->valueint);
    if (cJSON_IsArray(ids) && cJSON_GetArraySize(ids) > 0) {
        fprintf(f, " Probes whose answer changed: ");
        int n = 0;
        for (const cJSON *x = ids->child; x && n < 12; x = x->next, n++) {
            if (n)
                fputs(", ", f);
            fputs("<code>", f);
            esc(f, cJSON_IsString(x) ? x->valuestring : "?");
            fputs("</code>", f);
        }
        if (cJSON_GetArraySize(ids) > 12)
            fprintf(f, " and %d more", cJSON_GetArraySize(ids) - 12);
        fputs(".", f);
    }
    cJSON_Delete(j);
    if (e->ack)
        fputs(" <i>(acknowledged)</i>", f);
    fputs("</li>\n", f);
}

static void html_suite_table(FILE *f, const struct rep *r)
{
    fputs("<h2>Probes per suite and target</h2>\n", f);
    if (!r->nsr) {
        fputs("<p>No graded probes in this period.</p>\n", f);
        return;
    }
    fputs("<p class=\"note\">Over the whole period, of the probes that were answered. "
          "<i>Changed</i>: answers that differ from the baseline run's answer to the same "
          "probe. <i>Mean length</i>: verbosity, in characters. <i>Refusals</i> and "
          "<i>format failures</i>: answers with nothing parsable, that read as a refusal "
          "or not.</p>\n<table>\n<tr><th>suite</th><th>target</th><th>probes</th>"
          "<th>accuracy</th><th>changed</th><th>mean length (chars)</th><th>refusals</th>"
          "<th>format failures</th></tr>\n", f);
    for (size_t i = 0; i < r->nsr; i++) {
        const struct suite_row *x = &r->sr[i];
        fputs("<tr><td>", f);
        esc(f, x->suite);
        fputs("</td><td>", f);
        esc(f, x->target);
        fprintf(f, "</td><td>%ld</td><td>%.1f%%</td>", x->graded, 100.0 * x->correct / x->graded);
        if (x->compared)
            fprintf(f, "<td>%.1f%%</td>", 100.0 * x->changed / x->compared);
        else
            fputs("<td>-</td>", f);
        if (x->with_len)
            fprintf(f, "<td>%.1f</td>", x->sum_len / x->with_len);
        else
            fputs("<td>-</td>", f);
        fprintf(f, "<td>%.1f%%</td><td>%.1f%%</td></tr>\n", 100.0 * x->refused / x->graded,
                100.0 * x->format_fail / x->graded);
    }
    fputs("</table>\n", f);
}

static int html_report(const char *path, const struct rep *r, const char *text, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        set_err(err, errlen, "%s: cannot write the HTML report", path);
        return -1;
    }
    char a[40], b[40], now[40];
    drift_fmt_time(drift_now_ms(), now, sizeof now);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<title>llmpin drift report</title>\n<style>\n"
          "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;"
          "margin:24px auto;padding:0 16px;color:#222;line-height:1.45}\n"
          "h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd}\n"
          "figure{margin:16px 0}svg{max-width:100%;height:auto;font-family:inherit}\n"
          "code{background:#f3f3f3;padding:0 3px}li{margin:6px 0}\n"
          "pre{background:#f7f7f7;padding:12px;overflow-x:auto;font-size:12px}\n"
          ".note{color:#555}\ntable{border-collapse:collapse;font-size:14px}"
          "th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}"
          "th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}\n</style></head><body>\n"
          "<h1>llmpin drift report</h1>\n", f);
    if (!r->nb) {
        fprintf(f, "<p>No records or events in the selected period. Generated %s.</p>\n", now);
    } else {
        drift_fmt_time(r->first_ts, a, sizeof a);
        drift_fmt_time(r->last_ts, b, sizeof b);
        long alarms = 0, versions = 0;
        for (size_t e = 0; e < r->nev; e++) {
            alarms += is_alarm(&r->ev[e]);
            versions += !is_alarm(&r->ev[e]);
        }
        fprintf(f, "<p>Period: %s to %s. %ld recorded answers from %zu target%s; %ld version "
                   "change%s and %ld alarm%s. Generated %s.</p>\n",
                a, b, r->records, r->ns, r->ns == 1 ? "" : "s", versions,
                versions == 1 ? "" : "s", alarms, alarms == 1 ? "" : "s", now);
        fputs("<p class=\"note\">How to read this: llmpin records every answer. A <b>version "
              "change</b> (grey dashed line) means an upstream reported a model name or "
              "system_fingerprint never seen before for that target. <b>Probes</b> are questions "
              "with known answers sent on a timer; an <b>alarm</b> (red line) means a "
              "statistical test (CUSUM) found that probe accuracy, or the share of answers that "
              "differ from the baseline run, moved by more than chance allows. Each marker "
              "carries its event number, listed below.</p>\n", f);
        fputs("<h2>Alarms</h2>\n", f);
        if (!alarms) {
            fputs("<p>No alarms in this period.</p>\n", f);
        } else {
            fputs("<ul>\n", f);
            for (size_t e = 0; e < r->nev; e++)
                if (is_alarm(&r->ev[e]))
                    html_alarm_sentence(f, &r->ev[e]);
            fputs("</ul>\n", f);
        }
        fputs("<h2>Version changes</h2>\n", f);
        if (!versions) {
            fputs("<p>No new model versions or fingerprints were reported in this period.</p>\n", f);
        } else {
            fputs("<ul>\n", f);
            for (size_t e = 0; e < r->nev; e++) {
                const struct evrow *ev = &r->ev[e];
                if (is_alarm(ev))
                    continue;
                drift_fmt_time(ev->ts, a, sizeof a);
                fprintf(f, "<li><b>#%lld</b> %s: ", (long long)ev->id, a);
                esc(f, ev->summary);
                fputs(".</li>\n", f);
            }
            fputs("</ul>\n", f);
        }
        html_suite_table(f, r);
        fputs("<h2>Charts</h2>\n", f);
        svg_chart(f, r, M_ACC, "Probe accuracy per target",
                  "probes answered correctly (%)", "no probe results in this period");
        svg_chart(f, r, M_CHANGE, "Probe answers that differ from the baseline run",
                  "answers changed (%)", "no probe answers to compare in this period");
        svg_chart(f, r, M_CHARS, "Verbosity: mean probe answer length per target",
                  "characters per answer", "no probe answers with a known length in this period");
        svg_chart(f, r, M_NOANS, "Probe answers with nothing parsable (refusals and format failures)",
                  "no parsable answer (%)", "no probe results in this period");
        svg_chart(f, r, M_P50, "Median latency per target (successful requests)",
                  "latency p50 (ms)", "no successful requests in this period");
    }
    fputs("<h2>Timeline (text)</h2>\n<pre>", f);
    esc(f, text);
    fputs("</pre>\n</body></html>\n", f);
    if (fclose(f) != 0) {
        set_err(err, errlen, "%s: write error", path);
        return -1;
    }
    return 0;
}

int drift_report_write(sqlite3 *db, int64_t since, int64_t until, FILE *out,
                       const char *html_path, char *err, size_t errlen)
{
    struct rep r;
    if (rep_load(db, since, until, &r, err, errlen))
        return -1;
    char *text = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&text, &tlen);
    if (!mf) {
        rep_free(&r);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    text_report(mf, &r);
    fclose(mf);
    if (out)
        fputs(text, out);
    int rc = 0;
    if (html_path)
        rc = html_report(html_path, &r, text, err, errlen);
    free(text);
    rep_free(&r);
    return rc;
}
