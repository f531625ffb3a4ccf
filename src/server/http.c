/* http.c -- see http.h and http_int.h. libmicrohttpd (0.9.75): a pool of event-loop threads
 * (MHD_OPTION_THREAD_POOL_SIZE) that never wait for a handler; handlers run on workers
 * (http_respond.c).
 *
 * poll(), not epoll: with MHD_USE_EPOLL (pool or single thread) 0.9.75 stops reading a
 * request body now and then -- bytes sit in the socket's receive queue, MHD sleeps in
 * epoll_wait, and a client that then leaves is never noticed (CLOSE-WAIT, the upload's
 * temporary file stays); blobs.test.mjs "disconnects mid-upload" caught it 6 times in 6.
 * poll() is level-triggered and does not lose that wake-up; each thread polls only its own
 * share of the connections.
 *
 * DESIGN
 * One struct http_conn per request, created on MHD's first access-handler call (headers
 * only) and released in the request-completed callback (MHD_OPTION_NOTIFY_COMPLETED), which
 * MHD calls exactly once per request that reached the access handler, after it last calls a
 * content reader; a worker holds a second reference while it runs. Everything a request
 * needs (its body, its request id, its stream) hangs off that struct.
 *
 * MHD calls the access handler (1) once with the headers, (2) once per piece of upload
 * data, (3) once more with *upload_data_size == 0 when the whole request is in. A response
 * can be queued only in calls (1) and (3). We accumulate the body in (2); in (3) the checks
 * of http.h answer at once, or the request goes to a worker and the connection is suspended;
 * when the worker has the handler's answer it resumes the connection, MHD calls (3) again and
 * the answer is queued there.
 *
 * A too-large body is answered 413: when Content-Length already says so and the excess
 * is large (or the client waits for "100 Continue"), at once in (1) -- MHD then stops
 * reading and closes the connection after the answer; otherwise the rest of the body is
 * read and thrown away, and the 413 goes out in (3), keeping the connection usable (a
 * client still writing its body when the server closes may see a reset instead of the
 * 413, which draining avoids).
 *
 * The checks, in order, each answering {"error":...} itself: 413 body too large; 403 "host
 * not allowed" (loopback bind, Host not a local name: Ollama's allowedHostsMiddleware);
 * 403 "origin not allowed" (an Origin off the list, as gin-contrib/cors does for Ollama);
 * OPTIONS -> 204 preflight (before the key check: browsers send no credentials on a
 * preflight); 401 without the API key. Then the handler; no answer from it -> 500.
 *
 * Streamed request bodies: in call (1), when the headers pass the checks (gate()), the
 * begin hook may opt in (http_stream_body). Then the 413 logic is skipped, each piece of
 * (2) goes to the body callback instead of the buffer (on the event-loop thread: a disk
 * write per 32 KiB piece), and (3) runs the checks again (they pass: same headers) and the
 * handler. release(ud) runs when the last holder lets go of the request, so a client that
 * leaves mid-body still frees it.
 *
 * Limits: MHD_OPTION_CONNECTION_TIMEOUT closes a connection idle for idle_timeout (one
 * suspended for its worker is not idle: MHD stops its clock); http_sockets.c closes the
 * longest-idle connections past max_connections; MHD_OPTION_PER_IP_CONNECTION_LIMIT caps one
 * address. The descriptor limit is raised to its hard maximum at start so the connection
 * limit, not EMFILE, is what applies. */
#define _GNU_SOURCE
#include "server/http_int.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)
/* An oversized body declared by Content-Length is read and discarded (so the client
 * reliably gets the 413 on a live connection) when the excess is at most this much;
 * beyond it the 413 is sent before the body and the connection is closed. */
#define HTTP_DRAIN_MAX ((size_t)8 << 20)
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_DEFAULT_IDLE_TIMEOUT_S 120
#define HTTP_DEFAULT_WRITE_TIMEOUT_MS 60000

static _Atomic uint64_t next_seq = 1;

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool starts_with_ci(const char *s, size_t n, const char *prefix, size_t pn)
{
    return n >= pn && strncasecmp(s, prefix, pn) == 0;
}

