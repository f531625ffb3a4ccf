/* json_schema.c -- the visitor of the JSON-Schema-to-GBNF converter (json_schema.h): one
 * schema node at a time, in llama.cpp's converter's order ($ref, allOf, anyOf/oneOf, type
 * lists, const, enum, objects, arrays, strings, numbers, primitives). */
#define _GNU_SOURCE
#include "grammar/json_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "grammar/gbnf_compose.h"
#include "grammar/gbnf_int.h"

/* ---- keywords -------------------------------------------------------------------------------- */

bool schema_is_annotation(const char *k)
{
    static const char *const A[] = {"title", "description", "default", "examples", "$comment", "$schema", "$id",
                                    "$anchor", "$defs", "definitions", "readOnly", "writeOnly", "deprecated",
                                    "contentEncoding", "contentMediaType", "contentSchema", "$vocabulary",
                                    "$dynamicAnchor", "$recursiveAnchor", "example", "discriminator",
                                    "strict", "name"};
    for (size_t i = 0; i < sizeof A / sizeof A[0]; i++)
        if (!strcmp(A[i], k))
            return true;
    return false;
}

static bool empty_or_true(const json_t *v) { return json_is_true(v) || (json_is_object(v) && !json_object_size(v)); }

/* Keywords that change what is valid and that no grammar of ours holds. A value that
 * changes nothing (minProperties: 0, ...) is accepted. uniqueItems is accepted and not
 * enforced, as llama.cpp and Ollama do: Pydantic writes it for every set field, and
 * refusing those schemas would refuse most structured-output clients over a rare case. */
static int check_keywords(struct gconv *c, const json_t *schema)
{
    static const char *const NO[] = {"not", "if", "then", "else", "multipleOf", "maxProperties", "contains",
                                     "minContains", "maxContains", "dependentSchemas", "$dynamicRef",
                                     "$recursiveRef"};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)schema, k, v) {
        bool bad = false;
        for (size_t i = 0; i < sizeof NO / sizeof NO[0] && !bad; i++)
            bad = !strcmp(k, NO[i]);
        if (!strcmp(k, "minProperties"))
            bad = json_number_value(v) > 0;
        else if (!strcmp(k, "patternProperties") || !strcmp(k, "dependentRequired") || !strcmp(k, "dependencies"))
            bad = !(json_is_object(v) && !json_object_size(v));
        else if (!strcmp(k, "propertyNames") || !strcmp(k, "unevaluatedProperties") || !strcmp(k, "unevaluatedItems"))
            bad = !empty_or_true(v);
        if (bad)
            return gconv_fail(c, BW_EINVAL, "JSON schema keyword '%s' is not supported", k);
    }
    return BW_OK;
}

/* ---- $ref ----------------------------------------------------------------------------------- */

const json_t *schema_resolve(struct gconv *c, const char *ref)
{
    if (ref[0] != '#') {
        gconv_fail(c, BW_EINVAL, "$ref \"%s\": only references inside the schema (\"#/...\") are supported", ref);
        return NULL;
    }
    const json_t *t = c->doc;
    const char *p = ref + 1;
    while (*p == '/') {
        char tok[256];
        size_t n = 0;
        for (p++; *p && *p != '/'; p++) {
            char ch = *p;
            if (ch == '~' && (p[1] == '0' || p[1] == '1'))
                ch = *++p == '0' ? '~' : '/';
            else if (ch == '%' && p[1] && p[2]) {
                char hex[3] = {p[1], p[2], 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (!*end) {
                    ch = (char)v;
                    p += 2;
                }
            }
            if (n + 1 < sizeof tok)
                tok[n++] = ch;
        }
        tok[n] = '\0';
        if (json_is_object(t)) {
            t = json_object_get(t, tok);
        } else if (json_is_array(t)) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            t = *tok && !*end ? json_array_get(t, i) : NULL;
        } else {
            t = NULL;
        }
        if (!t)
            break;
    }
    if (!t || *p) {
        gconv_fail(c, BW_EINVAL, "$ref \"%s\" points to nothing in the schema", ref);
        return NULL;
    }
    return t;
}

