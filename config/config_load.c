/*
 * config_load.c - read a config file into a struct cfg.
 *
 * The pipeline, each step with its own kind of error message:
 *
 *   1. size limit (4 MiB), then comments are replaced by spaces, so every
 *      byte keeps its line and column;
 *   2. a strict syntax pass (scan_*) that cJSON does not offer: it names what
 *      was expected where ("expected ',' or '}' after object member"), rejects
 *      trailing commas with their own message, and bounds nesting depth;
 *      messages are "file:line:col: what";
 *   3. cJSON builds the tree; a walk rejects duplicate keys;
 *   4. each section is read field by field with typed getters. Strings get
 *      ${VAR} expansion first, so "port": "${PORT}" style values are checked
 *      after expansion. Unknown fields are errors, with a "did you mean"
 *      suggestion by edit distance. Messages are "file: json.path: what";
 *   5. routes are resolved (shorthand targets, implicit routes for local
 *      models, enabled_if_env), then cfg_validate() checks global rules.
 *
 * Sections are read in a fixed order (server, keys, upstreams, local_models,
 * routes, breaker, drift) whatever their order in the file, so routes can be
 * checked against upstreams while the route's JSON index is still known.
 *
 * Secrets: client keys and header values are read with secret = 1; messages
 * about them never quote the value (nor the value of an env variable that fed
 * them). Only variable names and field paths appear.
 */
#include "config/config_int.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CFG_MAX_FILE_BYTES ((size_t)4 << 20)
#define CFG_MAX_DEPTH 64

/* ---- step 1: comments -------------------------------------------------------- */

/* Replace // and slash-star comments outside strings with spaces (newlines
 * kept). Returns 0, or -1 with *errpos at the start of an unterminated block
 * comment. */
static int strip_comments(char *s, size_t n, size_t *errpos) {
    size_t i = 0;
    while (i < n) {
        char ch = s[i];
        if (ch == '"') {
            i++;
            while (i < n && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < n) i++;
                if (s[i] == '\n') break; /* the syntax pass reports it */
                i++;
            }
            if (i < n) i++;
        } else if (ch == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n') s[i++] = ' ';
        } else if (ch == '/' && i + 1 < n && s[i + 1] == '*') {
            size_t start = i;
            s[i++] = ' ';
            s[i++] = ' ';
            for (;;) {
                if (i >= n) {
                    *errpos = start;
                    return -1;
                }
                if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
                    s[i++] = ' ';
                    s[i++] = ' ';
                    break;
                }
                if (s[i] != '\n') s[i] = ' ';
                i++;
            }
        } else {
            i++;
        }
    }
    return 0;
}

/* ---- step 2: syntax ---------------------------------------------------------- */

struct scan {
    const char *s;
    size_t n, i;
    size_t errpos;
    char msg[128];
};

static int scan_fail(struct scan *sc, size_t pos, const char *msg) {
    sc->errpos = pos;
    snprintf(sc->msg, sizeof(sc->msg), "%s", msg);
    return -1;
}

