/* test_plan.c -- unit tests for src/sched/plan.c: the scheduler's decision for one acquire
 * (reuse, wait, load, evict, reload, fail) and memory admission that promises each runner
 * its growth budget and the resize transient, never the same bytes twice. Pure: every
 * expectation is an exact number or action. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sched/plan.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define S (INT64_C(1000000000))

/* bench-0.5b's shape: 12288 B per KV cell, ~639 MiB weights, compute 64 MiB (floor). */
static const struct estimate_model half_b = {.weights_bytes = 669777920, .kv_bytes_per_cell = 12288,
                                             .n_ctx_train = 32768};

static struct plan_request request(const char *name)
{
    return (struct plan_request){.name = name, .model = half_b, .n_parallel = 4, .cmax = 32768};
}

static struct plan_runner idle(const char *name, uint64_t reserved, int64_t expires_in)
{
    return (struct plan_runner){.name = name, .same_options = true, .reserved_bytes = reserved,
                                .resident_bytes = reserved / 2, .expires_in_ns = expires_in};
}

/* ---- the reserve ------------------------------------------------------------------------ */

static void reserve_counts_two_pools_and_two_compute_buffers(void **state)
{
    (void)state;
    /* 669777920 + 2 x 64 MiB + 2 x 4096 x 12288 */
    assert_int_equal(plan_reserve_bytes(&half_b, 4096), UINT64_C(669777920) + 2 * 64 * MIB + UINT64_C(100663296));
    assert_int_equal(plan_reserve_bytes(&half_b, 0), UINT64_C(669777920) + 2 * 64 * MIB);
}

static void budget_is_the_largest_that_fits_and_is_capped(void **state)
{
    (void)state;
    uint64_t fixed = plan_reserve_bytes(&half_b, 0);
    /* 1 GiB after the fixed part buys 1 GiB / (2 x 12288) = 43690 cells */
    assert_int_equal(plan_budget_cells(&half_b, fixed + GIB, 4, 32768), 43690);
    assert_true(plan_reserve_bytes(&half_b, 43690) <= fixed + GIB);
    assert_true(plan_reserve_bytes(&half_b, 43691) > fixed + GIB);
    /* plenty of memory: n_parallel x Cmax */
    assert_int_equal(plan_budget_cells(&half_b, 100 * GIB, 4, 32768), 4 * 32768);
    /* too little still answers the initial pool (the plan checks that one fits first) */
    assert_int_equal(plan_budget_cells(&half_b, fixed, 4, 32768), ESTIMATE_INITIAL_POOL);
    /* a cap under the initial pool is raised to it */
    assert_int_equal(plan_budget_cells(&half_b, 100 * GIB, 1, 512), ESTIMATE_INITIAL_POOL);
}

/* ---- reuse, wait, reload ---------------------------------------------------------------- */

static void loaded_model_with_same_options_is_reused(void **state)
{
    (void)state;
    struct plan_runner rs[] = {idle("a", GIB, S), idle("b", GIB, S)};
    struct plan_request rq = request("b");
    struct plan_memory mem = {.limit = 4 * GIB, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 2, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_REUSE);
    assert_int_equal(p.reuse, 1);
    assert_int_equal(p.n_unload, 0);
}

static void loading_model_is_waited_for(void **state)
{
    (void)state;
    struct plan_runner rs[] = {idle("a", GIB, S)};
    rs[0].loading = true;
    struct plan_request rq = request("a");
    struct plan_memory mem = {.limit = 4 * GIB, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_WAIT);
    assert_int_equal(p.n_unload, 0);
}

static void changed_options_wait_while_busy_then_reload(void **state)
{
    (void)state;
    struct plan_runner rs[] = {idle("a", 3 * GIB, S)};
    rs[0].same_options = false;
    rs[0].refs = 1;
    struct plan_request rq = request("a");
    struct plan_memory mem = {.limit = 4 * GIB, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_WAIT);
    assert_int_equal(p.n_unload, 0);

    rs[0].refs = 0; /* idle now: unloaded, and its 3 GiB count for the new load */
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_int_equal(p.n_unload, 1);
    assert_int_equal(p.unload[0], 0);
    assert_int_equal(p.kv_budget_cells, plan_budget_cells(&half_b, 4 * GIB, 4, 32768));
}

