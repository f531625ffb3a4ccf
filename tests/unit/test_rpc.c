/* test_rpc.c -- the RPC endpoint list and the probe (sched/rpc.h, issue 16): lists as a
 * user writes them, and the probe against a port nobody listens on, a listener that never
 * answers, and a fake server in a thread that speaks the opening of ggml's protocol (the
 * real `bellows rpc-server` is probed in tests/api/rpc.test.mjs). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sched/rpc.h"
#include "util/clock.h"

static char eps[RPC_MAX_ENDPOINTS][RPC_ENDPOINT_MAX];

static void lists_as_users_write_them(void **state)
{
    (void)state;
    struct bw_err err;
    assert_int_equal(rpc_parse_endpoints("", eps, RPC_MAX_ENDPOINTS, &err), 0);
    assert_int_equal(rpc_parse_endpoints(NULL, eps, RPC_MAX_ENDPOINTS, &err), 0);
    assert_int_equal(rpc_parse_endpoints("192.168.1.20:50052", eps, RPC_MAX_ENDPOINTS, &err), 1);
    assert_string_equal(eps[0], "192.168.1.20:50052");
    assert_int_equal(rpc_parse_endpoints(" gpu-box:50052 , 10.0.0.2:50053,", eps, RPC_MAX_ENDPOINTS, &err), 2);
    assert_string_equal(eps[0], "gpu-box:50052");
    assert_string_equal(eps[1], "10.0.0.2:50053");
    assert_int_equal(rpc_parse_endpoints("[::1]:50052", eps, RPC_MAX_ENDPOINTS, &err), 1);
    assert_string_equal(eps[0], "[::1]:50052");
}

static void bad_lists_name_the_item(void **state)
{
    (void)state;
    static const char *const bad[] = {"gpu-box", "gpu-box:", ":50052", "gpu-box:0", "gpu-box:65536", "gpu-box:50x",
                                      "::1:50052", "[::1]50052", "a:1,b", "h:123456"};
    struct bw_err err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(rpc_parse_endpoints(bad[i], eps, RPC_MAX_ENDPOINTS, &err), BW_EINVAL);
        assert_non_null(strstr(err.msg, "host:port"));
    }
    assert_int_equal(rpc_parse_endpoints("a:1, a:1", eps, RPC_MAX_ENDPOINTS, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    char many[1024] = "";
    for (int i = 0; i < RPC_MAX_ENDPOINTS + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "h%d:1,", i);
    assert_int_equal(rpc_parse_endpoints(many, eps, RPC_MAX_ENDPOINTS, &err), BW_EINVAL);
}

/* A listening socket on 127.0.0.1 and a free port; returns the fd (listen or not). */
static int loopback_socket(int *port, bool do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (do_listen)
        assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static void nobody_listening_is_refused_at_once(void **state)
{
    (void)state;
    int port, fd = loopback_socket(&port, false);
    close(fd); /* bound once, now free: nobody listens there */
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    struct rpc_endpoint_info info;
    struct bw_err err;
    int64_t t0 = clock_mono_ns();
    assert_int_equal(rpc_probe(ep, 3000, &info, &err), BW_EIO);
    assert_true(clock_mono_ns() - t0 < 1000000000LL);
    assert_non_null(strstr(err.msg, ep));
    assert_non_null(strstr(err.msg, "does not answer"));
}

static void a_silent_listener_times_out(void **state)
{
    (void)state;
    int port, fd = loopback_socket(&port, true); /* the kernel accepts; nobody answers */
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    struct rpc_endpoint_info info;
    struct bw_err err;
    int64_t t0 = clock_mono_ns();
    assert_int_equal(rpc_probe(ep, 300, &info, &err), BW_EIO);
    int64_t took = clock_mono_ns() - t0;
    assert_true(took >= 250000000LL && took < 3000000000LL);
    assert_non_null(strstr(err.msg, ep));
    assert_non_null(strstr(err.msg, "did not answer HELLO"));
    close(fd);
}

/* ---- a fake server: the replies of ggml's rpc_serve_client ------------------------- */

struct fake {
    int fd;
    uint8_t major, minor;
    uint32_t n_devices;
    bool bad_count_size;
};

static int read_all(int fd, void *b, size_t n)
{
    for (size_t at = 0; at < n;) {
        ssize_t r = read(fd, (char *)b + at, n - at);
        if (r <= 0)
            return -1;
        at += (size_t)r;
    }
    return 0;
}

static void reply(int fd, const void *b, uint64_t n)
{
    assert_int_equal(write(fd, &n, 8), 8);
    if (n)
        assert_int_equal(write(fd, b, n), (ssize_t)n);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    for (;;) {
        uint8_t cmd;
        uint64_t len;
        uint8_t in[64];
        if (read_all(c, &cmd, 1) || read_all(c, &len, 8) || len > sizeof in || read_all(c, in, len))
            break;
        if (cmd == 14) { /* HELLO: 24 bytes of caps in, version + caps out */
            assert_int_equal(len, 24);
            uint8_t out[28] = {f->major, f->minor, 3, 0};
            reply(c, out, sizeof out);
        } else if (cmd == 15) { /* DEVICE_COUNT */
            assert_int_equal(len, 0);
            if (f->bad_count_size) {
                uint64_t wrong = f->n_devices;
                reply(c, &wrong, sizeof wrong);
            } else {
                reply(c, &f->n_devices, sizeof f->n_devices);
            }
        } else if (cmd == 11) { /* GET_DEVICE_MEMORY */
            uint32_t d;
            memcpy(&d, in, 4);
            uint64_t mem[2] = {(uint64_t)(d + 1) << 30, (uint64_t)(d + 1) << 31};
            reply(c, mem, sizeof mem);
        } else {
            break;
        }
    }
    close(c);
    return NULL;
}

static int probe_fake(struct fake *f, struct rpc_endpoint_info *info, struct bw_err *err)
{
    int port;
    f->fd = loopback_socket(&port, true);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_main, f), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    int rc = rpc_probe(ep, 2000, info, err);
    pthread_join(t, NULL); /* the probe closed its connection: the fake's loop ended */
    close(f->fd);
    return rc;
}

