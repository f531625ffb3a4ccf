/* store.c -- see store.h. Models: open, resolve, list, copy, delete, pruning (create is
 * in store_create.c). */
#define _GNU_SOURCE /* asprintf, mkostemp */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/gguf_info.h"
#include "util/log.h"

#define TEMP_MAX_AGE_S (24 * 3600)

/* ---- paths ----------------------------------------------------------------------------- */

/* mkdir -p. Returns 0 or -1 with errno. */
static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return -1;
            if (!(*p = c))
                return 0;
        }
    }
}

static char *path_join(const char *a, const char *b)
{
    char *p;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

int store_default_root(char *buf, size_t len, struct bw_err *err)
{
    const char *env = getenv("BELLOWS_MODELS"), *home = getenv("HOME");
    int n;
    if (env && *env)
        n = snprintf(buf, len, "%s", env);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.bellows/models", home);
    else
        return bw_errf(err, BW_EINVAL, "set BELLOWS_MODELS or HOME to say where models are stored");
    if (n < 0 || (size_t)n >= len)
        return bw_errf(err, BW_EINVAL, "the models path is too long");
    return BW_OK;
}

int store_open(const char *root, struct store **out, struct bw_err *err)
{
    char abs[PATH_MAX];
    if (!root || !*root)
        return bw_errf(err, BW_EINVAL, "no models directory given");
    if (mkdirs(root) || !realpath(root, abs))
        return bw_errf(err, BW_EIO, "cannot create the models directory %.150s: %s", root, strerror(errno));
    struct store *st = calloc(1, sizeof *st);
    if (!st || !(st->root = strdup(abs)) || !(st->blobs = path_join(abs, "blobs")) ||
        !(st->manifests = path_join(abs, "manifests"))) {
        store_close(st);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    if (mkdirs(st->blobs) || mkdirs(st->manifests)) {
        int rc = bw_errf(err, BW_EIO, "cannot create %.150s/{blobs,manifests}: %s", abs, strerror(errno));
        store_close(st);
        return rc;
    }
    pthread_mutex_init(&st->lock, NULL);
    store__sweep_temps(st->blobs, TEMP_MAX_AGE_S);
    *out = st;
    return BW_OK;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->manifests)
        pthread_mutex_destroy(&st->lock);
    free(st->root);
    free(st->blobs);
    free(st->manifests);
    free(st);
}

const char *store_root(const struct store *st)
{
    return st->root;
}

/* ---- finding manifests ----------------------------------------------------------------- */

static bool is_hidden(const char *name)
{
    return name[0] == '.';
}

/* DIR/NAME exists with the wanted kind (directory or regular file)? */
static bool has_entry(const char *dir, const char *name, bool want_dir)
{
    char p[PATH_MAX];
    struct stat sb;
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p || stat(p, &sb))
        return false;
    return want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode);
}

/* The entry of DIR equal to NAME ignoring case, into out; false when none. */
static bool find_caseless(const char *dir, const char *name, bool want_dir, char *out, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;
    while (d && !found && (e = readdir(d)))
        if (!is_hidden(e->d_name) && !strcasecmp(e->d_name, name) && has_entry(dir, e->d_name, want_dir))
            found = snprintf(out, len, "%s", e->d_name) < (int)len;
    if (d)
        closedir(d);
    return found;
}

/* Locate REF's manifest: the exact path, else each level matched ignoring case. On 0,
 * path (PATH_MAX) holds the file and *found the name as spelled on disk. */
static int find_manifest(struct store *st, const struct names_ref *ref, const char *shown, char *path,
                         struct names_ref *found, struct bw_err *err)
{
    const char *want[4] = {ref->host, ref->ns, ref->model, ref->tag};
    char got[4][NAMES_HOST_MAX + 1];
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", st->manifests);
    for (int i = 0; i < 4; i++) {
        if (has_entry(dir, want[i], i < 3))
            snprintf(got[i], sizeof got[i], "%s", want[i]);
        else if (!find_caseless(dir, want[i], i < 3, got[i], sizeof got[i]))
            return bw_errf(err, BW_ENOTFOUND, "model '%.200s' not found", shown);
        size_t n = strlen(dir);
        if (n + 1 + strlen(got[i]) >= sizeof dir)
            return bw_errf(err, BW_EINVAL, "model path too long");
        dir[n] = '/';
        strcpy(dir + n + 1, got[i]);
    }
    if (names_from_parts(got[0], got[1], got[2], got[3], found, err))
        return bw_errf(err, BW_ENOTFOUND, "model '%.200s' not found", shown);
    snprintf(path, PATH_MAX, "%s", dir);
    return BW_OK;
}

