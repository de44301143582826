/*
 * drift_test.h - tiny assertion helpers shared by the drift tests.
 */
#ifndef LLMPIN_DRIFT_TEST_H
#define LLMPIN_DRIFT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drift/drift.h"

static int t_failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            t_failures++;                                                        \
        }                                                                        \
    } while (0)

#define CHECK_STR(a, b)                                                          \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                 \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,  \
                    __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");        \
            t_failures++;                                                        \
        }                                                                        \
    } while (0)

#define CHECK_INT(a, b)                                                          \
    do {                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                      \
        if (a_ != b_) {                                                          \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__,      \
                    __LINE__, #a, a_, b_);                                       \
            t_failures++;                                                        \
        }                                                                        \
    } while (0)

/* A fresh temporary directory; path written to buf. */
static inline void t_tmpdir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/llmpin-drift-test-XXXXXX");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
}

static inline void t_rmdir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline struct cfg_drift t_cfg(const char *db_path)
{
    struct cfg_drift c;
    memset(&c, 0, sizeof c);
    c.enabled = 1;
    c.db_path = (char *)db_path;
    c.store_outputs = CFG_STORE_HASH;
    c.commit_interval_ms = 100;
    c.retention_days = 90;
    c.retention_mb = 1024;
    c.false_alarm_rate = 1e-4;
    c.min_drop = 0.15;
    c.baseline_probes = 100;
    return c;
}

static inline int t_done(const char *name)
{
    if (t_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, t_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
