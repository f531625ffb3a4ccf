/* turns_bench.c -- `bellows-turns-bench`: a 10-turn chat by token prompts (issue 18), the
 * evaluated tokens and the time to first token of every turn, on any memory kind. Reported,
 * not a test (docs/performance.md, "Prefix reuse by memory kind").
 *
 *   bellows-turns-bench MODEL.gguf [--turns N] [--new N] [--answer N] [--threads N]
 *
 * A chat: a 24-token system prompt, then each turn adds `new` tokens (the user's message)
 * and the model answers `answer` tokens (greedy). Two ways of sending the history back:
 *   exact     the history is the prompt + the answer, token for token (a client that
 *             returns `context`): the next turn shares everything the sequence holds;
 *   dropped   the history leaves out the first half of each answer, as chat templates that
 *             strip reasoning from earlier turns (Qwen3, Qwen3.5, DeepSeek R1) do: the next
 *             turn shares only up to the end of the previous prompt, behind the sequence's
 *             end -- what a recurrent state cannot be trimmed back to.
 * And four engines:
 *   ckpt      the default: checkpoints at turn boundaries, SWA caches of the window only;
 *   no-ckpt   checkpoints off (the engine before issue 18, for recurrent memory);
 *   swa-full  full-size SWA caches, no checkpoints needed for them (SWA models only);
 *   re-read   a fresh engine each turn: the whole history is evaluated (the baseline).
 * Prints one line per turn: prompt tokens, evaluated tokens, TTFT; then the memory. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "util/log.h"

#define MAX_TOK 4096

struct out {
    bool done, failed;
    struct engine_stats st;
    int32_t tok[MAX_TOK];
    int n;
    char err[200];
};

static void on_event(void *ud, const struct engine_event *ev)
{
    struct out *o = ud;
    if (ev->type == ENGINE_EV_DONE) {
        o->st = *ev->stats;
        o->n = ev->n_tokens < MAX_TOK ? ev->n_tokens : MAX_TOK;
        if (ev->tokens)
            memcpy(o->tok, ev->tokens, (size_t)o->n * sizeof *o->tok);
        o->done = true;
    } else if (ev->type == ENGINE_EV_ERROR) {
        snprintf(o->err, sizeof o->err, "%.*s", (int)ev->len, ev->text);
        o->done = o->failed = true;
    }
}

struct cfg {
    const char *model;
    int turns, n_new, n_answer, threads;
};

static struct engine *open_engine(const struct cfg *c, struct out *o, int64_t ckpt, bool swa_full)
{
    struct engine_params p;
    engine_params_default(&p);
    p.model_path = c->model;
    p.n_parallel = 4;
    p.n_threads = c->threads;
    p.ckpt_max_bytes = ckpt;
    p.swa_full = swa_full;
    struct engine *e = NULL;
    struct bw_err err = {0};
    if (engine_new(&p, on_event, o, &e, &err) != BW_OK) {
        fprintf(stderr, "bellows-turns-bench: %s\n", err.msg);
        exit(1);
    }
    return e;
}

static void run_one(struct engine *e, struct out *o, const int32_t *toks, int n, int answer)
{
    struct engine_request r = {0};
    r.req_id = 1;
    r.kind = ENGINE_GENERATE;
    r.prompt = "";
    r.raw = true;
    sampling_params_default(&r.sampling);
    r.sampling.temperature = 0.0f;
    r.sampling.repeat_penalty = 1.0f;
    r.num_predict = answer;
    r.context = toks;
    r.n_context = n;
    r.want_context = true;
    memset(o, 0, sizeof *o);
    struct bw_err err = {0};
    if (engine_submit(e, &r, &err) != BW_OK) {
        fprintf(stderr, "bellows-turns-bench: submit: %s\n", err.msg);
        exit(1);
    }
    for (int s = 0; !o->done && s < 1000000; s++)
        engine_step(e);
    if (o->failed) {
        fprintf(stderr, "bellows-turns-bench: %s\n", o->err);
        exit(1);
    }
}

static uint32_t rng = 12345;
static int32_t rand_tok(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (int32_t)((rng >> 16) % 128u); /* ids every vocabulary has */
}

