/* proto.c -- see proto.h. Field names are documented in docs/runner-protocol.md. */
#include "proto/proto.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/logprobs.h"
#include "proto/options.h"

/* ---- framing ------------------------------------------------------------------------ */

void proto_frame_header(uint32_t len, uint8_t out[4])
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

int proto_frame_next(const uint8_t *buf, size_t len, const uint8_t **payload, uint32_t *payload_len,
                     size_t *consumed)
{
    if (len < 4)
        return 0;
    uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (n == 0 || n > PROTO_MAX_FRAME)
        return BW_EINVAL;
    if (len - 4 < n)
        return 0;
    *payload = buf + 4;
    *payload_len = n;
    *consumed = 4 + (size_t)n;
    return 1;
}

/* Dumps obj (stolen) into a new frame. */
static int frame_take(json_t *obj, uint8_t **frame, size_t *frame_len)
{
    if (!obj)
        return BW_ENOMEM;
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (n == 0 || n > PROTO_MAX_FRAME) {
        json_decref(obj);
        return n ? BW_EINVAL : BW_ENOMEM;
    }
    uint8_t *buf = malloc(n + 4);
    if (!buf) {
        json_decref(obj);
        return BW_ENOMEM;
    }
    json_dumpb(obj, (char *)buf + 4, n, JSON_COMPACT);
    json_decref(obj);
    proto_frame_header((uint32_t)n, buf);
    *frame = buf;
    *frame_len = n + 4;
    return BW_OK;
}

static const char *const req_names[] = {"chat", "generate", "embed", "tokenize", "detokenize", "cancel", "status", "pause", "resume"};
static const char *const ev_names[] = {"ready", "token",  "rendered", "embedding", "tokens",
                                       "text",  "status", "done",     "error",     "tool_call", "logprobs"};

const char *proto_req_type_name(enum proto_req_type t) { return req_names[t]; }
const char *proto_ev_type_name(enum proto_ev_type t) { return ev_names[t]; }

static int lookup(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(names[i], s))
            return (int)i;
    return -1;
}

/* ---- requests ----------------------------------------------------------------------- */

/* What a decoded request owns besides the json document. */
struct req_priv {
    json_t *doc;
    struct policy_msg *msgs;
    const char *stops[OPTIONS_MAX_STOP];
    int32_t *context;      /* generate: "context" */
    int32_t *input_tokens; /* embed: "tokens" */
};

/* An array of token ids (any integers: the engine checks them against the vocabulary)
 * into a malloc'd int32 array. BW_OK with *out and *n, BW_EINVAL naming key, BW_ENOMEM. */
static int decode_tokens(const json_t *arr, const char *key, int32_t **out, int *n, struct bw_err *err)
{
    if (!json_is_array(arr))
        return bw_errf(err, BW_EINVAL, "'%s' must be an array of integers", key);
    size_t len = json_array_size(arr);
    if (len > (size_t)INT32_MAX / sizeof **out)
        return bw_errf(err, BW_EINVAL, "'%s' is too long", key);
    *out = malloc((len ? len : 1) * sizeof **out);
    if (!*out)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t) || json_integer_value(t) < INT32_MIN || json_integer_value(t) > INT32_MAX)
            return bw_errf(err, BW_EINVAL, "'%s' must be an array of integers", key);
        (*out)[i] = (int32_t)json_integer_value(t);
    }
    *n = (int)len;
    return BW_OK;
}

static json_t *tokens_json(const int32_t *t, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(t[i]));
    return a;
}

static int parse_document(const uint8_t *json, size_t len, json_t **doc, struct bw_err *err)
{
    json_error_t je;
    *doc = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &je);
    if (!*doc)
        return bw_errf(err, BW_EINVAL, "malformed message at line %d column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        return bw_errf(err, BW_EINVAL, "a message must be a JSON object");
    }
    return BW_OK;
}