/* Equal in time that depends only on the length of `want` (the secret). */
static bool ct_equal(const char *got, size_t got_len, const char *want, size_t want_len)
{
    unsigned char diff = (unsigned char)(got_len != want_len);
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
        diff |= g ^ (unsigned char)want[i];
    }
    return diff == 0;
}

static char *dup_trimmed(const char *s, size_t n)
{
    while (n && (isspace((unsigned char)*s) || *s == '"' || *s == '\'')) s++, n--;
    while (n && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '"' || s[n - 1] == '\'')) n--;
    while (n > 1 && s[n - 1] == '/') n--; /* "https://x.example/" means the origin https://x.example */
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void free_strv(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

/* ---- request ids ---------------------------------------------------------------------- */

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= HTTP_RID_MAX || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e) return false;
    return n > 0;
}

static void make_request_id(struct http_conn *c, const char *client_id)
{
    if (client_id && valid_request_id(client_id)) {
        snprintf(c->request_id, sizeof c->request_id, "%s", client_id);
        return;
    }
    uint64_t x = mix64(c->req.seq ^ mix64((uint64_t)clock_real_ns()) ^ ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)c);
    snprintf(c->request_id, sizeof c->request_id, "%016llx", (unsigned long long)x);
}

/* ---- CORS ----------------------------------------------------------------------------- */

/* Ollama's defaults (envconfig.AllowedOrigins), plus [::1]. */
static const char *const default_origins[] = {
    "http://localhost",    "https://localhost",    "http://localhost:*",    "https://localhost:*",
    "http://127.0.0.1",    "https://127.0.0.1",    "http://127.0.0.1:*",    "https://127.0.0.1:*",
    "http://0.0.0.0",      "https://0.0.0.0",      "http://0.0.0.0:*",      "https://0.0.0.0:*",
    "http://[::1]",        "https://[::1]",        "http://[::1]:*",        "https://[::1]:*",
    "app://*",             "file://*",             "tauri://*",             "vscode-webview://*",
    "vscode-file://*",
};
#define N_DEFAULT_ORIGINS (sizeof default_origins / sizeof default_origins[0])

/* An exact origin, or one '*' matching anything (gin-contrib/cors wildcard rules). */
static bool origin_match(const char *pat, const char *origin)
{
    const char *star = strchr(pat, '*');
    size_t on = strlen(origin);
    if (!star) return strcasecmp(pat, origin) == 0;
    size_t pre = (size_t)(star - pat), suf = strlen(star + 1);
    return on >= pre + suf && strncasecmp(origin, pat, pre) == 0 &&
           strncasecmp(origin + on - suf, star + 1, suf) == 0;
}

static bool origin_allowed(const struct http_server *s, const char *origin)
{
    if (s->origins_any) return true;
    for (size_t i = 0; i < s->n_origins; i++)
        if (origin_match(s->origins[i], origin)) return true;
    return false;
}

/* Origin equal to http(s)://<Host>: a same-origin request that happens to carry Origin. */
static bool same_origin(const char *origin, const char *host)
{
    if (!host) return false;
    const char *rest = NULL;
    if (strncasecmp(origin, "http://", 7) == 0) rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0) rest = origin + 8;
    return rest && strcasecmp(rest, host) == 0;
}

static int parse_origins(struct http_server *s, const char *list)
{
    size_t cap = N_DEFAULT_ORIGINS + 1;
    for (const char *p = list; p && *p; p++)
        if (*p == ',') cap++;
    s->origins = calloc(cap + 1, sizeof *s->origins);
    if (!s->origins) return BW_ENOMEM;
    for (size_t i = 0; i < N_DEFAULT_ORIGINS; i++)
        if (!(s->origins[s->n_origins++] = strdup(default_origins[i]))) return BW_ENOMEM;
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *o = dup_trimmed(p, n);
        if (!o) return BW_ENOMEM;
        if (strcmp(o, "*") == 0) s->origins_any = true;
        if (*o) s->origins[s->n_origins++] = o;
        else free(o);
        p = e ? e + 1 : p + n;
    }
    return BW_OK;
}

