/*
 * gguf_fuzzish.c - deterministic robustness tests for the reader, run in
 * ctest (under ASan in the sanitizer build):
 *
 *   gguf_fuzzish truncate   every proper prefix of two valid files must be
 *                           rejected with a message, never crash;
 *   gguf_fuzzish mutate N   N copies of a valid file with random bytes
 *                           overwritten (fixed seed) must either be rejected
 *                           or open with every pointer inside the buffer.
 *
 * Each case is copied into its own exact-size heap block, so ASan reports
 * any read past the end.
 */
#include <unistd.h>

#include "localmodel/gguf.h"
#include "localmodel/gguf_write.h"
#include "tests/gguf/tcheck.h"

static char err[1024];

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return p;
}

static uint8_t *small_model(size_t *len)
{
    struct lm_llama_shape s;
    memset(&s, 0, sizeof s);
    s.n_vocab = 262; s.dim = 8; s.n_layers = 1; s.n_heads = 2; s.n_kv_heads = 1;
    s.ffn_dim = 16; s.context_length = 64; s.type = GGUF_TT_F16; s.seed = 7;
    s.chat_template = "{{ bos_token }}[INST] {{ m }} [/INST]";
    char path[128];
    snprintf(path, sizeof path, "/tmp/llmpin_gguf_fuzzish_%d.gguf", (int)getpid());
    if (lm_write_random_llama(path, &s, err, sizeof err) < 0) {
        fprintf(stderr, "write: %s\n", err);
        return NULL;
    }
    uint8_t *p = slurp(path, len);
    unlink(path);
    return p;
}

static uint8_t *types_file(size_t *len)
{
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_add_u8(w, "a", 1);
    gguf_writer_add_i16(w, "b", -1);
    gguf_writer_add_f64(w, "c", 2.5);
    gguf_writer_add_bool(w, "d", 0);
    gguf_writer_add_str(w, "e", "text");
    const char *ss[] = {"x", "yy", ""};
    gguf_writer_add_arr_str(w, "f", ss, 3);
    const int64_t iv[2] = {5, -5};
    gguf_writer_add_arr(w, "g", GGUF_T_INT64, iv, 2);
    float data[64] = {0};
    const uint64_t ne[2] = {32, 2};
    gguf_writer_add_tensor(w, "t0", 2, ne, GGUF_TT_Q8_0, data);
    gguf_writer_add_tensor(w, "t1", 1, ne, GGUF_TT_F32, data);
    void *buf = NULL;
    if (gguf_writer_write_mem(w, &buf, len, NULL, NULL, err, sizeof err) < 0)
        fprintf(stderr, "write: %s\n", err);
    gguf_writer_free(w);
    return buf;
}

/* Touch everything an opened file hands out. */
static unsigned long touch(const struct gguf_file *f)
{
    unsigned long sum = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        for (uint64_t j = 0; j < kv->key.len; j++) sum += (uint8_t)kv->key.ptr[j];
        if (kv->type == GGUF_T_STRING)
            for (uint64_t j = 0; j < kv->v.str.len; j++) sum += (uint8_t)kv->v.str.ptr[j];
        if (kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING) {
            for (uint64_t e = 0; e < kv->arr_n; e++) {
                struct gguf_str s = gguf_arr_str(kv, e);
                for (uint64_t j = 0; j < s.len; j++) sum += (uint8_t)s.ptr[j];
            }
        }
        CHECK(gguf_find_kv(f, "tokenizer.ggml.tokens") == gguf_find_kv(f, "tokenizer.ggml.tokens"));
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        if (t->nbytes) sum += p[0] + p[t->nbytes - 1];
        for (uint64_t j = 0; j < t->name.len; j++) sum += (uint8_t)t->name.ptr[j];
        CHECK(p >= f->map + f->data_offset && p + t->nbytes <= f->map + f->size);
    }
    return sum;
}

static void truncate_all(const uint8_t *full, size_t len, const char *what)
{
    struct gguf_file *f = NULL;
    if (gguf_open_buffer(full, len, what, &f, err, sizeof err) < 0) {
        fprintf(stderr, "%s: the full file must open: %s\n", what, err);
        t_failures++;
        return;
    }
    touch(f);
    gguf_close(f);
    int quiet = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, full, n);
        err[0] = 0;
        int rc = gguf_open_buffer(n ? p : NULL, n, what, &f, err, sizeof err);
        if (rc == 0 || f || !strstr(err, what)) {
            if (quiet++ < 5)
                fprintf(stderr, "%s: prefix of %zu bytes: rc %d, message \"%s\"\n", what, n, rc, err);
            t_failures++;
            gguf_close(f);
        }
        free(p);
    }
    printf("%s: %zu prefixes rejected\n", what, len);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mutate(const uint8_t *full, size_t len, long iters)
{
    struct gguf_file *f = NULL;
    if (gguf_open_buffer(full, len, "m.gguf", &f, err, sizeof err) < 0) {
        fprintf(stderr, "mutate base: %s\n", err);
        t_failures++;
        return;
    }
    size_t head = (size_t)f->data_offset;
    gguf_close(f);
    static const uint64_t special[] = {0, 1, 0xff, 0x7fffffffffffffffULL, 0xffffffffffffffffULL,
                                       0x80000000ULL, (1ULL << 42) + 1, 1ULL << 32, 13, 9, 31, 48};
    long ok = 0, rejected = 0;
    unsigned long sink = 0;
    uint8_t *p = malloc(len);
    for (long it = 0; it < iters; it++) {
        memcpy(p, full, len);
        int nmut = 1 + (int)(rnd() % 4);
        for (int m = 0; m < nmut; m++) {
            size_t pos = rnd() % 4 ? (size_t)(rnd() % head) : (size_t)(rnd() % len);
            switch (rnd() % 4) {
            case 0: case 1:
                p[pos] = (uint8_t)rnd();
                break;
            case 2:
                p[pos] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            default: {
                uint64_t v = special[rnd() % (sizeof special / sizeof special[0])];
                size_t k = len - pos < 8 ? len - pos : 8;
                memcpy(p + pos, &v, k);
            }
            }
        }
        /* sometimes also cut the file short */
        size_t n = rnd() % 16 == 0 ? (size_t)(rnd() % len) : len;
        uint8_t *q = malloc(n ? n : 1);
        memcpy(q, p, n);
        err[0] = 0;
        if (gguf_open_buffer(q, n, "m.gguf", &f, err, sizeof err) == 0) {
            sink += touch(f);
            gguf_close(f);
            ok++;
        } else {
            if (!strstr(err, "m.gguf")) {
                fprintf(stderr, "iteration %ld: message lacks the file name: \"%s\"\n", it, err);
                t_failures++;
            }
            rejected++;
        }
        free(q);
    }
    free(p);
    printf("mutate: %ld iterations, %ld opened, %ld rejected (checksum %lu)\n", iters, ok,
           rejected, sink & 0xff);
    CHECK(rejected > 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gguf_fuzzish truncate | mutate N\n");
        return 2;
    }
    size_t len1 = 0, len2 = 0;
    uint8_t *m1 = small_model(&len1), *m2 = types_file(&len2);
    if (!m1 || !m2) return 1;
    if (!strcmp(argv[1], "truncate")) {
        truncate_all(m1, len1, "llama-small.gguf");
        truncate_all(m2, len2, "types.gguf");
    } else if (!strcmp(argv[1], "mutate") && argc > 2) {
        long n = atol(argv[2]);
        mutate(m1, len1, n / 2);
        mutate(m2, len2, n - n / 2);
    } else {
        return 2;
    }
    free(m1);
    free(m2);
    T_DONE();
}