static void scan_ws(struct scan *sc) {
    while (sc->i < sc->n) {
        char c = sc->s[sc->i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') break;
        sc->i++;
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int scan_string(struct scan *sc) {
    size_t start = sc->i++;
    for (;;) {
        if (sc->i >= sc->n) return scan_fail(sc, start, "unterminated string");
        unsigned char c = (unsigned char)sc->s[sc->i];
        if (c == '"') {
            sc->i++;
            return 0;
        }
        if (c == '\n') return scan_fail(sc, start, "unterminated string");
        if (c < 0x20) return scan_fail(sc, sc->i, "control character in string (write \\n, \\t or \\u00XX)");
        if (c == '\\') {
            if (sc->i + 1 >= sc->n) return scan_fail(sc, start, "unterminated string");
            char e = sc->s[sc->i + 1];
            if (e == 'u') {
                int v = 0;
                for (int k = 0; k < 4; k++) {
                    int h = sc->i + 2 + k < sc->n ? hexval((unsigned char)sc->s[sc->i + 2 + k]) : -1;
                    if (h < 0) return scan_fail(sc, sc->i, "invalid \\u escape (expected 4 hex digits)");
                    v = v * 16 + h;
                }
                if (v == 0) return scan_fail(sc, sc->i, "\\u0000 is not allowed in strings");
                sc->i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return scan_fail(sc, sc->i, "invalid escape sequence in string");
            sc->i += 2;
            continue;
        }
        sc->i++;
    }
}

static int isdig(char c) { return c >= '0' && c <= '9'; }

static int scan_number(struct scan *sc) {
    size_t start = sc->i;
    const char *s = sc->s;
    size_t n = sc->n;
    if (s[sc->i] == '-') sc->i++;
    if (sc->i >= n || !isdig(s[sc->i])) return scan_fail(sc, start, "invalid number");
    if (s[sc->i] == '0' && sc->i + 1 < n && isdig(s[sc->i + 1]))
        return scan_fail(sc, start, "invalid number (leading zeros are not allowed)");
    while (sc->i < n && isdig(s[sc->i])) sc->i++;
    if (sc->i < n && s[sc->i] == '.') {
        sc->i++;
        if (sc->i >= n || !isdig(s[sc->i])) return scan_fail(sc, start, "invalid number (digits must follow '.')");
        while (sc->i < n && isdig(s[sc->i])) sc->i++;
    }
    if (sc->i < n && (s[sc->i] == 'e' || s[sc->i] == 'E')) {
        sc->i++;
        if (sc->i < n && (s[sc->i] == '+' || s[sc->i] == '-')) sc->i++;
        if (sc->i >= n || !isdig(s[sc->i])) return scan_fail(sc, start, "invalid number (bad exponent)");
        while (sc->i < n && isdig(s[sc->i])) sc->i++;
    }
    return 0;
}

static int scan_value(struct scan *sc, int depth);

static int scan_container(struct scan *sc, int depth, char close) {
    int is_obj = close == '}';
    const char *after = is_obj ? "expected ',' or '}' after object member"
                               : "expected ',' or ']' after array element";
    if (depth >= CFG_MAX_DEPTH) return scan_fail(sc, sc->i, "nesting is deeper than 64 levels");
    sc->i++;
    scan_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == close) {
        sc->i++;
        return 0;
    }
    for (;;) {
        scan_ws(sc);
        if (sc->i >= sc->n) return scan_fail(sc, sc->i, "unexpected end of file");
        if (is_obj) {
            if (sc->s[sc->i] != '"') return scan_fail(sc, sc->i, "expected a string in double quotes as object key");
            if (scan_string(sc) < 0) return -1;
            scan_ws(sc);
            if (sc->i >= sc->n) return scan_fail(sc, sc->i, "unexpected end of file");
            if (sc->s[sc->i] != ':') return scan_fail(sc, sc->i, "expected ':' after object key");
            sc->i++;
        }
        if (scan_value(sc, depth + 1) < 0) return -1;
        scan_ws(sc);
        if (sc->i >= sc->n) return scan_fail(sc, sc->i, "unexpected end of file");
        char c = sc->s[sc->i];
        if (c == close) {
            sc->i++;
            return 0;
        }
        if (c != ',') return scan_fail(sc, sc->i, after);
        size_t comma = sc->i++;
        scan_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == close)
            return scan_fail(sc, comma, is_obj ? "trailing comma before '}' is not allowed"
                                               : "trailing comma before ']' is not allowed");
    }
}

static int scan_value(struct scan *sc, int depth) {
    scan_ws(sc);
    if (sc->i >= sc->n) return scan_fail(sc, sc->i, "unexpected end of file, expected a value");
    unsigned char c = (unsigned char)sc->s[sc->i];
    switch (c) {
    case '{': return scan_container(sc, depth, '}');
    case '[': return scan_container(sc, depth, ']');
    case '"': return scan_string(sc);
    case 't': case 'f': case 'n': {
        const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t l = strlen(lit);
        if (sc->n - sc->i < l || memcmp(sc->s + sc->i, lit, l) != 0 ||
            (sc->i + l < sc->n && isalnum((unsigned char)sc->s[sc->i + l])))
            return scan_fail(sc, sc->i, "invalid literal (expected true, false, null, a number or a string in double quotes)");
        sc->i += l;
        return 0;
    }
    default:
        if (c == '-' || isdig((char)c)) return scan_number(sc);
        if (c == '}' || c == ']' || c == ',' || c == ':') return scan_fail(sc, sc->i, "expected a value");
        if (c == '\'') return scan_fail(sc, sc->i, "strings must use double quotes");
        return scan_fail(sc, sc->i, "unexpected character (expected a value)");
    }
}

static void line_col(const char *s, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* ---- the reader's state and message helpers ------------------------------------ */

struct ld {
    const char *file;      /* name used in messages */
    const char *base_dir;  /* relative paths resolve here; NULL = leave as is */
    char *err;
    size_t errlen;
    struct cfg *c;
};

#define PATHLEN 384

static int fail(struct ld *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ld *ld, const char *path, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cfg__errf(ld->err, ld->errlen, "%s: %s: %s", ld->file, path, msg);
}

static int oom(struct ld *ld) { return cfg__errf(ld->err, ld->errlen, "%s: out of memory", ld->file); }

/* JSON paths for messages. A path longer than PATHLEN is cut and ends in
 * "..." (the message stays readable; the start of the path is what counts). */
static void path_fit(char *out, int n) {
    if (n < 0 || n >= PATHLEN) memcpy(out + PATHLEN - 4, "...", 4);
}

static void sub(char *out, const char *parent, const char *key) {
    int n = parent[0] ? snprintf(out, PATHLEN, "%s.%s", parent, key)
                      : snprintf(out, PATHLEN, "%s", key);
    path_fit(out, n);
}

static void at(char *out, const char *parent, size_t i) {
    int n = snprintf(out, PATHLEN, "%s[%zu]", parent, i);
    path_fit(out, n);
}

/* A short description of a JSON value for "got ..." in messages. Strings are
 * quoted and cut at 40 bytes; with secret set, only the type is named. */
static const char *describe(const cJSON *v, int secret, char *buf, size_t len) {
    if (cJSON_IsString(v)) {
        if (secret) return "a string";
        const char *s = v->valuestring;
        size_t l = strlen(s);
        if (l > 40) snprintf(buf, len, "\"%.37s...\"", s);
        else snprintf(buf, len, "\"%s\"", s);
        return buf;
    }
    if (cJSON_IsNumber(v)) {
        if (secret) return "a number";
        snprintf(buf, len, "%.17g", v->valuedouble);
        return buf;
    }
    if (cJSON_IsBool(v)) return secret ? "a boolean" : cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an unknown value";
}

static const char *shown(const char *s, char *buf, size_t len) {
    if (strlen(s) > 40) snprintf(buf, len, "\"%.37s...\"", s);
    else snprintf(buf, len, "\"%s\"", s);
    return buf;
}

/* ---- duplicate keys and unknown fields ---------------------------------------- */

struct keyref { const char *name; size_t index; };

static int keyref_cmp(const void *a, const void *b) {
    const struct keyref *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r) return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int check_duplicates(struct ld *ld, const cJSON *node, const char *path) {
    char p[PATHLEN];
    if (cJSON_IsObject(node)) {
        size_t n = 0;
        for (const cJSON *ch = node->child; ch; ch = ch->next) n++;
        if (n > 1) {
            struct keyref *v = malloc(n * sizeof(*v));
            if (!v) return oom(ld);
            size_t i = 0;
            for (const cJSON *ch = node->child; ch; ch = ch->next, i++) {
                v[i].name = ch->string ? ch->string : "";
                v[i].index = i;
            }
            qsort(v, n, sizeof(*v), keyref_cmp);
            /* report the duplicate that appears first in the file */
            size_t best = n;
            for (i = 1; i < n; i++)
                if (strcmp(v[i].name, v[i - 1].name) == 0 && (best == n || v[i].index < v[best].index))
                    best = i;
            if (best < n) {
                sub(p, path, v[best].name);
                free(v);
                return fail(ld, p, "duplicate key");
            }
            free(v);
        }
        for (const cJSON *ch = node->child; ch; ch = ch->next) {
            sub(p, path, ch->string ? ch->string : "");
            if (check_duplicates(ld, ch, p) < 0) return -1;
        }
    } else if (cJSON_IsArray(node)) {
        size_t i = 0;
        for (const cJSON *ch = node->child; ch; ch = ch->next, i++) {
            at(p, path, i);
            if (check_duplicates(ld, ch, p) < 0) return -1;
        }
    }
    return 0;
}

/* Levenshtein distance, capped: strings longer than 64 bytes count as far. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return SIZE_MAX;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v) v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            cur[j] = v;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

static int check_fields(struct ld *ld, const cJSON *obj, const char *path, const char *const *known) {
    char p[PATHLEN];
    for (const cJSON *ch = obj->child; ch; ch = ch->next) {
        const char *name = ch->string ? ch->string : "";
        size_t k;
        for (k = 0; known[k]; k++)
            if (strcmp(known[k], name) == 0) break;
        if (known[k]) continue;
        sub(p, path, name);
        const char *best = NULL;
        size_t bestd = SIZE_MAX;
        for (k = 0; known[k]; k++) {
            size_t d = edit_distance(name, known[k]);
            if (d < bestd) {
                bestd = d;
                best = known[k];
            }
        }
        size_t limit = strlen(name) <= 3 ? 1 : strlen(name) <= 8 ? 2 : 3;
        if (best && bestd <= limit)
            return fail(ld, p, "unknown field (did you mean \"%s\"?)", best);
        char list[512] = "";
        for (k = 0; known[k]; k++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "", known[k]);
        }
        return fail(ld, p, "unknown field (known: %s)", list);
    }
    return 0;
}

/* ---- ${VAR} expansion ----------------------------------------------------------- */

static int is_var_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_var_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Expand ${VAR}, ${VAR:-default} and $${ (a literal "${") in `in`. On success
 * *out is a new string (caller frees). Messages name the variable, never its
 * value. */
static int expand(struct ld *ld, const char *in, const char *path, char **out) {
    size_t cap = strlen(in) + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) return oom(ld);
    const char *p = in;
    while (*p) {
        const char *piece = p;
        size_t plen = 1;
        char name[128];
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            piece = "${";
            plen = 2;
            p += 3;
        } else if (p[0] == '$' && p[1] == '{') {
            const char *q = p + 2;
            if (!is_var_start(*q)) {
                free(buf);
                return fail(ld, path, "invalid ${...}: expected a variable name after \"${\" (write \"$${\" for a literal \"${\")");
            }
            while (is_var_char(*q)) q++;
            size_t nlen = (size_t)(q - (p + 2));
            if (nlen >= sizeof(name)) {
                free(buf);
                return fail(ld, path, "environment variable name is too long");
            }
            memcpy(name, p + 2, nlen);
            name[nlen] = '\0';
            const char *def = NULL;
            size_t deflen = 0;
            if (q[0] == ':' && q[1] == '-') {
                def = q + 2;
                const char *e = strchr(def, '}');
                if (!e) {
                    free(buf);
                    return fail(ld, path, "unterminated \"${%s:-\" (missing '}')", name);
                }
                deflen = (size_t)(e - def);
                q = e;
            }
            if (*q != '}') {
                free(buf);
                if (!*q) return fail(ld, path, "unterminated \"${%s\" (missing '}')", name);
                return fail(ld, path, "invalid character '%c' in \"${%s...}\" (use ${NAME} or ${NAME:-default})", *q, name);
            }
            const char *val = getenv(name);
            if (val && *val) {
                piece = val;
                plen = strlen(val);
            } else if (def) {
                piece = def;
                plen = deflen;
            } else if (val) {
                piece = "";
                plen = 0;
            } else {
                free(buf);
                return fail(ld, path, "environment variable %s is not set (write \"${%s:-default}\" to give a default)", name, name);
            }
            p = q + 1;
        } else {
            p++;
        }
        if (len + plen + 1 > cap) {
            size_t ncap = (len + plen + 1) * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return oom(ld);
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, piece, plen);
        len += plen;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

/* ---- typed getters ------------------------------------------------------------
 * Each takes the (possibly NULL) node of one field. NULL leaves *out at its
 * default and returns 0. Strings are expanded before any type check, so a
 * number can come from "${PORT}".
 */

/* Expanded text of a string node into *tmp (caller frees), or NULL if the
 * node is not a string. */
static int str_of(struct ld *ld, const cJSON *v, const char *path, char **tmp) {
    *tmp = NULL;
    if (!cJSON_IsString(v)) return 0;
    return expand(ld, v->valuestring, path, tmp);
}

static int get_str(struct ld *ld, const cJSON *v, const char *path, int secret, char **out) {
    if (!v) return 0;
    char b[64];
    if (!cJSON_IsString(v))
        return fail(ld, path, "expected a string, got %s", describe(v, secret, b, sizeof(b)));
    char *s;
    if (expand(ld, v->valuestring, path, &s) < 0) return -1;
    free(*out);
    *out = s;
    return 0;
}

/* Like get_str, but the value must not be empty after expansion. */
static int get_nonempty_str(struct ld *ld, const cJSON *v, const char *path, int secret, char **out) {
    if (get_str(ld, v, path, secret, out) < 0) return -1;
    if (v && !**out) {
        free(*out);
        *out = NULL;
        return fail(ld, path, "must not be empty");
    }
    return 0;
}

static int get_bool(struct ld *ld, const cJSON *v, const char *path, int *out) {
    if (!v) return 0;
    char b[64];
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    }
    char *s;
    if (str_of(ld, v, path, &s) < 0) return -1;
    if (s) {
        int ok = 1;
        if (strcmp(s, "true") == 0) *out = 1;
        else if (strcmp(s, "false") == 0) *out = 0;
        else ok = 0;
        if (!ok) fail(ld, path, "expected true or false, got %s", shown(s, b, sizeof(b)));
        free(s);
        return ok ? 0 : -1;
    }
    return fail(ld, path, "expected true or false, got %s", describe(v, 0, b, sizeof(b)));
}

/* Parse a whole string as a decimal integer (optional leading '-'). */
static int parse_ll(const char *s, long long *out) {
    if (!*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || !(isdig(*s) || (*s == '-' && isdig(s[1])))) return -1;
    *out = v;
    return 0;
}

static int get_ll(struct ld *ld, const cJSON *v, const char *path, long long min, long long max, long long *out) {
    char b[64];
    long long x;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d))
            return fail(ld, path, "expected an integer, got %s", describe(v, 0, b, sizeof(b)));
        if (d < (double)min || d > (double)max)
            return fail(ld, path, "must be between %lld and %lld, got %s", min, max, describe(v, 0, b, sizeof(b)));
        *out = (long long)d;
        return 0;
    }
    char *s;
    if (str_of(ld, v, path, &s) < 0) return -1;
    if (!s) return fail(ld, path, "expected an integer, got %s", describe(v, 0, b, sizeof(b)));
    if (parse_ll(s, &x) < 0) {
        fail(ld, path, "expected an integer, got %s", shown(s, b, sizeof(b)));
        free(s);
        return -1;
    }
    free(s);
    if (x < min || x > max) return fail(ld, path, "must be between %lld and %lld, got %lld", min, max, x);
    *out = x;
    return 0;
}

