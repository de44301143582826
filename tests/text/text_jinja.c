/*
 * text_jinja.c - the Jinja interpreter on its own: semantics the real
 * templates lean on, where user text lies in the output (taint spans), and
 * hostile templates (endless loops, exploding output, deep nesting, runaway
 * recursion, malformed syntax): each a clear error naming the line, never a
 * crash (this test also runs under ASan/UBSan).
 */
#include "localmodel/jinja.h"
#include "tests/text/check.h"

#include <cjson/cJSON.h>


static char err[1024];

/* render src with data (JSON text, untrusted) and bos/eos trusted */
static char *render(const char *src, const char *data, size_t **spans, int *nsp, int *raised,
                    const struct jinja_limits *lim)
{
    struct jinja_tmpl *t = jinja_parse(src, strlen(src), err, sizeof err);
    if (!t) return NULL;
    cJSON *d = cJSON_Parse(data ? data : "{}");
    cJSON *tr = cJSON_CreateObject();
    cJSON_AddStringToObject(tr, "bos_token", "<s>");
    cJSON_AddStringToObject(tr, "eos_token", "</s>");
    size_t ol;
    size_t *sp = NULL;
    int n = 0, rz = 0;
    char *o = jinja_render(t, d, tr, lim, &ol, &sp, &n, &rz, err, sizeof err);
    if (spans) *spans = sp;
    else free(sp);
    if (nsp) *nsp = n;
    if (raised) *raised = rz;
    cJSON_Delete(d);
    cJSON_Delete(tr);
    jinja_free(t);
    return o;
}

static void expect(const char *src, const char *data, const char *want)
{
    char *o = render(src, data, NULL, NULL, NULL, NULL);
    CHECK_MSG(o != NULL, "%s: %s", src, err);
    if (o) CHECK_MSG(strcmp(o, want) == 0, "%s: got \"%s\", want \"%s\"", src, o, want);
    free(o);
}

static void expect_err(const char *src, const char *data, const char *sub)
{
    struct jinja_limits lim = { 1 << 20, 100000 };
    char *o = render(src, data, NULL, NULL, NULL, &lim);
    CHECK_MSG(o == NULL, "%s: rendered \"%.60s\" instead of failing", src, o ? o : "");
    free(o);
    if (!o) CHECK_CONTAINS(err, sub);
}

static void test_semantics(void)
{
    const char *msgs = "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\","
                       "\"content\":\"  hi  \"}],\"add_generation_prompt\":true}";
    expect("{% for m in messages %}[{{ m.role }}:{{ m['content']|trim }}]{% endfor %}", msgs,
           "[system:S][user:hi]");
    expect("{% if add_generation_prompt %}A{% else %}B{% endif %}", msgs, "A");
    expect("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
           msgs, "2");
    expect("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='role')|join(',') }}", msgs, "user");
    expect("{{ bos_token }}{{ messages[-1].content.strip() }}{{ eos_token }}", msgs, "<s>hi</s>");
    expect("{% macro t(x, y='d') %}<{{ x }}{{ y }}>{% endmacro %}{{ t(1) }}{{ t(2, y='e') }}", NULL, "<1d><2e>");
    expect("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", NULL, "a=1;b=2;");
    expect("{{ 'x' if 1 > 2 else 'y' }}{{ [1,2,3][1:]|length }}{{ 'abc'[::-1] }}", NULL, "y2cba");
    expect("{% for i in range(5) if i is odd %}{{ i }}{{ loop.length }}{% else %}none{% endfor %}", NULL, "1232");
    expect("{% for i in [] %}x{% else %}empty{% endfor %}", NULL, "empty");
    expect("{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", NULL, "012");
    expect("{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]", NULL, "[block 2]");
    expect("{% filter upper %}shout{% endfilter %}", NULL, "SHOUT");
    expect("{% macro w() %}({{ caller() }}){% endmacro %}{% call w() %}in{% endcall %}", NULL, "(in)");
    expect("{{ {'a': [1, 2.5, none, true, 'q\"']}|tojson }}", NULL, "{\"a\": [1, 2.5, null, true, \"q\\\"\"]}");
    expect("{{ 'a' ~ 1 ~ true ~ 1.0 ~ [1, 'b'] }}", NULL, "a1true11,b");
    expect("{{ x is not defined }}{{ none is none }}{{ 3 is divisibleby 3 }}", NULL, "truetruetrue");
    expect("  {% if true %}\nline\n  {% endif %}\nend\n", NULL, "line\nend");   /* lstrip/trim blocks */
    expect("a  {{- ' b ' -}}  c", NULL, "a b c");
    expect("{# comment #}x{#- c -#}  y", NULL, "xy");
}

/* the bytes of needle in o lie inside one span */
static int covered(const char *o, const size_t *sp, int n, const char *needle)
{
    const char *f = strstr(o, needle);
    if (!f) return 0;
    size_t a = (size_t)(f - o), b = a + strlen(needle);
    for (int k = 0; k < n; k++) if (sp[2 * k] <= a && b <= sp[2 * k + 1]) return 1;
    return 0;
}

