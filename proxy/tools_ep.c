/*
 * tools_ep.c - what a local model is fed, seen from outside (llama-server's
 * request and response shapes, so its clients and scripts work unchanged):
 *
 *   POST /tokenize        {"model","content","add_special","parse_special","with_pieces"}
 *                         -> {"tokens":[ids]} or {"tokens":[{"id","piece"}]}
 *   POST /detokenize      {"model","tokens":[ids]} -> {"content":"..."}
 *   POST /apply-template  {"model","messages","tools","add_generation_prompt"}
 *                         -> {"prompt":"..."}
 *
 * "model" names a local model, or a route whose targets include one; it may
 * be left out when the configuration has exactly one local model. Keys and
 * errors are those of /v1.
 *
 * The body is checked on the loop; the tokenizing and rendering (a large
 * body takes milliseconds, and a template up to its step limit) run on a
 * short-lived thread, which hands the finished answer back with
 * event_active. The request holds a reference on its generation, so a
 * reload cannot close the model underneath it.
 */
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/local.h"
#include "common/jsonv.h"
#include "common/llm.h"
#include "common/log.h"
#include "localmodel/lm.h"
#include "localmodel/sampler.h"
#include "localmodel/tokenizer.h"
#include "policy/policy.h"
#include "proxy/app_internal.h"

#define MAX_TOOL_JOBS 8                 /* running at once; more get 429 */

enum tool_kind { TOOL_TOKENIZE, TOOL_DETOKENIZE, TOOL_TEMPLATE };

struct tool_job {
    struct app *app;
    struct gen *gen;                    /* referenced: keeps the model open */
    struct http_exchange *ex;
    struct event *done;
    enum tool_kind kind;
    const struct lm_engine *eng;
    char rid[40];
    char *key_name, *model;
    cJSON *body;                        /* tokenize, detokenize */
    struct llm_request req;             /* apply-template */
    char *tools_json;
    int add_special, parse_special, with_pieces, add_gen;
    /* the answer, made on the thread */
    int status;
    struct buf out;
};

static int running;                     /* loop thread only */

/* A JSON string of s[0..n), bytes that are not UTF-8 replaced by U+FFFD
 * the way streamed local answers replace them (lm_textout). Returns 1 if
 * something was replaced. */
static int json_utf8(struct buf *b, const char *s, size_t n) {
    struct lm_textout *t = lm_textout_new(NULL, 0);
    if (!t) {
        buf_json_strn(b, s, n);
        return 0;
    }
    lm_textout_push(t, s, n);
    lm_textout_finish(t);
    size_t len;
    const char *v = lm_textout_take(t, &len);
    buf_json_strn(b, v, len);
    int changed = len != n || memcmp(v, s, n) != 0;
    lm_textout_free(t);
    return changed;
}

static void job_error(struct tool_job *j, int status, const char *code, const char *param, const char *msg) {
    j->status = status;
    j->out.len = 0;
    app_error_json(&j->out, msg, status >= 500 ? "server_error" : "invalid_request_error", param, code);
    buf_appends(&j->out, "\n");
}

/* A token's text as the model would print it; control tokens show as
 * written ("<|eot_id|>"), as llama-server shows them. */
static const char *token_text(const struct lm_tokenizer *t, int32_t prev, int32_t id, size_t *len) {
    int ty = lm_tok_type(t, id);
    if (ty == LM_TOK_CONTROL || ty == LM_TOK_UNKNOWN) return lm_tok_text(t, id, len);
    return lm_tok_piece(t, prev, id, len);
}

