/* test_textout.c -- unit tests for src/engine/textout.c (streamed text: UTF-8 holds, stop strings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/textout.h"
#include "util/err.h"

#define FFFD "\xEF\xBF\xBD"
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Everything emitted so far by one textout, concatenated. */
struct sink {
    char buf[4096];
    size_t len;
    bool stopped;
};

static void init_stops(struct textout *t, const char *const *stops, size_t n)
{
    assert_int_equal(textout_init(t, stops, n), BW_OK);
}

/* Push a NUL-terminated piece and check exactly what comes out of that one push. */
static void push_expect(struct textout *t, const char *piece, const char *want, bool want_stopped)
{
    struct textout_emit e;
    assert_int_equal(textout_push(t, piece, strlen(piece), &e), BW_OK);
    assert_non_null(e.text);
    assert_int_equal(e.len, strlen(want));
    assert_memory_equal(e.text, want, e.len);
    assert_int_equal(e.text[e.len], '\0');
    assert_int_equal(e.stopped, want_stopped);
}

static void flush_expect(struct textout *t, const char *want, bool want_stopped)
{
    struct textout_emit e;
    assert_int_equal(textout_flush(t, &e), BW_OK);
    assert_non_null(e.text);
    assert_int_equal(e.len, strlen(want));
    assert_memory_equal(e.text, want, e.len);
    assert_int_equal(e.stopped, want_stopped);
}

static void sink_add(struct sink *s, const struct textout_emit *e)
{
    assert_true(s->len + e->len <= sizeof s->buf);
    memcpy(s->buf + s->len, e->text, e->len);
    s->len += e->len;
    s->stopped = s->stopped || e->stopped;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static void plain_ascii_passes_straight_through(void **state)
{
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "Hello", "Hello", false);
    push_expect(&t, ", world", ", world", false);
    push_expect(&t, "!\n", "!\n", false);
    assert_int_equal(textout_pending_len(&t), 0);
    flush_expect(&t, "", false);
    assert_int_equal(textout_emitted_len(&t), strlen("Hello, world!\n"));
    textout_fini(&t);
}

static void no_stop_strings_at_all_is_fine(void **state)
{
    struct textout t;
    init_stops(&t, NULL, 0);
    push_expect(&t, "<|im_end|>", "<|im_end|>", false);
    flush_expect(&t, "", false);
    textout_fini(&t);
}

static void four_byte_emoji_split_over_three_pushes_comes_out_whole_once_complete(void **state)
{
    /* U+1F600 is F0 9F 98 80. */
    struct textout t;
    init_stops(&t, NULL, 0);
    push_expect(&t, "a\xF0", "a", false);
    assert_int_equal(textout_pending_len(&t), 1);
    push_expect(&t, "\x9F\x98", "", false);
    assert_int_equal(textout_pending_len(&t), 3);
    push_expect(&t, "\x80" "b", "\xF0\x9F\x98\x80" "b", false);
    assert_int_equal(textout_pending_len(&t), 0);
    textout_fini(&t);
}

static void two_byte_char_split_waits_for_its_second_byte(void **state)
{
    /* U+00E9 is C3 A9. */
    struct textout t;
    init_stops(&t, NULL, 0);
    push_expect(&t, "caf\xC3", "caf", false);
    push_expect(&t, "\xA9", "\xC3\xA9", false);
    textout_fini(&t);
}

static void invalid_bytes_do_not_block_and_become_fffd(void **state)
{
    struct textout t;
    init_stops(&t, NULL, 0);
    push_expect(&t, "\x80", FFFD, false);             /* stray continuation byte */
    push_expect(&t, "x\xFF", "x" FFFD, false);        /* never-valid lead byte */
    push_expect(&t, "\xC0\xAF", FFFD FFFD, false);    /* overlong '/' */
    push_expect(&t, "\xED\xA0\x80", FFFD FFFD FFFD, false); /* surrogate U+D800 */
    push_expect(&t, "\xF4\x90", FFFD FFFD, false);    /* above U+10FFFF */
    /* A lead byte cut short by a non-continuation: one U+FFFD for the subpart, no wait. */
    push_expect(&t, "\xE2\x82" "A", FFFD "A", false);
    /* Held only while it can still become valid; the next byte settles it. */
    push_expect(&t, "\xE2", "", false);
    push_expect(&t, "B", FFFD "B", false);
    assert_int_equal(textout_pending_len(&t), 0);
    textout_fini(&t);
}

