/*
 * test_gguf_hostile.c - malformed GGUF files must be rejected cleanly, with a
 * message that names the offending field. Each case is built byte by byte.
 */
#include "localmodel/gguf.h"
#include "tests/gguf/tcheck.h"

#include <unistd.h>

static char err[1024];

/* Open b; expect failure whose message contains every needle. */
static void expect_fail_at(int line, struct tb *b, const char *n1, const char *n2)
{
    struct gguf_file *f = NULL;
    err[0] = 0;
    int rc = gguf_open_buffer(b->p, b->n, "bad.gguf", &f, err, sizeof err);
    if (rc == 0 || f) {
        fprintf(stderr, "line %d: expected failure, got success\n", line);
        t_failures++;
        gguf_close(f);
        return;
    }
    if (getenv("GGUF_TEST_VERBOSE")) printf("line %d: %s\n", line, err);
    if (!strstr(err, "bad.gguf") || !strstr(err, n1) || (n2 && !strstr(err, n2))) {
        fprintf(stderr, "line %d: message \"%s\" lacks \"bad.gguf\"/\"%s\"/\"%s\"\n", line, err, n1,
                n2 ? n2 : "");
        t_failures++;
    }
}
#define EXPECT_FAIL(b, n1, n2) expect_fail_at(__LINE__, (b), (n1), (n2))

static struct gguf_file *expect_ok_at(int line, struct tb *b)
{
    struct gguf_file *f = NULL;
    err[0] = 0;
    if (gguf_open_buffer(b->p, b->n, "good.gguf", &f, err, sizeof err) < 0) {
        fprintf(stderr, "line %d: expected success: %s\n", line, err);
        t_failures++;
        return NULL;
    }
    return f;
}
#define EXPECT_OK(b) expect_ok_at(__LINE__, (b))

/* A valid file with one 8x2 F32 tensor, then optional extra kv written by
 * the callback. */
static void one_tensor(struct tb *b, uint32_t version, uint64_t nkv_extra,
                       void (*extra)(struct tb *), const uint64_t *ne, uint32_t nd,
                       uint32_t type, uint64_t off, size_t data_bytes)
{
    tb_head(b, version, 1, 1 + nkv_extra);
    tb_kv_str(b, "general.architecture", "llama");
    if (extra) extra(b);
    tb_tensor(b, "w", nd, ne, type, off);
    tb_pad(b, 32);
    tb_zeros(b, data_bytes);
}

static void kv_align48(struct tb *b) { tb_kv_u32(b, "general.alignment", 48); }
static void kv_align0(struct tb *b) { tb_kv_u32(b, "general.alignment", 0); }
static void kv_align_u64(struct tb *b) { tb_str(b, "general.alignment"); tb_u32(b, 10); tb_u64(b, 32); }
static void kv_dup(struct tb *b) { tb_kv_u32(b, "general.architecture", 1); }

