/*
 * sampler.h - turning logits into the next token, and text into chunks.
 *
 * lm_sampler: temperature (0 = greedy argmax), top_k, top_p, frequency and
 * presence penalties (OpenAI semantics: logit -= count*freq + (count>0)*pres,
 * over generated tokens), logit_bias (added to the logits it names, copied
 * from the params), a seeded PRNG so the same seed and request give
 * the same output.
 *
 * lm_textout: assembles token bytes into UTF-8-safe chunks and applies stop
 * strings: bytes that could be the start of a stop string are held back until
 * they are ruled out; a match ends generation and the stop text is not
 * emitted (OpenAI behaviour).
 */
#ifndef LLMPIN_SAMPLER_H
#define LLMPIN_SAMPLER_H

#include <stddef.h>
#include <stdint.h>
#include "localmodel/lm.h"

struct lm_sampler;
/* Copies params (not stop strings; those go to lm_textout). n_vocab > 0. */
struct lm_sampler *lm_sampler_new(const struct lm_params *p, int n_vocab);
void lm_sampler_free(struct lm_sampler *s);
/* Picks the next id from logits[n_vocab] (logits may be modified in place). */
int32_t lm_sampler_sample(struct lm_sampler *s, float *logits);
/* Tell the sampler a token was generated (penalty counts). */
void lm_sampler_accept(struct lm_sampler *s, int32_t id);

struct lm_textout;
struct lm_textout *lm_textout_new(const char *const *stop, int n_stop);
void lm_textout_free(struct lm_textout *t);
/* Append token bytes. Returns 1 if a stop string matched (generation must
 * end), else 0. Text safe to emit is then available from lm_textout_take. */
int lm_textout_push(struct lm_textout *t, const char *bytes, size_t len);
/* At end of generation (EOS/length): release held bytes (incomplete UTF-8 at
 * the very end becomes U+FFFD). */
void lm_textout_finish(struct lm_textout *t);
/* Take the emittable text: returns pointer + length valid until the next call;
 * len 0 if nothing. */
const char *lm_textout_take(struct lm_textout *t, size_t *len);

#endif
