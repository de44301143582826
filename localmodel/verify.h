/*
 * verify.h - the report behind `llmpin verify <model.gguf>`.
 *
 * It answers "what is this file and how do I pin it": the whole-file
 * SHA-256, GGUF version, architecture, parameter count, tensor types,
 * context length, vocabulary size, detected chat template family, and a
 * config snippet ready to paste.
 */
#ifndef LLMPIN_VERIFY_H
#define LLMPIN_VERIFY_H

#include <stddef.h>
#include <stdio.h>

/* Parse (fully validated) and hash the file, print the report to out.
 * show_progress: draw a hashing progress bar on stderr if stderr is a
 * terminal and the file is large. Returns 0, or -1 with err (nothing or a
 * partial report printed). */
int lm_verify_report(const char *path, int show_progress, FILE *out, char *err, size_t errlen);

#endif
