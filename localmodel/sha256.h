/*
 * sha256.h - SHA-256 of a whole file, for pinning local models.
 *
 * llmpin pins a model by the hash of the WHOLE file (metadata, tokenizer,
 * chat template and weights), not of the tensor data only: a changed chat
 * template changes behaviour as surely as changed weights.
 */
#ifndef LLMPIN_SHA256_H
#define LLMPIN_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Hash the file at path with read(2) in 1 MiB chunks (not mmap, so a file
 * truncated while hashing gives an error, not SIGBUS). hex receives 64
 * lower-case hex digits and a NUL. progress, if not NULL, is called after
 * each chunk with bytes done and the file size (ud passed through).
 * Returns 0, or -1 with err ("model.gguf: read failed at byte N: ..."). */
int lm_sha256_file(const char *path, char hex[65],
                   void (*progress)(void *ud, uint64_t done, uint64_t total), void *ud,
                   char *err, size_t errlen);

/* SHA-256 of a memory buffer, hex as above. Returns 0 or -1 (OpenSSL error). */
int lm_sha256_buf(const void *buf, size_t len, char hex[65]);

/* 1 if s is exactly 64 hex digits (either case), else 0. */
int lm_sha256_hex_valid(const char *s);

/* Copy a valid hex digest to out in lower case. Returns 0, or -1 if
 * !lm_sha256_hex_valid(s). */
int lm_sha256_hex_normalize(const char *s, char out[65]);

/* 1 if a and b are the same digest ignoring case (both must be valid),
 * else 0. Not constant-time: digests of public files are not secrets. */
int lm_sha256_hex_equal(const char *a, const char *b);

#endif
