/* api_ollama.c -- Ollama's native routes (anchors.md §1, spec/api.md). Each handler: parse
 * the body into plain structs, resolve the model, run or answer, map errors to statuses. */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grammar/json_schema.h"
#include "template/caps.h"
#include "template/chat_template.h"
#include "util/log.h"

/* ---- the request parts generate and chat share -------------------------------------------- */

/* Everything one generate/chat request owns until it was sent to the runner. */
struct gen_request {
    json_t *body;
    json_t *params_doc;
    struct proto_request pr;
    struct policy_msg *msgs;
    json_t *norm;       /* the messages in the template's conventions (chat_message_normalize) */
    char **msg_json;    /* ... and as JSON text for the runner, one per message (NULL: none) */
    size_t n_msg_json;
    char *tools_json;   /* the request's tools as JSON text, or NULL */
    const char *stops[2 * OPTIONS_MAX_STOP];
    bool render_only;
    int32_t *context;   /* generate: the request's `context` token ids, or NULL */
    char *grammar;      /* format: {JSON schema} as GBNF (grammar/json_schema.h), or NULL */
};

static void gen_request_fini(struct gen_request *q)
{
    json_decref(q->body);
    json_decref(q->params_doc);
    json_decref(q->norm);
    for (size_t i = 0; i < q->n_msg_json; i++)
        free(q->msg_json[i]);
    free(q->msg_json);
    free(q->tools_json);
    free(q->msgs);
    free(q->context);
    free(q->grammar);
}

