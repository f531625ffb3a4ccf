/* test_estimate.c -- unit tests for src/sched/estimate.c (load estimate, KV budget,
 * eviction choice, GPU placement) and src/sched/duration.c (keep_alive parsing,
 * anchors.md §1.5). All pure: every expectation is an exact number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sched/estimate.h"
#include "sched/sched.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define S (INT64_C(1000000000))

/* Shapes of the generated models (docs/build.md): the demo (2 layers, 2 KV heads of 16,
 * f16 KV: 2 x 2 x 32 x 2 = 256 B per cell, ~19.8 MiB Q8_0 weights) and bench-0.5b (24
 * layers, 2 KV heads of 64: 24 x 2 x 128 x 2 = 12288 B per cell, ~639 MiB weights). */
static const struct estimate_model demo = {.weights_bytes = 20742144, .kv_bytes_per_cell = 256,
                                           .n_ctx_train = 32768};
static const struct estimate_model half_b = {.weights_bytes = 669777920, .kv_bytes_per_cell = 12288,
                                             .n_ctx_train = 32768};
/* An 8B Q4-like shape (32 layers x 8 KV heads x 128 x 2 x 2 B = 128 KiB per cell). */
static const struct estimate_model eight_b = {.weights_bytes = 4920000000, .kv_bytes_per_cell = 131072,
                                              .n_ctx_train = 131072};

/* ---- load estimate ------------------------------------------------------------------- */

static void load_estimate_demo_is_weights_plus_1_mib_kv_plus_64_mib_floor(void **state)
{
    assert_int_equal(estimate_compute_bytes(&demo), 64 * MIB);
    /* 20742144 + 4096 x 256 + 67108864 */
    assert_int_equal(estimate_load_bytes(&demo), UINT64_C(88899584));
}

static void load_estimate_half_b_is_weights_plus_48_mib_kv_plus_64_mib_floor(void **state)
{
    /* weights / 16 = 41861120 < 64 MiB: the floor wins. */
    assert_int_equal(estimate_compute_bytes(&half_b), 64 * MIB);
    /* 669777920 + 4096 x 12288 + 67108864 */
    assert_int_equal(estimate_load_bytes(&half_b), UINT64_C(787218432));
}

static void load_estimate_large_model_compute_is_a_sixteenth_of_weights(void **state)
{
    assert_int_equal(estimate_compute_bytes(&eight_b), UINT64_C(307500000));
    /* 4920000000 + 4096 x 131072 + 307500000 */
    assert_int_equal(estimate_load_bytes(&eight_b), UINT64_C(5764370912));
}

/* ---- eviction ------------------------------------------------------------------------ */

enum { SENTINEL = -77 };

static void reset(int *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = SENTINEL;
}

static void eviction_none_when_it_fits(void **state)
{
    struct estimate_loaded l[] = {{.bytes = 100 * MIB, .expires_in_ns = 10 * S}};
    int v[1];
    reset(v, 1);
    assert_int_equal(estimate_pick_evictions(l, 1, 100 * MIB, 100 * MIB, 3, v), 0);
    assert_int_equal(v[0], SENTINEL);
    assert_int_equal(estimate_pick_evictions(NULL, 0, 1 * GIB, 2 * GIB, 1, v), 0);
}

static void eviction_takes_shortest_keep_alive_first(void **state)
{
    struct estimate_loaded l[] = {
        {.bytes = 100 * MIB, .expires_in_ns = 10 * S},
        {.bytes = 100 * MIB, .expires_in_ns = 2 * S},
        {.bytes = 100 * MIB, .expires_in_ns = INT64_MAX},
    };
    int v[3];
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 150 * MIB, 60 * MIB, 5, v), 1);
    assert_int_equal(v[0], 1);
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 250 * MIB, 60 * MIB, 5, v), 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[2], SENTINEL);
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 350 * MIB, 60 * MIB, 5, v), 3);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[2], 2); /* forever goes last */
}

