/* jinja_ops.c -- the operators on values (see jinja_int.h): arithmetic with Python's
 * semantics on 64-bit ints, string and list concatenation and repetition, Markup escaping,
 * comparisons and ordering, containment (`in`), and printf-style `%` formatting. */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define JV_MAX_DEPTH 1000 /* values nested deeper are not compared (as in jinja_value.c) */

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)

struct jv jx_html_escape(struct jx_render *r, struct jv s)
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

struct jv jx_concat_str(struct jx_render *r, struct jv a, struct jv b)
{
    size_t n = a.s->len + b.s->len;
    char *p = jx_alloc(A, n + 1);
    memcpy(p, a.s->p, a.s->len);
    memcpy(p + a.s->len, b.s->p, b.s->len);
    return jv_str_borrow(A, p, n);
}

/* Python's ints do not overflow; ours are 64 bits, and going past them is an error (not C's
 * undefined behaviour, nor INT64_MIN // -1's SIGFPE). */
#define INT_OVERFLOW() FAIL("line %d: integer overflow (past 64 bits)", r->line)

static int64_t int_pow(struct jx_render *r, int64_t x, int64_t e)
{
    int64_t p = 1; /* by squaring: 1 ** 9223372036854775807 is 63 steps, not 2**63 */
    while (e > 0) {
        if ((e & 1) && __builtin_mul_overflow(p, x, &p))
            INT_OVERFLOW();
        e >>= 1;
        if (e && __builtin_mul_overflow(x, x, &x))
            INT_OVERFLOW();
    }
    return p;
}

/* CPython's float divmod: the remainder takes the divisor's sign, the quotient is floored. */
static double float_divmod(double x, double y, double *mod)
{
    double m = fmod(x, y), div;
    if (m) {
        if ((y < 0) != (m < 0))
            m += y;
    } else {
        m = copysign(0.0, y);
    }
    div = (x - m) / y;
    double q;
    if (div) {
        q = floor(div);
        if (div - q > 0.5)
            q += 1.0;
    } else {
        q = copysign(0.0, x / y);
    }
    *mod = m;
    return q;
}

struct jv jx_binop(struct jx_render *r, enum jx_op op, struct jv a, struct jv b)
{
    if (op == OP_CONCAT) {
        if (a.k == JV_UNDEF && !a.undef_name) a = jv_cstr(A, "");
        return jx_concat_str(r, jv_to_str(A, a, &r->fault), jv_to_str(A, b, &r->fault));
    }
    if (a.k == JV_UNDEF)
        FAIL("line %d: '%s' is undefined", r->line, a.undef_name ? a.undef_name : "value");
    if (b.k == JV_UNDEF)
        FAIL("line %d: '%s' is undefined", r->line, b.undef_name ? b.undef_name : "value");
    bool nums = jv_is_number(a) && jv_is_number(b);
    bool ints = nums && a.k != JV_FLOAT && b.k != JV_FLOAT;
    int64_t z;
    switch (op) {
    case OP_ADD:
        if (ints) {
            if (__builtin_add_overflow(jx_as_int(a), jx_as_int(b), &z))
                INT_OVERFLOW();
            return jv_int(z);
        }
        if (nums) return jv_float(jv_as_double(a) + jv_as_double(b));
        if (a.k == JV_STR && b.k == JV_STR) {
            if (a.s->safe == b.s->safe) {
                struct jv out = jx_concat_str(r, a, b);
                out.s->safe = a.s->safe;
                return out;
            }
            /* Markup + str escapes the str (jinja2 with autoescape off still does this) */
            struct jv out = jx_concat_str(r, jx_html_escape(r, a), jx_html_escape(r, b));
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
        if (ints) {
            if (__builtin_sub_overflow(jx_as_int(a), jx_as_int(b), &z))
                INT_OVERFLOW();
            return jv_int(z);
        }
        if (nums) return jv_float(jv_as_double(a) - jv_as_double(b));
        break;
    case OP_MUL:
        if (ints) {
            if (__builtin_mul_overflow(jx_as_int(a), jx_as_int(b), &z))
                INT_OVERFLOW();
            return jv_int(z);
        }
        if (nums) return jv_float(jv_as_double(a) * jv_as_double(b));
        if ((a.k == JV_INT || a.k == JV_BOOL) && (b.k == JV_STR || b.k == JV_LIST)) { /* 3 * 'ab' as 'ab' * 3 */
            struct jv t = a;
            a = b;
            b = t;
        }
        if ((a.k == JV_STR || a.k == JV_LIST) && (b.k == JV_INT || b.k == JV_BOOL)) {
            int64_t times = jx_as_int(b);
            size_t unit = a.k == JV_STR ? a.s->len : a.l->n;
            if (times > 0 && unit && (uint64_t)times > r->opts->max_output / unit)
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
                int64_t x = jx_as_int(a), y = jx_as_int(b);
                if (x == INT64_MIN && y == -1) {
                    if (op == OP_MOD)
                        return jv_int(0);
                    INT_OVERFLOW();
                }
                int64_t q = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) { /* Python floors */
                    q--;
                    m += y;
                }
                return jv_int(op == OP_MOD ? m : q);
            }
            double m, q = float_divmod(jv_as_double(a), jv_as_double(b), &m);
            return jv_float(op == OP_MOD ? m : q);
        }
        if (op == OP_MOD && a.k == JV_STR)
            return jx_percent_format(r, a, b);
        break;
    case OP_POW:
        if (ints && jx_as_int(b) >= 0)
            return jv_int(int_pow(r, jx_as_int(a), jx_as_int(b)));
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
static int order_at(struct jx_render *r, struct jv a, struct jv b, int depth)
{
    if (depth > JV_MAX_DEPTH) /* lists in lists a template made thousands deep: no stack overflow */
        FAIL("line %d: values nested too deeply to compare", r->line);
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT)
            return (jx_as_int(a) > jx_as_int(b)) - (jx_as_int(a) < jx_as_int(b));
        double x = jv_as_double(a), y = jv_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.k == JV_STR && b.k == JV_STR)
        return str_cmp(a.s, b.s);
    if (a.k == JV_LIST && b.k == JV_LIST) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++) {
            if (jv_equal(a.l->items[i], b.l->items[i]))
                continue;
            return order_at(r, a.l->items[i], b.l->items[i], depth + 1);
        }
        return (a.l->n > b.l->n) - (a.l->n < b.l->n);
    }
    FAIL("line %d: '<' not supported between instances of '%s' and '%s'", r->line, jv_type_name(a), jv_type_name(b));
}

