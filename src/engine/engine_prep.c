/* engine_prep.c -- see engine_prep.h. One thread, started on first use, takes preparations
 * in order from a to-do list and puts them on a done list (both under one mutex), writing a
 * byte to a pipe the loop polls. Everything else -- finding a request by id, cancelling,
 * finishing -- is the loop's: a preparation record is freed only by the loop, so the loop
 * may set its cancel flag at any time without a lock. */
#define _GNU_SOURCE
#include "engine/engine_prep.h"
#include "engine/engine_int.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

#define PREP_ASYNC_BYTES_DEFAULT (256 * 1024)
#define PREP_TIMEOUT_NS_DEFAULT (30 * (int64_t)1000000000)
#define PREP_MSG_BYTES 16 /* what one message weighs on top of its text: the template's framing */

struct prep {
    struct prep *next;   /* the to-do or the done list (under the lock) */
    struct prep *all;    /* every preparation in flight (the loop's alone) */
    struct prep_ctl ctl;
    struct engine_request r; /* the caller's, borrowed until release */
    engine_release_fn release;
    void *ud;
    struct job *j;
    const struct chat_template *tmpl;
    struct chat_template *own_tmpl; /* freed by the thread once rendered */
    bool paused;         /* engine_pause while preparing: applied once queued */
    int rc;              /* engine__prepare's result */
    struct bw_err err;
    char *rendered;
};

struct prep_state {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct prep *todo, *todo_tail, *done, *done_tail; /* under mu */
    bool stop;                                        /* under mu */
    atomic_int n_done;
    int wake[2];  /* pipe: [0] polled by the loop, [1] written by the thread */
    struct prep *all; /* loop only */
    int n_all;        /* loop only */
};

bool engine__prep_stop(struct prep_ctl *c)
{
    if (!c)
        return false;
    if (atomic_load_explicit(&c->cancel, memory_order_relaxed))
        return true;
    if (clock_mono_ns() > c->deadline_ns) {
        atomic_store(&c->timed_out, true);
        return true;
    }
    return false;
}

