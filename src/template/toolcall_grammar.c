/* toolcall_grammar.c -- toolcall_grammar() (see toolcall.h): a GBNF grammar that makes the
 * model write one call in its template's format (tool_choice "required"). */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/json_schema.h"

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

/* The text a call is written in, around its name and its arguments: each ' ' is where
 * blanks may go (the `ws` rule), so that a model's own spacing fits, and the text a lazy
 * grammar is fed when it triggers (the marker, then whatever the model wrote) does too. */
struct frame {
    const char *pre, *mid, *post;
    const char *opener; /* the marker pre starts with (NULL: a bare JSON call) */
};

static bool call_frame(const struct toolcall_cfg *cfg, struct frame *f)
{
    switch (cfg->format) {
    case TOOLCALL_HERMES:
        *f = (struct frame){"<tool_call> { \"name\" : \"", "\" , \"arguments\" : ", " } </tool_call>", "<tool_call>"};
        return true;
    case TOOLCALL_LLAMA3:
        *f = (struct frame){"{ \"name\" : \"", "\" , \"parameters\" : ", " }", NULL};
        return true;
    case TOOLCALL_JSON:
        *f = (struct frame){"{ \"name\" : \"", "\" , \"arguments\" : ", " }", NULL};
        return true;
    case TOOLCALL_MISTRAL:
        if (cfg->name_args)
            *f = (struct frame){"[TOOL_CALLS]", "[ARGS]", "", "[TOOL_CALLS]"};
        else
            *f = (struct frame){"[TOOL_CALLS] [ { \"name\" : \"", "\" , \"arguments\" : ", " } ]", "[TOOL_CALLS]"};
        return true;
    case TOOLCALL_KIMI:
        *f = (struct frame){KIMI_SECTION_BEGIN KIMI_CALL_BEGIN "functions.", ":0" KIMI_ARGS,
                            KIMI_CALL_END KIMI_SECTION_END, KIMI_SECTION_BEGIN};
        return true;
    case TOOLCALL_COMMAND_R:
        *f = (struct frame){"<|START_ACTION|> [ { \"tool_call_id\" : \"0\" , \"tool_name\" : \"", "\" , \"parameters\" : ",
                            " } ] <|END_ACTION|>", "<|START_ACTION|>"};
        return true;
    case TOOLCALL_HARMONY:
        /* What gpt-oss writes after <|start|>assistant (reasoning.c reads the header and
         * passes the message on as REASONING_CALL_OPEN …); <|call|> is its end-of-generation
         * token, left to the sampler. */
        *f = (struct frame){"<|channel|>commentary to=functions.", " <|constrain|>json<|message|>", "",
                            "<|channel|>commentary to="};
        return true;
    case TOOLCALL_QWEN3_CODER:
        /* The arguments are <parameter=K>\nTEXT\n</parameter>\n, one per parameter (xml_args). */
        *f = (struct frame){"<tool_call>\n<function=", ">\n", "</function>\n</tool_call>", "<tool_call>"};
        return true;
    case TOOLCALL_DEEPSEEK:
        if (cfg->name_args) /* V3.1 */
            *f = (struct frame){DS_CALLS_BEGIN DS_CALL_BEGIN, DS_SEP, DS_CALL_END DS_CALLS_END, DS_CALLS_BEGIN};
        else
            *f = (struct frame){DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP, "\n```json\n",
                                "\n```" DS_CALL_END DS_CALLS_END, DS_CALLS_BEGIN};
        return true;
    default:
        return false;
    }
}

/* Frame text s: literals, with ` ws ` where s has a ' '. */
static void gput_frame(struct gbuf *b, const char *s)
{
    bool first = true;
    while (*s) {
        if (*s == ' ') {
            gput(b, first ? "ws" : " ws");
            first = false;
            s++;
            continue;
        }
        size_t n = strcspn(s, " ");
        char *lit = strndup(s, n);
        if (!lit) {
            b->oom = true;
            return;
        }
        if (!first)
            gput(b, " ");
        gput_lit(b, lit);
        free(lit);
        first = false;
        s += n;
    }
}

/* One alternative of `call`: the format's text around NAME and ARGS (a rule name). */
static void gput_call(struct gbuf *b, const struct frame *f, const char *name, const char *args)
{
    gput_frame(b, f->pre);
    gput(b, " ");
    gput_lit(b, name);
    gput(b, " ");
    gput_frame(b, f->mid);
    gput(b, " ");
    gput(b, args);
    if (*f->post) {
        gput(b, " ");
        gput_frame(b, f->post);
    }
}

/* Qwen3-Coder's values are text, not JSON: a non-empty run of at most 4096 characters
 * with no "</" in it (so never </parameter>), on its own lines. */
static const char xml_rules[] = "xml-char ::= [^<] | \"<\" [^/<]\n"
                                "xml-value ::= xml-char{1,4096}\n"
                                "xml-key ::= [a-zA-Z0-9_.-]{1,64}\n";

static void gput_xml_param(struct gbuf *b, const char *key)
{
    gput(b, "\"<parameter=\" ");
    if (key)
        gput_lit(b, key);
    else
        gput(b, "xml-key");
    gput(b, " \">\\n\" xml-value \"\\n</parameter>\\n\"");
}

