/* test_models.c -- the generated tiny models load through libllama with the metadata their
 * presets promise (issue: foundation; tools/mkmodel.c), and `bellows-mkmodel --vocab
 * --chat-template` makes models with other real vocabularies and templates (issue 10). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gguf.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

static void check_preset(const char *file, int n_ctx_train, int n_embd, int n_head)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", BELLOWS_TEST_MODELS, file);
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *m = llama_model_load_from_file(path, mp);
    assert_non_null(m);

    char arch[64];
    assert_true(llama_model_meta_val_str(m, "general.architecture", arch, sizeof arch) > 0);
    assert_string_equal(arch, "qwen2");
    assert_int_equal(llama_model_n_ctx_train(m), n_ctx_train);
    assert_int_equal(llama_model_n_layer(m), 2);
    assert_int_equal(llama_model_n_embd(m), n_embd);
    assert_int_equal(llama_model_n_head(m), n_head);
    assert_int_equal(llama_model_n_head_kv(m), 2);
    /* The qwen2 vocabulary copied from llama.cpp's models/ggml-vocab-qwen2.gguf. */
    assert_int_equal(llama_vocab_n_tokens(llama_model_get_vocab(m)), 151936);
    const char *tmpl = llama_model_chat_template(m, NULL);
    assert_non_null(tmpl);
    assert_non_null(strstr(tmpl, "<|im_start|>"));
    assert_int_equal(llama_model_ftype(m), LLAMA_FTYPE_MOSTLY_Q8_0);
    llama_model_free(m);

    /* A separate output.weight: random models with tied embeddings repeat one token. And only
     * the tokenizer.* keys of the vocabulary file, not its 7B model's hyper-parameters. */
    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, ip);
    assert_non_null(g);
    assert_true(gguf_find_tensor(g, "output.weight") >= 0);
    assert_true(gguf_find_tensor(g, "token_embd.weight") >= 0);
    assert_true(gguf_find_tensor(g, "blk.1.attn_q.bias") >= 0);
    assert_true(gguf_find_key(g, "tokenizer.chat_template") >= 0);
    for (int64_t i = 0; i < gguf_get_n_kv(g); i++) {
        const char *key = gguf_get_key(g, i);
        bool ours = !strncmp(key, "tokenizer.", 10) || !strncmp(key, "general.", 8) || !strncmp(key, "qwen2.", 6);
        assert_true(ours);
    }
    int64_t name = gguf_find_key(g, "general.name");
    assert_true(name >= 0);
    assert_non_null(strstr(gguf_get_val_str(g, name), "bellows-"));
    gguf_free(g);
}

static void demo_model_loads_with_its_metadata(void **state)
{
    (void)state;
    check_preset("demo.gguf", 32768, 256, 16); /* a dimension per word, head_dim 16 */
}

static void ctx4k_model_has_a_4096_maximum(void **state)
{
    (void)state;
    check_preset("ctx4k.gguf", 4096, 64, 4);
}

/* ---- bellows-mkmodel --vocab PATH --chat-template FILE ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The number of tokens and the text of the BOS token in a vocabulary file, read with gguf.h. */
static int64_t vocab_file_tokens(const char *vocab, char *bos, size_t bos_len)
{
    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(vocab, ip);
    assert_non_null(g);
    int64_t toks = gguf_find_key(g, "tokenizer.ggml.tokens");
    int64_t bos_id = gguf_find_key(g, "tokenizer.ggml.bos_token_id");
    assert_true(toks >= 0 && bos_id >= 0);
    int64_t n = (int64_t)gguf_get_arr_n(g, toks);
    snprintf(bos, bos_len, "%s", gguf_get_arr_str(g, toks, gguf_get_val_u32(g, bos_id)));
    gguf_free(g);
    return n;
}

