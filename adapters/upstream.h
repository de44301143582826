/*
 * upstream.h - HTTP client transfers to upstream APIs, on the event loop.
 *
 * libcurl's multi-socket API is driven by the proxy's own event_base: curl
 * tells us which sockets to watch and when to time out; libevent tells curl
 * when a socket is ready. No thread and no blocking call per request; curl's
 * connection cache keeps upstream connections alive across requests; DNS
 * goes through curl's asynchronous resolver.
 *
 * Besides curl's connect and total timeouts, each transfer has its own
 * first-byte and idle (between chunks) timers, which curl lacks.
 *
 * Plain-http URLs (local inference servers, in-cluster gateways) go to
 * llmpin's own HTTP/1.1 client (h1client.h) instead, which does the same
 * job with a third of the CPU; https, URLs with credentials, a configured
 * http_proxy/all_proxy, and requests with use_curl set stay on libcurl.
 */
#ifndef LLMPIN_UPSTREAM_H
#define LLMPIN_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct upstream_client;
struct upstream_xfer;

enum upstream_result {
    UP_OK = 0,          /* a complete HTTP response was received (any status) */
    UP_CONNECT,         /* could not resolve, connect or complete TLS */
    UP_TIMEOUT,         /* connect, first-byte, idle or total timeout */
    UP_BROKEN,          /* connection failed after the response had started */
    UP_PROTOCOL,        /* malformed HTTP from the upstream */
    UP_ABORTED,         /* on_data refused more (returned non-zero) */
};

struct upstream_hdr {
    char *name;         /* lower-cased */
    char *value;
};

struct upstream_resp_head {
    int status;
    struct upstream_hdr *hdrs;
    int n_hdrs;
};

struct upstream_req {
    const char *url;
    const char *method;           /* "POST" or "GET" */
    const char *const *headers;   /* "Name: value" lines, NULL-terminated; copied */
    const char *body;             /* copied */
    size_t body_len;
    int connect_timeout_ms;
    int first_byte_timeout_ms;
    int idle_timeout_ms;
    int total_timeout_ms;
    int tls_verify;
    const char *ca_file;
    int use_curl;                 /* 1: libcurl even for plain http (see below) */
    int max_conns;                /* connections to this host (built-in client; curl
                                   * applies the client-wide limit); 0: client default */
    /* Callbacks run on the loop thread. on_head once, before the first
     * on_data.
     *
     * The ownership rule, for both clients: a transfer belongs to the
     * client until on_done has run, and on_done runs exactly once for
     * every transfer that upstream_start returned, unless the owner
     * cancelled it first. So the owner's pointer to the transfer stays
     * valid until on_done or upstream_cancel, and nothing else ends it:
     *  - on_data returns 0 to go on, or non-zero to refuse more (a body
     *    over the owner's limit, a malformed event). The client then stops
     *    reading and calls on_done(UP_ABORTED) once on_data has
     *    returned (never from inside it); the owner keeps its own reason.
     *  - upstream_cancel, also from inside a callback, ends the transfer
     *    at once: no callback runs after it, on_done included.
     * tests/upstream exercises both ends on both clients under ASan. */
    void (*on_head)(void *ud, const struct upstream_resp_head *h);
    int (*on_data)(void *ud, const char *data, size_t len);
    void (*on_done)(void *ud, enum upstream_result r, const char *detail);
    void *ud;
};

struct upstream_client *upstream_client_new(struct event_base *base, int max_host_conns,
                                            char *err, size_t errlen);
void upstream_client_free(struct upstream_client *c);
/* Connections per upstream host (curl applies one limit to every host). */
void upstream_client_set_max_conns(struct upstream_client *c, int max_host_conns);

/* Start a transfer. Returns NULL with err if it could not be set up. */
struct upstream_xfer *upstream_start(struct upstream_client *c, const struct upstream_req *r,
                                     char *err, size_t errlen);
/* Stop a transfer now; no callback runs after this. Safe inside callbacks. */
void upstream_cancel(struct upstream_xfer *x);
/* Pause/resume delivery (client back-pressure). */
void upstream_pause(struct upstream_xfer *x, int paused);

/* Connections the built-in plain-http client holds open (idle + busy). */
int upstream_open_connections(const struct upstream_client *c);

/* Case-insensitive lookup in a response head; NULL if absent. */
const char *upstream_header(const struct upstream_resp_head *h, const char *name);

const char *upstream_result_name(enum upstream_result r);

#endif
