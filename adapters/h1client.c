/*
 * h1client.c - HTTP/1.1 client for plain-http upstreams. See h1client.h.
 *
 * Shape of a request on a kept-alive connection (the common case):
 *   h1_start -> take an idle connection of the host -> one send() of the
 *   request head and body -> the connection's read event fires -> one recv()
 *   -> the head is parsed in place, the body handed to on_data straight from
 *   the read buffer -> the connection goes back to the idle list -> on_done.
 *
 * Hosts. One struct h1_host per "host:port". It holds the resolved
 * addresses (IP literals directly; names through libevent's asynchronous
 * resolver, cached for ADDR_TTL_MS), its idle connections (LIFO, so the
 * warmest socket is used), the number of open connections (bounded by
 * max_host_conns) and the transfers waiting for a connection.
 *
 * Connections. An idle connection keeps its read event armed: if the server
 * closes it (or sends anything) while idle, it is closed at once rather than
 * discovered dead by the next request. A request that fails on a reused
 * connection before any response byte arrived is sent again on another
 * connection, as browsers and curl do: the server closed an idle socket
 * while we wrote to it and saw no request.
 *
 * Timeouts. Each transfer has one timer. Deadlines (connect, first byte,
 * idle between reads, total) are plain numbers updated as data arrives; the
 * timer fires at the earliest deadline it was armed for, recomputes, and
 * either re-arms or fails the transfer. Receiving data therefore costs no
 * timer operation.
 *
 * Callbacks. on_head/on_data may cancel or pause their own transfer (or any
 * other). While a transfer is inside a callback, cancel only marks it dead;
 * the code that made the call notices on return and cleans up. A transfer is
 * detached from its connection and freed before on_done runs, so on_done can
 * start a new transfer that reuses the same connection.
 *
 * Response framing (RFC 9112): status line, header fields, then a body
 * delimited by chunked transfer coding, Content-Length, or the connection
 * closing. 1xx interim responses are skipped; 204 and 304 have no body.
 * Anything malformed (bad status line, conflicting lengths, bad chunk size,
 * a head over MAX_HEAD) ends the transfer with UP_PROTOCOL and closes the
 * connection.
 */

#include "adapters/h1client.h"
#include "adapters/h1resp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"

#define RBUF_SIZE 16384           /* read buffer per connection */
#define MAX_HEAD (64 * 1024)      /* response head limit */
#define MAX_ADDRS 4
#define ADDR_TTL_MS 60000         /* re-resolve names after this */
#define IDLE_MAX_MS 60000         /* close connections idle longer than this */
#define MAX_HOST_LEN 255

struct h1_conn;

struct h1_host {
    struct h1_client *cli;
    char *key;                    /* "host:port" as written in the URL */
    char *name;                   /* host without brackets */
    int port;
    char *host_line;              /* "Host: host[:port]\r\n" */
    size_t host_line_len;
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t addrlens[MAX_ADDRS];
    int n_addrs, pref;            /* pref: the address that last worked */
    int literal;                  /* IP literal: never re-resolved */
    int resolving;
    int64_t addr_expiry_ms;
    struct evdns_getaddrinfo_request *dns_req;
    struct h1_conn *idle;         /* LIFO */
    int n_conns;                  /* connecting + busy + idle */
    int max_conns;                /* from the latest request (its upstream's max_connections); 0: client's */
    struct h1_xfer *wait_head, *wait_tail;
    uint64_t wait_seq;
    struct h1_host *next;
};

struct h1_conn {
    struct h1_host *host;
    int fd;
    struct event *rev, *wev;
    int connecting;
    int reused;                   /* has completed a response before */
    int addr_idx;
    int64_t idle_since_ms;
    struct h1_xfer *x;            /* busy with; NULL when idle */
    char *rbuf;
    size_t rlen;                  /* bytes held in rbuf[0..rlen) */
    size_t rcap;
    struct h1_conn *next_idle;
    struct h1_conn *all_prev, *all_next; /* every open connection of the client */
};

enum pstate {
    PS_HEAD,                      /* status line and fields */
    PS_LENGTH,                    /* Content-Length body */
    PS_CHUNK_SIZE,
    PS_CHUNK_DATA,
    PS_CHUNK_END,                 /* CRLF after chunk data */
    PS_TRAILERS,
    PS_UNTIL_CLOSE,
    PS_DONE,
};

struct h1_xfer {
    struct upstream_xfer base;    /* native = 1 */
    struct h1_client *cli;
    struct h1_host *host;
    struct h1_conn *conn;
    struct upstream_req r;        /* callbacks and timeouts; pointers not kept */
    char *req;                    /* serialized request: head + body */
    size_t req_len, req_off;
    struct upstream_resp_head head;
    char *head_mem;               /* names and values of head.hdrs */
    enum pstate ps;
    uint64_t remaining;           /* body or chunk bytes left */
    int keep_alive;
    int head_delivered;
    int got_first_byte;
    int dead;
    int refused;                  /* on_data returned non-zero: ends as UP_ABORTED */
    int in_cb;
    int paused;
    int waiting;                  /* in the host's wait list */
    uint64_t wait_seq;            /* order of arrival in it */
    int starting;                 /* inside h1_start: failures are reported later */
    int pending;                  /* a failure waits for the timer: result + 1 */
    char pending_detail[320];
    int64_t start_ms, connect_deadline_ms, last_data_ms;
    struct event *timer;
    int64_t timer_at_ms;          /* when the armed timer fires; 0 = not armed */
    struct h1_xfer *wait_next;
};

