/*
 * text_sampler.c - lm_sampler (greedy, seeded sampling, top_k, top_p,
 * penalties) and lm_textout (UTF-8-safe chunks, stop strings).
 *
 * Sampling tests use fixed seeds, so every count below is deterministic; the
 * bounds on frequencies are wide enough to hold for any reasonable PRNG.
 */
#include "localmodel/sampler.h"
#include "tests/text/check.h"

#include <math.h>
#include <stdint.h>

static struct lm_params params(float temp, int top_k, float top_p, uint64_t seed)
{
    struct lm_params p;
    memset(&p, 0, sizeof p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.seed = seed;
    p.has_seed = 1;
    return p;
}

static int32_t sample(struct lm_sampler *s, const float *logits, int n)
{
    float tmp[1024];
    memcpy(tmp, logits, (size_t)n * sizeof *tmp);
    return lm_sampler_sample(s, tmp);
}

static void test_greedy(void)
{
    struct lm_params p = params(0, 0, 1, 1);
    float l[6] = { 0.5f, 3.0f, -1.0f, 3.0f, NAN, 2.9f };
    struct lm_sampler *s = lm_sampler_new(&p, 6);
    CHECK_INT(sample(s, l, 6), 1);                 /* tie 1 vs 3: lowest id */
    l[4] = INFINITY;
    CHECK_INT(sample(s, l, 6), 4);
    float all_nan[6] = { NAN, NAN, NAN, NAN, NAN, NAN };
    CHECK_INT(sample(s, all_nan, 6), 0);
    lm_sampler_free(s);

    /* no valid parameters -> NULL */
    CHECK(lm_sampler_new(&p, 0) == NULL);
    CHECK(lm_sampler_new(NULL, 5) == NULL);
}

static void test_seeded(void)
{
    float l[8];
    for (int i = 0; i < 8; i++) l[i] = (float)(i % 3) * 0.5f;
    int32_t a[200], b[200], c[200];
    struct lm_params p = params(1.0f, 0, 1.0f, 42);
    struct lm_sampler *s = lm_sampler_new(&p, 8);
    for (int i = 0; i < 200; i++) a[i] = sample(s, l, 8);
    lm_sampler_free(s);
    s = lm_sampler_new(&p, 8);
    for (int i = 0; i < 200; i++) b[i] = sample(s, l, 8);
    lm_sampler_free(s);
    p.seed = 43;
    s = lm_sampler_new(&p, 8);
    for (int i = 0; i < 200; i++) c[i] = sample(s, l, 8);
    lm_sampler_free(s);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    int seen[8] = { 0 };
    for (int i = 0; i < 200; i++) {
        CHECK(a[i] >= 0 && a[i] < 8);
        seen[a[i]]++;
    }
    for (int i = 0; i < 8; i++) CHECK_MSG(seen[i] > 0, "id %d never sampled", i);

    /* probabilities follow the softmax: logits 0, ln 3 -> 1/4, 3/4 */
    float two[2] = { 0.0f, logf(3.0f) };
    p = params(1.0f, 0, 1.0f, 7);
    s = lm_sampler_new(&p, 2);
    int ones = 0;
    for (int i = 0; i < 10000; i++) ones += sample(s, two, 2);
    lm_sampler_free(s);
    CHECK_MSG(ones > 7200 && ones < 7800, "id 1 sampled %d/10000 times, expected ~7500", ones);

    /* temperature 0.5 squares the odds: 1/10, 9/10 */
    p = params(0.5f, 0, 1.0f, 7);
    s = lm_sampler_new(&p, 2);
    ones = 0;
    for (int i = 0; i < 10000; i++) ones += sample(s, two, 2);
    lm_sampler_free(s);
    CHECK_MSG(ones > 8800 && ones < 9200, "id 1 sampled %d/10000 times, expected ~9000", ones);

    /* an unseeded sampler works too */
    p.has_seed = 0;
    s = lm_sampler_new(&p, 2);
    CHECK(s != NULL);
    if (s) {
        int32_t id = sample(s, two, 2);
        CHECK(id == 0 || id == 1);
    }
    lm_sampler_free(s);
}

static void test_top_k_top_p(void)
{
    enum { V = 1000 };
    static float l[V];
    uint64_t x = 99;
    for (int i = 0; i < V; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        l[i] = (float)((x >> 40) % 1000) / 100.0f;        /* many ties */
    }
    /* top_k = 1 is greedy, whatever the temperature and seed */
    struct lm_params g = params(0, 0, 1, 0);
    struct lm_sampler *gs = lm_sampler_new(&g, V);
    int32_t want = sample(gs, l, V);
    lm_sampler_free(gs);
    for (uint64_t seed = 0; seed < 20; seed++) {
        struct lm_params p = params(1.5f, 1, 1.0f, seed);
        struct lm_sampler *s = lm_sampler_new(&p, V);
        CHECK_INT(sample(s, l, V), want);
        lm_sampler_free(s);
    }

    /* top_k = 3 over equal logits keeps the three lowest ids */
    static float flat[V];
    struct lm_params p = params(1.0f, 3, 1.0f, 5);
    struct lm_sampler *s = lm_sampler_new(&p, V);
    int seen[3] = { 0 };
    for (int i = 0; i < 600; i++) {
        int32_t id = sample(s, flat, V);
        CHECK_MSG(id >= 0 && id < 3, "top_k=3 over equal logits gave id %d", id);
        if (id >= 0 && id < 3) seen[id]++;
    }
    CHECK(seen[0] > 100 && seen[1] > 100 && seen[2] > 100);
    lm_sampler_free(s);

    /* top_k = 2 on distinct logits: only the two best ever come out */
    static float d[V];
    for (int i = 0; i < V; i++) d[i] = (float)((i * 7919) % V) / 100.0f;   /* a permutation */
    int best = -1, second = -1;
    for (int i = 0; i < V; i++) {
        if (best < 0 || d[i] > d[best]) { second = best; best = i; }
        else if (second < 0 || d[i] > d[second]) second = i;
    }
    p = params(3.0f, 2, 1.0f, 11);
    s = lm_sampler_new(&p, V);
    int nb = 0, ns = 0;
    for (int i = 0; i < 1000; i++) {
        int32_t id = sample(s, d, V);
        if (id == best) nb++;
        else if (id == second) ns++;
        else CHECK_MSG(0, "top_k=2 gave id %d", id);
    }
    CHECK(nb > 0 && ns > 0);
    lm_sampler_free(s);

    /* top_p over a large vocabulary with ties: exactly the prefix of the
     * (logit desc, id asc) order holding 30% of the mass, computed here by
     * brute force, can come out */
    {
        static float fl[V];
        for (int i = 0; i < V; i++) fl[i] = l[i] * 0.1f;   /* flatter */
        static int order[V];
        for (int i = 0; i < V; i++) order[i] = i;
        for (int i = 0; i < V; i++)              /* selection sort: slow and obvious */
            for (int j = i + 1; j < V; j++)
                if (fl[order[j]] > fl[order[i]] || (fl[order[j]] == fl[order[i]] && order[j] < order[i])) {
                    int tmp = order[i]; order[i] = order[j]; order[j] = tmp;
                }
        double total = 0, cum = 0;
        for (int i = 0; i < V; i++) total += exp((double)fl[i] - fl[order[0]]);
        int keep = 0;
        while (cum < 0.3 * total) cum += exp((double)fl[order[keep++]] - fl[order[0]]);
        static char in[V];
        for (int i = 0; i < keep; i++) in[order[i]] = 1;
        CHECK_MSG(keep > 128, "nucleus of %d", keep);   /* beyond the first head */
        p = params(1.0f, 0, 0.3f, 17);
        s = lm_sampler_new(&p, V);
        int hit_last = 0;
        for (int i = 0; i < 5000; i++) {
            int32_t id = sample(s, fl, V);
            CHECK_MSG(id >= 0 && id < V && in[id], "top_p=0.3 gave id %d outside the nucleus", id);
            if (id == order[keep - 1]) hit_last = 1;
        }
        CHECK(hit_last);
        lm_sampler_free(s);
    }

    /* top_p: probabilities 0.5, 0.3, 0.2 */
    float three[3] = { logf(5.0f), logf(3.0f), logf(2.0f) };
    p = params(1.0f, 0, 0.6f, 3);
    s = lm_sampler_new(&p, 3);
    int cnt[3] = { 0 };
    for (int i = 0; i < 2000; i++) cnt[sample(s, three, 3)]++;
    lm_sampler_free(s);
    CHECK_INT(cnt[2], 0);
    CHECK(cnt[0] > cnt[1] && cnt[1] > 500);
    p = params(1.0f, 0, 0.5f, 3);
    s = lm_sampler_new(&p, 3);
    for (int i = 0; i < 200; i++) CHECK_INT(sample(s, three, 3), 0);
    lm_sampler_free(s);
    /* top_k and top_p together: k=2 leaves 0.625/0.375; p=0.6 keeps one */
    p = params(1.0f, 2, 0.6f, 3);
    s = lm_sampler_new(&p, 3);
    for (int i = 0; i < 200; i++) CHECK_INT(sample(s, three, 3), 0);
    lm_sampler_free(s);
}

static void test_penalties(void)
{
    /* logit -= count * 0.25 + 0.1 for generated ids */
    float l[3] = { 2.0f, 1.6f, 1.45f };
    struct lm_params p = params(0, 0, 1, 1);
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.1f;
    struct lm_sampler *s = lm_sampler_new(&p, 3);
    CHECK_INT(sample(s, l, 3), 0);
    lm_sampler_accept(s, 0);          /* l0 = 2.0 - 0.25 - 0.1 = 1.65 > 1.6 */
    CHECK_INT(sample(s, l, 3), 0);
    lm_sampler_accept(s, 0);          /* l0 = 2.0 - 0.5 - 0.1 = 1.4 < 1.6 */
    CHECK_INT(sample(s, l, 3), 1);
    lm_sampler_accept(s, 1);          /* l1 = 1.6 - 0.35 = 1.25; l2 = 1.45 wins */
    CHECK_INT(sample(s, l, 3), 2);
    float tmp[3] = { 2.0f, 1.6f, 1.45f };
    lm_sampler_sample(s, tmp);
    CHECK(fabsf(tmp[0] - 1.4f) < 1e-6f && fabsf(tmp[1] - 1.25f) < 1e-6f && tmp[2] == 1.45f);
    lm_sampler_accept(s, -1);         /* ignored */
    lm_sampler_accept(s, 3);
    lm_sampler_free(s);

    /* a negative presence penalty encourages repetition */
    p.frequency_penalty = 0;
    p.presence_penalty = -1.0f;
    s = lm_sampler_new(&p, 3);
    lm_sampler_accept(s, 2);
    CHECK_INT(sample(s, l, 3), 2);
    lm_sampler_free(s);
}

/* ---- textout ----------------------------------------------------------------- */

static char got[4096];
static size_t got_n;

static void take(struct lm_textout *t)
{
    size_t n;
    const char *p = lm_textout_take(t, &n);
    memcpy(got + got_n, p, n);
    got_n += n;
    got[got_n] = '\0';
}

#define TAKE_EQ(t, lit) do { got_n = 0; take(t); CHECK_MEM(got, got_n, lit); } while (0)

static void test_textout(void)
{
    /* no stops: everything flows */
    struct lm_textout *t = lm_textout_new(NULL, 0);
    CHECK_INT(lm_textout_push(t, "Hel", 3), 0);
    TAKE_EQ(t, "Hel");
    TAKE_EQ(t, "");                                   /* taken already */
    CHECK_INT(lm_textout_push(t, "lo", 2), 0);
    CHECK_INT(lm_textout_push(t, " you", 4), 0);
    TAKE_EQ(t, "lo you");
    /* multi-byte characters split across pushes */
    CHECK_INT(lm_textout_push(t, "\xc3", 1), 0);
    TAKE_EQ(t, "");
    CHECK_INT(lm_textout_push(t, "\xa9\xf0\x9f", 3), 0);
    TAKE_EQ(t, "\xc3\xa9");
    CHECK_INT(lm_textout_push(t, "\xa6", 1), 0);
    TAKE_EQ(t, "");
    CHECK_INT(lm_textout_push(t, "\x99!", 2), 0);
    TAKE_EQ(t, "\xf0\x9f\xa6\x99!");
    /* invalid bytes: one U+FFFD per maximal invalid subpart */
    CHECK_INT(lm_textout_push(t, "a\xff" "b\xe2\x28\xa1" "c\xe0\x80x", 10), 0);
    TAKE_EQ(t, "a\xef\xbf\xbd" "b\xef\xbf\xbd(\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbdx");
    CHECK_INT(lm_textout_push(t, "\xed\xa0\x80", 3), 0);       /* surrogate */
    TAKE_EQ(t, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    /* incomplete character at the end: finish turns it into U+FFFD */
    CHECK_INT(lm_textout_push(t, "z\xe2\x82", 3), 0);
    TAKE_EQ(t, "z");
    lm_textout_finish(t);
    TAKE_EQ(t, "\xef\xbf\xbd");
    CHECK_INT(lm_textout_push(t, "more", 4), 1);               /* finished */
    TAKE_EQ(t, "");
    lm_textout_free(t);

    /* a stop string split across pushes */
    const char *stops[] = { "STOP", "", "\nUser:", "\xc3\xa9!" };
    t = lm_textout_new(stops, 4);
    CHECK_INT(lm_textout_push(t, "abcST", 5), 0);
    TAKE_EQ(t, "abc");
    CHECK_INT(lm_textout_push(t, "OPxyz", 5), 1);
    TAKE_EQ(t, "");
    CHECK_INT(lm_textout_push(t, "after", 5), 1);
    lm_textout_finish(t);
    TAKE_EQ(t, "");
    lm_textout_free(t);

    /* a stop spanning many one-byte tokens; text before it is emitted */
    t = lm_textout_new(stops, 4);
    const char *toks[] = { "Sure", ".", "\n", "U", "s", "e", "r" };
    for (int i = 0; i < 7; i++) CHECK_INT(lm_textout_push(t, toks[i], strlen(toks[i])), 0);
    TAKE_EQ(t, "Sure.");
    CHECK_INT(lm_textout_push(t, ": hi", 4), 1);
    TAKE_EQ(t, "");
    lm_textout_free(t);

    /* a held prefix that turns out not to be a stop is released */
    t = lm_textout_new(stops, 4);
    CHECK_INT(lm_textout_push(t, "ST", 2), 0);
    TAKE_EQ(t, "");
    CHECK_INT(lm_textout_push(t, "O", 1), 0);
    TAKE_EQ(t, "");
    CHECK_INT(lm_textout_push(t, "RM", 2), 0);
    TAKE_EQ(t, "STORM");
    /* overlapping candidates: "SSTOP" must still stop after the first S */
    CHECK_INT(lm_textout_push(t, "SST", 3), 0);
    TAKE_EQ(t, "S");
    CHECK_INT(lm_textout_push(t, "OP", 2), 1);
    TAKE_EQ(t, "");
    lm_textout_free(t);

    /* a multi-byte stop string arriving byte by byte */
    t = lm_textout_new(stops, 4);
    const char *cafe = "caf\xc3\xa9!";
    got_n = 0;
    int r = 0;
    for (int i = 0; cafe[i] && !r; i++) {
        r = lm_textout_push(t, cafe + i, 1);
        take(t);
    }
    CHECK_INT(r, 1);
    CHECK_MEM(got, got_n, "caf");
    lm_textout_free(t);

    /* finish releases a held prefix */
    t = lm_textout_new(stops, 4);
    CHECK_INT(lm_textout_push(t, "x\nUse", 5), 0);
    TAKE_EQ(t, "x");
    lm_textout_finish(t);
    TAKE_EQ(t, "\nUse");
    lm_textout_free(t);

    /* earliest match wins when two stops are in one push */
    const char *two[] = { "cd", "bcx", "b" };
    t = lm_textout_new(two, 2);
    CHECK_INT(lm_textout_push(t, "abcd", 4), 1);
    TAKE_EQ(t, "ab");
    lm_textout_free(t);
    t = lm_textout_new(two, 3);
    CHECK_INT(lm_textout_push(t, "abcd", 4), 1);
    TAKE_EQ(t, "a");
    lm_textout_free(t);

    /* stop text matched at the very start, and with no push at all */
    t = lm_textout_new(stops, 4);
    CHECK_INT(lm_textout_push(t, "STOP now", 8), 1);
    TAKE_EQ(t, "");
    lm_textout_free(t);
    t = lm_textout_new(stops, 4);
    lm_textout_finish(t);
    TAKE_EQ(t, "");
    lm_textout_free(t);
    lm_textout_free(NULL);
}

int main(void)
{
    test_greedy();
    test_seeded();
    test_top_k_top_p();
    test_penalties();
    test_textout();
    DONE();
}
