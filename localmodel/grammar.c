/*
 * grammar.c - matching bytes against a compiled grammar, and the masks of
 * the tokens that may come next (see grammar.h for the shape).
 *
 * A parse stack is a chain of frames (node, position, parent). Frames are
 * interned, so a stack is one integer and two equal stacks are the same
 * integer; frame 0 is the empty stack (the document is complete). A frame
 * on top of a stack is expanded ("closure") until every stack has a byte
 * set on top; those terminal stacks, sorted, are a state, also interned.
 * Feeding byte b to a state pops every terminal stack whose set has b and
 * expands what is under it; the result is remembered in the state's
 * transition table, so after warm-up a byte costs one load. This is a DFA
 * built lazily from the grammar's pushdown automaton, bounded by how far
 * generation actually goes.
 *
 * Masks: the vocabulary trie is walked from the current state; a subtree
 * is skipped at the first byte the state refuses, so a state that allows
 * few bytes (after a key, inside a number) visits a few hundred trie nodes.
 * A state that allows almost everything (inside a free string) visits most
 * of the trie once, and its mask is then reused for as long as the string
 * goes on: the mask is cached per state.
 *
 * Bounds: the number of states and the memory of cached masks are capped;
 * past the cap the DFA is dropped and rebuilt from the current state
 * (frames and their closures stay).
 */
#include "localmodel/grammar.h"
#include "localmodel/grammar_int.h"
#include "localmodel/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STATES 8192
#define MAX_MASK_BYTES ((size_t)128 << 20)
#define MAX_FRAMES (1 << 23)

/* ---- finishing a grammar ----------------------------------------------------------- */

int g_finish(struct lm_grammar *g, char *err, size_t errlen)
{
    int n = g->n_nodes;
    uint8_t *prod = calloc((size_t)n, 1), *null = calloc((size_t)n, 1);
    if (!prod || !null) {
        free(prod);
        free(null);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* productive: derives some finite byte string; nullable: the empty one.
     * Least fixpoints by sweeps (nodes are mostly built kids first). */
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            const struct gnode *x = &g->nodes[i];
            int p = 0, e = 0;
            switch (x->kind) {
            case G_BYTES:
                for (int w = 0; w < 8; w++)
                    p |= g->sets[x->set][w] != 0;
                break;
            case G_SEQ:
                p = e = 1;
                for (int k = 0; k < x->n; k++) {
                    p &= prod[g->kids[x->a + k]];
                    e &= null[g->kids[x->a + k]];
                }
                break;
            case G_ALT:
                for (int k = 0; k < x->n; k++) {
                    p |= prod[g->kids[x->a + k]];
                    e |= null[g->kids[x->a + k]];
                }
                break;
            case G_REP:
                p = x->n == 0 || prod[x->a];
                e = x->n == 0 || null[x->a];
                break;
            }
            if (p != prod[i] || e != null[i]) {
                prod[i] = (uint8_t)(prod[i] | p);
                null[i] = (uint8_t)(null[i] | e);
                changed = 1;
            }
        }
    }
    if (!prod[g->root]) {
        snprintf(err, errlen, "schema: no document can satisfy it (a '$ref' recursion without a base case, or "
                 "requirements that contradict each other)");
        free(prod);
        free(null);
        return -1;
    }
    /* drop what cannot complete: a matcher never enters a dead end */
    for (int i = 0; i < n; i++) {
        struct gnode *x = &g->nodes[i];
        if (x->kind == G_ALT) {
            int k = 0;
            for (int j = 0; j < x->n; j++)
                if (prod[g->kids[x->a + j]])
                    g->kids[x->a + k++] = g->kids[x->a + j];
            x->n = k;
        } else if (x->kind == G_REP && !prod[x->a]) {
            x->max = 0;   /* only productive when min is 0: zero times */
        }
    }
    /* left recursion (a node reachable from itself without a byte between)
     * would expand forever: DFS over "may start with" edges from the root */
    uint8_t *color = calloc((size_t)n, 1);
    int32_t *stk = malloc((size_t)n * 2 * sizeof *stk);
    int rc = 0;
    if (!color || !stk) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        goto out;
    }
    int sp = 0;
    stk[sp++] = g->root;
    stk[sp++] = 0;
    color[g->root] = 1;
    while (sp > 0 && rc == 0) {
        int node = stk[sp - 2], k = stk[sp - 1];
        const struct gnode *x = &g->nodes[node];
        int next = -1;
        if (x->kind == G_ALT && k < x->n) {
            next = g->kids[x->a + k];
        } else if (x->kind == G_SEQ && k < x->n && (k == 0 || null[g->kids[x->a + k - 1]])) {
            next = g->kids[x->a + k];
        } else if (x->kind == G_REP && k == 0 && x->max != 0) {
            next = x->a;
        } else {
            color[node] = 2;
            sp -= 2;
            continue;
        }
        stk[sp - 1] = k + 1;
        if (color[next] == 1) {
            snprintf(err, errlen, "schema: a '$ref' recursion that writes nothing before it recurs (a value "
                     "defined as itself)");
            rc = -1;
        } else if (color[next] == 0) {
            color[next] = 1;
            stk[sp++] = next;
            stk[sp++] = 0;
        }
    }
