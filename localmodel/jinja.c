/*
 * jinja.c - the chat-template interpreter (jinja.h).
 *
 * Shape: the template text is preprocessed (lstrip_blocks, trim_blocks, the
 * trailing newline), cut into text and tag tokens, parsed into a tree of
 * statements and expressions, and the tree is evaluated against scopes of
 * variables. Everything a parse or a render allocates comes from one arena
 * freed at once; errors unwind with longjmp to the entry point, which frees
 * the arena, so no error path leaks or half-frees.
 *
 * Values: undefined, none, bool, int (int64), float, string (with taint
 * ranges), list, dict (insertion-ordered), namespace, macro, and callables
 * (the global functions and the bound methods of strings, lists and dicts).
 * Lists, dicts and namespaces are mutable (list.append, set ns.x = ...), as
 * templates expect.
 */
#include "localmodel/jinja.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 200           /* parse nesting */
#define MAX_CALL_DEPTH 100      /* macro recursion */

/* ---- arena ------------------------------------------------------------------ */

struct ablk {
    struct ablk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct ablk *head;
    jmp_buf *oom;               /* where to go when malloc fails */
};

static void arena_free(struct arena *a)
{
    for (struct ablk *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
}

static void *aalloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct ablk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) longjmp(*a->oom, 2);
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void *azalloc(struct arena *a, size_t n)
{
    void *p = aalloc(a, n);
    memset(p, 0, n);
    return p;
}

/* ---- strings with taint --------------------------------------------------- */

struct jstr {
    const char *s;
    size_t n;
    size_t nt;                  /* taint ranges: t[2k], t[2k+1] */
    size_t *t;
};

/* ---- values ------------------------------------------------------------------ */

enum vtype {
    V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_NS, V_MACRO,
    V_FUNC, V_METHOD, V_KWARGS,
};

typedef struct val val;
struct jlist { val **v; size_t n, cap; };
struct jdict { struct jstr *k; val **v; size_t n, cap; };
struct node;

struct val {
    enum vtype t;
    int tuple;                  /* V_LIST written as (a, b) */
    union {
        int b;
        int64_t i;
        double f;
        struct jstr s;
        struct jlist *l;
        struct jdict *d;        /* V_DICT, V_NS, V_KWARGS */
        struct { struct node *def; struct scope *scope; } mac;
        int fn;
        struct { val *self; int m; } meth;
    } u;
};

static val V_UNDEF_VAL = { V_UNDEF, 0, { 0 } };
static val V_NONE_VAL = { V_NONE, 0, { 0 } };
static val V_TRUE_VAL = { V_BOOL, 0, { .b = 1 } };
static val V_FALSE_VAL = { V_BOOL, 0, { .b = 0 } };

/* ---- AST --------------------------------------------------------------------- */

enum nkind {
    /* statements */
    N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK,
    N_BREAK, N_CONTINUE, N_BLOCK,
    /* expressions */
    N_LIT, N_NAME, N_ATTR, N_INDEX, N_SLICE, N_CALL, N_FILTER, N_TEST, N_NOT, N_NEG, N_POS,
    N_BIN, N_AND, N_OR, N_COND, N_LIST, N_TUPLE, N_DICT,
};

enum binop { B_ADD, B_SUB, B_MUL, B_DIV, B_FLOORDIV, B_MOD, B_POW, B_CAT, B_EQ, B_NE, B_LT,
             B_LE, B_GT, B_GE, B_IN, B_NOTIN };

struct node {
    enum nkind k;
    int line;
    struct node *a, *b, *c;     /* operands / condition, body, else */
    struct node **kids;         /* lists, args, statement bodies */
    int nkids;
    char **names;               /* kwarg names (N_CALL, N_FILTER, N_TEST) or targets */
    int nnames;
    int op;                     /* binop, negated test, ... */
    const char *str;            /* identifier, attribute, filter, test name */
    val *lit;
    struct jstr text;           /* N_TEXT */
    struct node **defaults;     /* N_MACRO: default per parameter (or NULL) */
};

/* ---- lexer ------------------------------------------------------------------- */

enum ttype { T_TEXT, T_OUT_OPEN, T_OUT_CLOSE, T_STMT_OPEN, T_STMT_CLOSE, T_NAME, T_STR,
             T_INT, T_FLOAT, T_OP, T_EOF };

struct tok {
    enum ttype t;
    int line;
    const char *s;              /* text, name, op, string value */
    size_t n;
    int64_t i;
    double f;
};

struct jinja_tmpl {
    struct arena ar;
    struct node *root;
};

struct parser {
    struct arena *ar;
    struct tok *tk;
    int ntk, pos;
    int depth;
    char *err;
    size_t errlen;
    jmp_buf jb;
};

static _Noreturn void perr(struct parser *p, int line, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "line %d: %s", line, m);
    longjmp(p->jb, 1);
}

