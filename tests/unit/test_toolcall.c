/* test_toolcall.c -- unit tests for src/template/toolcall*.c: which call format a template
 * uses, and the streamed parse of a model's answer into content and tool calls (issue 11,
 * item 2). Every output below is written out as the model would write it; each case runs
 * whole, in 1-byte pieces and cut in two at every position, and must give the same result. */
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
#include "template/reasoning.h"
#include "template/toolcall.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Template fragments naming each format (the real templates are checked in
 * detect_real_templates). */
static const char T_HERMES[] = "{{- '<tool_call>\\n' }}{{- tool_call | tojson }}{{- '\\n</tool_call>' }}";
static const char T_QWEN3_CODER[] = "<tool_call>\\n<function=' + tool_call.name + '>\\n<parameter=' + args_name";
static const char T_GLM[] = "{{ '\\n<tool_call>' + tc.name }}<arg_key>{{ k }}</arg_key>";
static const char T_LLAMA3[] = "<|start_header_id|>{{ 'Respond in the format {\"name\": function name, \"parameters\": "
                               "dictionary}' }}<|python_tag|>";
static const char T_MISTRAL[] = "{{- '[TOOL_CALLS]' + tool_call.function.name + '[ARGS]' }}";
static const char T_HARMONY[] = "<|start|>assistant<|channel|>commentary<|message|>";
static const char T_DEEPSEEK[] = "{{'<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>'}}";
static const char T_GEMMA4[] = "{{- '<|tool_call>call:' + function['name'] + '{' -}}";
static const char T_KIMI[] = "<|tool_calls_section_begin|>{% for tc in calls %}<|tool_call_begin|>";
static const char T_COMMAND_R[] = "<|START_ACTION|>[{\"tool_name\": ...}]<|END_ACTION|>";
static const char T_PLAIN[] = "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}";

#define DS_CALLS_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_CALLS_END "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_CALL_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_CALL_END "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_SEP "<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>"

#include "toolcall_expect.h"

/* ---- detection ------------------------------------------------------------------------------- */

static void detect_finds_the_formats(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *name;
    } cases[] = {
        {T_HERMES, "hermes"}, {T_QWEN3_CODER, "qwen3-coder"}, {T_GLM, "glm"},       {T_LLAMA3, "llama3"},
        {T_MISTRAL, "mistral"}, {T_HARMONY, "harmony"},       {T_DEEPSEEK, "deepseek"}, {T_GEMMA4, "gemma4"},
        {T_KIMI, "kimi"},     {T_COMMAND_R, "command-r"},     {T_PLAIN, "json"},   {NULL, "json"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        assert_string_equal(cfg_of(cases[i].tmpl).name, cases[i].name);
}


static void detect_real_templates(void **state)
{
    (void)state;
    static const struct {
        const char *file, *name;
    } cases[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", "hermes"},
        {"Qwen-Qwen3-0.6B.jinja", "hermes"},
        {"Qwen-QwQ-32B.jinja", "hermes"},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "hermes"},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "hermes"},
        {"ibm-granite-granite-4.0.jinja", "hermes"},
        {"Qwen3-Coder.jinja", "qwen3-coder"},
        {"Qwen3.5-4B.jinja", "qwen3-coder"},
        {"NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja", "qwen3-coder"},
        {"GLM-4.6.jinja", "glm"},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3"},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3"},
        {"meta-llama-Llama-3.3-70B-Instruct.jinja", "llama3"},
        {"meetkai-functionary-medium-v3.1.jinja", "llama3"},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral"},
        {"Mistral-Small-3.2-24B-Instruct-2506.jinja", "mistral"},
        {"unsloth-mistral-Devstral-Small-2507.jinja", "mistral"},
        {"mistralai-Ministral-3-14B-Reasoning-2512.jinja", "mistral"},
        {"openai-gpt-oss-120b.jinja", "harmony"},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "deepseek"},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek"},
        {"deepseek-ai-DeepSeek-V3.1.jinja", "deepseek"},
        {"llama-cpp-deepseek-r1.jinja", "deepseek"},
        {"google-gemma-4-31B-it.jinja", "gemma4"},
        {"moonshotai-Kimi-K2.jinja", "kimi"},
        {"Kimi-K2-Thinking.jinja", "kimi"},
        {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", "command-r"},
        {"google-gemma-2-2b-it.jinja", "json"},
        {"microsoft-Phi-3.5-mini-instruct.jinja", "json"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *t = read_template(cases[i].file);
        if (!t) {
            fprintf(stderr, "missing template %s\n", cases[i].file);
            fail();
        }
        struct toolcall_cfg c = cfg_of(t);
        if (strcmp(c.name, cases[i].name))
            fprintf(stderr, "%s: %s, expected %s\n", cases[i].file, c.name, cases[i].name);
        assert_string_equal(c.name, cases[i].name);
        free(t);
    }
}

static void marker_tokens(void **state)
{
    (void)state;
    struct toolcall_cfg m = cfg_of(T_MISTRAL), l = cfg_of(T_LLAMA3), g = cfg_of(T_GEMMA4), h = cfg_of(T_HERMES);
    assert_true(toolcall_marker_token(&m, "[TOOL_CALLS]", 12));
    assert_true(toolcall_marker_token(&m, "[ARGS]", 6));
    assert_true(toolcall_marker_token(&m, "[CALL_ID]", 9));
    assert_false(toolcall_marker_token(&m, "[INST]", 6));
    assert_true(toolcall_marker_token(&l, "<|python_tag|>", 14));
    assert_false(toolcall_marker_token(&l, "<|eot_id|>", 10));
    assert_true(toolcall_marker_token(&g, "<|tool_call>", 12));
    assert_true(toolcall_marker_token(&g, "<|\"|>", 5));
    assert_true(toolcall_marker_token(&h, "<tool_call>", 11));
    assert_false(toolcall_marker_token(&h, "<", 1));
}

