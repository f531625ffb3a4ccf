/* regex_parse.c -- the ECMA-262 regex subset of JSON Schema patterns, parsed into the
 * tree of regex_int.h (schema_pattern.c writes it as GBNF). Code point sets for classes. */
#define _GNU_SOURCE
#include "grammar/regex_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 64

/* ---- code point sets ------------------------------------------------------------------------ */

bool cset_add(struct cset *s, uint32_t lo, uint32_t hi)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        uint32_t(*r)[2] = realloc(s->r, cap * sizeof *r);
        if (!r)
            return false;
        s->r = r;
        s->cap = cap;
    }
    s->r[s->n][0] = lo;
    s->r[s->n][1] = hi;
    s->n++;
    return true;
}

static int by_lo(const void *a, const void *b)
{
    uint32_t x = ((const uint32_t *)a)[0], y = ((const uint32_t *)b)[0];
    return x < y ? -1 : x > y;
}

static void cset_normalize(struct cset *s)
{
    if (!s->n)
        return;
    qsort(s->r, s->n, sizeof s->r[0], by_lo);
    size_t o = 0;
    for (size_t i = 1; i < s->n; i++) {
        if (s->r[i][0] <= s->r[o][1] + 1) {
            if (s->r[i][1] > s->r[o][1])
                s->r[o][1] = s->r[i][1];
        } else {
            s->r[++o][0] = s->r[i][0];
            s->r[o][1] = s->r[i][1];
        }
    }
    s->n = o + 1;
}

bool cset_complement(const struct cset *s, struct cset *out)
{
    uint32_t next = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i][0] > next && !cset_add(out, next, s->r[i][0] - 1))
            return false;
        next = s->r[i][1] + 1;
    }
    return next > CP_MAX || cset_add(out, next, CP_MAX);
}

bool cset_has(const struct cset *s, uint32_t cp)
{
    for (size_t i = 0; i < s->n; i++)
        if (cp >= s->r[i][0] && cp <= s->r[i][1])
            return true;
    return false;
}

