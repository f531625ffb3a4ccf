/* fuzz_toolcall.c -- the tool-call parsers (src/template/toolcall*.c) on arbitrary answers.
 *
 * Input: byte 0 picks the format (every enum toolcall_format) and name_args, byte 1 the
 * piece sizes; the rest is the model's answer, fed in pieces of 1..32 bytes (whole characters
 * when the answer is valid UTF-8, as textout hands them to the engine), then finished.
 * One fixed tool list (a string, a number and an object parameter) gives the XML formats
 * their types and the json format its names. Invariants (toolcall.h): content pieces are
 * non-empty, and valid UTF-8 when the answer was; calls are numbered 0, 1, … with a name
 * and arguments that parse as a JSON object; toolcall_count matches. The grammars and
 * the trigger of the picked format are made too (no input reaches them but the format). */
#include <jansson.h>

#include "fuzz.h"
#include "template/toolcall.h"

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},"
    "\"opts\":{\"type\":\"object\"}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"python\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"code\":{\"type\":\"string\"}}}}}]";

struct seen {
    int calls;
    bool valid_input;
};

static void on_content(void *ud, const char *text, size_t len)
{
    struct seen *s = ud;
    FUZZ_CHECK(len > 0 && text);
    if (s->valid_input)
        FUZZ_CHECK(fuzz_utf8_valid(text, len));
}

static void on_call(void *ud, const struct toolcall *c)
{
    struct seen *s = ud;
    FUZZ_CHECK(c->index == s->calls);
    FUZZ_CHECK(c->name && c->arguments);
    json_t *args = json_loads(c->arguments, JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(json_is_object(args));
    json_decref(args);
    s->calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    unsigned pick = fuzz_take_byte(&data, &size);
    unsigned seed = fuzz_take_byte(&data, &size);
    struct toolcall_cfg cfg;
    toolcall_detect(NULL, &cfg); /* json, with its name */
    cfg.format = (enum toolcall_format)(pick % (TOOLCALL_JSON + 1));
    cfg.name_args = (pick / (TOOLCALL_JSON + 1)) & 1;

    struct seen s = {.valid_input = fuzz_utf8_valid((const char *)data, size)};
    struct toolcall_sink sink = {.content = on_content, .call = on_call, .ud = &s};
    struct toolcall_parser p;
    toolcall_init(&p, &cfg, tools_json);
    size_t off = 0;
    while (off < size) {
        size_t piece = 1 + seed % 32;
        seed = seed * 1103515245u + 12345u;
        if (piece > size - off)
            piece = size - off;
        /* The engine feeds what textout emitted: whole characters. */
        while (s.valid_input && off + piece < size && (data[off + piece] & 0xC0) == 0x80)
            piece++;
        toolcall_feed(&p, (const char *)data + off, piece, &sink);
        off += piece;
    }
    toolcall_finish(&p, &sink);
    FUZZ_CHECK(toolcall_count(&p) == s.calls);
    toolcall_fini(&p);

    if (size < 4) { /* once per format, not per input: they do not depend on the answer */
        const char *word = NULL;
        free(toolcall_grammar(&cfg, tools_json, NULL, NULL, 1));
        free(toolcall_grammar(&cfg, tools_json, "python", "</think>", 1));
        free(toolcall_grammar_auto(&cfg, tools_json, TOOLCALL_MAX_CALLS));
        free(toolcall_trigger(&cfg, &word));
    }
    return 0;
}
