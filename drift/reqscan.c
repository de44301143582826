/*
 * reqscan.c - the canonical request hash read straight from the raw body.
 *
 * The writer thread hashes every recorded request. Through cJSON that costs
 * a tree (a malloc per value, a strtod per number) that is thrown away at
 * once: measured, about 1.4 us of the writer's 3.8 us per record. This file
 * reads strict JSON into a flat array of spans that it reuses, and prints the
 * canonical form of hash.c (see its header) from those spans.
 *
 * It must give exactly the hash that the cJSON path gives, since hashes are
 * stored and compared across versions. So it only answers when it is sure:
 * for strict JSON (RFC 8259) whose strings use no \u escape and no raw
 * control byte, whose object keys have no escape at all, whose numbers are
 * plain decimals of at most 15 significant digits (exactly what %.15g
 * prints back), and whose nesting stays shallow. For anything else it says
 * DRIFT_REQ_UNSURE and the caller takes the cJSON path.
 * tests/drift/drift_reqscan_test.c compares the two on hand-written bodies
 * and on mutations of them.
 */
#include "drift/internal.h"

#include <stdlib.h>
#include <string.h>

enum { N_NULL, N_TRUE, N_FALSE, N_NUM, N_STR, N_ARR, N_OBJ };

#define MAX_DEPTH 60        /* hash.c prints null below depth 64 */
#define MAX_NUMBER 60       /* cJSON reads at most 63 characters of a number */
#define MAX_NODES (1u << 20)

struct rs_node {
    unsigned char type;
    unsigned char zero;      /* N_NUM: every digit is 0 */
    unsigned key_len;        /* member of an object: its key */
    const char *key;
    const char *v;           /* N_STR: inside the quotes; N_NUM: the literal */
    size_t vlen;
    unsigned first, next;    /* children / siblings, 0 = none (node 0 is never a child) */
    unsigned count;          /* N_ARR, N_OBJ: number of children */
};

struct parse {
    const char *p, *end;
    struct drift_reqscan *s;
    int depth;
};

static int ws(struct parse *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
    return x->p < x->end;
}

static int new_node(struct parse *x, unsigned *idx)
{
    struct drift_reqscan *s = x->s;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        if (cap > MAX_NODES)
            return -1;
        void *nn = realloc(s->nodes, cap * sizeof(struct rs_node));
        if (!nn)
            return -1;
        s->nodes = nn;
        s->cap = cap;
    }
    struct rs_node *n = &((struct rs_node *)s->nodes)[s->n];
    memset(n, 0, sizeof *n);
    *idx = (unsigned)s->n++;
    return 0;
}

#define NODE(x, i) (&((struct rs_node *)(x)->s->nodes)[i])

/* A string's inside, from just after the opening quote. *esc: it has an
 * escape. Unsure (-1) on \u, an unknown escape, a control byte or no end. */
static int str_span(struct parse *x, const char **start, size_t *len, int *esc)
{
    const char *p = x->p, *e = x->end;
    *start = p;
    *esc = 0;
    for (; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *len = (size_t)(p - *start);
            x->p = p + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++p >= e || !*p || !strchr("\"\\/bfnrt", *p))
                return -1;
            *esc = 1;
        }
    }
    return -1;
}

/* A number literal: strict JSON grammar, no exponent, at most 15
 * significant digits (integers: at most 15 digits). */
