/*
 * kquant_ref.c - makes tests/engine/data/kquants.ref, the reference that
 * engine_kquant checks llmpin's K-quant blocks against: ggml's own quantizer
 * and dequantizer (the libggml-base that node-llama-cpp 3.21.1 bundles,
 * loaded with dlopen) run on fixed pseudo-random rows.
 *
 * usage: llmpin-kquant-ref LIBGGML_BASE.so OUT
 *
 * OUT: "LMKQREF1", then per type: u32 ggml type id, u32 n (elements),
 * n f32 source values, the quantized bytes (ggml's row size for n), and the
 * n f32 values ggml's to_float gives back. Not run by ctest; its output is
 * stored test data.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdbool.h>

/* the public ABI of ggml.h (ggml_get_type_traits) */
typedef void (*to_float_t)(const void *x, float *y, int64_t k);
struct type_traits {
    const char *type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    to_float_t to_float;
    void *from_float_ref;
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: llmpin-kquant-ref LIBGGML_BASE.so OUT\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    const struct type_traits *(*traits)(int) = (const struct type_traits *(*)(int))dlsym(h, "ggml_get_type_traits");
    size_t (*quantize)(int, const float *, void *, int64_t, int64_t, int64_t, const float *) =
        (size_t (*)(int, const float *, void *, int64_t, int64_t, int64_t, const float *))dlsym(h, "ggml_quantize_chunk");
    void (*qinit)(int) = (void (*)(int))dlsym(h, "ggml_quantize_init");
    if (!traits || !quantize || !qinit) {
        fprintf(stderr, "libggml-base lacks ggml_get_type_traits / ggml_quantize_chunk\n");
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    if (!out) return 1;
    fwrite("LMKQREF1", 1, 8, out);
    /* Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS */
    static const int types[] = { 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23 };
    const uint32_t n = 2048;
    float *src = malloc(n * sizeof *src), *back = malloc(n * sizeof *back);
    uint8_t *q = malloc(n * 4);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int ty = types[k];
        const struct type_traits *tt = traits(ty);
        /* rows of different magnitudes, a few outliers, some zeros */
        for (uint32_t i = 0; i < n; i++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            float u = (float)((s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
            float scale = (i / 256) % 3 == 0 ? 0.02f : (i / 256) % 3 == 1 ? 1.0f : 7.5f;
            src[i] = i % 97 == 0 ? 4.0f * scale : (i % 61 == 0 ? 0.0f : u * scale);
        }
        qinit(ty);
        size_t bytes = quantize(ty, src, q, 0, 1, n, NULL);
        if (bytes != n / (size_t)tt->blck_size * tt->type_size) {
            fprintf(stderr, "%s: %zu bytes?\n", tt->type_name, bytes);
            return 1;
        }
        tt->to_float(q, back, n);
        uint32_t hdr[2] = { (uint32_t)ty, n };
        fwrite(hdr, 4, 2, out);
        fwrite(src, 4, n, out);
        fwrite(q, 1, bytes, out);
        fwrite(back, 4, n, out);
        printf("%-7s block %3lld, %3zu bytes: %zu bytes for %u values\n", tt->type_name,
               (long long)tt->blck_size, tt->type_size, bytes, n);
    }
    fclose(out);
    return 0;
}
