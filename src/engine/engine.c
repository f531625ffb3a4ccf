/* engine.c -- see engine.h for the contract. Reading order: slots and jobs, the pool
 * (create / resize / account), finishing, admission (prefix reuse), the step (batch,
 * decode, sample, retire), status. The structs are in engine_int.h; submit (rendering,
 * tokenizing, sizing) is in engine_prompt.c, a job's text as events in engine_text.c,
 * prefix reuse per memory kind in engine_reuse.c, embeddings in engine_embed.c. */
#define _GNU_SOURCE
#include "engine/engine_int.h"
#include "util/clock.h"

#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "sched/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

#define POOL_FLOOR 4096       /* smallest pool: the smallest reservation D */
#define GROW_QUANTUM 1024     /* reservations and pools grow in these steps */
#define N_BATCH_MAX 2048      /* tokens per llama_decode (capped at n_ctx by libllama) */

static int ceil_to(int x, int q) { return (x + q - 1) / q * q; }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ---- slots and jobs ---------------------------------------------------------------- */

static int tokvec_reserve(struct tokvec *t, int cap)
{
    if (cap <= t->cap)
        return BW_OK;
    int c = imax(cap, t->cap * 2);
    llama_token *p = realloc(t->v, (size_t)c * sizeof *p);
    if (!p)
        return BW_ENOMEM;
    t->v = p;
    t->cap = c;
    return BW_OK;
}

struct job *engine__find_job(const struct engine *e, uint64_t req_id)
{
    for (struct job *j = e->queue_head; j; j = j->next)
        if (j->req_id == req_id)
            return j;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job && e->slots[i].job->req_id == req_id)
            return e->slots[i].job;
    return NULL;
}

void engine__job_free(struct job *j)
{
    if (!j)
        return;
    if (j->chain)
        llama_sampler_free(j->chain);
    textout_fini(&j->out);
    logprob_queue_clear(&j->lpq);
    if (j->calls)
        toolcall_fini(&j->tc);
    free(j->call_grammar);
    free(j->prompt);
    free(j->sampled.v);
    free(j);
}

void engine__emit_simple(struct engine *e, uint64_t req_id, enum engine_event_type type, const char *text,
                         size_t len, const struct engine_stats *st)
{
    struct engine_event ev = {.req_id = req_id, .type = type, .text = text, .len = len, .stats = st};
    e->emit(e->emit_ud, &ev);
}

static void emit_error(struct engine *e, uint64_t req_id, int code, const char *msg)
{
    struct engine_event ev = {.req_id = req_id, .type = ENGINE_EV_ERROR, .text = msg, .len = strlen(msg),
                              .err_code = code};
    e->emit(e->emit_ud, &ev);
}

/* ---- the pool --------------------------------------------------------------------- */

static struct llama_context *pool_ctx_new(struct engine *e, int n_cells)
{
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_cells;
    cp.n_ubatch = (uint32_t)e->n_ubatch;
    cp.n_batch = (uint32_t)imax(imin(N_BATCH_MAX, n_cells), e->n_ubatch);
    cp.n_seq_max = (uint32_t)e->p.n_parallel;
    cp.kv_unified = true; /* one pool any sequence may fill; also what state moves need */
    /* Explicit, never "auto": a state only moves between contexts with the same setting. */
    cp.flash_attn_type = e->p.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    /* false: the window only; a longer prefix comes back through checkpoints (engine_reuse.c) */
    cp.swa_full = e->swa_full;
    /* BELLOWS_KV_CACHE_TYPE, as settled by engine__mem_init (a quantized V needs flash
     * attention; K and V alike, as MLA requires) */
    cp.type_k = cp.type_v = engine__kv_ggml_type(e);
    cp.n_threads = e->p.n_threads;
    cp.n_threads_batch = e->p.n_threads;
    cp.no_perf = true;
    return llama_init_from_model(e->model, cp);
}

static int batch_reserve(struct engine *e, int n)
{
    if (n <= e->batch_cap)
        return BW_OK;
    if (e->batch_cap)
        llama_batch_free(e->batch);
    e->batch = llama_batch_init(n, 0, 1);
    e->batch_cap = n;
    return BW_OK;
}

/* Cells the slots hold or may claim: live reservations (at least their tokens) and cached tokens. */
static int committed_cells(const struct engine *e, int except_slot)
{
    int sum = 0;
    for (int i = 0; i < e->p.n_parallel; i++) {
        const struct slot *s = &e->slots[i];
        if (i == except_slot)
            continue;
        if (s->state == SLOT_CACHED)
            sum += s->kv.n;
        else if (s->job)
            sum += imax(s->job->n_reserved, s->kv.n);
    }
    return sum;
}

void engine__slot_clear(struct engine *e, int i)
{
    if (e->ctx)
        llama_memory_seq_rm(llama_get_memory(e->ctx), i, -1, -1);
    engine__ckpt_drop_after(e, i, 0);
    e->slots[i].ckpt_due = false;
    e->slots[i].next_need = 0;
    e->slots[i].kv.n = 0;
    e->slots[i].state = SLOT_FREE;
}

