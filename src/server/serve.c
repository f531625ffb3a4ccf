/* serve.c -- `bellows serve`: configuration from the environment (and a few flags), the
 * store, the scheduler, the API and the HTTP listener; then wait for SIGINT/SIGTERM and
 * take everything down in reverse order (runners exit with the scheduler). */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/ui_assets.h"
#include "cli/cli.h"
#include "sched/estimate.h"
#include "sched/sched.h"
#include "server/http.h"
#include "server/serve_config.h"
#include "store/store.h"
#include "util/log.h"
#include "version.h"

/* The demo model the build generates sits next to the binary: build/src/bellows ->
 * build/models/demo.gguf. BELLOWS_DEMO_MODEL overrides. */
static bool demo_model_path(char *buf, size_t len)
{
    const char *env = getenv("BELLOWS_DEMO_MODEL");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return access(buf, R_OK) == 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    snprintf(buf, len, "%s/../models/demo.gguf", dirname(exe));
    return access(buf, R_OK) == 0;
}

/* Whether ROOT (a store's real path) is Bellows' own default store, ~/.bellows/models. */
static bool is_own_store(const char *root)
{
    const char *home = getenv("HOME");
    char own[PATH_MAX], abs[PATH_MAX];
    if (!home || !*home || snprintf(own, sizeof own, "%s/.bellows/models", home) >= (int)sizeof own)
        return false;
    return realpath(own, abs) && !strcmp(abs, root);
}

/* On the first start of Bellows' own store, add the demo model as `demo` (a marker file
 * remembers it, so a user who deletes it is not overruled). Any other store -- an Ollama
 * store that BELLOWS_MODELS points at, whose other users would list the model too -- gets
 * nothing written into it, unless BELLOWS_DEMO_MODEL names the GGUF: then the operator
 * asked for it (the tests do, on their temporary stores). */
