/* estimate.c -- see estimate.h. Pure: no I/O, no allocation, no clock. */
#include "sched/estimate.h"

#include <stdbool.h>
#include <stdint.h>
#include <strings.h>

#define MIB (UINT64_C(1) << 20)

enum { COMPUTE_FLOOR_MIB = 64, COMPUTE_WEIGHTS_DIV = 16 };

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t mul_sat(uint64_t a, uint64_t b) { return b && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

/* ---- load footprint ------------------------------------------------------------------ */

/* compute = max(64 MiB, weights / 16).
 *
 * Why this shape:
 * - What llama.cpp *reserves* for the 512-token micro-batch graph is dominated by the
 *   logits, 4 x n_ubatch x n_vocab bytes: ~297 MiB for the demo model and ~302 MiB for the
 *   0.5B one (qwen2's 151,936-token vocabulary, n_ctx 4096, measured with libllama's own
 *   log). On CPU that is malloc'd address space, and the engine asks for the last token's
 *   logits only, so most of it is never touched and does not count against MemAvailable.
 *   What a load really costs (resident) is ~20-60 MiB for 0.5B (max RSS of a 1500-token
 *   prompt, minus weights and KV). The 64 MiB floor covers that for every small model,
 *   whatever its vocabulary, with a little to spare.
 * - Activations grow with the embedding width and layer count, i.e. roughly with the
 *   weights. weights/16 gives ~290 MiB for an 8B Q4 model (4.6 GB), in line with Ollama's
 *   full-offload graph for that shape at C = 4096 (296 MiB, fork-analysis.md §5.2); for
 *   much larger models it overestimates, which only makes admission more careful.
 * We do not know n_vocab or n_embd here (estimate_model is three numbers), so a formula
 * on the weights is the most we can say without pretending to precision. */
uint64_t estimate_compute_bytes(const struct estimate_model *m)
{
    uint64_t share = m->weights_bytes / COMPUTE_WEIGHTS_DIV;
    uint64_t floor = (uint64_t)COMPUTE_FLOOR_MIB * MIB;
    return share > floor ? share : floor;
}

uint64_t estimate_load_bytes(const struct estimate_model *m)
{
    uint64_t kv = add_sat(mul_sat(m->kv_bytes_per_cell, ESTIMATE_INITIAL_POOL), m->fixed_kv_bytes);
    return add_sat(add_sat(m->weights_bytes, kv), estimate_compute_bytes(m));
}

/* ---- KV cache types --------------------------------------------------------------------- */

static const struct {
    const char *name;
    int blck, bytes; /* ggml's block: GGML_TYPE_F16 1/2, GGML_TYPE_Q8_0 32/34, GGML_TYPE_Q4_0 32/18 */
} kv_types[] = {{"f16", 1, 2}, {"q8_0", 32, 34}, {"q4_0", 32, 18}};
#define N_KV_TYPES ((int)(sizeof kv_types / sizeof kv_types[0]))

static int kv_index(int t) { return t >= 0 && t < N_KV_TYPES ? t : ESTIMATE_KV_F16; }

const char *estimate_kv_type_name(int kv_type) { return kv_types[kv_index(kv_type)].name; }
int estimate_kv_block_elems(int kv_type) { return kv_types[kv_index(kv_type)].blck; }
int estimate_kv_block_bytes(int kv_type) { return kv_types[kv_index(kv_type)].bytes; }

int estimate_kv_type_parse(const char *s)
{
    if (!s)
        return ESTIMATE_KV_INVALID;
    if (!strcasecmp(s, "auto"))
        return ESTIMATE_KV_AUTO;
    for (int i = 0; i < N_KV_TYPES; i++)
        if (!strcasecmp(s, kv_types[i].name))
            return i;
    return ESTIMATE_KV_INVALID;
}

uint64_t estimate_kv_bytes(int kv_type, int64_t elems)
{
    int t = kv_index(kv_type);
    uint64_t n = elems > 0 ? (uint64_t)elems : 0;
    uint64_t blocks = (n + (uint64_t)kv_types[t].blck - 1) / (uint64_t)kv_types[t].blck;
    return mul_sat(blocks, (uint64_t)kv_types[t].bytes);
}

int estimate_kv_type_fits(const struct estimate_shape *s, int kv_type)
{
    int blck = estimate_kv_block_elems(kv_type);
    if (blck <= 1 || s->head_gcd <= 0)
        return 1; /* f16, or no attention at all: nothing for the type to divide */
    return s->head_gcd % blck == 0;
}

void estimate_memory_of(const struct estimate_shape *s, int kv_type, struct estimate_memory *out)
{
    out->full_bytes_per_cell = add_sat(estimate_kv_bytes(kv_type, s->full_k), estimate_kv_bytes(kv_type, s->full_v));
    out->swa_bytes_per_cell = add_sat(estimate_kv_bytes(kv_type, s->swa_k), estimate_kv_bytes(kv_type, s->swa_v));
    out->n_swa = s->n_swa;
    out->recurrent_bytes_per_seq = s->recurrent_bytes_per_seq;
}

/* ---- memory kinds ---------------------------------------------------------------------- */

uint64_t estimate_attn_layer_bytes(int64_t n_embd_k, int64_t n_embd_v, int mla, int elem_bytes)
{
    uint64_t k = n_embd_k > 0 ? (uint64_t)n_embd_k : 0, v = n_embd_v > 0 && !mla ? (uint64_t)n_embd_v : 0;
    return mul_sat(add_sat(k, v), elem_bytes > 0 ? (uint64_t)elem_bytes : 0);
}

uint64_t estimate_recurrent_layer_bytes(int d_conv, int64_t conv_channels, int64_t ssm_elems, int elem_bytes)
{
    uint64_t conv = d_conv > 1 && conv_channels > 0 ? mul_sat((uint64_t)(d_conv - 1), (uint64_t)conv_channels) : 0;
    uint64_t ssm = ssm_elems > 0 ? (uint64_t)ssm_elems : 0;
    return mul_sat(add_sat(conv, ssm), elem_bytes > 0 ? (uint64_t)elem_bytes : 0);
}

/* libllama (llama-kv-cache-iswa.cpp, pinned): size_swa = GGML_PAD(min(size_base,
 * n_swa * (unified ? n_seq_max : 1) + n_ubatch), 256), and size_base when swa_full; the
 * pool is always unified here. The pad can exceed the pool; the cache cannot. */
int64_t estimate_swa_cells(int n_swa, int n_seq, int n_ubatch, int64_t pool_cells, int swa_full)
{
    if (pool_cells <= 0 || n_swa <= 0)
        return 0;
    if (swa_full)
        return pool_cells;
    int64_t want = (int64_t)n_swa * (n_seq > 0 ? n_seq : 1) + (n_ubatch > 0 ? n_ubatch : 0);
    if (want > pool_cells)
        want = pool_cells;
    want = (want + 255) / 256 * 256;
    return want < pool_cells ? want : pool_cells;
}

void estimate_pool(const struct estimate_memory *m, int64_t pool_cells, int n_seq, int n_ubatch, int swa_full,
                   struct estimate_pool_bytes *out)
{
    uint64_t cells = pool_cells > 0 ? (uint64_t)pool_cells : 0;
    uint64_t swa_cells = (uint64_t)estimate_swa_cells(m->n_swa, n_seq, n_ubatch, pool_cells, swa_full);
    out->swa = m->n_swa > 0 ? mul_sat(m->swa_bytes_per_cell, swa_cells) : 0;
    out->kv = add_sat(mul_sat(m->full_bytes_per_cell, cells), out->swa);
    out->recurrent = mul_sat(m->recurrent_bytes_per_seq, n_seq > 0 ? (uint64_t)n_seq : 0);
}

uint64_t estimate_fixed_kv_bytes(const struct estimate_memory *m, int n_seq, int n_ubatch, int ckpt_per_seq,
                                 uint64_t ckpt_budget)
{
    struct estimate_pool_bytes pb;
    estimate_pool(m, ESTIMATE_INITIAL_POOL, n_seq, n_ubatch, 0, &pb);
    uint64_t fixed = add_sat(pb.swa, pb.recurrent);
    /* one checkpoint: the parts that cannot be trimmed (engine_reuse.c takes them partial) */
    uint64_t ub = n_ubatch > 0 ? (uint64_t)n_ubatch : 0, seqs = n_seq > 0 ? (uint64_t)n_seq : 0;
    uint64_t window = m->n_swa > 0 ? mul_sat(m->swa_bytes_per_cell, (uint64_t)m->n_swa + ub) : 0;
    uint64_t one = add_sat(m->recurrent_bytes_per_seq, window);
    uint64_t ckpt = mul_sat(mul_sat(one, ckpt_per_seq > 0 ? (uint64_t)ckpt_per_seq : 0), seqs);
    return add_sat(fixed, ckpt < ckpt_budget ? ckpt : ckpt_budget);
}

void estimate_model_kv(struct estimate_model *m, const struct estimate_shape *s, int kv_type, int n_seq,
                       int ckpt_per_seq)
{
    struct estimate_memory mem;
    estimate_memory_of(s, kv_type, &mem);
    m->kv_bytes_per_cell = estimate_grow_bytes_per_cell(&mem, 0);
    m->fixed_kv_bytes = estimate_fixed_kv_bytes(&mem, n_seq, ESTIMATE_UBATCH, ckpt_per_seq, ESTIMATE_CKPT_BUDGET);
}

uint64_t estimate_grow_bytes_per_cell(const struct estimate_memory *m, int swa_full)
{
    return add_sat(m->full_bytes_per_cell, swa_full || m->n_swa <= 0 ? m->swa_bytes_per_cell : 0);
}

/* ---- eviction ------------------------------------------------------------------------ */

/* Idle models in eviction order: by expires_in_ns ascending, then by index (so the order is
 * total and stable). Returns the index of the first idle model after `prev` in that order
 * (prev < 0: the very first), or -1 when none is left. O(n) per call, no allocation; the
 * loaded set is a handful of models. */
static int next_idle(const struct estimate_loaded *loaded, size_t n, int prev)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const struct estimate_loaded *l = &loaded[i];
        if (l->n_calls > 0)
            continue;
        if (prev >= 0) {
            const struct estimate_loaded *p = &loaded[prev];
            bool after = l->expires_in_ns > p->expires_in_ns ||
                         (l->expires_in_ns == p->expires_in_ns && (int)i > prev);
            if (!after)
                continue;
        }
        if (best < 0 || l->expires_in_ns < loaded[best].expires_in_ns)
            best = (int)i;
    }
    return best;
}

