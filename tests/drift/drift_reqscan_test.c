/*
 * drift_reqscan_test.c - the raw-body request scanner (drift/reqscan.c)
 * gives exactly what the cJSON path gives (hash, determinism, seed, model)
 * whenever it answers, answers for ordinary requests, and says unsure for
 * what it does not handle. Checked on hand-written bodies, on generated
 * requests (random key order, whitespace, number spellings, escapes,
 * duplicate keys) and on mutations of them, under ASan in CI.
 */
#include "drift_test.h"
#include "drift_mutate.h"
#include "drift/internal.h"

#include <cjson/cJSON.h>

static struct drift_reqscan scan;
static struct drift_hasher hasher;
static long answered, unsure;

/* Compare the two paths on json[0..len). Returns the scanner's verdict. */
static int compare(const char *json, size_t len, const char *what)
{
    struct drift_reqinfo in;
    int rc = drift_request_scan(&scan, &hasher, json, len, &in);
    if (rc != DRIFT_REQ_OK) {
        unsure++;
        return rc;
    }
    answered++;
    cJSON *j = cJSON_ParseWithLength(json, len);
    char ref[65] = "";
    int64_t seed = 0;
    int has_seed = 0;
    if (!cJSON_IsObject(j) || drift_canonical_request_hash(j, ref) != 0) {
        fprintf(stderr, "%s: the scanner hashed what cJSON does not read as an object: %.*s\n",
                what, (int)len, json);
        t_failures++;
        cJSON_Delete(j);
        return rc;
    }
    int det = drift_request_is_deterministic(j, &seed, &has_seed);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const char *model = cJSON_IsString(m) ? m->valuestring : NULL;
    int same_model = model ? in.model && strlen(model) == in.model_len &&
                                 memcmp(model, in.model, in.model_len) == 0
                           : in.model == NULL;
    if (strcmp(ref, in.hash) != 0 || det != in.deterministic || has_seed != in.has_seed ||
        seed != in.seed || !same_model) {
        char *c = drift_canonical_request_json(j);
        fprintf(stderr,
                "%s: differs on %.*s\n  cJSON: %s det=%d seed=%d/%lld model=%s\n"
                "  scan:  %s det=%d seed=%d/%lld model=%.*s\n  canonical: %s\n",
                what, (int)len, json, ref, det, has_seed, (long long)seed,
                model ? model : "(none)", in.hash, in.deterministic, in.has_seed,
                (long long)in.seed, in.model ? (int)in.model_len : 6,
                in.model ? in.model : "(none)", c ? c : "?");
        free(c);
        t_failures++;
    }
    cJSON_Delete(j);
    return rc;
}

static void expect_ok(const char *json)
{
    if (compare(json, strlen(json), "ok") != DRIFT_REQ_OK) {
        fprintf(stderr, "the scanner was unsure of an ordinary body: %s\n", json);
        t_failures++;
    }
}

static void expect_unsure(const char *json)
{
    if (compare(json, strlen(json), "unsure") != DRIFT_REQ_UNSURE) {
        fprintf(stderr, "the scanner answered for a body it should leave to cJSON: %s\n", json);
        t_failures++;
    }
}

static const char *const ordinary[] = {
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}",
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\\nReally.\"},"
    "{\"role\":\"user\",\"content\":\"say \\\"hi\\\" \\\\ \\/ \\t\\r\\b\\f\"}],"
    "\"model\":\"m\",\"temperature\":0.7,\"top_p\":1.0,\"max_tokens\":256,\"stream\":true,"
    "\"stream_options\":{\"include_usage\":true},\"user\":\"u-1\"}",
    " {\"model\" : \"m\" ,\n\t\"messages\": [ ] , \"temperature\" : 0 , \"seed\" : 42 }\r\n",
    "{\"model\":\"m\",\"messages\":[],\"temperature\":0.0}",
    "{\"model\":\"m\",\"messages\":[],\"temperature\":-0}",
    "{\"model\":\"m\",\"messages\":[],\"seed\":-12.75}",
    "{\"model\":\"m\",\"messages\":[],\"seed\":123456789012345}",
    "{\"model\":\"m\",\"prompt\":\"x\",\"logit_bias\":{\"50256\":-100,\"11\":0.5,\"9\":-0.25},"
    "\"stop\":[\"\\n\",\"END\"],\"n\":2,\"presence_penalty\":0.0001,\"frequency_penalty\":-2.0}",
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\",\"detail\":\"low\"}}]}]}",
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"q\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\",\"minimum\":1}},"
    "\"required\":[\"q\"]}}}],\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,"
    "\"response_format\":{\"type\":\"json_object\"},\"metadata\":null}",
    "{\"model\":\"m\",\"Model\":\"M\",\"model\":\"second\",\"messages\":[],\"seed\":1,\"seed\":\"x\"}",
    "{\"model\":5,\"messages\":[]}",
    "{}",
    "{\"b\":{\"z\":1,\"y\":[{\"k\":null,\"a\":true}],\"\":false},\"input\":[1,2.5,-3.125]}",
};

