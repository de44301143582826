/*
 * h1resp.c - see h1resp.h.
 */
#include "adapters/h1resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

#define MAX_HDRS 100                 /* header fields in one response head */

static int is_token_ch(unsigned char c) {
    return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* "chunked" is the last transfer coding in v (comma-separated list). */
static int ends_with_chunked(const char *v) {
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return n >= 7 && strncasecmp(v + n - 7, "chunked", 7) == 0 && (n == 7 || v[n - 8] == ',' || v[n - 8] == ' ');
}

int h1resp_parse_head(const char *p, size_t n, struct h1resp_head *h, char *why, size_t whylen) {
    memset(h, 0, sizeof *h);
    const char *e = p + n;
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    if (!eol) {
        snprintf(why, whylen, "malformed status line from upstream");
        return -1;
    }
    size_t ll = (size_t)(eol - p);
    if (ll && p[ll - 1] == '\r') ll--;
    int minor;
    if (ll < 12 || strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
        (ll > 12 && p[12] != ' ')) {
        snprintf(why, whylen, "malformed status line from upstream");
        return -1;
    }
    minor = p[7] - '0';
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (status >= 100 && status < 200) {
        if (status == 101) {
            snprintf(why, whylen, "upstream switched protocols (101), which is not supported");
            return -1;
        }
        return 1;
    }
    /* count fields, size the storage */
    int nh = 0;
    for (const char *q = eol + 1; q < e;) {
        const char *le = memchr(q, '\n', (size_t)(e - q));
        if (!le) break;
        if (le == q || (le == q + 1 && *q == '\r')) break;
        nh++;
        q = le + 1;
    }
    if (nh > MAX_HDRS) {
        snprintf(why, whylen, "upstream sent more than %d header fields", MAX_HDRS);
        return -1;
    }
    h->hdrs = nh ? util_xcalloc((size_t)nh, sizeof *h->hdrs) : NULL;
    h->mem = util_xmalloc(n + 1);
    h->status = status;
    char *mem = h->mem;
    int chunked = 0, have_len = 0, close_conn = minor == 0, keep = 0;
    uint64_t clen = 0;
    for (const char *q = eol + 1; q < e;) {
        const char *le = memchr(q, '\n', (size_t)(e - q));
        if (!le) break;
        const char *lend = le;
        if (lend > q && lend[-1] == '\r') lend--;
        if (lend == q) break;
        if (*q == ' ' || *q == '\t') {
            snprintf(why, whylen, "upstream sent a folded header line (obsolete line folding)");
            goto fail;
        }
        const char *colon = memchr(q, ':', (size_t)(lend - q));
        if (!colon || colon == q) {
            snprintf(why, whylen, "malformed header line from upstream");
            goto fail;
        }
        for (const char *s = q; s < colon; s++)
            if (!is_token_ch((unsigned char)*s)) {
                snprintf(why, whylen, "malformed header name from upstream");
                goto fail;
            }
        const char *v = colon + 1, *ve = lend;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *s = v; s < ve; s++)
            if (*s == 0 || *s == '\r' || *s == '\n') {
                snprintf(why, whylen, "control character in a header value from upstream");
                goto fail;
            }
        struct upstream_hdr *hd = &h->hdrs[h->n_hdrs++];
        hd->name = mem;
        for (const char *s = q; s < colon; s++) {
            char ch = *s;
            *mem++ = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        *mem++ = 0;
        hd->value = mem;
        memcpy(mem, v, (size_t)(ve - v));
        mem += ve - v;
        *mem++ = 0;
        if (strcmp(hd->name, "content-length") == 0) {
            uint64_t cl = 0;
            const char *s = hd->value;
            if (!*s) goto badlen;
            for (; *s; s++) {
                if (*s < '0' || *s > '9' || cl > (UINT64_MAX - 9) / 10) goto badlen;
                cl = cl * 10 + (uint64_t)(*s - '0');
            }
            if (have_len && cl != clen) goto badlen;
            clen = cl;
            have_len = 1;
        } else if (strcmp(hd->name, "transfer-encoding") == 0) {
            chunked = ends_with_chunked(hd->value);
            if (!chunked) close_conn = 1; /* other codings: body runs to close */
        } else if (strcmp(hd->name, "connection") == 0) {
            if (util_has_token(hd->value, "close")) close_conn = 1;
            if (util_has_token(hd->value, "keep-alive")) keep = 1;
        }
        q = le + 1;
    }
    if (minor == 0 && keep && !chunked) close_conn = 0;
    /* both framings: chunked wins, and the connection cannot be trusted
     * after it (RFC 9112 6.3: a sender that does this may be smuggling) */
    if (chunked && have_len) close_conn = 1;
    h->keep_alive = !close_conn;
    if (status == 204 || status == 304) {
        h->body = H1R_NONE;
    } else if (chunked) {
        h->body = H1R_CHUNKED;
    } else if (have_len) {
        h->length = clen;
        h->body = clen ? H1R_LENGTH : H1R_NONE;
    } else {
        h->body = H1R_UNTIL_CLOSE;
        h->keep_alive = 0;
    }
    return 0;
badlen:
    snprintf(why, whylen, "invalid or conflicting Content-Length from upstream");
fail:
    h1resp_head_free(h);
    return -1;
}

void h1resp_head_free(struct h1resp_head *h) {
    free(h->hdrs);
    free(h->mem);
    memset(h, 0, sizeof *h);
}

