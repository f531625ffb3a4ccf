/* toolcall_formats.c -- one call's text to calls, per format (see toolcall_int.h; the
 * formats are listed in toolcall.h). Reading order: argument values of the XML formats,
 * Qwen3-Coder and GLM, Llama's <|python_tag|>, Gemma 4's value syntax, DeepSeek and Kimi,
 * and toolcall__parse_call, which picks the parser by the marker that opened the call. */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- argument values of the XML formats -------------------------------------------------- */

/* The "function" object of tool `name` in the request's tools, or NULL. */
static const json_t *tool_function(const json_t *tools, const char *name)
{
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *fn = json_object_get(json_array_get(tools, i), "function");
        const char *n = json_string_value(json_object_get(fn, "name"));
        if (n && !strcmp(n, name))
            return fn;
    }
    return NULL;
}

/* The JSON schema type of parameter key of tool name in the request's tools, or NULL. */
static const json_t *param_type(const json_t *tools, const char *name, const char *key)
{
    const json_t *fn = tool_function(tools, name);
    const json_t *prop = json_object_get(json_object_get(json_object_get(fn, "parameters"), "properties"), key);
    return json_object_get(prop, "type");
}

static bool type_is_string(const json_t *type)
{
    if (json_is_string(type))
        return !strcmp(json_string_value(type), "string");
    if (!json_is_array(type))
        return false;
    for (size_t i = 0; i < json_array_size(type); i++) {
        const char *t = json_string_value(json_array_get(type, i));
        if (t && strcmp(t, "string") && strcmp(t, "null"))
            return false; /* a union with a non-string type: try JSON first */
    }
    return true;
}

json_t *toolcall__arg_value(const struct toolcall_parser *p, const char *fn, const char *key, struct span v)
{
    const json_t *type = param_type(p->tools, fn, key);
    if (!type_is_string(type)) {
        json_t *j = toolcall__load(toolcall__trim(v.s, v.n), 0);
        if (j && (type || !json_is_string(j)))
            return j;
        json_decref(j);
    }
    return json_stringn(v.s, v.n);
}

/* Qwen3-Coder: <function=NAME>(<parameter=K>\nV\n</parameter>)*</function>, one or more,
 * or <function=NAME>{JSON}</function> (Functionary v3.1). */
static bool parse_xml_functions(const struct toolcall_parser *p, json_t *out, struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    if (!toolcall__span_starts(sp, "<function="))
        return false;
    while (sp.n) {
        if (!toolcall__span_starts(sp, "<function="))
            return false;
        sp.s += 10, sp.n -= 10;
        const char *gt = memchr(sp.s, '>', sp.n);
        if (!gt || gt - sp.s > 256 || memchr(sp.s, '\n', (size_t)(gt - sp.s)))
            return false;
        char name[257];
        size_t nl = (size_t)(gt - sp.s);
        memcpy(name, sp.s, nl);
        name[nl] = '\0';
        sp = toolcall__trim(gt + 1, (size_t)(sp.s + sp.n - gt - 1));
        json_t *args = json_object();
        if (sp.n && sp.s[0] == '{') { /* JSON arguments */
            const char *end = toolcall__find(sp, "</function>");
            size_t jl = end ? (size_t)(end - sp.s) : sp.n;
            json_decref(args);
            args = toolcall__load(toolcall__trim(sp.s, jl), 0);
            sp = end ? toolcall__trim(end + 11, (size_t)(sp.s + sp.n - end - 11)) : (struct span){sp.s + sp.n, 0};
            if (!toolcall__add_call(out, (struct span){name, nl}, args, NULL, 0))
                return false;
            continue;
        }
        for (;;) {
            sp = toolcall__trim(sp.s, sp.n);
            if (!sp.n)
                break; /* </function> missing at the end: complete otherwise */
            if (toolcall__span_starts(sp, "</function>")) {
                sp.s += 11, sp.n -= 11;
                break;
            }
            if (!toolcall__span_starts(sp, "<parameter=")) {
                json_decref(args);
                return false;
            }
            sp.s += 11, sp.n -= 11;
            const char *kgt = memchr(sp.s, '>', sp.n);
            const char *vend = kgt ? memmem(kgt, (size_t)(sp.s + sp.n - kgt), "</parameter>", 12) : NULL;
            if (!kgt || !vend || kgt - sp.s > 256) {
                json_decref(args);
                return false;
            }
            char key[257];
            memcpy(key, sp.s, (size_t)(kgt - sp.s));
            key[kgt - sp.s] = '\0';
            struct span v = {kgt + 1, (size_t)(vend - kgt - 1)};
            if (v.n && v.s[0] == '\n') /* the template writes the value on its own lines */
                v.s++, v.n--;
            if (v.n && v.s[v.n - 1] == '\n')
                v.n--;
            json_t *val = toolcall__arg_value(p, name, key, v);
            if (!val || json_object_set_new(args, key, val)) {
                json_decref(args);
                return false;
            }
            sp.n -= (size_t)(vend + 12 - sp.s);
            sp.s = vend + 12;
        }
        if (!toolcall__add_call(out, (struct span){name, nl}, args, NULL, 0))
            return false;
        sp = toolcall__trim(sp.s, sp.n);
    }
    return true;
}

