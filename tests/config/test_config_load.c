/*
 * test_config_load.c - the config file reader: syntax errors with line and
 * column, comments, ${ENV} expansion, defaults, units, every field error with
 * its exact message, secrets kept out of messages, and implicit routes.
 *
 * Texts are loaded with cfg_load_string(name = "t.json", base_dir = "/cfg").
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)
#define CHECK_STR(got, want) do { const char *g_ = (got), *w_ = (want); \
    if (!g_ || strcmp(g_, w_) != 0) { fprintf(stderr, "%s:%d:\n  got  %s\n  want %s\n", \
        __FILE__, __LINE__, g_ ? g_ : "(null)", w_); failures++; } } while (0)

static struct cfg *load(const char *text, char *err, size_t errlen) {
    return cfg_load_string(text, strlen(text), "t.json", "/cfg", err, errlen);
}

/* Load must fail with exactly `want`. */
static void expect_err_at(int line, const char *text, const char *want) {
    char err[1024];
    struct cfg *c = load(text, err, sizeof(err));
    if (c) {
        fprintf(stderr, "%s:%d: loaded, expected error: %s\n", __FILE__, line, want);
        failures++;
        cfg_free(c);
        return;
    }
    if (strcmp(err, want) != 0) {
        fprintf(stderr, "%s:%d:\n  got  %s\n  want %s\n", __FILE__, line, err, want);
        failures++;
    }
}
#define EXPECT_ERR(text, want) expect_err_at(__LINE__, text, want)

static struct cfg *load_ok_at(int line, const char *text) {
    char err[1024];
    struct cfg *c = load(text, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s:%d: unexpected error: %s\n", __FILE__, line, err);
        failures++;
    }
    return c;
}
#define LOAD_OK(text) load_ok_at(__LINE__, text)

/* A minimal valid prefix: one upstream, one local model. */
#define UP "\"upstreams\": {\"openai\": {\"base_url\": \"https://api.openai.com/v1\"}, " \
           "\"azure\": {\"kind\": \"azure\", \"base_url\": \"https://x.openai.azure.com/openai\", \"api_version\": \"2024-10-21\"}}"
#define LM "\"local_models\": {\"tiny\": {\"path\": \"m/tiny.gguf\", \"sha256\": \"unpinned\"}}"
#define HASH "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab"

static void test_syntax(void) {
    EXPECT_ERR("", "t.json:1:1: the file is empty (expected a JSON object)");
    EXPECT_ERR("  // only a comment\n", "t.json:1:1: the file is empty (expected a JSON object)");
    EXPECT_ERR("{\n  \"server\": {\"listen\": \"127.0.0.1:1\"}\n  \"keys\": []\n}",
               "t.json:3:3: expected ',' or '}' after object member");
    EXPECT_ERR("{\"routes\": [1 2]}", "t.json:1:15: expected ',' or ']' after array element");
    EXPECT_ERR("{\n  \"server\": {},\n}", "t.json:2:15: trailing comma before '}' is not allowed");
    EXPECT_ERR("{\"routes\": [{},]}", "t.json:1:15: trailing comma before ']' is not allowed");
    EXPECT_ERR("{server: {}}", "t.json:1:2: expected a string in double quotes as object key");
    EXPECT_ERR("{\"server\" {}}", "t.json:1:11: expected ':' after object key");
    EXPECT_ERR("{\"server\": }", "t.json:1:12: expected a value");
    EXPECT_ERR("{\"server\": 'x'}", "t.json:1:12: strings must use double quotes");
    EXPECT_ERR("{\"a\": \"abc", "t.json:1:7: unterminated string");
    EXPECT_ERR("{\"a\": \"a\\qb\"}", "t.json:1:9: invalid escape sequence in string");
    EXPECT_ERR("{\"a\": \"\\u00zz\"}", "t.json:1:8: invalid \\u escape (expected 4 hex digits)");
    EXPECT_ERR("{\"a\": \"\\u0000\"}", "t.json:1:8: \\u0000 is not allowed in strings");
    EXPECT_ERR("{\"a\": \"x\ty\"}", "t.json:1:9: control character in string (write \\n, \\t or \\u00XX)");
    EXPECT_ERR("{\"a\": 01}", "t.json:1:7: invalid number (leading zeros are not allowed)");
    EXPECT_ERR("{\"a\": 1.}", "t.json:1:7: invalid number (digits must follow '.')");
    EXPECT_ERR("{\"a\": 1e}", "t.json:1:7: invalid number (bad exponent)");
    EXPECT_ERR("{\"a\": tru}", "t.json:1:7: invalid literal (expected true, false, null, a number or a string in double quotes)");
    EXPECT_ERR("{\"a\": NaN}", "t.json:1:7: unexpected character (expected a value)");
    EXPECT_ERR("{} {}", "t.json:1:4: unexpected text after the end of the JSON document");
    EXPECT_ERR("{\"a\": [", "t.json:1:8: unexpected end of file");
    EXPECT_ERR("{\n /* never closed\n", "t.json:2:2: unterminated /* comment");
    EXPECT_ERR("[]", "t.json: (top level): expected an object, got an array");

    /* nesting bound */
    char deep[300];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < 70; i++) deep[n++] = '[';
    deep[n] = '\0';
    EXPECT_ERR(deep, "t.json:1:69: nesting is deeper than 64 levels");

    /* size limit */
    size_t big = ((size_t)4 << 20) + 1;
    char *text = malloc(big);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    char err[256];
    struct cfg *c = cfg_load_string(text, big, "big.json", NULL, err, sizeof(err));
    CHECK(c == NULL);
    CHECK_STR(err, "big.json: file is larger than 4 MiB (4194305 bytes); a config file should be small");
    free(text);
}

