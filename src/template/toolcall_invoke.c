/* toolcall_invoke.c -- the inside of a MiniMax M2 or DeepSeek V3.2 call block (see
 * toolcall_int.h): <invoke name="NAME"><parameter name="K">V</parameter>…</invoke>, one
 * or more, every tag carrying DeepSeek's ｜DSML｜ prefix in V3.2. The templates write a
 * value as text when it is a string and as JSON otherwise; DeepSeek also says which in a
 * string="true|false" attribute, which wins over the tool's schema. */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Steps sp past the literal m when it starts with it. */
static bool eat(struct span *sp, const char *m)
{
    if (!toolcall__span_starts(*sp, m))
        return false;
    sp->s += strlen(m);
    sp->n -= strlen(m);
    return true;
}

static void skip_ws(struct span *sp)
{
    while (sp->n && bytes_is_ws(*sp->s))
        sp->s++, sp->n--;
}

/* `name="X"` (blanks around '=' allowed): X into out (NUL-terminated, at most 256 bytes). */
static bool attr(struct span *sp, const char *name, char *out, size_t cap)
{
    skip_ws(sp);
    if (!eat(sp, name))
        return false;
    skip_ws(sp);
    if (!eat(sp, "="))
        return false;
    skip_ws(sp);
    if (!sp->n || (*sp->s != '"' && *sp->s != '\''))
        return false;
    char q = *sp->s;
    const char *end = memchr(sp->s + 1, q, sp->n - 1);
    size_t len = end ? (size_t)(end - sp->s - 1) : 0;
    if (!end || !len || len >= cap || memchr(sp->s + 1, '\n', len) || memchr(sp->s + 1, '<', len))
        return false;
    memcpy(out, sp->s + 1, len);
    out[len] = '\0';
    sp->n -= (size_t)(end + 1 - sp->s);
    sp->s = end + 1;
    return true;
}

/* One <Pparameter name="K" [string="…"]>V</Pparameter>, added to args. */
static bool parameter(const struct toolcall_parser *p, struct span *sp, const char *prefix, const char *fn,
                      json_t *args)
{
    char open[64], close[64], key[257], str[8] = "";
    snprintf(open, sizeof open, "<%sparameter", prefix);
    snprintf(close, sizeof close, "</%sparameter>", prefix);
    if (!eat(sp, open) || !attr(sp, "name", key, sizeof key))
        return false;
    struct span save = *sp;
    if (!attr(sp, "string", str, sizeof str))
        *sp = save, str[0] = '\0';
    skip_ws(sp);
    if (!eat(sp, ">"))
        return false;
    const char *vend = toolcall__find(*sp, close);
    if (!vend)
        return false;
    struct span v = {sp->s, (size_t)(vend - sp->s)};
    if (v.n && v.s[0] == '\n') /* a value on its own lines */
        v.s++, v.n--;
    if (v.n && v.s[v.n - 1] == '\n')
        v.n--;
    json_t *val = NULL;
    if (!strcmp(str, "true")) {
        val = json_stringn(v.s, v.n);
    } else if (!strcmp(str, "false")) {
        val = toolcall__load(toolcall__trim(v.s, v.n), 0);
        if (!val)
            val = toolcall__arg_value(p, fn, key, v);
    } else {
        val = toolcall__arg_value(p, fn, key, v);
    }
    if (!val || json_object_set_new(args, key, val))
        return false;
    sp->n -= (size_t)(vend + strlen(close) - sp->s);
    sp->s = vend + strlen(close);
    return true;
}

/* OPEN name="NAME" >: a call's head, its name a function name; false otherwise. */
static bool invoke_head(struct span *sp, const char *open, char *name, size_t cap)
{
    if (!eat(sp, open) || !attr(sp, "name", name, cap))
        return false;
    for (const char *c = name; *c; c++)
        if (!toolcall__name_char(*c))
            return false;
    skip_ws(sp);
    return eat(sp, ">");
}

