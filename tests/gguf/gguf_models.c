/*
 * gguf_models.c - the reader against the two real test models, checking the
 * facts recorded in shared/models/README.md, and the typed getters.
 */
#include "localmodel/gguf.h"
#include "tests/gguf/tcheck.h"

#define STORIES LLMPIN_MODELS_DIR "/stories260K.gguf"
#define TINY LLMPIN_MODELS_DIR "/llama-2-tiny-random.gguf"

static char err[1024];

static void check_shape(const struct gguf_file *f, const char *name, uint32_t type,
                        uint64_t ne0, uint64_t ne1)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    CHECK_MSG(t != NULL, "tensor %s missing", name);
    if (!t) return;
    CHECK_MSG(t->type == type, "%s type %u", name, t->type);
    CHECK_MSG(t->ne[0] == ne0 && t->ne[1] == ne1, "%s shape [%llu,%llu]", name,
              (unsigned long long)t->ne[0], (unsigned long long)t->ne[1]);
    CHECK_MSG(t->n_dims == (ne1 == 1 ? 1u : 2u), "%s n_dims %u", name, t->n_dims);
    CHECK(t->nelements == ne0 * ne1);
    CHECK((const uint8_t *)t->data >= f->map + f->data_offset);
    CHECK((const uint8_t *)t->data + t->nbytes <= f->map + f->size);
}

