/* test_cli_pure.c -- the CLI's pure parts: Ollama-style formatting (cli/format.c), the
 * Modelfile parser with typed parameters (cli/modelfile.c) and the pull progress view
 * (cli/progress.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/format.h"
#include "cli/modelfile.h"
#include "cli/progress.h"

#define S(ns) ((int64_t)(ns) * 1000000000LL)

static void test_bytes(void **state)
{
    (void)state;
    char b[32];
    fmt_bytes(26674570, b, sizeof b);
    assert_string_equal(b, "27 MB");
    fmt_bytes(90197872, b, sizeof b);
    assert_string_equal(b, "90 MB");
    fmt_bytes(1500000, b, sizeof b);
    assert_string_equal(b, "1.5 MB");
    fmt_bytes(2000000000, b, sizeof b);
    assert_string_equal(b, "2 GB");
    fmt_bytes(4700000000LL, b, sizeof b);
    assert_string_equal(b, "4.7 GB");
    fmt_bytes(999, b, sizeof b);
    assert_string_equal(b, "999 B");
}

static void test_human_time(void **state)
{
    (void)state;
    char b[64];
    int64_t now = S(1800000000);
    fmt_human_time(now - 500000000, now, b, sizeof b);
    assert_string_equal(b, "Less than a second ago");
    fmt_human_time(now - S(1), now, b, sizeof b);
    assert_string_equal(b, "1 second ago");
    fmt_human_time(now - S(30), now, b, sizeof b);
    assert_string_equal(b, "30 seconds ago");
    fmt_human_time(now - S(90), now, b, sizeof b);
    assert_string_equal(b, "About a minute ago");
    fmt_human_time(now - S(120), now, b, sizeof b);
    assert_string_equal(b, "2 minutes ago");
    fmt_human_time(now + S(299), now, b, sizeof b);
    assert_string_equal(b, "4 minutes from now");
    fmt_human_time(now - S(3600), now, b, sizeof b);
    assert_string_equal(b, "About an hour ago");
    fmt_human_time(now - S(5 * 3600), now, b, sizeof b);
    assert_string_equal(b, "5 hours ago");
    fmt_human_time(now - S(3 * 86400), now, b, sizeof b);
    assert_string_equal(b, "3 days ago");
    fmt_human_time(now - S(21 * 86400), now, b, sizeof b);
    assert_string_equal(b, "3 weeks ago");
    fmt_human_time(now - S(90 * 86400), now, b, sizeof b);
    assert_string_equal(b, "3 months ago");
    fmt_human_time(now - S(3 * 365 * 86400LL), now, b, sizeof b);
    assert_string_equal(b, "3 years ago");
    fmt_human_time(now + S(100LL * 365 * 86400), now, b, sizeof b);
    assert_string_equal(b, "Forever");
}

static void test_go_duration(void **state)
{
    (void)state;
    char b[64];
    fmt_go_duration(1868306209, b, sizeof b);
    assert_string_equal(b, "1.868306209s");
    fmt_go_duration(129503000, b, sizeof b);
    assert_string_equal(b, "129.503ms");
    fmt_go_duration(12500, b, sizeof b);
    assert_string_equal(b, "12.5µs");
    fmt_go_duration(830, b, sizeof b);
    assert_string_equal(b, "830ns");
    fmt_go_duration(0, b, sizeof b);
    assert_string_equal(b, "0s");
    fmt_go_duration(S(62) + 500000000, b, sizeof b);
    assert_string_equal(b, "1m2.5s");
    fmt_go_duration(S(3600 + 120 + 3), b, sizeof b);
    assert_string_equal(b, "1h2m3s");
    fmt_go_duration(2000000, b, sizeof b);
    assert_string_equal(b, "2ms");
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(fmt_parse_rfc3339("1970-01-01T00:00:01.5Z", &t), 0);
    assert_int_equal(t, 1500000000);
    assert_int_equal(fmt_parse_rfc3339("2026-11-27T12:27:18.547447742Z", &t), 0);
    assert_int_equal(t % 1000000000, 547447742);
    assert_int_equal(fmt_parse_rfc3339("1970-01-01T02:00:00+02:00", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(fmt_parse_rfc3339("2318-01-01T00:00:00Z", &t), 0);
    assert_true(t == INT64_MAX);
    char b[32];
    fmt_human_time(t, S(1800000000), b, sizeof b);
    assert_string_equal(b, "Forever");
    assert_int_equal(fmt_parse_rfc3339("yesterday", &t), -1);
    assert_int_equal(fmt_parse_rfc3339("1970-01-01T00:00:00", &t), -1);
}

static void test_table(void **state)
{
    (void)state;
    struct cli_table t = {.n_cols = 3, .n_rows = 2};
    t.cells[0][0] = "NAME", t.cells[0][1] = "ID", t.cells[0][2] = "SIZE";
    t.cells[1][0] = "demo:latest", t.cells[1][1] = "abc", t.cells[1][2] = "27 MB";
    char buf[256] = {0};
    FILE *f = fmemopen(buf, sizeof buf, "w");
    cli_table_print(&t, f);
    fclose(f);
    assert_string_equal(buf, "NAME           ID     SIZE\n"
                             "demo:latest    abc    27 MB\n");
}

static const char *text_of(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void test_modelfile(void **state)
{
    (void)state;
    const char *src = "# comment\n"
                      "from ./model.gguf\n"
                      "PARAMETER num_predict 8\n"
                      "Parameter temperature 0.5\n"
                      "PARAMETER stop \"<|im_end|>\"\n"
                      "PARAMETER stop END\n"
                      "PARAMETER penalize_newline true\n"
                      "SYSTEM \"\"\"You are\n"
                      "terse.\"\"\"\n"
                      "TEMPLATE {{ .Prompt }}\n"
                      "  MESSAGE user Hi there\n"
                      "MESSAGE assistant \"Hello!\"\n"
                      "LICENSE MIT\n"
                      "LICENSE \"\"\"Apache\"\"\"\n";
    struct modelfile mf;
    struct bw_err err = {0};
    assert_int_equal(modelfile_parse(src, strlen(src), &mf, &err), BW_OK);
    assert_string_equal(mf.from, "./model.gguf");
    assert_string_equal(mf.system, "You are\nterse.");
    assert_string_equal(mf.template_, "{{ .Prompt }}");
    assert_string_equal(mf.license, "MIT\n\nApache");
    assert_true(json_is_integer(json_object_get(mf.parameters, "num_predict")));
    assert_int_equal(json_integer_value(json_object_get(mf.parameters, "num_predict")), 8);
    assert_true(json_is_real(json_object_get(mf.parameters, "temperature")));
    assert_true(json_is_true(json_object_get(mf.parameters, "penalize_newline")));
    const json_t *stop = json_object_get(mf.parameters, "stop");
    assert_int_equal(json_array_size(stop), 2);
    assert_string_equal(json_string_value(json_array_get(stop, 0)), "<|im_end|>");
    assert_string_equal(json_string_value(json_array_get(stop, 1)), "END");
    assert_int_equal(json_array_size(mf.messages), 2);
    assert_string_equal(text_of(json_array_get(mf.messages, 0), "role"), "user");
    assert_string_equal(text_of(json_array_get(mf.messages, 0), "content"), "Hi there");
    assert_string_equal(text_of(json_array_get(mf.messages, 1), "content"), "Hello!");
    modelfile_fini(&mf);
}

static void expect_error(const char *src, const char *msg)
{
    struct modelfile mf;
    struct bw_err err = {0};
    assert_int_equal(modelfile_parse(src, strlen(src), &mf, &err), BW_EINVAL);
    if (!strstr(err.msg, msg))
        fail_msg("expected '%s' in '%s'", msg, err.msg);
}

static void test_modelfile_errors(void **state)
{
    (void)state;
    expect_error("PARAMETER num_predict 8\n", "no FROM line");
    expect_error("FROM x\nPARAMETER top_k many\n", "line 2: parameter 'top_k' must be an integer, not 'many'");
    expect_error("FROM x\nPARAMETER temprature 1\n", "line 2: unknown parameter 'temprature'");
    expect_error("FROM x\nPARAMETER use_mmap maybe\n", "must be true or false");
    expect_error("FROM x\nSYSTEM \"\"\"never closed\n", "line 2: SYSTEM: the \"\"\" is never closed");
    expect_error("FROM x\nMESSAGE robot hi\n", "line 2: MESSAGE role 'robot'");
    expect_error("FROM x\nADAPTER ./lora.gguf\n", "ADAPTER (LoRA) is not supported");
    expect_error("FROM x\n\nQUANTIZE q4\n", "line 3: unknown instruction 'QUANTIZE'");
    expect_error("FROM x\nPARAMETER seed\n", "line 2: PARAMETER needs a name and a value");
}

static void test_param_set(void **state)
{
    (void)state;
    json_t *p = json_object();
    struct bw_err err;
    assert_int_equal(modelfile_param_set(p, "seed", "42", &err), BW_OK);
    assert_int_equal(modelfile_param_set(p, "stop", "a", &err), BW_OK);
    assert_int_equal(modelfile_param_set(p, "stop", "\"b c\"", &err), BW_OK);
    assert_int_equal(modelfile_param_set(p, "top_p", "1", &err), BW_OK);
    assert_int_equal(modelfile_param_set(p, "num_predict", "1.5", &err), BW_EINVAL);
    assert_null(json_object_get(p, "num_predict"));
    char *s = json_dumps(p, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"seed\":42,\"stop\":[\"a\",\"b c\"],\"top_p\":1.0}");
    free(s);
    json_decref(p);
}

/* ---- thinking (bellows run) ---------------------------------------------------------------- */