/* The rule of the schema REF points to: "ref-defs-x" for "#/$defs/x". Recursion is allowed:
 * a $ref met again while it is being resolved uses the reserved name. */
static const char *visit_ref(struct gconv *c, const char *ref)
{
    for (size_t i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ref, ref)) {
            if (c->refs[i].busy)
                c->refs[i].used = true;
            return c->refs[i].name;
        }
    const json_t *target = schema_resolve(c, ref);
    if (!target)
        return NULL;
    if (c->n_refs == c->cap_refs) {
        size_t cap = c->cap_refs ? 2 * c->cap_refs : 8;
        struct gref *r = realloc(c->refs, cap * sizeof *r);
        if (!r) {
            gconv_fail(c, BW_ENOMEM, "out of memory");
            return NULL;
        }
        c->refs = r;
        c->cap_refs = cap;
    }
    struct textbuf nb = {0};
    textbuf_addf(&nb, "ref%s", ref + 1);
    const char *reserved = nb.oom ? NULL : grule_reserve(c, textbuf_str(&nb));
    textbuf_fini(&nb);
    char *ref_copy = strdup(ref), *name = reserved ? strdup(reserved) : NULL;
    if (!ref_copy || !name) {
        free(ref_copy);
        free(name);
        if (!c->code)
            gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    size_t idx = c->n_refs++;
    c->refs[idx] = (struct gref){.ref = ref_copy, .name = name, .busy = true};
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%s", ref);
    const char *got = schema_visit(c, target, name);
    memcpy(c->path, saved, sizeof saved);
    struct gref *e = &c->refs[idx];
    e->busy = false;
    if (!got)
        return NULL;
    struct grule *slot = grule_find(c, e->name);
    if (slot && !slot->body) {
        if (e->used) { /* referred to from inside: keep the name, as an alias */
            got = grule_add(c, e->name, got);
        } else {
            grule_unreserve(c, e->name);
            char *n2 = strdup(got);
            if (!n2) {
                gconv_fail(c, BW_ENOMEM, "out of memory");
                return NULL;
            }
            free(e->name);
            e->name = n2;
        }
    }
    return got ? e->name : NULL;
}

/* ---- pieces ------------------------------------------------------------------------------------ */

static char *join_name(const char *name, const char *sep_if_named, const char *suffix)
{
    struct textbuf b = {0};
    textbuf_addf(&b, "%s%s%s", name, *name ? sep_if_named : "", suffix);
    if (b.oom) {
        textbuf_fini(&b);
        return NULL;
    }
    return b.s ? b.s : strdup("");
}

/* Literal rule body for a JSON value written compactly. */
static int constant_body(struct gconv *c, const json_t *v, struct textbuf *b)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!text)
        return gconv_fail(c, BW_ENOMEM, "out of memory");
    gbnf_literal(b, text, strlen(text));
    free(text);
    return BW_OK;
}

static bool type_allows(const char *type, const json_t *v)
{
    if (!type)
        return true;
    if (!strcmp(type, "string")) return json_is_string(v);
    if (!strcmp(type, "integer")) return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (!strcmp(type, "number")) return json_is_number(v);
    if (!strcmp(type, "boolean")) return json_is_boolean(v);
    if (!strcmp(type, "null")) return json_is_null(v);
    if (!strcmp(type, "object")) return json_is_object(v);
    if (!strcmp(type, "array")) return json_is_array(v);
    return false;
}

