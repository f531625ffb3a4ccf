/* estimate.h -- memory estimates and the decisions made from them: pure, no I/O.
 *
 * A model's footprint at load = weights (the GGUF's tensor bytes) + KV for the initial
 * pool (4096 cells x bytes per cell) + a compute-buffer estimate. Ollama's estimator
 * (fork-analysis.md §5) sizes KV for num_ctx x parallel up front; Bellows' pool starts at
 * one reservation and grows within a budget, so the estimate is smaller and the budget is
 * what is left. */
#ifndef BELLOWS_ESTIMATE_H
#define BELLOWS_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#define ESTIMATE_INITIAL_POOL 4096

struct estimate_model {
    uint64_t weights_bytes;
    uint64_t kv_bytes_per_cell; /* what one more pool cell costs: only the layers whose cache
                                   grows with the pool (estimate_grow_bytes_per_cell) */
    int n_ctx_train;
    uint64_t fixed_kv_bytes;    /* memory that does not grow with the pool: sliding windows and
                                   recurrent states of every sequence (estimate_pool's swa +
                                   recurrent at the initial pool); 0 when unknown */
};

/* ---- memory kinds (issue 18) ---------------------------------------------------------
 * A model's memory is up to three kinds, each sized differently:
 *   full attention   K and V of every cell of the pool, per layer; with MLA (DeepSeek 2/3,
 *                    Kimi) only the compressed latent and the RoPE part of K, no V;
 *   sliding window   K and V of the window only: libllama keeps n_swa cells per sequence
 *                    plus a micro-batch (padded to 256), unless swa_full;
 *   recurrent        a fixed state per sequence (the conv window and the SSM / delta-net
 *                    state), however long the sequence.
 * The engine fills estimate_memory from the model's shapes (engine/engine_mem.c). */
struct estimate_memory {
    uint64_t full_bytes_per_cell;     /* all full-attention layers, one cell */
    uint64_t swa_bytes_per_cell;      /* all sliding-window layers, one cell */
    int n_swa;                        /* their window (0: none) */
    uint64_t recurrent_bytes_per_seq; /* all recurrent layers, one sequence */
};

/* ---- KV cache types (issue 15 item 3) ----------------------------------------------------
 * BELLOWS_KV_CACHE_TYPE: the element type of the attention caches' K and V. ggml stores
 * a quantized row in blocks: f16 is 1 element in 2 bytes, q8_0 32 elements in 34 bytes
 * (~0.53 of f16), q4_0 32 in 18 (~0.28). Recurrent states stay F32 whatever the type.
 * libllama needs flash attention for a quantized V, and a block size that divides every
 * attention head's dimension (else it refuses the context): estimate_kv_type_fits. */
enum estimate_kv_type { ESTIMATE_KV_F16, ESTIMATE_KV_Q8_0, ESTIMATE_KV_Q4_0 };
#define ESTIMATE_KV_AUTO (-1)   /* q8_0 when a maximum context would not fit in f16 (sched/plan.h) */
#define ESTIMATE_KV_INVALID (-2)

/* "f16", "q8_0", "q4_0" (an unknown value: "f16"). */
const char *estimate_kv_type_name(int kv_type);
/* ESTIMATE_KV_* for "f16" / "q8_0" / "q4_0" (any case), ESTIMATE_KV_AUTO for "auto",
 * ESTIMATE_KV_INVALID otherwise (NULL or "" too). */
int estimate_kv_type_parse(const char *s);
/* ggml's block of the type: elements per block and bytes per block (ggml_blck_size,
 * ggml_type_size; test_gguf_info checks them against ggml). */
int estimate_kv_block_elems(int kv_type);
int estimate_kv_block_bytes(int kv_type);
/* Bytes of `elems` elements of the type: whole blocks (ggml_row_size when they divide). */
uint64_t estimate_kv_bytes(int kv_type, int64_t elems);

/* A model's memory as element counts, independent of the KV type: what the GGUF says
 * (store/gguf_mem.h reads it, for the admission estimate and for the engine alike). */
struct estimate_shape {
    int64_t full_k, full_v;   /* K and V elements per cell, summed over full-attention layers
                                 (n_head_kv x key / value length each; MLA: the latent, no V) */
    int64_t swa_k, swa_v;     /* the same over sliding-window layers */
    int n_swa;                /* their window (0: none) */
    uint64_t recurrent_bytes_per_seq; /* F32 recurrent states of every recurrent layer, one sequence */
    int64_t head_gcd;         /* gcd of every attention layer's K and V head dimensions; 0: none */
    int mla;                  /* the attention is MLA (K and V types must then be the same) */
    int n_attn_layers, n_recurrent_layers;
};

/* Whether libllama accepts kv_type for this shape (f16 always; a quantized type when its
 * block divides every head dimension). */
int estimate_kv_type_fits(const struct estimate_shape *s, int kv_type);
/* The bytes of each memory kind in kv_type. */
void estimate_memory_of(const struct estimate_shape *s, int kv_type, struct estimate_memory *out);

/* One attention layer's bytes per cell: K of n_embd_k (n_head_kv x key length) and V of
 * n_embd_v elements of elem_bytes each; mla: V is not stored (it is read out of K). */
