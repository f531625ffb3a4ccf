/* engine_mem.c -- the memory kinds of a model (issue 18) and its KV cache type (issue 15):
 * which layers keep a full-attention cache, a sliding-window one or a recurrent state, read
 * from the GGUF by store/gguf_mem.h -- the same reading the server's admission estimate
 * uses -- and their bytes in the cache type (sched/estimate.h does the arithmetic). */
#include "engine/engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "gguf.h"
#include "store/gguf_mem.h"
#include "util/log.h"

/* Every layer full attention, from libllama's numbers: when the GGUF cannot be read here
 * although libllama loaded it. */
static void shape_from_llama(struct engine *e)
{
    int n_head = llama_model_n_head(e->model);
    int64_t hd = n_head ? llama_model_n_embd(e->model) / n_head : 0;
    int64_t kv = (int64_t)llama_model_n_head_kv(e->model) * hd;
    e->shape.full_k = e->shape.full_v = (int64_t)llama_model_n_layer(e->model) * kv;
    e->shape.head_gcd = hd;
    e->shape.n_attn_layers = llama_model_n_layer(e->model);
}

int engine__mem_init(struct engine *e, struct bw_err *err)
{
    memset(&e->mem, 0, sizeof e->mem);
    memset(&e->shape, 0, sizeof e->shape);
    struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(e->p.model_path, gp);
    if (g) {
        gguf_mem_shape(g, e->n_swa, &e->shape);
        gguf_free(g);
    }
    if (!g || (e->shape.n_attn_layers == 0 && e->shape.n_recurrent_layers == 0 && !e->recurrent))
        shape_from_llama(e);
    e->shape.n_swa = e->n_swa;

    const char *want = e->p.kv_type && e->p.kv_type[0] ? e->p.kv_type : "f16";
    int t = estimate_kv_type_parse(want);
    if (t == ESTIMATE_KV_INVALID)
        return bw_errf(err, BW_EINVAL, "KV cache type '%.40s': expected f16, q8_0 or q4_0", want);
    if (t == ESTIMATE_KV_AUTO)
        t = ESTIMATE_KV_F16; /* the scheduler settles auto before a runner starts */
    if (t != ESTIMATE_KV_F16 && !e->p.flash_attn) {
        LOG(LOG_WARN, "engine", "KV cache type %s needs flash attention, which is off: using f16",
            estimate_kv_type_name(t));
        t = ESTIMATE_KV_F16;
    } else if (!estimate_kv_type_fits(&e->shape, t)) {
        LOG(LOG_WARN, "engine", "KV cache type %s needs head dimensions that are multiples of %d (this model's: %lld): "
            "using f16", estimate_kv_type_name(t), estimate_kv_block_elems(t), (long long)e->shape.head_gcd);
        t = ESTIMATE_KV_F16;
    }
    e->kv_type = t;
    estimate_memory_of(&e->shape, t, &e->mem);
    return BW_OK;
}

enum ggml_type engine__kv_ggml_type(const struct engine *e)
{
    switch (e->kv_type) {
    case ESTIMATE_KV_Q8_0: return GGML_TYPE_Q8_0;
    case ESTIMATE_KV_Q4_0: return GGML_TYPE_Q4_0;
    default: return GGML_TYPE_F16;
    }
}

const char *engine__mem_kind(const struct engine *e)
{
    bool attn = e->mem.full_bytes_per_cell || e->mem.swa_bytes_per_cell;
    if (e->recurrent)
        return attn && !e->pure_recurrent ? "hybrid" : "recurrent";
    if (e->mem.swa_bytes_per_cell)
        return "swa";
    if (e->shape.mla)
        return "mla";
    return "full";
}
