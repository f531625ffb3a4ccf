/* test_demo_words.c -- the demo model writes words (issue 14, item 4; tools/mkmodel_words.h).
 *
 * build/models/demo.gguf, through libllama directly: a chat in the model's own ChatML
 * format, one growing sequence of turns, answered greedily and sampled (Ollama's default
 * sampler: top_k 40, top_p 0.9, temperature 0.8, seeded). Almost every token it writes is
 * a word of tools/demo-corpus.txt (or its punctuation), sampled answers end with the
 * end-of-turn token, and greedy answers never do (tests that need an endless answer rely
 * on that). A random-weight model fails all three. BELLOWS_DEMO_GGUF=FILE checks another
 * model. The bigram itself, on a tiny text, is checked first. */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama.h"
#include "mkmodel_words.h"

#define MAX_WORDS 4096
#define ANSWER_MAX 100
#define SAMPLED_TURNS 8

static char *words[MAX_WORDS]; /* the corpus' words, as written */
static int n_words;

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

static void load_corpus_words(void)
{
    FILE *f = fopen(BELLOWS_DEMO_CORPUS, "r");
    assert_non_null(f);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        for (char *p = line; *p;) {
            if (!isalpha((unsigned char)*p)) {
                p++;
                continue;
            }
            char *s = p;
            while (isalnum((unsigned char)*p) || *p == '\'' || *p == '-')
                p++;
            char *w = strndup(s, (size_t)(p - s));
            bool seen = false;
            for (int i = 0; i < n_words && !seen; i++)
                seen = !strcmp(words[i], w);
            if (seen || n_words == MAX_WORDS)
                free(w);
            else
                words[n_words++] = w;
        }
    }
    fclose(f);
    assert_true(n_words > 100);
}

/* A token is a corpus word when its text, less one leading space, is a word of the corpus
 * or one of . , ! ? */
static bool is_corpus_word(const struct llama_vocab *v, llama_token t)
{
    char piece[256];
    int n = llama_token_to_piece(v, t, piece, sizeof piece - 1, 0, false);
    if (n <= 0)
        return false;
    piece[n] = '\0';
    const char *w = piece[0] == ' ' ? piece + 1 : piece;
    if (strlen(w) == 1 && strchr(".,!?", w[0]))
        return true;
    for (int i = 0; i < n_words; i++)
        if (!strcmp(words[i], w))
            return true;
    return false;
}

struct chat {
    const struct llama_model *model;
    const struct llama_vocab *vocab;
    struct llama_context *ctx;
    int n_past;
    float eog_margin; /* the most an end-of-generation logit came to the best other one */
    char text[65536]; /* every answer, for the log */
};

static void feed(struct chat *c, const char *text)
{
    llama_token toks[1024];
    int n = llama_tokenize(c->vocab, text, (int32_t)strlen(text), toks, 1024, false, true);
    assert_true(n > 0);
    for (int i = 0; i < n; i += 256) { /* n_batch is larger: one decode per 256 */
        int k = n - i < 256 ? n - i : 256;
        assert_int_equal(llama_decode(c->ctx, llama_batch_get_one(toks + i, k)), 0);
    }
    c->n_past += n;
}

/* One turn: the user's message, then up to ANSWER_MAX tokens of answer. Counts the
 * answer's tokens and corpus words; returns whether it ended with an end-of-generation
 * token. The answer stays in the sequence: the next turn's context has grown. */
