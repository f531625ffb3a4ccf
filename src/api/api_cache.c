/* api_cache.c -- /api/cache: the saved KV states (kvcache/kvdisk.h, issue 15) listed and
 * cleared, for `bellows cache` (cli/cache.c) and any client.
 *
 *   GET /api/cache     {"states": [{"model", "models", "digest", "kv_type", "tokens",
 *                      "bytes", "modified_at"}, ...] (most recently used first),
 *                      "total_bytes", "budget_bytes", "dir"}
 *   DELETE /api/cache  body {"model": NAME} (optional): that model's states, else all;
 *                      {"removed": files, "freed_bytes": bytes}. An unknown model is 404.
 *
 * A state belongs to the weights that made it (the model key the engine gives kvdisk, its
 * digest), not to a name: names sharing one GGUF share its states, and clearing by one of
 * them clears them for all. The files are matched to names through kvdisk_model_id, so
 * this file reads nothing of the setup key but the KV type it shows.
 *
 * Only files are touched: a sequence still in a loaded model's pool is saved again when
 * it leaves it (`bellows stop MODEL` first to be rid of it too). A runner reading a file
 * being removed keeps reading it (POSIX unlink); one that finds it gone evaluates instead.
 * The route is not public: with BELLOWS_API_KEY set it needs the key, as every route
 * but "/", "/health" and the chat page's files. */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "kvcache/kvdisk.h"
#include "util/log.h"

/* ---- whose states: model ids -> names ------------------------------------------------------- */

struct owner {
    char id[17];         /* kvdisk_model_id of the weights' model key */
    char digest[80];     /* "sha256:<hex>" of the weights */
    json_t *names;       /* display names using these weights, newest first */
};

struct owners {
    struct owner *o;
    size_t n;
};

static void owners_free(struct owners *w)
{
    for (size_t i = 0; i < w->n; i++)
        json_decref(w->o[i].names);
    free(w->o);
}

/* Every model of the store, grouped by the weights its states are saved under. A model
 * whose manifest cannot be resolved is left out (its states list without a name). */
static void owners_read(struct api *a, struct owners *w)
{
    memset(w, 0, sizeof *w);
    struct store_list l = {0};
    if (store_list(a->cfg.store, &l, NULL) != BW_OK)
        return;
    w->o = calloc(l.n_items ? l.n_items : 1, sizeof *w->o);
    for (size_t i = 0; w->o && i < l.n_items; i++) {
        struct store_model *sm;
        if (store_resolve(a->cfg.store, l.items[i].name, &sm, NULL) != BW_OK)
            continue;
        char key[4096], id[17];
        engine_kvdisk_model_key(sm->model_path, key, sizeof key);
        kvdisk_model_id(key, id);
        size_t k = 0;
        while (k < w->n && strcmp(w->o[k].id, id))
            k++;
        if (k == w->n) {
            snprintf(w->o[k].id, sizeof w->o[k].id, "%s", id);
            snprintf(w->o[k].digest, sizeof w->o[k].digest, "sha256:%s", sm->model_digest);
            w->o[k].names = json_array();
            w->n++;
        }
        json_array_append_new(w->o[k].names, json_string(l.items[i].display));
        store_model_free(sm);
    }
    store_list_fini(&l);
}

static const struct owner *owner_of(const struct owners *w, const char *id)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->o[i].id, id))
            return &w->o[i];
    return NULL;
}

/* ---- GET ------------------------------------------------------------------------------------ */

struct listing {
    const struct owners *owners;
    struct state {
        json_t *obj;
        int64_t mtime_ns;
    } *s;
    size_t n, cap;
    uint64_t total;
};

/* "…|kv=q8_0|…" -> "q8_0" into buf; "" when the key says nothing of it. */
static void kv_type_of(const char *setup_key, char *buf, size_t len)
{
    const char *p = strstr(setup_key, "|kv=");
    size_t n = p ? strcspn(p + 4, "| ") : 0;
    snprintf(buf, len, "%.*s", (int)n, p ? p + 4 : "");
}

