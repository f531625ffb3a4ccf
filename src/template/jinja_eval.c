/* jinja_eval.c -- runs a parsed template: scopes, statements, expressions, macros.
 *
 * Scopes follow jinja2's: the globals (builtins, then the caller's context), the
 * template's top level, a new scope per for loop (a `set` inside a loop does not leak out
 * of it: that is what namespace() is for) and per macro call (whose parent is the scope the
 * macro was defined in). `if` blocks share their enclosing scope. */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_OUTPUT (64u << 20)
#define DEFAULT_MAX_MEMORY (256u << 20)
#define DEFAULT_MAX_STEPS 20000000
#define DEFAULT_MAX_DEPTH 200

void jx_step(struct jx_render *r)
{
    if (++r->steps > r->opts->max_steps)
        jx_fail(&r->fault, "the template ran more than %lld steps", (long long)r->opts->max_steps);
}

/* ---- scopes ------------------------------------------------------------------------- */

static struct jx_scope *scope_new(struct jx_render *r, struct jx_scope *parent)
{
    struct jx_scope *s = jx_alloc(&r->arena, sizeof *s);
    s->parent = parent;
    return s;
}

static struct jx_var *scope_find(struct jx_scope *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->vars[i].name, name))
            return &s->vars[i];
    return NULL;
}

struct jv jx_scope_get(struct jx_scope *s, const char *name)
{
    for (; s; s = s->parent) {
        struct jx_var *v = scope_find(s, name);
        if (v)
            return v->v;
    }
    return jv_undef(name);
}

void jx_scope_set(struct jx_render *r, struct jx_scope *s, const char *name, struct jv v)
{
    struct jx_var *old = scope_find(s, name);
    if (old) {
        old->v = v;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        s->vars = jx_grow(&r->arena, s->vars, s->n * sizeof *s->vars, cap * sizeof *s->vars);
        s->cap = cap;
    }
    s->vars[s->n++] = (struct jx_var){name, v};
}

/* ---- expressions -------------------------------------------------------------------- */

static struct jv eval(struct jx_render *r, struct jx_scope *s, const struct jx_node *n);
static void exec_body(struct jx_render *r, struct jx_scope *s, const struct jx_node *body);

static _Noreturn void fail_undefined(struct jx_render *r, struct jv v)
{
    if (v.undef_name)
        jx_fail(&r->fault, "line %d: '%s' is undefined", r->line, v.undef_name);
    jx_fail(&r->fault, "line %d: a value is undefined", r->line);
}

static void eval_args(struct jx_render *r, struct jx_scope *s, const struct jx_node *n, struct jx_args *a)
{
    a->n_pos = n->n_kids;
    a->n_kw = n->n_kw;
    a->pos = n->n_kids ? jx_alloc(&r->arena, n->n_kids * sizeof *a->pos) : NULL;
    a->kw = n->n_kw ? jx_alloc(&r->arena, n->n_kw * sizeof *a->kw) : NULL;
    a->kw_names = (const char **)n->kw_names;
    for (size_t i = 0; i < n->n_kids; i++)
        a->pos[i] = eval(r, s, n->kids[i]);
    for (size_t i = 0; i < n->n_kw; i++)
        a->kw[i] = eval(r, s, n->kw[i]);
}

static int64_t norm_index(int64_t i, size_t n)
{
    return i < 0 ? i + (int64_t)n : i;
}

/* Python's slice semantics on a list (a tuple stays a tuple) or a string, whose indexes
 * count code points: cp[i] is the byte offset of code point i (NULL when all ASCII). */
