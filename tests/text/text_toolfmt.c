/*
 * text_toolfmt.c - tool-call formats (localmodel/toolfmt.h): which format a
 * template teaches, where the calls start, and the reader that turns an
 * answer into text and calls, fed whole and byte by byte.
 */
#include "check.h"
#include "localmodel/toolfmt.h"

struct got {
    char content[512];
    int n_calls;
    char name[8][64];
    char args[8][512];
    int bad_order;              /* arguments of a call before its name */
};

static void on_ev(void *ud, const struct lm_ts_event *ev)
{
    struct got *g = ud;
    if (ev->kind == LM_TS_CONTENT) {
        strncat(g->content, ev->s, ev->n < sizeof g->content - strlen(g->content) - 1 ? ev->n : 0);
    } else if (ev->kind == LM_TS_CALL) {
        if (ev->index != g->n_calls || g->n_calls >= 8) {
            g->bad_order = 1;
            return;
        }
        snprintf(g->name[g->n_calls++], 64, "%.*s", (int)ev->n, ev->s);
    } else {
        if (ev->index >= g->n_calls) {
            g->bad_order = 1;
            return;
        }
        strncat(g->args[ev->index], ev->s, ev->n);
    }
}

/* Read out with style f, whole (step 0) or step bytes at a time. */
static struct got read_as(enum lm_tool_fmt f, const char *out, size_t step)
{
    struct got g;
    memset(&g, 0, sizeof g);
    struct lm_tscan *s = lm_tscan_new(lm_tool_style(f));
    size_t n = strlen(out);
    if (!step)
        step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        CHECK(lm_tscan_feed(s, out + i, i + step < n ? step : n - i, 0, on_ev, &g) == 0);
    CHECK(lm_tscan_feed(s, "", 0, 1, on_ev, &g) == 0);
    CHECK_INT(lm_tscan_calls(s), g.n_calls);
    lm_tscan_free(s);
    CHECK(!g.bad_order);
    return g;
}

struct rcase {
    enum lm_tool_fmt f;
    const char *out;
    const char *content;
    int n;
    const char *name[3], *args[3];
};

static const struct rcase rcases[] = {
    { LM_TOOLS_HERMES, "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
      "", 1, { "weather" }, { "{\"city\": \"Paris\", \"days\": 3}" } },
    { LM_TOOLS_HERMES, "Let me look.\n<tool_call>{\"name\":\"a\",\"arguments\":{\"s\":\"}{\\\"]\"}}</tool_call>\n"
      "<tool_call>{\"name\":\"b\\u0031\",\"arguments\":{\"x\":[1,{\"y\":null}]}}</tool_call>",
      "Let me look.\n", 2, { "a", "b1" }, { "{\"s\":\"}{\\\"]\"}", "{\"x\":[1,{\"y\":null}]}" } },
    { LM_TOOLS_HERMES, "a <tool x> and <tool_cal", "a <tool x> and <tool_cal", 0, { 0 }, { 0 } },
    { LM_TOOLS_HERMES, "<tool_call>{\"arguments\":{\"k\":1},\"name\":\"late\"}</tool_call>", "", 1, { "late" }, { "{\"k\":1}" } },
    { LM_TOOLS_GENERIC, "\n {\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"q\": \"w\"}}]}",
      "", 2, { "f", "g" }, { "{}", "{\"q\": \"w\"}" } },
    { LM_TOOLS_GENERIC, "{\"answer\": 42}", "{\"answer\": 42}", 0, { 0 }, { 0 } },
    { LM_TOOLS_GENERIC, "Sure: {\"tool_calls\": []}", "Sure: {\"tool_calls\": []}", 0, { 0 }, { 0 } },
    { LM_TOOLS_MISTRAL, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, 2]}}, {\"name\": \"g\", \"arguments\": {}}]",
      "", 2, { "f", "g" }, { "{\"a\": [1, 2]}", "{}" } },
    { LM_TOOLS_LLAMA3, "{\"name\": \"get\", \"parameters\": {\"id\": 7, \"deep\": {\"x\": \"}\"}}}", "", 1, { "get" },
      { "{\"id\": 7, \"deep\": {\"x\": \"}\"}}" } },
    { LM_TOOLS_LLAMA3, "The answer is 4.", "The answer is 4.", 0, { 0 }, { 0 } },
    /* cut short by max_tokens: the call with a name keeps what it has, one without is dropped */
    { LM_TOOLS_HERMES, "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":\"b", "", 1, { "f" }, { "{\"a\":\"b" } },
    { LM_TOOLS_HERMES, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call><tool_call>{\"na", "", 1, { "f" }, { "{}" } },
};

