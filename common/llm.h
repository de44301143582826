/*
 * llm.h - the canonical request, shared by proxy, policy and adapters.
 *
 * The proxy parses and validates a client's JSON body once into struct
 * llm_request. OpenAI-compatible adapters forward the original body (with
 * only "model" rewritten), so every field the client sent reaches the
 * upstream unchanged; the local adapter and the drift recorder use the
 * typed fields.
 */
#ifndef LLMPIN_LLM_H
#define LLMPIN_LLM_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

enum llm_endpoint { LLM_CHAT = 0, LLM_COMPLETIONS, LLM_EMBEDDINGS };

struct llm_msg {
    const char *role;          /* points into body */
    char *content;             /* owned: text (array content parts joined) */
    const cJSON *obj;          /* the message object in body: tool_calls, tool_call_id, name */
};

struct llm_request {
    enum llm_endpoint ep;
    cJSON *body;               /* owned: the parsed client body */
    const char *model;         /* points into body */
    int stream;
    int include_usage;
    int has_temperature;
    double temperature;
    int has_top_p;
    double top_p;
    int top_k;                 /* extension; 0 = off */
    int max_tokens;            /* 0 = not set */
    int has_seed;
    int64_t seed;
    double frequency_penalty, presence_penalty;
    int n;                     /* choices requested, default 1 */
    char **stop;               /* owned array of pointers into body */
    int n_stop;
    struct llm_msg *messages;  /* chat; owned */
    int n_messages;
    const char *prompt;        /* completions: points into body */
    const char **inputs;       /* embeddings: pointers into body; owned array */
    int n_inputs;
    int has_tools;
};

/* Line and column (from 1) of byte off of s[0..len), for error messages. */
void llm_line_col(const char *s, size_t len, size_t off, int *line, int *col);

/* Parse and validate body[len] for endpoint ep. On success fills r (free
 * with llm_request_free) and returns 0. On failure returns -1 and fills
 * param (the JSON path of the bad field, or "" if none), code and msg with
 * an OpenAI-style error. */
int llm_request_parse(enum llm_endpoint ep, const char *body, size_t len, struct llm_request *r,
                      char *param, size_t param_len, char *code, size_t code_len,
                      char *msg, size_t msg_len);
void llm_request_free(struct llm_request *r);

/* A deterministic request (temperature 0 or a seed) - for drift. */
int llm_request_deterministic(const struct llm_request *r);

#endif
