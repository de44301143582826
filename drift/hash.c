/*
 * hash.c - canonical request hashing, output hashing, and the small value
 * types (records, events, time) shared by the rest of drift/.
 *
 * Why a canonical form: the same request sent by two SDKs differs in key
 * order, whitespace and number spelling. Passive output drift and shadow
 * comparison pair requests by hash, so those differences must not matter,
 * while anything that can change the answer (a message, the temperature, a
 * tool) must. We keep a fixed list of answer-deciding fields, sort object
 * keys by byte order at every level, print no whitespace, escape strings
 * minimally (after cJSON has decoded \u escapes, so "\u00e9" and "é" agree)
 * and print numbers from their double value: integers exactly, others with
 * the shortest %.Ng that round-trips.
 */
#include "drift/internal.h"

#include <openssl/evp.h>
#include <ctype.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a growable buffer ----------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* ---- canonical JSON -------------------------------------------------------- */

static void canon_number(struct buf *b, double v)
{
    char tmp[64];
    if (!isfinite(v)) {
        buf_puts(b, "null");        /* cJSON never parses these; be safe */
        return;
    }
    if (v == 0) {
        buf_puts(b, "0");           /* -0 and 0 agree */
        return;
    }
    if (floor(v) == v && fabs(v) < 9007199254740992.0) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        buf_puts(b, tmp);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(b, tmp);
}

static void canon_string(struct buf *b, const char *s)
{
    static const char hexd[] = "0123456789abcdef";
    buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        switch (c) {
        case '"': buf_put(b, "\\\"", 2); break;
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\b': buf_put(b, "\\b", 2); break;
        case '\f': buf_put(b, "\\f", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
                buf_put(b, e, 6);
            } else {
                buf_put(b, (const char *)p, 1);
            }
        }
    }
    buf_put(b, "\"", 1);
}



static int cmp_item_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static void canon_value(struct buf *b, const cJSON *v, int depth)
{
    if (depth > 64) {               /* cJSON's own nesting limit is lower; belt and braces */
        buf_puts(b, "null");
        return;
    }
    if (cJSON_IsNull(v) || cJSON_IsInvalid(v)) {
        buf_puts(b, "null");
    } else if (cJSON_IsTrue(v)) {
        buf_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        buf_puts(b, "false");
    } else if (cJSON_IsNumber(v)) {
        canon_number(b, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        canon_string(b, v->valuestring ? v->valuestring : "");
    } else if (cJSON_IsArray(v)) {
        buf_put(b, "[", 1);
        int first = 1;
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!first)
                buf_put(b, ",", 1);
            first = 0;
            canon_value(b, e, depth + 1);
        }
        buf_put(b, "]", 1);
    } else if (cJSON_IsObject(v)) {
        size_t n = 0;
        for (const cJSON *e = v->child; e; e = e->next)
            n++;
        const cJSON **items = n ? malloc(n * sizeof *items) : NULL;
        if (n && !items) {
            b->oom = 1;
            return;
        }
        size_t i = 0;
        for (const cJSON *e = v->child; e; e = e->next)
            items[i++] = e;
        if (n > 1)
            qsort(items, n, sizeof *items, cmp_item_keys);
        buf_put(b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i)
                buf_put(b, ",", 1);
            canon_string(b, items[i]->string ? items[i]->string : "");
            buf_put(b, ":", 1);
            canon_value(b, items[i], depth + 1);
        }
        buf_put(b, "}", 1);
        free(items);
    } else {
        buf_puts(b, "null");
    }
}

char *drift_canonical_json(const cJSON *v)
{
    struct buf b = {0};
    canon_value(&b, v, 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The fields that decide an answer. Everything else (stream, user,
 * metadata, store, stream_options, service_tier...) is left out. Sorted, so
 * the output object is already in key order. */
static const char *const answer_fields[] = {
    "frequency_penalty", "function_call", "functions", "input", "logit_bias",
    "logprobs", "max_completion_tokens", "max_tokens", "messages", "min_p",
    "model", "n", "parallel_tool_calls", "presence_penalty", "prompt",
    "reasoning_effort", "repeat_penalty", "response_format", "seed", "stop",
    "system", "temperature", "tool_choice", "tools", "top_k", "top_logprobs",
    "top_p",
};

char *drift_canonical_request_json(const cJSON *body)
{
    if (!cJSON_IsObject(body))
        return NULL;
    struct buf b = {0};
    buf_put(&b, "{", 1);
    int first = 1;
    for (size_t i = 0; i < sizeof answer_fields / sizeof answer_fields[0]; i++) {
        /* case-sensitive: "Model" is not "model" to any upstream */
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, answer_fields[i]);
        if (!v)
            continue;
        if (!first)
            buf_put(&b, ",", 1);
        first = 0;
        canon_string(&b, answer_fields[i]);
        buf_put(&b, ":", 1);
        canon_value(&b, v, 0);
    }
    buf_put(&b, "}", 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void to_hex(const unsigned char *md, unsigned n, char *hex)
{
    static const char hexd[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = hexd[md[i] >> 4];
        hex[2 * i + 1] = hexd[md[i] & 15];
    }
    hex[2 * n] = '\0';
}

void drift_output_hash(const char *text, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(text ? text : "", text ? len : 0, md, &n, EVP_sha256(), NULL) || n != 32) {
        hex[0] = '\0';
        return;
    }
    to_hex(md, n, hex);
}

int drift_canonical_request_hash(const cJSON *body, char hex[65])
{
    hex[0] = '\0';
    char *s = drift_canonical_request_json(body);
    if (!s)
        return -1;
    drift_output_hash(s, strlen(s), hex);
    free(s);
    return hex[0] ? 0 : -1;
}

int drift_request_is_deterministic(const cJSON *body, int64_t *seed, int *has_seed)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "temperature");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "seed");
    int hs = cJSON_IsNumber(s);
    if (has_seed)
        *has_seed = hs;
    if (seed)
        *seed = hs ? (int64_t)s->valuedouble : 0;
    return hs || (cJSON_IsNumber(t) && t->valuedouble == 0);
}

