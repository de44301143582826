/*
 * tok_bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2"): GPT-2, Llama 3,
 * Qwen 2/2.5/3, SmolLM, DeepSeek, StarCoder, Falcon, MPT, OLMo, Mistral
 * Nemo (tekken), Phi-4 and GPT-4o style vocabularies.
 *
 * Encoding one run of plain text (special tokens are split out before, by
 * tokenizer.c):
 *
 *   1. pre-tokenize: the family's patterns, in order, cut the text into
 *      words. Each pattern is applied inside every piece the previous ones
 *      left; both its matches and the text between them become pieces (the
 *      "isolated" split of Hugging Face tokenizers, and what llama.cpp does).
 *      A lookahead at the end of a piece sees the end of the piece.
 *   2. byte-encode each word: every byte becomes one character of the GPT-2
 *      byte->unicode table (printable Latin-1 maps to itself, the other 68
 *      bytes to U+0100..U+0143), so a word of n bytes starts as n symbols;
 *   3. merge: repeatedly join the adjacent pair with the lowest merge rank
 *      (the position of "left right" in tokenizer.ggml.merges; ties: the
 *      leftmost pair). A binary heap holds the candidates; entries made stale
 *      by an earlier merge are recognised by their size and skipped;
 *   4. each symbol is its vocabulary id; a symbol that is not in the
 *      vocabulary falls back to the ids of its single bytes, as llama.cpp does.
 *
 * Families that set ignore_merges (Llama 3, tekken...) emit a whole word
 * that is itself a token without merging, which is what their Hugging Face
 * tokenizers do.
 *
 * Why PCRE2 for the patterns: the families' split rules are regular
 * expressions over Unicode categories (\p{L}, \p{N}, \p{M}, \p{P}, \p{S}),
 * some with lookaheads; PCRE2 runs them exactly as written, with the Unicode
 * tables of the system library, and its JIT compiles each to machine code.
 * The patterns are the ones llama.cpp uses (its rewrites of the
 * tokenizer.json patterns, e.g. (?i:'s) as '[sS], and its ASCII-case
 * lookaheads for the tekken / GPT-4o letter-case rules), so the same text
 * splits the same way in both.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "localmodel/tok_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pre-tokenizers --------------------------------------------------- */

enum {
    PRE_IGNORE_MERGES = 1 << 0,
    PRE_ADD_BOS = 1 << 1,
    PRE_NO_BOS = 1 << 2,
    PRE_RAW_UTF8 = 1 << 3,       /* no byte encoding; spaces become U+2581 */
    PRE_KEEP_SPACES = 1 << 4,    /* clean_up_tokenization_spaces off */
    PRE_NEWLINE_WHOLE = 1 << 5,  /* a run of newlines that is a token stays one */
};

#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define GPT2_RX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define LLAMA3_RX CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_RX CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define BLOOM_RX " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"
#define UPPER_THEN_LOWER \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
#define UPPER_RUN \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
#define CASED_L "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define LOWER_L "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

static const char *const RX_DEFAULT[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RX, "\\p{N}+", "[0-9][0-9][0-9]", NULL };
static const char *const RX_LLAMA3[] = { LLAMA3_RX, NULL };
static const char *const RX_JAIS2[] = {
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|"
    "\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}", NULL };
/* deepseek-llm: Latin, Greek, Cyrillic, Armenian, Georgian... letter ranges */
static const char *const RX_DEEPSEEK_LLM[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf"
    "\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf"
    "\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81"
    "\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5"
    "\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab"
    "\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d"
    "\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b"
    "\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe"
    "\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b"
    "\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87"
    "\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8"
    "\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf"
    "\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb"
    "\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad"
    "\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e"
    "\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba"
    "\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93"
    "\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2"
    "\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f"
    "\xe3\x80\x80-\xe3\x80\x82]+",
    "\\s+$",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}+",
    NULL };
