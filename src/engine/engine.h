/* engine.h -- one model, one elastic KV pool, many requests at once (design.md §3).
 *
 * The engine owns a llama_model and, once the first request arrives, one llama_context
 * whose KV pool is unified (kv_unified) and shared by up to n_parallel sequences. Each
 * call to engine_step() runs one named round:
 *     admit -> make room -> build batch -> llama_decode -> sample -> emit -> retire
 * A batch holds one token of every generating sequence plus chunks of pending prompts
 * (continuous batching).
 *
 * Sizing (spec/context.md) happens once per request in engine_submit(): the prompt is
 * rendered and tokenized whole, L / Cmax / D / room are computed by policy.c, and the prompt
 * is cut only when L + room > Cmax. A client's num_ctx is not an input.
 *
 * Elastic pool: the pool starts at the first request's D and grows when the live
 * reservations need more, by creating a larger context from the same model and moving
 * every sequence's KV state into it (llama_state_seq_get/set_data): no reload, no
 * re-prefill. Growth stays within max_pool_cells (the memory budget); past it, new
 * requests wait in order. engine_shrink_idle() gives memory back when idle.
 *
 * Prefix cache: a finished sequence keeps its KV ("cached") while the pool has room. A
 * new request starts from the sequence with the longest common token prefix (trimming its
 * tail, or copying it when that sequence is still live) and evaluates only the rest.
 * Cached sequences are evicted least recently used. Memory that cannot be trimmed back (a
 * recurrent state; a sliding-window cache, which forgets what lies behind its window) is
 * reused through checkpoints taken at turn boundaries -- 4 tokens before the prompt's end
 * and at its end (ckpt.h, engine_reuse.c) -- so the next turn of a chat on any memory kind
 * evaluates only its new tokens; a live sequence is shared only as far as its memory kind
 * allows, else through one of its checkpoints, else not at all.
 *
 * Threads: not thread-safe: one thread (the runner's loop) calls everything. Its own
 * thread, started on first use, only prepares large requests (engine_prep.h). Events are
 * delivered through the emit callback, synchronously, from inside engine_submit() /
 * engine_step() (always on the calling thread); the callback must not call back into the
 * engine. */
#ifndef BELLOWS_ENGINE_H
#define BELLOWS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sampling.h"
#include "policy/policy.h"
#include "util/err.h"

struct engine;

struct engine_params {
    const char *model_path;
    int n_parallel;          /* sequences in the pool at once (n_seq_max); default 4 */
    int n_threads;           /* 0: all cores */
    int context_cap;         /* operator's BELLOWS_CONTEXT_LENGTH; 0: none */
    int64_t max_pool_cells;  /* growth budget in KV cells; 0: n_parallel x Cmax */
    int min_pool_cells;      /* the pool never shrinks below this; 0: 4096 */
    bool flash_attn;         /* must stay the same for the life of the engine (state moves) */
    bool use_mmap;
    int n_gpu_layers;        /* layers offloaded to GPUs (0 on a CPU build) */
    float tensor_split[16];  /* share of the offloaded layers per GPU; all 0: llama.cpp decides */
    bool quiet;              /* silence libllama's own log below errors */
    /* Sliding-window layers: false (default) keeps only the window (n_swa x n_parallel +
     * a micro-batch of cells) and reuses a longer prefix through checkpoints; true keeps
     * every cell, as large as the full-attention cache (libllama's own default). */
    bool swa_full;
    /* Bytes of host memory all checkpoints together may hold; 0: 1 GiB; < 0: none taken
     * (a request then reuses only what the memory can trim: bench/ and tests compare). */
    int64_t ckpt_max_bytes;
    /* KV saved to disk and restored by prefix (engine_disk.c, kvcache/kvdisk.h): a cached
     * sequence leaving the pool is saved to kv_disk_dir (NULL or budget 0: off); a later
     * prompt sharing a longer prefix with a saved one loads it instead of evaluating. */
    const char *kv_disk_dir;
    uint64_t kv_disk_budget;       /* bytes of the directory's files in all (every model) */
    const char *kv_disk_model_key; /* NULL: engine_kvdisk_model_key(model_path) */
    /* The K and V cache type (BELLOWS_KV_CACHE_TYPE): "f16" (NULL, "", "auto"), "q8_0",
     * "q4_0"; another value fails engine_new. A quantized type needs flash attention and
     * head dimensions its block (32) divides: otherwise f16, with a log line. The type in
     * use is engine_status.kv_type; it is part of a saved state's setup. */
    const char *kv_type;
    /* RPC servers whose devices take layers (issue 16): "host:port[,host:port...]", each
     * registered with ggml before the model loads (their devices come after local GPUs,
     * in this order, for n_gpu_layers and tensor_split); NULL: none. ggml aborts the
     * process when one does not answer: the server probes them first (sched/rpc.h). */
    const char *rpc_servers;
};

