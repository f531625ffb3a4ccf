/* duration.c -- sched_parse_duration: Go duration strings as Ollama's keep_alive takes them. */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

int sched_parse_duration(const char *s, int64_t *ns)
{
    if (!s || !*s)
        return BW_EINVAL;
    char *end;
    errno = 0;
    double plain = strtod(s, &end);
    if (!*end && !errno && end != s) { /* a bare number: seconds */
        if (fabs(plain) > 9.2e9)
            return BW_EINVAL;
        *ns = plain < 0 ? -1 : (int64_t)(plain * 1e9);
        return BW_OK;
    }
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!*p)
        return BW_EINVAL;
    double total = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return BW_EINVAL;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno)
            return BW_EINVAL;
        p = end;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].unit);
            if (!strncmp(p, units[i].unit, l) && l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if (!best_len)
            return BW_EINVAL;
        total += v * units[best].ns;
        p += best_len;
    }
    if (total > 9.2e18)
        return BW_EINVAL;
    *ns = neg && total > 0 ? -1 : (int64_t)total;
    return BW_OK;
}
