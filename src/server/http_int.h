/* http_int.h -- what the three parts of the HTTP edge share (private to src/server/http*.c):
 *   http.c          checks, MHD's access/completed callbacks, start and stop
 *   http_respond.c  answering: buffered and streamed responses, the worker that runs the
 *                   handler and pumps a stream, request info (headers, client gone)
 *   http_sockets.c  the open connections: the connection limit and idle-first eviction
 *
 * THREADS. libmicrohttpd runs a pool of event-loop threads (poll); none of them ever waits
 * for a handler. A request whose headers and body are in is handed to a worker thread of
 * its own and its connection is suspended (MHD_suspend_connection: out of the event loop,
 * no timeout) until the worker has an answer; the worker resumes it and MHD queues the
 * answer in the next access-handler call. A streamed answer goes through a bounded buffer
 * (HTTP_RING_CAP): the worker pulls into it, the content reader (event-loop thread) takes
 * from it and suspends the connection when it is empty; the worker resumes it when there is
 * more. When the buffer is full the worker stops pulling: the producer (gen.c) stops reading
 * its call's events. A client that takes nothing for write_timeout is cut off.
 *
 * LIFETIME. struct http_conn is one request; two parties hold it: MHD (until the request-
 * completed callback) and its worker (until the worker ends). The last to let go frees it
 * (and calls a streamed body's release). Everything below marked "mu" is guarded by c->mu.
 * MHD closes a socket only after the request-completed callback, which takes c->mu, so the
 * descriptor is valid to poll()/shutdown() under c->mu while !mhd_done. */
#ifndef BELLOWS_HTTP_INT_H
#define BELLOWS_HTTP_INT_H

#include "server/http.h"

#include <pthread.h>
#include <stdatomic.h>

#include <microhttpd.h>

#define HTTP_STREAM_BLOCK (32 * 1024)
#define HTTP_RING_CAP (2 * HTTP_STREAM_BLOCK) /* a stream's bytes waiting for the client */
#define HTTP_SNDBUF (64 * 1024)              /* each connection's kernel send buffer */
#define HTTP_RID_MAX 128
#define HTTP_HOSTNAME_MAX 256

struct http_sock; /* http_sockets.c: one open connection */

struct http_server {
    struct MHD_Daemon *daemon;
    int port;
    bool loopback;            /* bound to a loopback address: the Host guard is on */
    size_t max_body;
    char *api_key;            /* NULL when no auth */
    char **public_paths;      /* NULL-terminated copy */
    bool origins_any;         /* BELLOWS_ORIGINS contained "*" */
    char **origins;           /* allowed-origin patterns (exact, or with one '*') */
    size_t n_origins;
    char hostname[HTTP_HOSTNAME_MAX]; /* this machine's name, lowercase ("" if unknown) */
    http_handler_fn handler;
    void *handler_ud;
    http_begin_fn begin;      /* NULL: every body is buffered */
    int64_t write_timeout_ns; /* a stream's client that takes nothing this long is cut off */
    unsigned max_connections; /* open connections before the longest idle one is closed */
    /* guarded by mu: the open connections (http_sockets.c), the workers, stopping */
    pthread_mutex_t mu;
    pthread_cond_t workers_done;
    struct http_sock *idle_head, *idle_tail; /* idle connections, longest idle first */
    unsigned n_open, n_closing;              /* open; of them, shut down by us and not yet gone */
    uint64_t n_evicted;                      /* since start */
    int n_workers;
    struct http_conn *live;                  /* requests with a worker (for http_stop) */
    atomic_bool stopping;                    /* set under mu, read anywhere */
};

struct http_conn {
    struct http_server *srv;
    struct MHD_Connection *mc;
    struct http_sock *sock;   /* the connection's entry (NULL if MHD gave none) */
    int fd;                   /* its socket; valid under mu while !mhd_done */
    struct http_request req;
    char *body;               /* malloc'd, NUL-terminated; NULL when empty */
    size_t body_len, body_cap;
    bool too_large;           /* over max_body: discarding the rest, answer 413 */
    bool in_handler;          /* inside the handler or the begin hook: may answer */
    bool on_loop;             /* ... on the event-loop thread (queue at once), not in the worker */
    bool responded;           /* an answer was made */
    int status;               /* of that answer, for the log */
    bool logged;              /* its line went out at INFO already */
    const char *cors_origin;  /* the request's Origin when allowed (MHD-owned), else NULL */
    /* a streamed request body (http_stream_body) */
    bool in_begin;            /* inside the begin hook: may opt in */
    bool body_stream;         /* opted in: release is owed */
    bool body_stop;           /* body_fn returned false: the rest is discarded */
    http_body_fn body_fn;
    http_release_fn release;
    void *body_ud;
    /* the worker and MHD */
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* mu: ring space, resume, MHD done */
    int refs;                 /* mu: MHD's and the worker's */
    bool dispatched;          /* a worker was started (event-loop thread only) */
    bool suspended;           /* mu: MHD-suspended, waiting for the worker */
    struct MHD_Response *pending; /* mu: made by the worker, queued by the next access call */
    bool mhd_done;            /* mu: the request-completed callback ran */
    enum MHD_RequestTerminationCode toe; /* mu: its code */
    struct http_conn *live_next; /* srv->live, under srv->mu */
    /* a streamed response */
    bool streaming;
    http_pull_fn pull;
    http_done_fn done;
    void *ud;
    char *ring;               /* mu: HTTP_RING_CAP bytes; [r_off, r_len) waits for the client */
    size_t r_off, r_len;
    bool s_eof, s_error;      /* mu: pull returned 0 / -1 */
    bool eof_sent;            /* mu: the reader reported the end of the stream to MHD */
    bool aborted;             /* mu: cut off (write timeout, server stopping) */
    int64_t last_drain_ns;    /* mu: when the client last took bytes */
    char request_id[HTTP_RID_MAX + 1];
};

/* http_respond.c */
void http__respond_error(struct http_conn *c, int status, const char *msg, const char *const *headers);
void http__preflight(struct http_conn *c);
/* Starts c's worker (c->refs and srv->n_workers counted); false when no thread could start. */
bool http__dispatch(struct http_conn *c);
/* Queues c->pending (on the event-loop thread, in an access-handler call). */
void http__queue_pending(struct http_conn *c);
/* The handler, on the worker (serve() of http.c). */
void http__serve(struct http_server *s, struct http_conn *c);
/* Drops one reference; the last frees c (calling a streamed body's release). */
void http__unref(struct http_conn *c);

/* http_sockets.c: MHD_OPTION_NOTIFY_CONNECTION, and a request's begin/end on its connection. */
void http__on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                         enum MHD_ConnectionNotificationCode code);
struct http_sock *http__sock_of(struct MHD_Connection *mc);
void http__sock_busy(struct http_server *s, struct http_sock *k, bool busy);
/* http_stop: shuts down every live request's socket so its worker ends soon. */
void http__shutdown_live(struct http_server *s);

#endif