/* GLM: NAME(<arg_key>K</arg_key><arg_value>V</arg_value>)* */
static bool parse_glm(const struct toolcall_parser *p, json_t *out, struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    const char *first = toolcall__find(sp, "<arg_key>");
    struct span nm = toolcall__trim(sp.s, first ? (size_t)(first - sp.s) : sp.n);
    if (!nm.n || nm.n > 256)
        return false;
    for (size_t i = 0; i < nm.n; i++)
        if (!toolcall__name_char(nm.s[i]))
            return false;
    char name[257];
    memcpy(name, nm.s, nm.n);
    name[nm.n] = '\0';
    json_t *args = json_object();
    sp = first ? (struct span){first, (size_t)(sp.s + sp.n - first)} : (struct span){NULL, 0};
    while (sp.n) {
        sp = toolcall__trim(sp.s, sp.n);
        if (!sp.n)
            break;
        struct span k = toolcall__after(sp, "<arg_key>");
        const char *kend = k.s ? toolcall__find(k, "</arg_key>") : NULL;
        if (!toolcall__span_starts(sp, "<arg_key>") || !kend || kend - k.s > 256)
            goto fail;
        char key[257];
        memcpy(key, k.s, (size_t)(kend - k.s));
        key[kend - k.s] = '\0';
        struct span rest = toolcall__trim(kend + 10, (size_t)(sp.s + sp.n - kend - 10));
        struct span v = toolcall__after(rest, "<arg_value>");
        const char *vend = v.s ? toolcall__find(v, "</arg_value>") : NULL;
        if (!toolcall__span_starts(rest, "<arg_value>") || !vend)
            goto fail;
        json_t *val = toolcall__arg_value(p, name, key, (struct span){v.s, (size_t)(vend - v.s)});
        if (!val || json_object_set_new(args, key, val))
            goto fail;
        sp = (struct span){vend + 12, (size_t)(rest.s + rest.n - vend - 12)};
    }
    return toolcall__add_call(out, (struct span){name, nm.n}, args, NULL, 0);
fail:
    json_decref(args);
    return false;
}

/* ---- Llama's <|python_tag|> -------------------------------------------------------------- */

/* A Python literal of a builtin call's keyword argument: a quoted string, a number,
 * True/False/None. Advances *sp past it. */
static json_t *py_value(struct span *sp)
{
    struct span s = toolcall__trim(sp->s, sp->n);
    if (!s.n)
        return NULL;
    if (s.s[0] == '"' || s.s[0] == '\'') {
        char q = s.s[0];
        char *buf = malloc(s.n);
        size_t o = 0, i = 1;
        if (!buf)
            return NULL;
        for (; i < s.n && s.s[i] != q; i++) {
            if (s.s[i] == '\\' && i + 1 < s.n) {
                i++;
                buf[o++] = s.s[i] == 'n' ? '\n' : s.s[i] == 't' ? '\t' : s.s[i];
            } else {
                buf[o++] = s.s[i];
            }
        }
        json_t *v = i < s.n ? json_stringn(buf, o) : NULL;
        free(buf);
        *sp = (struct span){s.s + i + 1, s.n - (i < s.n ? i + 1 : i)};
        return v;
    }
    size_t l = 0;
    while (l < s.n && s.s[l] != ',' && s.s[l] != ')')
        l++;
    struct span tok = toolcall__trim(s.s, l);
    *sp = (struct span){s.s + l, s.n - l};
    if (tok.n == 4 && !memcmp(tok.s, "True", 4))
        return json_true();
    if (tok.n == 5 && !memcmp(tok.s, "False", 5))
        return json_false();
    if (tok.n == 4 && !memcmp(tok.s, "None", 4))
        return json_null();
    json_t *v = toolcall__load(tok, 0);
    if (json_is_number(v))
        return v;
    json_decref(v);
    return NULL;
}