static const char *str_field(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Common checks and option parsing. Returns the HTTP status to fail with (0 = ok). */
static int prepare(struct api *a, struct http_request *req, struct gen_request *q, struct gen *g, char *msg,
                   size_t len)
{
    q->body = api__parse_body(req, msg, len);
    if (!q->body)
        return 400;
    int limited = api__check_limits(a, q->body, msg, len); /* counts first: before any work on them */
    if (limited)
        return limited;
    const json_t *model = json_object_get(q->body, "model");
    if (!json_is_string(model) || !*json_string_value(model)) {
        snprintf(msg, len, "model is required");
        return 400;
    }
    const json_t *stream = json_object_get(q->body, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        snprintf(msg, len, "stream must be a boolean");
        return 400;
    }
    g->stream = !json_is_false(stream);
    snprintf(g->model_name, sizeof g->model_name, "%s", json_string_value(model));
    if (api__keep_alive(q->body, &g->keep_alive) != BW_OK) {
        snprintf(msg, len, "keep_alive must be a duration (\"5m\") or a number of seconds");
        return 400;
    }
    const char *think;
    if (api__think_value(json_object_get(q->body, "think"), &think) != BW_OK) {
        snprintf(msg, len, "think must be a boolean or one of low, medium, high");
        return 400;
    }
    /* format: "json" is JSON mode (a grammar); a JSON schema becomes the grammar of its
     * instances (grammar/json_schema.h), converted before the model is opened. */
    const json_t *format = json_object_get(q->body, "format");
    bool json_mode = json_is_string(format) && !strcmp(json_string_value(format), "json");
    if (json_is_object(format)) {
        struct bw_err serr;
        if (json_schema_to_gbnf(format, &q->grammar, &serr) != BW_OK) {
            snprintf(msg, len, "format: %s", serr.msg);
            return serr.code == BW_ENOMEM ? 500 : 400;
        }
    } else if (format && !json_is_null(format) && !json_mode && !(json_is_string(format) && !*json_string_value(format))) {
        snprintf(msg, len, "format must be \"json\" or a JSON schema");
        return 400;
    }
    const json_t *opts = json_object_get(q->body, "options");
    if (opts && !json_is_object(opts) && !json_is_null(opts)) {
        snprintf(msg, len, "options must be an object");
        return 400;
    }
    q->render_only = json_is_true(json_object_get(q->body, "_debug_render_only"));
    int status = gen_open_model(g, json_string_value(model), msg, len);
    if (status)
        return status;
    /* think true or an effort on a model whose template cannot think: Ollama's 400
     * (think:false is accepted on any model, as in Ollama). */
    if (think && strcmp(think, "false") && !(api__model_caps(&g->model) & TEMPLATE_CAP_THINKING)) {
        snprintf(msg, len, "\"%.400s\" does not support thinking", g->model_name);
        return 400;
    }
    struct bw_err err;
    struct engine_request *r = &q->pr.req;
    r->num_keep = -1;
    r->truncate = true;
    sampling_params_default(&r->sampling);
    if (api__apply_options(&g->model, opts, r, q->stops, &q->params_doc, &err) != BW_OK) {
        snprintf(msg, len, "%s", err.msg);
        return 400;
    }
    r->render_only = q->render_only;
    r->grammar = q->grammar ? q->grammar : json_mode ? api__json_grammar : NULL;
    r->think = think;
    r->chat_template = api__render_template(&g->model); /* a Jinja TEMPLATE layer replaces the GGUF's */
    return 0;
}

static json_t *base_object(const struct gen *g)
{
    char ts[64];
    api__time_rfc3339(clock_real_ns(), ts, sizeof ts);
    return json_pack("{s:s, s:s}", "model", g->model_name, "created_at", ts);
}

/* The final object's metrics (Ollama's) and Bellows' context fields. */
static void add_final_fields(const struct gen *g, json_t *o)
{
    int64_t now = clock_mono_ns();
    json_object_set_new(o, "done", json_true());
    json_object_set_new(o, "done_reason", json_string(g->st.done_reason ? g->st.done_reason : "stop"));
    json_object_set_new(o, "total_duration", json_integer(now - g->t_start));
    json_object_set_new(o, "load_duration", json_integer(g->t_acquired - g->t_start));
    json_object_set_new(o, "prompt_eval_count", json_integer(g->st.prompt_eval_count));
    json_object_set_new(o, "prompt_eval_duration", json_integer(g->st.prompt_eval_ns));
    json_object_set_new(o, "eval_count", json_integer(g->st.eval_count));
    json_object_set_new(o, "eval_duration", json_integer(g->st.eval_ns));
    api__context_fields(o, &g->st, g->req->request_id);
}

/* ---- formats -------------------------------------------------------------------------- */

static void native_error_reply(struct http_request *req, int status, const char *msg)
{
    api__reply_error(req, status, "%s", msg);
}

static void native_stream_error(struct gen *g, const char *msg)
{
    strbuf_add_json(&g->out, json_pack("{s:s}", "error", msg));
}

/* Reasoning goes to `thinking` (generate) / `message.thinking` (chat), as Ollama writes it:
 * a streamed chunk carries either a piece of thinking (with an empty response / content) or
 * a piece of the answer; the non-streamed reply carries both, `thinking` only when the model
 * wrote some. */
static void generate_piece(struct gen *g, const char *text, size_t len, bool thinking)
{
    json_t *o = base_object(g);
    json_object_set_new(o, "response", thinking ? json_string("") : json_stringn(text, len));
    if (thinking)
        json_object_set_new(o, "thinking", json_stringn(text, len));
    json_object_set_new(o, "done", json_false());
    strbuf_add_json(&g->out, o);
}

static void generate_final(struct gen *g)
{
    json_t *o = base_object(g);
    json_object_set_new(o, "response", g->stream ? json_string("") : json_stringn(g->text.s ? g->text.s : "", g->text.len));
    if (!g->stream && g->thinking.len)
        json_object_set_new(o, "thinking", json_stringn(g->thinking.s, g->thinking.len));
    add_final_fields(g, o);
    if (g->n_context > 0) { /* the prompt and answer tokens, for the next request's `context` */
        json_t *c = json_array();
        for (int i = 0; i < g->n_context; i++)
            json_array_append_new(c, json_integer(g->context[i]));
        json_object_set_new(o, "context", c);
    }
    strbuf_add_json(&g->out, o);
}

static void chat_piece(struct gen *g, const char *text, size_t len, bool thinking)
{
    json_t *o = base_object(g);
    json_t *m = json_pack("{s:s, s:s%}", "role", "assistant", "content", thinking ? "" : text, thinking ? 0 : len);
    if (thinking)
        json_object_set_new(m, "thinking", json_stringn(text, len));
    json_object_set_new(o, "message", m);
    json_object_set_new(o, "done", json_false());
    strbuf_add_json(&g->out, o);
}

/* Tool calls, as Ollama sends them: a streamed chunk per call carries it in
 * message.tool_calls (content ""); the non-streamed message carries them all. */
static void chat_tool_call(struct gen *g, int index, const json_t *call, const char *id)
{
    json_t *o = base_object(g);
    json_t *m = json_pack("{s:s, s:s, s:[o]}", "role", "assistant", "content", "", "tool_calls",
                          api__ollama_tool_call(call, index, id));
    json_object_set_new(o, "message", m);
    json_object_set_new(o, "done", json_false());
    api__add_json_line(&g->out, o);
}

static void chat_final(struct gen *g)
{
    json_t *o = base_object(g);
    const char *t = g->stream ? "" : g->text.s ? g->text.s : "";
    size_t n = g->stream ? 0 : g->text.len;
    json_t *m = json_pack("{s:s, s:s%}", "role", "assistant", "content", t, n);
    if (!g->stream && g->thinking.len)
        json_object_set_new(m, "thinking", json_stringn(g->thinking.s, g->thinking.len));
    json_t *calls = !g->stream && json_array_size(g->tool_calls) ? json_array() : NULL;
    for (size_t i = 0; calls && i < json_array_size(g->tool_calls); i++) {
        char id[80];
        json_array_append_new(calls, api__ollama_tool_call(json_array_get(g->tool_calls, i), (int)i,
                                                           gen_call_id(g, (int)i, id, sizeof id)));
    }
    if (calls)
        json_object_set_new(m, "tool_calls", calls);
    json_object_set_new(o, "message", m);
    add_final_fields(g, o);
    api__add_json_line(&g->out, o);
}

static const struct gen_format generate_format = {"application/x-ndjson", generate_piece, generate_final,
                                                  native_stream_error, native_error_reply, NULL};
static const struct gen_format chat_format = {"application/x-ndjson", chat_piece, chat_final, native_stream_error,
                                              native_error_reply, chat_tool_call};

/* ---- load / unload / render -------------------------------------------------------------- */

/* An empty request loads the model (done_reason "load"), or with keep_alive 0 unloads it:
 * then nothing is loaded (Ollama's expireRunner); a loaded model goes once it is idle. */
static void load_only(struct gen *g, bool chat)
{
    struct bw_err err;
    int rc = g->keep_alive == 0 ? BW_OK : gen_acquire(g, &err);
    if (g->keep_alive == 0)
        sched_expire(g->api->cfg.sched, g->model.sched.name); /* BW_ENOTFOUND: not loaded, fine */
    if (rc) {
        api__reply_error(g->req, api_status_for(rc), "%s", err.msg);
        metrics_request(&g->api->metrics, g->route, api_status_for(rc));
        gen_free(g);
        return;
    }
    bool unload = g->keep_alive == 0;
    json_t *o = base_object(g);
    if (chat)
        json_object_set_new(o, "message", json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
    else
        json_object_set_new(o, "response", json_string(""));
    json_object_set_new(o, "done", json_true());
    json_object_set_new(o, "done_reason", json_string(unload ? "unload" : "load"));
    if (g->runner)
        sched_release(g->api->cfg.sched, g->runner, g->keep_alive);
    g->runner = NULL;
    api__reply_json(g->req, 200, o);
    metrics_request(&g->api->metrics, g->route, 200);
    gen_free(g);
}

static void render_reply(struct gen *g, struct proto_request *pr)
{
    struct bw_err err;
    int rc = gen_acquire(g, &err);
    if (rc == BW_OK)
        rc = gen_collect(g, pr, &err);
    if (rc) {
        api__reply_error(g->req, api_status_for(rc), "%s", err.msg);
        metrics_request(&g->api->metrics, g->route, api_status_for(rc));
    } else {
        json_t *d = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i}", "rendered_prompt", g->rendered ? g->rendered : "",
                              "prompt_tokens", g->st.prompt_tokens, "context_length", g->st.context_length,
                              "context_max", g->st.context_max, "truncated_messages", g->st.truncated_messages,
                              "truncated_tokens", g->st.truncated_tokens);
        json_object_set_new(d, "prompt_eval_count", json_integer(g->st.prompt_eval_count));
        json_t *o = base_object(g);
        json_object_set_new(o, "debug_info", d);
        json_object_set_new(o, "request_id", json_string(g->req->request_id));
        api__reply_json(g->req, 200, o);
        metrics_request(&g->api->metrics, g->route, 200);
    }
    gen_free(g);
}

