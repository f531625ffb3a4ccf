/* jinja_parse.c -- template source -> tokens -> syntax tree.
 *
 * The lexer applies jinja2's whitespace rules as transformers configures them, so the tree
 * holds text exactly as it will be printed: trim_blocks (the first newline after a block
 * or comment tag is dropped), lstrip_blocks (spaces and tabs before a block or comment tag
 * at the start of a line are dropped), `-` on either side of a tag strips all whitespace
 * on that side, `+` turns the two rules off for that tag, and one trailing newline of the
 * template is dropped (keep_trailing_newline off).
 *
 * The parser follows jinja2's grammar and precedence (jinja2/parser.py): conditional
 * expression < or < and < not < comparisons < + - < ~ < * / // % < ** < unary minus <
 * primary with postfix (. [] ()) and filters/tests (| is). */
#define _GNU_SOURCE
#include "template/jinja_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum tok_kind { T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP };

struct tok {
    enum tok_kind k;
    const char *p; /* T_TEXT, T_NAME, T_STRING (decoded), T_OP */
    size_t n;
    int line;
    int64_t i;
    double f;
};

struct lexer {
    struct jinja_tmpl *t;
    const char *src;
    size_t len, pos;
    int line;
    struct tok *toks;
    size_t n, cap;
};

#define MAX_PARSE_DEPTH 200

static void push_tok(struct lexer *lx, struct tok tk)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        lx->toks = jx_grow(&lx->t->arena, lx->toks, lx->n * sizeof *lx->toks, cap * sizeof *lx->toks);
        lx->cap = cap;
    }
    lx->toks[lx->n++] = tk;
}

static int count_lines(const char *p, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    return c;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Where the next tag opens at or after pos ("{{", "{%", "{#"), or len. */
static size_t next_tag(const struct lexer *lx, size_t pos)
{
    for (size_t i = pos; i + 1 < lx->len; i++)
        if (lx->src[i] == '{' && (lx->src[i + 1] == '{' || lx->src[i + 1] == '%' || lx->src[i + 1] == '#'))
            return i;
    return lx->len;
}

static void put_utf8(char *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | cp >> 6);
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | cp >> 12);
        out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | cp >> 18);
        out[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static uint32_t hex_val(const char *p, int n, bool *ok)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) {
            *ok = false;
            return 0;
        }
        v = v * 16 + (uint32_t)d;
    }
    return v;
}

/* A string literal at lx->pos (quote char there); Python escapes are decoded. */
static void lex_string(struct lexer *lx)
{
    char q = lx->src[lx->pos];
    size_t start = ++lx->pos;
    int line = lx->line;
    char *out = jx_alloc(&lx->t->arena, lx->len - start + 1);
    size_t n = 0;
    while (lx->pos < lx->len && lx->src[lx->pos] != q) {
        char c = lx->src[lx->pos++];
        if (c == '\n')
            lx->line++;
        if (c != '\\' || lx->pos >= lx->len) {
            out[n++] = c;
            continue;
        }
        char e = lx->src[lx->pos++];
        bool ok = true;
        switch (e) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case '0': out[n++] = '\0'; break;
        case 'a': out[n++] = '\a'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'v': out[n++] = '\v'; break;
        case '\\': case '\'': case '"': out[n++] = e; break;
        case '\n': lx->line++; break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            if (lx->pos + (size_t)digits > lx->len)
                ok = false;
            uint32_t cp = ok ? hex_val(lx->src + lx->pos, digits, &ok) : 0;
            if (ok && cp <= 0x10FFFF) {
                put_utf8(out, &n, cp);
                lx->pos += (size_t)digits;
            } else {
                out[n++] = '\\';
                out[n++] = e;
            }
            break;
        }
        default: /* Python keeps unknown escapes as they are */
            out[n++] = '\\';
            out[n++] = e;
        }
    }
    if (lx->pos >= lx->len)
        jx_fail(&lx->t->fault, "line %d: unterminated string", line);
    lx->pos++;
    push_tok(lx, (struct tok){.k = T_STRING, .p = out, .n = n, .line = line});
}

