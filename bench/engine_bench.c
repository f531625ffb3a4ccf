/* engine_bench.c -- `bellows-bench`: the engine's speed and its pool growth, measured
 * through the engine API the runner uses (engine_new / engine_submit / engine_step), with
 * no server or protocol in between. Writes one JSON object to stdout; progress to stderr.
 *
 *   speed   prefill: a raw prompt of exactly P tokens, 1 token generated -> P / prompt_eval_ns
 *           decode:  a 1-token prompt, N + 1 tokens generated (N decode steps after the
 *                    prefill's token) -> N / eval_ns; greedy without penalties (the target's
 *                    figure), and again with Ollama's default sampling (reported)
 *           one warm-up of each, then R repetitions; like llama-bench's pp<P> and tg<N>
 *           (n_batch 2048, n_ubatch 512, flash attention on, F16 K/V, T threads).
 *   growth  a fresh engine (4096-cell pool) prefills a G-token history (A); then a request
 *           that continues it (B: the same tokens + a few more) reserves the model maximum,
 *           which grows the pool to Cmax cells by moving the history's KV state. B is
 *           cancelled after its first token; the pool is shrunk back while idle and the
 *           move is repeated R times. Reports engine_status().last_growth_ns per move
 *           against A's prefill time (what re-evaluating the history would cost).
 *
 * Prompts are built from words that are one token each (checked with the model's
 * tokenizer), so a prompt of P words is exactly P tokens; repetitions start with
 * different words so the prefix cache never serves them. */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "util/log.h"

static const char *const WORDS[] = {
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "at", "from", "this", "that",
    "be", "are", "it", "an", "or", "not", "but", "had", "have", "has", "which", "one", "all", "were", "when",
    "there", "can", "more", "other", "time", "some", "what", "out", "would", "about", "into", "them", "than",
    "first", "been", "new", "only", "also", "after", "used", "two", "over", "many", "then", "these", "may",
    "such", "where", "most", "like", "between", "made", "each", "both", "world", "year", "under", "during",
    "city", "water", "house", "light", "river", "music", "paper", "garden", "window", "table", "story",
    "morning", "market", "letter", "school", "family", "forest", "summer", "winter", "number", "system",
    "people", "country", "small", "large", "long", "great", "little", "old", "right", "high", "different",
    "following", "early", "important", "public", "same", "able", "open", "second", "free", "young", "local",
};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

struct run {
    bool done, failed, got_text;
    struct engine_stats st;
    char err[256];
};

static void on_event(void *ud, const struct engine_event *ev)
{
    struct run *r = ud;
    switch (ev->type) {
    case ENGINE_EV_TEXT:
        r->got_text = true;
        break;
    case ENGINE_EV_DONE:
        r->st = *ev->stats;
        r->done = true;
        break;
    case ENGINE_EV_ERROR:
        snprintf(r->err, sizeof r->err, "%.*s", (int)ev->len, ev->text);
        r->failed = r->done = true;
        break;
    default:
        break;
    }
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bellows-bench: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

/* Words of WORDS that the model's tokenizer turns into one token with a leading space. */
static const char *single[N_WORDS];
static size_t n_single;

static void pick_single_token_words(struct engine *e)
{
    n_single = 0;
    for (size_t i = 0; i < N_WORDS; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, " %s", WORDS[i]);
        int32_t *tok = NULL;
        int n = 0;
        if (engine_tokenize(e, buf, false, &tok, &n) == BW_OK && n == 1)
            single[n_single++] = WORDS[i];
        free(tok);
    }
    if (n_single < 64)
        die("the model's tokenizer has too few one-token words (%s)", "need 64");
}

/* A raw prompt of exactly n tokens (with the model's BOS, if it adds one), starting at a
 * word chosen by `variant`. Caller frees. */
static char *make_prompt(struct engine *e, int n, unsigned variant)
{
    int32_t *tok = NULL;
    int have = 0;
    engine_tokenize(e, "x", true, &tok, &have); /* BOS or not: "x" is one token */
    free(tok);
    int bos = have - 1;
    int words = n - bos;
    if (words < 1)
        words = 1;
    size_t cap = (size_t)words * 16 + 16, len = 0;
    char *s = malloc(cap);
    if (!s)
        die("out of memory%s", "");
    uint64_t x = 0x9E3779B97F4A7C15ull * (variant + 1);
    for (int i = 0; i < words; i++) {
        const char *w;
        if (i == 0) {
            w = single[variant % n_single];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            w = single[x % n_single];
        }
        len += (size_t)snprintf(s + len, cap - len, i == 0 ? "%s" : " %s", w);
    }
    engine_tokenize(e, s, true, &tok, &have);
    free(tok);
    if (have != n)
        fprintf(stderr, "bellows-bench: note: prompt has %d tokens, wanted %d\n", have, n);
    return s;
}

/* Submits one request and runs the engine until it is done. cancel_after_first: cancel
 * once the step that admitted it (and sampled its first token) has run. */
static struct run *g_cur; /* the emit callback's target: one request at a time */