static const char *const RX_DEEPSEEK3[] = {
    "\\p{N}{1,3}",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const RX_YOUTU[] = {
    "[\xea\xb0\x80-\xed\x9e\xa3\xe3\x84\xb1-\xe3\x86\x8e]+|[\xef\xbc\x81\xe2\x80\xa6\xe2\x80\x9c\xe2\x80\x9d"
    "\xe2\x80\x98\xe2\x80\x99\xe2\x80\x94\xef\xbc\x9a\xef\xbc\x9b\xef\xbc\x8c\xe3\x80\x81-\xe3\x80\xbf"
    "\xef\xb8\xb0-\xef\xb9\x8f]+|[\xe3\x84\x85-\xe3\x84\xaf]+|[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-"
    "\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[^\\r\\n\\p{L}\\p{N}]?" CASED_L "*" LOWER_L "+" CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?" CASED_L "+"
    LOWER_L "*" CONTRACTIONS "?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const RX_DEEPSEEK_CODER[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+", "\\p{N}", NULL };
static const char *const RX_FALCON[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RX, "[0-9][0-9][0-9]", NULL };
static const char *const RX_STARCODER[] = { "\\p{N}", GPT2_RX, NULL };
static const char *const RX_GPT2[] = { GPT2_RX, NULL };
static const char *const RX_QWEN2[] = { QWEN2_RX, NULL };
static const char *const RX_QWEN35[] = {
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const RX_BLOOM[] = { BLOOM_RX, NULL };
static const char *const RX_VIKING[] = { BLOOM_RX, "\\p{N}", NULL };
static const char *const RX_TEKKEN[] = {
    UPPER_THEN_LOWER "|" UPPER_RUN "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const RX_CHAMELEON[] = {
    "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]", GPT2_RX, NULL };
static const char *const RX_GPT4O[] = {
    UPPER_THEN_LOWER CONTRACTIONS "?|" UPPER_RUN CONTRACTIONS "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const RX_GRANITE_EMB[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+" CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*" CONTRACTIONS
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL };
static const char *const RX_TINY_AYA[] = {
    "\\d{1,3}(?=(?:\\d{3})*\\b)",
    "[^\\r\\n\\p{L}\\p{N}]?" CASED_L "*" LOWER_L "+" CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?" CASED_L "+"
    LOWER_L "*" CONTRACTIONS "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const RX_SUPERBPE[] = { "\\p{N}+", "(?=(\\d{3})+(?!\\d))", NULL };
static const char *const RX_BAILING[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+", NULL };
static const char *const RX_SEED_CODER[] = {
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+", NULL };
static const char *const RX_LAGUNA[] = { "[^\\n]+|[\\n]+", QWEN2_RX, NULL };
static const char *const RX_EXAONE_MOE[] = {
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+", NULL };
static const char *const RX_NEWLINES[] = { "[^\\n]+|[\\n]+", NULL };
static const char *const RX_MINICPM5[] = {
    "\\p{N}{1,3}",
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+", NULL };

struct pre_def {
    const char *names;            /* the tokenizer.ggml.pre values, space-separated */
    const char *const *rx;
    unsigned flags;
};

#define KS PRE_KEEP_SPACES
static const struct pre_def PRES[] = {
    { "default", RX_DEFAULT, 0 },
    { "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano", RX_LLAMA3,
      PRE_IGNORE_MERGES | PRE_ADD_BOS },
    { "dbrx smaug-bpe", RX_LLAMA3, 0 },
    { "glm4 chatglm-bpe", RX_LLAMA3, PRE_NO_BOS },
    { "jais-2", RX_JAIS2, 0 },
    { "deepseek-llm", RX_DEEPSEEK_LLM, KS },
    { "deepseek-coder", RX_DEEPSEEK_CODER, KS },
    { "deepseek-v3 hunyuan-dense joyai-llm", RX_DEEPSEEK3, KS },
    { "youtu", RX_YOUTU, KS | PRE_IGNORE_MERGES },
    { "falcon", RX_FALCON, 0 },
    { "starcoder refact codeshell exaone minerva-7b mellum2", RX_STARCODER, 0 },
    { "command-r smollm", RX_STARCODER, KS },
    { "gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert "
      "exaone4 mpt olmo jais jina-v1-en jina-v2-code roberta-bpe", RX_GPT2, 0 },
    { "trillion granite-docling", RX_GPT2, KS },
    { "qwen2 deepseek-r1-qwen kormo f2llmv2 hunyuan solar-open grok-2", RX_QWEN2, KS },
    { "megrez stablelm2", RX_QWEN2, 0 },
    { "qwen35", RX_QWEN35, KS },
    { "bloom gpt3-finnish", RX_BLOOM, 0 },
    { "poro-chat", RX_BLOOM, KS },
    { "viking", RX_VIKING, KS },
    { "tekken", RX_TEKKEN, KS | PRE_IGNORE_MERGES | PRE_ADD_BOS },
    { "chameleon", RX_CHAMELEON, KS | PRE_ADD_BOS },
    { "gpt-4o llama4 kanana2 talkie minimax-m2", RX_GPT4O, KS },
    { "granite-embed-multi-97m", RX_GRANITE_EMB, KS | PRE_IGNORE_MERGES },
    { "tiny_aya cohere2moe", RX_TINY_AYA, KS },
    { "superbpe", RX_SUPERBPE, KS },
    { "bailingmoe bailingmoe2 llada-moe", RX_BAILING, KS },
    { "seed-coder", RX_SEED_CODER, KS },
    { "laguna", RX_LAGUNA, KS },
    { "exaone-moe", RX_EXAONE_MOE, 0 },
    { "granite-embed-multi-311m", RX_NEWLINES, PRE_RAW_UTF8 | PRE_NEWLINE_WHOLE },
    { "sarvam-moe", RX_NEWLINES, KS | PRE_RAW_UTF8 },
    { "minicpm5", RX_MINICPM5, PRE_IGNORE_MERGES },
};
#undef KS
#define N_PRES (sizeof PRES / sizeof PRES[0])

/* llama.cpp accepts these too, with hand-written splitters rather than
 * patterns; llmpin does not have them yet. */
static const char *const NOT_YET = "kimi-k2 afmoe";

const char *lm_bpe_known(void)
{
    static char buf[1400];
    if (!buf[0]) {
        size_t p = 0;
        for (size_t i = 0; i < N_PRES; i++) {
            int w = snprintf(buf + p, sizeof buf - p, "%s%s", i ? " " : "", PRES[i].names);
            if (w < 0 || (size_t)w >= sizeof buf - p) break;
            p += (size_t)w;
        }
    }
    return buf;
}

/* ---- state ---------------------------------------------------------------- */

struct merge {
    uint32_t off;      /* "left right" in mtext */
    uint32_t llen;     /* bytes of left */
    uint32_t len;      /* bytes of the whole string */
    int32_t rank;
};

struct lm_bpe {
    unsigned flags;
    int n_rx;
    pcre2_code *rx[8];
    char *mtext;
    struct merge *m;
    size_t n_merges;
    uint32_t *mslot;   /* merge index + 1, 0 = empty */
    size_t mmask;
    char enc[256][2];  /* byte -> UTF-8 of its GPT-2 character */
    uint8_t enc_len[256];
    int16_t dec[0x144];/* codepoint -> byte, -1 = none */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int name_in(const char *list, const char *name, size_t n)
{
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

void lm_bpe_free(struct lm_bpe *b)
{
    if (!b) return;
    for (int i = 0; i < b->n_rx; i++) pcre2_code_free(b->rx[i]);
    free(b->mtext);
    free(b->m);
    free(b->mslot);
    free(b);
}

struct lm_bpe *lm_bpe_new(const char *pre, size_t pre_len, struct lm_bpe_pre_info *info,
                          char *err, size_t errlen)
{
    const struct pre_def *d = NULL;
    for (size_t i = 0; i < N_PRES && !d; i++)
        if (name_in(PRES[i].names, pre, pre_len)) d = &PRES[i];
    if (!d) {
        if (name_in(NOT_YET, pre, pre_len))
            set_err(err, errlen, "pre-tokenizer '%.*s' is not supported yet (its split rule is not "
                    "a pattern); known: %s", (int)pre_len, pre, lm_bpe_known());
        else
            set_err(err, errlen, "unknown pre-tokenizer '%.*s'; known: %s",
                    (int)(pre_len > 64 ? 64 : pre_len), pre, lm_bpe_known());
        return NULL;
    }
    struct lm_bpe *b = calloc(1, sizeof *b);
    if (!b) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    b->flags = d->flags;
    for (int i = 0; d->rx[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)d->rx[i], PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY |
                                      PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
        if (!c) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            set_err(err, errlen, "pre-tokenizer '%.*s': pattern %d does not compile at %zu: %s",
                    (int)pre_len, pre, i, (size_t)eo, (const char *)msg);
            lm_bpe_free(b);
            return NULL;
        }
        pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);   /* interpreted if JIT is unavailable */
        b->rx[b->n_rx++] = c;
    }
    /* GPT-2's bytes_to_unicode */
    for (int i = 0; i < 0x144; i++) b->dec[i] = -1;
    int extra = 0;
    for (int c = 0; c < 256; c++) {
        int cp = ((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))
                     ? c : 256 + extra++;
        if (cp < 0x80) {
            b->enc[c][0] = (char)cp;
            b->enc_len[c] = 1;
        } else {
            b->enc[c][0] = (char)(0xc0 | (cp >> 6));
            b->enc[c][1] = (char)(0x80 | (cp & 0x3f));
            b->enc_len[c] = 2;
        }
        b->dec[cp] = (int16_t)c;
    }
    if (info) {
        info->add_bos = (d->flags & PRE_ADD_BOS) != 0;
        info->no_bos = (d->flags & PRE_NO_BOS) != 0;
        info->byte_encode = (d->flags & PRE_RAW_UTF8) == 0;
        info->escape_ws = (d->flags & PRE_RAW_UTF8) != 0;
        info->clean_spaces = (d->flags & PRE_KEEP_SPACES) == 0;
    }
    return b;
}

static uint64_t merge_hash(const char *l, size_t ln, const char *r, size_t rn)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < ln; i++) h = (h ^ (unsigned char)l[i]) * 1099511628211ULL;
    h = (h ^ ' ') * 1099511628211ULL;
    for (size_t i = 0; i < rn; i++) h = (h ^ (unsigned char)r[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

int lm_bpe_set_merges(struct lm_bpe *b, const char *const *ms, const uint64_t *lens, size_t n,
                      char *err, size_t errlen)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > 65536) {
            set_err(err, errlen, "merge %zu is %llu bytes long", i, (unsigned long long)lens[i]);
            return -1;
        }
        total += lens[i];
    }
    if (total >= UINT32_MAX) {
        set_err(err, errlen, "merges take %llu bytes", (unsigned long long)total);
        return -1;
    }
    b->mtext = malloc(total + 1);
    b->m = malloc((n + 1) * sizeof *b->m);
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    b->mslot = calloc(cap, sizeof *b->mslot);
    b->mmask = cap - 1;
    if (!b->mtext || !b->m || !b->mslot) {
        set_err(err, errlen, "out of memory for %zu merges", n);
        return -1;
    }
    uint32_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = ms[i];
        size_t len = (size_t)lens[i];
        /* "left right": the first space after the first byte separates them */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp || sp + 1 == s + len) {
            set_err(err, errlen, "merge %zu is '%.*s', expected two pieces separated by a space",
                    i, (int)(len > 40 ? 40 : len), s);
            return -1;
        }
        size_t ll = (size_t)(sp - s), rl = len - ll - 1;
        memcpy(b->mtext + pos, s, len);
        struct merge *m = &b->m[b->n_merges];
        m->off = pos;
        m->llen = (uint32_t)ll;
        m->len = (uint32_t)len;
        m->rank = (int32_t)i;
        pos += (uint32_t)len;
        size_t h = (size_t)merge_hash(s, ll, sp + 1, rl) & b->mmask;
        int dup = 0;
        for (;;) {
            uint32_t v = b->mslot[h];
            if (v == 0) break;
            const struct merge *o = &b->m[v - 1];
            if (o->len == len && o->llen == ll && memcmp(b->mtext + o->off, s, len) == 0) {
                dup = 1;                    /* the first (lowest rank) one wins */
                break;
            }
            h = (h + 1) & b->mmask;
        }
        if (!dup) b->mslot[h] = (uint32_t)++b->n_merges;
    }
    return 0;
}

/* Rank of merging l and r, or -1. */
static int merge_rank(const struct lm_bpe *b, const char *l, size_t ln, const char *r, size_t rn)
{
    if (!b->mslot) return -1;
    size_t h = (size_t)merge_hash(l, ln, r, rn) & b->mmask;
    for (;;) {
        uint32_t v = b->mslot[h];
        if (v == 0) return -1;
        const struct merge *m = &b->m[v - 1];
        if (m->llen == ln && m->len == ln + rn + 1 && memcmp(b->mtext + m->off, l, ln) == 0 &&
            memcmp(b->mtext + m->off + ln + 1, r, rn) == 0)
            return m->rank;
        h = (h + 1) & b->mmask;
    }
}

size_t lm_bpe_decode_piece(const struct lm_bpe *b, const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t cl = tok_utf8_len(u, n - i);
        if (b->flags & PRE_RAW_UTF8) {
            if (cl == 3 && u[0] == 0xe2 && u[1] == 0x96 && u[2] == 0x81) out[o++] = ' ';
            else { memcpy(out + o, u, cl); o += cl; }
        } else {
            int cp = cl == 1 ? u[0] : cl == 2 ? ((u[0] & 0x1f) << 6) | (u[1] & 0x3f) : -1;
            if (cp >= 0 && cp < 0x144 && b->dec[cp] >= 0) {
                out[o++] = (char)b->dec[cp];
            } else {                        /* not a GPT-2 character: kept as it is */
                memcpy(out + o, u, cl);
                o += cl;
            }
        }
        i += cl;
    }
    return o;
}

/* ---- encoding ------------------------------------------------------------- */

struct sym { int start, n, prev, next; };
struct cand { int32_t rank; int left, right, size; };

static int cand_before(const struct cand *a, const struct cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

struct work {
    char *e;                 /* the encoded word */
    size_t ecap;
    struct sym *s;
    size_t scap;
    struct cand *h;
    size_t hn, hcap;
};

static int heap_push(struct work *w, struct cand c)
{
    if (w->hn == w->hcap) {
        size_t nc = w->hcap ? w->hcap * 2 : 64;
        struct cand *nv = realloc(w->h, nc * sizeof *nv);
        if (!nv) return -1;
        w->h = nv;
        w->hcap = nc;
    }
    size_t i = w->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &w->h[p])) break;
        w->h[i] = w->h[p];
        i = p;
    }
    w->h[i] = c;
    return 0;
}