/* NAME.call(k=v, …): Llama 3.1's builtin tools (brave_search, wolfram_alpha). */
static bool parse_builtin_call(json_t *out, struct span sp)
{
    const char *dot = toolcall__find(sp, ".call(");
    if (!dot || dot == sp.s || sp.s[sp.n - 1] != ')')
        return false;
    for (const char *c = sp.s; c < dot; c++)
        if (!toolcall__name_char(*c))
            return false;
    json_t *args = json_object();
    struct span rest = {dot + 6, (size_t)(sp.s + sp.n - dot - 7)}; /* inside the parentheses */
    for (;;) {
        rest = toolcall__trim(rest.s, rest.n);
        if (!rest.n)
            break;
        const char *eq = memchr(rest.s, '=', rest.n);
        struct span key = eq ? toolcall__trim(rest.s, (size_t)(eq - rest.s)) : (struct span){NULL, 0};
        if (!key.n || key.n > 256)
            goto fail;
        char k[257];
        memcpy(k, key.s, key.n);
        k[key.n] = '\0';
        rest = (struct span){eq + 1, (size_t)(rest.s + rest.n - eq - 1)};
        json_t *v = py_value(&rest);
        if (!v || json_object_set_new(args, k, v))
            goto fail;
        rest = toolcall__trim(rest.s, rest.n);
        if (rest.n && rest.s[0] == ',')
            rest.s++, rest.n--;
        else if (rest.n)
            goto fail;
    }
    return toolcall__add_call(out, (struct span){sp.s, (size_t)(dot - sp.s)}, args, NULL, 0);
fail:
    json_decref(args);
    return false;
}

/* After <|python_tag|>: JSON calls (separated by `;`), a builtin NAME.call(…), or code for
 * the code interpreter (a "python" call with {"code"}), as llama.cpp reads it. */
static bool parse_python_tag(json_t *out, struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    if (!sp.n)
        return false;
    if (sp.s[0] == '{') {
        while (sp.n) {
            json_error_t e;
            json_t *v = json_loadb(sp.s, sp.n, JSON_DISABLE_EOF_CHECK, &e);
            bool ok = v && toolcall__add_object_call(out, v, false);
            json_decref(v);
            if (!ok)
                return false;
            sp = toolcall__trim(sp.s + e.position, sp.n - (size_t)e.position);
            if (sp.n && sp.s[0] == ';')
                sp = toolcall__trim(sp.s + 1, sp.n - 1);
        }
        return true;
    }
    if (parse_builtin_call(out, sp))
        return true;
    json_t *args = json_object();
    json_object_set_new(args, "code", json_stringn(sp.s, sp.n));
    return toolcall__add_call(out, (struct span){"python", 6}, args, NULL, 0);
}

/* ---- Gemma 4's value syntax ------------------------------------------------------------------ */

/* {key:<|"|>text<|"|>,n:1,list:[…],flag:true}: keys bare (or quoted), strings between <|"|>. */

/* A <|"|>…<|"|> string, its text in *out. */
static bool g_string(struct vscan *g, struct span *out)
{
    if (!vscan_lit(g, GEMMA_STR))
        return false;
    const char *end = memmem(g->s + g->i, g->n - g->i, GEMMA_STR, 5);
    if (!end)
        return false;
    *out = (struct span){g->s + g->i, (size_t)(end - (g->s + g->i))};
    g->i = (size_t)(end - g->s) + 5;
    return true;
}

static json_t *g_value(struct vscan *g);

