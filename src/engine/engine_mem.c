/* engine_mem.c -- the memory kinds of a model (issue 18): which layers keep a full-attention
 * cache, a sliding-window one or a recurrent state, and their bytes (sched/estimate.h does
 * the arithmetic). libllama keeps this in its C++ hparams, out of reach of llama.h, so it
 * is read again here from the GGUF: metadata with gguf.h, and which tensors each layer has
 * (a layer with an SSM convolution is recurrent; one with attention projections is
 * attention). What this gets wrong only moves the estimate, never the tokens. */
#include "engine/engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

#define F16_BYTES 2 /* K and V: libllama's default cache type, which the engine keeps */
#define F32_BYTES 4 /* recurrent states */

struct meta {
    const struct gguf_context *g;
    char arch[64];
};

static int64_t key_id(const struct meta *m, const char *suffix)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", m->arch, suffix);
    return gguf_find_key(m->g, key);
}

/* An integer key, or element il of an integer array key, or dflt. */
static int64_t meta_int(const struct meta *m, const char *suffix, int il, int64_t dflt)
{
    int64_t id = key_id(m, suffix);
    if (id < 0)
        return dflt;
    enum gguf_type t = gguf_get_kv_type(m->g, id);
    if (t == GGUF_TYPE_ARRAY) {
        if ((size_t)il >= gguf_get_arr_n(m->g, id))
            return dflt;
        const void *d = gguf_get_arr_data(m->g, id);
        switch (gguf_get_arr_type(m->g, id)) {
        case GGUF_TYPE_UINT32: return ((const uint32_t *)d)[il];
        case GGUF_TYPE_INT32: return ((const int32_t *)d)[il];
        case GGUF_TYPE_BOOL: return ((const int8_t *)d)[il];
        default: return dflt;
        }
    }
    switch (t) {
    case GGUF_TYPE_UINT32: return gguf_get_val_u32(m->g, id);
    case GGUF_TYPE_INT32: return gguf_get_val_i32(m->g, id);
    case GGUF_TYPE_UINT64: return (int64_t)gguf_get_val_u64(m->g, id);
    case GGUF_TYPE_BOOL: return gguf_get_val_bool(m->g, id);
    default: return dflt;
    }
}

/* ne[1] of blk.<il>.<name>.weight (its output width), or -1 when the layer has none. */
static int64_t tensor_rows(const struct gguf_context *g, const struct ggml_context *gctx, int il, const char *name,
                           int dim)
{
    char t[96];
    snprintf(t, sizeof t, "blk.%d.%s.weight", il, name);
    if (gguf_find_tensor(g, t) < 0)
        return -1;
    const struct ggml_tensor *w = gctx ? ggml_get_tensor((struct ggml_context *)gctx, t) : NULL;
    return w ? w->ne[dim] : 0;
}

/* Whether attention layer il uses the sliding window: llama_hparams::set_swa_pattern with
 * the GGUF's sliding_window_pattern (a period, or one bool per layer) or the architecture's
 * default period. An architecture not listed counts as full attention: the larger estimate. */
static bool layer_is_swa(const struct meta *m, int il, int n_swa)
{
    if (n_swa <= 0)
        return false;
    int64_t id = key_id(m, "attention.sliding_window_pattern");
    if (id >= 0 && gguf_get_kv_type(m->g, id) == GGUF_TYPE_ARRAY)
        return meta_int(m, "attention.sliding_window_pattern", il, 0) != 0;
    /* period p: layer il is SWA when il % p < p - 1; 0: every attention layer (LFM2: every
     * one that is not recurrent). -1: not listed. */
    static const struct {
        const char *arch;
        int period;
    } dflt[] = {{"gemma2", 2}, {"gpt-oss", 2}, {"gemma3", 6}, {"gemma3n", 5}, {"cohere2", 4},
                {"llama4", 4}, {"exaone4", 4}, {"olmo2", 4},  {"lfm2", 0},    {"lfm2moe", 0}};
    int period = -1;
    for (size_t i = 0; i < sizeof dflt / sizeof dflt[0]; i++)
        if (!strcmp(m->arch, dflt[i].arch))
            period = dflt[i].period;
    period = (int)meta_int(m, "attention.sliding_window_pattern", 0, period);
    if (period < 0)
        return false;
    return period == 0 || il % period < period - 1;
}