static char *astrndup(struct arena *a, const char *s, size_t n)
{
    char *d = aalloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* @huggingface/jinja's preprocessing: one trailing newline dropped;
 * lstrip_blocks (spaces/tabs before a {% or {# at the start of a line);
 * trim_blocks (the newline right after %} or #}). */
static char *preprocess(struct arena *a, const char *src, size_t len, size_t *out_len)
{
    if (len && src[len - 1] == '\n') len--;
    char *o = aalloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (i == 0 || src[i - 1] == '\n') {
            size_t j = i;
            while (j < len && (src[j] == ' ' || src[j] == '\t')) j++;
            if (j + 1 < len && src[j] == '{' && (src[j + 1] == '%' || src[j + 1] == '#' || src[j + 1] == '-'))
                i = j;
        }
        if ((src[i] == '%' || src[i] == '#' || src[i] == '-') && i + 2 < len && src[i + 1] == '}' &&
            src[i + 2] == '\n') {
            o[n++] = src[i];
            o[n++] = '}';
            i += 3;
            continue;
        }
        o[n++] = src[i++];
    }
    o[n] = '\0';
    *out_len = n;
    return o;
}

static void push_tok(struct parser *p, struct tok t, int *cap)
{
    if (p->ntk == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        struct tok *nt = aalloc(p->ar, (size_t)nc * sizeof *nt);
        if (p->ntk) memcpy(nt, p->tk, (size_t)p->ntk * sizeof *nt);
        p->tk = nt;
        *cap = nc;
    }
    p->tk[p->ntk++] = t;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void lex(struct parser *p, const char *s, size_t n)
{
    int cap = 0, line = 1;
    size_t i = 0;
    int strip_next = 0;         /* a '-' closed the previous tag */
    while (i < n) {
        /* text up to the next tag */
        size_t j = i;
        while (j < n && !(s[j] == '{' && j + 1 < n && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#'))) j++;
        size_t ts = i, te = j;
        if (strip_next) while (ts < te && is_ws(s[ts])) ts++;
        int lstrip = j + 2 < n && s[j + 2] == '-';
        if (lstrip) while (te > ts && is_ws(s[te - 1])) te--;
        if (te > ts) push_tok(p, (struct tok){ T_TEXT, line, s + ts, te - ts, 0, 0 }, &cap);
        for (size_t k = i; k < j; k++) if (s[k] == '\n') line++;
        strip_next = 0;
        if (j >= n) break;
        char kind = s[j + 1];
        i = j + 2 + (lstrip ? 1 : 0);
        if (kind == '#') {
            const char *e = NULL;
            for (size_t k = i; k + 1 < n; k++) if (s[k] == '#' && s[k + 1] == '}') { e = s + k; break; }
            if (!e) perr(p, line, "comment not closed ('#}' missing)");
            for (const char *c = s + i; c < e; c++) if (*c == '\n') line++;
            strip_next = e > s + i && e[-1] == '-';
            i = (size_t)(e - s) + 2;
            continue;
        }
        push_tok(p, (struct tok){ kind == '{' ? T_OUT_OPEN : T_STMT_OPEN, line, NULL, 0, 0, 0 }, &cap);
        char close = kind == '{' ? '}' : '%';
        for (;;) {
            while (i < n && is_ws(s[i])) { if (s[i] == '\n') line++; i++; }
            if (i >= n) perr(p, line, "tag not closed ('%c}' missing)", close);
            if ((s[i] == '-' && i + 2 < n + 0 && s[i + 1] == close && s[i + 2] == '}') ||
                (s[i] == close && i + 1 < n && s[i + 1] == '}')) {
                if (s[i] == '-') { strip_next = 1; i++; }
                i += 2;
                push_tok(p, (struct tok){ kind == '{' ? T_OUT_CLOSE : T_STMT_CLOSE, line, NULL, 0, 0, 0 }, &cap);
                break;
            }
            char c = s[i];
            if (isalpha((unsigned char)c) || c == '_') {
                size_t k = i;
                while (k < n && (isalnum((unsigned char)s[k]) || s[k] == '_')) k++;
                push_tok(p, (struct tok){ T_NAME, line, s + i, k - i, 0, 0 }, &cap);
                i = k;
            } else if (isdigit((unsigned char)c)) {
                size_t k = i;
                while (k < n && (isdigit((unsigned char)s[k]) || s[k] == '_')) k++;
                int is_f = 0;
                if (k + 1 < n && s[k] == '.' && isdigit((unsigned char)s[k + 1])) {
                    is_f = 1;
                    k++;
                    while (k < n && isdigit((unsigned char)s[k])) k++;
                }
                char buf[64];
                size_t bl = 0;
                for (size_t q = i; q < k && bl < sizeof buf - 1; q++) if (s[q] != '_') buf[bl++] = s[q];
                buf[bl] = '\0';
                struct tok t = { is_f ? T_FLOAT : T_INT, line, s + i, k - i, 0, 0 };
                if (is_f) t.f = strtod(buf, NULL);
                else t.i = strtoll(buf, NULL, 10);
                push_tok(p, t, &cap);
                i = k;
            } else if (c == '\'' || c == '"') {
                size_t k = i + 1;
                char *buf = aalloc(p->ar, n - i + 1);
                size_t bl = 0;
                while (k < n && s[k] != c) {
                    if (s[k] == '\\' && k + 1 < n) {
                        char e = s[k + 1];
                        buf[bl++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b'
                                  : e == 'f' ? '\f' : e == 'v' ? '\v' : e == '0' ? '\0' : e;
                        k += 2;
                    } else {
                        if (s[k] == '\n') line++;
                        buf[bl++] = s[k++];
                    }
                }
                if (k >= n) perr(p, line, "string not closed");
                buf[bl] = '\0';
                push_tok(p, (struct tok){ T_STR, line, buf, bl, 0, 0 }, &cap);
                i = k + 1;
            } else {
                static const char *const ops[] = { "//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                    "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", NULL };
                int m = -1;
                for (int q = 0; ops[q]; q++) {
                    size_t l = strlen(ops[q]);
                    if (i + l <= n && memcmp(s + i, ops[q], l) == 0) { m = q; break; }
                }
                if (m < 0) perr(p, line, "unexpected character '%c'", c);
                push_tok(p, (struct tok){ T_OP, line, ops[m], strlen(ops[m]), 0, 0 }, &cap);
                i += strlen(ops[m]);
            }
        }
    }
    push_tok(p, (struct tok){ T_EOF, line, NULL, 0, 0, 0 }, &cap);
}

/* ---- parser -------------------------------------------------------------- */

static struct tok *peek(struct parser *p) { return &p->tk[p->pos]; }
static struct tok *next(struct parser *p) { struct tok *t = &p->tk[p->pos]; if (t->t != T_EOF) p->pos++; return t; }

static int is_op(const struct tok *t, const char *op)
{
    return t->t == T_OP && t->n == strlen(op) && memcmp(t->s, op, t->n) == 0;
}

static int is_name(const struct tok *t, const char *nm)
{
    return t->t == T_NAME && t->n == strlen(nm) && memcmp(t->s, nm, t->n) == 0;
}

static const char *tok_desc(const struct tok *t, char *buf, size_t n)
{
    switch (t->t) {
    case T_EOF: return "end of template";
    case T_OUT_CLOSE: return "'}}'";
    case T_STMT_CLOSE: return "'%}'";
    case T_TEXT: return "text";
    default: snprintf(buf, n, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s ? t->s : ""); return buf;
    }
}

static void expect_op(struct parser *p, const char *op)
{
    struct tok *t = next(p);
    if (!is_op(t, op)) {
        char b[64];
        perr(p, t->line, "expected '%s', got %s", op, tok_desc(t, b, sizeof b));
    }
}

static char *expect_name(struct parser *p)
{
    struct tok *t = next(p);
    if (t->t != T_NAME) {
        char b[64];
        perr(p, t->line, "expected a name, got %s", tok_desc(t, b, sizeof b));
    }
    return astrndup(p->ar, t->s, t->n);
}

static struct node *mk(struct parser *p, enum nkind k, int line)
{
    struct node *n = azalloc(p->ar, sizeof *n);
    n->k = k;
    n->line = line;
    return n;
}

struct nvec { struct node **v; int n, cap; };
static void nvec_push(struct arena *a, struct nvec *v, struct node *x)
{
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 8;
        struct node **nv = aalloc(a, (size_t)nc * sizeof *nv);
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = x;
}

static struct node *parse_expr(struct parser *p);
static struct node *parse_cond_noternary(struct parser *p);

static val *mkval(struct arena *a, enum vtype t)
{
    val *v = azalloc(a, sizeof *v);
    v->t = t;
    return v;
}

/* call arguments: positional, then name=value */
static void parse_args(struct parser *p, struct node *n)
{
    struct nvec args = { 0 };
    struct nvec kw = { 0 };
    char **names = NULL;
    int nn = 0, capn = 0;
    if (!is_op(peek(p), ")")) {
        for (;;) {
            struct tok *t = peek(p);
            if (t->t == T_NAME && is_op(&p->tk[p->pos + 1], "=")) {
                char *nm = expect_name(p);
                next(p);
                if (nn == capn) {
                    int nc = capn ? capn * 2 : 4;
                    char **nv = aalloc(p->ar, (size_t)nc * sizeof *nv);
                    if (nn) memcpy(nv, names, (size_t)nn * sizeof *nv);
                    names = nv;
                    capn = nc;
                }
                names[nn++] = nm;
                nvec_push(p->ar, &kw, parse_expr(p));
            } else {
                if (kw.n) perr(p, t->line, "positional argument after a keyword argument");
                nvec_push(p->ar, &args, parse_expr(p));
            }
            if (is_op(peek(p), ",")) { next(p); if (is_op(peek(p), ")")) break; continue; }
            break;
        }
    }
    expect_op(p, ")");
    /* kids: positional then keyword values; names: keyword names */
    n->kids = aalloc(p->ar, (size_t)(args.n + kw.n + 1) * sizeof *n->kids);
    for (int i = 0; i < args.n; i++) n->kids[i] = args.v[i];
    for (int i = 0; i < kw.n; i++) n->kids[args.n + i] = kw.v[i];
    n->nkids = args.n + kw.n;
    n->op = args.n;             /* number of positional arguments */
    n->names = names;
    n->nnames = nn;
}

static struct node *parse_primary(struct parser *p)
{
    struct tok *t = next(p);
    struct node *n;
    if (++p->depth > MAX_DEPTH) perr(p, t->line, "expression nested more than %d deep", MAX_DEPTH);
    switch (t->t) {
    case T_INT:
        n = mk(p, N_LIT, t->line);
        n->lit = mkval(p->ar, V_INT);
        n->lit->u.i = t->i;
        break;
    case T_FLOAT:
        n = mk(p, N_LIT, t->line);
        n->lit = mkval(p->ar, V_FLOAT);
        n->lit->u.f = t->f;
        break;
    case T_STR: {
        n = mk(p, N_LIT, t->line);
        n->lit = mkval(p->ar, V_STR);
        /* adjacent string literals concatenate */
        size_t total = t->n;
        int k = p->pos;
        while (p->tk[k].t == T_STR) total += p->tk[k++].n;
        char *s = aalloc(p->ar, total + 1);
        memcpy(s, t->s, t->n);
        size_t o = t->n;
        while (peek(p)->t == T_STR) {
            struct tok *u = next(p);
            memcpy(s + o, u->s, u->n);
            o += u->n;
        }
        s[o] = '\0';
        n->lit->u.s = (struct jstr){ s, o, 0, NULL };
        break;
    }
    case T_NAME:
        if (is_name(t, "true") || is_name(t, "True")) { n = mk(p, N_LIT, t->line); n->lit = &V_TRUE_VAL; }
        else if (is_name(t, "false") || is_name(t, "False")) { n = mk(p, N_LIT, t->line); n->lit = &V_FALSE_VAL; }
        else if (is_name(t, "none") || is_name(t, "None")) { n = mk(p, N_LIT, t->line); n->lit = &V_NONE_VAL; }
        else { n = mk(p, N_NAME, t->line); n->str = astrndup(p->ar, t->s, t->n); }
        break;
    case T_OP:
        if (is_op(t, "(")) {
            if (is_op(peek(p), ")")) {
                next(p);
                n = mk(p, N_TUPLE, t->line);
                break;
            }
            struct node *e = parse_expr(p);
            if (is_op(peek(p), ",")) {
                struct nvec v = { 0 };
                nvec_push(p->ar, &v, e);
                while (is_op(peek(p), ",")) {
                    next(p);
                    if (is_op(peek(p), ")")) break;
                    nvec_push(p->ar, &v, parse_expr(p));
                }
                n = mk(p, N_TUPLE, t->line);
                n->kids = v.v;
                n->nkids = v.n;
            } else {
                n = e;
            }
            expect_op(p, ")");
            break;
        }
        if (is_op(t, "[")) {
            struct nvec v = { 0 };
            while (!is_op(peek(p), "]")) {
                nvec_push(p->ar, &v, parse_expr(p));
                if (!is_op(peek(p), ",")) break;
                next(p);
            }
            expect_op(p, "]");
            n = mk(p, N_LIST, t->line);
            n->kids = v.v;
            n->nkids = v.n;
            break;
        }
        if (is_op(t, "{")) {
            struct nvec v = { 0 };
            while (!is_op(peek(p), "}")) {
                nvec_push(p->ar, &v, parse_expr(p));
                expect_op(p, ":");
                nvec_push(p->ar, &v, parse_expr(p));
                if (!is_op(peek(p), ",")) break;
                next(p);
            }
            expect_op(p, "}");
            n = mk(p, N_DICT, t->line);
            n->kids = v.v;
            n->nkids = v.n;
            break;
        }
        /* fall through */
    default: {
        char b[64];
        perr(p, t->line, "unexpected %s in an expression", tok_desc(t, b, sizeof b));
    }
    }
    p->depth--;
    return n;
}

static struct node *parse_postfix(struct parser *p, struct node *n)
{
    for (;;) {
        struct tok *t = peek(p);
        if (is_op(t, ".")) {
            next(p);
            struct node *a = mk(p, N_ATTR, t->line);
            a->a = n;
            struct tok *nt = next(p);
            if (nt->t == T_NAME) a->str = astrndup(p->ar, nt->s, nt->n);
            else if (nt->t == T_INT) {      /* x.0 */
                a->k = N_INDEX;
                a->b = mk(p, N_LIT, nt->line);
                a->b->lit = mkval(p->ar, V_INT);
                a->b->lit->u.i = nt->i;
            } else {
                char b[64];
                perr(p, nt->line, "expected an attribute name after '.', got %s", tok_desc(nt, b, sizeof b));
            }
            n = a;
        } else if (is_op(t, "[")) {
            next(p);
            struct node *parts[3] = { NULL, NULL, NULL };
            int np = 0, slice = 0;
            for (;;) {
                if (is_op(peek(p), ":")) {
                    next(p);
                    slice = 1;
                    if (++np > 2) perr(p, t->line, "too many ':' in a slice");
                    continue;
                }
                if (is_op(peek(p), "]")) break;
                parts[np] = parse_expr(p);
                if (!slice && !is_op(peek(p), ":")) break;
            }
            expect_op(p, "]");
            struct node *a = mk(p, slice ? N_SLICE : N_INDEX, t->line);
            a->a = n;
            if (slice) { a->kids = azalloc(p->ar, 3 * sizeof *a->kids); memcpy(a->kids, parts, sizeof parts); a->nkids = 3; }
            else a->b = parts[0];
            if (!slice && !parts[0]) perr(p, t->line, "empty subscript");
            n = a;
        } else if (is_op(t, "(")) {
            next(p);
            struct node *c = mk(p, N_CALL, t->line);
            c->a = n;
            parse_args(p, c);
            n = c;
        } else {
            return n;
        }
    }
}

/* filters and tests bind tighter than arithmetic (Jinja2: after unary) */
static struct node *parse_filters(struct parser *p, struct node *n)
{
    for (;;) {
        struct tok *t = peek(p);
        if (is_op(t, "|")) {
            next(p);
            struct node *f = mk(p, N_FILTER, t->line);
            f->a = n;
            f->str = expect_name(p);
            while (is_op(peek(p), ".")) {    /* dotted filter names are not a thing; be clear */
                perr(p, t->line, "unexpected '.' after filter '%s'", f->str);
            }
            if (is_op(peek(p), "(")) { next(p); parse_args(p, f); }
            n = f;
        } else {
            return n;
        }
    }
}

static struct node *parse_unary(struct parser *p)
{
    struct tok *t = peek(p);
    if (is_op(t, "-") || is_op(t, "+")) {
        next(p);
        if (++p->depth > MAX_DEPTH) perr(p, t->line, "expression nested more than %d deep", MAX_DEPTH);
        struct node *n = mk(p, is_op(t, "-") ? N_NEG : N_POS, t->line);
        n->a = parse_unary(p);
        p->depth--;
        return n;
    }
    return parse_filters(p, parse_postfix(p, parse_primary(p)));
}

static struct node *bin(struct parser *p, int op, struct node *l, struct node *r, int line)
{
    struct node *n = mk(p, N_BIN, line);
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static struct node *parse_pow(struct parser *p)
{
    struct node *l = parse_unary(p);
    while (is_op(peek(p), "**")) {
        int line = next(p)->line;
        l = bin(p, B_POW, l, parse_unary(p), line);
    }
    return l;
}

static struct node *parse_mul(struct parser *p)
{
    struct node *l = parse_pow(p);
    for (;;) {
        struct tok *t = peek(p);
        int op = is_op(t, "*") ? B_MUL : is_op(t, "/") ? B_DIV : is_op(t, "//") ? B_FLOORDIV
               : is_op(t, "%") ? B_MOD : -1;
        if (op < 0) return l;
        next(p);
        l = bin(p, op, l, parse_pow(p), t->line);
    }
}

static struct node *parse_add(struct parser *p)
{
    struct node *l = parse_mul(p);
    for (;;) {
        struct tok *t = peek(p);
        int op = is_op(t, "+") ? B_ADD : is_op(t, "-") ? B_SUB : -1;
        if (op < 0) return l;
        next(p);
        l = bin(p, op, l, parse_mul(p), t->line);
    }
}

static struct node *parse_cat(struct parser *p)
{
    struct node *l = parse_add(p);
    while (is_op(peek(p), "~")) {
        int line = next(p)->line;
        l = bin(p, B_CAT, l, parse_add(p), line);
    }
    return l;
}

static struct node *parse_test(struct parser *p, struct node *l)
{
    struct tok *t = next(p);                 /* 'is' */
    struct node *n = mk(p, N_TEST, t->line);
    n->a = l;
    if (is_name(peek(p), "not")) { next(p); n->op = 1; }
    struct tok *nt = next(p);
    if (nt->t == T_NAME) n->str = astrndup(p->ar, nt->s, nt->n);
    else if (is_name(nt, "none")) n->str = "none";
    else {
        char b[64];
        perr(p, nt->line, "expected a test name after 'is', got %s", tok_desc(nt, b, sizeof b));
    }
    int neg = n->op;
    /* arguments: is divisibleby(3), is sameas x, is equalto 3 */
    if (is_op(peek(p), "(")) {
        next(p);
        parse_args(p, n);
    } else {
        struct tok *a = peek(p);
        if (a->t == T_INT || a->t == T_FLOAT || a->t == T_STR ||
            (a->t == T_NAME && !is_name(a, "and") && !is_name(a, "or") && !is_name(a, "else") &&
             !is_name(a, "if") && !is_name(a, "is") && !is_name(a, "in") && !is_name(a, "not"))) {
            n->kids = aalloc(p->ar, sizeof *n->kids);
            n->kids[0] = parse_cat(p);
            n->nkids = 1;
            n->op = 1;
        } else {
            n->op = 0;
        }
    }
    /* n->op now counts positional args; keep negation in c */
    n->c = neg ? n : NULL;
    return n;
}

static struct node *parse_cmp(struct parser *p)
{
    struct node *l = parse_cat(p);
    for (;;) {
        struct tok *t = peek(p);
        int op = is_op(t, "==") ? B_EQ : is_op(t, "!=") ? B_NE : is_op(t, "<") ? B_LT
               : is_op(t, "<=") ? B_LE : is_op(t, ">") ? B_GT : is_op(t, ">=") ? B_GE
               : is_name(t, "in") ? B_IN : -1;
        if (op < 0 && is_name(t, "not") && is_name(&p->tk[p->pos + 1], "in")) {
            next(p);
            op = B_NOTIN;
        }
        if (op < 0 && is_name(t, "is")) {
            l = parse_test(p, l);
            continue;
        }
        if (op < 0) return l;
        next(p);
        l = bin(p, op, l, parse_cat(p), t->line);
    }
}

static struct node *parse_not(struct parser *p)
{
    struct tok *t = peek(p);
    if (is_name(t, "not")) {
        next(p);
        if (++p->depth > MAX_DEPTH) perr(p, t->line, "expression nested more than %d deep", MAX_DEPTH);
        struct node *n = mk(p, N_NOT, t->line);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_cmp(p);
}

static struct node *parse_and(struct parser *p)
{
    struct node *l = parse_not(p);
    while (is_name(peek(p), "and")) {
        int line = next(p)->line;
        struct node *n = mk(p, N_AND, line);
        n->a = l;
        n->b = parse_not(p);
        l = n;
    }
    return l;
}

static struct node *parse_or(struct parser *p)
{
    struct node *l = parse_and(p);
    while (is_name(peek(p), "or")) {
        int line = next(p)->line;
        struct node *n = mk(p, N_OR, line);
        n->a = l;
        n->b = parse_and(p);
        l = n;
    }
    return l;
}

static struct node *parse_cond_noternary(struct parser *p) { return parse_or(p); }

static struct node *parse_expr(struct parser *p)
{
    if (++p->depth > MAX_DEPTH) perr(p, peek(p)->line, "expression nested more than %d deep", MAX_DEPTH);
    struct node *e = parse_or(p);
    while (is_name(peek(p), "if")) {
        int line = next(p)->line;
        struct node *n = mk(p, N_COND, line);
        n->a = e;
        n->b = parse_or(p);
        if (is_name(peek(p), "else")) {
            next(p);
            n->c = parse_expr(p);
        }
        e = n;
    }
    p->depth--;
    return e;
}

/* an expression, or a bare tuple a, b (for targets and set values) */
static struct node *parse_tuple_expr(struct parser *p, int names_only)
{
    int line = peek(p)->line;
    struct node *e = names_only ? parse_primary(p) : parse_expr(p);
    if (!is_op(peek(p), ",")) return e;
    struct nvec v = { 0 };
    nvec_push(p->ar, &v, e);
    while (is_op(peek(p), ",")) {
        next(p);
        nvec_push(p->ar, &v, names_only ? parse_primary(p) : parse_expr(p));
    }
    struct node *t = mk(p, N_TUPLE, line);
    t->kids = v.v;
    t->nkids = v.n;
    return t;
}

static void expect_stmt_close(struct parser *p)
{
    struct tok *t = next(p);
    if (t->t != T_STMT_CLOSE) {
        char b[64];
        perr(p, t->line, "expected '%%}', got %s", tok_desc(t, b, sizeof b));
    }
}

/* Parse statements until one of the `ends` keywords opens a tag; returns
 * the block, leaves the keyword's tag open (pos at the keyword). */
static struct node *parse_body(struct parser *p, const char *const *ends, int line);

static int at_keyword(struct parser *p, const char *const *ends)
{
    if (peek(p)->t != T_STMT_OPEN) return 0;
    struct tok *k = &p->tk[p->pos + 1];
    for (int i = 0; ends && ends[i]; i++) if (is_name(k, ends[i])) return 1;
    return 0;
}

static struct node *parse_stmt(struct parser *p)
{
    struct tok *open = next(p);                  /* '{%' */
    struct tok *kw = next(p);
    int line = kw->line;
    if (kw->t != T_NAME) perr(p, line, "expected a statement keyword after '{%%'");
    if (is_name(kw, "if")) {
        struct node *n = mk(p, N_IF, line);
        n->a = parse_expr(p);
        expect_stmt_close(p);
        static const char *const e1[] = { "elif", "else", "endif", NULL };
        n->b = parse_body(p, e1, line);
        struct node *cur = n;
        for (;;) {
            next(p);
            struct tok *k = next(p);
            if (is_name(k, "elif")) {
                struct node *m = mk(p, N_IF, k->line);
                m->a = parse_expr(p);
                expect_stmt_close(p);
                m->b = parse_body(p, e1, k->line);
                cur->c = m;
                cur = m;
            } else if (is_name(k, "else")) {
                expect_stmt_close(p);
                static const char *const e2[] = { "endif", NULL };
                cur->c = parse_body(p, e2, k->line);
                next(p);
                next(p);
                expect_stmt_close(p);
                break;
            } else {
                expect_stmt_close(p);
                break;
            }
        }
        return n;
    }
    if (is_name(kw, "for")) {
        struct node *n = mk(p, N_FOR, line);
        n->a = parse_tuple_expr(p, 1);           /* targets */
        struct node *tg = n->a;
        if (!(tg->k == N_NAME || (tg->k == N_TUPLE && tg->nkids > 0)))
            perr(p, line, "for: the loop variable must be a name or names");
        for (int i = 0; tg->k == N_TUPLE && i < tg->nkids; i++)
            if (tg->kids[i]->k != N_NAME) perr(p, line, "for: the loop variables must be names");
        if (!is_name(next(p), "in")) perr(p, line, "for: expected 'in'");
        n->names = aalloc(p->ar, sizeof *n->names);
        struct node *it = parse_cond_noternary(p);
        struct node *filter = NULL;
        if (is_name(peek(p), "if")) {
            next(p);
            filter = parse_cond_noternary(p);
        }
        if (is_name(peek(p), "recursive")) perr(p, line, "for: 'recursive' loops are not supported");
        expect_stmt_close(p);
        static const char *const e1[] = { "else", "endfor", NULL };
        struct node *body = parse_body(p, e1, line);
        n->kids = aalloc(p->ar, 3 * sizeof *n->kids);
        n->kids[0] = it;
        n->kids[1] = filter;
        n->kids[2] = body;
        n->nkids = 3;
        next(p);
        struct tok *k = next(p);
        if (is_name(k, "else")) {
            expect_stmt_close(p);
            static const char *const e2[] = { "endfor", NULL };
            n->c = parse_body(p, e2, k->line);
            next(p);
            next(p);
        }
        expect_stmt_close(p);
        return n;
    }
    if (is_name(kw, "set")) {
        struct node *target = parse_tuple_expr(p, 0);
        if (!(target->k == N_NAME || target->k == N_ATTR || target->k == N_TUPLE))
            perr(p, line, "set: cannot assign to this expression");
        if (is_op(peek(p), "=")) {
            next(p);
            struct node *n = mk(p, N_SET, line);
            n->a = target;
            n->b = parse_tuple_expr(p, 0);
            expect_stmt_close(p);
            return n;
        }
        if (target->k != N_NAME) perr(p, line, "set block: the target must be a name");
        struct node *n = mk(p, N_SETBLOCK, line);
        n->a = target;
        n->c = NULL;
        if (is_op(peek(p), "|")) {               /* {% set x | filter %} */
            struct node *ph = mk(p, N_LIT, line);
            ph->lit = &V_UNDEF_VAL;
            n->c = parse_filters(p, ph);
        }
        expect_stmt_close(p);
        static const char *const e1[] = { "endset", NULL };
        n->b = parse_body(p, e1, line);
        next(p);
        next(p);
        expect_stmt_close(p);
        return n;
    }
    if (is_name(kw, "macro") || is_name(kw, "call")) {
        int is_macro = is_name(kw, "macro");
        struct node *n = mk(p, is_macro ? N_MACRO : N_CALLBLOCK, line);
        struct nvec params = { 0 }, defs = { 0 };
        if (is_macro) {
            n->str = expect_name(p);
        }
        if (is_macro || is_op(peek(p), "(")) {
            expect_op(p, "(");
            while (!is_op(peek(p), ")")) {
                struct node *pn = mk(p, N_NAME, peek(p)->line);
                pn->str = expect_name(p);
                nvec_push(p->ar, &params, pn);
                if (is_op(peek(p), "=")) { next(p); nvec_push(p->ar, &defs, parse_expr(p)); }
                else nvec_push(p->ar, &defs, NULL);
                if (!is_op(peek(p), ",")) break;
                next(p);
            }
            expect_op(p, ")");
        }
        n->kids = params.v;
        n->nkids = params.n;
        n->defaults = defs.v;
        if (!is_macro) n->a = parse_expr(p);     /* the call */
        expect_stmt_close(p);
        static const char *const em[] = { "endmacro", NULL }, *const ec[] = { "endcall", NULL };
        n->b = parse_body(p, is_macro ? em : ec, line);
        next(p);
        next(p);
        expect_stmt_close(p);
        return n;
    }
    if (is_name(kw, "filter")) {
        struct node *n = mk(p, N_FILTERBLOCK, line);
        struct node *ph = mk(p, N_LIT, line);
        ph->lit = &V_UNDEF_VAL;
        /* filter name [(args)] [| more] */
        struct node *f = mk(p, N_FILTER, line);
        f->a = ph;
        f->str = expect_name(p);
        if (is_op(peek(p), "(")) { next(p); parse_args(p, f); }
        n->a = parse_filters(p, f);
        expect_stmt_close(p);
        static const char *const e1[] = { "endfilter", NULL };
        n->b = parse_body(p, e1, line);
        next(p);
        next(p);
        expect_stmt_close(p);
        return n;
    }
    if (is_name(kw, "generation")) {
        expect_stmt_close(p);
        static const char *const e1[] = { "endgeneration", NULL };
        struct node *b = parse_body(p, e1, line);
        next(p);
        next(p);
        expect_stmt_close(p);
        return b;
    }
    if (is_name(kw, "break") || is_name(kw, "continue")) {
        struct node *n = mk(p, is_name(kw, "break") ? N_BREAK : N_CONTINUE, line);
        expect_stmt_close(p);
        return n;
    }
    (void)open;
    perr(p, line, "unknown or unexpected statement '%.*s'", (int)(kw->n > 40 ? 40 : kw->n), kw->s);
}

static struct node *parse_body(struct parser *p, const char *const *ends, int line)
{
    struct nvec v = { 0 };
    for (;;) {
        struct tok *t = peek(p);
        if (t->t == T_EOF) {
            if (ends) {
                int last = 0;
                while (ends[last + 1]) last++;
                perr(p, line, "'{%% %s %%}' is never closed (no '{%% %s %%}')", ends[last] + 3, ends[last]);
            }
            break;
        }
        if (at_keyword(p, ends)) break;
        if (t->t == T_TEXT) {
            next(p);
            struct node *n = mk(p, N_TEXT, t->line);
            n->text = (struct jstr){ t->s, t->n, 0, NULL };
            nvec_push(p->ar, &v, n);
        } else if (t->t == T_OUT_OPEN) {
            next(p);
            struct node *n = mk(p, N_OUT, t->line);
            n->a = parse_expr(p);
            struct tok *c = next(p);
            if (c->t != T_OUT_CLOSE) {
                char b[64];
                perr(p, c->line, "expected '}}', got %s", tok_desc(c, b, sizeof b));
            }
            nvec_push(p->ar, &v, n);
        } else if (t->t == T_STMT_OPEN) {
            struct tok *k = &p->tk[p->pos + 1];
            if (k->t == T_NAME && (is_name(k, "endif") || is_name(k, "endfor") || is_name(k, "else") ||
                                   is_name(k, "elif") || is_name(k, "endset") || is_name(k, "endmacro") ||
                                   is_name(k, "endcall") || is_name(k, "endfilter") ||
                                   is_name(k, "endgeneration")))
                perr(p, k->line, "unexpected '%.*s'", (int)k->n, k->s);
            nvec_push(p->ar, &v, parse_stmt(p));
        } else {
            char b[64];
            perr(p, t->line, "unexpected %s", tok_desc(t, b, sizeof b));
        }
    }
    struct node *blk = mk(p, N_BLOCK, line);
    blk->kids = v.v;
    blk->nkids = v.n;
    return blk;
}

struct jinja_tmpl *jinja_parse(const char *src, size_t len, char *err, size_t errlen)
{
    struct jinja_tmpl *volatile t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct parser p = { 0 };
    p.ar = &t->ar;
    p.err = err;
    p.errlen = errlen;
    t->ar.oom = &p.jb;
    int rc = setjmp(p.jb);
    if (rc) {
        if (rc == 2) snprintf(err, errlen, "out of memory parsing the template");
        arena_free(&t->ar);
        free(t);
        return NULL;
    }
    size_t n;
    char *s = preprocess(&t->ar, src ? src : "", src ? len : 0, &n);
    lex(&p, s, n);
    t->root = parse_body(&p, NULL, 1);
    t->ar.oom = NULL;
    return t;
}

void jinja_free(struct jinja_tmpl *t)
{
    if (!t) return;
    arena_free(&t->ar);
    free(t);
}

/* ---- evaluation ---------------------------------------------------------------- */

struct scope {
    struct scope *parent;
    struct jdict vars;
};

struct out {
    char *b;
    size_t n, cap;
    size_t *sp;                 /* taint spans of the output */
    size_t nsp, capsp;
};

struct rctx {
    struct arena ar;
    jmp_buf jb;
    char *err;
    size_t errlen;
    int raised;
    long steps, max_steps;
    size_t max_output;
    int call_depth;
    struct scope *globals;
    struct out *out;            /* current output (set blocks, macros redirect it) */
    const val *caller;          /* inside {% call %}: the caller() body */
    int cur_line;               /* of the statement running, for errors without a node */
};

enum { CTL_NONE, CTL_BREAK, CTL_CONTINUE };

static _Noreturn void rerr(struct rctx *r, int line, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (line <= 0) line = r->cur_line;
    if (line > 0) snprintf(r->err, r->errlen, "line %d: %s", line, m);
    else snprintf(r->err, r->errlen, "%s", m);
    longjmp(r->jb, 1);
}

static void step(struct rctx *r, int line)
{
    if (++r->steps > r->max_steps)
        rerr(r, line, "the template ran more than %ld steps (a loop that does not end?)", r->max_steps);
}

/* output */
static void out_grow(struct rctx *r, struct out *o, size_t add, int line)
{
    if (o->n + add > r->max_output)
        rerr(r, line, "the template's output exceeds %zu bytes", r->max_output);
    if (o->n + add + 1 > o->cap) {
        size_t nc = o->cap ? o->cap : 1024;
        while (nc < o->n + add + 1) nc *= 2;
        char *nb = aalloc(&r->ar, nc);
        if (o->n) memcpy(nb, o->b, o->n);
        o->b = nb;
        o->cap = nc;
    }
}

static void out_span(struct rctx *r, struct out *o, size_t a, size_t b)
{
    if (a >= b) return;
    if (o->nsp && o->sp[2 * o->nsp - 1] == a) {     /* extend the last span */
        o->sp[2 * o->nsp - 1] = b;
        return;
    }
    if (o->nsp == o->capsp) {
        size_t nc = o->capsp ? o->capsp * 2 : 16;
        size_t *ns = aalloc(&r->ar, nc * 2 * sizeof *ns);
        if (o->nsp) memcpy(ns, o->sp, o->nsp * 2 * sizeof *ns);
        o->sp = ns;
        o->capsp = nc;
    }
    o->sp[2 * o->nsp] = a;
    o->sp[2 * o->nsp + 1] = b;
    o->nsp++;
}

static void out_str(struct rctx *r, struct out *o, const struct jstr *s, int line)
{
    out_grow(r, o, s->n, line);
    size_t base = o->n;
    memcpy(o->b + o->n, s->s, s->n);
    o->n += s->n;
    for (size_t k = 0; k < s->nt; k++) out_span(r, o, base + s->t[2 * k], base + s->t[2 * k + 1]);
}

static void out_raw(struct rctx *r, struct out *o, const char *s, size_t n, int line)
{
    struct jstr j = { s, n, 0, NULL };
    out_str(r, o, &j, line);
}

static struct jstr out_take(struct rctx *r, struct out *o)
{
    struct jstr s = { o->b ? o->b : "", o->n, o->nsp, o->sp };
    (void)r;
    return s;
}

/* strings */
static struct jstr js_lit(const char *s) { return (struct jstr){ s, strlen(s), 0, NULL }; }

static struct jstr js_cat(struct rctx *r, const struct jstr *a, const struct jstr *b)
{
    struct jstr s;
    if (a->n + b->n > r->max_output)
        rerr(r, 0, "a string would exceed %zu bytes", r->max_output);
    char *d = aalloc(&r->ar, a->n + b->n + 1);
    memcpy(d, a->s, a->n);
    memcpy(d + a->n, b->s, b->n);
    d[a->n + b->n] = '\0';
    s.s = d;
    s.n = a->n + b->n;
    s.nt = a->nt + b->nt;
    s.t = s.nt ? aalloc(&r->ar, s.nt * 2 * sizeof *s.t) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < a->nt; i++, k++) { s.t[2 * k] = a->t[2 * i]; s.t[2 * k + 1] = a->t[2 * i + 1]; }
    for (size_t i = 0; i < b->nt; i++) {
        size_t x = b->t[2 * i] + a->n, y = b->t[2 * i + 1] + a->n;
        if (k && s.t[2 * k - 1] == x) { s.t[2 * k - 1] = y; s.nt--; continue; }
        s.t[2 * k] = x;
        s.t[2 * k + 1] = y;
        k++;
    }
    return s;
}

static struct jstr js_sub(struct rctx *r, const struct jstr *a, size_t from, size_t to)
{
    if (to > a->n) to = a->n;
    if (from > to) from = to;
    struct jstr s = { a->s + from, to - from, 0, NULL };
    if (a->nt) {
        s.t = aalloc(&r->ar, a->nt * 2 * sizeof *s.t);
        for (size_t i = 0; i < a->nt; i++) {
            size_t x = a->t[2 * i] > from ? a->t[2 * i] : from;
            size_t y = a->t[2 * i + 1] < to ? a->t[2 * i + 1] : to;
            if (x < y) { s.t[2 * s.nt] = x - from; s.t[2 * s.nt + 1] = y - from; s.nt++; }
        }
    }
    return s;
}

/* a new string wholly tainted when any part of src was */
static struct jstr js_new(struct rctx *r, const char *s, size_t n, int tainted)
{
    char *d = aalloc(&r->ar, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    struct jstr j = { d, n, 0, NULL };
    if (tainted && n) {
        j.t = aalloc(&r->ar, 2 * sizeof *j.t);
        j.t[0] = 0;
        j.t[1] = n;
        j.nt = 1;
    }
    return j;
}

static val *mkstr(struct rctx *r, struct jstr s)
{
    val *v = mkval(&r->ar, V_STR);
    v->u.s = s;
    return v;
}

static val *mkint(struct rctx *r, int64_t i)
{
    val *v = mkval(&r->ar, V_INT);
    v->u.i = i;
    return v;
}

static val *mkfloat(struct rctx *r, double f)
{
    val *v = mkval(&r->ar, V_FLOAT);
    v->u.f = f;
    return v;
}

static val *mkbool(int b) { return b ? &V_TRUE_VAL : &V_FALSE_VAL; }

static val *mklist(struct rctx *r, size_t cap)
{
    val *v = mkval(&r->ar, V_LIST);
    v->u.l = azalloc(&r->ar, sizeof *v->u.l);
    if (cap) {
        v->u.l->v = aalloc(&r->ar, cap * sizeof(val *));
        v->u.l->cap = cap;
    }
    return v;
}

static void list_push(struct rctx *r, struct jlist *l, val *x)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        val **nv = aalloc(&r->ar, nc * sizeof *nv);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
}

static val *mkdict(struct rctx *r, enum vtype t)
{
    val *v = mkval(&r->ar, t);
    v->u.d = azalloc(&r->ar, sizeof *v->u.d);
    return v;
}

static val **dict_slot(const struct jdict *d, const char *k, size_t n)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].n == n && memcmp(d->k[i].s, k, n) == 0) return &d->v[i];
    return NULL;
}

static val *dict_get(const struct jdict *d, const char *k)
{
    val **s = dict_slot(d, k, strlen(k));
    return s ? *s : NULL;
}

static void dict_set(struct rctx *r, struct jdict *d, struct jstr k, val *v)
{
    val **s = dict_slot(d, k.s, k.n);
    if (s) { *s = v; return; }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 8;
        struct jstr *nk = aalloc(&r->ar, nc * sizeof *nk);
        val **nv = aalloc(&r->ar, nc * sizeof *nv);
        if (d->n) { memcpy(nk, d->k, d->n * sizeof *nk); memcpy(nv, d->v, d->n * sizeof *nv); }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

/* JSON data -> values; taint marks every string */
static val *from_json(struct rctx *r, const cJSON *j, int taint, int depth)
{
    if (depth > 64) rerr(r, 0, "the data is nested more than 64 deep");
    if (!j || cJSON_IsNull(j)) return &V_NONE_VAL;
    if (cJSON_IsBool(j)) return mkbool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.007199254740992e15) return mkint(r, (int64_t)d);
        return mkfloat(r, d);
    }
    if (cJSON_IsString(j)) return mkstr(r, js_new(r, j->valuestring, strlen(j->valuestring), taint));
    if (cJSON_IsArray(j)) {
        val *l = mklist(r, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) list_push(r, l->u.l, from_json(r, c, taint, depth + 1));
        return l;
    }
    if (cJSON_IsObject(j)) {
        val *d = mkdict(r, V_DICT);
        for (const cJSON *c = j->child; c; c = c->next)
            dict_set(r, d->u.d, js_new(r, c->string, strlen(c->string), taint), from_json(r, c, taint, depth + 1));
        return d;
    }
    return &V_UNDEF_VAL;
}

/* ---- printing -------------------------------------------------------------- */

static void fmt_float(double f, char *buf, size_t n)
{
    if (isnan(f)) { snprintf(buf, n, "NaN"); return; }
    if (isinf(f)) { snprintf(buf, n, f > 0 ? "Infinity" : "-Infinity"); return; }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, f);
        if (strtod(buf, NULL) == f) break;
    }
    /* like JavaScript's number formatting for the exponent forms */
    char *e = strchr(buf, 'e');
    if (e) {
        double a = fabs(f);
        if (a >= 1e-7 && a < 1e21) snprintf(buf, n, "%.*f", (int)(a < 1 ? 20 : 0), f);
    }
    if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n') && !strchr(buf, 'I'))
        strncat(buf, ".0", n - strlen(buf) - 1);
}

static void to_json(struct rctx *r, struct out *o, const val *v, int indent, int depth, int undef_null, int line);

static void json_str(struct rctx *r, struct out *o, const struct jstr *s, int line)
{
    size_t start = o->n;
    out_raw(r, o, "\"", 1, line);
    for (size_t i = 0; i < s->n; i++) {
        unsigned char c = (unsigned char)s->s[i];
        char e[8];
        const char *w = NULL;
        size_t wl = 0;
        if (c == '"') w = "\\\"", wl = 2;
        else if (c == '\\') w = "\\\\", wl = 2;
        else if (c == '\n') w = "\\n", wl = 2;
        else if (c == '\r') w = "\\r", wl = 2;
        else if (c == '\t') w = "\\t", wl = 2;
        else if (c == '\b') w = "\\b", wl = 2;
        else if (c == '\f') w = "\\f", wl = 2;
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); w = e; wl = 6; }
        else { e[0] = (char)c; w = e; wl = 1; }
        out_raw(r, o, w, wl, line);
    }
    out_raw(r, o, "\"", 1, line);
    if (s->nt) out_span(r, o, start, o->n);     /* JSON of user text is user text */
}

static void json_pad(struct rctx *r, struct out *o, int indent, int depth, int line)
{
    out_raw(r, o, "\n", 1, line);
    for (int i = 0; i < indent * depth; i++) out_raw(r, o, " ", 1, line);
}

static void to_json(struct rctx *r, struct out *o, const val *v, int indent, int depth, int undef_null, int line)
{
    if (depth > 64) rerr(r, line, "tojson: nested more than 64 deep");
    char buf[64];
    const char *isep = indent ? "," : ", ";
    switch (v->t) {
    case V_UNDEF: out_raw(r, o, undef_null ? "null" : "undefined", undef_null ? 4 : 9, line); return;
    case V_NONE: out_raw(r, o, "null", 4, line); return;
    case V_BOOL: out_raw(r, o, v->u.b ? "true" : "false", v->u.b ? 4 : 5, line); return;
    case V_INT: snprintf(buf, sizeof buf, "%lld", (long long)v->u.i); out_raw(r, o, buf, strlen(buf), line); return;
    case V_FLOAT: {
        fmt_float(v->u.f, buf, sizeof buf);
        size_t l = strlen(buf);
        if (l > 2 && !strcmp(buf + l - 2, ".0")) buf[l - 2] = '\0';   /* JSON.stringify(1.0) = 1 */
        if (isnan(v->u.f) || isinf(v->u.f)) snprintf(buf, sizeof buf, "null");
        out_raw(r, o, buf, strlen(buf), line);
        return;
    }
    case V_STR: json_str(r, o, &v->u.s, line); return;
    case V_LIST:
        out_raw(r, o, "[", 1, line);
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) out_raw(r, o, isep, strlen(isep), line);
            if (indent) json_pad(r, o, indent, depth + 1, line);
            to_json(r, o, v->u.l->v[i], indent, depth + 1, undef_null, line);
        }
        if (indent && v->u.l->n) json_pad(r, o, indent, depth, line);
        out_raw(r, o, "]", 1, line);
        return;
    case V_DICT:
    case V_NS:
    case V_KWARGS:
        out_raw(r, o, "{", 1, line);
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) out_raw(r, o, isep, strlen(isep), line);
            if (indent) json_pad(r, o, indent, depth + 1, line);
            json_str(r, o, &v->u.d->k[i], line);
            out_raw(r, o, ": ", 2, line);
            to_json(r, o, v->u.d->v[i], indent, depth + 1, undef_null, line);
        }
        if (indent && v->u.d->n) json_pad(r, o, indent, depth, line);
        out_raw(r, o, "}", 1, line);
        return;
    default:
        rerr(r, line, "tojson: cannot convert a %s", v->t == V_MACRO ? "macro" : "function");
    }
}