/* The manifest path a name is written to (exact spelling). */
static void manifest_path(const struct store *st, const struct names_ref *ref, char *path)
{
    char rel[NAMES_FULL_MAX + 1];
    names_relpath(ref, rel);
    snprintf(path, PATH_MAX, "%s/%s", st->manifests, rel);
}

/* ---- reading models -------------------------------------------------------------------- */

static int read_details(struct store *st, const struct store__manifest *m, struct store_details *d)
{
    char path[PATH_MAX], *text;
    size_t len;
    memset(d, 0, sizeof *d);
    if (!m->config.hex[0])
        return BW_OK;
    store__blob_path_hex(st, m->config.hex, path);
    if (store__read_small(path, &text, &len, NULL))
        return BW_OK; /* details are optional: /api/tags still lists the model */
    int rc = store__config_parse(text, len, d);
    free(text);
    return rc;
}

/* Read a text layer's blob; a missing blob is a broken model. */
static int read_layer_text(struct store *st, const struct store__layer *l, char **out, struct bw_err *err)
{
    char path[PATH_MAX];
    size_t len;
    store__blob_path_hex(st, l->hex, path);
    int rc = store__read_small(path, out, &len, err);
    if (rc == BW_ENOTFOUND)
        return bw_errf(err, BW_EIO, "blob sha256:%s (%s) is missing", l->hex, l->media);
    return rc;
}

/* Append TEXT (stolen) to *dst with a newline between. */
static int append_text(char **dst, char *text)
{
    if (!*dst) {
        *dst = text;
        return BW_OK;
    }
    char *joined;
    int n = asprintf(&joined, "%s\n%s", *dst, text);
    free(text);
    if (n < 0)
        return BW_ENOMEM;
    free(*dst);
    *dst = joined;
    return BW_OK;
}

void store_model_free(struct store_model *m)
{
    if (!m)
        return;
    free(m->model_path);
    free(m->params);
    free(m->system);
    free(m->template);
    free(m->license);
    free(m->messages);
    store__details_fini(&m->details);
    free(m);
}

/* Fill a store_model from a parsed manifest. */
int store__build_model(struct store *st, const struct names_ref *found, const struct store__manifest *man,
                       struct store_model *m, struct bw_err *err)
{
    names_full(found, m->name);
    names_display(found, m->display);
    memcpy(m->digest, man->hex, sizeof m->digest);
    m->modified_ns = man->mtime_ns;
    m->size = store__manifest_size(man);

    for (size_t i = 0; i < man->n_layers; i++) {
        const struct store__layer *l = &man->layers[i];
        char **slot = NULL;
        if (!strcmp(l->media, STORE_MEDIA_MODEL)) {
            if (m->model_path)
                continue; /* the first GGUF layer is the model */
            char path[PATH_MAX];
            struct stat sb;
            store__blob_path_hex(st, l->hex, path);
            if (stat(path, &sb) || !S_ISREG(sb.st_mode))
                return bw_errf(err, BW_EIO, "model '%.150s' is missing its blob sha256:%s", m->display, l->hex);
            if (!(m->model_path = strdup(path)))
                return bw_errf(err, BW_ENOMEM, "out of memory");
            memcpy(m->model_digest, l->hex, sizeof m->model_digest);
            m->model_size = l->size ? l->size : (uint64_t)sb.st_size;
            continue;
        }
        if (!strcmp(l->media, STORE_MEDIA_PARAMS))
            slot = &m->params;
        else if (!strcmp(l->media, STORE_MEDIA_SYSTEM))
            slot = &m->system;
        else if (!strcmp(l->media, STORE_MEDIA_TEMPLATE))
            slot = &m->template;
        else if (!strcmp(l->media, STORE_MEDIA_MESSAGES))
            slot = &m->messages;
        else if (!strcmp(l->media, STORE_MEDIA_LICENSE))
            slot = &m->license;
        if (!slot)
            continue; /* adapters, projectors: not ours to read */
        char *text;
        int rc = read_layer_text(st, l, &text, err);
        if (rc)
            return rc;
        if (slot == &m->license) {
            if (append_text(slot, text))
                return bw_errf(err, BW_ENOMEM, "out of memory");
        } else {
            free(*slot); /* a repeated layer: the last one wins */
            *slot = text;
        }
    }
    if (!m->model_path)
        return bw_errf(err, BW_EIO, "model '%.150s' has no GGUF layer", m->display);
    if (read_details(st, man, &m->details))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    return BW_OK;
}

