/* textbuf.h -- a growable, NUL-terminated text buffer, for code that writes text piece by
 * piece (GBNF grammars, JSON entries) and checks for running out of memory once, at the end:
 * after a failed allocation every later add is a no-op and `oom` stays set, so the text is
 * known to be incomplete. Zero-initialize (`struct textbuf b = {0}`) to start. */
#ifndef BELLOWS_UTIL_TEXTBUF_H
#define BELLOWS_UTIL_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct textbuf {
    char *s; /* NUL-terminated once anything was added; NULL before */
    size_t len, cap;
    bool oom; /* an allocation failed: the text is incomplete */
};

void textbuf_add(struct textbuf *b, const char *s);
void textbuf_addn(struct textbuf *b, const char *s, size_t n);
void textbuf_addf(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the text; b is empty again. */
void textbuf_fini(struct textbuf *b);
/* The text so far ("" when empty), borrowed. */
const char *textbuf_str(const struct textbuf *b);

#endif
