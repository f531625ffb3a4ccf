/* bytes_int.h -- byte matching the streaming splitters share (reasoning.c, the tool-call
 * parser): whether a buffer starts with a marker, how much of its end could still become
 * one, and an unfinished UTF-8 sequence at its end. Not a public interface. */
#ifndef BELLOWS_BYTES_INT_H
#define BELLOWS_BYTES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum match { MATCH_NONE, MATCH_PARTIAL, MATCH_FULL };

/* space, tab, \n, \r */
static inline bool bytes_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Does b[0..n) start with marker m (FULL), or is it a proper prefix of m (PARTIAL)? */
static inline enum match bytes_starts_with(const char *b, size_t n, const char *m)
{
    size_t k = strlen(m);
    if (n >= k)
        return memcmp(b, m, k) ? MATCH_NONE : MATCH_FULL;
    return memcmp(b, m, n) ? MATCH_NONE : MATCH_PARTIAL;
}

/* The longest suffix of b[0..n) that is a proper prefix of m (0 when none). */
static inline size_t bytes_partial_tail(const char *b, size_t n, const char *m)
{
    size_t k = strlen(m);
    for (size_t l = k - 1 < n ? k - 1 : n; l > 0; l--)
        if (!memcmp(b + n - l, m, l))
            return l;
    return 0;
}

/* Bytes of an incomplete UTF-8 sequence at the end of b[0..n) (0 when it ends cleanly). */
static inline size_t bytes_utf8_tail(const char *b, size_t n)
{
    for (size_t i = 1; i <= 3 && i <= n; i++) {
        unsigned char c = (unsigned char)b[n - i];
        if ((c & 0xC0) == 0x80)
            continue;
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return i < need ? i : 0;
    }
    return 0;
}

#endif
