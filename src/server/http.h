/* http.h -- the HTTP edge of `bellows serve`: libmicrohttpd (the only includer of
 * microhttpd.h), request bodies, limits, request ids and the security checks of
 * spec/api.md. It knows no route and no JSON: every accepted request goes to one handler
 * (api.c), which answers with a buffered body or a pulled stream; an optional begin hook
 * sees each request's headers first and may take the body as a stream (below).
 *
 * Threads: libmicrohttpd runs a small pool of event-loop threads (config.threads, poll());
 * idle connections cost no thread. The begin hook and the body callbacks of a streamed body
 * run on an event-loop thread: they must be short (a disk write per piece is fine; no
 * network, no model). Once the whole request is in, its handler runs on a worker thread of
 * its own, and so do a stream's pull and done callbacks (one at a time, in that order); they
 * may block (a model load, tokens from a runner). A streamed answer goes through a bounded
 * buffer: while the client does not read, pull is not called (backpressure), and a client
 * that takes nothing for write_timeout is cut off (done(ud, false)). release may run on
 * either thread, after everything else. The limits: max_connections open connections (past
 * it the longest idle one is closed, never one with a request in progress), idle_timeout for
 * a connection that sends nothing and has no request waiting on the server.
 *
 * What happens before the handler, in order (each answers itself and stops):
 *   body larger than max_body              -> 413 {"error":"request body is larger than N bytes"}
 *                                             (not for a streamed body, below)
 *   loopback bind and Host not a local name -> 403 (DNS-rebinding guard)
 *   an Origin that is not allowed           -> 403 {"error":"origin not allowed"} (as Ollama's CORS)
 *   OPTIONS preflight                       -> 204 with CORS headers (browsers send no key on it)
 *   api_key set, path not public, and no/wrong "Authorization: Bearer <key>" -> 401
 * Every response carries X-Request-Id (the client's when it sent one, else a generated
 * one) and, for allowed origins, Access-Control-Allow-Origin.
 *
 * Request bodies are buffered whole (up to max_body) unless the route streams them: see
 * "streamed request bodies" below (blob uploads of any size, in constant memory). */
#ifndef BELLOWS_HTTP_H
#define BELLOWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

struct http_server;
struct http_conn; /* private: one request's connection state */

struct http_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* without the query string */
    const char *body;        /* the whole body, NUL-terminated (NULL when empty or streamed) */
    size_t body_len;         /* its length; for a streamed body, the bytes received */
    const char *request_id;  /* echoed in X-Request-Id */
    uint64_t seq;            /* a process-unique number (> 0), for runner request ids */
    const char *user_agent;  /* may be NULL */
    struct http_conn *conn;
};

/* Header lookup (case-insensitive); NULL when absent. Valid during the request. */
const char *http_header(const struct http_request *req, const char *name);
/* Query-string argument; NULL when absent. */
const char *http_query(const struct http_request *req, const char *name);

/* True when the client has closed its connection (checked without blocking). A handler
 * that waits for a long time polls this to cancel work nobody will read. */
bool http_client_gone(const struct http_request *req);

/* ---- answering: exactly one of these per request ---------------------------------- */

/* A buffered response; body is copied. Extra headers: NULL-terminated name/value pairs
 * (may be NULL). Returns BW_OK or BW_ENOMEM. */
int http_respond(struct http_request *req, int status, const char *content_type, const char *body, size_t len,
                 const char *const *headers);

/* A streamed response (chunked). pull is called repeatedly on the connection thread and
 * may block until it has data: it writes up to max bytes into buf and returns the count
 * (> 0), 0 for the end of the stream, or -1 to abort the connection. done is called
 * exactly once afterwards, with completed = false when the client went away or the
 * stream was aborted or cut off (the place to cancel generation), then ud is not used
 * again. Only from the handler (not the begin hook).
 * Returns BW_OK, or an error (then neither callback is ever called). */
typedef ssize_t (*http_pull_fn)(void *ud, char *buf, size_t max);
typedef void (*http_done_fn)(void *ud, bool completed);
int http_respond_stream(struct http_request *req, int status, const char *content_type, http_pull_fn pull,
                        http_done_fn done, void *ud, const char *const *headers);

