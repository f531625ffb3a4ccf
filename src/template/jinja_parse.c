/* jinja_parse.c -- tokens -> syntax tree (the tokens come from jinja_lex.c); jinja_parse()
 * and jinja_free() of jinja.h.
 *
 * The parser follows jinja2's grammar and precedence (jinja2/parser.py): conditional
 * expression < or < and < not < comparisons < + - < ~ < * / // % < ** < unary minus <
 * primary with postfix (. [] ()) and filters/tests (| is). */
#define _GNU_SOURCE
#include "template/jinja_lex.h"

#include <stdlib.h>
#include <string.h>

/* ---- parser ------------------------------------------------------------------------- */

struct parser {
    struct jinja_tmpl *t;
    struct tok *toks;
    size_t n, i;
    int depth;
};

static struct tok *cur(struct parser *ps) { return &ps->toks[ps->i]; }
static struct tok *peek(struct parser *ps, size_t k) { return &ps->toks[ps->i + k < ps->n ? ps->i + k : ps->n - 1]; }

static bool tok_is(const struct tok *tk, enum tok_kind k, const char *s)
{
    return tk->k == k && (!s || (tk->n == strlen(s) && !memcmp(tk->p, s, tk->n)));
}
static bool is_op(struct parser *ps, const char *s) { return tok_is(cur(ps), T_OP, s); }
static bool is_name(struct parser *ps, const char *s) { return tok_is(cur(ps), T_NAME, s); }

static _Noreturn void perr(struct parser *ps, const char *what)
{
    struct tok *tk = cur(ps);
    const char *got = tk->k == T_EOF ? "end of template" : tk->k == T_VAR_END ? "'}}'" : tk->k == T_BLOCK_END ? "'%}'" : NULL;
    if (got)
        jx_fail(&ps->t->fault, "line %d: %s, got %s", tk->line, what, got);
    jx_fail(&ps->t->fault, "line %d: %s, got '%.*s'", tk->line, what, (int)(tk->n > 40 ? 40 : tk->n), tk->p ? tk->p : "");
}

static void expect_op(struct parser *ps, const char *s)
{
    if (!is_op(ps, s)) {
        char what[32];
        snprintf(what, sizeof what, "expected '%s'", s);
        perr(ps, what);
    }
    ps->i++;
}

static const char *name_dup(struct parser *ps, const struct tok *tk) { return jx_strndup(&ps->t->arena, tk->p, tk->n); }

static const char *expect_name(struct parser *ps)
{
    if (cur(ps)->k != T_NAME)
        perr(ps, "expected a name");
    return name_dup(ps, &ps->toks[ps->i++]);
}

static struct jx_node *node(struct parser *ps, enum jx_node_kind k)
{
    struct jx_node *n = jx_alloc(&ps->t->arena, sizeof *n);
    n->kind = k;
    n->line = cur(ps)->line;
    return n;
}

/* Growable arrays of node pointers / names in the parse arena. */
static void add_kid(struct parser *ps, struct jx_node ***arr, size_t *n, struct jx_node *k)
{
    if ((*n & (*n - 1)) == 0) /* at 0, 1, 2, 4, ...: double */
        *arr = jx_grow(&ps->t->arena, *arr, *n * sizeof **arr, (*n ? *n * 2 : 1) * sizeof **arr);
    (*arr)[(*n)++] = k;
}
static void add_name(struct parser *ps, const char ***arr, size_t *n, const char *s)
{
    if ((*n & (*n - 1)) == 0)
        *arr = jx_grow(&ps->t->arena, *arr, *n * sizeof **arr, (*n ? *n * 2 : 1) * sizeof **arr);
    (*arr)[(*n)++] = s;
}

static struct jx_node *parse_expr(struct parser *ps);
static struct jx_node *parse_or(struct parser *ps);
static struct jx_node *parse_unary(struct parser *ps, bool with_filter);

static void enter(struct parser *ps)
{
    if (++ps->depth > MAX_PARSE_DEPTH)
        jx_fail(&ps->t->fault, "line %d: the template is nested too deeply", cur(ps)->line);
}

/* One more link of a left-nested chain (a + b + c, x|f|g, a.b.c, f()()): the tree gets one
 * level deeper and eval recurses through each, so links count against the depth limit too
 * (without this a long chain parsed fine and then overflowed the stack while rendering).
 * The caller gives them back with ps->depth -= links when the chain ends. */