/* str(v) as the template prints it */
static struct jstr to_str(struct rctx *r, const val *v, int line)
{
    char buf[64];
    switch (v->t) {
    case V_UNDEF:
    case V_NONE: return js_lit("");
    case V_BOOL: return js_lit(v->u.b ? "true" : "false");
    case V_INT: snprintf(buf, sizeof buf, "%lld", (long long)v->u.i); return js_new(r, buf, strlen(buf), 0);
    case V_FLOAT: fmt_float(v->u.f, buf, sizeof buf); return js_new(r, buf, strlen(buf), 0);
    case V_STR: return v->u.s;
    case V_LIST:
    case V_DICT:
    case V_NS:
    case V_KWARGS: {
        struct out o = { 0 };
        to_json(r, &o, v, 0, 0, 0, line);
        return out_take(r, &o);
    }
    default: return js_lit("");
    }
}

static int truthy(const val *v)
{
    switch (v->t) {
    case V_UNDEF:
    case V_NONE: return 0;
    case V_BOOL: return v->u.b;
    case V_INT: return v->u.i != 0;
    case V_FLOAT: return v->u.f != 0;
    case V_STR: return v->u.s.n != 0;
    case V_LIST: return v->u.l->n != 0;
    case V_DICT:
    case V_KWARGS: return v->u.d->n != 0;
    default: return 1;
    }
}

