/* api_pull.c -- /api/pull (Ollama's registry protocol, src/registry) and /api/push (501).
 *
 * DESIGN
 * - A pull runs in a thread of its own (a "job"), never in the HTTP handler's: the
 *   handler only waits on the job and turns its progress into NDJSON. Pulls of different
 *   models run at once.
 * - A request for a model whose pull is running (with the same `insecure`) attaches to
 *   that job: it is sent every step so far (each layer with its current progress), then
 *   what follows.
 * - A job counts the requests waiting on it. One that goes away does not disturb the
 *   others; when the last one goes, the job is cancelled (as Ollama cancels a download
 *   nobody waits for) and its partial files stay for the next pull to resume.
 * - The handler waits (at most MANIFEST_WAIT_MS) for the manifest before it answers, so an
 *   unknown model or an unreachable registry is a plain error with its status (404, 502)
 *   instead of a 200 stream ending in an error line.
 *
 * A job's steps: each status ("pulling manifest", "verifying sha256 digest", ...) is one
 * step; a layer ("pulling <digest12>") is one step updated in place as it downloads. A
 * waiter remembers how many steps it sent and the last progress of the last one.
 *
 * Threads: handlers on MHD threads, jobs on their own. pulls->mu guards the job list and
 * each job's refs/waiters/listed; job->mu guards the job's steps and outcome. Never both
 * at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "registry/registry.h"
#include "util/log.h"

#define MANIFEST_WAIT_MS 30000
#define WAIT_SLICE_MS 250

struct pull_step {
    char status[48];
    char digest[7 + NAMES_HEX_LEN + 1]; /* "" for a status */
    uint64_t total, completed;
};

struct pull_job {
    struct api_pulls *mgr;
    char name[NAMES_FULL_MAX + 1];   /* host/namespace/model:tag: the key */
    char asked[NAMES_FULL_MAX + 16]; /* as the first client wrote it (a scheme included) */
    bool insecure;
    atomic_bool cancel;
    atomic_bool finished;

    pthread_mutex_t mu;              /* guards what follows, up to refs */
    pthread_cond_t cond;             /* a step was added or changed, or the job finished */
    struct pull_step *steps;
    size_t n_steps, cap;
    uint64_t version;                /* bumped on every change */
    bool past_manifest;              /* a step after "pulling manifest" came */
    int rc;
    enum registry_fail fail;
    char err[256];

    int refs;                        /* under mgr->mu: the thread + the waiters */
    int waiters;                     /* under mgr->mu */
    bool listed;                     /* under mgr->mu: in mgr->jobs, open to attach */
    struct pull_job *next;           /* under mgr->mu */
};

struct api_pulls {
    struct store *st;
    uint64_t part_min;               /* BELLOWS_PULL_PART_MIN: a test knob, not in serve --help; 0: the default */
    pthread_mutex_t mu;
    pthread_cond_t idle;             /* running went to 0 */
    struct pull_job *jobs;           /* the attachable ones */
    int running;                     /* job threads alive */
};

/* ---- jobs ---------------------------------------------------------------------------------- */

static void job_free(struct pull_job *j)
{
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cond);
    free(j->steps);
    free(j);
}