static struct gen *gen_new(struct api *a, struct http_request *req, const char *route, const struct gen_format *fmt)
{
    struct gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->api = a;
    g->req = req;
    g->route = route;
    g->fmt = fmt;
    g->t_start = clock_mono_ns();
    return g;
}

/* ---- /api/generate ---------------------------------------------------------------------- */

void ollama_generate(struct api *a, struct http_request *req)
{
    struct gen_request q = {0};
    struct gen *g = gen_new(a, req, "/api/generate", &generate_format);
    char msg[512];
    if (!g) {
        api__reply_error(req, 500, "out of memory");
        return;
    }
    int status = prepare(a, req, &q, g, msg, sizeof msg);
    const json_t *prompt = json_object_get(q.body, "prompt");
    const json_t *system = json_object_get(q.body, "system");
    const json_t *images = json_object_get(q.body, "images");
    bool raw = json_is_true(json_object_get(q.body, "raw"));
    if (!status && prompt && !json_is_string(prompt) && !json_is_null(prompt))
        status = 400, snprintf(msg, sizeof msg, "prompt must be a string");
    if (!status && system && !json_is_string(system) && !json_is_null(system))
        status = 400, snprintf(msg, sizeof msg, "system must be a string");
    /* context: the token array an earlier final object returned (deprecated in Ollama, still
     * honoured): it goes in front of the rendered prompt, as tokens (engine_request.context). */
    const json_t *context = json_object_get(q.body, "context");
    size_t n_context = json_array_size(context);
    if (!status && context && !json_is_null(context) && !json_is_array(context))
        status = 400, snprintf(msg, sizeof msg, "context must be an array of token ids");
    for (size_t i = 0; !status && i < n_context; i++) {
        const json_t *t = json_array_get(context, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            status = 400, snprintf(msg, sizeof msg, "context[%zu] must be a token id (an integer from 0)", i);
    }
    if (!status && raw &&
        (json_string_value(json_object_get(q.body, "template")) || json_string_value(system) || n_context))
        status = 400, snprintf(msg, sizeof msg, "raw mode does not support template, system, or context");
    if (!status && str_field(q.body, "suffix") && *str_field(q.body, "suffix"))
        status = 400, snprintf(msg, sizeof msg, "\"%.400s\" does not support insert", g->model_name);
    if (!status && json_is_array(images))
        status = api__refuse_images(g->model_name, (int)json_array_size(images), msg, sizeof msg);
    if (!status && n_context && !(q.context = malloc(n_context * sizeof *q.context)))
        status = 500, snprintf(msg, sizeof msg, "out of memory");
    for (size_t i = 0; !status && i < n_context; i++)
        q.context[i] = (int32_t)json_integer_value(json_array_get(context, i));
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, g->route, status);
        gen_free(g);
        gen_request_fini(&q);
        return;
    }
    const char *p = json_string_value(prompt);
    if ((!p || !*p) && !q.render_only) {
        load_only(g, false);
        gen_request_fini(&q);
        return;
    }
    q.pr.type = PROTO_REQ_GENERATE;
    q.pr.req.kind = ENGINE_GENERATE;
    q.pr.req.prompt = p ? p : "";
    q.pr.req.raw = raw;
    q.pr.req.context = q.context;
    q.pr.req.n_context = (int)n_context;
    q.pr.req.want_context = !raw; /* Ollama returns no context for raw prompts */
    /* The request's system wins over the model's SYSTEM layer; a Modelfile TEMPLATE is shown
     * by /api/show but the GGUF's own template renders (Go templates are not supported). */
    q.pr.req.system = !raw ? (json_string_value(system) ? json_string_value(system) : g->model.sm->system) : NULL;
    if (q.render_only) {
        g->stream = false;
        render_reply(g, &q.pr);
    } else {
        gen_run(g, &q.pr);
    }
    gen_request_fini(&q);
}

/* ---- /api/chat --------------------------------------------------------------------------- */

/* Messages: the model's MESSAGE layer, then the request's; the model's SYSTEM layer first
 * when the request has no system message. Each is brought to the template's conventions
 * (chat_message_normalize: tool calls with object arguments, tool_name as name, thinking)
 * and travels to the runner whole, as JSON text; role and content are borrowed from it. */
static int build_messages(struct gen_request *q, const struct api_model *m, json_t *msgs_doc, char *msg, size_t len)
{
    const json_t *arr = json_object_get(q->body, "messages");
    const json_t *seed = msgs_doc;
    size_t n_req = json_array_size(arr), n_seed = json_is_array(seed) ? json_array_size(seed) : 0;
    q->msgs = calloc(n_req + n_seed + 2, sizeof *q->msgs);
    q->msg_json = calloc(n_req + n_seed + 2, sizeof *q->msg_json);
    q->norm = json_array();
    if (!q->msgs || !q->msg_json || !q->norm)
        return snprintf(msg, len, "out of memory"), 500;
    size_t n = 0;
    bool has_system = false;
    for (size_t i = 0; i < n_req; i++)
        has_system |= !strcasecmp(str_field(json_array_get(arr, i), "role") ?: "", "system");
    if (!has_system && m->sm->system && *m->sm->system)
        q->msgs[n++] = (struct policy_msg){.role = "system", .content = m->sm->system};
    for (size_t pass = 0; pass < 2; pass++) {
        const json_t *src = pass == 0 ? seed : arr;
        size_t count = pass == 0 ? n_seed : n_req;
        for (size_t i = 0; i < count; i++) {
            struct bw_err err;
            int n_images = 0;
            json_t *o = chat_message_normalize(json_array_get(src, i), i, &n_images, &err);
            if (!o)
                return snprintf(msg, len, "%s", err.msg), 400;
            json_array_append_new(q->norm, o);
            const char *role = str_field(o, "role");
            static const char *const roles[] = {"system", "user", "assistant", "tool"};
            const char *canon = NULL;
            for (size_t k = 0; k < 4; k++)
                if (!strcmp(role, roles[k]))
                    canon = roles[k];
            if (!canon)
                return snprintf(msg, len, "messages[%zu].role '%s' is not one of system, user, assistant, tool", i,
                                role),
                       400;
            char *text = json_dumps(o, JSON_COMPACT);
            if (!text)
                return snprintf(msg, len, "out of memory"), 500;
            q->msg_json[q->n_msg_json++] = text;
            q->msgs[n++] = (struct policy_msg){.role = canon, .content = str_field(o, "content"),
                                               .n_images = n_images, .json = text};
        }
    }
    q->pr.req.msgs = q->msgs;
    q->pr.req.n_msgs = n;
    return 0;
}

