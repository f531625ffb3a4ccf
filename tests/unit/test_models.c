/* test_models.c -- the generated tiny models load through libllama with the metadata their
 * presets promise (issue: foundation; tools/mkmodel.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gguf.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

static void check_preset(const char *file, int n_ctx_train)
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
    assert_int_equal(llama_model_n_embd(m), 64);
    assert_int_equal(llama_model_n_head(m), 4);
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
    check_preset("demo.gguf", 32768);
}

static void ctx4k_model_has_a_4096_maximum(void **state)
{
    (void)state;
    check_preset("ctx4k.gguf", 4096);
}

int main(void)
{
    llama_log_set(quiet, NULL);
    llama_backend_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demo_model_loads_with_its_metadata),
        cmocka_unit_test(ctx4k_model_has_a_4096_maximum),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    llama_backend_free();
    return rc;
}
