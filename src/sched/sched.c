/* sched.c -- see sched.h. Reading order: runners (spawn, reader thread, destroy), calls,
 * acquire/release, the reaper, listing. */
#define _GNU_SOURCE
#include "sched/sched.h"
#include "util/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proto/client.h"
#include "sched/devices.h"
#include "sched/placement.h"
#include "sched/estimate.h"
#include "sched/plan.h"
#include "util/log.h"

struct evnode {
    struct proto_event ev;
    struct evnode *next;
};

/* A call's queue holds at most this many bytes of events (text + bookkeeping). It fills
 * only when the consumer stops reading (an HTTP client that does not read its stream: the
 * HTTP edge stops pulling once its own bounded buffer is full); then the call is cancelled
 * in the runner and ends with an error, so a stalled client never grows server memory. */
#define SCHED_CALL_QUEUE_MAX ((size_t)256 << 10)
/* Before that: past PAUSE bytes the runner is asked to stop stepping the call (it keeps its
 * KV and its place), below RESUME it goes on. So a client that stops reading pauses its own
 * generation, costs nobody else anything, and loses nothing when it reads again; only the
 * HTTP edge's write timeout (BELLOWS_WRITE_TIMEOUT) ends it. The bound above is the backstop
 * for what the runner sent before the pause reached it. */
#define SCHED_CALL_QUEUE_PAUSE ((size_t)64 << 10)
#define SCHED_CALL_QUEUE_RESUME ((size_t)16 << 10)

struct sched_call {
    uint64_t id;
    struct sched_runner *r;
    struct evnode *head, *tail; /* guarded by r->mu */
    size_t queued_bytes;        /* of the events in the queue; guarded by r->mu */
    bool finished;              /* DONE or ERROR was queued */
    bool overflowed;            /* ended by a full queue: the runner may still be working on it */
    bool paused;                /* PAUSE sent (queue past SCHED_CALL_QUEUE_PAUSE); guarded by r->mu */
    pthread_cond_t cond;
    struct sched_call *next;    /* r->calls */
};

enum runner_state { RUNNER_LOADING, RUNNER_READY };

struct sched_runner {
    struct sched *s;
    char *name, *path;
    bool use_mmap, flash_attn;
    int num_gpu;
    uint64_t size_est;    /* bytes allocated at load (weights + initial pool + compute) */
    uint64_t reserved;    /* bytes admission promised it (plan.h: growth budget + resize transient) */
    /* guarded by s->mu */
    enum runner_state state;
    int refs;
    int64_t expires_at;   /* monotonic ns; INT64_MAX = forever */
    bool expire_idle;     /* sched_expire: unload at the last release, whatever its keep_alive */
    bool linked;          /* in s->runners */
    struct sched_runner *next;
    /* set once at load */
    struct runner_client *client;
    pid_t pid;
    pthread_t reader;
    bool reader_started;
    /* guarded by mu */
    pthread_mutex_t mu;
    struct sched_call *calls;
    bool dead;
    char dead_msg[320];
    /* set once at load */
    struct placement place; /* where its layers are, the RPC servers it uses */
};

struct load_count {
    char name[NAMES_FULL_MAX + 1];
    int loads;
};

struct sched {
    struct sched_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a load finished, a runner was released or unloaded */
    struct sched_runner *runners;
    int depth;              /* requests acquired or waiting */
    struct load_count loads[64];
    struct sched_counters counters;
    struct rpc_set rpc;     /* BELLOWS_RPC's servers (placement.h) */
    uint64_t next_id;
    pthread_t reaper;
    bool stopping;
    pthread_cond_t reaper_wake;
};

/* ---- runners --------------------------------------------------------------------------- */

static void describe_exit(int status, char *buf, size_t len)
{
    if (status == -1)
        snprintf(buf, len, "it exited");
    else if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status %d", status);
}