bool toolcall__parse_invoke(const struct toolcall_parser *p, json_t *out, struct span sp, const char *prefix)
{
    char open[64], close[64], name[257];
    snprintf(open, sizeof open, "<%sinvoke", prefix);
    snprintf(close, sizeof close, "</%sinvoke>", prefix);
    sp = toolcall__trim(sp.s, sp.n);
    if (!sp.n)
        return false;
    while (sp.n) {
        if (!invoke_head(&sp, open, name, sizeof name))
            return false;
        json_t *args = json_object();
        if (!args)
            return false;
        for (;;) {
            skip_ws(&sp);
            if (!sp.n || eat(&sp, close)) /* </invoke> missing at the end: complete otherwise */
                break;
            if (!parameter(p, &sp, prefix, name, args)) {
                json_decref(args);
                return false;
            }
        }
        if (!toolcall__add_call(out, (struct span){name, strlen(name)}, args, NULL, 0))
            return false;
        skip_ws(&sp);
    }
    return true;
}

/* ---- MiniMax M3 ----------------------------------------------------------------------------
 * NS<invoke name="NAME">NS<K>V NS</K>…NS</invoke>, NS being MM3_NS (one token), a value text,
 * or nested: NS<k>…NS</k>… an object, NS<item>…NS</item>… an array (the template's to_xml). */

static json_t *m3_value(const struct toolcall_parser *p, struct span *sp, const char *fn, const char *key, int depth);

/* NS<KEY> at sp: the key (name characters, at most 256 bytes) into key. */
static bool m3_open(struct span *sp, char *key)
{
    if (!eat(sp, MM3_NS "<"))
        return false;
    const char *gt = memchr(sp->s, '>', sp->n);
    size_t n = gt ? (size_t)(gt - sp->s) : 0;
    if (!n || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!toolcall__name_char(sp->s[i]))
            return false;
    memcpy(key, sp->s, n);
    key[n] = '\0';
    sp->s = gt + 1;
    sp->n -= n + 1;
    return true;
}

/* Eats NS</KEY>. */
static bool m3_close(struct span *sp, const char *key)
{
    struct span t = *sp;
    if (!eat(&t, MM3_NS "</") || !eat(&t, key) || !eat(&t, ">"))
        return false;
    *sp = t;
    return true;
}

static json_t *m3_value(const struct toolcall_parser *p, struct span *sp, const char *fn, const char *key, int depth)
{
    if (depth > 32)
        return NULL;
    if (!toolcall__span_starts(*sp, MM3_NS "<") || toolcall__span_starts(*sp, MM3_NS "</")) {
        /* text, up to its closing tag */
        char close[300];
        snprintf(close, sizeof close, MM3_NS "</%s>", key);
        const char *end = toolcall__find(*sp, close);
        if (!end)
            return NULL;
        struct span v = {sp->s, (size_t)(end - sp->s)};
        sp->n -= v.n;
        sp->s = end;
        /* nested values have no schema here: JSON other than a string, else text */
        json_t *val = toolcall__arg_value(p, depth ? "" : fn, key, v);
        return val && m3_close(sp, key) ? val : (json_decref(val), NULL);
    }
    struct span peek = *sp;
    char k[257];
    if (!m3_open(&peek, k))
        return NULL;
    bool array = !strcmp(k, "item");
    json_t *c = array ? json_array() : json_object();
    while (c && !m3_close(sp, key)) {
        json_t *v = m3_open(sp, k) ? m3_value(p, sp, fn, k, depth + 1) : NULL;
        if (!v || (array ? strcmp(k, "item") || json_array_append_new(c, v) : json_object_set_new(c, k, v))) {
            if (array && v && strcmp(k, "item"))
                json_decref(v);
            json_decref(c);
            return NULL;
        }
    }
    return c;
}

bool toolcall__parse_invoke_m3(const struct toolcall_parser *p, json_t *out, struct span sp)
{
    char name[257], key[257];
    sp = toolcall__trim(sp.s, sp.n);
    if (!sp.n)
        return false;
    while (sp.n) {
        if (!invoke_head(&sp, MM3_NS "<invoke", name, sizeof name))
            return false;
        json_t *args = json_object();
        if (!args)
            return false;
        for (;;) {
            skip_ws(&sp);
            if (!sp.n || eat(&sp, MM3_NS "</invoke>"))
                break;
            json_t *v = m3_open(&sp, key) ? m3_value(p, &sp, name, key, 0) : NULL;
            if (!v || json_object_set_new(args, key, v)) {
                json_decref(args);
                return false;
            }
        }
        if (!toolcall__add_call(out, (struct span){name, strlen(name)}, args, NULL, 0))
            return false;
        skip_ws(&sp);
    }
    return true;
}
