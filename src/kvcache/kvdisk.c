/* kvdisk.c -- see kvdisk.h. Reading order: names and the directory, the index (open,
 * close), the budget, save, lookup and load, usage and removal. */
#define _GNU_SOURCE
#include "kvcache/kvdisk_int.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

struct entry {
    char name[KVDISK_NAME_MAX];
    struct kvdisk_header h;
    int32_t *tokens;
    uint64_t *blocks; /* chained hash of each full block of KVDISK_BLOCK tokens */
    uint64_t id;
};

struct kvdisk {
    char *dir, *model_key, *setup_key;
    char model16[17], setup16[17];
    uint64_t budget;
    struct entry *e;
    int n, cap;
    uint64_t next_id;
};

/* ---- names and the directory ------------------------------------------------------------------ */

static void hex16(const char *s, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)kvdisk__hash(s, strlen(s), 0));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* A temporary file (`NAME.kv.tmp.PID`) whose writer is gone: a save that never finished. */
static bool stale_tmp(const char *name)
{
    const char *t = strstr(name, ".kv.tmp.");
    if (!t)
        return false;
    long pid = strtol(t + 8, NULL, 10);
    return pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

static void path_of(const struct kvdisk *kv, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", kv->dir, name);
}

/* ---- the index ----------------------------------------------------------------------------------- */

static void chain_blocks(const int32_t *tokens, int n, uint64_t seed, uint64_t *out)
{
    uint64_t h = seed;
    for (int b = 0; (b + 1) * KVDISK_BLOCK <= n; b++) {
        h = kvdisk__hash(tokens + (size_t)b * KVDISK_BLOCK, KVDISK_BLOCK * 4, h);
        out[b] = h;
    }
}

static uint64_t setup_seed(const struct kvdisk *kv) { return kvdisk__hash(kv->setup_key, strlen(kv->setup_key), 7); }

static void entry_free(struct entry *e)
{
    free(e->tokens);
    free(e->blocks);
}

static void index_drop(struct kvdisk *kv, int i)
{
    entry_free(&kv->e[i]);
    kv->e[i] = kv->e[--kv->n];
}

static int index_find(const struct kvdisk *kv, const char *name)
{
    for (int i = 0; i < kv->n; i++)
        if (!strcmp(kv->e[i].name, name))
            return i;
    return -1;
}

/* Adds an entry (takes tokens); false when the index is full or memory ran out. */
static bool index_add(struct kvdisk *kv, const char *name, const struct kvdisk_header *h, int32_t *tokens)
{
    if (kv->n >= KVDISK_MAX_ENTRIES)
        return false;
    if (kv->n == kv->cap) {
        int cap = kv->cap ? kv->cap * 2 : 16;
        struct entry *e = realloc(kv->e, (size_t)cap * sizeof *e);
        if (!e)
            return false;
        kv->e = e;
        kv->cap = cap;
    }
    struct entry *e = &kv->e[kv->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->h = *h;
    e->tokens = tokens;
    e->blocks = malloc(((size_t)h->n_tokens / KVDISK_BLOCK + 1) * sizeof *e->blocks);
    if (!e->blocks)
        return false;
    chain_blocks(tokens, (int)h->n_tokens, setup_seed(kv), e->blocks);
    e->id = ++kv->next_id;
    kv->n++;
    return true;
}

static void scan(struct kvdisk *kv)
{
    DIR *d = opendir(kv->dir);
    if (!d)
        return;
    char prefix[40];
    snprintf(prefix, sizeof prefix, "%s-%s-", kv->model16, kv->setup16);
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[4096];
        path_of(kv, de->d_name, path, sizeof path);
        if (stale_tmp(de->d_name)) {
            unlink(path);
            continue;
        }
        if (!ends_with(de->d_name, ".kv") || strncmp(de->d_name, prefix, strlen(prefix)) ||
            strlen(de->d_name) >= KVDISK_NAME_MAX)
            continue;
        struct kvdisk_header h;
        int32_t *tokens;
        bool foreign;
        struct bw_err err;
        int rc = kvdisk__read_head(path, kv->setup_key, &h, &tokens, &foreign, &err);
        if (rc == BW_EINVAL) {
            LOG(LOG_WARN, "kvdisk", "removing %s", err.msg);
            unlink(path);
        } else if (rc == BW_OK && foreign) {
            /* Named for this setup, holding another's (copied or renamed): its name is the
             * hash of its own setup, so it is valid for no one. */
            LOG(LOG_WARN, "kvdisk", "removing %s: a state of another setup under this one's name", path);
            unlink(path);
        } else if (rc == BW_OK && !index_add(kv, de->d_name, &h, tokens)) {
            free(tokens);
        }
    }
    closedir(d);
}

int kvdisk_open(const struct kvdisk_config *cfg, struct kvdisk **out, struct bw_err *err)
{
    if (mkdirs(cfg->dir) != 0)
        return bw_errf(err, BW_EIO, "cannot create %s: %s", cfg->dir, strerror(errno));
    struct kvdisk *kv = calloc(1, sizeof *kv);
    if (!kv || !(kv->dir = strdup(cfg->dir)) || !(kv->model_key = strdup(cfg->model_key)) ||
        !(kv->setup_key = strdup(cfg->setup_key))) {
        kvdisk_close(kv);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    kv->budget = cfg->budget_bytes;
    hex16(kv->model_key, kv->model16);
    hex16(kv->setup_key, kv->setup16);
    scan(kv);
    *out = kv;
    return BW_OK;
}

void kvdisk_close(struct kvdisk *kv)
{
    if (!kv)
        return;
    for (int i = 0; i < kv->n; i++)
        entry_free(&kv->e[i]);
    free(kv->e);
    free(kv->dir);
    free(kv->model_key);
    free(kv->setup_key);
    free(kv);
}

/* ---- the budget ------------------------------------------------------------------------------------ */

struct file_stat {
    char name[KVDISK_NAME_MAX];
    uint64_t bytes;
    struct timespec mtime;
};

static int older(const void *a, const void *b)
{
    const struct file_stat *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The directory's .kv files, oldest first (*out malloc'd); returns the count, total bytes
 * in *total. */
static int list_files(const char *dir, struct file_stat **out, uint64_t *total)
{
    *out = NULL;
    *total = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".kv") || strlen(de->d_name) >= KVDISK_NAME_MAX)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            struct file_stat *f = realloc(*out, (size_t)cap * sizeof *f);
            if (!f)
                break;
            *out = f;
        }
        snprintf((*out)[n].name, KVDISK_NAME_MAX, "%s", de->d_name);
        (*out)[n].bytes = (uint64_t)st.st_size;
        (*out)[n].mtime = st.st_mtim;
        *total += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (n)
        qsort(*out, (size_t)n, sizeof **out, older);
    return n;
}