struct h1_client {
    struct event_base *base;
    struct evdns_base *dns;
    struct h1_host *hosts;
    struct h1_conn *conns;        /* all open connections */
    int max_host_conns;
    int open_conns;
};

static void conn_close(struct h1_conn *cn);
static void xfer_dispatch(struct h1_xfer *x, int queued);
static void xfer_fail(struct h1_xfer *x, enum upstream_result r, const char *detail);
static void host_kick(struct h1_host *h);
static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void xfer_send(struct h1_xfer *x);
static void xfer_arm(struct h1_xfer *x);

/* ---- URL ---------------------------------------------------------------------- */

struct url_parts {
    const char *auth;             /* authority: host[:port] */
    size_t auth_len;
    const char *host;             /* without brackets */
    size_t host_len;
    int port;
    const char *target;           /* path and query, "/" if empty */
    size_t target_len;
};

static int parse_url(const char *url, struct url_parts *u) {
    if (strncasecmp(url, "http://", 7) != 0) return -1;
    const char *a = url + 7;
    size_t al = strcspn(a, "/?#");
    if (al == 0 || memchr(a, '@', al)) return -1;
    u->auth = a;
    u->auth_len = al;
    const char *e = a + al, *colon = NULL;
    if (*a == '[') {
        const char *rb = memchr(a, ']', al);
        if (!rb) return -1;
        u->host = a + 1;
        u->host_len = (size_t)(rb - a - 1);
        if (rb + 1 < e) {
            if (rb[1] != ':') return -1;
            colon = rb + 1;
        }
    } else {
        colon = memchr(a, ':', al);
        u->host = a;
        u->host_len = colon ? (size_t)(colon - a) : al;
    }
    if (u->host_len == 0 || u->host_len > MAX_HOST_LEN) return -1;
    u->port = 80;
    if (colon && colon + 1 < e) {
        long p = 0;
        for (const char *s = colon + 1; s < e; s++) {
            if (*s < '0' || *s > '9') return -1;
            p = p * 10 + (*s - '0');
            if (p > 65535) return -1;
        }
        if (p == 0) return -1;
        u->port = (int)p;
    }
    const char *t = e;
    size_t tl = strcspn(t, "#");
    for (size_t i = 0; i < tl; i++) /* never put raw control bytes or spaces on the request line */
        if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f) return -1;
    u->target = tl ? t : "/";     /* "?q" alone gets its "/" in build_request */
    u->target_len = tl ? tl : 1;
    return 0;
}

/* ---- hosts and addresses ----------------------------------------------------- */

static struct h1_host *host_get(struct h1_client *c, const struct url_parts *u) {
    for (struct h1_host *h = c->hosts; h; h = h->next)
        if (strlen(h->key) == u->auth_len && strncasecmp(h->key, u->auth, u->auth_len) == 0) return h;
    struct h1_host *h = util_xcalloc(1, sizeof *h);
    h->cli = c;
    h->key = util_xmalloc(u->auth_len + 1);
    memcpy(h->key, u->auth, u->auth_len);
    h->key[u->auth_len] = 0;
    h->name = util_xmalloc(u->host_len + 1);
    memcpy(h->name, u->host, u->host_len);
    h->name[u->host_len] = 0;
    h->port = u->port;
    struct buf b = {0};
    buf_appends(&b, "Host: ");
    buf_append(&b, u->auth, u->auth_len);
    buf_appends(&b, "\r\n");
    h->host_line = b.p;
    h->host_line_len = b.len;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&h->addrs[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->addrs[0];
    if (inet_pton(AF_INET, h->name, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)h->port);
        h->addrlens[0] = sizeof *s4;
        h->n_addrs = 1;
        h->literal = 1;
    } else if (inet_pton(AF_INET6, h->name, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)h->port);
        h->addrlens[0] = sizeof *s6;
        h->n_addrs = 1;
        h->literal = 1;
    }
    h->next = c->hosts;
    c->hosts = h;
    return h;
}

static int host_max(const struct h1_host *h) {
    return h->max_conns > 0 ? h->max_conns : h->cli->max_host_conns;
}

static void host_wait_push(struct h1_host *h, struct h1_xfer *x) {
    x->waiting = 1;
    x->wait_seq = ++h->wait_seq;
    x->wait_next = NULL;
    if (h->wait_tail) h->wait_tail->wait_next = x;
    else h->wait_head = x;
    h->wait_tail = x;
}

