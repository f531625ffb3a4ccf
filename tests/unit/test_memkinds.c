/* test_memkinds.c -- the pure math of issue 18: memory kinds (sched/estimate.h) and the
 * checkpoint decisions (engine/ckpt.h). Figures are worked out by hand from the shapes of
 * real models, so a change to either formula shows up here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine/ckpt.h"
#include "sched/estimate.h"
#include "sched/plan.h"

#define MIB (UINT64_C(1) << 20)

static void attention_layer_is_k_plus_v_in_f16(void **state)
{
    (void)state;
    /* Qwen2.5-0.5B: 2 KV heads x 64 = 128 for K and V, F16: 512 bytes per cell per layer */
    assert_int_equal(estimate_attn_layer_bytes(128, 128, 0, 2), 512);
    /* x 24 layers = 12 KiB per cell, 48 MiB for 4096 cells (what test_estimate uses) */
    assert_int_equal(24 * estimate_attn_layer_bytes(128, 128, 0, 2) * 4096, 48 * MIB);
}

static void mla_stores_the_latent_k_only(void **state)
{
    (void)state;
    /* DeepSeek-V3: kv_lora_rank 512 + RoPE 64 = 576 per cell per layer, no V: 1152 bytes,
     * where counting V (512) too would give 2176 */
    assert_int_equal(estimate_attn_layer_bytes(576, 512, 1, 2), 1152);
    assert_int_equal(estimate_attn_layer_bytes(576, 512, 0, 2), 2176);
    /* 61 layers: ~68.6 KiB per cell */
    assert_int_equal(61 * estimate_attn_layer_bytes(576, 512, 1, 2), 70272);
}

static void recurrent_layer_is_conv_window_plus_ssm_state(void **state)
{
    (void)state;
    /* Mamba2-like: d_conv 4, d_inner 512, 2 groups of d_state 128: conv channels 1024;
     * SSM 128 x 512; F32: (3 x 1024 + 65536) x 4 = 274432 (the random granitehybrid's
     * single recurrent layer, which test_archs measures against libllama) */
    assert_int_equal(estimate_recurrent_layer_bytes(4, 1024, 128 * 512, 4), 274432);
    /* LFM2 short convolution: L 3 over 256 channels, no SSM */
    assert_int_equal(estimate_recurrent_layer_bytes(3, 256, 0, 4), 2048);
    /* a 1-wide kernel keeps no window */
    assert_int_equal(estimate_recurrent_layer_bytes(1, 256, 0, 4), 0);
}

static void swa_cells_are_the_window_of_each_sequence_plus_a_micro_batch(void **state)
{
    (void)state;
    /* Gemma 3: n_swa 1024, 4 sequences, 512 micro-batch: 4608, a multiple of 256 */
    assert_int_equal(estimate_swa_cells(1024, 4, 512, 32768, 0), 4608);
    /* padded up to 256 */
    assert_int_equal(estimate_swa_cells(1000, 1, 512, 32768, 0), 1536);
    /* never more than the pool */
    assert_int_equal(estimate_swa_cells(4096, 4, 512, 8192, 0), 8192);
    assert_int_equal(estimate_swa_cells(32, 4, 512, 256, 0), 256);
    /* swa_full: the pool; no window: none */
    assert_int_equal(estimate_swa_cells(1024, 4, 512, 32768, 1), 32768);
    assert_int_equal(estimate_swa_cells(0, 4, 512, 32768, 0), 0);
}

static void pool_bytes_by_kind(void **state)
{
    (void)state;
    /* a Gemma-3-like shape: 10 full layers, 50 SWA ones, 2 KiB per layer per cell */
    struct estimate_memory m = {.full_bytes_per_cell = 10 * 2048, .swa_bytes_per_cell = 50 * 2048, .n_swa = 1024};
    struct estimate_pool_bytes b;
    estimate_pool(&m, 32768, 4, 512, 0, &b);
    assert_int_equal(b.swa, (uint64_t)50 * 2048 * 4608);
    assert_int_equal(b.kv, (uint64_t)10 * 2048 * 32768 + b.swa);
    assert_int_equal(b.recurrent, 0);
    estimate_pool(&m, 32768, 4, 512, 1, &b);
    assert_int_equal(b.kv, (uint64_t)60 * 2048 * 32768);
    /* the window is ~7x smaller than a full-size SWA cache at this pool */
    assert_true((uint64_t)50 * 2048 * 32768 / ((uint64_t)50 * 2048 * 4608) >= 7);
    /* a hybrid: the recurrent states are per sequence, whatever the pool */
    struct estimate_memory h = {.full_bytes_per_cell = 4096, .recurrent_bytes_per_seq = 75 * MIB};
    estimate_pool(&h, 4096, 4, 512, 0, &b);
    assert_int_equal(b.recurrent, 300 * MIB);
    assert_int_equal(b.kv, (uint64_t)4096 * 4096);
    estimate_pool(&h, 65536, 4, 512, 0, &b);
    assert_int_equal(b.recurrent, 300 * MIB);
}

