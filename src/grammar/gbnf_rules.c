/* gbnf_rules.c -- the rule table of one conversion: names, the built-in rules, literals,
 * repetitions, the sorted output; and the conversion's error and path bookkeeping. */
#define _GNU_SOURCE
#include "grammar/gbnf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/json_schema.h"

/* ---- errors and paths ----------------------------------------------------------------------- */

int gconv_fail(struct gconv *c, int code, const char *fmt, ...)
{
    if (c->code)
        return c->code;
    c->code = code;
    if (c->err) {
        char msg[sizeof c->err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (code == BW_EINVAL && c->path[0] && strcmp(c->path, "#"))
            bw_errf(c->err, code, "%s (at %s)", msg, c->path);
        else
            bw_errf(c->err, code, "%s", msg);
    }
    return code;
}

size_t gconv_push(struct gconv *c, const char *seg)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "/%s", seg);
    return len;
}

size_t gconv_push_index(struct gconv *c, const char *seg, size_t i)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "/%s/%zu", seg, i);
    return len;
}

void gconv_pop(struct gconv *c, size_t len)
{
    if (len < sizeof c->path)
        c->path[len] = '\0';
}

json_t *gconv_keep(struct gconv *c, json_t *v)
{
    if (!v) {
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    if (!c->keep)
        c->keep = json_array();
    if (!c->keep || json_array_append_new(c->keep, v)) {
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    return v;
}

/* ---- the rule table -------------------------------------------------------------------- */

struct grule *grule_find(struct gconv *c, const char *name)
{
    for (size_t i = 0; i < c->n_rules; i++)
        if (!strcmp(c->rules[i].name, name))
            return &c->rules[i];
    return NULL;
}

/* Every run of characters outside [a-zA-Z0-9-] becomes one '-'. */
static char *clean_name(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(n + 1), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)name[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-') {
            *o++ = (char)ch;
            i++;
            continue;
        }
        *o++ = '-';
        while (i < n) {
            ch = (unsigned char)name[i];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-')
                break;
            i++;
        }
    }
    *o = '\0';
    return s;
}

static struct grule *rule_append(struct gconv *c, char *name, char *body)
{
    if (c->n_rules >= JSON_SCHEMA_MAX_RULES) {
        gconv_fail(c, BW_EINVAL, "the schema needs more than %d grammar rules", JSON_SCHEMA_MAX_RULES);
        return NULL;
    }
    if (c->n_rules == c->cap_rules) {
        size_t cap = c->cap_rules ? 2 * c->cap_rules : 32;
        struct grule *r = realloc(c->rules, cap * sizeof *r);
        if (!r) {
            gconv_fail(c, BW_ENOMEM, "out of memory");
            return NULL;
        }
        c->rules = r;
        c->cap_rules = cap;
    }
    c->rules[c->n_rules] = (struct grule){.name = name, .body = body};
    return &c->rules[c->n_rules++];
}

static bool count_bytes(struct gconv *c, size_t n)
{
    c->n_bytes += n;
    if (c->n_bytes > JSON_SCHEMA_MAX_BYTES) {
        gconv_fail(c, BW_EINVAL, "the schema's grammar is larger than %u bytes", JSON_SCHEMA_MAX_BYTES);
        return false;
    }
    return true;
}

/* Where rule NAME (cleaned) goes: NAME itself when free, reserved (filled now) or holding
 * the same BODY; else the first of NAME0, NAME1, ... that is free or holds BODY. With
 * reserve, a free name gets an empty (reserved) rule; reserved rules are never shared. */
