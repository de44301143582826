/*
 * fuzz_model.c - libFuzzer entry for the model loader: a GGUF file through
 * gguf_open_buffer and lm_model_load (every architecture's hyper-parameter
 * keys, tensor names, shapes and types), then, for a file that loads, two
 * tokens through lm_forward on the best ISA. Beyond "no crash, leak or
 * sanitizer report": a refusal always says why, a loaded model has sane
 * dimensions, and a forward pass of a loaded model succeeds (any tensor
 * data, NaN included, is computable). Seeds: tiny writer-made models of
 * every architecture (tests/fuzz/corpus/model/).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "localmodel/gguf.h"
#include "localmodel/kernels.h"
#include "localmodel/model.h"
#include "localmodel/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void forward_two(const struct lm_model *m)
{
    static struct lm_pool *pool;
    char err[512];
    if (!pool && !(pool = lm_pool_new(1, err, sizeof err)))
        abort();
    struct lm_ctx *c = lm_ctx_new(m, pool, 2, 8, lm_isa_detect(), err, sizeof err);
    struct lm_kv *kv = lm_kv_new(m, 8, LM_KV_F16, err, sizeof err);
    float *logits = malloc(sizeof(float) * 2 * (size_t)m->hp.n_vocab);
    if (!c || !kv || !logits)
        abort();                 /* a loaded model's context is small here */
    int32_t toks[2] = { 0, m->hp.n_vocab - 1 };
    int pos[2] = { 0, 1 };
    struct lm_kv *kvs[2] = { kv, kv };
    struct lm_batch b = { 2, toks, pos, kvs, NULL, logits, NULL, 1 };
    if (lm_forward(c, &b, err, sizeof err) != 0)
        abort();
    free(logits);
    lm_kv_free(kv);
    lm_ctx_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gguf_file *f = NULL;
    char err[512];
    if (gguf_open_buffer(data, size, "fuzz.gguf", &f, err, sizeof err) != 0)
        return 0;
    struct lm_model *m = NULL;
    err[0] = '\0';
    if (lm_model_load(f, &m, err, sizeof err) == 0) {
        const struct lm_hparams *hp = &m->hp;
        if (hp->dim < 1 || hp->n_layers < 1 || hp->n_heads < 1 || hp->n_kv_heads < 1 ||
            hp->n_heads % hp->n_kv_heads || hp->head_dim < 1 || hp->n_vocab < 1 ||
            hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
            abort();
        /* every tensor is inside the file, so the work is bounded by its size */
        forward_two(m);
        lm_model_free(m);
    } else if (err[0] == '\0' || m != NULL) {
        abort();
    }
    gguf_close(f);
    return 0;
}