static const char *opt_string(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int decode_messages(json_t *arr, struct req_priv *p, struct engine_request *r, struct bw_err *err)
{
    if (!json_is_array(arr))
        return bw_errf(err, BW_EINVAL, "'messages' must be an array");
    size_t n = json_array_size(arr);
    p->msgs = calloc(n ? n : 1, sizeof *p->msgs);
    if (!p->msgs)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        const char *role = opt_string(m, "role");
        json_t *content = json_object_get(m, "content");
        json_t *images = json_object_get(m, "images");
        if (!role)
            return bw_errf(err, BW_EINVAL, "messages[%zu].role must be a string", i);
        if (content && !json_is_string(content) && !json_is_null(content))
            return bw_errf(err, BW_EINVAL, "messages[%zu].content must be a string", i);
        if (images && !json_is_integer(images))
            return bw_errf(err, BW_EINVAL, "messages[%zu].images must be an integer (a count)", i);
        const json_t *whole = json_object_get(m, "json");
        if (whole && !json_is_string(whole))
            return bw_errf(err, BW_EINVAL, "messages[%zu].json must be a string", i);
        p->msgs[i] = (struct policy_msg){.role = role,
                                         .content = content ? json_string_value(content) : "",
                                         .n_images = images ? (int)json_integer_value(images) : 0,
                                         .json = json_string_value(whole)};
        if (!p->msgs[i].content)
            p->msgs[i].content = "";
    }
    r->msgs = p->msgs;
    r->n_msgs = n;
    return BW_OK;
}

int proto_request_decode(const uint8_t *json, size_t len, struct proto_request *out, struct bw_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *doc;
    int rc = parse_document(json, len, &doc, err);
    if (rc)
        return rc;
    struct req_priv *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(doc);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    p->doc = doc;
    out->priv = p;
    json_t *id = json_object_get(doc, "id");
    if (json_is_integer(id) && json_integer_value(id) > 0)
        out->id = (uint64_t)json_integer_value(id);
    int type = lookup(req_names, sizeof req_names / sizeof req_names[0], opt_string(doc, "type"));
    if (type < 0)
        return bw_errf(err, BW_EINVAL, "unknown message type '%s'",
                       opt_string(doc, "type") ? opt_string(doc, "type") : "(none)");
    if (!out->id)
        return bw_errf(err, BW_EINVAL, "'id' must be a positive integer");
    out->type = (enum proto_req_type)type;

    struct engine_request *r = &out->req;
    r->req_id = out->id;
    r->num_keep = -1;
    r->truncate = true;
    sampling_params_default(&r->sampling);
    switch (out->type) {
    case PROTO_REQ_CHAT:
        r->kind = ENGINE_CHAT;
        if ((rc = decode_messages(json_object_get(doc, "messages"), p, r, err)))
            return rc;
        break;
    case PROTO_REQ_GENERATE:
        r->kind = ENGINE_GENERATE;
        r->prompt = opt_string(doc, "prompt");
        r->system = opt_string(doc, "system");
        r->raw = json_is_true(json_object_get(doc, "raw"));
        r->want_context = json_is_true(json_object_get(doc, "want_context"));
        if (!r->prompt)
            return bw_errf(err, BW_EINVAL, "'prompt' must be a string");
        if (json_object_get(doc, "context")) {
            if ((rc = decode_tokens(json_object_get(doc, "context"), "context", &p->context, &r->n_context, err)))
                return rc;
            r->context = p->context;
        }
        break;
    case PROTO_REQ_EMBED:
        r->kind = ENGINE_EMBED;
        r->prompt = opt_string(doc, "input");
        if (json_is_false(json_object_get(doc, "truncate")))
            r->truncate = false;
        if (json_object_get(doc, "tokens")) {
            if ((rc = decode_tokens(json_object_get(doc, "tokens"), "tokens", &p->input_tokens, &r->n_input_tokens,
                                    err)))
                return rc;
            r->input_tokens = p->input_tokens;
            if (!r->prompt)
                r->prompt = "";
        }
        if (!r->prompt)
            return bw_errf(err, BW_EINVAL, "'input' must be a string");
        break;
    case PROTO_REQ_TOKENIZE:
        r->prompt = opt_string(doc, "content");
        out->add_special = json_is_true(json_object_get(doc, "add_special"));
        if (!r->prompt)
            return bw_errf(err, BW_EINVAL, "'content' must be a string");
        break;
    case PROTO_REQ_DETOKENIZE: {
        json_t *toks = json_object_get(doc, "tokens");
        if (!json_is_array(toks))
            return bw_errf(err, BW_EINVAL, "'tokens' must be an array of integers");
        out->n_tokens = (int)json_array_size(toks);
        out->tokens = malloc(((size_t)out->n_tokens + 1) * sizeof *out->tokens);
        if (!out->tokens)
            return bw_errf(err, BW_ENOMEM, "out of memory");
        for (int i = 0; i < out->n_tokens; i++) {
            json_t *t = json_array_get(toks, (size_t)i);
            if (!json_is_integer(t))
                return bw_errf(err, BW_EINVAL, "'tokens' must be an array of integers");
            out->tokens[i] = (int32_t)json_integer_value(t);
        }
        break;
    }
    case PROTO_REQ_CANCEL:
    case PROTO_REQ_STATUS:
    case PROTO_REQ_PAUSE:
    case PROTO_REQ_RESUME:
        break;
    }
    if (out->type <= PROTO_REQ_GENERATE) {
        r->render_only = json_is_true(json_object_get(doc, "render_only"));
        r->grammar = opt_string(doc, "grammar");
        r->think = opt_string(doc, "think");
        r->chat_template = opt_string(doc, "chat_template");
        r->tools_json = opt_string(doc, "tools");
        r->tool_choice = opt_string(doc, "tool_choice");
        r->tool_name = opt_string(doc, "tool_name");
        r->single_call = json_is_true(json_object_get(doc, "single_call"));
        r->logprobs = json_is_true(json_object_get(doc, "logprobs"));
        json_int_t top = json_integer_value(json_object_get(doc, "top_logprobs"));
        if (top < 0 || top > LOGPROBS_TOP_MAX)
            return bw_errf(err, BW_EINVAL, "top_logprobs must be between 0 and %d", LOGPROBS_TOP_MAX);
        r->top_logprobs = (int)top;
        if ((rc = options_apply(json_object_get(doc, "options"), r, p->stops, err)))
            return rc;
    }
    return BW_OK;
}

