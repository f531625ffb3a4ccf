/* generate.c -- `bellows generate`: one-shot generation from a GGUF file in this process.
 *
 * A developer's tool and the demo of a fresh build: it drives the same engine the runner
 * uses (sizing, elastic pool, samplers, templates), without a server. Text streams to
 * stdout; --verbose prints the request's stats to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "util/log.h"

struct generate_state {
    bool done, failed;
    struct engine_stats stats;
};

static void on_event(void *ud, const struct engine_event *ev)
{
    struct generate_state *g = ud;
    switch (ev->type) {
    case ENGINE_EV_TEXT:
    case ENGINE_EV_RENDERED:
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
        break;
    case ENGINE_EV_DONE:
        g->stats = *ev->stats;
        g->done = true;
        break;
    case ENGINE_EV_ERROR:
        fprintf(stderr, "bellows: %.*s\n", (int)ev->len, ev->text);
        g->failed = g->done = true;
        break;
    case ENGINE_EV_TOOL_CALL: /* generate sends no tools; shown should a call come anyway */
        printf("\n[tool call] %.*s\n", (int)ev->len, ev->text);
        break;
    case ENGINE_EV_EMBEDDING:
    case ENGINE_EV_LOGPROBS: /* never asked for here */
        break;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows generate -m MODEL.gguf [options] PROMPT\n"
               "Generates from a GGUF file in this process (no server).\n\n"
               "  -m, --model PATH      the GGUF file\n"
               "  --raw                 send PROMPT as is (default: as a user message through the chat template)\n"
               "  --system TEXT         a system message\n"
               "  -n, --num-predict N   at most N tokens (default 64; -1: until EOS or the context maximum)\n"
               "  --temperature T       0 = greedy (default 0.8)\n"
               "  --seed N              sampling seed\n"
               "  --stop TEXT           a stop string (repeatable, up to 8)\n"
               "  --render-only         print the rendered prompt instead of generating\n"
               "  --verbose             print stats to stderr\n");
}

static bool parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return s && *s && !*end && !errno;
}

int cli_generate(int argc, char **argv)
{
    struct engine_params ep;
    engine_params_default(&ep);
    ep.n_parallel = 1;
    struct engine_request r = {.req_id = 1, .kind = ENGINE_GENERATE, .num_predict = 64, .num_keep = -1};
    sampling_params_default(&r.sampling);
    const char *stops[8];
    bool verbose = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--raw")) {
            r.raw = true;
        } else if (!strcmp(a, "--verbose")) {
            verbose = true;
        } else if (!strcmp(a, "--render-only")) {
            r.render_only = true;
        } else if (a[0] == '-' && a[1] && !v) {
            fprintf(stderr, "bellows generate: %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            ep.model_path = argv[++i];
        } else if (!strcmp(a, "--system")) {
            r.system = argv[++i];
        } else if (!strcmp(a, "--stop")) {
            if (r.n_stop == 8) {
                fprintf(stderr, "bellows generate: at most 8 --stop strings\n");
                return 2;
            }
            stops[r.n_stop++] = argv[++i];
        } else if (!strcmp(a, "-n") || !strcmp(a, "--num-predict") || !strcmp(a, "--temperature") ||
                   !strcmp(a, "--seed")) {
            if (!parse_num(argv[++i], &x)) {
                fprintf(stderr, "bellows generate: %s wants a number, got '%s'\n", a, argv[i]);
                return 2;
            }
            if (a[1] == 'n' || a[2] == 'n')
                r.num_predict = (int)x;
            else if (a[2] == 't')
                r.sampling.temperature = (float)x;
            else
                r.sampling.seed = (int64_t)x;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bellows generate: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!r.prompt) {
            r.prompt = a;
        } else {
            fprintf(stderr, "bellows generate: one PROMPT only (quote it)\n");
            return 2;
        }
    }
    r.stop = stops;
    if (!ep.model_path || !r.prompt) {
        usage(stderr);
        return 2;
    }

    struct generate_state g = {0};
    struct engine *e;
    struct bw_err err;
    if (engine_new(&ep, on_event, &g, &e, &err) != BW_OK) {
        fprintf(stderr, "bellows generate: %s\n", err.msg);
        return 1;
    }
    if (engine_submit(e, &r, &err) != BW_OK) {
        fprintf(stderr, "bellows generate: %s\n", err.msg);
        engine_free(e);
        return 1;
    }
    while (!g.done && engine_has_work(e))
        if (engine_step(e) != BW_OK)
            break;
    printf("\n");
    if (verbose && !g.failed) {
        const struct engine_stats *s = &g.stats;
        fprintf(stderr,
                "done reason:          %s\n"
                "prompt tokens:        %d (%d evaluated)\n"
                "prompt eval duration: %.1f ms\n"
                "eval count:           %d tokens\n"
                "eval duration:        %.1f ms (%.1f tokens/s)\n"
                "time to first token:  %.1f ms\n"
                "context:              %d reserved / %d model maximum, pool %d cells\n",
                s->done_reason, s->prompt_tokens, s->prompt_eval_count - s->prompt_cache_tokens,
                s->prompt_eval_ns / 1e6, s->eval_count, s->eval_ns / 1e6,
                s->eval_ns ? s->eval_count * 1e9 / s->eval_ns : 0.0, s->ttft_ns / 1e6, s->context_length,
                s->context_max, s->pool_cells);
    }
    engine_free(e);
    return g.failed ? 1 : 0;
}