static struct jv eval_slice(struct jx_render *r, struct jv obj, struct jv lo, struct jv hi, struct jv step_v)
{
    size_t n = obj.k == JV_STR ? obj.s->len : obj.k == JV_LIST ? obj.l->n : 0;
    if (obj.k != JV_STR && obj.k != JV_LIST)
        jx_fail(&r->fault, "line %d: '%s' object is not subscriptable", r->line, jv_type_name(obj));
    size_t *cp = NULL;
    if (obj.k == JV_STR) {
        size_t ncp = 0;
        for (size_t i = 0; i < obj.s->len; i++)
            ncp += ((unsigned char)obj.s->p[i] & 0xC0) != 0x80;
        if (ncp != obj.s->len) {
            cp = jx_alloc(&r->arena, (ncp + 1) * sizeof *cp);
            for (size_t i = 0, k = 0; i < obj.s->len; i++)
                if (((unsigned char)obj.s->p[i] & 0xC0) != 0x80)
                    cp[k++] = i;
            cp[ncp] = obj.s->len;
            n = ncp;
        }
    }
    int64_t step = step_v.k == JV_INT ? step_v.i : 1;
    if (step == 0)
        jx_fail(&r->fault, "line %d: slice step cannot be zero", r->line);
    int64_t len = (int64_t)n, start, stop;
    if (step > 0) {
        start = lo.k == JV_INT ? norm_index(lo.i, n) : 0;
        stop = hi.k == JV_INT ? norm_index(hi.i, n) : len;
        start = start < 0 ? 0 : start > len ? len : start;
        stop = stop < 0 ? 0 : stop > len ? len : stop;
    } else {
        start = lo.k == JV_INT ? norm_index(lo.i, n) : len - 1;
        stop = hi.k == JV_INT ? norm_index(hi.i, n) : -1;
        start = start < -1 ? -1 : start > len - 1 ? len - 1 : start;
        stop = stop < -1 ? -1 : stop > len - 1 ? len - 1 : stop;
    }
    if (obj.k == JV_STR) {
#define AT(i) (cp ? cp[i] : (size_t)(i))
        if (step == 1)
            return jv_str_borrow(&r->arena, obj.s->p + AT(start), stop > start ? AT(stop) - AT(start) : 0);
        struct jx_buf b = {.arena = &r->arena};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jx_buf_put(&b, obj.s->p + AT(i), AT(i + 1) - AT(i));
#undef AT
        return jv_str_borrow(&r->arena, b.p ? b.p : "", b.len);
    }
    struct jv out = jv_list_new(&r->arena, 0);
    out.l->tuple = obj.l->tuple;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        jv_list_push(&r->arena, out, obj.l->items[i]);
    return out;
}