static bool turn(struct chat *c, struct llama_sampler *smpl, const char *user, int *n_tokens, int *n_in)
{
    char prompt[1024];
    snprintf(prompt, sizeof prompt, "%s<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
             c->n_past ? "\n" : "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n", user);
    feed(c, prompt);
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof c->text - len, "[%s] ", user);
    for (int i = 0; i < ANSWER_MAX; i++) {
        const float *logits = llama_get_logits_ith(c->ctx, -1);
        float top = -1e30f;
        for (int k = 0; k < llama_vocab_n_tokens(c->vocab); k++)
            if (!llama_vocab_is_eog(c->vocab, k) && logits[k] > top)
                top = logits[k];
        for (int k = 0; k < llama_vocab_n_tokens(c->vocab); k++)
            if (llama_vocab_is_eog(c->vocab, k) && logits[k] - top > c->eog_margin)
                c->eog_margin = logits[k] - top;
        llama_token t = llama_sampler_sample(smpl, c->ctx, -1);
        llama_sampler_accept(smpl, t);
        if (llama_vocab_is_eog(c->vocab, t)) {
            feed(c, "<|im_end|>");
            strncat(c->text, "<END>\n", sizeof c->text - strlen(c->text) - 1);
            return true;
        }
        (*n_tokens)++;
        *n_in += is_corpus_word(c->vocab, t);
        char piece[256];
        int n = llama_token_to_piece(c->vocab, t, piece, sizeof piece - 1, 0, false);
        piece[n > 0 ? n : 0] = '\0';
        strncat(c->text, piece, sizeof c->text - strlen(c->text) - 1);
        assert_int_equal(llama_decode(c->ctx, llama_batch_get_one(&t, 1)), 0);
        c->n_past++;
    }
    feed(c, "<|im_end|>");
    strncat(c->text, " <LIMIT>\n", sizeof c->text - strlen(c->text) - 1);
    return false;
}

static struct llama_sampler *sampler(uint32_t seed)
{
    struct llama_sampler *s = llama_sampler_chain_init(llama_sampler_chain_default_params());
    if (seed == 0) {
        llama_sampler_chain_add(s, llama_sampler_init_greedy());
    } else {
        llama_sampler_chain_add(s, llama_sampler_init_top_k(40));
        llama_sampler_chain_add(s, llama_sampler_init_top_p(0.9f, 1));
        llama_sampler_chain_add(s, llama_sampler_init_temp(0.8f));
        llama_sampler_chain_add(s, llama_sampler_init_dist(seed));
    }
    return s;
}

static void the_demo_model_writes_the_corpus_words(void **state)
{
    (void)state;
    load_corpus_words();
    char path[1024];
    const char *env = getenv("BELLOWS_DEMO_GGUF");
    snprintf(path, sizeof path, "%s", env && *env ? env : BELLOWS_TEST_MODELS "/demo.gguf");
    struct llama_model *m = llama_model_load_from_file(path, llama_model_default_params());
    assert_non_null(m);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096;
    cp.n_batch = 512;
    cp.n_threads = cp.n_threads_batch = 2;
    static struct chat c;
    c.model = m;
    c.vocab = llama_model_get_vocab(m);
    c.ctx = llama_init_from_model(m, cp);
    c.eog_margin = -1e30f;
    assert_non_null(c.ctx);

    static const char *const questions[] = {"Why is the sky blue?", "What does Bellows do?", "Tell me more.",
                                            "How is the context sized?", "And the cache?"};
    int n_tok = 0, n_in = 0, n_greedy_tok = 0, n_greedy_in = 0, ended = 0;
    struct llama_sampler *greedy = sampler(0);
    bool greedy_ended = turn(&c, greedy, questions[0], &n_greedy_tok, &n_greedy_in);
    for (int i = 0; i < SAMPLED_TURNS; i++) {
        struct llama_sampler *s = sampler(1000 + (uint32_t)i);
        ended += turn(&c, s, questions[(i + 1) % 5], &n_tok, &n_in);
        llama_sampler_free(s);
    }
    /* greedy again, deep in the conversation: the context changed the answer's path */
    greedy_ended |= turn(&c, greedy, questions[4], &n_greedy_tok, &n_greedy_in);
    llama_sampler_free(greedy);
    printf("%s", c.text);
    printf("greedy: %d/%d corpus words; sampled: %d/%d corpus words, %d of %d answers ended; context %d tokens; "
           "end-of-turn came within %.2f logits of the best token\n",
           n_greedy_in, n_greedy_tok, n_in, n_tok, ended, SAMPLED_TURNS, c.n_past, c.eog_margin);

    assert_int_equal(n_greedy_tok, 2 * ANSWER_MAX);
    assert_false(greedy_ended);
    assert_true(n_greedy_in * 10 >= n_greedy_tok * 9);
    assert_true(n_tok > 0);
    assert_true(n_in * 10 >= n_tok * 9);
    assert_true(ended >= 1);
    assert_true(c.n_past > 500); /* the context grew turn by turn */

    llama_free(c.ctx);
    llama_model_free(m);
    for (int i = 0; i < n_words; i++)
        free(words[i]);
}

