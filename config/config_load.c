/*
 * config_load.c - reading config files (work in progress: the JSON reader
 * lands in the next commit).
 */
#include "config/config_int.h"

struct cfg *cfg_load_string(const char *text, size_t len, const char *name,
                            const char *base_dir, char *err, size_t errlen) {
    cfg__errf(err, errlen, "%s: config files are not supported yet", name ? name : "<string>");
    return NULL;
}

struct cfg *cfg_load_file(const char *path, char *err, size_t errlen) {
    return cfg_load_string(NULL, 0, path, NULL, err, errlen);
}