void engine_params_default(struct engine_params *p);

/* The identity a model's saved states are filed under: "sha256:<hex>" for a blob of a
 * store (its file name "sha256-<hex>"), else the path itself. kvdisk_remove_model's key. */
void engine_kvdisk_model_key(const char *model_path, char *buf, size_t len);

enum engine_kind { ENGINE_GENERATE, ENGINE_CHAT, ENGINE_EMBED };

struct engine_request {
    uint64_t req_id;
    enum engine_kind kind;
    /* ENGINE_GENERATE / ENGINE_EMBED: the text. Generate renders it through the template
     * as one user message (after `system`, when set) unless raw. */
    const char *prompt;
    const char *system;
    bool raw;
    /* ENGINE_CHAT */
    const struct policy_msg *msgs;
    size_t n_msgs;
    /* generation options */
    struct sampling_params sampling;
    int num_predict;         /* > 0: at most this many tokens; -1 / -2 / 0: until EOS or Cmax */
    int num_keep;            /* raw-prompt cut: tokens kept at the head; < 0: 4 */
    const char *const *stop; /* stop strings */
    size_t n_stop;
    const char *grammar;     /* GBNF constraining the answer (JSON mode), or NULL */
    bool truncate;           /* ENGINE_EMBED: cut to Cmax (true) or fail */
    bool render_only;        /* _debug_render_only: report the rendered prompt, generate nothing */
    /* chat template inputs (src/template/) */
    const char *chat_template; /* Jinja text replacing the model's own (Modelfile TEMPLATE), or NULL */
    const char *tools_json;    /* JSON array text of the OpenAI function list, or NULL. With
                                  tools, the answer is parsed for tool calls in the template's
                                  format (template/toolcall.h): TOOL_CALL events */
    const char *tool_choice;   /* with tools: NULL or "auto" (the model decides), "required",
                                  "function" (the one named by tool_name), "none" (no parsing;
                                  the api also leaves tools out of the template). "required"
                                  and "function" hold the model to one call with a grammar
                                  (toolcall_grammar) when grammar is NULL and the format has one */
    const char *tool_name;     /* tool_choice "function": the function's name */
    bool single_call;          /* parallel_tool_calls false: at most one call */
    const char *think;         /* NULL: unset; "true", "false", "low", "medium", "high" */
    /* ENGINE_GENERATE: token ids that come before the prompt (after it is rendered, when
     * not raw), as the model's vocabulary numbers them: the `context` an earlier answer
     * returned (Ollama's /api/generate). The prompt's own leading BOS is dropped after it. */
    const int32_t *context;
    int n_context;
    bool want_context;         /* ENGINE_GENERATE: DONE carries the prompt + answer tokens */
    /* ENGINE_EMBED: the input as token ids of the model's vocabulary, used as they are
     * (no BOS added); prompt is ignored when n_input_tokens > 0. */
    const int32_t *input_tokens;
    int n_input_tokens;
    /* ENGINE_GENERATE / ENGINE_CHAT: LOGPROBS events, each sampled token's log-probability
     * (and top_logprobs alternatives, 0..LOGPROBS_TOP_MAX) under the model's distribution */
    bool logprobs;
    int top_logprobs;
};

