/*
 * drift_hash_test.c - the canonical request hash ignores key order,
 * whitespace and number spelling, and changes with anything that decides
 * the answer.
 */
#include "drift_test.h"

static void hash_of(const char *json, char hex[65])
{
    cJSON *j = cJSON_Parse(json);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s\n", json);
        exit(2);
    }
    if (drift_canonical_request_hash(j, hex) != 0)
        hex[0] = '\0';
    cJSON_Delete(j);
}

/* Hashes are stored (drift_outputs pairs requests by them), so a faster
 * canonicaliser must give exactly the hashes of the first one. The values
 * below were computed by the original implementation (before hashing was
 * streamed); the bodies exercise duplicate keys, "Model" vs "model", an
 * object of 41 keys (beyond the insertion-sort stack), escapes, UTF-8,
 * extreme numbers and a 3,000-byte string (beyond the 1 KiB hash chunk). */
static void stable_hashes(void)
{
    static char big[4000], b3[8000], lb[8000];
    char *p = big;
    p += sprintf(p, "{\"b\":1");
    for (int i = 0; i < 40; i++)
        p += sprintf(p, ",\"k%02d\":%d", 39 - i, i * 7 - 100);
    sprintf(p, "}");
    snprintf(b3, sizeof b3,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\\n\\u0001\\t%s end\"}],"
             "\"model\":\"m\",\"Model\":\"M\",\"model\":\"second\",\"tools\":[{\"function\":%s}],"
             "\"temperature\":0.1,\"seed\":-9007199254740991,\"top_p\":1e300,"
             "\"frequency_penalty\":-0.0,\"stream\":true}",
             "ab\\\\cd\\\"ef\xc3\xa9gh", big);
    char *q = lb;
    q += sprintf(q, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 1500; i++)
        *q++ = (char)('a' + i % 26);
    q += sprintf(q, "\\\"");
    for (int i = 0; i < 1500; i++)
        *q++ = (char)('A' + i % 26);
    sprintf(q, "\"}]}");
    const char *bodies[] = {
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello "
        "benchmark\"}],\"max_tokens\":16}",
        b3,
        lb,
    };
    const char *want[] = {
        "f5b66924ae48243c25b3c5577543f03274a71323e4cd088f91c761ef401cc21b",
        "119b384f031746d62c0c3ed4d7a696cd313de1ba241766f2b723de49c42f438b",
        "85a27fdbbd3481d66f886d5a3fc6021548892d32d3c5ff393721c67a4a190508",
    };
    for (int i = 0; i < 3; i++) {
        cJSON *j = cJSON_Parse(bodies[i]);
        CHECK(j != NULL);
        char h[65], h2[65];
        CHECK_INT(drift_canonical_request_hash(j, h), 0);
        CHECK_STR(h, want[i]);
        /* the streamed hash is the hash of the canonical text */
        char *c = drift_canonical_request_json(j);
        CHECK(c != NULL);
        drift_output_hash(c, c ? strlen(c) : 0, h2);
        CHECK_STR(h2, want[i]);
        free(c);
        cJSON_Delete(j);
    }
}

