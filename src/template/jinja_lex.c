/* jinja_lex.c -- template source -> tokens (see jinja_lex.h).
 *
 * The lexer applies jinja2's whitespace rules as transformers configures them, so the tree
 * holds text exactly as it will be printed: trim_blocks (the first newline after a block
 * or comment tag is dropped), lstrip_blocks (spaces and tabs before a block or comment tag
 * at the start of a line are dropped), `-` on either side of a tag strips all whitespace
 * on that side, `+` turns the two rules off for that tag, and one trailing newline of the
 * template is dropped (keep_trailing_newline off). */
#define _GNU_SOURCE
#include "template/jinja_lex.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    /* the closers of the brackets open in this tag: like jinja2's lexer, a tag ends only where
     * none is open (so `{{ {'a': {}}}}` works), and a wrong closer is an error there */
    char want[MAX_PARSE_DEPTH];
    int open = 0;
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
        if (!open && left >= 2 && !memcmp(p, close, 2)) {
            lx->pos += 2;
            return 0;
        }
        if (!open && left >= 3 && (p[0] == '-' || p[0] == '+') && !memcmp(p + 1, close, 2)) {
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
            errno = 0;
            if (is_float)
                tk.f = strtod(tmp, NULL);
            else
                tk.i = strtoll(tmp, NULL, 10);
            if (!is_float && (errno == ERANGE || k + 1 >= sizeof tmp)) /* Python's ints grow; ours are 64 bits */
                jx_fail(&lx->t->fault, "line %d: integer literal too large", lx->line);
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
        if (n == 1 && strchr("([{", *p)) {
            if (open == MAX_PARSE_DEPTH)
                jx_fail(&lx->t->fault, "line %d: the template is nested too deeply", lx->line);
            want[open++] = *p == '(' ? ')' : *p == '[' ? ']' : '}';
        } else if (n == 1 && strchr(")]}", *p)) {
            if (!open)
                jx_fail(&lx->t->fault, "line %d: unexpected '%c'", lx->line, *p);
            if (want[--open] != *p)
                jx_fail(&lx->t->fault, "line %d: unexpected '%c', expected '%c'", lx->line, *p, want[open]);
        }
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

void jx_lex(struct lexer *lx)
{
    bool line_start = true; /* the text begins a line (lstrip_blocks may apply with no newline) */
    char after = 0;         /* the previous tag's effect on this text: '-' strip, 'n' trim one \n */
    size_t len = lx->len;
    if (len && lx->src[len - 1] == '\n') /* keep_trailing_newline off (newlines are normalized) */
        len--;
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
            if (el == '-') {
                while (bn && is_ws(body[bn - 1]))
                    bn--;
            } else if (el != '+') { /* lstrip_blocks: `  {% endraw %}` alone on its line */
                size_t l = bn;
                while (l && (body[l - 1] == ' ' || body[l - 1] == '\t'))
                    l--;
                if (l > 0 && body[l - 1] == '\n')
                    bn = l;
            }
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