/* Parse NAME, find and read its manifest. */
int store__load(struct store *st, const char *name, struct names_ref *found, char *path,
                struct store__manifest *man, struct bw_err *err)
{
    struct names_ref ref;
    int rc = names_parse(name, &ref, err);
    if (rc || (rc = find_manifest(st, &ref, name, path, found, err)))
        return rc;
    rc = store__manifest_read(path, man, NULL, NULL, err);
    if (rc == BW_ENOTFOUND) /* deleted between the lookup and the read */
        return bw_errf(err, BW_ENOTFOUND, "model '%.200s' not found", name);
    return rc;
}

int store_resolve(struct store *st, const char *name, struct store_model **out, struct bw_err *err)
{
    struct names_ref found;
    struct store__manifest man;
    char path[PATH_MAX];
    int rc = store__load(st, name, &found, path, &man, err);
    if (rc)
        return rc;
    struct store_model *m = calloc(1, sizeof *m);
    if (!m)
        rc = bw_errf(err, BW_ENOMEM, "out of memory");
    else if ((rc = store__build_model(st, &found, &man, m, err)))
        store_model_free(m);
    else
        *out = m;
    store__manifest_fini(&man);
    return rc;
}

/* ---- listing --------------------------------------------------------------------------- */

/* Calls FN(ud, path, parts) for each file at depth 4 under manifests/ (host/ns/model/tag),
 * hidden entries skipped. */
typedef int (*walk_fn)(void *ud, const char *path, const char *const parts[4]);

static int walk_level(const char *dir, int depth, const char *parts[4], walk_fn fn, void *ud)
{
    DIR *d = opendir(dir);
    if (!d)
        return BW_OK; /* vanished or unreadable: nothing to list */
    struct dirent *e;
    int rc = BW_OK;
    while (rc == BW_OK && (e = readdir(d))) {
        char path[PATH_MAX];
        struct stat sb;
        if (is_hidden(e->d_name) || snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            stat(path, &sb))
            continue;
        parts[depth] = e->d_name;
        if (depth < 3 && S_ISDIR(sb.st_mode))
            rc = walk_level(path, depth + 1, parts, fn, ud);
        else if (depth == 3 && S_ISREG(sb.st_mode))
            rc = fn(ud, path, parts);
    }
    closedir(d);
    return rc;
}

static int walk_manifests(struct store *st, walk_fn fn, void *ud)
{
    const char *parts[4] = {0};
    return walk_level(st->manifests, 0, parts, fn, ud);
}

struct list_ctx {
    struct store *st;
    struct store_list *l;
    size_t cap;
};

static int list_one(void *ud, const char *path, const char *const parts[4])
{
    struct list_ctx *c = ud;
    struct names_ref ref;
    struct store__manifest man;
    struct bw_err e;
    if (names_from_parts(parts[0], parts[1], parts[2], parts[3], &ref, &e)) {
        LOG(LOG_WARN, "store", "skipping manifest %s: %s", path, e.msg);
        return BW_OK;
    }
    int rc = store__manifest_read(path, &man, NULL, NULL, &e);
    if (rc == BW_ENOMEM)
        return rc;
    if (rc) {
        LOG(LOG_WARN, "store", "skipping manifest %s: %s", path, e.msg);
        return BW_OK;
    }
    if (c->l->n_items == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct store_entry *items = realloc(c->l->items, cap * sizeof *items);
        if (!items) {
            store__manifest_fini(&man);
            return BW_ENOMEM;
        }
        c->l->items = items;
        c->cap = cap;
    }
    struct store_entry *it = &c->l->items[c->l->n_items];
    memset(it, 0, sizeof *it);
    names_full(&ref, it->name);
    names_display(&ref, it->display);
    memcpy(it->digest, man.hex, sizeof it->digest);
    it->modified_ns = man.mtime_ns;
    it->size = store__manifest_size(&man);
    rc = read_details(c->st, &man, &it->details);
    store__manifest_fini(&man);
    if (rc == BW_OK)
        c->l->n_items++;
    return rc;
}