static const uint32_t SPACE_SET[][2] = {{0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680},
                                        {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                                        {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
static const uint32_t WORD_SET[][2] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
static const uint32_t DIGIT_SET[][2] = {{'0', '9'}};

/* \d \w \s (negated: \D \W \S) into s. */
static bool cset_add_class(struct cset *s, char kind)
{
    const uint32_t(*t)[2];
    size_t n;
    switch (kind | 0x20) {
    case 'd': t = DIGIT_SET, n = 1; break;
    case 'w': t = WORD_SET, n = 4; break;
    default: t = SPACE_SET, n = sizeof SPACE_SET / sizeof SPACE_SET[0]; break;
    }
    if (kind >= 'a') { /* lower case: the class itself */
        for (size_t i = 0; i < n; i++)
            if (!cset_add(s, t[i][0], t[i][1]))
                return false;
        return true;
    }
    struct cset pos = {0}, neg = {0};
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = cset_add(&pos, t[i][0], t[i][1]);
    ok = ok && cset_complement(&pos, &neg);
    for (size_t i = 0; ok && i < neg.n; i++)
        ok = cset_add(s, neg.r[i][0], neg.r[i][1]);
    free(pos.r);
    free(neg.r);
    return ok;
}

/* ---- the tree --------------------------------------------------------------------------------- */

int regex_fail(struct pparse *p, const char *what)
{
    return gconv_fail(p->c, BW_EINVAL, "pattern \"%.60s\": %s", p->pattern, what);
}

int regex_node_new(struct pparse *p, int kind)
{
    if (p->n_nodes == p->cap_nodes) {
        int cap = p->cap_nodes ? 2 * p->cap_nodes : 32;
        struct pnode *n = realloc(p->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return gconv_fail(p->c, BW_ENOMEM, "out of memory"), -1;
        p->nodes = n;
        p->cap_nodes = cap;
    }
    p->nodes[p->n_nodes] = (struct pnode){.kind = kind};
    return p->n_nodes++;
}

bool regex_kid_add(struct pparse *p, int parent, int kid)
{
    struct pnode *n = &p->nodes[parent];
    if (n->n_kids == n->cap_kids) {
        int cap = n->cap_kids ? 2 * n->cap_kids : 4;
        int *k = realloc(n->kids, (size_t)cap * sizeof *k);
        if (!k) {
            gconv_fail(p->c, BW_ENOMEM, "out of memory");
            return false;
        }
        n->kids = k;
        n->cap_kids = cap;
    }
    n->kids[n->n_kids++] = kid;
    return true;
}

static uint32_t utf8_decode(const char **s, const char *end)
{
    const unsigned char *u = (const unsigned char *)*s;
    uint32_t cp = u[0];
    int n = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
    if (n > 1)
        cp &= 0x3F >> (n - 1);
    for (int i = 1; i < n; i++) {
        if ((const char *)u + i >= end || (u[i] & 0xC0) != 0x80) {
            n = i;
            break;
        }
        cp = (cp << 6) | (u[i] & 0x3F);
    }
    *s += n;
    return cp;
}

static int hex_value(const char *s, int n, const char *end)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s + i >= end)
            return -1;
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f' ? (ch | 0x20) - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* An escape after '\' (p->s on the letter). Sets *cp, or adds a class to *set and sets
 * *is_set. in_class: inside [...] (\b is a backspace there). Returns BW_OK or the error. */
static int parse_escape(struct pparse *p, bool in_class, uint32_t *cp, struct cset *set, bool *is_set)
{
    *is_set = false;
    if (p->s >= p->end)
        return regex_fail(p, "trailing backslash");
    char ch = *p->s++;
    switch (ch) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        *is_set = true;
        return cset_add_class(set, ch) ? BW_OK : gconv_fail(p->c, BW_ENOMEM, "out of memory");
    case 't': *cp = '\t'; return BW_OK;
    case 'n': *cp = '\n'; return BW_OK;
    case 'r': *cp = '\r'; return BW_OK;
    case 'f': *cp = '\f'; return BW_OK;
    case 'v': *cp = '\v'; return BW_OK;
    case '0': *cp = 0; return BW_OK;
    case 'b':
        if (in_class) {
            *cp = '\b';
            return BW_OK;
        }
        return regex_fail(p, "\\b (word boundary) is not supported");
    case 'B': return regex_fail(p, "\\B (word boundary) is not supported");
    case 'k': return regex_fail(p, "backreferences are not supported");
    case 'p': case 'P': return regex_fail(p, "\\p{...} (Unicode properties) is not supported");
    case 'c':
        if (p->s < p->end && ((*p->s | 0x20) >= 'a' && (*p->s | 0x20) <= 'z')) {
            *cp = (uint32_t)(*p->s++ % 32);
            return BW_OK;
        }
        return regex_fail(p, "bad \\c escape");
    case 'x': {
        int v = hex_value(p->s, 2, p->end);
        if (v < 0)
            return regex_fail(p, "bad \\x escape");
        p->s += 2;
        *cp = (uint32_t)v;
        return BW_OK;
    }
    case 'u': {
        if (p->s < p->end && *p->s == '{') {
            const char *st = p->s + 1, *e = st;
            while (e < p->end && *e != '}')
                e++;
            int v = e - st >= 1 && e - st <= 6 ? hex_value(st, (int)(e - st), p->end) : -1;
            if (e >= p->end || v < 0 || v > CP_MAX)
                return regex_fail(p, "bad \\u{...} escape");
            p->s = e + 1;
            *cp = (uint32_t)v;
            return BW_OK;
        }
        int v = hex_value(p->s, 4, p->end);
        if (v < 0)
            return regex_fail(p, "bad \\u escape");
        p->s += 4;
        *cp = (uint32_t)v;
        return BW_OK;
    }
    default:
        if (ch >= '1' && ch <= '9')
            return regex_fail(p, "backreferences are not supported");
        p->s--;
        *cp = utf8_decode(&p->s, p->end); /* escaped punctuation (or a letter): itself */
        return BW_OK;
    }
}

static int parse_class(struct pparse *p, int node)
{
    struct cset raw = {0};
    bool neg = p->s < p->end && *p->s == '^';
    if (neg)
        p->s++;
    int rc = BW_OK;
    while (!rc && p->s < p->end && *p->s != ']') {
        uint32_t lo, hi;
        bool is_set = false;
        if (*p->s == '\\') {
            p->s++;
            rc = parse_escape(p, true, &lo, &raw, &is_set);
        } else {
            lo = utf8_decode(&p->s, p->end);
        }
        if (rc || is_set)
            continue;
        hi = lo;
        if (p->s + 1 < p->end && *p->s == '-' && p->s[1] != ']') {
            p->s++;
            if (*p->s == '\\') {
                p->s++;
                rc = parse_escape(p, true, &hi, &raw, &is_set);
                if (!rc && is_set)
                    rc = regex_fail(p, "a class escape cannot end a range");
            } else {
                hi = utf8_decode(&p->s, p->end);
            }
            if (!rc && hi < lo)
                rc = regex_fail(p, "range out of order in character class");
        }
        if (!rc && !cset_add(&raw, lo, hi))
            rc = gconv_fail(p->c, BW_ENOMEM, "out of memory");
    }
    if (!rc && p->s >= p->end)
        rc = regex_fail(p, "unterminated character class");
    if (!rc) {
        p->s++;
        cset_normalize(&raw);
        if (neg) {
            rc = cset_complement(&raw, &p->nodes[node].set) ? BW_OK : gconv_fail(p->c, BW_ENOMEM, "out of memory");
            free(raw.r);
        } else {
            p->nodes[node].set = raw;
        }
    } else {
        free(raw.r);
    }
    return rc;
}

int regex_parse(struct pparse *p);

/* {n}, {n,}, {n,m} at p->s (on '{'): true and the counts when it is one. */
static bool read_braces(struct pparse *p, long *min, long *max)
{
    const char *s = p->s + 1;
    char *e;
    if (s >= p->end || *s < '0' || *s > '9')
        return false;
    *min = strtol(s, &e, 10);
    *max = *min;
    if (e < p->end && *e == ',') {
        e++;
        *max = -1;
        if (e < p->end && *e >= '0' && *e <= '9')
            *max = strtol(e, &e, 10);
    }
    if (e >= p->end || *e != '}')
        return false;
    p->s = e + 1;
    return true;
}

/* One atom with its quantifier; -1 at the end of the sequence; -2 on error. */
static int parse_item(struct pparse *p)
{
    if (p->s >= p->end || *p->s == '|' || *p->s == ')')
        return -1;
    char ch = *p->s;
    int n;
    if (ch == '(') {
        p->s++;
        if (p->s < p->end && *p->s == '?') {
            if (p->s + 1 < p->end && p->s[1] == ':') {
                p->s += 2;
            } else if (p->s + 1 < p->end && p->s[1] == '<' && p->s + 2 < p->end && p->s[2] != '=' && p->s[2] != '!') {
                const char *e = memchr(p->s, '>', (size_t)(p->end - p->s));
                if (!e)
                    return regex_fail(p, "bad group name"), -2;
                p->s = e + 1;
            } else if (p->s + 1 < p->end && (p->s[1] == '=' || p->s[1] == '!' || p->s[1] == '<')) {
                return regex_fail(p, "lookahead and lookbehind are not supported"), -2;
            } else {
                return regex_fail(p, "unsupported group syntax"), -2;
            }
        }
        if (++p->depth > MAX_NESTING)
            return regex_fail(p, "groups nested too deeply"), -2;
        n = regex_parse(p);
        p->depth--;
        if (n < 0)
            return -2;
        if (p->s >= p->end || *p->s != ')')
            return regex_fail(p, "unbalanced parentheses"), -2;
        p->s++;
    } else if (ch == '[') {
        p->s++;
        if ((n = regex_node_new(p, P_SET)) < 0 || parse_class(p, n))
            return -2;
    } else if (ch == '.') {
        p->s++;
        if ((n = regex_node_new(p, P_DOT)) < 0)
            return -2;
    } else if (ch == '^' || ch == '$') {
        return regex_fail(p, "anchors inside the pattern are not supported"), -2;
    } else if (ch == '*' || ch == '+' || ch == '?') {
        return regex_fail(p, "nothing to repeat"), -2;
    } else {
        long a, b;
        const char *save = p->s;
        if (ch == '{' && read_braces(p, &a, &b)) {
            p->s = save;
            return regex_fail(p, "nothing to repeat"), -2;
        }
        uint32_t cp;
        struct cset set = {0};
        bool is_set = false;
        if (ch == '\\') {
            p->s++;
            if (parse_escape(p, false, &cp, &set, &is_set)) {
                free(set.r);
                return -2;
            }
        } else {
            cp = utf8_decode(&p->s, p->end);
        }
        if ((n = regex_node_new(p, is_set ? P_SET : P_CHAR)) < 0) {
            free(set.r);
            return -2;
        }
        if (is_set) {
            cset_normalize(&set);
            p->nodes[n].set = set;
        } else {
            p->nodes[n].cp = cp;
        }
    }
    /* quantifier */
    long min, max;
    if (p->s >= p->end)
        return n;
    if (*p->s == '*' || *p->s == '+' || *p->s == '?') {
        min = *p->s == '+';
        max = *p->s == '?' ? 1 : -1;
        p->s++;
    } else if (*p->s != '{' || !read_braces(p, &min, &max)) {
        return n;
    }
    if (p->s < p->end && *p->s == '?') /* lazy: the same strings */
        p->s++;
    if (p->s < p->end && (*p->s == '*' || *p->s == '+' || *p->s == '?' || *p->s == '{'))
        return regex_fail(p, "nothing to repeat"), -2;
    if (max >= 0 && max < min)
        return regex_fail(p, "quantifier range out of order"), -2;
    if (min > GBNF_MAX_REPEAT)
        return gconv_fail(p->c, BW_EINVAL, "pattern \"%.60s\": repetitions over %d are not supported", p->pattern,
                          GBNF_MAX_REPEAT), -2;
    if (max > GBNF_MAX_REPEAT)
        max = GBNF_MAX_REPEAT;
    int r = regex_node_new(p, P_REP);
    if (r < 0 || !regex_kid_add(p, r, n))
        return -2;
    p->nodes[r].min = (int)min;
    p->nodes[r].max = (int)max;
    return r;
}

int regex_parse(struct pparse *p)
{
    int alt = regex_node_new(p, P_ALT);
    while (alt >= 0) {
        int seq = regex_node_new(p, P_SEQ);
        if (seq < 0 || !regex_kid_add(p, alt, seq))
            return -1;
        int it;
        while ((it = parse_item(p)) >= 0)
            if (!regex_kid_add(p, seq, it))
                return -1;
        if (it == -2)
            return -1;
        if (p->s >= p->end || *p->s != '|')
            break;
        p->s++;
    }
    return alt;
}

void regex_free(struct pparse *p)
{
    for (int i = 0; i < p->n_nodes; i++) {
        free(p->nodes[i].kids);
        free(p->nodes[i].set.r);
    }
    free(p->nodes);
    p->nodes = NULL;
    p->n_nodes = p->cap_nodes = 0;
}