static void host_wait_remove(struct h1_host *h, struct h1_xfer *x) {
    struct h1_xfer **pp = &h->wait_head, *prev = NULL;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &(*pp)->wait_next;
    }
    if (!*pp) return;
    *pp = x->wait_next;
    if (h->wait_tail == x) h->wait_tail = prev;
    x->waiting = 0;
    x->wait_next = NULL;
}

/* The lookup failed: so does every transfer that was waiting for it. Their
 * owners may start new transfers from on_done, which queue behind a new
 * lookup and must not get this answer. */
static void host_fail_waiters(struct h1_host *h, const char *detail) {
    uint64_t last = h->wait_seq;
    while (h->wait_head && h->wait_head->wait_seq <= last) {
        struct h1_xfer *x = h->wait_head;
        host_wait_remove(h, x);
        xfer_fail(x, UP_CONNECT, detail);
    }
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg) {
    struct h1_host *h = arg;
    h->dns_req = NULL;
    h->resolving = 0;
    if (result != 0) {
        if (result == EVUTIL_EAI_CANCEL) return; /* client is being freed */
        char detail[400];
        snprintf(detail, sizeof detail, "cannot resolve host '%s': %s", h->name, evutil_gai_strerror(result));
        host_fail_waiters(h, detail);
        return;
    }
    h->n_addrs = 0;
    for (struct evutil_addrinfo *ai = res; ai && h->n_addrs < MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof h->addrs[0])
            continue;
        memcpy(&h->addrs[h->n_addrs], ai->ai_addr, ai->ai_addrlen);
        h->addrlens[h->n_addrs] = (socklen_t)ai->ai_addrlen;
        h->n_addrs++;
    }
    evutil_freeaddrinfo(res);
    h->pref = 0;
    h->addr_expiry_ms = util_now_ms() + ADDR_TTL_MS;
    if (h->n_addrs == 0) {
        char detail[400];
        snprintf(detail, sizeof detail, "cannot resolve host '%s': no IPv4 or IPv6 address", h->name);
        host_fail_waiters(h, detail);
        return;
    }
    host_kick(h);
}

/* 1 if the host's addresses are usable now. Otherwise 0, and a lookup is
 * running (or has already answered, synchronously, from the hosts file);
 * its answer dispatches the host's waiting transfers. */
static int host_ready(struct h1_host *h) {
    if (h->literal) return 1;
    if (h->n_addrs && util_now_ms() < h->addr_expiry_ms) return 1;
    if (h->dns_req) return 0;
    struct h1_client *c = h->cli;
    if (!c->dns) {
        c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!c->dns) c->dns = evdns_base_new(c->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE); /* hosts file only */
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    char port[8];
    snprintf(port, sizeof port, "%d", h->port);
    h->n_addrs = 0;
    h->resolving = 1;
    struct evdns_getaddrinfo_request *rq = evdns_getaddrinfo(c->dns, h->name, port, &hints, on_resolved, h);
    if (h->resolving) h->dns_req = rq; /* NULL with resolving set cannot happen: errors call back too */
    return 0;
}

/* ---- connections ---------------------------------------------------------------- */

static int conn_open(struct h1_host *h, struct h1_conn **out, char *err, size_t errlen) {
    int idx = h->pref % h->n_addrs;
    const struct sockaddr *sa = (const struct sockaddr *)&h->addrs[idx];
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open a socket to %s: %s", h->key, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    int rc = connect(fd, sa, h->addrlens[idx]);
    if (rc != 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "cannot connect to %s: %s", h->key, strerror(errno));
        close(fd);
        return -1;
    }
    struct h1_conn *cn = util_xcalloc(1, sizeof *cn);
    cn->host = h;
    cn->fd = fd;
    cn->addr_idx = idx;
    cn->connecting = rc != 0;
    cn->rev = event_new(h->cli->base, fd, EV_READ | EV_PERSIST, conn_on_read, cn);
    cn->wev = event_new(h->cli->base, fd, EV_WRITE, conn_on_write, cn);
    h->n_conns++;
    h->cli->open_conns++;
    cn->all_next = h->cli->conns;
    if (cn->all_next) cn->all_next->all_prev = cn;
    h->cli->conns = cn;
    *out = cn;
    return 0;
}

/* Close and free; cn must not be on the idle list. */
static void conn_destroy(struct h1_conn *cn) {
    struct h1_host *h = cn->host;
    struct h1_client *c = h->cli;
    if (cn->all_prev) cn->all_prev->all_next = cn->all_next;
    else c->conns = cn->all_next;
    if (cn->all_next) cn->all_next->all_prev = cn->all_prev;
    event_free(cn->rev);
    event_free(cn->wev);
    close(cn->fd);
    free(cn->rbuf);
    free(cn);
    h->n_conns--;
    c->open_conns--;
}

static void conn_close(struct h1_conn *cn) {
    if (!cn->x) { /* idle: unlink */
        struct h1_conn **pp = &cn->host->idle;
        while (*pp && *pp != cn) pp = &(*pp)->next_idle;
        if (*pp) *pp = cn->next_idle;
    }
    conn_destroy(cn);
}