static struct cand heap_pop(struct work *w)
{
    struct cand top = w->h[0], last = w->h[--w->hn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->hn) break;
        if (c + 1 < w->hn && cand_before(&w->h[c + 1], &w->h[c])) c++;
        if (!cand_before(&w->h[c], &last)) break;
        w->h[i] = w->h[c];
        i = c;
    }
    if (w->hn > 0) w->h[i] = last;
    return top;
}

static int try_pair(const struct lm_bpe *b, struct work *w, int left, int right)
{
    if (left < 0 || right < 0) return 0;
    const struct sym *l = &w->s[left], *r = &w->s[right];
    int rank = merge_rank(b, w->e + l->start, (size_t)l->n, w->e + r->start, (size_t)r->n);
    if (rank < 0) return 0;
    struct cand c = { rank, left, right, l->n + r->n };
    return heap_push(w, c);
}

static int emit_symbol(const struct lm_tokenizer *t, const char *s, size_t n, struct ivec *out)
{
    int id = tok_lookup(t, s, n);
    if (id >= 0) return tok_ivec_push(out, id);
    /* not in the vocabulary: the ids of its bytes, where there are any */
    for (size_t k = 0; k < n; k++) {
        if (t->bpe->flags & PRE_RAW_UTF8) {
            id = t->byte_id[(unsigned char)s[k]];
        } else {
            id = tok_lookup(t, s + k, 1);
        }
        if (id >= 0 && tok_ivec_push(out, id) < 0) return -1;
    }
    return 0;
}

