/* test_toolcall_native.c -- unit tests for the tool-call formats added after the first set
 * (issue 11, leftovers): MiniMax M2, DeepSeek V3.2's DSML, ByteDance Seed-OSS, LFM2/LFM2.5,
 * Granite 3.x, <tool_calls> (Apriel, MiniMax M1), Nemotron Nano v2's <TOOLCALL>,
 * Functionary v3.2. Per format: detection on the pinned templates, the streamed parse
 * (whole, 1-byte pieces, cut in two everywhere: toolcall_expect.h), several calls,
 * malformed calls as content, the call grammar taking what the parser reads (and refusing
 * what does not fit the schema), the lazy trigger, and the round trip: the call the
 * template itself writes into the history is read back by the parser. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grammar_accepts.h"
#include "template/chat_template.h"
#include "template/toolcall.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include "toolcall_expect.h"

#define DSML "\xef\xbd\x9c" "DSML" "\xef\xbd\x9c"

static const char T_MINIMAX[] = "{%- set toolcall_begin_token = '<minimax:tool_call>' -%}";
#define NS "]<]minimax[>["
static const char T_MINIMAX_M3[] = "{%- set ns_token = ']<]minimax[>[' -%}{{ ns_token + '<invoke name=\"' }}<tool_call>";
static const char T_DSML[] = "{%- set dsml_token = '" DSML "' -%}<{{ dsml_token }}function_calls>";
static const char T_SEED[] = "{%- set toolcall_begin_token = '<seed:tool_call>' -%}<function=<parameter=";
static const char T_LFM2[] = "{{- '<|tool_call_start|>[' + calls + ']<|tool_call_end|>' -}}";
static const char T_GRANITE[] = "respond only with <|tool_call|> followed by a JSON list of tools used";
static const char T_TOOL_CALLS[] = "{{- '\\n<tool_calls>[' -}}";
static const char T_NEMOTRON[] = "{{- '<TOOLCALL>[' -}}";
static const char T_FIREFUNCTION[] = "{{ ' functools[' + calls | join(', ') + ']' }}";
static const char T_APERTUS[] = "{%- set tool_calls_token = '<|tools_prefix|>' -%}";
static const char T_FUNCTIONARY[] = "Respond in this format:\\n>>>${recipient}\\n${content}{{ '>>>all\\n' }}";

/* ---- detection --------------------------------------------------------------------------------- */

static void detect_new_formats(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *name;
    } frags[] = {
        {T_MINIMAX, "minimax"},   {T_MINIMAX_M3, "minimax-m3"}, {T_DSML, "dsml"}, {T_SEED, "seed-oss"},       {T_LFM2, "lfm2"},
        {T_GRANITE, "granite"},   {T_TOOL_CALLS, "tool-calls"}, {T_NEMOTRON, "nemotron"},
        {T_FUNCTIONARY, "functionary"}, {T_FIREFUNCTION, "firefunction"}, {T_APERTUS, "apertus"},
    };
    for (size_t i = 0; i < ARRAY_LEN(frags); i++)
        assert_string_equal(cfg_of(frags[i].tmpl).name, frags[i].name);
    static const struct {
        const char *file, *name;
    } real[] = {
        {"MiniMax-M2.jinja", "minimax"},
        {"MiniMax-M3.jinja", "minimax-m3"},
        {"deepseek-ai-DeepSeek-V3.2.jinja", "dsml"},
        {"ByteDance-Seed-OSS.jinja", "seed-oss"},
        {"LFM2-8B-A1B.jinja", "lfm2"},
        {"LFM2.5-8B-A1B.jinja", "lfm2"},
        {"LFM2.5-Instruct.jinja", "lfm2"},
        {"ibm-granite-granite-3.3-2B-Instruct.jinja", "granite"},
        {"unsloth-Apriel-1.5.jinja", "tool-calls"},
        {"Apriel-1.6-15b-Thinker-fixed.jinja", "tool-calls"},
        {"MiniMax-M1.jinja", "tool-calls"},
        {"NVIDIA-Nemotron-Nano-v2.jinja", "nemotron"},
        {"meetkai-functionary-medium-v3.2.jinja", "functionary"},
        {"fireworks-ai-llama-3-firefunction-v2.jinja", "firefunction"},
        {"Apertus-8B-Instruct.jinja", "apertus"},
        /* unchanged by the new checks */
        {"ibm-granite-granite-4.0.jinja", "hermes"},
        {"Qwen3-Coder.jinja", "qwen3-coder"},
        {"meetkai-functionary-medium-v3.1.jinja", "llama3"},
    };
    for (size_t i = 0; i < ARRAY_LEN(real); i++) {
        char *t = read_template(real[i].file);
        if (!t)
            fail_msg("missing template %s", real[i].file);
        struct toolcall_cfg c = cfg_of(t);
        if (strcmp(c.name, real[i].name))
            fail_msg("%s: %s, expected %s", real[i].file, c.name, real[i].name);
        free(t);
    }
}

