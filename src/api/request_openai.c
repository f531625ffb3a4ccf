/* request_openai.c -- the bodies of /v1/chat/completions and /v1/completions (anchors.md
 * §1.11) into a gen_input (request.h): OpenAI's sampling fields mapped onto Ollama options,
 * response_format as a grammar, reasoning_effort as the think switch, content parts, the
 * four forms of a completions prompt. */
#define _GNU_SOURCE
#include "api/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* OpenAI's sampling fields onto Ollama options (the runner's language). Temperature and
 * top_p default to 1.0 on /v1, as Ollama does; Ollama-style `options` may also come through
 * (extra_body), num_ctx ignored. */
static int parse_options(struct gen_input *in, struct bw_err *err)
{
    static const struct {
        const char *from, *to;
    } map[] = {{"temperature", "temperature"}, {"top_p", "top_p"},   {"frequency_penalty", "frequency_penalty"},
               {"presence_penalty", "presence_penalty"}, {"seed", "seed"}, {"max_tokens", "num_predict"},
               {"max_completion_tokens", "num_predict"}, {"stop", "stop"}};
    const json_t *body = in->body;
    json_t *opts = in->options = json_object();
    if (!opts)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    json_object_set_new(opts, "temperature", json_real(1.0));
    json_object_set_new(opts, "top_p", json_real(1.0));
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        json_t *v = json_object_get(body, map[i].from);
        if (v && !json_is_null(v))
            json_object_set(opts, map[i].to, v);
    }
    json_t *extra = json_object_get(body, "options");
    if (json_is_object(extra))
        json_object_update(opts, extra);
    const json_t *n = json_object_get(body, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1)
        return bw_errf(err, BW_EINVAL, "n must be 1");
    return BW_OK;
}

/* response_format: text (none), json_object (JSON mode), json_schema {"json_schema":
 * {"schema": {...}}} (the schema's grammar; JSON mode without a schema). */
static int parse_response_format(struct gen_input *in, struct bw_err *err)
{
    const json_t *rf = json_object_get(in->body, "response_format");
    const char *type = str_field(rf, "type");
    if (!type || !strcmp(type, "text"))
        return BW_OK;
    if (strcmp(type, "json_object") && strcmp(type, "json_schema"))
        return bw_errf(err, BW_EINVAL, "response_format '%s' is not supported (text, json_object and json_schema are)",
                       type);
    in->grammar = api__json_grammar;
    if (!strcmp(type, "json_object"))
        return BW_OK;
    const json_t *js = json_object_get(rf, "json_schema");
    if (!json_is_object(js))
        return bw_errf(err, BW_EINVAL, "response_format.json_schema must be an object");
    const json_t *schema = json_object_get(js, "schema");
    if (!schema || json_is_null(schema))
        return BW_OK;
    return request_schema(in, schema, "response_format.json_schema.schema", err);
}

/* reasoning_effort is the think switch: "none" turns thinking off. */
static int parse_effort(struct gen_input *in, struct bw_err *err)
{
    const json_t *effort = json_object_get(in->body, "reasoning_effort");
    if (!effort || json_is_null(effort))
        return BW_OK;
    if (json_is_string(effort) && !strcmp(json_string_value(effort), "none"))
        in->think = "false";
    else if (!json_is_string(effort) || api__think_value(effort, &in->think) != BW_OK)
        return bw_errf(err, BW_EINVAL, "reasoning_effort must be one of low, medium, high (or none)");
    return BW_OK;
}

/* Parts of a message's content other than text and images are refused rather than dropped. */
static int check_parts(const json_t *m, size_t i, struct bw_err *err)
{
    const json_t *c = json_object_get(m, "content");
    if (c && !json_is_null(c) && !json_is_string(c) && !json_is_array(c))
        return bw_errf(err, BW_EINVAL, "messages[%zu].content must be a string or an array of parts", i);
    for (size_t k = 0; json_is_array(c) && k < json_array_size(c); k++) {
        const char *type = str_field(json_array_get(c, k), "type");
        bool text = type && !strcmp(type, "text") && str_field(json_array_get(c, k), "text");
        if (!text && !(type && !strcmp(type, "image_url")))
            return bw_errf(err, BW_EINVAL, "messages[%zu].content[%zu]: unsupported part type", i, k);
    }
    return BW_OK;
}

