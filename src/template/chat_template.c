/* chat_template.c -- see chat_template.h. */
#define _GNU_SOURCE
#include "template/chat_template.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "template/jinja.h"

struct chat_template {
    char *text;
    struct jinja_tmpl *jt;
};

int chat_template_parse(const char *text, struct chat_template **out, struct bw_err *err)
{
    struct chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->text = strdup(text))) {
        free(t);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    int rc = jinja_parse(text, strlen(text), &t->jt, err);
    if (rc) {
        free(t->text);
        free(t);
        return rc;
    }
    *out = t;
    return BW_OK;
}

void chat_template_free(struct chat_template *t)
{
    if (!t)
        return;
    jinja_free(t->jt);
    free(t->text);
    free(t);
}

const char *chat_template_text(const struct chat_template *t) { return t->text; }

json_t *chat_template_context(const struct chat_render_in *in, struct bw_err *err)
{
    json_t *ctx = json_object(), *msgs = json_array();
    if (!ctx || !msgs) {
        json_decref(ctx);
        json_decref(msgs);
        bw_errf(err, BW_ENOMEM, "out of memory");
        return NULL;
    }
    json_object_set_new(ctx, "messages", msgs);
    for (size_t i = 0; i < in->n_msgs; i++) {
        const struct policy_msg *m = &in->msgs[i];
        if (in->parsed && in->parsed[i]) {
            json_array_append(msgs, in->parsed[i]);
            continue;
        }
        json_t *o = m->json ? json_loads(m->json, 0, NULL) : NULL;
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_object();
        }
        /* role and content as the cut sees them (the marker has no json) */
        json_object_set_new(o, "role", json_string(m->role));
        json_object_set_new(o, "content", json_string(m->content ? m->content : ""));
        json_array_append_new(msgs, o);
    }
    if (in->tools_json) {
        json_t *tools = json_loads(in->tools_json, 0, NULL);
        if (json_is_array(tools) && json_array_size(tools))
            json_object_set_new(ctx, "tools", tools);
        else
            json_decref(tools);
    }
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(in->add_generation_prompt));
    json_object_set_new(ctx, "bos_token", json_string(in->bos_token ? in->bos_token : ""));
    json_object_set_new(ctx, "eos_token", json_string(in->eos_token ? in->eos_token : ""));
    if (in->think) {
        bool on = strcmp(in->think, "false") != 0;
        json_object_set_new(ctx, "enable_thinking", json_boolean(on));
        json_object_set_new(ctx, "thinking", json_boolean(on));
        if (on && strcmp(in->think, "true"))
            json_object_set_new(ctx, "reasoning_effort", json_string(in->think));
    }
    return ctx;
}

/* Every tool call's arguments in ctx's messages as compact JSON text; false when none was
 * an object (nothing to try again with). A message with calls is copied first: ctx holds
 * the caller's parsed messages by reference. */
static bool arguments_as_text(json_t *ctx)
{
    bool changed = false;
    size_t i, k;
    json_t *msgs = json_object_get(ctx, "messages"), *m, *tc;
    json_array_foreach(msgs, i, m) {
        if (!json_array_size(json_object_get(m, "tool_calls")))
            continue;
        m = json_deep_copy(m);
        if (!m || json_array_set_new(msgs, i, m))
            return false;
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
            json_t *fn = json_object_get(tc, "function");
            json_t *args = json_object_get(fn, "arguments");
            if (!json_is_object(args) && !json_is_array(args))
                continue;
            char *text = json_dumps(args, JSON_COMPACT);
            if (!text)
                continue;
            json_object_set_new(fn, "arguments", json_string(text));
            free(text);
            changed = true;
        }
    }
    return changed;
}

int chat_template_render(const struct chat_template *t, const struct chat_render_in *in, char **out,
                         size_t *out_len, struct bw_err *err)
{
    json_t *ctx = chat_template_context(in, err);
    if (!ctx)
        return BW_ENOMEM;
    struct jinja_opts o = {.now_unix = in->now_unix, .utc_offset_s = in->utc_offset_s};
    int rc = jinja_render(t->jt, ctx, &o, out, out_len, err);
    /* Tool calls' arguments go to templates as objects (transformers' convention), but some
     * templates write them as text they were given as text (Functionary v3.2: '...' +
     * arguments), as OpenAI sends them; llama.cpp probes for this too. On a render error
     * with object arguments, once more with the arguments as JSON text. */
    if (rc == BW_EINVAL && arguments_as_text(ctx)) {
        struct bw_err err2 = {0};
        if (jinja_render(t->jt, ctx, &o, out, out_len, &err2) == BW_OK)
            rc = BW_OK;
    }
    json_decref(ctx);
    return rc;
}

/* ---- API messages -> template conventions ------------------------------------------- */

static json_t *fail(struct bw_err *err, json_t *o, const char *fmt, size_t i, const char *field)
{
    json_decref(o);
    bw_errf(err, BW_EINVAL, fmt, i, field);
    return NULL;
}