/* tools: the OpenAI function list, for the template. Returns the status to fail with. */
static int take_tools(struct gen_request *q, const json_t *tools, char *msg, size_t len)
{
    int status = api__check_tools(tools, msg, len);
    if (status || !tools || json_is_null(tools))
        return status;
    if (!json_array_size(tools))
        return 0;
    q->tools_json = json_dumps(tools, JSON_COMPACT);
    if (!q->tools_json)
        return snprintf(msg, len, "out of memory"), 500;
    q->pr.req.tools_json = q->tools_json;
    return 0;
}

/* tool_choice and parallel_tool_calls, an extension here (OpenAI's shapes, read as /v1
 * reads them): "none" leaves the tools out of the template and the answer unparsed. */
static int take_tool_choice(struct gen_request *q, const json_t *tools, char *msg, size_t len)
{
    struct api_tool_choice tc;
    int status = api__tool_choice(q->body, json_is_array(tools) ? tools : NULL, &tc, msg, len);
    if (status)
        return status;
    if (tc.choice && !strcmp(tc.choice, "none"))
        q->pr.req.tools_json = NULL;
    q->pr.req.tool_choice = tc.choice;
    q->pr.req.tool_name = tc.name; /* borrowed from q->body */
    return 0;
}

void ollama_chat(struct api *a, struct http_request *req)
{
    struct gen_request q = {0};
    struct gen *g = gen_new(a, req, "/api/chat", &chat_format);
    char msg[512];
    if (!g) {
        api__reply_error(req, 500, "out of memory");
        return;
    }
    json_t *seed = NULL;
    int status = prepare(a, req, &q, g, msg, sizeof msg);
    const json_t *arr = json_object_get(q.body, "messages");
    const json_t *tools = json_object_get(q.body, "tools");
    if (!status && arr && !json_is_array(arr) && !json_is_null(arr))
        status = 400, snprintf(msg, sizeof msg, "messages must be an array");
    if (!status)
        status = take_tools(&q, tools, msg, sizeof msg);
    if (!status)
        status = take_tool_choice(&q, tools, msg, sizeof msg);
    if (!status && g->model.sm->messages)
        seed = json_loads(g->model.sm->messages, 0, NULL);
    if (!status)
        status = build_messages(&q, &g->model, seed, msg, sizeof msg);
    int n_images = 0; /* counted by chat_message_normalize (native `images`) */
    for (size_t i = 0; !status && i < q.pr.req.n_msgs; i++)
        n_images += q.msgs[i].n_images;
    if (!status)
        status = api__refuse_images(g->model_name, n_images, msg, sizeof msg);
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, g->route, status);
        gen_free(g);
        json_decref(seed);
        gen_request_fini(&q);
        return;
    }
    if (json_array_size(arr) == 0 && !q.render_only) {
        load_only(g, true);
    } else {
        q.pr.type = PROTO_REQ_CHAT;
        q.pr.req.kind = ENGINE_CHAT;
        if (q.render_only) {
            g->stream = false;
            render_reply(g, &q.pr);
        } else {
            gen_run(g, &q.pr);
        }
    }
    json_decref(seed);
    gen_request_fini(&q);
}

/* ---- embeddings ------------------------------------------------------------------------------ */

