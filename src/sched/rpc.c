/* rpc.c -- see rpc.h. The probe speaks the first messages of ggml's RPC protocol
 * (ggml/src/ggml-rpc/ggml-rpc.cpp of the pinned llama.cpp): a request is a command byte,
 * a uint64 payload size and the payload; a reply is a uint64 size and the payload, all in
 * the host's byte order (ggml's own client and server do the same). */
#define _GNU_SOURCE
#include "sched/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"

/* The commands the probe uses (enum rpc_cmd; HELLO is fixed at 14 across versions). */
enum { CMD_GET_DEVICE_MEMORY = 11, CMD_HELLO = 14, CMD_DEVICE_COUNT = 15 };
#define CONN_CAPS_SIZE 24 /* RPC_CONN_CAPS_SIZE: transport capabilities; zeros = plain TCP */

static int split_host_port(const char *item, size_t len, char *host, size_t host_len, int *port)
{
    const char *colon;
    const char *h = item;
    size_t hl;
    if (len && item[0] == '[') { /* [v6]:port */
        const char *close = memchr(item, ']', len);
        if (!close || close + 1 >= item + len || close[1] != ':')
            return -1;
        h = item + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = memrchr(item, ':', len);
        if (!colon || memchr(item, ':', (size_t)(colon - item)))
            return -1; /* no port, or an IPv6 address without brackets */
        hl = (size_t)(colon - item);
    }
    if (hl == 0 || hl >= host_len)
        return -1;
    const char *p = colon + 1, *end = item + len;
    if (p == end || end - p > 5)
        return -1;
    int v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = v;
    return 0;
}

int rpc_parse_endpoints(const char *list, char out[][RPC_ENDPOINT_MAX], int max, struct bw_err *err)
{
    int n = 0;
    const char *s = list ? list : "";
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, ",");
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        char host[RPC_ENDPOINT_MAX];
        int port;
        if (split_host_port(s, len, host, sizeof host, &port) != 0)
            return bw_errf(err, BW_EINVAL, "RPC endpoint \"%.*s\": expected host:port (e.g. 192.168.1.20:%d)",
                           (int)(len > 80 ? 80 : len), s, RPC_DEFAULT_PORT);
        if (n == max)
            return bw_errf(err, BW_EINVAL, "more than %d RPC endpoints", max);
        snprintf(out[n], RPC_ENDPOINT_MAX, "%.*s", (int)len, s);
        for (int i = 0; i < n; i++)
            if (!strcmp(out[i], out[n]))
                return bw_errf(err, BW_EINVAL, "RPC endpoint %s is listed twice", out[n]);
        n++;
        s += strcspn(s, ",");
    }
    return n;
}

/* Waits until fd is ready for events or the deadline passes. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = deadline_ns - clock_mono_ns();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)((left + 999999) / 1000000));
        if (rc > 0)
            return (p.revents & (events | POLLHUP | POLLERR)) ? 1 : 0;
        if (rc == 0)
            continue;
        if (errno != EINTR)
            return -1;
    }
}

/* All of buf out, or all of it in, before the deadline. 0, or -1 with errno (ETIMEDOUT on
 * time, ECONNRESET when the peer closed). */
static int io_all(int fd, void *buf, size_t len, bool out, int64_t deadline_ns)
{
    char *p = buf;
    while (len) {
        int w = wait_fd(fd, out ? POLLOUT : POLLIN, deadline_ns);
        if (w <= 0) {
            errno = w == 0 ? ETIMEDOUT : errno;
            return -1;
        }
        ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One command and its reply of exactly reply_len bytes. */
static int command(int fd, uint8_t cmd, const void *in, uint64_t in_len, void *reply, uint64_t reply_len,
                   int64_t deadline_ns)
{
    char head[9];
    head[0] = (char)cmd;
    memcpy(head + 1, &in_len, 8);
    uint64_t got;
    if (io_all(fd, head, sizeof head, true, deadline_ns) || (in_len && io_all(fd, (void *)in, in_len, true, deadline_ns)) ||
        io_all(fd, &got, 8, false, deadline_ns))
        return -1;
    if (got != reply_len) {
        errno = EPROTO;
        return -1;
    }
    return io_all(fd, reply, reply_len, false, deadline_ns);
}

static int connect_to(const char *host, int port, int64_t deadline_ns, struct bw_err *err, const char *endpoint)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0)
        return bw_errf(err, BW_EIO, "RPC server %s: cannot resolve %s (%s)", endpoint, host, gai_strerror(gai));
    int fd = -1, last = ECONNREFUSED;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline_ns);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            last = w == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        } else {
            last = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return bw_errf(err, BW_EIO, "RPC server %s does not answer (%s)%s", endpoint,
                       last == ETIMEDOUT ? "no connection within the timeout" : strerror(last),
                       last == ECONNREFUSED ? ": is `bellows rpc-server` running there?" : "");
    return fd;
}

