/*
 * lm.h - the local model engine as the rest of llmpin sees it.
 *
 * An lm_engine owns one loaded, hash-verified GGUF model, its worker threads
 * and its scheduler. Requests are submitted as jobs; the scheduler decodes
 * concurrent jobs together (batched decode: several sequences share each
 * weight read). Events for a job are delivered by calling job->emit ON A
 * WORKER THREAD; the caller (adapters/local.c) hands them to the event loop.
 * Nothing here touches HTTP.
 */
#ifndef LLMPIN_LM_H
#define LLMPIN_LM_H

#include <stddef.h>
#include <stdint.h>

struct lm_engine;

struct lm_engine_opts {
    const char *path;
    const char *sha256;        /* 64 hex digits, or "unpinned" (logs a warning) */
    int context_length;        /* 0 = model's own, capped at 4096 */
    int threads;               /* 0 = number of CPUs */
    const char *chat_template; /* a built-in family name; NULL = the model's Jinja template */
    const char *chat_template_file; /* a Jinja file instead of the model's template; NULL = none */
    const char *chat_template_name; /* tokenizer.chat_template.NAME instead of the default; NULL */
    int max_queue;             /* 0 = 64 */
    int max_batch;             /* 0 = 8 */
    int kv_f32;                /* KV cache in F32 (default F16: half the memory) */
};

/* Verify the file's SHA-256 (whole file), parse it, load weights (mmap),
 * start workers. Blocking: call at start-up or from a thread, never on the
 * event loop. Hash mismatch error text contains both hashes:
 *   "model.gguf: SHA-256 mismatch: expected 78c4...ab, got 1234...ef" */
struct lm_engine *lm_engine_open(const struct lm_engine_opts *o, char *err, size_t errlen);
void lm_engine_close(struct lm_engine *e);   /* stops workers; cancels queued jobs */

/* Information for /v1/models and `llmpin verify`. Pointers owned by e. */
struct lm_info {
    const char *sha256;        /* 64 hex digits actually computed */
    const char *architecture;
    const char *chat_template; /* "jinja", "jinja:NAME", "file:PATH" or a family name */
    uint64_t n_params;
    int context_length;        /* in use */
    int n_vocab;
    int n_embd;                /* width of the embeddings it makes (the model's dim) */
    const char *kv_cache;      /* "f16" or "f32" */
};
void lm_engine_info(const struct lm_engine *e, struct lm_info *out);

/* ---- jobs ---------------------------------------------------------------- */

enum lm_ev_type {
    LM_EV_TEXT,                /* text/len: valid UTF-8, never split inside a character */
    LM_EV_DONE,                /* finish_reason, usage; last event */
    LM_EV_ERROR,               /* message; last event */
    LM_EV_EMBEDDING,           /* embedding/n_embd (embedding jobs), then DONE */
    LM_EV_LOGPROB,             /* params.logprobs: one per generated token, before its TEXT */
};

/* A token and its log-probability under the model (log-softmax of its raw
 * logits: before penalties, logit_bias and a grammar's mask). */
struct lm_top {
    const char *text;          /* the token's bytes (may be part of a UTF-8 character) */
    size_t len;
    float logprob;
};

struct lm_event {
    enum lm_ev_type type;
    const char *text;          /* TEXT: bytes; ERROR: message */
    size_t len;
    const char *finish_reason; /* DONE: "stop" | "length" */
    int prompt_tokens, completion_tokens;
    const float *embedding;    /* EMBEDDING: L2-normalised mean of final hidden states */
    int n_embd;
    int status;                /* ERROR: 400 when the request is at fault (code says how), else 0 */
    const char *code;          /* ERROR with status 400: "context_length_exceeded", "invalid_value" */
    float logprob;             /* LOGPROB: of the token chosen, whose bytes are text/len */
    const struct lm_top *top;  /* LOGPROB: the params.top_logprobs most likely tokens, best first */
    int n_top;
};

/* A chat message for template rendering. */
struct cJSON;
struct lm_message {
    const char *role;          /* system | user | assistant | tool */
    const char *content;
    const struct cJSON *tool_calls;  /* assistant: OpenAI's tool_calls array, or NULL */
    const char *tool_call_id;  /* tool: the call it answers, or NULL */
    const char *name;          /* tool (or any): the message's name, or NULL */
};

