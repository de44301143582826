/*
 * retry.c - outcome classification, retry decisions and Retry-After.
 *
 * Retries use exponential backoff with "full jitter" (the wait is uniform
 * between zero and the exponential bound): many clients failing at once
 * then spread their retries out instead of hitting a recovering upstream
 * in waves. When the upstream says how long to wait (Retry-After,
 * retry-after-ms) that wins, but never past the request's deadline: a
 * retry that cannot finish in time only delays the error.
 *
 * Header values are untrusted input: numbers are bounded in length,
 * dates are parsed field by field, anything odd is "no hint".
 */
#include "policy/policy_int.h"

#include <string.h>

#define ONE_DAY_MS 86400000LL

const char *policy_outcome_name(enum policy_outcome o) {
    switch (o) {
    case POL_OK: return "ok";
    case POL_CONNECT: return "connect";
    case POL_TIMEOUT: return "timeout";
    case POL_429: return "429";
    case POL_5XX: return "5xx";
    case POL_4XX: return "4xx";
    case POL_DRIFT: return "drift";
    case POL_CANCELLED: return "cancelled";
    case POL_CIRCUIT_OPEN: return "circuit_open";
    }
    return "unknown";
}

enum policy_outcome policy_classify_status(int s) {
    if (s >= 200 && s < 300) return POL_OK;
    if (s == 408) return POL_TIMEOUT;
    if (s == 429) return POL_429;
    if (s >= 500 && s < 600) return POL_5XX;
    return POL_4XX;
}

int policy_should_retry(const struct policy_route *r, enum policy_outcome o,
                        int attempt, int64_t elapsed_ms, int64_t deadline_ms,
                        int64_t retry_after_ms, uint64_t rnd, int64_t *delay_ms) {
    *delay_ms = 0;
    if (o != POL_CONNECT && o != POL_TIMEOUT && o != POL_429 && o != POL_5XX) return 0;
    const struct cfg_retry *rt = &r->cfg->retry;
    if (attempt < 1) attempt = 1;
    if (attempt >= rt->max_attempts) return 0;

    int64_t delay;
    if (retry_after_ms >= 0) {
        delay = retry_after_ms;
    } else {
        int64_t cap = rt->max_ms > 0 ? rt->max_ms : 0;
        int64_t bound = rt->base_ms > 0 ? rt->base_ms : 0;
        for (int i = 1; i < attempt && bound < cap; i++) bound *= 2;
        if (bound > cap) bound = cap;
        /* uniform integer in [0, bound] */
        delay = (int64_t)(pol_unit(rnd) * (double)(bound + 1));
        if (delay > bound) delay = bound;
    }
    if (deadline_ms > 0 && elapsed_ms + delay >= deadline_ms) return 0;
    *delay_ms = delay;
    return 1;
}

/* ---- Retry-After ------------------------------------------------------------ */

