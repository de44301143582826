/*
 * h1req.c - request framing after RFC 9112, strictly. See h1req.h for why.
 *
 * The head is checked byte by byte before it is split into lines, so every
 * later step can treat it as text: no NUL, no control character but HTAB,
 * and a CR only right before an LF. Then the request line and each field
 * line are matched against the grammar, and the fields that decide the
 * framing (Content-Length, Transfer-Encoding, Host) are checked as a set.
 *
 * The chunked decoder is a byte-level state machine rather than a scan for
 * the next line: it never looks at a byte twice and keeps no input of its
 * own, so the caller can drain what it fed at once.
 */
#include "proxy/h1req.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(struct h1req_error *e, int status, const char *code, const char *msg) {
    e->status = status;
    e->code = code;
    util_strlcpy(e->message, msg, sizeof e->message);
    return -1;
}

/* tchar of RFC 9110 section 5.6.2 */
static int is_tchar(unsigned char ch) {
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) return 1;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int hexval(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Is the line that ends at buf[i - 1] (an LF) empty? */
static int empty_line_before(const char *buf, size_t i) {
    if (i == 1 || buf[i - 2] == '\n') return 1;
    return buf[i - 2] == '\r' && (i == 2 || buf[i - 3] == '\n');
}

/* The head ends at the first empty line after a non-empty one: empty
 * lines before the request line are skipped (RFC 9112 section 2.2). */
size_t h1req_head_end(const char *buf, size_t len, size_t *scan) {
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) break;
        size_t lf = (size_t)(nl - buf);
        /* the line that this LF ends starts at i (i is always a line start) */
        size_t ll = lf - i;
        if ((ll == 0 || (ll == 1 && buf[i] == '\r')) && i > 0 && !empty_line_before(buf, i)) return lf + 1;
        i = lf + 1;
    }
    *scan = i;
    return 0;
}

/* ---- the request target ------------------------------------------------------ */

/* Is seg[0..n) "." or ".." (2) or neither (0), counting %2e as a dot? */
static int dot_segment(const char *seg, size_t n) {
    int dots = 0;
    for (size_t i = 0; i < n;) {
        if (seg[i] == '.') { dots++; i++; continue; }
        if (seg[i] == '%' && n - i >= 3 && seg[i + 1] == '2' && (seg[i + 2] == 'e' || seg[i + 2] == 'E')) {
            dots++;
            i += 3;
            continue;
        }
        return 0;
    }
    return dots == 1 ? 1 : dots == 2 ? 2 : 0;
}

int h1req_normalize_path(char *path, struct h1req_error *e) {
    if (path[0] != '/')
        return fail(e, 400, "invalid_http", "The request target must be a path starting with '/'.");
    for (const char *p = path; *p; p++) {
        if (*p == '\\')
            return fail(e, 400, "invalid_path", "The request path contains a backslash; llmpin refuses it.");
        if (*p == '%') {
            int hi = hexval((unsigned char)p[1]), lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);
            if (hi < 0 || lo < 0)
                return fail(e, 400, "invalid_path", "The request path has a '%' that is not followed by two hex digits.");
            int v = hi * 16 + lo;
            if (v == '/' || v == '\\')
                return fail(e, 400, "invalid_path",
                            "The request path contains an encoded slash (%2F or %5C); llmpin refuses it.");
            if (v == 0) return fail(e, 400, "invalid_path", "The request path contains %00.");
        }
    }
    /* Remove dot segments (RFC 3986 5.2.4) and merge repeated slashes, in
     * place: the output never gets ahead of the input. out always ends
     * just after a '/'. */
    size_t in = 1, out = 1;
    size_t len = strlen(path);
    while (in <= len) {
        size_t s = in;
        while (in < len && path[in] != '/') in++;
        size_t n = in - s;
        int last = in >= len;
        int d = dot_segment(path + s, n);
        if (n == 0) {
            /* empty segment: "//" merges; a trailing one ends the path */
        } else if (d == 1) {
            /* "." : nothing */
        } else if (d == 2) {
            if (out == 1)
                return fail(e, 400, "invalid_path", "The request path climbs above '/' with '..'.");
            out--;                                   /* the '/' before the last segment's end */
            while (out > 0 && path[out - 1] != '/') out--;
        } else {
            memmove(path + out, path + s, n);
            out += n;
            if (!last) path[out++] = '/';
        }
        in++; /* past the '/' (or the NUL when last) */
        if (last) break;
    }
    path[out] = 0;
    return 0;
}