static void test_think_value(void **state)
{
    (void)state;
    assert_string_equal(fmt_think_value(""), "true"); /* --think alone */
    assert_string_equal(fmt_think_value("true"), "true");
    assert_string_equal(fmt_think_value("false"), "false");
    assert_string_equal(fmt_think_value("low"), "low");
    assert_string_equal(fmt_think_value("medium"), "medium");
    assert_string_equal(fmt_think_value("high"), "high");
    assert_null(fmt_think_value("High"));
    assert_null(fmt_think_value("yes"));
    assert_null(fmt_think_value("1"));
    assert_null(fmt_think_value(NULL));
}

/* Feeds (thinking, content) chunks as on_line does and returns what reached the file. */
static char *think_view(bool color, bool hide, const char *const *chunks, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    struct fmt_thinking t = {.color = color, .hide = hide};
    for (size_t i = 0; i + 1 < n; i += 2) {
        fmt_thinking_piece(&t, chunks[i], strlen(chunks[i]), f);
        if (*chunks[i + 1]) {
            fmt_thinking_close(&t, f);
            fputs(chunks[i + 1], f);
        }
    }
    fmt_thinking_close(&t, f);
    fclose(f);
    return buf;
}

static void test_thinking_view(void **state)
{
    (void)state;
    static const char *const chat[] = {"", "", "Let me", "", " see.", "", "", "Hi", "", " there"};
    char *s = think_view(false, false, chat, 10);
    assert_string_equal(s, "Thinking...\nLet me see.\n...done thinking.\n\nHi there");
    free(s);
    s = think_view(true, false, chat, 10); /* a terminal: dimmed, reset after the footer */
    assert_string_equal(s, "\033[2mThinking...\nLet me see.\n...done thinking.\n\n\033[0mHi there");
    free(s);
    s = think_view(true, true, chat, 10); /* --hidethinking */
    assert_string_equal(s, "Hi there");
    free(s);
    static const char *const nl[] = {"a\n", "", "", "b"}; /* no extra newline after one */
    s = think_view(false, false, nl, 4);
    assert_string_equal(s, "Thinking...\na\n...done thinking.\n\nb");
    free(s);
    static const char *const only[] = {"hmm", ""}; /* all thinking: the block still ends */
    s = think_view(true, false, only, 2);
    assert_string_equal(s, "\033[2mThinking...\nhmm\n...done thinking.\n\n\033[0m");
    free(s);
    static const char *const none[] = {"", "just", "", " text"}; /* no thinking: nothing added */
    s = think_view(true, false, none, 4);
    assert_string_equal(s, "just text");
    free(s);
}

