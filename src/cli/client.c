/* client.c -- see client.h.
 *
 * DESIGN: the connection is pulled through one buffer. Header lines, chunk-size lines and
 * body bytes are all read from it; body bytes go to a sink, which either appends to the
 * response body or splits lines for the stream callback. Every wait is a poll() in slices
 * of at most 100 ms, so a cancel flag set by a signal handler is seen promptly. */
#define _GNU_SOURCE
#include "cli/client.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/serve_config.h"
#include "version.h"

void cli_server_url(char *buf, size_t len)
{
    serve_config_client_url(buf, len);
}

int client_parse_url(const char *base_url, char *host, size_t host_len, int *port, struct bw_err *err)
{
    const char *p = base_url;
    if (!p || strncasecmp(p, "http://", 7) != 0)
        return bw_errf(err, BW_EINVAL, "'%s' is not an http:// URL (BELLOWS_HOST: host:port)", p ? p : "");
    p += 7;
    const char *h = p, *h_end;
    if (*p == '[') {
        h = p + 1;
        h_end = strchr(h, ']');
        if (!h_end)
            return bw_errf(err, BW_EINVAL, "'%s': missing ']' after the IPv6 address", base_url);
        p = h_end + 1;
    } else {
        while (*p && *p != ':' && *p != '/')
            p++;
        h_end = p;
    }
    if ((size_t)(h_end - h) >= host_len || h_end == h)
        return bw_errf(err, BW_EINVAL, "'%s': bad host", base_url);
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    *port = 80;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v <= 0 || v > 65535 || (*end && *end != '/'))
            return bw_errf(err, BW_EINVAL, "'%s': bad port", base_url);
        *port = (int)v;
        p = end;
    }
    if (*p && strcmp(p, "/") != 0)
        return bw_errf(err, BW_EINVAL, "'%s': a path after the port is not supported", base_url);
    return BW_OK;
}

/* ---- time and waiting ------------------------------------------------------------------- */

struct conn {
    int fd;
    const struct client_opts *o;
    int idle_ms; /* < 0: none */
    char buf[16384];
    size_t len, pos; /* unread bytes are buf[pos..len) */
    bool eof, cancelled;
    const char *where; /* "host:port", for messages */
};

static bool cancel_requested(const struct conn *c)
{
    return c->o && c->o->cancel && *c->o->cancel;
}

/* Waits until fd is ready for events, the idle limit passes (BW_EIO) or a cancel comes
 * (BW_OK with c->cancelled). */
static int wait_fd(struct conn *c, short events, int limit_ms, const char *what, struct bw_err *err)
{
    int64_t deadline = limit_ms < 0 ? INT64_MAX : clock_mono_ms() + limit_ms;
    for (;;) {
        if (cancel_requested(c)) {
            c->cancelled = true;
            return BW_OK;
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return bw_errf(err, BW_EIO, "%s %s: no answer for %d s", what, c->where, limit_ms / 1000);
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, left < 100 ? (int)left : 100);
        if (r < 0 && errno != EINTR)
            return bw_errf(err, BW_EIO, "%s %s: %s", what, c->where, strerror(errno));
        if (r > 0)
            return BW_OK;
    }
}

/* Reads more bytes into the buffer (compacting it first). Sets c->eof at the end. */
static int conn_fill(struct conn *c, struct bw_err *err)
{
    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == sizeof c->buf)
        return bw_errf(err, BW_EIO, "reading from %s: a header line is longer than %zu bytes", c->where,
                       sizeof c->buf);
    int rc = wait_fd(c, POLLIN, c->idle_ms, "reading from", err);
    if (rc || c->cancelled)
        return rc;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            return BW_OK;
        }
        if (n == 0) {
            c->eof = true;
            return BW_OK;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return BW_OK;
        return bw_errf(err, BW_EIO, "reading from %s: %s", c->where, strerror(errno));
    }
}

/* A CRLF- (or LF-) terminated line, NUL-terminated in place; *line borrows the buffer
 * until the next read. BW_EIO at a premature end. */
static int conn_line(struct conn *c, char **line, struct bw_err *err)
{
    for (;;) {
        char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
        if (nl) {
            char *s = c->buf + c->pos;
            size_t n = (size_t)(nl - s);
            if (n && s[n - 1] == '\r')
                n--;
            s[n] = '\0';
            c->pos = (size_t)(nl - c->buf) + 1;
            *line = s;
            return BW_OK;
        }
        if (c->eof)
            return bw_errf(err, BW_EIO, "%s closed the connection in the middle of the answer", c->where);
        int rc = conn_fill(c, err);
        if (rc || c->cancelled)
            return rc;
    }
}