/* /v1/chat/completions: messages (a non-empty array; "developer" is OpenAI's newer name for
 * system; image_url parts counted), tools, tool_choice, parallel_tool_calls. */
static int parse_chat(struct gen_input *in, struct bw_err *err)
{
    const json_t *arr = json_object_get(in->body, "messages");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return bw_errf(err, BW_EINVAL, "messages must be a non-empty array");
    int rc = request_tools(in, json_object_get(in->body, "tools"), err);
    if (!rc)
        rc = request_logprobs(in, true, err);
    if (rc)
        return rc;
    if (!(in->messages = json_array()))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *m = json_array_get(arr, i);
        if ((rc = check_parts(m, i, err)))
            return rc;
        json_t *o = request_add_message(in, m, i, err);
        if (!o)
            return err->code;
        if (!strcmp(str_field(o, "role") ?: "", "developer"))
            json_object_set_new(o, "role", json_string("system"));
    }
    return BW_OK;
}

/* An array of token ids: non-empty, integers from 0. */
/* /v1/completions: `prompt` in OpenAI's four forms (a string, an array of strings, an array
 * of token ids, an array of such arrays) into in->prompts. A string is templated, as
 * Ollama's /v1/completions does; token ids go to the model as they are (raw). */
static int parse_generate(struct gen_input *in, struct bw_err *err)
{
    const json_t *prompt = json_object_get(in->body, "prompt");
    if (json_is_string(prompt) || (json_is_array(prompt) && json_is_integer(json_array_get(prompt, 0)))) {
        if (!json_is_string(prompt) && !api__is_token_array(prompt))
            return bw_errf(err, BW_EINVAL, "prompt: token ids must be integers from 0");
        if (!(in->prompts = json_pack("[O]", prompt)))
            return bw_errf(err, BW_ENOMEM, "out of memory");
    } else {
        if (!json_is_array(prompt) || !json_array_size(prompt))
            return bw_errf(err, BW_EINVAL, "prompt must be a string, an array of strings, an array of token ids or "
                                           "an array of such arrays");
        for (size_t i = 0; i < json_array_size(prompt); i++) {
            const json_t *p = json_array_get(prompt, i);
            if (!json_is_string(p) && !api__is_token_array(p))
                return bw_errf(err, BW_EINVAL, "prompt[%zu] must be a string or a non-empty array of token ids", i);
        }
        in->prompts = json_incref((json_t *)prompt);
    }
    /* logprobs here is OpenAI's legacy integer: the alternatives a token gets (0: none, the
     * chosen token's own still reported). */
    const json_t *lp = json_object_get(in->body, "logprobs");
    if (lp && !json_is_null(lp)) {
        if (!json_is_integer(lp) || json_integer_value(lp) < 0 || json_integer_value(lp) > LOGPROBS_TOP_MAX)
            return bw_errf(err, BW_EINVAL, "logprobs must be an integer between 0 and %d", LOGPROBS_TOP_MAX);
        in->logprobs = true;
        in->top_logprobs = (int)json_integer_value(lp);
    }
    if (str_field(in->body, "suffix") && *str_field(in->body, "suffix"))
        return bw_errf(err, BW_EINVAL, "suffix (insert) is not supported by this model");
    if (in->stream && json_array_size(in->prompts) > 1)
        return bw_errf(err, BW_EINVAL, "stream is not supported with more than one prompt");
    in->prompt = json_string_value(json_array_get(in->prompts, 0));
    return BW_OK;
}

int request_openai_parse(const struct api *a, json_t *body, enum gen_input_kind kind, struct gen_input *in,
                         struct bw_err *err)
{
    int rc = request_begin(a, body, kind, in, err);
    in->keep_alive = SCHED_KEEP_ALIVE_DEFAULT;
    if (rc)
        return rc;
    in->stream = json_is_true(json_object_get(body, "stream"));
    in->include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    if (!(in->model = str_field(body, "model")))
        return bw_errf(err, BW_EINVAL, "model is required");
    if ((rc = parse_options(in, err)) || (rc = parse_response_format(in, err)) || (rc = parse_effort(in, err)))
        return rc;
    return kind == GEN_INPUT_CHAT ? parse_chat(in, err) : parse_generate(in, err);
}