/* Evicts the least recently used cached slot other than `keep`; false when none is left. */
static bool evict_lru(struct engine *e, int keep)
{
    int victim = -1;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (i != keep && e->slots[i].state == SLOT_CACHED &&
            (victim < 0 || e->slots[i].lru < e->slots[victim].lru))
            victim = i;
    if (victim < 0)
        return false;
    LOG(LOG_DEBUG, "engine", "evicting cached sequence %d (%d tokens)", victim, e->slots[victim].kv.n);
    engine__disk_save(e, victim);
    engine__slot_clear(e, victim);
    return true;
}

/* Moves every sequence into a new context of n_cells (state get/set: bit-exact, no
 * re-prefill). On failure the old context stays as it was and BW_ENOMEM is returned. */
int engine__pool_resize(struct engine *e, int n_cells)
{
    int64_t t0 = clock_mono_ns();
    struct llama_context *next = pool_ctx_new(e, n_cells);
    if (!next)
        return BW_ENOMEM;
    int moved = 0;
    for (int i = 0; e->ctx && i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (s->kv.n == 0)
            continue;
        size_t need = llama_state_seq_get_size(e->ctx, i);
        if (need > e->state_buf_len) {
            uint8_t *b = realloc(e->state_buf, need);
            if (!b) {
                llama_free(next);
                return BW_ENOMEM;
            }
            e->state_buf = b;
            e->state_buf_len = need;
        }
        size_t got = llama_state_seq_get_data(e->ctx, e->state_buf, need, i);
        if (got == 0 || llama_state_seq_set_data(next, e->state_buf, got, i) == 0) {
            /* Should not happen with identical context settings; lose this sequence only. */
            LOG(LOG_ERROR, "engine", "moving sequence %d (%d tokens) failed; its KV is dropped", i, s->kv.n);
            llama_memory_seq_rm(llama_get_memory(next), i, -1, -1);
            s->kv.n = 0;
            if (s->job) {
                s->job->n_prefilled = 0; /* re-evaluate from scratch rather than lose the request */
                s->job->has_pending = false;
                s->state = SLOT_PREFILL;
            } else {
                s->state = SLOT_FREE;
            }
            continue;
        }
        moved++;
    }
    int old = e->pool_cells;
    if (e->ctx)
        llama_free(e->ctx);
    e->ctx = next;
    e->pool_cells = (int)llama_n_ctx(next);
    batch_reserve(e, (int)llama_n_batch(next));
    int64_t dt = clock_mono_ns() - t0;
    if (old && e->pool_cells > old) {
        e->growths++;
        e->last_growth_ns = dt;
        e->growth_ns_total += dt;
    } else if (old) {
        e->shrinks++;
    }
    struct estimate_pool_bytes pb;
    estimate_pool(&e->mem, e->pool_cells, e->p.n_parallel, e->n_ubatch, e->swa_full, &pb);
    LOG(LOG_INFO, "engine", "pool %d -> %d cells (%d sequences moved, %.1f ms, %.1f MiB KV, %.1f MiB recurrent)", old,
        e->pool_cells, moved, dt / 1e6, pb.kv / (1024.0 * 1024.0), pb.recurrent / (1024.0 * 1024.0));
    return BW_OK;
}

/* The size a pool grows to for `need` cells: geometric (x1.5), so a long conversation moves
 * its history a few times rather than every GROW_QUANTUM -- creating a context costs ~9 ms
 * per 1k cells, whatever it holds -- and never past the budget. */
static int grow_target(const struct engine *e, int need)
{
    int target = imax(ceil_to(need, POOL_FLOOR), ceil_to(e->pool_cells + e->pool_cells / 2, GROW_QUANTUM));
    if (!e->ctx)
        target = imax(need, e->p.min_pool_cells);
    return (int)(target > e->max_pool_cells ? e->max_pool_cells : target);
}

/* Makes the pool hold `need` committed cells: evict cached sequences (LRU, sparing
 * `keep`), then grow within the budget. BW_OK, or BW_EBUSY when the budget does not allow it. */
static int pool_make_room(struct engine *e, int need_extra, int keep, int except_slot)
{
    while (committed_cells(e, except_slot) + need_extra > e->pool_cells && evict_lru(e, keep))
        ;
    int need = committed_cells(e, except_slot) + need_extra;
    if (need <= e->pool_cells && e->ctx)
        return BW_OK;
    if (need > e->max_pool_cells)
        return BW_EBUSY;
    return engine__pool_resize(e, grow_target(e, need));
}

/* Cells the pool is expected to need next: for each cached conversation, what the others
 * hold plus what its next turn would reserve (next_need); the most of these. */
static int expected_need(const struct engine *e)
{
    int most = 0;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].state == SLOT_CACHED && e->slots[i].next_need > 0)
            most = imax(most, committed_cells(e, i) + e->slots[i].next_need);
    return most;
}

