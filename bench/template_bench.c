/* template_bench.c -- `bellows-template-bench`: what rendering chats through the model's own
 * Jinja template costs next to tokenizing them, and whether each template keeps the prefix
 * cache across turns (issue 10, "Benchmark"). A benchmark, not a test: it asserts nothing.
 *
 *   bellows-template-bench [--templates DIR] [--vocab GGUF] [--vocab-dir DIR] [--messages N]
 *                          [--turns T] [--min-ms MS] [--only SUBSTR] [--csv FILE] [--json FILE]
 *                          [--dump DIR]
 *
 * For every DIR/<name>.jinja (default: the pinned llama.cpp's models/templates), parsed once:
 *
 *   speed   an N-message chat (default 100: a system message, then user/assistant turns
 *           ending with a user message; without the system message when the template
 *           refuses one) rendered as the runner renders it (chat_template_render with each
 *           message's JSON, add_generation_prompt, the vocabulary's bos/eos texts), and the
 *           same text tokenized as the runner tokenizes it (llama_tokenize, add_special and
 *           parse_special; the timing is the llama_tokenize call). Each is repeated for at
 *           least --min-ms milliseconds (default 200) and 5 times; the median is reported
 *           (clock_gettime(CLOCK_MONOTONIC)). Also: the parse time, and the part of the
 *           render that builds the template's globals from the messages (chat_template_context).
 *   prefix  a chat of T turns (default 10). Turn n renders the history with the generation
 *           prompt (prompt_n); the model's output o_n follows it (cached_n = prompt_n + o_n:
 *           what the engine's KV cache holds after the turn); turn n+1 adds the answer and a
 *           new user message. For n = 1..T-1:
 *             kept       cached_n is a byte prefix of prompt_n+1
 *             byte hit   longest common prefix of cached_n and prompt_n+1 / len(prompt_n+1)
 *             token hit  the same on tokens: prompt_n's tokens then o_n's (tokenized alone,
 *                        as sampled) against prompt_n+1's tokens -- the engine's cache
 *                        compares these
 *             extra      tokens of prompt_n+1 before the new user message's text that the
 *                        cache does not hold: what the template makes the engine re-evaluate
 *                        (a prefix-keeping template: its end-of-turn + user-header tokens)
 *           and, at the first break, where the first differing byte falls: history (before
 *           the end of turn n's user message: the template re-rendered it), tail (in what
 *           prompt_n adds after it: the generation prompt, text after the last message),
 *           output (the history renders the answer differently from o_n).
 *           Three modes:
 *             bare   `think` unset; o_n is the answer's text alone
 *             model  `think` unset; o_n is the answer as the template renders it as the last
 *                    message (add_generation_prompt false) minus prompt_n, up to the answer's
 *                    end: the markers a model of that template writes around its answer (an
 *                    empty think block, gpt-oss's final channel, Solar's <|content|>); the
 *                    bare answer where that rendering does not continue prompt_n
 *             think  (templates with the thinking capability, template/caps.h) `think` true;
 *                    history messages carry their reasoning (thinking + reasoning_content, as
 *                    a client that sends it back) and o_n is reasoning + answer, taken from
 *                    the template the same way when it shows that reasoning, else wrapped in
 *                    the markers of template/reasoning.h (`<think>\nR\n</think>\n\nA`; after a
 *                    generation prompt that opened the block `R\n</think>\n\nA`; gpt-oss's
 *                    analysis channel then its final channel)
 *
 * Messages are deterministic prose (ASCII with a few accented words), the same for every
 * template; strftime_now() sees one fixed time. Vocabularies: --vocab GGUF for every
 * template; otherwise each template gets its family's ggml-vocab-*.gguf from --vocab-dir
 * (default: the pinned llama.cpp's models/) where one ships (Qwen -> qwen2 / qwen35, Llama 3
 * -> llama-bpe, Gemma 4, Phi-3, Command R), qwen2's otherwise (marked * in the report). All
 * are loaded with vocab_only.
 *
 * Output: a markdown report on stdout (tables, a summary by outcome), then the CSV in a
 * ```csv block unless --csv FILE takes it; --json FILE: a summary for bench/report.mjs;
 * --dump DIR: every prompt_n and cached_n as files; progress on stderr. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <llama.h>

#include "template/caps.h"
#include "template/chat_template.h"
#include "template/reasoning.h"

#ifndef BELLOWS_LLAMA_MODELS
#define BELLOWS_LLAMA_MODELS "build/_deps/llama.cpp/models"
#endif

/* ---- small helpers ------------------------------------------------------------------------ */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "template-bench: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "template-bench: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static size_t common_prefix(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

static size_t common_prefix_tok(const llama_token *a, int na, const llama_token *b, int nb)
{
    int i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return (size_t)i;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct sbuf b = {0};
    char buf[65536];
    for (size_t got; (got = fread(buf, 1, sizeof buf, f)) > 0;)
        sb_add(&b, buf, got);
    fclose(f);
    if (!b.p)
        sb_add(&b, "", 0);
    return b.p;
}

/* A few bytes of text, printable inside a markdown code span in a table cell: newlines as
 * \n, tabs as \t, `|` escaped, backticks as '; cut on UTF-8 character boundaries. */
static void snippet(struct sbuf *out, const char *s, size_t len, size_t from, size_t max)
{
    while (from > 0 && from < len && ((unsigned char)s[from] & 0xC0) == 0x80)
        from--;
    size_t to = from + max < len ? from + max : len;
    while (to < len && to > from && ((unsigned char)s[to] & 0xC0) == 0x80)
        to--;
    for (size_t i = from; i < to; i++) {
        char c = s[i];
        if (c == '\n')
            sb_puts(out, "\\n");
        else if (c == '\t')
            sb_puts(out, "\\t");
        else if (c == '\r')
            sb_puts(out, "\\r");
        else if (c == '|')
            sb_puts(out, "\\|");
        else if (c == '`')
            sb_puts(out, "'");
        else if ((unsigned char)c < 0x20)
            sb_puts(out, "?");
        else
            sb_add(out, &c, 1);
    }
    if (to < len)
        sb_puts(out, "…");
}

/* ---- the chat's text ------------------------------------------------------------------------ */

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
    "function", "value", "memory", "request", "answer", "question", "reason", "example", "because", "however",
    "café", "naïve", "déjà", "42", "2024", "3.14", "x", "y", "(see", "below)", "e.g.", "i.e.", "\"quoted\"",
};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Deterministic prose of min..max words: sentences, and paragraphs when asked. */
static char *make_text(uint64_t seed, int min_words, int max_words, bool paragraphs)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 4; i++)
        rng_next(&s);
    int n = min_words + (int)(rng_next(&s) % (uint64_t)(max_words - min_words + 1));
    struct sbuf b = {0};
    bool start = true;
    int in_sentence = 0, sentence_len = 6 + (int)(rng_next(&s) % 12);
    for (int i = 0; i < n; i++) {
        const char *w = WORDS[rng_next(&s) % N_WORDS];
        if (!start)
            sb_puts(&b, " ");
        if (start) {
            char first = w[0] >= 'a' && w[0] <= 'z' ? (char)(w[0] - 32) : w[0];
            sb_add(&b, &first, 1);
            sb_puts(&b, w + 1);
        } else {
            sb_puts(&b, w);
        }
        start = false;
        if (++in_sentence >= sentence_len || i == n - 1) {
            uint64_t r = rng_next(&s) % 10;
            sb_puts(&b, r == 0 ? "?" : r == 1 ? "!" : ".");
            in_sentence = 0;
            sentence_len = 6 + (int)(rng_next(&s) % 12);
            start = true;
            if (i < n - 1 && paragraphs && rng_next(&s) % 4 == 0) {
                sb_puts(&b, "\n\n");
                if (rng_next(&s) % 3 == 0)
                    sb_puts(&b, "- ");
            } else if (i < n - 1) {
                sb_puts(&b, " ");
            }
        }
    }
    return b.p ? b.p : xstrdup("");
}

