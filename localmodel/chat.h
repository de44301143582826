/*
 * chat.h - chat template families, detected from tokenizer.chat_template.
 *
 * llmpin does not run Jinja: it recognises the common families by markers in
 * the template text and renders them with built-in code. A config may force a
 * family. A model with no template gets LM_CHAT_PLAIN, documented in
 * docs/local-models.md.
 */
#ifndef LLMPIN_CHAT_H
#define LLMPIN_CHAT_H

#include <stddef.h>
#include "localmodel/lm.h"

enum lm_chat_family {
    LM_CHAT_PLAIN = 0, LM_CHAT_LLAMA2, LM_CHAT_LLAMA3, LM_CHAT_CHATML,
    LM_CHAT_ZEPHYR, LM_CHAT_MISTRAL, LM_CHAT_GEMMA, LM_CHAT_PHI3,
};

/* Family for a Jinja template text (NULL or unknown -> LM_CHAT_PLAIN). */
enum lm_chat_family lm_chat_detect(const char *tmpl, size_t len);
/* Name <-> family ("llama2", ...). lm_chat_from_name returns -1 if unknown. */
const char *lm_chat_name(enum lm_chat_family f);
int lm_chat_from_name(const char *name);

/* Render messages with the generation prompt appended. Returns a malloc'd
 * NUL-terminated string (caller frees) or NULL with err (unknown role...).
 * bos_text/eos_text are the model's BOS/EOS token strings (e.g. "<s>", "</s>")
 * where a family writes them in text; the caller encodes the result with
 * parse_special=1 and add_bos as the tokenizer says (the rendering never
 * starts with BOS text itself). */
char *lm_chat_render(enum lm_chat_family f, const struct lm_message *m, int n,
                     const char *bos_text, const char *eos_text, char *err, size_t errlen);

/* lm_chat_render, and where the messages' content lies in the result:
 * *spans (malloc'd, caller frees; NULL when there is none) holds *n_spans
 * pairs [start, end) of byte offsets, sorted. Encode the result with
 * lm_tok_encode_spans(..., *spans, *n_spans, ...) so that special-token text
 * inside a message (a user writing "<|im_end|>") stays plain text. */
char *lm_chat_render_spans(enum lm_chat_family f, const struct lm_message *m, int n,
                           const char *bos_text, const char *eos_text, size_t **spans,
                           int *n_spans, char *err, size_t errlen);

/* Extra stop strings the family ends a turn with (e.g. "<|eot_id|>",
 * "<|im_end|>"), NULL-terminated static list. */
const char *const *lm_chat_stops(enum lm_chat_family f);

#endif
