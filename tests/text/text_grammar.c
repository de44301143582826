/*
 * text_grammar.c - JSON schemas compiled to grammars (localmodel/grammar.h):
 * documents accepted and refused byte by byte, schemas refused with the
 * keyword named, and token masks equal to what feeding each token's bytes
 * says, on the real Llama 2 vocabulary (32000 pieces, SentencePiece) and the
 * stories260K one, at states reached by random constrained walks.
 */
#include "check.h"
#include "localmodel/grammar.h"
#include "localmodel/toolfmt.h"
#include "localmodel/gguf.h"
#include "localmodel/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>

static struct lm_grammar *compile(const char *schema, char *err, size_t errlen)
{
    cJSON *s = cJSON_Parse(schema);
    if (!s) {
        snprintf(err, errlen, "test schema does not parse: %s", schema);
        return NULL;
    }
    struct lm_grammar *g = lm_grammar_from_schema(s, err, errlen);
    cJSON_Delete(s);
    return g;
}

/* 1 if doc is a complete document of g (fed in one go). */
static int matches(const struct lm_grammar *g, const struct lm_vtrie *vt, const char *doc)
{
    struct lm_gmatch *m = lm_gmatch_new(g, vt);
    if (!m)
        return -1;
    int ok = lm_gmatch_feed(m, doc, strlen(doc)) == 0 && lm_gmatch_accepting(m);
    lm_gmatch_free(m);
    return ok;
}

struct vcase { const char *schema; const char *good[8]; const char *bad[8]; };

