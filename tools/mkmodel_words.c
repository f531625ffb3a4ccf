/* mkmodel_words.c -- the demo model's words (see mkmodel_words.h). */
#define _GNU_SOURCE
#include "mkmodel_words.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

/* The smoothing weight of the unigram in each state's row: small, so that the bigram
 * speaks, but above 0, so that every word may follow every state (sampling varies). */
#define UNIGRAM_ALPHA 0.5
/* End-of-turn after a sentence end, against the most likely next word there: sampled
 * answers end after a few sentences (7 of 8 within 100 tokens in test_demo_words), and
 * greedy ones never do: log(0.6) = -0.51 leaves room for the random layers' perturbation
 * (they move it by about 0.15; test_demo_words prints the closest it came). */
#define EOT_SHARE 0.6f
/* Far below every word's log-probability (smoothing keeps those above about -12): the
 * 150k tokens outside W then hold e^-28 of the mass together. */
#define LOGIT_NEVER (-40.0f)

void words_model_free(struct words_model *m)
{
    free(m->tok);
    free(m->bare);
    free(m->logp);
    m->tok = NULL;
    m->bare = NULL;
    m->logp = NULL;
    m->n_words = 0;
}

struct cand {
    int32_t tok;
    int64_t freq;
};

static int by_freq(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->freq != y->freq)
        return x->freq > y->freq ? -1 : 1;
    return x->tok < y->tok ? -1 : x->tok > y->tok;
}

int words_model_from_units(const int32_t *units, size_t n, int max_words, const int32_t *end, int n_end,
                           int32_t eot, float eot_share, struct words_model *out)
{
    memset(out, 0, sizeof *out);
    int32_t max_tok = -1;
    for (size_t i = 0; i < n; i++)
        if (units[i] > max_tok)
            max_tok = units[i];
    if (max_tok < 0 || max_words < 1)
        return -1;

    /* W: the most frequent tokens; state[t] is t's word index or -1. */
    int64_t *freq = calloc((size_t)max_tok + 1, sizeof *freq);
    int32_t *state = malloc(((size_t)max_tok + 1) * sizeof *state);
    struct cand *c = malloc(((size_t)max_tok + 1) * sizeof *c);
    if (!freq || !state || !c)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if (units[i] >= 0)
            freq[units[i]]++;
    int nc = 0;
    for (int32_t t = 0; t <= max_tok; t++) {
        state[t] = -1;
        if (freq[t] > 0)
            c[nc++] = (struct cand){t, freq[t]};
    }
    qsort(c, (size_t)nc, sizeof *c, by_freq);
    int nw = nc < max_words ? nc : max_words;
    int ns = nw + 1; /* states: the words, then the start state */
    int nn = nw + 1; /* next: the words, then end-of-turn */
    out->tok = malloc((size_t)nw * sizeof *out->tok);
    out->bare = malloc((size_t)nw * sizeof *out->bare);
    double *count = calloc((size_t)ns * nn, sizeof *count);
    out->logp = malloc((size_t)ns * nn * sizeof *out->logp);
    if (!out->tok || !out->bare || !count || !out->logp) {
        free(count);
        goto oom;
    }
    double total_w = 0;
    for (int i = 0; i < nw; i++) {
        out->tok[i] = c[i].tok;
        out->bare[i] = -1;
        state[c[i].tok] = i;
        total_w += (double)c[i].freq;
    }

    /* Pairs: prev -> next within a run of W units; the first word of a sentence also
     * counts after the start state (which stands for "after the prompt"). */
    int prev = -1;
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        int32_t u = units[i];
        if (u == WORDS_SENTENCE) {
            start = true;
            continue;
        }
        int s = u >= 0 ? state[u] : -1;
        if (s >= 0) {
            if (prev >= 0)
                count[(size_t)prev * nn + s] += 1;
            if (start)
                count[(size_t)nw * nn + s] += 1;
        }
        prev = s;
        start = false;
    }

    for (int r = 0; r < ns; r++) {
        double *row = count + (size_t)r * nn, sum = 0, top = 0;
        for (int k = 0; k < nw; k++)
            sum += row[k];
        for (int k = 0; k < nw; k++) {
            row[k] = (row[k] + UNIGRAM_ALPHA * (double)c[k].freq / total_w) / (sum + UNIGRAM_ALPHA);
            if (row[k] > top)
                top = row[k];
        }
        bool is_end = false;
        for (int e = 0; e < n_end && r < nw; e++)
            is_end |= out->tok[r] == end[e];
        /* end-of-turn: a share of the best word's probability (greedy never picks it);
         * then the row is normalized again */
        double p_eot = is_end ? eot_share * top : 0;
        for (int k = 0; k < nn; k++) {
            double p = k < nw ? row[k] / (1 + p_eot) : p_eot / (1 + p_eot);
            out->logp[(size_t)r * nn + k] = p > 0 ? (float)log(p) : LOGIT_NEVER;
        }
    }
    out->n_words = nw;
    out->eot = eot;
    free(count);
    free(c);
    free(state);
    free(freq);
    return 0;