/* ---- the head --------------------------------------------------------------------- */

/* Cut the next line out of [*p, end): NUL-terminate it (dropping the CR of
 * a CRLF) and return it; NULL when no LF is left. */
static char *next_line(char **p, char *end) {
    if (*p >= end) return NULL;
    char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl) return NULL;
    char *line = *p;
    *nl = 0;
    if (nl > line && nl[-1] == '\r') nl[-1] = 0;
    *p = nl + 1;
    return line;
}

static int parse_request_line(char *line, struct h1req_head *h, struct h1req_error *e) {
    char *p = line;
    while (is_tchar((unsigned char)*p)) p++;
    if (p == line || *p != ' ')
        return fail(e, 400, "invalid_http", "Malformed request line: expected METHOD SP target SP HTTP/1.1.");
    if ((size_t)(p - line) >= sizeof h->method)
        return fail(e, 501, "method_not_implemented", "Unknown request method.");
    memcpy(h->method, line, (size_t)(p - line));
    h->method[p - line] = 0;
    char *target = ++p;
    while ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f && *p != '#') p++;
    if (*p == '#') return fail(e, 400, "invalid_http", "The request target must not contain a fragment ('#').");
    if (p == target || *p != ' ')
        return fail(e, 400, "invalid_http", "Malformed request line: expected METHOD SP target SP HTTP/1.1.");
    *p++ = 0;
    const char *ver = p;
    if (strncmp(ver, "HTTP/", 5) != 0 || ver[5] < '0' || ver[5] > '9' || ver[6] != '.' || ver[7] < '0' ||
        ver[7] > '9' || ver[8])
        return fail(e, 400, "invalid_http", "Malformed request line: the HTTP version is not HTTP/1.0 or HTTP/1.1.");
    if (ver[5] != '1' || ver[7] > '1')
        return fail(e, 505, "http_version_not_supported", "Unsupported HTTP version; llmpin speaks HTTP/1.0 and HTTP/1.1.");
    h->minor = ver[7] - '0';
    if (target[0] != '/')
        return fail(e, 400, "invalid_http",
                    "The request target must be a path starting with '/' (no absolute URL, no '*').");
    char *q = strchr(target, '?');
    if (q) {
        *q = 0;
        h->query = q + 1;
    } else {
        h->query = target + strlen(target); /* "" */
    }
    h->path = target;
    return h1req_normalize_path(target, e);
}

static int parse_content_length(const char *v, uint64_t *out) {
    if (!*v) return -1;
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        if (n > (UINT64_MAX - 9) / 10) return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *out = n;
    return 0;
}

