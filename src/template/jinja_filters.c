/* jinja_filters.c -- jinja2's filters (`value | name(args)`, see jinja_int.h): defaults,
 * lengths, sorting and selection, JSON, string shaping (indent, title, format, escape),
 * numbers (round, int, float, abs, sum), and the string filters that are str methods. */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)
/* as in jinja_ops.c: past 64 bits is an error */
#define INT_OVERFLOW() FAIL("line %d: integer overflow (past 64 bits)", r->line)

static struct jv mark_safe(struct jx_render *r, struct jv s)
{
    struct jv out = jv_str_borrow(A, s.s->p, s.s->len);
    out.s->safe = true;
    return out;
}

/* jinja2's title filter, which is not str.title(): words begin after a run of - ( { [ < or
 * whitespace only, so "they're" stays "They're" and "x1y" becomes "X1y". */
static struct jv title_filter(struct jx_render *r, struct jv s)
{
    char *p = jx_strndup(A, s.s->p, s.s->len);
    bool word_start = true;
    for (size_t i = 0; i < s.s->len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (isspace(c) || strchr("-({[<", c)) {
            word_start = true;
            continue;
        }
        p[i] = (char)(word_start ? toupper(c) : tolower(c));
        word_start = false;
    }
    return jv_str_borrow(A, p, s.s->len);
}

static struct jv attr_path(struct jx_render *r, struct jv v, struct jv attr)
{
    if (attr.k == JV_INT)
        return jx_getitem(r, v, attr);
    jx_need_str(r, attr, "attribute");
    /* "a.b" walks nested attributes, as jinja2's make_attrgetter does */
    const char *p = attr.s->p, *end = p + attr.s->len;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        char *part = jx_strndup(A, p, n);
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++)
            digits &= isdigit((unsigned char)part[i]) != 0;
        v = digits ? jx_getitem(r, v, jv_int(atoll(part))) : v.k == JV_UNDEF ? v : jx_getattr(r, v, part);
        if (!dot)
            break;
        p = dot + 1;
    }
    return v;
}

static struct jv sort_key(struct jx_render *r, struct jv v, struct jv attr, bool case_sensitive)
{
    if (attr.k == JV_STR || attr.k == JV_INT)
        v = attr_path(r, v, attr);
    if (!case_sensitive && v.k == JV_STR)
        v = jx_change_case(r, v, CASE_LOWER);
    return v;
}

/* A stable merge sort (Python's sort is stable) on precomputed keys. */
static void sort_pairs(struct jx_render *r, struct jv *keys, struct jv *vals, size_t n, bool reverse)
{
    if (n < 2)
        return;
    struct jv *tk = jx_alloc(A, n * sizeof *tk), *tv = jx_alloc(A, n * sizeof *tv);
    for (size_t width = 1; width < n; width *= 2)
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = jx_order(r, keys[j], keys[i]);
                bool take_right = reverse ? c > 0 : c < 0;
                if (take_right)
                    tk[k] = keys[j], tv[k++] = vals[j++];
                else
                    tk[k] = keys[i], tv[k++] = vals[i++];
            }
            while (i < mid) tk[k] = keys[i], tv[k++] = vals[i++];
            while (j < hi) tk[k] = keys[j], tv[k++] = vals[j++];
            memcpy(keys + lo, tk + lo, (hi - lo) * sizeof *keys);
            memcpy(vals + lo, tv + lo, (hi - lo) * sizeof *vals);
        }
}

static struct jv sorted(struct jx_render *r, struct jv items, struct jv attr, bool reverse, bool case_sensitive)
{
    struct jv l = jx_iterable(r, items);
    size_t n = l.l->n;
    size_t log2n = 1;
    while ((size_t)1 << log2n < n)
        log2n++;
    jx_charge(r, 0, n * log2n); /* the comparisons of a merge sort */
    struct jv out = jv_list_new(A, n);
    struct jv *keys = jx_alloc(A, (n ? n : 1) * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        keys[i] = sort_key(r, l.l->items[i], attr, case_sensitive);
        out.l->items[i] = l.l->items[i];
    }
    out.l->n = n;
    sort_pairs(r, keys, out.l->items, n, reverse);
    return out;
}