int rpc_probe(const char *endpoint, int timeout_ms, struct rpc_endpoint_info *out, struct bw_err *err)
{
    memset(out, 0, sizeof *out);
    char host[RPC_ENDPOINT_MAX];
    int port;
    if (split_host_port(endpoint, strlen(endpoint), host, sizeof host, &port) != 0)
        return bw_errf(err, BW_EINVAL, "RPC endpoint \"%s\": expected host:port", endpoint);
    int64_t step_ns = (int64_t)(timeout_ms > 0 ? timeout_ms : 3000) * 1000000;
    int fd = connect_to(host, port, clock_mono_ns() + step_ns, err, endpoint);
    if (fd < 0)
        return BW_EIO;
    const char *what = "HELLO";
    uint8_t caps[CONN_CAPS_SIZE] = {0};
    uint8_t hello[4 + CONN_CAPS_SIZE];
    uint32_t count = 0;
    int rc = command(fd, CMD_HELLO, caps, sizeof caps, hello, sizeof hello, clock_mono_ns() + step_ns);
    if (rc == 0) {
        out->proto_major = hello[0], out->proto_minor = hello[1], out->proto_patch = hello[2];
        if (out->proto_major != BELLOWS_RPC_PROTO_MAJOR || out->proto_minor > BELLOWS_RPC_PROTO_MINOR) {
            close(fd);
            return bw_errf(err, BW_EIO, "RPC server %s speaks RPC protocol %d.%d.%d, this build %d.%d: run the same "
                           "Bellows (or llama.cpp) version on both machines", endpoint, out->proto_major,
                           out->proto_minor, out->proto_patch, BELLOWS_RPC_PROTO_MAJOR, BELLOWS_RPC_PROTO_MINOR);
        }
        what = "DEVICE_COUNT";
        rc = command(fd, CMD_DEVICE_COUNT, NULL, 0, &count, sizeof count, clock_mono_ns() + step_ns);
    }
    for (uint32_t d = 0; rc == 0 && d < count && d < RPC_MAX_DEVICES; d++) {
        uint64_t mem[2];
        what = "GET_DEVICE_MEMORY";
        rc = command(fd, CMD_GET_DEVICE_MEMORY, &d, sizeof d, mem, sizeof mem, clock_mono_ns() + step_ns);
        out->free_bytes[d] = mem[0];
        out->total_bytes[d] = mem[1];
    }
    int e = errno;
    close(fd);
    if (rc != 0) {
        if (e == ETIMEDOUT)
            return bw_errf(err, BW_EIO, "RPC server %s accepted but did not answer %s within %.0f s (is another "
                           "client using it? ggml's RPC server serves one at a time)", endpoint, what, step_ns / 1e9);
        return bw_errf(err, BW_EIO, "RPC server %s failed at %s (%s): is it a `bellows rpc-server` of this version?",
                       endpoint, what, e == EPROTO ? "unexpected reply" : strerror(e));
    }
    if (count == 0)
        return bw_errf(err, BW_EIO, "RPC server %s has no devices", endpoint);
    out->n_devices = count > RPC_MAX_DEVICES ? RPC_MAX_DEVICES : (int)count;
    return BW_OK;
}
