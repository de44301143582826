/*
 * gguf_writer.c - the writer's output read back by the reader: every value
 * type, tensors of each type, random llama models in F32/F16/BF16/Q8_0, and
 * the fp16/bf16/Q8_0 conversions against known bit patterns.
 */
#include <math.h>
#include <unistd.h>

#include "localmodel/gguf.h"
#include "localmodel/gguf_write.h"
#include "localmodel/sha256.h"
#include "tests/gguf/tcheck.h"

static char err[1024];

static void conversions(void)
{
    /* fp16 bit patterns, round to nearest even */
    CHECK(lm_fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(lm_fp32_to_fp16(-2.0f) == 0xc000);
    CHECK(lm_fp32_to_fp16(0.0f) == 0x0000);
    CHECK(lm_fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(lm_fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(lm_fp32_to_fp16(65520.0f) == 0x7c00);          /* tie rounds up to inf */
    CHECK(lm_fp32_to_fp16(65519.0f) == 0x7bff);
    CHECK(lm_fp32_to_fp16(1e10f) == 0x7c00);
    CHECK(lm_fp32_to_fp16(INFINITY) == 0x7c00);
    CHECK(lm_fp32_to_fp16(-INFINITY) == 0xfc00);
    CHECK((lm_fp32_to_fp16(NAN) & 0x7c00) == 0x7c00 && (lm_fp32_to_fp16(NAN) & 0x3ff));
    CHECK(lm_fp32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);   /* tie -> even */
    CHECK(lm_fp32_to_fp16(1.0f + 0x3p-11f) == 0x3c02);   /* tie -> even (up) */
    CHECK(lm_fp32_to_fp16(1.0f + 0x1p-12f) == 0x3c00);
    CHECK(lm_fp32_to_fp16(0x1p-24f) == 0x0001);          /* smallest subnormal */
    CHECK(lm_fp32_to_fp16(0x1p-25f) == 0x0000);          /* tie -> even (0) */
    CHECK(lm_fp32_to_fp16(0x3p-26f) == 0x0001);
    CHECK(lm_fp32_to_fp16(0x3p-25f) == 0x0002);          /* 1.5 ulp tie -> even 2 */
    CHECK(lm_fp32_to_fp16(0x1p-14f) == 0x0400);          /* smallest normal */
    CHECK(lm_fp32_to_fp16(0x1ffcp-27f) == 0x0400);       /* subnormal rounding into normal */
    CHECK(lm_fp16_to_fp32(0x0001) == 0x1p-24f);
    CHECK(lm_fp16_to_fp32(0x3555) == 0x1.554p-2f);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lm_fp16_to_fp32((uint16_t)h);
        if (isnan(f)) {
            bad += !isnan(lm_fp16_to_fp32(lm_fp32_to_fp16(f)));
            continue;
        }
        bad += lm_fp32_to_fp16(f) != h;
        /* float halfway to the next half rounds to even */
    }
    CHECK_MSG(bad == 0, "%d half values do not round-trip", bad);

    CHECK(lm_fp32_to_bf16(1.0f) == 0x3f80);
    CHECK(lm_fp32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);    /* tie -> even */
    CHECK(lm_fp32_to_bf16(1.0f + 0x3p-8f) == 0x3f82);
    CHECK(lm_fp32_to_bf16(-3.0f) == 0xc040);
    CHECK(isnan(lm_bf16_to_fp32(lm_fp32_to_bf16(NAN))));
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lm_bf16_to_fp32((uint16_t)h);
        if (!isnan(f)) bad += lm_fp32_to_bf16(f) != h;
    }
    CHECK_MSG(bad == 0, "%d bf16 values do not round-trip", bad);

    /* Q8_0 layout: fp16 d, then 32 int8 */
    float x[64], y[64];
    uint8_t q[2 * LM_Q8_0_BYTES];
    for (int i = 0; i < 32; i++) x[i] = (float)i;
    for (int i = 32; i < 64; i++) x[i] = 0.0f;
    CHECK(lm_row_to_q8_0(x, q, 64) == 0);
    uint16_t d;
    memcpy(&d, q, 2);
    CHECK(d == lm_fp32_to_fp16(31.0f / 127.0f));
    CHECK((int8_t)q[2 + 31] == 127 && (int8_t)q[2] == 0);
    CHECK((int8_t)q[2 + 1] == (int8_t)roundf(127.0f / 31.0f));
    memcpy(&d, q + LM_Q8_0_BYTES, 2);
    CHECK(d == 0);
    CHECK(lm_row_from_q8_0(q, y, 64) == 0);
    for (int i = 0; i < 64; i++) CHECK_MSG(fabsf(y[i] - x[i]) <= 31.0f / 127.0f * 0.51f, "q8 %d", i);
    CHECK(lm_row_to_q8_0(x, q, 33) < 0);
    CHECK(lm_row_to_type(GGUF_TT_Q4_0, x, q, 32) < 0);
}

/* Every value type through the writer and back. */
static void all_types(void)
{
    struct gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    CHECK(gguf_writer_add_u8(w, "t.u8", 200) == 0);
    gguf_writer_add_i8(w, "t.i8", -100);
    gguf_writer_add_u16(w, "t.u16", 60000);
    gguf_writer_add_i16(w, "t.i16", -30000);
    gguf_writer_add_u32(w, "t.u32", 4000000000u);
    gguf_writer_add_i32(w, "t.i32", -2000000000);
    gguf_writer_add_u64(w, "t.u64", UINT64_MAX);
    gguf_writer_add_i64(w, "t.i64", INT64_MIN);
    gguf_writer_add_f32(w, "t.f32", 0.25f);
    gguf_writer_add_f64(w, "t.f64", 1e300);
    gguf_writer_add_bool(w, "t.bool", 1);
    gguf_writer_add_str(w, "t.str", "h\xc3\xa9llo");
    gguf_writer_add_strn(w, "t.strn", "a\0b", 3);
    const char *strs[] = {"", "one", "\xe2\x96\x81two"};
    gguf_writer_add_arr_str(w, "t.astr", strs, 3);
    const float fl[3] = {1.5f, -2.0f, 3.25f};
    gguf_writer_add_arr(w, "t.af32", GGUF_T_FLOAT32, fl, 3);
    const int32_t in[4] = {1, -2, 3, -4};
    gguf_writer_add_arr(w, "t.ai32", GGUF_T_INT32, in, 4);
    const uint8_t bo[2] = {0, 1};
    gguf_writer_add_arr(w, "t.abool", GGUF_T_BOOL, bo, 2);
    gguf_writer_add_arr(w, "t.aempty", GGUF_T_UINT64, NULL, 0);
    gguf_writer_add_u32(w, "general.alignment", 64);
    const uint64_t ne[2] = {32, 3};
    float data[96];
    for (int i = 0; i < 96; i++) data[i] = (float)i * 0.5f - 10.0f;
    CHECK(gguf_writer_add_tensor(w, "a", 2, ne, GGUF_TT_F32, data) == 0);
    uint16_t h[96];
    lm_row_to_f16(data, h, 96);
    CHECK(gguf_writer_add_tensor(w, "b", 2, ne, GGUF_TT_F16, h) == 0);
    uint8_t q8[3 * LM_Q8_0_BYTES];
    lm_row_to_q8_0(data, q8, 96);
    CHECK(gguf_writer_add_tensor(w, "c", 2, ne, GGUF_TT_Q8_0, q8) == 0);
    const uint64_t ne1[1] = {5};
    CHECK(gguf_writer_add_tensor(w, "d", 1, ne1, GGUF_TT_F32, data) == 0);
    void *buf;
    size_t len;
    CHECK(gguf_writer_write_mem(w, &buf, &len, NULL, NULL, err, sizeof err) == 0);
    gguf_writer_free(w);

    struct gguf_file *f;
    if (gguf_open_buffer(buf, len, "types.gguf", &f, err, sizeof err) < 0) {
        fprintf(stderr, "open: %s\n", err);
        t_failures++;
        free(buf);
        return;
    }
    CHECK_EQ_U64(f->n_kv, 19);
    CHECK_EQ_U64(f->alignment, 64);
    CHECK_EQ_U64(f->data_offset % 64, 0);
    uint64_t u;
    int64_t i;
    double d;
    int b;
    struct gguf_str s;
    CHECK(gguf_get_u64(f, "t.u8", &u, err, sizeof err) == 0 && u == 200);
    CHECK(gguf_get_i64(f, "t.i8", &i, err, sizeof err) == 0 && i == -100);
    CHECK(gguf_get_u64(f, "t.u16", &u, err, sizeof err) == 0 && u == 60000);
    CHECK(gguf_get_i64(f, "t.i16", &i, err, sizeof err) == 0 && i == -30000);
    CHECK(gguf_get_u64(f, "t.u32", &u, err, sizeof err) == 0 && u == 4000000000u);
    CHECK(gguf_get_i64(f, "t.u32", &i, err, sizeof err) == 0 && i == 4000000000);
    CHECK(gguf_get_i64(f, "t.i32", &i, err, sizeof err) == 0 && i == -2000000000);
    CHECK(gguf_get_u64(f, "t.u64", &u, err, sizeof err) == 0 && u == UINT64_MAX);
    CHECK(gguf_get_i64(f, "t.u64", &i, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "does not fit in int64");
    CHECK(gguf_get_i64(f, "t.i64", &i, err, sizeof err) == 0 && i == INT64_MIN);
    CHECK(gguf_get_u64(f, "t.i8", &u, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "key 't.i8': value -100 is negative");
    CHECK(gguf_get_f64(f, "t.f32", &d, err, sizeof err) == 0 && d == 0.25);
    CHECK(gguf_get_f64(f, "t.f64", &d, err, sizeof err) == 0 && d == 1e300);
    CHECK(gguf_get_f64(f, "t.u64", &d, err, sizeof err) < 0);   /* not exact as a double */
    CHECK(gguf_get_f64(f, "t.i32", &d, err, sizeof err) == 0 && d == -2000000000.0);
    CHECK(gguf_get_u64(f, "t.f32", &u, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "got float32");
    CHECK(gguf_get_bool(f, "t.bool", &b, err, sizeof err) == 0 && b == 1);
    CHECK(gguf_get_str(f, "t.str", &s, err, sizeof err) == 0);
    CHECK_STR(s.ptr, s.len, "h\xc3\xa9llo");
    CHECK(gguf_get_str(f, "t.strn", &s, err, sizeof err) == 0 && s.len == 3 && s.ptr[1] == 0);
    const struct gguf_kv *kv = gguf_find_kv(f, "t.astr");
    CHECK(kv && kv->arr_type == GGUF_T_STRING && kv->arr_n == 3);
    if (kv) {
        s = gguf_arr_str(kv, 0); CHECK(s.len == 0 && s.ptr != NULL);
        s = gguf_arr_str(kv, 1); CHECK_STR(s.ptr, s.len, "one");
        s = gguf_arr_str(kv, 2); CHECK_STR(s.ptr, s.len, "\xe2\x96\x81two");
    }
    kv = gguf_find_kv(f, "t.af32");
    CHECK(kv && kv->arr_type == GGUF_T_FLOAT32 && kv->arr_n == 3 && memcmp(kv->arr_data, fl, 12) == 0);
    kv = gguf_find_kv(f, "t.ai32");
    CHECK(kv && kv->arr_type == GGUF_T_INT32 && kv->arr_n == 4 && memcmp(kv->arr_data, in, 16) == 0);
    kv = gguf_find_kv(f, "t.abool");
    CHECK(kv && kv->arr_type == GGUF_T_BOOL && kv->arr_n == 2);
    kv = gguf_find_kv(f, "t.aempty");
    CHECK(kv && kv->arr_type == GGUF_T_UINT64 && kv->arr_n == 0);
    /* key order preserved */
    CHECK_STR(f->kv[0].key.ptr, f->kv[0].key.len, "t.u8");

    CHECK_EQ_U64(f->n_tensors, 4);
    const struct gguf_tensor *t = gguf_find_tensor(f, "a");
    CHECK(t && t->type == GGUF_TT_F32 && t->nbytes == 384 && memcmp(t->data, data, 384) == 0);
    t = gguf_find_tensor(f, "b");
    CHECK(t && t->type == GGUF_TT_F16 && t->nbytes == 192 && memcmp(t->data, h, 192) == 0);
    CHECK(t && t->offset % 64 == 0);
    t = gguf_find_tensor(f, "c");
    CHECK(t && t->type == GGUF_TT_Q8_0 && t->nbytes == 102 && memcmp(t->data, q8, 102) == 0);
    t = gguf_find_tensor(f, "d");
    CHECK(t && t->n_dims == 1 && t->ne[0] == 5 && t->ne[1] == 1 && memcmp(t->data, data, 20) == 0);
    CHECK((uint64_t)len == f->data_offset + t->offset + t->nbytes);  /* no trailing padding */
    gguf_close(f);
    free(buf);

    /* writer errors are sticky and named */
    w = gguf_writer_new();
    gguf_writer_add_u32(w, "x", 1);
    CHECK(gguf_writer_add_u32(w, "x", 2) < 0);
    CHECK(gguf_writer_add_u32(w, "y", 2) < 0);
    CHECK(gguf_writer_write_mem(w, &buf, &len, NULL, NULL, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "duplicate key 'x'");
    gguf_writer_free(w);
    w = gguf_writer_new();
    const uint64_t ne33[1] = {33};
    CHECK(gguf_writer_add_tensor(w, "q", 1, ne33, GGUF_TT_Q8_0, NULL) < 0);
    CHECK(gguf_writer_write_mem(w, &buf, &len, NULL, NULL, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "tensor 'q': row length 33 is not a multiple of the Q8_0 block size 32");
    gguf_writer_free(w);
}

static const struct {
    enum gguf_ttype type;
    float rel;                 /* relative tolerance, or for Q8_0 in block-scale steps */
} kinds[] = {
    {GGUF_TT_F32, 0.0f}, {GGUF_TT_F16, 0x1p-11f}, {GGUF_TT_BF16, 0x1p-8f}, {GGUF_TT_Q8_0, 0.5f},
};

static void random_llama(int kind, int tied)
{
    struct lm_llama_shape s;
    memset(&s, 0, sizeof s);
    s.n_vocab = 300; s.dim = 64; s.n_layers = 2; s.n_heads = 4; s.n_kv_heads = 2;
    s.ffn_dim = 96; s.context_length = 128; s.type = kinds[kind].type;
    s.tied_output = tied; s.seed = 42;
    s.chat_template = kind == 0 ? "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}" : NULL;
    char path[256];
    snprintf(path, sizeof path, "/tmp/llmpin_gguf_writer_%d_%d_%d.gguf", (int)getpid(), kind, tied);
    if (lm_write_random_llama(path, &s, err, sizeof err) < 0) {
        fprintf(stderr, "write: %s\n", err);
        t_failures++;
        return;
    }
    struct gguf_file *f;
    if (gguf_open(path, &f, err, sizeof err) < 0) {
        fprintf(stderr, "open: %s\n", err);
        t_failures++;
        unlink(path);
        return;
    }
    CHECK_EQ_U64(f->n_tensors, 1 + 2 * 9 + 1 + (tied ? 0 : 1));
    struct gguf_str str;
    uint64_t u;
    double d;
    CHECK(gguf_get_str(f, "general.architecture", &str, err, sizeof err) == 0);
    CHECK_STR(str.ptr, str.len, "llama");
    CHECK(gguf_get_u64(f, "llama.embedding_length", &u, err, sizeof err) == 0 && u == 64);
    CHECK(gguf_get_u64(f, "llama.block_count", &u, err, sizeof err) == 0 && u == 2);
    CHECK(gguf_get_u64(f, "llama.attention.head_count_kv", &u, err, sizeof err) == 0 && u == 2);
    CHECK(gguf_get_u64(f, "llama.rope.dimension_count", &u, err, sizeof err) == 0 && u == 16);
    CHECK(gguf_get_u64(f, "llama.context_length", &u, err, sizeof err) == 0 && u == 128);
    CHECK(gguf_get_u64(f, "llama.vocab_size", &u, err, sizeof err) == 0 && u == 300);
    CHECK(gguf_get_f64(f, "llama.rope.freq_base", &d, err, sizeof err) == 0 && d == 10000.0);
    CHECK(gguf_get_u64(f, "tokenizer.ggml.bos_token_id", &u, err, sizeof err) == 0 && u == 1);
    CHECK((gguf_find_kv(f, "tokenizer.chat_template") != NULL) == (kind == 0));
    const struct gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const struct gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    CHECK(tok && tok->arr_n == 300 && tt && tt->arr_n == 300 && tt->arr_type == GGUF_T_INT32);
    if (tok && tt && kind == 0) {
        str = gguf_arr_str(tok, 0); CHECK_STR(str.ptr, str.len, "<unk>");
        str = gguf_arr_str(tok, 2); CHECK_STR(str.ptr, str.len, "</s>");
        str = gguf_arr_str(tok, 3 + 0x41); CHECK_STR(str.ptr, str.len, "<0x41>");
        str = gguf_arr_str(tok, 259); CHECK_STR(str.ptr, str.len, "\xe2\x96\x81");
        str = gguf_arr_str(tok, 260); CHECK_STR(str.ptr, str.len, "a");
        str = gguf_arr_str(tok, 261); CHECK_STR(str.ptr, str.len, "\xe2\x96\x81" "a");
        str = gguf_arr_str(tok, 299); CHECK_STR(str.ptr, str.len, "\xe2\x96\x81t");
        int32_t ty[300];
        memcpy(ty, tt->arr_data, sizeof ty);
        CHECK(ty[0] == 2 && ty[1] == 3 && ty[2] == 3 && ty[3] == 6 && ty[258] == 6 && ty[259] == 1);
        /* all pieces distinct */
        int dup = 0;
        for (uint64_t a = 0; a < 300; a++)
            for (uint64_t b2 = a + 1; b2 < 300; b2++) {
                struct gguf_str x = gguf_arr_str(tok, a), y = gguf_arr_str(tok, b2);
                dup += x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0;
            }
        CHECK(dup == 0);
    }
    CHECK((gguf_find_tensor(f, "output.weight") != NULL) == !tied);
    const struct gguf_tensor *k = gguf_find_tensor(f, "blk.1.attn_k.weight");
    CHECK(k && k->ne[0] == 64 && k->ne[1] == 32 && k->type == kinds[kind].type);
    const struct gguf_tensor *dn = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    CHECK(dn && dn->ne[0] == 96 && dn->ne[1] == 64);
    const struct gguf_tensor *nm = gguf_find_tensor(f, "blk.1.ffn_norm.weight");
    CHECK(nm && nm->type == GGUF_TT_F32 && nm->n_dims == 1 && ((const float *)nm->data)[63] == 1.0f);

    /* values: every tensor against the generator */
    float *want = malloc(64 * 300 * sizeof(float)), *got = malloc(64 * 300 * sizeof(float));
    double maxrel = 0;
    int bad = 0;
    for (uint64_t ti = 0; ti < f->n_tensors; ti++) {
        const struct gguf_tensor *t = &f->tensors[ti];
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (lm_random_llama_tensor(&s, name, want, t->nelements) < 0) {
            fprintf(stderr, "generator has no %s\n", name);
            bad++;
            continue;
        }
        CHECK(lm_row_from_type(t->type, t->data, got, (size_t)t->nelements) == 0);
        for (uint64_t r = 0; r < t->nelements / t->ne[0]; r++) {
            const float *wv = want + r * t->ne[0], *gv = got + r * t->ne[0];
            for (uint64_t j = 0; j < t->ne[0]; j++) {
                float tol;
                if (t->type == GGUF_TT_Q8_0) {
                    float amax = 0;
                    uint64_t b0 = j / 32 * 32;
                    for (int q = 0; q < 32; q++) amax = fmaxf(amax, fabsf(wv[b0 + q]));
                    tol = amax / 127.0f * 0.5f + amax * 0x1p-10f;
                } else {
                    tol = fabsf(wv[j]) * kinds[t->type == GGUF_TT_F32 ? 0 : kind].rel;
                    if (t->type == GGUF_TT_F16) tol += 0x1p-25f;   /* half subnormals */
                }
                if (fabsf(gv[j] - wv[j]) > tol) bad++;
                if (wv[j] != 0) maxrel = fmax(maxrel, fabs((double)gv[j] - wv[j]) / fabs(wv[j]));
            }
        }
        if (t->type != GGUF_TT_F32 || kind != 0) continue;
        /* F32: bit-exact and within +-1/sqrt(in) */
        CHECK(memcmp(t->data, want, (size_t)t->nbytes) == 0);
    }
    CHECK_MSG(bad == 0, "kind %d: %d values outside tolerance (max rel %g)", kind, bad, maxrel);
    /* weights are not degenerate: mean ~0, spread ~1/sqrt(64)/sqrt(3) */
    CHECK(lm_random_llama_tensor(&s, "blk.0.attn_q.weight", want, 64 * 64) == 0);
    double sum = 0, sq = 0;
    for (int j = 0; j < 64 * 64; j++) {
        sum += want[j];
        sq += (double)want[j] * want[j];
        CHECK(fabsf(want[j]) <= 0.125f);
    }
    CHECK(fabs(sum / 4096) < 0.01 && fabs(sqrt(sq / 4096) - 0.125 / sqrt(3.0)) < 0.01);
    free(want);
    free(got);
    gguf_close(f);

    /* deterministic: the same shape and seed give the same bytes */
    char h1[65], h2[65];
    CHECK(lm_sha256_file(path, h1, NULL, NULL, err, sizeof err) == 0);
    CHECK(lm_write_random_llama(path, &s, err, sizeof err) == 0);
    CHECK(lm_sha256_file(path, h2, NULL, NULL, err, sizeof err) == 0);
    CHECK(strcmp(h1, h2) == 0);
    s.seed = 43;
    CHECK(lm_write_random_llama(path, &s, err, sizeof err) == 0);
    CHECK(lm_sha256_file(path, h2, NULL, NULL, err, sizeof err) == 0);
    CHECK(strcmp(h1, h2) != 0);
    unlink(path);
}

int main(void)
{
    conversions();
    all_types();
    for (int k = 0; k < 4; k++) random_llama(k, k % 2);
    random_llama(0, 0);
    random_llama(3, 0);

    /* bad shapes are refused with a reason */
    struct lm_llama_shape s;
    memset(&s, 0, sizeof s);
    s.n_vocab = 100; s.dim = 64; s.n_layers = 1; s.n_heads = 4; s.n_kv_heads = 4;
    s.ffn_dim = 100; s.context_length = 16; s.type = GGUF_TT_Q8_0;
    CHECK(lm_write_random_llama("/tmp/never.gguf", &s, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "n_vocab 100");
    s.n_vocab = 300;
    CHECK(lm_write_random_llama("/tmp/never.gguf", &s, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "ffn (100)");
    s.type = GGUF_TT_F32; s.n_kv_heads = 3;
    CHECK(lm_write_random_llama("/tmp/never.gguf", &s, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "kv heads 3");
    s.n_kv_heads = 4;
    CHECK(lm_write_random_llama("/nonexistent/dir/m.gguf", &s, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "/nonexistent/dir/m.gguf");
    CHECK(access("/tmp/never.gguf", F_OK) != 0);
    T_DONE();
}
