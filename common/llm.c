/*
 * llm.c - parsing and validating OpenAI request bodies.
 *
 * Validation follows OpenAI's own answers: a wrong type is a 400 whose
 * `param` names the field and whose message says what was expected and what
 * was sent. Fields llmpin does not interpret are left alone, so a newer SDK
 * field still reaches the upstream.
 */
#include "common/llm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonv.h"
#include "common/util.h"

struct perr {
    char *param, *code, *msg;
    size_t param_len, code_len, msg_len;
};

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsNull(v)) return "null";
    return "an unknown value";
}

static int fail(struct perr *e, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct perr *e, const char *param, const char *code, const char *fmt, ...) {
    snprintf(e->param, e->param_len, "%s", param);
    snprintf(e->code, e->code_len, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

static int bad_type(struct perr *e, const char *param, const char *expected, const cJSON *v) {
    return fail(e, param, "invalid_type", "Invalid type for '%s': expected %s, but got %s.", param,
                expected, json_type_name(v));
}

/* number field with range; absent or null is fine */
static int get_number(struct perr *e, const cJSON *body, const char *name, double lo, double hi,
                      int *has, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return bad_type(e, name, "a number", v);
    if (!isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return fail(e, name, "invalid_value", "Invalid value for '%s': %g is outside [%g, %g].", name,
                    v->valuedouble, lo, hi);
    if (has) *has = 1;
    *out = v->valuedouble;
    return 0;
}

static int get_int(struct perr *e, const cJSON *body, const char *name, double lo, double hi,
                   int *has, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return bad_type(e, name, "an integer", v);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return fail(e, name, "invalid_value", "Invalid value for '%s': %.0f is outside [%.0f, %.0f].", name,
                    v->valuedouble, lo, hi);
    if (has) *has = 1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int get_bool(struct perr *e, const cJSON *body, const char *name, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return bad_type(e, name, "a boolean", v);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Text of a message's content: a string, or an array of parts whose "text"
 * fields are joined. Other part types (images) are not text: skipped. */
static int content_text(struct perr *e, const cJSON *c, int idx, char **out) {
    char param[64]; /* formatted only on the error paths: this runs for every message */
    if (!c || cJSON_IsNull(c)) { *out = util_strdup(""); return 0; }
    if (cJSON_IsString(c)) { *out = util_strdup(c->valuestring); return 0; }
    snprintf(param, sizeof param, "messages[%d].content", idx);
    if (!cJSON_IsArray(c)) return bad_type(e, param, "a string or an array of content parts", c);
    struct buf b = {0};
    int i = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        if (!cJSON_IsObject(part)) {
            buf_free(&b);
            char p2[80];
            snprintf(p2, sizeof p2, "%s[%d]", param, i);
            return bad_type(e, p2, "an object", part);
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(t)) buf_appends(&b, t->valuestring);
        i++;
    }
    *out = b.p ? b.p : util_strdup("");
    return 0;
}

static int parse_stop(struct perr *e, const cJSON *body, struct llm_request *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        r->stop = util_xcalloc(1, sizeof *r->stop);
        r->stop[0] = v->valuestring;
        r->n_stop = 1;
        return 0;
    }
    if (!cJSON_IsArray(v)) return bad_type(e, "stop", "a string or an array of strings", v);
    int n = cJSON_GetArraySize(v);
    if (n > 4) return fail(e, "stop", "invalid_value", "Invalid value for 'stop': at most 4 sequences are allowed, got %d.", n);
    r->stop = util_xcalloc((size_t)n + 1, sizeof *r->stop);
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
        if (!cJSON_IsString(s)) {
            char p[32];
            snprintf(p, sizeof p, "stop[%d]", r->n_stop);
            return bad_type(e, p, "a string", s);
        }
        r->stop[r->n_stop++] = s->valuestring;
    }
    return 0;
}

static int parse_common(struct perr *e, const cJSON *body, struct llm_request *r) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!m || cJSON_IsNull(m))
        return fail(e, "model", "missing_required_parameter", "Missing required parameter: 'model'.");
    if (!cJSON_IsString(m)) return bad_type(e, "model", "a string", m);
    if (!m->valuestring[0]) return fail(e, "model", "invalid_value", "Invalid value for 'model': it is empty.");
    r->model = m->valuestring;
    if (get_bool(e, body, "stream", &r->stream)) return -1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return bad_type(e, "stream_options", "an object", so);
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
        if (iu && !cJSON_IsNull(iu)) {
            if (!cJSON_IsBool(iu)) return bad_type(e, "stream_options.include_usage", "a boolean", iu);
            r->include_usage = cJSON_IsTrue(iu);
        }
    }
    if (get_number(e, body, "temperature", 0, 2, &r->has_temperature, &r->temperature)) return -1;
    if (get_number(e, body, "top_p", 0, 1, &r->has_top_p, &r->top_p)) return -1;
    if (get_number(e, body, "frequency_penalty", -2, 2, NULL, &r->frequency_penalty)) return -1;
    if (get_number(e, body, "presence_penalty", -2, 2, NULL, &r->presence_penalty)) return -1;
    int64_t v = 0;
    if (get_int(e, body, "max_tokens", 1, 1e9, NULL, &v)) return -1;
    r->max_tokens = (int)v;
    v = 0;
    if (get_int(e, body, "max_completion_tokens", 1, 1e9, NULL, &v)) return -1;
    if (v) r->max_tokens = (int)v;
    v = 1;
    if (get_int(e, body, "n", 1, 128, NULL, &v)) return -1;
    r->n = (int)v;
    v = 0;
    if (get_int(e, body, "top_k", 0, 1e6, NULL, &v)) return -1;
    r->top_k = (int)v;
    if (get_int(e, body, "seed", -9.2e18, 9.2e18, &r->has_seed, &r->seed)) return -1;
    if (parse_stop(e, body, r)) return -1;
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "user");
    if (user && !cJSON_IsNull(user) && !cJSON_IsString(user)) return bad_type(e, "user", "a string", user);
    return 0;
}

