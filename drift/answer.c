/*
 * answer.c - read what an upstream answer reveals without building a tree.
 *
 * Why: with drift recording on, every 2xx answer is read for its served
 * model, fingerprint, token usage and output text. Doing that with cJSON
 * costs a malloc per node and per string and a free for each afterwards, on
 * the event loop thread, which is the proxy's bottleneck: about 3 µs of a
 * ~40 µs request for a small chat answer, most of what recording cost the
 * loop. This scanner walks the text in place, allocates nothing and hands
 * back spans of the raw (still escaped) strings; the caller unescapes the
 * few it keeps straight into its own buffers.
 *
 * Same answers as cJSON, or none. The proxy used cJSON_ParseWithLength
 * before, and both its verdict (JSON or not: a 2xx that is not JSON is a
 * bad response) and what it extracted must stay the same. So the scanner
 * accepts only strict RFC 8259 JSON that cJSON is known to read the same
 * way, and answers DRIFT_ANSWER_UNSURE for everything else: a syntax error,
 * but also legal-but-unusual input where cJSON's reading differs or fails
 * (\u0000, unpaired surrogates, numbers over 63 characters, nesting over
 * 64 levels, raw control characters, a top level that is not an object,
 * trailing bytes, embeddings' "data" which the caller re-serialises). The
 * caller then does exactly what it did before. Upstreams send plain JSON,
 * so the fallback is for the hostile and the odd.
 *
 * Lookups follow cJSON_GetObjectItemCaseSensitive: the FIRST member with a
 * key wins, keys compare after unescaping, and asking a non-object for a
 * key finds nothing. Iterating "choices" or "tool_calls" follows
 * cJSON_ArrayForEach: the values of an array, or of an object.
 *
 * Bounded: every read is checked against the end, recursion is at most
 * SCAN_MAX_DEPTH deep, and nothing is allocated.
 */
#include "drift/drift.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SCAN_MAX_DEPTH 64
#define SCAN_MAX_NUMBER 63            /* cJSON reads at most 63 characters of a number */

struct span {
    const char *p;                    /* first byte of the value; NULL = absent */
    const char *e;                    /* one past its last byte */
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws((unsigned char)*p))
        p++;
    return p;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked here). -1 if not. */
static long hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Bytes that end a plain run inside a string: '"', '\\' and the control
 * characters (which strict JSON forbids raw). */
static const unsigned char str_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

/* p at '"'. Returns the byte after the closing quote, or NULL when the
 * string is not one this scanner vouches for. *esc is set when the string
 * holds escapes. */
static const char *scan_string(const char *p, const char *end, int *esc)
{
    p++;
    for (;;) {
#if defined(__SSE2__)
        /* 16 bytes at a time: most of an answer's bytes are inside strings */
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i stop = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                /* c < 0x20 as unsigned bytes, compared signed after flipping the top bit */
                _mm_cmplt_epi8(_mm_xor_si128(v, _mm_set1_epi8((char)0x80)),
                               _mm_set1_epi8((char)(0x20 ^ 0x80))));
            int m = _mm_movemask_epi8(stop);
            if (m) {
                p += __builtin_ctz((unsigned)m);
                break;
            }
            p += 16;
        }
#endif
        while (end - p >= 4 && !str_stop[(unsigned char)p[0]] && !str_stop[(unsigned char)p[1]] &&
               !str_stop[(unsigned char)p[2]] && !str_stop[(unsigned char)p[3]])
            p += 4;
        while (p < end && !str_stop[(unsigned char)*p])
            p++;
        if (p >= end)
            return NULL;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;              /* cJSON takes raw control bytes; strict JSON does not */
        *esc = 1;
        if (end - p < 2)
            return NULL;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            continue;
        case 'u': {
            long cp = hex4(p + 2, end);
            /* \u0000 truncates cJSON's string; a lone low surrogate fails it */
            if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
                    return NULL;
                long lo = hex4(p + 8, end);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return NULL;
                p += 12;
            } else {
                p += 6;
            }
            continue;
        }
        default:
            return NULL;
        }
    }
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Strict JSON number at p; NULL if not one, or longer than cJSON reads. */
static const char *scan_number(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit((unsigned char)*p))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit((unsigned char)*p))
            p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit((unsigned char)*p))
            return NULL;
        while (p < end && is_digit((unsigned char)*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit((unsigned char)*p))
            return NULL;
        while (p < end && is_digit((unsigned char)*p))
            p++;
    }
    return p - s > SCAN_MAX_NUMBER ? NULL : p;
}

