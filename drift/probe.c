/*
 * probe.c - probe suites: loading, built-in generation, answer extraction and
 * grading.
 *
 * Why generated probes: a probe is only as good as its answer key, and a
 * hand-typed key is wrong sometimes. The built-in suites compute every
 * answer (a sieve for primes, integer arithmetic, string operations) from a
 * fixed-seed generator, so the same suite comes out byte-identical on every
 * machine and every run, and the probe ids stay stable across restarts.
 *
 * Why balanced: an early version of Chen, Zaharia & Zou's study used only
 * primes, so its "accuracy" measured how often the model said Yes. The prime
 * probes here are exactly half prime; composites mix even numbers, odd
 * numbers with a small factor and odd numbers whose smallest factor is >= 11
 * (the hard ones).
 *
 * Grading extracts one answer from free text (the last [Yes]/[No], the last
 * integer, the last [bracketed] word, the first JSON object) so that a model
 * that thinks aloud is graded on its conclusion. No parsable answer is a
 * format failure, graded wrong; drift_output_is_refusal tells refusals apart
 * for reports.
 */
#include "drift/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PROBES 100000
#define MAX_LINE (1024 * 1024)
#define MAX_FILE (256 * 1024 * 1024)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void probe_clear(struct drift_probe *p)
{
    free(p->id);
    cJSON_Delete(p->messages);
    cJSON_Delete(p->params);
    free(p->expect);
    if (p->has_regex)
        regfree(&p->regex);
    for (size_t i = 0; i < p->n_tags; i++)
        free(p->tags[i]);
    free(p->tags);
    memset(p, 0, sizeof *p);
}

void drift_probe_suite_free(struct drift_probe_suite *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        probe_clear(&s->probes[i]);
    free(s->probes);
    free(s->name);
    free(s);
}

const struct drift_probe *drift_probe_suite_find(const struct drift_probe_suite *s,
                                                 const char *id)
{
    for (size_t i = 0; s && id && i < s->n; i++)
        if (strcmp(s->probes[i].id, id) == 0)
            return &s->probes[i];
    return NULL;
}

static struct drift_probe *suite_add(struct drift_probe_suite *s, size_t *cap)
{
    if (s->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct drift_probe *np = realloc(s->probes, nc * sizeof *np);
        if (!np)
            return NULL;
        s->probes = np;
        *cap = nc;
    }
    struct drift_probe *p = &s->probes[s->n++];
    memset(p, 0, sizeof *p);
    return p;
}

/* ---- answer extraction ------------------------------------------------------ */

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static void trim_copy(const char *s, size_t n, char *buf, size_t buflen)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

static int extract_yesno(const char *out, char *buf, size_t buflen)
{
    const char *best = NULL;
    int best_yes = 0;
    for (const char *p = out; *p; p++) {
        if (*p != '[')
            continue;
        if (strncasecmp(p, "[yes]", 5) == 0) {
            best = p;
            best_yes = 1;
        } else if (strncasecmp(p, "[no]", 4) == 0) {
            best = p;
            best_yes = 0;
        }
    }
    if (!best) {   /* no brackets: the last standalone yes/no word */
        for (const char *p = out; *p; p++) {
            if (p != out && isalpha((unsigned char)p[-1]))
                continue;
            if (strncasecmp(p, "yes", 3) == 0 && !isalpha((unsigned char)p[3])) {
                best = p;
                best_yes = 1;
            } else if (strncasecmp(p, "no", 2) == 0 && !isalpha((unsigned char)p[2])) {
                best = p;
                best_yes = 0;
            }
        }
    }
    if (!best)
        return -1;
    snprintf(buf, buflen, "%s", best_yes ? "yes" : "no");
    return 0;
}

/* Numbers: [-]digits(,ddd)*(.digits)? ; "1,234" is 1234, "12.0" is 12 and
 * "12.5" stays "12.5" (not an integer, so it matches no integer answer). */
