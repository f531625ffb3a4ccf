/* store_blob.c -- blob files and atomic writes (see store.h, store_int.h). */
#define _GNU_SOURCE /* asprintf, mkostemp */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/sha256.h"
#include "util/log.h"

/* ---- small helpers --------------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

/* A hidden temp file in DIR; its path into tmp (PATH_MAX). Returns the fd or -1. */
static int make_temp(const char *dir, char *tmp)
{
    if (snprintf(tmp, PATH_MAX, "%s/.tmp-XXXXXX", dir) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd >= 0)
        fchmod(fd, 0644); /* mkstemp makes 0600; blobs are read by runners and other users' tools */
    return fd;
}

/* fsync the directory so a rename survives a crash. Best effort. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int store__write_atomic(const char *dir, const char *final_path, const void *data, size_t len, struct bw_err *err)
{
    char tmp[PATH_MAX];
    int fd = make_temp(dir, tmp);
    if (fd < 0)
        return bw_errf(err, BW_EIO, "cannot create a file in %.150s: %s", dir, strerror(errno));
    if (write_all(fd, data, len) || fsync(fd)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return bw_errf(err, BW_EIO, "cannot write %.150s: %s", final_path, strerror(e));
    }
    close(fd);
    if (rename(tmp, final_path)) {
        int e = errno;
        unlink(tmp);
        return bw_errf(err, BW_EIO, "cannot rename into %.150s: %s", final_path, strerror(e));
    }
    sync_dir(dir);
    return BW_OK;
}

int store__read_small(const char *path, char **out, size_t *len, struct bw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot open %.180s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > STORE__SMALL_MAX) {
        close(fd);
        return bw_errf(err, BW_EIO, "%.180s is not a small regular file", path);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return bw_errf(err, BW_ENOMEM, "out of memory reading %.180s", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank meanwhile: take what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return BW_OK;
}

void store__blob_path_hex(const struct store *st, const char *hex, char *buf)
{
    snprintf(buf, PATH_MAX, "%s/sha256-%s", st->blobs, hex);
}

void store__sweep_temps(const char *dir, int max_age_s)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (strncmp(e->d_name, ".tmp-", 5) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
            continue;
        if (S_ISREG(st.st_mode) && now - st.st_mtime > max_age_s && unlinkat(dirfd(d), e->d_name, 0) == 0)
            LOG(LOG_INFO, "store", "removed stale temp file %s/%s", dir, e->d_name);
    }
    closedir(d);
}

/* ---- public blob queries --------------------------------------------------------------- */