void proto_request_free(struct proto_request *r)
{
    struct req_priv *p = r->priv;
    if (p) {
        json_decref(p->doc);
        free(p->msgs);
        free(p->context);
        free(p->input_tokens);
        free(p);
    }
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

int proto_request_encode(const struct proto_request *r, uint8_t **frame, size_t *frame_len)
{
    json_t *o = json_object();
    if (!o)
        return BW_ENOMEM;
    json_object_set_new(o, "type", json_string(req_names[r->type]));
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    const struct engine_request *q = &r->req;
    switch (r->type) {
    case PROTO_REQ_CHAT: {
        json_t *msgs = json_array();
        for (size_t i = 0; i < q->n_msgs; i++) {
            json_t *m = json_pack("{s:s, s:s}", "role", q->msgs[i].role, "content",
                                  q->msgs[i].content ? q->msgs[i].content : "");
            if (m && q->msgs[i].n_images)
                json_object_set_new(m, "images", json_integer(q->msgs[i].n_images));
            if (m && q->msgs[i].json)
                json_object_set_new(m, "json", json_string(q->msgs[i].json));
            json_array_append_new(msgs, m);
        }
        json_object_set_new(o, "messages", msgs);
        break;
    }
    case PROTO_REQ_GENERATE:
        json_object_set_new(o, "prompt", json_string(q->prompt ? q->prompt : ""));
        if (q->system)
            json_object_set_new(o, "system", json_string(q->system));
        json_object_set_new(o, "raw", json_boolean(q->raw));
        if (q->n_context > 0)
            json_object_set_new(o, "context", tokens_json(q->context, q->n_context));
        if (q->want_context)
            json_object_set_new(o, "want_context", json_true());
        break;
    case PROTO_REQ_EMBED:
        if (q->n_input_tokens > 0)
            json_object_set_new(o, "tokens", tokens_json(q->input_tokens, q->n_input_tokens));
        else
            json_object_set_new(o, "input", json_string(q->prompt ? q->prompt : ""));
        json_object_set_new(o, "truncate", json_boolean(q->truncate));
        break;
    case PROTO_REQ_TOKENIZE:
        json_object_set_new(o, "content", json_string(q->prompt ? q->prompt : ""));
        json_object_set_new(o, "add_special", json_boolean(r->add_special));
        break;
    case PROTO_REQ_DETOKENIZE: {
        json_t *t = json_array();
        for (int i = 0; i < r->n_tokens; i++)
            json_array_append_new(t, json_integer(r->tokens[i]));
        json_object_set_new(o, "tokens", t);
        break;
    }
    case PROTO_REQ_CANCEL:
    case PROTO_REQ_STATUS:
    case PROTO_REQ_PAUSE:
    case PROTO_REQ_RESUME:
        break;
    }
    if (r->type <= PROTO_REQ_GENERATE) {
        json_object_set_new(o, "options", options_to_json(q));
        if (q->render_only)
            json_object_set_new(o, "render_only", json_true());
        if (q->grammar)
            json_object_set_new(o, "grammar", json_string(q->grammar));
        if (q->think)
            json_object_set_new(o, "think", json_string(q->think));
        if (q->chat_template)
            json_object_set_new(o, "chat_template", json_string(q->chat_template));
        if (q->tools_json)
            json_object_set_new(o, "tools", json_string(q->tools_json));
        if (q->tool_choice)
            json_object_set_new(o, "tool_choice", json_string(q->tool_choice));
        if (q->single_call)
            json_object_set_new(o, "single_call", json_true());
        if (q->tool_name)
            json_object_set_new(o, "tool_name", json_string(q->tool_name));
        if (q->logprobs)
            json_object_set_new(o, "logprobs", json_true());
        if (q->logprobs && q->top_logprobs)
            json_object_set_new(o, "top_logprobs", json_integer(q->top_logprobs));
    }
    return frame_take(o, frame, frame_len);
}

/* ---- events ------------------------------------------------------------------------- */

static json_t *stats_to_json(const struct engine_stats *s)
{
    json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:s}",
                          "prompt_tokens", s->prompt_tokens, "prompt_eval_count", s->prompt_eval_count,
                          "prompt_cache_tokens", s->prompt_cache_tokens, "eval_count", s->eval_count,
                          "context_length", s->context_length, "context_max", s->context_max,
                          "prompt_eval_ns", (json_int_t)s->prompt_eval_ns, "eval_ns", (json_int_t)s->eval_ns,
                          "ttft_ns", (json_int_t)s->ttft_ns, "total_ns", (json_int_t)s->total_ns,
                          "queue_ns", (json_int_t)s->queue_ns, "pool_cells", s->pool_cells,
                          "pool_growths", s->pool_growths, "done_reason", s->done_reason ? s->done_reason : "stop");
    if (o && s->tool_calls)
        json_object_set_new(o, "tool_calls", json_integer(s->tool_calls));
    if (o && (s->truncated_messages || s->truncated_tokens)) {
        json_object_set_new(o, "truncated_messages", json_integer(s->truncated_messages));
        json_object_set_new(o, "truncated_tokens", json_integer(s->truncated_tokens));
    }
    return o;
}

