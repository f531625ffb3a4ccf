/* api_models.c -- model management: /api/tags, /api/show, /api/ps, /api/copy, /api/delete
 * (Ollama's shapes, spec/api.md) and /v1/models, /v1/models/:id. Store reads and the
 * scheduler's view; no generation. */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine.h"
#include "kvcache/kvdisk.h"
#include "server/serve_config.h"
#include "template/caps.h"
#include "util/log.h"


/* ---- model management -------------------------------------------------------------------------- */

static json_t *details_json(const struct store_details *d)
{
    json_t *families = json_array();
    if (d->family)
        json_array_append_new(families, json_string(d->family));
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "parent_model", "", "format", d->format ? d->format : "gguf",
                     "family", d->family ? d->family : "", "families", families, "parameter_size",
                     d->parameter_size ? d->parameter_size : "", "quantization_level",
                     d->quantization_level ? d->quantization_level : "");
}

/* /api/tags answers from a cache of its whole body: listing reads every manifest and config
 * blob, ~20 file reads for 20 models, and clients (UIs, editors) poll it. The body is rebuilt
 * when the store's generation changes (any manifest written or deleted by this process:
 * create, copy, pull, delete) and at least every TAGS_MAX_AGE_NS, for changes made by another
 * process sharing the store. One store per process, so one cache, keyed by the store anyway. */
#define TAGS_MAX_AGE_NS (5 * 1000000000LL)

static struct {
    pthread_mutex_t mu;
    const struct store *store;
    uint64_t generation;
    int64_t built_ns;
    char *body; /* NULL: none */
    size_t len;
} tags_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The listing as /api/tags' JSON text (malloc'd), or NULL with err. */
static char *tags_body(struct api *a, struct bw_err *err)
{
    struct store_list l = {0};
    if (store_list(a->cfg.store, &l, err) != BW_OK)
        return NULL;
    json_t *models = json_array();
    for (size_t i = 0; i < l.n_items; i++) {
        const struct store_entry *e = &l.items[i];
        char ts[64];
        api__time_rfc3339(e->modified_ns, ts, sizeof ts);
        json_array_append_new(models, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", e->display, "model",
                                                e->display, "modified_at", ts, "size", (json_int_t)e->size, "digest",
                                                e->digest, "details", details_json(&e->details)));
    }
    store_list_fini(&l);
    json_t *doc = json_pack("{s:o}", "models", models);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        bw_errf(err, BW_ENOMEM, "out of memory listing models");
    return text;
}

void ollama_tags(struct api *a, struct http_request *req)
{
    struct bw_err err;
    pthread_mutex_lock(&tags_cache.mu);
    /* Read the generation before listing: a write during the listing makes the next
     * request list again rather than keep a stale body. */
    uint64_t gen = store_generation(a->cfg.store);
    int64_t now = clock_mono_ns();
    if (!tags_cache.body || tags_cache.store != a->cfg.store || tags_cache.generation != gen ||
        now - tags_cache.built_ns >= TAGS_MAX_AGE_NS) {
        char *body = tags_body(a, &err);
        if (!body) {
            pthread_mutex_unlock(&tags_cache.mu);
            api__reply_error(req, 500, "%s", err.msg);
            metrics_request(&a->metrics, "/api/tags", 500);
            return;
        }
        free(tags_cache.body);
        tags_cache.body = body;
        tags_cache.len = strlen(body);
        tags_cache.store = a->cfg.store;
        tags_cache.generation = gen;
        tags_cache.built_ns = now;
    }
    http_respond(req, 200, "application/json; charset=utf-8", tags_cache.body, tags_cache.len, NULL); /* copies */
    pthread_mutex_unlock(&tags_cache.mu);
    metrics_request(&a->metrics, "/api/tags", 200);
}

/* "stop "<|im_end|>"" lines, as Ollama's show prints parameters. */
static void parameters_text(const char *params, struct strbuf *out)
{
    json_t *doc = params ? json_loads(params, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
            /* 15 significant digits: 0.3 prints as 0.3, not the double's 0.29999999999999999 */
            char *val = json_dumps(x, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            char line[1024];
            int len = snprintf(line, sizeof line, "%-30s %s\n", key, val ? val : "");
            strbuf_add(out, line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1));
            free(val);
        }
    }
    json_decref(doc);
}

