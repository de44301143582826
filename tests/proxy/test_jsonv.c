/*
 * test_jsonv.c - the strict JSON validator (common/jsonv.c) that makes
 * routing and forwarding read a body the same way: what it accepts, what
 * it refuses, the byte it points at and the message it gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonv.h"

#include "ptest.h"

#define STRICT (JSONV_NO_DUP_KEYS | JSONV_NO_NUL)

static void ok_n(const char *s, size_t n, int flags) {
    struct jsonv_error e;
    int rc = jsonv_check(s, n, flags, &e);
    CHECK(rc == 0, "'%.*s' refused: %s at byte %zu", (int)(n > 80 ? 80 : n), s, e.message, e.offset);
}
static void ok(const char *s, int flags) { ok_n(s, strlen(s), flags); }

/* Refused at byte `at` with a message that contains `want`. */
static void bad_n(const char *s, size_t n, int flags, size_t at, const char *want) {
    struct jsonv_error e;
    int rc = jsonv_check(s, n, flags, &e);
    CHECK(rc == -1, "'%.*s' accepted", (int)(n > 80 ? 80 : n), s);
    if (rc != -1) return;
    CHECK(e.offset == at, "'%.*s': offset %zu, want %zu (%s)", (int)(n > 80 ? 80 : n), s, e.offset, at, e.message);
    CHECK(strstr(e.message, want) != NULL, "'%.*s': message '%s', want '%s'", (int)(n > 80 ? 80 : n), s,
          e.message, want);
}
static void bad(const char *s, int flags, size_t at, const char *want) { bad_n(s, strlen(s), flags, at, want); }

static void test_accepts(void) {
    ok("{}", STRICT | JSONV_OBJECT);
    ok(" \t\r\n{ } \n", STRICT | JSONV_OBJECT);
    ok("[]", STRICT);
    ok("0", STRICT);
    ok("-0.5e+10", STRICT);
    ok("1E-2", STRICT);
    ok("1e400", STRICT); /* out of double range is still JSON; the reader decides */
    ok("\"\"", STRICT);
    ok("true", 0);
    ok("[null,false,true]", 0);
    ok("{\"a\":{\"a\":{\"a\":1}}}", STRICT);            /* same key in nested objects */
    ok("[{\"a\":1},{\"a\":2}]", STRICT);                 /* same key in sibling objects */
    ok("{\"a\":1,\"A\":2}", STRICT);                     /* keys are case-sensitive */
    ok("{\"a\":1,\"a\":2}", 0);                          /* duplicates allowed without the flag */
    ok("\"\\u0000\"", 0);                                /* NUL allowed without the flag */
    ok("\"\\ud83d\\ude00 \xf0\x9f\x98\x80 \xc3\xa9 \xe2\x82\xac\"", STRICT);
    ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", STRICT);
    ok("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}",
       STRICT | JSONV_OBJECT);
}

static void test_refuses(void) {
    bad("", 0, 0, "empty");
    bad("   ", 0, 3, "empty");
    bad("[1,2]", JSONV_OBJECT, 0, "expected a JSON object");
    bad("{\"model\":\"a\",\"model\":\"b\"}", STRICT, 13, "duplicate key \"model\"");
    /* compared decoded: an escaped spelling of the same key is the same key */
    bad("{\"model\":\"a\",\"\\u006dodel\":\"b\"}", STRICT, 13, "duplicate key \"model\"");
    bad("{\"stream\":false,\"x\":1,\"stream\":true}", STRICT, 22, "duplicate key \"stream\"");
    bad("{\"a\":{\"b\":1,\"b\":2}}", STRICT, 12, "duplicate key \"b\"");
    bad("{\"model\":\"a\\u0000b\"}", STRICT, 11, "NUL");
    bad("{\"a\\u0000\":1}", STRICT, 3, "NUL");
    bad("{\"model\":\"a\"} x", STRICT, 14, "after the end");
    bad("{\"model\":\"a\"}{\"model\":\"b\"}", STRICT, 13, "after the end");
    bad("{\"a\":1,}", STRICT, 7, "expected a string key");
    bad("[1,]", STRICT, 3, "unexpected ']'");
    bad("{\"a\" 1}", STRICT, 5, "expected ':'");
    bad("{\"a\":1 \"b\":2}", STRICT, 7, "expected ',' or '}'");
    bad("[1 2]", STRICT, 3, "expected ',' or ']'");
    bad("{\"a\":1", STRICT, 0, "unterminated object");
    bad("[1", STRICT, 0, "unterminated array");
    bad("\"abc", STRICT, 0, "unterminated string");
    bad("\"a\tb\"", STRICT, 2, "control character 0x09");
    bad("\"\\x\"", STRICT, 1, "invalid escape \\x");
    bad("\"\\u12\"", STRICT, 1, "four hex digits");
    bad("01", STRICT, 1, "after the end");
    bad("+1", STRICT, 0, "unexpected '+'");
    bad("1.", STRICT, 0, "digits must follow '.'");
    bad("1e", STRICT, 0, "exponent");
    bad("-", STRICT, 0, "invalid number");
    bad("NaN", STRICT, 0, "unexpected 'N'");
    bad("tru", STRICT, 0, "unexpected 't'");
    bad("nul", STRICT, 0, "unexpected 'n'");
    bad("'a'", STRICT, 0, "unexpected '''");
    bad("\"\xff\"", STRICT, 1, "UTF-8");
    bad("\"\xc0\xaf\"", STRICT, 1, "UTF-8");         /* overlong */
    bad("\"\xed\xa0\x80\"", STRICT, 1, "UTF-8");     /* surrogate encoded directly */
    bad("\"\xf4\x90\x80\x80\"", STRICT, 1, "UTF-8"); /* above U+10FFFF */
    bad("\"\xe2\x82\"", STRICT, 1, "UTF-8");         /* cut sequence */
    bad_n("{\"a\":\0}", 7, STRICT, 5, "byte 0x00");
}

static void test_depth(void) {
    size_t n = JSONV_MAX_DEPTH;
    char *s = malloc(2 * n + 3);
    for (size_t i = 0; i < n; i++) s[i] = '[', s[n + i] = ']';
    ok_n(s, 2 * n, 0);
    memmove(s + 1, s, 2 * n);
    s[0] = '[';
    s[2 * n + 1] = ']';
    bad_n(s, 2 * n + 2, 0, n, "nested deeper than 1000");
    free(s);
}

/* Many keys take the sorting path; the duplicate is still found and
 * reported at the later of the two keys, in document order. */
static void test_many_keys(void) {
    size_t n = 100000, cap = n * 16 + 64;
    char *s = malloc(cap);
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++) len += (size_t)snprintf(s + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    s[len++] = '}';
    ok_n(s, len, STRICT);
    /* turn the last key into a copy of key 5: k99999 -> k5    , padded */
    char *last = strstr(s, "\"k99999\"");
    memcpy(last, "\"k5\"    ", 8);
    memmove(last + 4, last + 8, len - (size_t)(last + 8 - s));
    len -= 4;
    struct jsonv_error e;
    CHECK(jsonv_check(s, len, STRICT, &e) == -1, "100k keys with a duplicate accepted");
    CHECK(strstr(e.message, "duplicate key \"k5\"") != NULL, "message '%s'", e.message);
    free(s);
}

int main(void) {
    test_accepts();
    test_refuses();
    test_depth();
    test_many_keys();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("proxy_jsonv: all checks passed\n");
    return 0;
}