static void test_comments(void) {
    struct cfg *c = LOAD_OK(
        "// leading comment\n"
        "{ /* block */ \"server\": { // line comment\n"
        "    \"listen\": \"127.0.0.1:9000\", /* multi\n line */ \"log_level\": \"debug\"\n"
        "  },\n"
        "  \"upstreams\": {\"x\": {\"base_url\": \"http://h/v1\", \"headers\": {\"X-Note\": \"a // not a comment /* nor this */\"}}}\n"
        "}\n// trailing\n");
    if (c) {
        CHECK(c->server.listen_port == 9000);
        CHECK_STR(c->server.log_level, "debug");
        CHECK_STR(c->upstreams[0].headers[0].value, "a // not a comment /* nor this */");
        cfg_free(c);
    }
    /* a UTF-8 byte order mark and CRLF line ends are accepted */
    c = LOAD_OK("\xEF\xBB\xBF{\r\n  \"server\": {\"listen\": \"127.0.0.1:1\"} // x\r\n}\r\n");
    if (c) {
        CHECK(c->server.listen_port == 1);
        cfg_free(c);
    }
    /* a comment keeps line numbers of later errors */
    EXPECT_ERR("{ /* one\ntwo\nthree */ \"a\" 1 }", "t.json:3:14: expected ':' after object key");
}

static void test_duplicates_and_unknown(void) {
    EXPECT_ERR("{\"server\": {\"listen\": \"127.0.0.1:1\", \"listen\": \"127.0.0.1:2\"}}",
               "t.json: server.listen: duplicate key");
    EXPECT_ERR("{" UP ", \"upstreams\": {}}", "t.json: upstreams: duplicate key");
    EXPECT_ERR("{\"routes\": [{\"name\": \"a\", \"name\": \"b\"}]}", "t.json: routes[0].name: duplicate key");
    EXPECT_ERR("{\"server\": {\"lisen\": \"127.0.0.1:8080\"}}",
               "t.json: server.lisen: unknown field (did you mean \"listen\"?)");
    EXPECT_ERR("{\"serer\": {}}", "t.json: serer: unknown field (did you mean \"server\"?)");
    EXPECT_ERR("{\"zzzzzz\": 1}",
               "t.json: zzzzzz: unknown field (known: server, keys, upstreams, local_models, routes, breaker, drift)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"*\", \"targets\": [\"openai\"], \"fallbak_on\": []}]}",
               "t.json: routes[0].fallbak_on: unknown field (did you mean \"fallback_on\"?)");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"timeouts\": {\"conect\": \"1s\"}}}}",
               "t.json: upstreams.o.timeouts.conect: unknown field (did you mean \"connect\"?)");
}

static void test_env(void) {
    setenv("LLMPIN_T_PORT", "9123", 1);
    setenv("LLMPIN_T_KEY", "sk-client-secret-123", 1);
    setenv("LLMPIN_T_EMPTY", "", 1);
    setenv("LLMPIN_T_UPKEY", "sk-upstream-secret", 1);
    setenv("LLMPIN_T_WORD", "abc", 1);
    unsetenv("LLMPIN_T_UNSET");

    struct cfg *c = LOAD_OK(
        "{\"server\": {\"listen\": \"${LLMPIN_T_HOST:-127.0.0.1}:${LLMPIN_T_PORT}\","
        "  \"access_log\": \"$${literal}\", \"max_connections\": \"${LLMPIN_T_MAXC:-77}\","
        "  \"allow_unauthenticated\": \"${LLMPIN_T_ALLOW:-true}\"},"
        " \"keys\": [{\"name\": \"a\", \"key\": \"${LLMPIN_T_KEY}\"}, {\"name\": \"b\", \"key\": \"x-${LLMPIN_T_EMPTY:-dflt}-$y\"}],"
        " \"upstreams\": {\"o\": {\"base_url\": \"http://h/v1\", \"api_key_env\": \"LLMPIN_T_UPKEY\"},"
        "                \"p\": {\"base_url\": \"http://h/v1\", \"api_key_env\": \"LLMPIN_T_UNSET\"}}}");
    if (c) {
        CHECK_STR(c->server.listen_host, "127.0.0.1");
        CHECK(c->server.listen_port == 9123);
        CHECK_STR(c->server.access_log, "/cfg/${literal}");
        CHECK(c->server.max_connections == 77);
        CHECK(c->server.allow_unauthenticated == 1);
        CHECK_STR(c->keys[0].key, "sk-client-secret-123");
        CHECK_STR(c->keys[1].key, "x-dflt-$y");
        CHECK_STR(c->upstreams[0].api_key_env, "LLMPIN_T_UPKEY");
        CHECK_STR(c->upstreams[0].api_key, "sk-upstream-secret");
        CHECK(c->upstreams[1].api_key == NULL); /* unset: not an error, no key */
        cfg_free(c);
    }
    EXPECT_ERR("{\"keys\": [{\"name\": \"a\", \"key\": \"${LLMPIN_T_UNSET}\"}]}",
               "t.json: keys[0].key: environment variable LLMPIN_T_UNSET is not set "
               "(write \"${LLMPIN_T_UNSET:-default}\" to give a default)");
    EXPECT_ERR("{\"server\": {\"log_level\": \"${LLMPIN_T_LVL\"}}",
               "t.json: server.log_level: unterminated \"${LLMPIN_T_LVL\" (missing '}')");
    EXPECT_ERR("{\"server\": {\"log_level\": \"${1X}\"}}",
               "t.json: server.log_level: invalid ${...}: expected a variable name after \"${\" (write \"$${\" for a literal \"${\")");
    EXPECT_ERR("{\"server\": {\"log_level\": \"${A-B}\"}}",
               "t.json: server.log_level: invalid character '-' in \"${A...}\" (use ${NAME} or ${NAME:-default})");
    /* expansion comes before type checks */
    EXPECT_ERR("{\"server\": {\"max_connections\": \"${LLMPIN_T_WORD}\"}}",
               "t.json: server.max_connections: expected an integer, got \"abc\"");
    EXPECT_ERR("{\"server\": {\"request_timeout\": \"${LLMPIN_T_WORD}\"}}",
               "t.json: server.request_timeout: expected a duration such as \"30s\", \"500ms\" or \"2m\", got \"abc\"");
    /* a secret's value never appears in a message */
    char err[1024];
    const char *t1 = "{\"keys\": [{\"name\": \"a\", \"key\": \"${LLMPIN_T_KEY}\"}, {\"name\": \"b\", \"key\": \"sk-client-secret-123\"}]}";
    CHECK(load(t1, err, sizeof(err)) == NULL);
    CHECK_STR(err, "t.json: keys[1].key: same key as keys[0] (\"a\"); every client needs its own key");
    CHECK(strstr(err, "secret") == NULL);
    CHECK(load("{\"keys\": [{\"name\": \"a\", \"key\": 12345}]}", err, sizeof(err)) == NULL);
    CHECK_STR(err, "t.json: keys[0].key: expected a string, got a number");
    CHECK(load("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"headers\": {\"X-Key\": 99}}}}", err, sizeof(err)) == NULL);
    CHECK_STR(err, "t.json: upstreams.o.headers.X-Key: expected a string, got a number");
    setenv("LLMPIN_T_HDR", "secret\r\nInjected: 1", 1);
    CHECK(load("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"headers\": {\"X-Key\": \"${LLMPIN_T_HDR}\"}}}}", err, sizeof(err)) == NULL);
    CHECK_STR(err, "t.json: upstreams.o.headers.X-Key: value contains a line break");
}

