/*
 * drift_probe_test.c - built-in suites are balanced and their answers are
 * right (checked here independently by trial division and arithmetic);
 * grading reads the conclusion of free text; the JSONL loader reports
 * errors with file and line.
 */
#include "drift_test.h"

static int is_prime(int n)
{
    if (n < 2)
        return 0;
    for (int f = 2; f * f <= n; f++)
        if (n % f == 0)
            return 0;
    return 1;
}

static const char *content(const struct drift_probe *p)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(p->messages, 0), "content"));
}

static void check_primes_suite(void)
{
    char err[512];
    struct drift_probe_suite *s = drift_probe_suite_load("builtin:primes", err, sizeof err);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(s->n, 1000);
    int yes = 0, even = 0, small = 0, hard = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct drift_probe *p = &s->probes[i];
        int n = 0;
        CHECK(sscanf(p->id, "prime-%d", &n) == 1);
        CHECK(n >= 1000 && n <= 20000);
        CHECK(p->kind == DRIFT_EXPECT_YESNO);
        CHECK_STR(p->expect, is_prime(n) ? "yes" : "no");
        char want[200];
        snprintf(want, sizeof want, "Is %d a prime number? Think step by step and then answer "
                 "\"[Yes]\" or \"[No]\".", n);
        CHECK_STR(content(p), want);
        yes += is_prime(n);
        if (!is_prime(n)) {
            int f = 2;
            while (n % f)
                f++;
            even += f == 2;
            small += f > 2 && f <= 7;
            hard += f >= 11;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(s->probes[k].id, p->id) == 0) {
                fprintf(stderr, "duplicate id %s\n", p->id);
                t_failures++;
            }
    }
    CHECK_INT(yes, 500);                       /* exactly half primes */
    CHECK_INT(even, 100);                      /* composites: a mix, mostly odd */
    CHECK_INT(small, 150);
    CHECK_INT(hard, 250);
    /* the same suite every time (stable ids across restarts) */
    struct drift_probe_suite *s2 = drift_probe_suite_load("builtin:primes", err, sizeof err);
    CHECK(s2 && s2->n == s->n);
    for (size_t i = 0; s2 && i < s->n; i++)
        CHECK(strcmp(s->probes[i].id, s2->probes[i].id) == 0);
    drift_probe_suite_free(s2);
    drift_probe_suite_free(s);
}

static void check_default_suite(void)
{
    char err[512];
    struct drift_probe_suite *s = drift_probe_suite_load("builtin:default", err, sizeof err);
    CHECK(s != NULL);
    if (!s)
        return;
    int primes = 0, yes = 0, mul = 0, add = 0, rev = 0, cnt = 0, json = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct drift_probe *p = &s->probes[i];
        int a, b;
        char w[64], expect[64], letter;
        if (strncmp(p->id, "prime-", 6) == 0) {
            primes++;
            yes += strcmp(p->expect, "yes") == 0;
        } else if (sscanf(p->id, "mul-%d-%d", &a, &b) == 2) {
            mul++;
            snprintf(expect, sizeof expect, "%d", a * b);
            CHECK_STR(p->expect, expect);
            char out[128];
            snprintf(out, sizeof out, "%d times %d: let me compute.\n\n**%d**", a, b, a * b);
            CHECK(drift_probe_grade(p, out) == 1);
        } else if (sscanf(p->id, "add-%d-%d", &a, &b) == 2) {
            add++;
            snprintf(expect, sizeof expect, "%d", a + b);
            CHECK_STR(p->expect, expect);
        } else if (sscanf(p->id, "rev-%63s", w) == 1) {
            rev++;
            size_t n = strlen(w);
            for (size_t k = 0; k < n; k++)
                expect[k] = w[n - 1 - k];
            expect[n] = '\0';
            CHECK_STR(p->expect, expect);
        } else if (sscanf(p->id, "count-%c-%63s", &letter, w) == 2) {
            cnt++;
            int c = 0;
            for (char *q = w; *q; q++)
                c += *q == letter;
            snprintf(expect, sizeof expect, "%d", c);
            CHECK_STR(p->expect, expect);
            CHECK(c >= 1);
        } else if (strncmp(p->id, "json-", 5) == 0) {
            json++;
            CHECK(p->kind == DRIFT_EXPECT_JSON);
        } else {
            fprintf(stderr, "unexpected probe id %s\n", p->id);
            t_failures++;
        }
        CHECK(p->params && cJSON_GetObjectItem(p->params, "temperature"));
    }
    CHECK_INT(primes, 100);
    CHECK_INT(yes, 50);
    CHECK(mul >= 28 && add >= 28);
    CHECK_INT(rev, 20);
    CHECK_INT(cnt, 20);
    CHECK_INT(json, 20);
    /* a request body for the scheduler */
    cJSON *req = drift_probe_request(&s->probes[0], "gpt-4o");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(req, "model")), "gpt-4o");
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(req, "messages")));
    CHECK(cJSON_GetObjectItem(req, "temperature")->valuedouble == 0);
    cJSON_Delete(req);
    CHECK(drift_probe_suite_load("builtin:nope", err, sizeof err) == NULL);
    CHECK(strstr(err, "builtin:nope: unknown built-in suite") != NULL);
    drift_probe_suite_free(s);
}

