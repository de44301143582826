/*
 * tok_bench.c - tokenizer throughput: llmpin's lm_tok_encode vs llama.cpp's
 * llama_tokenize on the same GGUF file and the same text, in one process,
 * alternating rounds (bench/tok/README.md).
 *
 * usage: tok_bench --model FILE.gguf [--lib libllama.so] [--mb 1] [--rounds 5]
 *
 * The text: --mb MiB of a deterministic mix of English prose, source code,
 * numbers, CJK, Cyrillic, Arabic, emoji and whitespace runs (one piece of a
 * few hundred bytes drawn at a time). Both tokenizers get it in chunks of
 * 4 KiB-ish (cut at a newline), as a server tokenizes prompts, with no BOS and
 * special tokens not parsed; the ids are compared chunk by chunk (they must
 * be equal, or the figures mean nothing). llama.cpp needs a model with
 * weights (llama_model_load_from_file with default parameters): give a file
 * written by `llmpin-ggufwrite --vocab-from VOCAB.gguf`.
 *
 * Printed: MB/s of each per round, best of the rounds, ratio llmpin/llama.cpp.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "localmodel/gguf.h"
#include "localmodel/tokenizer.h"

struct llama_model;
struct llama_vocab;
struct lc_blob { unsigned char b[4096]; };   /* llama_model_params, opaque (see bench/llamacpp) */
typedef void (*lc_log_fn)(int level, const char *text, void *ud);

static struct {
    void (*log_set)(lc_log_fn, void *);
    void (*backend_init)(void);
    struct lc_blob (*model_default_params)(void);
    struct llama_model *(*load)(const char *, struct lc_blob);
    const struct llama_vocab *(*get_vocab)(const struct llama_model *);
    int32_t (*tokenize)(const struct llama_vocab *, const char *, int32_t, int32_t *, int32_t, bool, bool);
    void (*load_all_from_path)(const char *dir);
} lc;

static void quiet(int level, const char *text, void *ud) { (void)level; (void)text; (void)ud; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng >> 33) % n);
}

static const char *const PIECES[] = {
    "The quick brown fox jumps over the lazy dog, and then it rests under a tree. ",
    "In 2023, the model's accuracy fell from 84% to 51% between March and June. ",
    "Hello, world! How are you doing today? I'm fine, thanks; we'll see.\n",
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]\n\n",
    "for (size_t i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}\n",
    "{\"id\": 12345, \"name\": \"llmpin\", \"tags\": [\"proxy\", \"gguf\"], \"ok\": true}\n",
    "3.14159265358979 2.71828 1000000 42 7 123456789012 0x7fff_ffff 1e-9\n",
    "\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8\xe8\xbf\x99\xe9\x87\x8c\xe5\xb7\xa5\xe4\xbd\x9c\xef\xbc\x8c"
    "\xe4\xbb\x8a\xe5\xa4\xa9\xe5\xa4\xa9\xe6\xb0\x94\xe5\xbe\x88\xe5\xa5\xbd\xe3\x80\x82",
    "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\xe4\xb8\x96\xe7\x95\x8c "
    "\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94 ",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80! "
    "\xd0\xa1\xd1\x8a\xd0\xb5\xd1\x88\xd1\x8c \xd0\xb6\xd0\xb5 \xd0\xb5\xd1\x89\xd1\x91. ",
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xb9\xd8\xa7\xd9\x84\xd9\x85 ",
    "\xf0\x9f\xa6\x99 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x98\x80\xf0\x9f\x98\x83 ",
    "    indented line\n        deeper\n\n\n",
    "   spaces   between   words   ",
};
#define N_PIECES (sizeof PIECES / sizeof PIECES[0])

