/*
 * grammar_int.h - the compiled grammar as both halves of localmodel/grammar
 * see it: grammar_schema.c builds it from a JSON schema (and regexes),
 * grammar.c finishes it (drops what cannot complete, refuses left recursion)
 * and matches bytes against it.
 *
 * A grammar is a graph of nodes over bytes:
 *   G_BYTES  one byte out of a 256-bit set (sets[set]);
 *   G_SEQ    kids[a .. a+n) one after another (n = 0: the empty string);
 *   G_ALT    one of kids[a .. a+n) (n = 0: nothing, cannot complete);
 *   G_REP    kid a, at least n and at most max times (max -1: unbounded).
 * Kids may point back up the graph: that is $ref recursion.
 */
#ifndef LLMPIN_GRAMMAR_INT_H
#define LLMPIN_GRAMMAR_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

enum { G_BYTES, G_SEQ, G_ALT, G_REP };

struct gnode {
    uint8_t kind;
    int32_t a, n;     /* SEQ/ALT: kids[a..a+n); REP: kid a, min n */
    int32_t max;      /* REP */
    int32_t set;      /* BYTES */
};

struct lm_grammar {
    struct gnode *nodes;
    int n_nodes, cap_nodes;
    int32_t *kids;
    int n_kids, cap_kids;
    uint32_t (*sets)[8];
    int n_sets, cap_sets;
    int root;
};

/* Grow *p (of *cap elements of elem bytes) to hold need, doubling. 0, or
 * -1 when out of memory (*p unchanged). */
static inline int g_grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static inline int g_set_has(const struct lm_grammar *g, int set, unsigned b)
{
    return (g->sets[set][b >> 5] >> (b & 31)) & 1;
}

/* Builder primitives (grammar_schema.c). They return a node id, or -1 once
 * the node budget is spent (gb_failed then says so). */
struct gbuild {
    struct lm_grammar *g;
    int failed;
    char *err;
    size_t errlen;
    int byte_node[256];
    int eps;
};
int gb_node(struct gbuild *b, int kind, int a, int n, int max, int set);

/* Finish a grammar whose root is set: drop alternatives that can never
 * complete, refuse a root that cannot, and recursion that consumes nothing
 * before it recurs. 0 or -1 with err. */
int g_finish(struct lm_grammar *g, char *err, size_t errlen);

#endif
