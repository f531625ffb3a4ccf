/* plan.c -- see plan.h. Pure: no I/O, no allocation, no clock. */
#include "sched/plan.h"

#include <stdio.h>
#include <string.h>

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
static uint64_t mul_sat(uint64_t a, uint64_t b) { return b && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

uint64_t plan_reserve_bytes(const struct estimate_model *m, int64_t budget_cells)
{
    uint64_t cells = budget_cells > 0 ? (uint64_t)budget_cells : 0;
    uint64_t kv = mul_sat(mul_sat(cells, m->kv_bytes_per_cell), 2);
    uint64_t fixed = add_sat(m->weights_bytes, m->fixed_kv_bytes); /* window and recurrent memory: no growth, no transient */
    return add_sat(add_sat(fixed, mul_sat(estimate_compute_bytes(m), 2)), kv);
}

int64_t plan_budget_cells(const struct estimate_model *m, uint64_t free_bytes, int n_parallel, int cmax)
{
    int64_t cap = (int64_t)(n_parallel > 0 ? n_parallel : 0) * (cmax > 0 ? cmax : 0);
    if (cap < ESTIMATE_INITIAL_POOL)
        cap = ESTIMATE_INITIAL_POOL;
    uint64_t fixed = plan_reserve_bytes(m, 0);
    uint64_t per_cell = mul_sat(m->kv_bytes_per_cell, 2);
    if (per_cell == 0)
        return cap;
    uint64_t cells = sub_sat(free_bytes, fixed) / per_cell;
    if (cells > (uint64_t)cap)
        return cap;
    return cells < ESTIMATE_INITIAL_POOL ? ESTIMATE_INITIAL_POOL : (int64_t)cells;
}

static void unload(struct plan *p, int i, const char *why)
{
    p->unload_why[p->n_unload] = why;
    p->unload[p->n_unload++] = i;
}

static bool unloading(const struct plan *p, int i)
{
    for (int k = 0; k < p->n_unload; k++)
        if (p->unload[k] == i)
            return true;
    return false;
}

/* The runner already loaded for the request's model: reuse it, wait for it, or unload it
 * so that a fresh one is loaded. Returns true when the plan is decided. */
static bool plan_existing(const struct plan_runner *r, int i, struct plan *out)
{
    if (r->loading) {
        out->action = PLAN_WAIT; /* concurrent acquires of one model share one load */
        return true;
    }
    if (r->dead) {
        unload(out, i, "its runner stopped");
        return false;
    }
    if (!r->same_options) {
        if (r->refs > 0) { /* reload when the requests on the old options are done */
            out->action = PLAN_WAIT;
            return true;
        }
        unload(out, i, "a load-time option changed");
        return false;
    }
    out->action = PLAN_REUSE;
    out->reuse = i;
    return true;
}

void sched_plan(const struct plan_runner *runners, size_t n, const struct plan_request *req,
                const struct plan_memory *mem, struct plan *out)
{
    memset(out, 0, sizeof *out);
    out->reuse = -1;
    if (n > PLAN_MAX_RUNNERS)
        n = PLAN_MAX_RUNNERS;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(runners[i].name, req->name)) {
            if (plan_existing(&runners[i], (int)i, out))
                return;
            break;
        }

    /* A load. What the others hold, as eviction candidates and as promises. */
    struct estimate_loaded others[PLAN_MAX_RUNNERS];
    int who[PLAN_MAX_RUNNERS];
    size_t n_others = 0;
    uint64_t promised = 0, outstanding = 0;
    bool any_busy = false;
    for (size_t i = 0; i < n; i++) {
        if (unloading(out, (int)i))
            continue;
        const struct plan_runner *r = &runners[i];
        others[n_others] = (struct estimate_loaded){.bytes = r->reserved_bytes,
                                                    .n_calls = r->refs + (r->loading ? 1 : 0),
                                                    .expires_in_ns = r->expires_in_ns};
        any_busy |= others[n_others].n_calls > 0;
        who[n_others++] = (int)i;
        promised = add_sat(promised, r->reserved_bytes);
        outstanding = add_sat(outstanding, sub_sat(r->reserved_bytes, r->resident_bytes));
    }
    uint64_t free_bytes = mem->limit ? sub_sat(mem->limit, promised) : sub_sat(mem->available, outstanding);
    uint64_t need = plan_reserve_bytes(&req->model, ESTIMATE_INITIAL_POOL);
    if (req->kv_alt) { /* auto: evict only as far as the smaller type's initial pool needs */
        uint64_t need_alt = plan_reserve_bytes(req->kv_alt, ESTIMATE_INITIAL_POOL);
        need = need_alt < need ? need_alt : need;
    }
    out->resident_bytes = estimate_load_bytes(&req->model);

    int victims[PLAN_MAX_RUNNERS];
    int k = estimate_pick_evictions(others, n_others, need, free_bytes, mem->max_loaded, victims);
    if (k < 0) {
        if (any_busy) {
            out->action = PLAN_WAIT; /* a busy model must finish first */
            return;
        }
        if (n_others == 0 && !mem->limit) {
            /* Nothing to evict and the measurement says no: try anyway (the kernel may reclaim
             * page cache, and mmap'd weights need not all be resident). */
            out->action = PLAN_LOAD;
            out->over_measured = true;
            out->kv_budget_cells = ESTIMATE_INITIAL_POOL;
            out->reserve_bytes = need;
            if (req->kv_alt) { /* auto, and not even the initial pool fits: the smaller type */
                out->kv_alt = true;
                out->reserve_bytes = plan_reserve_bytes(req->kv_alt, ESTIMATE_INITIAL_POOL);
                out->resident_bytes = estimate_load_bytes(req->kv_alt);
            }
            return;
        }
        out->action = PLAN_FAIL;
        snprintf(out->err_msg, sizeof out->err_msg,
                 "model requires %.1f GiB of memory but only %.1f GiB is available", need / 1073741824.0,
                 free_bytes / 1073741824.0);
        return;
    }
    for (int j = 0; j < k; j++) {
        unload(out, who[victims[j]], "evicted to make room");
        free_bytes = add_sat(free_bytes, others[victims[j]].bytes);
    }
    const struct estimate_model *m = &req->model;
    int64_t max_ctx = req->cmax > ESTIMATE_INITIAL_POOL ? req->cmax : ESTIMATE_INITIAL_POOL;
    if (req->kv_alt && plan_reserve_bytes(m, max_ctx) > free_bytes) {
        m = req->kv_alt; /* a whole maximum context does not fit in f16: q8_0 */
        out->kv_alt = true;
        out->resident_bytes = estimate_load_bytes(m);
    }
    out->action = PLAN_LOAD;
    out->kv_budget_cells = plan_budget_cells(m, free_bytes, req->n_parallel, req->cmax);
    out->reserve_bytes = plan_reserve_bytes(m, out->kv_budget_cells);
}
