/*
 * text_chat.c - chat template families: detection from template text,
 * names, exact renderings of system + user + assistant + user for every
 * family, edge cases (system folding, trimming, tool role, errors) and the
 * family stop strings.
 */
#include "localmodel/chat.h"
#include "tests/text/check.h"

static const struct lm_message conv[] = {
    { .role = "system", .content = "You are terse." },
    { .role = "user", .content = "Hi there" },
    { .role = "assistant", .content = "Hello!" },
    { .role = "user", .content = "What is 2+2?" },
};

static void expect(enum lm_chat_family f, const struct lm_message *m, int n, const char *want)
{
    char err[256] = "";
    char *s = lm_chat_render(f, m, n, "<s>", "</s>", err, sizeof err);
    CHECK_MSG(s != NULL, "%s: %s", lm_chat_name(f), err);
    if (!s) return;
    CHECK_MSG(strcmp(s, want) == 0, "%s:\n got: \"%s\"\nwant: \"%s\"", lm_chat_name(f), s, want);
    free(s);
}

static void test_render(void)
{
    expect(LM_CHAT_LLAMA2, conv, 4,
           "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"
           "<s>[INST] What is 2+2? [/INST]");
    expect(LM_CHAT_MISTRAL, conv, 4,
           "[INST] You are terse.\n\nHi there [/INST]Hello!</s>[INST] What is 2+2? [/INST]");
    expect(LM_CHAT_LLAMA3, conv, 4,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect(LM_CHAT_CHATML, conv, 4,
           "<|im_start|>system\nYou are terse.<|im_end|>\n"
           "<|im_start|>user\nHi there<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n"
           "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
           "<|im_start|>assistant\n");
    expect(LM_CHAT_ZEPHYR, conv, 4,
           "<|system|>\nYou are terse.</s>\n<|user|>\nHi there</s>\n<|assistant|>\nHello!</s>\n"
           "<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n");
    expect(LM_CHAT_PHI3, conv, 4,
           "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi there<|end|>\n"
           "<|assistant|>\nHello!<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n");
    expect(LM_CHAT_GEMMA, conv, 4,
           "<start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n"
           "<start_of_turn>model\nHello!<end_of_turn>\n"
           "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
           "<start_of_turn>model\n");
    expect(LM_CHAT_PLAIN, conv, 4,
           "System: You are terse.\nUser: Hi there\nAssistant: Hello!\nUser: What is 2+2?\n"
           "Assistant:");

    /* a single user message */
    const struct lm_message one[] = { { .role = "user", .content = "  hi \n" } };
    expect(LM_CHAT_LLAMA2, one, 1, "[INST] hi [/INST]");          /* trimmed */
    expect(LM_CHAT_CHATML, one, 1, "<|im_start|>user\n  hi \n<|im_end|>\n<|im_start|>assistant\n");
    expect(LM_CHAT_GEMMA, one, 1, "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");
    /* no messages: only the generation prompt */
    expect(LM_CHAT_CHATML, NULL, 0, "<|im_start|>assistant\n");
    expect(LM_CHAT_PLAIN, NULL, 0, "Assistant:");
    expect(LM_CHAT_LLAMA2, NULL, 0, "");

    /* system folding: a lone system message becomes a user turn; two in a row */
    const struct lm_message sys_only[] = { { .role = "system", .content = "Be nice." } };
    expect(LM_CHAT_LLAMA2, sys_only, 1, "[INST] Be nice. [/INST]");
    expect(LM_CHAT_GEMMA, sys_only, 1,
           "<start_of_turn>user\nBe nice.<end_of_turn>\n<start_of_turn>model\n");
    const struct lm_message two_sys[] = { { .role = "system", .content = "A" }, { .role = "system", .content = "B" }, { .role = "user", .content = "C" } };
    expect(LM_CHAT_MISTRAL, two_sys, 3, "[INST] A [/INST][INST] B\n\nC [/INST]");
    /* consecutive user turns in llama2 each start with BOS text after the first */
    const struct lm_message uu[] = { { .role = "user", .content = "a" }, { .role = "user", .content = "b" } };
    expect(LM_CHAT_LLAMA2, uu, 2, "[INST] a [/INST]<s>[INST] b [/INST]");

    /* tool messages */
    const struct lm_message tool[] = { { .role = "user", .content = "q" }, { .role = "assistant", .content = "call" }, { .role = "tool", .content = "42" } };
    expect(LM_CHAT_CHATML, tool, 3,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\ncall<|im_end|>\n"
           "<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n");
    expect(LM_CHAT_LLAMA3, tool, 3,
           "<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\ncall<|eot_id|>"
           "<|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect(LM_CHAT_MISTRAL, tool, 3, "[INST] q [/INST]call</s>[INST] 42 [/INST]");
    expect(LM_CHAT_PLAIN, tool, 3, "User: q\nAssistant: call\nTool: 42\nAssistant:");

    /* BOS/EOS text comes from the caller */
    char err[256] = "";
    char *s = lm_chat_render(LM_CHAT_LLAMA2, conv + 1, 3, "<BOS>", "<EOS>", err, sizeof err);
    CHECK(s && strcmp(s, "[INST] Hi there [/INST] Hello! <EOS><BOS>[INST] What is 2+2? [/INST]") == 0);
    free(s);
    /* NULL content renders as empty */
    const struct lm_message nul[] = { { .role = "user", .content = NULL } };
    expect(LM_CHAT_PHI3, nul, 1, "<|user|>\n<|end|>\n<|assistant|>\n");

    /* errors */
    const struct lm_message bad[] = { { .role = "user", .content = "x" }, { .role = "wizard", .content = "y" } };
    s = lm_chat_render(LM_CHAT_CHATML, bad, 2, "<s>", "</s>", err, sizeof err);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, "messages[1].role: 'wizard' is not one of system, user, assistant, tool");
    const struct lm_message nul_role[] = { { .role = NULL, .content = "y" } };
    s = lm_chat_render(LM_CHAT_CHATML, nul_role, 1, "<s>", "</s>", err, sizeof err);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, "messages[0].role: '(null)'");
    s = lm_chat_render((enum lm_chat_family)99, conv, 4, "<s>", "</s>", err, sizeof err);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, "unknown family 99");
}