/* With mgr->mu held. */
static void unlist(struct api_pulls *m, struct pull_job *j)
{
    if (!j->listed)
        return;
    for (struct pull_job **pp = &m->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    j->listed = false;
}

/* Drop a reference (mgr->mu held); returns true when J must be freed (after unlocking). */
static bool unref_locked(struct pull_job *j)
{
    return --j->refs == 0;
}

static void on_progress(void *ud, const struct registry_progress *ev)
{
    struct pull_job *j = ud;
    pthread_mutex_lock(&j->mu);
    struct pull_step *s = NULL;
    if (ev->digest) /* a layer: its step is updated in place (usually the last one) */
        for (size_t i = j->n_steps; i-- > 0 && !s;)
            if (!strcmp(j->steps[i].digest, ev->digest))
                s = &j->steps[i];
    if (!s) {
        if (j->n_steps == j->cap) {
            size_t cap = j->cap ? 2 * j->cap : 16;
            struct pull_step *p = realloc(j->steps, cap * sizeof *p);
            if (!p) {
                pthread_mutex_unlock(&j->mu);
                return; /* out of memory: this step is not shown */
            }
            j->steps = p;
            j->cap = cap;
        }
        s = &j->steps[j->n_steps++];
        memset(s, 0, sizeof *s);
        snprintf(s->status, sizeof s->status, "%s", ev->status);
        if (ev->digest)
            snprintf(s->digest, sizeof s->digest, "%s", ev->digest);
    }
    s->total = ev->total;
    s->completed = ev->completed;
    if (strcmp(ev->status, "pulling manifest"))
        j->past_manifest = true;
    j->version++;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);
}

static void *job_main(void *arg)
{
    struct pull_job *j = arg;
    struct api_pulls *m = j->mgr;
    struct registry_pull_opts o = {
        .insecure = j->insecure,
        .cancel = &j->cancel,
        .progress = on_progress,
        .progress_ud = j,
        .part_min = m->part_min,
    };
    struct bw_err err = {0};
    enum registry_fail fail = REGISTRY_FAIL_NONE;
    int rc = registry_pull(m->st, j->asked, &o, &fail, &err);

    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->fail = fail;
    snprintf(j->err, sizeof j->err, "%s", rc ? err.msg : "");
    atomic_store(&j->finished, true);
    j->version++;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);

    pthread_mutex_lock(&m->mu);
    unlist(m, j);
    bool last = unref_locked(j);
    if (--m->running == 0)
        pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->mu);
    if (last)
        job_free(j);
    return NULL;
}

/* The running pull of NAME, or a new one. Returns it with a waiter's reference, or NULL
 * (out of memory, no thread). */
static struct pull_job *job_attach(struct api_pulls *m, const char *name, const char *asked, bool insecure,
                                   bool *attached)
{
    pthread_mutex_lock(&m->mu);
    struct pull_job *j = m->jobs;
    while (j && (strcmp(j->name, name) || j->insecure != insecure))
        j = j->next;
    *attached = j != NULL;
    if (j) {
        j->refs++;
        j->waiters++;
        pthread_mutex_unlock(&m->mu);
        return j;
    }
    j = calloc(1, sizeof *j);
    if (!j) {
        pthread_mutex_unlock(&m->mu);
        return NULL;
    }
    j->mgr = m;
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->asked, sizeof j->asked, "%s", asked);
    j->insecure = insecure;
    atomic_init(&j->cancel, false);
    atomic_init(&j->finished, false);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->refs = 2; /* the thread and this waiter */
    j->waiters = 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, job_main, j)) {
        pthread_attr_destroy(&attr);
        pthread_mutex_unlock(&m->mu);
        job_free(j);
        return NULL;
    }
    pthread_attr_destroy(&attr);
    m->running++;
    j->listed = true;
    j->next = m->jobs;
    m->jobs = j;
    pthread_mutex_unlock(&m->mu);
    return j;
}

/* A waiter is done with J. The last waiter of an unfinished job cancels it. */
static void job_leave(struct pull_job *j)
{
    struct api_pulls *m = j->mgr;
    pthread_mutex_lock(&m->mu);
    if (--j->waiters == 0 && !atomic_load(&j->finished)) {
        LOG(LOG_INFO, "api", "pull of %s: nobody is waiting any more; cancelling (partial files are kept)", j->name);
        atomic_store(&j->cancel, true);
        unlist(m, j); /* a new request starts a new pull, which resumes from the partial files */
    }
    bool last = unref_locked(j);
    pthread_mutex_unlock(&m->mu);
    if (last)
        job_free(j);
}