static const char *scan_value(const char *p, const char *end, int depth);

static const char *scan_literal(const char *p, const char *end, const char *lit, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

/* Key at k (raw, between quotes, kraw bytes) equals name after unescaping?
 * Keys have passed scan_string, so their escapes are well formed. */
struct key {
    const char *s;
    size_t n;
};
#define KEY(lit) {lit, sizeof lit - 1}

static int key_is(const char *k, size_t kraw, int esc, const struct key *key)
{
    const char *name = key->s;
    size_t nlen = key->n;
    if (!esc)
        return kraw == nlen && memcmp(k, name, nlen) == 0;
    if (kraw > 6 * nlen)              /* an escape is at most 6 bytes for one */
        return 0;
    char tmp[6 * 32];
    if (kraw > sizeof tmp)
        return 0;
    size_t n = drift_json_unescape(k, kraw, tmp);
    return n == nlen && memcmp(tmp, name, nlen) == 0;
}

/* Scans the value at p of the first member named keys[key] in place of
 * scan_value, to look inside it on the way (one pass over the text). */
typedef const char *(*member_fn)(void *ctx, int key, const char *p, const char *end, int depth);

/* Object at p ('{'): validate it, and fill out[i] with the value of the
 * first member named keys[i] (scanned by hook when there is one). Returns
 * the byte after '}' or NULL. */
static const char *scan_object_with(const char *p, const char *end, int depth,
                                    const struct key *keys, int nkeys, struct span *out,
                                    member_fn hook, void *ctx)
{
    if (depth >= SCAN_MAX_DEPTH)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (p >= end || *p != '"')
            return NULL;
        const char *k = p + 1;
        int esc = 0;
        const char *ke = scan_string(p, end, &esc);
        if (!ke)
            return NULL;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return NULL;
        p = skip_ws(p + 1, end);
        const char *v = p;
        int hit = -1;
        for (int i = 0; i < nkeys; i++)
            if (!out[i].p && key_is(k, (size_t)(ke - 1 - k), esc, &keys[i])) {
                hit = i;
                break;
            }
        p = hit >= 0 && hook ? hook(ctx, hit, p, end, depth + 1) : scan_value(p, end, depth + 1);
        if (!p)
            return NULL;
        if (hit >= 0) {
            out[hit].p = v;
            out[hit].e = p;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        return NULL;
    }
}

static const char *scan_object(const char *p, const char *end, int depth,
                               const struct key *keys, int nkeys, struct span *out)
{
    return scan_object_with(p, end, depth, keys, nkeys, out, NULL, NULL);
}

static const char *scan_array(const char *p, const char *end, int depth)
{
    if (depth >= SCAN_MAX_DEPTH)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        p = scan_value(p, end, depth + 1);
        if (!p)
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        return NULL;
    }
}

/* Any value at p (no leading whitespace). */
static const char *scan_value(const char *p, const char *end, int depth)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"': {
        int esc;
        return scan_string(p, end, &esc);
    }
    case '{':
        return scan_object(p, end, depth, NULL, 0, NULL);
    case '[':
        return scan_array(p, end, depth);
    case 't':
        return scan_literal(p, end, "true", 4);
    case 'f':
        return scan_literal(p, end, "false", 5);
    case 'n':
        return scan_literal(p, end, "null", 4);
    default:
        return scan_number(p, end);
    }
}

/* ---- lookups in spans the first pass validated ----------------------------------- */

/* cJSON_GetObjectItemCaseSensitive for several keys at once: a span that is
 * not an object finds nothing. */
static void get(struct span v, const struct key *keys, int nkeys, struct span *out)
{
    memset(out, 0, sizeof *out * (size_t)nkeys);
    if (v.p && *v.p == '{' && !scan_object(v.p, v.e, 0, keys, nkeys, out))
        memset(out, 0, sizeof *out * (size_t)nkeys);   /* cannot happen: validated */
}

