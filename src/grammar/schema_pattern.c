/* schema_pattern.c -- a JSON Schema `pattern` (an ECMA-262 regex) as the GBNF of the JSON
 * strings it matches.
 *
 * The regex is parsed into a small tree (characters, classes, '.', sequences,
 * alternatives, repetitions), then written out as the JSON text of each matching string:
 * a '"' or '\' the regex matches is written escaped, control characters as JSON escapes,
 * '.' and negated classes never produce a raw '"', '\' or control character. A side without
 * its anchor (^ or $) may carry any characters, as JSON Schema's "matches anywhere" says.
 *
 * Supported: literals, escaped punctuation, \d \w \s \D \W \S, \t \n \r \f \v \0 \xHH
 * \uHHHH \u{H...} \cX, classes with ranges, '.', groups ( ), (?: ), (?<name> ), |, the
 * quantifiers * + ? {n} {n,} {n,m} and their lazy forms. Errors: lookaround, backreferences,
 * \b \B, \p{...}, anchors inside the pattern, anything malformed.
 *
 * minLength / maxLength next to a pattern: every quantifier's maximum is lowered (the same
 * extra allowance for all, as large as fits) until the longest match fits maxLength; a
 * pattern whose shortest match is under minLength, or whose fixed part is over maxLength,
 * is an error. */
#define _GNU_SOURCE
#include "grammar/regex_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEN_INF 1000000000L

/* ---- lengths ------------------------------------------------------------------------------------ */

/* A repetition's maximum with every maximum lowered to min + extra (extra < 0: as written). */
static long rep_max(const struct pnode *n, long extra)
{
    if (extra < 0)
        return n->max;
    long m = n->min + extra;
    return n->max >= 0 && n->max < m ? n->max : m;
}

static long sat_mul(long a, long b) { return a && b > LEN_INF / a ? LEN_INF : a * b; }
static long sat_add(long a, long b) { return a + b > LEN_INF ? LEN_INF : a + b; }

static long min_len(const struct pparse *p, int i)
{
    const struct pnode *n = &p->nodes[i];
    long v = 0;
    switch (n->kind) {
    case P_SEQ:
        for (int k = 0; k < n->n_kids; k++)
            v = sat_add(v, min_len(p, n->kids[k]));
        return v;
    case P_ALT:
        v = LEN_INF;
        for (int k = 0; k < n->n_kids; k++) {
            long m = min_len(p, n->kids[k]);
            v = m < v ? m : v;
        }
        return v;
    case P_REP: return sat_mul(n->min, min_len(p, n->kids[0]));
    default: return 1;
    }
}

static long max_len(const struct pparse *p, int i, long extra)
{
    const struct pnode *n = &p->nodes[i];
    long v = 0;
    switch (n->kind) {
    case P_SEQ:
        for (int k = 0; k < n->n_kids; k++)
            v = sat_add(v, max_len(p, n->kids[k], extra));
        return v;
    case P_ALT:
        for (int k = 0; k < n->n_kids; k++) {
            long m = max_len(p, n->kids[k], extra);
            v = m > v ? m : v;
        }
        return v;
    case P_REP: {
        long m = rep_max(n, extra), inner = max_len(p, n->kids[0], extra);
        return m < 0 ? (inner ? LEN_INF : 0) : sat_mul(m, inner);
    }
    default: return 1;
    }
}

/* ---- writing ------------------------------------------------------------------------------------ */

