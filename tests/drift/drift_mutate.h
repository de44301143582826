/*
 * drift_mutate.h - random edits of JSON texts, for the tests that check a
 * fast scanner against cJSON on generated input (drift_answer_test,
 * drift_reqscan_test).
 */
#ifndef LLMPIN_DRIFT_MUTATE_H
#define LLMPIN_DRIFT_MUTATE_H

#include <string.h>

/* xorshift64: a reproducible random sequence for the generated tests */
static inline unsigned t_rnd(unsigned long long *state, unsigned n)
{
    unsigned long long x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (unsigned)(x % n);
}

/* One random edit of the text buf[0..*n), buf holding cap bytes: replace,
 * insert or delete one byte (drawn from pieces), or cut the text short. */
static inline void t_mutate(char *buf, size_t *n, size_t cap, const char *pieces,
                            unsigned long long *state)
{
    size_t len = *n;
    unsigned op = t_rnd(state, 4);
    size_t at = len ? t_rnd(state, (unsigned)len) : 0;
    char c = pieces[t_rnd(state, (unsigned)strlen(pieces))];
    if (op == 0 && len) {
        buf[at] = c;                              /* replace */
    } else if (op == 1 && len + 1 < cap) {        /* insert */
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = c;
        len++;
    } else if (op == 2 && len) {                  /* delete */
        memmove(buf + at, buf + at + 1, len - at - 1);
        len--;
    } else {                                      /* cut */
        len = at;
    }
    *n = len;
}

#endif
