/* bellows-mkmodel -- write a qwen2-architecture GGUF model made on the spot: the demo
 * model, which writes the words of a text, or a random-weight one (or, with `--arch bert`,
 * a BERT encoder with mean pooling: an embedding model).
 *
 * Bellows' tests and demo need a model that loads through libllama like a real one but is
 * small, deterministic and made on the spot (no download). This tool builds one:
 *   - the hyper-parameters come from a preset or flags (layers, hidden, FFN, heads, ...);
 *   - the tokenizer and chat template are copied from a llama.cpp vocabulary file
 *     (`--vocab`, default models/ggml-vocab-qwen2.gguf; llama-bpe, gemma-4, phi-3, ... work
 *     too): only its `tokenizer.*` keys, since its other keys describe a real model and must
 *     not leak into ours. The embedding and output tensors take that vocabulary's size;
 *   - `--chat-template FILE` replaces the vocabulary's template(s) with the file's text;
 *   - weights are drawn from N(0, 0.02) with a seeded PRNG, which keeps activations finite,
 *     and `output.weight` is separate from `token_embd.weight`: with tied embeddings a
 *     random model repeats one token under greedy decoding;
 *   - the demo preset (or `--corpus FILE`) replaces the random token embedding and output
 *     head with a bigram model of FILE's words (tools/demo-corpus.txt, sentences of the
 *     project's docs; mkmodel_words.h): the model writes English words and phrases of the
 *     docs, ends sampled answers with <|im_end|> after some sentence, and its attention and
 *     feed-forward layers stay random and small, so they run like a real model's and
 *     perturb the words without drowning them. Text written by the other presets is
 *     gibberish by design;
 *   - the F16 file is written with gguf.h, then llama_model_quantize() turns it into
 *     Q8_0 or Q4_0 when asked. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "mkmodel_words.h"

#ifndef BELLOWS_DEFAULT_VOCAB
#define BELLOWS_DEFAULT_VOCAB ""
#endif
#ifndef BELLOWS_DEMO_CORPUS
#define BELLOWS_DEMO_CORPUS ""
#endif

/* The demo's embedding size: each of its words owns one dimension (n_embd - 2 words), and
 * token_embd + output are 2 x 151936 x n_embd weights, Q8_0 at 1.0625 bytes each: 256
 * makes 254 words and 83 MB of weights, 89 MB with the tokenizer (the issue allows 100). */
#define DEMO_EMBD 256
/* The embedding's size against the random layers' output (fixed, about 1.6 per layer at
 * std 0.02 on a normed input of size 16): 16 leaves them a perturbation of about a tenth. */
#define WORDS_AMP 16.0f
/* Each token's own random part of its embedding (norm about 0.05 * 16 = 0.8 against 22.6):
 * the tokens outside W share the start state, and still differ in attention and in
 * /api/embed's vectors. */
#define WORDS_EMBD_NOISE 0.05f

enum out_type { OUT_F16, OUT_Q8_0, OUT_Q4_0 };

struct model_shape {
    int n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx_train;
    enum out_type type;
    bool bert; /* --arch bert: a non-causal encoder, mean-pooled (general.architecture "bert") */
    bool words; /* embeddings and head from a bigram of a text (mkmodel_words.h), or random */
};

struct preset {
    const char *name;
    struct model_shape shape;
};

static const struct preset presets[] = {
    /* head_dim 16 and 2 KV heads, as ctx4k: the same KV bytes per token */
    {"demo", {2, DEMO_EMBD, 128, 16, 2, 32768, OUT_Q8_0, false, true}},
    {"ctx4k", {2, 64, 128, 4, 2, 4096, OUT_Q8_0, false, false}},
    {"bench-0.5b", {24, 896, 4864, 14, 2, 32768, OUT_Q8_0, false, false}},
};

