/*
 * upstream.c - libcurl multi-socket on libevent. See upstream.h.
 *
 * The glue follows the documented pattern for curl_multi_socket_action():
 *   - CURLMOPT_SOCKETFUNCTION: curl asks to watch a socket for read/write;
 *     we keep one persistent libevent event per socket (stored with
 *     curl_multi_assign) and re-arm it when the wanted events change.
 *   - CURLMOPT_TIMERFUNCTION: curl asks for one timer; a libevent timer
 *     calls curl_multi_socket_action(CURL_SOCKET_TIMEOUT).
 *   - after every action, finished transfers are collected with
 *     curl_multi_info_read.
 *
 * Cancellation from inside a curl callback cannot remove the handle there,
 * so the transfer is marked dead and the write callback fails the transfer;
 * it is reaped when curl reports it done. Outside callbacks it is removed at
 * once. Either way, no user callback runs after upstream_cancel().
 */
#include "adapters/upstream.h"
#include "adapters/h1client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"

struct upstream_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int in_action;               /* inside curl_multi_socket_action */
    struct curl_xfer *free_list; /* reusable easy handles */
    int n_free;
    struct h1_client *h1;        /* plain-http upstreams; NULL: curl does all */
};

struct curl_xfer {
    struct upstream_xfer base;   /* native = 0 */
    struct upstream_client *cli;
    CURL *easy;
    struct curl_slist *hdr_list;
    char *body;
    struct upstream_req r;       /* callbacks and timeouts (pointers not kept) */
    struct upstream_resp_head head;
    int head_delivered;
    int got_first_byte;
    int dead;                    /* cancelled: no more callbacks */
    int refused;                 /* on_data returned non-zero: ends as UP_ABORTED */
    int failed_by_timer;         /* our own first-byte / idle timer fired */
    int paused;
    char timer_what[32];
    struct event *timer;
    char errbuf[CURL_ERROR_SIZE];
    struct curl_xfer *next_free;
};

struct sock_ctx {
    struct event *ev;
    curl_socket_t fd;
};

static void check_done(struct upstream_client *c);

/* ---- socket and timer glue --------------------------------------------------- */

static void on_sock_event(evutil_socket_t fd, short what, void *arg) {
    struct upstream_client *c = arg;
    int flags = 0;
    if (what & EV_READ) flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE) flags |= CURL_CSELECT_OUT;
    int running;
    c->in_action++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_action--;
    check_done(c);
}

static void on_multi_timer(evutil_socket_t fd, short what, void *arg) {
    struct upstream_client *c = arg;
    (void)fd;
    (void)what;
    int running;
    c->in_action++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_action--;
    check_done(c);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp) {
    struct upstream_client *c = userp;
    struct sock_ctx *sc = sockp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            event_free(sc->ev);
            free(sc);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN) kind |= EV_READ;
    if (what & CURL_POLL_OUT) kind |= EV_WRITE;
    if (!sc) {
        sc = util_xcalloc(1, sizeof *sc);
        sc->fd = s;
        sc->ev = event_new(c->base, s, kind, on_sock_event, c);
        curl_multi_assign(c->multi, s, sc);
    } else {
        event_del(sc->ev);
        event_assign(sc->ev, c->base, s, kind, on_sock_event, c);
    }
    event_add(sc->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
    struct upstream_client *c = userp;
    (void)m;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    if (timeout_ms == 0) {
        /* "act now": run in this loop turn instead of a zero timer, which
         * costs an extra epoll_wait */
        evtimer_del(c->timer);
        event_active(c->timer, EV_TIMEOUT, 0);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

/* ---- per-transfer timers (first byte, idle) ----------------------------------- */

static void arm_timer(struct curl_xfer *x, int ms, const char *what) {
    if (ms <= 0) {
        evtimer_del(x->timer);
        return;
    }
    snprintf(x->timer_what, sizeof x->timer_what, "%s", what);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(x->timer, &tv);
}

static void xfer_release(struct curl_xfer *x);

static void on_xfer_timer(evutil_socket_t fd, short what, void *arg) {
    struct curl_xfer *x = arg;
    (void)fd;
    (void)what;
    struct upstream_client *c = x->cli;
    if (x->dead) { /* deferred removal of a transfer cancelled inside curl */
        curl_multi_remove_handle(c->multi, x->easy);
        xfer_release(x);
        return;
    }
    char detail[96];
    snprintf(detail, sizeof detail, "no %s from upstream within %d ms", x->timer_what,
             strcmp(x->timer_what, "first byte") == 0 ? x->r.first_byte_timeout_ms
                                                       : x->r.idle_timeout_ms);
    void (*done)(void *, enum upstream_result, const char *) = x->r.on_done;
    void *ud = x->r.ud;
    x->dead = 1;
    curl_multi_remove_handle(c->multi, x->easy);
    xfer_release(x);
    if (done) done(ud, UP_TIMEOUT, detail);
}

/* ---- curl callbacks ------------------------------------------------------------- */

static size_t header_cb(char *buf, size_t size, size_t n, void *ud) {
    struct curl_xfer *x = ud;
    size_t len = size * n;
    if (x->dead) return 0;
    if (!x->got_first_byte) {
        x->got_first_byte = 1;
        arm_timer(x, x->r.idle_timeout_ms, "data");
    }
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* a new status line (e.g. after 100 Continue): start over */
        for (int i = 0; i < x->head.n_hdrs; i++) {
            free(x->head.hdrs[i].name);
            free(x->head.hdrs[i].value);
        }
        x->head.n_hdrs = 0;
        const char *sp = memchr(buf, ' ', len);
        x->head.status = sp ? atoi(sp + 1) : 0;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon || x->head.n_hdrs >= 64) return len;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1, *e = buf + len;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) e--;
    if (!x->head.hdrs) x->head.hdrs = util_xcalloc(64, sizeof *x->head.hdrs);
    struct upstream_hdr *h = &x->head.hdrs[x->head.n_hdrs++];
    h->name = util_xmalloc(nl + 1);
    for (size_t i = 0; i < nl; i++) h->name[i] = (char)tolower((unsigned char)buf[i]);
    h->name[nl] = 0;
    h->value = util_xmalloc((size_t)(e - v) + 1);
    memcpy(h->value, v, (size_t)(e - v));
    h->value[e - v] = 0;
    return len;
}

