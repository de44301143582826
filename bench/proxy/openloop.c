/*
 * openloop.c - open-loop HTTP load at a fixed request rate, with latency
 * measured from each request's scheduled send time.
 *
 * Why: wrk is closed-loop. At -c32 a saturated proxy's latency is mostly
 * the queue of 32 requests, so "added latency at the maximum sustainable
 * rate" cannot be read from it; at -c1 it shows an idle proxy. This tool
 * sends RATE requests per second whatever the answers do, spread over up to
 * CONNS kept-alive connections (a request waits for a free connection if all
 * are busy, and that wait counts: no coordinated omission). Run it against
 * the upstream directly and through each proxy at the same rate, and the
 * difference of the percentiles is what the proxy adds at that load.
 *
 *   openloop HOST:PORT PATH BODY_FILE RATE SECONDS [CONNS]
 *
 * Prints one line: RESULT rate=... sent=... done=... errors=... late=...
 * p50_us=... p90_us=... p99_us=... p999_us=... max_us=...
 * ("late" counts requests that could not be sent within 1 ms of their
 * schedule because every connection was busy: the rate was not sustained).
 *
 * Responses must carry Content-Length (non-stream JSON answers do). A "{n}"
 * in the body is replaced by the request's number, so that every body
 * differs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    int busy;
    int64_t sched_ns;      /* scheduled time of the request in flight */
    char buf[65536];
    size_t len;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int open_conn(const struct sockaddr_in *sa) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Length of a complete response at the front of c->buf, 0 if incomplete,
 * -1 if it cannot be framed. */
static long complete_len(const struct conn *c, int *status, int *closing) {
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - c->buf) + 4;
    if (c->len < 12) return 0;
    *status = atoi(c->buf + 9);
    const char *p = c->buf;
    long clen = -1;
    *closing = 0;
    while (p < end + 2) { /* the last field's line ends inside the blank line */
        const char *nl = memchr(p, '\n', (size_t)(end + 2 - p));
        if (!nl) break;
        if (nl - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0) clen = atol(p + 15);
        if (nl - p >= 17 && strncasecmp(p, "Connection: close", 17) == 0) *closing = 1;
        p = nl + 1;
    }
    if (clen < 0) return -1;
    return c->len >= head + (size_t)clen ? (long)(head + (size_t)clen) : 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST:PORT PATH BODY_FILE RATE SECONDS [CONNS]\n", argv[0]);
        return 2;
    }
    char host[64];
    snprintf(host, sizeof host, "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (!colon) return 2;
    *colon = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return 2;
    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 2; }
    char body[8192];
    size_t blen = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    double rate = atof(argv[4]);
    double secs = atof(argv[5]);
    int nconn = argc > 6 ? atoi(argv[6]) : 64;
    if (rate <= 0 || secs <= 0 || nconn <= 0 || nconn > 4096) return 2;

    body[blen] = 0;
    char *mark = strstr(body, "{n}");
    char req[9100];

    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    int *freelist = malloc(sizeof(int) * (size_t)nconn), nfree = 0;
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = open_conn(&sa);
        if (cs[i].fd < 0) { perror("connect"); return 1; }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        freelist[nfree++] = i;
    }
    size_t total = (size_t)(rate * secs);
    int64_t *lat = malloc(sizeof(int64_t) * (total + 1));
    size_t ndone = 0, nsent = 0, nerr = 0, nlate = 0;
    double interval_ns = 1e9 / rate;
    int64_t t0 = now_ns() + 10000000; /* start in 10 ms */
    int64_t deadline = t0 + (int64_t)(secs * 1e9) + 5000000000LL; /* +5 s to drain */

    while (ndone + nerr < total && now_ns() < deadline) {
        int64_t now = now_ns();
        /* send everything that is due and has a free connection */
        while (nsent < total && nfree > 0) {
            int64_t sched = t0 + (int64_t)((double)nsent * interval_ns);
            if (sched > now) break;
            if (now - sched > 1000000) nlate++;
            struct conn *c = &cs[freelist[--nfree]];
            c->busy = 1;
            c->sched_ns = sched;
            c->len = 0;
            char num[24], b2[8300];
            const char *bp = body;
            size_t bl = blen;
            if (mark) {
                int nl = snprintf(num, sizeof num, "%zu", nsent);
                size_t pre = (size_t)(mark - body);
                memcpy(b2, body, pre);
                memcpy(b2 + pre, num, (size_t)nl);
                memcpy(b2 + pre + (size_t)nl, mark + 3, blen - pre - 3);
                bp = b2;
                bl = blen - 3 + (size_t)nl;
            }
            int rl = snprintf(req, sizeof req,
                              "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n", argv[2], argv[1], bl);
            memcpy(req + rl, bp, bl);
            size_t reqlen = (size_t)rl + bl;
            if (send(c->fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) { nerr++; c->busy = 0; }
            nsent++;
        }
        /* sleep until the next send is due (nanosecond timeout: never spin,
         * the CPU belongs to the servers being measured) */
        int64_t wait = 10000000;
        if (nsent < total && nfree > 0) {
            wait = t0 + (int64_t)((double)nsent * interval_ns) - now_ns();
            if (wait < 0) wait = 0;
        }
        struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        struct epoll_event evs[256];
        int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
        for (int i = 0; i < n; i++) {
            int idx = (int)evs[i].data.u32;
            struct conn *c = &cs[idx];
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (r <= 0) {
                fprintf(stderr, "openloop: connection closed by the server\n");
                return 1;
            }
            c->len += (size_t)r;
            int status = 0, closing = 0;
            long cl = complete_len(c, &status, &closing);
            if (cl < 0 || (cl == 0 && c->len == sizeof c->buf)) {
                fprintf(stderr, "openloop: response without Content-Length: %.*s\n", (int)(c->len < 300 ? c->len : 300), c->buf);
                return 1;
            }
            if (cl > 0) {
                int64_t t = now_ns();
                if (status == 200) lat[ndone++] = t - c->sched_ns;
                else nerr++;
                c->busy = 0;
                c->len = 0;
                if (closing) { /* nginx ends a connection after keepalive_requests */
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->fd = open_conn(&sa);
                    if (c->fd < 0) { perror("connect"); return 1; }
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)idx};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                }
                freelist[nfree++] = idx;
            }
        }
    }
    qsort(lat, ndone, sizeof *lat, cmp_i64);
#define PCT(p) (ndone ? lat[(size_t)((double)(ndone - 1) * (p))] / 1000 : 0)
    printf("RESULT rate=%.0f sent=%zu done=%zu errors=%zu late=%zu p50_us=%lld p90_us=%lld p99_us=%lld "
           "p999_us=%lld max_us=%lld\n",
           rate, nsent, ndone, nerr, nlate, (long long)PCT(0.50), (long long)PCT(0.90), (long long)PCT(0.99),
           (long long)PCT(0.999), (long long)(ndone ? lat[ndone - 1] / 1000 : 0));
    return ndone + nerr == total && nerr == 0 ? 0 : 1;
}
