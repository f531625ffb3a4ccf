/* engine.c -- see engine.h for the contract. Reading order: slots and jobs, the pool
 * (create / resize / account), submit (sizing), admission (prefix reuse), the step
 * (batch, decode, sample, retire), embeddings, status. */
#define _GNU_SOURCE
#include "engine/engine.h"
#include "util/clock.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/chat.h"
#include "engine/textout.h"
#include "template/chat_template.h"
#include "llama.h"
#include "template/reasoning.h"
#include "util/log.h"

#define POOL_FLOOR 4096       /* smallest pool: the smallest reservation D */
#define GROW_QUANTUM 1024     /* reservations and pools grow in these steps */
#define N_BATCH_MAX 2048      /* tokens per llama_decode (capped at n_ctx by libllama) */

static int ceil_to(int x, int q) { return (x + q - 1) / q * q; }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ---- slots and jobs ---------------------------------------------------------------- */

/* A growable token array: the tokens whose KV a slot holds, position = index. */
struct tokvec {
    llama_token *v;
    int n, cap;
};

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

enum slot_state {
    SLOT_FREE,    /* no KV */
    SLOT_CACHED,  /* a finished sequence's KV, kept for prefix reuse */
    SLOT_PREFILL, /* a request is evaluating its prompt */
    SLOT_GEN,     /* a request is generating */
};

/* One llama sequence id of the pool. Slot i is seq_id i. */
struct slot {
    enum slot_state state;
    struct tokvec kv;
    uint64_t lru;     /* engine tick of the last use; lowest is evicted first */
    struct job *job;  /* the request using it, when PREFILL or GEN */
};

/* One request, from submit to DONE. Owned by the engine: in the wait queue until
 * admitted, then referenced by its slot. */
struct job {
    struct job *next; /* wait queue link */
    uint64_t req_id;
    enum engine_kind kind;
    llama_token *prompt; /* the prompt after any cut: what the sequence must hold */
    int n_prompt;
    int slot;            /* -1 while queued */
    int n_reserved;      /* D, grown while generating */
    int n_prefilled;     /* prompt tokens already in the slot's KV */
    int num_predict;
    bool truncate;
    bool cancelled;
    struct llama_sampler *chain;
    struct textout out;
    bool split;                   /* the text goes through `think` (a thinking template) */
    struct reasoning_cfg think_cfg;
    struct reasoning_split think; /* reasoning vs answer, streamed (template/reasoning.h) */
    llama_token pending; /* sampled, emitted, not yet decoded */
    bool has_pending;
    int out_idx;         /* this step's output row in the batch, or -1 */
    struct engine_stats st;
    int64_t t_submit, t_admit, t_first;
    int growths_at_admit;
};

#define ENGINE_TEMPLATE_CACHE 4
struct template_slot {
    struct chat_template *t;
    uint64_t used;
};

struct engine {
    struct engine_params p;
    engine_emit_fn emit;
    void *emit_ud;

    struct llama_model *model;
    const struct llama_vocab *vocab;
    const char *tmpl;         /* the model's chat template text, or NULL */
    struct chat_template *jt;       /* ... parsed once */
    struct chat_template *jt_tools; /* tokenizer.chat_template.tool_use, for requests with tools */
    char tmpl_error[256];           /* why the GGUF's template does not parse ("" when it does) */
    struct template_slot overrides[ENGINE_TEMPLATE_CACHE]; /* Modelfile TEMPLATE texts, parsed */
    const char *bos_text, *eos_text; /* the vocabulary's BOS/EOS token texts, for templates */
    bool warned_fallback;
    int n_ctx_train, cmax, n_embd;
    uint64_t kv_bytes_per_cell;
    int64_t max_pool_cells;

    struct llama_context *ctx; /* the pool; NULL before the first request */
    int pool_cells;
    struct llama_batch batch;
    int batch_cap;
    uint8_t *state_buf;        /* reused across moves: fresh buffers are slow to fill */
    size_t state_buf_len;

    struct slot *slots;        /* n_parallel */
    struct job *queue_head, *queue_tail;
    uint64_t tick;
    uint64_t seed_state;
    int growths, shrinks;
    int64_t last_growth_ns;
};

static struct job *find_job(const struct engine *e, uint64_t req_id)
{
    for (struct job *j = e->queue_head; j; j = j->next)
        if (j->req_id == req_id)
            return j;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job && e->slots[i].job->req_id == req_id)
            return e->slots[i].job;
    return NULL;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->chain)
        llama_sampler_free(j->chain);
    textout_fini(&j->out);
    free(j->prompt);
    free(j);
}

static void emit_simple(struct engine *e, uint64_t req_id, enum engine_event_type type, const char *text,
                        size_t len, const struct engine_stats *st)
{
    struct engine_event ev = {.req_id = req_id, .type = type, .text = text, .len = len, .stats = st};
    e->emit(e->emit_ud, &ev);
}

/* ---- reasoning: a job's text, split into thinking and answer ---------------------------- */

/* Decides once per request, from the template that rendered the prompt and the prompt
 * itself, whether its text is split (template/reasoning.h). Raw prompts never are. */
