/* kvtype_bench.c -- what a quantized KV cache costs and saves (issue 15, item 3):
 * the same prompt evaluated with K/V in f16, q8_0 and q4_0 (flash attention on, as Bellows
 * runs quantized types), and for each type
 *   - the bytes one context token takes (llama_state_seq_get_size of the sequence / its
 *     tokens: the cells' K and V as libllama stores them) and so the tokens per GiB;
 *   - how far its logits move from f16's over the last positions of the prompt: the largest
 *     and the mean absolute difference, the mean KL divergence of the softmax from f16's,
 *     and how often the top token is the same.
 * Random prompt tokens (a fixed seed), greedy nothing: it only reads logits. Reported, not
 * a test (bench/README.md).
 *
 *   bellows-kvtype-bench -m MODEL [-p TOKENS] [-k LAST] [-t THREADS] [--json FILE]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

struct kv_run {
    const char *name;
    enum ggml_type type;
    double bytes_per_token;
    float *logits; /* [last][n_vocab] */
};

static bool no_progress(float progress, void *ud)
{
    (void)progress;
    (void)ud;
    return true;
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level >= GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

/* Evaluates toks[0..n) in a fresh context of `type`, keeping the logits of the last `last`
 * positions; false when libllama refuses the context or the batch. */
static bool run_type(struct llama_model *model, const int32_t *toks, int n, int last, int threads, int n_vocab,
                     struct kv_run *r)
{
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n + 64);
    cp.n_batch = (uint32_t)n;
    cp.n_ubatch = 512;
    cp.n_seq_max = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    cp.type_k = cp.type_v = r->type;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx)
        return false;
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = toks[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = i >= n - last;
    }
    b.n_tokens = n;
    bool ok = llama_decode(ctx, b) == 0;
    if (ok) {
        r->logits = malloc((size_t)last * (size_t)n_vocab * sizeof *r->logits);
        for (int k = 0; k < last; k++)
            memcpy(r->logits + (size_t)k * n_vocab, llama_get_logits_ith(ctx, n - last + k),
                   (size_t)n_vocab * sizeof *r->logits);
        r->bytes_per_token = (double)llama_state_seq_get_size(ctx, 0) / n;
    }
    llama_batch_free(b);
    llama_free(ctx);
    return ok;
}

/* log-softmax of x[0..n) into out */
static void log_softmax(const float *x, int n, double *out)
{
    double mx = x[0], sum = 0;
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++)
        sum += exp(x[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++)
        out[i] = x[i] - lse;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *json_path = NULL;
    int n = 512, last = 64, threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") && v) model_path = argv[++i];
        else if (!strcmp(a, "-p") && v) n = atoi(argv[++i]);
        else if (!strcmp(a, "-k") && v) last = atoi(argv[++i]);
        else if (!strcmp(a, "-t") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--json") && v) json_path = argv[++i];
        else {
            fprintf(stderr, "usage: %s -m MODEL [-p TOKENS] [-k LAST] [-t THREADS] [--json FILE]\n", argv[0]);
            return 2;
        }
    }
    if (!model_path || n < 2 || last < 1 || last > n) {
        fprintf(stderr, "%s: -m MODEL is needed; 1 <= LAST <= TOKENS\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.progress_callback = no_progress; /* (its default prints dots) */
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        fprintf(stderr, "%s: cannot load %s\n", argv[0], model_path);
        return 1;
    }
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    int32_t *toks = malloc((size_t)n * sizeof *toks);
    uint32_t seed = 12345;
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        toks[i] = (int32_t)((seed >> 8) % (uint32_t)n_vocab);
    }
    struct kv_run runs[] = {{"f16", GGML_TYPE_F16, 0, NULL}, {"q8_0", GGML_TYPE_Q8_0, 0, NULL},
                            {"q4_0", GGML_TYPE_Q4_0, 0, NULL}};
    const int n_runs = (int)(sizeof runs / sizeof runs[0]);
    for (int t = 0; t < n_runs; t++)
        if (!run_type(model, toks, n, last, threads, n_vocab, &runs[t])) {
            fprintf(stderr, "%s: %s: libllama refused the context or the batch\n", argv[0], runs[t].name);
            return 1;
        }

    double *ref = malloc((size_t)n_vocab * sizeof *ref), *cur = malloc((size_t)n_vocab * sizeof *cur);
    FILE *js = json_path ? fopen(json_path, "w") : NULL;
    if (js)
        fprintf(js, "{\"model\": \"%s\", \"prompt_tokens\": %d, \"compared_positions\": %d, \"types\": [", model_path, n,
                last);
    printf("%-6s %14s %14s %12s %12s %12s %9s\n", "type", "bytes/token", "tokens/GiB", "max |dlogit|",
           "mean |dlogit|", "mean KL", "top-1 eq");
    for (int t = 0; t < n_runs; t++) {
        double max_d = 0, sum_d = 0, kl = 0;
        int same = 0;
        for (int k = 0; k < last; k++) {
            const float *a = runs[0].logits + (size_t)k * n_vocab, *b = runs[t].logits + (size_t)k * n_vocab;
            for (int i = 0; i < n_vocab; i++) {
                double d = fabs((double)a[i] - b[i]);
                max_d = d > max_d ? d : max_d;
                sum_d += d;
            }
            log_softmax(a, n_vocab, ref);
            log_softmax(b, n_vocab, cur);
            double s = 0;
            for (int i = 0; i < n_vocab; i++)
                s += exp(ref[i]) * (ref[i] - cur[i]);
            kl += s;
            same += argmax(a, n_vocab) == argmax(b, n_vocab);
        }
        double mean_d = sum_d / ((double)last * n_vocab), mean_kl = kl / last, agree = 100.0 * same / last;
        double per_gib = 1073741824.0 / runs[t].bytes_per_token;
        printf("%-6s %14.1f %14.0f %12.4f %12.5f %12.2e %8.1f%%\n", runs[t].name, runs[t].bytes_per_token, per_gib,
               max_d, mean_d, mean_kl, agree);
        if (js)
            fprintf(js,
                    "%s{\"type\": \"%s\", \"bytes_per_token\": %.1f, \"tokens_per_gib\": %.0f, \"max_abs_logit_diff\": %.6f, "
                    "\"mean_abs_logit_diff\": %.6f, \"mean_kl\": %.3e, \"top1_agreement_pct\": %.1f}",
                    t ? ", " : "", runs[t].name, runs[t].bytes_per_token, per_gib, max_d, mean_d, mean_kl, agree);
    }
    if (js) {
        fprintf(js, "]}\n");
        fclose(js);
    }
    for (int t = 0; t < n_runs; t++)
        free(runs[t].logits);
    free(ref);
    free(cur);
    free(toks);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
