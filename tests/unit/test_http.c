/* test_http.c -- unit tests for src/server/http.c: a real libmicrohttpd server on
 * 127.0.0.1 (kernel-picked port) driven by a tiny raw-socket HTTP/1.1 client. Every wait
 * is bounded; nothing binds outside loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_BODY 1024
#define IO_TIMEOUT_MS 5000

/* ---- time ------------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the test handler ------------------------------------------------------------------ */

/* What the streams report back; reset by each test that looks at it. */
static struct {
    atomic_int done_calls;
    atomic_int completed; /* last completed value: 1 true, 0 false, -1 none yet */
    atomic_int gone_seen;
    atomic_int pulls_after_done;
    atomic_int slow_started;
    atomic_int twice_first, twice_second;
    /* streamed request bodies */
    atomic_int begin_calls, released, handled, pieces, late_rc;
} obs;

static void obs_reset(void)
{
    atomic_store(&obs.done_calls, 0);
    atomic_store(&obs.completed, -1);
    atomic_store(&obs.gone_seen, 0);
    atomic_store(&obs.pulls_after_done, 0);
    atomic_store(&obs.slow_started, 0);
    atomic_store(&obs.begin_calls, 0);
    atomic_store(&obs.released, 0);
    atomic_store(&obs.handled, 0);
    atomic_store(&obs.pieces, 0);
    atomic_store(&obs.late_rc, 99);
}

/* ---- streamed request bodies: /upload* take their body through the begin hook ----------- */

struct upload_ud {
    size_t n;        /* bytes seen by the body callback */
    uint32_t sum;    /* FNV-1a of them */
    size_t max_piece;
    int calls;
    bool stop_after_first;
};

static uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

static bool upload_piece(void *ud, const char *data, size_t len)
{
    struct upload_ud *u = ud;
    atomic_fetch_add(&obs.pieces, 1);
    u->calls++;
    u->n += len;
    u->sum = fnv1a(u->sum, data, len);
    if (len > u->max_piece) u->max_piece = len;
    return !u->stop_after_first;
}

static void upload_release(void *ud)
{
    atomic_fetch_add(&obs.released, 1);
    free(ud);
}

static void test_begin(void *ud, struct http_request *req)
{
    (void)ud;
    atomic_fetch_add(&obs.begin_calls, 1);
    if (strcmp(req->path, "/upload-refuse") == 0) {
        http_respond(req, 507, "application/json", "{\"error\":\"no room\"}", 19, NULL);
    } else if (strcmp(req->path, "/upload") == 0 || strcmp(req->path, "/upload-stop") == 0) {
        struct upload_ud *u = calloc(1, sizeof *u);
        if (!u) abort();
        u->sum = 2166136261u;
        u->stop_after_first = strcmp(req->path, "/upload-stop") == 0;
        if (http_stream_body(req, upload_piece, upload_release, u) != BW_OK) abort();
        /* a second opt-in is refused */
        if (http_stream_body(req, upload_piece, upload_release, u) != BW_EINVAL) abort();
    }
}

static void upload_handler(struct http_request *req)
{
    struct upload_ud *u = http_body_ud(req);
    atomic_fetch_add(&obs.handled, 1);
    char b[256];
    int n = u ? snprintf(b, sizeof b, "n=%zu len=%zu sum=%08x calls=%d body=%s piece_ok=%d", u->n, req->body_len,
                         (unsigned)u->sum, u->calls, req->body ? "yes" : "null", u->max_piece <= 64 * 1024)
              : snprintf(b, sizeof b, "not streamed");
    http_respond(req, 200, "text/plain", b, (size_t)n, NULL);
}

struct stream_ud {
    struct http_request *req;
    int n;
    bool done;
};

static ssize_t pull_chunks(void *ud, char *buf, size_t max)
{
    struct stream_ud *s = ud;
    if (s->done) atomic_fetch_add(&obs.pulls_after_done, 1);
    if (s->n >= 5) return 0;
    sleep_ms(5);
    int n = snprintf(buf, max, "chunk-%d\n", s->n++);
    return n;
}

static ssize_t pull_forever(void *ud, char *buf, size_t max)
{
    struct stream_ud *s = ud;
    if (s->done) atomic_fetch_add(&obs.pulls_after_done, 1);
    atomic_store(&obs.slow_started, 1);
    sleep_ms(20);
    if (http_client_gone(s->req)) {
        atomic_store(&obs.gone_seen, 1);
        return -1;
    }
    return snprintf(buf, max, "tick-%d\n", s->n++);
}

/* Never looks at http_client_gone: MHD must notice the close when a send fails. */
static ssize_t pull_blind(void *ud, char *buf, size_t max)
{
    struct stream_ud *s = ud;
    if (s->done) atomic_fetch_add(&obs.pulls_after_done, 1);
    atomic_store(&obs.slow_started, 1);
    sleep_ms(20);
    return snprintf(buf, max, "tick-%d\n", s->n++);
}

static ssize_t pull_fail(void *ud, char *buf, size_t max)
{
    struct stream_ud *s = ud;
    if (s->n++ == 0) return snprintf(buf, max, "partial\n");
    return -1;
}