struct engine_stats {
    int prompt_tokens;        /* L: the whole prompt before any cut */
    int prompt_eval_count;    /* prompt tokens after the cut, cached ones included (Ollama's meaning) */
    int prompt_cache_tokens;  /* of those, reused from the prefix cache */
    int eval_count;           /* generated tokens */
    int context_length;       /* D, the reservation (grown while generating, if it did) */
    int context_max;          /* Cmax */
    int truncated_messages;
    int truncated_tokens;
    int64_t prompt_eval_ns;   /* only the tokens actually evaluated */
    int64_t eval_ns;
    int64_t ttft_ns;          /* submit -> first token sampled */
    int64_t total_ns;
    int64_t queue_ns;         /* time waiting for room before admission */
    int pool_cells;           /* pool size when the request finished */
    int pool_growths;         /* growths while the request was live */
    const char *done_reason;  /* "stop", "length", "cancel", "render" (static strings) */
    int tool_calls;           /* TOOL_CALL events sent (done_reason stays "stop") */
};

enum engine_event_type {
    ENGINE_EV_TEXT,       /* text: a piece of the answer (valid UTF-8, stop strings removed),
                             or of the reasoning when `thinking` (template/reasoning.h) */
    ENGINE_EV_DONE,       /* stats: the request is finished; nothing more comes for req_id */
    ENGINE_EV_ERROR,      /* err_code + text: the request failed; nothing more comes */
    ENGINE_EV_EMBEDDING,  /* embd[n_embd], then DONE */
    ENGINE_EV_RENDERED,   /* text: the prompt the model would see (render_only), then DONE */
    ENGINE_EV_TOOL_CALL,  /* text: one complete call the answer made, a JSON object
                             {"name":…,"arguments":{…}[,"id":…]} (id: the model's own, or 9
                             alphanumerics for Mistral's format); call_index 0, 1, … */
    ENGINE_EV_LOGPROBS,   /* text: a JSON array of the entries (logprobs.h) of the tokens whose
                             text is about to be sent, in order, sent just before that text
                             (a request with logprobs). Every sampled token that is not the
                             end of generation gets one, except those of text a stop string
                             cut; thinking and tool-call tokens included */
};

struct engine_event {
    uint64_t req_id;
    enum engine_event_type type;
    const char *text; /* borrowed: valid during the callback only */
    size_t len;
    bool thinking;    /* TEXT: the piece is reasoning, not answer */
    int call_index;   /* TOOL_CALL: the call's position in the answer */
    const struct engine_stats *stats;
    const float *embd;
    int n_embd;
    int err_code;
    const int32_t *tokens; /* DONE of a request with want_context: the prompt the model saw
                              (after any cut) and every token it sampled, the final
                              end-of-generation token included; borrowed like text */
    int n_tokens;
};

typedef void (*engine_emit_fn)(void *ud, const struct engine_event *ev);

/* Loads the model (mmap). Returns BW_OK and *out (free with engine_free), or a BW_E code
 * with the reason in err (unreadable or invalid GGUF: BW_EINVAL). No KV is allocated yet. */
int engine_new(const struct engine_params *p, engine_emit_fn emit, void *emit_ud, struct engine **out,
               struct bw_err *err);
void engine_free(struct engine *e);

/* Sizes and queues a request; everything in r is copied. Returns BW_OK (events follow,
 * ending with DONE or ERROR), or an error with nothing queued and no event sent:
 * BW_EINVAL (bad request), BW_ETOOLONG (does not fit even after the cut),
 * BW_EBUSY (a request with that id is already in flight). */
int engine_submit(struct engine *e, const struct engine_request *r, struct bw_err *err);

/* Cancels a queued or live request: within one step it is finished with done_reason
 * "cancel" (its KV stays cached). Returns BW_ENOTFOUND for an unknown id. */
int engine_cancel(struct engine *e, uint64_t req_id);

/* True when there is work for engine_step(). */
bool engine_has_work(const struct engine *e);