out:
    free(color);
    free(stk);
    free(prod);
    free(null);
    return rc;
}

/* ---- vocabulary trie -------------------------------------------------------------------- */

/* Node i: reached by byte[i]; children [cfirst, cfirst + cn); the tokens
 * whose bytes end here are ids[tfirst .. tfirst + tn). */
struct lm_vtrie {
    int n_vocab;
    int n_nodes;
    uint8_t *byte;
    int32_t *cfirst, *tfirst;
    uint16_t *cn;
    int32_t *tn;
    int32_t *ids;      /* token ids sorted by their bytes */
};

struct piece { const char *p; uint32_t len; int32_t id; };

static int piece_cmp(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, m);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : x->id - y->id;
}

struct lm_vtrie *lm_vtrie_new(const struct lm_tokenizer *t)
{
    int nv = lm_tok_n_vocab(t);
    struct lm_vtrie *vt = calloc(1, sizeof *vt);
    struct piece *ps = malloc((size_t)nv * sizeof *ps);
    if (!vt || !ps)
        goto oom;
    vt->n_vocab = nv;
    int np = 0;
    size_t total = 0;
    for (int32_t id = 0; id < nv; id++) {
        size_t len;
        const char *p = lm_tok_piece(t, -2, id, &len);
        if (len == 0 || lm_tok_type(t, id) == LM_TOK_CONTROL || lm_tok_is_eog(t, id))
            continue;
        ps[np++] = (struct piece){ p, (uint32_t)len, id };
        total += len;
    }
    qsort(ps, (size_t)np, sizeof *ps, piece_cmp);
    /* at most one node per byte of every piece, plus the root */
    size_t cap = total + 1;
    vt->byte = malloc(cap);
    vt->cfirst = malloc(cap * sizeof *vt->cfirst);
    vt->tfirst = malloc(cap * sizeof *vt->tfirst);
    vt->cn = malloc(cap * sizeof *vt->cn);
    vt->tn = malloc(cap * sizeof *vt->tn);
    vt->ids = malloc(((size_t)np + 1) * sizeof *vt->ids);
    /* work items: node, its range of sorted pieces, its depth */
    struct item { int32_t node, lo, hi; uint32_t depth; } *work = malloc(cap * sizeof *work);
    if (!vt->byte || !vt->cfirst || !vt->tfirst || !vt->cn || !vt->tn || !vt->ids || !work) {
        free(work);
        goto oom;
    }
    for (int i = 0; i < np; i++)
        vt->ids[i] = ps[i].id;
    int nn = 1, nw = 0;
    vt->byte[0] = 0;
    work[nw++] = (struct item){ 0, 0, np, 0 };
    while (nw > 0) {
        struct item it = work[--nw];
        int lo = it.lo;
        /* pieces that end here sort first */
        while (lo < it.hi && ps[lo].len == it.depth)
            lo++;
        vt->tfirst[it.node] = it.lo;
        vt->tn[it.node] = lo - it.lo;
        /* children: consecutive node ids, one per distinct next byte */
        vt->cfirst[it.node] = nn;
        int k = 0;
        for (int i = lo; i < it.hi;) {
            unsigned char c = (unsigned char)ps[i].p[it.depth];
            int j = i;
            while (j < it.hi && (unsigned char)ps[j].p[it.depth] == c)
                j++;
            int child = nn++;
            vt->byte[child] = c;
            work[nw++] = (struct item){ child, i, j, it.depth + 1 };
            k++;
            i = j;
        }
        vt->cn[it.node] = (uint16_t)k;
    }
    vt->n_nodes = nn;
    free(work);
    free(ps);
    return vt;
oom:
    free(ps);
    lm_vtrie_free(vt);
    return NULL;
}

