/*
 * fuzz_reqscan.c - libFuzzer target for drift_request_scan (drift/reqscan.c),
 * the recorder's raw-body reader of client requests, against the cJSON
 * path it stands in for.
 *
 * The scanner may say "unsure" for anything; when it answers, cJSON must
 * read the same bytes as an object and give the same canonical request
 * hash, determinism, seed and first "model". The scratch state is kept
 * from one input to the next, as the recorder keeps it.
 */
#include "drift/drift.h"
#include "drift/internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct drift_reqscan scan;
static struct drift_hasher hasher;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (drift_hasher_init(&hasher) != 0) abort();
    return 0;
}

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_reqscan: " __VA_ARGS__);                \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size ? size : 1);      /* exact size: no NUL to lean on */
    if (!json) abort();
    memcpy(json, data, size);
    struct drift_reqinfo in;
    int rc = drift_request_scan(&scan, &hasher, json, size, &in);
    if (rc != DRIFT_REQ_OK) {
        if (rc != DRIFT_REQ_UNSURE) FAIL("returned %d", rc);
        free(json);
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(json, size);
    char ref[65] = "";
    if (!cJSON_IsObject(j) || drift_canonical_request_hash(j, ref) != 0)
        FAIL("answered for what cJSON does not read as an object");
    int64_t seed = 0;
    int has_seed = 0;
    int det = drift_request_is_deterministic(j, &seed, &has_seed);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const char *model = cJSON_IsString(m) ? m->valuestring : NULL;
    if (model ? !in.model || strlen(model) != in.model_len ||
                    memcmp(model, in.model, in.model_len) != 0
              : in.model != NULL)
        FAIL("model: cJSON %s, scanner %.*s", model ? model : "(none)",
             in.model ? (int)in.model_len : 6, in.model ? in.model : "(none)");
    if (in.model && (in.model < json || in.model + in.model_len > json + size))
        FAIL("model points outside the body");
    if (strcmp(ref, in.hash) != 0) FAIL("hash: cJSON %s, scanner %s", ref, in.hash);
    if (det != in.deterministic || has_seed != in.has_seed || seed != in.seed)
        FAIL("determinism: cJSON %d seed %d/%lld, scanner %d seed %d/%lld", det, has_seed,
             (long long)seed, in.deterministic, in.has_seed, (long long)in.seed);
    cJSON_Delete(j);
    free(json);
    return 0;
}
