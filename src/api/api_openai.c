/* api_openai.c -- the OpenAI-compatible generation routes, /v1/chat/completions and
 * /v1/completions (anchors.md §1.11). The same path as the native API: the body into a
 * gen_input (request_openai.c), request_prepare, gen_run; only the wire shapes differ: SSE
 * `data:` lines ending in `data: [DONE]`, choices/deltas, usage (with Bellows' context
 * fields), and errors as {"error": {"message", "type", "param", "code"}}, answered once at
 * gen_fail. No num_ctx is needed: sizing is automatic here too. /v1/embeddings is in
 * api_embed.c, /v1/models in api_models.c. */
#define _GNU_SOURCE
#include "api/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/toolcall.h"

struct oa_state {
    char id[48];
    int64_t created;
    bool chat;
    bool include_usage;
    bool sent_role;
    long text_offset; /* /v1/completions' legacy logprobs: characters of answer so far */
};

static void sse(struct gen *g, json_t *obj)
{
    char *s = toolcall_json_dump(obj);
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

/* Characters (code points) of UTF-8 text. */
static long utf8_chars(const char *s)
{
    long n = 0;
    for (; s && *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* OpenAI's choice.logprobs for entries (stolen; NULL: none): {"content": [...]}, each entry
 * with its top_logprobs array (empty when none were asked for). /v1/completions adds the
 * legacy arrays older clients read (tokens, token_logprobs, top_logprobs as {token:
 * logprob}, text_offset: each token's offset in characters from the start of the answer,
 * *offset carrying it across chunks and the choices of one prompt). */
static json_t *oa_logprobs(bool chat, json_t *entries, long *offset)
{
    if (!entries && !(entries = json_array()))
        return json_null();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if (!json_object_get(e, "top_logprobs"))
            json_object_set_new(e, "top_logprobs", json_array());
    }
    json_t *lp = json_pack("{s:o}", "content", entries);
    if (chat || !lp)
        return lp ? lp : json_null();
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    json_array_foreach(entries, i, e) {
        const char *tok = str_field(e, "token") ?: "";
        json_array_append(tokens, json_object_get(e, "token"));
        json_array_append(lps, json_object_get(e, "logprob"));
        json_t *top = json_object(), *alt;
        size_t k;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, alt) {
            if (str_field(alt, "token") && !json_object_get(top, str_field(alt, "token")))
                json_object_set(top, str_field(alt, "token"), json_object_get(alt, "logprob"));
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer(*offset));
        *offset += utf8_chars(tok);
    }
    json_object_set_new(lp, "tokens", tokens);
    json_object_set_new(lp, "token_logprobs", lps);
    json_object_set_new(lp, "top_logprobs", tops);
    json_object_set_new(lp, "text_offset", offs);
    return lp;
}

/* A streamed chunk's choice gets the entries that came before it (null when none). */
static void oa_chunk_logprobs(struct gen *g, json_t *choice)
{
    struct oa_state *s = g->fmt_ud;
    json_t *entries = g->logprobs ? gen_take_logprobs(g) : NULL;
    if (g->logprobs)
        json_object_set_new(choice, "logprobs", entries ? oa_logprobs(s->chat, entries, &s->text_offset) : json_null());
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
    oa_chunk_logprobs(g, choice);
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
    json_t *choice = json_pack("{s:i, s:o, s:n}", "index", 0, "delta", delta, "finish_reason");
    oa_chunk_logprobs(g, choice);
    json_object_set_new(o, "choices", json_pack("[o]", choice));
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
        oa_chunk_logprobs(g, choice);
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
    if (g->logprobs)
        json_object_set_new(choice, "logprobs", oa_logprobs(s->chat, gen_take_logprobs(g), &s->text_offset));
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", s->id, "object",
                          s->chat ? "chat.completion" : "text_completion", "created", (json_int_t)s->created, "model",
                          g->model_name, "system_fingerprint", "fp_bellows", "choices", choice, "usage", usage_json(g));
    char *str = toolcall_json_dump(o);
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

/* Several prompts, not streamed: one choice per prompt (index = its position), each run
 * to its end in turn on one acquired runner; usage sums them (the context fields are the
 * last prompt's). Answers and frees g. */
static void completions_batch(struct gen *g, const struct gen_input *in, struct gen_prepared *p)
{
    const json_t *prompts = in->prompts;
    struct oa_state *s = g->fmt_ud;
    struct bw_err err;
    json_t *choices = json_array();
    int prompt_tokens = 0, completion_tokens = 0;
    int rc = gen_acquire(g, &err);
    for (size_t i = 0; rc == BW_OK && i < json_array_size(prompts); i++) {
        if ((rc = request_set_prompt(in, p, json_array_get(prompts, i), &err)) != BW_OK)
            break;
        strbuf_free(&g->text);
        strbuf_free(&g->thinking);
        if ((rc = gen_collect(g, &p->pr, &err)) != BW_OK)
            break;
        json_t *c = json_pack("{s:i, s:s%, s:s}", "index", (int)i, "text", g->text.s ? g->text.s : "", g->text.len,
                              "finish_reason", finish_reason(g));
        if (g->thinking.len)
            json_object_set_new(c, "reasoning_content", json_stringn(g->thinking.s, g->thinking.len));
        long offset = 0;
        if (g->logprobs)
            json_object_set_new(c, "logprobs", oa_logprobs(false, gen_take_logprobs(g), &offset));
        json_array_append_new(choices, c);
        prompt_tokens += g->st.prompt_eval_count;
        completion_tokens += g->st.eval_count;
    }
    if (rc) {
        json_decref(choices);
        gen_fail(g, &err);
        return;
    }
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
    gen_free(g);
}

static void run(struct api *a, struct http_request *req, bool chat)
{
    enum gen_input_kind kind = chat ? GEN_INPUT_CHAT : GEN_INPUT_GENERATE;
    struct gen *g = gen_new(a, req, chat ? "/v1/chat/completions" : "/v1/completions", &oa_format);
    struct oa_state *st = g ? calloc(1, sizeof *st) : NULL;
    if (!st) {
        api__reply_openai_error(req, 500, "out of memory");
        gen_free(g);
        return;
    }
    g->fmt_ud = st; /* freed with g */
    g->keep_alive = SCHED_KEEP_ALIVE_DEFAULT;
    st->chat = chat;
    st->created = clock_real_ns() / 1000000000;
    snprintf(st->id, sizeof st->id, "%s-%llu", chat ? "chatcmpl" : "cmpl", (unsigned long long)req->seq);
    struct gen_input in = {0};
    struct gen_prepared p = {0};
    struct bw_err err;
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    int rc = body ? request_openai_parse(a, body, kind, &in, &err) : bw_errf(&err, BW_EINVAL, "%s", msg);
    if (rc == BW_OK) {
        g->stream = in.stream;
        g->keep_alive = in.keep_alive;
        g->logprobs = in.logprobs;
        st->include_usage = in.include_usage;
        rc = gen_open_model(g, in.model, &err);
    }
    if (rc == BW_OK)
        rc = request_prepare(&in, &g->model, &p, &err);
    if (rc)
        gen_fail(g, &err);
    else if (!chat && json_array_size(in.prompts) > 1)
        completions_batch(g, &in, &p); /* owns g */
    else
        gen_run(g, &p.pr); /* owns g (and st through fmt_ud) */
    gen_prepared_fini(&p);
    gen_input_fini(&in);
}

void openai_chat(struct api *a, struct http_request *req) { run(a, req, true); }
void openai_completions(struct api *a, struct http_request *req) { run(a, req, false); }