static const struct vcase cases[] = {
    { "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},"
      "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
      { "{\"name\":\"Ann\",\"age\":42}", "{ \"name\" : \"\\u00e9\\n\" , \"age\" : -7 }", "{\"name\":\"é\",\"age\":0}" },
      { "{\"age\":42,\"name\":\"Ann\"}", "{\"name\":\"Ann\"}", "{\"name\":\"Ann\",\"age\":4.5}",
        "{\"name\":\"Ann\",\"age\":042}", "{\"name\":\"A\nB\",\"age\":1}", "{\"name\":\"\\x\",\"age\":1}",
        "{\"name\":\"\xc3\",\"age\":1}", "{\"name\":\"Ann\",\"age\":1} " } },
    { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"},\"b\":{\"type\":\"null\"},"
      "\"c\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"b\"]}",
      { "{\"b\":null}", "{\"a\":true,\"b\":null}", "{\"b\":null,\"c\":\"x\"}", "{\"a\":false,\"b\":null,\"c\":null}" },
      { "{}", "{\"a\":true}", "{\"b\":null,\"a\":true}", "{\"a\":true,,\"b\":null}" } },
    { "{\"type\":\"integer\",\"minimum\":-15,\"maximum\":307}",
      { "-15", "-9", "0", "7", "99", "300", "307", "-1" },
      { "-16", "308", "310", "1000", "-0", "01", "3.5", "-20" } },
    /* bounds past the 18 digits written constrain nothing; a huge maxItems is still a bound */
    { "{\"type\":\"integer\",\"maximum\":1e30,\"minimum\":-1e30}", { "0", "-5", "123456789012345678" }, { "1.5" } },
    { "{\"type\":\"array\",\"items\":{\"type\":\"null\"},\"maxItems\":100000}", { "[]", "[null,null]" }, { "[1]" } },
    { "{\"type\":\"integer\",\"exclusiveMinimum\":10,\"exclusiveMaximum\":20}",
      { "11", "19", "15" }, { "10", "20", "9", "21" } },
    { "{\"type\":\"number\",\"minimum\":0,\"maximum\":1}",
      { "0", "1", "0.5", "0.999", "0.0" }, { "1.5", "-0.5", "2", "-1" } },
    { "{\"type\":\"number\",\"minimum\":-2,\"maximum\":3}",
      { "-2", "-1.5", "-0.25", "0", "2.75", "3" }, { "-2.5", "3.5", "-3", "4" } },
    { "{\"enum\":[\"red\",\"green\",3,null,true]}",
      { "\"red\"", "\"green\"", "3", "null", "true" }, { "\"blue\"", "4", "false", "\"re\"" } },
    { "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}",
      { "[1]", "[1,2]", "[ 1 , 2 , 3 ]" }, { "[]", "[1,2,3,4]", "[1,]", "[\"a\"]" } },
    { "{\"type\":\"string\",\"pattern\":\"^[a-z]{2,4}\\\\d$\"}",
      { "\"ab1\"", "\"abcd9\"" }, { "\"a1\"", "\"abcde1\"", "\"ab\"", "\"AB1\"" } },
    { "{\"type\":\"string\",\"pattern\":\"ab\"}",
      { "\"ab\"", "\"xxabyy\"", "\"a ab\"" }, { "\"a b\"", "\"ba\"" } },
    { "{\"type\":\"string\",\"pattern\":\"^(yes|no)\\\"?$\"}",
      { "\"yes\"", "\"no\\\"\"" }, { "\"maybe\"", "\"yes\"\"" } },
    { "{\"type\":\"string\",\"format\":\"date\"}",
      { "\"2024-02-28\"", "\"1999-12-31\"" }, { "\"2024-02-30\"", "\"2024-13-01\"", "\"24-01-01\"" } },
    { "{\"type\":\"string\",\"format\":\"uuid\"}",
      { "\"123e4567-e89b-12d3-a456-426614174000\"" }, { "\"123e4567e89b12d3a456426614174000\"" } },
    { "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"x\":{\"const\":1}},\"required\":[\"x\"]},"
      "{\"type\":\"object\",\"properties\":{\"y\":{\"type\":\"string\"}},\"required\":[\"y\"]}]}",
      { "{\"x\":1}", "{\"y\":\"q\"}" }, { "{\"x\":2}", "{\"y\":1}", "{}" } },
    { "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
      "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},"
      "\"required\":[\"v\",\"kids\"],\"additionalProperties\":false}},\"$ref\":\"#/$defs/node\"}",
      { "{\"v\":1,\"kids\":[]}", "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3,\"kids\":[]}]},{\"v\":4,\"kids\":[]}]}" },
      { "{\"v\":1}", "{\"v\":1,\"kids\":[{\"v\":2}]}", "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[]},{\"v\":2,\"kids\":[]},"
        "{\"v\":2,\"kids\":[]}]}" } },
    { "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
      { "{}", "{\"a\":1,\"b\":2}" }, { "{\"a\":\"x\"}" } },
    /* \u escapes name characters: surrogates only in pairs (fuzz_grammar found a lone one) */
    { "{\"type\":\"string\"}", { "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\uD7FF\\uE000\"" },
      { "\"\\udE95\"", "\"\\ud83d\"", "\"\\ud83dx\"", "\"\\ude00\\ud83d\"" } },
    { "{}", { "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", "[true,false]", "\"s\"", "-1.5", "null" }, { "{a:1}", "[1,]" } },
};

static void test_documents(const struct lm_vtrie *vt)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        struct lm_grammar *g = compile(cases[i].schema, err, sizeof err);
        CHECK_MSG(g != NULL, "%s: %s", cases[i].schema, err);
        if (!g)
            continue;
        for (int k = 0; k < 8 && cases[i].good[k]; k++)
            CHECK_MSG(matches(g, vt, cases[i].good[k]) == 1, "schema %s should accept %s", cases[i].schema,
                      cases[i].good[k]);
        for (int k = 0; k < 8 && cases[i].bad[k]; k++)
            CHECK_MSG(matches(g, vt, cases[i].bad[k]) == 0, "schema %s should refuse %s", cases[i].schema,
                      cases[i].bad[k]);
        lm_grammar_free(g);
    }
    struct lm_grammar *g = lm_grammar_json_object();
    CHECK(g != NULL);
    CHECK(matches(g, vt, "{\"a\":[1,2,{\"b\":\"c\"}]}") == 1);
    CHECK(matches(g, vt, "[1]") == 0);
    CHECK(matches(g, vt, "\"x\"") == 0);
    /* the document ends as soon as it is closed */
    struct lm_gmatch *m = lm_gmatch_new(g, vt);
    CHECK(lm_gmatch_feed(m, "{}", 2) == 0);
    CHECK(lm_gmatch_done(m));
    CHECK(lm_gmatch_feed(m, " ", 1) == -1);
    lm_gmatch_free(m);
    lm_grammar_free(g);
}


