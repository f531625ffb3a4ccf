/* store_put.c -- models that arrive whole from elsewhere (a registry pull): their manifest
 * read as a list of layers, and written byte for byte once every blob it names is in place
 * (see store.h, "pulled models"). */
#define _GNU_SOURCE
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

const char *store_blobs_dir(const struct store *st)
{
    return st->blobs;
}

static void copy_layer(struct store_layer *dst, const struct store__layer *src)
{
    snprintf(dst->media, sizeof dst->media, "%s", src->media);
    snprintf(dst->digest, sizeof dst->digest, "sha256:%s", src->hex);
    dst->size = src->size;
}

int store_manifest_layers(const char *text, size_t len, struct store_layer **out, size_t *n_out,
                          struct bw_err *err)
{
    struct store__manifest m;
    int rc = store__manifest_parse(text, len, &m, err);
    if (rc)
        return rc;
    size_t n = m.n_layers + (m.config.hex[0] ? 1 : 0);
    struct store_layer *l = calloc(n ? n : 1, sizeof *l);
    if (!l) {
        store__manifest_fini(&m);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < m.n_layers; i++)
        copy_layer(&l[k++], &m.layers[i]);
    if (m.config.hex[0])
        copy_layer(&l[k++], &m.config);
    store__manifest_fini(&m);
    *out = l;
    *n_out = n;
    return BW_OK;
}

/* Is the blob HEX there with SIZE bytes (SIZE 0: any)? BW_OK, BW_EBUSY (absent), BW_EIO. */
static int check_blob(struct store *st, const struct store__layer *l, struct bw_err *err)
{
    char path[PATH_MAX];
    struct stat sb;
    store__blob_path_hex(st, l->hex, path);
    if (stat(path, &sb) || !S_ISREG(sb.st_mode))
        return bw_errf(err, BW_EBUSY, "blob sha256:%s is not in the store (removed meanwhile?): pull again", l->hex);
    if (l->size && (uint64_t)sb.st_size != l->size)
        return bw_errf(err, BW_EIO, "blob sha256:%s has %lld bytes, the manifest says %llu", l->hex,
                       (long long)sb.st_size, (unsigned long long)l->size);
    return BW_OK;
}

int store_manifest_put(struct store *st, const char *name, const char *text, size_t len, struct bw_err *err)
{
    struct names_ref ref;
    struct store__manifest m;
    int rc = names_parse(name, &ref, err);
    if (rc || (rc = store__manifest_parse(text, len, &m, err)))
        return rc;
    /* Under the lock, so no delete prunes a blob between the check and the write. */
    pthread_mutex_lock(&st->lock);
    if (m.config.hex[0])
        rc = check_blob(st, &m.config, err);
    for (size_t i = 0; rc == BW_OK && i < m.n_layers; i++)
        rc = check_blob(st, &m.layers[i], err);
    if (rc == BW_OK)
        rc = store__replace_manifest(st, &ref, text, len, err);
    pthread_mutex_unlock(&st->lock);
    store__manifest_fini(&m);
    if (rc == BW_OK)
        LOG(LOG_INFO, "store", "wrote manifest of %s", name);
    return rc;
}
