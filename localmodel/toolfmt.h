/*
 * toolfmt.h - how a local model writes tool calls, and reading them back.
 *
 * A chat template teaches its model one way of calling tools. llmpin knows
 * four and picks one from the template text (lm_tool_detect):
 *   hermes   <tool_call>{"name": N, "arguments": {...}}</tool_call>, repeated
 *            (Hermes, Qwen 2.5 / 3; the template says "<tool_call>")
 *   mistral  [TOOL_CALLS][{"name": N, "arguments": {...}}, ...]
 *            (the template says "[TOOL_CALLS]")
 *   llama3   {"name": N, "parameters": {...}} as the whole answer, one call
 *            (Llama 3.1+; "<|python_tag|>", or header tokens and "parameters")
 *   generic  {"tool_calls": [{"name": N, "arguments": {...}}, ...]} as the
 *            whole answer, for templates that name no format (llmpin tells the
 *            model about it in the system message)
 *
 * A style gives the grammar of the calls (grammar.h), the trigger (the text
 * that starts them: before it the model writes free text) and what the
 * reader (lm_tscan) needs to find the calls in the output.
 *
 * Pure functions and a per-answer reader: any thread.
 */
#ifndef LLMPIN_TOOLFMT_H
#define LLMPIN_TOOLFMT_H

#include <stddef.h>
#include "localmodel/grammar.h"

enum lm_tool_fmt { LM_TOOLS_GENERIC = 0, LM_TOOLS_HERMES, LM_TOOLS_MISTRAL, LM_TOOLS_LLAMA3 };

struct lm_tool_style {
    enum lm_tool_fmt fmt;
    const char *name;            /* "generic", "hermes", "mistral", "llama3" */
    struct lm_tool_form form;    /* the calls' grammar; a ' ' in its literals is optional whitespace */
    const char *trigger;         /* the output that starts the calls */
    int at_start;                /* the trigger counts only at the start of the answer (after whitespace) */
    int skip;                    /* bytes of the trigger that are not JSON (the reader skips them) */
    int call_depth;              /* JSON nesting depth of each call object */
    int max_calls;               /* 1 when the format has one call, else 0 (any) */
};

const struct lm_tool_style *lm_tool_style(enum lm_tool_fmt f);

/* The format a Jinja template text teaches (LM_TOOLS_GENERIC when none). */
enum lm_tool_fmt lm_tool_detect(const char *tmpl, size_t len);

/* Where trigger starts in out[0, n): its offset, -1 when it is not there but
 * may still come (out's tail, or with at_start all of out after whitespace,
 * is a proper prefix of it), -2 when it no longer can (at_start only: out
 * went another way). */
long lm_trigger_find(const char *out, size_t n, const char *trigger, int at_start);

/* ---- reading an answer ---------------------------------------------------- */

enum lm_ts_kind {
    LM_TS_CONTENT,               /* s/n: text of the answer that is not a call */
    LM_TS_CALL,                  /* call index: its name s/n (decoded), known now */
    LM_TS_ARGS,                  /* call index: the next bytes s/n of its arguments' JSON text */
};
struct lm_ts_event {
    enum lm_ts_kind kind;
    int index;
    const char *s;
    size_t n;
};
typedef void (*lm_ts_cb)(void *ud, const struct lm_ts_event *ev);

/* Reads one answer as it comes: text until the trigger (held back while it
 * may be the trigger's start), then the calls: each call's name once it is
 * complete, then its arguments' bytes verbatim as they come. Output that
 * the grammar made follows the style; anything else is read as well as it
 * can be (a call without a name is reported with name "" when it ends;
 * one cut short before its name is dropped). */
struct lm_tscan;
struct lm_tscan *lm_tscan_new(const struct lm_tool_style *st);
void lm_tscan_free(struct lm_tscan *s);
/* Feed the answer's next bytes; events go to cb before this returns.
 * final = 1 on the last call (held-back text is flushed). 0, or -1 on out
 * of memory. */
int lm_tscan_feed(struct lm_tscan *s, const char *p, size_t n, int final, lm_ts_cb cb, void *ud);
/* Calls begun so far. */
int lm_tscan_calls(const struct lm_tscan *s);

#endif
