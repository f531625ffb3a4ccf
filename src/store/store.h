/* store.h -- models on disk, in Ollama's layout, under one root directory.
 *
 *   <root>/manifests/<host>/<namespace>/<model>/<tag>   JSON manifest (schemaVersion 2)
 *   <root>/blobs/sha256-<hex>                            content-addressed layers
 *
 * A manifest lists a config blob (JSON: model_format, model_family, model_type, file_type)
 * and layers, each {mediaType, digest, size}: the GGUF weights
 * (application/vnd.ollama.image.model) and optional params (JSON object), system,
 * template, license (text) and messages (JSON array). Pointing the root at
 * ~/.ollama/models lists and resolves the models Ollama pulled, and what Bellows writes
 * Ollama can read. The root is the caller's choice (BELLOWS_MODELS; store_default_root()).
 *
 * Knows nothing of HTTP or runners. Blocking file I/O (create copies whole model files):
 * call it from request threads or the CLI, never from the engine loop.
 *
 * DESIGN
 * - Every file appears atomically: written to a hidden ".tmp-XXXXXX" file in the same
 *   directory, fsync'ed, then renamed. Readers never see half a blob or manifest, so
 *   resolve/list take no lock. A blob is verified against its sha256 before the rename.
 * - The manifest is written last, after every blob it names exists.
 * - Deleting or overwriting a manifest prunes the blobs it named that no other manifest
 *   names; blobs it never named are left alone (an upload for a create in flight is
 *   safe). Pruning skips everything if any manifest cannot be parsed.
 * - Stale temp files older than a day are removed by store_open().
 *
 * THREADS
 * All functions are safe to call concurrently on one store, except store_close(). A mutex
 * inside the store serialises manifest writes, deletes and pruning; resolve and list read
 * without it and see each manifest either before or after a change. Long copies (create,
 * blob writes) run outside the mutex. Several processes on one root (a CLI `create` while
 * `serve` runs) are safe for reads and writes, but a prune racing another process's
 * create can remove a blob that create just found; create then fails with BW_EBUSY. */
#ifndef BELLOWS_STORE_H
#define BELLOWS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/names.h"
#include "util/err.h"

#define STORE_MEDIA_MODEL "application/vnd.ollama.image.model"
#define STORE_MEDIA_PARAMS "application/vnd.ollama.image.params"
#define STORE_MEDIA_SYSTEM "application/vnd.ollama.image.system"
#define STORE_MEDIA_TEMPLATE "application/vnd.ollama.image.template"
#define STORE_MEDIA_LICENSE "application/vnd.ollama.image.license"
#define STORE_MEDIA_MESSAGES "application/vnd.ollama.image.messages"
#define STORE_MEDIA_CONFIG "application/vnd.docker.container.image.v1+json"
#define STORE_MEDIA_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

struct store;

/* Progress of a long operation. STATUS is Ollama's wording ("parsing GGUF",
 * "copying model", "creating new layer sha256:...", "using existing layer sha256:...",
 * "writing manifest"); DONE/TOTAL are bytes while copying (called at least every 4 MiB and
 * once with DONE == TOTAL), 0/0 for steps without a size. Runs on the caller's thread;
 * STATUS is only valid during the call. */
typedef void (*store_progress_fn)(void *ud, const char *status, uint64_t done, uint64_t total);

/* BELLOWS_MODELS when set and not empty, else $HOME/.bellows/models, into buf.
 * Returns 0, or BW_EINVAL when neither is set or the path does not fit. */
int store_default_root(char *buf, size_t len, struct bw_err *err);

/* Open the store at ROOT, creating root/, blobs/ and manifests/ as needed. Returns 0 and
 * sets *out (release with store_close()), or BW_EIO / BW_ENOMEM. */
int store_open(const char *root, struct store **out, struct bw_err *err);
/* Not thread-safe: no other call on ST may be running. NULL is fine. */
void store_close(struct store *st);
/* The absolute root; valid until store_close(). */
const char *store_root(const struct store *st);

/* ---- reading -------------------------------------------------------------------------- */

/* From the config blob, as /api/tags shows them; each NULL when absent. Owned. */
struct store_details {
    char *format;             /* "gguf" */
    char *family;             /* "qwen2" */
    char *parameter_size;     /* "494.03M" */
    char *quantization_level; /* "Q8_0" */
};