static struct jv select_items(struct jx_render *r, struct jv items, struct jx_args *a, bool by_attr, bool keep)
{
    struct jv l = jx_iterable(r, jv_truthy(items) ? items : jv_undef(NULL)); /* jinja2: `if value:` */
    struct jv out = jv_list_new(A, l.l->n);
    size_t first = by_attr ? 1 : 0;
    struct jv attr = by_attr ? jx_arg(a, 0, NULL, jv_undef(NULL)) : jv_none();
    struct jv test = jx_arg(a, first, NULL, jv_undef(NULL));
    struct jx_args rest = {.n_pos = a->n_pos > first + 1 ? a->n_pos - first - 1 : 0, .pos = a->n_pos > first ? a->pos + first + 1 : a->pos};
    for (size_t i = 0; i < l.l->n; i++) {
        jx_step(r);
        struct jv v = by_attr ? attr_path(r, l.l->items[i], attr) : l.l->items[i];
        bool t = test.k == JV_STR ? jx_test(r, jx_strndup(A, test.s->p, test.s->len), v, &rest) : jv_truthy(v);
        if (t == keep)
            jv_list_push(A, out, l.l->items[i]);
    }
    return out;
}

static struct jv indent(struct jx_render *r, struct jv s, struct jv width, bool first, bool blank)
{
    struct jv ind = width.k == JV_STR ? width : jv_none();
    if (ind.k != JV_STR) {
        int64_t w = jx_need_int(r, width, "indent width");
        if (w < 0 || w > 1024)
            FAIL("line %d: indent width out of range", r->line);
        char *sp = jx_alloc(A, (size_t)w + 1);
        memset(sp, ' ', (size_t)w);
        ind = jv_str_borrow(A, sp, (size_t)w);
    }
    /* jinja2 appends a newline before jx_splitlines(): a trailing newline survives */
    struct jv lines = jx_splitlines(r, jx_concat_str(r, s, jv_cstr(A, "\n")), false);
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    if (first)
        jx_buf_put(&b, ind.s->p, ind.s->len);
    for (size_t i = 0; i < lines.l->n; i++) {
        struct jv line = lines.l->items[i];
        if (i) {
            jx_buf_putc(&b, '\n');
            if (blank || line.s->len)
                jx_buf_put(&b, ind.s->p, ind.s->len);
        }
        jx_buf_put(&b, line.s->p, line.s->len);
    }
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
}

static struct jv tojson(struct jx_render *r, struct jv v, struct jx_args *a)
{
    struct jv ind = jx_arg(a, 0, "indent", jv_none());
    struct jv seps = jx_arg(a, NOPOS, "separators", jv_none());
    bool sort_keys = jv_truthy(jx_arg(a, NOPOS, "sort_keys", jv_bool(false)));
    int indent = ind.k == JV_INT ? (int)(ind.i < 0 ? 0 : ind.i > 64 ? 64 : ind.i) : -1;
    const char *item_sep = indent >= 0 ? "," : ", ", *key_sep = ": ";
    if (seps.k == JV_LIST && seps.l->n == 2 && seps.l->items[0].k == JV_STR && seps.l->items[1].k == JV_STR) {
        item_sep = jx_strndup(A, seps.l->items[0].s->p, seps.l->items[0].s->len);
        key_sep = jx_strndup(A, seps.l->items[1].s->p, seps.l->items[1].s->len);
    }
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    jv_write_json(&b, v, indent, item_sep, key_sep, sort_keys, &r->fault, 0);
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
}

static struct jv from_json(struct jx_render *r, struct jv s)
{
    jx_need_str(r, s, "from_json's input");
    json_error_t e;
    json_t *j = json_loadb(s.s->p, s.s->len, JSON_DECODE_ANY, &e);
    if (!j)
        FAIL("line %d: from_json: %s", r->line, e.text);
    struct jv v = jv_from_json(A, j, true); /* strings copied: the document goes now */
    json_decref(j);
    return v;
}

