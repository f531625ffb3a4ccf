/* jinja_methods.c -- what a value exposes (see jinja_int.h): the str, list and dict
 * methods, bound as `obj.name`, and attribute and item access (`obj.name`, `obj[key]`).
 *
 * Strings are UTF-8; where Python counts characters (len, indexes, slices, find) this
 * counts code points too, so non-ASCII text behaves as it does under jinja2. */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)

static bool is_ascii(const struct jv_str *s)
{
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->p[i] >= 0x80)
            return false;
    return true;
}

/* ---- string methods ----------------------------------------------------------------- */

static bool in_set(char c, struct jv chars)
{
    if (chars.k != JV_STR)
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    return memchr(chars.s->p, c, chars.s->len) != NULL;
}

static struct jv strip(struct jx_render *r, struct jv s, struct jv chars, bool left, bool right)
{
    if (chars.k != JV_STR && chars.k != JV_NONE && chars.k != JV_UNDEF)
        FAIL("line %d: strip arg must be None or str", r->line);
    size_t a = 0, b = s.s->len;
    while (left && a < b && in_set(s.s->p[a], chars))
        a++;
    while (right && b > a && in_set(s.s->p[b - 1], chars))
        b--;
    return jv_str_borrow(A, s.s->p + a, b - a);
}

static struct jv split(struct jx_render *r, struct jv s, struct jv sep, int64_t maxsplit, bool from_right)
{
    struct jv out = jv_list_new(A, 4);
    const char *p = s.s->p;
    size_t n = s.s->len;
    if (sep.k != JV_STR) { /* runs of whitespace, ends ignored */
        size_t i = 0;
        int64_t splits = 0;
        if (from_right && maxsplit >= 0) {
            /* rsplit(None, k): words from the right; what is left keeps its leading whitespace,
             * as Python's does (' a b c '.rsplit(None, 1) is [' a b', 'c']) */
            struct jv rev = jv_list_new(A, 4);
            for (i = n;;) {
                while (i > 0 && isspace((unsigned char)p[i - 1]))
                    i--;
                if (!i)
                    break;
                if (splits >= maxsplit) {
                    jv_list_push(A, rev, jv_str_borrow(A, p, i));
                    break;
                }
                size_t j = i;
                while (j > 0 && !isspace((unsigned char)p[j - 1]))
                    j--;
                jv_list_push(A, rev, jv_str_borrow(A, p + j, i - j));
                splits++;
                i = j;
            }
            for (size_t k = rev.l->n; k-- > 0;)
                jv_list_push(A, out, rev.l->items[k]);
            return out;
        }
        for (;;) {
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (i >= n)
                break;
            if (maxsplit >= 0 && splits >= maxsplit) { /* the rest keeps its trailing whitespace */
                jv_list_push(A, out, jv_str_borrow(A, p + i, n - i));
                break;
            }
            size_t j = i;
            while (j < n && !isspace((unsigned char)p[j]))
                j++;
            jv_list_push(A, out, jv_str_borrow(A, p + i, j - i));
            splits++;
            i = j;
        }
        return out;
    }
    if (!sep.s->len)
        FAIL("line %d: empty separator", r->line);
    size_t m = sep.s->len;
    if (from_right) {
        struct jv rev = jv_list_new(A, 4);
        size_t end = n;
        int64_t splits = 0;
        while (maxsplit < 0 || splits < maxsplit) {
            const char *hit = NULL;
            for (size_t k = end; k >= m; k--)
                if (!memcmp(p + k - m, sep.s->p, m)) {
                    hit = p + k - m;
                    break;
                }
            if (!hit)
                break;
            jv_list_push(A, rev, jv_str_borrow(A, hit + m, (size_t)(p + end - hit - m)));
            end = (size_t)(hit - p);
            splits++;
        }
        jv_list_push(A, out, jv_str_borrow(A, p, end));
        for (size_t k = rev.l->n; k-- > 0;)
            jv_list_push(A, out, rev.l->items[k]);
        return out;
    }
    size_t i = 0;
    int64_t splits = 0;
    for (;;) {
        const char *hit = maxsplit < 0 || splits < maxsplit ? memmem(p + i, n - i, sep.s->p, m) : NULL;
        if (!hit) {
            jv_list_push(A, out, jv_str_borrow(A, p + i, n - i));
            return out;
        }
        jv_list_push(A, out, jv_str_borrow(A, p + i, (size_t)(hit - p) - i));
        i = (size_t)(hit - p) + m;
        splits++;
    }
}

