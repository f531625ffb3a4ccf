/* placement.h -- where a model's layers go when it loads: local GPUs, the devices of the
 * RPC servers of BELLOWS_RPC (issue 16), and the CPU for the rest. The decision is
 * estimate_place_layers (pure); this module gathers the devices and their free memory
 * (ggml's for local GPUs, rpc_probe for RPC servers) and keeps what the scheduler learnt
 * about each RPC server between loads.
 *
 * RPC servers at a load: each is probed (sched/rpc.h). One that answers is used. One that
 * does not is an error naming it, unless it is *lost*: it stopped while a runner was using
 * it (placement_rpc_lost, called when such a runner dies), in which case the load goes on
 * without it, with a log line, provided the layers it would have had still fit this
 * machine's memory (else the error says so). A lost server that answers again is used again.
 *
 * Threads: every function takes the set's own lock; probes happen only on load paths,
 * when no runner holds the servers (ggml's RPC server serves one client at a time). */
#ifndef BELLOWS_PLACEMENT_H
#define BELLOWS_PLACEMENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/estimate.h"
#include "sched/rpc.h"
#include "util/err.h"

#define PLACEMENT_MAX_DEVICES 8 /* shown per model; more are summed into the last entry */

struct rpc_set {
    pthread_mutex_t mu;
    int n;
    struct rpc_server_state {
        char endpoint[RPC_ENDPOINT_MAX];
        bool up;      /* answered its last probe */
        bool suspect; /* a runner using it died: if it does not answer now, it is lost */
        struct rpc_endpoint_info info;
    } e[RPC_MAX_ENDPOINTS];
};

/* One device and the layers placed on it (for /api/ps). */
struct placed_device {
    char name[64];                  /* "CPU", "CUDA0", "RPC0" (ggml's names, in ggml's order) */
    char endpoint[RPC_ENDPOINT_MAX]; /* an RPC device's server; "" otherwise */
    int layers;
};

struct placement {
    int n_gpu_layers;               /* for the runner (--gpu-layers); -1: no device but the CPU */
    char tensor_split[256];         /* layers per device, "a,b,..." ("" for one device) */
    char rpc[RPC_MAX_ENDPOINTS * RPC_ENDPOINT_MAX]; /* --rpc: the servers used, "" for none */
    uint32_t rpc_used;              /* bit i: rpc_set entry i is used */
    struct placed_device dev[PLACEMENT_MAX_DEVICES];
    int n_dev;
};

/* Parses BELLOWS_RPC's list into set (0 endpoints for NULL/""). BW_EINVAL on a bad list. */
int rpc_set_init(struct rpc_set *set, const char *list, struct bw_err *err);
void rpc_set_free(struct rpc_set *set);

/* Probes every server (at server start, when none is in use), logging what each has. */
void rpc_set_probe_all(struct rpc_set *set);

/* Free bytes of the devices of the servers that answered their last probe. */
uint64_t rpc_set_free_bytes(struct rpc_set *set);

/* A runner that used the servers of mask died: those that do not answer at the next
 * load are lost (loaded without) rather than an error. */
void rpc_set_mark_suspect(struct rpc_set *set, uint32_t mask);

/* The placement of a model of n_layer blocks (+ the output layer) of weights_bytes, with
 * reserve_bytes per device for KV and compute, num_gpu capping offloaded layers (-1: as
 * many as fit): probes set's servers (above), lists local GPUs, places. BW_EIO naming an
 * RPC server that does not answer and is not lost; BW_ENOMEM when one is lost and what
 * stays on the CPU needs more than local_free_bytes. Local-only models (no GPU, no RPC)
 * get everything on the CPU. Logs what it decided. */
int placement_plan(struct rpc_set *set, const char *model_name, int n_layer, uint64_t weights_bytes,
                   uint64_t reserve_bytes, int num_gpu, uint64_t local_free_bytes, struct placement *out,
                   struct bw_err *err);

#endif