static void test_defaults(void) {
    struct cfg *c = LOAD_OK("{}");
    if (c) {
        CHECK_STR(c->path, "t.json");
        CHECK_STR(c->server.listen_host, "127.0.0.1");
        CHECK(c->server.listen_port == 8080);
        CHECK(c->server.max_body_bytes == 8u << 20);
        CHECK(c->server.request_timeout_ms == 600000);
        CHECK(c->server.drain_timeout_ms == 30000);
        CHECK_STR(c->server.log_level, "info");
        CHECK_STR(c->server.access_log, "-");
        CHECK(c->n_routes == 0 && c->n_keys == 0);
        CHECK_STR(c->drift.db_path, "/cfg/llmpin-drift.db");
        CHECK(c->breaker.window_s == 30);
        cfg_free(c);
    }
    c = LOAD_OK("{" UP ", " LM ", \"routes\": [{\"match\": [\"gpt-*\", \"o1\"], \"targets\": [\"openai/gpt-4o\", {\"local\": \"tiny\"}]}]}");
    if (c) {
        CHECK(c->n_upstreams == 2);
        const struct cfg_upstream *u = &c->upstreams[0];
        CHECK_STR(u->name, "openai");
        CHECK(u->kind == CFG_UPSTREAM_OPENAI);
        CHECK(u->connect_timeout_ms == 10000 && u->first_byte_timeout_ms == 60000);
        CHECK(u->idle_timeout_ms == 60000 && u->total_timeout_ms == 600000);
        CHECK(u->max_connections == 256 && u->tls_verify == 1);
        CHECK(u->api_key_env == NULL && u->api_key == NULL && u->ca_file == NULL);
        CHECK(c->upstreams[1].kind == CFG_UPSTREAM_AZURE);
        const struct cfg_local_model *m = &c->local_models[0];
        CHECK_STR(m->path, "/cfg/m/tiny.gguf");
        CHECK_STR(m->sha256, "unpinned");
        CHECK(m->max_queue == 64 && m->max_batch == 8 && m->threads == 0 && m->context_length == 0 &&
              m->kv_f32 == 0);
        CHECK(m->chat_template == NULL);
        CHECK(c->n_routes == 2); /* + implicit route for "tiny" */
        const struct cfg_route *r = &c->routes[0];
        CHECK_STR(r->name, "route0");
        CHECK(r->n_match == 2);
        CHECK(r->mode == CFG_MODE_FALLBACK);
        CHECK(r->fallback_on == CFG_FB_ALL);
        CHECK(r->on_drift == CFG_DRIFT_RECORD);
        CHECK(r->retry.max_attempts == 2 && r->retry.base_ms == 200 && r->retry.max_ms == 5000);
        CHECK(r->sticky == 0 && r->shadow_sample == 1.0 && r->shadow_max_inflight == 4);
        CHECK(r->keys == NULL && r->n_keys == 0);
        CHECK(r->enabled_if_env == NULL);
        CHECK_STR(r->targets[0].upstream, "openai");
        CHECK_STR(r->targets[0].model, "gpt-4o");
        CHECK(r->targets[0].upstream_idx == 0 && r->targets[0].local_idx == -1);
        CHECK(r->targets[0].weight == 1.0);
        CHECK_STR(r->targets[1].local, "tiny");
        CHECK(r->targets[1].local_idx == 0 && r->targets[1].upstream_idx == -1);
        const struct cfg_route *imp = &c->routes[1];
        CHECK_STR(imp->name, "tiny");
        CHECK(imp->mode == CFG_MODE_LOCAL && imp->n_match == 1 && imp->n_targets == 1);
        CHECK_STR(imp->match[0], "tiny");
        CHECK_STR(imp->targets[0].local, "tiny");
        CHECK(imp->targets[0].local_idx == 0);
        cfg_free(c);
    }
    /* a single target picks remote or local mode */
    c = LOAD_OK("{" UP ", " LM ", \"routes\": [{\"match\": \"a\", \"targets\": [\"openai\"]},"
                "{\"name\": \"t\", \"match\": \"t*\", \"targets\": [\"local:tiny\"]}]}");
    if (c) {
        CHECK(c->routes[0].mode == CFG_MODE_REMOTE);
        CHECK(c->routes[0].targets[0].model == NULL);
        CHECK(c->routes[1].mode == CFG_MODE_LOCAL);
        CHECK(c->n_routes == 2); /* "tiny" matches "t*": no implicit route */
        cfg_free(c);
    }
}

