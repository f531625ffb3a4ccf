/* jinja_value.c -- the arena, values, and how Python prints them (str, repr, json.dumps). */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values a template builds can nest without bound ({% set ns.x = [ns.x] %} in a loop);
 * the walks below that recurse stop this deep, as Python's recursion limit stops its own.
 * The same limit is in jinja_ops.c. */
#define JV_MAX_DEPTH 1000

/* ---- errors ------------------------------------------------------------------------- */

void jx_fail(struct jx_fault *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->code = BW_EINVAL;
    longjmp(f->jb, 1);
}

void jx_oom(struct jx_fault *f)
{
    snprintf(f->msg, sizeof f->msg, "out of memory");
    f->code = BW_ENOMEM;
    longjmp(f->jb, 1);
}

/* ---- arena -------------------------------------------------------------------------- */

struct jx_chunk {
    struct jx_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void *jx_alloc(struct jx_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (a->limit && a->used + n > a->limit)
        jx_fail(a->fault, "the template used more than %zu MiB of memory", a->limit >> 20);
    struct jx_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 48 * 1024 ? n : 64 * 1024 - sizeof *c;
        c = malloc(sizeof *c + size);
        if (!c)
            jx_oom(a->fault);
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void *jx_grow(struct jx_arena *a, void *p, size_t old, size_t n)
{
    void *q = jx_alloc(a, n);
    if (old)
        memcpy(q, p, old);
    return q;
}

char *jx_strndup(struct jx_arena *a, const char *s, size_t n)
{
    char *p = jx_alloc(a, n + 1);
    memcpy(p, s, n);
    return p;
}

void jx_arena_free(struct jx_arena *a)
{
    for (struct jx_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- constructors ------------------------------------------------------------------- */

struct jv jv_str_borrow(struct jx_arena *a, const char *p, size_t len)
{
    struct jv_str *s = jx_alloc(a, sizeof *s);
    s->p = p;
    s->len = len;
    return (struct jv){.k = JV_STR, .s = s};
}

struct jv jv_str(struct jx_arena *a, const char *p, size_t len) { return jv_str_borrow(a, jx_strndup(a, p, len), len); }
struct jv jv_cstr(struct jx_arena *a, const char *s) { return jv_str(a, s, strlen(s)); }

struct jv jv_list_new(struct jx_arena *a, size_t cap)
{
    struct jv_list *l = jx_alloc(a, sizeof *l);
    l->cap = cap;
    l->items = cap ? jx_alloc(a, cap * sizeof *l->items) : NULL;
    return (struct jv){.k = JV_LIST, .l = l};
}

void jv_list_push(struct jx_arena *a, struct jv list, struct jv item)
{
    struct jv_list *l = list.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        l->items = jx_grow(a, l->items, l->n * sizeof *l->items, cap * sizeof *l->items);
        l->cap = cap;
    }
    l->items[l->n++] = item;
}

struct jv jv_dict_new(struct jx_arena *a)
{
    struct jv_dict *d = jx_alloc(a, sizeof *d);
    return (struct jv){.k = JV_DICT, .d = d};
}

static bool str_eq(const struct jv_str *a, const char *s, size_t n) { return a->len == n && !memcmp(a->p, s, n); }

struct jv *jv_dict_find(struct jv dict, struct jv key)
{
    struct jv_dict *d = dict.d;
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->items[i].key, key))
            return &d->items[i].val;
    return NULL;
}

struct jv *jv_dict_find_str(struct jv dict, const char *key)
{
    struct jv_dict *d = dict.d;
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].key.k == JV_STR && str_eq(d->items[i].key.s, key, n))
            return &d->items[i].val;
    return NULL;
}

void jv_dict_set(struct jx_arena *a, struct jv dict, struct jv key, struct jv val)
{
    struct jv *old = jv_dict_find(dict, key);
    if (old) {
        *old = val;
        return;
    }
    struct jv_dict *d = dict.d;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        d->items = jx_grow(a, d->items, d->n * sizeof *d->items, cap * sizeof *d->items);
        d->cap = cap;
    }
    d->items[d->n++] = (struct jv_kv){key, val};
}

