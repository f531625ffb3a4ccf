/* schema_merge.c -- allOf, and keywords next to $ref / anyOf / oneOf, turned into schemas
 * the visitor reads directly.
 *
 * allOf(A, B, ...) becomes one schema: types intersected (integer within number), enum and
 * const values intersected, bounds and lengths tightened, items schemas and each
 * property's schemas combined as allOf, required united. additionalProperties is exact: a
 * property listed by one branch is held by every other branch's additionalProperties
 * (false there forbids it). A branch with anyOf/oneOf is distributed:
 * allOf(A, anyOf(X, Y)) = anyOf(allOf(A, X), allOf(A, Y)). Two different pattern, format
 * or prefixItems values, or any other keyword with two different values, are errors. */
#define _GNU_SOURCE
#include "grammar/gbnf_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BRANCHES 64

static bool skip_key(const char *k) { return !strcmp(k, "$ref") || !strcmp(k, "allOf"); }

/* The branches of an allOf, flattened: nested allOf and $ref targets are branches too. */
struct branches {
    const json_t *b[MAX_BRANCHES];
    int n;
};

static int flatten(struct gconv *c, const json_t *s, struct branches *out, int depth)
{
    if (depth > 16)
        return gconv_fail(c, BW_EINVAL, "allOf / $ref nested deeper than 16 levels");
    if (json_is_true(s))
        return BW_OK;
    if (json_is_false(s))
        return gconv_fail(c, BW_EINVAL, "allOf has a branch that is false: no value is valid");
    if (!json_is_object(s))
        return gconv_fail(c, BW_EINVAL, "allOf must be an array of schemas");
    if (out->n == MAX_BRANCHES)
        return gconv_fail(c, BW_EINVAL, "allOf with more than %d branches is not supported", MAX_BRANCHES);
    out->b[out->n++] = s;
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        if (!json_is_string(ref))
            return gconv_fail(c, BW_EINVAL, "$ref must be a string");
        const json_t *t = schema_resolve(c, json_string_value(ref));
        if (!t || flatten(c, t, out, depth + 1))
            return c->code;
    }
    const json_t *all = json_object_get(s, "allOf");
    if (all && (!json_is_array(all) || !json_array_size(all)))
        return gconv_fail(c, BW_EINVAL, "allOf must be a non-empty array of schemas");
    size_t i;
    const json_t *v;
    json_array_foreach(all, i, v)
        if (flatten(c, v, out, depth + 1))
            return c->code;
    return BW_OK;
}

/* A shallow copy of S without $ref, allOf and key DROP (may be NULL). */
static json_t *copy_without(const json_t *s, const char *drop)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v)
        if (o && !skip_key(k) && (!drop || strcmp(k, drop)))
            json_object_set(o, k, v);
    return o;
}

/* allOf(A, anyOf(X, Y), B) -> anyOf(allOf(A, X, B), allOf(A, Y, B)) for the first branch
 * with anyOf or oneOf. */
