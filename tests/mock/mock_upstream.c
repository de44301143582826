/*
 * mock_upstream.c - a fake OpenAI-compatible server for llmpin's tests and
 * benchmarks.
 *
 * Why it exists: the proxy's integration tests, the SDK conformance tests
 * and the proxy benchmark all need an upstream that answers exactly like
 * OpenAI's wire format, deterministically, and that can also misbehave on
 * demand (500s, 429s, timeouts, stalls, resets, garbage). It is also the
 * "direct" baseline of the benchmark, so the normal path does no logging
 * and only the allocations cJSON needs to read the request.
 *
 * Behaviour is selected by the request's "model" value, so that it flows
 * through any proxy unchanged:
 *   any other name        deterministic answer "mock answer to: <last user
 *                         message>", usage as word counts
 *   mock-slowstream       streams with 50 ms between chunks
 *   mock-long             streams 200 content chunks, 20 ms apart
 *   mock-forever          streams a chunk every 500 ms until the client
 *                         leaves (held-streams benchmark)
 *   mock-tools            two parallel tool calls (index 0 and 1)
 *   mock-500/-429/-401    OpenAI-shaped errors (429 with Retry-After: 1)
 *   mock-503              OpenAI-shaped 503 (overloaded)
 *   mock-timeout          never answers
 *   mock-slow-first-byte  answers after 1500 ms
 *   mock-stall            streams 2 chunks then stalls forever; not
 *                         streamed: the head and half the body, then stalls
 *   mock-reset            the same, then resets the connection
 *   mock-truncate         streamed: 2 chunks, then a clean end without
 *                         [DONE]; not streamed: a complete HTTP response
 *                         whose JSON body is cut in half
 *   mock-truncate-event   streams 2 chunks and half of a third event, then
 *                         a clean end
 *   mock-garbage          200 with a body that is not JSON (streamed: an
 *                         event stream whose events are not JSON)
 *   mock-sse-always       answers with an event stream even to stream:false
 *   mock-trickle          the whole answer, one byte every 100 ms
 *   mock-huge             an answer over 64 MiB (streamed: its first event
 *                         alone is over 64 MiB)
 *   mock-echo             content = JSON of the received method, path,
 *                         query and headers
 * Prompts of the form "Is N a prime number?..." are answered "[Yes]" or
 * "[No]" correctly until --accuracy-change-at requests were served, then
 * always "[Yes]" (and other answers become "mock changed answer to: ...").
 * The system_fingerprint is --fingerprint until --fingerprint-change-at
 * requests were served, then "<fingerprint>-changed".
 *
 * Paths: any prefix is accepted; the endpoint is found by the path's end
 * (/chat/completions, /completions, /embeddings, /models[/id], /responses),
 * so /v1/... and Azure's /openai/deployments/X/... both work. Control
 * endpoints: GET /_mock/stats, POST /_mock/config, POST /_mock/reset.
 *
 * Client cancellation: evhttp detaches a request whose connection dies
 * before the reply ended and calls the connection's close callback; every
 * deferred reply (delayed, streamed, held) is a struct job registered as
 * that callback, which frees the job and counts the cancellation.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define MOCK_CREATED 1700000000L
#define MOCK_STR_MAX 256

struct job;

struct mock {
    struct event_base *base;
    struct evhttp *http;
    struct event *sigterm, *sigint;

    /* configuration (command line, then POST /_mock/config) */
    char require_key[MOCK_STR_MAX];       /* "" = no key required */
    char fingerprint[MOCK_STR_MAX];       /* "" = system_fingerprint null */
    char served_model[MOCK_STR_MAX];      /* "" = echo the requested model */
    long fingerprint_change_at;           /* 0 = never */
    long accuracy_change_at;              /* 0 = never */
    int delay_ms;                         /* added before every API answer */

    /* statistics */
    unsigned long requests;               /* API requests (not /_mock/...) */
    unsigned long connections_accepted;
    unsigned long streams_started;
    unsigned long streams_completed;
    unsigned long streams_cancelled;      /* client went away mid-stream */
    unsigned long requests_cancelled;     /* client went away before any reply */
    unsigned long next_id;

    /* the last API request, kept in reused buffers */
    struct evbuffer *last_headers;        /* JSON object text */
    struct evbuffer *last_body;           /* raw bytes */
    struct evbuffer *last_path;
    struct evbuffer *last_query;
    struct evbuffer *last_method;

    struct job *jobs;                     /* live deferred replies */
};

/* ---- small JSON writers ------------------------------------------------- */

static void json_strn(struct evbuffer *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[512];
    size_t t = 0;
    tmp[t++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (t > sizeof tmp - 8) {
            evbuffer_add(b, tmp, t);
            t = 0;
        }
        switch (c) {
        case '"': tmp[t++] = '\\'; tmp[t++] = '"'; break;
        case '\\': tmp[t++] = '\\'; tmp[t++] = '\\'; break;
        case '\n': tmp[t++] = '\\'; tmp[t++] = 'n'; break;
        case '\r': tmp[t++] = '\\'; tmp[t++] = 'r'; break;
        case '\t': tmp[t++] = '\\'; tmp[t++] = 't'; break;
        default:
            if (c < 0x20) {
                tmp[t++] = '\\'; tmp[t++] = 'u'; tmp[t++] = '0'; tmp[t++] = '0';
                tmp[t++] = hex[c >> 4]; tmp[t++] = hex[c & 15];
            } else {
                tmp[t++] = (char)c;
            }
        }
    }
    tmp[t++] = '"';
    evbuffer_add(b, tmp, t);
}

static void json_str(struct evbuffer *b, const char *s)
{
    json_strn(b, s, strlen(s));
}

/* A string value or null when s is empty. */
static void json_str_or_null(struct evbuffer *b, const char *s)
{
    if (s[0]) json_str(b, s);
    else evbuffer_add(b, "null", 4);
}

static void copy_str(char *dst, const char *src)
{
    snprintf(dst, MOCK_STR_MAX, "%s", src ? src : "");
}

/* ---- request description -------------------------------------------------- */

enum endpoint {
    EP_NONE = 0, EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_MODELS, EP_MODEL,
    EP_RESPONSES,
};

enum behaviour {
    B_NORMAL = 0, B_SLOWSTREAM, B_LONG, B_TOOLS, B_500, B_429, B_401, B_TIMEOUT,
    B_SLOW_FIRST_BYTE, B_STALL, B_RESET, B_GARBAGE, B_ECHO, B_FOREVER, B_TRUNCATE,
    B_503, B_TRUNCATE_EVENT, B_SSE_ALWAYS, B_TRICKLE, B_HUGE,
};

static const struct { const char *name; enum behaviour b; } behaviours[] = {
    {"mock-slowstream", B_SLOWSTREAM}, {"mock-long", B_LONG},
    {"mock-tools", B_TOOLS}, {"mock-500", B_500}, {"mock-429", B_429},
    {"mock-401", B_401}, {"mock-timeout", B_TIMEOUT},
    {"mock-slow-first-byte", B_SLOW_FIRST_BYTE}, {"mock-stall", B_STALL},
    {"mock-reset", B_RESET}, {"mock-garbage", B_GARBAGE}, {"mock-echo", B_ECHO},
    {"mock-truncate", B_TRUNCATE}, {"mock-503", B_503},
    {"mock-truncate-event", B_TRUNCATE_EVENT}, {"mock-sse-always", B_SSE_ALWAYS},
    {"mock-trickle", B_TRICKLE}, {"mock-huge", B_HUGE},
    {"mock-forever", B_FOREVER},
};

