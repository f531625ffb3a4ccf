/* engine_embed.c -- embeddings: an admitted ENGINE_EMBED job is evaluated at once in its own
 * batches and its slot freed (split from engine.c, which admits it). */
#include "engine/engine_int.h"

#include <stdlib.h>

#include "util/clock.h"
#include "util/log.h"

static int ceil_to(int x, int q) { return (x + q - 1) / q * q; }
static int imin(int a, int b) { return a < b ? a : b; }

/* Evaluates an admitted embedding job at once in its own batches (embeddings on), emits
 * the vector and frees the slot. Models with a pooling type pool in libllama; others
 * (causal LMs) are mean-pooled here over every token's output embedding. */
void engine__run_embedding(struct engine *e, struct job *j)
{
    int seq = j->slot;
    int n_embd = e->n_embd;
    double *acc = calloc((size_t)n_embd, sizeof *acc);
    float *vec = malloc((size_t)n_embd * sizeof *vec);
    enum llama_pooling_type pooling = llama_pooling_type(e->ctx);
    int rc = acc && vec ? 0 : -100;
    /* A pooled model pools over one micro-batch (and a non-causal one cannot split its
     * input at all): the whole input must fit in one. The pool's contexts start with
     * 512-token micro-batches; a longer input (up to Cmax, cut by `truncate` before) makes
     * them larger, once, by recreating the context (an embedding leaves no KV to move). */
    if (rc == 0 && pooling != LLAMA_POOLING_TYPE_NONE && j->n_prompt > (int)llama_n_ubatch(e->ctx)) {
        int old = e->n_ubatch;
        e->n_ubatch = ceil_to(j->n_prompt, 512);
        LOG_REQ(LOG_INFO, j->req_id, "engine", "micro-batch %d -> %d tokens for a %d-token embedding input", old,
                e->n_ubatch, j->n_prompt);
        if (engine__pool_resize(e, e->pool_cells) != BW_OK) {
            e->n_ubatch = old;
            rc = -102;
        }
    }
    if (rc == 0 && pooling != LLAMA_POOLING_TYPE_NONE && j->n_prompt > (int)llama_n_ubatch(e->ctx))
        rc = -101; /* still too long for one micro-batch */
    int cap = (int)llama_n_batch(e->ctx);
    llama_set_embeddings(e->ctx, true);
    int64_t t0 = clock_mono_ns();
    for (int done = 0; rc == 0 && done < j->n_prompt;) {
        int take = imin(cap, j->n_prompt - done);
        e->batch.n_tokens = 0;
        for (int k = 0; k < take; k++)
            engine__batch_add(&e->batch, j->prompt[done + k], done + k, seq, true);
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
    engine__slot_clear(e, seq);
    j->slot = -1;
    if (rc == 0) {
        struct engine_event ev = {.req_id = j->req_id, .type = ENGINE_EV_EMBEDDING, .embd = vec, .n_embd = n_embd};
        e->emit(e->emit_ud, &ev);
        engine__job_finish(e, j, "stop");
    } else {
        engine__job_fail(e, j, rc == -101 ? BW_ETOOLONG : rc == -102 ? BW_ENOMEM : BW_ERUNNER,
                 rc == -101   ? "input is longer than one micro-batch of this pooled embedding model"
                 : rc == -102 ? "no memory for a micro-batch as long as this embedding input"
                              : "embedding evaluation failed");
    }
    free(acc);
    free(vec);
}