int main(int argc, char **argv)
{
    const char *model = NULL, *lib = NULL;
    double mb = 1.0;
    int rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--lib")) lib = argv[i + 1];
        else if (!strcmp(argv[i], "--mb")) mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
    }
    if (!model || mb <= 0 || rounds <= 0) {
        fprintf(stderr, "usage: tok_bench --model FILE.gguf [--lib libllama.so] [--mb 1] [--rounds 5]\n");
        return 2;
    }
    size_t len = (size_t)(mb * 1048576), n = 0;
    char *text = malloc(len + 512);
    while (n < len) {
        const char *p = PIECES[rnd(N_PIECES)];
        size_t l = strlen(p);
        memcpy(text + n, p, l);
        n += l;
    }
    len = n;
    /* chunks of >= 4 KiB, cut after a newline */
    size_t *cut = malloc((len / 4096 + 2) * sizeof *cut);
    int nc = 0;
    cut[nc++] = 0;
    for (size_t p = 4096; p < len;) {
        char *nl = memchr(text + p, '\n', len - p);
        if (!nl) break;
        p = (size_t)(nl - text) + 1;
        cut[nc++] = p;
        p += 4096;
    }
    cut[nc] = len;

    char err[2048];
    struct gguf_file *f;
    if (gguf_open(model, &f, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 1; }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    if (!t) { fprintf(stderr, "%s\n", err); return 1; }

    const struct llama_vocab *lv = NULL;
    if (lib) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "dlopen %s: %s\n", lib, dlerror()); return 1; }
        *(void **)&lc.log_set = dlsym(h, "llama_log_set");
        *(void **)&lc.backend_init = dlsym(h, "llama_backend_init");
        *(void **)&lc.model_default_params = dlsym(h, "llama_model_default_params");
        *(void **)&lc.load = dlsym(h, "llama_model_load_from_file");
        *(void **)&lc.get_vocab = dlsym(h, "llama_model_get_vocab");
        *(void **)&lc.tokenize = dlsym(h, "llama_tokenize");
        *(void **)&lc.load_all_from_path = dlsym(h, "ggml_backend_load_all_from_path");
        if (!lc.log_set || !lc.backend_init || !lc.model_default_params || !lc.load ||
            !lc.get_vocab || !lc.tokenize) {
            fprintf(stderr, "%s: llama.cpp symbols missing\n", lib);
            return 1;
        }
        lc.log_set(quiet, NULL);
        /* the CPU backends are libraries next to libllama */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", lib);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        if (lc.load_all_from_path) lc.load_all_from_path(dir);
        lc.backend_init();
        struct llama_model *m = lc.load(model, lc.model_default_params());
        if (!m) { fprintf(stderr, "llama.cpp cannot load %s\n", model); return 1; }
        lv = lc.get_vocab(m);
    }

    int32_t *a = malloc(8192 * sizeof *a * 4), *b = malloc(8192 * sizeof *b * 4);
    const int cap = 8192 * 4;
    /* agreement first */
    long long ntok = 0;
    int mismatch = 0;
    for (int c = 0; c < nc; c++) {
        int la = lm_tok_encode(t, text + cut[c], cut[c + 1] - cut[c], 0, 0, a, cap);
        ntok += la;
        if (lv) {
            int lb = lc.tokenize(lv, text + cut[c], (int32_t)(cut[c + 1] - cut[c]), b, cap, false, false);
            if (la != lb || memcmp(a, b, (size_t)la * sizeof *a) != 0) mismatch++;
        }
    }
    printf("text: %.2f MiB in %d chunks, %lld tokens (%.2f bytes/token), %s tokenizer %s\n",
           len / 1048576.0, nc, ntok, (double)len / (double)ntok, lm_tok_kind_name(t), lm_tok_pre(t));
    if (lv) printf("ids equal to llama.cpp's in %d of %d chunks\n", nc - mismatch, nc);
    double best_a = 0, best_b = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int c = 0; c < nc; c++) lm_tok_encode(t, text + cut[c], cut[c + 1] - cut[c], 0, 0, a, cap);
        double ta = now() - t0, ra = len / 1e6 / ta;
        if (ra > best_a) best_a = ra;
        printf("round %d: llmpin %7.2f MB/s", r + 1, ra);
        if (lv) {
            t0 = now();
            for (int c = 0; c < nc; c++)
                lc.tokenize(lv, text + cut[c], (int32_t)(cut[c + 1] - cut[c]), b, cap, false, false);
            double tb = now() - t0, rb = len / 1e6 / tb;
            if (rb > best_b) best_b = rb;
            printf("   llama.cpp %7.2f MB/s", rb);
        }
        printf("\n");
    }
    printf("best: llmpin %.2f MB/s", best_a);
    if (lv) printf(", llama.cpp %.2f MB/s, ratio %.2fx", best_b, best_a / best_b);
    printf("\n");
    lm_tok_free(t);
    gguf_close(f);
    free(text);
    free(cut);
    free(a);
    free(b);
    return mismatch ? 1 : 0;
}
