/* schema_numbers.c -- integers and numbers within minimum / maximum (exclusive too).
 *
 * Integers: the decimal text of every integer in [lo, hi], no leading zeros, written digit
 * position by digit position (same-length ranges split at the first differing digit).
 * Unbounded sides stop at 16 digits, as the unbounded integer rule does.
 * Numbers: "-"? I ("." F)? without an exponent, the integer part I held to a range and
 * the fraction F checked only at the bounds (x > 3 is I >= 4, or I = 3 with a fraction
 * that is not all zeros). Bounds that are not integers are rounded inward (minimum 1.5 is
 * 2): the grammar then allows fewer numbers, never more. */
#define _GNU_SOURCE
#include "grammar/gbnf_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LIM 9999999999999999LL /* 16 digits */

int num_bounds_read(struct gconv *c, const json_t *s, struct num_bounds *out)
{
    *out = (struct num_bounds){0};
    static const char *const K[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    for (int i = 0; i < 4; i++) {
        const json_t *v = json_object_get(s, K[i]);
        if (!v)
            continue;
        bool is_max = i >= 2, excl = i % 2;
        if (excl && json_is_boolean(v)) { /* draft 4: a flag on minimum / maximum */
            if (json_is_true(v)) {
                if (is_max)
                    out->max_excl = out->has_max;
                else
                    out->min_excl = out->has_min;
            }
            continue;
        }
        if (!json_is_number(v)) {
            gconv_fail(c, BW_EINVAL, "%s must be a number", K[i]);
            return -1;
        }
        double d = json_number_value(v);
        if (!is_max && (!out->has_min || d > out->min || (d == out->min && excl))) {
            out->has_min = true;
            out->min = d;
            out->min_excl = excl;
        }
        if (is_max && (!out->has_max || d < out->max || (d == out->max && excl))) {
            out->has_max = true;
            out->max = d;
            out->max_excl = excl;
        }
    }
    /* draft 4's boolean exclusive* next to a number read after it */
    const json_t *emin = json_object_get(s, "exclusiveMinimum"), *emax = json_object_get(s, "exclusiveMaximum");
    if (json_is_true(emin) && out->has_min)
        out->min_excl = true;
    if (json_is_true(emax) && out->has_max)
        out->max_excl = true;
    if (out->has_min && out->has_max &&
        (out->min > out->max || (out->min == out->max && (out->min_excl || out->max_excl)))) {
        gconv_fail(c, BW_EINVAL, "minimum is above maximum: no number is valid");
        return -1;
    }
    return out->has_min || out->has_max;
}

/* ---- naturals --------------------------------------------------------------------------------- */

static void digit_class(struct textbuf *b, char lo, char hi)
{
    if (lo == hi)
        textbuf_addf(b, "[%c]", lo);
    else
        textbuf_addf(b, "[%c-%c]", lo, hi);
}

static void any_digits(struct textbuf *b, int n)
{
    if (n == 1)
        textbuf_add(b, "[0-9]");
    else if (n > 1)
        textbuf_addf(b, "[0-9]{%d}", n);
}

static bool all_of(const char *s, size_t n, char ch)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ch)
            return false;
    return true;
}