static const char *union_rule(struct gconv *c, const json_t *alts, const char *name, const char *rule_name,
                              const char *kw)
{
    if (!json_is_array(alts) || !json_array_size(alts)) {
        gconv_fail(c, BW_EINVAL, "%s must be a non-empty array of schemas", kw);
        return NULL;
    }
    struct textbuf body = {0};
    size_t i;
    const json_t *alt;
    json_array_foreach(alts, i, alt) {
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        struct textbuf sub = {0};
        textbuf_addf(&sub, "%s%s%s", name, *name ? "-" : "alternative-", idx);
        size_t at = gconv_push_index(c, kw, i);
        const char *r = sub.oom ? NULL : schema_visit(c, alt, textbuf_str(&sub));
        gconv_pop(c, at);
        textbuf_fini(&sub);
        if (!r) {
            textbuf_fini(&body);
            return NULL;
        }
        textbuf_addf(&body, "%s%s", i ? " | " : "", r);
    }
    const char *r = body.oom ? NULL : grule_add(c, rule_name, textbuf_str(&body));
    if (body.oom)
        gconv_fail(c, BW_ENOMEM, "out of memory");
    textbuf_fini(&body);
    return r;
}

/* Which type a schema without "type" stands for, from its keywords (each choice allows fewer
 * texts than the schema, never more): NULL when nothing says. */
static const char *implied_type(const json_t *s)
{
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (json_object_get(s, "properties") || (ap && !json_is_true(ap)) || json_array_size(json_object_get(s, "required")))
        return "object";
    if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems") ||
        json_object_get(s, "maxItems"))
        return "array";
    int lo, hi;
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (json_object_get(s, "pattern") || json_object_get(s, "minLength") || json_object_get(s, "maxLength") ||
        (fmt && gprim_format(fmt, &lo, &hi)))
        return "string";
    if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") ||
        json_object_get(s, "exclusiveMaximum"))
        return "number";
    return NULL;
}

/* A non-negative integer keyword (minLength, maxItems, ...): def when absent, -2 when bad. */
static long count_kw(struct gconv *c, const json_t *s, const char *k, long def)
{
    const json_t *v = json_object_get(s, k);
    if (!v)
        return def;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || d != (double)(long)d || d > 1e9) {
        gconv_fail(c, BW_EINVAL, "%s must be a non-negative integer", k);
        return -2;
    }
    return (long)d;
}

int schema_length_range(struct gconv *c, const json_t *s, const char *kmin, const char *kmax, int *min, int *max)
{
    long lo = count_kw(c, s, kmin, 0), hi = count_kw(c, s, kmax, -1);
    if (lo == -2 || hi == -2)
        return c->code;
    if (hi >= 0 && hi < lo)
        return gconv_fail(c, BW_EINVAL, "%s is larger than %s: nothing is valid", kmin, kmax);
    if (lo > GBNF_MAX_REPEAT)
        return gconv_fail(c, BW_EINVAL, "%s over %d is not supported", kmin, GBNF_MAX_REPEAT);
    if (hi > GBNF_MAX_REPEAT)
        hi = lo > GBNF_MAX_REPEAT ? lo : GBNF_MAX_REPEAT;
    *min = (int)lo;
    *max = (int)hi;
    return BW_OK;
}

static const char *string_rule(struct gconv *c, const json_t *s, const char *rule_name)
{
    int lo, hi;
    if (schema_length_range(c, s, "minLength", "maxLength", &lo, &hi))
        return NULL;
    const json_t *pat = json_object_get(s, "pattern");
    if (pat) {
        if (!json_is_string(pat)) {
            gconv_fail(c, BW_EINVAL, "pattern must be a string");
            return NULL;
        }
        return schema_pattern(c, json_string_value(pat), lo, hi, rule_name);
    }
    const char *fmt = json_string_value(json_object_get(s, "format"));
    int flo, fhi;
    const char *prim = fmt ? gprim_format(fmt, &flo, &fhi) : NULL;
    if (prim) {
        if (flo < lo || (hi >= 0 && fhi > hi)) {
            gconv_fail(c, BW_EINVAL, "'%s' next to format \"%s\" is not supported (the format's strings are %d to %d "
                                     "characters long)", flo < lo ? "minLength" : "maxLength", fmt, flo, fhi);
            return NULL;
        }
        const char *r = gprim_add(c, prim, prim);
        return r ? grule_add(c, rule_name, r) : NULL;
    }
    if (lo == 0 && hi < 0)
        return gprim_add(c, !strcmp(rule_name, "root") ? "root" : "string", "string");
    const char *ch = gprim_add(c, "char", "char");
    struct textbuf b = {0};
    textbuf_add(&b, "\"\\\"\" ");
    if (ch)
        gbnf_repeat(&b, ch, lo, hi, NULL);
    textbuf_add(&b, " \"\\\"\"");
    const char *r = ch && !b.oom ? grule_add(c, rule_name, textbuf_str(&b)) : NULL;
    if (b.oom)
        gconv_fail(c, BW_ENOMEM, "out of memory");
    textbuf_fini(&b);
    return r;
}