bool engine_grow_ahead(struct engine *e)
{
    if (!e->grow_ahead_due || !e->ctx || engine_has_work(e))
        return false;
    e->grow_ahead_due = false;
    int need = expected_need(e);
    if (need <= e->pool_cells || need > e->max_pool_cells)
        return false; /* room enough; or only evictions can make it, which wait for the request */
    int old = e->pool_cells;
    if (engine__pool_resize(e, grow_target(e, need)) != BW_OK)
        return false; /* the request will try again, and say so if it must */
    e->growths_ahead++;
    LOG(LOG_INFO, "engine", "pool grown ahead of the next turn: %d -> %d cells (expected need %d, %.1f ms)", old,
        e->pool_cells, need, e->last_growth_ns / 1e6);
    return true;
}

/* ---- finishing --------------------------------------------------------------------- */

void engine__job_finish(struct engine *e, struct job *j, const char *reason)
{
    struct textout_emit rest;
    bool flushed = textout_flush(&j->out, &rest) == BW_OK;
    engine__emit_logprobs(e, j); /* before the text they belong to; those left were cut
                                    (freed with the job) */
    if (flushed && rest.len)
        engine__emit_text(e, j, rest.text, rest.len);
    engine__emit_text_end(e, j);
    int64_t t = clock_mono_ns();
    j->st.done_reason = reason;
    j->st.total_ns = t - j->t_submit;
    if (j->t_first)
        j->st.eval_ns = t - j->t_first;
    j->st.pool_cells = e->pool_cells;
    j->st.pool_growths = e->growths - j->growths_at_admit;
    j->st.context_length = j->n_reserved;
    engine__disk_note_prefill(e, j);
    if (j->slot >= 0) {
        struct slot *s = &e->slots[j->slot];
        s->job = NULL;
        s->state = s->kv.n ? SLOT_CACHED : SLOT_FREE;
        s->lru = ++e->tick;
        /* The next turn of a conversation is expected to add what this one did (its new
         * prompt tokens and its answer): engine_grow_ahead makes that room while idle. */
        int added = s->kv.n - j->st.prompt_cache_tokens;
        s->next_need = j->kind != ENGINE_EMBED && s->kv.n && added > 0
                           ? policy_reservation(imin(e->cmax, s->kv.n + added), j->num_predict, e->cmax)
                           : 0;
        e->grow_ahead_due = e->grow_ahead_due || s->next_need > 0;
    }
    /* The server logs the request's info line (with its request id); this one is for
     * BELLOWS_DEBUG and for runners driven without a server. */
    LOG_REQ(LOG_DEBUG, j->req_id, "engine",
            "done reason=%s L=%d D=%d Cmax=%d pool=%d cached=%d evaluated=%d generated=%d ttft_ms=%.1f tok_s=%.1f",
            reason, j->st.prompt_tokens, j->n_reserved, e->cmax, e->pool_cells, j->st.prompt_cache_tokens,
            j->st.prompt_eval_count - j->st.prompt_cache_tokens, j->st.eval_count, j->st.ttft_ns / 1e6,
            j->st.eval_ns > 0 ? j->st.eval_count * 1e9 / j->st.eval_ns : 0.0);
    struct engine_event done = {.req_id = j->req_id, .type = ENGINE_EV_DONE, .stats = &j->st};
    llama_token *ctx_toks = NULL;
    if (j->want_context && (ctx_toks = malloc((size_t)(j->n_prompt + j->sampled.n + 1) * sizeof *ctx_toks))) {
        memcpy(ctx_toks, j->prompt, (size_t)j->n_prompt * sizeof *ctx_toks);
        if (j->sampled.n)
            memcpy(ctx_toks + j->n_prompt, j->sampled.v, (size_t)j->sampled.n * sizeof *ctx_toks);
        done.tokens = ctx_toks;
        done.n_tokens = j->n_prompt + j->sampled.n;
    }
    e->emit(e->emit_ud, &done);
    free(ctx_toks);
    engine__job_free(j);
}

void engine__job_fail(struct engine *e, struct job *j, int code, const char *msg)
{
    if (j->slot >= 0) {
        e->slots[j->slot].job = NULL;
        engine__slot_clear(e, j->slot);
    }
    LOG_REQ(LOG_WARN, j->req_id, "engine", "failed: %s", msg);
    emit_error(e, j->req_id, code, msg);
    engine__job_free(j);
}

static void queue_remove(struct engine *e, struct job *j)
{
    struct job **pp = &e->queue_head;
    e->queue_tail = NULL;
    for (struct job *it = e->queue_head; it; it = it->next) {
        if (it == j) {
            *pp = it->next;
            continue;
        }
        pp = &it->next;
        e->queue_tail = it;
    }
    /* queue_tail must be the last remaining element */
    if (e->queue_tail && e->queue_tail->next)
        for (e->queue_tail = e->queue_head; e->queue_tail->next;)
            e->queue_tail = e->queue_tail->next;
}

int engine_cancel(struct engine *e, uint64_t req_id)
{
    struct job *j = engine__find_job(e, req_id);
    if (!j)
        return engine__prep_cancel(e, req_id) ? BW_OK : BW_ENOTFOUND; /* preparing: stops at its next check */
    j->cancelled = true;
    return BW_OK;
}