/* One pre-tokenized word. */
static int encode_word(const struct lm_tokenizer *t, struct work *w, const char *word, size_t len,
                       struct ivec *out)
{
    const struct lm_bpe *b = t->bpe;
    if (len == 0) return 0;
    size_t need = (b->flags & PRE_RAW_UTF8) ? len : 2 * len;
    if (need > w->ecap) {
        char *ne = realloc(w->e, need);
        if (!ne) return -1;
        w->e = ne;
        w->ecap = need;
    }
    if (len > w->scap) {
        struct sym *ns = realloc(w->s, len * sizeof *ns);
        if (!ns) return -1;
        w->s = ns;
        w->scap = len;
    }
    size_t m = 0;
    int ns = 0;
    if (b->flags & PRE_RAW_UTF8) {
        memcpy(w->e, word, len);
        m = len;
        for (size_t i = 0; i < len;) {
            size_t cl = tok_utf8_len((const unsigned char *)word + i, len - i);
            w->s[ns] = (struct sym){ (int)i, (int)cl, ns - 1, ns + 1 };
            ns++;
            i += cl;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)word[i];
            w->s[ns] = (struct sym){ (int)m, b->enc_len[c], ns - 1, ns + 1 };
            ns++;
            memcpy(w->e + m, b->enc[c], b->enc_len[c]);
            m += b->enc_len[c];
        }
    }
    w->s[ns - 1].next = -1;
    int all_nl = 1;
    for (size_t i = 0; i < len && all_nl; i++) all_nl = word[i] == '\n';
    if ((b->flags & PRE_IGNORE_MERGES) || ((b->flags & PRE_NEWLINE_WHOLE) && all_nl)) {
        int id = tok_lookup(t, w->e, m);
        if (id >= 0) return tok_ivec_push(out, id);
    }
    w->hn = 0;
    for (int i = 1; i < ns; i++)
        if (try_pair(b, w, i - 1, i) < 0) return -1;
    while (w->hn > 0) {
        struct cand c = heap_pop(w);
        struct sym *l = &w->s[c.left], *r = &w->s[c.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != c.size) continue;     /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->s[r->next].prev = c.left;
        if (try_pair(b, w, l->prev, c.left) < 0 || try_pair(b, w, c.left, l->next) < 0) return -1;
    }
    for (int i = 0; i >= 0; i = w->s[i].next)
        if (emit_symbol(t, w->e + w->s[i].start, (size_t)w->s[i].n, out) < 0) return -1;
    return 0;
}

