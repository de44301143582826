/*
 * http.c - HTTP/1.1 server on libevent bufferevents. See http.h for why.
 *
 * A connection moves through three states:
 *
 *   HEAD  reading the request line and headers (bounded by max_header_bytes)
 *   BODY  reading Content-Length bytes or a chunked body (bounded by
 *         max_body_bytes; an oversized Content-Length is refused before a
 *         byte of the body is read)
 *   BUSY  the handler owns the exchange; input is still read (so a close by
 *         the client is seen at once) but not parsed
 *
 * When the exchange finishes, a keep-alive connection goes back to HEAD and
 * parses whatever the client pipelined meanwhile.
 *
 * Memory: the exchange outlives its connection when the client disconnects
 * mid-request; it is freed when both the handler has finished and the
 * connection has let go of it.
 */
#include "proxy/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

enum conn_state { ST_HEAD, ST_BODY, ST_BUSY, ST_CLOSING };

struct http_conn {
    struct http_server *srv;
    struct bufferevent *bev;   /* the output side; reads are ours (conn_on_readable) */
    struct event *rev;         /* read readiness; never carries a timeout */
    struct event *tmr;         /* the deadline of the current state (see conn_timer) */
    int reading;
    enum conn_state state;
    struct http_exchange *ex;
    int keep_alive;
    int chunked;               /* request body is chunked */
    size_t body_expected;      /* Content-Length */
    struct h1chunk chunk;      /* chunked decoder state */
    struct buf chunk_body;     /* the chunked body decoded so far */
    size_t head_scan;          /* where the head-end search resumes */
    int head_started;          /* a head's first byte has arrived (its deadline runs) */
    int skipped_crlf;          /* empty lines skipped before this request line */
    int close_after_write;
    char peer[64];
    struct http_conn *prev, *next;
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct http_server_opts o;
    http_handler_fn fn;
    void *ud;
    int port;
    int draining;
    int n_conns;
    int n_active;
    struct http_conn *conns;
    struct http_exchange **dead;  /* finished exchanges, freed on the next loop turn */
    int n_dead, cap_dead;
    struct event *reaper;
};

static void conn_close(struct http_conn *c);
static void conn_process(struct http_conn *c);
static void conn_fail(struct http_conn *c, int status, const char *code, const char *msg);

/* Reading. The bufferevent would ask the kernel how much is readable
 * (ioctl FIONREAD) before every read; we read into the input evbuffer's
 * free space directly, one recv() per readiness in the common case. The
 * bufferevent keeps the output side. */
static void conn_read_on(struct http_conn *c) {
    if (!c->reading) event_add(c->rev, NULL);
    c->reading = 1;
}

static void conn_read_off(struct http_conn *c) {
    if (c->reading) event_del(c->rev);
    c->reading = 0;
}

/* Deadlines are per state, on their own timer, and never re-armed by
 * traffic: HEAD idle (between requests: idle_timeout_ms, from the end of
 * the last response) then the header deadline (from the head's first byte),
 * BODY the body deadline (from the end of the head), BUSY none (the
 * upstream's own timeouts bound the handler; a client that stops reading is
 * caught by the send timeout on the bufferevent). A byte a minute cannot
 * keep a head or body open past its deadline. ms = 0 clears the timer. */
static void conn_timer(struct http_conn *c, int ms) {
    if (ms <= 0) {
        event_del(c->tmr);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(c->tmr, &tv);
}

/* ---- small helpers ------------------------------------------------------ */

const char *http_reason(int s) {
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return s < 300 ? "OK" : s < 500 ? "Client Error" : "Server Error";
    }
}

static void exchange_free(struct http_exchange *ex) {
    free(ex->head_copy);
    free(ex->body);
    free(ex);
}

/* Exchanges are freed on the next turn of the loop, not at once, so the
 * handler may still read an exchange's fields (status, bytes, timings) right
 * after it has answered. */
