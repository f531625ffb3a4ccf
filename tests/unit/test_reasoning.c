/* test_reasoning.c -- unit tests for src/template/reasoning.c: which markers a template
 * uses, and the streamed split of reasoning from answer (issue 10, item 4). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "template/reasoning.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Template fragments as the real ones write them (llama.cpp models/templates/). */
static const char QWEN3[] =
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and "
    "enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";
static const char QWQ[] = "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}";
static const char HARMONY[] = "{{- \"<|start|>assistant<|channel|>final<|message|>\" + message.content + "
                              "\"<|return|>\" }}{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}";
static const char SEED[] = "{%- set think_begin_token = '<seed:think>' -%}{%- set think_end_token = '</seed:think>' -%}";
static const char MISTRAL[] = "{%- if block['type'] == 'thinking' %}{{- '[THINK]' + block['thinking'] + '[/THINK]' }}";
static const char COMMAND_R[] = "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% if reasoning %}<|START_THINKING|>{% else "
                                "%}<|START_THINKING|><|END_THINKING|>{% endif %}";
static const char GEMMA4[] = "{%- if not enable_thinking | default(false) -%}{{- '<|channel>thought\\n<channel|>' -}}";
static const char CHATML[] = "{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n{% endfor %}";

/* ---- a sink that checks every piece ------------------------------------------------------ */

struct sink {
    char thinking[8192], content[8192];
    size_t n_thinking, n_content;
    int pieces;
    bool content_seen;      /* a content piece came ... */
    bool thinking_after;    /* ... and a thinking piece after it */
    const char *forbidden[8]; /* strings no single piece may contain (the markers) */
};

