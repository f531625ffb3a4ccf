/* gguf_mem.c -- see gguf_mem.h. Every typed read checks the value's type first
 * (gguf_get_val_* aborts on a mismatch). */
#include "store/gguf_mem.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gguf.h"

#define F32_BYTES 4 /* recurrent states: libllama's type_r / type_s */

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
        if (il < 0 || (size_t)il >= gguf_get_arr_n(m->g, id))
            return dflt;
        /* the element type first: gguf_get_arr_data aborts on an array of strings */
        enum gguf_type et = gguf_get_arr_type(m->g, id);
        if (et != GGUF_TYPE_UINT32 && et != GGUF_TYPE_INT32 && et != GGUF_TYPE_BOOL)
            return dflt;
        const void *d = gguf_get_arr_data(m->g, id);
        if (et == GGUF_TYPE_UINT32)
            return ((const uint32_t *)d)[il];
        return et == GGUF_TYPE_INT32 ? ((const int32_t *)d)[il] : ((const int8_t *)d)[il];
    }
    switch (t) {
    case GGUF_TYPE_UINT32: return gguf_get_val_u32(m->g, id);
    case GGUF_TYPE_INT32: return gguf_get_val_i32(m->g, id);
    case GGUF_TYPE_UINT64: return (int64_t)gguf_get_val_u64(m->g, id);
    case GGUF_TYPE_BOOL: return gguf_get_val_bool(m->g, id);
    default: return dflt;
    }
}

/* ne[dim] of blk.<il>.<name>.weight, or -1 when the layer has no such tensor. */
static int64_t tensor_ne(const struct gguf_context *g, int il, const char *name, int dim)
{
    char t[96];
    snprintf(t, sizeof t, "blk.%d.%s.weight", il, name);
    int64_t id = gguf_find_tensor(g, t);
    return id < 0 ? -1 : gguf_get_tensor_ne(g, id)[dim];
}

static bool layer_has_tensors(const struct gguf_context *g, int n_layer)
{
    for (int64_t t = 0; t < gguf_get_n_tensors(g); t++) {
        const char *name = gguf_get_tensor_name(g, t);
        if (!strncmp(name, "blk.", 4) && n_layer > 0)
            return true;
    }
    return false;
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

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void gguf_mem_shape(const struct gguf_context *g, int n_swa, struct estimate_shape *out)
{
    memset(out, 0, sizeof *out);
    struct meta m = {.g = g};
    int64_t aid = gguf_find_key(g, "general.architecture");
    if (aid < 0 || gguf_get_kv_type(g, aid) != GGUF_TYPE_STRING)
        return;
    snprintf(m.arch, sizeof m.arch, "%s", gguf_get_val_str(g, aid));
    int n_layer = (int)meta_int(&m, "block_count", -1, 0);
    int64_t n_head = meta_int(&m, "attention.head_count", 0, 0);
    int64_t n_embd = meta_int(&m, "embedding_length", -1, 0);
    out->n_swa = n_swa >= 0 ? n_swa : (int)meta_int(&m, "attention.sliding_window", -1, 0);
    bool mla = meta_int(&m, "attention.key_length_mla", -1, 0) > 0; /* (the key may be there, 0) */
    out->mla = mla;
    int64_t k_len = meta_int(&m, "attention.key_length", -1, n_head ? n_embd / n_head : 0);
    int64_t v_len = meta_int(&m, "attention.value_length", -1, k_len);
    int64_t d_state = meta_int(&m, "ssm.state_size", -1, 0), d_inner = meta_int(&m, "ssm.inner_size", -1, 0);
    bool shapes = layer_has_tensors(g, n_layer);
    for (int il = 0; il < n_layer && il < 4096; il++) {
        int64_t conv = tensor_ne(g, il, "ssm_conv1d", 1), kconv = tensor_ne(g, il, "ssm_conv1d", 0);
        int64_t sconv = tensor_ne(g, il, "shortconv.conv", 1), ksconv = tensor_ne(g, il, "shortconv.conv", 0);
        if (conv >= 0) { /* Mamba 1/2, gated delta nets: conv window + SSM state */
            out->recurrent_bytes_per_seq +=
                estimate_recurrent_layer_bytes((int)kconv, conv, d_state * d_inner, F32_BYTES);
            out->n_recurrent_layers++;
            continue;
        }
        if (sconv >= 0) { /* LFM2's short convolution: the window only */
            out->recurrent_bytes_per_seq += estimate_recurrent_layer_bytes((int)ksconv, sconv, 0, F32_BYTES);
            out->n_recurrent_layers++;
            continue;
        }
        bool attn = !shapes || tensor_ne(g, il, "attn_q", 1) >= 0 || tensor_ne(g, il, "attn_qkv", 1) >= 0 ||
                    tensor_ne(g, il, "attn_q_a", 1) >= 0 || tensor_ne(g, il, "attn_k", 1) >= 0;
        int64_t n_kv = meta_int(&m, "attention.head_count_kv", il, meta_int(&m, "attention.head_count", il, n_head));
        if (!attn || n_kv <= 0)
            continue; /* a layer with no cache (0 KV heads marks a recurrent layer in some hybrids) */
        int64_t ek = tensor_ne(g, il, "attn_k", 1), ev = tensor_ne(g, il, "attn_v", 1);
        if (mla || ek <= 0 || ev <= 0) { /* MLA, fused QKV, no tensors: from the heads */
            ek = (mla ? 1 : n_kv) * k_len;
            ev = (mla ? 1 : n_kv) * v_len;
        }
        if (mla)
            ev = 0; /* V is read out of K's latent: not stored */
        /* head dimensions, for what a quantized cache type needs to divide */
        int64_t hk = mla ? k_len : ek / n_kv, hv = mla ? v_len : (ev > 0 ? ev / n_kv : 0);
        out->head_gcd = gcd64(gcd64(out->head_gcd, hk > 0 ? hk : 0), hv > 0 ? hv : 0);
        out->n_attn_layers++;
        if (layer_is_swa(&m, il, out->n_swa)) {
            out->swa_k += ek;
            out->swa_v += ev;
        } else {
            out->full_k += ek;
            out->full_v += ev;
        }
    }
}
