/* regex_int.h -- the regex tree of schema_pattern.c, parsed by regex_parse.c. Private to
 * src/grammar/. */
#ifndef BELLOWS_GRAMMAR_REGEX_INT_H
#define BELLOWS_GRAMMAR_REGEX_INT_H

#include "grammar/gbnf_int.h"

#define CP_MAX 0x10FFFF

/* A set of code points: sorted, disjoint ranges. */
struct cset {
    uint32_t (*r)[2];
    size_t n, cap;
};
bool cset_add(struct cset *s, uint32_t lo, uint32_t hi);
/* out = the complement of s (normalized) over 0..CP_MAX */
bool cset_complement(const struct cset *s, struct cset *out);
bool cset_has(const struct cset *s, uint32_t cp);

enum { P_CHAR, P_SET, P_DOT, P_ANY, P_SEQ, P_ALT, P_REP };

struct pnode {
    int kind;         /* P_ANY: any character at all (the pad of an unanchored side) */
    uint32_t cp;      /* P_CHAR */
    struct cset set;  /* P_SET (normalized) */
    int *kids;        /* P_SEQ, P_ALT: node indexes; P_REP: kids[0] */
    int n_kids, cap_kids;
    int min, max;     /* P_REP; max -1: none */
};

struct pparse {
    struct gconv *c;
    const char *pattern;
    const char *s, *end; /* what is left to parse */
    struct pnode *nodes;
    int n_nodes, cap_nodes;
    int depth;
    const char *name; /* of the rule being written */
    int n_sub;        /* sub-rules written */
};

/* Parses the pattern between p->s and p->end (the anchors already taken off) into
 * alternatives; returns the node index, or -1 (error recorded). */
int regex_parse(struct pparse *p);
int regex_node_new(struct pparse *p, int kind);
bool regex_kid_add(struct pparse *p, int parent, int kid);
/* Records "pattern "...": WHAT"; returns the code. */
int regex_fail(struct pparse *p, const char *what);
void regex_free(struct pparse *p);

#endif
