/*
 * config_int.h - helpers shared by config.c (defaults, validation, lookups)
 * and config_load.c (the JSON reader). Not part of the public contract:
 * only files in config/ include this.
 */
#ifndef LLMPIN_CONFIG_INT_H
#define LLMPIN_CONFIG_INT_H

#include <stdarg.h>
#include "config/config.h"

/* strdup that accepts NULL (returns NULL). */
char *cfg__strdup(const char *s);

/* printf into err (always NUL-terminated when errlen > 0). Returns -1 so
 * callers can write `return cfg__errf(...)`. */
int cfg__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Free the members of one route (not the route itself). */
void cfg__free_route(struct cfg_route *r);

/* Check one route against the rest of the config and fill target indexes.
 * `idx` is the route's position in the file (used in messages as routes[idx]).
 * `file` prefixes messages. 0 or -1 with err filled. */
int cfg__check_route(struct cfg *c, struct cfg_route *r, size_t idx,
                     const char *file, char *err, size_t errlen);

/* 1 if t is one of the chat template names the engine knows. */
int cfg__chat_template_known(const char *t);

/* Comma-separated list of known names, for "(known: a, b)" hints. */
void cfg__list_upstreams(const struct cfg *c, char *out, size_t outlen);
void cfg__list_local_models(const struct cfg *c, char *out, size_t outlen);

#endif