static void test_spans(void)
{
    for (int f = 0; f < 8; f++) {
        char err[256] = "";
        size_t *sp = NULL;
        int ns = -1;
        char *s = lm_chat_render_spans((enum lm_chat_family)f, conv, 4, "<s>", "</s>", &sp, &ns,
                                       err, sizeof err);
        CHECK_MSG(s != NULL, "%s", err);
        if (!s) continue;
        /* each content appears as one span, in order (gemma/mistral/llama2
         * fold the system text into the first user turn: still its own span) */
        CHECK_INT(ns, 4);
        for (int i = 0; i < ns && i < 4; i++) {
            size_t a = sp[2 * i], b = sp[2 * i + 1];
            CHECK(a < b && b <= strlen(s));
            CHECK_MSG(b - a == strlen(conv[i].content) && memcmp(s + a, conv[i].content, b - a) == 0,
                      "%s: span %d is \"%.*s\"", lm_chat_name((enum lm_chat_family)f), i,
                      (int)(b - a), s + a);
        }
        char *plain = lm_chat_render((enum lm_chat_family)f, conv, 4, "<s>", "</s>", err, sizeof err);
        CHECK(plain && strcmp(plain, s) == 0);
        free(plain);
        free(s);
        free(sp);
    }
    /* empty content: no span; errors leave the outputs empty */
    const struct lm_message e[] = { { .role = "user", .content = "" } };
    size_t *sp = (size_t *)1;
    int ns = -1;
    char err[256];
    char *s = lm_chat_render_spans(LM_CHAT_CHATML, e, 1, "<s>", "</s>", &sp, &ns, err, sizeof err);
    CHECK(s && ns == 0 && sp == NULL);
    free(s);
    const struct lm_message bad[] = { { .role = "robot", .content = "x" } };
    s = lm_chat_render_spans(LM_CHAT_CHATML, bad, 1, "<s>", "</s>", &sp, &ns, err, sizeof err);
    CHECK(s == NULL && ns == 0 && sp == NULL);
}

