/* client.c -- HTTP to registries over libcurl (see registry_int.h): the bearer-token
 * challenge, redirects, ranged GETs, timeouts, cancellation. The only includer of curl.h.
 *
 * Every request gets its own easy handle (a pull makes a handful of requests plus one per
 * part and attempt). libcurl reads the proxy variables of the environment by itself. */
#define _GNU_SOURCE
#include "registry/registry_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "version.h"

#define CONNECT_TIMEOUT_S 30
#define STALL_TIME_S 30      /* slower than 1 byte/s for this long: a stalled transfer */
#define MAX_REDIRECTS 10
#define TOKEN_BODY_MAX (64u << 10)
#define ERRBODY_MAX 300

#if defined(__x86_64__)
#define ARCH "amd64"
#elif defined(__aarch64__)
#define ARCH "arm64"
#else
#define ARCH "unknown"
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- pure parsing ------------------------------------------------------------------------ */

/* Copy a header parameter value starting at *p (quoted or not) into out; advances *p. */
static void read_value(const char **p, char *out, size_t len)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1])
                s++;
            if (n + 1 < len)
                out[n++] = *s;
            s++;
        }
        if (*s == '"')
            s++;
    } else {
        while (*s && *s != ',' && !isspace((unsigned char)*s)) {
            if (n + 1 < len)
                out[n++] = *s;
            s++;
        }
    }
    out[n] = '\0';
    *p = s;
}

bool registry__parse_challenge(const char *header, struct registry_challenge *out)
{
    struct registry_challenge c;
    memset(&c, 0, sizeof c);
    const char *p = header;
    if (!p)
        return false;
    while (isspace((unsigned char)*p))
        p++;
    if (strncasecmp(p, "Bearer", 6) || !isspace((unsigned char)p[6]))
        return false;
    p += 7;
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *key = p;
        while (*p && *p != '=' && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t klen = (size_t)(p - key);
        if (*p != '=') {
            while (*p && *p != ',')
                p++;
            continue; /* a bare token: not ours */
        }
        p++;
        char tmp[1024];
        read_value(&p, tmp, sizeof tmp);
        char *field = NULL;
        size_t size = 0;
        if (klen == 5 && !strncasecmp(key, "realm", 5))
            field = c.realm, size = sizeof c.realm;
        else if (klen == 7 && !strncasecmp(key, "service", 7))
            field = c.service, size = sizeof c.service;
        else if (klen == 5 && !strncasecmp(key, "scope", 5))
            field = c.scope, size = sizeof c.scope;
        if (field) {
            size_t n = strlen(tmp);
            if (n >= size)
                return false; /* a cut realm or scope would only fetch a wrong token */
            memcpy(field, tmp, n + 1);
        }
    }
    if (!c.realm[0])
        return false;
    *out = c;
    return true;
}

bool registry__parse_content_range(const char *v, uint64_t *start, uint64_t *end)
{
    uint64_t a, b;
    if (!v || sscanf(v, " bytes %" SCNu64 "-%" SCNu64, &a, &b) != 2 || b < a)
        return false;
    *start = a;
    *end = b;
    return true;
}

/* ---- one transfer ------------------------------------------------------------------------- */

struct xfer {
    const atomic_bool *cancel;
    long status;                 /* of the response being read (redirects included) */
    char www_auth[2048];
    char content_range[128];
    struct registry_buf *buf;    /* collect every body here, or */
    registry__sink_fn sink;      /* hand 2xx bodies to this */
    void *ud;
    bool sink_stopped, too_big;
    bool first_byte_only;        /* locate: stop after the first body byte */
    bool check_range;            /* a ranged GET: is the answer the range asked for? */
    uint64_t range_from;
    bool range_checked, range_ignored, range_wrong;
    uint64_t range_got;          /* the start of a 206's Content-Range */
    bool stopped_early;
    char errbody[ERRBODY_MAX + 1];
    size_t errbody_len;
};

