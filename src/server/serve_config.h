/* serve_config.h -- the server's settings from BELLOWS_* environment variables.
 * Parsing is pure apart from getenv; every value is validated with a clear message. */
#ifndef BELLOWS_SERVE_CONFIG_H
#define BELLOWS_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/limits.h"
#include "sched/rpc.h"
#include "util/err.h"

struct serve_config {
    char host[256];          /* BELLOWS_HOST, default 127.0.0.1:11434 */
    int port;
    char models[4096];       /* BELLOWS_MODELS, default ~/.bellows/models */
    int64_t keep_alive_ns;   /* BELLOWS_KEEP_ALIVE, default 5m */
    int num_parallel;        /* BELLOWS_NUM_PARALLEL, default 4 */
    int max_loaded;          /* BELLOWS_MAX_LOADED_MODELS, default 3 */
    int max_queue;           /* BELLOWS_MAX_QUEUE, default 512 */
    int context_length;      /* BELLOWS_CONTEXT_LENGTH: operator cap, default none */
    size_t max_body;         /* BELLOWS_MAX_BODY, bytes, default 64 MiB */
    char api_key[256];       /* BELLOWS_API_KEY */
    char origins[1024];      /* BELLOWS_ORIGINS */
    bool flash_attn;         /* BELLOWS_FLASH_ATTENTION, default on */
    int kv_type;             /* BELLOWS_KV_CACHE_TYPE: ESTIMATE_KV_F16 (default), _Q8_0, _Q4_0, _AUTO */
    int num_threads;         /* BELLOWS_NUM_THREADS, default: all cores */
    double idle_shrink_s;    /* BELLOWS_POOL_SHRINK_AFTER, seconds, default 60 */
    uint64_t memory_limit;   /* BELLOWS_MEMORY_LIMIT, bytes for models, default: MemAvailable */
    int http_threads;        /* BELLOWS_HTTP_THREADS: HTTP event-loop threads, default: cores (2..16) */
    int max_connections;     /* BELLOWS_MAX_CONNECTIONS, default 1024 */
    int max_connections_per_ip; /* BELLOWS_MAX_CONNECTIONS_PER_IP, default 0: none */
    int idle_timeout_s;      /* BELLOWS_IDLE_TIMEOUT, seconds, default 120; -1 (from 0): never */
    int write_timeout_ms;    /* BELLOWS_WRITE_TIMEOUT, default 60 s; -1 (from 0): never */
    char kv_dir[4096];       /* BELLOWS_KV_CACHE_DIR, default $XDG_STATE_HOME/bellows/kv or ~/.local/state/bellows/kv */
    uint64_t kv_disk;        /* BELLOWS_KV_CACHE_DISK bytes (0: off); UINT64_MAX until serve_config_kv_budget */
    char rpc[RPC_MAX_ENDPOINTS * RPC_ENDPOINT_MAX]; /* BELLOWS_RPC / serve --rpc: "host:port,..." */
    struct limits limits;    /* BELLOWS_MAX_MESSAGES, BELLOWS_MAX_TOOLS, BELLOWS_MAX_INPUTS (proto/limits.h) */
};

/* Fills cfg from the environment. BW_EINVAL names the variable and the bad value. */
int serve_config_from_env(struct serve_config *cfg, struct bw_err *err);

/* Sets cfg->rpc from a list (BELLOWS_RPC, serve --rpc: `what` names it in the error) after
 * checking it (rpc_parse_endpoints). */
int serve_config_set_rpc(struct serve_config *cfg, const char *list, const char *what, struct bw_err *err);

/* "127.0.0.1:11434", "0.0.0.0", ":8080", "http://localhost:1234", "[::1]:11434". */
int serve_config_parse_host(const char *s, char *host, size_t host_len, int *port, struct bw_err *err);

/* The address a client should use: BELLOWS_HOST (or the default), for the CLI. */
void serve_config_client_url(char *buf, size_t len);

void serve_config_print_env_help(FILE *f);

/* The directory of saved KV states: BELLOWS_KV_CACHE_DIR, else the state directory's kv/
 * ($XDG_STATE_HOME/bellows/kv, ~/.local/state/bellows/kv). Not created. BW_EINVAL when
 * there is no HOME either. For serve and for `bellows rm` (api_models.c). */
int serve_config_kv_dir(char *buf, size_t len, struct bw_err *err);

/* The default disk budget when BELLOWS_KV_CACHE_DISK is unset: a share of the free space of
 * the file system holding dir (or its nearest existing parent). Reads the file system. */
uint64_t serve_config_kv_default_budget(const char *dir);

#endif
