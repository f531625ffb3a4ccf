/* test_policy.c -- unit tests for src/policy (spec/context.md). The chat-cut tests use a
 * counter of one token per whitespace-separated word, PER_IMAGE tokens per image and no
 * template overhead, so every expectation is exact. The marker is 9 words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "policy/policy.h"

enum { PER_IMAGE = 100, MAX_WORDS = 2000, MAX_MSGS = 1100 };

/* ---- test counter -------------------------------------------------------------------- */

struct counter {
    int calls;
    int fail_at; /* > 0: the fail_at-th call returns BW_ERUNNER */
    int calls_after_failure;
    bool failed;
    int frame;    /* framed_count: template tokens around each message */
    int max_seen; /* framed_count: the largest list counted, in tokens */
};

static int count_words(const char *s)
{
    int n = 0;
    for (bool in = false; s && *s; s++) {
        bool ws = isspace((unsigned char)*s);
        n += !in && !ws;
        in = !ws;
    }
    return n;
}

static int word_count(void *ud, const struct policy_msg *msgs, size_t n_msgs)
{
    struct counter *c = ud;
    if (c->failed)
        c->calls_after_failure++;
    if (++c->calls == c->fail_at) {
        c->failed = true;
        return BW_ERUNNER;
    }
    int n = 0;
    for (size_t i = 0; i < n_msgs; i++)
        n += count_words(msgs[i].content) + msgs[i].n_images * PER_IMAGE;
    return n;
}

/* A string of n words ("w w ... w "), n <= MAX_WORDS, valid for the whole run. */
static const char *words(int n)
{
    static char buf[2 * MAX_WORDS + 1];
    if (!buf[0])
        for (int i = 0; i < MAX_WORDS; i++)
            memcpy(buf + 2 * i, "w ", 2);
    assert_true(n >= 0 && n <= MAX_WORDS);
    return buf + 2 * (MAX_WORDS - n);
}

static struct policy_msg msg(const char *role, int n_words)
{
    return (struct policy_msg){ .role = role, .content = words(n_words), .n_images = 0 };
}

/* Output storage for up to MAX_MSGS inputs, plus the marker. */
static struct policy_msg out_msgs[MAX_MSGS + 1];
static int out_idx[MAX_MSGS + 1];

static struct policy_chat_cut new_cut(void)
{
    return (struct policy_chat_cut){ .msgs = out_msgs, .idx = out_idx };
}

/* Run the cut with Cmax = budget + room, room fixed at 100. */
static int cut(const struct policy_msg *m, size_t n, int budget, struct counter *c,
               struct policy_chat_cut *out, struct bw_err *err)
{
    return policy_chat_cut(m, n, budget + 100, 100, word_count, c, out, err);
}

static void assert_kept(const struct policy_chat_cut *out, const int *want, size_t n_want)
{
    assert_int_equal(out->n_kept, n_want);
    for (size_t i = 0; i < n_want; i++) {
        assert_int_equal(out->idx[i], want[i]);
        if (want[i] == POLICY_CUT_MARKER_IDX) {
            assert_string_equal(out->msgs[i].role, "system");
            assert_string_equal(out->msgs[i].content, POLICY_CUT_MARKER);
        }
    }
}
#define ASSERT_KEPT(out, ...) do { \
        const int want_[] = { __VA_ARGS__ }; \
        assert_kept((out), want_, sizeof want_ / sizeof want_[0]); \
    } while (0)

/* ---- sizing ---------------------------------------------------------------------------- */

static void cmax_is_model_max_lowered_by_operator_cap(void **state)
{
    (void)state;
    assert_int_equal(policy_cmax(32768, 0), 32768);
    assert_int_equal(policy_cmax(32768, -1), 32768);
    assert_int_equal(policy_cmax(32768, 8192), 8192);
    assert_int_equal(policy_cmax(4096, 8192), 4096); /* a cap never raises */
    assert_int_equal(policy_cmax(0, 8192), 8192);
    assert_int_equal(policy_cmax(0, 0), 0);
}

static void response_budget_is_num_predict_else_prompt_length(void **state)
{
    (void)state;
    assert_int_equal(policy_response_budget(100, 8000), 8000);
    assert_int_equal(policy_response_budget(100, 0), 100);
    assert_int_equal(policy_response_budget(100, -1), 100);
    assert_int_equal(policy_response_budget(100, -2), 100); /* no hidden 10x rule */
}

