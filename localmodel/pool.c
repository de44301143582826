/*
 * pool.c - see pool.h. One mutex and two condition variables; the fast path
 * (back-to-back ops while a forward pass runs) is lock-free spinning on
 * atomics, and the slow path (the engine idle between requests) sleeps.
 */
#include "localmodel/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

#define SPIN_ITERS 20000

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
    pthread_cond_t cv_start, cv_done;
    atomic_uint gen;                 /* bumped once per op */
    atomic_int pending;              /* workers still running the op */
    atomic_int stop;
    void (*fn)(void *, int, int);
    void *arg;
};

static void *worker_main(void *vp)
{
    struct lm_pool_worker *me = vp;
    struct lm_pool *p = me->pool;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
               !atomic_load(&p->stop) && spins < SPIN_ITERS) {
            _mm_pause();
            spins++;
        }
        if (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        p->fn(p->arg, me->ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
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
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
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

void lm_pool_run(struct lm_pool *p, void (*fn)(void *, int, int), void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->n);

    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_ITERS) {
        _mm_pause();
        spins++;
    }
    if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
