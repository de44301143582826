/*
 * test_config_files.c - the config files shipped in config/ load: example.json
 * (every option), default.json (what `make run` serves) with and without
 * OPENAI_API_KEY, and every file in config/examples/. Also cfg_load_file's own
 * errors (missing file, directory) and that default.json's model path is the
 * test model directory.
 */
#include "config/config.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LLMPIN_CONFIG_DIR
#error "LLMPIN_CONFIG_DIR must be defined"
#endif
#ifndef LLMPIN_MODELS_DIR
#error "LLMPIN_MODELS_DIR must be defined"
#endif

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)
#define CHECK_STR(got, want) do { const char *g_ = (got), *w_ = (want); \
    if (!g_ || strcmp(g_, w_) != 0) { fprintf(stderr, "%s:%d:\n  got  %s\n  want %s\n", \
        __FILE__, __LINE__, g_ ? g_ : "(null)", w_); failures++; } } while (0)

static struct cfg *load_ok(const char *path) {
    char err[1024];
    struct cfg *c = cfg_load_file(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "loading %s failed: %s\n", path, err);
        failures++;
    }
    return c;
}

static const struct cfg_route *route(const struct cfg *c, const char *name) {
    for (size_t i = 0; i < c->n_routes; i++)
        if (strcmp(c->routes[i].name, name) == 0) return &c->routes[i];
    return NULL;
}