static void embed_common(struct api *a, struct http_request *req, bool legacy)
{
    const char *route = legacy ? "/api/embeddings" : "/api/embed";
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    struct gen *g = gen_new(a, req, route, &generate_format);
    int status = body && g ? api__check_limits(a, body, msg, sizeof msg) : 400;
    const json_t *input = body ? json_object_get(body, legacy ? "prompt" : "input") : NULL;
    if (!status && !json_is_string(json_object_get(body, "model")))
        status = 400, snprintf(msg, sizeof msg, "model is required");
    if (!status && input && legacy && !json_is_string(input))
        status = 400, snprintf(msg, sizeof msg, "prompt must be a string");
    if (!status && input && !legacy)
        status = gen_embed_check_input(input, false, msg, sizeof msg);
    /* /api/embed returns unit vectors, and `dimensions` cuts them (then normalizes again),
     * as Ollama does; the legacy /api/embeddings returns the model's raw vector. */
    struct gen_embed_opts eo = {.truncate = body && !json_is_false(json_object_get(body, "truncate")),
                                .normalize = !legacy};
    if (!status && !legacy)
        status = gen_embed_dimensions(json_object_get(body, "dimensions"), &eo.dimensions, msg, sizeof msg);
    if (!status && api__keep_alive(body, &g->keep_alive) != BW_OK)
        status = 400, snprintf(msg, sizeof msg, "keep_alive must be a duration or a number of seconds");
    struct bw_err err;
    if (!status)
        status = gen_open_model(g, str_field(body, "model"), msg, sizeof msg);
    if (!status) {
        int rc = gen_acquire(g, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    json_t *list = json_array();
    int prompt_tokens = 0;
    if (!status && input) {
        int rc = gen_embed_inputs(g, input, &eo, list, &prompt_tokens, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    if (status) {
        api__reply_error(req, status, "%s", msg);
        json_decref(list);
    } else if (legacy) {
        json_t *first = json_array_get(list, 0);
        api__reply_json(req, 200, json_pack("{s:O}", "embedding", first ? first : json_array()));
        json_decref(list);
    } else {
        json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:i}", "model", g->model_name, "embeddings", list,
                              "total_duration", (json_int_t)(clock_mono_ns() - g->t_start), "load_duration",
                              (json_int_t)(g->t_acquired - g->t_start), "prompt_eval_count", prompt_tokens);
        api__reply_json(req, 200, o);
    }
    metrics_request(&a->metrics, route, status ? status : 200);
    json_decref(body);
    gen_free(g);
}

void ollama_embed(struct api *a, struct http_request *req) { embed_common(a, req, false); }
void ollama_embeddings(struct api *a, struct http_request *req) { embed_common(a, req, true); }

/* ---- model management -------------------------------------------------------------------------- */

static json_t *details_json(const struct store_details *d)
{
    json_t *families = json_array();
    if (d->family)
        json_array_append_new(families, json_string(d->family));
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "parent_model", "", "format", d->format ? d->format : "gguf",
                     "family", d->family ? d->family : "", "families", families, "parameter_size",
                     d->parameter_size ? d->parameter_size : "", "quantization_level",
                     d->quantization_level ? d->quantization_level : "");
}

void ollama_tags(struct api *a, struct http_request *req)
{
    struct store_list l = {0};
    struct bw_err err;
    if (store_list(a->cfg.store, &l, &err) != BW_OK) {
        api__reply_error(req, 500, "%s", err.msg);
        metrics_request(&a->metrics, "/api/tags", 500);
        return;
    }
    json_t *models = json_array();
    for (size_t i = 0; i < l.n_items; i++) {
        const struct store_entry *e = &l.items[i];
        char ts[64];
        api__time_rfc3339(e->modified_ns, ts, sizeof ts);
        json_array_append_new(models, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", e->display, "model",
                                                e->display, "modified_at", ts, "size", (json_int_t)e->size, "digest",
                                                e->digest, "details", details_json(&e->details)));
    }
    store_list_fini(&l);
    api__reply_json(req, 200, json_pack("{s:o}", "models", models));
    metrics_request(&a->metrics, "/api/tags", 200);
}

/* "stop "<|im_end|>"" lines, as Ollama's show prints parameters. */
static void parameters_text(const char *params, struct strbuf *out)
{
    json_t *doc = params ? json_loads(params, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
            /* 15 significant digits: 0.3 prints as 0.3, not the double's 0.29999999999999999 */
            char *val = json_dumps(x, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            char line[1024];
            int len = snprintf(line, sizeof line, "%-30s %s\n", key, val ? val : "");
            strbuf_add(out, line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1));
            free(val);
        }
    }
    json_decref(doc);
}

static json_t *model_info_json(const struct gguf_info *info)
{
    json_t *o = json_object();
    for (size_t i = 0; i < info->n_kvs; i++) {
        const struct gguf_info_kv *kv = &info->kvs[i];
        json_t *v;
        switch (kv->kind) {
        case GGUF_INFO_STRING:
            /* The template is reported on its own; keep model_info small like Ollama's. */
            v = json_string(kv->str ? kv->str : "");
            break;
        case GGUF_INFO_UINT: v = json_integer((json_int_t)kv->u); break;
        case GGUF_INFO_INT: v = json_integer((json_int_t)kv->i); break;
        case GGUF_INFO_FLOAT: v = json_real(kv->f); break;
        case GGUF_INFO_BOOL: v = json_boolean(kv->b); break;
        default:
            if (kv->nums) {
                v = json_array();
                for (uint64_t k = 0; k < kv->n_elems; k++)
                    json_array_append_new(v, json_real(kv->nums[k]));
            } else {
                v = json_null(); /* large arrays (the vocabulary) are omitted, as Ollama does without verbose */
            }
        }
        json_object_set_new(o, kv->key, v);
    }
    return o;
}

void ollama_show(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
    struct api_model m;
    struct bw_err err;
    int status = !body ? 400 : !name ? (snprintf(msg, sizeof msg, "model is required"), 400) : 0;
    if (!status) {
        int rc = api__model_open(a, name, &m, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, "/api/show", status);
        json_decref(body);
        return;
    }
    struct strbuf params = {0}, modelfile = {0};
    parameters_text(m.sm->params, &params);
    /* `template` is the template that renders, and `template_source` says where it comes
     * from ("modelfile": a Jinja TEMPLATE layer, "gguf": tokenizer.chat_template, "none").
     * A TEMPLATE layer in Go syntax (pulled from Ollama's registry) stays in the store and is
     * shown as it is under `modelfile_template`, with a note, and in the Modelfile, but
     * `template` shows the GGUF's Jinja: `show --template` answers "what will the model be
     * fed?", which is what an Ollama user asks it, and the Go text would be a false answer. */
    const char *tmpl;
    enum api_template_source src = api__template(&m, &tmpl);
    bool go_layer = m.sm->template && *m.sm->template && template_is_go(m.sm->template);
    char line[1400];
    int n = snprintf(line, sizeof line, "# Modelfile generated by \"bellows show\"\nFROM %s\n", m.sm->model_path);
    strbuf_add(&modelfile, line, (size_t)n);
    if (m.sm->template && *m.sm->template) {
        if (go_layer) {
            static const char note[] = "# TEMPLATE is an Ollama Go template: Bellows renders the GGUF's Jinja "
                                       "chat template instead\n";
            strbuf_add(&modelfile, note, sizeof note - 1);
        }
        strbuf_add(&modelfile, "TEMPLATE \"\"\"", 12);
        strbuf_add(&modelfile, m.sm->template, strlen(m.sm->template));
        strbuf_add(&modelfile, "\"\"\"\n", 4);
    }
    if (m.sm->system) {
        strbuf_add(&modelfile, "SYSTEM \"\"\"", 10);
        strbuf_add(&modelfile, m.sm->system, strlen(m.sm->system));
        strbuf_add(&modelfile, "\"\"\"\n", 4);
    }
    if (params.len) {
        /* each parameters line becomes PARAMETER <line> */
        for (char *p = params.s; p && *p;) {
            char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            strbuf_add(&modelfile, "PARAMETER ", 10);
            strbuf_add(&modelfile, p, len);
            strbuf_add(&modelfile, "\n", 1);
            p = nl ? nl + 1 : NULL;
        }
    }
    /* completion or embedding from the GGUF, then what the rendering template can do, in
     * Ollama's order (tools, insert, vision, thinking). */
    json_t *caps = json_array();
    for (size_t i = 0; i < m.info->n_capabilities; i++)
        json_array_append_new(caps, json_string(m.info->capabilities[i]));
    unsigned tcaps = api__model_caps(&m);
    if (tcaps & TEMPLATE_CAP_TOOLS)
        json_array_append_new(caps, json_string("tools"));
    if (tcaps & TEMPLATE_CAP_INSERT)
        json_array_append_new(caps, json_string("insert"));
    if (tcaps & TEMPLATE_CAP_THINKING)
        json_array_append_new(caps, json_string("thinking"));
    char ts[64];
    api__time_rfc3339(m.sm->modified_ns, ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "license",
                          m.sm->license ? m.sm->license : "", "modelfile", modelfile.s ? modelfile.s : "",
                          "parameters", params.s ? params.s : "", "template", tmpl ? tmpl : "", "system",
                          m.sm->system ? m.sm->system : "", "details", details_json(&m.sm->details), "model_info",
                          model_info_json(m.info), "capabilities", caps, "modified_at", ts);
    json_object_set_new(o, "template_source", json_string(api__template_source_name(src)));
    if (go_layer) {
        json_object_set_new(o, "modelfile_template", json_string(m.sm->template));
        char note[256];
        api__go_template_note(src, note, sizeof note);
        json_object_set_new(o, "template_note", json_string(note));
    }
    json_object_set_new(o, "context_max", json_integer((json_int_t)m.info->n_ctx_train));
    api__reply_json(req, 200, o);
    metrics_request(&a->metrics, "/api/show", 200);
    strbuf_free(&params);
    strbuf_free(&modelfile);
    api__model_close(&m);
    json_decref(body);
}