/* context.md "Worked values of D": model maximum 32768, no cap, num_predict unset. */
static void reservation_matches_worked_values(void **state)
{
    (void)state;
    assert_int_equal(policy_reservation(1, -1, 32768), 4096);
    assert_int_equal(policy_reservation(11, 512, 32768), 4096);
    assert_int_equal(policy_reservation(2049, -1, 32768), 5120);
    assert_int_equal(policy_reservation(3000, -1, 32768), 6144);
    assert_int_equal(policy_reservation(10000, -1, 32768), 20480);
    assert_int_equal(policy_reservation(20000, -1, 32768), 32768);
    /* The spec lists "L=100, num_predict=8000 -> 9216", but its own formula gives
     * ceil1024(8100) = 8192; 9216 is what num_predict=9000 gives. The formula wins. */
    assert_int_equal(policy_reservation(100, 8000, 32768), 8192);
    assert_int_equal(policy_reservation(100, 9000, 32768), 9216);
    /* L=5 with num_ctx 2048 or 131072: num_ctx is not an input, D is L's. */
    assert_int_equal(policy_reservation(5, -1, 32768), 4096);
    assert_int_equal(policy_reservation(3000, -1, policy_cmax(4096, 0)), 4096);
    assert_int_equal(policy_reservation(10000, -1, policy_cmax(32768, 8192)), 8192);
}

static void reservation_rounds_up_to_1024_at_the_boundary(void **state)
{
    (void)state;
    assert_int_equal(policy_reservation(2048, -1, 32768), 4096);
    assert_int_equal(policy_reservation(2560, -1, 32768), 5120);
    assert_int_equal(policy_reservation(2561, -1, 32768), 6144);
    assert_int_equal(policy_reservation(1, -1, 2048), 2048); /* Cmax below the floor */
    assert_int_equal(policy_reservation(INT32_MAX / 2 + 1, -1, 131072), 131072); /* no overflow */
}

static void room_is_min_of_response_1024_and_quarter_cmax(void **state)
{
    (void)state;
    assert_int_equal(policy_room(100, -1, 32768), 100);   /* R */
    assert_int_equal(policy_room(5000, -1, 32768), 1024); /* 1024 */
    assert_int_equal(policy_room(5000, 300, 32768), 300); /* num_predict */
    assert_int_equal(policy_room(5000, -1, 2048), 512);   /* Cmax / 4 */
}

static void must_cut_only_when_prompt_plus_room_exceeds_cmax(void **state)
{
    (void)state;
    assert_false(policy_must_cut(7168, 1024, 8192));
    assert_true(policy_must_cut(7169, 1024, 8192));
    assert_int_equal(policy_prompt_budget(8192, 1024), 7168);
}

/* ---- chat cut (rule 5) ------------------------------------------------------------------ */

static void chat_prompt_not_cut_when_it_fits(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("system", 10), msg("user", 20), msg("assistant", 30),
                              msg("user", 40) };
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    assert_int_equal(cut(m, 4, 100, &c, &out, NULL), BW_OK); /* exactly the budget */
    ASSERT_KEPT(&out, 0, 1, 2, 3);
    assert_int_equal(out.n_dropped, 0);
    assert_int_equal(out.n_tokens_before, 100);
    assert_int_equal(out.n_tokens_after, 100);
    assert_int_equal(c.calls, 1);
    assert_ptr_equal(out.msgs[2].content, m[2].content);
}

/* The brief's example: M1 100, eight middle messages of 100, M_last 100, budget 500:
 * 100 + 9 + 100 leaves 291, so the two newest middle messages fit, not three. */