static void test_units(void) {
    struct cfg *c = LOAD_OK("{\"server\": {\"max_body_bytes\": \"512KiB\", \"request_timeout\": \"2m\", \"drain_timeout\": 1500},"
                            " \"breaker\": {\"window\": \"1m\", \"cooldown\": \"500ms\"},"
                            " \"drift\": {\"commit_interval\": \"1s\", \"store_outputs\": \"full\", \"false_alarm_rate\": 0.001,"
                            " \"writer_nice\": 0}}");
    if (c) {
        CHECK(c->server.max_body_bytes == 512 * 1024);
        CHECK(c->server.request_timeout_ms == 120000);
        CHECK(c->server.drain_timeout_ms == 1500);
        CHECK(c->breaker.window_s == 60);
        CHECK(c->breaker.cooldown_ms == 500);
        CHECK(c->drift.commit_interval_ms == 1000);
        CHECK(c->drift.writer_nice == 0);
        CHECK(c->drift.store_outputs == CFG_STORE_FULL);
        CHECK(c->drift.false_alarm_rate == 0.001);
        cfg_free(c);
    }
    c = LOAD_OK("{\"drift\": {\"writer_nice\": \"idle\"}}");
    if (c) {
        CHECK(c->drift.writer_nice == CFG_WRITER_IDLE);
        cfg_free(c);
    }
    c = LOAD_OK("{\"drift\": {\"writer_nice\": \"12\"}}");
    if (c) {
        CHECK(c->drift.writer_nice == 12);
        cfg_free(c);
    }
    c = LOAD_OK("{\"server\": {\"max_body_bytes\": \"8MiB\", \"request_timeout\": \"1h\"}, \"breaker\": {\"window\": 45}}");
    if (c) {
        CHECK(c->server.max_body_bytes == 8u << 20);
        CHECK(c->server.request_timeout_ms == 3600000);
        CHECK(c->breaker.window_s == 45);
        cfg_free(c);
    }
    EXPECT_ERR("{\"server\": {\"max_body_bytes\": \"8 MB\"}}",
               "t.json: server.max_body_bytes: expected a size such as \"8MiB\", \"512KiB\" or a number of bytes, got \"8 MB\"");
    EXPECT_ERR("{\"server\": {\"max_body_bytes\": \"2GiB\"}}",
               "t.json: server.max_body_bytes: must be between 1 and 1073741824 bytes, got \"2GiB\"");
    EXPECT_ERR("{\"server\": {\"max_body_bytes\": 0}}",
               "t.json: server.max_body_bytes: must be between 1 and 1073741824, got 0");
    EXPECT_ERR("{\"server\": {\"request_timeout\": \"30 s\"}}",
               "t.json: server.request_timeout: expected a duration such as \"30s\", \"500ms\" or \"2m\", got \"30 s\"");
    EXPECT_ERR("{\"server\": {\"request_timeout\": \"1.5s\"}}",
               "t.json: server.request_timeout: expected a duration such as \"30s\", \"500ms\" or \"2m\", got \"1.5s\"");
    EXPECT_ERR("{\"server\": {\"request_timeout\": -5}}",
               "t.json: server.request_timeout: must be between 1ms and 86400000ms, got -5ms");
    EXPECT_ERR("{\"server\": {\"request_timeout\": \"2d\"}}",
               "t.json: server.request_timeout: expected a duration such as \"30s\", \"500ms\" or \"2m\", got \"2d\"");
    EXPECT_ERR("{\"server\": {\"request_timeout\": \"25h\"}}",
               "t.json: server.request_timeout: must be between 1ms and 86400000ms, got \"25h\"");
    EXPECT_ERR("{\"breaker\": {\"window\": \"1500ms\"}}",
               "t.json: breaker.window: must be a whole number of seconds, got \"1500ms\"");
    EXPECT_ERR("{\"server\": {\"request_timeout\": 1.5}}",
               "t.json: server.request_timeout: expected an integer, got 1.5");
}

