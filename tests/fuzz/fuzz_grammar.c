/*
 * fuzz_grammar.c - libFuzzer target for the JSON-schema compiler and the
 * matcher of localmodel/grammar.h: the schemas of response_format come from
 * the client.
 *
 * Input: any bytes, parsed as JSON (cJSON); what is not JSON is skipped.
 * What must hold: compiling either succeeds or fails with a message, in
 * bounded time and memory; on a grammar that compiled, walks over a small
 * vocabulary (every byte, and some JSON-ish pieces) never get stuck: each
 * mask has an allowed token or the document may end; a token the mask
 * allows is accepted when fed; a document the walk completes is JSON that
 * cJSON parses.
 */
#include "localmodel/grammar.h"
#include "localmodel/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_grammar: " __VA_ARGS__);                \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

static struct lm_tokenizer *tok;
static struct lm_vtrie *vt;

static void setup(void)
{
    static const char *extra[] = { "{\"", "\":", "\",", "\"}", "true", "false", "null", "\\n", "\\u00", "0.", "12",
                                   "-1", "  ", "\n  ", "]}", "[{", "\xc3\xa9", "\xe2\x96", "abc", " \"" };
    int ne = (int)(sizeof extra / sizeof extra[0]), n = 256 + ne;
    const char **toks = malloc((size_t)n * sizeof *toks);
    uint32_t *lens = malloc((size_t)n * sizeof *lens);
    char (*bytes)[8] = malloc(256 * 8);
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], 8, "<0x%02X>", i);
        toks[i] = bytes[i];
        lens[i] = 6;
    }
    for (int i = 0; i < ne; i++) {
        toks[256 + i] = extra[i];
        lens[256 + i] = (uint32_t)strlen(extra[i]);
    }
    char err[256];
    tok = lm_tok_new(n, toks, lens, NULL, NULL, -1, -1, -1, 0, 0, err, sizeof err);
    if (!tok)
        FAIL("vocabulary: %s", err);
    vt = lm_vtrie_new(tok);
    if (!vt)
        FAIL("trie");
    free(toks);
    free(lens);
    free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok)
        setup();
    if (size > 1 << 16)
        return 0;
    cJSON *schema = cJSON_ParseWithLength((const char *)data, size);
    if (!schema)
        return 0;
    char err[512] = "";
    struct lm_grammar *g = lm_grammar_from_schema(schema, err, sizeof err);
    cJSON_Delete(schema);
    if (!g) {
        if (!err[0])
            FAIL("refused without a message");
        return 0;
    }
    int nv = lm_tok_n_vocab(tok);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    for (int walk = 0; walk < 2; walk++) {
        struct lm_gmatch *m = lm_gmatch_new(g, vt);
        if (!m)
            FAIL("matcher");
        char doc[4096];
        size_t dl = 0;
        for (int step = 0; step < 200 && !lm_gmatch_done(m); step++) {
            int n_allowed, can_end;
            const uint32_t *mask = lm_gmatch_mask(m, &n_allowed, &can_end);
            if (!mask)
                FAIL("mask failed");
            if (n_allowed == 0) {
                if (!can_end)
                    FAIL("stuck after \"%.*s\"", (int)dl, doc);
                break;
            }
            h = h * 1103515245u + 12345u + (uint32_t)walk;
            int k = (int)((h >> 8) % (uint32_t)n_allowed), pick = -1;
            for (int id = 0; id < nv && pick < 0; id++)
                if (((mask[id >> 5] >> (id & 31)) & 1) && k-- == 0)
                    pick = id;
            size_t len;
            const char *p = lm_tok_piece(tok, -2, pick, &len);
            if (lm_gmatch_feed(m, p, len) != 0)
                FAIL("token %d the mask allowed was refused after \"%.*s\"", pick, (int)dl, doc);
            if (dl + len < sizeof doc) {
                memcpy(doc + dl, p, len);
                dl += len;
            }
        }
        if (lm_gmatch_done(m) && dl + 1 < sizeof doc) {
            doc[dl] = 0;
            cJSON *j = cJSON_Parse(doc);
            if (!j)
                FAIL("completed document is not JSON: %s", doc);
            cJSON_Delete(j);
        }
        lm_gmatch_free(m);
    }
    lm_grammar_free(g);
    return 0;
}
