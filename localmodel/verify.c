/*
 * verify.c - `llmpin verify`: describe a GGUF file and print how to pin it.
 *
 * The file is parsed first (every structure validated by gguf.c, which is
 * quick) so that a file that is not a usable GGUF fails before the long
 * hash. The hash is then computed over the whole file with read(2), which
 * for a multi-gigabyte model takes seconds: a progress bar goes to stderr
 * when it is a terminal. The report itself goes to `out` and is stable
 * plain text, one "label: value" per line, ending with a config snippet
 * whose path is JSON-escaped.
 */
#include "localmodel/verify.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "localmodel/chat.h"
#include "localmodel/gguf.h"
#include "localmodel/jinja.h"
#include "localmodel/model.h"
#include "localmodel/tokenizer.h"
#include "localmodel/sha256.h"

#define PROGRESS_MIN_BYTES (64ull << 20)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

struct bar {
    int last;                  /* last permille drawn, -1 = none */
};

static void draw_bar(void *ud, uint64_t done, uint64_t total)
{
    struct bar *b = ud;
    int pm = total ? (int)(done * 1000 / total) : 1000;
    if (pm == b->last) return;
    b->last = pm;
    char cells[41];
    int full = pm * 40 / 1000;
    for (int i = 0; i < 40; i++) cells[i] = i < full ? '#' : ' ';
    cells[40] = '\0';
    fprintf(stderr, "\rsha256 [%s] %3d%% %.1f/%.1f MiB", cells, pm / 10,
            (double)done / 1048576.0, (double)total / 1048576.0);
    fflush(stderr);
}

/* 1234567 -> "1,234,567" */
static const char *grouped(uint64_t v, char *buf, size_t n)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *human(uint64_t v, char *buf, size_t n)
{
    if (v >= 1000000000ull) snprintf(buf, n, "%.2fB", (double)v / 1e9);
    else if (v >= 1000000ull) snprintf(buf, n, "%.1fM", (double)v / 1e6);
    else if (v >= 1000ull) snprintf(buf, n, "%.1fK", (double)v / 1e3);
    else snprintf(buf, n, "%llu", (unsigned long long)v);
    return buf;
}

/* JSON string body (without quotes) of s. */
static void json_escaped(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
}

/* Print a string from the file, control characters escaped. */
static void print_str(FILE *out, struct gguf_str s, size_t max)
{
    size_t n = s.len < max ? (size_t)s.len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    if (s.len > max) fputs("...", out);
}

/* "812.0 MiB", "4.37 GiB" */
static const char *mib(uint64_t b, char *buf, size_t n)
{
    if (b < (1ull << 30))
        snprintf(buf, n, "%.1f MiB", (double)b / 1048576.0);
    else
        snprintf(buf, n, "%.2f GiB", (double)b / 1073741824.0);
    return buf;
}

