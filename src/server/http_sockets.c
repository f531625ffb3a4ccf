/* http_sockets.c -- the open connections of the HTTP edge (see http_int.h).
 *
 * WHY. libmicrohttpd at its connection limit stops accepting (it takes the listen socket out
 * of its poll set): new clients then wait in the kernel's backlog behind whoever holds
 * the connections, and 1,500 idle sockets lock everyone out until they time out. So we keep
 * our own count below MHD's limit and make room ourselves: when a connection opens past
 * max_connections, the connection idle the longest (no request in progress on it: never sent
 * one, half-sent headers, or a keep-alive between requests) is shut down. Busy connections
 * are never cut; when every other one is busy, the new one is closed instead.
 *
 * Every open connection has an entry (MHD's socket context); idle ones are on a list, longest
 * idle first. A shut-down connection stays counted (n_closing) until MHD has cleaned it up,
 * and its descriptor stays valid until then: MHD's "closed" notification comes before it
 * closes the socket, and takes srv->mu here. */
#include "server/http_int.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "util/log.h"

struct http_sock {
    int fd;
    bool busy;                /* a request is in progress on it */
    bool closing;             /* shut down by us */
    bool idle_listed;
    struct http_sock *prev, *next; /* the idle list */
};

static void idle_remove(struct http_server *s, struct http_sock *k)
{
    if (!k->idle_listed) return;
    if (k->prev) k->prev->next = k->next;
    else s->idle_head = k->next;
    if (k->next) k->next->prev = k->prev;
    else s->idle_tail = k->prev;
    k->prev = k->next = NULL;
    k->idle_listed = false;
}

static void idle_append(struct http_server *s, struct http_sock *k)
{
    k->prev = s->idle_tail;
    k->next = NULL;
    if (s->idle_tail) s->idle_tail->next = k;
    else s->idle_head = k;
    s->idle_tail = k;
    k->idle_listed = true;
}

/* srv->mu held. Shuts down the longest-idle connections while there are too many. */
static void make_room(struct http_server *s)
{
    while (s->n_open - s->n_closing > s->max_connections && s->idle_head) {
        struct http_sock *k = s->idle_head;
        idle_remove(s, k);
        k->closing = true;
        s->n_closing++;
        s->n_evicted++;
        shutdown(k->fd, SHUT_RDWR); /* MHD sees the end of the stream and cleans up */
        if (s->n_evicted == 1 || s->n_evicted % 1000 == 0)
            LOG(LOG_INFO, "http", "connection limit (%u) reached: closing the longest idle connections (%llu so far)",
                s->max_connections, (unsigned long long)s->n_evicted);
    }
}

void http__on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                         enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct http_sock *k = ci ? calloc(1, sizeof *k) : NULL;
        *socket_ctx = k;
        if (!k) return; /* not tracked: counted by MHD's own limit only */
        k->fd = ci->connect_fd;
        /* The kernel's share of a client that stops reading: without this, loopback TCP
         * autotunes the send buffer to megabytes, which the server would fill (and the
         * generation run on) before backpressure reached the stream's own bound. Answers
         * here are small or streamed; 64 KiB (the kernel doubles it) keeps them fast. */
        int sndbuf = HTTP_SNDBUF;
        setsockopt(k->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        pthread_mutex_lock(&s->mu);
        s->n_open++;
        idle_append(s, k); /* the newest: cut last */
        make_room(s);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    struct http_sock *k = *socket_ctx;
    if (!k) return;
    *socket_ctx = NULL;
    pthread_mutex_lock(&s->mu);
    idle_remove(s, k);
    s->n_open--;
    if (k->closing) s->n_closing--;
    pthread_mutex_unlock(&s->mu);
    free(k);
}

struct http_sock *http__sock_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void http__sock_busy(struct http_server *s, struct http_sock *k, bool busy)
{
    if (!k) return;
    pthread_mutex_lock(&s->mu);
    k->busy = busy;
    if (busy) idle_remove(s, k);
    else if (!k->closing && !k->idle_listed) idle_append(s, k);
    pthread_mutex_unlock(&s->mu);
}

void http__shutdown_live(struct http_server *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, true);
    for (struct http_conn *c = s->live; c; c = c->live_next) {
        pthread_mutex_lock(&c->mu);
        if (!c->mhd_done) shutdown(c->fd, SHUT_RDWR); /* the handler sees its client gone */
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&s->mu);
}