/* Sorts the runner's events into its calls' queues until the socket closes. */
static void *reader_main(void *arg)
{
    struct sched_runner *r = arg;
    for (;;) {
        struct proto_event ev;
        struct bw_err err;
        int rc = runner_client_recv(r->client, &ev, -1, &err);
        if (rc != 1)
            break;
        pthread_mutex_lock(&r->mu);
        struct sched_call *c = r->calls;
        while (c && c->id != ev.id)
            c = c->next;
        bool overflow = false;
        if (c && !c->finished && c->queued_bytes + sizeof(struct evnode) + ev.len > SCHED_CALL_QUEUE_MAX) {
            /* The consumer stopped reading: end the call here (an error in place of the rest)
             * and stop the runner's work on it; what is queued still comes first. */
            proto_event_free(&ev);
            ev = (struct proto_event){.type = PROTO_EV_ERROR, .id = c->id, .err_code = BW_EBUSY,
                                      .text = "the client stopped reading: generation cancelled"};
            ev.len = strlen(ev.text);
            overflow = c->overflowed = true;
        }
        if (c && !c->finished) {
            struct evnode *n = malloc(sizeof *n);
            if (n) {
                c->queued_bytes += sizeof *n + ev.len;
                n->ev = ev;
                n->next = NULL;
                if (c->tail)
                    c->tail->next = n;
                else
                    c->head = n;
                c->tail = n;
                c->finished = ev.type == PROTO_EV_DONE || ev.type == PROTO_EV_ERROR;
                pthread_cond_signal(&c->cond);
            } else {
                proto_event_free(&ev);
            }
        } else {
            proto_event_free(&ev); /* a call that ended early (client went away) */
        }
        uint64_t cancel_id = overflow ? c->id : 0;
        uint64_t pause_id = 0;
        if (c && !c->finished && !c->paused && c->queued_bytes > SCHED_CALL_QUEUE_PAUSE) {
            c->paused = true;
            pause_id = c->id;
        }
        pthread_mutex_unlock(&r->mu);
        if (pause_id) {
            /* Never blocks (see below); when it cannot go now, the next event tries again. */
            struct proto_request pause = {.type = PROTO_REQ_PAUSE, .id = pause_id};
            bool sent = runner_client_try_send(r->client, &pause);
            pthread_mutex_lock(&r->mu);
            for (struct sched_call *p = r->calls; p; p = p->next)
                if (p->id == pause_id)
                    p->paused = sent;
            pthread_mutex_unlock(&r->mu);
            if (sent)
                LOG_REQ(LOG_INFO, pause_id, "sched", "paused: the client stopped reading (%zu bytes queued)",
                        SCHED_CALL_QUEUE_PAUSE);
        }
        if (cancel_id) {
            /* Never blocks this thread (it must keep reading, or the runner could block writing
             * to us while we wait to write to it); if it cannot go now, sched_call_end sends it. */
            struct proto_request cancel = {.type = PROTO_REQ_CANCEL, .id = cancel_id};
            runner_client_try_send(r->client, &cancel);
            LOG_REQ(LOG_WARN, cancel_id, "sched", "event queue full (%zu bytes): the client stopped reading; cancelled",
                    SCHED_CALL_QUEUE_MAX);
        }
    }
    /* EOF: the runner exited (or we closed it). Find out why, for the error message. */
    int status = -1;
    for (int i = 0; i < 100; i++) {
        pid_t p = waitpid(r->pid, &status, WNOHANG);
        if (p == r->pid || p < 0)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&r->mu);
    r->dead = true;
    describe_exit(status, r->dead_msg, sizeof r->dead_msg);
    if (r->place.rpc_used) { /* ggml's client aborts the runner when an RPC server goes away */
        size_t at = strlen(r->dead_msg);
        snprintf(r->dead_msg + at, sizeof r->dead_msg - at, " (it used the RPC servers %.100s: one may have stopped)",
                 r->place.rpc);
    }
    for (struct sched_call *c = r->calls; c; c = c->next)
        pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&r->mu);

    struct sched *s = r->s;
    pthread_mutex_lock(&s->mu);
    bool unexpected = r->linked && !s->stopping;
    if (unexpected)
        s->counters.runner_deaths++;
    if (unexpected && r->place.rpc_used)
        rpc_set_mark_suspect(&s->rpc, r->place.rpc_used);
    pthread_cond_broadcast(&s->reaper_wake);
    pthread_mutex_unlock(&s->mu);
    if (unexpected)
        LOG(LOG_WARN, "sched", "runner for %s (pid %d) stopped: %s", r->name, (int)r->pid, r->dead_msg);
    return NULL;
}

