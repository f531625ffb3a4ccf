/* toolcall_text.c -- bytes and spans: the matching helpers the streaming driver and the
 * format parsers share (see toolcall_int.h). */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <ctype.h>
#include <string.h>

bool toolcall__is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Does b[0..n) start with m (FULL), or is it a proper prefix of m (PARTIAL)? */
enum match toolcall__starts_with(const char *b, size_t n, const char *m)
{
    size_t k = strlen(m);
    if (n >= k)
        return memcmp(b, m, k) ? MATCH_NONE : MATCH_FULL;
    return memcmp(b, m, n) ? MATCH_NONE : MATCH_PARTIAL;
}

struct span toolcall__trim(const char *s, size_t n)
{
    while (n && toolcall__is_ws(*s))
        s++, n--;
    while (n && toolcall__is_ws(s[n - 1]))
        n--;
    return (struct span){s, n};
}

const char *toolcall__find(struct span sp, const char *m) { return memmem(sp.s, sp.n, m, strlen(m)); }

/* The text of sp after its first `m`, or {NULL, 0}. */
struct span toolcall__after(struct span sp, const char *m)
{
    const char *c = toolcall__find(sp, m);
    if (!c)
        return (struct span){NULL, 0};
    c += strlen(m);
    return (struct span){c, (size_t)(sp.s + sp.n - c)};
}

bool toolcall__span_starts(struct span sp, const char *m) { return toolcall__starts_with(sp.s, sp.n, m) == MATCH_FULL; }

bool toolcall__name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; }