static int get_int(struct ld *ld, const cJSON *v, const char *path, int min, int max, int *out) {
    if (!v) return 0;
    long long x;
    if (get_ll(ld, v, path, min, max, &x) < 0) return -1;
    *out = (int)x;
    return 0;
}

/* A number; lo/hi bounds with open (exclusive) flags. */
static int get_double(struct ld *ld, const cJSON *v, const char *path, double lo, int lo_open,
                      double hi, int hi_open, double *out) {
    if (!v) return 0;
    char b[64];
    double d;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else {
        char *s;
        if (str_of(ld, v, path, &s) < 0) return -1;
        if (!s) return fail(ld, path, "expected a number, got %s", describe(v, 0, b, sizeof(b)));
        char *end;
        errno = 0;
        d = strtod(s, &end);
        if (!*s || *end || errno || isspace((unsigned char)*s)) {
            fail(ld, path, "expected a number, got %s", shown(s, b, sizeof(b)));
            free(s);
            return -1;
        }
        free(s);
    }
    int bad = !isfinite(d) || (lo_open ? d <= lo : d < lo) || (hi_open ? d >= hi : d > hi);
    if (bad) {
        if (lo_open && hi_open)
            return fail(ld, path, "must be strictly between %g and %g, got %g", lo, hi, d);
        if (lo_open)
            return fail(ld, path, "must be greater than %g and at most %g, got %g", lo, hi, d);
        return fail(ld, path, "must be between %g and %g, got %g", lo, hi, d);
    }
    *out = d;
    return 0;
}

/*
 * Durations: an integer (in the field's own unit: milliseconds for *_ms
 * fields, seconds for *_s fields) or a string "<integer><unit>" with unit
 * ms, s, m or h. `unit_ms` is 1 or 1000. The result is in the field's unit
 * and must lie in [min, max] (field units).
 */
static int get_duration(struct ld *ld, const cJSON *v, const char *path, int unit_ms,
                        long long min, long long max, int *out) {
    if (!v) return 0;
    char b[64];
    const char *unit_name = unit_ms == 1 ? "ms" : "s";
    if (cJSON_IsNumber(v)) {
        long long x;
        if (get_ll(ld, v, path, LLONG_MIN / 2, LLONG_MAX / 2, &x) < 0) return -1;
        if (x < min || x > max)
            return fail(ld, path, "must be between %lld%s and %lld%s, got %lld%s", min, unit_name, max, unit_name, x, unit_name);
        *out = (int)x;
        return 0;
    }
    char *s;
    if (str_of(ld, v, path, &s) < 0) return -1;
    if (!s)
        return fail(ld, path, "expected a duration such as \"30s\", \"500ms\" or \"2m\", got %s", describe(v, 0, b, sizeof(b)));
    const char *p = s;
    long long num = 0;
    int ok = isdig(*p);
    while (ok && isdig(*p)) {
        if (num > LLONG_MAX / 10 / 3600000) ok = 0;
        num = num * 10 + (*p++ - '0');
    }
    long long mult = 0;
    if (ok) {
        if (strcmp(p, "ms") == 0) mult = 1;
        else if (strcmp(p, "s") == 0) mult = 1000;
        else if (strcmp(p, "m") == 0) mult = 60000;
        else if (strcmp(p, "h") == 0) mult = 3600000;
        else if (*p == '\0') mult = unit_ms; /* "1500" from ${VAR}: field unit */
        else ok = 0;
    }
    if (!ok) {
        fail(ld, path, "expected a duration such as \"30s\", \"500ms\" or \"2m\", got %s", shown(s, b, sizeof(b)));
        free(s);
        return -1;
    }
    long long ms = num * mult;
    if (ms % unit_ms != 0) {
        fail(ld, path, "must be a whole number of seconds, got %s", shown(s, b, sizeof(b)));
        free(s);
        return -1;
    }
    long long x = ms / unit_ms;
    if (x < min || x > max) {
        fail(ld, path, "must be between %lld%s and %lld%s, got %s", min, unit_name, max, unit_name, shown(s, b, sizeof(b)));
        free(s);
        return -1;
    }
    free(s);
    *out = (int)x;
    return 0;
}

/* Sizes: an integer number of bytes or "<integer><unit>" with unit B, KiB,
 * MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000). */
static int get_size(struct ld *ld, const cJSON *v, const char *path, long long min, long long max, size_t *out) {
    if (!v) return 0;
    char b[64];
    if (cJSON_IsNumber(v)) {
        long long x;
        if (get_ll(ld, v, path, min, max, &x) < 0) return -1;
        *out = (size_t)x;
        return 0;
    }
    char *s;
    if (str_of(ld, v, path, &s) < 0) return -1;
    if (!s) return fail(ld, path, "expected a size such as \"8MiB\", \"512KiB\" or a number of bytes, got %s", describe(v, 0, b, sizeof(b)));
    const char *p = s;
    long long num = 0;
    int ok = isdig(*p);
    while (ok && isdig(*p)) {
        if (num > (LLONG_MAX / 10) >> 30) ok = 0;
        num = num * 10 + (*p++ - '0');
    }
    long long mult = 0;
    if (ok) {
        static const struct { const char *u; long long m; } units[] = {
            {"", 1}, {"B", 1}, {"KiB", 1LL << 10}, {"MiB", 1LL << 20}, {"GiB", 1LL << 30},
            {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
        };
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(p, units[i].u) == 0) mult = units[i].m;
        if (!mult) ok = 0;
    }
    if (!ok) {
        fail(ld, path, "expected a size such as \"8MiB\", \"512KiB\" or a number of bytes, got %s", shown(s, b, sizeof(b)));
        free(s);
        return -1;
    }
    long long x = num * mult;
    if (x < min || x > max) {
        fail(ld, path, "must be between %lld and %lld bytes, got %s", min, max, shown(s, b, sizeof(b)));
        free(s);
        return -1;
    }
    free(s);
    *out = (size_t)x;
    return 0;
}

/* One of a fixed set of words; returns the index in *out. */
static int get_enum(struct ld *ld, const cJSON *v, const char *path, const char *const *words, int *out) {
    if (!v) return 0;
    char b[64], list[256] = "";
    for (int k = 0; words[k]; k++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "", words[k]);
    }
    char *s;
    if (str_of(ld, v, path, &s) < 0) return -1;
    if (!s) return fail(ld, path, "expected one of %s, got %s", list, describe(v, 0, b, sizeof(b)));
    for (int k = 0; words[k]; k++) {
        if (strcmp(s, words[k]) == 0) {
            free(s);
            *out = k;
            return 0;
        }
    }
    fail(ld, path, "expected one of %s, got %s", list, shown(s, b, sizeof(b)));
    free(s);
    return -1;
}

/* An object field, or NULL; error if present with another type. */
static int get_obj(struct ld *ld, const cJSON *parent, const char *name, const char *path,
                   const cJSON **out) {
    *out = parent ? cJSON_GetObjectItemCaseSensitive(parent, name) : NULL;
    if (*out && !cJSON_IsObject(*out)) {
        char b[64];
        return fail(ld, path, "expected an object, got %s", describe(*out, 0, b, sizeof(b)));
    }
    return 0;
}

/* A string, or an array of strings, into a new vector. `single_ok` allows
 * the plain string form. An empty array is an error. */
static int get_strv(struct ld *ld, const cJSON *v, const char *path, int single_ok, char ***out, size_t *n_out) {
    char b[64], p[PATHLEN];
    if (single_ok && cJSON_IsString(v)) {
        char **vec = calloc(1, sizeof(char *));
        if (!vec) return oom(ld);
        *out = vec;
        *n_out = 1;
        return get_nonempty_str(ld, v, path, 0, &vec[0]);
    }
    if (!cJSON_IsArray(v))
        return fail(ld, path, single_ok ? "expected a string or an array of strings, got %s"
                                        : "expected an array of strings, got %s", describe(v, 0, b, sizeof(b)));
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) return fail(ld, path, "must not be an empty array");
    if (n > 1024) return fail(ld, path, "too many entries (%zu; at most 1024)", n);
    char **vec = calloc(n, sizeof(char *));
    if (!vec) return oom(ld);
    *out = vec;
    *n_out = n;
    size_t i = 0;
    for (const cJSON *ch = v->child; ch; ch = ch->next, i++) {
        at(p, path, i);
        if (!cJSON_IsString(ch)) return fail(ld, p, "expected a string, got %s", describe(ch, 0, b, sizeof(b)));
        if (get_nonempty_str(ld, ch, p, 0, &vec[i]) < 0) return -1;
    }
    return 0;
}

/* Resolve a relative path against the config file's folder. Absolute paths,
 * "builtin:..." names and a NULL base_dir leave it as is. */