static void test_example(void) {
    setenv("LLMPIN_APP_KEY", "app-key-1", 1);
    setenv("LLMPIN_OPS_KEY", "ops-key-2", 1);
    setenv("OPENAI_API_KEY", "sk-test", 1);
    unsetenv("LLMPIN_LISTEN");
    unsetenv("LLMPIN_WEBHOOK");
    struct cfg *c = load_ok(LLMPIN_CONFIG_DIR "/example.json");
    if (!c) return;
    CHECK_STR(c->server.listen_host, "127.0.0.1");
    CHECK(c->server.listen_port == 8080);
    CHECK(c->server.request_timeout_ms == 600000);
    CHECK(c->n_keys == 2);
    CHECK_STR(c->keys[0].key, "app-key-1");
    CHECK(c->keys[1].admin == 1);
    CHECK(c->n_upstreams == 3);
    CHECK_STR(c->upstreams[0].api_key, "sk-test");
    CHECK_STR(c->upstreams[0].headers[0].value, "my-app");
    CHECK(c->upstreams[1].kind == CFG_UPSTREAM_AZURE);
    CHECK(c->upstreams[2].kind == CFG_UPSTREAM_ANTHROPIC);
    CHECK(c->n_local_models == 1);
    CHECK_STR(c->local_models[0].chat_template, "plain");
    CHECK(c->n_routes == 4); /* gpt, ab-test, migration + implicit stories */
    const struct cfg_route *r = route(c, "gpt");
    CHECK(r && r->n_targets == 3 && r->targets[1].upstream_idx == 1 && r->targets[2].local_idx == 0);
    CHECK(r && r->n_keys == 2);
    r = route(c, "migration");
    CHECK(r && r->mode == CFG_MODE_SHADOW && r->shadow_sample == 0.1);
    r = route(c, "stories");
    CHECK(r && r->mode == CFG_MODE_LOCAL);
    CHECK(c->drift.webhook_url == NULL);
    CHECK(c->drift.n_probes == 1 && c->drift.probes[0].n_targets == 3);
    cfg_free(c);

    /* without OPENAI_API_KEY the "gpt" route and its probe target go away */
    unsetenv("OPENAI_API_KEY");
    c = load_ok(LLMPIN_CONFIG_DIR "/example.json");
    if (!c) return;
    CHECK(route(c, "gpt") == NULL);
    CHECK(c->upstreams[0].api_key == NULL);
    CHECK(c->drift.n_probes == 1 && c->drift.probes[0].n_targets == 2);
    cfg_free(c);

    /* the keys it needs are named in the error */
    unsetenv("LLMPIN_APP_KEY");
    char err[1024];
    c = cfg_load_file(LLMPIN_CONFIG_DIR "/example.json", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_STR(err, LLMPIN_CONFIG_DIR "/example.json: keys[0].key: environment variable LLMPIN_APP_KEY is not set "
                   "(write \"${LLMPIN_APP_KEY:-default}\" to give a default)");
    cfg_free(c);
}

static void test_default(void) {
    char model_real[PATH_MAX], want_real[PATH_MAX];
    unsetenv("OPENAI_API_KEY");
    struct cfg *c = load_ok(LLMPIN_CONFIG_DIR "/default.json");
    if (!c) return;
    CHECK_STR(c->server.listen_host, "127.0.0.1");
    CHECK(c->server.listen_port == 8080);
    CHECK(c->n_keys == 0);
    CHECK(c->n_routes == 1);
    CHECK_STR(c->routes[0].name, "stories");
    CHECK(c->routes[0].mode == CFG_MODE_LOCAL);
    CHECK(c->n_local_models == 1);
    CHECK_STR(c->local_models[0].sha256, "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab");
    /* the model path is the shared test model */
    CHECK(realpath(c->local_models[0].path, model_real) != NULL);
    CHECK(realpath(LLMPIN_MODELS_DIR "/stories260K.gguf", want_real) != NULL);
    CHECK_STR(model_real, want_real);
    const char *db = c->drift.db_path;
    size_t n = strlen(db), m = strlen("/build/llmpin-drift.db");
    CHECK(n > m && strcmp(db + n - m, "/build/llmpin-drift.db") == 0);
    CHECK(c->upstreams[0].api_key == NULL);
    cfg_free(c);

    setenv("OPENAI_API_KEY", "sk-test", 1);
    c = load_ok(LLMPIN_CONFIG_DIR "/default.json");
    if (!c) return;
    CHECK(c->n_routes == 2);
    CHECK_STR(c->routes[0].name, "openai");
    CHECK(c->routes[0].mode == CFG_MODE_FALLBACK);
    CHECK(c->routes[0].n_targets == 2);
    CHECK(c->routes[0].targets[0].upstream_idx == 0 && c->routes[0].targets[0].model == NULL);
    CHECK(c->routes[0].targets[1].local_idx == 0);
    CHECK(cfg_glob_match(c->routes[0].match[0], "gpt-4o-mini"));
    CHECK_STR(c->upstreams[0].api_key, "sk-test");
    cfg_free(c);
    unsetenv("OPENAI_API_KEY");
}

static void test_examples_dir(void) {
    setenv("TEAM_KEY", "team-key", 1);
    DIR *d = opendir(LLMPIN_CONFIG_DIR "/examples");
    CHECK(d != NULL);
    if (!d) return;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/examples/%s", LLMPIN_CONFIG_DIR, e->d_name);
        struct cfg *c = load_ok(path);
        if (c) {
            CHECK(c->n_routes > 0);
            cfg_free(c);
        }
        count++;
    }
    closedir(d);
    CHECK(count >= 4);
}

static void test_file_errors(void) {
    char err[1024];
    struct cfg *c = cfg_load_file("/nonexistent/llmpin.json", err, sizeof(err));
    CHECK(c == NULL);
    CHECK_STR(err, "/nonexistent/llmpin.json: cannot open: No such file or directory");
    c = cfg_load_file(LLMPIN_CONFIG_DIR, err, sizeof(err));
    CHECK(c == NULL);
    CHECK_STR(err, LLMPIN_CONFIG_DIR ": not a regular file");
    /* a tiny error buffer is still NUL-terminated */
    char small[8];
    c = cfg_load_file("/nonexistent/llmpin.json", small, sizeof(small));
    CHECK(c == NULL && strlen(small) == 7);
}

int main(void) {
    test_example();
    test_default();
    test_examples_dir();
    test_file_errors();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("config files: all passed\n");
    return 0;
}
