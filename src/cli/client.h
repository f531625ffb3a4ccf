/* client.h -- a small blocking HTTP/1.1 client for the CLI to talk to `bellows serve`.
 *
 * One request per connection (Connection: close), plain sockets, http:// only: the server
 * is on this machine or the local network, never behind TLS. Reads the status line and the
 * headers, then a body framed by Content-Length, by chunked transfer coding, or by the end
 * of the connection. A streaming mode hands each NDJSON line to a callback as soon as it
 * arrives, so answers print token by token.
 *
 * Does not: follow redirects, keep connections alive, speak TLS or HTTP/2, parse JSON.
 * BELLOWS_API_KEY, when set, is sent as `Authorization: Bearer <key>`.
 *
 * Threads: no global state; one call at a time per struct (there is none to share).
 * Signals: a stream may be stopped from a signal handler through `cancel` (see below);
 * the client never installs handlers itself. SIGPIPE is avoided with MSG_NOSIGNAL. */
#ifndef BELLOWS_CLI_CLIENT_H
#define BELLOWS_CLI_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Writes the server's base URL ("http://127.0.0.1:11434") from BELLOWS_HOST, or the
 * default, into buf. A bind-all host (0.0.0.0) becomes 127.0.0.1. Never fails; the
 * result is truncated to len. */
void cli_server_url(char *buf, size_t len);

struct client_opts {
    int connect_timeout_ms; /* <= 0: 5000 */
    int idle_timeout_ms;    /* longest wait for the next bytes; 0: 60000, < 0: no limit */
    /* When not NULL, polled about every 100 ms (and whenever a signal interrupts the
     * wait): non-zero closes the connection and the call returns BW_OK with
     * res->cancelled set. The server treats the disconnect as a cancel. */
    const volatile sig_atomic_t *cancel;
};

struct client_response {
    int status;             /* HTTP status code */
    char content_type[128]; /* "" when absent */
    char request_id[64];    /* X-Request-Id, "" when absent */
    char *body;             /* malloc'd, NUL-terminated (may hold NULs before body_len);
                               for a stream: only the body of a non-2xx answer, else NULL */
    size_t body_len;
    bool cancelled;         /* the stream was stopped through opts->cancel */
};

/* One line of a streamed body, without its '\n' (and '\r'), NUL-terminated in a buffer
 * the client owns (valid during the call; the callback may modify it in place). Empty
 * lines are skipped. Return 0 to go on, non-zero to stop: the connection is closed and
 * client_request returns BW_OK. */
typedef int (*client_line_fn)(void *ud, char *line, size_t len);

/* Sends METHOD PATH to base_url ("http://host:port") with an optional JSON body
 * (body NULL: none), waits for the answer and fills *res (caller frees with
 * client_response_fini, also after a failure: res is always left valid).
 *
 * With on_line NULL the whole body is collected into res->body. With on_line set and a
 * 2xx status, the body is split into lines handed to on_line as they arrive; a non-2xx
 * body is collected into res->body instead (the caller reads the JSON error there).
 *
 * Returns BW_OK once a status line was read (any status: the caller judges it), or
 *   BW_ENOTFOUND  nothing accepts connections there (refused, no route, connect timeout):
 *                 "no server" -- the caller may start one;
 *   BW_EIO        the connection broke, timed out while idle, or the answer is not HTTP;
 *   BW_EINVAL     base_url is not an http:// URL;
 *   BW_ENOMEM.
 * err says what happened and where, in one line. */
int client_request(const char *base_url, const char *method, const char *path, const char *body, size_t body_len,
                   const struct client_opts *opts, client_line_fn on_line, void *ud, struct client_response *res,
                   struct bw_err *err);

void client_response_fini(struct client_response *res);

/* Splits base_url into host (brackets removed for IPv6) and port. BW_EINVAL if it is not
 * http://host[:port][/]. */
int client_parse_url(const char *base_url, char *host, size_t host_len, int *port, struct bw_err *err);

#endif
