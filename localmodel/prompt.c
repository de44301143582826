/*
 * prompt.c - the chat prompt of a local model (prompt.h).
 *
 * Order of choice: a family named in the config (built-in renderer); else a
 * template file named in the config (Jinja, must parse); else the model's
 * tokenizer.chat_template (or tokenizer.chat_template.NAME) run by the Jinja
 * interpreter; if that does not parse, the family its markers suggest, with a
 * warning naming the construct; a model with no template gets "plain".
 *
 * Jinja data: messages (role, content), add_generation_prompt = true as
 * untrusted data; bos_token and eos_token (the vocabulary's texts) as
 * template text. One BOS in the end: the tokenizer adds it only when the
 * model wants one and the template did not write it, as llama.cpp does.
 */
#include "localmodel/prompt.h"
#include "localmodel/chat.h"
#include "localmodel/gguf.h"
#include "localmodel/jinja.h"
#include "localmodel/tokenizer.h"
#include "localmodel/toolfmt.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEMPLATE_FILE (1u << 20)

struct lm_prompt {
    enum lm_chat_family family;
    struct jinja_tmpl *jt;       /* NULL = the family renderer */
    char *name;
    char *bos_text, *eos_text;
    int tok_add_bos;
    enum lm_tool_fmt tool_fmt;   /* how the template teaches tool calls */
    int shows_tools;             /* the template renders `tools` itself */
};

static char *token_text(const struct lm_tokenizer *tok, int id)
{
    size_t n = 0;
    const char *s = id >= 0 ? lm_tok_text(tok, id, &n) : "";
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "chat_template_file %s: cannot be read", path);
        return NULL;
    }
    char *b = malloc(MAX_TEMPLATE_FILE + 1);
    size_t n = b ? fread(b, 1, MAX_TEMPLATE_FILE + 1, f) : 0;
    fclose(f);
    if (!b || n > MAX_TEMPLATE_FILE) {
        free(b);
        snprintf(err, errlen, "chat_template_file %s: larger than %u bytes", path, MAX_TEMPLATE_FILE);
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* The tool-call format a template teaches, and whether it shows the tools
 * (it names the variable `tools`). */
static void tool_detect(struct lm_prompt *p, const char *text, size_t n)
{
    p->tool_fmt = lm_tool_detect(text, n);
    for (size_t i = 0; i + 5 <= n && !p->shows_tools; i++)
        p->shows_tools = memcmp(text + i, "tools", 5) == 0;
}

void lm_prompt_free(struct lm_prompt *p)
{
    if (!p) return;
    jinja_free(p->jt);
    free(p->name);
    free(p->bos_text);
    free(p->eos_text);
    free(p);
}

struct lm_prompt *lm_prompt_new(const struct gguf_file *gf, const struct lm_tokenizer *tok,
                                const char *family, const char *template_file,
                                const char *template_name, char *warn, size_t warnlen,
                                char *err, size_t errlen)
{
    if (warn && warnlen) warn[0] = '\0';
    struct lm_prompt *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->bos_text = token_text(tok, lm_tok_bos(tok));
    p->eos_text = token_text(tok, lm_tok_eos(tok));
    p->tok_add_bos = lm_tok_add_bos(tok);
    if (!p->bos_text || !p->eos_text) goto oom;
    const char *path = gf && gf->path ? gf->path : "model";
    if (family && *family) {
        int fam = lm_chat_from_name(family);
        if (fam < 0) {
            snprintf(err, errlen, "%s: unknown chat_template \"%.64s\"", path, family);
            goto fail;
        }
        p->family = (enum lm_chat_family)fam;
        if (!(p->name = strdup(family))) goto oom;
        return p;
    }
    char jerr[512];
    if (template_file && *template_file) {
        size_t n;
        char *text = read_file(template_file, &n, err, errlen);
        if (!text) goto fail;
        p->jt = jinja_parse(text, n, jerr, sizeof jerr);
        p->family = lm_chat_detect(text, n);
        tool_detect(p, text, n);
        free(text);
        if (!p->jt) {
            snprintf(err, errlen, "chat_template_file %s: %s", template_file, jerr);
            goto fail;
        }
        size_t nl = strlen(template_file) + 6;
        if (!(p->name = malloc(nl))) goto oom;
        snprintf(p->name, nl, "file:%s", template_file);
        return p;
    }
    char key[300] = "tokenizer.chat_template";
    if (template_name && *template_name) snprintf(key, sizeof key, "tokenizer.chat_template.%s", template_name);
    struct gguf_str t = { NULL, 0 };
    const struct gguf_kv *kv = gf ? gguf_find_kv(gf, key) : NULL;
    if (template_name && *template_name && !kv) {
        snprintf(err, errlen, "%s: chat_template_name \"%.64s\": the file has no key '%s'", path,
                 template_name, key);
        goto fail;
    }
    if (kv && (kv->type != GGUF_T_STRING || gguf_get_str(gf, key, &t, jerr, sizeof jerr) < 0)) {
        snprintf(err, errlen, "%s: key '%s' is not a string", path, key);
        goto fail;
    }
    if (!t.ptr || t.len == 0) {
        p->family = LM_CHAT_PLAIN;
        if (!(p->name = strdup("plain"))) goto oom;
        return p;
    }
    p->family = lm_chat_detect(t.ptr, (size_t)t.len);
    p->jt = jinja_parse(t.ptr, (size_t)t.len, jerr, sizeof jerr);
    tool_detect(p, t.ptr, (size_t)t.len);
    if (!p->jt) {
        if (warn)
            snprintf(warn, warnlen, "%s: key '%s' does not parse (%s); rendering with the built-in "
                     "'%s' family instead", path, key, jerr, lm_chat_name(p->family));
        if (!(p->name = strdup(lm_chat_name(p->family)))) goto oom;
        return p;
    }
    if (template_name && *template_name) {
        size_t nl = strlen(template_name) + 7;
        if (!(p->name = malloc(nl))) goto oom;
        snprintf(p->name, nl, "jinja:%s", template_name);
    } else if (!(p->name = strdup("jinja"))) {
        goto oom;
    }
    return p;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    lm_prompt_free(p);
    return NULL;
}

/* The name of the function a tool message answers: its own name, else the
 * name of the earlier call whose id it gives. */
static const char *tool_name(const struct lm_message *m, int i)
{
    if (m[i].name || !m[i].tool_call_id)
        return m[i].name;
    for (int k = i - 1; k >= 0; k--) {
        const cJSON *c;
        cJSON_ArrayForEach(c, m[k].tool_calls) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "function"), "name");
            if (cJSON_IsString(id) && cJSON_IsString(nm) && strcmp(id->valuestring, m[i].tool_call_id) == 0)
                return nm->valuestring;
        }
    }
    return NULL;
}