static int resolve_path(struct ld *ld, char **pathp) {
    char *s = *pathp;
    if (!s || !ld->base_dir || s[0] == '/' || strncmp(s, "builtin:", 8) == 0) return 0;
    size_t n = strlen(ld->base_dir) + 1 + strlen(s) + 1;
    char *r = malloc(n);
    if (!r) return oom(ld);
    snprintf(r, n, "%s/%s", ld->base_dir, s);
    free(s);
    *pathp = r;
    return 0;
}

static int valid_env_name(const char *s) {
    if (!is_var_start(*s)) return 0;
    for (; *s; s++)
        if (!is_var_char(*s)) return 0;
    return 1;
}

/* ---- sections -------------------------------------------------------------------- */

static int load_server(struct ld *ld, const cJSON *o) {
    static const char *const known[] = {
        "listen", "allow_unauthenticated", "max_body_bytes", "request_timeout", "drain_timeout",
        "idle_timeout", "header_timeout", "body_timeout", "send_timeout",
        "max_connections", "log_level", "access_log", NULL
    };
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    struct cfg_server *s = &ld->c->server;
    char b[64];
    if (!o) return 0;
    if (check_fields(ld, o, "server", known) < 0) return -1;

    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "listen");
    if (v) {
        char *l = NULL;
        if (get_str(ld, v, "server.listen", 0, &l) < 0) return -1;
        char *host = NULL;
        const char *port = NULL;
        int bad = 0;
        if (l[0] == '[') {
            char *close = strchr(l, ']');
            if (!close || close[1] != ':') bad = 1;
            else {
                *close = '\0';
                host = l + 1;
                port = close + 2;
            }
        } else {
            char *colon = strrchr(l, ':');
            if (!colon) bad = 1;
            else if (strchr(l, ':') != colon) {
                fail(ld, "server.listen", "IPv6 addresses need brackets, e.g. \"[::1]:8080\", got %s", shown(l, b, sizeof(b)));
                free(l);
                return -1;
            } else {
                *colon = '\0';
                host = l;
                port = colon + 1;
            }
        }
        if (bad) {
            /* l may be modified only on the success paths above */
            fail(ld, "server.listen", "expected \"host:port\" (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"), got %s", shown(l, b, sizeof(b)));
            free(l);
            return -1;
        }
        if (!*host) {
            fail(ld, "server.listen", "missing host in \":%s\" (write \"127.0.0.1:%s\" for this machine only, or \"0.0.0.0:%s\" for all interfaces)",
                 port, port, port);
            free(l);
            return -1;
        }
        long long pn;
        if (parse_ll(port, &pn) < 0 || port[0] == '-') {
            fail(ld, "server.listen", "invalid port %s", shown(port, b, sizeof(b)));
            free(l);
            return -1;
        }
        if (pn > 65535) {
            fail(ld, "server.listen", "port %lld is out of range (0-65535)", pn);
            free(l);
            return -1;
        }
        char *h = cfg__strdup(host);
        free(l);
        if (!h) return oom(ld);
        free(s->listen_host);
        s->listen_host = h;
        s->listen_port = (int)pn;
    }
    if (get_bool(ld, cJSON_GetObjectItemCaseSensitive(o, "allow_unauthenticated"), "server.allow_unauthenticated", &s->allow_unauthenticated) < 0 ||
        get_size(ld, cJSON_GetObjectItemCaseSensitive(o, "max_body_bytes"), "server.max_body_bytes", 1, 1LL << 30, &s->max_body_bytes) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "request_timeout"), "server.request_timeout", 1, 1, 86400000, &s->request_timeout_ms) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "drain_timeout"), "server.drain_timeout", 1, 0, 86400000, &s->drain_timeout_ms) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "idle_timeout"), "server.idle_timeout", 1, 1, 86400000, &s->idle_timeout_ms) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "header_timeout"), "server.header_timeout", 1, 1, 86400000, &s->header_timeout_ms) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "body_timeout"), "server.body_timeout", 1, 1, 86400000, &s->body_timeout_ms) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "send_timeout"), "server.send_timeout", 1, 1, 86400000, &s->send_timeout_ms) < 0 ||
        get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "max_connections"), "server.max_connections", 1, 1000000, &s->max_connections) < 0 ||
        get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(o, "access_log"), "server.access_log", 0, &s->access_log) < 0)
        return -1;
    int lvl = -1;
    if (get_enum(ld, cJSON_GetObjectItemCaseSensitive(o, "log_level"), "server.log_level", levels, &lvl) < 0) return -1;
    if (lvl >= 0) {
        char *d = cfg__strdup(levels[lvl]);
        if (!d) return oom(ld);
        free(s->log_level);
        s->log_level = d;
    }
    if (s->access_log && strcmp(s->access_log, "-") && strcmp(s->access_log, "off"))
        return resolve_path(ld, &s->access_log);
    return 0;
}

static int load_keys(struct ld *ld, const cJSON *a) {
    static const char *const known[] = {"name", "key", "admin", "route_override", "rpm", "tpm", NULL};
    char b[64], p[PATHLEN], q[PATHLEN];
    if (!a) return 0;
    if (!cJSON_IsArray(a)) return fail(ld, "keys", "expected an array of {\"name\", \"key\"} objects, got %s", describe(a, 0, b, sizeof(b)));
    size_t n = (size_t)cJSON_GetArraySize(a);
    if (n == 0) return 0;
    if (n > 10000) return fail(ld, "keys", "too many client keys (%zu; at most 10000)", n);
    struct cfg *c = ld->c;
    c->keys = calloc(n, sizeof(*c->keys));
    if (!c->keys) return oom(ld);
    c->n_keys = n;
    size_t i = 0;
    for (const cJSON *o = a->child; o; o = o->next, i++) {
        struct cfg_client_key *k = &c->keys[i];
        at(p, "keys", i);
        if (!cJSON_IsObject(o)) return fail(ld, p, "expected an object, got %s", describe(o, 0, b, sizeof(b)));
        if (check_fields(ld, o, p, known) < 0) return -1;
        const cJSON *kv = cJSON_GetObjectItemCaseSensitive(o, "key");
        sub(q, p, "key");
        if (!kv) return fail(ld, q, "required (the client's API key, e.g. \"${CLIENT_KEY}\")");
        if (get_nonempty_str(ld, kv, q, 1, &k->key) < 0) return -1;
        sub(q, p, "name");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(o, "name"), q, 0, &k->name) < 0) return -1;
        if (!k->name) {
            char def[32];
            snprintf(def, sizeof(def), "key%zu", i);
            if (!(k->name = cfg__strdup(def))) return oom(ld);
        }
        sub(q, p, "admin");
        if (get_bool(ld, cJSON_GetObjectItemCaseSensitive(o, "admin"), q, &k->admin) < 0) return -1;
        sub(q, p, "route_override");
        if (get_bool(ld, cJSON_GetObjectItemCaseSensitive(o, "route_override"), q, &k->route_override) < 0) return -1;
        sub(q, p, "rpm");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "rpm"), q, 0, 100000000, &k->rpm) < 0) return -1;
        sub(q, p, "tpm");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "tpm"), q, 0, 1000000000, &k->tpm) < 0) return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->keys[j].name, k->name) == 0) {
                sub(q, p, "name");
                return fail(ld, q, "duplicate name \"%s\" (also keys[%zu])", k->name, j);
            }
            if (strcmp(c->keys[j].key, k->key) == 0) {
                sub(q, p, "key");
                return fail(ld, q, "same key as keys[%zu] (\"%s\"); every client needs its own key", j, c->keys[j].name);
            }
        }
    }
    return 0;
}

