/* toolcall_grammar.c -- toolcall_grammar() (see toolcall.h): a GBNF grammar that makes the
 * model write one call in its template's format (tool_choice "required"). */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/json_schema.h"

struct textbuf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void gput(struct textbuf *b, const char *s)
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
static void gput_lit(struct textbuf *b, const char *s)
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
    "string ::= \"\\\"\" ( [\\x20\\x21\\x23-\\x5B\\x5D-\\uD7FF\\uE000-\\U0010FFFF] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) )* \"\\\"\"\n"
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n"
    "ws     ::= [ \\t\\n]{0,4}\n";

/* The text a call is written in, around its name and its arguments: each ' ' is where
 * blanks may go (the `ws` rule), so that a model's own spacing fits, and the text a lazy
 * grammar is fed when it triggers (the marker, then whatever the model wrote) does too.
 * SP is a space the format itself writes (<invoke name=…). */
#define SP "\x1f"

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
        *f = (struct frame){"<|channel|>commentary" SP "to=functions.", " <|constrain|>json<|message|>", "",
                            "<|channel|>commentary to="};
        return true;
    case TOOLCALL_QWEN3_CODER:
        /* The arguments are <parameter=K>\nTEXT\n</parameter>\n, one per parameter (xml_args). */
        *f = (struct frame){"<tool_call>\n<function=", ">\n", "</function>\n</tool_call>", "<tool_call>"};
        return true;
    case TOOLCALL_GLM:
        /* NAME on the tag's line, then <arg_key>K</arg_key>\n<arg_value>V</arg_value>\n per
         * argument (gput_tagged_args), as GLM 4.5-4.7's templates write a call. */
        *f = (struct frame){"<tool_call>", "\n", "</tool_call>", "<tool_call>"};
        return true;
    case TOOLCALL_GEMMA4:
        /* call:NAME{key:value,…}: Gemma 4's own value syntax (gput_kv_args). */
        *f = (struct frame){"<|tool_call>call:", "", "<tool_call|>", "<|tool_call>"};
        return true;
    case TOOLCALL_DEEPSEEK:
        if (cfg->name_args) /* V3.1 */
            *f = (struct frame){DS_CALLS_BEGIN DS_CALL_BEGIN, DS_SEP, DS_CALL_END DS_CALLS_END, DS_CALLS_BEGIN};
        else
            *f = (struct frame){DS_CALLS_BEGIN DS_CALL_BEGIN "function" DS_SEP, "\n```json\n",
                                "\n```" DS_CALL_END DS_CALLS_END, DS_CALLS_BEGIN};
        return true;
    case TOOLCALL_MINIMAX:
        /* <parameter name="K">V</parameter>\n per argument (gput_tagged_args) */
        *f = (struct frame){MINIMAX_BEGIN "\n<invoke" SP "name=\"", "\">\n", "</invoke>\n" MINIMAX_END, MINIMAX_BEGIN};
        return true;
    case TOOLCALL_MINIMAX_M3:
        *f = (struct frame){MM3_NS "<tool_call>\n" MM3_NS "<invoke" SP "name=\"", "\">",
                            MM3_NS "</invoke>\n" MM3_NS "</tool_call>", MM3_NS "<tool_call>"};
        return true;
    case TOOLCALL_DSML:
        *f = (struct frame){DSML_CALLS_BEGIN "\n<" DSML "invoke" SP "name=\"", "\">\n",
                            "</" DSML "invoke>\n" DSML_CALLS_END, DSML_CALLS_BEGIN};
        return true;
    case TOOLCALL_SEED_OSS:
        *f = (struct frame){SEED_BEGIN "\n<function=", ">\n", "</function>\n" SEED_END, SEED_BEGIN};
        return true;
    case TOOLCALL_LFM2:
        /* k=VALUE, … with JSON values (gput_kv_args), which LFM2's Python reader takes */
        *f = (struct frame){LFM2_BEGIN "[", "(", ")]" LFM2_END, LFM2_BEGIN};
        return true;
    case TOOLCALL_GRANITE:
        *f = (struct frame){"<|tool_call|> [ { \"name\" : \"", "\" , \"arguments\" : ", " } ]", "<|tool_call|>"};
        return true;
    case TOOLCALL_TOOL_CALLS:
        *f = (struct frame){"<tool_calls> [ { \"name\" : \"", "\" , \"arguments\" : ", " } ] </tool_calls>",
                            "<tool_calls>"};
        return true;
    case TOOLCALL_NEMOTRON:
        *f = (struct frame){"<TOOLCALL> [ { \"name\" : \"", "\" , \"arguments\" : ", " } ] </TOOLCALL>", "<TOOLCALL>"};
        return true;
    case TOOLCALL_FIREFUNCTION:
        *f = (struct frame){"functools[ { \"name\" : \"", "\" , \"arguments\" : ", " } ]", "functools"};
        return true;
    case TOOLCALL_APERTUS:
        *f = (struct frame){"<|tools_prefix|>[ { \"", "\" : ", " } ]<|tools_suffix|>", "<|tools_prefix|>"};
        return true;
    case TOOLCALL_FUNCTIONARY:
        /* NAME\n{…}: the ">>>" before each is the prompt's (the first) or the root's */
        *f = (struct frame){"", "\n", "", ">>>"};
        return true;
    default:
        return false;
    }
}

