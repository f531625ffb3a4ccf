/* toolcall_native_grammar.h -- the second half of test_toolcall_native.c (included once,
 * after its parsing tests): the call grammars of the new formats, their lazy triggers, and
 * the round trip through the pinned templates. */
#ifndef BELLOWS_TEST_TOOLCALL_NATIVE_GRAMMAR_H
#define BELLOWS_TEST_TOOLCALL_NATIVE_GRAMMAR_H

/* city: text of at most 12 characters; nights: an integer >= 1; room: an enum; both of the
 * first required. */
static const char BOOK[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"book\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},\"nights\":{\"type\":\"integer\",\"minimum\":1},"
    "\"room\":{\"enum\":[\"single\",\"double\"]},\"breakfast\":{\"type\":\"boolean\"},\"tags\":{\"type\":\"array\"}},"
    "\"required\":[\"city\",\"nights\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";

/* The "required" grammar of tmpl's format takes good (and the parser reads it as calls),
 * refuses every bad one; "auto"'s grammar takes good too, fed from its marker on. */
static void grammar_case(const char *tmpl, const char *good, const char *calls, const char *const *bad, size_t n_bad)
{
    struct toolcall_cfg c = cfg_of(tmpl);
    char *g = toolcall_grammar(&c, BOOK, NULL, NULL, TOOLCALL_MAX_CALLS);
    if (!g)
        fail_msg("%s: no call grammar", c.name);
    if (!accepts(g, good))
        fail_msg("%s grammar refuses its own call:\n%s\n--- grammar:\n%s", c.name, good, g);
    for (size_t i = 0; i < n_bad; i++)
        if (accepts(g, bad[i]))
            fail_msg("%s grammar takes a call that does not fit the schema:\n%s", c.name, bad[i]);
    free(g);
    g = toolcall_grammar_auto(&c, BOOK, TOOLCALL_MAX_CALLS);
    assert_non_null(g);
    if (c.format == TOOLCALL_FUNCTIONARY) { /* the lazy grammar starts at the model's ">>>" */
        char *with = NULL;
        assert_true(asprintf(&with, ">>>%s", good) > 0);
        assert_true(accepts(g, with));
        free(with);
    } else {
        assert_true(accepts(g, good));
    }
    free(g);
    expect_with(&c, BOOK, good, "", calls);
}

static void grammars_of_new_formats(void **state)
{
    (void)state;
    static const char *const minimax_bad[] = {
        "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">Paris</parameter>\n</invoke>\n"
        "</minimax:tool_call>", /* nights missing */
        "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">Paris</parameter>\n<parameter "
        "name=\"nights\">two</parameter>\n</invoke>\n</minimax:tool_call>",
        "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">Paris</parameter>\n<parameter "
        "name=\"nights\">2</parameter>\n<parameter name=\"room\">suite</parameter>\n</invoke>\n</minimax:tool_call>",
        "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">Paris, France!</parameter>\n<parameter "
        "name=\"nights\">2</parameter>\n</invoke>\n</minimax:tool_call>", /* over maxLength */
        "<minimax:tool_call>\n<invoke name=\"hotel\">\n</invoke>\n</minimax:tool_call>",
    };
    grammar_case(T_MINIMAX,
                 "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">Paris</parameter>\n<parameter "
                 "name=\"nights\">2</parameter>\n<parameter name=\"room\">double</parameter>\n</invoke>\n"
                 "</minimax:tool_call>\n<minimax:tool_call>\n<invoke name=\"get_time\">\n</invoke>\n</minimax:tool_call>",
                 "book {\"city\":\"Paris\",\"nights\":2,\"room\":\"double\"}|get_time {}|", minimax_bad,
                 ARRAY_LEN(minimax_bad));

    static const char *const m3_bad[] = {
        NS "<tool_call>\n" NS "<invoke name=\"book\">" NS "<city>Paris" NS "</city>" NS "</invoke>\n" NS "</tool_call>",
        NS "<tool_call>\n" NS "<invoke name=\"book\">" NS "<city>Paris" NS "</city>" NS "<nights>2" NS "</city>" NS
        "</invoke>\n" NS "</tool_call>", /* the wrong closing tag */
    };
    grammar_case(T_MINIMAX_M3,
                 NS "<tool_call>\n" NS "<invoke name=\"book\">" NS "<city>Paris" NS "</city>" NS "<nights>2" NS
                 "</nights>" NS "<tags>[\"x\"]" NS "</tags>" NS "</invoke>\n" NS "</tool_call>",
                 "book {\"city\":\"Paris\",\"nights\":2,\"tags\":[\"x\"]}|", m3_bad, ARRAY_LEN(m3_bad));

    static const char *const dsml_bad[] = {
        "<" DSML "function_calls>\n<" DSML "invoke name=\"book\">\n<" DSML "parameter name=\"city\" string=\"true\">"
        "Oslo</" DSML "parameter>\n<" DSML "parameter name=\"nights\" string=\"true\">2</" DSML "parameter>\n</" DSML
        "invoke>\n</" DSML "function_calls>", /* an integer said to be text */
        "<" DSML "function_calls>\n<" DSML "invoke name=\"book\">\n<" DSML "parameter name=\"city\" string=\"true\">"
        "Oslo</" DSML "parameter>\n<" DSML "parameter name=\"nights\" string=\"false\">0</" DSML "parameter>\n</" DSML
        "invoke>\n</" DSML "function_calls>", /* under the minimum */
    };
    grammar_case(T_DSML,
                 "<" DSML "function_calls>\n<" DSML "invoke name=\"book\">\n<" DSML "parameter name=\"city\" "
                 "string=\"true\">Oslo</" DSML "parameter>\n<" DSML "parameter name=\"nights\" string=\"false\">3</" DSML
                 "parameter>\n<" DSML "parameter name=\"breakfast\" string=\"false\">true</" DSML "parameter>\n</" DSML
                 "invoke>\n</" DSML "function_calls>",
                 "book {\"city\":\"Oslo\",\"nights\":3,\"breakfast\":true}|", dsml_bad, ARRAY_LEN(dsml_bad));

    static const char *const seed_bad[] = {
        "<seed:tool_call>\n<function=book>\n<parameter=nights>2</parameter>\n</function>\n</seed:tool_call>",
        "<seed:tool_call>\n<function=book>\n<parameter=city>Rome</parameter>\n<parameter=nights>2.5</parameter>\n"
        "</function>\n</seed:tool_call>",
    };
    grammar_case(T_SEED,
                 "<seed:tool_call>\n<function=book>\n<parameter=city>Rome</parameter>\n<parameter=nights>2</parameter>\n"
                 "<parameter=tags>[\"quiet\"]</parameter>\n</function>\n</seed:tool_call>",
                 "book {\"city\":\"Rome\",\"nights\":2,\"tags\":[\"quiet\"]}|", seed_bad, ARRAY_LEN(seed_bad));

    static const char *const lfm2_bad[] = {
        "<|tool_call_start|>[book(city=\"Rome\")]<|tool_call_end|>",                      /* nights missing */
        "<|tool_call_start|>[book(city=\"Rome\", nights=0)]<|tool_call_end|>",            /* minimum */
        "<|tool_call_start|>[book(nights=2, city=\"Rome\")]<|tool_call_end|>",            /* schema order */
        "<|tool_call_start|>[book(city=\"Rome\", nights=2, view=true)]<|tool_call_end|>", /* unknown key */
        "<|tool_call_start|>[book(city=\"Rome\", nights=2, room=\"suite\")]<|tool_call_end|>",
    };
    grammar_case(T_LFM2,
                 "<|tool_call_start|>[book(city=\"Rome\", nights=2, breakfast=true, tags=[\"a\", 1])]<|tool_call_end|>",
                 "book {\"city\":\"Rome\",\"nights\":2,\"breakfast\":true,\"tags\":[\"a\",1]}|", lfm2_bad,
                 ARRAY_LEN(lfm2_bad));

    static const char *const granite_bad[] = {
        "<|tool_call|>[{\"name\": \"book\", \"arguments\": {\"city\": \"Rome\"}}]",
        "<|tool_call|>[{\"name\": \"hotel\", \"arguments\": {}}]",
    };
    grammar_case(T_GRANITE, "<|tool_call|>[{\"name\": \"book\", \"arguments\": {\"city\": \"Rome\", \"nights\": 2}}]",
                 "book {\"city\":\"Rome\",\"nights\":2}|", granite_bad, ARRAY_LEN(granite_bad));
    static const char *const lists_bad[] = {"<tool_calls>[{\"name\": \"book\", \"arguments\": {}}]</tool_calls>"};
    grammar_case(T_TOOL_CALLS,
                 "<tool_calls>[{\"name\": \"get_time\", \"arguments\": {}}]</tool_calls>\n<tool_calls>[{\"name\": "
                 "\"book\", \"arguments\": {\"city\": \"Rome\", \"nights\": 1}}]</tool_calls>",
                 "get_time {}|book {\"city\":\"Rome\",\"nights\":1}|", lists_bad, ARRAY_LEN(lists_bad));
    static const char *const nemotron_bad[] = {"<TOOLCALL>[{\"name\": \"get_time\", \"arguments\": {\"a\": 1}}]</TOOLCALL>"};
    grammar_case(T_NEMOTRON, "<TOOLCALL>[{\"name\": \"get_time\", \"arguments\": {}}]</TOOLCALL>", "get_time {}|",
                 nemotron_bad, ARRAY_LEN(nemotron_bad));
    static const char *const functionary_bad[] = {"book\n{\"city\": \"Rome\"}", "all\nhello"};
    grammar_case(T_FUNCTIONARY, "book\n{\"city\": \"Rome\", \"nights\": 2}\n>>>get_time\n{}",
                 "book {\"city\":\"Rome\",\"nights\":2}|get_time {}|", functionary_bad, ARRAY_LEN(functionary_bad));

    static const char *const ff_bad[] = {"functools[{\"name\": \"book\", \"arguments\": {\"nights\": 2}}]"};
    grammar_case(T_FIREFUNCTION, "functools[{\"name\": \"book\", \"arguments\": {\"city\": \"Rome\", \"nights\": 2}}]",
                 "book {\"city\":\"Rome\",\"nights\":2}|", ff_bad, ARRAY_LEN(ff_bad));
    static const char *const apertus_bad[] = {"<|tools_prefix|>[{\"book\": {}}]<|tools_suffix|>"};
    grammar_case(T_APERTUS, "<|tools_prefix|>[{\"get_time\": {}}]<|tools_suffix|>", "get_time {}|", apertus_bad,
                 ARRAY_LEN(apertus_bad));

    /* a named function: only that one */
    struct toolcall_cfg m = cfg_of(T_MINIMAX);
    char *g = toolcall_grammar(&m, BOOK, "get_time", NULL, 1);
    assert_true(accepts(g, "<minimax:tool_call>\n<invoke name=\"get_time\">\n</invoke>\n</minimax:tool_call>"));
    assert_false(accepts(g, "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">A</parameter>\n"
                            "<parameter name=\"nights\">1</parameter>\n</invoke>\n</minimax:tool_call>"));
    free(g);
}

/* The token whose piece is the single byte b (llama-bpe has one for each). */
static llama_token byte_token(unsigned char b)
{
    static llama_token tok[256]; /* plus one; 0: not found yet */
    if (!tok[1]) {
        for (llama_token t = 0; t < llama_vocab_n_tokens(g_vocab); t++) {
            char piece[8];
            if (llama_token_to_piece(g_vocab, t, piece, sizeof piece, 0, false) == 1 && !tok[(unsigned char)piece[0]])
                tok[(unsigned char)piece[0]] = t + 1;
        }
    }
    assert_true(tok[b] != 0);
    return tok[b] - 1;
}

/* prefix tokenized as usual, then bytes one token each: how many of the bytes are taken. */
static int bytes_taken_after(const char *grammar, const char *prefix, const char *bytes)
{
    struct llama_sampler *s = llama_sampler_init_grammar(g_vocab, grammar, "root");
    assert_non_null(s);
    llama_token toks[256];
    int n = llama_tokenize(g_vocab, prefix, (int)strlen(prefix), toks, 256, false, false);
    assert_true(n > 0);
    int i = 0, total = n + (int)strlen(bytes);
    for (; i < total; i++) {
        llama_token t = i < n ? toks[i] : byte_token((unsigned char)bytes[i - n]);
        llama_token_data d = {.id = t, .logit = 0.0f, .p = 0.0f};
        llama_token_data_array a = {.data = &d, .size = 1, .selected = -1, .sorted = false};
        llama_sampler_apply(s, &a);
        if (d.logit == -INFINITY)
            break;
        llama_sampler_accept(s, t);
    }
    llama_sampler_free(s);
    return i - n; /* negative: the prefix itself was refused */
}

/* The text values of the tagged, Gemma and JSON call grammars take valid UTF-8 a byte a
 * token, and refuse bytes that decode to a surrogate half or past U+10FFFF (which the
 * output's UTF-8 repair would turn into several U+FFFD). */
static void call_grammar_text_is_valid_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *prefix;
    } cases[] = {
        {T_MINIMAX, "<minimax:tool_call>\n<invoke name=\"book\">\n<parameter name=\"city\">"},
        {T_SEED, "<seed:tool_call>\n<function=book>\n<parameter=city>"},
        {"{{- '<|tool_call>call:' + function['name'] + '{' -}}", "<|tool_call>call:book{city:<|\"|>"},
        {T_GRANITE, "<|tool_call|>[{\"name\": \"book\", \"arguments\": {\"city\": \""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct toolcall_cfg c = cfg_of(cases[i].tmpl);
        char *g = toolcall_grammar(&c, BOOK, "book", NULL, 1);
        assert_non_null(g);
        int taken = bytes_taken_after(g, cases[i].prefix, "\xc3\xa9\xed\x95\x9c");
        if (taken != 5)
            fail_msg("%s: takes %d of 5 bytes of valid UTF-8 a byte a token", c.name, taken);
        assert_int_equal(bytes_taken_after(g, cases[i].prefix, "\xed\xa0\x80"), 1);
        assert_int_equal(bytes_taken_after(g, cases[i].prefix, "\xf4\x90\x80\x80"), 1);
        free(g);
    }
}