static void test_server_errors(void) {
    EXPECT_ERR("{\"server\": {\"listen\": \":8080\"}}",
               "t.json: server.listen: missing host in \":8080\" (write \"127.0.0.1:8080\" for this machine only, or \"0.0.0.0:8080\" for all interfaces)");
    EXPECT_ERR("{\"server\": {\"listen\": \"localhost\"}}",
               "t.json: server.listen: expected \"host:port\" (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"), got \"localhost\"");
    EXPECT_ERR("{\"server\": {\"listen\": \"::1:8080\"}}",
               "t.json: server.listen: IPv6 addresses need brackets, e.g. \"[::1]:8080\", got \"::1:8080\"");
    EXPECT_ERR("{\"server\": {\"listen\": \"127.0.0.1:70000\"}}",
               "t.json: server.listen: port 70000 is out of range (0-65535)");
    EXPECT_ERR("{\"server\": {\"listen\": \"127.0.0.1:http\"}}", "t.json: server.listen: invalid port \"http\"");
    EXPECT_ERR("{\"server\": {\"listen\": \"127.0.0.1:-1\"}}", "t.json: server.listen: invalid port \"-1\"");
    EXPECT_ERR("{\"server\": {\"listen\": \"0.0.0.0:8080\"}}",
               "t.json: server.listen: refusing to listen on 0.0.0.0 without client keys; add \"keys\" "
               "(with server.allow_unauthenticated, clients without a key are served too)");
    EXPECT_ERR("{\"server\": {\"listen\": \"[::]:8080\"}}",
               "t.json: server.listen: refusing to listen on :: without client keys; add \"keys\" "
               "(with server.allow_unauthenticated, clients without a key are served too)");
    /* anonymous clients on a reachable address: only behind an admin key */
    EXPECT_ERR("{\"server\": {\"listen\": \"0.0.0.0:80\", \"allow_unauthenticated\": true}}",
               "t.json: server.allow_unauthenticated: on 0.0.0.0 it needs a key with \"admin\": true in \"keys\"; "
               "without one, /admin/reload and X-Llmpin-Route would be open to anyone who can connect");
    EXPECT_ERR("{\"server\": {\"listen\": \"0.0.0.0:80\", \"allow_unauthenticated\": true}, "
               "\"keys\": [{\"key\": \"k1\"}]}",
               "t.json: server.allow_unauthenticated: on 0.0.0.0 it needs a key with \"admin\": true in \"keys\"; "
               "without one, /admin/reload and X-Llmpin-Route would be open to anyone who can connect");
    EXPECT_ERR("{\"server\": {\"listen\": 8080}}", "t.json: server.listen: expected a string, got 8080");
    EXPECT_ERR("{\"server\": {\"max_connections\": -3}}",
               "t.json: server.max_connections: must be between 1 and 1000000, got -3");
    EXPECT_ERR("{\"server\": {\"max_connections\": 2.5}}", "t.json: server.max_connections: expected an integer, got 2.5");
    EXPECT_ERR("{\"server\": {\"max_connections\": true}}", "t.json: server.max_connections: expected an integer, got true");
    EXPECT_ERR("{\"server\": {\"log_level\": \"verbose\"}}",
               "t.json: server.log_level: expected one of debug, info, warn, error, got \"verbose\"");
    EXPECT_ERR("{\"server\": {\"allow_unauthenticated\": 1}}",
               "t.json: server.allow_unauthenticated: expected true or false, got 1");
    EXPECT_ERR("{\"server\": []}", "t.json: server: expected an object, got an array");

    struct cfg *c = LOAD_OK("{\"server\": {\"listen\": \"[::1]:0\"}}");
    if (c) {
        CHECK_STR(c->server.listen_host, "::1");
        CHECK(c->server.listen_port == 0);
        cfg_free(c);
    }
    c = LOAD_OK("{\"server\": {\"listen\": \"0.0.0.0:80\", \"allow_unauthenticated\": true}, "
                "\"keys\": [{\"key\": \"k1\", \"admin\": true}]}");
    if (c) {
        CHECK(c->server.allow_unauthenticated == 1);
        cfg_free(c);
    }
    c = LOAD_OK("{\"server\": {\"listen\": \"0.0.0.0:80\", \"access_log\": \"off\"}, \"keys\": [{\"key\": \"k1\", \"admin\": true, \"rpm\": 60}]}");
    if (c) {
        CHECK_STR(c->keys[0].name, "key0");
        CHECK(c->keys[0].admin == 1 && c->keys[0].route_override == 0 && c->keys[0].rpm == 60 && c->keys[0].tpm == 0);
        CHECK_STR(c->server.access_log, "off");
        cfg_free(c);
    }
}

static void test_keys_errors(void) {
    EXPECT_ERR("{\"keys\": [{\"name\": \"a\"}]}", "t.json: keys[0].key: required (the client's API key, e.g. \"${CLIENT_KEY}\")");
    EXPECT_ERR("{\"keys\": [{\"name\": \"a\", \"key\": \"\"}]}", "t.json: keys[0].key: must not be empty");
    EXPECT_ERR("{\"keys\": [{\"name\": \"a\", \"key\": \"k1\"}, {\"name\": \"a\", \"key\": \"k2\"}]}",
               "t.json: keys[1].name: duplicate name \"a\" (also keys[0])");
    EXPECT_ERR("{\"keys\": [{\"name\": \"a\", \"key\": \"k1\", \"rpm\": -1}]}",
               "t.json: keys[0].rpm: must be between 0 and 100000000, got -1");
    EXPECT_ERR("{\"keys\": {}}", "t.json: keys: expected an array of {\"name\", \"key\"} objects, got an object");
    EXPECT_ERR("{\"keys\": [\"k1\"]}", "t.json: keys[0]: expected an object, got \"k1\"");
}

static void test_upstream_errors(void) {
    EXPECT_ERR("{\"upstreams\": {\"o\": {}}}", "t.json: upstreams.o.base_url: required (e.g. \"https://api.openai.com/v1\")");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"api.openai.com\"}}}",
               "t.json: upstreams.o.base_url: expected an http:// or https:// URL, got \"api.openai.com\"");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"kind\": \"gemini\"}}}",
               "t.json: upstreams.o.kind: expected one of openai, azure, anthropic, got \"gemini\"");
    EXPECT_ERR("{\"upstreams\": {\"az\": {\"base_url\": \"https://h\", \"kind\": \"azure\"}}}",
               "t.json: upstreams.az.api_version: required for kind \"azure\" (e.g. \"2024-10-21\")");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"api_key_env\": \"$OPENAI\"}}}",
               "t.json: upstreams.o.api_key_env: expected the name of an environment variable (e.g. \"OPENAI_API_KEY\"), got \"$OPENAI\"");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"timeouts\": {\"connect\": 0}}}}",
               "t.json: upstreams.o.timeouts.connect: must be between 1ms and 86400000ms, got 0ms");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"max_connections\": 0}}}",
               "t.json: upstreams.o.max_connections: must be between 1 and 100000, got 0");
    EXPECT_ERR("{\"upstreams\": {\"o\": {\"base_url\": \"http://h\", \"headers\": {\"Bad Name\": \"v\"}}}}",
               "t.json: upstreams.o.headers.Bad Name: invalid character in header name");
    EXPECT_ERR("{\"upstreams\": {\"a/b\": {\"base_url\": \"http://h\"}}}",
               "t.json: upstreams.a/b: an upstream name must not contain '/' or start with \"local:\"");
    EXPECT_ERR("{\"upstreams\": {\"o\": \"http://h\"}}", "t.json: upstreams.o: expected an object, got \"http://h\"");

    struct cfg *c = LOAD_OK("{\"upstreams\": {\"a\": {\"kind\": \"anthropic\", \"base_url\": \"https://api.anthropic.com/v1///\","
                            " \"timeouts\": {\"connect\": \"2s\", \"first_byte\": \"30s\", \"idle\": \"15s\", \"total\": \"5m\"},"
                            " \"tls_verify\": false, \"ca_file\": \"ca.pem\", \"headers\": {\"anthropic-version\": \"2023-06-01\"}}}}");
    if (c) {
        const struct cfg_upstream *u = &c->upstreams[0];
        CHECK(u->kind == CFG_UPSTREAM_ANTHROPIC);
        CHECK_STR(u->base_url, "https://api.anthropic.com/v1");
        CHECK(u->connect_timeout_ms == 2000 && u->first_byte_timeout_ms == 30000);
        CHECK(u->idle_timeout_ms == 15000 && u->total_timeout_ms == 300000);
        CHECK(u->tls_verify == 0);
        CHECK_STR(u->ca_file, "/cfg/ca.pem");
        CHECK(u->n_headers == 1);
        CHECK_STR(u->headers[0].name, "anthropic-version");
        CHECK_STR(u->headers[0].value, "2023-06-01");
        cfg_free(c);
    }
}

