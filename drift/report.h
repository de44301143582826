/*
 * report.h - the drift report (text on a stream, optional HTML page).
 * Internal to drift/; the CLI and the tests use it.
 */
#ifndef LLMPIN_DRIFT_REPORT_H
#define LLMPIN_DRIFT_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>

/* Read records and events in [since, until) from db, print the text timeline
 * per target to out (may be NULL) and, when html_path is non-NULL, write one
 * self-contained HTML page with inline SVG charts there. Returns 0, or -1
 * with err filled. */
int drift_report_write(sqlite3 *db, int64_t since, int64_t until, FILE *out,
                       const char *html_path, char *err, size_t errlen);

/* The schema version of an open drift database, or -1. */
int drift_report_schema_version(sqlite3 *db);

#endif