/* ---- hermes / Qwen ------------------------------------------------------------------------------- */

static void hermes_calls(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_HERMES);
    /* As Qwen2.5 and Qwen3 write it. */
    expect(&c, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "",
           "get_weather {\"city\":\"Paris\"}|");
    /* Text before the call is content; it streams before the call is complete. */
    expect(&c, "Let me check.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
           "Let me check.\n", "get_time {}|");
    /* Two calls; the whitespace between and after them is dropped. */
    expect(&c,
           "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
           "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2}}\n</tool_call>\n",
           "", "get_weather {\"city\":\"Paris\"}|get_weather {\"city\":\"Oslo\",\"days\":2}|");
    /* Arguments written as JSON text, and "parameters". */
    expect(&c, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": [1, 2]}\"}</tool_call>", "",
           "f {\"a\":[1,2]}|");
    expect(&c, "<tool_call>{\"name\": \"f\", \"parameters\": {\"x\": null}}</tool_call>", "", "f {\"x\":null}|");
    /* Numbers as the model wrote them; text after a call is content. */
    expect(&c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"lat\": 48.85, \"n\": -3, \"e\": 1e-7}}</tool_call>\n\nDone.",
           "Done.", "f {\"lat\":48.85,\"n\":-3,\"e\":1e-7}|");
    /* Markers and braces inside strings. */
    expect(&c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"s\": \"}{ </tool \\\" \\u00e9\"}}</tool_call>", "",
           "f {\"s\":\"}{ </tool \\\" \xc3\xa9\"}|");
    /* The closing tag lost to the end of the stream: the JSON is complete, so it is a call. */
    expect(&c, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n", "", "get_time {}|");
}

/* Replies print reals as short as they read back, never in exponent form for an integer
 * part jansson's %g would shorten (10000.0 stays 10000.0); one precision for the document. */
static void json_dump_keeps_numbers_short(void **state)
{
    (void)state;
    json_t *v = json_pack("[f, f, f, f, i]", 10000.0, 48.85, -0.773874938, 123456789.5, 7);
    char *s = toolcall_json_dump(v);
    assert_string_equal(s, "[10000.0,48.85,-0.773874938,123456789.5,7]");
    free(s);
    json_decref(v);
    v = json_pack("{s:f}", "x", 1e6);
    s = toolcall_json_dump(v);
    assert_string_equal(s, "{\"x\":1000000.0}");
    free(s);
    json_decref(v);
}

static void hermes_malformed_is_content(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_HERMES);
    expect_content(&c, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>");
    expect_content(&c, "<tool_call>{\"arguments\": {}}</tool_call>");             /* no name */
    expect_content(&c, "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>"); /* not an object */
    expect_content(&c, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\":");     /* cut off */
    expect_content(&c, "<tool_call>just words</tool_call>");
    expect_content(&c, "Hello <tool world, <tool_ca");
    /* A bad call, then a good one: the first is content, the second a call. */
    expect(&c, "<tool_call>{bad}</tool_call>\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
           "<tool_call>{bad}</tool_call>\n", "f {}|");
}

static void content_streams_at_once(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_HERMES);
    struct toolcall_parser p;
    struct sink k = {0};
    struct toolcall_sink sk = {on_content, on_call, &k};
    toolcall_init(&p, &c, NULL);
    toolcall_feed(&p, "Hello", 5, &sk);
    assert_string_equal(k.content, "Hello"); /* nothing held: it cannot start a marker */
    toolcall_feed(&p, " <tool", 6, &sk);
    assert_string_equal(k.content, "Hello "); /* "<tool" may be <tool_call> */
    toolcall_feed(&p, "s>", 2, &sk);
    assert_string_equal(k.content, "Hello <tools>");
    /* A character cut between pieces is held until it is whole. */
    toolcall_feed(&p, " \xc3", 2, &sk);
    assert_string_equal(k.content, "Hello <tools> ");
    toolcall_feed(&p, "\xa9", 1, &sk);
    assert_string_equal(k.content, "Hello <tools> \xc3\xa9");
    toolcall_feed(&p, "<tool_call>{\"name\"", 18, &sk);
    assert_string_equal(k.content, "Hello <tools> \xc3\xa9");
    assert_int_equal(k.n_calls, 0);
    toolcall_feed(&p, ": \"f\", \"arguments\": {}}</tool_call>", 35, &sk);
    assert_int_equal(k.n_calls, 1); /* handed on as soon as it closed */
    toolcall_finish(&p, &sk);
    toolcall_fini(&p);
    assert_string_equal(k.calls, "f {}|");
}

static void utf8_content_in_bytes(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_DEEPSEEK);
    /* Multi-byte characters next to a multi-byte marker, every cut. */
    expect(&c, "caf\xc3\xa9 \xe2\x9c\x93 <\xef\xbd\x9c \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x9c\x93 <\xef\xbd\x9c \xf0\x9f\x98\x80",
           "");
}

/* ---- Qwen3-Coder, GLM ------------------------------------------------------------------------------ */