static void flush_turns_an_incomplete_utf8_tail_into_one_fffd(void **state)
{
    struct textout t;
    init_stops(&t, NULL, 0);
    push_expect(&t, "ok\xF0\x9F\x98", "ok", false);
    flush_expect(&t, FFFD, false);
    assert_int_equal(textout_emitted_len(&t), 2 + 3);
    textout_fini(&t);
}

/* ---- stop strings --------------------------------------------------------------------- */

static void stop_inside_one_piece_cuts_the_text_before_it(void **state)
{
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "Hello<|im_end|>junk", "Hello", true);
    textout_fini(&t);
}

static void stop_split_over_three_pieces_is_held_back_then_cut(void **state)
{
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "Hi<|im", "Hi", false);
    assert_int_equal(textout_pending_len(&t), 4);
    push_expect(&t, "_e", "", false);
    push_expect(&t, "nd|>more", "", true);
    assert_int_equal(textout_emitted_len(&t), 2);
    textout_fini(&t);
}

static void partial_match_that_is_no_stop_is_released_in_full_and_in_order(void **state)
{
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "x<|im", "x", false);
    push_expect(&t, "portant", "<|important", false);
    assert_int_equal(textout_pending_len(&t), 0);
    textout_fini(&t);
}

static void partial_match_restarts_inside_a_failed_one(void **state)
{
    /* "<<|im" fails at offset 0 but a new candidate starts at offset 1. */
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "<", "", false);
    push_expect(&t, "<|im", "<", false);
    push_expect(&t, "_end|>", "", true);
    textout_fini(&t);
}

static void shorter_stop_that_prefixes_a_longer_one_stops_at_once(void **state)
{
    static const char *const stops[] = {"END!!", "END"};
    struct textout t;
    init_stops(&t, stops, 2);
    push_expect(&t, "aEN", "a", false);
    struct textout_emit e;
    assert_int_equal(textout_push(&t, "D", 1, &e), BW_OK);
    assert_int_equal(e.len, 0);
    assert_true(e.stopped);
    assert_int_equal(e.stop_idx, 1);
    textout_fini(&t);
}

static void longer_stop_prefixed_by_a_partial_waits_and_then_cuts(void **state)
{
    static const char *const stops[] = {"<|im_end|>", "<|im_start|>"};
    struct textout t;
    init_stops(&t, stops, 2);
    push_expect(&t, "a<|im_", "a", false);
    push_expect(&t, "st", "", false);
    struct textout_emit e;
    assert_int_equal(textout_push(&t, "art|>", 5, &e), BW_OK);
    assert_int_equal(e.len, 0);
    assert_true(e.stopped);
    assert_int_equal(e.stop_idx, 1);
    textout_fini(&t);
}

static void stop_at_the_very_start_gives_empty_text_and_stopped(void **state)
{
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "<|im_end|>", "", true);
    assert_int_equal(textout_emitted_len(&t), 0);
    textout_fini(&t);
}

static void flush_releases_held_text(void **state)
{
    static const char *const stops[] = {"<|im_end|>"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "abc<|im_e", "abc", false);
    flush_expect(&t, "<|im_e", false);
    assert_int_equal(textout_emitted_len(&t), 9);
    textout_fini(&t);
}

static void multiple_stops_earliest_start_wins(void **state)
{
    static const char *const stops[] = {"STOP", "END"};
    struct textout t;
    init_stops(&t, stops, 2);
    struct textout_emit e;
    assert_int_equal(textout_push(&t, "aEND bSTOP", 10, &e), BW_OK);
    assert_int_equal(e.len, 1);
    assert_memory_equal(e.text, "a", 1);
    assert_true(e.stopped);
    assert_int_equal(e.stop_idx, 1);
    textout_fini(&t);

    init_stops(&t, stops, 2);
    assert_int_equal(textout_push(&t, "aSTOP bEND", 10, &e), BW_OK);
    assert_int_equal(e.len, 1);
    assert_int_equal(e.stop_idx, 0);
    textout_fini(&t);
}

static void complete_stop_waits_while_an_earlier_longer_stop_may_still_match(void **state)
{
    /* "bc" is complete in "xabc", but "abcd" could still start one byte earlier. */
    static const char *const stops[] = {"abcd", "bc"};
    struct textout t;
    init_stops(&t, stops, 2);
    push_expect(&t, "xab", "x", false);
    push_expect(&t, "c", "", false);
    push_expect(&t, "d", "", true); /* "abcd" wins: nothing after "x" */
    textout_fini(&t);

    init_stops(&t, stops, 2);
    push_expect(&t, "xab", "x", false);
    push_expect(&t, "c", "", false);
    push_expect(&t, "e", "a", true); /* "abcd" is out: "bc" cuts after "xa" */
    textout_fini(&t);

    /* The generation ends while waiting: flush still honours the complete stop. */
    init_stops(&t, stops, 2);
    push_expect(&t, "xabc", "x", false);
    flush_expect(&t, "a", true);
    textout_fini(&t);
}

