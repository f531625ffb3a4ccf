/* gen.c -- one generation in flight, from the HTTP side: acquire the model's runner, send
 * the request, turn the runner's events into the wire format (gen_format) and answer.
 *
 * Streaming waits for the first event before answering, so errors found by the runner
 * (prompt too long, bad option) still get their HTTP status; after that, errors are
 * written into the stream. Disconnects are noticed while waiting for events (every
 * 100 ms) and cancel the generation in the runner. */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/toolcall.h"
#include "util/log.h"

#define WAIT_SLICE_MS 100

void strbuf_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p)
            return; /* out of memory: the text is lost, the reply goes on */
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void strbuf_add_json(struct strbuf *b, json_t *obj)
{
    char *s = obj ? toolcall_json_dump(obj) : NULL;
    json_decref(obj);
    if (s) {
        strbuf_add(b, s, strlen(s));
        strbuf_add(b, "\n", 1);
        free(s);
    }
}

void strbuf_free(struct strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void gen_free(struct gen *g)
{
    if (!g)
        return;
    if (g->call)
        sched_call_end(g->call);
    if (g->runner)
        sched_release(g->api->cfg.sched, g->runner, g->keep_alive);
    api__model_close(&g->model);
    strbuf_free(&g->out);
    strbuf_free(&g->text);
    strbuf_free(&g->thinking);
    json_decref(g->tool_calls);
    json_decref(g->logprobs_pending);
    free(g->rendered);
    free(g->embd);
    free(g->context);
    free(g->fmt_ud);
    free(g);
}

int gen_open_model(struct gen *g, const char *name, struct bw_err *err)
{
    snprintf(g->model_name, sizeof g->model_name, "%s", name ? name : "");
    /* The client's own string: a name too long for model_name is a 400 there, never cut. */
    return api__model_open(g->api, name, &g->model, err);
}

int gen_acquire(struct gen *g, struct bw_err *err)
{
    if (!g->t_start)
        g->t_start = clock_mono_ns();
    int rc = sched_acquire(g->api->cfg.sched, &g->model.sched, &g->runner, err);
    g->t_acquired = clock_mono_ns();
    return rc;
}

const char *gen_call_id(const struct gen *g, int index, char *buf, size_t len)
{
    const json_t *c = json_array_get(g->tool_calls, (size_t)index);
    const char *own = json_string_value(json_object_get(c, "id"));
    if (own && *own) {
        snprintf(buf, len, "%s", own);
        return buf;
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the request id and the index */
    for (const char *p = g->req->request_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)index) * 1099511628211ull;
    char id[9];
    for (int i = 0; i < 8; i++, h /= 36)
        id[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[h % 36];
    id[8] = '\0';
    snprintf(buf, len, "call_%s", id);
    return buf;
}

/* A tool call of the answer (its JSON object text): kept for the final object, and
 * streamed when the format streams calls. */
static void on_tool_call(struct gen *g, const struct proto_event *ev)
{
    json_t *call = json_loadb(ev->text, ev->len, 0, NULL);
    if (!json_is_object(call) || (!g->tool_calls && !(g->tool_calls = json_array()))) {
        json_decref(call);
        return;
    }
    json_array_append_new(g->tool_calls, call);
    size_t index = json_array_size(g->tool_calls) - 1;
    char id[80];
    if (g->stream && g->fmt->tool_call)
        g->fmt->tool_call(g, (int)index, call, gen_call_id(g, (int)index, id, sizeof id));
}

/* One LOGPROBS event: its entries (a JSON array) appended to the pending ones. */
static void on_logprobs(struct gen *g, const struct proto_event *ev)
{
    json_t *arr = json_loadb(ev->text, ev->len, 0, NULL);
    if (json_is_array(arr) && (g->logprobs_pending || (g->logprobs_pending = json_array())))
        json_array_extend(g->logprobs_pending, arr);
    json_decref(arr);
}

json_t *gen_take_logprobs(struct gen *g)
{
    json_t *a = g->logprobs_pending;
    g->logprobs_pending = NULL;
    if (a && !json_array_size(a)) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* Consumes one event. Returns true when the request is finished. */
static bool on_event(struct gen *g, struct proto_event *ev)
{
    switch (ev->type) {
    case PROTO_EV_TOKEN:
        if (g->stream && g->fmt->piece)
            g->fmt->piece(g, ev->text, ev->len, ev->thinking);
        else
            strbuf_add(ev->thinking ? &g->thinking : &g->text, ev->text, ev->len);
        return false;
    case PROTO_EV_TOOL_CALL:
        on_tool_call(g, ev);
        return false;
    case PROTO_EV_LOGPROBS:
        if (g->logprobs)
            on_logprobs(g, ev);
        return false;
    case PROTO_EV_RENDERED:
        free(g->rendered);
        g->rendered = strndup(ev->text, ev->len);
        return false;
    case PROTO_EV_EMBEDDING:
        free(g->embd);
        g->embd = malloc((size_t)ev->n_embd * sizeof *g->embd);
        if (g->embd) {
            memcpy(g->embd, ev->embd, (size_t)ev->n_embd * sizeof *g->embd);
            g->n_embd = ev->n_embd;
        }
        return false;
    case PROTO_EV_DONE:
        g->st = ev->stats;
        free(g->context);
        g->context = NULL;
        g->n_context = 0;
        if (ev->n_tokens > 0 && (g->context = malloc((size_t)ev->n_tokens * sizeof *g->context))) {
            memcpy(g->context, ev->tokens, (size_t)ev->n_tokens * sizeof *g->context);
            g->n_context = ev->n_tokens;
        }
        /* done_reason points into the event; keep a static copy */
        g->st.done_reason = !ev->stats.done_reason                    ? "stop"
                            : !strcmp(ev->stats.done_reason, "length") ? "length"
                            : !strcmp(ev->stats.done_reason, "cancel") ? "cancel"
                            : !strcmp(ev->stats.done_reason, "render") ? "render"
                                                                        : "stop";
        g->finished = true;
        metrics_generation(&g->api->metrics, &g->st);
        LOG(LOG_INFO, "api",
            "request_id=%s runner_req=%llu model=%s L=%d D=%d Cmax=%d pool=%d cached=%d cut_messages=%d "
            "cut_tokens=%d ttft_ms=%.1f tok_s=%.1f done=%s",
            g->req->request_id, (unsigned long long)ev->id, g->model_name, g->st.prompt_tokens,
            g->st.context_length, g->st.context_max, g->st.pool_cells, g->st.prompt_cache_tokens,
            g->st.truncated_messages, g->st.truncated_tokens, g->st.ttft_ns / 1e6,
            g->st.eval_ns > 0 ? g->st.eval_count * 1e9 / g->st.eval_ns : 0.0, g->st.done_reason);
        return true;
    case PROTO_EV_ERROR:
        g->failed = g->finished = true;
        g->status = api_status_for(ev->err_code);
        strbuf_free(&g->text);
        strbuf_add(&g->text, ev->text, ev->len); /* the message */
        return true;
    default:
        return false;
    }
}

/* Waits for the next event, watching for a client that left. Returns 1 (event consumed),
 * 0 (client gone: cancelled), or a BW_E code (runner died; message in g->text). */
static int next_event(struct gen *g)
{
    for (;;) {
        /* Checked on a clock, not only when no event came: a non-streamed answer whose
         * tokens keep flowing would otherwise run to its end for nobody. */
        int64_t now = clock_mono_ns();
        if (now - g->t_gone_check >= WAIT_SLICE_MS * 1000000LL) {
            g->t_gone_check = now;
            if (http_client_gone(g->req)) {
                LOG(LOG_INFO, "api", "request_id=%s client went away; cancelling", g->req->request_id);
                sched_call_cancel(g->call);
                return 0;
            }
        }
        struct proto_event ev;
        struct bw_err err;
        int rc = sched_call_next(g->call, &ev, WAIT_SLICE_MS, &err);
        if (rc == 1) {
            on_event(g, &ev);
            proto_event_free(&ev);
            return 1;
        }
        if (rc < 0) {
            g->failed = g->finished = true;
            g->status = 500;
            strbuf_free(&g->text);
            strbuf_add(&g->text, err.msg, strlen(err.msg));
            return rc;
        }
    }
}

int gen_collect(struct gen *g, struct proto_request *pr, struct bw_err *err)
{
    int rc = sched_call_start(g->runner, pr, &g->call, err);
    if (rc)
        return rc;
    g->finished = g->failed = false;
    while (!g->finished) {
        rc = next_event(g);
        if (rc == 0)
            return bw_errf(err, BW_EIO, "client went away");
    }
    sched_call_end(g->call);
    g->call = NULL;
    if (g->failed)
        return bw_errf(err, g->status == 400 ? BW_EINVAL : g->status == 404 ? BW_ENOTFOUND : BW_ERUNNER, "%s",
                       g->text.s ? g->text.s : "error");
    return BW_OK;
}

static ssize_t pull(void *ud, char *buf, size_t max)
{
    struct gen *g = ud;
    while (g->out_off == g->out.len) {
        if (g->finished)
            return 0;
        g->out.len = g->out_off = 0;
        int rc = next_event(g);
        if (rc == 0)
            return -1; /* client gone */
        if (g->failed)
            g->fmt->stream_error(g, g->text.s ? g->text.s : "error");
        else if (g->finished)
            g->fmt->final(g);
    }
    size_t n = g->out.len - g->out_off;
    if (n > max)
        n = max;
    memcpy(buf, g->out.s + g->out_off, n);
    g->out_off += n;
    return (ssize_t)n;
}

static void stream_done(void *ud, bool completed)
{
    struct gen *g = ud;
    metrics_request(&g->api->metrics, g->route, completed ? 200 : 499);
    gen_free(g);
}

/* Answers an error before any byte went out, and ends g. */
static void fail(struct gen *g, int status, const char *msg)
{
    if (status != 499)
        g->fmt->reply_error(g->req, status, msg);
    metrics_request(&g->api->metrics, g->route, status);
    gen_free(g);
}

void gen_fail(struct gen *g, const struct bw_err *err)
{
    fail(g, api_status_for(err->code), err->msg);
}

void gen_run(struct gen *g, struct proto_request *pr)
{
    struct bw_err err;
    int rc = gen_acquire(g, &err);
    if (rc == BW_OK && (rc = sched_call_start(g->runner, pr, &g->call, &err)) != BW_OK)
        rc = BW_ERUNNER;
    if (rc) {
        fail(g, api_status_for(rc), err.msg);
        return;
    }
    /* The first event decides the status. */
    if (next_event(g) == 0) {
        fail(g, 499, NULL); /* the client left: nobody to answer */
        return;
    }
    if (g->failed) {
        fail(g, g->status, g->text.s ? g->text.s : "error");
        return;
    }
    if (g->stream) {
        if (g->finished)
            g->fmt->final(g);
        if (http_respond_stream(g->req, 200, g->fmt->stream_content_type, pull, stream_done, g, NULL) != BW_OK)
            fail(g, 500, "could not start the response stream");
        return; /* stream_done frees g */
    }
    while (!g->finished) {
        if (next_event(g) == 0) {
            fail(g, 499, NULL);
            return;
        }
    }
    if (g->failed) {
        fail(g, g->status, g->text.s ? g->text.s : "error");
        return;
    }
    g->fmt->final(g); /* non-streaming: final() writes the whole reply into out */
    http_respond(g->req, 200, "application/json; charset=utf-8", g->out.s ? g->out.s : "{}", g->out.len, NULL);
    metrics_request(&g->api->metrics, g->route, 200);
    gen_free(g);
}

/* Little-endian float32 bytes, base64: what the openai SDKs ask for by default. */
static json_t *base64_floats(const float *v, int n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (size_t)n * 4;
    const unsigned char *b = (const unsigned char *)v; /* x86 and ARM Linux are little-endian */
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return json_null();
    for (size_t i = 0; i < len; i += 3) {
        unsigned x = (unsigned)b[i] << 16 | (i + 1 < len ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < len ? b[i + 2] : 0);
        *o++ = tbl[x >> 18 & 63];
        *o++ = tbl[x >> 12 & 63];
        *o++ = i + 1 < len ? tbl[x >> 6 & 63] : '=';
        *o++ = i + 2 < len ? tbl[x & 63] : '=';
    }
    *o = '\0';
    json_t *s = json_string(out);
    free(out);
    return s;
}

/* An array of non-negative integers (token ids). */
bool api__is_token_array(const json_t *a)
{
    if (!json_is_array(a) || !json_array_size(a))
        return false;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!api__is_token_id(json_array_get(a, i)))
            return false;
    return true;
}

int gen_embed_check_input(const json_t *input, bool tokens_ok, char *msg, size_t len)
{
    if (json_is_string(input))
        return 0;
    if (!json_is_array(input))
        return snprintf(msg, len, "input must be %s",
                        tokens_ok ? "a string, an array of strings, an array of token ids or an array of such arrays"
                                  : "a string or an array of strings"),
               400;
    const json_t *first = json_array_get(input, 0);
    if (tokens_ok && json_is_integer(first)) /* one input as token ids */
        return api__is_token_array(input) ? 0 : (snprintf(msg, len, "input: token ids must be integers from 0"), 400);
    bool arrays = tokens_ok && json_is_array(first); /* several inputs as token ids */
    for (size_t i = 0; i < json_array_size(input); i++) {
        const json_t *x = json_array_get(input, i);
        if (arrays ? !api__is_token_array(x) : !json_is_string(x))
            return snprintf(msg, len, "input[%zu] must be %s", i,
                            arrays ? "a non-empty array of token ids (integers from 0), as input[0] is" : "a string"),
                   400;
    }
    return 0;
}

int gen_embed_dimensions(const json_t *v, int *out, char *msg, size_t len)
{
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return snprintf(msg, len, "dimensions must be a positive integer"), 400;
    *out = (int)json_integer_value(v);
    return 0;
}

int gen_embed_normalize(float *v, int n, int dimensions)
{
    if (dimensions > 0 && dimensions < n)
        n = dimensions;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(v[i]) || isinf(v[i]))
            return -1;
        sum += (double)v[i] * v[i];
    }
    double norm = sqrt(sum);
    double scale = 1.0 / (norm > 1e-12 ? norm : 1e-12);
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] * scale);
    return n;
}