static int number(struct parse *x, struct rs_node *n)
{
    const char *p = x->p, *e = x->end, *start = p;
    if (p < e && *p == '-')
        p++;
    const char *ip = p;
    if (p < e && *p == '0') {
        p++;
    } else if (p < e && *p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -1;
    }
    size_t ilen = (size_t)(p - ip);
    int zero = ilen == 1 && *ip == '0';
    size_t sig = zero ? 0 : ilen;
    if (p < e && *p == '.') {
        const char *f = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return -1;
        const char *fe = p;
        while (fe > f && fe[-1] == '0')
            fe--;                       /* trailing zeros say nothing */
        if (fe > f) {
            size_t lead = 0;
            if (zero) {                 /* 0.000123: the leading zeros do not count */
                while (f + lead < fe && f[lead] == '0')
                    lead++;
                if (lead > 3)           /* below 1e-4 %g turns to an exponent */
                    return -1;
            }
            sig += (size_t)(fe - f) - lead;
            zero = 0;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E'))
        return -1;
    if (sig > 15 || (size_t)(p - start) > MAX_NUMBER)
        return -1;
    n->type = N_NUM;
    n->zero = (unsigned char)zero;
    n->v = start;
    n->vlen = (size_t)(p - start);
    x->p = p;
    return 0;
}

static int value(struct parse *x, unsigned idx);

static int lit(struct parse *x, const char *w, size_t n)
{
    if ((size_t)(x->end - x->p) < n || memcmp(x->p, w, n) != 0)
        return -1;
    x->p += n;
    return 0;
}

/* The members or elements of an object or array, after its opening bracket. */
static int container(struct parse *x, unsigned idx, int obj)
{
    if (++x->depth > MAX_DEPTH)
        return -1;
    char close = obj ? '}' : ']';
    unsigned last = 0, count = 0;
    if (!ws(x))
        return -1;
    if (*x->p == close) {
        x->p++;
        x->depth--;
        return 0;
    }
    for (;;) {
        const char *k = NULL;
        size_t klen = 0;
        if (obj) {
            int esc;
            if (!ws(x) || *x->p != '"')
                return -1;
            x->p++;
            if (str_span(x, &k, &klen, &esc) || esc || klen > 0xffffffffu)
                return -1;
            if (!ws(x) || *x->p != ':')
                return -1;
            x->p++;
        }
        unsigned c;
        if (new_node(x, &c))
            return -1;
        NODE(x, c)->key = k;
        NODE(x, c)->key_len = (unsigned)klen;
        if (value(x, c))
            return -1;
        if (last)
            NODE(x, last)->next = c;
        else
            NODE(x, idx)->first = c;
        last = c;
        count++;
        if (!ws(x))
            return -1;
        if (*x->p == ',') {
            x->p++;
            continue;
        }
        if (*x->p != close)
            return -1;
        x->p++;
        break;
    }
    NODE(x, idx)->count = count;
    x->depth--;
    return 0;
}

static int value(struct parse *x, unsigned idx)
{
    if (!ws(x))
        return -1;
    struct rs_node *n = NODE(x, idx);
    switch (*x->p) {
    case '{':
        x->p++;
        n->type = N_OBJ;
        return container(x, idx, 1);
    case '[':
        x->p++;
        n->type = N_ARR;
        return container(x, idx, 0);
    case '"': {
        int esc;
        x->p++;
        n->type = N_STR;
        return str_span(x, &n->v, &n->vlen, &esc);
    }
    case 't':
        n->type = N_TRUE;
        return lit(x, "true", 4);
    case 'f':
        n->type = N_FALSE;
        return lit(x, "false", 5);
    case 'n':
        n->type = N_NULL;
        return lit(x, "null", 4);
    default:
        return number(x, n);
    }
}

/* ---- printing the canonical form into SHA-256 ------------------------------ */

struct out {
    EVP_MD_CTX *ctx;
    char chunk[1024];
    size_t len;
    int bad;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n > sizeof o->chunk) {
        if (o->len && !EVP_DigestUpdate(o->ctx, o->chunk, o->len))
            o->bad = 1;
        o->len = 0;
        if (n > sizeof o->chunk) {
            if (!EVP_DigestUpdate(o->ctx, s, n))
                o->bad = 1;
            return;
        }
    }
    memcpy(o->chunk + o->len, s, n);
    o->len += n;
}

/* A number as canon_number prints its double: integers as digits, other
 * values (here: at most 15 significant digits, 1e-4 and up) as %.15g does,
 * which is the literal without its trailing zeros. */
static void put_number(struct out *o, const struct rs_node *n)
{
    if (n->zero) {
        put(o, "0", 1);
        return;
    }
    const char *p = n->v, *e = n->v + n->vlen;
    const char *dot = memchr(p, '.', n->vlen);
    if (!dot) {
        put(o, p, n->vlen);
        return;
    }
    const char *fe = e;
    while (fe > dot + 1 && fe[-1] == '0')
        fe--;
    put(o, p, (size_t)((fe == dot + 1 ? dot : fe) - p));
}

/* Inside a string, \/ is the only escape that canon_string spells
 * differently (it prints '/'); every other one comes out as it went in. */
static void put_string(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    const char *run = s, *e = s + n;
    for (const char *p = s; p < e; p++) {
        if (*p != '\\')
            continue;
        if (p[1] == '/') {
            put(o, run, (size_t)(p - run));
            run = p + 1;
        }
        p++;
    }
    put(o, run, (size_t)(e - run));
    put(o, "\"", 1);
}

/* strcmp order of two keys (no NUL inside: they have no escapes) */
static int key_cmp(const struct rs_node *a, const struct rs_node *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static int put_value(struct drift_reqscan *s, struct out *o, unsigned idx);

static int put_object(struct drift_reqscan *s, struct out *o, unsigned idx)
{
    struct rs_node *nodes = s->nodes;
    unsigned n = nodes[idx].count;
    unsigned stack[32], *m = stack;
    if (n > 32 && !(m = malloc(n * sizeof *m)))
        return -1;
    unsigned i = 0;
    for (unsigned c = nodes[idx].first; c; c = nodes[c].next)
        m[i++] = c;
    /* insertion sort, stable like hash.c's; beyond 32 keys hash.c uses
     * qsort, whose order of equal keys is its own: unsure then */
    for (i = 1; i < n; i++) {
        unsigned v = m[i], j = i;
        for (; j > 0 && key_cmp(&nodes[m[j - 1]], &nodes[v]) > 0; j--)
            m[j] = m[j - 1];
        m[j] = v;
    }
    int rc = 0;
    if (n > 32)
        for (i = 1; i < n && !rc; i++)
            rc = key_cmp(&nodes[m[i - 1]], &nodes[m[i]]) == 0 ? -1 : 0;
    put(o, "{", 1);
    for (i = 0; i < n && !rc; i++) {
        if (i)
            put(o, ",", 1);
        put_string(o, nodes[m[i]].key, nodes[m[i]].key_len);
        put(o, ":", 1);
        rc = put_value(s, o, m[i]);
    }
    put(o, "}", 1);
    if (m != stack)
        free(m);
    return rc;
}

static int put_value(struct drift_reqscan *s, struct out *o, unsigned idx)
{
    const struct rs_node *n = &((struct rs_node *)s->nodes)[idx];
    switch (n->type) {
    case N_NULL: put(o, "null", 4); return 0;
    case N_TRUE: put(o, "true", 4); return 0;
    case N_FALSE: put(o, "false", 5); return 0;
    case N_NUM: put_number(o, n); return 0;
    case N_STR: put_string(o, n->v, n->vlen); return 0;
    case N_ARR: {
        put(o, "[", 1);
        int rc = 0;
        for (unsigned c = n->first; c && !rc; c = ((struct rs_node *)s->nodes)[c].next) {
            if (c != n->first)
                put(o, ",", 1);
            rc = put_value(s, o, c);
        }
        put(o, "]", 1);
        return rc;
    }
    default:
        return put_object(s, o, idx);
    }
}

static int field_cmp(const void *key, const void *elem)
{
    const struct rs_node *n = key;
    const char *f = *(const char *const *)elem;
    int c = strncmp(n->key, f, n->key_len);   /* the key has no NUL */
    if (c)
        return c;
    return f[n->key_len] ? -1 : 0;            /* the key is a prefix of f */
}

/* seed as (int64_t) of its double: the integer part, truncated */
static int64_t seed_of(const struct rs_node *n)
{
    int64_t v = 0;
    const char *p = n->v, *e = n->v + n->vlen;
    int neg = p < e && *p == '-';
    for (p += neg; p < e && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return neg ? -v : v;
}

static int scan(struct drift_reqscan *s, struct drift_hasher *h, const char *json, size_t len,
                struct drift_reqinfo *info);

/* The node array stays for the next body, unless a large one made it
 * large: a few MiB are not kept for the writer's lifetime. */
#define KEEP_NODES 16384

int drift_request_scan(struct drift_reqscan *s, struct drift_hasher *h, const char *json,
                       size_t len, struct drift_reqinfo *info)
{
    int rc = scan(s, h, json, len, info);
    if (s->cap > KEEP_NODES)
        drift_reqscan_free(s);
    return rc;
}

static int scan(struct drift_reqscan *s, struct drift_hasher *h, const char *json, size_t len,
                struct drift_reqinfo *info)
{
    memset(info, 0, sizeof *info);
    if (!h || !h->ctx || !json)
        return DRIFT_REQ_UNSURE;
    s->n = 0;
    struct parse x = {.p = json, .end = json + len, .s = s};
    unsigned root;                     /* node 0: never anyone's child */
    if (new_node(&x, &root) || !ws(&x) || *x.p != '{' || value(&x, root) != 0 || ws(&x))
        return DRIFT_REQ_UNSURE;

    /* each answer field's first occurrence, as hash.c's canon_request */
    struct rs_node *nodes = s->nodes;
    unsigned found[64] = {0};
    if (drift_n_answer_fields > sizeof found / sizeof found[0])
        return DRIFT_REQ_UNSURE;
    for (unsigned c = nodes[root].first; c; c = nodes[c].next) {
        const char *const *f = bsearch(&nodes[c], drift_answer_fields, drift_n_answer_fields,
                                       sizeof drift_answer_fields[0], field_cmp);
        if (f && !found[f - drift_answer_fields])
            found[f - drift_answer_fields] = c;
    }
    struct out o = {.ctx = h->ctx};
    if (!EVP_DigestInit_ex(h->ctx, h->md ? h->md : EVP_sha256(), NULL))
        return DRIFT_REQ_UNSURE;
    put(&o, "{", 1);
    int first = 1;
    for (size_t i = 0; i < drift_n_answer_fields; i++) {
        unsigned c = found[i];
        if (!c)
            continue;
        if (!first)
            put(&o, ",", 1);
        first = 0;
        put_string(&o, drift_answer_fields[i], strlen(drift_answer_fields[i]));
        put(&o, ":", 1);
        if (put_value(s, &o, c))
            return DRIFT_REQ_UNSURE;
        const struct rs_node *n = &nodes[c];
        const char *name = drift_answer_fields[i];
        if (n->type == N_NUM && strcmp(name, "seed") == 0) {
            info->has_seed = 1;
            info->seed = seed_of(n);
        } else if (n->type == N_NUM && n->zero && strcmp(name, "temperature") == 0) {
            info->temperature_zero = 1;
        } else if (n->type == N_STR && strcmp(name, "model") == 0) {
            if (memchr(n->v, '\\', n->vlen))
                return DRIFT_REQ_UNSURE;   /* the caller may need it unescaped */
            info->model = n->v;
            info->model_len = n->vlen;
        }
    }
    put(&o, "}", 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdn = 0;
    if (o.bad || (o.len && !EVP_DigestUpdate(h->ctx, o.chunk, o.len)) ||
        !EVP_DigestFinal_ex(h->ctx, md, &mdn) || mdn != 32)
        return DRIFT_REQ_UNSURE;
    drift_hex(md, 32, info->hash);
    info->deterministic = info->has_seed || info->temperature_zero;
    return DRIFT_REQ_OK;
}

void drift_reqscan_free(struct drift_reqscan *s)
{
    free(s->nodes);
    s->nodes = NULL;
    s->n = s->cap = 0;
}