static int64_t get_int(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static void stats_from_json(const json_t *o, struct engine_stats *s)
{
    s->prompt_tokens = (int)get_int(o, "prompt_tokens");
    s->prompt_eval_count = (int)get_int(o, "prompt_eval_count");
    s->prompt_cache_tokens = (int)get_int(o, "prompt_cache_tokens");
    s->eval_count = (int)get_int(o, "eval_count");
    s->context_length = (int)get_int(o, "context_length");
    s->context_max = (int)get_int(o, "context_max");
    s->truncated_messages = (int)get_int(o, "truncated_messages");
    s->truncated_tokens = (int)get_int(o, "truncated_tokens");
    s->prompt_eval_ns = get_int(o, "prompt_eval_ns");
    s->eval_ns = get_int(o, "eval_ns");
    s->ttft_ns = get_int(o, "ttft_ns");
    s->total_ns = get_int(o, "total_ns");
    s->queue_ns = get_int(o, "queue_ns");
    s->pool_cells = (int)get_int(o, "pool_cells");
    s->pool_growths = (int)get_int(o, "pool_growths");
    s->tool_calls = (int)get_int(o, "tool_calls");
    s->done_reason = json_string_value(json_object_get(o, "done_reason"));
}

static json_t *status_to_json(const struct engine_status *s)
{
    json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:i, s:i, s:I}", "pool_cells",
                     s->pool_cells, "used_cells", s->used_cells, "reserved_cells", s->reserved_cells, "live",
                     s->live, "cached", s->cached, "queued", s->queued, "n_parallel", s->n_parallel, "n_ctx_train",
                     s->n_ctx_train, "context_max", s->context_max, "max_pool_cells", (json_int_t)s->max_pool_cells,
                     "kv_bytes", (json_int_t)s->kv_bytes, "kv_bytes_per_cell", (json_int_t)s->kv_bytes_per_cell,
                     "pool_growths", s->pool_growths, "pool_shrinks", s->pool_shrinks, "last_growth_ns",
                     (json_int_t)s->last_growth_ns);
    /* memory by kind (issue 18) */
    json_t *growth = json_pack("{s:i, s:I}", "pool_growths_ahead", s->pool_growths_ahead, "growth_ns_total",
                               (json_int_t)s->growth_ns_total);
    if (o && growth)
        json_object_update(o, growth);
    json_decref(growth);
    json_t *kinds = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i}", "memory_kind", s->memory_kind, "kv_type",
                              s->kv_type, "swa_bytes",
                              (json_int_t)s->swa_bytes, "swa_bytes_per_cell", (json_int_t)s->swa_bytes_per_cell,
                              "recurrent_bytes", (json_int_t)s->recurrent_bytes, "checkpoint_bytes",
                              (json_int_t)s->checkpoint_bytes, "checkpoints", s->checkpoints);
    if (o && kinds)
        json_object_update(o, kinds);
    json_decref(kinds);
    return o;
}

