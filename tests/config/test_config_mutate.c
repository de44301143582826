/*
 * test_config_mutate.c - a deterministic fuzz smoke test for the loader.
 *
 * Takes the shipped config files, applies random byte edits (fixed seed, so
 * every run tests the same inputs) and loads the result. Each load must either
 * succeed with a config that passes cfg_validate, or fail with a message that
 * starts with the file name and never contains a secret's value. Under ASan
 * this is what catches out-of-bounds reads and leaks on error paths.
 */
#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LLMPIN_CONFIG_DIR
#error "LLMPIN_CONFIG_DIR must be defined"
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    *len = n;
    return buf;
}

static const char interesting[] = "{}[],:\"\\/*${}-0123456789 \n\tetrufalsn.eE+";

/* One edit in place; buf has room for cap bytes. */
static size_t mutate(char *buf, size_t len, size_t cap) {
    if (len == 0) return 0;
    size_t pos = rnd() % len;
    switch (rnd() % 6) {
    case 0: /* replace a byte with a JSON-significant one */
        buf[pos] = interesting[rnd() % (sizeof(interesting) - 1)];
        return len;
    case 1: /* any byte */
        buf[pos] = (char)(rnd() & 0xff);
        return len;
    case 2: { /* delete a run */
        size_t n = 1 + rnd() % 16;
        if (pos + n > len) n = len - pos;
        memmove(buf + pos, buf + pos + n, len - pos - n);
        return len - n;
    }
    case 3: { /* duplicate a run (makes duplicate keys and extra commas) */
        size_t n = 1 + rnd() % 64;
        if (pos + n > len) n = len - pos;
        if (len + n > cap) return len;
        memmove(buf + pos + n, buf + pos, len - pos);
        return len + n;
    }
    case 4: /* truncate */
        return pos;
    default: { /* insert a byte */
        if (len + 1 > cap) return len;
        memmove(buf + pos + 1, buf + pos, len - pos);
        buf[pos] = interesting[rnd() % (sizeof(interesting) - 1)];
        return len + 1;
    }
    }
}

int main(int argc, char **argv) {
    /* optional: a different seed and iteration count, to explore by hand */
    if (argc > 1) rng_state = strtoull(argv[1], NULL, 0) | 1;
    int iters = argc > 2 ? atoi(argv[2]) : 4000;
    static const char *files[] = {
        LLMPIN_CONFIG_DIR "/example.json",
        LLMPIN_CONFIG_DIR "/default.json",
        LLMPIN_CONFIG_DIR "/examples/multi-provider.json",
        LLMPIN_CONFIG_DIR "/examples/drift-watch.json",
    };
    setenv("LLMPIN_APP_KEY", "SECRETVALUE-app", 1);
    setenv("LLMPIN_OPS_KEY", "SECRETVALUE-ops", 1);
    setenv("OPENAI_API_KEY", "SECRETVALUE-openai", 1);
    setenv("TEAM_KEY", "SECRETVALUE-team", 1);
    int failures = 0, loaded = 0, rejected = 0;
    const size_t cap = 1 << 20;
    char *work = malloc(cap);
    char err[1024];
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len;
        char *orig = read_all(files[f], &len);
        if (!orig) {
            fprintf(stderr, "cannot read %s\n", files[f]);
            return 1;
        }
        for (int iter = 0; iter < iters; iter++) {
            memcpy(work, orig, len);
            size_t n = len;
            int edits = 1 + (int)(rnd() % 4);
            for (int e = 0; e < edits; e++) n = mutate(work, n, cap);
            struct cfg *c = cfg_load_string(work, n, "m.json", "/cfg", err, sizeof(err));
            if (c) {
                loaded++;
                if (cfg_validate(c, err, sizeof(err)) != 0) {
                    fprintf(stderr, "%s iter %d: loaded but cfg_validate fails: %s\n", files[f], iter, err);
                    failures++;
                }
                cfg_free(c);
            } else {
                rejected++;
                if (strncmp(err, "m.json", 6) != 0) {
                    fprintf(stderr, "%s iter %d: message does not start with the file name: %s\n", files[f], iter, err);
                    failures++;
                }
                if (strstr(err, "SECRETVALUE")) {
                    fprintf(stderr, "%s iter %d: message leaks a secret: %s\n", files[f], iter, err);
                    failures++;
                }
            }
        }
        free(orig);
    }
    free(work);
    printf("config mutate: %d loaded, %d rejected, %d failure(s)\n", loaded, rejected, failures);
    return failures ? 1 : 0;
}