static const char *skip_ws(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* A non-negative decimal "12", "1.5", "0.25" scaled by `scale` (1000 for
 * seconds -> ms, 1 for ms), fractions rounded up. -1 if malformed. */
static int64_t parse_decimal(const char *s, int64_t scale) {
    s = skip_ws(s);
    int64_t whole = 0;
    int nd = 0;
    while (*s >= '0' && *s <= '9') {
        if (++nd > 12) return -1;
        whole = whole * 10 + (*s++ - '0');
    }
    int64_t frac = 0, fscale = 1;
    if (*s == '.') {
        s++;
        int nf = 0;
        while (*s >= '0' && *s <= '9') {
            if (nf < 6) {
                frac = frac * 10 + (*s - '0');
                fscale *= 10;
            }
            nf++;
            s++;
        }
        if (nf == 0 && nd == 0) return -1;
    }
    if (nd == 0 && fscale == 1) return -1;
    s = skip_ws(s);
    if (*s) return -1;
    return whole * scale + (frac * scale + fscale - 1) / fscale;
}

static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const wdays[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const wdays_long[7] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                          "Friday", "Saturday", "Sunday"};

/* Read exactly n digits. */
static int digits(const char **s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

static int lit(const char **s, const char *l) {
    size_t n = strlen(l);
    if (strncmp(*s, l, n) != 0) return -1;
    *s += n;
    return 0;
}

static int month(const char **s, int *mon) {
    for (int i = 0; i < 12; i++)
        if (strncmp(*s, months[i], 3) == 0) {
            *mon = i + 1;
            *s += 3;
            return 0;
        }
    return -1;
}

static int hms(const char **s, int *h, int *m, int *sec) {
    if (digits(s, 2, h) || lit(s, ":") || digits(s, 2, m) || lit(s, ":") || digits(s, 2, sec))
        return -1;
    return (*h > 23 || *m > 59 || *sec > 60) ? -1 : 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (March-based years,
 * so the leap day falls at the end of the year). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* HTTP-date (RFC 9110 5.6.7) to Unix ms in *out; -1 if malformed. */
static int parse_http_date(const char *s, int64_t *out) {
    int y = 0, mon = 0, d = 0, h, mi, sec;
    s = skip_ws(s);
    const char *comma = strchr(s, ',');
    if (comma && comma - s == 3) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        int ok = 0;
        for (int i = 0; i < 7; i++) ok |= strncmp(s, wdays[i], 3) == 0;
        if (!ok) return -1;
        s += 4;
        if (lit(&s, " ") || digits(&s, 2, &d) || lit(&s, " ") || month(&s, &mon) ||
            lit(&s, " ") || digits(&s, 4, &y) || lit(&s, " ") || hms(&s, &h, &mi, &sec) ||
            lit(&s, " GMT"))
            return -1;
    } else if (comma) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        int ok = 0;
        for (int i = 0; i < 7; i++)
            ok |= (size_t)(comma - s) == strlen(wdays_long[i]) &&
                  strncmp(s, wdays_long[i], strlen(wdays_long[i])) == 0;
        if (!ok) return -1;
        s = comma + 1;
        if (lit(&s, " ") || digits(&s, 2, &d) || lit(&s, "-") || month(&s, &mon) ||
            lit(&s, "-") || digits(&s, 2, &y) || lit(&s, " ") || hms(&s, &h, &mi, &sec) ||
            lit(&s, " GMT"))
            return -1;
        y += y < 70 ? 2000 : 1900;
    } else {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        int ok = 0;
        for (int i = 0; i < 7; i++) ok |= strncmp(s, wdays[i], 3) == 0;
        if (!ok) return -1;
        s += 3;
        if (lit(&s, " ") || month(&s, &mon) || lit(&s, " ")) return -1;
        if (*s == ' ') {
            s++;
            if (digits(&s, 1, &d)) return -1;
        } else if (digits(&s, 2, &d)) {
            return -1;
        }
        if (lit(&s, " ") || hms(&s, &h, &mi, &sec) || lit(&s, " ") || digits(&s, 4, &y))
            return -1;
    }
    s = skip_ws(s);
    if (*s) return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d < 1 || d > mdays[mon - 1]) return -1;
    int64_t days = days_from_civil(y, mon, d);
    *out = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL;
    return 0;
}

int policy_parse_retry_after(const char *retry_after, const char *retry_after_ms,
                             int64_t now_unix_ms, int64_t *out_ms) {
    int64_t v = -1;
    if (retry_after_ms) v = parse_decimal(retry_after_ms, 1);
    if (v < 0 && retry_after) {
        v = parse_decimal(retry_after, 1000);
        if (v < 0) {
            int64_t at;
            if (parse_http_date(retry_after, &at) == 0)
                v = at > now_unix_ms ? at - now_unix_ms : 0;
        }
    }
    if (v < 0) return -1;
    *out_ms = v > ONE_DAY_MS ? ONE_DAY_MS : v;
    return 0;
}
