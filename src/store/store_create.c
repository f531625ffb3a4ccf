/* store_create.c -- store_create(): a Modelfile's worth of layers into blobs, then the
 * config, then the manifest (see store.h). */
#define _GNU_SOURCE
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/gguf_info.h"
#include "util/log.h"

struct create_ctx {
    struct store *st;
    const struct store_create *req;
    struct store__layer *layers;
    size_t n_layers, cap;
    struct store__hexset created; /* blobs this call added: pruned again on failure */
};

static void progress(const struct create_ctx *c, const char *status, uint64_t done, uint64_t total)
{
    if (c->req->progress)
        c->req->progress(c->req->progress_ud, status, done, total);
}

static void report_layer(struct create_ctx *c, const char *hex, bool created)
{
    char status[96];
    snprintf(status, sizeof status, "%s sha256:%s", created ? "creating new layer" : "using existing layer", hex);
    progress(c, status, 0, 0);
}

static int add_layer(struct create_ctx *c, const char *media, const char *hex, uint64_t size)
{
    if (c->n_layers == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        struct store__layer *p = realloc(c->layers, cap * sizeof *p);
        if (!p)
            return BW_ENOMEM;
        c->layers = p;
        c->cap = cap;
    }
    struct store__layer *l = &c->layers[c->n_layers++];
    snprintf(l->media, sizeof l->media, "%s", media);
    memcpy(l->hex, hex, NAMES_HEX_LEN + 1);
    l->size = size;
    return BW_OK;
}

/* Store TEXT as a blob and record the layer (or config when MEDIA is NULL: into *cfg). */
static int put_text(struct create_ctx *c, const char *media, const char *text, struct store__layer *cfg,
                    struct bw_err *err)
{
    char hex[NAMES_HEX_LEN + 1];
    bool created;
    size_t len = strlen(text);
    int rc = store__put_bytes(c->st, text, len, hex, &created, err);
    if (rc)
        return rc;
    if (created && store__hexset_add(&c->created, hex))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    if (!media) {
        snprintf(cfg->media, sizeof cfg->media, "%s", STORE_MEDIA_CONFIG);
        memcpy(cfg->hex, hex, sizeof hex);
        cfg->size = len;
        return BW_OK;
    }
    report_layer(c, hex, created);
    return add_layer(c, media, hex, len) ? bw_errf(err, BW_ENOMEM, "out of memory") : BW_OK;
}