static void reap(evutil_socket_t fd, short what, void *arg) {
    struct http_server *s = arg;
    (void)fd;
    (void)what;
    for (int i = 0; i < s->n_dead; i++) exchange_free(s->dead[i]);
    s->n_dead = 0;
}

static void exchange_bury(struct http_server *s, struct http_exchange *ex) {
    if (s->n_dead == s->cap_dead) {
        s->cap_dead = s->cap_dead ? s->cap_dead * 2 : 64;
        s->dead = util_xrealloc(s->dead, (size_t)s->cap_dead * sizeof *s->dead);
    }
    s->dead[s->n_dead++] = ex;
    if (s->n_dead == 1) event_active(s->reaper, EV_TIMEOUT, 0);
}



/* Answer a protocol-level error and close: the request could not be parsed,
 * so the connection's framing cannot be trusted any more. */
static void conn_fail(struct http_conn *c, int status, const char *code, const char *msg) {
    struct buf b = {0};
    buf_appends(&b, "{\"error\":{\"message\":");
    buf_json_str(&b, msg);
    buf_appends(&b, ",\"type\":\"invalid_request_error\",\"param\":null,\"code\":");
    buf_json_str(&b, code);
    buf_appends(&b, "}}\n");
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        status, http_reason(status), b.len);
    evbuffer_add(out, b.p, b.len);
    buf_free(&b);
    log_debug("http %s: %d %s", c->peer, status, msg);
    c->state = ST_CLOSING;
    c->close_after_write = 1;
    conn_read_off(c);
}

const char *http_header(const struct http_exchange *ex, const char *name) {
    for (int i = 0; i < ex->n_hdrs; i++)
        if (strcasecmp(ex->hdrs[i].name, name) == 0) return ex->hdrs[i].value;
    return NULL;
}

/* ---- parsing ------------------------------------------------------------- */

static void fail_with(struct http_conn *c, const struct h1req_error *e) {
    conn_fail(c, e->status, e->code, e->message);
}

/* The head is complete in head[0..len): parse it into a new exchange.
 * Returns 0, or answers an error and returns -1. */
static int parse_head(struct http_conn *c, char *head, size_t len) {
    struct http_exchange *ex = util_xcalloc(1, sizeof *ex);
    ex->head_copy = head;
    ex->conn = c;
    ex->srv = c->srv;
    ex->start_us = util_now_us();
    util_strlcpy(ex->peer, c->peer, sizeof ex->peer);
    c->ex = ex;

    struct h1req_head h;
    struct h1req_error e;
    if (h1req_parse_head(head, len, &h, &e) < 0) {
        fail_with(c, &e);
        return -1;
    }
    memcpy(ex->method, h.method, sizeof ex->method);
    ex->path = h.path;
    ex->query = h.query;
    memcpy(ex->hdrs, h.hdrs, (size_t)h.n_hdrs * sizeof h.hdrs[0]);
    ex->n_hdrs = h.n_hdrs;
    c->keep_alive = h.keep_alive && !c->srv->draining;
    c->chunked = h.chunked;
    memset(&c->chunk, 0, sizeof c->chunk);
    c->body_expected = 0;
    if (!h.chunked) {
        if (h.content_length > c->srv->o.max_body_bytes) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "Request body is %llu bytes; the limit is %zu bytes (server.max_body_bytes).",
                     (unsigned long long)h.content_length, c->srv->o.max_body_bytes);
            conn_fail(c, 413, "request_too_large", msg);
            return -1;
        }
        c->body_expected = (size_t)h.content_length;
    }
    if (h.expect_continue)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

/* Feed what the input holds to the chunked decoder, draining it as it
 * goes. Returns 1 when the body is complete, 0 for more, -1 on an error
 * (answered). */
