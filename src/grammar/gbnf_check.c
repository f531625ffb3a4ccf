/* gbnf_check.c -- checks on the finished rule table, so that no grammar reaches a runner
 * that libllama refuses or that can never end.
 *
 * The bodies are the converter's own GBNF (names, "literals", [classes], groups, | and the
 * quantifiers ? * + {m,n}). Each is parsed once into items; then three fixpoints:
 *   productive  a rule can end (derives some finite text);
 *   nullable    a rule can derive the empty text;
 *   left edges  rule A can reach rule B before reading anything.
 * Every alternative of every rule must be productive: otherwise a model that takes it is
 * held forever (a required property that contains itself). A cycle of left edges is left
 * recursion, which libllama's parser refuses. */
#define _GNU_SOURCE
#include "grammar/gbnf_int.h"

#include <stdlib.h>
#include <string.h>

enum { IT_TERM, IT_EMPTY, IT_REF, IT_GROUP };

struct citem {
    int kind;
    int idx;  /* IT_REF: rule index; IT_GROUP: group index */
    bool opt; /* quantified with a minimum of 0 */
};
struct cseq {
    int first, n; /* items */
};
struct cgroup {
    int first, n; /* seqs */
    int rule;     /* the rule it belongs to */
};

struct checker {
    struct gconv *c;
    struct citem *items;
    int n_items, cap_items;
    struct cseq *seqs;
    int n_seqs, cap_seqs;
    struct cgroup *groups;
    int n_groups, cap_groups;
    int *rule_group; /* per rule: its top group */
    bool oom;
};

static bool grow(void **p, int *cap, int n, size_t size)
{
    if (n < *cap)
        return true;
    int nc = *cap ? 2 * *cap : 64;
    void *q = realloc(*p, (size_t)nc * size);
    if (!q)
        return false;
    *p = q;
    *cap = nc;
    return true;
}

/* Doubles *buf, which starts as the caller's stack array of *cap elements and moves to the
 * heap on its first growth (*heap then true: the caller frees it). False when out of memory
 * (*buf unchanged). */
static bool grow_local(void **buf, int *cap, bool *heap, size_t size)
{
    void *bigger = *heap ? realloc(*buf, 2 * (size_t)*cap * size) : malloc(2 * (size_t)*cap * size);
    if (!bigger)
        return false;
    if (!*heap)
        memcpy(bigger, *buf, (size_t)*cap * size);
    *buf = bigger;
    *heap = true;
    *cap *= 2;
    return true;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static bool word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
}