static int load_upstreams(struct ld *ld, const cJSON *o) {
    static const char *const known[] = {
        "kind", "base_url", "api_key_env", "api_version", "headers", "timeouts",
        "max_connections", "tls_verify", "ca_file", "http_client", NULL
    };
    static const char *const tknown[] = {"connect", "first_byte", "idle", "total", NULL};
    static const char *const kinds[] = {"openai", "azure", "anthropic", NULL};
    char b[64], p[PATHLEN], q[PATHLEN], r[PATHLEN];
    if (!o) return 0;
    if (!cJSON_IsObject(o)) return fail(ld, "upstreams", "expected an object of {name: {...}}, got %s", describe(o, 0, b, sizeof(b)));
    size_t n = (size_t)cJSON_GetArraySize(o);
    if (n == 0) return 0;
    if (n > 1000) return fail(ld, "upstreams", "too many upstreams (%zu; at most 1000)", n);
    struct cfg *c = ld->c;
    c->upstreams = calloc(n, sizeof(*c->upstreams));
    if (!c->upstreams) return oom(ld);
    c->n_upstreams = n;
    size_t i = 0;
    for (const cJSON *u = o->child; u; u = u->next, i++) {
        struct cfg_upstream *up = &c->upstreams[i];
        cfg_upstream_init(up);
        sub(p, "upstreams", u->string);
        if (!*u->string) return fail(ld, "upstreams", "an upstream name must not be empty");
        if (strchr(u->string, '/') || strncmp(u->string, "local:", 6) == 0)
            return fail(ld, p, "an upstream name must not contain '/' or start with \"local:\"");
        if (!(up->name = cfg__strdup(u->string))) return oom(ld);
        if (!cJSON_IsObject(u)) return fail(ld, p, "expected an object, got %s", describe(u, 0, b, sizeof(b)));
        if (check_fields(ld, u, p, known) < 0) return -1;

        int kind = CFG_UPSTREAM_OPENAI;
        sub(q, p, "kind");
        if (get_enum(ld, cJSON_GetObjectItemCaseSensitive(u, "kind"), q, kinds, &kind) < 0) return -1;
        up->kind = (enum cfg_upstream_kind)kind;

        sub(q, p, "base_url");
        const cJSON *bu = cJSON_GetObjectItemCaseSensitive(u, "base_url");
        if (!bu) return fail(ld, q, "required (e.g. \"https://api.openai.com/v1\")");
        if (get_str(ld, bu, q, 0, &up->base_url) < 0) return -1;
        size_t bl = strlen(up->base_url);
        while (bl > 0 && up->base_url[bl - 1] == '/') up->base_url[--bl] = '\0';
        const char *rest = strncmp(up->base_url, "https://", 8) == 0 ? up->base_url + 8
                         : strncmp(up->base_url, "http://", 7) == 0 ? up->base_url + 7 : NULL;
        if (!rest || !*rest || *rest == '/' || strpbrk(up->base_url, " \t\r\n"))
            return fail(ld, q, "expected an http:// or https:// URL, got %s", describe(bu, 0, b, sizeof(b)));

        sub(q, p, "api_key_env");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(u, "api_key_env"), q, 0, &up->api_key_env) < 0) return -1;
        if (up->api_key_env) {
            if (!valid_env_name(up->api_key_env))
                return fail(ld, q, "expected the name of an environment variable (e.g. \"OPENAI_API_KEY\"), got %s",
                            shown(up->api_key_env, b, sizeof(b)));
            const char *val = getenv(up->api_key_env);
            if (val && *val && !(up->api_key = cfg__strdup(val))) return oom(ld);
        }
        sub(q, p, "api_version");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(u, "api_version"), q, 0, &up->api_version) < 0) return -1;
        if (up->kind == CFG_UPSTREAM_AZURE && !up->api_version)
            return fail(ld, q, "required for kind \"azure\" (e.g. \"2024-10-21\")");

        const cJSON *h;
        sub(q, p, "headers");
        if (get_obj(ld, u, "headers", q, &h) < 0) return -1;
        if (h && h->child) {
            size_t nh = (size_t)cJSON_GetArraySize(h);
            if (nh > 64) return fail(ld, q, "too many headers (%zu; at most 64)", nh);
            up->headers = calloc(nh, sizeof(*up->headers));
            if (!up->headers) return oom(ld);
            up->n_headers = nh;
            size_t j = 0;
            for (const cJSON *hv = h->child; hv; hv = hv->next, j++) {
                sub(r, q, hv->string);
                if (!(up->headers[j].name = cfg__strdup(hv->string))) return oom(ld);
                if (!*hv->string) return fail(ld, q, "a header name must not be empty");
                for (const char *s = hv->string; *s; s++)
                    if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
                        return fail(ld, r, "invalid character in header name");
                if (get_str(ld, hv, r, 1, &up->headers[j].value) < 0) return -1;
                if (strpbrk(up->headers[j].value, "\r\n")) return fail(ld, r, "value contains a line break");
            }
        }
        const cJSON *t;
        sub(q, p, "timeouts");
        if (get_obj(ld, u, "timeouts", q, &t) < 0) return -1;
        if (t) {
            if (check_fields(ld, t, q, tknown) < 0) return -1;
            sub(r, q, "connect");
            if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(t, "connect"), r, 1, 1, 86400000, &up->connect_timeout_ms) < 0) return -1;
            sub(r, q, "first_byte");
            if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(t, "first_byte"), r, 1, 1, 86400000, &up->first_byte_timeout_ms) < 0) return -1;
            sub(r, q, "idle");
            if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(t, "idle"), r, 1, 1, 86400000, &up->idle_timeout_ms) < 0) return -1;
            sub(r, q, "total");
            if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(t, "total"), r, 1, 1, 86400000, &up->total_timeout_ms) < 0) return -1;
        }
        sub(q, p, "max_connections");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(u, "max_connections"), q, 1, 100000, &up->max_connections) < 0) return -1;
        sub(q, p, "tls_verify");
        if (get_bool(ld, cJSON_GetObjectItemCaseSensitive(u, "tls_verify"), q, &up->tls_verify) < 0) return -1;
        sub(q, p, "ca_file");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(u, "ca_file"), q, 0, &up->ca_file) < 0) return -1;
        if (resolve_path(ld, &up->ca_file) < 0) return -1;
        static const char *const clients[] = {"auto", "libcurl", NULL};
        int hc = 0;
        sub(q, p, "http_client");
        if (get_enum(ld, cJSON_GetObjectItemCaseSensitive(u, "http_client"), q, clients, &hc) < 0) return -1;
        up->use_curl = hc == 1;
    }
    return 0;
}

static int load_local_models(struct ld *ld, const cJSON *o) {
    static const char *const known[] = {
        "path", "sha256", "context_length", "threads", "chat_template", "chat_template_file",
        "chat_template_name", "max_queue", "max_batch", "kv_cache", NULL
    };
    char b[64], p[PATHLEN], q[PATHLEN];
    if (!o) return 0;
    if (!cJSON_IsObject(o)) return fail(ld, "local_models", "expected an object of {name: {...}}, got %s", describe(o, 0, b, sizeof(b)));
    size_t n = (size_t)cJSON_GetArraySize(o);
    if (n == 0) return 0;
    if (n > 256) return fail(ld, "local_models", "too many local models (%zu; at most 256)", n);
    struct cfg *c = ld->c;
    c->local_models = calloc(n, sizeof(*c->local_models));
    if (!c->local_models) return oom(ld);
    c->n_local_models = n;
    size_t i = 0;
    for (const cJSON *m = o->child; m; m = m->next, i++) {
        struct cfg_local_model *lm = &c->local_models[i];
        lm->max_queue = 64;
        lm->max_batch = 8;
        sub(p, "local_models", m->string);
        if (!*m->string) return fail(ld, "local_models", "a model name must not be empty");
        if (!(lm->name = cfg__strdup(m->string))) return oom(ld);
        if (!cJSON_IsObject(m)) return fail(ld, p, "expected an object, got %s", describe(m, 0, b, sizeof(b)));
        if (check_fields(ld, m, p, known) < 0) return -1;

        sub(q, p, "path");
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(m, "path");
        if (!pv) return fail(ld, q, "required (a GGUF file)");
        if (get_nonempty_str(ld, pv, q, 0, &lm->path) < 0) return -1;
        if (resolve_path(ld, &lm->path) < 0) return -1;

        sub(q, p, "sha256");
        const cJSON *hv = cJSON_GetObjectItemCaseSensitive(m, "sha256");
        if (!hv)
            return fail(ld, q, "required; run `llmpin verify FILE` and paste the hash it prints, or write \"unpinned\" to skip the check");
        if (get_str(ld, hv, q, 0, &lm->sha256) < 0) return -1;
        char *h = lm->sha256;
        if (strncmp(h, "sha256:", 7) == 0) memmove(h, h + 7, strlen(h + 7) + 1);
        if (strcmp(h, "unpinned") != 0) {
            size_t k, hl = strlen(h);
            for (k = 0; k < hl && isxdigit((unsigned char)h[k]); k++) h[k] = (char)tolower((unsigned char)h[k]);
            if (hl != 64 || k != hl)
                return fail(ld, q, "expected 64 hex digits or \"unpinned\", got %s", describe(hv, 0, b, sizeof(b)));
        }
        sub(q, p, "context_length");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(m, "context_length"), q, 0, 1 << 20, &lm->context_length) < 0) return -1;
        sub(q, p, "threads");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(m, "threads"), q, 0, 256, &lm->threads) < 0) return -1;
        sub(q, p, "kv_cache");
        static const char *const kv_types[] = {"f16", "f32", NULL};
        int kvt = 0;
        const cJSON *kvv = cJSON_GetObjectItemCaseSensitive(m, "kv_cache");
        if (kvv && get_enum(ld, kvv, q, kv_types, &kvt) < 0) return -1;
        lm->kv_f32 = kvt == 1;
        sub(q, p, "chat_template");
        /* "auto" or null: the model's own Jinja template; else a built-in family */
        static const char *const templates[] = {"auto", "llama2", "llama3", "chatml", "zephyr", "mistral", "gemma", "phi3", "plain", NULL};
        int tpl = -1;
        const cJSON *ctv = cJSON_GetObjectItemCaseSensitive(m, "chat_template");
        if (ctv && !cJSON_IsNull(ctv) && get_enum(ld, ctv, q, templates, &tpl) < 0) return -1;
        if (tpl > 0 && !(lm->chat_template = cfg__strdup(templates[tpl]))) return oom(ld);
        sub(q, p, "chat_template_file");
        const cJSON *ctf = cJSON_GetObjectItemCaseSensitive(m, "chat_template_file");
        if (ctf) {
            if (get_nonempty_str(ld, ctf, q, 0, &lm->chat_template_file) < 0) return -1;
            if (resolve_path(ld, &lm->chat_template_file) < 0) return -1;
            if (lm->chat_template)
                return fail(ld, q, "cannot be used with chat_template \"%s\" (a file replaces the model's "
                                   "template; a family replaces both)", lm->chat_template);
        }
        sub(q, p, "chat_template_name");
        const cJSON *ctn = cJSON_GetObjectItemCaseSensitive(m, "chat_template_name");
        if (ctn) {
            if (get_nonempty_str(ld, ctn, q, 0, &lm->chat_template_name) < 0) return -1;
            if (lm->chat_template || lm->chat_template_file)
                return fail(ld, q, "names one of the model's own templates; it cannot be used with "
                                   "chat_template or chat_template_file");
        }
        sub(q, p, "max_queue");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(m, "max_queue"), q, 0, 1000000, &lm->max_queue) < 0) return -1;
        sub(q, p, "max_batch");
        if (get_int(ld, cJSON_GetObjectItemCaseSensitive(m, "max_batch"), q, 1, 256, &lm->max_batch) < 0) return -1;
    }
    return 0;
}

