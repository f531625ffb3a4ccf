/* api_openai.c -- the OpenAI-compatible routes under /v1 (anchors.md §1.11). The same
 * generation path as the native API; only the wire shapes differ: SSE `data:` lines ending
 * in `data: [DONE]`, choices/deltas, usage (with Bellows' context fields), and errors as
 * {"error": {"message", "type", "param", "code"}}. No num_ctx is needed: sizing is
 * automatic here too. */
#define _GNU_SOURCE
#include "api/api_int.h"
#include "template/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/json_schema.h"
#include "template/caps.h"

struct oa_state {
    char id[48];
    int64_t created;
    bool chat;
    bool include_usage;
    bool sent_role;
};

static const char *str_field(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void sse(struct gen *g, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s)
        return;
    strbuf_add(&g->out, "data: ", 6);
    strbuf_add(&g->out, s, strlen(s));
    strbuf_add(&g->out, "\n\n", 2);
    free(s);
}

static json_t *usage_json(const struct gen *g)
{
    json_t *u = json_pack("{s:i, s:i, s:i}", "prompt_tokens", g->st.prompt_eval_count, "completion_tokens",
                          g->st.eval_count, "total_tokens", g->st.prompt_eval_count + g->st.eval_count);
    api__context_fields(u, &g->st, g->req->request_id);
    return u;
}

static json_t *chunk_base(const struct gen *g)
{
    const struct oa_state *s = g->fmt_ud;
    return json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", s->id, "object",
                     s->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)s->created,
                     "model", g->model_name, "system_fingerprint", "fp_bellows");
}

static const char *finish_reason(const struct gen *g)
{
    if (json_array_size(g->tool_calls))
        return "tool_calls";
    return g->st.done_reason && !strcmp(g->st.done_reason, "length") ? "length" : "stop";
}

/* Reasoning goes to `reasoning_content` (DeepSeek's and llama.cpp's name): streamed as
 * delta.reasoning_content (chat) or choice.reasoning_content (completions), in the final
 * message next to content when the model wrote some. */
static void oa_piece(struct gen *g, const char *text, size_t len, bool thinking)
{
    struct oa_state *s = g->fmt_ud;
    json_t *o = chunk_base(g);
    json_t *choice;
    const char *key = thinking ? "reasoning_content" : s->chat ? "content" : "text";
    if (s->chat) {
        json_t *delta = json_pack("{s:s%}", key, text, len);
        if (!s->sent_role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            s->sent_role = true;
        }
        choice = json_pack("{s:i, s:o, s:n}", "index", 0, "delta", delta, "finish_reason");
    } else {
        choice = json_pack("{s:i, s:s, s:n}", "index", 0, "text", "", "finish_reason");
        json_object_set_new(choice, key, json_stringn(text, len));
    }
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    sse(g, o);
}

/* A tool call, streamed as OpenAI's delta: the whole call in one chunk (index, id, type,
 * function.name, function.arguments), which clients accumulate as they do fragments. */
static void oa_tool_call(struct gen *g, int index, const json_t *call, const char *id)
{
    struct oa_state *s = g->fmt_ud;
    json_t *o = chunk_base(g);
    json_t *delta = json_pack("{s:[o]}", "tool_calls", api__openai_tool_call(call, index, id, true));
    if (!s->sent_role) {
        json_object_set_new(delta, "role", json_string("assistant"));
        s->sent_role = true;
    }
    json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n}]", "index", 0, "delta", delta, "finish_reason"));
    sse(g, o);
}

/* The final message's tool_calls (and content null when the model wrote only calls). */
static void oa_message_calls(const struct gen *g, json_t *message)
{
    size_t n = json_array_size(g->tool_calls);
    if (!n)
        return;
    json_t *calls = json_array();
    for (size_t i = 0; i < n; i++) {
        char id[80];
        json_array_append_new(calls, api__openai_tool_call(json_array_get(g->tool_calls, i), (int)i,
                                                           gen_call_id(g, (int)i, id, sizeof id), false));
    }
    json_object_set_new(message, "tool_calls", calls);
    if (!g->text.len)
        json_object_set_new(message, "content", json_null());
}

