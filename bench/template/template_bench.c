/*
 * template_bench.c - chat template render time: llmpin's Jinja interpreter
 * on a model's real template (bench/template/README.md).
 *
 * usage: llmpin-bench-template --config tokenizer_config.json --conv conv.json
 *                              [--rounds N] [--out FILE]
 *
 * Parses the template once (timed), then renders the conversation (messages,
 * tools, add_generation_prompt true, bos_token/eos_token from the config)
 * ROUNDS times and prints the median and best render time in microseconds.
 * --out writes the rendered prompt, so run.sh can compare it with
 * @huggingface/jinja's byte for byte.
 */
#include "localmodel/jinja.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = '\0';
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* a special token in tokenizer_config.json: a string or {"content": ...} */
static const char *token_text(const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : "";
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *conv_path = NULL, *out_path = NULL;
    int rounds = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) cfg_path = argv[i + 1];
        else if (!strcmp(argv[i], "--conv")) conv_path = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out_path = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
    }
    if (!cfg_path || !conv_path || rounds < 1) {
        fprintf(stderr, "usage: llmpin-bench-template --config tokenizer_config.json --conv conv.json "
                        "[--rounds N] [--out FILE]\n");
        return 2;
    }
    char *cfgs = slurp(cfg_path), *convs = slurp(conv_path);
    cJSON *cfg = cfgs ? cJSON_Parse(cfgs) : NULL, *data = convs ? cJSON_Parse(convs) : NULL;
    if (!cfg || !data) {
        fprintf(stderr, "llmpin-bench-template: cannot read %s\n", !cfg ? cfg_path : conv_path);
        return 1;
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    if (!cJSON_IsString(ct)) {
        fprintf(stderr, "llmpin-bench-template: %s has no chat_template string\n", cfg_path);
        return 1;
    }
    cJSON_AddBoolToObject(data, "add_generation_prompt", 1);
    cJSON *trusted = cJSON_CreateObject();
    cJSON_AddStringToObject(trusted, "bos_token", token_text(cfg, "bos_token"));
    cJSON_AddStringToObject(trusted, "eos_token", token_text(cfg, "eos_token"));

    char err[512];
    size_t tlen = strlen(ct->valuestring);
    double t0 = now_us();
    struct jinja_tmpl *t = jinja_parse(ct->valuestring, tlen, err, sizeof err);
    double parse_us = now_us() - t0;
    if (!t) {
        fprintf(stderr, "llmpin-bench-template: the template does not parse: %s\n", err);
        return 1;
    }
    double *us = malloc(sizeof(double) * (size_t)rounds);
    size_t ol = 0;
    char *o = NULL;
    for (int r = 0; r < rounds; r++) {
        size_t *spans = NULL;
        int n_spans = 0, raised = 0;
        free(o);
        t0 = now_us();
        o = jinja_render(t, data, trusted, NULL, &ol, &spans, &n_spans, &raised, err, sizeof err);
        us[r] = now_us() - t0;
        free(spans);
        if (!o) {
            fprintf(stderr, "llmpin-bench-template: render failed: %s\n", err);
            return 1;
        }
    }
    qsort(us, (size_t)rounds, sizeof *us, cmp_double);
    printf("llmpin   parse %8.1f us  render median %8.1f us  best %8.1f us  (%zu bytes of template, "
           "%zu bytes of prompt)\n", parse_us, us[rounds / 2], us[0], tlen, ol);
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(o, 1, ol, f) != ol || fclose(f) != 0) {
            fprintf(stderr, "llmpin-bench-template: cannot write %s\n", out_path);
            return 1;
        }
    }
    free(o);
    free(us);
    jinja_free(t);
    cJSON_Delete(trusted);
    cJSON_Delete(data);
    cJSON_Delete(cfg);
    free(cfgs);
    free(convs);
    return 0;
}