static struct jv str_replace(struct jx_render *r, struct jv s, struct jv old, struct jv new, int64_t count)
{
    jx_need_str(r, old, "replace's first argument");
    jx_need_str(r, new, "replace's second argument");
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    const char *p = s.s->p;
    size_t n = s.s->len, i = 0;
    int64_t done = 0;
    if (!old.s->len) { /* Python inserts `new` around every character */
        for (; i <= n && (count < 0 || done < count); done++) {
            jx_buf_put(&b, new.s->p, new.s->len);
            if (i == n)
                return jv_str_borrow(A, b.p, b.len);
            size_t j = i + 1;
            while (j < n && ((unsigned char)p[j] & 0xC0) == 0x80)
                j++;
            jx_buf_put(&b, p + i, j - i);
            i = j;
        }
        jx_buf_put(&b, p + i, n - i);
        return jv_str_borrow(A, b.p ? b.p : "", b.len);
    }
    while (count < 0 || done < count) {
        const char *hit = memmem(p + i, n - i, old.s->p, old.s->len);
        if (!hit)
            break;
        jx_buf_put(&b, p + i, (size_t)(hit - p) - i);
        jx_buf_put(&b, new.s->p, new.s->len);
        i = (size_t)(hit - p) + old.s->len;
        done++;
    }
    if (!done)
        return s;
    jx_buf_put(&b, p + i, n - i);
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
}

struct jv jx_change_case(struct jx_render *r, struct jv s, enum jx_casing how)
{
    char *p = jx_strndup(A, s.s->p, s.s->len);
    bool prev_letter = false;
    for (size_t i = 0; i < s.s->len; i++) {
        unsigned char c = (unsigned char)p[i];
        switch (how) {
        case CASE_UPPER: p[i] = (char)toupper(c); break;
        case CASE_LOWER: p[i] = (char)tolower(c); break;
        case CASE_SWAP: p[i] = (char)(isupper(c) ? tolower(c) : toupper(c)); break;
        case CASE_CAPITALIZE: p[i] = (char)(i == 0 ? toupper(c) : tolower(c)); break;
        case CASE_TITLE:
            p[i] = (char)(prev_letter ? tolower(c) : toupper(c));
            prev_letter = isalpha(c) || c >= 0x80;
            break;
        }
    }
    return jv_str_borrow(A, p, s.s->len);
}

static bool prefix_match(struct jv s, struct jv pre, bool suffix)
{
    if (pre.k != JV_STR || pre.s->len > s.s->len)
        return false;
    const char *at = suffix ? s.s->p + s.s->len - pre.s->len : s.s->p;
    return !memcmp(at, pre.s->p, pre.s->len);
}

static bool starts_or_ends(struct jx_render *r, struct jv s, struct jv arg, bool suffix)
{
    if (arg.k == JV_LIST) {
        for (size_t i = 0; i < arg.l->n; i++)
            if (prefix_match(s, arg.l->items[i], suffix))
                return true;
        return false;
    }
    jx_need_str(r, arg, suffix ? "endswith's argument" : "startswith's argument");
    return prefix_match(s, arg, suffix);
}

/* "{} and {name}".format(...): positional, numbered and named fields; specs are ignored
 * except that a field is printed with str(). */