static const char *type_name(const val *v)
{
    static const char *const n[] = { "undefined", "none", "boolean", "integer", "float", "string",
        "list", "dict", "namespace", "macro", "function", "method", "keyword arguments" };
    return n[v->t];
}

static int is_num(const val *v) { return v->t == V_INT || v->t == V_FLOAT || v->t == V_BOOL; }
static double num_of(const val *v) { return v->t == V_FLOAT ? v->u.f : v->t == V_INT ? (double)v->u.i : v->u.b; }
/* integer value of an int or bool */
static int64_t ival(const val *v) { return v->t == V_INT ? v->u.i : v->u.b; }
/* a double as int64, saturated (NaN is 0): never an out-of-range cast */
static int64_t d2i(double d)
{
    if (d != d) return 0;
    if (d >= 9.2233720368547758e18) return INT64_MAX;
    if (d <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)d;
}

static int vequal_d(const val *a, const val *b, int depth);
static int vequal(const val *a, const val *b) { return vequal_d(a, b, 0); }

static int vequal_d(const val *a, const val *b, int depth)
{
    if (depth > 64) return a == b;
    if (is_num(a) && is_num(b)) return num_of(a) == num_of(b);
    if (a->t != b->t) return (a->t == V_UNDEF && b->t == V_UNDEF);
    switch (a->t) {
    case V_UNDEF:
    case V_NONE: return 1;
    case V_STR: return a->u.s.n == b->u.s.n && memcmp(a->u.s.s, b->u.s.s, a->u.s.n) == 0;
    case V_LIST:
        if (a->u.l->n != b->u.l->n) return 0;
        for (size_t i = 0; i < a->u.l->n; i++) if (!vequal_d(a->u.l->v[i], b->u.l->v[i], depth + 1)) return 0;
        return 1;
    case V_DICT:
        if (a->u.d->n != b->u.d->n) return 0;
        for (size_t i = 0; i < a->u.d->n; i++) {
            val **o = dict_slot(b->u.d, a->u.d->k[i].s, a->u.d->k[i].n);
            if (!o || !vequal_d(a->u.d->v[i], *o, depth + 1)) return 0;
        }
        return 1;
    default: return a == b;
    }
}

static int vcompare(struct rctx *r, const val *a, const val *b, int line)
{
    if (is_num(a) && is_num(b)) {
        double x = num_of(a), y = num_of(b);
        return x < y ? -1 : x > y;
    }
    if (a->t == V_STR && b->t == V_STR) {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.s, b->u.s.s, n);
        if (c) return c < 0 ? -1 : 1;
        return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
    }
    rerr(r, line, "cannot compare %s with %s", type_name(a), type_name(b));
}

/* ---- scopes ------------------------------------------------------------------ */

static struct scope *scope_new(struct rctx *r, struct scope *parent)
{
    struct scope *s = azalloc(&r->ar, sizeof *s);
    s->parent = parent;
    return s;
}

static val *lookup(struct scope *s, const char *name)
{
    for (; s; s = s->parent) {
        val *v = dict_get(&s->vars, name);
        if (v) return v;
    }
    return NULL;
}

static void scope_set(struct rctx *r, struct scope *s, const char *name, val *v)
{
    dict_set(r, &s->vars, js_lit(name), v);
}

/* ---- functions, filters, tests, methods ------------------------------------ */

enum { F_RANGE, F_NAMESPACE, F_RAISE, F_STRFTIME, F_DICT, F_CALLER, F_JOINER };

enum {
    M_STR_UPPER, M_STR_LOWER, M_STR_STRIP, M_STR_LSTRIP, M_STR_RSTRIP, M_STR_SPLIT, M_STR_RSPLIT,
    M_STR_STARTSWITH, M_STR_ENDSWITH, M_STR_REPLACE, M_STR_TITLE, M_STR_CAPITALIZE, M_STR_FIND,
    M_STR_COUNT, M_STR_JOIN, M_STR_SPLITLINES, M_STR_ISDIGIT, M_STR_ISALPHA, M_STR_ISSPACE,
    M_STR_FORMAT,
    M_DICT_ITEMS, M_DICT_KEYS, M_DICT_VALUES, M_DICT_GET, M_DICT_UPDATE,
    M_LIST_APPEND, M_LIST_POP, M_LIST_EXTEND, M_LIST_INDEX, M_LIST_INSERT,
};

static const struct { const char *name; int m; enum vtype on; } METHODS[] = {
    { "upper", M_STR_UPPER, V_STR }, { "lower", M_STR_LOWER, V_STR }, { "strip", M_STR_STRIP, V_STR },
    { "lstrip", M_STR_LSTRIP, V_STR }, { "rstrip", M_STR_RSTRIP, V_STR }, { "split", M_STR_SPLIT, V_STR },
    { "rsplit", M_STR_RSPLIT, V_STR }, { "startswith", M_STR_STARTSWITH, V_STR },
    { "endswith", M_STR_ENDSWITH, V_STR }, { "replace", M_STR_REPLACE, V_STR },
    { "title", M_STR_TITLE, V_STR }, { "capitalize", M_STR_CAPITALIZE, V_STR },
    { "find", M_STR_FIND, V_STR }, { "count", M_STR_COUNT, V_STR }, { "join", M_STR_JOIN, V_STR },
    { "splitlines", M_STR_SPLITLINES, V_STR }, { "isdigit", M_STR_ISDIGIT, V_STR },
    { "isalpha", M_STR_ISALPHA, V_STR }, { "isspace", M_STR_ISSPACE, V_STR },
    { "format", M_STR_FORMAT, V_STR },
    { "items", M_DICT_ITEMS, V_DICT }, { "keys", M_DICT_KEYS, V_DICT },
    { "values", M_DICT_VALUES, V_DICT }, { "get", M_DICT_GET, V_DICT },
    { "update", M_DICT_UPDATE, V_DICT },
    { "append", M_LIST_APPEND, V_LIST }, { "pop", M_LIST_POP, V_LIST },
    { "extend", M_LIST_EXTEND, V_LIST }, { "index", M_LIST_INDEX, V_LIST },
    { "insert", M_LIST_INSERT, V_LIST },
};

struct args {
    val **pos;
    int npos;
    char **kwn;
    val **kwv;
    int nkw;
};

static val *arg(const struct args *a, int i, const char *name)
{
    if (i >= 0 && i < a->npos) return a->pos[i];
    for (int k = 0; name && k < a->nkw; k++) if (!strcmp(a->kwn[k], name)) return a->kwv[k];
    return NULL;
}

static val *eval(struct rctx *r, struct node *n, struct scope *s);
static int exec_block(struct rctx *r, struct node *n, struct scope *s);
static val *call_value(struct rctx *r, val *fn, struct args *a, int line);

static struct jstr need_str(struct rctx *r, const val *v, const char *what, int line)
{
    if (!v || v->t != V_STR) rerr(r, line, "%s: expected a string, got %s", what, v ? type_name(v) : "nothing");
    return v->u.s;
}

static int64_t need_int(struct rctx *r, const val *v, const char *what, int line)
{
    if (!v || (v->t != V_INT && v->t != V_BOOL && !(v->t == V_FLOAT && v->u.f == floor(v->u.f))))
        rerr(r, line, "%s: expected an integer, got %s", what, v ? type_name(v) : "nothing");
    return v->t == V_FLOAT ? d2i(v->u.f) : v->t == V_INT ? v->u.i : v->u.b;
}

static int ws_char(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static struct jstr str_strip(struct rctx *r, const struct jstr *s, const val *chars, int left, int right, int line)
{
    size_t a = 0, b = s->n;
    struct jstr cs = { 0 };
    int have = chars && chars->t != V_NONE && chars->t != V_UNDEF;
    if (have) cs = need_str(r, chars, "strip", line);
#define IN_SET(c) (have ? memchr(cs.s, (c), cs.n) != NULL : ws_char(c))
    if (left) while (a < b && IN_SET(s->s[a])) a++;
    if (right) while (b > a && IN_SET(s->s[b - 1])) b--;
#undef IN_SET
    return js_sub(r, s, a, b);
}

static val *str_split(struct rctx *r, const struct jstr *s, const val *sepv, const val *maxv, int line)
{
    val *l = mklist(r, 0);
    int64_t max = maxv && maxv->t != V_NONE ? need_int(r, maxv, "split", line) : -1;
    if (!sepv || sepv->t == V_NONE || sepv->t == V_UNDEF) {
        size_t i = 0;
        while (i < s->n) {
            while (i < s->n && ws_char(s->s[i])) i++;
            if (i >= s->n) break;
            size_t j = i;
            if (max >= 0 && (int64_t)l->u.l->n >= max) j = s->n;
            else while (j < s->n && !ws_char(s->s[j])) j++;
            list_push(r, l->u.l, mkstr(r, js_sub(r, s, i, j)));
            i = j;
        }
        return l;
    }
    struct jstr sep = need_str(r, sepv, "split", line);
    if (sep.n == 0) rerr(r, line, "split: empty separator");
    size_t i = 0;
    for (;;) {
        const char *f = (max < 0 || (int64_t)l->u.l->n < max) ? memmem(s->s + i, s->n - i, sep.s, sep.n) : NULL;
        if (!f) {
            list_push(r, l->u.l, mkstr(r, js_sub(r, s, i, s->n)));
            break;
        }
        size_t j = (size_t)(f - s->s);
        list_push(r, l->u.l, mkstr(r, js_sub(r, s, i, j)));
        i = j + sep.n;
    }
    return l;
}

static struct jstr str_replace(struct rctx *r, const struct jstr *s, const struct jstr *a,
                               const struct jstr *b, int64_t count, int line)
{
    struct out o = { 0 };
    size_t i = 0;
    int64_t done = 0;
    if (a->n == 0) {
        /* Python: insert b between every character */
        for (; i <= s->n; i++) {
            if (count < 0 || done < count) { out_str(r, &o, b, line); done++; }
            if (i < s->n) { struct jstr c = js_sub(r, s, i, i + 1); out_str(r, &o, &c, line); }
        }
        return out_take(r, &o);
    }
    while (i < s->n) {
        const char *f = (count < 0 || done < count) ? memmem(s->s + i, s->n - i, a->s, a->n) : NULL;
        if (!f) break;
        size_t j = (size_t)(f - s->s);
        struct jstr pre = js_sub(r, s, i, j);
        out_str(r, &o, &pre, line);
        out_str(r, &o, b, line);
        i = j + a->n;
        done++;
    }
    struct jstr rest = js_sub(r, s, i, s->n);
    out_str(r, &o, &rest, line);
    return out_take(r, &o);
}

static struct jstr str_case(struct rctx *r, const struct jstr *s, int mode)
{
    /* ASCII case mapping; other bytes pass through (UTF-8 stays valid) */
    char *d = aalloc(&r->ar, s->n + 1);
    int start = 1;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char c = (unsigned char)s->s[i];
        if (mode == 0) d[i] = (char)toupper(c);
        else if (mode == 1) d[i] = (char)tolower(c);
        else if (mode == 2) {            /* title */
            d[i] = (char)(start ? toupper(c) : tolower(c));
            start = !isalnum(c) && c < 0x80;
        } else {                         /* capitalize: first character only */
            d[i] = (char)(i == 0 ? toupper(c) : c);
        }
    }
    d[s->n] = '\0';
    struct jstr j = { d, s->n, s->nt, s->t };
    return j;
}

