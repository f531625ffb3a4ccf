/* request_ollama.c -- the bodies of /api/generate and /api/chat (spec/api.md) into a
 * gen_input (request.h). Only the body's shape is checked here; what depends on the model
 * (thinking, images, insert, options against its context) is request_prepare's. */
#define _GNU_SOURCE
#include "api/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* format: "json" is JSON mode (a grammar); a JSON schema becomes the grammar of its
 * instances (grammar/json_schema.h); "" and null are none. */
static int parse_format(struct gen_input *in, const json_t *format, struct bw_err *err)
{
    if (json_is_object(format))
        return request_schema(in, format, "format", err);
    if (json_is_string(format) && !strcmp(json_string_value(format), "json"))
        in->grammar = api__json_grammar;
    else if (format && !json_is_null(format) && !(json_is_string(format) && !*json_string_value(format)))
        return bw_errf(err, BW_EINVAL, "format must be \"json\" or a JSON schema");
    return BW_OK;
}

/* /api/generate's own fields. */
static int parse_generate(struct gen_input *in, struct bw_err *err)
{
    const json_t *b = in->body;
    const json_t *prompt = json_object_get(b, "prompt"), *system = json_object_get(b, "system");
    const json_t *images = json_object_get(b, "images");
    in->raw = json_is_true(json_object_get(b, "raw"));
    if (prompt && !json_is_string(prompt) && !json_is_null(prompt))
        return bw_errf(err, BW_EINVAL, "prompt must be a string");
    if (system && !json_is_string(system) && !json_is_null(system))
        return bw_errf(err, BW_EINVAL, "system must be a string");
    /* context: the token array an earlier final object returned (deprecated in Ollama, still
     * honoured): it goes in front of the rendered prompt, as tokens (engine_request.context). */
    const json_t *context = json_object_get(b, "context");
    size_t n_context = json_array_size(context);
    if (context && !json_is_null(context) && !json_is_array(context))
        return bw_errf(err, BW_EINVAL, "context must be an array of token ids");
    for (size_t i = 0; i < n_context; i++) {
        if (!api__is_token_id(json_array_get(context, i)))
            return bw_errf(err, BW_EINVAL, "context[%zu] must be a token id (an integer from 0)", i);
    }
    if (in->raw && (str_field(b, "template") || json_string_value(system) || n_context))
        return bw_errf(err, BW_EINVAL, "raw mode does not support template, system, or context");
    in->prompt = json_string_value(prompt);
    in->system = json_string_value(system);
    in->suffix = str_field(b, "suffix") && *str_field(b, "suffix");
    in->n_images = json_is_array(images) ? (int)json_array_size(images) : 0;
    in->want_context = true;
    if (n_context && !(in->context = malloc(n_context * sizeof *in->context)))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_context; i++)
        in->context[i] = (int32_t)json_integer_value(json_array_get(context, i));
    in->n_context = (int)n_context;
    return BW_OK;
}

/* /api/chat's own fields: messages in the template's conventions (tool calls with object
 * arguments, tool_name as name, thinking; native `images` counted), tools, and tool_choice
 * / parallel_tool_calls as an extension (OpenAI's shapes, read as /v1 reads them). */
static int parse_chat(struct gen_input *in, struct bw_err *err)
{
    const json_t *arr = json_object_get(in->body, "messages");
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        return bw_errf(err, BW_EINVAL, "messages must be an array");
    int rc = request_tools(in, json_object_get(in->body, "tools"), err);
    if (rc)
        return rc;
    if (!(in->messages = json_array()))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (!request_add_message(in, json_array_get(arr, i), i, err))
            return err->code;
    return BW_OK;
}

int request_ollama_parse(const struct api *a, json_t *body, enum gen_input_kind kind, struct gen_input *in,
                         struct bw_err *err)
{
    int rc = request_begin(a, body, kind, in, err);
    if (rc)
        return rc;
    in->model = str_field(body, "model");
    if (!in->model || !*in->model)
        return bw_errf(err, BW_EINVAL, "model is required");
    const json_t *stream = json_object_get(body, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream))
        return bw_errf(err, BW_EINVAL, "stream must be a boolean");
    in->stream = !json_is_false(stream);
    if (api__keep_alive(body, &in->keep_alive) != BW_OK)
        return bw_errf(err, BW_EINVAL, "keep_alive must be a duration (\"5m\") or a number of seconds");
    if (api__think_value(json_object_get(body, "think"), &in->think) != BW_OK)
        return bw_errf(err, BW_EINVAL, "think must be a boolean or one of low, medium, high");
    if ((rc = parse_format(in, json_object_get(body, "format"), err)))
        return rc;
    json_t *opts = json_object_get(body, "options");
    if (opts && !json_is_object(opts) && !json_is_null(opts))
        return bw_errf(err, BW_EINVAL, "options must be an object");
    in->options = json_is_object(opts) ? json_incref(opts) : NULL;
    in->render_only = json_is_true(json_object_get(body, "_debug_render_only"));
    if ((rc = request_logprobs(in, false, err)))
        return rc;
    return kind == GEN_INPUT_CHAT ? parse_chat(in, err) : parse_generate(in, err);
}