static const char SYSTEM_TEXT[] =
    "You are a helpful assistant. Answer clearly and briefly, and say so when you do not know.";

/* conversation message k (0-based): user at even k, assistant at odd k */
static char *conv_content(int k)
{
    return k % 2 == 0 ? make_text((uint64_t)k + 1, 25, 60, false) : make_text((uint64_t)k + 1, 50, 140, true);
}

static char *conv_reasoning(int k) { return make_text((uint64_t)k + 100001, 40, 80, false); }

struct msg {
    const char *role;
    char *content;
    char *json;
};

static void msg_set(struct msg *m, const char *role, char *content, const char *reasoning)
{
    m->role = role;
    m->content = content;
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(role));
    json_object_set_new(o, "content", json_string(content));
    if (reasoning) { /* chat_message_normalize sets both from either */
        json_object_set_new(o, "thinking", json_string(reasoning));
        json_object_set_new(o, "reasoning_content", json_string(reasoning));
    }
    m->json = json_dumps(o, JSON_COMPACT);
    json_decref(o);
}

static void msg_free(struct msg *m)
{
    free(m->content);
    free(m->json);
}

static void to_policy(const struct msg *m, size_t n, struct policy_msg *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (struct policy_msg){.role = m[i].role, .content = m[i].content, .json = m[i].json};
}

/* ---- vocabularies -------------------------------------------------------------------------- */

struct vocab {
    char *path, *name;
    struct llama_model *model;
    const struct llama_vocab *v;
    const char *bos_text, *eos_text;
    llama_token bos;
};

#define MAX_VOCABS 16
static struct vocab g_vocabs[MAX_VOCABS];
static int g_n_vocabs;

static void quiet_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level;
    (void)text;
    (void)ud;
}

static struct vocab *vocab_get(const char *path)
{
    for (int i = 0; i < g_n_vocabs; i++)
        if (!strcmp(g_vocabs[i].path, path))
            return g_vocabs[i].model ? &g_vocabs[i] : NULL;
    if (g_n_vocabs == MAX_VOCABS)
        return NULL;
    struct vocab *v = &g_vocabs[g_n_vocabs++];
    v->path = xstrdup(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strncmp(base, "ggml-vocab-", 11))
        base += 11;
    v->name = xstrdup(base);
    char *dot = strstr(v->name, ".gguf");
    if (dot)
        *dot = '\0';
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    v->model = llama_model_load_from_file(path, mp);
    if (!v->model) {
        fprintf(stderr, "template-bench: cannot load the vocabulary %s\n", path);
        return NULL;
    }
    v->v = llama_model_get_vocab(v->model);
    llama_token bos = llama_vocab_bos(v->v), eos = llama_vocab_eos(v->v);
    v->bos = bos;
    v->bos_text = bos != LLAMA_TOKEN_NULL ? llama_vocab_get_text(v->v, bos) : "";
    v->eos_text = eos != LLAMA_TOKEN_NULL ? llama_vocab_get_text(v->v, eos) : "";
    return v;
}

/* The vocabulary of a template's family where the pinned llama.cpp ships it (first match of
 * a case-insensitive substring of the file name). */
static const char *const VOCAB_FOR[][2] = {
    {"qwen3.5", "qwen35"},          {"r1-distill-llama", "llama-bpe"}, {"qwen", "qwen2"},
    {"mimo-vl", "qwen2"},           {"llama-3", "llama-bpe"},          {"hermes-2-pro-llama-3", "llama-bpe"},
    {"hermes-3-llama-3", "llama-bpe"}, {"firefunction", "llama-bpe"},  {"functionary", "llama-bpe"},
    {"gemma-4", "gemma-4"},         {"phi-3", "phi-3"},                {"command-r", "command-r"},
};

static const char *vocab_name_for(const char *tmpl_name, bool *own)
{
    *own = true;
    for (size_t i = 0; i < sizeof VOCAB_FOR / sizeof VOCAB_FOR[0]; i++)
        if (strcasestr(tmpl_name, VOCAB_FOR[i][0]))
            return VOCAB_FOR[i][1];
    *own = false;
    return "qwen2";
}

/* As the engine's tokenize_rendered(): add_special + parse_special, one BOS at most. */
static int tokenize(const struct vocab *v, const char *text, size_t len, bool add_special, llama_token **out)
{
    int cap = (int)len + 8;
    llama_token *t = xmalloc((size_t)cap * sizeof *t);
    int n = llama_tokenize(v->v, text, (int32_t)len, t, cap, add_special, true);
    if (n < 0) {
        cap = -n;
        t = realloc(t, (size_t)cap * sizeof *t);
        n = llama_tokenize(v->v, text, (int32_t)len, t, cap, add_special, true);
    }
    if (n < 0) {
        free(t);
        return -1;
    }
    if (add_special && n >= 2 && v->bos != LLAMA_TOKEN_NULL && t[0] == v->bos && t[1] == v->bos) {
        memmove(t, t + 1, (size_t)(n - 1) * sizeof *t);
        n--;
    }
    *out = t;
    return n;
}

