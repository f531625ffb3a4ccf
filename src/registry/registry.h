/* registry.h -- pulling models from Ollama-protocol registries into the store.
 *
 * The protocol is the one Ollama's server/images.go and download.go speak (Docker registry
 * v2 paths, Ollama's media types), against registry.ollama.ai, Hugging Face's
 * Ollama-compatible registry (hf.co) or a local registry:
 *   GET <base>/v2/<namespace>/<model>/manifests/<tag>
 *       Accept: application/vnd.docker.distribution.manifest.v2+json
 *   GET <base>/v2/<namespace>/<model>/blobs/sha256:<hex>   (often a 307 to a CDN)
 * A 401 carrying `WWW-Authenticate: Bearer realm=...,service=...,scope=...` fetches a token
 * from the realm and retries once with `Authorization: Bearer <token>`.
 *
 * What this module does not do: push, sign requests with a user key (Ollama's private
 * models), HTTP over anything but libcurl. It knows nothing of the HTTP server.
 *
 * DESIGN (registry_pull)
 * - The manifest comes first, but is written last, byte for byte (store_manifest_put), only
 *   after every blob it names is in place: an interrupted pull never leaves half a model.
 * - A blob already in the store with the manifest's size is skipped: blobs only ever reach
 *   their final name after their sha256 was checked, so the name vouches for the bytes.
 * - Each missing blob is downloaded into `<blobs>/sha256-<hex>-partial` (the same name
 *   Ollama uses for its data file), in up to REGISTRY_MAX_PARTS parallel `Range` parts of at
 *   least REGISTRY_PART_MIN bytes (fewer parts for smaller blobs, one for small ones), each
 *   written at its offset. `sha256-<hex>-partial.parts` records the plan and each part's
 *   progress (after the data is synced), so a broken connection resumes within the pull and
 *   a restarted pull resumes from the bytes already on disk.
 * - The blob URL is resolved once per attempt: redirects on the registry's host are
 *   followed, the first one to another host (a CDN) gives the URL the parts fetch (as Ollama
 *   does). The token is never sent to another host.
 * - An attempt that fails (connection cut, stall, 5xx) is retried with a backoff from 1 s
 *   doubling to 30 s; six attempts in a row without progress fail the pull.
 * - When every blob is downloaded, each is sha256-checked ("verifying sha256 digest"); only
 *   when all match are they renamed into place. A mismatch deletes that blob's partial files
 *   (it must be downloaded again) and fails the pull: no blob of it, no manifest.
 * - Partial files are locked (flock) while a pull uses them, in digest order, so two pulls
 *   sharing a blob (in this process or another) never write it at once: the second waits,
 *   then finds the blob in place.
 *
 * Transport (libcurl): HTTPS with the system's CA certificates; plain HTTP only with
 * `insecure` (and then, as in Ollama, a name without a scheme is fetched over http://).
 * Redirects may not leave HTTPS unless insecure. Proxies come from the environment
 * (https_proxy / HTTPS_PROXY, http_proxy, no_proxy / NO_PROXY), which libcurl reads by
 * itself. Connecting times out after 30 s; a transfer slower than 1 byte/s for 30 s counts
 * as stalled and is retried.
 *
 * Threads: registry_pull blocks its caller for the whole pull and starts up to
 * REGISTRY_MAX_PARTS threads of its own while a blob downloads; progress callbacks run on
 * the caller's thread. Concurrent pulls (any models) are safe. */
#ifndef BELLOWS_REGISTRY_H
#define BELLOWS_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/names.h"
#include "store/store.h"
#include "util/err.h"

#define REGISTRY_PART_MIN (64ull << 20)
#define REGISTRY_MAX_PARTS 4

/* ---- names (names.c, pure) ---------------------------------------------------------------- */

#define REGISTRY_URL_MAX (16 + NAMES_HOST_MAX + 2 * NAMES_PART_MAX + 200)

/* Where a model name is pulled from. */
struct registry_ref {
    struct names_ref name;               /* host/namespace/model:tag, as the store names it */
    char scheme[8];                      /* "https" or "http" */
    char base[16 + NAMES_HOST_MAX];      /* "https://registry.ollama.ai", "http://127.0.0.1:5000" */
    char repo[2 * NAMES_PART_MAX + 2];   /* "library/llama3.2": the /v2/<repo>/ part */
};

/* Parse a name to pull: `[scheme://][host[:port]/][namespace/]model[:tag]` with Ollama's
 * defaults (registry.ollama.ai, library, latest), or `hf.co/USER/REPO[:QUANT]` (Hugging
 * Face's registry; the tag is the quantization, `latest` lets Hugging Face choose). The
 * scheme is https, or http when insecure and the name gives none. Returns 0, or BW_EINVAL
 * with "invalid model name ..." or, for an http:// name without insecure, "insecure
 * protocol http: ..." (*out untouched). */