struct store_model {
    char name[NAMES_FULL_MAX + 1];    /* "registry.ollama.ai/library/demo:latest" (as on disk) */
    char display[NAMES_FULL_MAX + 1]; /* "demo:latest" */
    char digest[NAMES_HEX_LEN + 1];   /* sha256 of the manifest bytes: /api/tags' digest */
    int64_t modified_ns;              /* manifest mtime, unix nanoseconds */
    uint64_t size;                    /* config + all layers, bytes (/api/tags' size) */

    char *model_path;                 /* absolute path of the GGUF blob. Owned */
    char model_digest[NAMES_HEX_LEN + 1];
    uint64_t model_size;

    /* Layer contents, NUL-terminated; NULL when the manifest has no such layer. Owned. */
    char *params;                     /* JSON object text, e.g. {"stop":["<|im_end|>"]} */
    char *system;
    char *template;
    char *license;                    /* several license layers are joined with "\n" */
    char *messages;                   /* JSON array text */

    struct store_details details;
};

/* Resolve NAME to its manifest and read its small layers. An exact path match wins;
 * otherwise the parts are matched case-insensitively (Ollama's names are; old Ollama
 * versions lowercased paths). Returns 0 and sets *out (free with store_model_free()), or
 * BW_EINVAL (bad name), BW_ENOTFOUND "model 'NAME' not found", BW_EIO (unreadable or
 * corrupt manifest, a missing blob). *out is untouched on error. */
int store_resolve(struct store *st, const char *name, struct store_model **out, struct bw_err *err);
void store_model_free(struct store_model *m);

struct store_entry {
    char name[NAMES_FULL_MAX + 1];
    char display[NAMES_FULL_MAX + 1];
    char digest[NAMES_HEX_LEN + 1];   /* of the manifest */
    int64_t modified_ns;
    uint64_t size;
    struct store_details details;
};

/* Caller-provided; filled by store_list(), emptied by store_list_fini(). */
struct store_list {
    struct store_entry *items;
    size_t n_items;
};

/* Every model, newest first (as /api/tags). Manifests that cannot be read or parsed, and
 * paths that are not valid names, are skipped with a warning in the log. Returns 0, or
 * BW_EIO / BW_ENOMEM with *out empty. */
int store_list(struct store *st, struct store_list *out, struct bw_err *err);
void store_list_fini(struct store_list *l);

/* A number that changes whenever this process changes the set of models: every manifest
 * written (create, copy, pull, manifest put) or deleted bumps it. A cache of store_list()
 * is current while the number is the same (changes made by other processes are not seen). */
uint64_t store_generation(struct store *st);

/* ---- blobs ---------------------------------------------------------------------------- */

/* Does the blob "sha256:<hex>" (or "sha256-<hex>") exist? false for an invalid digest. */
bool store_blob_exists(struct store *st, const char *digest);
/* The absolute path of a blob into buf. Returns 0, or BW_EINVAL (bad digest or too long). */
int store_blob_path(struct store *st, const char *digest, char *buf, size_t len, struct bw_err *err);

/* Is there room for a LEN-byte blob? Returns 0 when the filesystem of blobs/ has at least
 * LEN bytes free for this user (or its free space cannot be read: the writes will tell),
 * else BW_ENOSPC "not enough disk space ...". Space can still run out while writing. */
int store_blob_room(struct store *st, uint64_t len, struct bw_err *err);

/* A blob being written in pieces (an HTTP body arriving in chunks). Not thread-safe per
 * writer; one writer per upload. The bytes go to a hidden temp file in blobs/ that only
 * commit renames into place; write errors on a full disk (ENOSPC, EDQUOT) are BW_ENOSPC. */
struct store_blob_writer;

/* Start a blob. DIGEST ("sha256:<hex>") is what the bytes must hash to, or NULL to accept
 * any content (its digest is reported by commit). TOTAL is the expected size for progress,
 * 0 when unknown. Returns 0 and sets *out, or BW_EINVAL / BW_EIO / BW_ENOMEM. */
int store_blob_begin(struct store *st, const char *digest, uint64_t total, store_progress_fn progress,
                     void *ud, struct store_blob_writer **out, struct bw_err *err);
/* Append bytes. On error (BW_EIO, BW_ENOSPC) the writer is still alive: call
 * store_blob_abort(). */
int store_blob_write(struct store_blob_writer *w, const void *data, size_t len, struct bw_err *err);
/* Finish: check the digest, make the blob appear atomically (an identical existing blob is
 * kept). Frees W on every path. Returns 0 and, when HEX is not NULL, the digest's 64 hex
 * digits into it; BW_EINVAL "digest mismatch ..." leaves no file behind; BW_EIO, BW_ENOSPC
 * (no file behind either). */