static void pushes_and_flushes_after_a_stop_are_no_ops(void **state)
{
    static const char *const stops[] = {"END"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "aEND", "a", true);
    push_expect(&t, "more text", "", true);
    flush_expect(&t, "", true);
    assert_int_equal(textout_emitted_len(&t), 1);
    textout_fini(&t);
}

static void pushes_after_a_flush_are_no_ops(void **state)
{
    struct textout t;
    init_stops(&t, NULL, 0);
    push_expect(&t, "a", "a", false);
    flush_expect(&t, "", false);
    push_expect(&t, "b", "", false);
    assert_int_equal(textout_emitted_len(&t), 1);
    textout_fini(&t);
}

static void stop_right_after_a_split_character_keeps_the_character(void **state)
{
    static const char *const stops[] = {"\n\n"};
    struct textout t;
    init_stops(&t, stops, 1);
    push_expect(&t, "\xC3", "", false);
    push_expect(&t, "\xA9\n", "\xC3\xA9", false);
    push_expect(&t, "\nx", "", true);
    assert_int_equal(textout_emitted_len(&t), 2);
    textout_fini(&t);
}

/* ---- arguments and lifetimes ---------------------------------------------------------- */

static void init_rejects_empty_or_null_stop_strings(void **state)
{
    static const char *const bad_empty[] = {"END", ""};
    static const char *const bad_null[] = {"END", NULL};
    struct textout t;
    assert_int_equal(textout_init(&t, bad_empty, 2), BW_EINVAL);
    textout_fini(&t); /* harmless after a failed init */
    assert_int_equal(textout_init(&t, bad_null, 2), BW_EINVAL);
    assert_int_equal(textout_init(&t, NULL, 1), BW_EINVAL);
    textout_fini(&t);
    textout_fini(&t); /* and twice */
}

static void stop_strings_are_copied_at_init(void **state)
{
    char stop[] = "END";
    const char *stops[] = {stop};
    struct textout t;
    init_stops(&t, stops, 1);
    stop[0] = 'X';
    push_expect(&t, "aXND", "aXND", false);
    push_expect(&t, "bEND", "b", true);
    textout_fini(&t);
}

static void push_rejects_null_piece_with_length(void **state)
{
    struct textout t;
    struct textout_emit e;
    init_stops(&t, NULL, 0);
    assert_int_equal(textout_push(&t, NULL, 3, &e), BW_EINVAL);
    assert_int_equal(textout_push(&t, NULL, 0, &e), BW_OK);
    assert_int_equal(e.len, 0);
    textout_fini(&t);
}

static void long_generation_keeps_the_pending_buffer_small(void **state)
{
    static const char *const stops[] = {"<|im_end|>", "\n\nUser:"};
    struct textout t;
    struct textout_emit e;
    init_stops(&t, stops, 2);
    for (int i = 0; i < 6 * 16000; i++) { /* whole cycles: nothing held at the end */
        static const char *const pieces[] = {"tok", " <|im", "\n\n", "Use", "\xE2\x82", "\xAC"};
        const char *p = pieces[i % ARRAY_LEN(pieces)];
        assert_int_equal(textout_push(&t, p, strlen(p), &e), BW_OK);
        assert_false(e.stopped);
        assert_true(textout_pending_len(&t) < strlen("\n\nUser:") + 3);
    }
    flush_expect(&t, "", false);
    textout_fini(&t);
}

/* ---- property: the emitted concatenation is the input up to the earliest stop ---------- */

static uint32_t rng_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Expected output for valid UTF-8 input: the bytes before the earliest-starting stop. */
static size_t reference_cut(const char *text, const char *const *stops, size_t n_stops, bool *stopped)
{
    const char *best = NULL;
    for (size_t i = 0; i < n_stops; i++) {
        const char *m = strstr(text, stops[i]);
        if (m && (!best || m < best))
            best = m;
    }
    *stopped = best != NULL;
    return best ? (size_t)(best - text) : strlen(text);
}