static val *do_items(struct rctx *r, const val *d)
{
    val *l = mklist(r, d->u.d->n);
    for (size_t i = 0; i < d->u.d->n; i++) {
        val *t = mklist(r, 2);
        t->tuple = 1;
        list_push(r, t->u.l, mkstr(r, d->u.d->k[i]));
        list_push(r, t->u.l, d->u.d->v[i]);
        list_push(r, l->u.l, t);
    }
    return l;
}

static val *call_method(struct rctx *r, val *self, int m, struct args *a, int line)
{
    switch (m) {
    case M_STR_UPPER: return mkstr(r, str_case(r, &self->u.s, 0));
    case M_STR_LOWER: return mkstr(r, str_case(r, &self->u.s, 1));
    case M_STR_TITLE: return mkstr(r, str_case(r, &self->u.s, 2));
    case M_STR_CAPITALIZE: return mkstr(r, str_case(r, &self->u.s, 3));
    case M_STR_STRIP: return mkstr(r, str_strip(r, &self->u.s, arg(a, 0, "chars"), 1, 1, line));
    case M_STR_LSTRIP: return mkstr(r, str_strip(r, &self->u.s, arg(a, 0, "chars"), 1, 0, line));
    case M_STR_RSTRIP: return mkstr(r, str_strip(r, &self->u.s, arg(a, 0, "chars"), 0, 1, line));
    case M_STR_SPLIT: return str_split(r, &self->u.s, arg(a, 0, "sep"), arg(a, 1, "maxsplit"), line);
    case M_STR_RSPLIT: {
        val *maxv = arg(a, 1, "maxsplit");
        if (maxv && maxv->t != V_NONE && need_int(r, maxv, "rsplit", line) >= 0) {
            /* split from the right: reverse search */
            int64_t max = need_int(r, maxv, "rsplit", line);
            struct jstr sep = need_str(r, arg(a, 0, "sep"), "rsplit", line);
            if (!sep.n) rerr(r, line, "rsplit: empty separator");
            size_t end = self->u.s.n;
            val *tmp = mklist(r, 0);
            while ((int64_t)tmp->u.l->n < max) {
                size_t k = end;
                int found = 0;
                while (k >= sep.n) {
                    if (!memcmp(self->u.s.s + k - sep.n, sep.s, sep.n)) { found = 1; break; }
                    k--;
                }
                if (!found) break;
                list_push(r, tmp->u.l, mkstr(r, js_sub(r, &self->u.s, k, end)));
                end = k - sep.n;
            }
            val *l = mklist(r, 0);
            list_push(r, l->u.l, mkstr(r, js_sub(r, &self->u.s, 0, end)));
            for (size_t i = tmp->u.l->n; i-- > 0;) list_push(r, l->u.l, tmp->u.l->v[i]);
            return l;
        }
        return str_split(r, &self->u.s, arg(a, 0, "sep"), NULL, line);
    }
    case M_STR_STARTSWITH:
    case M_STR_ENDSWITH: {
        val *p = arg(a, 0, "prefix");
        if (!p) rerr(r, line, "%s: needs an argument", m == M_STR_STARTSWITH ? "startswith" : "endswith");
        val *one[1] = { p };
        val **cands = one;
        size_t nc = 1;
        if (p->t == V_LIST) { cands = p->u.l->v; nc = p->u.l->n; }
        for (size_t i = 0; i < nc; i++) {
            struct jstr x = need_str(r, cands[i], "startswith", line);
            if (x.n <= self->u.s.n &&
                !memcmp(m == M_STR_STARTSWITH ? self->u.s.s : self->u.s.s + self->u.s.n - x.n, x.s, x.n))
                return &V_TRUE_VAL;
        }
        return &V_FALSE_VAL;
    }
    case M_STR_REPLACE: {
        struct jstr x = need_str(r, arg(a, 0, "old"), "replace", line);
        struct jstr y = need_str(r, arg(a, 1, "new"), "replace", line);
        val *c = arg(a, 2, "count");
        return mkstr(r, str_replace(r, &self->u.s, &x, &y, c ? need_int(r, c, "replace", line) : -1, line));
    }
    case M_STR_FIND: {
        struct jstr x = need_str(r, arg(a, 0, "sub"), "find", line);
        const char *f = memmem(self->u.s.s, self->u.s.n, x.s, x.n);
        return mkint(r, f ? (int64_t)(f - self->u.s.s) : -1);
    }
    case M_STR_COUNT: {
        struct jstr x = need_str(r, arg(a, 0, "sub"), "count", line);
        int64_t c = 0;
        if (!x.n) return mkint(r, (int64_t)self->u.s.n + 1);
        for (const char *p = self->u.s.s, *e = p + self->u.s.n; (p = memmem(p, (size_t)(e - p), x.s, x.n)); p += x.n) c++;
        return mkint(r, c);
    }
    case M_STR_JOIN: {
        val *l = arg(a, 0, "iterable");
        if (!l || l->t != V_LIST) rerr(r, line, "join: expected a list");
        struct out o = { 0 };
        for (size_t i = 0; i < l->u.l->n; i++) {
            if (i) out_str(r, &o, &self->u.s, line);
            struct jstr x = to_str(r, l->u.l->v[i], line);
            out_str(r, &o, &x, line);
        }
        return mkstr(r, out_take(r, &o));
    }
    case M_STR_SPLITLINES: {
        val *l = mklist(r, 0);
        size_t i = 0;
        while (i < self->u.s.n) {
            size_t j = i;
            while (j < self->u.s.n && self->u.s.s[j] != '\n' && self->u.s.s[j] != '\r') j++;
            list_push(r, l->u.l, mkstr(r, js_sub(r, &self->u.s, i, j)));
            if (j < self->u.s.n && self->u.s.s[j] == '\r' && j + 1 < self->u.s.n && self->u.s.s[j + 1] == '\n') j++;
            i = j + 1;
        }
        return l;
    }
    case M_STR_ISDIGIT:
    case M_STR_ISALPHA:
    case M_STR_ISSPACE: {
        if (!self->u.s.n) return &V_FALSE_VAL;
        for (size_t i = 0; i < self->u.s.n; i++) {
            unsigned char c = (unsigned char)self->u.s.s[i];
            int ok = m == M_STR_ISDIGIT ? isdigit(c) : m == M_STR_ISALPHA ? isalpha(c) : ws_char((char)c);
            if (!ok) return &V_FALSE_VAL;
        }
        return &V_TRUE_VAL;
    }
    case M_STR_FORMAT:
        rerr(r, line, "str.format is not supported");
    case M_DICT_ITEMS: return do_items(r, self);
    case M_DICT_KEYS: {
        val *l = mklist(r, self->u.d->n);
        for (size_t i = 0; i < self->u.d->n; i++) list_push(r, l->u.l, mkstr(r, self->u.d->k[i]));
        return l;
    }
    case M_DICT_VALUES: {
        val *l = mklist(r, self->u.d->n);
        for (size_t i = 0; i < self->u.d->n; i++) list_push(r, l->u.l, self->u.d->v[i]);
        return l;
    }
    case M_DICT_GET: {
        struct jstr k = need_str(r, arg(a, 0, "key"), "get", line);
        val **s = dict_slot(self->u.d, k.s, k.n);
        if (s) return *s;
        val *d = arg(a, 1, "default");
        return d ? d : &V_NONE_VAL;
    }
    case M_DICT_UPDATE: {
        val *o = arg(a, 0, NULL);
        if (o && (o->t == V_DICT || o->t == V_KWARGS))
            for (size_t i = 0; i < o->u.d->n; i++) dict_set(r, self->u.d, o->u.d->k[i], o->u.d->v[i]);
        for (int k = 0; k < a->nkw; k++) dict_set(r, self->u.d, js_lit(a->kwn[k]), a->kwv[k]);
        return &V_NONE_VAL;
    }
    case M_LIST_APPEND: {
        val *x = arg(a, 0, NULL);
        if (!x) rerr(r, line, "append: needs an argument");
        list_push(r, self->u.l, x);
        return &V_NONE_VAL;
    }
    case M_LIST_EXTEND: {
        val *x = arg(a, 0, NULL);
        if (!x || x->t != V_LIST) rerr(r, line, "extend: expected a list");
        size_t n = x->u.l->n;
        for (size_t i = 0; i < n; i++) list_push(r, self->u.l, x->u.l->v[i]);
        return &V_NONE_VAL;
    }
    case M_LIST_INSERT: {
        int64_t i = need_int(r, arg(a, 0, NULL), "insert", line);
        val *x = arg(a, 1, NULL);
        if (!x) rerr(r, line, "insert: needs two arguments");
        int64_t n = (int64_t)self->u.l->n;
        if (i < 0) i += n;
        if (i < 0) i = 0;
        if (i > n) i = n;
        list_push(r, self->u.l, x);
        memmove(self->u.l->v + i + 1, self->u.l->v + i, (size_t)(n - i) * sizeof(val *));
        self->u.l->v[i] = x;
        return &V_NONE_VAL;
    }
    case M_LIST_POP: {
        int64_t n = (int64_t)self->u.l->n;
        val *iv = arg(a, 0, NULL);
        int64_t i = iv ? need_int(r, iv, "pop", line) : n - 1;
        if (i < 0) i += n;
        if (i < 0 || i >= n) rerr(r, line, "pop: index out of range");
        val *x = self->u.l->v[i];
        memmove(self->u.l->v + i, self->u.l->v + i + 1, (size_t)(n - i - 1) * sizeof(val *));
        self->u.l->n--;
        return x;
    }
    case M_LIST_INDEX: {
        val *x = arg(a, 0, NULL);
        for (size_t i = 0; x && i < self->u.l->n; i++) if (vequal(self->u.l->v[i], x)) return mkint(r, (int64_t)i);
        rerr(r, line, "index: value not in list");
    }
    }
    rerr(r, line, "unknown method");
}

/* attribute of a value: fields of dicts/namespaces, then methods */
static val *get_attr(struct rctx *r, val *o, const char *name, int line)
{
    (void)line;
    if (o->t == V_DICT || o->t == V_NS || o->t == V_KWARGS) {
        val *v = dict_get(o->u.d, name);
        if (v) return v;
    }
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
        if (METHODS[i].on == (o->t == V_KWARGS ? V_DICT : o->t) && !strcmp(METHODS[i].name, name)) {
            val *m = mkval(&r->ar, V_METHOD);
            m->u.meth.self = o;
            m->u.meth.m = METHODS[i].m;
            return m;
        }
    }
    return &V_UNDEF_VAL;
}

static val *get_index(struct rctx *r, val *o, val *k, int line)
{
    if (o->t == V_LIST || o->t == V_STR) {
        if (k->t != V_INT && k->t != V_BOOL) {
            if (k->t == V_STR && o->t != V_STR) return get_attr(r, o, k->u.s.s, line);
            rerr(r, line, "%s index must be an integer, got %s", type_name(o), type_name(k));
        }
        int64_t n = o->t == V_LIST ? (int64_t)o->u.l->n : (int64_t)o->u.s.n, i = k->t == V_INT ? k->u.i : k->u.b;
        if (i < 0) i += n;
        if (i < 0 || i >= n) return &V_UNDEF_VAL;
        if (o->t == V_LIST) return o->u.l->v[i];
        return mkstr(r, js_sub(r, &o->u.s, (size_t)i, (size_t)i + 1));
    }
    if (o->t == V_DICT || o->t == V_NS || o->t == V_KWARGS) {
        if (k->t == V_STR) {
            val **s = dict_slot(o->u.d, k->u.s.s, k->u.s.n);
            if (s) return *s;
            char *nm = astrndup(&r->ar, k->u.s.s, k->u.s.n);
            return get_attr(r, o, nm, line);
        }
        struct jstr ks = to_str(r, k, line);
        val **s = dict_slot(o->u.d, ks.s, ks.n);
        return s ? *s : &V_UNDEF_VAL;
    }
    if (o->t == V_UNDEF) return &V_UNDEF_VAL;
    rerr(r, line, "cannot index a %s", type_name(o));
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static val *do_slice(struct rctx *r, val *o, val *a, val *b, val *c, int line)
{
    int64_t n = o->t == V_LIST ? (int64_t)o->u.l->n : o->t == V_STR ? (int64_t)o->u.s.n : -1;
    if (n < 0) rerr(r, line, "cannot slice a %s", type_name(o));
    int64_t st = c && c->t != V_NONE && c->t != V_UNDEF ? need_int(r, c, "slice step", line) : 1;
    if (st == 0) rerr(r, line, "slice step cannot be zero");
    int64_t lo, hi;
    int has_a = a && a->t != V_NONE && a->t != V_UNDEF, has_b = b && b->t != V_NONE && b->t != V_UNDEF;
    if (st > 0) {
        lo = has_a ? need_int(r, a, "slice", line) : 0;
        hi = has_b ? need_int(r, b, "slice", line) : n;
        if (lo < 0) lo += n;
        if (hi < 0) hi += n;
        lo = clampi(lo, 0, n);
        hi = clampi(hi, 0, n);
    } else {
        lo = has_a ? need_int(r, a, "slice", line) : n - 1;
        hi = has_b ? need_int(r, b, "slice", line) : -n - 1;
        if (lo < 0) lo += n;
        if (hi < 0) hi += n;
        lo = clampi(lo, -1, n - 1);
        hi = clampi(hi, -1, n - 1);
    }
    if (o->t == V_STR && st == 1) return mkstr(r, js_sub(r, &o->u.s, (size_t)lo, (size_t)(hi > lo ? hi : lo)));
    if (o->t == V_STR) {
        struct out out = { 0 };
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) {
            struct jstr ch = js_sub(r, &o->u.s, (size_t)i, (size_t)i + 1);
            out_str(r, &out, &ch, line);
        }
        return mkstr(r, out_take(r, &out));
    }
    val *l = mklist(r, 0);
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) list_push(r, l->u.l, o->u.l->v[i]);
    return l;
}

static size_t utf8_count(const struct jstr *s)
{
    size_t c = 0;
    for (size_t i = 0; i < s->n; i++) if (((unsigned char)s->s[i] & 0xc0) != 0x80) c++;
    return c;
}

static int run_test(struct rctx *r, const char *name, val *v, struct args *a, int line);

/* the sequence a filter or loop walks: lists, dict keys, string characters */
static val *as_list(struct rctx *r, val *v, const char *what, int line)
{
    if (v->t == V_LIST) return v;
    if (v->t == V_DICT || v->t == V_NS || v->t == V_KWARGS) {
        val *l = mklist(r, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) list_push(r, l->u.l, mkstr(r, v->u.d->k[i]));
        return l;
    }
    if (v->t == V_STR) {
        val *l = mklist(r, v->u.s.n);
        for (size_t i = 0; i < v->u.s.n;) {
            size_t j = i + 1;
            while (j < v->u.s.n && ((unsigned char)v->u.s.s[j] & 0xc0) == 0x80) j++;
            list_push(r, l->u.l, mkstr(r, js_sub(r, &v->u.s, i, j)));
            i = j;
        }
        return l;
    }
    if (v->t == V_UNDEF || v->t == V_NONE) return mklist(r, 0);
    rerr(r, line, "%s: expected a list, got %s", what, type_name(v));
}

/* attribute path "a.b" of an item, for selectattr/map/sort/join */
static val *attr_path(struct rctx *r, val *item, const struct jstr *path, int line)
{
    size_t i = 0;
    val *cur = item;
    while (i <= path->n) {
        size_t j = i;
        while (j < path->n && path->s[j] != '.') j++;
        char *nm = astrndup(&r->ar, path->s + i, j - i);
        char *end;
        long idx = strtol(nm, &end, 10);
        if (*nm && !*end && cur->t == V_LIST) {
            val *k = mkint(r, idx);
            cur = get_index(r, cur, k, line);
        } else {
            cur = get_attr(r, cur, nm, line);
        }
        i = j + 1;
        if (j >= path->n) break;
    }
    return cur;
}

