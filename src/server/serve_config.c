/* serve_config.c -- see serve_config.h. */
#define _GNU_SOURCE
#include "server/serve_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "sched/estimate.h"
#include "sched/sched.h"
#include "store/store.h"

#define DEFAULT_PORT 11434

/* Ollama trims spaces and quotes from values. */
static const char *env(const char *name, char *buf, size_t len)
{
    const char *v = getenv(name);
    buf[0] = '\0';
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '"' || *v == '\'')
        v++;
    snprintf(buf, len, "%s", v);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '"' || buf[n - 1] == '\''))
        buf[--n] = '\0';
    return n ? buf : NULL;
}

static int env_int(const char *name, int *out, int min, int max, struct bw_err *err)
{
    char buf[64];
    const char *v = env(name, buf, sizeof buf);
    if (!v)
        return BW_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < min || x > max)
        return bw_errf(err, BW_EINVAL, "%s=%s: expected an integer from %d to %d", name, v, min, max);
    *out = (int)x;
    return BW_OK;
}

/* Sizes like 64M, 2G, 1048576. */
static int env_bytes(const char *name, uint64_t *out, struct bw_err *err)
{
    char buf[64];
    const char *v = env(name, buf, sizeof buf);
    if (!v)
        return BW_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    double mult = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mult = 1024.0; end++; break;
    case 'M': mult = 1024.0 * 1024; end++; break;
    case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I')
        end += toupper((unsigned char)end[0]) == 'I' && toupper((unsigned char)end[1]) == 'B' ? 2 : 1;
    if (errno || *end || x <= 0)
        return bw_errf(err, BW_EINVAL, "%s=%s: expected a size such as 64M or 2G", name, v);
    *out = (uint64_t)(x * mult);
    return BW_OK;
}

int serve_config_parse_host(const char *s, char *host, size_t host_len, int *port, struct bw_err *err)
{
    int default_port = DEFAULT_PORT;
    if (!strncmp(s, "http://", 7)) {
        s += 7;
        default_port = 80;
    } else if (!strncmp(s, "https://", 8)) {
        s += 8;
        default_port = 443;
    }
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", s);
    char *slash = strchr(tmp, '/');
    if (slash)
        *slash = '\0';
    const char *h = tmp;
    const char *p = NULL;
    if (tmp[0] == '[') { /* [::1]:11434 */
        char *close = strchr(tmp, ']');
        if (!close)
            return bw_errf(err, BW_EINVAL, "BELLOWS_HOST=%s: unclosed '['", s);
        *close = '\0';
        h = tmp + 1;
        if (close[1] == ':')
            p = close + 2;
    } else {
        char *colon = strrchr(tmp, ':');
        if (colon && strchr(tmp, ':') == colon) {
            *colon = '\0';
            p = colon + 1;
        }
    }
    int pt = default_port;
    if (p && *p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (*end || x < 0 || x > 65535)
            return bw_errf(err, BW_EINVAL, "BELLOWS_HOST=%s: bad port '%s'", s, p);
        pt = (int)x;
    }
    snprintf(host, host_len, "%s", *h ? h : "127.0.0.1");
    if (!strcmp(host, "localhost"))
        snprintf(host, host_len, "127.0.0.1");
    *port = pt;
    return BW_OK;
}

