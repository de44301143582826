/*
 * text_tokenizer_models.c - the tokenizer on the real vocabularies of the
 * test models, loaded through the GGUF reader (lm_tok_from_gguf):
 *
 *   stories260K (512 pieces): the prompt ids and the generated text of the
 *   reference run in models/reference/ (decoding the reference ids with
 *   lm_tok_piece must give the reference text byte for byte);
 *   llama-2-tiny-random (the 32000-piece Llama 2 vocabulary): the reference
 *   prompt ids and text, ids of well-known Llama 2 tokenizations (llama.cpp's
 *   SPM test vectors), and decode(encode(x)) == x on many strings.
 *
 * Also: lm_tok_from_gguf error messages name the key, using GGUF files
 * written in memory.
 */
#include "localmodel/gguf.h"
#include "localmodel/tokenizer.h"
#include "tests/text/check.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    fclose(f);
    if (p) { p[n] = '\0'; if (len) *len = (size_t)n; }
    return p;
}

static struct lm_tokenizer *load(const char *name, struct gguf_file **gf)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", LLMPIN_MODELS_DIR, name);
    struct gguf_file *f = NULL;
    if (gguf_open(path, &f, err, sizeof err) < 0) {
        CHECK_MSG(0, "gguf_open %s: %s", path, err);
        return NULL;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    CHECK_MSG(t != NULL, "lm_tok_from_gguf %s: %s", path, err);
    *gf = f;
    return t;
}

static cJSON *load_json(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reference/%s", LLMPIN_MODELS_DIR, name);
    char *s = read_all(path, NULL);
    CHECK_MSG(s != NULL, "cannot read %s", path);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    CHECK_MSG(j != NULL, "cannot parse %s", path);
    return j;
}

static int json_ids(const cJSON *arr, int32_t *out, int cap)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (n < cap) out[n] = (int32_t)e->valueint;
        n++;
    }
    return n;
}

static void print_ids(const char *what, const int32_t *ids, int n)
{
    fprintf(stderr, "  %s [", what);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
    fprintf(stderr, "]\n");
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb)
{
    if (na != nb) return 0;
    for (int i = 0; i < na; i++) if (a[i] != b[i]) return 0;
    return 1;
}

/* Decode ids[0..n) with prev starting at `prev`; returns malloc'd text. */
static char *decode(const struct lm_tokenizer *t, int32_t prev, const int32_t *ids, int n, size_t *len)
{
    size_t cap = 64, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = lm_tok_piece(t, prev, ids[i], &l);
        while (o + l + 1 > cap) { cap *= 2; s = realloc(s, cap); }
        memcpy(s + o, p, l);
        o += l;
        prev = ids[i];
    }
    s[o] = '\0';
    *len = o;
    return s;
}

/* Check prompt ids and generated text of a reference file. */
static void check_reference(const struct lm_tokenizer *t, const char *json)
{
    cJSON *j = load_json(json);
    if (!j) return;
    const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
    int32_t want[64], got[64], gen[512];
    int nw = json_ids(cJSON_GetObjectItem(j, "prompt_tokens"), want, 64);
    int ng = lm_tok_encode(t, prompt, strlen(prompt), 1, 0, got, 64);
    CHECK_MSG(same_ids(got, ng, want, nw), "%s: prompt ids differ", json);
    if (!same_ids(got, ng, want, nw)) { print_ids("got", got, ng); print_ids("want", want, nw); }

    int n = json_ids(cJSON_GetObjectItem(j, "generated_tokens"), gen, 512);
    CHECK(n > 0 && n <= 512);
    size_t len;
    char *text = decode(t, want[nw - 1], gen, n, &len);
    const char *ref = cJSON_GetObjectItem(j, "generated_text")->valuestring;
    CHECK_MSG(len == strlen(ref) && memcmp(text, ref, len) == 0,
              "%s: decoded \"%s\", reference \"%s\"", json, text, ref);
    /* piece by piece too */
    const cJSON *pieces = cJSON_GetObjectItem(j, "generated_pieces"), *e;
    int i = 0;
    int32_t prev = want[nw - 1];
    cJSON_ArrayForEach(e, pieces) {
        if (i >= n) break;
        size_t l;
        const char *p = lm_tok_piece(t, prev, gen[i], &l);
        CHECK_MSG(l == strlen(e->valuestring) && memcmp(p, e->valuestring, l) == 0,
                  "%s: piece %d of id %d is \"%.*s\", reference \"%s\"", json, i, gen[i],
                  (int)l, p, e->valuestring);
        prev = gen[i++];
    }
    free(text);

    /* the whole prompt + generation decodes back to prompt + text */
    int32_t all[600];
    memcpy(all, want, (size_t)nw * sizeof *all);
    memcpy(all + nw, gen, (size_t)n * sizeof *all);
    char *full = decode(t, -1, all, nw + n, &len);
    size_t pl = strlen(prompt);
    CHECK_MSG(len == pl + strlen(ref) && memcmp(full, prompt, pl) == 0 &&
              memcmp(full + pl, ref, strlen(ref)) == 0, "%s: full decode \"%s\"", json, full);
    free(full);
    cJSON_Delete(j);
}