static void run_tokenize(struct tool_job *j) {
    const struct lm_tokenizer *t = lm_engine_tokenizer(j->eng);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j->body, "content");
    const char *text = c->valuestring;
    size_t len = strlen(text);
    int add = j->add_special ? lm_tok_add_special(t) : 0;
    /* a token covers at least one byte, bar the added specials and a space
     * prefix: one pass fills a buffer of that size; a second only if not */
    int cap = len < (size_t)INT_MAX - 8 ? (int)len + 8 : INT_MAX;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int n = ids ? lm_tok_encode(t, text, len, add, j->parse_special, ids, cap) : -2;
    if (n > cap) {
        int32_t *more = realloc(ids, (size_t)n * sizeof *ids);
        ids = more ? more : ids;
        n = more && lm_tok_encode(t, text, len, add, j->parse_special, ids, n) == n ? n : -2;
    }
    if (n < 0) {
        free(ids);
        if (n == -2) job_error(j, 500, "out_of_memory", NULL, "Out of memory tokenizing 'content'.");
        else job_error(j, 400, "invalid_value", "content", "The local model cannot tokenize this 'content'.");
        return;
    }
    j->status = 200;
    buf_appends(&j->out, "{\"tokens\":[");
    for (int i = 0; i < n; i++) {
        if (i) buf_appends(&j->out, ",");
        if (!j->with_pieces) {
            buf_printf(&j->out, "%d", ids[i]);
            continue;
        }
        size_t pl;
        const char *p = token_text(t, i ? ids[i - 1] : -1, ids[i], &pl);
        buf_printf(&j->out, "{\"id\":%d,\"piece\":", ids[i]);
        /* a piece that is not whole UTF-8 (one byte of a character) is
         * given as its bytes, as llama-server does */
        struct buf tmp = {0};
        if (json_utf8(&tmp, p, pl)) {
            buf_appends(&j->out, "[");
            for (size_t k = 0; k < pl; k++) buf_printf(&j->out, "%s%u", k ? "," : "", (unsigned char)p[k]);
            buf_appends(&j->out, "]");
        } else {
            buf_append(&j->out, tmp.p, tmp.len);
        }
        buf_free(&tmp);
        buf_appends(&j->out, "}");
    }
    buf_appends(&j->out, "]}\n");
    free(ids);
}

static void run_detokenize(struct tool_job *j) {
    const struct lm_tokenizer *t = lm_engine_tokenizer(j->eng);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j->body, "tokens");
    struct buf text = {0};
    int32_t prev = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        int32_t id = (int32_t)it->valuedouble;
        size_t pl;
        const char *p = token_text(t, prev, id, &pl);
        buf_append(&text, p, pl);
        prev = id;
    }
    j->status = 200;
    buf_appends(&j->out, "{\"content\":");
    json_utf8(&j->out, text.p ? text.p : "", text.len);
    buf_appends(&j->out, "}\n");
    buf_free(&text);
}

static void run_template(struct tool_job *j) {
    const struct llm_request *r = &j->req;
    struct lm_message *m = local_messages(r);   /* as the chat endpoint hands them to the engine */
    size_t *spans = NULL;
    int n_spans = 0, add_bos = 0, refused = 0;
    char err[1200];
    char *text = lm_engine_render(j->eng, m, r->n_messages, j->tools_json, j->add_gen, &spans, &n_spans, &add_bos,
                                  &refused, err, sizeof err);
    free(m);
    free(spans);
    if (!text) {
        job_error(j, 400, refused ? "template_refused" : "invalid_value", "messages", err);
        return;
    }
    j->status = 200;
    buf_appends(&j->out, "{\"prompt\":");
    json_utf8(&j->out, text, strlen(text));
    buf_appends(&j->out, "}\n");
    free(text);
}

static void *tool_thread(void *arg) {
    struct tool_job *j = arg;
    switch (j->kind) {
    case TOOL_TOKENIZE: run_tokenize(j); break;
    case TOOL_DETOKENIZE: run_detokenize(j); break;
    case TOOL_TEMPLATE: run_template(j); break;
    }
    event_active(j->done, EV_READ, 0); /* the last touch of j on this thread */
    return NULL;
}

static void job_free(struct tool_job *j) {
    if (j->done) event_free(j->done);
    cJSON_Delete(j->body);
    llm_request_free(&j->req);
    free(j->tools_json);
    free(j->key_name);
    free(j->model);
    buf_free(&j->out);
    app_gen_unref(j->gen);
    free(j);
}

static void on_abort(struct http_exchange *ex, void *ud) {
    (void)ex;
    (void)ud; /* the thread runs to its end; on_done sees ex->aborted */
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct tool_job *j = arg;
    struct http_exchange *ex = j->ex;
    running--;
    ex->on_abort = NULL;
    ex->hook_ud = NULL;
    if (ex->aborted) {
        http_abandon(ex);
        app_log_request(j->app, ex, j->rid, 499, j->model, j->key_name);
    } else {
        char h[80];
        snprintf(h, sizeof h, "x-request-id: %s\r\n", j->rid);
        http_respond(ex, j->status, "application/json", h, j->out.p, j->out.len);
        app_log_request(j->app, ex, j->rid, j->status, j->model, j->key_name);
    }
    job_free(j);
}

int app_is_tools_path(const char *path) {
    return strcmp(path, "/tokenize") == 0 || strcmp(path, "/detokenize") == 0 ||
           strcmp(path, "/apply-template") == 0;
}

/* The local model "model" names: a local model by its name, or the first
 * local target of the route the name matches. NULL with the error sent. */
