/*
 * sampler.c - next-token choice and stop-string-aware text assembly.
 *
 * Sampling order (per step):
 *   1. frequency/presence penalties (OpenAI semantics) on the ids generated
 *      so far: logit -= count * frequency_penalty + (count > 0) * presence;
 *      applied through a list of distinct seen ids, so a step costs O(seen);
 *      then logit_bias: logit += bias for each id it names;
 *   2. temperature <= 0: argmax, lowest id on ties (no randomness used);
 *   3. otherwise logits / temperature; top_k keeps the k best candidates by a
 *      partial selection (quickselect, O(V) expected) and sorts only those;
 *      top_p < 1 keeps the smallest prefix of the sorted candidates whose
 *      probability mass reaches top_p, sorting a growing head of 128, 512,
 *      ... candidates rather than the whole vocabulary;
 *   4. draw from the remaining softmax with xoshiro256** seeded through
 *      splitmix64. The candidate order is a total order (logit desc, id asc),
 *      so the same seed gives the same ids on every run and platform whose
 *      float arithmetic is IEEE.
 * NaN logits count as -infinity. If nothing has finite weight, the argmax is
 * returned.
 *
 * lm_textout: bytes arrive in token-sized pieces. They first go through a
 * UTF-8 decoder that passes valid characters, keeps an incomplete trailing
 * sequence for the next push, and replaces each maximal invalid subpart by
 * U+FFFD (the Unicode "best practice"). The valid text is then searched for
 * stop strings; a suffix that is the beginning of some stop string is held
 * back until later bytes rule it out (or finish() releases it). A full match
 * ends the stream: the text before it is emitted, the rest discarded.
 */
#include "localmodel/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- PRNG ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 bits */
static double uniform01(uint64_t s[4])
{
    return (double)(xoshiro_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- sampler ---------------------------------------------------------------- */

struct cand {
    float logit;
    int32_t id;
};

struct lm_sampler {
    int n_vocab;
    float temperature, top_p, freq, pres;
    int top_k;
    uint64_t rng[4];
    int32_t *count;      /* per id: times generated */
    int32_t *seen;       /* distinct generated ids */
    int n_seen;
    int32_t *bias_id;    /* logit_bias */
    float *bias;
    int n_bias;
    struct cand *cand;   /* scratch, n_vocab */
    double *prob;        /* scratch, n_vocab */
};

struct lm_sampler *lm_sampler_new(const struct lm_params *p, int n_vocab)
{
    if (!p || n_vocab <= 0) return NULL;
    struct lm_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_vocab = n_vocab;
    s->temperature = isfinite(p->temperature) ? p->temperature : 0.0f;
    s->top_p = (isfinite(p->top_p) && p->top_p > 0.0f && p->top_p < 1.0f) ? p->top_p : 1.0f;
    s->top_k = (p->top_k > 0 && p->top_k < n_vocab) ? p->top_k : 0;
    s->freq = isfinite(p->frequency_penalty) ? p->frequency_penalty : 0.0f;
    s->pres = isfinite(p->presence_penalty) ? p->presence_penalty : 0.0f;
    uint64_t seed = p->seed;
    if (!p->has_seed) {
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)s;
        }
    }
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    s->seen = malloc((size_t)n_vocab * sizeof *s->seen);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    if (!s->count || !s->seen || !s->cand || !s->prob) {
        lm_sampler_free(s);
        return NULL;
    }
    if (p->n_bias > 0 && p->bias_id && p->bias) {
        s->bias_id = malloc((size_t)p->n_bias * sizeof *s->bias_id);
        s->bias = malloc((size_t)p->n_bias * sizeof *s->bias);
        if (!s->bias_id || !s->bias) {
            lm_sampler_free(s);
            return NULL;
        }
        for (int i = 0; i < p->n_bias; i++) {
            if (p->bias_id[i] < 0 || p->bias_id[i] >= n_vocab || !isfinite(p->bias[i]))
                continue;
            s->bias_id[s->n_bias] = p->bias_id[i];
            s->bias[s->n_bias++] = p->bias[i];
        }
    }
    return s;
}

void lm_sampler_free(struct lm_sampler *s)
{
    if (!s) return;
    free(s->count);
    free(s->seen);
    free(s->cand);
    free(s->prob);
    free(s->bias_id);
    free(s->bias);
    free(s);
}

void lm_sampler_accept(struct lm_sampler *s, int32_t id)
{
    if (id < 0 || id >= s->n_vocab) return;
    if (s->count[id]++ == 0) s->seen[s->n_seen++] = id;
}