/* Every digit string of length n between x and y (x <= y, same length). */
static void same_len(struct textbuf *b, const char *x, const char *y, size_t n)
{
    size_t i = 0;
    while (i < n && x[i] == y[i])
        i++;
    if (i)
        gbnf_literal(b, x, i);
    if (i == n)
        return;
    if (i)
        textbuf_add(b, " ");
    size_t r = n - i - 1;
    if (!r) {
        digit_class(b, x[i], y[i]);
        return;
    }
    const char *xs = x + i + 1, *ys = y + i + 1;
    char start = x[i], end = y[i];
    int n_alts = 0;
    textbuf_add(b, "(");
    if (!all_of(xs, r, '0')) {
        digit_class(b, x[i], x[i]);
        char nines[20];
        memset(nines, '9', r);
        textbuf_add(b, " (");
        same_len(b, xs, nines, r);
        textbuf_add(b, ")");
        start++;
        n_alts++;
    }
    bool top = !all_of(ys, r, '9');
    if (top)
        end--;
    if (start <= end) {
        textbuf_add(b, n_alts++ ? " | " : "");
        digit_class(b, start, end);
        textbuf_add(b, " ");
        any_digits(b, (int)r);
    }
    if (top) {
        textbuf_add(b, n_alts++ ? " | " : "");
        digit_class(b, y[i], y[i]);
        char zeros[20];
        memset(zeros, '0', r);
        textbuf_add(b, " (");
        same_len(b, zeros, ys, r);
        textbuf_add(b, ")");
    }
    textbuf_add(b, ")");
}

/* Every natural in [a, b] (0 <= a <= b <= LIM) in decimal without leading zeros. */
static void nat_range(struct textbuf *b, long long a, long long hi)
{
    char x[24], y[24];
    int da = snprintf(x, sizeof x, "%lld", a), db = snprintf(y, sizeof y, "%lld", hi);
    textbuf_add(b, "(");
    if (da == db) {
        same_len(b, x, y, (size_t)da);
    } else {
        char nines[24];
        memset(nines, '9', (size_t)da);
        same_len(b, x, nines, (size_t)da);
        /* whole lengths da+1 .. top (top = db when hi is all nines) */
        bool full_top = all_of(y, (size_t)db, '9');
        int top = full_top ? db : db - 1;
        if (top > da) {
            textbuf_add(b, " | [1-9] ");
            if (top == da + 1)
                any_digits(b, da);
            else
                textbuf_addf(b, "[0-9]{%d,%d}", da, top - 1);
        }
        if (!full_top) {
            char low[24];
            low[0] = '1';
            memset(low + 1, '0', (size_t)db - 1);
            textbuf_add(b, " | ");
            same_len(b, low, y, (size_t)db);
        }
    }
    textbuf_add(b, ")");
}

/* ---- integers --------------------------------------------------------------------------------- */

static int int_bounds(struct gconv *c, const struct num_bounds *nb, bool *has_lo, long long *lo, bool *has_hi,
                      long long *hi)
{
    *has_lo = nb->has_min;
    *has_hi = nb->has_max;
    if (*has_lo) {
        double v = nb->min_excl ? floor(nb->min) + 1 : ceil(nb->min);
        if (v > (double)LIM)
            return gconv_fail(c, BW_EINVAL, "minimum %g is beyond the 16-digit integers Bellows generates", nb->min);
        *has_lo = v >= -(double)LIM;
        *lo = *has_lo ? (long long)v : 0;
    }
    if (*has_hi) {
        double v = nb->max_excl ? ceil(nb->max) - 1 : floor(nb->max);
        if (v < -(double)LIM)
            return gconv_fail(c, BW_EINVAL, "maximum %g is beyond the 16-digit integers Bellows generates", nb->max);
        *has_hi = v <= (double)LIM;
        *hi = *has_hi ? (long long)v : 0;
    }
    if (*has_lo && *has_hi && *lo > *hi)
        return gconv_fail(c, BW_EINVAL, "no integer lies between minimum and maximum");
    return BW_OK;
}

int num_integer_range(struct gconv *c, const struct num_bounds *nb, struct textbuf *b)
{
    bool has_lo, has_hi;
    long long lo = 0, hi = 0;
    if (int_bounds(c, nb, &has_lo, &lo, &has_hi, &hi))
        return c->code;
    if (!has_lo)
        lo = -LIM;
    if (!has_hi)
        hi = LIM;
    if (hi < 0) {
        textbuf_add(b, "\"-\" ");
        nat_range(b, -hi, -lo);
    } else if (lo < 0) {
        textbuf_add(b, "\"-\" ");
        nat_range(b, 1, -lo);
        textbuf_add(b, " | ");
        nat_range(b, 0, hi);
    } else {
        nat_range(b, lo, hi);
    }
    return BW_OK;
}