static int rule_index(struct checker *k, const char *name, size_t len)
{
    int lo = 0, hi = (int)k->c->n_rules - 1; /* rules are sorted by name */
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *m = k->c->rules[mid].name;
        int cmp = strncmp(m, name, len);
        if (!cmp && m[len])
            cmp = 1;
        if (!cmp)
            return mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static const char *parse_group(struct checker *k, const char *s, int rule, int *out);

/* One sequence up to '|', ')' or the end; appends its items contiguously. */
static const char *parse_seq(struct checker *k, const char *s, int rule, struct cseq *seq)
{
    struct citem local[64], *items = local;
    int n = 0, cap = 64;
    bool heap = false;
    for (s = skip_ws(s); *s && *s != '|' && *s != ')'; s = skip_ws(s)) {
        struct citem it = {0};
        if (*s == '"') {
            const char *st = ++s;
            while (*s && *s != '"')
                s += (*s == '\\' && s[1]) ? 2 : 1;
            it.kind = s == st ? IT_EMPTY : IT_TERM;
            if (*s)
                s++;
        } else if (*s == '[') {
            s++;
            while (*s && *s != ']')
                s += (*s == '\\' && s[1]) ? 2 : 1;
            it.kind = IT_TERM;
            if (*s)
                s++;
        } else if (*s == '(') {
            it.kind = IT_GROUP;
            s = parse_group(k, s + 1, rule, &it.idx);
            if (!s)
                break;
            if (*s == ')')
                s++;
        } else if (word_char(*s)) {
            const char *st = s;
            while (word_char(*s))
                s++;
            it.kind = IT_REF;
            it.idx = rule_index(k, st, (size_t)(s - st));
            if (it.idx < 0) {
                gconv_fail(k->c, BW_EINVAL, "internal: rule %s refers to a missing rule %.*s", k->c->rules[rule].name,
                           (int)(s - st), st);
                s = NULL;
                break;
            }
        } else if ((*s == '?' || *s == '*' || *s == '{') && n > 0) {
            if (*s == '{') {
                s++;
                items[n - 1].opt = items[n - 1].opt || strtol(s, NULL, 10) == 0;
                while (*s && *s != '}')
                    s++;
            } else {
                items[n - 1].opt = true;
            }
            if (*s)
                s++;
            continue;
        } else if (*s == '+' && n > 0) {
            s++;
            continue;
        } else {
            gconv_fail(k->c, BW_EINVAL, "internal: rule %s does not parse at '%.20s'", k->c->rules[rule].name, s);
            s = NULL;
            break;
        }
        if (n == cap && !grow_local((void **)&items, &cap, &heap, sizeof *items)) {
            k->oom = true;
            s = NULL;
            break;
        }
        items[n++] = it;
    }
    while (s && k->n_items + n > k->cap_items)
        if (!grow((void **)&k->items, &k->cap_items, k->cap_items, sizeof *k->items)) {
            k->oom = true;
            s = NULL;
        }
    if (s) {
        memcpy(k->items + k->n_items, items, (size_t)n * sizeof *items);
        seq->first = k->n_items;
        seq->n = n;
        k->n_items += n;
    }
    if (heap)
        free(items);
    return s;
}

/* Alternatives up to ')' or the end; *out = the group's index. */
static const char *parse_group(struct checker *k, const char *s, int rule, int *out)
{
    struct cseq local[32], *seqs = local;
    int n = 0, cap = 32;
    bool heap = false;
    for (;;) {
        struct cseq seq;
        s = parse_seq(k, s, rule, &seq);
        if (!s)
            break;
        if (n == cap && !grow_local((void **)&seqs, &cap, &heap, sizeof *seqs)) {
            k->oom = true;
            s = NULL;
            break;
        }
        seqs[n++] = seq;
        if (*s != '|')
            break;
        s++;
    }
    while (s && k->n_seqs + n > k->cap_seqs)
        if (!grow((void **)&k->seqs, &k->cap_seqs, k->cap_seqs, sizeof *k->seqs)) {
            k->oom = true;
            s = NULL;
        }
    if (s && !grow((void **)&k->groups, &k->cap_groups, k->n_groups, sizeof *k->groups)) {
        k->oom = true;
        s = NULL;
    }
    if (s) {
        memcpy(k->seqs + k->n_seqs, seqs, (size_t)n * sizeof *seqs);
        k->groups[k->n_groups] = (struct cgroup){.first = k->n_seqs, .n = n, .rule = rule};
        *out = k->n_groups++;
        k->n_seqs += n;
    }
    if (heap)
        free(seqs);
    return s;
}

/* ---- the fixpoints ------------------------------------------------------------------------ */

/* An item's flag: productive (nullable false) or nullable (true). */
static bool item_flag(const struct checker *k, const struct citem *it, const bool *rule_flag, const bool *group_flag,
                      bool nullable)
{
    switch (it->kind) {
    case IT_TERM: return !nullable;
    case IT_EMPTY: return true;
    case IT_REF: return rule_flag[it->idx];
    default: return group_flag[it->idx];
    }
}

/* productive (nullable = false) or nullable (true): seq ok when every item is ok or optional */
static void fixpoint(const struct checker *k, bool *rule_flag, bool *group_flag, bool nullable)
{
    bool changed = true;
    while (changed) {
        changed = false;
        for (int g = 0; g < k->n_groups; g++) {
            if (group_flag[g])
                continue;
            const struct cgroup *gr = &k->groups[g];
            for (int si = 0; si < gr->n && !group_flag[g]; si++) {
                const struct cseq *sq = &k->seqs[gr->first + si];
                bool ok = true;
                for (int i = 0; i < sq->n && ok; i++) {
                    const struct citem *it = &k->items[sq->first + i];
                    ok = it->opt || item_flag(k, it, rule_flag, group_flag, nullable);
                }
                if (ok)
                    group_flag[g] = changed = true;
            }
        }
        for (size_t r = 0; r < k->c->n_rules; r++)
            if (!rule_flag[r] && group_flag[k->rule_group[r]])
                rule_flag[r] = changed = true;
    }
}

/* Left edges of rule R found in group G: every rule referenced before the first item that
 * cannot be empty. */
static void left_edges(const struct checker *k, int g, const bool *nul_r, const bool *nul_g, bool *edge_row)
{
    const struct cgroup *gr = &k->groups[g];
    for (int si = 0; si < gr->n; si++) {
        const struct cseq *sq = &k->seqs[gr->first + si];
        for (int i = 0; i < sq->n; i++) {
            const struct citem *it = &k->items[sq->first + i];
            if (it->kind == IT_REF)
                edge_row[it->idx] = true;
            else if (it->kind == IT_GROUP)
                left_edges(k, it->idx, nul_r, nul_g, edge_row);
            if (!it->opt && !item_flag(k, it, nul_r, nul_g, true))
                break;
        }
    }
}

/* DFS colouring: 0 new, 1 on the stack, 2 done. Returns a rule on a cycle, or -1. */
static int find_cycle(const struct checker *k, const bool *edges, size_t n, int *colour, int r)
{
    colour[r] = 1;
    for (size_t j = 0; j < n; j++) {
        if (!edges[(size_t)r * n + j])
            continue;
        if (colour[j] == 1)
            return (int)j;
        if (colour[j] == 0) {
            int hit = find_cycle(k, edges, n, colour, (int)j);
            if (hit >= 0)
                return hit;
        }
    }
    colour[r] = 2;
    return -1;
}

int gbnf_check(struct gconv *c)
{
    size_t n = c->n_rules;
    struct checker k = {.c = c};
    k.rule_group = calloc(n ? n : 1, sizeof *k.rule_group);
    if (!k.rule_group)
        return gconv_fail(c, BW_ENOMEM, "out of memory");
    for (size_t r = 0; r < n && !c->code && !k.oom; r++) {
        const char *end = parse_group(&k, c->rules[r].body, (int)r, &k.rule_group[r]);
        if (end && *skip_ws(end))
            gconv_fail(c, BW_EINVAL, "internal: rule %s does not parse at '%.20s'", c->rules[r].name, end);
    }
    bool *prod_r = NULL, *prod_g = NULL, *nul_r = NULL, *nul_g = NULL, *edges = NULL;
    int *colour = NULL;
    if (!c->code && !k.oom) {
        prod_r = calloc(n + 1, 1);
        nul_r = calloc(n + 1, 1);
        prod_g = calloc((size_t)k.n_groups + 1, 1);
        nul_g = calloc((size_t)k.n_groups + 1, 1);
        edges = n <= 4096 ? calloc(n * n + 1, 1) : NULL;
        colour = calloc(n + 1, sizeof *colour);
        k.oom = !prod_r || !nul_r || !prod_g || !nul_g || !edges || !colour;
    }
    if (!c->code && !k.oom) {
        fixpoint(&k, prod_r, prod_g, false);
        fixpoint(&k, nul_r, nul_g, true);
        for (size_t r = 0; r < n && !c->code; r++)
            left_edges(&k, k.rule_group[r], nul_r, nul_g, edges + r * n);
        for (size_t r = 0; r < n && !c->code; r++)
            if (colour[r] == 0) {
                int hit = find_cycle(&k, edges, n, colour, (int)r);
                if (hit >= 0)
                    gconv_fail(c, BW_EINVAL,
                               "the schema refers to itself with nothing in between ($ref cycle through "
                               "grammar rule %s): left recursion",
                               c->rules[hit].name);
            }
        /* every alternative of every group must be able to end */
        for (int g = 0; g < k.n_groups && !c->code; g++) {
            const struct cgroup *gr = &k.groups[g];
            for (int si = 0; si < gr->n && !c->code; si++) {
                const struct cseq *sq = &k.seqs[gr->first + si];
                for (int i = 0; i < sq->n; i++)
                    if (!item_flag(&k, &k.items[sq->first + i], prod_r, prod_g, false)) {
                        gconv_fail(c, BW_EINVAL,
                                   "the schema has no finite instance: grammar rule %s can never end "
                                   "(a required property or item that contains itself?)",
                                   c->rules[gr->rule].name);
                        break;
                    }
            }
        }
    }
    if (k.oom && !c->code)
        gconv_fail(c, BW_ENOMEM, "out of memory");
    free(prod_r);
    free(prod_g);
    free(nul_r);
    free(nul_g);
    free(edges);
    free(colour);
    free(k.items);
    free(k.seqs);
    free(k.groups);
    free(k.rule_group);
    return c->code;
}