struct vec { const char *text; int n; int32_t ids[40]; };

/* Llama 2 tokenizations (no BOS), as in llama.cpp's test vectors for the
 * llama-spm vocabulary; the first id of text that starts with a space or a
 * non-mergeable character is the lone prefix "▁" (29871). */
static const struct vec llama2_vectors[] = {
    { "", 0, { 0 } },
    { " ", 1, { 259 } },
    { "  ", 1, { 1678 } },
    { "   ", 1, { 268 } },
    { "\t", 2, { 29871, 12 } },
    { "\n", 2, { 29871, 13 } },
    { "\t\n", 3, { 29871, 12, 13 } },
    { "Hello world", 2, { 15043, 3186 } },
    { " Hello world", 3, { 29871, 15043, 3186 } },
    { "Hello World", 2, { 15043, 2787 } },
    { " Hello World", 3, { 29871, 15043, 2787 } },
    { " Hello World!", 4, { 29871, 15043, 2787, 29991 } },
    { "Hello, world!", 4, { 15043, 29892, 3186, 29991 } },
    { " Hello, world!", 5, { 29871, 15043, 29892, 3186, 29991 } },
    { " this is \xf0\x9f\xa6\x99.cpp", 10, { 29871, 445, 338, 29871, 243, 162, 169, 156, 29889, 8223 } },
    { "w048 7tuijk dsdfhu", 11, { 281, 29900, 29946, 29947, 29871, 29955, 9161, 13535, 18031, 2176, 6905 } },
    { "\xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe \xd0\xbd\xd0\xb0 \xd0\x91\xd1\x8a\xd0\xbb\xd0\xb3\xd0\xb0\xd1\x80\xd1\x81\xd0\xba\xd0\xb8",
      6, { 1538, 4851, 665, 1386, 29713, 1305 } },
    { "Hello", 1, { 15043 } },
    { " Hello", 2, { 29871, 15043 } },
    { "  Hello", 2, { 259, 15043 } },
    { "   Hello", 2, { 1678, 15043 } },
    { "    Hello", 2, { 268, 15043 } },
    { "    Hello\n    Hello", 5, { 268, 15043, 13, 1678, 15043 } },
    { " (", 2, { 29871, 313 } },
    { "\n =", 3, { 29871, 13, 353 } },
    { "' era", 2, { 525, 3152 } },
    { "Hello, y'all! How are you \xf0\x9f\x98\x81 ?\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple"
      "\xe5\xb7\xa5\xe4\xbd\x9c" "1314151\xe5\xa4\xa9\xef\xbd\x9e", 30,
      { 15043, 29892, 343, 29915, 497, 29991, 1128, 526, 366, 29871, 243, 162, 155, 132, 1577,
        30672, 31522, 30505, 11548, 31041, 30732, 29896, 29941, 29896, 29946, 29896, 29945,
        29896, 30408, 30739 } },
};

