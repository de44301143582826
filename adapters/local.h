/*
 * local.h - the "local" adapter: serves OpenAI requests from a pinned GGUF
 * model running inside llmpin (localmodel/).
 *
 * It speaks to the proxy exactly like a remote upstream does: a response
 * head, then OpenAI-format bytes (a JSON body, or SSE events ending in
 * "data: [DONE]"), then done. The proxy's streaming, recording and fallback
 * code therefore treats local and remote targets the same way.
 *
 * Generation runs on the engine's worker threads; events come back to the
 * event loop through a mutex-protected queue and event_active().
 */
#ifndef LLMPIN_LOCAL_H
#define LLMPIN_LOCAL_H

#include <stddef.h>
#include "adapters/upstream.h"
#include "common/llm.h"
#include "config/config.h"
#include "localmodel/lm.h"

struct event_base;
struct local_model;
struct local_call;
struct lm_engine;

/* Verify, load and start a model. Blocking (hashes the whole file): call at
 * start-up or reload, before serving. */
struct local_model *local_model_open(struct event_base *base, const struct cfg_local_model *m,
                                     char *err, size_t errlen);
void local_model_close(struct local_model *m);
const char *local_model_sha256(const struct local_model *m);
/* The engine serving it (for /tokenize, /detokenize, /apply-template). */
struct lm_engine *local_model_engine(const struct local_model *m);
/* The config entry it was opened with matches c (same path, hash, options)? */
int local_model_same(const struct local_model *m, const struct cfg_local_model *c);

/* Why a request was refused: HTTP status, OpenAI error code and param
 * (static strings; param may be NULL) and a message. */
struct local_refusal {
    int status;                 /* 400 or 429 */
    const char *code;
    const char *param;          /* static, or param_buf */
    char param_buf[64];
    char message[512];
    int capability;             /* the request needs what this model lacks (tools, a JSON
                                   schema, logprobs, n > 1, a longer context): another
                                   target may serve it, so a route skips this one */
};

/* Start a request. Only cb->on_head, on_data, on_done and ud are used, and
 * are called on the loop thread. Returns NULL with *why filled when the
 * request cannot be queued (unsupported parameter, context overflow, queue
 * full). */
struct local_call *local_start(struct local_model *m, const struct llm_request *r,
                               const char *model_name, const struct upstream_req *cb,
                               struct local_refusal *why);
/* Stop generation; no callback runs after this. */
void local_cancel(struct local_call *c);

/* The chat messages of r as the engine's templates take them ("developer"
 * is "system"; tool_calls, tool_call_id and name point into r->body).
 * malloc'd array of r->n_messages (caller frees). */
struct lm_message *local_messages(const struct llm_request *r);

#endif
