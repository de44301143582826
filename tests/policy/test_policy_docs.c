/*
 * test_policy_docs.c - the three worked configs of docs/policy.md, read
 * from the document itself (every ```jsonc block that starts with
 * "// llmpin.json"), loaded with the real config loader and routed with
 * the scenarios the document describes. Keeps the docs honest.
 */
#include "tests/policy/ptest.h"

#ifndef POLICY_DOC
#error "POLICY_DOC must name docs/policy.md"
#endif

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* The n-th config block, or NULL. Caller frees. */
static char *config_block(const char *doc, int n) {
    const char *p = doc;
    for (;;) {
        p = strstr(p, "```jsonc\n// llmpin.json");
        if (!p) return NULL;
        p += strlen("```jsonc\n");
        const char *end = strstr(p, "\n```");
        if (!end) return NULL;
        if (n-- == 0) {
            size_t len = (size_t)(end - p) + 1;
            char *s = malloc(len + 1);
            if (!s) return NULL;
            memcpy(s, p, len);
            s[len] = '\0';
            return s;
        }
        p = end;
    }
}

static struct cfg *load(const char *doc, int n) {
    char *text = config_block(doc, n);
    if (!text) {
        fprintf(stderr, "docs/policy.md: config block %d not found\n", n + 1);
        exit(1);
    }
    char err[512], name[32];
    snprintf(name, sizeof name, "policy.md#%d", n + 1);
    struct cfg *c = cfg_load_string(text, strlen(text), name, "/nonexistent", err, sizeof err);
    free(text);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return c;
}

/* 1: OpenAI first, local on failure; breaker opens after 5 failures. */
static void example_fallback(const char *doc) {
    struct cfg *c = load(doc, 0);
    struct policy *p = t_policy(c);
    struct policy_error e;
    struct policy_plan pl;
    const struct policy_route *r = policy_match(p, "gpt-4o", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "chat") == 0);
    if (!r) goto out;
    CHECK_INT(policy_plan(p, r, NULL, 1, 0, &pl), 0);
    CHECK_INT(pl.n, 2);
    int api = policy_target_id(r, 0);
    CHECK_STR(policy_target_name(p, api), "openai");
    CHECK_STR(policy_target_name(p, policy_target_id(r, 1)), "local:llama3-8b");
    /* 503 twice: one retry, then the local model */
    int64_t d;
    CHECK_INT(policy_should_retry(r, POL_5XX, 1, 0, c->server.request_timeout_ms, -1, 0, &d), 1);
    CHECK(d <= 200);
    CHECK_INT(policy_should_retry(r, POL_5XX, 2, 0, c->server.request_timeout_ms, -1, 0, &d), 0);
    CHECK_INT(policy_should_fallback(r, POL_5XX), 1);
    CHECK_INT(policy_should_fallback(r, POL_4XX), 0);
    CHECK_INT(policy_should_fallback(r, POL_DRIFT), 0);
    /* five failures in a row: the next 30 s go straight to local */
    for (int i = 0; i < 5; i++) policy_breaker_report(p, api, POL_CONNECT, 1000);
    CHECK_INT(policy_plan(p, r, NULL, 1, 1000, &pl), 0);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 1);
    CHECK_STR(pl.skipped[0].reason, "circuit_open");
    CHECK_INT(policy_plan(p, r, NULL, 1, 31000, &pl), 0);
    CHECK_INT(pl.n, 2);
    /* gpt-4o-mini too; the local model is reachable by its own name */
    r = policy_match(p, "gpt-4o-mini", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "chat") == 0);
    r = policy_match(p, "llama3-8b", NULL, NULL, 0, &e);
    CHECK(r && r->cfg->mode == CFG_MODE_LOCAL);
    CHECK(policy_match(p, "gpt-5", NULL, NULL, 0, &e) == NULL && e.status == 404);
out:
    policy_free(p);
    cfg_free(c);
}

