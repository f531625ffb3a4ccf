/* jinja_tests.c -- jinja2's tests (`value is name(args)`, see jinja_int.h): kinds of
 * value, parity and divisibility, case, identity, containment and the comparison aliases. */
#include "template/jinja_int.h"

#include <string.h>

#define A (&r->arena)
#define FAIL(...) jx_fail(&r->fault, __VA_ARGS__)

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
    /* jinja2's Undefined iterates (as nothing) and has a len() and __getitem__, so it passes both */
    if (!strcmp(t, "iterable")) return v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT || v.k == JV_UNDEF;
    if (!strcmp(t, "sequence"))
        return v.k == JV_STR || v.k == JV_LIST || (v.k == JV_DICT && !v.d->is_namespace) || v.k == JV_UNDEF;
    if (!strcmp(t, "callable")) return v.k == JV_FUNC;
    if (!strcmp(t, "odd") || !strcmp(t, "even")) {
        int64_t i = jx_need_int(r, v, "the value");
        return (i % 2 != 0) == (t[0] == 'o');
    }
    if (!strcmp(t, "divisibleby")) {
        int64_t d = jx_need_int(r, a0, "divisibleby's argument");
        return d && jx_need_int(r, v, "the value") % d == 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        if (v.k != JV_STR) return false;
        struct jv s = jx_change_case(r, v, t[0] == 'l' ? CASE_LOWER : CASE_UPPER);
        return jv_equal(s, v);
    }
    if (!strcmp(t, "sameas")) return jv_equal(v, a0) && v.k == a0.k;
    if (!strcmp(t, "escaped")) return false;
    if (!strcmp(t, "in")) return jx_contains(r, a0, v);
    static const struct { const char *name; enum jx_op op; } cmp[] = {
        {"eq", OP_EQ}, {"equalto", OP_EQ}, {"==", OP_EQ}, {"ne", OP_NE}, {"!=", OP_NE}, {"lt", OP_LT},
        {"lessthan", OP_LT}, {"<", OP_LT}, {"le", OP_LE}, {"<=", OP_LE}, {"gt", OP_GT}, {"greaterthan", OP_GT},
        {">", OP_GT}, {"ge", OP_GE}, {">=", OP_GE}, {NULL, OP_EQ}};
    for (size_t i = 0; cmp[i].name; i++)
        if (!strcmp(t, cmp[i].name))
            return jx_compare(r, cmp[i].op, v, a0);
    FAIL("line %d: no test named '%s'", r->line, t);
}