int h1req_parse_head(char *head, size_t len, struct h1req_head *h, struct h1req_error *e) {
    memset(h, 0, sizeof *h);
    while (len > 0 && (head[0] == '\n' || (len > 1 && head[0] == '\r' && head[1] == '\n'))) {
        size_t k = head[0] == '\n' ? 1 : 2;
        head += k;
        len -= k;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)head[i];
        if (ch == '\r') {
            if (i + 1 >= len || head[i + 1] != '\n')
                return fail(e, 400, "invalid_http", "A CR in the request head is not followed by LF.");
        } else if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f) {
            return fail(e, 400, "invalid_http", "The request head contains a control character (e.g. NUL).");
        }
    }
    char *p = head, *end = head + len;
    char *line = next_line(&p, end);
    if (!line) return fail(e, 400, "invalid_http", "Malformed HTTP request.");
    if (parse_request_line(line, h, e) < 0) return -1;

    const char *cl = NULL, *te = NULL, *conn = NULL;
    int n_host = 0;
    while ((line = next_line(&p, end)) != NULL && *line) {
        if (*line == ' ' || *line == '\t')
            return fail(e, 400, "invalid_http", "Obsolete header line folding is not accepted.");
        char *n = line;
        while (is_tchar((unsigned char)*n)) n++;
        if (n == line || *n != ':')
            return fail(e, 400, "invalid_http",
                        *n == ' ' || *n == '\t' ? "Whitespace between a header name and its colon is not accepted."
                                                : "Malformed header line (expected Name: value).");
        *n = 0;
        char *v = n + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) *--ve = 0;
        if (h->n_hdrs >= HTTP_MAX_HEADERS)
            return fail(e, 431, "request_header_fields_too_large", "Too many request headers (limit 100).");
        h->hdrs[h->n_hdrs].name = line;
        h->hdrs[h->n_hdrs].value = v;
        h->n_hdrs++;
        if (strcasecmp(line, "Content-Length") == 0) {
            if (cl) return fail(e, 400, "invalid_http", "More than one Content-Length header.");
            cl = v;
        } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
            if (te) return fail(e, 400, "invalid_http", "More than one Transfer-Encoding header.");
            te = v;
        } else if (strcasecmp(line, "Host") == 0) {
            n_host++;
        } else if (strcasecmp(line, "Connection") == 0) {
            conn = v;
        } else if (strcasecmp(line, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0) h->expect_continue = 1;
        }
    }
    if (h->minor == 1 && n_host == 0)
        return fail(e, 400, "invalid_http", "An HTTP/1.1 request needs a Host header.");
    if (n_host > 1) return fail(e, 400, "invalid_http", "More than one Host header.");
    if (te) {
        if (cl)
            return fail(e, 400, "invalid_http", "A request may not have both Transfer-Encoding and Content-Length.");
        if (h->minor == 0)
            return fail(e, 400, "invalid_http", "Transfer-Encoding is not allowed in an HTTP/1.0 request.");
        if (strcasecmp(te, "chunked") != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "Transfer-Encoding \"%.80s\" is not supported; llmpin accepts \"chunked\" only.", te);
            return fail(e, 501, "unsupported_transfer_encoding", msg);
        }
        h->chunked = 1;
    } else if (cl) {
        if (parse_content_length(cl, &h->content_length) < 0)
            return fail(e, 400, "invalid_http", "Invalid Content-Length header (expected digits only).");
    }
    h->keep_alive = h->minor == 1 ? !util_has_token(conn, "close") : util_has_token(conn, "keep-alive");
    if (h->expect_continue && (h->minor == 0 || (!h->chunked && h->content_length == 0))) h->expect_continue = 0;
    return 0;
}

/* ---- chunked bodies --------------------------------------------------------------- */

enum {
    CH_SIZE,        /* hex digits */
    CH_BWS,         /* whitespace after the size: only before ';' */
    CH_EXT,         /* ;ext up to the line end */
    CH_SIZE_LF,     /* CR seen, LF must follow */
    CH_DATA,
    CH_DATA_END,    /* CRLF (or LF) after the data */
    CH_DATA_LF,
    CH_TRAILER,     /* a trailer line, or the final empty line */
    CH_TRAILER_LF,
    CH_DONE
};

#define CH_MAX_LINE 4096