static void check_roundtrip(const struct lm_tokenizer *t, const char *s, size_t n)
{
    int cap = (int)n + 8;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int k = lm_tok_encode(t, s, n, 1, 0, ids, cap);
    CHECK_MSG(k >= 1 && k <= cap, "encode returned %d for %zu bytes", k, n);
    if (k < 1 || k > cap) { free(ids); return; }
    for (int i = 0; i < k; i++) CHECK(ids[i] >= 0 && ids[i] < lm_tok_n_vocab(t));
    size_t len;
    char *back = decode(t, -1, ids, k, &len);
    CHECK_MSG(len == n && memcmp(back, s, n) == 0, "round trip of \"%.*s\" gave \"%s\"",
              (int)n, s, back);
    free(back);
    free(ids);
}

static void test_llama2(void)
{
    struct gguf_file *f = NULL;
    struct lm_tokenizer *t = load("llama-2-tiny-random.gguf", &f);
    if (!t) { gguf_close(f); return; }
    CHECK_INT(lm_tok_n_vocab(t), 32000);
    CHECK_INT(lm_tok_bos(t), 1);
    CHECK_INT(lm_tok_eos(t), 2);
    CHECK_INT(lm_tok_unk(t), 0);
    CHECK_INT(lm_tok_add_bos(t), 1);
    CHECK_INT(lm_tok_find(t, "<s>"), 1);
    CHECK_INT(lm_tok_find(t, "</s>"), 2);
    CHECK_INT(lm_tok_find(t, "<0x0A>"), 13);
    check_reference(t, "llama-2-tiny-random_greedy_nlc.json");

    for (size_t i = 0; i < sizeof llama2_vectors / sizeof llama2_vectors[0]; i++) {
        const struct vec *v = &llama2_vectors[i];
        int32_t got[64];
        int n = lm_tok_encode(t, v->text, strlen(v->text), 0, 0, got, 64);
        CHECK_MSG(same_ids(got, n, v->ids, v->n), "vector %zu \"%s\"", i, v->text);
        if (!same_ids(got, n, v->ids, v->n)) { print_ids("got", got, n); print_ids("want", v->ids, v->n); }
    }

    /* special tokens in text only with parse_special; a space prefix follows them */
    int32_t got[64];
    int n = lm_tok_encode(t, "<s>Hello</s>", 12, 0, 1, got, 64);
    CHECK(same_ids(got, n, (int32_t[]){ 1, 15043, 2 }, 3));
    n = lm_tok_encode(t, "<s>", 3, 0, 0, got, 64);
    CHECK(n > 1 && got[0] != 1);

    /* (U+2581 itself cannot round-trip: SentencePiece decodes it as a space) */
    static const char *rt[] = {
        "Once upon a time", " leading space", "trailing space ", "two  spaces", "   ",
        "\n", "\n\n\nnewlines\r\n", "tab\there", "caf\xc3\xa9", "\xc3\x85ngstr\xc3\xb6m",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",
        "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd emoji", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
        "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87",
        "code: for (int i = 0; i < n; i++) { x[i] = 0; }", "<s> literal </s> [INST]",
        "\x7f\x01\x02 control", "\xf4\x8f\xbf\xbf max code point",
        "\xff\xfe invalid \xc0\x80 bytes \xed\xa0\x80",
    };
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) check_roundtrip(t, rt[i], strlen(rt[i]));

    /* pseudo-random byte strings and long text */
    uint64_t x = 12345;
    char buf[300];
    for (int r = 0; r < 200; r++) {
        int len = 1 + r % 299;
        for (int i = 0; i < len; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = (char)(x >> 56);
            if (buf[i] == 0) buf[i] = ' ';
        }
        check_roundtrip(t, buf, (size_t)len);
    }
    const char *para = "The quick brown fox jumps over the lazy dog. ";
    size_t pl = strlen(para), big = 200000;
    char *long_text = malloc(big);
    for (size_t i = 0; i < big; i++) long_text[i] = para[i % pl];
    check_roundtrip(t, long_text, big);
    free(long_text);

    lm_tok_free(t);
    gguf_close(f);
}