static enum behaviour behaviour_of(const char *model)
{
    for (size_t i = 0; i < sizeof behaviours / sizeof behaviours[0]; i++)
        if (strcmp(model, behaviours[i].name) == 0) return behaviours[i].b;
    return B_NORMAL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Which endpoint a path names; for /models/{id} the id is copied out. */
static enum endpoint endpoint_of(const char *path, char *model_id, size_t idlen)
{
    const char *p;
    if (ends_with(path, "/chat/completions")) return EP_CHAT;
    if (ends_with(path, "/completions")) return EP_COMPLETIONS;
    if (ends_with(path, "/embeddings")) return EP_EMBEDDINGS;
    if (ends_with(path, "/models")) return EP_MODELS;
    if (ends_with(path, "/responses")) return EP_RESPONSES;
    if ((p = strstr(path, "/models/")) != NULL && p[8] && !strchr(p + 8, '/')) {
        snprintf(model_id, idlen, "%s", p + 8);
        return EP_MODEL;
    }
    return EP_NONE;
}

/* Azure: /openai/deployments/<name>/... names the model when the body
 * does not. */
static void deployment_of(const char *path, char *out, size_t outlen)
{
    const char *p = strstr(path, "/deployments/");
    out[0] = 0;
    if (!p) return;
    p += strlen("/deployments/");
    size_t n = strcspn(p, "/");
    if (n >= outlen) n = outlen - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* ---- answering -------------------------------------------------------------- */

static void set_json_type(struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
}

static void send_error(struct evhttp_request *req, int status, const char *reason,
                       const char *type, const char *code, const char *message)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    evbuffer_add_printf(b, "{\"error\":{\"message\":");
    json_str(b, message);
    evbuffer_add_printf(b, ",\"type\":");
    json_str(b, type);
    evbuffer_add_printf(b, ",\"param\":null,\"code\":");
    json_str(b, code);
    evbuffer_add_printf(b, "}}");
    set_json_type(req);
    evhttp_send_reply(req, status, reason, b);
    evbuffer_free(b);
}

static int count_words_n(const char *s, size_t len)
{
    int n = 0, in = 0;
    for (size_t i = 0; i < len; i++) {
        int sp = (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r');
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

static int count_words(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r');
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

/* Text of a message content: a string, or the "text" parts of an array. */
static void content_text(const cJSON *content, struct evbuffer *out)
{
    if (cJSON_IsString(content)) {
        evbuffer_add(out, content->valuestring, strlen(content->valuestring));
    } else if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) evbuffer_add(out, t->valuestring, strlen(t->valuestring));
        }
    }
}

static int words_of_content(const cJSON *content)
{
    struct evbuffer *b = evbuffer_new();
    int n;
    if (!b) return 0;
    content_text(content, b);
    n = count_words_n((const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
    evbuffer_free(b);
    return n;
}

/* If text asks "Is N a prime number?", store N and return 1. */
static int prime_question(const char *text, long *n)
{
    const char *p = strstr(text, "Is ");
    while (p) {
        char *end;
        long v = strtol(p + 3, &end, 10);
        if (end != p + 3 && strncmp(end, " a prime", 8) == 0) {
            *n = v;
            return 1;
        }
        p = strstr(p + 1, "Is ");
    }
    return 0;
}

static int is_prime(long n)
{
    if (n < 2) return 0;
    for (long d = 2; d * d <= n; d++)
        if (n % d == 0) return 0;
    return 1;
}

/* The parsed request and what the answer will be. */
struct call {
    struct mock *m;
    struct evhttp_request *req;
    enum endpoint ep;
    enum behaviour beh;
    cJSON *body;                /* parsed body or NULL */
    char model[MOCK_STR_MAX];   /* served "model" value */
    char fingerprint[MOCK_STR_MAX];
    unsigned long id;
    int stream;
    int include_usage;
    int prompt_tokens;
    struct evbuffer *content;   /* answer text (chat/completions) */
};

static void echo_json(struct mock *m, struct evbuffer *out)
{
    size_t n;
    evbuffer_add_printf(out, "{\"method\":");
    n = evbuffer_get_length(m->last_method);
    json_strn(out, (const char *)evbuffer_pullup(m->last_method, -1), n);
    evbuffer_add_printf(out, ",\"path\":");
    n = evbuffer_get_length(m->last_path);
    json_strn(out, (const char *)evbuffer_pullup(m->last_path, -1), n);
    evbuffer_add_printf(out, ",\"query\":");
    n = evbuffer_get_length(m->last_query);
    json_strn(out, (const char *)evbuffer_pullup(m->last_query, -1), n);
    evbuffer_add_printf(out, ",\"headers\":");
    evbuffer_add(out, evbuffer_pullup(m->last_headers, -1), evbuffer_get_length(m->last_headers));
    evbuffer_add(out, "}", 1);
}

/* Fills c->content and c->prompt_tokens from the request body. */
static void compute_answer(struct call *c)
{
    struct mock *m = c->m;
    struct evbuffer *q = evbuffer_new();
    int changed = m->accuracy_change_at > 0 && (long)m->requests > m->accuracy_change_at;
    long n;

    c->prompt_tokens = 0;
    if (!q) return;
    if (c->ep == EP_CHAT) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(c->body, "messages");
        const cJSON *msg, *last_user = NULL;
        cJSON_ArrayForEach(msg, msgs) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
            c->prompt_tokens += words_of_content(content);
            if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0)
                last_user = content;
        }
        if (last_user) content_text(last_user, q);
    } else {
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(c->body, "prompt");
        if (cJSON_IsArray(prompt)) prompt = cJSON_GetArrayItem(prompt, 0);
        if (cJSON_IsString(prompt)) {
            evbuffer_add(q, prompt->valuestring, strlen(prompt->valuestring));
            c->prompt_tokens = count_words(prompt->valuestring);
        }
    }
    evbuffer_add(q, "", 1);
    const char *question = (const char *)evbuffer_pullup(q, -1);

    if (c->beh == B_ECHO) {
        echo_json(m, c->content);
    } else if (c->beh == B_LONG) {
        for (int i = 0; i < 200; i++) evbuffer_add_printf(c->content, "tok%d ", i);
    } else if (prime_question(question, &n)) {
        evbuffer_add_printf(c->content, "%s", changed || is_prime(n) ? "[Yes]" : "[No]");
    } else {
        evbuffer_add_printf(c->content, "%s", changed ? "mock changed answer to: "
                                                      : "mock answer to: ");
        evbuffer_add(c->content, question, strlen(question));
    }
    evbuffer_free(q);
}

static int completion_tokens(struct call *c)
{
    size_t len = evbuffer_get_length(c->content);
    return count_words_n((const char *)evbuffer_pullup(c->content, -1), len);
}

static void usage_json(struct evbuffer *b, int prompt, int completion)
{
    evbuffer_add_printf(b, "{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                        "\"total_tokens\":%d}", prompt, completion, prompt + completion);
}

static const char *tool_names[2] = {"get_weather", "get_time"};
static const char *tool_args[2][2] = {
    {"{\"city\":", " \"Paris\"}"},
    {"{\"tz\":", " \"UTC\"}"},
};

static void chat_body(struct call *c, struct evbuffer *b)
{
    int ct = 0;
    evbuffer_add_printf(b, "{\"id\":\"chatcmpl-mock-%lu\",\"object\":\"chat.completion\","
                        "\"created\":%ld,\"model\":", c->id, MOCK_CREATED);
    json_str(b, c->model);
    evbuffer_add_printf(b, ",\"system_fingerprint\":");
    json_str_or_null(b, c->fingerprint);
    evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",");
    if (c->beh == B_TOOLS) {
        evbuffer_add_printf(b, "\"content\":null,\"tool_calls\":[");
        for (int i = 0; i < 2; i++) {
            evbuffer_add_printf(b, "%s{\"id\":\"call_mock_%d\",\"type\":\"function\","
                                "\"function\":{\"name\":\"%s\",\"arguments\":",
                                i ? "," : "", i, tool_names[i]);
            char args[64];
            snprintf(args, sizeof args, "%s%s", tool_args[i][0], tool_args[i][1]);
            json_str(b, args);
            evbuffer_add_printf(b, "}}");
            ct += 4;
        }
        evbuffer_add_printf(b, "]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]");
    } else {
        ct = completion_tokens(c);
        evbuffer_add_printf(b, "\"content\":");
        json_strn(b, (const char *)evbuffer_pullup(c->content, -1),
                  evbuffer_get_length(c->content));
        evbuffer_add_printf(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    }
    evbuffer_add_printf(b, ",\"usage\":");
    usage_json(b, c->prompt_tokens, ct);
    evbuffer_add(b, "}", 1);
}

static void completion_body(struct call *c, struct evbuffer *b)
{
    int ct = completion_tokens(c);
    evbuffer_add_printf(b, "{\"id\":\"cmpl-mock-%lu\",\"object\":\"text_completion\","
                        "\"created\":%ld,\"model\":", c->id, MOCK_CREATED);
    json_str(b, c->model);
    evbuffer_add_printf(b, ",\"system_fingerprint\":");
    json_str_or_null(b, c->fingerprint);
    evbuffer_add_printf(b, ",\"choices\":[{\"text\":");
    json_strn(b, (const char *)evbuffer_pullup(c->content, -1), evbuffer_get_length(c->content));
    evbuffer_add_printf(b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":");
    usage_json(b, c->prompt_tokens, ct);
    evbuffer_add(b, "}", 1);
}

/* ---- embeddings ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Eight values k/128 (exact in float32 and in short decimal). */
static void embedding_of(const char *s, size_t n, float v[8])
{
    uint64_t h = fnv1a(s, n);
    for (int k = 0; k < 8; k++) {
        int x = (int)((h >> (k * 8)) & 0xff) - 128;
        v[k] = (float)x / 128.0f;
    }
}

static void base64_floats(struct evbuffer *b, const float v[8])
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[32];
    char out[48];
    size_t o = 0;
    for (int k = 0; k < 8; k++) {
        uint32_t u;
        memcpy(&u, &v[k], 4);
        raw[k * 4] = u & 0xff; raw[k * 4 + 1] = (u >> 8) & 0xff;
        raw[k * 4 + 2] = (u >> 16) & 0xff; raw[k * 4 + 3] = (u >> 24) & 0xff;
    }
    for (size_t i = 0; i < 32; i += 3) {
        uint32_t w = (uint32_t)raw[i] << 16;
        if (i + 1 < 32) w |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < 32) w |= raw[i + 2];
        out[o++] = tbl[(w >> 18) & 63];
        out[o++] = tbl[(w >> 12) & 63];
        out[o++] = i + 1 < 32 ? tbl[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < 32 ? tbl[w & 63] : '=';
    }
    evbuffer_add(b, "\"", 1);
    evbuffer_add(b, out, o);
    evbuffer_add(b, "\"", 1);
}