/* Pauses (or resumes) a request whose consumer stopped reading: a paused request is left
 * out of every batch -- its KV, its pending token and its place stay -- so it neither
 * generates nor costs the others a thing; engine_has_work() does not count it. A paused
 * request can still be cancelled. Returns BW_ENOTFOUND for an unknown id. */
int engine_pause(struct engine *e, uint64_t req_id, bool paused);

/* One round of the batch loop. Returns BW_OK, or a BW_E code when libllama failed in a
 * way that affects every request (each affected request got an ERROR event). */
int engine_step(struct engine *e);

/* With no live request, shrinks the pool to what the cached sequences need (at least
 * min_pool_cells). Returns the cells freed (0 when nothing changed). */
int engine_shrink_idle(struct engine *e);

struct engine_status {
    int pool_cells;      /* current KV pool size (0 before the first request) */
    int used_cells;      /* cells holding tokens of live or cached sequences */
    int reserved_cells;  /* sum of live reservations and cached tokens */
    int live;            /* sequences with a request running */
    int cached;          /* finished sequences kept for prefix reuse */
    int queued;          /* requests waiting for room */
    int n_parallel;
    int n_ctx_train;
    int context_max;
    int64_t max_pool_cells;
    char memory_kind[12]; /* "full", "swa", "mla", "recurrent", "hybrid" (a copy: the status travels) */
    char kv_type[8];     /* the KV cache type in use: "f16", "q8_0", "q4_0" (kv_bytes are in it) */
    uint64_t kv_bytes;   /* bytes of the attention caches: full-attention + sliding-window layers */
    uint64_t kv_bytes_per_cell; /* what one more pool cell costs: the layers whose cache grows with the pool */
    uint64_t swa_bytes;  /* of kv_bytes, the sliding-window layers' (at most their window) */
    uint64_t swa_bytes_per_cell; /* every sliding-window layer, one cell */
    uint64_t recurrent_bytes; /* recurrent states of n_parallel sequences (fixed, whatever the pool) */
    uint64_t checkpoint_bytes; /* host memory of the state checkpoints */
    int checkpoints;     /* how many are held */
    int pool_growths;    /* since start */
    int pool_growths_ahead; /* of those, made while idle for an expected turn (engine_grow_ahead) */
    int pool_shrinks;
    int64_t last_growth_ns;
    int64_t growth_ns_total; /* time every growth took, since start */
};
/* Grows the pool while idle for the next turn a cached conversation can be expected to
 * bring (what its last turn added, reserved as admission would: policy_reservation), so
 * that turn does not wait for the growth. At most once per finished turn; nothing when
 * the pool has room, when only evicting could make it, or when work is waiting. True when
 * it grew. The runner calls it when it would otherwise sleep. */
bool engine_grow_ahead(struct engine *e);
void engine_status(const struct engine *e, struct engine_status *st);

/* Tokenizes text with the model's vocabulary (special tokens parsed, BOS per the model).
 * Returns BW_OK with a malloc'd array in *out (caller frees) and its length in *n_out. */
int engine_tokenize(struct engine *e, const char *text, bool add_special, int32_t **out, int *n_out);
/* Detokenizes (special tokens shown); returns BW_OK with a malloc'd NUL-terminated string
 * (caller frees), or BW_EINVAL when an id is outside the vocabulary. */
int engine_detokenize(struct engine *e, const int32_t *tokens, int n, char **out, size_t *len);

/* Model facts for status and the CLI. engine_has_vocab: false for a model without a usable
 * vocabulary (random test models, some converted ones): it serves token prompts only (an
 * ENGINE_GENERATE with an empty prompt and the tokens in `context`, or ENGINE_EMBED with
 * input_tokens); a text request fails with BW_EINVAL "this model has no tokenizer", and
 * the answer has no text: its tokens come in DONE with want_context. */
bool engine_has_vocab(const struct engine *e);
int engine_n_ctx_train(const struct engine *e);
int engine_n_embd(const struct engine *e);
const char *engine_chat_template(const struct engine *e); /* may be NULL */

#endif
