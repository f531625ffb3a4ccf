/* engine_int.h -- what the engine's files share: the engine, its slots and jobs, and the
 * functions one file calls in another. Not a public interface (engine.h is); the same
 * thread rules hold: one thread calls everything, except engine__prepare (engine_prep.c's
 * thread runs it on a request no other code touches meanwhile).
 *   engine.c         the pool, admission, the step, lifecycle
 *   engine_embed.c   embeddings
 *   engine_prompt.c  submit: chat templates, rendering, tokenizing, sizing and the cuts
 *   engine_prep.c    the same preparation on a thread of its own, for large requests
 *   engine_text.c    a job's text: the reasoning split and the tool-call parser, as events
 *   engine_reuse.c   prefix reuse per memory kind: checkpoints, trims, live copies
 *   engine_mem.c     the memory kinds of a model and their bytes (the math: sched/estimate.c) */
#ifndef BELLOWS_ENGINE_INT_H
#define BELLOWS_ENGINE_INT_H

#include "engine/engine.h"

#include <stdatomic.h>

#include "engine/ckpt.h"
#include "engine/logprobs.h"
#include "engine/textout.h"
#include "llama.h"
#include "sched/estimate.h"
#include "template/chat_template.h"
#include "template/reasoning.h"
#include "template/toolcall.h"

/* ---- slots and jobs ---------------------------------------------------------------- */

/* A growable token array: the tokens whose KV a slot holds, position = index. */
struct tokvec {
    llama_token *v;
    int n, cap;
};

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
    /* States of the parts that cannot be trimmed, at earlier lengths of kv (engine_reuse.c);
     * each one's tokens are kv.v[0 .. n-1]. Only for memory kinds that need them. */
    struct ckpt ck[CKPT_PER_SLOT];
    int n_ck;
    bool ckpt_due;    /* the prompt's last chunk is in: take one once its first token is out */
    int next_need;    /* cells the conversation's next turn is expected to reserve (its last turn
                         again, engine_grow_ahead); 0: none expected */
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
    bool paused;      /* engine_pause: left out of batches */
    struct llama_sampler *chain;
    struct textout out;
    bool split;                   /* the text goes through `think` (a thinking template) */
    struct reasoning_cfg think_cfg;
    struct reasoning_split think; /* reasoning vs answer, streamed (template/reasoning.h) */
    bool calls;                   /* the answer goes through `tc` (the request has tools) */
    struct toolcall_cfg tc_cfg;
    struct toolcall_parser tc;    /* content vs tool calls, streamed (template/toolcall.h) */
    char *call_grammar;           /* tool_choice "required"/"function": holds the model to a call */
    llama_token pending; /* sampled, emitted, not yet decoded */
    bool has_pending;
    int out_idx;         /* this step's output row in the batch, or -1 */
    struct engine_stats st;
    int64_t t_submit, t_admit, t_first;
    int growths_at_admit;
    bool want_context;   /* DONE carries prompt + sampled tokens (engine_request.want_context) */
    struct tokvec sampled; /* every sampled token, end-of-generation included (want_context) */
    bool logprobs;         /* LOGPROBS events (engine_request.logprobs) */
    int top_logprobs;
    struct logprob_queue lpq; /* entries whose text textout still holds (logprobs.h) */
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
    bool no_vocab;            /* no usable vocabulary (type NONE or 0 tokens): token prompts only;
                                 libllama asserts on any text call (tokenize, token_to_piece) */
    bool recurrent;           /* recurrent or hybrid memory: a state cannot be trimmed back, and a
                                 live copy copies the whole state, not a prefix */
    bool pure_recurrent;      /* recurrent with no attention cells at all (Mamba) */
    int n_swa;                /* sliding window of the SWA layers (0: none) */
    bool swa_full;            /* the SWA layers keep a full-size cache (engine_params.swa_full) */
    bool need_ckpt;           /* the memory has parts that cannot be trimmed: checkpoints at turn
                                 boundaries (recurrent, hybrid, or SWA without swa_full) */
    size_t ckpt_bytes;        /* held by every slot's checkpoints */
    size_t ckpt_budget;       /* their bound (engine_params.ckpt_max_bytes) */
    int ckpt_taken, ckpt_restored;
    struct estimate_memory mem; /* bytes of each memory kind (engine_mem.c), in kv_type */
    struct estimate_shape shape; /* ... as element counts, from the GGUF (store/gguf_mem.h) */
    int kv_type;              /* ESTIMATE_KV_*: the K and V cache type in use (engine_params.kv_type,
                                 or f16 where libllama cannot take it) */
    bool warned_fallback;
    int n_ctx_train, cmax, n_embd;
    uint64_t kv_bytes_per_cell;
    int64_t max_pool_cells;

    struct llama_context *ctx; /* the pool; NULL before the first request */
    int pool_cells;
    int n_ubatch;              /* micro-batch of the pool's contexts: 512, grown for pooled
                                  embeddings, which need a whole input in one micro-batch */
    struct llama_batch batch;
    int batch_cap;
    uint8_t *state_buf;        /* reused across moves: fresh buffers are slow to fill */
    size_t state_buf_len;

    struct slot *slots;        /* n_parallel */
    struct job *queue_head, *queue_tail;
    uint64_t tick;
    uint64_t seed_state;
    int growths, shrinks;
    int growths_ahead;        /* of growths, made while idle for an expected turn (engine_grow_ahead) */
    bool grow_ahead_due;      /* a turn finished since the last look */
    int64_t last_growth_ns, growth_ns_total;

    struct special_tok *specials; /* the vocabulary's special tokens (engine_tok.c) */
    int n_specials;
    bool tok_chunked;          /* long texts are tokenized in pieces (engine_tok.c) */
    struct tok_memos *memos;   /* the last prompts' texts and tokens, for the next turn (engine_tok.c) */
    int64_t tok_reused;        /* tokens taken from a memo instead of the tokenizer, in all */
    struct prep_state *prep;   /* preparation off the loop (engine_prep.c); NULL until first used */
    int64_t prep_async_bytes;  /* a request this big is prepared off the loop; 0: 256 KiB; < 0: never */
    int64_t prep_timeout_ns;   /* a preparation past this is refused; 0: 30 s */

    struct kvdisk *kvd;        /* saved sequences (engine_disk.c); NULL: the disk cache is off */
    double restore_bps;        /* measured: state bytes restored from disk per second */
    double prefill_tps;        /* measured: prompt tokens evaluated per second */
};