static int newest_first(const void *a, const void *b)
{
    const struct store_entry *x = a, *y = b;
    if (x->modified_ns != y->modified_ns)
        return x->modified_ns < y->modified_ns ? 1 : -1;
    return strcmp(x->name, y->name);
}

int store_list(struct store *st, struct store_list *out, struct bw_err *err)
{
    struct store_list l = {0};
    struct list_ctx c = {.st = st, .l = &l};
    int rc = walk_manifests(st, list_one, &c);
    if (rc) {
        store_list_fini(&l);
        return bw_errf(err, rc, "out of memory listing models");
    }
    if (l.n_items)
        qsort(l.items, l.n_items, sizeof *l.items, newest_first);
    *out = l;
    return BW_OK;
}

void store_list_fini(struct store_list *l)
{
    for (size_t i = 0; i < l->n_items; i++)
        store__details_fini(&l->items[i].details);
    free(l->items);
    l->items = NULL;
    l->n_items = 0;
}

/* ---- pruning (st->lock held) ----------------------------------------------------------- */

int store__hexset_add(struct store__hexset *s, const char *hex)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->hex[i], hex))
            return BW_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        void *p = realloc(s->hex, cap * sizeof *s->hex);
        if (!p)
            return BW_ENOMEM;
        s->hex = p;
        s->cap = cap;
    }
    memcpy(s->hex[s->n++], hex, NAMES_HEX_LEN + 1);
    return BW_OK;
}

static bool hexset_has(const struct store__hexset *s, const char *hex)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->hex[i], hex))
            return true;
    return false;
}

/* Every digest a manifest names, config included. */
int store__hexset_add_manifest(struct store__hexset *s, const struct store__manifest *m)
{
    int rc = m->config.hex[0] ? store__hexset_add(s, m->config.hex) : BW_OK;
    for (size_t i = 0; rc == BW_OK && i < m->n_layers; i++)
        rc = store__hexset_add(s, m->layers[i].hex);
    return rc;
}

/* Every digest named by any manifest, at any depth (a manifest we cannot list, say a
 * layout from a newer Ollama, still protects its blobs). -1 when one cannot be read. */
static int collect_refs(const char *dir, int depth, struct store__hexset *refs)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? BW_OK : BW_EIO;
    struct dirent *e;
    int rc = BW_OK;
    while (rc == BW_OK && (e = readdir(d))) {
        char path[PATH_MAX];
        struct stat sb;
        if (is_hidden(e->d_name) || snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            lstat(path, &sb))
            continue;
        if (S_ISDIR(sb.st_mode) && depth < 8) {
            rc = collect_refs(path, depth + 1, refs);
        } else if (S_ISREG(sb.st_mode)) {
            struct store__manifest m;
            struct bw_err e2;
            if ((rc = store__manifest_read(path, &m, NULL, NULL, &e2))) {
                LOG(LOG_WARN, "store", "not pruning blobs: manifest %s: %s", path, e2.msg);
                break;
            }
            rc = store__hexset_add_manifest(refs, &m);
            store__manifest_fini(&m);
        }
    }
    closedir(d);
    return rc;
}

/* Remove the blobs in CANDS that no manifest names. Best effort: failures only log. */
void store__prune(struct store *st, const struct store__hexset *cands)
{
    struct store__hexset refs = {0};
    if (cands->n && collect_refs(st->manifests, 0, &refs) == BW_OK) {
        for (size_t i = 0; i < cands->n; i++) {
            char path[PATH_MAX];
            if (hexset_has(&refs, cands->hex[i]))
                continue;
            store__blob_path_hex(st, cands->hex[i], path);
            if (unlink(path) == 0)
                LOG(LOG_DEBUG, "store", "removed unused blob sha256:%s", cands->hex[i]);
            else if (errno != ENOENT)
                LOG(LOG_WARN, "store", "cannot remove %s: %s", path, strerror(errno));
        }
    }
    free(refs.hex);
}