static void push(struct prep **head, struct prep **tail, struct prep *p)
{
    p->next = NULL;
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static void *prep_main(void *arg)
{
    struct engine *e = arg;
    struct prep_state *ps = e->prep;
    pthread_mutex_lock(&ps->mu);
    for (;;) {
        while (!ps->todo && !ps->stop)
            pthread_cond_wait(&ps->cv, &ps->mu);
        if (ps->stop)
            break;
        struct prep *p = ps->todo;
        ps->todo = p->next;
        if (!ps->todo)
            ps->todo_tail = NULL;
        pthread_mutex_unlock(&ps->mu);

        int64_t t0 = clock_mono_ns();
        if (engine__prep_stop(&p->ctl))
            p->rc = bw_errf(&p->err, BW_EBUSY, "preparation stopped"); /* cancelled while waiting */
        else
            p->rc = engine__prepare(e, &p->r, p->tmpl, p->j, &p->ctl, &p->rendered, &p->err);
        chat_template_free(p->own_tmpl);
        p->own_tmpl = NULL;
        p->tmpl = NULL;
        LOG_REQ(LOG_DEBUG, p->r.req_id, "engine", "prepared off the loop in %.1f ms (%s)", (clock_mono_ns() - t0) / 1e6,
                p->rc == BW_OK ? "ok" : p->err.msg);

        pthread_mutex_lock(&ps->mu);
        push(&ps->done, &ps->done_tail, p);
        atomic_fetch_add(&ps->n_done, 1);
        char b = 1;
        ssize_t w = write(ps->wake[1], &b, 1); /* a full pipe is awake already */
        (void)w;
    }
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

static int prep_start(struct engine *e)
{
    struct prep_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return BW_ENOMEM;
    if (pipe2(ps->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        free(ps);
        return BW_EIO;
    }
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->cv, NULL);
    e->prep = ps;
    if (pthread_create(&ps->thread, NULL, prep_main, e) != 0) {
        close(ps->wake[0]);
        close(ps->wake[1]);
        pthread_mutex_destroy(&ps->mu);
        pthread_cond_destroy(&ps->cv);
        free(ps);
        e->prep = NULL;
        return BW_ENOMEM;
    }
    return BW_OK;
}

/* Bytes of text a request brings (early out past limit): what its preparation costs. */
static bool is_heavy(const struct engine *e, const struct engine_request *r)
{
    int64_t limit = e->prep_async_bytes ? e->prep_async_bytes : PREP_ASYNC_BYTES_DEFAULT;
    if (limit < 0 || (r->kind == ENGINE_EMBED && r->n_input_tokens > 0))
        return false;
    int64_t bytes = 0;
    if (r->prompt)
        bytes += (int64_t)strlen(r->prompt);
    if (r->system)
        bytes += (int64_t)strlen(r->system);
    if (r->tools_json)
        bytes += (int64_t)strlen(r->tools_json);
    for (size_t i = 0; i < r->n_msgs && bytes < limit; i++) {
        const struct policy_msg *m = &r->msgs[i];
        bytes += PREP_MSG_BYTES + (m->content ? (int64_t)strlen(m->content) : 0) + (m->json ? (int64_t)strlen(m->json) : 0);
    }
    return bytes >= limit;
}

void engine_prep_config(struct engine *e, int64_t async_bytes, int64_t timeout_ms)
{
    e->prep_async_bytes = async_bytes;
    e->prep_timeout_ns = timeout_ms > 0 ? timeout_ms * 1000000 : 0;
}

int engine_wake_fd(const struct engine *e) { return e->prep ? e->prep->wake[0] : -1; }

int engine_submit_owned(struct engine *e, const struct engine_request *r, engine_release_fn release, void *ud,
                        struct bw_err *err)
{
    if (!is_heavy(e, r)) {
        int rc = engine_submit(e, r, err);
        release(ud);
        return rc;
    }
    struct job *j;
    const struct chat_template *t;
    struct chat_template *own;
    int rc = engine__submit_begin(e, r, true, &j, &t, &own, err);
    if (rc) {
        release(ud);
        return rc;
    }
    struct prep *p = calloc(1, sizeof *p);
    if (!p || (!e->prep && prep_start(e) != BW_OK)) {
        /* No thread: prepared here, as engine_submit would. */
        free(p);
        char *rendered;
        rc = engine__prepare(e, r, t, j, NULL, &rendered, err);
        chat_template_free(own);
        if (rc)
            engine__job_free(j);
        else
            rc = engine__submit_finish(e, r, j, rendered, err);
        release(ud);
        return rc;
    }
    int64_t timeout = e->prep_timeout_ns ? e->prep_timeout_ns : PREP_TIMEOUT_NS_DEFAULT;
    p->ctl.deadline_ns = j->t_submit + timeout;
    p->r = *r;
    p->release = release;
    p->ud = ud;
    p->j = j;
    p->tmpl = t;
    p->own_tmpl = own;
    struct prep_state *ps = e->prep;
    p->all = ps->all;
    ps->all = p;
    ps->n_all++;
    LOG_REQ(LOG_DEBUG, r->req_id, "engine", "preparing off the loop (%zu messages)", r->n_msgs);
    pthread_mutex_lock(&ps->mu);
    push(&ps->todo, &ps->todo_tail, p);
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    return BW_OK;
}

static struct prep *find(const struct engine *e, uint64_t req_id)
{
    for (struct prep *p = e->prep ? e->prep->all : NULL; p; p = p->all)
        if (p->r.req_id == req_id)
            return p;
    return NULL;
}

bool engine__prep_has(const struct engine *e, uint64_t req_id) { return find(e, req_id) != NULL; }
int engine__prep_count(const struct engine *e) { return e->prep ? e->prep->n_all : 0; }

bool engine__prep_ready(const struct engine *e)
{
    return e->prep && atomic_load(&e->prep->n_done) > 0;
}

bool engine__prep_cancel(struct engine *e, uint64_t req_id)
{
    struct prep *p = find(e, req_id);
    if (!p)
        return false;
    atomic_store(&p->ctl.cancel, true);
    return true;
}

bool engine__prep_pause(struct engine *e, uint64_t req_id, bool paused)
{
    struct prep *p = find(e, req_id);
    if (!p)
        return false;
    p->paused = paused;
    return true;
}

static void unlink_all(struct prep_state *ps, struct prep *p)
{
    for (struct prep **pp = &ps->all; *pp; pp = &(*pp)->all)
        if (*pp == p) {
            *pp = p->all;
            ps->n_all--;
            return;
        }
}

static void emit_end(struct engine *e, struct job *j, int code, const char *msg)
{
    struct engine_event ev = {.req_id = j->req_id, .stats = &j->st};
    if (msg) {
        LOG_REQ(LOG_WARN, j->req_id, "engine", "failed: %s", msg);
        ev.type = ENGINE_EV_ERROR;
        ev.text = msg;
        ev.len = strlen(msg);
        ev.err_code = code;
    } else {
        ev.type = ENGINE_EV_DONE;
        j->st.done_reason = "cancel";
        j->st.total_ns = clock_mono_ns() - j->t_submit;
    }
    e->emit(e->emit_ud, &ev);
}

/* On the loop: a preparation that ended becomes a queued job, or ends its request. */
static void finish(struct engine *e, struct prep *p)
{
    struct job *j = p->j;
    if (atomic_load(&p->ctl.cancel)) {
        emit_end(e, j, 0, NULL);
        engine__job_free(j);
        free(p->rendered);
    } else if (p->rc && atomic_load(&p->ctl.timed_out)) {
        char msg[200];
        int64_t timeout = e->prep_timeout_ns ? e->prep_timeout_ns : PREP_TIMEOUT_NS_DEFAULT;
        snprintf(msg, sizeof msg, "preparing the prompt took longer than %.3g s (%zu messages): refused; send a "
                 "shorter chat", timeout / 1e9, p->r.n_msgs);
        emit_end(e, j, BW_ETOOLONG, msg);
        engine__job_free(j);
        free(p->rendered);
    } else if (p->rc) {
        emit_end(e, j, p->rc, p->err.msg);
        engine__job_free(j);
    } else {
        struct bw_err err;
        if (engine__submit_finish(e, &p->r, j, p->rendered, &err) != BW_OK) {
            struct job stub = {.req_id = p->r.req_id}; /* j is freed */
            emit_end(e, &stub, err.code, err.msg);
        } else if (p->paused) {
            engine_pause(e, p->r.req_id, true);
        }
    }
    p->release(p->ud);
    free(p);
}

void engine__prep_collect(struct engine *e)
{
    struct prep_state *ps = e->prep;
    if (!ps || atomic_load(&ps->n_done) == 0)
        return;
    pthread_mutex_lock(&ps->mu);
    char buf[64];
    while (read(ps->wake[0], buf, sizeof buf) > 0)
        ;
    struct prep *list = ps->done;
    ps->done = ps->done_tail = NULL;
    atomic_store(&ps->n_done, 0);
    pthread_mutex_unlock(&ps->mu);
    while (list) {
        struct prep *p = list;
        list = p->next;
        unlink_all(ps, p);
        finish(e, p);
    }
}

void engine__prep_shutdown(struct engine *e)
{
    struct prep_state *ps = e->prep;
    if (!ps)
        return;
    for (struct prep *p = ps->all; p; p = p->all)
        atomic_store(&p->ctl.cancel, true); /* the running one stops at its next check */
    pthread_mutex_lock(&ps->mu);
    ps->stop = true;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    pthread_join(ps->thread, NULL);
    while (ps->all) {
        struct prep *p = ps->all;
        ps->all = p->all;
        engine__job_free(p->j);
        free(p->rendered);
        chat_template_free(p->own_tmpl);
        p->release(p->ud);
        free(p);
    }
    close(ps->wake[0]);
    close(ps->wake[1]);
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->cv);
    free(ps);
    e->prep = NULL;
}
