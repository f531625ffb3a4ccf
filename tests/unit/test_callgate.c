/* test_callgate.c -- the tool-call grammar and the reasoning block (issue 11, engine/callgate.h).
 *
 * The gate's decisions are checked on written-out token pieces. Then the samplers: a
 * scripted "model" (each step, the next token of a written text gets the highest logit)
 * drives a greedy chain over the real Qwen2 vocabulary (llama.cpp's vocab-only GGUF), so a
 * step where the chain's grammar refuses the script shows as a token other than the
 * script's. The lazy call grammar of tool_choice "auto" must let a <tool_call> written in
 * the reasoning by (sampling_chain_new_lazy, the chain before the gate, does not: that is
 * checked too) and hold the call the answer opens; forced grammars must admit a reasoning
 * first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/callgate.h"
#include "engine/sampling.h"
#include "llama.h"
#include "template/reasoning.h"
#include "template/toolcall.h"

#ifndef BELLOWS_LLAMA_DIR
#error BELLOWS_LLAMA_DIR must name the llama.cpp source (its models/ has the vocab files)
#endif

static const struct reasoning_cfg THINK_INSIDE = {.format = REASONING_TAGS, .name = "think", .open = "<think>",
                                                  .close = "</think>", .starts_inside = true};
static const struct reasoning_cfg THINK_MAY_OPEN = {.format = REASONING_TAGS, .name = "think", .open = "<think>",
                                                    .close = "</think>"};
static const struct reasoning_cfg HARMONY = {.format = REASONING_HARMONY, .name = "harmony", .calls = true};

/* ---- the gate, on written-out pieces --------------------------------------------------- */

/* Feeds pieces[i] as token i; returns the fed tokens as a string of their indexes ("3 4 ").
 * NULL ends the list. */