static int embeddings_body(struct call *c, struct evbuffer *b)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(c->body, "input");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(c->body, "encoding_format");
    int b64 = cJSON_IsString(fmt) && strcmp(fmt->valuestring, "base64") == 0;
    int tokens = 0, idx = 0;
    const cJSON *item;
    cJSON *single = NULL;

    if (cJSON_IsString(input) || (cJSON_IsArray(input) && cJSON_IsNumber(cJSON_GetArrayItem(input, 0)))) {
        /* one input: wrap it so the loop below handles it */
        single = cJSON_CreateArray();
        if (!single) return -1;
        cJSON_AddItemReferenceToArray(single, (cJSON *)input);
        input = single;
    }
    if (!cJSON_IsArray(input) || cJSON_GetArraySize(input) == 0) {
        cJSON_Delete(single);
        return -1;
    }
    evbuffer_add_printf(b, "{\"object\":\"list\",\"data\":[");
    cJSON_ArrayForEach(item, input) {
        float v[8];
        if (cJSON_IsString(item)) {
            embedding_of(item->valuestring, strlen(item->valuestring), v);
            tokens += count_words(item->valuestring);
        } else {
            char *text = cJSON_PrintUnformatted(item);
            if (!text) { cJSON_Delete(single); return -1; }
            embedding_of(text, strlen(text), v);
            tokens += cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 1;
            free(text);
        }
        evbuffer_add_printf(b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":",
                            idx ? "," : "", idx);
        if (b64) {
            base64_floats(b, v);
        } else {
            evbuffer_add(b, "[", 1);
            for (int k = 0; k < 8; k++)
                evbuffer_add_printf(b, "%s%.9g", k ? "," : "", (double)v[k]);
            evbuffer_add(b, "]", 1);
        }
        evbuffer_add(b, "}", 1);
        idx++;
    }
    cJSON_Delete(single);
    evbuffer_add_printf(b, "],\"model\":");
    json_str(b, c->model);
    evbuffer_add_printf(b, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", tokens, tokens);
    return 0;
}

/* ---- deferred replies: delays, streams, holds --------------------------------- */

enum job_kind { JOB_REPLY, JOB_STREAM, JOB_HOLD, JOB_RAW };
enum stream_end { END_NORMAL, END_STALL, END_RESET, END_TRUNCATE, END_TRUNCATE_EVENT };

struct job {
    struct mock *m;
    struct job *prev, *next;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    struct event *watch;          /* EV_READ on the client socket: detects a close */
    enum job_kind kind;
    int started;                  /* stream stage: 0 nothing sent, 1 headers sent (content
                                   * events), 2 usage due, 3 [DONE] due, 4 over */

    /* JOB_REPLY; JOB_RAW: body is sent `piece` bytes per tick (0 = all at
     * once) after a chunked head of type `ctype`, then `end` */
    int status;
    struct evbuffer *body;
    size_t piece;
    const char *ctype;