void lm_vtrie_free(struct lm_vtrie *vt)
{
    if (!vt)
        return;
    free(vt->byte);
    free(vt->cfirst);
    free(vt->tfirst);
    free(vt->cn);
    free(vt->tn);
    free(vt->ids);
    free(vt);
}

int lm_vtrie_n_vocab(const struct lm_vtrie *vt) { return vt->n_vocab; }

/* ---- matcher ----------------------------------------------------------------------------- */

struct gstate {
    int32_t off, n;        /* terminal stacks: sp[off .. off+n), sorted */
    uint8_t accept;
    int32_t *trans;        /* [256]: -1 not yet known, -2 refused; NULL until used */
    uint32_t *mask;        /* cached mask, NULL until asked */
    int n_allowed;
    uint32_t hash;
};

struct lm_gmatch {
    const struct lm_grammar *g;
    const struct lm_vtrie *vt;
    int words;             /* of a mask */

    /* frames: (node, pos, parent), interned; 0 = the empty stack */
    int32_t *fnode, *fpos, *fparent;
    int n_frames, cap_frames;
    int32_t *fht;          /* hash table of frame ids, -1 = empty */
    int fht_cap;
    /* closures: per frame, its terminal stacks in cl[cl_off .. +cl_n) */
    int32_t *cl_off, *cl_n;
    uint8_t *cl_acc;
    int32_t *cl;
    int n_cl, cap_cl;
    /* per-frame stamps for dedup while expanding */
    uint32_t *stamp;
    uint32_t cur_stamp;
    int32_t *work, *tmp, *gath;
    int cap_work, cap_tmp, cap_gath;

    /* states */
    struct gstate *st;
    int n_states, cap_states;
    int32_t *sp;
    int n_sp, cap_sp;
    int32_t *sht;
    int sht_cap;
    size_t mask_bytes;
    int cur;
    int failed;            /* out of memory: every call fails */

    /* mask walk */
    struct { int32_t node, state; } *wstk;
    int cap_wstk;
    long walks, hits;
};

/* memcpy of n int32s; n may be 0 with NULL pointers (memcpy may not) */
static void copy32(int32_t *dst, const int32_t *src, int n)
{
    if (n > 0)
        memcpy(dst, src, (size_t)n * 4);
}

static int mgrow(struct lm_gmatch *m, void **p, int *cap, int need, size_t elem)
{
    if (g_grow(p, cap, need, elem) == 0)
        return 0;
    m->failed = 1;
    return -1;
}

static uint32_t hash3(int32_t a, int32_t b, int32_t c)
{
    uint64_t h = (uint64_t)(uint32_t)a * 0x9E3779B97F4A7C15ULL;
    h ^= (uint64_t)(uint32_t)b * 0xC2B2AE3D27D4EB4FULL + (h >> 29);
    h ^= (uint64_t)(uint32_t)c * 0x165667B19E3779F9ULL + (h >> 31);
    return (uint32_t)(h ^ (h >> 32));
}

static int frame_rehash(struct lm_gmatch *m, int cap)
{
    int32_t *t = malloc((size_t)cap * sizeof *t);
    if (!t) {
        m->failed = 1;
        return -1;
    }
    memset(t, 0xff, (size_t)cap * sizeof *t);
    for (int f = 1; f < m->n_frames; f++) {
        uint32_t h = hash3(m->fnode[f], m->fpos[f], m->fparent[f]) & (uint32_t)(cap - 1);
        while (t[h] >= 0)
            h = (h + 1) & (uint32_t)(cap - 1);
        t[h] = f;
    }
    free(m->fht);
    m->fht = t;
    m->fht_cap = cap;
    return 0;
}