static void job_reasoning_init(struct engine *e, struct job *j, const struct engine_request *r, const char *rendered)
{
    if (r->kind == ENGINE_EMBED || (r->kind == ENGINE_GENERATE && r->raw))
        return;
    /* The same choice as pick_template(): a Modelfile TEMPLATE replaces the GGUF's. */
    const char *tmpl = r->chat_template && *r->chat_template ? r->chat_template : e->tmpl;
    reasoning_detect(tmpl, rendered, r->think, &j->think_cfg);
    j->split = j->think_cfg.format != REASONING_NONE;
    if (j->split)
        reasoning_init(&j->think, &j->think_cfg);
}

struct text_sink {
    struct engine *e;
    uint64_t req_id;
};

static void emit_split_piece(void *ud, bool thinking, const char *text, size_t len)
{
    struct text_sink *k = ud;
    struct engine_event ev = {.req_id = k->req_id, .type = ENGINE_EV_TEXT, .text = text, .len = len,
                              .thinking = thinking};
    k->e->emit(k->e->emit_ud, &ev);
}

/* Emits answer text (after stop strings): as it is, or through the job's splitter. */
static void emit_text(struct engine *e, struct job *j, const char *text, size_t len)
{
    if (!j->split) {
        emit_simple(e, j->req_id, ENGINE_EV_TEXT, text, len, NULL);
        return;
    }
    struct text_sink k = {e, j->req_id};
    reasoning_feed(&j->think, text, len, emit_split_piece, &k);
}

/* The job's text ended: releases what the splitter still holds. */
static void emit_text_end(struct engine *e, struct job *j)
{
    struct text_sink k = {e, j->req_id};
    if (j->split)
        reasoning_finish(&j->think, emit_split_piece, &k);
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
    cp.n_batch = (uint32_t)imin(N_BATCH_MAX, n_cells);
    cp.n_ubatch = 512;
    cp.n_seq_max = (uint32_t)e->p.n_parallel;
    cp.kv_unified = true; /* one pool any sequence may fill; also what state moves need */
    /* Explicit, never "auto": a state only moves between contexts with the same setting. */
    cp.flash_attn_type = e->p.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
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

static void slot_clear(struct engine *e, int i)
{
    if (e->ctx)
        llama_memory_seq_rm(llama_get_memory(e->ctx), i, -1, -1);
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
    slot_clear(e, victim);
    return true;
}

/* Moves every sequence into a new context of n_cells (state get/set: bit-exact, no
 * re-prefill). On failure the old context stays as it was and BW_ENOMEM is returned. */
static int pool_resize(struct engine *e, int n_cells)
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
    } else if (old) {
        e->shrinks++;
    }
    LOG(LOG_INFO, "engine", "pool %d -> %d cells (%d sequences moved, %.1f ms, %.1f MiB KV)", old, e->pool_cells,
        moved, dt / 1e6, (double)e->pool_cells * (double)e->kv_bytes_per_cell / (1024.0 * 1024.0));
    return BW_OK;
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
    /* Grow in large steps: creating a context costs ~9 ms per 1k cells, whatever it holds. */
    int target = imax(ceil_to(need, POOL_FLOOR), ceil_to(e->pool_cells + e->pool_cells / 2, GROW_QUANTUM));
    if (!e->ctx)
        target = imax(need, e->p.min_pool_cells);
    target = (int)(target > e->max_pool_cells ? e->max_pool_cells : target);
    return pool_resize(e, target);
}

/* ---- tokenizing and rendering ------------------------------------------------------ */

int engine_tokenize(struct engine *e, const char *text, bool add_special, int32_t **out, int *n_out)
{
    int len = (int)strlen(text);
    int cap = len + 8;
    llama_token *toks = malloc((size_t)cap * sizeof *toks);
    if (!toks)
        return BW_ENOMEM;
    int n = llama_tokenize(e->vocab, text, len, toks, cap, add_special, true);
    if (n < 0) {
        cap = -n;
        llama_token *bigger = realloc(toks, (size_t)cap * sizeof *toks);
        if (!bigger) {
            free(toks);
            return BW_ENOMEM;
        }
        toks = bigger;
        n = llama_tokenize(e->vocab, text, len, toks, cap, add_special, true);
    }
    if (n < 0) {
        free(toks);
        return BW_EINVAL;
    }
    *out = toks;
    *n_out = n;
    return BW_OK;
}

/* The text of one token (special tokens are not printed). Returns the length, or -1. */
static int token_piece(struct engine *e, llama_token tok, char *buf, int cap)
{
    int n = llama_token_to_piece(e->vocab, tok, buf, cap, 0, false);
    return n < 0 ? -1 : n;
}

/* A control token renders as "" (token_piece), but the reasoning markers of some formats
 * are control tokens (<|end|>, <|START_THINKING|>, [THINK]): those render as their text so
 * the splitter sees them. Returns the piece's length, 0 for any other control token. */
static int marker_piece(struct engine *e, const struct reasoning_cfg *cfg, llama_token tok, char *buf, int cap)
{
    int n = llama_token_to_piece(e->vocab, tok, buf, cap, 0, true);
    return n > 0 && reasoning_marker_token(cfg, buf, (size_t)n) ? n : 0;
}