static json_t *g_dict(struct vscan *g)
{
    json_t *o = json_object();
    g->i++; /* '{' */
    vscan_ws(g);
    if (g->i < g->n && g->s[g->i] == '}') {
        g->i++;
        return o;
    }
    for (;;) {
        vscan_ws(g);
        struct span key;
        if (!g_string(g, &key)) {
            size_t k = g->i;
            while (g->i < g->n && g->s[g->i] != ':' && g->s[g->i] != '}' && g->s[g->i] != ',')
                g->i++;
            key = toolcall__trim(g->s + k, g->i - k);
        }
        vscan_ws(g);
        if (!key.n || key.n > 256 || !vscan_lit(g, ":"))
            break;
        char k[257];
        memcpy(k, key.s, key.n);
        k[key.n] = '\0';
        json_t *v = g_value(g);
        if (!v || json_object_set_new(o, k, v))
            break;
        vscan_ws(g);
        if (vscan_lit(g, ","))
            continue;
        if (vscan_lit(g, "}"))
            return o;
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *g_array(struct vscan *g)
{
    json_t *a = json_array();
    g->i++; /* '[' */
    vscan_ws(g);
    if (vscan_lit(g, "]"))
        return a;
    for (;;) {
        json_t *v = g_value(g);
        if (!v || json_array_append_new(a, v))
            break;
        vscan_ws(g);
        if (vscan_lit(g, ","))
            continue;
        if (vscan_lit(g, "]"))
            return a;
        break;
    }
    json_decref(a);
    return NULL;
}

static json_t *g_value(struct vscan *g)
{
    vscan_ws(g);
    if (g->i >= g->n || ++g->depth > 64)
        return NULL;
    json_t *v = NULL;
    struct span str;
    char c = g->s[g->i];
    if (c == '{') {
        v = g_dict(g);
    } else if (c == '[') {
        v = g_array(g);
    } else if (bytes_starts_with(g->s + g->i, g->n - g->i, GEMMA_STR) == MATCH_FULL) {
        v = g_string(g, &str) ? json_stringn(str.s, str.n) : NULL;
    } else if (vscan_lit(g, "true")) {
        v = json_true();
    } else if (vscan_lit(g, "false")) {
        v = json_false();
    } else if (vscan_lit(g, "null")) {
        v = json_null();
    } else {
        size_t k = g->i;
        while (g->i < g->n && strchr("+-0123456789.eE", g->s[g->i]))
            g->i++;
        v = toolcall__load((struct span){g->s + k, g->i - k}, 0);
        if (!json_is_number(v)) {
            json_decref(v);
            v = NULL;
        }
    }
    g->depth--;
    return v;
}

/* call:NAME{…} */
static bool parse_gemma4(json_t *out, struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    if (!toolcall__span_starts(sp, "call:"))
        return false;
    sp.s += 5, sp.n -= 5;
    const char *brace = memchr(sp.s, '{', sp.n);
    if (!brace)
        return false;
    struct vscan g = {.s = brace, .n = (size_t)(sp.s + sp.n - brace)};
    json_t *args = g_value(&g);
    vscan_ws(&g);
    if (!json_is_object(args) || g.i != g.n) {
        json_decref(args);
        return false;
    }
    return toolcall__add_call(out, (struct span){sp.s, (size_t)(brace - sp.s)}, args, NULL, 0);
}

/* ---- DeepSeek, Kimi: one or more delimited calls ----------------------------------------- */

/* The text inside ``` fences (```json\n…\n```), or sp itself. */
static struct span unfence(struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    if (!toolcall__span_starts(sp, "```"))
        return sp;
    const char *nl = memchr(sp.s, '\n', sp.n);
    if (!nl)
        return (struct span){NULL, 0};
    struct span in = {nl + 1, (size_t)(sp.s + sp.n - nl - 1)};
    in = toolcall__trim(in.s, in.n);
    if (in.n >= 3 && !memcmp(in.s + in.n - 3, "```", 3))
        in.n -= 3;
    return toolcall__trim(in.s, in.n);
}

/* One DeepSeek call: TYPE<｜tool▁sep｜>NAME\n```json\n{…}\n``` (R1, V3) or
 * NAME<｜tool▁sep｜>{…} (V3.1). */
static bool deepseek_call(json_t *out, struct span seg)
{
    const char *sep = toolcall__find(seg, DS_SEP);
    if (!sep)
        return false;
    struct span a = toolcall__trim(seg.s, (size_t)(sep - seg.s));
    struct span b = {sep + strlen(DS_SEP), (size_t)(seg.s + seg.n - sep - strlen(DS_SEP))};
    struct span name = a, args = b;
    if (a.n == 8 && !memcmp(a.s, "function", 8)) { /* R1: the type, then the name on B's first line */
        b = toolcall__trim(b.s, b.n);
        const char *nl = memchr(b.s, '\n', b.n);
        const char *tick = toolcall__find(b, "```");
        const char *end = nl && (!tick || nl < tick) ? nl : tick;
        if (!end)
            return false;
        name = (struct span){b.s, (size_t)(end - b.s)};
        args = (struct span){end, (size_t)(b.s + b.n - end)};
    }
    json_t *v = toolcall__load(unfence(args), 0);
    return toolcall__add_call(out, name, v, NULL, 0);
}

/* One Kimi call: functions.NAME:IDX<|tool_call_argument_begin|>{…} */
static bool kimi_call(json_t *out, struct span seg)
{
    const char *a = toolcall__find(seg, KIMI_ARGS);
    if (!a)
        return false;
    struct span id = toolcall__trim(seg.s, (size_t)(a - seg.s));
    struct span name = id;
    if (toolcall__span_starts(name, "functions."))
        name.s += 10, name.n -= 10;
    const char *colon = memrchr(name.s, ':', name.n);
    if (colon)
        name.n = (size_t)(colon - name.s);
    struct span args = {a + strlen(KIMI_ARGS), (size_t)(seg.s + seg.n - a - strlen(KIMI_ARGS))};
    return toolcall__add_call(out, name, toolcall__load(toolcall__trim(args.s, args.n), 0), id.s, id.n);
}

/* The calls of a DeepSeek/Kimi block: BEGIN seg END, separated by whitespace; a block
 * that holds no BEGIN is one call (the marker that opened it was the call's own). */
static bool delimited_calls(json_t *out, struct span sp, const char *begin, const char *end,
                            bool (*one)(json_t *, struct span))
{
    sp = toolcall__trim(sp.s, sp.n);
    if (!toolcall__find(sp, begin)) {
        const char *e = toolcall__find(sp, end);
        if (e && toolcall__trim(e + strlen(end), (size_t)(sp.s + sp.n - e - strlen(end))).n)
            return false;
        return one(out, (struct span){sp.s, e ? (size_t)(e - sp.s) : sp.n});
    }
    bool any = false;
    while (sp.n) {
        if (!toolcall__span_starts(sp, begin))
            return false;
        struct span seg = {sp.s + strlen(begin), sp.n - strlen(begin)};
        const char *e = toolcall__find(seg, end);
        struct span call = {seg.s, e ? (size_t)(e - seg.s) : seg.n};
        if (!one(out, call))
            return false;
        any = true;
        sp = e ? toolcall__trim(e + strlen(end), (size_t)(seg.s + seg.n - e - strlen(end))) : (struct span){NULL, 0};
    }
    return any;
}

/* ---- one call's text to calls ----------------------------------------------------------------- */

/* The JSON answer of llama3 / json. */
static bool parse_json_answer(const struct toolcall_parser *p, json_t *out, struct span sp)
{
    json_t *v = toolcall__load(toolcall__trim(sp.s, sp.n), 0);
    bool ok = false;
    if (p->cfg.format == TOOLCALL_LLAMA3) {
        ok = json_is_object(v) && toolcall__add_object_call(out, v, true);
    } else if (json_is_object(v)) {
        const json_t *list = json_object_get(v, "tool_calls");
        const json_t *one = json_object_get(v, "tool_call");
        ok = list ? toolcall__add_json_calls(out, list, false) : one ? toolcall__add_object_call(out, one, false)
                                                       : toolcall__add_object_call(out, v, true);
    } else if (json_is_array(v)) {
        ok = toolcall__add_json_calls(out, v, true);
    }
    json_decref(v);
    if (!ok || p->cfg.format != TOOLCALL_JSON || !json_array_size(p->tools))
        return ok;
    /* The generic format guesses: only calls of the request's own tools count. */
    for (size_t i = 0; i < json_array_size(out); i++)
        if (!tool_function(p->tools, json_string_value(json_object_get(json_array_get(out, i), "name"))))
            return false;
    return true;
}

/* Parses buf[0..len) (one call as read) into a JSON array of calls, or NULL. */
json_t *toolcall__parse_call(const struct toolcall_parser *p, size_t len)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    struct span raw = {p->buf, len};
    bool ok = false;
    if (p->opener < 0) {
        ok = parse_json_answer(p, out, raw);
    } else {
        const struct marker *mk = &toolcall__def_of(p)->markers[p->opener];
        struct span in = {raw.s + strlen(mk->open), raw.n - strlen(mk->open)};
        if (mk->close && in.n >= strlen(mk->close) &&
            !memcmp(in.s + in.n - strlen(mk->close), mk->close, strlen(mk->close)))
            in.n -= strlen(mk->close);
        else if (mk->close) /* the stream ended inside the closing marker (the token limit) */
            in.n -= bytes_partial_tail(in.s, in.n, mk->close);
        switch (mk->body) {
        case B_TAGGED: {
            struct span t = toolcall__trim(in.s, in.n);
            if (t.n && t.s[0] == '{') {
                json_t *v = toolcall__load(t, 0);
                ok = toolcall__add_object_call(out, v, false);
                json_decref(v);
            } else if (toolcall__span_starts(t, "<function=")) {
                ok = parse_xml_functions(p, out, t);
            } else if (p->cfg.format == TOOLCALL_GLM || toolcall__find(t, "<arg_key>")) {
                ok = parse_glm(p, out, t);
            }
            break;
        }
        case B_XML_FUNCTION:
            ok = parse_xml_functions(p, out, raw);
            break;
        case B_PYTHON_TAG:
            ok = parse_python_tag(out, in);
            break;
        case B_MISTRAL: {
            struct span t = toolcall__trim(in.s, in.n);
            if (t.n && (t.s[0] == '[' || t.s[0] == '{')) {
                json_t *v = toolcall__load(t, 0);
                ok = toolcall__add_json_calls(out, v, false);
                json_decref(v);
                break;
            }
            const char *args = toolcall__find(t, "[ARGS]");
            if (!args)
                break;
            struct span name = {t.s, (size_t)(args - t.s)};
            struct span id = toolcall__after(name, "[CALL_ID]");
            if (id.s)
                name.n = (size_t)(id.s - strlen("[CALL_ID]") - name.s);
            struct span a = {args + 6, (size_t)(t.s + t.n - args - 6)};
            ok = toolcall__add_call(out, name, toolcall__load(toolcall__trim(a.s, a.n), 0), id.s, id.n);
            break;
        }
        case B_HARMONY: {
            const char *m = toolcall__find(in, REASONING_CALL_ARGS);
            if (!m)
                break;
            struct span name = toolcall__trim(in.s, (size_t)(m - in.s));
            if (toolcall__span_starts(name, "functions."))
                name.s += 10, name.n -= 10;
            size_t al = strlen(REASONING_CALL_ARGS);
            struct span a = toolcall__trim(m + al, (size_t)(in.s + in.n - m - al));
            ok = toolcall__add_call(out, name, a.n ? toolcall__load(a, 0) : json_object(), NULL, 0);
            break;
        }
        case B_DEEPSEEK:
            ok = delimited_calls(out, in, DS_CALL_BEGIN, DS_CALL_END, deepseek_call);
            break;
        case B_GEMMA4:
            ok = parse_gemma4(out, in);
            break;
        case B_KIMI:
            ok = delimited_calls(out, in, KIMI_CALL_BEGIN, KIMI_CALL_END, kimi_call);
            break;
        case B_COMMAND_R: {
            json_t *v = toolcall__load(toolcall__trim(in.s, in.n), 0);
            ok = toolcall__add_json_calls(out, v, false);
            json_decref(v);
            break;
        }
        case B_INVOKE:
            ok = toolcall__parse_invoke(p, out, in, p->cfg.format == TOOLCALL_DSML ? DSML : "");
            break;
        case B_INVOKE_M3:
            ok = toolcall__parse_invoke_m3(p, out, in);
            break;
        case B_PYTHONIC:
            ok = toolcall__parse_pythonic(out, in);
            break;
        case B_JSON_VALUE:
        case B_JSON_LIST:
            ok = toolcall__add_json_list(out, in);
            break;
        case B_JSON_KEYED:
            ok = toolcall__add_keyed_calls(out, in);
            break;
        case B_FUNCTIONARY: { /* NAME\n{…} (call_end has taken "all") */
            const char *nl = memchr(in.s, '\n', in.n);
            if (!nl)
                break;
            struct span a = toolcall__trim(nl + 1, (size_t)(in.s + in.n - nl - 1));
            ok = toolcall__add_call(out, (struct span){in.s, (size_t)(nl - in.s)}, toolcall__load(a, 0), NULL, 0);
            break;
        }
        }
    }
    if (!ok || !json_array_size(out)) {
        json_decref(out);
        return NULL;
    }
    return out;
}