static int extract_int(const char *out, char *buf, size_t buflen)
{
    char last[80] = "";
    const char *p = out;
    while (*p) {
        if (!isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        int neg = p > out && p[-1] == '-' && (p - 1 == out || !isalnum((unsigned char)p[-2]));
        char num[80];
        size_t n = 0;
        if (neg)
            num[n++] = '-';
        while (*p) {
            if (isdigit((unsigned char)*p)) {
                if (n < sizeof num - 2)
                    num[n++] = *p;
                p++;
            } else if (*p == ',' && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
                       isdigit((unsigned char)p[3]) && !isdigit((unsigned char)p[4])) {
                p++;
            } else {
                break;
            }
        }
        if (*p == '.' && isdigit((unsigned char)p[1])) {
            const char *f = p + 1;
            int nonzero = 0;
            while (isdigit((unsigned char)*f)) {
                nonzero |= *f != '0';
                f++;
            }
            if (nonzero) {
                size_t fl = (size_t)(f - p);
                if (n + fl < sizeof num - 1) {
                    memcpy(num + n, p, fl);
                    n += fl;
                }
            }
            p = f;
        }
        num[n] = '\0';
        /* strip leading zeros, keep "0" and the sign */
        char *digits = num + (num[0] == '-');
        while (digits[0] == '0' && isdigit((unsigned char)digits[1]))
            memmove(digits, digits + 1, strlen(digits));
        if (strcmp(num, "-0") == 0)
            strcpy(num, "0");
        snprintf(last, sizeof last, "%s", num);
    }
    if (!last[0])
        return -1;
    snprintf(buf, buflen, "%s", last);
    return 0;
}

static int extract_bracket(const char *out, char *buf, size_t buflen)
{
    const char *open = NULL, *close = NULL;
    for (const char *p = out; *p; p++) {
        if (*p != '[')
            continue;
        const char *q = strchr(p + 1, ']');
        if (!q)
            break;
        const char *inner_open = memchr(p + 1, '[', (size_t)(q - p - 1));
        if (inner_open)
            continue;
        if (q - p - 1 <= 200) {
            open = p;
            close = q;
        }
    }
    if (!open)
        return -1;
    trim_copy(open + 1, (size_t)(close - open - 1), buf, buflen);
    /* tolerate [ "olleh" ] and [`olleh`] */
    size_t n = strlen(buf);
    if (n >= 2 && (buf[0] == '"' || buf[0] == '\'' || buf[0] == '`') && buf[n - 1] == buf[0]) {
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = '\0';
    }
    if (!buf[0])
        return -1;
    lower(buf);
    return 0;
}

static int extract_json(const char *out, char *buf, size_t buflen)
{
    int tries = 0;
    for (const char *p = strchr(out, '{'); p && tries < 32; p = strchr(p + 1, '{'), tries++) {
        cJSON *j = cJSON_ParseWithOpts(p, NULL, 0);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            continue;
        }
        char *c = drift_canonical_json(j);
        cJSON_Delete(j);
        if (!c)
            return -1;
        int ok = strlen(c) < buflen;
        if (ok)
            strcpy(buf, c);
        free(c);
        return ok ? 0 : -1;
    }
    return -1;
}

int drift_probe_extract(const struct drift_probe *p, const char *output, char *buf,
                        size_t buflen)
{
    if (!p || !output || !buf || buflen < 2)
        return -1;
    buf[0] = '\0';
    switch (p->kind) {
    case DRIFT_EXPECT_YESNO:
        return extract_yesno(output, buf, buflen);
    case DRIFT_EXPECT_INT:
        return extract_int(output, buf, buflen);
    case DRIFT_EXPECT_BRACKET:
        return extract_bracket(output, buf, buflen);
    case DRIFT_EXPECT_JSON:
        return extract_json(output, buf, buflen);
    case DRIFT_EXPECT_EXACT:
    case DRIFT_EXPECT_ICASE:
    case DRIFT_EXPECT_REGEX:
        trim_copy(output, strlen(output), buf, buflen);
        return buf[0] ? 0 : -1;
    }
    return -1;
}

