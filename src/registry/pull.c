/* pull.c -- registry_pull(): the manifest, each missing blob into its partial file in
 * parallel Range parts (resumable), every blob verified, then renamed into place, then the
 * manifest (see registry.h, DESIGN).
 *
 * Per blob, the pull's thread runs attempts: locate the bytes (the CDN URL), start one
 * thread per unfinished part, report progress every 100 ms and checkpoint every 2 s while
 * they run, join them, checkpoint. A checkpoint syncs the partial file's data, then writes
 * the part-progress file (temp + rename): what it says is on disk is on disk. */
#define _GNU_SOURCE
#include "registry/registry_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/sha256.h"
#include "util/clock.h"
#include "util/log.h"

#define MANIFEST_MAX (4u << 20)
#define MAX_TRIES 6               /* attempts in a row without progress */
#define BACKOFF_MAX_MS 30000
#define TICK_MS 100               /* progress reports */
#define CHECKPOINT_MS 2000
#define LOCK_POLL_MS 200
#define HASH_CHUNK (1u << 20)

struct blob {
    struct store_layer layer;
    char hex[NAMES_HEX_LEN + 1];
    char final[PATH_MAX], partial[PATH_MAX], parts_path[PATH_MAX];
    int fd;                       /* the partial file, locked; -1 when present */
    bool present;                 /* already in the store */
    struct registry_part parts[REGISTRY_MAX_PARTS];
    _Atomic uint64_t done[REGISTRY_MAX_PARTS]; /* bytes on disk per part (written by its thread) */
    int n_parts;
};

struct pull {
    struct store *st;
    const struct registry_pull_opts *o;
    struct registry_ref ref;
    struct registry_conn conn;
    struct blob *blobs;
    size_t n_blobs;
};

static bool cancelled(const struct pull *p)
{
    return p->o->cancel && atomic_load(p->o->cancel);
}

static void report(const struct pull *p, const char *status, const char *digest, uint64_t total, uint64_t done)
{
    if (!p->o->progress)
        return;
    struct registry_progress ev = {.status = status, .digest = digest, .total = total, .completed = done};
    p->o->progress(p->o->progress_ud, &ev);
}

static uint64_t blob_done(struct blob *b)
{
    uint64_t sum = 0;
    for (int i = 0; i < b->n_parts; i++)
        sum += atomic_load(&b->done[i]);
    return sum;
}

static void report_blob(const struct pull *p, struct blob *b)
{
    char status[32];
    snprintf(status, sizeof status, "pulling %.12s", b->hex);
    report(p, status, b->layer.digest, b->layer.size, b->present ? b->layer.size : blob_done(b));
}