static const char *const ops3[] = {NULL};
static const char *const ops2[] = {"**", "//", "==", "!=", "<=", ">=", NULL};
static const char ops1[] = "+-*/%~<>=()[]{},.:|";

/* Tokens of one tag, up to its closer; returns the closer's modifier ('-', '+' or 0). */
static char lex_tag(struct lexer *lx, bool var)
{
    (void)ops3;
    const char *close = var ? "}}" : "%}";
    for (;;) {
        while (lx->pos < lx->len && is_ws(lx->src[lx->pos])) {
            if (lx->src[lx->pos] == '\n')
                lx->line++;
            lx->pos++;
        }
        if (lx->pos >= lx->len)
            jx_fail(&lx->t->fault, "line %d: unexpected end of template, expected '%s'", lx->line, close);
        const char *p = lx->src + lx->pos;
        size_t left = lx->len - lx->pos;
        if (left >= 2 && !memcmp(p, close, 2)) {
            lx->pos += 2;
            return 0;
        }
        if (left >= 3 && (p[0] == '-' || p[0] == '+') && !memcmp(p + 1, close, 2)) {
            lx->pos += 3;
            return p[0];
        }
        if (isalpha((unsigned char)*p) || *p == '_') {
            size_t n = 1;
            while (n < left && (isalnum((unsigned char)p[n]) || p[n] == '_'))
                n++;
            push_tok(lx, (struct tok){.k = T_NAME, .p = p, .n = n, .line = lx->line});
            lx->pos += n;
            continue;
        }
        if (isdigit((unsigned char)*p)) {
            size_t n = 0;
            bool is_float = false;
            while (n < left && (isdigit((unsigned char)p[n]) || p[n] == '_'))
                n++;
            if (n + 1 < left && p[n] == '.' && isdigit((unsigned char)p[n + 1])) {
                is_float = true;
                n++;
                while (n < left && isdigit((unsigned char)p[n]))
                    n++;
            }
            if (n < left && (p[n] == 'e' || p[n] == 'E')) {
                size_t m = n + 1;
                if (m < left && (p[m] == '+' || p[m] == '-'))
                    m++;
                if (m < left && isdigit((unsigned char)p[m])) {
                    is_float = true;
                    n = m;
                    while (n < left && isdigit((unsigned char)p[n]))
                        n++;
                }
            }
            char tmp[64];
            size_t k = 0;
            for (size_t i = 0; i < n && k + 1 < sizeof tmp; i++)
                if (p[i] != '_')
                    tmp[k++] = p[i];
            tmp[k] = '\0';
            struct tok tk = {.k = is_float ? T_FLOAT : T_INT, .p = p, .n = n, .line = lx->line};
            if (is_float)
                tk.f = strtod(tmp, NULL);
            else
                tk.i = strtoll(tmp, NULL, 10);
            push_tok(lx, tk);
            lx->pos += n;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            lex_string(lx);
            continue;
        }
        size_t n = 0;
        for (size_t i = 0; ops2[i]; i++)
            if (left >= 2 && !memcmp(p, ops2[i], 2))
                n = 2;
        if (!n && strchr(ops1, *p))
            n = 1;
        if (!n)
            jx_fail(&lx->t->fault, "line %d: unexpected character '%c'", lx->line, *p);
        push_tok(lx, (struct tok){.k = T_OP, .p = p, .n = n, .line = lx->line});
        lx->pos += n;
    }
}