int drift_probe_grade(const struct drift_probe *p, const char *output)
{
    if (!p || !output || !p->expect)
        return 0;
    if (p->kind == DRIFT_EXPECT_REGEX)
        return p->has_regex && regexec(&p->regex, output, 0, NULL, 0) == 0;
    if (p->kind == DRIFT_EXPECT_EXACT || p->kind == DRIFT_EXPECT_ICASE) {
        size_t n = strlen(output);
        const char *s = output;
        while (n && isspace((unsigned char)*s)) {
            s++;
            n--;
        }
        while (n && isspace((unsigned char)s[n - 1]))
            n--;
        if (n != strlen(p->expect))
            return 0;
        return p->kind == DRIFT_EXPECT_EXACT ? memcmp(s, p->expect, n) == 0
                                             : strncasecmp(s, p->expect, n) == 0;
    }
    char *buf = malloc(65536);
    if (!buf)
        return 0;
    int ok = drift_probe_extract(p, output, buf, 65536) == 0 && strcmp(buf, p->expect) == 0;
    free(buf);
    return ok;
}

int drift_output_is_refusal(const char *output)
{
    static const char *const phrases[] = {
        "i can't", "i cannot", "i can not", "i'm sorry", "i am sorry", "i'm unable",
        "i am unable", "as an ai", "i won't", "i will not", "i'm not able", "i am not able",
        "i apologize", "i can\xe2\x80\x99t", "i\xe2\x80\x99m sorry", "i\xe2\x80\x99m unable",
    };
    if (!output)
        return 0;
    /* only the opening of the answer: a refusal comes first */
    char head[400];
    snprintf(head, sizeof head, "%s", output);
    lower(head);
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (strstr(head, phrases[i]))
            return 1;
    return 0;
}

cJSON *drift_probe_request(const struct drift_probe *p, const char *model)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "model", model ? model : "");
    cJSON_AddItemToObject(o, "messages", cJSON_Duplicate(p->messages, 1));
    for (const cJSON *e = p->params ? p->params->child : NULL; e; e = e->next) {
        if (!e->string || strcmp(e->string, "model") == 0 || strcmp(e->string, "messages") == 0)
            continue;
        cJSON_AddItemToObject(o, e->string, cJSON_Duplicate(e, 1));
    }
    return o;
}

/* ---- expect parsing (shared by the loader and the generator) ------------------- */

static const char *const kind_names[] = {
    [DRIFT_EXPECT_EXACT] = "exact", [DRIFT_EXPECT_ICASE] = "icase",
    [DRIFT_EXPECT_REGEX] = "regex", [DRIFT_EXPECT_YESNO] = "yesno",
    [DRIFT_EXPECT_INT] = "int",     [DRIFT_EXPECT_BRACKET] = "bracket",
    [DRIFT_EXPECT_JSON] = "json",
};