/* ---- records and events ------------------------------------------------------ */

struct drift_record *drift_record_new(void)
{
    struct drift_record *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->probe_correct = -1;
    r->probe_changed = -1;
    r->probe_parsed = -1;
    r->probe_refused = -1;
    r->output_len = -1;
    r->ttft_ms = -1;
    return r;
}

int drift_text_chars(const char *text, size_t len)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; p && i < len; i++)
        n += (p[i] & 0xC0) != 0x80;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

void drift_record_free(struct drift_record *r)
{
    if (!r)
        return;
    free(r->request_id);
    free(r->key_name);
    free(r->route);
    free(r->target);
    free(r->requested_model);
    free(r->served_model);
    free(r->system_fingerprint);
    free(r->upstream_request_id);
    free(r->version_headers);
    free(r->output_text);
    free(r->probe_suite);
    free(r->probe_id);
    free(r->probe_answer);
    free(r);
}

void drift_event_clear(struct drift_event *ev)
{
    if (!ev)
        return;
    free(ev->kind);
    free(ev->target);
    free(ev->subject);
    free(ev->old_value);
    free(ev->new_value);
    free(ev->summary);
    free(ev->evidence);
    memset(ev, 0, sizeof *ev);
}

int64_t drift_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

cJSON *drift_event_to_json(const struct drift_event *ev)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char when[32];
    iso_time(ev->ts_ms, when, sizeof when);
    cJSON_AddNumberToObject(o, "ts_ms", (double)ev->ts_ms);
    cJSON_AddStringToObject(o, "time", when);
    cJSON_AddStringToObject(o, "kind", ev->kind ? ev->kind : "");
    cJSON_AddStringToObject(o, "target", ev->target ? ev->target : "");
    cJSON_AddStringToObject(o, "subject", ev->subject ? ev->subject : "");
    if (ev->old_value)
        cJSON_AddStringToObject(o, "old", ev->old_value);
    else
        cJSON_AddNullToObject(o, "old");
    if (ev->new_value)
        cJSON_AddStringToObject(o, "new", ev->new_value);
    else
        cJSON_AddNullToObject(o, "new");
    cJSON_AddStringToObject(o, "summary", ev->summary ? ev->summary : "");
    cJSON *evi = ev->evidence ? cJSON_Parse(ev->evidence) : NULL;
    if (evi)
        cJSON_AddItemToObject(o, "evidence", evi);
    else
        cJSON_AddObjectToObject(o, "evidence");
    return o;
}

/* ---- time parsing ------------------------------------------------------------ */

int drift_parse_time(const char *s, int64_t now_ms, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    size_t n = strlen(s);
    char *end;
    /* relative: 90m, 24h, 7d, 30s */
    if (n >= 2 && strchr("smhdw", s[n - 1]) && isdigit((unsigned char)s[0])) {
        long long v = strtoll(s, &end, 10);
        if (end == s + n - 1 && v >= 0 && v < 100000000LL) {
            int64_t unit = s[n - 1] == 's' ? 1000 : s[n - 1] == 'm' ? 60000
                         : s[n - 1] == 'h' ? 3600000 : s[n - 1] == 'd' ? 86400000
                         : 7LL * 86400000;
            *ms = now_ms - (int64_t)v * unit;
            return 0;
        }
    }
    /* absolute: YYYY-MM-DD[THH:MM[:SS]][Z] (UTC) */
    int Y, M, D, h = 0, mi = 0, sec = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &used) == 3 && used == 10) {
        const char *p = s + 10;
        if (*p == 'T' || *p == ' ') {
            int u2 = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &u2) != 2)
                return -1;
            p += 1 + u2;
            if (*p == ':') {
                int u3 = 0;
                if (sscanf(p + 1, "%2d%n", &sec, &u3) != 1)
                    return -1;
                p += 1 + u3;
            }
        }
        if (*p == 'Z')
            p++;
        if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
            return -1;
        struct tm tm = {0};
        tm.tm_year = Y - 1900;
        tm.tm_mon = M - 1;
        tm.tm_mday = D;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            return -1;
        *ms = (int64_t)t * 1000;
        return 0;
    }
    /* ms since the epoch */
    long long v = strtoll(s, &end, 10);
    if (*end == '\0' && end != s && v >= 0) {
        *ms = v;
        return 0;
    }
    return -1;
}