int engine_detokenize(struct engine *e, const int32_t *tokens, int n, char **out, size_t *len)
{
    /* libllama looks ids up with bounds-checked C++ accessors: an id out of range would
     * throw through C and end the process. */
    int n_vocab = llama_vocab_n_tokens(e->vocab);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return BW_EINVAL;
    int cap = n * 8 + 16;
    char *s = malloc((size_t)cap + 1);
    if (!s)
        return BW_ENOMEM;
    int got = llama_detokenize(e->vocab, tokens, n, s, cap, false, true);
    if (got < 0) {
        cap = -got;
        char *b = realloc(s, (size_t)cap + 1);
        if (!b) {
            free(s);
            return BW_ENOMEM;
        }
        s = b;
        got = llama_detokenize(e->vocab, tokens, n, s, cap, false, true);
    }
    if (got < 0) {
        free(s);
        return BW_EINVAL;
    }
    s[got] = '\0';
    *out = s;
    *len = (size_t)got;
    return BW_OK;
}

/* ---- chat templates ---------------------------------------------------------------- */

/* The template a request renders with: the Modelfile's Jinja override (parsed once and
 * kept in a small cache), the GGUF's tool_use variant when the request has tools, or the
 * GGUF's own. *out NULL means the model has no template at all: only then does
 * llama_chat_apply_template() (ChatML) render. A GGUF template that does not parse fails
 * every chat with its parse error rather than silently rendering something else. */
static int pick_template(struct engine *e, const struct engine_request *r, const struct chat_template **out,
                         struct bw_err *err)
{
    *out = NULL;
    if (r->chat_template && *r->chat_template) {
        size_t oldest = 0;
        for (size_t i = 0; i < ENGINE_TEMPLATE_CACHE; i++) {
            struct template_slot *c = &e->overrides[i];
            if (c->t && !strcmp(chat_template_text(c->t), r->chat_template)) {
                c->used = ++e->tick;
                *out = c->t;
                return BW_OK;
            }
            if (!c->t || c->used < e->overrides[oldest].used)
                oldest = i;
        }
        struct chat_template *t;
        int rc = chat_template_parse(r->chat_template, &t, err);
        if (rc)
            return rc;
        chat_template_free(e->overrides[oldest].t);
        e->overrides[oldest] = (struct template_slot){t, ++e->tick};
        *out = t;
        return BW_OK;
    }
    if (e->tmpl_error[0])
        return bw_errf(err, BW_EINVAL, "%s", e->tmpl_error);
    *out = r->tools_json && e->jt_tools ? e->jt_tools : e->jt;
    return BW_OK;
}

/* What one request renders with; also the ud of the cut's token counter. */
struct render_ctx {
    struct engine *e;
    const struct engine_request *r;
    const struct chat_template *tmpl; /* NULL: no template (ChatML through libllama) */
    int64_t now_unix;
    int32_t utc_offset_s;
    struct bw_err *err;
};

static void render_ctx_init(struct render_ctx *rc, struct engine *e, const struct engine_request *r,
                            const struct chat_template *t, struct bw_err *err)
{
    time_t now = (time_t)(clock_real_ns() / 1000000000);
    struct tm tm;
    localtime_r(&now, &tm);
    *rc = (struct render_ctx){.e = e, .r = r, .tmpl = t, .now_unix = (int64_t)now,
                              .utc_offset_s = (int32_t)tm.tm_gmtoff, .err = err};
}

static bool is_cut_marker(const struct policy_msg *m)
{
    return !m->json && m->content && !strcmp(m->content, POLICY_CUT_MARKER);
}

static int render(struct render_ctx *rc, const struct policy_msg *msgs, size_t n, char **out, size_t *len)
{
    struct engine *e = rc->e;
    if (!rc->tmpl) {
        bool fallback = false;
        int code = chat_render(NULL, msgs, n, true, out, len, &fallback);
        if (!e->warned_fallback) {
            LOG(LOG_WARN, "engine", "the model has no chat template; rendering chats as ChatML");
            e->warned_fallback = true;
        }
        return code ? bw_errf(rc->err, code, "could not render the chat") : BW_OK;
    }
    struct chat_render_in in = {.msgs = msgs, .n_msgs = n, .tools_json = rc->r->tools_json, .think = rc->r->think,
                                .add_generation_prompt = true, .bos_token = e->bos_text, .eos_token = e->eos_text,
                                .now_unix = rc->now_unix, .utc_offset_s = rc->utc_offset_s};
    struct bw_err why;
    int code = chat_template_render(rc->tmpl, &in, out, len, &why);
    if (code == BW_EINVAL) {
        /* A cut chat carries the marker as a system message; a template that refuses system
         * messages (Gemma 2) or one in the middle renders the cut chat without it. */
        struct policy_msg *kept = malloc((n ? n : 1) * sizeof *kept);
        size_t k = 0;
        for (size_t i = 0; kept && i < n; i++)
            if (!is_cut_marker(&msgs[i]))
                kept[k++] = msgs[i];
        if (kept && k < n) {
            in.msgs = kept;
            in.n_msgs = k;
            struct bw_err again;
            if (chat_template_render(rc->tmpl, &in, out, len, &again) == BW_OK)
                code = BW_OK;
        }
        free(kept);
    }
    if (code)
        return bw_errf(rc->err, code, "chat template error: %s", why.msg);
    return BW_OK;
}

/* Tokenizes a rendered chat. A template that prints bos_token itself must not get a second
 * BOS from the tokenizer: when both are there, the tokenizer's goes. */
