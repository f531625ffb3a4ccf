/* test_logprobs.c -- unit tests for src/engine/logprobs.c (the log-probabilities clients ask
 * for: the distribution, the entries' JSON, the queue that keeps them with their text) and
 * the textout positions that queue relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "engine/logprobs.h"
#include "engine/textout.h"
#include "util/err.h"

/* log(sum(exp(l))) the long way, in long double. */
static double log_sum_exp(const float *l, int n)
{
    long double max = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(l[i]) && l[i] > max)
            max = l[i];
    for (int i = 0; i < n; i++)
        if (isfinite(l[i]))
            sum += expl(l[i] - max);
    return (double)(max + logl(sum));
}

static void chosen_and_top_match_the_softmax(void **state)
{
    (void)state;
    const float l[] = {1.0f, 2.0f, 3.0f, 0.0f};
    struct logprob_alt top[LOGPROBS_TOP_MAX];
    int n = -1;
    float lp = logprobs_compute(l, 4, 1, 3, top, &n);
    double z = log_sum_exp(l, 4);
    assert_true(fabs(lp - (2.0 - z)) < 1e-6);
    assert_int_equal(n, 3);
    const int want[] = {2, 1, 0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(top[i].tok, want[i]);
        assert_true(fabs(top[i].logprob - (l[want[i]] - z)) < 1e-6);
    }
    /* the probabilities of the whole vocabulary sum to 1 */
    double sum = 0;
    logprobs_compute(l, 4, 0, 4, top, &n);
    for (int i = 0; i < n; i++)
        sum += exp(top[i].logprob);
    assert_true(fabs(sum - 1.0) < 1e-6);
}

static void equal_logits_rank_the_lower_id_first(void **state)
{
    (void)state;
    const float l[] = {5.0f, 5.0f, 1.0f, 5.0f, 7.0f};
    struct logprob_alt top[LOGPROBS_TOP_MAX];
    int n;
    logprobs_compute(l, 5, 0, 5, top, &n);
    const int want[] = {4, 0, 1, 3, 2};
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(top[i].tok, want[i]);
    assert_true(top[1].logprob == top[2].logprob && top[2].logprob == top[3].logprob);
    logprobs_compute(l, 5, 0, 2, top, &n);
    assert_int_equal(n, 2);
    assert_int_equal(top[0].tok, 4);
    assert_int_equal(top[1].tok, 0);
}

static void n_top_is_clamped(void **state)
{
    (void)state;
    float l[100];
    for (int i = 0; i < 100; i++)
        l[i] = (float)(i % 7);
    struct logprob_alt top[LOGPROBS_TOP_MAX];
    int n;
    logprobs_compute(l, 100, 0, 50, top, &n);
    assert_int_equal(n, LOGPROBS_TOP_MAX);
    logprobs_compute(l, 3, 0, 10, top, &n);
    assert_int_equal(n, 3);
    logprobs_compute(l, 100, 0, -4, top, &n);
    assert_int_equal(n, 0);
    logprobs_compute(l, 100, 0, 0, NULL, &n); /* no alternatives: top is never touched */
    assert_int_equal(n, 0);
}

/* A masked (-inf) or broken (NaN) logit has no probability: the floor, ranked last, and it
 * does not poison the others. */
static void non_finite_logits_count_as_impossible(void **state)
{
    (void)state;
    const float l[] = {NAN, 0.0f, -INFINITY, 0.0f, INFINITY};
    struct logprob_alt top[LOGPROBS_TOP_MAX];
    int n;
    float lp = logprobs_compute(l, 5, 1, 5, top, &n);
    assert_true(fabs(lp - logf(0.5f)) < 1e-6);
    assert_int_equal(n, 5);
    assert_int_equal(top[0].tok, 1);
    assert_int_equal(top[1].tok, 3);
    for (int i = 2; i < 5; i++)
        assert_true(top[i].logprob == LOGPROBS_FLOOR);
    assert_true(logprobs_compute(l, 5, 2, 0, top, &n) == LOGPROBS_FLOOR);
    assert_true(logprobs_compute(l, 5, 0, 0, top, &n) == LOGPROBS_FLOOR);
    const float none[] = {-INFINITY, -INFINITY};
    assert_true(logprobs_compute(none, 2, 0, 2, top, &n) == LOGPROBS_FLOOR);
    assert_int_equal(n, 2);
}