static struct jv eval(struct jx_render *r, struct jx_scope *s, const struct jx_node *n)
{
    switch (n->kind) {
    case E_LIT: return n->lit;
    case E_NAME: return jx_scope_get(s, n->name);
    case E_LIST:
    case E_TUPLE: {
        struct jv l = jv_list_new(&r->arena, n->n_kids);
        l.l->tuple = n->kind == E_TUPLE;
        for (size_t i = 0; i < n->n_kids; i++)
            jv_list_push(&r->arena, l, eval(r, s, n->kids[i]));
        return l;
    }
    case E_DICT: {
        struct jv d = jv_dict_new(&r->arena);
        for (size_t i = 0; i + 1 < n->n_kids; i += 2) {
            r->steps += (int64_t)(d.d->n / 8); /* each key is looked for among those before it */
            jx_step(r);
            jv_dict_set(&r->arena, d, eval(r, s, n->kids[i]), eval(r, s, n->kids[i + 1]));
        }
        return d;
    }
    case E_ATTR: {
        struct jv obj = eval(r, s, n->a);
        if (obj.k == JV_UNDEF)
            fail_undefined(r, obj);
        return jx_getattr(r, obj, n->name);
    }
    case E_ITEM: {
        struct jv obj = eval(r, s, n->a);
        if (obj.k == JV_UNDEF)
            fail_undefined(r, obj);
        return jx_getitem(r, obj, eval(r, s, n->b));
    }
    case E_SLICE: {
        struct jv obj = eval(r, s, n->a);
        if (obj.k == JV_UNDEF)
            fail_undefined(r, obj);
        struct jv lo = n->b ? eval(r, s, n->b) : jv_none(), hi = n->c ? eval(r, s, n->c) : jv_none();
        struct jv step = n->kids && n->kids[0] ? eval(r, s, n->kids[0]) : jv_none();
        return eval_slice(r, obj, lo, hi, step);
    }
    case E_CALL: {
        struct jv fn = eval(r, s, n->a);
        struct jx_args a;
        eval_args(r, s, n, &a);
        if (fn.k == JV_UNDEF) {
            if (n->a->kind == E_ATTR)
                jx_fail(&r->fault, "line %d: no method or callable '%s'", r->line, n->a->name);
            fail_undefined(r, fn);
        }
        return jx_call(r, fn, &a);
    }
    case E_FILTER: {
        struct jv v = n->a ? eval(r, s, n->a) : jv_undef(NULL);
        struct jx_args a;
        eval_args(r, s, n, &a);
        return jx_filter(r, n->name, v, &a);
    }
    case E_TEST: {
        struct jv v = eval(r, s, n->a);
        struct jx_args a;
        eval_args(r, s, n, &a);
        bool t = jx_test(r, n->name, v, &a);
        return jv_bool(n->negated ? !t : t);
    }
    case E_NEG:
    case E_POS: {
        struct jv v = eval(r, s, n->a);
        if (v.k == JV_INT && v.i == INT64_MIN && n->kind == E_NEG) /* Python's int would grow; ours stops */
            jx_fail(&r->fault, "line %d: integer overflow (past 64 bits)", r->line);
        if (v.k == JV_INT || v.k == JV_BOOL)
            return jv_int(n->kind == E_NEG ? -(v.k == JV_BOOL ? v.b : v.i) : (v.k == JV_BOOL ? v.b : v.i));
        if (v.k == JV_FLOAT)
            return jv_float(n->kind == E_NEG ? -v.f : v.f);
        if (v.k == JV_UNDEF)
            fail_undefined(r, v);
        jx_fail(&r->fault, "line %d: bad operand type for unary %c: '%s'", r->line, n->kind == E_NEG ? '-' : '+',
                jv_type_name(v));
    }
    case E_NOT: return jv_bool(!jv_truthy(eval(r, s, n->a)));
    case E_AND: {
        struct jv a = eval(r, s, n->a);
        return jv_truthy(a) ? eval(r, s, n->b) : a;
    }
    case E_OR: {
        struct jv a = eval(r, s, n->a);
        return jv_truthy(a) ? a : eval(r, s, n->b);
    }
    case E_BIN: return jx_binop(r, n->op, eval(r, s, n->a), eval(r, s, n->b));
    case E_CMP: { /* a chain (see parse_compare): false at the first link that fails */
        struct jv left = eval(r, s, n->a);
        for (const struct jx_node *k = n; k; k = k->c) {
            struct jv right = eval(r, s, k->b);
            if (!jx_compare(r, k->op, left, right))
                return jv_bool(false);
            left = right;
        }
        return jv_bool(true);
    }
    case E_COND:
        if (jv_truthy(eval(r, s, n->a)))
            return eval(r, s, n->b);
        return n->c ? eval(r, s, n->c) : jv_undef(NULL);
    default: jx_fail(&r->fault, "line %d: not an expression", n->line);
    }
}

/* ---- calls -------------------------------------------------------------------------- */

/* Runs body into a fresh buffer and returns what it printed. */
static struct jv capture(struct jx_render *r, struct jx_scope *s, const struct jx_node *body)
{
    struct jx_buf *saved = r->out;
    struct jx_buf b = {.arena = &r->arena, .limit = saved->limit};
    r->out = &b;
    exec_body(r, s, body);
    r->out = saved;
    return jv_str_borrow(&r->arena, b.p ? b.p : "", b.len);
}