static int parse_chat(struct perr *e, const cJSON *body, struct llm_request *r) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!msgs || cJSON_IsNull(msgs))
        return fail(e, "messages", "missing_required_parameter", "Missing required parameter: 'messages'.");
    if (!cJSON_IsArray(msgs)) return bad_type(e, "messages", "an array", msgs);
    int n = cJSON_GetArraySize(msgs);
    if (n == 0)
        return fail(e, "messages", "invalid_value", "Invalid 'messages': empty array. Expected an array with minimum length 1.");
    r->messages = util_xcalloc((size_t)n, sizeof *r->messages);
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        int i = r->n_messages;
        char param[48]; /* formatted only on the error paths */
        if (!cJSON_IsObject(m)) {
            snprintf(param, sizeof param, "messages[%d]", i);
            return bad_type(e, param, "an object", m);
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!role || !cJSON_IsString(role)) snprintf(param, sizeof param, "messages[%d].role", i);
        if (!role) return fail(e, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
        if (!cJSON_IsString(role)) return bad_type(e, param, "a string", role);
        static const char *roles[] = {"system", "developer", "user", "assistant", "tool", "function"};
        int ok = 0;
        for (size_t k = 0; k < sizeof roles / sizeof *roles && !ok; k++)
            if (strcmp(role->valuestring, roles[k]) == 0) ok = 1;
        if (!ok) snprintf(param, sizeof param, "messages[%d].role", i);
        if (!ok)
            return fail(e, param, "invalid_value",
                        "Invalid value for '%s': expected one of system, developer, user, assistant, tool, function.", param);
        r->messages[i].role = role->valuestring;
        r->messages[i].obj = m;
        if (content_text(e, cJSON_GetObjectItemCaseSensitive(m, "content"), i, &r->messages[i].content))
            return -1;
        r->n_messages++;
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) return bad_type(e, "tools", "an array", tools);
        r->has_tools = cJSON_GetArraySize(tools) > 0;
    }
    return 0;
}

static int parse_completions(struct perr *e, const cJSON *body, struct llm_request *r) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (!p || cJSON_IsNull(p))
        return fail(e, "prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.");
    if (cJSON_IsString(p)) { r->prompt = p->valuestring; return 0; }
    if (cJSON_IsArray(p)) {
        /* arrays of strings or token ids: valid for remote upstreams */
        const cJSON *first = cJSON_GetArrayItem(p, 0);
        if (first && cJSON_IsString(first) && cJSON_GetArraySize(p) == 1) r->prompt = first->valuestring;
        return 0;
    }
    return bad_type(e, "prompt", "a string or an array", p);
}