oom:
    free(c);
    free(state);
    free(freq);
    words_model_free(out);
    return -1;
}

void words_fill_embd(const struct words_model *m, int n_embd, int64_t n_vocab, float amp, float *out)
{
    for (int64_t t = 0; t < n_vocab; t++) {
        out[t * n_embd + m->n_words] += amp; /* the start state, unless t is a word */
        out[t * n_embd + n_embd - 1] += amp; /* the bias dimension */
    }
    for (int i = 0; i < m->n_words; i++) {
        for (int v = 0; v < 2; v++) {
            int64_t t = v ? m->bare[i] : m->tok[i];
            if (t < 0)
                continue;
            out[t * n_embd + m->n_words] -= amp;
            out[t * n_embd + i] += amp;
        }
    }
}

/* One row of output.weight from the column of log-probabilities LP[state] (ns states). */
static void output_row(float *row, const float *lp, int ns, int n_embd, float scale)
{
    double mean = 0;
    for (int s = 0; s < ns; s++)
        mean += lp[s];
    mean /= ns;
    for (int s = 0; s < ns; s++)
        row[s] = (float)(lp[s] - mean) * scale;
    row[n_embd - 1] = (float)mean * scale;
}

void words_fill_output(const struct words_model *m, int n_embd, int64_t n_vocab, float *out)
{
    int ns = m->n_words + 1, nn = m->n_words + 1;
    float scale = 1.0f / sqrtf((float)n_embd / 2); /* 1 / the normed size of each component */
    memset(out, 0, (size_t)n_vocab * n_embd * sizeof *out);
    for (int64_t t = 0; t < n_vocab; t++)
        out[t * n_embd + n_embd - 1] = LOGIT_NEVER * scale;
    float *lp = malloc((size_t)ns * sizeof *lp);
    if (!lp)
        abort(); /* a few KB */
    for (int k = 0; k < nn; k++) {
        bool bare = k < m->n_words && m->bare[k] >= 0;
        for (int s = 0; s < ns; s++)
            lp[s] = m->logp[(size_t)s * nn + k];
        if (bare) /* after the start state the word comes bare, elsewhere with its space */
            lp[m->n_words] = LOGIT_NEVER;
        output_row(out + (k < m->n_words ? m->tok[k] : m->eot) * n_embd, lp, ns, n_embd, scale);
        if (bare) {
            for (int s = 0; s < ns; s++)
                lp[s] = s == m->n_words ? m->logp[(size_t)s * nn + k] : LOGIT_NEVER;
            output_row(out + (int64_t)m->bare[k] * n_embd, lp, ns, n_embd, scale);
        }
    }
    free(lp);
}

/* ---- the corpus ---- */

/* One unit alone: the token, or WORDS_OOV when it is several tokens. */
static int32_t unit_token(const struct llama_vocab *v, const char *text)
{
    llama_token t[4];
    int n = llama_tokenize(v, text, (int32_t)strlen(text), t, 4, false, false);
    return n == 1 ? t[0] : WORDS_OOV;
}