    /* JOB_STREAM */
    enum endpoint ep;
    enum behaviour beh;
    enum stream_end end;
    int gap_ms;
    int step;                     /* next event number */
    int include_usage;
    int prompt_tokens, completion_tokens;
    unsigned long id;
    char model[MOCK_STR_MAX];
    char fingerprint[MOCK_STR_MAX];
    struct evbuffer *content;     /* remaining answer text */
    struct evbuffer *scratch;
};

static void job_free(struct job *j)
{
    struct mock *m = j->m;
    if (j->prev) j->prev->next = j->next;
    else m->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    if (j->evcon) evhttp_connection_set_closecb(j->evcon, NULL, NULL);
    if (j->timer) event_free(j->timer);
    if (j->watch) event_free(j->watch);
    if (j->body) evbuffer_free(j->body);
    if (j->content) evbuffer_free(j->content);
    if (j->scratch) evbuffer_free(j->scratch);
    free(j);
}

/* The client connection closed before the reply ended. */
static void job_closed(struct evhttp_connection *evcon, void *arg)
{
    struct job *j = arg;
    struct mock *m = j->m;
    if (j->kind == JOB_STREAM && j->started) m->streams_cancelled++;
    else m->requests_cancelled++;
    j->evcon = NULL; /* the connection is going away; do not touch it */
    /* A detached request is ours to free; an attached one is freed with its
     * connection. */
    if (evhttp_request_get_connection(j->req) == NULL)
        evhttp_send_reply_end(j->req);
    job_free(j);
}

static void job_timer(evutil_socket_t fd, short what, void *arg);
static void job_watch(evutil_socket_t fd, short what, void *arg);

static struct job *job_new(struct mock *m, struct evhttp_request *req, enum job_kind kind)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->m = m;
    j->req = req;
    j->kind = kind;
    j->evcon = evhttp_request_get_connection(req);
    j->timer = evtimer_new(m->base, job_timer, j);
    if (!j->timer || !j->evcon) {
        if (j->timer) event_free(j->timer);
        free(j);
        return NULL;
    }
    j->next = m->jobs;
    if (m->jobs) m->jobs->prev = j;
    m->jobs = j;
    evhttp_connection_set_closecb(j->evcon, job_closed, j);
    {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(j->evcon);
        int fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0) {
            j->watch = event_new(m->base, fd, EV_READ, job_watch, j);
            if (j->watch) event_add(j->watch, NULL);
        }
    }
    return j;
}

static void job_schedule(struct job *j, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(j->timer, &tv);
}

static void nodelay(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    int one = 1;
    if (bev && bufferevent_getfd(bev) >= 0)
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Common head of a chunk object; the caller appends "choices" etc. */
static void chunk_head(struct job *j, struct evbuffer *b)
{
    if (j->ep == EP_CHAT)
        evbuffer_add_printf(b, "data: {\"id\":\"chatcmpl-mock-%lu\",\"object\":\"chat.completion.chunk\","
                            "\"created\":%ld,\"model\":", j->id, MOCK_CREATED);
    else
        evbuffer_add_printf(b, "data: {\"id\":\"cmpl-mock-%lu\",\"object\":\"text_completion\","
                            "\"created\":%ld,\"model\":", j->id, MOCK_CREATED);
    json_str(b, j->model);
    evbuffer_add_printf(b, ",\"system_fingerprint\":");
    json_str_or_null(b, j->fingerprint);
}

static void chunk_tail(struct job *j, struct evbuffer *b)
{
    if (j->include_usage) evbuffer_add_printf(b, ",\"usage\":null");
    evbuffer_add_printf(b, "}\n\n");
}

/* Take the next word (with its trailing spaces) off j->content. */
static size_t next_word(struct job *j, char *out, size_t outlen)
{
    size_t len = evbuffer_get_length(j->content), n = 0;
    const char *s;
    if (len == 0) return 0;
    s = (const char *)evbuffer_pullup(j->content, -1);
    while (n < len && s[n] != ' ') n++;
    while (n < len && s[n] == ' ') n++;
    if (n >= outlen) n = outlen - 1;
    memcpy(out, s, n);
    out[n] = 0;
    evbuffer_drain(j->content, n);
    return n;
}

/*
 * Writes stream event number j->step into b. Returns 1 if an event was
 * written, 0 when the stream is over ("[DONE]" was the previous event).
 * Chat with content: role delta, one delta per word, finish, [usage], DONE.
 * Chat tools: role delta, per call (head, 2 argument fragments), finish,
 * [usage], DONE. Completions: one chunk per word, finish, [usage], DONE.
 */
static int stream_event(struct job *j, struct evbuffer *b)
{
    char word[4096];
    int step = j->step++;

    if (j->ep == EP_CHAT && step == 0) {
        chunk_head(j, b);
        evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%s,"
                            "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]",
                            j->beh == B_TOOLS ? "null" : "\"\"");
        chunk_tail(j, b);
        return 1;
    }
    if (j->ep == EP_CHAT && j->beh == B_TOOLS && step >= 1 && step <= 6) {
        int call = (step - 1) / 3, part = (step - 1) % 3;
        chunk_head(j, b);
        evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,", call);
        if (part == 0)
            evbuffer_add_printf(b, "\"id\":\"call_mock_%d\",\"type\":\"function\",\"function\":"
                                "{\"name\":\"%s\",\"arguments\":\"\"}", call, tool_names[call]);
        else {
            evbuffer_add_printf(b, "\"function\":{\"arguments\":");
            json_str(b, tool_args[call][part - 1]);
            evbuffer_add(b, "}", 1);
        }
        evbuffer_add_printf(b, "}]},\"logprobs\":null,\"finish_reason\":null}]");
        chunk_tail(j, b);
        j->completion_tokens += 2;
        return 1;
    }
    if (j->beh == B_FOREVER && evbuffer_get_length(j->content) == 0)
        evbuffer_add_printf(j->content, "tick ");
    if (j->beh != B_TOOLS && next_word(j, word, sizeof word) > 0) {
        chunk_head(j, b);
        if (j->ep == EP_CHAT) {
            evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
            json_str(b, word);
            evbuffer_add_printf(b, "},\"logprobs\":null,\"finish_reason\":null}]");
        } else {
            evbuffer_add_printf(b, ",\"choices\":[{\"text\":");
            json_str(b, word);
            evbuffer_add_printf(b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]");
        }
        chunk_tail(j, b);
        j->completion_tokens++;
        return 1;
    }
    /* content exhausted; j->started is the stage: 1 headers sent, 2 finish
     * sent and usage due, 3 DONE due, 4 over */
    if (j->started == 1) {
        chunk_head(j, b);
        if (j->ep == EP_CHAT)
            evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                                "\"finish_reason\":\"%s\"}]", j->beh == B_TOOLS ? "tool_calls" : "stop");
        else
            evbuffer_add_printf(b, ",\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,"
                                "\"finish_reason\":\"stop\"}]");
        chunk_tail(j, b);
        j->started = j->include_usage ? 2 : 3;
        return 1;
    }
    if (j->started == 2) {
        chunk_head(j, b);
        evbuffer_add_printf(b, ",\"choices\":[],\"usage\":");
        usage_json(b, j->prompt_tokens, j->completion_tokens);
        evbuffer_add_printf(b, "}\n\n");
        j->started = 3;
        return 1;
    }
    if (j->started == 3) {
        evbuffer_add_printf(b, "data: [DONE]\n\n");
        j->started = 4;
        return 1;
    }
    return 0;
}