static int tokenize_rendered(struct engine *e, const char *text, int32_t **toks, int *n)
{
    int rc = engine_tokenize(e, text, true, toks, n);
    llama_token bos = llama_vocab_bos(e->vocab);
    if (rc == BW_OK && *n >= 2 && bos != LLAMA_TOKEN_NULL && (*toks)[0] == bos && (*toks)[1] == bos) {
        memmove(*toks, *toks + 1, (size_t)(*n - 1) * sizeof **toks);
        (*n)--;
    }
    return rc;
}

/* Rendered + tokenized, with images priced: the counter policy_chat_cut() measures with. */
#define IMAGE_TOKENS 768 /* the token estimate of one image (no vision encoder yet) */

static int count_rendered(void *ud, const struct policy_msg *msgs, size_t n)
{
    struct render_ctx *rc = ud;
    char *text;
    size_t len;
    int code = render(rc, msgs, n, &text, &len);
    if (code == BW_EINVAL)
        for (size_t i = 0; i < n; i++)
            if (is_cut_marker(&msgs[i]))
                return INT_MAX / 4; /* the template refuses this cut (roles must alternate...): too
                                       big, so the cut's search tries another one */
    if (code)
        return code;
    int32_t *toks;
    int n_tok;
    code = tokenize_rendered(rc->e, text, &toks, &n_tok);
    free(text);
    if (code)
        return code;
    free(toks);
    for (size_t i = 0; i < n; i++)
        n_tok += msgs[i].n_images * IMAGE_TOKENS;
    return n_tok;
}

/* ---- submit: sizing once per request ----------------------------------------------- */

static uint32_t pick_seed(struct engine *e, int64_t seed)
{
    if (seed >= 0)
        return (uint32_t)seed;
    e->seed_state = e->seed_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(e->seed_state >> 33);
}

static void cut_raw(struct engine *e, struct job *j, int num_keep, int num_predict);

/* Tokenizes a chat into j->prompt, cutting it at Cmax when needed: by the chat rule, or
 * for a templated generate (raw_cut) by the raw-prompt rule, as for any generate request
 * (spec/context.md rules 5 and 6). */
static int size_chat(struct engine *e, const struct engine_request *r, const struct policy_msg *msgs, size_t n,
                     struct job *j, int num_predict, int raw_cut_keep, bool raw_cut, char **rendered,
                     struct bw_err *err)
{
    const struct chat_template *t;
    int rc = pick_template(e, r, &t, err);
    if (rc)
        return rc;
    struct render_ctx rctx;
    render_ctx_init(&rctx, e, r, t, err);
    size_t len;
    rc = render(&rctx, msgs, n, rendered, &len);
    if (rc)
        return rc;
    rc = tokenize_rendered(e, *rendered, &j->prompt, &j->n_prompt);
    if (rc)
        return bw_errf(err, rc, "could not tokenize the prompt");
    int L = j->n_prompt;
    for (size_t i = 0; i < n; i++)
        L += msgs[i].n_images * IMAGE_TOKENS;
    int room = policy_room(L, num_predict, e->cmax);
    j->st.prompt_tokens = L;
    j->n_reserved = policy_reservation(L, num_predict, e->cmax);
    if (!policy_must_cut(L, room, e->cmax))
        return BW_OK;
    if (raw_cut) {
        cut_raw(e, j, raw_cut_keep, num_predict);
        return BW_OK;
    }

    struct policy_msg *kept = malloc((n + 1) * sizeof *kept);
    int *idx = malloc((n + 1) * sizeof *idx);
    struct policy_chat_cut cut = {.msgs = kept, .idx = idx};
    rc = kept && idx ? policy_chat_cut(msgs, n, e->cmax, room, count_rendered, &rctx, &cut, err)
                     : bw_errf(err, BW_ENOMEM, "out of memory");
    if (rc == BW_OK) {
        free(*rendered);
        free(j->prompt);
        j->prompt = NULL;
        *rendered = NULL;
        rc = render(&rctx, cut.msgs, cut.n_kept, rendered, &len);
        if (rc == BW_OK && (rc = tokenize_rendered(e, *rendered, &j->prompt, &j->n_prompt)))
            bw_errf(err, rc, "could not tokenize the cut chat");
        j->st.truncated_messages = (int)cut.n_dropped;
        j->st.truncated_tokens = L - cut.n_tokens_after;
    }
    free(kept);
    free(idx);
    return rc;
}

/* The raw-prompt cut: keep num_keep head tokens and the newest ones. */
static void cut_raw(struct engine *e, struct job *j, int num_keep, int num_predict)
{
    int L = j->n_prompt;
    int room = policy_room(L, num_predict, e->cmax);
    if (!policy_must_cut(L, room, e->cmax))
        return;
    struct policy_raw_cut cut;
    if (policy_raw_cut(L, num_keep, policy_prompt_budget(e->cmax, room), &cut, NULL) != BW_OK)
        return;
    memmove(j->prompt + cut.n_head, j->prompt + cut.tail_start, (size_t)(L - cut.tail_start) * sizeof *j->prompt);
    j->n_prompt = L - cut.n_dropped;
    j->st.truncated_tokens = cut.n_dropped;
}