/* ---- pull progress (cli/progress.c) ---------------------------------------------------------- */

static void pull_rate_counts_only_new_bytes_over_a_window(void **state)
{
    (void)state;
    struct cli_rate r = {0};
    cli_rate_reset(&r, 0, 10000000); /* a resumed download: 10 MB already there */
    cli_rate_add(&r, S(1) / 2, 11000000);
    assert_true(cli_rate_bps(&r) == 0); /* under a second: no speed yet */
    cli_rate_add(&r, S(2), 14000000);
    assert_true(cli_rate_bps(&r) > 1999999 && cli_rate_bps(&r) < 2000001); /* 4 MB in 2 s */
    for (int i = 3; i < 40; i++)
        cli_rate_add(&r, S(i), 14000000 + (int64_t)(i - 2) * 1000000); /* then 1 MB/s */
    assert_int_equal(r.n, CLI_RATE_SAMPLES);
    assert_true(cli_rate_bps(&r) > 999999 && cli_rate_bps(&r) < 1000001); /* the old burst left the window */
}

static void pull_eta_has_two_units_at_most(void **state)
{
    (void)state;
    char b[32];
    cli_fmt_eta(3, b, sizeof b);
    assert_string_equal(b, "3s");
    cli_fmt_eta(75, b, sizeof b);
    assert_string_equal(b, "1m15s");
    cli_fmt_eta(7500, b, sizeof b);
    assert_string_equal(b, "2h5m");
    cli_fmt_eta(400000, b, sizeof b);
    assert_string_equal(b, "99h+");
}

