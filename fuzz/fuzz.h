/* fuzz.h -- what the harnesses of fuzz/ share.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput (libFuzzer's entry point) and nothing
 * else global, so the same file links either with libFuzzer (-fsanitize=fuzzer, the
 * BELLOWS_FUZZ build, fuzz/run) or with replay.c's plain main(), which runs saved inputs
 * (fuzz/regressions/<target>/, fuzz/corpus/<target>/) in the normal build's ctest.
 *
 * A harness returns 0 for every input. A broken invariant is a crash on purpose
 * (FUZZ_CHECK aborts), so libFuzzer saves the input and the replay test fails. */
#ifndef BELLOWS_FUZZ_H
#define BELLOWS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* data[0..size) as a malloc'd NUL-terminated string (NULs inside are kept; C-string readers
 * stop at the first one). NULL only when out of memory. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        if (size)
            memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

/* Is s[0..len) valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF)? */
static inline int fuzz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, min = 0x10000;
        } else {
            return 0;
        }
        unsigned cp = c & (0x3F >> n);
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Cuts the input into a selector byte and the rest. */
static inline unsigned fuzz_take_byte(const uint8_t **data, size_t *size)
{
    if (!*size)
        return 0;
    unsigned b = (*data)[0];
    (*data)++;
    (*size)--;
    return b;
}

#endif