static void ensure_demo(struct store *st)
{
    const char *asked = getenv("BELLOWS_DEMO_MODEL");
    if (!(asked && *asked) && !is_own_store(store_root(st))) {
        LOG(LOG_DEBUG, "serve", "no demo model for %s: not Bellows' own store", store_root(st));
        return;
    }
    char marker[PATH_MAX], path[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/.bellows-demo-created", store_root(st));
    if (access(marker, F_OK) == 0 || !demo_model_path(path, sizeof path))
        return;
    struct store_model *m;
    if (store_resolve(st, "demo", &m, NULL) == BW_OK) {
        store_model_free(m);
    } else {
        struct store_create c = {.from_path = path,
                                 .system = NULL,
                                 /* sampled answers end by themselves; greedy ones never do */
                                 .params = "{\"num_predict\":128,\"stop\":[\"<|im_end|>\"]}"};
        struct bw_err err;
        if (store_create(st, "demo", &c, &err) != BW_OK) {
            LOG(LOG_WARN, "serve", "could not add the demo model: %s", err.msg);
            return;
        }
        LOG(LOG_INFO, "serve", "added the demo model as 'demo' (a bigram of the docs' words in a tiny qwen2: "
                               "English words, no sense)");
    }
    FILE *f = fopen(marker, "w");
    if (f)
        fclose(f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows serve [--host ADDR[:PORT]] [--models DIR] [--rpc HOST:PORT[,HOST:PORT...]]\n"
               "Starts the server. Configured by the environment (flags override):\n\n");
    serve_config_print_env_help(f);
}

int cli_serve(int argc, char **argv)
{
    struct serve_config cfg;
    struct bw_err err;
    if (serve_config_from_env(&cfg, &err) != BW_OK) {
        fprintf(stderr, "bellows serve: %s\n", err.msg);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bellows serve: unknown option %s\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--host")) {
            if (serve_config_parse_host(v, cfg.host, sizeof cfg.host, &cfg.port, &err) != BW_OK) {
                fprintf(stderr, "bellows serve: %s\n", err.msg);
                return 2;
            }
        } else if (!strcmp(a, "--models")) {
            snprintf(cfg.models, sizeof cfg.models, "%s", v);
        } else if (!strcmp(a, "--rpc")) {
            if (serve_config_set_rpc(&cfg, v, "--rpc", &err) != BW_OK) {
                fprintf(stderr, "bellows serve: %s\n", err.msg);
                return 2;
            }
        } else {
            fprintf(stderr, "bellows serve: unknown option %s\n", a);
            return 2;
        }
    }

    /* Block the signals in every thread; the main thread waits for them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct store *store = NULL;
    struct sched *sched = NULL;
    struct api *api = NULL;
    struct http_server *http = NULL;
    int rc = 1;
    if (store_open(cfg.models, &store, &err) != BW_OK) {
        fprintf(stderr, "bellows serve: model store %s: %s\n", cfg.models, err.msg);
        goto out;
    }
    ensure_demo(store);

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "bellows serve: cannot find its own executable\n");
        goto out;
    }
    exe[n] = '\0';
    if (cfg.kv_disk == UINT64_MAX)
        cfg.kv_disk = cfg.kv_dir[0] ? serve_config_kv_default_budget(cfg.kv_dir) : 0;
    if (cfg.kv_dir[0] && cfg.kv_disk)
        LOG(LOG_INFO, "serve", "saved KV states: %s, up to %.1f GiB", cfg.kv_dir, cfg.kv_disk / 1073741824.0);
    struct sched_config sc = {.exe = exe,
                              .n_parallel = cfg.num_parallel,
                              .max_loaded = cfg.max_loaded,
                              .max_queue = cfg.max_queue,
                              .keep_alive_ns = cfg.keep_alive_ns,
                              .ctx_cap = cfg.context_length,
                              .n_threads = cfg.num_threads,
                              .idle_shrink_s = cfg.idle_shrink_s,
                              .memory_limit = cfg.memory_limit,
                              .kv_disk_dir = cfg.kv_dir[0] ? cfg.kv_dir : NULL,
                              .kv_disk_budget = cfg.kv_disk,
                              .rpc = cfg.rpc[0] ? cfg.rpc : NULL};
    if (sched_new(&sc, &sched, &err) != BW_OK) {
        fprintf(stderr, "bellows serve: %s\n", err.msg);
        goto out;
    }
    if (cfg.kv_type != ESTIMATE_KV_F16 && !cfg.flash_attn)
        LOG(LOG_WARN, "serve", "BELLOWS_KV_CACHE_TYPE=%s needs flash attention, which BELLOWS_FLASH_ATTENTION turns off: "
            "using f16", cfg.kv_type == ESTIMATE_KV_AUTO ? "auto" : estimate_kv_type_name(cfg.kv_type));
    struct api_config ac = {.store = store, .sched = sched, .flash_attn = cfg.flash_attn,
                            .kv_type = cfg.flash_attn ? cfg.kv_type : ESTIMATE_KV_F16,
                            .n_parallel = cfg.num_parallel, .limits = cfg.limits,
                            .kv_dir = cfg.kv_dir[0] ? cfg.kv_dir : NULL, .kv_disk_budget = cfg.kv_disk};
    if (api_new(&ac, &api, &err) != BW_OK) {
        fprintf(stderr, "bellows serve: %s\n", err.msg);
        goto out;
    }
    struct http_config hc = {.host = cfg.host,
                             .port = cfg.port,
                             .max_body = cfg.max_body,
                             .api_key = cfg.api_key,
                             .origins = cfg.origins,
                             .public_paths = ui_public_paths, /* "/", "/health" and the chat page's files */
                             .handler = api_handle,
                             .handler_ud = api,
                             .begin = api_begin,
                             .threads = cfg.http_threads,
                             .max_connections = cfg.max_connections,
                             .max_connections_per_ip = cfg.max_connections_per_ip,
                             .idle_timeout_s = cfg.idle_timeout_s,
                             .write_timeout_ms = cfg.write_timeout_ms};
    if (http_start(&hc, &http, &err) != BW_OK) {
        fprintf(stderr, "bellows serve: %s\n", err.msg);
        goto out;
    }
    LOG(LOG_INFO, "serve", "Bellows %s listening on http://%s%s%s:%d (models in %s, %d parallel, keep_alive %.0fs%s)",
        BELLOWS_VERSION, strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "",
        http_port(http), store_root(store), sc.n_parallel, cfg.keep_alive_ns / 1e9,
        cfg.api_key[0] ? ", API key required" : "");

    int sig = 0;
    sigwait(&sigs, &sig);
    LOG(LOG_INFO, "serve", "%s: shutting down", strsignal(sig));
    rc = 0;
out:
    http_stop(http);
    sched_free(sched);
    api_free(api);
    store_close(store);
    return rc;
}
