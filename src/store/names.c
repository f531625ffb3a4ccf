/* names.c -- see names.h. */
#include "store/names.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum part_kind { PART_HOST, PART_NAMESPACE, PART_MODEL, PART_TAG };

static const char *const kind_names[] = {"host", "namespace", "model", "tag"};

static bool is_alnum_(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* NULL when S (LEN bytes, not NUL-terminated) is a valid part of KIND, else why not. */
static const char *part_problem(enum part_kind kind, const char *s, size_t len)
{
    size_t max = kind == PART_HOST ? NAMES_HOST_MAX : NAMES_PART_MAX;
    if (len == 0)
        return "empty part";
    if (len > max)
        return "part too long";
    if (!is_alnum_((unsigned char)s[0]))
        return "a part must start with a letter, digit or '_'";
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_alnum_(c) || c == '-')
            continue;
        if (c == '.' && kind != PART_NAMESPACE)
            continue;
        if (c == ':' && kind == PART_HOST)
            continue;
        if (c == '/' || c == '\\')
            return "path separators are not allowed";
        return "only letters, digits, '_', '-' and '.' are allowed";
    }
    return NULL;
}

static int set_part(char *dst, enum part_kind kind, const char *s, size_t len, const char *whole,
                    struct bw_err *err)
{
    const char *why = part_problem(kind, s, len);
    if (why)
        return bw_errf(err, BW_EINVAL, "invalid model name '%.100s': %s (%s)", whole, why, kind_names[kind]);
    memcpy(dst, s, len);
    dst[len] = '\0';
    return BW_OK;
}

int names_parse(const char *s, struct names_ref *out, struct bw_err *err)
{
    if (!s || !*s)
        return bw_errf(err, BW_EINVAL, "invalid model name '': empty");

    /* The tag is after the last ':' only when that ':' follows the last '/' (a ':' before
     * it belongs to a host's port), as in Ollama. */
    size_t len = strlen(s);
    const char *slash = strrchr(s, '/');
    const char *colon = strrchr(s, ':');
    const char *tag = NULL;
    size_t path_len = len;
    if (colon && (!slash || colon > slash)) {
        tag = colon + 1;
        path_len = (size_t)(colon - s);
    }

    /* Split the rest on '/': model, namespace/model or host/namespace/model. */
    const char *parts[3];
    size_t lens[3], n = 0;
    const char *p = s, *end = s + path_len;
    for (;;) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (n == 3)
            return bw_errf(err, BW_EINVAL, "invalid model name '%.100s': too many '/' parts", s);
        parts[n] = p;
        lens[n++] = q ? (size_t)(q - p) : (size_t)(end - p);
        if (!q)
            break;
        p = q + 1;
    }

    struct names_ref r;
    int rc;
    const char *host = NAMES_DEFAULT_HOST, *ns = NAMES_DEFAULT_NAMESPACE;
    size_t host_len = strlen(host), ns_len = strlen(ns);
    if (n == 3)
        host = parts[0], host_len = lens[0];
    if (n >= 2)
        ns = parts[n - 2], ns_len = lens[n - 2];
    if ((rc = set_part(r.host, PART_HOST, host, host_len, s, err)) ||
        (rc = set_part(r.ns, PART_NAMESPACE, ns, ns_len, s, err)) ||
        (rc = set_part(r.model, PART_MODEL, parts[n - 1], lens[n - 1], s, err)))
        return rc;
    if (tag) {
        if ((rc = set_part(r.tag, PART_TAG, tag, strlen(tag), s, err)))
            return rc;
    } else {
        strcpy(r.tag, NAMES_DEFAULT_TAG);
    }
    *out = r;
    return BW_OK;
}

int names_from_parts(const char *host, const char *ns, const char *model, const char *tag,
                     struct names_ref *out, struct bw_err *err)
{
    char whole[NAMES_FULL_MAX + 1];
    snprintf(whole, sizeof whole, "%.350s/%.80s/%.80s:%.80s", host, ns, model, tag);
    struct names_ref r;
    int rc;
    if ((rc = set_part(r.host, PART_HOST, host, strlen(host), whole, err)) ||
        (rc = set_part(r.ns, PART_NAMESPACE, ns, strlen(ns), whole, err)) ||
        (rc = set_part(r.model, PART_MODEL, model, strlen(model), whole, err)) ||
        (rc = set_part(r.tag, PART_TAG, tag, strlen(tag), whole, err)))
        return rc;
    *out = r;
    return BW_OK;
}

void names_full(const struct names_ref *n, char *buf)
{
    snprintf(buf, NAMES_FULL_MAX + 1, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

void names_display(const struct names_ref *n, char *buf)
{
    if (strcasecmp(n->host, NAMES_DEFAULT_HOST))
        snprintf(buf, NAMES_FULL_MAX + 1, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    else if (strcasecmp(n->ns, NAMES_DEFAULT_NAMESPACE))
        snprintf(buf, NAMES_FULL_MAX + 1, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        snprintf(buf, NAMES_FULL_MAX + 1, "%s:%s", n->model, n->tag);
}

void names_relpath(const struct names_ref *n, char *buf)
{
    snprintf(buf, NAMES_FULL_MAX + 1, "%s/%s/%s/%s", n->host, n->ns, n->model, n->tag);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int names_digest_parse(const char *s, char *hex, struct bw_err *err)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[NAMES_HEX_LEN + 1];
    if (!s || strncmp(s, "sha256", 6) || (s[6] != ':' && s[6] != '-') || strlen(s + 7) != NAMES_HEX_LEN)
        return bw_errf(err, BW_EINVAL, "invalid digest '%.100s': expected sha256:<64 hex digits>", s ? s : "");
    for (int i = 0; i < NAMES_HEX_LEN; i++) {
        int v = hex_value((unsigned char)s[7 + i]);
        if (v < 0)
            return bw_errf(err, BW_EINVAL, "invalid digest '%.100s': expected sha256:<64 hex digits>", s);
        tmp[i] = digits[v];
    }
    tmp[NAMES_HEX_LEN] = '\0';
    memcpy(hex, tmp, sizeof tmp);
    return BW_OK;
}

bool names_digest_valid(const char *s)
{
    char hex[NAMES_HEX_LEN + 1];
    return names_digest_parse(s, hex, NULL) == BW_OK;
}
