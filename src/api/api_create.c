/* api_create.c -- /api/blobs/:digest (HEAD, streamed POST) and /api/create (a model from
 * local files or an existing model, layers from the body; progress streamed as NDJSON while
 * the store works in a thread). */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "template/caps.h"
#include "util/log.h"


/* ---- /api/blobs: an upload streams to a temp file while it is hashed ----------------------
 *
 * ollama_blob_begin runs with the headers (http.h begin hook) and opts the POST into a
 * streamed body, so a blob of any size takes constant memory: each piece is written and
 * hashed as it arrives (store_blob_write), and ollama_blob commits (sha256 check, fsync,
 * rename) once the body is in. A blob already in the store is kept and the body is read
 * and discarded (Ollama answers 200 without reading it; its clients HEAD first anyway). A
 * Content-Length beyond the free disk is refused before the body (507). Any failure, or
 * the client going away, removes the temp file (blob_release). */

struct blob_upload {
    struct store_blob_writer *w; /* NULL when nothing is (or is any longer) being written */
    bool exists;                 /* the blob was there already: answer 200 */
    int rc;                      /* a write failed: the answer */
    struct bw_err err;
    uint64_t req_id;             /* for the log */
    uint64_t n_bytes;            /* written so far */
};

static bool blob_piece(void *ud, const char *data, size_t len)
{
    struct blob_upload *u = ud;
    if (!u->w)
        return false;
    int rc = store_blob_write(u->w, data, len, &u->err);
    u->n_bytes += len;
    if (rc == BW_OK)
        return true;
    store_blob_abort(u->w); /* the temp file goes now, not after the rest of the body */
    u->w = NULL;
    u->rc = rc;
    return false;
}

static void blob_release(void *ud)
{
    struct blob_upload *u = ud;
    if (u->w) /* not committed: the client left, or the server stopped */
        LOG_REQ(LOG_INFO, u->req_id, "api", "blob upload abandoned after %llu bytes: its temp file is removed",
                (unsigned long long)u->n_bytes);
    store_blob_abort(u->w);
    free(u);
}

static void blob_refuse(struct api *a, struct http_request *req, int status, const char *msg)
{
    api__reply_error(req, status, "%s", msg);
    metrics_request(&a->metrics, "/api/blobs", status);
}

void ollama_blob_begin(struct api *a, struct http_request *req)
{
    const char *digest = req->path + strlen("/api/blobs/");
    if (!names_digest_valid(digest)) {
        char msg[200];
        snprintf(msg, sizeof msg, "invalid digest '%.100s' (expected sha256:<64 hex digits>)", digest);
        blob_refuse(a, req, 400, msg);
        return;
    }
    struct blob_upload *u = calloc(1, sizeof *u);
    if (!u) {
        blob_refuse(a, req, 500, "out of memory");
        return;
    }
    u->req_id = req->seq;
    const char *cl = http_header(req, "Content-Length");
    uint64_t total = cl ? strtoull(cl, NULL, 10) : 0;
    int rc = BW_OK;
    if (store_blob_exists(a->cfg.store, digest))
        u->exists = true;
    else if ((rc = store_blob_room(a->cfg.store, total, &u->err)) == BW_OK)
        rc = store_blob_begin(a->cfg.store, digest, total, NULL, NULL, &u->w, &u->err);
    if (rc == BW_OK && (rc = http_stream_body(req, blob_piece, blob_release, u)) != BW_OK)
        bw_errf(&u->err, rc, "internal error: cannot stream the body");
    if (rc != BW_OK) {
        store_blob_abort(u->w);
        blob_refuse(a, req, api_status_for(rc), u->err.msg);
        free(u);
    }
}

