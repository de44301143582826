/*
 * fuzz_probe_suite.c - libFuzzer target for the probe-suite JSONL reader
 * (drift_probe_suite_parse in drift/probe.c) and what is done with each
 * probe it accepts: the request body, answer extraction and grading.
 *
 * Input: the suite text, optionally followed by "\n\x01\n" and an output
 * text to grade every probe against. What must hold: a refusal names the
 * suite ("fuzz.jsonl:LINE: ..."); every accepted probe has an id that
 * drift_probe_suite_find finds, messages, and a request body with that
 * model and no key twice; extraction writes a NUL-terminated answer within the buffer, even
 * a tiny one; grading gives 0 or 1.
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
        fprintf(stderr, "fuzz_probe_suite: " __VA_ARGS__);            \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

static const char *duplicate_key(const cJSON *v)
{
    for (const cJSON *e = v ? v->child : NULL; e; e = e->next) {
        if (cJSON_IsObject(v))
            for (const cJSON *f = e->next; f; f = f->next)
                if (strcmp(e->string, f->string) == 0) return e->string;
        const char *d = duplicate_key(e);
        if (d) return d;
    }
    return NULL;
}

static void check_extract(const struct drift_probe *p, const char *output)
{
    char small[8], big[4096];
    memset(small, 'x', sizeof small);
    if (drift_probe_extract(p, output, small, sizeof small) == 0 && !memchr(small, 0, sizeof small))
        FAIL("extract wrote no NUL into an 8-byte buffer");
    if (drift_probe_extract(p, output, big, sizeof big) == 0 && !memchr(big, 0, sizeof big))
        FAIL("extract wrote no NUL");
    int g = drift_probe_grade(p, output);
    if (g != 0 && g != 1) FAIL("grade gave %d", g);
    (void)drift_output_is_refusal(output);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sep = memmem(data, size, "\n\x01\n", 3);
    size_t tlen = sep ? (size_t)(sep - (const char *)data) : size;
    char *text = malloc(tlen ? tlen : 1);         /* exact size: no NUL to lean on */
    if (!text) abort();
    memcpy(text, data, tlen);
    char *output = NULL;
    if (sep) {
        size_t olen = size - tlen - 3;
        output = malloc(olen + 1);
        if (!output) abort();
        memcpy(output, sep + 3, olen);
        output[olen] = 0;
    }
    char err[512] = "";
    struct drift_probe_suite *s = drift_probe_suite_parse(text, tlen, "fuzz.jsonl", err, sizeof err);
    if (!s) {
        if (strncmp(err, "fuzz.jsonl", 10) != 0) FAIL("a refusal that does not name the file: %s", err);
    } else {
        for (size_t i = 0; i < s->n; i++) {
            const struct drift_probe *p = &s->probes[i];
            if (!p->id || !p->expect) FAIL("probe %zu without an id or expect", i);
            const struct drift_probe *q = drift_probe_suite_find(s, p->id);
            if (!q || strcmp(q->id, p->id) != 0) FAIL("probe '%s' is not found by its id", p->id);
            if (!cJSON_IsArray(p->messages)) FAIL("probe '%s' has no message array", p->id);
            cJSON *req = drift_probe_request(p, "fuzz-model");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(req, "model");
            if (!cJSON_IsString(m) || strcmp(m->valuestring, "fuzz-model") != 0)
                FAIL("probe '%s': the request does not carry the model", p->id);
            const char *dup = duplicate_key(req);
            if (dup)
                FAIL("probe '%s': the request has key \"%s\" twice in one object (a proxy "
                     "that rejects duplicate keys refuses it)", p->id, dup);
            char *body = cJSON_PrintUnformatted(req);
            if (!body) FAIL("probe '%s': the request does not print", p->id);
            free(body);
            cJSON_Delete(req);
            check_extract(p, p->expect);
            if (output) check_extract(p, output);
        }
        drift_probe_suite_free(s);
    }
    free(output);
    free(text);
    return 0;
}