static struct jv str_format(struct jx_render *r, struct jv fmt, struct jx_args *a)
{
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    size_t auto_idx = 0;
    const char *p = fmt.s->p;
    size_t n = fmt.s->len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '{' && i + 1 < n && p[i + 1] == '{') {
            jx_buf_putc(&b, '{');
            i++;
        } else if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            jx_buf_putc(&b, '}');
            i++;
        } else if (p[i] == '{') {
            const char *close = memchr(p + i, '}', n - i);
            if (!close)
                FAIL("line %d: single '{' encountered in format string", r->line);
            size_t fl = (size_t)(close - p) - i - 1;
            const char *field = p + i + 1;
            size_t name_len = 0;
            while (name_len < fl && field[name_len] != ':' && field[name_len] != '!')
                name_len++;
            struct jv v;
            if (name_len == 0) {
                v = jx_arg(a, auto_idx++, NULL, jv_undef(NULL));
            } else if (isdigit((unsigned char)field[0])) {
                v = jx_arg(a, (size_t)atoi(field), NULL, jv_undef(NULL));
            } else {
                char *name = jx_strndup(A, field, name_len);
                v = jx_arg(a, NOPOS, name, jv_undef(name));
            }
            if (v.k == JV_UNDEF)
                FAIL("line %d: format string field '%.*s' has no argument", r->line, (int)fl, field);
            jv_write_str(&b, v, &r->fault);
            i = (size_t)(close - p);
        } else {
            jx_buf_putc(&b, p[i]);
        }
    }
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
}

static int64_t cp_index(struct jv s, const char *hit)
{
    return hit ? (int64_t)jx_utf8_len(s.s->p, (size_t)(hit - s.s->p)) : -1;
}

struct jv jx_splitlines(struct jx_render *r, struct jv s, bool keepends)
{
    struct jv out = jv_list_new(A, 4);
    const char *p = s.s->p;
    size_t n = s.s->len, i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        size_t e = j;
        if (j < n)
            j += p[j] == '\r' && j + 1 < n && p[j + 1] == '\n' ? 2 : 1;
        jv_list_push(A, out, jv_str_borrow(A, p + i, (keepends ? j : e) - i));
        i = j;
    }
    return out;
}

struct jv jx_join_items(struct jx_render *r, struct jv sep, struct jv items, bool convert)
{
    struct jv l = jx_iterable(r, items);
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    for (size_t i = 0; i < l.l->n; i++) {
        if (i)
            jx_buf_put(&b, sep.s->p, sep.s->len);
        struct jv v = l.l->items[i];
        if (!convert && v.k != JV_STR)
            FAIL("line %d: sequence item %zu: expected str instance, %s found", r->line, i, jv_type_name(v));
        jv_write_str(&b, v, &r->fault);
    }
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
}

