/* toolcall_text.c -- bytes and spans: the matching helpers the streaming driver and the
 * format parsers share (see toolcall_int.h; the byte matching is template/bytes_int.h). */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <ctype.h>
#include <string.h>

struct span toolcall__trim(const char *s, size_t n)
{
    while (n && bytes_is_ws(*s))
        s++, n--;
    while (n && bytes_is_ws(s[n - 1]))
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

bool toolcall__span_starts(struct span sp, const char *m) { return bytes_starts_with(sp.s, sp.n, m) == MATCH_FULL; }

bool toolcall__name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; }