static const json_t *distribute(struct gconv *c, const struct branches *br, int at, const char *kw)
{
    const json_t *alts = json_object_get(br->b[at], kw);
    if (!json_is_array(alts) || !json_array_size(alts)) {
        gconv_fail(c, BW_EINVAL, "%s must be a non-empty array of schemas", kw);
        return NULL;
    }
    json_t *out = gconv_keep(c, json_object());
    json_t *any = json_array();
    if (!out || !any || json_object_set_new(out, "anyOf", any)) {
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    size_t i;
    const json_t *alt;
    json_array_foreach(alts, i, alt) {
        json_t *all = json_array(), *one = json_object();
        if (!all || !one || json_object_set_new(one, "allOf", all) || json_array_append_new(any, one)) {
            json_decref(all);
            gconv_fail(c, BW_ENOMEM, "out of memory");
            return NULL;
        }
        for (int j = 0; j < br->n; j++)
            if (json_array_append_new(all, copy_without(br->b[j], j == at ? kw : NULL))) {
                gconv_fail(c, BW_ENOMEM, "out of memory");
                return NULL;
            }
        json_array_append(all, (json_t *)alt);
    }
    return out;
}

/* ---- keywords --------------------------------------------------------------------------------- */

enum { T_NULL = 1, T_BOOL = 2, T_OBJECT = 4, T_ARRAY = 8, T_STRING = 16, T_INTEGER = 32, T_NUMBER = 64 | 32 };

static unsigned type_bits(const json_t *t)
{
    if (json_is_array(t)) {
        unsigned m = 0;
        size_t i;
        const json_t *v;
        json_array_foreach(t, i, v) m |= type_bits(v);
        return m;
    }
    const char *s = json_string_value(t);
    if (!s) return 0;
    if (!strcmp(s, "null")) return T_NULL;
    if (!strcmp(s, "boolean")) return T_BOOL;
    if (!strcmp(s, "object")) return T_OBJECT;
    if (!strcmp(s, "array")) return T_ARRAY;
    if (!strcmp(s, "string")) return T_STRING;
    if (!strcmp(s, "integer")) return T_INTEGER;
    if (!strcmp(s, "number")) return T_NUMBER;
    return 0;
}

static json_t *type_value(unsigned m)
{
    static const struct { unsigned bit; const char *name; } N[] = {
        {T_NULL, "null"}, {T_BOOL, "boolean"}, {T_OBJECT, "object"}, {T_ARRAY, "array"}, {T_STRING, "string"},
        {T_NUMBER, "number"}, {T_INTEGER, "integer"}};
    json_t *a = json_array();
    for (size_t i = 0; a && i < sizeof N / sizeof N[0]; i++)
        if ((m & N[i].bit) == N[i].bit) {
            json_array_append_new(a, json_string(N[i].name));
            m &= ~N[i].bit;
        }
    if (json_array_size(a) == 1) {
        json_t *one = json_incref(json_array_get(a, 0));
        json_decref(a);
        return one;
    }
    return a;
}

/* S's value for property K, as each branch sees it: its properties[K], or its
 * additionalProperties (false: forbidden). Returns false when a branch forbids it. */
static bool property_schemas(const struct branches *br, const char *k, json_t *list)
{
    for (int j = 0; j < br->n; j++) {
        const json_t *props = json_object_get(br->b[j], "properties"), *ap = json_object_get(br->b[j], "additionalProperties");
        const json_t *v = json_object_get(props, k);
        if (v)
            json_array_append(list, (json_t *)v);
        else if (json_is_false(ap))
            return false;
        else if (json_is_object(ap))
            json_array_append(list, (json_t *)ap);
    }
    return true;
}

static json_t *all_of(json_t *list) /* stolen */
{
    if (json_array_size(list) == 1) {
        json_t *one = json_incref(json_array_get(list, 0));
        json_decref(list);
        return one;
    }
    return json_pack("{s:o}", "allOf", list);
}

static int merge_properties(struct gconv *c, const struct branches *br, json_t *m)
{
    json_t *props = json_object(), *req = json_array(), *aps = json_array();
    bool ap_false = false;
    int rc = props && req && aps ? BW_OK : gconv_fail(c, BW_ENOMEM, "out of memory");
    for (int j = 0; j < br->n && !rc; j++) {
        const json_t *r = json_object_get(br->b[j], "required"), *ap = json_object_get(br->b[j], "additionalProperties");
        size_t i;
        const json_t *v;
        json_array_foreach(r, i, v) {
            bool dup = false;
            for (size_t x = 0; x < json_array_size(req) && !dup; x++)
                dup = json_equal(json_array_get(req, x), (json_t *)v);
            if (!dup)
                json_array_append(req, (json_t *)v);
        }
        if (json_is_false(ap))
            ap_false = true;
        else if (json_is_object(ap))
            json_array_append(aps, (json_t *)ap);
    }
    for (int j = 0; j < br->n && !rc; j++) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)json_object_get(br->b[j], "properties"), k, v) {
            if (json_object_get(props, k))
                continue;
            json_t *list = json_array();
            bool allowed = list && property_schemas(br, k, list);
            bool is_req = false;
            for (size_t x = 0; x < json_array_size(req) && !is_req; x++)
                is_req = !strcmp(json_string_value(json_array_get(req, x)), k);
            if (!allowed && is_req) {
                json_decref(list);
                rc = gconv_fail(c, BW_EINVAL, "allOf: required property \"%s\" is forbidden by another branch", k);
                break;
            }
            if (allowed)
                json_object_set_new(props, k, all_of(list));
            else
                json_decref(list);
        }
    }
    if (!rc && json_object_size(props))
        json_object_set(m, "properties", props);
    if (!rc && json_array_size(req))
        json_object_set(m, "required", req);
    if (!rc && ap_false)
        json_object_set_new(m, "additionalProperties", json_false());
    else if (!rc && json_array_size(aps))
        json_object_set_new(m, "additionalProperties", all_of(json_incref(aps)));
    json_decref(props);
    json_decref(req);
    json_decref(aps);
    return rc;
}

