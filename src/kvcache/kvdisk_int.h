/* kvdisk_int.h -- what kvdisk.c (the index, the budget, lookups) and kvdisk_file.c (one
 * entry's file: its layout, writing it whole, reading it back checked) share. Private to
 * src/kvcache/. */
#ifndef BELLOWS_KVDISK_INT_H
#define BELLOWS_KVDISK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvcache/kvdisk.h"

#define KVDISK_MAGIC "BWKVSTA1"
#define KVDISK_VERSION 1u
#define KVDISK_NAME_MAX 80 /* "<16 hex>-<16 hex>-<16 hex>.kv" and a temporary suffix */

/* A fast 64-bit hash of bytes (not cryptographic: it finds torn and corrupt files and keys
 * names, nobody forges a state file to fool it; the SHA-256 of a 360 MB state would cost a
 * second per restore). */
uint64_t kvdisk__hash(const void *data, size_t len, uint64_t seed);

/* An entry's header, as read from its file. */
struct kvdisk_header {
    uint32_t setup_len;
    uint32_t n_tokens;
    uint64_t state_len;
    uint64_t checksum;
    uint64_t header_bytes; /* where the tokens start */
};

/* The file's total size for a header. */
static inline uint64_t kvdisk__file_size(const struct kvdisk_header *h)
{
    return h->header_bytes + (uint64_t)h->n_tokens * 4 + h->state_len;
}

/* Writes dir/name atomically (a temporary name, flushed, renamed), mode 0600. */
int kvdisk__write(const char *dir, const char *name, const char *setup_key, const int32_t *tokens, int n_tokens,
                  const void *state, size_t state_len, struct bw_err *err);

/* Reads a file's header and tokens (*tokens malloc'd) and checks the layout against the
 * file's size. Returns BW_OK; BW_ENOTFOUND (gone); BW_EINVAL (not an entry of this
 * version, or torn). An entry of another setup is BW_OK with *foreign set and no tokens. */
int kvdisk__read_head(const char *path, const char *setup_key, struct kvdisk_header *h, int32_t **tokens,
                      bool *foreign, struct bw_err *err);

/* Reads only a file's header and setup key (*key malloc'd). BW_OK, BW_ENOTFOUND, BW_EINVAL. */
int kvdisk__read_key(const char *path, struct kvdisk_header *h, char **key, struct bw_err *err);

/* Reads the state of a file whose header and tokens were read, checking the checksum over
 * setup key, tokens and state. *state malloc'd. BW_EINVAL when torn or corrupt. */
int kvdisk__read_state(const char *path, const char *setup_key, const struct kvdisk_header *h, const int32_t *tokens,
                       void **state, struct bw_err *err);

#endif