/*
 * Closes the client connection with an RST. evhttp_connection_free() would
 * shutdown(SHUT_WR) first, and the FIN would reach the client before the
 * RST. So the socket gets SO_LINGER 0 and is replaced, by dup2, with a fresh
 * unconnected socket: that closes the original (sending the RST) while the
 * descriptor number evhttp holds stays valid until evhttp closes it.
 */
static void job_reset(struct job *j)
{
    struct evhttp_connection *evcon = j->evcon;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct linger lg = {1, 0};
    int fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0) {
        int fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        if (fresh >= 0) {
            dup2(fresh, fd);
            close(fresh);
        }
    }
    job_free(j);                  /* clears the close callback */
    evhttp_connection_free(evcon);/* frees the request too, closes the fd */
}

/* The client closed its side (or sent more bytes, which a one-request-at-a-
 * time client never does while waiting): cancel the job and drop the
 * connection. Needed because evhttp only notices a close when it writes. */
static void job_watch(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    struct evhttp_connection *evcon = j->evcon;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return; /* not a close; stop watching (the event is not persistent) */
    if (j->kind == JOB_STREAM && j->started) j->m->streams_cancelled++;
    else j->m->requests_cancelled++;
    job_free(j);
    evhttp_connection_free(evcon);
}

static void job_timer(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    struct mock *m = j->m;

    if (j->kind == JOB_REPLY) {
        struct evhttp_request *req = j->req;
        int status = j->status;
        struct evbuffer *body = j->body;
        j->body = NULL;
        job_free(j);
        set_json_type(req);
        evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", body);
        evbuffer_free(body);
        return;
    }
    if (j->kind == JOB_RAW) {
        if (!j->started) {
            struct evkeyvalq *h = evhttp_request_get_output_headers(j->req);
            evhttp_add_header(h, "Content-Type", j->ctype);
            nodelay(j->req);
            evhttp_send_reply_start(j->req, 200, "OK");
            j->started = 1;
        }
        size_t left = evbuffer_get_length(j->body);
        if (left) {
            size_t n = j->piece && j->piece < left ? j->piece : left;
            evbuffer_remove_buffer(j->body, j->scratch, n);
            evhttp_send_reply_chunk(j->req, j->scratch);
            if (evbuffer_get_length(j->body) || j->end == END_RESET) {
                /* a reset waits for the bytes to leave: an RST drops unsent data */
                job_schedule(j, j->gap_ms > 0 ? j->gap_ms : 50);
                return;
            }
        }
        if (j->end == END_RESET) {
            job_reset(j);
        } else if (j->end != END_STALL) {
            struct evhttp_request *req = j->req;
            job_free(j);
            evhttp_send_reply_end(req);
        }
        return; /* END_STALL: keep the job (and the connection) forever */
    }
    if (j->kind != JOB_STREAM) return;

    if (!j->started) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(j->req);
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        nodelay(j->req);
        evhttp_send_reply_start(j->req, 200, "OK");
        j->started = 1;
        m->streams_started++;
    }
    /* Non-gap streams write every event now; gap streams one per tick. */
    for (;;) {
        if (j->end != END_NORMAL && j->step >= 2) {
            if (j->end == END_RESET) {
                job_reset(j); /* frees j */
                return;
            }
            if (j->end == END_TRUNCATE || j->end == END_TRUNCATE_EVENT) {
                /* a clean end of the body, but no [DONE]; maybe half an event */
                struct evhttp_request *req = j->req;
                if (j->end == END_TRUNCATE_EVENT) {
                    evbuffer_drain(j->scratch, evbuffer_get_length(j->scratch));
                    evbuffer_add_printf(j->scratch, "data: {\"id\":\"chatcmpl-mock-%lu\",\"object\":\"chat.", j->id);
                    evhttp_send_reply_chunk(req, j->scratch);
                }
                job_free(j);
                evhttp_send_reply_end(req);
            }
            /* END_STALL: keep the job (and the connection) forever */
            return;
        }
        if (!stream_event(j, j->scratch)) {
            struct evhttp_request *req = j->req;
            m->streams_completed++;
            job_free(j);
            evhttp_send_reply_end(req);
            return;
        }
        evhttp_send_reply_chunk(j->req, j->scratch);
        if (j->gap_ms > 0) {
            job_schedule(j, j->gap_ms);
            return;
        }
    }
}

/* ---- request dispatch ------------------------------------------------------------ */

static void record_request(struct mock *m, struct evhttp_request *req, const char *path,
                           const char *query)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *method;
    int first = 1;

    evbuffer_drain(m->last_headers, evbuffer_get_length(m->last_headers));
    evbuffer_add(m->last_headers, "{", 1);
    for (kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        char name[128];
        size_t i;
        for (i = 0; kv->key[i] && i < sizeof name - 1; i++)
            name[i] = (char)((kv->key[i] >= 'A' && kv->key[i] <= 'Z') ? kv->key[i] + 32 : kv->key[i]);
        name[i] = 0;
        if (!first) evbuffer_add(m->last_headers, ",", 1);
        first = 0;
        json_str(m->last_headers, name);
        evbuffer_add(m->last_headers, ":", 1);
        json_str(m->last_headers, kv->value);
    }
    evbuffer_add(m->last_headers, "}", 1);

    evbuffer_drain(m->last_body, evbuffer_get_length(m->last_body));
    evbuffer_add(m->last_body, evbuffer_pullup(in, -1), evbuffer_get_length(in));
    evbuffer_drain(m->last_path, evbuffer_get_length(m->last_path));
    evbuffer_add(m->last_path, path, strlen(path));
    evbuffer_drain(m->last_query, evbuffer_get_length(m->last_query));
    if (query) evbuffer_add(m->last_query, query, strlen(query));
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: method = "GET"; break;
    case EVHTTP_REQ_POST: method = "POST"; break;
    case EVHTTP_REQ_PUT: method = "PUT"; break;
    case EVHTTP_REQ_DELETE: method = "DELETE"; break;
    default: method = "OTHER"; break;
    }
    evbuffer_drain(m->last_method, evbuffer_get_length(m->last_method));
    evbuffer_add(m->last_method, method, strlen(method));
}

static int key_ok(struct mock *m, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *auth = evhttp_find_header(h, "Authorization");
    const char *apikey = evhttp_find_header(h, "api-key");
    if (!m->require_key[0]) return 1;
    if (apikey && strcmp(apikey, m->require_key) == 0) return 1;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, m->require_key) == 0)
        return 1;
    return 0;
}