static void status_from_json(const json_t *o, struct engine_status *s)
{
    s->pool_cells = (int)get_int(o, "pool_cells");
    s->used_cells = (int)get_int(o, "used_cells");
    s->reserved_cells = (int)get_int(o, "reserved_cells");
    s->live = (int)get_int(o, "live");
    s->cached = (int)get_int(o, "cached");
    s->queued = (int)get_int(o, "queued");
    s->n_parallel = (int)get_int(o, "n_parallel");
    s->n_ctx_train = (int)get_int(o, "n_ctx_train");
    s->context_max = (int)get_int(o, "context_max");
    s->max_pool_cells = get_int(o, "max_pool_cells");
    s->kv_bytes = (uint64_t)get_int(o, "kv_bytes");
    s->kv_bytes_per_cell = (uint64_t)get_int(o, "kv_bytes_per_cell");
    s->pool_growths = (int)get_int(o, "pool_growths");
    s->pool_shrinks = (int)get_int(o, "pool_shrinks");
    s->last_growth_ns = get_int(o, "last_growth_ns");
    s->pool_growths_ahead = (int)get_int(o, "pool_growths_ahead");
    s->growth_ns_total = get_int(o, "growth_ns_total");
    const char *kind = json_string_value(json_object_get(o, "memory_kind"));
    snprintf(s->memory_kind, sizeof s->memory_kind, "%s", kind ? kind : "");
    const char *kv_type = json_string_value(json_object_get(o, "kv_type"));
    snprintf(s->kv_type, sizeof s->kv_type, "%s", kv_type ? kv_type : "");
    s->swa_bytes = (uint64_t)get_int(o, "swa_bytes");
    s->swa_bytes_per_cell = (uint64_t)get_int(o, "swa_bytes_per_cell");
    s->recurrent_bytes = (uint64_t)get_int(o, "recurrent_bytes");
    s->checkpoint_bytes = (uint64_t)get_int(o, "checkpoint_bytes");
    s->checkpoints = (int)get_int(o, "checkpoints");
}