/* Normalise and store the expected value. Returns 0 or -1 with msg. */
static int set_expect(struct drift_probe *p, enum drift_expect_kind k, const cJSON *v, char *msg,
                      size_t msglen)
{
    p->kind = k;
    char tmp[256];
    switch (k) {
    case DRIFT_EXPECT_JSON:
        if (cJSON_IsString(v)) {
            cJSON *j = cJSON_Parse(v->valuestring);
            if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                set_err(msg, msglen, "expect.json: the string is not a JSON object");
                return -1;
            }
            p->expect = drift_canonical_json(j);
            cJSON_Delete(j);
        } else if (cJSON_IsObject(v)) {
            p->expect = drift_canonical_json(v);
        } else {
            set_err(msg, msglen, "expect.json: must be an object");
            return -1;
        }
        break;
    case DRIFT_EXPECT_INT:
        if (cJSON_IsNumber(v)) {
            /* range first: converting a double beyond long long is undefined */
            double d = v->valuedouble;
            if (!(d > -9.2e18 && d < 9.2e18) || d != (double)(long long)d) {
                set_err(msg, msglen, "expect.int: %g is not an integer within +-9.2e18", d);
                return -1;
            }
            snprintf(tmp, sizeof tmp, "%lld", (long long)v->valuedouble);
        } else if (cJSON_IsString(v) && extract_int(v->valuestring, tmp, sizeof tmp) == 0 &&
                   !strchr(tmp, '.')) {
            /* "1,234" is accepted */
        } else {
            set_err(msg, msglen, "expect.int: must be an integer");
            return -1;
        }
        p->expect = strdup(tmp);
        break;
    case DRIFT_EXPECT_YESNO:
        if (!cJSON_IsString(v) || extract_yesno(v->valuestring, tmp, sizeof tmp) != 0) {
            set_err(msg, msglen, "expect.yesno: must be \"yes\" or \"no\"");
            return -1;
        }
        p->expect = strdup(tmp);
        break;
    case DRIFT_EXPECT_BRACKET:
        if (!cJSON_IsString(v) || !*v->valuestring) {
            set_err(msg, msglen, "expect.bracket: must be a non-empty string");
            return -1;
        }
        trim_copy(v->valuestring, strlen(v->valuestring), tmp, sizeof tmp);
        lower(tmp);
        p->expect = strdup(tmp);
        break;
    case DRIFT_EXPECT_REGEX: {
        if (!cJSON_IsString(v)) {
            set_err(msg, msglen, "expect.regex: must be a string");
            return -1;
        }
        int rc = regcomp(&p->regex, v->valuestring, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char re[200];
            regerror(rc, &p->regex, re, sizeof re);
            set_err(msg, msglen, "expect.regex: %s", re);
            return -1;
        }
        p->has_regex = 1;
        p->expect = strdup(v->valuestring);
        break;
    }
    case DRIFT_EXPECT_EXACT:
    case DRIFT_EXPECT_ICASE:
        if (!cJSON_IsString(v)) {
            set_err(msg, msglen, "expect.%s: must be a string", kind_names[k]);
            return -1;
        }
        p->expect = strdup(v->valuestring);
        break;
    }
    if (!p->expect) {
        set_err(msg, msglen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- JSONL loader --------------------------------------------------------------- */

/* A key that appears twice in one object anywhere inside v, or NULL. The
 * probe's messages and params are sent as they are, and a proxy (llmpin
 * included) refuses a body with a duplicate key, so the loader does. */
static const char *duplicate_key(const cJSON *v)
{
    for (const cJSON *e = v ? v->child : NULL; e; e = e->next) {
        if (cJSON_IsObject(v) && e->string)
            for (const cJSON *f = e->next; f; f = f->next)
                if (f->string && strcmp(e->string, f->string) == 0)
                    return e->string;
        const char *d = duplicate_key(e);
        if (d)
            return d;
    }
    return NULL;
}

static int parse_probe(const cJSON *j, struct drift_probe *p, char *msg, size_t msglen)
{
    if (!cJSON_IsObject(j)) {
        set_err(msg, msglen, "a probe must be a JSON object");
        return -1;
    }
    const char *dup = duplicate_key(j);
    if (dup) {
        set_err(msg, msglen, "duplicate key \"%.64s\"", dup);
        return -1;
    }
    for (const cJSON *e = j->child; e; e = e->next) {
        const char *k = e->string ? e->string : "";
        if (strcmp(k, "id") && strcmp(k, "messages") && strcmp(k, "params") &&
            strcmp(k, "expect") && strcmp(k, "tags")) {
            set_err(msg, msglen, "unknown field \"%s\" (expected id, messages, params, "
                                 "expect, tags)", k);
            return -1;
        }
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!cJSON_IsString(id) || !*id->valuestring) {
        set_err(msg, msglen, "id: missing or not a non-empty string");
        return -1;
    }
    if (strlen(id->valuestring) > 200) {
        set_err(msg, msglen, "id: longer than 200 bytes");
        return -1;
    }
    if (!(p->id = strdup(id->valuestring)))
        goto oom;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0) {
        set_err(msg, msglen, "messages: missing or not a non-empty array");
        return -1;
    }
    int i = 0;
    for (const cJSON *e = m->child; e; e = e->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsObject(e) || !cJSON_IsString(role)) {
            set_err(msg, msglen, "messages[%d].role: missing or not a string", i);
            return -1;
        }
        if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
            set_err(msg, msglen, "messages[%d].content: missing or not a string", i);
            return -1;
        }
    }
    if (!(p->messages = cJSON_Duplicate(m, 1)))
        goto oom;
    const cJSON *prm = cJSON_GetObjectItemCaseSensitive(j, "params");
    if (prm) {
        if (!cJSON_IsObject(prm)) {
            set_err(msg, msglen, "params: must be an object");
            return -1;
        }
        if (!(p->params = cJSON_Duplicate(prm, 1)))
            goto oom;
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expect");
    if (!cJSON_IsObject(ex) || !ex->child) {
        set_err(msg, msglen, "expect: missing or not an object with one of exact, icase, "
                             "regex, yesno, int, bracket, json");
        return -1;
    }
    if (ex->child->next) {
        set_err(msg, msglen, "expect: holds more than one kind; use exactly one");
        return -1;
    }
    int kind = -1;
    for (size_t k = 0; k < sizeof kind_names / sizeof kind_names[0]; k++)
        if (strcmp(ex->child->string, kind_names[k]) == 0)
            kind = (int)k;
    if (kind < 0) {
        set_err(msg, msglen, "expect: unknown kind \"%s\" (expected exact, icase, regex, "
                             "yesno, int, bracket, json)", ex->child->string);
        return -1;
    }
    if (set_expect(p, (enum drift_expect_kind)kind, ex->child, msg, msglen))
        return -1;
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
    if (tags) {
        if (!cJSON_IsArray(tags)) {
            set_err(msg, msglen, "tags: must be an array of strings");
            return -1;
        }
        size_t n = (size_t)cJSON_GetArraySize(tags);
        p->tags = calloc(n ? n : 1, sizeof *p->tags);
        if (!p->tags)
            goto oom;
        i = 0;
        for (const cJSON *e = tags->child; e; e = e->next, i++) {
            if (!cJSON_IsString(e)) {
                set_err(msg, msglen, "tags[%d]: not a string", i);
                return -1;
            }
            if (!(p->tags[p->n_tags] = strdup(e->valuestring)))
                goto oom;
            p->n_tags++;
        }
    }
    return 0;
oom:
    set_err(msg, msglen, "out of memory");
    return -1;
}