static void stories(void)
{
    struct gguf_file *f;
    if (gguf_open(STORIES, &f, err, sizeof err) < 0) {
        fprintf(stderr, "open: %s\n", err);
        t_failures++;
        return;
    }
    CHECK_EQ_U64(f->version, 3);
    CHECK_EQ_U64(f->n_kv, 23);
    CHECK_EQ_U64(f->n_tensors, 47);
    CHECK_EQ_U64(f->data_offset, 14240);
    CHECK_EQ_U64(f->alignment, 32);
    CHECK_EQ_U64(f->size, 1054368);
    uint64_t params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        CHECK(f->tensors[i].type == GGUF_TT_F32);
        params += f->tensors[i].nelements;
    }
    CHECK_EQ_U64(params, 260032 - 0);   /* README: 260,032 parameters (tied classifier) */

    check_shape(f, "token_embd.weight", GGUF_TT_F32, 64, 512);
    char name[64];
    for (int l = 0; l < 5; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 1);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 64);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 32);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 32);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 64);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 1);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 172);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        check_shape(f, name, GGUF_TT_F32, 64, 172);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        check_shape(f, name, GGUF_TT_F32, 172, 64);
    }
    check_shape(f, "output_norm.weight", GGUF_TT_F32, 64, 1);
    CHECK(gguf_find_tensor(f, "output.weight") == NULL);
    CHECK(gguf_find_tensor(f, "blk.5.attn_q.weight") == NULL);
    /* first tensor is at data offset 0; token_embd is the first */
    CHECK((const uint8_t *)gguf_find_tensor(f, "token_embd.weight")->data == f->map + 14240);

    struct gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, err, sizeof err) == 0);
    CHECK_STR(s.ptr, s.len, "llama");
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s, err, sizeof err) == 0);
    CHECK_STR(s.ptr, s.len, "llama");
    uint64_t u;
    CHECK(gguf_get_u64(f, "llama.vocab_size", &u, err, sizeof err) == 0 && u == 512);
    CHECK(gguf_get_u64(f, "llama.context_length", &u, err, sizeof err) == 0 && u == 512);
    CHECK(gguf_get_u64(f, "llama.embedding_length", &u, err, sizeof err) == 0 && u == 64);
    CHECK(gguf_get_u64(f, "llama.block_count", &u, err, sizeof err) == 0 && u == 5);
    CHECK(gguf_get_u64(f, "llama.feed_forward_length", &u, err, sizeof err) == 0 && u == 172);
    CHECK(gguf_get_u64(f, "llama.attention.head_count", &u, err, sizeof err) == 0 && u == 8);
    CHECK(gguf_get_u64(f, "llama.attention.head_count_kv", &u, err, sizeof err) == 0 && u == 4);
    CHECK(gguf_get_u64(f, "llama.rope.dimension_count", &u, err, sizeof err) == 0 && u == 8);
    CHECK(gguf_get_u64(f, "tokenizer.ggml.bos_token_id", &u, err, sizeof err) == 0 && u == 1);
    CHECK(gguf_get_u64(f, "tokenizer.ggml.eos_token_id", &u, err, sizeof err) == 0 && u == 2);
    CHECK(gguf_get_u64(f, "tokenizer.ggml.unknown_token_id", &u, err, sizeof err) == 0 && u == 0);
    int64_t i64;
    CHECK(gguf_get_i64(f, "llama.block_count", &i64, err, sizeof err) == 0 && i64 == 5);
    double d;
    CHECK(gguf_get_f64(f, "llama.attention.layer_norm_rms_epsilon", &d, err, sizeof err) == 0);
    CHECK(d > 0.99e-5 && d < 1.01e-5);
    CHECK(gguf_get_f64(f, "llama.rope.freq_base", &d, err, sizeof err) == 0 && d == 10000.0);
    CHECK(gguf_get_f64(f, "llama.block_count", &d, err, sizeof err) == 0 && d == 5.0);
    int bv;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &bv, err, sizeof err) == 0 && bv == 1);
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &bv, err, sizeof err) == 0 && bv == 0);

    /* wrong types and missing keys name the key and both types */
    CHECK(gguf_get_u64(f, "general.architecture", &u, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "general.architecture");
    CHECK_CONTAINS(err, "expected an unsigned integer, got string");
    CHECK(gguf_get_str(f, "llama.block_count", &s, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "key 'llama.block_count': expected string, got uint32");
    CHECK(gguf_get_f64(f, "tokenizer.ggml.scores", &d, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "expected a float, got array of float32");
    CHECK(gguf_get_bool(f, "llama.block_count", &bv, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "expected bool, got uint32");
    CHECK(gguf_get_u64(f, "no.such.key", &u, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "stories260K.gguf: key 'no.such.key' is missing");

    const struct gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == GGUF_T_ARRAY && tok->arr_type == GGUF_T_STRING && tok->arr_n == 512);
    if (tok) {
        s = gguf_arr_str(tok, 0); CHECK_STR(s.ptr, s.len, "<unk>");
        s = gguf_arr_str(tok, 1); CHECK_STR(s.ptr, s.len, "<s>");
        s = gguf_arr_str(tok, 2); CHECK_STR(s.ptr, s.len, "</s>");
        s = gguf_arr_str(tok, 3); CHECK_STR(s.ptr, s.len, "<0x00>");
        s = gguf_arr_str(tok, 258); CHECK_STR(s.ptr, s.len, "<0xFF>");
        s = gguf_arr_str(tok, 512); CHECK(s.ptr == NULL && s.len == 0);
    }
    const struct gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    CHECK(tt && tt->arr_type == GGUF_T_INT32 && tt->arr_n == 512);
    if (tt) {
        int32_t v[4];
        memcpy(v, tt->arr_data, sizeof v);
        CHECK(v[0] == 2 && v[1] == 3 && v[2] == 3 && v[3] == 6);
    }
    const struct gguf_kv *sc = NULL;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_T_FLOAT32, &sc, err, sizeof err) == 0);
    CHECK(sc && sc->arr_type == GGUF_T_FLOAT32 && sc->arr_n == 512);
    CHECK(gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_T_INT32, &sc, err, sizeof err) < 0 && !sc);
    CHECK_CONTAINS(err, "key 'tokenizer.ggml.scores': expected array of int32, got array of float32");
    CHECK(gguf_get_arr(f, "llama.block_count", GGUF_T_INT32, &sc, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "expected array of int32, got uint32");
    CHECK(gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_T_STRING, &sc, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "key 'tokenizer.ggml.merges' is missing");
    gguf_close(f);
}

static void tiny(void)
{
    struct gguf_file *f;
    if (gguf_open(TINY, &f, err, sizeof err) < 0) {
        fprintf(stderr, "open: %s\n", err);
        t_failures++;
        return;
    }
    CHECK_EQ_U64(f->version, 3);
    CHECK_EQ_U64(f->n_tensors, 12);
    CHECK_EQ_U64(f->n_kv, 18);
    check_shape(f, "token_embd.weight", GGUF_TT_F16, 8, 32000);
    check_shape(f, "output.weight", GGUF_TT_F16, 8, 32000);
    check_shape(f, "blk.0.attn_q.weight", GGUF_TT_F16, 8, 8);
    check_shape(f, "blk.0.ffn_down.weight", GGUF_TT_F16, 32, 8);
    check_shape(f, "blk.0.ffn_gate.weight", GGUF_TT_F16, 8, 32);
    check_shape(f, "blk.0.attn_norm.weight", GGUF_TT_F32, 8, 1);
    check_shape(f, "output_norm.weight", GGUF_TT_F32, 8, 1);
    int n_f16 = 0, n_f32 = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        n_f16 += f->tensors[i].type == GGUF_TT_F16;
        n_f32 += f->tensors[i].type == GGUF_TT_F32;
    }
    CHECK(n_f16 == 9 && n_f32 == 3);
    uint64_t u;
    CHECK(gguf_get_u64(f, "llama.context_length", &u, err, sizeof err) == 0 && u == 4096);
    CHECK(gguf_get_u64(f, "general.file_type", &u, err, sizeof err) == 0 && u == 1);
    CHECK(gguf_find_kv(f, "llama.rope.freq_base") == NULL);
    struct gguf_str s;
    CHECK(gguf_get_str(f, "general.name", &s, err, sizeof err) == 0);
    CHECK_STR(s.ptr, s.len, "LLaMA v2");
    const struct gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->arr_n == 32000);
    if (tok) {
        s = gguf_arr_str(tok, 1); CHECK_STR(s.ptr, s.len, "<s>");
        s = gguf_arr_str(tok, 31999);
        CHECK(s.ptr != NULL && s.len > 0);
    }
    gguf_close(f);
}

int main(void)
{
    CHECK(strcmp(gguf_ttype_name(GGUF_TT_Q8_0), "Q8_0") == 0);
    CHECK(gguf_ttype_name(5) == NULL);
    CHECK(gguf_ttype_block(GGUF_TT_Q4_K) == 256);
    CHECK(gguf_ttype_nbytes(GGUF_TT_Q8_0, 64) == 68);
    CHECK(gguf_ttype_nbytes(GGUF_TT_Q8_0, 33) == 0);
    CHECK(gguf_ttype_nbytes(GGUF_TT_F32, UINT64_MAX / 2) == 0);
    CHECK(gguf_ttype_nbytes(GGUF_TT_BF16, 3) == 6);
    stories();
    tiny();
    T_DONE();
}