static void test_local_errors(void) {
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\"}}}",
               "t.json: local_models.m.sha256: required; run `llmpin verify FILE` and paste the hash it prints, or write \"unpinned\" to skip the check");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"abc\"}}}",
               "t.json: local_models.m.sha256: expected 64 hex digits or \"unpinned\", got \"abc\"");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"sha256\": \"unpinned\"}}}", "t.json: local_models.m.path: required (a GGUF file)");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"threads\": 300}}}",
               "t.json: local_models.m.threads: must be between 0 and 256, got 300");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"chat_template\": \"alpaca\"}}}",
               "t.json: local_models.m.chat_template: expected one of auto, llama2, llama3, chatml, zephyr, mistral, gemma, phi3, plain, got \"alpaca\"");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"chat_template\": \"chatml\", \"chat_template_file\": \"t.jinja\"}}}",
               "t.json: local_models.m.chat_template_file: cannot be used with chat_template \"chatml\" (a file replaces the model's template; a family replaces both)");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"chat_template_file\": \"t.jinja\", \"chat_template_name\": \"tool_use\"}}}",
               "t.json: local_models.m.chat_template_name: names one of the model's own templates; it cannot be used with chat_template or chat_template_file");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"chat_template_file\": 3}}}",
               "t.json: local_models.m.chat_template_file: expected a string, got 3");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"max_batch\": 0}}}",
               "t.json: local_models.m.max_batch: must be between 1 and 256, got 0");
    EXPECT_ERR("{\"local_models\": {\"m\": {\"path\": \"m.gguf\", \"sha256\": \"unpinned\", \"kv_cache\": \"q8\"}}}",
               "t.json: local_models.m.kv_cache: expected one of f16, f32, got \"q8\"");

    struct cfg *c = LOAD_OK("{\"local_models\": {\"m\": {\"path\": \"/abs/m.gguf\", \"sha256\": \"sha256:78C4953CF6EF0E0DD7FC67DAA5F89F5ECE8F5DE721D77E5EAD669645A508F9AB\","
                            " \"context_length\": 512, \"threads\": 2, \"chat_template\": \"chatml\", \"max_queue\": 0, \"max_batch\": 4, \"kv_cache\": \"f32\"}}}");
    if (c) {
        const struct cfg_local_model *m = &c->local_models[0];
        CHECK_STR(m->path, "/abs/m.gguf");
        CHECK_STR(m->sha256, HASH);
        CHECK(m->context_length == 512 && m->threads == 2 && m->max_queue == 0 && m->max_batch == 4 &&
              m->kv_f32 == 1);
        CHECK_STR(m->chat_template, "chatml");
        cfg_free(c);
    }
}