int engine_submit(struct engine *e, const struct engine_request *r, struct bw_err *err)
{
    if (find_job(e, r->req_id))
        return bw_errf(err, BW_EBUSY, "request %llu is already in flight", (unsigned long long)r->req_id);
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    j->req_id = r->req_id;
    j->kind = r->kind;
    j->slot = -1;
    j->out_idx = -1;
    j->num_predict = r->num_predict > 0 ? r->num_predict : 0;
    j->truncate = r->truncate;
    j->t_submit = clock_mono_ns();
    j->st.context_max = e->cmax;
    char *rendered = NULL;
    int rc;

    if (r->kind == ENGINE_CHAT) {
        if (r->n_msgs == 0) {
            rc = bw_errf(err, BW_EINVAL, "messages are empty");
            goto fail;
        }
        rc = size_chat(e, r, r->msgs, r->n_msgs, j, r->num_predict, 0, false, &rendered, err);
    } else if (r->kind == ENGINE_GENERATE && !r->raw) {
        struct policy_msg m[2];
        size_t n = 0;
        if (r->system && *r->system)
            m[n++] = (struct policy_msg){.role = "system", .content = r->system};
        m[n++] = (struct policy_msg){.role = "user", .content = r->prompt ? r->prompt : ""};
        rc = size_chat(e, r, m, n, j, r->num_predict, r->num_keep, true, &rendered, err);
    } else {
        rendered = strdup(r->prompt ? r->prompt : "");
        rc = rendered ? engine_tokenize(e, rendered, true, &j->prompt, &j->n_prompt) : BW_ENOMEM;
        if (rc) {
            bw_errf(err, rc, "could not tokenize the prompt");
        } else if (r->kind == ENGINE_EMBED) {
            int keep;
            j->st.prompt_tokens = j->n_prompt;
            rc = policy_embed_cut(j->n_prompt, e->cmax, r->truncate, &keep, err);
            if (rc == BW_OK) {
                j->st.truncated_tokens = j->n_prompt - keep;
                j->n_prompt = keep;
                j->n_reserved = keep;
            }
        } else {
            j->st.prompt_tokens = j->n_prompt;
            j->n_reserved = policy_reservation(j->n_prompt, r->num_predict, e->cmax);
            cut_raw(e, j, r->num_keep, r->num_predict);
        }
    }
    if (rc)
        goto fail;
    if (j->n_prompt == 0) {
        rc = bw_errf(err, BW_EINVAL, "the prompt is empty");
        goto fail;
    }
    j->st.context_length = j->n_reserved;
    j->st.prompt_eval_count = j->n_prompt;
    LOG_REQ(LOG_DEBUG, r->req_id, "engine", "sized L=%d D=%d Cmax=%d pool=%d prompt=%d cut_messages=%d cut_tokens=%d",
            j->st.prompt_tokens, j->n_reserved, e->cmax, e->pool_cells, j->n_prompt, j->st.truncated_messages,
            j->st.truncated_tokens);

    if (r->render_only) {
        if (j->st.truncated_tokens && !j->st.truncated_messages) {
            /* A raw cut happened on tokens: show what the model would really see. */
            char *text;
            size_t len;
            if (engine_detokenize(e, j->prompt, j->n_prompt, &text, &len) == BW_OK) {
                free(rendered);
                rendered = text;
            }
        }
        j->st.done_reason = "render";
        emit_simple(e, j->req_id, ENGINE_EV_RENDERED, rendered, strlen(rendered), &j->st);
        emit_simple(e, j->req_id, ENGINE_EV_DONE, NULL, 0, &j->st);
        free(rendered);
        job_free(j);
        return BW_OK;
    }
    job_reasoning_init(e, j, r, rendered);
    free(rendered);
    rendered = NULL;

    if (r->kind != ENGINE_EMBED) {
        j->chain = sampling_chain_new(&r->sampling, e->vocab, pick_seed(e, r->sampling.seed), e->cmax, r->grammar);
        if (!j->chain) {
            rc = r->grammar ? bw_errf(err, BW_EINVAL, "the grammar does not parse")
                            : bw_errf(err, BW_ENOMEM, "could not create the sampler");
            goto fail;
        }
    }
    if ((rc = textout_init(&j->out, r->stop, r->n_stop)) != BW_OK) {
        bw_errf(err, rc, "invalid stop strings");
        goto fail;
    }
    if (e->queue_tail)
        e->queue_tail->next = j;
    else
        e->queue_head = j;
    e->queue_tail = j;
    return BW_OK;

fail:
    free(rendered);
    job_free(j);
    return rc;
}

/* ---- finishing --------------------------------------------------------------------- */

static void job_finish(struct engine *e, struct job *j, const char *reason)
{
    struct textout_emit rest;
    if (textout_flush(&j->out, &rest) == BW_OK && rest.len)
        emit_text(e, j, rest.text, rest.len);
    emit_text_end(e, j);
    int64_t t = clock_mono_ns();
    j->st.done_reason = reason;
    j->st.total_ns = t - j->t_submit;
    if (j->t_first)
        j->st.eval_ns = t - j->t_first;
    j->st.pool_cells = e->pool_cells;
    j->st.pool_growths = e->growths - j->growths_at_admit;
    j->st.context_length = j->n_reserved;
    if (j->slot >= 0) {
        struct slot *s = &e->slots[j->slot];
        s->job = NULL;
        s->state = s->kv.n ? SLOT_CACHED : SLOT_FREE;
        s->lru = ++e->tick;
    }
    /* The server logs the request's info line (with its request id); this one is for
     * BELLOWS_DEBUG and for runners driven without a server. */
    LOG_REQ(LOG_DEBUG, j->req_id, "engine",
            "done reason=%s L=%d D=%d Cmax=%d pool=%d cached=%d evaluated=%d generated=%d ttft_ms=%.1f tok_s=%.1f",
            reason, j->st.prompt_tokens, j->n_reserved, e->cmax, e->pool_cells, j->st.prompt_cache_tokens,
            j->st.prompt_eval_count - j->st.prompt_cache_tokens, j->st.eval_count, j->st.ttft_ns / 1e6,
            j->st.eval_ns > 0 ? j->st.eval_count * 1e9 / j->st.eval_ns : 0.0);
    emit_simple(e, j->req_id, ENGINE_EV_DONE, NULL, 0, &j->st);
    job_free(j);
}