/* Copies a JSON token array into a new int32 array (checked by api__is_token_array). */
static int32_t *token_ids(const json_t *a, int *n)
{
    size_t len = json_array_size(a);
    int32_t *t = malloc((len ? len : 1) * sizeof *t);
    for (size_t i = 0; t && i < len; i++)
        t[i] = (int32_t)json_integer_value(json_array_get(a, i));
    *n = (int)len;
    return t;
}

int gen_embed_inputs(struct gen *g, const json_t *input, const struct gen_embed_opts *o, json_t *vectors,
                     int *prompt_tokens, struct bw_err *err)
{
    /* One input: a string, or (o->tokens) one array of token ids. */
    bool one = !json_is_array(input) || (o->tokens && json_is_integer(json_array_get(input, 0)));
    size_t n = one ? 1 : json_array_size(input);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = one ? input : json_array_get(input, i);
        struct proto_request pr = {.type = PROTO_REQ_EMBED};
        pr.req.kind = ENGINE_EMBED;
        pr.req.truncate = o->truncate;
        int32_t *ids = NULL;
        if (json_is_string(s)) {
            pr.req.prompt = json_string_value(s);
        } else if (o->tokens && api__is_token_array(s)) {
            if (!(ids = token_ids(s, &pr.req.n_input_tokens)))
                return bw_errf(err, BW_ENOMEM, "out of memory");
            pr.req.input_tokens = ids;
            pr.req.prompt = "";
        } else {
            return bw_errf(err, BW_EINVAL, "input[%zu] must be a string", i);
        }
        int rc = gen_collect(g, &pr, err);
        free(ids);
        if (rc)
            return rc;
        int dim = g->n_embd;
        if (o->normalize && (dim = gen_embed_normalize(g->embd, g->n_embd, o->dimensions)) < 0)
            return bw_errf(err, BW_ERUNNER, "the embedding of input[%zu] contains NaN or infinite values", i);
        json_t *v = o->base64 ? base64_floats(g->embd, dim) : json_array();
        for (int k = 0; !o->base64 && k < dim; k++)
            json_array_append_new(v, json_real(g->embd[k]));
        json_array_append_new(vectors, v);
        *prompt_tokens += g->st.prompt_eval_count;
    }
    return BW_OK;
}

struct gen *gen_new(struct api *a, struct http_request *req, const char *route, const struct gen_format *fmt)
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