/* Room for `need` frames in every per-frame array. */
static int frames_reserve(struct lm_gmatch *m, int need)
{
    if (need <= m->cap_frames)
        return 0;
    int nc = m->cap_frames ? m->cap_frames * 2 : 1024;
    while (nc < need)
        nc *= 2;
    void *p[7] = { m->fnode, m->fpos, m->fparent, m->cl_off, m->cl_n, m->stamp, m->cl_acc };
    size_t sz[7] = { 4, 4, 4, 4, 4, 4, 1 };
    for (int i = 0; i < 7; i++) {
        void *q = realloc(p[i], (size_t)nc * sz[i]);
        if (!q) {
            m->failed = 1;
            return -1;
        }
        p[i] = q;
        /* store at once: a later failure must not leave a freed pointer behind */
        switch (i) {
        case 0: m->fnode = q; break;
        case 1: m->fpos = q; break;
        case 2: m->fparent = q; break;
        case 3: m->cl_off = q; break;
        case 4: m->cl_n = q; break;
        case 5: m->stamp = q; break;
        case 6: m->cl_acc = q; break;
        }
    }
    m->cap_frames = nc;
    return 0;
}

/* The frame (node, pos) on top of parent; -1 when out of memory or frames. */
static int32_t frame(struct lm_gmatch *m, int32_t node, int32_t pos, int32_t parent)
{
    uint32_t mask = (uint32_t)(m->fht_cap - 1);
    uint32_t h = hash3(node, pos, parent) & mask;
    for (int32_t f; (f = m->fht[h]) >= 0; h = (h + 1) & mask)
        if (m->fnode[f] == node && m->fpos[f] == pos && m->fparent[f] == parent)
            return f;
    if (m->n_frames >= MAX_FRAMES) {
        m->failed = 1;
        return -1;
    }
    int n = m->n_frames;
    if (frames_reserve(m, n + 1) != 0)
        return -1;
    m->fnode[n] = node;
    m->fpos[n] = pos;
    m->fparent[n] = parent;
    m->cl_off[n] = -1;
    m->cl_n[n] = 0;
    m->cl_acc[n] = 0;
    m->stamp[n] = 0;
    m->n_frames++;
    if ((size_t)m->n_frames * 2 > (size_t)m->fht_cap) {
        if (frame_rehash(m, m->fht_cap * 2) != 0)
            return -1;
    } else {
        m->fht[h] = n;
    }
    return n;
}

/* Expand frame f to the terminal stacks it can start with (memoised). */
static int closure(struct lm_gmatch *m, int32_t f)
{
    if (m->cl_off[f] >= 0)
        return 0;
    const struct lm_grammar *g = m->g;
    uint32_t stamp = ++m->cur_stamp;
    if (stamp == 0) {   /* wrapped: clear */
        memset(m->stamp, 0, (size_t)m->cap_frames * sizeof *m->stamp);
        stamp = m->cur_stamp = 1;
    }
    int nw = 0, nt = 0, acc = 0;
    if (mgrow(m, (void **)&m->work, &m->cap_work, 1, 4))
        return -1;
    m->work[nw++] = f;
    m->stamp[f] = stamp;
    while (nw > 0) {
        int32_t x = m->work[--nw];
        if (x == 0) {
            acc = 1;
            continue;
        }
        const struct gnode *nd = &g->nodes[m->fnode[x]];
        int32_t pos = m->fpos[x], parent = m->fparent[x];
        int32_t next[2];
        int nn = 0;
        int32_t *many = NULL;
        int nmany = 0;
        switch (nd->kind) {
        case G_BYTES:
            if (mgrow(m, (void **)&m->tmp, &m->cap_tmp, nt + 1, 4))
                return -1;
            m->tmp[nt++] = x;
            break;
        case G_SEQ:
            if (pos >= nd->n) {
                next[nn++] = parent;
            } else {
                int32_t cont = pos + 1 == nd->n ? parent : frame(m, m->fnode[x], pos + 1, parent);
                if (cont < 0)
                    return -1;
                next[nn++] = frame(m, g->kids[nd->a + pos], 0, cont);
            }
            break;
        case G_ALT:
            many = g->kids + nd->a;
            nmany = nd->n;
            break;
        case G_REP: {
            int32_t c = pos;
            if (nd->max < 0 || c < nd->max) {
                int32_t c2 = c + 1;
                if (nd->max < 0 && c2 > nd->n)
                    c2 = nd->n;      /* past min, unbounded: all counts alike */
                int32_t cont = (nd->max >= 0 && c2 == nd->max) ? parent : frame(m, m->fnode[x], c2, parent);
                if (cont < 0)
                    return -1;
                next[nn++] = frame(m, nd->a, 0, cont);
            }
            if (c >= nd->n)
                next[nn++] = parent;
            break;
        }
        }
        for (int i = 0; i < nn + nmany; i++) {
            int32_t y = i < nn ? next[i] : frame(m, many[i - nn], 0, parent);
            if (y < 0)
                return -1;
            if (m->stamp[y] == stamp)
                continue;
            m->stamp[y] = stamp;
            if (mgrow(m, (void **)&m->work, &m->cap_work, nw + 1, 4))
                return -1;
            m->work[nw++] = y;
        }
    }
    if (mgrow(m, (void **)&m->cl, &m->cap_cl, m->n_cl + nt, 4))
        return -1;
    copy32(m->cl + m->n_cl, m->tmp, nt);
    m->cl_off[f] = m->n_cl;
    m->cl_n[f] = nt;
    m->cl_acc[f] = (uint8_t)acc;
    m->n_cl += nt;
    return 0;
}

