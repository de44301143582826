/*
 * sha256.c - whole-file SHA-256 with OpenSSL's EVP interface.
 *
 * The file is read with read(2) in 1 MiB chunks rather than through the
 * model's mmap: hashing streams through the file once, and a read error or
 * a file shrinking underneath us becomes an error message instead of a
 * SIGBUS. The progress callback lets `llmpin verify` draw a bar for
 * multi-gigabyte files.
 */
#include "localmodel/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK (1u << 20)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void to_hex(const unsigned char *md, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

int lm_sha256_file(const char *path, char hex[65],
                   void (*progress)(void *ud, uint64_t done, uint64_t total), void *ud,
                   char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    uint64_t total = (uint64_t)st.st_size, done = 0;
    unsigned char *buf = malloc(CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        seterr(err, errlen, "%s: cannot start SHA-256 (out of memory or OpenSSL error)", path);
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0) {
            if (errno == EINTR) continue;
            seterr(err, errlen, "%s: read failed at byte %llu: %s", path,
                   (unsigned long long)done, strerror(errno));
            goto fail;
        }
        if (n == 0) break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            seterr(err, errlen, "%s: SHA-256 update failed", path);
            goto fail;
        }
        done += (uint64_t)n;
        if (progress) progress(ud, done, total > done ? total : done);
    }
    if (done != total) {
        seterr(err, errlen, "%s: file changed while hashing (read %llu bytes, size was %llu)",
               path, (unsigned long long)done, (unsigned long long)total);
        goto fail;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        seterr(err, errlen, "%s: SHA-256 final failed", path);
        goto fail;
    }
    to_hex(md, hex);
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return 0;
fail:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return -1;
}

int lm_sha256_buf(const void *buf, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) return -1;
    to_hex(md, hex);
    return 0;
}

int lm_sha256_hex_valid(const char *s)
{
    if (!s) return 0;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;   /* also stops at NUL */
    return s[64] == '\0';
}

int lm_sha256_hex_normalize(const char *s, char out[65])
{
    if (!lm_sha256_hex_valid(s)) return -1;
    for (int i = 0; i < 64; i++) out[i] = (char)tolower((unsigned char)s[i]);
    out[64] = '\0';
    return 0;
}

int lm_sha256_hex_equal(const char *a, const char *b)
{
    char x[65], y[65];
    if (lm_sha256_hex_normalize(a, x) < 0 || lm_sha256_hex_normalize(b, y) < 0) return 0;
    return memcmp(x, y, 64) == 0;
}