/* ---- engine.c ------------------------------------------------------------------------ */

struct job *engine__find_job(const struct engine *e, uint64_t req_id); /* queued or live, or NULL */
void engine__job_free(struct job *j); /* NULL is fine */
/* Emits one event with no more than a text and stats (TEXT, RENDERED, DONE). */
void engine__emit_simple(struct engine *e, uint64_t req_id, enum engine_event_type type, const char *text,
                         size_t len, const struct engine_stats *st);
void engine__slot_clear(struct engine *e, int i);       /* drops slot i's KV and checkpoints */
int engine__pool_resize(struct engine *e, int n_cells); /* moves every sequence; BW_ENOMEM keeps the old */
void engine__job_finish(struct engine *e, struct job *j, const char *reason); /* DONE, frees j */
void engine__job_fail(struct engine *e, struct job *j, int code, const char *msg); /* ERROR, frees j */
void engine__batch_add(struct llama_batch *b, llama_token tok, int pos, int seq, bool logits);

/* ---- engine_embed.c ------------------------------------------------------------------ */

/* Evaluates an admitted embedding job, emits its vector and DONE (or ERROR), frees its slot. */
void engine__run_embedding(struct engine *e, struct job *j);

/* ---- engine_reuse.c: prefix reuse per memory kind ------------------------------------- */

/* What a slot's memory can give a prompt, decided without changing anything: the first n
 * tokens, from the slot's own cells (ck < 0: trimmed, or shared when the slot is live) or
 * from its checkpoint ck. Never a state that holds more than those n tokens. */