static void models_list(struct mock *m, struct evhttp_request *req)
{
    static const char *names[] = {"mock-model", "gpt-4o-mini", "mock-slowstream", "mock-long",
                                  "mock-tools"};
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    evbuffer_add_printf(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        evbuffer_add_printf(b, "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":%ld,"
                            "\"owned_by\":\"mock\"}", i ? "," : "", names[i], MOCK_CREATED);
    evbuffer_add_printf(b, "]}");
    set_json_type(req);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void model_one(struct evhttp_request *req, const char *id)
{
    struct evbuffer *b = evbuffer_new();
    char *dec = evhttp_uridecode(id, 0, NULL);
    if (!b || !dec) { if (b) evbuffer_free(b); free(dec); return; }
    evbuffer_add_printf(b, "{\"id\":");
    json_str(b, dec);
    evbuffer_add_printf(b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"mock\"}", MOCK_CREATED);
    set_json_type(req);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
    free(dec);
}

/* Replies now, or after m->delay_ms through a job. Takes ownership of body. */
static void reply(struct mock *m, struct evhttp_request *req, int status, struct evbuffer *body,
                  int delay_ms)
{
    if (delay_ms > 0) {
        struct job *j = job_new(m, req, JOB_REPLY);
        if (j) {
            j->status = status;
            j->body = body;
            job_schedule(j, delay_ms);
            return;
        }
    }
    set_json_type(req);
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", body);
    evbuffer_free(body);
}

/* A 200 whose body bytes are sent by a JOB_RAW: `piece` bytes every gap_ms
 * (0 = all at once), then `end`. Takes ownership of body. */
static void raw_reply(struct mock *m, struct evhttp_request *req, const char *ctype,
                      struct evbuffer *body, size_t piece, int gap_ms, enum stream_end end, int delay_ms)
{
    struct job *j = job_new(m, req, JOB_RAW);
    if (!j || !(j->scratch = evbuffer_new())) {
        if (j) job_free(j);
        evbuffer_free(body);
        send_error(req, 500, "Internal Server Error", "server_error", "mock_oom", "The mock is out of memory.");
        return;
    }
    j->body = body;
    j->ctype = ctype;
    j->piece = piece;
    j->gap_ms = gap_ms;
    j->end = end;
    if (delay_ms > 0) job_schedule(j, delay_ms);
    else job_timer(-1, 0, j);
}

/* Every event of c's answer stream, as the stream path would send them. */
static void render_stream(struct call *c, struct evbuffer *out)
{
    struct job j;
    memset(&j, 0, sizeof j);
    j.m = c->m;
    j.ep = c->ep;
    j.beh = c->beh;
    j.id = c->id;
    j.include_usage = c->include_usage;
    j.prompt_tokens = c->prompt_tokens;
    j.started = 1;
    j.content = c->content;
    copy_str(j.model, c->model);
    copy_str(j.fingerprint, c->fingerprint);
    while (stream_event(&j, out)) {
    }
}

static void api_request(struct mock *m, struct evhttp_request *req, enum endpoint ep,
                        const char *path, const char *model_id)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct call c;
    const cJSON *jmodel, *jstream, *jopts;
    char deployment[MOCK_STR_MAX];
    int delay = m->delay_ms;

    memset(&c, 0, sizeof c);
    c.m = m;
    c.req = req;
    c.ep = ep;
    c.id = ++m->next_id;

    if (!key_ok(m, req)) {
        send_error(req, 401, "Unauthorized", "invalid_request_error", "invalid_api_key",
                   "Incorrect API key provided.");
        return;
    }
    if (ep == EP_MODELS) { models_list(m, req); return; }
    if (ep == EP_MODEL) { model_one(req, model_id); return; }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        send_error(req, 405, "Method Not Allowed", "invalid_request_error", "method_not_allowed",
                   "Use POST for this endpoint.");
        return;
    }
    c.body = cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in));
    if (!c.body || !cJSON_IsObject(c.body)) {
        send_error(req, 400, "Bad Request", "invalid_request_error", "invalid_json",
                   "The mock could not parse the JSON body.");
        cJSON_Delete(c.body);
        return;
    }
    if (ep == EP_RESPONSES) {
        struct evbuffer *b = evbuffer_new();
        if (b) {
            evbuffer_add_printf(b, "{\"id\":\"resp-mock-%lu\",\"object\":\"response\",\"echo\":", c.id);
            evbuffer_add(b, evbuffer_pullup(in, -1), evbuffer_get_length(in));
            evbuffer_add(b, "}", 1);
            reply(m, req, 200, b, delay);
        }
        cJSON_Delete(c.body);
        return;
    }

    jmodel = cJSON_GetObjectItemCaseSensitive(c.body, "model");
    deployment_of(path, deployment, sizeof deployment);
    const char *requested = cJSON_IsString(jmodel) ? jmodel->valuestring
                            : deployment[0] ? deployment : "mock-model";
    c.beh = behaviour_of(requested);
    copy_str(c.model, m->served_model[0] ? m->served_model : requested);
    if (m->fingerprint[0] && m->fingerprint_change_at > 0 && (long)m->requests > m->fingerprint_change_at)
        snprintf(c.fingerprint, sizeof c.fingerprint, "%.200s-changed", m->fingerprint);
    else
        copy_str(c.fingerprint, m->fingerprint);
    jstream = cJSON_GetObjectItemCaseSensitive(c.body, "stream");
    c.stream = cJSON_IsTrue(jstream) && ep != EP_EMBEDDINGS;
    jopts = cJSON_GetObjectItemCaseSensitive(c.body, "stream_options");
    c.include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jopts, "include_usage"));

    switch (c.beh) {
    case B_500:
        send_error(req, 500, "Internal Server Error", "server_error", "mock_500",
                   "The mock upstream failed (mock-500).");
        goto done;
    case B_429:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        send_error(req, 429, "Too Many Requests", "requests", "rate_limit_exceeded",
                   "Rate limit reached (mock-429).");
        goto done;
    case B_401:
        send_error(req, 401, "Unauthorized", "invalid_request_error", "invalid_api_key",
                   "Incorrect API key provided (mock-401).");
        goto done;
    case B_GARBAGE: {
        struct evbuffer *b = evbuffer_new();
        if (!b) goto done;
        if (c.stream) {
            evbuffer_add_printf(b, "data: <html>this is not JSON {{{\n\ndata: [DONE]\n\n");
            raw_reply(m, req, "text/event-stream", b, 0, 0, END_NORMAL, delay);
        } else {
            evbuffer_add_printf(b, "<html>this is not JSON {{{");
            reply(m, req, 200, b, delay);
        }
        goto done;
    }
    case B_TIMEOUT:
        job_new(m, req, JOB_HOLD);
        goto done;
    case B_503:
        send_error(req, 503, "Service Unavailable", "server_error", "mock_503",
                   "The mock upstream is overloaded (mock-503).");
        goto done;
    case B_SSE_ALWAYS:
        c.stream = 1;
        break;
    case B_SLOW_FIRST_BYTE:
        delay += 1500;
        break;
    default:
        break;
    }

    if (ep == EP_EMBEDDINGS) {
        struct evbuffer *b = evbuffer_new();
        if (!b) goto done;
        if (embeddings_body(&c, b) < 0) {
            evbuffer_free(b);
            send_error(req, 400, "Bad Request", "invalid_request_error", "invalid_input",
                       "'input' must be a string or a non-empty array.");
            goto done;
        }
        reply(m, req, 200, b, delay);
        goto done;
    }

    if (ep == EP_CHAT && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(c.body, "messages"))) {
        send_error(req, 400, "Bad Request", "invalid_request_error", "invalid_type",
                   "'messages' must be an array.");
        goto done;
    }
    c.content = evbuffer_new();
    if (!c.content) goto done;
    if ((c.beh != B_TOOLS || ep != EP_CHAT) && c.beh != B_FOREVER) compute_answer(&c);

    if (c.beh == B_TRICKLE || c.beh == B_HUGE || (!c.stream && (c.beh == B_STALL || c.beh == B_RESET ||
                                                                  c.beh == B_TRUNCATE || c.beh == B_TRUNCATE_EVENT))) {
        struct evbuffer *b = evbuffer_new();
        if (!b) goto done;
        if (c.beh == B_HUGE) {
            /* the answer text alone passes llmpin's 64 MiB limit; written
             * straight into the buffer (no escaping pass) so it is quick */
            if (c.stream) evbuffer_add_printf(b, "data: {\"id\":\"chatcmpl-mock-%lu\",\"object\":"
                                              "\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                                              "\"delta\":{\"role\":\"assistant\",\"content\":\"", c.id);
            else evbuffer_add_printf(b, "{\"id\":\"chatcmpl-mock-%lu\",\"object\":\"chat.completion\","
                                     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                     "\"content\":\"", c.id);
            size_t n = (64u << 20) + 4096;
            struct evbuffer_iovec v;
            if (evbuffer_reserve_space(b, (ev_ssize_t)n, &v, 1) < 1 || v.iov_len < n) {
                evbuffer_free(b);
                goto done;
            }
            memset(v.iov_base, 'x', n);
            v.iov_len = n;
            evbuffer_commit_space(b, &v, 1);
            if (c.stream) evbuffer_add_printf(b, "\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n");
            else evbuffer_add_printf(b, "\"},\"finish_reason\":\"stop\"}]}");
        } else if (c.stream) render_stream(&c, b);
        else if (ep == EP_CHAT) chat_body(&c, b);
        else completion_body(&c, b);
        if (c.beh == B_TRUNCATE || c.beh == B_TRUNCATE_EVENT) { /* a clean response, half a JSON */
            struct evbuffer *half = evbuffer_new();
            if (!half) { evbuffer_free(b); goto done; }
            evbuffer_remove_buffer(b, half, evbuffer_get_length(b) / 2);
            evbuffer_free(b);
            reply(m, req, 200, half, delay);
            goto done;
        }
        const char *ctype = c.stream ? "text/event-stream" : "application/json";
        if (c.beh == B_TRICKLE) {
            raw_reply(m, req, ctype, b, 1, 100, END_NORMAL, delay);
        } else if (c.beh == B_HUGE) {
            raw_reply(m, req, ctype, b, 0, 0, END_NORMAL, delay);
        } else { /* stall or reset after the head and half the body */
            struct evbuffer *half = evbuffer_new();
            if (!half) { evbuffer_free(b); goto done; }
            evbuffer_remove_buffer(b, half, evbuffer_get_length(b) / 2);
            evbuffer_free(b);
            raw_reply(m, req, ctype, half, 0, 0, c.beh == B_STALL ? END_STALL : END_RESET, delay);
        }
        goto done;
    }

    if (!c.stream) {
        struct evbuffer *b = evbuffer_new();
        if (!b) goto done;
        if (ep == EP_CHAT) chat_body(&c, b);
        else completion_body(&c, b);
        reply(m, req, 200, b, delay);
        goto done;
    }

    {
        struct job *j = job_new(m, req, JOB_STREAM);
        if (!j) goto done;
        j->scratch = evbuffer_new();
        j->content = c.content;
        c.content = NULL;
        if (!j->scratch) { job_free(j); goto done; }
        j->ep = ep;
        j->beh = c.beh;
        j->id = c.id;
        j->include_usage = c.include_usage;
        j->prompt_tokens = c.prompt_tokens;
        copy_str(j->model, c.model);
        copy_str(j->fingerprint, c.fingerprint);
        j->gap_ms = c.beh == B_SLOWSTREAM ? 50 : c.beh == B_LONG ? 20
                    : c.beh == B_FOREVER ? 500
                    : (c.beh == B_STALL || c.beh == B_RESET || c.beh == B_TRUNCATE ||
                       c.beh == B_TRUNCATE_EVENT) ? 20 : 0;
        j->end = c.beh == B_STALL            ? END_STALL
                 : c.beh == B_RESET          ? END_RESET
                 : c.beh == B_TRUNCATE       ? END_TRUNCATE
                 : c.beh == B_TRUNCATE_EVENT ? END_TRUNCATE_EVENT
                                             : END_NORMAL;
        if (delay > 0) job_schedule(j, delay);
        else job_timer(-1, 0, j);
    }
