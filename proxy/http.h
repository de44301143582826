/*
 * http.h - the HTTP/1.1 server side of llmpin.
 *
 * A small server on libevent bufferevents rather than evhttp, because the
 * proxy needs control evhttp does not give: OpenAI-shaped errors for every
 * protocol failure (413, 431, 400), streaming with back-pressure, and
 * knowing at once when a client goes away so its upstream transfer can be
 * cancelled.
 *
 * One exchange (request + response) is active per connection at a time;
 * pipelined requests wait in the input buffer. The handler is called once
 * the whole body is read; it may answer at once or later (asynchronously)
 * with http_respond() or http_stream_*(). If the client disconnects first,
 * the exchange's abort callback runs; the handler must still finish the
 * exchange (respond or http_abandon) so its memory is released.
 */
#ifndef LLMPIN_HTTP_H
#define LLMPIN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/h1req.h"

struct event_base;
struct evbuffer;
struct http_server;
struct http_conn;


struct http_exchange {
    /* request */
    char method[16];
    const char *path;             /* normalised (no dot segments, no "//"), in head_copy */
    const char *query;            /* after '?', or "" */
    struct http_hdr hdrs[HTTP_MAX_HEADERS];
    int n_hdrs;
    char *body;                   /* NUL-terminated; body_len bytes */
    size_t body_len;
    char peer[64];                /* "ip:port" */
    int64_t start_us;             /* monotonic, when the head was complete */

    /* response state */
    int status;                   /* status sent (0 before) */
    int streaming;
    int finished;                 /* handler finished (responded or abandoned) */
    int aborted;                  /* client went away */
    uint64_t bytes_out;
    int64_t first_byte_us;        /* when the response head was written */

    /* handler hooks */
    void (*on_abort)(struct http_exchange *ex, void *ud);
    void (*on_drain)(struct http_exchange *ex, void *ud); /* output below low mark */
    void *hook_ud;
    void *ud;                     /* the handler's per-request state */

    struct http_conn *conn;       /* NULL once the connection is gone */
    struct http_server *srv;
    char *head_copy;              /* owns the strings above */
};

typedef void (*http_handler_fn)(struct http_exchange *ex, void *ud);

struct http_server_opts {
    size_t max_body_bytes;
    size_t max_header_bytes;      /* default 32 KiB */
    int idle_timeout_ms;          /* keep-alive idle between requests, default 75 s */
    int header_timeout_ms;        /* a head, from its first byte, default 10 s */
    int body_timeout_ms;          /* a body, from the end of its head, default 60 s */
    int send_timeout_ms;          /* a client that takes no output for this long, default 60 s */
    int max_connections;          /* default 10000 */
};

/* Bind host:port (port 0 = ephemeral) and start accepting. Returns NULL with
 * err on failure (e.g. "127.0.0.1:8080: Address already in use"). */
struct http_server *http_server_new(struct event_base *base, const char *host, int port,
                                    const struct http_server_opts *o, http_handler_fn fn,
                                    void *ud, char *err, size_t errlen);
int http_server_port(const struct http_server *s);
void http_server_set_opts(struct http_server *s, const struct http_server_opts *o);
/* Stop accepting; close idle connections; busy ones close after their
 * current exchange. */
void http_server_drain(struct http_server *s);
int http_server_active(const struct http_server *s);  /* exchanges in progress */
int http_server_connections(const struct http_server *s);
void http_server_free(struct http_server *s);

/* Case-insensitive header lookup; NULL if absent. */
const char *http_header(const struct http_exchange *ex, const char *name);

/* Complete response. extra_headers: "Name: value\r\n" lines or NULL. */
void http_respond(struct http_exchange *ex, int status, const char *content_type,
                  const char *extra_headers, const char *body, size_t len);
/* Streaming response with chunked transfer encoding. */
void http_stream_start(struct http_exchange *ex, int status, const char *content_type,
                       const char *extra_headers);
void http_stream_write(struct http_exchange *ex, const void *data, size_t len);
void http_stream_end(struct http_exchange *ex);
/* Bytes queued to the client and not yet written. */
size_t http_out_pending(const struct http_exchange *ex);
/* Finish without (further) output; the connection is closed. */
void http_abandon(struct http_exchange *ex);

const char *http_reason(int status);

#endif
