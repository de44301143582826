/*
 * test_request.c - unit tests for the proxy's own pieces that need no
 * sockets: OpenAI request validation (common/llm.c), the metric families
 * (proxy/metrics.c) and the number formatting of the access log
 * (common/util.c). Each check states the exact expected value.
 */
#include <stdio.h>
#include <string.h>

#include "common/llm.h"
#include "common/util.h"
#include "proxy/metrics.h"

#include "ptest.h"

/* Parse body for ep; expect failure with this param, code and message. */
static void expect_error(enum llm_endpoint ep, const char *body, const char *param, const char *code,
                         const char *msg) {
    struct llm_request r;
    char p[96], c[64], m[400];
    int rc = llm_request_parse(ep, body, strlen(body), &r, p, sizeof p, c, sizeof c, m, sizeof m);
    CHECK(rc == -1, "body %s: expected an error", body);
    CHECK(strcmp(p, param) == 0, "body %s: param '%s', want '%s'", body, p, param);
    CHECK(strcmp(c, code) == 0, "body %s: code '%s', want '%s'", body, c, code);
    if (msg) CHECK(strcmp(m, msg) == 0, "body %s: message '%s', want '%s'", body, m, msg);
    llm_request_free(&r);
}

static void test_errors(void) {
    expect_error(LLM_CHAT, "", "", "invalid_json", "The request body is empty; expected a JSON object.");
    expect_error(LLM_CHAT, "{\"model\": \"x\",\n \"messages\": [}", "", "invalid_json",
                 "We could not parse the JSON body of your request: unexpected '}' where a value was expected at line 2, column 15 (byte 29).");
    /* one reading for routing and forwarding: duplicate keys, NUL and trailing bytes are refused */
    expect_error(LLM_CHAT, "{\"model\":\"a\",\"messages\":[],\"model\":\"b\"}", "", "invalid_json",
                 "We could not parse the JSON body of your request: duplicate key \"model\" in an object "
                 "(a key may appear once) at line 1, column 28 (byte 27).");
    expect_error(LLM_CHAT, "{\"model\":\"a\\u0000b\",\"messages\":[]}", "", "invalid_json", NULL);
    expect_error(LLM_CHAT, "{\"model\":\"a\",\"messages\":[]}\n{}", "", "invalid_json",
                 "We could not parse the JSON body of your request: unexpected data after the end of the JSON "
                 "document at line 2, column 1 (byte 28).");
    expect_error(LLM_CHAT, "[1,2]", "", "invalid_json", "The request body must be a JSON object, not an array.");
    expect_error(LLM_CHAT, "{\"model\":\"\xff\"}", "", "invalid_json",
                 "We could not parse the JSON body of your request: it is not valid UTF-8 text (byte 10).");
    expect_error(LLM_CHAT, "{\"model\":\"\xed\xa0\x80\"}", "", "invalid_json", NULL); /* surrogate */
    expect_error(LLM_CHAT, "{\"model\":\"\xc0\xaf\"}", "", "invalid_json", NULL);     /* overlong */
    expect_error(LLM_CHAT, "{\"messages\":[]}", "model", "missing_required_parameter",
                 "Missing required parameter: 'model'.");
    expect_error(LLM_CHAT, "{\"model\":7}", "model", "invalid_type",
                 "Invalid type for 'model': expected a string, but got a number.");
    expect_error(LLM_CHAT, "{\"model\":\"m\"}", "messages", "missing_required_parameter",
                 "Missing required parameter: 'messages'.");
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":{}}", "messages", "invalid_type",
                 "Invalid type for 'messages': expected an array, but got an object.");
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[]}", "messages", "invalid_value", NULL);
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"hi\"}]}", "messages[0].role",
                 "missing_required_parameter", "Missing required parameter: 'messages[0].role'.");
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"robot\"}]}",
                 "messages[1].role", "invalid_value", NULL);
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
                 "messages[0].content", "invalid_type", NULL);
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":\"hot\"}",
                 "temperature", "invalid_type", "Invalid type for 'temperature': expected a number, but got a string.");
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":3}",
                 "temperature", "invalid_value", "Invalid value for 'temperature': 3 is outside [0, 2].");
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":1.5}",
                 "max_tokens", "invalid_type", NULL);
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream\":\"yes\"}",
                 "stream", "invalid_type", NULL);
    expect_error(LLM_CHAT,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream_options\":{\"include_usage\":1}}",
                 "stream_options.include_usage", "invalid_type", NULL);
    expect_error(LLM_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":[\"a\",2]}",
                 "stop[1]", "invalid_type", NULL);
    expect_error(LLM_CHAT,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
                 "stop", "invalid_value", NULL);
    expect_error(LLM_COMPLETIONS, "{\"model\":\"m\"}", "prompt", "missing_required_parameter", NULL);
    expect_error(LLM_COMPLETIONS, "{\"model\":\"m\",\"prompt\":{}}", "prompt", "invalid_type", NULL);
    expect_error(LLM_EMBEDDINGS, "{\"model\":\"m\",\"input\":[]}", "input", "invalid_value", NULL);
    expect_error(LLM_EMBEDDINGS, "{\"model\":\"m\",\"input\":[\"a\",{}]}", "input[1]", "invalid_type", NULL);
}