struct lm_params {
    float temperature;         /* 0 = greedy; default 1 */
    float top_p;               /* default 1 */
    int top_k;                 /* 0 = off */
    uint64_t seed;
    int has_seed;              /* else a random seed */
    float frequency_penalty, presence_penalty;
    int max_tokens;            /* 0 = until EOS or context end */
    const char *const *stop;   /* stop strings, copied at submit */
    int n_stop;
    const int32_t *bias_id;    /* logit_bias: bias[i] added to the logit of bias_id[i] */
    const float *bias;         /*   (ids < n_vocab; copied at submit) */
    int n_bias;
    int logprobs;              /* emit LM_EV_LOGPROB per generated token */
    int top_logprobs;          /* 0..20 alternatives with each */
};

enum lm_job_kind { LM_JOB_CHAT, LM_JOB_COMPLETION, LM_JOB_EMBED };

struct lm_job_req {
    enum lm_job_kind kind;
    const struct lm_message *messages; /* CHAT */
    int n_messages;
    const char *prompt;        /* COMPLETION and EMBED */
    struct lm_params params;
    /* CHAT/COMPLETION: the output must follow this grammar (localmodel/
     * grammar.h; response_format). lm_submit owns it from the call on,
     * also when it fails. NULL = free text. */
    struct lm_grammar *grammar;
    /* CHAT with tools: the JSON array's text the template shows (NULL =
     * none), and the text that starts the model's calls (toolfmt.h): a
     * control token of exactly that text is written as it, and allowed
     * where the grammar takes it. lazy: the output is free until the
     * trigger comes (at_start: only as the answer's start), the grammar
     * applies from the trigger on (tool_choice "auto"); else from the first
     * token. */
    const char *tools_json;
    const char *trigger;
    int trigger_at_start;
    int lazy;
    void (*emit)(void *ud, const struct lm_event *ev); /* worker thread */
    void *ud;
};

struct lm_job;

/* Queue a job (copies everything in req). Returns the job, or NULL with err,
 * *http_status and (code may be NULL) *code: 429 when the queue is full;
 * 400 "context_length_exceeded" when the prompt cannot fit the context
 * whatever its tokens ("prompt is at least 9000 tokens (144000 bytes);
 * context_length is 512"); 400 "template_refused" when the chat template
 * raised (err has its words); 400 "invalid_value" for an empty prompt or a
 * template that failed to render. Cheap: the calling thread (the
 * event loop) renders the chat template, a copy; the prompt is tokenized by
 * the scheduler thread, which ends a prompt that turns out too long with an
 * ERROR event of status 400 ("prompt is 700 tokens; context_length is 512",
 * code "context_length_exceeded"). */
struct lm_job *lm_submit(struct lm_engine *e, const struct lm_job_req *req,
                         int *http_status, const char **code, char *err, size_t errlen);

/* The token ids lm_submit would queue for req (chat: the rendered template,
 * where message content is always plain text: a message that contains
 * "</s>" or "<|im_start|>" never becomes a control token). *ids is
 * malloc'd (caller frees); returns the count, or -1 with err. */
int lm_engine_encode(struct lm_engine *e, const struct lm_job_req *req, int32_t **ids,
                     char *err, size_t errlen);

/* For /tokenize, /detokenize and /apply-template. The tokenizer
 * (localmodel/tokenizer.h) is read-only: any thread may use it. */
struct lm_tokenizer;
const struct lm_tokenizer *lm_engine_tokenizer(const struct lm_engine *e);
/* The chat prompt text lm_submit would tokenize for messages, with tools (a
 * JSON array's text, NULL = none) shown to the template and the generation
 * prompt on or off; *add_bos says whether BOS goes before it, and spans mark
 * message text (plain, as in lm_tok_encode_spans). Any thread. malloc'd;
 * NULL with err, *refused = 1 when the template raised. */
char *lm_engine_render(const struct lm_engine *e, const struct lm_message *m, int n,
                       const char *tools_json, int add_generation_prompt, size_t **spans,
                       int *n_spans, int *add_bos, int *refused, char *err, size_t errlen);

/* How this model calls tools (toolfmt.h): the chat template's format, or
 * the generic form llmpin teaches it. Any thread. */
struct lm_tool_style;
const struct lm_tool_style *lm_engine_tool_style(const struct lm_engine *e);

/* Ask the job to stop (client went away). Thread-safe. After cancel, emit is
 * called at most once more (DONE or ERROR) and then never again. */
void lm_cancel(struct lm_job *j);

/* Release the caller's reference, once DONE or ERROR has been received (or
 * after lm_cancel). */
void lm_job_release(struct lm_job *j);

#endif
