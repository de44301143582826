/*
 * fuzz_chat.c - libFuzzer target for the chat templates (localmodel/chat.c)
 * and the way the engine encodes their output (lm_tok_encode_spans).
 *
 * Input: NUL-separated parts. Part 0 is a Jinja template text (as found in
 * tokenizer.chat_template), the others are messages "role:content" (no ':'
 * = a message with that role and no content). The template's detected
 * family and every other family render the messages. What must hold:
 *   - lm_chat_render and lm_chat_render_spans give the same text, or both
 *     fail with a message (an unknown role);
 *   - the spans are sorted, disjoint, inside the text, and hold exactly the
 *     messages' contents in order (trimmed by llama2, llama3 and gemma);
 *   - encoding with the spans (the in-memory vocabulary, where every
 *     family's markers are CONTROL tokens) emits one special token per
 *     marker the template wrote and none for marker text a user sent: the
 *     count equals the markers found outside the spans;
 *   - lm_chat_name / lm_chat_from_name round-trip, lm_chat_stops is a list.
 */
#include "localmodel/chat.h"
#include "tests/fuzz/fuzz_vocab.h"

#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGES 64
#define N_FAMILY 8

static struct lm_tokenizer *vocab;
static const char *special[FUZZ_N_MARKERS + 3];
static int n_special;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vocab = fuzz_vocab_small();
    special[n_special++] = "<s>";
    special[n_special++] = "</s>";
    special[n_special++] = "<unk>";
    for (size_t i = 0; i < FUZZ_N_MARKERS; i++) special[n_special++] = fuzz_markers[i];
    return 0;
}

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "fuzz_chat: " __VA_ARGS__);                   \
        fputc('\n', stderr);                                          \
        abort();                                                      \
    } while (0)

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Markers matched the way the tokenizer splits text: leftmost, longest
 * first, only wholly inside s[0..n). */
static int count_markers(const char *s, size_t n)
{
    int count = 0;
    for (size_t i = 0; i < n;) {
        size_t best = 0;
        for (int k = 0; k < n_special; k++) {
            size_t l = strlen(special[k]);
            if (l > best && l <= n - i && memcmp(s + i, special[k], l) == 0) best = l;
        }
        if (best) {
            count++;
            i += best;
        } else {
            i++;
        }
    }
    return count;
}

static void check_family(enum lm_chat_family f, const struct lm_message *m, int n)
{
    char err[256] = "", err2[256] = "";
    char *plain = lm_chat_render(f, m, n, "<s>", "</s>", err, sizeof err);
    size_t *spans = NULL;
    int ns = -1;
    char *text = lm_chat_render_spans(f, m, n, "<s>", "</s>", &spans, &ns, err2, sizeof err2);
    if (!plain != !text) FAIL("render and render_spans disagree on failing (%s)", lm_chat_name(f));
    if (!text) {
        if (!err[0] || strcmp(err, err2) != 0) FAIL("a failed render without the same message");
        if (spans || ns != 0) FAIL("a failed render left spans");
        return;
    }
    if (strcmp(plain, text) != 0) FAIL("render and render_spans differ (%s)", lm_chat_name(f));
    size_t len = strlen(text);
    if (ns < 0 || (ns > 0 && !spans)) FAIL("bad span list");

    /* the spans hold the contents, in order */
    int trim = f == LM_CHAT_LLAMA2 || f == LM_CHAT_LLAMA3 || f == LM_CHAT_GEMMA;
    size_t prev_end = 0, at = 0;
    int mi = 0;
    const char *c = NULL;
    size_t cl = 0;
    for (int s = 0; s < ns; s++) {
        size_t a = spans[2 * s], b = spans[2 * s + 1];
        if (a < prev_end || b <= a || b > len) FAIL("span %d [%zu,%zu) is out of order or outside %zu bytes", s, a, b, len);
        prev_end = b;
        /* next non-empty content */
        while (!c && mi < n) {
            c = m[mi].content ? m[mi].content : "";
            cl = strlen(c);
            if (trim) {
                while (cl && is_ws(*c)) { c++; cl--; }
                while (cl && is_ws(c[cl - 1])) cl--;
            }
            mi++;
            if (cl == 0) c = NULL;
        }
        if (!c) FAIL("span %d holds no message content (%s)", s, lm_chat_name(f));
        if (b - a != cl || memcmp(text + a, c, cl) != 0)
            FAIL("span %d [%zu,%zu) is not message %d's content (%s)", s, a, b, mi - 1, lm_chat_name(f));
        c = NULL;
        at = b;
    }
    (void)at;
    for (; mi < n; mi++) {
        const char *r = m[mi].content ? m[mi].content : "";
        size_t rl = strlen(r), i = 0;
        if (trim) {
            while (i < rl && is_ws(r[i])) i++;
        }
        if (i < rl) FAIL("message %d's content has no span (%s)", mi, lm_chat_name(f));
    }

    /* special tokens: one per marker outside the spans */
    int want = 0;
    size_t from = 0;
    for (int s = 0; s <= ns; s++) {
        size_t to = s < ns ? spans[2 * s] : len;
        want += count_markers(text + from, to - from);
        if (s < ns) from = spans[2 * s + 1];
    }
    int k = lm_tok_encode_spans(vocab, text, len, 0, spans, ns, NULL, 0);
    if (k < 0) FAIL("encode_spans refused the render's spans");
    int32_t *ids = malloc(((size_t)k + 1) * sizeof *ids);
    if (!ids) abort();
    if (lm_tok_encode_spans(vocab, text, len, 0, spans, ns, ids, k) != k) FAIL("encode count changed");
    int got = 0;
    for (int i = 0; i < k; i++) {
        int ty = lm_tok_type(vocab, ids[i]);
        got += ty == LM_TOK_CONTROL || ty == LM_TOK_UNKNOWN;
    }
    if (got != want)
        FAIL("%d special tokens encoded, %d markers outside the message contents (%s)", got, want,
             lm_chat_name(f));
    free(ids);
    free(spans);
    free(plain);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = 0;
    struct lm_message m[MAX_MESSAGES];
    int n = 0;
    size_t tlen = strlen(buf);
    for (size_t at = tlen + 1; at <= size && n < MAX_MESSAGES;) {
        char *part = buf + at;
        at += strlen(part) + 1;
        char *colon = strchr(part, ':');
        if (colon) *colon = 0;
        m[n].role = part;
        m[n].content = colon ? colon + 1 : NULL;
        n++;
    }
    enum lm_chat_family detected = lm_chat_detect(buf, tlen);
    if ((int)detected < 0 || (int)detected >= N_FAMILY) FAIL("detect gave family %d", (int)detected);
    for (int f = 0; f < N_FAMILY; f++) {
        if (lm_chat_from_name(lm_chat_name((enum lm_chat_family)f)) != f) FAIL("name of family %d", f);
        if (!lm_chat_stops((enum lm_chat_family)f)) FAIL("no stop list for family %d", f);
    }
    check_family(detected, m, n);
    for (int f = 0; f < N_FAMILY; f++)
        if (f != (int)detected) check_family((enum lm_chat_family)f, m, n);
    free(buf);
    return 0;
}