static void sort_vals(struct rctx *r, val **v, size_t n, const struct jstr *attr, int reverse, int line)
{
    /* insertion sort: stable, and lists in templates are short */
    for (size_t i = 1; i < n; i++) {
        val *x = v[i];
        val *kx = attr ? attr_path(r, x, attr, line) : x;
        size_t j = i;
        while (j > 0) {
            val *ky = attr ? attr_path(r, v[j - 1], attr, line) : v[j - 1];
            int c = vcompare(r, ky, kx, line);
            if (reverse ? c >= 0 : c <= 0) break;
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
        step(r, line);
    }
}

static val *apply_filter(struct rctx *r, const char *name, val *v, struct args *a, struct scope *s, int line)
{
    (void)s;
    step(r, line);
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        if (v->t == V_STR) return mkint(r, (int64_t)utf8_count(&v->u.s));
        if (v->t == V_LIST) return mkint(r, (int64_t)v->u.l->n);
        if (v->t == V_DICT || v->t == V_NS || v->t == V_KWARGS) return mkint(r, (int64_t)v->u.d->n);
        rerr(r, line, "length: a %s has no length", type_name(v));
    }
    if (!strcmp(name, "trim")) {
        if (v->t != V_STR) rerr(r, line, "trim: expected a string, got %s", type_name(v));
        return mkstr(r, str_strip(r, &v->u.s, arg(a, 0, "chars"), 1, 1, line));
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize")) {
        struct jstr x = v->t == V_STR ? v->u.s : to_str(r, v, line);
        int mode = name[0] == 'u' ? 0 : name[0] == 'l' ? 1 : name[0] == 't' ? 2 : 3;
        return mkstr(r, str_case(r, &x, mode));
    }
    if (!strcmp(name, "string")) return mkstr(r, to_str(r, v, line));
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape")) {
        if (name[0] == 's') return v;
        struct jstr x = to_str(r, v, line);
        struct jstr amp = js_lit("&"), lt = js_lit("<"), gt = js_lit(">"), q = js_lit("\""), ap = js_lit("'");
        struct jstr ea = js_lit("&amp;"), el = js_lit("&lt;"), eg = js_lit("&gt;"), eq = js_lit("&#34;"), e39 = js_lit("&#39;");
        x = str_replace(r, &x, &amp, &ea, -1, line);
        x = str_replace(r, &x, &lt, &el, -1, line);
        x = str_replace(r, &x, &gt, &eg, -1, line);
        x = str_replace(r, &x, &q, &eq, -1, line);
        x = str_replace(r, &x, &ap, &e39, -1, line);
        return mkstr(r, x);
    }
    if (!strcmp(name, "tojson")) {
        val *ind = arg(a, 0, "indent");
        int indent = ind && ind->t != V_NONE ? (int)need_int(r, ind, "tojson indent", line) : 0;
        if (indent < 0 || indent > 16) rerr(r, line, "tojson: indent %d out of range", indent);
        struct out o = { 0 };
        to_json(r, &o, v, indent, 0, 1, line);
        return mkstr(r, out_take(r, &o));
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        val *dv = arg(a, 0, "default_value");
        val *b = arg(a, 1, "boolean");
        int use = v->t == V_UNDEF || (b && truthy(b) && !truthy(v));
        return use ? (dv ? dv : mkstr(r, js_lit(""))) : v;
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        val *l = as_list(r, v, name, line);
        if (!l->u.l->n) return &V_UNDEF_VAL;
        return name[0] == 'f' ? l->u.l->v[0] : l->u.l->v[l->u.l->n - 1];
    }
    if (!strcmp(name, "list")) {
        val *l = as_list(r, v, name, line);
        val *c = mklist(r, l->u.l->n);
        for (size_t i = 0; i < l->u.l->n; i++) list_push(r, c->u.l, l->u.l->v[i]);
        return c;
    }
    if (!strcmp(name, "items")) {
        if (v->t == V_UNDEF || v->t == V_NONE) return mklist(r, 0);
        if (v->t != V_DICT && v->t != V_NS && v->t != V_KWARGS) rerr(r, line, "items: expected a dict, got %s", type_name(v));
        return do_items(r, v);
    }
    if (!strcmp(name, "dictsort")) {
        if (v->t != V_DICT) rerr(r, line, "dictsort: expected a dict, got %s", type_name(v));
        val *l = do_items(r, v);
        struct jstr zero = js_lit("0");
        val *rev = arg(a, 2, "reverse");
        sort_vals(r, l->u.l->v, l->u.l->n, &zero, rev && truthy(rev), line);
        return l;
    }
    if (!strcmp(name, "join")) {
        val *l = as_list(r, v, name, line);
        val *sep = arg(a, 0, "d");
        val *at = arg(a, 1, "attribute");
        struct jstr sp = sep ? to_str(r, sep, line) : js_lit("");
        struct out o = { 0 };
        for (size_t i = 0; i < l->u.l->n; i++) {
            if (i) out_str(r, &o, &sp, line);
            val *x = l->u.l->v[i];
            if (at) { struct jstr ap = to_str(r, at, line); x = attr_path(r, x, &ap, line); }
            struct jstr xs = to_str(r, x, line);
            out_str(r, &o, &xs, line);
        }
        return mkstr(r, out_take(r, &o));
    }
    if (!strcmp(name, "reverse")) {
        if (v->t == V_STR) {
            val *l = as_list(r, v, name, line);
            struct out o = { 0 };
            for (size_t i = l->u.l->n; i-- > 0;) out_str(r, &o, &l->u.l->v[i]->u.s, line);
            return mkstr(r, out_take(r, &o));
        }
        val *l = as_list(r, v, name, line);
        val *c = mklist(r, l->u.l->n);
        for (size_t i = l->u.l->n; i-- > 0;) list_push(r, c->u.l, l->u.l->v[i]);
        return c;
    }
    if (!strcmp(name, "sort")) {
        val *l = as_list(r, v, name, line);
        val *c = mklist(r, l->u.l->n);
        for (size_t i = 0; i < l->u.l->n; i++) list_push(r, c->u.l, l->u.l->v[i]);
        val *rev = arg(a, 0, "reverse");
        val *at = arg(a, 2, "attribute");
        struct jstr ap = at ? to_str(r, at, line) : js_lit("");
        sort_vals(r, c->u.l->v, c->u.l->n, at ? &ap : NULL, rev && truthy(rev), line);
        return c;
    }
    if (!strcmp(name, "unique")) {
        val *l = as_list(r, v, name, line);
        val *c = mklist(r, 0);
        for (size_t i = 0; i < l->u.l->n; i++) {
            int dup = 0;
            for (size_t j = 0; j < c->u.l->n && !dup; j++) dup = vequal(c->u.l->v[j], l->u.l->v[i]);
            if (!dup) list_push(r, c->u.l, l->u.l->v[i]);
            step(r, line);
        }
        return c;
    }
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr") || !strcmp(name, "select") ||
        !strcmp(name, "reject")) {
        int by_attr = strstr(name, "attr") != NULL, keep = name[0] == 's';
        val *l = as_list(r, v, name, line);
        val *c = mklist(r, 0);
        val *at = by_attr ? arg(a, 0, NULL) : NULL;
        if (by_attr && (!at || at->t != V_STR)) rerr(r, line, "%s: needs an attribute name", name);
        val *tn = arg(a, by_attr ? 1 : 0, NULL);
        struct args ta = { a->pos + (by_attr ? 2 : 1), a->npos - (by_attr ? 2 : 1), NULL, NULL, 0 };
        if (ta.npos < 0) ta.npos = 0;
        for (size_t i = 0; i < l->u.l->n; i++) {
            val *x = l->u.l->v[i];
            if (by_attr) {
                /* an item without the attribute fails the test (@huggingface/jinja) */
                val **slot = (x->t == V_DICT || x->t == V_NS || x->t == V_KWARGS)
                                 ? dict_slot(x->u.d, at->u.s.s, at->u.s.n) : NULL;
                if (!slot) {
                    if (!keep) list_push(r, c->u.l, x);
                    continue;
                }
                x = *slot;
            }
            int ok;
            if (tn) {
                struct jstr t = need_str(r, tn, name, line);
                ok = run_test(r, astrndup(&r->ar, t.s, t.n), x, &ta, line);
            } else {
                ok = truthy(x);
            }
            if (ok == keep) list_push(r, c->u.l, l->u.l->v[i]);
            step(r, line);
        }
        return c;
    }
    if (!strcmp(name, "map")) {
        val *l = as_list(r, v, name, line);
        val *c = mklist(r, l->u.l->n);
        val *at = arg(a, -1, "attribute");
        val *dflt = arg(a, -1, "default");
        for (size_t i = 0; i < l->u.l->n; i++) {
            val *x = l->u.l->v[i];
            if (at) {
                struct jstr ap = to_str(r, at, line);
                x = attr_path(r, x, &ap, line);
                if (x->t == V_UNDEF && dflt) x = dflt;
            } else {
                val *fnv = arg(a, 0, NULL);
                if (!fnv) rerr(r, line, "map: needs a filter name or attribute=");
                struct jstr fname = need_str(r, fnv, "map", line);
                struct args fa = { a->pos + 1, a->npos > 0 ? a->npos - 1 : 0, NULL, NULL, 0 };
                x = apply_filter(r, astrndup(&r->ar, fname.s, fname.n), x, &fa, s, line);
            }
            list_push(r, c->u.l, x);
        }
        return c;
    }
    if (!strcmp(name, "replace")) {
        struct jstr x = to_str(r, v, line);
        struct jstr o = need_str(r, arg(a, 0, "old"), "replace", line);
        struct jstr nw = need_str(r, arg(a, 1, "new"), "replace", line);
        val *cnt = arg(a, 2, "count");
        return mkstr(r, str_replace(r, &x, &o, &nw, cnt ? need_int(r, cnt, "replace", line) : -1, line));
    }
    if (!strcmp(name, "int")) {
        if (v->t == V_INT) return v;
        if (v->t == V_FLOAT) return mkint(r, d2i(v->u.f));
        if (v->t == V_BOOL) return mkint(r, v->u.b);
        if (v->t == V_STR) {
            char *e;
            char *z = astrndup(&r->ar, v->u.s.s, v->u.s.n);
            long long x = strtoll(z, &e, 10);
            if (*z && !*e) return mkint(r, x);
            double d = strtod(z, &e);
            if (*z && !*e) return mkint(r, d2i(d));
        }
        val *dv = arg(a, 0, "default");
        return dv ? dv : mkint(r, 0);
    }
    if (!strcmp(name, "float")) {
        if (is_num(v)) return mkfloat(r, num_of(v));
        if (v->t == V_STR) {
            char *e;
            char *z = astrndup(&r->ar, v->u.s.s, v->u.s.n);
            double d = strtod(z, &e);
            if (*z && !*e) return mkfloat(r, d);
        }
        val *dv = arg(a, 0, "default");
        return dv ? dv : mkfloat(r, 0);
    }
    if (!strcmp(name, "abs")) {
        if (v->t == V_INT) return mkint(r, v->u.i < 0 ? -v->u.i : v->u.i);
        if (v->t == V_FLOAT) return mkfloat(r, fabs(v->u.f));
        rerr(r, line, "abs: expected a number, got %s", type_name(v));
    }
    if (!strcmp(name, "round")) {
        if (!is_num(v)) rerr(r, line, "round: expected a number, got %s", type_name(v));
        val *pv = arg(a, 0, "precision");
        int64_t prec = pv ? need_int(r, pv, "round", line) : 0;
        double m = pow(10, (double)prec);
        return mkfloat(r, round(num_of(v) * m) / m);
    }
    if (!strcmp(name, "indent")) {
        struct jstr x = to_str(r, v, line);
        val *wv = arg(a, 0, "width");
        val *fv = arg(a, 1, "first");
        val *bv = arg(a, 2, "blank");
        struct jstr pad;
        if (wv && wv->t == V_STR) pad = wv->u.s;
        else {
            int64_t w = wv ? need_int(r, wv, "indent", line) : 4;
            if (w < 0 || w > 256) rerr(r, line, "indent: width %lld out of range", (long long)w);
            char *p = aalloc(&r->ar, (size_t)w + 1);
            memset(p, ' ', (size_t)w);
            p[w] = '\0';
            pad = (struct jstr){ p, (size_t)w, 0, NULL };
        }
        struct out o = { 0 };
        size_t i = 0;
        int first = 1;
        while (i <= x.n) {
            size_t j = i;
            while (j < x.n && x.s[j] != '\n') j++;
            int blank = j == i;
            if ((first ? (fv && truthy(fv)) : 1) && (!blank || (bv && truthy(bv)))) out_str(r, &o, &pad, line);
            struct jstr ln = js_sub(r, &x, i, j);
            out_str(r, &o, &ln, line);
            if (j >= x.n) break;
            out_raw(r, &o, "\n", 1, line);
            i = j + 1;
            first = 0;
        }
        return mkstr(r, out_take(r, &o));
    }
    if (!strcmp(name, "sum")) {
        val *l = as_list(r, v, name, line);
        int isf = 0;
        int64_t si = 0;
        double sf = 0;
        for (size_t i = 0; i < l->u.l->n; i++) {
            val *x = l->u.l->v[i];
            if (!is_num(x)) rerr(r, line, "sum: %s is not a number", type_name(x));
            if (x->t == V_FLOAT) isf = 1;
            sf += num_of(x);
            if (x->t != V_FLOAT && __builtin_add_overflow(si, ival(x), &si)) isf = 1;
        }
        return isf ? mkfloat(r, sf) : mkint(r, si);
    }
    if (!strcmp(name, "min") || !strcmp(name, "max")) {
        val *l = as_list(r, v, name, line);
        if (!l->u.l->n) return &V_UNDEF_VAL;
        val *best = l->u.l->v[0];
        for (size_t i = 1; i < l->u.l->n; i++) {
            int c = vcompare(r, l->u.l->v[i], best, line);
            if (name[1] == 'i' ? c < 0 : c > 0) best = l->u.l->v[i];
        }
        return best;
    }
    if (!strcmp(name, "wordcount")) {
        struct jstr x = to_str(r, v, line);
        int64_t c = 0;
        for (size_t i = 0; i < x.n;) {
            while (i < x.n && ws_char(x.s[i])) i++;
            if (i < x.n) c++;
            while (i < x.n && !ws_char(x.s[i])) i++;
        }
        return mkint(r, c);
    }
    if (!strcmp(name, "batch")) rerr(r, line, "filter 'batch' is not supported");
    rerr(r, line, "unknown filter '%s'", name);
}