static void triggers_of_new_formats(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *pattern, *word;
    } cases[] = {
        {T_MINIMAX, "<minimax:tool_call>$", "<minimax:tool_call>"},
        {T_MINIMAX_M3, "\\]<\\]minimax\\[>\\[<tool_call>$", NS "<tool_call>"},
        {T_DSML, "<" DSML "function_calls>$", "<" DSML "function_calls>"},
        {T_SEED, "<seed:tool_call>$", "<seed:tool_call>"},
        {T_LFM2, "<\\|tool_call_start\\|>$", "<|tool_call_start|>"},
        {T_GRANITE, "<\\|tool_call\\|>$", "<|tool_call|>"},
        {T_TOOL_CALLS, "<tool_calls>$", "<tool_calls>"},
        {T_NEMOTRON, "<TOOLCALL>$", "<TOOLCALL>"},
        {T_FUNCTIONARY, ">>>$", ">>>"},
        {T_FIREFUNCTION, "functools$", "functools"},
        {T_APERTUS, "<\\|tools_prefix\\|>$", "<|tools_prefix|>"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct toolcall_cfg c = cfg_of(cases[i].tmpl);
        const char *word;
        char *p = toolcall_trigger(&c, &word);
        assert_non_null(p);
        assert_string_equal(p, cases[i].pattern);
        assert_string_equal(word, cases[i].word);
        free(p);
    }
}

