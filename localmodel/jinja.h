/*
 * jinja.h - a sandboxed interpreter for the Jinja subset that chat templates
 * use (tokenizer.chat_template in GGUF files, chat_template in Hugging Face
 * tokenizer_config.json).
 *
 * Semantics follow @huggingface/jinja (the JavaScript implementation that
 * transformers.js uses, and the reference the tests compare with): Jinja2's
 * syntax and scoping, lstrip_blocks and trim_blocks on, one trailing newline
 * of the template dropped, values printed as that implementation prints
 * them (true/false, lists as JSON).
 *
 * Sandbox: the template sees only the data given; no attribute of a value
 * reaches anything but that value's own fields and the listed methods; loop
 * iterations, output size, call depth and parse nesting are bounded; every
 * error is a message naming the template line, never a crash.
 *
 * Taint: strings that come from the untrusted data (message contents, tool
 * descriptions...) keep a record of their bytes through concatenation,
 * slicing and trimming, so the renderer can say which output bytes are user
 * data: those are later tokenized as plain text (no special tokens), the
 * template's own text with special tokens.
 */
#ifndef LLMPIN_JINJA_H
#define LLMPIN_JINJA_H

#include <stddef.h>

struct cJSON;
struct jinja_tmpl;

struct jinja_limits {
    size_t max_output;         /* bytes; 0 = 4 MiB */
    long max_steps;            /* loop iterations + calls; 0 = 1,000,000 */
};

/* Parse a template. NULL with err ("line 3: unexpected 'endfor'") on error. */
struct jinja_tmpl *jinja_parse(const char *src, size_t len, char *err, size_t errlen);
void jinja_free(struct jinja_tmpl *t);

/* Render with the members of `data` (a JSON object: messages, tools,
 * add_generation_prompt...) as variables whose strings are untrusted, and the
 * members of `trusted` (bos_token, eos_token...; may be NULL) as variables
 * whose strings are template text. Returns the malloc'd NUL-terminated output
 * (*out_len bytes), and in *spans (malloc'd, caller frees, may be NULL) *n_spans
 * sorted [start, end) byte ranges of untrusted text. NULL with err on error; a
 * template's raise_exception("msg") gives err = "msg" and *raised = 1. */
char *jinja_render(const struct jinja_tmpl *t, const struct cJSON *data,
                   const struct cJSON *trusted, const struct jinja_limits *lim,
                   size_t *out_len, size_t **spans, int *n_spans, int *raised,
                   char *err, size_t errlen);

#endif