static int merge_bounds(struct gconv *c, const struct branches *br, json_t *m)
{
    struct num_bounds all = {0};
    for (int j = 0; j < br->n; j++) {
        struct num_bounds nb;
        int has = num_bounds_read(c, br->b[j], &nb);
        if (has < 0)
            return c->code;
        if (nb.has_min && (!all.has_min || nb.min > all.min || (nb.min == all.min && nb.min_excl)))
            all.has_min = true, all.min = nb.min, all.min_excl = nb.min_excl;
        if (nb.has_max && (!all.has_max || nb.max < all.max || (nb.max == all.max && nb.max_excl)))
            all.has_max = true, all.max = nb.max, all.max_excl = nb.max_excl;
    }
    if (all.has_min && all.has_max && (all.min > all.max || (all.min == all.max && (all.min_excl || all.max_excl))))
        return gconv_fail(c, BW_EINVAL, "allOf: minimum is above maximum: no number is valid");
    if (all.has_min)
        json_object_set_new(m, all.min_excl ? "exclusiveMinimum" : "minimum", json_real(all.min));
    if (all.has_max)
        json_object_set_new(m, all.max_excl ? "exclusiveMaximum" : "maximum", json_real(all.max));
    return BW_OK;
}

static bool is_handled(const char *k)
{
    static const char *const H[] = {"type", "enum", "const", "properties", "required", "additionalProperties",
                                    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                                    "maxLength", "minItems", "maxItems", "items"};
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++)
        if (!strcmp(H[i], k))
            return true;
    return skip_key(k) || schema_is_annotation(k);
}

/* ---- allOf ------------------------------------------------------------------------------------- */