static int take_chunked(struct http_conn *c, struct evbuffer *in) {
    struct h1req_error e;
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) return 0;
        size_t used = 0;
        int r = h1chunk_feed(&c->chunk, v.iov_base, v.iov_len, &used, &c->chunk_body, c->srv->o.max_body_bytes,
                             c->srv->o.max_header_bytes, &e);
        if (r < 0) {
            buf_free(&c->chunk_body);
            fail_with(c, &e);
            return -1;
        }
        evbuffer_drain(in, used);
        if (r == 1) {
            c->ex->body = c->chunk_body.p ? c->chunk_body.p : util_strdup("");
            c->ex->body_len = c->chunk_body.len;
            memset(&c->chunk_body, 0, sizeof c->chunk_body);
            return 1;
        }
    }
}

static void dispatch(struct http_conn *c) {
    c->state = ST_BUSY;
    c->srv->n_active++;
    /* No deadline while the handler owns the exchange: the upstream's own
     * timeouts and the request timeout bound it; a client that stops
     * reading is caught by the write timeout. */
    conn_timer(c, 0);
    c->srv->fn(c->ex, c->srv->ud);
}

/* Parse as much as the input buffer allows. */
static void conn_process(struct http_conn *c) {
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        if (c->state == ST_HEAD) {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0) return;
            if (c->head_scan == 0) {
                /* empty lines before a request line are skipped (RFC 9112 2.2) */
                unsigned char *d = evbuffer_pullup(in, 1);
                if (d[0] == '\r' || d[0] == '\n') {
                    if (++c->skipped_crlf > 64) {
                        conn_fail(c, 400, "invalid_http", "Malformed HTTP request.");
                        return;
                    }
                    evbuffer_drain(in, 1);
                    continue;
                }
                if (!c->head_started) {
                    /* the first byte of a head starts its deadline */
                    c->head_started = 1;
                    conn_timer(c, c->srv->o.header_timeout_ms);
                }
            }
            size_t look = avail < c->srv->o.max_header_bytes + 1 ? avail : c->srv->o.max_header_bytes + 1;
            const char *d = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
            size_t head_len = h1req_head_end(d, look, &c->head_scan);
            if (head_len == 0 ? look > c->srv->o.max_header_bytes : head_len > c->srv->o.max_header_bytes) {
                char msg[120];
                snprintf(msg, sizeof msg, "Request headers are larger than the limit of %zu bytes.",
                         c->srv->o.max_header_bytes);
                conn_fail(c, 431, "request_header_fields_too_large", msg);
                return;
            }
            if (head_len == 0) return;
            char *head = util_xmalloc(head_len + 1);
            evbuffer_remove(in, head, head_len);
            head[head_len] = 0;
            c->head_scan = 0;
            c->head_started = 0;
            c->skipped_crlf = 0;
            if (parse_head(c, head, head_len) < 0) return;
            c->state = ST_BODY;
            if (c->chunked || c->body_expected) conn_timer(c, c->srv->o.body_timeout_ms);
        }
        if (c->state == ST_BODY) {
            if (c->chunked) {
                int r = take_chunked(c, in);
                if (r <= 0) return;
            } else {
                if (evbuffer_get_length(in) < c->body_expected) return;
                c->ex->body = util_xmalloc(c->body_expected + 1);
                evbuffer_remove(in, c->ex->body, c->body_expected);
                c->ex->body[c->body_expected] = 0;
                c->ex->body_len = c->body_expected;
            }
            dispatch(c);
            return; /* the next request is parsed when this one finishes */
        }
        return;
    }
}

/* ---- connection events --------------------------------------------------- */

static void conn_input(struct http_conn *c) {
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        conn_process(c);
        return;
    }
    if (c->state == ST_BUSY) {
        /* Pipelined data while busy: keep it, but bound it. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 1 << 20) conn_read_off(c);
    }
}

static void conn_on_readable(evutil_socket_t fd, short what, void *arg) {
    struct http_conn *c = arg;
    (void)what;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t want = 4096;
    for (int rounds = 0; rounds < 16; rounds++) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) < 1) { /* out of memory */
            conn_close(c);
            return;
        }
        ssize_t n = recv(fd, v.iov_base, v.iov_len, 0);
        if (n > 0) {
            v.iov_len = (size_t)n;
            evbuffer_commit_space(in, &v, 1);
            if ((size_t)n < want) break; /* drained */
            if (want < 65536) want *= 2; /* a large body: bigger reads */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        conn_close(c); /* the peer closed or reset: a busy handler hears on_abort */
        return;
    }
    conn_input(c);
}

