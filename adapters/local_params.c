/*
 * local_params.c - what a request asks of the local model, checked as OpenAI
 * checks it: logprobs, logit_bias, response_format and tools (local_int.h).
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/local_int.h"
#include "common/util.h"
#include "localmodel/grammar.h"
#include "localmodel/toolfmt.h"

int local_sample_extras(struct lm_engine *eng, const char *model, const struct llm_request *r,
                        struct lm_sample_extra *x, struct local_refusal *why) {
    memset(x, 0, sizeof *x);   /* why is written only when refusing (local_start set its status 400) */
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(r->body, "logprobs");
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(r->body, "top_logprobs");
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(r->body, "logit_bias");
    if (r->ep == LLM_CHAT) {
        if (lp && !cJSON_IsNull(lp) && !cJSON_IsBool(lp)) {
            why->param = "logprobs";
            why->code = "invalid_type";
            snprintf(why->message, sizeof why->message, "'logprobs' must be a boolean.");
            return -1;
        }
        x->logprobs = cJSON_IsTrue(lp);
        if (top && !cJSON_IsNull(top)) {
            if (!cJSON_IsNumber(top) || top->valuedouble != (int)top->valuedouble || top->valuedouble < 0 ||
                top->valuedouble > 20) {
                why->param = "top_logprobs";
                why->code = "invalid_value";
                snprintf(why->message, sizeof why->message, "'top_logprobs' must be an integer from 0 to 20.");
                return -1;
            }
            if (!x->logprobs) {
                why->param = "top_logprobs";
                why->code = "invalid_value";
                snprintf(why->message, sizeof why->message, "'top_logprobs' needs 'logprobs' to be true.");
                return -1;
            }
            x->top_logprobs = (int)top->valuedouble;
        }
    }
    if (lb && !cJSON_IsNull(lb)) {
        if (!cJSON_IsObject(lb)) {
            why->param = "logit_bias";
            why->code = "invalid_type";
            snprintf(why->message, sizeof why->message, "'logit_bias' must be an object of token ids to biases.");
            return -1;
        }
        struct lm_info info;
        lm_engine_info(eng, &info);
        int n = cJSON_GetArraySize(lb);
        if (n > 1024) {
            why->param = "logit_bias";
            why->code = "invalid_value";
            snprintf(why->message, sizeof why->message, "'logit_bias' has %d entries; at most 1024.", n);
            return -1;
        }
        x->bias_id = util_xcalloc((size_t)n + 1, sizeof *x->bias_id);
        x->bias = util_xcalloc((size_t)n + 1, sizeof *x->bias);
        const cJSON *e;
        cJSON_ArrayForEach(e, lb) {
            char *end;
            const char *k = e->string;
            long id = strtol(k, &end, 10);
            why->param = "logit_bias";
            why->code = "invalid_value";
            if (!*k || *end || k[0] == '-' || k[0] == '+' || k[0] == ' ' || id < 0) {
                snprintf(why->message, sizeof why->message, "Invalid key in 'logit_bias': '%.40s'. Keys must be "
                         "token ids (non-negative integers).", k);
                goto bad;
            }
            if (id >= info.n_vocab) {
                snprintf(why->message, sizeof why->message, "Invalid key in 'logit_bias': %ld is not a token id of "
                         "the local model '%s' (its vocabulary has %d tokens).", id, model, info.n_vocab);
                goto bad;
            }
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= -100 && e->valuedouble <= 100)) {
                snprintf(why->message, sizeof why->message, "Invalid value in 'logit_bias' for token %ld: biases "
                         "must be numbers from -100 to 100.", id);
                goto bad;
            }
            x->bias_id[x->n_bias] = (int32_t)id;
            x->bias[x->n_bias++] = (float)e->valuedouble;
        }
    }
    return 0;
bad:
    free(x->bias_id);
    free(x->bias);
    x->bias_id = NULL;
    x->bias = NULL;
    return -1;
}

/* 1 if any message's text says "json" in any case (OpenAI's rule for json_object). */
static int messages_say_json(const struct llm_request *r)
{
    for (int i = 0; i < r->n_messages; i++) {
        const char *t = r->messages[i].content;
        for (; t && *t; t++)
            if ((t[0] | 0x20) == 'j' && (t[1] | 0x20) == 's' && (t[2] | 0x20) == 'o' && (t[3] | 0x20) == 'n')
                return 1;
    }
    return 0;
}

/* response_format of a chat request: *g = the grammar its output must
 * follow (NULL for free text). -1 with why filled when it is refused. */