/* ---- rendering ----------------------------------------------------------------------------- */

static int64_t g_now;

struct tmpl {
    char name[256];
    char *text;
    struct chat_template *t;
    unsigned caps;
    struct vocab *vocab;
    bool own_vocab; /* the family's own vocabulary (or --vocab), not the qwen2 fallback */
    double parse_us;
    char err[300];
};

static int render(const struct tmpl *t, const struct msg *m, size_t n, bool agp, const char *think, char **out,
                  size_t *len, struct bw_err *err)
{
    struct policy_msg *pm = xmalloc(n * sizeof *pm);
    to_policy(m, n, pm);
    struct chat_render_in in = {.msgs = pm, .n_msgs = n, .think = think, .add_generation_prompt = agp,
                                .bos_token = t->vocab->bos_text, .eos_token = t->vocab->eos_text,
                                .now_unix = g_now};
    int rc = chat_template_render(t->t, &in, out, len, err);
    free(pm);
    return rc;
}

/* ---- speed ----------------------------------------------------------------------------------- */

struct speed {
    bool ok, system;
    int n_msgs, n_tokens;
    size_t bytes;
    double render_us, context_us, tokenize_us;
    int render_reps, tokenize_reps;
};

static double g_min_ms = 200;

/* Repeats fn until both min_ms and 5 repetitions are reached; the median, in µs. */
#define MAX_SAMPLES 20000
static double *g_samples;

static void build_chat(struct msg *m, int n_total, bool system, int *n_out)
{
    int k = 0, n_conv = system ? n_total - 1 : n_total;
    if (n_conv % 2 == 0)
        n_conv--; /* end with a user message */
    if (n_conv < 1)
        n_conv = 1;
    if (system)
        msg_set(&m[k++], "system", xstrdup(SYSTEM_TEXT), NULL);
    for (int i = 0; i < n_conv; i++)
        msg_set(&m[k++], i % 2 ? "assistant" : "user", conv_content(i), NULL);
    *n_out = k;
}

static void measure_speed(struct tmpl *t, int n_messages, struct speed *sp)
{
    memset(sp, 0, sizeof *sp);
    struct msg *m = xmalloc((size_t)(n_messages + 2) * sizeof *m);
    char *text = NULL;
    size_t len = 0;
    struct bw_err err = {0};
    int n = 0;
    for (int sys = 1; sys >= 0; sys--) {
        build_chat(m, n_messages, sys, &n);
        int rc = render(t, m, (size_t)n, true, NULL, &text, &len, &err);
        if (rc == BW_OK) {
            sp->system = sys;
            break;
        }
        for (int i = 0; i < n; i++)
            msg_free(&m[i]);
        n = 0;
        if (!sys)
            snprintf(t->err, sizeof t->err, "%s", err.msg);
    }
    if (!n) {
        free(m);
        return;
    }
    sp->n_msgs = n;
    sp->bytes = len;
    llama_token *toks;
    sp->n_tokens = tokenize(t->vocab, text, len, true, &toks);
    if (sp->n_tokens >= 0)
        free(toks);

    /* As the runner renders: each message's JSON parsed once per request (the chat cut
     * renders many subsets of the same messages), then the template run. */
    struct policy_msg *cm = xmalloc((size_t)n * sizeof *cm);
    json_t **parsed = xmalloc((size_t)n * sizeof *parsed);
    to_policy(m, (size_t)n, cm);
    for (int i = 0; i < n; i++) {
        parsed[i] = cm[i].json ? json_loads(cm[i].json, 0, NULL) : NULL;
        if (parsed[i]) {
            json_object_set_new(parsed[i], "role", json_string(cm[i].role));
            json_object_set_new(parsed[i], "content", json_string(cm[i].content ? cm[i].content : ""));
        }
    }
    struct chat_render_in cin = {.msgs = cm, .n_msgs = (size_t)n, .parsed = parsed, .add_generation_prompt = true,
                                 .bos_token = t->vocab->bos_text, .eos_token = t->vocab->eos_text, .now_unix = g_now};
    int reps = 0;
    double t0 = now_us();
    while (reps < MAX_SAMPLES && (reps < 5 || now_us() - t0 < g_min_ms * 1000)) {
        char *o;
        size_t ol;
        double a = now_us();
        if (chat_template_render(t->t, &cin, &o, &ol, &err) == BW_OK)
            free(o);
        g_samples[reps++] = now_us() - a;
    }
    sp->render_us = median(g_samples, reps);
    sp->render_reps = reps;
    for (int i = 0; i < n; i++)
        json_decref(parsed[i]);
    free(parsed);
    free(cm);

    /* of which: the template's globals built from the messages' JSON (chat_template_context) */
    struct policy_msg *pm = xmalloc((size_t)n * sizeof *pm);
    to_policy(m, (size_t)n, pm);
    struct chat_render_in in = {.msgs = pm, .n_msgs = (size_t)n, .add_generation_prompt = true,
                                .bos_token = t->vocab->bos_text, .eos_token = t->vocab->eos_text, .now_unix = g_now};
    int creps = 0;
    t0 = now_us();
    while (creps < MAX_SAMPLES && (creps < 5 || now_us() - t0 < g_min_ms * 250)) {
        double a = now_us();
        json_t *ctx = chat_template_context(&in, &err);
        json_decref(ctx);
        g_samples[creps++] = now_us() - a;
    }
    sp->context_us = median(g_samples, creps);
    free(pm);

    int cap = (int)len + 8;
    llama_token *buf = xmalloc((size_t)cap * sizeof *buf);
    reps = 0;
    t0 = now_us();
    while (reps < MAX_SAMPLES && (reps < 5 || now_us() - t0 < g_min_ms * 1000)) {
        double a = now_us();
        llama_tokenize(t->vocab->v, text, (int32_t)len, buf, cap, true, true);
        g_samples[reps++] = now_us() - a;
    }
    sp->tokenize_us = median(g_samples, reps);
    sp->tokenize_reps = reps;
    free(buf);
    free(text);
    for (int i = 0; i < n; i++)
        msg_free(&m[i]);
    free(m);
    sp->ok = true;
}

/* ---- prefix stability --------------------------------------------------------------------- */

enum mode { M_BARE, M_MODEL, M_THINK, N_MODES };
static const char *const MODE[] = {"bare", "model", "think"};