/* Pieces as [start, end) byte offsets, two size_t per piece. */
struct cuts {
    size_t *v;
    size_t n, cap;           /* n counts size_t values */
};

static int cut_push(struct cuts *c, size_t a, size_t e)
{
    if (a == e) return 0;
    if (c->n + 2 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        size_t *nv = realloc(c->v, nc * sizeof *nv);
        if (!nv) return -1;
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n++] = a;
    c->v[c->n++] = e;
    return 0;
}

/* Split every piece of in by pattern rx into out: the matches and the text
 * between them. */
static int split_by(pcre2_code *rx, pcre2_match_data *md, const char *text, const struct cuts *in,
                    struct cuts *out)
{
    out->n = 0;
    for (size_t k = 0; k < in->n; k += 2) {
        size_t a = in->v[k], e = in->v[k + 1], len = e - a, pos = 0, last = 0;
        const PCRE2_SPTR subj = (PCRE2_SPTR)(text + a);
        while (pos <= len) {
            int rc = pcre2_match(rx, subj, len, pos, 0, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) return -1;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me < ms) return -1;         /* \K tricks: not in our patterns */
            if (cut_push(out, a + last, a + ms) < 0 || cut_push(out, a + ms, a + me) < 0) return -1;
            last = me;
            if (me == ms) {                 /* empty match: step one character */
                if (ms >= len) break;
                pos = ms + tok_utf8_len(subj + ms, len - ms);
            } else {
                pos = me;
            }
        }
        if (cut_push(out, a + last, e) < 0) return -1;
    }
    return 0;
}