static void copy_header_value(const char *b, size_t len, size_t name_len, char *out, size_t out_len)
{
    const char *v = b + name_len;
    size_t n = len - name_len;
    while (n && isspace((unsigned char)*v))
        v++, n--;
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *b, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;
    if (len > 5 && !strncmp(b, "HTTP/", 5)) {
        /* a new response (after a redirect or a 100): forget the last one's headers */
        x->www_auth[0] = x->content_range[0] = '\0';
        if (x->buf)
            x->buf->len = 0; /* only the last response's body counts */
        const char *sp = memchr(b, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (len > 17 && !strncasecmp(b, "WWW-Authenticate:", 17)) {
        copy_header_value(b, len, 17, x->www_auth, sizeof x->www_auth);
    } else if (len > 14 && !strncasecmp(b, "Content-Range:", 14)) {
        copy_header_value(b, len, 14, x->content_range, sizeof x->content_range);
    }
    return len;
}

static bool buf_add(struct registry_buf *b, const void *data, size_t len)
{
    if (b->len + len > b->max)
        return false;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return false;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;
    bool ok2xx = x->status >= 200 && x->status < 300;
    if (x->buf) {
        if (!buf_add(x->buf, data, len)) {
            x->too_big = true;
            return 0;
        }
        return len;
    }
    if (!ok2xx) {
        size_t n = len < ERRBODY_MAX - x->errbody_len ? len : ERRBODY_MAX - x->errbody_len;
        memcpy(x->errbody + x->errbody_len, data, n);
        x->errbody_len += n;
        x->errbody[x->errbody_len] = '\0';
        return len;
    }
    if (x->first_byte_only) {
        x->stopped_early = true;
        return 0;
    }
    if (x->check_range && !x->range_checked) {
        /* Before the first byte is written anywhere: is this the range we asked for? */
        uint64_t a = UINT64_MAX, b;
        x->range_checked = true;
        if (x->status == 200 && x->range_from != 0)
            x->range_ignored = true;
        else if (x->status == 206 && (!registry__parse_content_range(x->content_range, &a, &b) || a != x->range_from))
            x->range_wrong = true, x->range_got = a;
        if (x->range_ignored || x->range_wrong) {
            x->stopped_early = true;
            return 0;
        }
    }
    if (x->sink && x->sink(x->ud, data, len)) {
        x->sink_stopped = true;
        return 0;
    }
    return len;
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct xfer *x = ud;
    return x->cancel && atomic_load(x->cancel) ? 1 : 0;
}

/* scheme, host and port of URL, lowercased, into out ("https://example.com:443"). */
static bool origin_of(const char *url, char *out, size_t len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok)
        snprintf(out, len, "%s://%s:%s", scheme, host, port);
    for (char *p = out; ok && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

/* Is URL on the registry itself (same scheme, host and port)? Only then may it see the token. */
static bool on_registry(const struct registry_conn *c, const char *url)
{
    char a[NAMES_HOST_MAX + 64], b[NAMES_HOST_MAX + 64];
    return origin_of(url, a, sizeof a) && origin_of(c->ref->base, b, sizeof b) && !strcmp(a, b);
}

struct req {
    const char *url;
    const char *accept;  /* may be NULL */
    const char *range;   /* "A-B" or NULL */
    bool follow;         /* follow redirects */
    bool token;          /* send the bearer token (when there is one) */
};

/* One request. Returns BW_OK with *status, or BW_EIO with *fail and err. */
static int perform_once(struct registry_conn *c, const struct req *r, struct xfer *x, long *status,
                        char *redirect, size_t redirect_len, enum registry_fail *fail, struct bw_err *err)
{
    pthread_once(&init_once, global_init);
    CURL *h = curl_easy_init();
    if (!h) {
        *fail = REGISTRY_FAIL_LOCAL;
        return bw_errf(err, BW_ENOMEM, "out of memory (curl)");
    }
    char errbuf[CURL_ERROR_SIZE] = "", ua[96], auth[sizeof c->token + 32];
    struct curl_slist *hdrs = NULL;
    const char *protocols = c->insecure ? "http,https" : "https";
    snprintf(ua, sizeof ua, "bellows/%s (%s linux)", BELLOWS_VERSION, ARCH);
    if (r->accept) {
        char a[256];
        snprintf(a, sizeof a, "Accept: %s", r->accept);
        hdrs = curl_slist_append(hdrs, a);
    }
    if (r->token && c->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)STALL_TIME_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (r->range)
        curl_easy_setopt(h, CURLOPT_RANGE, r->range);

    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (redirect) {
        char *loc = NULL;
        redirect[0] = '\0';
        if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            snprintf(redirect, redirect_len, "%s", loc);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);

    if (cc == CURLE_WRITE_ERROR && x->stopped_early)
        cc = CURLE_OK; /* we had what we wanted */
    if (cc != CURLE_OK) {
        *fail = REGISTRY_FAIL_NETWORK;
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
            *fail = REGISTRY_FAIL_CANCELLED;
            return bw_errf(err, BW_EIO, "pull cancelled");
        }
        if (cc == CURLE_WRITE_ERROR && x->sink_stopped)
            return BW_EIO; /* the sink's own message */
        if (cc == CURLE_WRITE_ERROR && x->too_big)
            return bw_errf(err, BW_EIO, "Get \"%.150s\": the answer is larger than %zu bytes", r->url, x->buf->max);
        if (cc == CURLE_OPERATION_TIMEDOUT && !errbuf[0])
            snprintf(errbuf, sizeof errbuf, "timed out");
        return bw_errf(err, BW_EIO, "Get \"%.150s\": %s", r->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    *status = code;
    return BW_OK;
}

/* GET the realm for a token, as a Docker registry client does. */
static int fetch_token(struct registry_conn *c, const struct registry_challenge *ch, enum registry_fail *fail,
                       struct bw_err *err)
{
    pthread_once(&init_once, global_init);
    char url[sizeof ch->realm + 2048];
    size_t n = (size_t)snprintf(url, sizeof url, "%s", ch->realm);
    char sep = strchr(ch->realm, '?') ? '&' : '?';
    if (ch->service[0]) {
        char *e = curl_easy_escape(NULL, ch->service, 0);
        n += (size_t)snprintf(url + n, sizeof url - n, "%cservice=%s", sep, e ? e : "");
        curl_free(e);
        sep = '&';
    }
    char scopes[sizeof ch->scope];
    snprintf(scopes, sizeof scopes, "%s", ch->scope);
    for (char *save = NULL, *s = strtok_r(scopes, " ", &save); s && n < sizeof url; s = strtok_r(NULL, " ", &save)) {
        char *e = curl_easy_escape(NULL, s, 0);
        n += (size_t)snprintf(url + n, sizeof url - n, "%cscope=%s", sep, e ? e : "");
        curl_free(e);
        sep = '&';
    }
    if (n >= sizeof url) {
        *fail = REGISTRY_FAIL_AUTH;
        return bw_errf(err, BW_EIO, "the registry's token realm is too long");
    }
    struct registry_buf body = {.max = TOKEN_BODY_MAX};
    struct xfer x = {.cancel = c->cancel, .buf = &body};
    struct req r = {.url = url, .follow = true};
    long status = 0;
    int rc = perform_once(c, &r, &x, &status, NULL, 0, fail, err);
    if (rc == BW_OK && status >= 400) {
        *fail = REGISTRY_FAIL_AUTH;
        rc = bw_errf(err, BW_EIO, "get token: %ld: %.150s", status, body.data ? body.data : "");
    }
    if (rc == BW_OK) {
        json_t *j = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok || strlen(tok) >= sizeof c->token || strpbrk(tok, "\r\n")) {
            *fail = REGISTRY_FAIL_AUTH;
            rc = bw_errf(err, BW_EIO, "get token: the realm %.150s answered no usable token", ch->realm);
        } else {
            snprintf(c->token, sizeof c->token, "%s", tok);
        }
        json_decref(j);
    }
    free(body.data);
    return rc;
}

/* A request to the registry: a 401 with a Bearer challenge gets a token and one retry. */
static int perform(struct registry_conn *c, struct req *r, struct xfer *x, long *status, char *redirect,
                   size_t redirect_len, enum registry_fail *fail, struct bw_err *err)
{
    bool mine = on_registry(c, r->url);
    r->token = mine;
    for (int attempt = 0;; attempt++) {
        if (x->buf)
            x->buf->len = 0;
        x->errbody_len = 0;
        x->errbody[0] = '\0';
        x->sink_stopped = x->too_big = x->stopped_early = false;
        x->range_checked = x->range_ignored = x->range_wrong = false;
        int rc = perform_once(c, r, x, status, redirect, redirect_len, fail, err);
        if (rc || *status != 401)
            return rc;
        struct registry_challenge ch;
        if (!mine || attempt > 0 || !registry__parse_challenge(x->www_auth, &ch)) {
            *fail = REGISTRY_FAIL_AUTH;
            return bw_errf(err, BW_EIO, "unauthorized: access denied");
        }
        LOG(LOG_DEBUG, "registry", "401 from %s: asking %s for a token", r->url, ch.realm);
        if ((rc = fetch_token(c, &ch, fail, err)))
            return rc;
    }
}

/* ---- the requests a pull makes ------------------------------------------------------------------ */

int registry__get(struct registry_conn *c, const char *url, const char *accept, struct registry_buf *out,
                  long *status, enum registry_fail *fail, struct bw_err *err)
{
    struct xfer x = {.cancel = c->cancel, .buf = out};
    struct req r = {.url = url, .accept = accept, .follow = true};
    return perform(c, &r, &x, status, NULL, 0, fail, err);
}

int registry__locate(struct registry_conn *c, const char *url, char *final, enum registry_fail *fail,
                     struct bw_err *err)
{
    char cur[REGISTRY__FINAL_URL_MAX], next[REGISTRY__FINAL_URL_MAX];
    snprintf(cur, sizeof cur, "%s", url);
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        struct xfer x = {.cancel = c->cancel, .first_byte_only = true};
        struct req r = {.url = cur, .range = "0-0", .follow = false};
        long status = 0;
        int rc = perform(c, &r, &x, &status, next, sizeof next, fail, err);
        if (rc)
            return rc;
        if (status >= 200 && status < 300) {
            snprintf(final, REGISTRY__FINAL_URL_MAX, "%s", cur);
            return BW_OK;
        }
        if (status >= 300 && status < 400) {
            if (!next[0]) {
                *fail = REGISTRY_FAIL_NETWORK;
                return bw_errf(err, BW_EIO, "Get \"%.150s\": %ld without a Location", cur, status);
            }
            if (strncasecmp(next, "https://", 8) && !(c->insecure && !strncasecmp(next, "http://", 7))) {
                *fail = REGISTRY_FAIL_NETWORK;
                return bw_errf(err, BW_EIO, "Get \"%.150s\": refusing a redirect to %.100s (not https; pull with insecure to allow plain HTTP)",
                               cur, next);
            }
            if (!on_registry(c, next)) {
                snprintf(final, REGISTRY__FINAL_URL_MAX, "%s", next); /* the CDN: parts go there */
                return BW_OK;
            }
            snprintf(cur, sizeof cur, "%s", next);
            continue;
        }
        *fail = status == 404 ? REGISTRY_FAIL_NOTFOUND : REGISTRY_FAIL_NETWORK;
        if (status == 404)
            return bw_errf(err, BW_ENOTFOUND, "file does not exist");
        return bw_errf(err, BW_EIO, "%ld: %.150s", status, x.errbody);
    }
    *fail = REGISTRY_FAIL_NETWORK;
    return bw_errf(err, BW_EIO, "maximum redirects exceeded (%d) for %.150s", MAX_REDIRECTS, url);
}

int registry__get_range(struct registry_conn *c, const char *url, uint64_t from, uint64_t to, registry__sink_fn sink,
                        void *ud, bool *ignored_range, bool *sink_stopped, enum registry_fail *fail,
                        struct bw_err *err)
{
    char range[64];
    snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, from, to);
    struct xfer x = {.cancel = c->cancel, .sink = sink, .ud = ud, .check_range = true, .range_from = from};
    struct req r = {.url = url, .range = range, .follow = true};
    long status = 0;
    int rc = perform(c, &r, &x, &status, NULL, 0, fail, err);
    *sink_stopped = x.sink_stopped;
    *ignored_range = x.range_ignored;
    if (rc)
        return rc;
    if (x.range_wrong) {
        *fail = REGISTRY_FAIL_NETWORK;
        return bw_errf(err, BW_EIO, "Get \"%.150s\": asked for bytes from %" PRIu64 ", got a range from %" PRIu64, url,
                       from, x.range_got);
    }
    if (status >= 300) {
        *fail = status == 404 ? REGISTRY_FAIL_NOTFOUND : REGISTRY_FAIL_NETWORK;
        return bw_errf(err, status == 404 ? BW_ENOTFOUND : BW_EIO, "Get \"%.150s\": %ld: %.150s", url, status,
                       x.errbody);
    }
    return BW_OK;
}