/* ---- body sinks ------------------------------------------------------------------------- */

struct sink {
    /* collect mode */
    char *s;
    size_t len, cap;
    /* line mode */
    client_line_fn on_line;
    void *ud;
    bool stopped;
};

static int sink_grow(struct sink *k, size_t add, struct bw_err *err)
{
    if (k->len + add + 1 <= k->cap)
        return BW_OK;
    size_t cap = k->cap ? k->cap : 1024;
    while (cap < k->len + add + 1)
        cap *= 2;
    char *s = realloc(k->s, cap);
    if (!s)
        return bw_errf(err, BW_ENOMEM, "out of memory reading the answer");
    k->s = s;
    k->cap = cap;
    return BW_OK;
}

static int deliver_line(struct sink *k, char *line, size_t n)
{
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    if (n == 0)
        return 0;
    if (k->on_line(k->ud, line, n) != 0)
        k->stopped = true;
    return 0;
}

static int sink_put(struct sink *k, const char *data, size_t n, struct bw_err *err)
{
    if (k->stopped)
        return BW_OK;
    int rc = sink_grow(k, n, err);
    if (rc)
        return rc;
    memcpy(k->s + k->len, data, n);
    k->len += n;
    k->s[k->len] = '\0';
    if (!k->on_line)
        return BW_OK;
    /* hand out every complete line, keep the rest */
    size_t start = 0;
    for (size_t i = k->len - n; i < k->len && !k->stopped; i++) {
        if (k->s[i] != '\n')
            continue;
        deliver_line(k, k->s + start, i - start);
        start = i + 1;
    }
    if (k->stopped)
        return BW_OK;
    memmove(k->s, k->s + start, k->len - start);
    k->len -= start;
    k->s[k->len] = '\0';
    return BW_OK;
}

static void sink_finish(struct sink *k)
{
    if (k->on_line && !k->stopped && k->len) {
        deliver_line(k, k->s, k->len);
        k->len = 0;
    }
}

/* Moves n body bytes (or everything up to EOF when n is SIZE_MAX) into the sink, as they
 * arrive. */
static int conn_body(struct conn *c, size_t n, struct sink *k, struct bw_err *err)
{
    while (n > 0 && !k->stopped) {
        if (c->pos == c->len) {
            if (c->eof)
                return n == SIZE_MAX ? BW_OK
                                     : bw_errf(err, BW_EIO, "%s closed the connection in the middle of the answer",
                                               c->where);
            int rc = conn_fill(c, err);
            if (rc || c->cancelled)
                return rc;
            continue;
        }
        size_t avail = c->len - c->pos, take = avail < n ? avail : n;
        int rc = sink_put(k, c->buf + c->pos, take, err);
        if (rc)
            return rc;
        c->pos += take;
        if (n != SIZE_MAX)
            n -= take;
    }
    return BW_OK;
}

static int read_chunked(struct conn *c, struct sink *k, struct bw_err *err)
{
    for (;;) {
        char *line;
        int rc = conn_line(c, &line, err);
        if (rc || c->cancelled)
            return rc;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (end == line || errno || (*end && *end != ';' && *end != ' '))
            return bw_errf(err, BW_EIO, "%s sent a bad chunk size '%.40s'", c->where, line);
        if (size == 0) {
            /* trailers, up to the empty line (or the end of the connection) */
            while (!c->eof || c->pos < c->len) {
                rc = conn_line(c, &line, err);
                if (rc || c->cancelled || !*line)
                    return rc;
            }
            return BW_OK;
        }
        rc = conn_body(c, (size_t)size, k, err);
        if (rc || c->cancelled || k->stopped)
            return rc;
        rc = conn_line(c, &line, err); /* the CRLF after the data */
        if (rc || c->cancelled)
            return rc;
    }
}

/* ---- connecting ------------------------------------------------------------------------- */