void ollama_ps(struct api *a, struct http_request *req)
{
    struct sched_loaded loaded[16];
    size_t n = sched_list(a->cfg.sched, loaded, 16);
    json_t *models = json_array();
    for (size_t i = 0; i < n && i < 16; i++) {
        const struct sched_loaded *l = &loaded[i];
        struct store_model *sm = NULL;
        store_resolve(a->cfg.store, l->name, &sm, NULL);
        char ts[64];
        if (l->expires_at_unix_ns)
            api__time_rfc3339(l->expires_at_unix_ns, ts, sizeof ts);
        else
            snprintf(ts, sizeof ts, "2318-01-01T00:00:00Z"); /* Ollama's "forever" is far in the future too */
        struct store_details none = {0};
        json_t *ctx = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:i}", "pool_tokens", l->status.pool_cells,
                                "used_tokens", l->status.used_cells, "sequences", l->status.live, "cached_sequences",
                                l->status.cached, "num_parallel", l->status.n_parallel, "context_max",
                                l->status.context_max, "max_pool_tokens", (int)l->status.max_pool_cells, "kv_bytes",
                                (json_int_t)l->status.kv_bytes, "pool_growths", l->status.pool_growths);
        json_array_append_new(
            models, json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:i, s:o, s:i, s:i}", "name",
                              sm ? sm->display : l->name, "model", sm ? sm->display : l->name, "size",
                              (json_int_t)l->size_estimate, "digest", sm ? sm->digest : "", "details",
                              details_json(sm ? &sm->details : &none), "expires_at", ts, "size_vram", 0, "context",
                              ctx, "runner_pid", (int)l->pid, "loads", l->loads));
        store_model_free(sm);
    }
    api__reply_json(req, 200, json_pack("{s:o}", "models", models));
    metrics_request(&a->metrics, "/api/ps", 200);
}

/* Answers a model-management route: {} when status is 0, the error otherwise. */
static void reply_done(struct api *a, struct http_request *req, const char *route, int status, const char *msg)
{
    if (status)
        api__reply_error(req, status, "%s", msg);
    else
        http_respond(req, 200, "application/json", "{}", 2, NULL);
    metrics_request(&a->metrics, route, status ? status : 200);
}