/* One target: an object, "upstream/model", "upstream" or "local:model". */
static int load_target(struct ld *ld, const cJSON *v, const char *p, struct cfg_target *t, int *has_weight) {
    static const char *const known[] = {"upstream", "local", "model", "weight", "pin", NULL};
    static const char *const pknown[] = {"model", "system_fingerprint", NULL};
    char b[64], q[PATHLEN], r[PATHLEN];
    cfg_target_init(t);
    *has_weight = 0;
    if (cJSON_IsString(v)) {
        char *s = NULL;
        if (get_nonempty_str(ld, v, p, 0, &s) < 0) return -1;
        if (strncmp(s, "local:", 6) == 0) {
            if (!s[6]) {
                free(s);
                return fail(ld, p, "expected \"local:MODEL\" with a model name");
            }
            t->local = cfg__strdup(s + 6);
        } else {
            char *slash = strchr(s, '/');
            if (slash) {
                *slash = '\0';
                if (!*s || !slash[1]) {
                    *slash = '/';
                    fail(ld, p, "expected \"UPSTREAM/MODEL\", \"UPSTREAM\" or \"local:MODEL\", got %s", shown(s, b, sizeof(b)));
                    free(s);
                    return -1;
                }
                t->model = cfg__strdup(slash + 1);
                if (!t->model) {
                    free(s);
                    return oom(ld);
                }
            }
            t->upstream = cfg__strdup(s);
        }
        free(s);
        if (!t->local && !t->upstream) return oom(ld);
        return 0;
    }
    if (!cJSON_IsObject(v))
        return fail(ld, p, "expected an object or a string such as \"openai/gpt-4o\" or \"local:NAME\", got %s", describe(v, 0, b, sizeof(b)));
    if (check_fields(ld, v, p, known) < 0) return -1;
    sub(q, p, "upstream");
    if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(v, "upstream"), q, 0, &t->upstream) < 0) return -1;
    sub(q, p, "local");
    if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(v, "local"), q, 0, &t->local) < 0) return -1;
    if (!t->upstream == !t->local) return fail(ld, p, "set exactly one of \"upstream\" or \"local\"");
    sub(q, p, "model");
    if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(v, "model"), q, 0, &t->model) < 0) return -1;
    if (t->model && t->local) return fail(ld, q, "applies only to upstream targets");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(v, "weight");
    sub(q, p, "weight");
    if (get_double(ld, w, q, 0, 0, 1e9, 0, &t->weight) < 0) return -1;
    *has_weight = w != NULL;
    const cJSON *pin;
    sub(q, p, "pin");
    if (get_obj(ld, v, "pin", q, &pin) < 0) return -1;
    if (pin) {
        if (t->local)
            return fail(ld, q, "pins apply only to upstream targets (a local model is pinned by its sha256)");
        if (check_fields(ld, pin, q, pknown) < 0) return -1;
        sub(r, q, "model");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(pin, "model"), r, 0, &t->pin_model) < 0) return -1;
        sub(r, q, "system_fingerprint");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(pin, "system_fingerprint"), r, 0, &t->pin_fingerprint) < 0) return -1;
    }
    return 0;
}

/* Reads routes into c->routes. keep[i] is set to 0 for routes whose
 * enabled_if_env variable is unset or empty. */
static int load_routes(struct ld *ld, const cJSON *a, unsigned char **keep) {
    static const char *const known[] = {
        "name", "match", "keys", "mode", "targets", "fallback_on", "on_drift", "retry",
        "sticky", "shadow", "enabled_if_env", NULL
    };
    static const char *const modes[] = {"remote", "local", "fallback", "split", "shadow", NULL};
    static const char *const drifts[] = {"record", "fallback", "reject", NULL};
    static const char *const conds[] = {"connect", "timeout", "429", "5xx", "circuit_open", "drift", NULL};
    static const char *const rknown[] = {"max_attempts", "base", "max", NULL};
    static const char *const sknown[] = {"sample", "max_inflight", NULL};
    char b[64], p[PATHLEN], q[PATHLEN], r[PATHLEN];
    *keep = NULL;
    if (!a) return 0;
    if (!cJSON_IsArray(a)) return fail(ld, "routes", "expected an array of route objects, got %s", describe(a, 0, b, sizeof(b)));
    size_t n = (size_t)cJSON_GetArraySize(a);
    if (n == 0) return 0;
    if (n > 10000) return fail(ld, "routes", "too many routes (%zu; at most 10000)", n);
    struct cfg *c = ld->c;
    c->routes = calloc(n, sizeof(*c->routes));
    *keep = malloc(n);
    if (!c->routes || !*keep) return oom(ld);
    memset(*keep, 1, n);
    c->n_routes = n;
    size_t i = 0;
    for (const cJSON *o = a->child; o; o = o->next, i++) {
        struct cfg_route *rt = &c->routes[i];
        cfg_route_init(rt);
        at(p, "routes", i);
        if (!cJSON_IsObject(o)) return fail(ld, p, "expected an object, got %s", describe(o, 0, b, sizeof(b)));
        if (check_fields(ld, o, p, known) < 0) return -1;

        sub(q, p, "name");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(o, "name"), q, 0, &rt->name) < 0) return -1;
        if (!rt->name) {
            char def[32];
            snprintf(def, sizeof(def), "route%zu", i);
            if (!(rt->name = cfg__strdup(def))) return oom(ld);
        }
        sub(q, p, "match");
        const cJSON *mv = cJSON_GetObjectItemCaseSensitive(o, "match");
        if (!mv) return fail(ld, q, "required (a model name or glob such as \"gpt-4o*\", or an array of them)");
        if (get_strv(ld, mv, q, 1, &rt->match, &rt->n_match) < 0) return -1;

        sub(q, p, "keys");
        const cJSON *kv = cJSON_GetObjectItemCaseSensitive(o, "keys");
        if (kv) {
            if (cJSON_IsArray(kv) && !kv->child) return fail(ld, q, "must not be an empty array (omit \"keys\" to allow every client key)");
            if (get_strv(ld, kv, q, 0, &rt->keys, &rt->n_keys) < 0) return -1;
        }

        sub(q, p, "targets");
        const cJSON *tv = cJSON_GetObjectItemCaseSensitive(o, "targets");
        if (!tv) return fail(ld, q, "required (e.g. [\"openai/gpt-4o\", \"local:NAME\"])");
        if (!cJSON_IsArray(tv)) return fail(ld, q, "expected an array, got %s", describe(tv, 0, b, sizeof(b)));
        size_t nt = (size_t)cJSON_GetArraySize(tv);
        if (nt == 0) return fail(ld, q, "must list at least one target");
        if (nt > 64) return fail(ld, q, "too many targets (%zu; at most 64)", nt);
        rt->targets = calloc(nt, sizeof(*rt->targets));
        if (!rt->targets) return oom(ld);
        rt->n_targets = nt;
        int any_weight = 0;
        size_t j = 0;
        for (const cJSON *t = tv->child; t; t = t->next, j++) {
            int hw;
            at(r, q, j);
            if (load_target(ld, t, r, &rt->targets[j], &hw) < 0) return -1;
            any_weight |= hw;
        }

        int mode = -1;
        sub(q, p, "mode");
        if (get_enum(ld, cJSON_GetObjectItemCaseSensitive(o, "mode"), q, modes, &mode) < 0) return -1;
        if (mode < 0) /* default: one target serves alone, several fall back in order */
            mode = nt > 1 ? CFG_MODE_FALLBACK : rt->targets[0].local ? CFG_MODE_LOCAL : CFG_MODE_REMOTE;
        rt->mode = (enum cfg_route_mode)mode;
        if (any_weight && rt->mode != CFG_MODE_SPLIT) {
            for (j = 0; j < nt; j++) {
                const cJSON *t = cJSON_GetArrayItem(tv, (int)j);
                if (cJSON_IsObject(t) && cJSON_GetObjectItemCaseSensitive(t, "weight")) break;
            }
            char wp[PATHLEN + 64];
            snprintf(wp, sizeof(wp), "%s.targets[%zu].weight", p, j);
            return fail(ld, wp, "applies only to mode split (this route's mode is %s)", modes[mode]);
        }

        sub(q, p, "fallback_on");
        const cJSON *fv = cJSON_GetObjectItemCaseSensitive(o, "fallback_on");
        if (fv) {
            if (!cJSON_IsArray(fv)) return fail(ld, q, "expected an array of conditions, got %s", describe(fv, 0, b, sizeof(b)));
            rt->fallback_on = 0;
            j = 0;
            for (const cJSON *f = fv->child; f; f = f->next, j++) {
                int k;
                at(r, q, j);
                if (get_enum(ld, f, r, conds, &k) < 0) return -1;
                rt->fallback_on |= 1u << k;
            }
        }
        int od = CFG_DRIFT_RECORD;
        sub(q, p, "on_drift");
        if (get_enum(ld, cJSON_GetObjectItemCaseSensitive(o, "on_drift"), q, drifts, &od) < 0) return -1;
        rt->on_drift = (enum cfg_on_drift)od;

        const cJSON *rv;
        sub(q, p, "retry");
        if (get_obj(ld, o, "retry", q, &rv) < 0) return -1;
        if (rv) {
            if (check_fields(ld, rv, q, rknown) < 0) return -1;
            sub(r, q, "max_attempts");
            if (get_int(ld, cJSON_GetObjectItemCaseSensitive(rv, "max_attempts"), r, 1, 10, &rt->retry.max_attempts) < 0) return -1;
            sub(r, q, "base");
            if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(rv, "base"), r, 1, 0, 3600000, &rt->retry.base_ms) < 0) return -1;
            sub(r, q, "max");
            if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(rv, "max"), r, 1, 0, 3600000, &rt->retry.max_ms) < 0) return -1;
            if (rt->retry.max_ms < rt->retry.base_ms)
                return fail(ld, r, "must be at least retry.base (%d ms), got %d ms", rt->retry.base_ms, rt->retry.max_ms);
        }
        sub(q, p, "sticky");
        if (get_bool(ld, cJSON_GetObjectItemCaseSensitive(o, "sticky"), q, &rt->sticky) < 0) return -1;
        if (rt->sticky && rt->mode != CFG_MODE_SPLIT)
            return fail(ld, q, "applies only to mode split (this route's mode is %s)", modes[mode]);

        const cJSON *sv;
        sub(q, p, "shadow");
        if (get_obj(ld, o, "shadow", q, &sv) < 0) return -1;
        if (sv) {
            if (rt->mode != CFG_MODE_SHADOW)
                return fail(ld, q, "applies only to mode shadow (this route's mode is %s)", modes[mode]);
            if (check_fields(ld, sv, q, sknown) < 0) return -1;
            sub(r, q, "sample");
            if (get_double(ld, cJSON_GetObjectItemCaseSensitive(sv, "sample"), r, 0, 0, 1, 0, &rt->shadow_sample) < 0) return -1;
            sub(r, q, "max_inflight");
            if (get_int(ld, cJSON_GetObjectItemCaseSensitive(sv, "max_inflight"), r, 1, 1024, &rt->shadow_max_inflight) < 0) return -1;
        }

        sub(q, p, "enabled_if_env");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(o, "enabled_if_env"), q, 0, &rt->enabled_if_env) < 0) return -1;
        if (rt->enabled_if_env) {
            if (!valid_env_name(rt->enabled_if_env))
                return fail(ld, q, "expected the name of an environment variable, got %s", shown(rt->enabled_if_env, b, sizeof(b)));
            const char *val = getenv(rt->enabled_if_env);
            (*keep)[i] = val && *val;
        }

        /* cross references, with the route's index in the file */
        if (cfg__check_route(c, rt, i, ld->file, ld->err, ld->errlen) < 0) return -1;
        for (j = 0; j < i; j++)
            if (strcmp(c->routes[j].name, rt->name) == 0) {
                sub(q, p, "name");
                return fail(ld, q, "duplicate route name \"%s\" (also routes[%zu])", rt->name, j);
            }
    }
    return 0;
}

