/*
 * llamacpp_bench.c - llama.cpp's prompt and decode throughput on a GGUF file,
 * printed in the same columns as llmpin-bench-lm so the two engines can be
 * put side by side (bench/llamacpp/run.sh does that).
 *
 * Why a separate C program that dlopen()s libllama: llama.cpp is not a
 * dependency of llmpin and must not be vendored or linked into it; the
 * prebuilt CPU libraries that node-llama-cpp ships are the cheapest way to get
 * a known llama.cpp build, and driving them from C (not Node) keeps a Node
 * runtime thread from stealing a core during 2-thread runs on a 2-core box.
 *
 * ABI care. There is no llama.h here (the npm package ships none), so the few
 * functions used are declared by hand from llama.h of the bundled release.
 * The parameter structs (llama_model_params, llama_context_params) change
 * layout between releases, so this program never names their fields: it
 * takes the library's own *_default_params() result as an opaque blob larger
 * than any real version of the struct and hands it back unchanged. On x86-64
 * System V both structs are returned through a caller-provided buffer and
 * passed as the first stack argument, so an over-sized blob is read and
 * written correctly. The one field written is n_ctx at offset 0 (first field
 * in every release); it and the thread counts (set with llama_set_n_threads)
 * are checked afterwards with llama_n_ctx / llama_n_threads*. llama_batch
 * comes from llama_batch_get_one and is checked field by field before use.
 *
 * What is measured, per thread count T (n_threads = n_threads_batch = T):
 *   - warm-up: one token at position 0 (faults in the mmap'ed weights),
 *     then the KV cache is cleared;
 *   - pp: one llama_decode of a --prompt token prompt (random ids, fixed
 *     seed), logits for the last token only;
 *   - tg: --gen single-token decodes, each fed the argmax of the previous
 *     logits (greedy), argmax time included (it is ~10 us).
 * Everything else is llama.cpp's defaults (mmap, KV cache type, flash
 * attention "auto", weight repacking), i.e. what a llama.cpp user gets.
 *
 * usage: llamacpp_bench --lib PATH/libllama.so --model FILE.gguf
 *            [--threads 1,2] [--prompt 128] [--gen 128] [--ctx 512]
 *            [--label NAME] [--dump-logits FILE] [--dump-greedy FILE] [--verbose]
 *
 * --dump-logits writes the logits after the prompt (first thread count) as
 * n_vocab little-endian float32, for checking that another engine computes
 * the same thing on the same file. Prompt token i is
 *   s = s * 6364136223846793005 + 1442695040888963407  (s0 = 0x9E3779B97F4A7C15)
 *   tok[i] = 3 + (s >> 33) % (n_vocab - 3)
 * --dump-greedy writes the gen + 1 greedy token ids after the prompt (the
 * argmax of the prompt's logits, then of each decode step) as int32.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the slice of llama.h used here ------------------------------------ */

struct llama_model;
struct llama_context;
struct llama_vocab;
typedef void *llama_memory_t;

/* llama_batch: unchanged since the batch API was introduced; verified at run
 * time against what llama_batch_get_one returns. */
struct lc_batch {
    int32_t n_tokens;
    int32_t *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;
};

/* Opaque stand-in for llama_model_params / llama_context_params (see the
 * comment at the top). Real sizes are a few hundred bytes at most. */
struct lc_blob {
    unsigned char b[4096];
};

typedef void (*lc_log_fn)(int level, const char *text, void *ud);

struct lc_api {
    void (*backend_load_all_from_path)(const char *dir);
    void (*log_set)(lc_log_fn cb, void *ud);
    void (*backend_init)(void);
    void (*backend_free)(void);
    const char *(*print_system_info)(void);
    struct lc_blob (*model_default_params)(void);
    struct lc_blob (*context_default_params)(void);
    struct llama_model *(*model_load_from_file)(const char *path, struct lc_blob params);
    void (*model_free)(struct llama_model *m);
    struct llama_context *(*init_from_model)(struct llama_model *m, struct lc_blob params);
    void (*free_ctx)(struct llama_context *c);
    uint32_t (*n_ctx)(const struct llama_context *c);
    uint32_t (*n_batch)(const struct llama_context *c);
    uint32_t (*n_ubatch)(const struct llama_context *c);
    void (*set_n_threads)(struct llama_context *c, int32_t n, int32_t n_batch);
    int32_t (*n_threads)(struct llama_context *c);
    int32_t (*n_threads_batch)(struct llama_context *c);
    const struct llama_vocab *(*model_get_vocab)(const struct llama_model *m);
    int32_t (*vocab_n_tokens)(const struct llama_vocab *v);
    uint64_t (*model_n_params)(const struct llama_model *m);
    uint64_t (*model_size)(const struct llama_model *m);
    int32_t (*model_desc)(const struct llama_model *m, char *buf, size_t len);
    struct lc_batch (*batch_get_one)(int32_t *tokens, int32_t n);
    int32_t (*decode)(struct llama_context *c, struct lc_batch b);
    float *(*get_logits_ith)(struct llama_context *c, int32_t i);
    llama_memory_t (*get_memory)(const struct llama_context *c);
    void (*memory_clear)(llama_memory_t mem, bool data);
};