struct jv jx_str_method(struct jx_render *r, const char *m, struct jv s, struct jx_args *a)
{
    jx_charge(r, s.s->len, 0); /* nearly all of them scan the string */
    struct jv a0 = jx_arg(a, 0, NULL, jv_none()), a1 = jx_arg(a, 1, NULL, jv_none());
    if (!strcmp(m, "strip")) return strip(r, s, a0, true, true);
    if (!strcmp(m, "lstrip")) return strip(r, s, a0, true, false);
    if (!strcmp(m, "rstrip")) return strip(r, s, a0, false, true);
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        struct jv sep = jx_arg(a, 0, "sep", jv_none());
        struct jv max = jx_arg(a, 1, "maxsplit", jv_int(-1));
        return split(r, s, sep, jx_need_int(r, max, "maxsplit"), m[0] == 'r');
    }
    if (!strcmp(m, "startswith")) return jv_bool(starts_or_ends(r, s, a0, false));
    if (!strcmp(m, "endswith")) return jv_bool(starts_or_ends(r, s, a0, true));
    if (!strcmp(m, "replace"))
        return str_replace(r, s, a0, a1, a->n_pos > 2 ? jx_need_int(r, a->pos[2], "count") : -1);
    if (!strcmp(m, "upper")) return jx_change_case(r, s, CASE_UPPER);
    if (!strcmp(m, "lower")) return jx_change_case(r, s, CASE_LOWER);
    if (!strcmp(m, "title")) return jx_change_case(r, s, CASE_TITLE);
    if (!strcmp(m, "capitalize")) return jx_change_case(r, s, CASE_CAPITALIZE);
    if (!strcmp(m, "swapcase")) return jx_change_case(r, s, CASE_SWAP);
    if (!strcmp(m, "find") || !strcmp(m, "index") || !strcmp(m, "rfind") || !strcmp(m, "rindex")) {
        jx_need_str(r, a0, "the substring");
        const char *hit = NULL;
        if (m[0] == 'r') {
            for (size_t k = s.s->len + 1; k-- > 0;)
                if (k + a0.s->len <= s.s->len && !memcmp(s.s->p + k, a0.s->p, a0.s->len)) {
                    hit = s.s->p + k;
                    break;
                }
        } else {
            hit = a0.s->len ? memmem(s.s->p, s.s->len, a0.s->p, a0.s->len) : s.s->p;
        }
        if (!hit && strstr(m, "index"))
            FAIL("line %d: substring not found", r->line);
        return jv_int(cp_index(s, hit));
    }
    if (!strcmp(m, "count")) {
        jx_need_str(r, a0, "the substring");
        if (!a0.s->len)
            return jv_int((int64_t)jx_utf8_len(s.s->p, s.s->len) + 1);
        int64_t c = 0;
        for (const char *p = s.s->p, *e = s.s->p + s.s->len; (p = memmem(p, (size_t)(e - p), a0.s->p, a0.s->len));
             p += a0.s->len)
            c++;
        return jv_int(c);
    }
    if (!strcmp(m, "join")) return jx_join_items(r, s, a0, false);
    if (!strcmp(m, "format")) return str_format(r, s, a);
    if (!strcmp(m, "splitlines")) return jx_splitlines(r, s, jv_truthy(jx_arg(a, 0, "keepends", jv_bool(false))));
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        bool suf = m[6] == 's';
        if (prefix_match(s, jx_need_str(r, a0, "the affix"), suf))
            return jv_str_borrow(A, s.s->p + (suf ? 0 : a0.s->len), s.s->len - a0.s->len);
        return s;
    }
    if (!strncmp(m, "is", 2)) {
        int (*cls)(int) = !strcmp(m, "isdigit") || !strcmp(m, "isnumeric") || !strcmp(m, "isdecimal") ? isdigit
                          : !strcmp(m, "isalpha") ? isalpha
                          : !strcmp(m, "isalnum") ? isalnum
                          : !strcmp(m, "isspace") ? isspace
                          : NULL;
        if (cls) {
            for (size_t i = 0; i < s.s->len; i++)
                if (!cls((unsigned char)s.s->p[i]))
                    return jv_bool(false);
            return jv_bool(s.s->len > 0);
        }
        if (!strcmp(m, "isupper") || !strcmp(m, "islower")) {
            bool up = m[2] == 'u', cased = false;
            for (size_t i = 0; i < s.s->len; i++) {
                unsigned char c = (unsigned char)s.s->p[i];
                if (up ? islower(c) : isupper(c))
                    return jv_bool(false);
                cased |= isalpha(c) != 0;
            }
            return jv_bool(cased);
        }
    }
    if (!strcmp(m, "center") || !strcmp(m, "ljust") || !strcmp(m, "rjust") || !strcmp(m, "zfill")) {
        int64_t width = jx_need_int(r, a0, "width");
        size_t len = jx_utf8_len(s.s->p, s.s->len);
        if (width <= (int64_t)len)
            return s;
        if (width > (int64_t)r->opts->max_output)
            FAIL("line %d: width too large", r->line);
        size_t pad = (size_t)width - len, left = m[0] == 'l' ? 0 : m[0] == 'c' ? pad / 2 + (pad & width & 1) : pad;
        char fill = m[0] == 'z' ? '0' : a1.k == JV_STR && a1.s->len ? a1.s->p[0] : ' ';
        struct jx_buf b = {.arena = A};
        for (size_t i = 0; i < left; i++) jx_buf_putc(&b, fill);
        jx_buf_put(&b, s.s->p, s.s->len);
        for (size_t i = left; i < pad; i++) jx_buf_putc(&b, fill);
        return jv_str_borrow(A, b.p, b.len);
    }
    FAIL("line %d: 'str' object has no attribute '%s'", r->line, m);
}

