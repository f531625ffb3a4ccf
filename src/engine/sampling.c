/* sampling.c -- see sampling.h. */
#include "engine/sampling.h"

#include <stdlib.h>

#include "engine/callgate.h"
#include "llama.h"

static struct llama_sampler *chain_new(const struct sampling_params *p, const struct llama_vocab *vocab,
                                       uint32_t seed, int n_ctx, struct llama_sampler *g);

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
    struct llama_sampler *g = NULL;
    if (grammar) {
        g = lazy ? llama_sampler_init_grammar_lazy_patterns(vocab, grammar, "root", patterns, n_patterns, tokens, n_tokens)
                 : llama_sampler_init_grammar(vocab, grammar, "root");
        if (!g)
            return NULL;
    }
    return chain_new(p, vocab, seed, n_ctx, g);
}

/* ---- the gated grammar: a sampler around the lazy grammar, fed what callgate lets by ---- */

struct gated {
    struct llama_sampler *grammar;
    const struct llama_vocab *vocab;
    struct callgate gate;
    struct callgate gate0; /* as initialised, for reset */
};

static const char *gated_name(const struct llama_sampler *s)
{
    (void)s;
    return "bellows-gated-grammar";
}

static void gated_accept(struct llama_sampler *s, llama_token tok)
{
    struct gated *g = s->ctx;
    char buf[256], *piece = buf;
    int n = llama_token_to_piece(g->vocab, tok, buf, sizeof buf, 0, true);
    if (n < 0) { /* a piece longer than buf: rare, but its text matters (a marker at its end) */
        piece = malloc((size_t)-n);
        n = piece ? llama_token_to_piece(g->vocab, tok, piece, -n, 0, true) : 0;
        if (n < 0)
            n = 0;
    }
    int32_t out[CALLGATE_HOLD + 1];
    size_t k = callgate_feed(&g->gate, tok, piece ? piece : "", (size_t)n, out);
    if (piece != buf)
        free(piece);
    for (size_t i = 0; i < k; i++)
        llama_sampler_accept(g->grammar, out[i]);
}

/* The grammar applies as it is: until its trigger was fed it lets everything by, and once
 * it fired (in the answer) every later token is fed to it. */
static void gated_apply(struct llama_sampler *s, llama_token_data_array *cur)
{
    struct gated *g = s->ctx;
    llama_sampler_apply(g->grammar, cur);
}

static void gated_reset(struct llama_sampler *s)
{
    struct gated *g = s->ctx;
    llama_sampler_reset(g->grammar);
    g->gate = g->gate0;
}

static void gated_free(struct llama_sampler *s)
{
    struct gated *g = s->ctx;
    llama_sampler_free(g->grammar);
    free(g);
}

static struct llama_sampler *gated_clone(const struct llama_sampler *s);

static struct llama_sampler_i gated_iface = {
    .name = gated_name,
    .accept = gated_accept,
    .apply = gated_apply,
    .reset = gated_reset,
    .clone = gated_clone,
    .free = gated_free,
};

static struct llama_sampler *gated_wrap(struct llama_sampler *grammar, const struct llama_vocab *vocab,
                                        const struct callgate *gate, const struct callgate *gate0)
{
    struct gated *g = grammar ? malloc(sizeof *g) : NULL;
    if (!g) {
        if (grammar)
            llama_sampler_free(grammar);
        return NULL;
    }
    *g = (struct gated){.grammar = grammar, .vocab = vocab, .gate = *gate, .gate0 = *gate0};
    struct llama_sampler *s = llama_sampler_init(&gated_iface, g);
    if (!s) {
        llama_sampler_free(grammar);
        free(g);
    }
    return s;
}

static struct llama_sampler *gated_clone(const struct llama_sampler *s)
{
    const struct gated *g = s->ctx;
    return gated_wrap(llama_sampler_clone(g->grammar), g->vocab, &g->gate, &g->gate0);
}

struct llama_sampler *sampling_chain_new_gated(const struct sampling_params *p, const struct llama_vocab *vocab,
                                               uint32_t seed, int n_ctx, const char *grammar, const char **patterns,
                                               size_t n_patterns, const int32_t *tokens, size_t n_tokens,
                                               const struct reasoning_cfg *think)
{
    if (!grammar)
        return NULL;
    struct llama_sampler *lazy =
        llama_sampler_init_grammar_lazy_patterns(vocab, grammar, "root", patterns, n_patterns, tokens, n_tokens);
    if (!lazy)
        return NULL;
    struct callgate gate;
    callgate_init(&gate, think);
    struct llama_sampler *g = gated_wrap(lazy, vocab, &gate, &gate);
    return g ? chain_new(p, vocab, seed, n_ctx, g) : NULL;
}

/* The chain: g (a grammar, or NULL) first, then penalties and the samplers of p. Takes g
 * (freed when the chain cannot be made). */
static struct llama_sampler *chain_new(const struct sampling_params *p, const struct llama_vocab *vocab,
                                       uint32_t seed, int n_ctx, struct llama_sampler *g)
{
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *chain = llama_sampler_chain_init(cp);
    if (!chain) {
        if (g)
            llama_sampler_free(g);
        return NULL;
    }
    if (g)
        llama_sampler_chain_add(chain, g);

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