static void test_stories(void)
{
    struct gguf_file *f = NULL;
    struct lm_tokenizer *t = load("stories260K.gguf", &f);
    if (!t) { gguf_close(f); return; }
    CHECK_INT(lm_tok_n_vocab(t), 512);
    int32_t got[16];
    int n = lm_tok_encode(t, "Once upon a time", 16, 1, 0, got, 16);
    CHECK(same_ids(got, n, (int32_t[]){ 1, 403, 407, 261, 378 }, 5));
    if (!same_ids(got, n, (int32_t[]){ 1, 403, 407, 261, 378 }, 5)) print_ids("got", got, n);
    check_reference(t, "stories260K_greedy_once_upon_a_time.json");
    { const char *s = "Lily's mom said, \"Don't worry!\"\n\xe2\x82\xac"; check_roundtrip(t, s, strlen(s)); }
    lm_tok_free(t);
    gguf_close(f);
}


/* ---- lm_tok_from_gguf errors, on GGUF files built in memory ----------------- */

struct gb { unsigned char b[4096]; size_t n; uint64_t nkv; };

static void gb_raw(struct gb *g, const void *p, size_t n) { memcpy(g->b + g->n, p, n); g->n += n; }
static void gb_u32(struct gb *g, uint32_t v) { gb_raw(g, &v, 4); }
static void gb_u64(struct gb *g, uint64_t v) { gb_raw(g, &v, 8); }
static void gb_str(struct gb *g, const char *s) { gb_u64(g, strlen(s)); gb_raw(g, s, strlen(s)); }
static void gb_key(struct gb *g, const char *k, uint32_t type) { gb_str(g, k); gb_u32(g, type); g->nkv++; }