/* ---- Host guard (Ollama's allowedHostsMiddleware) -------------------------------------- */

static bool ipv4_local(const unsigned char a[4])
{
    return a[0] == 127 || a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
           (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0);
}

static bool ipv6_local(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a)) return true;
    if ((a->s6_addr[0] & 0xfe) == 0xfc) return true; /* fc00::/7, unique local */
    if (IN6_IS_ADDR_V4MAPPED(a)) return ipv4_local(&a->s6_addr[12]);
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A Host header names this machine: localhost (and *.localhost, *.local, *.internal), its
 * hostname, or a loopback, private or unspecified IP literal. Absent Host is allowed. */
static bool host_allowed(const struct http_server *s, const char *hdr)
{
    if (!hdr || !*hdr) return true;
    char h[HTTP_HOSTNAME_MAX];
    const char *start = hdr;
    size_t n;
    if (hdr[0] == '[') {
        const char *end = strchr(hdr, ']');
        if (!end) return false;
        start = hdr + 1;
        n = (size_t)(end - start);
    } else {
        const char *colon = strchr(hdr, ':');
        n = (colon && !strchr(colon + 1, ':')) ? (size_t)(colon - hdr) : strlen(hdr);
    }
    if (n == 0 || n >= sizeof h) return false;
    for (size_t i = 0; i < n; i++) h[i] = (char)tolower((unsigned char)start[i]);
    h[n] = '\0';

    unsigned char v4[4];
    struct in6_addr v6;
    if (inet_pton(AF_INET, h, v4) == 1) return ipv4_local(v4);
    if (inet_pton(AF_INET6, h, &v6) == 1) return ipv6_local(&v6);
    if (strcmp(h, "localhost") == 0) return true;
    if (s->hostname[0] && strcmp(h, s->hostname) == 0) return true;
    return ends_with(h, ".localhost") || ends_with(h, ".local") || ends_with(h, ".internal");
}

/* ---- MHD callbacks -------------------------------------------------------------------- */

static bool is_public(const struct http_server *s, const char *path)
{
    for (char **p = s->public_paths; p && *p; p++)
        if (strcmp(*p, path) == 0) return true;
    return false;
}

static bool authorized(const struct http_server *s, struct http_conn *c)
{
    const char *a = http_header(&c->req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a) return false;
    size_t n = strlen(a);
    if (!starts_with_ci(a, n, "Bearer ", 7)) return false;
    a += 7, n -= 7;
    while (n && *a == ' ') a++, n--;
    while (n && a[n - 1] == ' ') n--;
    return ct_equal(a, n, s->api_key, strlen(s->api_key));
}

/* The header checks of http.h (all but the size), in order, without answering; sets
 * c->cors_origin for an allowed Origin. Depends on the headers only. */
enum gate { GATE_OK, GATE_HOST, GATE_ORIGIN, GATE_PREFLIGHT, GATE_AUTH };

static enum gate gate(struct http_server *s, struct http_conn *c)
{
    const char *origin = http_header(&c->req, "Origin");
    const char *host = http_header(&c->req, MHD_HTTP_HEADER_HOST);
    bool bad_origin = false;
    if (origin && *origin && !same_origin(origin, host)) {
        if (origin_allowed(s, origin)) c->cors_origin = origin;
        else bad_origin = true;
    }
    if (s->loopback && !host_allowed(s, host)) return GATE_HOST;
    /* Like Ollama (gin-contrib/cors): a cross-origin request from an origin not on the list is
     * refused, not just left without CORS headers: a blind POST from a web page must not run. */
    if (bad_origin) return GATE_ORIGIN;
    /* Preflights carry no credentials, so they come before the API-key check. */
    if (strcmp(c->req.method, MHD_HTTP_METHOD_OPTIONS) == 0) return GATE_PREFLIGHT;
    if (s->api_key && !is_public(s, c->req.path) && !authorized(s, c)) return GATE_AUTH;
    return GATE_OK;
}

/* The whole request is in (event-loop thread): the checks of http.h, answered here, or the
 * handler, on a worker of its own. */
