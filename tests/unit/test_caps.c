/* test_caps.c -- unit tests for src/template/caps.c: Go-template detection and the
 * capabilities of a chat template (issue 10 item 3). The last test walks the 68 templates
 * of the pinned llama.cpp (models/templates/) against flags checked by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "template/caps.h"

#define TOOLS TEMPLATE_CAP_TOOLS
#define THINK TEMPLATE_CAP_THINKING
#define INSERT TEMPLATE_CAP_INSERT
#define EFFORT TEMPLATE_CAP_THINK_EFFORT

/* ---- Go templates ------------------------------------------------------------------------ */

/* Templates as Ollama's registry serves them (abridged from library/llama3.2, qwen2.5,
 * gemma2, mistral, phi3, and a completion-only one). */
static void go_templates_are_detected(void **s)
{
    (void)s;
    assert_true(template_is_go("{{ .Prompt }}"));
    assert_true(template_is_go("{{- if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}"
                               "<|user|>\n{{ .Prompt }}<|end|>\n<|assistant|>\n{{ .Response }}<|end|>"));
    assert_true(template_is_go("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
                               "{{ if .System }}{{ .System }}\n{{- end }}\n{{- if .Tools }}When you receive a tool "
                               "call response...{{ end }}<|eot_id|>\n{{- range $i, $_ := .Messages }}\n"
                               "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n{{- if eq .Role \"user\" }}"
                               "<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}{{ end }}"));
    assert_true(template_is_go("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
                               "<|im_start|>assistant\n"));
    assert_true(template_is_go("<start_of_turn>user\n{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}"
                               "<end_of_turn>\n<start_of_turn>model\n{{ .Response }}<end_of_turn>\n"));
    assert_true(template_is_go("{{- /* a comment */ -}}[INST] {{ .Prompt }} [/INST]"));
    assert_true(template_is_go("{{/* only a comment */}}hello"));
    assert_true(template_is_go("{{ $x := 1 }}{{ $x }}"));
    assert_true(template_is_go("{{ with .System }}{{ . }}{{ end }}"));
    assert_true(template_is_go("{{ template \"x\" . }}"));
    assert_true(template_is_go("[INST] {{ .Prompt }} [/INST]{{ .Response }}{{ else }}{{ end }}"));
}

static void jinja_and_text_are_not_go(void **s)
{
    (void)s;
    assert_false(template_is_go(NULL));
    assert_false(template_is_go(""));
    assert_false(template_is_go("plain text, no actions"));
    assert_false(template_is_go("{{ messages[0].content }}"));
    assert_false(template_is_go("{{- bos_token }}{{ range(3) | join(',') }}{{ end_token }}"));
    assert_false(template_is_go("{% for m in messages %}{{ m.content }}{% endfor %}"));
    /* A Jinja template that writes Go syntax in a string is still Jinja. */
    assert_false(template_is_go("{% set x = '{{ .Prompt }}' %}{{ x }}"));
    assert_false(template_is_go("{# {{ .System }} #}{{ messages }}"));
    assert_false(template_is_go("{{ if_true }}{{ ifx }}{{ .5 }}"));
}

/* ---- capabilities on small templates ------------------------------------------------------ */

static void tools_is_the_variable_only(void **s)
{
    (void)s;
    assert_int_equal(template_caps("{% if tools %}{{ tools | tojson }}{% endif %}"), TOOLS);
    assert_int_equal(template_caps("{{- tools|length }}"), TOOLS);
    assert_int_equal(template_caps("{% for t in tools %}{% endfor %}"), TOOLS);
    /* not an attribute, another variable, a string, a comment or plain text */
    assert_int_equal(template_caps("{{ message.tools }}{{ xml_tools }}{{ tools_prompt }}"), 0);
    assert_int_equal(template_caps("{{ 'tools' }}{{ \"the tools\" }}"), 0);
    assert_int_equal(template_caps("{# tools #}You are provided with tools.\n"), 0);
    assert_int_equal(template_caps(NULL), 0);
    assert_int_equal(template_caps(""), 0);
}

static void insert_is_the_suffix_variable(void **s)
{
    (void)s;
    assert_int_equal(template_caps("<|fim_prefix|>{{ prompt }}<|fim_suffix|>{{ suffix }}<|fim_middle|>"), INSERT);
    assert_int_equal(template_caps("{% if suffix is defined %}x{% endif %}"), INSERT);
    assert_int_equal(template_caps("{% set system_prompt_suffix = 'x' %}{{ name.suffix }}{{ 'suffix' }}"), 0);
}