int jx_order(struct jx_render *r, struct jv a, struct jv b) { return order_at(r, a, b, 0); }

bool jx_contains(struct jx_render *r, struct jv container, struct jv item)
{
    size_t items, bytes = jx_value_size(container, &items);
    jx_charge(r, bytes, items);
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
    if (op == OP_EQ || op == OP_NE) {
        size_t items, bytes = jx_value_size(a, &items);
        jx_charge(r, bytes, items);
    }
    switch (op) {
    case OP_EQ: return jv_equal(a, b);
    case OP_NE: return !jv_equal(a, b);
    case OP_IN: return jx_contains(r, b, a);
    case OP_NOTIN: return !jx_contains(r, b, a);
    default: break;
    }
    if (a.k == JV_UNDEF || b.k == JV_UNDEF)
        FAIL("line %d: '%s' is undefined", r->line,
             (a.k == JV_UNDEF ? a.undef_name : b.undef_name) ? (a.k == JV_UNDEF ? a.undef_name : b.undef_name) : "value");
    int c = jx_order(r, a, b);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* "%s and %5.2f" % args: the printf-style formatting Python strings have. Widths and
 * precisions over MAX_FORMAT_WIDTH fail (asking for a billion columns took seconds, and
 * printf's output was cut at 127 bytes); an argument of the wrong type fails as in Python. */
#define MAX_FORMAT_WIDTH 4096
static int format_num(struct jx_render *r, const char *p, size_t n, size_t *i)
{
    int v = 0;
    for (; *i < n && isdigit((unsigned char)p[*i]); (*i)++)
        if ((v = v * 10 + (p[*i] - '0')) > MAX_FORMAT_WIDTH)
            FAIL("line %d: format width or precision over %d", r->line, MAX_FORMAT_WIDTH);
    return v;
}

struct jv jx_percent_format(struct jx_render *r, struct jv fmt, struct jv args)
{
    struct jx_buf b = {.arena = A, .limit = r->opts->max_output};
    bool tuple = args.k == JV_LIST && args.l->tuple;
    size_t next = 0, nargs = tuple ? args.l->n : 1;
    const struct jv *argv = tuple ? args.l->items : &args;
    const char *p = fmt.s->p;
    size_t n = fmt.s->len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            jx_buf_putc(&b, p[i]);
            continue;
        }
        const struct jv *named = NULL; /* %(key)s takes args[key] */
        if (i + 1 < n && p[i + 1] == '(') {
            const char *close = memchr(p + i + 2, ')', n - i - 2);
            if (!close)
                FAIL("line %d: incomplete format key", r->line);
            if (args.k != JV_DICT)
                FAIL("line %d: format requires a mapping", r->line);
            named = jv_dict_find(args, jv_str_borrow(A, p + i + 2, (size_t)(close - p) - i - 2));
            if (!named)
                FAIL("line %d: format key '%.*s' not found", r->line, (int)(close - p - (ptrdiff_t)i - 2), p + i + 2);
            i = (size_t)(close - p);
        }
        char flags[8];
        size_t nf = 0;
        for (i++; i < n && strchr("-+ #0", p[i]); i++)
            if (nf < sizeof flags - 1)
                flags[nf++] = p[i];
        flags[nf] = '\0';
        int width = format_num(r, p, n, &i), prec = -1;
        if (i < n && p[i] == '.') {
            i++;
            prec = format_num(r, p, n, &i);
        }
        if (i >= n)
            FAIL("line %d: incomplete format", r->line);
        char conv = p[i];
        if (conv == '%') {
            jx_buf_putc(&b, '%');
            continue;
        }
        if (!named && next >= nargs)
            FAIL("line %d: not enough arguments for format string", r->line);
        struct jv v = named ? *named : argv[next++];
        if (conv == 's' || conv == 'r') {
            struct jx_buf t = {.arena = A, .limit = r->opts->max_output};
            conv == 's' ? jv_write_str(&t, v, &r->fault) : jv_write_repr(&t, v, &r->fault);
            size_t len = t.len, cps = jx_utf8_len(t.p ? t.p : "", t.len);
            if (prec >= 0 && (size_t)prec < cps) {
                len = jx_utf8_offset(t.p, t.len, (size_t)prec);
                cps = (size_t)prec;
            }
            bool left = strchr(flags, '-') != NULL;
            for (size_t k = cps; !left && k < (size_t)width; k++)
                jx_buf_putc(&b, ' ');
            jx_buf_put(&b, t.p ? t.p : "", len);
            for (size_t k = cps; left && k < (size_t)width; k++)
                jx_buf_putc(&b, ' ');
            continue;
        }
        bool integral = strchr("diouxX", conv) != NULL;
        if (!integral && !strchr("feEFgG", conv))
            FAIL("line %d: unsupported format character '%c'", r->line, conv);
        if (!jv_is_number(v) || (v.k == JV_FLOAT && conv != 'd' && conv != 'i' && conv != 'u' && integral))
            FAIL("line %d: %%%c format: %s is required, not %s", r->line, conv, integral ? "an integer" : "a real number",
                 jv_type_name(v));
        char spec[48], out[MAX_FORMAT_WIDTH * 2 + 400];
        char w[16] = "", pr[16] = "";
        if (width)
            snprintf(w, sizeof w, "%d", width);
        if (prec >= 0)
            snprintf(pr, sizeof pr, ".%d", prec);
        snprintf(spec, sizeof spec, "%%%s%s%s%s%c", flags, w, pr, integral ? "ll" : "",
                 conv == 'u' || conv == 'i' ? 'd' : conv);
        long long iv = !integral ? 0 : v.k == JV_FLOAT ? jx_float_to_int(r, v.f, jv_int(0)).i : jx_as_int(v);
        int len = integral ? snprintf(out, sizeof out, spec, iv) : snprintf(out, sizeof out, spec, jv_as_double(v));
        jx_buf_put(&b, out, len < 0 ? 0 : (size_t)len < sizeof out ? (size_t)len : sizeof out - 1);
    }
    if (next < nargs && tuple)
        FAIL("line %d: not all arguments converted during string formatting", r->line);
    return jv_str_borrow(A, b.p ? b.p : "", b.len);
}

/* int(x) of a float: truncated; nan gives the default (jinja2 catches int()'s ValueError),
 * beyond 64 bits is an error (Python's int would grow). */
struct jv jx_float_to_int(struct jx_render *r, double d, struct jv dflt)
{
    if (isnan(d))
        return dflt;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        INT_OVERFLOW();
    return jv_int((int64_t)d);
}