static void serve(struct http_server *s, struct http_conn *c)
{
    enum gate g = gate(s, c);
    if (c->too_large) {
        char msg[80];
        snprintf(msg, sizeof msg, "request body is larger than %zu bytes", s->max_body);
        http__respond_error(c, 413, msg, NULL);
        return;
    }
    switch (g) {
    case GATE_OK: break;
    case GATE_HOST: http__respond_error(c, 403, "host not allowed", NULL); return;
    case GATE_ORIGIN: http__respond_error(c, 403, "origin not allowed", NULL); return;
    case GATE_PREFLIGHT: http__preflight(c); return;
    case GATE_AUTH: {
        const char *const h[] = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer", NULL};
        http__respond_error(c, 401, "unauthorized", h);
        return;
    }
    }

    c->req.body = c->body;
    c->req.body_len = c->body_len;
    if (atomic_load(&s->stopping)) http__respond_error(c, 503, "the server is shutting down", NULL);
    else if (!http__dispatch(c)) http__respond_error(c, 503, "the server is out of threads", NULL);
}

void http__serve(struct http_server *s, struct http_conn *c)
{
    c->in_handler = true;
    s->handler(s->handler_ud, &c->req);
    c->in_handler = false;
    if (!c->responded) http__respond_error(c, 500, "internal error: no response", NULL);
}

static bool append_body(struct http_conn *c, const char *data, size_t n)
{
    size_t max = c->srv->max_body;
    if (c->body_len + n > max || c->body_len + n < c->body_len) return false;
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + n + 1) cap *= 2;
        if (cap > max + 1) cap = max + 1;
        char *b = realloc(c->body, cap);
        if (!b) return false; /* treated like too large: the client gets 413, the server lives */
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return true;
}

static void drop_body(struct http_conn *c)
{
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
}

/* First call: set up the request; answer 413 at once if Content-Length is hopeless. */
static struct http_conn *begin(struct http_server *s, struct MHD_Connection *mc, const char *url, const char *method)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->refs = 1; /* MHD's, until the completed callback */
    c->on_loop = true;
    c->srv = s;
    c->mc = mc;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    c->sock = http__sock_of(mc);
    http__sock_busy(s, c->sock, true); /* a request in progress: never cut as idle */
    c->req.method = method;
    c->req.path = url;
    c->req.conn = c;
    c->req.seq = atomic_fetch_add(&next_seq, 1);
    c->req.user_agent = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
    make_request_id(c, MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-Id"));
    c->req.request_id = c->request_id;

    /* A route that streams its body opts in here, before the size limit applies. */
    if (s->begin && gate(s, c) == GATE_OK) {
        c->in_begin = c->in_handler = true;
        s->begin(s->handler_ud, &c->req);
        c->in_begin = c->in_handler = false;
        if (c->responded || c->body_stream) return c;
    }

    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && v > s->max_body) {
            c->too_large = true;
            const char *expect = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            bool waits = expect && strcasecmp(expect, "100-continue") == 0;
            if (waits || v - s->max_body > HTTP_DRAIN_MAX) {
                /* answered before the body is read; MHD closes the connection afterwards */
                const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
                if (origin && origin_allowed(s, origin)) c->cors_origin = origin;
                char msg[80];
                snprintf(msg, sizeof msg, "request body is larger than %zu bytes", s->max_body);
                http__respond_error(c, 413, msg, NULL);
            }
        }
    }
    return c;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct http_server *s = cls;
    struct http_conn *c = *con_cls;
    if (!c) {
        c = begin(s, mc, url, method);
        if (!c) return MHD_NO; /* out of memory: MHD drops the connection */
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size && !c->dispatched) {
        if (c->body_stream) {
            c->body_len += *upload_data_size;
            if (!c->body_stop && !c->responded && !c->body_fn(c->body_ud, upload_data, *upload_data_size))
                c->body_stop = true;
        } else if (!c->too_large && !c->responded && !append_body(c, upload_data, *upload_data_size)) {
            c->too_large = true;
            drop_body(c);
        }
        *upload_data_size = 0; /* consumed (or discarded) */
        return MHD_YES;
    }
    if (c->dispatched) http__queue_pending(c); /* the worker resumed us: its answer is ready */
    else if (!c->responded) serve(s, c);
    return MHD_YES;
}