static void remove_file(struct kvdisk *kv, const char *name)
{
    char path[4096];
    path_of(kv, name, path, sizeof path);
    unlink(path);
    int i = index_find(kv, name);
    if (i >= 0)
        index_drop(kv, i);
}

/* Removes the least recently used files (any setup) until `incoming` more bytes fit.
 * `replacing` (a file the save overwrites) counts as gone. */
static void make_room(struct kvdisk *kv, uint64_t incoming, const char *replacing)
{
    struct file_stat *f;
    uint64_t total;
    int n = list_files(kv->dir, &f, &total);
    for (int i = 0; i < n; i++)
        if (!strcmp(f[i].name, replacing))
            total -= f[i].bytes;
    for (int i = 0; i < n && total + incoming > kv->budget; i++) {
        if (!strcmp(f[i].name, replacing))
            continue;
        LOG(LOG_DEBUG, "kvdisk", "budget: removing %s (%llu bytes, least recently used)", f[i].name,
            (unsigned long long)f[i].bytes);
        remove_file(kv, f[i].name);
        total -= f[i].bytes;
    }
    free(f);
}

/* ---- save --------------------------------------------------------------------------------------- */

/* Tokens both share from the start. */
static int common_prefix(const struct kvdisk *kv, const struct entry *e, const int32_t *tokens, int n,
                         const uint64_t *blocks)
{
    int lim = (int)e->h.n_tokens < n ? (int)e->h.n_tokens : n;
    int b = 0;
    while ((b + 1) * KVDISK_BLOCK <= lim && e->blocks[b] == blocks[b])
        b++;
    int i = b * KVDISK_BLOCK;
    while (i < lim && e->tokens[i] == tokens[i])
        i++;
    return i;
}

