/* api.h -- the HTTP API of `bellows serve`: Ollama's native routes and the OpenAI routes
 * (spec/api.md), routed from one http handler.
 *
 * JSON (jansson) lives here and nowhere above: bodies are parsed into engine/proto structs,
 * replies are built here. Generation goes through the scheduler (sched.h), model data comes
 * from the store (store.h). Errors map to statuses in one place (api_status_for).
 *
 * Threads: api_handle runs on HTTP connection threads, many at once; the api struct is
 * immutable after api_new except the metrics (atomics) and the GGUF info cache (mutex). */
#ifndef BELLOWS_API_H
#define BELLOWS_API_H

#include <stdint.h>

#include "proto/limits.h"
#include "sched/sched.h"
#include "server/http.h"
#include "store/store.h"

struct api;

struct api_config {
    struct store *store;   /* borrowed */
    struct sched *sched;   /* borrowed */
    bool flash_attn;       /* load-time option given to runners */
    int kv_type;           /* BELLOWS_KV_CACHE_TYPE: ESTIMATE_KV_* or ESTIMATE_KV_AUTO (sched/estimate.h) */
    int n_parallel;        /* BELLOWS_NUM_PARALLEL: sequences per runner, for the memory estimate; 0: 4 */
    struct limits limits;  /* request limits (proto/limits.h); all zero: the defaults */
    const char *kv_dir;    /* saved KV states (/api/cache, api_cache.c); NULL: none. Borrowed */
    uint64_t kv_disk_budget; /* their budget in bytes (BELLOWS_KV_CACHE_DISK; 0: off) */
};

int api_new(const struct api_config *cfg, struct api **out, struct bw_err *err);
void api_free(struct api *a);

/* The http_handler_fn: ud is the struct api. */
void api_handle(void *ud, struct http_request *req);
/* The http_begin_fn (http.h, streamed request bodies): only POST /api/blobs/:digest streams
 * its body; every other route keeps the buffered body and its limit (BELLOWS_MAX_BODY). */
void api_begin(void *ud, struct http_request *req);

/* BW_E code -> HTTP status: EINVAL/ETOOLONG 400, ENOTFOUND 404, EBUSY 503, ENOSPC 507,
 * others 500. */
int api_status_for(int code);

#endif