static void qwen3_coder_xml(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_QWEN3_CODER);
    /* The schema decides: days is an integer, zip a string even though it looks like one. */
    expect(&c,
           "<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n<parameter=days>\n3\n"
           "</parameter>\n<parameter=zip>\n10001\n</parameter>\n</function>\n</tool_call>",
           "", "get_weather {\"city\":\"New York\",\"days\":3,\"zip\":\"10001\"}|");
    /* Multi-line text stays text; with no schema, JSON values are JSON. */
    expect(&c,
           "I'll write it.\n<tool_call>\n<function=write_file>\n<parameter=content>\nline 1\nline 2\n</parameter>\n"
           "<parameter=mode>\n{\"append\": true}\n</parameter>\n<parameter=n>\n7\n</parameter>\n</function>\n</tool_call>",
           "I'll write it.\n", "write_file {\"content\":\"line 1\\nline 2\",\"mode\":{\"append\":true},\"n\":7}|");
    /* Two calls, and a call that forgot its <tool_call> (Qwen3-Coder does). */
    expect(&c,
           "<tool_call>\n<function=get_time>\n</function>\n</tool_call>\n<function=get_weather>\n<parameter=city>\n"
           "Oslo\n</parameter>\n</function>\n</tool_call>",
           "", "get_time {}|get_weather {\"city\":\"Oslo\"}|");
    expect_content(&c, "#include <functional>\nint main() {}");
    expect_content(&c, "<tool_call>\n<function=f>\n<parameter=a>\nno end");
}

static void glm_args(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_GLM);
    expect(&c,
           "Checking.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
           "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>",
           "Checking.\n", "get_weather {\"city\":\"Paris\",\"days\":2}|");
    expect(&c, "<tool_call>get_time\n</tool_call>", "", "get_time {}|");
    expect_content(&c, "<tool_call>two words\n</tool_call>");
}

/* ---- Llama 3.x --------------------------------------------------------------------------------------- */

static void llama3_json(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_LLAMA3);
    expect(&c, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", "get_weather {\"city\":\"Paris\"}|");
    expect(&c, "\n\n  {\"type\": \"function\", \"name\": \"get_time\", \"parameters\": {}}", "", "get_time {}|");
    /* Two calls (Llama 3.2 separates them with `;`). */
    expect(&c, "{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"get_weather\", \"parameters\": {\"days\": 1}}",
           "", "get_time {}|get_weather {\"days\":1}|");
    /* JSON that is not a call, a call that is not at the start, an unfinished one: content. */
    expect_content(&c, "{\"answer\": 42}");
    expect_content(&c, "{\"name\": \"Bob\"}");
    expect_content(&c, "Sure: {\"name\": \"get_time\", \"parameters\": {}}");
    expect_content(&c, "{\"name\": \"get_time\", \"parameters\": {");
    expect_content(&c, "  plain answer");
}

static void llama3_python_tag(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_LLAMA3);
    expect(&c, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "",
           "get_weather {\"city\":\"Paris\"}|");
    expect(&c, "<|python_tag|>brave_search.call(query=\"weather in Paris\", n=3, safe=True)", "",
           "brave_search {\"query\":\"weather in Paris\",\"n\":3,\"safe\":true}|");
    expect(&c, "<|python_tag|>print(6 * 7)", "", "python {\"code\":\"print(6 * 7)\"}|");
    /* Llama 3.1's custom-tool format. */
    expect(&c, "<function=get_weather>{\"city\": \"Oslo\"}</function>", "", "get_weather {\"city\":\"Oslo\"}|");
}

/* ---- Mistral ------------------------------------------------------------------------------------------- */

static void mistral_forms(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_MISTRAL);
    /* Nemo: a JSON array, with ids. */
    expect(&c,
           "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"a1b2c3d4e\"}, "
           "{\"name\": \"get_time\", \"arguments\": {}, \"id\": \"f5g6h7i8j\"}]",
           "", "get_weather {\"city\":\"Paris\"} a1b2c3d4e|get_time {} f5g6h7i8j|");
    /* Small 3.2: NAME[CALL_ID]ID[ARGS]{…} */
    expect(&c, "[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"city\": \"Paris\"}", "",
           "get_weather {\"city\":\"Paris\"} a1b2c3d4e|");
    /* Devstral / Ministral 3: NAME[ARGS]{…}, one [TOOL_CALLS] per call, text before. */
    expect(&c, "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{}", "Sure.",
           "get_weather {\"city\":\"Paris\"}|get_time {}|");
    expect_content(&c, "[TOOL_CALLS]get_weather[ARGS]{\"city\": ");
    expect_content(&c, "[TOOL_CALLS] is what I would write");
    expect_content(&c, "[TOOL_CALLS][{\"name\": 1}]");
    expect_content(&c, "[TOOLS] and [TOOL_CALL");
}

/* ---- Harmony: reasoning.c reads the headers, toolcall.c the calls -------------------------------------- */

struct harmony_sink {
    struct toolcall_parser *calls;
    struct toolcall_sink *sk;
    char thinking[1024];
    size_t n_thinking;
};

static void harmony_piece(void *ud, bool thinking, const char *text, size_t len)
{
    struct harmony_sink *h = ud;
    if (!thinking) {
        toolcall_feed(h->calls, text, len, h->sk);
        return;
    }
    memcpy(h->thinking + h->n_thinking, text, len);
    h->n_thinking += len;
    h->thinking[h->n_thinking] = '\0';
}

static void harmony_run(const char *text, bool bytes, struct sink *k, struct harmony_sink *h)
{
    struct reasoning_cfg rc;
    reasoning_detect(T_HARMONY, "<|start|>assistant", NULL, &rc);
    rc.calls = true;
    struct reasoning_split rs;
    reasoning_init(&rs, &rc);
    struct toolcall_cfg tc = cfg_of(T_HARMONY);
    struct toolcall_parser p;
    struct toolcall_sink sk = {on_content, on_call, k};
    memset(k, 0, sizeof *k);
    memset(h, 0, sizeof *h);
    h->calls = &p;
    h->sk = &sk;
    toolcall_init(&p, &tc, TOOLS);
    size_t len = strlen(text);
    for (size_t i = 0; i < len; i += bytes ? 1 : len)
        reasoning_feed(&rs, text + i, bytes ? 1 : len, harmony_piece, h);
    reasoning_finish(&rs, harmony_piece, h);
    toolcall_finish(&p, &sk);
    toolcall_fini(&p);
}