/* The pure part of tools/mkmodel_words.c on a tiny text: 10 = "the", 11 = "cat",
 * 12 = "dog", 13 = ".", 20 = end-of-turn. */
static void the_bigram_and_its_weights(void **state)
{
    (void)state;
    const int32_t S = WORDS_SENTENCE, O = WORDS_OOV;
    const int32_t units[] = {S, 10, 11, 13, S, 10, 11, 13, S, 10, 12, 13, S, 10, O, 11, 13};
    const int32_t end[] = {13};
    struct words_model m;
    assert_int_equal(words_model_from_units(units, sizeof units / sizeof *units, 3, end, 1, 20, 0.5f, &m), 0);
    /* the 3 most frequent: "the" 4, "." 4 (ties: the lower id first), "cat" 3; "dog" is out */
    assert_int_equal(m.n_words, 3);
    assert_int_equal(m.tok[0], 10);
    assert_int_equal(m.tok[1], 13);
    assert_int_equal(m.tok[2], 11);
    int nn = m.n_words + 1;
#define P(state, next) expf(m.logp[(state) * nn + (next)])
    for (int r = 0; r <= m.n_words; r++) {
        double sum = 0;
        for (int k = 0; k < nn; k++)
            sum += P(r, k);
        assert_true(fabs(sum - 1) < 1e-5);
    }
    /* "the" -> "cat" twice ("the" -> OOV -> "cat" is no pair): the best next word */
    assert_true(P(0, 2) > 0.6);
    /* the start state (after the prompt) begins sentences: "the" */
    assert_true(P(3, 0) > 0.9);
    /* end-of-turn comes only after ".", at half the best word's probability there */
    assert_true(fabsf(P(1, 3) - 0.5f * P(1, 0)) < 1e-5);
    assert_true(P(0, 3) < 1e-15 && P(2, 3) < 1e-15 && P(3, 3) < 1e-15);

    /* The weights: a token's embedding, RMS-normed, times output.weight gives log P.
     * 7 is "the" without its space: written after the start state, in the state of "the". */
    for (int k = 0; k < m.n_words; k++)
        assert_int_equal(m.bare[k], -1);
    m.bare[0] = 7;
    enum { D = 8, V = 32 };
    static float embd[V * D], out[V * D];
    words_fill_embd(&m, D, V, 16.0f, embd);
    words_fill_output(&m, D, V, out);
    const int32_t prev[] = {10, 13, 11, 5 /* outside W: the start state */, 7};
    const int state_of[] = {0, 1, 2, 3, 0};
    for (int p = 0; p < 5; p++) {
        const float *x = embd + prev[p] * D;
        double ms = 0;
        for (int j = 0; j < D; j++)
            ms += (double)x[j] * x[j] / D;
        for (int t = 0; t < V; t++) {
            double logit = 0;
            for (int j = 0; j < D; j++)
                logit += x[j] / sqrt(ms) * out[t * D + j];
            int k = t == 20 ? 3 : t == 10 ? 0 : t == 13 ? 1 : t == 11 ? 2 : t == 7 ? 0 : -1;
            bool start = state_of[p] == 3;
            if ((t == 7 && !start) || (t == 10 && start))
                assert_true(logit < -39); /* bare only first, spaced only after */
            else if (k >= 0)
                assert_true(fabs(logit - m.logp[state_of[p] * nn + k]) < 1e-4);
            else
                assert_true(logit < -39); /* outside W: never */
        }
    }
#undef P
    words_model_free(&m);
}

int main(void)
{
    llama_log_set(quiet, NULL);
    llama_backend_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_bigram_and_its_weights),
        cmocka_unit_test(the_demo_model_writes_the_corpus_words),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    llama_backend_free();
    return rc;
}