int lm_verify_report(const char *path, int show_progress, FILE *out, char *err, size_t errlen)
{
    struct gguf_file *f;
    char buf[64], buf2[32];
    if (gguf_open(path, &f, err, errlen) < 0) return -1;

    char hex[65];
    struct bar b = {-1};
    int bar = show_progress && isatty(STDERR_FILENO) && f->size >= PROGRESS_MIN_BYTES;
    int rc = lm_sha256_file(path, hex, bar ? draw_bar : NULL, &b, err, errlen);
    if (bar) fprintf(stderr, "\r%60s\r", "");
    if (rc < 0) {
        gguf_close(f);
        return -1;
    }

    struct gguf_str arch = {"(unknown)", 9}, name = {NULL, 0}, tmpl = {NULL, 0};
    const struct gguf_kv *kv = gguf_find_kv(f, "general.architecture");
    if (kv && kv->type == GGUF_T_STRING) arch = kv->v.str;
    kv = gguf_find_kv(f, "general.name");
    if (kv && kv->type == GGUF_T_STRING) name = kv->v.str;
    kv = gguf_find_kv(f, "tokenizer.chat_template");
    int has_tmpl = kv && kv->type == GGUF_T_STRING;
    if (has_tmpl) tmpl = kv->v.str;

    uint64_t params = 0, data_bytes = 0;
    uint64_t counts[64] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        params += t->nelements;       /* < 2^63 each; the sum is bounded by the file size */
        data_bytes += t->nbytes;
        if ((uint32_t)t->type < 64) counts[t->type]++;
    }

    fprintf(out, "file:           %s\n", path);
    fprintf(out, "size:           %s bytes\n", grouped(f->size, buf, sizeof buf));
    fprintf(out, "sha256:         %s\n", hex);
    fprintf(out, "gguf version:   %u\n", f->version);
    fprintf(out, "architecture:   ");
    print_str(out, arch, 64);
    fputc('\n', out);
    if (name.ptr) {
        fprintf(out, "name:           ");
        print_str(out, name, 120);
        fputc('\n', out);
    }
    fprintf(out, "parameters:     %s (%s)\n", grouped(params, buf, sizeof buf),
            human(params, buf2, sizeof buf2));
    fprintf(out, "tensors:        %llu, %s bytes of data\n", (unsigned long long)f->n_tensors,
            grouped(data_bytes, buf, sizeof buf));
    fprintf(out, "tensor types:   ");
    int first = 1;
    for (uint32_t t = 0; t < 64; t++) {
        if (!counts[t]) continue;
        fprintf(out, "%s%s: %llu", first ? "" : ", ", gguf_ttype_name(t),
                (unsigned long long)counts[t]);
        first = 0;
    }
    fprintf(out, "%s\n", first ? "(none)" : "");

    /* <arch>.context_length, looked up with the architecture name */
    char key[128];
    uint64_t ctx = 0;
    int have_ctx = 0;
    if (arch.ptr && arch.len < 64) {
        snprintf(key, sizeof key, "%.*s.context_length", (int)arch.len, arch.ptr);
        have_ctx = gguf_get_u64(f, key, &ctx, NULL, 0) == 0;
    }
    if (have_ctx) fprintf(out, "context length: %llu\n", (unsigned long long)ctx);
    else fprintf(out, "context length: (not set)\n");

    /* the weights as the engine would load them, and the memory they need
     * with the default context (the model's, at most 4096) and 8 sequences */
    struct lm_model *m = NULL;
    char merr[512];
    if (lm_model_load(f, &m, merr, sizeof merr) == 0) {
        const struct lm_hparams *hp = &m->hp;
        fprintf(out, "engine:         loads (%s, %d layers, dim %d, heads %d/%d of %d, ffn %d%s)\n",
                lm_arch_name(hp->arch), hp->n_layers, hp->dim, hp->n_heads, hp->n_kv_heads, hp->head_dim,
                hp->ffn_dim, m->tied_output ? ", tied output" : "");
        int n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
        uint64_t kv = lm_kv_bytes(m, n_ctx, LM_KV_F16), mem = lm_mem_total();
        char b1[32], b2[32], b3[32], b4[32];
        fprintf(out, "memory:         weights %s mapped + KV cache %s per sequence of %d positions (F16); "
                "8 sequences: %s of this machine's %s\n", mib(data_bytes, b1, sizeof b1),
                mib(kv, b2, sizeof b2), n_ctx, mib(data_bytes + 8 * kv, b3, sizeof b3), mib(mem, b4, sizeof b4));
        lm_model_free(m);
    } else {
        fprintf(out, "engine:         refused: %s\n", merr);
    }

    /* the tokenizer as the engine would load it: a refusal shows here */
    kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (kv && kv->type == GGUF_T_ARRAY) {
        char terr[256];
        struct lm_tokenizer *tok = lm_tok_from_gguf(f, terr, sizeof terr);
        fprintf(out, "vocabulary:     %llu tokens", (unsigned long long)kv->arr_n);
        if (tok) {
            const char *pre = lm_tok_pre(tok);
            fprintf(out, " (tokenizer %s%s%s)\n", lm_tok_kind_name(tok), pre && *pre ? ", pre " : "",
                    pre && *pre ? pre : "");
            lm_tok_free(tok);
        } else {
            fprintf(out, "\ntokenizer:      refused: %s\n", terr);
        }
    } else {
        fprintf(out, "vocabulary:     (no tokenizer in file)\n");
    }

    /* the model's Jinja template renders prompts; the family is the fallback */
    enum lm_chat_family fam = lm_chat_detect(has_tmpl ? tmpl.ptr : NULL,
                                             has_tmpl ? (size_t)tmpl.len : 0);
    const char *fname = lm_chat_name(fam);
    if (!has_tmpl) {
        fprintf(out, "chat template:  %s (no tokenizer.chat_template in file)\n", fname);
    } else {
        char jerr[256];
        struct jinja_tmpl *jt = jinja_parse(tmpl.ptr, (size_t)tmpl.len, jerr, sizeof jerr);
        if (jt)
            fprintf(out, "chat template:  jinja, %s bytes (family %s)\n",
                    grouped((uint64_t)tmpl.len, buf, sizeof buf), fname);
        else
            fprintf(out, "chat template:  %s (the file's Jinja template does not parse: %s)\n", fname, jerr);
        jinja_free(jt);
    }
    /* named templates (tokenizer.chat_template.NAME): chat_template_name picks one */
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_str *k = &f->kv[i].key;
        static const char pfx[] = "tokenizer.chat_template.";
        if (k->len > sizeof pfx - 1 && memcmp(k->ptr, pfx, sizeof pfx - 1) == 0) {
            fprintf(out, "named template: ");
            print_str(out, (struct gguf_str){k->ptr + sizeof pfx - 1, k->len - (sizeof pfx - 1)}, 64);
            fputc('\n', out);
        }
    }

    /* Config snippet: key = basename without .gguf */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = strlen(base);
    if (blen > 5 && strcmp(base + blen - 5, ".gguf") == 0) blen -= 5;
    fprintf(out, "\nconfig:\n  \"local_models\": { \"");
    json_escaped(out, base, blen);
    fprintf(out, "\": { \"path\": \"");
    json_escaped(out, path, strlen(path));
    fprintf(out, "\", \"sha256\": \"%s\" } }\n", hex);

    gguf_close(f);
    if (ferror(out)) {
        seterr(err, errlen, "%s: writing the report failed", path);
        return -1;
    }
    return 0;
}
