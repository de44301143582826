/*
 * jsonv.h - a strict JSON validator (RFC 8259), allocation-light, one pass.
 *
 * llmpin reads a request to route it and forwards the bytes it read. Those
 * two readings must agree with the upstream's, whatever parser the upstream
 * uses. JSON leaves room for disagreement: with duplicate keys one parser
 * keeps the first value (cJSON) and another the last (Python, Go, JS), so
 * {"model":"allowed","model":"forbidden"} is routed as one model and served
 * as the other; "\u0000" ends a string early for C parsers only; bytes
 * after the document are ignored by some and refused by others. llmpin's
 * rule: such a body is refused, not re-serialised. A re-serialised body
 * would change numbers (1e400, 0.1 printed back), key order and escapes
 * that clients and upstream caches see, and cost an allocation per field
 * on the hot path; a refusal costs one scan and tells the client exactly
 * which byte to fix. The same validator checks upstream answers (a 2xx body
 * and each SSE event) before a byte of them reaches a client.
 */
#ifndef LLMPIN_JSONV_H
#define LLMPIN_JSONV_H

#include <stddef.h>

enum {
    JSONV_NO_DUP_KEYS = 1,       /* refuse an object with a key twice (compared decoded) */
    JSONV_NO_NUL = 2,            /* refuse "\u0000" in any string */
    JSONV_OBJECT = 4,            /* the document must be an object */
};

#define JSONV_MAX_DEPTH 1000     /* as cJSON's CJSON_NESTING_LIMIT */

struct jsonv_error {
    size_t offset;               /* byte where the problem is */
    char message[160];           /* for a person: what is wrong there */
};

/* Check that s[0..len) is exactly one JSON value, optionally surrounded by
 * whitespace, with valid UTF-8 in its strings. Returns 0, or -1 with *e. */
int jsonv_check(const char *s, size_t len, int flags, struct jsonv_error *e);

#endif