/* The state's deadline passed. An idle keep-alive connection just closes
 * (what a client expects of keep-alive); a head or body that did not
 * arrive in time gets a 408 first, as nginx sends for client_header_timeout
 * and client_body_timeout. */
static void conn_on_timer(evutil_socket_t fd, short what, void *arg) {
    struct http_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == ST_HEAD && c->head_started) {
        conn_fail(c, 408, "request_timeout", "The request headers did not arrive within server.header_timeout.");
        conn_timer(c, 5000); /* the 408 itself gets a short deadline */
    } else if (c->state == ST_BODY) {
        conn_fail(c, 408, "request_timeout", "The request body did not arrive within server.body_timeout.");
        conn_timer(c, 5000);
    } else {
        conn_close(c);
    }
}

static void on_write(struct bufferevent *bev, void *arg) {
    struct http_conn *c = arg;
    if (c->close_after_write && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        conn_close(c);
        return;
    }
    if (c->state == ST_BUSY && c->ex && c->ex->on_drain)
        c->ex->on_drain(c->ex, c->ex->hook_ud);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    struct http_conn *c = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) conn_close(c);
}

/* Drop the connection. An exchange still owned by its handler learns about
 * it through on_abort and is freed when the handler finishes. */
static void conn_close(struct http_conn *c) {
    struct http_server *s = c->srv;
    struct http_exchange *ex = c->ex;
    c->ex = NULL;
    if (ex) {
        ex->conn = NULL;
        if (c->state != ST_BUSY) {
            exchange_free(ex); /* never reached a handler */
        } else {
            /* the handler still owns it and frees it by finishing */
            ex->aborted = 1;
            s->n_active--;
            if (ex->on_abort) ex->on_abort(ex, ex->hook_ud);
        }
    }
    event_free(c->rev);
    event_free(c->tmr);
    buf_free(&c->chunk_body);
    bufferevent_free(c->bev);
    if (c->prev) c->prev->next = c->next; else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    free(c);
}

/* The handler finished; recycle or close the connection. */
static void exchange_done(struct http_exchange *ex) {
    ex->finished = 1;
    struct http_conn *c = ex->conn;
    if (!c) {
        /* the connection went away earlier; the server outlives exchanges */
        exchange_bury(ex->srv, ex);
        return;
    }
    struct http_server *s = c->srv;
    s->n_active--;
    c->ex = NULL;
    ex->conn = NULL;
    exchange_bury(s, ex);
    if (!c->keep_alive || s->draining) {
        c->state = ST_CLOSING;
        c->close_after_write = 1;
        conn_read_off(c);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) conn_close(c);
        return;
    }
    c->state = ST_HEAD;
    conn_timer(c, s->o.idle_timeout_ms);
    conn_read_on(c);
    conn_process(c);
}

/* ---- responses ------------------------------------------------------------ */

/* Send iov[0..n) on the connection. When nothing is queued, write straight
 * to the socket: most responses then leave in this one writev and the
 * bufferevent never has to arm its write event (two epoll_ctl calls and an
 * epoll_wait saved per response). Whatever the socket does not take is
 * queued in order behind it. */
static void conn_send(struct http_conn *c, struct iovec *iov, int n) {
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int i = 0;
    if (evbuffer_get_length(out) == 0) {
        ssize_t w = writev(bufferevent_getfd(c->bev), iov, n);
        if (w > 0) {
            size_t left = (size_t)w;
            while (i < n && left >= iov[i].iov_len) left -= iov[i++].iov_len;
            if (i < n) {
                iov[i].iov_base = (char *)iov[i].iov_base + left;
                iov[i].iov_len -= left;
            }
        }
        /* on EAGAIN or an error, queue everything; the bufferevent reports errors */
    }
    for (; i < n; i++)
        if (iov[i].iov_len) evbuffer_add(out, iov[i].iov_base, iov[i].iov_len);
}