void serve_config_client_url(char *buf, size_t len)
{
    char v[256], host[256];
    int port;
    const char *s = env("BELLOWS_HOST", v, sizeof v);
    if (!s || serve_config_parse_host(s, host, sizeof host, &port, NULL) != BW_OK) {
        snprintf(host, sizeof host, "127.0.0.1");
        port = DEFAULT_PORT;
    }
    if (!strcmp(host, "0.0.0.0"))
        snprintf(host, sizeof host, "127.0.0.1");
    bool v6 = strchr(host, ':') != NULL;
    snprintf(buf, len, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* A timeout: a duration ("60s", "2m", "500ms") or seconds; "0" turns it off. *out stays 0
 * (the HTTP edge's default) when unset, becomes -1 for "off", else the value in seconds
 * (in_seconds, rounded up) or milliseconds. */
static int env_duration_ms(const char *name, int *out, bool in_seconds, struct bw_err *err)
{
    char buf[64];
    const char *v = env(name, buf, sizeof buf);
    if (!v)
        return BW_OK;
    int64_t ns;
    if (sched_parse_duration(v, &ns) != BW_OK || ns < 0 || ns > 86400LL * 1000000000)
        return bw_errf(err, BW_EINVAL, "%s=%s: expected a duration like 60s or 2m (0: never), at most 24h", name, v);
    if (ns == 0)
        *out = -1;
    else
        *out = in_seconds ? (int)((ns + 999999999) / 1000000000) : (int)((ns + 999999) / 1000000);
    return BW_OK;
}

/* The lookup limits_from_env takes: the trimmed value, in a buffer per call site's thread. */
static const char *limits_env(const char *name)
{
    static _Thread_local char buf[64];
    return env(name, buf, sizeof buf);
}

int serve_config_from_env(struct serve_config *c, struct bw_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = DEFAULT_PORT;
    c->keep_alive_ns = 5 * 60 * 1000000000LL;
    c->num_parallel = 4;
    c->max_loaded = 3;
    c->max_queue = 512;
    c->max_body = 64u << 20;
    c->flash_attn = true;
    c->idle_shrink_s = 60;
    limits_defaults(&c->limits);
    char buf[4096];
    int rc;
    if (env("BELLOWS_HOST", buf, sizeof buf) &&
        (rc = serve_config_parse_host(buf, c->host, sizeof c->host, &c->port, err)))
        return rc;
    if (store_default_root(c->models, sizeof c->models, err) != BW_OK)
        return BW_EINVAL;
    if (env("BELLOWS_KEEP_ALIVE", buf, sizeof buf) && sched_parse_duration(buf, &c->keep_alive_ns) != BW_OK)
        return bw_errf(err, BW_EINVAL, "BELLOWS_KEEP_ALIVE=%s: expected a duration like 5m, 1h, -1", buf);
    if ((rc = env_int("BELLOWS_NUM_PARALLEL", &c->num_parallel, 1, 64, err)) ||
        (rc = env_int("BELLOWS_MAX_LOADED_MODELS", &c->max_loaded, 1, 64, err)) ||
        (rc = env_int("BELLOWS_MAX_QUEUE", &c->max_queue, 1, 1 << 20, err)) ||
        (rc = env_int("BELLOWS_CONTEXT_LENGTH", &c->context_length, 0, 1 << 24, err)) ||
        (rc = env_int("BELLOWS_NUM_THREADS", &c->num_threads, 0, 1024, err)))
        return rc;
    uint64_t body = c->max_body;
    if ((rc = env_bytes("BELLOWS_MAX_BODY", &body, err)) || (rc = env_bytes("BELLOWS_MEMORY_LIMIT", &c->memory_limit, err)))
        return rc;
    c->max_body = (size_t)body;
    env("BELLOWS_API_KEY", c->api_key, sizeof c->api_key); /* empty when unset */
    env("BELLOWS_ORIGINS", c->origins, sizeof c->origins);
    if (env("BELLOWS_FLASH_ATTENTION", buf, sizeof buf))
        c->flash_attn = !(strcmp(buf, "0") == 0 || strcasecmp(buf, "false") == 0 || strcasecmp(buf, "off") == 0);
    c->kv_type = ESTIMATE_KV_F16;
    if (env("BELLOWS_KV_CACHE_TYPE", buf, sizeof buf) &&
        (c->kv_type = estimate_kv_type_parse(buf)) == ESTIMATE_KV_INVALID)
        return bw_errf(err, BW_EINVAL, "BELLOWS_KV_CACHE_TYPE=%.64s: expected f16, q8_0, q4_0 or auto", buf);
    if (env("BELLOWS_POOL_SHRINK_AFTER", buf, sizeof buf)) {
        int64_t ns;
        if (sched_parse_duration(buf, &ns) != BW_OK || ns < 0)
            return bw_errf(err, BW_EINVAL, "BELLOWS_POOL_SHRINK_AFTER=%s: expected a duration like 60s", buf);
        c->idle_shrink_s = ns / 1e9;
    }
    if ((rc = env_int("BELLOWS_HTTP_THREADS", &c->http_threads, 0, 256, err)) ||
        (rc = env_int("BELLOWS_MAX_CONNECTIONS", &c->max_connections, 0, 1 << 20, err)) ||
        (rc = env_int("BELLOWS_MAX_CONNECTIONS_PER_IP", &c->max_connections_per_ip, 0, 1 << 20, err)) ||
        (rc = env_duration_ms("BELLOWS_IDLE_TIMEOUT", &c->idle_timeout_s, true, err)) ||
        (rc = env_duration_ms("BELLOWS_WRITE_TIMEOUT", &c->write_timeout_ms, false, err)))
        return rc;
    struct bw_err kv_err;
    if (serve_config_kv_dir(c->kv_dir, sizeof c->kv_dir, &kv_err) != BW_OK)
        c->kv_dir[0] = '\0'; /* no place for it: the disk cache is off, the server still serves */
    c->kv_disk = UINT64_MAX; /* unset: serve_config_kv_default_budget, which reads the disk */
    if (env("BELLOWS_KV_CACHE_DISK", buf, sizeof buf)) {
        if (strtod(buf, NULL) == 0 && strspn(buf, "0.") == strlen(buf))
            c->kv_disk = 0; /* "0": off (env_bytes wants a positive size) */
        else if ((rc = env_bytes("BELLOWS_KV_CACHE_DISK", &c->kv_disk, err)))
            return rc;
    }
    if (env("BELLOWS_RPC", c->rpc, sizeof c->rpc) && (rc = serve_config_set_rpc(c, c->rpc, "BELLOWS_RPC", err)))
        return rc;
    return limits_from_env(&c->limits, limits_env, err);
}

int serve_config_set_rpc(struct serve_config *c, const char *list, const char *what, struct bw_err *err)
{
    char eps[RPC_MAX_ENDPOINTS][RPC_ENDPOINT_MAX];
    struct bw_err e;
    if (rpc_parse_endpoints(list, eps, RPC_MAX_ENDPOINTS, &e) < 0)
        return bw_errf(err, BW_EINVAL, "%s=%.200s: %s", what, list, e.msg);
    if (strlen(list) >= sizeof c->rpc)
        return bw_errf(err, BW_EINVAL, "%s: the list is too long", what);
    if (c->rpc != list)
        snprintf(c->rpc, sizeof c->rpc, "%s", list);
    return BW_OK;
}

int serve_config_kv_dir(char *buf, size_t len, struct bw_err *err)
{
    char v[4096];
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (env("BELLOWS_KV_CACHE_DIR", v, sizeof v))
        n = snprintf(buf, len, "%s", v);
    else if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/bellows/kv", xdg);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.local/state/bellows/kv", home);
    else
        return bw_errf(err, BW_EINVAL, "BELLOWS_KV_CACHE_DIR: neither XDG_STATE_HOME nor HOME is set");
    if (n < 0 || (size_t)n >= len)
        return bw_errf(err, BW_EINVAL, "BELLOWS_KV_CACHE_DIR: the path is too long");
    return BW_OK;
}

uint64_t serve_config_kv_default_budget(const char *dir)
{
    /* 10% of the free space, at most 32 GiB: a 30k-token conversation of a 7B model in f16
     * is ~4 GB of state, so 32 GiB keeps a working set of long conversations across
     * models, while a tenth of what is free never crowds out models being pulled or the
     * user's own files. The directory may not exist yet: its nearest existing parent's
     * file system is the one it will be on. */
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    struct statvfs fs;
    while (statvfs(path, &fs) != 0) {
        char *slash = strrchr(path, '/');
        if (!slash)
            return 0;
        if (slash == path) {
            if (statvfs("/", &fs) != 0)
                return 0;
            break;
        }
        *slash = '\0';
    }
    uint64_t free_bytes = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
    uint64_t share = free_bytes / 10, cap = (uint64_t)32 << 30;
    return share < cap ? share : cap;
}

void serve_config_print_env_help(FILE *f)
{
    fprintf(f, "  BELLOWS_HOST              address to listen on (default 127.0.0.1:11434)\n"
               "  BELLOWS_MODELS            model store (default ~/.bellows/models; an Ollama store works)\n"
               "  BELLOWS_KEEP_ALIVE        how long an idle model stays loaded (default 5m; -1 forever)\n"
               "  BELLOWS_NUM_PARALLEL      requests served at once per model (default 4)\n"
               "  BELLOWS_MAX_LOADED_MODELS models loaded at once (default 3)\n"
               "  BELLOWS_MAX_QUEUE         requests waiting or running before 503 (default 512)\n"
               "  BELLOWS_CONTEXT_LENGTH    cap every request's context (default: the model's maximum)\n"
               "  BELLOWS_MAX_BODY          largest request body (default 64M)\n"
               "  BELLOWS_API_KEY           require Authorization: Bearer <key>\n"
               "  BELLOWS_ORIGINS           extra CORS origins, comma-separated\n"
               "  BELLOWS_FLASH_ATTENTION   0 to turn flash attention off (default on)\n"
               "  BELLOWS_KV_CACHE_TYPE     KV cache type: f16 (default), q8_0 (~1/2 the memory), q4_0 (~0.28),\n"
               "                            auto (q8_0 when a model's maximum context does not fit in f16);\n"
               "                            quantized types need flash attention (else f16)\n"
               "  BELLOWS_NUM_THREADS       CPU threads per runner (default: all cores)\n"
               "  BELLOWS_POOL_SHRINK_AFTER idle time before a KV pool shrinks (default 60s)\n"
               "  BELLOWS_MEMORY_LIMIT      memory models may use (default: what the system has free)\n"
               "  BELLOWS_HTTP_THREADS      HTTP event-loop threads (default: the cores, 2 to 16)\n"
               "  BELLOWS_MAX_CONNECTIONS   open connections; past it the longest idle one is closed (default 1024)\n"
               "  BELLOWS_MAX_CONNECTIONS_PER_IP  open connections per client address (default: no limit)\n"
               "  BELLOWS_IDLE_TIMEOUT      close a connection idle this long (default 120s; 0: never)\n"
               "  BELLOWS_WRITE_TIMEOUT     cancel a stream whose client reads nothing this long (default 60s; 0: never)\n"
               "  BELLOWS_KV_CACHE_DISK     bytes of disk for saved conversations' KV (default 10%% of the free\n"
               "                            space, at most 32G; 0 turns saving off)\n"
               "  BELLOWS_KV_CACHE_DIR      where they are kept, mode 0600 (default ~/.local/state/bellows/kv)\n"
               "  BELLOWS_RPC               RPC servers whose devices take layers: host:port[,host:port...]\n"
               "                            (`bellows rpc-server` on each; docs/distributed.md)\n"
               "  BELLOWS_DEBUG             1 for a log line per decision\n"
               "  BELLOWS_DEMO_MODEL        GGUF added as `demo` on a store's first start\n"
               "                            (default: models/demo.gguf beside the binary's folder,\n"
               "                            into ~/.bellows/models only, never another store)\n");
    limits_print_env_help(f);
}
