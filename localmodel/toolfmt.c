/*
 * toolfmt.c - tool-call formats and the reader of answers (toolfmt.h).
 */
#include "localmodel/toolfmt.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const struct lm_tool_style styles[] = {
    [LM_TOOLS_GENERIC] = { LM_TOOLS_GENERIC, "generic",
                           { "{\"tool_calls\": [", NULL, NULL, ",", "] }", "name", "arguments" },
                           "{\"tool_calls\"", 1, 0, 2, 0 },
    [LM_TOOLS_HERMES] = { LM_TOOLS_HERMES, "hermes",
                          { NULL, "<tool_call>", "</tool_call>", NULL, NULL, "name", "arguments" },
                          "<tool_call>", 0, 0, 0, 0 },
    [LM_TOOLS_MISTRAL] = { LM_TOOLS_MISTRAL, "mistral",
                           { "[TOOL_CALLS][", NULL, NULL, ",", "]", "name", "arguments" },
                           "[TOOL_CALLS]", 0, 12, 1, 0 },
    [LM_TOOLS_LLAMA3] = { LM_TOOLS_LLAMA3, "llama3",
                          { NULL, NULL, NULL, NULL, NULL, "name", "parameters" },
                          "{\"name\"", 1, 0, 0, 1 },
};

const struct lm_tool_style *lm_tool_style(enum lm_tool_fmt f)
{
    return (unsigned)f < sizeof styles / sizeof *styles ? &styles[f] : &styles[0];
}

static int has(const char *t, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; t && i + k <= n; i++)
        if (t[i] == needle[0] && memcmp(t + i, needle, k) == 0)
            return 1;
    return 0;
}

