/* api.c -- routing, replies, model resolution; see api.h. */
#define _GNU_SOURCE
#include "api/api_int.h"
#include "api/api_ui.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/ckpt.h"
#include "grammar/json_schema.h"
#include "sched/estimate.h"
#include "template/caps.h"
#include "template/toolcall.h"
#include "util/log.h"
#include "version.h"

/* ---- small helpers ---------------------------------------------------------------------- */

void api__time_rfc3339(int64_t unix_ns, char *buf, size_t len)
{
    time_t secs = (time_t)(unix_ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%09lldZ", (long long)(unix_ns % 1000000000));
}

int api_status_for(int code)
{
    switch (code) {
    case BW_EINVAL:
    case BW_ETOOLONG: return 400;
    case BW_ENOTFOUND: return 404;
    case BW_EBUSY: return 503;
    case BW_ENOSPC: return 507;
    default: return 500;
    }
}

void api__reply_json(struct http_request *req, int status, json_t *body)
{
    char *s = body ? toolcall_json_dump(body) : NULL; /* numbers as short as they read back */
    json_decref(body);
    if (!s) {
        http_respond(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
        return;
    }
    http_respond(req, status, "application/json; charset=utf-8", s, strlen(s), NULL);
    free(s);
}

/* Formats an error message and logs it with the request id (one line per failed request). */
static void error_message(const struct http_request *req, int status, char *msg, size_t len, const char *fmt,
                          va_list ap)
{
    vsnprintf(msg, len, fmt, ap);
    LOG(status >= 500 ? LOG_WARN : LOG_INFO, "api", "request_id=%s %s %s -> %d %s", req->request_id, req->method,
        req->path, status, msg);
}

void api__reply_error(struct http_request *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    error_message(req, status, msg, sizeof msg, fmt, ap);
    va_end(ap);
    api__reply_json(req, status, json_pack("{s:s}", "error", msg));
}

void api__reply_openai_error(struct http_request *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    error_message(req, status, msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *type = status == 404 ? "not_found_error" : status < 500 ? "invalid_request_error" : "api_error";
    api__reply_json(req, status,
                    json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", msg, "type", type, "param", "code"));
}

json_t *api__parse_body(const struct http_request *req, char *msg, size_t len)
{
    if (!req->body || req->body_len == 0) {
        snprintf(msg, len, "missing request body");
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(req->body, req->body_len, 0, &je);
    if (!doc) {
        snprintf(msg, len, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(msg, len, "the request body must be a JSON object");
        return NULL;
    }
    return doc;
}

int api__keep_alive(const json_t *body, int64_t *out)
{
    const json_t *v = json_object_get(body, "keep_alive");
    if (!v || json_is_null(v)) {
        *out = SCHED_KEEP_ALIVE_DEFAULT;
        return BW_OK;
    }
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (s > 9.2e9) /* past int64 nanoseconds: as good as forever */
            s = -1;
        *out = limits_keep_alive(s < 0 ? -1 : (int64_t)(s * 1e9));
        return BW_OK;
    }
    int64_t ns;
    if (!json_is_string(v) || sched_parse_duration(json_string_value(v), &ns) != BW_OK)
        return BW_EINVAL;
    *out = limits_keep_alive(ns); /* "2562047h" is forever, not an expiry that overflows */
    return BW_OK;
}

int api__think_value(const json_t *v, const char **out)
{
    static const char *const efforts[] = {"low", "medium", "high"};
    *out = NULL;
    if (!v || json_is_null(v))
        return BW_OK;
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? "true" : "false";
        return BW_OK;
    }
    for (size_t i = 0; json_is_string(v) && i < sizeof efforts / sizeof efforts[0]; i++)
        if (!strcmp(json_string_value(v), efforts[i])) {
            *out = efforts[i];
            return BW_OK;
        }
    return BW_EINVAL;
}

int api__refuse_images(const char *model, int n_images, char *msg, size_t len)
{
    if (n_images <= 0)
        return 0;
    /* Ollama's capability wording, with its runner's words for the same case (clients
     * match either one). */
    snprintf(msg, len,
             "\"%s\" does not support images: this model is missing data required for image input "
             "(Bellows has no vision encoder yet; %d image%s sent)",
             model, n_images, n_images == 1 ? "" : "s");
    return 400;
}

void api__context_fields(json_t *obj, const struct engine_stats *st, const char *request_id)
{
    json_object_set_new(obj, "context_length", json_integer(st->context_length));
    json_object_set_new(obj, "context_max", json_integer(st->context_max));
    json_object_set_new(obj, "prompt_tokens", json_integer(st->prompt_tokens));
    json_object_set_new(obj, "prompt_cache_tokens", json_integer(st->prompt_cache_tokens));
    if (st->truncated_messages || st->truncated_tokens) {
        json_object_set_new(obj, "truncated_messages", json_integer(st->truncated_messages));
        json_object_set_new(obj, "truncated_tokens", json_integer(st->truncated_tokens));
    }
    if (request_id)
        json_object_set_new(obj, "request_id", json_string(request_id));
}

/* JSON mode (Ollama's format:"json", OpenAI's response_format json_object): the answer is
 * one JSON object. Whitespace runs are bounded: a model that may emit spaces forever
 * inside a JSON document otherwise sometimes does (Ollama's docs warn about it). */
const char api__json_grammar[] =
    "root   ::= object\n"
    "object ::= \"{\" ws ( member ( \",\" ws member )* )? \"}\" ws\n"
    "member ::= string ws \":\" ws value\n"
    "array  ::= \"[\" ws ( value ( \",\" ws value )* )? \"]\" ws\n"
    "value  ::= object | array | string ws | number ws | ( \"true\" | \"false\" | \"null\" ) ws\n"
    /* valid UTF-8 code points only: a byte-a-token surrogate would be repaired into
     * U+FFFD in the text sent (json_schema.h) */
    "string ::= \"\\\"\" ( [" JSON_SCHEMA_STRING_RANGES "] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) )* \"\\\"\"\n"
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n"
    "ws     ::= [ \\t\\n]{0,4}\n";

/* ---- models ------------------------------------------------------------------------------ */

/* Looks PATH (at this mtime) up in the cache. Called with info_mu held. */
static const struct gguf_info *info_cached(struct api *a, const char *path, int64_t mtime)
{
    for (int i = 0; i < API_INFO_CACHE; i++)
        if (a->info_cache[i].path && !strcmp(a->info_cache[i].path, path) && a->info_cache[i].mtime_ns == mtime)
            return a->info_cache[i].info;
    return NULL;
}

/* The model's metadata, borrowed from the cache; when the cache is full, *owned is set and
 * the caller frees what it got (api__model_close does). */
static const struct gguf_info *info_get(struct api *a, const char *path, bool *owned, struct bw_err *err)
{
    *owned = false;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        bw_errf(err, BW_ENOTFOUND, "model file %s is missing", path);
        return NULL;
    }
    int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    pthread_mutex_lock(&a->info_mu);
    const struct gguf_info *found = info_cached(a, path, mtime);
    pthread_mutex_unlock(&a->info_mu);
    if (found)
        return found;
    /* Read outside the lock (it takes milliseconds); concurrent readers of one file may both
     * read it, and the second one to insert keeps the first's copy. */
    struct gguf_info *info;
    if (gguf_info_read(path, &info, err) != BW_OK)
        return NULL;
    pthread_mutex_lock(&a->info_mu);
    found = info_cached(a, path, mtime);
    if (!found) {
        for (int i = 0; i < API_INFO_CACHE && !found; i++)
            if (!a->info_cache[i].path && (a->info_cache[i].path = strdup(path))) {
                a->info_cache[i].info = info;
                a->info_cache[i].mtime_ns = mtime;
                found = info;
            }
    }
    pthread_mutex_unlock(&a->info_mu);
    if (!found) {
        /* Entries are borrowed until api_free, so a full cache cannot evict: this request
         * keeps its own copy. */
        *owned = true;
        return info;
    }
    if (found != info)
        gguf_info_free(info); /* another thread cached it first */
    return found;
}

/* The KV figures of sched_model (issue 18: each memory kind; issue 15: the cache type), from
 * the GGUF before any runner exists: the type the runner will settle on (engine_mem.c: f16
 * where a quantized type needs flash attention that is off, or a block the heads do not
 * divide; auto is f16 with q8_0 as the alternative the load may take). */
static void sched_model_kv(struct sched_model *m, const struct estimate_shape *shape, int kv_type, int n_parallel)
{
    int t = kv_type;
    if (t != ESTIMATE_KV_F16 && !m->flash_attn)
        t = ESTIMATE_KV_F16;
    if (t == ESTIMATE_KV_AUTO && !estimate_kv_type_fits(shape, ESTIMATE_KV_Q8_0))
        t = ESTIMATE_KV_F16;
    if (t != ESTIMATE_KV_AUTO && !estimate_kv_type_fits(shape, t))
        t = ESTIMATE_KV_F16;
    struct estimate_model em = {0};
    estimate_model_kv(&em, shape, t == ESTIMATE_KV_AUTO ? ESTIMATE_KV_F16 : t, n_parallel, CKPT_PER_SLOT);
    m->kv_type = t;
    m->kv_bytes_per_cell = em.kv_bytes_per_cell;
    m->fixed_kv_bytes = em.fixed_kv_bytes;
    if (t == ESTIMATE_KV_AUTO) {
        estimate_model_kv(&em, shape, ESTIMATE_KV_Q8_0, n_parallel, CKPT_PER_SLOT);
        m->auto_kv_bytes_per_cell = em.kv_bytes_per_cell;
        m->auto_fixed_kv_bytes = em.fixed_kv_bytes;
    }
}

int api__model_open(struct api *a, const char *name, struct api_model *out, struct bw_err *err)
{
    memset(out, 0, sizeof *out);
    if (!name || !*name)
        return bw_errf(err, BW_EINVAL, "model is required");
    if (limits_check_count(&a->cfg.limits, LIMITS_MODEL_NAME, strlen(name), err) != BW_OK)
        return BW_EINVAL; /* never cut: a cut name may name another model */
    out->limits = &a->cfg.limits;
    int rc = store_resolve(a->cfg.store, name, &out->sm, err);
    if (rc == BW_ENOTFOUND)
        return bw_errf(err, BW_ENOTFOUND, "model '%s' not found", name);
    if (rc)
        return rc;
    out->info = info_get(a, out->sm->model_path, &out->info_owned, err);
    if (!out->info) {
        store_model_free(out->sm);
        out->sm = NULL;
        out->limits = NULL;
        return err ? err->code : BW_EINVAL;
    }
    out->sched = (struct sched_model){.name = out->sm->name,
                                      .path = out->sm->model_path,
                                      .weights_bytes = out->info->tensor_bytes,
                                      .n_ctx_train = (int)out->info->n_ctx_train,
                                      .n_layer = (int)out->info->n_layer,
                                      .use_mmap = true,
                                      .flash_attn = a->cfg.flash_attn,
                                      .num_gpu = -1};
    sched_model_kv(&out->sched, &out->info->shape, a->cfg.kv_type, a->cfg.n_parallel > 0 ? a->cfg.n_parallel : 4);
    return BW_OK;
}

void api__model_close(struct api_model *m)
{
    if (m->info_owned)
        gguf_info_free((struct gguf_info *)m->info);
    store_model_free(m->sm);
    memset(m, 0, sizeof *m);
}

/* ---- which template renders (issue 10 item 3) ---------------------------------------------- */

const char *api__render_template(const struct api_model *m)
{
    const char *t = m->sm ? m->sm->template : NULL;
    return t && *t && !template_is_go(t) ? t : NULL;
}

enum api_template_source api__template(const struct api_model *m, const char **text)
{
    const char *t = api__render_template(m);
    enum api_template_source src = API_TEMPLATE_MODELFILE;
    if (!t) {
        t = m->info ? m->info->chat_template : NULL;
        src = t && *t ? API_TEMPLATE_GGUF : API_TEMPLATE_NONE;
    }
    if (text)
        *text = src == API_TEMPLATE_NONE ? NULL : t;
    return src;
}

const char *api__template_source_name(enum api_template_source src)
{
    return src == API_TEMPLATE_MODELFILE ? "modelfile" : src == API_TEMPLATE_GGUF ? "gguf" : "none";
}

void api__go_template_note(enum api_template_source src, char *buf, size_t len)
{
    if (src == API_TEMPLATE_GGUF)
        snprintf(buf, len, "using the model's own Jinja chat template: TEMPLATE is an Ollama Go template, "
                           "which Bellows does not render");
    else
        snprintf(buf, len, "TEMPLATE is an Ollama Go template, which Bellows does not render, and the GGUF has "
                           "no chat template: chats use llama.cpp's built-in ChatML format");
}

unsigned api__model_caps(const struct api_model *m)
{
    const char *t;
    enum api_template_source src = api__template(m, &t);
    unsigned caps = template_caps(t);
    if (src == API_TEMPLATE_GGUF) {
        /* A GGUF may carry a variant for requests with tools (Hermes, Command R): those
         * requests render with it, so its tools count. */
        const struct gguf_info_kv *kv = gguf_info_find(m->info, "tokenizer.chat_template.tool_use");
        if (kv && kv->kind == GGUF_INFO_STRING)
            caps |= template_caps(kv->str) & TEMPLATE_CAP_TOOLS;
    }
    return caps;
}

/* Load-time options change which runner serves the request, not the request itself: a
 * different value reloads the model (sched.c): use_mmap, and num_gpu (layers on GPUs). */
static int apply_load_options(struct api_model *m, const json_t *options, struct bw_err *err)
{
    const json_t *mmap = options ? json_object_get(options, "use_mmap") : NULL;
    if (mmap && !json_is_null(mmap)) {
        if (!json_is_boolean(mmap))
            return bw_errf(err, BW_EINVAL, "option 'use_mmap' must be a boolean");
        m->sched.use_mmap = json_is_true(mmap);
    }
    const json_t *num_gpu = options ? json_object_get(options, "num_gpu") : NULL;
    if (num_gpu && !json_is_null(num_gpu)) {
        if (!json_is_integer(num_gpu))
            return bw_errf(err, BW_EINVAL, "option 'num_gpu' must be an integer");
        m->sched.num_gpu = json_integer_value(num_gpu) < 0 ? -1 : (int)json_integer_value(num_gpu);
    }
    return BW_OK;
}

int api__check_limits(const struct api *a, const json_t *body, char *msg, size_t len)
{
    struct bw_err err;
    if (limits_check_body(&a->cfg.limits, body, &err) != BW_OK)
        return snprintf(msg, len, "%s", err.msg), 400;
    return 0;
}

int api__apply_options(struct api_model *m, const json_t *options, struct engine_request *r,
                       const char **stop_storage, json_t **params_doc, struct bw_err *err)
{
    *params_doc = NULL;
    int cmax = m->info ? (int)m->info->n_ctx_train : 0;
    if (m->limits && limits_check_options(m->limits, options, cmax, err) != BW_OK)
        return BW_EINVAL;
    if (m->sm && m->sm->params) {
        json_error_t je;
        *params_doc = json_loads(m->sm->params, 0, &je);
        if (*params_doc) {
            /* Modelfile stops go to the upper half of the storage so request stops can't clobber them. */
            int rc = m->limits ? limits_check_options(m->limits, *params_doc, cmax, err) : BW_OK;
            if (rc == BW_OK)
                rc = options_apply(*params_doc, r, stop_storage + OPTIONS_MAX_STOP, err);
            if (rc == BW_OK)
                rc = apply_load_options(m, *params_doc, err);
            if (rc)
                return bw_errf(err, BW_EINVAL, "the model's parameters: %s", err ? err->msg : "invalid");
        }
    }
    int rc = apply_load_options(m, options, err);
    return rc ? rc : options_apply(options, r, stop_storage, err);
}

/* ---- routing ------------------------------------------------------------------------------- */

typedef void (*route_fn)(struct api *a, struct http_request *req);

struct route {
    const char *path;
    bool prefix;          /* path is a prefix (e.g. /api/blobs/) */
    const char *methods;  /* space-separated */
    route_fn fn;
    bool openai;          /* error shape */
};

static void root(struct api *a, struct http_request *req)
{
    if (api__ui_redirect(a, req)) /* a browser: to the chat page (api_ui.c) */
        return;
    http_respond(req, 200, "text/plain; charset=utf-8", "Bellows is running", 18, NULL);
}

static void version(struct api *a, struct http_request *req)
{
    (void)a;
    api__reply_json(req, 200, json_pack("{s:s}", "version", BELLOWS_VERSION));
}

static void health(struct api *a, struct http_request *req)
{
    (void)a;
    api__reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void metrics(struct api *a, struct http_request *req)
{
    size_t len;
    char *text = metrics_render(&a->metrics, a->cfg.sched, &len);
    http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", text ? len : 0, NULL);
    free(text);
}

static const struct route routes[] = {
    {"/", false, "GET HEAD", root, false},
    {"/health", false, "GET HEAD", health, false},
    {"/metrics", false, "GET", metrics, false},
    {"/api/version", false, "GET HEAD", version, false},
    {"/api/generate", false, "POST", ollama_generate, false},
    {"/api/chat", false, "POST", ollama_chat, false},
    {"/api/embed", false, "POST", ollama_embed, false},
    {"/api/embeddings", false, "POST", ollama_embeddings, false},
    {"/api/tags", false, "GET HEAD", ollama_tags, false},
    {"/api/show", false, "POST", ollama_show, false},
    {"/api/ps", false, "GET", ollama_ps, false},
    {"/api/create", false, "POST", ollama_create, false},
    {"/api/blobs/", true, "HEAD POST", ollama_blob, false},
    {"/api/copy", false, "POST", ollama_copy, false},
    {"/api/delete", false, "DELETE", ollama_delete, false},
    {"/api/pull", false, "POST", ollama_pull, false},
    {"/api/push", false, "POST", ollama_push, false},
    {"/api/cache", false, "GET DELETE", ollama_cache, false}, /* saved KV states (api_cache.c) */
    {"/v1/chat/completions", false, "POST", openai_chat, true},
    {"/v1/completions", false, "POST", openai_completions, true},
    {"/v1/embeddings", false, "POST", openai_embeddings, true},
    {"/v1/models", false, "GET", openai_models, true},
    {"/v1/models/", true, "GET", openai_model, true},
    {"/ui", false, "GET HEAD", api__ui_serve, false}, /* the chat page (api_ui.c) */
    {"/ui/", false, "GET HEAD", api__ui_serve, false},
    {"/ui/", true, "GET HEAD", api__ui_serve, false},
};

/* Routes whose body streams (http.h begin hook) instead of being buffered: blob uploads
 * only, so that every JSON route keeps max_body. */
static const struct stream_route {
    const char *prefix;
    const char *method;
    route_fn begin;
} stream_routes[] = {
    {"/api/blobs/", "POST", ollama_blob_begin},
};

void api_begin(void *ud, struct http_request *req)
{
    for (size_t i = 0; i < sizeof stream_routes / sizeof stream_routes[0]; i++) {
        const struct stream_route *r = &stream_routes[i];
        if (!strncmp(req->path, r->prefix, strlen(r->prefix)) && req->path[strlen(r->prefix)] &&
            !strcmp(req->method, r->method)) {
            r->begin(ud, req);
            return;
        }
    }
}

static bool method_in(const char *methods, const char *m)
{
    size_t n = strlen(m);
    for (const char *p = methods; (p = strstr(p, m)); p += n)
        if ((p == methods || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

void api_handle(void *ud, struct http_request *req)
{
    struct api *a = ud;
    const struct route *match = NULL;
    bool path_known = false;
    const char *label = "other"; /* the metrics label: a route's own path, never the client's bytes */
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        bool hit = r->prefix ? !strncmp(req->path, r->path, strlen(r->path)) && req->path[strlen(r->path)]
                             : !strcmp(req->path, r->path);
        if (!hit)
            continue;
        path_known = true;
        label = r->path;
        if (method_in(r->methods, req->method)) {
            match = r;
            break;
        }
    }
    if (!match) {
        bool v1 = !strncmp(req->path, "/v1/", 4);
        int status = path_known ? 405 : 404;
        if (v1)
            api__reply_openai_error(req, status, path_known ? "method %s not allowed" : "%s not found",
                                    path_known ? req->method : req->path);
        else if (path_known)
            api__reply_error(req, 405, "method %s not allowed on %s", req->method, req->path);
        else
            api__reply_error(req, 404, "404 page not found");
        metrics_request(&a->metrics, label, status);
        return;
    }
    match->fn(a, req);
}

int api_new(const struct api_config *cfg, struct api **out, struct bw_err *err)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    a->cfg = *cfg;
    if (!a->cfg.limits.max[0])
        limits_defaults(&a->cfg.limits);
    if (api__pulls_new(cfg->store, &a->pulls)) {
        free(a);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&a->info_mu, NULL);
    metrics_init(&a->metrics);
    *out = a;
    return BW_OK;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api__pulls_free(a->pulls);
    for (int i = 0; i < API_INFO_CACHE; i++) {
        free(a->info_cache[i].path);
        gguf_info_free(a->info_cache[i].info);
    }
    pthread_mutex_destroy(&a->info_mu);
    metrics_fini(&a->metrics);
    free(a);
}