static void test_route_errors(void) {
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"*\", \"targets\": [\"openai\"]}, {\"match\": \"x\", \"targets\": [{\"upstream\": \"openia\"}]}]}",
               "t.json: routes[1].targets[0].upstream: no upstream named \"openia\" (known: openai, azure)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openia/gpt-4o\"]}]}",
               "t.json: routes[0].targets[0].upstream: no upstream named \"openia\" (known: openai, azure)");
    EXPECT_ERR("{\"routes\": [{\"match\": \"x\", \"targets\": [\"local:nope\"]}]}",
               "t.json: routes[0].targets[0].local: no local model named \"nope\" (known: none defined)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"targets\": [\"openai\"]}]}",
               "t.json: routes[0].match: required (a model name or glob such as \"gpt-4o*\", or an array of them)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": [], \"targets\": [\"openai\"]}]}", "t.json: routes[0].match: must not be an empty array");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\"}]}",
               "t.json: routes[0].targets: required (e.g. [\"openai/gpt-4o\", \"local:NAME\"])");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": []}]}", "t.json: routes[0].targets: must list at least one target");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"targets\": [{\"upstream\": \"openai\", \"local\": \"tiny\"}]}]}",
               "t.json: routes[0].targets[0]: set exactly one of \"upstream\" or \"local\"");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [{\"model\": \"m\"}]}]}",
               "t.json: routes[0].targets[0]: set exactly one of \"upstream\" or \"local\"");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"mode\": \"local\", \"targets\": [\"local:tiny\", \"openai\"]}]}",
               "t.json: routes[0].targets[1]: mode local allows only local targets, got upstream \"openai\"");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"mode\": \"shadow\", \"targets\": [\"openai\"]}]}",
               "t.json: routes[0].targets: mode shadow needs exactly 2 targets (the one that serves, then the mirror), got 1");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"mode\": \"split\", \"targets\": [{\"upstream\": \"openai\", \"weight\": 0}, \"azure\"]}]}",
               "t.json: routes[0].targets[0].weight: mode split needs a weight > 0, got 0");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [{\"upstream\": \"openai\", \"weight\": 2}, \"azure\"]}]}",
               "t.json: routes[0].targets[0].weight: applies only to mode split (this route's mode is fallback)");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"targets\": [{\"local\": \"tiny\", \"pin\": {\"model\": \"x\"}}]}]}",
               "t.json: routes[0].targets[0].pin: pins apply only to upstream targets (a local model is pinned by its sha256)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"mode\": \"sideways\", \"targets\": [\"openai\"]}]}",
               "t.json: routes[0].mode: expected one of remote, local, fallback, split, shadow, got \"sideways\"");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"fallback_on\": [\"connect\", \"404\"]}]}",
               "t.json: routes[0].fallback_on[1]: expected one of connect, timeout, 429, 5xx, circuit_open, drift, got \"404\"");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"on_drift\": \"ignore\"}]}",
               "t.json: routes[0].on_drift: expected one of record, fallback, reject, got \"ignore\"");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"keys\": [\"alice\"]}]}",
               "t.json: routes[0].keys[0]: no client key named \"alice\"");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"keys\": []}]}",
               "t.json: routes[0].keys: must not be an empty array (omit \"keys\" to allow every client key)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"retry\": {\"max_attempts\": 11}}]}",
               "t.json: routes[0].retry.max_attempts: must be between 1 and 10, got 11");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"retry\": {\"base\": \"2s\", \"max\": \"1s\"}}]}",
               "t.json: routes[0].retry.max: must be at least retry.base (2000 ms), got 1000 ms");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"shadow\": {\"sample\": 0.1}}]}",
               "t.json: routes[0].shadow: applies only to mode shadow (this route's mode is remote)");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"mode\": \"shadow\", \"targets\": [\"openai\", \"local:tiny\"], \"shadow\": {\"sample\": 1.5}}]}",
               "t.json: routes[0].shadow.sample: must be between 0 and 1, got 1.5");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"sticky\": true}]}",
               "t.json: routes[0].sticky: applies only to mode split (this route's mode is remote)");
    EXPECT_ERR("{" UP ", \"routes\": [{\"name\": \"r\", \"match\": \"x\", \"targets\": [\"openai\"]}, {\"name\": \"r\", \"match\": \"y\", \"targets\": [\"openai\"]}]}",
               "t.json: routes[1].name: duplicate route name \"r\" (also routes[0])");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"/gpt\"]}]}",
               "t.json: routes[0].targets[0]: expected \"UPSTREAM/MODEL\", \"UPSTREAM\" or \"local:MODEL\", got \"/gpt\"");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"targets\": [\"local:tiny\", \"openai\"], \"mode\": \"remote\"}]}",
               "t.json: routes[0].targets[0]: mode remote allows only upstream targets, got local \"tiny\" (use mode local or fallback)");
    EXPECT_ERR("{" UP ", " LM ", \"routes\": [{\"match\": \"x\", \"targets\": [{\"local\": \"tiny\", \"model\": \"m\"}]}]}",
               "t.json: routes[0].targets[0].model: applies only to upstream targets");
    EXPECT_ERR("{" UP ", \"routes\": [{\"match\": \"x\", \"targets\": [\"openai\"], \"enabled_if_env\": \"${X}\"}]}",
               "t.json: routes[0].enabled_if_env: environment variable X is not set (write \"${X:-default}\" to give a default)");

    /* everything at once */
    struct cfg *c = LOAD_OK("{\"keys\": [{\"name\": \"alice\", \"key\": \"k1\", \"route_override\": true}], " UP ", " LM ", \"routes\": ["
        "{\"name\": \"split\", \"match\": \"gpt-4o\", \"keys\": [\"alice\"], \"mode\": \"split\", \"sticky\": true,"
        " \"targets\": [{\"upstream\": \"openai\", \"model\": \"gpt-4o-2024-08-06\", \"weight\": 3,"
        "   \"pin\": {\"model\": \"gpt-4o-2024-08-06\", \"system_fingerprint\": \"fp_*\"}}, {\"upstream\": \"azure\", \"weight\": 1.5}],"
        " \"fallback_on\": [\"connect\", \"5xx\"], \"on_drift\": \"reject\", \"retry\": {\"max_attempts\": 3, \"base\": \"100ms\", \"max\": \"2s\"}},"
        "{\"name\": \"sh\", \"match\": \"tiny-shadow\", \"mode\": \"shadow\", \"targets\": [\"openai/gpt-4o-mini\", \"local:tiny\"],"
        " \"shadow\": {\"sample\": 0.25, \"max_inflight\": 2}, \"on_drift\": \"fallback\", \"fallback_on\": []}]}");
    if (c) {
        const struct cfg_route *r = &c->routes[0];
        CHECK(r->mode == CFG_MODE_SPLIT && r->sticky == 1);
        CHECK(r->n_keys == 1);
        CHECK_STR(r->keys[0], "alice");
        CHECK(r->targets[0].weight == 3.0 && r->targets[1].weight == 1.5);
        CHECK_STR(r->targets[0].pin_model, "gpt-4o-2024-08-06");
        CHECK_STR(r->targets[0].pin_fingerprint, "fp_*");
        CHECK(r->targets[1].upstream_idx == 1);
        CHECK(r->fallback_on == (CFG_FB_CONNECT | CFG_FB_5XX));
        CHECK(r->on_drift == CFG_DRIFT_REJECT);
        CHECK(r->retry.max_attempts == 3 && r->retry.base_ms == 100 && r->retry.max_ms == 2000);
        r = &c->routes[1];
        CHECK(r->mode == CFG_MODE_SHADOW);
        CHECK(r->shadow_sample == 0.25 && r->shadow_max_inflight == 2);
        CHECK(r->on_drift == CFG_DRIFT_FALLBACK && r->fallback_on == 0);
        CHECK(c->n_routes == 3); /* implicit "tiny" */
        CHECK(c->keys[0].route_override == 1);
        cfg_free(c);
    }
}