/* Valid UTF-8, every character complete. */
static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : (p[i] & 0xE0) == 0xC0 ? 2 : (p[i] & 0xF0) == 0xE0 ? 3 : (p[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

/* Off in the tests whose answer holds marker text on purpose. */
static bool check_markers = true;

static void on_piece(void *ud, bool thinking, const char *text, size_t len)
{
    struct sink *k = ud;
    assert_true(len > 0);
    assert_true(utf8_valid(text, len));
    for (size_t i = 0; check_markers && i < ARRAY_LEN(k->forbidden) && k->forbidden[i]; i++)
        assert_null(memmem(text, len, k->forbidden[i], strlen(k->forbidden[i])));
    char *dst = thinking ? k->thinking : k->content;
    size_t *n = thinking ? &k->n_thinking : &k->n_content;
    assert_true(*n + len < sizeof k->thinking);
    memcpy(dst + *n, text, len);
    *n += len;
    dst[*n] = '\0';
    k->pieces++;
    if (!thinking)
        k->content_seen = true;
    else if (k->content_seen)
        k->thinking_after = true;
}

static void sink_init(struct sink *k, const struct reasoning_cfg *cfg)
{
    memset(k, 0, sizeof *k);
    if (cfg->format == REASONING_TAGS) {
        k->forbidden[0] = cfg->open;
        k->forbidden[1] = cfg->close;
    } else if (cfg->format == REASONING_HARMONY) {
        k->forbidden[0] = "<|channel|>";
        k->forbidden[1] = "<|message|>";
        k->forbidden[2] = "<|end|>";
    }
}

/* Feeds text split at the given cut points (ascending, inside the text) and finishes. */
static void feed_cuts(const struct reasoning_cfg *cfg, const char *text, const size_t *cuts, size_t n_cuts,
                      struct sink *k)
{
    struct reasoning_split s;
    reasoning_init(&s, cfg);
    sink_init(k, cfg);
    size_t at = 0, len = strlen(text);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        reasoning_feed(&s, text + at, end - at, on_piece, k);
        at = end;
    }
    reasoning_finish(&s, on_piece, k);
}

static void feed_whole(const struct reasoning_cfg *cfg, const char *text, struct sink *k)
{
    feed_cuts(cfg, text, NULL, 0, k);
}

static void feed_bytes(const struct reasoning_cfg *cfg, const char *text, struct sink *k)
{
    struct reasoning_split s;
    reasoning_init(&s, cfg);
    sink_init(k, cfg);
    for (size_t i = 0; text[i]; i++)
        reasoning_feed(&s, text + i, 1, on_piece, k);
    reasoning_finish(&s, on_piece, k);
}

/* The split is the same whole, byte by byte, and cut in two and three at every position. */
static void expect_split(const struct reasoning_cfg *cfg, const char *text, const char *want_thinking,
                         const char *want_content)
{
    struct sink k;
    feed_whole(cfg, text, &k);
    assert_string_equal(k.thinking, want_thinking);
    assert_string_equal(k.content, want_content);
    feed_bytes(cfg, text, &k);
    assert_string_equal(k.thinking, want_thinking);
    assert_string_equal(k.content, want_content);
    size_t len = strlen(text);
    for (size_t i = 1; i < len; i++) {
        feed_cuts(cfg, text, &i, 1, &k);
        assert_string_equal(k.thinking, want_thinking);
        assert_string_equal(k.content, want_content);
        for (size_t j = i + 1; j < len; j += 3) {
            size_t cuts[2] = {i, j};
            feed_cuts(cfg, text, cuts, 2, &k);
            assert_string_equal(k.thinking, want_thinking);
            assert_string_equal(k.content, want_content);
        }
    }
}

static struct reasoning_cfg detect(const char *tmpl, const char *prompt, const char *think)
{
    struct reasoning_cfg c;
    reasoning_detect(tmpl, prompt, think, &c);
    return c;
}

/* ---- detection ---------------------------------------------------------------------------- */

static void detect_finds_the_template_markers(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWEN3, "<|im_start|>assistant\n", NULL);
    assert_int_equal(c.format, REASONING_TAGS);
    assert_string_equal(c.name, "think");
    assert_string_equal(c.open, "<think>");
    assert_string_equal(c.close, "</think>");
    assert_false(c.starts_inside);

    c = detect(SEED, NULL, NULL);
    assert_string_equal(c.name, "seed");
    assert_string_equal(c.open, "<seed:think>");
    c = detect(MISTRAL, NULL, NULL);
    assert_string_equal(c.name, "mistral");
    assert_string_equal(c.close, "[/THINK]");
    c = detect(COMMAND_R, NULL, NULL);
    assert_string_equal(c.name, "command-r");
    c = detect(GEMMA4, NULL, NULL);
    assert_string_equal(c.name, "gemma4");
    c = detect(HARMONY, "<|start|>assistant", NULL);
    assert_int_equal(c.format, REASONING_HARMONY);
    assert_string_equal(c.name, "harmony");
    assert_false(c.starts_inside);

    c = detect(CHATML, "<|im_start|>assistant\n", "true");
    assert_int_equal(c.format, REASONING_NONE);
    assert_string_equal(c.name, "none");
    c = detect(NULL, "x", "true");
    assert_int_equal(c.format, REASONING_NONE);
}

static void detect_sees_a_prompt_that_opens_the_block(void **state)
{
    (void)state;
    assert_true(detect(QWQ, "<|im_start|>assistant\n<think>\n", NULL).starts_inside);
    assert_true(detect(QWQ, "<|im_start|>assistant\n<think>", "true").starts_inside);
    assert_true(detect(QWQ, "x<think> \r\n\t", "high").starts_inside);
    /* Qwen3 with enable_thinking=false closes the block itself: not inside. */
    assert_false(detect(QWEN3, "<|im_start|>assistant\n<think>\n\n</think>\n\n", NULL).starts_inside);
    assert_true(detect(COMMAND_R, "<|CHATBOT_TOKEN|><|START_THINKING|>", NULL).starts_inside);
    assert_false(detect(COMMAND_R, "<|CHATBOT_TOKEN|><|START_THINKING|><|END_THINKING|>", NULL).starts_inside);
    assert_true(detect(HARMONY, "<|start|>assistant<|channel|>analysis<|message|>", NULL).starts_inside);
}

static void detect_think_false_splits_only_an_opened_block(void **state)
{
    (void)state;
    /* The template did not open a block: think:false means no splitting at all. */
    struct reasoning_cfg c = detect(QWEN3, "<|im_start|>assistant\n<think>\n\n</think>\n\n", "false");
    assert_int_equal(c.format, REASONING_NONE);
    struct sink k;
    feed_whole(&c, "<think>x</think>y", &k);
    assert_string_equal(k.content, "<think>x</think>y");
    assert_string_equal(k.thinking, "");
    /* The template opened one anyway (QwQ always does): up to </think> is still thinking. */
    c = detect(QWQ, "<|im_start|>assistant\n<think>\n", "false");
    assert_int_equal(c.format, REASONING_TAGS);
    assert_true(c.starts_inside);
    /* Harmony is parsed whatever think says. */
    assert_int_equal(detect(HARMONY, "<|start|>assistant", "false").format, REASONING_HARMONY);
}

