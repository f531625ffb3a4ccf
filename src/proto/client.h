/* client.h -- the server's side of one runner: spawn it, send requests, receive events.
 *
 * runner_client_spawn() fork+execs `bellows runner` over a socketpair (the child sees its
 * end as fd 3) and waits for the "ready" frame. The child starts clean: an empty signal
 * mask, every signal at its default disposition, and no descriptor but 0-2 and 3 (every
 * other one is made close-on-exec between fork and exec). An exec failure comes back through a
 * close-on-exec pipe (libuv's habit), a load failure as the runner's "error" frame: both
 * are returned as a BW_E code with the runner's own message.
 *
 * Threads: send may be called from several threads (writes are serialized by a mutex);
 * recv from one thread only (the one that owns the read side). close from one thread,
 * once, when no other thread uses the client. */
#ifndef BELLOWS_CLIENT_H
#define BELLOWS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"

struct runner_client;

struct runner_spawn_opts {
    const char *exe;        /* the bellows binary */
    const char *model;      /* GGUF path */
    int n_parallel;         /* 0: runner default */
    int n_threads;          /* 0: runner default */
    int ctx_cap;            /* 0: none */
    int64_t kv_budget;      /* cells; 0: runner default */
    int n_gpu_layers;       /* layers to offload to GPUs; < 0: the runner's default */
    const char *tensor_split; /* "a,b,..." layers per device (local GPUs, then RPC devices), or NULL */
    const char *rpc;        /* RPC servers (--rpc "host:port,..."), or NULL */
    bool flash_attn_off;
    const char *kv_type;    /* KV cache type (--kv-type): "f16", "q8_0", "q4_0"; NULL: the runner's (f16) */
    bool no_mmap;
    double idle_shrink_s;   /* 0: runner default */
    const char *kv_disk_dir; /* saved KV states (--kv-disk); NULL: none */
    uint64_t kv_disk_budget; /* bytes (--kv-disk-budget); 0: none saved */
    int ready_timeout_ms;   /* 0: 120 s */
};

/* Starts a runner. Returns BW_OK with *out (close with runner_client_close) and a copy of
 * the ready event's numbers in *ready (strings in it are not kept: NULL), or a BW_E code:
 * BW_EIO (spawn failed), BW_EINVAL (the runner could not load the model: err has its
 * reason), BW_ERUNNER (it died or said nothing in time). No child is left behind on error. */
int runner_client_spawn(const struct runner_spawn_opts *o, struct runner_client **out, struct proto_ready *ready,
                        struct bw_err *err);

/* Sends one request frame. BW_OK, or BW_EIO when the runner is gone. */
int runner_client_send(struct runner_client *c, const struct proto_request *r, struct bw_err *err);

/* Sends one small frame (a cancel) only if that does not block: the write lock is free and
 * the socket has room. Returns true when it went out. For the reader thread, which must
 * never wait on the runner (the runner may be blocked writing to it). */
bool runner_client_try_send(struct runner_client *c, const struct proto_request *r);

/* Receives one event. Returns 1 with *ev filled (release with proto_event_free), 0 on
 * timeout (timeout_ms < 0 waits forever), or BW_EIO when the runner closed the socket
 * (it exited) / BW_EINVAL on a corrupt stream. */
int runner_client_recv(struct runner_client *c, struct proto_event *ev, int timeout_ms, struct bw_err *err);

/* The socket to poll() for readability, for callers that multiplex. */
int runner_client_fd(const struct runner_client *c);
pid_t runner_client_pid(const struct runner_client *c);

/* Closes the socket (the runner exits on EOF) and waits up to RUNNER_CLIENT_EOF_GRACE_MS;
 * then sends SIGTERM and waits up to RUNNER_CLIENT_TERM_GRACE_MS; then SIGKILL, and reaps
 * it: no runner outlives this call, none is left a zombie. Returns the child's wait
 * status, or -1 if it had been reaped already. */
/* The EOF grace covers a runner saving its cached sequences to disk (engine_free bounds
 * that at 10 s), so a stopping server does not kill it mid-save. */
#define RUNNER_CLIENT_EOF_GRACE_MS 12000
#define RUNNER_CLIENT_TERM_GRACE_MS 2000
int runner_client_close(struct runner_client *c);

#endif
