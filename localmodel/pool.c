/*
 * pool.c - see pool.h.
 *
 * Protocol for one op (all atomics sequentially consistent):
 *   caller: write fn/arg/n_chunks, next = 0, done = 0, open = 1, gen++;
 *           claim chunks itself; wait until done == n_chunks; open = 0;
 *           wait until active == 0.
 *   worker: see gen change; active++; if open and gen unchanged, claim
 *           chunks (next++) until none are left; active--.
 * A worker only touches an op's fields between active++ and active-- after
 * seeing it open, and the caller does not return (and so cannot rewrite the
 * fields) while active > 0, so a late worker never runs a stale op.
 */
#include "localmodel/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include <sched.h>

/* Spin budgets, in _mm_pause iterations (about 30 ns each on current x86).
 * A worker spins for about 60 us after an op: the gaps between the ops of a
 * forward pass (norms, rope) are a few microseconds, so workers stay hot
 * through a token and sleep between tokens. The caller spins about 15 us for
 * the last chunks, then sleeps until the worker that finishes them wakes it:
 * when another process holds a core, a spinning caller would take the CPU
 * the worker it waits for needs. */
#ifndef LM_POOL_WORKER_SPIN
#define LM_POOL_WORKER_SPIN 2000
#endif
#ifndef LM_POOL_CALLER_SPIN
#define LM_POOL_CALLER_SPIN 500
#endif

struct lm_pool_worker {
    struct lm_pool *pool;
    int ith;
    pthread_t th;
};

struct lm_pool {
    int n;
    int started;                     /* workers actually created */
    struct lm_pool_worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv_start;
    pthread_cond_t cv_done;          /* the caller sleeps here for the last chunks */
    atomic_int caller_sleeping;
    atomic_uint gen;                 /* bumped once per op */
    atomic_int open;                 /* op accepting workers */
    atomic_int active;               /* workers inside the op */
    atomic_int next, done;           /* chunks claimed / finished */
    atomic_int stop;
    int n_chunks;
    void (*fn)(void *, int, int);
    void *arg;
};

static void work(struct lm_pool *p, int ith)
{
    int n = p->n_chunks;
    for (;;) {
        int c = atomic_fetch_add(&p->next, 1);
        if (c >= n)
            break;
        p->fn(p->arg, c, ith);
        /* the last chunk wakes a sleeping caller (seq_cst: either we see
         * caller_sleeping, or the caller sees done == n before sleeping) */
        if (atomic_fetch_add(&p->done, 1) + 1 == n && ith != 0 &&
            atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *worker_main(void *vp)
{
    struct lm_pool_worker *me = vp;
    struct lm_pool *p = me->pool;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop) && spins < LM_POOL_WORKER_SPIN) {
            _mm_pause();
            spins++;
        }
        if (atomic_load(&p->gen) == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            break;
        seen = atomic_load(&p->gen);
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->open) && atomic_load(&p->gen) == seen)
            work(p, me->ith);
        atomic_fetch_sub(&p->active, 1);
    }
    return NULL;
}

struct lm_pool *lm_pool_new(int n_threads, char *err, size_t errlen)
{
    if (n_threads < 1 || n_threads > 1024) {
        snprintf(err, errlen, "worker pool: thread count %d out of range 1..1024", n_threads);
        return NULL;
    }
    struct lm_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "worker pool: out of memory");
        return NULL;
    }
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->open, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->stop, 0);
    p->w = calloc((size_t)n_threads, sizeof *p->w);
    if (!p->w) {
        snprintf(err, errlen, "worker pool: out of memory");
        lm_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        p->w[i].pool = p;
        p->w[i].ith = i;
        int rc = pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]);
        if (rc != 0) {
            snprintf(err, errlen, "worker pool: cannot start thread %d of %d: %s",
                     i + 1, n_threads, strerror(rc));
            lm_pool_free(p);
            return NULL;
        }
        p->started = i;
    }
    return p;
}

void lm_pool_free(struct lm_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->started; i++)
        pthread_join(p->w[i].th, NULL);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    pthread_mutex_destroy(&p->mu);
    free(p->w);
    free(p);
}

int lm_pool_size(const struct lm_pool *p)
{
    return p->n;
}

void lm_pool_run(struct lm_pool *p, int n_chunks, void (*fn)(void *, int, int), void *arg)
{
    if (n_chunks <= 0)
        return;
    if (p->n == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; c++)
            fn(arg, c, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_chunks = n_chunks;
    atomic_store(&p->next, 0);
    atomic_store(&p->done, 0);
    atomic_store(&p->open, 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);

    work(p, 0);

    /* a worker may hold the last chunk; if it takes long (or was
     * descheduled), sleep until it is done */
    for (int spins = 0; atomic_load(&p->done) < n_chunks && spins < LM_POOL_CALLER_SPIN; spins++)
        _mm_pause();
    if (atomic_load(&p->done) < n_chunks) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->done) < n_chunks)
            pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mu);
    }
    atomic_store(&p->open, 0);
    /* a worker that woke for this op but claimed nothing leaves at once */
    for (int spins = 0; atomic_load(&p->active) > 0; spins++) {
        if (spins < LM_POOL_CALLER_SPIN)
            _mm_pause();
        else
            sched_yield();
    }
}