/* A response is complete: keep the connection for the next request or close it. */
static void conn_release(struct h1_conn *cn, int reusable) {
    cn->x = NULL;
    event_del(cn->wev);
    if (!reusable || cn->rlen) { /* bytes past the response: the stream is out of step */
        conn_close(cn);
        return;
    }
    cn->reused = 1;
    cn->idle_since_ms = util_now_ms();
    cn->next_idle = cn->host->idle;
    cn->host->idle = cn;
    if (!event_pending(cn->rev, EV_READ, NULL)) event_add(cn->rev, NULL); /* notice a close while idle */
}

/* ---- transfers -------------------------------------------------------------------- */

static void xfer_free(struct h1_xfer *x) {
    if (x->waiting) host_wait_remove(x->host, x);
    if (x->timer) event_free(x->timer);
    free(x->req);
    free(x->head.hdrs);
    free(x->head_mem);
    free(x);
}

/* Detach from the connection; close it unless the response completed. */
static void xfer_detach(struct h1_xfer *x, int reusable) {
    struct h1_conn *cn = x->conn;
    if (!cn) return;
    x->conn = NULL;
    if (reusable) {
        conn_release(cn, x->keep_alive);
    } else {
        cn->x = NULL;
        conn_close(cn);
    }
}

/* End x with r: free it, then tell its owner, then let waiting transfers of
 * the host have the freed connection slot. */
static void xfer_finish(struct h1_xfer *x, enum upstream_result r, const char *detail) {
    struct h1_host *h = x->host;
    /* an answer that came before the whole request was sent (an early 413)
     * leaves the rest of the request in the stream: never reuse that */
    xfer_detach(x, r == UP_OK && x->req_off == x->req_len);
    void (*done)(void *, enum upstream_result, const char *) = x->r.on_done;
    void *ud = x->r.ud;
    int dead = x->dead;
    xfer_free(x);
    if (!dead && done) done(ud, r, detail ? detail : "");
    host_kick(h);
}

static void xfer_fail(struct h1_xfer *x, enum upstream_result r, const char *detail) {
    if (x->starting) { /* never call back before h1_start has returned */
        xfer_detach(x, 0);
        x->pending = (int)r + 1;
        snprintf(x->pending_detail, sizeof x->pending_detail, "%s", detail ? detail : "");
        event_active(x->timer, EV_TIMEOUT, 0);
        return;
    }
    xfer_finish(x, r, detail);
}

static int64_t xfer_deadline(const struct h1_xfer *x, const char **what, int *ms) {
    int64_t d = 0;
    *what = NULL;
    *ms = 0;
#define CONSIDER(when, label, lim)                        \
    do {                                                   \
        int64_t w_ = (when);                               \
        if (w_ && (!d || w_ < d)) {                        \
            d = w_;                                        \
            *what = (label);                               \
            *ms = (lim);                                   \
        }                                                  \
    } while (0)
    if (x->r.total_timeout_ms > 0) CONSIDER(x->start_ms + x->r.total_timeout_ms, "total", x->r.total_timeout_ms);
    if (x->connect_deadline_ms && ((x->conn && x->conn->connecting) || (x->waiting && x->host->resolving)))
        CONSIDER(x->connect_deadline_ms, "connect", x->r.connect_timeout_ms);
    if (!x->got_first_byte && x->r.first_byte_timeout_ms > 0)
        CONSIDER(x->start_ms + x->r.first_byte_timeout_ms, "first byte", x->r.first_byte_timeout_ms);
    if (x->got_first_byte && x->r.idle_timeout_ms > 0 && !x->paused)
        CONSIDER(x->last_data_ms + x->r.idle_timeout_ms, "data", x->r.idle_timeout_ms);
#undef CONSIDER
    return d;
}

static void on_xfer_timer(evutil_socket_t fd, short what_ev, void *arg) {
    struct h1_xfer *x = arg;
    (void)fd;
    (void)what_ev;
    x->timer_at_ms = 0;
    if (x->pending) {
        xfer_finish(x, (enum upstream_result)(x->pending - 1), x->pending_detail);
        return;
    }
    const char *what;
    int ms;
    int64_t d = xfer_deadline(x, &what, &ms);
    if (!d) return;
    if (util_now_ms() < d) {
        xfer_arm(x);
        return;
    }
    char detail[160];
    if (strcmp(what, "total") == 0)
        snprintf(detail, sizeof detail, "upstream did not finish within the total timeout of %d ms", ms);
    else if (strcmp(what, "connect") == 0)
        snprintf(detail, sizeof detail, "%s %s timed out after %d ms",
                 x->waiting ? "resolving" : "connecting to", x->waiting ? x->host->name : x->host->key, ms);
    else
        snprintf(detail, sizeof detail, "no %s from upstream within %d ms", what, ms);
    xfer_fail(x, UP_TIMEOUT, detail);
}

