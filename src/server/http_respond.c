/* http_respond.c -- answering a request, and the worker that runs its handler (see
 * http_int.h for the threads and the lifetime).
 *
 * An answer made on the event-loop thread (the begin hook, the checks of http.c) is queued
 * at once: MHD allows that inside an access-handler call. An answer made by the handler on
 * its worker is left in c->pending; the worker resumes the connection and the next access
 * call queues it (http__queue_pending).
 *
 * A stream: the worker calls pull (which may block: tokens, a download) into a buffer of
 * HTTP_RING_CAP bytes; MHD's content reader copies out of it and, when it is empty, suspends
 * the connection and returns 0 (legal once suspended; the thread goes back to its other
 * connections); the worker resumes it when it adds bytes or the end. When the buffer has no
 * room for another block the worker waits instead of pulling, so the producer's own queue
 * stops draining (the scheduler bounds that one). If the client takes nothing for
 * write_timeout while bytes wait for it, the stream is cut off: the worker stops, the
 * connection is shut down, and done(ud, false) cancels the generation. done always runs on
 * the worker, after MHD has finished with the response, never while pull is running. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "server/http_int.h"
#include "util/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"

/* ---- answers ----------------------------------------------------------------------------- */

static void add_common_headers(struct http_conn *c, struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Request-Id", c->request_id);
    if (c->cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", c->cors_origin);
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Request-Id");
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    }
}

static int add_extra_headers(struct MHD_Response *r, const char *const *headers)
{
    for (const char *const *h = headers; h && h[0]; h += 2) {
        if (!h[1]) return BW_EINVAL;
        if (MHD_add_response_header(r, h[0], h[1]) != MHD_YES) return BW_EINVAL;
    }
    return BW_OK;
}

/* Queues r now (event-loop thread) or leaves it for the next access call (worker). r is
 * consumed on every path. */
static int answer(struct http_conn *c, int status, struct MHD_Response *r)
{
    if (c->on_loop) {
        enum MHD_Result ok = MHD_queue_response(c->mc, (unsigned)status, r);
        MHD_destroy_response(r); /* MHD keeps its own reference until it is done */
        if (ok != MHD_YES) return BW_EIO;
    } else {
        pthread_mutex_lock(&c->mu);
        c->pending = r;
        pthread_mutex_unlock(&c->mu);
    }
    c->responded = true;
    c->status = status;
    return BW_OK;
}

/* Adds the content type, the caller's headers and ours to r, then answers (r is consumed). */
static int send_response(struct http_conn *c, int status, struct MHD_Response *r, const char *content_type,
                         const char *const *headers)
{
    if (content_type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    int rc = add_extra_headers(r, headers);
    if (rc != BW_OK) {
        MHD_destroy_response(r);
        return rc;
    }
    add_common_headers(c, r);
    return answer(c, status, r);
}

void http__queue_pending(struct http_conn *c)
{
    pthread_mutex_lock(&c->mu);
    struct MHD_Response *r = c->pending;
    c->pending = NULL;
    if (!r && !c->suspended) {
        /* Called again before the worker answered: wait for it without spinning. */
        c->suspended = true;
        MHD_suspend_connection(c->mc);
    }
    pthread_mutex_unlock(&c->mu);
    if (r) {
        if (MHD_queue_response(c->mc, (unsigned)c->status, r) != MHD_YES)
            LOG_REQ(LOG_WARN, c->req.seq, "http", "could not queue the answer of %s %s", c->req.method, c->req.path);
        MHD_destroy_response(r);
    }
}

int http_respond(struct http_request *req, int status, const char *content_type, const char *body, size_t len,
                 const char *const *headers)
{
    struct http_conn *c = req->conn;
    if (!c->in_handler || c->responded) return BW_EINVAL;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(body && len ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!r) return BW_ENOMEM;
    return send_response(c, status, r, content_type, headers);
}

/* MHD's content reader (event-loop thread, MHD's response mutex held). Never blocks. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_conn *c = cls;
    (void)pos;
    ssize_t n;
    pthread_mutex_lock(&c->mu);
    if (c->aborted || c->s_error) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (c->r_len > c->r_off) {
        size_t k = c->r_len - c->r_off;
        if (k > max) k = max;
        memcpy(buf, c->ring + c->r_off, k);
        c->r_off += k;
        if (c->r_off == c->r_len) c->r_off = c->r_len = 0;
        c->last_drain_ns = clock_mono_ns();
        pthread_cond_broadcast(&c->cv); /* room for the worker */
        n = (ssize_t)k;
    } else if (c->s_eof) {
        c->eof_sent = true;
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        c->suspended = true; /* nothing yet: the worker resumes us when there is */
        MHD_suspend_connection(c->mc);
        n = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

int http_respond_stream(struct http_request *req, int status, const char *content_type, http_pull_fn pull,
                        http_done_fn done, void *ud, const char *const *headers)
{
    struct http_conn *c = req->conn;
    /* Streams need the worker (pull blocks): not from the begin hook. */
    if (!c->in_handler || c->on_loop || c->responded || !pull || !done) return BW_EINVAL;
    if (!c->ring && !(c->ring = malloc(HTTP_RING_CAP))) return BW_ENOMEM;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, stream_reader, c, NULL);
    if (!r) return BW_ENOMEM;
    c->pull = pull;
    c->done = done;
    c->ud = ud;
    int rc = send_response(c, status, r, content_type, headers);
    if (rc == BW_OK) c->streaming = true;
    return rc;
}