/* Frame text s: literals, with ` ws ` where s has a ' '. */
static void gput_frame(struct textbuf *b, const char *s)
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
        for (char *c = lit; (c = strchr(c, SP[0])); c++)
            *c = ' ';
        if (!first)
            gput(b, " ");
        gput_lit(b, lit);
        free(lit);
        first = false;
        s += n;
    }
}

/* One alternative of `call`: the format's text around NAME and ARGS (a rule name). */
static void gput_call(struct textbuf *b, const struct frame *f, const char *name, const char *args)
{
    gput_frame(b, f->pre);
    gput(b, *f->pre ? " " : "");
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

/* ---- the arguments of the formats that are not one JSON object ----------------------------
 * Qwen3-Coder's and GLM's tagged texts and Gemma 4's value syntax. Each property's value is
 * held to its schema as far as the format's value syntax allows:
 *   - a string property (type "string", or an enum/const of strings) is text -- tagged: a
 *     run without "</"; Gemma: between <|"|> -- of minLength..maxLength characters (at most
 *     4096), or one of its enum values;
 *   - tagged formats: a property whose type excludes strings is the JSON its schema allows
 *     (the templates write non-string values with tojson, and the parser reads them back as
 *     JSON when the schema says the value is not a string);
 *   - Gemma: integers, numbers, booleans and null are written as in JSON (the converter's
 *     rules); objects and arrays in Gemma's own syntax, any of its values;
 *   - no schema, an untyped one, or one the converter refuses: any value of the syntax.
 * Tagged formats write the schema's properties in their order, Gemma in sorted order (the
 * template's dictsort); the required ones always, the others optional. */
/* Text characters are positive ranges of what valid UTF-8 writes (no surrogate halves,
 * nothing above U+10FFFF; grammar/gbnf_int.h's GBNF_RAW_CHAR says why). */
#define TEXT_LT "\\x09\\x0A\\x0D\\x20-\\x3B" /* up to, not including, '<' */
#define TEXT_HI "\\uD7FF\\uE000-\\U0010FFFF"
static const char xml_rules[] = "xml-char ::= [" TEXT_LT "\\x3D-" TEXT_HI "] | \"<\" [\\x09\\x0A\\x0D\\x20-\\x2E\\x30-\\x3B"
                                "\\x3D-" TEXT_HI "]\n"
                                "xml-value ::= xml-char{1,4096}\n"
                                "xml-key ::= [a-zA-Z0-9_.-]{1,64}\n";

static const char gemma_rules[] =
    "g-char ::= [" TEXT_LT "\\x3D-" TEXT_HI "] | \"<\" [" TEXT_LT "\\x3D-\\x7B\\x7D-" TEXT_HI "]\n"
    "g-string ::= \"<|\\\"|>\" g-char{0,4096} \"<|\\\"|>\"\n"
    "g-key ::= [a-zA-Z0-9_.-]{1,64}\n"
    "g-value ::= g-string | g-dict | g-array | number | \"true\" | \"false\" | \"null\"\n"
    "g-dict ::= \"{\" ( g-key \":\" g-value ( \",\" g-key \":\" g-value ){0,63} )? \"}\"\n"
    "g-array ::= \"[\" ( g-value ( \",\" g-value ){0,255} )? \"]\"\n";

/* The names `type` lists (a string or an array), each one of allowed; false without a type. */
static bool type_within(const json_t *prop, const char *const *allowed)
{
    const json_t *t = json_object_get(prop, "type");
    size_t n = json_is_array(t) ? json_array_size(t) : json_is_string(t) ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_is_array(t) ? json_array_get(t, i) : t);
        bool ok = false;
        for (const char *const *a = allowed; name && *a; a++)
            ok |= !strcmp(name, *a);
        if (!ok)
            return false;
    }
    return n > 0;
}

