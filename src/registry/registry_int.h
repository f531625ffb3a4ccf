/* registry_int.h -- what pull.c and client.c share; private to src/registry/.
 *
 *   names.c   names to pull -> registry URLs (pure)
 *   parts.c   Range parts and their progress file (pure)
 *   client.c  HTTP over libcurl: the token challenge, redirects, ranged GETs. The only
 *             includer of curl.h
 *   pull.c    registry_pull: manifest, blobs (partial files, parallel parts, resume,
 *             verification), manifest last */
#ifndef BELLOWS_REGISTRY_INT_H
#define BELLOWS_REGISTRY_INT_H

#include "registry/registry.h"

/* A connection's settings and its bearer token, for one pull. The token is written only
 * by registry__get/registry__locate on the pull's own thread, before the part threads
 * start; the part threads only read it. */
struct registry_conn {
    const struct registry_ref *ref;
    bool insecure;
    const atomic_bool *cancel;
    char token[4096];         /* "" until a challenge was answered */
};

/* A body collected into memory, at most max bytes (more fails the request). */
struct registry_buf {
    char *data;               /* malloc'd, NUL-terminated; caller frees */
    size_t len, cap, max;
};

/* Receives the bytes of a 2xx body. Returns 0 to go on, -1 to stop the transfer (the
 * request then fails with whatever the sink put in its own error). */
typedef int (*registry__sink_fn)(void *ud, const void *data, size_t len);

/* The parts of `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`. Returns
 * true when the header is a Bearer challenge with a realm. Pure. */
struct registry_challenge {
    char realm[1024], service[256], scope[512];
};
bool registry__parse_challenge(const char *header, struct registry_challenge *out);

/* "bytes START-END/TOTAL" (TOTAL may be '*'): START and END. Pure. */
bool registry__parse_content_range(const char *v, uint64_t *start, uint64_t *end);

/* GET URL on the registry and collect the body into out. A 401 with a Bearer challenge
 * fetches a token (kept in c) and retries once. Returns BW_OK with *status (any HTTP
 * status: the caller judges it; out holds its body), or BW_EIO with *fail set:
 * NETWORK (connection, TLS, timeout, too big), AUTH (401 again), CANCELLED. */
int registry__get(struct registry_conn *c, const char *url, const char *accept, struct registry_buf *out,
                  long *status, enum registry_fail *fail, struct bw_err *err);

/* Where a blob's bytes come from: GET URL on the registry (token challenge as above),
 * following redirects that stay on the registry's host; the first redirect to another host
 * is the answer (a CDN), or URL itself when the registry answers 2xx. Only the first byte
 * is asked for. Returns BW_OK with the URL in final (REGISTRY_URL_MAX + 1024 bytes), or
 * BW_ENOTFOUND (404: fail NOTFOUND), BW_EIO (fail NETWORK / AUTH / CANCELLED). */
#define REGISTRY__FINAL_URL_MAX (REGISTRY_URL_MAX + 4096)
int registry__locate(struct registry_conn *c, const char *url, char *final, enum registry_fail *fail,
                     struct bw_err *err);

/* GET bytes [from, to] of URL (following redirects; the token only to the registry's own
 * host), handing the body to sink from its first byte on. A server that answers 200 to a
 * Range not starting at 0 (it ignores Range) hands nothing to sink and sets *ignored_range.
 * Returns BW_OK when the transfer ended cleanly (however many bytes came: the caller
 * counts), or BW_EIO / BW_ENOTFOUND with *fail (NETWORK for a cut connection, a stall, a
 * 4xx/5xx or a 206 for another range; NOTFOUND for a 404; CANCELLED); when the sink
 * stopped the transfer, *sink_stopped is set and the message is the sink's to give. */
int registry__get_range(struct registry_conn *c, const char *url, uint64_t from, uint64_t to, registry__sink_fn sink,
                        void *ud, bool *ignored_range, bool *sink_stopped, enum registry_fail *fail,
                        struct bw_err *err);

#endif