/* ---- list and dict methods ---------------------------------------------------------- */

static struct jv list_method(struct jx_render *r, const char *m, struct jv l, struct jx_args *a)
{
    if (strcmp(m, "append") && strcmp(m, "pop")) /* the rest walk the list (pop(0) is charged below) */
        jx_charge(r, 0, l.l->n);
    struct jv a0 = jx_arg(a, 0, NULL, jv_undef(NULL));
    if (!strcmp(m, "append")) {
        jv_list_push(A, l, a0);
        return jv_none();
    }
    if (!strcmp(m, "extend")) {
        struct jv more = jx_iterable(r, a0);
        for (size_t i = 0; i < more.l->n; i++)
            jv_list_push(A, l, more.l->items[i]);
        return jv_none();
    }
    if (!strcmp(m, "pop") || !strcmp(m, "insert")) {
        bool pop = m[0] == 'p';
        int64_t i = a->n_pos ? jx_need_int(r, a->pos[0], "index") : pop ? -1 : 0;
        size_t n = l.l->n;
        if (i < 0)
            i += (int64_t)n;
        if (pop) {
            if (i < 0 || (size_t)i >= n)
                FAIL("line %d: pop index out of range", r->line);
            jx_charge(r, 0, n - (size_t)i);
            struct jv v = l.l->items[i];
            memmove(l.l->items + i, l.l->items + i + 1, (n - (size_t)i - 1) * sizeof *l.l->items);
            l.l->n--;
            return v;
        }
        i = i < 0 ? 0 : (size_t)i > n ? (int64_t)n : i;
        jv_list_push(A, l, jv_none());
        memmove(l.l->items + i + 1, l.l->items + i, (n - (size_t)i) * sizeof *l.l->items);
        l.l->items[i] = jx_arg(a, 1, NULL, jv_none());
        return jv_none();
    }
    if (!strcmp(m, "index") || !strcmp(m, "count") || !strcmp(m, "remove")) {
        int64_t c = 0;
        for (size_t i = 0; i < l.l->n; i++)
            if (jv_equal(l.l->items[i], a0)) {
                if (m[0] == 'i')
                    return jv_int((int64_t)i);
                if (m[0] == 'r') {
                    memmove(l.l->items + i, l.l->items + i + 1, (l.l->n - i - 1) * sizeof *l.l->items);
                    l.l->n--;
                    return jv_none();
                }
                c++;
            }
        if (m[0] != 'c')
            FAIL("line %d: value is not in list", r->line);
        return jv_int(c);
    }
    if (!strcmp(m, "reverse")) {
        for (size_t i = 0, j = l.l->n; i + 1 < j; i++, j--) {
            struct jv t = l.l->items[i];
            l.l->items[i] = l.l->items[j - 1];
            l.l->items[j - 1] = t;
        }
        return jv_none();
    }
    if (!strcmp(m, "copy")) {
        struct jv c = jv_list_new(A, l.l->n);
        for (size_t i = 0; i < l.l->n; i++)
            jv_list_push(A, c, l.l->items[i]);
        return c;
    }
    FAIL("line %d: '%s' object has no attribute '%s'", r->line, jv_type_name(l), m);
}

