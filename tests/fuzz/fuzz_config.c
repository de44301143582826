/*
 * fuzz_config.c - libFuzzer target for the config loader (clang only):
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DLLMPIN_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_config
 *   ./build-fuzz/tests/config/fuzz_config -max_len=8192 config/
 * Any input must load or fail with a message; a loaded config must pass
 * cfg_validate. Crashes, leaks and UB are the findings.
 */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    struct cfg *c = cfg_load_string((const char *)data, size, "fuzz.json", "/cfg", err, sizeof(err));
    if (c) {
        if (cfg_validate(c, err, sizeof(err)) != 0) abort();
        cfg_free(c);
    } else if (strncmp(err, "fuzz.json", 9) != 0) {
        abort();
    }
    return 0;
}