struct jv jv_from_json(struct jx_arena *a, const json_t *j, bool copy)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        struct jv d = jv_dict_new(a);
        const char *k;
        json_t *v;
        /* a JSON object's keys are unique already: appended without jv_dict_set's search, which
         * made a context object of many keys quadratic to load */
        d.d->cap = json_object_size(j);
        d.d->items = d.d->cap ? jx_alloc(a, d.d->cap * sizeof *d.d->items) : NULL;
        json_object_foreach((json_t *)j, k, v) {
            struct jv key = copy ? jv_str(a, k, strlen(k)) : jv_str_borrow(a, k, strlen(k));
            d.d->items[d.d->n++] = (struct jv_kv){key, jv_from_json(a, v, copy)};
        }
        return d;
    }
    case JSON_ARRAY: {
        struct jv l = jv_list_new(a, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            jv_list_push(a, l, jv_from_json(a, json_array_get(j, i), copy));
        return l;
    }
    case JSON_STRING:
        return copy ? jv_str(a, json_string_value(j), json_string_length(j))
                    : jv_str_borrow(a, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return jv_int(json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    default: return jv_none();
    }
}

/* ---- Python semantics --------------------------------------------------------------- */

bool jv_truthy(struct jv v)
{
    switch (v.k) {
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0.0;
    case JV_STR: return v.s->len > 0;
    case JV_LIST: return v.l->n > 0;
    case JV_DICT: return v.d->n > 0 || v.d->is_namespace;
    case JV_FUNC: return true;
    default: return false;
    }
}

bool jv_is_number(struct jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }

double jv_as_double(struct jv v)
{
    return v.k == JV_FLOAT ? v.f : v.k == JV_INT ? (double)v.i : v.k == JV_BOOL ? (double)v.b : 0.0;
}

static bool equal_at(struct jv a, struct jv b, int depth);
bool jv_equal(struct jv a, struct jv b) { return equal_at(a, b, 0); }

/* Past JV_MAX_DEPTH two values compare unequal (there is no error path here; Python would
 * raise RecursionError). */
static bool equal_at(struct jv a, struct jv b, int depth)
{
    if (depth > JV_MAX_DEPTH)
        return false;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT)
            return (a.k == JV_BOOL ? a.b : a.i) == (b.k == JV_BOOL ? b.b : b.i);
        return jv_as_double(a) == jv_as_double(b);
    }
    if (a.k != b.k)
        return false;
    switch (a.k) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.s->len == b.s->len && !memcmp(a.s->p, b.s->p, a.s->len);
    case JV_LIST:
        if (a.l == b.l) /* the same list: equal at once, as Python's identity shortcut */
            return true;
        if (a.l->n != b.l->n)
            return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!equal_at(a.l->items[i], b.l->items[i], depth + 1))
                return false;
        return true;
    case JV_DICT:
        if (a.d == b.d)
            return true;
        if (a.d->n != b.d->n)
            return false;
        for (size_t i = 0; i < a.d->n; i++) {
            struct jv *o = jv_dict_find(b, a.d->items[i].key);
            if (!o || !equal_at(a.d->items[i].val, *o, depth + 1))
                return false;
        }
        return true;
    case JV_FUNC: return a.fn == b.fn;
    default: return false;
    }
}

const char *jv_type_name(struct jv v)
{
    switch (v.k) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.l->tuple ? "tuple" : "list";
    case JV_DICT: return v.d->is_namespace ? "Namespace" : "dict";
    default: return "function";
    }
}

/* ---- text builder ------------------------------------------------------------------- */

static void buf_reserve(struct jx_buf *b, size_t extra)
{
    /* Checked on every put, not only when growing: the capacity doubles past the limit
     * (a buffer of exactly `limit` bytes needs limit + 1), and then nothing else would. */
    if (b->limit && b->len + extra > b->limit)
        jx_fail(b->arena->fault, "the template's output is larger than %zu bytes", b->limit);
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->p = jx_grow(b->arena, b->p, b->len, cap);
    b->cap = cap;
}

