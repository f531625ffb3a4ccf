/* schema_object.c -- objects (properties, required, additionalProperties) and arrays
 * (items, prefixItems, minItems, maxItems) for the converter, in the shapes of llama.cpp's
 * converter: properties in their listed order, required ones first, each optional one
 * after the previous ones ("a-rest" rules). */
#define _GNU_SOURCE
#include "grammar/gbnf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *sub_name(const char *name, const char *suffix)
{
    struct textbuf b = {0};
    textbuf_addf(&b, "%s%s%s", name, *name ? "-" : "", suffix);
    if (b.oom) {
        textbuf_fini(&b);
        return NULL;
    }
    return b.s ? b.s : strdup("");
}

static const char *oom(struct gconv *c)
{
    gconv_fail(c, BW_ENOMEM, "out of memory");
    return NULL;
}

/* ---- names no additional property may take ------------------------------------------------ */

/* A trie over the code points of the declared names as JSON writes them. */
struct trie {
    uint32_t cp;
    bool end;
    struct trie *kids;
    size_t n_kids;
};

static void trie_free(struct trie *t)
{
    for (size_t i = 0; i < t->n_kids; i++)
        trie_free(&t->kids[i]);
    free(t->kids);
}

static uint32_t utf8_next(const char **p)
{
    const unsigned char *s = (const unsigned char *)*p;
    uint32_t cp = s[0];
    int n = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
    if (n > 1)
        cp &= 0x3F >> (n - 1);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            n = i;
            break;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *p += n;
    return cp;
}

static bool trie_insert(struct trie *t, const char *s)
{
    while (*s) {
        uint32_t cp = utf8_next(&s);
        size_t i = 0;
        while (i < t->n_kids && t->kids[i].cp < cp)
            i++;
        if (i == t->n_kids || t->kids[i].cp != cp) {
            struct trie *k = realloc(t->kids, (t->n_kids + 1) * sizeof *k);
            if (!k)
                return false;
            t->kids = k;
            memmove(&k[i + 1], &k[i], (t->n_kids - i) * sizeof *k);
            k[i] = (struct trie){.cp = cp};
            t->n_kids++;
        }
        t = &t->kids[i];
    }
    t->end = true;
    return true;
}

/* Text after an opening quote that is none of the names below node T. Names are written
 * without escapes (key-char), so a declared name cannot come back escaped. */
static void trie_emit(struct textbuf *b, const struct trie *t)
{
    for (size_t i = 0; i < t->n_kids; i++) {
        const struct trie *k = &t->kids[i];
        if (i)
            textbuf_add(b, " | ");
        textbuf_add(b, "[");
        gbnf_class_char(b, k->cp);
        textbuf_add(b, "]");
        if (k->n_kids) {
            textbuf_add(b, " (");
            trie_emit(b, k);
            textbuf_add(b, k->end ? ")" : ")?");
        } else {
            textbuf_add(b, " key-char+");
        }
    }
    uint32_t first[256], *cps = t->n_kids <= 256 ? first : malloc(t->n_kids * sizeof *cps);
    if (!cps) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < t->n_kids; i++) /* ascending: trie_insert keeps the kids sorted */
        cps[i] = t->kids[i].cp;
    textbuf_add(b, t->n_kids ? " | " : "");
    gbnf_raw_class_except(b, cps, t->n_kids);
    textbuf_add(b, " key-char*");
    if (cps != first)
        free(cps);
}

/* ---- objects --------------------------------------------------------------------------------- */

struct kv {
    const char *key;
    const char *rule; /* the "-kv" rule, or the additional one for key NULL */
};

/* The optional kvs, each after the ones before it, as llama.cpp's converter writes them:
 * alternative i is "kv_i K-rest" where K is key i and K-rest ::= ( "," space kv_i+1 )?
 * (K+1)-rest. The rest rules are built once, from the last one back. Appends to b. */