/* Arm the timer for the earliest deadline unless it already fires before it. */
static void xfer_arm(struct h1_xfer *x) {
    const char *what;
    int ms;
    int64_t d = xfer_deadline(x, &what, &ms);
    if (!d) return;
    if (x->timer_at_ms && x->timer_at_ms <= d) return;
    int64_t wait = d - util_now_ms();
    if (wait < 0) wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(x->timer, &tv);
    x->timer_at_ms = d;
}

/* Serialize the request once: request line, Host, caller's headers,
 * Content-Length, body. */
static void build_request(struct h1_xfer *x, const struct upstream_req *r, const struct url_parts *u) {
    int get = r->method && strcmp(r->method, "GET") == 0;
    size_t n = 64 + x->host->host_line_len + u->target_len + (get ? 0 : r->body_len);
    for (const char *const *hp = r->headers; hp && *hp; hp++) n += strlen(*hp) + 2;
    struct buf b = {0};
    b.p = util_xmalloc(n);
    b.cap = n;
    buf_appends(&b, get ? "GET " : "POST ");
    if (*u->target != '/') buf_append(&b, "/", 1);
    buf_append(&b, u->target, u->target_len);
    buf_appends(&b, " HTTP/1.1\r\n");
    buf_append(&b, x->host->host_line, x->host->host_line_len);
    for (const char *const *hp = r->headers; hp && *hp; hp++) {
        buf_appends(&b, *hp);
        buf_append(&b, "\r\n", 2);
    }
    if (!get) {
        buf_appends(&b, "Content-Length: ");
        buf_u64(&b, r->body_len);
        buf_append(&b, "\r\n\r\n", 4);
        if (r->body_len) buf_append(&b, r->body, r->body_len);
    } else {
        buf_append(&b, "\r\n", 2);
    }
    x->req = b.p;
    x->req_len = b.len;
}

struct h1_xfer *h1_start(struct h1_client *c, const struct upstream_req *r) {
    struct url_parts u;
    if (parse_url(r->url, &u) != 0) return NULL;
    struct h1_xfer *x = util_xcalloc(1, sizeof *x);
    x->base.native = 1;
    x->cli = c;
    x->host = host_get(c, &u);
    if (r->max_conns > 0 && r->max_conns != x->host->max_conns) {
        x->host->max_conns = r->max_conns;
        host_kick(x->host); /* a raised limit (config reload) lets waiters go */
    }
    x->r = *r;
    x->r.headers = NULL;
    x->r.body = NULL;
    x->r.url = NULL;
    build_request(x, r, &u);
    x->start_ms = util_now_ms();
    x->timer = evtimer_new(c->base, on_xfer_timer, x);
    xfer_arm(x);
    x->starting = 1;
    xfer_dispatch(x, 0);
    x->starting = 0;
    return x;
}

/* Give x a connection: an idle one, a new one, or a place in the queue.
 * queued: x comes from the head of the wait list (host_kick checked that a
 * connection slot and the addresses are there). */
static void xfer_dispatch(struct h1_xfer *x, int queued) {
    struct h1_host *h = x->host;
    int64_t now = 0;
    while (h->idle) {
        struct h1_conn *cn = h->idle;
        h->idle = cn->next_idle;
        cn->next_idle = NULL;
        if (!now) now = util_now_ms();
        if (now - cn->idle_since_ms > IDLE_MAX_MS) { /* the server has likely dropped it */
            conn_destroy(cn);
            continue;
        }
        cn->x = x;
        x->conn = cn;
        xfer_send(x);
        return;
    }
    if (!queued && (h->wait_head || h->n_conns >= host_max(h))) {
        host_wait_push(h, x); /* first come, first served */
        return;
    }
    if (!host_ready(h)) {
        if (!x->waiting && !x->pending) {
            host_wait_push(h, x);
            if (x->r.connect_timeout_ms > 0 && h->resolving) { /* the connect timeout covers the lookup */
                x->connect_deadline_ms = util_now_ms() + x->r.connect_timeout_ms;
                xfer_arm(x);
            }
        }
        if (!h->resolving) host_kick(h); /* the lookup answered already */
        return;
    }
    char err[300];
    struct h1_conn *cn;
    if (conn_open(h, &cn, err, sizeof err) != 0) {
        xfer_fail(x, UP_CONNECT, err);
        return;
    }
    cn->x = x;
    x->conn = cn;
    if (cn->connecting) {
        if (x->r.connect_timeout_ms > 0) {
            x->connect_deadline_ms = util_now_ms() + x->r.connect_timeout_ms;
            xfer_arm(x);
        }
        event_add(cn->wev, NULL);
        return;
    }
    xfer_send(x);
}

/* Waiting transfers of h take free connection slots, in order. */
static void host_kick(struct h1_host *h) {
    while (h->wait_head) {
        if (!h->idle) {
            if (h->n_conns >= host_max(h)) return;
            if (!host_ready(h)) return; /* the lookup's answer kicks again */
        }
        struct h1_xfer *x = h->wait_head;
        host_wait_remove(h, x);
        xfer_dispatch(x, 1);
    }
}

