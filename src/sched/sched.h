/* sched.h -- which runner serves a request (design.md §5).
 *
 * One runner process per loaded model; every request for that model shares it, whatever
 * its num_ctx (the runner sizes each request itself). A model is loaded again only when a
 * load-time option differs (use_mmap, flash attention) or its runner died. Several models
 * may be loaded at once, up to max_loaded; a new load is admitted by a memory estimate
 * against free memory, promising each runner its whole growth budget and the resize
 * transient (plan.h), evicting idle models first (shortest remaining keep_alive). What to
 * reuse, wait for, load, evict or reload is decided by the pure sched_plan(). keep_alive per request: 0 unloads when the model becomes idle, negative
 * keeps it forever. A reaper thread unloads expired idle models.
 *
 * A request is a "call": sched_call_start() sends it to the runner, sched_call_next() returns
 * its events in order. Each runner has a reader thread that reads its socket and sorts
 * events into the calls' queues by request id; when the runner dies, every call still open
 * on it gets BW_ERUNNER "model runner stopped: <why>" and the next acquire starts a new one.
 *
 * Threads: every function may be called from any thread (HTTP connection threads); the
 * scheduler's state is guarded by one mutex, each runner's calls by its own. A call is used
 * by one thread at a time. */
#ifndef BELLOWS_SCHED_H
#define BELLOWS_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"
#include "sched/placement.h"
#include "store/names.h"
#include "util/err.h"

struct sched;
struct sched_runner; /* a loaded model; held by acquire, given back by release */
struct sched_call;   /* one request in flight */

struct sched_config {
    const char *exe;               /* the bellows binary (runners are `exe runner ...`) */
    int n_parallel;                /* BELLOWS_NUM_PARALLEL (default 4) */
    int max_loaded;                /* BELLOWS_MAX_LOADED_MODELS (default 3) */
    int max_queue;                 /* BELLOWS_MAX_QUEUE (default 512): requests waiting + running */
    int64_t keep_alive_ns;         /* BELLOWS_KEEP_ALIVE (default 5 min) */
    int ctx_cap;                   /* BELLOWS_CONTEXT_LENGTH (0: none) */
    int n_threads;                 /* 0: runner default */
    double idle_shrink_s;          /* runner pool shrink delay (0: runner default) */
    uint64_t memory_limit;         /* bytes the models may use; 0: MemAvailable at each load */
    const char *kv_disk_dir;       /* BELLOWS_KV_CACHE_DIR: runners save KV states there (borrowed) */
    uint64_t kv_disk_budget;       /* BELLOWS_KV_CACHE_DISK bytes; 0: off */
    const char *rpc;               /* BELLOWS_RPC: "host:port,..." whose devices take layers
                                      (placement.h); with any, max_loaded is 1 */
};

/* What to load (from the store). Strings are copied. */
struct sched_model {
    const char *name;              /* display name, the key of the loaded set */
    const char *path;              /* GGUF file */
    uint64_t weights_bytes;        /* tensor bytes (gguf_info) */
    uint64_t kv_bytes_per_cell;    /* what one more pool cell costs (estimate_grow_bytes_per_cell) */
    uint64_t fixed_kv_bytes;       /* windows, recurrent states, checkpoints (estimate_fixed_kv_bytes) */
    int kv_type;                   /* ESTIMATE_KV_* the two above are in; ESTIMATE_KV_AUTO: they are
                                      f16 and the load picks f16 or q8_0 (sched/plan.h) */
    uint64_t auto_kv_bytes_per_cell, auto_fixed_kv_bytes; /* ESTIMATE_KV_AUTO: the same in q8_0 */
    int n_ctx_train;
    int n_layer;                   /* transformer blocks (GPU placement) */
    bool use_mmap;                 /* load-time options: a change reloads */
    bool flash_attn;
    int num_gpu;                   /* layers to offload; -1: decided by the memory estimate */
};

int sched_new(const struct sched_config *cfg, struct sched **out, struct bw_err *err);
/* Unloads everything (runners exit) and frees. No call may be in use. */
void sched_free(struct sched *s);