static void test_valid(void) {
    const char *body =
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hel\"},{\"type\":\"image_url\"},"
        "{\"type\":\"text\",\"text\":\"lo\"}]}],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"temperature\":0,\"seed\":42,\"max_completion_tokens\":17,\"stop\":\"END\",\"tools\":[{}],"
        "\"a_future_field\":{\"x\":1}}";
    struct llm_request r;
    char p[96], c[64], m[400];
    int rc = llm_request_parse(LLM_CHAT, body, strlen(body), &r, p, sizeof p, c, sizeof c, m, sizeof m);
    CHECK(rc == 0, "valid body rejected: %s", m);
    if (rc == 0) {
        CHECK(strcmp(r.model, "gpt-4o") == 0, "model %s", r.model);
        CHECK(r.stream == 1 && r.include_usage == 1, "stream %d include_usage %d", r.stream, r.include_usage);
        CHECK(r.has_temperature && r.temperature == 0, "temperature");
        CHECK(r.has_seed && r.seed == 42, "seed");
        CHECK(r.max_tokens == 17, "max_tokens %d", r.max_tokens);
        CHECK(r.n_stop == 1 && strcmp(r.stop[0], "END") == 0, "stop");
        CHECK(r.n_messages == 2, "n_messages %d", r.n_messages);
        CHECK(strcmp(r.messages[1].content, "hello") == 0, "content parts joined: '%s'", r.messages[1].content);
        CHECK(r.has_tools == 1, "tools");
        CHECK(llm_request_deterministic(&r) == 1, "temperature 0 is deterministic");
    }
    llm_request_free(&r);

    const char *utf = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo \xf0\x9f\xa6\x99 \xe4\xb8\xad\"}]}";
    rc = llm_request_parse(LLM_CHAT, utf, strlen(utf), &r, p, sizeof p, c, sizeof c, m, sizeof m);
    CHECK(rc == 0 && strcmp(r.messages[0].content, "h\xc3\xa9llo \xf0\x9f\xa6\x99 \xe4\xb8\xad") == 0,
          "valid UTF-8 accepted: %s", m);
    llm_request_free(&r);

    const char *emb = "{\"model\":\"e\",\"input\":[\"a\",\"b\"]}";
    rc = llm_request_parse(LLM_EMBEDDINGS, emb, strlen(emb), &r, p, sizeof p, c, sizeof c, m, sizeof m);
    CHECK(rc == 0 && r.n_inputs == 2 && strcmp(r.inputs[1], "b") == 0, "embeddings inputs");
    llm_request_free(&r);
    /* token-id inputs are valid for remote upstreams: no text inputs */
    const char *tok = "{\"model\":\"e\",\"input\":[[1,2,3]]}";
    rc = llm_request_parse(LLM_EMBEDDINGS, tok, strlen(tok), &r, p, sizeof p, c, sizeof c, m, sizeof m);
    CHECK(rc == 0 && r.n_inputs == 0, "token id inputs accepted, not as text");
    llm_request_free(&r);
}

