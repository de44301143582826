/*
 * test_policy_match.c - route matching: exact names before globs, globs in
 * config order, the keys restriction, X-Llmpin-Route overrides, the
 * OpenAI-shaped 404, and the /v1/models list.
 */
#include "tests/policy/ptest.h"

static char *m_glob_gpt[] = {"gpt-4o*"};
static char *m_exact_mini[] = {"gpt-4o-mini", "llama-local"};
static char *m_star[] = {"*"};
static char *m_vip[] = {"gpt-4o"};
static char *m_claude[] = {"claude-*", "claude-x"};
static char *keys_vip[] = {"vip"};

int main(void) {
    struct cfg c;
    t_defaults(&c);
    struct cfg_target ta[] = {t_up("openai", NULL)};
    struct cfg_target tb[] = {t_local("tiny")};
    struct cfg_target tc[] = {t_up("openai", "gpt-4o-2024-08-06")};
    struct cfg_target td[] = {t_up("anthropic", NULL)};
    struct cfg_target te[] = {t_up("fallback-up", NULL)};
    struct cfg_route routes[] = {
        t_route("gpt", m_glob_gpt, N(m_glob_gpt), CFG_MODE_REMOTE, ta, N(ta)),        /* 0: glob first in file */
        t_route("mini", m_exact_mini, N(m_exact_mini), CFG_MODE_LOCAL, tb, N(tb)),   /* 1: exact */
        t_route("vip", m_vip, N(m_vip), CFG_MODE_REMOTE, tc, N(tc)),                 /* 2: exact, keys */
        t_route("claude", m_claude, N(m_claude), CFG_MODE_REMOTE, td, N(td)),        /* 3 */
        t_route("rest", m_star, N(m_star), CFG_MODE_REMOTE, te, N(te)),              /* 4 */
    };
    routes[2].keys = keys_vip;
    routes[2].n_keys = 1;
    c.routes = routes;
    c.n_routes = N(routes);
    struct policy *p = t_policy(&c);
    struct policy_error e;
    const struct policy_route *r;

    /* exact beats a glob listed earlier */
    r = policy_match(p, "gpt-4o-mini", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "mini") == 0);
    CHECK_INT(r ? r->index : 99, 1);
    r = policy_match(p, "llama-local", "k", NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "mini") == 0);
    /* glob in config order: "gpt-4o*" before "*" */
    r = policy_match(p, "gpt-4o-2024-11-20", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "gpt") == 0);
    r = policy_match(p, "claude-sonnet", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "claude") == 0);
    /* the exact "claude-x" of the same route */
    r = policy_match(p, "claude-x", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "claude") == 0);
    r = policy_match(p, "mistral", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "rest") == 0);
    r = policy_match(p, NULL, NULL, NULL, 0, &e);   /* NULL model = "" matches "*" */
    CHECK(r && strcmp(r->cfg->name, "rest") == 0);

    /* keys restriction: vip gets the exact route, others fall to the glob */
    r = policy_match(p, "gpt-4o", "vip", NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "vip") == 0);
    r = policy_match(p, "gpt-4o", "other", NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "gpt") == 0);
    r = policy_match(p, "gpt-4o", NULL, NULL, 0, &e);
    CHECK(r && strcmp(r->cfg->name, "gpt") == 0);
    CHECK(policy_route_allows_key(&((const struct policy_route *)policy_route_by_name(p, "vip"))[0], "vip"));
    CHECK(!policy_route_allows_key(policy_route_by_name(p, "vip"), "other"));
    CHECK(!policy_route_allows_key(policy_route_by_name(p, "vip"), NULL));
    CHECK(policy_route_allows_key(policy_route_by_name(p, "rest"), NULL));
    CHECK(policy_route_by_name(p, "nope") == NULL);

    /* override */
    r = policy_match(p, "gpt-4o", "k", "mini", 1, &e);
    CHECK(r && strcmp(r->cfg->name, "mini") == 0);
    r = policy_match(p, "gpt-4o", "k", "", 0, &e);          /* empty header = absent */
    CHECK(r && strcmp(r->cfg->name, "gpt") == 0);
    memset(&e, 0, sizeof e);
    r = policy_match(p, "gpt-4o", "k", "mini", 0, &e);
    CHECK(r == NULL);
    CHECK_INT(e.status, 403);
    CHECK_STR(e.code, "route_override_forbidden");
    CHECK_STR(e.type, "permission_error");
    CHECK_STR(e.message, "This API key may not choose a route with the X-Llmpin-Route header.");
    r = policy_match(p, "gpt-4o", "k", "nope", 1, &e);
    CHECK(r == NULL);
    CHECK_INT(e.status, 404);
    CHECK_STR(e.code, "route_not_found");
    CHECK_STR(e.message, "No route named 'nope' (X-Llmpin-Route).");
    r = policy_match(p, "gpt-4o", "k", "vip", 1, &e);
    CHECK(r == NULL);
    CHECK_INT(e.status, 403);
    CHECK_STR(e.code, "route_forbidden");
    CHECK_STR(e.message, "This API key may not use route 'vip'.");
    r = policy_match(p, "whatever", "vip", "vip", 1, &e);
    CHECK(r && strcmp(r->cfg->name, "vip") == 0);
    policy_free(p);

    /* unknown model: OpenAI's 404 */
    struct cfg_route only[] = {t_route("mini", m_exact_mini, N(m_exact_mini), CFG_MODE_LOCAL, tb, N(tb))};
    c.routes = only;
    c.n_routes = 1;
    p = t_policy(&c);
    r = policy_match(p, "gpt-5", NULL, NULL, 0, &e);
    CHECK(r == NULL);
    CHECK_INT(e.status, 404);
    CHECK_STR(e.code, "model_not_found");
    CHECK_STR(e.type, "invalid_request_error");
    CHECK_STR(e.message, "The model `gpt-5` does not exist or you do not have access to it.");
    /* a route restricted to keys is invisible to others: same 404 */
    only[0].keys = keys_vip;
    only[0].n_keys = 1;
    r = policy_match(p, "gpt-4o-mini", "other", NULL, 0, &e);
    CHECK(r == NULL);
    CHECK_INT(e.status, 404);
    CHECK_STR(e.message, "The model `gpt-4o-mini` does not exist or you do not have access to it.");
    only[0].keys = NULL;
    only[0].n_keys = 0;
    policy_free(p);

    /* /v1/models: exact names only, deduplicated, owner from the first target */
    c.routes = routes;
    c.n_routes = N(routes);
    p = t_policy(&c);
    cJSON *list = policy_list_models(p, "other", 1700000000);
    char *s = cJSON_PrintUnformatted(list);
    CHECK_STR(s, "[{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"llmpin-local\"},"
                 "{\"id\":\"llama-local\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"llmpin-local\"},"
                 "{\"id\":\"claude-x\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"anthropic\"}]");
    free(s);
    cJSON_Delete(list);
    list = policy_list_models(p, "vip", 0);
    CHECK_INT(cJSON_GetArraySize(list), 4);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 2), "id")->valuestring, "gpt-4o");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 2), "owned_by")->valuestring, "openai");
    cJSON_Delete(list);
    policy_free(p);

    /* build errors */
    char err[256];
    struct cfg_route none[] = {t_route("empty", m_star, 1, CFG_MODE_REMOTE, ta, 0)};
    c.routes = none;
    c.n_routes = 1;
    CHECK(policy_new(&c, err, sizeof err) == NULL);
    CHECK_STR(err, "test.json: routes[0] \"empty\": no targets");
    struct cfg_target many[17];
    for (int i = 0; i < 17; i++) many[i] = t_up("openai", NULL);
    struct cfg_route big[] = {t_route("big", m_star, 1, CFG_MODE_FALLBACK, many, 17)};
    c.routes = big;
    CHECK(policy_new(&c, err, sizeof err) == NULL);
    CHECK_STR(err, "test.json: routes[0] \"big\": 17 targets, at most 16 are supported");
    struct cfg_target both[] = {t_up("openai", NULL)};
    both[0].local = "tiny";
    struct cfg_route bad[] = {t_route("bad", m_star, 1, CFG_MODE_REMOTE, both, 1)};
    c.routes = bad;
    CHECK(policy_new(&c, err, sizeof err) == NULL);
    CHECK_STR(err, "test.json: routes[0].targets[0]: exactly one of upstream and local must be set");
    CHECK(policy_new(NULL, err, sizeof err) == NULL);
    CHECK_STR(err, "policy: no configuration");

    /* no routes at all: every model is unknown */
    c.routes = NULL;
    c.n_routes = 0;
    p = t_policy(&c);
    CHECK(policy_match(p, "x", NULL, NULL, 0, &e) == NULL);
    CHECK_INT(e.status, 404);
    list = policy_list_models(p, NULL, 0);
    CHECK_INT(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    policy_free(p);
    DONE();
}
