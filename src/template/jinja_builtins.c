/* jinja_builtins.c -- what a template can call: operators on values, attribute and item
 * access, the str/list/dict methods, jinja2's filters and tests, and the globals
 * (range, namespace, dict, raise_exception, strftime_now).
 *
 * Strings are UTF-8; where Python counts characters (len, indexes, slices, find) this
 * counts code points too, so non-ASCII text behaves as it does under jinja2. */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANGE 1000000

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)

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
#define NOPOS ((size_t)-1)

static struct jv need_str(struct jx_render *r, struct jv v, const char *what)
{
    if (v.k != JV_STR)
        FAIL("line %d: %s must be a string, not '%s'", r->line, what, jv_type_name(v));
    return v;
}

static int64_t need_int(struct jx_render *r, struct jv v, const char *what)
{
    if (v.k == JV_INT)
        return v.i;
    if (v.k == JV_BOOL)
        return v.b;
    FAIL("line %d: %s must be an integer, not '%s'", r->line, what, jv_type_name(v));
}

/* ---- UTF-8 helpers ------------------------------------------------------------------ */

static size_t utf8_len(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

/* Byte offset of code point index cp (clamped to n). */
static size_t utf8_offset(const char *p, size_t n, size_t cp)
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

static bool is_ascii(const struct jv_str *s)
{
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->p[i] >= 0x80)
            return false;
    return true;
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

/* ---- operators ---------------------------------------------------------------------- */

static struct jv html_escape(struct jx_render *r, struct jv s)
{
    if (s.s->safe)
        return s;
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    for (size_t i = 0; i < s.s->len; i++) {
        char c = s.s->p[i];
        const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;"
                        : c == '\'' ? "&#39;" : NULL;
        e ? jx_buf_put(&b, e, strlen(e)) : jx_buf_putc(&b, c);
    }
    struct jv out = jv_str_borrow(A, b.p ? b.p : "", b.len);
    out.s->safe = true;
    return out;
}

static struct jv mark_safe(struct jx_render *r, struct jv s)
{
    struct jv out = jv_str_borrow(A, s.s->p, s.s->len);
    out.s->safe = true;
    return out;
}

static struct jv concat_str(struct jx_render *r, struct jv a, struct jv b)
{
    size_t n = a.s->len + b.s->len;
    char *p = jx_alloc(A, n + 1);
    memcpy(p, a.s->p, a.s->len);
    memcpy(p + a.s->len, b.s->p, b.s->len);
    return jv_str_borrow(A, p, n);
}

static int64_t as_int(struct jv v) { return v.k == JV_BOOL ? v.b : v.i; }

static struct jv percent_format(struct jx_render *r, struct jv fmt, struct jv args);

struct jv jx_binop(struct jx_render *r, enum jx_op op, struct jv a, struct jv b)
{
    if (op == OP_CONCAT) {
        if (a.k == JV_UNDEF && !a.undef_name) a = jv_cstr(A, "");
        return concat_str(r, jv_to_str(A, a, &r->fault), jv_to_str(A, b, &r->fault));
    }
    if (a.k == JV_UNDEF)
        FAIL("line %d: '%s' is undefined", r->line, a.undef_name ? a.undef_name : "value");
    if (b.k == JV_UNDEF)
        FAIL("line %d: '%s' is undefined", r->line, b.undef_name ? b.undef_name : "value");
    bool nums = jv_is_number(a) && jv_is_number(b);
    bool ints = nums && a.k != JV_FLOAT && b.k != JV_FLOAT;
    switch (op) {
    case OP_ADD:
        if (ints) return jv_int(as_int(a) + as_int(b));
        if (nums) return jv_float(jv_as_double(a) + jv_as_double(b));
        if (a.k == JV_STR && b.k == JV_STR) {
            if (a.s->safe == b.s->safe) {
                struct jv out = concat_str(r, a, b);
                out.s->safe = a.s->safe;
                return out;
            }
            /* Markup + str escapes the str (jinja2 with autoescape off still does this) */
            struct jv out = concat_str(r, html_escape(r, a), html_escape(r, b));
            out.s->safe = true;
            return out;
        }
        if (a.k == JV_LIST && b.k == JV_LIST) {
            struct jv l = jv_list_new(A, a.l->n + b.l->n);
            for (size_t i = 0; i < a.l->n; i++) jv_list_push(A, l, a.l->items[i]);
            for (size_t i = 0; i < b.l->n; i++) jv_list_push(A, l, b.l->items[i]);
            l.l->tuple = a.l->tuple;
            return l;
        }
        break;
    case OP_SUB:
        if (ints) return jv_int(as_int(a) - as_int(b));
        if (nums) return jv_float(jv_as_double(a) - jv_as_double(b));
        break;
    case OP_MUL:
        if (ints) return jv_int(as_int(a) * as_int(b));
        if (nums) return jv_float(jv_as_double(a) * jv_as_double(b));
        if ((a.k == JV_STR || a.k == JV_LIST) && (b.k == JV_INT || b.k == JV_BOOL)) {
            int64_t times = as_int(b);
            if (times > 0 && (a.k == JV_STR ? a.s->len : a.l->n) * (uint64_t)times > r->opts->max_output)
                FAIL("line %d: repetition too large", r->line);
            if (a.k == JV_STR) {
                struct jx_buf buf = {.arena = A, .limit = r->opts->max_output};
                for (int64_t i = 0; i < times; i++)
                    jx_buf_put(&buf, a.s->p, a.s->len);
                return jv_str_borrow(A, buf.p ? buf.p : "", buf.len);
            }
            struct jv l = jv_list_new(A, 0);
            for (int64_t i = 0; i < times; i++)
                for (size_t k = 0; k < a.l->n; k++)
                    jv_list_push(A, l, a.l->items[k]);
            return l;
        }
        break;
    case OP_DIV:
        if (nums) {
            if (jv_as_double(b) == 0)
                FAIL("line %d: division by zero", r->line);
            return jv_float(jv_as_double(a) / jv_as_double(b));
        }
        break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (nums) {
            if (jv_as_double(b) == 0)
                FAIL("line %d: integer division or modulo by zero", r->line);
            if (ints) {
                int64_t x = as_int(a), y = as_int(b), q = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) { /* Python floors */
                    q--;
                    m += y;
                }
                return jv_int(op == OP_MOD ? m : q);
            }
            double x = jv_as_double(a), y = jv_as_double(b), q = floor(x / y);
            return jv_float(op == OP_MOD ? x - q * y : q);
        }
        if (op == OP_MOD && a.k == JV_STR)
            return percent_format(r, a, b);
        break;
    case OP_POW:
        if (ints && as_int(b) >= 0) {
            int64_t x = as_int(a), e = as_int(b), p = 1;
            while (e-- > 0)
                p *= x;
            return jv_int(p);
        }
        if (nums) return jv_float(pow(jv_as_double(a), jv_as_double(b)));
        break;
    default: break;
    }
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    FAIL("line %d: unsupported operand type(s) for %s: '%s' and '%s'", r->line, names[op], jv_type_name(a),
         jv_type_name(b));
}

