/* toolcall_json.c -- calls as JSON (see toolcall_int.h): the array the format parsers fill,
 * and toolcall_json_dump (toolcall.h), whose numbers read as the model wrote them. */
#include "template/toolcall_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *toolcall__load(struct span sp, size_t flags)
{
    if (!sp.n)
        return NULL;
    return json_loadb(sp.s, sp.n, flags | JSON_DECODE_ANY, NULL);
}

/* Appends one call; takes args (NULL, from a parse that failed, fails). False (args
 * released) on a bad name or arguments that are not an object. */
bool toolcall__add_call(json_t *out, struct span name, json_t *args, const char *id, size_t id_len)
{
    name = toolcall__trim(name.s, name.n);
    if (!name.n || name.n > 256 || memchr(name.s, '\n', name.n) || !json_is_object(args)) {
        json_decref(args);
        return false;
    }
    json_t *c = json_object();
    json_t *nm = json_stringn(name.s, name.n); /* NULL when the name is not UTF-8 */
    if (!c || !nm) {
        json_decref(c);
        json_decref(nm);
        json_decref(args);
        return false;
    }
    json_object_set_new(c, "name", nm);
    json_object_set_new(c, "arguments", args);
    if (id && id_len)
        json_object_set_new(c, "id", json_stringn(id, id_len));
    json_array_append_new(out, c);
    return true;
}

/* A call written as a JSON object: {"name", "arguments"|"parameters"}, Command R's
 * {"tool_name", "parameters", "tool_call_id"}, or OpenAI's {"type":"function","function":
 * {"name","arguments"},"id"}. arguments may be an object or JSON text of one. need_args:
 * the object must carry arguments (a bare JSON answer that only has a "name" is content). */
bool toolcall__add_object_call(json_t *out, const json_t *o, bool need_args)
{
    if (!json_is_object(o))
        return false;
    const json_t *fn = json_object_get(o, "function");
    const json_t *src = json_is_object(fn) ? fn : o;
    const json_t *name = json_object_get(src, "name");
    if (!name)
        name = json_object_get(src, "tool_name");
    const json_t *args = json_object_get(src, "arguments");
    if (!args)
        args = json_object_get(src, "parameters");
    if (!json_is_string(name) || (need_args && !args))
        return false;
    json_t *a = NULL;
    if (json_is_string(args)) {
        a = json_loads(json_string_value(args), 0, NULL);
        if (!json_is_object(a) && *json_string_value(args)) {
            json_decref(a);
            return false;
        }
    } else if (json_is_object(args)) {
        a = json_incref((json_t *)args);
    } else if (args && !json_is_null(args)) {
        return false;
    }
    if (!a)
        a = json_object(); /* no arguments, or "" */
    const json_t *id = json_object_get(o, "id");
    if (!id)
        id = json_object_get(o, "tool_call_id");
    const char *ids = json_string_value(id);
    struct span nm = {json_string_value(name), json_string_length(name)};
    return toolcall__add_call(out, nm, a, ids, ids ? strlen(ids) : 0);
}

/* An array of call objects, or one. */
bool toolcall__add_json_calls(json_t *out, const json_t *v, bool need_args)
{
    if (json_is_array(v)) {
        if (!json_array_size(v))
            return false;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!toolcall__add_object_call(out, json_array_get(v, i), need_args))
                return false;
        return true;
    }
    return toolcall__add_object_call(out, v, need_args);
}

bool toolcall__add_json_list(json_t *out, struct span sp)
{
    sp = toolcall__trim(sp.s, sp.n);
    if (!sp.n)
        return false;
    if (sp.s[0] == '[') {
        json_t *v = toolcall__load(sp, 0);
        bool ok = toolcall__add_json_calls(out, v, false);
        json_decref(v);
        return ok;
    }
    while (sp.n) { /* MiniMax M1: one {"name", "arguments"} a line */
        json_error_t e;
        json_t *v = sp.s[0] == '{' ? json_loadb(sp.s, sp.n, JSON_DISABLE_EOF_CHECK, &e) : NULL;
        bool ok = v && toolcall__add_object_call(out, v, false);
        json_decref(v);
        if (!ok)
            return false;
        sp = toolcall__trim(sp.s + e.position, sp.n - (size_t)e.position);
        if (sp.n && sp.s[0] == ',')
            sp = toolcall__trim(sp.s + 1, sp.n - 1);
    }
    return true;
}

static bool add_keyed(json_t *out, const json_t *o)
{
    const char *name;
    json_t *args;
    if (!json_is_object(o) || json_object_size(o) != 1)
        return false;
    json_object_foreach((json_t *)o, name, args) {
        if (!json_is_object(args))
            return false;
        return toolcall__add_call(out, (struct span){name, strlen(name)}, json_incref(args), NULL, 0);
    }
    return false;
}

bool toolcall__add_keyed_calls(json_t *out, struct span sp)
{
    json_t *v = toolcall__load(toolcall__trim(sp.s, sp.n), 0);
    bool ok = json_is_object(v) ? add_keyed(out, v) : json_array_size(v) > 0;
    for (size_t i = 0; ok && json_is_array(v) && i < json_array_size(v); i++)
        ok = add_keyed(out, json_array_get(v, i));
    json_decref(v);
    return ok;
}

/* The JSON_REAL_PRECISION that prints every real of v as short as it can be while still
 * reading back as the same number (jansson's default of 17 digits writes 48.85 as
 * 48.850000000000001). */
static int real_precision(const json_t *v)
{
    int need = 1;
    if (json_is_real(v)) {
        char buf[40];
        double d = json_real_value(v);
        /* at least the integer part's digits: 10000.0 stays 10000.0, never 1e+04 */
        for (double m = fabs(d); m >= 10.0 && need < 17; m /= 10.0)
            need++;
        for (; need < 17; need++) {
            snprintf(buf, sizeof buf, "%.*g", need, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int n = real_precision(x);
            need = n > need ? n : need;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int n = real_precision(json_array_get(v, i));
            need = n > need ? n : need;
        }
    }
    return need;
}

char *toolcall_json_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(real_precision(v)));
}