done:
    if (c.content) evbuffer_free(c.content);
    cJSON_Delete(c.body);
}

/* ---- control endpoints -------------------------------------------------------------- */

static void stats(struct mock *m, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    if (!b) return;
    evbuffer_add_printf(b, "{\"requests\":%lu,\"connections_accepted\":%lu,\"streams_started\":%lu,"
                        "\"streams_completed\":%lu,\"streams_cancelled_by_client\":%lu,"
                        "\"requests_cancelled_by_client\":%lu,\"fingerprint\":",
                        m->requests, m->connections_accepted, m->streams_started,
                        m->streams_completed, m->streams_cancelled, m->requests_cancelled);
    json_str_or_null(b, m->fingerprint);
    evbuffer_add_printf(b, ",\"served_model\":");
    json_str_or_null(b, m->served_model);
    evbuffer_add_printf(b, ",\"delay_ms\":%d,\"last_request_method\":", m->delay_ms);
    n = evbuffer_get_length(m->last_method);
    json_strn(b, (const char *)evbuffer_pullup(m->last_method, -1), n);
    evbuffer_add_printf(b, ",\"last_request_path\":");
    n = evbuffer_get_length(m->last_path);
    json_strn(b, (const char *)evbuffer_pullup(m->last_path, -1), n);
    evbuffer_add_printf(b, ",\"last_request_query\":");
    n = evbuffer_get_length(m->last_query);
    json_strn(b, (const char *)evbuffer_pullup(m->last_query, -1), n);
    evbuffer_add_printf(b, ",\"last_request_headers\":");
    if (evbuffer_get_length(m->last_headers))
        evbuffer_add(b, evbuffer_pullup(m->last_headers, -1), evbuffer_get_length(m->last_headers));
    else evbuffer_add(b, "{}", 2);
    n = evbuffer_get_length(m->last_body);
    evbuffer_add_printf(b, ",\"last_request_body_length\":%zu,\"last_request_body\":", n);
    json_strn(b, (const char *)evbuffer_pullup(m->last_body, -1), n);
    evbuffer_add(b, "}", 1);
    set_json_type(req);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void config_str(const cJSON *o, const char *name, char *dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v)) copy_str(dst, v->valuestring);
    else if (cJSON_IsNull(v)) dst[0] = 0;
}

