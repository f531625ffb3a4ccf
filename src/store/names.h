/* names.h -- model names and blob digests, as Ollama spells them. Pure: no I/O.
 *
 * A model name is `[host/][namespace/]model[:tag]`; missing parts take Ollama's defaults
 * (host `registry.ollama.ai`, namespace `library`, tag `latest`). Each part becomes one
 * directory level of the store (manifests/<host>/<namespace>/<model>/<tag>), so the
 * validation here is what keeps a client-supplied name inside the store:
 *   - every part is 1..80 bytes (host 1..350);
 *   - the first byte is a letter, digit or '_' (so no part is "." or ".." or hidden);
 *   - the other bytes are letters, digits, '_', '-', '.', except that a namespace has
 *     no '.', and only the host may hold ':' (a port);
 *   - at most three parts separated by '/', none empty: no absolute path, no "a//b",
 *     no backslash, no '@digest' form, no whitespace or control bytes.
 * These are Ollama's rules (types/model/name.go), except that a "scheme://" prefix is
 * rejected rather than stripped. Case is preserved; comparison is the caller's business.
 *
 * A digest is `sha256:<64 hex>` (the blob file is named `sha256-<hex>`); both forms are
 * accepted, hex in either case, and normalised to lowercase hex.
 *
 * Thread-safe: no state. */
#ifndef BELLOWS_NAMES_H
#define BELLOWS_NAMES_H

#include <stdbool.h>

#include "util/err.h"

#define NAMES_DEFAULT_HOST "registry.ollama.ai"
#define NAMES_DEFAULT_NAMESPACE "library"
#define NAMES_DEFAULT_TAG "latest"

#define NAMES_HOST_MAX 350
#define NAMES_PART_MAX 80
/* Longest "host/namespace/model:tag" (or the relative path with '/' for ':'), no NUL. */
#define NAMES_FULL_MAX (NAMES_HOST_MAX + 3 * (1 + NAMES_PART_MAX))
#define NAMES_HEX_LEN 64

/* A parsed, valid, fully qualified name (defaults filled in). Plain value, no heap. */
struct names_ref {
    char host[NAMES_HOST_MAX + 1];
    char ns[NAMES_PART_MAX + 1];
    char model[NAMES_PART_MAX + 1];
    char tag[NAMES_PART_MAX + 1];
};

/* Parse and validate S. Returns 0 and fills *out, or BW_EINVAL with
 * "invalid model name 'S': <why>" in err (*out untouched). */
int names_parse(const char *s, struct names_ref *out, struct bw_err *err);

/* Build a name from four separate parts (e.g. the directory levels found while listing),
 * each validated as above. Returns 0 or BW_EINVAL. */
int names_from_parts(const char *host, const char *ns, const char *model, const char *tag,
                     struct names_ref *out, struct bw_err *err);

/* "host/namespace/model:tag" into buf (NAMES_FULL_MAX + 1 bytes). */
void names_full(const struct names_ref *n, char *buf);
/* The short form Ollama lists: host and namespace dropped when they are the defaults
 * (compared case-insensitively), namespace kept when only the host is the default, tag
 * always shown: "demo:latest", "me/demo:latest", "example.com/me/demo:v1". */
void names_display(const struct names_ref *n, char *buf);
/* The manifest path relative to manifests/: "host/namespace/model/tag". */
void names_relpath(const struct names_ref *n, char *buf);

/* Is S "sha256:<hex>" or "sha256-<hex>" with exactly 64 hex digits? On 0, hex (65 bytes)
 * holds the lowercase digits; on BW_EINVAL ("invalid digest 'S'...") it is untouched. */
int names_digest_parse(const char *s, char *hex, struct bw_err *err);
bool names_digest_valid(const char *s);

#endif