int kvdisk_save(struct kvdisk *kv, const int32_t *tokens, int n_tokens, const void *state, size_t state_len,
                bool *saved, struct bw_err *err)
{
    if (saved)
        *saved = false;
    if (n_tokens <= 0 || n_tokens > KVDISK_MAX_TOKENS)
        return BW_OK;
    struct kvdisk_header h = {.setup_len = (uint32_t)strlen(kv->setup_key), .n_tokens = (uint32_t)n_tokens,
                              .state_len = state_len};
    h.header_bytes = 16 + (uint64_t)h.setup_len + 20;
    uint64_t bytes = kvdisk__file_size(&h);
    if (bytes > kv->budget)
        return BW_OK;
    char name[KVDISK_NAME_MAX];
    snprintf(name, sizeof name, "%s-%s-%016llx.kv", kv->model16, kv->setup16,
             (unsigned long long)kvdisk__hash(tokens, (size_t)n_tokens * 4, 3));
    make_room(kv, bytes, name);
    int rc = kvdisk__write(kv->dir, name, kv->setup_key, tokens, n_tokens, state, state_len, err);
    if (rc != BW_OK)
        return rc;
    int32_t *copy = malloc((size_t)n_tokens * 4);
    uint64_t *blocks = malloc(((size_t)n_tokens / KVDISK_BLOCK + 1) * sizeof *blocks);
    if (!copy || !blocks) {
        free(copy);
        free(blocks);
        return BW_OK; /* saved; the index learns of it at the next open */
    }
    memcpy(copy, tokens, (size_t)n_tokens * 4);
    chain_blocks(tokens, n_tokens, setup_seed(kv), blocks);
    /* Entries the new one holds (their tokens are a prefix of its tokens) are superseded. */
    for (int i = kv->n - 1; i >= 0; i--) {
        struct entry *e = &kv->e[i];
        if (!strcmp(e->name, name)) {
            index_drop(kv, i);
        } else if ((int)e->h.n_tokens <= n_tokens && common_prefix(kv, e, tokens, n_tokens, blocks) == (int)e->h.n_tokens) {
            remove_file(kv, e->name);
        }
    }
    free(blocks);
    h.checksum = 0; /* the index never checks it: loads read the file's own header */
    if (!index_add(kv, name, &h, copy))
        free(copy);
    if (saved)
        *saved = true;
    return BW_OK;
}

/* ---- lookup and load ------------------------------------------------------------------------------- */

bool kvdisk_lookup(struct kvdisk *kv, const int32_t *tokens, int n, int min_tokens, struct kvdisk_hit *hit)
{
    if (n <= 0 || !kv->n)
        return false;
    uint64_t *blocks = malloc(((size_t)n / KVDISK_BLOCK + 1) * sizeof *blocks);
    if (!blocks)
        return false;
    chain_blocks(tokens, n, setup_seed(kv), blocks);
    int best = -1, best_common = 0;
    for (int i = 0; i < kv->n; i++) {
        int c = common_prefix(kv, &kv->e[i], tokens, n, blocks);
        /* the longer prefix wins; on a tie, the smaller state (less to read) */
        if (c > best_common || (c == best_common && best >= 0 && c > 0 && kv->e[i].h.state_len < kv->e[best].h.state_len)) {
            best = i;
            best_common = c;
        }
    }
    free(blocks);
    if (best < 0 || best_common < min_tokens || best_common <= 0)
        return false;
    *hit = (struct kvdisk_hit){.common = best_common, .n_tokens = (int)kv->e[best].h.n_tokens,
                               .state_len = kv->e[best].h.state_len, .id = kv->e[best].id};
    return true;
}