static void job_fail(struct engine *e, struct job *j, int code, const char *msg)
{
    if (j->slot >= 0) {
        e->slots[j->slot].job = NULL;
        slot_clear(e, j->slot);
    }
    LOG_REQ(LOG_WARN, j->req_id, "engine", "failed: %s", msg);
    emit_error(e, j->req_id, code, msg);
    job_free(j);
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
    struct job *j = find_job(e, req_id);
    if (!j)
        return BW_ENOTFOUND;
    j->cancelled = true;
    return BW_OK;
}

/* ---- admission --------------------------------------------------------------------- */

static int common_prefix(const struct tokvec *kv, const llama_token *p, int n)
{
    int m = imin(kv->n, n), i = 0;
    while (i < m && kv->v[i] == p[i])
        i++;
    return i;
}

static void run_embedding(struct engine *e, struct job *j);

/* Tries to admit the queue head. Returns true when it left the queue (admitted or failed). */
static bool admit_one(struct engine *e, struct job *j)
{
    /* Pick the slot: the non-live one with the longest common prefix, else a free one,
     * else the least recently used cached one. A live sequence with a longer prefix is
     * copied from (llama_memory_seq_cp shares its cells). */
    int target = -1, best = -1, copy_from = -1, copy_len = 0;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (s->job) {
            int c = j->kind == ENGINE_EMBED ? 0 : common_prefix(&s->kv, j->prompt, j->n_prompt);
            if (c > copy_len) {
                copy_from = i;
                copy_len = c;
            }
            continue;
        }
        int c = j->kind == ENGINE_EMBED ? 0 : common_prefix(&s->kv, j->prompt, j->n_prompt);
        if (target < 0 || c > best || (c == best && s->state == SLOT_FREE && e->slots[target].state != SLOT_FREE) ||
            (c == best && s->state == e->slots[target].state && s->lru < e->slots[target].lru)) {
            target = i;
            best = c;
        }
    }
    if (target < 0)
        return false; /* every sequence is live: wait */
    if (copy_len <= best)
        copy_from = -1;
    int reuse = copy_from >= 0 ? copy_len : best;
    if (reuse >= j->n_prompt)
        reuse = j->n_prompt - 1; /* one token must be evaluated to get logits */

    int need = j->n_reserved;
    int rc = pool_make_room(e, need, target, target);
    if (rc == BW_EBUSY) {
        if (committed_cells(e, target) == 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "the request needs %d KV cells but the memory budget allows %lld", need,
                     (long long)e->max_pool_cells);
            queue_remove(e, j);
            job_fail(e, j, BW_ENOMEM, msg);
            return true;
        }
        return false; /* wait in order for live requests to finish */
    }
    if (rc) {
        queue_remove(e, j);
        job_fail(e, j, rc, "could not allocate the KV pool");
        return true;
    }

    queue_remove(e, j);
    struct slot *s = &e->slots[target];
    llama_memory_t mem = llama_get_memory(e->ctx);
    if (tokvec_reserve(&s->kv, j->n_reserved) != BW_OK) {
        job_fail(e, j, BW_ENOMEM, "out of memory");
        return true;
    }
    if (copy_from >= 0) {
        llama_memory_seq_rm(mem, target, -1, -1);
        llama_memory_seq_cp(mem, copy_from, target, 0, reuse);
        memcpy(s->kv.v, e->slots[copy_from].kv.v, (size_t)reuse * sizeof *s->kv.v);
    } else if (!llama_memory_seq_rm(mem, target, reuse, -1)) {
        llama_memory_seq_rm(mem, target, -1, -1);
        reuse = 0;
    }
    s->kv.n = reuse;
    s->job = j;
    s->state = SLOT_PREFILL;
    s->lru = ++e->tick;
    j->slot = target;
    j->n_prefilled = reuse;
    j->st.prompt_cache_tokens = reuse;
    j->t_admit = clock_mono_ns();
    j->st.queue_ns = j->t_admit - j->t_submit;
    j->growths_at_admit = e->growths;
    LOG_REQ(LOG_DEBUG, j->req_id, "engine", "admitted seq=%d reuse=%d%s pool=%d committed=%d", target, reuse,
            copy_from >= 0 ? " (copied from a live sequence)" : "", e->pool_cells, committed_cells(e, -1));
    if (j->kind == ENGINE_EMBED)
        run_embedding(e, j);
    return true;
}