static const char *const leave_to_cjson[] = {
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9\"}]}",
    "{\"model\":\"m\",\"temperature\":1e-3}",
    "{\"model\":\"m\",\"temperature\":0.00001}",
    "{\"model\":\"m\",\"seed\":1234567890123456}",
    "{\"model\":\"m\",\"top_p\":0.1234567890123456}",
    "{\"mod\\u0065l\":\"m\"}",
    "{\"mo\\tdel\":\"m\"}",
    "{\"model\":\"m\\/x\"}",
    "{\"model\":\"m\",\"messages\":[{\"content\":\"raw\ttab\"}]}",
    "{\"model\":\"m\",\"max_tokens\":007}",
    "{\"model\":\"m\",\"max_tokens\":+7}",
    "{\"model\":\"m\",\"max_tokens\":.5}",
    "{\"model\":\"m\",\"max_tokens\":5.}",
    "{\"model\":\"m\"} trailing",
    "{\"model\":\"m\",}",
    "{\"model\":\"m\"",
    "[1,2]",
    "\"just a string\"",
    "",
    "{\"model\":\"m\",\"stop\":[\"a\",]}",
    "{\"model\":\"m\",\"n\":tru}",
    "{\"model\":\"m\",\"messages\":\"\\x\"}",
    "\f{\"model\":\"m\"}",
};

/* A body with nesting `depth` deep inside "messages". */
static char *nested(int depth)
{
    size_t n = (size_t)depth * 2 + 64;
    char *s = malloc(n), *p = s;
    p += sprintf(p, "{\"messages\":");
    for (int i = 0; i < depth; i++)
        *p++ = '[';
    for (int i = 0; i < depth; i++)
        *p++ = ']';
    strcpy(p, "}");
    return s;
}

/* An object of n keys, in reverse order: beyond the 32-key stack. */
static char *wide(int n, int dup)
{
    char *s = malloc((size_t)n * 24 + 64), *p = s;
    p += sprintf(p, "{\"tools\":{");
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s\"k%03d\":%d", i ? "," : "", dup && i == 1 ? n - 1 : n - 1 - i, i);
    strcpy(p, "}}");
    return s;
}

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(unsigned n) { return t_rnd(&rng, n); }

struct gen {
    char *p, *end;
};

static void g_put(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->p + n < g->end) {
        memcpy(g->p, s, n);
        g->p += n;
    }
}

static void g_ws(struct gen *g)
{
    static const char *const w[] = {"", "", "", " ", "\n  ", "\t", "\r\n"};
    g_put(g, w[rnd(7)]);
}

static void g_number(struct gen *g)
{
    static const char *const nums[] = {
        "0", "-0", "0.0", "1", "1.0", "1.50", "0.7", "0.70", "-0.25", "2", "16", "256", "-1",
        "100000", "0.0001", "0.001", "0.1234", "3.14159265358979", "123456789012345",
        "-123456789012345", "99999999999999.9", "0.000100", "1e3", "1E-2", "2.5e+1",
        "1234567890123456", "0.00001", "12.000000000000000000", "9007199254740993", "1.25",
    };
    g_put(g, nums[rnd(sizeof nums / sizeof nums[0])]);
}

static void g_string(struct gen *g)
{
    static const char *const parts[] = {
        "a", "hello", " ", "\\n", "\\\"", "\\\\", "\\/", "\\t", "\\b", "\\f", "\\r",
        "\xc3\xa9", "\xe2\x82\xac", "{", "}", "[", ",", ":", "0", "\\u00e9", "\xff",
    };
    g_put(g, "\"");
    int n = (int)rnd(6);
    for (int i = 0; i < n; i++)
        g_put(g, parts[rnd(sizeof parts / sizeof parts[0] - (rnd(8) ? 2 : 0))]);
    g_put(g, "\"");
}

static void g_value(struct gen *g, int depth);

static void g_key(struct gen *g)
{
    static const char *const keys[] = {
        "model", "messages", "role", "content", "temperature", "seed", "top_p", "tools",
        "type", "a", "b", "B", "", "aa", "n", "stop", "Model", "name", "x\xc3\xa9",
    };
    g_put(g, "\"");
    g_put(g, keys[rnd(sizeof keys / sizeof keys[0])]);
    g_put(g, "\"");
}