static void emit(void *ud, const struct engine_event *ev)
{
    (void)ud;
    if (g_cur)
        on_event(g_cur, ev);
}

/* Sampling: greedy with no repeat penalty (what the server tests send; llama-bench samples
 * nothing, so this is the least the runner can do per token), or Ollama's defaults
 * (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the last 64 tokens). */
enum sampling_mode { SAMPLE_GREEDY, SAMPLE_DEFAULTS };

static struct run run_one(struct engine *e, uint64_t id, const char *prompt, int num_predict, bool cancel_after_first,
                          enum sampling_mode mode)
{
    struct run r = {0};
    struct engine_request rq = {.req_id = id, .kind = ENGINE_GENERATE, .prompt = prompt, .raw = true,
                                .num_predict = num_predict, .num_keep = -1};
    sampling_params_default(&rq.sampling);
    if (mode == SAMPLE_GREEDY) {
        rq.sampling.temperature = 0;
        rq.sampling.repeat_penalty = 1.0f;
    }
    rq.sampling.seed = 1;
    struct bw_err err = {0};
    g_cur = &r;
    if (engine_submit(e, &rq, &err) != BW_OK)
        die("engine_submit failed: %s", err.msg);
    for (long steps = 0; !r.done && engine_has_work(e); steps++) {
        if (steps > 10000000)
            die("request did not finish%s", "");
        if (engine_step(e) != BW_OK)
            die("engine_step failed%s", "");
        if (cancel_after_first && steps == 0)
            engine_cancel(e, id);
    }
    g_cur = NULL;
    if (r.failed)
        die("request failed: %s", r.err);
    if (!r.done)
        die("request ended without DONE%s", "");
    return r;
}

struct agg {
    double v[64];
    int n;
};

static void agg_add(struct agg *a, double x)
{
    if (a->n < 64)
        a->v[a->n++] = x;
}

static double agg_mean(const struct agg *a)
{
    double s = 0;
    for (int i = 0; i < a->n; i++)
        s += a->v[i];
    return a->n ? s / a->n : 0;
}

static double agg_sd(const struct agg *a)
{
    if (a->n < 2)
        return 0;
    double m = agg_mean(a), s = 0;
    for (int i = 0; i < a->n; i++)
        s += (a->v[i] - m) * (a->v[i] - m);
    return sqrt(s / (a->n - 1));
}

static void agg_json(const char *name, const struct agg *a)
{
    printf("\"%s\": {\"mean\": %.3f, \"sd\": %.3f, \"samples\": [", name, agg_mean(a), agg_sd(a));
    for (int i = 0; i < a->n; i++)
        printf("%s%.3f", i ? ", " : "", a->v[i]);
    printf("]}");
}