static void config_long(const cJSON *o, const char *name, long *dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNumber(v)) *dst = (long)v->valuedouble;
}

static void configure(struct mock *m, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    cJSON *o = cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in));
    long delay = m->delay_ms;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        send_error(req, 400, "Bad Request", "invalid_request_error", "invalid_json",
                   "/_mock/config takes a JSON object.");
        return;
    }
    config_str(o, "fingerprint", m->fingerprint);
    config_str(o, "served_model", m->served_model);
    config_str(o, "require_key", m->require_key);
    config_long(o, "fingerprint_change_at", &m->fingerprint_change_at);
    config_long(o, "accuracy_change_at", &m->accuracy_change_at);
    config_long(o, "delay_ms", &delay);
    m->delay_ms = delay < 0 ? 0 : delay > 600000 ? 600000 : (int)delay;
    cJSON_Delete(o);
    stats(m, req);
}

static void reset(struct mock *m, struct evhttp_request *req)
{
    m->requests = m->connections_accepted = m->streams_started = 0;
    m->streams_completed = m->streams_cancelled = m->requests_cancelled = 0;
    m->next_id = 0;
    evbuffer_drain(m->last_headers, evbuffer_get_length(m->last_headers));
    evbuffer_drain(m->last_body, evbuffer_get_length(m->last_body));
    evbuffer_drain(m->last_path, evbuffer_get_length(m->last_path));
    evbuffer_drain(m->last_query, evbuffer_get_length(m->last_query));
    evbuffer_drain(m->last_method, evbuffer_get_length(m->last_method));
    stats(m, req);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mock *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    char model_id[MOCK_STR_MAX];
    enum endpoint ep;

    if (!path) path = "/";
    if (strncmp(path, "/_mock/", 7) == 0) {
        if (strcmp(path, "/_mock/stats") == 0) stats(m, req);
        else if (strcmp(path, "/_mock/config") == 0) configure(m, req);
        else if (strcmp(path, "/_mock/reset") == 0) reset(m, req);
        else send_error(req, 404, "Not Found", "invalid_request_error", "unknown_url", "No such control endpoint.");
        return;
    }
    ep = endpoint_of(path, model_id, sizeof model_id);
    m->requests++;
    record_request(m, req, path, query);
    if (ep == EP_NONE) {
        send_error(req, 404, "Not Found", "invalid_request_error", "unknown_url",
                   "Unknown URL for the mock upstream.");
        return;
    }
    api_request(m, req, ep, path, model_id);
}

/* Called by evhttp once per accepted connection: counts them. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct mock *m = arg;
    m->connections_accepted++;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct mock *m = arg;
    event_base_loopbreak(m->base);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: llmpin-mock-upstream --listen HOST:PORT [--ready-file F] [--require-key K]\n"
            "       [--fingerprint FP] [--served-model M] [--fingerprint-change-at N]\n"
            "       [--accuracy-change-at N] [--delay-ms MS]\n");
}

static int listen_on(const char *spec, char *bound, size_t boundlen)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    int fd, one = 1;
    long port;
    char *end;

    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "mock: --listen %s: expected HOST:PORT\n", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "mock: --listen %s: bad port\n", spec);
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) != 1) {
        fprintf(stderr, "mock: --listen %s: bad IPv4 address\n", spec);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("mock: socket"); return -1; }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        fprintf(stderr, "mock: --listen %s: %s\n", spec, strerror(errno));
        close(fd);
        return -1;
    }
    snprintf(bound, boundlen, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
    return fd;
}

static int write_ready(const char *path, const char *bound)
{
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "mock: --ready-file %s: %s\n", path, strerror(errno)); return -1; }
    fprintf(f, "%s\n", bound);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "mock: --ready-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct mock m;
    const char *listen_spec = "127.0.0.1:0", *ready = NULL;
    char bound[128];
    int fd, rc = 1;

    memset(&m, 0, sizeof m);
    copy_str(m.fingerprint, "fp_mock_1");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(); return 0; }
        if (!v) { usage(); return 2; }
        if (strcmp(a, "--listen") == 0) listen_spec = v;
        else if (strcmp(a, "--ready-file") == 0) ready = v;
        else if (strcmp(a, "--require-key") == 0) copy_str(m.require_key, v);
        else if (strcmp(a, "--fingerprint") == 0) copy_str(m.fingerprint, v);
        else if (strcmp(a, "--served-model") == 0) copy_str(m.served_model, v);
        else if (strcmp(a, "--fingerprint-change-at") == 0) m.fingerprint_change_at = atol(v);
        else if (strcmp(a, "--accuracy-change-at") == 0) m.accuracy_change_at = atol(v);
        else if (strcmp(a, "--delay-ms") == 0) m.delay_ms = atoi(v);
        else { usage(); return 2; }
        i++;
    }
    signal(SIGPIPE, SIG_IGN);

    m.base = event_base_new();
    m.http = m.base ? evhttp_new(m.base) : NULL;
    m.last_headers = evbuffer_new();
    m.last_body = evbuffer_new();
    m.last_path = evbuffer_new();
    m.last_query = evbuffer_new();
    m.last_method = evbuffer_new();
    if (!m.http || !m.last_headers || !m.last_body || !m.last_path || !m.last_query || !m.last_method) {
        fprintf(stderr, "mock: out of memory\n");
        goto out;
    }
    fd = listen_on(listen_spec, bound, sizeof bound);
    if (fd < 0) goto out;
    if (!evhttp_accept_socket_with_handle(m.http, fd)) {
        fprintf(stderr, "mock: cannot accept on %s\n", bound);
        close(fd);
        goto out;
    }
    evhttp_set_gencb(m.http, on_request, &m);
    evhttp_set_bevcb(m.http, on_new_connection, &m);
    evhttp_set_timeout(m.http, 3600);
    evhttp_set_allowed_methods(m.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                               EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    m.sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
    m.sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
    if (!m.sigterm || !m.sigint || event_add(m.sigterm, NULL) < 0 || event_add(m.sigint, NULL) < 0) {
        fprintf(stderr, "mock: cannot install signal handlers\n");
        goto out;
    }
    if (ready && write_ready(ready, bound) < 0) goto out;
    if (!ready) printf("%s\n", bound), fflush(stdout);
    event_base_dispatch(m.base);
    rc = 0;
out:
    /* Freeing the server closes every connection; their close callbacks free
     * the jobs still attached. Jobs left are those whose request was
     * detached already (none in practice). */
    if (m.http) evhttp_free(m.http);
    while (m.jobs) job_free(m.jobs);
    if (m.sigterm) event_free(m.sigterm);
    if (m.sigint) event_free(m.sigint);
    if (m.last_headers) evbuffer_free(m.last_headers);
    if (m.last_body) evbuffer_free(m.last_body);
    if (m.last_path) evbuffer_free(m.last_path);
    if (m.last_query) evbuffer_free(m.last_query);
    if (m.last_method) evbuffer_free(m.last_method);
    if (m.base) event_base_free(m.base);
    return rc;
}