struct jv jx_dict_items(struct jx_render *r, struct jv d)
{
    struct jv out = jv_list_new(A, d.d->n);
    for (size_t i = 0; i < d.d->n; i++) {
        struct jv t = jv_list_new(A, 2);
        t.l->tuple = true;
        jv_list_push(A, t, d.d->items[i].key);
        jv_list_push(A, t, d.d->items[i].val);
        jv_list_push(A, out, t);
    }
    return out;
}

static struct jv dict_method(struct jx_render *r, const char *m, struct jv d, struct jx_args *a)
{
    /* lookups walk the keys; update does per key it sets */
    size_t sets = !strcmp(m, "update") ? a->n_kw + (a->n_pos && a->pos[0].k == JV_DICT ? a->pos[0].d->n : 0) : 1;
    jx_charge(r, 0, d.d->n * sets);
    struct jv a0 = jx_arg(a, 0, NULL, jv_undef(NULL));
    if (!strcmp(m, "get") || !strcmp(m, "pop") || !strcmp(m, "setdefault")) {
        struct jv *v = jv_dict_find(d, a0);
        struct jv dflt = jx_arg(a, 1, NULL, m[0] == 'p' ? jv_undef(NULL) : jv_none());
        if (!v) {
            if (m[0] == 'p' && dflt.k == JV_UNDEF)
                FAIL("line %d: key not found in pop", r->line);
            if (m[0] == 's')
                jv_dict_set(A, d, a0, dflt);
            return dflt;
        }
        struct jv out = *v;
        if (m[0] == 'p') {
            size_t i = (size_t)((struct jv_kv *)((char *)v - offsetof(struct jv_kv, val)) - d.d->items);
            memmove(d.d->items + i, d.d->items + i + 1, (d.d->n - i - 1) * sizeof *d.d->items);
            d.d->n--;
        }
        return out;
    }
    if (!strcmp(m, "items")) return jx_dict_items(r, d);
    if (!strcmp(m, "keys") || !strcmp(m, "values")) {
        struct jv out = jv_list_new(A, d.d->n);
        for (size_t i = 0; i < d.d->n; i++)
            jv_list_push(A, out, m[0] == 'k' ? d.d->items[i].key : d.d->items[i].val);
        return out;
    }
    if (!strcmp(m, "update")) {
        if (a0.k == JV_DICT)
            for (size_t i = 0; i < a0.d->n; i++)
                jv_dict_set(A, d, a0.d->items[i].key, a0.d->items[i].val);
        for (size_t i = 0; i < a->n_kw; i++)
            jv_dict_set(A, d, jv_cstr(A, a->kw_names[i]), a->kw[i]);
        return jv_none();
    }
    if (!strcmp(m, "copy")) {
        struct jv c = jv_dict_new(A);
        for (size_t i = 0; i < d.d->n; i++)
            jv_dict_set(A, c, d.d->items[i].key, d.d->items[i].val);
        return c;
    }
    FAIL("line %d: 'dict' object has no attribute '%s'", r->line, m);
}

/* Bound methods: `obj.name` for a method of obj's type is a JF_METHOD carrying the name;
 * jx_call() comes back here through jx_call_method(). */
static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "replace", "upper", "lower",
    "title", "capitalize", "swapcase", "find", "rfind", "index", "rindex", "count", "join", "format",
    "splitlines", "removeprefix", "removesuffix", "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum",
    "isspace", "isupper", "islower", "center", "ljust", "rjust", "zfill", NULL};
static const char *const list_methods[] = {"append", "extend", "pop", "insert", "index", "count", "remove",
                                           "reverse", "copy", NULL};
const char *const jx_dict_methods[] = {"get", "pop", "setdefault", "items", "keys", "values", "update",
                                           "copy", NULL};

const char *jx_find_name(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return names[i];
    return NULL;
}

