/* store_int.h -- shared by store.c, store_blob.c and store_manifest.c; not part of the API.
 *
 *   store.c           open/close, resolve, list, copy, delete, pruning
 *   store_create.c    create
 *   store_blob.c      blob files: atomic writes, the hashing writer, small blobs
 *   store_manifest.c  manifest and config JSON <-> plain structs: the only file that
 *                     includes jansson; pure except store__manifest_read() */
#ifndef BELLOWS_STORE_INT_H
#define BELLOWS_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

/* Copies go through a buffer of this size; progress is reported every STORE__PROGRESS_STEP. */
#define STORE__CHUNK (1u << 20)
#define STORE__PROGRESS_STEP (4u << 20)
/* Manifests, configs and text layers larger than this are refused as corrupt. */
#define STORE__SMALL_MAX (64u << 20)

struct store {
    char *root;                 /* absolute, no trailing '/' */
    char *blobs;                /* root/blobs */
    char *manifests;            /* root/manifests */
    pthread_mutex_t lock;       /* guards manifest writes, deletes and pruning */
    _Atomic uint64_t generation;/* store_generation(): bumped after every manifest write or delete */
};

struct store__layer {
    char media[128];            /* mediaType (truncated if absurdly long) */
    char hex[NAMES_HEX_LEN + 1];
    uint64_t size;
};

struct store__manifest {
    struct store__layer config; /* config.hex[0] == 0 when the manifest has none */
    struct store__layer *layers;/* owned */
    size_t n_layers;
    char hex[NAMES_HEX_LEN + 1];/* sha256 of the file's bytes */
    int64_t mtime_ns;
};

/* A small set of digests (hex), deduplicated. Linear: a store names hundreds, not millions. */
struct store__hexset {
    char (*hex)[NAMES_HEX_LEN + 1]; /* owned */
    size_t n, cap;
};

/* ---- store.c ---- */
int store__hexset_add(struct store__hexset *s, const char *hex);
/* Add every digest a manifest names, config included. */
int store__hexset_add_manifest(struct store__hexset *s, const struct store__manifest *m);
/* Parse NAME, find its manifest (case-insensitively if need be) and read it. */
int store__load(struct store *st, const char *name, struct names_ref *found, char *path,
                struct store__manifest *man, struct bw_err *err);
/* Fill M from a manifest: names, model blob path, text layers, details. */
int store__build_model(struct store *st, const struct names_ref *found, const struct store__manifest *man,
                       struct store_model *m, struct bw_err *err);
/* With st->lock held: remove the blobs in CANDS that no manifest names (best effort). */
void store__prune(struct store *st, const struct store__hexset *cands);
/* With st->lock held: write manifest TEXT for REF atomically, then prune what the
 * manifest it replaced named. */
int store__replace_manifest(struct store *st, const struct names_ref *ref, const char *text, size_t len,
                            struct bw_err *err);

/* ---- store_manifest.c ---- */
/* Parse manifest JSON. Every digest must be valid (the blob path is built from it). */
int store__manifest_parse(const char *text, size_t len, struct store__manifest *m, struct bw_err *err);
/* Read and parse the manifest file at PATH, with its sha256 and mtime. BW_ENOTFOUND when absent. */
int store__manifest_read(const char *path, struct store__manifest *m, char **bytes, size_t *n_bytes,
                         struct bw_err *err);
void store__manifest_fini(struct store__manifest *m);
/* Compact JSON text of a manifest (malloc'd, newline-terminated), or NULL on ENOMEM. */
char *store__manifest_dump(const struct store__manifest *m);
uint64_t store__manifest_size(const struct store__manifest *m);
/* The config blob's JSON (malloc'd) or NULL on ENOMEM. */
char *store__config_dump(const char *family, const char *param_size, const char *quant,
                         const struct store__layer *layers, size_t n_layers);
/* Read the details out of config JSON; missing fields stay NULL. Returns 0 or BW_ENOMEM
 * (bad JSON is not an error: the details are just absent). */
int store__config_parse(const char *text, size_t len, struct store_details *d);
void store__details_fini(struct store_details *d);
/* Normalise JSON text of the given kind (object or array) to compact sorted form; with
 * BASE (an object), BASE's keys are kept unless TEXT overrides them. */
int store__json_normalise(const char *what, const char *text, bool want_array, const char *base, char **out,
                          struct bw_err *err);

/* ---- store_blob.c ---- */
/* Write DATA to FINAL_PATH atomically (temp file in DIR, fsync, rename). */
int store__write_atomic(const char *dir, const char *final_path, const void *data, size_t len, struct bw_err *err);
/* Store DATA as a blob; its digest into hex; *created tells whether it is new. */
int store__put_bytes(struct store *st, const void *data, size_t len, char *hex, bool *created, struct bw_err *err);
/* store_blob_commit() that also tells whether the blob is new (false: it was there). */
int store__blob_commit(struct store_blob_writer *w, char *hex, bool *created, struct bw_err *err);
/* Read a whole small file (<= STORE__SMALL_MAX) NUL-terminated. BW_ENOTFOUND when absent. */
int store__read_small(const char *path, char **out, size_t *len, struct bw_err *err);
/* root/blobs/sha256-<hex> into buf (PATH_MAX). */
void store__blob_path_hex(const struct store *st, const char *hex, char *buf);
/* Remove hidden .tmp-* files older than max_age_s in DIR. */
void store__sweep_temps(const char *dir, int max_age_s);

#endif