static void harmony_expect(const char *text, const char *thinking, const char *content, const char *calls)
{
    struct sink k;
    struct harmony_sink h;
    for (int bytes = 0; bytes < 2; bytes++) {
        harmony_run(text, bytes, &k, &h);
        assert_string_equal(h.thinking, thinking);
        assert_string_equal(k.content, content);
        assert_string_equal(k.calls, calls);
    }
}

static void harmony_calls(void **state)
{
    (void)state;
    /* The recipient in the channel part; <|call|> ends the generation and is not rendered. */
    harmony_expect("<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary "
                   "to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}",
                   "Need the weather.", "", "get_weather {\"city\":\"Paris\"}|");
    /* The recipient in the role part, <|call|> written, then a second call. */
    harmony_expect("<|start|>assistant to=functions.get_time<|channel|>commentary json<|message|>{}<|call|>"
                   "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{\"days\": 2}<|call|>",
                   "", "", "get_time {}|get_weather {\"days\":2}|");
    /* A preamble on commentary, then the final answer: content. */
    harmony_expect("<|channel|>commentary<|message|>Let me look.<|end|><|start|>assistant<|channel|>final<|message|>Sunny.",
                   "", "Let me look.Sunny.", "");
    /* Arguments that are not JSON stay visible. */
    harmony_expect("<|channel|>commentary to=functions.get_time<|message|>oops",
                   "", REASONING_CALL_OPEN "functions.get_time" REASONING_CALL_ARGS "oops" REASONING_CALL_CLOSE, "");
}

static void harmony_without_calls_is_unchanged(void **state)
{
    (void)state;
    /* reasoning_cfg.calls unset (a request without tools): the arguments are answer text. */
    struct reasoning_cfg rc;
    reasoning_detect(T_HARMONY, "<|start|>assistant", NULL, &rc);
    assert_false(rc.calls);
}

/* ---- DeepSeek, Gemma 4, Kimi, Command R ------------------------------------------------------------------ */

static void deepseek_forms(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_DEEPSEEK);
    /* R1 / V3: the type, the name, the arguments in a json fence. */
    expect(&c,
           "I will look it up." DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP "get_weather\n```json\n{\"city\": "
           "\"Paris\"}\n```" DS_CALL_END "\n" DS_CALL_BEGIN "function" DS_SEP "get_time\n```json\n{}\n```" DS_CALL_END
           DS_CALLS_END,
           "I will look it up.", "get_weather {\"city\":\"Paris\"}|get_time {}|");
    /* V3.1: the name, then the arguments. */
    expect(&c, DS_CALLS_BEGIN DS_CALL_BEGIN "get_weather" DS_SEP "{\"city\": \"Oslo\"}" DS_CALL_END DS_CALLS_END, "",
           "get_weather {\"city\":\"Oslo\"}|");
    /* The outer markers left out. */
    expect(&c, DS_CALL_BEGIN "get_time" DS_SEP "{}" DS_CALL_END, "", "get_time {}|");
    expect_content(&c, DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP "get_weather\n```json\n{\"city\": " DS_CALL_END
                       DS_CALLS_END);
    expect_content(&c, DS_CALLS_BEGIN DS_CALL_BEGIN "get_weather" DS_SEP "{\"city\"");
}

static void gemma4_values(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_GEMMA4);
    expect(&c,
           "<|tool_call>call:get_weather{city:<|\"|>Paris, France<|\"|>,days:3,metric:true,opts:{unit:<|\"|>C<|\"|>},"
           "tags:[<|\"|>a<|\"|>,<|\"|>b<|\"|>],x:null,t:-1.5}<tool_call|>",
           "", "get_weather {\"city\":\"Paris, France\",\"days\":3,\"metric\":true,\"opts\":{\"unit\":\"C\"},"
               "\"tags\":[\"a\",\"b\"],\"x\":null,\"t\":-1.5}|");
    expect(&c, "Checking.<|tool_call>call:get_time{}<tool_call|><|tool_call>call:get_weather{days:1}<tool_call|>",
           "Checking.", "get_time {}|get_weather {\"days\":1}|");
    expect_content(&c, "<|tool_call>call:get_weather{city:<|\"|>Paris}<tool_call|>");
    expect_content(&c, "<|tool_call>get_weather{}<tool_call|>");
}

static void kimi_sections(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_KIMI);
    expect(&c,
           "Let me see.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
           "{\"city\": \"Paris\"}<|tool_call_end|><|tool_call_begin|>functions.get_time:1<|tool_call_argument_begin|>{}"
           "<|tool_call_end|><|tool_calls_section_end|>",
           "Let me see.", "get_weather {\"city\":\"Paris\"} functions.get_weather:0|get_time {} functions.get_time:1|");
    expect_content(&c, "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{");
}

static void command_r_action(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_COMMAND_R);
    expect(&c,
           "<|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"get_weather\", \"parameters\": {\"city\": "
           "\"Paris\"}},\n    {\"tool_call_id\": \"1\", \"tool_name\": \"get_time\", \"parameters\": {}}\n]<|END_ACTION|>",
           "", "get_weather {\"city\":\"Paris\"} 0|get_time {} 1|");
}

/* ---- the generic JSON fallback ----------------------------------------------------------------------------- */

static void generic_json(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_PLAIN);
    expect(&c, "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"function\": "
               "{\"name\": \"get_time\", \"arguments\": \"{}\"}, \"id\": \"call_1\"}]}",
           "", "get_weather {\"city\":\"Paris\"}|get_time {} call_1|");
    expect(&c, " {\"name\": \"get_time\", \"arguments\": {}}", "", "get_time {}|");
    expect(&c, "{\"tool_call\": {\"name\": \"get_time\", \"arguments\": {}}}", "", "get_time {}|");
    /* Only the request's own tools: anything else is an answer that happens to be JSON. */
    expect_content(&c, "{\"name\": \"Bob\", \"arguments\": {\"age\": 3}}");
    expect_content(&c, "{\"city\": \"Paris\"}");
    expect_content(&c, "The weather is fine.");
    /* Without the tools list, any name goes. */
    expect_with(&c, NULL, "{\"name\": \"Bob\", \"arguments\": {}}", "", "Bob {}|");
}