static void optional_alternatives(struct gconv *c, struct textbuf *b, const struct kv *opt, size_t n, const char *name)
{
    const char **rest = calloc(n, sizeof *rest); /* rest[i]: the rule after kv i */
    if (!rest) {
        oom(c);
        return;
    }
    for (size_t i = n - 1; i-- > 0 && !c->code;) {
        const struct kv *next = &opt[i + 1];
        struct textbuf body = {0}, rn = {0};
        textbuf_addf(&body, "( \",\" space %s )%s", next->rule, next->key ? "?" : "*");
        if (rest[i + 1])
            textbuf_addf(&body, " %s", rest[i + 1]);
        char *kn = sub_name(name, *opt[i].key ? opt[i].key : "-");
        if (kn)
            textbuf_addf(&rn, "%s-rest", kn);
        rest[i] = kn && !body.oom && !rn.oom ? grule_add(c, textbuf_str(&rn), textbuf_str(&body)) : NULL;
        if (!rest[i] && !c->code)
            oom(c);
        free(kn);
        textbuf_fini(&body);
        textbuf_fini(&rn);
    }
    for (size_t i = 0; i < n && !c->code; i++) {
        if (i)
            textbuf_add(b, " | ");
        if (opt[i].key)
            textbuf_add(b, opt[i].rule);
        else
            textbuf_addf(b, "%s ( \",\" space %s )*", opt[i].rule, opt[i].rule);
        if (i + 1 < n)
            textbuf_addf(b, " %s", rest[i]);
    }
    free(rest);
}