/* The real templates of the pinned llama.cpp, when the build tree has them. */
static void detect_real_templates(void **state)
{
    (void)state;
#ifdef BELLOWS_LLAMA_DIR
    static const struct {
        const char *file, *name;
    } want[] = {
        {"Qwen-Qwen3-0.6B.jinja", "think"},
        {"Qwen-QwQ-32B.jinja", "think"},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "think"},
        {"deepseek-ai-DeepSeek-V3.1.jinja", "think"},
        {"GLM-4.6.jinja", "think"},
        {"MiniMax-M2.jinja", "think"},
        {"Kimi-K2-Thinking.jinja", "think"},
        {"HuggingFaceTB-SmolLM3-3B.jinja", "think"},
        {"NVIDIA-Nemotron-Nano-v2.jinja", "think"},
        {"ByteDance-Seed-OSS.jinja", "seed"},
        {"MiniMax-M3.jinja", "minimax"},
        {"mistralai-Ministral-3-14B-Reasoning-2512.jinja", "mistral"},
        {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", "command-r"},
        {"google-gemma-4-31B-it.jinja", "gemma4"},
        {"openai-gpt-oss-120b.jinja", "harmony"},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", "none"},
        {"Qwen-Qwen2.5-7B-Instruct.jinja", "none"},
        {"google-gemma-2-2b-it.jinja", "none"},
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/models/templates/%s", BELLOWS_LLAMA_DIR, want[i].file);
        FILE *f = fopen(path, "rb");
        if (!f) {
            print_message("skipped %s (not in this llama.cpp)\n", want[i].file);
            continue;
        }
        static char text[256 * 1024];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        struct reasoning_cfg c = detect(text, NULL, NULL);
        if (strcmp(c.name, want[i].name))
            fail_msg("%s: format %s, want %s", want[i].file, c.name, want[i].name);
    }
#endif
}

/* ---- the split ---------------------------------------------------------------------------- */

static void think_block_then_answer(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWEN3, "<|im_start|>assistant\n", NULL);
    expect_split(&c, "<think>\nLet me see: 2+2.\n</think>\n\nIt is 4.", "Let me see: 2+2.\n", "It is 4.");
    /* Leading whitespace before the block is dropped with it. */
    expect_split(&c, "\n <think>a</think>b", "a", "b");
    /* The answer keeps its own inner whitespace and a later marker is answer text. */
    check_markers = false;
    expect_split(&c, "<think>a</think> b  c <think>d</think>", "a", "b  c <think>d</think>");
    check_markers = true;
    /* An empty block (what think:false templates write). */
    expect_split(&c, "<think>\n\n</think>\n\nHi", "", "Hi");
}

static void no_think_at_all_is_answer_as_written(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWEN3, "<|im_start|>assistant\n", NULL);
    expect_split(&c, "Hello there", "", "Hello there");
    expect_split(&c, "  \n Hello", "", "  \n Hello"); /* whitespace held, then given back */
    check_markers = false;
    expect_split(&c, "<thing> is not <think>", "", "<thing> is not <think>");
    check_markers = true;
    expect_split(&c, "<thin", "", "<thin"); /* an unfinished marker at the end is text */
    expect_split(&c, "", "", "");
    /* REASONING_NONE passes everything through. */
    struct reasoning_cfg none = detect(CHATML, "x", NULL);
    expect_split(&none, "<think>a</think>b", "", "<think>a</think>b");
}

static void unclosed_think_stays_thinking(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWEN3, "<|im_start|>assistant\n", NULL);
    expect_split(&c, "<think>\nstill going", "still going", "");
    expect_split(&c, "<think>\nstill going </thi", "still going </thi", "");
    expect_split(&c, "<think>", "", "");
}

