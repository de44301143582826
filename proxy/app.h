/*
 * app.h - the llmpin server process: one event loop, the HTTP server, the
 * upstream client, the local model engines, the drift recorder, and the
 * current configuration generation (swapped atomically on reload).
 */
#ifndef LLMPIN_APP_H
#define LLMPIN_APP_H

#include "config/config.h"

struct app_opts {
    const char *config_path;     /* NULL when built from flags */
    struct cfg *cfg;             /* taken over by app_run */
    const char *ready_file;      /* write "host:port\n" once listening */
    int no_drift;
    int listen_from_cmdline;     /* --listen: a reload keeps it over the file's */
    const char *log_level_cmdline; /* --log-level: likewise, or NULL */
};

/* Run until SIGTERM/SIGINT and the drain finish. Returns the exit code. */
int app_run(struct app_opts *o);

#endif