static bool is_word_char(int ch)
{
    return isalnum(ch) || ch == '\'' || ch == '-';
}

/* Appends to *units the units of one sentence (a corpus line). */
static int push_line(const struct llama_vocab *v, const char *line, int32_t **units, size_t *n, size_t *cap)
{
    const char *p = line;
    char word[256];
    bool first = true;
    while (*p) {
        int32_t u;
        if (is_word_char((unsigned char)*p)) {
            const char *s = p;
            bool letters = false;
            while (is_word_char((unsigned char)*p))
                letters |= isalpha((unsigned char)*p++) != 0;
            size_t len = (size_t)(p - s);
            if (len + 2 > sizeof word || !letters) {
                u = WORDS_OOV;
            } else {
                word[0] = ' ';
                memcpy(word + 1, s, len);
                word[len + 1] = '\0';
                u = unit_token(v, word);
            }
        } else if (strchr(".,!?", *p)) {
            word[0] = *p++;
            word[1] = '\0';
            u = unit_token(v, word);
        } else {
            p++;
            continue;
        }
        if (*n + 2 > *cap) {
            size_t nc = *cap ? *cap * 2 : 4096;
            int32_t *q = realloc(*units, nc * sizeof *q);
            if (!q)
                return -1;
            *units = q;
            *cap = nc;
        }
        if (first)
            (*units)[(*n)++] = WORDS_SENTENCE;
        first = false;
        (*units)[(*n)++] = u;
    }
    return 0;
}

/* The token of word I without its leading space, when that is one token and none of the
 * model's own (W, end-of-turn); else -1. */
static int32_t bare_token(const struct llama_vocab *v, const struct words_model *m, int i)
{
    char piece[256];
    int n = llama_token_to_piece(v, m->tok[i], piece, sizeof piece - 1, 0, false);
    if (n < 2 || piece[0] != ' ')
        return -1;
    piece[n] = '\0';
    int32_t t = unit_token(v, piece + 1);
    for (int k = 0; t >= 0 && k < m->n_words; k++)
        if (m->tok[k] == t || m->bare[k] == t)
            t = -1;
    return t == m->eot ? -1 : t;
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

int words_model_from_corpus(const char *corpus, const char *vocab_path, int max_words, struct words_model *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(corpus, "r");
    if (!f) {
        fprintf(stderr, "bellows-mkmodel: cannot read the corpus %s: %s\n", corpus, strerror(errno));
        return -1;
    }
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_log_set(quiet, NULL);
    struct llama_model *model = llama_model_load_from_file(vocab_path, mp);
    if (!model) {
        fprintf(stderr, "bellows-mkmodel: cannot load the vocabulary %s\n", vocab_path);
        fclose(f);
        return -1;
    }
    const struct llama_vocab *v = llama_model_get_vocab(model);
    int32_t *units = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &line_cap, f) > 0)
        if (line[0] != '#')
            rc = push_line(v, line, &units, &n, &cap);
    free(line);
    fclose(f);

    int32_t end[3] = {unit_token(v, "."), unit_token(v, "!"), unit_token(v, "?")};
    llama_token eot = WORDS_OOV;
    if (llama_tokenize(v, "<|im_end|>", 10, &eot, 1, false, true) != 1)
        eot = llama_vocab_eot(v) >= 0 ? llama_vocab_eot(v) : llama_vocab_eos(v);
    if (rc == 0 && eot >= 0)
        rc = words_model_from_units(units, n, max_words, end, 3, eot, EOT_SHARE, out);
    else
        rc = -1;
    for (int i = 0; rc == 0 && i < out->n_words; i++)
        out->bare[i] = bare_token(v, out, i);
    llama_model_free(model);
    free(units);
    if (rc != 0)
        fprintf(stderr, "bellows-mkmodel: no words from the corpus %s\n", corpus);
    return rc;
}