static void thinking_switches_and_fields(void **s)
{
    (void)s;
    assert_int_equal(template_caps("{% if enable_thinking is defined and not enable_thinking %}x{% endif %}"), THINK);
    assert_int_equal(template_caps("{% if thinking %}x{% endif %}"), THINK);
    assert_int_equal(template_caps("{{ message.reasoning_content }}"), THINK);
    assert_int_equal(template_caps("{{ message['reasoning_content'] }}"), THINK);
    assert_int_equal(template_caps("{{ message.get(\"reasoning\") }}"), THINK);
    assert_int_equal(template_caps("{% if m.thinking is defined %}{{ m.thinking }}{% endif %}"), THINK);
    assert_int_equal(template_caps("{{ thinking_budget }}"), THINK);
    assert_int_equal(template_caps("Reasoning: {{ reasoning_effort }}"), THINK | EFFORT);
    assert_int_equal(template_caps("{{ message.reasoning_effort }}"), THINK); /* a field, not the switch */
}

static void thinking_markers(void **s)
{
    (void)s;
    assert_int_equal(template_caps("{{ '<|im_start|>assistant\\n<think>\\n' }}"), THINK);
    assert_int_equal(template_caps("{{ content.split('</think>')[-1] }}"), THINK);
    assert_int_equal(template_caps("<think></think>{{ content }}"), THINK); /* in the text */
    assert_int_equal(template_caps("{{ '<seed:think>' }}"), THINK);
    assert_int_equal(template_caps("{{ '[THINK]' + x + '[/THINK]' }}"), THINK);
    assert_int_equal(template_caps("<|START_THINKING|>{{ plan }}<|END_THINKING|>"), THINK);
    assert_int_equal(template_caps("{{ '<|think|>' }}"), THINK);
    assert_int_equal(template_caps("{{ '<thinking>' + thought + '</thinking>' }}"), THINK);
    assert_int_equal(template_caps("{{ '<|start|>assistant<|channel|>analysis<|message|>' }}"), THINK);
}

static void prose_and_comments_are_not_thinking(void **s)
{
    (void)s;
    assert_int_equal(template_caps("Maintain a logical chain of reasoning. Think step by step.{{ messages }}"), 0);
    assert_int_equal(template_caps("{{ 'Document your reasoning process' }}{{ 'explain your thinking fully' }}"), 0);
    assert_int_equal(template_caps("{# reasoning_content is dropped here, enable_thinking too #}{{ x }}"), 0);
    assert_int_equal(template_caps("{% raw %}{{ enable_thinking }}{% endraw %}"), 0); /* raw: text, not code */
    assert_int_equal(template_caps("{% raw %}<think>{% endraw %}"), THINK);          /* but still a marker */
}

/* The lexer balances strings and brackets: "}}" inside them does not end a tag. */
static void tags_end_where_jinja_ends_them(void **s)
{
    (void)s;
    assert_int_equal(template_caps("{{ '}}' + tools }}"), TOOLS);
    assert_int_equal(template_caps("{{ {'a': {'b': 1}} }} {{ tools }}"), TOOLS);
    assert_int_equal(template_caps("{% set x = '%}' %}{% if tools %}{% endif %}"), TOOLS);
    assert_int_equal(template_caps("{{ \"it\\\"s }}\" }}{{ suffix }}"), INSERT);
    assert_int_equal(template_caps("{{ 1.5 }}{{ x.tools }}"), 0);
    /* an unclosed tag or string ends at the end of the text, without reading past it */
    assert_int_equal(template_caps("{{ tools"), TOOLS);
    assert_int_equal(template_caps("{{ 'tools"), 0);
    assert_int_equal(template_caps("{# tools"), 0);
    assert_int_equal(template_caps("{"), 0);
    assert_int_equal(template_caps("{% raw %}<think>"), THINK);
}

/* ---- the real templates --------------------------------------------------------------------- */

#define T 1
#define _ 0
/* Each template of the pinned llama.cpp, its flags checked by reading it. tools: the
 * template uses the `tools` variable; think: a thinking switch, reasoning fields or tags;
 * insert: `suffix` (none of these is a FIM template); effort: `reasoning_effort`. */
