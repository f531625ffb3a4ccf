/* engine_disk.c -- the pool's sequences saved to disk and restored by prefix (issue 15),
 * through kvcache/kvdisk.h: that module keeps the files; this one decides when a sequence
 * is saved (it leaves the pool: LRU eviction, the engine stopping) and when a saved prefix
 * is loaded instead of evaluated (it is longer than what the pool gives, and restoring it
 * is estimated cheaper than evaluating the extra tokens).
 *
 * Memory kinds: only memory that can be trimmed back to any length is saved -- full
 * attention (and MLA), or sliding-window layers kept whole (swa_full). A recurrent or
 * hybrid state holds the tokens it has seen as one state that cannot be cut, and a
 * window-only SWA cache has forgotten what lies behind the window; for those kinds the
 * disk cache is off (logged once at start), and reuse stays in the pool's checkpoints.
 *
 * A state is valid only for its setup: the setup key folds in the model digest, the KV
 * cache type, flash attention (it changes the V layout of a state) and the model's shape
 * (layers, embedding width, the SWA setting), so a file of another setup is never found. */
#include "engine/engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache/kvdisk.h"
#include "util/clock.h"
#include "util/log.h"

/* A prefix shorter than one block is cheap to evaluate and not worth a file. */
#define DISK_MIN_TOKENS KVDISK_BLOCK
/* Until measured: a CPU evaluates a small model's prompt at a few hundred tokens/s and a
 * disk reads hundreds of MB/s; the first restore and the first prompt replace these. */
#define DEFAULT_PREFILL_TPS 300.0
#define DEFAULT_RESTORE_BPS (400.0 * 1024 * 1024)

static void model_key_of(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strncmp(base, "sha256-", 7) && strlen(base) == 7 + 64)
        snprintf(buf, len, "sha256:%s", base + 7);
    else
        snprintf(buf, len, "%s", path);
}

void engine_kvdisk_model_key(const char *model_path, char *buf, size_t len)
{
    model_key_of(model_path, buf, len);
}

static bool kind_supported(const struct engine *e)
{
    return !e->recurrent && (e->n_swa <= 0 || e->swa_full);
}

void engine__disk_open(struct engine *e)
{
    e->restore_bps = DEFAULT_RESTORE_BPS;
    e->prefill_tps = DEFAULT_PREFILL_TPS;
    if (!e->p.kv_disk_dir || !e->p.kv_disk_dir[0] || e->p.kv_disk_budget == 0)
        return;
    if (!kind_supported(e)) {
        LOG(LOG_INFO, "engine", "KV disk cache off for this model: its memory (%s) cannot be trimmed back",
            engine__mem_kind(e));
        return;
    }
    char model_key[512], setup_key[1024];
    if (e->p.kv_disk_model_key && e->p.kv_disk_model_key[0])
        snprintf(model_key, sizeof model_key, "%s", e->p.kv_disk_model_key);
    else
        model_key_of(e->p.model_path, model_key, sizeof model_key);
    snprintf(setup_key, sizeof setup_key, "%s|kv=%s|fa=%d|swa_full=%d|n_layer=%d|n_embd=%d|n_vocab=%d", model_key,
             estimate_kv_type_name(e->kv_type), e->p.flash_attn ? 1 : 0, e->swa_full ? 1 : 0,
             llama_model_n_layer(e->model), e->n_embd,
             e->vocab ? llama_vocab_n_tokens(e->vocab) : 0);
    struct kvdisk_config c = {.dir = e->p.kv_disk_dir,
                              .budget_bytes = e->p.kv_disk_budget,
                              .model_key = model_key,
                              .setup_key = setup_key};
    struct bw_err err;
    if (kvdisk_open(&c, &e->kvd, &err) != BW_OK) {
        LOG(LOG_WARN, "engine", "KV disk cache off: %s", err.msg);
        e->kvd = NULL;
        return;
    }
    struct kvdisk_usage u;
    kvdisk_usage(e->kvd, &u);
    LOG(LOG_INFO, "engine", "KV disk cache %s: %d saved sequences of this model, %.1f of %.1f MiB used",
        e->p.kv_disk_dir, u.entries, u.bytes / 1048576.0, u.budget / 1048576.0);
}

void engine__disk_close(struct engine *e)
{
    if (e->kvd)
        kvdisk_close(e->kvd);
    e->kvd = NULL;
}

/* Grows the engine's reusable state buffer to n bytes. */
static bool state_buf(struct engine *e, size_t n)
{
    if (e->state_buf_len >= n)
        return true;
    uint8_t *b = realloc(e->state_buf, n);
    if (!b)
        return false;
    e->state_buf = b;
    e->state_buf_len = n;
    return true;
}

bool engine__disk_save(struct engine *e, int i)
{
    struct slot *s = &e->slots[i];
    if (!e->kvd || !e->ctx || s->kv.n < DISK_MIN_TOKENS)
        return false;
    int64_t t0 = clock_mono_ns();
    size_t need = llama_state_seq_get_size(e->ctx, i);
    if (need == 0 || !state_buf(e, need))
        return false;
    size_t got = llama_state_seq_get_data(e->ctx, e->state_buf, need, i);
    if (got == 0)
        return false;
    bool saved = false;
    struct bw_err err;
    if (kvdisk_save(e->kvd, s->kv.v, s->kv.n, e->state_buf, got, &saved, &err) != BW_OK) {
        LOG(LOG_WARN, "engine", "seq=%d: saving its KV to disk failed: %s", i, err.msg);
        return false;
    }
    LOG(LOG_DEBUG, "engine", "seq=%d: %s %d tokens (%zu bytes) to disk in %.1f ms", i,
        saved ? "saved" : "did not save (over the budget)", s->kv.n, got, (clock_mono_ns() - t0) / 1e6);
    return saved;
}