/* max_loaded <= 0 means no limit on the count (only memory decides). */
static bool fits(uint64_t need, uint64_t avail, size_t n_left, int max_loaded)
{
    return need <= avail && (max_loaded <= 0 || n_left < (size_t)max_loaded);
}

int estimate_pick_evictions(const struct estimate_loaded *loaded, size_t n, uint64_t need, uint64_t available,
                            int max_loaded, int *victims)
{
    /* First pass counts, second writes: on -1, victims is untouched. */
    uint64_t avail = available;
    size_t n_left = n;
    int k = 0;
    for (int i = -1; !fits(need, avail, n_left, max_loaded);) {
        i = next_idle(loaded, n, i);
        if (i < 0)
            return -1;
        avail = add_sat(avail, loaded[i].bytes);
        n_left--;
        k++;
    }
    for (int j = 0, i = -1; j < k; j++) {
        i = next_idle(loaded, n, i);
        victims[j] = i;
    }
    return k;
}

/* ---- GPU placement ------------------------------------------------------------------- */

/* A device's room for layers (free memory past the reserve), and how many layers of
 * layer_bytes it holds, at most cap. */
static uint64_t device_room(const struct estimate_device *d, uint64_t reserve_bytes)
{
    return d->free_bytes > reserve_bytes ? d->free_bytes - reserve_bytes : 0;
}