uint64_t estimate_attn_layer_bytes(int64_t n_embd_k, int64_t n_embd_v, int mla, int elem_bytes);

/* One recurrent layer's state per sequence: the last d_conv - 1 inputs of conv_channels
 * channels, and ssm_elems of SSM state (Mamba: d_state x d_inner; gated delta nets: head
 * key dim x head value dim x value heads, the same product), elem_bytes each (F32). */
uint64_t estimate_recurrent_layer_bytes(int d_conv, int64_t conv_channels, int64_t ssm_elems, int elem_bytes);

/* Cells of the sliding-window cache in a unified pool of pool_cells shared by n_seq
 * sequences: min(pool, pad256(n_swa x n_seq + n_ubatch)); swa_full: the pool. */
int64_t estimate_swa_cells(int n_swa, int n_seq, int n_ubatch, int64_t pool_cells, int swa_full);

struct estimate_pool_bytes {
    uint64_t kv;        /* full-attention + sliding-window caches */
    uint64_t swa;       /* of kv, the sliding-window part */
    uint64_t recurrent; /* n_seq recurrent states */
};
/* The bytes of a pool of pool_cells for n_seq sequences, by kind. */
void estimate_pool(const struct estimate_memory *m, int64_t pool_cells, int n_seq, int n_ubatch, int swa_full,
                   struct estimate_pool_bytes *out);

/* What one more cell of the pool costs: the full-attention layers (and the sliding-window
 * ones when swa_full). The elastic pool's budget in cells divides by this. */
uint64_t estimate_grow_bytes_per_cell(const struct estimate_memory *m, int swa_full);

/* Memory a load holds that does not grow with the pool (estimate_model.fixed_kv_bytes):
 * the sliding windows of n_seq sequences at the initial pool, their recurrent states, and
 * the host memory their state checkpoints may take: ckpt_per_seq checkpoints of each
 * sequence, each a recurrent state plus a window of SWA cells (n_swa + n_ubatch), at most
 * ckpt_budget in all (the engine's bound, ESTIMATE_CKPT_BUDGET by default). Checkpoints
 * exist only for memory that cannot be trimmed (recurrent, or SWA without swa_full). */
#define ESTIMATE_CKPT_BUDGET (UINT64_C(1) << 30)
uint64_t estimate_fixed_kv_bytes(const struct estimate_memory *m, int n_seq, int n_ubatch, int ckpt_per_seq,
                                 uint64_t ckpt_budget);

/* The engine's micro-batch (engine.c): part of every sliding-window cache. */
#define ESTIMATE_UBATCH 512

/* m's kv_bytes_per_cell and fixed_kv_bytes for a model of shape s in kv_type, its pool
 * shared by n_seq sequences, ckpt_per_seq checkpoints each (the server's admission: the
 * figures the engine then allocates; swa_full off, as the engine runs). */
void estimate_model_kv(struct estimate_model *m, const struct estimate_shape *s, int kv_type, int n_seq,
                       int ckpt_per_seq);

/* Compute buffers: llama.cpp's graph for a 512-token micro-batch. A fixed floor plus a
 * share of the weights is a fair stand-in on CPU (measured: ~20-60 MiB for 0.5B). */
uint64_t estimate_compute_bytes(const struct estimate_model *m);

/* Weights + initial pool (+ fixed_kv_bytes) + compute. */
uint64_t estimate_load_bytes(const struct estimate_model *m);

/* The runner's KV growth budget and what admission promises for it: sched/plan.h. */

/* A loaded model as the eviction choice sees it. */
struct estimate_loaded {
    uint64_t bytes;
    int n_calls;              /* busy models are never evicted */
    int64_t expires_in_ns;    /* remaining keep_alive; INT64_MAX = forever */
};

/* Picks idle models to evict so that `need` bytes fit in `available` (which excludes what
 * loaded models use) and the loaded count stays under max_loaded. Shortest remaining
 * keep_alive first. Writes indexes into victims (room for n) and returns how many; returns
 * -1 when even evicting every idle model is not enough (the caller waits or fails). */
int estimate_pick_evictions(const struct estimate_loaded *loaded, size_t n, uint64_t need, uint64_t available,
                            int max_loaded, int *victims);

/* Placement on devices (local GPUs, RPC servers' devices): how many of n_layers (each
 * layer_bytes) go to each device. A device's room is its free memory minus a reserve for
 * KV and compute (reserve_bytes each); the total offloaded is what all rooms hold, capped
 * by num_gpu >= 0 (Ollama's option). That total is spread in proportion to the devices'
 * rooms (llama.cpp's own default split), each capped by what fits it, the rounding left
 * to the first with room: every device then keeps room in proportion for its layers'
 * share of the KV pool's growth, where filling the first device to the brim would leave
 * it none. Writes layers per device into out[n_dev]; returns the total offloaded. */
struct estimate_device {
    uint64_t free_bytes;
};
int estimate_place_layers(const struct estimate_device *dev, size_t n_dev, int n_layers, uint64_t layer_bytes,
                          uint64_t reserve_bytes, int num_gpu, int *out);

#endif