static void g_value(struct gen *g, int depth)
{
    unsigned k = depth > 4 ? rnd(5) : rnd(7);
    switch (k) {
    case 0: g_number(g); break;
    case 1: g_string(g); break;
    case 2: g_put(g, rnd(2) ? "true" : "false"); break;
    case 3: g_put(g, "null"); break;
    case 4: g_string(g); break;
    case 5: {
        g_put(g, "[");
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            if (i)
                g_put(g, ",");
            g_ws(g);
            g_value(g, depth + 1);
            g_ws(g);
        }
        g_put(g, "]");
        break;
    }
    default: {
        g_put(g, "{");
        int n = (int)rnd(5);
        for (int i = 0; i < n; i++) {
            if (i)
                g_put(g, ",");
            g_ws(g);
            g_key(g);
            g_ws(g);
            g_put(g, ":");
            g_ws(g);
            g_value(g, depth + 1);
        }
        g_put(g, "}");
    }
    }
}

/* a request: top-level answer fields (and others) in random order */
static size_t g_request(char *buf, size_t cap)
{
    static const char *const top[] = {
        "model", "messages", "temperature", "seed", "top_p", "max_tokens", "stop", "tools",
        "stream", "user", "n", "response_format", "logit_bias", "Model", "metadata",
    };
    struct gen g = {buf, buf + cap - 1};
    g_ws(&g);
    g_put(&g, "{");
    int n = (int)rnd(8);
    for (int i = 0; i < n; i++) {
        if (i)
            g_put(&g, ",");
        g_ws(&g);
        g_put(&g, "\"");
        const char *k = top[rnd(sizeof top / sizeof top[0])];
        g_put(&g, k);
        g_put(&g, "\":");
        g_ws(&g);
        if (!strcmp(k, "temperature") || !strcmp(k, "seed") || !strcmp(k, "top_p"))
            rnd(4) ? g_number(&g) : g_value(&g, 1);
        else if (!strcmp(k, "model"))
            rnd(4) ? g_string(&g) : g_value(&g, 1);
        else
            g_value(&g, 1);
    }
    g_put(&g, "}");
    g_ws(&g);
    return (size_t)(g.p - buf);
}

static void generated(void)
{
    static const char pieces[] = "{}[]\",:\\u0e.-+1 \t\n/nft\x01\xc3";
    char buf[8192];
    long ok_before = answered;
    for (int iter = 0; iter < 100000 && t_failures < 20; iter++) {
        size_t n = g_request(buf, sizeof buf);
        if (iter % 2) {   /* and a mutation of it */
            int edits = 1 + (int)rnd(3);
            for (int e = 0; e < edits; e++)
                t_mutate(buf, &n, sizeof buf, pieces, &rng);
        }
        /* exactly n bytes, no NUL after them: a read past the end is an ASan error */
        char *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        compare(exact, n, "generated");
        free(exact);
    }
    /* the generator mostly makes bodies the scanner reads (a check that
     * cannot pass by answering nothing) */
    CHECK(answered - ok_before > 30000);
}

int main(void)
{
    CHECK_INT(drift_hasher_init(&hasher), 0);
    for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++)
        expect_ok(ordinary[i]);
    for (size_t i = 0; i < sizeof leave_to_cjson / sizeof leave_to_cjson[0]; i++)
        expect_unsure(leave_to_cjson[i]);

    /* the hashes hash.c has always given (drift_hash_test's first body) */
    const char *b = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello "
                    "benchmark\"}],\"max_tokens\":16}";
    struct drift_reqinfo in;
    CHECK_INT(drift_request_scan(&scan, &hasher, b, strlen(b), &in), DRIFT_REQ_OK);
    CHECK_STR(in.hash, "f5b66924ae48243c25b3c5577543f03274a71323e4cd088f91c761ef401cc21b");
    CHECK_INT(in.deterministic, 0);

    char *s = nested(50);
    expect_ok(s);
    free(s);
    s = nested(100);                 /* deeper than the scanner goes */
    expect_unsure(s);
    free(s);
    s = nested(100000);              /* no recursion blow-up */
    expect_unsure(s);
    free(s);
    s = wide(40, 0);                 /* sorted on the heap */
    expect_ok(s);
    free(s);
    s = wide(40, 1);                 /* duplicate keys beyond 32: qsort's order is its own */
    expect_unsure(s);
    free(s);
    s = wide(20000, 0);              /* the node array grows, */
    expect_ok(s);
    free(s);
    CHECK(scan.cap == 0);            /* and is not kept that large */
    expect_ok(ordinary[0]);
    CHECK(scan.cap > 0 && scan.cap <= 16384);

    generated();
    fprintf(stderr, "reqscan: %ld answered, %ld left to cJSON\n", answered, unsure);
    drift_reqscan_free(&scan);
    drift_hasher_clear(&hasher);
    if (t_failures)
        fprintf(stderr, "%d failures\n", t_failures);
    return t_failures != 0;
}