static int run_test(struct rctx *r, const char *name, val *v, struct args *a, int line)
{
    val *x = arg(a, 0, NULL);
    if (!strcmp(name, "defined")) return v->t != V_UNDEF;
    if (!strcmp(name, "undefined")) return v->t == V_UNDEF;
    if (!strcmp(name, "none")) return v->t == V_NONE;
    if (!strcmp(name, "string")) return v->t == V_STR;
    if (!strcmp(name, "number")) return v->t == V_INT || v->t == V_FLOAT;
    if (!strcmp(name, "integer")) return v->t == V_INT;
    if (!strcmp(name, "float")) return v->t == V_FLOAT;
    if (!strcmp(name, "boolean")) return v->t == V_BOOL;
    if (!strcmp(name, "true")) return v->t == V_BOOL && v->u.b;
    if (!strcmp(name, "false")) return v->t == V_BOOL && !v->u.b;
    if (!strcmp(name, "mapping")) return v->t == V_DICT || v->t == V_NS || v->t == V_KWARGS;
    if (!strcmp(name, "iterable")) return v->t == V_LIST || v->t == V_STR || v->t == V_DICT || v->t == V_KWARGS;
    if (!strcmp(name, "sequence")) return v->t == V_LIST || v->t == V_STR || v->t == V_DICT;
    if (!strcmp(name, "callable")) return v->t == V_MACRO || v->t == V_FUNC || v->t == V_METHOD;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        int64_t i = need_int(r, v, name, line);
        return (i % 2 != 0) == (name[0] == 'o');
    }
    if (!strcmp(name, "divisibleby")) {
        int64_t d = need_int(r, x, "divisibleby", line);
        if (!d) rerr(r, line, "divisibleby: division by zero");
        return need_int(r, v, "divisibleby", line) % d == 0;
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v->t != V_STR) return 0;
        for (size_t i = 0; i < v->u.s.n; i++) {
            unsigned char c = (unsigned char)v->u.s.s[i];
            if (name[0] == 'l' ? isupper(c) : islower(c)) return 0;
        }
        return 1;
    }
    if (!x && (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "ne") || !strcmp(name, "in") ||
               !strcmp(name, "sameas") || !strcmp(name, "gt") || !strcmp(name, "lt") || !strcmp(name, "ge") ||
               !strcmp(name, "le")))
        rerr(r, line, "test '%s' needs an argument", name);
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return vequal(v, x);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !vequal(v, x);
    if (!strcmp(name, "sameas")) return v == x || (v->t == x->t && (v->t == V_NONE || v->t == V_UNDEF)) ||
                                        (v->t == V_BOOL && x->t == V_BOOL && v->u.b == x->u.b);
    if (!strcmp(name, "gt")) return vcompare(r, v, x, line) > 0;
    if (!strcmp(name, "ge")) return vcompare(r, v, x, line) >= 0;
    if (!strcmp(name, "lt")) return vcompare(r, v, x, line) < 0;
    if (!strcmp(name, "le")) return vcompare(r, v, x, line) <= 0;
    if (!strcmp(name, "in")) {
        if (x->t == V_LIST) { for (size_t i = 0; i < x->u.l->n; i++) if (vequal(v, x->u.l->v[i])) return 1; return 0; }
        if (x->t == V_STR && v->t == V_STR) return memmem(x->u.s.s, x->u.s.n, v->u.s.s, v->u.s.n) != NULL;
        if (x->t == V_DICT && v->t == V_STR) return dict_slot(x->u.d, v->u.s.s, v->u.s.n) != NULL;
        return 0;
    }
    rerr(r, line, "unknown test '%s'", name);
}

/* ---- evaluation of expressions ------------------------------------------------ */

static void eval_args(struct rctx *r, struct node *n, struct scope *s, struct args *a, int first_pos, val *first)
{
    int np = n->nkids ? n->op : 0;
    a->npos = np + (first ? 1 : 0);
    a->pos = aalloc(&r->ar, (size_t)(a->npos + 1) * sizeof *a->pos);
    int k = 0;
    if (first) a->pos[k++] = first;
    for (int i = 0; i < np; i++) a->pos[k++] = eval(r, n->kids[i], s);
    a->nkw = n->nnames;
    a->kwn = n->names;
    a->kwv = aalloc(&r->ar, (size_t)(a->nkw + 1) * sizeof *a->kwv);
    for (int i = 0; i < a->nkw; i++) a->kwv[i] = eval(r, n->kids[np + i], s);
    (void)first_pos;
}

/* JavaScript's Number#toString for a double */
static void js_number(double f, char *buf, size_t n)
{
    if (f == floor(f) && fabs(f) < 1e21) {
        snprintf(buf, n, "%.0f", f);
        if (!strcmp(buf, "-0")) snprintf(buf, n, "0");
        return;
    }
    fmt_float(f, buf, n);
}

/* An element inside a list that is turned into a string by '+' or '~'
 * (@huggingface/jinja: RuntimeValue#toString). */
static struct jstr rt_str(struct rctx *r, const val *v, int line)
{
    if (v->t == V_NONE) return js_lit("null");
    if (v->t == V_UNDEF) return js_lit("undefined");
    return to_str(r, v, line);
}

/* An operand of '+' or '~' with a string (@huggingface/jinja converts the
 * underlying JavaScript value: numbers without ".0", arrays joined by ",",
 * objects as "[object Map]"). */
static struct jstr js_str(struct rctx *r, const val *v, int line)
{
    char buf[64];
    switch (v->t) {
    case V_FLOAT: js_number(v->u.f, buf, sizeof buf); return js_new(r, buf, strlen(buf), 0);
    case V_LIST: {
        struct out o = { 0 };
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) out_raw(r, &o, ",", 1, line);
            struct jstr e = rt_str(r, v->u.l->v[i], line);
            out_str(r, &o, &e, line);
        }
        return out_take(r, &o);
    }
    case V_DICT:
    case V_NS:
    case V_KWARGS: return js_lit("[object Map]");
    default: return to_str(r, v, line);
    }
}

/* JavaScript's loose == on the underlying values, as @huggingface/jinja
 * compares: numbers and booleans by value, a string with a number as a
 * number, null equal to undefined, lists and dicts by identity. */
static double js_to_number(const val *v, int *ok)
{
    *ok = 1;
    if (is_num(v)) return num_of(v);
    if (v->t == V_STR) {
        size_t a = 0, b = v->u.s.n;
        while (a < b && ws_char(v->u.s.s[a])) a++;
        while (b > a && ws_char(v->u.s.s[b - 1])) b--;
        if (a == b) return 0;
        char tmp[64];
        if (b - a >= sizeof tmp) { *ok = 0; return 0; }
        memcpy(tmp, v->u.s.s + a, b - a);
        tmp[b - a] = '\0';
        char *e;
        double d = strtod(tmp, &e);
        if (*e) { *ok = 0; return NAN; }
        return d;
    }
    *ok = 0;
    return 0;
}

static int js_loose_eq(const val *x, const val *y)
{
    int xn = x->t == V_NONE || x->t == V_UNDEF, yn = y->t == V_NONE || y->t == V_UNDEF;
    if (xn || yn) return xn && yn;
    if (x->t == V_STR && y->t == V_STR) return x->u.s.n == y->u.s.n && !memcmp(x->u.s.s, y->u.s.s, x->u.s.n);
    if ((is_num(x) || x->t == V_STR) && (is_num(y) || y->t == V_STR)) {
        int a, b;
        double p = js_to_number(x, &a), q = js_to_number(y, &b);
        return a && b && p == q;
    }
    return x == y || (x->t == y->t && (x->t == V_LIST ? x->u.l == y->u.l : x->u.d == y->u.d));
}

/* JavaScript's === on the underlying values ('in' a list) */
static int js_strict_eq(const val *x, const val *y)
{
    if (is_num(x) && is_num(y)) return (x->t == V_BOOL) == (y->t == V_BOOL) && num_of(x) == num_of(y);
    if (x->t != y->t) return 0;
    if (x->t == V_STR) return x->u.s.n == y->u.s.n && !memcmp(x->u.s.s, y->u.s.s, x->u.s.n);
    if (x->t == V_NONE || x->t == V_UNDEF) return 1;
    return x->t == V_LIST ? x->u.l == y->u.l : x->t >= V_DICT && x->t <= V_NS ? x->u.d == y->u.d : x == y;
}

static val *binop(struct rctx *r, int op, val *x, val *y, int line)
{
    static const char *const OPS[] = { "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<",
                                       "<=", ">", ">=", "in", "not in" };
    if (op == B_EQ) return mkbool(js_loose_eq(x, y));
    if (op == B_NE) return mkbool(!js_loose_eq(x, y));
    int xnum = x->t == V_INT || x->t == V_FLOAT, ynum = y->t == V_INT || y->t == V_FLOAT;
    if (!(xnum && ynum && op != B_CAT && op != B_POW)) {
        if (x->t == V_UNDEF || y->t == V_UNDEF) {
            if (y->t == V_UNDEF && (op == B_IN || op == B_NOTIN)) return mkbool(op == B_NOTIN);
            if (op == B_CAT && x->t != V_NONE && y->t != V_NONE) {
                struct jstr a = x->t == V_UNDEF ? js_lit("") : js_str(r, x, line);
                struct jstr b = y->t == V_UNDEF ? js_lit("") : js_str(r, y, line);
                return mkstr(r, js_cat(r, &a, &b));
            }
            rerr(r, line, "cannot apply '%s' to an undefined value", OPS[op]);
        }
        if (x->t == V_NONE || y->t == V_NONE) rerr(r, line, "cannot apply '%s' to none", OPS[op]);
        if (op == B_CAT) {
            struct jstr a = js_str(r, x, line), b = js_str(r, y, line);
            return mkstr(r, js_cat(r, &a, &b));
        }
    }
    if (op == B_IN || op == B_NOTIN) {
        int in;
        if (y->t == V_STR) {
            if (x->t != V_STR) rerr(r, line, "'in <string>' needs a string on the left, got %s", type_name(x));
            in = memmem(y->u.s.s, y->u.s.n, x->u.s.s, x->u.s.n) != NULL || x->u.s.n == 0;
        } else if (y->t == V_LIST) {
            in = 0;
            for (size_t i = 0; i < y->u.l->n && !in; i++) in = js_strict_eq(x, y->u.l->v[i]);
        } else if (y->t == V_DICT || y->t == V_NS || y->t == V_KWARGS) {
            struct jstr k = to_str(r, x, line);
            in = dict_slot(y->u.d, k.s, k.n) != NULL;
        } else if (y->t == V_UNDEF || y->t == V_NONE) {
            in = 0;
        } else {
            rerr(r, line, "'in' needs a string, list or dict on the right, got %s", type_name(y));
        }
        return mkbool(op == B_IN ? in : !in);
    }
    if (op == B_LT || op == B_LE || op == B_GT || op == B_GE) {
        int c = vcompare(r, x, y, line);
        return mkbool(op == B_LT ? c < 0 : op == B_LE ? c <= 0 : op == B_GT ? c > 0 : c >= 0);
    }
    if (op == B_ADD && x->t == V_STR && y->t == V_STR) return mkstr(r, js_cat(r, &x->u.s, &y->u.s));
    if (op == B_ADD && x->t == V_LIST && y->t == V_LIST) {
        val *l = mklist(r, x->u.l->n + y->u.l->n);
        for (size_t i = 0; i < x->u.l->n; i++) list_push(r, l->u.l, x->u.l->v[i]);
        for (size_t i = 0; i < y->u.l->n; i++) list_push(r, l->u.l, y->u.l->v[i]);
        return l;
    }
    if (op == B_ADD && (x->t == V_STR || y->t == V_STR)) {
        /* @huggingface/jinja concatenates a string with anything */
        struct jstr a = js_str(r, x, line), b = js_str(r, y, line);
        return mkstr(r, js_cat(r, &a, &b));
    }
    if (op == B_MUL && ((x->t == V_STR && y->t == V_INT) || (x->t == V_INT && y->t == V_STR))) {
        const val *sv = x->t == V_STR ? x : y;
        int64_t k = x->t == V_INT ? x->u.i : y->u.i;
        if (k < 0 || sv->u.s.n == 0) k = 0;   /* "" * 10**21 is "", at once */
        if (k > 0 && (uint64_t)k > r->max_output / sv->u.s.n) rerr(r, line, "string repetition too large");
        struct out o = { 0 };
        for (int64_t i = 0; i < k; i++) out_str(r, &o, &sv->u.s, line);
        return mkstr(r, out_take(r, &o));
    }
    if (!is_num(x) || !is_num(y) || x->t == V_BOOL || y->t == V_BOOL)
        if (!(is_num(x) && is_num(y)))
            rerr(r, line, "unsupported operand types for arithmetic: %s and %s", type_name(x), type_name(y));
    int both_int = x->t != V_FLOAT && y->t != V_FLOAT;
    double a = num_of(x), b = num_of(y);
    switch (op) {
    /* integers that overflow become floats, as JavaScript numbers would */
    case B_ADD: {
        int64_t z;
        return both_int && !__builtin_add_overflow(ival(x), ival(y), &z) ? mkint(r, z) : mkfloat(r, a + b);
    }
    case B_SUB: {
        int64_t z;
        return both_int && !__builtin_sub_overflow(ival(x), ival(y), &z) ? mkint(r, z) : mkfloat(r, a - b);
    }
    case B_MUL: {
        int64_t z;
        return both_int && !__builtin_mul_overflow(ival(x), ival(y), &z) ? mkint(r, z) : mkfloat(r, a * b);
    }
    case B_DIV:
        if (b == 0) rerr(r, line, "division by zero");
        return mkfloat(r, a / b);
    case B_FLOORDIV:
        if (b == 0) rerr(r, line, "division by zero");
        return both_int ? mkint(r, d2i(floor(a / b))) : mkfloat(r, floor(a / b));
    case B_MOD:
        if (b == 0) rerr(r, line, "modulo by zero");
        /* JavaScript's remainder (sign of the dividend), as @huggingface/jinja */
        if (both_int) return mkint(r, ival(y) == -1 ? 0 : ival(x) % ival(y));
        return mkfloat(r, fmod(a, b));
    case B_POW: {
        double p = pow(a, b);
        if (both_int && b >= 0 && fabs(p) < 9.2e18) return mkint(r, (int64_t)p);
        return mkfloat(r, p);
    }
    }
    rerr(r, line, "bad operator");
}

static val *call_macro(struct rctx *r, val *m, struct args *a, const val *caller, int line)
{
    struct node *def = m->u.mac.def;
    if (++r->call_depth > MAX_CALL_DEPTH) rerr(r, line, "macros call each other more than %d deep", MAX_CALL_DEPTH);
    step(r, line);
    struct scope *s = scope_new(r, m->u.mac.scope);
    for (int i = 0; i < def->nkids; i++) scope_set(r, s, def->kids[i]->str, &V_UNDEF_VAL);
    for (int i = 0; i < def->nkids; i++) {
        const char *pn = def->kids[i]->str;
        val *v = i < a->npos ? a->pos[i] : NULL;
        for (int k = 0; !v && k < a->nkw; k++) if (!strcmp(a->kwn[k], pn)) v = a->kwv[k];
        if (!v && def->defaults[i]) v = eval(r, def->defaults[i], s);
        scope_set(r, s, pn, v ? v : &V_UNDEF_VAL);
    }
    if (a->npos > def->nkids) {
        val *va = mklist(r, 0);
        for (int i = def->nkids; i < a->npos; i++) list_push(r, va->u.l, a->pos[i]);
        scope_set(r, s, "varargs", va);
    }
    val *kw = mkdict(r, V_DICT);
    for (int k = 0; k < a->nkw; k++) {
        int is_param = 0;
        for (int i = 0; i < def->nkids; i++) if (!strcmp(a->kwn[k], def->kids[i]->str)) is_param = 1;
        if (!is_param) dict_set(r, kw->u.d, js_lit(a->kwn[k]), a->kwv[k]);
    }
    scope_set(r, s, "kwargs", kw);
    const val *saved_caller = r->caller;
    if (caller) scope_set(r, s, "caller", (val *)caller);
    struct out *saved = r->out;
    struct out o = { 0 };
    r->out = &o;
    exec_block(r, def->b, s);
    r->out = saved;
    r->caller = saved_caller;
    r->call_depth--;
    return mkstr(r, out_take(r, &o));
}