int store_blob_commit(struct store_blob_writer *w, char *hex, struct bw_err *err);
/* Drop the bytes written so far and free W. NULL is fine. */
void store_blob_abort(struct store_blob_writer *w);

/* Read FD to its end into the blob DIGEST (required). Progress as for begin. Returns 0,
 * BW_EINVAL on a bad digest or a mismatch (no file is left), BW_EIO. FD stays open. */
int store_blob_put_fd(struct store *st, int fd, const char *digest, store_progress_fn progress, void *ud,
                      struct bw_err *err);
/* Same from a file; BW_ENOTFOUND when PATH does not exist. */
int store_blob_put_file(struct store *st, const char *path, const char *digest, store_progress_fn progress,
                        void *ud, struct bw_err *err);

/* ---- writing models -------------------------------------------------------------------- */

/* What a Modelfile says. Exactly one of the three sources. NULL fields are absent. */
struct store_create {
    const char *from_path;       /* a local GGUF file, copied into blobs/ while hashing */
    const char *from_digest;     /* "sha256:<hex>" of a GGUF blob already in the store */
    const char *from_model;      /* an existing model: its layers are inherited */
    const char *expected_digest; /* with from_path: the copy must hash to this */

    const char *params;          /* JSON object; merged over an inherited one (new keys win) */
    const char *system;          /* text layers replace inherited ones */
    const char *template;
    const char *license;
    const char *messages;        /* JSON array */

    store_progress_fn progress;  /* may be NULL */
    void *progress_ud;
};

/* Create (or overwrite) model NAME. The GGUF is checked first (magic, a header gguf can
 * read, tensor data inside the file): a bad file gives BW_EINVAL "<path> is not a GGUF
 * file (...)" before anything is written. Then blobs are written, then the config, then
 * the manifest; an overwritten manifest's blobs that nothing else uses are pruned.
 * Returns 0, or BW_EINVAL (bad name, bad JSON, digest mismatch, not GGUF), BW_ENOTFOUND
 * (missing file, blob or base model), BW_EBUSY (a blob was pruned meanwhile: retry),
 * BW_EIO, BW_ENOMEM. On error no manifest changed and blobs this call added are pruned. */
int store_create(struct store *st, const char *name, const struct store_create *req, struct bw_err *err);

/* Make DST name the same blobs as SRC (the manifest bytes are copied, so the digest is
 * the same). An existing DST is replaced. Returns 0, BW_EINVAL, BW_ENOTFOUND
 * "model 'SRC' not found", BW_EIO. */
int store_copy(struct store *st, const char *src, const char *dst, struct bw_err *err);

/* Remove NAME's manifest, then the blobs no other manifest names, then empty manifest
 * directories. Returns 0, BW_EINVAL, BW_ENOTFOUND "model 'NAME' not found", BW_EIO. */
int store_delete(struct store *st, const char *name, struct bw_err *err);

/* ---- pulled models (store_put.c) --------------------------------------------------------
 * A registry pull (src/registry) downloads blobs itself, into partial files beside the
 * blobs that it verifies and renames into place; the store only reads the manifest it got
 * and writes it last. */

/* One entry of a manifest, as a registry names it. */
struct store_layer {
    char media[128];                   /* mediaType */
    char digest[7 + NAMES_HEX_LEN + 1]; /* "sha256:<64 lowercase hex>" */
    uint64_t size;                     /* bytes; 0 when the manifest gives none */
};

/* The absolute blobs directory (valid until store_close()): blob files are
 * sha256-<hex>; a pull keeps its partial files there too. */
const char *store_blobs_dir(const struct store *st);

/* Parse manifest TEXT: the layers in order, then the config when there is one (the order
 * Ollama downloads them in).
 * Returns 0 and *out (caller frees) with *n_out entries, or BW_EIO "corrupt manifest: ..."
 * (not JSON, no layers, an invalid digest), BW_ENOMEM. */
int store_manifest_layers(const char *text, size_t len, struct store_layer **out, size_t *n_out,
                          struct bw_err *err);

/* Make TEXT (a manifest, kept byte for byte so its digest is the registry's) NAME's
 * manifest, atomically, once every blob it names is in the store with the size it says;
 * what an overwritten manifest named and nothing else uses is pruned. Returns 0, BW_EINVAL
 * (bad name), BW_EIO (corrupt manifest, a blob of the wrong size, a write failed), BW_EBUSY
 * (a blob is missing: a delete pruned it meanwhile; download it again). On error nothing
 * changed. */
int store_manifest_put(struct store *st, const char *name, const char *text, size_t len, struct bw_err *err);

#endif
