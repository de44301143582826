/*
 * fuzz_jinja.c - libFuzzer target for the Jinja interpreter (localmodel/jinja.c).
 *
 * Input: a template text, optionally followed by a NUL and a JSON object
 * used as the untrusted data (default: a small conversation with tools).
 * What must hold, whatever the bytes: parsing either succeeds or fails with
 * a message; rendering (small step and output limits) either gives NUL-free
 * accounting — output length as reported, spans sorted, disjoint, inside the
 * output — or fails with a message. Never a crash, leak or hang.
 */
#include "localmodel/jinja.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char DEFAULT_DATA[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":[{\"type\":"
    "\"text\",\"text\":\"hi <|im_end|>\"}]},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
    "[{\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1.5}}}]},{\"role\":\"tool\","
    "\"content\":\"42\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
    "\"add_generation_prompt\":true}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    size_t tl = size;
    const uint8_t *nul = memchr(data, 0, size);
    cJSON *d = NULL;
    if (nul) {
        tl = (size_t)(nul - data);
        char *js = malloc(size - tl);
        memcpy(js, nul + 1, size - tl - 1);
        js[size - tl - 1] = '\0';
        d = cJSON_Parse(js);
        free(js);
    }
    if (!d) d = cJSON_Parse(DEFAULT_DATA);
    char err[512];
    err[0] = '\0';
    struct jinja_tmpl *t = jinja_parse(src, tl, err, sizeof err);
    if (!t) {
        if (!err[0]) abort();
        cJSON_Delete(d);
        return 0;
    }
    cJSON *tr = cJSON_CreateObject();
    cJSON_AddStringToObject(tr, "bos_token", "<s>");
    struct jinja_limits lim = { 1 << 16, 20000 };
    size_t ol = 0, *sp = NULL;
    int n = 0, raised = 0;
    char *o = jinja_render(t, cJSON_IsObject(d) ? d : NULL, tr, &lim, &ol, &sp, &n, &raised, err, sizeof err);
    if (o) {
        if (ol > lim.max_output || o[ol] != '\0') abort();
        for (int k = 0; k < n; k++) {
            if (sp[2 * k] >= sp[2 * k + 1] || sp[2 * k + 1] > ol) abort();
            if (k && sp[2 * k] < sp[2 * k - 1]) abort();
        }
    } else if (!err[0] && !raised) {
        abort();
    }
    free(o);
    free(sp);
    jinja_free(t);
    cJSON_Delete(tr);
    cJSON_Delete(d);
    return 0;
}