static void chat_prompt_keeps_longest_suffix_of_middle(void **state)
{
    (void)state;
    struct policy_msg m[10];
    for (int i = 0; i < 10; i++)
        m[i] = msg(i % 2 ? "assistant" : "user", 100);
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    assert_int_equal(cut(m, 10, 500, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, POLICY_CUT_MARKER_IDX, 7, 8, 9);
    assert_int_equal(out.n_dropped, 6);
    assert_int_equal(out.n_tokens_before, 1000);
    assert_int_equal(out.n_tokens_after, 409);

    /* A third message needs 509: one token short keeps two, exactly 509 keeps three. */
    assert_int_equal(cut(m, 10, 508, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, POLICY_CUT_MARKER_IDX, 7, 8, 9);
    assert_int_equal(cut(m, 10, 509, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, POLICY_CUT_MARKER_IDX, 6, 7, 8, 9);
}

static void chat_prompt_marker_right_after_first_message(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("system", 5), msg("system", 5), msg("user", 10),
                              msg("assistant", 50), msg("user", 50), msg("assistant", 10),
                              msg("user", 10) };
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    assert_int_equal(cut(m, 7, 60, &c, &out, NULL), BW_OK); /* 5+5+10+9+10+10 = 49 */
    ASSERT_KEPT(&out, 0, 1, 2, POLICY_CUT_MARKER_IDX, 5, 6);
    assert_int_equal(out.msgs[3].n_images, 0);
    assert_int_equal(out.n_dropped, 2);
    assert_int_equal(out.n_tokens_after, 49);
}

/* S0 U1 A2 S3 U4 S5 A6 U7: S3 lies in the dropped part, S5 inside the kept suffix. */
static void chat_prompt_system_messages_stay_in_place(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("system", 10), msg("user", 50), msg("assistant", 100),
                              msg("system", 10), msg("user", 100), msg("system", 10),
                              msg("assistant", 100), msg("user", 50) };
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    /* Always kept: 10+50+9+10+10+50 = 139; + A6 = 239; + U4 = 339; + A2 = 439 (all). */
    assert_int_equal(cut(m, 8, 350, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, 1, POLICY_CUT_MARKER_IDX, 3, 4, 5, 6, 7);
    assert_int_equal(out.n_dropped, 1);
    assert_int_equal(out.n_tokens_after, 339);

    assert_int_equal(cut(m, 8, 300, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, 1, POLICY_CUT_MARKER_IDX, 3, 5, 6, 7);
    assert_int_equal(out.n_dropped, 2);

    assert_int_equal(cut(m, 8, 200, &c, &out, NULL), BW_OK); /* only the system messages */
    ASSERT_KEPT(&out, 0, 1, POLICY_CUT_MARKER_IDX, 3, 5, 7);
    assert_int_equal(out.n_tokens_after, 139);
}

static void chat_prompt_drops_first_message_only_when_it_must(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("system", 10), msg("user", 60), msg("assistant", 10),
                              msg("user", 20) };
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    /* system + M1 + marker + M_last = 10+60+9+20 = 99. */
    assert_int_equal(cut(m, 4, 99, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, 1, POLICY_CUT_MARKER_IDX, 3);
    assert_int_equal(cut(m, 4, 98, &c, &out, NULL), BW_OK);
    ASSERT_KEPT(&out, 0, POLICY_CUT_MARKER_IDX, 3); /* the marker takes M1's place */
    assert_int_equal(out.n_dropped, 2);
    assert_int_equal(out.n_tokens_after, 39);
}

static void chat_prompt_too_long_when_nothing_fits(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("system", 50), msg("user", 10), msg("assistant", 5),
                              msg("user", 100) };
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    out.n_kept = 77;
    out.n_tokens_before = 77;
    struct bw_err err = { 0 };
    /* system + marker + M_last = 159 > 100 (Cmax 200 with room 100). */
    assert_int_equal(cut(m, 4, 100, &c, &out, &err), BW_ETOOLONG);
    assert_int_equal(err.code, BW_ETOOLONG);
    assert_non_null(strstr(err.msg, "prompt is 165 tokens"));
    assert_non_null(strstr(err.msg, "the model's context is 200"));
    assert_int_equal(out.n_kept, 77); /* a failure changes nothing */
    assert_int_equal(out.n_tokens_before, 77);
    assert_int_equal(cut(m, 4, 159, &c, &out, &err), BW_OK); /* one token more: fits */
    ASSERT_KEPT(&out, 0, POLICY_CUT_MARKER_IDX, 3);
}

/* A one- or two-message chat is never cut in the middle: it fits whole, loses M1, or fails. */
static void chat_prompt_short_chat_cut_only_by_last_rule(void **state)
{
    (void)state;
    struct policy_chat_cut out = new_cut();
    struct bw_err err = { 0 };
    struct counter c = { 0 };

    struct policy_msg one[] = { msg("user", 200) };
    assert_int_equal(cut(one, 1, 100, &c, &out, &err), BW_ETOOLONG);
    assert_int_equal(c.calls, 1); /* nothing could be dropped, nothing else measured */
    assert_non_null(strstr(err.msg, "prompt is 200 tokens"));

    struct policy_msg sys_user[] = { msg("system", 10), msg("user", 200) };
    c = (struct counter){ 0 };
    assert_int_equal(cut(sys_user, 2, 100, &c, &out, &err), BW_ETOOLONG);
    assert_int_equal(c.calls, 1);

    /* Two conversational messages: M1 is dropped, M_last is kept. */
    struct policy_msg two[] = { msg("user", 200), msg("assistant", 50) };
    c = (struct counter){ 0 };
    assert_int_equal(cut(two, 2, 100, &c, &out, &err), BW_OK);
    ASSERT_KEPT(&out, POLICY_CUT_MARKER_IDX, 1);
    assert_int_equal(out.n_dropped, 1);
    assert_int_equal(out.n_tokens_after, 59);

    struct policy_msg all_sys[] = { msg("system", 80), msg("system", 80) };
    assert_int_equal(cut(all_sys, 2, 100, &c, &out, &err), BW_ETOOLONG);
}

static void chat_prompt_images_counted(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("user", 10), msg("assistant", 10), msg("user", 10),
                              msg("assistant", 10), msg("user", 10) };
    m[2].n_images = 1;
    m[4].n_images = 1;
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    /* 50 words alone would fit; with images the list is 250 and loses m[1] and m[2]. */
    assert_int_equal(cut(m, 5, 240, &c, &out, NULL), BW_OK);
    assert_int_equal(out.n_tokens_before, 250);
    ASSERT_KEPT(&out, 0, POLICY_CUT_MARKER_IDX, 3, 4);
    assert_int_equal(out.n_tokens_after, 10 + 9 + 10 + 110);
    assert_int_equal(out.msgs[3].n_images, 1);
}

static void chat_prompt_binary_search_measures_log_n_times(void **state)
{
    (void)state;
    static struct policy_msg m[1002];
    for (int i = 0; i < 1002; i++)
        m[i] = msg(i % 2 ? "assistant" : "user", 1);
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    /* 1 + 9 + 1 always kept; a budget of 511 keeps the newest 500 of 1000 middle ones. */
    assert_int_equal(cut(m, 1002, 511, &c, &out, NULL), BW_OK);
    assert_int_equal(out.n_kept, 503);
    assert_int_equal(out.idx[1], POLICY_CUT_MARKER_IDX);
    assert_int_equal(out.idx[2], 501);
    assert_int_equal(out.idx[502], 1001);
    assert_int_equal(out.n_dropped, 500);
    assert_int_equal(out.n_tokens_after, 511);
    assert_in_range(c.calls, 2, 1 + 10); /* whole list + ceil(log2(1001)) probes */
}

static void chat_prompt_counter_error_is_returned_and_stops_counting(void **state)
{
    (void)state;
    struct policy_msg m[10];
    for (int i = 0; i < 10; i++)
        m[i] = msg(i % 2 ? "assistant" : "user", 100);
    for (int fail_at = 1; fail_at <= 3; fail_at++) {
        struct counter c = { .fail_at = fail_at };
        struct policy_chat_cut out = new_cut();
        out.n_kept = 77;
        struct bw_err err = { 0 };
        assert_int_equal(cut(m, 10, 500, &c, &out, &err), BW_ERUNNER);
        assert_int_equal(err.code, BW_ERUNNER);
        assert_int_equal(c.calls, fail_at);
        assert_int_equal(c.calls_after_failure, 0);
        assert_int_equal(out.n_kept, 77);
    }
}

static void chat_prompt_rejects_bad_arguments(void **state)
{
    (void)state;
    struct policy_msg m[] = { msg("user", 1) };
    struct counter c = { 0 };
    struct policy_chat_cut out = new_cut();
    struct policy_chat_cut no_storage = { 0 };
    assert_int_equal(policy_chat_cut(m, 0, 100, 10, word_count, &c, &out, NULL), BW_EINVAL);
    assert_int_equal(policy_chat_cut(m, 1, 100, 10, NULL, &c, &out, NULL), BW_EINVAL);
    assert_int_equal(policy_chat_cut(m, 1, 100, 10, word_count, &c, &no_storage, NULL),
                     BW_EINVAL);
    assert_int_equal(policy_chat_cut(m, 1, 100, 100, word_count, &c, &out, NULL), BW_EINVAL);
    assert_int_equal(policy_chat_cut(m, 1, 0, 0, word_count, &c, &out, NULL), BW_EINVAL);
    assert_int_equal(c.calls, 0);
}

/* ---- raw prompt cut (rule 6) ------------------------------------------------------------ */

static void raw_cut_keeps_num_keep_head_and_newest_tail(void **state)
{
    (void)state;
    struct policy_raw_cut rc;
    assert_int_equal(policy_raw_cut(10000, -1, 8192, &rc, NULL), BW_OK); /* default 4 */
    assert_int_equal(rc.n_head, 4);
    assert_int_equal(rc.tail_start, 10000 - 8188);
    assert_int_equal(rc.n_dropped, 10000 - 8192);

    assert_int_equal(policy_raw_cut(10000, 100, 8192, &rc, NULL), BW_OK);
    assert_int_equal(rc.n_head, 100);
    assert_int_equal(rc.tail_start, 10000 - 8092);

    assert_int_equal(policy_raw_cut(10000, 0, 8192, &rc, NULL), BW_OK);
    assert_int_equal(rc.n_head, 0);
    assert_int_equal(rc.tail_start, 10000 - 8192);
}

static void raw_cut_nothing_when_it_fits(void **state)
{
    (void)state;
    struct policy_raw_cut rc;
    assert_int_equal(policy_raw_cut(8192, -1, 8192, &rc, NULL), BW_OK);
    assert_int_equal(rc.n_head, 8192);
    assert_int_equal(rc.tail_start, 8192);
    assert_int_equal(rc.n_dropped, 0);
}

static void raw_cut_num_keep_at_budget_still_keeps_newest_token(void **state)
{
    (void)state;
    struct policy_raw_cut rc;
    assert_int_equal(policy_raw_cut(100, 50, 50, &rc, NULL), BW_OK);
    assert_int_equal(rc.n_head, 49);
    assert_int_equal(rc.tail_start, 99);
    assert_int_equal(policy_raw_cut(100, 1000, 50, &rc, NULL), BW_OK);
    assert_int_equal(rc.n_head, 49);
    assert_int_equal(rc.n_head + (100 - rc.tail_start), 50);

    struct policy_raw_cut untouched = { 7, 7, 7 };
    struct bw_err err = { 0 };
    assert_int_equal(policy_raw_cut(100, 4, 0, &untouched, &err), BW_EINVAL);
    assert_int_equal(untouched.n_head, 7);
    assert_int_equal(policy_raw_cut(-1, 4, 10, &untouched, NULL), BW_EINVAL);
}

/* ---- embeddings (rule 7) ---------------------------------------------------------------- */

static void embed_cut_truncates_to_cmax_or_fails(void **state)
{
    (void)state;
    int keep = -1;
    assert_int_equal(policy_embed_cut(600, 512, true, &keep, NULL), BW_OK);
    assert_int_equal(keep, 512);
    assert_int_equal(policy_embed_cut(500, 512, false, &keep, NULL), BW_OK);
    assert_int_equal(keep, 500);
    assert_int_equal(policy_embed_cut(512, 512, false, &keep, NULL), BW_OK);
    assert_int_equal(keep, 512);

    struct bw_err err = { 0 };
    keep = -1;
    assert_int_equal(policy_embed_cut(600, 512, false, &keep, &err), BW_ETOOLONG);
    assert_int_equal(keep, -1);
    assert_non_null(strstr(err.msg, "600"));
    assert_non_null(strstr(err.msg, "512"));
    assert_int_equal(policy_embed_cut(10, 0, true, &keep, NULL), BW_EINVAL);
}

/* A template's framing: FRAME tokens around every message, so estimates from the content
 * alone are off by a steady factor, as a real template's are. */
static int framed_count(void *ud, const struct policy_msg *msgs, size_t n_msgs)
{
    struct counter *c = ud;
    c->calls++;
    int n = 0;
    for (size_t i = 0; i < n_msgs; i++)
        n += count_words(msgs[i].content) + c->frame;
    if (n > c->max_seen)
        c->max_seen = n;
    return n;
}

/* A long chat (1000 messages, a few system ones in the middle): the estimated cut keeps
 * exactly what the exact bisection keeps, with a handful of probes, none of them much
 * larger than the budget -- where bisection's first probe is half the chat. Bad estimates
 * (all zero, all huge) still give the same answer. */
static void chat_prompt_estimated_cut_matches_bisection_with_budget_sized_probes(void **state)
{
    (void)state;
    enum { N = 1000 };
    static struct policy_msg m[N];
    static int est[N];
    uint32_t rng = 12345;
    for (int i = 0; i < N; i++) {
        rng = rng * 1103515245u + 12345u;
        const char *role = i == 0 || i % 97 == 50 ? "system" : i % 2 ? "user" : "assistant";
        m[i] = msg(role, 5 + (int)(rng >> 16) % 200);
        est[i] = count_words(m[i].content);
    }
    const int budget = 3000;
    struct counter exact = {.frame = 4};
    struct policy_chat_cut a = new_cut();
    assert_int_equal(policy_chat_cut(m, N, budget + 100, 100, framed_count, &exact, &a, NULL), BW_OK);
    static struct policy_msg kept_a[N + 1];
    static int idx_a[N + 1];
    memcpy(kept_a, a.msgs, a.n_kept * sizeof *kept_a);
    memcpy(idx_a, a.idx, a.n_kept * sizeof *idx_a);
    assert_true(a.n_dropped > 900);
    assert_true(exact.max_seen > 40000); /* bisection measured half the chat first */

    struct counter guided = {.frame = 4};
    int total = framed_count(&guided, m, N);
    guided.calls = 0;
    guided.max_seen = 0;
    struct policy_chat_cut b = new_cut();
    assert_int_equal(policy_chat_cut_est(m, N, budget + 100, 100, est, total, framed_count, &guided, &b, NULL), BW_OK);
    assert_int_equal(b.n_kept, a.n_kept);
    assert_memory_equal(b.idx, idx_a, a.n_kept * sizeof *idx_a);
    assert_int_equal(b.n_tokens_after, a.n_tokens_after);
    assert_int_equal(b.n_tokens_before, total);
    assert_true(guided.calls <= 6);
    assert_true(guided.max_seen <= 2 * budget);

    static const int bad[] = {0, 1000000};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        for (int i = 0; i < N; i++)
            est[i] = bad[k];
        struct counter c = {.frame = 4};
        struct policy_chat_cut d = new_cut();
        assert_int_equal(policy_chat_cut_est(m, N, budget + 100, 100, est, total, framed_count, &c, &d, NULL), BW_OK);
        assert_int_equal(d.n_kept, a.n_kept);
        assert_memory_equal(d.idx, idx_a, a.n_kept * sizeof *idx_a);
        assert_true(c.calls <= 4 + 11); /* the guided probes, then bisection of 1000 */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cmax_is_model_max_lowered_by_operator_cap),
        cmocka_unit_test(response_budget_is_num_predict_else_prompt_length),
        cmocka_unit_test(reservation_matches_worked_values),
        cmocka_unit_test(reservation_rounds_up_to_1024_at_the_boundary),
        cmocka_unit_test(room_is_min_of_response_1024_and_quarter_cmax),
        cmocka_unit_test(must_cut_only_when_prompt_plus_room_exceeds_cmax),
        cmocka_unit_test(chat_prompt_not_cut_when_it_fits),
        cmocka_unit_test(chat_prompt_keeps_longest_suffix_of_middle),
        cmocka_unit_test(chat_prompt_marker_right_after_first_message),
        cmocka_unit_test(chat_prompt_system_messages_stay_in_place),
        cmocka_unit_test(chat_prompt_drops_first_message_only_when_it_must),
        cmocka_unit_test(chat_prompt_too_long_when_nothing_fits),
        cmocka_unit_test(chat_prompt_short_chat_cut_only_by_last_rule),
        cmocka_unit_test(chat_prompt_images_counted),
        cmocka_unit_test(chat_prompt_binary_search_measures_log_n_times),
        cmocka_unit_test(chat_prompt_counter_error_is_returned_and_stops_counting),
        cmocka_unit_test(chat_prompt_estimated_cut_matches_bisection_with_budget_sized_probes),
        cmocka_unit_test(chat_prompt_rejects_bad_arguments),
        cmocka_unit_test(raw_cut_keeps_num_keep_head_and_newest_tail),
        cmocka_unit_test(raw_cut_nothing_when_it_fits),
        cmocka_unit_test(raw_cut_num_keep_at_budget_still_keeps_newest_token),
        cmocka_unit_test(embed_cut_truncates_to_cmax_or_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