static void oa_final(struct gen *g)
{
    struct oa_state *s = g->fmt_ud;
    const char *text = g->text.s ? g->text.s : "";
    if (g->stream) {
        json_t *o = chunk_base(g);
        json_t *choice = s->chat ? json_pack("{s:i, s:{}, s:s}", "index", 0, "delta", "finish_reason", finish_reason(g))
                                 : json_pack("{s:i, s:s, s:s}", "index", 0, "text", "", "finish_reason",
                                             finish_reason(g));
        json_object_set_new(o, "choices", json_pack("[o]", choice));
        sse(g, o);
        if (s->include_usage) {
            json_t *u = chunk_base(g);
            json_object_set_new(u, "choices", json_array());
            json_object_set_new(u, "usage", usage_json(g));
            sse(g, u);
        }
        strbuf_add(&g->out, "data: [DONE]\n\n", 14);
        return;
    }
    json_t *choice = s->chat ? json_pack("{s:i, s:{s:s, s:s%}, s:s}", "index", 0, "message", "role", "assistant",
                                         "content", text, g->text.len, "finish_reason", finish_reason(g))
                             : json_pack("{s:i, s:s%, s:s}", "index", 0, "text", text, g->text.len, "finish_reason",
                                         finish_reason(g));
    if (g->thinking.len)
        json_object_set_new(s->chat ? json_object_get(choice, "message") : choice, "reasoning_content",
                            json_stringn(g->thinking.s, g->thinking.len));
    if (s->chat)
        oa_message_calls(g, json_object_get(choice, "message"));
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", s->id, "object",
                          s->chat ? "chat.completion" : "text_completion", "created", (json_int_t)s->created, "model",
                          g->model_name, "system_fingerprint", "fp_bellows", "choices", choice, "usage", usage_json(g));
    char *str = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (str) {
        strbuf_add(&g->out, str, strlen(str));
        free(str);
    }
}

static void oa_stream_error(struct gen *g, const char *msg)
{
    sse(g, json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "api_error"));
    strbuf_add(&g->out, "data: [DONE]\n\n", 14);
}

static void oa_reply_error(struct http_request *req, int status, const char *msg)
{
    api__reply_openai_error(req, status, "%s", msg);
}

static const struct gen_format oa_format = {"text/event-stream", oa_piece, oa_final, oa_stream_error, oa_reply_error,
                                            oa_tool_call};

/* Maps OpenAI's sampling fields onto Ollama options (the runner's language). Temperature
 * and top_p default to 1.0 on /v1, as Ollama does. Returns 0 or a 400 message. */
static int openai_options(const json_t *body, json_t *opts, char *msg, size_t len)
{
    static const struct {
        const char *from, *to;
    } map[] = {{"temperature", "temperature"}, {"top_p", "top_p"},   {"frequency_penalty", "frequency_penalty"},
               {"presence_penalty", "presence_penalty"}, {"seed", "seed"}, {"max_tokens", "num_predict"},
               {"max_completion_tokens", "num_predict"}, {"stop", "stop"}};
    json_object_set_new(opts, "temperature", json_real(1.0));
    json_object_set_new(opts, "top_p", json_real(1.0));
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        json_t *v = json_object_get(body, map[i].from);
        if (v && !json_is_null(v))
            json_object_set(opts, map[i].to, v);
    }
    /* Ollama-style options may also come through (extra_body / options): accepted, num_ctx ignored. */
    json_t *extra = json_object_get(body, "options");
    if (json_is_object(extra))
        json_object_update(opts, extra);
    const json_t *rf = json_object_get(body, "response_format");
    const char *rft = str_field(rf, "type");
    if (rft && strcmp(rft, "text") != 0 && strcmp(rft, "json_object") != 0 && strcmp(rft, "json_schema") != 0)
        return snprintf(msg, len, "response_format '%s' is not supported (text, json_object and json_schema are)", rft), 400;
    const json_t *n = json_object_get(body, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1)
        return snprintf(msg, len, "n must be 1"), 400;
    return 0;
}

