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
    uint64_t kv_bytes_per_cell;
    int n_ctx_train;
};

/* Compute buffers: llama.cpp's graph for a 512-token micro-batch. A fixed floor plus a
 * share of the weights is a fair stand-in on CPU (measured: ~20-60 MiB for 0.5B). */
uint64_t estimate_compute_bytes(const struct estimate_model *m);

/* Weights + initial pool + compute. */
uint64_t estimate_load_bytes(const struct estimate_model *m);

/* The runner's KV growth budget in cells: what `available` bytes leave after the load
 * estimate, capped at n_parallel x cmax and never below the initial pool. */
int64_t estimate_kv_budget_cells(const struct estimate_model *m, uint64_t available, int n_parallel, int cmax);

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

/* GPU placement: how many of n_layers (each layer_bytes) go to each device, filling devices in order while their free memory
 * (minus a reserve for KV and compute of reserve_bytes each) allows. num_gpu >= 0 caps
 * the total layers offloaded (Ollama's option). Writes layers per device into out[n_dev];
 * returns the total offloaded. */
struct estimate_device {
    uint64_t free_bytes;
};
int estimate_place_layers(const struct estimate_device *dev, size_t n_dev, int n_layers, uint64_t layer_bytes,
                          uint64_t reserve_bytes, int num_gpu, int *out);

#endif
