/*
 * main.c - llmpin's command line. Only argument handling lives here:
 *
 *   llmpin serve   run the proxy (config file, or flags for a quick start)
 *   llmpin check   validate a config file without serving (like nginx -t)
 *   llmpin verify  hash and describe a GGUF file, print a config snippet
 *   llmpin drift   inspect the drift store (status, report, probe, compare)
 *   llmpin version
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "drift/drift.h"
#include "localmodel/verify.h"
#include "localmodel/tokcli.h"
#include "proxy/app.h"

#define LLMPIN_VERSION "0.1.0"

static void usage(FILE *f) {
    fputs("usage:\n"
          "  llmpin serve --config FILE [--listen HOST:PORT] [--log-level L] [--no-drift]\n"
          "  llmpin serve --listen 127.0.0.1:8080 --upstream URL [--api-key-env NAME]\n"
          "               [--model FILE --sha256 HEX [--model-name NAME]] [--drift-db FILE]\n"
          "  llmpin check --config FILE\n"
          "  llmpin verify FILE\n"
          "  llmpin tokenize FILE [--special] [--no-bos] [--ids-only] TEXT|-\n"
          "  llmpin drift status|report|probe|compare ... (--config FILE | --drift-db FILE)\n"
          "  llmpin version\n"
          "\n"
          "serve options:\n"
          "  --config FILE        JSON config (comments allowed); see config/example.json\n"
          "  --listen HOST:PORT   address to listen on (port 0: any free port)\n"
          "  --upstream URL       forward every model to this OpenAI-compatible base URL\n"
          "  --api-key-env NAME   environment variable holding the upstream's API key\n"
          "  --model FILE         serve a local GGUF model (needs --sha256 HEX or --sha256 unpinned)\n"
          "  --model-name NAME    name clients use for it (default: file name without .gguf)\n"
          "  --log-level L        debug | info | warn | error\n"
          "  --drift-db FILE      drift store (SQLite); --no-drift turns recording off\n"
          "  --ready-file FILE    write HOST:PORT to FILE once listening\n",
          f);
}

/* Split "host:port" / "[v6]:port". Returns 0 or -1. */
static int parse_listen(const char *s, char **host, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || end == colon + 1) return -1;
    size_t hl = (size_t)(colon - s);
    char *h = util_xmalloc(hl + 1);
    memcpy(h, s, hl);
    h[hl] = 0;
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = 0;
    }
    *host = h;
    *port = (int)p;
    return 0;
}

static char *basename_noext(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = util_strdup(b);
    size_t n = strlen(s);
    if (n > 5 && strcmp(s + n - 5, ".gguf") == 0) s[n - 5] = 0;
    return s;
}

/* Append a route to c (arrays grow by one). */
static struct cfg_route *add_route(struct cfg *c, const char *name, const char *match, enum cfg_route_mode mode) {
    c->routes = util_xrealloc(c->routes, (c->n_routes + 1) * sizeof *c->routes);
    struct cfg_route *r = &c->routes[c->n_routes++];
    memset(r, 0, sizeof *r);
    r->name = util_strdup(name);
    r->match = util_xcalloc(1, sizeof *r->match);
    r->match[0] = util_strdup(match);
    r->n_match = 1;
    cfg_route_init(r);
    r->mode = mode;
    r->targets = util_xcalloc(1, sizeof *r->targets);
    r->n_targets = 1;
    cfg_target_init(&r->targets[0]);
    return r;
}