int api__pulls_new(struct store *st, struct api_pulls **out)
{
    struct api_pulls *m = calloc(1, sizeof *m);
    if (!m)
        return BW_ENOMEM;
    m->st = st;
    const char *v = getenv("BELLOWS_PULL_PART_MIN");
    if (v && *v)
        m->part_min = strtoull(v, NULL, 10);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->idle, NULL);
    *out = m;
    return BW_OK;
}

void api__pulls_free(struct api_pulls *m)
{
    if (!m)
        return;
    /* Cancel every pull and wait for their threads: they use the store. */
    pthread_mutex_lock(&m->mu);
    for (struct pull_job *j = m->jobs; j; j = j->next)
        atomic_store(&j->cancel, true);
    while (m->running > 0) {
        for (struct pull_job *j = m->jobs; j; j = j->next)
            atomic_store(&j->cancel, true);
        struct timespec dl = clock_deadline(WAIT_SLICE_MS);
        pthread_cond_timedwait(&m->idle, &m->mu, &dl);
    }
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->idle);
    free(m);
}

/* ---- the reply --------------------------------------------------------------------------------- */

/* Ollama's ProgressResponse (empty fields left out, as its omitempty does). */
static json_t *step_json(const struct pull_step *s)
{
    json_t *o = json_pack("{s:s}", "status", s->status);
    if (s->digest[0]) {
        json_object_set_new(o, "digest", json_string(s->digest));
        if (s->total)
            json_object_set_new(o, "total", json_integer((json_int_t)s->total));
        if (s->completed)
            json_object_set_new(o, "completed", json_integer((json_int_t)s->completed));
    }
    return o;
}

static int status_for(enum registry_fail f)
{
    switch (f) {
    case REGISTRY_FAIL_INVALID:
        return 400;
    case REGISTRY_FAIL_NOTFOUND:
        return 404;
    case REGISTRY_FAIL_AUTH:
    case REGISTRY_FAIL_NETWORK:
    case REGISTRY_FAIL_DIGEST:
        return 502; /* the registry's fault, not the client's nor ours */
    case REGISTRY_FAIL_NOSPACE:
        return 507;
    default:
        return 500;
    }
}

struct pull_waiter {
    struct api *a;
    struct http_request *req;
    struct pull_job *job;
    size_t next;             /* steps sent */
    uint64_t last_completed; /* of step next - 1 when sent */
    uint64_t seen;           /* job->version last looked at */
    struct strbuf out;
    size_t out_off;
    bool ended;
};

/* With job->mu held: append what changed since the last look. */
static void collect(struct pull_waiter *w)
{
    struct pull_job *j = w->job;
    if (w->next > 0) {
        const struct pull_step *s = &j->steps[w->next - 1];
        if (s->digest[0] && s->completed != w->last_completed) {
            strbuf_add_json(&w->out, step_json(s));
            w->last_completed = s->completed;
        }
    }
    for (; w->next < j->n_steps; w->next++) {
        strbuf_add_json(&w->out, step_json(&j->steps[w->next]));
        w->last_completed = j->steps[w->next].completed;
    }
    w->seen = j->version;
    if (atomic_load(&j->finished)) {
        if (j->rc) /* after the 200 went out: an error line, as Ollama streams it */
            strbuf_add_json(&w->out, json_pack("{s:s}", "error", j->err));
        w->ended = true;
    }
}

static ssize_t pull_read(void *ud, char *buf, size_t max)
{
    struct pull_waiter *w = ud;
    while (w->out_off == w->out.len) {
        if (w->ended)
            return 0;
        w->out.len = w->out_off = 0;
        struct pull_job *j = w->job;
        pthread_mutex_lock(&j->mu);
        if (j->version == w->seen && !atomic_load(&j->finished)) {
            struct timespec dl = clock_deadline(WAIT_SLICE_MS);
            pthread_cond_timedwait(&j->cond, &j->mu, &dl);
        }
        collect(w);
        pthread_mutex_unlock(&j->mu);
        if (w->out.len == 0 && http_client_gone(w->req))
            return -1;
    }
    size_t n = w->out.len - w->out_off;
    if (n > max)
        n = max;
    memcpy(buf, w->out.s + w->out_off, n);
    w->out_off += n;
    return (ssize_t)n;
}