/* 150k near-equal terms: a float sum would lose the small ones. */
static void a_large_vocabulary_keeps_its_precision(void **state)
{
    (void)state;
    int nv = 150000;
    float *l = calloc((size_t)nv, sizeof *l);
    assert_non_null(l);
    l[77] = 10.0f;
    struct logprob_alt top[LOGPROBS_TOP_MAX];
    int n;
    float lp = logprobs_compute(l, nv, 77, 1, top, &n);
    double want = 10.0 - log(exp(10.0) + (nv - 1));
    assert_true(fabs(lp - want) < 1e-5);
    float lp0 = logprobs_compute(l, nv, 5, 0, top, &n);
    assert_true(fabs(lp0 - (0.0 - log(exp(10.0) + (nv - 1)))) < 1e-5);
    free(l);
}

struct ranked {
    float l;
    int id;
};

static int by_rank(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->l != y->l)
        return x->l > y->l ? -1 : 1;
    return x->id - y->id;
}

/* The top k of random logits (with many ties) are those of a full sort. */
static void top_matches_a_full_sort_of_random_logits(void **state)
{
    (void)state;
    srand(17);
    for (int round = 0; round < 200; round++) {
        int nv = 1 + rand() % 2000, k = rand() % (LOGPROBS_TOP_MAX + 1);
        float *l = malloc((size_t)nv * sizeof *l);
        struct ranked *r = malloc((size_t)nv * sizeof *r);
        assert_true(l && r);
        for (int i = 0; i < nv; i++) {
            l[i] = (float)(rand() % 50) / 4.0f - 6.0f;
            r[i] = (struct ranked){l[i], i};
        }
        qsort(r, (size_t)nv, sizeof *r, by_rank);
        struct logprob_alt top[LOGPROBS_TOP_MAX];
        int n;
        logprobs_compute(l, nv, rand() % nv, k, top, &n);
        assert_int_equal(n, k < nv ? k : nv);
        for (int i = 0; i < n; i++)
            assert_int_equal(top[i].tok, r[i].id);
        free(l);
        free(r);
    }
}

static void entries_are_json_with_exact_bytes(void **state)
{
    (void)state;
    struct textbuf b = {0};
    struct logprob_token t = {"a\"b\\\n\x01", 6, -0.5f};
    logprobs_entry_json(&b, &t, false, NULL, 0);
    assert_string_equal(b.s, "{\"token\":\"a\\\"b\\\\\\n\\u0001\",\"logprob\":-0.5,\"bytes\":[97,34,98,92,10,1]}");
    textbuf_fini(&b);

    /* half a UTF-8 character: the token text shows U+FFFD, bytes keep what the token is */
    struct logprob_token half = {"\xE2\x82", 2, -1.25f};
    struct logprob_token alts[2] = {{"\xE2\x82", 2, -1.25f}, {"<|im_end|>", 10, -3.0f}};
    logprobs_entry_json(&b, &half, true, alts, 2);
    assert_string_equal(b.s, "{\"token\":\"\xEF\xBF\xBD\",\"logprob\":-1.25,\"bytes\":[226,130],\"top_logprobs\":["
                             "{\"token\":\"\xEF\xBF\xBD\",\"logprob\":-1.25,\"bytes\":[226,130]},"
                             "{\"token\":\"<|im_end|>\",\"logprob\":-3,\"bytes\":[60,124,105,109,95,101,110,100,124,62]}]}");
    assert_false(b.oom);
    textbuf_fini(&b);

    /* asked for alternatives, none came: an empty array, not a missing field */
    struct logprob_token empty = {"", 0, 0.0f};
    logprobs_entry_json(&b, &empty, true, NULL, 0);
    assert_string_equal(b.s, "{\"token\":\"\",\"logprob\":0,\"bytes\":[],\"top_logprobs\":[]}");
    textbuf_fini(&b);

    /* a long token goes through the heap path of the sanitizer */
    char longtok[600];
    memset(longtok, 'x', sizeof longtok);
    struct logprob_token lt = {longtok, sizeof longtok, -2.0f};
    logprobs_entry_json(&b, &lt, false, NULL, 0);
    assert_non_null(strstr(b.s, "\"logprob\":-2,"));
    assert_int_equal(strspn(b.s + 10, "x"), sizeof longtok);
    textbuf_fini(&b);
}

static void push(struct logprob_queue *q, const char *json, uint64_t start, uint64_t end)
{
    assert_true(logprob_queue_push(q, json, strlen(json), start, end));
}

static void expect_take(struct logprob_queue *q, uint64_t released, const char *want)
{
    struct textbuf b = {0};
    size_t n = logprob_queue_take(q, released, &b);
    if (!want) {
        assert_int_equal(n, 0);
        assert_null(b.s);
        return;
    }
    assert_true(n > 0);
    assert_string_equal(b.s, want);
    textbuf_fini(&b);
}

