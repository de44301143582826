/*
 * log.h - one JSON object per line on stderr (or a file), for operators and
 * for machines. Messages never contain secrets: callers pass key *names*.
 */
#ifndef LLMPIN_LOG_H
#define LLMPIN_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level l);
/* "debug" | "info" | "warn" | "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level l);
/* msg is printf-formatted; it becomes the "msg" field. */
void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write a preformatted JSON line (the access log). Thread-safe. */
void log_raw_line(const char *line, size_t len);
/* Send the access log to a file ("-" = stderr, "off" = nowhere). */
int log_set_access_file(const char *path);
void log_access_line(const char *line, size_t len);
/* Write out buffered access lines. */
void log_access_flush(void);

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
