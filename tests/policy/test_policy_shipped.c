/*
 * test_policy_shipped.c - every config shipped in config/ (example.json,
 * default.json, examples/) compiles into a route table: each route plans
 * at least one target on a fresh state, each exact model name matches a
 * route, the model list and target JSON build, and a reload onto the same
 * config works.
 */
#include "tests/policy/ptest.h"

#include <dirent.h>

#ifndef LLMPIN_CONFIG_DIR
#error "LLMPIN_CONFIG_DIR must be defined"
#endif

static int n_checked;

static void check_file(const char *path) {
    char err[1024];
    struct cfg *c = cfg_load_file(path, err, sizeof err);
    if (!c) {
        fprintf(stderr, "%s: %s\n", path, err);
        failures++;
        return;
    }
    struct policy *p = policy_new(c, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s: policy_new: %s\n", path, err);
        failures++;
        cfg_free(c);
        return;
    }
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct policy_route *r = policy_route_by_name(p, c->routes[i].name);
        CHECK(r && r->index == i);
        if (!r) continue;
        struct policy_plan pl;
        if (policy_plan(p, r, NULL, 0, 0, &pl) != 0 || pl.n < 1) {
            fprintf(stderr, "%s: route %s: no plan: %s\n", path, r->cfg->name, pl.error.message);
            failures++;
        }
        if (pl.shadow >= 0) policy_shadow_end(p, r);
        for (size_t m = 0; m < r->cfg->n_match; m++) {
            const char *name = r->cfg->match[m];
            if (strchr(name, '*') || strchr(name, '?')) continue;
            const char *key = r->cfg->keys ? r->cfg->keys[0] : NULL;
            struct policy_error e;
            if (!policy_match(p, name, key, NULL, 0, &e)) {
                fprintf(stderr, "%s: model %s: %s\n", path, name, e.message);
                failures++;
            }
        }
    }
    cJSON *j = policy_list_models(p, NULL, 0);
    CHECK(j != NULL);
    cJSON_Delete(j);
    j = policy_targets_json(p, 0);
    CHECK(j != NULL && cJSON_GetArraySize(j) == policy_n_targets(p));
    cJSON_Delete(j);
    struct policy *p2 = policy_new_from(c, p, err, sizeof err);
    CHECK(p2 != NULL);
    policy_free(p2);
    policy_free(p);
    cfg_free(c);
    n_checked++;
}

int main(void) {
    setenv("LLMPIN_APP_KEY", "app-key-1", 1);
    setenv("LLMPIN_OPS_KEY", "ops-key-2", 1);
    setenv("OPENAI_API_KEY", "sk-test", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
    setenv("TEAM_KEY", "team-key", 1);
    check_file(LLMPIN_CONFIG_DIR "/example.json");
    check_file(LLMPIN_CONFIG_DIR "/default.json");
    DIR *d = opendir(LLMPIN_CONFIG_DIR "/examples");
    CHECK(d != NULL);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/examples/%s", LLMPIN_CONFIG_DIR, de->d_name);
        check_file(path);
    }
    if (d) closedir(d);
    CHECK(n_checked >= 3);
    printf("%d configs\n", n_checked);
    DONE();
}