static json_t *model_info_json(const struct gguf_info *info)
{
    json_t *o = json_object();
    for (size_t i = 0; i < info->n_kvs; i++) {
        const struct gguf_info_kv *kv = &info->kvs[i];
        json_t *v;
        switch (kv->kind) {
        case GGUF_INFO_STRING:
            /* The template is reported on its own; keep model_info small like Ollama's. */
            v = json_string(kv->str ? kv->str : "");
            break;
        case GGUF_INFO_UINT: v = json_integer((json_int_t)kv->u); break;
        case GGUF_INFO_INT: v = json_integer((json_int_t)kv->i); break;
        case GGUF_INFO_FLOAT: v = json_real(kv->f); break;
        case GGUF_INFO_BOOL: v = json_boolean(kv->b); break;
        default:
            if (kv->nums) {
                v = json_array();
                for (uint64_t k = 0; k < kv->n_elems; k++)
                    json_array_append_new(v, json_real(kv->nums[k]));
            } else {
                v = json_null(); /* large arrays (the vocabulary) are omitted, as Ollama does without verbose */
            }
        }
        json_object_set_new(o, kv->key, v);
    }
    return o;
}

void ollama_show(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
    struct api_model m;
    struct bw_err err;
    int status = !body ? 400 : !name ? (snprintf(msg, sizeof msg, "model is required"), 400) : 0;
    if (!status) {
        int rc = api__model_open(a, name, &m, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, "/api/show", status);
        json_decref(body);
        return;
    }
    struct strbuf params = {0}, modelfile = {0};
    parameters_text(m.sm->params, &params);
    /* `template` is the template that renders, and `template_source` says where it comes
     * from ("modelfile": a Jinja TEMPLATE layer, "gguf": tokenizer.chat_template, "none").
     * A TEMPLATE layer in Go syntax (pulled from Ollama's registry) stays in the store and is
     * shown as it is under `modelfile_template`, with a note, and in the Modelfile, but
     * `template` shows the GGUF's Jinja: `show --template` answers "what will the model be
     * fed?", which is what an Ollama user asks it, and the Go text would be a false answer. */
    const char *tmpl;
    enum api_template_source src = api__template(&m, &tmpl);
    bool go_layer = m.sm->template && *m.sm->template && template_is_go(m.sm->template);
    char line[1400];
    int n = snprintf(line, sizeof line, "# Modelfile generated by \"bellows show\"\nFROM %s\n", m.sm->model_path);
    strbuf_add(&modelfile, line, (size_t)n);
    if (m.sm->template && *m.sm->template) {
        if (go_layer) {
            static const char note[] = "# TEMPLATE is an Ollama Go template: Bellows renders the GGUF's Jinja "
                                       "chat template instead\n";
            strbuf_add(&modelfile, note, sizeof note - 1);
        }
        strbuf_add(&modelfile, "TEMPLATE \"\"\"", 12);
        strbuf_add(&modelfile, m.sm->template, strlen(m.sm->template));
        strbuf_add(&modelfile, "\"\"\"\n", 4);
    }
    if (m.sm->system) {
        strbuf_add(&modelfile, "SYSTEM \"\"\"", 10);
        strbuf_add(&modelfile, m.sm->system, strlen(m.sm->system));
        strbuf_add(&modelfile, "\"\"\"\n", 4);
    }
    if (params.len) {
        /* each parameters line becomes PARAMETER <line> */
        for (char *p = params.s; p && *p;) {
            char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            strbuf_add(&modelfile, "PARAMETER ", 10);
            strbuf_add(&modelfile, p, len);
            strbuf_add(&modelfile, "\n", 1);
            p = nl ? nl + 1 : NULL;
        }
    }
    /* completion or embedding from the GGUF, then what the rendering template can do, in
     * Ollama's order (tools, insert, vision, thinking). */
    json_t *caps = json_array();
    for (size_t i = 0; i < m.info->n_capabilities; i++)
        json_array_append_new(caps, json_string(m.info->capabilities[i]));
    unsigned tcaps = api__model_caps(&m);
    if (tcaps & TEMPLATE_CAP_TOOLS)
        json_array_append_new(caps, json_string("tools"));
    if (tcaps & TEMPLATE_CAP_INSERT)
        json_array_append_new(caps, json_string("insert"));
    if (tcaps & TEMPLATE_CAP_THINKING)
        json_array_append_new(caps, json_string("thinking"));
    char ts[64];
    api__time_rfc3339(m.sm->modified_ns, ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "license",
                          m.sm->license ? m.sm->license : "", "modelfile", modelfile.s ? modelfile.s : "",
                          "parameters", params.s ? params.s : "", "template", tmpl ? tmpl : "", "system",
                          m.sm->system ? m.sm->system : "", "details", details_json(&m.sm->details), "model_info",
                          model_info_json(m.info), "capabilities", caps, "modified_at", ts);
    json_object_set_new(o, "template_source", json_string(api__template_source_name(src)));
    if (go_layer) {
        json_object_set_new(o, "modelfile_template", json_string(m.sm->template));
        char note[256];
        api__go_template_note(src, note, sizeof note);
        json_object_set_new(o, "template_note", json_string(note));
    }
    json_object_set_new(o, "context_max", json_integer((json_int_t)m.info->n_ctx_train));
    api__reply_json(req, 200, o);
    metrics_request(&a->metrics, "/api/show", 200);
    strbuf_free(&params);
    strbuf_free(&modelfile);
    api__model_close(&m);
    json_decref(body);
}