static void dead_runner_is_unloaded_and_loaded_again_even_while_held(void **state)
{
    (void)state;
    struct plan_runner rs[] = {idle("a", GIB, S)};
    rs[0].dead = true;
    rs[0].refs = 2; /* its calls are failing; the struct goes at their release */
    struct plan_request rq = request("a");
    struct plan_memory mem = {.limit = 4 * GIB, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_int_equal(p.n_unload, 1);
    /* the dead runner's promise is not held against the new one */
    assert_int_equal(p.reserve_bytes, plan_reserve_bytes(&half_b, plan_budget_cells(&half_b, 4 * GIB, 4, 32768)));
}

/* ---- admission: promises never overlap ------------------------------------------------- */

static void second_model_gets_what_the_first_was_not_promised(void **state)
{
    (void)state;
    struct plan_memory mem = {.limit = 6 * GIB, .max_loaded = 3};
    struct plan_request rq = request("a");
    struct plan p;
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    uint64_t first = p.reserve_bytes;
    assert_true(first <= 6 * GIB);

    struct plan_runner rs[] = {idle("a", first, INT64_MAX)};
    rs[0].refs = 1;
    rq = request("b");
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_true(first + p.reserve_bytes <= 6 * GIB); /* the same bytes are never promised twice */
    assert_int_equal(p.kv_budget_cells, plan_budget_cells(&half_b, 6 * GIB - first, 4, 32768));
}

/* ---- BELLOWS_KV_CACHE_TYPE=auto (issue 15 item 3) ------------------------------------------ */

static void auto_kv_type_takes_q8_0_only_when_a_maximum_context_does_not_fit_in_f16(void **state)
{
    (void)state;
    /* half_b in q8_0: 24 layers x (4 + 4) blocks of 34 bytes = 6528 B per cell */
    const struct estimate_model q8 = {.weights_bytes = half_b.weights_bytes, .kv_bytes_per_cell = 6528,
                                      .n_ctx_train = 32768};
    struct plan_request rq = request("a");
    rq.kv_alt = &q8;
    struct plan p;
    /* plenty: one 32k context fits in f16, so f16 (and its figures) */
    struct plan_memory mem = {.limit = 64 * GIB, .max_loaded = 3};
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_false(p.kv_alt);
    assert_int_equal(p.reserve_bytes, plan_reserve_bytes(&half_b, p.kv_budget_cells));
    /* just under reserve(32768) in f16: q8_0, with q8_0's budget and promise */
    mem.limit = plan_reserve_bytes(&half_b, 32768) - 1;
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_true(p.kv_alt);
    assert_int_equal(p.kv_budget_cells, plan_budget_cells(&q8, mem.limit, 4, 32768));
    assert_true(p.kv_budget_cells > 32768); /* q8_0 holds more than one maximum context there */
    assert_int_equal(p.reserve_bytes, plan_reserve_bytes(&q8, p.kv_budget_cells));
    assert_int_equal(p.resident_bytes, estimate_load_bytes(&q8));
    /* exactly reserve(32768) in f16: it fits, f16 */
    mem.limit = plan_reserve_bytes(&half_b, 32768);
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_false(p.kv_alt);
    /* a fixed type never switches */
    rq.kv_alt = NULL;
    mem.limit = plan_reserve_bytes(&half_b, 32768) - 1;
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_false(p.kv_alt);
    /* where only q8_0's initial pool fits, auto loads rather than fails */
    rq.kv_alt = &q8;
    mem.limit = plan_reserve_bytes(&q8, ESTIMATE_INITIAL_POOL);
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_true(p.kv_alt);
    rq.kv_alt = NULL;
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_FAIL);
}

