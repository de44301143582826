/*
 * local_int.h - the local adapter's parts (local.c: calls and their OpenAI
 * bytes; local_params.c: the request's parameters checked and turned into
 * what the engine takes). Not for use outside adapters/local*.c.
 */
#ifndef LLMPIN_LOCAL_INT_H
#define LLMPIN_LOCAL_INT_H

#include <stdint.h>
#include "adapters/local.h"

struct lm_grammar;
struct lm_tool_style;

/* logprobs, top_logprobs (chat) and logit_bias. -1 with why filled (its
 * status already 400) when refused; else bias_id/bias are malloc'd. */
struct lm_sample_extra {
    int logprobs, top_logprobs, n_bias;
    int32_t *bias_id;
    float *bias;
};
int local_sample_extras(struct lm_engine *eng, const char *model, const struct llm_request *r,
                        struct lm_sample_extra *x, struct local_refusal *why);

/* response_format of a chat request: *g = the grammar its output must
 * follow (NULL for free text). -1 with why filled when it is refused. */
int local_response_grammar(const char *model, const struct llm_request *r, struct lm_grammar **g,
                           struct local_refusal *why);

/* tools, tool_choice and parallel_tool_calls of a chat request. */
enum { LOCAL_TC_NONE, LOCAL_TC_AUTO, LOCAL_TC_REQUIRED, LOCAL_TC_NAMED };
struct local_tools {
    int choice;                  /* LOCAL_TC_*; NONE also when there are no tools */
    int only;                    /* NAMED: the tool's index, else -1 */
    int max_calls;               /* 0 = any, 1 (parallel_tool_calls false, or the format has one) */
    char *tools_json;            /* malloc'd: what the template is shown; NULL when choice is NONE */
    const struct lm_tool_style *st;
};
/* -1 with why filled when refused (why->capability when another target
 * might serve it: a schema keyword llmpin cannot constrain to, tools with
 * response_format, the legacy functions). */
int local_tool_params(struct lm_engine *eng, const char *model, const struct llm_request *r,
                      struct local_tools *t, struct local_refusal *why);
/* The grammar of the calls one choice may make (NULL with why filled). */
struct lm_grammar *local_tool_grammar(const struct llm_request *r, const struct local_tools *t,
                                      struct local_refusal *why);

#endif