static int i32cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t set_hash(const int32_t *s, int n, int acc)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)acc;
    for (int i = 0; i < n; i++)
        h = (h ^ (uint32_t)s[i]) * 0x100000001b3ULL;
    return (uint32_t)(h ^ (h >> 32));
}

static int state_rehash(struct lm_gmatch *m, int cap)
{
    int32_t *t = malloc((size_t)cap * sizeof *t);
    if (!t) {
        m->failed = 1;
        return -1;
    }
    memset(t, 0xff, (size_t)cap * sizeof *t);
    for (int s = 0; s < m->n_states; s++) {
        uint32_t h = m->st[s].hash & (uint32_t)(cap - 1);
        while (t[h] >= 0)
            h = (h + 1) & (uint32_t)(cap - 1);
        t[h] = s;
    }
    free(m->sht);
    m->sht = t;
    m->sht_cap = cap;
    return 0;
}

/* Intern the state of terminal stacks s[0..n) (sorted, distinct). */
static int32_t state(struct lm_gmatch *m, const int32_t *s, int n, int acc)
{
    uint32_t h = set_hash(s, n, acc), mask = (uint32_t)(m->sht_cap - 1);
    uint32_t i = h & mask;
    for (int32_t x; (x = m->sht[i]) >= 0; i = (i + 1) & mask) {
        const struct gstate *q = &m->st[x];
        if (q->hash == h && q->n == n && q->accept == acc && (n == 0 || memcmp(m->sp + q->off, s, (size_t)n * 4) == 0))
            return x;
    }
    if (mgrow(m, (void **)&m->st, &m->cap_states, m->n_states + 1, sizeof *m->st) ||
        mgrow(m, (void **)&m->sp, &m->cap_sp, m->n_sp + n, 4))
        return -1;
    int32_t id = m->n_states++;
    struct gstate *q = &m->st[id];
    memset(q, 0, sizeof *q);
    q->off = m->n_sp;
    q->n = n;
    q->accept = (uint8_t)acc;
    q->hash = h;
    copy32(m->sp + m->n_sp, s, n);
    m->n_sp += n;
    if ((size_t)m->n_states * 2 > (size_t)m->sht_cap) {
        if (state_rehash(m, m->sht_cap * 2) != 0)
            return -1;
    } else {
        m->sht[i] = id;
    }
    return id;
}