static void eviction_equal_keep_alive_goes_by_index(void **state)
{
    struct estimate_loaded l[] = {
        {.bytes = 100 * MIB, .expires_in_ns = 5 * S},
        {.bytes = 100 * MIB, .expires_in_ns = 5 * S},
        {.bytes = 100 * MIB, .expires_in_ns = 5 * S},
    };
    int v[3];
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 200 * MIB, 0, 5, v), 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 1);
}

static void eviction_never_takes_a_busy_model(void **state)
{
    struct estimate_loaded l[] = {
        {.bytes = 100 * MIB, .expires_in_ns = 10 * S},
        {.bytes = 900 * MIB, .n_calls = 1, .expires_in_ns = 1 * S},
        {.bytes = 100 * MIB, .expires_in_ns = INT64_MAX},
    };
    int v[3];
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 150 * MIB, 0, 5, v), 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 2);
}

static void eviction_impossible_returns_minus_one_and_writes_nothing(void **state)
{
    struct estimate_loaded l[] = {
        {.bytes = 100 * MIB, .expires_in_ns = 10 * S},
        {.bytes = 900 * MIB, .n_calls = 2, .expires_in_ns = 1 * S},
    };
    int v[2];
    reset(v, 2);
    /* Only 100 MiB can be freed; the 900 MiB one is busy. */
    assert_int_equal(estimate_pick_evictions(l, 2, 500 * MIB, 300 * MIB, 5, v), -1);
    assert_int_equal(v[0], SENTINEL);
    assert_int_equal(v[1], SENTINEL);
    /* Nothing loaded and not enough memory. */
    assert_int_equal(estimate_pick_evictions(NULL, 0, 2 * GIB, 1 * GIB, 3, v), -1);
}

static void eviction_respects_max_loaded(void **state)
{
    struct estimate_loaded l[] = {
        {.bytes = 10 * MIB, .expires_in_ns = 30 * S},
        {.bytes = 10 * MIB, .expires_in_ns = 20 * S},
        {.bytes = 10 * MIB, .expires_in_ns = 40 * S},
    };
    int v[3];
    /* Memory is plenty; 3 loaded at max 3: one must go so that a fourth... a third fits. */
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 1 * MIB, 10 * GIB, 3, v), 1);
    assert_int_equal(v[0], 1);
    /* Max 2 with 3 loaded: two go. */
    reset(v, 3);
    assert_int_equal(estimate_pick_evictions(l, 3, 1 * MIB, 10 * GIB, 2, v), 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 0);
    /* Max 4: nothing to do. */
    assert_int_equal(estimate_pick_evictions(l, 3, 1 * MIB, 10 * GIB, 4, v), 0);
}

static void eviction_max_loaded_with_all_busy_is_impossible(void **state)
{
    struct estimate_loaded l[] = {
        {.bytes = 10 * MIB, .n_calls = 1, .expires_in_ns = 1 * S},
        {.bytes = 10 * MIB, .n_calls = 1, .expires_in_ns = 1 * S},
    };
    int v[2];
    reset(v, 2);
    assert_int_equal(estimate_pick_evictions(l, 2, 1 * MIB, 10 * GIB, 2, v), -1);
    assert_int_equal(v[0], SENTINEL);
}

static void eviction_count_and_bytes_must_both_hold(void **state)
{
    /* The count alone needs one eviction (the 1 s one); bytes need the 50 s one too. */
    struct estimate_loaded l[] = {
        {.bytes = 10 * MIB, .expires_in_ns = 1 * S},
        {.bytes = 500 * MIB, .expires_in_ns = 50 * S},
    };
    int v[2];
    reset(v, 2);
    assert_int_equal(estimate_pick_evictions(l, 2, 400 * MIB, 100 * MIB, 2, v), 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 1);
}

/* ---- GPU placement ------------------------------------------------------------------- */

static void placement_one_gpu_fits_all(void **state)
{
    struct estimate_device d[] = {{.free_bytes = 10 * GIB}};
    int out[1] = {SENTINEL};
    assert_int_equal(estimate_place_layers(d, 1, 24, 100 * MIB, 1 * GIB, -1, out), 24);
    assert_int_equal(out[0], 24);
}