static struct drift_probe_suite *parse(const char *text, char *err, size_t n)
{
    return drift_probe_suite_parse(text, strlen(text), "s.jsonl", err, n);
}

static void check_grading(void)
{
    char err[512], ans[256];
    const char *text =
        "# a comment line\n"
        "\n"
        "{\"id\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":\"Is 7919 prime?\"}],\"expect\":{\"yesno\":\"Yes\"}}\n"
        "{\"id\":\"i\",\"messages\":[{\"role\":\"user\",\"content\":\"123*456?\"}],\"expect\":{\"int\":56088}}\n"
        "{\"id\":\"r\",\"messages\":[{\"role\":\"user\",\"content\":\"reverse hello\"}],\"expect\":{\"bracket\":\"olleh\"}}\n"
        "{\"id\":\"j\",\"messages\":[{\"role\":\"user\",\"content\":\"json\"}],\"expect\":{\"json\":{\"id\":5,\"name\":\"x\",\"ok\":true}}}\n"
        "{\"id\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"say Paris\"}],\"params\":{\"temperature\":0},\"expect\":{\"exact\":\"Paris\"},\"tags\":[\"geo\"]}\n"
        "{\"id\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"say Paris\"}],\"expect\":{\"icase\":\"paris\"}}\n"
        "{\"id\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"capital?\"}],\"expect\":{\"regex\":\"\\\\bparis\\\\b\"}}\n";
    struct drift_probe_suite *s = parse(text, err, sizeof err);
    if (!s) {
        fprintf(stderr, "parse: %s\n", err);
        t_failures++;
        return;
    }
    CHECK_INT(s->n, 7);
    const struct drift_probe *p = drift_probe_suite_find(s, "p");
    CHECK(drift_probe_grade(p, "Let me check divisors up to 88... none divide it. [Yes]") == 1);
    CHECK(drift_probe_grade(p, "**[yes]**") == 1);
    CHECK(drift_probe_grade(p, "At first [Yes], but wait: 7919 = 7 x 1131.3, hmm. Final: [No]") == 0);
    CHECK(drift_probe_grade(p, "No divisor works, so yes, it is prime.") == 1);
    CHECK(drift_probe_extract(p, "Nope. Nobody knows.", ans, sizeof ans) == -1);
    CHECK(drift_probe_extract(p, "I'm sorry, I can't help with that.", ans, sizeof ans) == -1);
    CHECK(drift_output_is_refusal("I'm sorry, I can't help with that."));
    CHECK(!drift_output_is_refusal("7919 is prime. [Yes]"));
    CHECK(drift_probe_extract(p, "so the answer is [No].", ans, sizeof ans) == 0);
    CHECK_STR(ans, "no");

    p = drift_probe_suite_find(s, "i");
    CHECK(drift_probe_grade(p, "123 * 456 = 56,088\n\n56088") == 1);
    CHECK(drift_probe_grade(p, "The answer is 56,088.") == 1);
    CHECK(drift_probe_grade(p, "56088.0") == 1);
    CHECK(drift_probe_grade(p, "56088 is close; the exact value is 56089") == 0);
    CHECK(drift_probe_grade(p, "about 56088.5") == 0);
    CHECK(drift_probe_extract(p, "x = -12", ans, sizeof ans) == 0);
    CHECK_STR(ans, "-12");
    CHECK(drift_probe_extract(p, "a list: 3, 5, 7", ans, sizeof ans) == 0);
    CHECK_STR(ans, "7");
    CHECK(drift_probe_extract(p, "no digits here", ans, sizeof ans) == -1);

    p = drift_probe_suite_find(s, "r");
    CHECK(drift_probe_grade(p, "The reversed word is [Olleh]") == 1);
    CHECK(drift_probe_grade(p, "like [abc]... so: [ \"olleh\" ]") == 1);
    CHECK(drift_probe_grade(p, "olleh") == 0);

    p = drift_probe_suite_find(s, "j");
    CHECK(drift_probe_grade(p, "```json\n{\"name\": \"x\", \"ok\": true, \"id\": 5}\n```") == 1);
    CHECK(drift_probe_grade(p, "{\"name\":\"x\",\"ok\":true,\"id\":5,\"extra\":1}") == 0);
    CHECK(drift_probe_grade(p, "{\"name\":\"x\",\"ok\":true,\"id\":\"5\"}") == 0);
    CHECK(drift_probe_grade(p, "Sure! {name: x}") == 0);
    CHECK(drift_probe_extract(p, "Sure! {name: x}", ans, sizeof ans) == -1);

    p = drift_probe_suite_find(s, "x");
    CHECK(p && p->n_tags == 1 && strcmp(p->tags[0], "geo") == 0);
    CHECK(drift_probe_grade(p, "  Paris\n") == 1);
    CHECK(drift_probe_grade(p, "paris") == 0);
    p = drift_probe_suite_find(s, "c");
    CHECK(drift_probe_grade(p, "PARIS") == 1);
    CHECK(drift_probe_grade(p, "Paris.") == 0);
    p = drift_probe_suite_find(s, "g");
    CHECK(drift_probe_grade(p, "The capital is PARIS, of course.") == 1);
    CHECK(drift_probe_grade(p, "Parisian") == 0);
    drift_probe_suite_free(s);
}