int main(void)
{
    struct tb b = {0};
    const uint64_t ne82[2] = {8, 2};

    /* baseline valid */
    one_tensor(&b, 3, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
    struct gguf_file *f = EXPECT_OK(&b);
    if (f) {
        CHECK_EQ_U64(f->n_tensors, 1);
        CHECK_EQ_U64(f->tensors[0].nbytes, 64);
        CHECK_EQ_U64(f->data_offset % 32, 0);
        gguf_close(f);
    }
    /* version 2 is accepted too */
    tb_free(&b);
    one_tensor(&b, 2, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
    f = EXPECT_OK(&b);
    if (f) { CHECK_EQ_U64(f->version, 2); gguf_close(f); }

    /* wrong magic */
    tb_free(&b);
    one_tensor(&b, 3, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
    memcpy(b.p, "GGML", 4);
    EXPECT_FAIL(&b, "offset 0", "magic");
    memcpy(b.p, "FUGG", 4);
    EXPECT_FAIL(&b, "offset 0", "big-endian");
    /* empty and tiny buffers */
    {
        struct tb e = {0};
        tb_put(&e, "GG", 2);
        EXPECT_FAIL(&e, "magic", NULL);
        tb_free(&e);
    }

    /* versions */
    tb_free(&b);
    one_tensor(&b, 1, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "version 1 is not supported", "offset 4");
    tb_free(&b);
    one_tensor(&b, 4, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "version 4 is not supported", NULL);
    tb_free(&b);
    one_tensor(&b, 0x03000000, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "byte-swapped", NULL);

    /* huge counts */
    tb_free(&b);
    tb_head(&b, 3, UINT64_MAX, 0); tb_zeros(&b, 64);
    EXPECT_FAIL(&b, "tensor_count 18446744073709551615", "cannot fit");
    tb_free(&b);
    tb_head(&b, 3, (1ULL << 59) + 1, 0); tb_zeros(&b, 64);   /* *32 wraps to 32 */
    EXPECT_FAIL(&b, "tensor_count", "cannot fit");
    tb_free(&b);
    tb_head(&b, 3, 0, 1ULL << 62); tb_zeros(&b, 64);
    EXPECT_FAIL(&b, "metadata_kv_count", "cannot fit");
    tb_free(&b);
    tb_head(&b, 3, 0, 10); tb_kv_u32(&b, "a", 1); tb_zeros(&b, 100);  /* 10*14 > 100+... */
    EXPECT_FAIL(&b, "metadata_kv_count 10", NULL);

    /* string length larger than the file: key, value, tensor name */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_u64(&b, 1ULL << 40); tb_zeros(&b, 32);
    EXPECT_FAIL(&b, "metadata key", "string length 1099511627776");
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "general.name"); tb_u32(&b, 8); tb_u64(&b, UINT64_MAX);
    tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "string length", "general.name");
    tb_free(&b);
    tb_head(&b, 3, 1, 0); tb_u64(&b, 5000); tb_zeros(&b, 64);
    EXPECT_FAIL(&b, "tensor name", "string length 5000");

    /* array count huge, for fixed, string and nested element types */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "tokenizer.ggml.scores"); tb_u32(&b, 9); tb_u32(&b, 6);
    tb_u64(&b, 1ULL << 62); tb_zeros(&b, 64);
    EXPECT_FAIL(&b, "tokenizer.ggml.scores", "array of 4611686018427387904 float32");
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "tokenizer.ggml.tokens"); tb_u32(&b, 9); tb_u32(&b, 8);
    tb_u64(&b, (1ULL << 61) + 1); tb_zeros(&b, 64);          /* *8 wraps */
    EXPECT_FAIL(&b, "tokenizer.ggml.tokens", "string elements cannot fit");
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "tokenizer.ggml.tokens"); tb_u32(&b, 9); tb_u32(&b, 8);
    tb_u64(&b, 2); tb_str(&b, "ok"); tb_u64(&b, 999); tb_zeros(&b, 8);
    EXPECT_FAIL(&b, "element 1", "tokenizer.ggml.tokens");
    /* unknown array element type */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.arr"); tb_u32(&b, 9); tb_u32(&b, 13); tb_u64(&b, 1);
    tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "x.arr", "array element type 13");

    /* nested arrays: depth 3 is fine, depth 9 is rejected */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.nested"); tb_u32(&b, 9);
    tb_u32(&b, 9); tb_u64(&b, 2);                    /* array of 2 arrays */
    tb_u32(&b, 9); tb_u64(&b, 1);                    /*  [0]: array of 1 array */
    tb_u32(&b, 4); tb_u64(&b, 2); tb_u32(&b, 7); tb_u32(&b, 8);  /* [0][0]: u32[2] */
    tb_u32(&b, 8); tb_u64(&b, 2); tb_str(&b, "a"); tb_str(&b, "bc");  /* [1]: string[2] */
    f = EXPECT_OK(&b);
    if (f) {
        const struct gguf_kv *kv = gguf_find_kv(f, "x.nested");
        CHECK(kv && kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_ARRAY && kv->arr_n == 2);
        CHECK(kv && kv->arr_str_index == NULL);
        gguf_close(f);
    }
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.deep"); tb_u32(&b, 9);
    for (int i = 0; i < 9; i++) { tb_u32(&b, 9); tb_u64(&b, 1); }
    tb_u32(&b, 0); tb_u64(&b, 0);
    EXPECT_FAIL(&b, "x.deep", "nested deeper than 8");
    /* nested array truncated inside */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.n"); tb_u32(&b, 9); tb_u32(&b, 9); tb_u64(&b, 1);
    tb_u32(&b, 4); tb_u64(&b, 100); tb_zeros(&b, 20);
    EXPECT_FAIL(&b, "x.n", "array of 100 uint32");

    /* unknown value type; bad bool; empty key */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.t"); tb_u32(&b, 13); tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "x.t", "value type 13 is unknown");
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.t"); tb_u32(&b, 0xffffffffu); tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "x.t", "value type 4294967295");
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x.b"); tb_u32(&b, 7); tb_u8(&b, 2); tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "x.b", "bool value is 2");
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, ""); tb_u32(&b, 0); tb_u8(&b, 2); tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "offset 24", "key is empty");
    /* control characters in a key are escaped in the message */
    tb_free(&b);
    tb_head(&b, 3, 0, 1); tb_str(&b, "x\033[2J"); tb_u32(&b, 99); tb_zeros(&b, 16);
    EXPECT_FAIL(&b, "x\\x1b[2J", "value type 99");

    /* tensor type unknown */
    tb_free(&b);
    one_tensor(&b, 3, 0, NULL, ne82, 2, 99, 0, 64);
    EXPECT_FAIL(&b, "tensor 'w'", "tensor type 99");
    /* n_dims 0 and 5 */
    tb_free(&b);
    one_tensor(&b, 3, 0, NULL, ne82, 0, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "tensor 'w'", "n_dims is 0");
    {
        const uint64_t ne5[5] = {8, 1, 1, 1, 1};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne5, 5, GGUF_TT_F32, 0, 64);
        EXPECT_FAIL(&b, "tensor 'w'", "n_dims is 5");
    }
    /* zero dim */
    {
        const uint64_t ne[2] = {8, 0};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne, 2, GGUF_TT_F32, 0, 64);
        EXPECT_FAIL(&b, "tensor 'w'", "dimension 1 is 0");
    }
    /* dims whose product overflows: (2^42+1)^2 and 2^32 * 2^32 (wraps to 0) */
    {
        const uint64_t d = (1ULL << 42) + 1;
        const uint64_t ne[2] = {d, d};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne, 2, GGUF_TT_F32, 0, 64);
        EXPECT_FAIL(&b, "tensor 'w'", "overflow");
        const uint64_t ne2[2] = {1ULL << 32, 1ULL << 32};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne2, 2, GGUF_TT_F32, 0, 64);
        EXPECT_FAIL(&b, "tensor 'w'", "dimension 1");
        /* element count fits but the byte size overflows */
        const uint64_t ne3[2] = {1ULL << 31, 1ULL << 31};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne3, 2, GGUF_TT_F32, 0, 64);
        EXPECT_FAIL(&b, "tensor 'w'", "overflows");
        /* 2^42+1 rows of 4 in a 4-dim tensor: fits in counting, not in the file */
        const uint64_t ne4[4] = {4, d, 1, 1};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne4, 4, GGUF_TT_F32, 0, 64);
        EXPECT_FAIL(&b, "tensor 'w'", "past the end of the file");
    }
    /* ne[0] not a multiple of the block size */
    {
        const uint64_t ne[2] = {33, 2};
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne, 2, GGUF_TT_Q8_0, 0, 128);
        EXPECT_FAIL(&b, "tensor 'w'", "not a multiple of the Q8_0 block size 32");
    }
    /* offset out of the file, huge offset, misaligned offset */
    tb_free(&b);
    one_tensor(&b, 3, 0, NULL, ne82, 2, GGUF_TT_F32, 32, 64);
    EXPECT_FAIL(&b, "tensor 'w'", "past the end of the file");
    tb_free(&b);
    one_tensor(&b, 3, 0, NULL, ne82, 2, GGUF_TT_F32, UINT64_MAX - 31, 64);
    EXPECT_FAIL(&b, "tensor 'w'", "past the end of the file");
    tb_free(&b);
    one_tensor(&b, 3, 0, NULL, ne82, 2, GGUF_TT_F32, 8, 128);
    EXPECT_FAIL(&b, "tensor 'w'", "not a multiple of the alignment 32");
    /* data section start past the end: file ends right after the infos */
    tb_free(&b);
    tb_head(&b, 3, 1, 0); tb_tensor(&b, "w", 2, ne82, GGUF_TT_F32, 0);
    while (b.n % 32 == 0) tb_u8(&b, 0);
    EXPECT_FAIL(&b, "data section", NULL);

    /* overlapping tensors, duplicate tensor names */
    tb_free(&b);
    tb_head(&b, 3, 2, 0);
    tb_tensor(&b, "a", 2, ne82, GGUF_TT_F32, 0);
    tb_tensor(&b, "b", 2, ne82, GGUF_TT_F32, 32);
    tb_pad(&b, 32); tb_zeros(&b, 128);
    EXPECT_FAIL(&b, "'a'", "overlap");
    tb_free(&b);
    tb_head(&b, 3, 2, 0);
    tb_tensor(&b, "a", 2, ne82, GGUF_TT_F32, 0);
    tb_tensor(&b, "b", 2, ne82, GGUF_TT_F32, 64);
    tb_pad(&b, 32); tb_zeros(&b, 128);
    f = EXPECT_OK(&b);
    if (f) {
        const struct gguf_tensor *t = gguf_find_tensor(f, "b");
        CHECK(t && (const uint8_t *)t->data == b.p + f->data_offset + 64);
        CHECK(gguf_find_tensor(f, "c") == NULL);
        gguf_close(f);
    }
    tb_free(&b);
    tb_head(&b, 3, 2, 0);
    tb_tensor(&b, "blk.0.attn_q.weight", 2, ne82, GGUF_TT_F32, 0);
    tb_tensor(&b, "blk.0.attn_q.weight", 2, ne82, GGUF_TT_F32, 64);
    tb_pad(&b, 32); tb_zeros(&b, 128);
    EXPECT_FAIL(&b, "duplicate tensor name 'blk.0.attn_q.weight'", NULL);
    /* empty tensor name */
    tb_free(&b);
    tb_head(&b, 3, 1, 0); tb_tensor(&b, "", 2, ne82, GGUF_TT_F32, 0); tb_pad(&b, 32);
    tb_zeros(&b, 64);
    EXPECT_FAIL(&b, "tensor name length 0", NULL);

    /* duplicate key */
    tb_free(&b);
    one_tensor(&b, 3, 1, kv_dup, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "duplicate key 'general.architecture'", "first at offset 24");

    /* alignment: wrong type, 0, 48; 64 is fine */
    tb_free(&b);
    one_tensor(&b, 3, 1, kv_align_u64, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "general.alignment", "must be uint32, got uint64");
    tb_free(&b);
    one_tensor(&b, 3, 1, kv_align0, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "general.alignment", "power of two, got 0");
    tb_free(&b);
    one_tensor(&b, 3, 1, kv_align48, ne82, 2, GGUF_TT_F32, 0, 64);
    EXPECT_FAIL(&b, "general.alignment", "power of two, got 48");
    tb_free(&b);
    tb_head(&b, 3, 1, 1); tb_kv_u32(&b, "general.alignment", 64);
    tb_tensor(&b, "w", 2, ne82, GGUF_TT_F32, 0); tb_pad(&b, 64); tb_zeros(&b, 64);
    f = EXPECT_OK(&b);
    if (f) {
        CHECK_EQ_U64(f->alignment, 64);
        CHECK_EQ_U64(f->data_offset % 64, 0);
        gguf_close(f);
    }

    /* a file with no tensors and no kvs is valid */
    tb_free(&b);
    tb_head(&b, 3, 0, 0);
    f = EXPECT_OK(&b);
    if (f) { CHECK_EQ_U64(f->n_tensors, 0); gguf_close(f); }

    /* NULL/zero-size buffer */
    err[0] = 0;
    CHECK(gguf_open_buffer(NULL, 0, "nothing.gguf", &f, err, sizeof err) < 0 && f == NULL);
    CHECK_CONTAINS(err, "nothing.gguf");
    /* missing file */
    CHECK(gguf_open("/nonexistent/x.gguf", &f, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "/nonexistent/x.gguf: cannot open");
    CHECK(gguf_open("/tmp", &f, err, sizeof err) < 0 && f == NULL);
    CHECK_CONTAINS(err, "/tmp: not a regular file");
    {
        char path[128];
        snprintf(path, sizeof path, "/tmp/llmpin_hostile_%d.gguf", (int)getpid());
        FILE *fp = fopen(path, "wb");
        fputs("GGUF", fp);
        fclose(fp);
        CHECK(gguf_open(path, &f, err, sizeof err) < 0 && f == NULL);
        CHECK_CONTAINS(err, "file is 4 bytes, too small");
        /* a valid file on disk opens through mmap and owns its mapping */
        tb_free(&b);
        one_tensor(&b, 3, 0, NULL, ne82, 2, GGUF_TT_F32, 0, 64);
        fp = fopen(path, "wb");
        fwrite(b.p, 1, b.n, fp);
        fclose(fp);
        CHECK(gguf_open(path, &f, err, sizeof err) == 0 && f && f->fd >= 0);
        if (f) {
            CHECK(strcmp(f->path, path) == 0 && f->size == b.n);
            CHECK(memcmp(f->map, b.p, b.n) == 0);
            gguf_close(f);
        }
        unlink(path);
    }

    tb_free(&b);
    T_DONE();
}