/* Ends a runner that is unlinked and has no references: close the socket (the runner exits
 * on EOF), join the reader, reap. */
static void runner_destroy(struct sched_runner *r)
{
    if (r->client) {
        shutdown(runner_client_fd(r->client), SHUT_RDWR);
        if (r->reader_started)
            pthread_join(r->reader, NULL);
        runner_client_close(r->client);
        LOG(LOG_INFO, "sched", "unloaded %s (pid %d)", r->name, (int)r->pid);
    }
    pthread_mutex_destroy(&r->mu);
    free(r->name);
    free(r->path);
    free(r);
}

static void unlink_runner(struct sched *s, struct sched_runner *r)
{
    for (struct sched_runner **pp = &s->runners; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    r->linked = false;
    s->counters.unloads++;
    pthread_cond_broadcast(&s->changed);
}

/* ---- calls --------------------------------------------------------------------------- */

int sched_call_start(struct sched_runner *r, struct proto_request *req, struct sched_call **out, struct bw_err *err)
{
    struct sched_call *c = calloc(1, sizeof *c);
    if (!c)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    pthread_cond_init(&c->cond, NULL);
    c->r = r;
    pthread_mutex_lock(&r->s->mu);
    c->id = ++r->s->next_id;
    pthread_mutex_unlock(&r->s->mu);
    req->id = c->id;
    req->req.req_id = c->id;

    pthread_mutex_lock(&r->mu);
    bool dead = r->dead;
    if (!dead) {
        c->next = r->calls;
        r->calls = c;
    }
    pthread_mutex_unlock(&r->mu);
    int rc = dead ? bw_errf(err, BW_ERUNNER, "model runner stopped: %s", r->dead_msg)
                  : runner_client_send(r->client, req, err);
    if (rc) {
        if (!dead)
            sched_call_end(c);
        else
            free(c);
        if (rc == BW_EIO)
            rc = bw_errf(err, BW_ERUNNER, "model runner stopped: it closed its socket");
        return rc;
    }
    *out = c;
    return BW_OK;
}

int sched_call_next(struct sched_call *c, struct proto_event *ev, int timeout_ms, struct bw_err *err)
{
    struct sched_runner *r = c->r;
    struct timespec until = clock_deadline(timeout_ms >= 0 ? timeout_ms : 0);
    pthread_mutex_lock(&r->mu);
    while (!c->head && !r->dead) {
        int w = timeout_ms < 0 ? pthread_cond_wait(&c->cond, &r->mu) : pthread_cond_timedwait(&c->cond, &r->mu, &until);
        if (w == ETIMEDOUT && !c->head) {
            pthread_mutex_unlock(&r->mu);
            return 0;
        }
    }
    struct evnode *n = c->head;
    if (n) {
        c->head = n->next;
        if (!c->head)
            c->tail = NULL;
        c->queued_bytes -= sizeof *n + n->ev.len;
    }
    bool resume = c->paused && !c->finished && !r->dead && c->queued_bytes < SCHED_CALL_QUEUE_RESUME;
    if (resume)
        c->paused = false;
    int rc = n ? 1 : bw_errf(err, BW_ERUNNER, "model runner stopped: %s", r->dead_msg);
    pthread_mutex_unlock(&r->mu);
    if (resume) {
        struct proto_request go = {.type = PROTO_REQ_RESUME, .id = c->id};
        runner_client_send(r->client, &go, NULL);
        LOG_REQ(LOG_INFO, c->id, "sched", "resumed: the client reads again");
    }
    if (n) {
        *ev = n->ev;
        free(n);
    }
    return rc;
}

void sched_call_cancel(struct sched_call *c)
{
    pthread_mutex_lock(&c->r->mu);
    bool send = (!c->finished || c->overflowed) && !c->r->dead;
    pthread_mutex_unlock(&c->r->mu);
    if (send) {
        struct proto_request cancel = {.type = PROTO_REQ_CANCEL, .id = c->id};
        runner_client_send(c->r->client, &cancel, NULL);
        LOG_REQ(LOG_DEBUG, c->id, "sched", "cancel sent");
    }
}

void sched_call_end(struct sched_call *c)
{
    if (!c)
        return;
    sched_call_cancel(c); /* a call ended before DONE: nobody reads the rest */
    struct sched_runner *r = c->r;
    pthread_mutex_lock(&r->mu);
    for (struct sched_call **pp = &r->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&r->mu);
    while (c->head) {
        struct evnode *n = c->head;
        c->head = n->next;
        proto_event_free(&n->ev);
        free(n);
    }
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* ---- acquire / release ------------------------------------------------------------------ */

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Free memory of the GPUs ggml sees (none on a CPU build) and of the RPC servers' devices
 * at their last probe: layers placed there do not take RAM, so a model admitted with them
 * may use both. */
static uint64_t device_free_bytes(struct sched *s)
{
    struct estimate_device dev[16];
    size_t n = devices_list_gpus(dev, NULL, 16);
    uint64_t sum = rpc_set_free_bytes(&s->rpc);
    for (size_t i = 0; i < n; i++)
        sum += dev[i].free_bytes;
    return sum;
}

static struct sched_runner *find_runner(struct sched *s, const char *name)
{
    for (struct sched_runner *r = s->runners; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    return NULL;
}

static bool runner_is_dead(struct sched_runner *r)
{
    pthread_mutex_lock(&r->mu);
    bool d = r->dead;
    pthread_mutex_unlock(&r->mu);
    return d;
}

static void count_load(struct sched *s, const char *name)
{
    if (!name)
        name = ""; /* (never, but the compiler cannot know) */
    s->counters.loads++;
    for (size_t i = 0; i < sizeof s->loads / sizeof s->loads[0]; i++) {
        if (!s->loads[i].name[0])
            snprintf(s->loads[i].name, sizeof s->loads[i].name, "%s", name);
        if (!strcmp(s->loads[i].name, name)) {
            s->loads[i].loads++;
            return;
        }
    }
}

static int loads_of(const struct sched *s, const char *name)
{
    for (size_t i = 0; i < sizeof s->loads / sizeof s->loads[0]; i++)
        if (!strcmp(s->loads[i].name, name))
            return s->loads[i].loads;
    return 0;
}

/* The loaded set as the plan sees it (s->mu held). */
static size_t plan_snapshot(struct sched *s, const struct sched_model *m, struct plan_runner *pr,
                            struct sched_runner **who)
{
    size_t n = 0;
    int64_t now = clock_mono_ns();
    for (struct sched_runner *r = s->runners; r && n < PLAN_MAX_RUNNERS; r = r->next) {
        pr[n] = (struct plan_runner){
            .name = r->name,
            .loading = r->state == RUNNER_LOADING,
            .dead = r->state == RUNNER_READY && runner_is_dead(r),
            .same_options = r->use_mmap == m->use_mmap && r->flash_attn == m->flash_attn && r->num_gpu == m->num_gpu,
            .refs = r->refs,
            .reserved_bytes = r->reserved,
            .resident_bytes = r->size_est,
            .expires_in_ns = r->expires_at == INT64_MAX ? INT64_MAX : r->expires_at - now,
        };
        who[n++] = r;
    }
    return n;
}

/* Unlinks the runners the plan gives up; those nobody holds go to victims (destroyed
 * outside the lock), the others at their last release. */
static void plan_unload(struct sched *s, const struct plan *p, struct sched_runner **who,
                        struct sched_runner **victims, int *n_victims)
{
    for (int k = 0; k < p->n_unload; k++) {
        struct sched_runner *r = who[p->unload[k]];
        LOG(LOG_INFO, "sched", "unloading %s: %s", r->name, p->unload_why[k]);
        if (!strcmp(p->unload_why[k], "evicted to make room"))
            s->counters.evictions++;
        unlink_runner(s, r);
        if (r->refs == 0)
            victims[(*n_victims)++] = r;
    }
}

/* Starts the runner the plan admitted (s->mu held on entry and on return; released while
 * the process starts). */
static int load_runner(struct sched *s, const struct sched_model *m, const struct plan *p,
                       struct sched_runner **victims, int *n_victims, struct sched_runner **out, struct bw_err *err)
{
    struct sched_runner *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(m->name)) || !(r->path = strdup(m->path))) {
        if (r) {
            free(r->name);
            free(r);
        }
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    r->s = s;
    r->use_mmap = m->use_mmap;
    r->flash_attn = m->flash_attn;
    r->num_gpu = m->num_gpu;
    r->size_est = p->resident_bytes;
    r->reserved = p->reserve_bytes;
    r->state = RUNNER_LOADING;
    r->refs = 1;
    r->expires_at = INT64_MAX;
    r->linked = true;
    pthread_mutex_init(&r->mu, NULL);
    r->next = s->runners;
    s->runners = r;
    struct runner_spawn_opts o = {.n_gpu_layers = -1,
                                  .exe = s->cfg.exe,
                                  .model = m->path,
                                  .n_parallel = s->cfg.n_parallel,
                                  .n_threads = s->cfg.n_threads,
                                  .ctx_cap = s->cfg.ctx_cap,
                                  .kv_budget = p->kv_budget_cells,
                                  .flash_attn_off = !m->flash_attn,
                                  .kv_type = estimate_kv_type_name(p->kv_alt ? ESTIMATE_KV_Q8_0 : m->kv_type),
                                  .no_mmap = !m->use_mmap,
                                  .idle_shrink_s = s->cfg.idle_shrink_s,
                                  .kv_disk_dir = s->cfg.kv_disk_dir,
                                  .kv_disk_budget = s->cfg.kv_disk_budget};
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < *n_victims; i++)
        runner_destroy(victims[i]);
    *n_victims = 0;
    struct estimate_model em = {.weights_bytes = m->weights_bytes,
                                .kv_bytes_per_cell = p->kv_alt ? m->auto_kv_bytes_per_cell : m->kv_bytes_per_cell,
                                .n_ctx_train = m->n_ctx_train};
    /* Where the layers go: local GPUs and RPC servers' devices by their free memory (num_gpu
     * caps the total), the CPU for the rest; a CPU-only setup keeps the runner's defaults. */
    uint64_t reserve = em.kv_bytes_per_cell * ESTIMATE_INITIAL_POOL + estimate_compute_bytes(&em);
    int rc = placement_plan(&s->rpc, m->name, m->n_layer, m->weights_bytes, reserve, m->num_gpu,
                            s->cfg.memory_limit ? s->cfg.memory_limit : mem_available(), &r->place, err);
    o.n_gpu_layers = r->place.n_gpu_layers;
    o.tensor_split = r->place.tensor_split[0] ? r->place.tensor_split : NULL;
    o.rpc = r->place.rpc[0] ? r->place.rpc : NULL;
    if (p->over_measured)
        LOG(LOG_WARN, "sched", "model needs ~%" PRIu64 " MiB, less is available; loading anyway",
            p->reserve_bytes >> 20);
    LOG(LOG_INFO, "sched", "loading %s (%s), %" PRIu64 " MiB at load, %" PRIu64 " MiB reserved, KV budget %" PRId64
        " cells of %s%s", m->name, m->path, p->resident_bytes >> 20, p->reserve_bytes >> 20, o.kv_budget, o.kv_type,
        m->kv_type == ESTIMATE_KV_AUTO ? " (auto)" : "");
    struct proto_ready ready;
    int64_t t0 = clock_mono_ns();
    if (rc == BW_OK)
        rc = runner_client_spawn(&o, &r->client, &ready, err);

    pthread_mutex_lock(&s->mu);
    if (rc == BW_OK) {
        r->pid = ready.pid;
        r->state = RUNNER_READY;
        if (pthread_create(&r->reader, NULL, reader_main, r) == 0)
            r->reader_started = true;
        count_load(s, m->name);
        LOG(LOG_INFO, "sched", "loaded %s in %.0f ms (runner pid %d)", m->name, (clock_mono_ns() - t0) / 1e6,
            (int)r->pid);
        *out = r;
    } else {
        LOG(LOG_WARN, "sched", "loading %s failed: %s", m->name, err ? err->msg : "");
        unlink_runner(s, r);
        s->counters.unloads--; /* it never loaded */
        r->client = NULL;
        victims[(*n_victims)++] = r;
    }
    pthread_cond_broadcast(&s->changed);
    return rc;
}

int sched_acquire(struct sched *s, const struct sched_model *m, struct sched_runner **out, struct bw_err *err)
{
    pthread_mutex_lock(&s->mu);
    if (s->depth >= s->cfg.max_queue) {
        s->counters.rejected_busy++;
        pthread_mutex_unlock(&s->mu);
        return bw_errf(err, BW_EBUSY, "server busy, please try again: maximum pending requests exceeded");
    }
    s->depth++;
    struct sched_runner *victims[PLAN_MAX_RUNNERS + 1];
    int n_victims = 0;
    int rc = BW_OK;
    struct plan_request req = {
        .name = m->name,
        .model = {.weights_bytes = m->weights_bytes, .kv_bytes_per_cell = m->kv_bytes_per_cell,
                  .n_ctx_train = m->n_ctx_train, .fixed_kv_bytes = m->fixed_kv_bytes},
        .n_parallel = s->cfg.n_parallel,
        .cmax = policy_cmax(m->n_ctx_train, s->cfg.ctx_cap),
    };
    /* BELLOWS_KV_CACHE_TYPE=auto: the q8_0 figures the plan may take instead */
    const struct estimate_model kv_alt = {.weights_bytes = m->weights_bytes,
                                          .kv_bytes_per_cell = m->auto_kv_bytes_per_cell,
                                          .n_ctx_train = m->n_ctx_train,
                                          .fixed_kv_bytes = m->auto_fixed_kv_bytes};
    if (m->kv_type == ESTIMATE_KV_AUTO)
        req.kv_alt = &kv_alt;
    for (;;) {
        struct plan_runner pr[PLAN_MAX_RUNNERS];
        struct sched_runner *who[PLAN_MAX_RUNNERS];
        size_t n = plan_snapshot(s, m, pr, who);
        /* The measurement only matters for a load without a limit; skip the read otherwise. */
        struct plan_memory mem = {.limit = s->cfg.memory_limit, .max_loaded = s->cfg.max_loaded};
        bool loaded = false;
        for (size_t i = 0; i < n; i++)
            loaded |= !strcmp(pr[i].name, m->name) && !pr[i].dead && pr[i].same_options;
        if (!mem.limit && !loaded)
            mem.available = mem_available() + device_free_bytes(s);
        struct plan p;
        sched_plan(pr, n, &req, &mem, &p);
        plan_unload(s, &p, who, victims, &n_victims);
        if (p.action == PLAN_WAIT) {
            if (n_victims) { /* destroy what the plan gave up first (not under the lock), then plan again */
                pthread_mutex_unlock(&s->mu);
                for (int i = 0; i < n_victims; i++)
                    runner_destroy(victims[i]);
                n_victims = 0;
                pthread_mutex_lock(&s->mu);
                continue;
            }
            pthread_cond_wait(&s->changed, &s->mu);
            continue;
        }
        if (p.action == PLAN_REUSE) {
            struct sched_runner *r = who[p.reuse];
            r->refs++;
            r->expire_idle = false; /* a new request's keep_alive decides again */
            *out = r;
            LOG(LOG_DEBUG, "sched", "reusing the runner of %s (pid %d)", m->name, (int)r->pid);
        } else if (p.action == PLAN_FAIL) {
            rc = bw_errf(err, BW_ENOMEM, "%s", p.err_msg);
        } else {
            rc = load_runner(s, m, &p, victims, &n_victims, out, err);
        }
        break;
    }
    if (rc != BW_OK)
        s->depth--;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n_victims; i++)
        runner_destroy(victims[i]);
    return rc;
}