/* One chat; mode: 0 ckpt, 1 no-ckpt, 2 swa-full, 3 re-read. Prints per turn. */
static void chat(const struct cfg *c, int mode, bool dropped, const char *name)
{
    static int32_t hist[MAX_TOK];
    static struct out o;
    int n = 0;
    rng = 12345;
    for (int i = 0; i < 24; i++)
        hist[n++] = rand_tok();
    struct engine *e = mode == 3 ? NULL : open_engine(c, &o, mode == 1 ? -1 : 0, mode == 2);
    long sum_eval = 0;
    double sum_ttft = 0;
    printf("%-8s %-8s turn:", dropped ? "dropped" : "exact", name);
    for (int t = 0; t < c->turns; t++) {
        for (int i = 0; i < c->n_new; i++)
            hist[n++] = rand_tok();
        if (mode == 3)
            e = open_engine(c, &o, 0, false);
        run_one(e, &o, hist, n, c->n_answer);
        int evaluated = o.st.prompt_eval_count - o.st.prompt_cache_tokens;
        sum_eval += evaluated;
        sum_ttft += o.st.ttft_ns / 1e6;
        printf(" %d/%d %.1fms", evaluated, n, o.st.ttft_ns / 1e6);
        /* the answer: o.tok = prompt + sampled */
        int ans = o.n - n;
        int keep = dropped ? ans / 2 : 0; /* the first half left out of the history */
        memmove(hist + n, o.tok + n + keep, (size_t)(ans - keep) * sizeof *hist);
        n += ans - keep;
        if (mode == 3) {
            engine_free(e);
            e = NULL;
        }
    }
    printf("\n%-8s %-8s total evaluated %ld, TTFT sum %.1f ms", dropped ? "dropped" : "exact", name, sum_eval,
           sum_ttft);
    if (e) {
        struct engine_status st;
        engine_status(e, &st);
        printf(", kind %s, pool %d cells, KV %.2f MiB (SWA %.2f), recurrent %.2f MiB, checkpoints %d (%.2f MiB)",
               st.memory_kind, st.pool_cells, st.kv_bytes / 1048576.0, st.swa_bytes / 1048576.0,
               st.recurrent_bytes / 1048576.0, st.checkpoints, st.checkpoint_bytes / 1048576.0);
        engine_free(e);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    struct cfg c = {.turns = 10, .n_new = 12, .n_answer = 6, .threads = 2};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--turns") && i + 1 < argc)
            c.turns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--new") && i + 1 < argc)
            c.n_new = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--answer") && i + 1 < argc)
            c.n_answer = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            c.threads = atoi(argv[++i]);
        else if (argv[i][0] != '-')
            c.model = argv[i];
    }
    if (!c.model) {
        fprintf(stderr, "usage: bellows-turns-bench MODEL.gguf [--turns N] [--new N] [--answer N] [--threads N]\n");
        return 2;
    }
    log_set_level(LOG_ERROR);
    printf("model %s: %d turns of %d new tokens, %d-token answers (evaluated/prompt TTFT per turn)\n", c.model, c.turns,
           c.n_new, c.n_answer);
    static struct out probe;
    struct engine *e = open_engine(&c, &probe, 0, false);
    struct engine_status st;
    engine_status(e, &st);
    bool swa = !strcmp(st.memory_kind, "swa") || st.swa_bytes_per_cell > 0;
    engine_free(e);
    const char *names[] = {"ckpt", "no-ckpt", "swa-full", "re-read"};
    for (int d = 0; d < 2; d++)
        for (int m = 0; m < 4; m++)
            if (m != 2 || swa)
                chat(&c, m, d == 1, names[m]);
    return 0;
}