static void test_metrics(void) {
    struct metrics m;
    memset(&m, 0, sizeof m);
    metrics_inc(&m.requests, 1, "route", "r1", "target", "openai:gpt", "status", "200", NULL);
    metrics_inc(&m.requests, 2, "route", "r1", "target", "openai:gpt", "status", "200", NULL);
    metrics_inc(&m.requests, 1, "route", "we\"ird", "target", "", "status", "404", NULL);
    metrics_observe(&m.duration, 0.0007);
    metrics_observe(&m.duration, 2.0);
    m.inflight = 3;
    struct buf b = {0};
    metrics_render(&m, &b);
    CHECK(strstr(b.p, "llmpin_requests_total{route=\"r1\",target=\"openai:gpt\",status=\"200\"} 3\n") != NULL,
          "summed series missing:\n%s", b.p);
    CHECK(strstr(b.p, "llmpin_requests_total{route=\"we\\\"ird\",target=\"\",status=\"404\"} 1\n") != NULL,
          "escaped label missing");
    CHECK(strstr(b.p, "llmpin_request_duration_seconds_bucket{le=\"0.0005\"} 0\n") != NULL, "bucket 0.0005");
    CHECK(strstr(b.p, "llmpin_request_duration_seconds_bucket{le=\"0.001\"} 1\n") != NULL, "bucket 0.001");
    CHECK(strstr(b.p, "llmpin_request_duration_seconds_bucket{le=\"2.5\"} 2\n") != NULL, "bucket 2.5");
    CHECK(strstr(b.p, "llmpin_request_duration_seconds_bucket{le=\"+Inf\"} 2\n") != NULL, "bucket +Inf");
    CHECK(strstr(b.p, "llmpin_request_duration_seconds_count 2\n") != NULL, "count");
    CHECK(strstr(b.p, "llmpin_inflight_requests 3\n") != NULL, "inflight");
    buf_free(&b);
    metrics_free(&m);
}

static void test_format(void) {
    char mem[8];
    struct buf b;
    buf_init_on(&b, mem, sizeof mem);
    buf_u64(&b, 0);
    buf_appends(&b, " ");
    buf_u64(&b, 18446744073709551615ull);
    buf_appends(&b, " ");
    buf_us_as_ms(&b, 12345);
    buf_appends(&b, " ");
    buf_us_as_ms(&b, 7);
    buf_appends(&b, " ");
    buf_us_as_ms(&b, -1500);
    CHECK(strcmp(b.p, "0 18446744073709551615 12.345 0.007 -1.500") == 0, "got '%s'", b.p);
    CHECK(b.borrowed == 0, "outgrew the caller's storage onto the heap");
    buf_free(&b);
    /* JSON string escaping: runs copied whole, every escape class, embedded NUL */
    struct buf j = {0};
    const char raw[] = "plain \"q\" back\\slash\n\r\t\x01\x1f\x7f caf\xc3\xa9 \0end";
    buf_json_strn(&j, raw, sizeof raw - 1);
    const char *want = "\"plain \\\"q\\\" back\\\\slash\\n\\r\\t\\u0001\\u001f\x7f caf\xc3\xa9 \\u0000end\"";
    CHECK(strcmp(j.p, want) == 0, "json escape got '%s'", j.p);
    buf_reset(&j);
    buf_json_str(&j, "");
    CHECK(strcmp(j.p, "\"\"") == 0, "empty json string '%s'", j.p);
    buf_reset(&j);
    buf_json_str(&j, NULL);
    CHECK(strcmp(j.p, "null") == 0, "NULL json string '%s'", j.p);
    buf_free(&j);
    CHECK(util_has_token("keep-alive, Close", "close") == 1, "token after a comma, any case");
    CHECK(util_has_token(" gzip ,\tchunked ", "chunked") == 1, "token with whitespace around");
    CHECK(util_has_token("closed, x-close", "close") == 0, "no partial matches");
    CHECK(util_has_token("", "close") == 0 && util_has_token(NULL, "close") == 0, "empty and NULL values");
    char id[40];
    util_make_id("req_", id, sizeof id);
    CHECK(strlen(id) == 28 && strncmp(id, "req_", 4) == 0, "id '%s'", id);
    char small[10];
    util_make_id("req_", small, sizeof small);           /* cut to fit, like snprintf */
    CHECK(strlen(small) == 9 && strncmp(small, "req_", 4) == 0, "short id '%s'", small);
    util_make_id("a_long_prefix_", small, sizeof small);
    CHECK(strcmp(small, "a_long_pr") == 0, "prefix cut '%s'", small);
    char cp[4];
    CHECK(util_strlcpy(cp, "abcdef", sizeof cp) == 6 && strcmp(cp, "abc") == 0, "strlcpy cut '%s'", cp);
    CHECK(util_strlcpy(cp, "ab", sizeof cp) == 2 && strcmp(cp, "ab") == 0, "strlcpy fits '%s'", cp);
    CHECK(util_strlcpy(cp, "xyz", 0) == 3 && strcmp(cp, "ab") == 0, "strlcpy cap 0 writes nothing");
    CHECK(util_ct_equal("abc", 3, "abc", 3) == 1 && util_ct_equal("abc", 3, "abd", 3) == 0 &&
              util_ct_equal("abc", 3, "abcd", 4) == 0,
          "constant-time compare");
}

int main(void) {
    test_errors();
    test_valid();
    test_metrics();
    test_format();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("proxy_request: all checks passed\n");
    return 0;
}