static struct engine *open_engine(const char *model, int threads)
{
    struct engine_params p;
    engine_params_default(&p); /* the runner's defaults: 4 sequences, 4096-cell floor, flash attention on */
    p.model_path = model;
    p.n_threads = threads;
    struct engine *e = NULL;
    struct bw_err err = {0};
    if (engine_new(&p, emit, NULL, &e, &err) != BW_OK)
        die("cannot load the model: %s", err.msg);
    return e;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows-bench -m MODEL.gguf [options]\n"
               "Measures the engine (no server): prefill and decode tokens/s, and pool growth.\n\n"
               "  -m PATH            the GGUF model\n"
               "  -t N               threads (default 2)\n"
               "  -p N               prompt tokens for prefill (default 512)\n"
               "  -n N               decode steps (default 64)\n"
               "  -r N               repetitions (default 3, at most 16)\n"
               "  --growth-tokens N  history moved by the growth test (default 3000; 0 skips it)\n"
               "  --no-speed         skip the speed test\n"
               "Writes a JSON object to stdout.\n");
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int threads = 2, P = 512, N = 64, R = 3, G = 3000;
    bool speed = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-speed")) {
            speed = false;
        } else if (v && !strcmp(a, "-m")) {
            model = v, i++;
        } else if (v && !strcmp(a, "-t")) {
            threads = atoi(v), i++;
        } else if (v && !strcmp(a, "-p")) {
            P = atoi(v), i++;
        } else if (v && !strcmp(a, "-n")) {
            N = atoi(v), i++;
        } else if (v && !strcmp(a, "-r")) {
            R = atoi(v), i++;
        } else if (v && !strcmp(a, "--growth-tokens")) {
            G = atoi(v), i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!model || threads < 1 || P < 2 || N < 1 || R < 1 || R > 16 || G < 0) {
        usage(stderr);
        return 2;
    }
    log_set_level(LOG_WARN);
    uint64_t id = 1;
    printf("{\"model\": \"%s\", \"threads\": %d, \"flash_attn\": true, \"n_batch\": 2048, \"n_ubatch\": 512", model,
           threads);

    if (speed) {
        struct engine *e = open_engine(model, threads);
        pick_single_token_words(e);
        struct agg pp = {0}, tg = {0}, tgd = {0};
        int tg_steps = 0;
        for (int rep = -1; rep < R; rep++) { /* rep -1: warm-up */
            char *pr = make_prompt(e, P, (unsigned)(rep + 1)); /* distinct first words: no prefix reuse */
            struct run a = run_one(e, id++, pr, 1, false, SAMPLE_GREEDY);
            free(pr);
            char *one = make_prompt(e, 1, (unsigned)(rep + 1) + 20);
            struct run b = run_one(e, id++, one, N + 1, false, SAMPLE_GREEDY);
            free(one);
            one = make_prompt(e, 1, (unsigned)(rep + 1) + 40);
            struct run c = run_one(e, id++, one, N + 1, false, SAMPLE_DEFAULTS);
            free(one);
            if (a.st.prompt_cache_tokens || b.st.prompt_cache_tokens)
                fprintf(stderr, "bellows-bench: note: the prefix cache served %d/%d tokens\n",
                        a.st.prompt_cache_tokens, b.st.prompt_cache_tokens);
            tg_steps = b.st.eval_count - 1;
            if (tg_steps < N)
                fprintf(stderr, "bellows-bench: note: decode stopped after %d steps (%s)\n", tg_steps,
                        b.st.done_reason);
            if (rep < 0)
                continue;
            int evaluated = a.st.prompt_eval_count - a.st.prompt_cache_tokens;
            agg_add(&pp, evaluated * 1e9 / (double)a.st.prompt_eval_ns);
            agg_add(&tg, tg_steps * 1e9 / (double)b.st.eval_ns);
            agg_add(&tgd, (c.st.eval_count - 1) * 1e9 / (double)c.st.eval_ns);
            fprintf(stderr, "bellows-bench: rep %d: pp%d %.2f tok/s, tg%d %.2f tok/s (greedy), %.2f tok/s (default sampling)\n",
                    rep + 1, evaluated, pp.v[pp.n - 1], tg_steps, tg.v[tg.n - 1], tgd.v[tgd.n - 1]);
        }
        printf(", \"n_prompt\": %d, \"n_gen\": %d, \"reps\": %d, ", P, N, R);
        agg_json("prefill_tps", &pp);
        printf(", ");
        agg_json("decode_tps", &tg);
        printf(", ");
        agg_json("decode_default_sampling_tps", &tgd);
        engine_free(e);
    }

    if (G > 0) {
        struct engine *e = open_engine(model, threads);
        pick_single_token_words(e);
        char *hist = make_prompt(e, G, 7);
        struct run a = run_one(e, id++, hist, 1, false, SAMPLE_GREEDY);
        struct engine_status st0;
        engine_status(e, &st0);
        fprintf(stderr, "bellows-bench: growth: %d-token history prefilled in %.1f ms, pool %d cells\n",
                a.st.prompt_eval_count, a.st.prompt_eval_ns / 1e6, st0.pool_cells);
        struct agg grow = {0}, cont = {0};
        int to_cells = 0, reused = 0, growths = 0;
        size_t cap = strlen(hist) + 64;
        char *more = malloc(cap);
        for (int rep = 0; rep < R; rep++) {
            struct engine_status before, after;
            engine_status(e, &before);
            snprintf(more, cap, "%s %s %s", hist, single[(rep * 3 + 1) % n_single], single[(rep * 5 + 2) % n_single]);
            /* num_predict = Cmax: reserves the model maximum, so the pool must grow to it */
            struct run b = run_one(e, id++, more, before.context_max, true, SAMPLE_GREEDY);
            engine_status(e, &after);
            if (after.pool_growths == before.pool_growths) {
                fprintf(stderr, "bellows-bench: growth: the pool did not grow (%d cells)\n", after.pool_cells);
                break;
            }
            growths++;
            to_cells = after.pool_cells;
            reused = b.st.prompt_cache_tokens;
            agg_add(&grow, after.last_growth_ns / 1e6);
            agg_add(&cont, b.st.prompt_eval_ns / 1e6);
            fprintf(stderr, "bellows-bench: growth %d: %d -> %d cells in %.1f ms, %d tokens reused, %d evaluated\n",
                    rep + 1, before.pool_cells, after.pool_cells, after.last_growth_ns / 1e6, b.st.prompt_cache_tokens,
                    b.st.prompt_eval_count - b.st.prompt_cache_tokens);
            engine_shrink_idle(e); /* back to 4096 for the next repetition */
        }
        printf(", \"growth\": {\"history_tokens\": %d, \"from_cells\": %d, \"to_cells\": %d, \"growths\": %d, "
               "\"reused_tokens\": %d, \"reprefill_ms\": %.3f, ",
               a.st.prompt_eval_count, st0.pool_cells, to_cells, growths, reused, a.st.prompt_eval_ns / 1e6);
        agg_json("growth_ms", &grow);
        printf(", ");
        agg_json("continue_prompt_ms", &cont);
        printf("}");
        free(more);
        free(hist);
        engine_free(e);
    }
    printf("}\n");
    return 0;
}
