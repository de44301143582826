/*
 * prompt.h - how a local model's chat prompt is made: the model's own Jinja
 * template (tokenizer.chat_template), a template file from the config, or a
 * built-in family renderer (chat.h) when the config names one or when the
 * file's template cannot be parsed.
 */
#ifndef LLMPIN_PROMPT_H
#define LLMPIN_PROMPT_H

#include <stddef.h>
#include "localmodel/lm.h"

struct gguf_file;
struct lm_tokenizer;
struct lm_prompt;

/* family: a built-in family name (chat.h) or NULL/"" (use a template);
 * template_file: a Jinja file to use instead of the model's (NULL = none);
 * template_name: a named template of the file (tokenizer.chat_template.NAME,
 * NULL = the default one). On a template that does not parse: from a config
 * file it is an error; from the model file, warn says so and which family
 * renders instead. NULL with err on error. */
struct lm_prompt *lm_prompt_new(const struct gguf_file *gf, const struct lm_tokenizer *tok,
                                const char *family, const char *template_file,
                                const char *template_name, char *warn, size_t warnlen,
                                char *err, size_t errlen);
void lm_prompt_free(struct lm_prompt *p);

/* Render messages with the generation prompt. Returns malloc'd text and in
 * *spans (malloc'd, may be NULL) *n_spans [start, end) ranges of message
 * text (tokenize them as plain text); *add_bos says whether the tokenizer
 * must add BOS (not when the template wrote it). NULL with err on error; a
 * template that refuses the conversation (raise_exception) gives its own
 * words in err and *refused = 1. */
char *lm_prompt_render(const struct lm_prompt *p, const struct lm_message *m, int n, size_t **spans,
                       int *n_spans, int *add_bos, int *refused, char *err, size_t errlen);

/* The same with tools (a JSON array's text given to the template as `tools`,
 * NULL = none) and add_generation_prompt (0 = end after the last message;
 * a built-in family refuses it). A built-in family, or a template that does
 * not use `tools`, gets them in the system message from llmpin, with how to
 * call them in the generic form (toolfmt.h); a template that shows tools
 * but names no format gets that instruction alone. */
char *lm_prompt_render_ex(const struct lm_prompt *p, const struct lm_message *m, int n,
                          const char *tools_json, int add_generation_prompt, size_t **spans,
                          int *n_spans, int *add_bos, int *refused, char *err, size_t errlen);

/* How the model calls tools with this prompt: the template's own format
 * when it shows tools and names one, else the generic form. */
struct lm_tool_style;
const struct lm_tool_style *lm_prompt_tool_style(const struct lm_prompt *p);

/* Stop strings of the built-in family in use (NULL-terminated; empty for
 * Jinja templates, whose turns end with end-of-generation tokens). */
const char *const *lm_prompt_stops(const struct lm_prompt *p);
/* "jinja" (the model's template), "jinja:NAME", "file:PATH", or the family name. */
const char *lm_prompt_name(const struct lm_prompt *p);
/* The family a built-in renderer would use (for stop ids and info). */
int lm_prompt_family(const struct lm_prompt *p);

#endif