const json_t *schema_merge_allof(struct gconv *c, const json_t *schema)
{
    struct branches br = {0};
    if (flatten(c, schema, &br, 0))
        return NULL;
    for (int j = 0; j < br.n; j++) {
        if (json_object_get(br.b[j], "anyOf"))
            return distribute(c, &br, j, "anyOf");
        if (json_object_get(br.b[j], "oneOf"))
            return distribute(c, &br, j, "oneOf");
    }
    json_t *m = gconv_keep(c, json_object());
    if (!m)
        return NULL;
    unsigned types = ~0u;
    json_t *values = NULL; /* enum/const candidates */
    json_t *items = json_array();
    for (int j = 0; j < br.n && !c->code; j++) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)br.b[j], k, v) {
            if (!strcmp(k, "type")) {
                types &= type_bits(v);
            } else if (!strcmp(k, "enum") || !strcmp(k, "const")) {
                json_t *cand = json_is_array(v) && !strcmp(k, "enum") ? json_incref((json_t *)v) : json_pack("[O]", v);
                if (!values) {
                    values = cand;
                    continue;
                }
                json_t *keep = json_array();
                size_t i, x;
                const json_t *a, *b2;
                json_array_foreach(values, i, a) json_array_foreach(cand, x, b2) if (json_equal((json_t *)a, (json_t *)b2)) {
                    json_array_append((json_t *)keep, (json_t *)a);
                    break;
                }
                json_decref(values);
                json_decref(cand);
                values = keep;
            } else if (!strcmp(k, "minLength") || !strcmp(k, "minItems") || !strcmp(k, "maxLength") ||
                       !strcmp(k, "maxItems")) {
                const json_t *cur = json_object_get(m, k);
                bool is_min = !strncmp(k, "min", 3);
                if (!cur || (is_min ? json_number_value(v) > json_number_value(cur) : json_number_value(v) < json_number_value(cur)))
                    json_object_set(m, k, (json_t *)v);
            } else if (!strcmp(k, "items") && !json_is_array(v)) {
                json_array_append(items, (json_t *)v);
            } else if (!is_handled(k) || !strcmp(k, "items")) {
                const json_t *cur = json_object_get(m, k);
                if (cur && !json_equal((json_t *)cur, (json_t *)v)) {
                    gconv_fail(c, BW_EINVAL, "allOf: keyword '%s' with two different values is not supported", k);
                    break;
                }
                json_object_set(m, k, (json_t *)v);
            }
        }
    }
    if (!c->code && types != ~0u) {
        types &= T_NULL | T_BOOL | T_OBJECT | T_ARRAY | T_STRING | T_NUMBER;
        if (!types)
            gconv_fail(c, BW_EINVAL, "allOf: the branches' types have nothing in common");
        else
            json_object_set_new(m, "type", type_value(types));
    }
    if (!c->code && values) {
        if (!json_array_size(values))
            gconv_fail(c, BW_EINVAL, "allOf: no enum/const value is in every branch");
        else
            json_object_set(m, "enum", values);
    }
    if (!c->code && json_array_size(items))
        json_object_set_new(m, "items", all_of(json_incref(items)));
    json_decref(values);
    json_decref(items);
    if (!c->code)
        merge_properties(c, &br, m);
    if (!c->code)
        merge_bounds(c, &br, m);
    return c->code ? NULL : m;
}

/* ---- keywords next to $ref / anyOf / oneOf ------------------------------------------------------------ */

const json_t *schema_distribute(struct gconv *c, const json_t *s, bool *none)
{
    *none = true;
    bool has_ref = json_object_get(s, "$ref") != NULL;
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    json_t *rest = json_object();
    if (!rest) {
        gconv_fail(c, BW_ENOMEM, "out of memory");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        bool mine = !strcmp(k, "$ref") || (!has_ref && (!strcmp(k, "anyOf") || !strcmp(k, "oneOf")));
        if (!mine && !schema_is_annotation(k))
            json_object_set(rest, k, v);
    }
    if (!json_object_size(rest) && !(any && one && !has_ref)) {
        json_decref(rest);
        return NULL;
    }
    *none = false;
    json_t *out = NULL;
    if (has_ref) {
        out = json_pack("{s:[{s:O},o]}", "allOf", "$ref", json_object_get(s, "$ref"), rest);
    } else if (any && one) {
        out = json_pack("{s:[{s:O},{s:O}]}", "allOf", "anyOf", any, "oneOf", one);
        if (out && json_object_size(rest))
            json_array_append(json_object_get(out, "allOf"), rest);
        json_decref(rest);
    } else {
        const json_t *alts = any ? any : one;
        if (!json_is_array(alts) || !json_array_size(alts)) {
            json_decref(rest);
            gconv_fail(c, BW_EINVAL, "%s must be a non-empty array of schemas", any ? "anyOf" : "oneOf");
            return NULL;
        }
        json_t *list = json_array();
        size_t i;
        const json_t *alt;
        json_array_foreach(alts, i, alt) json_array_append_new(list, json_pack("{s:[O,O]}", "allOf", rest, alt));
        out = json_pack("{s:o}", "anyOf", list);
        json_decref(rest);
    }
    return gconv_keep(c, out);
}