struct reuse_plan {
    int n;
    int src;
    int ck;
};
struct reuse_plan engine__reuse_plan(struct engine *e, int src, const llama_token *prompt, int n_prompt);
/* Makes sequence dst hold the plan's tokens (its own cells past them are removed). Returns
 * the tokens it holds: plan->n, or 0 when a state call failed (dst is then empty). */
int engine__reuse_apply(struct engine *e, int dst, const struct reuse_plan *pl);
/* Takes a checkpoint of slot i at its current length (bounded per slot and in bytes). */
void engine__ckpt_take(struct engine *e, int i);
/* Drops slot i's checkpoints longer than n tokens (n = 0: all of them). */
void engine__ckpt_drop_after(struct engine *e, int i, int n);
int engine__common_prefix(const struct tokvec *kv, const llama_token *p, int n);

/* ---- engine_mem.c: memory kinds ------------------------------------------------------ */

/* Fills e->shape from the model's GGUF (store/gguf_mem.h), settles e->kv_type from
 * p.kv_type (f16 with a log line where the type needs flash attention that is off, or a
 * block that does not divide the heads), and fills e->mem in that type. BW_EINVAL for a
 * kv_type that is no type. */
int engine__mem_init(struct engine *e, struct bw_err *err);
/* The ggml type of e->kv_type, for llama_context_params type_k / type_v. */
enum ggml_type engine__kv_ggml_type(const struct engine *e);
/* A short name of the memory kind: "full", "swa", "mla", "recurrent", "hybrid". */
const char *engine__mem_kind(const struct engine *e);

/* ---- engine_disk.c: sequences saved to disk, restored by prefix (issue 15) ----------- */

void engine__disk_open(struct engine *e);  /* at engine_new: opens p.kv_disk_dir when set */
void engine__disk_close(struct engine *e);
/* Saves slot i's tokens and state (a sequence leaving the pool). True when saved. */
bool engine__disk_save(struct engine *e, int i);
/* Admission is about to keep only `keep` of target's tokens: saves the slot when more
 * than a few of them are lost. */
void engine__disk_before_reuse(struct engine *e, int target, int keep);
/* Saves every cached (and live) sequence, most recently used first, within budget_ns. */
void engine__disk_save_all(struct engine *e, int64_t budget_ns);
/* After the pool gave the job `reuse` tokens in slot target: loads a longer saved prefix
 * into the slot when that is estimated cheaper than evaluating the difference (sets the
 * slot's tokens). Returns the tokens the slot now holds (reuse when nothing was loaded; 0
 * when a load failed after the slot was cleared). */
int engine__disk_restore(struct engine *e, struct job *j, int target, int reuse);
/* A finished job's prompt evaluation: updates the measured prefill rate. */
void engine__disk_note_prefill(struct engine *e, const struct job *j);

/* ---- engine_prompt.c ------------------------------------------------------------------ */

void engine__load_templates(struct engine *e); /* the GGUF's, parsed once, at engine_new */

/* A preparation's stop conditions, checked between messages and probes: a cancel from the
 * loop, or the deadline (engine_prep.c). NULL for a preparation on the loop itself. */
struct prep_ctl {
    atomic_bool cancel;    /* set by the loop (engine_cancel) */
    atomic_bool timed_out; /* set by the check that found the deadline passed */
    int64_t deadline_ns;   /* clock_mono_ns */
};
/* True when the preparation must give up (cancelled, or past its deadline). */
bool engine__prep_stop(struct prep_ctl *c);

/* engine_submit in three parts, so that the middle one may run off the loop:
 *   begin    (loop) duplicate id, the checks that need no rendering, a new job, the template.
 *            private_template: a Modelfile TEMPLATE is parsed for this request alone (*own,
 *            freed by the caller after prepare) instead of taken from the loop's cache.
 *   prepare  (any thread) render, tokenize, size, cut. Reads only what never changes after
 *            engine_new (the vocabulary, Cmax, the GGUF's templates) and r, j, ctl.
 *   finish   (loop) the job's text parsers, sampler and stop strings; queues it (or emits
 *            render_only's RENDERED + DONE). Takes rendered. On an error j is freed.
 * Each returns BW_OK or a code with err set. */