/* The connection failed before any response byte: on a reused connection
 * the server closed it while idle, so send again elsewhere; on a new one,
 * try the next address, then give up. */
static void xfer_conn_failed(struct h1_xfer *x, const char *why) {
    struct h1_conn *cn = x->conn;
    struct h1_host *h = x->host;
    int reused = cn->reused;
    int next_addr = !reused && cn->addr_idx + 1 < h->n_addrs && !h->literal;
    int next_idx = cn->addr_idx + 1;
    char detail[400];
    if (cn->connecting)
        snprintf(detail, sizeof detail, "cannot connect to %s: %s", h->key, why);
    else
        snprintf(detail, sizeof detail, "connection to %s failed before any answer: %s", h->key, why);
    x->conn = NULL;
    cn->x = NULL;
    conn_close(cn);
    if (reused || next_addr) {
        if (next_addr) h->pref = next_idx;
        x->req_off = 0;
        x->connect_deadline_ms = 0;
        xfer_dispatch(x, 1);
        return;
    }
    xfer_fail(x, UP_CONNECT, detail);
}

static void xfer_send(struct h1_xfer *x) {
    struct h1_conn *cn = x->conn;
    while (x->req_off < x->req_len) {
        ssize_t n = send(cn->fd, x->req + x->req_off, x->req_len - x->req_off, MSG_NOSIGNAL);
        if (n > 0) {
            x->req_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(cn->wev, NULL);
            break;
        }
        xfer_conn_failed(x, n < 0 ? strerror(errno) : "closed");
        return;
    }
    if (!event_pending(cn->rev, EV_READ, NULL)) event_add(cn->rev, NULL);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg) {
    struct h1_conn *cn = arg;
    struct h1_xfer *x = cn->x;
    (void)what;
    if (!x) return;
    if (cn->connecting) {
        int e = 0;
        socklen_t el = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0) e = errno;
        if (e) {
            xfer_conn_failed(x, strerror(e));
            return;
        }
        cn->connecting = 0;
        cn->host->pref = cn->addr_idx;
    }
    xfer_send(x);
}

/* ---- response parsing --------------------------------------------------------------- */

/* The head in p[0..n) as the transfer's: its fields and how its body is
 * framed. Returns what h1resp_parse_head returns. */
static int parse_head(struct h1_xfer *x, const char *p, size_t n, char *why, size_t whylen) {
    struct h1resp_head h;
    int rc = h1resp_parse_head(p, n, &h, why, whylen);
    if (rc != 0) return rc;
    free(x->head.hdrs);
    free(x->head_mem);
    x->head.status = h.status;
    x->head.hdrs = h.hdrs;
    x->head.n_hdrs = h.n_hdrs;
    x->head_mem = h.mem;
    x->keep_alive = h.keep_alive;
    x->remaining = h.length;
    x->ps = h.body == H1R_CHUNKED ? PS_CHUNK_SIZE : h.body == H1R_LENGTH ? PS_LENGTH
            : h.body == H1R_UNTIL_CLOSE ? PS_UNTIL_CLOSE : PS_DONE;
    return 0;
}

/* Hand body bytes to the owner. 0 to go on, -1 when x ended (dead/aborted). */
static int deliver(struct h1_xfer *x, const char *p, size_t n) {
    if (!n) return 0;
    if (!x->r.on_data) return 0;
    x->in_cb++;
    int rc = x->r.on_data(x->r.ud, p, n);
    x->in_cb--;
    if (rc != 0 && !x->dead) x->refused = 1;
    return x->dead || x->refused ? -1 : 0;
}

static int deliver_head(struct h1_xfer *x) {
    if (x->head_delivered) return 0;
    x->head_delivered = 1;
    if (x->r.on_head) {
        x->in_cb++;
        x->r.on_head(x->r.ud, &x->head);
        x->in_cb--;
    }
    return x->dead ? -1 : 0;
}

/* What feed() found. */
enum feed_result { FEED_MORE, FEED_DONE, FEED_DEAD, FEED_PAUSED, FEED_ERROR };

