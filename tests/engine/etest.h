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
