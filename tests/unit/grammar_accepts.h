/* grammar_accepts.h -- for unit tests: does libllama's grammar sampler take a text? A
 * vocab-only model (llama.cpp's ggml-vocab-llama-bpe) tokenizes the text, and each token
 * goes through llama_sampler_init_grammar's sampler; the end of generation must be allowed
 * at the end. Included by one test file each (static functions); the includer defines
 * BELLOWS_LLAMA_DIR and includes cmocka first. */
#ifndef BELLOWS_TEST_GRAMMAR_ACCEPTS_H
#define BELLOWS_TEST_GRAMMAR_ACCEPTS_H

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

#ifndef BELLOWS_LLAMA_DIR
#error BELLOWS_LLAMA_DIR must name the llama.cpp source (its models/ has the vocab files)
#endif

static struct llama_model *g_model;
static const struct llama_vocab *g_vocab;

static void grammar_quiet(enum ggml_log_level level, const char *text, void *ud) {}

/* Loads the vocabulary; 0 on success (a cmocka group setup may return it). */
static int grammar_vocab_load(void)
{
    llama_log_set(grammar_quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    g_model = llama_model_load_from_file(BELLOWS_LLAMA_DIR "/models/ggml-vocab-llama-bpe.gguf", mp);
    if (!g_model)
        return -1;
    g_vocab = llama_model_get_vocab(g_model);
    return 0;
}

static void grammar_vocab_free(void)
{
    llama_model_free(g_model);
    llama_backend_free();
}

/* TEXT fed token by token through the grammar: true when no token is refused and the end of
 * generation is allowed at the end. */
static bool accepts(const char *grammar, const char *text)
{
    struct llama_sampler *s = llama_sampler_init_grammar(g_vocab, grammar, "root");
    assert_non_null(s);
    int len = (int)strlen(text);
    int n = llama_tokenize(g_vocab, text, len, NULL, 0, false, false);
    if (n < 0)
        n = -n;
    llama_token *toks = calloc((size_t)n + 1, sizeof *toks);
    assert_non_null(toks);
    assert_int_equal(llama_tokenize(g_vocab, text, len, toks, n, false, false), n);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        llama_token_data d = {.id = toks[i], .logit = 0.0f, .p = 0.0f};
        llama_token_data_array a = {.data = &d, .size = 1, .selected = -1, .sorted = false};
        llama_sampler_apply(s, &a);
        ok = d.logit != -INFINITY;
        if (ok)
            llama_sampler_accept(s, toks[i]);
    }
    if (ok) {
        llama_token_data d = {.id = llama_vocab_eos(g_vocab), .logit = 0.0f, .p = 0.0f};
        llama_token_data_array a = {.data = &d, .size = 1, .selected = -1, .sorted = false};
        llama_sampler_apply(s, &a);
        ok = d.logit != -INFINITY;
    }
    free(toks);
    llama_sampler_free(s);
    return ok;
}

#endif