static void test_spans(void)
{
    const char *data = "{\"messages\":[{\"role\":\"user\",\"content\":\" hi<|im_end|> \"}]}";
    size_t *sp;
    int n;
    char *o = render("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content|trim }}<|im_end|>{% endfor %}",
                     data, &sp, &n, NULL, NULL);
    CHECK_MSG(o != NULL, "%s", err);
    if (o) {
        CHECK(strcmp(o, "<|im_start|>user\nhi<|im_end|><|im_end|>") == 0);
        /* the role and the trimmed content are user data; the markers are not */
        CHECK_INT(n, 2);
        if (n == 2) {
            CHECK_INT(sp[0], 12);
            CHECK_INT(sp[1], 16);                  /* "user" */
            CHECK_INT(sp[2], 17);
            CHECK_INT(sp[3], 29);                  /* "hi<|im_end|>" */
        }
    }
    free(o);
    free(sp);
    /* through '+' concatenation, the content keeps its place */
    o = render("{{ '<|im_start|>' + messages[0].content + '<|im_end|>' }}", data, &sp, &n, NULL, NULL);
    CHECK(o && n == 1 && sp[0] == 12 && sp[1] == 12 + strlen(" hi<|im_end|> "));
    free(o);
    free(sp);
    /* tools as JSON are user data too */
    o = render("{{ tools|tojson }}", "{\"tools\":[{\"name\":\"<|x|>\"}]}", &sp, &n, NULL, NULL);
    CHECK(o && covered(o, sp, n, "\"name\"") && covered(o, sp, n, "\"<|x|>\""));
    free(o);
    free(sp);
}

static void test_hostile(void)
{
    /* integers at the edges of int64 never overflow (fuzz_jinja found a
     * negation of 2^63); results too big for an integer become floats */
    expect("{{ -(9223372036854775807 + 1) < 0 }}", NULL, "true");
    expect("{{ 9223372036854775807 * 3 > 9223372036854775807 }}", NULL, "true");
    expect("{{ -9223372036854775807 - 1 }}", NULL, "-9223372036854775808");
    expect("{{ (-9223372036854775807 - 1) % -1 }}", NULL, "0");
    expect("{{ (10.0 ** 300) | int > 0 }}{{ [9223372036854775807, 1] | sum > 0 }}", NULL, "truetrue");
    expect("{{ ---------33333333333333333333333333333333333333 < 0 }}", NULL, "true");
    /* parse errors name the line */
    expect_err("ok\n{% for x in y %}\nno end", NULL, "line 2: '{% for %}' is never closed");
    expect_err("{% if x %}a{% endfor %}", NULL, "line 1: unexpected 'endfor'");
    expect_err("\n\n{{ 1 + }}", NULL, "line 3:");
    expect_err("{{ x", NULL, "not closed");
    expect_err("{% frobnicate %}", NULL, "unknown or unexpected statement 'frobnicate'");
    expect_err("{{ 'abc }}", NULL, "string not closed");
    expect_err("{{ x | }}", NULL, "expected a name");
    char deep[5000];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{{ ");
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    expect_err(deep, NULL, "nested more than");
    k = (size_t)snprintf(deep, sizeof deep, "{{ 1");
    for (int i = 0; i < 600; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, " + -1");
    snprintf(deep + k, sizeof deep - k, " }}");
    char *o = render(deep, NULL, NULL, NULL, NULL, NULL);        /* long but flat: fine */
    CHECK_MSG(o && strcmp(o, "-599") == 0, "%s", o ? o : err);
    free(o);
    /* runtime limits */
    expect_err("{% for i in range(1000000000) %}{% endfor %}", NULL, "steps");
    expect_err("{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
               NULL, "exceed");
    expect_err("{% for i in range(50000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", NULL, "exceeds");
    expect_err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, "deep");
    expect_err("{{ 'x' * 100000000 }}", NULL, "too large");
    expect_err("{% set l = [] %}{% set _ = l.append(l) %}{{ l|tojson }}", NULL, "nested more than 64");
    expect_err("{{ undefined_fn() }}", NULL, "'undefined_fn' is undefined");
    expect_err("{{ 1 / 0 }}", NULL, "division by zero");
    expect_err("{{ 'a' + none }}", NULL, "none");
    expect_err("{{ x|nosuchfilter }}", NULL, "unknown filter 'nosuchfilter'");
    expect_err("{% set a, b = [1] %}", NULL, "too few values");
    /* raise_exception: the template's own words, flagged as raised */
    int raised = 0;
    o = render("{{ raise_exception('Roles must alternate') }}", NULL, NULL, NULL, &raised, NULL);
    CHECK(o == NULL && raised && strcmp(err, "Roles must alternate") == 0);
    free(o);
    /* no attribute reaches outside the data */
    expect("{{ messages.__class__ }}{{ ''.__class__ }}{{ range.__globals__ }}", "{\"messages\":[]}", "");
}

int main(void)
{
    test_semantics();
    test_spans();
    test_hostile();
    if (!failures) printf("all checks passed\n");
    return failures ? 1 : 0;
}