static void stream_done(void *ud, bool completed)
{
    struct stream_ud *s = ud;
    s->done = true;
    atomic_store(&obs.completed, completed ? 1 : 0);
    atomic_fetch_add(&obs.done_calls, 1);
    free(s);
}

static void test_handler(void *ud, struct http_request *req)
{
    (void)ud;
    if (strncmp(req->path, "/upload", 7) == 0) {
        upload_handler(req);
    } else if (strcmp(req->path, "/late-stream") == 0) {
        /* outside the begin hook: refused */
        atomic_store(&obs.late_rc, http_stream_body(req, upload_piece, upload_release, NULL));
        http_respond(req, 200, "text/plain", http_body_ud(req) ? "ud" : "no-ud", http_body_ud(req) ? 2 : 5, NULL);
    } else if (strcmp(req->path, "/echo") == 0) {
        http_respond(req, 200, "application/json", req->body, req->body_len, NULL);
    } else if (strcmp(req->path, "/info") == 0) {
        char b[512];
        const char *q = http_query(req, "q");
        const char *h = http_header(req, "x-custom");
        int n = snprintf(b, sizeof b, "method=%s rid=%s seq=%llu body=%s len=%zu q=%s h=%s ua=%s", req->method,
                         req->request_id, (unsigned long long)req->seq, req->body ? "yes" : "null", req->body_len,
                         q ? q : "-", h ? h : "-", req->user_agent ? req->user_agent : "-");
        const char *const extra[] = {"X-Extra", "1", NULL};
        http_respond(req, 200, "text/plain", b, (size_t)n, extra);
    } else if (strcmp(req->path, "/stream") == 0 || strcmp(req->path, "/slow-stream") == 0 ||
               strcmp(req->path, "/fail-stream") == 0 || strcmp(req->path, "/blind-stream") == 0) {
        struct stream_ud *s = calloc(1, sizeof *s);
        if (!s) abort();
        s->req = req;
        http_pull_fn pull = strcmp(req->path, "/stream") == 0        ? pull_chunks
                            : strcmp(req->path, "/slow-stream") == 0 ? pull_forever
                            : strcmp(req->path, "/blind-stream") == 0 ? pull_blind
                                                                      : pull_fail;
        int rc = http_respond_stream(req, 200, "application/x-ndjson", pull, stream_done, s, NULL);
        if (rc != BW_OK) free(s);
    } else if (strcmp(req->path, "/noreply") == 0) {
        /* answers nothing: the layer must answer 500 */
    } else if (strcmp(req->path, "/twice") == 0) {
        /* no cmocka asserts here: this runs on an MHD thread */
        atomic_store(&obs.twice_first, http_respond(req, 200, "text/plain", "one", 3, NULL));
        atomic_store(&obs.twice_second, http_respond(req, 200, "text/plain", "two", 3, NULL));
    } else {
        http_respond(req, 200, "text/plain", "ok", 2, NULL);
    }
}

static const char *const public_paths[] = {"/", "/health", NULL};

static struct http_server *start_server(const char *api_key, const char *origins)
{
    struct http_config cfg = {
        .host = "127.0.0.1",
        .port = 0,
        .max_body = MAX_BODY,
        .api_key = api_key,
        .origins = origins,
        .public_paths = public_paths,
        .handler = test_handler,
        .begin = test_begin,
    };
    struct http_server *s = NULL;
    struct bw_err err = {0};
    int rc = http_start(&cfg, &s, &err);
    if (rc != BW_OK) fprintf(stderr, "http_start: %s\n", err.msg);
    assert_int_equal(rc, BW_OK);
    assert_non_null(s);
    assert_true(http_port(s) > 0);
    return s;
}

/* ---- a tiny HTTP/1.1 client -------------------------------------------------------------- */

struct resp {
    int status;
    char head[8192]; /* status line + headers, NUL-terminated */
    char *body;
    size_t body_len;
    bool closed; /* the server closed the connection after this response */
};

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        assert_true(w > 0);
        p += w, n -= (size_t)w;
    }
}

/* Buffered reader with a deadline. */
struct rd {
    int fd;
    char buf[65536];
    size_t len, off;
    int64_t deadline;
    bool eof;
};

/* Reads more; false on EOF, error or timeout. */
static bool rd_fill(struct rd *r)
{
    if (r->off == r->len) r->off = r->len = 0;
    if (r->len == sizeof r->buf) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off, r->off = 0;
    }
    for (;;) {
        int left = (int)(r->deadline - now_ms());
        if (left <= 0) return false;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return false;
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            r->eof = true;
            return false;
        }
        r->len += (size_t)n;
        return true;
    }
}

/* One line without CRLF into out; false when none came. */
static bool rd_line(struct rd *r, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(r->buf + r->off, '\n', r->len - r->off);
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->off));
            size_t m = n && r->buf[r->off + n - 1] == '\r' ? n - 1 : n;
            if (m >= cap) m = cap - 1;
            memcpy(out, r->buf + r->off, m);
            out[m] = '\0';
            r->off += n + 1;
            return true;
        }
        if (!rd_fill(r)) return false;
    }
}

static bool rd_bytes(struct rd *r, char *out, size_t n)
{
    while (n) {
        if (r->off == r->len && !rd_fill(r)) return false;
        size_t k = r->len - r->off < n ? r->len - r->off : n;
        memcpy(out, r->buf + r->off, k);
        r->off += k, out += k, n -= k;
    }
    return true;
}

