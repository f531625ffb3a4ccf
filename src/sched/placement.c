/* placement.c -- see placement.h. */
#include "sched/placement.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sched/devices.h"
#include "util/log.h"

#define PROBE_TIMEOUT_MS 3000 /* per step: an answer on a LAN takes milliseconds */

int rpc_set_init(struct rpc_set *set, const char *list, struct bw_err *err)
{
    memset(set, 0, sizeof *set);
    pthread_mutex_init(&set->mu, NULL);
    char eps[RPC_MAX_ENDPOINTS][RPC_ENDPOINT_MAX];
    int n = rpc_parse_endpoints(list, eps, RPC_MAX_ENDPOINTS, err);
    if (n < 0) {
        pthread_mutex_destroy(&set->mu);
        return n;
    }
    for (int i = 0; i < n; i++)
        memcpy(set->e[i].endpoint, eps[i], sizeof set->e[i].endpoint); /* same size, NUL-terminated */
    set->n = n;
    return BW_OK;
}

void rpc_set_free(struct rpc_set *set)
{
    pthread_mutex_destroy(&set->mu);
}

static uint64_t sum_free(const struct rpc_endpoint_info *in)
{
    uint64_t s = 0;
    for (int d = 0; d < in->n_devices; d++)
        s += in->free_bytes[d];
    return s;
}

void rpc_set_probe_all(struct rpc_set *set)
{
    pthread_mutex_lock(&set->mu);
    for (int i = 0; i < set->n; i++) {
        struct rpc_server_state *e = &set->e[i];
        struct bw_err err;
        e->up = rpc_probe(e->endpoint, PROBE_TIMEOUT_MS, &e->info, &err) == BW_OK;
        if (e->up)
            LOG(LOG_INFO, "sched", "RPC server %s: %d device(s), %" PRIu64 " MiB free (protocol %d.%d.%d)",
                e->endpoint, e->info.n_devices, sum_free(&e->info) >> 20, e->info.proto_major, e->info.proto_minor,
                e->info.proto_patch);
        else
            LOG(LOG_WARN, "sched", "%s: models will not load until it answers", err.msg);
    }
    pthread_mutex_unlock(&set->mu);
}

uint64_t rpc_set_free_bytes(struct rpc_set *set)
{
    uint64_t s = 0;
    pthread_mutex_lock(&set->mu);
    for (int i = 0; i < set->n; i++)
        if (set->e[i].up)
            s += sum_free(&set->e[i].info);
    pthread_mutex_unlock(&set->mu);
    return s;
}

void rpc_set_mark_suspect(struct rpc_set *set, uint32_t mask)
{
    pthread_mutex_lock(&set->mu);
    for (int i = 0; i < set->n; i++)
        if (mask & (1u << i))
            set->e[i].suspect = true;
    pthread_mutex_unlock(&set->mu);
}

/* Probes the servers for a load: fills the used ones' devices into dev/names after the
 * n local ones. Returns the new device count, or an error. */
static int probe_for_load(struct rpc_set *set, const char *model_name, struct estimate_device *dev,
                          struct placed_device *names, size_t n, size_t max, struct placement *out, char *lost,
                          size_t lost_len, struct bw_err *err)
{
    int rpc_dev = 0; /* ggml numbers RPC devices from 0 in the order they are added */
    size_t off = 0, lost_off = 0;
    for (int i = 0; i < set->n; i++) {
        struct rpc_server_state *e = &set->e[i];
        struct bw_err perr;
        e->up = rpc_probe(e->endpoint, PROBE_TIMEOUT_MS, &e->info, &perr) == BW_OK;
        if (!e->up && !e->suspect)
            return bw_errf(err, BW_EIO, "%s", perr.msg);
        if (!e->up) {
            LOG(LOG_WARN, "sched", "%s: it stopped while a runner used it; loading %s without it", perr.msg,
                model_name);
            lost_off += (size_t)snprintf(lost + lost_off, lost_off < lost_len ? lost_len - lost_off : 0, "%s%s",
                                         lost_off ? ", " : "", e->endpoint);
            continue;
        }
        e->suspect = false;
        out->rpc_used |= 1u << i;
        off += (size_t)snprintf(out->rpc + off, off < sizeof out->rpc ? sizeof out->rpc - off : 0, "%s%s",
                                off ? "," : "", e->endpoint);
        for (int d = 0; d < e->info.n_devices && n < max; d++, rpc_dev++, n++) {
            dev[n].free_bytes = e->info.free_bytes[d];
            snprintf(names[n].name, sizeof names[n].name, "RPC%d", rpc_dev);
            snprintf(names[n].endpoint, sizeof names[n].endpoint, "%s", e->endpoint);
        }
    }
    return (int)n;
}

