/*
 * ptest.h - the check macro the proxy's unit tests share: a failed check
 * prints where and why and is counted; main() reports the count.
 */
#ifndef LLMPIN_PTEST_H
#define LLMPIN_PTEST_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            failures++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

#endif