/* Copy the GGUF at PATH into blobs/ while hashing it. */
static int copy_model(struct create_ctx *c, const char *path, char *hex, uint64_t *size, struct bw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bw_errf(err, errno == ENOENT ? BW_ENOTFOUND : BW_EIO, "cannot open %.180s: %s", path, strerror(errno));
    struct stat sb;
    char *buf = malloc(STORE__CHUNK);
    struct store_blob_writer *w = NULL;
    int rc = !buf ? bw_errf(err, BW_ENOMEM, "out of memory")
             : fstat(fd, &sb) ? bw_errf(err, BW_EIO, "cannot stat %.180s: %s", path, strerror(errno))
             : store_blob_begin(c->st, c->req->expected_digest, (uint64_t)sb.st_size, c->req->progress,
                                c->req->progress_ud, &w, err);
    if (rc == BW_OK)
        progress(c, "copying model", 0, (uint64_t)sb.st_size);
    uint64_t n_bytes = 0;
    while (rc == BW_OK) {
        ssize_t n = read(fd, buf, STORE__CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        rc = n < 0 ? bw_errf(err, BW_EIO, "cannot read %.180s: %s", path, strerror(errno))
                   : store_blob_write(w, buf, (size_t)n, err);
        if (rc)
            store_blob_abort(w);
        n_bytes += n > 0 ? (uint64_t)n : 0;
    }
    free(buf);
    close(fd);
    bool created;
    if (rc || (rc = store__blob_commit(w, hex, &created, err)))
        return rc;
    *size = n_bytes; /* what was hashed, even if the file changed after the stat */
    if (created && store__hexset_add(&c->created, hex))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    report_layer(c, hex, created);
    return BW_OK;
}

/* Is this a text layer the request replaces? */
static bool overridden(const struct store_create *req, const char *media)
{
    return (req->system && !strcmp(media, STORE_MEDIA_SYSTEM)) ||
           (req->template && !strcmp(media, STORE_MEDIA_TEMPLATE)) ||
           (req->license && !strcmp(media, STORE_MEDIA_LICENSE)) ||
           (req->messages && !strcmp(media, STORE_MEDIA_MESSAGES)) ||
           (req->params && !strcmp(media, STORE_MEDIA_PARAMS));
}

static int create_layers(struct create_ctx *c, struct gguf_info **info, struct bw_err *err)
{
    const struct store_create *req = c->req;
    char hex[NAMES_HEX_LEN + 1], path[PATH_MAX];
    uint64_t size = 0;
    char *params = NULL;
    struct store_model *base = NULL;
    struct store__manifest base_man = {0};
    int rc;

    /* The weights, checked before anything is copied. */
    if (req->from_path) {
        progress(c, "parsing GGUF", 0, 0);
        if ((rc = gguf_info_read(req->from_path, info, err)))
            return rc;
        if ((rc = copy_model(c, req->from_path, hex, &size, err)))
            return rc;
        if ((rc = add_layer(c, STORE_MEDIA_MODEL, hex, size)))
            return bw_errf(err, rc, "out of memory");
    } else if (req->from_digest) {
        struct stat sb;
        if ((rc = names_digest_parse(req->from_digest, hex, err)))
            return rc;
        store__blob_path_hex(c->st, hex, path);
        if (stat(path, &sb) || !S_ISREG(sb.st_mode))
            return bw_errf(err, BW_ENOTFOUND, "blob sha256:%s not found: upload it first", hex);
        progress(c, "parsing GGUF", 0, 0);
        if ((rc = gguf_info_read(path, info, err)))
            return rc;
        report_layer(c, hex, false);
        if ((rc = add_layer(c, STORE_MEDIA_MODEL, hex, (uint64_t)sb.st_size)))
            return bw_errf(err, rc, "out of memory");
    } else {
        /* From a model: its layers, minus the ones this request replaces. */
        struct names_ref found;
        if ((rc = store__load(c->st, req->from_model, &found, path, &base_man, err)))
            return rc;
        if (!(base = calloc(1, sizeof *base))) {
            rc = bw_errf(err, BW_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = store__build_model(c->st, &found, &base_man, base, err)) || (rc = gguf_info_read(base->model_path, info, err)))
            goto out;
        bool have_model = false;
        for (size_t i = 0; i < base_man.n_layers; i++) {
            const struct store__layer *l = &base_man.layers[i];
            bool model = !strcmp(l->media, STORE_MEDIA_MODEL);
            if ((model && have_model) || overridden(req, l->media))
                continue;
            have_model |= model;
            report_layer(c, l->hex, false);
            if (add_layer(c, l->media, l->hex, l->size)) {
                rc = bw_errf(err, BW_ENOMEM, "out of memory");
                goto out;
            }
        }
    }

    /* The Modelfile's layers, in Ollama's order. JSON is checked and normalised so equal
     * parameters give equal blobs. */
    if (req->params &&
        (rc = store__json_normalise("parameters", req->params, false, base ? base->params : NULL, &params, err)))
        goto out;
    if ((req->template && (rc = put_text(c, STORE_MEDIA_TEMPLATE, req->template, NULL, err))) ||
        (req->system && (rc = put_text(c, STORE_MEDIA_SYSTEM, req->system, NULL, err))) ||
        (req->license && (rc = put_text(c, STORE_MEDIA_LICENSE, req->license, NULL, err))) ||
        (params && (rc = put_text(c, STORE_MEDIA_PARAMS, params, NULL, err))))
        goto out;
    if (req->messages) {
        char *msgs = NULL;
        if ((rc = store__json_normalise("messages", req->messages, true, NULL, &msgs, err)) == BW_OK)
            rc = put_text(c, STORE_MEDIA_MESSAGES, msgs, NULL, err);
        free(msgs);
    }
out:
    free(params);
    store_model_free(base);
    store__manifest_fini(&base_man);
    return rc;
}

int store_create(struct store *st, const char *name, const struct store_create *req, struct bw_err *err)
{
    struct names_ref ref;
    int rc = names_parse(name, &ref, err);
    if (rc)
        return rc;
    if (!!req->from_path + !!req->from_digest + !!req->from_model != 1)
        return bw_errf(err, BW_EINVAL, "create needs exactly one source: a GGUF file, a blob digest or a model");
    /* Check the JSON before copying gigabytes. */
    char *scratch = NULL;
    if (req->params && (rc = store__json_normalise("parameters", req->params, false, NULL, &scratch, err)))
        return rc;
    free(scratch);
    scratch = NULL;
    if (req->messages && (rc = store__json_normalise("messages", req->messages, true, NULL, &scratch, err)))
        return rc;
    free(scratch);

    struct create_ctx c = {.st = st, .req = req};
    struct gguf_info *info = NULL;
    struct store__manifest man = {0};
    char *config = NULL, *text = NULL;
    bool locked = false;

    if ((rc = create_layers(&c, &info, err)))
        goto out;

    /* The config blob describes the weights for /api/tags without opening the GGUF. */
    config = store__config_dump(info->arch, info->param_size, info->quant, c.layers, c.n_layers);
    if (!config) {
        rc = bw_errf(err, BW_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = put_text(&c, NULL, config, &man.config, err)))
        goto out;
    man.layers = c.layers;
    man.n_layers = c.n_layers;
    if (!(text = store__manifest_dump(&man))) {
        rc = bw_errf(err, BW_ENOMEM, "out of memory");
        goto out;
    }

    progress(&c, "writing manifest", 0, 0);
    pthread_mutex_lock(&st->lock);
    locked = true;
    /* A delete running meanwhile may have pruned a blob we reuse: never write a manifest
     * that names a missing blob. */
    for (size_t i = 0; i <= man.n_layers; i++) {
        const char *hex = i < man.n_layers ? man.layers[i].hex : man.config.hex;
        char blob[PATH_MAX];
        struct stat sb;
        store__blob_path_hex(st, hex, blob);
        if (stat(blob, &sb)) {
            rc = bw_errf(err, BW_EBUSY, "blob sha256:%s was removed while creating the model: try again", hex);
            goto out;
        }
    }
    if ((rc = store__replace_manifest(st, &ref, text, strlen(text), err)) == BW_OK) {
        char full[NAMES_FULL_MAX + 1];
        names_full(&ref, full);
        LOG(LOG_INFO, "store", "created %s model=sha256:%s size=%llu", full, c.layers[0].hex,
            (unsigned long long)store__manifest_size(&man));
    }
out:
    if (rc) {
        if (!locked)
            pthread_mutex_lock(&st->lock);
        locked = true;
        store__prune(st, &c.created);
    }
    if (locked)
        pthread_mutex_unlock(&st->lock);
    free(text);
    free(config);
    free(c.layers);
    free(c.created.hex);
    gguf_info_free(info);
    return rc;
}