void ollama_blob(struct api *a, struct http_request *req)
{
    const char *digest = req->path + strlen("/api/blobs/");
    if (!names_digest_valid(digest)) {
        api__reply_error(req, 400, "invalid digest '%s' (expected sha256:<64 hex digits>)", digest);
        metrics_request(&a->metrics, "/api/blobs", 400);
        return;
    }
    if (!strcmp(req->method, "HEAD")) {
        bool have = store_blob_exists(a->cfg.store, digest);
        http_respond(req, have ? 200 : 404, "application/json", "", 0, NULL);
        metrics_request(&a->metrics, "/api/blobs", have ? 200 : 404);
        return;
    }
    struct blob_upload *u = http_body_ud(req);
    struct bw_err err;
    int rc = BW_OK, status = 201;
    if (u && u->exists) {
        status = 200; /* kept as it is; the body was discarded */
    } else if (u && u->rc) {
        rc = u->rc, err = u->err;
    } else if (u) {
        rc = store_blob_commit(u->w, NULL, &err); /* frees the writer on every path */
        u->w = NULL;
    } else { /* not streamed (no begin hook): the buffered body */
        struct store_blob_writer *w;
        rc = store_blob_begin(a->cfg.store, digest, req->body_len, NULL, NULL, &w, &err);
        if (rc == BW_OK && req->body_len && (rc = store_blob_write(w, req->body, req->body_len, &err)) != BW_OK)
            store_blob_abort(w);
        else if (rc == BW_OK)
            rc = store_blob_commit(w, NULL, &err);
    }
    if (rc)
        api__reply_error(req, status = api_status_for(rc), "%s", err.msg);
    else
        http_respond(req, status, "application/json", "", 0, NULL);
    metrics_request(&a->metrics, "/api/blobs", status);
    LOG_REQ(rc ? LOG_WARN : LOG_INFO, req->seq, "api", "blob %s: %d, %zu bytes received%s%s", digest, status,
            req->body_len, rc ? ": " : status == 200 ? " (already there: kept)" : "", rc ? err.msg : "");
}

/* ---- /api/create: the store works in a thread, progress streams as NDJSON ------------------- */

struct create_job {
    struct api *a;
    char *name;
    struct store_create sc;
    json_t *body;
    char *params_text, *messages_text, *from_path, *from_digest;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct strbuf lines; /* progress not yet sent */
    size_t sent;
    bool finished, joined;
    int rc;
    char err[300];
};

static void create_progress(void *ud, const char *status, uint64_t done, uint64_t total)
{
    struct create_job *j = ud;
    json_t *o = json_pack("{s:s}", "status", status);
    if (total) {
        json_object_set_new(o, "total", json_integer((json_int_t)total));
        json_object_set_new(o, "completed", json_integer((json_int_t)done));
    }
    pthread_mutex_lock(&j->mu);
    strbuf_add_json(&j->lines, o);
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
}

static void *create_main(void *arg)
{
    struct create_job *j = arg;
    struct bw_err err = {0};
    int rc = store_create(j->a->cfg.store, j->name, &j->sc, &err);
    /* A Go TEMPLATE (given here or kept from the model it was created from) is stored but
     * not rendered: say which template renders instead. */
    struct api_model m;
    if (rc == BW_OK && api__model_open(j->a, j->name, &m, NULL) == BW_OK) {
        if (m.sm->template && *m.sm->template && template_is_go(m.sm->template)) {
            char note[256];
            api__go_template_note(api__template(&m, NULL), note, sizeof note);
            create_progress(j, note, 0, 0);
        }
        api__model_close(&m);
    }
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    snprintf(j->err, sizeof j->err, "%s", rc ? err.msg : "");
    strbuf_add_json(&j->lines, rc ? json_pack("{s:s}", "error", err.msg) : json_pack("{s:s}", "status", "success"));
    j->finished = true;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void create_job_free(struct create_job *j)
{
    if (!j->joined)
        pthread_join(j->thread, NULL);
    json_decref(j->body);
    free(j->name);
    free(j->params_text);
    free(j->messages_text);
    free(j->from_path);
    free(j->from_digest);
    strbuf_free(&j->lines);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cond);
    free(j);
}

static ssize_t create_pull(void *ud, char *buf, size_t max)
{
    struct create_job *j = ud;
    pthread_mutex_lock(&j->mu);
    while (j->sent == j->lines.len && !j->finished)
        pthread_cond_wait(&j->cond, &j->mu);
    size_t n = j->lines.len - j->sent;
    if (n > max)
        n = max;
    memcpy(buf, j->lines.s + j->sent, n);
    j->sent += n;
    pthread_mutex_unlock(&j->mu);
    return (ssize_t)n; /* 0 only when finished and everything was sent */
}

static void create_done(void *ud, bool completed)
{
    struct create_job *j = ud;
    metrics_request(&j->a->metrics, "/api/create", completed ? 200 : 499);
    create_job_free(j);
}