static void long_call_in_one_piece(void **state)
{
    (void)state;
    struct toolcall_cfg c = cfg_of(T_HERMES);
    size_t n = 200000;
    char *text = malloc(n + 200);
    assert_non_null(text);
    size_t at = (size_t)sprintf(text, "<tool_call>{\"name\": \"f\", \"arguments\": {\"s\": \"");
    memset(text + at, 'x', n);
    at += n;
    strcpy(text + at, "\"}}</tool_call>");
    struct sink k;
    feed_cuts(&c, NULL, text, NULL, 0, &k);
    assert_int_equal(k.n_calls, 1);
    assert_string_equal(k.content, "");
    assert_string_equal(k.calls, "f <200008 bytes>|");
    /* Streamed in 7-byte pieces: each piece costs a scan of the new bytes only. */
    size_t len = strlen(text), n_cuts = len / 7;
    size_t *cuts = malloc(n_cuts * sizeof *cuts);
    for (size_t i = 0; i < n_cuts; i++)
        cuts[i] = (i + 1) * 7 < len ? (i + 1) * 7 : len - 1;
    feed_cuts(&c, NULL, text, cuts, n_cuts, &k);
    assert_int_equal(k.n_calls, 1);
    free(cuts);
    free(text);
}

/* tool_choice "required": a grammar that writes one call in the format, {} for a function
 * without parameters, any object otherwise; the reasoning block the prompt opened is closed
 * first. Formats it does not write yet give NULL. */
static void grammar_for_one_call(void **state)
{
    (void)state;
    struct toolcall_cfg h = cfg_of(T_HERMES);
    char *g = toolcall_grammar(&h, TOOLS, "get_time", NULL, 1);
    assert_non_null(g);
    assert_non_null(strstr(g, "root ::= call\ncall ::= ( \"<tool_call>\" ws \"{\" ws \"\\\"name\\\"\" ws \":\" ws "
                              "\"\\\"\" \"get_time\" \"\\\"\" ws \",\" ws \"\\\"arguments\\\"\" ws \":\" ws tool1-root ws "
                              "\"}\" ws \"</tool_call>\" )\n"));
    assert_non_null(strstr(g, "\ntool1-root ::= "));
    assert_non_null(strstr(g, "object ::= "));
    free(g);
    g = toolcall_grammar(&h, TOOLS, NULL, "</think>", 1);
    assert_non_null(g);
    assert_non_null(strstr(g, "root ::= \"</think>\" \"\\n\\n\" call\n"));
    /* get_weather's arguments are held to its schema, under its own rule names */
    assert_non_null(strstr(g, "\"get_weather\" \"\\\"\" ws \",\" ws \"\\\"arguments\\\"\" ws \":\" ws tool"));
    assert_non_null(strstr(g, " | ( "));
    free(g);
    struct toolcall_cfg m = cfg_of(T_MISTRAL);
    assert_true(m.name_args);
    g = toolcall_grammar(&m, TOOLS, "get_weather", NULL, 1);
    assert_non_null(strstr(g, "( \"[TOOL_CALLS]\" \"get_weather\" \"[ARGS]\" tool"));
    free(g);
    /* "auto": the same calls, lazily, from the marker at the end of the text */
    g = toolcall_grammar_auto(&h, TOOLS, TOOLCALL_MAX_CALLS);
    assert_non_null(strstr(g, "root ::= call ( ws call ){0,7}\n"));
    free(g);
    /* parallel_tool_calls false: one call, in "auto" too; "required" with parallel calls:
     * one or more, and libllama takes two calls in a row but not nine */
    g = toolcall_grammar_auto(&h, TOOLS, 1);
    assert_non_null(strstr(g, "root ::= call\ncall ::= "));
    free(g);
    g = toolcall_grammar(&h, TOOLS, NULL, NULL, TOOLCALL_MAX_CALLS);
    assert_non_null(strstr(g, "root ::= call ( ws call ){0,7}\n"));
    static const char one[] = "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>";
    char two[256], nine[1024] = "";
    snprintf(two, sizeof two, "%s\n%s", one, one);
    for (int i = 0; i < 9; i++)
        strcat(strcat(nine, i ? "\n" : ""), one);
    assert_true(accepts(g, one));
    assert_true(accepts(g, two));
    assert_false(accepts(g, nine));
    free(g);
    g = toolcall_grammar(&h, TOOLS, NULL, NULL, 1);
    assert_true(accepts(g, one));
    assert_false(accepts(g, two));
    free(g);
    const char *word;
    g = toolcall_trigger(&h, &word);
    assert_string_equal(g, "<tool_call>$");
    assert_string_equal(word, "<tool_call>");
    free(g);
    g = toolcall_trigger(&m, &word);
    assert_string_equal(g, "\\[TOOL_CALLS\\]$");
    free(g);
    struct toolcall_cfg l3 = cfg_of(T_LLAMA3);
    g = toolcall_trigger(&l3, &word);
    assert_non_null(g);
    assert_null(word);
    assert_int_equal(g[0], '^');
    free(g);
    assert_null(toolcall_grammar(&h, TOOLS, "get_stock", NULL, 1)); /* not a tool */
    assert_null(toolcall_grammar(&h, NULL, NULL, NULL, 1));
    struct toolcall_cfg x = cfg_of(T_QWEN3_CODER);
    const char *open[4];
    bool bare;
    assert_int_equal(toolcall_openers(&x, open, 4, &bare), 2);
    assert_string_equal(open[0], "<tool_call>");
    assert_false(bare);
    struct toolcall_cfg l = cfg_of(T_LLAMA3);
    assert_int_equal(toolcall_openers(&l, open, 4, &bare), 2);
    assert_true(bare);
}