static const char *toe_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "completed";
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "read error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client gone";
    default: return "other";
    }
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct http_conn *c = *con_cls;
    (void)cls, (void)mc;
    if (!c) return;
    *con_cls = NULL;
    http__sock_busy(c->srv, c->sock, false);
    /* A worker still running sees this and ends its stream (done, then its reference). */
    pthread_mutex_lock(&c->mu);
    c->mhd_done = true;
    c->toe = toe;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        LOG_REQ(LOG_DEBUG, c->req.seq, "http", "%s %s %d rid=%s ended: %s", c->req.method, c->req.path,
                c->status, c->request_id, toe_name(toe));
    else if (!c->logged) /* 401/403/413 went out at INFO already */
        LOG_REQ(LOG_DEBUG, c->req.seq, "http", "%s %s %d rid=%s", c->req.method, c->req.path, c->status,
                c->request_id);
    http__unref(c);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    LOG(LOG_DEBUG, "http", "libmicrohttpd: %s", line);
}

/* ---- start / stop --------------------------------------------------------------------- */

static bool addr_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
        return a[0] == 127;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* host (IPv4/IPv6 literal, "[v6]", "localhost" or a name) + port -> sockaddr. */
static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len, struct bw_err *err)
{
    char h[HTTP_HOSTNAME_MAX];
    if (!host || !*host) host = "127.0.0.1";
    size_t n = strlen(host);
    if (host[0] == '[' && n >= 2 && host[n - 1] == ']') host++, n -= 2;
    if (n >= sizeof h) return bw_errf(err, BW_EINVAL, "bind address too long: %s", host);
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0) strcpy(h, "127.0.0.1");

    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return BW_OK;
    }
    if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return BW_OK;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(h, NULL, &hints, &ai);
    if (rc != 0 || !ai) return bw_errf(err, BW_EIO, "cannot resolve bind address %s: %s", h, gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    if (ss->ss_family == AF_INET) v4->sin_port = htons((uint16_t)port);
    else v6->sin6_port = htons((uint16_t)port);
    freeaddrinfo(ai);
    return BW_OK;
}

static void server_free(struct http_server *s)
{
    if (!s) return;
    free(s->api_key);
    free_strv(s->public_paths);
    free_strv(s->origins);
    pthread_cond_destroy(&s->workers_done);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Raises the descriptor limit to its hard maximum (as Go's runtime does for Ollama) and
 * returns how many descriptors there are. */
static unsigned raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 24) ? (1u << 24) : (unsigned)rl.rlim_cur;
}

