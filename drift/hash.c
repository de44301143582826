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

/* ---- an output buffer ------------------------------------------------------ */

/* Canonical text goes either into a growable string (drift_canonical_json)
 * or, when hashing, straight into a SHA-256 context through a fixed buffer:
 * hashing a request then allocates nothing but the keys of objects larger
 * than SORT_STACK. */
#define SORT_STACK 32

struct buf {
    char *p;
    size_t len, cap;
    int oom;
    EVP_MD_CTX *sink;               /* hashing: p is a fixed buffer of cap bytes */
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->sink) {
        if (b->len + n > b->cap) {
            if (b->len && !EVP_DigestUpdate(b->sink, b->p, b->len))
                b->oom = 1;
            b->len = 0;
            if (n > b->cap) {
                if (!EVP_DigestUpdate(b->sink, s, n))
                    b->oom = 1;
                return;
            }
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        return;
    }
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
        /* integers, the common case (max_tokens, seed): digits by hand */
        long long x = (long long)v;
        unsigned long long u = x < 0 ? (unsigned long long)-x : (unsigned long long)x;
        char *e = tmp + sizeof tmp, *q = e;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (x < 0)
            *--q = '-';
        buf_put(b, q, (size_t)(e - q));
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
    const unsigned char *run = (const unsigned char *)s, *p = run;
    for (; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;                /* plain bytes go out as one run */
        if (p > run)
            buf_put(b, (const char *)run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"': buf_put(b, "\\\"", 2); break;
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\b': buf_put(b, "\\b", 2); break;
        case '\f': buf_put(b, "\\f", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
            buf_put(b, e, 6);
        }
        }
    }
    if (p > run)
        buf_put(b, (const char *)run, (size_t)(p - run));
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
        const cJSON *stack[SORT_STACK];
        const cJSON **items = n <= SORT_STACK ? stack : malloc(n * sizeof *items);
        if (!items) {
            b->oom = 1;
            return;
        }
        size_t i = 0;
        for (const cJSON *e = v->child; e; e = e->next)
            items[i++] = e;
        if (n <= SORT_STACK) {
            /* insertion sort: few keys, and stable */
            for (i = 1; i < n; i++) {
                const cJSON *x = items[i];
                size_t j = i;
                for (; j > 0 && cmp_item_keys(&items[j - 1], &x) > 0; j--)
                    items[j] = items[j - 1];
                items[j] = x;
            }
        } else {
            qsort(items, n, sizeof *items, cmp_item_keys);
        }
        buf_put(b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i)
                buf_put(b, ",", 1);
            canon_string(b, items[i]->string ? items[i]->string : "");
            buf_put(b, ":", 1);
            canon_value(b, items[i], depth + 1);
        }
        buf_put(b, "}", 1);
        if (items != stack)
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
const char *const drift_answer_fields[] = {
    "frequency_penalty", "function_call", "functions", "input", "logit_bias",
    "logprobs", "max_completion_tokens", "max_tokens", "messages", "min_p",
    "model", "n", "parallel_tool_calls", "presence_penalty", "prompt",
    "reasoning_effort", "repeat_penalty", "response_format", "seed", "stop",
    "system", "temperature", "tool_choice", "tools", "top_k", "top_logprobs",
    "top_p",
};
#define N_ANSWER_FIELDS (sizeof drift_answer_fields / sizeof drift_answer_fields[0])
const size_t drift_n_answer_fields = N_ANSWER_FIELDS;