/* Remove the empty directories from manifests/<host>/<ns>/<model> upwards. */
static void remove_empty_dirs(struct store *st, const char *manifest_file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", manifest_file);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        *slash = '\0';
        if (strlen(dir) <= strlen(st->manifests) || rmdir(dir))
            return;
    }
}

/* Write manifest TEXT at REF's path and prune what the manifest it replaces named. */
int store__replace_manifest(struct store *st, const struct names_ref *ref, const char *text, size_t len,
                            struct bw_err *err)
{
    char path[PATH_MAX], dir[PATH_MAX];
    struct store__manifest old;
    struct store__hexset cands = {0};
    manifest_path(st, ref, path);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';

    bool had_old = store__manifest_read(path, &old, NULL, NULL, NULL) == BW_OK;
    if (had_old) {
        int rc = store__hexset_add_manifest(&cands, &old);
        store__manifest_fini(&old);
        if (rc) {
            free(cands.hex);
            return bw_errf(err, BW_ENOMEM, "out of memory");
        }
    }
    int rc = mkdirs(dir) ? bw_errf(err, BW_EIO, "cannot create %.150s: %s", dir, strerror(errno))
                         : store__write_atomic(dir, path, text, len, err);
    if (rc == BW_OK)
        store__prune(st, &cands);
    atomic_fetch_add(&st->generation, 1); /* on failure too: a half-done write may show */
    free(cands.hex);
    return rc;
}

uint64_t store_generation(struct store *st) { return atomic_load(&st->generation); }

/* ---- copy and delete ------------------------------------------------------------------- */

int store_copy(struct store *st, const char *src, const char *dst, struct bw_err *err)
{
    struct names_ref dref, found;
    struct store__manifest man;
    char path[PATH_MAX], dpath[PATH_MAX], *bytes = NULL;
    size_t len = 0;
    int rc = names_parse(dst, &dref, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = store__load(st, src, &found, path, &man, err)) == BW_OK) {
        store__manifest_fini(&man);
        manifest_path(st, &dref, dpath);
        /* Re-read the bytes: the copy must be byte-identical (same digest, as in Ollama). */
        if ((rc = store__read_small(path, &bytes, &len, err)) == BW_OK && strcmp(path, dpath))
            rc = store__replace_manifest(st, &dref, bytes, len, err);
    }
    pthread_mutex_unlock(&st->lock);
    free(bytes);
    if (rc == BW_OK)
        LOG(LOG_INFO, "store", "copied %s to %s", src, dst);
    return rc;
}

int store_delete(struct store *st, const char *name, struct bw_err *err)
{
    struct names_ref found;
    struct store__manifest man;
    struct store__hexset cands = {0};
    char path[PATH_MAX];
    struct names_ref ref;
    int rc = names_parse(name, &ref, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = find_manifest(st, &ref, name, path, &found, err)) == BW_OK) {
        struct bw_err why;
        /* A corrupt manifest can still be deleted; only its blobs stay (we cannot know them). */
        if (store__manifest_read(path, &man, NULL, NULL, &why) == BW_OK) {
            rc = store__hexset_add_manifest(&cands, &man) ? bw_errf(err, BW_ENOMEM, "out of memory") : BW_OK;
            store__manifest_fini(&man);
        } else {
            LOG(LOG_WARN, "store", "deleting %s: %s", path, why.msg);
        }
    }
    if (rc == BW_OK && unlink(path))
        rc = bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot remove model '%.150s': %s", name,
                     strerror(errno));
    if (rc == BW_OK) {
        remove_empty_dirs(st, path);
        store__prune(st, &cands);
        atomic_fetch_add(&st->generation, 1);
    }
    pthread_mutex_unlock(&st->lock);
    free(cands.hex);
    if (rc == BW_OK)
        LOG(LOG_INFO, "store", "deleted %s", name);
    return rc;
}