bool store_blob_exists(struct store *st, const char *digest)
{
    char hex[NAMES_HEX_LEN + 1], path[PATH_MAX];
    struct stat sb;
    if (names_digest_parse(digest, hex, NULL))
        return false;
    store__blob_path_hex(st, hex, path);
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int store_blob_path(struct store *st, const char *digest, char *buf, size_t len, struct bw_err *err)
{
    char hex[NAMES_HEX_LEN + 1];
    int rc = names_digest_parse(digest, hex, err);
    if (rc)
        return rc;
    if ((size_t)snprintf(buf, len, "%s/sha256-%s", st->blobs, hex) >= len)
        return bw_errf(err, BW_EINVAL, "blob path does not fit in %zu bytes", len);
    return BW_OK;
}

/* ---- the hashing writer ---------------------------------------------------------------- */

struct store_blob_writer {
    struct store *st;
    int fd;
    char tmp[PATH_MAX];
    struct sha256 sha;
    uint64_t n_bytes, total, next_report, reported;
    bool has_expected;
    char expected[NAMES_HEX_LEN + 1];
    store_progress_fn progress;
    void *ud;
};

int store_blob_begin(struct store *st, const char *digest, uint64_t total, store_progress_fn progress,
                     void *ud, struct store_blob_writer **out, struct bw_err *err)
{
    struct store_blob_writer *w = calloc(1, sizeof *w);
    if (!w)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    if (digest) {
        int rc = names_digest_parse(digest, w->expected, err);
        if (rc) {
            free(w);
            return rc;
        }
        w->has_expected = true;
    }
    if ((w->fd = make_temp(st->blobs, w->tmp)) < 0) {
        int e = errno;
        free(w);
        return bw_errf(err, BW_EIO, "cannot create a file in %.150s: %s", st->blobs, strerror(e));
    }
    w->st = st;
    w->total = total;
    w->next_report = STORE__PROGRESS_STEP;
    w->progress = progress;
    w->ud = ud;
    sha256_init(&w->sha);
    *out = w;
    return BW_OK;
}

/* A failed write or sync of a blob, errno in E: a full disk gets its own code and words. */
static int write_error(struct store_blob_writer *w, int e, struct bw_err *err)
{
    if (e == ENOSPC || e == EDQUOT)
        return bw_errf(err, BW_ENOSPC, "no space left on device: the disk holding %.150s filled up after %llu bytes "
                       "of the blob", w->st->blobs, (unsigned long long)w->n_bytes);
    return bw_errf(err, BW_EIO, "cannot write a blob: %s", strerror(e));
}

int store_blob_room(struct store *st, uint64_t len, struct bw_err *err)
{
    struct statvfs v;
    if (statvfs(st->blobs, &v))
        return BW_OK;
    uint64_t avail = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
    if (len <= avail)
        return BW_OK;
    return bw_errf(err, BW_ENOSPC, "not enough disk space: the blob is %llu bytes (%.1f GiB) but only %llu bytes "
                   "(%.1f GiB) are free in %.120s", (unsigned long long)len, (double)len / (1 << 30),
                   (unsigned long long)avail, (double)avail / (1 << 30), st->blobs);
}

int store_blob_write(struct store_blob_writer *w, const void *data, size_t len, struct bw_err *err)
{
    if (write_all(w->fd, data, len))
        return write_error(w, errno, err);
    sha256_update(&w->sha, data, len);
    w->n_bytes += len;
    if (w->progress && w->n_bytes >= w->next_report) {
        w->progress(w->ud, "copying model", w->n_bytes, w->total > w->n_bytes ? w->total : w->n_bytes);
        w->reported = w->n_bytes;
        while (w->next_report <= w->n_bytes)
            w->next_report += STORE__PROGRESS_STEP;
    }
    return BW_OK;
}

void store_blob_abort(struct store_blob_writer *w)
{
    if (!w)
        return;
    close(w->fd);
    unlink(w->tmp);
    free(w);
}

int store_blob_commit(struct store_blob_writer *w, char *hex, struct bw_err *err)
{
    bool created;
    return store__blob_commit(w, hex, &created, err);
}

int store__blob_commit(struct store_blob_writer *w, char *hex, bool *created, struct bw_err *err)
{
    uint8_t d[SHA256_LEN];
    char got[SHA256_HEX_LEN + 1], final_path[PATH_MAX];
    struct stat sb;
    sha256_final(&w->sha, d);
    sha256_hex(d, got);
    if (w->has_expected && strcmp(got, w->expected)) {
        int rc = bw_errf(err, BW_EINVAL, "digest mismatch: expected sha256:%s, got sha256:%s", w->expected, got);
        store_blob_abort(w);
        return rc;
    }
    if (fdatasync(w->fd)) {
        int rc = write_error(w, errno, err);
        store_blob_abort(w);
        return rc;
    }
    store__blob_path_hex(w->st, got, final_path);
    *created = !(stat(final_path, &sb) == 0 && S_ISREG(sb.st_mode));
    if (!*created) {
        unlink(w->tmp); /* same bytes already there: keep the old file (it may be mmap'ed) */
    } else if (rename(w->tmp, final_path)) {
        int rc = bw_errf(err, BW_EIO, "cannot rename into %.150s: %s", final_path, strerror(errno));
        store_blob_abort(w);
        return rc;
    } else {
        sync_dir(w->st->blobs);
    }
    if (w->progress && (w->reported != w->n_bytes || w->total != w->n_bytes))
        w->progress(w->ud, "copying model", w->n_bytes, w->n_bytes); /* the last word: done == total */
    close(w->fd);
    free(w);
    if (hex)
        memcpy(hex, got, sizeof got);
    return BW_OK;
}

int store_blob_put_fd(struct store *st, int fd, const char *digest, store_progress_fn progress, void *ud,
                      struct bw_err *err)
{
    if (!digest)
        return bw_errf(err, BW_EINVAL, "a blob upload needs its digest");
    struct stat sb;
    uint64_t total = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
    char *buf = malloc(STORE__CHUNK);
    if (!buf)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    struct store_blob_writer *w = NULL;
    int rc = store_blob_begin(st, digest, total, progress, ud, &w, err);
    while (rc == BW_OK) {
        ssize_t n = read(fd, buf, STORE__CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = bw_errf(err, BW_EIO, "cannot read the blob: %s", strerror(errno));
        else if (n == 0)
            break;
        else
            rc = store_blob_write(w, buf, (size_t)n, err);
        if (rc)
            store_blob_abort(w);
    }
    free(buf);
    return rc ? rc : store_blob_commit(w, NULL, err);
}

int store_blob_put_file(struct store *st, const char *path, const char *digest, store_progress_fn progress,
                        void *ud, struct bw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot open %.180s: %s", path, strerror(errno));
    int rc = store_blob_put_fd(st, fd, digest, progress, ud, err);
    close(fd);
    return rc;
}

int store__put_bytes(struct store *st, const void *data, size_t len, char *hex, bool *created, struct bw_err *err)
{
    char path[PATH_MAX];
    struct stat sb;
    sha256_hex_of(data, len, hex);
    store__blob_path_hex(st, hex, path);
    *created = !(stat(path, &sb) == 0 && S_ISREG(sb.st_mode));
    return *created ? store__write_atomic(st->blobs, path, data, len, err) : BW_OK;
}