int engine_pause(struct engine *e, uint64_t req_id, bool paused)
{
    struct job *j = engine__find_job(e, req_id);
    if (!j)
        return engine__prep_pause(e, req_id, paused) ? BW_OK : BW_ENOTFOUND;
    j->paused = paused;
    return BW_OK;
}

/* ---- admission --------------------------------------------------------------------- */

/* Tries to admit the queue head. Returns true when it left the queue (admitted or failed). */
static bool admit_one(struct engine *e, struct job *j)
{
    /* Pick the slot: the non-live one whose memory gives the most of the prompt
     * (engine_reuse.c: trimmed cells, or a checkpoint), else a free one, else the least
     * recently used cached one. A live sequence that gives more is copied from. */
    int target = -1, copy_from = -1;
    struct reuse_plan best = {0}, live = {0};
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        struct reuse_plan pl = {.n = 0, .src = i, .ck = -1};
        if (j->kind != ENGINE_EMBED)
            pl = engine__reuse_plan(e, i, j->prompt, j->n_prompt);
        if (s->job) {
            if (pl.n > live.n) {
                copy_from = i;
                live = pl;
            }
            continue;
        }
        if (target < 0 || pl.n > best.n ||
            (pl.n == best.n && s->state == SLOT_FREE && e->slots[target].state != SLOT_FREE) ||
            (pl.n == best.n && s->state == e->slots[target].state && s->lru < e->slots[target].lru)) {
            target = i;
            best = pl;
        }
    }
    if (target < 0)
        return false; /* every sequence is live: wait */
    if (live.n <= best.n)
        copy_from = -1;

    int need = j->n_reserved;
    j->growths_at_admit = e->growths; /* a growth made to admit it is on its path too */
    int rc = pool_make_room(e, need, target, target);
    if (rc == BW_EBUSY) {
        if (committed_cells(e, target) == 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "the request needs %d KV cells but the memory budget allows %lld", need,
                     (long long)e->max_pool_cells);
            queue_remove(e, j);
            engine__job_fail(e, j, BW_ENOMEM, msg);
            return true;
        }
        return false; /* wait in order for live requests to finish */
    }
    if (rc) {
        queue_remove(e, j);
        engine__job_fail(e, j, rc, "could not allocate the KV pool");
        return true;
    }

    queue_remove(e, j);
    if (j->kind != ENGINE_EMBED) {
        /* Making room may have grown the pool (every sequence moved; one that failed to move
         * was dropped): plan again on what is there now. */
        best = engine__reuse_plan(e, target, j->prompt, j->n_prompt);
        if (copy_from >= 0)
            live = engine__reuse_plan(e, copy_from, j->prompt, j->n_prompt);
        if (copy_from >= 0 && live.n <= best.n)
            copy_from = -1;
    }
    struct slot *s = &e->slots[target];
    if (tokvec_reserve(&s->kv, j->n_reserved) != BW_OK) {
        engine__job_fail(e, j, BW_ENOMEM, "out of memory");
        return true;
    }
    /* The slot's checkpoints past what its tokens share with this prompt are of another
     * history: the prompt overwrites those positions. */
    int shared = j->kind == ENGINE_EMBED ? 0 : engine__common_prefix(&s->kv, j->prompt, j->n_prompt);
    if (j->kind != ENGINE_EMBED)
        engine__disk_before_reuse(e, target, copy_from >= 0 ? 0 : best.n);
    int reuse = engine__reuse_apply(e, target, copy_from >= 0 ? &live : &best);
    if (copy_from >= 0)
        memcpy(s->kv.v, e->slots[copy_from].kv.v, (size_t)reuse * sizeof *s->kv.v);
    engine__ckpt_drop_after(e, target, shared);
    s->kv.n = reuse;
    reuse = engine__disk_restore(e, j, target, reuse);
    s->job = j;
    s->state = SLOT_PREFILL;
    s->lru = ++e->tick;
    j->slot = target;
    j->n_prefilled = reuse;
    j->st.prompt_cache_tokens = reuse;
    j->t_admit = clock_mono_ns();
    j->st.queue_ns = j->t_admit - j->t_submit;
    LOG_REQ(LOG_DEBUG, j->req_id, "engine", "admitted seq=%d reuse=%d%s%s pool=%d committed=%d", target, reuse,
            copy_from >= 0 ? " (copied from a live sequence)" : "",
            (copy_from >= 0 ? live.ck : best.ck) >= 0 ? " (through a checkpoint)" : "", e->pool_cells,
            committed_cells(e, -1));
    if (j->kind == ENGINE_EMBED)
        engine__run_embedding(e, j);
    return true;
}

static void admit(struct engine *e)
{
    /* In order: a request that must wait holds back the ones behind it. */
    while (e->queue_head) {
        struct job *j = e->queue_head;
        if (j->cancelled) {
            queue_remove(e, j);
            engine__job_finish(e, j, "cancel");
            continue;
        }
        if (!admit_one(e, j))
            break;
    }
}