int h1chunk_feed(struct h1chunk *c, const char *in, size_t len, size_t *used, struct buf *body,
                 size_t max_body, size_t max_trailer, struct h1req_error *e) {
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (c->digits >= 15) return fail(e, 413, "request_too_large", "A chunk size is too large.");
                c->left = c->left * 16 + (uint64_t)v;
                c->digits++;
                i++;
                break;
            }
            if (c->digits == 0)
                return fail(e, 400, "invalid_http", "Malformed chunked request body: a chunk size must be hex digits.");
            if (ch == ';') c->state = CH_EXT;
            else if (ch == ' ' || ch == '\t') c->state = CH_BWS;
            else if (ch == '\r') c->state = CH_SIZE_LF;
            else if (ch == '\n') goto size_line_done;
            else return fail(e, 400, "invalid_http", "Malformed chunked request body: a chunk size must be hex digits.");
            c->line = (size_t)c->digits;
            i++;
            break;
        }
        case CH_BWS:
            if (ch == ';') c->state = CH_EXT;
            else if (ch != ' ' && ch != '\t')
                return fail(e, 400, "invalid_http", "Malformed chunked request body: junk after a chunk size.");
            if (++c->line > CH_MAX_LINE) goto line_too_long;
            i++;
            break;
        case CH_EXT:
            if (ch == '\r') c->state = CH_SIZE_LF;
            else if (ch == '\n') goto size_line_done;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return fail(e, 400, "invalid_http", "Malformed chunked request body: a control character in a chunk extension.");
            if (++c->line > CH_MAX_LINE) goto line_too_long;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return fail(e, 400, "invalid_http", "Malformed chunked request body: CR without LF.");
        size_line_done:
            i++;
            c->line = 0;
            if (c->left == 0) {
                c->state = CH_TRAILER;
                break;
            }
            if (c->left > max_body || body->len + c->left > max_body) goto too_large;
            c->state = CH_DATA;
            break;
        case CH_DATA: {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            buf_append(body, in + i, n);
            i += n;
            c->left -= n;
            if (c->left == 0) c->state = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (ch == '\r') c->state = CH_DATA_LF;
            else if (ch == '\n') { c->state = CH_SIZE; c->digits = 0; }
            else return fail(e, 400, "invalid_http", "Malformed chunked request body: a chunk is longer than its size.");
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n') return fail(e, 400, "invalid_http", "Malformed chunked request body: CR without LF.");
            c->state = CH_SIZE;
            c->digits = 0;
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\r' || ch == '\n') {
                if (c->line > 0 && !c->trailer_colon)
                    return fail(e, 400, "invalid_http", "Malformed trailer line in a chunked request body.");
                if (ch == '\r') {
                    c->state = CH_TRAILER_LF;
                    i++;
                    break;
                }
                goto trailer_line_done;
            }
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return fail(e, 400, "invalid_http", "A control character in a trailer of a chunked request body.");
            if (!c->trailer_colon) {
                if (ch == ':' && c->line > 0) c->trailer_colon = 1;
                else if (!is_tchar(ch))
                    return fail(e, 400, "invalid_http", "Malformed trailer line in a chunked request body.");
            }
            c->line++;
            if (++c->trailer_bytes > max_trailer)
                return fail(e, 431, "request_header_fields_too_large", "The trailers of a chunked request body are too large.");
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') return fail(e, 400, "invalid_http", "Malformed chunked request body: CR without LF.");
        trailer_line_done:
            i++;
            if (c->line == 0) {
                c->state = CH_DONE;
                *used = i;
                return 1;
            }
            c->line = 0;
            c->trailer_colon = 0;
            c->state = CH_TRAILER;
            break;
        case CH_DONE:
            *used = i;
            return 1;
        }
    }
    *used = i;
    return c->state == CH_DONE ? 1 : 0;
line_too_long:
    return fail(e, 400, "invalid_http", "Malformed chunked request body: a chunk size line is too long.");
too_large: {
    char msg[160];
    snprintf(msg, sizeof msg, "Request body exceeds the limit of %zu bytes (server.max_body_bytes).", max_body);
    return fail(e, 413, "request_too_large", msg);
}
}