static struct jv bind(struct jx_render *r, struct jv self, const char *name, jx_builtin_fn fn_or_null)
{
    struct jv_func *fn = jx_alloc(A, sizeof *fn);
    *fn = (struct jv_func){.kind = JF_METHOD, .name = name, .fn = fn_or_null, .self = self};
    return (struct jv){.k = JV_FUNC, .fn = fn};
}

struct jv jx_call_method(struct jx_render *r, struct jv self, const char *m, struct jx_args *a)
{
    switch (self.k) {
    case JV_STR: return jx_str_method(r, m, self, a);
    case JV_LIST: return list_method(r, m, self, a);
    case JV_DICT: return dict_method(r, m, self, a);
    default: FAIL("line %d: '%s' object has no attribute '%s'", r->line, jv_type_name(self), m);
    }
}

static struct jv loop_cycle(struct jx_render *r, struct jv self, struct jx_args *a)
{
    struct jv *idx = jv_dict_find_str(self, "index0");
    if (!a->n_pos)
        FAIL("line %d: no items for cycling given", r->line);
    return a->pos[(size_t)(idx && idx->k == JV_INT ? idx->i : 0) % a->n_pos];
}

struct jv jx_getattr(struct jx_render *r, struct jv obj, const char *name)
{
    if (obj.k == JV_DICT)
        jx_charge(r, 0, obj.d->n); /* a dict's keys are searched in order */
    const char *m = NULL;
    switch (obj.k) {
    case JV_STR: m = jx_find_name(str_methods, name); break;
    case JV_LIST: m = jx_find_name(list_methods, name); break;
    case JV_DICT:
        if (obj.d->is_namespace)
            break;
        m = jx_find_name(jx_dict_methods, name);
        if (!m && !strcmp(name, "cycle") && jv_dict_find_str(obj, "revindex0"))
            return bind(r, obj, "cycle", loop_cycle);
        break;
    default: break;
    }
    if (m)
        return bind(r, obj, m, NULL);
    if (obj.k == JV_DICT) {
        struct jv *v = jv_dict_find_str(obj, name);
        return v ? *v : jv_undef(name);
    }
    return jv_undef(name);
}

struct jv jx_getitem(struct jx_render *r, struct jv obj, struct jv key)
{
    if (obj.k == JV_DICT || obj.k == JV_STR) { /* the keys are searched; a string's code points counted */
        size_t items, bytes = jx_value_size(obj, &items);
        jx_charge(r, bytes, items);
    }
    if (obj.k == JV_DICT) {
        struct jv *v = jv_dict_find(obj, key);
        if (v)
            return *v;
        return key.k == JV_STR ? jx_getattr(r, obj, jx_strndup(A, key.s->p, key.s->len)) : jv_undef(NULL);
    }
    if ((obj.k == JV_LIST || obj.k == JV_STR) && (key.k == JV_INT || key.k == JV_BOOL)) {
        int64_t i = jx_as_int(key);
        if (obj.k == JV_LIST) {
            if (i < 0)
                i += (int64_t)obj.l->n;
            return i >= 0 && (size_t)i < obj.l->n ? obj.l->items[i] : jv_undef(NULL);
        }
        bool ascii = is_ascii(obj.s);
        size_t n = ascii ? obj.s->len : jx_utf8_len(obj.s->p, obj.s->len);
        if (i < 0)
            i += (int64_t)n;
        if (i < 0 || (size_t)i >= n)
            return jv_undef(NULL);
        if (ascii)
            return jv_str_borrow(A, obj.s->p + i, 1);
        size_t at = jx_utf8_offset(obj.s->p, obj.s->len, (size_t)i), end = jx_utf8_offset(obj.s->p, obj.s->len, (size_t)i + 1);
        return jv_str_borrow(A, obj.s->p + at, end - at);
    }
    if (key.k == JV_STR)
        return jx_getattr(r, obj, jx_strndup(A, key.s->p, key.s->len));
    return jv_undef(NULL);
}