/* Format the response head into buf; returns its length. Plain copies, no
 * printf: this runs for every response. A head that would not fit (never,
 * with HEAD_MAX and the bounded headers llmpin sends) is cut at cap - 1. */
static size_t format_head(struct http_exchange *ex, char *buf, size_t cap, int status, const char *ctype,
                          const char *extra, const char *framing) {
    struct http_conn *c = ex->conn;
    ex->status = status;
    ex->first_byte_us = util_now_us();
    if (c->srv->draining) c->keep_alive = 0;
    size_t n = 0;
#define PUT(str)                                             \
    do {                                                     \
        const char *s_ = (str);                              \
        size_t l_ = strlen(s_);                              \
        if (l_ > cap - 1 - n) l_ = cap - 1 - n;              \
        memcpy(buf + n, s_, l_);                             \
        n += l_;                                             \
    } while (0)
    PUT("HTTP/1.1 ");
    char st[5] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10), (char)('0' + status % 10), ' ', 0};
    PUT(st);
    PUT(http_reason(status));
    PUT("\r\n");
    if (ctype) {
        PUT("Content-Type: ");
        PUT(ctype);
        PUT("\r\n");
    }
    if (extra) PUT(extra);
    PUT(framing);
    PUT(c->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
#undef PUT
    buf[n] = 0;
    return n;
}

#define HEAD_MAX 8192

void http_respond(struct http_exchange *ex, int status, const char *ctype, const char *extra,
                  const char *body, size_t len) {
    if (ex->finished) return;
    if (ex->conn && !ex->streaming && !ex->status) {
        char framing[48], head[HEAD_MAX];
        struct buf fb;
        buf_init_on(&fb, framing, sizeof framing);
        buf_appends(&fb, "Content-Length: ");
        buf_u64(&fb, len);
        buf_appends(&fb, "\r\n");
        size_t hl = format_head(ex, head, sizeof head, status, ctype, extra, framing);
        struct iovec iov[2] = {{head, hl}, {(void *)body, len}};
        conn_send(ex->conn, iov, len ? 2 : 1);
        ex->bytes_out += len;
    }
    exchange_done(ex);
}

void http_stream_start(struct http_exchange *ex, int status, const char *ctype, const char *extra) {
    if (ex->finished || ex->status) return;
    ex->streaming = 1;
    if (!ex->conn) return;
    char head[HEAD_MAX];
    size_t hl = format_head(ex, head, sizeof head, status, ctype, extra,
                            "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    struct iovec iov[1] = {{head, hl}};
    conn_send(ex->conn, iov, 1);
    /* wake on_drain when the client has taken most of what was queued */
    bufferevent_setwatermark(ex->conn->bev, EV_WRITE, 64 * 1024, 0);
}

void http_stream_write(struct http_exchange *ex, const void *data, size_t len) {
    if (ex->finished || !ex->conn || !ex->streaming || len == 0) return;
    char sz[24];
    int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
    struct iovec iov[3] = {{sz, (size_t)n}, {(void *)data, len}, {"\r\n", 2}};
    conn_send(ex->conn, iov, 3);
    ex->bytes_out += len;
}

void http_stream_end(struct http_exchange *ex) {
    if (ex->finished) return;
    if (ex->conn && ex->streaming) {
        struct iovec iov[1] = {{"0\r\n\r\n", 5}};
        conn_send(ex->conn, iov, 1);
        bufferevent_setwatermark(ex->conn->bev, EV_WRITE, 0, 0);
    }
    exchange_done(ex);
}

size_t http_out_pending(const struct http_exchange *ex) {
    if (!ex->conn) return 0;
    return evbuffer_get_length(bufferevent_get_output(ex->conn->bev));
}

void http_abandon(struct http_exchange *ex) {
    if (ex->finished) return;
    if (ex->conn) ex->conn->keep_alive = 0;
    exchange_done(ex);
}

/* ---- server ----------------------------------------------------------------- */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg) {
    struct http_server *s = arg;
    (void)l;
    (void)salen;
    if (s->n_conns >= s->o.max_connections || s->draining) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct http_conn *c = util_xcalloc(1, sizeof *c);
    c->srv = s;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) { evutil_closesocket(fd); free(c); return; }
    bufferevent_setcb(c->bev, NULL, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_WRITE);
    /* the bufferevent freezes its input's end for its own reader, which
     * never runs here: conn_on_readable appends to it instead */
    evbuffer_unfreeze(bufferevent_get_input(c->bev), 0);
    struct timeval send_tv = {s->o.send_timeout_ms / 1000, (s->o.send_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &send_tv);
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_on_readable, c);
    c->tmr = evtimer_new(s->base, conn_on_timer, c);
    conn_read_on(c);
    conn_timer(c, s->o.idle_timeout_ms);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
}