const char *schema_object(struct gconv *c, const json_t *s, const char *name, const char *rule_name)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) {
        gconv_fail(c, BW_EINVAL, "properties must be an object");
        return NULL;
    }
    if (req && !json_is_array(req)) {
        gconv_fail(c, BW_EINVAL, "required must be an array of property names");
        return NULL;
    }
    if (ap && !json_is_boolean(ap) && !json_is_object(ap)) {
        gconv_fail(c, BW_EINVAL, "additionalProperties must be a boolean or a schema");
        return NULL;
    }
    if (!props && !json_array_size(req) && (!ap || json_is_true(ap)))
        return gprim_add(c, !strcmp(rule_name, "root") ? "root" : "object", "object");
    size_t n_max = json_object_size(props) + json_array_size(req) + 1;
    struct kv *reqd = calloc(n_max, sizeof *reqd), *opt = calloc(n_max, sizeof *opt);
    struct trie names = {0};
    size_t n_req = 0, n_opt = 0;
    bool ok = reqd && opt;
    for (size_t i = 0; ok && i < json_array_size(req); i++)
        if (!json_is_string(json_array_get(req, i))) {
            gconv_fail(c, BW_EINVAL, "required must be an array of property names");
            ok = false;
        }
    /* the listed properties, then required ones that are not listed (any value, or the
     * additionalProperties schema) */
    size_t n_listed = json_object_size(props), n_all = n_listed + json_array_size(req);
    void *it = props ? json_object_iter((json_t *)props) : NULL;
    for (size_t i = 0; ok && i < n_all; i++) {
        const char *key;
        const json_t *sub;
        if (i < n_listed) {
            key = json_object_iter_key(it);
            sub = json_object_iter_value(it);
            it = json_object_iter_next((json_t *)props, it);
        } else {
            key = json_string_value(json_array_get(req, i - n_listed));
            if (json_object_get(props, key))
                continue;
            bool dup = false;
            for (size_t j = 0; j < n_req && !dup; j++)
                dup = !strcmp(reqd[j].key, key);
            if (dup)
                continue;
            sub = ap && json_is_object(ap) ? ap : json_true();
            if (json_is_false(ap)) {
                gconv_fail(c, BW_EINVAL, "required property \"%s\" is not in properties and additionalProperties is false",
                           key);
                ok = false;
                break;
            }
        }
        bool is_req = false;
        for (size_t j = 0; j < json_array_size(req) && !is_req; j++)
            is_req = !strcmp(json_string_value(json_array_get(req, j)), key);
        if (json_is_false(sub)) {
            if (is_req) {
                gconv_fail(c, BW_EINVAL, "required property \"%s\" has the schema false", key);
                ok = false;
            }
            continue;
        }
        char *pn = sub_name(name, *key ? key : "-"), *kvn = pn ? sub_name(pn, "kv") : NULL;
        json_t *ks = json_string(key);
        char *enc = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        size_t at = gconv_push(c, i < n_listed ? "properties" : "required");
        gconv_push(c, key);
        const char *vr = pn && kvn && enc ? schema_visit(c, sub, pn) : NULL;
        gconv_pop(c, at);
        struct textbuf body = {0};
        if (vr) {
            gbnf_literal(&body, enc, strlen(enc));
            textbuf_addf(&body, " space \":\" space %s", vr);
        }
        const char *kv = vr && !body.oom ? grule_add(c, kvn, textbuf_str(&body)) : NULL;
        if (kv) {
            struct kv e = {.key = key, .rule = kv};
            if (is_req)
                reqd[n_req++] = e;
            else
                opt[n_opt++] = e;
            /* names no additional property may take: as JSON writes them */
            enc[strlen(enc) - 1] = '\0';
            if (!strchr(enc + 1, '\\') && !trie_insert(&names, enc + 1))
                kv = NULL;
        }
        if (!kv && !c->code)
            oom(c);
        ok = kv != NULL;
        textbuf_fini(&body);
        free(pn);
        free(kvn);
        free(enc);
    }
    if (ok && ap && (json_is_true(ap) || json_is_object(ap))) {
        char *an = sub_name(name, "additional"), *vn = an ? sub_name(an, "value") : NULL;
        char *kn = an ? sub_name(an, "k") : NULL, *kvn = an ? sub_name(an, "kv") : NULL;
        size_t at = gconv_push(c, "additionalProperties");
        const char *vr = !vn || !kn || !kvn ? NULL
                       : json_is_object(ap) ? schema_visit(c, ap, vn) : gprim_add(c, "value", "value");
        gconv_pop(c, at);
        const char *kr = NULL;
        if (vr && !names.n_kids) {
            kr = gprim_add(c, "string", "string");
        } else if (vr) {
            struct textbuf kb = {0};
            textbuf_add(&kb, "[\"] ( ");
            trie_emit(&kb, &names);
            textbuf_add(&kb, names.end ? " ) [\"]" : " )? [\"]");
            kr = !kb.oom && gprim_add(c, "key-char", "key-char") ? grule_add(c, kn, textbuf_str(&kb)) : NULL;
            textbuf_fini(&kb);
        }
        struct textbuf kvb = {0};
        if (kr)
            textbuf_addf(&kvb, "%s \":\" space %s", kr, vr);
        const char *kv = kr && !kvb.oom ? grule_add(c, kvn, textbuf_str(&kvb)) : NULL;
        if (kv)
            opt[n_opt++] = (struct kv){.key = NULL, .rule = kv};
        else if (!c->code)
            oom(c);
        ok = kv != NULL;
        textbuf_fini(&kvb);
        free(an);
        free(vn);
        free(kn);
        free(kvn);
    }
    const char *r = NULL;
    if (ok && !n_req && !n_opt) {
        r = grule_add(c, rule_name, "\"{\" space \"}\"");
    } else if (ok) {
        struct textbuf b = {0};
        textbuf_add(&b, "\"{\" space ");
        for (size_t i = 0; i < n_req; i++)
            textbuf_addf(&b, "%s%s", i ? " \",\" space " : "", reqd[i].rule);
        if (n_opt) {
            textbuf_add(&b, " (");
            if (n_req)
                textbuf_add(&b, " \",\" space ( ");
            optional_alternatives(c, &b, opt, n_opt, name);
            if (n_req)
                textbuf_add(&b, " )");
            textbuf_add(&b, " )?");
        }
        textbuf_add(&b, " space \"}\"");
        if (!c->code)
            r = b.oom ? oom(c) : grule_add(c, rule_name, textbuf_str(&b));
        textbuf_fini(&b);
    } else if (!c->code) {
        oom(c);
    }
    trie_free(&names);
    free(reqd);
    free(opt);
    return r;
}