/* Does a `{% raw %}` tag start at pos? Returns the position after its closer, or 0. */
static size_t raw_tag(const struct lexer *lx, size_t pos, const char *word, char *lmod, char *rmod)
{
    const char *s = lx->src;
    size_t i = pos + 2, n = lx->len;
    *lmod = i < n && (s[i] == '-' || s[i] == '+') ? s[i++] : 0;
    while (i < n && is_ws(s[i]))
        i++;
    size_t w = strlen(word);
    if (i + w > n || memcmp(s + i, word, w) || (i + w < n && (isalnum((unsigned char)s[i + w]) || s[i + w] == '_')))
        return 0;
    i += w;
    while (i < n && is_ws(s[i]))
        i++;
    *rmod = i < n && (s[i] == '-' || s[i] == '+') ? s[i++] : 0;
    if (i + 2 > n || memcmp(s + i, "%}", 2))
        return 0;
    return i + 2;
}

static void lex(struct lexer *lx)
{
    bool line_start = true; /* the text begins a line (lstrip_blocks may apply with no newline) */
    char after = 0;         /* the previous tag's effect on this text: '-' strip, 'n' trim one \n */
    size_t len = lx->len;
    if (len && lx->src[len - 1] == '\n') /* keep_trailing_newline off */
        len -= len >= 2 && lx->src[len - 2] == '\r' ? 2 : 1;
    lx->len = len;
    while (lx->pos <= lx->len) {
        size_t tag = next_tag(lx, lx->pos);
        const char *text = lx->src + lx->pos;
        size_t tn = tag - lx->pos;
        int text_line = lx->line;
        lx->line += count_lines(text, tn);
        if (after == 'n' && tn && text[0] == '\n') {
            text++, tn--, text_line++;
            line_start = true;
        } else if (after == '-') {
            while (tn && is_ws(*text)) {
                line_start = *text == '\n' || line_start;
                text_line += *text == '\n';
                text++, tn--;
            }
        }
        char lmod = 0, kind = 0;
        if (tag < lx->len) {
            kind = lx->src[tag + 1];
            lmod = tag + 2 < lx->len ? lx->src[tag + 2] : 0;
            if (lmod != '-' && lmod != '+')
                lmod = 0;
            if (lmod == '-') {
                while (tn && is_ws(text[tn - 1]))
                    tn--;
            } else if (kind != '{' && lmod != '+') {
                size_t l = tn;
                while (l && text[l - 1] != '\n')
                    l--;
                bool blank = true;
                for (size_t i = l; i < tn; i++)
                    if (text[i] != ' ' && text[i] != '\t')
                        blank = false;
                if (blank && (l > 0 || line_start))
                    tn = l;
            }
        }
        if (tn)
            push_tok(lx, (struct tok){.k = T_TEXT, .p = text, .n = tn, .line = text_line});
        if (tag >= lx->len)
            break;
        line_start = false;
        after = 0;
        char rmod = 0;
        size_t end;
        if (kind == '#') {
            const char *close = memmem(lx->src + tag + 2, lx->len - tag - 2, "#}", 2);
            if (!close)
                jx_fail(&lx->t->fault, "line %d: unterminated comment", lx->line);
            end = (size_t)(close - lx->src) + 2;
            rmod = close[-1] == '-' || close[-1] == '+' ? close[-1] : 0;
            lx->line += count_lines(lx->src + tag, end - tag);
        } else if (kind == '%' && (end = raw_tag(lx, tag, "raw", &lmod, &rmod)) != 0) {
            /* {% raw %} ... {% endraw %}: the text between is kept verbatim */
            size_t i = end, body_end = 0, stop = 0;
            char el = 0, er = 0;
            for (; i + 1 < lx->len; i++)
                if (lx->src[i] == '{' && lx->src[i + 1] == '%' && (stop = raw_tag(lx, i, "endraw", &el, &er)) != 0) {
                    body_end = i;
                    break;
                }
            if (!stop)
                jx_fail(&lx->t->fault, "line %d: missing endraw", lx->line);
            const char *body = lx->src + end;
            size_t bn = body_end - end;
            if (rmod == '-')
                while (bn && is_ws(*body))
                    body++, bn--;
            if (el == '-')
                while (bn && is_ws(body[bn - 1]))
                    bn--;
            if (bn)
                push_tok(lx, (struct tok){.k = T_TEXT, .p = body, .n = bn, .line = lx->line});
            lx->line += count_lines(lx->src + tag, stop - tag);
            end = stop;
            rmod = er;
        } else {
            lx->pos = tag + 2 + (lmod ? 1 : 0);
            push_tok(lx, (struct tok){.k = kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, .line = lx->line});
            rmod = lex_tag(lx, kind == '{');
            push_tok(lx, (struct tok){.k = kind == '{' ? T_VAR_END : T_BLOCK_END, .line = lx->line});
            end = lx->pos;
        }
        lx->pos = end;
        if (rmod == '-')
            after = '-';
        else if (kind != '{' && rmod != '+')
            after = 'n';
    }
    push_tok(lx, (struct tok){.k = T_EOF, .line = lx->line});
}

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
        jx_fail(&ps->t->fault, "line %d: expression nested too deeply", cur(ps)->line);
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
    for (;;) {
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
            return n;
        }
    }
}