/* A message as Hugging Face templates take it: role, content (a string, ""
 * when absent: templates test it with `in` and `+`), and tool_calls with
 * each function's arguments as an object when they are a JSON object's text
 * (templates write them with tojson), tool_call_id and name. */
static cJSON *message_json(const struct lm_message *m, int i)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "role", m[i].role ? m[i].role : "user") ||
        !cJSON_AddStringToObject(o, "content", m[i].content ? m[i].content : ""))
        goto oom;
    if (m[i].tool_calls) {
        cJSON *calls = cJSON_Duplicate(m[i].tool_calls, 1);
        if (!calls || !cJSON_AddItemToObject(o, "tool_calls", calls)) {
            cJSON_Delete(calls);
            goto oom;
        }
        cJSON *c;
        cJSON_ArrayForEach(c, calls) {
            cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
            cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            cJSON *parsed = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
            if (cJSON_IsObject(parsed))
                cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
            else
                cJSON_Delete(parsed);
        }
    }
    const char *name = tool_name(m, i);
    if ((m[i].tool_call_id && !cJSON_AddStringToObject(o, "tool_call_id", m[i].tool_call_id)) ||
        (name && !cJSON_AddStringToObject(o, "name", name)))
        goto oom;
    return o;
oom:
    cJSON_Delete(o);
    return NULL;
}

/* ---- tools the template does not show --------------------------------------

 * A built-in family, or a Jinja template that does not use `tools`, gets
 * them from llmpin: listed in the system message with how to call them (the
 * generic form of toolfmt.h); a template that shows tools but names no
 * format gets the instruction alone. Earlier calls are written into the
 * assistant's text in the same form, so the model sees how it called. */

