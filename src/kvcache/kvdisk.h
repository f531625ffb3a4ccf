/* kvdisk.h -- sequences' KV state kept on disk and found again by the longest saved prefix
 * of a new prompt (issue 15).
 *
 * A cached conversation lives in the runner's pool only while its sequence stays there.
 * When it leaves (evicted, the runner stopping, the server shutting down), the engine hands
 * its tokens and its state bytes (llama_state_seq_get_data) to kvdisk_save(); a later
 * prompt asks kvdisk_lookup() for the saved state sharing the longest prefix with it and
 * kvdisk_load()s it instead of evaluating that prefix again. This module knows files, not
 * libllama: what a state means is the caller's.
 *
 * A state is valid only for the setup that made it: the model (its digest), the KV cache
 * type and anything else the caller folds into `setup_key`. Entries of other setups share
 * the directory (several models, one budget) but are never found.
 *
 * FILES. One file per saved sequence, `<model>-<setup>-<tokens>.kv` (16 hex digits each:
 * hashes of the model key, the setup key and the tokens), mode 0600 -- they hold the
 * conversation. Written whole to a temporary name, flushed, then renamed: a reader never
 * sees half a file. Layout (little-endian):
 *     "BWKVSTA1"  u32 version (1)  u32 setup_key_len  setup_key bytes
 *     u32 n_tokens  u64 state_len  u64 checksum  int32 tokens[n_tokens]  state bytes
 * The checksum covers the setup key, the tokens and the state. A file that is short, has
 * another magic or version, or whose checksum fails is ignored and removed, never loaded.
 *
 * FINDING. At open the directory is scanned; for each entry of this setup the tokens are
 * read (not the state) and hashed per block of KVDISK_BLOCK tokens, each block's hash
 * chained to the one before (vLLM's prefix blocks), so a lookup compares block hashes, then
 * the tokens of the one block where they part, and knows the exact common prefix.
 *
 * BUDGET. The directory's .kv files (every setup's) never exceed the budget in bytes: a
 * save removes the least recently used files first (mtime; a load touches its file). A
 * state larger than the budget is not saved. A save supersedes this setup's entries whose
 * tokens are a prefix of the new one's (the new state holds them).
 *
 * Threads: one struct kvdisk per runner, used by one thread. Several processes may share
 * the directory (renames and removals are atomic); an entry another process removed is a
 * failed load, not an error of the caller. */
#ifndef BELLOWS_KVDISK_H
#define BELLOWS_KVDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define KVDISK_BLOCK 64          /* tokens per block hash */
#define KVDISK_MAX_TOKENS (1 << 22)
#define KVDISK_MAX_ENTRIES 4096  /* entries of one setup the index keeps */

struct kvdisk;

struct kvdisk_config {
    const char *dir;          /* created (0700) when missing */
    uint64_t budget_bytes;    /* the directory's .kv files in all; 0: nothing is saved */
    const char *model_key;    /* the model's identity (its digest): kvdisk_remove_model's key */
    const char *setup_key;    /* model_key and everything else a state is valid for only */
};

/* Opens the directory, removes torn temporary files and invalid entries, indexes this
 * setup's entries. BW_EIO when the directory cannot be made or read. */
int kvdisk_open(const struct kvdisk_config *cfg, struct kvdisk **out, struct bw_err *err);
void kvdisk_close(struct kvdisk *kv);

/* Saves a sequence: its tokens and its state. BW_OK also when it was not saved because it
 * is larger than the budget (*saved false); BW_EIO when writing failed (nothing is left
 * behind). saved may be NULL. */
int kvdisk_save(struct kvdisk *kv, const int32_t *tokens, int n_tokens, const void *state, size_t state_len,
                bool *saved, struct bw_err *err);

/* The saved entry sharing the longest prefix with tokens[0..n), if that prefix is at least
 * min_tokens long. */
struct kvdisk_hit {
    int common;               /* tokens the prompt and the entry share from the start */
    int n_tokens;             /* tokens the saved state holds (>= common) */
    size_t state_len;
    uint64_t id;              /* which entry (for kvdisk_load) */
};
bool kvdisk_lookup(struct kvdisk *kv, const int32_t *tokens, int n, int min_tokens, struct kvdisk_hit *hit);

/* Reads a hit's state into a malloc'd buffer (*state, *len; the caller frees) after checking
 * its checksum, and marks it recently used. A file that is gone, torn or corrupt is
 * removed from the index (and the disk) and BW_ENOTFOUND / BW_EINVAL is returned. */
int kvdisk_load(struct kvdisk *kv, const struct kvdisk_hit *hit, void **state, size_t *len, struct bw_err *err);

/* What the directory holds, for `bellows cache` and the API. */
struct kvdisk_usage {
    uint64_t bytes, budget;
    int entries;              /* this setup's */
    int files;                /* every setup's */
};
void kvdisk_usage(struct kvdisk *kv, struct kvdisk_usage *out);

/* Removes this setup's entries (clear). Returns how many files were removed. */
int kvdisk_clear(struct kvdisk *kv);

/* Without an open kvdisk: every valid entry of dir (any setup), from its header only. fn
 * returns nonzero to stop. Returns how many entries were listed. */
struct kvdisk_entry_info {
    const char *setup_key;
    const char *model_id;     /* kvdisk_model_id of the model_key that saved it (from its name) */
    int n_tokens;
    uint64_t bytes;           /* the file's size */
    int64_t mtime_ns;         /* last saved or used (wall clock) */
};
int kvdisk_list(const char *dir, int (*fn)(void *ud, const struct kvdisk_entry_info *e), void *ud);

/* The 16 hex digits a model_key's files are named by (kvdisk_entry_info.model_id): how a
 * listing tells which model an entry belongs to without reading the setup key, whose
 * format is the caller's. */
void kvdisk_model_id(const char *model_key, char out[17]);

/* Without an open kvdisk: removes every entry of one model (any setup) from dir, e.g. when
 * the model is deleted; model_key NULL removes every entry. Returns how many files. */
int kvdisk_remove_model(const char *dir, const char *model_key);

/* kvdisk_remove_model that also says how many bytes the removed files held (*freed, may be
 * NULL): `bellows cache clear` and DELETE /api/cache. A file a runner is reading stays
 * readable to it until closed (POSIX unlink); a runner's index still naming a removed
 * file finds it gone at load (BW_ENOTFOUND) and evaluates instead. A save in progress
 * lands after the clear, as a new entry. */
int kvdisk_clear_model(const char *dir, const char *model_key, uint64_t *freed);

#endif
