/*
 * gguf_tool.c - llmpin-ggufwrite end to end: it writes the requested shape,
 * and refuses bad arguments with exit status 2 and a message.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "localmodel/gguf.h"
#include "tests/gguf/tcheck.h"

static int run(const char *args, char *out, size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", GGUFWRITE, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    char out[2048], args[512], path[128], err[512];
    snprintf(path, sizeof path, "/tmp/llmpin_tool_%d.gguf", (int)getpid());
    snprintf(args, sizeof args,
             "--out %s --vocab 320 --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 "
             "--ctx 512 --type bf16 --tied --seed 9 --rope-base 500000", path);
    CHECK_MSG(run(args, out, sizeof out) == 0, "%s", out);
    struct gguf_file *f;
    if (gguf_open(path, &f, err, sizeof err) == 0) {
        uint64_t u;
        double d;
        CHECK(gguf_get_u64(f, "llama.block_count", &u, err, sizeof err) == 0 && u == 2);
        CHECK(gguf_get_u64(f, "llama.context_length", &u, err, sizeof err) == 0 && u == 512);
        CHECK(gguf_get_u64(f, "llama.feed_forward_length", &u, err, sizeof err) == 0 && u == 128);
        CHECK(gguf_get_u64(f, "general.file_type", &u, err, sizeof err) == 0 && u == 32);
        CHECK(gguf_get_f64(f, "llama.rope.freq_base", &d, err, sizeof err) == 0 && d == 500000.0);
        const struct gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
        CHECK(t && t->type == GGUF_TT_BF16 && t->ne[0] == 64 && t->ne[1] == 320);
        CHECK(gguf_find_tensor(f, "output.weight") == NULL);
        CHECK_EQ_U64(f->n_tensors, 1 + 2 * 9 + 1);
        gguf_close(f);
    } else {
        fprintf(stderr, "open: %s\n", err);
        t_failures++;
    }
    unlink(path);

    CHECK(run("--out /tmp/x.gguf --vocab 300", out, sizeof out) == 2);
    CHECK_CONTAINS(out, "are required");
    CHECK(run("--out /tmp/x.gguf --vocab 3x0 --dim 8 --layers 1 --heads 2 --ffn 8", out, sizeof out) == 2);
    CHECK_CONTAINS(out, "--vocab: '3x0' is not a number");
    CHECK(run("--type q4 --out /tmp/x.gguf", out, sizeof out) == 2);
    CHECK_CONTAINS(out, "--type: 'q4'");
    CHECK(run("--out /tmp/x.gguf --vocab 300 --dim 48 --layers 1 --heads 2 --ffn 64 --type q8_0",
              out, sizeof out) == 1);
    CHECK_CONTAINS(out, "Q8_0 needs dim (48)");
    CHECK(access("/tmp/x.gguf", F_OK) != 0);
    CHECK(run("--help", out, sizeof out) == 0);
    CHECK_CONTAINS(out, "usage: llmpin-ggufwrite");
    T_DONE();
}