static int load_sym(void *h, const char *name, void *fp_out, size_t fp_size)
{
    void *p = dlsym(h, name);
    if (!p) {
        fprintf(stderr, "llamacpp_bench: symbol %s not found: %s\n", name, dlerror());
        return -1;
    }
    memcpy(fp_out, &p, fp_size);   /* object -> function pointer, POSIX-style */
    return 0;
}

#define SYM(field, name) (load_sym(h, name, &api->field, sizeof api->field) < 0)

static int load_api(void *h, struct lc_api *api)
{
    if (SYM(backend_load_all_from_path, "ggml_backend_load_all_from_path") ||
        SYM(log_set, "llama_log_set") || SYM(backend_init, "llama_backend_init") ||
        SYM(backend_free, "llama_backend_free") ||
        SYM(print_system_info, "llama_print_system_info") ||
        SYM(model_default_params, "llama_model_default_params") ||
        SYM(context_default_params, "llama_context_default_params") ||
        SYM(model_load_from_file, "llama_model_load_from_file") ||
        SYM(model_free, "llama_model_free") || SYM(init_from_model, "llama_init_from_model") ||
        SYM(free_ctx, "llama_free") || SYM(n_ctx, "llama_n_ctx") || SYM(n_batch, "llama_n_batch") ||
        SYM(n_ubatch, "llama_n_ubatch") || SYM(set_n_threads, "llama_set_n_threads") ||
        SYM(n_threads, "llama_n_threads") || SYM(n_threads_batch, "llama_n_threads_batch") ||
        SYM(model_get_vocab, "llama_model_get_vocab") ||
        SYM(vocab_n_tokens, "llama_vocab_n_tokens") ||
        SYM(model_n_params, "llama_model_n_params") || SYM(model_size, "llama_model_size") ||
        SYM(model_desc, "llama_model_desc") || SYM(batch_get_one, "llama_batch_get_one") ||
        SYM(decode, "llama_decode") || SYM(get_logits_ith, "llama_get_logits_ith") ||
        SYM(get_memory, "llama_get_memory") || SYM(memory_clear, "llama_memory_clear"))
        return -1;
    return 0;
}

/* ---- logging ------------------------------------------------------------ */

/* ggml_log_level: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continuation. */
struct log_state {
    int verbose;
    int last_level;  /* level of the previous line, for continuations */
};

/* Lines worth seeing even without --verbose: which CPU backend variant was
 * picked and the settings that differ from llmpin's engine. */
static int interesting(const char *t)
{
    static const char *const keys[] = { "loaded CPU backend", "flash_attn", "CPU_REPACK",
                                        "type_k", "mmap" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strstr(t, keys[i]))
            return 1;
    return 0;
}

static void log_cb(int level, const char *text, void *ud)
{
    struct log_state *s = ud;
    int cont = level == 5;
    if (cont)
        level = s->last_level;
    else
        s->last_level = level;
    if (s->verbose || level >= 3 || interesting(text))
        fprintf(stderr, "%s%s", cont ? "" : "llama.cpp: ", text);
}

/* ---- helpers ------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* 1 if `path` is mapped into this process (i.e. llama.cpp mmap'ed it). */
static int is_mapped(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    if (!f)
        return -1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    while (!found && fgets(line, sizeof line, f))
        if (strstr(line, base))
            found = 1;
    fclose(f);
    return found;
}

