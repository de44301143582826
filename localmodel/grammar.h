/*
 * grammar.h - constrained decoding: JSON schemas compiled to a grammar over
 * bytes, and the masks of the tokens that can continue a valid document.
 *
 * lm_grammar is the compiled, immutable form of one response_format: a graph
 * of byte sets, sequences, alternatives and counted repetitions (cycles are
 * $ref recursion). Every node it keeps can finish: alternatives that cannot
 * are dropped at compile time, so a document that follows the grammar can
 * always be completed.
 *
 * lm_gmatch is one generation's matcher. Its state is a set of parse stacks;
 * stacks are interned frames, sets of stacks are interned states, and a
 * state's transition on each byte is computed once (a lazily built DFA).
 * The mask of a state walks the vocabulary trie (lm_vtrie) from that state,
 * pruning a subtree at the first byte the grammar refuses, and is cached per
 * state: a string value that runs for many tokens costs one walk.
 *
 * Threads: a grammar is compiled on any thread; a matcher belongs to one
 * thread (the engine's scheduler); a vtrie is read-only once built.
 */
#ifndef LLMPIN_GRAMMAR_H
#define LLMPIN_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct lm_tokenizer;
struct lm_grammar;
struct lm_vtrie;
struct lm_gmatch;

/* A JSON schema (OpenAI's structured-output subset and a little more).
 * NULL with err naming the schema path and keyword on what is not supported
 * or cannot be satisfied, e.g. "schema.properties.age: 'minLength' is not
 * supported". Bounded: schemas nested deeper than 64, or needing more than
 * LM_GRAMMAR_MAX_NODES nodes, are refused. */
#define LM_GRAMMAR_MAX_NODES 400000
struct lm_grammar *lm_grammar_from_schema(const struct cJSON *schema, char *err, size_t errlen);
/* Any JSON object (response_format json_object). */
struct lm_grammar *lm_grammar_json_object(void);
/* Tool calls (chat tools): begin, then 1..max_calls calls joined by sep,
 * then end (max_calls 0: any number); a call is prefix, the object {"NAME_KEY": "name", "ARGS_KEY":
 * arguments}, suffix, where arguments follow the tool's function.parameters
 * schema. Whitespace may come between all the parts, and a ' ' in a
 * literal is whitespace that may or may not be there. tools is the request's
 * array ({"type":"function","function":{"name","parameters","strict"}},
 * names checked by the caller); only >= 0 allows that tool alone. A
 * parameters schema that does not compile is refused (err names
 * tools[i].function.parameters and the keyword) when the tool is strict;
 * otherwise its arguments are any JSON object. */
#define LM_TOOLS_MAX 128
struct lm_tool_form {
    const char *begin, *prefix, *suffix, *sep, *end;   /* literals, NULL = none */
    const char *name_key, *args_key;
};
struct lm_grammar *lm_grammar_tool_calls(const struct lm_tool_form *f, const struct cJSON *tools, int only,
                                         int max_calls, char *err, size_t errlen);
void lm_grammar_free(struct lm_grammar *g);
int lm_grammar_n_nodes(const struct lm_grammar *g);

/* The output bytes of every token (lm_tok_piece, not after BOS) in a trie.
 * Tokens that give no bytes, control tokens and end-of-generation tokens
 * are not in it: they are never allowed by a mask. */
struct lm_vtrie *lm_vtrie_new(const struct lm_tokenizer *t);
void lm_vtrie_free(struct lm_vtrie *vt);
int lm_vtrie_n_vocab(const struct lm_vtrie *vt);

struct lm_gmatch *lm_gmatch_new(const struct lm_grammar *g, const struct lm_vtrie *vt);
void lm_gmatch_free(struct lm_gmatch *m);
/* The tokens that may come next: a bitset of n_vocab bits (bit id set =
 * allowed), owned by m, valid until the next call. *n_allowed counts them;
 * *can_end is 1 when the document is complete here (end-of-text may come).
 * NULL on out of memory. */
const uint32_t *lm_gmatch_mask(struct lm_gmatch *m, int *n_allowed, int *can_end);
/* Advance over bytes. 0, or -1 if the grammar refuses them (state unchanged). */
int lm_gmatch_feed(struct lm_gmatch *m, const char *bytes, size_t len);
/* 1 if the grammar accepts bytes from here, 0 if not, -1 out of memory;
 * the state does not change. */
int lm_gmatch_try(struct lm_gmatch *m, const char *bytes, size_t len);
/* 1 when the document is complete and nothing may follow it. */
int lm_gmatch_done(struct lm_gmatch *m);
/* 1 when the document is complete here (more may still follow). */
int lm_gmatch_accepting(struct lm_gmatch *m);
/* Matcher statistics, for the benchmark and tests. */
struct lm_gmatch_stats { int states, frames; long mask_walks, mask_hits; };
void lm_gmatch_stats(const struct lm_gmatch *m, struct lm_gmatch_stats *st);

#endif