enum where { W_NONE = 0, W_HISTORY, W_TAIL, W_OUTPUT };
static const char *const WHERE[] = {"", "history", "tail", "output"};

struct prefix {
    bool ran, ok;
    int comparisons, kept, tok_kept;
    double byte_hit, tok_hit, ideal;  /* means over the comparisons, 0..1 */
    double extra_bytes, extra_tokens; /* means: re-evaluated before the new user message */
    int out_template;                 /* outputs taken from the template's own rendering */
    int break_turn;                   /* the first turn n+1 whose prompt breaks cached_n; 0: none */
    enum where where;
    char *snip_cached, *snip_next;
    char err[300];
};

static const char *g_dump; /* --dump DIR */

/* The model's output for one turn (see the header). */
static char *make_output(const struct tmpl *t, struct msg *hist, size_t n, const char *prompt, size_t plen,
                         const char *answer, const char *reasoning, enum mode mode, bool *from_template)
{
    *from_template = false;
    if (mode == M_BARE)
        return xstrdup(answer);
    char *out = NULL;
    struct msg *m = xmalloc((n + 1) * sizeof *m);
    memcpy(m, hist, n * sizeof *m);
    struct msg last;
    msg_set(&last, "assistant", xstrdup(answer), reasoning);
    m[n] = last;
    char *full = NULL;
    size_t flen = 0;
    struct bw_err err;
    if (render(t, m, n + 1, false, mode == M_THINK ? "true" : NULL, &full, &flen, &err) == BW_OK && flen >= plen &&
        !memcmp(full, prompt, plen)) {
        const char *end = NULL;
        for (const char *p = full + plen; (p = strstr(p, answer)); p++)
            end = p + strlen(answer);
        const char *r = reasoning ? strstr(full + plen, reasoning) : NULL;
        if (end && (!reasoning || (r && r < end))) {
            struct sbuf b = {0};
            sb_add(&b, full + plen, (size_t)(end - (full + plen)));
            out = b.p ? b.p : xstrdup("");
            *from_template = true;
        }
    }
    free(full);
    msg_free(&last);
    free(m);
    if (out)
        return out;
    struct reasoning_cfg cfg = {0};
    if (mode == M_THINK)
        reasoning_detect(t->text, prompt, "true", &cfg);
    struct sbuf b = {0};
    if (cfg.format == REASONING_HARMONY) {
        sb_puts(&b, "<|channel|>analysis<|message|>");
        sb_puts(&b, reasoning);
        sb_puts(&b, "<|end|><|start|>assistant<|channel|>final<|message|>");
        sb_puts(&b, answer);
    } else if (cfg.format == REASONING_TAGS) {
        if (!cfg.starts_inside) {
            sb_puts(&b, cfg.open);
            sb_puts(&b, "\n");
        }
        sb_puts(&b, reasoning);
        sb_puts(&b, "\n");
        sb_puts(&b, cfg.close);
        sb_puts(&b, "\n\n");
        sb_puts(&b, answer);
    } else {
        sb_puts(&b, answer);
    }
    return b.p;
}