static int decode_or_fail(const struct lc_api *api, struct llama_context *c, int32_t *toks,
                          int32_t n, const char *what)
{
    struct lc_batch b = api->batch_get_one(toks, n);
    if (b.n_tokens != n || b.token != toks || b.embd || b.pos || b.logits) {
        fprintf(stderr, "llamacpp_bench: llama_batch_get_one returned an unexpected layout "
                        "(n_tokens %d, want %d): llama_batch changed in this release\n",
                b.n_tokens, n);
        return -1;
    }
    int32_t rc = api->decode(c, b);
    if (rc != 0) {
        fprintf(stderr, "llamacpp_bench: llama_decode (%s, %d tokens) returned %d\n", what, n, rc);
        return -1;
    }
    return 0;
}

struct result {
    double pp, tg;
};

static int run(const struct lc_api *api, struct llama_model *m, int threads, int n_prompt,
               int n_gen, uint32_t n_ctx, const char *dump, const char *dump_greedy,
               struct result *r)
{
    struct lc_blob cp = api->context_default_params();
    memcpy(cp.b, &n_ctx, sizeof n_ctx);   /* n_ctx: offset 0 in every release */
    struct llama_context *c = api->init_from_model(m, cp);
    if (!c) {
        fprintf(stderr, "llamacpp_bench: llama_init_from_model failed (n_ctx %u)\n", n_ctx);
        return -1;
    }
    api->set_n_threads(c, threads, threads);
    int rc = -1;
    if (api->n_ctx(c) != n_ctx || api->n_threads(c) != threads ||
        api->n_threads_batch(c) != threads) {
        fprintf(stderr, "llamacpp_bench: context has n_ctx %u threads %d/%d, wanted %u and %d\n",
                api->n_ctx(c), api->n_threads(c), api->n_threads_batch(c), n_ctx, threads);
        goto out;
    }
    if ((int)api->n_batch(c) < n_prompt || (int)api->n_ubatch(c) < n_prompt) {
        fprintf(stderr, "llamacpp_bench: n_batch %u / n_ubatch %u < prompt %d\n",
                api->n_batch(c), api->n_ubatch(c), n_prompt);
        goto out;
    }
    int32_t n_vocab = api->vocab_n_tokens(api->model_get_vocab(m));
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(n_prompt > 0 ? n_prompt : 1));
    if (!toks) {
        fprintf(stderr, "llamacpp_bench: out of memory\n");
        goto out;
    }

    /* warm-up: one token, then forget it */
    toks[0] = 1;
    if (decode_or_fail(api, c, toks, 1, "warm-up") < 0)
        goto out_toks;
    api->memory_clear(api->get_memory(c), true);

    /* prompt: random ids in [3, n_vocab) from a fixed-seed LCG */
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n_prompt; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = 3 + (int32_t)((s >> 33) % (uint64_t)(n_vocab - 3));
    }
    double t0 = now();
    if (decode_or_fail(api, c, toks, n_prompt, "prompt") < 0)
        goto out_toks;
    const float *logits = api->get_logits_ith(c, -1);
    if (!logits) {
        fprintf(stderr, "llamacpp_bench: no logits after the prompt\n");
        goto out_toks;
    }
    int32_t tok = argmax(logits, n_vocab);
    r->pp = n_prompt / (now() - t0);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)n_vocab, f) != (size_t)n_vocab ||
            fclose(f) != 0) {
            fprintf(stderr, "llamacpp_bench: cannot write %s\n", dump);
            goto out_toks;
        }
        fprintf(stderr, "llama.cpp: wrote %d logits to %s (argmax %d)\n", n_vocab, dump, tok);
    }

    /* greedy decode */
    int32_t *greedy = malloc(sizeof(int32_t) * (size_t)(n_gen + 1));
    if (!greedy) {
        fprintf(stderr, "llamacpp_bench: out of memory\n");
        goto out_toks;
    }
    greedy[0] = tok;
    t0 = now();
    for (int g = 0; g < n_gen; g++) {
        if (decode_or_fail(api, c, &tok, 1, "decode") < 0)
            goto out_toks;
        logits = api->get_logits_ith(c, -1);
        if (!logits) {
            fprintf(stderr, "llamacpp_bench: no logits at decode step %d\n", g);
            goto out_toks;
        }
        tok = argmax(logits, n_vocab);
        greedy[g + 1] = tok;
    }
    r->tg = n_gen / (now() - t0);
    rc = 0;
    if (dump_greedy) {
        FILE *f = fopen(dump_greedy, "wb");
        if (!f || fwrite(greedy, sizeof(int32_t), (size_t)n_gen + 1, f) != (size_t)n_gen + 1 ||
            fclose(f) != 0) {
            fprintf(stderr, "llamacpp_bench: cannot write %s\n", dump_greedy);
            rc = -1;
        }
    }
    free(greedy);