struct jv jx_filter(struct jx_render *r, const char *f, struct jv v, struct jx_args *a)
{
    jx_step(r);
    struct jv a0 = jx_arg(a, 0, NULL, jv_undef(NULL));
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        bool boolean = jv_truthy(jx_arg(a, 1, "boolean", jv_bool(false)));
        struct jv dflt = jx_arg(a, 0, "default_value", jv_cstr(A, ""));
        return v.k == JV_UNDEF || (boolean && !jv_truthy(v)) ? dflt : v;
    }
    if (!strcmp(f, "tojson")) return tojson(r, v, a);
    if (!strcmp(f, "safe")) return v.k == JV_STR ? mark_safe(r, v) : v;
    if (!strcmp(f, "string")) return jx_str_of(r, v);
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        switch (v.k) {
        case JV_UNDEF: return jv_int(0);
        case JV_STR: jx_charge(r, v.s->len, 0); return jv_int((int64_t)jx_utf8_len(v.s->p, v.s->len));
        case JV_LIST: return jv_int((int64_t)v.l->n);
        case JV_DICT: return jv_int((int64_t)v.d->n);
        default: FAIL("line %d: object of type '%s' has no len()", r->line, jv_type_name(v));
        }
    }
    if (!strcmp(f, "list")) {
        struct jv l = jx_iterable(r, v), c = jv_list_new(A, l.l->n);
        for (size_t i = 0; i < l.l->n; i++)
            jv_list_push(A, c, l.l->items[i]);
        return c;
    }
    if (!strcmp(f, "items")) {
        if (v.k == JV_UNDEF)
            return jv_list_new(A, 0);
        if (v.k != JV_DICT)
            FAIL("line %d: can only get item pairs from a mapping", r->line);
        return jx_dict_items(r, v);
    }
    if (!strcmp(f, "dictsort")) {
        if (v.k != JV_DICT)
            FAIL("line %d: dictsort needs a mapping", r->line);
        bool cs = jv_truthy(jx_arg(a, 0, "case_sensitive", jv_bool(false)));
        struct jv by = jx_arg(a, 1, "by", jv_cstr(A, "key"));
        if (by.k != JV_STR || (!jv_equal(by, jv_cstr(A, "key")) && !jv_equal(by, jv_cstr(A, "value"))))
            FAIL("line %d: You can only sort by either \"key\" or \"value\"", r->line);
        bool rev = jv_truthy(jx_arg(a, 2, "reverse", jv_bool(false)));
        struct jv pairs = jx_dict_items(r, v);
        return sorted(r, pairs, jv_int(by.s->p[0] == 'v' ? 1 : 0), rev, cs);
    }
    if (!strcmp(f, "sort")) {
        bool rev = jv_truthy(jx_arg(a, 0, "reverse", jv_bool(false)));
        bool cs = jv_truthy(jx_arg(a, 1, "case_sensitive", jv_bool(false)));
        return sorted(r, v, jx_arg(a, 2, "attribute", jv_none()), rev, cs);
    }
    if (!strcmp(f, "unique")) {
        struct jv l = jx_iterable(r, v), out = jv_list_new(A, l.l->n);
        bool cs = jv_truthy(jx_arg(a, 0, "case_sensitive", jv_bool(false)));
        struct jv attr = jx_arg(a, 1, "attribute", jv_none());
        struct jv seen = jv_list_new(A, l.l->n);
        for (size_t i = 0; i < l.l->n; i++) {
            jx_step(r);
            struct jv k = sort_key(r, l.l->items[i], attr, cs);
            if (!jx_contains(r, seen, k)) {
                jv_list_push(A, seen, k);
                jv_list_push(A, out, l.l->items[i]);
            }
        }
        return out;
    }
    if (!strcmp(f, "min") || !strcmp(f, "max")) {
        bool cs = jv_truthy(jx_arg(a, 0, "case_sensitive", jv_bool(false)));
        struct jv s = sorted(r, v, jx_arg(a, 1, "attribute", jv_none()), f[1] == 'a', cs);
        return s.l->n ? s.l->items[0] : jv_undef("min");
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        struct jv l = jx_iterable(r, v);
        if (!l.l->n)
            return jv_undef(f);
        return l.l->items[f[0] == 'f' ? 0 : l.l->n - 1];
    }
    if (!strcmp(f, "reverse")) {
        if (v.k == JV_STR) {
            struct jv chars = jx_iterable(r, v);
            struct jx_buf b = {.arena = A};
            for (size_t i = chars.l->n; i-- > 0;)
                jx_buf_put(&b, chars.l->items[i].s->p, chars.l->items[i].s->len);
            return jv_str_borrow(A, b.p ? b.p : "", b.len);
        }
        struct jv l = jx_iterable(r, v), out = jv_list_new(A, l.l->n);
        for (size_t i = l.l->n; i-- > 0;)
            jv_list_push(A, out, l.l->items[i]);
        return out;
    }
    if (!strcmp(f, "join")) {
        struct jv sep = jx_arg(a, 0, "d", jv_cstr(A, ""));
        struct jv attr = jx_arg(a, 1, "attribute", jv_none());
        struct jv l = jx_iterable(r, v);
        if (attr.k != JV_NONE) {
            struct jv m = jv_list_new(A, l.l->n);
            for (size_t i = 0; i < l.l->n; i++)
                jv_list_push(A, m, attr_path(r, l.l->items[i], attr));
            l = m;
        }
        return jx_join_items(r, jx_str_of(r, sep), l, true);
    }
    if (!strcmp(f, "map")) {
        struct jv l = jx_iterable(r, jv_truthy(v) ? v : jv_undef(NULL)), out = jv_list_new(A, l.l->n);
        struct jv attr = jx_arg(a, NOPOS, "attribute", jv_undef(NULL));
        struct jv dflt = jx_arg(a, NOPOS, "default", jv_undef(NULL));
        /* a->pos is NULL without positional arguments: no pointer arithmetic on it (UB) */
        struct jx_args rest = {.n_pos = a->n_pos ? a->n_pos - 1 : 0, .pos = a->n_pos ? a->pos + 1 : a->pos};
        for (size_t i = 0; i < l.l->n; i++) {
            struct jv x = l.l->items[i];
            if (attr.k != JV_UNDEF) {
                x = attr_path(r, x, attr);
                if (x.k == JV_UNDEF && dflt.k != JV_UNDEF)
                    x = dflt;
            } else if (a0.k == JV_STR) {
                x = jx_filter(r, jx_strndup(A, a0.s->p, a0.s->len), x, &rest);
            }
            jv_list_push(A, out, x);
        }
        return out;
    }
    if (!strcmp(f, "selectattr")) return select_items(r, v, a, true, true);
    if (!strcmp(f, "rejectattr")) return select_items(r, v, a, true, false);
    if (!strcmp(f, "select")) return select_items(r, v, a, false, true);
    if (!strcmp(f, "reject")) return select_items(r, v, a, false, false);
    if (!strcmp(f, "attr")) {
        /* jinja2's attr is Python's getattr only: a dict's keys are not attributes (its methods
         * are), a namespace's are */
        if (v.k == JV_UNDEF)
            return v;
        const char *name = jx_strndup(A, jx_need_str(r, a0, "attr").s->p, a0.s->len);
        if (v.k == JV_DICT && !v.d->is_namespace && !jx_find_name(jx_dict_methods, name))
            return jv_undef(name);
        return jx_getattr(r, v, name);
    }
    if (!strcmp(f, "from_json")) return from_json(r, v);
    if (!strcmp(f, "sum")) {
        struct jv l = jx_iterable(r, v), attr = jx_arg(a, 0, "attribute", jv_none());
        struct jv total = jx_arg(a, 1, "start", jv_int(0));
        jx_charge(r, 0, l.l->n);
        for (size_t i = 0; i < l.l->n; i++)
            total = jx_binop(r, OP_ADD, total, attr.k != JV_NONE ? attr_path(r, l.l->items[i], attr) : l.l->items[i]);
        return total;
    }
    if (!strcmp(f, "abs")) {
        if (v.k == JV_FLOAT) return jv_float(fabs(v.f));
        int64_t i = jx_need_int(r, v, "abs's input");
        if (i == INT64_MIN)
            INT_OVERFLOW();
        return jv_int(i < 0 ? -i : i);
    }
    if (!strcmp(f, "round")) {
        int64_t prec = jx_need_int(r, jx_arg(a, 0, "precision", jv_int(0)), "precision");
        struct jv method = jx_arg(a, 1, "method", jv_cstr(A, "common"));
        if (prec < -308 || prec > 308)
            FAIL("line %d: round: precision out of range", r->line);
        double x = jv_as_double(v), m = pow(10, (double)prec);
        const char *how = method.k == JV_STR ? method.s->p : "";
        if (!strcmp(how, "ceil")) return jv_float(ceil(x * m) / m);
        if (!strcmp(how, "floor")) return jv_float(floor(x * m) / m);
        if (strcmp(how, "common"))
            FAIL("line %d: method must be common, ceil or floor", r->line);
        /* "common" is Python's round(x, prec): halves go to even (2.5 -> 2.0), and an int stays
         * an int. For prec >= 0 printf's correctly rounded %.*f is exactly Python's rounding. */
        if (v.k == JV_INT || v.k == JV_BOOL)
            return jv_int(prec >= 0 ? jx_as_int(v) : (int64_t)(rint(x * m) / m));
        if (prec < 0 || !isfinite(x))
            return jv_float(rint(x * m) / m);
        char tmp[700]; /* room for 309 integer digits and 308 decimals */
        snprintf(tmp, sizeof tmp, "%.*f", (int)prec, x);
        return jv_float(strtod(tmp, NULL));
    }
    if (!strcmp(f, "int")) {
        struct jv dflt = jx_arg(a, 0, "default", jv_int(0));
        if (v.k == JV_INT || v.k == JV_BOOL) return jv_int(jx_as_int(v));
        if (v.k == JV_FLOAT) return jx_float_to_int(r, v.f, dflt);
        if (v.k == JV_STR) {
            char *s = jx_strndup(A, v.s->p, v.s->len), *end;
            errno = 0;
            long long i = strtoll(s, &end, 10);
            while (*end == ' ' || *end == '\t' || *end == '\n') end++;
            if (end != s && !*end) {
                if (errno == ERANGE)
                    INT_OVERFLOW();
                return jv_int(i);
            }
            double d = strtod(s, &end);
            while (*end == ' ' || *end == '\t' || *end == '\n') end++;
            if (end != s && !*end) return jx_float_to_int(r, d, dflt);
        }
        return dflt;
    }
    if (!strcmp(f, "float")) {
        struct jv dflt = jx_arg(a, 0, "default", jv_float(0));
        if (jv_is_number(v)) return jv_float(jv_as_double(v));
        if (v.k == JV_STR) {
            char *s = jx_strndup(A, v.s->p, v.s->len), *end;
            double d = strtod(s, &end);
            if (end != s && !*end) return jv_float(d);
        }
        return dflt;
    }
    if (!strcmp(f, "indent"))
        return indent(r, jx_str_of(r, v), jx_arg(a, 0, "width", jv_int(4)), jv_truthy(jx_arg(a, 1, "first", jv_bool(false))),
                      jv_truthy(jx_arg(a, 2, "blank", jv_bool(false))));
    if (!strcmp(f, "title")) return title_filter(r, jx_str_of(r, v));
    if (!strcmp(f, "wordcount")) { /* jinja2 counts the matches of \w+ (here non-ASCII counts as \w) */
        struct jv t = jx_str_of(r, v);
        jx_charge(r, t.s->len, 0);
        int64_t words = 0;
        bool in_word = false;
        for (size_t i = 0; i < t.s->len; i++) {
            unsigned char c = (unsigned char)t.s->p[i];
            bool w = isalnum(c) || c == '_' || c >= 0x80;
            words += w && !in_word;
            in_word = w;
        }
        return jv_int(words);
    }
    if (!strcmp(f, "format")) { /* jinja2: value % (kwargs or args) */
        if (a->n_pos && a->n_kw)
            FAIL("line %d: format can't handle positional and keyword arguments at the same time", r->line);
        struct jv args = jv_list_new(A, a->n_pos);
        args.l->tuple = true;
        for (size_t i = 0; i < a->n_pos; i++)
            jv_list_push(A, args, a->pos[i]);
        if (a->n_kw) {
            args = jv_dict_new(A);
            for (size_t i = 0; i < a->n_kw; i++)
                jv_dict_set(A, args, jv_cstr(A, a->kw_names[i]), a->kw[i]);
        }
        return jx_percent_format(r, jx_str_of(r, v), args);
    }
    if (!strcmp(f, "escape") || !strcmp(f, "e") || !strcmp(f, "forceescape"))
        return jx_html_escape(r, f[0] == 'f' ? jv_str_borrow(A, jx_str_of(r, v).s->p, jx_str_of(r, v).s->len) : jx_str_of(r, v));
    /* the string filters that are also methods */
    static const struct { const char *filter, *method; } as_method[] = {
        {"trim", "strip"}, {"upper", "upper"}, {"lower", "lower"},
        {"capitalize", "capitalize"}, {"replace", "replace"}, {"center", "center"}, {NULL, NULL}};
    for (size_t i = 0; as_method[i].filter; i++)
        if (!strcmp(f, as_method[i].filter))
            return jx_str_method(r, as_method[i].method, jx_str_of(r, v), a);
    FAIL("line %d: no filter named '%s'", r->line, f);
}