int http_start(const struct http_config *cfg, struct http_server **out, struct bw_err *err)
{
    if (!cfg || !cfg->handler || cfg->port < 0 || cfg->port > 65535)
        return bw_errf(err, BW_EINVAL, "invalid HTTP server configuration");
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) return bw_errf(err, BW_ENOMEM, "out of memory");
    s->max_body = cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
    s->handler = cfg->handler;
    s->handler_ud = cfg->handler_ud;
    s->begin = cfg->begin;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->workers_done, NULL);
    s->write_timeout_ns = cfg->write_timeout_ms < 0 ? 0
                          : (int64_t)(cfg->write_timeout_ms ? cfg->write_timeout_ms : HTTP_DEFAULT_WRITE_TIMEOUT_MS) * 1000000;
    unsigned max_conn = cfg->max_connections > 0 ? (unsigned)cfg->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    /* Room for the runners' sockets, the store's files and the connections being closed. */
    unsigned fds = raise_nofile();
    unsigned fd_room = fds > 256 ? (fds - 128) * 4 / 5 : 64;
    if (max_conn > fd_room) {
        LOG(LOG_WARN, "http", "%u connections need more descriptors than the %u allowed: limit is %u", max_conn, fds,
            fd_room);
        max_conn = fd_room;
    }
    s->max_connections = max_conn;
    unsigned idle_s = cfg->idle_timeout_s < 0 ? 0 : cfg->idle_timeout_s ? (unsigned)cfg->idle_timeout_s
                                                                          : HTTP_DEFAULT_IDLE_TIMEOUT_S;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : ncpu < 2 ? 2 : ncpu > 16 ? 16 : (unsigned)ncpu;
    if (cfg->api_key && *cfg->api_key && !(s->api_key = strdup(cfg->api_key))) goto oom;
    size_t n_pub = 0;
    while (cfg->public_paths && cfg->public_paths[n_pub]) n_pub++;
    if (!(s->public_paths = calloc(n_pub + 1, sizeof *s->public_paths))) goto oom;
    for (size_t i = 0; i < n_pub; i++)
        if (!(s->public_paths[i] = strdup(cfg->public_paths[i]))) goto oom;
    if (parse_origins(s, cfg->origins) != BW_OK) goto oom;
    if (gethostname(s->hostname, sizeof s->hostname - 1) != 0) s->hostname[0] = '\0';
    for (char *p = s->hostname; *p; p++) *p = (char)tolower((unsigned char)*p);

    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int rc = resolve(cfg->host, cfg->port, &ss, &sslen, err);
    if (rc != BW_OK) {
        server_free(s);
        return rc;
    }
    char shown[HTTP_HOSTNAME_MAX + 16];
    if (ss.ss_family == AF_INET6) {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof a);
        snprintf(shown, sizeof shown, "[%s]:%d", a, cfg->port);
    } else {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof a);
        snprintf(shown, sizeof shown, "%s:%d", a, cfg->port);
    }
    s->loopback = addr_loopback(&ss);

    /* Our own listen socket: a bind error keeps its errno (MHD_start_daemon only says NULL). */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = bw_errf(err, BW_EIO, "cannot listen on %s: %s", shown, strerror(errno));
        server_free(s);
        return rc;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) {
        /* "::" serves IPv4 too (dual stack); a specific IPv6 address only itself */
        bool any = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof one);
    }
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        rc = bw_errf(err, BW_EIO, "cannot listen on %s: %s", shown, strerror(errno));
        close(fd);
        server_free(s);
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    else
        s->port = cfg->port;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* MHD's own limit sits above ours: at it MHD stops accepting (new clients would wait in
     * the backlog), so http_sockets.c makes room first; the margin covers connections shut
     * down and not yet cleaned up, split over the threads (MHD divides its limit). */
    unsigned mhd_limit = max_conn + max_conn / 4 + 16 * threads + 64;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first, or MHD complains */
                                 MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, http__on_connection, s,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                 (unsigned int)(cfg->max_connections_per_ip > 0 ? cfg->max_connections_per_ip : 0),
                                 /* idle only: a connection waiting for its worker (model load,
                                  * tokens) is suspended, and MHD does not time those out */
                                 MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        /* Whether MHD closed fd on this path is version-dependent; leaking one descriptor on a
         * failed start beats a double close. */
        rc = bw_errf(err, BW_EIO, "cannot start the HTTP server on %s", shown);
        server_free(s);
        return rc;
    }
    char *colon = strrchr(shown, ':');
    if (colon) snprintf(colon, sizeof shown - (size_t)(colon - shown), ":%d", s->port);
    LOG(LOG_INFO, "http", "listening on %s%s (%u threads, %u connections, idle timeout %us, write timeout %.0fs)",
        shown, s->api_key ? " (API key required)" : "", threads, max_conn, idle_s, s->write_timeout_ns / 1e9);
    *out = s;
    return BW_OK;

oom:
    server_free(s);
    return bw_errf(err, BW_ENOMEM, "out of memory");
}

int http_port(const struct http_server *s) { return s->port; }

void http_stop(struct http_server *s)
{
    if (!s) return;
    /* Requests in flight see their client gone and end; new ones get 503; then MHD stops. */
    http__shutdown_live(s);
    pthread_mutex_lock(&s->mu);
    while (s->n_workers > 0) pthread_cond_wait(&s->workers_done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon); /* closes the listen socket and the idle connections, joins its threads */
    server_free(s);
}