void jx_buf_put(struct jx_buf *b, const char *s, size_t n)
{
    if (!n)
        return;
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jx_buf_putc(struct jx_buf *b, char c) { jx_buf_put(b, &c, 1); }

void jx_buf_printf(struct jx_buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        jx_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- printing ----------------------------------------------------------------------- */

/* Python's repr(float): the shortest text that reads back as d, in fixed notation when
 * the decimal exponent is in [-4, 16), else d.ddde+XX; integral values keep a ".0". */
void jx_write_float(struct jx_buf *b, double d)
{
    if (isnan(d)) {
        jx_buf_put(b, "nan", 3);
        return;
    }
    if (isinf(d)) {
        jx_buf_put(b, d < 0 ? "-inf" : "inf", d < 0 ? 4 : 3);
        return;
    }
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp = [-]D.DDDDe[+-]XX: split into digits and exponent */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (neg)
        jx_buf_putc(b, '-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            jx_buf_put(b, "0.", 2);
            for (int i = -1; i > exp; i--)
                jx_buf_putc(b, '0');
            jx_buf_put(b, digits, nd);
        } else {
            for (int i = 0; i <= exp; i++)
                jx_buf_putc(b, (size_t)i < nd ? digits[i] : '0');
            jx_buf_putc(b, '.');
            if ((size_t)exp + 1 < nd)
                jx_buf_put(b, digits + exp + 1, nd - (size_t)exp - 1);
            else
                jx_buf_putc(b, '0');
        }
    } else {
        jx_buf_putc(b, digits[0]);
        if (nd > 1) {
            jx_buf_putc(b, '.');
            jx_buf_put(b, digits + 1, nd - 1);
        }
        jx_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
}

static void write_repr_str(struct jx_buf *b, const struct jv_str *s)
{
    bool has_sq = memchr(s->p, '\'', s->len) != NULL, has_dq = memchr(s->p, '"', s->len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jx_buf_putc(b, q);
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c == (unsigned char)q || c == '\\') {
            jx_buf_putc(b, '\\');
            jx_buf_putc(b, (char)c);
        } else if (c == '\n') {
            jx_buf_put(b, "\\n", 2);
        } else if (c == '\r') {
            jx_buf_put(b, "\\r", 2);
        } else if (c == '\t') {
            jx_buf_put(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            jx_buf_printf(b, "\\x%02x", c);
        } else {
            jx_buf_putc(b, (char)c);
        }
    }
    jx_buf_putc(b, q);
}

static void write_repr_at(struct jx_buf *b, struct jv v, struct jx_fault *f, int depth);
void jv_write_repr(struct jx_buf *b, struct jv v, struct jx_fault *f) { write_repr_at(b, v, f, 0); }

static void write_repr_at(struct jx_buf *b, struct jv v, struct jx_fault *f, int depth)
{
    if (depth > JV_MAX_DEPTH)
        jx_fail(f, "a value is nested too deeply to print");
    switch (v.k) {
    case JV_UNDEF: jx_buf_put(b, "Undefined", 9); return; /* repr(Undefined), as in [nope] */
    case JV_STR: write_repr_str(b, v.s); return;
    case JV_LIST: {
        jx_buf_putc(b, v.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i)
                jx_buf_put(b, ", ", 2);
            write_repr_at(b, v.l->items[i], f, depth + 1);
        }
        if (v.l->tuple && v.l->n == 1)
            jx_buf_putc(b, ',');
        jx_buf_putc(b, v.l->tuple ? ')' : ']');
        return;
    }
    case JV_DICT:
        if (v.d->is_namespace)
            jx_buf_put(b, "<Namespace ", 11);
        jx_buf_putc(b, '{');
        for (size_t i = 0; i < v.d->n; i++) {
            if (i)
                jx_buf_put(b, ", ", 2);
            write_repr_at(b, v.d->items[i].key, f, depth + 1);
            jx_buf_put(b, ": ", 2);
            write_repr_at(b, v.d->items[i].val, f, depth + 1);
        }
        jx_buf_putc(b, '}');
        if (v.d->is_namespace)
            jx_buf_putc(b, '>');
        return;
    default: jv_write_str(b, v, f);
    }
}

void jv_write_str(struct jx_buf *b, struct jv v, struct jx_fault *f)
{
    switch (v.k) {
    case JV_UNDEF: return;
    case JV_NONE: jx_buf_put(b, "None", 4); return;
    case JV_BOOL: v.b ? jx_buf_put(b, "True", 4) : jx_buf_put(b, "False", 5); return;
    case JV_INT: jx_buf_printf(b, "%lld", (long long)v.i); return;
    case JV_FLOAT: jx_write_float(b, v.f); return;
    case JV_STR: jx_buf_put(b, v.s->p, v.s->len); return;
    case JV_FUNC: jx_buf_printf(b, "<function %s>", v.fn->name ? v.fn->name : "?"); return;
    default: jv_write_repr(b, v, f);
    }
}

struct jv jv_to_str(struct jx_arena *a, struct jv v, struct jx_fault *f)
{
    if (v.k == JV_STR)
        return v;
    struct jx_buf b = {.arena = a};
    jv_write_str(&b, v, f);
    return jv_str_borrow(a, b.p ? b.p : "", b.len);
}

static void write_json_str(struct jx_buf *b, const char *p, size_t n)
{
    jx_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char tmp[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            }
        }
        if (esc) {
            jx_buf_put(b, p + i - run, run);
            run = 0;
            jx_buf_put(b, esc, strlen(esc));
        } else {
            run++;
        }
    }
    jx_buf_put(b, p + n - run, run);
    jx_buf_putc(b, '"');
}