static void admit(struct engine *e)
{
    /* In order: a request that must wait holds back the ones behind it. */
    while (e->queue_head) {
        struct job *j = e->queue_head;
        if (j->cancelled) {
            queue_remove(e, j);
            job_finish(e, j, "cancel");
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
            job_finish(e, j, "length");
            continue;
        }
        int old = j->n_reserved;
        j->n_reserved = imin(e->cmax, j->n_reserved + GROW_QUANTUM);
        if (tokvec_reserve(&e->slots[i].kv, j->n_reserved) != BW_OK ||
            pool_make_room(e, 0, -1, -1) != BW_OK) {
            LOG_REQ(LOG_WARN, j->req_id, "engine", "no memory to extend the reservation past %d; stopping", old);
            j->n_reserved = old;
            job_finish(e, j, "length");
        }
    }
}

static void batch_add(struct llama_batch *b, llama_token tok, int pos, int seq, bool logits)
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
        if (e->slots[i].state == SLOT_GEN && j->has_pending && b->n_tokens < cap) {
            j->out_idx = b->n_tokens;
            batch_add(b, j->pending, e->slots[i].kv.n, i, true);
            chunk[i] = 1;
        }
    }
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct job *j = e->slots[i].job;
        if (!j || e->slots[i].state != SLOT_PREFILL)
            continue;
        int left = j->n_prompt - j->n_prefilled;
        int take = imin(left, cap - b->n_tokens);
        for (int k = 0; k < take; k++) {
            int p = j->n_prefilled + k;
            bool last = p == j->n_prompt - 1;
            if (last)
                j->out_idx = b->n_tokens;
            batch_add(b, j->prompt[p], p, i, last);
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
        }
    }
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
        if (llama_vocab_is_eog(e->vocab, tok)) {
            job_finish(e, j, "stop");
            continue;
        }
        int n = token_piece(e, tok, piece, sizeof piece);
        if (n == 0 && j->split)
            n = marker_piece(e, &j->think_cfg, tok, piece, sizeof piece);
        struct textout_emit out = {0};
        if (n > 0 && textout_push(&j->out, piece, (size_t)n, &out) == BW_OK && out.len)
            emit_text(e, j, out.text, out.len);
        if (out.stopped) {
            job_finish(e, j, "stop");
            continue;
        }
        j->pending = tok;
        j->has_pending = true;
        if (j->num_predict > 0 && j->st.eval_count >= j->num_predict)
            job_finish(e, j, "length");
    }
}

static void fail_live(struct engine *e, int code, const char *msg)
{
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job)
            job_fail(e, e->slots[i].job, code, msg);
}

int engine_step(struct engine *e)
{
    /* retire cancelled */
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job && e->slots[i].job->cancelled)
            job_finish(e, e->slots[i].job, "cancel");
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
            if (pool_resize(e, (int)(target < e->max_pool_cells ? target : e->max_pool_cells)) == BW_OK &&
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
    return BW_OK;
}

bool engine_has_work(const struct engine *e)
{
    if (e->queue_head)
        return true;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].job)
            return true;
    return false;
}

/* ---- embeddings -------------------------------------------------------------------- */

/* Evaluates an admitted embedding job at once in its own batches (embeddings on), emits
 * the vector and frees the slot. Models with a pooling type pool in libllama; others
 * (causal LMs) are mean-pooled here over every token's output embedding. */
static void run_embedding(struct engine *e, struct job *j)
{
    int seq = j->slot;
    int n_embd = e->n_embd;
    double *acc = calloc((size_t)n_embd, sizeof *acc);
    float *vec = malloc((size_t)n_embd * sizeof *vec);
    enum llama_pooling_type pooling = llama_pooling_type(e->ctx);
    int cap = (int)llama_n_batch(e->ctx);
    int rc = acc && vec ? 0 : -100;
    if (pooling != LLAMA_POOLING_TYPE_NONE && j->n_prompt > (int)llama_n_ubatch(e->ctx))
        rc = -101; /* pooled models need the whole input in one micro-batch */
    llama_set_embeddings(e->ctx, true);
    int64_t t0 = clock_mono_ns();
    for (int done = 0; rc == 0 && done < j->n_prompt;) {
        int take = imin(cap, j->n_prompt - done);
        e->batch.n_tokens = 0;
        for (int k = 0; k < take; k++)
            batch_add(&e->batch, j->prompt[done + k], done + k, seq, true);
        rc = llama_decode(e->ctx, e->batch);
        for (int k = 0; rc == 0 && pooling == LLAMA_POOLING_TYPE_NONE && k < take; k++) {
            const float *row = llama_get_embeddings_ith(e->ctx, k);
            for (int d = 0; row && d < n_embd; d++)
                acc[d] += row[d];
        }
        done += take;
    }
    if (rc == 0) {
        const float *pooled = pooling != LLAMA_POOLING_TYPE_NONE ? llama_get_embeddings_seq(e->ctx, seq) : NULL;
        for (int d = 0; d < n_embd; d++)
            vec[d] = pooled ? pooled[d] : (float)(acc[d] / j->n_prompt);
    }
    llama_set_embeddings(e->ctx, false);
    j->st.prompt_eval_ns = clock_mono_ns() - t0;
    /* The embedding pass's KV is not a generation prefix: drop it. */
    e->slots[seq].job = NULL;
    slot_clear(e, seq);
    j->slot = -1;
    if (rc == 0) {
        struct engine_event ev = {.req_id = j->req_id, .type = ENGINE_EV_EMBEDDING, .embd = vec, .n_embd = n_embd};
        e->emit(e->emit_ud, &ev);
        job_finish(e, j, "stop");
    } else {
        job_fail(e, j, rc == -101 ? BW_ETOOLONG : BW_ERUNNER,
                 rc == -101 ? "input is longer than one micro-batch of this pooled embedding model"
                            : "embedding evaluation failed");
    }
    free(acc);
    free(vec);
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

static void quiet_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR)
        log_write(LOG_ERROR, 0, "llama", "%.*s", (int)strcspn(text, "\n"), text);
}