static bool all_strings(const json_t *values)
{
    for (size_t i = 0; i < json_array_size(values); i++)
        if (!json_is_string(json_array_get(values, i)))
            return false;
    return json_array_size(values) > 0;
}

static int length_of(const json_t *prop, const char *key, int dflt)
{
    const json_t *v = json_object_get(prop, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return dflt;
    return json_integer_value(v) > 4096 ? 4096 : (int)json_integer_value(v);
}

/* A string property's value: one of its enum/const values, or text within its lengths.
 * Returns false when the property is not a string property. */
static bool gput_string_value(struct textbuf *b, const json_t *prop, bool gemma)
{
    static const char *const string_only[] = {"string", NULL};
    const json_t *c = json_object_get(prop, "const");
    const json_t *en = json_is_string(c) ? NULL : json_object_get(prop, "enum");
    bool typed = type_within(prop, string_only);
    if (!typed && !json_is_string(c) && !all_strings(en))
        return false;
    const char *q = gemma ? "\"<|\\\"|>\" " : "", *qe = gemma ? " \"<|\\\"|>\"" : "";
    if (json_is_string(c) || all_strings(en)) {
        size_t n = json_is_string(c) ? 1 : json_array_size(en);
        for (size_t i = 0; i < n; i++) {
            gput(b, i ? " | " : "");
            gput(b, q);
            gput_lit(b, json_string_value(json_is_string(c) ? c : json_array_get(en, i)));
            gput(b, qe);
        }
        return true;
    }
    int lo = length_of(prop, "minLength", gemma ? 0 : 1), hi = length_of(prop, "maxLength", 4096);
    if (!gemma && lo < 1)
        lo = 1; /* a tagged value is never empty: the parser would read no argument */
    if (hi < lo)
        hi = lo;
    char count[32];
    snprintf(count, sizeof count, "{%d,%d}", lo, hi);
    gput(b, q);
    gput(b, gemma ? "g-char" : "xml-char");
    gput(b, count);
    gput(b, qe);
    return true;
}

/* How a property's value is written: tagged text (Qwen3-Coder, GLM, MiniMax, DSML,
 * Seed-OSS), Gemma 4's syntax, or JSON (LFM2, whose Python reader takes JSON values). */
enum vmode { V_TAGGED, V_GEMMA, V_JSON };

/* RULE ::= the value of one property (and the rules it needs, named RULE-...). */
static void gput_value_rule(struct textbuf *b, const char *rule, const json_t *prop, enum vmode mode)
{
    static const char *const not_string[] = {"integer", "number", "boolean", "null", "object", "array", NULL};
    static const char *const json_scalar[] = {"integer", "number", "boolean", "null", NULL};
    bool gemma = mode == V_GEMMA;
    struct textbuf value = {0};
    char prefix[80], *rules = NULL;
    snprintf(prefix, sizeof prefix, "%s-", rule);
    gput(b, rule);
    gput(b, " ::= ");
    if (mode != V_JSON && gput_string_value(&value, prop, gemma)) {
        gput(b, value.s);
        gput(b, "\n");
    } else if ((mode == V_JSON || type_within(prop, gemma ? json_scalar : not_string)) &&
               json_schema_rules(prop, prefix, &rules, NULL) == BW_OK) {
        gput(b, prefix);
        gput(b, "root\n");
        gput(b, rules);
    } else {
        gput(b, mode == V_JSON ? "value\n" : gemma ? "g-value\n" : "xml-value\n");
    }
    b->oom |= value.oom;
    free(value.s);
    free(rules);
}

/* A property written as text by the tagged formats (gput_string_value's test). */
static bool string_prop(const json_t *prop)
{
    struct textbuf scratch = {0};
    bool r = gput_string_value(&scratch, prop, false);
    free(scratch.s);
    return r;
}

static bool is_required(const json_t *params, const char *key)
{
    const json_t *req = json_object_get(params, "required");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *r = json_string_value(json_array_get(req, i));
        if (r && !strcmp(r, key))
            return true;
    }
    return false;
}