struct jv jx_call_macro(struct jx_render *r, struct jv_func *fn, struct jx_args *a)
{
    const struct jx_node *m = fn->macro;
    if (++r->depth > r->opts->max_depth)
        jx_fail(&r->fault, "line %d: macros nested more than %d deep", r->line, r->opts->max_depth);
    struct jx_scope *s = scope_new(r, fn->closure);
    struct jv varargs = jv_list_new(&r->arena, 0);
    varargs.l->tuple = true; /* jinja2's varargs is a tuple: it prints as (1, 2) */
    struct jv kwargs = jv_dict_new(&r->arena);
    for (size_t i = 0; i < m->n_targets; i++) {
        struct jv v = jv_undef(m->targets[i]);
        bool set = false;
        if (i < a->n_pos) {
            v = a->pos[i];
            set = true;
        }
        for (size_t k = 0; k < a->n_kw; k++)
            if (!strcmp(a->kw_names[k], m->targets[i])) {
                v = a->kw[k];
                set = true;
            }
        if (!set && m->defaults && m->defaults[i])
            v = eval(r, s, m->defaults[i]);
        jx_scope_set(r, s, m->targets[i], v);
    }
    for (size_t i = m->n_targets; i < a->n_pos; i++)
        jv_list_push(&r->arena, varargs, a->pos[i]);
    for (size_t k = 0; k < a->n_kw; k++) {
        bool known = false;
        for (size_t i = 0; i < m->n_targets; i++)
            known |= !strcmp(a->kw_names[k], m->targets[i]);
        if (!known)
            jv_dict_set(&r->arena, kwargs, jv_cstr(&r->arena, a->kw_names[k]), a->kw[k]);
    }
    jx_scope_set(r, s, "varargs", varargs);
    jx_scope_set(r, s, "kwargs", kwargs);
    enum jx_ctrl saved_ctrl = r->ctrl;
    struct jv out = capture(r, s, m->body);
    r->ctrl = saved_ctrl;
    r->depth--;
    return out;
}

struct jv jx_call(struct jx_render *r, struct jv fn, struct jx_args *a)
{
    jx_step(r);
    if (fn.k != JV_FUNC)
        jx_fail(&r->fault, "line %d: '%s' object is not callable", r->line, jv_type_name(fn));
    switch (fn.fn->kind) {
    case JF_MACRO: return jx_call_macro(r, fn.fn, a);
    case JF_METHOD: return fn.fn->fn ? fn.fn->fn(r, fn.fn->self, a) : jx_call_method(r, fn.fn->self, fn.fn->name, a);
    default: return fn.fn->fn(r, jv_none(), a);
    }
}

/* ---- statements --------------------------------------------------------------------- */

static void assign_targets(struct jx_render *r, struct jx_scope *s, const char *const *targets, size_t n, struct jv v)
{
    if (n == 1) {
        jx_scope_set(r, s, targets[0], v);
        return;
    }
    if (v.k != JV_LIST)
        jx_fail(&r->fault, "line %d: cannot unpack a '%s' into %zu names", r->line, jv_type_name(v), n);
    if (v.l->n != n)
        jx_fail(&r->fault, "line %d: expected %zu values to unpack, got %zu", r->line, n, v.l->n);
    for (size_t i = 0; i < n; i++)
        jx_scope_set(r, s, targets[i], v.l->items[i]);
}

