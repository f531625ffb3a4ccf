/* sampling.h -- per-request sampling options and the llama_sampler chain built from them.
 *
 * Defaults are Ollama's (anchors.md §1): temperature 0.8, top_k 40, top_p 0.9, min_p 0,
 * typical_p 1, repeat_last_n 64, repeat_penalty 1.1, no presence/frequency penalty.
 * temperature <= 0 means greedy: the penalties still apply, then the most likely token.
 * Knows nothing of requests or I/O; called by engine.c. */
#ifndef BELLOWS_SAMPLING_H
#define BELLOWS_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llama_sampler;
struct llama_vocab;

struct sampling_params {
    float temperature;
    int top_k;             /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float typical_p;       /* >= 1: off */
    int repeat_last_n;     /* 0: no penalties; -1: the whole context */
    float repeat_penalty;  /* 1: off */
    float presence_penalty;
    float frequency_penalty;
    int64_t seed;          /* < 0: the engine picks one */
};

void sampling_params_default(struct sampling_params *p);

/* Builds a new chain for one sequence. seed is the one to use (the caller resolves a
 * negative request seed first, so this function stays deterministic). n_ctx bounds
 * repeat_last_n = -1. grammar (GBNF, root rule "root") constrains every token when not
 * NULL: it comes first in the chain, so whatever the chain picks is allowed by it.
 * Returns the chain (caller frees with llama_sampler_free) or NULL when libllama cannot
 * allocate it or the grammar does not parse. */
struct llama_sampler *sampling_chain_new(const struct sampling_params *p, const struct llama_vocab *vocab,
                                         uint32_t seed, int n_ctx, const char *grammar);
/* The same; with lazy set, the grammar waits until the generated text matches one of
 * patterns (ECMAScript regexes, llama_sampler_init_grammar_lazy_patterns: the grammar is
 * then fed the text from the match, or its first group, on) or one of tokens is sampled. */
struct llama_sampler *sampling_chain_new_lazy(const struct sampling_params *p, const struct llama_vocab *vocab,
                                              uint32_t seed, int n_ctx, const char *grammar, bool lazy,
                                              const char **patterns, size_t n_patterns, const int32_t *tokens,
                                              size_t n_tokens);
/* The lazy grammar of tool_choice "auto" (issue 11), kept from the reasoning: the same chain
 * as sampling_chain_new_lazy with lazy set, but its grammar is fed only the tokens that
 * engine/callgate.h lets through for think (the request's reasoning markers; NULL: every
 * token), so a trigger written in the reasoning does not fire it. The grammar still comes
 * first in the chain (a no-op until it fires). NULL as for sampling_chain_new. */
struct reasoning_cfg;
struct llama_sampler *sampling_chain_new_gated(const struct sampling_params *p, const struct llama_vocab *vocab,
                                               uint32_t seed, int n_ctx, const char *grammar, const char **patterns,
                                               size_t n_patterns, const int32_t *tokens, size_t n_tokens,
                                               const struct reasoning_cfg *think);

#endif