/* Sleep MS in slices, returning early when cancelled. */
static void nap(const struct pull *p, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (!cancelled(p)) {
        int64_t left = end - clock_mono_ms();
        if (left <= 0)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (left < 100 ? left : 100) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int write_all_at(int fd, const char *data, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, data, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

/* Read a small file whole (the part-progress file). NULL when absent or unreadable. */
static char *read_small(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(4096);
    size_t n = buf ? fread(buf, 1, 4095, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- the part-progress file ------------------------------------------------------------- */

static void checkpoint(struct blob *b)
{
    struct registry_part snap[REGISTRY_MAX_PARTS];
    for (int i = 0; i < b->n_parts; i++) {
        snap[i] = b->parts[i];
        snap[i].completed = atomic_load(&b->done[i]); /* read before the sync: all of it is written */
    }
    if (fdatasync(b->fd))
        LOG(LOG_WARN, "registry", "cannot sync %s: %s", b->partial, strerror(errno));
    char text[1024], tmp[PATH_MAX + 8];
    size_t len = registry_parts_format(b->layer.digest, b->layer.size, snap, b->n_parts, text, sizeof text);
    snprintf(tmp, sizeof tmp, "%s.tmp", b->parts_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && len && write_all_at(fd, text, len, 0) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, b->parts_path)) {
        LOG(LOG_WARN, "registry", "cannot record the progress of %s: %s", b->partial, strerror(errno));
        unlink(tmp);
    }
}

static void plan_fresh(const struct pull *p, struct blob *b)
{
    b->n_parts = registry_plan_parts(b->layer.size, p->o->part_min, p->o->max_parts, b->parts);
    for (int i = 0; i < b->n_parts; i++)
        atomic_store(&b->done[i], 0);
}

/* ---- locking the partial files ------------------------------------------------------------ */

static bool blob_in_place(const struct blob *b)
{
    struct stat sb;
    return stat(b->final, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == b->layer.size;
}

/* Open and lock B's partial file (waiting while another pull holds it), or find the blob
 * in place meanwhile. */
static int lock_partial(struct pull *p, struct blob *b, enum registry_fail *fail, struct bw_err *err)
{
    bool said = false;
    for (;;) {
        if (cancelled(p)) {
            *fail = REGISTRY_FAIL_CANCELLED;
            return bw_errf(err, BW_EIO, "pull cancelled");
        }
        int fd = open(b->partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            *fail = errno == ENOSPC ? REGISTRY_FAIL_NOSPACE : REGISTRY_FAIL_LOCAL;
            return bw_errf(err, BW_EIO, "open %.200s: %s", b->partial, strerror(errno));
        }
        if (flock(fd, LOCK_EX | LOCK_NB)) {
            close(fd);
            if (!said) {
                LOG(LOG_INFO, "registry", "%s is being downloaded by another pull: waiting", b->layer.digest);
                report_blob(p, b);
                said = true;
            }
            nap(p, LOCK_POLL_MS);
            continue;
        }
        /* The pull that held it may have renamed it into place: is the path still this file? */
        struct stat a, c;
        if (fstat(fd, &a) || stat(b->partial, &c) || a.st_ino != c.st_ino || a.st_dev != c.st_dev) {
            close(fd);
            continue;
        }
        if (blob_in_place(b)) { /* it arrived while we waited: this partial is ours to drop */
            unlink(b->partial);
            unlink(b->parts_path);
            close(fd);
            b->present = true;
            return BW_OK;
        }
        b->fd = fd;
        return BW_OK;
    }
}

/* Read the part-progress of a locked partial, or start afresh. */
static int load_state(struct pull *p, struct blob *b, enum registry_fail *fail, struct bw_err *err)
{
    struct stat sb;
    char *text = read_small(b->parts_path);
    int n = fstat(b->fd, &sb) == 0 && (uint64_t)sb.st_size == b->layer.size
                ? registry_parts_parse(text, b->layer.digest, b->layer.size, b->parts, REGISTRY_MAX_PARTS)
                : -1;
    free(text);
    if (n >= 0) {
        b->n_parts = n;
        for (int i = 0; i < n; i++)
            atomic_store(&b->done[i], b->parts[i].completed);
        if (blob_done(b))
            LOG(LOG_INFO, "registry", "resuming %s at %" PRIu64 " of %" PRIu64 " bytes", b->layer.digest,
                blob_done(b), b->layer.size);
        return BW_OK;
    }
    plan_fresh(p, b);
    if (ftruncate(b->fd, 0) || ftruncate(b->fd, (off_t)b->layer.size)) {
        *fail = errno == ENOSPC || errno == EFBIG ? REGISTRY_FAIL_NOSPACE : REGISTRY_FAIL_LOCAL;
        return bw_errf(err, BW_EIO, "truncate %.200s: %s", b->partial, strerror(errno));
    }
    checkpoint(b);
    return BW_OK;
}

/* Reserve the space of the partial files now (so a full disk fails before the download,
 * not in the middle), after checking the free space. */
static int reserve_space(struct pull *p, enum registry_fail *fail, struct bw_err *err)
{
    uint64_t need = 0;
    for (size_t i = 0; i < p->n_blobs; i++) {
        struct blob *b = &p->blobs[i];
        struct stat sb;
        if (b->present || fstat(b->fd, &sb))
            continue;
        uint64_t have = (uint64_t)sb.st_blocks * 512;
        need += b->layer.size > have ? b->layer.size - have : 0;
    }
    struct statvfs vfs;
    if (need && statvfs(store_blobs_dir(p->st), &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (avail < need) {
            *fail = REGISTRY_FAIL_NOSPACE;
            return bw_errf(err, BW_EIO,
                           "not enough disk space in %.150s: the model needs %" PRIu64 " more bytes, %" PRIu64
                           " are free",
                           store_blobs_dir(p->st), need, avail);
        }
    }
    for (size_t i = 0; i < p->n_blobs; i++) {
        struct blob *b = &p->blobs[i];
        if (b->present || b->layer.size == 0)
            continue;
        if (fallocate(b->fd, 0, 0, (off_t)b->layer.size) && errno == ENOSPC) {
            *fail = REGISTRY_FAIL_NOSPACE;
            return bw_errf(err, BW_EIO, "write %.200s: no space left on device", b->partial);
        }
    }
    return BW_OK;
}

/* ---- downloading one blob ------------------------------------------------------------------ */

struct part_job {
    struct pull *p;
    struct blob *b;
    int i;
    const char *url;
    pthread_t thread;
    bool started;
    _Atomic bool finished;
    int rc;
    enum registry_fail fail;
    struct bw_err err;
    bool no_range;  /* the server answered 200 to a Range not at 0 */
    bool capped;    /* the server sent more than the part: the part is complete */
};

static int part_sink(void *ud, const void *data, size_t len)
{
    struct part_job *j = ud;
    struct blob *b = j->b;
    const struct registry_part *pt = &b->parts[j->i];
    uint64_t done = atomic_load(&b->done[j->i]);
    uint64_t left = pt->size - done;
    size_t n = len > left ? (size_t)left : len;
    if (n && write_all_at(b->fd, data, n, pt->offset + done)) {
        j->fail = errno == ENOSPC || errno == EDQUOT ? REGISTRY_FAIL_NOSPACE : REGISTRY_FAIL_LOCAL;
        bw_errf(&j->err, BW_EIO, "write %.200s: %s", b->partial, strerror(errno));
        return -1;
    }
    atomic_store(&b->done[j->i], done + n);
    if (n < len) {
        j->capped = true;
        return -1;
    }
    return 0;
}

static void *part_main(void *arg)
{
    struct part_job *j = arg;
    struct blob *b = j->b;
    const struct registry_part *pt = &b->parts[j->i];
    uint64_t done = atomic_load(&b->done[j->i]);
    uint64_t from = pt->offset + done, to = pt->offset + pt->size - 1;
    bool stopped = false;
    struct bw_err e = {0};
    j->rc = registry__get_range(&j->p->conn, j->url, from, to, part_sink, j, &j->no_range, &stopped, &j->fail, &e);
    if (stopped)
        j->rc = j->capped ? BW_OK : BW_EIO; /* capped: complete; else the sink's error is in j->err */
    else if (j->rc)
        j->err = e;
    if (j->rc == BW_OK && !j->no_range && atomic_load(&b->done[j->i]) < pt->size) {
        j->fail = REGISTRY_FAIL_NETWORK;
        j->rc = bw_errf(&j->err, BW_EIO, "Get \"%.150s\": the connection closed after %" PRIu64 " of %" PRIu64 " bytes",
                        j->url, atomic_load(&b->done[j->i]) - done, pt->size - done);
    }
    atomic_store(&j->finished, true);
    return NULL;
}

static bool is_fatal(enum registry_fail f)
{
    return f == REGISTRY_FAIL_CANCELLED || f == REGISTRY_FAIL_NOSPACE || f == REGISTRY_FAIL_LOCAL ||
           f == REGISTRY_FAIL_NOTFOUND || f == REGISTRY_FAIL_AUTH || f == REGISTRY_FAIL_INVALID;
}

/* One attempt: every unfinished part in its own thread. Returns BW_OK when they all ended
 * cleanly; else the most serious error. *no_range when the server ignored Range. */
static int run_parts(struct pull *p, struct blob *b, const char *url, bool *no_range, enum registry_fail *fail,
                     struct bw_err *err)
{
    struct part_job jobs[REGISTRY_MAX_PARTS];
    int n = 0;
    for (int i = 0; i < b->n_parts; i++) {
        if (atomic_load(&b->done[i]) == b->parts[i].size)
            continue;
        struct part_job *j = &jobs[n];
        memset(j, 0, sizeof *j);
        j->p = p, j->b = b, j->i = i, j->url = url;
        if (pthread_create(&j->thread, NULL, part_main, j)) {
            j->rc = bw_errf(&j->err, BW_EIO, "cannot start a download thread");
            j->fail = REGISTRY_FAIL_LOCAL;
            atomic_store(&j->finished, true);
        } else {
            j->started = true;
        }
        n++;
    }
    int64_t last_cp = clock_mono_ms();
    for (;;) {
        bool all = true;
        for (int k = 0; k < n; k++)
            all = all && atomic_load(&jobs[k].finished);
        if (all)
            break;
        nap(p, TICK_MS);
        if (cancelled(p)) {
            /* the threads see it within a second (curl's progress callback) */
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        report_blob(p, b);
        if (clock_mono_ms() - last_cp >= CHECKPOINT_MS) {
            checkpoint(b);
            last_cp = clock_mono_ms();
        }
    }
    int rc = BW_OK;
    *no_range = false;
    for (int k = 0; k < n; k++) {
        struct part_job *j = &jobs[k];
        if (j->started)
            pthread_join(j->thread, NULL);
        *no_range = *no_range || j->no_range;
        if (j->rc && (rc == BW_OK || (is_fatal(j->fail) && !is_fatal(*fail)))) {
            rc = j->rc;
            *fail = j->fail;
            if (err)
                *err = j->err;
        }
    }
    checkpoint(b);
    return rc;
}

static int download(struct pull *p, struct blob *b, enum registry_fail *fail, struct bw_err *err)
{
    char blob_url[REGISTRY_URL_MAX], url[REGISTRY__FINAL_URL_MAX];
    registry_blob_url(&p->ref, b->layer.digest, blob_url);
    int tries = 0;
    struct bw_err last = {0};
    for (;;) {
        if (blob_done(b) == b->layer.size)
            break;
        if (cancelled(p)) {
            *fail = REGISTRY_FAIL_CANCELLED;
            return bw_errf(err, BW_EIO, "pull cancelled");
        }
        uint64_t before = blob_done(b);
        bool no_range = false;
        enum registry_fail f = REGISTRY_FAIL_NONE;
        int rc = registry__locate(&p->conn, blob_url, url, &f, &last);
        if (rc == BW_OK)
            rc = run_parts(p, b, url, &no_range, &f, &last);
        if (rc == BW_OK && no_range) {
            LOG(LOG_WARN, "registry", "%s: the server ignores Range requests: downloading %s in one part", url,
                b->layer.digest);
            b->n_parts = registry_plan_parts(b->layer.size, UINT64_MAX, 1, b->parts);
            atomic_store(&b->done[0], 0);
            checkpoint(b);
            continue;
        }
        if (rc == BW_OK)
            continue; /* all parts done, or the loop finds what is left */
        if (is_fatal(f)) {
            *fail = f;
            if (err)
                *err = last;
            return rc;
        }
        if (blob_done(b) > before)
            tries = 0;
        if (++tries >= MAX_TRIES) {
            *fail = f;
            return bw_errf(err, BW_EIO, "max retries exceeded: %s", last.msg);
        }
        int64_t wait = 1000LL << (tries - 1);
        if (wait > BACKOFF_MAX_MS)
            wait = BACKOFF_MAX_MS;
        LOG(LOG_INFO, "registry", "%.19s attempt %d failed: %s; retrying in %lld ms", b->layer.digest, tries,
            last.msg, (long long)wait);
        nap(p, wait);
    }
    report_blob(p, b);
    return BW_OK;
}

/* ---- verifying and moving into place ----------------------------------------------------------- */

static int verify(struct pull *p, struct blob *b, enum registry_fail *fail, struct bw_err *err)
{
    char *buf = malloc(HASH_CHUNK);
    if (!buf) {
        *fail = REGISTRY_FAIL_LOCAL;
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    struct sha256 s;
    sha256_init(&s);
    uint64_t off = 0;
    int rc = BW_OK;
    while (rc == BW_OK && off < b->layer.size) {
        if (cancelled(p)) {
            *fail = REGISTRY_FAIL_CANCELLED;
            rc = bw_errf(err, BW_EIO, "pull cancelled");
            break;
        }
        size_t want = b->layer.size - off < HASH_CHUNK ? (size_t)(b->layer.size - off) : HASH_CHUNK;
        ssize_t n = pread(b->fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *fail = REGISTRY_FAIL_LOCAL;
            rc = bw_errf(err, BW_EIO, "read %.200s: %s", b->partial, n < 0 ? strerror(errno) : "short file");
            break;
        }
        sha256_update(&s, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    if (rc)
        return rc;
    uint8_t d[SHA256_LEN];
    char got[SHA256_HEX_LEN + 1];
    sha256_final(&s, d);
    sha256_hex(d, got);
    if (strcmp(got, b->hex)) {
        /* These bytes are wrong: the next pull must not resume from them. */
        unlink(b->partial);
        unlink(b->parts_path);
        *fail = REGISTRY_FAIL_DIGEST;
        return bw_errf(err, BW_EIO, "digest mismatch, file must be downloaded again: want %s, got sha256:%s",
                       b->layer.digest, got);
    }
    return BW_OK;
}

static int move_into_place(struct blob *b, enum registry_fail *fail, struct bw_err *err)
{
    if (fdatasync(b->fd) || rename(b->partial, b->final)) {
        *fail = REGISTRY_FAIL_LOCAL;
        return bw_errf(err, BW_EIO, "rename %.150s: %s", b->partial, strerror(errno));
    }
    unlink(b->parts_path);
    return BW_OK;
}

/* ---- the pull ------------------------------------------------------------------------------------ */

static int by_digest(const void *a, const void *b)
{
    const struct blob *x = *(struct blob *const *)a, *y = *(struct blob *const *)b;
    return strcmp(x->hex, y->hex);
}

static void release_blobs(struct pull *p)
{
    for (size_t i = 0; i < p->n_blobs; i++) {
        if (p->blobs[i].fd >= 0)
            close(p->blobs[i].fd); /* unlocks */
        p->blobs[i].fd = -1;
    }
}

/* Blobs from the layers: one per digest, in manifest order, with their paths. */
static int make_blobs(struct pull *p, const struct store_layer *layers, size_t n, enum registry_fail *fail,
                      struct bw_err *err)
{
    p->blobs = calloc(n ? n : 1, sizeof *p->blobs);
    if (!p->blobs) {
        *fail = REGISTRY_FAIL_LOCAL;
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    const char *dir = store_blobs_dir(p->st);
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < p->n_blobs && !dup; k++)
            dup = !strcmp(p->blobs[k].layer.digest, layers[i].digest);
        if (dup)
            continue;
        struct blob *b = &p->blobs[p->n_blobs++];
        b->layer = layers[i];
        b->fd = -1;
        snprintf(b->hex, sizeof b->hex, "%s", layers[i].digest + 7);
        snprintf(b->final, sizeof b->final, "%s/sha256-%s", dir, b->hex);
        snprintf(b->partial, sizeof b->partial, "%s/sha256-%s-partial", dir, b->hex);
        snprintf(b->parts_path, sizeof b->parts_path, "%s/sha256-%s-partial.parts", dir, b->hex);
    }
    return BW_OK;
}

/* Everything after the manifest: lock, download, verify, move, write the manifest. */
static int pull_blobs(struct pull *p, const char *name, const char *manifest, size_t manifest_len,
                      enum registry_fail *fail, struct bw_err *err)
{
    int rc = BW_OK;
    struct blob **order = calloc(p->n_blobs ? p->n_blobs : 1, sizeof *order);
    if (!order) {
        *fail = REGISTRY_FAIL_LOCAL;
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->n_blobs; i++) {
        order[i] = &p->blobs[i];
        order[i]->present = blob_in_place(order[i]);
    }
    /* Locks in digest order, so two pulls that share blobs cannot wait on each other. */
    qsort(order, p->n_blobs, sizeof *order, by_digest);
    for (size_t i = 0; rc == BW_OK && i < p->n_blobs; i++)
        if (!order[i]->present && (rc = lock_partial(p, order[i], fail, err)) == BW_OK && !order[i]->present)
            rc = load_state(p, order[i], fail, err);
    free(order);
    if (rc == BW_OK)
        rc = reserve_space(p, fail, err);
    for (size_t i = 0; rc == BW_OK && i < p->n_blobs; i++) {
        struct blob *b = &p->blobs[i];
        if (b->present)
            report_blob(p, b);
        else
            rc = download(p, b, fail, err);
    }
    if (rc == BW_OK)
        report(p, "verifying sha256 digest", NULL, 0, 0);
    for (size_t i = 0; rc == BW_OK && i < p->n_blobs; i++)
        if (!p->blobs[i].present)
            rc = verify(p, &p->blobs[i], fail, err);
    for (size_t i = 0; rc == BW_OK && i < p->n_blobs; i++)
        if (!p->blobs[i].present)
            rc = move_into_place(&p->blobs[i], fail, err);
    if (rc == BW_OK)
        sync_dir(store_blobs_dir(p->st));
    release_blobs(p);
    if (rc)
        return rc;
    report(p, "writing manifest", NULL, 0, 0);
    rc = store_manifest_put(p->st, name, manifest, manifest_len, err);
    if (rc)
        *fail = rc == BW_EBUSY ? REGISTRY_FAIL_NONE : REGISTRY_FAIL_LOCAL; /* EBUSY: the caller retries */
    return rc;
}

static int fetch_manifest(struct pull *p, struct registry_buf *body, enum registry_fail *fail, struct bw_err *err)
{
    char url[REGISTRY_URL_MAX];
    registry_manifest_url(&p->ref, url);
    long status = 0;
    struct bw_err e = {0};
    int rc = registry__get(&p->conn, url, STORE_MEDIA_MANIFEST, body, &status, fail, &e);
    if (rc)
        return bw_errf(err, rc, "pull model manifest: %s", e.msg);
    if (status == 404) {
        *fail = REGISTRY_FAIL_NOTFOUND;
        return bw_errf(err, BW_ENOTFOUND, "pull model manifest: file does not exist");
    }
    if (status != 200) {
        *fail = REGISTRY_FAIL_NETWORK;
        return bw_errf(err, BW_EIO, "pull model manifest: %ld: %.150s", status, body->data ? body->data : "");
    }
    return BW_OK;
}

int registry_pull(struct store *st, const char *name, const struct registry_pull_opts *o, enum registry_fail *fail,
                  struct bw_err *err)
{
    static const struct registry_pull_opts none = {0};
    struct pull p = {.st = st, .o = o ? o : &none};
    enum registry_fail f = REGISTRY_FAIL_NONE;
    int rc = registry_ref_parse(name, p.o->insecure, &p.ref, err);
    if (rc) {
        if (fail)
            *fail = REGISTRY_FAIL_INVALID;
        return rc;
    }
    p.conn = (struct registry_conn){.ref = &p.ref, .insecure = p.o->insecure, .cancel = p.o->cancel};
    char full[NAMES_FULL_MAX + 1];
    names_full(&p.ref.name, full);
    LOG(LOG_INFO, "registry", "pulling %s from %s", full, p.ref.base);

    report(&p, "pulling manifest", NULL, 0, 0);
    struct registry_buf body = {.max = MANIFEST_MAX};
    struct store_layer *layers = NULL;
    size_t n_layers = 0;
    struct bw_err e = {0};
    rc = fetch_manifest(&p, &body, &f, err);
    if (rc == BW_OK && store_manifest_layers(body.data, body.len, &layers, &n_layers, &e)) {
        f = e.code == BW_ENOMEM ? REGISTRY_FAIL_LOCAL : REGISTRY_FAIL_NETWORK;
        rc = bw_errf(err, e.code == BW_ENOMEM ? BW_ENOMEM : BW_EIO, "pull model manifest: %s", e.msg);
    }
    bool has_gguf = false;
    for (size_t i = 0; i < n_layers; i++)
        has_gguf = has_gguf || !strcmp(layers[i].media, STORE_MEDIA_MODEL);
    if (rc == BW_OK && !has_gguf) {
        f = REGISTRY_FAIL_INVALID;
        rc = bw_errf(err, BW_EINVAL, "%.150s has no GGUF layer (%s): Bellows runs GGUF models only", full,
                     n_layers ? layers[0].media : "no layers");
    }
    if (rc == BW_OK)
        rc = make_blobs(&p, layers, n_layers, &f, err);
    /* A delete may prune a blob between its check and the manifest (store_manifest_put says
     * BW_EBUSY): download what is missing once more. */
    for (int round = 0; rc == BW_OK; round++) {
        rc = pull_blobs(&p, full, body.data, body.len, &f, err);
        if (rc == BW_EBUSY && round == 0) {
            LOG(LOG_WARN, "registry", "%s: %s", full, err ? err->msg : "a blob went missing");
            rc = BW_OK;
            continue;
        }
        if (rc == BW_EBUSY)
            f = REGISTRY_FAIL_LOCAL;
        break;
    }
    if (rc == BW_OK) {
        report(&p, "success", NULL, 0, 0);
        LOG(LOG_INFO, "registry", "pulled %s", full);
    } else {
        LOG(LOG_WARN, "registry", "pull of %s failed: %s", full, err ? err->msg : "");
    }
    free(p.blobs);
    free(layers);
    free(body.data);
    if (fail)
        *fail = rc ? (f ? f : REGISTRY_FAIL_LOCAL) : REGISTRY_FAIL_NONE;
    return rc;
}