struct drift_probe_suite *drift_probe_suite_parse(const char *text, size_t len,
                                                  const char *name, char *err,
                                                  size_t errlen)
{
    struct drift_probe_suite *s = calloc(1, sizeof *s);
    size_t cap = 0;
    if (!s || !(s->name = strdup(name ? name : "<memory>"))) {
        set_err(err, errlen, "%s: out of memory", name ? name : "<memory>");
        drift_probe_suite_free(s);
        return NULL;
    }
    const char *p = text, *end = text + len;
    int line = 0;
    char msg[512];
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *l = p;
        p = nl ? nl + 1 : end;
        if (n > MAX_LINE) {
            set_err(err, errlen, "%s:%d: line longer than %d bytes", s->name, line, MAX_LINE);
            goto fail;
        }
        size_t k = 0;
        while (k < n && isspace((unsigned char)l[k]))
            k++;
        if (k == n || l[k] == '#')
            continue;
        if (memchr(l, '\0', n)) {
            set_err(err, errlen, "%s:%d: NUL byte in line", s->name, line);
            goto fail;
        }
        if (s->n >= MAX_PROBES) {
            set_err(err, errlen, "%s:%d: more than %d probes", s->name, line, MAX_PROBES);
            goto fail;
        }
        const char *jend = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(l, n, &jend, 0);
        if (!j) {
            const char *at = cJSON_GetErrorPtr();
            long col = at && at >= l && at <= l + n ? (long)(at - l) + 1 : 1;
            set_err(err, errlen, "%s:%d:%ld: invalid JSON", s->name, line, col);
            goto fail;
        }
        if (jend) {
            const char *q = jend;
            while (q < l + n && isspace((unsigned char)*q))
                q++;
            if (q < l + n) {
                cJSON_Delete(j);
                set_err(err, errlen, "%s:%d:%ld: text after the JSON object (one probe per line)",
                        s->name, line, (long)(q - l) + 1);
                goto fail;
            }
        }
        struct drift_probe *pr = suite_add(s, &cap);
        if (!pr) {
            cJSON_Delete(j);
            set_err(err, errlen, "%s:%d: out of memory", s->name, line);
            goto fail;
        }
        int rc = parse_probe(j, pr, msg, sizeof msg);
        cJSON_Delete(j);
        if (rc) {
            set_err(err, errlen, "%s:%d: %s", s->name, line, msg);
            goto fail;
        }
        for (size_t q = 0; q + 1 < s->n; q++)
            if (strcmp(s->probes[q].id, pr->id) == 0) {
                set_err(err, errlen, "%s:%d: id: duplicate id \"%s\"", s->name, line, pr->id);
                goto fail;
            }
    }
    if (s->n == 0) {
        set_err(err, errlen, "%s: no probes", s->name);
        goto fail;
    }
    return s;