/* 2: shadow 10%, at most 2 mirrors. */
static void example_shadow(const char *doc) {
    struct cfg *c = load(doc, 1);
    struct policy *p = t_policy(c);
    struct policy_error e;
    struct policy_plan pl;
    const struct policy_route *r = policy_match(p, "gpt-4o-mini", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "support-bot") == 0);
    if (!r) goto out;
    CHECK_INT(r->cfg->mode, CFG_MODE_SHADOW);
    CHECK_STR(policy_target_name(p, policy_target_id(r, 0)), "openai:gpt-4o-mini");
    uint64_t below = (uint64_t)(0.05 * 18446744073709551615.0);
    uint64_t above = (uint64_t)(0.15 * 18446744073709551615.0);
    CHECK_INT(policy_plan(p, r, NULL, above, 0, &pl), 0);
    CHECK_INT(pl.shadow, -1);
    CHECK_INT(policy_plan(p, r, NULL, below, 0, &pl), 0);
    CHECK_INT(pl.shadow, 1);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 0);
    policy_plan(p, r, NULL, below, 0, &pl);
    CHECK_INT(pl.shadow, 1);
    policy_plan(p, r, NULL, below, 0, &pl);
    CHECK_INT(pl.shadow, -1);           /* max_inflight 2 */
    policy_shadow_end(p, r);
    policy_shadow_end(p, r);
    CHECK_INT(c->drift.store_outputs, CFG_STORE_FULL);
out:
    policy_free(p);
    cfg_free(c);
}

/* 3: pinned snapshot; drift moves traffic to local until it matches again. */
static void example_pin(const char *doc) {
    struct cfg *c = load(doc, 2);
    struct policy *p = t_policy(c);
    struct policy_error e;
    struct policy_plan pl;
    char why[200];
    const struct policy_route *r = policy_match(p, "gpt-4o", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "extraction") == 0);
    if (!r) goto out;
    int api = policy_target_id(r, 0);
    CHECK_STR(policy_target_name(p, api), "openai:gpt-4o-2024-08-06");
    CHECK_INT(policy_pin_check(p, api, "gpt-4o-2024-08-06", "fp_50cad350e4", 0, why, sizeof why), 0);
    /* no fingerprint: drift, this request moves to local */
    CHECK_INT(policy_pin_check(p, api, "gpt-4o-2024-08-06", NULL, 1000, why, sizeof why), 1);
    CHECK_STR(why, "system_fingerprint missing in the response, pinned \"fp_*\"");
    CHECK_INT(policy_should_fallback(r, POL_DRIFT), 1);
    /* later requests skip the API... */
    CHECK_INT(policy_plan(p, r, NULL, 1, 2000, &pl), 0);
    CHECK_INT(pl.n, 1);
    CHECK_INT(pl.index[0], 1);
    CHECK_STR(pl.skipped[0].reason, "drift");
    /* ...except one probe a minute */
    CHECK_INT(policy_plan(p, r, NULL, 1, 61000, &pl), 0);
    CHECK_INT(pl.probe, 0);
    CHECK_INT(pl.index[0], 0);
    /* a different snapshot is drift too */
    CHECK_INT(policy_pin_check(p, api, "gpt-4o-2024-11-20", "fp_1", 61500, why, sizeof why), 1);
    CHECK_STR(why, "model \"gpt-4o-2024-11-20\" does not match pin \"gpt-4o-2024-08-06\"");
    /* the probe that matches clears the mark: traffic returns */
    CHECK_INT(policy_pin_check(p, api, "gpt-4o-2024-08-06", "fp_x", 121500, why, sizeof why), 0);
    CHECK_INT(policy_plan(p, r, NULL, 1, 121600, &pl), 0);
    CHECK_INT(pl.n, 2);
    CHECK_INT(pl.index[0], 0);
out:
    policy_free(p);
    cfg_free(c);
}

int main(void) {
    setenv("OPENAI_API_KEY", "sk-test-not-used", 1);
    char *doc = read_file(POLICY_DOC);
    if (!doc) {
        fprintf(stderr, "cannot read %s\n", POLICY_DOC);
        return 1;
    }
    example_fallback(doc);
    example_shadow(doc);
    example_pin(doc);
    CHECK(config_block(doc, 3) == NULL);    /* exactly three */
    free(doc);
    DONE();
}