static void check_loader_errors(void)
{
    char err[512];
    const char *ok = "{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"x\"}}\n";
    struct {
        const char *text, *msg;
    } cases[] = {
        {"\n\n{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"foo\":\"x\"}}\n",
         "s.jsonl:3: expect: unknown kind \"foo\""},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"x\"}}\n{\"id\": \n",
         "s.jsonl:2:"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"x\"}}\n"
         "{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"y\"}}\n",
         "s.jsonl:2: id: duplicate id \"a\""},
        {"{\"id\":\"a\",\"messages\":[],\"expect\":{\"exact\":\"x\"}}\n", "s.jsonl:1: messages: missing"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\"}],\"expect\":{\"exact\":\"x\"}}\n",
         "s.jsonl:1: messages[0].content"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"regex\":\"(\"}}\n",
         "s.jsonl:1: expect.regex:"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"int\":1.5}}\n",
         "s.jsonl:1: expect.int: 1.5 is not an integer"},
        /* found by tests/fuzz/fuzz_probe_suite (UBSan: float-cast-overflow) */
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"int\":1e300}}\n",
         "s.jsonl:1: expect.int: 1e+300 is not an integer within +-9.2e18"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"x\",\"icase\":\"x\"}}\n",
         "s.jsonl:1: expect: holds more than one kind"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expected\":{\"exact\":\"x\"}}\n",
         "s.jsonl:1: unknown field \"expected\""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"x\"}}\n",
         "s.jsonl:1: id: missing"},
        {"{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"expect\":{\"exact\":\"x\"}} {}\n",
         "s.jsonl:1:"},
        {"# only a comment\n", "s.jsonl: no probes"},
        /* found by tests/fuzz/fuzz_probe_suite: params and messages are sent as they are */
        {"{\"id\":\"d\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
         "\"params\":{\"temperature\":0,\"temperature\":1},\"expect\":{\"exact\":\"x\"}}\n",
         "s.jsonl:1: duplicate key \"temperature\""},
        {"{\"id\":\"d\",\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"q\"}],"
         "\"expect\":{\"exact\":\"x\"}}\n",
         "s.jsonl:1: duplicate key \"role\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        struct drift_probe_suite *s = parse(cases[i].text, err, sizeof err);
        if (s || strncmp(err, cases[i].msg, strlen(cases[i].msg)) != 0) {
            fprintf(stderr, "loader case %zu: got \"%s\", want prefix \"%s\"\n", i, err,
                    cases[i].msg);
            t_failures++;
        }
        drift_probe_suite_free(s);
    }
    struct drift_probe_suite *s = parse(ok, err, sizeof err);
    CHECK(s && s->n == 1);
    drift_probe_suite_free(s);
    CHECK(drift_probe_suite_load("/nonexistent/suite.jsonl", err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/suite.jsonl: cannot open probe suite") != NULL);
}

int main(void)
{
    check_primes_suite();
    check_default_suite();
    check_grading();
    check_loader_errors();
    return t_done("drift_probe_test");
}