int registry_ref_parse(const char *s, bool insecure, struct registry_ref *out, struct bw_err *err);

/* <base>/v2/<repo>/manifests/<tag> and <base>/v2/<repo>/blobs/<digest> into buf
 * (REGISTRY_URL_MAX bytes). */
void registry_manifest_url(const struct registry_ref *r, char *buf);
void registry_blob_url(const struct registry_ref *r, const char *digest, char *buf);

/* ---- Range parts (parts.c, pure) ------------------------------------------------------------ */

struct registry_part {
    uint64_t offset, size; /* the byte range [offset, offset + size) of the blob */
    uint64_t completed;    /* bytes of it on disk, from offset on */
};

/* Split a blob of TOTAL bytes into parts of at least PART_MIN bytes (0: REGISTRY_PART_MIN),
 * at most MAX_PARTS of them (0: REGISTRY_MAX_PARTS, at most REGISTRY_MAX_PARTS), nearly
 * equal, contiguous and covering the blob. Returns the count: 0 for an empty blob, 1 for a
 * blob smaller than twice PART_MIN. */
int registry_plan_parts(uint64_t total, uint64_t part_min, int max_parts, struct registry_part *out);

/* The part-progress file: text ("bellows-parts 1", the digest, the total, one line per part
 * "offset size completed"). Returns the length written (NUL-terminated into buf), or 0 when
 * it does not fit. */
size_t registry_parts_format(const char *digest, uint64_t total, const struct registry_part *parts, int n,
                             char *buf, size_t len);
/* Read it back. Returns the part count (>= 0) when TEXT is a progress file for DIGEST and
 * TOTAL whose parts are contiguous, cover the blob and have completed <= size; -1 for
 * anything else (the download then starts afresh). */
int registry_parts_parse(const char *text, const char *digest, uint64_t total, struct registry_part *out,
                         int max);

/* ---- pulling (pull.c, client.c) -------------------------------------------------------------- */

/* Why a pull failed, for the caller to pick a status (the message is in the bw_err). */
enum registry_fail {
    REGISTRY_FAIL_NONE = 0,
    REGISTRY_FAIL_INVALID,   /* bad name, http without insecure, a model Bellows cannot run */
    REGISTRY_FAIL_NOTFOUND,  /* the registry has no such model (or blob) */
    REGISTRY_FAIL_AUTH,      /* still 401 after the token */
    REGISTRY_FAIL_NETWORK,   /* no connection, timeouts, TLS, 5xx, a malformed answer */
    REGISTRY_FAIL_DIGEST,    /* a blob's bytes do not hash to its digest */
    REGISTRY_FAIL_NOSPACE,   /* the disk is full */
    REGISTRY_FAIL_CANCELLED, /* *cancel was set */
    REGISTRY_FAIL_LOCAL,     /* the store: I/O, out of memory */
};

/* One progress event, Ollama's ProgressResponse: STATUS is "pulling manifest",
 * "pulling <first 12 hex of the digest>" (with DIGEST "sha256:<hex>", TOTAL and COMPLETED
 * in bytes; repeated while it downloads, about 10 times a second), "verifying sha256
 * digest", "writing manifest" or "success" (DIGEST NULL, TOTAL 0). The strings are valid
 * during the call. */
struct registry_progress {
    const char *status;
    const char *digest;
    uint64_t total, completed;
};
typedef void (*registry_progress_fn)(void *ud, const struct registry_progress *p);

struct registry_pull_opts {
    bool insecure;                /* allow plain HTTP (a local registry) */
    const atomic_bool *cancel;    /* polled about once a second; true stops the pull. May be NULL */
    registry_progress_fn progress;/* may be NULL */
    void *progress_ud;
    uint64_t part_min;            /* 0: REGISTRY_PART_MIN (smaller values are for tests) */
    int max_parts;                /* 0: REGISTRY_MAX_PARTS */
};

/* Pull NAME into ST (see DESIGN). Returns 0 once the manifest is written ("success" was
 * reported), or an error with *fail saying which kind and err the message, worded as
 * Ollama's: "pull model manifest: file does not exist" (unknown model), "pull model
 * manifest: Get \"<url>\": <what failed>" (network), "digest mismatch, file must be
 * downloaded again: want sha256:..., got sha256:...", "write <path>: no space left on
 * device". The BW code is BW_EINVAL (INVALID), BW_ENOTFOUND (NOTFOUND), BW_ENOMEM, or
 * BW_EIO (the rest). On error no manifest changed; partial files stay for a later pull
 * (except a blob whose digest did not match). */
int registry_pull(struct store *st, const char *name, const struct registry_pull_opts *o, enum registry_fail *fail,
                  struct bw_err *err);

#endif
