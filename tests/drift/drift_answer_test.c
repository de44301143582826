/*
 * drift_answer_test.c - drift_answer_scan must read answers exactly as the
 * proxy's cJSON code did, or say it is unsure.
 *
 * The reference below is the proxy's inspect_object (proxy/app.c) on a
 * cJSON tree. For hand-written cases and for thousands of mutations of real
 * answer shapes (bytes flipped, cut, inserted, deep nesting, escapes), the
 * test checks: when the scanner answers DRIFT_ANSWER_OK, cJSON parses the
 * same text and the reference extracts byte-identical model, fingerprint,
 * token counts and output; and that the common shapes do take the fast path.
 */
#include "drift/drift.h"
#include "drift_mutate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

#define MAXCAP (1u << 20)

struct got {
    char *model, *fp;
    int pt, ct;
    char *out;
    size_t out_len;
};

static void got_free(struct got *g)
{
    free(g->model);
    free(g->fp);
    free(g->out);
    memset(g, 0, sizeof *g);
}

static void append(struct got *g, const char *s, size_t n)
{
    if (g->out_len + n > MAXCAP)
        return;
    g->out = realloc(g->out, g->out_len + n + 1);
    memcpy(g->out + g->out_len, s, n);
    g->out_len += n;
    g->out[g->out_len] = 0;
}

/* ---- the reference: proxy/app.c's inspect_object before the scanner ---- */

static void ref_str(char **dst, const cJSON *v)
{
    if (cJSON_IsString(v) && !*dst)
        *dst = strdup(v->valuestring);
}

static void ref_out(struct got *g, const char *s)
{
    if (s)
        append(g, s, strlen(s));
}

static void ref_inspect(struct got *g, const cJSON *o, int is_chunk)
{
    ref_str(&g->model, cJSON_GetObjectItemCaseSensitive(o, "model"));
    ref_str(&g->fp, cJSON_GetObjectItemCaseSensitive(o, "system_fingerprint"));
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
    if (cJSON_IsObject(u)) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
        if (cJSON_IsNumber(p))
            g->pt = (int)p->valuedouble;
        if (cJSON_IsNumber(c))
            g->ct = (int)c->valuedouble;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *ch;
    cJSON_ArrayForEach(ch, choices) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(ch, "index");
        if (cJSON_IsNumber(idx) && idx->valuedouble != 0)
            continue;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ch, is_chunk ? "delta" : "message");
        if (m) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(c))
                ref_out(g, c->valuestring);
            const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *tc;
            cJSON_ArrayForEach(tc, tcs) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(f, "name");
                const cJSON *ar = cJSON_GetObjectItemCaseSensitive(f, "arguments");
                if (cJSON_IsString(nm))
                    ref_out(g, nm->valuestring);
                if (cJSON_IsString(ar))
                    ref_out(g, ar->valuestring);
            }
        }
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(ch, "text");
        if (cJSON_IsString(text))
            ref_out(g, text->valuestring);
    }
}

/* ---- the scanner, used the way proxy/app.c uses it ---- */

static void scan_out(void *ud, const char *raw, size_t len)
{
    struct got *g = ud;
    char *tmp = malloc(len + 1);
    size_t n = drift_json_unescape(raw, len, tmp);
    append(g, tmp, n);
    free(tmp);
}