void ollama_ps(struct api *a, struct http_request *req)
{
    struct sched_loaded loaded[16];
    size_t n = sched_list(a->cfg.sched, loaded, 16);
    json_t *models = json_array();
    for (size_t i = 0; i < n && i < 16; i++) {
        const struct sched_loaded *l = &loaded[i];
        struct store_model *sm = NULL;
        store_resolve(a->cfg.store, l->name, &sm, NULL);
        char ts[64];
        if (l->expires_at_unix_ns)
            api__time_rfc3339(l->expires_at_unix_ns, ts, sizeof ts);
        else
            snprintf(ts, sizeof ts, "2318-01-01T00:00:00Z"); /* Ollama's "forever" is far in the future too */
        struct store_details none = {0};
        json_t *ctx = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:i}", "pool_tokens", l->status.pool_cells,
                                "used_tokens", l->status.used_cells, "sequences", l->status.live, "cached_sequences",
                                l->status.cached, "num_parallel", l->status.n_parallel, "context_max",
                                l->status.context_max, "max_pool_tokens", (int)l->status.max_pool_cells, "kv_bytes",
                                (json_int_t)l->status.kv_bytes, "pool_growths", l->status.pool_growths);
        /* memory by kind (issue 18): what grows with the pool, what is fixed, what is host-side */
        /* kv_cache_type: BELLOWS_KV_CACHE_TYPE as the runner settled it; kv_bytes are in it */
        json_t *mem = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i}", "memory_kind", l->status.memory_kind,
                                "kv_cache_type", l->status.kv_type[0] ? l->status.kv_type : "f16",
                                "kv_bytes_per_token", (json_int_t)l->status.kv_bytes_per_cell, "swa_bytes",
                                (json_int_t)l->status.swa_bytes, "recurrent_bytes",
                                (json_int_t)l->status.recurrent_bytes, "checkpoint_bytes",
                                (json_int_t)l->status.checkpoint_bytes, "swa_bytes_per_token",
                                (json_int_t)l->status.swa_bytes_per_cell, "checkpoints", l->status.checkpoints);
        if (ctx && mem)
            json_object_update(ctx, mem);
        json_decref(mem);
        /* where its layers are (issue 16): the CPU, local GPUs, RPC servers' devices */
        json_t *devices = json_array();
        for (int d = 0; d < l->n_devices; d++) {
            json_t *dv = json_pack("{s:s, s:i}", "name", l->devices[d].name, "layers", l->devices[d].layers);
            if (dv && l->devices[d].endpoint[0])
                json_object_set_new(dv, "endpoint", json_string(l->devices[d].endpoint));
            json_array_append_new(devices, dv);
        }
        json_array_append_new(
            models, json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:i, s:o, s:i, s:i, s:o}", "name",
                              sm ? sm->display : l->name, "model", sm ? sm->display : l->name, "size",
                              (json_int_t)l->size_estimate, "digest", sm ? sm->digest : "", "details",
                              details_json(sm ? &sm->details : &none), "expires_at", ts, "size_vram", 0, "context",
                              ctx, "runner_pid", (int)l->pid, "loads", l->loads, "devices", devices));
        store_model_free(sm);
    }
    api__reply_json(req, 200, json_pack("{s:o}", "models", models));
    metrics_request(&a->metrics, "/api/ps", 200);
}