static const char *number_rule(struct gconv *c, const json_t *s, const char *type, const char *rule_name)
{
    struct num_bounds nb;
    int has = num_bounds_read(c, s, &nb);
    if (has < 0)
        return NULL;
    if (!has)
        return gprim_add(c, !strcmp(rule_name, "root") ? "root" : type, type);
    struct textbuf b = {0};
    textbuf_add(&b, "(");
    int rc = !strcmp(type, "integer") ? num_integer_range(c, &nb, &b) : num_number_range(c, &nb, &b);
    textbuf_add(&b, ")");
    const char *r = NULL;
    if (rc == BW_OK && b.oom)
        gconv_fail(c, BW_ENOMEM, "out of memory");
    else if (rc == BW_OK)
        r = grule_add(c, rule_name, textbuf_str(&b));
    textbuf_fini(&b);
    return r;
}

/* ---- the visitor ------------------------------------------------------------------------------- */

static const char *visit(struct gconv *c, const json_t *s, const char *name, const char *rule_name)
{
    if (json_is_true(s))
        return gprim_add(c, !strcmp(rule_name, "root") ? "root" : "value", "value");
    if (json_is_false(s)) {
        gconv_fail(c, BW_EINVAL, "the schema is false: no value is valid");
        return NULL;
    }
    if (!json_is_object(s)) {
        gconv_fail(c, BW_EINVAL, "a schema must be an object or a boolean");
        return NULL;
    }
    if (check_keywords(c, s))
        return NULL;
    bool none;
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        if (!json_is_string(ref)) {
            gconv_fail(c, BW_EINVAL, "$ref must be a string");
            return NULL;
        }
        const json_t *d = schema_distribute(c, s, &none);
        if (!none)
            return d ? schema_visit(c, d, name) : NULL;
        const char *r = visit_ref(c, json_string_value(ref));
        return r ? grule_add(c, rule_name, r) : NULL;
    }
    if (json_object_get(s, "allOf")) {
        const json_t *m = schema_merge_allof(c, s);
        return m ? schema_visit(c, m, name) : NULL;
    }
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    if (any || one) {
        const json_t *d = schema_distribute(c, s, &none);
        if (!none)
            return d ? schema_visit(c, d, name) : NULL;
        return union_rule(c, any ? any : one, name, rule_name, any ? "anyOf" : "oneOf");
    }
    const json_t *type = json_object_get(s, "type");
    if (json_is_array(type)) {
        json_t *alts = gconv_keep(c, json_array());
        size_t i;
        const json_t *t;
        json_array_foreach(type, i, t) {
            json_t *copy = alts ? json_copy((json_t *)s) : NULL;
            if (!copy || json_object_set(copy, "type", (json_t *)t) || json_array_append_new(alts, copy)) {
                json_decref(copy);
                gconv_fail(c, BW_ENOMEM, "out of memory");
                return NULL;
            }
        }
        return alts ? union_rule(c, alts, name, rule_name, "type") : NULL;
    }
    if (type && !json_is_string(type)) {
        gconv_fail(c, BW_EINVAL, "type must be a string or an array of strings");
        return NULL;
    }
    const char *t = json_string_value(type);
    if (t && strcmp(t, "null") && strcmp(t, "string") && strcmp(t, "integer") && strcmp(t, "number") &&
        strcmp(t, "boolean") && strcmp(t, "object") && strcmp(t, "array")) {
        gconv_fail(c, BW_EINVAL, "unknown type \"%s\"", t);
        return NULL;
    }
    const json_t *cst = json_object_get(s, "const"), *en = json_object_get(s, "enum");
    if (cst || en) {
        struct textbuf b = {0};
        size_t n = 0;
        if (cst) {
            if (type_allows(t, cst) && !constant_body(c, cst, &b))
                n = 1;
        } else if (!json_is_array(en)) {
            gconv_fail(c, BW_EINVAL, "enum must be an array");
        } else {
            size_t i;
            const json_t *v;
            textbuf_add(&b, "(");
            json_array_foreach(en, i, v) {
                if (!type_allows(t, v))
                    continue;
                if (n++)
                    textbuf_add(&b, " | ");
                constant_body(c, v, &b);
            }
            textbuf_add(&b, ")");
        }
        const char *r = NULL;
        if (!c->code && !n)
            gconv_fail(c, BW_EINVAL, "no %s value is of type \"%s\"", cst ? "const" : "enum", t);
        else if (!c->code && b.oom)
            gconv_fail(c, BW_ENOMEM, "out of memory");
        else if (!c->code)
            r = grule_add(c, rule_name, textbuf_str(&b));
        textbuf_fini(&b);
        return r;
    }
    if (!t)
        t = implied_type(s);
    if (!t) /* {} is an object, as in llama.cpp's converter; only descriptions: any value */
        return gprim_add(c, !strcmp(rule_name, "root") ? "root" : json_object_size(s) ? "value" : "object",
                         json_object_size(s) ? "value" : "object");
    if (!strcmp(t, "object"))
        return schema_object(c, s, name, rule_name);
    if (!strcmp(t, "array"))
        return schema_array(c, s, name, rule_name);
    if (!strcmp(t, "string"))
        return string_rule(c, s, rule_name);
    if (!strcmp(t, "integer") || !strcmp(t, "number"))
        return number_rule(c, s, t, rule_name);
    return gprim_add(c, !strcmp(rule_name, "root") ? "root" : t, t);
}