/* OpenAI content parts: [{"type":"text","text":...}, {"type":"image_url",...}] */
static char *join_parts(const json_t *parts, int *n_images)
{
    size_t len = 0;
    for (size_t k = 0; k < json_array_size(parts); k++) {
        const json_t *p = json_array_get(parts, k);
        const char *text = json_is_string(p) ? json_string_value(p) : json_string_value(json_object_get(p, "text"));
        if (text)
            len += strlen(text);
    }
    char *s = malloc(len + 1), *w = s;
    if (!s)
        return NULL;
    for (size_t k = 0; k < json_array_size(parts); k++) {
        const json_t *p = json_array_get(parts, k);
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *text = json_string_value(json_object_get(p, "text"));
        if (json_is_string(p)) {
            text = json_string_value(p);
        } else if (type && strcmp(type, "text")) {
            (*n_images)++;
            continue;
        }
        if (text) {
            size_t n = strlen(text);
            memcpy(w, text, n); /* n fits: the first loop counted every text */
            w += n;
        }
    }
    *w = '\0';
    return s;
}

static json_t *normalize_tool_call(const json_t *tc, size_t i, size_t k, struct bw_err *err)
{
    const json_t *fn = json_object_get(tc, "function");
    if (!json_is_object(tc) || !json_is_object(fn)) {
        bw_errf(err, BW_EINVAL, "messages[%zu].tool_calls[%zu].function must be an object", i, k);
        return NULL;
    }
    const json_t *name = json_object_get(fn, "name");
    if (!json_is_string(name)) {
        bw_errf(err, BW_EINVAL, "messages[%zu].tool_calls[%zu].function.name must be a string", i, k);
        return NULL;
    }
    const json_t *args = json_object_get(fn, "arguments");
    json_t *args_obj;
    if (json_is_string(args)) { /* OpenAI sends JSON text; templates want the object */
        args_obj = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
        if (!args_obj)
            args_obj = json_incref((json_t *)args);
    } else if (!args || json_is_null(args)) {
        args_obj = json_object();
    } else {
        args_obj = json_incref((json_t *)args);
    }
    json_t *out = json_object();
    json_t *f = json_object();
    json_object_set_new(out, "type", json_string("function"));
    if (json_is_string(json_object_get(tc, "id")))
        json_object_set(out, "id", json_object_get(tc, "id"));
    json_object_set(f, "name", (json_t *)name);
    json_object_set_new(f, "arguments", args_obj);
    const json_t *index = json_object_get(fn, "index");
    if (json_is_integer(index))
        json_object_set(f, "index", (json_t *)index);
    json_object_set_new(out, "function", f);
    return out;
}

json_t *chat_message_normalize(const json_t *msg, size_t i, int *n_images, struct bw_err *err)
{
    *n_images = 0;
    if (!json_is_object(msg)) {
        bw_errf(err, BW_EINVAL, "messages[%zu] must be an object", i);
        return NULL;
    }
    json_t *o = json_deep_copy(msg);
    if (!o) {
        bw_errf(err, BW_ENOMEM, "out of memory");
        return NULL;
    }
    const char *role = json_string_value(json_object_get(o, "role"));
    if (!role)
        return fail(err, o, "messages[%zu].%s must be a string", i, "role");
    char lower[32];
    size_t rl = strlen(role);
    if (rl < sizeof lower) {
        for (size_t k = 0; k <= rl; k++)
            lower[k] = (char)(role[k] >= 'A' && role[k] <= 'Z' ? role[k] + 32 : role[k]);
        json_object_set_new(o, "role", json_string(lower));
    }
    json_t *content = json_object_get(o, "content");
    if (json_is_array(content)) {
        char *text = join_parts(content, n_images);
        if (!text) {
            json_decref(o);
            bw_errf(err, BW_ENOMEM, "out of memory");
            return NULL;
        }
        json_object_set_new(o, "content", json_string(text));
        free(text);
    } else if (!content || json_is_null(content)) {
        json_object_set_new(o, "content", json_string(""));
    } else if (!json_is_string(content)) {
        return fail(err, o, "messages[%zu].%s must be a string", i, "content");
    }
    const json_t *images = json_object_get(o, "images");
    if (json_is_array(images)) {
        *n_images += (int)json_array_size(images);
        json_object_del(o, "images"); /* the text of a chat holds no image bytes */
    }
    const json_t *calls = json_object_get(o, "tool_calls");
    if (calls && !json_is_null(calls)) {
        if (!json_is_array(calls))
            return fail(err, o, "messages[%zu].%s must be an array", i, "tool_calls");
        json_t *norm = json_array();
        for (size_t k = 0; k < json_array_size(calls); k++) {
            json_t *tc = normalize_tool_call(json_array_get(calls, k), i, k, err);
            if (!tc) {
                json_decref(norm);
                json_decref(o);
                return NULL;
            }
            json_array_append_new(norm, tc);
        }
        if (json_array_size(norm))
            json_object_set_new(o, "tool_calls", norm);
        else {
            json_decref(norm);
            json_object_del(o, "tool_calls");
        }
    } else if (calls) {
        json_object_del(o, "tool_calls");
    }
    const json_t *tool_name = json_object_get(o, "tool_name");
    if (json_is_string(tool_name) && !json_is_string(json_object_get(o, "name")))
        json_object_set(o, "name", (json_t *)tool_name);
    const json_t *thinking = json_object_get(o, "thinking");
    const json_t *reasoning = json_object_get(o, "reasoning_content");
    if (json_is_string(thinking) && !json_is_string(reasoning))
        json_object_set(o, "reasoning_content", (json_t *)thinking);
    else if (json_is_string(reasoning) && !json_is_string(thinking))
        json_object_set(o, "thinking", (json_t *)reasoning);
    return o;
}