static const char tools_intro[] = "You can call these functions. Each is described by a JSON object:\n";
static const char tools_howto[] =
    "To call functions, answer with this JSON alone and nothing else: "
    "{\"tool_calls\": [{\"name\": \"<function name>\", \"arguments\": {<arguments as its parameters say>}}]} "
    "(one entry per call). Otherwise answer in plain text.";

struct own_msgs {
    struct lm_message *m;
    char **str;                  /* texts allocated for them */
    int n, n_str;
};

static void own_free(struct own_msgs *o)
{
    for (int i = 0; i < o->n_str; i++)
        free(o->str[i]);
    free(o->str);
    free(o->m);
}

static char *own_add(struct own_msgs *o, char *text)
{
    if (text)
        o->str[o->n_str++] = text;
    return text;
}

/* An assistant's earlier calls in the generic form, after its text. */
static char *calls_text(const struct lm_message *m)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "tool_calls");
    const cJSON *c;
    cJSON_ArrayForEach(c, m->tool_calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", cJSON_IsString(name) ? name->valuestring : "");
        cJSON *parsed = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
        if (!parsed)
            parsed = args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject();
        cJSON_AddItemToObject(o, "arguments", parsed);
    }
    char *js = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!js)
        return NULL;
    const char *t = m->content ? m->content : "";
    size_t n = strlen(t), k = strlen(js);
    char *out = malloc(n + k + 2);
    if (out) {
        memcpy(out, t, n);
        if (n)
            out[n++] = '\n';
        memcpy(out + n, js, k + 1);
    }
    cJSON_free(js);
    return out;
}

static int with_tools(const struct lm_message *m, int n, const char *tools_json, int list,
                      struct own_msgs *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->m = calloc((size_t)n + 1, sizeof *o->m);
    o->str = calloc((size_t)n + 2, sizeof *o->str);
    cJSON *tools = list ? cJSON_Parse(tools_json) : NULL;
    struct { char *p; size_t n, cap; } b = { NULL, 0, 0 };
    if (!o->m || !o->str || (list && !cJSON_IsArray(tools)))
        goto fail;
    int sys = n > 0 && m[0].role && strcmp(m[0].role, "system") == 0;
    const char *head = sys && m[0].content ? m[0].content : "";
    size_t need = strlen(head) + sizeof tools_intro + sizeof tools_howto + 4 + (list ? strlen(tools_json) * 2 : 0);
    if (!(b.p = malloc(need)))
        goto fail;
    b.n = (size_t)snprintf(b.p, need, "%s%s%s", head, *head ? "\n\n" : "", list ? tools_intro : "");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        char *one = cJSON_PrintUnformatted(t);
        if (!one)
            goto fail;
        size_t k = strlen(one);
        if (b.n + k + 2 + sizeof tools_howto >= need) {   /* cannot happen: a tool prints shorter than the array */
            cJSON_free(one);
            goto fail;
        }
        memcpy(b.p + b.n, one, k);
        b.n += k;
        b.p[b.n++] = '\n';
        cJSON_free(one);
    }
    memcpy(b.p + b.n, tools_howto, sizeof tools_howto);
    own_add(o, b.p);
    o->m[0] = (struct lm_message){ .role = "system", .content = b.p };
    o->n = 1;
    for (int i = sys; i < n; i++) {
        o->m[o->n] = m[i];
        if (m[i].tool_calls) {
            if (!(o->m[o->n].content = own_add(o, calls_text(&m[i]))))
                goto fail_nob;
            o->m[o->n].tool_calls = NULL;
        }
        o->n++;
    }
    cJSON_Delete(tools);
    return 0;
fail:
    free(b.p);
fail_nob:;
    int bad = list && !cJSON_IsArray(tools);
    cJSON_Delete(tools);
    own_free(o);
    snprintf(err, errlen, bad ? "tools must be a JSON array" : "out of memory");
    return -1;
}

/* The template shows tools and teaches a format of its own. */
static int own_format(const struct lm_prompt *p)
{
    return p->jt && p->shows_tools && p->tool_fmt != LM_TOOLS_GENERIC;
}

const struct lm_tool_style *lm_prompt_tool_style(const struct lm_prompt *p)
{
    return lm_tool_style(own_format(p) ? p->tool_fmt : LM_TOOLS_GENERIC);
}

