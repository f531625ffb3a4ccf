/* jinja_int.h -- the parts of the Jinja renderer its files share: the arena, values, the
 * syntax tree and the render state. Not a public interface (jinja.h is).
 *
 * Files: jinja_lex.c (source -> tokens, jinja_lex.h), jinja_parse.c (tokens -> tree),
 * jinja_eval.c (running the tree), jinja_value.c (values, the arena, Python printing), and
 * the builtins: jinja_ops.c, jinja_methods.c, jinja_filters.c, jinja_tests.c,
 * jinja_globals.c, with their shared helpers in jinja_builtins.c.
 *
 * Memory: everything a parse makes lives in the template's arena; everything a render
 * makes lives in the render's arena, freed at once at the end. So errors can unwind with
 * longjmp from anywhere (jx_fail) without leaking, and values need no reference counts. */
#ifndef BELLOWS_JINJA_INT_H
#define BELLOWS_JINJA_INT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "template/jinja.h"

/* ---- errors: one jump target per parse or render ------------------------------------ */

struct jx_fault {
    jmp_buf jb;
    int code;          /* BW_EINVAL or BW_ENOMEM */
    char msg[256];
};

_Noreturn void jx_fail(struct jx_fault *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void jx_oom(struct jx_fault *f);

/* ---- arena ------------------------------------------------------------------------- */

struct jx_chunk;
struct jx_arena {
    struct jx_chunk *head;
    size_t used, limit;  /* bytes handed out, and the most allowed (0: no limit) */
    struct jx_fault *fault;
};

void *jx_alloc(struct jx_arena *a, size_t n);           /* zeroed, 16-aligned; fails through fault */
void *jx_grow(struct jx_arena *a, void *p, size_t old, size_t n); /* copy into a larger block */
char *jx_strndup(struct jx_arena *a, const char *s, size_t n);
void jx_arena_free(struct jx_arena *a);

/* ---- values ------------------------------------------------------------------------- */

enum jv_kind { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC };

struct jv_str { size_t len; const char *p; bool safe; /* jinja2's Markup: `+` escapes the other side */ };
struct jv_list { size_t n, cap; struct jv *items; bool tuple; };
struct jv_dict;
struct jv_func;

struct jv {
    enum jv_kind k;
    union {
        bool b;
        int64_t i;
        double f;
        struct jv_str *s;
        struct jv_list *l;
        struct jv_dict *d;
        struct jv_func *fn;
    };
    const char *undef_name; /* JV_UNDEF: what was missing, for error messages (may be NULL) */
};

struct jv_kv { struct jv key, val; };
struct jv_dict { size_t n, cap; struct jv_kv *items; bool is_namespace; };

struct jx_render;
struct jx_args;
typedef struct jv (*jx_builtin_fn)(struct jx_render *r, struct jv self, struct jx_args *a);

enum jv_func_kind { JF_BUILTIN, JF_MACRO, JF_METHOD };
struct jx_node;
struct jx_scope;
struct jv_func {
    enum jv_func_kind kind;
    const char *name;
    jx_builtin_fn fn;               /* JF_BUILTIN, JF_METHOD */
    struct jv self;                 /* JF_METHOD: the bound object */
    const struct jx_node *macro;    /* JF_MACRO */
    struct jx_scope *closure;       /* JF_MACRO: where it was defined */
};

/* Call arguments: positional and keyword, already evaluated. */
struct jx_args {
    size_t n_pos, n_kw;
    struct jv *pos;
    const char **kw_names;
    struct jv *kw;
};

static inline struct jv jv_undef(const char *name) { return (struct jv){.k = JV_UNDEF, .undef_name = name}; }
static inline struct jv jv_none(void) { return (struct jv){.k = JV_NONE}; }
static inline struct jv jv_bool(bool b) { return (struct jv){.k = JV_BOOL, .b = b}; }
static inline struct jv jv_int(int64_t i) { return (struct jv){.k = JV_INT, .i = i}; }
static inline struct jv jv_float(double f) { return (struct jv){.k = JV_FLOAT, .f = f}; }

struct jv jv_str(struct jx_arena *a, const char *p, size_t len);   /* copies */
struct jv jv_str_borrow(struct jx_arena *a, const char *p, size_t len); /* p outlives the render */
struct jv jv_cstr(struct jx_arena *a, const char *s);
struct jv jv_list_new(struct jx_arena *a, size_t cap);
void jv_list_push(struct jx_arena *a, struct jv list, struct jv item);
struct jv jv_dict_new(struct jx_arena *a);
struct jv *jv_dict_find(struct jv dict, struct jv key);            /* NULL when absent */
struct jv *jv_dict_find_str(struct jv dict, const char *key);
void jv_dict_set(struct jx_arena *a, struct jv dict, struct jv key, struct jv val);
struct jv jv_from_json(struct jx_arena *a, const json_t *j, bool copy_strings); /* else borrowed */

bool jv_truthy(struct jv v);
bool jv_equal(struct jv a, struct jv b);
bool jv_is_number(struct jv v);   /* int, float or bool (Python's bool is an int) */
double jv_as_double(struct jv v);
const char *jv_type_name(struct jv v); /* Python's: 'str', 'int', 'list', 'dict', ... */

/* ---- text builder ------------------------------------------------------------------- */

struct jx_buf {
    char *p;
    size_t len, cap;
    size_t limit;              /* most bytes allowed (0: none) */
    struct jx_arena *arena;    /* storage comes from here */
};
void jx_buf_put(struct jx_buf *b, const char *s, size_t n);
void jx_buf_putc(struct jx_buf *b, char c);
void jx_buf_printf(struct jx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* str(v) and repr(v) as Python writes them, appended to b. */
void jv_write_str(struct jx_buf *b, struct jv v, struct jx_fault *f);
void jv_write_repr(struct jx_buf *b, struct jv v, struct jx_fault *f);
/* json.dumps(v, ensure_ascii=False, indent=indent (< 0: None), separators, sort_keys). */
void jv_write_json(struct jx_buf *b, struct jv v, int indent, const char *item_sep, const char *key_sep,
                   bool sort_keys, struct jx_fault *f, int depth);
void jx_write_float(struct jx_buf *b, double d);
struct jv jv_to_str(struct jx_arena *a, struct jv v, struct jx_fault *f); /* str(v) as a value */

/* ---- syntax tree -------------------------------------------------------------------- */

enum jx_node_kind {
    /* statements */
    N_BODY, N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_MACRO, N_CALL_BLOCK, N_FILTER_BLOCK,
    N_BREAK, N_CONTINUE,
    /* expressions */
    E_LIT, E_NAME, E_LIST, E_TUPLE, E_DICT, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS,
    E_NOT, E_AND, E_OR, E_BIN, E_CMP, E_COND,
};

enum jx_op { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
             OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

struct jx_node {
    enum jx_node_kind kind;
    int line;
    const char *name;            /* E_NAME, E_ATTR, E_FILTER, E_TEST, N_MACRO, N_SET (simple) */
    enum jx_op op;
    bool negated;                /* E_TEST: `is not` */
    struct jv lit;               /* E_LIT; N_TEXT (a string) */
    struct jx_node *a, *b, *c;   /* operands; N_FOR: a=iter, b=filter, c=else body */
    struct jx_node **kids;       /* N_BODY statements; E_LIST/E_TUPLE items; E_DICT k,v pairs;
                                    call/filter/test positional args; N_IF conditions+bodies */
    size_t n_kids;
    const char **kw_names;       /* call/filter/test keyword args ... */
    struct jx_node **kw;         /* ... and their values */
    size_t n_kw;
    const char **targets;        /* N_FOR / N_SET: names assigned; N_MACRO / call block: params */
    struct jx_node **defaults;   /* N_MACRO: default value per param (NULL: none) */
    size_t n_targets;
    const char *attr;            /* N_SET ns.attr = ... : the attribute (name is the object) */
    struct jx_node *body;        /* N_FOR, N_MACRO, N_CALL_BLOCK, N_FILTER_BLOCK, N_SET_BLOCK */
    bool recursive;              /* N_FOR */
};

struct jinja_tmpl {
    struct jx_arena arena;
    struct jx_fault fault;
    struct jx_node *root;
};

/* ---- render state ------------------------------------------------------------------- */

struct jx_var { const char *name; struct jv v; };
struct jx_scope {
    struct jx_scope *parent;
    struct jx_var *vars;
    size_t n, cap;
};

enum jx_ctrl { CTRL_NONE, CTRL_BREAK, CTRL_CONTINUE };

struct jx_render {
    struct jx_arena arena;
    struct jx_fault fault;
    const struct jinja_opts *opts;
    struct jx_buf *out;          /* where output goes now (macros and set blocks swap it) */
    struct jx_scope *globals;
    int64_t steps;
    int depth;
    enum jx_ctrl ctrl;
    int line;                    /* of the statement being run, for error messages */
};

void jx_step(struct jx_render *r);                   /* counts a unit of work; fails past the limit */
struct jv jx_call(struct jx_render *r, struct jv fn, struct jx_args *a);
struct jv jx_call_macro(struct jx_render *r, struct jv_func *fn, struct jx_args *a);
struct jv jx_scope_get(struct jx_scope *s, const char *name);
void jx_scope_set(struct jx_render *r, struct jx_scope *s, const char *name, struct jv v);

/* ---- builtins: what a template can call --------------------------------------------- */

/* Shared by the builtin files (jinja_builtins.c). */
#define NOPOS ((size_t)-1) /* jx_arg's pos when an argument is keyword-only */
struct jv jx_arg(struct jx_args *a, size_t pos, const char *kw, struct jv dflt); /* by keyword, else position */
struct jv jx_iterable(struct jx_render *r, struct jv v);  /* a list to iterate: dict keys, str chars */
void jx_charge(struct jx_render *r, size_t bytes, size_t items); /* steps for work on a large input */
size_t jx_value_size(struct jv v, size_t *items);   /* a string's bytes; *items: a list's or dict's */
struct jv jx_need_str(struct jx_render *r, struct jv v, const char *what); /* v, or fails naming what */
int64_t jx_need_int(struct jx_render *r, struct jv v, const char *what);   /* an int or bool, or fails */
size_t jx_utf8_len(const char *p, size_t n);                /* code points in n bytes */
size_t jx_utf8_offset(const char *p, size_t n, size_t cp);  /* byte offset of code point cp, clamped */
static inline int64_t jx_as_int(struct jv v) { return v.k == JV_BOOL ? v.b : v.i; } /* of an int or bool */
static inline struct jv jx_str_of(struct jx_render *r, struct jv v) { return jv_to_str(&r->arena, v, &r->fault); }

/* Operators (jinja_ops.c). */
struct jv jx_binop(struct jx_render *r, enum jx_op op, struct jv a, struct jv b);
bool jx_compare(struct jx_render *r, enum jx_op op, struct jv a, struct jv b);
bool jx_contains(struct jx_render *r, struct jv container, struct jv item); /* item in container */
int jx_order(struct jx_render *r, struct jv a, struct jv b); /* <0, 0, >0 as Python orders them */
struct jv jx_percent_format(struct jx_render *r, struct jv fmt, struct jv args); /* fmt % args */
struct jv jx_html_escape(struct jx_render *r, struct jv s); /* Markup; a safe string comes back as is */
struct jv jx_concat_str(struct jx_render *r, struct jv a, struct jv b);
struct jv jx_float_to_int(struct jx_render *r, double d, struct jv dflt); /* int(d); nan gives dflt */

/* Methods, attributes and items (jinja_methods.c). */
struct jv jx_getattr(struct jx_render *r, struct jv obj, const char *name); /* obj.name */
struct jv jx_getitem(struct jx_render *r, struct jv obj, struct jv key);     /* obj[key] */
struct jv jx_call_method(struct jx_render *r, struct jv self, const char *name, struct jx_args *a);
struct jv jx_str_method(struct jx_render *r, const char *m, struct jv s, struct jx_args *a); /* s.m(...) */
enum jx_casing { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_SWAP };
struct jv jx_change_case(struct jx_render *r, struct jv s, enum jx_casing how);
struct jv jx_splitlines(struct jx_render *r, struct jv s, bool keepends);
struct jv jx_join_items(struct jx_render *r, struct jv sep, struct jv items, bool convert); /* sep.join() */
struct jv jx_dict_items(struct jx_render *r, struct jv d); /* d.items(): (key, value) tuples */
extern const char *const jx_dict_methods[];                 /* NULL-ended */
const char *jx_find_name(const char *const *names, const char *name); /* in a NULL-ended list, or NULL */

/* Filters (jinja_filters.c), tests (jinja_tests.c), globals (jinja_globals.c). */
struct jv jx_filter(struct jx_render *r, const char *name, struct jv v, struct jx_args *a);
bool jx_test(struct jx_render *r, const char *name, struct jv v, struct jx_args *a);
void jx_install_globals(struct jx_render *r, struct jx_scope *s);

/* parse (jinja_parse.c) */
struct jx_node *jx_parse(struct jinja_tmpl *t, const char *src, size_t len);

#endif