static struct local_model *find_model(struct app *a, struct http_exchange *ex, const char *model,
                                      const struct cfg_client_key *key, const char *rid) {
    struct gen *g = a->gen;
    const struct cfg *c = g->cfg;
    char msg[600];
    if (!model) {
        if (c->n_local_models == 1 && g->local && g->local[0]) return g->local[0];
        snprintf(msg, sizeof msg, "Missing required parameter: 'model' (%s).",
                 c->n_local_models ? "more than one local model is configured" : "no local model is configured");
        app_simple_error(ex, 400, "invalid_request_error", "missing_required_parameter", "model", msg, rid);
        return NULL;
    }
    for (size_t i = 0; i < c->n_local_models; i++)
        if (strcmp(c->local_models[i].name, model) == 0 && g->local && g->local[i]) return g->local[i];
    struct policy_error pe;
    const struct policy_route *r = policy_match(g->pol, model, key ? key->name : NULL, NULL, 0, &pe);
    if (r) {
        const struct cfg_route *cr = r->cfg;
        for (size_t i = 0; i < cr->n_targets; i++) {
            int li = cr->targets[i].local_idx;
            if (li >= 0 && g->local && g->local[li]) return g->local[li];
        }
        snprintf(msg, sizeof msg, "The model '%.200s' is served by route '%.100s', which has no local model; "
                 "%s works only on local models.", model, cr->name, ex->path);
        app_simple_error(ex, 400, "invalid_request_error", "not_a_local_model", "model", msg, rid);
        return NULL;
    }
    snprintf(msg, sizeof msg, "The model '%.200s' does not exist or you do not have access to it.", model);
    app_simple_error(ex, 404, "invalid_request_error", "model_not_found", "model", msg, rid);
    return NULL;
}

static int want_bool(struct http_exchange *ex, const cJSON *body, const char *name, int def, int *out,
                     const char *rid) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Invalid type for '%s': expected a boolean.", name);
        app_simple_error(ex, 400, "invalid_request_error", "invalid_type", name, msg, rid);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* body[name], present and of cJSON type `type`; else NULL with the error sent. */
static const cJSON *need(struct http_exchange *ex, const cJSON *body, const char *name, int type,
                         const char *expected, const char *rid) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    char msg[200];
    if (!v) {
        snprintf(msg, sizeof msg, "Missing required parameter: '%s'.", name);
        app_simple_error(ex, 400, "invalid_request_error", "missing_required_parameter", name, msg, rid);
        return NULL;
    }
    if ((v->type & 0xFF) != type) {
        snprintf(msg, sizeof msg, "Invalid type for '%s': expected %s.", name, expected);
        app_simple_error(ex, 400, "invalid_request_error", "invalid_type", name, msg, rid);
        return NULL;
    }
    return v;
}