static void pull_done(void *ud, bool completed)
{
    struct pull_waiter *w = ud;
    metrics_request(&w->a->metrics, "/api/pull", completed ? 200 : 499);
    job_leave(w->job);
    strbuf_free(&w->out);
    free(w);
}

/* Wait until PRED holds for J or the client leaves (false) or LIMIT_MS passes. */
static bool wait_job(struct http_request *req, struct pull_job *j, bool until_finished, int64_t limit_ms)
{
    int64_t end = clock_mono_ms() + limit_ms;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        bool done = atomic_load(&j->finished) || (!until_finished && j->past_manifest);
        if (done || clock_mono_ms() >= end)
            break;
        struct timespec dl = clock_deadline(WAIT_SLICE_MS);
        pthread_cond_timedwait(&j->cond, &j->mu, &dl);
        pthread_mutex_unlock(&j->mu);
        if (http_client_gone(req))
            return false;
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return true;
}

static const char *str_of(const json_t *body, const char *key)
{
    const char *s = json_string_value(json_object_get(body, key));
    return s && *s ? s : NULL;
}

void ollama_pull(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    if (!body) {
        api__reply_error(req, 400, "%s", msg);
        metrics_request(&a->metrics, "/api/pull", 400);
        return;
    }
    const char *name = str_of(body, "model");
    if (!name)
        name = str_of(body, "name");
    bool insecure = json_is_true(json_object_get(body, "insecure"));
    bool stream = !json_is_false(json_object_get(body, "stream"));
    struct registry_ref ref;
    struct bw_err err;
    if (!name || registry_ref_parse(name, insecure, &ref, &err)) {
        api__reply_error(req, 400, "%s", name ? err.msg : "model is required");
        metrics_request(&a->metrics, "/api/pull", 400);
        json_decref(body);
        return;
    }
    char full[NAMES_FULL_MAX + 1], asked[NAMES_FULL_MAX + 16];
    names_full(&ref.name, full);
    snprintf(asked, sizeof asked, "%s", name);
    json_decref(body);

    bool attached;
    struct pull_job *j = job_attach(a->pulls, full, asked, insecure, &attached);
    if (!j) {
        api__reply_error(req, 500, "cannot start the pull");
        metrics_request(&a->metrics, "/api/pull", 500);
        return;
    }
    LOG(LOG_INFO, "api", "request_id=%s pull %s%s", req->request_id, full, attached ? " (joining the running pull)" : "");
    if (!wait_job(req, j, !stream, stream ? MANIFEST_WAIT_MS : INT64_MAX / 4)) {
        job_leave(j); /* the client went away */
        metrics_request(&a->metrics, "/api/pull", 499);
        return;
    }
    if (atomic_load(&j->finished) && (j->rc || !stream)) {
        int status = j->rc ? status_for(j->fail) : 200;
        if (j->rc)
            api__reply_error(req, status, "%s", j->err);
        else
            api__reply_json(req, 200, json_pack("{s:s}", "status", "success"));
        metrics_request(&a->metrics, "/api/pull", status);
        job_leave(j);
        return;
    }
    struct pull_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        job_leave(j);
        api__reply_error(req, 500, "out of memory");
        return;
    }
    w->a = a;
    w->req = req;
    w->job = j;
    if (http_respond_stream(req, 200, "application/x-ndjson", pull_read, pull_done, w, NULL) != BW_OK) {
        job_leave(j);
        free(w);
    }
}

void ollama_push(struct api *a, struct http_request *req)
{
    api__reply_error(req, 501,
                     "pushing is not supported: Bellows pulls models but does not publish them. Its store has "
                     "Ollama's layout, so `OLLAMA_MODELS=%s ollama push MODEL` pushes a model from it",
                     store_root(a->cfg.store));
    metrics_request(&a->metrics, "/api/push", 501);
}