static const char *place(struct gconv *c, const char *name, const char *body, bool reserve)
{
    if (c->code)
        return NULL;
    char *clean = clean_name(name);
    if (!clean) {
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    size_t n = strlen(clean);
    char *cand = malloc(n + 24);
    if (!cand) {
        free(clean);
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    strcpy(cand, clean);
    for (long i = -1;; i++) {
        if (i >= 0)
            snprintf(cand + n, 24, "%ld", i);
        struct grule *r = grule_find(c, cand);
        if (!r)
            break;
        if (!reserve && (!r->body && i < 0)) { /* the reserved slot a $ref's visit fills */
            if (!(r->body = strdup(body)) || !count_bytes(c, strlen(body))) {
                free(clean);
                free(cand);
                if (!r->body)
                    gconv_fail(c, BW_ENOMEM, "out of memory");
                return NULL;
            }
            free(clean);
            free(cand);
            return r->name;
        }
        if (!reserve && r->body && !strcmp(r->body, body)) {
            free(clean);
            free(cand);
            return r->name;
        }
    }
    free(clean);
    char *b = reserve ? NULL : strdup(body);
    if ((!reserve && !b) || !count_bytes(c, strlen(cand) + (b ? strlen(b) : 0) + 6)) {
        free(cand);
        free(b);
        if (!c->code)
            gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    struct grule *r = rule_append(c, cand, b);
    if (!r) {
        free(cand);
        free(b);
        return NULL;
    }
    return r->name;
}

const char *grule_add(struct gconv *c, const char *name, const char *body)
{
    if (!body)
        return NULL;
    return place(c, name, body, false);
}

const char *grule_reserve(struct gconv *c, const char *name) { return place(c, name, NULL, true); }

void grule_unreserve(struct gconv *c, const char *name)
{
    for (size_t i = 0; i < c->n_rules; i++)
        if (!strcmp(c->rules[i].name, name) && !c->rules[i].body) {
            free(c->rules[i].name);
            memmove(&c->rules[i], &c->rules[i + 1], (c->n_rules - i - 1) * sizeof c->rules[0]);
            c->n_rules--;
            return;
        }
}

void grules_free(struct gconv *c)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        free(c->rules[i].name);
        free(c->rules[i].body);
    }
    free(c->rules);
    c->rules = NULL;
    c->n_rules = c->cap_rules = 0;
}

/* ---- built-in rules ------------------------------------------------------------------------ */

struct prim {
    const char *name;
    const char *body;
    const char *deps[6];
};

#define HEX "[0-9a-fA-F]"
/* JSON text of one string character: any character but '"', '\' and controls, or an escape
 * (\u escapes of lone surrogate halves left out: not every JSON reader takes them). */
#define CHAR_BODY GBNF_RAW_CHAR " | [\\\\] ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-Ce-fE-F] " HEX "{3} | [dD] [0-7] " HEX "{2}))"

static const struct prim PRIMS[] = {
    {"space", "| \" \" | \"\\n\"{1,2} [ \\t]{0,20}", {0}},
    {"boolean", "(\"true\" | \"false\")", {0}},
    {"null", "\"null\"", {0}},
    {"decimal-part", "[0-9]{1,16}", {0}},
    {"integral-part", "[0] | [1-9] [0-9]{0,15}", {0}},
    /* the exponent has at most two digits: a number any reader takes as a double */
    {"number", "(\"-\"? integral-part) (\".\" decimal-part)? ([eE] [-+]? [0-9]{1,2})?", {"integral-part", "decimal-part"}},
    {"integer", "(\"-\"? integral-part)", {"integral-part"}},
    {"char", CHAR_BODY, {0}},
    {"string", "\"\\\"\" char* \"\\\"\"", {"char"}},
    /* a character of an additional property's name: no escapes, so that no declared name
     * comes back written another way */
    {"key-char", GBNF_RAW_CHAR, {0}},
    {"value", "object | array | string | number | boolean | null", {"object", "array", "string", "number", "boolean", "null"}},
    {"object", "\"{\" space ( string \":\" space value (\",\" space string \":\" space value)* )? space \"}\"", {"string", "value"}},
    {"array", "\"[\" space ( value (\",\" space value)* )? space \"]\"", {"value"}},
    /* a regex '.' inside a JSON string: any character but line breaks, written as JSON */
    {"dot", "[\\x20\\x21\\x23-\\x5B\\x5D-\\x7E\\x80-\\u2027\\u202A-\\uD7FF\\uE000-\\U0010FFFF] | [\\\\] [\"\\\\t]", {0}},
    {"uuid", "\"\\\"\" " HEX "{8} \"-\" " HEX "{4} \"-\" " HEX "{4} \"-\" " HEX "{4} \"-\" " HEX "{12} \"\\\"\"", {0}},
    /* the day fits the month (29 February is left out: not every year has it) */
    {"date", "[0-9]{4} \"-\" ( ( \"0\" [13578] | \"1\" [02] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] ) | "
             "( \"0\" [469] | \"11\" ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"30\" ) | "
             "\"02-\" ( \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8] ) )", {0}},
    {"time", "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{3} )? "
             "( \"Z\" | ( \"+\" | \"-\" ) ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )", {0}},
    {"date-time", "date \"T\" time", {"date", "time"}},
    {"hostname-label", "[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,18} [a-zA-Z0-9] )?", {0}},
    {"hostname", "hostname-label ( \".\" hostname-label ){0,3}", {"hostname-label"}},
    {"email", "[a-zA-Z0-9_+-]{1,20} ( \".\" [a-zA-Z0-9_+-]{1,20} ){0,2} \"@\" hostname-label "
              "( \".\" hostname-label ){0,2} \".\" [a-zA-Z]{2,6}", {"hostname-label"}},
    {"ipv4-octet", "( \"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9] [0-9] | [0-9] )", {0}},
    {"ipv4", "ipv4-octet \".\" ipv4-octet \".\" ipv4-octet \".\" ipv4-octet", {"ipv4-octet"}},
    {"ipv6-h16", HEX "{1,4}", {0}},
    {"ipv6", "ipv6-h16 ( \":\" ipv6-h16 ){7}", {"ipv6-h16"}},
    {"uri", "\"https://\" hostname ( \"/\" [a-zA-Z0-9._~-]{1,20} ){0,4}", {"hostname"}},
    {"date-string", "\"\\\"\" date \"\\\"\"", {"date"}},
    {"time-string", "\"\\\"\" time \"\\\"\"", {"time"}},
    {"date-time-string", "\"\\\"\" date-time \"\\\"\"", {"date-time"}},
    {"hostname-string", "\"\\\"\" hostname \"\\\"\"", {"hostname"}},
    {"email-string", "\"\\\"\" email \"\\\"\"", {"email"}},
    {"ipv4-string", "\"\\\"\" ipv4 \"\\\"\"", {"ipv4"}},
    {"ipv6-string", "\"\\\"\" ipv6 \"\\\"\"", {"ipv6"}},
    {"uri-string", "\"\\\"\" uri \"\\\"\"", {"uri"}},
};

static const struct prim *prim_get(const char *kind)
{
    for (size_t i = 0; i < sizeof PRIMS / sizeof PRIMS[0]; i++)
        if (!strcmp(PRIMS[i].name, kind))
            return &PRIMS[i];
    return NULL;
}

bool gprim_is_reserved(const char *name) { return !strcmp(name, "root") || prim_get(name); }

const char *gprim_add(struct gconv *c, const char *name, const char *kind)
{
    const struct prim *p = prim_get(kind);
    if (!p) {
        gconv_fail(c, BW_EINVAL, "internal: no built-in rule %s", kind);
        return NULL;
    }
    const char *n = grule_add(c, name, p->body);
    for (size_t i = 0; n && i < 6 && p->deps[i]; i++)
        if (!grule_find(c, p->deps[i]) && !gprim_add(c, p->deps[i], p->deps[i]))
            return NULL;
    return n;
}

const char *gprim_format(const char *format, int *min_len, int *max_len)
{
    static const struct {
        const char *format, *prim;
        int min, max;
    } F[] = {
        {"date", "date-string", 10, 10},
        {"time", "time-string", 9, 18},
        {"date-time", "date-time-string", 20, 29},
        {"uuid", "uuid", 36, 36},
        {"uuid1", "uuid", 36, 36},
        {"uuid2", "uuid", 36, 36},
        {"uuid3", "uuid", 36, 36},
        {"uuid4", "uuid", 36, 36},
        {"uuid5", "uuid", 36, 36},
        {"email", "email-string", 6, 132},
        {"hostname", "hostname-string", 1, 83},
        {"ipv4", "ipv4-string", 7, 15},
        {"ipv6", "ipv6-string", 15, 39},
        {"uri", "uri-string", 9, 175},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++)
        if (!strcmp(F[i].format, format)) {
            *min_len = F[i].min;
            *max_len = F[i].max;
            return F[i].prim;
        }
    return NULL;
}

void gbnf_class_char(struct textbuf *b, uint32_t cp)
{
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9'))
        textbuf_addf(b, "%c", (char)cp);
    else if (cp < 0x80)
        textbuf_addf(b, "\\x%02X", (unsigned)cp);
    else if (cp <= 0xFFFF)
        textbuf_addf(b, "\\u%04X", (unsigned)cp);
    else
        textbuf_addf(b, "\\U%08X", (unsigned)cp);
}

void gbnf_raw_class_except(struct textbuf *b, const uint32_t *cps, size_t n)
{
    static const uint32_t RAW[][2] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7E}, {0x80, 0xD7FF}, {0xE000, 0x10FFFF}};
    size_t k = 0;
    textbuf_add(b, "[");
    for (size_t r = 0; r < sizeof RAW / sizeof RAW[0]; r++) {
        uint32_t lo = RAW[r][0];
        for (; k < n && cps[k] <= RAW[r][1]; k++) {
            if (cps[k] < lo)
                continue;
            if (cps[k] > lo) {
                gbnf_class_char(b, lo);
                if (cps[k] - 1 > lo) {
                    textbuf_add(b, "-");
                    gbnf_class_char(b, cps[k] - 1);
                }
            }
            lo = cps[k] + 1;
        }
        if (lo <= RAW[r][1]) {
            gbnf_class_char(b, lo);
            if (RAW[r][1] > lo) {
                textbuf_add(b, "-");
                gbnf_class_char(b, RAW[r][1]);
            }
        }
    }
    textbuf_add(b, "]");
}