void app_tools_endpoint(struct app *a, struct http_exchange *ex, const struct cfg_client_key *key, const char *rid) {
    if (strcmp(ex->method, "POST") != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "Method %s is not allowed on %s; use POST.", ex->method, ex->path);
        app_simple_error(ex, 405, "invalid_request_error", "method_not_allowed", NULL, msg, rid);
        return;
    }
    enum tool_kind kind = strcmp(ex->path, "/tokenize") == 0     ? TOOL_TOKENIZE
                          : strcmp(ex->path, "/detokenize") == 0 ? TOOL_DETOKENIZE
                                                                 : TOOL_TEMPLATE;
    struct jsonv_error je;
    if (jsonv_check(ex->body, ex->body_len, JSONV_NO_DUP_KEYS | JSONV_NO_NUL, &je) < 0) {
        char msg[400];
        int line, col;
        llm_line_col(ex->body, ex->body_len, je.offset, &line, &col);
        snprintf(msg, sizeof msg, "We could not parse the JSON body of your request: %s at line %d, column %d (byte %zu).",
                 je.message, line, col, je.offset);
        app_simple_error(ex, 400, "invalid_request_error", "invalid_json", NULL, msg, rid);
        return;
    }
    cJSON *body = cJSON_ParseWithLength(ex->body, ex->body_len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        app_simple_error(ex, 400, "invalid_request_error", "invalid_type", NULL,
                         "The request body must be a JSON object.", rid);
        return;
    }
    const cJSON *mv = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (mv && !cJSON_IsNull(mv) && !cJSON_IsString(mv)) {
        cJSON_Delete(body);
        app_simple_error(ex, 400, "invalid_request_error", "invalid_type", "model",
                         "Invalid type for 'model': expected a string.", rid);
        return;
    }
    const char *model = cJSON_IsString(mv) ? mv->valuestring : NULL;
    struct local_model *lm = find_model(a, ex, model, key, rid);
    if (!lm) {
        cJSON_Delete(body);
        return;
    }
    struct tool_job *j = util_xcalloc(1, sizeof *j);
    j->app = a;
    j->ex = ex;
    j->kind = kind;
    j->eng = local_model_engine(lm);
    snprintf(j->rid, sizeof j->rid, "%s", rid);
    j->key_name = key ? util_strdup(key->name) : NULL;
    j->model = model ? util_strdup(model) : NULL;
    j->body = body;
    const struct lm_tokenizer *t = lm_engine_tokenizer(j->eng);

    if (kind == TOOL_TOKENIZE) {
        if (!need(ex, body, "content", cJSON_String, "a string", rid)) goto refuse;
        if (want_bool(ex, body, "add_special", 0, &j->add_special, rid) ||
            want_bool(ex, body, "parse_special", 1, &j->parse_special, rid) ||
            want_bool(ex, body, "with_pieces", 0, &j->with_pieces, rid))
            goto refuse;
    } else if (kind == TOOL_DETOKENIZE) {
        const cJSON *arr = need(ex, body, "tokens", cJSON_Array, "an array of token ids", rid);
        if (!arr) goto refuse;
        int i = 0, nv = lm_tok_n_vocab(t);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            char msg[200], param[32];
            snprintf(param, sizeof param, "tokens[%d]", i);
            if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int64_t)it->valuedouble) {
                snprintf(msg, sizeof msg, "Invalid type for 'tokens[%d]': expected an integer token id.", i);
                app_simple_error(ex, 400, "invalid_request_error", "invalid_type", param, msg, rid);
                goto refuse;
            }
            if (it->valuedouble < 0 || it->valuedouble >= nv) {
                snprintf(msg, sizeof msg, "Invalid value for 'tokens[%d]': %.0f is not a token id of this model "
                         "(its vocabulary has %d tokens, ids 0 to %d).", i, it->valuedouble, nv, nv - 1);
                app_simple_error(ex, 400, "invalid_request_error", "invalid_value", param, msg, rid);
                goto refuse;
            }
            i++;
        }
    } else {
        /* the messages exactly as /v1/chat/completions reads them, so the
         * prompt shown is the prompt a chat request gets */
        if (!model) {
            cJSON_AddStringToObject(body, "model", "-");
        }
        char *text = cJSON_PrintUnformatted(body);
        char param[96], code[64], msg[400];
        int rc = llm_request_parse(LLM_CHAT, text, strlen(text), &j->req, param, sizeof param, code, sizeof code,
                                   msg, sizeof msg);
        free(text);
        if (rc) {
            app_simple_error(ex, 400, "invalid_request_error", code, param[0] ? param : NULL, msg, rid);
            goto refuse;
        }
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
        if (tools && !cJSON_IsNull(tools)) {
            if (!cJSON_IsArray(tools)) {
                app_simple_error(ex, 400, "invalid_request_error", "invalid_type", "tools",
                                 "Invalid type for 'tools': expected an array.", rid);
                goto refuse;
            }
            j->tools_json = cJSON_PrintUnformatted(tools);
        }
        if (want_bool(ex, body, "add_generation_prompt", 1, &j->add_gen, rid)) goto refuse;
        cJSON_Delete(j->body);
        j->body = NULL;
    }
    if (running >= MAX_TOOL_JOBS) {
        char h[120];
        snprintf(h, sizeof h, "x-request-id: %s\r\nretry-after: 1\r\n", rid);
        struct buf b = {0};
        app_error_json(&b, "Too many tokenize and template requests at once; try again shortly.", "requests", NULL,
                       "too_many_requests");
        http_respond(ex, 429, "application/json", h, b.p, b.len);
        buf_free(&b);
        goto refuse;
    }
    j->gen = a->gen;
    a->gen->refs++;
    j->done = event_new(a->base, -1, 0, on_done, j);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = j->done ? pthread_create(&th, &at, tool_thread, j) : -1;
    pthread_attr_destroy(&at);
    if (rc != 0) {
        log_error("%s: cannot start a thread", ex->path);
        app_simple_error(ex, 500, "server_error", "internal_error", NULL, "Cannot start a worker thread.", rid);
        goto refuse;
    }
    running++;
    ex->on_abort = on_abort;
    ex->hook_ud = j;
    return;
refuse:
    job_free(j);
}