static int parse_embeddings(struct perr *e, const cJSON *body, struct llm_request *r) {
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (!in || cJSON_IsNull(in))
        return fail(e, "input", "missing_required_parameter", "Missing required parameter: 'input'.");
    if (cJSON_IsString(in)) {
        r->inputs = util_xcalloc(1, sizeof *r->inputs);
        r->inputs[0] = in->valuestring;
        r->n_inputs = 1;
        return 0;
    }
    if (!cJSON_IsArray(in)) return bad_type(e, "input", "a string or an array", in);
    int n = cJSON_GetArraySize(in);
    if (n == 0) return fail(e, "input", "invalid_value", "Invalid 'input': empty array.");
    if (n > 2048) return fail(e, "input", "invalid_value", "Invalid 'input': at most 2048 inputs, got %d.", n);
    r->inputs = util_xcalloc((size_t)n, sizeof *r->inputs);
    const cJSON *s;
    cJSON_ArrayForEach(s, in) {
        if (!cJSON_IsString(s)) {
            if (cJSON_IsNumber(s) || cJSON_IsArray(s)) { /* token ids: remote only */
                free(r->inputs);
                r->inputs = NULL;
                r->n_inputs = 0;
                return 0;
            }
            char p[32];
            snprintf(p, sizeof p, "input[%d]", r->n_inputs);
            return bad_type(e, p, "a string", s);
        }
        r->inputs[r->n_inputs++] = s->valuestring;
    }
    return 0;
}

/* Offset of the first byte that breaks UTF-8 (or is NUL), or len if none.
 * JSON text is Unicode; cJSON itself does not check. */
static size_t utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c == 0) return i;
        if (c < 0x80) { i++; continue; }
        size_t n;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; min = 0x10000; }
        else return i;
        unsigned cp = c & (0x3F >> n);
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (p[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n + 1;
    }
    return len;
}

void llm_line_col(const char *s, size_t len, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (s[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

int llm_request_parse(enum llm_endpoint ep, const char *body, size_t len, struct llm_request *r,
                      char *param, size_t param_len, char *code, size_t code_len, char *msg,
                      size_t msg_len) {
    struct perr e = {param, code, msg, param_len, code_len, msg_len};
    memset(r, 0, sizeof *r);
    r->ep = ep;
    r->n = 1;
    param[0] = 0;
    size_t bad = utf8_invalid_at(body, len);
    if (bad < len)
        return fail(&e, "", "invalid_json",
                    "We could not parse the JSON body of your request: it is not valid UTF-8 text (byte %zu).", bad);
    if (len == 0) return fail(&e, "", "invalid_json", "The request body is empty; expected a JSON object.");
    /* one reading for routing and forwarding: what cJSON reads below is
     * what any upstream reads (see common/jsonv.h) */
    struct jsonv_error je;
    if (jsonv_check(body, len, JSONV_NO_DUP_KEYS | JSONV_NO_NUL, &je) < 0) {
        int line, col;
        llm_line_col(body, len, je.offset, &line, &col);
        return fail(&e, "", "invalid_json",
                    "We could not parse the JSON body of your request: %s at line %d, column %d (byte %zu).",
                    je.message, line, col, je.offset);
    }
    const char *end = NULL;
    r->body = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!r->body) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        int line = 1, col = 1;
        for (size_t i = 0; i < off && i < len; i++) {
            if (body[i] == '\n') { line++; col = 1; } else col++;
        }
        if (len == 0)
            return fail(&e, "", "invalid_json", "The request body is empty; expected a JSON object.");
        return fail(&e, "", "invalid_json",
                    "We could not parse the JSON body of your request: syntax error at line %d, column %d (byte %zu).",
                    line, col, off);
    }
    if (!cJSON_IsObject(r->body))
        return fail(&e, "", "invalid_json", "The request body must be a JSON object, not %s.", json_type_name(r->body));
    int rc = parse_common(&e, r->body, r);
    if (rc == 0) {
        if (ep == LLM_CHAT) rc = parse_chat(&e, r->body, r);
        else if (ep == LLM_COMPLETIONS) rc = parse_completions(&e, r->body, r);
        else rc = parse_embeddings(&e, r->body, r);
    }
    return rc;
}

void llm_request_free(struct llm_request *r) {
    if (!r) return;
    for (int i = 0; i < r->n_messages; i++) free(r->messages[i].content);
    free(r->messages);
    free(r->stop);
    free(r->inputs);
    cJSON_Delete(r->body);
    memset(r, 0, sizeof *r);
}

int llm_request_deterministic(const struct llm_request *r) {
    return (r->has_temperature && r->temperature == 0) || r->has_seed;
}
