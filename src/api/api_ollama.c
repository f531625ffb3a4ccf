/* api_ollama.c -- Ollama's native generation routes, /api/generate and /api/chat
 * (anchors.md §1, spec/api.md): the body into a gen_input (request_ollama.c), the model
 * opened, the proto_request built (request_prepare), then run, rendered (_debug_render_only)
 * or, with nothing to generate, the model loaded or unloaded. The NDJSON wire shapes are
 * here. Errors answer once, at gen_fail. Model management is api_models.c, create and blobs
 * api_create.c, embeddings api_embed.c. */
#define _GNU_SOURCE
#include "api/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Ollama's top-level `logprobs`: the entries of the tokens that came before this chunk (all
 * of them in a non-streamed reply); none, no field (Ollama's omitempty). */
static void add_logprobs(struct gen *g, json_t *o)
{
    json_t *lp = gen_take_logprobs(g);
    if (lp)
        json_object_set_new(o, "logprobs", lp);
}

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
    add_logprobs(g, o);
    strbuf_add_json(&g->out, o);
}

static void generate_final(struct gen *g)
{
    json_t *o = base_object(g);
    json_object_set_new(o, "response", g->stream ? json_string("") : json_stringn(g->text.s ? g->text.s : "", g->text.len));
    if (!g->stream && g->thinking.len)
        json_object_set_new(o, "thinking", json_stringn(g->thinking.s, g->thinking.len));
    add_final_fields(g, o);
    add_logprobs(g, o);
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
    add_logprobs(g, o);
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
    add_logprobs(g, o);
    strbuf_add_json(&g->out, o);
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
    add_logprobs(g, o);
    strbuf_add_json(&g->out, o);
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
        gen_fail(g, &err);
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
        gen_fail(g, &err);
        return;
    }
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
    gen_free(g);
}

/* ---- /api/generate, /api/chat ---------------------------------------------------------------- */

static void native_run(struct api *a, struct http_request *req, enum gen_input_kind kind)
{
    bool chat = kind == GEN_INPUT_CHAT;
    struct gen *g = gen_new(a, req, chat ? "/api/chat" : "/api/generate", chat ? &chat_format : &generate_format);
    if (!g) {
        api__reply_error(req, 500, "out of memory");
        return;
    }
    struct gen_input in = {0};
    struct gen_prepared p = {0};
    struct bw_err err;
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    int rc = body ? request_ollama_parse(a, body, kind, &in, &err) : bw_errf(&err, BW_EINVAL, "%s", msg);
    if (rc == BW_OK) {
        g->stream = in.stream;
        g->keep_alive = in.keep_alive;
        g->logprobs = in.logprobs;
        rc = gen_open_model(g, in.model, &err);
    }
    if (rc == BW_OK)
        rc = request_prepare(&in, &g->model, &p, &err);
    /* An empty prompt with a `context` is a token prompt (issue 18: how a model without a
     * tokenizer is served); Ollama would only load the model. */
    bool nothing = chat ? json_array_size(in.messages) == 0 : (!in.prompt || !*in.prompt) && in.n_context == 0;
    if (rc) {
        gen_fail(g, &err);
    } else if (nothing && !in.render_only) {
        load_only(g, chat);
    } else if (in.render_only) {
        g->stream = false;
        render_reply(g, &p.pr);
    } else {
        gen_run(g, &p.pr);
    }
    gen_prepared_fini(&p);
    gen_input_fini(&in);
}

void ollama_generate(struct api *a, struct http_request *req) { native_run(a, req, GEN_INPUT_GENERATE); }
void ollama_chat(struct api *a, struct http_request *req) { native_run(a, req, GEN_INPUT_CHAT); }
