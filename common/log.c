/*
 * log.c - structured logging. Lines are built in a stack buffer and written
 * with one write(2) so lines from several threads never interleave. The
 * level is process-wide configuration set once at start-up (and on reload);
 * it is the only mutable global here, and an int store is atomic enough.
 */
#include "common/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int g_level = LOG_INFO;
static volatile int g_access_fd = 2;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level l) { g_level = (int)l; }
int log_enabled(enum log_level l) { return (int)l >= g_level; }

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

/* Append s to buf as JSON string content (without quotes). */
static size_t json_escape(char *out, size_t cap, const char *s) {
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (c == '\t') { out[o++] = '\\'; out[o++] = 't'; }
        else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    return o;
}

static size_t format_time(char *buf, size_t cap) {
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n;
}

void log_msg(enum log_level l, const char *fmt, ...) {
    if (!log_enabled(l)) return;
    char msg[2048], line[4608], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    format_time(ts, sizeof ts);
    size_t n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                                level_names[l]);
    n += json_escape(line + n, sizeof line - n - 4, msg);
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    log_raw_line(line, n);
}

void log_raw_line(const char *line, size_t len) {
    ssize_t w = write(2, line, len);
    (void)w;
}

int log_set_access_file(const char *path) {
    log_access_flush();
    if (!path || strcmp(path, "-") == 0) { g_access_fd = 2; return 0; }
    if (strcmp(path, "off") == 0) { g_access_fd = -1; return 0; }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return -1;
    int old = g_access_fd;
    g_access_fd = fd;
    if (old > 2) close(old);
    return 0;
}

/* Access lines are batched: one write(2) per request is a measurable share
 * of a proxy's cost. The buffer is flushed when it fills, by
 * log_access_flush() (the server calls it on a short timer) and at exit. */
static pthread_mutex_t g_access_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_access_buf[64 * 1024];
static size_t g_access_len;

static void access_flush_locked(void) {
    int fd = g_access_fd;
    size_t off = 0;
    while (fd >= 0 && off < g_access_len) {
        ssize_t w = write(fd, g_access_buf + off, g_access_len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    g_access_len = 0;
}

void log_access_flush(void) {
    pthread_mutex_lock(&g_access_mu);
    access_flush_locked();
    pthread_mutex_unlock(&g_access_mu);
}

void log_access_line(const char *line, size_t len) {
    if (g_access_fd < 0) return;
    pthread_mutex_lock(&g_access_mu);
    if (g_access_len + len > sizeof g_access_buf) access_flush_locked();
    if (len > sizeof g_access_buf) {
        ssize_t w = write(g_access_fd, line, len);
        (void)w;
    } else {
        memcpy(g_access_buf + g_access_len, line, len);
        g_access_len += len;
    }
    pthread_mutex_unlock(&g_access_mu);
}