/* ---- numbers ------------------------------------------------------------------------------------ */

#define FRACTION "(\".\" [0-9]{1,16})?"
#define NONZERO_FRACTION "\".\" [0-9]{0,15} [1-9]"
#define ZERO_FRACTION "(\".\" [0]{1,16})?"

/* Magnitudes v = I.F with v > a (a_excl) or v >= a, and v < hi / v <= hi (has_hi); a, hi
 * naturals. Returns the number of alternatives written. */
static int magnitude(struct textbuf *b, long long a, bool a_excl, bool has_hi, long long hi, bool hi_excl, int n_alts)
{
    long long any_lo = a_excl ? a + 1 : a, any_hi = has_hi ? hi - 1 : LIM;
    if (any_lo <= any_hi && any_lo <= LIM) {
        textbuf_add(b, n_alts++ ? " | " : "");
        nat_range(b, any_lo, any_hi);
        textbuf_add(b, " " FRACTION);
    }
    if (a_excl && (!has_hi || a < hi) && a <= LIM) {
        char t[24];
        snprintf(t, sizeof t, "%lld", a);
        textbuf_add(b, n_alts++ ? " | " : "");
        gbnf_literal(b, t, strlen(t));
        textbuf_add(b, " " NONZERO_FRACTION);
    }
    if (has_hi && !hi_excl && (hi > a || (hi == a && !a_excl))) {
        char t[24];
        snprintf(t, sizeof t, "%lld", hi);
        textbuf_add(b, n_alts++ ? " | " : "");
        gbnf_literal(b, t, strlen(t));
        textbuf_add(b, " " ZERO_FRACTION);
    }
    return n_alts;
}

int num_number_range(struct gconv *c, const struct num_bounds *nb, struct textbuf *b)
{
    /* integer bounds: a bound that is not an integer is rounded inward and becomes inclusive */
    bool has_l = nb->has_min, has_u = nb->has_max, le = nb->min_excl, ue = nb->max_excl;
    double l = nb->min, u = nb->max;
    if (has_l && l != floor(l))
        l = ceil(l), le = false;
    if (has_u && u != floor(u))
        u = floor(u), ue = false;
    if ((has_l && l > (double)LIM) || (has_u && u < -(double)LIM))
        return gconv_fail(c, BW_EINVAL, "minimum/maximum beyond the 16-digit numbers Bellows generates");
    if (has_l && l < -(double)LIM)
        has_l = false;
    if (has_u && u > (double)LIM)
        has_u = false;
    /* only a bound still in force is converted: a dropped one may lie beyond long long */
    long long li = has_l ? (long long)l : 0, ui = has_u ? (long long)u : 0;
    int n = 0;
    /* x >= 0 */
    if (!has_u || ui > 0 || (ui == 0 && !ue)) {
        bool lo_here = has_l && (li > 0 || (li == 0 && le));
        n = magnitude(b, lo_here ? li : 0, lo_here && le, has_u, ui, ue, n);
    }
    /* x < 0: magnitude v = -x, x >= l is v <= -l, x <= u is v >= -u */
    if (!has_l || li < 0) {
        bool lo_here = has_u && ui < 0;
        size_t mark = b->len;
        textbuf_add(b, n ? " | \"-\" (" : "\"-\" (");
        int m = magnitude(b, lo_here ? -ui : 0, lo_here ? ue : true, has_l, -li, le, 0);
        if (m) {
            textbuf_add(b, ")");
            n += m;
        } else if (b->s) {
            b->len = mark;
            b->s[mark] = '\0';
        }
    }
    if (!n)
        return gconv_fail(c, BW_EINVAL, "no number between minimum and maximum has an integer-bounded form "
                                        "(bounds that are not integers are rounded inward)");
    return BW_OK;
}