static void emitted_concatenation_equals_input_up_to_the_stop_for_random_splits(void **state)
{
    static const char *const texts[] = {
        "Caf\xC3\xA9 \xF0\x9F\x98\x80 na\xC3\xAFve <|im <|im_en \xE2\x82\xAC done<|im_end|>tail",
        "no stop here \xF0\x9F\x8E\x89 <|im_sta \xE2\x82\xAC END",
        "\xE6\x97\xA5\xE6\x9C\xAC abcabcab abcd \xC3\xA9",
        "xxab\xC3\xA9 abcab bcde",
        "zz abcd bc", /* "bc" completes first, but "abcd" starts earlier */
        "<|im_end|>",
        "",
    };
    static const char *const stops_a[] = {"<|im_end|>", "<|im_start|>"};
    static const char *const stops_b[] = {"abcd", "bc", "\xC3\xA9 a"};
    static const char *const stops_c[] = {"\xF0\x9F\x98\x80", "END"};
    static const struct {
        const char *const *stops;
        size_t n;
    } sets[] = {{stops_a, 2}, {stops_b, 3}, {stops_c, 2}, {NULL, 0}};

    uint32_t seed = 12345;
    for (size_t si = 0; si < ARRAY_LEN(sets); si++) {
        for (size_t ti = 0; ti < ARRAY_LEN(texts); ti++) {
            const char *text = texts[ti];
            size_t n = strlen(text);
            bool want_stopped;
            size_t want_len = reference_cut(text, sets[si].stops, sets[si].n, &want_stopped);

            for (int iter = 0; iter < 300; iter++) {
                struct textout t;
                struct textout_emit e;
                struct sink out = {0};
                init_stops(&t, sets[si].stops, sets[si].n);

                size_t pos = 0;
                while (pos < n) {
                    size_t k = 1 + rng_next(&seed) % 6;
                    if (k > n - pos)
                        k = n - pos;
                    assert_int_equal(textout_push(&t, text + pos, k, &e), BW_OK);
                    /* Emitted text never ends inside a character. */
                    if (e.len)
                        assert_true(((unsigned char)e.text[e.len - 1] & 0xC0) != 0xC0);
                    sink_add(&out, &e);
                    pos += k;
                }
                assert_int_equal(textout_flush(&t, &e), BW_OK);
                sink_add(&out, &e);

                assert_int_equal(out.stopped, want_stopped);
                assert_int_equal(out.len, want_len);
                assert_memory_equal(out.buf, text, want_len);
                assert_int_equal(textout_emitted_len(&t), want_len);
                textout_fini(&t);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_ascii_passes_straight_through),
        cmocka_unit_test(no_stop_strings_at_all_is_fine),
        cmocka_unit_test(four_byte_emoji_split_over_three_pushes_comes_out_whole_once_complete),
        cmocka_unit_test(two_byte_char_split_waits_for_its_second_byte),
        cmocka_unit_test(invalid_bytes_do_not_block_and_become_fffd),
        cmocka_unit_test(flush_turns_an_incomplete_utf8_tail_into_one_fffd),
        cmocka_unit_test(stop_inside_one_piece_cuts_the_text_before_it),
        cmocka_unit_test(stop_split_over_three_pieces_is_held_back_then_cut),
        cmocka_unit_test(partial_match_that_is_no_stop_is_released_in_full_and_in_order),
        cmocka_unit_test(partial_match_restarts_inside_a_failed_one),
        cmocka_unit_test(shorter_stop_that_prefixes_a_longer_one_stops_at_once),
        cmocka_unit_test(longer_stop_prefixed_by_a_partial_waits_and_then_cuts),
        cmocka_unit_test(stop_at_the_very_start_gives_empty_text_and_stopped),
        cmocka_unit_test(flush_releases_held_text),
        cmocka_unit_test(multiple_stops_earliest_start_wins),
        cmocka_unit_test(complete_stop_waits_while_an_earlier_longer_stop_may_still_match),
        cmocka_unit_test(pushes_and_flushes_after_a_stop_are_no_ops),
        cmocka_unit_test(pushes_after_a_flush_are_no_ops),
        cmocka_unit_test(stop_right_after_a_split_character_keeps_the_character),
        cmocka_unit_test(init_rejects_empty_or_null_stop_strings),
        cmocka_unit_test(stop_strings_are_copied_at_init),
        cmocka_unit_test(push_rejects_null_piece_with_length),
        cmocka_unit_test(long_generation_keeps_the_pending_buffer_small),
        cmocka_unit_test(emitted_concatenation_equals_input_up_to_the_stop_for_random_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