/* Header value from a response head (case-insensitive name); copied into out. */
static bool resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ') p++;
            const char *e = strstr(p, "\r\n");
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n >= cap) n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return true;
        }
        p = strstr(p, "\r\n");
    }
    return false;
}

static bool has_header(const struct resp *r, const char *name)
{
    char tmp[512];
    return resp_header(r, name, tmp, sizeof tmp);
}

static void body_add(struct resp *out, const char *p, size_t n)
{
    out->body = realloc(out->body, out->body_len + n + 1);
    assert_non_null(out->body);
    memcpy(out->body + out->body_len, p, n);
    out->body_len += n;
    out->body[out->body_len] = '\0';
}

/* Reads one response (head == true for a HEAD request: no body). Returns false on timeout or
 * a malformed response. */
static bool read_response(struct rd *r, struct resp *out, bool head_request)
{
    memset(out, 0, sizeof *out);
    char line[4096];
    if (!rd_line(r, line, sizeof line)) return false;
    if (sscanf(line, "HTTP/1.%*d %d", &out->status) != 1) return false;
    size_t hl = (size_t)snprintf(out->head, sizeof out->head, "%s\r\n", line);
    for (;;) {
        if (!rd_line(r, line, sizeof line)) return false;
        if (!line[0]) break;
        hl += (size_t)snprintf(out->head + hl, sizeof out->head - hl, "%s\r\n", line);
        assert_true(hl < sizeof out->head);
    }
    body_add(out, "", 0);
    char v[128];
    if (resp_header(out, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0) out->closed = true;
    if (head_request || out->status == 204 || out->status == 304) return true;
    if (resp_header(out, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
        for (;;) {
            if (!rd_line(r, line, sizeof line)) return false;
            unsigned long n = strtoul(line, NULL, 16);
            if (n == 0) {
                do {
                    if (!rd_line(r, line, sizeof line)) return false;
                } while (line[0]); /* trailers */
                return true;
            }
            char *chunk = malloc(n);
            assert_non_null(chunk);
            bool ok = rd_bytes(r, chunk, n);
            if (ok) body_add(out, chunk, n);
            free(chunk);
            if (!ok || !rd_line(r, line, sizeof line)) return false;
        }
    }
    if (resp_header(out, "Content-Length", v, sizeof v)) {
        size_t n = strtoul(v, NULL, 10);
        char *b = malloc(n + 1);
        assert_non_null(b);
        bool ok = rd_bytes(r, b, n);
        if (ok) body_add(out, b, n);
        free(b);
        return ok;
    }
    /* until EOF */
    while (r->off < r->len || rd_fill(r)) {
        body_add(out, r->buf + r->off, r->len - r->off);
        r->off = r->len;
    }
    out->closed = true;
    return r->eof;
}

/* Sends one raw request on a fresh connection and reads the response. */
static void exchange(int port, const char *raw, size_t len, struct resp *out)
{
    int fd = connect_port(port);
    send_all(fd, raw, len);
    struct rd *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->fd = fd;
    r->deadline = now_ms() + IO_TIMEOUT_MS;
    bool head = strncmp(raw, "HEAD ", 5) == 0;
    bool ok = read_response(r, out, head);
    free(r);
    close(fd);
    assert_true(ok);
}

/* A request with Connection: close, Host 127.0.0.1:port, optional extra header lines
 * (each ending in \r\n) and optional body. */
static void request(int port, const char *method, const char *path, const char *extra, const char *body,
                    struct resp *out)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = 1024 + (extra ? strlen(extra) : 0) + blen;
    char *raw = malloc(cap);
    assert_non_null(raw);
    int n = snprintf(raw, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s", method, path,
                     port, extra ? extra : "");
    if (body) n += snprintf(raw + n, cap - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(raw + n, cap - (size_t)n, "\r\n");
    if (body) memcpy(raw + n, body, blen);
    exchange(port, raw, (size_t)n + blen, out);
    free(raw);
}

static bool wait_until(atomic_int *v, int want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (atomic_load(v) != want) {
        if (now_ms() > end) return false;
        sleep_ms(5);
    }
    return true;
}

/* ---- tests ------------------------------------------------------------------------------- */

static int setup(void **state)
{
    obs_reset();
    *state = start_server(NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    http_stop(*state);
    return 0;
}

static void test_echo(void **state)
{
    int port = http_port(*state);
    struct resp r;
    request(port, "POST", "/echo", "Content-Type: application/json\r\n", "{\"hello\":\"world\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"hello\":\"world\"}");
    char v[256];
    assert_true(resp_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    resp_free(&r);

    /* exactly max_body is fine */
    char *big = malloc(MAX_BODY + 1);
    memset(big, 'a', MAX_BODY);
    big[MAX_BODY] = '\0';
    request(port, "POST", "/echo", NULL, big, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, MAX_BODY);
    assert_memory_equal(r.body, big, MAX_BODY);
    resp_free(&r);
    free(big);
}

static void test_request_info(void **state)
{
    int port = http_port(*state);
    struct resp r;
    request(port, "GET", "/info?q=a%20b&z=1", "X-Custom: yes\r\nUser-Agent: tester/1\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "method=GET"));
    assert_non_null(strstr(r.body, "body=null len=0"));
    assert_non_null(strstr(r.body, "q=a b"));
    assert_non_null(strstr(r.body, "h=yes"));
    assert_non_null(strstr(r.body, "ua=tester/1"));
    char v[64];
    assert_true(resp_header(&r, "X-Extra", v, sizeof v));
    assert_string_equal(v, "1");
    unsigned long long seq1 = strtoull(strstr(r.body, "seq=") + 4, NULL, 10);
    assert_true(seq1 > 0);
    resp_free(&r);

    request(port, "GET", "/info", NULL, NULL, &r);
    unsigned long long seq2 = strtoull(strstr(r.body, "seq=") + 4, NULL, 10);
    assert_true(seq2 > seq1);
    resp_free(&r);

    /* HEAD: headers, no body */
    request(port, "HEAD", "/info", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(has_header(&r, "X-Request-Id"));
    resp_free(&r);
}

static void test_request_id(void **state)
{
    int port = http_port(*state);
    struct resp r;
    char v[256];

    request(port, "GET", "/info", "X-Request-Id: my-id-123\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(resp_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_equal(v, "my-id-123");
    assert_non_null(strstr(r.body, "rid=my-id-123 "));
    resp_free(&r);

    request(port, "GET", "/info", NULL, NULL, &r);
    assert_true(resp_header(&r, "X-Request-Id", v, sizeof v));
    assert_int_equal(strlen(v), 16);
    for (int i = 0; i < 16; i++) assert_true(isxdigit((unsigned char)v[i]));
    char first[32];
    strcpy(first, v);
    resp_free(&r);

    request(port, "GET", "/info", NULL, NULL, &r);
    assert_true(resp_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_not_equal(v, first);
    resp_free(&r);

    /* too long: replaced */
    char hdr[300] = "X-Request-Id: ";
    memset(hdr + strlen(hdr), 'x', 200);
    strcat(hdr, "\r\n");
    request(port, "GET", "/info", hdr, NULL, &r);
    assert_true(resp_header(&r, "X-Request-Id", v, sizeof v));
    assert_int_equal(strlen(v), 16);
    resp_free(&r);

    /* answers of this layer carry it too */
    request(port, "GET", "/noreply", "X-Request-Id: nr-1\r\n", NULL, &r);
    assert_int_equal(r.status, 500);
    assert_true(resp_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_equal(v, "nr-1");
    resp_free(&r);
}

static void test_noreply_500(void **state)
{
    int port = http_port(*state);
    struct resp r;
    request(port, "GET", "/noreply", NULL, NULL, &r);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "{\"error\":\"internal error: no response\"}");
    resp_free(&r);

    atomic_store(&obs.twice_first, 99);
    atomic_store(&obs.twice_second, 99);
    request(port, "GET", "/twice", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "one");
    resp_free(&r);
    assert_int_equal(atomic_load(&obs.twice_first), BW_OK);
    assert_int_equal(atomic_load(&obs.twice_second), BW_EINVAL);
}

static void test_body_too_large(void **state)
{
    int port = http_port(*state);
    struct resp r;
    char *big = malloc(2 * MAX_BODY + 1);
    memset(big, 'b', 2 * MAX_BODY);
    big[2 * MAX_BODY] = '\0';

    request(port, "POST", "/echo", NULL, big, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"error\":\"request body is larger than 1024 bytes\"}");
    assert_true(has_header(&r, "X-Request-Id"));
    resp_free(&r);

    /* the same connection keeps working after a drained 413 (keep-alive) */
    int fd = connect_port(port);
    char raw[4096];
    int n = snprintf(raw, sizeof raw, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n",
                     MAX_BODY + 1);
    send_all(fd, raw, (size_t)n);
    send_all(fd, big, MAX_BODY + 1);
    n = snprintf(raw, sizeof raw, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi");
    send_all(fd, raw, (size_t)n);
    struct rd *rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 413);
    resp_free(&r);
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hi");
    resp_free(&r);
    free(rd);
    close(fd);

    /* chunked upload over the limit: no Content-Length, caught while accumulating */
    fd = connect_port(port);
    n = snprintf(raw, sizeof raw,
                 "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    send_all(fd, raw, (size_t)n);
    for (int i = 0; i < 3; i++) {
        n = snprintf(raw, sizeof raw, "%x\r\n", 600);
        send_all(fd, raw, (size_t)n);
        send_all(fd, big, 600);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
    rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(rd);
    close(fd);

    /* a huge declared length is answered before the body is sent */
    fd = connect_port(port);
    n = snprintf(raw, sizeof raw, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\n");
    send_all(fd, raw, (size_t)n);
    send_all(fd, big, 100);
    rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(rd);
    close(fd);

    /* Expect: 100-continue with too much: 413 instead of 100 */
    fd = connect_port(port);
    n = snprintf(raw, sizeof raw,
                 "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    send_all(fd, raw, (size_t)n);
    rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(rd);
    close(fd);

    /* and the server still serves */
    request(port, "POST", "/echo", NULL, "after", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "after");
    resp_free(&r);
    free(big);
}

static void test_host_guard(void **state)
{
    int port = http_port(*state);
    struct resp r;
    char raw[512];
    struct {
        const char *host;
        int want;
    } cases[] = {
        {"evil.example.com", 403},  {"evil.example.com:11434", 403}, {"localhost:11434", 200},
        {"localhost", 200},         {"127.0.0.1", 200},              {"127.1.2.3:80", 200},
        {"[::1]:11434", 200},       {"[::1]", 200},                  {"0.0.0.0:11434", 200},
        {"LOCALHOST:1", 200},       {"app.localhost", 200},          {"8.8.8.8", 403},
        {"127.0.0.1.nip.io", 403},  {"localhost.evil.com", 403},     {"192.168.1.5:11434", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = snprintf(raw, sizeof raw, "GET /info HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", cases[i].host);
        exchange(port, raw, (size_t)n, &r);
        if (r.status != cases[i].want) fprintf(stderr, "Host: %s -> %d\n", cases[i].host, r.status);
        assert_int_equal(r.status, cases[i].want);
        if (cases[i].want == 403) {
            assert_string_equal(r.body, "{\"error\":\"host not allowed\"}");
            assert_true(has_header(&r, "X-Request-Id"));
        }
        resp_free(&r);
    }
    /* Host with the real port, and HTTP/1.0 without Host */
    request(port, "GET", "/info", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    const char *h10 = "GET /info HTTP/1.0\r\n\r\n";
    exchange(port, h10, strlen(h10), &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_api_key(void **state)
{
    (void)state;
    struct http_server *s = start_server("s3cret-key", NULL);
    int port = http_port(s);
    struct resp r;
    char v[128];

    request(port, "POST", "/echo", NULL, "x", &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.body, "{\"error\":\"unauthorized\"}");
    assert_true(resp_header(&r, "WWW-Authenticate", v, sizeof v));
    assert_string_equal(v, "Bearer");
    assert_true(has_header(&r, "X-Request-Id"));
    resp_free(&r);

    const char *wrong[] = {"Authorization: Bearer s3cret-kez\r\n", "Authorization: Bearer s3cret-key2\r\n",
                           "Authorization: Bearer s3cret\r\n", "Authorization: Basic s3cret-key\r\n",
                           "Authorization: s3cret-key\r\n", "Authorization: Bearer \r\n"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        request(port, "POST", "/echo", wrong[i], "x", &r);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }

    request(port, "POST", "/echo", "Authorization: Bearer s3cret-key\r\n", "x", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "x");
    resp_free(&r);
    request(port, "POST", "/echo", "authorization: bearer s3cret-key\r\n", "y", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    request(port, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    request(port, "GET", "/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    request(port, "GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);

    /* a preflight needs no key (browsers never send one) */
    request(port, "OPTIONS", "/api/chat",
            "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n", NULL, &r);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    http_stop(s);
}

static void test_cors(void **state)
{
    int port = http_port(*state);
    struct resp r;
    char v[1024];

    const char *ok[] = {"http://localhost:3000", "http://localhost", "https://127.0.0.1:8443", "http://[::1]:5173",
                        "app://obsidian.md", "tauri://localhost", "file://", "vscode-webview://abc"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char hdr[256];
        snprintf(hdr, sizeof hdr, "Origin: %s\r\n", ok[i]);
        request(port, "GET", "/info", hdr, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_true(resp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
        assert_string_equal(v, ok[i]);
        assert_true(resp_header(&r, "Vary", v, sizeof v));
        assert_non_null(strstr(v, "Origin"));
        resp_free(&r);
    }

    const char *bad[] = {"http://evil.example", "http://localhost.evil.example", "https://example.com",
                         "http://127.0.0.1.evil.example:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char hdr[256];
        snprintf(hdr, sizeof hdr, "Origin: %s\r\n", bad[i]);
        request(port, "POST", "/echo", hdr, "{}", &r);
        assert_int_equal(r.status, 403);
        assert_false(has_header(&r, "Access-Control-Allow-Origin"));
        assert_true(has_header(&r, "X-Request-Id"));
        resp_free(&r);
    }

    /* no Origin: no CORS headers */
    request(port, "GET", "/info", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_false(has_header(&r, "Access-Control-Allow-Origin"));
    resp_free(&r);

    /* preflight */
    request(port, "OPTIONS", "/v1/chat/completions",
            "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n"
            "Access-Control-Request-Headers: content-type, x-stainless-os\r\n",
            NULL, &r);
    assert_int_equal(r.status, 204);
    assert_true(resp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    assert_string_equal(v, "http://localhost:3000");
    assert_true(resp_header(&r, "Access-Control-Allow-Methods", v, sizeof v));
    assert_non_null(strstr(v, "POST"));
    assert_non_null(strstr(v, "DELETE"));
    assert_true(resp_header(&r, "Access-Control-Allow-Headers", v, sizeof v));
    assert_non_null(strstr(v, "x-stainless-os"));
    assert_true(has_header(&r, "Access-Control-Max-Age"));
    resp_free(&r);

    request(port, "OPTIONS", "/api/chat", "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n",
            NULL, &r);
    assert_int_equal(r.status, 204);
    assert_true(resp_header(&r, "Access-Control-Allow-Headers", v, sizeof v));
    assert_non_null(strstr(v, "Authorization"));
    resp_free(&r);

    /* configured origins */
    struct http_server *s = start_server(NULL, " https://app.example.com/, http://*.corp.example ");
    int p2 = http_port(s);
    request(p2, "GET", "/info", "Origin: https://app.example.com\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(resp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    assert_string_equal(v, "https://app.example.com");
    resp_free(&r);
    request(p2, "GET", "/info", "Origin: http://wiki.corp.example\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Access-Control-Allow-Origin"));
    resp_free(&r);
    request(p2, "GET", "/info", "Origin: http://evil.example\r\n", NULL, &r);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    request(p2, "GET", "/info", "Origin: http://localhost:8080\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http_stop(s);

    s = start_server(NULL, "*");
    p2 = http_port(s);
    request(p2, "GET", "/info", "Origin: http://evil.example\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(resp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    assert_string_equal(v, "http://evil.example");
    resp_free(&r);
    http_stop(s);
}

static void test_stream(void **state)
{
    int port = http_port(*state);
    struct resp r;
    request(port, "GET", "/stream", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    char v[128];
    assert_true(resp_header(&r, "Transfer-Encoding", v, sizeof v));
    assert_string_equal(v, "chunked");
    assert_true(resp_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/x-ndjson");
    assert_true(has_header(&r, "X-Request-Id"));
    assert_string_equal(r.body, "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    resp_free(&r);
    assert_true(wait_until(&obs.done_calls, 1, 2000));
    assert_int_equal(atomic_load(&obs.completed), 1);
    sleep_ms(50);
    assert_int_equal(atomic_load(&obs.done_calls), 1);
    assert_int_equal(atomic_load(&obs.pulls_after_done), 0);

    /* two streams on one keep-alive connection */
    obs_reset();
    int fd = connect_port(port);
    const char *two = "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\nGET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, two, strlen(two));
    struct rd *rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    for (int i = 0; i < 2; i++) {
        assert_true(read_response(rd, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
        resp_free(&r);
    }
    free(rd);
    close(fd);
    assert_true(wait_until(&obs.done_calls, 2, 2000));
    assert_int_equal(atomic_load(&obs.completed), 1);

    /* HTTP/1.0: no chunking, the end is the close */
    obs_reset();
    const char *h10 = "GET /stream HTTP/1.0\r\n\r\n";
    exchange(port, h10, strlen(h10), &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    resp_free(&r);
    assert_true(wait_until(&obs.done_calls, 1, 2000));
    assert_int_equal(atomic_load(&obs.completed), 1);

    /* pull returning -1 aborts: done(false) */
    obs_reset();
    fd = connect_port(port);
    const char *f = "GET /fail-stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, f, strlen(f));
    rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    assert_false(read_response(rd, &r, false)); /* cut off: no terminating chunk */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    free(rd);
    close(fd);
    assert_true(wait_until(&obs.done_calls, 1, 2000));
    assert_int_equal(atomic_load(&obs.completed), 0);

    /* HEAD of a stream: never pulled, done(false) */
    obs_reset();
    request(port, "HEAD", "/stream", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_true(wait_until(&obs.done_calls, 1, 2000));
    assert_int_equal(atomic_load(&obs.completed), 0);
}

static void test_disconnect_mid_stream(void **state)
{
    int port = http_port(*state);
    int fd = connect_port(port);
    const char *q = "GET /slow-stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, q, strlen(q));
    /* read some of it */
    struct rd *rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    char line[256];
    bool got_tick = false;
    while (!got_tick && rd_line(rd, line, sizeof line)) got_tick = strncmp(line, "tick-", 5) == 0;
    assert_true(got_tick);
    free(rd);
    assert_int_equal(atomic_load(&obs.done_calls), 0);
    int64_t t0 = now_ms();
    close(fd);
    assert_true(wait_until(&obs.done_calls, 1, 2000));
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(atomic_load(&obs.completed), 0);
    assert_int_equal(atomic_load(&obs.gone_seen), 1);
    sleep_ms(60);
    assert_int_equal(atomic_load(&obs.done_calls), 1);
    assert_int_equal(atomic_load(&obs.pulls_after_done), 0);
}

static void test_disconnect_blind_stream(void **state)
{
    int port = http_port(*state);
    int fd = connect_port(port);
    const char *q = "GET /blind-stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, q, strlen(q));
    struct rd *rd = calloc(1, sizeof *rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    char line[256];
    bool got_tick = false;
    while (!got_tick && rd_line(rd, line, sizeof line)) got_tick = strncmp(line, "tick-", 5) == 0;
    assert_true(got_tick);
    free(rd);
    close(fd);
    assert_true(wait_until(&obs.done_calls, 1, 2000));
    assert_int_equal(atomic_load(&obs.completed), 0);
    sleep_ms(60);
    assert_int_equal(atomic_load(&obs.done_calls), 1);
    assert_int_equal(atomic_load(&obs.pulls_after_done), 0);
}

/* http_stop with a stream in flight: the pull sees the connection gone, done(false), and
 * stop returns. */
static void test_stop_with_open_stream(void **state)
{
    (void)state;
    obs_reset();
    struct http_server *s = start_server(NULL, NULL);
    int fd = connect_port(http_port(s));
    const char *q = "GET /slow-stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, q, strlen(q));
    assert_true(wait_until(&obs.slow_started, 1, 2000));
    int64_t t0 = now_ms();
    http_stop(s);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(atomic_load(&obs.done_calls), 1);
    assert_int_equal(atomic_load(&obs.completed), 0);
    close(fd);
}

static void test_bind_errors(void **state)
{
    int port = http_port(*state);
    struct http_config cfg = {.host = "127.0.0.1", .port = port, .handler = test_handler};
    struct http_server *s = NULL;
    struct bw_err err = {0};
    assert_int_equal(http_start(&cfg, &s, &err), BW_EIO);
    assert_null(s);
    char want[64];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: ", port);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "Address already in use"));

    cfg.port = 0;
    cfg.host = "not an address";
    assert_int_not_equal(http_start(&cfg, &s, &err), BW_OK);
    assert_null(s);

    /* IPv6 loopback, when the machine has it */
    cfg.host = "::1";
    if (http_start(&cfg, &s, &err) == BW_OK) {
        assert_true(http_port(s) > 0);
        http_stop(s);
    }
}

/* ---- streamed request bodies (http.h) ------------------------------------------------------ */

static struct rd *rd_new(int fd)
{
    struct rd *rd = calloc(1, sizeof *rd);
    assert_non_null(rd);
    rd->fd = fd;
    rd->deadline = now_ms() + IO_TIMEOUT_MS;
    return rd;
}

/* A body far over max_body goes through the body callback, in pieces, with or without
 * Content-Length; release runs once per request; buffered routes keep their 413. */
static void test_stream_body(void **state)
{
    int port = http_port(*state);
    struct resp r;
    size_t n_big = 256 * 1024; /* 256 x MAX_BODY */
    char *big = malloc(n_big);
    assert_non_null(big);
    for (size_t i = 0; i < n_big; i++) big[i] = (char)(i * 7 + (i >> 9));
    char want[128];
    snprintf(want, sizeof want, "n=%zu len=%zu sum=%08x ", n_big, n_big, (unsigned)fnv1a(2166136261u, big, n_big));

    /* Content-Length; Expect: 100-continue gets its 100 although the length is over max_body */
    int fd = connect_port(port);
    char raw[512];
    int n = snprintf(raw, sizeof raw,
                     "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\nExpect: 100-continue\r\n\r\n",
                     n_big);
    send_all(fd, raw, (size_t)n);
    struct rd *rd = rd_new(fd);
    char line[256];
    assert_true(rd_line(rd, line, sizeof line));
    assert_non_null(strstr(line, " 100 "));
    assert_true(rd_line(rd, line, sizeof line));
    assert_string_equal(line, "");
    send_all(fd, big, n_big);
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "body=null piece_ok=1"));
    assert_true(atoi(strstr(r.body, "calls=") + 6) > 1); /* in pieces */
    resp_free(&r);

    /* the same keep-alive connection: a chunked upload, then a buffered request */
    n = snprintf(raw, sizeof raw, "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    send_all(fd, raw, (size_t)n);
    for (size_t off = 0; off < n_big; off += 10000) {
        size_t k = n_big - off < 10000 ? n_big - off : 10000;
        n = snprintf(raw, sizeof raw, "%zx\r\n", k);
        send_all(fd, raw, (size_t)n);
        send_all(fd, big + off, k);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
    n = snprintf(raw, sizeof raw, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi");
    send_all(fd, raw, (size_t)n);
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, want));
    resp_free(&r);
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hi");
    resp_free(&r);
    free(rd);
    close(fd);
    assert_true(wait_until(&obs.released, 2, 2000));
    assert_int_equal(atomic_load(&obs.handled), 2);

    /* an empty streamed body: the handler runs, no piece */
    obs_reset();
    request(port, "POST", "/upload", NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "n=0 len=0 "));
    assert_non_null(strstr(r.body, "calls=0"));
    resp_free(&r);
    assert_true(wait_until(&obs.released, 1, 2000));

    /* the buffered routes keep max_body */
    request(port, "POST", "/echo", NULL, "x", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    big[2 * MAX_BODY] = '\0';
    memset(big, 'a', 2 * MAX_BODY);
    request(port, "POST", "/echo", NULL, big, &r);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    /* and know nothing of streaming */
    obs_reset();
    request(port, "POST", "/late-stream", NULL, "abc", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "no-ud");
    assert_int_equal(atomic_load(&obs.late_rc), BW_EINVAL);
    assert_int_equal(atomic_load(&obs.released), 0);
    resp_free(&r);
    free(big);
}

/* body() returning false: the rest is read and thrown away, the handler still runs. */
static void test_stream_body_stop(void **state)
{
    int port = http_port(*state);
    struct resp r;
    char *big = malloc(200001);
    memset(big, 'z', 200000);
    big[200000] = '\0';
    request(port, "POST", "/upload-stop", NULL, big, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "len=200000 "));
    assert_non_null(strstr(r.body, "calls=1 "));
    resp_free(&r);
    assert_true(wait_until(&obs.released, 1, 2000));
    free(big);
}

/* The hook answering at once: before the body (no 100 Continue), no release, no handler. */
static void test_stream_body_refused(void **state)
{
    int port = http_port(*state);
    int fd = connect_port(port);
    const char *q = "POST /upload-refuse HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000\r\n"
                    "Expect: 100-continue\r\n\r\n";
    send_all(fd, q, strlen(q));
    struct rd *rd = rd_new(fd);
    struct resp r;
    assert_true(read_response(rd, &r, false));
    assert_int_equal(r.status, 507);
    assert_string_equal(r.body, "{\"error\":\"no room\"}");
    assert_true(has_header(&r, "X-Request-Id"));
    resp_free(&r);
    free(rd);
    close(fd);
    sleep_ms(50);
    assert_int_equal(atomic_load(&obs.begin_calls), 1);
    assert_int_equal(atomic_load(&obs.handled), 0);
    assert_int_equal(atomic_load(&obs.released), 0);

    struct resp r2;
    request(port, "GET", "/info", NULL, NULL, &r2);
    assert_int_equal(r2.status, 200);
    resp_free(&r2);
}

/* A client gone mid-body: release runs (the place to drop a half-written file), the
 * handler never does, and the server keeps serving. */
static void test_stream_body_disconnect(void **state)
{
    int port = http_port(*state);
    int fd = connect_port(port);
    const char *q = "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\n\r\n";
    send_all(fd, q, strlen(q));
    char chunk[4000];
    memset(chunk, 'q', sizeof chunk);
    send_all(fd, chunk, sizeof chunk);
    int64_t end = now_ms() + 2000;
    while (atomic_load(&obs.pieces) == 0 && now_ms() < end) sleep_ms(5);
    assert_true(atomic_load(&obs.pieces) > 0);
    assert_int_equal(atomic_load(&obs.released), 0);
    close(fd);
    assert_true(wait_until(&obs.released, 1, 2000));
    sleep_ms(50);
    assert_int_equal(atomic_load(&obs.released), 1);
    assert_int_equal(atomic_load(&obs.handled), 0);
    struct resp r;
    request(port, "POST", "/upload", NULL, "after", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "n=5 len=5 "));
    resp_free(&r);
    assert_true(wait_until(&obs.released, 2, 2000)); /* release may follow the answer */

    /* http_stop with an upload in flight: released too */
    obs_reset();
    struct http_server *s = start_server(NULL, NULL);
    fd = connect_port(http_port(s));
    send_all(fd, q, strlen(q));
    send_all(fd, chunk, sizeof chunk);
    end = now_ms() + 2000;
    while (atomic_load(&obs.pieces) == 0 && now_ms() < end) sleep_ms(5);
    assert_true(atomic_load(&obs.pieces) > 0);
    http_stop(s);
    assert_int_equal(atomic_load(&obs.released), 1);
    assert_int_equal(atomic_load(&obs.handled), 0);
    close(fd);
}

/* The hook sees only requests that passed the header checks: no key, a bad Host or Origin,
 * a preflight: not called, and the request is answered as a buffered one. */
static void test_stream_body_gates(void **state)
{
    (void)state;
    obs_reset();
    struct http_server *s = start_server("k3y", NULL);
    int port = http_port(s);
    struct resp r;
    request(port, "POST", "/upload", NULL, "data", &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    request(port, "POST", "/upload", "Authorization: Bearer k3y\r\nOrigin: http://evil.example\r\n", "data", &r);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    request(port, "OPTIONS", "/upload", "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n",
            NULL, &r);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    const char *evil = "POST /upload HTTP/1.1\r\nHost: evil.example.com\r\nAuthorization: Bearer k3y\r\n"
                       "Content-Length: 4\r\nConnection: close\r\n\r\ndata";
    exchange(port, evil, strlen(evil), &r);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    /* unauthorized and larger than max_body: the buffered 413, nothing streamed */
    char *big = malloc(4 * MAX_BODY + 1);
    memset(big, 'u', 4 * MAX_BODY);
    big[4 * MAX_BODY] = '\0';
    request(port, "POST", "/upload", NULL, big, &r);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    assert_int_equal(atomic_load(&obs.begin_calls), 0);
    assert_int_equal(atomic_load(&obs.pieces), 0);

    request(port, "POST", "/upload", "Authorization: Bearer k3y\r\nOrigin: http://localhost:3000\r\n", big, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "n=4096 len=4096 "));
    char v[128];
    assert_true(resp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    assert_string_equal(v, "http://localhost:3000");
    resp_free(&r);
    assert_int_equal(atomic_load(&obs.begin_calls), 1);
    free(big);
    http_stop(s);
    assert_int_equal(atomic_load(&obs.released), 1);
}

/* Requests on several connections at once (thread per connection). */
struct par {
    int port;
    int ok;
};

static void *par_client(void *arg)
{
    struct par *p = arg;
    for (int i = 0; i < 20; i++) {
        struct resp r;
        char body[64];
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        request(p->port, "POST", "/echo", NULL, body, &r);
        if (r.status == 200 && strcmp(r.body, body) == 0) p->ok++;
        resp_free(&r);
    }
    return NULL;
}

static void test_parallel(void **state)
{
    struct par p[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (struct par){.port = http_port(*state)};
        assert_int_equal(pthread_create(&t[i], NULL, par_client, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(p[i].ok, 20);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("BELLOWS_DEBUG")) log_init_from_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noreply_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_blind_stream, setup, teardown),
        cmocka_unit_test(test_stop_with_open_stream),
        cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_body_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_body_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_body_disconnect, setup, teardown),
        cmocka_unit_test(test_stream_body_gates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