static void test_detect(void)
{
    struct { const char *tmpl; enum lm_chat_family f; } cases[] = {
        { "{% for message in messages %}{{'<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>'}}", LM_CHAT_LLAMA3 },
        { "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}", LM_CHAT_CHATML },
        { "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
          "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}...{{ bos_token + '[INST] ' + "
          "content | trim + ' [/INST]' }}", LM_CHAT_LLAMA2 },
        { "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
          "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + "
          "eos_token}}{% endif %}{% endfor %}", LM_CHAT_MISTRAL },
        { "{% for message in messages %}\\n{% if message['role'] == 'user' %}\\n{{ '<|user|>\\n' + "
          "message['content'] + eos_token }}", LM_CHAT_ZEPHYR },
        { "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + "
          "message['content'] + '<|end|>\\n' }}{% endfor %}<|user|>", LM_CHAT_PHI3 },
        { "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + "
          "message['content'] | trim + '<end_of_turn>\\n' }}", LM_CHAT_GEMMA },
        { "{{ messages }}", LM_CHAT_PLAIN },
        { "", LM_CHAT_PLAIN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum lm_chat_family f = lm_chat_detect(cases[i].tmpl, strlen(cases[i].tmpl));
        CHECK_MSG(f == cases[i].f, "case %zu detected %s, expected %s", i, lm_chat_name(f),
                  lm_chat_name(cases[i].f));
    }
    CHECK_INT(lm_chat_detect(NULL, 0), LM_CHAT_PLAIN);
    /* length is honoured: the marker beyond len does not count */
    const char *t = "{{x}}<|im_start|>";
    CHECK_INT(lm_chat_detect(t, 5), LM_CHAT_PLAIN);

    const char *names[] = { "plain", "llama2", "llama3", "chatml", "zephyr", "mistral", "gemma", "phi3" };
    for (int i = 0; i < 8; i++) {
        CHECK(strcmp(lm_chat_name((enum lm_chat_family)i), names[i]) == 0);
        CHECK_INT(lm_chat_from_name(names[i]), i);
    }
    CHECK_INT(lm_chat_from_name("jinja"), -1);
    CHECK_INT(lm_chat_from_name(NULL), -1);
    CHECK(strcmp(lm_chat_name((enum lm_chat_family)42), "plain") == 0);
}

static int has_stop(enum lm_chat_family f, const char *s)
{
    for (const char *const *p = lm_chat_stops(f); *p; p++)
        if (strcmp(*p, s) == 0) return 1;
    return 0;
}

static void test_stops(void)
{
    CHECK(has_stop(LM_CHAT_LLAMA3, "<|eot_id|>"));
    CHECK(has_stop(LM_CHAT_CHATML, "<|im_end|>"));
    CHECK(has_stop(LM_CHAT_PHI3, "<|end|>"));
    CHECK(has_stop(LM_CHAT_GEMMA, "<end_of_turn>"));
    CHECK(has_stop(LM_CHAT_ZEPHYR, "</s>"));
    CHECK(has_stop(LM_CHAT_PLAIN, "\nUser:"));
    CHECK(lm_chat_stops(LM_CHAT_LLAMA2)[0] == NULL);
    CHECK(lm_chat_stops(LM_CHAT_MISTRAL)[0] == NULL);
    CHECK(lm_chat_stops((enum lm_chat_family)42) != NULL);
}

int main(void)
{
    test_render();
    test_spans();
    test_detect();
    test_stops();
    DONE();
}