static void prompt_opened_block(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWQ, "<|im_start|>assistant\n<think>\n", NULL);
    expect_split(&c, "I reason.</think>\n\nThe answer.", "I reason.", "The answer.");
    /* A model that writes the open marker again: dropped. */
    expect_split(&c, "\n<think>\nI reason.</think>The answer.", "I reason.", "The answer.");
    /* Never closed (num_predict ran out): all thinking. */
    expect_split(&c, "gibberish words and more", "gibberish words and more", "");
    /* Closed at once. */
    expect_split(&c, "</think>\n\nOnly the answer", "", "Only the answer");
    /* Something that starts like the open marker but is not. */
    expect_split(&c, "<thinking>x</think>y", "<thinking>x", "y");
}

static void marker_split_at_every_position(void **state)
{
    (void)state;
    /* expect_split cuts every text at every byte (and pairs of bytes); here the markers
     * are long and sit in the middle. */
    struct reasoning_cfg c = detect(COMMAND_R, "<|CHATBOT_TOKEN|>", NULL);
    assert_false(c.starts_inside);
    expect_split(&c, "<|START_THINKING|>plan it<|END_THINKING|>\ndone", "plan it", "done");
    c = detect(COMMAND_R, "<|CHATBOT_TOKEN|><|START_THINKING|>", NULL);
    expect_split(&c, "plan <|END_THINK it<|END_THINKING|>done", "plan <|END_THINK it", "done");
}

static void other_tag_formats(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(SEED, "<seed:bos>assistant\n", NULL);
    expect_split(&c, "<seed:think>hmm</seed:think>ok", "hmm", "ok");
    c = detect(MISTRAL, "[INST]hi[/INST]", NULL);
    expect_split(&c, "[THINK]hmm[/THINK]\nok", "hmm", "ok");
    c = detect(GEMMA4, "<|turn>model\n", "true");
    expect_split(&c, "<|channel>thought\nhmm<channel|>ok", "hmm", "ok");
}

static void utf8_is_never_split(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWEN3, "x", NULL);
    /* é (2 bytes), … (3 bytes), 𝄞 (4 bytes) on both sides of the markers; the sink
     * asserts each piece is valid UTF-8, also when fed byte by byte. */
    expect_split(&c, "<think>é…𝄞</think>ü𝄞", "é…𝄞", "ü𝄞");
    c = detect(QWQ, "<think>\n", NULL);
    expect_split(&c, "𝄞𝄞</think>…", "𝄞𝄞", "…");
    struct reasoning_cfg none = detect(CHATML, "x", NULL);
    expect_split(&none, "…é", "", "…é");
}

static void long_text_in_one_piece(void **state)
{
    (void)state;
    /* Longer than the internal chunk and output buffers. */
    static char text[6000], want[6000];
    size_t n = 0;
    n += (size_t)sprintf(text + n, "<think>");
    for (int i = 0; i < 3000; i++)
        text[n++] = (char)('a' + i % 26), want[i] = (char)('a' + i % 26);
    want[3000] = '\0';
    n += (size_t)sprintf(text + n, "</think>tail");
    struct reasoning_cfg c = detect(QWEN3, "x", NULL);
    struct sink k;
    feed_whole(&c, text, &k);
    assert_string_equal(k.thinking, want);
    assert_string_equal(k.content, "tail");
    feed_bytes(&c, text, &k);
    assert_string_equal(k.thinking, want);
    assert_string_equal(k.content, "tail");
    assert_false(k.thinking_after);
}

static void pieces_are_coalesced_per_feed(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(QWEN3, "x", NULL);
    struct reasoning_split s;
    struct sink k;
    reasoning_init(&s, &c);
    sink_init(&k, &c);
    reasoning_feed(&s, "<think>a", 8, on_piece, &k);
    assert_int_equal(k.pieces, 1);
    assert_string_equal(k.thinking, "a");
    reasoning_feed(&s, "b</", 3, on_piece, &k); /* "</" held */
    assert_int_equal(k.pieces, 2);
    assert_string_equal(k.thinking, "ab");
    reasoning_feed(&s, "think>\n", 7, on_piece, &k); /* closed; the newline dropped */
    assert_int_equal(k.pieces, 2);
    reasoning_feed(&s, "\nc", 2, on_piece, &k);
    assert_int_equal(k.pieces, 3);
    assert_string_equal(k.content, "c");
    reasoning_finish(&s, on_piece, &k);
    assert_int_equal(k.pieces, 3);
}

