/* plan.h -- the scheduler's decision for one acquire, as data: pure, no I/O, no locks.
 *
 * sched_acquire() snapshots the loaded set, asks sched_plan() what to do, does it (unlink
 * and destroy, spawn, wait) and asks again. Everything that can be decided without a
 * process or a clock lives here, so each rule is a unit test (tests/unit/test_plan.c).
 *
 * Memory admission (issue 13, item 4). A runner is promised, at load, everything it may
 * ever use -- not its first pool:
 *     reserve(B) = weights + fixed KV + 2 x compute + 2 x B x bytes_per_cell
 * where B is its pool's growth budget in cells. The factors of 2 are the resize transient:
 * a pool grows by building the new context before freeing the old one (sequences move by
 * state copy), so at the last growth the old pool (up to B cells less one step) and the new
 * one (B cells), each with its compute buffers, are alive at once (the fixed KV -- sliding
 * windows and recurrent states, estimate.h -- does not grow). Promises never overlap:
 *   - with a memory limit, what is free for a new load is the limit minus every loaded
 *     runner's reserve;
 *   - without one, it is the measured free memory (MemAvailable + GPU free) minus what
 *     loaded runners were promised but had not yet allocated at their load (reserve -
 *     resident). A runner that has grown since is then counted twice (once in the
 *     measurement, once in its promise): admission errs on the careful side.
 * A new load takes the budget that fits what is free (capped at n_parallel x Cmax); idle
 * models are evicted only as far as the smallest budget (one initial pool) needs. */
#ifndef BELLOWS_PLAN_H
#define BELLOWS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/estimate.h"

#define PLAN_MAX_RUNNERS 64

/* A loaded (or loading) model as the plan sees it. */
struct plan_runner {
    const char *name;
    bool loading;             /* its runner is starting: wait for it */
    bool dead;                /* its process is gone: unload and load again */
    bool same_options;        /* its load-time options (mmap, flash attention, GPU layers) match the request's */
    int refs;                 /* requests holding it; busy runners are never evicted */
    uint64_t reserved_bytes;  /* what admission promised it (reserve(B)) */
    uint64_t resident_bytes;  /* what it allocated at load (weights + initial pool + compute) */
    int64_t expires_in_ns;    /* remaining keep_alive; INT64_MAX = forever */
};

struct plan_request {
    const char *name;
    struct estimate_model model;
    int n_parallel;
    int cmax;                 /* the model's context maximum (policy_cmax) */
    /* BELLOWS_KV_CACHE_TYPE=auto: `model` in f16 and this the same model in q8_0; the load
     * takes q8_0 when one sequence of the maximum context (cmax, at least the initial pool)
     * would not fit what is free in f16 (reserve(max(cmax, 4096)) > free after evictions).
     * NULL: the type is fixed. */
    const struct estimate_model *kv_alt;
};

struct plan_memory {
    uint64_t limit;           /* BELLOWS memory limit in bytes; 0: use `available` */
    uint64_t available;       /* measured free memory now (when limit is 0) */
    int max_loaded;
};

enum plan_action {
    PLAN_REUSE,  /* runners[reuse] serves it */
    PLAN_WAIT,   /* a load in progress, a busy runner on old options, or busy models hold the memory */
    PLAN_LOAD,   /* start a runner with reserve_bytes / kv_budget_cells */
    PLAN_FAIL,   /* it can never fit: err_msg says why (BW_ENOMEM) */
};

struct plan {
    enum plan_action action;
    int reuse;                          /* PLAN_REUSE: index into runners */
    int unload[PLAN_MAX_RUNNERS];       /* runners to unlink first (dead, stale options, evicted), any action */
    int n_unload;
    const char *unload_why[PLAN_MAX_RUNNERS]; /* "dead", "options changed", "evicted" */
    uint64_t reserve_bytes;             /* PLAN_LOAD: the promise (reserve(B)) */
    uint64_t resident_bytes;            /* PLAN_LOAD: what the load itself allocates */
    int64_t kv_budget_cells;            /* PLAN_LOAD: B */
    bool over_measured;                 /* PLAN_LOAD: nothing to evict and the measurement said no; loading anyway */
    bool kv_alt;                        /* PLAN_LOAD: auto chose the request's kv_alt (q8_0): the
                                           reserve and budget above are its figures */
    char err_msg[160];                  /* PLAN_FAIL */
};

/* reserve(B) above, saturating. */
uint64_t plan_reserve_bytes(const struct estimate_model *m, int64_t budget_cells);

/* The largest budget B (cells) with reserve(B) <= free_bytes, capped at n_parallel x cmax;
 * at least ESTIMATE_INITIAL_POOL (the caller checks that one fits). */
int64_t plan_budget_cells(const struct estimate_model *m, uint64_t free_bytes, int n_parallel, int cmax);

/* Decides one step of an acquire. n <= PLAN_MAX_RUNNERS. */
void sched_plan(const struct plan_runner *runners, size_t n, const struct plan_request *req,
                const struct plan_memory *mem, struct plan *out);

#endif