static struct jx_node *parse_filter_expr(struct parser *ps, struct jx_node *n)
{
    for (;;) {
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
    while (is_op(ps, "**")) {
        ps->i++;
        n = binop(ps, E_BIN, OP_POW, n, parse_unary(ps, true));
    }
    return n;
}

static struct jx_node *parse_math2(struct parser *ps)
{
    struct jx_node *n = parse_pow(ps);
    for (;;) {
        enum jx_op op;
        if (is_op(ps, "*")) op = OP_MUL;
        else if (is_op(ps, "/")) op = OP_DIV;
        else if (is_op(ps, "//")) op = OP_FLOORDIV;
        else if (is_op(ps, "%")) op = OP_MOD;
        else return n;
        ps->i++;
        n = binop(ps, E_BIN, op, n, parse_pow(ps));
    }
}

static struct jx_node *parse_concat(struct parser *ps)
{
    struct jx_node *n = parse_math2(ps);
    while (is_op(ps, "~")) {
        ps->i++;
        n = binop(ps, E_BIN, OP_CONCAT, n, parse_math2(ps));
    }
    return n;
}

static struct jx_node *parse_math1(struct parser *ps)
{
    struct jx_node *n = parse_concat(ps);
    for (;;) {
        enum jx_op op;
        if (is_op(ps, "+")) op = OP_ADD;
        else if (is_op(ps, "-")) op = OP_SUB;
        else return n;
        ps->i++;
        n = binop(ps, E_BIN, op, n, parse_concat(ps));
    }
}

static struct jx_node *parse_compare(struct parser *ps)
{
    struct jx_node *n = parse_math1(ps);
    for (;;) {
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
        } else return n;
        ps->i++;
        n = binop(ps, E_CMP, op, n, parse_math1(ps));
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
    while (is_name(ps, "and")) {
        ps->i++;
        n = binop(ps, E_AND, OP_ADD, n, parse_not(ps));
    }
    return n;
}

static struct jx_node *parse_or(struct parser *ps)
{
    struct jx_node *n = parse_and(ps);
    while (is_name(ps, "or")) {
        ps->i++;
        n = binop(ps, E_OR, OP_ADD, n, parse_and(ps));
    }
    return n;
}

static struct jx_node *parse_expr(struct parser *ps)
{
    enter(ps);
    struct jx_node *n = parse_or(ps);
    while (is_name(ps, "if")) {
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
    ps->depth--;
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

static struct jx_node *parse_statement(struct parser *ps)
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
    lex(&lx);
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
    /* The source is copied so the tree's text can point into it. */
    if (setjmp(t->fault.jb)) {
        int code = t->fault.code;
        bw_errf(err, code, "chat template: %s", t->fault.msg);
        jx_arena_free(&t->arena);
        free(t);
        return code;
    }
    char *copy = jx_strndup(&t->arena, src, len);
    t->root = jx_parse(t, copy, len);
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