/* Consume cn->rbuf as far as possible for x. */
static enum feed_result feed(struct h1_conn *cn, struct h1_xfer *x, char *why, size_t whylen) {
    size_t off = 0;
    enum feed_result res = FEED_MORE;
    while (off < cn->rlen || x->ps == PS_DONE) {
        const char *p = cn->rbuf + off, *e = cn->rbuf + cn->rlen;
        if (x->ps == PS_DONE) {
            res = FEED_DONE;
            break;
        }
        if (x->paused && x->ps != PS_HEAD) {
            res = FEED_PAUSED;
            break;
        }
        if (x->ps == PS_HEAD) {
            /* the head ends at the first empty line */
            const char *q = p, *end = NULL;
            while (q < e) {
                const char *nl = memchr(q, '\n', (size_t)(e - q));
                if (!nl) break;
                if (nl == q || (nl == q + 1 && *q == '\r')) {
                    end = nl + 1;
                    break;
                }
                q = nl + 1;
            }
            if (!end) {
                if (cn->rlen - off > MAX_HEAD) {
                    snprintf(why, whylen, "upstream response head is larger than %d bytes", MAX_HEAD);
                    res = FEED_ERROR;
                }
                break;
            }
            if (end == p + 1 || (end == p + 2 && *p == '\r')) { /* stray empty line before the head */
                off += (size_t)(end - p);
                continue;
            }
            int rc = parse_head(x, p, (size_t)(end - p), why, whylen);
            if (rc < 0) {
                res = FEED_ERROR;
                break;
            }
            off += (size_t)(end - p);
            if (rc == 1) continue; /* 1xx */
            if (deliver_head(x) < 0) {
                res = FEED_DEAD;
                break;
            }
            continue;
        }
        size_t avail = (size_t)(e - p);
        switch (x->ps) {
        case PS_LENGTH: {
            size_t take = avail < x->remaining ? avail : (size_t)x->remaining;
            off += take;
            x->remaining -= take;
            if (!x->remaining) x->ps = PS_DONE;
            if (deliver(x, p, take) < 0) return FEED_DEAD;
            break;
        }
        case PS_UNTIL_CLOSE:
            off += avail;
            if (deliver(x, p, avail) < 0) return FEED_DEAD;
            break;
        case PS_CHUNK_SIZE: {
            const char *nl = memchr(p, '\n', avail);
            if (!nl) {
                if (avail > 1024) {
                    snprintf(why, whylen, "malformed chunk size line from upstream");
                    res = FEED_ERROR;
                }
                goto out;
            }
            uint64_t sz = 0;
            const char *s = p;
            int digits = 0;
            for (; s < nl; s++) {
                int d;
                if (*s >= '0' && *s <= '9') d = *s - '0';
                else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
                else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
                else break;
                if (sz > (UINT64_MAX >> 4)) { digits = -1; break; }
                sz = (sz << 4) | (uint64_t)d;
                digits++;
            }
            if (digits <= 0 || (s < nl && *s != ';' && *s != ' ' && *s != '\t' && *s != '\r')) {
                snprintf(why, whylen, "malformed chunk size line from upstream");
                res = FEED_ERROR;
                goto out;
            }
            off += (size_t)(nl + 1 - p);
            if (sz == 0) {
                x->ps = PS_TRAILERS;
            } else {
                x->remaining = sz;
                x->ps = PS_CHUNK_DATA;
            }
            break;
        }
        case PS_CHUNK_DATA: {
            size_t take = avail < x->remaining ? avail : (size_t)x->remaining;
            off += take;
            x->remaining -= take;
            if (!x->remaining) x->ps = PS_CHUNK_END;
            if (deliver(x, p, take) < 0) return FEED_DEAD;
            break;
        }
        case PS_CHUNK_END:
            if (avail < 2 && *p == '\r') goto out;
            if (*p == '\n') off += 1;
            else if (p[0] == '\r' && p[1] == '\n') off += 2;
            else {
                snprintf(why, whylen, "chunk data from upstream is longer than its size");
                res = FEED_ERROR;
                goto out;
            }
            x->ps = PS_CHUNK_SIZE;
            break;
        case PS_TRAILERS: {
            const char *nl = memchr(p, '\n', avail);
            if (!nl) {
                if (avail > MAX_HEAD) {
                    snprintf(why, whylen, "upstream trailer section is too large");
                    res = FEED_ERROR;
                }
                goto out;
            }
            int empty = nl == p || (nl == p + 1 && *p == '\r');
            off += (size_t)(nl + 1 - p);
            if (empty) x->ps = PS_DONE;
            break;
        }
        default:
            break;
        }
    }
out:
    if (res == FEED_DEAD) return res;
    /* keep what was not consumed at the front of the buffer */
    if (off) {
        memmove(cn->rbuf, cn->rbuf + off, cn->rlen - off);
        cn->rlen -= off;
    }
    if (res == FEED_MORE && x->ps == PS_DONE) res = FEED_DONE;
    return res;
}

/* Run the parser over what the buffer holds. Returns 1 if x is finished,
 * paused or gone (stop reading), 0 to read more. */
static int run_feed(struct h1_conn *cn, struct h1_xfer *x) {
    char why[200];
    why[0] = 0;
    switch (feed(cn, x, why, sizeof why)) {
    case FEED_MORE:
        return 0;
    case FEED_DONE:
        xfer_finish(x, UP_OK, NULL);
        return 1;
    case FEED_PAUSED:
        event_del(cn->rev);
        return 1;
    case FEED_ERROR:
        xfer_fail(x, UP_PROTOCOL, why);
        return 1;
    case FEED_DEAD: {
        if (!x->dead) { /* on_data refused more: the owner still hears the end */
            xfer_finish(x, UP_ABORTED, "the reader refused the response body");
            return 1;
        }
        /* cancelled inside a callback: no callback follows */
        struct h1_host *h = x->host;
        xfer_detach(x, 0);
        xfer_free(x);
        host_kick(h);
        return 1;
    }
    }
    return 1;
}