static void dump(const struct tmpl *t, const char *mode, int turn, const char *what, const char *text, size_t len)
{
    if (!g_dump)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.%d.%s.txt", g_dump, t->name, mode, turn, what);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

/* The end of the last occurrence of needle in s[0..len), or 0. */
static size_t last_end(const char *s, size_t len, const char *needle)
{
    size_t nl = strlen(needle), at = 0;
    for (const char *q = s; nl && (q = memmem(q, len - (size_t)(q - s), needle, nl)); q++)
        at = (size_t)(q - s) + nl;
    return at;
}

static void measure_prefix(const struct tmpl *t, bool system, int turns, enum mode mode, struct prefix *pr)
{
    memset(pr, 0, sizeof *pr);
    pr->ran = true;
    bool think = mode == M_THINK;
    const char *tk = think ? "true" : NULL;
    struct msg *m = xmalloc((size_t)(2 * turns + 2) * sizeof *m);
    size_t n = 0;
    if (system)
        msg_set(&m[n++], "system", xstrdup(SYSTEM_TEXT), NULL);
    msg_set(&m[n++], "user", conv_content(0), NULL);
    char *cached = NULL;
    size_t clen = 0, tail_start = 0, plen_prev = 0;
    llama_token *ctok = NULL;
    int nctok = 0;
    struct bw_err err;
    for (int turn = 1; turn <= turns; turn++) {
        char *prompt;
        size_t plen;
        if (render(t, m, n, true, tk, &prompt, &plen, &err) != BW_OK) {
            snprintf(pr->err, sizeof pr->err, "turn %d: %s", turn, err.msg);
            break;
        }
        dump(t, MODE[mode], turn, "prompt", prompt, plen);
        llama_token *ptok;
        int nptok = tokenize(t->vocab, prompt, plen, true, &ptok);
        if (turn > 1 && nptok > 0) {
            size_t common = common_prefix(cached, clen, prompt, plen);
            size_t tcommon = common_prefix_tok(ctok, nctok, ptok, nptok);
            bool kept = common == clen, tkept = (int)tcommon == nctok;
            /* what precedes the new user message: the most any cache can reuse */
            size_t hist = last_end(prompt, plen, m[n - 1].content);
            hist = hist ? hist - strlen(m[n - 1].content) : plen;
            llama_token *htok;
            int nhtok = tokenize(t->vocab, prompt, hist, true, &htok);
            if (nhtok >= 0)
                free(htok);
            pr->comparisons++;
            pr->kept += kept;
            pr->tok_kept += tkept;
            pr->byte_hit += (double)common / (double)plen;
            pr->tok_hit += (double)tcommon / (double)nptok;
            pr->ideal += (double)hist / (double)plen;
            pr->extra_bytes += hist > common ? (double)(hist - common) : 0;
            pr->extra_tokens += nhtok > (int)tcommon ? (double)(nhtok - (int)tcommon) : 0;
            if (!kept && !pr->break_turn) {
                pr->break_turn = turn;
                pr->where = common < tail_start ? W_HISTORY : common < plen_prev ? W_TAIL : W_OUTPUT;
                size_t from = common > 24 ? common - 24 : 0;
                struct sbuf a = {0}, b = {0};
                snippet(&a, cached, clen, from, 24 + 40);
                snippet(&b, prompt, plen, from, 24 + 40);
                pr->snip_cached = a.p ? a.p : xstrdup("");
                pr->snip_next = b.p ? b.p : xstrdup("");
            }
        }
        if (turn == turns) {
            free(prompt);
            free(ptok);
            pr->ok = pr->comparisons > 0;
            break;
        }
        /* where the tail of turn n's prompt starts: after the last user message's text, or
         * (a template that rewrites it) where the prompt parts from the same history
         * rendered without the generation prompt */
        tail_start = last_end(prompt, plen, m[n - 1].content);
        if (!tail_start) {
            char *nogp;
            size_t nlen;
            tail_start = plen;
            if (render(t, m, n, false, tk, &nogp, &nlen, &err) == BW_OK) {
                tail_start = common_prefix(nogp, nlen, prompt, plen);
                free(nogp);
            }
        }
        plen_prev = plen;
        int k = turn * 2 - 1; /* the answer's conversation index */
        char *answer = conv_content(k), *reasoning = think ? conv_reasoning(k) : NULL;
        bool from_tmpl;
        char *out = make_output(t, m, n, prompt, plen, answer, reasoning, mode, &from_tmpl);
        pr->out_template += from_tmpl;
        free(cached);
        struct sbuf c = {0};
        sb_add(&c, prompt, plen);
        sb_puts(&c, out);
        cached = c.p;
        clen = c.n;
        dump(t, MODE[mode], turn, "cached", cached, clen);
        llama_token *otok = NULL;
        int notok = tokenize(t->vocab, out, strlen(out), false, &otok);
        free(ctok);
        ctok = xmalloc((size_t)(nptok + (notok > 0 ? notok : 0) + 1) * sizeof *ctok);
        memcpy(ctok, ptok, (size_t)nptok * sizeof *ctok);
        if (notok > 0)
            memcpy(ctok + nptok, otok, (size_t)notok * sizeof *ctok);
        nctok = nptok + (notok > 0 ? notok : 0);
        free(otok);
        free(out);
        free(prompt);
        free(ptok);
        msg_set(&m[n++], "assistant", answer, reasoning);
        free(reasoning);
        msg_set(&m[n++], "user", conv_content(k + 1), NULL);
    }
    if (pr->comparisons) {
        pr->byte_hit /= pr->comparisons;
        pr->tok_hit /= pr->comparisons;
        pr->ideal /= pr->comparisons;
        pr->extra_bytes /= pr->comparisons;
        pr->extra_tokens /= pr->comparisons;
    }
    free(cached);
    free(ctok);
    for (size_t i = 0; i < n; i++)
        msg_free(&m[i]);
    free(m);
}

/* ---- the report -------------------------------------------------------------------------- */

struct row {
    struct tmpl t;
    struct speed sp;
    struct prefix pf[N_MODES];
};

static bool thinks(const struct row *r) { return (r->t.caps & TEMPLATE_CAP_THINKING) != 0; }
static bool all_kept(const struct prefix *p) { return p->ok && p->kept == p->comparisons; }

static const char *row_error(const struct row *r)
{
    if (r->t.err[0])
        return r->t.err;
    for (int k = 0; k < N_MODES; k++)
        if (r->pf[k].err[0])
            return r->pf[k].err;
    return "";
}

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(FILE *f, struct row *rows, int n)
{
    fprintf(f, "template,vocab,own_vocab,thinking,system,messages,prompt_bytes,prompt_tokens,parse_us,render_us,"
               "context_us,tokenize_us,render_reps,tokenize_reps");
    for (int k = 0; k < N_MODES; k++) {
        const char *p = MODE[k];
        fprintf(f, ",%s_turns,%s_kept,%s_token_kept,%s_byte_hit,%s_token_hit,%s_ideal_byte_hit,%s_extra_bytes,"
                   "%s_extra_tokens,%s_output_from_template,%s_break_turn,%s_break_where,%s_cached,%s_next",
                p, p, p, p, p, p, p, p, p, p, p, p, p);
    }
    fprintf(f, ",error\n");
    for (int i = 0; i < n; i++) {
        struct row *r = &rows[i];
        csv_str(f, r->t.name);
        fprintf(f, ",%s,%d,%d,%d,%d,%zu,%d,%.1f,%.2f,%.2f,%.2f,%d,%d", r->t.vocab ? r->t.vocab->name : "",
                r->t.own_vocab, thinks(r), r->sp.system, r->sp.n_msgs, r->sp.bytes, r->sp.n_tokens, r->t.parse_us,
                r->sp.render_us, r->sp.context_us, r->sp.tokenize_us, r->sp.render_reps, r->sp.tokenize_reps);
        for (int k = 0; k < N_MODES; k++) {
            struct prefix *p = &r->pf[k];
            if (!p->ok) {
                fprintf(f, ",,,,,,,,,,,,,");
                continue;
            }
            fprintf(f, ",%d,%d,%d,%.4f,%.4f,%.4f,%.1f,%.1f,%d,%d,%s,", p->comparisons, p->kept, p->tok_kept,
                    p->byte_hit, p->tok_hit, p->ideal, p->extra_bytes, p->extra_tokens, p->out_template,
                    p->break_turn, WHERE[p->where]);
            csv_str(f, p->snip_cached);
            fputc(',', f);
            csv_str(f, p->snip_next);
        }
        fputc(',', f);
        csv_str(f, row_error(r));
        fputc('\n', f);
    }
}

static void prefix_cell(struct sbuf *o, const struct prefix *p)
{
    char cell[256];
    if (!p->ran) {
        sb_puts(o, " – |");
        return;
    }
    if (!p->ok) {
        sb_puts(o, " error |");
        return;
    }
    bool all = all_kept(p);
    snprintf(cell, sizeof cell, " %s%d/%d%s · %.1f / %.1f · %.0f |", all ? "**" : "", p->kept, p->comparisons,
             all ? "**" : "", 100 * p->byte_hit, 100 * p->tok_hit, p->extra_tokens);
    sb_puts(o, cell);
}

static void break_note(struct sbuf *o, const struct prefix *p, const char *mode)
{
    char cell[128];
    snprintf(cell, sizeof cell, "%s%s, turn %d: `", o->n && o->p[o->n - 1] != ' ' ? "; " : "", mode, p->break_turn);
    sb_puts(o, cell);
    sb_puts(o, p->snip_cached);
    sb_puts(o, "` → `");
    sb_puts(o, p->snip_next);
    sb_puts(o, "` (");
    sb_puts(o, WHERE[p->where]);
    sb_puts(o, ")");
}

/* The outcome classes of the summary. */
enum { C_KEEP, C_THINK_OUTPUT, C_OUTPUT, C_HISTORY, C_ERROR, N_CLASSES };
static const char *const CLASS[] = {
    "keep the prefix every turn, with thinking too where the template thinks",
    "keep it without thinking; with thinking they lose the previous turn's output (the template drops old reasoning)",
    "lose the previous turn's output every turn, even without thinking (the history renders the last answer "
    "differently from what the generation prompt led to)",
    "lose more than the previous output (the template re-renders text before the last user message)",
    "do not render",
};

static int classify(const struct row *r)
{
    const struct prefix *m = &r->pf[M_MODEL], *t = &r->pf[M_THINK];
    if (!r->sp.ok || !m->ok)
        return C_ERROR;
    if (m->where == W_HISTORY || (t->ok && t->where == W_HISTORY))
        return C_HISTORY;
    if (m->break_turn)
        return C_OUTPUT;
    if (t->ok && t->break_turn)
        return C_THINK_OUTPUT;
    return C_KEEP;
}

static void report(struct sbuf *o, struct row *rows, int n_rows, const char *tdir, const char *vocab_path,
                   int n_messages, int turns)
{
    char line[4096];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(line, sizeof line,
             "## Chat templates: rendering cost and the prefix cache across turns\n\n"
             "%d templates from `%s`; %ld CPU core%s online (rendering and tokenizing are single-threaded).\n"
             "Vocabularies (vocab_only): %s. Each figure is the median of at least %.0f ms of repetitions.\n\n",
             n_rows, tdir, ncpu, ncpu == 1 ? "" : "s",
             vocab_path ? "one for all (--vocab)"
                        : "the template family's own where the pinned llama.cpp ships it, qwen2's otherwise (*)",
             g_min_ms);
    sb_puts(o, line);

    /* speed */
    snprintf(line, sizeof line,
             "### Render + tokenize of a %d-message chat\n\n"
             "A system message (unless the template refuses one), then user/assistant turns ending with a user\n"
             "message, with the generation prompt: `chat_template_render` as the runner calls it (the context\n"
             "built from each message's JSON), then `llama_tokenize` of the same text as the runner tokenizes it.\n\n"
             "*context*: the part of *render* that builds the template's globals from the messages' JSON\n"
             "(`chat_template_context`); the rest is the Jinja renderer.\n\n"
             "| template | vocab | msgs | bytes | tokens | parse µs | render µs | of which context µs | tokenize µs | render / tokenize |\n"
             "|---|---|---|---|---|---|---|---|---|---|\n",
             n_messages);
    sb_puts(o, line);
    double *rs = xmalloc((size_t)n_rows * sizeof *rs), *ts = xmalloc((size_t)n_rows * sizeof *ts),
           *ratios = xmalloc((size_t)n_rows * sizeof *ratios);
    int n_ok = 0;
    double max_render = 0, max_ratio = 0;
    const char *max_render_name = "", *max_ratio_name = "";
    for (int i = 0; i < n_rows; i++) {
        struct row *r = &rows[i];
        const char *vn = r->t.vocab ? r->t.vocab->name : "", *star = r->t.own_vocab ? "" : "*";
        if (!r->sp.ok) {
            snprintf(line, sizeof line, "| %s | %s%s | – | – | – | – | error: %s | | | |\n", r->t.name, vn, star,
                     row_error(r));
            sb_puts(o, line);
            continue;
        }
        double ratio = r->sp.render_us / r->sp.tokenize_us;
        snprintf(line, sizeof line, "| %s | %s%s | %d%s | %zu | %d | %.0f | %.0f | %.0f | %.0f | %.1f%% |\n", r->t.name,
                 vn, star, r->sp.n_msgs, r->sp.system ? "" : " (no system)", r->sp.bytes, r->sp.n_tokens,
                 r->t.parse_us, r->sp.render_us, r->sp.context_us, r->sp.tokenize_us, 100 * ratio);
        sb_puts(o, line);
        rs[n_ok] = r->sp.render_us;
        ts[n_ok] = r->sp.tokenize_us;
        ratios[n_ok++] = ratio;
        if (r->sp.render_us > max_render) {
            max_render = r->sp.render_us;
            max_render_name = r->t.name;
        }
        if (ratio > max_ratio) {
            max_ratio = ratio;
            max_ratio_name = r->t.name;
        }
    }
    if (n_ok) {
        snprintf(line, sizeof line,
                 "\nOver the %d templates that render: median render **%.0f µs**, median tokenize **%.0f µs**, "
                 "median render / tokenize **%.1f%%**; slowest render %.0f µs (%s); highest share %.1f%% (%s).\n\n",
                 n_ok, median(rs, n_ok), median(ts, n_ok), 100 * median(ratios, n_ok), max_render, max_render_name,
                 100 * max_ratio, max_ratio_name);
        sb_puts(o, line);
    }
    free(rs);
    free(ts);
    free(ratios);

    /* prefix */
    snprintf(line, sizeof line,
             "### Prefix cache across %d turns\n\n"
             "Turn n's prompt (with the generation prompt) followed by the model's output must be a prefix of\n"
             "turn n+1's prompt, or the cache loses everything after the first difference. Each cell: turns\n"
             "*kept* (the new prompt starts with the previous prompt + output, byte for byte) · *hit* %%: the\n"
             "share of the new prompt that is a common prefix with the previous prompt + output, in bytes /\n"
             "in tokens (the prompt's tokens then the output's, as the engine's cache holds them) · *extra*:\n"
             "tokens re-evaluated per turn before the new user message (a template that keeps the prefix:\n"
             "its end-of-turn and user-header tokens only).\n\n"
             "- *bare*: `think` unset, the output is the answer's text alone;\n"
             "- *model*: `think` unset, the output is the answer as the template renders it as the last\n"
             "  message (the markers a model of that template writes around it: an empty think block,\n"
             "  gpt-oss's final channel, ...);\n"
             "- *think*: `think` true, the output is reasoning + answer, and the history keeps its reasoning\n"
             "  (the template drops what it drops).\n\n"
             "The first break is shown as previous prompt+output → new prompt, and where it falls:\n"
             "*history* (before the end of turn n's user message), *tail* (in what turn n's prompt adds\n"
             "after it: the generation prompt, text after the last message), *output*. Token figures with\n"
             "the qwen2 vocabulary (*) stand in for a family whose vocabulary llama.cpp does not ship: its\n"
             "markers are plain text there, so token boundaries at them differ from the real model's.\n\n"
             "| template | vocab | bare | model | think | first break (model, think; bare when only it breaks) |\n"
             "|---|---|---|---|---|---|\n",
             turns);
    sb_puts(o, line);
    for (int i = 0; i < n_rows; i++) {
        struct row *r = &rows[i];
        snprintf(line, sizeof line, "| %s | %s%s |", r->t.name, r->t.vocab ? r->t.vocab->name : "",
                 r->t.own_vocab ? "" : "*");
        sb_puts(o, line);
        if (!r->sp.ok) {
            snprintf(line, sizeof line, " – | – | – | does not render: %s |\n", row_error(r));
            sb_puts(o, line);
            continue;
        }
        for (int k = 0; k < N_MODES; k++)
            prefix_cell(o, &r->pf[k]);
        struct sbuf note = {0};
        sb_puts(&note, " ");
        if (r->pf[M_MODEL].break_turn)
            break_note(&note, &r->pf[M_MODEL], "model");
        if (r->pf[M_THINK].break_turn)
            break_note(&note, &r->pf[M_THINK], "think");
        if (r->pf[M_BARE].break_turn && !r->pf[M_MODEL].break_turn && !r->pf[M_THINK].break_turn)
            break_note(&note, &r->pf[M_BARE], "bare");
        for (int k = 0; k < N_MODES; k++)
            if (r->pf[k].err[0]) {
                snprintf(line, sizeof line, "; %s: error: %s", MODE[k], r->pf[k].err);
                sb_puts(&note, line);
            }
        sb_add(o, note.p, note.n);
        free(note.p);
        sb_puts(o, " |\n");
    }

    /* summary */
    sb_puts(o, "\n### Summary\n\n");
    for (int c = 0; c < N_CLASSES; c++) {
        struct sbuf names = {0};
        int cnt = 0;
        for (int i = 0; i < n_rows; i++)
            if (classify(&rows[i]) == c) {
                if (cnt++)
                    sb_puts(&names, ", ");
                sb_puts(&names, rows[i].t.name);
            }
        snprintf(line, sizeof line, "- **%d** %s%s", cnt, CLASS[c], cnt ? ": " : ".");
        sb_puts(o, line);
        if (cnt)
            sb_add(o, names.p, names.n);
        sb_puts(o, "\n");
        free(names.p);
    }
    sb_puts(o, "\nMeans over the templates that render (bytes hit / tokens hit, extra tokens per turn):");
    for (int k = 0; k < N_MODES; k++) {
        double bh = 0, th = 0, ex = 0;
        int np = 0, kept = 0;
        for (int i = 0; i < n_rows; i++)
            if (rows[i].pf[k].ok) {
                bh += rows[i].pf[k].byte_hit;
                th += rows[i].pf[k].tok_hit;
                ex += rows[i].pf[k].extra_tokens;
                kept += all_kept(&rows[i].pf[k]);
                np++;
            }
        if (np) {
            snprintf(line, sizeof line, "%s *%s* (%d templates, %d keep every turn): %.1f%% / %.1f%%, %.0f", k ? ";" : "",
                     MODE[k], np, kept, 100 * bh / np, 100 * th / np, ex / np);
            sb_puts(o, line);
        }
    }
    sb_puts(o, ".\n");
}

/* A JSON summary (for bench/report.mjs). */
static void write_json(FILE *f, struct row *rows, int n_rows, int n_messages, int turns)
{
    json_t *o = json_object();
    double *rs = xmalloc((size_t)n_rows * sizeof *rs), *cs = xmalloc((size_t)n_rows * sizeof *cs),
           *ts = xmalloc((size_t)n_rows * sizeof *ts), *ratios = xmalloc((size_t)n_rows * sizeof *ratios);
    int n_ok = 0;
    for (int i = 0; i < n_rows; i++)
        if (rows[i].sp.ok) {
            rs[n_ok] = rows[i].sp.render_us;
            cs[n_ok] = rows[i].sp.context_us;
            ts[n_ok] = rows[i].sp.tokenize_us;
            ratios[n_ok++] = rows[i].sp.render_us / rows[i].sp.tokenize_us;
        }
    json_object_set_new(o, "templates", json_integer(n_rows));
    json_object_set_new(o, "rendered", json_integer(n_ok));
    json_object_set_new(o, "messages", json_integer(n_messages));
    json_object_set_new(o, "turns", json_integer(turns));
    json_object_set_new(o, "min_ms", json_real(g_min_ms));
    json_object_set_new(o, "median_render_us", json_real(median(rs, n_ok)));
    json_object_set_new(o, "median_context_us", json_real(median(cs, n_ok)));
    json_object_set_new(o, "median_tokenize_us", json_real(median(ts, n_ok)));
    json_object_set_new(o, "median_render_share", json_real(median(ratios, n_ok)));
    double max_r = 0;
    const char *max_name = "";
    for (int i = 0; i < n_rows; i++)
        if (rows[i].sp.ok && rows[i].sp.render_us > max_r) {
            max_r = rows[i].sp.render_us;
            max_name = rows[i].t.name;
        }
    json_object_set_new(o, "max_render_us", json_real(max_r));
    json_object_set_new(o, "max_render_template", json_string(max_name));
    static const char *const CLASS_KEY[] = {"keep", "think_loses_output", "loses_output", "loses_history", "error"};
    json_t *cls = json_object();
    for (int c = 0; c < N_CLASSES; c++) {
        json_t *names = json_array();
        for (int i = 0; i < n_rows; i++)
            if (classify(&rows[i]) == c)
                json_array_append_new(names, json_string(rows[i].t.name));
        json_object_set_new(cls, CLASS_KEY[c], names);
    }
    json_object_set_new(o, "classes", cls);
    json_t *modes = json_object();
    for (int k = 0; k < N_MODES; k++) {
        double bh = 0, th = 0, ex = 0;
        int np = 0, kept = 0;
        for (int i = 0; i < n_rows; i++)
            if (rows[i].pf[k].ok) {
                bh += rows[i].pf[k].byte_hit;
                th += rows[i].pf[k].tok_hit;
                ex += rows[i].pf[k].extra_tokens;
                kept += all_kept(&rows[i].pf[k]);
                np++;
            }
        json_object_set_new(modes, MODE[k],
                            json_pack("{s:i,s:i,s:f,s:f,s:f}", "templates", np, "keep_every_turn", kept, "byte_hit",
                                      np ? bh / np : 0.0, "token_hit", np ? th / np : 0.0, "extra_tokens",
                                      np ? ex / np : 0.0));
    }
    json_object_set_new(o, "modes", modes);
    json_dumpf(o, f, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
    fputc('\n', f);
    json_decref(o);
    free(rs);
    free(cs);
    free(ts);
    free(ratios);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int cmp_name(const void *a, const void *b) { return strcasecmp(*(char *const *)a, *(char *const *)b); }

static void usage(void)
{
    fprintf(stderr, "usage: bellows-template-bench [--templates DIR] [--vocab GGUF] [--vocab-dir DIR] [--messages N]\n"
                    "                              [--turns T] [--min-ms MS] [--only SUBSTR] [--csv FILE] [--json FILE]\n"
                    "                              [--dump DIR]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *tdir = BELLOWS_LLAMA_MODELS "/templates", *vocab_path = NULL, *vocab_dir = BELLOWS_LLAMA_MODELS;
    const char *only = NULL, *csv_path = NULL, *json_path = NULL;
    int n_messages = 100, turns = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || !v)
            usage();
        if (!strcmp(a, "--templates")) tdir = v;
        else if (!strcmp(a, "--vocab")) vocab_path = v;
        else if (!strcmp(a, "--vocab-dir")) vocab_dir = v;
        else if (!strcmp(a, "--messages")) n_messages = atoi(v);
        else if (!strcmp(a, "--turns")) turns = atoi(v);
        else if (!strcmp(a, "--min-ms")) g_min_ms = atof(v);
        else if (!strcmp(a, "--only")) only = v;
        else if (!strcmp(a, "--csv")) csv_path = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--dump")) g_dump = v;
        else usage();
        i++;
    }
    if (n_messages < 1 || turns < 2 || g_min_ms < 0)
        usage();
    g_now = (int64_t)time(NULL);
    g_samples = xmalloc(MAX_SAMPLES * sizeof *g_samples);
    llama_log_set(quiet_log, NULL);
    llama_backend_init();

    DIR *d = opendir(tdir);
    if (!d) {
        fprintf(stderr, "template-bench: cannot open %s\n", tdir);
        return 1;
    }
    char **names = NULL;
    int n_names = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 6 && !strcmp(e->d_name + l - 6, ".jinja") && (!only || strcasestr(e->d_name, only))) {
            names = realloc(names, (size_t)(n_names + 1) * sizeof *names);
            names[n_names++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (!n_names) {
        fprintf(stderr, "template-bench: no .jinja files in %s\n", tdir);
        return 1;
    }
    qsort(names, (size_t)n_names, sizeof *names, cmp_name);

    struct row *rows = calloc((size_t)n_names, sizeof *rows);
    double t_start = now_us();
    for (int i = 0; i < n_names; i++) {
        struct row *r = &rows[i];
        snprintf(r->t.name, sizeof r->t.name, "%.*s", (int)(strlen(names[i]) - 6), names[i]);
        char path[4096];
        if (vocab_path) {
            snprintf(path, sizeof path, "%s", vocab_path);
            r->t.own_vocab = true;
        } else {
            snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", vocab_dir, vocab_name_for(r->t.name, &r->t.own_vocab));
        }
        r->t.vocab = vocab_get(path);
        if (!r->t.vocab)
            return 1;
        snprintf(path, sizeof path, "%s/%s", tdir, names[i]);
        r->t.text = read_file(path);
        if (!r->t.text) {
            snprintf(r->t.err, sizeof r->t.err, "cannot read %.250s", path);
            continue;
        }
        r->t.caps = template_caps(r->t.text);
        struct bw_err err;
        double samples[64];
        int reps = 0;
        double t0 = now_us();
        bool parsed = true;
        while (reps < 64 && (reps < 3 || now_us() - t0 < g_min_ms * 250)) {
            struct chat_template *ct;
            double a = now_us();
            if (chat_template_parse(r->t.text, &ct, &err) != BW_OK) {
                parsed = false;
                break;
            }
            samples[reps++] = now_us() - a;
            chat_template_free(ct);
        }
        if (!parsed) {
            snprintf(r->t.err, sizeof r->t.err, "parse: %s", err.msg);
            fprintf(stderr, "[template-bench] %-50s parse error: %s\n", r->t.name, err.msg);
            continue;
        }
        r->t.parse_us = median(samples, reps);
        chat_template_parse(r->t.text, &r->t.t, &err);
        measure_speed(&r->t, n_messages, &r->sp);
        if (r->sp.ok)
            for (int k = 0; k < N_MODES; k++)
                if (k != M_THINK || thinks(r))
                    measure_prefix(&r->t, r->sp.system, turns, (enum mode)k, &r->pf[k]);
        fprintf(stderr, "[template-bench %5.1fs] %-48s render %7.1f us  tokenize %8.1f us  kept bare %d/%d model %d/%d think %d/%d%s%s\n",
                (now_us() - t_start) / 1e6, r->t.name, r->sp.render_us, r->sp.tokenize_us, r->pf[0].kept,
                r->pf[0].comparisons, r->pf[1].kept, r->pf[1].comparisons, r->pf[2].kept, r->pf[2].comparisons,
                row_error(r)[0] ? "  error: " : "", row_error(r));
    }

    struct sbuf o = {0};
    report(&o, rows, n_names, tdir, vocab_path, n_messages, turns);
    fwrite(o.p, 1, o.n, stdout);
    free(o.p);
    if (csv_path) {
        FILE *f = fopen(csv_path, "w");
        if (!f) {
            fprintf(stderr, "template-bench: cannot write %s\n", csv_path);
            return 1;
        }
        write_csv(f, rows, n_names);
        fclose(f);
    } else {
        printf("\n```csv\n");
        write_csv(stdout, rows, n_names);
        printf("```\n");
    }

    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "template-bench: cannot write %s\n", json_path);
            return 1;
        }
        write_json(f, rows, n_names, n_messages, turns);
        fclose(f);
    }

    for (int i = 0; i < n_names; i++) {
        chat_template_free(rows[i].t.t);
        free(rows[i].t.text);
        for (int k = 0; k < N_MODES; k++) {
            free(rows[i].pf[k].snip_cached);
            free(rows[i].pf[k].snip_next);
        }
        free(names[i]);
    }
    for (int i = 0; i < g_n_vocabs; i++) {
        if (g_vocabs[i].model)
            llama_model_free(g_vocabs[i].model);
        free(g_vocabs[i].path);
        free(g_vocabs[i].name);
    }
    free(rows);
    free(names);
    free(g_samples);
    llama_backend_free();
    return 0;
}