static int load_breaker(struct ld *ld, const cJSON *o) {
    static const char *const known[] = {
        "consecutive_failures", "error_rate", "window", "min_requests", "cooldown", "half_open_requests", NULL
    };
    struct cfg_breaker *b = &ld->c->breaker;
    if (!o) return 0;
    if (check_fields(ld, o, "breaker", known) < 0) return -1;
    if (get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "consecutive_failures"), "breaker.consecutive_failures", 0, 1000000, &b->consecutive_failures) < 0 ||
        get_double(ld, cJSON_GetObjectItemCaseSensitive(o, "error_rate"), "breaker.error_rate", 0, 1, 1, 0, &b->error_rate) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "window"), "breaker.window", 1000, 1, 86400, &b->window_s) < 0 ||
        get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "min_requests"), "breaker.min_requests", 1, 1000000, &b->min_requests) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "cooldown"), "breaker.cooldown", 1, 1, 86400000, &b->cooldown_ms) < 0 ||
        get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "half_open_requests"), "breaker.half_open_requests", 1, 1000, &b->half_open_requests) < 0)
        return -1;
    return 0;
}

/* drift.writer_nice: "idle" (SCHED_IDLE) or a nice value 0..19 */
static int get_writer_nice(struct ld *ld, const cJSON *v, int *out) {
    if (!v) return 0;
    char *s;
    if (str_of(ld, v, "drift.writer_nice", &s) < 0) return -1;
    int idle = s && strcmp(s, "idle") == 0;
    free(s);
    if (idle) {
        *out = CFG_WRITER_IDLE;
        return 0;
    }
    if (get_int(ld, v, "drift.writer_nice", 0, 19, out) < 0) {   /* one message for both */
        char b[64];
        return fail(ld, "drift.writer_nice", "expected \"idle\" or a nice value between 0 and 19, got %s",
                    describe(v, 0, b, sizeof(b)));
    }
    return 0;
}

static int load_drift(struct ld *ld, const cJSON *o) {
    static const char *const known[] = {
        "enabled", "db_path", "store_outputs", "commit_interval", "writer_nice", "retention_days", "retention_mb",
        "webhook_url", "false_alarm_rate", "min_drop", "baseline_probes", "probes", NULL
    };
    static const char *const pknown[] = {"name", "path", "targets", "interval", NULL};
    static const char *const stores[] = {"none", "hash", "full", NULL};
    char b[64], p[PATHLEN], q[PATHLEN];
    struct cfg_drift *d = &ld->c->drift;
    if (!o) return resolve_path(ld, &d->db_path);
    if (check_fields(ld, o, "drift", known) < 0) return -1;
    int st = (int)d->store_outputs;
    if (get_bool(ld, cJSON_GetObjectItemCaseSensitive(o, "enabled"), "drift.enabled", &d->enabled) < 0 ||
        get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(o, "db_path"), "drift.db_path", 0, &d->db_path) < 0 ||
        get_enum(ld, cJSON_GetObjectItemCaseSensitive(o, "store_outputs"), "drift.store_outputs", stores, &st) < 0 ||
        get_duration(ld, cJSON_GetObjectItemCaseSensitive(o, "commit_interval"), "drift.commit_interval", 1, 1, 60000, &d->commit_interval_ms) < 0 ||
        get_writer_nice(ld, cJSON_GetObjectItemCaseSensitive(o, "writer_nice"), &d->writer_nice) < 0 ||
        get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "retention_days"), "drift.retention_days", 0, 36500, &d->retention_days) < 0 ||
        get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "retention_mb"), "drift.retention_mb", 0, 100000000, &d->retention_mb) < 0 ||
        get_double(ld, cJSON_GetObjectItemCaseSensitive(o, "false_alarm_rate"), "drift.false_alarm_rate", 0, 1, 1, 1, &d->false_alarm_rate) < 0 ||
        get_double(ld, cJSON_GetObjectItemCaseSensitive(o, "min_drop"), "drift.min_drop", 0, 1, 1, 1, &d->min_drop) < 0 ||
        get_int(ld, cJSON_GetObjectItemCaseSensitive(o, "baseline_probes"), "drift.baseline_probes", 1, 1000000, &d->baseline_probes) < 0)
        return -1;
    d->store_outputs = (enum cfg_store_outputs)st;
    if (resolve_path(ld, &d->db_path) < 0) return -1;

    /* the webhook URL may carry a token: checked without quoting it */
    const cJSON *wv = cJSON_GetObjectItemCaseSensitive(o, "webhook_url");
    if (get_str(ld, wv, "drift.webhook_url", 1, &d->webhook_url) < 0) return -1;
    if (d->webhook_url && !*d->webhook_url) {
        free(d->webhook_url); /* "${HOOK:-}" turns the webhook off */
        d->webhook_url = NULL;
    }
    if (d->webhook_url && strncmp(d->webhook_url, "http://", 7) && strncmp(d->webhook_url, "https://", 8))
        return fail(ld, "drift.webhook_url", "expected an http:// or https:// URL");

    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(o, "probes");
    if (!pa) return 0;
    if (!cJSON_IsArray(pa)) return fail(ld, "drift.probes", "expected an array of probe suites, got %s", describe(pa, 0, b, sizeof(b)));
    size_t n = (size_t)cJSON_GetArraySize(pa);
    if (n == 0) return 0;
    if (n > 256) return fail(ld, "drift.probes", "too many probe suites (%zu; at most 256)", n);
    d->probes = calloc(n, sizeof(*d->probes));
    if (!d->probes) return oom(ld);
    d->n_probes = n;
    size_t i = 0;
    for (const cJSON *v = pa->child; v; v = v->next, i++) {
        struct cfg_probe_suite *ps = &d->probes[i];
        ps->interval_s = 3600;
        at(p, "drift.probes", i);
        if (!cJSON_IsObject(v)) return fail(ld, p, "expected an object, got %s", describe(v, 0, b, sizeof(b)));
        if (check_fields(ld, v, p, pknown) < 0) return -1;
        sub(q, p, "name");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(v, "name"), q, 0, &ps->name) < 0) return -1;
        if (!ps->name) {
            char def[32];
            snprintf(def, sizeof(def), "probe%zu", i);
            if (!(ps->name = cfg__strdup(def))) return oom(ld);
        }
        sub(q, p, "path");
        if (get_nonempty_str(ld, cJSON_GetObjectItemCaseSensitive(v, "path"), q, 0, &ps->path) < 0) return -1;
        if (!ps->path && !(ps->path = cfg__strdup("builtin:default"))) return oom(ld);
        if (strncmp(ps->path, "builtin:", 8) == 0 && strcmp(ps->path, "builtin:default") != 0 &&
            strcmp(ps->path, "builtin:primes") != 0)
            return fail(ld, q, "unknown builtin probe set %s (known: builtin:default, builtin:primes)",
                        shown(ps->path, b, sizeof(b)));
        if (resolve_path(ld, &ps->path) < 0) return -1;
        sub(q, p, "targets");
        const cJSON *tv = cJSON_GetObjectItemCaseSensitive(v, "targets");
        if (!tv) return fail(ld, q, "required (route names, local model names or \"upstream/model\")");
        if (get_strv(ld, tv, q, 1, &ps->targets, &ps->n_targets) < 0) return -1;
        sub(q, p, "interval");
        if (get_duration(ld, cJSON_GetObjectItemCaseSensitive(v, "interval"), q, 1000, 1, 86400 * 365, &ps->interval_s) < 0) return -1;
    }
    return 0;
}