static void marker_tokens_of_new_formats(void **state)
{
    (void)state;
    struct toolcall_cfg m = cfg_of(T_MINIMAX), d = cfg_of(T_DSML), l = cfg_of(T_LFM2), g = cfg_of(T_GRANITE);
    assert_true(toolcall_marker_token(&m, "<minimax:tool_call>", 19));
    assert_true(toolcall_marker_token(&d, DSML, strlen(DSML)));
    assert_true(toolcall_marker_token(&l, "<|tool_call_start|>", 19));
    assert_true(toolcall_marker_token(&l, "<|tool_call_end|>", 17));
    assert_true(toolcall_marker_token(&g, "<|tool_call|>", 13));
    assert_false(toolcall_marker_token(&g, "<|tool_call_start|>", 19));
    assert_false(toolcall_marker_token(&l, "<|im_end|>", 10));
}

/* ---- parsing ------------------------------------------------------------------------------------ */

static void minimax_invoke(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_MINIMAX);
    /* The schema decides the types: days an integer, zip a string though it looks like one. */
    expect(&c,
           "Let me check.\n<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"city\">New York"
           "</parameter>\n<parameter name=\"days\">3</parameter>\n<parameter name=\"zip\">10001</parameter>\n"
           "</invoke>\n</minimax:tool_call>",
           "Let me check.\n", "get_weather {\"city\":\"New York\",\"days\":3,\"zip\":\"10001\"}|");
    /* Two invokes in one block, then another block; an unknown tool's JSON-looking values are JSON. */
    expect(&c,
           "<minimax:tool_call>\n<invoke name=\"get_time\">\n</invoke>\n<invoke name=\"note\">\n<parameter "
           "name=\"tags\">[\"a\", 1]</parameter>\n<parameter name=\"text\">two\nlines</parameter>\n</invoke>\n"
           "</minimax:tool_call>\n<minimax:tool_call><invoke name=\"get_time\"></invoke></minimax:tool_call>",
           "", "get_time {}|note {\"tags\":[\"a\",1],\"text\":\"two\\nlines\"}|get_time {}|");
    /* The closing tag eaten by a stop string: the call is complete otherwise. */
    expect(&c, "<minimax:tool_call>\n<invoke name=\"get_time\">\n</invoke>\n", "", "get_time {}|");
    expect_content(&c, "<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"city\">Oslo\n"
                       "</minimax:tool_call>");
    expect_content(&c, "<minimax:tool_call>\n<call name=\"x\"></call></minimax:tool_call>");
    expect_content(&c, "<minimax:tool_call><invoke name=\"two words\"></invoke></minimax:tool_call> and <b>bold</b>");
}

static void minimax_m3_nested(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_MINIMAX_M3);
    expect(&c,
           "On it." NS "<tool_call>\n" NS "<invoke name=\"get_weather\">" NS "<city>Oslo" NS "</city>" NS "<days>2" NS
           "</days>" NS "<zip>0150" NS "</zip>" NS "</invoke>\n" NS "<invoke name=\"note\">" NS "<tags>" NS "<item>a" NS
           "</item>" NS "<item>1" NS "</item>" NS "</tags>" NS "<opt>" NS "<deep>true" NS "</deep>" NS "</opt>" NS
           "</invoke>\n" NS "</tool_call>",
           "On it.",
           "get_weather {\"city\":\"Oslo\",\"days\":2,\"zip\":\"0150\"}|note {\"tags\":[\"a\",1],\"opt\":{\"deep\":true}}|");
    expect_content(&c, NS "<tool_call>\n" NS "<invoke name=\"get_time\">" NS "<a>x" NS "</b>" NS "</invoke>\n" NS
                       "</tool_call>");
    expect_content(&c, NS "<tool_call>\n" NS "<invoke name=\"note\">" NS "<tags>" NS "<item>a" NS "</item>" NS "<k>b" NS
                       "</k>" NS "</tags>" NS "</invoke>\n" NS "</tool_call>");
}