static const char *gate_run(const struct reasoning_cfg *cfg, const char *const *pieces)
{
    static char got[512];
    struct callgate g;
    callgate_init(&g, cfg);
    got[0] = '\0';
    for (int32_t i = 0; pieces[i]; i++) {
        int32_t out[CALLGATE_HOLD + 1];
        size_t n = callgate_feed(&g, i, pieces[i], strlen(pieces[i]), out);
        for (size_t k = 0; k < n; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", out[k]);
    }
    return got;
}

static void gate_without_reasoning_feeds_everything(void **state)
{
    (void)state;
    const char *const p[] = {"<think>", "x", "</think>", NULL};
    assert_string_equal(gate_run(NULL, p), "0 1 2 ");
    struct reasoning_cfg none = {.format = REASONING_NONE};
    assert_string_equal(gate_run(&none, p), "0 1 2 ");
}

static void gate_hides_a_reasoning_the_prompt_opened(void **state)
{
    (void)state;
    /* a call marker inside the reasoning is not fed; the blanks after the close are not
     * either; the answer is */
    const char *const p[] = {"I", " could", " use", " <tool_call>", " here", "</think>", "\n\n", "<tool_call>", "{", NULL};
    assert_string_equal(gate_run(&THINK_INSIDE, p), "7 8 ");
    /* the close marker split across tokens, and a token holding the close and an answer */
    const char *const q[] = {"hm", "</", "think", ">", " ", "Sure", NULL};
    assert_string_equal(gate_run(&THINK_INSIDE, q), "5 ");
    const char *const r[] = {"hm <", "/thi", "nk>Sure", ".", NULL};
    assert_string_equal(gate_run(&THINK_INSIDE, r), "2 3 ");
    /* never closed: nothing is fed */
    const char *const s[] = {"<tool_call>", "{", NULL};
    assert_string_equal(gate_run(&THINK_INSIDE, s), "");
    /* a close marker in the answer is answer */
    const char *const t[] = {"</think>", "a", "</think>", NULL};
    assert_string_equal(gate_run(&THINK_INSIDE, t), "1 2 ");
}

static void gate_waits_for_the_open_marker_at_the_start(void **state)
{
    (void)state;
    /* the model opens its reasoning itself */
    const char *const p[] = {"\n", "<th", "ink>", "<tool_call>", "</think>", "Hi", NULL};
    assert_string_equal(gate_run(&THINK_MAY_OPEN, p), "5 ");
    /* a start that could have been <think> but is not: the held tokens come out, in order */
    const char *const q[] = {"\n", "<", "tool_call>", "{", NULL};
    assert_string_equal(gate_run(&THINK_MAY_OPEN, q), "0 1 2 3 ");
    /* no reasoning at all */
    const char *const r[] = {"Hello", "<think>", NULL};
    assert_string_equal(gate_run(&THINK_MAY_OPEN, r), "0 1 ");
    /* blanks past the hold limit are answer */
    const char *blank[CALLGATE_HOLD + 3];
    for (int i = 0; i < CALLGATE_HOLD + 2; i++)
        blank[i] = " ";
    blank[CALLGATE_HOLD + 2] = NULL;
    const char *got = gate_run(&THINK_MAY_OPEN, blank);
    char want[512] = "";
    for (int i = 0; i < CALLGATE_HOLD + 2; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%d ", i);
    assert_string_equal(got, want);
}

static void gate_hides_harmony_analysis_bodies(void **state)
{
    (void)state;
    const char *const p[] = {"<|channel|>", "analysis", "<|message|>", "call", " <|channel|>commentary to=", "x",
                             "<|end|>", "<|start|>", "assistant", "<|channel|>", "commentary to=functions.get_time",
                             " <|constrain|>json", "<|message|>", "{}", NULL};
    assert_string_equal(gate_run(&HARMONY, p), "0 1 2 7 8 9 10 11 12 13 ");
    /* the prompt opened the analysis message */
    struct reasoning_cfg inside = HARMONY;
    inside.starts_inside = true;
    const char *const q[] = {"think", "<|end|>", "<|start|>assistant", "<|channel|>final<|message|>", "Hi", NULL};
    assert_string_equal(gate_run(&inside, q), "2 3 4 ");
    /* a call in the analysis channel is no reasoning (reasoning.c passes it on); the
     * markers split across pieces */
    const char *const r[] = {"<|chan", "nel|>analysis to=functions.f<|mess", "age|>", "{}", NULL};
    assert_string_equal(gate_run(&HARMONY, r), "0 1 2 3 ");
    const char *const s[] = {"<|chan", "nel|>analysis<|mess", "age|>", "secret <|channel|>commentary to=", "<|en",
                             "d|>", NULL};
    assert_string_equal(gate_run(&HARMONY, s), "0 1 2 ");
}

/* ---- samplers over a real vocabulary, driven by a script ----------------------------------- */

static struct llama_model *g_model;
static const struct llama_vocab *g_vocab;
static llama_token_data *g_cur;
static int g_n_vocab;

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

static int setup(void **state)
{
    (void)state;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    g_model = llama_model_load_from_file(BELLOWS_LLAMA_DIR "/models/ggml-vocab-qwen2.gguf", mp);
    if (!g_model)
        return -1;
    g_vocab = llama_model_get_vocab(g_model);
    g_n_vocab = llama_vocab_n_tokens(g_vocab);
    g_cur = calloc((size_t)g_n_vocab, sizeof *g_cur);
    return g_cur ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_cur);
    llama_model_free(g_model);
    llama_backend_free();
    return 0;
}

/* One step: the chain picks among all tokens, `want` the most likely. Returns its pick
 * (accepted by the chain, as the engine's llama_sampler_sample does). */
static llama_token step(struct llama_sampler *chain, llama_token want)
{
    for (int i = 0; i < g_n_vocab; i++)
        g_cur[i] = (llama_token_data){.id = i, .logit = i == want ? 10.0f : 0.0f, .p = 0.0f};
    llama_token_data_array a = {.data = g_cur, .size = (size_t)g_n_vocab, .selected = -1, .sorted = false};
    llama_sampler_apply(chain, &a);
    assert_true(a.selected >= 0 && a.selected < (int64_t)a.size);
    llama_token tok = a.data[a.selected].id;
    llama_sampler_accept(chain, tok);
    return tok;
}

/* Drives chain through text, token by token (special tokens parsed). Returns the number of
 * tokens written as the script says before the first the chain refused, or -1 when it
 * took all. */
static int drive(struct llama_sampler *chain, const char *text)
{
    llama_token toks[512];
    int n = llama_tokenize(g_vocab, text, (int32_t)strlen(text), toks, 512, false, true);
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        if (step(chain, toks[i]) != toks[i])
            return i;
    return -1;
}

/* The text of the first n tokens of text (for messages and the checks of where it stopped). */
static const char *prefix_text(const char *text, int n)
{
    static char buf[1024];
    llama_token toks[512];
    int k = llama_tokenize(g_vocab, text, (int32_t)strlen(text), toks, 512, false, true);
    assert_true(k >= n);
    int len = llama_detokenize(g_vocab, toks, n, buf, sizeof buf - 1, false, true);
    assert_true(len >= 0);
    buf[len] = '\0';
    return buf;
}

static struct sampling_params greedy(void)
{
    struct sampling_params p;
    sampling_params_default(&p);
    p.temperature = 0.0f;
    p.repeat_penalty = 1.0f;
    return p;
}

static const char TOOLS[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_time\","
                            "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";
static const char HERMES_TMPL[] = "{% if tools %}<tools>{{ tools | tojson }}</tools> Call with "
                                  "<tool_call>{...}</tool_call>.{% endif %}<|im_start|>assistant\n";

/* The chain engine_text.c makes for tool_choice "auto" on a Hermes template: gated with
 * think, or (gated false) the plain lazy chain. */
static struct llama_sampler *auto_chain(const struct reasoning_cfg *think, bool gated, struct toolcall_cfg *tc)
{
    toolcall_detect(HERMES_TMPL, tc);
    assert_int_equal(tc->format, TOOLCALL_HERMES);
    char *grammar = toolcall_grammar_auto(tc, TOOLS, 1);
    assert_non_null(grammar);
    const char *word = NULL;
    char *pattern = toolcall_trigger(tc, &word);
    assert_non_null(pattern);
    llama_token tok[2];
    size_t n_tok = 0;
    int n = llama_tokenize(g_vocab, word, (int32_t)strlen(word), tok, 2, false, true);
    if (n == 1 && llama_vocab_get_attr(g_vocab, tok[0]) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED))
        n_tok = 1;
    const char *pats[1] = {pattern};
    struct sampling_params p = greedy();
    struct llama_sampler *chain = gated ? sampling_chain_new_gated(&p, g_vocab, 1, 4096, grammar, pats, 1, tok, n_tok, think)
                                        : sampling_chain_new_lazy(&p, g_vocab, 1, 4096, grammar, true, pats, 1, tok, n_tok);
    assert_non_null(chain);
    free(grammar);
    free(pattern);
    return chain;
}

static const char REASONING[] = "I could answer with <tool_call> and then {\"name\": x}, but let me think more.</think>\n\n";

static void lazy_grammar_is_not_fired_by_a_marker_in_the_reasoning(void **state)
{
    (void)state;
    struct toolcall_cfg tc;
    /* Before the gate: the marker in the reasoning fires the grammar, which then refuses
     * the reasoning's next words. */
    struct llama_sampler *plain = auto_chain(NULL, false, &tc);
    int at = drive(plain, REASONING);
    assert_true(at > 0);
    assert_non_null(strstr(prefix_text(REASONING, at), "<tool_call>"));
    llama_sampler_free(plain);

    /* The gate: the reasoning goes through as written, then the answer's call is held to
     * the grammar: after <tool_call> the model may not write prose. */
    struct llama_sampler *chain = auto_chain(&THINK_INSIDE, true, &tc);
    assert_int_equal(drive(chain, REASONING), -1);
    assert_int_equal(drive(chain, "Sure. <tool_call>"), -1);
    assert_int_equal(drive(chain, " Let me see"), 0);
    llama_sampler_free(chain);

    /* The same chain writes a whole call in the answer, and nothing after it but the end. */
    chain = auto_chain(&THINK_INSIDE, true, &tc);
    assert_int_equal(drive(chain, REASONING), -1);
    /* (this vocabulary has no <tool_call> token: the marker must end a token, as the
     * trigger wants, so a blank follows it) */
    assert_int_equal(drive(chain, "<tool_call> {\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"), -1);
    assert_int_equal(drive(chain, "more"), 0);
    llama_sampler_free(chain);

    /* A reasoning the model opens itself, then a call: the same. */
    chain = auto_chain(&THINK_MAY_OPEN, true, &tc);
    char text[512];
    snprintf(text, sizeof text, "<think>%s<tool_call>", REASONING);
    assert_int_equal(drive(chain, text), -1);
    assert_int_equal(drive(chain, "prose"), 0);
    llama_sampler_free(chain);

    /* Without reasoning the gate lets everything by: the first marker fires it. */
    chain = auto_chain(NULL, true, &tc);
    at = drive(chain, REASONING);
    assert_true(at > 0);
    assert_non_null(strstr(prefix_text(REASONING, at), "<tool_call>"));
    llama_sampler_free(chain);
}

/* The bare JSON trigger (llama3, json) is anchored at the start of what the grammar saw:
 * after a reasoning it only works when the grammar never saw the reasoning. */
static void bare_json_trigger_works_after_a_reasoning(void **state)
{
    (void)state;
    struct toolcall_cfg tc = {.format = TOOLCALL_JSON, .name = "json"};
    char *grammar = toolcall_grammar_auto(&tc, TOOLS, 1);
    const char *word = NULL;
    char *pattern = toolcall_trigger(&tc, &word);
    assert_non_null(grammar);
    assert_non_null(pattern);
    assert_null(word);
    const char *pats[1] = {pattern};
    struct sampling_params p = greedy();
    static const char answer[] = "{\"name\": \"what_time";
    for (int gated = 0; gated < 2; gated++) {
        struct llama_sampler *chain =
            gated ? sampling_chain_new_gated(&p, g_vocab, 1, 4096, grammar, pats, 1, NULL, 0, &THINK_INSIDE)
                  : sampling_chain_new_lazy(&p, g_vocab, 1, 4096, grammar, true, pats, 1, NULL, 0);
        assert_non_null(chain);
        assert_int_equal(drive(chain, "No call yet.</think>\n\n"), -1);
        int at = drive(chain, answer);
        if (gated) { /* held: the only tool is get_time */
            assert_true(at > 0);
            assert_string_equal(prefix_text(answer, at), "{\"name\": \"");
        } else { /* before the gate: never fired */
            assert_int_equal(at, -1);
        }
        llama_sampler_free(chain);
    }
    free(grammar);
    free(pattern);
}

/* A chain's reset and clone keep the gate: a clone mid-reasoning still ignores the marker. */
static void gated_chain_resets_and_clones(void **state)
{
    (void)state;
    struct toolcall_cfg tc;
    struct llama_sampler *chain = auto_chain(&THINK_INSIDE, true, &tc);
    assert_int_equal(drive(chain, "so <tool_call> maybe"), -1);
    struct llama_sampler *copy = llama_sampler_clone(chain);
    assert_non_null(copy);
    assert_int_equal(drive(copy, " or not.</think>"), -1);
    int at = drive(copy, "<tool_call> prose");
    assert_true(at > 0);
    assert_string_equal(prefix_text("<tool_call> prose", at), "<tool_call>");
    llama_sampler_reset(chain);
    assert_int_equal(drive(chain, "again <tool_call> words</think>"), -1);
    llama_sampler_free(copy);
    llama_sampler_free(chain);
}

/* Forced calls (tool_choice "required" / a named function) may reason first. */
static void forced_grammar_admits_the_reasoning(void **state)
{
    (void)state;
    static const char calls[] = "root ::= \"<tool_call>{}</tool_call>\"\n";
    struct sampling_params p = greedy();
    char *g = callgate_forced_grammar(calls, &THINK_INSIDE, 1000);
    assert_non_null(g);
    struct llama_sampler *chain = sampling_chain_new(&p, g_vocab, 1, 4096, g);
    assert_non_null(chain);
    assert_int_equal(drive(chain, "Let me think: <tool_call>? no.</think>\n\n<tool_call>{}</tool_call>"), -1);
    assert_int_equal(drive(chain, "x"), 0); /* the call was the whole of it */
    llama_sampler_free(chain);
    free(g);
    /* the model opens its block itself: nothing to admit (the call comes first) */
    assert_null(callgate_forced_grammar(calls, &THINK_MAY_OPEN, 1000));
    assert_null(callgate_forced_grammar(calls, NULL, 1000));

    /* Harmony: gpt-oss's call, with or without its analysis message first. */
    struct toolcall_cfg tc = {.format = TOOLCALL_HARMONY, .name = "harmony"};
    char *hcalls = toolcall_grammar(&tc, TOOLS, "get_time", NULL, 1);
    assert_non_null(hcalls);
    static const char call[] = "<|channel|>commentary to=functions.get_time <|constrain|>json<|message|>{}";
    static const char analysis[] = "<|channel|>analysis<|message|>The user wants the time.<|end|><|start|>assistant";
    char both[512];
    snprintf(both, sizeof both, "%s%s", analysis, call);
    /* today's grammar: the call at once, no analysis */
    chain = sampling_chain_new(&p, g_vocab, 1, 4096, hcalls);
    assert_true(drive(chain, both) >= 0);
    llama_sampler_free(chain);
    g = callgate_forced_grammar(hcalls, &HARMONY, 1000);
    assert_non_null(g);
    chain = sampling_chain_new(&p, g_vocab, 1, 4096, g);
    assert_non_null(chain);
    assert_int_equal(drive(chain, both), -1);
    llama_sampler_free(chain);
    chain = sampling_chain_new(&p, g_vocab, 1, 4096, g);
    assert_int_equal(drive(chain, call), -1);
    llama_sampler_free(chain);
    /* a final answer is still refused: the call is forced */
    chain = sampling_chain_new(&p, g_vocab, 1, 4096, g);
    assert_true(drive(chain, "<|channel|>final<|message|>Hi") >= 0);
    llama_sampler_free(chain);
    free(g);
    /* the prompt opened the analysis message */
    struct reasoning_cfg inside = HARMONY;
    inside.starts_inside = true;
    g = callgate_forced_grammar(hcalls, &inside, 1000);
    assert_non_null(g);
    chain = sampling_chain_new(&p, g_vocab, 1, 4096, g);
    snprintf(both, sizeof both, "The time.<|end|><|start|>assistant%s", call);
    assert_int_equal(drive(chain, both), -1);
    llama_sampler_free(chain);
    free(g);
    free(hcalls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gate_without_reasoning_feeds_everything),
        cmocka_unit_test(gate_hides_a_reasoning_the_prompt_opened),
        cmocka_unit_test(gate_waits_for_the_open_marker_at_the_start),
        cmocka_unit_test(gate_hides_harmony_analysis_bodies),
        cmocka_unit_test(lazy_grammar_is_not_fired_by_a_marker_in_the_reasoning),
        cmocka_unit_test(bare_json_trigger_works_after_a_reasoning),
        cmocka_unit_test(gated_chain_resets_and_clones),
        cmocka_unit_test(forced_grammar_admits_the_reasoning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