/* a ranks before b: higher logit, then lower id */
static int cand_before(const struct cand *a, const struct cand *b)
{
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

static int cmp_cand(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    if (cand_before(a, b)) return -1;
    if (cand_before(b, a)) return 1;
    return 0;
}

static void swap_cand(struct cand *a, struct cand *b)
{
    struct cand t = *a;
    *a = *b;
    *b = t;
}

/* Rearrange c[0..n) so that its k best (by cand_before) come first. */
static void select_top(struct cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        /* median of three for the pivot */
        int mid = lo + (hi - lo) / 2;
        if (cand_before(&c[hi], &c[lo])) swap_cand(&c[hi], &c[lo]);
        if (cand_before(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (cand_before(&c[hi], &c[mid])) swap_cand(&c[hi], &c[mid]);
        struct cand pivot = c[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_before(&c[i], &pivot)) i++;
            while (cand_before(&pivot, &c[j])) j--;
            if (i <= j) {
                swap_cand(&c[i], &c[j]);
                i++;
                j--;
            }
        }
        /* [lo..j] before-or-equal pivot, [i..hi] after-or-equal */
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

int32_t lm_sampler_sample(struct lm_sampler *s, float *logits)
{
    int n = s->n_vocab;
    for (int i = 0; i < s->n_seen; i++) {
        int32_t id = s->seen[i];
        logits[id] -= (float)s->count[id] * s->freq + s->pres;
    }
    for (int i = 0; i < s->n_bias; i++)
        logits[s->bias_id[i]] += s->bias[i];   /* -inf (a grammar's mask) stays -inf */

    /* argmax (NaN never wins), lowest id on ties */
    int32_t best = 0;
    float bv = -INFINITY;
    int have = 0;
    for (int i = 0; i < n; i++) {
        float v = logits[i];
        if (isnan(v)) continue;
        if (!have || v > bv) { bv = v; best = i; have = 1; }
    }
    if (s->temperature <= 0.0f || !isfinite(bv)) return best;

    struct cand *c = s->cand;
    int m = 0;
    float inv_t = 1.0f / s->temperature;
    for (int i = 0; i < n; i++) {
        float v = logits[i];
        if (isnan(v) || v == -INFINITY) continue;
        c[m].logit = v * inv_t;
        c[m].id = i;
        m++;
    }
    if (s->top_k > 0 && s->top_k < m) {
        select_top(c, m, s->top_k);
        m = s->top_k;
    }
    double maxl = -INFINITY;
    for (int i = 0; i < m; i++) if (c[i].logit > maxl) maxl = c[i].logit;
    double sum = 0.0;
    if (s->top_p < 1.0f) {
        /* nucleus: the smallest prefix of the sorted candidates holding
         * top_p of the mass. Sort a growing head (partial selection) instead
         * of all candidates: the head is usually small. */
        for (int i = 0; i < m; i++) sum += exp((double)c[i].logit - maxl);
        double target = (double)s->top_p * sum;
        int k = s->top_k > 0 ? m : (m < 128 ? m : 128);
        int keep = m;
        for (;;) {
            if (k < m) select_top(c, m, k);
            qsort(c, (size_t)k, sizeof *c, cmp_cand);
            double cum = 0.0;
            int found = 0;
            for (int i = 0; i < k; i++) {
                cum += exp((double)c[i].logit - maxl);
                if (cum >= target) { keep = i + 1; found = 1; break; }
            }
            if (found || k == m) break;
            k = k > m / 4 ? m : k * 4;
        }
        m = keep;
    } else if (s->top_k > 0) {
        qsort(c, (size_t)m, sizeof *c, cmp_cand);
    }
    sum = 0.0;
    for (int i = 0; i < m; i++) {
        s->prob[i] = exp((double)c[i].logit - maxl);
        sum += s->prob[i];
    }
    if (!(sum > 0.0) || !isfinite(sum)) return best;
    double r = uniform01(s->rng) * sum, cum = 0.0;
    for (int i = 0; i < m; i++) {
        cum += s->prob[i];
        if (r < cum) return c[i].id;
    }
    return c[m - 1].id;
}

/* ---- text output -------------------------------------------------------------- */

struct buf {
    char *p;
    size_t n, cap;
};

static int buf_add(struct buf *b, const void *d, size_t n)
{
    if (n == 0) return 0;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return 0;
}

struct lm_textout {
    char **stop;
    size_t *stop_len;
    int n_stop;
    struct buf raw;      /* undecoded tail (an incomplete UTF-8 sequence) */
    struct buf text;     /* valid UTF-8 not yet emitted (held for stop matching) */
    struct buf out;      /* emittable */
    int taken;           /* out was handed out; clear before the next append */
    int stopped;
    int failed;          /* out of memory: behave as stopped */
};

struct lm_textout *lm_textout_new(const char *const *stop, int n_stop)
{
    struct lm_textout *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (n_stop > 0 && stop) {
        t->stop = calloc((size_t)n_stop, sizeof *t->stop);
        t->stop_len = calloc((size_t)n_stop, sizeof *t->stop_len);
        if (!t->stop || !t->stop_len) goto fail;
        for (int i = 0; i < n_stop; i++) {
            if (!stop[i] || !stop[i][0]) continue;   /* empty stops are ignored */
            size_t l = strlen(stop[i]);
            t->stop[t->n_stop] = malloc(l + 1);
            if (!t->stop[t->n_stop]) goto fail;
            memcpy(t->stop[t->n_stop], stop[i], l + 1);
            t->stop_len[t->n_stop] = l;
            t->n_stop++;
        }
    }
    return t;
fail:
    lm_textout_free(t);
    return NULL;
}

void lm_textout_free(struct lm_textout *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_stop; i++) free(t->stop[i]);
    free(t->stop);
    free(t->stop_len);
    free(t->raw.p);
    free(t->text.p);
    free(t->out.p);
    free(t);
}

static const char REPL[3] = { (char)0xef, (char)0xbf, (char)0xbd };

/* Decode raw into text. Without final, an incomplete sequence at the end
 * stays in raw. */
static int decode_raw(struct lm_textout *t, int final)
{
    const unsigned char *s = (const unsigned char *)t->raw.p;
    size_t n = t->raw.n, i = 0;
    while (i < n) {
        unsigned c = s[i];
        int need;
        unsigned lo = 0x80, hi = 0xbf;          /* range of the second byte */
        if (c < 0x80) need = 1;
        else if (c >= 0xc2 && c <= 0xdf) need = 2;
        else if (c == 0xe0) { need = 3; lo = 0xa0; }
        else if (c >= 0xe1 && c <= 0xec) need = 3;
        else if (c == 0xed) { need = 3; hi = 0x9f; }
        else if (c >= 0xee && c <= 0xef) need = 3;
        else if (c == 0xf0) { need = 4; lo = 0x90; }
        else if (c >= 0xf1 && c <= 0xf3) need = 4;
        else if (c == 0xf4) { need = 4; hi = 0x8f; }
        else need = 0;                           /* invalid lead byte */
        if (need == 0) {
            if (buf_add(&t->text, REPL, 3) < 0) return -1;
            i++;
            continue;
        }
        int j = 1;
        for (; j < need; j++) {
            if (i + (size_t)j >= n) break;
            unsigned b = s[i + (size_t)j];
            unsigned l2 = j == 1 ? lo : 0x80, h2 = j == 1 ? hi : 0xbf;
            if (b < l2 || b > h2) break;
        }
        if (j == need) {
            if (buf_add(&t->text, s + i, (size_t)need) < 0) return -1;
            i += (size_t)need;
        } else if (i + (size_t)j >= n && !final) {
            break;                               /* incomplete: wait for more */
        } else {
            if (buf_add(&t->text, REPL, 3) < 0) return -1;
            i += (size_t)j;                      /* maximal invalid subpart */
        }
    }
    if (i > 0 && n > i) memmove(t->raw.p, t->raw.p + i, n - i);
    t->raw.n = n - i;
    return 0;
}

/* Emit text[0..n) and drop it from text. */
static int emit(struct lm_textout *t, size_t n)
{
    if (n == 0) return 0;
    if (buf_add(&t->out, t->text.p, n) < 0) return -1;
    if (t->text.n > n) memmove(t->text.p, t->text.p + n, t->text.n - n);
    t->text.n -= n;
    return 0;
}

/* Search text for stop strings; emit what is safe. Returns 1 on a match. */
static int scan_stops(struct lm_textout *t, int final)
{
    const char *p = t->text.p;
    size_t n = t->text.n;
    size_t first = (size_t)-1;
    for (int i = 0; i < t->n_stop; i++) {
        if (t->stop_len[i] > n) continue;
        const char *hit = memmem(p, n, t->stop[i], t->stop_len[i]);
        if (hit && (size_t)(hit - p) < first) first = (size_t)(hit - p);
    }
    if (first != (size_t)-1) {
        if (emit(t, first) < 0) return -1;
        t->text.n = 0;
        return 1;
    }
    if (final) return emit(t, n) < 0 ? -1 : 0;
    /* longest suffix of text that is a proper prefix of some stop string */
    size_t hold = 0;
    for (int i = 0; i < t->n_stop; i++) {
        size_t max = t->stop_len[i] - 1;
        if (max > n) max = n;
        for (size_t k = max; k > hold; k--) {
            if (memcmp(p + n - k, t->stop[i], k) == 0) { hold = k; break; }
        }
    }
    size_t cut = n - hold;
    /* never split a character (stop strings could start mid-character) */
    while (cut > 0 && cut < n && ((unsigned char)p[cut] & 0xc0) == 0x80) cut--;
    return emit(t, cut) < 0 ? -1 : 0;
}

static void clear_taken(struct lm_textout *t)
{
    if (t->taken) {
        t->out.n = 0;
        t->taken = 0;
    }
}

int lm_textout_push(struct lm_textout *t, const char *bytes, size_t len)
{
    clear_taken(t);
    if (t->stopped) return 1;
    if (buf_add(&t->raw, bytes, len) < 0 || decode_raw(t, 0) < 0) goto fail;
    int r = scan_stops(t, 0);
    if (r < 0) goto fail;
    if (r == 1) t->stopped = 1;
    return r;
fail:
    t->failed = 1;
    t->stopped = 1;
    return 1;
}

void lm_textout_finish(struct lm_textout *t)
{
    clear_taken(t);
    if (t->stopped) return;
    if (decode_raw(t, 1) < 0 || scan_stops(t, 1) < 0) t->failed = 1;
    t->stopped = 1;
}

const char *lm_textout_take(struct lm_textout *t, size_t *len)
{
    clear_taken(t);
    *len = t->out.n;
    t->taken = 1;
    return t->out.n ? t->out.p : "";
}