void ollama_copy(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *src = body ? str_field(body, "source") : NULL, *dst = body ? str_field(body, "destination") : NULL;
    struct bw_err err;
    int status = !body ? 400 : (!src || !dst) ? (snprintf(msg, sizeof msg, "source and destination are required"), 400) : 0;
    if (!status) {
        int rc = store_copy(a->cfg.store, src, dst, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    reply_done(a, req, "/api/copy", status, msg);
    json_decref(body);
}

void ollama_delete(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
    struct bw_err err;
    int status = !body ? 400 : !name ? (snprintf(msg, sizeof msg, "model is required"), 400) : 0;
    if (!status) {
        struct store_model *sm;
        if (store_resolve(a->cfg.store, name, &sm, NULL) == BW_OK) {
            sched_unload(a->cfg.sched, sm->name); /* a deleted model does not stay loaded */
            store_model_free(sm);
        }
        int rc = store_delete(a->cfg.store, name, &err);
        if (rc)
            status = api_status_for(rc), snprintf(msg, sizeof msg, "%s", err.msg);
    }
    reply_done(a, req, "/api/delete", status, msg);
    json_decref(body);
}

/* ---- /api/blobs: an upload streams to a temp file while it is hashed ----------------------
 *
 * ollama_blob_begin runs with the headers (http.h begin hook) and opts the POST into a
 * streamed body, so a blob of any size takes constant memory: each piece is written and
 * hashed as it arrives (store_blob_write), and ollama_blob commits (sha256 check, fsync,
 * rename) once the body is in. A blob already in the store is kept and the body is read
 * and discarded (Ollama answers 200 without reading it; its clients HEAD first anyway). A
 * Content-Length beyond the free disk is refused before the body (507). Any failure, or
 * the client going away, removes the temp file (blob_release). */

struct blob_upload {
    struct store_blob_writer *w; /* NULL when nothing is (or is any longer) being written */
    bool exists;                 /* the blob was there already: answer 200 */
    int rc;                      /* a write failed: the answer */
    struct bw_err err;
    uint64_t req_id;             /* for the log */
    uint64_t n_bytes;            /* written so far */
};

static bool blob_piece(void *ud, const char *data, size_t len)
{
    struct blob_upload *u = ud;
    if (!u->w)
        return false;
    int rc = store_blob_write(u->w, data, len, &u->err);
    u->n_bytes += len;
    if (rc == BW_OK)
        return true;
    store_blob_abort(u->w); /* the temp file goes now, not after the rest of the body */
    u->w = NULL;
    u->rc = rc;
    return false;
}

static void blob_release(void *ud)
{
    struct blob_upload *u = ud;
    if (u->w) /* not committed: the client left, or the server stopped */
        LOG_REQ(LOG_INFO, u->req_id, "api", "blob upload abandoned after %llu bytes: its temp file is removed",
                (unsigned long long)u->n_bytes);
    store_blob_abort(u->w);
    free(u);
}

static void blob_refuse(struct api *a, struct http_request *req, int status, const char *msg)
{
    api__reply_error(req, status, "%s", msg);
    metrics_request(&a->metrics, "/api/blobs", status);
}

void ollama_blob_begin(struct api *a, struct http_request *req)
{
    const char *digest = req->path + strlen("/api/blobs/");
    if (!names_digest_valid(digest)) {
        char msg[200];
        snprintf(msg, sizeof msg, "invalid digest '%.100s' (expected sha256:<64 hex digits>)", digest);
        blob_refuse(a, req, 400, msg);
        return;
    }
    struct blob_upload *u = calloc(1, sizeof *u);
    if (!u) {
        blob_refuse(a, req, 500, "out of memory");
        return;
    }
    u->req_id = req->seq;
    const char *cl = http_header(req, "Content-Length");
    uint64_t total = cl ? strtoull(cl, NULL, 10) : 0;
    int rc = BW_OK;
    if (store_blob_exists(a->cfg.store, digest))
        u->exists = true;
    else if ((rc = store_blob_room(a->cfg.store, total, &u->err)) == BW_OK)
        rc = store_blob_begin(a->cfg.store, digest, total, NULL, NULL, &u->w, &u->err);
    if (rc == BW_OK && (rc = http_stream_body(req, blob_piece, blob_release, u)) != BW_OK)
        bw_errf(&u->err, rc, "internal error: cannot stream the body");
    if (rc != BW_OK) {
        store_blob_abort(u->w);
        blob_refuse(a, req, api_status_for(rc), u->err.msg);
        free(u);
    }
}

void ollama_blob(struct api *a, struct http_request *req)
{
    const char *digest = req->path + strlen("/api/blobs/");
    if (!names_digest_valid(digest)) {
        api__reply_error(req, 400, "invalid digest '%s' (expected sha256:<64 hex digits>)", digest);
        metrics_request(&a->metrics, "/api/blobs", 400);
        return;
    }
    if (!strcmp(req->method, "HEAD")) {
        bool have = store_blob_exists(a->cfg.store, digest);
        http_respond(req, have ? 200 : 404, "application/json", "", 0, NULL);
        metrics_request(&a->metrics, "/api/blobs", have ? 200 : 404);
        return;
    }
    struct blob_upload *u = http_body_ud(req);
    struct bw_err err;
    int rc = BW_OK, status = 201;
    if (u && u->exists) {
        status = 200; /* kept as it is; the body was discarded */
    } else if (u && u->rc) {
        rc = u->rc, err = u->err;
    } else if (u) {
        rc = store_blob_commit(u->w, NULL, &err); /* frees the writer on every path */
        u->w = NULL;
    } else { /* not streamed (no begin hook): the buffered body */
        struct store_blob_writer *w;
        rc = store_blob_begin(a->cfg.store, digest, req->body_len, NULL, NULL, &w, &err);
        if (rc == BW_OK && req->body_len && (rc = store_blob_write(w, req->body, req->body_len, &err)) != BW_OK)
            store_blob_abort(w);
        else if (rc == BW_OK)
            rc = store_blob_commit(w, NULL, &err);
    }
    if (rc)
        api__reply_error(req, status = api_status_for(rc), "%s", err.msg);
    else
        http_respond(req, status, "application/json", "", 0, NULL);
    metrics_request(&a->metrics, "/api/blobs", status);
    LOG_REQ(rc ? LOG_WARN : LOG_INFO, req->seq, "api", "blob %s: %d, %zu bytes received%s%s", digest, status,
            req->body_len, rc ? ": " : status == 200 ? " (already there: kept)" : "", rc ? err.msg : "");
}

/* ---- /api/create: the store works in a thread, progress streams as NDJSON ------------------- */

struct create_job {
    struct api *a;
    char *name;
    struct store_create sc;
    json_t *body;
    char *params_text, *messages_text, *from_path, *from_digest;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct strbuf lines; /* progress not yet sent */
    size_t sent;
    bool finished, joined;
    int rc;
    char err[300];
};

static void create_progress(void *ud, const char *status, uint64_t done, uint64_t total)
{
    struct create_job *j = ud;
    json_t *o = json_pack("{s:s}", "status", status);
    if (total) {
        json_object_set_new(o, "total", json_integer((json_int_t)total));
        json_object_set_new(o, "completed", json_integer((json_int_t)done));
    }
    pthread_mutex_lock(&j->mu);
    strbuf_add_json(&j->lines, o);
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
}

static void *create_main(void *arg)
{
    struct create_job *j = arg;
    struct bw_err err = {0};
    int rc = store_create(j->a->cfg.store, j->name, &j->sc, &err);
    /* A Go TEMPLATE (given here or kept from the model it was created from) is stored but
     * not rendered: say which template renders instead. */
    struct api_model m;
    if (rc == BW_OK && api__model_open(j->a, j->name, &m, NULL) == BW_OK) {
        if (m.sm->template && *m.sm->template && template_is_go(m.sm->template)) {
            char note[256];
            api__go_template_note(api__template(&m, NULL), note, sizeof note);
            create_progress(j, note, 0, 0);
        }
        api__model_close(&m);
    }
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    snprintf(j->err, sizeof j->err, "%s", rc ? err.msg : "");
    strbuf_add_json(&j->lines, rc ? json_pack("{s:s}", "error", err.msg) : json_pack("{s:s}", "status", "success"));
    j->finished = true;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void create_job_free(struct create_job *j)
{
    if (!j->joined)
        pthread_join(j->thread, NULL);
    json_decref(j->body);
    free(j->name);
    free(j->params_text);
    free(j->messages_text);
    free(j->from_path);
    free(j->from_digest);
    strbuf_free(&j->lines);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cond);
    free(j);
}

static ssize_t create_pull(void *ud, char *buf, size_t max)
{
    struct create_job *j = ud;
    pthread_mutex_lock(&j->mu);
    while (j->sent == j->lines.len && !j->finished)
        pthread_cond_wait(&j->cond, &j->mu);
    size_t n = j->lines.len - j->sent;
    if (n > max)
        n = max;
    memcpy(buf, j->lines.s + j->sent, n);
    j->sent += n;
    pthread_mutex_unlock(&j->mu);
    return (ssize_t)n; /* 0 only when finished and everything was sent */
}

static void create_done(void *ud, bool completed)
{
    struct create_job *j = ud;
    metrics_request(&j->a->metrics, "/api/create", completed ? 200 : 499);
    create_job_free(j);
}

/* "from" is a local GGUF path when it names a file (absolute, ./, ../ or ~/), else a model. */
static char *local_path(const char *from)
{
    if (!from)
        return NULL;
    if (!strncmp(from, "~/", 2) && getenv("HOME")) {
        char *p;
        return asprintf(&p, "%s/%s", getenv("HOME"), from + 2) < 0 ? NULL : p;
    }
    struct stat sb;
    if ((from[0] == '/' || !strncmp(from, "./", 2) || !strncmp(from, "../", 3)) && stat(from, &sb) == 0)
        return strdup(from);
    if (from[0] == '/')
        return strdup(from); /* a missing absolute path: let the store say "not found" */
    return NULL;
}

void ollama_create(struct api *a, struct http_request *req)
{
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    const char *name = body ? (str_field(body, "model") ?: str_field(body, "name")) : NULL;
    int status = !body ? 400 : !name ? (snprintf(msg, sizeof msg, "model is required"), 400) : 0;
    const json_t *files = body ? json_object_get(body, "files") : NULL;
    const char *from = body ? str_field(body, "from") : NULL;
    if (!status && str_field(body, "modelfile") && !from && !files)
        status = 400, snprintf(msg, sizeof msg,
                               "the 'modelfile' field is not supported: send 'from' (a model name or a GGUF "
                               "path) or 'files', with 'parameters', 'system' and 'template'");
    if (!status && !from && !json_is_object(files))
        status = 400, snprintf(msg, sizeof msg, "neither 'from' nor 'files' was specified");
    if (!status && str_field(body, "quantize"))
        status = 400, snprintf(msg, sizeof msg, "quantize is not supported by Bellows yet");
    if (!status && json_object_get(body, "parameters") && !json_is_object(json_object_get(body, "parameters")))
        status = 400, snprintf(msg, sizeof msg, "parameters must be an object");
    if (status) {
        api__reply_error(req, status, "%s", msg);
        metrics_request(&a->metrics, "/api/create", status);
        json_decref(body);
        return;
    }
    struct create_job *j = calloc(1, sizeof *j);
    j->a = a;
    j->body = body;
    j->name = strdup(name);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    if (json_is_object(files)) {
        const char *fname;
        json_t *dig;
        json_object_foreach((json_t *)files, fname, dig) {
            if (json_is_string(dig) && (strstr(fname, ".gguf") || !j->from_digest)) {
                free(j->from_digest);
                j->from_digest = strdup(json_string_value(dig));
            }
        }
        j->sc.from_digest = j->from_digest;
    } else if ((j->from_path = local_path(from))) {
        j->sc.from_path = j->from_path;
    } else {
        j->sc.from_model = from;
    }
    const json_t *params = json_object_get(body, "parameters");
    if (json_is_object(params) && json_object_size(params))
        j->sc.params = j->params_text = json_dumps(params, JSON_COMPACT);
    const json_t *messages = json_object_get(body, "messages");
    if (json_is_array(messages) && json_array_size(messages))
        j->sc.messages = j->messages_text = json_dumps(messages, JSON_COMPACT);
    j->sc.system = str_field(body, "system");
    j->sc.template = str_field(body, "template");
    j->sc.license = str_field(body, "license");
    j->sc.progress = create_progress;
    j->sc.progress_ud = j;
    bool stream = !json_is_false(json_object_get(body, "stream"));
    if (!stream) {
        create_main(j);
        j->joined = true;
        if (j->rc)
            api__reply_error(req, api_status_for(j->rc), "%s", j->err);
        else
            api__reply_json(req, 200, json_pack("{s:s}", "status", "success"));
        metrics_request(&a->metrics, "/api/create", j->rc ? api_status_for(j->rc) : 200);
        create_job_free(j);
        return;
    }
    if (pthread_create(&j->thread, NULL, create_main, j) != 0) {
        j->joined = true;
        api__reply_error(req, 500, "cannot start the create thread");
        create_job_free(j);
        return;
    }
    /* Errors found before anything was written (bad name, not a GGUF) keep their status:
     * wait briefly for the first line. */
    pthread_mutex_lock(&j->mu);
    while (j->lines.len == 0 && !j->finished)
        pthread_cond_wait(&j->cond, &j->mu);
    bool early_fail = j->finished && j->rc;
    pthread_mutex_unlock(&j->mu);
    if (early_fail) {
        api__reply_error(req, api_status_for(j->rc), "%s", j->err);
        metrics_request(&a->metrics, "/api/create", api_status_for(j->rc));
        create_job_free(j);
        return;
    }
    if (http_respond_stream(req, 200, "application/x-ndjson", create_pull, create_done, j, NULL) != BW_OK)
        create_job_free(j);
}