int engine__submit_begin(struct engine *e, const struct engine_request *r, bool private_template,
                         struct job **out, const struct chat_template **tmpl, struct chat_template **own,
                         struct bw_err *err);
int engine__prepare(struct engine *e, const struct engine_request *r, const struct chat_template *tmpl,
                    struct job *j, struct prep_ctl *ctl, char **rendered, struct bw_err *err);
int engine__submit_finish(struct engine *e, const struct engine_request *r, struct job *j, char *rendered,
                          struct bw_err *err);

/* ---- engine_tok.c: long texts tokenized in pieces, the same tokens ------------------- */

struct special_tok {
    const char *s; /* libllama's text of the token (lives with the model) */
    size_t len;
    bool rstrip;   /* LLAMA_TOKEN_ATTR_RSTRIP */
};
void engine__tok_init(struct engine *e); /* at engine_new (engine__load_templates) */
void engine__tok_free(struct engine *e);
/* engine_tokenize, in pieces when the text is long (linear, not quadratic, in the special
 * tokens it holds), checking ctl between pieces: BW_EBUSY when it says stop. A text that
 * begins as one of the last few tokenized here (the next turn of a chat) takes the tokens
 * of their common head from the memo and tokenizes only the rest: the same tokens. Safe
 * from the loop and the preparation thread at once. */
int engine__tokenize_long(struct engine *e, const char *text, bool add_special, struct prep_ctl *ctl, int32_t **out,
                          int *n_out);

/* ---- engine_prep.c: preparation off the loop (engine_prep.h) -------------------------- */

/* The loop's side. collect: finishes every preparation that ended (queues its job, or emits
 * its ERROR / cancelled DONE). ready: some ended (engine_has_work). cancel / pause: of a
 * request still preparing (false: no such one). count: preparations in flight. shutdown
 * (engine_free): stops the thread, drops what was in flight without events. */
void engine__prep_collect(struct engine *e);
bool engine__prep_ready(const struct engine *e);
bool engine__prep_cancel(struct engine *e, uint64_t req_id);
bool engine__prep_pause(struct engine *e, uint64_t req_id, bool paused);
bool engine__prep_has(const struct engine *e, uint64_t req_id);
int engine__prep_count(const struct engine *e);
void engine__prep_shutdown(struct engine *e);

/* ---- engine_text.c: a job's text as events ------------------------------------------- */

void engine__job_toolcall_init(struct engine *e, struct job *j, const struct engine_request *r);
void engine__job_reasoning_init(struct engine *e, struct job *j, const struct engine_request *r,
                                const char *rendered);
void engine__job_call_grammar(struct job *j, const struct engine_request *r);
/* The job's sampler chain, with the grammar engine__job_call_grammar chose (engine_text.c). */
struct llama_sampler *engine__job_sampler(struct engine *e, struct job *j, const struct engine_request *r,
                                          uint32_t seed);
/* How long reasoning may run before a request grammar (format) must start: pieces of text
 * (about characters) before the close marker (gbnf_after_marker). */
#define ENGINE_THINK_PIECES 1000
void engine__emit_text(struct engine *e, struct job *j, const char *text, size_t len);
/* A request with logprobs: queues the entry of the token just sampled from the job's
 * output row, whose piece of n_piece bytes is about to be pushed to j->out ... */
void engine__job_logprob(struct engine *e, struct job *j, llama_token tok, int n_piece);
/* ... and sends, as one LOGPROBS event, the entries of the text j->out has released since
 * (call it before sending that text). */
void engine__emit_logprobs(struct engine *e, struct job *j);
void engine__emit_text_end(struct engine *e, struct job *j);

#endif
