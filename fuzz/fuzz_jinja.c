/* fuzz_jinja.c -- the Jinja renderer (src/template/jinja_*.c) on arbitrary templates.
 *
 * The input is a template. It is parsed and, when it parses, rendered against one fixed
 * chat context (messages of every role, tool calls, tools, the usual globals), with tight
 * budgets so a template that loops or grows forever ends in a clean error, not a timeout.
 * A render that succeeds gives a NUL-terminated string of the length it says. */
#include <jansson.h>

#include "fuzz.h"
#include "template/jinja.h"

static const char ctx_json[] =
    "{\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"What is 2+2? \\u00e9\\u4e16\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"reasoning_content\":\"add\",\"thinking\":\"add\","
    "\"tool_calls\":[{\"type\":\"function\",\"id\":\"c1\",\"function\":{\"name\":\"add\","
    "\"arguments\":{\"a\":2,\"b\":2.5,\"s\":[1,null,true]}}}]},"
    "{\"role\":\"tool\",\"content\":\"4\",\"name\":\"add\",\"tool_call_id\":\"c1\"},"
    "{\"role\":\"assistant\",\"content\":\"4\"},"
    "{\"role\":\"user\",\"content\":\"thanks\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"add\",\"description\":\"adds\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"}},\"required\":[\"a\"]}}}],"
    "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\","
    "\"enable_thinking\":true,\"reasoning_effort\":\"low\"}";

static json_t *ctx(void)
{
    static json_t *c;
    if (!c)
        c = json_loads(ctx_json, 0, NULL);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    struct jinja_tmpl *t = NULL;
    struct bw_err err = {0};
    if (jinja_parse((const char *)data, size, &t, &err) != BW_OK) {
        FUZZ_CHECK(t == NULL);
        return 0;
    }
    struct jinja_opts o = {.now_unix = 1700000000,
                           .max_output = 1 << 20,
                           .max_memory = 16 << 20,
                           .max_steps = 100000,
                           .max_depth = 64};
    char *out = NULL;
    size_t out_len = 0;
    if (jinja_render(t, ctx(), &o, &out, &out_len, &err) == BW_OK) {
        FUZZ_CHECK(out && out[out_len] == '\0');
        if (out_len > o.max_output)
            fprintf(stderr, "rendered %zu bytes, max_output %zu\n", out_len, o.max_output);
        FUZZ_CHECK(out_len <= o.max_output);
    }
    free(out);
    jinja_free(t);
    return 0;
}