/* Tool calls (lm_grammar_tool_calls): each form's documents, calls of the
 * named tool only, the call count, and parameters schemas that do not
 * compile (refused when strict, any object when not). */
static void test_tool_calls(const struct lm_vtrie *vt)
{
    cJSON *tools = cJSON_Parse(
        "[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7}},"
        "\"required\":[\"city\",\"days\"],\"additionalProperties\":false}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"loose\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"s\":{\"type\":\"string\",\"minLength\":2}}}}}]");
    CHECK(tools != NULL);
    if (!tools)
        return;
    const struct lm_tool_form hermes = { NULL, "<tool_call>", "</tool_call>", NULL, NULL, "name", "arguments" };
    const struct lm_tool_form mistral = { "[TOOL_CALLS][", NULL, NULL, ",", "]", "name", "arguments" };
    const struct lm_tool_form llama3 = { NULL, NULL, NULL, NULL, NULL, "name", "parameters" };
    char err[512] = "";
    struct lm_grammar *g = lm_grammar_tool_calls(&hermes, tools, -1, 0, err, sizeof err);
    CHECK_MSG(g != NULL, "hermes: %s", err);
    if (g) {
        CHECK(matches(g, vt, "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n"
                             "</tool_call>") == 1);
        CHECK(matches(g, vt, "<tool_call>{\"name\":\"now\",\"arguments\":{}}</tool_call>\n<tool_call>{\"name\":"
                             "\"loose\",\"arguments\":{\"s\":1}}</tool_call>") == 1);
        CHECK(matches(g, vt, "<tool_call>{\"name\":\"weather\",\"arguments\":{\"city\":\"P\",\"days\":9}}</tool_call>") == 0);
        CHECK(matches(g, vt, "<tool_call>{\"name\":\"rain\",\"arguments\":{}}</tool_call>") == 0);
        CHECK(matches(g, vt, "<tool_call>{\"arguments\":{},\"name\":\"now\"}</tool_call>") == 0);
        CHECK(matches(g, vt, "{\"name\":\"now\",\"arguments\":{}}") == 0);
        lm_grammar_free(g);
    }
    g = lm_grammar_tool_calls(&mistral, tools, 0, 1, err, sizeof err);
    CHECK_MSG(g != NULL, "mistral: %s", err);
    if (g) {
        CHECK(matches(g, vt, "[TOOL_CALLS][{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 1}}]") == 1);
        CHECK(matches(g, vt, "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}]") == 0);
        CHECK(matches(g, vt, "[TOOL_CALLS][{\"name\":\"weather\",\"arguments\":{\"city\":\"a\",\"days\":1}},"
                             "{\"name\":\"weather\",\"arguments\":{\"city\":\"b\",\"days\":2}}]") == 0);
        lm_grammar_free(g);
    }
    g = lm_grammar_tool_calls(&mistral, tools, 0, 2, err, sizeof err);
    CHECK_MSG(g != NULL, "mistral, 2: %s", err);
    if (g) {
        CHECK(matches(g, vt, "[TOOL_CALLS][{\"name\":\"weather\",\"arguments\":{\"city\":\"a\",\"days\":1}}, "
                             "{\"name\":\"weather\",\"arguments\":{\"city\":\"b\",\"days\":2}}]") == 1);
        lm_grammar_free(g);
    }
    g = lm_grammar_tool_calls(&llama3, tools, 1, 1, err, sizeof err);
    CHECK_MSG(g != NULL, "llama3: %s", err);
    if (g) {
        CHECK(matches(g, vt, "{\"name\": \"now\", \"parameters\": {\"tz\": \"UTC\"}}") == 1);
        /* one call, then the document is closed */
        struct lm_gmatch *m = lm_gmatch_new(g, vt);
        const char *doc = "{\"name\":\"now\",\"parameters\":{}}";
        CHECK(m && lm_gmatch_feed(m, doc, strlen(doc)) == 0 && lm_gmatch_done(m));
        lm_gmatch_free(m);
        lm_grammar_free(g);
    }
    /* strict: the keyword it cannot constrain to is a refusal naming the tool */
    cJSON_AddBoolToObject(cJSON_GetObjectItem(cJSON_GetArrayItem(tools, 2), "function"), "strict", 1);
    g = lm_grammar_tool_calls(&hermes, tools, -1, 0, err, sizeof err);
    CHECK_MSG(!g && strstr(err, "tools[2].function.parameters") && strstr(err, "minLength"), "strict: %s", err);
    lm_grammar_free(g);
    /* ... but not when another tool is the one named */
    g = lm_grammar_tool_calls(&hermes, tools, 1, 0, err, sizeof err);
    CHECK_MSG(g != NULL, "named, strict elsewhere: %s", err);
    lm_grammar_free(g);
    g = lm_grammar_tool_calls(&hermes, tools, 5, 0, err, sizeof err);
    CHECK(!g);
    cJSON_Delete(tools);
}