/* ---- the step ----------------------------------------------------------------------- */

/* A generating sequence needs a cell for its pending token; past its reservation it
 * takes GROW_QUANTUM more, up to Cmax (spec/context.md rule 3). */
static void make_room_for_generation(struct engine *e)
{
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct job *j = e->slots[i].job;
        if (!j || !j->has_pending)
            continue;
        int n = e->slots[i].kv.n;
        if (n + 1 <= j->n_reserved)
            continue;
        if (n + 1 > e->cmax) {
            engine__job_finish(e, j, "length");
            continue;
        }
        int old = j->n_reserved;
        j->n_reserved = imin(e->cmax, j->n_reserved + GROW_QUANTUM);
        if (tokvec_reserve(&e->slots[i].kv, j->n_reserved) != BW_OK ||
            pool_make_room(e, 0, -1, -1) != BW_OK) {
            LOG_REQ(LOG_WARN, j->req_id, "engine", "no memory to extend the reservation past %d; stopping", old);
            j->n_reserved = old;
            engine__job_finish(e, j, "length");
        }
    }
}

void engine__batch_add(struct llama_batch *b, llama_token tok, int pos, int seq, bool logits)
{
    int k = b->n_tokens++;
    b->token[k] = tok;
    b->pos[k] = pos;
    b->n_seq_id[k] = 1;
    b->seq_id[k][0] = seq;
    b->logits[k] = logits;
}

/* Fills the batch: one token per generating sequence, then prompt chunks. Returns its size. */
static int build_batch(struct engine *e, int *chunk /* per slot */)
{
    struct llama_batch *b = &e->batch;
    int cap = (int)llama_n_batch(e->ctx);
    b->n_tokens = 0;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct job *j = e->slots[i].job;
        chunk[i] = 0;
        if (!j)
            continue;
        j->out_idx = -1;
        if (j->paused)
            continue;
        if (e->slots[i].state == SLOT_GEN && j->has_pending && b->n_tokens < cap) {
            j->out_idx = b->n_tokens;
            engine__batch_add(b, j->pending, e->slots[i].kv.n, i, true);
            chunk[i] = 1;
        }
    }
    /* The prompts share what is left fairly: each takes up to an equal part, then what the
     * others leave goes in slot order. A short request admitted beside a long prompt is
     * evaluated in a step or two, not after the long one's whole prefill. */
    int want[e->p.n_parallel], take_of[e->p.n_parallel], n_pf = 0, left = cap - b->n_tokens;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct job *j = e->slots[i].job;
        want[i] = take_of[i] = 0;
        if (!j || j->paused || e->slots[i].state != SLOT_PREFILL)
            continue;
        /* With checkpoints, a chunk ends at the next stop (ckpt.h) so that one can be taken. */
        int end = e->need_ckpt ? ckpt_next_stop(j->n_prompt, j->n_prefilled) : j->n_prompt;
        want[i] = imax(0, end - j->n_prefilled);
        n_pf += want[i] > 0;
    }
    int share = n_pf ? imax(1, left / n_pf) : 0;
    for (int i = 0; i < e->p.n_parallel && left > 0; i++) {
        take_of[i] = imin(imin(want[i], share), left);
        left -= take_of[i];
    }
    for (int i = 0; i < e->p.n_parallel && left > 0; i++) {
        int more = imin(want[i] - take_of[i], left);
        take_of[i] += more;
        left -= more;
    }
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct job *j = e->slots[i].job;
        if (!j || j->paused || e->slots[i].state != SLOT_PREFILL)
            continue;
        int take = take_of[i];
        for (int k = 0; k < take; k++) {
            int p = j->n_prefilled + k;
            bool last = p == j->n_prompt - 1;
            if (last)
                j->out_idx = b->n_tokens;
            engine__batch_add(b, j->prompt[p], p, i, last);
        }
        chunk[i] = take;
    }
    return b->n_tokens;
}

/* After a successful decode: the batch's tokens are in the KV. */
static void commit_batch(struct engine *e, const int *chunk)
{
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        struct job *j = s->job;
        if (!j || !chunk[i])
            continue;
        if (s->state == SLOT_GEN) {
            s->kv.v[s->kv.n++] = j->pending;
            j->has_pending = false;
        } else {
            memcpy(s->kv.v + s->kv.n, j->prompt + j->n_prefilled, (size_t)chunk[i] * sizeof *s->kv.v);
            s->kv.n += chunk[i];
            j->n_prefilled += chunk[i];
            /* At the prompt's end the copy waits until its first token is sampled (the
             * state does not change before the next decode): it stays out of the TTFT. */
            if (e->need_ckpt && ckpt_is_stop(j->n_prompt, j->n_prefilled, j->st.prompt_cache_tokens)) {
                if (j->n_prefilled == j->n_prompt)
                    s->ckpt_due = true;
                else
                    engine__ckpt_take(e, i);
            }
        }
    }
}