/* The pinned template renders a history whose assistant turn called get_weather; the text
 * after the user's message, fed to the parser of the format detected for the template,
 * gives that call back. (Functionary v3.2's template concatenates the arguments as JSON
 * text: chat_template_render gives them as text when the objects fail; LFM2 and
 * LFM2.5-Instruct do not render calls; FireFunction v2's reads a `functions` variable.) */
static void templates_write_what_the_parser_reads(void **state)
{
    (void)state;
    static const char *const files[] = {
        "MiniMax-M2.jinja", "MiniMax-M3.jinja", "deepseek-ai-DeepSeek-V3.2.jinja", "ByteDance-Seed-OSS.jinja",
        "LFM2.5-8B-A1B.jinja",
        "unsloth-Apriel-1.5.jinja", "Apriel-1.6-15b-Thinker-fixed.jinja", "MiniMax-M1.jinja",
        "NVIDIA-Nemotron-Nano-v2.jinja", "Apertus-8B-Instruct.jinja",
        "meetkai-functionary-medium-v3.2.jinja", /* its template takes the arguments as text */
        /* and the formats parsed before */
        "Qwen-Qwen3-0.6B.jinja", "Qwen3-Coder.jinja", "GLM-4.6.jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja",
        "mistralai-Mistral-Nemo-Instruct-2407.jinja", "deepseek-ai-DeepSeek-V3.1.jinja", "google-gemma-4-31B-it.jinja",
        "moonshotai-Kimi-K2.jinja", "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja",
    };
    /* TOOLS with descriptions (Apertus' template reads them) */
    static const char tools[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"description\":\"City\"},\"days\":"
        "{\"type\":\"integer\",\"description\":\"Days\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"get_time\","
        "\"description\":\"Time\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";
    static const char user[] = "{\"role\":\"user\",\"content\":\"QQ-what-is-the-weather\"}";
    static const char asst[] = "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"type\":\"function\","
                               "\"id\":\"call12345\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":"
                               "\"Paris\",\"days\":3}}}]}";
    static const char tool[] = "{\"role\":\"tool\",\"content\":\"sunny\",\"name\":\"get_weather\",\"tool_call_id\":"
                               "\"call12345\"}";
    struct policy_msg msgs[] = {
        {.role = "user", .content = "QQ-what-is-the-weather", .json = user},
        {.role = "assistant", .content = "", .json = asst},
        {.role = "tool", .content = "sunny", .json = tool},
    };
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        char *text = read_template(files[i]);
        if (!text)
            fail_msg("missing template %s", files[i]);
        struct chat_template *t = NULL;
        struct bw_err err = {0};
        if (chat_template_parse(text, &t, &err) != BW_OK)
            fail_msg("%s: %s", files[i], err.msg);
        struct chat_render_in in = {.msgs = msgs, .n_msgs = 3, .tools_json = tools, .bos_token = "<s>", .eos_token = "</s>"};
        char *out = NULL;
        size_t n = 0;
        if (chat_template_render(t, &in, &out, &n, &err) != BW_OK)
            fail_msg("%s: %s", files[i], err.msg);
        const char *q = strstr(out, "QQ-what-is-the-weather");
        assert_non_null(q);
        q += strlen("QQ-what-is-the-weather");
        const char *end = strstr(q, "sunny"); /* the tool result: the call is before it */
        assert_non_null(end);
        struct toolcall_cfg c = cfg_of(text);
        struct toolcall_parser p;
        struct sink k = {0};
        struct toolcall_sink sk = {on_content, on_call, &k};
        toolcall_init(&p, &c, tools);
        toolcall_feed(&p, q, (size_t)(end - q), &sk);
        toolcall_finish(&p, &sk);
        toolcall_fini(&p);
        const char *want = "get_weather {\"city\":\"Paris\",\"days\":3}";
        if (!strstr(k.calls, want))
            fail_msg("%s (%s): the call the template writes is not read back: got \"%s\" from:\n%.*s", files[i], c.name,
                     k.calls, (int)(end - q), q);
        free(out);
        chat_template_free(t);
        free(text);
    }
}

#endif
