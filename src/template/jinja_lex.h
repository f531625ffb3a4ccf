/* jinja_lex.h -- template source -> tokens: the lexer's interface to the parser
 * (jinja_lex.c, jinja_parse.c). Internal, like jinja_int.h.
 *
 * Tokens point into the template's source (or, for decoded strings, into its arena), so
 * they live as long as the template. Errors fail through the template's fault. */
#ifndef BELLOWS_JINJA_LEX_H
#define BELLOWS_JINJA_LEX_H

#include "template/jinja_int.h"

/* The deepest nesting allowed: brackets open in one tag (the lexer) and the parser's
 * recursion. */
#define MAX_PARSE_DEPTH 200

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

/* Splits lx->src[0, lx->len) into lx->toks[0, lx->n), the last one T_EOF, with jinja2's
 * whitespace rules applied (jinja_lex.c). Set t, src, len and line (1) first; the tokens
 * live in the template's arena. */
void jx_lex(struct lexer *lx);

#endif