/* The call grammars of the formats whose calls are not JSON in a tag: the grammar's shape,
 * and a call written in that shape (blanks left out where `ws` stands, a value where a
 * rule stands), parsed back by the format's own parser. */
static void grammar_for_gpt_oss_qwen3_coder_and_deepseek(void **state)
{
    (void)state;
    const char *word;
    /* gpt-oss: the message after <|start|>assistant; reasoning.c hands the call on. */
    struct toolcall_cfg hm = cfg_of(T_HARMONY);
    char *g = toolcall_grammar(&hm, TOOLS, "get_weather", NULL, 1);
    assert_non_null(g);
    assert_non_null(strstr(g, "call ::= ( \"<|channel|>commentary to=functions.\" \"get_weather\" ws "
                              "\"<|constrain|>json<|message|>\" tool0-root )\n"));
    free(g);
    harmony_expect("<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}",
                   "", "", "get_weather {\"city\":\"Paris\"}|");
    harmony_expect("<|channel|>commentaryto=functions.get_time<|constrain|>json<|message|>{}", "", "", "get_time {}|");
    g = toolcall_trigger(&hm, &word);
    assert_string_equal(g, "<\\|channel\\|>commentary to=$");
    free(g);

    /* Qwen3-Coder: each property a <parameter=K> text, in the schema's order. */
    struct toolcall_cfg q = cfg_of(T_QWEN3_CODER);
    g = toolcall_grammar(&q, TOOLS, NULL, NULL, 1);
    assert_non_null(g);
    assert_non_null(strstr(g, "( \"<tool_call>\\n<function=\" \"get_weather\" \">\\n\" tool0-args "
                              "\"</function>\\n</tool_call>\" ) | ( \"<tool_call>\\n<function=\" \"get_time\" \">\\n\" "
                              "tool1-args \"</function>\\n</tool_call>\" )\n"));
    assert_non_null(strstr(g, "\ntool0-args ::= \"\" ( \"<parameter=\" \"city\" \">\\n\" tool0-k0 "
                              "\"\\n</parameter>\\n\" )? ( \"<parameter=\" \"days\" "));
    assert_non_null(strstr(g, "\ntool0-k0 ::= xml-char{1,4096}\n"));
    assert_non_null(strstr(g, "\ntool0-k1 ::= tool0-k1-root\n")); /* days: an integer, as JSON */
    assert_non_null(strstr(g, "\ntool1-args ::= \"\"\n"));
    assert_non_null(strstr(g, "\nxml-char ::= [\\x09\\x0A\\x0D\\x20-\\x3B\\x3D-\\uD7FF\\uE000-\\U0010FFFF] | \"<\" "
                              "[\\x09\\x0A\\x0D\\x20-\\x2E\\x30-\\x3B\\x3D-\\uD7FF\\uE000-\\U0010FFFF]\n"));
    free(g);
    /* a required parameter is always written */
    static const char req[] = "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                              "\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]}}}]";
    g = toolcall_grammar(&q, req, NULL, NULL, 1);
    assert_non_null(strstr(g, "\ntool0-args ::= \"\" ( \"<parameter=\" \"a\" \">\\n\" tool0-k0 \"\\n</parameter>\\n\" )\n"));
    free(g);
    expect(&q, "<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n<parameter=days>\n3\n"
               "</parameter>\n</function>\n</tool_call>",
           "", "get_weather {\"city\":\"New York\",\"days\":3}|");
    expect(&q, "<tool_call>\n<function=get_time>\n</function>\n</tool_call>", "", "get_time {}|");
    g = toolcall_trigger(&q, &word);
    assert_string_equal(g, "<tool_call>$");
    free(g);

    /* DeepSeek R1/V3: the fenced JSON call in a calls block. */
    struct toolcall_cfg d = cfg_of(T_DEEPSEEK);
    g = toolcall_grammar(&d, TOOLS, "get_time", "</think>", 1);
    assert_non_null(g);
    assert_non_null(strstr(g, "root ::= \"</think>\" \"\\n\\n\" call\ncall ::= ( \"" DS_CALLS_BEGIN DS_CALL_BEGIN
                              "function" DS_SEP "\" \"get_time\" \"\\n```json\\n\" tool1-root \"\\n```" DS_CALL_END
                              DS_CALLS_END "\" )\n"));
    free(g);
    expect(&d, DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP "get_weather\n```json\n{\"city\": \"Paris\"}\n```" DS_CALL_END
               DS_CALLS_END,
           "", "get_weather {\"city\":\"Paris\"}|");
    expect(&d, DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP "get_time\n```json\n{}\n```" DS_CALL_END DS_CALLS_END
               DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP "get_time\n```json\n{}\n```" DS_CALL_END DS_CALLS_END,
           "", "get_time {}|get_time {}|");
    g = toolcall_trigger(&d, &word);
    assert_string_equal(word, DS_CALLS_BEGIN);
    free(g);
    /* V3.1: NAME<｜tool▁sep｜>{…}, no type, no fence */
    struct toolcall_cfg v = cfg_of("{{'" DS_CALLS_BEGIN DS_CALL_BEGIN "' + tool['function']['name'] + '" DS_SEP "'}}");
    assert_true(v.name_args);
    assert_false(d.name_args);
    g = toolcall_grammar(&v, TOOLS, "get_weather", NULL, 1);
    assert_non_null(strstr(g, "call ::= ( \"" DS_CALLS_BEGIN DS_CALL_BEGIN "\" \"get_weather\" \"" DS_SEP "\" tool0-root \""
                              DS_CALL_END DS_CALLS_END "\" )\n"));
    free(g);
    expect(&v, DS_CALLS_BEGIN DS_CALL_BEGIN "get_weather" DS_SEP "{\"city\": \"Paris\"}" DS_CALL_END DS_CALLS_END, "",
           "get_weather {\"city\":\"Paris\"}|");
}