fail:
    drift_probe_suite_free(s);
    return NULL;
}

/* ---- built-in suites ------------------------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)   /* splitmix64 */
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int rng_range(struct rng *r, int lo, int hi)   /* inclusive */
{
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

#define PRIME_LO 1000
#define PRIME_HI 20000

static int smallest_factor(int n)
{
    if (n % 2 == 0)
        return 2;
    for (int f = 3; f * f <= n; f += 2)
        if (n % f == 0)
            return f;
    return n;
}

static int add_simple(struct drift_probe_suite *s, size_t *cap, const char *id,
                      const char *prompt, enum drift_expect_kind k, cJSON *expect_val)
{
    struct drift_probe *p = suite_add(s, cap);
    char msg[256];
    if (!p) {
        cJSON_Delete(expect_val);
        return -1;
    }
    p->id = strdup(id);
    p->messages = cJSON_CreateArray();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", prompt);
    cJSON_AddItemToArray(p->messages, m);
    p->params = cJSON_CreateObject();
    cJSON_AddNumberToObject(p->params, "temperature", 0);
    cJSON_AddNumberToObject(p->params, "max_tokens", 1024);
    p->tags = calloc(1, sizeof *p->tags);
    if (p->tags && (p->tags[0] = strdup(kind_names[k])))
        p->n_tags = 1;
    int rc = set_expect(p, k, expect_val, msg, sizeof msg);
    cJSON_Delete(expect_val);
    return rc || !p->id || !p->tags ? -1 : 0;
}

/* n_each primes and n_each composites, drawn without repetition. */
static int gen_primes(struct drift_probe_suite *s, size_t *cap, struct rng *r, int n_each)
{
    char *sieve = calloc(PRIME_HI + 1, 1);   /* 1 = composite */
    char *used = calloc(PRIME_HI + 1, 1);
    if (!sieve || !used) {
        free(sieve);
        free(used);
        return -1;
    }
    for (int i = 2; (long)i * i <= PRIME_HI; i++)
        if (!sieve[i])
            for (int j = i * i; j <= PRIME_HI; j += i)
                sieve[j] = 1;
    int want_even = n_each / 5, want_small = n_each * 3 / 10;
    int want_hard = n_each - want_even - want_small;
    int got_p = 0, got_even = 0, got_small = 0, got_hard = 0, rc = 0;
    char id[64], prompt[256];
    for (long guard = 0; guard < 10000000 &&
         (got_p < n_each || got_even < want_even || got_small < want_small ||
          got_hard < want_hard); guard++) {
        int n = rng_range(r, PRIME_LO, PRIME_HI);
        if (used[n])
            continue;
        int f = smallest_factor(n);
        int is_prime = !sieve[n];
        if (is_prime != (f == n)) {  /* the sieve and trial division must agree */
            rc = -1;
            break;
        }
        int ok;
        if (is_prime)
            ok = got_p < n_each && ++got_p;
        else if (f == 2)
            ok = got_even < want_even && ++got_even;
        else if (f <= 7)
            ok = got_small < want_small && ++got_small;
        else
            ok = f >= 11 && got_hard < want_hard && ++got_hard;
        if (!ok)
            continue;
        used[n] = 1;
        snprintf(id, sizeof id, "prime-%05d", n);
        snprintf(prompt, sizeof prompt,
                 "Is %d a prime number? Think step by step and then answer \"[Yes]\" or \"[No]\".",
                 n);
        if (add_simple(s, cap, id, prompt, DRIFT_EXPECT_YESNO,
                       cJSON_CreateString(is_prime ? "yes" : "no"))) {
            rc = -1;
            break;
        }
    }
    if (got_p < n_each || got_even + got_small + got_hard < n_each)
        rc = -1;
    free(sieve);
    free(used);
    return rc;
}

static const char *const words[] = {
    "strawberry", "banana", "mississippi", "committee", "bookkeeper", "parallel",
    "necessary", "balloon", "address", "success", "coffee", "pepper", "assessment",
    "possession", "occurrence", "embarrass", "millennium", "accommodate", "tomorrow",
    "giraffe", "dinosaur", "umbrella", "keyboard", "elephant", "pineapple", "chocolate",
    "blueberry", "whisper", "triangle", "mountain", "lantern", "harbor", "compass",
    "velvet", "orchestra", "puzzle", "rhythm", "kangaroo", "cinnamon", "horizon",
};
#define N_WORDS (sizeof words / sizeof words[0])

static int gen_default(struct drift_probe_suite *s, size_t *cap, struct rng *r)
{
    char id[96], prompt[512];
    if (gen_primes(s, cap, r, 50))
        return -1;
    for (int i = 0; i < 30; i++) {
        int a = rng_range(r, 12, 999), b = rng_range(r, 12, 999);
        snprintf(id, sizeof id, "mul-%d-%d", a, b);
        snprintf(prompt, sizeof prompt,
                 "What is %d * %d? Think step by step, then give the final answer as a plain "
                 "integer on the last line.", a, b);
        if (drift_probe_suite_find(s, id))
            continue;
        if (add_simple(s, cap, id, prompt, DRIFT_EXPECT_INT, cJSON_CreateNumber((double)a * b)))
            return -1;
    }
    for (int i = 0; i < 30; i++) {
        int a = rng_range(r, 1000, 99999), b = rng_range(r, 1000, 99999);
        snprintf(id, sizeof id, "add-%d-%d", a, b);
        snprintf(prompt, sizeof prompt,
                 "What is %d + %d? Think step by step, then give the final answer as a plain "
                 "integer on the last line.", a, b);
        if (drift_probe_suite_find(s, id))
            continue;
        if (add_simple(s, cap, id, prompt, DRIFT_EXPECT_INT, cJSON_CreateNumber((double)a + b)))
            return -1;
    }
    for (size_t i = 0; i < 20; i++) {
        const char *w = words[i * 2 % N_WORDS];
        char rev[64];
        size_t n = strlen(w);
        for (size_t k = 0; k < n; k++)
            rev[k] = w[n - 1 - k];
        rev[n] = '\0';
        snprintf(id, sizeof id, "rev-%s", w);
        snprintf(prompt, sizeof prompt,
                 "Reverse the letters of the word \"%s\". Answer with the reversed word inside "
                 "square brackets, like [olleh] for \"hello\".", w);
        if (add_simple(s, cap, id, prompt, DRIFT_EXPECT_BRACKET, cJSON_CreateString(rev)))
            return -1;
    }
    for (size_t i = 0; i < 20; i++) {
        const char *w = words[(i * 2 + 1) % N_WORDS];
        /* the letter: the word's most repeated one half the time, else a random letter of it */
        size_t n = strlen(w);
        char letter = w[(size_t)rng_range(r, 0, (int)n - 1)];
        if (i % 2 == 0) {
            int best = 0;
            for (size_t k = 0; k < n; k++) {
                int c = 0;
                for (size_t q = 0; q < n; q++)
                    c += w[q] == w[k];
                if (c > best) {
                    best = c;
                    letter = w[k];
                }
            }
        }
        int count = 0;
        for (size_t k = 0; k < n; k++)
            count += w[k] == letter;
        snprintf(id, sizeof id, "count-%c-%s", letter, w);
        snprintf(prompt, sizeof prompt,
                 "How many times does the letter \"%c\" appear in the word \"%s\"? Think step "
                 "by step, then give the count as a plain integer on the last line.", letter, w);
        if (add_simple(s, cap, id, prompt, DRIFT_EXPECT_INT, cJSON_CreateNumber(count)))
            return -1;
    }
    for (int i = 0; i < 20; i++) {
        int num = rng_range(r, 1, 9999);
        const char *w = words[(size_t)rng_range(r, 0, (int)N_WORDS - 1)];
        int ok = rng_range(r, 0, 1);
        snprintf(id, sizeof id, "json-%02d", i);
        snprintf(prompt, sizeof prompt,
                 "Reply with only a JSON object and no other text. It must have exactly three "
                 "keys: \"id\" set to the integer %d, \"name\" set to the string \"%s\", and "
                 "\"ok\" set to the boolean %s.", num, w, ok ? "true" : "false");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", num);
        cJSON_AddStringToObject(e, "name", w);
        cJSON_AddBoolToObject(e, "ok", ok);
        if (add_simple(s, cap, id, prompt, DRIFT_EXPECT_JSON, e))
            return -1;
    }
    return 0;
}

static void shuffle(struct drift_probe_suite *s, struct rng *r)
{
    for (size_t i = s->n; i > 1; i--) {
        size_t j = (size_t)(rng_next(r) % i);
        struct drift_probe t = s->probes[i - 1];
        s->probes[i - 1] = s->probes[j];
        s->probes[j] = t;
    }
}

static struct drift_probe_suite *builtin(const char *name, char *err, size_t errlen)
{
    struct drift_probe_suite *s = calloc(1, sizeof *s);
    size_t cap = 0;
    struct rng r = {0x6c6c6d70696eULL};   /* fixed: the suite is the same everywhere */
    if (!s || !(s->name = strdup(name))) {
        set_err(err, errlen, "%s: out of memory", name);
        drift_probe_suite_free(s);
        return NULL;
    }
    int rc;
    if (strcmp(name, "builtin:default") == 0) {
        rc = gen_default(s, &cap, &r);
    } else if (strcmp(name, "builtin:primes") == 0) {
        rc = gen_primes(s, &cap, &r, 500);
    } else {
        set_err(err, errlen, "%s: unknown built-in suite (expected builtin:default or "
                             "builtin:primes)", name);
        drift_probe_suite_free(s);
        return NULL;
    }
    if (rc) {
        set_err(err, errlen, "%s: generating the suite failed", name);
        drift_probe_suite_free(s);
        return NULL;
    }
    shuffle(s, &r);
    return s;
}

struct drift_probe_suite *drift_probe_suite_load(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        set_err(err, errlen, "probe suite: no path given");
        return NULL;
    }
    if (strncmp(path, "builtin:", 8) == 0)
        return builtin(path, err, errlen);
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "%s: cannot open probe suite: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 131072;
            char *nt = realloc(text, nc);
            if (!nt) {
                free(text);
                fclose(f);
                set_err(err, errlen, "%s: out of memory", path);
                return NULL;
            }
            text = nt;
            cap = nc;
        }
        size_t got = fread(text + len, 1, 65536, f);
        len += got;
        if (len > MAX_FILE) {
            free(text);
            fclose(f);
            set_err(err, errlen, "%s: probe suite larger than %d MiB", path, MAX_FILE >> 20);
            return NULL;
        }
        if (got < 65536)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        set_err(err, errlen, "%s: read error", path);
        return NULL;
    }
    struct drift_probe_suite *s = drift_probe_suite_parse(text ? text : "", len, path, err, errlen);
    free(text);
    return s;
}
