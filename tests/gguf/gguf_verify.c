/*
 * gguf_verify.c - the `llmpin verify` report on the test models and on a
 * writer-made model with a chat template.
 */
#include <unistd.h>

#include "localmodel/gguf_write.h"
#include "localmodel/verify.h"
#include "tests/gguf/tcheck.h"

static char *report(const char *path, int *rc, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    *rc = lm_verify_report(path, 1, out, err, errlen);
    fclose(out);
    return text;
}

int main(void)
{
    char err[512];
    int rc;
    char *r = report(LLMPIN_MODELS_DIR "/stories260K.gguf", &rc, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    printf("%s", r);
    CHECK_CONTAINS(r, "sha256:         78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab\n");
    CHECK_CONTAINS(r, "gguf version:   3\n");
    CHECK_CONTAINS(r, "architecture:   llama\n");
    CHECK_CONTAINS(r, "parameters:     260,032 (260.0K)\n");
    CHECK_CONTAINS(r, "tensor types:   F32: 47\n");
    CHECK_CONTAINS(r, "context length: 512\n");
    CHECK_CONTAINS(r, "vocabulary:     512 tokens (tokenizer llama)\n");
    CHECK_CONTAINS(r, "chat template:  plain (no tokenizer.chat_template in file)\n");
    CHECK_CONTAINS(r, "engine:         loads (llama, 5 layers, dim 64, heads 8/4 of 8, ffn 172, tied output)\n");
    CHECK_CONTAINS(r, "memory:         weights 1.0 MiB mapped + KV cache 0.3 MiB per sequence of 512 positions (F16)");
    CHECK_CONTAINS(r, "\"local_models\": { \"stories260K\": { \"path\": \"" LLMPIN_MODELS_DIR
                      "/stories260K.gguf\", \"sha256\": "
                      "\"78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab\" } }\n");
    free(r);

    r = report(LLMPIN_MODELS_DIR "/llama-2-tiny-random.gguf", &rc, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_CONTAINS(r, "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb");
    CHECK_CONTAINS(r, "tensor types:   F32: 3, F16: 9\n");
    CHECK_CONTAINS(r, "context length: 4096\n");
    CHECK_CONTAINS(r, "vocabulary:     32000 tokens");
    CHECK_CONTAINS(r, "name:           LLaMA v2\n");
    CHECK_CONTAINS(r, "\"llama-2-tiny-random\": {");
    free(r);

    /* writer-made model with a ChatML template; a path needing JSON escapes */
    struct lm_llama_shape s;
    memset(&s, 0, sizeof s);
    s.n_vocab = 300; s.dim = 32; s.n_layers = 1; s.n_heads = 2; s.n_kv_heads = 2;
    s.ffn_dim = 64; s.context_length = 256; s.type = GGUF_TT_Q8_0; s.seed = 3;
    s.chat_template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    char path[128];
    snprintf(path, sizeof path, "/tmp/llmpin \"v\\%d.gguf", (int)getpid());
    CHECK_MSG(lm_write_random_llama(path, &s, err, sizeof err) == 0, "%s", err);
    r = report(path, &rc, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_CONTAINS(r, "chat template:  jinja, 127 bytes (family chatml)\n");
    CHECK_CONTAINS(r, "(tokenizer llama)\n");
    CHECK_CONTAINS(r, "tensor types:   F32: 3, Q8_0: 9\n");
    CHECK_CONTAINS(r, "context length: 256\n");
    char want[256];
    snprintf(want, sizeof want, "{ \"llmpin \\\"v\\\\%d\": { \"path\": \"/tmp/llmpin \\\"v\\\\%d.gguf\"",
             (int)getpid(), (int)getpid());
    CHECK_CONTAINS(r, want);
    free(r);
    unlink(path);

    /* a template that does not parse: the family renders, and verify says why */
    s.chat_template = "{% for m in messages %}<|im_start|>{{ m.content }";
    CHECK_MSG(lm_write_random_llama(path, &s, err, sizeof err) == 0, "%s", err);
    r = report(path, &rc, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_CONTAINS(r, "chat template:  chatml (the file's Jinja template does not parse: line 1");
    free(r);
    unlink(path);

    /* other architectures load; a file the engine refuses says why */
    s.chat_template = NULL;
    s.arch = "qwen3";
    s.head_dim = 32;
    CHECK_MSG(lm_write_random_llama(path, &s, err, sizeof err) == 0, "%s", err);
    r = report(path, &rc, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_CONTAINS(r, "architecture:   qwen3\n");
    CHECK_CONTAINS(r, "engine:         loads (qwen3, 1 layers, dim 32, heads 2/2 of 32, ffn 64)\n");
    free(r);
    s.context_length = 1u << 25;
    CHECK_MSG(lm_write_random_llama(path, &s, err, sizeof err) == 0, "%s", err);
    r = report(path, &rc, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_CONTAINS(r, "engine:         refused: ");
    CHECK_CONTAINS(r, "key 'qwen3.context_length': 33554432 out of range 1..16777216\n");
    free(r);
    unlink(path);

    /* not a GGUF file: error, names the file */
    r = report("/etc/hostname", &rc, err, sizeof err);
    CHECK(rc < 0);
    CHECK_CONTAINS(err, "/etc/hostname");
    free(r);
    T_DONE();
}