/* The formats whose arguments are not one JSON object (Qwen3-Coder, GLM, Gemma 4): libllama
 * takes each grammar, a call that fits the schema passes it and is read back by the format's
 * parser with the right JSON types, and calls that do not fit (a missing required
 * parameter, text where an integer goes, a value outside an enum, an unknown key) are refused. */
static const char TYPED_TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"book\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},\"nights\":{\"type\":\"integer\",\"minimum\":1},"
    "\"room\":{\"enum\":[\"single\",\"double\"]},\"breakfast\":{\"type\":\"boolean\"},\"tags\":{\"type\":\"array\"}},"
    "\"required\":[\"city\",\"nights\"]}}}]";

static void typed_call(const char *tmpl, const char *good, const char *const *bad, size_t n_bad, const char *calls)
{
    struct toolcall_cfg c = cfg_of(tmpl);
    char *g = toolcall_grammar(&c, TYPED_TOOLS, NULL, NULL, 1);
    assert_non_null(g);
    if (!accepts(g, good))
        fail_msg("%s grammar refuses its own call:\n%s\n--- grammar:\n%s", c.name, good, g);
    for (size_t i = 0; i < n_bad; i++)
        if (accepts(g, bad[i]))
            fail_msg("%s grammar takes a call that does not fit the schema:\n%s", c.name, bad[i]);
    free(g);
    expect_with(&c, TYPED_TOOLS, good, "", calls);
}

static void grammar_for_qwen3_coder_glm_and_gemma4_holds_value_types(void **state)
{
    (void)state;
    static const char *const qwen_bad[] = {
        "<tool_call>\n<function=book>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>\n<function=book>\n<parameter=city>\nParis\n</parameter>\n<parameter=nights>\nthree\n"
        "</parameter>\n</function>\n</tool_call>",
        "<tool_call>\n<function=book>\n<parameter=city>\nParis\n</parameter>\n<parameter=nights>\n2\n</parameter>\n"
        "<parameter=room>\nsuite\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>\n<function=book>\n<parameter=city>\nParis is lovely\n</parameter>\n<parameter=nights>\n2\n"
        "</parameter>\n</function>\n</tool_call>",
    };
    typed_call(T_QWEN3_CODER,
               "<tool_call>\n<function=book>\n<parameter=city>\nParis\n</parameter>\n<parameter=nights>\n2\n</parameter>\n"
               "<parameter=room>\ndouble\n</parameter>\n<parameter=breakfast>\ntrue\n</parameter>\n</function>\n"
               "</tool_call>",
               qwen_bad, ARRAY_LEN(qwen_bad), "book {\"city\":\"Paris\",\"nights\":2,\"room\":\"double\",\"breakfast\":true}|");

    static const char *const glm_bad[] = {
        "<tool_call>book\n<arg_key>nights</arg_key>\n<arg_value>2</arg_value>\n</tool_call>",
        "<tool_call>book\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n<arg_key>nights</arg_key>\n"
        "<arg_value>0</arg_value>\n</tool_call>",
        "<tool_call>hotel\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n</tool_call>",
    };
    typed_call(T_GLM,
               "<tool_call>book\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n<arg_key>nights</arg_key>\n"
               "<arg_value>3</arg_value>\n<arg_key>tags</arg_key>\n<arg_value>[\"quiet\"]</arg_value>\n</tool_call>",
               glm_bad, ARRAY_LEN(glm_bad), "book {\"city\":\"Oslo\",\"nights\":3,\"tags\":[\"quiet\"]}|");

    static const char *const gemma_bad[] = {
        "<|tool_call>call:book{city:<|\"|>Rome<|\"|>}<tool_call|>",                          /* nights missing */
        "<|tool_call>call:book{city:<|\"|>Rome<|\"|>,nights:<|\"|>2<|\"|>}<tool_call|>",     /* a string */
        "<|tool_call>call:book{city:<|\"|>Rome<|\"|>,nights:2,room:<|\"|>suite<|\"|>}<tool_call|>",
        "<|tool_call>call:book{city:<|\"|>Rome<|\"|>,nights:2,view:true}<tool_call|>",       /* unknown key */
        "<|tool_call>call:book{nights:2,city:<|\"|>Rome<|\"|>}<tool_call|>",                 /* not sorted */
    };
    typed_call(T_GEMMA4,
               "<|tool_call>call:book{breakfast:false,city:<|\"|>Rome<|\"|>,nights:2,room:<|\"|>single<|\"|>,"
               "tags:[<|\"|>a<|\"|>,1]}<tool_call|>",
               gemma_bad, ARRAY_LEN(gemma_bad),
               "book {\"breakfast\":false,\"city\":\"Rome\",\"nights\":2,\"room\":\"single\",\"tags\":[\"a\",1]}|");

    /* a function without parameters: exactly {} (Gemma), nothing (GLM) */
    struct toolcall_cfg gm = cfg_of(T_GEMMA4), gl = cfg_of(T_GLM);
    char *g = toolcall_grammar(&gm, TOOLS, "get_time", NULL, 1);
    assert_true(accepts(g, "<|tool_call>call:get_time{}<tool_call|>"));
    assert_false(accepts(g, "<|tool_call>call:get_time{a:1}<tool_call|>"));
    free(g);
    g = toolcall_grammar(&gl, TOOLS, "get_time", NULL, 1);
    assert_true(accepts(g, "<tool_call>get_time\n</tool_call>"));
    free(g);
    /* "auto": the lazy trigger is the format's opening marker */
    const char *word;
    g = toolcall_trigger(&gm, &word);
    assert_string_equal(word, "<|tool_call>");
    free(g);
}