void sched_release(struct sched *s, struct sched_runner *r, int64_t keep_alive_ns)
{
    if (!r)
        return;
    if (keep_alive_ns == SCHED_KEEP_ALIVE_DEFAULT)
        keep_alive_ns = s->cfg.keep_alive_ns;
    pthread_mutex_lock(&s->mu);
    r->refs--;
    s->depth--;
    int64_t now = clock_mono_ns();
    /* Saturating: a keep_alive past the end of int64 time is forever, not the year 1734. */
    r->expires_at = keep_alive_ns < 0 || keep_alive_ns > INT64_MAX - now ? INT64_MAX : now + keep_alive_ns;
    if (r->expire_idle)
        r->expires_at = now; /* an unload waits for the last release: this one does not put it off */
    bool destroy = false;
    if (r->refs == 0 && (!r->linked || keep_alive_ns == 0 || r->expire_idle || runner_is_dead(r))) {
        if (r->linked)
            unlink_runner(s, r);
        destroy = true;
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    if (destroy)
        runner_destroy(r);
}

int sched_unload(struct sched *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    struct sched_runner *r = find_runner(s, name);
    while (r && r->state == RUNNER_LOADING) {
        pthread_cond_wait(&s->changed, &s->mu);
        r = find_runner(s, name);
    }
    if (!r) {
        pthread_mutex_unlock(&s->mu);
        return BW_ENOTFOUND;
    }
    unlink_runner(s, r);
    bool destroy = r->refs == 0;
    if (!destroy) /* in use: stop the process now; the last release frees the struct */
        shutdown(runner_client_fd(r->client), SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    if (destroy)
        runner_destroy(r);
    return BW_OK;
}

int sched_expire(struct sched *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    struct sched_runner *r = find_runner(s, name);
    while (r && r->state == RUNNER_LOADING) { /* a load in progress: expire what it loads */
        pthread_cond_wait(&s->changed, &s->mu);
        r = find_runner(s, name);
    }
    if (!r) {
        pthread_mutex_unlock(&s->mu);
        return BW_ENOTFOUND;
    }
    r->expires_at = clock_mono_ns();
    bool destroy = r->refs == 0;
    if (destroy)
        unlink_runner(s, r);
    else
        r->expire_idle = true; /* the last release unloads it */
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    if (destroy)
        runner_destroy(r);
    return BW_OK;
}

/* ---- the reaper --------------------------------------------------------------------------- */

static void *reaper_main(void *arg)
{
    struct sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec until = clock_deadline(250);
        pthread_cond_timedwait(&s->reaper_wake, &s->mu, &until);
        int64_t now = clock_mono_ns();
        struct sched_runner *expired[64];
        int n = 0;
        for (struct sched_runner *r = s->runners; r && n < 64;) {
            struct sched_runner *next = r->next;
            if (r->state == RUNNER_READY && r->refs == 0 && (r->expires_at <= now || runner_is_dead(r))) {
                unlink_runner(s, r);
                expired[n++] = r;
            }
            r = next;
        }
        if (n) {
            pthread_mutex_unlock(&s->mu);
            for (int i = 0; i < n; i++)
                runner_destroy(expired[i]);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifecycle, listing ------------------------------------------------------------------ */

int sched_new(const struct sched_config *cfg, struct sched **out, struct bw_err *err)
{
    struct sched *s = calloc(1, sizeof *s);
    if (!s)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    s->cfg = *cfg;
    if (s->cfg.n_parallel <= 0)
        s->cfg.n_parallel = 4;
    if (s->cfg.max_loaded <= 0)
        s->cfg.max_loaded = 3;
    if (s->cfg.max_queue <= 0)
        s->cfg.max_queue = 512;
    if (rpc_set_init(&s->rpc, cfg->rpc, err) != BW_OK) {
        free(s);
        return BW_EINVAL;
    }
    if (s->rpc.n) {
        rpc_set_probe_all(&s->rpc);
        if (s->cfg.max_loaded > 1)
            LOG(LOG_INFO, "sched", "with RPC servers one model is loaded at a time (ggml's RPC server serves one "
                "client at a time)");
        s->cfg.max_loaded = 1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->changed, NULL);
    pthread_cond_init(&s->reaper_wake, NULL);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        rpc_set_free(&s->rpc);
        free(s);
        return bw_errf(err, BW_ENOMEM, "cannot start the scheduler thread");
    }
    *out = s;
    return BW_OK;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->reaper_wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->reaper, NULL);
    while (s->runners) {
        struct sched_runner *r = s->runners;
        unlink_runner(s, r);
        runner_destroy(r);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->changed);
    pthread_cond_destroy(&s->reaper_wake);
    rpc_set_free(&s->rpc);
    free(s);
}

size_t sched_list(struct sched *s, struct sched_loaded *out, size_t max)
{
    struct sched_runner *held[64];
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    int64_t now_m = clock_mono_ns(), now_r = clock_real_ns();
    for (struct sched_runner *r = s->runners; r && n < max && n < 64; r = r->next) {
        if (r->state != RUNNER_READY || runner_is_dead(r))
            continue;
        struct sched_loaded *l = &out[n];
        memset(l, 0, sizeof *l);
        snprintf(l->name, sizeof l->name, "%s", r->name);
        snprintf(l->path, sizeof l->path, "%s", r->path);
        l->pid = r->pid;
        l->size_estimate = r->size_est;
        l->reserved_bytes = r->reserved;
        int64_t left = r->expires_at - now_m;
        l->expires_at_unix_ns = r->expires_at == INT64_MAX || left > INT64_MAX - now_r ? 0 : now_r + left;
        l->n_calls = r->refs;
        l->loads = loads_of(s, r->name);
        l->n_devices = r->place.n_dev;
        memcpy(l->devices, r->place.dev, sizeof l->devices);
        r->refs++; /* hold it while we ask for its status */
        s->depth++;
        held[n++] = r;
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        struct proto_request q = {.type = PROTO_REQ_STATUS};
        struct sched_call *c;
        if (sched_call_start(held[i], &q, &c, NULL) == BW_OK) {
            struct proto_event ev;
            if (sched_call_next(c, &ev, 2000, NULL) == 1) {
                if (ev.type == PROTO_EV_STATUS)
                    out[i].status = ev.status;
                proto_event_free(&ev);
            }
            pthread_mutex_lock(&held[i]->mu);
            c->finished = true; /* a status has no DONE: nothing to cancel */
            pthread_mutex_unlock(&held[i]->mu);
            sched_call_end(c);
        }
        pthread_mutex_lock(&s->mu);
        held[i]->refs--; /* give back without touching its keep_alive */
        s->depth--;
        /* Unloaded meanwhile, or its last request let go while this status was asked and an
         * unload was waiting for that (sched_expire): the unload is ours to finish. */
        if (held[i]->refs == 0 && held[i]->linked && held[i]->expire_idle)
            unlink_runner(s, held[i]);
        bool orphan = held[i]->refs == 0 && !held[i]->linked;
        pthread_mutex_unlock(&s->mu);
        if (orphan)
            runner_destroy(held[i]);
    }
    return n;
}

void sched_counters(struct sched *s, struct sched_counters *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->counters;
    out->queue_depth = s->depth;
    out->loaded = 0;
    for (struct sched_runner *r = s->runners; r; r = r->next)
        out->loaded++;
    pthread_mutex_unlock(&s->mu);
}