static void the_pool_grows_by_the_layers_whose_cache_grows(void **state)
{
    (void)state;
    struct estimate_memory m = {.full_bytes_per_cell = 1000, .swa_bytes_per_cell = 5000, .n_swa = 1024,
                                .recurrent_bytes_per_seq = 123456};
    assert_int_equal(estimate_grow_bytes_per_cell(&m, 0), 1000);
    assert_int_equal(estimate_grow_bytes_per_cell(&m, 1), 6000);
    /* the load holds the fixed kinds once; the promise too, and what is left after it buys
     * full cells, two bytes for each (the resize transient, sched/plan.h) */
    struct estimate_model em = {.weights_bytes = 100 * MIB, .kv_bytes_per_cell = 1000, .fixed_kv_bytes = 50 * MIB};
    uint64_t load = estimate_load_bytes(&em);
    assert_int_equal(load, 100 * MIB + 1000 * 4096 + 50 * MIB + 64 * MIB);
    assert_int_equal(plan_reserve_bytes(&em, 0), 100 * MIB + 50 * MIB + 2 * 64 * MIB);
    int64_t cells = plan_budget_cells(&em, plan_reserve_bytes(&em, 0) + 2 * 1000 * 10000, 64, 1 << 20);
    assert_int_equal(cells, 10000);
}

/* ---- KV cache types (issue 15 item 3) ---------------------------------------------------- */

static void kv_types_parse_and_name(void **state)
{
    (void)state;
    assert_int_equal(estimate_kv_type_parse("f16"), ESTIMATE_KV_F16);
    assert_int_equal(estimate_kv_type_parse("Q8_0"), ESTIMATE_KV_Q8_0);
    assert_int_equal(estimate_kv_type_parse("q4_0"), ESTIMATE_KV_Q4_0);
    assert_int_equal(estimate_kv_type_parse("auto"), ESTIMATE_KV_AUTO);
    assert_int_equal(estimate_kv_type_parse("q5_1"), ESTIMATE_KV_INVALID);
    assert_int_equal(estimate_kv_type_parse(""), ESTIMATE_KV_INVALID);
    assert_int_equal(estimate_kv_type_parse(NULL), ESTIMATE_KV_INVALID);
    assert_string_equal(estimate_kv_type_name(ESTIMATE_KV_Q8_0), "q8_0");
    assert_string_equal(estimate_kv_type_name(ESTIMATE_KV_Q4_0), "q4_0");
    assert_string_equal(estimate_kv_type_name(ESTIMATE_KV_AUTO), "f16");
}

static void quantized_rows_are_blocks_of_32(void **state)
{
    (void)state;
    /* one 128-wide row: f16 256 bytes; q8_0 4 blocks of 34; q4_0 4 blocks of 18 */
    assert_int_equal(estimate_kv_bytes(ESTIMATE_KV_F16, 128), 256);
    assert_int_equal(estimate_kv_bytes(ESTIMATE_KV_Q8_0, 128), 136);
    assert_int_equal(estimate_kv_bytes(ESTIMATE_KV_Q4_0, 128), 72);
    /* Qwen2.5-0.5B: 24 layers of 2 KV heads x 64, K and V */
    struct estimate_shape q = {.full_k = 24 * 128, .full_v = 24 * 128, .head_gcd = 64, .n_attn_layers = 24};
    struct estimate_memory m;
    estimate_memory_of(&q, ESTIMATE_KV_F16, &m);
    assert_int_equal(m.full_bytes_per_cell, 12288);
    estimate_memory_of(&q, ESTIMATE_KV_Q8_0, &m);
    assert_int_equal(m.full_bytes_per_cell, 6528); /* 0.53 of f16 */
    estimate_memory_of(&q, ESTIMATE_KV_Q4_0, &m);
    assert_int_equal(m.full_bytes_per_cell, 3456); /* 0.28 */
    /* the recurrent state stays F32 */
    struct estimate_shape h = {.full_k = 128, .full_v = 128, .head_gcd = 64, .recurrent_bytes_per_seq = 5000};
    estimate_memory_of(&h, ESTIMATE_KV_Q4_0, &m);
    assert_int_equal(m.recurrent_bytes_per_seq, 5000);
    /* a quantized type needs its block to divide every head dimension */
    assert_true(estimate_kv_type_fits(&q, ESTIMATE_KV_Q8_0));
    q.head_gcd = 16; /* the demo model's heads */
    assert_false(estimate_kv_type_fits(&q, ESTIMATE_KV_Q8_0));
    assert_false(estimate_kv_type_fits(&q, ESTIMATE_KV_Q4_0));
    assert_true(estimate_kv_type_fits(&q, ESTIMATE_KV_F16));
}

