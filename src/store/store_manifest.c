/* store_manifest.c -- manifest and config JSON <-> plain structs (see store_int.h).
 * jansson values never leave this file except as text. */
#include "store/store_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/sha256.h"

#if defined(__x86_64__)
#define GOARCH "amd64"
#elif defined(__aarch64__)
#define GOARCH "arm64"
#else
#define GOARCH "unknown"
#endif

static int parse_layer(json_t *o, struct store__layer *l, struct bw_err *err)
{
    json_t *media = json_object_get(o, "mediaType");
    json_t *digest = json_object_get(o, "digest");
    json_t *size = json_object_get(o, "size");
    if (!json_is_object(o) || !json_is_string(media) || !json_is_string(digest))
        return bw_errf(err, BW_EIO, "corrupt manifest: a layer lacks mediaType or digest");
    if (names_digest_parse(json_string_value(digest), l->hex, err) != BW_OK)
        return bw_errf(err, BW_EIO, "corrupt manifest: invalid digest '%.80s'", json_string_value(digest));
    snprintf(l->media, sizeof l->media, "%s", json_string_value(media));
    l->size = json_is_integer(size) && json_integer_value(size) > 0 ? (uint64_t)json_integer_value(size) : 0;
    return BW_OK;
}

int store__manifest_parse(const char *text, size_t len, struct store__manifest *m, struct bw_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root)
        return bw_errf(err, BW_EIO, "corrupt manifest: line %d column %d: %s", je.line, je.column, je.text);

    struct store__manifest r = {0};
    int rc = BW_OK;
    json_t *config = json_object_get(root, "config");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root) || !json_is_array(layers)) {
        rc = bw_errf(err, BW_EIO, "corrupt manifest: no layers");
        goto out;
    }
    if (config && (rc = parse_layer(config, &r.config, err)))
        goto out;
    if (json_array_size(layers) && !(r.layers = calloc(json_array_size(layers), sizeof *r.layers))) {
        rc = bw_errf(err, BW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(layers); i++) {
        if ((rc = parse_layer(json_array_get(layers, i), &r.layers[i], err)))
            goto out;
        r.n_layers++;
    }
    *m = r;
    r.layers = NULL;
out:
    free(r.layers);
    json_decref(root);
    return rc;
}

int store__manifest_read(const char *path, struct store__manifest *m, char **bytes, size_t *n_bytes,
                         struct bw_err *err)
{
    char *text;
    size_t len;
    struct stat st;
    int rc = store__read_small(path, &text, &len, err);
    if (rc)
        return rc;
    struct store__manifest r;
    if ((rc = store__manifest_parse(text, len, &r, err))) {
        free(text);
        return rc;
    }
    sha256_hex_of(text, len, r.hex);
    r.mtime_ns = stat(path, &st) == 0 ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec : 0;
    if (bytes) {
        *bytes = text;
        *n_bytes = len;
    } else {
        free(text);
    }
    *m = r;
    return BW_OK;
}

void store__manifest_fini(struct store__manifest *m)
{
    free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
}

uint64_t store__manifest_size(const struct store__manifest *m)
{
    uint64_t size = m->config.size;
    for (size_t i = 0; i < m->n_layers; i++)
        size += m->layers[i].size;
    return size;
}

static json_t *layer_json(const struct store__layer *l)
{
    char digest[8 + NAMES_HEX_LEN];
    snprintf(digest, sizeof digest, "sha256:%s", l->hex);
    return json_pack("{s:s, s:s, s:I}", "mediaType", l->media, "digest", digest, "size", (json_int_t)l->size);
}

/* Dump ROOT (stolen) as compact text plus a newline, as Go's json.Encoder writes it. */
static char *dump_line(json_t *root, size_t flags)
{
    char *text = root ? json_dumps(root, JSON_COMPACT | flags) : NULL;
    json_decref(root);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

char *store__manifest_dump(const struct store__manifest *m)
{
    json_t *layers = json_array();
    for (size_t i = 0; layers && i < m->n_layers; i++)
        if (json_array_append_new(layers, layer_json(&m->layers[i]))) {
            json_decref(layers);
            return NULL;
        }
    /* "o" steals the references; on failure json_pack releases them. */
    json_t *root = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", STORE_MEDIA_MANIFEST,
                             "config", layer_json(&m->config), "layers", layers);
    return dump_line(root, 0);
}

char *store__config_dump(const char *family, const char *param_size, const char *quant,
                         const struct store__layer *layers, size_t n_layers)
{
    json_t *diff_ids = json_array();
    for (size_t i = 0; diff_ids && i < n_layers; i++) {
        char digest[8 + NAMES_HEX_LEN];
        snprintf(digest, sizeof digest, "sha256:%s", layers[i].hex);
        if (json_array_append_new(diff_ids, json_string(digest))) {
            json_decref(diff_ids);
            return NULL;
        }
    }
    /* Ollama's ConfigV2 field order. */
    json_t *root = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s, s:s, s:{s:s, s:o}}",
                             "model_format", "gguf", "model_family", family, "model_families", family,
                             "model_type", param_size, "file_type", quant, "architecture", GOARCH, "os", "linux",
                             "rootfs", "type", "layers", "diff_ids", diff_ids);
    return dump_line(root, 0);
}

static int dup_field(json_t *root, const char *key, char **out)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v) || !*json_string_value(v))
        return BW_OK;
    return (*out = strdup(json_string_value(v))) ? BW_OK : BW_ENOMEM;
}

int store__config_parse(const char *text, size_t len, struct store_details *d)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return BW_OK;
    }
    struct store_details r = {0};
    int rc = BW_OK;
    if ((rc = dup_field(root, "model_format", &r.format)) || (rc = dup_field(root, "model_family", &r.family)) ||
        (rc = dup_field(root, "model_type", &r.parameter_size)) ||
        (rc = dup_field(root, "file_type", &r.quantization_level)))
        store__details_fini(&r);
    else
        *d = r;
    json_decref(root);
    return rc;
}

void store__details_fini(struct store_details *d)
{
    free(d->format);
    free(d->family);
    free(d->parameter_size);
    free(d->quantization_level);
    memset(d, 0, sizeof *d);
}

int store__json_normalise(const char *what, const char *text, bool want_array, const char *base, char **out,
                          struct bw_err *err)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        return bw_errf(err, BW_EINVAL, "invalid %s JSON at line %d column %d: %s", what, je.line, je.column, je.text);
    if (want_array ? !json_is_array(v) : !json_is_object(v)) {
        json_decref(v);
        return bw_errf(err, BW_EINVAL, "%s must be a JSON %s", what, want_array ? "array" : "object");
    }
    if (base) {
        /* The inherited object, with the new keys on top (Ollama merges parameters so). */
        json_t *b = json_loads(base, 0, NULL);
        if (json_is_object(b) && json_object_update(b, v) == 0) {
            json_decref(v);
            v = b;
        } else {
            json_decref(b);
        }
    }
    /* 15 significant digits print 0.9 as 0.9 (17 give 0.90000000000000002); keep 17 only
     * when 15 would change a value. */
    char *short_text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_t *back = short_text ? json_loads(short_text, 0, NULL) : NULL;
    size_t precision = back && json_equal(back, v) ? JSON_REAL_PRECISION(15) : 0;
    json_decref(back);
    free(short_text);
    *out = dump_line(v, JSON_SORT_KEYS | precision);
    if (!*out)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    /* Layers hold the JSON without the trailing newline. */
    (*out)[strlen(*out) - 1] = '\0';
    return BW_OK;
}