static const struct expected {
    const char *file;
    int tools, think, insert, effort;
} expected[] = {
    {"Apertus-8B-Instruct.jinja", T, T, _, _},                      /* enable_thinking -> deliberation */
    {"Apriel-1.6-15b-Thinker-fixed.jinja", T, T, _, _},             /* reasoning_content, [BEGIN FINAL RESPONSE] */
    {"Bielik-11B-v3.0-Instruct.jinja", T, T, _, _},                 /* enable_thinking, <think> */
    {"ByteDance-Seed-OSS.jinja", T, T, _, _},                       /* <seed:think>, thinking_budget */
    {"Cohere2MoE.jinja", T, T, _, T},                               /* reasoning / reasoning_effort "none" */
    {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", T, _, _, _}, /* tools only */
    {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", T, T, _, _}, /* <|START_THINKING|>, enable_thinking */
    {"GLM-4.6.jinja", T, T, _, _},                                  /* enable_thinking, <think> */
    {"GLM-4.7-Flash.jinja", T, T, _, _},                            /* enable_thinking, <think> */
    {"GigaChat3-10B-A1.8B.jinja", T, _, _, _},                      /* "reasoning" only in prose */
    {"GigaChat3.1-10B-A1.8B.jinja", T, _, _, _},                    /* "reasoning" only in prose */
    {"HuggingFaceTB-SmolLM3-3B.jinja", _, T, _, _},                 /* enable_thinking; tools come as xml_tools */
    {"Kimi-K2-Instruct.jinja", T, _, _, _},                         /* no thinking */
    {"Kimi-K2-Thinking.jinja", T, T, _, _},                         /* <think>{{rc}}</think> */
    {"Kimi-K3.jinja", T, T, _, _},                                  /* thinking switch, reasoning_content */
    {"LFM2-8B-A1B.jinja", T, _, _, _},                              /* no thinking */
    {"LFM2.5-8B-A1B.jinja", T, T, _, _},                            /* message.thinking, <think> */
    {"LFM2.5-Instruct.jinja", T, T, _, _},                          /* strips </think> from history (shared with -Thinking) */
    {"MiMo-VL.jinja", T, _, _, _},                                  /* no thinking in the template */
    {"MiniMax-M1.jinja", T, _, _, _},                               /* no thinking in the template */
    {"MiniMax-M2.jinja", T, T, _, _},                               /* reasoning_content, <think> */
    {"MiniMax-M3.jinja", T, T, _, _},                               /* <mm:think>, thinking mode */
    {"Mistral-Small-3.2-24B-Instruct-2506.jinja", T, _, _, _},      /* no thinking */
    {"NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja", T, T, _, _},      /* enable_thinking, <think> */
    {"NVIDIA-Nemotron-Nano-v2.jinja", T, T, _, _},                  /* enable_thinking (/think, /no_think) */
    {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", T, _, _, _},
    {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", T, _, _, _},
    {"Qwen-QwQ-32B.jinja", T, T, _, _},                             /* <think> in the generation prompt */
    {"Qwen-Qwen2.5-7B-Instruct.jinja", T, _, _, _},                 /* the demo model's: tools, no thinking */
    {"Qwen-Qwen3-0.6B.jinja", T, T, _, _},                          /* enable_thinking, reasoning_content */
    {"Qwen3-Coder.jinja", T, _, _, _},                              /* "optional reasoning" is prose */
    {"Qwen3.5-4B.jinja", T, T, _, _},                               /* enable_thinking, <think> */
    {"Reka-Edge.jinja", T, T, _, _},                                /* enable_thinking, reasoning_content */
    {"StepFun3.5-Flash.jinja", T, T, _, _},                         /* reasoning_content, <think> */
    {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", _, T, _, _}, /* <think> */
    {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", _, T, _, _}, /* <think>, enable_thinking */
    {"deepseek-ai-DeepSeek-V3.1.jinja", _, T, _, _},                /* thinking switch; tool calls but no `tools` */
    {"deepseek-ai-DeepSeek-V3.2.jinja", T, T, _, _},
    {"deepseek-ai-DeepSeek-V4-Flash-0731.jinja", T, T, _, T},
    {"deepseek-ai-DeepSeek-V4.jinja", T, T, _, T},
    {"fireworks-ai-llama-3-firefunction-v2.jinja", _, _, _, _},     /* takes `functions`, not `tools` */
    {"google-gemma-2-2b-it.jinja", _, _, _, _},
    {"google-gemma-4-31B-it-interleaved.jinja", T, T, _, _},        /* enable_thinking -> <|think|> */
    {"google-gemma-4-31B-it.jinja", T, T, _, _},
    {"ibm-granite-granite-3.3-2B-Instruct.jinja", T, T, _, _},      /* `thinking` switch, <think></think> */
    {"ibm-granite-granite-4.0.jinja", T, _, _, _},
    {"ibm-granite-granite-4.1.jinja", T, _, _, _},
    {"llama-cpp-deepseek-r1.jinja", T, T, _, _},                    /* <think> */
    {"llama-cpp-rwkv-world.jinja", _, T, _, _},                     /* enable_thinking, <think> */
    {"meetkai-functionary-medium-v3.1.jinja", T, _, _, _},
    {"meetkai-functionary-medium-v3.2.jinja", T, _, _, _},
    {"meta-llama-Llama-3.1-8B-Instruct.jinja", T, _, _, _},
    {"meta-llama-Llama-3.2-3B-Instruct.jinja", T, _, _, _},
    {"meta-llama-Llama-3.3-70B-Instruct.jinja", T, _, _, _},
    {"microsoft-Phi-3.5-mini-instruct.jinja", _, _, _, _},
    {"mistralai-Ministral-3-14B-Reasoning-2512.jinja", T, T, _, _}, /* [THINK] chunks */
    {"mistralai-Mistral-Nemo-Instruct-2407.jinja", T, _, _, _},
    {"moonshotai-Kimi-K2.jinja", T, _, _, _},
    {"muse-glimmer.jinja", T, T, _, _},                             /* reasoning channel, reasoning_strength */
    {"openai-gpt-oss-120b.jinja", T, T, _, T},                      /* analysis channel, reasoning_effort */
    {"openbmb-MiniCPM5-1B.jinja", T, T, _, _},                      /* enable_thinking, <think> */
    {"poolside-Laguna-S-2.1.jinja", T, T, _, _},
    {"poolside-Laguna-XS-2.1.jinja", T, T, _, _},
    {"poolside-Laguna-XS.2.jinja", T, T, _, _},
    {"tencent-Hy3.jinja", T, T, _, T},                              /* <think{}>, reasoning_effort */
    {"unsloth-Apriel-1.5.jinja", T, T, _, _},                       /* <thinking> around message.thought */
    {"unsloth-mistral-Devstral-Small-2507.jinja", T, _, _, _},      /* "reasoning" only in prose */
    {"upstage-Solar-Open-100B.jinja", T, T, _, T},                  /* <|think|>, reasoning_effort */
};
#undef T
#undef _

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void real_templates_have_the_checked_flags(void **s)
{
    (void)s;
    DIR *d = opendir(BELLOWS_TEMPLATES_DIR);
    if (!d)
        fail_msg("cannot open %s", BELLOWS_TEMPLATES_DIR);
    size_t n_expected = sizeof expected / sizeof expected[0], seen = 0;
    assert_int_equal(n_expected, 68);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 6, ".jinja"))
            continue;
        const struct expected *x = NULL;
        for (size_t i = 0; i < n_expected && !x; i++)
            if (!strcmp(expected[i].file, e->d_name))
                x = &expected[i];
        if (!x)
            fail_msg("%s is not in the table: read it and add its flags", e->d_name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", BELLOWS_TEMPLATES_DIR, e->d_name);
        char *text = read_all(path);
        unsigned want = (x->tools ? TOOLS : 0) | (x->think ? THINK : 0) | (x->insert ? INSERT : 0) |
                        (x->effort ? EFFORT : 0);
        unsigned got = template_caps(text);
        if (got != want)
            fail_msg("%s: caps 0x%x, expected 0x%x", e->d_name, got, want);
        if (template_is_go(text))
            fail_msg("%s: taken for a Go template", e->d_name);
        free(text);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, n_expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(go_templates_are_detected),
        cmocka_unit_test(jinja_and_text_are_not_go),
        cmocka_unit_test(tools_is_the_variable_only),
        cmocka_unit_test(insert_is_the_suffix_variable),
        cmocka_unit_test(thinking_switches_and_fields),
        cmocka_unit_test(thinking_markers),
        cmocka_unit_test(prose_and_comments_are_not_thinking),
        cmocka_unit_test(tags_end_where_jinja_ends_them),
        cmocka_unit_test(real_templates_have_the_checked_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
