/*
 * text_vocab_vectors.c - llama.cpp's own tokenizer test vectors
 * (../shared/vocab, format in its README): every string of every supported
 * set must give exactly the expected ids (no BOS/EOS, special tokens not
 * parsed), and, for byte-level BPE, decoding the ids must give the string
 * back byte for byte.
 *
 * usage: text_vocab_vectors [DIR [SET...]]   (default: the shared folder and
 *        every set llmpin supports)
 *        text_vocab_vectors --files VOCAB.gguf STRINGS.inp IDS.out
 *        (the real vocabularies of tests/text/hf, same format)
 */
#include "localmodel/gguf.h"
#include "localmodel/tokenizer.h"
#include "tests/text/check.h"

#include <stdint.h>

static const char *const SETS[] = { "llama-spm", "gpt-2", "starcoder", "deepseek-llm", "bert-bge", NULL };

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

static void run_files(const char *gguf, const char *inpf, const char *outf, const char *set)
{
    char err[2048];
    const char *path = gguf;
    struct gguf_file *f = NULL;
    if (gguf_open(path, &f, err, sizeof err) < 0) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    if (!t) {
        CHECK_MSG(0, "%s", err);
        gguf_close(f);
        return;
    }
    size_t il, ol;
    char *inp = slurp(inpf, &il);
    char *out = slurp(outf, &ol);
    CHECK_MSG(inp && out, "%s: missing .inp/.out", set);
    if (!inp || !out) goto done;

    static const char SEP[] = "\n__ggml_vocab_test__\n";
    const size_t seplen = sizeof SEP - 1;
    int n_case = 0, n_ok = 0, n_rt = 0, n_rt_ok = 0;
    char *ip = inp, *op = out;
    int32_t *ids = malloc(1 << 20);
    char *dec = malloc(1 << 20);
    while (ip < inp + il) {
        char *e = memmem(ip, (size_t)(inp + il - ip), SEP, seplen);
        if (!e) break;
        size_t tl = (size_t)(e - ip);
        char *nl = strchr(op, '\n');
        if (!nl) {
            CHECK_MSG(0, "%s: .out has fewer lines than .inp has strings", set);
            break;
        }
        *nl = '\0';
        int32_t want[4096];
        int nw = 0;
        for (char *p = op, *q; nw < 4096; p = q) {
            long v = strtol(p, &q, 10);
            if (q == p) break;
            want[nw++] = (int32_t)v;
        }
        int n = lm_tok_encode(t, ip, tl, 0, 0, ids, (1 << 20) / 4);
        n_case++;
        int ok = n == nw && memcmp(ids, want, (size_t)nw * sizeof *ids) == 0;
        if (ok) {
            n_ok++;
        } else {
            fprintf(stderr, "%s case %d: \"%.*s\"\n  want:", set, n_case, (int)(tl > 80 ? 80 : tl), ip);
            for (int i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n  got: ");
            for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fputc('\n', stderr);
        }
        if (ok && lm_tok_kind(t) == LM_TOKENIZER_BPE) {
            /* byte-level BPE is lossless: the ids decode to the text */
            size_t dl = 0;
            for (int i = 0; i < n; i++) {
                size_t pl;
                const char *pc = lm_tok_piece(t, i ? ids[i - 1] : -1, ids[i], &pl);
                if (dl + pl < (1 << 20)) memcpy(dec + dl, pc, pl);
                dl += pl;
            }
            n_rt++;
            if (dl == tl && memcmp(dec, ip, tl) == 0) n_rt_ok++;
            else fprintf(stderr, "%s case %d: decodes to \"%.*s\"\n", set, n_case,
                         (int)(dl > 80 ? 80 : dl), dec);
        }
        ip = e + seplen;
        op = nl + 1;
    }
    free(ids);
    free(dec);
    printf("%-16s %d/%d strings exact", set, n_ok, n_case);
    if (n_rt) printf(", %d/%d decode back", n_rt_ok, n_rt);
    printf("\n");
    CHECK_MSG(n_case > 10, "%s: only %d strings read", set, n_case);
    CHECK_INT(n_ok, n_case);
    CHECK_INT(n_rt_ok, n_rt);
done:
    free(inp);
    free(out);
    lm_tok_free(t);
    gguf_close(f);
}

static void run_set(const char *dir, const char *set)
{
    char g[1024], i[1100], o[1100];
    snprintf(g, sizeof g, "%s/ggml-vocab-%s.gguf", dir, set);
    snprintf(i, sizeof i, "%s.inp", g);
    snprintf(o, sizeof o, "%s.out", g);
    run_files(g, i, o, set);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--files") == 0) {
        const char *base = strrchr(argv[2], '/');
        run_files(argv[2], argv[3], argv[4], base ? base + 1 : argv[2]);
        return failures ? 1 : 0;
    }
    const char *dir = argc > 1 ? argv[1] : LLMPIN_VOCAB_DIR;
    if (argc > 2) {
        for (int i = 2; i < argc; i++) run_set(dir, argv[i]);
    } else {
        for (int i = 0; SETS[i]; i++) run_set(dir, SETS[i]);
    }
    return failures ? 1 : 0;
}