static void test_reader(void)
{
    for (size_t i = 0; i < sizeof rcases / sizeof *rcases; i++) {
        const struct rcase *c = &rcases[i];
        for (size_t step = 0; step < 4; step++) {
            struct got g = read_as(c->f, c->out, step);
            CHECK_MSG(strcmp(g.content, c->content) == 0, "case %zu step %zu: content \"%s\"", i, step, g.content);
            CHECK_MSG(g.n_calls == c->n, "case %zu step %zu: %d calls", i, step, g.n_calls);
            for (int k = 0; k < c->n && k < g.n_calls; k++) {
                CHECK_MSG(strcmp(g.name[k], c->name[k]) == 0, "case %zu: name %s", i, g.name[k]);
                CHECK_MSG(strcmp(g.args[k], c->args[k]) == 0, "case %zu: args %s", i, g.args[k]);
            }
        }
    }
}

static void test_detect(void)
{
    const char *hermes = "{%- if tools %}<tools>{{ tools }}</tools> Return <tool_call>...</tool_call>{%- endif %}";
    const char *mistral = "{%- if message.tool_calls %}[TOOL_CALLS][...]{%- endif %}";
    const char *llama31 = "<|start_header_id|>user<|end_header_id|> {\"name\": function name, \"parameters\": ...}";
    const char *plain = "{% for m in messages %}{{ m.content }}{% endfor %}";
    CHECK_INT(lm_tool_detect(hermes, strlen(hermes)), LM_TOOLS_HERMES);
    CHECK_INT(lm_tool_detect(mistral, strlen(mistral)), LM_TOOLS_MISTRAL);
    CHECK_INT(lm_tool_detect(llama31, strlen(llama31)), LM_TOOLS_LLAMA3);
    CHECK_INT(lm_tool_detect("<|python_tag|>", 14), LM_TOOLS_LLAMA3);
    CHECK_INT(lm_tool_detect(plain, strlen(plain)), LM_TOOLS_GENERIC);
    CHECK_INT(lm_tool_detect(NULL, 0), LM_TOOLS_GENERIC);
    CHECK(strcmp(lm_tool_style(LM_TOOLS_MISTRAL)->name, "mistral") == 0);
    CHECK_INT(lm_tool_style(LM_TOOLS_LLAMA3)->max_calls, 1);
}

static void test_trigger(void)
{
    CHECK_INT(lm_trigger_find("ab<tool_call>", 13, "<tool_call>", 0), 2);
    CHECK_INT(lm_trigger_find("ab<tool_ca", 10, "<tool_call>", 0), -1);
    CHECK_INT(lm_trigger_find(" \n{\"tool_calls\"", 15, "{\"tool_calls\"", 1), 2);
    CHECK_INT(lm_trigger_find("  {\"tool", 8, "{\"tool_calls\"", 1), -1);
    CHECK_INT(lm_trigger_find("  ", 2, "{\"tool_calls\"", 1), -1);
    CHECK_INT(lm_trigger_find("x{\"tool_calls\"", 14, "{\"tool_calls\"", 1), -2);
    CHECK_INT(lm_trigger_find("{\"answer\"", 9, "{\"tool_calls\"", 1), -2);
}

int main(void)
{
    test_detect();
    test_trigger();
    test_reader();
    DONE();
}
