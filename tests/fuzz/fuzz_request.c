/*
 * fuzz_request.c - libFuzzer target for llm_request_parse (common/llm.c),
 * which reads every client body the proxy accepts, for each of the three
 * endpoints (chat, completions, embeddings).
 *
 * What must hold: a refusal fills an OpenAI-style code and message (and a
 * param that is a C string); an accepted request has a body object, and
 * every pointer it hands out (model, messages, stop, prompt, inputs) reads
 * as a NUL-terminated string; llm_request_free releases all of it (ASan's
 * leak check runs at exit and on every -runs boundary).
 */
#include "common/llm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_request: " __VA_ARGS__);                \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

static volatile size_t sink;

static void touch(const char *s, const char *what)
{
    if (!s) FAIL("%s is NULL", what);
    sink += strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: the parser must not read past len */
    char *body = malloc(size ? size : 1);
    if (!body) abort();
    memcpy(body, data, size);
    for (int ep = LLM_CHAT; ep <= LLM_EMBEDDINGS; ep++) {
        struct llm_request r;
        char param[128], code[64], msg[512];
        memset(param, 'x', sizeof param);
        int rc = llm_request_parse((enum llm_endpoint)ep, body, size, &r, param, sizeof param, code,
                                   sizeof code, msg, sizeof msg);
        if (rc == 0) {
            if (!cJSON_IsObject(r.body)) FAIL("accepted without a body object");
            if (r.model) touch(r.model, "model");
            if (r.n_messages < 0 || r.n_stop < 0 || r.n_inputs < 0) FAIL("negative count");
            for (int i = 0; i < r.n_messages; i++) {
                touch(r.messages[i].role, "messages[].role");
                if (r.messages[i].content) sink += strlen(r.messages[i].content);
            }
            for (int i = 0; i < r.n_stop; i++) touch(r.stop[i], "stop[]");
            if (r.prompt) touch(r.prompt, "prompt");
            for (int i = 0; i < r.n_inputs; i++) touch(r.inputs[i], "input[]");
            sink += (size_t)llm_request_deterministic(&r);
        } else if (rc == -1) {
            if (!memchr(param, 0, sizeof param)) FAIL("param is not a string");
            if (!code[0] || !msg[0]) FAIL("refused without a code and message");
            sink += strlen(code) + strlen(msg);
        } else {
            FAIL("returned %d", rc);
        }
        llm_request_free(&r);
    }
    free(body);
    return 0;
}
