/* test_gguf_info.c -- src/store/gguf_info.c: GGUF metadata of the generated models, crafted
 * headers (embedding model, per-layer head counts, wrongly typed keys) and broken files. */
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

#include "ggml.h"
#include "gguf.h"
#include "store/gguf_info.h"

static char tmpdir[64];

static void model_path(char *buf, size_t len, const char *file)
{
    snprintf(buf, len, "%s/%s", BELLOWS_TEST_MODELS, file);
}

static void tmp_path(char *buf, size_t len, const char *file)
{
    snprintf(buf, len, "%s/%s", tmpdir, file);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* The first LEN bytes of the demo model. */
static void write_prefix_of_demo(const char *path, size_t len)
{
    char src[1024];
    model_path(src, sizeof src, "demo.gguf");
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    char *buf = malloc(len ? len : 1);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
    write_file(path, buf, len);
    free(buf);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void demo_model_metadata(void **state)
{
    (void)state;
    char path[1024];
    model_path(path, sizeof path, "demo.gguf");
    struct gguf_info *info = NULL;
    struct bw_err err = {0};
    assert_int_equal(gguf_info_read(path, &info, &err), BW_OK);

    assert_string_equal(info->arch, "qwen2");
    assert_int_equal(info->n_ctx_train, 32768);
    assert_int_equal(info->n_embd, 256); /* a dimension for each of its words (tools/mkmodel_words.h) */
    assert_int_equal(info->n_layer, 2);
    assert_int_equal(info->n_head, 16);
    assert_int_equal(info->n_head_kv, 2);
    assert_int_equal(info->key_length, 16); /* 256 / 16: no explicit key_length */
    assert_int_equal(info->value_length, 16);
    /* 2 layers x 2 KV heads x (16 + 16) x 2 bytes */
    assert_int_equal(info->kv_bytes_per_token, 256);
    assert_int_equal(info->file_type, 7);
    assert_string_equal(info->quant, "Q8_0");
    assert_int_equal(info->file_size, (uint64_t)file_size(path));
    assert_non_null(info->name);

    /* Parameters and bytes, recomputed independently from gguf.h. */
    struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, ip);
    assert_non_null(g);
    uint64_t n_params = 0, bytes = 0;
    for (int64_t t = 0; t < gguf_get_n_tensors(g); t++) {
        const int64_t *ne = gguf_get_tensor_ne(g, t);
        n_params += (uint64_t)(ne[0] * ne[1] * ne[2] * ne[3]);
        bytes += gguf_get_tensor_size(g, t);
    }
    assert_int_equal(info->n_tensors, (uint64_t)gguf_get_n_tensors(g));
    assert_int_equal(info->n_kvs, (size_t)gguf_get_n_kv(g));
    gguf_free(g);
    assert_int_equal(info->n_params, n_params);
    assert_int_equal(info->tensor_bytes, bytes);
    char human[16];
    gguf_info_human_number(n_params, human, sizeof human);
    assert_string_equal(info->param_size, human);

    assert_non_null(info->chat_template);
    assert_non_null(strstr(info->chat_template, "<|im_start|>"));
    assert_false(info->has_pooling);
    assert_int_equal(info->n_capabilities, 1);
    assert_string_equal(info->capabilities[0], "completion");

    /* model_info: scalars by value, the tokenizer's arrays only described. */
    const struct gguf_info_kv *kv = gguf_info_find(info, "qwen2.context_length");
    assert_non_null(kv);
    assert_int_equal(kv->kind, GGUF_INFO_UINT);
    assert_int_equal(kv->u, 32768);
    kv = gguf_info_find(info, "general.architecture");
    assert_int_equal(kv->kind, GGUF_INFO_STRING);
    assert_string_equal(kv->str, "qwen2");
    kv = gguf_info_find(info, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->kind, GGUF_INFO_ARRAY);
    assert_int_equal(kv->elem_kind, GGUF_INFO_STRING);
    assert_int_equal(kv->n_elems, 151936);
    assert_null(kv->nums);
    assert_string_equal(kv->type_name, "arr");
    kv = gguf_info_find(info, "tokenizer.ggml.token_type");
    assert_non_null(kv);
    assert_int_equal(kv->elem_kind, GGUF_INFO_INT);
    assert_null(kv->nums); /* 151936 numbers are not copied */
    assert_null(gguf_info_find(info, "no.such.key"));
    gguf_info_free(info);
}

static void ctx4k_model_context(void **state)
{
    (void)state;
    char path[1024];
    model_path(path, sizeof path, "ctx4k.gguf");
    struct gguf_info *info = NULL;
    assert_int_equal(gguf_info_read(path, &info, NULL), BW_OK);
    assert_int_equal(info->n_ctx_train, 4096);
    assert_string_equal(info->capabilities[0], "completion");
    gguf_info_free(info);
}

static void human_number_matches_ollama(void **state)
{
    (void)state;
    static const struct {
        uint64_t n;
        const char *want;
    } cases[] = {
        {494032768, "494.03M"}, {7615616512ULL, "7.6B"}, {7000000000ULL, "7B"}, {1000000, "1M"},
        {135000, "135K"},       {999, "999"},            {0, "0"},             {70553706496ULL, "70.6B"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[16];
        gguf_info_human_number(cases[i].n, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
}

static void ftype_names_match_ollama(void **state)
{
    (void)state;
    assert_string_equal(gguf_info_ftype_name(0), "F32");
    assert_string_equal(gguf_info_ftype_name(1), "F16");
    assert_string_equal(gguf_info_ftype_name(2), "Q4_0");
    assert_string_equal(gguf_info_ftype_name(7), "Q8_0");
    assert_string_equal(gguf_info_ftype_name(15), "Q4_K_M");
    assert_string_equal(gguf_info_ftype_name(18), "Q6_K");
    assert_string_equal(gguf_info_ftype_name(32), "BF16");
    assert_string_equal(gguf_info_ftype_name(4), "unknown");
    assert_string_equal(gguf_info_ftype_name(-1), "unknown");
    assert_string_equal(gguf_info_ftype_name(1000), "unknown");
}

/* A header-only GGUF made with gguf.h's writer. */
static void write_crafted(const char *path, void (*fill)(struct gguf_context *))
{
    struct gguf_context *g = gguf_init_empty();
    fill(g);
    assert_true(gguf_write_to_file(g, path, false));
    gguf_free(g);
}

static void fill_embedding(struct gguf_context *g)
{
    gguf_set_val_str(g, "general.architecture", "bert");
    gguf_set_val_u32(g, "bert.context_length", 512);
    gguf_set_val_u32(g, "bert.pooling_type", 1);
    gguf_set_val_u32(g, "general.file_type", 1);
}

static void embedding_model_has_embedding_capability(void **state)
{
    (void)state;
    char path[1024];
    tmp_path(path, sizeof path, "embed.gguf");
    write_crafted(path, fill_embedding);
    struct gguf_info *info = NULL;
    assert_int_equal(gguf_info_read(path, &info, NULL), BW_OK);
    assert_true(info->has_pooling);
    assert_int_equal(info->pooling_type, 1);
    assert_int_equal(info->n_capabilities, 1);
    assert_string_equal(info->capabilities[0], "embedding");
    assert_string_equal(info->quant, "F16");
    assert_int_equal(info->n_params, 0);
    assert_null(info->chat_template);
    gguf_info_free(info);
}

static void fill_odd(struct gguf_context *g)
{
    gguf_set_val_str(g, "general.architecture", "x");
    gguf_set_val_str(g, "x.context_length", "lots");   /* wrong type: ignored, no abort */
    gguf_set_val_f32(g, "general.file_type", 2.0f);    /* wrong type too */
    gguf_set_val_u32(g, "x.block_count", 3);
    gguf_set_val_u32(g, "x.embedding_length", 32);
    gguf_set_val_u32(g, "x.attention.head_count", 4);
    const int32_t kv_heads[3] = {1, 2, 3};
    gguf_set_arr_data(g, "x.attention.head_count_kv", GGUF_TYPE_INT32, kv_heads, 3);
    gguf_set_val_u32(g, "x.attention.key_length", 8);
    gguf_set_val_u32(g, "x.attention.value_length", 8);
    gguf_set_val_bool(g, "x.flag", true);
    gguf_set_val_i64(g, "x.neg", -5);
}

static void per_layer_heads_and_wrong_types(void **state)
{
    (void)state;
    char path[1024];
    tmp_path(path, sizeof path, "odd.gguf");
    write_crafted(path, fill_odd);
    struct gguf_info *info = NULL;
    assert_int_equal(gguf_info_read(path, &info, NULL), BW_OK);
    assert_int_equal(info->n_ctx_train, 0);
    assert_int_equal(info->file_type, -1);
    assert_string_equal(info->quant, "unknown");
    assert_int_equal(info->n_head_kv, 3); /* the largest layer */
    /* (1 + 2 + 3) heads x (8 + 8) x 2 bytes */
    assert_int_equal(info->kv_bytes_per_token, 192);
    const struct gguf_info_kv *kv = gguf_info_find(info, "x.attention.head_count_kv");
    assert_int_equal(kv->kind, GGUF_INFO_ARRAY);
    assert_int_equal(kv->elem_kind, GGUF_INFO_INT);
    assert_int_equal(kv->n_elems, 3);
    assert_non_null(kv->nums);
    assert_true(kv->nums[2] == 3.0);
    assert_true(gguf_info_find(info, "x.flag")->b);
    assert_int_equal(gguf_info_find(info, "x.neg")->i, -5);
    assert_true(gguf_info_find(info, "general.file_type")->f == 2.0);
    gguf_info_free(info);
}

/* ---- memory kinds from the GGUF (issue 18), before any runner exists -------------------- */

/* A GGUF with metadata and small zeroed F32 tensors, written whole (the reader checks that
 * tensor data lies inside the file). */
struct craft_tensor {
    const char *name;
    int64_t ne0, ne1;
};

static void write_model(const char *path, void (*meta)(struct gguf_context *), const struct craft_tensor *t, size_t n)
{
    struct ggml_init_params ip = {.mem_size = 4u << 20, .mem_buffer = NULL, .no_alloc = false};
    struct ggml_context *ctx = ggml_init(ip);
    assert_non_null(ctx);
    struct gguf_context *g = gguf_init_empty();
    meta(g);
    for (size_t i = 0; i < n; i++) {
        struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, t[i].ne0, t[i].ne1);
        ggml_set_name(x, t[i].name);
        memset(x->data, 0, ggml_nbytes(x));
        gguf_add_tensor(g, x);
    }
    assert_true(gguf_write_to_file(g, path, false));
    gguf_free(g);
    ggml_free(ctx);
}

/* Gemma-2-like: 4 layers, every other one sliding-window (the architecture's default
 * period 2: layers 0 and 2), 1 KV head of 32. */
static void meta_swa(struct gguf_context *g)
{
    gguf_set_val_str(g, "general.architecture", "gemma2");
    gguf_set_val_u32(g, "gemma2.block_count", 4);
    gguf_set_val_u32(g, "gemma2.embedding_length", 64);
    gguf_set_val_u32(g, "gemma2.attention.head_count", 2);
    gguf_set_val_u32(g, "gemma2.attention.head_count_kv", 1);
    gguf_set_val_u32(g, "gemma2.attention.key_length", 32);
    gguf_set_val_u32(g, "gemma2.attention.value_length", 32);
    gguf_set_val_u32(g, "gemma2.attention.sliding_window", 16);
}

/* A Granite-4-like hybrid: two Mamba-2 layers (conv 4 over 96 channels, state 16 x 64) and
 * one attention layer of 2 KV heads of 16. */
static void meta_hybrid(struct gguf_context *g)
{
    gguf_set_val_str(g, "general.architecture", "granitehybrid");
    gguf_set_val_u32(g, "granitehybrid.block_count", 3);
    gguf_set_val_u32(g, "granitehybrid.embedding_length", 64);
    gguf_set_val_u32(g, "granitehybrid.attention.head_count", 4);
    gguf_set_val_u32(g, "granitehybrid.attention.head_count_kv", 2);
    gguf_set_val_u32(g, "granitehybrid.ssm.state_size", 16);
    gguf_set_val_u32(g, "granitehybrid.ssm.inner_size", 64);
}

/* DeepSeek-2-like MLA: the cache holds the latent (key_length 96: rank 64 + RoPE 32), no V. */
static void meta_mla(struct gguf_context *g)
{
    gguf_set_val_str(g, "general.architecture", "deepseek2");
    gguf_set_val_u32(g, "deepseek2.block_count", 2);
    gguf_set_val_u32(g, "deepseek2.embedding_length", 64);
    gguf_set_val_u32(g, "deepseek2.attention.head_count", 4);
    gguf_set_val_u32(g, "deepseek2.attention.head_count_kv", 1);
    gguf_set_val_u32(g, "deepseek2.attention.key_length", 96);
    gguf_set_val_u32(g, "deepseek2.attention.value_length", 64);
    gguf_set_val_u32(g, "deepseek2.attention.key_length_mla", 48);
    gguf_set_val_u32(g, "deepseek2.attention.kv_lora_rank", 64);
}

static void memory_kinds_are_read_before_any_runner(void **state)
{
    (void)state;
    char path[1024];
    struct gguf_info *info = NULL;

    tmp_path(path, sizeof path, "swa.gguf");
    const struct craft_tensor swa[] = {
        {"blk.0.attn_q.weight", 64, 64}, {"blk.0.attn_k.weight", 64, 32}, {"blk.0.attn_v.weight", 64, 32},
        {"blk.1.attn_q.weight", 64, 64}, {"blk.1.attn_k.weight", 64, 32}, {"blk.1.attn_v.weight", 64, 32},
        {"blk.2.attn_q.weight", 64, 64}, {"blk.2.attn_k.weight", 64, 32}, {"blk.2.attn_v.weight", 64, 32},
        {"blk.3.attn_q.weight", 64, 64}, {"blk.3.attn_k.weight", 64, 32}, {"blk.3.attn_v.weight", 64, 32}};
    write_model(path, meta_swa, swa, sizeof swa / sizeof swa[0]);
    assert_int_equal(gguf_info_read(path, &info, NULL), BW_OK);
    assert_int_equal(info->shape.full_k, 64); /* layers 1 and 3 */
    assert_int_equal(info->shape.full_v, 64);
    assert_int_equal(info->shape.swa_k, 64); /* layers 0 and 2 */
    assert_int_equal(info->shape.n_swa, 16);
    assert_int_equal(info->shape.head_gcd, 32);
    /* what grows with the context: the two full layers only (every layer counted: 512) */
    assert_int_equal(info->kv_bytes_per_token, 2 * (32 + 32) * 2);
    struct estimate_model em = {0};
    estimate_model_kv(&em, &info->shape, ESTIMATE_KV_F16, 4, 8);
    assert_int_equal(em.kv_bytes_per_cell, 256);
    /* the window: 4 x 16 + 512 cells padded to 768, 256 B each; checkpoints of 528 cells */
    assert_int_equal(em.fixed_kv_bytes, (uint64_t)768 * 256 + 4 * 8 * (16 + 512) * 256);
    gguf_info_free(info);

    tmp_path(path, sizeof path, "hybrid.gguf");
    const struct craft_tensor hyb[] = {{"blk.0.ssm_conv1d.weight", 4, 96},
                                       {"blk.1.ssm_conv1d.weight", 4, 96},
                                       {"blk.2.attn_q.weight", 64, 64},
                                       {"blk.2.attn_k.weight", 64, 32},
                                       {"blk.2.attn_v.weight", 64, 32}};
    write_model(path, meta_hybrid, hyb, sizeof hyb / sizeof hyb[0]);
    assert_int_equal(gguf_info_read(path, &info, NULL), BW_OK);
    /* (3 x 96 + 16 x 64) x 4 bytes per recurrent layer */
    assert_int_equal(info->shape.recurrent_bytes_per_seq, 2 * (3 * 96 + 16 * 64) * 4);
    assert_int_equal(info->shape.n_recurrent_layers, 2);
    assert_int_equal(info->kv_bytes_per_token, (32 + 32) * 2); /* every layer counted: 384 */
    estimate_model_kv(&em, &info->shape, ESTIMATE_KV_F16, 4, 8);
    assert_int_equal(em.fixed_kv_bytes, (4 + 4 * 8) * info->shape.recurrent_bytes_per_seq);
    assert_false(estimate_kv_type_fits(&info->shape, ESTIMATE_KV_Q8_0)); /* heads of 16 */
    gguf_info_free(info);

    tmp_path(path, sizeof path, "mla.gguf");
    const struct craft_tensor mla[] = {{"blk.0.attn_q_a.weight", 64, 32},
                                       {"blk.0.attn_kv_a_mqa.weight", 64, 96},
                                       {"blk.1.attn_q_a.weight", 64, 32},
                                       {"blk.1.attn_kv_a_mqa.weight", 64, 96}};
    write_model(path, meta_mla, mla, sizeof mla / sizeof mla[0]);
    assert_int_equal(gguf_info_read(path, &info, NULL), BW_OK);
    assert_true(info->shape.mla);
    assert_int_equal(info->shape.full_v, 0);
    assert_int_equal(info->kv_bytes_per_token, 2 * 96 * 2); /* K and V of 4 heads counted: 640 */
    assert_true(estimate_kv_type_fits(&info->shape, ESTIMATE_KV_Q8_0)); /* 96 and 64 */
    gguf_info_free(info);
}

static void kv_type_blocks_are_ggml_s(void **state)
{
    (void)state;
    static const struct {
        int t;
        enum ggml_type g;
    } m[] = {{ESTIMATE_KV_F16, GGML_TYPE_F16}, {ESTIMATE_KV_Q8_0, GGML_TYPE_Q8_0}, {ESTIMATE_KV_Q4_0, GGML_TYPE_Q4_0}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        assert_int_equal(estimate_kv_block_elems(m[i].t), ggml_blck_size(m[i].g));
        assert_int_equal(estimate_kv_block_bytes(m[i].t), ggml_type_size(m[i].g));
        assert_int_equal(estimate_kv_bytes(m[i].t, 4096), ggml_row_size(m[i].g, 4096));
        assert_string_equal(estimate_kv_type_name(m[i].t), ggml_type_name(m[i].g));
    }
}

/* Every broken input gives BW_EINVAL and a message naming the problem. */
static void expect_not_gguf(const char *path)
{
    struct gguf_info *info = (struct gguf_info *)0x1;
    struct bw_err err = {0};
    assert_int_equal(gguf_info_read(path, &info, &err), BW_EINVAL);
    assert_int_equal(err.code, BW_EINVAL);
    assert_non_null(strstr(err.msg, "is not a GGUF file"));
    assert_ptr_equal(info, (struct gguf_info *)0x1); /* untouched */
}

static void broken_files_are_rejected(void **state)
{
    (void)state;
    char path[1024];

    tmp_path(path, sizeof path, "empty.gguf");
    write_file(path, "", 0);
    expect_not_gguf(path);

    /* Random bytes, then random bytes behind a valid magic and version. */
    uint8_t junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    tmp_path(path, sizeof path, "random.gguf");
    write_file(path, junk, sizeof junk);
    expect_not_gguf(path);
    memcpy(junk, "GGUF\x03\x00\x00\x00", 8);
    write_file(path, junk, sizeof junk);
    expect_not_gguf(path);

    /* Truncated copies of the demo model: in the header, in the tokenizer, in the tensor
     * data, and one byte short. */
    char demo[1024];
    model_path(demo, sizeof demo, "demo.gguf");
    long full = file_size(demo);
    const long cuts[] = {3, 4, 10, 24, 1000, 100000, full / 2, full - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tmp_path(path, sizeof path, "cut.gguf");
        write_prefix_of_demo(path, (size_t)cuts[i]);
        expect_not_gguf(path);
    }

    struct bw_err err;
    struct gguf_info *info = NULL;
    tmp_path(path, sizeof path, "missing.gguf");
    assert_int_equal(gguf_info_read(path, &info, &err), BW_ENOTFOUND);
    assert_int_equal(gguf_info_read(tmpdir, &info, &err), BW_EINVAL); /* a directory */
    assert_null(info);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bellows-gguf-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"embed.gguf", "odd.gguf",   "empty.gguf", "random.gguf",
                                        "cut.gguf",   "swa.gguf",   "hybrid.gguf", "mla.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        tmp_path(path, sizeof path, files[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

int main(void)
{
    ggml_log_set(quiet, NULL); /* gguf logs every rejected file; the asserts say enough */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demo_model_metadata),
        cmocka_unit_test(ctx4k_model_context),
        cmocka_unit_test(human_number_matches_ollama),
        cmocka_unit_test(ftype_names_match_ollama),
        cmocka_unit_test(embedding_model_has_embedding_capability),
        cmocka_unit_test(per_layer_heads_and_wrong_types),
        cmocka_unit_test(broken_files_are_rejected),
        cmocka_unit_test(memory_kinds_are_read_before_any_runner),
        cmocka_unit_test(kv_type_blocks_are_ggml_s),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
