/* api_tools.c -- tools on both API dialects: the request's tool_choice and
 * parallel_tool_calls, and the wire shapes of the calls the runner parsed out of an answer
 * (template/toolcall.h): Ollama's {"function":{"index","name","arguments":{…}}} and OpenAI's
 * {"id","type":"function","function":{"name","arguments":"<json text>"}}. */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/json_schema.h"
#include "template/toolcall.h"

static bool tools_have(const json_t *tools, const char *name)
{
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const char *n = json_string_value(json_object_get(json_object_get(json_array_get(tools, i), "function"), "name"));
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

int api__check_tools(const json_t *tools, char *msg, size_t len)
{
    if (!tools || json_is_null(tools))
        return 0;
    if (!json_is_array(tools))
        return snprintf(msg, len, "tools must be an array"), 400;
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *t = json_array_get(tools, i);
        const json_t *fn = json_object_get(t, "function");
        const json_t *params = json_object_get(fn, "parameters");
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!json_is_object(t) || (type && strcmp(type, "function")) || !json_is_object(fn) ||
            !json_is_string(json_object_get(fn, "name")) || !*json_string_value(json_object_get(fn, "name")))
            return snprintf(msg, len, "tools[%zu] must be {\"type\":\"function\",\"function\":{\"name\":...}}", i), 400;
        if (params && !json_is_null(params) && !json_is_object(params))
            return snprintf(msg, len, "tools[%zu].function.parameters must be a JSON schema (an object)", i), 400;
        /* The schema holds the arguments when a grammar does (tool_choice): one the
         * converter refuses is refused here, naming the tool and what is wrong. */
        char *g = NULL;
        struct bw_err e = {0};
        if (json_is_object(params) && json_schema_to_gbnf(params, &g, &e) != BW_OK)
            return snprintf(msg, len, "tools[%zu] ('%.64s'): parameters: %s", i,
                            json_string_value(json_object_get(fn, "name")), e.msg),
                   400;
        free(g);
    }
    return 0;
}

int api__tool_choice(const json_t *body, const json_t *tools, struct api_tool_choice *out, char *msg, size_t len)
{
    memset(out, 0, sizeof *out);
    const json_t *par = json_object_get(body, "parallel_tool_calls");
    if (par && !json_is_boolean(par) && !json_is_null(par))
        return snprintf(msg, len, "parallel_tool_calls must be a boolean"), 400;
    out->parallel = !json_is_false(par);
    const json_t *tc = json_object_get(body, "tool_choice");
    if (!tc || json_is_null(tc))
        return 0;
    bool has_tools = json_array_size(tools) > 0;
    if (json_is_string(tc)) {
        static const char *const modes[] = {"auto", "none", "required"};
        for (size_t i = 0; i < 3; i++)
            if (!strcmp(json_string_value(tc), modes[i]))
                out->choice = modes[i];
        if (!out->choice)
            return snprintf(msg, len,
                            "tool_choice must be \"auto\", \"none\", \"required\" or "
                            "{\"type\":\"function\",\"function\":{\"name\":...}}, not \"%.64s\"",
                            json_string_value(tc)),
                   400;
        if (!strcmp(out->choice, "required") && !has_tools)
            return snprintf(msg, len, "tool_choice \"required\" needs tools"), 400;
        return 0;
    }
    const json_t *fn = json_object_get(tc, "function");
    const char *type = json_string_value(json_object_get(tc, "type"));
    const char *name = json_string_value(json_object_get(fn, "name"));
    if (!json_is_object(tc) || !type || strcmp(type, "function") || !name)
        return snprintf(msg, len, "tool_choice must be \"auto\", \"none\", \"required\" or "
                                  "{\"type\":\"function\",\"function\":{\"name\":...}}"),
               400;
    if (!tools_have(tools, name))
        return snprintf(msg, len, "tool_choice names the function '%.128s', which is not in tools", name), 400;
    out->choice = "function";
    out->name = name;
    return 0;
}

json_t *api__ollama_tool_call(const json_t *call, int index, const char *id)
{
    const json_t *args = json_object_get(call, "arguments");
    json_t *fn = json_pack("{s:i, s:O, s:O}", "index", index, "name", json_object_get(call, "name"), "arguments",
                           args ? args : json_object());
    json_t *o = json_pack("{s:o}", "function", fn);
    if (o && id)
        json_object_set_new(o, "id", json_string(id));
    return o;
}

json_t *api__openai_tool_call(const json_t *call, int index, const char *id, bool delta)
{
    char *args = toolcall_json_dump(json_object_get(call, "arguments"));
    json_t *o = json_pack("{s:s, s:s, s:{s:O, s:s}}", "id", id, "type", "function", "function", "name",
                          json_object_get(call, "name"), "arguments", args ? args : "{}");
    free(args);
    if (o && delta)
        json_object_set_new(o, "index", json_integer(index));
    return o;
}