static int str_cmp(const struct jv_str *a, const struct jv_str *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* <0, 0, >0 as Python orders a and b; fails for types Python cannot order. */
static int order(struct jx_render *r, struct jv a, struct jv b)
{
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT)
            return (as_int(a) > as_int(b)) - (as_int(a) < as_int(b));
        double x = jv_as_double(a), y = jv_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.k == JV_STR && b.k == JV_STR)
        return str_cmp(a.s, b.s);
    if (a.k == JV_LIST && b.k == JV_LIST) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++) {
            if (jv_equal(a.l->items[i], b.l->items[i]))
                continue;
            return order(r, a.l->items[i], b.l->items[i]);
        }
        return (a.l->n > b.l->n) - (a.l->n < b.l->n);
    }
    FAIL("line %d: '<' not supported between instances of '%s' and '%s'", r->line, jv_type_name(a), jv_type_name(b));
}

static bool contains(struct jx_render *r, struct jv container, struct jv item)
{
    switch (container.k) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (item.k != JV_STR)
            FAIL("line %d: 'in <string>' requires string as left operand, not %s", r->line, jv_type_name(item));
        return item.s->len == 0 || memmem(container.s->p, container.s->len, item.s->p, item.s->len) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < container.l->n; i++)
            if (jv_equal(container.l->items[i], item))
                return true;
        return false;
    case JV_DICT: return jv_dict_find(container, item) != NULL;
    default: FAIL("line %d: argument of type '%s' is not iterable", r->line, jv_type_name(container));
    }
}