/* ---- Harmony -------------------------------------------------------------------------------- */

static void harmony_analysis_then_final(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(HARMONY, "<|start|>assistant", "medium");
    expect_split(&c,
                 "<|channel|>analysis<|message|>User greets. Reply.<|end|>"
                 "<|start|>assistant<|channel|>final<|message|>Hello there!<|return|>",
                 "User greets. Reply.", "Hello there!");
    /* Without <|return|> (it is end-of-generation and usually never rendered). */
    expect_split(&c, "<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final<|message|>b", "a",
                 "b");
    /* A header with a recipient or a constraint; commentary is answer text. */
    expect_split(&c, "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>", "", "{}");
    /* Final only. */
    expect_split(&c, "<|channel|>final<|message|>Hi", "", "Hi");
}

static void harmony_out_of_format(void **state)
{
    (void)state;
    struct reasoning_cfg c = detect(HARMONY, "<|start|>assistant", NULL);
    /* A random model writes no header: its text is the answer, as written. */
    check_markers = false;
    expect_split(&c, "gibberish <|channel|> words", "", "gibberish <|channel|> words");
    check_markers = true;
    /* A header cut off by the end of generation is dropped; unfinished analysis stays thinking. */
    expect_split(&c, "<|channel|>analysis<|message|>half a thought", "half a thought", "");
    expect_split(&c, "<|channel|>analysis<|message|>a<|end|><|start|>assist", "a", "");
    /* A "header" that never ends is text. */
    static char text[400];
    memset(text, 'x', sizeof text - 1);
    memcpy(text, "<|channel|>", 11);
    struct sink k;
    check_markers = false;
    feed_bytes(&c, text, &k);
    check_markers = true;
    assert_string_equal(k.content, text);
    /* The prompt opened the analysis message. */
    c = detect(HARMONY, "<|start|>assistant<|channel|>analysis<|message|>", NULL);
    expect_split(&c, "think<|end|><|start|>assistant<|channel|>final<|message|>say", "think", "say");
}

static void marker_tokens(void **state)
{
    (void)state;
    struct reasoning_cfg h = detect(HARMONY, "x", NULL);
    assert_true(reasoning_marker_token(&h, "<|end|>", 7));
    assert_true(reasoning_marker_token(&h, "<|channel|>", 11));
    assert_false(reasoning_marker_token(&h, "<|im_end|>", 10));
    struct reasoning_cfg m = detect(MISTRAL, "x", NULL);
    assert_true(reasoning_marker_token(&m, "[THINK]", 7));
    assert_true(reasoning_marker_token(&m, "[/THINK]", 8));
    assert_false(reasoning_marker_token(&m, "[INST]", 6));
    struct reasoning_cfg g = detect(GEMMA4, "x", "true");
    assert_true(reasoning_marker_token(&g, "<|channel>", 10));
    assert_true(reasoning_marker_token(&g, "<channel|>", 10));
    struct reasoning_cfg none = detect(CHATML, "x", NULL);
    assert_false(reasoning_marker_token(&none, "<think>", 7));
    assert_false(reasoning_marker_token(&h, "<", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detect_finds_the_template_markers),
        cmocka_unit_test(detect_sees_a_prompt_that_opens_the_block),
        cmocka_unit_test(detect_think_false_splits_only_an_opened_block),
        cmocka_unit_test(detect_real_templates),
        cmocka_unit_test(think_block_then_answer),
        cmocka_unit_test(no_think_at_all_is_answer_as_written),
        cmocka_unit_test(unclosed_think_stays_thinking),
        cmocka_unit_test(prompt_opened_block),
        cmocka_unit_test(marker_split_at_every_position),
        cmocka_unit_test(other_tag_formats),
        cmocka_unit_test(utf8_is_never_split),
        cmocka_unit_test(long_text_in_one_piece),
        cmocka_unit_test(pieces_are_coalesced_per_feed),
        cmocka_unit_test(harmony_analysis_then_final),
        cmocka_unit_test(harmony_out_of_format),
        cmocka_unit_test(marker_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