int lm_bpe_encode_run(const struct lm_tokenizer *t, const char *text, size_t len, struct ivec *out)
{
    const struct lm_bpe *b = t->bpe;
    if (len == 0) return 0;
    char *esc = NULL;
    if (b->flags & PRE_RAW_UTF8) {            /* spaces as U+2581, SentencePiece style */
        size_t n = 0;
        for (size_t i = 0; i < len; i++) n += text[i] == ' ' ? 3 : 1;
        esc = malloc(n);
        if (!esc) return -1;
        size_t p = 0;
        for (size_t i = 0; i < len; i++) {
            if (text[i] == ' ') { memcpy(esc + p, "\xe2\x96\x81", 3); p += 3; }
            else esc[p++] = text[i];
        }
        text = esc;
        len = n;
    }
    int rc = -1;
    struct cuts c1 = { 0 }, c2 = { 0 };
    struct work w = { 0 };
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md || cut_push(&c1, 0, len) < 0) goto done;
    for (int i = 0; i < b->n_rx; i++) {
        if (split_by(b->rx[i], md, text, &c1, &c2) < 0) goto done;
        struct cuts tmp = c1;
        c1 = c2;
        c2 = tmp;
    }
    for (size_t k = 0; k < c1.n; k += 2)
        if (encode_word(t, &w, text + c1.v[k], c1.v[k + 1] - c1.v[k], out) < 0) goto done;
    rc = 0;
done:
    pcre2_match_data_free(md);
    free(c1.v);
    free(c2.v);
    free(w.e);
    free(w.s);
    free(w.h);
    free(esc);
    return rc;
}