/* How a tagged format writes one argument: OPEN KEY MID VALUE CLOSE (mid_other, when
 * set, instead of MID for a value that is not text: DSML's string="false"). */
struct tagged_syntax {
    const char *open, *mid, *close, *mid_other;
    bool close_key; /* CLOSE is followed by KEY and ">" (MiniMax M3's NS</KEY>) */
};
static const struct tagged_syntax qwen_arg = {"<parameter=", ">\n", "\n</parameter>\n", NULL, false};
static const struct tagged_syntax glm_arg = {"<arg_key>", "</arg_key>\n<arg_value>", "</arg_value>\n", NULL, false};
static const struct tagged_syntax seed_arg = {"<parameter=", ">", "</parameter>\n", NULL, false};
static const struct tagged_syntax minimax_arg = {"<parameter name=\"", "\">", "</parameter>\n", NULL, false};
static const struct tagged_syntax minimax_m3_arg = {MM3_NS "<", ">", MM3_NS "</", NULL, true};
static const struct tagged_syntax dsml_arg = {"<" DSML "parameter name=\"", "\" string=\"true\">",
                                              "</" DSML "parameter>\n", "\" string=\"false\">", false};

/* PREFIX"args" ::= the arguments of a Qwen3-Coder or GLM call: the schema's properties in
 * order; without properties but with a schema, up to 16 of any name; no schema, none. */
static void gput_tagged_args(struct textbuf *b, const char *prefix, const json_t *params, const struct tagged_syntax *t)
{
    const json_t *props = json_object_get(params, "properties");
    struct textbuf values = {0};
    gput(b, prefix);
    gput(b, "args ::= \"\"");
    if (json_is_object(props)) {
        const char *key;
        const json_t *v;
        int j = 0;
        json_object_foreach((json_t *)props, key, v) {
            if (!*key || strpbrk(key, "\"\\\n\r\t<>"))
                continue;
            char rule[64];
            snprintf(rule, sizeof rule, "%sk%d", prefix, j++);
            gput(b, " ( ");
            gput_lit(b, t->open);
            gput(b, " ");
            gput_lit(b, key);
            gput(b, " ");
            gput_lit(b, t->mid_other && !string_prop(v) ? t->mid_other : t->mid);
            gput(b, " ");
            gput(b, rule);
            gput(b, " ");
            gput_lit(b, t->close);
            if (t->close_key) {
                gput(b, " ");
                gput_lit(b, key);
                gput(b, " \">\"");
            }
            gput(b, is_required(params, key) ? " )" : " )?");
            gput_value_rule(&values, rule, v, V_TAGGED);
        }
    } else if (json_is_object(params) && json_object_size(params) && !t->close_key) {
        gput(b, " ( "); /* (not M3: its closing tag repeats the key, which a rule cannot) */
        gput_lit(b, t->open);
        gput(b, " xml-key ");
        gput_lit(b, t->mid);
        gput(b, " xml-value ");
        gput_lit(b, t->close);
        gput(b, " ){0,16}");
    }
    gput(b, "\n");
    if (values.s)
        gput(b, values.s);
    b->oom |= values.oom;
    free(values.s);
}

