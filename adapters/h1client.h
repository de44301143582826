/*
 * h1client.h - llmpin's own HTTP/1.1 client for plain-http upstreams.
 *
 * Internal to adapters/: upstream.c hands it the transfers whose URL is
 * http:// (a local vLLM, llama.cpp server, Ollama, an in-cluster gateway)
 * and keeps libcurl for everything else (TLS, proxies, credentials in the
 * URL). Same contract as upstream.h: callbacks on the loop thread, no thread
 * and no blocking call per request, kept-alive connections per host.
 *
 * Why it exists: with libcurl, each proxied request cost ~10 us of CPU in
 * URL parsing, printf-built request heads, sscanf-parsed response heads and
 * liveness poll()s - about a third of llmpin's whole per-request cost, on
 * the one thread that bounds throughput. A request here is one send() of a
 * head built by memcpy and one recv() parsed in place.
 */
#ifndef LLMPIN_H1CLIENT_H
#define LLMPIN_H1CLIENT_H

#include <stddef.h>

#include "adapters/upstream.h"

struct event_base;
struct h1_client;
struct h1_xfer;

/* The first member of every transfer handed out by upstream_start(). */
struct upstream_xfer {
    int native;                 /* 1: struct h1_xfer, 0: a libcurl transfer */
};

struct h1_client *h1_client_new(struct event_base *base, int max_host_conns);
void h1_client_free(struct h1_client *c);
void h1_client_set_max_conns(struct h1_client *c, int max_host_conns);

/* Start a transfer on r->url if this client takes it (http://, no
 * credentials in the URL, nothing it would have to escape); NULL if not,
 * and nothing has happened. Callbacks as in upstream.h. */
struct h1_xfer *h1_start(struct h1_client *c, const struct upstream_req *r);
void h1_cancel(struct h1_xfer *x);
void h1_pause(struct h1_xfer *x, int paused);

/* Connections open now (idle + busy), for tests and metrics. */
int h1_open_connections(const struct h1_client *c);

#endif