static void the_queue_gives_entries_once_their_text_is_out(void **state)
{
    (void)state;
    struct logprob_queue q = {0};
    push(&q, "{\"a\":1}", 0, 3);
    expect_take(&q, 0, NULL); /* held back: a stop string may start here */
    push(&q, "{\"b\":2}", 3, 5);
    push(&q, "{\"c\":3}", 5, 5); /* prints nothing: a control token */
    expect_take(&q, 2, "[{\"a\":1}]");           /* part of a's text is out */
    expect_take(&q, 4, "[{\"b\":2}]");           /* c sits at 5, past what is out */
    expect_take(&q, 5, "[{\"c\":3}]");
    expect_take(&q, 5, NULL);
    push(&q, "{\"d\":4}", 5, 9);
    push(&q, "{\"e\":5}", 9, 12);
    expect_take(&q, 12, "[{\"d\":4},{\"e\":5}]");
    /* what is left when the generation ends was cut by the stop: dropped */
    push(&q, "{\"f\":6}", 12, 14);
    logprob_queue_clear(&q);
    expect_take(&q, 100, NULL);
    /* many entries, taken a few at a time: the storage moves and grows, order holds */
    char json[32], want[64];
    int taken = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(json, sizeof json, "%d", i);
        push(&q, json, (uint64_t)i, (uint64_t)i + 1);
        if (i % 3 == 2) {
            for (; taken < i - 1; taken++) {
                snprintf(want, sizeof want, "[%d]", taken);
                expect_take(&q, (uint64_t)taken + 1, want);
            }
        }
    }
    struct textbuf b = {0};
    assert_int_equal(logprob_queue_take(&q, 1000, &b), 100 - taken);
    textbuf_fini(&b);
    logprob_queue_clear(&q);
}

/* textout's input positions: pushed counts every byte, released stops at a stop string's
 * start, and a held-back prefix is released when the text goes on. */
static void textout_reports_what_it_released(void **state)
{
    (void)state;
    struct textout t;
    const char *stops[] = {"STOP"};
    assert_int_equal(textout_init(&t, stops, 1), BW_OK);
    struct textout_emit e;
    assert_int_equal(textout_push(&t, "Hel", 3, &e), BW_OK);
    assert_int_equal(textout_pushed_len(&t), 3);
    assert_int_equal(textout_released_len(&t), 3);
    assert_int_equal(textout_push(&t, "lo ST", 5, &e), BW_OK); /* "ST" held */
    assert_int_equal(textout_pushed_len(&t), 8);
    assert_int_equal(textout_released_len(&t), 6);
    assert_int_equal(textout_push(&t, "OP x", 4, &e), BW_OK);
    assert_true(e.stopped);
    assert_int_equal(textout_pushed_len(&t), 12);
    assert_int_equal(textout_released_len(&t), 6);
    assert_int_equal(textout_flush(&t, &e), BW_OK);
    assert_int_equal(textout_released_len(&t), 6);
    textout_fini(&t);

    /* an incomplete character is held, then released whole; at the end, replaced */
    assert_int_equal(textout_init(&t, NULL, 0), BW_OK);
    assert_int_equal(textout_push(&t, "a\xE2\x82", 3, &e), BW_OK);
    assert_int_equal(textout_released_len(&t), 1);
    assert_int_equal(textout_push(&t, "\xAC", 1, &e), BW_OK);
    assert_int_equal(textout_released_len(&t), 4);
    assert_int_equal(textout_push(&t, "\xE2", 1, &e), BW_OK);
    assert_int_equal(textout_released_len(&t), 4);
    assert_int_equal(textout_flush(&t, &e), BW_OK);
    assert_int_equal(textout_released_len(&t), 5);
    assert_int_equal(textout_pushed_len(&t), 5);
    textout_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chosen_and_top_match_the_softmax),
        cmocka_unit_test(equal_logits_rank_the_lower_id_first),
        cmocka_unit_test(n_top_is_clamped),
        cmocka_unit_test(non_finite_logits_count_as_impossible),
        cmocka_unit_test(a_large_vocabulary_keeps_its_precision),
        cmocka_unit_test(top_matches_a_full_sort_of_random_logits),
        cmocka_unit_test(entries_are_json_with_exact_bytes),
        cmocka_unit_test(the_queue_gives_entries_once_their_text_is_out),
        cmocka_unit_test(textout_reports_what_it_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