/* The text of one token (special tokens are not printed). Returns the length, or -1. */
static int token_piece(struct engine *e, llama_token tok, char *buf, int cap)
{
    if (e->no_vocab)
        return 0; /* no token texts: libllama would assert */
    int n = llama_token_to_piece(e->vocab, tok, buf, cap, 0, false);
    return n < 0 ? -1 : n;
}

/* A control token renders as "" (token_piece), but the reasoning markers of some formats
 * are control tokens (<|end|>, <|START_THINKING|>, [THINK]), and so are the call markers of
 * others ([TOOL_CALLS], <|python_tag|>, <|tool_call>): those render as their text so the
 * splitter and the call parser see them. Returns the piece's length, 0 for any other
 * control token. */
static int marker_piece(struct engine *e, const struct job *j, llama_token tok, char *buf, int cap)
{
    if (e->no_vocab)
        return 0;
    int n = llama_token_to_piece(e->vocab, tok, buf, cap, 0, true);
    if (n <= 0)
        return 0;
    bool marker = (j->split && reasoning_marker_token(&j->think_cfg, buf, (size_t)n)) ||
                  (j->calls && toolcall_marker_token(&j->tc_cfg, buf, (size_t)n));
    return marker ? n : 0;
}

static void sample_and_emit(struct engine *e)
{
    char piece[256];
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        struct job *j = s->job;
        if (!j || j->out_idx < 0)
            continue;
        llama_token tok = llama_sampler_sample(j->chain, e->ctx, j->out_idx);
        int64_t t = clock_mono_ns();
        if (s->state == SLOT_PREFILL) {
            s->state = SLOT_GEN;
            j->t_first = t;
            j->st.ttft_ns = t - j->t_submit;
            j->st.prompt_eval_ns = t - j->t_admit;
        }
        j->st.eval_count++;
        if (j->want_context && tokvec_reserve(&j->sampled, j->sampled.n + 1) == BW_OK)
            j->sampled.v[j->sampled.n++] = tok;
        if (llama_vocab_is_eog(e->vocab, tok)) {
            engine__job_finish(e, j, "stop");
            continue;
        }
        int n = token_piece(e, tok, piece, sizeof piece);
        if (n == 0 && (j->split || j->calls))
            n = marker_piece(e, j, tok, piece, sizeof piece);
        if (j->logprobs)
            engine__job_logprob(e, j, tok, n > 0 ? n : 0);
        struct textout_emit out = {0};
        bool pushed = n > 0 && textout_push(&j->out, piece, (size_t)n, &out) == BW_OK;
        if (j->logprobs)
            engine__emit_logprobs(e, j);
        if (pushed && out.len)
            engine__emit_text(e, j, out.text, out.len);
        if (out.stopped) {
            engine__job_finish(e, j, "stop");
            continue;
        }
        j->pending = tok;
        j->has_pending = true;
        if (j->num_predict > 0 && j->st.eval_count >= j->num_predict)
            engine__job_finish(e, j, "length");
    }
}

static void fail_live(struct engine *e, int code, const char *msg)
{
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job)
            engine__job_fail(e, e->slots[i].job, code, msg);
}

int engine_step(struct engine *e)
{
    engine__prep_collect(e); /* requests prepared off the loop join the queue (engine_prep.c) */
    /* retire cancelled */
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job && e->slots[i].job->cancelled)
            engine__job_finish(e, e->slots[i].job, "cancel");
    admit(e);
    if (!e->ctx)
        return BW_OK;
    make_room_for_generation(e);

    int chunk[e->p.n_parallel];
    if (build_batch(e, chunk) == 0)
        return BW_OK;
    int rc = llama_decode(e->ctx, e->batch);
    if (rc == 1) {
        /* "No KV slot" although the accounting said yes: give back the cached sequences and
         * try again; then grow the pool a step (the batch is rebuilt: the same tokens); only
         * then fail what was in the batch. libllama left the memory as it was. */
        while (evict_lru(e, -1))
            ;
        rc = llama_decode(e->ctx, e->batch);
        if (rc == 1 && e->pool_cells < e->max_pool_cells) {
            int64_t target = ceil_to(e->pool_cells + e->pool_cells / 2, GROW_QUANTUM);
            if (engine__pool_resize(e, (int)(target < e->max_pool_cells ? target : e->max_pool_cells)) == BW_OK &&
                build_batch(e, chunk) > 0)
                rc = llama_decode(e->ctx, e->batch);
        }
    }
    if (rc != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "llama_decode failed (%d)", rc);
        LOG(LOG_ERROR, "engine", "%s; failing the live requests", msg);
        fail_live(e, BW_ERUNNER, msg);
        return rc < 0 ? BW_ERUNNER : BW_OK;
    }
    commit_batch(e, chunk);
    sample_and_emit(e);
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].ckpt_due) {
            e->slots[i].ckpt_due = false;
            if (e->slots[i].kv.n) /* (a failed request leaves its slot empty) */
                engine__ckpt_take(e, i);
        }
    return BW_OK;
}