static void a_server_reports_its_devices(void **state)
{
    (void)state;
    struct fake f = {.major = BELLOWS_RPC_PROTO_MAJOR, .minor = BELLOWS_RPC_PROTO_MINOR, .n_devices = 2};
    struct rpc_endpoint_info info;
    struct bw_err err;
    assert_int_equal(probe_fake(&f, &info, &err), BW_OK);
    assert_int_equal(info.n_devices, 2);
    assert_int_equal(info.proto_major, BELLOWS_RPC_PROTO_MAJOR);
    assert_int_equal(info.proto_patch, 3);
    assert_true(info.free_bytes[0] == 1ull << 30 && info.total_bytes[0] == 1ull << 31);
    assert_true(info.free_bytes[1] == 2ull << 30 && info.total_bytes[1] == 2ull << 31);
}

static void another_protocol_version_is_named(void **state)
{
    (void)state;
    struct fake f = {.major = BELLOWS_RPC_PROTO_MAJOR - 1, .minor = 9, .n_devices = 1};
    struct rpc_endpoint_info info;
    struct bw_err err;
    assert_int_equal(probe_fake(&f, &info, &err), BW_EIO);
    assert_non_null(strstr(err.msg, "protocol 5.9.3"));
    struct fake g = {.major = BELLOWS_RPC_PROTO_MAJOR, .minor = BELLOWS_RPC_PROTO_MINOR + 1, .n_devices = 1};
    assert_int_equal(probe_fake(&g, &info, &err), BW_EIO);
    assert_non_null(strstr(err.msg, "speaks RPC protocol"));
}

static void a_malformed_reply_or_no_device_fails(void **state)
{
    (void)state;
    struct fake f = {.major = BELLOWS_RPC_PROTO_MAJOR, .n_devices = 1, .bad_count_size = true};
    struct rpc_endpoint_info info;
    struct bw_err err;
    assert_int_equal(probe_fake(&f, &info, &err), BW_EIO);
    assert_non_null(strstr(err.msg, "DEVICE_COUNT"));
    struct fake g = {.major = BELLOWS_RPC_PROTO_MAJOR, .n_devices = 0};
    assert_int_equal(probe_fake(&g, &info, &err), BW_EIO);
    assert_non_null(strstr(err.msg, "no devices"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lists_as_users_write_them),
        cmocka_unit_test(bad_lists_name_the_item),
        cmocka_unit_test(nobody_listening_is_refused_at_once),
        cmocka_unit_test(a_silent_listener_times_out),
        cmocka_unit_test(a_server_reports_its_devices),
        cmocka_unit_test(another_protocol_version_is_named),
        cmocka_unit_test(a_malformed_reply_or_no_device_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