static void json_newline(struct jx_buf *b, int indent, int level)
{
    jx_buf_putc(b, '\n');
    for (int i = 0; i < indent * level; i++)
        jx_buf_putc(b, ' ');
}

static int cmp_keys(const void *x, const void *y)
{
    const struct jv_kv *a = x, *b = y;
    if (a->key.k == JV_STR && b->key.k == JV_STR) {
        size_t n = a->key.s->len < b->key.s->len ? a->key.s->len : b->key.s->len;
        int c = memcmp(a->key.s->p, b->key.s->p, n);
        return c ? c : (a->key.s->len > b->key.s->len) - (a->key.s->len < b->key.s->len);
    }
    return 0;
}

void jv_write_json(struct jx_buf *b, struct jv v, int indent, const char *item_sep, const char *key_sep, bool sort_keys,
                   struct jx_fault *f, int depth)
{
    if (depth > 200)
        jx_fail(f, "tojson: value nested too deeply");
    switch (v.k) {
    case JV_NONE: jx_buf_put(b, "null", 4); return;
    case JV_BOOL: v.b ? jx_buf_put(b, "true", 4) : jx_buf_put(b, "false", 5); return;
    case JV_INT: jx_buf_printf(b, "%lld", (long long)v.i); return;
    case JV_FLOAT:
        if (isnan(v.f))
            jx_buf_put(b, "NaN", 3);
        else if (isinf(v.f))
            jx_buf_put(b, v.f < 0 ? "-Infinity" : "Infinity", v.f < 0 ? 9 : 8);
        else
            jx_write_float(b, v.f);
        return;
    case JV_STR: write_json_str(b, v.s->p, v.s->len); return;
    case JV_LIST:
        jx_buf_putc(b, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i)
                jx_buf_put(b, item_sep, strlen(item_sep));
            if (indent >= 0)
                json_newline(b, indent, depth + 1);
            jv_write_json(b, v.l->items[i], indent, item_sep, key_sep, sort_keys, f, depth + 1);
        }
        if (indent >= 0 && v.l->n)
            json_newline(b, indent, depth);
        jx_buf_putc(b, ']');
        return;
    case JV_DICT: {
        struct jv_kv *items = v.d->items;
        if (sort_keys && v.d->n > 1) {
            items = jx_alloc(b->arena, v.d->n * sizeof *items);
            memcpy(items, v.d->items, v.d->n * sizeof *items);
            qsort(items, v.d->n, sizeof *items, cmp_keys);
        }
        jx_buf_putc(b, '{');
        for (size_t i = 0; i < v.d->n; i++) {
            if (i)
                jx_buf_put(b, item_sep, strlen(item_sep));
            if (indent >= 0)
                json_newline(b, indent, depth + 1);
            struct jv k = items[i].key;
            if (k.k == JV_STR) {
                write_json_str(b, k.s->p, k.s->len);
            } else {
                /* json.dumps turns int/float/bool/None keys into their JSON text */
                struct jx_buf kb = {.arena = b->arena};
                jv_write_json(&kb, k, -1, ", ", ": ", false, f, depth + 1);
                write_json_str(b, kb.p ? kb.p : "", kb.len);
            }
            jx_buf_put(b, key_sep, strlen(key_sep));
            jv_write_json(b, items[i].val, indent, item_sep, key_sep, sort_keys, f, depth + 1);
        }
        if (indent >= 0 && v.d->n)
            json_newline(b, indent, depth);
        jx_buf_putc(b, '}');
        return;
    }
    default: jx_fail(f, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}