/* Makes a tiny f16 model from llama.cpp's models/ggml-vocab-VOCAB.gguf and
 * models/templates/TEMPLATE, loads it, and checks that it carries exactly the file's template
 * (the vocabulary's own ones are gone) and the vocabulary's size and BOS token. */
static void check_vocab_and_template(const char *vocab_name, const char *template_name)
{
    char vocab[1024], tmpl_path[1024], dir[] = "/tmp/bellows-test-models-XXXXXX", out[1100], cmd[4096];
    snprintf(vocab, sizeof vocab, "%s/models/ggml-vocab-%s.gguf", BELLOWS_LLAMA_DIR, vocab_name);
    snprintf(tmpl_path, sizeof tmpl_path, "%s/models/templates/%s", BELLOWS_LLAMA_DIR, template_name);
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/m.gguf", dir);
    snprintf(cmd, sizeof cmd, "'%s' --type f16 --layers 1 --vocab '%s' --chat-template '%s' -o '%s'",
             BELLOWS_MKMODEL, vocab, tmpl_path, out);
    assert_int_equal(system(cmd), 0);

    char bos_text[256];
    int64_t n_vocab = vocab_file_tokens(vocab, bos_text, sizeof bos_text);
    char *want = slurp(tmpl_path);

    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *m = llama_model_load_from_file(out, mp);
    assert_non_null(m);
    const struct llama_vocab *v = llama_model_get_vocab(m);
    assert_int_equal(llama_vocab_n_tokens(v), n_vocab);
    assert_string_equal(llama_vocab_get_text(v, llama_vocab_bos(v)), bos_text);
    const char *tmpl = llama_model_chat_template(m, NULL);
    assert_non_null(tmpl);
    assert_string_equal(tmpl, want);
    assert_null(llama_model_chat_template(m, "tool_use"));
    llama_model_free(m);

    /* The tensors follow the vocabulary: one row of token_embd.weight per token. */
    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct ggml_context *meta = NULL;
    ip.ctx = &meta;
    struct gguf_context *g = gguf_init_from_file(out, ip);
    assert_non_null(g);
    struct ggml_tensor *embd = ggml_get_tensor(meta, "token_embd.weight");
    assert_non_null(embd);
    assert_int_equal(embd->ne[1], n_vocab);
    assert_int_equal(ggml_get_tensor(meta, "output.weight")->ne[1], n_vocab);
    gguf_free(g);
    ggml_free(meta);

    free(want);
    unlink(out);
    rmdir(dir);
}

static void llama_bpe_vocab_with_the_llama_3_1_template(void **state)
{
    (void)state;
    check_vocab_and_template("llama-bpe", "meta-llama-Llama-3.1-8B-Instruct.jinja");
}

static void gemma_4_vocab_with_the_gemma_4_template(void **state)
{
    (void)state;
    check_vocab_and_template("gemma-4", "google-gemma-4-31B-it.jinja");
}

static void phi_3_spm_vocab_with_the_phi_3_5_template(void **state)
{
    (void)state;
    check_vocab_and_template("phi-3", "microsoft-Phi-3.5-mini-instruct.jinja");
}

/* command-r's vocabulary carries named templates (tool_use, rag): --chat-template drops them. */
static void command_r_vocab_loses_its_named_templates(void **state)
{
    (void)state;
    check_vocab_and_template("command-r", "CohereForAI-c4ai-command-r-plus-tool_use.jinja");
}

int main(void)
{
    llama_log_set(quiet, NULL);
    llama_backend_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demo_model_loads_with_its_metadata),
        cmocka_unit_test(ctx4k_model_has_a_4096_maximum),
        cmocka_unit_test(llama_bpe_vocab_with_the_llama_3_1_template),
        cmocka_unit_test(gemma_4_vocab_with_the_gemma_4_template),
        cmocka_unit_test(phi_3_spm_vocab_with_the_phi_3_5_template),
        cmocka_unit_test(command_r_vocab_loses_its_named_templates),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    llama_backend_free();
    return rc;
}