static int cmd_serve(int argc, char **argv) {
    const char *config = NULL, *listen = NULL, *level = NULL, *upstream = NULL, *key_env = NULL;
    const char *model = NULL, *sha = NULL, *model_name = NULL, *ready = NULL, *drift_db = NULL;
    int no_drift = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--config") == 0) dst = &config;
        else if (strcmp(a, "--listen") == 0) dst = &listen;
        else if (strcmp(a, "--log-level") == 0) dst = &level;
        else if (strcmp(a, "--upstream") == 0) dst = &upstream;
        else if (strcmp(a, "--api-key-env") == 0) dst = &key_env;
        else if (strcmp(a, "--model") == 0) dst = &model;
        else if (strcmp(a, "--sha256") == 0) dst = &sha;
        else if (strcmp(a, "--model-name") == 0) dst = &model_name;
        else if (strcmp(a, "--ready-file") == 0) dst = &ready;
        else if (strcmp(a, "--drift-db") == 0) dst = &drift_db;
        else if (strcmp(a, "--no-drift") == 0) { no_drift = 1; continue; }
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); return 0; }
        else {
            fprintf(stderr, "llmpin serve: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "llmpin serve: %s needs a value\n", a);
            return 2;
        }
        *dst = argv[++i];
    }
    if (!config && !upstream && !model) {
        fprintf(stderr, "llmpin serve: give --config FILE, or --upstream URL and/or --model FILE\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    struct cfg *c = config ? cfg_load_file(config, err, sizeof err) : cfg_new_default();
    if (!c) {
        fprintf(stderr, "llmpin: %s\n", err);
        return 1;
    }
    if (listen) {
        char *host;
        int port;
        if (parse_listen(listen, &host, &port) != 0) {
            fprintf(stderr, "llmpin serve: --listen: expected HOST:PORT (e.g. 127.0.0.1:8080), got \"%s\"\n", listen);
            cfg_free(c);
            return 2;
        }
        free(c->server.listen_host);
        c->server.listen_host = host;
        c->server.listen_port = port;
    }
    if (level) {
        if (log_level_parse(level) < 0) {
            fprintf(stderr, "llmpin serve: --log-level: expected debug, info, warn or error\n");
            cfg_free(c);
            return 2;
        }
        free(c->server.log_level);
        c->server.log_level = util_strdup(level);
    }
    if (drift_db) {
        free(c->drift.db_path);
        c->drift.db_path = util_strdup(drift_db);
    }
    if (model) {
        if (!sha) {
            fprintf(stderr, "llmpin serve: --model needs --sha256 HEX (run `llmpin verify %s` to get it) "
                            "or --sha256 unpinned\n", model);
            cfg_free(c);
            return 2;
        }
        char *name = model_name ? util_strdup(model_name) : basename_noext(model);
        c->local_models = util_xrealloc(c->local_models, (c->n_local_models + 1) * sizeof *c->local_models);
        struct cfg_local_model *m = &c->local_models[c->n_local_models++];
        memset(m, 0, sizeof *m);
        m->name = name;
        m->path = util_strdup(model);
        m->sha256 = util_strdup(sha);
        for (char *p = m->sha256; *p; p++)
            if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
        m->max_queue = 64;
        m->max_batch = 8;
        struct cfg_route *r = add_route(c, name, name, CFG_MODE_LOCAL);
        r->targets[0].local = util_strdup(name);
    }
    if (upstream) {
        c->upstreams = util_xrealloc(c->upstreams, (c->n_upstreams + 1) * sizeof *c->upstreams);
        struct cfg_upstream *u = &c->upstreams[c->n_upstreams++];
        memset(u, 0, sizeof *u);
        u->name = util_strdup("default");
        u->kind = CFG_UPSTREAM_OPENAI;
        u->base_url = util_strdup(upstream);
        size_t n = strlen(u->base_url);
        while (n > 0 && u->base_url[n - 1] == '/') u->base_url[--n] = 0;
        if (key_env) {
            u->api_key_env = util_strdup(key_env);
            const char *v = getenv(key_env);
            if (v && *v) u->api_key = util_strdup(v);
            else fprintf(stderr, "llmpin: warning: --api-key-env %s: the variable is not set\n", key_env);
        }
        cfg_upstream_init(u);
        struct cfg_route *r = add_route(c, "default", "*", CFG_MODE_REMOTE);
        r->targets[0].upstream = util_strdup("default");
    }
    if (cfg_validate(c, err, sizeof err) != 0) {
        fprintf(stderr, "llmpin: %s\n", err);
        cfg_free(c);
        return 1;
    }
    struct app_opts o = {.config_path = config, .cfg = c, .ready_file = ready, .no_drift = no_drift,
                         .listen_from_cmdline = listen != NULL, .log_level_cmdline = level};
    return app_run(&o);
}

static int cmd_check(int argc, char **argv) {
    const char *config = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[++i];
        else if (!config && argv[i][0] != '-') config = argv[i];
        else {
            fprintf(stderr, "llmpin check: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "usage: llmpin check --config FILE\n");
        return 2;
    }
    char err[1024];
    struct cfg *c = cfg_load_file(config, err, sizeof err);
    if (!c) {
        fprintf(stderr, "llmpin: %s\n", err);
        return 1;
    }
    printf("%s: ok (%zu upstreams, %zu local models, %zu routes, %zu client keys)\n", config, c->n_upstreams,
           c->n_local_models, c->n_routes, c->n_keys);
    for (size_t i = 0; i < c->n_local_models; i++)
        if (access(c->local_models[i].path, R_OK) != 0)
            printf("warning: local_models.%s.path: %s is not readable\n", c->local_models[i].name,
                   c->local_models[i].path);
    cfg_free(c);
    return 0;
}

static int cmd_verify(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: llmpin verify FILE.gguf\n");
        return 2;
    }
    char err[1024];
    if (lm_verify_report(argv[0], isatty(2), stdout, err, sizeof err) != 0) {
        fprintf(stderr, "llmpin verify: %s\n", err);
        return 1;
    }
    return 0;
}

/* `llmpin drift ... --config FILE`: resolve the store path, then hand over. */
static int cmd_drift(int argc, char **argv) {
    char **args = util_xcalloc((size_t)argc + 4, sizeof *args);
    int n = 0;
    struct cfg *c = NULL;
    args[n++] = "drift";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            char err[1024];
            c = cfg_load_file(argv[++i], err, sizeof err);
            if (!c) {
                fprintf(stderr, "llmpin: %s\n", err);
                free(args);
                return 1;
            }
            args[n++] = "--drift-db";
            args[n++] = c->drift.db_path;
            continue;
        }
        args[n++] = argv[i];
    }
    int rc = drift_cli_main(n, args);
    cfg_free(c);
    free(args);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0) return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "verify") == 0) return cmd_verify(argc - 2, argv + 2);
    if (strcmp(cmd, "tokenize") == 0) return lm_tokenize_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "drift") == 0) return cmd_drift(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("llmpin %s\n", LLMPIN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "llmpin: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
