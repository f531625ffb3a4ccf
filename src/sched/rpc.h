/* rpc.h -- the RPC servers a model's layers may be placed on (BELLOWS_RPC, issue 16).
 *
 * ggml's RPC backend (ggml-rpc.h) makes another machine's devices usable as if they were
 * local GPUs: `bellows rpc-server` on each machine, BELLOWS_RPC=host:port,... on the
 * server, whose runners register those endpoints (ggml_backend_rpc_add_server) before
 * loading a model. Two facts of ggml's implementation shape this module:
 *   - its client aborts the process when an endpoint does not answer, so the server never
 *     lets libllama be the first to try one: rpc_probe() speaks the protocol's opening
 *     (HELLO, DEVICE_COUNT, GET_DEVICE_MEMORY) itself, with timeouts, and a dead endpoint
 *     becomes a clear error naming it; an abort can only happen in a runner process, which
 *     the scheduler survives;
 *   - its server serves one client at a time (the next waits in the listen queue), so a
 *     probe must never be made while a runner holds the endpoint, and only one runner
 *     uses the RPC servers at a time (the scheduler loads one model at a time then).
 *
 * rpc_parse_endpoints is pure; rpc_probe does network I/O and nothing else. */
#ifndef BELLOWS_RPC_H
#define BELLOWS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define RPC_MAX_ENDPOINTS 16 /* GGML_RPC_MAX_SERVERS */
#define RPC_ENDPOINT_MAX 272 /* "host:port": a DNS name (255) + ':' + port */
#define RPC_MAX_DEVICES 16   /* per endpoint (one per GPU, or its CPU) */
#define RPC_DEFAULT_PORT 50052 /* llama.cpp's rpc-server */
/* The protocol version this build speaks (ggml-rpc.h's RPC_PROTO_*_VERSION; the runner,
 * which includes that header, checks they agree at compile time). */
#define BELLOWS_RPC_PROTO_MAJOR 6
#define BELLOWS_RPC_PROTO_MINOR 0

/* Splits "host:port[,host:port...]" (spaces around items allowed) into out. Every item
 * needs a host and a port 1..65535; an IPv6 host is written in brackets ("[::1]:50052").
 * Duplicates are an error (ggml registers an endpoint once). Returns the count (0 for an
 * empty list), or BW_EINVAL naming the bad item. */
int rpc_parse_endpoints(const char *list, char out[][RPC_ENDPOINT_MAX], int max, struct bw_err *err);

/* What one endpoint said. */
struct rpc_endpoint_info {
    int proto_major, proto_minor, proto_patch;
    int n_devices;
    uint64_t free_bytes[RPC_MAX_DEVICES], total_bytes[RPC_MAX_DEVICES];
};

/* Connects to endpoint, says HELLO, and asks for its devices and their memory, each step
 * within timeout_ms. BW_OK with *out, else BW_EIO with err saying what happened ("connection
 * refused", "no answer within 3 s: is another client using it?", "speaks RPC protocol 5.x,
 * this build 6.x") and naming the endpoint. The connection is closed before it returns, so
 * the server is free for the next client. */
int rpc_probe(const char *endpoint, int timeout_ms, struct rpc_endpoint_info *out, struct bw_err *err);

#endif