enum lm_tool_fmt lm_tool_detect(const char *tmpl, size_t len)
{
    if (has(tmpl, len, "<tool_call>"))
        return LM_TOOLS_HERMES;
    if (has(tmpl, len, "[TOOL_CALLS]"))
        return LM_TOOLS_MISTRAL;
    if (has(tmpl, len, "<|python_tag|>") || (has(tmpl, len, "<|start_header_id|>") && has(tmpl, len, "parameters")))
        return LM_TOOLS_LLAMA3;
    return LM_TOOLS_GENERIC;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

long lm_trigger_find(const char *out, size_t n, const char *trigger, int at_start)
{
    size_t tl = strlen(trigger);
    if (at_start) {
        size_t i = 0;
        while (i < n && is_ws((unsigned char)out[i]))
            i++;
        size_t m = n - i;
        if (memcmp(out + i, trigger, m < tl ? m : tl) != 0)
            return -2;
        return m >= tl ? (long)i : -1;
    }
    for (size_t i = 0; tl && i + tl <= n; i++)
        if (out[i] == trigger[0] && memcmp(out + i, trigger, tl) == 0)
            return (long)i;
    return -1;
}

/* The longest tail of out[0, n) that is a proper prefix of trigger. */
static size_t prefix_tail(const char *out, size_t n, const char *trigger)
{
    size_t tl = strlen(trigger);
    for (size_t k = tl > 1 ? tl - 1 : 0; k > 0; k--)
        if (k <= n && memcmp(out + n - k, trigger, k) == 0)
            return k;
    return 0;
}

/* ---- the reader -------------------------------------------------------------- */

struct sbuf { char *p; size_t n, cap; };

static int sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

enum { M_TEXT, M_CALLS, M_TEXT_ONLY };
enum { P_KEY, P_COLON, P_VALUE, P_AFTER };
enum { V_NONE, V_STRING, V_NEST, V_SCALAR };
enum { K_OTHER, K_NAME, K_ARGS };

struct lm_tscan {
    const struct lm_tool_style *st;
    int mode;
    struct sbuf hold;            /* text not yet reported (it may start the trigger) */
    size_t skip;                 /* trigger bytes still to skip */
    int depth, in_str, esc;
    int n_calls, cur;            /* calls begun; the one being read (-1 none) */
    int phase, val, key_kind, named;
    struct sbuf key, name, args; /* args: bytes read before the name was known */
    struct sbuf run;             /* arguments' bytes of this feed, reported together */
    int run_call;
    int oom;
    lm_ts_cb cb;
    void *ud;
};

struct lm_tscan *lm_tscan_new(const struct lm_tool_style *st)
{
    struct lm_tscan *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->st = st;
    s->cur = -1;
    return s;
}

void lm_tscan_free(struct lm_tscan *s)
{
    if (!s)
        return;
    free(s->hold.p);
    free(s->key.p);
    free(s->name.p);
    free(s->args.p);
    free(s->run.p);
    free(s);
}

int lm_tscan_calls(const struct lm_tscan *s) { return s->n_calls; }

static void flush_run(struct lm_tscan *s)
{
    if (s->run.n == 0)
        return;
    struct lm_ts_event ev = { LM_TS_ARGS, s->run_call, s->run.p, s->run.n };
    s->run.n = 0;
    s->cb(s->ud, &ev);
}

static void report(struct lm_tscan *s, enum lm_ts_kind k, const char *p, size_t n)
{
    if (k != LM_TS_CALL && n == 0)
        return;
    flush_run(s);
    struct lm_ts_event ev = { k, k == LM_TS_CONTENT ? 0 : s->cur, p ? p : "", n };
    s->cb(s->ud, &ev);
}

/* The call's name is known (or the call ended without one): say so, then
 * the arguments read before it. */
static void name_known(struct lm_tscan *s, const char *name, size_t n)
{
    if (s->named)
        return;
    s->named = 1;
    report(s, LM_TS_CALL, name, n);
    report(s, LM_TS_ARGS, s->args.p, s->args.n);
    s->args.n = 0;
}

static void args_bytes(struct lm_tscan *s, const char *p, size_t n)
{
    if (s->named && s->run.n && s->run_call != s->cur)
        flush_run(s);
    s->run_call = s->cur;
    if (sb_add(s->named ? &s->run : &s->args, p, n) != 0)
        s->oom = 1;
}

static void value_byte(struct lm_tscan *s, char c)
{
    if (s->key_kind == K_ARGS)
        args_bytes(s, &c, 1);
    else if (s->key_kind == K_NAME && s->val == V_STRING && sb_add(&s->name, &c, 1) != 0)
        s->oom = 1;
}

static void value_end(struct lm_tscan *s)
{
    if (s->key_kind == K_NAME && s->val == V_STRING) {
        cJSON *v = cJSON_ParseWithLength(s->name.p ? s->name.p : "", s->name.n);
        if (cJSON_IsString(v))
            name_known(s, v->valuestring, strlen(v->valuestring));
        cJSON_Delete(v);
    }
    s->val = V_NONE;
    s->phase = P_AFTER;
}

static void call_end(struct lm_tscan *s)
{
    name_known(s, "", 0);
    s->cur = -1;
}

static void call_byte(struct lm_tscan *s, char ch)
{
    unsigned char c = (unsigned char)ch;
    int d = s->st->call_depth;
    if (s->cur < 0) {                       /* between calls: follow the structure */
        if (s->in_str) {
            if (s->esc) s->esc = 0;
            else if (c == '\\') s->esc = 1;
            else if (c == '"') s->in_str = 0;
        } else if (c == '"') {
            s->in_str = 1;
        } else if (c == '{' || c == '[') {
            if (c == '{' && s->depth == d) {
                s->cur = s->n_calls++;
                s->phase = P_KEY;
                s->named = 0;
                s->val = V_NONE;
                s->args.n = 0;
            }
            s->depth++;
        } else if ((c == '}' || c == ']') && s->depth > 0) {
            s->depth--;
        }
        return;
    }
    if (s->val == V_SCALAR) {
        if (c != ',' && c != '}' && c != ']' && !is_ws(c)) {
            value_byte(s, ch);
            return;
        }
        value_end(s);                       /* and c belongs to the object */
    } else if (s->val != V_NONE) {
        value_byte(s, ch);
        if (s->in_str) {
            if (s->esc) s->esc = 0;
            else if (c == '\\') s->esc = 1;
            else if (c == '"') {
                s->in_str = 0;
                if (s->val == V_STRING)
                    value_end(s);
            }
        } else if (c == '"') {
            s->in_str = 1;
        } else if (c == '{' || c == '[') {
            s->depth++;
        } else if (c == '}' || c == ']') {
            if (--s->depth == d + 1)
                value_end(s);
        }
        return;
    }
    if (s->in_str) {                        /* a key */
        if (s->esc) s->esc = 0;
        else if (c == '\\') s->esc = 1;
        else if (c == '"') {
            s->in_str = 0;
            s->phase = P_COLON;
            return;
        }
        if (sb_add(&s->key, &ch, 1) != 0)
            s->oom = 1;
        return;
    }
    if (is_ws(c))
        return;
    if (s->phase == P_VALUE) {
        const char *k = s->key.p ? s->key.p : "";
        s->key_kind = strcmp(k, s->st->form.name_key) == 0 ? K_NAME
                    : strcmp(k, s->st->form.args_key) == 0 ? K_ARGS : K_OTHER;
        s->name.n = 0;
        s->val = c == '"' ? V_STRING : c == '{' || c == '[' ? V_NEST : V_SCALAR;
        value_byte(s, ch);
        if (c == '"')
            s->in_str = 1;
        else if (s->val == V_NEST)
            s->depth++;
        return;
    }
    if (c == '"' && s->phase == P_KEY) {
        s->in_str = 1;
        s->key.n = 0;
        if (s->key.p)
            s->key.p[0] = 0;
    } else if (c == ':' && s->phase == P_COLON) {
        s->phase = P_VALUE;
    } else if (c == ',' && s->phase == P_AFTER) {
        s->phase = P_KEY;
    } else if (c == '}' || c == ']') {      /* the call object closes */
        if (s->depth > 0)
            s->depth--;
        call_end(s);
    } else if (c == '{' || c == '[') {
        s->depth++;                         /* not JSON the grammar allows; keep the count */
    }
}

static void enter_calls(struct lm_tscan *s, const char *p, size_t n)
{
    s->mode = M_CALLS;
    s->skip = (size_t)s->st->skip;
    for (size_t i = 0; i < n; i++) {
        if (s->skip) {
            s->skip--;
            continue;
        }
        call_byte(s, p[i]);
    }
}

int lm_tscan_feed(struct lm_tscan *s, const char *p, size_t n, int final, lm_ts_cb cb, void *ud)
{
    s->cb = cb;
    s->ud = ud;
    if (s->mode == M_TEXT_ONLY) {
        report(s, LM_TS_CONTENT, p, n);
    } else if (s->mode == M_CALLS) {
        for (size_t i = 0; i < n; i++) {
            if (s->skip) {
                s->skip--;
                continue;
            }
            call_byte(s, p[i]);
        }
    } else {
        if (sb_add(&s->hold, p, n) != 0)
            return -1;
        const char *t = s->st->trigger;
        long at = lm_trigger_find(s->hold.p, s->hold.n, t, s->st->at_start);
        if (at >= 0) {
            /* whitespace before an answer that is all calls is not content */
            if (!s->st->at_start)
                report(s, LM_TS_CONTENT, s->hold.p, (size_t)at);
            char *h = s->hold.p;
            size_t hn = s->hold.n;
            s->hold.p = NULL;
            s->hold.n = s->hold.cap = 0;
            enter_calls(s, h + at, hn - (size_t)at);
            free(h);
        } else if (at == -2) {
            s->mode = M_TEXT_ONLY;
            report(s, LM_TS_CONTENT, s->hold.p, s->hold.n);
            s->hold.n = 0;
        } else if (!s->st->at_start) {
            size_t keep = prefix_tail(s->hold.p, s->hold.n, t);
            report(s, LM_TS_CONTENT, s->hold.p, s->hold.n - keep);
            memmove(s->hold.p, s->hold.p + s->hold.n - keep, keep);
            s->hold.n = keep;
        }
    }
    if (final) {
        if (s->mode == M_TEXT) {
            report(s, LM_TS_CONTENT, s->hold.p, s->hold.n);
            s->hold.n = 0;
        } else if (s->mode == M_CALLS && s->cur >= 0) {
            if (s->val == V_SCALAR)
                value_end(s);
            if (s->named)                   /* cut short (max_tokens): what there is */
                call_end(s);
            else                            /* a call cut before its name is none */
                s->n_calls--, s->cur = -1;
        }
    }
    flush_run(s);
    return s->oom ? -1 : 0;
}