void engine__disk_before_reuse(struct engine *e, int target, int keep)
{
    struct slot *s = &e->slots[target];
    /* The slot's tail past `keep` leaves the pool now: the new prompt overwrites it. A few
     * tokens (the end of the last answer a template renders otherwise) are not worth it. */
    if (s->state == SLOT_CACHED && s->kv.n - keep >= DISK_MIN_TOKENS)
        engine__disk_save(e, target);
}

void engine__disk_save_all(struct engine *e, int64_t budget_ns)
{
    if (!e->kvd || !e->ctx)
        return;
    int64_t t0 = clock_mono_ns();
    int n = 0;
    bool tried[e->p.n_parallel];
    memset(tried, 0, sizeof tried);
    /* Most recently used first: the conversations most likely to come back. A live
     * sequence (the runner stopped mid-request) holds its prompt and what it generated:
     * as good a prefix as a finished one. */
    for (;;) {
        int pick = -1;
        for (int i = 0; i < e->p.n_parallel; i++) {
            struct slot *s = &e->slots[i];
            if (s->kv.n >= DISK_MIN_TOKENS && s->state != SLOT_FREE && !tried[i] &&
                (pick < 0 || s->lru > e->slots[pick].lru))
                pick = i;
        }
        if (pick < 0)
            break;
        if (clock_mono_ns() - t0 > budget_ns) {
            LOG(LOG_WARN, "engine", "stopping: out of time to save the remaining cached sequences");
            break;
        }
        tried[pick] = true;
        n += engine__disk_save(e, pick);
    }
    if (n)
        LOG(LOG_INFO, "engine", "saved %d cached sequence%s to disk in %.0f ms", n, n == 1 ? "" : "s",
            (clock_mono_ns() - t0) / 1e6);
}

static int from_pool(struct job *j, int reuse)
{
    if (reuse > 0)
        LOG_REQ(LOG_INFO, j->req_id, "engine", "prompt cache from pool: %d tokens", reuse);
    return reuse;
}

int engine__disk_restore(struct engine *e, struct job *j, int target, int reuse)
{
    if (j->kind == ENGINE_EMBED)
        return reuse;
    if (!e->kvd || !e->ctx)
        return from_pool(j, reuse);
    /* One token must be evaluated to get logits. */
    int limit = j->n_prompt - 1;
    struct kvdisk_hit hit;
    if (limit <= reuse || !kvdisk_lookup(e->kvd, j->prompt, limit, reuse + 1, &hit))
        return from_pool(j, reuse);
    int common = hit.common < limit ? hit.common : limit;
    if (common < DISK_MIN_TOKENS || common <= reuse)
        return from_pool(j, reuse);
    /* The state holds all its tokens until trimmed: they must fit the job's reservation
     * (admission made room for n_reserved cells in this sequence). */
    if (hit.n_tokens > j->n_reserved)
        return from_pool(j, reuse);
    double restore_s = (double)hit.state_len / e->restore_bps;
    double eval_s = (double)(common - reuse) / e->prefill_tps;
    if (restore_s >= eval_s) {
        LOG_REQ(LOG_DEBUG, j->req_id, "engine", "disk prefix of %d tokens not loaded: ~%.0f ms vs ~%.0f ms to evaluate",
                common, restore_s * 1e3, eval_s * 1e3);
        return from_pool(j, reuse);
    }
    int64_t t0 = clock_mono_ns();
    void *data = NULL;
    size_t len = 0;
    struct bw_err err;
    if (kvdisk_load(e->kvd, &hit, &data, &len, &err) != BW_OK) {
        LOG_REQ(LOG_WARN, j->req_id, "engine", "saved KV state skipped: %s", err.msg);
        return from_pool(j, reuse);
    }
    struct slot *s = &e->slots[target];
    llama_memory_t mem = llama_get_memory(e->ctx);
    llama_memory_seq_rm(mem, target, -1, -1);
    size_t used = llama_state_seq_set_data(e->ctx, data, len, target);
    free(data);
    if (used == 0 || !llama_memory_seq_rm(mem, target, common, -1)) {
        /* The pool no longer holds what the slot had: start from nothing. */
        llama_memory_seq_rm(mem, target, -1, -1);
        engine__ckpt_drop_after(e, target, 0);
        s->kv.n = 0;
        LOG_REQ(LOG_WARN, j->req_id, "engine", "seq=%d: loading a saved KV state failed; evaluating the prompt",
                target);
        return 0;
    }
    engine__ckpt_drop_after(e, target, 0);
    memcpy(s->kv.v, j->prompt, (size_t)common * sizeof *s->kv.v);
    s->kv.n = common;
    int64_t dt = clock_mono_ns() - t0;
    if (dt > 0) {
        double bps = (double)len * 1e9 / (double)dt;
        e->restore_bps = e->restore_bps * 0.5 + bps * 0.5;
    }
    LOG_REQ(LOG_INFO, j->req_id, "engine", "prompt cache from disk: %d tokens (pool had %d), %.1f MiB in %.1f ms",
            common, reuse, len / 1048576.0, dt / 1e6);
    return common;
}

void engine__disk_note_prefill(struct engine *e, const struct job *j)
{
    int evaluated = j->st.prompt_eval_count - j->st.prompt_cache_tokens;
    /* Short prompts measure overhead more than throughput. */
    if (evaluated < 256 || j->st.prompt_eval_ns <= 0)
        return;
    double tps = evaluated * 1e9 / (double)j->st.prompt_eval_ns;
    e->prefill_tps = e->prefill_tps * 0.5 + tps * 0.5;
}