static void fill_defaults(struct http_server_opts *o) {
    if (!o->max_body_bytes) o->max_body_bytes = 8u << 20;
    if (!o->max_header_bytes) o->max_header_bytes = 32u << 10;
    if (!o->idle_timeout_ms) o->idle_timeout_ms = 75000;
    if (!o->header_timeout_ms) o->header_timeout_ms = 10000;
    if (!o->body_timeout_ms) o->body_timeout_ms = 60000;
    if (!o->send_timeout_ms) o->send_timeout_ms = 60000;
    if (!o->max_connections) o->max_connections = 10000;
}

struct http_server *http_server_new(struct event_base *base, const char *host, int port,
                                    const struct http_server_opts *o, http_handler_fn fn, void *ud,
                                    char *err, size_t errlen) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    const char *h = host;
    char hb[64];
    if (h[0] == '[') { /* [::1] */
        snprintf(hb, sizeof hb, "%s", h + 1);
        char *e = strchr(hb, ']');
        if (e) *e = 0;
        h = hb;
    }
    if (strcmp(h, "localhost") == 0) h = "127.0.0.1";
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        sl = sizeof *in;
    } else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sl = sizeof *in6;
    } else {
        snprintf(err, errlen, "server.listen: \"%s\" is not an IP address (use e.g. 127.0.0.1 or ::1)", host);
        return NULL;
    }
    struct http_server *s = util_xcalloc(1, sizeof *s);
    s->base = base;
    s->o = *o;
    fill_defaults(&s->o);
    s->fn = fn;
    s->ud = ud;
    s->reaper = event_new(base, -1, 0, reap, s);
    s->listener = evconnlistener_new_bind(base, on_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                          1024, (struct sockaddr *)&ss, (int)sl);
    if (!s->listener) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        event_free(s->reaper);
        free(s);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&bound, &bl);
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return s;
}

int http_server_port(const struct http_server *s) { return s->port; }

void http_server_set_opts(struct http_server *s, const struct http_server_opts *o) {
    s->o = *o;
    fill_defaults(&s->o);
}

void http_server_drain(struct http_server *s) {
    if (s->draining) return;
    s->draining = 1;
    if (s->listener) evconnlistener_disable(s->listener);
    struct http_conn *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == ST_HEAD && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_close(c);
        else
            c->keep_alive = 0;
    }
}

int http_server_active(const struct http_server *s) { return s->n_active; }
int http_server_connections(const struct http_server *s) { return s->n_conns; }

void http_server_free(struct http_server *s) {
    if (!s) return;
    while (s->conns) conn_close(s->conns);
    if (s->listener) evconnlistener_free(s->listener);
    reap(-1, 0, s);
    free(s->dead);
    event_free(s->reaper);
    free(s);
}