static int device_fit(const struct estimate_device *d, uint64_t reserve_bytes, uint64_t layer_bytes, int cap)
{
    uint64_t fit = layer_bytes ? device_room(d, reserve_bytes) / layer_bytes : (uint64_t)cap;
    return fit < (uint64_t)cap ? (int)fit : cap;
}

int estimate_place_layers(const struct estimate_device *dev, size_t n_dev, int n_layers, uint64_t layer_bytes,
                          uint64_t reserve_bytes, int num_gpu, int *out)
{
    int left = n_layers > 0 ? n_layers : 0;
    if (num_gpu >= 0 && num_gpu < left)
        left = num_gpu;
    uint64_t fits_total = 0, room_total = 0; /* room in KiB: the product below stays inside 64 bits */
    for (size_t d = 0; d < n_dev; d++) {
        int fit = device_fit(&dev[d], reserve_bytes, layer_bytes, left);
        fits_total += (uint64_t)fit;
        if (fit > 0)
            room_total += device_room(&dev[d], reserve_bytes) / 1024;
    }
    int total = fits_total < (uint64_t)left ? (int)fits_total : left;
    int placed = 0;
    for (size_t d = 0; d < n_dev; d++) {
        int fit = device_fit(&dev[d], reserve_bytes, layer_bytes, left);
        uint64_t room = device_room(&dev[d], reserve_bytes) / 1024;
        int share = fit > 0 && room_total ? (int)((uint64_t)total * room / room_total) : 0;
        out[d] = share < fit ? share : fit;
        placed += out[d];
    }
    /* the rounding: to the first devices with room left */
    for (size_t d = 0; d < n_dev && placed < total; d++) {
        int more = device_fit(&dev[d], reserve_bytes, layer_bytes, total) - out[d];
        if (more > total - placed)
            more = total - placed;
        if (more > 0) {
            out[d] += more;
            placed += more;
        }
    }
    return placed;
}