/* Returns the runner for m, loading it when needed (concurrent acquires of one model wait
 * for the same load). The caller must sched_release() it. Errors: BW_EBUSY (queue full:
 * 503), BW_EINVAL (the model cannot be loaded: corrupt GGUF...), BW_ENOMEM (does not fit
 * even after evicting idle models), BW_ERUNNER / BW_EIO (the runner could not start). */
int sched_acquire(struct sched *s, const struct sched_model *m, struct sched_runner **out, struct bw_err *err);

/* Gives a runner back. keep_alive_ns: new expiry from now (< 0 forever, 0 unload when idle,
 * SCHED_KEEP_ALIVE_DEFAULT the configured default). */
#define SCHED_KEEP_ALIVE_DEFAULT INT64_MIN
void sched_release(struct sched *s, struct sched_runner *r, int64_t keep_alive_ns);

/* Sends req (its id is assigned here) on runner r. Returns BW_OK with *out (end it with
 * sched_call_end), or BW_ERUNNER when the runner is gone. */
int sched_call_start(struct sched_runner *r, struct proto_request *req, struct sched_call **out, struct bw_err *err);

/* Next event of the call: 1 with *ev (free with proto_event_free), 0 on timeout
 * (timeout_ms < 0: wait forever), or BW_ERUNNER with err "model runner stopped: ..." when
 * the runner died before the call finished. After a DONE or ERROR event, no more come.
 * A call's queue is bounded: when its consumer stops calling this, the runner is asked to
 * pause the call past 64 KiB of queued events and to resume it once the consumer has read
 * it down to 16 KiB (nothing is lost); should 256 KiB still come (what the runner sent
 * before the pause), the call is cancelled and its next event after what is queued is an
 * ERROR (BW_EBUSY, "the client stopped reading: generation cancelled"). */
int sched_call_next(struct sched_call *c, struct proto_event *ev, int timeout_ms, struct bw_err *err);

/* Asks the runner to stop the request (client went away); events still drain normally. */
void sched_call_cancel(struct sched_call *c);
void sched_call_end(struct sched_call *c);

/* Unloads the model now if loaded (waits for nothing: in-flight calls fail). Returns
 * BW_OK, or BW_ENOTFOUND when it was not loaded. */
int sched_unload(struct sched *s, const char *name);

/* Ollama's expireRunner: the model unloads as soon as it is idle (now, when it is), without
 * loading anything -- what `keep_alive: 0` on an empty generate/chat asks. Requests in
 * flight finish first; one that acquires the model meanwhile keeps it (its keep_alive
 * decides again). Returns BW_OK, or BW_ENOTFOUND when the model was not loaded. */
int sched_expire(struct sched *s, const char *name);

/* What /api/ps shows. */
struct sched_loaded {
    char name[NAMES_FULL_MAX + 1]; /* the longest model name fits: never cut */
    char path[1024];
    pid_t pid;
    uint64_t size_estimate;       /* bytes at load: weights, initial pool, compute */
    uint64_t reserved_bytes;      /* bytes admission promised it: growth budget and resize transient (plan.h) */
    int64_t expires_at_unix_ns;   /* 0: never */
    int n_calls;                  /* requests in flight */
    int loads;                    /* how many times this model was loaded since start */
    struct engine_status status;  /* live pool status from the runner */
    struct placed_device devices[PLACEMENT_MAX_DEVICES]; /* where its layers are: CPU first */
    int n_devices;
};
/* Fills up to max entries; returns how many models are loaded. Asks each runner for its
 * status (a short round trip). */
size_t sched_list(struct sched *s, struct sched_loaded *out, size_t max);

/* Counters for /metrics. */
struct sched_counters {
    uint64_t loads, unloads, evictions, runner_deaths, rejected_busy;
    int queue_depth, loaded;
};
void sched_counters(struct sched *s, struct sched_counters *out);

/* Parses a keep_alive value as Ollama does: a Go duration string ("5m", "1h30m", "-1s",
 * "0") or a number of seconds. Returns BW_OK with nanoseconds in *ns (negative: forever),
 * or BW_EINVAL. Pure. */
int sched_parse_duration(const char *s, int64_t *ns);

#endif