static void test_refusals(void)
{
    static const struct { const char *schema, *needle; } r[] = {
        { "{\"type\":\"string\",\"minLength\":3}", "'minLength' is not supported" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"not\":{}}}}", "schema.properties.a: 'not' is not supported" },
        { "{\"oneOf\":[{\"type\":\"string\"}]}", "'oneOf'" },
        { "{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems'" },
        { "{\"$ref\":\"#/$defs/missing\"}", "\"#/$defs/missing\" is missing" },
        { "{\"type\":\"integer\",\"minimum\":5,\"maximum\":3}", "no integer lies within the bounds" },
        { "{\"type\":\"number\",\"minimum\":0.1,\"maximum\":0.2}", "range this narrow" },
        { "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "'minItems' 3 is above 'maxItems' 2" },
        { "{\"$defs\":{\"a\":{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#/$defs/a\"}},\"required\":[\"x\"]}},"
          "\"$ref\":\"#/$defs/a\"}", "no document can satisfy it" },
        { "{\"$ref\":\"#\"}", "no document can satisfy it" },
        { "{\"anyOf\":[{\"$ref\":\"#\"},{\"type\":\"null\"}]}", "writes nothing before it recurs" },
        { "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "'pattern' uses a backreference" },
        { "{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "lookaround" },
        { "{\"type\":\"string\",\"pattern\":\"a{3,2}\"}", "n < m" },
        { "{\"type\":\"string\",\"pattern\":\"[a-\"}", "unclosed '['" },
        { "{\"type\":\"string\",\"format\":\"color\"}", "'format' \"color\" is not supported" },
        { "{\"type\":\"strin\"}", "'type' must be one of" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"],\"additionalProperties\":false}",
          "'required' names 'b'" },
        { "{\"enum\":[1,2],\"type\":\"string\"}", "no value of 'enum'" },
        { "{\"type\":\"number\",\"multipleOf\":0.5}", "'multipleOf'" },
        { "{\"type\":\"integer\",\"minimum\":1e19}", "needs more than the 18 integer digits" },
        { "{\"type\":\"number\",\"maximum\":-5e18}", "needs more than the 18 integer digits" },
        { "{\"type\":\"array\",\"minItems\":20000}", "'minItems' is above 10000" },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        char err[512] = "";
        struct lm_grammar *g = compile(r[i].schema, err, sizeof err);
        CHECK_MSG(g == NULL, "%s should be refused", r[i].schema);
        lm_grammar_free(g);
        CHECK_CONTAINS(err, r[i].needle);
    }
    /* 70 levels of nesting: refused, no crash */
    char deep[4096] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "{\"type\":\"array\",\"items\":");
    strcat(deep, "{\"type\":\"null\"}");
    for (int i = 0; i < 70; i++)
        strcat(deep, "}");
    char err[512] = "";
    struct lm_grammar *g = compile(deep, err, sizeof err);
    CHECK(g == NULL);
    CHECK_CONTAINS(err, "nested deeper than 64");
    /* a huge enum and an object of 2000 properties compile within the budget */
    size_t cap = 1 << 20;
    char *big = malloc(cap);
    size_t o = (size_t)snprintf(big, cap, "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s\"p%d\":{\"enum\":[\"a%d\",\"b%d\",%d]}", i ? "," : "", i, i, i, i);
    snprintf(big + o, cap - o, "}}");
    g = compile(big, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    lm_grammar_free(g);
    free(big);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Random constrained walks: at every state the mask must be exactly the
 * tokens whose bytes the grammar accepts from there; the walk ends with a
 * complete document that cJSON parses. */
static void test_masks(const struct lm_tokenizer *t, const struct lm_vtrie *vt, const char *schema, int walks,
                       int check_every)
{
    char err[512];
    struct lm_grammar *g = compile(schema, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g)
        return;
    int nv = lm_tok_n_vocab(t), complete = 0;
    for (int w = 0; w < walks; w++) {
        struct lm_gmatch *m = lm_gmatch_new(g, vt);
        char doc[8192];
        size_t dl = 0;
        for (int step = 0; step < 400 && !lm_gmatch_done(m); step++) {
            int n_allowed, can_end;
            const uint32_t *mask = lm_gmatch_mask(m, &n_allowed, &can_end);
            CHECK(mask != NULL);
            if (!mask)
                break;
            if (step % check_every == 0) {
                /* an independent matcher, fed the document so far */
                struct lm_gmatch *probe = lm_gmatch_new(g, vt);
                CHECK(lm_gmatch_feed(probe, doc, dl) == 0);
                int cnt = 0;
                for (int id = 0; id < nv; id++) {
                    size_t len;
                    const char *p = lm_tok_piece(t, -2, id, &len);
                    int bit = (mask[id >> 5] >> (id & 31)) & 1;
                    cnt += bit;
                    int ok = 0;
                    if (len > 0 && lm_tok_type(t, id) != LM_TOK_CONTROL && !lm_tok_is_eog(t, id))
                        ok = lm_gmatch_try(probe, p, len) == 1;
                    if (bit != ok) {
                        CHECK_MSG(0, "token %d \"%.*s\" after \"%.*s\": mask %d, bytes %d", id, (int)len, p,
                                  (int)dl, doc, bit, ok);
                        break;
                    }
                }
                CHECK_INT(cnt, n_allowed);
                lm_gmatch_free(probe);
            }
            if (n_allowed == 0) {
                CHECK(can_end);
                break;
            }
            /* pick an allowed token, preferring short ones so walks end */
            int pick = -1;
            for (int tries = 0; tries < 64 && pick < 0; tries++) {
                int id = (int)(rnd() % (uint32_t)nv);
                if ((mask[id >> 5] >> (id & 31)) & 1)
                    pick = id;
            }
            if (pick < 0 || rnd() % 4 == 0) {
                int k = (int)(rnd() % (uint32_t)n_allowed);
                for (int id = 0; id < nv; id++)
                    if (((mask[id >> 5] >> (id & 31)) & 1) && k-- == 0) {
                        pick = id;
                        break;
                    }
            }
            size_t len;
            const char *p = lm_tok_piece(t, -2, pick, &len);
            CHECK(lm_gmatch_feed(m, p, len) == 0);
            if (dl + len < sizeof doc) {
                memcpy(doc + dl, p, len);
                dl += len;
            }
        }
        if (lm_gmatch_done(m)) {
            complete++;
            doc[dl] = 0;
            cJSON *j = cJSON_Parse(doc);
            CHECK_MSG(j != NULL, "walk produced %s", doc);
            cJSON_Delete(j);
        }
        lm_gmatch_free(m);
    }
    CHECK_MSG(complete > 0, "no walk of %s completed", schema);
    lm_grammar_free(g);
}

static struct lm_tokenizer *load(const char *name)
{
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/%s", LLMPIN_MODELS_DIR, name);
    struct gguf_file *f;
    if (gguf_open(path, &f, err, sizeof err) < 0) {
        CHECK_MSG(0, "%s: %s", path, err);
        return NULL;
    }
    struct lm_tokenizer *t = lm_tok_from_gguf(f, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    gguf_close(f);
    return t;
}

/* The grammars of the formats llmpin reads (toolfmt.h): a ' ' in a form's
 * literal is optional whitespace. */
static void test_styles(const struct lm_vtrie *vt)
{
    cJSON *tools = cJSON_Parse("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":"
                               "\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}}]");
    struct { enum lm_tool_fmt f; const char *good[3], *bad[2]; } c[] = {
        { LM_TOOLS_GENERIC, { "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": 1}}]}",
                              "{\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":1}},{\"name\":\"f\",\"arguments\":{\"a\":2}}]}",
                              "{\"tool_calls\":\n  [\n  {\"name\": \"f\", \"arguments\": {\"a\": 3}}\n]\n}" },
          { "{\"tool_calls\": []}", "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}]}" } },
        { LM_TOOLS_HERMES, { "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>" },
          { "<tool_call>{\"name\": \"g\", \"arguments\": {\"a\": 1}}</tool_call>" } },
        { LM_TOOLS_MISTRAL, { "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}]",
                              "[TOOL_CALLS][{\"name\":\"f\",\"arguments\":{\"a\":1}}, {\"name\":\"f\",\"arguments\":{\"a\":1}}]" },
          { "[TOOL_CALLS]{\"name\": \"f\", \"arguments\": {\"a\": 1}}" } },
        { LM_TOOLS_LLAMA3, { "{\"name\": \"f\", \"parameters\": {\"a\": 1}}" },
          { "{\"name\": \"f\", \"parameters\": {\"a\": 1}}{\"name\": \"f\", \"parameters\": {\"a\": 1}}",
            "{\"name\": \"f\", \"arguments\": {\"a\": 1}}" } },
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        const struct lm_tool_style *st = lm_tool_style(c[i].f);
        char err[300];
        struct lm_grammar *g = lm_grammar_tool_calls(&st->form, tools, -1, st->max_calls, err, sizeof err);
        CHECK_MSG(g != NULL, "%s: %s", st->name, err);
        if (!g)
            continue;
        for (int k = 0; k < 3 && c[i].good[k]; k++)
            CHECK_MSG(matches(g, vt, c[i].good[k]) == 1, "%s: %s", st->name, c[i].good[k]);
        for (int k = 0; k < 2 && c[i].bad[k]; k++)
            CHECK_MSG(matches(g, vt, c[i].bad[k]) == 0, "%s: %s", st->name, c[i].bad[k]);
        /* the trigger starts what the grammar takes */
        struct lm_gmatch *m = lm_gmatch_new(g, vt);
        CHECK_MSG(m && lm_gmatch_try(m, st->trigger, strlen(st->trigger)) == 1, "%s: trigger", st->name);
        lm_gmatch_free(m);
        lm_grammar_free(g);
    }
    cJSON_Delete(tools);
}

int main(void)
{
    struct lm_tokenizer *t = load("llama-2-tiny-random.gguf");
    struct lm_tokenizer *s = load("stories260K.gguf");
    if (!t || !s)
        DONE();
    struct lm_vtrie *vt = lm_vtrie_new(t), *vs = lm_vtrie_new(s);
    CHECK(vt && vs);
    test_documents(vt);
    test_refusals();
    test_tool_calls(vt);
    test_styles(vt);
    const char *person = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\","
                         "\"minimum\":0,\"maximum\":150},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},"
                         "\"maxItems\":3},\"when\":{\"type\":\"string\",\"format\":\"date\"}},"
                         "\"required\":[\"name\",\"age\",\"tags\"],\"additionalProperties\":false}";
    test_masks(t, vt, person, 6, 7);
    test_masks(s, vs, person, 20, 3);
    test_masks(t, vt, "{}", 4, 9);
    test_masks(s, vs, "{\"type\":\"string\",\"pattern\":\"^[a-c]+x$\"}", 20, 1);
    lm_vtrie_free(vt);
    lm_vtrie_free(vs);
    lm_tok_free(t);
    lm_tok_free(s);
    DONE();
}