/* Random soups of markers, marker halves, JSON pieces, text and multi-byte characters, in
 * every format: the output never depends on where the text is cut, and an answer that made
 * no call comes back byte for byte. (Deterministic: a fixed LCG.) */
static void random_soup_is_cut_independent_and_never_lost(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        "<tool_call>", "</tool_call>", "<tool_", "call>", "{", "}", "[", "]", "\"name\": \"get_time\"", ", ",
        "\"arguments\": {}", "\"parameters\": {}", ":", "\"", "\\", "\n", " ", "text", "caf\xc3\xa9", "\xe2\x9c\x93",
        "<function=get_time>", "</function>", "<parameter=a>", "</parameter>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]",
        "<|python_tag|>", DS_CALLS_BEGIN, DS_CALL_BEGIN, DS_SEP, DS_CALL_END, DS_CALLS_END, "<|tool_call>",
        "call:get_time", "<tool_call|>", "<|\"|>", "<|tool_calls_section_begin|>", "<|tool_call_begin|>",
        "functions.get_time:0", "<|tool_call_argument_begin|>", "<|tool_call_end|>", "<|START_ACTION|>",
        "<|END_ACTION|>", "```json", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "<", "|",
        /* whole calls, so that calls happen too */
        "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>", "[TOOL_CALLS]get_time[ARGS]{}",
        "{\"name\": \"get_time\", \"parameters\": {}}", "{\"name\": \"get_time\", \"arguments\": {}}",
        "<tool_call>\n<function=get_time>\n</function>\n</tool_call>", "<tool_call>get_time\n</tool_call>",
        DS_CALL_BEGIN "get_time" DS_SEP "{}" DS_CALL_END, "<|tool_call>call:get_time{}<tool_call|>",
        "<|tool_call_begin|>functions.get_time:0<|tool_call_argument_begin|>{}<|tool_call_end|>",
        "<|START_ACTION|>[{\"tool_name\": \"get_time\", \"parameters\": {}}]<|END_ACTION|>",
        REASONING_CALL_OPEN "functions.get_time" REASONING_CALL_ARGS "{}" REASONING_CALL_CLOSE,
    };
    static const char *const tmpls[] = {T_HERMES, T_QWEN3_CODER, T_GLM,       T_LLAMA3,    T_MISTRAL, T_DEEPSEEK,
                                        T_GEMMA4, T_KIMI,        T_COMMAND_R, T_PLAIN, T_HARMONY};
    uint64_t rng = 42;
    char text[1024];
    for (size_t f = 0; f < ARRAY_LEN(tmpls); f++) {
        struct toolcall_cfg c = cfg_of(tmpls[f]);
        int with_calls = 0, without = 0;
        for (int round = 0; round < 150; round++) {
            size_t n = 0;
            int k = 1 + (int)((rng >> 33) % 24);
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
            if (!whole.n_calls)
                assert_string_equal(whole.content, text);
            with_calls += whole.n_calls > 0;
            without += whole.n_calls == 0;
            size_t cuts[8], n_cuts = 0;
            for (size_t i = 0; i < 8 && n > 1; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = 1 + (size_t)((rng >> 33) % (n - 1));
                if (!n_cuts || at > cuts[n_cuts - 1])
                    cuts[n_cuts++] = at;
            }
            feed_cuts(&c, TOOLS, text, cuts, n_cuts, &cut);
            assert_string_equal(cut.content, whole.content);
            assert_string_equal(cut.calls, whole.calls);
            feed_bytes(&c, TOOLS, text, &cut);
            assert_string_equal(cut.content, whole.content);
            assert_string_equal(cut.calls, whole.calls);
        }
        if (!with_calls || !without)
            fprintf(stderr, "%s: %d rounds with calls, %d without\n", c.name, with_calls, without);
        assert_true(with_calls > 0 && without > 0);
    }
}

static void none_passes_through(void **state)
{
    (void)state;
    struct toolcall_cfg c = {.format = TOOLCALL_NONE, .name = "none"};
    expect(&c, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detect_finds_the_formats),
        cmocka_unit_test(detect_real_templates),
        cmocka_unit_test(marker_tokens),
        cmocka_unit_test(hermes_calls),
        cmocka_unit_test(json_dump_keeps_numbers_short),
        cmocka_unit_test(hermes_malformed_is_content),
        cmocka_unit_test(content_streams_at_once),
        cmocka_unit_test(utf8_content_in_bytes),
        cmocka_unit_test(qwen3_coder_xml),
        cmocka_unit_test(glm_args),
        cmocka_unit_test(llama3_json),
        cmocka_unit_test(llama3_python_tag),
        cmocka_unit_test(mistral_forms),
        cmocka_unit_test(harmony_calls),
        cmocka_unit_test(harmony_without_calls_is_unchanged),
        cmocka_unit_test(deepseek_forms),
        cmocka_unit_test(gemma4_values),
        cmocka_unit_test(kimi_sections),
        cmocka_unit_test(command_r_action),
        cmocka_unit_test(generic_json),
        cmocka_unit_test(long_call_in_one_piece),
        cmocka_unit_test(grammar_for_one_call),
        cmocka_unit_test(grammar_for_gpt_oss_qwen3_coder_and_deepseek),
        cmocka_unit_test(grammar_for_qwen3_coder_glm_and_gemma4_holds_value_types),
        cmocka_unit_test(random_soup_is_cut_independent_and_never_lost),
        cmocka_unit_test(none_passes_through),
    };
    if (grammar_vocab_load())
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    grammar_vocab_free();
    return rc;
}