static int connect_to(struct conn *c, const char *host, int port, struct bw_err *err)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, portstr, &hints, &res);
    if (g != 0)
        return bw_errf(err, BW_ENOTFOUND, "cannot resolve %s: %s", host, gai_strerror(g));
    int timeout = c->o && c->o->connect_timeout_ms > 0 ? c->o->connect_timeout_ms : 5000;
    int last_errno = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            c->fd = fd;
            break;
        }
        if (errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            continue;
        }
        c->fd = fd;
        struct bw_err werr;
        int rc = wait_fd(c, POLLOUT, timeout, "connecting to", &werr);
        if (rc == BW_OK && c->cancelled)
            break;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (rc == BW_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            break;
        last_errno = rc ? ETIMEDOUT : soerr;
        close(fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return bw_errf(err, BW_ENOTFOUND, "could not connect to %s: %s", c->where, strerror(last_errno));
    return BW_OK;
}

static int send_all(struct conn *c, const char *data, size_t n, struct bw_err *err)
{
    while (n > 0 && !c->cancelled) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c, POLLOUT, c->idle_ms, "sending to", err);
            if (rc)
                return rc;
            continue;
        }
        return bw_errf(err, BW_EIO, "sending to %s: %s", c->where, strerror(errno));
    }
    return BW_OK;
}

/* ---- the request ------------------------------------------------------------------------ */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

int client_request(const char *base_url, const char *method, const char *path, const char *body, size_t body_len,
                   const struct client_opts *opts, client_line_fn on_line, void *ud, struct client_response *res,
                   struct bw_err *err)
{
    memset(res, 0, sizeof *res);
    char host[256], where[300];
    int port;
    int rc = client_parse_url(base_url, host, sizeof host, &port, err);
    if (rc)
        return rc;
    snprintf(where, sizeof where, "%s", base_url);
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    c->fd = -1;
    c->o = opts;
    c->where = where;
    c->idle_ms = opts && opts->idle_timeout_ms ? opts->idle_timeout_ms : 60000;
    struct sink k = {0};
    rc = connect_to(c, host, port, err);
    if (rc || c->cancelled)
        goto out;

    /* the request head */
    char head[2048]; /* method, path and host are short; the key is at most 511 */
    const char *key = getenv("BELLOWS_API_KEY");
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: bellows/%s\r\nAccept: */*\r\n"
                     "Connection: close\r\n",
                     method, path, v6 ? "[" : "", host, v6 ? "]" : "", port, BELLOWS_VERSION);
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      body_len);
    if (key && *key && strlen(key) < 512)
        n += snprintf(head + n, sizeof head - (size_t)n, "Authorization: Bearer %s\r\n", key);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if ((rc = send_all(c, head, (size_t)n, err)) || (body && (rc = send_all(c, body, body_len, err))))
        goto out;
    if (c->cancelled)
        goto out;

    /* status line and headers */
    char *line;
    if ((rc = conn_line(c, &line, err)) || c->cancelled)
        goto out;
    int major, minor, status;
    if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 || status > 999) {
        rc = bw_errf(err, BW_EIO, "%s did not answer in HTTP (is it a Bellows server?): '%.60s'", where, line);
        goto out;
    }
    res->status = status;
    long long content_length = -1;
    bool chunked = false;
    for (;;) {
        if ((rc = conn_line(c, &line, err)) || c->cancelled)
            goto out;
        if (!*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        trim(v);
        if (!strcasecmp(line, "Content-Length"))
            content_length = strtoll(v, NULL, 10);
        else if (!strcasecmp(line, "Transfer-Encoding"))
            chunked = strcasestr(v, "chunked") != NULL;
        else if (!strcasecmp(line, "Content-Type"))
            snprintf(res->content_type, sizeof res->content_type, "%s", v);
        else if (!strcasecmp(line, "X-Request-Id"))
            snprintf(res->request_id, sizeof res->request_id, "%s", v);
    }

    /* the body */
    if (on_line && status >= 200 && status < 300) {
        k.on_line = on_line;
        k.ud = ud;
    }
    if (!strcmp(method, "HEAD") || status == 204 || status == 304 || (status >= 100 && status < 200))
        rc = BW_OK;
    else if (chunked)
        rc = read_chunked(c, &k, err);
    else if (content_length >= 0)
        rc = conn_body(c, (size_t)content_length, &k, err);
    else
        rc = conn_body(c, SIZE_MAX, &k, err);
    if (rc == BW_OK && !c->cancelled)
        sink_finish(&k);

out:
    if (c->cancelled) {
        res->cancelled = true;
        rc = BW_OK;
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    if (!k.on_line && k.s) {
        res->body = k.s;
        res->body_len = k.len;
    } else {
        free(k.s);
    }
    if (rc == BW_OK && !res->body && !k.on_line) {
        res->body = calloc(1, 1);
        if (!res->body)
            rc = bw_errf(err, BW_ENOMEM, "out of memory");
    }
    return rc;
}

void client_response_fini(struct client_response *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