const char *schema_visit(struct gconv *c, const json_t *schema, const char *name)
{
    if (c->code)
        return NULL;
    if (c->depth >= JSON_SCHEMA_MAX_DEPTH) {
        gconv_fail(c, BW_EINVAL, "the schema is nested deeper than %d levels", JSON_SCHEMA_MAX_DEPTH);
        return NULL;
    }
    char *rule_name = !*name ? strdup("root") : gprim_is_reserved(name) ? join_name(name, "", "-") : strdup(name);
    if (!rule_name) {
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    c->depth++;
    const char *r = visit(c, schema, name, rule_name);
    c->depth--;
    free(rule_name);
    return c->code ? NULL : r;
}

int json_schema_to_gbnf(const json_t *schema, char **out, struct bw_err *err)
{
    struct gconv c = {.doc = schema, .err = err};
    strcpy(c.path, "#");
    if (!schema)
        return gconv_fail(&c, BW_EINVAL, "no schema");
    gprim_add(&c, "space", "space");
    const char *root = schema_visit(&c, schema, "");
    if (root && strcmp(root, "root"))
        grule_add(&c, "root", root);
    char *text = grules_format(&c);
    grules_free(&c);
    for (size_t i = 0; i < c.n_refs; i++) {
        free(c.refs[i].ref);
        free(c.refs[i].name);
    }
    free(c.refs);
    json_decref(c.keep);
    if (c.code) {
        free(text);
        return c.code;
    }
    *out = text;
    return BW_OK;
}

int json_schema_rules(const json_t *schema, const char *prefix, char **out, struct bw_err *err)
{
    char *g = NULL;
    int rc = json_schema_to_gbnf(schema, &g, err);
    if (rc != BW_OK)
        return rc;
    char *p = gbnf_prefix_rules(g, prefix);
    free(g);
    if (!p)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    *out = p;
    return BW_OK;
}