static void dsml_invoke(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_DSML);
    /* string="true" is text whatever it looks like, string="false" JSON */
    expect(&c,
           "\n\n<" DSML "function_calls>\n<" DSML "invoke name=\"get_weather\">\n<" DSML
           "parameter name=\"city\" string=\"true\">Paris</" DSML "parameter>\n<" DSML
           "parameter name=\"days\" string=\"false\">2</" DSML "parameter>\n<" DSML "parameter name=\"note\" "
           "string=\"true\">42</" DSML "parameter>\n</" DSML "invoke>\n<" DSML "invoke name=\"get_time\">\n</" DSML
           "invoke>\n</" DSML "function_calls>",
           "\n\n", "get_weather {\"city\":\"Paris\",\"days\":2,\"note\":\"42\"}|get_time {}|");
    /* the token limit cut the closing marker: the call is complete otherwise */
    expect(&c, "<" DSML "function_calls>\n<" DSML "invoke name=\"get_time\">\n</" DSML "invoke>\n</" DSML "function_c", "",
           "get_time {}|");
    expect_content(&c, "<" DSML "function_calls>\n<" DSML "invoke name=\"get_time\">\n<" DSML "parameter name=\"a\">"
                       "</" DSML "function_calls>");
}

static void seed_oss_functions(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_SEED);
    expect(&c,
           "Sure.\n<seed:tool_call>\n<function=get_weather>\n<parameter=city>Rome</parameter>\n<parameter=days>4"
           "</parameter>\n</function>\n</seed:tool_call>\n<seed:tool_call>\n<function=get_time>\n</function>\n"
           "</seed:tool_call>",
           "Sure.\n", "get_weather {\"city\":\"Rome\",\"days\":4}|get_time {}|");
    expect_content(&c, "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Rome\n</seed:tool_call>");
    expect_content(&c, "a <seed:tool_call> b");
}

static void lfm2_pythonic(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_LFM2);
    expect(&c, "<|tool_call_start|>[get_weather(city='New York', days=3, metric=True)]<|tool_call_end|>", "",
           "get_weather {\"city\":\"New York\",\"days\":3,\"metric\":true}|");
    /* several calls in one list; JSON literals, escapes, nested values, a dotted name */
    expect(&c,
           "Checking both.<|tool_call_start|>[get_time(), note(text=\"a \\\"b\\\"\\n\\u00e9\", n=-1.5, x=null, "
           "opts={\"k\": [1, 'two', None]}), a.b(flag=false)]<|tool_call_end|>",
           "Checking both.",
           "get_time {}|note {\"text\":\"a \\\"b\\\"\\n\xc3\xa9\",\"n\":-1.5,\"x\":null,\"opts\":{\"k\":[1,\"two\",null]}}|"
           "a.b {\"flag\":false}|");
    expect(&c, "<|tool_call_start|>[get_time()]<|tool_call_end|> <|tool_call_start|>[get_time()]<|tool_call_end|>", "",
           "get_time {}|get_time {}|");
    expect_content(&c, "<|tool_call_start|>[get_weather(city=Paris)]<|tool_call_end|>");
    expect_content(&c, "<|tool_call_start|>[get_weather(city='Paris')<|tool_call_end|>");
    expect_content(&c, "<|tool_call_start|>[get_weather('Paris')]<|tool_call_end|>");
    expect_content(&c, "<|tool_call_start|>[f(a='open)]<|tool_call_end|>");
}