static char *scan_str(const char *raw, size_t len)
{
    if (!raw)
        return NULL;
    char *s = malloc(len + 1);
    s[drift_json_unescape(raw, len, s)] = 0;
    return s;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static long n_ok, n_unsure;

/* Compare on one input; returns the scanner's verdict. */
static int compare(const char *json, size_t len, int is_chunk, const char *what)
{
    struct got s = {0}, r = {0};
    struct drift_answer a;
    int rc = drift_answer_scan(json, len, is_chunk, &a, scan_out, &s);
    if (rc != DRIFT_ANSWER_OK) {
        CHECK(s.out_len == 0, "%s: unsure but output reported", what);
        n_unsure++;
        got_free(&s);
        return rc;
    }
    n_ok++;
    s.model = scan_str(a.model, a.model_len);
    s.fp = scan_str(a.fingerprint, a.fingerprint_len);
    if (a.has_prompt_tokens)
        s.pt = (int)a.prompt_tokens;
    if (a.has_completion_tokens)
        s.ct = (int)a.completion_tokens;
    cJSON *o = cJSON_ParseWithLength(json, len);
    CHECK(o != NULL, "%s: scanner accepted what cJSON rejects: %.*s", what, (int)len, json);
    if (o) {
        int embeddings = !is_chunk && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "data")) &&
                         !cJSON_GetObjectItemCaseSensitive(o, "choices");
        CHECK(!embeddings, "%s: embeddings answer not left to cJSON", what);
        ref_inspect(&r, o, is_chunk);
        cJSON_Delete(o);
        CHECK(same_str(s.model, r.model), "%s: model '%s' vs '%s'", what,
              s.model ? s.model : "(null)", r.model ? r.model : "(null)");
        CHECK(same_str(s.fp, r.fp), "%s: fingerprint differs", what);
        CHECK(s.pt == r.pt && s.ct == r.ct, "%s: tokens %d/%d vs %d/%d", what, s.pt, s.ct, r.pt,
              r.ct);
        CHECK(s.out_len == r.out_len && (!s.out_len || memcmp(s.out, r.out, s.out_len) == 0),
              "%s: output '%.*s' vs '%.*s'", what, (int)s.out_len, s.out ? s.out : "",
              (int)r.out_len, r.out ? r.out : "");
    }
    got_free(&s);
    got_free(&r);
    return rc;
}

static void expect_ok(const char *json, int is_chunk)
{
    CHECK(compare(json, strlen(json), is_chunk, json) == DRIFT_ANSWER_OK, "not taken: %s", json);
}

static void expect_unsure(const char *json, int is_chunk)
{
    CHECK(compare(json, strlen(json), is_chunk, json) == DRIFT_ANSWER_UNSURE,
          "should be unsure: %s", json);
}

static const char *const samples[] = {
    "{\"id\":\"chatcmpl-mock-886291\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"mock answer to: hello benchmark\","
    "\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"
    "\"prompt_tokens\":2,\"completion_tokens\":5,\"total_tokens\":7}}",
    "{\"model\":\"m\",\"choices\":[{\"index\":1,\"message\":{\"content\":\"second\"}},"
    "{\"index\":0,\"message\":{\"content\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\","
    "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
    "\"arguments\":\"{\\\"a\\\":1}\"}},{\"function\":{\"arguments\":\"x\",\"name\":\"n2\"}}]},"
    "\"text\":\"T\"}],\"usage\":{\"prompt_tokens\":1.9e1,\"completion_tokens\":-0}}",
    "{\"object\":\"text_completion\",\"model\":\"davinci\",\"choices\":[{\"text\":\"hello\","
    "\"index\":0,\"logprobs\":null}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
    "{\"id\":\"c\",\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}",
    "{\"model\":\"x\",\"choices\":{\"a\":{\"message\":{\"content\":\"obj-choice\"}}},"
    "\"usage\":[1,2]}",
    "  {\"model\" : \"sp\" ,\n\"choices\" :\t[ { \"message\" : { \"content\" : \"\" } } ] }\r\n",
    "{\"model\":\"first\",\"model\":\"second\",\"choices\":[{\"message\":{\"content\":\"a\","
    "\"content\":\"b\"},\"message\":{\"content\":\"c\"}}]}",
    "{\"mod\\u0065l\":\"escaped-key\",\"choices\":[{\"messag\\u0065\":{\"content\":\"k\"}}]}",
    "{\"model\":null,\"system_fingerprint\":7,\"usage\":{\"prompt_tokens\":\"3\"},"
    "\"choices\":[{\"index\":\"1\",\"message\":[\"content\"],\"text\":true}]}",
    "{\"data\":[{\"embedding\":[0.1,0.2]}],\"model\":\"e\",\"choices\":null}",
    "{\"data\":[{\"embedding\":[0.1,0.2]}],\"model\":\"e\"}",
    "{\"choices\":[{\"index\":1},2,{\"index\":3},{},{\"index\":4},{\"index\":5},{\"index\":6},"
    "{\"index\":7},{\"index\":8},{\"index\":0,\"text\":\"tenth\"},{\"text\":\"eleventh\"}]}",
    "{\"choices\":[{\"index\":0.0,\"message\":{\"tool_calls\":{\"k\":{\"function\":{\"name\":\"o\"}}}}}]}",
};