/* An answer of this layer: {"error":"<msg>"} (msg has nothing to escape). */
void http__respond_error(struct http_conn *c, int status, const char *msg, const char *const *headers)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    bool was = c->in_handler;
    c->in_handler = true;
    http_respond(&c->req, status, "application/json; charset=utf-8", body, (size_t)n, headers);
    c->in_handler = was;
    if (status == 401 || status == 403 || status == 413) {
        c->logged = true;
        LOG_REQ(LOG_INFO, c->req.seq, "http", "%s %s %d %s rid=%s", c->req.method, c->req.path, status, msg,
                c->request_id);
    }
}

void http__preflight(struct http_conn *c)
{
    const char *want = http_header(&c->req, "Access-Control-Request-Headers");
    const char *allow_headers =
        "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, X-Request-Id, OpenAI-Beta, "
        "X-Stainless-Arch, X-Stainless-Async, X-Stainless-Custom-Poll-Interval, X-Stainless-Helper-Method, "
        "X-Stainless-Lang, X-Stainless-OS, X-Stainless-Package-Version, X-Stainless-Poll-Helper, "
        "X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Timeout";
    /* The origin is trusted already, so whatever headers it asks for are fine. */
    if (want && *want) allow_headers = want;
    const char *const cors[] = {
        "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
        "Access-Control-Allow-Headers", allow_headers,
        "Access-Control-Max-Age", "43200",
        NULL,
    };
    c->in_handler = true;
    http_respond(&c->req, 204, NULL, NULL, 0, c->cors_origin ? cors : NULL);
    c->in_handler = false;
}

/* ---- request info ------------------------------------------------------------------------ */

const char *http_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn->mc, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn->mc, MHD_GET_ARGUMENT_KIND, name);
}

bool http_client_gone(const struct http_request *req)
{
    struct http_conn *c = req->conn;
    pthread_mutex_lock(&c->mu);
    bool gone = c->mhd_done || c->aborted;
    if (!gone && c->fd >= 0) { /* valid: MHD closes it only after its completed callback */
        struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
        /* POLLIN alone is a pipelined request, not a close. */
        gone = poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
    }
    pthread_mutex_unlock(&c->mu);
    return gone;
}

int http_stream_body(struct http_request *req, http_body_fn body, http_release_fn release, void *ud)
{
    struct http_conn *c = req->conn;
    if (!c->in_begin || c->body_stream || c->responded || !body || !release) return BW_EINVAL;
    c->body_fn = body;
    c->release = release;
    c->body_ud = ud;
    c->body_stream = true;
    return BW_OK;
}

void *http_body_ud(const struct http_request *req) { return req->conn->body_stream ? req->conn->body_ud : NULL; }

/* ---- the worker -------------------------------------------------------------------------- */

void http__unref(struct http_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last) return;
    if (c->body_stream) c->release(c->body_ud);
    if (c->pending) MHD_destroy_response(c->pending);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->ring);
    free(c->body);
    free(c);
}

/* mu held: lets MHD run the connection again (it is waiting for us). */
static void wake(struct http_conn *c)
{
    if (c->suspended && !c->mhd_done) {
        c->suspended = false;
        MHD_resume_connection(c->mc);
    }
}

/* mu held: true when the stream must end now: MHD is done with it, the server stops, or the
 * client took nothing for write_timeout while bytes waited. */
static bool must_stop(struct http_conn *c, bool *timed_out)
{
    struct http_server *s = c->srv;
    if (c->mhd_done || c->aborted || atomic_load(&s->stopping)) return true;
    if (c->r_len > c->r_off && s->write_timeout_ns > 0 && clock_mono_ns() - c->last_drain_ns >= s->write_timeout_ns) {
        *timed_out = true;
        return true;
    }
    return false;
}