static void gb_strs(struct gb *g, const char *k, const char *const *v, int n)
{
    gb_key(g, k, GGUF_T_ARRAY);
    gb_u32(g, GGUF_T_STRING);
    gb_u64(g, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_str(g, v[i]);
}

static void gb_arr(struct gb *g, const char *k, uint32_t et, const void *v, int n)
{
    gb_key(g, k, GGUF_T_ARRAY);
    gb_u32(g, et);
    gb_u64(g, (uint64_t)n);
    gb_raw(g, v, (size_t)n * 4);
}

/* Header + kv bytes, padded to 32; returns the file in out. */
static size_t gb_finish(struct gb *g, unsigned char *out)
{
    size_t n = 0;
    memcpy(out, "GGUF", 4); n += 4;
    uint32_t ver = 3; memcpy(out + n, &ver, 4); n += 4;
    uint64_t nt = 0; memcpy(out + n, &nt, 8); n += 8;
    memcpy(out + n, &g->nkv, 8); n += 8;
    memcpy(out + n, g->b, g->n); n += g->n;
    while (n % 32) out[n++] = 0;
    return n;
}

/* variant: 0 valid, 1 scores int32, 2 token_type short, 3 model gpt2,
 * 4 bos out of range, 5 no tokens, 6 tokens not strings, 7 NaN score,
 * 8 add_bos_token not a bool */
static struct lm_tokenizer *gguf_variant(int variant, char *err, size_t errlen)
{
    static const char *const toks[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81hi", "\xe2\x96\x81", "hi" };
    float scores[6] = { 0, 0, 0, -1, -2, -3 };
    int32_t types[6] = { 2, 3, 3, 1, 1, 1 };
    struct gb g = { .n = 0, .nkv = 0 };
    gb_key(&g, "tokenizer.ggml.model", GGUF_T_STRING);
    gb_str(&g, variant == 3 ? "rwkv" : "llama");
    if (variant == 6) gb_arr(&g, "tokenizer.ggml.tokens", GGUF_T_INT32, types, 6);
    else if (variant != 5) gb_strs(&g, "tokenizer.ggml.tokens", toks, 6);
    if (variant == 7) scores[4] = NAN;
    gb_arr(&g, "tokenizer.ggml.scores", variant == 1 ? GGUF_T_INT32 : GGUF_T_FLOAT32, scores, 6);
    gb_arr(&g, "tokenizer.ggml.token_type", GGUF_T_INT32, types, variant == 2 ? 5 : 6);
    gb_key(&g, "tokenizer.ggml.bos_token_id", GGUF_T_UINT32);
    gb_u32(&g, variant == 4 ? 7 : 1);
    if (variant == 8) {
        gb_key(&g, "tokenizer.ggml.add_bos_token", GGUF_T_STRING);
        gb_str(&g, "yes");
    }
    static unsigned char file[8192];
    size_t n = gb_finish(&g, file);
    struct gguf_file *f = NULL;
    if (gguf_open_buffer(file, n, "mem.gguf", &f, err, errlen) < 0) {
        CHECK_MSG(0, "variant %d: gguf_open_buffer: %s", variant, err);
        return NULL;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, errlen);
    gguf_close(f);
    return t;
}

static void test_gguf_errors(void)
{
    char err[512];
    struct lm_tokenizer *t = gguf_variant(0, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) {
        int32_t ids[8];
        int n = lm_tok_encode(t, "hi", 2, 1, 0, ids, 8);
        CHECK(same_ids(ids, n, (int32_t[]){ 1, 3 }, 2));
        CHECK_INT(lm_tok_eos(t), 2);            /* default */
        CHECK_INT(lm_tok_add_bos(t), 1);        /* default */
        lm_tok_free(t);
    }
    static const char *const want[] = {
        NULL,
        "key 'tokenizer.ggml.scores': expected an array of 6 float32",
        "key 'tokenizer.ggml.token_type': expected an array of 6 int32",
        "key 'tokenizer.ggml.model': tokenizer 'rwkv' is not supported",
        "key 'tokenizer.ggml.bos_token_id': id 7 is outside the vocabulary (6 tokens)",
        "key 'tokenizer.ggml.tokens' is missing",
        "key 'tokenizer.ggml.tokens': expected an array of strings",
        "token 4: score is not a finite number",
        "tokenizer.ggml.add_bos_token",
    };
    for (int v = 1; v <= 8; v++) {
        err[0] = '\0';
        t = gguf_variant(v, err, sizeof err);
        CHECK_MSG(t == NULL, "variant %d accepted", v);
        lm_tok_free(t);
        CHECK_CONTAINS(err, want[v]);
        if (v != 8) CHECK_CONTAINS(err, "mem.gguf");
    }
}

/* A small byte-level BPE vocabulary: the 256 GPT-2 byte characters, "hi",
 * "\xc4\xa0hi" (" hi"), <|endoftext|> and <|im_end|>. variant: 0 valid,
 * 1 unknown pre, 2 no merges, 3 a merge without a space, 4 merges not
 * strings, 5 a pre llama.cpp splits by hand, 6 no pre at all (default). */
static struct lm_tokenizer *bpe_variant(int variant, char *err, size_t errlen)
{
    static char store[260][8];
    const char *toks[260];
    int32_t types[260];
    int n = 0;
    for (int c = 0, extra = 0; c < 256; c++) {
        int cp = ((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae))
                     ? c : 256 + extra++;
        if (cp < 0x80) { store[n][0] = (char)cp; store[n][1] = 0; }
        else { store[n][0] = (char)(0xc0 | (cp >> 6)); store[n][1] = (char)(0x80 | (cp & 0x3f));
               store[n][2] = 0; }
        toks[n] = store[n];
        types[n++] = 1;
    }
    toks[n] = "hi"; types[n++] = 1;                    /* 256 */
    toks[n] = "\xc4\xa0hi"; types[n++] = 1;            /* 257 */
    toks[n] = "<|endoftext|>"; types[n++] = 3;         /* 258 */
    toks[n] = "<|im_end|>"; types[n++] = 3;            /* 259 */
    static const char *const merges[] = { "h i", "\xc4\xa0 hi" };
    static const char *const bad[] = { "h i", "hi" };
    struct gb g = { .n = 0, .nkv = 0 };
    static unsigned char big[65536];
    (void)big;
    gb_key(&g, "tokenizer.ggml.model", GGUF_T_STRING);
    gb_str(&g, "gpt2");
    if (variant != 6) {
        gb_key(&g, "tokenizer.ggml.pre", GGUF_T_STRING);
        gb_str(&g, variant == 1 ? "nonesuch" : variant == 5 ? "kimi-k2" : "gpt-2");
    }
    gb_strs(&g, "tokenizer.ggml.tokens", toks, n);
    gb_arr(&g, "tokenizer.ggml.token_type", GGUF_T_INT32, types, n);
    if (variant == 3) gb_strs(&g, "tokenizer.ggml.merges", bad, 2);
    else if (variant == 4) gb_arr(&g, "tokenizer.ggml.merges", GGUF_T_INT32, types, 2);
    else if (variant != 2) gb_strs(&g, "tokenizer.ggml.merges", merges, 2);
    gb_key(&g, "tokenizer.ggml.eos_token_id", GGUF_T_UINT32);
    gb_u32(&g, 258);
    static unsigned char file[16384];
    size_t len = gb_finish(&g, file);
    struct gguf_file *f = NULL;
    if (gguf_open_buffer(file, len, "bpe.gguf", &f, err, errlen) < 0) {
        CHECK_MSG(0, "variant %d: gguf_open_buffer: %s", variant, err);
        return NULL;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, errlen);
    gguf_close(f);
    return t;
}

static void test_bpe_gguf(void)
{
    char err[2048];
    for (int v = 0; v <= 6; v += 6) {
        struct lm_tokenizer *t = bpe_variant(v, err, sizeof err);
        CHECK_MSG(t != NULL, "%s", err);
        if (!t) continue;
        CHECK_INT(lm_tok_kind(t), LM_TOKENIZER_BPE);
        CHECK(strcmp(lm_tok_pre(t), v == 6 ? "default" : "gpt-2") == 0);
        CHECK_INT(lm_tok_add_bos(t), 0);
        int32_t ids[32];
        /* "hi hi!": words "hi", " hi", "!" -> 256 257 33 */
        int n = lm_tok_encode(t, "hi hi!", 6, 0, 0, ids, 32);
        CHECK(same_ids(ids, n, (int32_t[]){ 256, 257, 33 }, 3));
        /* typed by a user, the marker is text; from a template, the token */
        n = lm_tok_encode(t, "<|im_end|>", 10, 0, 0, ids, 32);
        CHECK(n == 10);
        n = lm_tok_encode(t, "hi<|im_end|>", 12, 0, 1, ids, 32);
        CHECK(same_ids(ids, n, (int32_t[]){ 256, 259 }, 2));
        CHECK(lm_tok_is_eog(t, 258));
        CHECK(lm_tok_is_eog(t, 259));          /* <|im_end|> ends a turn */
        CHECK(!lm_tok_is_eog(t, 256));
        size_t pl;
        const char *p = lm_tok_piece(t, 256, 257, &pl);
        CHECK_MEM(p, pl, " hi");
        p = lm_tok_piece(t, -1, 258, &pl);
        CHECK_INT(pl, 0);
        lm_tok_free(t);
    }
    static const char *const want[] = {
        NULL,
        "key 'tokenizer.ggml.pre': unknown pre-tokenizer 'nonesuch'; known: default llama3",
        "key 'tokenizer.ggml.merges' is missing",
        "key 'tokenizer.ggml.merges': merge 1 is 'hi', expected two pieces separated by a space",
        "key 'tokenizer.ggml.merges': expected an array of strings",
        "pre-tokenizer 'kimi-k2' is not supported yet",
    };
    for (int v = 1; v <= 5; v++) {
        err[0] = '\0';
        struct lm_tokenizer *t = bpe_variant(v, err, sizeof err);
        CHECK_MSG(t == NULL, "variant %d accepted", v);
        lm_tok_free(t);
        CHECK_CONTAINS(err, want[v]);
        CHECK_CONTAINS(err, "bpe.gguf");
    }
    CHECK_CONTAINS(err, "qwen2");                 /* the list names the known ones */
}

/* WordPiece on the real bert-bge vocabulary (../shared/vocab): what the
 * vectors of text_vocab_vectors do not show on their own */
static void test_wpm(void)
{
    char err[512];
    struct gguf_file *f = NULL;
    if (gguf_open(LLMPIN_MODELS_DIR "/../vocab/ggml-vocab-bert-bge.gguf", &f, err, sizeof err) < 0) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    gguf_close(f);
    CHECK_MSG(t != NULL, "%s", err);
    if (!t) return;
    CHECK_INT(lm_tok_kind(t), LM_TOKENIZER_WPM);
    CHECK(strcmp(lm_tok_kind_name(t), "bert") == 0);
    int cls = lm_tok_find(t, "[CLS]"), sep = lm_tok_find(t, "[SEP]"), unk = lm_tok_find(t, "[UNK]");
    CHECK(cls == 101 && sep == 102 && unk == 100);
    CHECK_INT(lm_tok_add_special(t), LM_TOK_ADD_BOS | LM_TOK_ADD_EOS);
    int hello = lm_tok_find(t, "\xe2\x96\x81hello"), world = lm_tok_find(t, "\xe2\x96\x81world");
    int bang = lm_tok_find(t, "\xe2\x96\x81!");
    CHECK(hello > 0 && world > 0 && bang > 0);
    int32_t ids[64];
    /* [CLS] text [SEP]; lower case; punctuation a word of its own; a
     * control character dropped; accents on precomposed letters gone */
    int n = lm_tok_encode(t, "Hello,\x01WORLD!", strlen("Hello,\x01WORLD!"), LM_TOK_ADD_BOS | LM_TOK_ADD_EOS, 0, ids, 64);
    int comma = lm_tok_find(t, "\xe2\x96\x81,");
    CHECK(same_ids(ids, n, (int32_t[]){ cls, hello, comma, world, bang, sep }, 6));
    n = lm_tok_encode(t, "h\xc3\xa9llo w\xc3\xb6rld", strlen("h\xc3\xa9llo w\xc3\xb6rld"), 0, 0, ids, 64);   /* héllo wörld */
    CHECK(same_ids(ids, n, (int32_t[]){ hello, world }, 2));
    /* each CJK ideograph is a word */
    int zhong = lm_tok_find(t, "\xe2\x96\x81\xe4\xb8\xad"), wen = lm_tok_find(t, "\xe2\x96\x81\xe6\x96\x87");
    n = lm_tok_encode(t, "\xe4\xb8\xad\xe6\x96\x87", strlen("\xe4\xb8\xad\xe6\x96\x87"), 0, 0, ids, 64);
    CHECK(zhong > 0 && wen > 0 && same_ids(ids, n, (int32_t[]){ zhong, wen }, 2));
    /* a word with a part no piece matches is one [UNK] */
    n = lm_tok_encode(t, "hello \xe2\x98\x83\xe2\x98\x83x world", strlen("hello \xe2\x98\x83\xe2\x98\x83x world"), 0, 0, ids, 64);
    CHECK(same_ids(ids, n, (int32_t[]){ hello, unk, world }, 3));
    /* typed by a user, [SEP] is text; from a template, the token */
    n = lm_tok_encode(t, "[SEP]", strlen("[SEP]"), 0, 0, ids, 64);
    CHECK(n == 3 && ids[0] != sep);
    n = lm_tok_encode(t, "[SEP]", strlen("[SEP]"), 0, 1, ids, 64);
    CHECK(same_ids(ids, n, (int32_t[]){ sep }, 1));
    /* broken UTF-8 is dropped, never a crash */
    n = lm_tok_encode(t, "hello\xff\xfe world", strlen("hello\xff\xfe world"), 0, 0, ids, 64);
    CHECK(same_ids(ids, n, (int32_t[]){ hello, world }, 2));
    size_t pl;
    const char *p = lm_tok_piece(t, hello, world, &pl);
    CHECK_MEM(p, pl, " world");
    lm_tok_free(t);
}

int main(void)
{
    test_gguf_errors();
    test_bpe_gguf();
    test_stories();
    test_llama2();
    test_wpm();
    DONE();
}
