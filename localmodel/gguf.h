/*
 * gguf.h - a reader for GGUF v2/v3 model files over mmap.
 *
 * The file is hostile input. gguf_open() checks every count, string length,
 * array length, type id, tensor dimension, offset and the alignment against
 * the file size with overflow-safe arithmetic before anything is used; after
 * it succeeds, every pointer this API hands out is inside the mapping and
 * every tensor's data range [data, data + nbytes) is inside the file.
 *
 * Errors name what and where: "stories.gguf: offset 1234: tensor
 * 'blk.0.attn_q.weight': dimension 1 is 0" or "key 'general.alignment': must
 * be a power of two, got 48".
 */
#ifndef LLMPIN_GGUF_H
#define LLMPIN_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12,
};

/* ggml tensor types llmpin knows. Others are reported by name/number and
 * rejected when a model needs them. */
enum gguf_ttype {
    GGUF_TT_F32 = 0, GGUF_TT_F16 = 1, GGUF_TT_Q4_0 = 2, GGUF_TT_Q4_1 = 3,
    GGUF_TT_Q5_0 = 6, GGUF_TT_Q5_1 = 7, GGUF_TT_Q8_0 = 8, GGUF_TT_Q8_1 = 9,
    GGUF_TT_Q2_K = 10, GGUF_TT_Q3_K = 11, GGUF_TT_Q4_K = 12, GGUF_TT_Q5_K = 13,
    GGUF_TT_Q6_K = 14, GGUF_TT_Q8_K = 15, GGUF_TT_IQ4_NL = 20, GGUF_TT_IQ4_XS = 23,
    GGUF_TT_BF16 = 30,
};

#define GGUF_MAX_DIMS 4

/* A string inside the mapping: NOT NUL-terminated. */
struct gguf_str {
    const char *ptr;
    uint64_t len;
};

/* One metadata value. For arrays, `arr_type` is the element type, `arr_n`
 * the count and `arr_data` points at the first element in the file (for
 * string arrays, at the first element's length prefix; use
 * gguf_arr_str()). Scalars are decoded into the union. */
struct gguf_kv {
    struct gguf_str key;
    enum gguf_vtype type;
    union {
        uint64_t u64;             /* all unsigned ints and bool */
        int64_t i64;              /* all signed ints */
        double f64;               /* float32 and float64 */
        struct gguf_str str;
    } v;
    enum gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    const uint8_t **arr_str_index; /* string arrays: pointer to each element's length prefix (owned) */
    uint64_t file_offset;         /* where the key starts, for messages */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];   /* ggml order: ne[0] is the innermost (row length) */
    enum gguf_ttype type;
    uint64_t offset;              /* relative to the data section */
    uint64_t nelements;
    uint64_t nbytes;
    const void *data;             /* inside the mapping */
};

struct gguf_file {
    char *path;
    int fd;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;         /* absolute start of the tensor data section */
    struct gguf_kv *kv;
    uint64_t n_kv;
    struct gguf_tensor *tensors;
    uint64_t n_tensors;
};

/* Open and validate. On success *out is set (free with gguf_close) and 0 is
 * returned; on failure a negative value and a message in err. */
int gguf_open(const char *path, struct gguf_file **out, char *err, size_t errlen);

/* Same over a caller-provided buffer (no mmap; the buffer must outlive the
 * result). For tests and fuzzing. */
int gguf_open_buffer(const void *buf, size_t size, const char *name,
                     struct gguf_file **out, char *err, size_t errlen);

void gguf_close(struct gguf_file *f);

/* Lookups. Return NULL if absent. */
const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* Typed getters: 0 on success; -1 (with err) if absent or of a type that
 * cannot represent the value exactly (any integer type converts to another if
 * in range; float32/float64 convert to double). */
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, char *err, size_t errlen);
int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out, char *err, size_t errlen);
int gguf_get_f64(const struct gguf_file *f, const char *key, double *out, char *err, size_t errlen);
int gguf_get_bool(const struct gguf_file *f, const char *key, int *out, char *err, size_t errlen);
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out, char *err, size_t errlen);
/* The array under key, if its element type is et (added by the gguf part):
 * 0 with *out set; -1 with err naming the key, the expected and the actual
 * type if absent, not an array, or an array of another element type. */
int gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_vtype et,
                 const struct gguf_kv **out, char *err, size_t errlen);
/* Array element i of a string array (bounds already validated). */
struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i);

/* "F32", "Q8_0", ... or NULL for an unknown id. */
const char *gguf_ttype_name(uint32_t t);
/* Bytes for n elements of type t (n must be a multiple of the block size);
 * 0 for unknown types or on overflow. */
uint64_t gguf_ttype_nbytes(uint32_t t, uint64_t n);
/* Elements per block (1 for F32/F16/BF16, 32 for Q8_0, ...); 0 if unknown. */
uint32_t gguf_ttype_block(uint32_t t);

#endif
