/* duration.c -- sched_parse_duration (sched.h): keep_alive values as Ollama takes them.
 *
 * Grammar (Go's time.ParseDuration): [+-]? ( digits? [. digits?] unit )+ with at least one
 * digit per number, units ns us µs μs ms s m h, and "0" alone allowed. Bellows adds one
 * case: a bare number with no unit at all ("300", "-1", "3.5") is seconds, which is how
 * Ollama reads a JSON number (the API layer passes numbers here as text). Integer
 * arithmetic, so "1.1s" is exactly 1100000000 ns. A magnitude past INT64_MAX is an error
 * (Go: "invalid duration"; Go also takes exactly -2^63 ns, refused here so the result can
 * never be INT64_MIN, which is SCHED_KEEP_ALIVE_DEFAULT). Any negative result means forever
 * to the caller; "-0" is 0, as in Go.
 * Pure: no clock, no allocation; *ns is written only on success. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sched/sched.h"

#define NS_PER_S UINT64_C(1000000000)

static const struct {
    const char *name;
    uint64_t ns;
} units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek small mu */
    {"ms", 1000000},
    {"s", NS_PER_S},
    {"m", 60 * NS_PER_S},
    {"h", 3600 * NS_PER_S},
};

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads [digits][.digits] at *p. Returns false when there is no digit at all or the integer
 * part overflows; sets *whole, and *frac / *scale for the fraction (digits beyond what fits
 * are dropped, as Go does). */
static bool read_number(const char **p, uint64_t *whole, uint64_t *frac, uint64_t *scale)
{
    const char *s = *p;
    uint64_t v = 0;
    bool any = false;
    for (; is_digit(*s); s++, any = true) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    uint64_t f = 0, sc = 1;
    if (*s == '.') {
        s++;
        bool dropping = false;
        for (; is_digit(*s); s++, any = true) {
            if (dropping || sc > UINT64_MAX / 100) { /* keeps f and sc well under 2^64 */
                dropping = true;
                continue;
            }
            f = f * 10 + (uint64_t)(*s - '0');
            sc *= 10;
        }
    }
    if (!any)
        return false;
    *p = s;
    *whole = v;
    *frac = f;
    *scale = sc;
    return true;
}

/* whole x unit + frac / scale x unit, or false past INT64_MAX. */
static bool scale_number(uint64_t whole, uint64_t frac, uint64_t scale, uint64_t unit, uint64_t *out)
{
    const unsigned __int128 limit = INT64_MAX;
    unsigned __int128 v = (unsigned __int128)whole * unit;
    if (v > limit)
        return false;
    v += (unsigned __int128)frac * unit / scale;
    if (v > limit)
        return false;
    *out = (uint64_t)v;
    return true;
}

int sched_parse_duration(const char *s, int64_t *ns)
{
    if (!s)
        return BW_EINVAL;
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!*p)
        return BW_EINVAL;

    uint64_t total = 0;
    for (bool first = true; *p; first = false) {
        uint64_t whole, frac, scale, unit = 0, v;
        if (!read_number(&p, &whole, &frac, &scale))
            return BW_EINVAL;
        size_t len = 0;
        while (p[len] && p[len] != '.' && !is_digit(p[len]))
            len++;
        if (len == 0) {
            if (!first || *p) /* "1h30": a unit is missing; "1.2.3": not a number */
                return BW_EINVAL;
            unit = NS_PER_S;  /* a bare number: seconds ("0" lands here too) */
        } else {
            for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
                if (strlen(units[i].name) == len && !memcmp(p, units[i].name, len))
                    unit = units[i].ns;
            if (!unit)
                return BW_EINVAL;
            p += len;
        }
        if (!scale_number(whole, frac, scale, unit, &v) || v > (uint64_t)INT64_MAX - total)
            return BW_EINVAL;
        total += v;
    }
    *ns = neg ? -(int64_t)total : (int64_t)total;
    return BW_OK;
}
