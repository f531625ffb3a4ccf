/* jinja_globals.c -- the functions a template can call by name (see jinja_int.h): range,
 * dict, namespace, raise_exception and strftime_now, installed in the globals scope. */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <string.h>
#include <time.h>

#define MAX_RANGE 1000000

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)

static struct jv g_range(struct jx_render *r, struct jv self, struct jx_args *a)
{
    (void)self;
    int64_t start = 0, stop, step = 1;
    if (a->n_pos == 1) {
        stop = jx_need_int(r, a->pos[0], "range's argument");
    } else if (a->n_pos == 2 || a->n_pos == 3) {
        start = jx_need_int(r, a->pos[0], "range's start");
        stop = jx_need_int(r, a->pos[1], "range's stop");
        if (a->n_pos == 3)
            step = jx_need_int(r, a->pos[2], "range's step");
    } else {
        FAIL("line %d: range expected 1 to 3 arguments, got %zu", r->line, a->n_pos);
    }
    if (!step)
        FAIL("line %d: range() arg 3 must not be zero", r->line);
    /* in 128 bits: no overflow at the ends of int64 (range(-2**63+1, 2**63-1, 2**62)) */
    __int128 span = step > 0 ? (__int128)stop - start : (__int128)start - stop, by = step > 0 ? step : -(__int128)step;
    __int128 count = span > 0 ? (span + by - 1) / by : 0;
    if (count > MAX_RANGE)
        FAIL("line %d: range of more than %d items is over the limit", r->line, MAX_RANGE);
    int64_t n = (int64_t)count;
    struct jv l = jv_list_new(A, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        jv_list_push(A, l, jv_int((int64_t)(start + (__int128)i * step)));
    return l;
}

static struct jv g_dict(struct jx_render *r, struct jv self, struct jx_args *a)
{
    (void)self;
    struct jv d = jv_dict_new(A);
    struct jv src = jx_arg(a, 0, NULL, jv_none());
    if (src.k == JV_DICT)
        for (size_t i = 0; i < src.d->n; i++)
            jv_dict_set(A, d, src.d->items[i].key, src.d->items[i].val);
    for (size_t i = 0; i < a->n_kw; i++)
        jv_dict_set(A, d, jv_cstr(A, a->kw_names[i]), a->kw[i]);
    return d;
}

static struct jv g_namespace(struct jx_render *r, struct jv self, struct jx_args *a)
{
    struct jv d = g_dict(r, self, a);
    d.d->is_namespace = true;
    return d;
}

static struct jv g_raise(struct jx_render *r, struct jv self, struct jx_args *a)
{
    (void)self;
    struct jv msg = jx_str_of(r, jx_arg(a, 0, NULL, jv_cstr(A, "raise_exception called")));
    jx_fail(&r->fault, "%.*s", (int)msg.s->len, msg.s->p);
}

static struct jv g_strftime_now(struct jx_render *r, struct jv self, struct jx_args *a)
{
    (void)self;
    struct jv fmt = jx_need_str(r, jx_arg(a, 0, NULL, jv_undef(NULL)), "strftime_now's format");
    time_t t = (time_t)(r->opts->now_unix + r->opts->utc_offset_s);
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[256];
    char *f = jx_strndup(A, fmt.s->p, fmt.s->len);
    size_t n = strftime(out, sizeof out, f, &tm);
    return jv_str(A, out, n);
}

void jx_install_globals(struct jx_render *r, struct jx_scope *s)
{
    static const struct { const char *name; jx_builtin_fn fn; } g[] = {
        {"range", g_range}, {"dict", g_dict}, {"namespace", g_namespace},
        {"raise_exception", g_raise}, {"strftime_now", g_strftime_now}, {NULL, NULL}};
    for (size_t i = 0; g[i].name; i++) {
        struct jv_func *fn = jx_alloc(A, sizeof *fn);
        *fn = (struct jv_func){.kind = JF_BUILTIN, .name = g[i].name, .fn = g[i].fn};
        jx_scope_set(r, s, g[i].name, (struct jv){.k = JV_FUNC, .fn = fn});
    }
}