/* ---- arrays ---------------------------------------------------------------------------------- */

const char *schema_array(struct gconv *c, const json_t *s, const char *name, const char *rule_name)
{
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    const json_t *tuple = NULL, *extra = NULL; /* extra: the schema of items after the tuple */
    if (json_is_array(prefix)) {
        tuple = prefix;
        extra = items;
    } else if (json_is_array(items)) { /* draft 4-7 tuples */
        tuple = items;
        extra = json_object_get(s, "additionalItems");
    } else {
        extra = items ? items : prefix; /* prefixItems as one schema: llama.cpp reads it as items */
    }
    if (extra && !json_is_object(extra) && !json_is_boolean(extra)) {
        gconv_fail(c, BW_EINVAL, "items must be a schema");
        return NULL;
    }
    if (!tuple && !extra && !json_object_get(s, "minItems") && !json_object_get(s, "maxItems"))
        return gprim_add(c, !strcmp(rule_name, "root") ? "root" : "array", "array");
    int lo, hi;
    if (schema_length_range(c, s, "minItems", "maxItems", &lo, &hi))
        return NULL;
    if (tuple && !extra)
        extra = json_false(); /* a generated tuple stops at its last listed item */
    if (!tuple && !extra)
        extra = json_true();
    struct textbuf b = {0};
    textbuf_add(&b, "\"[\" space ");
    size_t n = tuple ? json_array_size(tuple) : 0;
    if (hi >= 0 && n > (size_t)hi)
        n = (size_t)hi;
    for (size_t i = 0; i < n && !c->code; i++) {
        char idx[32];
        snprintf(idx, sizeof idx, "tuple-%zu", i);
        char *tn = sub_name(name, idx);
        size_t at = gconv_push_index(c, json_is_array(prefix) ? "prefixItems" : "items", i);
        const char *r = tn ? schema_visit(c, json_array_get(tuple, i), tn) : oom(c);
        gconv_pop(c, at);
        free(tn);
        if (r)
            textbuf_addf(&b, "%s%s", i ? " \",\" space " : "", r);
    }
    int more_lo = lo > (int)n ? lo - (int)n : 0, more_hi = hi < 0 ? -1 : hi - (int)n;
    if (!c->code && json_is_false(extra) && more_lo > 0)
        gconv_fail(c, BW_EINVAL, "minItems %d is more than the %zu items the schema allows", lo, n);
    if (!c->code && !json_is_false(extra) && more_hi != 0) {
        char *in = sub_name(name, "item");
        size_t at = gconv_push(c, tuple ? (json_is_array(prefix) ? "items" : "additionalItems") : "items");
        const char *r = !in ? oom(c) : json_is_true(extra) ? gprim_add(c, "value", "value") : schema_visit(c, extra, in);
        gconv_pop(c, at);
        free(in);
        if (r && n) {
            struct textbuf item = {0};
            textbuf_addf(&item, "(\",\" space %s)", r);
            textbuf_add(&b, " ");
            gbnf_repeat(&b, textbuf_str(&item), more_lo, more_hi, NULL);
            textbuf_fini(&item);
        } else if (r) {
            gbnf_repeat(&b, r, more_lo, more_hi, "\",\" space");
        }
    }
    textbuf_add(&b, " space \"]\"");
    const char *r = NULL;
    if (!c->code)
        r = b.oom ? oom(c) : grule_add(c, rule_name, textbuf_str(&b));
    textbuf_fini(&b);
    return r;
}
