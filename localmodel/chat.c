/*
 * chat.c - built-in renderers for the common chat template families.
 *
 * llmpin does not embed a Jinja interpreter. GGUF files carry their Jinja
 * template in tokenizer.chat_template; lm_chat_detect() recognises the family
 * by marker strings and lm_chat_render() writes what that template writes for
 * a plain conversation (no tools, no images), with the generation prompt.
 * The output never starts with BOS text: the caller encodes it with
 * parse_special = 1 and the tokenizer's add_bos.
 *
 * Notation below: S = system content, U1/U2 = user contents, A1 = assistant
 * content, <s>/</s> = the model's BOS/EOS token text. Example conversation:
 * system S, user U1, assistant A1, user U2.
 *
 * llama2 ("[INST]" and "<<SYS>>" in the template). Contents are trimmed of
 * surrounding whitespace, as Meta's template does. The system text goes in
 * front of the next user message:
 *   [INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]
 *
 * mistral ("[INST]" without "<<SYS>>"). No system role: the system text is
 * put in front of the next user message followed by "\n\n":
 *   [INST] S\n\nU1 [/INST]A1</s>[INST] U2 [/INST]
 *
 * llama3 ("<|start_header_id|>"). Contents trimmed:
 *   <|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>
 *   <|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>
 *   <|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>
 *   <|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>
 *   <|start_header_id|>assistant<|end_header_id|>\n\n
 * (one string, no newlines between the parts shown on separate lines).
 *
 * chatml ("<|im_start|>"):
 *   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n
 *   <|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n
 *   <|im_start|>assistant\n
 *
 * zephyr ("<|user|>" without "<|end|>"):
 *   <|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n
 *   <|user|>\nU2</s>\n<|assistant|>\n
 *
 * phi3 ("<|user|>" and "<|end|>"):
 *   <|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n
 *   <|user|>\nU2<|end|>\n<|assistant|>\n
 *
 * gemma ("<start_of_turn>"). Contents trimmed; the assistant role is called
 * "model"; no system role: the system text goes in front of the next user
 * message followed by "\n\n":
 *   <start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1
 *   <end_of_turn>\n<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n
 *
 * plain (no template, or an unknown one). One line per message with a role
 * label, then the assistant label without a trailing space; the model's
 * answer is cut at the next "\nUser:" (see lm_chat_stops):
 *   System: S\nUser: U1\nAssistant: A1\nUser: U2\nAssistant:
 *
 * Roles: system, user, assistant and tool. Families without a system role
 * (mistral, gemma) and llama2 fold system text into the next user message; a
 * trailing system message with no user after it becomes a user turn of its
 * own. A tool message is rendered as "tool" where the family has free role
 * names (chatml, llama3 as "ipython", zephyr, phi3, plain as "Tool:") and
 * as a user turn elsewhere.
 */
#include "localmodel/chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[] = {
    [LM_CHAT_PLAIN] = "plain", [LM_CHAT_LLAMA2] = "llama2", [LM_CHAT_LLAMA3] = "llama3",
    [LM_CHAT_CHATML] = "chatml", [LM_CHAT_ZEPHYR] = "zephyr", [LM_CHAT_MISTRAL] = "mistral",
    [LM_CHAT_GEMMA] = "gemma", [LM_CHAT_PHI3] = "phi3",
};
#define N_FAMILIES ((int)(sizeof NAMES / sizeof NAMES[0]))

static int contains(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

enum lm_chat_family lm_chat_detect(const char *tmpl, size_t len)
{
    if (!tmpl || len == 0) return LM_CHAT_PLAIN;
    if (contains(tmpl, len, "<|start_header_id|>")) return LM_CHAT_LLAMA3;
    if (contains(tmpl, len, "<|im_start|>")) return LM_CHAT_CHATML;
    if (contains(tmpl, len, "<start_of_turn>")) return LM_CHAT_GEMMA;
    if (contains(tmpl, len, "<|user|>"))
        return contains(tmpl, len, "<|end|>") ? LM_CHAT_PHI3 : LM_CHAT_ZEPHYR;
    if (contains(tmpl, len, "[INST]"))
        return contains(tmpl, len, "<<SYS>>") ? LM_CHAT_LLAMA2 : LM_CHAT_MISTRAL;
    return LM_CHAT_PLAIN;
}

const char *lm_chat_name(enum lm_chat_family f)
{
    if ((int)f < 0 || (int)f >= N_FAMILIES) return "plain";
    return NAMES[f];
}

int lm_chat_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < N_FAMILIES; i++)
        if (strcmp(name, NAMES[i]) == 0) return i;
    return -1;
}

