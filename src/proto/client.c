/* client.c -- see client.h. */
#define _GNU_SOURCE
#include "proto/client.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct runner_client {
    int fd;
    pid_t pid;
    pthread_mutex_t write_lock;
    uint8_t *in;
    size_t in_len, in_off, in_cap;
};

int runner_client_fd(const struct runner_client *c) { return c->fd; }
pid_t runner_client_pid(const struct runner_client *c) { return c->pid; }

/* In the child, between fork and exec (async-signal-safe calls only): the server blocks
 * SIGINT/SIGTERM in its threads and ignores SIGPIPE, and both would survive exec. The
 * runner starts with an empty mask and every disposition at its default. */
static void child_hygiene(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* EINVAL for the few that cannot be set: fine */
}

/* Marks every descriptor >= lowfd close-on-exec: close_range(2) where the kernel has it
 * (Linux 5.11), else one fcntl per possible descriptor. Async-signal-safe. */
static void cloexec_from(int lowfd)
{
#if defined(SYS_close_range) && defined(CLOSE_RANGE_CLOEXEC)
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576
                  ? (int)rl.rlim_cur
                  : 65536;
    for (int fd = lowfd; fd < max; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
}

static void add_arg(char **argv, int *n, const char *flag, long long value, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%lld", value);
    argv[(*n)++] = (char *)flag;
    argv[(*n)++] = buf;
}

int runner_client_spawn(const struct runner_spawn_opts *o, struct runner_client **out, struct proto_ready *ready,
                        struct bw_err *err)
{
    int sv[2], pipefd[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return bw_errf(err, BW_EIO, "socketpair: %s", strerror(errno));
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        close(sv[0]);
        close(sv[1]);
        return bw_errf(err, BW_EIO, "pipe: %s", strerror(errno));
    }
    /* Build argv before fork: the child only calls async-signal-safe functions. */
    char *argv[40], nums[8][32];
    int n = 0;
    argv[n++] = (char *)o->exe;
    argv[n++] = "runner";
    argv[n++] = "--model";
    argv[n++] = (char *)o->model;
    argv[n++] = "--fd";
    argv[n++] = "3";
    if (o->n_parallel > 0)
        add_arg(argv, &n, "--parallel", o->n_parallel, nums[0], sizeof nums[0]);
    if (o->n_threads > 0)
        add_arg(argv, &n, "--threads", o->n_threads, nums[1], sizeof nums[1]);
    if (o->ctx_cap > 0)
        add_arg(argv, &n, "--ctx-cap", o->ctx_cap, nums[2], sizeof nums[2]);
    if (o->kv_budget > 0)
        add_arg(argv, &n, "--kv-budget", o->kv_budget, nums[3], sizeof nums[3]);
    if (o->idle_shrink_s > 0) {
        snprintf(nums[4], sizeof nums[4], "%g", o->idle_shrink_s);
        argv[n++] = "--idle-shrink";
        argv[n++] = nums[4];
    }
    if (o->n_gpu_layers >= 0)
        add_arg(argv, &n, "--gpu-layers", o->n_gpu_layers, nums[5], sizeof nums[5]);
    if (o->tensor_split) {
        argv[n++] = "--tensor-split";
        argv[n++] = (char *)o->tensor_split;
    }
    if (o->rpc && o->rpc[0]) {
        argv[n++] = "--rpc";
        argv[n++] = (char *)o->rpc;
    }
    if (o->flash_attn_off) {
        argv[n++] = "--flash-attn";
        argv[n++] = "off";
    }
    if (o->no_mmap)
        argv[n++] = "--no-mmap";
    if (o->kv_type && o->kv_type[0]) {
        argv[n++] = "--kv-type";
        argv[n++] = (char *)o->kv_type;
    }
    if (o->kv_disk_dir && o->kv_disk_dir[0] && o->kv_disk_budget > 0) {
        snprintf(nums[6], sizeof nums[6], "%llu", (unsigned long long)o->kv_disk_budget);
        argv[n++] = "--kv-disk";
        argv[n++] = (char *)o->kv_disk_dir;
        argv[n++] = "--kv-disk-budget";
        argv[n++] = nums[6];
    }
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]), close(sv[1]), close(pipefd[0]), close(pipefd[1]);
        return bw_errf(err, BW_EIO, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        child_hygiene();
        /* fd 3 = our end of the socketpair, without CLOEXEC (dup2 onto itself keeps the
         * flag, so clear it by hand then). */
        if (sv[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(sv[1], 3) < 0)
            _exit(127);
        /* Nothing else crosses exec: every other descriptor (the server's listening socket,
         * other runners' sockets, a pull's files) becomes close-on-exec; the error pipe
         * already is, so it still reports a failed exec. */
        cloexec_from(4);
        execv(o->exe, argv);
        int e = errno;
        ssize_t w = write(pipefd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(sv[1]);
    close(pipefd[1]);
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(pipefd[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(pipefd[0]);
    struct runner_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(sv[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    c->fd = sv[0];
    c->pid = pid;
    pthread_mutex_init(&c->write_lock, NULL);
    if (got == (ssize_t)sizeof exec_errno) {
        runner_client_close(c);
        return bw_errf(err, BW_EIO, "cannot start %s: %s", o->exe, strerror(exec_errno));
    }

    struct proto_event ev;
    struct bw_err rerr;
    int rc = runner_client_recv(c, &ev, o->ready_timeout_ms > 0 ? o->ready_timeout_ms : 120000, &rerr);
    bool have_event = rc == 1;
    if (rc == 1 && ev.type == PROTO_EV_READY) {
        if (ready) {
            *ready = ev.ready;
            ready->model = ready->chat_template = NULL;
        }
        proto_event_free(&ev);
        *out = c;
        return BW_OK;
    }
    if (rc == 1 && ev.type == PROTO_EV_ERROR)
        rc = bw_errf(err, ev.err_code == BW_ENOTFOUND ? BW_ENOTFOUND : BW_EINVAL, "%.*s", (int)ev.len, ev.text);
    else if (rc == 1)
        rc = bw_errf(err, BW_ERUNNER, "the runner sent %s before ready", proto_ev_type_name(ev.type));
    else if (rc == 0)
        rc = bw_errf(err, BW_ERUNNER, "the runner did not get ready in time");
    else
        rc = bw_errf(err, BW_ERUNNER, "the runner exited while loading the model");
    if (have_event)
        proto_event_free(&ev);
    runner_client_close(c);
    return rc;
}

int runner_client_send(struct runner_client *c, const struct proto_request *r, struct bw_err *err)
{
    uint8_t *frame;
    size_t len;
    int rc = proto_request_encode(r, &frame, &len);
    if (rc)
        return bw_errf(err, rc, "could not encode the request");
    pthread_mutex_lock(&c->write_lock);
    const uint8_t *p = frame;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = bw_errf(err, BW_EIO, "the runner is gone (%s)", n < 0 ? strerror(errno) : "closed");
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&c->write_lock);
    free(frame);
    return rc;
}

bool runner_client_try_send(struct runner_client *c, const struct proto_request *r)
{
    uint8_t *frame;
    size_t len;
    if (proto_request_encode(r, &frame, &len))
        return false;
    bool sent = false;
    if (pthread_mutex_trylock(&c->write_lock) == 0) {
        ssize_t n;
        do
            n = send(c->fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        sent = n == (ssize_t)len;
        /* A Unix stream socket takes a frame this small whole or not at all; should it take a
         * part, the rest must follow (blocking) or the stream would be corrupt. */
        for (const uint8_t *p = frame + (n > 0 ? n : 0); n > 0 && !sent;) {
            size_t left = len - (size_t)(p - frame);
            ssize_t m = send(c->fd, p, left, MSG_NOSIGNAL);
            if (m < 0 && errno == EINTR)
                continue;
            if (m <= 0)
                break;
            p += m;
            sent = (size_t)m == left;
        }
        pthread_mutex_unlock(&c->write_lock);
    }
    free(frame);
    return sent;
}

int runner_client_recv(struct runner_client *c, struct proto_event *ev, int timeout_ms, struct bw_err *err)
{
    int64_t deadline = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
    for (;;) {
        const uint8_t *payload;
        uint32_t plen;
        size_t used;
        int got = proto_frame_next(c->in + c->in_off, c->in_len - c->in_off, &payload, &plen, &used);
        if (got < 0)
            return bw_errf(err, BW_EINVAL, "corrupt frame from the runner");
        if (got == 1) {
            c->in_off += used;
            int rc = proto_event_decode(payload, plen, ev, err);
            if (rc)
                proto_event_free(ev);
            return rc ? rc : 1;
        }
        /* Need more bytes: compact, grow, read. */
        if (c->in_off) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        if (c->in_cap - c->in_len < 65536) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
            uint8_t *b = realloc(c->in, cap);
            if (!b)
                return bw_errf(err, BW_ENOMEM, "out of memory");
            c->in = b;
            c->in_cap = cap;
        }
        int wait = deadline < 0 ? -1 : (int)(deadline - clock_mono_ms());
        if (deadline >= 0 && wait <= 0)
            return 0;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return 0;
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return bw_errf(err, BW_EIO, "the runner closed its socket");
        c->in_len += (size_t)n;
    }
}

/* Waits up to ms for pid to exit. True when it was reaped here (status set) or is not our
 * child any more (reaped elsewhere: status untouched). */
static bool wait_exit(pid_t pid, int ms, int *status)
{
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return true;
        if (waited >= ms)
            return false;
        usleep(10000);
    }
}

int runner_client_close(struct runner_client *c)
{
    if (!c)
        return -1;
    close(c->fd);
    int status = -1;
    if (c->pid > 0) {
        /* EOF makes the runner exit; then SIGTERM; a runner that ignores both is killed. */
        if (wait_exit(c->pid, RUNNER_CLIENT_EOF_GRACE_MS, &status))
            goto reaped;
        kill(c->pid, SIGTERM);
        if (wait_exit(c->pid, RUNNER_CLIENT_TERM_GRACE_MS, &status))
            goto reaped;
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
reaped:
    pthread_mutex_destroy(&c->write_lock);
    free(c->in);
    free(c);
    return status;
}