static char *render(const struct lm_prompt *p, const struct lm_message *m, int n, const char *tools_json,
                    int add_generation_prompt, size_t **spans, int *n_spans, int *add_bos, int *refused,
                    char *err, size_t errlen);

char *lm_prompt_render(const struct lm_prompt *p, const struct lm_message *m, int n, size_t **spans,
                       int *n_spans, int *add_bos, int *refused, char *err, size_t errlen)
{
    return lm_prompt_render_ex(p, m, n, NULL, 1, spans, n_spans, add_bos, refused, err, errlen);
}

char *lm_prompt_render_ex(const struct lm_prompt *p, const struct lm_message *m, int n,
                          const char *tools_json, int add_generation_prompt, size_t **spans,
                          int *n_spans, int *add_bos, int *refused, char *err, size_t errlen)
{
    *refused = 0;
    *add_bos = p->tok_add_bos;
    *spans = NULL;
    *n_spans = 0;
    if (tools_json && !own_format(p)) {
        int list = !(p->jt && p->shows_tools);
        struct own_msgs o;
        if (with_tools(m, n, tools_json, list, &o, err, errlen) != 0)
            return NULL;
        char *out = render(p, o.m, o.n, list ? NULL : tools_json, add_generation_prompt, spans, n_spans,
                           add_bos, refused, err, errlen);
        own_free(&o);
        if (out || list || !*refused)
            return out;
        /* a template that shows tools but takes no system message: the
         * tools without llmpin's instruction (the grammar still holds) */
        *refused = 0;
    }
    return render(p, m, n, tools_json, add_generation_prompt, spans, n_spans, add_bos, refused, err, errlen);
}

static char *render(const struct lm_prompt *p, const struct lm_message *m, int n, const char *tools_json,
                    int add_generation_prompt, size_t **spans, int *n_spans, int *add_bos, int *refused,
                    char *err, size_t errlen)
{
    if (!p->jt) {
        if (!add_generation_prompt) {
            snprintf(err, errlen, "the built-in '%s' chat format always ends with the assistant's turn",
                     p->name);
            return NULL;
        }
        return lm_chat_render_spans(p->family, m, n, p->bos_text, p->eos_text, spans, n_spans, err, errlen);
    }
    cJSON *data = cJSON_CreateObject(), *trusted = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(data, "messages");
    char *out = NULL;
    if (!data || !trusted || !msgs) goto oom;
    for (int i = 0; i < n; i++) {
        cJSON *o = message_json(m, i);
        if (!o)
            goto oom;
        cJSON_AddItemToArray(msgs, o);
    }
    if (tools_json) {
        cJSON *tools = cJSON_Parse(tools_json);
        if (!tools || !cJSON_IsArray(tools)) {
            cJSON_Delete(tools);
            cJSON_Delete(data);
            cJSON_Delete(trusted);
            snprintf(err, errlen, "tools must be a JSON array");
            return NULL;
        }
        cJSON_AddItemToObject(data, "tools", tools);
    }
    if (!cJSON_AddBoolToObject(data, "add_generation_prompt", add_generation_prompt) ||
        !cJSON_AddStringToObject(trusted, "bos_token", p->bos_text) ||
        !cJSON_AddStringToObject(trusted, "eos_token", p->eos_text))
        goto oom;
    size_t len;
    char jerr[1024];
    out = jinja_render(p->jt, data, trusted, NULL, &len, spans, n_spans, refused, jerr, sizeof jerr);
    if (!out) {
        if (*refused) snprintf(err, errlen, "the model's chat template refused the conversation: %s", jerr);
        else snprintf(err, errlen, "the model's chat template failed on this conversation: %s", jerr);
    } else if (*p->bos_text && strncmp(out, p->bos_text, strlen(p->bos_text)) == 0 &&
               !(*n_spans > 0 && (*spans)[0] == 0)) {
        *add_bos = 0;                 /* the template wrote BOS */
    }
    cJSON_Delete(data);
    cJSON_Delete(trusted);
    return out;
oom:
    cJSON_Delete(data);
    cJSON_Delete(trusted);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

const char *const *lm_prompt_stops(const struct lm_prompt *p)
{
    static const char *const none[] = { NULL };
    return p->jt ? none : lm_chat_stops(p->family);
}

const char *lm_prompt_name(const struct lm_prompt *p) { return p->name; }
int lm_prompt_family(const struct lm_prompt *p) { return (int)p->family; }