static int cmp_field(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

static int canon_request(struct buf *b, const cJSON *body)
{
    if (!cJSON_IsObject(body))
        return -1;
    /* one pass over the body: each answer field's FIRST occurrence, matched
     * case-sensitively ("Model" is not "model" to any upstream) */
    const cJSON *found[N_ANSWER_FIELDS] = {0};
    for (const cJSON *e = body->child; e; e = e->next) {
        if (!e->string)
            continue;
        const char *const *f = bsearch(e->string, drift_answer_fields, N_ANSWER_FIELDS,
                                       sizeof drift_answer_fields[0], cmp_field);
        if (f && !found[f - drift_answer_fields])
            found[f - drift_answer_fields] = e;
    }
    buf_put(b, "{", 1);
    int first = 1;
    for (size_t i = 0; i < N_ANSWER_FIELDS; i++) {
        if (!found[i])
            continue;
        if (!first)
            buf_put(b, ",", 1);
        first = 0;
        canon_string(b, drift_answer_fields[i]);
        buf_put(b, ":", 1);
        canon_value(b, found[i], 0);
    }
    buf_put(b, "}", 1);
    return b->oom ? -1 : 0;
}

char *drift_canonical_request_json(const cJSON *body)
{
    struct buf b = {0};
    if (canon_request(&b, body)) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

void drift_hex(const unsigned char *md, unsigned n, char *hex)
{
    static const char hexd[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = hexd[md[i] >> 4];
        hex[2 * i + 1] = hexd[md[i] & 15];
    }
    hex[2 * n] = '\0';
}

void drift_sha256_hex(struct drift_hasher *h, const char *text, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hex[0] = '\0';
    if (!h || !h->ctx) {
        if (EVP_Digest(text ? text : "", text ? len : 0, md, &n, EVP_sha256(), NULL) && n == 32)
            drift_hex(md, n, hex);
        return;
    }
    if (EVP_DigestInit_ex(h->ctx, h->md ? h->md : EVP_sha256(), NULL) &&
        EVP_DigestUpdate(h->ctx, text ? text : "", text ? len : 0) &&
        EVP_DigestFinal_ex(h->ctx, md, &n) && n == 32)
        drift_hex(md, n, hex);
}

void drift_output_hash(const char *text, size_t len, char hex[65])
{
    drift_sha256_hex(NULL, text, len, hex);
}

int drift_hasher_init(struct drift_hasher *h)
{
    /* fetched once: EVP_sha256() looks the implementation up on every use */
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    return h->ctx ? 0 : -1;
}

void drift_hasher_clear(struct drift_hasher *h)
{
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    h->ctx = NULL;
    h->md = NULL;
}

int drift_canonical_request_hash_with(struct drift_hasher *h, const cJSON *body, char hex[65])
{
    hex[0] = '\0';
    if (!cJSON_IsObject(body))
        return -1;
    struct drift_hasher local = {0};
    if (!h || !h->ctx) {
        if (!(local.ctx = EVP_MD_CTX_new()))
            return -1;
        h = &local;
    }
    char chunk[1024];
    struct buf b = {.p = chunk, .cap = sizeof chunk, .sink = h->ctx};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int ok = EVP_DigestInit_ex(h->ctx, h->md ? h->md : EVP_sha256(), NULL) &&
             canon_request(&b, body) == 0 && (!b.len || EVP_DigestUpdate(h->ctx, chunk, b.len)) &&
             EVP_DigestFinal_ex(h->ctx, md, &n) && n == 32;
    if (ok)
        drift_hex(md, n, hex);
    EVP_MD_CTX_free(local.ctx);
    return ok ? 0 : -1;
}

int drift_canonical_request_hash(const cJSON *body, char hex[65])
{
    return drift_canonical_request_hash_with(NULL, body, hex);
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

void drift_record_free_field(struct drift_record *r, void *p)
{
    uintptr_t lo = (uintptr_t)r, hi = lo + r->block_size, x = (uintptr_t)p;
    if (!(x >= lo && x < hi))
        free(p);
}

void drift_record_free(struct drift_record *r)
{
    if (!r)
        return;
    drift_record_free_fields(r);
    if (r->seg)
        drift_seg_release(r->seg, 1);
    else
        free(r);
}

void drift_record_free_fields(struct drift_record *r)
{
    drift_record_free_field(r, r->request_id);
    drift_record_free_field(r, r->key_name);
    drift_record_free_field(r, r->route);
    drift_record_free_field(r, r->target);
    drift_record_free_field(r, r->requested_model);
    drift_record_free_field(r, r->served_model);
    drift_record_free_field(r, r->system_fingerprint);
    drift_record_free_field(r, r->upstream_request_id);
    drift_record_free_field(r, r->version_headers);
    drift_record_free_field(r, r->output_text);
    drift_record_free_field(r, r->request_raw);
    drift_record_free_field(r, r->probe_suite);
    drift_record_free_field(r, r->probe_id);
    drift_record_free_field(r, r->probe_answer);
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
