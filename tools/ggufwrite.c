/*
 * ggufwrite.c - llmpin-ggufwrite: write a random-weight llama GGUF of any
 * shape, for benchmarks and tests that need a model bigger than the ones in
 * shared/models. The weights are deterministic for a given --seed.
 *
 *   llmpin-ggufwrite --out m.gguf --vocab 32000 --dim 768 --layers 12 \
 *       --heads 12 --kv-heads 12 --ffn 2048 --ctx 2048 --type f16
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "localmodel/gguf_write.h"

static void usage(FILE *o)
{
    fprintf(o,
            "usage: llmpin-ggufwrite --out FILE --vocab N --dim D --layers L --heads H\n"
            "                        [--kv-heads K] --ffn F [--ctx C] [--type f32|f16|bf16|q8_0|q4_k_m|q6_k]\n"
            "                        [--tied] [--seed S] [--rope-base B] [--name NAME]\n"
            "                        [--chat-template TEXT] [--vocab-from VOCAB.gguf]\n"
            "                        [--arch llama|qwen2|qwen3|phi3|gemma2|gemma3|falcon|mpt] [--head-dim N]\n"
            "                        [--rope-freqs] [--sliding-window N] [--attn-softcap X]\n"
            "                        [--final-softcap X] [--rope-scaling linear|yarn --rope-factor X]\n"
            "                        [--rope-orig-ctx N] [--swa-pattern N] [--rope-long-short]\n"
            "                        [--rope-attn-factor X] [--alibi-bias X] [--clamp-kqv X]\n"
            "Writes a llama GGUF with random weights (uniform +-1/sqrt(in_dim), norms 1).\n"
            "--vocab-from copies every tokenizer.* key of another GGUF (e.g. a vocabulary\n"
            "written by llmpin-hfvocab); --vocab then defaults to its token count.\n"
            "Defaults: --kv-heads = --heads, --ctx 2048, --type f32, --seed 1.\n");
}

static int num(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s == '\0' || *s == '-' || *end != '\0' || v > max) {
        fprintf(stderr, "llmpin-ggufwrite: %s: '%s' is not a number in 0..%llu\n", opt, s,
                (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct lm_llama_shape s;
    memset(&s, 0, sizeof s);
    s.context_length = 2048;
    s.type = GGUF_TT_F32;
    s.seed = 1;
    const char *out = NULL, *vocab_from = NULL;
    uint64_t v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--rope-freqs")) {
            s.rope_freqs = 1;
            continue;
        }
        if (!strcmp(a, "--rope-long-short")) {
            s.rope_long_short = 1;
            continue;
        }
        if (!strcmp(a, "--tied")) {
            s.tied_output = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "llmpin-ggufwrite: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "--out")) out = val;
        else if (!strcmp(a, "--name")) s.name = val;
        else if (!strcmp(a, "--chat-template")) s.chat_template = val;
        else if (!strcmp(a, "--vocab-from")) vocab_from = val;
        else if (!strcmp(a, "--arch")) s.arch = val;
        else if (!strcmp(a, "--rope-scaling")) s.rope_scaling = val;
        else if (!strcmp(a, "--attn-softcap") || !strcmp(a, "--final-softcap") ||
                 !strcmp(a, "--rope-factor") || !strcmp(a, "--rope-attn-factor") ||
                 !strcmp(a, "--alibi-bias") || !strcmp(a, "--clamp-kqv")) {
            char *end;
            float x = strtof(val, &end);
            if (*end || !(x > 0)) {
                fprintf(stderr, "llmpin-ggufwrite: %s: '%s' is not a positive number\n", a, val);
                return 2;
            }
            *(!strcmp(a, "--attn-softcap") ? &s.attn_softcap
              : !strcmp(a, "--rope-factor") ? &s.rope_factor
              : !strcmp(a, "--rope-attn-factor") ? &s.rope_attn_factor
              : !strcmp(a, "--alibi-bias") ? &s.alibi_bias
              : !strcmp(a, "--clamp-kqv") ? &s.clamp_kqv : &s.final_softcap) = x;
        }
        else if (!strcmp(a, "--type")) {
            if (!strcasecmp(val, "f32")) s.type = GGUF_TT_F32;
            else if (!strcasecmp(val, "f16")) s.type = GGUF_TT_F16;
            else if (!strcasecmp(val, "bf16")) s.type = GGUF_TT_BF16;
            else if (!strcasecmp(val, "q8_0")) s.type = GGUF_TT_Q8_0;
            else if (!strcasecmp(val, "q4_k_m")) s.type = GGUF_TT_Q4_K;
            else if (!strcasecmp(val, "q6_k")) s.type = GGUF_TT_Q6_K;
            else {
                fprintf(stderr, "llmpin-ggufwrite: --type: '%s' is not f32, f16, bf16, q8_0, q4_k_m or q6_k\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--rope-base")) {
            char *end;
            s.rope_freq_base = strtof(val, &end);
            if (*end || s.rope_freq_base <= 0) {
                fprintf(stderr, "llmpin-ggufwrite: --rope-base: '%s' is not a positive number\n", val);
                return 2;
            }
        } else {
            uint32_t *dst = !strcmp(a, "--vocab") ? &s.n_vocab : !strcmp(a, "--dim") ? &s.dim
                          : !strcmp(a, "--layers") ? &s.n_layers : !strcmp(a, "--heads") ? &s.n_heads
                          : !strcmp(a, "--kv-heads") ? &s.n_kv_heads : !strcmp(a, "--ffn") ? &s.ffn_dim
                          : !strcmp(a, "--ctx") ? &s.context_length
                          : !strcmp(a, "--head-dim") ? &s.head_dim
                          : !strcmp(a, "--sliding-window") ? &s.sliding_window
                          : !strcmp(a, "--swa-pattern") ? &s.swa_pattern
                          : !strcmp(a, "--rope-orig-ctx") ? &s.rope_orig_ctx : NULL;
            if (dst) {
                if (num(a, val, UINT32_MAX, &v) < 0) return 2;
                *dst = (uint32_t)v;
            } else if (!strcmp(a, "--seed")) {
                if (num(a, val, UINT64_MAX, &v) < 0) return 2;
                s.seed = v;
            } else {
                fprintf(stderr, "llmpin-ggufwrite: unknown option %s\n", a);
                usage(stderr);
                return 2;
            }
        }
    }
    if (!s.n_kv_heads) s.n_kv_heads = s.n_heads;
    struct gguf_file *vf = NULL;
    if (vocab_from) {
        char e[512];
        if (gguf_open(vocab_from, &vf, e, sizeof e) < 0) {
            fprintf(stderr, "llmpin-ggufwrite: --vocab-from: %s\n", e);
            return 1;
        }
        const struct gguf_kv *tk = gguf_find_kv(vf, "tokenizer.ggml.tokens");
        if (!tk || tk->type != GGUF_T_ARRAY) {
            fprintf(stderr, "llmpin-ggufwrite: --vocab-from: %s has no tokenizer.ggml.tokens\n", vocab_from);
            return 1;
        }
        if (!s.n_vocab) s.n_vocab = (uint32_t)tk->arr_n;
        s.vocab_from = vf;
    }
    if (!out || !s.n_vocab || !s.dim || !s.n_layers || !s.n_heads || !s.ffn_dim) {
        fprintf(stderr, "llmpin-ggufwrite: --out, --vocab, --dim, --layers, --heads and --ffn are required\n");
        usage(stderr);
        return 2;
    }
    char err[512];
    if (lm_write_random_llama(out, &s, err, sizeof err) < 0) {
        fprintf(stderr, "llmpin-ggufwrite: %s\n", err);
        gguf_close(vf);
        return 1;
    }
    gguf_close(vf);
    return 0;
}