const char *const *lm_chat_stops(enum lm_chat_family f)
{
    static const char *const none[] = { NULL };
    static const char *const llama3[] = { "<|eot_id|>", NULL };
    static const char *const chatml[] = { "<|im_end|>", NULL };
    static const char *const zephyr[] = { "</s>", "<|user|>", NULL };
    static const char *const phi3[] = { "<|end|>", NULL };
    static const char *const gemma[] = { "<end_of_turn>", NULL };
    static const char *const plain[] = { "\nUser:", NULL };
    switch (f) {
    case LM_CHAT_LLAMA3: return llama3;
    case LM_CHAT_CHATML: return chatml;
    case LM_CHAT_ZEPHYR: return zephyr;
    case LM_CHAT_PHI3: return phi3;
    case LM_CHAT_GEMMA: return gemma;
    case LM_CHAT_PLAIN: return plain;
    default: return none;
    }
}

/* ---- rendering ------------------------------------------------------------- */

struct sb {
    char *p;
    size_t n, cap;
    int oom;
    size_t *spans;           /* content ranges [start, end) */
    int n_spans, cap_spans;
};

static void sb_addn(struct sb *b, const char *s, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_add(struct sb *b, const char *s) { sb_addn(b, s, strlen(s)); }

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* content trimmed of surrounding whitespace */
static void sb_trim(struct sb *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && is_ws(s[i])) i++;
    while (n > i && is_ws(s[n - 1])) n--;
    sb_addn(b, s + i, n - i);
}

/* Message content: like sb_add/sb_trim, and its range is recorded. */
static void sb_content(struct sb *b, const char *s, int trim)
{
    size_t start = b->n;
    if (trim) sb_trim(b, s);
    else sb_add(b, s);
    if (b->oom || b->n == start) return;
    if (b->n_spans == b->cap_spans) {
        int nc = b->cap_spans ? b->cap_spans * 2 : 8;
        size_t *np = realloc(b->spans, (size_t)nc * 2 * sizeof *np);
        if (!np) { b->oom = 1; return; }
        b->spans = np;
        b->cap_spans = nc;
    }
    b->spans[2 * b->n_spans] = start;
    b->spans[2 * b->n_spans + 1] = b->n;
    b->n_spans++;
}

enum role { R_SYSTEM, R_USER, R_ASSISTANT, R_TOOL };

