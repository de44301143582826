/*
 * tokcli.c - `llmpin tokenize`: what a GGUF file's tokenizer makes of a text,
 * for users who want to see exactly what a local model is fed. Works on
 * vocabulary-only files (no tensors are read).
 *
 *   llmpin tokenize FILE [--special] [--no-bos] [--ids-only] TEXT|-
 *
 * Default output: one token per line, "id<TAB>piece" with the piece quoted and
 * escaped (\n, \t, \xNN for other control bytes; special tokens as their text).
 * --ids-only: the ids on one line, as [1, 2, 3].
 */
#include "localmodel/tokcli.h"
#include "localmodel/gguf.h"
#include "localmodel/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (64u << 20)

static void usage(FILE *o)
{
    fprintf(o, "usage: llmpin tokenize FILE.gguf [--special] [--no-bos] [--ids-only] TEXT|-\n"
               "  --special   text such as <|im_start|> becomes that special token\n"
               "  --no-bos    do not add the BOS (or EOS) token the vocabulary asks for\n"
               "  --ids-only  print only the ids, as [1, 2, 3]\n"
               "  -           read the text from standard input\n");
}

static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            if (cap >= MAX_INPUT) {
                free(b);
                fprintf(stderr, "llmpin tokenize: input over %u MiB\n", MAX_INPUT >> 20);
                return NULL;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
    }
    *len = n;
    return b;
}

static void print_escaped(const char *s, size_t n)
{
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\' || c == '\'') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else if (c < 0x80) putchar(c);
        else {
            /* a whole UTF-8 character as it is; a part of one (a byte-level
             * token can end inside a character) as \xNN */
            size_t l = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            int ok = l > 0 && i + l <= n;
            for (size_t k = 1; ok && k < l; k++) ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, l, stdout);
                i += l - 1;
            } else {
                printf("\\x%02x", c);
            }
        }
    }
    putchar('\'');
}

int lm_tokenize_cli(int argc, char **argv)
{
    const char *path = NULL, *text = NULL;
    int special = 0, no_bos = 0, ids_only = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--special")) special = 1;
        else if (!strcmp(a, "--no-bos")) no_bos = 1;
        else if (!strcmp(a, "--ids-only")) ids_only = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "llmpin tokenize: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!path) path = a;
        else if (!text) text = a;
        else {
            fprintf(stderr, "llmpin tokenize: one text only (quote it, or use - for stdin)\n");
            return 2;
        }
    }
    if (!path || !text) {
        usage(stderr);
        return 2;
    }
    char err[2048];
    struct gguf_file *f = NULL;
    if (gguf_open(path, &f, err, sizeof err) < 0) {
        fprintf(stderr, "llmpin tokenize: %s\n", err);
        return 1;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t) {
        fprintf(stderr, "llmpin tokenize: %s\n", err);
        return 1;
    }
    char *buf = NULL;
    size_t len;
    if (!strcmp(text, "-")) {
        buf = read_stdin(&len);
        if (!buf) {
            lm_tok_free(t);
            return 1;
        }
        text = buf;
    } else {
        len = strlen(text);
    }
    int add_bos = no_bos ? 0 : lm_tok_add_special(t);
    int n = lm_tok_encode(t, text, len, add_bos, special, NULL, 0);
    int32_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    int rc = 1;
    if (n < 0 || (n > 0 && !ids) || (n > 0 && lm_tok_encode(t, text, len, add_bos, special, ids, n) != n)) {
        fprintf(stderr, "llmpin tokenize: the text cannot be tokenized\n");
        goto done;
    }
    if (ids_only) {
        putchar('[');
        for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
        puts("]");
    } else {
        for (int i = 0; i < n; i++) {
            size_t pl;
            const char *p;
            int ty = lm_tok_type(t, ids[i]);
            if (ty == LM_TOK_CONTROL || ty == LM_TOK_UNKNOWN) p = lm_tok_text(t, ids[i], &pl);
            else p = lm_tok_piece(t, i ? ids[i - 1] : -1, ids[i], &pl);
            printf("%6d\t", ids[i]);
            print_escaped(p, pl);
            putchar('\n');
        }
    }
    fprintf(stderr, "%d tokens (%s tokenizer%s%s)\n", n, lm_tok_kind_name(t),
            *lm_tok_pre(t) ? ", pre-tokenizer " : "", lm_tok_pre(t));
    rc = 0;
done:
    free(ids);
    free(buf);
    lm_tok_free(t);
    return rc;
}