static void deliver_head(struct curl_xfer *x) {
    if (x->head_delivered) return;
    x->head_delivered = 1;
    if (!x->head.status) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        x->head.status = (int)code;
    }
    if (x->r.on_head) x->r.on_head(x->r.ud, &x->head);
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud) {
    struct curl_xfer *x = ud;
    size_t len = size * n;
    if (x->dead || x->refused) return 0;
    deliver_head(x);
    if (x->dead) return 0;
    arm_timer(x, x->r.idle_timeout_ms, "data");
    if (x->r.on_data && x->r.on_data(x->r.ud, buf, len) != 0) {
        x->refused = 1; /* curl ends with CURLE_WRITE_ERROR; on_done(UP_ABORTED) follows */
        return 0;
    }
    return x->dead ? 0 : len;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void xfer_release(struct curl_xfer *x) {
    struct upstream_client *c = x->cli;
    evtimer_del(x->timer);
    curl_slist_free_all(x->hdr_list);
    x->hdr_list = NULL;
    free(x->body);
    x->body = NULL;
    for (int i = 0; i < x->head.n_hdrs; i++) {
        free(x->head.hdrs[i].name);
        free(x->head.hdrs[i].value);
    }
    x->head.n_hdrs = 0;
    if (c->n_free < 256) {
        curl_easy_reset(x->easy);
        x->next_free = c->free_list;
        c->free_list = x;
        c->n_free++;
    } else {
        curl_easy_cleanup(x->easy);
        event_free(x->timer);
        free(x->head.hdrs);
        free(x);
    }
}

static enum upstream_result classify(struct curl_xfer *x, CURLcode rc) {
    switch (rc) {
    case CURLE_OK: return UP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return UP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return UP_TIMEOUT;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return UP_PROTOCOL;
    default:
        /* A reset before any response byte is a connection failure: safe to
         * retry or fall back. After it, the response is broken. */
        return x->got_first_byte ? UP_BROKEN : UP_CONNECT;
    }
}

static void check_done(struct upstream_client *c) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct curl_xfer *x;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(c->multi, x->easy);
        if (x->dead) {
            xfer_release(x);
            continue;
        }
        enum upstream_result r = x->refused ? UP_ABORTED : classify(x, rc);
        char detail[CURL_ERROR_SIZE + 64];
        if (r == UP_OK) {
            deliver_head(x); /* empty bodies never hit write_cb */
            detail[0] = 0;
        } else if (r == UP_ABORTED) {
            snprintf(detail, sizeof detail, "the reader refused the response body");
        } else {
            snprintf(detail, sizeof detail, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        }
        void (*done)(void *, enum upstream_result, const char *) = x->r.on_done;
        void *ud = x->r.ud;
        int dead = x->dead; /* on_head may have cancelled */
        xfer_release(x);
        if (!dead && done) done(ud, r, detail);
    }
}

/* curl sends plain-http requests through http_proxy / all_proxy when they
 * are set; so that such a set-up keeps working, curl then does it all. */