/* ---- literals and repetitions ---------------------------------------------------------------- */

void gbnf_literal(struct textbuf *b, const char *text, size_t len)
{
    textbuf_add(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        switch (ch) {
        case '"': textbuf_add(b, "\\\""); break;
        case '\\': textbuf_add(b, "\\\\"); break;
        case '\n': textbuf_add(b, "\\n"); break;
        case '\r': textbuf_add(b, "\\r"); break;
        case '\t': textbuf_add(b, "\\t"); break;
        default:
            if (ch < 0x20 || ch == 0x7F)
                textbuf_addf(b, "\\x%02X", ch);
            else
                textbuf_addn(b, (const char *)&ch, 1);
        }
    }
    textbuf_add(b, "\"");
}

void gbnf_repeat(struct textbuf *b, const char *item, int min, int max, const char *sep)
{
    if (max == 0)
        return;
    if (min == 0 && max == 1) {
        textbuf_addf(b, "%s?", item);
        return;
    }
    if (!sep) {
        if (min == 1 && max < 0)
            textbuf_addf(b, "%s+", item);
        else if (min == 0 && max < 0)
            textbuf_addf(b, "%s*", item);
        else if (max < 0)
            textbuf_addf(b, "%s{%d,}", item, min);
        else
            textbuf_addf(b, "%s{%d,%d}", item, min, max);
        return;
    }
    struct textbuf inner = {0};
    textbuf_addf(&inner, "(%s %s)", sep, item);
    if (min == 0)
        textbuf_add(b, "(");
    textbuf_addf(b, "%s ", item);
    gbnf_repeat(b, textbuf_str(&inner), min == 0 ? 0 : min - 1, max < 0 ? -1 : max - 1, NULL);
    if (min == 0)
        textbuf_add(b, ")?");
    if (inner.oom)
        b->oom = true;
    textbuf_fini(&inner);
}

/* ---- output -------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct grule *)a)->name, ((const struct grule *)b)->name);
}

char *grules_format(struct gconv *c)
{
    if (c->code)
        return NULL;
    for (size_t i = 0; i < c->n_rules; i++)
        if (!c->rules[i].body) {
            gconv_fail(c, BW_EINVAL, "internal: rule %s was never defined", c->rules[i].name);
            return NULL;
        }
    qsort(c->rules, c->n_rules, sizeof c->rules[0], by_name);
    if (gbnf_check(c) != BW_OK)
        return NULL;
    struct textbuf b = {0};
    for (size_t i = 0; i < c->n_rules; i++)
        textbuf_addf(&b, "%s ::= %s\n", c->rules[i].name, c->rules[i].body);
    if (b.oom || !b.s) {
        textbuf_fini(&b);
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    return b.s;
}