void engine__mem_init(struct engine *e)
{
    memset(&e->mem, 0, sizeof e->mem);
    struct ggml_context *gctx = NULL;
    struct gguf_init_params gp = {.no_alloc = true, .ctx = &gctx};
    struct gguf_context *g = gguf_init_from_file(e->p.model_path, gp);
    struct meta m = {.g = g};
    int n_layer = llama_model_n_layer(e->model);
    int n_head = llama_model_n_head(e->model);
    int64_t n_embd = llama_model_n_embd(e->model);
    e->mem.n_swa = e->n_swa;
    if (!g || llama_model_meta_val_str(e->model, "general.architecture", m.arch, sizeof m.arch) <= 0) {
        /* Unreadable here although libllama loaded it: every layer full attention. */
        int64_t hd = n_head ? n_embd / n_head : 0;
        e->mem.full_bytes_per_cell =
            (uint64_t)n_layer * estimate_attn_layer_bytes(llama_model_n_head_kv(e->model) * hd,
                                                          llama_model_n_head_kv(e->model) * hd, 0, F16_BYTES);
        if (g)
            gguf_free(g);
        if (gctx)
            ggml_free(gctx);
        return;
    }
    bool mla = meta_int(&m, "attention.key_length_mla", 0, 0) > 0; /* (the key may be there, 0) */
    int64_t k_len = meta_int(&m, "attention.key_length", 0, n_head ? n_embd / n_head : 0);
    int64_t v_len = meta_int(&m, "attention.value_length", 0, k_len);
    int64_t d_state = meta_int(&m, "ssm.state_size", 0, 0), d_inner = meta_int(&m, "ssm.inner_size", 0, 0);
    for (int il = 0; il < n_layer; il++) {
        int64_t conv = tensor_rows(g, gctx, il, "ssm_conv1d", 1);
        int64_t kconv = tensor_rows(g, gctx, il, "ssm_conv1d", 0);
        int64_t sconv = tensor_rows(g, gctx, il, "shortconv.conv", 1);
        int64_t ksconv = tensor_rows(g, gctx, il, "shortconv.conv", 0);
        if (conv >= 0) { /* Mamba 1/2, gated delta nets: conv window + SSM state */
            e->mem.recurrent_bytes_per_seq +=
                estimate_recurrent_layer_bytes((int)kconv, conv, d_state * d_inner, F32_BYTES);
            continue;
        }
        if (sconv >= 0) { /* LFM2's short convolution: the window only */
            e->mem.recurrent_bytes_per_seq += estimate_recurrent_layer_bytes((int)ksconv, sconv, 0, F32_BYTES);
            continue;
        }
        bool attn = tensor_rows(g, gctx, il, "attn_q", 1) >= 0 || tensor_rows(g, gctx, il, "attn_qkv", 1) >= 0 ||
                    tensor_rows(g, gctx, il, "attn_q_a", 1) >= 0 || tensor_rows(g, gctx, il, "attn_k", 1) >= 0;
        int64_t n_kv = meta_int(&m, "attention.head_count_kv", il, meta_int(&m, "attention.head_count", il, n_head));
        if (!attn || n_kv == 0)
            continue; /* a layer with no cache (0 KV heads marks a recurrent layer in some hybrids) */
        int64_t ek = tensor_rows(g, gctx, il, "attn_k", 1), ev = tensor_rows(g, gctx, il, "attn_v", 1);
        if (mla || ek <= 0 || ev <= 0) { /* MLA, fused QKV: from the heads */
            ek = (mla ? 1 : n_kv) * k_len;
            ev = (mla ? 1 : n_kv) * v_len;
        }
        uint64_t b = estimate_attn_layer_bytes(ek, ev, mla, F16_BYTES);
        if (layer_is_swa(&m, il, e->n_swa))
            e->mem.swa_bytes_per_cell += b;
        else
            e->mem.full_bytes_per_cell += b;
    }
    gguf_free(g);
    if (gctx)
        ggml_free(gctx);
}

const char *engine__mem_kind(const struct engine *e)
{
    bool attn = e->mem.full_bytes_per_cell || e->mem.swa_bytes_per_cell;
    if (e->recurrent)
        return attn && !e->pure_recurrent ? "hybrid" : "recurrent";
    if (e->mem.swa_bytes_per_cell)
        return "swa";
    char v[8];
    if (llama_model_meta_val_str(e->model, "general.architecture", v, sizeof v) > 0) {
        char key[96], arch[64];
        llama_model_meta_val_str(e->model, "general.architecture", arch, sizeof arch);
        snprintf(key, sizeof key, "%s.attention.key_length_mla", arch);
        if (llama_model_meta_val_str(e->model, key, v, sizeof v) > 0 && atoi(v) > 0)
            return "mla";
    }
    return "full";
}