static unsigned long long rng = 88172645463325252ULL;
static unsigned rnd(unsigned n) { return t_rnd(&rng, n); }

static void fuzz(void)
{
    static const char pieces[] = "{}[]\",:\\u0dD8e+-.01 \ttnfa\x01\xc3\xa9";
    char buf[2048];
    size_t ns = sizeof samples / sizeof samples[0];
    for (int iter = 0; iter < 200000; iter++) {
        const char *src = samples[rnd((unsigned)ns)];
        size_t n = strlen(src);
        memcpy(buf, src, n);
        int edits = 1 + (int)rnd(4);
        for (int e = 0; e < edits; e++)
            t_mutate(buf, &n, sizeof buf, pieces, &rng);
        /* no terminating NUL after the text: a read past the end is an ASan error */
        char *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        compare(exact, n, (int)rnd(2), "fuzz");
        free(exact);
        if (failures > 20)
            return;
    }
}

static void deep(void)
{
    /* nesting: fine at 60 levels, unsure at 10,000 (no recursion blow-up) */
    size_t n = 10000;
    char *s = malloc(2 * n + 64);
    for (int depth = 0; depth < 2; depth++) {
        size_t lvl = depth ? n : 60, k = 0;
        k += (size_t)sprintf(s, "{\"model\":\"d\",\"x\":");
        for (size_t i = 0; i < lvl; i++)
            s[k++] = '[';
        for (size_t i = 0; i < lvl; i++)
            s[k++] = ']';
        s[k++] = '}';
        int rc = compare(s, k, 0, "deep");
        CHECK(rc == (depth ? DRIFT_ANSWER_UNSURE : DRIFT_ANSWER_OK), "depth %zu: %d", lvl, rc);
    }
    free(s);
}

int main(void)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const char *s = samples[i];
        if (strstr(s, "\"data\"") && !strstr(s, "\"choices\""))
            expect_unsure(s, 0);
        else
            expect_ok(s, i == 3);
    }
    /* what only cJSON may judge */
    expect_unsure("", 0);
    expect_unsure("not json", 0);
    expect_unsure("[1,2]", 0);
    expect_unsure("{\"a\":1} trailing", 0);
    expect_unsure("{\"a\":1", 0);
    expect_unsure("{\"a\":01}", 0);
    expect_unsure("{\"a\":1.}", 0);
    expect_unsure("{\"a\":+1}", 0);
    expect_unsure("{\"a\":\"\\u0000\"}", 0);
    expect_unsure("{\"a\":\"\\udc00\"}", 0);
    expect_unsure("{\"a\":\"\\ud800x\"}", 0);
    expect_unsure("{\"a\":\"\\ud800\\u0041\"}", 0);
    expect_unsure("{\"a\":\"\\uZZZZ\"}", 0);
    expect_unsure("{\"a\":\"\\x\"}", 0);
    expect_unsure("{\"a\":\"tab\there\"}", 0);
    expect_unsure("\xef\xbb\xbf{\"a\":1}", 0);
    expect_unsure("{\"a\":1234567890123456789012345678901234567890123456789012345678901234}", 0);
    expect_unsure("{\"a\":tru}", 0);
    expect_unsure("{\"a\" 1}", 0);
    expect_unsure("{\"a\":1,}", 0);
    expect_unsure("{\"a\":[1,]}", 0);
    expect_ok("{}", 0);
    expect_ok("{\"a\":123456789012345678901234567890123456789012345678901234567890123}", 0);

    /* unescaping in place */
    char u[] = "a\\u00e9\\ud83d\\ude00\\n\\\"z";
    size_t un = drift_json_unescape(u, strlen(u), u);
    CHECK(un == 10 && memcmp(u, "a\xc3\xa9\xf0\x9f\x98\x80\n\"z", 10) == 0, "unescape: %zu", un);

    deep();
    fuzz();
    printf("drift_answer_test: %ld fast, %ld left to cJSON, %d failures\n", n_ok, n_unsure,
           failures);
    return failures ? 1 : 0;
}