static void chain(struct parser *ps, int *links)
{
    enter(ps);
    (*links)++;
}

/* (args) of a call, filter or test: positional then keyword. The '(' is current. */
static void parse_args(struct parser *ps, struct jx_node *n)
{
    expect_op(ps, "(");
    while (!is_op(ps, ")")) {
        if (cur(ps)->k == T_NAME && tok_is(peek(ps, 1), T_OP, "=")) {
            const char *k = expect_name(ps);
            ps->i++;
            size_t nk = n->n_kw;
            add_name(ps, &n->kw_names, &nk, k);
            add_kid(ps, &n->kw, &n->n_kw, parse_expr(ps));
        } else {
            if (is_op(ps, "*") || is_op(ps, "**"))
                perr(ps, "*args and **kwargs are not supported");
            add_kid(ps, &n->kids, &n->n_kids, parse_expr(ps));
        }
        if (!is_op(ps, ","))
            break;
        ps->i++;
    }
    expect_op(ps, ")");
}

static struct jx_node *parse_primary(struct parser *ps)
{
    enter(ps);
    struct tok *tk = cur(ps);
    struct jx_node *n;
    if (tk->k == T_NAME) {
        n = node(ps, E_LIT);
        if (tok_is(tk, T_NAME, "true") || tok_is(tk, T_NAME, "True"))
            n->lit = jv_bool(true);
        else if (tok_is(tk, T_NAME, "false") || tok_is(tk, T_NAME, "False"))
            n->lit = jv_bool(false);
        else if (tok_is(tk, T_NAME, "none") || tok_is(tk, T_NAME, "None"))
            n->lit = jv_none();
        else {
            n->kind = E_NAME;
            n->name = name_dup(ps, tk);
        }
        ps->i++;
    } else if (tk->k == T_STRING) {
        /* adjacent literals concatenate, as in Python */
        size_t total = 0, j = ps->i;
        for (; ps->toks[j].k == T_STRING; j++)
            total += ps->toks[j].n;
        char *s = jx_alloc(&ps->t->arena, total + 1);
        size_t off = 0;
        n = node(ps, E_LIT);
        for (; ps->i < j; ps->i++) {
            memcpy(s + off, ps->toks[ps->i].p, ps->toks[ps->i].n);
            off += ps->toks[ps->i].n;
        }
        n->lit = jv_str_borrow(&ps->t->arena, s, total);
    } else if (tk->k == T_INT || tk->k == T_FLOAT) {
        n = node(ps, E_LIT);
        n->lit = tk->k == T_INT ? jv_int(tk->i) : jv_float(tk->f);
        ps->i++;
    } else if (is_op(ps, "(")) {
        ps->i++;
        n = node(ps, E_TUPLE);
        bool tuple = is_op(ps, ")");
        while (!is_op(ps, ")")) {
            add_kid(ps, &n->kids, &n->n_kids, parse_expr(ps));
            if (!is_op(ps, ","))
                break;
            tuple = true;
            ps->i++;
        }
        expect_op(ps, ")");
        if (!tuple)
            n = n->kids[0];
    } else if (is_op(ps, "[")) {
        ps->i++;
        n = node(ps, E_LIST);
        while (!is_op(ps, "]")) {
            add_kid(ps, &n->kids, &n->n_kids, parse_expr(ps));
            if (!is_op(ps, ","))
                break;
            ps->i++;
        }
        expect_op(ps, "]");
    } else if (is_op(ps, "{")) {
        ps->i++;
        n = node(ps, E_DICT);
        while (!is_op(ps, "}")) {
            add_kid(ps, &n->kids, &n->n_kids, parse_expr(ps));
            expect_op(ps, ":");
            add_kid(ps, &n->kids, &n->n_kids, parse_expr(ps));
            if (!is_op(ps, ","))
                break;
            ps->i++;
        }
        expect_op(ps, "}");
    } else {
        perr(ps, "unexpected token");
    }
    ps->depth--;
    return n;
}

