/* engine_reuse.c -- prefix reuse for every memory kind (issue 18): what a cached or live
 * sequence can give a new prompt, and the state calls that give it.
 *
 *   full attention   the cells themselves: trim a cached sequence's tail, or share a live
 *                    one's cells (llama_memory_seq_cp shares, it does not copy);
 *   sliding window   the same, as long as the cache still holds the window the first new
 *                    token looks at (positions from n - n_swa + 1); beyond it, a checkpoint
 *                    of the SWA cells. Not swa_full: at a 32k pool a full-size SWA cache is
 *                    ~7x the window cache of four sequences, while a checkpoint is one
 *                    window (n_swa + a micro-batch of cells) in host memory, restored in a
 *                    copy (bench/engine_bench.c --turns measures TTFT of both);
 *   recurrent        the state after all of a sequence's tokens: usable as is only when the
 *                    whole sequence is the prefix; else a checkpoint (the state at an earlier
 *                    length). A live recurrent sequence is shared the same way: seq_cp copies
 *                    its whole state, so only when all of it is the prefix, else through one
 *                    of its checkpoints, else not (never a state holding more than the prefix);
 *   hybrid           both: the attention cells are trimmed or shared, the recurrent part
 *                    comes from the whole state or a checkpoint.
 * Checkpoints are taken during prefill at the stops of ckpt.h, with the flag
 * LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY (llama-server's --ctx-checkpoints does the same). */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define PARTIAL LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

int engine__common_prefix(const struct tokvec *kv, const llama_token *p, int n)
{
    int m = imin(kv->n, n), i = 0;
    while (i < m && kv->v[i] == p[i])
        i++;
    return i;
}

/* True when sequence seq's sliding-window cells let a token at position n be evaluated:
 * it looks back at positions from n - n_swa + 1, which the sequence must still hold. */
static bool window_holds(struct engine *e, int seq, int n)
{
    if (e->n_swa <= 0 || e->swa_full || e->recurrent || n <= 0)
        return true; /* recurrent memory is never trimmed (whole state or checkpoint: that holds the
                        window too, LFM2's included), and a hybrid's pos_min is its recurrent state's */
    llama_pos pmin = llama_memory_seq_pos_min(llama_get_memory(e->ctx), seq);
    return pmin <= imax(0, n - e->n_swa + 1);
}

struct reuse_plan engine__reuse_plan(struct engine *e, int src, const llama_token *prompt, int n_prompt)
{
    struct reuse_plan pl = {.n = 0, .src = src, .ck = -1};
    const struct slot *s = &e->slots[src];
    /* one token must be evaluated to get logits */
    int limit = imin(engine__common_prefix(&s->kv, prompt, n_prompt), n_prompt - 1);
    if (limit <= 0 || !e->ctx)
        return pl;
    int direct = limit;
    if (e->recurrent && limit != s->kv.n)
        direct = 0; /* the state holds more than the prefix */
    else if (!window_holds(e, src, limit))
        direct = 0; /* the window behind the prefix is gone */
    int ck = e->need_ckpt ? ckpt_pick(s->ck, s->n_ck, limit) : -1;
    if (ck >= 0 && s->ck[ck].n > direct) {
        pl.n = s->ck[ck].n;
        pl.ck = ck;
    } else {
        pl.n = direct;
    }
    return pl;
}

static int reuse_fail(struct engine *e, int dst, const char *what)
{
    LOG(LOG_WARN, "engine", "seq=%d: %s failed; evaluating the prompt from the start", dst, what);
    llama_memory_seq_rm(llama_get_memory(e->ctx), dst, -1, -1);
    return 0;
}

int engine__reuse_apply(struct engine *e, int dst, const struct reuse_plan *pl)
{
    llama_memory_t mem = llama_get_memory(e->ctx);
    if (pl->n <= 0) {
        llama_memory_seq_rm(mem, dst, -1, -1);
        return 0;
    }
    struct slot *src = &e->slots[pl->src];
    const struct ckpt *ck = pl->ck >= 0 ? &src->ck[pl->ck] : NULL;
    if (pl->src != dst) {
        llama_memory_seq_rm(mem, dst, -1, -1);
        if (!ck || !e->pure_recurrent) /* the attention cells (a pure recurrent model has none) */
            llama_memory_seq_cp(mem, pl->src, dst, 0, pl->n);
    }
    if (ck) {
        /* Replaces dst's untrimmable part (its recurrent state, its SWA cells) by the
         * checkpoint's; the attention cells past n are trimmed below. */
        if (llama_state_seq_set_data_ext(e->ctx, ck->data, ck->size, dst, PARTIAL) == 0)
            return reuse_fail(e, dst, "restoring a checkpoint");
        src->ck[pl->ck].used = ++e->tick;
        e->ckpt_restored++;
    }
    if (pl->src == dst && !llama_memory_seq_rm(mem, dst, pl->n, -1))
        return reuse_fail(e, dst, "trimming");
    if (!window_holds(e, dst, pl->n))
        return reuse_fail(e, dst, "keeping the window");
    return pl->n;
}

static void ckpt_free_at(struct engine *e, struct slot *s, int k)
{
    e->ckpt_bytes -= s->ck[k].size;
    free(s->ck[k].data);
    s->ck[k] = s->ck[--s->n_ck];
    memset(&s->ck[s->n_ck], 0, sizeof s->ck[s->n_ck]);
}

void engine__ckpt_drop_after(struct engine *e, int i, int n)
{
    struct slot *s = &e->slots[i];
    for (int k = s->n_ck - 1; k >= 0; k--)
        if (s->ck[k].n > n)
            ckpt_free_at(e, s, k);
}

/* Drops the checkpoint used longest ago, over every slot. False when there is none. */
static bool ckpt_evict_oldest(struct engine *e)
{
    int vs = -1, vk = -1;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        int k = ckpt_oldest(s->ck, s->n_ck);
        if (k >= 0 && (vs < 0 || s->ck[k].used < e->slots[vs].ck[vk].used)) {
            vs = i;
            vk = k;
        }
    }
    if (vs < 0)
        return false;
    ckpt_free_at(e, &e->slots[vs], vk);
    return true;
}

void engine__ckpt_take(struct engine *e, int i)
{
    struct slot *s = &e->slots[i];
    for (int k = 0; k < s->n_ck; k++)
        if (s->ck[k].n == s->kv.n)
            return; /* one of this length is there already: the same tokens, the same state */
    size_t need = llama_state_seq_get_size_ext(e->ctx, i, PARTIAL);
    if (need == 0 || need > e->ckpt_budget)
        return;
    if (s->n_ck == CKPT_PER_SLOT)
        ckpt_free_at(e, s, ckpt_oldest(s->ck, s->n_ck));
    while (e->ckpt_bytes + need > e->ckpt_budget && ckpt_evict_oldest(e))
        ;
    uint8_t *data = malloc(need);
    if (!data)
        return;
    size_t got = llama_state_seq_get_data_ext(e->ctx, data, need, i, PARTIAL);
    if (got == 0) {
        free(data);
        return;
    }
    s->ck[s->n_ck++] = (struct ckpt){.n = s->kv.n, .data = data, .size = got, .used = ++e->tick};
    e->ckpt_bytes += got;
    e->ckpt_taken++;
    LOG(LOG_DEBUG, "engine", "seq=%d: checkpoint at %d tokens (%zu bytes; %zu held)", i, s->kv.n, got,
        e->ckpt_bytes);
}