/* ---- deterministic normal numbers (splitmix64 + Box-Muller) ---- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *state) /* in (0, 1] */
{
    return ((rng_next(state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static void fill_normal(float *out, size_t n, float stddev, uint64_t *state)
{
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(rng_uniform(state)));
        double t = 2.0 * 3.14159265358979323846 * rng_uniform(state);
        out[i] = (float)(r * cos(t)) * stddev;
        if (i + 1 < n)
            out[i + 1] = (float)(r * sin(t)) * stddev;
    }
}

/* ---- tensors ---- */

struct builder {
    struct ggml_context *ctx;
    struct gguf_context *gguf;
    uint64_t rng;
    float *scratch; /* f32 staging for one tensor */
    size_t scratch_n;
    const struct words_model *words; /* the demo's words, or NULL: random embeddings and head */
};

/* Creates the tensor NAME of shape ne0 x ne1 (ne1 = 1 for vectors) and makes b->scratch
 * hold its ne0 * ne1 values: matrices are F16 (F32 with f32, for the few that ggml adds to
 * F32 activations); vectors are F32 (llama.cpp expects norms and biases in F32). The
 * caller fills b->scratch, then commit_tensor() stores it. */
static struct ggml_tensor *stage_tensor(struct builder *b, const char *name, int64_t ne0, int64_t ne1, bool f32)
{
    bool matrix = ne1 > 1 && !f32;
    struct ggml_tensor *t = matrix ? ggml_new_tensor_2d(b->ctx, GGML_TYPE_F16, ne0, ne1)
                            : ne1 > 1 ? ggml_new_tensor_2d(b->ctx, GGML_TYPE_F32, ne0, ne1)
                                      : ggml_new_tensor_1d(b->ctx, GGML_TYPE_F32, ne0);
    if (!t)
        return NULL;
    ggml_set_name(t, name);
    size_t n = (size_t)(ne0 * ne1);
    if (n > b->scratch_n) {
        float *p = realloc(b->scratch, n * sizeof *p);
        if (!p)
            return NULL;
        b->scratch = p;
        b->scratch_n = n;
    }
    return t;
}

static void commit_tensor(struct builder *b, struct ggml_tensor *t)
{
    int64_t n = ggml_nelements(t);
    if (t->type == GGML_TYPE_F16)
        ggml_fp32_to_fp16_row(b->scratch, t->data, n);
    else
        memcpy(t->data, b->scratch, (size_t)n * sizeof(float));
    gguf_add_tensor(b->gguf, t);
}

/* Adds a tensor of N(0, 0.02) values (matrices and biases), or of ones for a norm. */
static int add_tensor_as(struct builder *b, const char *name, int64_t ne0, int64_t ne1, bool is_norm, bool f32)
{
    struct ggml_tensor *t = stage_tensor(b, name, ne0, ne1, f32);
    if (!t)
        return -1;
    size_t n = (size_t)(ne0 * ne1);
    if (is_norm) {
        for (size_t i = 0; i < n; i++)
            b->scratch[i] = 1.0f;
    } else {
        fill_normal(b->scratch, n, 0.02f, &b->rng);
    }
    commit_tensor(b, t);
    return 0;
}

static int add_tensor(struct builder *b, const char *name, int64_t ne0, int64_t ne1, bool is_norm)
{
    return add_tensor_as(b, name, ne0, ne1, is_norm, false);
}

static size_t tensor_bytes(const struct model_shape *s, int64_t n_vocab)
{
    int64_t head_dim = s->n_embd / s->n_head;
    int64_t kv = head_dim * s->n_head_kv;
    int64_t per_layer = 2 * s->n_embd * s->n_embd + 2 * s->n_embd * kv + 3 * s->n_embd * s->n_ff;
    int64_t f16 = 2 * n_vocab * s->n_embd + s->n_layer * per_layer;
    if (s->bert) /* position and token-type embeddings, biases and norms everywhere */
        f16 += (int64_t)(s->n_ctx_train + 2) * s->n_embd + s->n_layer * 16 * (s->n_embd + s->n_ff);
    int64_t f32 = s->n_embd * (1 + 3 * s->n_layer) + s->n_layer * 2 * kv;
    int64_t n_tensors = 3 + 12 * s->n_layer;
    return (size_t)(f16 * 2 + f32 * 4 + n_tensors * (ggml_tensor_overhead() + 64)) + (1 << 20);
}

/* Reads the whole of PATH into a NUL-terminated heap string (caller frees); NULL with a
 * message on stderr on error or when the file holds a NUL byte (a template is text). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bellows-mkmodel: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = !buf || ferror(f);
    fclose(f);
    if (buf)
        buf[len] = '\0';
    if (bad || strlen(buf) != len) {
        fprintf(stderr, "bellows-mkmodel: cannot read %s: %s\n", path,
                !buf ? "out of memory" : bad ? "read error" : "it holds a NUL byte");
        free(buf);
        return NULL;
    }
    return buf;
}

/* Copies the `tokenizer.*` keys of the vocabulary file into dst, in the file's order (the
 * output stays deterministic). With TEMPLATE, every template key of the vocabulary
 * (`tokenizer.chat_template`, its named variants `tokenizer.chat_template.*` and the
 * `tokenizer.chat_templates` list) is left out and `tokenizer.chat_template` is set to
 * TEMPLATE: a leftover tool_use variant of command-r would not match the new template.
 * Returns the vocab size or -1 with a message on stderr. */
static int64_t copy_tokenizer(struct gguf_context *dst, const char *vocab_path, const char *tmpl)
{
    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *src = gguf_init_from_file(vocab_path, ip);
    if (!src) {
        fprintf(stderr, "bellows-mkmodel: cannot read vocabulary %s\n", vocab_path);
        return -1;
    }
    struct gguf_context *tmp = gguf_init_empty();
    gguf_set_kv(tmp, src);
    for (int64_t i = gguf_get_n_kv(src) - 1; i >= 0; i--) {
        const char *key = gguf_get_key(src, i);
        bool is_template = !strncmp(key, "tokenizer.chat_template", 23);
        if (strncmp(key, "tokenizer.", 10) != 0 || (tmpl && is_template))
            gguf_remove_key(tmp, key);
    }
    if (tmpl)
        gguf_set_val_str(tmp, "tokenizer.chat_template", tmpl);
    gguf_set_kv(dst, tmp);
    int64_t id = gguf_find_key(src, "tokenizer.ggml.tokens");
    int64_t n_vocab = id >= 0 ? (int64_t)gguf_get_arr_n(src, id) : -1;
    gguf_free(tmp);
    gguf_free(src);
    if (n_vocab <= 0) {
        fprintf(stderr, "bellows-mkmodel: %s has no tokenizer.ggml.tokens\n", vocab_path);
        return -1;
    }
    return n_vocab;
}

/* The demo's token embedding or output head: its words' bigram (mkmodel_words.h). */
static int add_words_tensor(struct builder *b, const char *name, int64_t n_embd, int64_t n_vocab, bool output)
{
    struct ggml_tensor *t = stage_tensor(b, name, n_embd, n_vocab, false);
    if (!t)
        return -1;
    if (output) {
        words_fill_output(b->words, (int)n_embd, n_vocab, b->scratch);
    } else {
        fill_normal(b->scratch, (size_t)(n_embd * n_vocab), WORDS_EMBD_NOISE, &b->rng);
        words_fill_embd(b->words, (int)n_embd, n_vocab, WORDS_AMP, b->scratch);
    }
    commit_tensor(b, t);
    return 0;
}

/* qwen2 (the default): embeddings, then per block RMS norms, attention with q/k/v biases
 * and a SwiGLU feed-forward; a separate output head. */
static int add_qwen2_tensors(struct builder *b, const struct model_shape *s, int64_t n_vocab)
{
    int kv = s->n_embd / s->n_head * s->n_head_kv;
    int rc = 0;
    if (b->words) {
        rc |= add_words_tensor(b, "token_embd.weight", s->n_embd, n_vocab, false);
        rc |= add_tensor(b, "output_norm.weight", s->n_embd, 1, true);
        rc |= add_words_tensor(b, "output.weight", s->n_embd, n_vocab, true);
    } else {
        rc |= add_tensor(b, "token_embd.weight", s->n_embd, n_vocab, false);
        rc |= add_tensor(b, "output_norm.weight", s->n_embd, 1, true);
        rc |= add_tensor(b, "output.weight", s->n_embd, n_vocab, false);
    }
    for (int i = 0; i < s->n_layer && rc == 0; i++) {
        char n[64];
#define T(suffix, ne0, ne1, norm) (snprintf(n, sizeof n, "blk.%d." suffix, i), add_tensor(b, n, ne0, ne1, norm))
        rc |= T("attn_norm.weight", s->n_embd, 1, true);
        rc |= T("attn_q.weight", s->n_embd, s->n_embd, false);
        rc |= T("attn_q.bias", s->n_embd, 1, false);
        rc |= T("attn_k.weight", s->n_embd, kv, false);
        rc |= T("attn_k.bias", kv, 1, false);
        rc |= T("attn_v.weight", s->n_embd, kv, false);
        rc |= T("attn_v.bias", kv, 1, false);
        rc |= T("attn_output.weight", s->n_embd, s->n_embd, false);
        rc |= T("ffn_norm.weight", s->n_embd, 1, true);
        rc |= T("ffn_gate.weight", s->n_embd, s->n_ff, false);
        rc |= T("ffn_up.weight", s->n_embd, s->n_ff, false);
        rc |= T("ffn_down.weight", s->n_ff, s->n_embd, false);
#undef T
    }
    return rc;
}

/* BERT (llama.cpp's LLM_ARCH_BERT): token, token-type and position embeddings with a norm,
 * then per block self-attention with biases, an output norm, a GELU feed-forward and a
 * layer-output norm. No output head: the model is pooled into one vector. */
static int add_bert_tensors(struct builder *b, const struct model_shape *s, int64_t n_vocab)
{
    int kv = s->n_embd / s->n_head * s->n_head_kv;
    int rc = 0;
    rc |= add_tensor(b, "token_embd.weight", s->n_embd, n_vocab, false);
    rc |= add_tensor_as(b, "token_types.weight", s->n_embd, 2, false, true); /* added to F32 rows */
    rc |= add_tensor(b, "position_embd.weight", s->n_embd, s->n_ctx_train, false);
    rc |= add_tensor(b, "token_embd_norm.weight", s->n_embd, 1, true);
    rc |= add_tensor(b, "token_embd_norm.bias", s->n_embd, 1, false);
    for (int i = 0; i < s->n_layer && rc == 0; i++) {
        char n[64];
#define T(suffix, ne0, ne1, norm) (snprintf(n, sizeof n, "blk.%d." suffix, i), add_tensor(b, n, ne0, ne1, norm))
        rc |= T("attn_q.weight", s->n_embd, s->n_embd, false);
        rc |= T("attn_q.bias", s->n_embd, 1, false);
        rc |= T("attn_k.weight", s->n_embd, kv, false);
        rc |= T("attn_k.bias", kv, 1, false);
        rc |= T("attn_v.weight", s->n_embd, kv, false);
        rc |= T("attn_v.bias", kv, 1, false);
        rc |= T("attn_output.weight", s->n_embd, s->n_embd, false);
        rc |= T("attn_output.bias", s->n_embd, 1, false);
        rc |= T("attn_output_norm.weight", s->n_embd, 1, true);
        rc |= T("attn_output_norm.bias", s->n_embd, 1, false);
        rc |= T("ffn_up.weight", s->n_embd, s->n_ff, false);
        rc |= T("ffn_up.bias", s->n_ff, 1, false);
        rc |= T("ffn_down.weight", s->n_ff, s->n_embd, false);
        rc |= T("ffn_down.bias", s->n_embd, 1, false);
        rc |= T("layer_output_norm.weight", s->n_embd, 1, true);
        rc |= T("layer_output_norm.bias", s->n_embd, 1, false);
#undef T
    }
    return rc;
}

static int write_f16(const char *path, const struct model_shape *s, const char *vocab_path,
                     const char *tmpl, uint64_t seed, const char *name, const struct words_model *words)
{
    struct builder b = {.rng = seed, .words = words};
    b.gguf = gguf_init_empty();
    int64_t n_vocab = copy_tokenizer(b.gguf, vocab_path, tmpl);
    if (n_vocab < 0) {
        gguf_free(b.gguf);
        return -1;
    }
    const char *arch = s->bert ? "bert" : "qwen2";
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    gguf_set_val_str(b.gguf, "general.architecture", arch);
    gguf_set_val_str(b.gguf, "general.name", name);
    gguf_set_val_u32(b.gguf, "general.file_type", 1 /* LLAMA_FTYPE_MOSTLY_F16 */);
    gguf_set_val_u32(b.gguf, KEY("context_length"), (uint32_t)s->n_ctx_train);
    gguf_set_val_u32(b.gguf, KEY("embedding_length"), (uint32_t)s->n_embd);
    gguf_set_val_u32(b.gguf, KEY("block_count"), (uint32_t)s->n_layer);
    gguf_set_val_u32(b.gguf, KEY("feed_forward_length"), (uint32_t)s->n_ff);
    gguf_set_val_u32(b.gguf, KEY("attention.head_count"), (uint32_t)s->n_head);
    gguf_set_val_u32(b.gguf, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    if (s->bert) {
        gguf_set_val_f32(b.gguf, KEY("attention.layer_norm_epsilon"), 1e-12f);
        gguf_set_val_bool(b.gguf, KEY("attention.causal"), false);
        gguf_set_val_u32(b.gguf, KEY("pooling_type"), 1 /* LLAMA_POOLING_TYPE_MEAN */);
    } else {
        gguf_set_val_f32(b.gguf, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
        gguf_set_val_f32(b.gguf, KEY("rope.freq_base"), 1000000.0f);
    }
#undef KEY

    struct ggml_init_params gp = {.mem_size = tensor_bytes(s, n_vocab), .mem_buffer = NULL, .no_alloc = false};
    b.ctx = ggml_init(gp);
    if (!b.ctx) {
        fprintf(stderr, "bellows-mkmodel: cannot allocate %zu bytes for the tensors\n", gp.mem_size);
        gguf_free(b.gguf);
        return -1;
    }

    int rc = s->bert ? add_bert_tensors(&b, s, n_vocab) : add_qwen2_tensors(&b, s, n_vocab);
    if (rc == 0 && !gguf_write_to_file(b.gguf, path, false)) {
        fprintf(stderr, "bellows-mkmodel: cannot write %s: %s\n", path, strerror(errno));
        rc = -1;
    } else if (rc != 0) {
        fprintf(stderr, "bellows-mkmodel: out of memory while building tensors\n");
    }
    free(b.scratch);
    ggml_free(b.ctx);
    gguf_free(b.gguf);
    return rc;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

static int quantize(const char *in, const char *out, enum out_type type)
{
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = type == OUT_Q4_0 ? LLAMA_FTYPE_MOSTLY_Q4_0 : LLAMA_FTYPE_MOSTLY_Q8_0;
    qp.nthread = 0;
    if (llama_model_quantize(in, out, &qp) != 0) {
        fprintf(stderr, "bellows-mkmodel: quantizing %s to %s failed\n", in, out);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bellows-mkmodel [--preset NAME] [options] -o OUT.gguf\n"
            "Writes a qwen2 model (seeded, deterministic) with a real tokenizer: random weights,\n"
            "or, for the demo preset, a bigram of a text's words that it writes.\n"
            "\n"
            "  --preset NAME          demo | ctx4k | bench-0.5b (default demo)\n"
            "  --arch A               qwen2 (default) | bert (an encoder with mean pooling: an\n"
            "                         embedding model; give it a BERT vocabulary, e.g.\n"
            "                         models/ggml-vocab-bert-bge.gguf)\n"
            "  --layers N             transformer blocks\n"
            "  --hidden N             embedding length\n"
            "  --ffn N                feed-forward length\n"
            "  --heads N              attention heads\n"
            "  --kv-heads N           key/value heads\n"
            "  --context-length N     qwen2.context_length (the model maximum)\n"
            "  --type T               f16 | q8_0 | q4_0\n"
            "  --seed N               PRNG seed (default 42)\n"
            "  --vocab PATH           vocabulary GGUF whose tokenizer.* keys are copied, e.g.\n"
            "                         llama.cpp's models/ggml-vocab-*.gguf (default %s)\n"
            "  --chat-template FILE   tokenizer.chat_template is FILE's text (replaces the\n"
            "                         vocabulary's templates, named variants included)\n"
            "  --corpus FILE|none     embeddings and output head from a bigram of FILE's words\n"
            "                         (one sentence a line), so that the model writes them;\n"
            "                         the demo preset's default is %s,\n"
            "                         the other presets' none (random weights)\n"
            "  -o, --output PATH      where to write the model\n"
            "  -v, --verbose          show llama.cpp's quantization log\n",
            *BELLOWS_DEFAULT_VOCAB ? BELLOWS_DEFAULT_VOCAB : "none built in",
            *BELLOWS_DEMO_CORPUS ? BELLOWS_DEMO_CORPUS : "none built in");
}

static bool parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > (1 << 24))
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    struct model_shape shape = presets[0].shape;
    const char *preset_name = "demo";
    const char *out = NULL, *vocab = BELLOWS_DEFAULT_VOCAB, *tmpl_path = NULL, *corpus = BELLOWS_DEMO_CORPUS;
    uint64_t seed = 42;
    bool verbose = false, corpus_given = false;

    /* The preset goes first so that flags override it wherever they stand. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--preset") != 0)
            continue;
        size_t k = 0;
        while (k < sizeof presets / sizeof presets[0] && strcmp(presets[k].name, argv[i + 1]) != 0)
            k++;
        if (k == sizeof presets / sizeof presets[0]) {
            fprintf(stderr, "bellows-mkmodel: unknown preset '%s' (demo, ctx4k, bench-0.5b)\n", argv[i + 1]);
            return 2;
        }
        shape = presets[k].shape;
        preset_name = presets[k].name;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *target = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bellows-mkmodel: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--preset")) continue;
        else if (!strcmp(a, "--layers")) target = &shape.n_layer;
        else if (!strcmp(a, "--hidden")) target = &shape.n_embd;
        else if (!strcmp(a, "--ffn")) target = &shape.n_ff;
        else if (!strcmp(a, "--heads")) target = &shape.n_head;
        else if (!strcmp(a, "--kv-heads")) target = &shape.n_head_kv;
        else if (!strcmp(a, "--context-length")) target = &shape.n_ctx_train;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--chat-template")) tmpl_path = v;
        else if (!strcmp(a, "--corpus")) {
            shape.words = strcmp(v, "none") != 0;
            corpus_given = true;
            corpus = v;
        }
        else if (!strcmp(a, "--arch")) {
            if (!strcmp(v, "bert")) shape.bert = true;
            else if (!strcmp(v, "qwen2")) shape.bert = false;
            else {
                fprintf(stderr, "bellows-mkmodel: unknown arch '%s' (qwen2, bert)\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--type")) {
            if (!strcasecmp(v, "f16")) shape.type = OUT_F16;
            else if (!strcasecmp(v, "q8_0")) shape.type = OUT_Q8_0;
            else if (!strcasecmp(v, "q4_0")) shape.type = OUT_Q4_0;
            else {
                fprintf(stderr, "bellows-mkmodel: unknown type '%s' (f16, q8_0, q4_0)\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "bellows-mkmodel: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (target && !parse_int(v, target)) {
            fprintf(stderr, "bellows-mkmodel: %s wants a positive integer, got '%s'\n", a, v);
            return 2;
        }
    }
    if (shape.bert && !corpus_given)
        shape.words = false; /* `--arch bert` without a preset: the demo's shape, random */
    if (shape.words && (shape.bert || shape.n_embd < 3)) {
        fprintf(stderr, "bellows-mkmodel: --corpus makes a qwen2 model of hidden 3 or more\n");
        return 2;
    }
    if (shape.words && !*corpus) {
        fprintf(stderr, "bellows-mkmodel: --corpus FILE is required (none built in)\n");
        return 2;
    }
    if (!out || !*vocab) {
        fprintf(stderr, "bellows-mkmodel: %s\n", !out ? "-o OUT.gguf is required" : "--vocab PATH is required");
        return 2;
    }
    if (shape.n_embd % shape.n_head || shape.n_head % shape.n_head_kv) {
        fprintf(stderr, "bellows-mkmodel: hidden must be a multiple of heads, and heads of kv-heads\n");
        return 2;
    }
    /* Quantized blocks hold 32 values: every row length must be a multiple of 32. */
    int kv = shape.n_embd / shape.n_head * shape.n_head_kv;
    if (shape.type != OUT_F16 && (shape.n_embd % 32 || shape.n_ff % 32 || kv % 32)) {
        fprintf(stderr, "bellows-mkmodel: hidden, ffn and kv width must be multiples of 32 for q8_0/q4_0\n");
        return 2;
    }

    char *tmpl = NULL;
    if (tmpl_path && !(tmpl = read_text(tmpl_path)))
        return 1;

    if (!verbose)
        llama_log_set(quiet_log, NULL);
    llama_backend_init();

    struct words_model words = {0}, *wp = NULL;
    if (shape.words) {
        if (words_model_from_corpus(corpus, vocab, shape.n_embd - 2, &words) != 0) {
            llama_backend_free();
            free(tmpl);
            return 1;
        }
        wp = &words;
        llama_log_set(verbose ? NULL : quiet_log, NULL);
    }

    char name[128];
    snprintf(name, sizeof name, "bellows-%s", preset_name);
    int rc;
    if (shape.type == OUT_F16) {
        rc = write_f16(out, &shape, vocab, tmpl, seed, name, wp);
    } else {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.f16.tmp", out);
        rc = write_f16(tmp, &shape, vocab, tmpl, seed, name, wp);
        if (rc == 0)
            rc = quantize(tmp, out, shape.type);
        unlink(tmp);
    }
    llama_backend_free();
    words_model_free(&words);
    free(tmpl);
    if (rc != 0) {
        unlink(out);
        return 1;
    }
    return 0;
}