/* The JSON text of one character inside a string, as a GBNF literal's content. */
static void json_char(struct textbuf *b, uint32_t cp)
{
    char u[8];
    switch (cp) {
    case '"': textbuf_add(b, "\\\\\\\""); return; /* JSON \" written in a GBNF literal */
    case '\\': textbuf_add(b, "\\\\\\\\"); return;
    case '\n': textbuf_add(b, "\\\\n"); return;
    case '\r': textbuf_add(b, "\\\\r"); return;
    case '\t': textbuf_add(b, "\\\\t"); return;
    case '\b': textbuf_add(b, "\\\\b"); return;
    case '\f': textbuf_add(b, "\\\\f"); return;
    }
    if (cp < 0x20 || cp == 0x7F) {
        textbuf_addf(b, "\\\\u%04x", (unsigned)cp);
        return;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) { /* not a character: as an escape */
        textbuf_addf(b, "\\\\u%04x", (unsigned)cp);
        return;
    }
    int n = 0;
    if (cp < 0x80) {
        u[n++] = (char)cp;
    } else if (cp < 0x800) {
        u[n++] = (char)(0xC0 | cp >> 6);
        u[n++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        u[n++] = (char)(0xE0 | cp >> 12);
        u[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[n++] = (char)(0x80 | (cp & 0x3F));
    } else {
        u[n++] = (char)(0xF0 | cp >> 18);
        u[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[n++] = (char)(0x80 | (cp & 0x3F));
    }
    textbuf_addn(b, u, (size_t)n);
}

static void class_range(struct textbuf *b, uint32_t lo, uint32_t hi)
{
    gbnf_class_char(b, lo);
    if (hi != lo) {
        textbuf_add(b, "-");
        gbnf_class_char(b, hi);
    }
}

/* A set: the characters JSON writes as they are in one class, the others as escapes. */
static int write_set(struct pparse *p, const struct cset *s, struct textbuf *b)
{
    /* written raw: not a control, '"', '\', DEL or a surrogate half */
    static const uint32_t RAW[][2] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7E}, {0x80, 0xD7FF}, {0xE000, CP_MAX}};
    struct cset raw = {0};
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < 5; k++) {
            uint32_t lo = s->r[i][0] > RAW[k][0] ? s->r[i][0] : RAW[k][0];
            uint32_t hi = s->r[i][1] < RAW[k][1] ? s->r[i][1] : RAW[k][1];
            if (lo <= hi && !cset_add(&raw, lo, hi)) {
                free(raw.r);
                return gconv_fail(p->c, BW_ENOMEM, "out of memory");
            }
        }
    int n_alts = 0;
    struct textbuf alts = {0};
    if (raw.n) {
        n_alts++;
        /* positive ranges even for "mostly everything" (GBNF_RAW_CHAR says why) */
        textbuf_add(&alts, "[");
        for (size_t i = 0; i < raw.n; i++)
            class_range(&alts, raw.r[i][0], raw.r[i][1]);
        textbuf_add(&alts, "]");
    }
    free(raw.r);
    bool all_controls = true;
    for (uint32_t cp = 0; cp < 0x20 && all_controls; cp++)
        all_controls = cset_has(s, cp);
    if (all_controls) {
        textbuf_add(&alts, n_alts++ ? " | " : "");
        textbuf_add(&alts, "\"\\\\u00\" [01] [0-9a-fA-F]");
    }
    static const uint32_t ESC[] = {'"', '\\', 0x7F, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A,
                                   0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                   0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F};
    for (size_t i = 0; i < sizeof ESC / sizeof ESC[0]; i++) {
        if ((all_controls && ESC[i] < 0x20) || !cset_has(s, ESC[i]))
            continue;
        textbuf_add(&alts, n_alts++ ? " | \"" : "\"");
        json_char(&alts, ESC[i]);
        textbuf_add(&alts, "\"");
    }
    int rc = BW_OK;
    if (!n_alts)
        rc = regex_fail(p, "a character class matches nothing");
    else if (n_alts == 1)
        textbuf_add(b, textbuf_str(&alts));
    else
        textbuf_addf(b, "(%s)", textbuf_str(&alts));
    textbuf_fini(&alts);
    return rc;
}

static int write_node(struct pparse *p, int i, long extra, struct textbuf *b);

/* A repeated node: a literal, class or rule is repeated as it is; anything else becomes
 * a rule of its own first (libllama multiplies a group's rules by the count). */
static int write_rep(struct pparse *p, const struct pnode *n, long extra, struct textbuf *b)
{
    long max = rep_max(n, extra);
    if (max == 0)
        return BW_OK;
    const struct pnode *k = &p->nodes[n->kids[0]];
    struct textbuf item = {0};
    int rc = write_node(p, n->kids[0], extra, &item);
    if (!rc && !item.oom) {
        bool simple = k->kind == P_CHAR || k->kind == P_DOT || k->kind == P_ANY || (k->kind == P_SET && textbuf_str(&item)[0] == '[');
        if (!simple && (n->min > 1 || max > 1)) {
            char nm[32];
            snprintf(nm, sizeof nm, "-%d", ++p->n_sub);
            struct textbuf rn = {0};
            textbuf_addf(&rn, "%s%s", p->name, nm);
            const char *r = rn.oom ? NULL : grule_add(p->c, textbuf_str(&rn), textbuf_str(&item));
            textbuf_fini(&rn);
            if (r)
                gbnf_repeat(b, r, n->min, (int)max, NULL);
            rc = p->c->code;
        } else if (!simple) {
            struct textbuf g = {0};
            textbuf_addf(&g, "(%s)", textbuf_str(&item));
            gbnf_repeat(b, textbuf_str(&g), n->min, (int)max, NULL);
            textbuf_fini(&g);
        } else {
            gbnf_repeat(b, textbuf_str(&item), n->min, (int)max, NULL);
        }
    }
    if (item.oom && !rc)
        rc = gconv_fail(p->c, BW_ENOMEM, "out of memory");
    textbuf_fini(&item);
    return rc;
}