/* The rule RULE for a Qwen3-Coder call's parameters: the schema's properties in their
 * order, the required ones always, the others optional; no properties but a schema, up to
 * 16 of any name; no schema, none. The values are not held to the properties' types. */
static void gput_xml_args(struct gbuf *b, const char *rule, const json_t *params)
{
    const json_t *props = json_object_get(params, "properties");
    const json_t *req = json_object_get(params, "required");
    gput(b, rule);
    gput(b, " ::= \"\"");
    if (json_is_object(props)) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)props, key, v) {
            bool needed = false;
            for (size_t i = 0; i < json_array_size(req); i++) {
                const char *r = json_string_value(json_array_get(req, i));
                needed |= r && !strcmp(r, key);
            }
            if (!*key || strpbrk(key, "\"\\\n\r\t<>"))
                continue;
            gput(b, " ( ");
            gput_xml_param(b, key);
            gput(b, needed ? " )" : " )?");
        }
    } else if (json_is_object(params) && json_object_size(params)) {
        gput(b, " ( ");
        gput_xml_param(b, NULL);
        gput(b, " ){0,16}");
    }
    gput(b, "\n");
}

/* The grammar of one call (rule `call`) and the rules it uses, after HEAD (the root rule). */
static char *call_grammar(const struct toolcall_cfg *cfg, const char *tools_json, const char *only, const char *head)
{
    struct frame f;
    if (!call_frame(cfg, &f))
        return NULL;
    json_t *tools = tools_json ? json_loads(tools_json, 0, NULL) : NULL;
    struct gbuf b = {0}, schemas = {0};
    size_t n = 0;
    gput(&b, head);
    gput(&b, "call ::= ");
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *fn = json_object_get(json_array_get(tools, i), "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name || !*name || (only && strcmp(name, only)) || strpbrk(name, "\"\\\n\r\t <>[]"))
            continue;
        const json_t *params = json_object_get(fn, "parameters");
        /* The arguments: the parameters schema's rules under "toolI-"; no schema, {}; a
         * schema the converter refuses (the api refuses those tools first), any object. */
        char prefix[32], args[48], *rules = NULL;
        snprintf(prefix, sizeof prefix, "tool%zu-", i);
        if (cfg->format == TOOLCALL_QWEN3_CODER) {
            snprintf(args, sizeof args, "%sxml", prefix);
            gput_xml_args(&schemas, args, params);
        } else if (!json_is_object(params)) {
            snprintf(args, sizeof args, "\"{}\"");
        } else if (json_schema_rules(params, prefix, &rules, NULL) == BW_OK) {
            snprintf(args, sizeof args, "%sroot", prefix);
            gput(&schemas, rules);
            free(rules);
        } else {
            snprintf(args, sizeof args, "object");
        }
        if (n++)
            gput(&b, " | ");
        gput(&b, "( ");
        gput_call(&b, &f, name, args);
        gput(&b, " )");
    }
    gput(&b, "\n");
    gput(&b, json_rules);
    if (cfg->format == TOOLCALL_QWEN3_CODER)
        gput(&b, xml_rules);
    if (schemas.s)
        gput(&b, schemas.s);
    free(schemas.s);
    json_decref(tools);
    if (!n || b.oom || schemas.oom || b.n > TOOLCALL_MAX_GRAMMAR) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

char *toolcall_grammar(const struct toolcall_cfg *cfg, const char *tools_json, const char *only, const char *close)
{
    struct gbuf head = {0};
    gput(&head, "root ::= ");
    if (close && *close) {
        gput_lit(&head, close);
        gput(&head, " \"\\n\\n\" ");
    }
    gput(&head, "call\n");
    char *g = head.oom ? NULL : call_grammar(cfg, tools_json, only, head.s);
    free(head.s);
    return g;
}

char *toolcall_grammar_auto(const struct toolcall_cfg *cfg, const char *tools_json)
{
    return call_grammar(cfg, tools_json, NULL, "root ::= call ( ws call ){0,7}\n");
}

/* s with the characters ECMAScript regexes give a meaning escaped. */
static void gput_regex_lit(struct gbuf *b, const char *s)
{
    for (; *s; s++) {
        char c[3] = {*s, 0, 0};
        if (strchr("\\^$.|?*+()[]{}/", *s))
            c[0] = '\\', c[1] = *s;
        gput(b, c);
    }
}

char *toolcall_trigger(const struct toolcall_cfg *cfg, const char **word)
{
    struct frame f;
    *word = NULL;
    if (!call_frame(cfg, &f))
        return NULL;
    struct gbuf b = {0};
    if (!f.opener) {
        /* A bare JSON call: the whole answer so far is blanks and the start of
         * {"name": " (no further: the grammar is fed the text from the "{" on, which must
         * fit it, and a tool name cannot be guessed). */
        gput(&b, "^[ \\t\\n]{0,4}(\\{[ \\t\\n]{0,4}(?:\"(?:n(?:a(?:m(?:e(?:\"[ \\t\\n]{0,4}"
                 "(?::[ \\t\\n]{0,4}\"?)?)?)?)?)?)?)?)$");
    } else {
        /* The marker, as the last thing written: the grammar is fed the marker only (a
         * token that goes on past it leaves the grammar waiting, never fed a text that
         * does not fit). */
        gput_regex_lit(&b, f.opener);
        gput(&b, "$");
        *word = f.opener;
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
