/* kvdisk_file.c -- one saved entry's file (see kvdisk.h, FILES): the layout, writing it
 * whole under a temporary name, reading the header and tokens, reading the state checked. */
#define _GNU_SOURCE
#include "kvcache/kvdisk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the hash ------------------------------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Four independent lanes of 8-byte words (so the multiplies overlap), folded at the end. */
uint64_t kvdisk__hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t lane[4] = {seed ^ 0x9E3779B97F4A7C15ull, seed + 0x632BE59BD9B4E019ull, ~seed, seed * 3 + 1};
    size_t i = 0;
    for (; i + 32 <= len; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            lane[k] = (lane[k] ^ (w * 0x9E3779B97F4A7C15ull)) * 0xFF51AFD7ED558CCDull;
            lane[k] ^= lane[k] >> 29;
        }
    uint64_t h = mix(lane[0]) ^ mix(lane[1] + 1) ^ mix(lane[2] + 2) ^ mix(lane[3] + 3);
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return mix(h ^ len);
}

static uint64_t entry_checksum(const char *setup_key, const int32_t *tokens, uint32_t n_tokens, const void *state,
                               size_t state_len)
{
    uint64_t h = kvdisk__hash(setup_key, strlen(setup_key), 1);
    h = kvdisk__hash(tokens, (size_t)n_tokens * 4, h);
    return kvdisk__hash(state, state_len, h);
}

/* ---- writing ---------------------------------------------------------------------------------- */

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get64(const unsigned char *b) { return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32; }

int kvdisk__write(const char *dir, const char *name, const char *setup_key, const int32_t *tokens, int n_tokens,
                  const void *state, size_t state_len, struct bw_err *err)
{
    char path[4096], tmp[4096 + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return bw_errf(err, BW_EIO, "cannot write %s: %s", tmp, strerror(errno));
    fchmod(fd, 0600); /* whatever the umask: the file holds a conversation */
    size_t key_len = strlen(setup_key);
    unsigned char head[8 + 4 + 4];
    memcpy(head, KVDISK_MAGIC, 8);
    put32(head + 8, KVDISK_VERSION);
    put32(head + 12, (uint32_t)key_len);
    unsigned char mid[4 + 8 + 8];
    put32(mid, (uint32_t)n_tokens);
    put64(mid + 4, (uint64_t)state_len);
    put64(mid + 12, entry_checksum(setup_key, tokens, (uint32_t)n_tokens, state, state_len));
    /* Tokens as little-endian int32: on this project's targets that is their memory layout. */
    bool ok = write_all(fd, head, sizeof head) && write_all(fd, setup_key, key_len) && write_all(fd, mid, sizeof mid) &&
              write_all(fd, tokens, (size_t)n_tokens * 4) && write_all(fd, state, state_len) && fdatasync(fd) == 0;
    int saved_errno = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved_errno = errno;
        unlink(tmp);
        return bw_errf(err, saved_errno == ENOSPC ? BW_ENOSPC : BW_EIO, "cannot write %s: %s", path,
                       strerror(saved_errno));
    }
    return BW_OK;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static bool read_at(int fd, void *p, size_t n, off_t at)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n > (1u << 30) ? (1u << 30) : n, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
        at += r;
    }
    return true;
}

/* The header and setup key of an open file, checked against the file's size. */
static int read_key_fd(int fd, const char *path, struct kvdisk_header *h, char **key, struct bw_err *err)
{
    *key = NULL;
    struct stat st;
    unsigned char head[16], mid[20];
    if (fstat(fd, &st) != 0 || !read_at(fd, head, sizeof head, 0) || memcmp(head, KVDISK_MAGIC, 8) ||
        get32(head + 8) != KVDISK_VERSION)
        return bw_errf(err, BW_EINVAL, "%s: not a saved state of this version", path);
    h->setup_len = get32(head + 12);
    char *k = h->setup_len <= 4096 ? malloc(h->setup_len + 1) : NULL;
    if (!k || !read_at(fd, k, h->setup_len, 16) || !read_at(fd, mid, sizeof mid, 16 + (off_t)h->setup_len)) {
        free(k);
        return bw_errf(err, BW_EINVAL, "%s: torn header", path);
    }
    k[h->setup_len] = '\0';
    h->n_tokens = get32(mid);
    h->state_len = get64(mid + 4);
    h->checksum = get64(mid + 12);
    h->header_bytes = 16 + (uint64_t)h->setup_len + sizeof mid;
    if (h->n_tokens == 0 || h->n_tokens > KVDISK_MAX_TOKENS || h->state_len > (uint64_t)st.st_size ||
        kvdisk__file_size(h) != (uint64_t)st.st_size) {
        free(k);
        return bw_errf(err, BW_EINVAL, "%s: torn (its size does not match its header)", path);
    }
    *key = k;
    return BW_OK;
}

int kvdisk__read_key(const char *path, struct kvdisk_header *h, char **key, struct bw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot read %s: %s", path, strerror(errno));
    int rc = read_key_fd(fd, path, h, key, err);
    close(fd);
    return rc;
}

int kvdisk__read_head(const char *path, const char *setup_key, struct kvdisk_header *h, int32_t **tokens,
                      bool *foreign, struct bw_err *err)
{
    *tokens = NULL;
    *foreign = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot read %s: %s", path, strerror(errno));
    char *key;
    int rc = read_key_fd(fd, path, h, &key, err);
    if (rc == BW_OK && strcmp(key, setup_key)) {
        *foreign = true;
    } else if (rc == BW_OK) {
        *tokens = malloc((size_t)h->n_tokens * 4);
        if (!*tokens || !read_at(fd, *tokens, (size_t)h->n_tokens * 4, (off_t)h->header_bytes)) {
            free(*tokens);
            *tokens = NULL;
            rc = bw_errf(err, BW_EINVAL, "%s: torn tokens", path);
        }
    }
    free(key);
    close(fd);
    return rc;
}

int kvdisk__read_state(const char *path, const char *setup_key, const struct kvdisk_header *h, const int32_t *tokens,
                       void **state, struct bw_err *err)
{
    *state = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot read %s: %s", path, strerror(errno));
    struct stat st;
    void *buf = h->state_len ? malloc(h->state_len) : malloc(1);
    int rc = BW_OK;
    if (!buf)
        rc = bw_errf(err, BW_ENOMEM, "out of memory for a %llu-byte state", (unsigned long long)h->state_len);
    else if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != kvdisk__file_size(h) ||
             !read_at(fd, buf, h->state_len, (off_t)(h->header_bytes + (uint64_t)h->n_tokens * 4)))
        rc = bw_errf(err, BW_EINVAL, "%s: torn state", path);
    else if (entry_checksum(setup_key, tokens, h->n_tokens, buf, h->state_len) != h->checksum)
        rc = bw_errf(err, BW_EINVAL, "%s: corrupt (checksum mismatch)", path);
    else
        futimens(fd, NULL); /* recently used: the budget removes it last */
    close(fd);
    if (rc != BW_OK) {
        free(buf);
        return rc;
    }
    *state = buf;
    return BW_OK;
}