int main(void)
{
    char a[65], b[65];
    const char *base =
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"temperature\":0,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":1}}";
    hash_of(base, a);
    CHECK_INT(strlen(a), 64);

    /* key order, nested key order, whitespace, number spelling */
    hash_of("{ \"seed\" : 7.0 ,\n \"temperature\": 0e0, \"response_format\": {\"x\": 1, "
            "\"type\": \"json_object\"},\n \"messages\": [ {\"content\": \"Hi\", \"role\": "
            "\"user\"} ], \"model\": \"gpt-4o\" }", b);
    CHECK_STR(a, b);
    /* \u escapes decode to the same text */
    hash_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u0048i\"}],"
            "\"temperature\":0,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":1}}", b);
    CHECK_STR(a, b);
    /* fields that do not decide the answer are ignored */
    hash_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
            "\"temperature\":0,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":1},"
            "\"stream\":true,\"user\":\"u-1\",\"metadata\":{\"a\":1}}", b);
    CHECK_STR(a, b);

    /* sensitivity */
    hash_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi!\"}],"
            "\"temperature\":0,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":1}}", b);
    CHECK(strcmp(a, b) != 0);
    hash_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
            "\"temperature\":0.2,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":1}}", b);
    CHECK(strcmp(a, b) != 0);
    hash_of("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
            "\"temperature\":0,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":1}}", b);
    CHECK(strcmp(a, b) != 0);
    hash_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
            "\"temperature\":0,\"seed\":7,\"response_format\":{\"type\":\"json_object\",\"x\":2}}", b);
    CHECK(strcmp(a, b) != 0);
    /* message order matters (arrays keep their order) */
    hash_of("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
            "{\"role\":\"user\",\"content\":\"b\"}]}", a);
    hash_of("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"},"
            "{\"role\":\"user\",\"content\":\"a\"}]}", b);
    CHECK(strcmp(a, b) != 0);

    /* the canonical text itself */
    cJSON *j = cJSON_Parse("{\"temperature\":1.50,\"model\":\"m\",\"stop\":[\"\\n\"],"
                           "\"n\":1e2,\"top_p\":0.1}");
    char *c = drift_canonical_request_json(j);
    CHECK_STR(c, "{\"model\":\"m\",\"n\":100,\"stop\":[\"\\n\"],\"temperature\":1.5,\"top_p\":0.1}");
    free(c);
    CHECK(drift_request_is_deterministic(j, NULL, NULL) == 0);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"temperature\":0}");
    CHECK(drift_request_is_deterministic(j, NULL, NULL) == 1);
    cJSON_Delete(j);
    int64_t seed = 0;
    int has = 0;
    j = cJSON_Parse("{\"temperature\":0.7,\"seed\":42}");
    CHECK(drift_request_is_deterministic(j, &seed, &has) == 1);
    CHECK_INT(seed, 42);
    CHECK_INT(has, 1);
    cJSON_Delete(j);
    /* empty objects and arrays (found by fuzzing: qsort on a NULL array) */
    j = cJSON_Parse("{\"model\":\"m\",\"response_format\":{},\"tools\":[]}");
    c = drift_canonical_request_json(j);
    CHECK_STR(c, "{\"model\":\"m\",\"response_format\":{},\"tools\":[]}");
    free(c);
    cJSON_Delete(j);
    j = cJSON_Parse("[1,2]");
    CHECK(drift_canonical_request_hash(j, a) == -1);
    cJSON_Delete(j);

    /* output hash: SHA-256 of the bytes */
    drift_output_hash("abc", 3, a);
    CHECK_STR(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    /* time parsing */
    int64_t ms;
    CHECK(drift_parse_time("2026-01-31", 0, &ms) == 0);
    CHECK_INT(ms, 1769817600000LL);
    CHECK(drift_parse_time("2026-01-31T12:00:00Z", 0, &ms) == 0);
    CHECK_INT(ms, 1769817600000LL + 12 * 3600000LL);
    CHECK(drift_parse_time("24h", 100000000000LL, &ms) == 0);
    CHECK_INT(ms, 100000000000LL - 86400000LL);
    CHECK(drift_parse_time("7d", 100000000000LL, &ms) == 0);
    CHECK_INT(ms, 100000000000LL - 7 * 86400000LL);
    CHECK(drift_parse_time("yesterday", 0, &ms) == -1);
    CHECK(drift_parse_time("2026-13-01", 0, &ms) == -1);

    /* similarity used by compare */
    CHECK(drift_text_similarity("The cat sat.", "the CAT sat") == 1.0);
    CHECK(drift_text_similarity("a b c d", "a b x y") == 2.0 / 6.0);
    CHECK(drift_text_similarity("", "") == 1.0);
    CHECK(drift_text_similarity("a", "") == 0.0);
    stable_hashes();
    return t_done("drift_hash_test");
}