static void measured_memory_subtracts_what_others_may_still_grow_into(void **state)
{
    (void)state;
    /* no limit: 3 GiB measured free, another runner promised 2 GiB of which 1.5 GiB were not
     * yet allocated when it loaded: 1.5 GiB is what a new load may count on */
    struct plan_runner rs[] = {{.name = "a", .same_options = true, .refs = 1, .reserved_bytes = 2 * GIB,
                                .resident_bytes = GIB / 2, .expires_in_ns = INT64_MAX}};
    struct plan_request rq = request("b");
    struct plan_memory mem = {.available = 3 * GIB, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_int_equal(p.kv_budget_cells, plan_budget_cells(&half_b, 3 * GIB / 2, 4, 32768));
    assert_true(p.reserve_bytes <= 3 * GIB / 2);
    assert_int_equal(p.resident_bytes, estimate_load_bytes(&half_b));
}

static void idle_models_are_evicted_only_as_far_as_the_initial_pool_needs(void **state)
{
    (void)state;
    uint64_t min = plan_reserve_bytes(&half_b, ESTIMATE_INITIAL_POOL);
    /* limit = two idle models of `min` each + half of another: one eviction is enough */
    struct plan_runner rs[] = {idle("old", min, 10 * S), idle("older", min, 5 * S)};
    struct plan_request rq = request("new");
    struct plan_memory mem = {.limit = 2 * min + min / 2, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 2, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_int_equal(p.n_unload, 1);
    assert_int_equal(p.unload[0], 1); /* shortest keep_alive first */
    assert_string_equal(p.unload_why[0], "evicted to make room");
    assert_int_equal(p.kv_budget_cells, plan_budget_cells(&half_b, min + min / 2, 4, 32768));
}

static void busy_models_holding_the_memory_make_it_wait(void **state)
{
    (void)state;
    uint64_t min = plan_reserve_bytes(&half_b, ESTIMATE_INITIAL_POOL);
    struct plan_runner rs[] = {idle("a", min, S)};
    rs[0].refs = 1;
    struct plan_request rq = request("b");
    struct plan_memory mem = {.limit = min + min / 2, .max_loaded = 3};
    struct plan p;
    sched_plan(rs, 1, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_WAIT);
    assert_int_equal(p.n_unload, 0);
}

static void too_big_for_the_limit_fails_with_the_numbers(void **state)
{
    (void)state;
    struct plan_request rq = request("a");
    struct plan_memory mem = {.limit = GIB / 2, .max_loaded = 3};
    struct plan p;
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_FAIL);
    assert_non_null(strstr(p.err_msg, "model requires 0.8 GiB of memory but only 0.5 GiB is available"));
}

static void nothing_loaded_and_measurement_says_no_loads_anyway_with_the_initial_pool(void **state)
{
    (void)state;
    struct plan_request rq = request("a");
    struct plan_memory mem = {.available = GIB / 4, .max_loaded = 3};
    struct plan p;
    sched_plan(NULL, 0, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_true(p.over_measured);
    assert_int_equal(p.kv_budget_cells, ESTIMATE_INITIAL_POOL);
}

static void max_loaded_evicts_an_idle_model_even_when_memory_fits(void **state)
{
    (void)state;
    struct plan_runner rs[] = {idle("a", GIB, 9 * S), idle("b", GIB, 3 * S)};
    struct plan_request rq = request("c");
    struct plan_memory mem = {.limit = 100 * GIB, .max_loaded = 2};
    struct plan p;
    sched_plan(rs, 2, &rq, &mem, &p);
    assert_int_equal(p.action, PLAN_LOAD);
    assert_int_equal(p.n_unload, 1);
    assert_int_equal(p.unload[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reserve_counts_two_pools_and_two_compute_buffers),
        cmocka_unit_test(budget_is_the_largest_that_fits_and_is_capped),
        cmocka_unit_test(loaded_model_with_same_options_is_reused),
        cmocka_unit_test(loading_model_is_waited_for),
        cmocka_unit_test(changed_options_wait_while_busy_then_reload),
        cmocka_unit_test(dead_runner_is_unloaded_and_loaded_again_even_while_held),
        cmocka_unit_test(second_model_gets_what_the_first_was_not_promised),
        cmocka_unit_test(measured_memory_subtracts_what_others_may_still_grow_into),
        cmocka_unit_test(idle_models_are_evicted_only_as_far_as_the_initial_pool_needs),
        cmocka_unit_test(busy_models_holding_the_memory_make_it_wait),
        cmocka_unit_test(too_big_for_the_limit_fails_with_the_numbers),
        cmocka_unit_test(nothing_loaded_and_measurement_says_no_loads_anyway_with_the_initial_pool),
        cmocka_unit_test(max_loaded_evicts_an_idle_model_even_when_memory_fits),
        cmocka_unit_test(auto_kv_type_takes_q8_0_only_when_a_maximum_context_does_not_fit_in_f16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