/* The state after byte c from state s: -2 refused, -1 out of memory. */
static int32_t step_slow(struct lm_gmatch *m, int32_t s, unsigned c)
{
    if (!m->st[s].trans) {
        int32_t *t = malloc(256 * sizeof *t);
        if (!t) {
            m->failed = 1;
            return -1;
        }
        memset(t, 0xff, 256 * sizeof *t);
        m->st[s].trans = t;
    }
    const struct lm_grammar *g = m->g;
    int nt = 0, acc = 0;
    for (int i = 0; i < m->st[s].n; i++) {
        int32_t x = m->sp[m->st[s].off + i];
        if (!g_set_has(g, g->nodes[m->fnode[x]].set, c))
            continue;
        int32_t parent = m->fparent[x];
        if (closure(m, parent) != 0)
            return -1;
        acc |= m->cl_acc[parent];
        int k = m->cl_n[parent];
        if (mgrow(m, (void **)&m->gath, &m->cap_gath, nt + k, 4))
            return -1;
        copy32(m->gath + nt, m->cl + m->cl_off[parent], k);
        nt += k;
    }
    if (nt > 1) {
        qsort(m->gath, (size_t)nt, 4, i32cmp);
        int u = 1;
        for (int i = 1; i < nt; i++)
            if (m->gath[i] != m->gath[u - 1])
                m->gath[u++] = m->gath[i];
        nt = u;
    }
    int32_t r;
    if (nt == 0 && !acc) {
        r = -2;
    } else {
        r = state(m, m->gath, nt, acc);
        if (r < 0)
            return -1;
    }
    m->st[s].trans[c] = r;
    return r;
}

static inline int32_t step(struct lm_gmatch *m, int32_t s, unsigned c)
{
    const int32_t *t = m->st[s].trans;
    if (t && t[c] != -1)
        return t[c];
    return step_slow(m, s, c);
}

/* Drop the DFA (states, transitions, masks) and re-intern the current state. */
static int reset_states(struct lm_gmatch *m)
{
    const struct gstate *q = &m->st[m->cur];
    int n = q->n, acc = q->accept;
    int32_t *keep = malloc(((size_t)n + 1) * sizeof *keep);
    if (!keep) {
        m->failed = 1;
        return -1;
    }
    copy32(keep, m->sp + q->off, n);
    for (int i = 0; i < m->n_states; i++) {
        free(m->st[i].trans);
        free(m->st[i].mask);
    }
    m->n_states = 0;
    m->n_sp = 0;
    m->mask_bytes = 0;
    memset(m->sht, 0xff, (size_t)m->sht_cap * sizeof *m->sht);
    m->cur = state(m, keep, n, acc);
    free(keep);
    return m->cur < 0 ? -1 : 0;
}

struct lm_gmatch *lm_gmatch_new(const struct lm_grammar *g, const struct lm_vtrie *vt)
{
    struct lm_gmatch *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->g = g;
    m->vt = vt;
    m->words = (vt->n_vocab + 31) / 32;
    m->fht_cap = 1024;
    m->sht_cap = 256;
    m->fht = malloc((size_t)m->fht_cap * sizeof *m->fht);
    m->sht = malloc((size_t)m->sht_cap * sizeof *m->sht);
    if (!m->fht || !m->sht) {
        lm_gmatch_free(m);
        return NULL;
    }
    memset(m->fht, 0xff, (size_t)m->fht_cap * sizeof *m->fht);
    memset(m->sht, 0xff, (size_t)m->sht_cap * sizeof *m->sht);
    /* frame 0: the empty stack (never looked up, so not in the table) */
    if (frames_reserve(m, 1) != 0) {
        lm_gmatch_free(m);
        return NULL;
    }
    m->fnode[0] = -1;
    m->fpos[0] = 0;
    m->fparent[0] = -1;
    m->cl_off[0] = -1;
    m->cl_n[0] = 0;
    m->cl_acc[0] = 0;
    m->stamp[0] = 0;
    m->n_frames = 1;
    int32_t top = frame(m, g->root, 0, 0);
    if (top < 0 || closure(m, top) != 0) {
        lm_gmatch_free(m);
        return NULL;
    }
    int n = m->cl_n[top];
    int32_t *s = malloc(((size_t)n + 1) * sizeof *s);
    if (!s) {
        lm_gmatch_free(m);
        return NULL;
    }
    copy32(s, m->cl + m->cl_off[top], n);
    qsort(s, (size_t)n, 4, i32cmp);
    m->cur = state(m, s, n, m->cl_acc[top]);
    free(s);
    if (m->cur < 0) {
        lm_gmatch_free(m);
        return NULL;
    }
    return m;
}

