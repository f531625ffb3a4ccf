/* jinja_builtins.c -- what the builtin files share (declared in jinja_int.h): argument
 * lookup and type checks, the charge for work in proportion to an input's size, UTF-8
 * code point counting, and iteration. The builtins themselves are in jinja_ops.c
 * (operators), jinja_methods.c (methods, attributes, items), jinja_filters.c,
 * jinja_tests.c and jinja_globals.c.
 *
 * Strings are UTF-8; where Python counts characters (len, indexes, slices, find) this
 * counts code points too, so non-ASCII text behaves as it does under jinja2. */
#include "template/jinja_int.h"

#include <string.h>

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)

/* Work in proportion to the size of an input (scanning a string, walking a list or a dict's
 * keys) counts against max_steps as statements do, about a step per 64 bytes or 8 items:
 * else a loop of few steps over such calls on a large value ran for minutes (a search in a
 * 1 MB string a million times; unique over a million items is quadratic). */
void jx_charge(struct jx_render *r, size_t bytes, size_t items)
{
    r->steps += (int64_t)(bytes / 64 + items / 8);
    jx_step(r);
}

size_t jx_value_size(struct jv v, size_t *items)
{
    *items = v.k == JV_LIST ? v.l->n : v.k == JV_DICT ? v.d->n : 0;
    return v.k == JV_STR ? v.s->len : 0;
}

struct jv jx_arg(struct jx_args *a, size_t pos, const char *kw, struct jv dflt)
{
    if (kw)
        for (size_t i = 0; i < a->n_kw; i++)
            if (!strcmp(a->kw_names[i], kw))
                return a->kw[i];
    if (pos != (size_t)-1 && pos < a->n_pos)
        return a->pos[pos];
    return dflt;
}

struct jv jx_need_str(struct jx_render *r, struct jv v, const char *what)
{
    if (v.k != JV_STR)
        FAIL("line %d: %s must be a string, not '%s'", r->line, what, jv_type_name(v));
    return v;
}

int64_t jx_need_int(struct jx_render *r, struct jv v, const char *what)
{
    if (v.k == JV_INT)
        return v.i;
    if (v.k == JV_BOOL)
        return v.b;
    FAIL("line %d: %s must be an integer, not '%s'", r->line, what, jv_type_name(v));
}

/* ---- UTF-8 helpers ------------------------------------------------------------------ */

size_t jx_utf8_len(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

/* Byte offset of code point index cp (clamped to n). */
size_t jx_utf8_offset(const char *p, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp) {
        i++;
        while (i < n && ((unsigned char)p[i] & 0xC0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

/* ---- iteration ---------------------------------------------------------------------- */

struct jv jx_iterable(struct jx_render *r, struct jv v)
{
    switch (v.k) {
    case JV_UNDEF: return jv_list_new(A, 0);
    case JV_LIST: return v;
    case JV_DICT: {
        struct jv l = jv_list_new(A, v.d->n);
        for (size_t i = 0; i < v.d->n; i++)
            jv_list_push(A, l, v.d->items[i].key);
        return l;
    }
    case JV_STR: {
        struct jv l = jv_list_new(A, v.s->len);
        for (size_t i = 0; i < v.s->len;) {
            size_t j = i + 1;
            while (j < v.s->len && ((unsigned char)v.s->p[j] & 0xC0) == 0x80)
                j++;
            jv_list_push(A, l, jv_str_borrow(A, v.s->p + i, j - i));
            i = j;
        }
        return l;
    }
    default: FAIL("line %d: '%s' object is not iterable", r->line, jv_type_name(v));
    }
}