static int on_state(void *ud, const struct kvdisk_entry_info *e)
{
    struct listing *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct state *s = realloc(l->s, cap * sizeof *s);
        if (!s)
            return 1;
        l->s = s;
        l->cap = cap;
    }
    const struct owner *o = owner_of(l->owners, e->model_id);
    char when[64], kv[32], digest[80] = "";
    api__time_rfc3339(e->mtime_ns, when, sizeof when);
    kv_type_of(e->setup_key, kv, sizeof kv);
    if (o)
        snprintf(digest, sizeof digest, "%s", o->digest);
    else if (!strncmp(e->setup_key, "sha256:", 7)) /* the weights are gone from the store */
        snprintf(digest, sizeof digest, "%.*s", (int)strcspn(e->setup_key, "| "), e->setup_key);
    json_t *obj = json_pack("{s:o, s:o, s:o, s:I, s:I, s:s}", "model",
                            o && json_array_size(o->names) ? json_copy(json_array_get(o->names, 0)) : json_null(),
                            "models", o ? json_copy(o->names) : json_array(), "digest",
                            digest[0] ? json_string(digest) : json_null(), "tokens", (json_int_t)e->n_tokens, "bytes",
                            (json_int_t)e->bytes, "modified_at", when);
    if (!obj)
        return 1;
    if (kv[0])
        json_object_set_new(obj, "kv_type", json_string(kv));
    l->s[l->n++] = (struct state){.obj = obj, .mtime_ns = e->mtime_ns};
    l->total += e->bytes;
    return 0;
}

static int newer_first(const void *x, const void *y)
{
    const struct state *a = x, *b = y;
    return a->mtime_ns > b->mtime_ns ? -1 : a->mtime_ns < b->mtime_ns;
}

static void cache_list(struct api *a, struct http_request *req)
{
    struct owners w;
    owners_read(a, &w);
    struct listing l = {.owners = &w};
    if (a->cfg.kv_dir)
        kvdisk_list(a->cfg.kv_dir, on_state, &l);
    if (l.n)
        qsort(l.s, l.n, sizeof *l.s, newer_first);
    json_t *states = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(states, l.s[i].obj);
    free(l.s);
    owners_free(&w);
    api__reply_json(req, 200,
                    json_pack("{s:o, s:I, s:I, s:o}", "states", states, "total_bytes", (json_int_t)l.total,
                              "budget_bytes", (json_int_t)(a->cfg.kv_dir ? a->cfg.kv_disk_budget : 0), "dir",
                              a->cfg.kv_dir ? json_string(a->cfg.kv_dir) : json_null()));
    metrics_request(&a->metrics, "/api/cache", 200);
}

/* ---- DELETE --------------------------------------------------------------------------------- */

static void cache_clear(struct api *a, struct http_request *req)
{
    char msg[512];
    const char *name = NULL;
    json_t *body = NULL;
    int status = 0;
    if (req->body && req->body_len) { /* no body: every state */
        body = api__parse_body(req, msg, sizeof msg);
        name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
        if (!body)
            status = 400;
        else if (!name && json_object_get(body, "model") && !json_is_null(json_object_get(body, "model")))
            status = 400, snprintf(msg, sizeof msg, "model must be a string");
        else if (name && !*name) /* never "everything" by accident */
            status = 400, snprintf(msg, sizeof msg, "model is empty: leave it out to clear every model's states");
    }
    char key[4096] = "";
    if (!status && name) {
        struct store_model *sm;
        struct bw_err err;
        int rc = store_resolve(a->cfg.store, name, &sm, &err);
        if (rc == BW_ENOTFOUND)
            status = 404, snprintf(msg, sizeof msg, "model '%s' not found", name);
        else if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
        else {
            engine_kvdisk_model_key(sm->model_path, key, sizeof key);
            store_model_free(sm);
        }
    }
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, "/api/cache", status);
        json_decref(body);
        return;
    }
    uint64_t freed = 0;
    int removed = a->cfg.kv_dir ? kvdisk_clear_model(a->cfg.kv_dir, key[0] ? key : NULL, &freed) : 0;
    LOG(LOG_INFO, "api", "request_id=%s removed %d saved KV state%s (%.1f MiB) of %s", req->request_id, removed,
        removed == 1 ? "" : "s", freed / 1048576.0, key[0] ? name : "every model");
    api__reply_json(req, 200, json_pack("{s:i, s:I}", "removed", removed, "freed_bytes", (json_int_t)freed));
    metrics_request(&a->metrics, "/api/cache", 200);
    json_decref(body);
}

void ollama_cache(struct api *a, struct http_request *req)
{
    if (!strcmp(req->method, "DELETE"))
        cache_clear(a, req);
    else
        cache_list(a, req);
}