/* "from" is a local GGUF path when it names a file (absolute, ./, ../ or ~/), else a model. */
static char *local_path(const char *from)
{
    if (!from)
        return NULL;
    if (!strncmp(from, "~/", 2) && getenv("HOME")) {
        char *p;
        return asprintf(&p, "%s/%s", getenv("HOME"), from + 2) < 0 ? NULL : p;
    }
    struct stat sb;
    if ((from[0] == '/' || !strncmp(from, "./", 2) || !strncmp(from, "../", 3)) && stat(from, &sb) == 0)
        return strdup(from);
    if (from[0] == '/')
        return strdup(from); /* a missing absolute path: let the store say "not found" */
    return NULL;
}

void ollama_create(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
    int status = !body ? 400 : !name ? (snprintf(msg, sizeof msg, "model is required"), 400) : 0;
    const json_t *files = body ? json_object_get(body, "files") : NULL;
    const char *from = body ? str_field(body, "from") : NULL;
    if (!status && str_field(body, "modelfile") && !from && !files)
        status = 400, snprintf(msg, sizeof msg,
                               "the 'modelfile' field is not supported: send 'from' (a model name or a GGUF "
                               "path) or 'files', with 'parameters', 'system' and 'template'");
    if (!status && !from && !json_is_object(files))
        status = 400, snprintf(msg, sizeof msg, "neither 'from' nor 'files' was specified");
    if (!status && str_field(body, "quantize"))
        status = 400, snprintf(msg, sizeof msg, "quantize is not supported by Bellows yet");
    if (!status && json_object_get(body, "parameters") && !json_is_object(json_object_get(body, "parameters")))
        status = 400, snprintf(msg, sizeof msg, "parameters must be an object");
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, "/api/create", status);
        json_decref(body);
        return;
    }
    struct create_job *j = calloc(1, sizeof *j);
    j->a = a;
    j->body = body;
    j->name = strdup(name);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    if (json_is_object(files)) {
        const char *fname;
        json_t *dig;
        json_object_foreach((json_t *)files, fname, dig) {
            if (json_is_string(dig) && (strstr(fname, ".gguf") || !j->from_digest)) {
                free(j->from_digest);
                j->from_digest = strdup(json_string_value(dig));
            }
        }
        j->sc.from_digest = j->from_digest;
    } else if ((j->from_path = local_path(from))) {
        j->sc.from_path = j->from_path;
    } else {
        j->sc.from_model = from;
    }
    const json_t *params = json_object_get(body, "parameters");
    if (json_is_object(params) && json_object_size(params))
        j->sc.params = j->params_text = json_dumps(params, JSON_COMPACT);
    const json_t *messages = json_object_get(body, "messages");
    if (json_is_array(messages) && json_array_size(messages))
        j->sc.messages = j->messages_text = json_dumps(messages, JSON_COMPACT);
    j->sc.system = str_field(body, "system");
    j->sc.template = str_field(body, "template");
    j->sc.license = str_field(body, "license");
    j->sc.progress = create_progress;
    j->sc.progress_ud = j;
    bool stream = !json_is_false(json_object_get(body, "stream"));
    if (!stream) {
        create_main(j);
        j->joined = true;
        if (j->rc)
            api__reply_error(req, api_status_for(j->rc), "%s", j->err);
        else
            api__reply_json(req, 200, json_pack("{s:s}", "status", "success"));
        metrics_request(&a->metrics, "/api/create", j->rc ? api_status_for(j->rc) : 200);
        create_job_free(j);
        return;
    }
    if (pthread_create(&j->thread, NULL, create_main, j) != 0) {
        j->joined = true;
        api__reply_error(req, 500, "cannot start the create thread");
        create_job_free(j);
        return;
    }
    /* Errors found before anything was written (bad name, not a GGUF) keep their status:
     * wait briefly for the first line. */
    pthread_mutex_lock(&j->mu);
    while (j->lines.len == 0 && !j->finished)
        pthread_cond_wait(&j->cond, &j->mu);
    bool early_fail = j->finished && j->rc;
    pthread_mutex_unlock(&j->mu);
    if (early_fail) {
        api__reply_error(req, api_status_for(j->rc), "%s", j->err);
        metrics_request(&a->metrics, "/api/create", api_status_for(j->rc));
        create_job_free(j);
        return;
    }
    if (http_respond_stream(req, 200, "application/x-ndjson", create_pull, create_done, j, NULL) != BW_OK)
        create_job_free(j);
}