static void fixed_memory_counts_windows_states_and_checkpoints(void **state)
{
    (void)state;
    /* full attention only: nothing fixed, no checkpoints */
    struct estimate_memory f = {.full_bytes_per_cell = 12288};
    assert_int_equal(estimate_fixed_kv_bytes(&f, 4, 512, 8, ESTIMATE_CKPT_BUDGET), 0);
    /* a hybrid: 4 states of 1 MiB, and 4 x 8 checkpoints of one state each */
    struct estimate_memory h = {.full_bytes_per_cell = 4096, .recurrent_bytes_per_seq = MIB};
    assert_int_equal(estimate_fixed_kv_bytes(&h, 4, 512, 8, ESTIMATE_CKPT_BUDGET), 4 * MIB + 32 * MIB);
    /* ... bounded by the checkpoints' budget: 75 MiB states (Qwen3-Next-like) */
    h.recurrent_bytes_per_seq = 75 * MIB;
    assert_int_equal(estimate_fixed_kv_bytes(&h, 4, 512, 8, ESTIMATE_CKPT_BUDGET), 300 * MIB + ESTIMATE_CKPT_BUDGET);
    /* sliding window: the window cells at the initial pool, checkpoints of a window each */
    struct estimate_memory w = {.full_bytes_per_cell = 1000, .swa_bytes_per_cell = 100, .n_swa = 1024};
    uint64_t win = (uint64_t)100 * estimate_swa_cells(1024, 4, 512, ESTIMATE_INITIAL_POOL, 0);
    assert_int_equal(estimate_fixed_kv_bytes(&w, 4, 512, 8, ESTIMATE_CKPT_BUDGET), win + 32 * 100 * (1024 + 512));
    /* what admission fills from a shape */
    struct estimate_shape s = {.full_k = 64, .full_v = 64, .recurrent_bytes_per_seq = MIB, .head_gcd = 32};
    struct estimate_model em = {0};
    estimate_model_kv(&em, &s, ESTIMATE_KV_Q8_0, 4, 8);
    assert_int_equal(em.kv_bytes_per_cell, 4 * 34);
    assert_int_equal(em.fixed_kv_bytes, 4 * MIB + 32 * MIB);
}

static void checkpoint_stops_before_and_at_the_prompt_end(void **state)
{
    (void)state;
    assert_int_equal(ckpt_next_stop(64, 0), 60);
    assert_int_equal(ckpt_next_stop(64, 59), 60);
    assert_int_equal(ckpt_next_stop(64, 60), 64);
    assert_int_equal(ckpt_next_stop(3, 0), 3); /* too short for the first stop */
    assert_true(ckpt_is_stop(64, 60, 0));
    assert_true(ckpt_is_stop(64, 64, 60));
    assert_false(ckpt_is_stop(64, 60, 60)); /* it started there: that one exists */
    assert_false(ckpt_is_stop(64, 61, 0));
    assert_false(ckpt_is_stop(64, 0, 0));
}

static void checkpoint_pick_is_the_newest_within_the_prefix(void **state)
{
    (void)state;
    struct ckpt ck[4] = {{.n = 60, .used = 5}, {.n = 92, .used = 2}, {.n = 64, .used = 9}, {.n = 88, .used = 1}};
    assert_int_equal(ckpt_pick(ck, 4, 64), 2);
    assert_int_equal(ckpt_pick(ck, 4, 63), 0);
    assert_int_equal(ckpt_pick(ck, 4, 91), 3);
    assert_int_equal(ckpt_pick(ck, 4, 59), -1);
    assert_int_equal(ckpt_pick(ck, 0, 100), -1);
    assert_int_equal(ckpt_oldest(ck, 4), 3);
    ck[3].used = 2; /* a tie with n = 92: the shorter goes */
    assert_int_equal(ckpt_oldest(ck, 4), 3);
    assert_int_equal(ckpt_oldest(ck, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attention_layer_is_k_plus_v_in_f16),
        cmocka_unit_test(mla_stores_the_latent_k_only),
        cmocka_unit_test(recurrent_layer_is_conv_window_plus_ssm_state),
        cmocka_unit_test(swa_cells_are_the_window_of_each_sequence_plus_a_micro_batch),
        cmocka_unit_test(pool_bytes_by_kind),
        cmocka_unit_test(the_pool_grows_by_the_layers_whose_cache_grows),
        cmocka_unit_test(kv_types_parse_and_name),
        cmocka_unit_test(quantized_rows_are_blocks_of_32),
        cmocka_unit_test(fixed_memory_counts_windows_states_and_checkpoints),
        cmocka_unit_test(checkpoint_stops_before_and_at_the_prompt_end),
        cmocka_unit_test(checkpoint_pick_is_the_newest_within_the_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
