/* etest.h - tiny assertion helpers shared by the engine tests. */
#ifndef ETEST_H
#define ETEST_H
#include <stdio.h>
#include <stdlib.h>

static int etest_failures;

#define CHECK(cond, ...) do {                                              \
    if (!(cond)) {                                                         \
        fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__);                                      \
        fprintf(stderr, "\n");                                             \
        etest_failures++;                                                  \
    }                                                                      \
} while (0)

#define REQUIRE(cond, ...) do {                                            \
    if (!(cond)) {                                                         \
        fprintf(stderr, "%s:%d: REQUIRE(%s) failed: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__);                                      \
        fprintf(stderr, "\n");                                             \
        exit(1);                                                           \
    }                                                                      \
} while (0)

/* Index of the largest of x[0..n). */
static inline int etest_argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* The indices of the k (<= 16) largest of x[0..n), largest first. */
static inline void etest_topk(const float *x, int n, int k, int *top)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int used = 0;
            for (int u = 0; u < j; u++) used |= top[u] == i;
            if (!used && (best < 0 || x[i] > x[best])) best = i;
        }
        top[j] = best;
    }
}

static int etest_done(const char *name)
{
    if (etest_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, etest_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}
#endif