static struct jx_node *parse_subscript(struct parser *ps, struct jx_node *obj)
{
    expect_op(ps, "[");
    struct jx_node *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    for (;;) {
        if (!is_op(ps, ":") && !is_op(ps, "]"))
            parts[k] = parse_expr(ps);
        if (is_op(ps, ":") && k < 2) {
            slice = true;
            k++;
            ps->i++;
            continue;
        }
        break;
    }
    expect_op(ps, "]");
    struct jx_node *n = node(ps, slice ? E_SLICE : E_ITEM);
    n->a = obj;
    if (slice) {
        n->b = parts[0];
        n->c = parts[1];
        n->kids = jx_alloc(&ps->t->arena, sizeof *n->kids);
        n->kids[0] = parts[2];
        n->n_kids = 0; /* the step lives in kids[0], not as an argument */
    } else {
        if (!parts[0])
            perr(ps, "expected an index");
        n->b = parts[0];
    }
    return n;
}

static struct jx_node *parse_postfix(struct parser *ps, struct jx_node *n)
{
    for (int links = 0;; chain(ps, &links)) {
        if (is_op(ps, ".")) {
            ps->i++;
            struct jx_node *a;
            if (cur(ps)->k == T_INT) { /* x.0 is x[0] */
                a = node(ps, E_ITEM);
                a->b = node(ps, E_LIT);
                a->b->lit = jv_int(cur(ps)->i);
                ps->i++;
            } else {
                a = node(ps, E_ATTR);
                a->name = expect_name(ps);
            }
            a->a = n;
            n = a;
        } else if (is_op(ps, "[")) {
            n = parse_subscript(ps, n);
        } else if (is_op(ps, "(")) {
            struct jx_node *c = node(ps, E_CALL);
            c->a = n;
            parse_args(ps, c);
            n = c;
        } else {
            ps->depth -= links;
            return n;
        }
    }
}

static struct jx_node *parse_filter_expr(struct parser *ps, struct jx_node *n)
{
    for (int links = 0;; chain(ps, &links)) {
        if (is_op(ps, "|")) {
            ps->i++;
            struct jx_node *f = node(ps, E_FILTER);
            f->name = expect_name(ps);
            while (is_op(ps, ".")) { /* dotted filter names are not used; keep the last part */
                ps->i++;
                f->name = expect_name(ps);
            }
            f->a = n;
            if (is_op(ps, "("))
                parse_args(ps, f);
            n = f;
        } else if (is_name(ps, "is")) {
            ps->i++;
            struct jx_node *t = node(ps, E_TEST);
            if (is_name(ps, "not")) {
                t->negated = true;
                ps->i++;
            }
            t->name = expect_name(ps);
            t->a = n;
            struct tok *tk = cur(ps);
            if (is_op(ps, "(")) {
                parse_args(ps, t);
            } else if ((tk->k == T_NAME || tk->k == T_STRING || tk->k == T_INT || tk->k == T_FLOAT || is_op(ps, "[") ||
                        is_op(ps, "{")) &&
                       !is_name(ps, "else") && !is_name(ps, "or") && !is_name(ps, "and") && !is_name(ps, "if") &&
                       !is_name(ps, "is") && !is_name(ps, "in") && !is_name(ps, "not")) {
                add_kid(ps, &t->kids, &t->n_kids, parse_postfix(ps, parse_primary(ps)));
            }
            n = t;
        } else if (is_op(ps, "(")) {
            struct jx_node *c = node(ps, E_CALL);
            c->a = n;
            parse_args(ps, c);
            n = c;
        } else {
            ps->depth -= links;
            return n;
        }
    }
}

static struct jx_node *parse_unary(struct parser *ps, bool with_filter)
{
    enter(ps);
    struct jx_node *n;
    if (is_op(ps, "-") || is_op(ps, "+")) {
        n = node(ps, is_op(ps, "-") ? E_NEG : E_POS);
        ps->i++;
        n->a = parse_unary(ps, false);
    } else {
        n = parse_postfix(ps, parse_primary(ps));
    }
    if (with_filter)
        n = parse_filter_expr(ps, n);
    ps->depth--;
    return n;
}

