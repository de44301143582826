/*
 * pool.h - a small pthread worker pool for data-parallel tensor ops.
 *
 * The forward pass is a sequence of short parallel ops (a matrix product split
 * by rows, attention split by heads), each followed by a barrier. On a 2-core
 * machine an op can take tens of microseconds, so the hand-off must cost far
 * less: workers spin briefly on an atomic generation counter before sleeping
 * on a condition variable, and the caller works on every op itself.
 *
 * Work is handed out in chunks claimed from an atomic counter rather than
 * split evenly in advance: when another process holds a core (the proxy, a
 * compiler), the threads that do run take the chunks, instead of every op
 * waiting for a descheduled thread's fixed share.
 */
#ifndef LLMPIN_POOL_H
#define LLMPIN_POOL_H

#include <stddef.h>

struct lm_pool;

/* n_threads >= 1 counts the calling thread (n_threads - 1 are started).
 * Returns NULL with err if a thread cannot be created. Free with
 * lm_pool_free (joins the workers). */
struct lm_pool *lm_pool_new(int n_threads, char *err, size_t errlen);
void lm_pool_free(struct lm_pool *p);
int lm_pool_size(const struct lm_pool *p);

/* Run fn(arg, chunk, ith) once for every chunk in [0, n_chunks), spread
 * over the threads (ith in [0, lm_pool_size) identifies the thread running
 * it, for per-thread scratch), and return when all chunks are done. One
 * caller at a time. */
void lm_pool_run(struct lm_pool *p, int n_chunks, void (*fn)(void *arg, int chunk, int ith), void *arg);

#endif