static uint64_t kv_bytes_per_cell(const struct llama_model *m)
{
    char arch[64], key[128], val[32];
    int n_head = llama_model_n_head(m), n_head_kv = llama_model_n_head_kv(m);
    int64_t k_len = n_head ? llama_model_n_embd(m) / n_head : 0, v_len = k_len;
    if (llama_model_meta_val_str(m, "general.architecture", arch, sizeof arch) > 0) {
        snprintf(key, sizeof key, "%s.attention.key_length", arch);
        if (llama_model_meta_val_str(m, key, val, sizeof val) > 0)
            k_len = atoll(val);
        snprintf(key, sizeof key, "%s.attention.value_length", arch);
        if (llama_model_meta_val_str(m, key, val, sizeof val) > 0)
            v_len = atoll(val);
    }
    /* F16 K and V for every layer. */
    return (uint64_t)llama_model_n_layer(m) * (uint64_t)n_head_kv * (uint64_t)(k_len + v_len) * 2u;
}

/* The GGUF's templates, parsed once for the life of the runner. */
static void load_templates(struct engine *e)
{
    e->tmpl = llama_model_chat_template(e->model, NULL);
    struct bw_err err;
    if (e->tmpl && chat_template_parse(e->tmpl, &e->jt, &err) != BW_OK) {
        snprintf(e->tmpl_error, sizeof e->tmpl_error, "the model's chat template does not parse: %.200s", err.msg);
        LOG(LOG_WARN, "engine", "%s", e->tmpl_error);
    }
    const char *tools = llama_model_chat_template(e->model, "tool_use");
    if (tools && chat_template_parse(tools, &e->jt_tools, &err) != BW_OK)
        LOG(LOG_WARN, "engine", "the model's tool_use chat template does not parse (%s); using its default one",
            err.msg);
    llama_token bos = llama_vocab_bos(e->vocab), eos = llama_vocab_eos(e->vocab);
    e->bos_text = bos != LLAMA_TOKEN_NULL ? llama_vocab_get_text(e->vocab, bos) : "";
    e->eos_text = eos != LLAMA_TOKEN_NULL ? llama_vocab_get_text(e->vocab, eos) : "";
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
    load_templates(e);
    e->n_ctx_train = llama_model_n_ctx_train(e->model);
    e->n_embd = llama_model_n_embd(e->model);
    e->cmax = policy_cmax(e->n_ctx_train, p->context_cap);
    e->kv_bytes_per_cell = kv_bytes_per_cell(e->model);
    e->max_pool_cells = p->max_pool_cells > 0 ? p->max_pool_cells : (int64_t)e->p.n_parallel * e->cmax;
    if (e->max_pool_cells < e->p.min_pool_cells)
        e->max_pool_cells = e->p.min_pool_cells;
    e->slots = calloc((size_t)e->p.n_parallel, sizeof *e->slots);
    if (!e->slots) {
        engine_free(e);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    *out = e;
    return BW_OK;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    while (e->queue_head) {
        struct job *j = e->queue_head;
        e->queue_head = j->next;
        job_free(j);
    }
    for (int i = 0; e->slots && i < e->p.n_parallel; i++) {
        job_free(e->slots[i].job);
        free(e->slots[i].kv.v);
    }
    free(e->slots);
    if (e->batch_cap)
        llama_batch_free(e->batch);
    if (e->ctx)
        llama_free(e->ctx);
    chat_template_free(e->jt);
    chat_template_free(e->jt_tools);
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
    int cached = committed_cells(e, -1);
    int target = imax(e->p.min_pool_cells, ceil_to(cached, GROW_QUANTUM));
    if (target >= e->pool_cells)
        return 0;
    int old = e->pool_cells;
    return pool_resize(e, target) == BW_OK ? old - e->pool_cells : 0;
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
    st->kv_bytes = (uint64_t)e->pool_cells * e->kv_bytes_per_cell;
    st->pool_growths = e->growths;
    st->pool_shrinks = e->shrinks;
    st->last_growth_ns = e->last_growth_ns;
    st->reserved_cells = committed_cells(e, -1);
    for (int i = 0; i < e->p.n_parallel; i++) {
        st->used_cells += e->slots[i].kv.n;
        if (e->slots[i].job)
            st->live++;
        else if (e->slots[i].state == SLOT_CACHED)
            st->cached++;
    }
    for (const struct job *j = e->queue_head; j; j = j->next)
        st->queued++;
}

int engine_n_ctx_train(const struct engine *e) { return e->n_ctx_train; }
int engine_n_embd(const struct engine *e) { return e->n_embd; }
const char *engine_chat_template(const struct engine *e) { return e->tmpl; }