static struct jx_node *binop(struct parser *ps, enum jx_node_kind k, enum jx_op op, struct jx_node *a, struct jx_node *b)
{
    struct jx_node *n = node(ps, k);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static struct jx_node *parse_pow(struct parser *ps)
{
    struct jx_node *n = parse_unary(ps, true);
    int links = 0;
    for (; is_op(ps, "**"); chain(ps, &links)) {
        ps->i++;
        n = binop(ps, E_BIN, OP_POW, n, parse_unary(ps, true));
    }
    ps->depth -= links;
    return n;
}

static struct jx_node *parse_math2(struct parser *ps)
{
    struct jx_node *n = parse_pow(ps);
    for (int links = 0;; chain(ps, &links)) {
        enum jx_op op;
        if (is_op(ps, "*")) op = OP_MUL;
        else if (is_op(ps, "/")) op = OP_DIV;
        else if (is_op(ps, "//")) op = OP_FLOORDIV;
        else if (is_op(ps, "%")) op = OP_MOD;
        else {
            ps->depth -= links;
            return n;
        }
        ps->i++;
        n = binop(ps, E_BIN, op, n, parse_pow(ps));
    }
}

static struct jx_node *parse_concat(struct parser *ps)
{
    struct jx_node *n = parse_math2(ps);
    int links = 0;
    for (; is_op(ps, "~"); chain(ps, &links)) {
        ps->i++;
        n = binop(ps, E_BIN, OP_CONCAT, n, parse_math2(ps));
    }
    ps->depth -= links;
    return n;
}

static struct jx_node *parse_math1(struct parser *ps)
{
    struct jx_node *n = parse_concat(ps);
    for (int links = 0;; chain(ps, &links)) {
        enum jx_op op;
        if (is_op(ps, "+")) op = OP_ADD;
        else if (is_op(ps, "-")) op = OP_SUB;
        else {
            ps->depth -= links;
            return n;
        }
        ps->i++;
        n = binop(ps, E_BIN, op, n, parse_concat(ps));
    }
}

/* Comparisons chain as in Python: `a < b < c` is `a < b and b < c` with b evaluated once.
 * The first E_CMP holds a and b; each further one (a = NULL) hangs off the previous one's c
 * with its operator and right operand. */
static struct jx_node *parse_compare(struct parser *ps)
{
    struct jx_node *n = parse_math1(ps), *last = NULL;
    for (int links = 0;; chain(ps, &links)) {
        enum jx_op op;
        if (is_op(ps, "==")) op = OP_EQ;
        else if (is_op(ps, "!=")) op = OP_NE;
        else if (is_op(ps, "<")) op = OP_LT;
        else if (is_op(ps, "<=")) op = OP_LE;
        else if (is_op(ps, ">")) op = OP_GT;
        else if (is_op(ps, ">=")) op = OP_GE;
        else if (is_name(ps, "in")) op = OP_IN;
        else if (is_name(ps, "not") && tok_is(peek(ps, 1), T_NAME, "in")) {
            op = OP_NOTIN;
            ps->i++;
        } else {
            ps->depth -= links;
            return n;
        }
        ps->i++;
        struct jx_node *rhs = parse_math1(ps);
        if (!last)
            n = last = binop(ps, E_CMP, op, n, rhs);
        else
            last = last->c = binop(ps, E_CMP, op, NULL, rhs);
    }
}

static struct jx_node *parse_not(struct parser *ps)
{
    if (is_name(ps, "not")) {
        enter(ps);
        struct jx_node *n = node(ps, E_NOT);
        ps->i++;
        n->a = parse_not(ps);
        ps->depth--;
        return n;
    }
    return parse_compare(ps);
}

static struct jx_node *parse_and(struct parser *ps)
{
    struct jx_node *n = parse_not(ps);
    int links = 0;
    for (; is_name(ps, "and"); chain(ps, &links)) {
        ps->i++;
        n = binop(ps, E_AND, OP_ADD, n, parse_not(ps));
    }
    ps->depth -= links;
    return n;
}

static struct jx_node *parse_or(struct parser *ps)
{
    struct jx_node *n = parse_and(ps);
    int links = 0;
    for (; is_name(ps, "or"); chain(ps, &links)) {
        ps->i++;
        n = binop(ps, E_OR, OP_ADD, n, parse_and(ps));
    }
    ps->depth -= links;
    return n;
}

static struct jx_node *parse_expr(struct parser *ps)
{
    enter(ps);
    struct jx_node *n = parse_or(ps);
    int links = 0;
    for (; is_name(ps, "if"); chain(ps, &links)) {
        ps->i++;
        struct jx_node *c = node(ps, E_COND);
        c->a = parse_or(ps); /* condition */
        c->b = n;            /* value when true */
        if (is_name(ps, "else")) {
            ps->i++;
            c->c = parse_expr(ps);
        }
        n = c;
    }
    ps->depth -= links + 1;
    return n;
}

/* `a` or `a, b` (an implicit tuple), as in `{% set x = 1, 2 %}`. */
static struct jx_node *parse_tuple_expr(struct parser *ps, bool condexpr)
{
    struct jx_node *first = condexpr ? parse_expr(ps) : parse_or(ps);
    if (!is_op(ps, ","))
        return first;
    struct jx_node *t = node(ps, E_TUPLE);
    add_kid(ps, &t->kids, &t->n_kids, first);
    while (is_op(ps, ",")) {
        ps->i++;
        if (cur(ps)->k == T_BLOCK_END || cur(ps)->k == T_VAR_END || is_name(ps, "if"))
            break;
        add_kid(ps, &t->kids, &t->n_kids, condexpr ? parse_expr(ps) : parse_or(ps));
    }
    return t;
}

/* ---- statements --------------------------------------------------------------------- */

static void expect_block_end(struct parser *ps)
{
    if (cur(ps)->k != T_BLOCK_END)
        perr(ps, "expected the end of the statement");
    ps->i++;
}

/* Parses statements until a block tag whose first word is one of ends ("endif elif else");
 * returns that word's index, leaving the parser after the word. */
static struct jx_node *parse_body(struct parser *ps, const char *const *ends, int *which);

static struct jx_node *parse_if(struct parser *ps)
{
    struct jx_node *n = node(ps, N_IF);
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    for (;;) {
        add_kid(ps, &n->kids, &n->n_kids, parse_tuple_expr(ps, true));
        expect_block_end(ps);
        int w;
        add_kid(ps, &n->kids, &n->n_kids, parse_body(ps, ends, &w));
        if (w == 0)
            continue;
        if (w == 1) {
            expect_block_end(ps);
            static const char *const end_only[] = {"endif", NULL};
            n->c = parse_body(ps, end_only, &w);
        }
        expect_block_end(ps);
        return n;
    }
}

static void parse_targets(struct parser *ps, struct jx_node *n)
{
    bool paren = is_op(ps, "(");
    if (paren)
        ps->i++;
    add_name(ps, &n->targets, &n->n_targets, expect_name(ps));
    while (is_op(ps, ",")) {
        ps->i++;
        add_name(ps, &n->targets, &n->n_targets, expect_name(ps));
    }
    if (paren)
        expect_op(ps, ")");
}

static struct jx_node *parse_for(struct parser *ps)
{
    struct jx_node *n = node(ps, N_FOR);
    parse_targets(ps, n);
    if (!is_name(ps, "in"))
        perr(ps, "expected 'in'");
    ps->i++;
    n->a = parse_tuple_expr(ps, false);
    if (is_name(ps, "if")) {
        ps->i++;
        n->b = parse_expr(ps);
    }
    if (is_name(ps, "recursive")) {
        ps->i++;
        n->recursive = true;
    }
    expect_block_end(ps);
    static const char *const ends[] = {"else", "endfor", NULL};
    int w;
    n->body = parse_body(ps, ends, &w);
    if (w == 0) {
        expect_block_end(ps);
        static const char *const end_only[] = {"endfor", NULL};
        n->c = parse_body(ps, end_only, &w);
    }
    expect_block_end(ps);
    return n;
}

static struct jx_node *parse_set(struct parser *ps)
{
    struct jx_node *n = node(ps, N_SET);
    const char *first = expect_name(ps);
    if (is_op(ps, ".")) {
        ps->i++;
        n->name = first;
        n->attr = expect_name(ps);
    } else {
        add_name(ps, &n->targets, &n->n_targets, first);
        while (is_op(ps, ",")) {
            ps->i++;
            add_name(ps, &n->targets, &n->n_targets, expect_name(ps));
        }
    }
    if (is_op(ps, "=")) {
        ps->i++;
        n->a = parse_tuple_expr(ps, true);
        expect_block_end(ps);
        return n;
    }
    /* {% set x %}...{% endset %}, optionally with filters: {% set x | trim %} */
    if (n->attr || n->n_targets != 1)
        perr(ps, "expected '='");
    n->kind = N_SET_BLOCK;
    struct jx_node *chain = NULL;
    while (is_op(ps, "|")) {
        ps->i++;
        struct jx_node *f = node(ps, E_FILTER);
        f->name = expect_name(ps);
        if (is_op(ps, "("))
            parse_args(ps, f);
        f->a = chain;
        chain = f;
    }
    n->a = chain;
    expect_block_end(ps);
    static const char *const ends[] = {"endset", NULL};
    int w;
    n->body = parse_body(ps, ends, &w);
    expect_block_end(ps);
    return n;
}

static void parse_params(struct parser *ps, struct jx_node *n)
{
    expect_op(ps, "(");
    while (!is_op(ps, ")")) {
        add_name(ps, &n->targets, &n->n_targets, expect_name(ps));
        struct jx_node *dflt = NULL;
        if (is_op(ps, "=")) {
            ps->i++;
            dflt = parse_expr(ps);
        }
        size_t nd = n->n_targets - 1;
        add_kid(ps, &n->defaults, &nd, dflt);
        if (!is_op(ps, ","))
            break;
        ps->i++;
    }
    expect_op(ps, ")");
}

static struct jx_node *parse_macro(struct parser *ps)
{
    struct jx_node *n = node(ps, N_MACRO);
    n->name = expect_name(ps);
    parse_params(ps, n);
    expect_block_end(ps);
    static const char *const ends[] = {"endmacro", NULL};
    int w;
    n->body = parse_body(ps, ends, &w);
    expect_block_end(ps);
    return n;
}

static struct jx_node *parse_call_block(struct parser *ps)
{
    struct jx_node *n = node(ps, N_CALL_BLOCK);
    if (is_op(ps, "("))
        parse_params(ps, n);
    n->a = parse_expr(ps);
    if (n->a->kind != E_CALL)
        perr(ps, "expected a macro call");
    expect_block_end(ps);
    static const char *const ends[] = {"endcall", NULL};
    int w;
    n->body = parse_body(ps, ends, &w);
    expect_block_end(ps);
    return n;
}

static struct jx_node *parse_filter_block(struct parser *ps)
{
    struct jx_node *n = node(ps, N_FILTER_BLOCK);
    struct jx_node *chain = NULL;
    do {
        if (is_op(ps, "|"))
            ps->i++;
        struct jx_node *f = node(ps, E_FILTER);
        f->name = expect_name(ps);
        if (is_op(ps, "("))
            parse_args(ps, f);
        f->a = chain;
        chain = f;
    } while (is_op(ps, "|"));
    n->a = chain;
    expect_block_end(ps);
    static const char *const ends[] = {"endfilter", NULL};
    int w;
    n->body = parse_body(ps, ends, &w);
    expect_block_end(ps);
    return n;
}

static struct jx_node *parse_statement_in(struct parser *ps);

/* Blocks nest by recursion (if in for in macro ...): their depth counts against the same
 * limit as expressions, so a template of thousands of nested blocks fails cleanly instead
 * of overflowing the stack here or while rendering. */
static struct jx_node *parse_statement(struct parser *ps)
{
    enter(ps);
    struct jx_node *n = parse_statement_in(ps);
    ps->depth--;
    return n;
}

static struct jx_node *parse_statement_in(struct parser *ps)
{
    struct tok *tk = cur(ps);
    if (tk->k != T_NAME)
        perr(ps, "expected a statement");
    ps->i++;
    if (tok_is(tk, T_NAME, "if")) return parse_if(ps);
    if (tok_is(tk, T_NAME, "for")) return parse_for(ps);
    if (tok_is(tk, T_NAME, "set")) return parse_set(ps);
    if (tok_is(tk, T_NAME, "macro")) return parse_macro(ps);
    if (tok_is(tk, T_NAME, "call")) return parse_call_block(ps);
    if (tok_is(tk, T_NAME, "filter")) return parse_filter_block(ps);
    if (tok_is(tk, T_NAME, "break") || tok_is(tk, T_NAME, "continue")) {
        struct jx_node *n = node(ps, tok_is(tk, T_NAME, "break") ? N_BREAK : N_CONTINUE);
        expect_block_end(ps);
        return n;
    }
    if (tok_is(tk, T_NAME, "do")) { /* jinja2.ext.do: evaluate, print nothing */
        struct jx_node *n = node(ps, N_SET);
        n->a = parse_tuple_expr(ps, true);
        expect_block_end(ps);
        return n;
    }
    if (tok_is(tk, T_NAME, "generation")) { /* transformers' AssistantTracker: renders its body */
        expect_block_end(ps);
        static const char *const ends[] = {"endgeneration", NULL};
        int w;
        struct jx_node *body = parse_body(ps, ends, &w);
        expect_block_end(ps);
        return body;
    }
    ps->i--;
    jx_fail(&ps->t->fault, "line %d: unknown statement '%.*s'", tk->line, (int)tk->n, tk->p);
}

static struct jx_node *parse_body(struct parser *ps, const char *const *ends, int *which)
{
    struct jx_node *body = node(ps, N_BODY);
    for (;;) {
        struct tok *tk = cur(ps);
        if (tk->k == T_EOF) {
            if (!ends) {
                *which = -1;
                return body;
            }
            jx_fail(&ps->t->fault, "line %d: unexpected end of template, expected '%s'", tk->line, ends[0]);
        }
        if (tk->k == T_TEXT) {
            struct jx_node *t = node(ps, N_TEXT);
            t->lit = jv_str_borrow(&ps->t->arena, tk->p, tk->n);
            add_kid(ps, &body->kids, &body->n_kids, t);
            ps->i++;
        } else if (tk->k == T_VAR_BEGIN) {
            ps->i++;
            struct jx_node *o = node(ps, N_OUTPUT);
            o->a = parse_tuple_expr(ps, true);
            if (cur(ps)->k != T_VAR_END)
                perr(ps, "expected '}}'");
            ps->i++;
            add_kid(ps, &body->kids, &body->n_kids, o);
        } else if (tk->k == T_BLOCK_BEGIN) {
            ps->i++;
            struct tok *w = cur(ps);
            for (int k = 0; ends && ends[k]; k++)
                if (tok_is(w, T_NAME, ends[k])) {
                    ps->i++;
                    *which = k;
                    return body;
                }
            if (w->k == T_NAME && w->n > 3 && (!memcmp(w->p, "end", 3) || tok_is(w, T_NAME, "elif") ||
                                              tok_is(w, T_NAME, "else")))
                jx_fail(&ps->t->fault, "line %d: unexpected '%.*s'%s%s", w->line, (int)w->n, w->p,
                        ends ? ", expected " : "", ends ? ends[0] : "");
            add_kid(ps, &body->kids, &body->n_kids, parse_statement(ps));
        } else {
            perr(ps, "unexpected token");
        }
    }
}

struct jx_node *jx_parse(struct jinja_tmpl *t, const char *src, size_t len)
{
    struct lexer lx = {.t = t, .src = src, .len = len, .line = 1};
    jx_lex(&lx);
    struct parser ps = {.t = t, .toks = lx.toks, .n = lx.n};
    int which;
    return parse_body(&ps, NULL, &which);
}

int jinja_parse(const char *src, size_t len, struct jinja_tmpl **out, struct bw_err *err)
{
    struct jinja_tmpl *t = calloc(1, sizeof *t);
    if (!t)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    t->arena.fault = &t->fault;
    t->arena.limit = 64u << 20;
    /* The source is copied so the tree's text can point into it, with its newlines
     * normalized as jinja2's lexer does first thing: \r\n and \r become \n (in text, strings
     * and raw blocks alike), before trim_blocks and keep_trailing_newline look for them. */
    if (setjmp(t->fault.jb)) {
        int code = t->fault.code;
        bw_errf(err, code, "chat template: %s", t->fault.msg);
        jx_arena_free(&t->arena);
        free(t);
        return code;
    }
    char *copy = jx_alloc(&t->arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] != '\r') {
            copy[n++] = src[i];
            continue;
        }
        copy[n++] = '\n';
        if (i + 1 < len && src[i + 1] == '\n')
            i++;
    }
    t->root = jx_parse(t, copy, n);
    *out = t;
    return BW_OK;
}

void jinja_free(struct jinja_tmpl *t)
{
    if (!t)
        return;
    jx_arena_free(&t->arena);
    free(t);
}
