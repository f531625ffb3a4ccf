/* fuzz_request.c -- the JSON bodies of the HTTP routes, through the pure functions that
 * read them (src/api/request*.c, api_tools.c, api.c, gen.c's embedding checks,
 * src/proto/limits.c).
 *
 * The input is a request body (JSON text, as api__parse_body reads it: an object). Every
 * body goes through every route's reader:
 *   /api/generate, /api/chat             request_ollama_parse (messages, tools, format's
 *                                        JSON schema, options, think, keep_alive, context)
 *   /v1/completions, /v1/chat/completions request_openai_parse
 *   /api/embed, /v1/embeddings           gen_embed_check_input, gen_embed_dimensions
 *   every route                          api__check_limits, api__keep_alive
 *   /api/create                          its `parameters` through the options' limits and
 *                                        mapping (what api__apply_options does with a model)
 * The handlers themselves need a live HTTP request and store; what they add to these
 * readers is field presence checks. A parser that accepts a body must leave a usable
 * gen_input: a model name, and a chat's messages as an array. */
#include <jansson.h>

#include "api/request.h"
#include "engine/sampling.h"
#include "fuzz.h"
#include "proto/limits.h"

static struct api *api_ctx(void)
{
    static struct api *a;
    if (!a) {
        a = calloc(1, sizeof *a); /* the parsers read only cfg.limits */
        if (a)
            limits_defaults(&a->cfg.limits);
    }
    return a;
}

typedef int (*parse_fn)(const struct api *, json_t *, enum gen_input_kind, struct gen_input *, struct bw_err *);

static void parse_route(parse_fn fn, json_t *body, enum gen_input_kind kind)
{
    struct gen_input in;
    struct bw_err err = {0};
    json_incref(body); /* the parser steals it */
    if (fn(api_ctx(), body, kind, &in, &err) == BW_OK) {
        FUZZ_CHECK(in.kind == kind);
        FUZZ_CHECK(in.model != NULL);
        if (kind == GEN_INPUT_CHAT)
            FUZZ_CHECK(json_is_array(in.messages));
        FUZZ_CHECK(!in.n_context || in.context);
    } else {
        FUZZ_CHECK(err.code != BW_OK && err.msg[0]);
    }
    gen_input_fini(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    struct api *a = api_ctx();
    if (!a)
        return 0;
    char msg[512];
    int64_t ka;
    (void)api__check_limits(a, body, msg, sizeof msg);
    (void)api__keep_alive(body, &ka);

    parse_route(request_ollama_parse, body, GEN_INPUT_GENERATE);
    parse_route(request_ollama_parse, body, GEN_INPUT_CHAT);
    parse_route(request_openai_parse, body, GEN_INPUT_GENERATE);
    parse_route(request_openai_parse, body, GEN_INPUT_CHAT);

    const json_t *input = json_object_get(body, "input");
    if (input) {
        (void)gen_embed_check_input(input, false, msg, sizeof msg);
        (void)gen_embed_check_input(input, true, msg, sizeof msg);
    }
    int dims;
    (void)gen_embed_dimensions(json_object_get(body, "dimensions"), &dims, msg, sizeof msg);

    const json_t *params = json_object_get(body, "parameters");
    if (json_is_object(params)) {
        struct bw_err err = {0};
        struct engine_request r;
        memset(&r, 0, sizeof r);
        sampling_params_default(&r.sampling);
        const char *stops[OPTIONS_MAX_STOP];
        if (limits_check_options(&a->cfg.limits, params, 0, &err) == BW_OK)
            (void)options_apply(params, &r, stops, &err);
    }
    json_decref(body);
    return 0;
}