int local_response_grammar(const char *model, const struct llm_request *r, struct lm_grammar **g,
                           struct local_refusal *why)
{
    *g = NULL;
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(r->body, "response_format");
    if (!rf || cJSON_IsNull(rf))
        return 0;
    /* why is written only when refusing (local_start set its status 400) */
    if (!cJSON_IsObject(rf)) {
        why->param = "response_format";
        why->code = "invalid_type";
        snprintf(why->message, sizeof why->message, "'response_format' must be an object.");
        return -1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsString(t)) {
        why->param = "response_format.type";
        why->code = "missing_required_parameter";
        snprintf(why->message, sizeof why->message, "Missing required parameter: 'response_format.type'.");
        return -1;
    }
    if (strcmp(t->valuestring, "text") == 0)
        return 0;
    if (strcmp(t->valuestring, "json_object") == 0) {
        if (!messages_say_json(r)) {
            why->param = "messages";
            why->code = "invalid_value";
            snprintf(why->message, sizeof why->message, "'messages' must contain the word 'json' in some form, to use "
                     "'response_format' of type 'json_object'.");
            return -1;
        }
        *g = lm_grammar_json_object();
        if (!*g) {
            why->status = 500;
            why->code = "local_model_error";
            snprintf(why->message, sizeof why->message, "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(t->valuestring, "json_schema") != 0) {
        why->param = "response_format.type";
        why->code = "invalid_value";
        snprintf(why->message, sizeof why->message, "Invalid value: '%.60s'. Supported values are: 'text', "
                 "'json_object' and 'json_schema'.", t->valuestring);
        return -1;
    }
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(js, "name");
    if (!cJSON_IsObject(js)) {
        why->param = "response_format.json_schema";
        why->code = "missing_required_parameter";
        snprintf(why->message, sizeof why->message, "Missing required parameter: 'response_format.json_schema'.");
        return -1;
    }
    if (!cJSON_IsString(name)) {
        why->param = "response_format.json_schema.name";
        why->code = "missing_required_parameter";
        snprintf(why->message, sizeof why->message, "Missing required parameter: 'response_format.json_schema.name'.");
        return -1;
    }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    char err[400];
    *g = schema ? lm_grammar_from_schema(schema, err, sizeof err) : lm_grammar_json_object();
    if (!*g) {
        why->param = "response_format";
        why->code = "invalid_value";
        /* a keyword llmpin cannot constrain to may be one another target can */
        why->capability = strstr(err, "not supported") || strstr(err, "cannot constrain");
        snprintf(why->message, sizeof why->message, "Invalid schema for response_format '%.64s' on the local model "
                 "'%.64s': %.300s", name->valuestring, model, err);
        return -1;
    }
    return 0;
}


/* ---- tools ----------------------------------------------------------------------- */

static int refuse(struct local_refusal *why, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(struct local_refusal *why, const char *param, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    why->param = param;
    why->code = code;
    return -1;
}

/* OpenAI's rule for function names: ^[a-zA-Z0-9_-]{1,64}$ */
static int good_name(const char *s) {
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

/* A param name with an index, kept in why (whose param points at it). */
static const char *indexed(struct local_refusal *why, const char *fmt, int i) {
    snprintf(why->param_buf, sizeof why->param_buf, fmt, i);
    return why->param_buf;
}

static int check_tools(const cJSON *tools, struct local_refusal *why) {
    int n = cJSON_GetArraySize(tools);
    if (n > LM_TOOLS_MAX)
        return refuse(why, "tools", "array_above_max_length", "Invalid 'tools': array too long. Expected an array "
                      "with maximum length %d, but got an array with length %d instead.", LM_TOOLS_MAX, n);
    for (int i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetArrayItem(tools, i);
        if (!cJSON_IsObject(t))
            return refuse(why, indexed(why, "tools[%d]", i), "invalid_type", "Invalid type for 'tools[%d]': expected an "
                          "object.", i);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)
            return refuse(why, indexed(why, "tools[%d].type", i), "invalid_value", "Invalid value for 'tools[%d].type': "
                          "the local model takes tools of type 'function'.", i);
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (!cJSON_IsObject(fn))
            return refuse(why, indexed(why, "tools[%d].function", i), "missing_required_parameter",
                          "Missing required parameter: 'tools[%d].function'.", i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (!name)
            return refuse(why, indexed(why, "tools[%d].function.name", i), "missing_required_parameter",
                          "Missing required parameter: 'tools[%d].function.name'.", i);
        if (!cJSON_IsString(name) || !good_name(name->valuestring))
            return refuse(why, indexed(why, "tools[%d].function.name", i), "invalid_value", "Invalid 'tools[%d].function."
                          "name': a function name is 1 to 64 letters, digits, underscores and dashes.", i);
        for (int k = 0; k < i; k++) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, k), "function"), "name");
            if (strcmp(o->valuestring, name->valuestring) == 0)
                return refuse(why, indexed(why, "tools[%d].function.name", i), "invalid_value", "Invalid 'tools': the "
                              "function name '%s' is given twice (tools[%d] and tools[%d]).", name->valuestring, k, i);
        }
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
            return refuse(why, indexed(why, "tools[%d].function.parameters", i), "invalid_type", "Invalid type for "
                          "'tools[%d].function.parameters': expected a JSON schema object.", i);
        const cJSON *strict = cJSON_GetObjectItemCaseSensitive(fn, "strict");
        if (strict && !cJSON_IsNull(strict) && !cJSON_IsBool(strict))
            return refuse(why, indexed(why, "tools[%d].function.strict", i), "invalid_type", "Invalid type for "
                          "'tools[%d].function.strict': expected a boolean.", i);
    }
    return 0;
}