static void json_list_formats(void **state)
{
    (void)state;
    struct toolcall_cfg g = cfg_of(T_GRANITE), t = cfg_of(T_TOOL_CALLS), n = cfg_of(T_NEMOTRON);
    /* Granite: no closing marker, the JSON ends the call */
    expect(&g, "<|tool_call|>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", "
               "\"arguments\": {}}]",
           "", "get_weather {\"city\":\"Paris\"}|get_time {}|");
    expect(&g, "Here: <|tool_call|>{\"name\": \"get_time\", \"arguments\": {}} done", "Here: done",
           "get_time {}|");
    expect_content(&g, "<|tool_call|>[{\"name\": \"get_time\", \"arguments\": {}}");
    expect_content(&g, "<|tool_call|> nothing");
    /* Apriel's list; MiniMax M1's one object a line */
    expect(&t, "<tool_calls>[{\"name\": \"get_time\", \"arguments\": {}, \"id\": \"c1\"}]</tool_calls>", "", "get_time {} c1|");
    expect(&t, "<tool_calls>\n{\"name\": \"get_time\", \"arguments\": {}}\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"days\": 2}}\n</tool_calls>",
           "", "get_time {}|get_weather {\"days\":2}|");
    expect_content(&t, "<tool_calls>[{\"name\": 1}]</tool_calls>");
    /* Nemotron: arguments as JSON text are read too */
    expect(&n, "<TOOLCALL>[{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Oslo\\\"}\"}]</TOOLCALL>", "",
           "get_weather {\"city\":\"Oslo\"}|");
    expect_content(&n, "<TOOLCALL>[oops]</TOOLCALL>");
}

static void firefunction_and_apertus(void **state)
{
    (void)state;
    struct toolcall_cfg f = cfg_of(T_FIREFUNCTION), a = cfg_of(T_APERTUS);
    expect(&f, " functools[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", "
               "\"arguments\": {}}]",
           " ", "get_weather {\"city\":\"Paris\"}|get_time {}|");
    expect_content(&f, "import functools\nfunctools.reduce(f, xs)");
    expect(&a, "<|tools_prefix|>[{\"get_weather\": {\"city\": \"Rome\", \"days\": 2}}, {\"get_time\": {}}]<|tools_suffix|>",
           "", "get_weather {\"city\":\"Rome\",\"days\":2}|get_time {}|");
    expect_content(&a, "<|tools_prefix|>[{\"get_weather\": {}, \"get_time\": {}}]<|tools_suffix|>");
    expect_content(&a, "<|tools_prefix|>[{\"get_time\": 1}]<|tools_suffix|>");
}

static void functionary_recipients(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_FUNCTIONARY);
    /* The prompt ends with ">>>": the answer starts with its recipient. */
    expect(&c, "all\nHello there.", "Hello there.", "");
    expect(&c, "get_weather\n{\"city\": \"Paris\"}", "", "get_weather {\"city\":\"Paris\"}|");
    expect(&c, "all\nLet me look.>>>get_weather\n{\"days\": 1}\n>>>get_time\n{}", "Let me look.",
           "get_weather {\"days\":1}|get_time {}|");
    /* not a recipient line: all of it is content, and the prompt's ">>>" is not */
    expect_content(&c, "Hello there, no recipient.");
    expect_content(&c, "get_weather\n{\"city\": ");
    expect(&c, "all\na >>> b", "a >>> b", "");
}

/* Random soups of the new formats' markers and pieces: the result never depends on where
 * the text is cut, and an answer with no call comes back byte for byte. */