static int parse_role(const char *r)
{
    if (!r) return -1;
    if (strcmp(r, "system") == 0) return R_SYSTEM;
    if (strcmp(r, "user") == 0) return R_USER;
    if (strcmp(r, "assistant") == 0) return R_ASSISTANT;
    if (strcmp(r, "tool") == 0) return R_TOOL;
    return -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* llama2, mistral, gemma: system text is held and put in front of the next
 * user turn. */
struct turn {
    int user;                /* 1 user (or tool), 0 assistant */
    const char *sys;         /* system text folded into this user turn, or NULL */
    const char *content;
};

static void render_folding(enum lm_chat_family f, const struct lm_message *m, int n,
                           const int *roles, const char *bos, const char *eos,
                           struct turn *tv, struct sb *b)
{
    int nt = 0;
    const char *pending = NULL;
    for (int i = 0; i < n; i++) {
        const char *c = m[i].content ? m[i].content : "";
        if (roles[i] == R_SYSTEM) {
            if (pending) tv[nt++] = (struct turn){ 1, NULL, pending };
            pending = c;
        } else if (roles[i] == R_ASSISTANT) {
            if (pending) tv[nt++] = (struct turn){ 1, NULL, pending };
            pending = NULL;
            tv[nt++] = (struct turn){ 0, NULL, c };
        } else {
            tv[nt++] = (struct turn){ 1, pending, c };
            pending = NULL;
        }
    }
    if (pending) tv[nt++] = (struct turn){ 1, NULL, pending };

    for (int i = 0; i < nt; i++) {
        const struct turn *t = &tv[i];
        if (f == LM_CHAT_LLAMA2) {
            if (t->user) {
                if (i > 0) sb_add(b, bos);
                sb_add(b, "[INST] ");
                if (t->sys) {
                    sb_add(b, "<<SYS>>\n");
                    sb_content(b, t->sys, 1);
                    sb_add(b, "\n<</SYS>>\n\n");
                }
                sb_content(b, t->content, 1);
                sb_add(b, " [/INST]");
            } else {
                sb_add(b, " ");
                sb_content(b, t->content, 1);
                sb_add(b, " ");
                sb_add(b, eos);
            }
        } else if (f == LM_CHAT_MISTRAL) {
            if (t->user) {
                sb_add(b, "[INST] ");
                if (t->sys) {
                    sb_content(b, t->sys, 0);
                    sb_add(b, "\n\n");
                }
                sb_content(b, t->content, 0);
                sb_add(b, " [/INST]");
            } else {
                sb_content(b, t->content, 0);
                sb_add(b, eos);
            }
        } else {
            sb_add(b, t->user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
            if (t->sys) {
                sb_content(b, t->sys, 1);
                sb_add(b, "\n\n");
            }
            sb_content(b, t->content, 1);
            sb_add(b, "<end_of_turn>\n");
        }
    }
    if (f == LM_CHAT_GEMMA) sb_add(b, "<start_of_turn>model\n");
}

char *lm_chat_render(enum lm_chat_family f, const struct lm_message *m, int n,
                     const char *bos_text, const char *eos_text, char *err, size_t errlen)
{
    return lm_chat_render_spans(f, m, n, bos_text, eos_text, NULL, NULL, err, errlen);
}

char *lm_chat_render_spans(enum lm_chat_family f, const struct lm_message *m, int n,
                           const char *bos_text, const char *eos_text, size_t **spans,
                           int *n_spans, char *err, size_t errlen)
{
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    if (n < 0 || (n > 0 && !m)) {
        set_err(err, errlen, "chat template: invalid message list");
        return NULL;
    }
    if ((int)f < 0 || (int)f >= N_FAMILIES) {
        set_err(err, errlen, "chat template: unknown family %d", (int)f);
        return NULL;
    }
    const char *bos = bos_text ? bos_text : "<s>";
    const char *eos = eos_text ? eos_text : "</s>";
    int *roles = malloc(((size_t)n + 1) * sizeof *roles);
    if (!roles) {
        set_err(err, errlen, "chat template: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        roles[i] = parse_role(m[i].role);
        if (roles[i] < 0) {
            set_err(err, errlen, "messages[%d].role: '%.40s' is not one of system, user, "
                    "assistant, tool", i, m[i].role ? m[i].role : "(null)");
            free(roles);
            return NULL;
        }
    }
    /* folding families make at most 2 turns per message */
    struct turn *tv = malloc(((size_t)n * 2 + 1) * sizeof *tv);
    if (!tv) {
        free(roles);
        set_err(err, errlen, "chat template: out of memory");
        return NULL;
    }
    struct sb b = { 0 };

    static const char *const chatml_role[] = { "system", "user", "assistant", "tool" };
    static const char *const llama3_role[] = { "system", "user", "assistant", "ipython" };
    static const char *const plain_role[] = { "System", "User", "Assistant", "Tool" };

    switch (f) {
    case LM_CHAT_LLAMA2:
    case LM_CHAT_MISTRAL:
    case LM_CHAT_GEMMA:
        render_folding(f, m, n, roles, bos, eos, tv, &b);
        break;
    case LM_CHAT_LLAMA3:
        for (int i = 0; i < n; i++) {
            sb_add(&b, "<|start_header_id|>");
            sb_add(&b, llama3_role[roles[i]]);
            sb_add(&b, "<|end_header_id|>\n\n");
            sb_content(&b, m[i].content ? m[i].content : "", 1);
            sb_add(&b, "<|eot_id|>");
        }
        sb_add(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case LM_CHAT_CHATML:
        for (int i = 0; i < n; i++) {
            sb_add(&b, "<|im_start|>");
            sb_add(&b, chatml_role[roles[i]]);
            sb_add(&b, "\n");
            sb_content(&b, m[i].content ? m[i].content : "", 0);
            sb_add(&b, "<|im_end|>\n");
        }
        sb_add(&b, "<|im_start|>assistant\n");
        break;
    case LM_CHAT_ZEPHYR:
    case LM_CHAT_PHI3:
        for (int i = 0; i < n; i++) {
            sb_add(&b, "<|");
            sb_add(&b, chatml_role[roles[i]]);
            sb_add(&b, "|>\n");
            sb_content(&b, m[i].content ? m[i].content : "", 0);
            sb_add(&b, f == LM_CHAT_PHI3 ? "<|end|>\n" : eos);
            if (f == LM_CHAT_ZEPHYR) sb_add(&b, "\n");
        }
        sb_add(&b, "<|assistant|>\n");
        break;
    case LM_CHAT_PLAIN:
        for (int i = 0; i < n; i++) {
            sb_add(&b, plain_role[roles[i]]);
            sb_add(&b, ": ");
            sb_content(&b, m[i].content ? m[i].content : "", 0);
            sb_add(&b, "\n");
        }
        sb_add(&b, "Assistant:");
        break;
    }
    free(roles);
    free(tv);
    if (!b.p && !b.oom) {
        b.p = malloc(1);
        if (b.p) b.p[0] = '\0';
        else b.oom = 1;
    }
    if (b.oom) {
        free(b.p);
        free(b.spans);
        set_err(err, errlen, "chat template: out of memory");
        return NULL;
    }
    if (spans && n_spans) {
        *spans = b.spans;
        *n_spans = b.n_spans;
    } else {
        free(b.spans);
    }
    return b.p;
}
