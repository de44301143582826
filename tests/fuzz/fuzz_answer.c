/*
 * fuzz_answer.c - libFuzzer target for drift_answer_scan and
 * drift_json_unescape (drift/answer.c), the in-place reader of upstream
 * answers and stream chunks, against a cJSON reading of the same bytes.
 *
 * Input: one flag byte (bit 0: read as a stream chunk), then the answer.
 * When the scanner answers, cJSON must parse the text, and the first
 * "model", "system_fingerprint", usage token counts and choice 0's output
 * (content, tool call names and arguments, "text") must be byte-identical
 * to what cJSON gives; when unsure, no output may have been reported.
 */
#include "drift/drift.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_answer: " __VA_ARGS__);                 \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

struct text {
    char *p;
    size_t n;
};

static void add(struct text *t, const char *s, size_t n)
{
    char *np = realloc(t->p, t->n + n + 1);
    if (!np) abort();
    t->p = np;
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
}

static void on_output(void *ud, const char *raw, size_t len)
{
    char *tmp = malloc(len + 1);
    if (!tmp) abort();
    size_t n = drift_json_unescape(raw, len, tmp);
    if (n > len) FAIL("unescape grew %zu bytes to %zu", len, n);
    add(ud, tmp, n);
    free(tmp);
}

static void ref_add(struct text *t, const cJSON *v)
{
    if (cJSON_IsString(v)) add(t, v->valuestring, strlen(v->valuestring));
}

/* What the proxy read with cJSON before the scanner (proxy/app.c). */
static void ref_output(const cJSON *o, int is_chunk, struct text *t)
{
    const cJSON *ch;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(o, "choices")) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(ch, "index");
        if (cJSON_IsNumber(idx) && idx->valuedouble != 0) continue;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ch, is_chunk ? "delta" : "message");
        if (m) {
            ref_add(t, cJSON_GetObjectItemCaseSensitive(m, "content"));
            const cJSON *tc;
            cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
                ref_add(t, cJSON_GetObjectItemCaseSensitive(f, "name"));
                ref_add(t, cJSON_GetObjectItemCaseSensitive(f, "arguments"));
            }
        }
        ref_add(t, cJSON_GetObjectItemCaseSensitive(ch, "text"));
    }
}

static void same_string(const char *what, const char *raw, size_t raw_len, const cJSON *ref)
{
    if (!cJSON_IsString(ref)) {
        if (raw) FAIL("%s: the scanner found a string cJSON does not", what);
        return;
    }
    if (!raw) FAIL("%s: cJSON has \"%s\", the scanner nothing", what, ref->valuestring);
    char *s = malloc(raw_len + 1);
    if (!s) abort();
    size_t n = drift_json_unescape(raw, raw_len, s);
    if (n != strlen(ref->valuestring) || memcmp(s, ref->valuestring, n) != 0)
        FAIL("%s: the scanner has \"%.*s\", cJSON \"%s\"", what, (int)n, s, ref->valuestring);
    free(s);
}

static void same_number(const char *what, int has, double v, const cJSON *ref)
{
    if (has != cJSON_IsNumber(ref)) FAIL("%s: a number for one reader only", what);
    if (has && v != ref->valuedouble) FAIL("%s: %.17g vs cJSON %.17g", what, v, ref->valuedouble);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int is_chunk = data[0] & 1;
    size_t len = size - 1;
    char *json = malloc(len ? len : 1);        /* exact size: no NUL to lean on */
    if (!json) abort();
    memcpy(json, data + 1, len);
    struct text out = {0}, ref = {0};
    struct drift_answer a;
    int rc = drift_answer_scan(json, len, is_chunk, &a, on_output, &out);
    if (rc != DRIFT_ANSWER_OK) {
        if (rc != DRIFT_ANSWER_UNSURE) FAIL("returned %d", rc);
        if (out.n) FAIL("unsure, but output was reported");
        free(out.p);
        free(json);
        return 0;
    }
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(o)) FAIL("answered for what cJSON does not read as an object");
    if ((a.model && (a.model < json || a.model + a.model_len > json + len)) ||
        (a.fingerprint && (a.fingerprint < json || a.fingerprint + a.fingerprint_len > json + len)))
        FAIL("a span points outside the answer");
    same_string("model", a.model, a.model_len, cJSON_GetObjectItemCaseSensitive(o, "model"));
    same_string("system_fingerprint", a.fingerprint, a.fingerprint_len,
                cJSON_GetObjectItemCaseSensitive(o, "system_fingerprint"));
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
    if (!cJSON_IsObject(u)) u = NULL;
    same_number("usage.prompt_tokens", a.has_prompt_tokens, a.prompt_tokens,
                cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
    same_number("usage.completion_tokens", a.has_completion_tokens, a.completion_tokens,
                cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
    ref_output(o, is_chunk, &ref);
    if (out.n != ref.n || (out.n && memcmp(out.p, ref.p, out.n) != 0))
        FAIL("output: the scanner has %zu bytes \"%.*s\", cJSON %zu \"%.*s\"", out.n, (int)out.n,
             out.p ? out.p : "", ref.n, (int)ref.n, ref.p ? ref.p : "");
    cJSON_Delete(o);
    free(out.p);
    free(ref.p);
    free(json);
    return 0;
}