/* mu held: waits for cv at most until the write timeout could strike, 1 s at a time. */
static void wait_a_while(struct http_conn *c)
{
    int64_t ms = 1000;
    int64_t w = c->srv->write_timeout_ns;
    if (c->r_len > c->r_off && w > 0) {
        int64_t left = (c->last_drain_ns + w - clock_mono_ns()) / 1000000 + 1;
        if (left < ms) ms = left < 1 ? 1 : left;
    }
    struct timespec until = clock_deadline((int)ms);
    pthread_cond_timedwait(&c->cv, &c->mu, &until);
}

/* mu held: cuts the stream off; MHD then ends the request (completed callback). */
static void cut_off(struct http_conn *c)
{
    c->aborted = true;
    if (c->mhd_done) return;
    if (c->suspended) wake(c); /* the reader answers "error" and MHD closes */
    else shutdown(c->fd, SHUT_RDWR); /* waiting to write to a client that does not read */
}

static void pump(struct http_conn *c)
{
    char *block = malloc(HTTP_STREAM_BLOCK);
    bool timed_out = false, stop = !block;
    pthread_mutex_lock(&c->mu);
    while (!stop) {
        /* Pull only when a whole block fits: a client that does not read stops the producer. */
        while (!(stop = must_stop(c, &timed_out)) && HTTP_RING_CAP - (c->r_len - c->r_off) < HTTP_STREAM_BLOCK)
            wait_a_while(c);
        if (stop) break;
        pthread_mutex_unlock(&c->mu);
        ssize_t n = c->pull(c->ud, block, HTTP_STREAM_BLOCK);
        pthread_mutex_lock(&c->mu);
        if (n > 0 && (size_t)n <= HTTP_STREAM_BLOCK) {
            if (c->r_len == c->r_off) c->last_drain_ns = clock_mono_ns(); /* the wait starts now */
            if (c->r_off) {
                memmove(c->ring, c->ring + c->r_off, c->r_len - c->r_off);
                c->r_len -= c->r_off;
                c->r_off = 0;
            }
            memcpy(c->ring + c->r_len, block, (size_t)n);
            c->r_len += (size_t)n;
        } else if (n == 0) {
            c->s_eof = true;
        } else {
            c->s_error = true;
        }
        wake(c);
        if (n <= 0) break;
    }
    /* Wait for MHD to send what is left (or for the client to stop taking it). */
    while (!c->mhd_done) {
        if (!c->aborted && (stop || must_stop(c, &timed_out)) && !c->mhd_done) {
            if (timed_out)
                LOG_REQ(LOG_WARN, c->req.seq, "http", "%s %s rid=%s: the client took nothing for %.0f s; cut off",
                        c->req.method, c->req.path, c->request_id, c->srv->write_timeout_ns / 1e9);
            cut_off(c);
        }
        wait_a_while(c);
    }
    bool completed = c->eof_sent && c->toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    pthread_mutex_unlock(&c->mu);
    free(block);
    c->done(c->ud, completed);
}

/* A worker's connection leaves the live list (it has answered, or its thread never started). */
static void worker_done(struct http_server *s, struct http_conn *c)
{
    pthread_mutex_lock(&s->mu);
    for (struct http_conn **pp = &s->live; *pp; pp = &(*pp)->live_next)
        if (*pp == c) {
            *pp = c->live_next;
            break;
        }
    if (--s->n_workers == 0) pthread_cond_broadcast(&s->workers_done);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    struct http_conn *c = arg;
    struct http_server *s = c->srv;
    pthread_mutex_lock(&c->mu); /* the event-loop thread has suspended the connection */
    c->on_loop = false;
    pthread_mutex_unlock(&c->mu);
    http__serve(s, c);
    pthread_mutex_lock(&c->mu);
    wake(c); /* MHD queues the answer */
    pthread_mutex_unlock(&c->mu);
    if (c->streaming) pump(c);

    worker_done(s, c);
    http__unref(c);
    return NULL;
}

bool http__dispatch(struct http_conn *c)
{
    struct http_server *s = c->srv;
    pthread_mutex_lock(&s->mu);
    s->n_workers++;
    c->live_next = s->live;
    s->live = c;
    pthread_mutex_unlock(&s->mu);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    /* Under mu: the worker starts by taking it, so it runs only once we have suspended. */
    pthread_mutex_lock(&c->mu);
    c->refs++;
    c->dispatched = true;
    int rc = pthread_create(&t, &attr, worker_main, c);
    if (rc == 0) {
        c->suspended = true;
        MHD_suspend_connection(c->mc);
    } else {
        c->refs--;
        c->dispatched = false;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_attr_destroy(&attr);
    if (rc == 0) return true;

    LOG_REQ(LOG_WARN, c->req.seq, "http", "cannot start a worker thread: %s", strerror(rc));
    worker_done(s, c);
    return false;
}