/* The shown list: CPU first, then each device with layers (past the table: summed into
 * its last entry, named "others"). */
static void record(struct placement *out, const struct placed_device *names, const int *per_dev, size_t n,
                   int cpu_layers)
{
    out->n_dev = 0;
    out->dev[out->n_dev++] = (struct placed_device){.name = "CPU", .layers = cpu_layers};
    for (size_t i = 0; i < n; i++) {
        if (per_dev[i] <= 0)
            continue;
        if (out->n_dev == PLACEMENT_MAX_DEVICES) {
            struct placed_device *last = &out->dev[PLACEMENT_MAX_DEVICES - 1];
            snprintf(last->name, sizeof last->name, "others");
            last->endpoint[0] = '\0';
            last->layers += per_dev[i];
            continue;
        }
        out->dev[out->n_dev] = names[i];
        out->dev[out->n_dev++].layers = per_dev[i];
    }
}

int placement_plan(struct rpc_set *set, const char *model_name, int n_layer, uint64_t weights_bytes,
                   uint64_t reserve_bytes, int num_gpu, uint64_t local_free_bytes, struct placement *out,
                   struct bw_err *err)
{
    memset(out, 0, sizeof *out);
    out->n_gpu_layers = -1;
    enum { MAX = 16 + RPC_MAX_ENDPOINTS * 2 };
    struct estimate_device dev[MAX];
    struct placed_device names[MAX];
    memset(names, 0, sizeof names);
    char gpu_names[16][64];
    size_t n = devices_list_gpus(dev, gpu_names, 16);
    for (size_t i = 0; i < n; i++)
        memcpy(names[i].name, gpu_names[i], sizeof names[i].name); /* both 64 bytes */
    char lost[512] = "";
    pthread_mutex_lock(&set->mu);
    int rc = probe_for_load(set, model_name, dev, names, n, MAX, out, lost, sizeof lost, err);
    pthread_mutex_unlock(&set->mu);
    if (rc < 0)
        return rc;
    n = (size_t)rc;
    int layers = n_layer > 0 ? n_layer + 1 : 0; /* + the output layer */
    uint64_t layer_bytes = layers ? weights_bytes / (uint64_t)layers : 0;
    int per_dev[MAX] = {0};
    int total = n ? estimate_place_layers(dev, n, layers, layer_bytes, reserve_bytes, num_gpu, per_dev) : 0;
    if (lost[0] && (uint64_t)(layers - total) * layer_bytes > local_free_bytes)
        return bw_errf(err, BW_ENOMEM, "RPC server %s stopped, and without it %s needs ~%" PRIu64 " MiB here, %" PRIu64
                       " MiB free: start it again", lost, model_name,
                       ((uint64_t)(layers - total) * layer_bytes) >> 20, local_free_bytes >> 20);
    record(out, names, per_dev, n, layers - total);
    if (n == 0 || layers == 0)
        return BW_OK; /* the CPU only: the runner's defaults */
    out->n_gpu_layers = total;
    size_t off = 0;
    for (size_t i = 0; i < n && n > 1 && off < sizeof out->tensor_split; i++)
        off += (size_t)snprintf(out->tensor_split + off, sizeof out->tensor_split - off, "%s%d", i ? "," : "",
                                per_dev[i]);
    if (total == 0)
        out->tensor_split[0] = '\0';
    char shown[512] = "";
    off = 0;
    for (int i = 0; i < out->n_dev && off < sizeof shown; i++)
        off += (size_t)snprintf(shown + off, sizeof shown - off, "%s%s%s%s%s %d", i ? ", " : "", out->dev[i].name,
                                out->dev[i].endpoint[0] ? " (" : "", out->dev[i].endpoint,
                                out->dev[i].endpoint[0] ? ")" : "", out->dev[i].layers);
    LOG(LOG_INFO, "sched", "%s: %d of %d layers on %zu device(s): %s", model_name, total, layers, n, shown);
    return BW_OK;
}