int proto_event_encode(const struct proto_event *ev, uint8_t **frame, size_t *frame_len)
{
    json_t *o = json_object();
    if (!o)
        return BW_ENOMEM;
    json_object_set_new(o, "type", json_string(ev_names[ev->type]));
    if (ev->type != PROTO_EV_READY)
        json_object_set_new(o, "id", json_integer((json_int_t)ev->id));
    switch (ev->type) {
    case PROTO_EV_READY: {
        const struct proto_ready *r = &ev->ready;
        json_object_set_new(o, "pid", json_integer(r->pid));
        json_object_set_new(o, "n_ctx_train", json_integer(r->n_ctx_train));
        json_object_set_new(o, "context_max", json_integer(r->context_max));
        json_object_set_new(o, "n_embd", json_integer(r->n_embd));
        json_object_set_new(o, "n_parallel", json_integer(r->n_parallel));
        json_object_set_new(o, "load_ns", json_integer(r->load_ns));
        json_object_set_new(o, "kv_bytes_per_cell", json_integer((json_int_t)r->kv_bytes_per_cell));
        json_object_set_new(o, "model", json_string(r->model ? r->model : ""));
        if (r->chat_template)
            json_object_set_new(o, "chat_template", json_string(r->chat_template));
        break;
    }
    case PROTO_EV_TOKEN:
    case PROTO_EV_RENDERED:
    case PROTO_EV_TEXT:
    case PROTO_EV_TOOL_CALL:
    case PROTO_EV_LOGPROBS:
        /* The engine only emits valid UTF-8 (textout.c); jansson rejects anything else. */
        json_object_set_new(o, "text", json_stringn(ev->text ? ev->text : "", ev->len));
        if (ev->type == PROTO_EV_TOKEN && ev->thinking)
            json_object_set_new(o, "thinking", json_true());
        if (ev->type == PROTO_EV_TOOL_CALL)
            json_object_set_new(o, "index", json_integer(ev->call_index));
        break;
    case PROTO_EV_ERROR:
        json_object_set_new(o, "code", json_integer(ev->err_code));
        json_object_set_new(o, "error", json_stringn(ev->text ? ev->text : "", ev->len));
        break;
    case PROTO_EV_EMBEDDING: {
        json_t *a = json_array();
        for (int i = 0; i < ev->n_embd; i++)
            json_array_append_new(a, json_real(ev->embd[i]));
        json_object_set_new(o, "embedding", a);
        break;
    }
    case PROTO_EV_TOKENS: {
        json_t *a = json_array();
        for (int i = 0; i < ev->n_tokens; i++)
            json_array_append_new(a, json_integer(ev->tokens[i]));
        json_object_set_new(o, "tokens", a);
        break;
    }
    case PROTO_EV_STATUS:
        json_object_set_new(o, "status", status_to_json(&ev->status));
        break;
    case PROTO_EV_DONE:
        json_object_set_new(o, "stats", stats_to_json(&ev->stats));
        if (ev->n_tokens > 0)
            json_object_set_new(o, "context", tokens_json(ev->tokens, ev->n_tokens));
        break;
    }
    return frame_take(o, frame, frame_len);
}

struct ev_priv {
    json_t *doc;
    float *embd;
    int32_t *tokens;
};