/* Parts of a message's content other than text and images are refused rather than dropped. */
static int check_parts(const json_t *m, size_t i, char *msg, size_t len)
{
    const json_t *c = json_object_get(m, "content");
    if (c && !json_is_null(c) && !json_is_string(c) && !json_is_array(c))
        return snprintf(msg, len, "messages[%zu].content must be a string or an array of parts", i), 400;
    for (size_t k = 0; json_is_array(c) && k < json_array_size(c); k++) {
        const char *type = str_field(json_array_get(c, k), "type");
        bool text = type && !strcmp(type, "text") && str_field(json_array_get(c, k), "text");
        if (!text && !(type && !strcmp(type, "image_url")))
            return snprintf(msg, len, "messages[%zu].content[%zu]: unsupported part type", i, k), 400;
    }
    return 0;
}

/* ---- /v1/completions prompts ------------------------------------------------------------ */

/* An array of token ids: non-empty, integers from 0. */
static bool token_ids_ok(const json_t *a)
{
    if (!json_is_array(a) || !json_array_size(a))
        return false;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *t = json_array_get(a, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return false;
    }
    return true;
}

/* `prompt` in OpenAI's four forms: a string, an array of strings, an array of token ids, an
 * array of such arrays. Returns 0 with the prompts as a new array (each a string or a token
 * array) in *out, or 400 with msg. */
static int completion_prompts(const json_t *prompt, json_t **out, char *msg, size_t len)
{
    *out = NULL;
    if (json_is_string(prompt) || (json_is_array(prompt) && json_is_integer(json_array_get(prompt, 0)))) {
        if (!json_is_string(prompt) && !token_ids_ok(prompt))
            return snprintf(msg, len, "prompt: token ids must be integers from 0"), 400;
        *out = json_pack("[O]", prompt);
        return *out ? 0 : (snprintf(msg, len, "out of memory"), 500);
    }
    if (!json_is_array(prompt) || !json_array_size(prompt))
        return snprintf(msg, len, "prompt must be a string, an array of strings, an array of token ids or an "
                                  "array of such arrays"),
               400;
    for (size_t i = 0; i < json_array_size(prompt); i++) {
        const json_t *p = json_array_get(prompt, i);
        if (!json_is_string(p) && !token_ids_ok(p))
            return snprintf(msg, len, "prompt[%zu] must be a string or a non-empty array of token ids", i), 400;
    }
    *out = json_incref((json_t *)prompt);
    return 0;
}

/* Points pr at one prompt: a string is templated, as Ollama's /v1/completions does; token
 * ids are the model's own and go to it as they are (raw, as llama-server reads them), sent
 * as a context in front of an empty prompt. *ids holds them (freed and replaced here). */
static int completion_prompt_set(struct proto_request *pr, const json_t *p, int32_t **ids)
{
    free(*ids);
    *ids = NULL;
    pr->req.context = NULL;
    pr->req.n_context = 0;
    if (json_is_string(p)) {
        pr->req.prompt = json_string_value(p);
        pr->req.raw = false;
        return BW_OK;
    }
    size_t n = json_array_size(p);
    if (!(*ids = malloc(n * sizeof **ids)))
        return BW_ENOMEM;
    for (size_t i = 0; i < n; i++)
        (*ids)[i] = (int32_t)json_integer_value(json_array_get(p, i));
    pr->req.prompt = "";
    pr->req.raw = true;
    pr->req.context = *ids;
    pr->req.n_context = (int)n;
    return BW_OK;
}

/* Several prompts, not streamed: one choice per prompt (index = its position), each run
 * to its end in turn on one acquired runner; usage sums them (the context fields are the
 * last prompt's). Answers and frees g. */