static int proxy_in_environment(void) {
    const char *v[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    for (int i = 0; v[i]; i++) {
        const char *e = getenv(v[i]);
        if (e && *e) return 1;
    }
    return 0;
}

struct upstream_client *upstream_client_new(struct event_base *base, int max_host_conns, char *err,
                                            size_t errlen) {
    struct upstream_client *c = util_xcalloc(1, sizeof *c);
    c->base = base;
    c->multi = curl_multi_init();
    if (!c->multi) {
        snprintf(err, errlen, "curl_multi_init failed");
        free(c);
        return NULL;
    }
    c->timer = evtimer_new(base, on_multi_timer, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    upstream_client_set_max_conns(c, max_host_conns);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (!proxy_in_environment()) c->h1 = h1_client_new(base, max_host_conns);
    return c;
}

void upstream_client_free(struct upstream_client *c) {
    if (!c) return;
    while (c->free_list) {
        struct curl_xfer *x = c->free_list;
        c->free_list = x->next_free;
        curl_easy_cleanup(x->easy);
        event_free(x->timer);
        free(x->head.hdrs);
        free(x);
    }
    curl_multi_cleanup(c->multi);
    event_free(c->timer);
    h1_client_free(c->h1);
    free(c);
}


void upstream_client_set_max_conns(struct upstream_client *c, int max_host_conns) {
    long n = max_host_conns > 0 ? max_host_conns : 256;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
    if (c->h1) h1_client_set_max_conns(c->h1, (int)n);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, n * 4 > 1024 ? n * 4 : 1024);
}

static struct curl_xfer *curl_start(struct upstream_client *c, const struct upstream_req *r,
                                     char *err, size_t errlen) {
    struct curl_xfer *x = c->free_list;
    if (x) {
        c->free_list = x->next_free;
        c->n_free--;
        struct upstream_hdr *keep = x->head.hdrs;
        struct event *t = x->timer;
        CURL *easy = x->easy;
        memset(x, 0, sizeof *x);
        x->head.hdrs = keep;
        x->timer = t;
        x->easy = easy;
    } else {
        x = util_xcalloc(1, sizeof *x);
        x->easy = curl_easy_init();
        if (!x->easy) {
            free(x);
            snprintf(err, errlen, "curl_easy_init failed");
            return NULL;
        }
    }
    x->cli = c;
    x->r = *r;
    x->r.headers = NULL;
    x->r.body = NULL;
    if (!x->timer) x->timer = evtimer_new(c->base, on_xfer_timer, x);
    else event_assign(x->timer, c->base, -1, 0, on_xfer_timer, x);

    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* 16 KiB receive buffer: enough for SSE, and 1,000 open streams stay small */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 16384L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r->tls_verify ? 2L : 0L);
    if (r->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file);
    if (r->connect_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
    if (r->total_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->total_timeout_ms);
    for (const char *const *h = r->headers; h && *h; h++) x->hdr_list = curl_slist_append(x->hdr_list, *h);
    /* never let curl add "Expect: 100-continue": it costs a round trip */
    x->hdr_list = curl_slist_append(x->hdr_list, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdr_list);
    if (r->method && strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        x->body = util_xmalloc(r->body_len + 1);
        if (r->body_len) memcpy(x->body, r->body, r->body_len);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    }
    arm_timer(x, r->first_byte_timeout_ms, "first byte");
    CURLMcode mc = curl_multi_add_handle(c->multi, e);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        xfer_release(x);
        return NULL;
    }
    return x;
}

static void curl_cancel(struct curl_xfer *x) {
    if (!x || x->dead) return;
    x->dead = 1;
    struct upstream_client *c = x->cli;
    if (c->in_action) {
        /* inside curl: the write callback fails the transfer; a paused or
         * idle transfer is woken so curl notices */
        struct timeval now = {0, 0};
        evtimer_add(x->timer, &now);
        return;
    }
    curl_multi_remove_handle(c->multi, x->easy);
    xfer_release(x);
}

static void curl_pause(struct curl_xfer *x, int paused) {
    if (!x || x->dead || x->paused == paused) return;
    x->paused = paused;
    curl_easy_pause(x->easy, paused ? CURLPAUSE_RECV : CURLPAUSE_CONT);
}

/* Plain http goes to the built-in client unless the request asks for curl
 * or a proxy is configured in the environment (curl honours those). */
struct upstream_xfer *upstream_start(struct upstream_client *c, const struct upstream_req *r, char *err,
                                     size_t errlen) {
    if (c->h1 && !r->use_curl) {
        struct h1_xfer *x = h1_start(c->h1, r); /* NULL: not a URL it takes */
        if (x) return (struct upstream_xfer *)x;
    }
    return (struct upstream_xfer *)curl_start(c, r, err, errlen);
}

void upstream_cancel(struct upstream_xfer *x) {
    if (!x) return;
    if (x->native) h1_cancel((struct h1_xfer *)x);
    else curl_cancel((struct curl_xfer *)x);
}

void upstream_pause(struct upstream_xfer *x, int paused) {
    if (!x) return;
    if (x->native) h1_pause((struct h1_xfer *)x, paused);
    else curl_pause((struct curl_xfer *)x, paused);
}

int upstream_open_connections(const struct upstream_client *c) {
    return c->h1 ? h1_open_connections(c->h1) : 0;
}

const char *upstream_header(const struct upstream_resp_head *h, const char *name) {
    for (int i = 0; i < h->n_hdrs; i++)
        if (strcasecmp(h->hdrs[i].name, name) == 0) return h->hdrs[i].value;
    return NULL;
}

const char *upstream_result_name(enum upstream_result r) {
    switch (r) {
    case UP_OK: return "ok";
    case UP_CONNECT: return "connect";
    case UP_TIMEOUT: return "timeout";
    case UP_BROKEN: return "broken";
    case UP_PROTOCOL: return "protocol";
    case UP_ABORTED: return "aborted";
    }
    return "?";
}
