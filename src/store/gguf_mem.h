/* gguf_mem.h -- a model's memory kinds read from its GGUF header (issue 18): which layers
 * keep a full-attention cache, a sliding-window one or a recurrent state, as element
 * counts (sched/estimate.h turns them into bytes for a KV cache type).
 *
 * One reading for both sides: the server's admission estimate (gguf_info.c, before any
 * runner exists) and the engine's pool sizing (engine_mem.c) call this, so the scheduler
 * promises what the runner then allocates. libllama keeps the same facts in its C++
 * hparams, out of reach of llama.h. Metadata and tensor shapes only (gguf.h, no tensor
 * data, no llama context): a layer with an SSM convolution is recurrent, one with
 * attention projections is attention; the window pattern follows llama_hparams::
 * set_swa_pattern. A header with no layer tensors at all (a crafted or metadata-only
 * file) counts every layer as full attention from its head counts. What this gets wrong
 * only moves the estimate, never the tokens. Pure: no I/O, no allocation. */
#ifndef BELLOWS_GGUF_MEM_H
#define BELLOWS_GGUF_MEM_H

#include "sched/estimate.h"

struct gguf_context;

/* Fills *out from g. n_swa: the sliding window when the caller knows it (the engine asks
 * libllama, which has per-architecture defaults); < 0: <arch>.attention.sliding_window. */
void gguf_mem_shape(const struct gguf_context *g, int n_swa, struct estimate_shape *out);

#endif