out_toks:
    free(toks);
out:
    api->free_ctx(c);
    return rc;
}

static const char *label_from_path(const char *path, char *buf, size_t len)
{
    static const char *const names[] = { "q8_0", "bf16", "f16", "f32" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char pat[16];
        snprintf(pat, sizeof pat, "-%s.gguf", names[i]);
        const char *p = strstr(path, pat);
        if (p && p[strlen(pat)] == '\0') {
            snprintf(buf, len, "%s", names[i]);
            return buf;
        }
    }
    snprintf(buf, len, "?");
    return buf;
}

int main(int argc, char **argv)
{
    const char *lib = NULL, *model = NULL, *threads = "1,2", *label = NULL, *dump = NULL;
    const char *dump_greedy = NULL;
    int n_prompt = 128, n_gen = 128, verbose = 0;
    long n_ctx = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lib") && i + 1 < argc) lib = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = argv[++i];
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) n_ctx = atol(argv[++i]);
        else if (!strcmp(argv[i], "--label") && i + 1 < argc) label = argv[++i];
        else if (!strcmp(argv[i], "--dump-logits") && i + 1 < argc) dump = argv[++i];
        else if (!strcmp(argv[i], "--dump-greedy") && i + 1 < argc) dump_greedy = argv[++i];
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else {
            lib = NULL;
            break;
        }
    }
    if (!lib || !model) {
        fprintf(stderr, "usage: %s --lib PATH/libllama.so --model FILE.gguf [--threads 1,2] "
                        "[--prompt 128] [--gen 128] [--ctx 512] [--label NAME] [--dump-logits FILE] "
                        "[--dump-greedy FILE] [--verbose]\n",
                argv[0]);
        return 2;
    }
    if (n_prompt < 1 || n_gen < 1 || n_ctx < 1 || n_prompt + n_gen + 1 > n_ctx) {
        fprintf(stderr, "llamacpp_bench: need prompt >= 1, gen >= 1, prompt + gen < ctx\n");
        return 2;
    }
    char labuf[16];
    if (!label)
        label = label_from_path(model, labuf, sizeof labuf);

    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "llamacpp_bench: dlopen %s: %s\n", lib, dlerror());
        return 1;
    }
    struct lc_api api;
    if (load_api(h, &api) < 0)
        return 1;
    struct log_state ls = { verbose, 2 };
    api.log_set(log_cb, &ls);

    /* The CPU backends are separate libraries next to libllama (one per ISA
     * level); ggml picks the best one this CPU supports. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", lib);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    api.backend_load_all_from_path(dir);
    api.backend_init();
    fprintf(stderr, "llama.cpp: system info: %s\n", api.print_system_info());

    struct llama_model *m = api.model_load_from_file(model, api.model_default_params());
    if (!m) {
        fprintf(stderr, "llamacpp_bench: llama.cpp could not load %s (reason in the "
                        "llama.cpp lines above; --verbose for the full log)\n", model);
        return 1;
    }
    char desc[256];
    api.model_desc(m, desc, sizeof desc);
    int mapped = is_mapped(model);
    fprintf(stderr, "llama.cpp: loaded %s: %s, %.1f M params, %.1f MB, vocab %d, file %s\n",
            model, desc, api.model_n_params(m) / 1e6, api.model_size(m) / 1e6,
            api.vocab_n_tokens(api.model_get_vocab(m)),
            mapped > 0 ? "mmap'ed" : mapped == 0 ? "not mmap'ed" : "mapping unknown");

    printf("%-5s %3s %10s %10s\n", "type", "thr", "pp tok/s", "tg tok/s");
    int rc = 0;
    for (const char *p = threads; *p;) {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p || t < 1 || t > 256 || (*end && *end != ',')) {
            fprintf(stderr, "llamacpp_bench: --threads: '%s' is not a list like 1,2\n", threads);
            rc = 2;
            break;
        }
        struct result r;
        if (run(&api, m, (int)t, n_prompt, n_gen, (uint32_t)n_ctx, dump, dump_greedy, &r) < 0) {
            rc = 1;
            break;
        }
        printf("%-5s %3ld %10.1f %10.2f\n", label, t, r.pp, r.tg);
        fflush(stdout);
        p = *end ? end + 1 : end;
        dump = NULL;
        dump_greedy = NULL;
    }
    api.model_free(m);
    api.backend_free();
    /* no dlclose: ggml's backend registry keeps its own handles until exit */
    return rc;
}