int local_tool_params(struct lm_engine *eng, const char *model, const struct llm_request *r,
                      struct local_tools *t, struct local_refusal *why) {
    memset(t, 0, sizeof *t);
    t->only = -1;
    const cJSON *body = r->body;
    const cJSON *legacy = cJSON_GetObjectItemCaseSensitive(body, "functions");
    if (!legacy || cJSON_IsNull(legacy)) legacy = cJSON_GetObjectItemCaseSensitive(body, "function_call");
    if (legacy && !cJSON_IsNull(legacy)) {
        why->capability = 1;
        return refuse(why, legacy->string, "unsupported_parameter", "'%s' (deprecated by OpenAI) is not supported by "
                      "the local model '%s'; use 'tools' and 'tool_choice'.", legacy->string, model);
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    int n = cJSON_IsArray(tools) ? cJSON_GetArraySize(tools) : 0;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(body, "parallel_tool_calls");
    if (n > 0 && check_tools(tools, why) != 0) return -1;
    if (tc && cJSON_IsNull(tc)) tc = NULL;
    if (par && cJSON_IsNull(par)) par = NULL;
    t->choice = n > 0 ? LOCAL_TC_AUTO : LOCAL_TC_NONE;
    if (tc) {
        if (cJSON_IsString(tc)) {
            const char *v = tc->valuestring;
            if (strcmp(v, "none") == 0) t->choice = LOCAL_TC_NONE;
            else if (strcmp(v, "auto") == 0) t->choice = n > 0 ? LOCAL_TC_AUTO : LOCAL_TC_NONE;
            else if (strcmp(v, "required") == 0) t->choice = LOCAL_TC_REQUIRED;
            else
                return refuse(why, "tool_choice", "invalid_value", "Invalid value for 'tool_choice': '%.40s'. "
                              "Supported values are: 'none', 'auto', 'required' and a named function.", v);
        } else if (cJSON_IsObject(tc)) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)
                return refuse(why, "tool_choice.type", "invalid_value", "Invalid value for 'tool_choice.type': the "
                              "local model takes a named tool choice of type 'function'.");
            if (!cJSON_IsString(name))
                return refuse(why, "tool_choice.function.name", "missing_required_parameter",
                              "Missing required parameter: 'tool_choice.function.name'.");
            t->choice = LOCAL_TC_NAMED;
            for (int i = 0; i < n && t->only < 0; i++) {
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, i), "function"), "name");
                if (strcmp(o->valuestring, name->valuestring) == 0) t->only = i;
            }
            if (n > 0 && t->only < 0)
                return refuse(why, "tool_choice.function.name", "invalid_value", "Invalid value for 'tool_choice': "
                              "no function named '%.64s' in 'tools'.", name->valuestring);
        } else {
            return refuse(why, "tool_choice", "invalid_type", "Invalid type for 'tool_choice': expected a string "
                          "or an object.");
        }
        if (n == 0 && t->choice != LOCAL_TC_NONE)
            return refuse(why, "tool_choice", "invalid_value", "Invalid value for 'tool_choice': 'tool_choice' is "
                          "only allowed when 'tools' are specified.");
    }
    if (par) {
        if (!cJSON_IsBool(par))
            return refuse(why, "parallel_tool_calls", "invalid_type", "Invalid type for 'parallel_tool_calls': "
                          "expected a boolean.");
        if (n == 0)
            return refuse(why, "parallel_tool_calls", "invalid_value", "Invalid value for 'parallel_tool_calls': "
                          "'parallel_tool_calls' is only allowed when 'tools' are specified.");
    }
    if (t->choice == LOCAL_TC_NONE) return 0;   /* the model is not shown them: it cannot call */
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    const cJSON *rft = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (cJSON_IsObject(rf) && !(cJSON_IsString(rft) && strcmp(rft->valuestring, "text") == 0)) {
        why->capability = 1;
        return refuse(why, "response_format", "unsupported_parameter", "'response_format' together with 'tools' is "
                      "not supported by the local model '%s'.", model);
    }
    t->st = lm_engine_tool_style(eng);
    t->max_calls = t->st->max_calls == 1 || cJSON_IsFalse(par) ? 1 : 0;
    t->tools_json = cJSON_PrintUnformatted(tools);
    if (!t->tools_json) {
        why->status = 500;
        return refuse(why, NULL, "local_model_error", "out of memory");
    }
    return 0;
}

struct lm_grammar *local_tool_grammar(const struct llm_request *r, const struct local_tools *t,
                                      struct local_refusal *why) {
    char err[400];
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(r->body, "tools");
    struct lm_grammar *g = lm_grammar_tool_calls(&t->st->form, tools, t->only, t->max_calls, err, sizeof err);
    if (!g) {
        /* a keyword llmpin cannot constrain to may be one another target can */
        why->capability = strstr(err, "not supported") || strstr(err, "cannot constrain");
        refuse(why, "tools", "invalid_value", "Invalid tools for the local model: %.400s", err);
    }
    return g;
}