/* Answers a model-management route: {} when status is 0, the error otherwise. */
static void reply_done(struct api *a, struct http_request *req, const char *route, int status, const char *msg)
{
    if (status)
        api__reply_error(req, status, "%s", msg);
    else
        http_respond(req, 200, "application/json", "{}", 2, NULL);
    metrics_request(&a->metrics, route, status ? status : 200);
}

void ollama_copy(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *src = body ? str_field(body, "source") : NULL, *dst = body ? str_field(body, "destination") : NULL;
    struct bw_err err;
    int status = !body ? 400 : (!src || !dst) ? (snprintf(msg, sizeof msg, "source and destination are required"), 400) : 0;
    if (!status) {
        int rc = store_copy(a->cfg.store, src, dst, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    reply_done(a, req, "/api/copy", status, msg);
    json_decref(body);
}

void ollama_delete(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
    struct bw_err err;
    int status = !body ? 400 : !name ? (snprintf(msg, sizeof msg, "model is required"), 400) : 0;
    if (!status) {
        struct store_model *sm;
        char model_key[4096] = "", blob_digest[96] = "";
        if (store_resolve(a->cfg.store, name, &sm, NULL) == BW_OK) {
            sched_unload(a->cfg.sched, sm->name); /* a deleted model does not stay loaded */
            engine_kvdisk_model_key(sm->model_path, model_key, sizeof model_key);
            snprintf(blob_digest, sizeof blob_digest, "sha256:%s", sm->model_digest);
            store_model_free(sm);
        }
        int rc = store_delete(a->cfg.store, name, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
        /* Its saved KV states go with the weights: store_delete removed the blob unless
         * another name still uses it (then they are still good for that name). */
        char kv_dir[4096];
        struct bw_err kv_err;
        if (!rc && model_key[0] && !store_blob_exists(a->cfg.store, blob_digest) &&
            serve_config_kv_dir(kv_dir, sizeof kv_dir, &kv_err) == BW_OK) {
            int n = kvdisk_remove_model(kv_dir, model_key);
            if (n > 0)
                LOG(LOG_INFO, "api", "removed %d saved KV state%s of %s", n, n == 1 ? "" : "s", name);
        }
    }
    reply_done(a, req, "/api/delete", status, msg);
    json_decref(body);
}

/* ---- /v1/models ---------------------------------------------------------------------------- */

static json_t *model_object(const char *display, int64_t modified_ns)
{
    char owner[NAMES_FULL_MAX + 1] = "library";
    const char *slash = strchr(display, '/');
    if (slash)
        snprintf(owner, sizeof owner, "%.*s", (int)(slash - display), display);
    return json_pack("{s:s, s:s, s:I, s:s}", "id", display, "object", "model", "created",
                     (json_int_t)(modified_ns / 1000000000), "owned_by", owner);
}

void openai_models(struct api *a, struct http_request *req)
{
    struct store_list l = {0};
    struct bw_err err;
    if (store_list(a->cfg.store, &l, &err) != BW_OK) {
        api__reply_openai_error(req, 500, "%s", err.msg);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < l.n_items; i++)
        json_array_append_new(data, model_object(l.items[i].display, l.items[i].modified_ns));
    store_list_fini(&l);
    api__reply_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
    metrics_request(&a->metrics, "/v1/models", 200);
}

void openai_model(struct api *a, struct http_request *req)
{
    const char *name = req->path + strlen("/v1/models/");
    struct store_model *sm;
    struct bw_err err;
    int rc = store_resolve(a->cfg.store, name, &sm, &err);
    if (rc) {
        api__reply_openai_error(req, api_status_for(rc), rc == BW_ENOTFOUND ? "model '%s' not found" : "%s",
                                rc == BW_ENOTFOUND ? name : err.msg);
        metrics_request(&a->metrics, "/v1/models/:id", api_status_for(rc));
        return;
    }
    api__reply_json(req, 200, model_object(sm->display, sm->modified_ns));
    store_model_free(sm);
    metrics_request(&a->metrics, "/v1/models/:id", 200);
}
