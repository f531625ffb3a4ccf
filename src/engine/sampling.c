/* sampling.c -- see sampling.h. */
#include "engine/sampling.h"

#include "llama.h"

void sampling_params_default(struct sampling_params *p)
{
    *p = (struct sampling_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.9f,
        .min_p = 0.0f,
        .typical_p = 1.0f,
        .repeat_last_n = 64,
        .repeat_penalty = 1.1f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = -1,
    };
}

struct llama_sampler *sampling_chain_new(const struct sampling_params *p, const struct llama_vocab *vocab,
                                         uint32_t seed, int n_ctx, const char *grammar)
{
    return sampling_chain_new_lazy(p, vocab, seed, n_ctx, grammar, false, NULL, 0, NULL, 0);
}

struct llama_sampler *sampling_chain_new_lazy(const struct sampling_params *p, const struct llama_vocab *vocab,
                                              uint32_t seed, int n_ctx, const char *grammar, bool lazy,
                                              const char **patterns, size_t n_patterns, const int32_t *tokens,
                                              size_t n_tokens)
{
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *chain = llama_sampler_chain_init(cp);
    if (!chain)
        return NULL;
    if (grammar) {
        struct llama_sampler *g =
            lazy ? llama_sampler_init_grammar_lazy_patterns(vocab, grammar, "root", patterns, n_patterns, tokens, n_tokens)
                 : llama_sampler_init_grammar(vocab, grammar, "root");
        if (!g) {
            llama_sampler_free(chain);
            return NULL;
        }
        llama_sampler_chain_add(chain, g);
    }

    int last_n = p->repeat_last_n < 0 ? n_ctx : p->repeat_last_n;
    if (last_n != 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f))
        llama_sampler_chain_add(chain, llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), last_n,
                                                                    p->repeat_penalty, p->frequency_penalty,
                                                                    p->presence_penalty));
    if (p->temperature <= 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    /* The order llama.cpp's own samplers use: cut the candidate list, then scale, then draw. */
    if (p->top_k > 0)
        llama_sampler_chain_add(chain, llama_sampler_init_top_k(p->top_k));
    if (p->typical_p < 1.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_typical(p->typical_p, 1));
    if (p->top_p < 1.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(p->top_p, 1));
    if (p->min_p > 0.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_min_p(p->min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(p->temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
    return chain;
}