bool engine_has_work(const struct engine *e)
{
    if (e->queue_head || engine__prep_ready(e))
        return true;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job && (!e->slots[i].job->paused || e->slots[i].job->cancelled))
            return true;
    return false;
}

/* ---- lifecycle, status -------------------------------------------------------------- */

void engine_params_default(struct engine_params *p)
{
    *p = (struct engine_params){
        .n_parallel = 4,
        .n_threads = 0,
        .min_pool_cells = POOL_FLOOR,
        .flash_attn = true,
        .use_mmap = true,
        .n_gpu_layers = -1, /* llama.cpp's default: all layers where a GPU can take them */
        .quiet = true,
    };
}

/* Registers each RPC server's devices with ggml (common/arg.cpp's add_rpc_devices does
 * the same for llama-server's --rpc). */
static int engine__add_rpc_servers(const char *list, struct bw_err *err)
{
    _Static_assert(RPC_PROTO_MAJOR_VERSION == BELLOWS_RPC_PROTO_MAJOR &&
                   RPC_PROTO_MINOR_VERSION == BELLOWS_RPC_PROTO_MINOR, "sched/rpc.h speaks another RPC protocol");
    char eps[RPC_MAX_ENDPOINTS][RPC_ENDPOINT_MAX];
    int n = rpc_parse_endpoints(list, eps, RPC_MAX_ENDPOINTS, err);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        ggml_backend_reg_t reg = ggml_backend_rpc_add_server(eps[i]);
        if (!reg)
            return bw_errf(err, BW_EIO, "RPC server %s has no devices", eps[i]);
        bool known = false; /* a second engine in this process (tests, bench): registered already */
        for (size_t k = 0; k < ggml_backend_reg_count(); k++)
            known |= ggml_backend_reg_get(k) == reg;
        if (!known)
            ggml_backend_register(reg);
        LOG(LOG_INFO, "engine", "RPC server %s: %zu device(s)", eps[i], ggml_backend_reg_dev_count(reg));
    }
    return BW_OK;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR)
        log_write(LOG_ERROR, 0, "llama", "%.*s", (int)strcspn(text, "\n"), text);
}

int engine_new(const struct engine_params *p, engine_emit_fn emit, void *emit_ud, struct engine **out,
               struct bw_err *err)
{
    if (!p->model_path || !emit || p->n_parallel < 1 || p->n_parallel > 64)
        return bw_errf(err, BW_EINVAL, "engine: model path, emit callback and 1..64 parallel sequences are required");
    if (access(p->model_path, R_OK) != 0)
        return bw_errf(err, BW_ENOTFOUND, "model file %s cannot be read", p->model_path);
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    e->p = *p;
    if (e->p.n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        e->p.n_threads = n > 0 ? (int)n : 1;
    }
    if (e->p.min_pool_cells <= 0)
        e->p.min_pool_cells = POOL_FLOOR;
    e->emit = emit;
    e->emit_ud = emit_ud;
    e->seed_state = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    if (p->quiet)
        llama_log_set(quiet_log, NULL);
    llama_backend_init();