/* The handler: must call one http_respond* (a handler that does not is answered 500). */
typedef void (*http_handler_fn)(void *ud, struct http_request *req);

/* ---- streamed request bodies -------------------------------------------------------- */

/* A route may take its body in pieces as they arrive instead of one buffer. The begin hook
 * (http_config.begin, optional) is called once per request on the connection thread as
 * soon as the headers are in, only when they pass every check above (Host, Origin, API
 * key; never for OPTIONS), before any of the body is read. req is as for the handler but
 * without a body (http_header/http_query work). The hook does one of:
 *   - nothing: the body is buffered as usual, max_body and its 413 apply;
 *   - http_stream_body(): the body streams (below), max_body does not apply;
 *   - http_respond(): the request is answered at once (a refusal: no space for the
 *     declared Content-Length, a bad path). The body is not read: no "100 Continue" goes
 *     out, and MHD closes the connection after the answer when a body was coming (a
 *     client still writing may then see a reset rather than the answer). The handler is
 *     not called.
 *
 * A streamed body: body(ud, data, len) is called for each piece, in order (len > 0; pieces
 * are at most about 32 KiB, libmicrohttpd's connection buffer; chunked encoding is already
 * decoded). It may block (disk writes): the client is slowed by TCP flow control, nothing
 * piles up in memory. It returns true for more, false to have the rest of the body read
 * and discarded without further calls. When the whole body is in, the handler runs as for
 * any request (req->body NULL, req->body_len the bytes received) and finds ud again
 * through http_body_ud(). release(ud) is called exactly once, after the request is over
 * and its handler (if it ran) has returned, whether or not the handler ran (the client
 * went away mid-body, the server stopped): the place to remove a half-written file and
 * free ud. */
typedef bool (*http_body_fn)(void *ud, const char *data, size_t len);
typedef void (*http_release_fn)(void *ud);
typedef void (*http_begin_fn)(void *ud, struct http_request *req);

/* From the begin hook only, at most once, and not after http_respond(). Returns BW_OK, or
 * BW_EINVAL (outside the hook, a second call, a NULL callback, already answered): nothing
 * changes and this call's callbacks are never called. */
int http_stream_body(struct http_request *req, http_body_fn body, http_release_fn release, void *ud);
/* The ud given to http_stream_body for this request, or NULL when its body is buffered. */
void *http_body_ud(const struct http_request *req);

struct http_config {
    const char *host;            /* bind address, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;                    /* 0 = pick a free one (see http_port) */
    size_t max_body;             /* BELLOWS_MAX_BODY; 0 = 64 MiB */
    const char *api_key;         /* BELLOWS_API_KEY; NULL/empty = no auth */
    const char *origins;         /* BELLOWS_ORIGINS: comma-separated extra allowed origins ("*" = any) */
    const char *const *public_paths; /* NULL-terminated: paths that need no API key ("/", "/health") */
    http_handler_fn handler;
    void *handler_ud;
    http_begin_fn begin;         /* may be NULL: every body buffered; called with handler_ud */
    int threads;                 /* BELLOWS_HTTP_THREADS: event-loop threads; 0 = cores (2..16) */
    int max_connections;         /* BELLOWS_MAX_CONNECTIONS; 0 = 1024 (lowered to fit the fd limit) */
    int max_connections_per_ip;  /* BELLOWS_MAX_CONNECTIONS_PER_IP; 0 = no per-address limit */
    int idle_timeout_s;          /* BELLOWS_IDLE_TIMEOUT; 0 = 120 s, < 0 = never */
    int write_timeout_ms;        /* BELLOWS_WRITE_TIMEOUT; 0 = 60 s, < 0 = never */
};

/* Binds and starts serving. Returns BW_OK with *out, or BW_EIO with the reason in err
 * (address in use, ...). */
int http_start(const struct http_config *cfg, struct http_server **out, struct bw_err *err);
/* The port actually bound (useful with port 0). */
int http_port(const struct http_server *s);
/* Ends the requests in flight (their clients look gone to them), waits for their workers,
 * stops MHD, frees. */
void http_stop(struct http_server *s);

#endif