/* cJSON_ArrayForEach: call fn for each value of an array, or of an object. */
static void each(struct span v, void (*fn)(struct span, void *), void *ctx)
{
    if (!v.p || (*v.p != '[' && *v.p != '{'))
        return;
    int obj = *v.p == '{';
    const char *p = skip_ws(v.p + 1, v.e), *end = v.e;
    while (p < end && *p != ']' && *p != '}') {
        if (obj) {                    /* skip "key" : */
            int esc;
            p = scan_string(p, end, &esc);
            if (!p)
                return;
            p = skip_ws(p, end);
            p = skip_ws(p + 1, end);
        }
        struct span e = {p, scan_value(p, end, 0)};
        if (!e.e)
            return;
        fn(e, ctx);
        p = skip_ws(e.e, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
}

static int is_string(struct span v)
{
    return v.p && *v.p == '"';
}

static int is_number(struct span v)
{
    return v.p && (*v.p == '-' || is_digit((unsigned char)*v.p));
}

/* The value cJSON would give the number (strtod over the same characters). */
static double number_of(struct span v)
{
    char tmp[SCAN_MAX_NUMBER + 1];
    size_t n = (size_t)(v.e - v.p);
    /* plain integers (token counts, indexes) are exact as doubles up to 15
     * digits: no strtod for them */
    const char *p = v.p + (n && *v.p == '-');
    if (n && (size_t)(v.e - p) <= 15 && p < v.e) {
        int64_t x = 0;
        const char *q = p;
        while (q < v.e && *q >= '0' && *q <= '9')
            x = x * 10 + (*q++ - '0');
        if (q == v.e)
            return (double)(p == v.p ? x : -x);
    }
    if (n > SCAN_MAX_NUMBER)
        n = SCAN_MAX_NUMBER;
    memcpy(tmp, v.p, n);
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

struct walk {
    int is_chunk;
    drift_answer_output_fn output;
    void *ud;
};

static void emit(struct walk *w, struct span s)
{
    if (is_string(s) && w->output)
        w->output(w->ud, s.p + 1, (size_t)(s.e - s.p - 2));
}

static void on_tool_call(struct span tc, void *ctx)
{
    static const struct key kf[] = {KEY("function")};
    static const struct key kna[] = {KEY("name"), KEY("arguments")};
    struct span f, na[2];
    get(tc, kf, 1, &f);
    get(f, kna, 2, na);
    emit(ctx, na[0]);
    emit(ctx, na[1]);
}

static const struct key kmsg[] = {KEY("index"), KEY("message"), KEY("text")};
static const struct key kdelta[] = {KEY("index"), KEY("delta"), KEY("text")};
static const struct key kct[] = {KEY("content"), KEY("tool_calls")};

/* What one choice holds: c = index, message (delta), text; m = the
 * message's content and tool_calls. */
struct choice {
    struct span c[3], m[2];
};

static void emit_choice(struct walk *w, const struct choice *x)
{
    if (is_number(x->c[0]) && number_of(x->c[0]) != 0)
        return;                       /* choice 0 is the record */
    if (x->c[1].p) {
        emit(w, x->m[0]);
        each(x->m[1], on_tool_call, w);
    }
    emit(w, x->c[2]);
}

static void on_choice(struct span ch, void *ctx)
{
    struct walk *w = ctx;
    struct choice x;
    get(ch, w->is_chunk ? kdelta : kmsg, 3, x.c);
    get(x.c[1], kct, 2, x.m);
    emit_choice(w, &x);
}

/* The common shape, read in the one validating pass: "choices" an array
 * of at most MAX_CHOICES objects. Anything else is walked afterwards with
 * get() and each(), which scan the (validated) spans again. */
#define MAX_CHOICES 8

struct pass {
    int is_chunk;
    int n, again;                     /* choices kept; again: walk "choices" afterwards */
    struct choice ch[MAX_CHOICES];
};

static const char *choice_member(void *ctx, int key, const char *p, const char *end, int depth)
{
    struct choice *x = ctx;
    if (key == 1 && p < end && *p == '{')
        return scan_object(p, end, depth, kct, 2, x->m);
    return scan_value(p, end, depth);
}

static const char *top_member(void *ctx, int key, const char *p, const char *end, int depth)
{
    struct pass *ps = ctx;
    if (key != 3 || p >= end || (*p != '[' && *p != '{'))
        return scan_value(p, end, depth);
    if (*p == '{' || depth >= SCAN_MAX_DEPTH) {
        ps->again = 1;
        return scan_value(p, end, depth);
    }
    /* an array: scan_array, keeping what its objects hold */
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        if (p < end && *p == '{' && ps->n < MAX_CHOICES) {
            struct choice *x = &ps->ch[ps->n++];
            memset(x, 0, sizeof *x);
            p = scan_object_with(p, end, depth + 1, ps->is_chunk ? kdelta : kmsg, 3, x->c,
                                 choice_member, x);
        } else {
            if (p < end && *p == '{')
                ps->again = 1;
            p = scan_value(p, end, depth + 1);
        }
        if (!p)
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        return NULL;
    }
}

int drift_answer_scan(const char *json, size_t len, int is_chunk, struct drift_answer *a,
                      drift_answer_output_fn output, void *ud)
{
    memset(a, 0, sizeof *a);
    if (!json)
        return DRIFT_ANSWER_UNSURE;
    const char *end = json + len;
    const char *p = skip_ws(json, end);
    if (p >= end || *p != '{')
        return DRIFT_ANSWER_UNSURE;
    static const struct key ktop[] = {KEY("model"), KEY("system_fingerprint"), KEY("usage"),
                                      KEY("choices"), KEY("data")};
    struct span top[5] = {{0}};
    struct pass ps;
    ps.is_chunk = is_chunk;
    ps.n = ps.again = 0;
    struct span obj = {p, scan_object_with(p, end, 0, ktop, 5, top, top_member, &ps)};
    if (!obj.e || skip_ws(obj.e, end) != end)
        return DRIFT_ANSWER_UNSURE;
    /* embeddings: the caller records the vectors as cJSON prints them */
    if (!is_chunk && top[4].p && *top[4].p == '[' && !top[3].p)
        return DRIFT_ANSWER_UNSURE;

    if (is_string(top[0])) {
        a->model = top[0].p + 1;
        a->model_len = (size_t)(top[0].e - top[0].p - 2);
    }
    if (is_string(top[1])) {
        a->fingerprint = top[1].p + 1;
        a->fingerprint_len = (size_t)(top[1].e - top[1].p - 2);
    }
    static const struct key kusage[] = {KEY("prompt_tokens"), KEY("completion_tokens")};
    struct span u[2];
    get(top[2], kusage, 2, u);
    if (is_number(u[0])) {
        a->has_prompt_tokens = 1;
        a->prompt_tokens = number_of(u[0]);
    }
    if (is_number(u[1])) {
        a->has_completion_tokens = 1;
        a->completion_tokens = number_of(u[1]);
    }
    struct walk w = {is_chunk, output, ud};
    if (ps.again)
        each(top[3], on_choice, &w);
    else
        for (int i = 0; i < ps.n; i++)
            emit_choice(&w, &ps.ch[i]);
    return DRIFT_ANSWER_OK;
}

/* UTF-8 of one code point (< 0x110000) into o; returns the bytes written. */
static size_t put_utf8(unsigned long cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t drift_json_unescape(const char *raw, size_t len, char *out)
{
    const char *p = raw, *end = raw + len;
    size_t n = 0;
    while (p < end) {
        /* runs without escapes are copied whole */
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        if (run) {
            memmove(out + n, p, run);
            n += run;
            p += run;
        }
        if (!bs)
            break;
        if (end - p < 2) {            /* never after scan_string; copy it as is */
            out[n++] = *p++;
            continue;
        }
        char c = p[1];
        switch (c) {
        case 'b': out[n++] = '\b'; p += 2; continue;
        case 'f': out[n++] = '\f'; p += 2; continue;
        case 'n': out[n++] = '\n'; p += 2; continue;
        case 'r': out[n++] = '\r'; p += 2; continue;
        case 't': out[n++] = '\t'; p += 2; continue;
        case 'u': {
            long cp = hex4(p + 2, end);
            if (cp < 0)
                break;
            size_t used = 6;
            unsigned long code = (unsigned long)cp;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 12 && p[6] == '\\' && p[7] == 'u') {
                long lo = hex4(p + 8, end);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    code = 0x10000 + ((((unsigned long)cp & 0x3FF) << 10) |
                                      ((unsigned long)lo & 0x3FF));
                    used = 12;
                }
            }
            /* read before written: the output never overtakes the input */
            char u8[4];
            size_t k = put_utf8(code, u8);
            memcpy(out + n, u8, k);
            n += k;
            p += used;
            continue;
        }
        default:                      /* " \ / */
            out[n++] = c;
            p += 2;
            continue;
        }
        out[n++] = *p++;              /* malformed \u: copy the backslash */
    }
    return n;
}