/* The argument syntax of a tagged format, or NULL. */
static const struct tagged_syntax *tagged_of(enum toolcall_format f)
{
    switch (f) {
    case TOOLCALL_QWEN3_CODER: return &qwen_arg;
    case TOOLCALL_GLM: return &glm_arg;
    case TOOLCALL_SEED_OSS: return &seed_arg;
    case TOOLCALL_MINIMAX: return &minimax_arg;
    case TOOLCALL_DSML: return &dsml_arg;
    case TOOLCALL_MINIMAX_M3: return &minimax_m3_arg;
    default: return NULL;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* How a key=value format writes its arguments: OPEN k ASSIGN v SEP k ASSIGN v CLOSE. */
struct kv_syntax {
    const char *open, *close, *sep, *assign;
    bool sorted;     /* in the keys' sorted order (Gemma's template dictsorts) */
    enum vmode mode;
    const char *any; /* the arguments of a schema without properties */
};
static const struct kv_syntax gemma_kv = {"{", "}", ",", ":", true, V_GEMMA, "g-dict"};
static const struct kv_syntax lfm2_kv = {"", "", ", ", "=", false, V_JSON,
                                         "( py-key \"=\" value ( \", \" py-key \"=\" value ){0,15} )?"};

/* PREFIX"args" ::= a Gemma 4 call's {key:value,…} or an LFM2 call's k=v, …: the properties
 * (sorted for Gemma, the schema's order for LFM2), separators only between the ones
 * written. PREFIX"sI" is "properties I.. when none is written yet", PREFIX"tI" the same
 * after one was. */
static void gput_kv_args(struct textbuf *b, const char *prefix, const json_t *params, const struct kv_syntax *st)
{
    const json_t *props = json_object_get(params, "properties");
    if (!json_is_object(props)) {
        gput(b, prefix);
        gput(b, "args ::= ");
        if (json_is_object(params) && json_object_size(params)) {
            gput(b, st->any);
        } else {
            char empty[8];
            snprintf(empty, sizeof empty, "%s%s", st->open, st->close);
            gput_lit(b, empty);
        }
        gput(b, "\n");
        return;
    }
    const char *keys[256];
    size_t n = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)props, key, v) {
        if (n < 256 && *key && !strpbrk(key, "\"\\\n\r\t <>:{},[]|=()"))
            keys[n++] = key;
    }
    if (st->sorted)
        qsort(keys, n, sizeof keys[0], cmp_str);
    char next_s[64], next_t[64], head[64];
    gput(b, prefix);
    gput(b, "args ::= ");
    gput_lit(b, st->open);
    snprintf(head, sizeof head, " %ss0 ", prefix);
    gput(b, head);
    gput_lit(b, st->close);
    gput(b, "\n");
    for (size_t i = 0; i <= n; i++) {
        snprintf(next_s, sizeof next_s, "%ss%zu", prefix, i + 1);
        snprintf(next_t, sizeof next_t, "%st%zu", prefix, i + 1);
        snprintf(head, sizeof head, "%ss%zu ::= ", prefix, i);
        gput(b, head);
        if (i == n) {
            snprintf(head, sizeof head, "\"\"\n%st%zu ::= \"\"\n", prefix, i);
            gput(b, head);
            break;
        }
        char kv[64];
        snprintf(kv, sizeof kv, "%sk%zu", prefix, i);
        size_t klen = strlen(keys[i]), alen = strlen(st->assign);
        char *lit = malloc(klen + alen + 1);
        if (!lit) {
            b->oom = true;
            return;
        }
        memcpy(lit, keys[i], klen);
        memcpy(lit + klen, st->assign, alen + 1);
        bool req = is_required(params, keys[i]);
        /* sI ::= KEY= kI tI+1 | sI+1 (optional) */
        gput_lit(b, lit);
        gput(b, " ");
        gput(b, kv);
        gput(b, " ");
        gput(b, next_t);
        if (!req) {
            gput(b, " | ");
            gput(b, next_s);
        }
        gput(b, "\n");
        /* tI ::= ( SEP KEY= kI )? tI+1 */
        snprintf(head, sizeof head, "%st%zu ::= ", prefix, i);
        gput(b, head);
        gput(b, "( ");
        gput_lit(b, st->sep);
        gput(b, " ");
        gput_lit(b, lit);
        gput(b, " ");
        gput(b, kv);
        gput(b, req ? " ) " : " )? ");
        gput(b, next_t);
        gput(b, "\n");
        free(lit);
        gput_value_rule(b, kv, json_object_get(props, keys[i]), st->mode);
    }
}