static void completions_batch(struct gen *g, struct proto_request *pr, const json_t *prompts)
{
    struct oa_state *s = g->fmt_ud;
    struct bw_err err;
    int32_t *ids = NULL;
    json_t *choices = json_array();
    int prompt_tokens = 0, completion_tokens = 0;
    int rc = gen_acquire(g, &err);
    for (size_t i = 0; rc == BW_OK && i < json_array_size(prompts); i++) {
        if (completion_prompt_set(pr, json_array_get(prompts, i), &ids) != BW_OK) {
            rc = bw_errf(&err, BW_ENOMEM, "out of memory");
            break;
        }
        strbuf_free(&g->text);
        strbuf_free(&g->thinking);
        if ((rc = gen_collect(g, pr, &err)) != BW_OK)
            break;
        json_t *c = json_pack("{s:i, s:s%, s:s}", "index", (int)i, "text", g->text.s ? g->text.s : "", g->text.len,
                              "finish_reason", finish_reason(g));
        if (g->thinking.len)
            json_object_set_new(c, "reasoning_content", json_stringn(g->thinking.s, g->thinking.len));
        json_array_append_new(choices, c);
        prompt_tokens += g->st.prompt_eval_count;
        completion_tokens += g->st.eval_count;
    }
    free(ids);
    if (rc) {
        api__reply_openai_error(g->req, api_status_for(rc), "%s", err.msg);
        metrics_request(&g->api->metrics, g->route, api_status_for(rc));
        json_decref(choices);
    } else {
        json_t *u = json_object();
        api__context_fields(u, &g->st, g->req->request_id); /* its prompt_tokens is L: the sum wins */
        json_object_set_new(u, "prompt_tokens", json_integer(prompt_tokens));
        json_object_set_new(u, "completion_tokens", json_integer(completion_tokens));
        json_object_set_new(u, "total_tokens", json_integer(prompt_tokens + completion_tokens));
        api__reply_json(g->req, 200,
                        json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o}", "id", s->id, "object", "text_completion",
                                  "created", (json_int_t)s->created, "model", g->model_name, "system_fingerprint",
                                  "fp_bellows", "choices", choices, "usage", u));
        metrics_request(&g->api->metrics, g->route, 200);
    }
    gen_free(g);
}

/* The tools' shape, tool_choice and parallel_tool_calls (api_tools.c); "none" leaves the
 * tools out of the template and the answer unparsed, as OpenAI's model must not call. */
static int take_tool_choice(const json_t *body, const json_t *tools, struct proto_request *pr, char **tools_json,
                            char *msg, size_t len)
{
    int status = api__check_tools(tools, msg, len);
    struct api_tool_choice tc;
    if (!status)
        status = api__tool_choice(body, json_is_array(tools) ? tools : NULL, &tc, msg, len);
    if (status)
        return status;
    if (tc.choice && !strcmp(tc.choice, "none")) {
        free(*tools_json);
        *tools_json = NULL;
    }
    pr->req.tool_choice = tc.choice;
    pr->req.tool_name = tc.name; /* borrowed from body */
    return 0;
}

/* response_format {"type": "json_schema", "json_schema": {"schema": {...}}}: the schema's
 * grammar in *out (caller frees; NULL for other types, and for a json_schema without a
 * schema, which is JSON mode). Returns 0 or the status, with the message in msg. */
static int response_format_grammar(const json_t *rf, char **out, char *msg, size_t len)
{
    *out = NULL;
    const char *type = str_field(rf, "type");
    if (!type || strcmp(type, "json_schema"))
        return 0;
    const json_t *js = json_object_get(rf, "json_schema");
    if (!json_is_object(js)) {
        snprintf(msg, len, "response_format.json_schema must be an object");
        return 400;
    }
    const json_t *schema = json_object_get(js, "schema");
    if (!schema || json_is_null(schema))
        return 0;
    struct bw_err err;
    if (json_schema_to_gbnf(schema, out, &err) != BW_OK) {
        snprintf(msg, len, "response_format.json_schema.schema: %s", err.msg);
        return err.code == BW_ENOMEM ? 500 : 400;
    }
    return 0;
}

