/* gbnf_compose.c -- see gbnf_compose.h. */
#include "grammar/gbnf_compose.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/gbnf_int.h"

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Copies a literal or class that starts at s[0] (its opening quote or bracket) up to and
 * including its closing one; returns the length copied. */
static size_t copy_quoted(struct textbuf *b, const char *s, char close)
{
    size_t i = 1;
    while (s[i] && s[i] != close) {
        if (s[i] == '\\' && s[i + 1])
            i++;
        i++;
    }
    if (s[i])
        i++;
    textbuf_addn(b, s, i);
    return i;
}

char *gbnf_prefix_rules(const char *g, const char *prefix)
{
    if (!g || !prefix)
        return NULL;
    for (const char *p = prefix; *p; p++)
        if (!word_char(*p) || *p == '_')
            return NULL;
    struct textbuf b = {0};
    textbuf_add(&b, "");
    for (size_t i = 0; g[i];) {
        char c = g[i];
        if (c == '"' || c == '[') {
            i += copy_quoted(&b, g + i, c == '"' ? '"' : ']');
        } else if (c == '{') {
            i += copy_quoted(&b, g + i, '}');
        } else if (c == '#') {
            size_t n = strcspn(g + i, "\n");
            textbuf_addn(&b, g + i, n);
            i += n;
        } else if (word_char(c)) {
            size_t n = 0;
            while (word_char(g[i + n]))
                n++;
            textbuf_add(&b, prefix);
            textbuf_addn(&b, g + i, n);
            i += n;
        } else {
            textbuf_addn(&b, g + i, 1);
            i++;
        }
    }
    if (b.oom) {
        textbuf_fini(&b);
        return NULL;
    }
    return b.s;
}

/* The next code point of s (UTF-8; a stray byte reads as itself); advances *i. */
static uint32_t next_cp(const char *s, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    int n = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 1;
    uint32_t cp = n == 1 ? u[0] : u[0] & (0x3F >> (n - 1));
    for (int k = 1; k < n; k++) {
        if ((u[k] & 0xC0) != 0x80) {
            *i += 1;
            return u[0];
        }
        cp = (cp << 6) | (u[k] & 0x3F);
    }
    *i += (size_t)n;
    return cp;
}

char *gbnf_after_marker(const char *grammar, const char *marker, int max_pieces)
{
    if (!grammar || !marker || !*marker)
        return NULL;
    uint32_t cps[64];
    size_t n = 0, starts[65];
    for (size_t i = 0; marker[i];) {
        if (n == 64)
            return NULL;
        starts[n] = i;
        cps[n++] = next_cp(marker, &i);
    }
    starts[n] = strlen(marker);
    for (size_t k = 1; k < n; k++)
        if (cps[k] == cps[0])
            return NULL;
    if (max_pieces < 1)
        max_pieces = 1;
    if (max_pieces > GBNF_MAX_REPEAT)
        max_pieces = GBNF_MAX_REPEAT;
    char *inner = gbnf_prefix_rules(grammar, "answer-");
    if (!inner)
        return NULL;
    struct textbuf b = {0};
    /* think-piece ::= [^c0] | c0 ( [^m1 c0] | m1 ( ... ( [^m(n-1) c0] ) ... ) ) */
    textbuf_add(&b, "think-piece ::= [^");
    gbnf_class_char(&b, cps[0]);
    textbuf_add(&b, "]");
    if (n > 1) {
        textbuf_add(&b, " | ");
        gbnf_literal(&b, marker, starts[1]);
        for (size_t k = 1; k < n; k++) {
            textbuf_add(&b, " ( [^");
            gbnf_class_char(&b, cps[k]);
            gbnf_class_char(&b, cps[0]);
            textbuf_add(&b, "]");
            if (k + 1 < n) {
                textbuf_add(&b, " | ");
                gbnf_literal(&b, marker + starts[k], starts[k + 1] - starts[k]);
            }
        }
        for (size_t k = 1; k < n; k++)
            textbuf_add(&b, " )");
    }
    textbuf_addf(&b, "\nroot ::= think-piece{0,%d} ", max_pieces);
    gbnf_literal(&b, marker, strlen(marker));
    textbuf_add(&b, " [ \\t\\n]{0,4} answer-root\n");
    textbuf_add(&b, inner);
    free(inner);
    if (b.oom) {
        textbuf_fini(&b);
        return NULL;
    }
    return b.s;
}
