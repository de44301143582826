/*
 * fuzz_jsonv.c - libFuzzer target for common/jsonv.c, the strict JSON
 * validator that makes routing and forwarding read a body the same way.
 *
 * Input: any bytes. What must hold: jsonv's verdict is the same with and
 * without the strict flags except for what they add (a document accepted
 * strictly is accepted plainly); a document jsonv accepts is one that
 * cJSON parses whole, with nothing left after it; an accepted object with
 * JSONV_NO_DUP_KEYS has no key twice at its top level (checked through
 * cJSON); a refusal points inside the input and says something.
 */
#include "common/jsonv.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_jsonv: " __VA_ARGS__);                  \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct jsonv_error e;
    int plain = jsonv_check(s, size, 0, &e);
    if (plain != 0 && (e.offset > size || !e.message[0])) FAIL("refusal at %zu of %zu: '%s'", e.offset, size, e.message);
    int strict = jsonv_check(s, size, JSONV_NO_DUP_KEYS | JSONV_NO_NUL, &e);
    if (strict != 0 && (e.offset > size || !e.message[0])) FAIL("strict refusal at %zu of %zu", e.offset, size);
    if (strict == 0 && plain != 0) FAIL("accepted strictly but refused plainly");
    int obj = jsonv_check(s, size, JSONV_OBJECT, &e);
    if (obj == 0 && plain != 0) FAIL("accepted as an object but refused plainly");
    if (plain != 0) return 0;

    /* cJSON refuses what it cannot hold (nesting past its limit, NUL) and
     * truncates nothing else: an accepted document parses whole */
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, size, &end, 0);
    if (j) {
        const char *p = end;
        while (p < s + size && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p != s + size) FAIL("cJSON stopped at byte %zu of %zu of an accepted document", (size_t)(end - s), size);
        if (obj == 0 && !cJSON_IsObject(j)) FAIL("JSONV_OBJECT accepted a non-object");
        if (strict == 0 && cJSON_IsObject(j)) {
            for (cJSON *a = j->child; a; a = a->next)
                for (cJSON *b = a->next; b; b = b->next)
                    if (a->string && b->string && strcmp(a->string, b->string) == 0)
                        FAIL("key \"%s\" twice in a strictly accepted object", a->string);
        }
        cJSON_Delete(j);
    }
    return 0;
}