static void new_formats_soup(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        NS "<tool_call>", NS "</tool_call>", NS "<invoke name=\"get_time\">", NS "</invoke>", NS "<a>", NS "</a>",
        NS "<tool_call>" NS "<invoke name=\"get_time\">" NS "</invoke>" NS "</tool_call>",
        "<minimax:tool_call>", "</minimax:tool_call>", "<invoke name=\"get_time\">", "</invoke>", "<parameter name=\"a\">",
        "</parameter>", "<" DSML "function_calls>", "</" DSML "function_calls>", "<" DSML "invoke name=\"get_time\">",
        "</" DSML "invoke>", "<seed:tool_call>", "</seed:tool_call>", "<function=get_time>", "</function>",
        "<|tool_call_start|>", "<|tool_call_end|>", "[", "]", "(", ")", "get_time", "=", "'x'", ",", "<|tool_call|>",
        "<tool_calls>", "</tool_calls>", "<TOOLCALL>", "</TOOLCALL>", ">>>", ">>", "all\n", "\n", "{", "}", "\"",
        "text", "caf\xc3\xa9", "\xe2\x9c\x93", "<", "|",
        "<minimax:tool_call><invoke name=\"get_time\"></invoke></minimax:tool_call>",
        "<" DSML "function_calls><" DSML "invoke name=\"get_time\"></" DSML "invoke></" DSML "function_calls>",
        "<seed:tool_call><function=get_time></function></seed:tool_call>", "<|tool_call_start|>[get_time()]<|tool_call_end|>",
        "<|tool_call|>[{\"name\": \"get_time\", \"arguments\": {}}]",
        "<tool_calls>[{\"name\": \"get_time\", \"arguments\": {}}]</tool_calls>",
        "<TOOLCALL>[{\"name\": \"get_time\", \"arguments\": {}}]</TOOLCALL>", ">>>get_time\n{}", "get_time\n{}",
        "functools", "functools[{\"name\": \"get_time\", \"arguments\": {}}]", "<|tools_prefix|>", "<|tools_suffix|>",
        "<|tools_prefix|>[{\"get_time\": {}}]<|tools_suffix|>",
    };
    static const char *const tmpls[] = {T_MINIMAX,  T_MINIMAX_M3, T_DSML,        T_SEED,         T_LFM2,   T_GRANITE,
                                        T_TOOL_CALLS, T_NEMOTRON, T_FUNCTIONARY, T_FIREFUNCTION, T_APERTUS};
    uint64_t rng = 7;
    char text[1024];
    for (size_t f = 0; f < ARRAY_LEN(tmpls); f++) {
        struct toolcall_cfg c = cfg_of(tmpls[f]);
        int with_calls = 0, without = 0;
        for (int round = 0; round < 150; round++) {
            size_t n = 0;
            int k = 1 + (int)((rng >> 33) % 16);
            for (int i = 0; i < k; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                const char *a = atoms[(rng >> 33) % ARRAY_LEN(atoms)];
                if (n + strlen(a) + 1 >= sizeof text)
                    break;
                memcpy(text + n, a, strlen(a));
                n += strlen(a);
            }
            text[n] = '\0';
            struct sink whole, cut;
            feed_cuts(&c, TOOLS, text, NULL, 0, &whole);
            /* functionary: an answer that opens with "all\n" says so, and loses those bytes */
            if (!whole.n_calls && !(c.format == TOOLCALL_FUNCTIONARY && !strncmp(text, "all\n", 4)))
                assert_string_equal(whole.content, text);
            with_calls += whole.n_calls > 0;
            without += whole.n_calls == 0;
            feed_bytes(&c, TOOLS, text, &cut);
            assert_string_equal(cut.content, whole.content);
            assert_string_equal(cut.calls, whole.calls);
        }
        if (!with_calls || !without)
            fprintf(stderr, "%s: %d rounds with calls, %d without\n", c.name, with_calls, without);
        assert_true(with_calls > 0 && without > 0);
    }
}

#include "toolcall_native_grammar.h"

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detect_new_formats),
        cmocka_unit_test(marker_tokens_of_new_formats),
        cmocka_unit_test(minimax_invoke),
        cmocka_unit_test(minimax_m3_nested),
        cmocka_unit_test(dsml_invoke),
        cmocka_unit_test(seed_oss_functions),
        cmocka_unit_test(lfm2_pythonic),
        cmocka_unit_test(json_list_formats),
        cmocka_unit_test(functionary_recipients),
        cmocka_unit_test(firefunction_and_apertus),
        cmocka_unit_test(new_formats_soup),
        cmocka_unit_test(grammars_of_new_formats),
        cmocka_unit_test(triggers_of_new_formats),
        cmocka_unit_test(call_grammar_text_is_valid_utf8),
        cmocka_unit_test(templates_write_what_the_parser_reads),
    };
    if (grammar_vocab_load())
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    grammar_vocab_free();
    return rc;
}