static void run(struct api *a, struct http_request *req, bool chat)
{
    const char *route = chat ? "/v1/chat/completions" : "/v1/completions";
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    json_t *opts = json_object();
    json_t *params_doc = NULL;
    struct gen *g = calloc(1, sizeof *g);
    struct oa_state *st = calloc(1, sizeof *st);
    struct policy_msg *msgs = NULL;
    char **msg_json = NULL;     /* each message in the template's conventions, as JSON text */
    json_t *norm = json_array(); /* ... and as documents, which the msgs borrow from */
    char *tools_json = NULL;
    char *schema_grammar = NULL; /* response_format json_schema (response_format_grammar) */
    size_t n_msgs = 0;
    json_t *prompts = NULL; /* /v1/completions: the prompts (completion_prompts) */
    int32_t *prompt_ids = NULL;
    const char *stops[2 * OPTIONS_MAX_STOP];
    struct proto_request pr = {.type = chat ? PROTO_REQ_CHAT : PROTO_REQ_GENERATE};
    int status = body && g && st ? api__check_limits(a, body, msg, sizeof msg) : 400;
    if (!g || !st)
        snprintf(msg, sizeof msg, "out of memory");
    if (!status) {
        g->api = a;
        g->req = req;
        g->route = route;
        g->fmt = &oa_format;
        g->fmt_ud = st;
        g->t_start = clock_mono_ns();
        g->keep_alive = SCHED_KEEP_ALIVE_DEFAULT;
        st->chat = chat;
        st->created = clock_real_ns() / 1000000000;
        snprintf(st->id, sizeof st->id, "%s-%llu", chat ? "chatcmpl" : "cmpl", (unsigned long long)req->seq);
        g->stream = json_is_true(json_object_get(body, "stream"));
        st->include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
        if (!str_field(body, "model"))
            status = 400, snprintf(msg, sizeof msg, "model is required");
    }
    if (!status)
        status = openai_options(body, opts, msg, sizeof msg);
    if (!status)
        status = response_format_grammar(json_object_get(body, "response_format"), &schema_grammar, msg, sizeof msg);
    /* reasoning_effort is the think switch: "none" turns thinking off. */
    const char *think = NULL;
    const json_t *effort = body ? json_object_get(body, "reasoning_effort") : NULL;
    if (!status && effort && !json_is_null(effort)) {
        if (json_is_string(effort) && !strcmp(json_string_value(effort), "none"))
            think = "false";
        else if (!json_is_string(effort) || api__think_value(effort, &think) != BW_OK)
            status = 400, snprintf(msg, sizeof msg, "reasoning_effort must be one of low, medium, high (or none)");
    }
    if (!status && chat) {
        const json_t *arr = json_object_get(body, "messages");
        const json_t *tools = json_object_get(body, "tools");
        if (!json_is_array(arr) || json_array_size(arr) == 0)
            status = 400, snprintf(msg, sizeof msg, "messages must be a non-empty array");
        else if (tools && !json_is_null(tools) && !json_is_array(tools))
            status = 400, snprintf(msg, sizeof msg, "tools must be an array");
        else if (json_array_size(tools) && !(tools_json = json_dumps(tools, JSON_COMPACT)))
            status = 500, snprintf(msg, sizeof msg, "out of memory");
        if (!status)
            status = take_tool_choice(body, tools, &pr, &tools_json, msg, sizeof msg);
        n_msgs = json_array_size(arr);
        msgs = calloc(n_msgs + 1, sizeof *msgs);
        msg_json = calloc(n_msgs + 1, sizeof *msg_json);
        if (!msgs || !msg_json || !norm)
            status = 500, snprintf(msg, sizeof msg, "out of memory");
        for (size_t i = 0; !status && i < n_msgs; i++) {
            const json_t *m = json_array_get(arr, i);
            struct bw_err nerr;
            int n_images = 0;
            json_t *o = NULL;
            if (!(status = check_parts(m, i, msg, sizeof msg)) &&
                !(o = chat_message_normalize(m, i, &n_images, &nerr)))
                status = 400, snprintf(msg, sizeof msg, "%s", nerr.msg);
            if (status)
                break;
            json_array_append_new(norm, o);
            if (!strcmp(str_field(o, "role"), "developer")) /* OpenAI's newer name for system */
                json_object_set_new(o, "role", json_string("system"));
            if (!(msg_json[i] = json_dumps(o, JSON_COMPACT))) {
                status = 500, snprintf(msg, sizeof msg, "out of memory");
                break;
            }
            msgs[i] = (struct policy_msg){.role = str_field(o, "role"), .content = str_field(o, "content"),
                                          .n_images = n_images, .json = msg_json[i]};
        }
        pr.req.tools_json = tools_json;
        pr.req.kind = ENGINE_CHAT;
        pr.req.msgs = msgs;
        pr.req.n_msgs = n_msgs;
    } else if (!status) {
        status = completion_prompts(json_object_get(body, "prompt"), &prompts, msg, sizeof msg);
        if (!status && str_field(body, "suffix") && *str_field(body, "suffix"))
            status = 400, snprintf(msg, sizeof msg, "suffix (insert) is not supported by this model");
        if (!status && g->stream && json_array_size(prompts) > 1)
            status = 400, snprintf(msg, sizeof msg, "stream is not supported with more than one prompt");
        pr.req.kind = ENGINE_GENERATE;
        if (!status && completion_prompt_set(&pr, json_array_get(prompts, 0), &prompt_ids) != BW_OK)
            status = 500, snprintf(msg, sizeof msg, "out of memory");
    }
    struct bw_err err;
    if (!status)
        status = gen_open_model(g, str_field(body, "model"), msg, sizeof msg);
    int n_images = 0; /* image_url parts, counted by chat_message_normalize */
    for (size_t i = 0; !status && chat && i < n_msgs; i++)
        n_images += msgs[i].n_images;
    if (!status)
        status = api__refuse_images(g->model_name, n_images, msg, sizeof msg);
    if (!status && think && strcmp(think, "false") && !(api__model_caps(&g->model) & TEMPLATE_CAP_THINKING))
        status = 400, snprintf(msg, sizeof msg, "\"%.400s\" does not support thinking", g->model_name);
    if (!status) {
        pr.req.think = think;
        pr.req.chat_template = api__render_template(&g->model); /* a Jinja TEMPLATE layer replaces the GGUF's */
        pr.req.num_keep = -1;
        const char *rft = str_field(json_object_get(body, "response_format"), "type");
        pr.req.grammar = schema_grammar                                                       ? schema_grammar
                         : rft && (!strcmp(rft, "json_object") || !strcmp(rft, "json_schema")) ? api__json_grammar
                                                                                               : NULL;
        sampling_params_default(&pr.req.sampling);
        if (api__apply_options(&g->model, opts, &pr.req, stops, &params_doc, &err) != BW_OK)
            status = 400, snprintf(msg, sizeof msg, "%s", err.msg);
    }
    if (status) {
        api__reply_openai_error(req, status, "%s", msg);
        metrics_request(&a->metrics, route, status);
        if (g)
            g->fmt_ud = st = NULL;
        gen_free(g);
        free(st);
    } else if (!chat && json_array_size(prompts) > 1) {
        completions_batch(g, &pr, prompts); /* owns g */
    } else {
        gen_run(g, &pr); /* owns g (and st through fmt_ud) */
    }
    for (size_t i = 0; msg_json && i < n_msgs; i++)
        free(msg_json[i]);
    free(msg_json);
    free(tools_json);
    free(schema_grammar);
    free(prompt_ids);
    json_decref(prompts);
    json_decref(norm);
    free(msgs);
    json_decref(params_doc);
    json_decref(opts);
    json_decref(body);
}