int proto_event_decode(const uint8_t *json, size_t len, struct proto_event *out, struct bw_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *doc;
    int rc = parse_document(json, len, &doc, err);
    if (rc)
        return rc;
    struct ev_priv *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(doc);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    p->doc = doc;
    out->priv = p;
    int type = lookup(ev_names, sizeof ev_names / sizeof ev_names[0], opt_string(doc, "type"));
    if (type < 0)
        return bw_errf(err, BW_EINVAL, "unknown event type");
    out->type = (enum proto_ev_type)type;
    out->id = (uint64_t)get_int(doc, "id");
    json_t *v;
    switch (out->type) {
    case PROTO_EV_READY: {
        struct proto_ready *r = &out->ready;
        r->pid = (int)get_int(doc, "pid");
        r->n_ctx_train = (int)get_int(doc, "n_ctx_train");
        r->context_max = (int)get_int(doc, "context_max");
        r->n_embd = (int)get_int(doc, "n_embd");
        r->n_parallel = (int)get_int(doc, "n_parallel");
        r->load_ns = get_int(doc, "load_ns");
        r->kv_bytes_per_cell = (uint64_t)get_int(doc, "kv_bytes_per_cell");
        r->model = opt_string(doc, "model");
        r->chat_template = opt_string(doc, "chat_template");
        break;
    }
    case PROTO_EV_TOKEN:
    case PROTO_EV_RENDERED:
    case PROTO_EV_TEXT:
    case PROTO_EV_ERROR:
    case PROTO_EV_TOOL_CALL:
    case PROTO_EV_LOGPROBS:
        v = json_object_get(doc, out->type == PROTO_EV_ERROR ? "error" : "text");
        if (!json_is_string(v))
            return bw_errf(err, BW_EINVAL, "%s event without text", ev_names[type]);
        out->text = json_string_value(v);
        out->len = json_string_length(v);
        out->thinking = out->type == PROTO_EV_TOKEN && json_is_true(json_object_get(doc, "thinking"));
        out->err_code = (int)get_int(doc, "code");
        out->call_index = (int)get_int(doc, "index");
        break;
    case PROTO_EV_EMBEDDING:
    case PROTO_EV_TOKENS: {
        bool emb = out->type == PROTO_EV_EMBEDDING;
        v = json_object_get(doc, emb ? "embedding" : "tokens");
        if (!json_is_array(v))
            return bw_errf(err, BW_EINVAL, "%s event without its array", ev_names[type]);
        size_t n = json_array_size(v);
        if (emb) {
            p->embd = malloc((n ? n : 1) * sizeof *p->embd);
            for (size_t i = 0; p->embd && i < n; i++)
                p->embd[i] = (float)json_number_value(json_array_get(v, i));
            out->embd = p->embd;
            out->n_embd = (int)n;
        } else {
            p->tokens = malloc((n ? n : 1) * sizeof *p->tokens);
            for (size_t i = 0; p->tokens && i < n; i++)
                p->tokens[i] = (int32_t)json_integer_value(json_array_get(v, i));
            out->tokens = p->tokens;
            out->n_tokens = (int)n;
        }
        if (emb ? !p->embd : !p->tokens)
            return bw_errf(err, BW_ENOMEM, "out of memory");
        break;
    }
    case PROTO_EV_STATUS:
        status_from_json(json_object_get(doc, "status"), &out->status);
        break;
    case PROTO_EV_DONE:
        stats_from_json(json_object_get(doc, "stats"), &out->stats);
        if ((v = json_object_get(doc, "context"))) {
            if ((rc = decode_tokens(v, "context", &p->tokens, &out->n_tokens, err)))
                return rc;
            out->tokens = p->tokens;
        }
        break;
    }
    return BW_OK;
}

void proto_event_free(struct proto_event *ev)
{
    struct ev_priv *p = ev->priv;
    if (p) {
        json_decref(p->doc);
        free(p->embd);
        free(p->tokens);
        free(p);
    }
    memset(ev, 0, sizeof *ev);
}
