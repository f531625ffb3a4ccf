/* ui_http.c -- see ui_http.h. */
#include "api/ui_http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The q of one media range's parameters (p after the type, at ';' or the end): 1 when
 * absent; an unreadable q counts as 1 too (be generous to browsers, it only picks a page). */
static double media_q(const char *p, const char *end)
{
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            break;
        p = skip_ws(semi + 1);
        if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char *stop;
            double q = strtod(p + 2, &stop);
            return stop == p + 2 ? 1.0 : q;
        }
    }
    return 1.0;
}

bool ui_accepts_html(const char *accept)
{
    if (!accept)
        return false;
    const char *p = accept;
    while (*p) {
        p = skip_ws(p);
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        size_t n = 0; /* the type/subtype, up to ';', space or the end */
        while (p + n < end && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
            n++;
        if (n == 9 && !strncasecmp(p, "text/html", 9) && media_q(p + n, end) > 0)
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}

bool ui_etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match || !etag)
        return false;
    size_t elen = strlen(etag);
    const char *p = if_none_match;
    while (*p) {
        p = skip_ws(p);
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == elen && !strncmp(p, etag, elen))
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}