static void pull_line_plain_and_with_a_bar(void **state)
{
    (void)state;
    char b[512];
    cli_progress_line("pulling 0123456789ab:", 13000000, 27000000, 0, 0, b, sizeof b);
    assert_string_equal(b, "pulling 0123456789ab:  48% 13 MB/27 MB");
    cli_progress_line("pulling 0123456789ab:", 27000000, 27000000, 0, 0, b, sizeof b);
    assert_string_equal(b, "pulling 0123456789ab: 100% 27 MB");
    cli_progress_line("pulling 0123456789ab:", 13500000, 27000000, 4500000, 80, b, sizeof b);
    assert_non_null(strstr(b, "pulling 0123456789ab:  50% ▕"));
    assert_non_null(strstr(b, "█ "));
    assert_non_null(strstr(b, " 14 MB/ 27 MB  4.5 MB/s      3s"));
    assert_true(fmt_width(b) <= 80 && fmt_width(b) >= 70);
    cli_progress_line("pulling 0123456789ab:", 27000000, 27000000, 4500000, 80, b, sizeof b);
    assert_null(strstr(b, "/s")); /* done: the size alone */
    assert_non_null(strstr(b, "100% ▕"));
    assert_non_null(strstr(b, "▏  27 MB"));
}

static char *view_run(bool tty, const char *const events[][2], const int64_t nums[][2], int n)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct cli_pull_view v = {.tty = tty, .width = 80};
    for (int i = 0; i < n; i++)
        cli_pull_view_feed(&v, events[i][0], events[i][1], nums[i][0], nums[i][1], NULL, S(i), f);
    cli_pull_view_end(&v, f);
    assert_true(v.success);
    fclose(f);
    return out;
}

static void pull_view_prints_steps_and_finished_layers(void **state)
{
    (void)state;
    static const char *const ev[][2] = {
        {"pulling manifest", NULL},
        {"pulling 0123456789ab", "sha256:0123456789abcdef"},
        {"pulling 0123456789ab", "sha256:0123456789abcdef"},
        {"pulling 0123456789ab", "sha256:0123456789abcdef"},
        {"pulling fedcba987654", "sha256:fedcba9876543210"},
        {"verifying sha256 digest", NULL},
        {"writing manifest", NULL},
        {"writing manifest", NULL},
        {"success", NULL},
    };
    static const int64_t nums[][2] = {{0, 0}, {27000000, 0}, {27000000, 9000000}, {27000000, 27000000},
                                      {410, 410}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    char *plain = view_run(false, ev, nums, 9);
    assert_string_equal(plain, "pulling manifest\n"
                               "pulling 0123456789ab: 100% 27 MB\n"
                               "pulling fedcba987654: 100% 410 B\n"
                               "verifying sha256 digest\n"
                               "writing manifest\n"
                               "success\n");
    free(plain);
    char *tty = view_run(true, ev, nums, 9);
    assert_non_null(strstr(tty, "pulling manifest\n\r\033[Kpulling 0123456789ab:   0% ▕"));
    assert_non_null(strstr(tty, "\r\033[Kpulling 0123456789ab: 100% ▕"));
    assert_non_null(strstr(tty, "27 MB\n\r\033[Kpulling fedcba987654: 100%"));
    assert_non_null(strstr(tty, "410 B\nverifying sha256 digest\nwriting manifest\nsuccess\n"));
    free(tty);
}

static void pull_view_keeps_the_error_and_ends_a_cut_layer(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct cli_pull_view v = {.tty = false};
    cli_pull_view_feed(&v, "pulling manifest", NULL, 0, 0, NULL, 0, f);
    cli_pull_view_feed(&v, "pulling 0123456789ab", "sha256:0123456789ab", 1000, 400, NULL, S(1), f);
    cli_pull_view_feed(&v, NULL, NULL, 0, 0, "digest mismatch", S(2), f);
    cli_pull_view_end(&v, f);
    fclose(f);
    assert_string_equal(out, "pulling manifest\npulling 0123456789ab:  40% 400 B/1 KB\n");
    assert_string_equal(v.error, "digest mismatch");
    assert_false(v.success);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),          cmocka_unit_test(test_human_time),
        cmocka_unit_test(test_go_duration),    cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_table),          cmocka_unit_test(test_modelfile),
        cmocka_unit_test(test_modelfile_errors), cmocka_unit_test(test_param_set),
        cmocka_unit_test(test_think_value),    cmocka_unit_test(test_thinking_view),
        cmocka_unit_test(pull_rate_counts_only_new_bytes_over_a_window),
        cmocka_unit_test(pull_eta_has_two_units_at_most),
        cmocka_unit_test(pull_line_plain_and_with_a_bar),
        cmocka_unit_test(pull_view_prints_steps_and_finished_layers),
        cmocka_unit_test(pull_view_keeps_the_error_and_ends_a_cut_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