void lm_gmatch_free(struct lm_gmatch *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_states; i++) {
        free(m->st[i].trans);
        free(m->st[i].mask);
    }
    free(m->st);
    free(m->sp);
    free(m->sht);
    free(m->fnode);
    free(m->fpos);
    free(m->fparent);
    free(m->fht);
    free(m->cl_off);
    free(m->cl_n);
    free(m->cl_acc);
    free(m->cl);
    free(m->stamp);
    free(m->work);
    free(m->tmp);
    free(m->gath);
    free(m->wstk);
    free(m);
}

static int maybe_reset(struct lm_gmatch *m)
{
    if (m->n_states > MAX_STATES || m->mask_bytes > MAX_MASK_BYTES)
        return reset_states(m);
    return 0;
}

int lm_gmatch_feed(struct lm_gmatch *m, const char *bytes, size_t len)
{
    if (m->failed || maybe_reset(m) != 0)
        return -1;
    int32_t s = m->cur;
    for (size_t i = 0; i < len; i++) {
        s = step(m, s, (unsigned char)bytes[i]);
        if (s < 0)
            return -1;
    }
    m->cur = s;
    return 0;
}

int lm_gmatch_try(struct lm_gmatch *m, const char *bytes, size_t len)
{
    if (m->failed || maybe_reset(m) != 0)
        return -1;
    int32_t s = m->cur;
    for (size_t i = 0; i < len && s >= 0; i++)
        s = step(m, s, (unsigned char)bytes[i]);
    return s >= 0 ? 1 : s == -2 ? 0 : -1;
}

int lm_gmatch_done(struct lm_gmatch *m)
{
    return m->st[m->cur].accept && m->st[m->cur].n == 0;
}

int lm_gmatch_accepting(struct lm_gmatch *m) { return m->st[m->cur].accept; }

const uint32_t *lm_gmatch_mask(struct lm_gmatch *m, int *n_allowed, int *can_end)
{
    if (m->failed || maybe_reset(m) != 0)
        return NULL;
    int32_t s0 = m->cur;
    *can_end = m->st[s0].accept;
    if (m->st[s0].mask) {
        m->hits++;
        *n_allowed = m->st[s0].n_allowed;
        return m->st[s0].mask;
    }
    m->walks++;
    uint32_t *mask = calloc((size_t)m->words, sizeof *mask);
    if (!mask) {
        m->failed = 1;
        return NULL;
    }
    const struct lm_vtrie *vt = m->vt;
    int count = 0, sp = 0;
    if (mgrow(m, (void **)&m->wstk, &m->cap_wstk, 1, sizeof *m->wstk)) {
        free(mask);
        return NULL;
    }
    m->wstk[sp].node = 0;
    m->wstk[sp++].state = s0;
    while (sp > 0) {
        int32_t node = m->wstk[sp - 1].node, s = m->wstk[sp - 1].state;
        sp--;
        int32_t c0 = vt->cfirst[node], c1 = c0 + vt->cn[node];
        for (int32_t ch = c0; ch < c1; ch++) {
            int32_t s2 = step(m, s, vt->byte[ch]);
            if (s2 == -2)
                continue;
            if (s2 < 0) {
                free(mask);
                return NULL;
            }
            for (int32_t k = vt->tfirst[ch], e = k + vt->tn[ch]; k < e; k++) {
                int32_t id = vt->ids[k];
                mask[id >> 5] |= 1u << (id & 31);
                count++;
            }
            if (vt->cn[ch]) {
                if (mgrow(m, (void **)&m->wstk, &m->cap_wstk, sp + 1, sizeof *m->wstk)) {
                    free(mask);
                    return NULL;
                }
                m->wstk[sp].node = ch;
                m->wstk[sp++].state = s2;
            }
        }
    }
    m->st[s0].mask = mask;
    m->st[s0].n_allowed = count;
    m->mask_bytes += (size_t)m->words * 4;
    *n_allowed = count;
    return mask;
}

void lm_gmatch_stats(const struct lm_gmatch *m, struct lm_gmatch_stats *st)
{
    st->states = m->n_states;
    st->frames = m->n_frames;
    st->mask_walks = m->walks;
    st->mask_hits = m->hits;
}