int kvdisk_load(struct kvdisk *kv, const struct kvdisk_hit *hit, void **state, size_t *len, struct bw_err *err)
{
    int i = 0;
    while (i < kv->n && kv->e[i].id != hit->id)
        i++;
    if (i == kv->n)
        return bw_errf(err, BW_ENOTFOUND, "the saved state is gone");
    struct entry *e = &kv->e[i];
    char path[4096];
    path_of(kv, e->name, path, sizeof path);
    /* The file's own header: it may have been rewritten since the index read it. */
    struct kvdisk_header h;
    int32_t *tokens;
    bool foreign;
    int rc = kvdisk__read_head(path, kv->setup_key, &h, &tokens, &foreign, err);
    if (rc == BW_OK && (foreign || h.n_tokens != e->h.n_tokens ||
                        memcmp(tokens, e->tokens, (size_t)h.n_tokens * 4)))
        rc = bw_errf(err, BW_EINVAL, "%s: no longer the state the index knows", path);
    if (rc == BW_OK)
        rc = kvdisk__read_state(path, kv->setup_key, &h, tokens, state, err);
    free(tokens);
    if (rc != BW_OK) {
        if (rc == BW_EINVAL) {
            LOG(LOG_WARN, "kvdisk", "removing %s", err ? err->msg : path);
            unlink(path);
        }
        index_drop(kv, i);
        return rc;
    }
    *len = h.state_len;
    return BW_OK;
}

/* ---- usage and removal ------------------------------------------------------------------------------ */

void kvdisk_usage(struct kvdisk *kv, struct kvdisk_usage *out)
{
    struct file_stat *f;
    uint64_t total;
    int n = list_files(kv->dir, &f, &total);
    free(f);
    *out = (struct kvdisk_usage){.bytes = total, .budget = kv->budget, .entries = kv->n, .files = n};
}

int kvdisk_clear(struct kvdisk *kv)
{
    int removed = 0;
    while (kv->n) {
        char path[4096];
        path_of(kv, kv->e[0].name, path, sizeof path);
        removed += unlink(path) == 0;
        index_drop(kv, 0);
    }
    return removed;
}

int kvdisk_list(const char *dir, int (*fn)(void *ud, const struct kvdisk_entry_info *e), void *ud)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".kv"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct kvdisk_header h;
        char *key;
        struct stat st;
        if (stat(path, &st) != 0 || kvdisk__read_key(path, &h, &key, NULL) != BW_OK)
            continue;
        char model_id[17];
        snprintf(model_id, sizeof model_id, "%.16s", de->d_name); /* "<model>-<setup>-<tokens>.kv" */
        struct kvdisk_entry_info e = {.setup_key = key, .model_id = model_id, .n_tokens = (int)h.n_tokens,
                                      .bytes = (uint64_t)st.st_size,
                                      .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
        n++;
        int stop = fn(ud, &e);
        free(key);
        if (stop)
            break;
    }
    closedir(d);
    return n;
}

void kvdisk_model_id(const char *model_key, char out[17]) { hex16(model_key, out); }

int kvdisk_remove_model(const char *dir, const char *model_key) { return kvdisk_clear_model(dir, model_key, NULL); }

int kvdisk_clear_model(const char *dir, const char *model_key, uint64_t *freed)
{
    if (freed)
        *freed = 0;
    char prefix[20] = "";
    if (model_key) {
        hex16(model_key, prefix);
        strcat(prefix, "-");
    }
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".kv") || strncmp(de->d_name, prefix, strlen(prefix)))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        uint64_t bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        if (unlink(path) == 0) {
            removed++;
            if (freed)
                *freed += bytes;
        }
    }
    closedir(d);
    return removed;
}
