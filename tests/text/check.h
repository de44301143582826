/*
 * check.h - assertion helpers for the text tests (tokenizer, chat, sampler).
 * A failed check prints file:line and what differed, and the test returns 1.
 */
#ifndef LLMPIN_TESTS_TEXT_CHECK_H
#define LLMPIN_TESTS_TEXT_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    failures++; } } while (0)

#define CHECK_MSG(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

#define CHECK_INT(a, b) do { long long _a = (a), _b = (b); if (_a != _b) { \
    fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
            #a, #b, _a, _b); failures++; } } while (0)

/* s[0..len) equals the NUL-terminated lit */
#define CHECK_MEM(s, len, lit) do { size_t _l = (len); const char *_s = (s), *_e = (lit); \
    if (_l != strlen(_e) || memcmp(_s, _e, _l) != 0) { \
    fprintf(stderr, "%s:%d: got \"%.*s\" (%zu bytes), expected \"%s\"\n", __FILE__, __LINE__, \
            (int)_l, _s, _l, _e); failures++; } } while (0)

#define CHECK_CONTAINS(hay, needle) do { const char *_h = (hay); if (!_h || !strstr(_h, (needle))) { \
    fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
            _h ? _h : "(null)", (needle)); failures++; } } while (0)

#define DONE() do { if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); \
    return 1; } printf("all checks passed\n"); return 0; } while (0)

#endif