static val *call_func(struct rctx *r, int fn, struct args *a, int line)
{
    step(r, line);
    switch (fn) {
    case F_RANGE: {
        int64_t st = 0, en, sp = 1;
        if (a->npos == 1) en = need_int(r, a->pos[0], "range", line);
        else if (a->npos >= 2) {
            st = need_int(r, a->pos[0], "range", line);
            en = need_int(r, a->pos[1], "range", line);
            if (a->npos >= 3) sp = need_int(r, a->pos[2], "range", line);
        } else rerr(r, line, "range: needs 1 to 3 arguments");
        if (sp == 0) rerr(r, line, "range: step cannot be zero");
        val *l = mklist(r, 0);
        for (int64_t i = st; sp > 0 ? i < en : i > en; i += sp) {
            step(r, line);
            list_push(r, l->u.l, mkint(r, i));
        }
        return l;
    }
    case F_NAMESPACE:
    case F_DICT: {
        val *ns = mkdict(r, fn == F_NAMESPACE ? V_NS : V_DICT);
        if (a->npos > 0 && (a->pos[0]->t == V_DICT || a->pos[0]->t == V_NS))
            for (size_t i = 0; i < a->pos[0]->u.d->n; i++) dict_set(r, ns->u.d, a->pos[0]->u.d->k[i], a->pos[0]->u.d->v[i]);
        for (int k = 0; k < a->nkw; k++) dict_set(r, ns->u.d, js_lit(a->kwn[k]), a->kwv[k]);
        return ns;
    }
    case F_RAISE: {
        struct jstr m = a->npos ? to_str(r, a->pos[0], line) : js_lit("raise_exception");
        snprintf(r->err, r->errlen, "%.*s", (int)(m.n > 1000 ? 1000 : m.n), m.s);
        r->raised = 1;
        longjmp(r->jb, 1);
    }
    case F_STRFTIME: {
        struct jstr f = need_str(r, a->npos ? a->pos[0] : NULL, "strftime_now", line);
        char *fmt = astrndup(&r->ar, f.s, f.n);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char buf[256];
        size_t n = strftime(buf, sizeof buf, fmt, &tm);
        return mkstr(r, js_new(r, buf, n, 0));
    }
    }
    rerr(r, line, "unknown function");
}

static val *call_value(struct rctx *r, val *fn, struct args *a, int line)
{
    if (fn->t == V_MACRO) return call_macro(r, fn, a, NULL, line);
    if (fn->t == V_FUNC) {
        if (fn->u.fn == F_CALLER) {
            if (!r->caller) rerr(r, line, "caller() outside a {%% call %%} block");
            return call_macro(r, (val *)r->caller, a, NULL, line);
        }
        return call_func(r, fn->u.fn, a, line);
    }
    if (fn->t == V_METHOD) return call_method(r, fn->u.meth.self, fn->u.meth.m, a, line);
    rerr(r, line, "a %s is not callable", type_name(fn));
}

static val *eval(struct rctx *r, struct node *n, struct scope *s)
{
    switch (n->k) {
    case N_LIT: return n->lit;
    case N_NAME: {
        val *v = lookup(s, n->str);
        if (v) return v;
        static const struct { const char *name; int fn; } G[] = {
            { "range", F_RANGE }, { "namespace", F_NAMESPACE }, { "raise_exception", F_RAISE },
            { "strftime_now", F_STRFTIME }, { "dict", F_DICT }, { "caller", F_CALLER },
        };
        for (size_t i = 0; i < sizeof G / sizeof G[0]; i++) {
            if (!strcmp(G[i].name, n->str)) {
                if (G[i].fn == F_CALLER && !r->caller) break;
                val *f = mkval(&r->ar, V_FUNC);
                f->u.fn = G[i].fn;
                return f;
            }
        }
        return &V_UNDEF_VAL;
    }
    case N_ATTR: {
        val *o = eval(r, n->a, s);
        if (o->t == V_UNDEF || o->t == V_NONE) return &V_UNDEF_VAL;
        return get_attr(r, o, n->str, n->line);
    }
    case N_INDEX: {
        val *o = eval(r, n->a, s);
        val *k = eval(r, n->b, s);
        return get_index(r, o, k, n->line);
    }
    case N_SLICE: {
        val *o = eval(r, n->a, s);
        val *p[3];
        for (int i = 0; i < 3; i++) p[i] = n->kids[i] ? eval(r, n->kids[i], s) : NULL;
        return do_slice(r, o, p[0], p[1], p[2], n->line);
    }
    case N_CALL: {
        val *fn = eval(r, n->a, s);
        struct args a;
        eval_args(r, n, s, &a, 0, NULL);
        if (fn->t == V_UNDEF) {
            const char *nm = n->a->k == N_NAME ? n->a->str : n->a->k == N_ATTR ? n->a->str : "expression";
            rerr(r, n->line, "'%s' is undefined and cannot be called", nm);
        }
        return call_value(r, fn, &a, n->line);
    }
    case N_FILTER: {
        val *v = eval(r, n->a, s);
        struct args a;
        eval_args(r, n, s, &a, 0, NULL);
        return apply_filter(r, n->str, v, &a, s, n->line);
    }
    case N_TEST: {
        val *v = eval(r, n->a, s);
        struct args a;
        eval_args(r, n, s, &a, 0, NULL);
        int t = run_test(r, n->str, v, &a, n->line);
        return mkbool(n->c ? !t : t);
    }
    case N_NOT: return mkbool(!truthy(eval(r, n->a, s)));
    case N_NEG:
    case N_POS: {
        val *v = eval(r, n->a, s);
        if (!is_num(v)) rerr(r, n->line, "unary %c on a %s", n->k == N_NEG ? '-' : '+', type_name(v));
        if (n->k == N_POS) return v;
        if (v->t == V_FLOAT) return mkfloat(r, -v->u.f);
        return ival(v) == INT64_MIN ? mkfloat(r, -(double)ival(v)) : mkint(r, -ival(v));
    }
    case N_AND: {
        val *l = eval(r, n->a, s);
        return truthy(l) ? eval(r, n->b, s) : l;
    }
    case N_OR: {
        val *l = eval(r, n->a, s);
        return truthy(l) ? l : eval(r, n->b, s);
    }
    case N_BIN: return binop(r, n->op, eval(r, n->a, s), eval(r, n->b, s), n->line);
    case N_COND:
        if (truthy(eval(r, n->b, s))) return eval(r, n->a, s);
        return n->c ? eval(r, n->c, s) : &V_UNDEF_VAL;
    case N_LIST:
    case N_TUPLE: {
        val *l = mklist(r, (size_t)n->nkids);
        l->tuple = n->k == N_TUPLE;
        for (int i = 0; i < n->nkids; i++) list_push(r, l->u.l, eval(r, n->kids[i], s));
        return l;
    }
    case N_DICT: {
        val *d = mkdict(r, V_DICT);
        for (int i = 0; i + 1 < n->nkids; i += 2) {
            val *k = eval(r, n->kids[i], s);
            dict_set(r, d->u.d, to_str(r, k, n->line), eval(r, n->kids[i + 1], s));
        }
        return d;
    }
    default:
        rerr(r, n->line, "not an expression");
    }
}

/* ---- statements -------------------------------------------------------------- */

static void assign(struct rctx *r, struct node *target, val *v, struct scope *s, int line)
{
    if (target->k == N_NAME) {
        scope_set(r, s, target->str, v);
        return;
    }
    if (target->k == N_ATTR) {
        val *o = eval(r, target->a, s);
        if (o->t != V_NS && o->t != V_DICT) rerr(r, line, "cannot set an attribute of a %s (use a namespace)", type_name(o));
        dict_set(r, o->u.d, js_lit(target->str), v);
        return;
    }
    if (target->k == N_TUPLE) {
        if (v->t != V_LIST) rerr(r, line, "cannot unpack a %s", type_name(v));
        if ((int)v->u.l->n != target->nkids)
            rerr(r, line, "too %s values to unpack (expected %d, got %zu)", (int)v->u.l->n < target->nkids ? "few" : "many",
                 target->nkids, v->u.l->n);
        for (int i = 0; i < target->nkids; i++) assign(r, target->kids[i], v->u.l->v[i], s, line);
        return;
    }
    rerr(r, line, "cannot assign to this");
}

static int exec_block(struct rctx *r, struct node *n, struct scope *s);

static int exec_stmt(struct rctx *r, struct node *n, struct scope *s)
{
    r->cur_line = n->line;
    switch (n->k) {
    case N_TEXT: out_str(r, r->out, &n->text, n->line); return CTL_NONE;
    case N_OUT: {
        val *v = eval(r, n->a, s);
        struct jstr x = to_str(r, v, n->line);
        out_str(r, r->out, &x, n->line);
        return CTL_NONE;
    }
    case N_BLOCK: return exec_block(r, n, s);
    case N_IF:
        for (struct node *c = n; c; ) {
            if (c->k != N_IF) return exec_block(r, c, s);
            if (truthy(eval(r, c->a, s))) return exec_block(r, c->b, s);
            c = c->c;
        }
        return CTL_NONE;
    case N_FOR: {
        struct scope *ls = scope_new(r, s);
        val *it = eval(r, n->kids[0], ls);
        if (it->t == V_UNDEF || it->t == V_NONE) it = mklist(r, 0);
        if (it->t != V_LIST && it->t != V_DICT && it->t != V_NS && it->t != V_KWARGS && it->t != V_STR)
            rerr(r, n->line, "for: cannot iterate over a %s", type_name(it));
        val *l = as_list(r, it, "for", n->line);
        /* the loop filter runs first: loop.length counts the kept items */
        val *items = l;
        if (n->kids[1]) {
            items = mklist(r, 0);
            for (size_t i = 0; i < l->u.l->n; i++) {
                struct scope *ts = scope_new(r, ls);
                assign(r, n->a, l->u.l->v[i], ts, n->line);
                if (truthy(eval(r, n->kids[1], ts))) list_push(r, items->u.l, l->u.l->v[i]);
                step(r, n->line);
            }
        }
        size_t cnt = items->u.l->n;
        int ran = 0;
        for (size_t i = 0; i < cnt; i++) {
            step(r, n->line);
            val *loop = mkdict(r, V_DICT);
            struct jdict *d = loop->u.d;
            dict_set(r, d, js_lit("index"), mkint(r, (int64_t)i + 1));
            dict_set(r, d, js_lit("index0"), mkint(r, (int64_t)i));
            dict_set(r, d, js_lit("revindex"), mkint(r, (int64_t)(cnt - i)));
            dict_set(r, d, js_lit("revindex0"), mkint(r, (int64_t)(cnt - i - 1)));
            dict_set(r, d, js_lit("first"), mkbool(i == 0));
            dict_set(r, d, js_lit("last"), mkbool(i + 1 == cnt));
            dict_set(r, d, js_lit("length"), mkint(r, (int64_t)cnt));
            dict_set(r, d, js_lit("previtem"), i > 0 ? items->u.l->v[i - 1] : &V_UNDEF_VAL);
            dict_set(r, d, js_lit("nextitem"), i + 1 < cnt ? items->u.l->v[i + 1] : &V_UNDEF_VAL);
            scope_set(r, ls, "loop", loop);
            assign(r, n->a, items->u.l->v[i], ls, n->line);
            ran = 1;
            int ctl = exec_block(r, n->kids[2], ls);
            if (ctl == CTL_BREAK) break;
        }
        if (!ran && n->c) exec_block(r, n->c, ls);
        return CTL_NONE;
    }
    case N_SET:
        assign(r, n->a, eval(r, n->b, s), s, n->line);
        return CTL_NONE;
    case N_SETBLOCK: {
        struct out *saved = r->out;
        struct out o = { 0 };
        r->out = &o;
        exec_block(r, n->b, s);
        r->out = saved;
        val *v = mkstr(r, out_take(r, &o));
        if (n->c) {
            /* n->c is a filter chain whose innermost operand is a placeholder */
            struct node *chain[64];
            int nc = 0;
            for (struct node *f = n->c; f->k == N_FILTER && nc < 64; f = f->a) chain[nc++] = f;
            while (nc-- > 0) {
                struct args a;
                eval_args(r, chain[nc], s, &a, 0, NULL);
                v = apply_filter(r, chain[nc]->str, v, &a, s, chain[nc]->line);
            }
        }
        scope_set(r, s, n->a->str, v);
        return CTL_NONE;
    }
    case N_MACRO: {
        val *m = mkval(&r->ar, V_MACRO);
        m->u.mac.def = n;
        m->u.mac.scope = s;
        scope_set(r, s, n->str, m);
        return CTL_NONE;
    }
    case N_CALLBLOCK: {
        /* the body becomes caller(); n->a is the call expression */
        val *body = mkval(&r->ar, V_MACRO);
        struct node *def = azalloc(&r->ar, sizeof *def);
        def->k = N_MACRO;
        def->b = n->b;
        def->kids = n->kids;
        def->nkids = n->nkids;
        def->defaults = n->defaults;
        def->str = "caller";
        body->u.mac.def = def;
        body->u.mac.scope = s;
        if (n->a->k != N_CALL) rerr(r, n->line, "call: expected a macro call");
        val *fn = eval(r, n->a->a, s);
        if (fn->t != V_MACRO) rerr(r, n->line, "call: '%s' is not a macro", n->a->a->k == N_NAME ? n->a->a->str : "expression");
        struct args a;
        eval_args(r, n->a, s, &a, 0, NULL);
        const val *saved = r->caller;
        r->caller = body;
        val *res = call_macro(r, fn, &a, body, n->line);
        r->caller = saved;
        out_str(r, r->out, &res->u.s, n->line);
        return CTL_NONE;
    }
    case N_FILTERBLOCK: {
        struct out *saved = r->out;
        struct out o = { 0 };
        r->out = &o;
        exec_block(r, n->b, s);
        r->out = saved;
        val *v = mkstr(r, out_take(r, &o));
        struct node *chain[64];
        int nc = 0;
        for (struct node *f = n->a; f->k == N_FILTER && nc < 64; f = f->a) chain[nc++] = f;
        while (nc-- > 0) {
            struct args a;
            eval_args(r, chain[nc], s, &a, 0, NULL);
            v = apply_filter(r, chain[nc]->str, v, &a, s, chain[nc]->line);
        }
        struct jstr x = to_str(r, v, n->line);
        out_str(r, r->out, &x, n->line);
        return CTL_NONE;
    }
    case N_BREAK: return CTL_BREAK;
    case N_CONTINUE: return CTL_CONTINUE;
    default:
        rerr(r, n->line, "not a statement");
    }
}

static int exec_block(struct rctx *r, struct node *n, struct scope *s)
{
    if (n->k != N_BLOCK) return exec_stmt(r, n, s);
    for (int i = 0; i < n->nkids; i++) {
        int ctl = exec_stmt(r, n->kids[i], s);
        if (ctl != CTL_NONE) return ctl;
    }
    return CTL_NONE;
}

char *jinja_render(const struct jinja_tmpl *t, const cJSON *data, const cJSON *trusted,
                   const struct jinja_limits *lim, size_t *out_len, size_t **spans, int *n_spans,
                   int *raised, char *err, size_t errlen)
{
    struct rctx r;
    memset(&r, 0, sizeof r);
    r.err = err;
    r.errlen = errlen;
    r.ar.oom = &r.jb;
    r.max_output = lim && lim->max_output ? lim->max_output : (4u << 20);
    r.max_steps = lim && lim->max_steps ? lim->max_steps : 1000000;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    if (raised) *raised = 0;
    struct out o = { 0 };
    int rc = setjmp(r.jb);
    if (rc) {
        if (rc == 2) snprintf(err, errlen, "out of memory rendering the template");
        if (raised) *raised = r.raised;
        arena_free(&r.ar);
        return NULL;
    }
    r.globals = scope_new(&r, NULL);
    r.out = &o;
    for (const cJSON *c = data ? data->child : NULL; c; c = c->next)
        scope_set(&r, r.globals, c->string, from_json(&r, c, 1, 0));
    for (const cJSON *c = trusted ? trusted->child : NULL; c; c = c->next)
        scope_set(&r, r.globals, c->string, from_json(&r, c, 0, 0));
    exec_block(&r, t->root, r.globals);
    char *res = malloc(o.n + 1);
    size_t *sp = o.nsp && spans ? malloc(o.nsp * 2 * sizeof *sp) : NULL;
    if (!res || (o.nsp && spans && !sp)) {
        free(res);
        free(sp);
        arena_free(&r.ar);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (o.n) memcpy(res, o.b, o.n);
    res[o.n] = '\0';
    if (sp) memcpy(sp, o.sp, o.nsp * 2 * sizeof *sp);
    if (spans) *spans = sp;
    if (n_spans) *n_spans = (int)o.nsp;
    if (out_len) *out_len = o.n;
    arena_free(&r.ar);
    return res;
}