/* ---- routes after reading: drop disabled, add implicit local routes ---------- */

static int finish_routes(struct ld *ld, unsigned char *keep) {
    struct cfg *c = ld->c;
    /* Probe targets that name a dropped route are removed with it; a suite
     * left with no target is dropped too. */
    for (size_t i = 0; keep && i < c->n_routes; i++) {
        if (keep[i]) continue;
        const char *rn = c->routes[i].name;
        for (size_t k = 0; k < c->drift.n_probes; k++) {
            struct cfg_probe_suite *ps = &c->drift.probes[k];
            size_t w = 0;
            for (size_t j = 0; j < ps->n_targets; j++) {
                if (strcmp(ps->targets[j], rn) == 0) free(ps->targets[j]);
                else ps->targets[w++] = ps->targets[j];
            }
            ps->n_targets = w;
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < c->drift.n_probes; k++) {
        struct cfg_probe_suite *ps = &c->drift.probes[k];
        if (ps->n_targets == 0) {
            free(ps->name);
            free(ps->path);
            free(ps->targets);
        } else {
            c->drift.probes[w++] = *ps;
        }
    }
    c->drift.n_probes = w;

    w = 0;
    for (size_t i = 0; i < c->n_routes; i++) {
        if (keep && !keep[i]) cfg__free_route(&c->routes[i]);
        else c->routes[w++] = c->routes[i];
    }
    c->n_routes = w;

    /* Every local model is servable by its own name: if no route matches the
     * name, add {name, match: [name], mode: local, targets: [local:name]}. */
    for (size_t m = 0; m < c->n_local_models; m++) {
        const char *mn = c->local_models[m].name;
        int matched = 0;
        for (size_t i = 0; !matched && i < c->n_routes; i++)
            for (size_t j = 0; !matched && j < c->routes[i].n_match; j++)
                matched = cfg_glob_match(c->routes[i].match[j], mn);
        if (matched) continue;
        struct cfg_route *nr = realloc(c->routes, (c->n_routes + 1) * sizeof(*nr));
        if (!nr) return oom(ld);
        c->routes = nr;
        struct cfg_route *r = &c->routes[c->n_routes++];
        memset(r, 0, sizeof(*r));
        int taken = 0;
        for (size_t i = 0; i + 1 < c->n_routes; i++) taken |= strcmp(c->routes[i].name, mn) == 0;
        if (taken) {
            size_t l = strlen(mn) + 7;
            r->name = malloc(l);
            if (r->name) snprintf(r->name, l, "local:%s", mn);
        } else {
            r->name = cfg__strdup(mn);
        }
        r->match = calloc(1, sizeof(char *));
        r->targets = calloc(1, sizeof(*r->targets));
        if (!r->name || !r->match || !r->targets) return oom(ld);
        r->n_match = 1;
        r->n_targets = 1;
        r->match[0] = cfg__strdup(mn);
        r->targets[0].local = cfg__strdup(mn);
        if (!r->match[0] || !r->targets[0].local) return oom(ld);
        cfg_target_init(&r->targets[0]);
        r->targets[0].local_idx = (int)m;
        r->mode = CFG_MODE_LOCAL;
        cfg_route_init(r);
    }
    return 0;
}

/* ---- entry points ------------------------------------------------------------------ */

struct cfg *cfg_load_string(const char *text, size_t len, const char *name,
                            const char *base_dir, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!name) name = "<string>";
    if (!text) {
        cfg__errf(err, errlen, "%s: no text", name);
        return NULL;
    }
    if (len > CFG_MAX_FILE_BYTES) {
        cfg__errf(err, errlen, "%s: file is larger than 4 MiB (%zu bytes); a config file should be small", name, len);
        return NULL;
    }
    char *buf = malloc(len + 1);
    if (!buf) {
        cfg__errf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';

    /* a UTF-8 byte order mark, as some editors write, is not an error */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) memset(buf, ' ', 3);

    int line, col;
    size_t pos = 0;
    if (strip_comments(buf, len, &pos) < 0) {
        line_col(buf, pos, &line, &col);
        cfg__errf(err, errlen, "%s:%d:%d: unterminated /* comment", name, line, col);
        free(buf);
        return NULL;
    }
    struct scan sc = {.s = buf, .n = len};
    scan_ws(&sc);
    if (sc.i == len) {
        cfg__errf(err, errlen, "%s:1:1: the file is empty (expected a JSON object)", name);
        free(buf);
        return NULL;
    }
    if (scan_value(&sc, 0) == 0) {
        scan_ws(&sc);
        if (sc.i < len) scan_fail(&sc, sc.i, "unexpected text after the end of the JSON document");
        else sc.msg[0] = '\0';
    }
    if (sc.msg[0]) {
        line_col(buf, sc.errpos, &line, &col);
        cfg__errf(err, errlen, "%s:%d:%d: %s", name, line, col, sc.msg);
        free(buf);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        line_col(buf, end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0, &line, &col);
        cfg__errf(err, errlen, "%s:%d:%d: invalid JSON", name, line, col);
        free(buf);
        return NULL;
    }
    free(buf);

    struct ld ld = {.file = name, .base_dir = base_dir, .err = err, .errlen = errlen};
    struct cfg *c = NULL;
    unsigned char *keep = NULL;
    char b[64];
    static const char *const known[] = {
        "server", "keys", "upstreams", "local_models", "routes", "breaker", "drift", NULL
    };
    if (!cJSON_IsObject(root)) {
        cfg__errf(err, errlen, "%s: (top level): expected an object, got %s", name, describe(root, 0, b, sizeof(b)));
        goto fail;
    }
    if (check_duplicates(&ld, root, "") < 0 || check_fields(&ld, root, "", known) < 0) goto fail;
    c = cfg_new_default();
    if (!c) {
        oom(&ld);
        goto fail;
    }
    free(c->path);
    if (!(c->path = cfg__strdup(name))) {
        oom(&ld);
        goto fail;
    }
    ld.c = c;

    const cJSON *server, *breaker, *drift;
    if (get_obj(&ld, root, "server", "server", &server) < 0 || load_server(&ld, server) < 0) goto fail;
    if (load_keys(&ld, cJSON_GetObjectItemCaseSensitive(root, "keys")) < 0) goto fail;
    if (load_upstreams(&ld, cJSON_GetObjectItemCaseSensitive(root, "upstreams")) < 0) goto fail;
    if (load_local_models(&ld, cJSON_GetObjectItemCaseSensitive(root, "local_models")) < 0) goto fail;
    if (load_routes(&ld, cJSON_GetObjectItemCaseSensitive(root, "routes"), &keep) < 0) goto fail;
    if (get_obj(&ld, root, "breaker", "breaker", &breaker) < 0 || load_breaker(&ld, breaker) < 0) goto fail;
    if (get_obj(&ld, root, "drift", "drift", &drift) < 0 || load_drift(&ld, drift) < 0) goto fail;
    if (finish_routes(&ld, keep) < 0) goto fail;
    if (cfg_validate(c, err, errlen) < 0) goto fail;
    free(keep);
    cJSON_Delete(root);
    return c;

fail:
    free(keep);
    cfg_free(c);
    cJSON_Delete(root);
    return NULL;
}

struct cfg *cfg_load_file(const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!path) {
        cfg__errf(err, errlen, "<config>: no file name");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg__errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        cfg__errf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((unsigned long long)st.st_size > CFG_MAX_FILE_BYTES) {
        cfg__errf(err, errlen, "%s: file is larger than 4 MiB (%lld bytes); a config file should be small",
                  path, (long long)st.st_size);
        fclose(f);
        return NULL;
    }
    /* read at most limit + 1 bytes: the file may grow after fstat */
    char *text = malloc(CFG_MAX_FILE_BYTES + 1);
    if (!text) {
        cfg__errf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    size_t n = fread(text, 1, CFG_MAX_FILE_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        cfg__errf(err, errlen, "%s: read error", path);
        free(text);
        return NULL;
    }

    /* relative paths in the file resolve against its folder, made absolute
     * so that they survive a later chdir */
    char *dir = cfg__strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    char *base = NULL;
    if (dir) {
        if (slash == dir) dir[1] = '\0';
        else if (slash) *slash = '\0';
        else strcpy(dir, ".");
        base = realpath(dir, NULL);
    }
    struct cfg *c = cfg_load_string(text, n, path, base ? base : dir, err, errlen);
    free(base);
    free(dir);
    free(text);
    return c;
}