static void exec_for(struct jx_render *r, struct jx_scope *s, const struct jx_node *n)
{
    if (n->recursive)
        jx_fail(&r->fault, "line %d: recursive loops are not supported", n->line);
    struct jv items = jx_iterable(r, eval(r, s, n->a));
    struct jx_scope *ls = scope_new(r, s);
    if (n->b) { /* `for x in xs if cond`: filtered before loop.* is counted, as jinja2 does */
        struct jv kept = jv_list_new(&r->arena, items.l->n);
        for (size_t i = 0; i < items.l->n; i++) {
            jx_step(r);
            assign_targets(r, ls, n->targets, n->n_targets, items.l->items[i]);
            if (jv_truthy(eval(r, ls, n->b)))
                jv_list_push(&r->arena, kept, items.l->items[i]);
        }
        items = kept;
    }
    size_t len = items.l->n;
    if (!len) {
        if (n->c)
            exec_body(r, s, n->c);
        return;
    }
    struct jv loop = jv_dict_new(&r->arena);
    struct jx_arena *A = &r->arena;
    static const char *const keys[] = {"index", "index0", "revindex", "revindex0", "first", "last",
                                       "length", "previtem", "nextitem", "depth", "depth0"};
    struct jv *slot[11];
    for (size_t k = 0; k < 11; k++)
        jv_dict_set(A, loop, jv_cstr(A, keys[k]), jv_none());
    for (size_t k = 0; k < 11; k++) /* after the last insert: inserts move the items */
        slot[k] = jv_dict_find_str(loop, keys[k]);
    for (size_t i = 0; i < len; i++) {
        jx_step(r);
        /* jinja2 starts every iteration afresh: a `set` in one iteration is not seen by the
         * next (each reads the enclosing value again) */
        ls->n = 0;
        jx_scope_set(r, ls, "loop", loop);
        *slot[0] = jv_int((int64_t)i + 1);
        *slot[1] = jv_int((int64_t)i);
        *slot[2] = jv_int((int64_t)(len - i));
        *slot[3] = jv_int((int64_t)(len - i - 1));
        *slot[4] = jv_bool(i == 0);
        *slot[5] = jv_bool(i + 1 == len);
        *slot[6] = jv_int((int64_t)len);
        *slot[7] = i > 0 ? items.l->items[i - 1] : jv_undef("previtem");
        *slot[8] = i + 1 < len ? items.l->items[i + 1] : jv_undef("nextitem");
        *slot[9] = jv_int(1);
        *slot[10] = jv_int(0);
        assign_targets(r, ls, n->targets, n->n_targets, items.l->items[i]);
        exec_body(r, ls, n->body);
        if (r->ctrl == CTRL_BREAK) {
            r->ctrl = CTRL_NONE;
            break;
        }
        r->ctrl = CTRL_NONE;
    }
}

static void exec_set(struct jx_render *r, struct jx_scope *s, const struct jx_node *n)
{
    struct jv v = eval(r, s, n->a);
    if (n->attr) {
        struct jv ns = jx_scope_get(s, n->name);
        if (ns.k != JV_DICT || !ns.d->is_namespace)
            jx_fail(&r->fault, "line %d: cannot assign attribute on non-namespace object", n->line);
        jv_dict_set(&r->arena, ns, jv_cstr(&r->arena, n->attr), v);
        return;
    }
    if (n->n_targets)
        assign_targets(r, s, n->targets, n->n_targets, v);
}

static struct jv apply_filter_chain(struct jx_render *r, struct jx_scope *s, const struct jx_node *f, struct jv v)
{
    if (!f)
        return v;
    v = apply_filter_chain(r, s, f->a, v);
    struct jx_args a;
    eval_args(r, s, f, &a);
    return jx_filter(r, f->name, v, &a);
}