static void placement_two_gpus_split_by_room(void **state)
{
    /* Rooms of 1050 MiB and 7 GiB: 24 layers in proportion are 3.07 and 20.9, floored to 3
     * and 20; the one left over goes to the first with room. */
    struct estimate_device d[] = {{.free_bytes = 1 * GIB + 10 * 100 * MIB + 50 * MIB}, {.free_bytes = 8 * GIB}};
    int out[2] = {SENTINEL, SENTINEL};
    assert_int_equal(estimate_place_layers(d, 2, 24, 100 * MIB, 1 * GIB, -1, out), 24);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 20);
    /* two equal devices (two RPC servers of one kind) share evenly */
    struct estimate_device e[] = {{.free_bytes = 8 * GIB}, {.free_bytes = 8 * GIB}};
    assert_int_equal(estimate_place_layers(e, 2, 25, 100 * MIB, 1 * GIB, -1, out), 25);
    assert_int_equal(out[0], 13);
    assert_int_equal(out[1], 12);
}

static void placement_share_is_capped_by_what_fits(void **state)
{
    /* Rooms of 5 layers and 100: 20 layers in proportion give the first 0.95, floored to 0;
     * the rounding fills it first (it has room), the second takes its share. */
    struct estimate_device d[] = {{.free_bytes = 1 * GIB + 5 * 100 * MIB}, {.free_bytes = 1 * GIB + 100 * 100 * MIB}};
    int out[2] = {SENTINEL, SENTINEL};
    assert_int_equal(estimate_place_layers(d, 2, 20, 100 * MIB, 1 * GIB, -1, out), 20);
    assert_int_equal(out[0] + out[1], 20);
    assert_true(out[0] <= 5);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 19);
}

static void placement_partial_when_gpus_are_too_small(void **state)
{
    struct estimate_device d[] = {{.free_bytes = 1 * GIB + 300 * MIB}, {.free_bytes = 1 * GIB + 500 * MIB}};
    int out[2] = {SENTINEL, SENTINEL};
    assert_int_equal(estimate_place_layers(d, 2, 24, 100 * MIB, 1 * GIB, -1, out), 8);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 5);
}

static void placement_gpu_below_its_reserve_gets_none(void **state)
{
    struct estimate_device d[] = {{.free_bytes = 1 * GIB - 1}, {.free_bytes = 1 * GIB}, {.free_bytes = 4 * GIB}};
    int out[3] = {SENTINEL, SENTINEL, SENTINEL};
    assert_int_equal(estimate_place_layers(d, 3, 24, 100 * MIB, 1 * GIB, -1, out), 24);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0); /* exactly the reserve: no room for a layer */
    assert_int_equal(out[2], 24);
}

static void placement_num_gpu_caps_the_total(void **state)
{
    struct estimate_device d[] = {{.free_bytes = 1 * GIB + 3 * 100 * MIB}, {.free_bytes = 8 * GIB}};
    int out[2] = {SENTINEL, SENTINEL};
    /* rooms of 300 MiB and 7 GiB: 5 layers in proportion are 0.2 and 4.8 -> 0 and 4, the
     * one left to the first */
    assert_int_equal(estimate_place_layers(d, 2, 24, 100 * MIB, 1 * GIB, 5, out), 5);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 4);
    /* num_gpu above n_layers: n_layers wins (0.96 and 23.04 -> 0 and 23, then 1 and 23). */
    assert_int_equal(estimate_place_layers(d, 2, 24, 100 * MIB, 1 * GIB, 99, out), 24);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 23);
}