bool jx_compare(struct jx_render *r, enum jx_op op, struct jv a, struct jv b)
{
    switch (op) {
    case OP_EQ: return jv_equal(a, b);
    case OP_NE: return !jv_equal(a, b);
    case OP_IN: return contains(r, b, a);
    case OP_NOTIN: return !contains(r, b, a);
    default: break;
    }
    if (a.k == JV_UNDEF || b.k == JV_UNDEF)
        FAIL("line %d: '%s' is undefined", r->line,
             (a.k == JV_UNDEF ? a.undef_name : b.undef_name) ? (a.k == JV_UNDEF ? a.undef_name : b.undef_name) : "value");
    int c = order(r, a, b);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* "%s and %d" % args: the printf-style formatting Python strings have. */
static struct jv percent_format(struct jx_render *r, struct jv fmt, struct jv args)
{
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    size_t next = 0;
    bool tuple = args.k == JV_LIST && args.l->tuple;
    for (size_t i = 0; i < fmt.s->len; i++) {
        char c = fmt.s->p[i];
        if (c != '%' || i + 1 >= fmt.s->len) {
            jx_buf_putc(&b, c);
            continue;
        }
        char spec[16];
        size_t k = 0;
        spec[k++] = '%';
        i++;
        while (i < fmt.s->len && strchr("-+ #0123456789.", fmt.s->p[i]) && k < sizeof spec - 2)
            spec[k++] = fmt.s->p[i++];
        char conv = i < fmt.s->len ? fmt.s->p[i] : 's';
        if (conv == '%') {
            jx_buf_putc(&b, '%');
            continue;
        }
        struct jv v = tuple ? (next < args.l->n ? args.l->items[next] : jv_undef(NULL)) : args;
        if (tuple && next >= args.l->n)
            FAIL("line %d: not enough arguments for format string", r->line);
        next++;
        if (conv == 's' || conv == 'r') {
            struct jx_buf t = {.arena = A};
            conv == 's' ? jv_write_str(&t, v, &r->fault) : jv_write_repr(&t, v, &r->fault);
            jx_buf_put(&b, t.p ? t.p : "", t.len);
        } else if (conv == 'd' || conv == 'i') {
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = 'd';
            spec[k] = '\0';
            jx_buf_printf(&b, spec, (long long)(v.k == JV_FLOAT ? (int64_t)v.f : as_int(v)));
        } else if (strchr("feEgGxXo", conv)) {
            spec[k++] = conv;
            spec[k] = '\0';
            if (strchr("xXo", conv)) {
                char s2[20];
                snprintf(s2, sizeof s2, "%.*sll%c", (int)k - 1, spec, conv);
                jx_buf_printf(&b, s2, (long long)as_int(v));
            } else {
                jx_buf_printf(&b, spec, jv_as_double(v));
            }
        } else {
            FAIL("line %d: unsupported format character '%c'", r->line, conv);
        }
    }
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
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
        if (from_right && maxsplit >= 0) {
            /* rsplit(None, k): split from the right; rare, so collect then merge */
            struct jv all = split(r, s, sep, -1, false);
            if ((int64_t)all.l->n <= maxsplit + 1)
                return all;
            size_t keep = all.l->n - (size_t)maxsplit;
            /* the head keeps its inner whitespace: from its first to the end of word keep-1 */
            const char *h0 = all.l->items[0].s->p, *h1 = all.l->items[keep - 1].s->p + all.l->items[keep - 1].s->len;
            jv_list_push(A, out, jv_str_borrow(A, h0, (size_t)(h1 - h0)));
            for (size_t k = keep; k < all.l->n; k++)
                jv_list_push(A, out, all.l->items[k]);
            return out;
        }
        int64_t splits = 0;
        for (;;) {
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (i >= n)
                break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                while (e > i && isspace((unsigned char)p[e - 1]))
                    e--;
                jv_list_push(A, out, jv_str_borrow(A, p + i, e - i));
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
    need_str(r, old, "replace's first argument");
    need_str(r, new, "replace's second argument");
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

enum casing { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_SWAP };
static struct jv change_case(struct jx_render *r, struct jv s, enum casing how)
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
    need_str(r, arg, suffix ? "endswith's argument" : "startswith's argument");
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
    return hit ? (int64_t)utf8_len(s.s->p, (size_t)(hit - s.s->p)) : -1;
}

static struct jv splitlines(struct jx_render *r, struct jv s, bool keepends)
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

static struct jv join_items(struct jx_render *r, struct jv sep, struct jv items, bool convert)
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

static struct jv str_method(struct jx_render *r, const char *m, struct jv s, struct jx_args *a)
{
    struct jv a0 = jx_arg(a, 0, NULL, jv_none()), a1 = jx_arg(a, 1, NULL, jv_none());
    if (!strcmp(m, "strip")) return strip(r, s, a0, true, true);
    if (!strcmp(m, "lstrip")) return strip(r, s, a0, true, false);
    if (!strcmp(m, "rstrip")) return strip(r, s, a0, false, true);
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        struct jv sep = jx_arg(a, 0, "sep", jv_none());
        struct jv max = jx_arg(a, 1, "maxsplit", jv_int(-1));
        return split(r, s, sep, need_int(r, max, "maxsplit"), m[0] == 'r');
    }
    if (!strcmp(m, "startswith")) return jv_bool(starts_or_ends(r, s, a0, false));
    if (!strcmp(m, "endswith")) return jv_bool(starts_or_ends(r, s, a0, true));
    if (!strcmp(m, "replace"))
        return str_replace(r, s, a0, a1, a->n_pos > 2 ? need_int(r, a->pos[2], "count") : -1);
    if (!strcmp(m, "upper")) return change_case(r, s, CASE_UPPER);
    if (!strcmp(m, "lower")) return change_case(r, s, CASE_LOWER);
    if (!strcmp(m, "title")) return change_case(r, s, CASE_TITLE);
    if (!strcmp(m, "capitalize")) return change_case(r, s, CASE_CAPITALIZE);
    if (!strcmp(m, "swapcase")) return change_case(r, s, CASE_SWAP);
    if (!strcmp(m, "find") || !strcmp(m, "index") || !strcmp(m, "rfind") || !strcmp(m, "rindex")) {
        need_str(r, a0, "the substring");
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
        need_str(r, a0, "the substring");
        if (!a0.s->len)
            return jv_int((int64_t)utf8_len(s.s->p, s.s->len) + 1);
        int64_t c = 0;
        for (const char *p = s.s->p, *e = s.s->p + s.s->len; (p = memmem(p, (size_t)(e - p), a0.s->p, a0.s->len));
             p += a0.s->len)
            c++;
        return jv_int(c);
    }
    if (!strcmp(m, "join")) return join_items(r, s, a0, false);
    if (!strcmp(m, "format")) return str_format(r, s, a);
    if (!strcmp(m, "splitlines")) return splitlines(r, s, jv_truthy(jx_arg(a, 0, "keepends", jv_bool(false))));
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        bool suf = m[6] == 's';
        if (prefix_match(s, need_str(r, a0, "the affix"), suf))
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
        int64_t width = need_int(r, a0, "width");
        size_t len = utf8_len(s.s->p, s.s->len);
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
        int64_t i = a->n_pos ? need_int(r, a->pos[0], "index") : pop ? -1 : 0;
        size_t n = l.l->n;
        if (i < 0)
            i += (int64_t)n;
        if (pop) {
            if (i < 0 || (size_t)i >= n)
                FAIL("line %d: pop index out of range", r->line);
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

static struct jv dict_items(struct jx_render *r, struct jv d)
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
    if (!strcmp(m, "items")) return dict_items(r, d);
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
static const char *const dict_methods[] = {"get", "pop", "setdefault", "items", "keys", "values", "update",
                                           "copy", NULL};

static const char *find_name(const char *const *names, const char *name)
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
    case JV_STR: return str_method(r, m, self, a);
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
    const char *m = NULL;
    switch (obj.k) {
    case JV_STR: m = find_name(str_methods, name); break;
    case JV_LIST: m = find_name(list_methods, name); break;
    case JV_DICT:
        if (obj.d->is_namespace)
            break;
        m = find_name(dict_methods, name);
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
    if (obj.k == JV_DICT) {
        struct jv *v = jv_dict_find(obj, key);
        if (v)
            return *v;
        return key.k == JV_STR ? jx_getattr(r, obj, jx_strndup(A, key.s->p, key.s->len)) : jv_undef(NULL);
    }
    if ((obj.k == JV_LIST || obj.k == JV_STR) && (key.k == JV_INT || key.k == JV_BOOL)) {
        int64_t i = as_int(key);
        if (obj.k == JV_LIST) {
            if (i < 0)
                i += (int64_t)obj.l->n;
            return i >= 0 && (size_t)i < obj.l->n ? obj.l->items[i] : jv_undef(NULL);
        }
        bool ascii = is_ascii(obj.s);
        size_t n = ascii ? obj.s->len : utf8_len(obj.s->p, obj.s->len);
        if (i < 0)
            i += (int64_t)n;
        if (i < 0 || (size_t)i >= n)
            return jv_undef(NULL);
        if (ascii)
            return jv_str_borrow(A, obj.s->p + i, 1);
        size_t at = utf8_offset(obj.s->p, obj.s->len, (size_t)i), end = utf8_offset(obj.s->p, obj.s->len, (size_t)i + 1);
        return jv_str_borrow(A, obj.s->p + at, end - at);
    }
    if (key.k == JV_STR)
        return jx_getattr(r, obj, jx_strndup(A, key.s->p, key.s->len));
    return jv_undef(NULL);
}

/* ---- filters ------------------------------------------------------------------------ */

static struct jv attr_path(struct jx_render *r, struct jv v, struct jv attr)
{
    if (attr.k == JV_INT)
        return jx_getitem(r, v, attr);
    need_str(r, attr, "attribute");
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
        v = change_case(r, v, CASE_LOWER);
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
                int c = order(r, keys[j], keys[i]);
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
    struct jx_args rest = {.n_pos = a->n_pos > first + 1 ? a->n_pos - first - 1 : 0, .pos = a->pos + first + 1};
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
        int64_t w = need_int(r, width, "indent width");
        if (w < 0 || w > 1024)
            FAIL("line %d: indent width out of range", r->line);
        char *sp = jx_alloc(A, (size_t)w + 1);
        memset(sp, ' ', (size_t)w);
        ind = jv_str_borrow(A, sp, (size_t)w);
    }
    /* jinja2 appends a newline before splitlines(): a trailing newline survives */
    struct jv lines = splitlines(r, concat_str(r, s, jv_cstr(A, "\n")), false);
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
    need_str(r, s, "from_json's input");
    json_error_t e;
    json_t *j = json_loadb(s.s->p, s.s->len, JSON_DECODE_ANY, &e);
    if (!j)
        FAIL("line %d: from_json: %s", r->line, e.text);
    struct jv v = jv_from_json(A, j, true); /* strings copied: the document goes now */
    json_decref(j);
    return v;
}

static struct jv str_of(struct jx_render *r, struct jv v) { return jv_to_str(A, v, &r->fault); }

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
    if (!strcmp(f, "string")) return str_of(r, v);
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        switch (v.k) {
        case JV_UNDEF: return jv_int(0);
        case JV_STR: return jv_int((int64_t)utf8_len(v.s->p, v.s->len));
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
        return dict_items(r, v);
    }
    if (!strcmp(f, "dictsort")) {
        if (v.k != JV_DICT)
            FAIL("line %d: dictsort needs a mapping", r->line);
        bool cs = jv_truthy(jx_arg(a, 0, "case_sensitive", jv_bool(false)));
        struct jv by = jx_arg(a, 1, "by", jv_cstr(A, "key"));
        bool rev = jv_truthy(jx_arg(a, 2, "reverse", jv_bool(false)));
        struct jv pairs = dict_items(r, v);
        return sorted(r, pairs, jv_int(by.k == JV_STR && by.s->len && by.s->p[0] == 'v' ? 1 : 0), rev, cs);
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
            if (!contains(r, seen, k)) {
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
        return join_items(r, str_of(r, sep), l, true);
    }
    if (!strcmp(f, "map")) {
        struct jv l = jx_iterable(r, jv_truthy(v) ? v : jv_undef(NULL)), out = jv_list_new(A, l.l->n);
        struct jv attr = jx_arg(a, NOPOS, "attribute", jv_undef(NULL));
        struct jv dflt = jx_arg(a, NOPOS, "default", jv_undef(NULL));
        struct jx_args rest = {.n_pos = a->n_pos ? a->n_pos - 1 : 0, .pos = a->pos + 1};
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
    if (!strcmp(f, "attr")) return v.k == JV_UNDEF ? v : jx_getattr(r, v, need_str(r, a0, "attr").s->p);
    if (!strcmp(f, "from_json")) return from_json(r, v);
    if (!strcmp(f, "sum")) {
        struct jv l = jx_iterable(r, v), attr = jx_arg(a, 0, "attribute", jv_none());
        struct jv total = jx_arg(a, 1, "start", jv_int(0));
        for (size_t i = 0; i < l.l->n; i++)
            total = jx_binop(r, OP_ADD, total, attr.k != JV_NONE ? attr_path(r, l.l->items[i], attr) : l.l->items[i]);
        return total;
    }
    if (!strcmp(f, "abs")) {
        if (v.k == JV_FLOAT) return jv_float(fabs(v.f));
        int64_t i = need_int(r, v, "abs's input");
        return jv_int(i < 0 ? -i : i);
    }
    if (!strcmp(f, "round")) {
        int64_t prec = need_int(r, jx_arg(a, 0, "precision", jv_int(0)), "precision");
        struct jv method = jx_arg(a, 1, "method", jv_cstr(A, "common"));
        double x = jv_as_double(v), m = pow(10, (double)prec);
        const char *how = method.k == JV_STR ? method.s->p : "common";
        double y = !strcmp(how, "ceil") ? ceil(x * m) / m : !strcmp(how, "floor") ? floor(x * m) / m : round(x * m) / m;
        return jv_float(y);
    }
    if (!strcmp(f, "int")) {
        struct jv dflt = jx_arg(a, 0, "default", jv_int(0));
        if (v.k == JV_INT || v.k == JV_BOOL) return jv_int(as_int(v));
        if (v.k == JV_FLOAT) return jv_int((int64_t)v.f);
        if (v.k == JV_STR) {
            char *s = jx_strndup(A, v.s->p, v.s->len), *end;
            long long i = strtoll(s, &end, 10);
            while (*end == ' ' || *end == '\t' || *end == '\n') end++;
            if (end != s && !*end) return jv_int(i);
            double d = strtod(s, &end);
            if (end != s && !*end) return jv_int((int64_t)d);
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
        return indent(r, str_of(r, v), jx_arg(a, 0, "width", jv_int(4)), jv_truthy(jx_arg(a, 1, "first", jv_bool(false))),
                      jv_truthy(jx_arg(a, 2, "blank", jv_bool(false))));
    if (!strcmp(f, "wordcount")) return jv_int((int64_t)split(r, str_of(r, v), jv_none(), -1, false).l->n);
    if (!strcmp(f, "format")) {
        struct jv args = jv_list_new(A, a->n_pos);
        args.l->tuple = true;
        for (size_t i = 0; i < a->n_pos; i++)
            jv_list_push(A, args, a->pos[i]);
        return percent_format(r, str_of(r, v), args);
    }
    if (!strcmp(f, "escape") || !strcmp(f, "e") || !strcmp(f, "forceescape"))
        return html_escape(r, f[0] == 'f' ? jv_str_borrow(A, str_of(r, v).s->p, str_of(r, v).s->len) : str_of(r, v));
    /* the string filters that are also methods */
    static const struct { const char *filter, *method; } as_method[] = {
        {"trim", "strip"}, {"upper", "upper"}, {"lower", "lower"}, {"title", "title"},
        {"capitalize", "capitalize"}, {"replace", "replace"}, {"center", "center"}, {NULL, NULL}};
    for (size_t i = 0; as_method[i].filter; i++)
        if (!strcmp(f, as_method[i].filter))
            return str_method(r, as_method[i].method, str_of(r, v), a);
    FAIL("line %d: no filter named '%s'", r->line, f);
}

/* ---- tests -------------------------------------------------------------------------- */

bool jx_test(struct jx_render *r, const char *t, struct jv v, struct jx_args *a)
{
    jx_step(r);
    struct jv a0 = jx_arg(a, 0, NULL, jv_undef(NULL));
    if (!strcmp(t, "defined")) return v.k != JV_UNDEF;
    if (!strcmp(t, "undefined")) return v.k == JV_UNDEF;
    if (!strcmp(t, "none")) return v.k == JV_NONE;
    if (!strcmp(t, "string")) return v.k == JV_STR;
    if (!strcmp(t, "number")) return jv_is_number(v);
    if (!strcmp(t, "integer")) return v.k == JV_INT;
    if (!strcmp(t, "float")) return v.k == JV_FLOAT;
    if (!strcmp(t, "boolean")) return v.k == JV_BOOL;
    if (!strcmp(t, "true")) return v.k == JV_BOOL && v.b;
    if (!strcmp(t, "false")) return v.k == JV_BOOL && !v.b;
    if (!strcmp(t, "mapping")) return v.k == JV_DICT && !v.d->is_namespace;
    if (!strcmp(t, "iterable")) return v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT;
    if (!strcmp(t, "sequence")) return v.k == JV_STR || v.k == JV_LIST || (v.k == JV_DICT && !v.d->is_namespace);
    if (!strcmp(t, "callable")) return v.k == JV_FUNC;
    if (!strcmp(t, "odd") || !strcmp(t, "even")) {
        int64_t i = need_int(r, v, "the value");
        return (i % 2 != 0) == (t[0] == 'o');
    }
    if (!strcmp(t, "divisibleby")) {
        int64_t d = need_int(r, a0, "divisibleby's argument");
        return d && need_int(r, v, "the value") % d == 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        if (v.k != JV_STR) return false;
        struct jv s = change_case(r, v, t[0] == 'l' ? CASE_LOWER : CASE_UPPER);
        return jv_equal(s, v);
    }
    if (!strcmp(t, "sameas")) return jv_equal(v, a0) && v.k == a0.k;
    if (!strcmp(t, "escaped")) return false;
    if (!strcmp(t, "in")) return contains(r, a0, v);
    static const struct { const char *name; enum jx_op op; } cmp[] = {
        {"eq", OP_EQ}, {"equalto", OP_EQ}, {"==", OP_EQ}, {"ne", OP_NE}, {"!=", OP_NE}, {"lt", OP_LT},
        {"lessthan", OP_LT}, {"<", OP_LT}, {"le", OP_LE}, {"<=", OP_LE}, {"gt", OP_GT}, {"greaterthan", OP_GT},
        {">", OP_GT}, {"ge", OP_GE}, {">=", OP_GE}, {NULL, OP_EQ}};
    for (size_t i = 0; cmp[i].name; i++)
        if (!strcmp(t, cmp[i].name))
            return jx_compare(r, cmp[i].op, v, a0);
    FAIL("line %d: no test named '%s'", r->line, t);
}

/* ---- globals ------------------------------------------------------------------------ */

static struct jv g_range(struct jx_render *r, struct jv self, struct jx_args *a)
{
    (void)self;
    int64_t start = 0, stop, step = 1;
    if (a->n_pos == 1) {
        stop = need_int(r, a->pos[0], "range's argument");
    } else if (a->n_pos == 2 || a->n_pos == 3) {
        start = need_int(r, a->pos[0], "range's start");
        stop = need_int(r, a->pos[1], "range's stop");
        if (a->n_pos == 3)
            step = need_int(r, a->pos[2], "range's step");
    } else {
        FAIL("line %d: range expected 1 to 3 arguments, got %zu", r->line, a->n_pos);
    }
    if (!step)
        FAIL("line %d: range() arg 3 must not be zero", r->line);
    int64_t n = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                         : (start > stop ? (start - stop - step - 1) / -step : 0);
    if (n > MAX_RANGE)
        FAIL("line %d: range of %lld items is over the limit of %d", r->line, (long long)n, MAX_RANGE);
    struct jv l = jv_list_new(A, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        jv_list_push(A, l, jv_int(start + i * step));
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
    struct jv msg = str_of(r, jx_arg(a, 0, NULL, jv_cstr(A, "raise_exception called")));
    jx_fail(&r->fault, "%.*s", (int)msg.s->len, msg.s->p);
}

static struct jv g_strftime_now(struct jx_render *r, struct jv self, struct jx_args *a)
{
    (void)self;
    struct jv fmt = need_str(r, jx_arg(a, 0, NULL, jv_undef(NULL)), "strftime_now's format");
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
