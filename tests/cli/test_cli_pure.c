/* test_cli_pure.c -- the CLI's pure parts: Ollama-style formatting (cli/format.c) and the
 * Modelfile parser with typed parameters (cli/modelfile.c). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),          cmocka_unit_test(test_human_time),
        cmocka_unit_test(test_go_duration),    cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_table),          cmocka_unit_test(test_modelfile),
        cmocka_unit_test(test_modelfile_errors), cmocka_unit_test(test_param_set),
        cmocka_unit_test(test_think_value),    cmocka_unit_test(test_thinking_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