static void placement_num_gpu_zero_places_nothing(void **state)
{
    struct estimate_device d[] = {{.free_bytes = 80 * GIB}, {.free_bytes = 80 * GIB}};
    int out[2] = {SENTINEL, SENTINEL};
    assert_int_equal(estimate_place_layers(d, 2, 24, 100 * MIB, 1 * GIB, 0, out), 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
}

/* ---- keep_alive durations (anchors.md §1.5) ------------------------------------------ */

static void duration_parses_go_strings_and_bare_seconds(void **state)
{
    static const struct {
        const char *in;
        int64_t ns;
    } cases[] = {
        {"5m", 300 * S},
        {"1h30m", 5400 * S},
        {"300ms", 300000000},
        {"1.5h", 5400 * S},
        {"-1s", -1 * S},
        {"-1m", -60 * S},
        {"0", 0},
        {"0s", 0},
        {"-0", 0},
        {"300", 300 * S},
        {"-1", -1 * S},
        {"3.5", 3500000000},
        {"24h", 86400 * S},
        {"+5m", 300 * S},
        {"7ns", 7},
        {"10us", 10000},
        {"10\xc2\xb5s", 10000},
        {"10\xce\xbcs", 10000},
        {".5s", 500000000},
        {"5.s", 5 * S},
        {"1.1s", 1100000000},
        {"1h1m1s1ms1us1ns", 3661001001001},
        {"-1.5h", -5400 * S},
        {"9223372036854775807ns", INT64_MAX},
        {"-9223372036854775807ns", -INT64_MAX},
        {"2562047h", INT64_C(9223369200000000000)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ns = -42;
        int rc = sched_parse_duration(cases[i].in, &ns);
        if (rc != BW_OK || ns != cases[i].ns)
            fail_msg("\"%s\": rc %d, %lld ns (want %lld)", cases[i].in, rc, (long long)ns,
                     (long long)cases[i].ns);
    }
}

static void duration_rejects_garbage_and_overflow(void **state)
{
    static const char *bad[] = {
        "", "-", "+", ".", "m", "s5", "1x", "1d", "5 minutes", " 5m", "5m ", "1h30", "1.2.3", "1..5s",
        "--1s", "1e3", "0x10", "5M", "1.5.s",
        "2562048h",                /* past INT64_MAX ns */
        "9223372036854775808ns",   /* INT64_MAX + 1 */
        "-9223372036854775808ns",  /* INT64_MIN: refused (it is SCHED_KEEP_ALIVE_DEFAULT) */
        "99999999999999999999999s", /* the integer part itself overflows */
        "9223372037s",             /* seconds past the range */
        "9223372037",              /* bare seconds past the range */
        "2562047h1h",              /* the sum overflows */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns = -42;
        int rc = sched_parse_duration(bad[i], &ns);
        if (rc != BW_EINVAL || ns != -42)
            fail_msg("\"%s\": rc %d, ns %lld (want BW_EINVAL, untouched)", bad[i], rc, (long long)ns);
    }
    int64_t ns = -42;
    assert_int_equal(sched_parse_duration(NULL, &ns), BW_EINVAL);
    assert_int_equal(ns, -42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_estimate_demo_is_weights_plus_1_mib_kv_plus_64_mib_floor),
        cmocka_unit_test(load_estimate_half_b_is_weights_plus_48_mib_kv_plus_64_mib_floor),
        cmocka_unit_test(load_estimate_large_model_compute_is_a_sixteenth_of_weights),
        cmocka_unit_test(eviction_none_when_it_fits),
        cmocka_unit_test(eviction_takes_shortest_keep_alive_first),
        cmocka_unit_test(eviction_equal_keep_alive_goes_by_index),
        cmocka_unit_test(eviction_never_takes_a_busy_model),
        cmocka_unit_test(eviction_impossible_returns_minus_one_and_writes_nothing),
        cmocka_unit_test(eviction_respects_max_loaded),
        cmocka_unit_test(eviction_max_loaded_with_all_busy_is_impossible),
        cmocka_unit_test(eviction_count_and_bytes_must_both_hold),
        cmocka_unit_test(placement_one_gpu_fits_all),
        cmocka_unit_test(placement_two_gpus_split_by_room),
        cmocka_unit_test(placement_share_is_capped_by_what_fits),
        cmocka_unit_test(placement_partial_when_gpus_are_too_small),
        cmocka_unit_test(placement_gpu_below_its_reserve_gets_none),
        cmocka_unit_test(placement_num_gpu_caps_the_total),
        cmocka_unit_test(placement_num_gpu_zero_places_nothing),
        cmocka_unit_test(duration_parses_go_strings_and_bare_seconds),
        cmocka_unit_test(duration_rejects_garbage_and_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
