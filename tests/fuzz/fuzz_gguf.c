/*
 * fuzz_gguf.c - libFuzzer entry for the GGUF reader. Build with clang and
 * -DLLMPIN_FUZZ=ON; run e.g. `./fuzz_gguf -max_len=65536 corpus/` with a
 * corpus seeded from small writer-made files. Any crash, leak or
 * sanitizer report is a bug in gguf.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "localmodel/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gguf_file *f = NULL;
    char err[512];
    if (gguf_open_buffer(data, size, "fuzz.gguf", &f, err, sizeof err) == 0) {
        volatile unsigned sum = 0;
        for (uint64_t i = 0; i < f->n_kv; i++) {
            const struct gguf_kv *kv = &f->kv[i];
            if (kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING)
                for (uint64_t e = 0; e < kv->arr_n; e++) {
                    struct gguf_str s = gguf_arr_str(kv, e);
                    if (s.len) sum += (uint8_t)s.ptr[s.len - 1];
                }
        }
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const uint8_t *p = f->tensors[i].data;
            sum += p[0] + p[f->tensors[i].nbytes - 1];
        }
        (void)sum;
        (void)gguf_find_kv(f, "general.architecture");
        gguf_close(f);
    }
    return 0;
}