void openai_chat(struct api *a, struct http_request *req) { run(a, req, true); }
void openai_completions(struct api *a, struct http_request *req) { run(a, req, false); }

void openai_embeddings(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const json_t *input = body ? json_object_get(body, "input") : NULL;
    int status = body ? api__check_limits(a, body, msg, sizeof msg) : 400;
    if (!status && !str_field(body, "model"))
        status = 400, snprintf(msg, sizeof msg, "model is required");
    /* Token ids are inputs too (LangChain's OpenAIEmbeddings sends them): read in the
     * model's own vocabulary, as llama-server does. Vectors are unit length (OpenAI's and
     * Ollama's /v1); `dimensions` keeps the first N and normalizes again. */
    if (!status && !input)
        status = 400, snprintf(msg, sizeof msg, "input is required");
    if (!status)
        status = gen_embed_check_input(input, true, msg, sizeof msg);
    struct gen_embed_opts eo = {.truncate = true, .normalize = true, .tokens = true};
    if (!status)
        status = gen_embed_dimensions(json_object_get(body, "dimensions"), &eo.dimensions, msg, sizeof msg);
    struct gen *g = status ? NULL : calloc(1, sizeof *g);
    struct bw_err err;
    if (g) {
        g->api = a;
        g->req = req;
        g->route = "/v1/embeddings";
        g->keep_alive = SCHED_KEEP_ALIVE_DEFAULT;
        status = gen_open_model(g, str_field(body, "model"), msg, sizeof msg);
        int rc = status ? BW_OK : gen_acquire(g, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    /* The openai SDKs ask for base64 (little-endian float32) by default and decode it. */
    const char *enc = body ? str_field(body, "encoding_format") : NULL;
    bool base64 = enc && !strcmp(enc, "base64");
    eo.base64 = base64;
    if (!status && enc && !base64 && strcmp(enc, "float") != 0)
        status = 400, snprintf(msg, sizeof msg, "encoding_format must be \"float\" or \"base64\"");
    json_t *vectors = json_array(), *data = json_array();
    int tokens = 0;
    if (!status) {
        int rc = gen_embed_inputs(g, input, &eo, vectors, &tokens, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    for (size_t i = 0; !status && i < json_array_size(vectors); i++)
        json_array_append_new(data, json_pack("{s:s, s:O, s:i}", "object", "embedding", "embedding",
                                              json_array_get(vectors, i), "index", (int)i));
    json_decref(vectors);
    if (status) {
        api__reply_openai_error(req, status, "%s", msg);
        json_decref(data);
    } else {
        api__reply_json(req, 200, json_pack("{s:s, s:o, s:s, s:{s:i, s:i}}", "object", "list", "data", data, "model",
                                            g->model_name, "usage", "prompt_tokens", tokens, "total_tokens", tokens));
    }
    metrics_request(&a->metrics, "/v1/embeddings", status ? status : 200);
    gen_free(g);
    json_decref(body);
}

static json_t *model_object(const char *display, int64_t modified_ns)
{
    char owner[NAMES_FULL_MAX + 1] = "library";
    const char *slash = strchr(display, '/');
    if (slash)
        snprintf(owner, sizeof owner, "%.*s", (int)(slash - display), display);
    return json_pack("{s:s, s:s, s:I, s:s}", "id", display, "object", "model", "created",
                     (json_int_t)(modified_ns / 1000000000), "owned_by", owner);
}

void openai_models(struct api *a, struct http_request *req)
{
    struct store_list l = {0};
    struct bw_err err;
    if (store_list(a->cfg.store, &l, &err) != BW_OK) {
        api__reply_openai_error(req, 500, "%s", err.msg);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < l.n_items; i++)
        json_array_append_new(data, model_object(l.items[i].display, l.items[i].modified_ns));
    store_list_fini(&l);
    api__reply_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
    metrics_request(&a->metrics, "/v1/models", 200);
}

void openai_model(struct api *a, struct http_request *req)
{
    const char *name = req->path + strlen("/v1/models/");
    struct store_model *sm;
    struct bw_err err;
    int rc = store_resolve(a->cfg.store, name, &sm, &err);
    if (rc) {
        api__reply_openai_error(req, api_status_for(rc), rc == BW_ENOTFOUND ? "model '%s' not found" : "%s",
                                rc == BW_ENOTFOUND ? name : err.msg);
        metrics_request(&a->metrics, "/v1/models/:id", api_status_for(rc));
        return;
    }
    api__reply_json(req, 200, model_object(sm->display, sm->modified_ns));
    store_model_free(sm);
    metrics_request(&a->metrics, "/v1/models/:id", 200);
}
