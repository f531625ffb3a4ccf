/* rpc_server.c -- `bellows rpc-server`: ggml's RPC server on this machine's devices, so
 * a Bellows server elsewhere (BELLOWS_RPC) can place a model's layers here (issue 16,
 * docs/distributed.md). The work is ggml's (ggml_backend_rpc_start_server); this file picks
 * the devices, checks the address can be listened on first (ggml only prints "Failed to
 * create server socket"), and warns when the port is reachable from other machines: the
 * RPC protocol has no authentication, whoever reaches the port can use the devices and
 * read what is in them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "sched/rpc.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows rpc-server [--host H] [--port P] [--threads N] [--cache DIR]\n"
               "Serves this machine's devices (its GPUs, else its CPU) to a Bellows server that\n"
               "lists it in BELLOWS_RPC=host:port (or `bellows serve --rpc`): the model's layers\n"
               "placed here run here. One server uses it at a time.\n\n"
               "  --host H      address to listen on (default 127.0.0.1: this machine only)\n"
               "  --port P      port (default %d)\n"
               "  --threads N   CPU threads (default: all cores)\n"
               "  --cache DIR   keep received tensors in DIR, so the next load of the same model\n"
               "                sends only their hashes (ggml's local cache)\n\n"
               "The RPC protocol has no authentication and no encryption: anyone who can reach\n"
               "the port can use these devices. Keep it on 127.0.0.1 and reach it through an SSH\n"
               "tunnel, or bind a private network only (docs/distributed.md).\n",
            RPC_DEFAULT_PORT);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* True for an address only this machine reaches. */
static bool is_loopback(const char *host)
{
    if (!strcmp(host, "localhost"))
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return !strcmp(host, "::1");
}

/* Binds host:port once and lets it go, so a busy port or a bad address is a clear message
 * before ggml starts (it reuses the address, as this check does). */
static int check_listen(const char *host, int port)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "bellows rpc-server: cannot resolve %s: %s\n", host, gai_strerror(gai));
        return -1;
    }
    int e = 0, ok = 0;
    for (struct addrinfo *a = res; a && !ok; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0)
            ok = 1;
        else
            e = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (!ok) {
        fprintf(stderr, "bellows rpc-server: cannot listen on %s:%d: %s\n", host, port, strerror(e));
        return -1;
    }
    return 0;
}

/* Like llama.cpp's rpc-server: every GPU (or integrated GPU), else the CPU. */
static size_t pick_devices(ggml_backend_dev_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ggml_backend_dev_count() && n < max; i++) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        enum ggml_backend_dev_type t = ggml_backend_dev_type(d);
        if (t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU)
            out[n++] = d;
    }
    if (n == 0) {
        ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
        if (cpu)
            out[n++] = cpu;
    }
    return n;
}

int cli_rpc_server(int argc, char **argv)
{
    const char *host = "127.0.0.1", *cache = NULL;
    int port = RPC_DEFAULT_PORT;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores > 0 ? (int)cores : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bellows rpc-server: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--cache"))
            cache = v;
        else if (!strcmp(a, "--port") && parse_int(v, 1, 65535, &port) == 0)
            ;
        else if (!strcmp(a, "--threads") && parse_int(v, 1, 1024, &threads) == 0)
            ;
        else {
            fprintf(stderr, "bellows rpc-server: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!*host || strchr(host, ':')) {
        /* ggml's endpoint parser splits at the first ':' */
        fprintf(stderr, "bellows rpc-server: --host %s: an IPv4 address or a host name (IPv6 is not supported "
                        "by ggml's RPC server)\n", host);
        return 2;
    }
    if (cache && mkdir(cache, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bellows rpc-server: --cache %s: %s\n", cache, strerror(errno));
        return 1;
    }
    if (!is_loopback(host))
        fprintf(stderr, "bellows rpc-server: WARNING: listening on %s:%d, reachable from other machines. The RPC "
                        "protocol has no authentication: anyone who reaches this port can use these devices "
                        "and read what is in them. Use a private network or an SSH tunnel "
                        "(docs/distributed.md).\n", host, port);
    if (check_listen(host, port) != 0)
        return 1;
    ggml_backend_dev_t devs[16];
    size_t n = pick_devices(devs, 16);
    if (n == 0) {
        fprintf(stderr, "bellows rpc-server: no device to serve\n");
        return 1;
    }
    /* A client that goes away mid-reply must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* ggml's connection log, line by line into a log file */
    char endpoint[RPC_ENDPOINT_MAX + 8];
    snprintf(endpoint, sizeof endpoint, "%s:%d", host, port);
    fflush(stderr);
    ggml_backend_rpc_start_server(endpoint, cache, (size_t)threads, n, devs);
    /* it returns only when it could not start or accept */
    fprintf(stderr, "bellows rpc-server: the RPC server on %s stopped\n", endpoint);
    return 1;
}