/* Read what is there and run the transfer forward. */
static void conn_on_read(evutil_socket_t fd, short what, void *arg) {
    struct h1_conn *cn = arg;
    struct h1_xfer *x = cn->x;
    (void)what;
    if (!x) { /* idle: a close or stray bytes; either way the connection is done */
        conn_close(cn);
        return;
    }
    if (x->paused) { /* leave the data in the kernel: that is the back-pressure */
        event_del(cn->rev);
        return;
    }
    if (cn->rlen && x->got_first_byte && run_feed(cn, x)) return; /* bytes held while paused */
    if (!cn->rbuf) {
        cn->rcap = RBUF_SIZE;
        cn->rbuf = util_xmalloc(cn->rcap);
    }
    char why[200];
    why[0] = 0;
    int closed = 0;
    for (int rounds = 0; rounds < 4; rounds++) {
        if (cn->rlen == cn->rcap) {
            if (x->ps != PS_HEAD || cn->rcap >= MAX_HEAD + 1024) return; /* feed rejects this */
            cn->rcap = MAX_HEAD + 1024;
            cn->rbuf = util_xrealloc(cn->rbuf, cn->rcap);
        }
        size_t space = cn->rcap - cn->rlen;
        ssize_t n = recv(fd, cn->rbuf + cn->rlen, space, 0);
        if (n > 0) {
            cn->rlen += (size_t)n;
            x->got_first_byte = 1;
            x->last_data_ms = util_now_ms();
            if (run_feed(cn, x)) return;
            if ((size_t)n < space) return; /* drained; epoll says when there is more */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0) snprintf(why, sizeof why, "%s", strerror(errno));
        closed = 1;
        break;
    }
    if (!closed) return; /* more to read: the event fires again */
    /* the server closed (or reset) the connection */
    if (!x->got_first_byte) {
        xfer_conn_failed(x, why[0] ? why : "closed before answering");
        return;
    }
    if (x->ps == PS_UNTIL_CLOSE) {
        x->ps = PS_DONE;
        x->keep_alive = 0;
        xfer_finish(x, UP_OK, NULL);
        return;
    }
    char d[300];
    snprintf(d, sizeof d, "upstream %s closed the connection %s%s%s", x->host->key,
             x->ps == PS_HEAD ? "in the middle of the response head" : "before the response was complete",
             why[0] ? ": " : "", why);
    xfer_fail(x, UP_BROKEN, d);
}

/* ---- public -------------------------------------------------------------------------- */

void h1_cancel(struct h1_xfer *x) {
    if (!x || x->dead) return;
    x->dead = 1;
    if (x->in_cb) return; /* the caller of the callback cleans up */
    struct h1_host *h = x->host;
    xfer_detach(x, 0);
    xfer_free(x);
    host_kick(h);
}

void h1_pause(struct h1_xfer *x, int paused) {
    if (!x || x->dead || x->paused == paused) return;
    x->paused = paused;
    struct h1_conn *cn = x->conn;
    if (!cn || cn->connecting) return;
    if (paused) {
        if (!x->in_cb) event_del(cn->rev);
        return;
    }
    x->last_data_ms = util_now_ms();
    xfer_arm(x);
    /* resume: first whatever is buffered, then the socket */
    event_add(cn->rev, NULL);
    if (cn->rlen) event_active(cn->rev, EV_READ, 0);
}

struct h1_client *h1_client_new(struct event_base *base, int max_host_conns) {
    struct h1_client *c = util_xcalloc(1, sizeof *c);
    c->base = base;
    h1_client_set_max_conns(c, max_host_conns);
    return c;
}

void h1_client_set_max_conns(struct h1_client *c, int max_host_conns) {
    c->max_host_conns = max_host_conns > 0 ? max_host_conns : 256;
    for (struct h1_host *h = c->hosts; h; h = h->next) host_kick(h);
}

int h1_open_connections(const struct h1_client *c) {
    return c->open_conns;
}

void h1_client_free(struct h1_client *c) {
    if (!c) return;
    for (struct h1_host *h = c->hosts; h; h = h->next) {
        if (h->dns_req) evdns_getaddrinfo_cancel(h->dns_req); /* calls back with EVUTIL_EAI_CANCEL */
        h->dns_req = NULL;
        while (h->wait_head) {
            struct h1_xfer *x = h->wait_head;
            host_wait_remove(h, x);
            xfer_free(x);
        }
        h->idle = NULL;
    }
    while (c->conns) { /* idle ones, and any still busy at exit */
        struct h1_conn *cn = c->conns;
        if (cn->x) {
            cn->x->conn = NULL;
            xfer_free(cn->x);
            cn->x = NULL;
        }
        conn_destroy(cn);
    }
    while (c->hosts) {
        struct h1_host *h = c->hosts;
        c->hosts = h->next;
        free(h->key);
        free(h->name);
        free(h->host_line);
        free(h);
    }
    if (c->dns) evdns_base_free(c->dns, 0);
    free(c);
}