    int rpc_rc = p->rpc_servers && p->rpc_servers[0] ? engine__add_rpc_servers(p->rpc_servers, err) : BW_OK;
    if (rpc_rc != BW_OK) {
        free(e);
        return rpc_rc;
    }
    struct llama_model_params mp = llama_model_default_params();
    mp.load_mode = p->use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    mp.n_gpu_layers = p->n_gpu_layers;
    bool split = false;
    for (int i = 0; i < 16; i++)
        split |= p->tensor_split[i] > 0;
    if (split && llama_max_devices() <= 16) /* tensor_split must hold llama_max_devices() entries */
        mp.tensor_split = p->tensor_split;
    e->model = llama_model_load_from_file(p->model_path, mp);
    if (!e->model) {
        free(e);
        return bw_errf(err, BW_EINVAL, "%s is not a model llama.cpp can load (corrupt or unsupported GGUF)",
                       p->model_path);
    }
    e->vocab = llama_model_get_vocab(e->model);
    e->no_vocab = !e->vocab || llama_vocab_type(e->vocab) == LLAMA_VOCAB_TYPE_NONE || llama_vocab_n_tokens(e->vocab) <= 0;
    e->recurrent = llama_model_is_recurrent(e->model) || llama_model_is_hybrid(e->model);
    e->pure_recurrent = llama_model_is_recurrent(e->model) && !llama_model_is_hybrid(e->model);
    e->n_swa = llama_model_n_swa(e->model);
    e->swa_full = p->swa_full;
    e->need_ckpt = p->ckpt_max_bytes >= 0 && (e->recurrent || (e->n_swa > 0 && !e->swa_full));
    e->ckpt_budget = p->ckpt_max_bytes > 0 ? (size_t)p->ckpt_max_bytes : (size_t)ESTIMATE_CKPT_BUDGET;
    if (e->no_vocab)
        LOG(LOG_WARN, "engine", "%s has no tokenizer: it serves token prompts only", p->model_path);
    engine__load_templates(e);
    e->n_ctx_train = llama_model_n_ctx_train(e->model);
    e->n_embd = llama_model_n_embd(e->model);
    e->cmax = policy_cmax(e->n_ctx_train, p->context_cap);
    if (engine__mem_init(e, err) != BW_OK) {
        engine_free(e);
        return BW_EINVAL;
    }
    e->kv_bytes_per_cell = estimate_grow_bytes_per_cell(&e->mem, e->swa_full);
    e->max_pool_cells = p->max_pool_cells > 0 ? p->max_pool_cells : (int64_t)e->p.n_parallel * e->cmax;
    if (e->max_pool_cells < e->p.min_pool_cells)
        e->max_pool_cells = e->p.min_pool_cells;
    e->n_ubatch = 512;
    e->slots = calloc((size_t)e->p.n_parallel, sizeof *e->slots);
    if (!e->slots) {
        engine_free(e);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    engine__disk_open(e);
    *out = e;
    return BW_OK;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    engine__prep_shutdown(e); /* first: its thread reads the model and the templates */
    while (e->queue_head) {
        struct job *j = e->queue_head;
        e->queue_head = j->next;
        engine__job_free(j);
    }
    /* What is cached leaves with the runner: saved, within a bounded time (the server
     * waits for a stopping runner; 10 s of writes is several GB on any disk). */
    if (e->slots)
        engine__disk_save_all(e, 10 * (int64_t)1000000000);
    engine__disk_close(e);
    for (int i = 0; e->slots && i < e->p.n_parallel; i++) {
        engine__job_free(e->slots[i].job);
        engine__ckpt_drop_after(e, i, 0);
        free(e->slots[i].kv.v);
    }
    free(e->slots);
    if (e->batch_cap)
        llama_batch_free(e->batch);
    if (e->ctx)
        llama_free(e->ctx);
    chat_template_free(e->jt);
    chat_template_free(e->jt_tools);
    engine__tok_free(e);
    for (size_t i = 0; i < ENGINE_TEMPLATE_CACHE; i++)
        chat_template_free(e->overrides[i].t);
    if (e->model)
        llama_model_free(e->model);
    free(e->state_buf);
    free(e);
}

int engine_shrink_idle(struct engine *e)
{
    if (!e->ctx || engine_has_work(e))
        return 0;
    /* Keep what the next expected turn needs: giving it back only to grow on that turn's
     * path would make the user wait for a growth that was already made. */
    int keep = imax(committed_cells(e, -1), expected_need(e));
    int target = imax(e->p.min_pool_cells, ceil_to(keep, GROW_QUANTUM));
    if (target > e->max_pool_cells)
        target = (int)e->max_pool_cells;
    if (target >= e->pool_cells)
        return 0;
    int old = e->pool_cells;
    return engine__pool_resize(e, target) == BW_OK ? old - e->pool_cells : 0;
}

void engine_status(const struct engine *e, struct engine_status *st)
{
    memset(st, 0, sizeof *st);
    st->pool_cells = e->pool_cells;
    st->n_parallel = e->p.n_parallel;
    st->n_ctx_train = e->n_ctx_train;
    st->context_max = e->cmax;
    st->max_pool_cells = e->max_pool_cells;
    st->kv_bytes_per_cell = e->kv_bytes_per_cell;
    struct estimate_pool_bytes pb;
    estimate_pool(&e->mem, e->pool_cells, e->p.n_parallel, e->n_ubatch, e->swa_full, &pb);
    snprintf(st->memory_kind, sizeof st->memory_kind, "%s", engine__mem_kind(e));
    snprintf(st->kv_type, sizeof st->kv_type, "%s", estimate_kv_type_name(e->kv_type));
    st->swa_bytes_per_cell = e->mem.swa_bytes_per_cell;
    st->kv_bytes = pb.kv;
    st->swa_bytes = pb.swa;
    st->recurrent_bytes = e->pool_cells ? pb.recurrent : 0;
    st->checkpoint_bytes = e->ckpt_bytes;
    st->pool_growths = e->growths;
    st->pool_shrinks = e->shrinks;
    st->last_growth_ns = e->last_growth_ns;
    st->pool_growths_ahead = e->growths_ahead;
    st->growth_ns_total = e->growth_ns_total;
    st->reserved_cells = committed_cells(e, -1);
    for (int i = 0; i < e->p.n_parallel; i++) {
        st->used_cells += e->slots[i].kv.n;
        st->checkpoints += e->slots[i].n_ck;
        if (e->slots[i].job)
            st->live++;
        else if (e->slots[i].state == SLOT_CACHED)
            st->cached++;
    }
    for (const struct job *j = e->queue_head; j; j = j->next)
        st->queued++;
    st->queued += engine__prep_count(e); /* still preparing (engine_prep.c) */
}

int engine_n_ctx_train(const struct engine *e) { return e->n_ctx_train; }
bool engine_has_vocab(const struct engine *e) { return !e->no_vocab; }
int engine_n_embd(const struct engine *e) { return e->n_embd; }
const char *engine_chat_template(const struct engine *e) { return e->tmpl; }
