/*
 * gguf_sha256.c - whole-file SHA-256: known vectors, the two test models'
 * published hashes, progress reporting, hex validation.
 */
#include <unistd.h>

#include "localmodel/sha256.h"
#include "tests/gguf/tcheck.h"

struct prog {
    int calls;
    uint64_t last_done, total;
    int monotonic;
};

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
    struct prog *p = ud;
    if (done < p->last_done) p->monotonic = 0;
    p->calls++;
    p->last_done = done;
    p->total = total;
}

int main(void)
{
    char err[512], hex[65];
    CHECK(lm_sha256_buf("abc", 3, hex) == 0);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

    /* files: empty, "abc", >1 MiB */
    char path[128];
    snprintf(path, sizeof path, "/tmp/llmpin_sha_%d", (int)getpid());
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    CHECK(lm_sha256_file(path, hex, NULL, NULL, err, sizeof err) == 0);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    fp = fopen(path, "wb");
    fputs("abc", fp);
    fclose(fp);
    CHECK(lm_sha256_file(path, hex, NULL, NULL, err, sizeof err) == 0);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    /* 3 MiB + 5 of 'a': compare with the buffer hash */
    size_t n = (3u << 20) + 5;
    char *big = malloc(n);
    memset(big, 'a', n);
    fp = fopen(path, "wb");
    fwrite(big, 1, n, fp);
    fclose(fp);
    char hb[65];
    CHECK(lm_sha256_buf(big, n, hb) == 0);
    struct prog pr = {0, 0, 0, 1};
    CHECK(lm_sha256_file(path, hex, on_progress, &pr, err, sizeof err) == 0);
    CHECK(strcmp(hex, hb) == 0);
    CHECK(pr.calls == 4 && pr.last_done == n && pr.total == n && pr.monotonic);
    free(big);
    unlink(path);

    CHECK(lm_sha256_file(LLMPIN_MODELS_DIR "/stories260K.gguf", hex, NULL, NULL, err, sizeof err) == 0);
    CHECK(strcmp(hex, "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab") == 0);
    CHECK(lm_sha256_file(LLMPIN_MODELS_DIR "/llama-2-tiny-random.gguf", hex, NULL, NULL, err,
                         sizeof err) == 0);
    CHECK(strcmp(hex, "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb") == 0);

    CHECK(lm_sha256_file("/nonexistent/model.gguf", hex, NULL, NULL, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "/nonexistent/model.gguf: cannot open");
    CHECK(lm_sha256_file("/tmp", hex, NULL, NULL, err, sizeof err) < 0);
    CHECK_CONTAINS(err, "not a regular file");

    const char *up = "78C4953CF6EF0E0DD7FC67DAA5F89F5ECE8F5DE721D77E5EAD669645A508F9AB";
    CHECK(lm_sha256_hex_valid(up));
    CHECK(lm_sha256_hex_valid("78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab"));
    CHECK(!lm_sha256_hex_valid("78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9a"));
    CHECK(!lm_sha256_hex_valid("78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9abc"));
    CHECK(!lm_sha256_hex_valid("g8c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab"));
    CHECK(!lm_sha256_hex_valid("sha256:78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645"));
    CHECK(!lm_sha256_hex_valid(""));
    CHECK(!lm_sha256_hex_valid(NULL));
    CHECK(lm_sha256_hex_normalize(up, hex) == 0);
    CHECK(strcmp(hex, "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab") == 0);
    CHECK(lm_sha256_hex_normalize("xyz", hex) < 0);
    CHECK(lm_sha256_hex_equal(up, "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab"));
    CHECK(!lm_sha256_hex_equal(up, "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb"));
    CHECK(!lm_sha256_hex_equal("bad", "bad"));
    T_DONE();
}
