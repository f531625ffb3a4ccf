/* toolcall_grammar.c -- toolcall_grammar() (see toolcall.h): a GBNF grammar that makes the
 * model write one call in its template's format (tool_choice "required"). */
#include "template/toolcall_int.h"

#include <stdlib.h>
#include <string.h>

struct gbuf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void gput(struct gbuf *b, const char *s)
{
    size_t k = strlen(s);
    if (b->oom)
        return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = (b->n + k + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

/* s as a GBNF string literal. */
static void gput_lit(struct gbuf *b, const char *s)
{
    gput(b, "\"");
    for (; *s; s++) {
        char c[3] = {*s, 0, 0};
        if (*s == '"' || *s == '\\')
            c[0] = '\\', c[1] = *s;
        else if (*s == '\n')
            c[0] = '\\', c[1] = 'n';
        gput(b, c);
    }
    gput(b, "\"");
}

/* The JSON value rules every call grammar ends with (JSON mode's, as in api.c). */
static const char json_rules[] =
    "object ::= \"{\" ws ( member ( \",\" ws member )* )? \"}\"\n"
    "member ::= string ws \":\" ws value\n"
    "array  ::= \"[\" ws ( value ( \",\" ws value )* )? \"]\" ws\n"
    "value  ::= object ws | array | string ws | number ws | ( \"true\" | \"false\" | \"null\" ) ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) )* \"\\\"\"\n"
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n"
    "ws     ::= [ \\t\\n]{0,4}\n";

/* One alternative of `call`: the format's text around NAME and ARGS (a rule name). */
static bool gput_call(struct gbuf *b, const struct toolcall_cfg *cfg, const char *name, const char *args)
{
    const char *pre = NULL, *mid = NULL, *post = NULL;
    switch (cfg->format) {
    case TOOLCALL_HERMES:
        pre = "<tool_call>\n{\"name\": \"", mid = "\", \"arguments\": ", post = "}\n</tool_call>";
        break;
    case TOOLCALL_LLAMA3:
        pre = "{\"name\": \"", mid = "\", \"parameters\": ", post = "}";
        break;
    case TOOLCALL_JSON:
        pre = "{\"name\": \"", mid = "\", \"arguments\": ", post = "}";
        break;
    case TOOLCALL_MISTRAL:
        if (cfg->name_args)
            pre = "[TOOL_CALLS]", mid = "[ARGS]", post = "";
        else
            pre = "[TOOL_CALLS][{\"name\": \"", mid = "\", \"arguments\": ", post = "}]";
        break;
    case TOOLCALL_KIMI:
        pre = KIMI_SECTION_BEGIN KIMI_CALL_BEGIN "functions.", mid = ":0" KIMI_ARGS,
        post = KIMI_CALL_END KIMI_SECTION_END;
        break;
    case TOOLCALL_COMMAND_R:
        pre = "<|START_ACTION|>[{\"tool_call_id\": \"0\", \"tool_name\": \"", mid = "\", \"parameters\": ",
        post = "}]<|END_ACTION|>";
        break;
    default:
        return false;
    }
    gput_lit(b, pre);
    gput(b, " ");
    gput_lit(b, name);
    gput(b, " ");
    gput_lit(b, mid);
    gput(b, " ");
    gput(b, args);
    if (*post) {
        gput(b, " ");
        gput_lit(b, post);
    }
    return true;
}

char *toolcall_grammar(const struct toolcall_cfg *cfg, const char *tools_json, const char *only, const char *close)
{
    json_t *tools = tools_json ? json_loads(tools_json, 0, NULL) : NULL;
    struct gbuf b = {0};
    size_t n = 0;
    gput(&b, "root ::= ");
    if (close && *close) {
        gput_lit(&b, close);
        gput(&b, " \"\\n\\n\" ");
    }
    gput(&b, "call\ncall ::= ");
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *fn = json_object_get(json_array_get(tools, i), "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name || !*name || (only && strcmp(name, only)) || strpbrk(name, "\"\\\n\r\t<>[]"))
            continue;
        const json_t *props = json_object_get(json_object_get(fn, "parameters"), "properties");
        if (n++)
            gput(&b, " | ");
        gput(&b, "( ");
        if (!gput_call(&b, cfg, name, json_object_size(props) ? "object" : "\"{}\"")) {
            n = 0;
            break;
        }
        gput(&b, " )");
    }
    gput(&b, "\n");
    gput(&b, json_rules);
    json_decref(tools);
    if (!n || b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
