/* toolcall_pythonic.c -- LFM2's Python-style calls (see toolcall_int.h):
 * [NAME(k="v", n=1, flag=True), NAME2()] between <|tool_call_start|> and <|tool_call_end|>.
 * The values are Python literals -- strings in '…' or "…" with Python's escapes, numbers,
 * True/False/None, lists and dicts -- and JSON's true/false/null, which the templates and
 * llama.cpp's reader allow too; the syntax gives each value its type. */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <stdlib.h>
#include <string.h>

/* m after any blanks */
static bool p_lit(struct vscan *g, const char *m)
{
    vscan_ws(g);
    return vscan_lit(g, m);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* n hex digits at s, or -1. */
static long hexn(const char *s, size_t avail, int n)
{
    long v = 0;
    if ((size_t)n > avail)
        return -1;
    for (int i = 0; i < n; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A quoted string at g->i (its quote char there); NULL when unterminated or not UTF-8. */
static json_t *p_string(struct vscan *g)
{
    char q = g->s[g->i++];
    char *buf = malloc(g->n - g->i + 4);
    size_t o = 0;
    if (!buf)
        return NULL;
    while (g->i < g->n && g->s[g->i] != q) {
        char c = g->s[g->i++];
        if (c != '\\' || g->i >= g->n) {
            buf[o++] = c;
            continue;
        }
        char e = g->s[g->i++];
        long cp;
        switch (e) {
        case 'n': buf[o++] = '\n'; break;
        case 't': buf[o++] = '\t'; break;
        case 'r': buf[o++] = '\r'; break;
        case 'b': buf[o++] = '\b'; break;
        case 'f': buf[o++] = '\f'; break;
        case '0': buf[o++] = '\0'; break;
        case 'u':
        case 'U':
        case 'x':
            cp = hexn(g->s + g->i, g->n - g->i, e == 'u' ? 4 : e == 'U' ? 8 : 2);
            if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF && e != 'u'))
                goto fail;
            g->i += e == 'u' ? 4 : e == 'U' ? 8 : 2;
            if (cp >= 0xD800 && cp <= 0xDBFF && g->n - g->i >= 6 && g->s[g->i] == '\\' && g->s[g->i + 1] == 'u') {
                long lo = hexn(g->s + g->i + 2, g->n - g->i - 2, 4); /* a JSON-style surrogate pair */
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    g->i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                goto fail;
            o += put_utf8(buf + o, (unsigned long)cp);
            break;
        default: buf[o++] = e; break; /* \\ \' \" and unknown escapes: the character */
        }
    }
    if (g->i >= g->n)
        goto fail;
    g->i++; /* the closing quote */
    json_t *v = json_stringn(buf, o);
    free(buf);
    return v;
fail:
    free(buf);
    return NULL;
}

static json_t *p_value(struct vscan *g);

/* [v, …] (or (v, …)): a JSON array; {k: v, …}: an object with string keys. */
static json_t *p_container(struct vscan *g)
{
    char open = g->s[g->i++];
    char close = open == '[' ? ']' : open == '(' ? ')' : '}';
    json_t *c = open == '{' ? json_object() : json_array();
    if (!c)
        return NULL;
    if (p_lit(g, (char[]){close, 0}))
        return c;
    for (;;) {
        vscan_ws(g);
        if (open == '{') {
            json_t *k = g->i < g->n && (g->s[g->i] == '"' || g->s[g->i] == '\'') ? p_string(g) : NULL;
            json_t *v = k && p_lit(g, ":") ? p_value(g) : NULL;
            bool ok = v && !json_object_set_new(c, json_string_value(k), v);
            json_decref(k);
            if (!ok)
                break;
        } else {
            json_t *v = p_value(g);
            if (!v || json_array_append_new(c, v))
                break;
        }
        if (p_lit(g, ","))
            continue;
        if (p_lit(g, (char[]){close, 0}))
            return c;
        break;
    }
    json_decref(c);
    return NULL;
}

static json_t *p_value(struct vscan *g)
{
    vscan_ws(g);
    if (g->i >= g->n || ++g->depth > 64)
        return NULL;
    json_t *v = NULL;
    char c = g->s[g->i];
    static const struct {
        const char *word;
        int kind; /* 0 false, 1 true, 2 null */
    } words[] = {{"True", 1}, {"true", 1}, {"False", 0}, {"false", 0}, {"None", 2}, {"null", 2}};
    if (c == '"' || c == '\'') {
        v = p_string(g);
    } else if (c == '[' || c == '{' || c == '(') {
        v = p_container(g);
    } else {
        for (size_t w = 0; w < sizeof words / sizeof words[0] && !v; w++) {
            size_t l = strlen(words[w].word);
            if (g->n - g->i >= l && !memcmp(g->s + g->i, words[w].word, l) &&
                (g->n - g->i == l || !toolcall__name_char(g->s[g->i + l]))) {
                g->i += l;
                v = words[w].kind == 2 ? json_null() : json_boolean(words[w].kind);
            }
        }
        if (!v) {
            size_t k = g->i;
            while (g->i < g->n && strchr("+-0123456789.eE", g->s[g->i]))
                g->i++;
            v = toolcall__load((struct span){g->s + k, g->i - k}, 0);
            if (!json_is_number(v)) {
                json_decref(v);
                v = NULL;
            }
        }
    }
    g->depth--;
    return v;
}

/* NAME(k=v, …) at g->i, added to out. */
static bool p_call(struct vscan *g, json_t *out)
{
    vscan_ws(g);
    size_t name = g->i;
    while (g->i < g->n && toolcall__name_char(g->s[g->i]))
        g->i++;
    struct span nm = {g->s + name, g->i - name};
    if (!nm.n || !p_lit(g, "("))
        return false;
    json_t *args = json_object();
    if (!args)
        return false;
    if (!p_lit(g, ")")) {
        for (;;) {
            vscan_ws(g);
            size_t k = g->i;
            while (g->i < g->n && toolcall__name_char(g->s[g->i]))
                g->i++;
            size_t kl = g->i - k;
            if (!kl || kl > 256 || !p_lit(g, "="))
                goto fail;
            char key[257];
            memcpy(key, g->s + k, kl);
            key[kl] = '\0';
            json_t *v = p_value(g);
            if (!v || json_object_set_new(args, key, v))
                goto fail;
            if (p_lit(g, ","))
                continue;
            if (p_lit(g, ")"))
                break;
            goto fail;
        }
    }
    return toolcall__add_call(out, nm, args, NULL, 0);
fail:
    json_decref(args);
    return false;
}

bool toolcall__parse_pythonic(json_t *out, struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    struct vscan g = {.s = sp.s, .n = sp.n};
    bool list = p_lit(&g, "[");
    do {
        if (!p_call(&g, out))
            return false;
    } while (p_lit(&g, ","));
    if (list && !p_lit(&g, "]"))
        return false;
    vscan_ws(&g);
    return g.i == g.n && json_array_size(out) > 0;
}