static void exec_node(struct jx_render *r, struct jx_scope *s, const struct jx_node *n)
{
    jx_step(r);
    r->line = n->line;
    switch (n->kind) {
    case N_BODY: exec_body(r, s, n); break;
    case N_TEXT: jx_buf_put(r->out, n->lit.s->p, n->lit.s->len); break;
    case N_OUTPUT: jv_write_str(r->out, eval(r, s, n->a), &r->fault); break;
    case N_IF: {
        size_t i = 0;
        for (; i + 1 < n->n_kids; i += 2)
            if (jv_truthy(eval(r, s, n->kids[i]))) {
                exec_body(r, s, n->kids[i + 1]);
                return;
            }
        if (n->c)
            exec_body(r, s, n->c);
        break;
    }
    case N_FOR: exec_for(r, s, n); break;
    case N_SET: exec_set(r, s, n); break;
    case N_SET_BLOCK: {
        struct jv v = capture(r, s, n->body);
        jx_scope_set(r, s, n->targets[0], apply_filter_chain(r, s, n->a, v));
        break;
    }
    case N_MACRO: {
        struct jv_func *fn = jx_alloc(&r->arena, sizeof *fn);
        *fn = (struct jv_func){.kind = JF_MACRO, .name = n->name, .macro = n, .closure = s};
        jx_scope_set(r, s, n->name, (struct jv){.k = JV_FUNC, .fn = fn});
        break;
    }
    case N_CALL_BLOCK: {
        /* {% call(params) m(args) %}body{% endcall %}: m runs with `caller` visible, a macro
         * whose params are the block's and whose body runs in the scope of the call site. */
        const struct jx_node *call = n->a;
        struct jv callee = eval(r, s, call->a);
        if (callee.k != JV_FUNC || callee.fn->kind != JF_MACRO)
            jx_fail(&r->fault, "line %d: a call block needs a macro", n->line);
        struct jx_args a;
        eval_args(r, s, call, &a);
        struct jx_node *caller_macro = jx_alloc(&r->arena, sizeof *caller_macro);
        *caller_macro = *n;
        caller_macro->kind = N_MACRO;
        struct jv_func *caller = jx_alloc(&r->arena, sizeof *caller);
        *caller = (struct jv_func){.kind = JF_MACRO, .name = "caller", .macro = caller_macro, .closure = s};
        struct jv_func *with_caller = jx_alloc(&r->arena, sizeof *with_caller);
        *with_caller = *callee.fn;
        with_caller->closure = scope_new(r, callee.fn->closure);
        jx_scope_set(r, with_caller->closure, "caller", (struct jv){.k = JV_FUNC, .fn = caller});
        struct jv out = jx_call_macro(r, with_caller, &a);
        jx_buf_put(r->out, out.s->p, out.s->len);
        break;
    }
    case N_FILTER_BLOCK: {
        struct jv v = apply_filter_chain(r, s, n->a, capture(r, s, n->body));
        jv_write_str(r->out, v, &r->fault);
        break;
    }
    case N_BREAK: r->ctrl = CTRL_BREAK; break;
    case N_CONTINUE: r->ctrl = CTRL_CONTINUE; break;
    default: jx_fail(&r->fault, "line %d: not a statement", n->line);
    }
}

static void exec_body(struct jx_render *r, struct jx_scope *s, const struct jx_node *body)
{
    for (size_t i = 0; i < body->n_kids && r->ctrl == CTRL_NONE; i++)
        exec_node(r, s, body->kids[i]);
}

/* ---- entry -------------------------------------------------------------------------- */

int jinja_render(const struct jinja_tmpl *t, const json_t *ctx, const struct jinja_opts *opts_in, char **out,
                 size_t *out_len, struct bw_err *err)
{
    struct jinja_opts opts = opts_in ? *opts_in : (struct jinja_opts){0};
    if (!opts.max_output) opts.max_output = DEFAULT_MAX_OUTPUT;
    if (!opts.max_memory) opts.max_memory = DEFAULT_MAX_MEMORY;
    if (!opts.max_steps) opts.max_steps = DEFAULT_MAX_STEPS;
    if (!opts.max_depth) opts.max_depth = DEFAULT_MAX_DEPTH;
    struct jx_render *r = calloc(1, sizeof *r);
    if (!r)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    r->arena.fault = &r->fault;
    r->arena.limit = opts.max_memory;
    r->opts = &opts;
    struct jx_buf *result = NULL;
    if (setjmp(r->fault.jb)) {
        int code = r->fault.code;
        bw_errf(err, code, "%s", r->fault.msg);
        jx_arena_free(&r->arena);
        free(r);
        return code;
    }
    result = jx_alloc(&r->arena, sizeof *result);
    result->arena = &r->arena;
    result->limit = opts.max_output;
    r->out = result;
    r->globals = scope_new(r, NULL);
    jx_install_globals(r, r->globals);
    if (json_is_object(ctx)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)ctx, k, v) jx_scope_set(r, r->globals, k, jv_from_json(&r->arena, v, false));
    }
    struct jx_scope *top = scope_new(r, r->globals);
    exec_body(r, top, t->root);
    char *s = malloc(result->len + 1);
    if (!s) {
        jx_arena_free(&r->arena);
        free(r);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    if (result->len)
        memcpy(s, result->p, result->len);
    s[result->len] = '\0';
    *out = s;
    *out_len = result->len;
    jx_arena_free(&r->arena);
    free(r);
    return BW_OK;
}