/* The grammar of one call (rule `call`) and the rules it uses, after HEAD (the root rule). */
static char *call_grammar(const struct toolcall_cfg *cfg, const char *tools_json, const char *only, const char *head)
{
    struct frame f;
    if (!call_frame(cfg, &f))
        return NULL;
    json_t *tools = tools_json ? json_loads(tools_json, 0, NULL) : NULL;
    struct textbuf b = {0}, schemas = {0};
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
        const struct tagged_syntax *tagged = tagged_of(cfg->format);
        const struct kv_syntax *kv = cfg->format == TOOLCALL_GEMMA4 ? &gemma_kv
                                     : cfg->format == TOOLCALL_LFM2 ? &lfm2_kv
                                                                    : NULL;
        if (tagged || kv) {
            snprintf(args, sizeof args, "%sargs", prefix);
            if (kv)
                gput_kv_args(&schemas, prefix, params, kv);
            else
                gput_tagged_args(&schemas, prefix, params, tagged);
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
    if (tagged_of(cfg->format))
        gput(&b, xml_rules);
    if (cfg->format == TOOLCALL_GEMMA4)
        gput(&b, gemma_rules);
    if (cfg->format == TOOLCALL_LFM2)
        gput(&b, "py-key ::= [a-zA-Z_] [a-zA-Z0-9_]{0,63}\n");
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

/* " ( ws call ){0,N-1}": up to max_calls calls in a row (blanks between; functionary's
 * next calls after their ">>>"). */
static void gput_more_calls(struct textbuf *b, const struct toolcall_cfg *cfg, int max_calls)
{
    if (max_calls > 1) {
        char more[64];
        snprintf(more, sizeof more, " ( ws %scall ){0,%d}", cfg->format == TOOLCALL_FUNCTIONARY ? "\">>>\" " : "",
                 max_calls > TOOLCALL_MAX_CALLS ? TOOLCALL_MAX_CALLS - 1 : max_calls - 1);
        gput(b, more);
    }
}

char *toolcall_grammar(const struct toolcall_cfg *cfg, const char *tools_json, const char *only, const char *close,
                       int max_calls)
{
    struct textbuf head = {0};
    gput(&head, "root ::= ");
    if (close && *close) {
        gput_lit(&head, close);
        gput(&head, " \"\\n\\n\" ");
    }
    gput(&head, "call");
    gput_more_calls(&head, cfg, max_calls);
    gput(&head, "\n");
    char *g = head.oom ? NULL : call_grammar(cfg, tools_json, only, head.s);
    free(head.s);
    return g;
}

char *toolcall_grammar_auto(const struct toolcall_cfg *cfg, const char *tools_json, int max_calls)
{
    struct textbuf head = {0};
    /* functionary: the lazy grammar starts at a ">>>" the model wrote */
    gput(&head, cfg->format == TOOLCALL_FUNCTIONARY ? "root ::= \">>>\" call" : "root ::= call");
    gput_more_calls(&head, cfg, max_calls);
    gput(&head, "\n");
    char *g = head.oom ? NULL : call_grammar(cfg, tools_json, NULL, head.s);
    free(head.s);
    return g;
}

/* s with the characters ECMAScript regexes give a meaning escaped. */
static void gput_regex_lit(struct textbuf *b, const char *s)
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
    struct textbuf b = {0};
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