static void test_enabled_if_env(void) {
    const char *text = "{" UP ", " LM ", \"routes\": [{\"name\": \"gpt\", \"match\": \"gpt-*\", \"enabled_if_env\": \"LLMPIN_T_GATE\","
                       " \"targets\": [\"openai\", \"local:tiny\"]}, {\"name\": \"all\", \"match\": \"x\", \"targets\": [\"azure\"]}],"
                       " \"drift\": {\"probes\": [{\"name\": \"p1\", \"targets\": [\"gpt\"]}, {\"name\": \"p2\", \"targets\": [\"gpt\", \"all\"]}]}}";
    unsetenv("LLMPIN_T_GATE");
    struct cfg *c = LOAD_OK(text);
    if (c) {
        CHECK(c->n_routes == 2);
        CHECK_STR(c->routes[0].name, "all");
        CHECK_STR(c->routes[1].name, "tiny");
        CHECK(c->drift.n_probes == 1);
        CHECK_STR(c->drift.probes[0].name, "p2");
        CHECK(c->drift.probes[0].n_targets == 1);
        CHECK_STR(c->drift.probes[0].targets[0], "all");
        cfg_free(c);
    }
    setenv("LLMPIN_T_GATE", "", 1);
    c = LOAD_OK(text);
    if (c) {
        CHECK(c->n_routes == 2);
        cfg_free(c);
    }
    setenv("LLMPIN_T_GATE", "1", 1);
    c = LOAD_OK(text);
    if (c) {
        CHECK(c->n_routes == 3);
        CHECK_STR(c->routes[0].name, "gpt");
        CHECK_STR(c->routes[0].enabled_if_env, "LLMPIN_T_GATE");
        CHECK(c->drift.n_probes == 2);
        CHECK(c->drift.probes[0].interval_s == 3600);
        CHECK_STR(c->drift.probes[0].path, "builtin:default");
        cfg_free(c);
    }
    unsetenv("LLMPIN_T_GATE");
}

static void test_breaker_drift_errors(void) {
    EXPECT_ERR("{\"breaker\": {\"error_rate\": 0}}", "t.json: breaker.error_rate: must be greater than 0 and at most 1, got 0");
    EXPECT_ERR("{\"breaker\": {\"min_requests\": 0}}", "t.json: breaker.min_requests: must be between 1 and 1000000, got 0");
    EXPECT_ERR("{\"breaker\": {\"cooldown\": \"fast\"}}",
               "t.json: breaker.cooldown: expected a duration such as \"30s\", \"500ms\" or \"2m\", got \"fast\"");
    EXPECT_ERR("{\"drift\": {\"false_alarm_rate\": 1}}", "t.json: drift.false_alarm_rate: must be strictly between 0 and 1, got 1");
    EXPECT_ERR("{\"drift\": {\"writer_nice\": 20}}", "t.json: drift.writer_nice: expected \"idle\" or a nice value between 0 and 19, got 20");
    EXPECT_ERR("{\"drift\": {\"writer_nice\": \"low\"}}", "t.json: drift.writer_nice: expected \"idle\" or a nice value between 0 and 19, got \"low\"");
    EXPECT_ERR("{\"drift\": {\"min_drop\": -0.1}}", "t.json: drift.min_drop: must be strictly between 0 and 1, got -0.1");
    EXPECT_ERR("{\"drift\": {\"store_outputs\": \"all\"}}", "t.json: drift.store_outputs: expected one of none, hash, full, got \"all\"");
    EXPECT_ERR("{\"drift\": {\"retention_days\": -1}}", "t.json: drift.retention_days: must be between 0 and 36500, got -1");
    EXPECT_ERR("{\"drift\": {\"webhook_url\": \"ftp://token@h\"}}", "t.json: drift.webhook_url: expected an http:// or https:// URL");
    EXPECT_ERR("{\"drift\": {\"probes\": [{\"name\": \"p\"}]}}",
               "t.json: drift.probes[0].targets: required (route names, local model names or \"upstream/model\")");
    EXPECT_ERR("{\"drift\": {\"probes\": [{\"targets\": [\"nothing\"]}]}}",
               "t.json: drift.probes[0].targets[0]: \"nothing\" is not a route, local model, upstream or \"upstream/model\"");
    EXPECT_ERR("{\"drift\": {\"probes\": [{\"path\": \"builtin:math\", \"targets\": [\"x\"]}]}}",
               "t.json: drift.probes[0].path: unknown builtin probe set \"builtin:math\" (known: builtin:default, builtin:primes)");
    EXPECT_ERR("{\"drift\": {\"probes\": [{\"targets\": [\"x\"], \"interval\": \"10ms\"}]}}",
               "t.json: drift.probes[0].interval: must be a whole number of seconds, got \"10ms\"");

    struct cfg *c = LOAD_OK("{" UP ", " LM ", \"drift\": {\"enabled\": false, \"db_path\": \"/var/lib/llmpin.db\", \"retention_mb\": 0,"
                            " \"webhook_url\": \"${LLMPIN_T_HOOK:-}\", \"baseline_probes\": 50, \"min_drop\": 0.2,"
                            " \"probes\": [{\"name\": \"math\", \"path\": \"probes/math.jsonl\", \"targets\": [\"openai/gpt-4o\", \"tiny\"], \"interval\": \"10m\"}]}}");
    if (c) {
        CHECK(c->drift.enabled == 0);
        CHECK_STR(c->drift.db_path, "/var/lib/llmpin.db");
        CHECK(c->drift.retention_mb == 0);
        CHECK(c->drift.webhook_url == NULL);
        CHECK(c->drift.baseline_probes == 50 && c->drift.min_drop == 0.2);
        CHECK(c->drift.n_probes == 1);
        CHECK_STR(c->drift.probes[0].path, "/cfg/probes/math.jsonl");
        CHECK(c->drift.probes[0].n_targets == 2);
        CHECK(c->drift.probes[0].interval_s == 600);
        cfg_free(c);
    }
}

int main(void) {
    test_syntax();
    test_comments();
    test_duplicates_and_unknown();
    test_env();
    test_defaults();
    test_units();
    test_server_errors();
    test_keys_errors();
    test_upstream_errors();
    test_local_errors();
    test_route_errors();
    test_enabled_if_env();
    test_breaker_drift_errors();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("config load: all passed\n");
    return 0;
}