static int write_node(struct pparse *p, int i, long extra, struct textbuf *b)
{
    const struct pnode *n = &p->nodes[i];
    int rc = BW_OK;
    switch (n->kind) {
    case P_CHAR:
        textbuf_add(b, "\"");
        json_char(b, n->cp);
        textbuf_add(b, "\"");
        return BW_OK;
    case P_SET:
        return write_set(p, &n->set, b);
    case P_DOT:
    case P_ANY: {
        const char *d = n->kind == P_DOT ? gprim_add(p->c, "dot", "dot") : gprim_add(p->c, "char", "char");
        if (d)
            textbuf_add(b, d);
        return p->c->code;
    }
    case P_REP:
        return write_rep(p, n, extra, b);
    case P_ALT:
        if (n->n_kids == 1)
            return write_node(p, n->kids[0], extra, b);
        textbuf_add(b, "(");
        for (int k = 0; k < n->n_kids && !rc; k++) {
            textbuf_add(b, k ? " | " : "");
            rc = write_node(p, n->kids[k], extra, b);
        }
        textbuf_add(b, ")");
        return rc;
    default: { /* P_SEQ: runs of characters become one literal */
        bool in_lit = false, any = false;
        for (int k = 0; k < n->n_kids && !rc; k++) {
            const struct pnode *kid = &p->nodes[n->kids[k]];
            if (kid->kind == P_CHAR) {
                textbuf_add(b, in_lit ? "" : any ? " \"" : "\"");
                json_char(b, kid->cp);
                in_lit = any = true;
                continue;
            }
            if (in_lit)
                textbuf_add(b, "\"");
            in_lit = false;
            size_t before = b->len;
            if (any)
                textbuf_add(b, " ");
            size_t mark = b->len;
            rc = write_node(p, n->kids[k], extra, b);
            if (b->len == mark && b->s) { /* wrote nothing ({0}) */
                b->len = before;
                b->s[before] = '\0';
            } else {
                any = true;
            }
        }
        if (in_lit)
            textbuf_add(b, "\"");
        if (!any)
            textbuf_add(b, "\"\"");
        return rc;
    }
    }
}

/* ---- the rule ----------------------------------------------------------------------------------- */

static bool escaped_at(const char *pattern, size_t i) /* is pattern[i] preceded by an odd run of '\' */
{
    size_t n = 0;
    while (i > n && pattern[i - n - 1] == '\\')
        n++;
    return n % 2;
}

static void add_pad(struct pparse *p, int root)
{
    int any = regex_node_new(p, P_ANY), rep = any >= 0 ? regex_node_new(p, P_REP) : -1;
    if (rep < 0 || !regex_kid_add(p, rep, any) || !regex_kid_add(p, root, rep)) {
        if (!p->c->code)
            gconv_fail(p->c, BW_ENOMEM, "out of memory");
        return;
    }
    p->nodes[rep].min = 0;
    p->nodes[rep].max = -1;
}

const char *schema_pattern(struct gconv *c, const char *pattern, int min_len_kw, int max_len_kw, const char *name)
{
    size_t len = strlen(pattern);
    struct pparse p = {.c = c, .pattern = pattern, .name = name};
    bool start = len && pattern[0] == '^';
    bool end = len > (size_t)start && pattern[len - 1] == '$' && !escaped_at(pattern, len - 1);
    p.s = pattern + start;
    p.end = pattern + len - end;
    /* root: SEQ(pad?, body, pad?), pad = any character any number of times, where unanchored */
    int root = regex_node_new(&p, P_SEQ);
    if (root >= 0 && !start)
        add_pad(&p, root);
    int body = c->code ? -1 : regex_parse(&p);
    if (body >= 0 && regex_kid_add(&p, root, body) && p.s < p.end)
        regex_fail(&p, "unbalanced parentheses");
    if (!c->code && !end)
        add_pad(&p, root);
    const char *r = NULL;
    long extra = -1;
    if (!c->code) {
        long lo = min_len(&p, root);
        if (lo < min_len_kw) {
            gconv_fail(c, BW_EINVAL, "'minLength' next to pattern \"%.60s\" is not supported: the pattern matches "
                                     "strings of %ld characters", pattern, lo);
        } else if (max_len_kw >= 0 && max_len(&p, root, -1) > max_len_kw) {
            if (max_len(&p, root, 0) > max_len_kw) {
                gconv_fail(c, BW_EINVAL, "'maxLength' next to pattern \"%.60s\": the pattern's shortest forms are "
                                         "longer than %d characters", pattern, max_len_kw);
            } else { /* the largest extra allowance that fits */
                long a = 0, b = max_len_kw;
                while (a < b) {
                    long m = (a + b + 1) / 2;
                    if (max_len(&p, root, m) <= max_len_kw)
                        a = m;
                    else
                        b = m - 1;
                }
                extra = a;
            }
        }
    }
    if (!c->code) {
        struct textbuf b = {0};
        textbuf_add(&b, "\"\\\"\" (");
        int rc = write_node(&p, root, extra, &b);
        textbuf_add(&b, ") \"\\\"\"");
        if (!rc && b.oom)
            gconv_fail(c, BW_ENOMEM, "out of memory");
        else if (!rc)
            r = grule_add(c, name, textbuf_str(&b));
        textbuf_fini(&b);
    }
    regex_free(&p);
    return r;
}
