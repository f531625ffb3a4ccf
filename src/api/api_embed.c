/* api_embed.c -- the embedding routes: /api/embed (unit vectors, `dimensions`), the legacy
 * /api/embeddings (the raw vector) and /v1/embeddings (token-id inputs, base64). Each parses
 * its body, opens the model, acquires its runner and embeds every input through
 * gen_embed_inputs (gen.c); errors answer once, in the route's own error shape. */
#define _GNU_SOURCE
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- embeddings ------------------------------------------------------------------------------ */

static void embed_common(struct api *a, struct http_request *req, bool legacy)
{
    const char *route = legacy ? "/api/embeddings" : "/api/embed";
    char msg[512];
    json_t *body = api__parse_body(req, msg, sizeof msg);
    struct gen *g = gen_new(a, req, route, NULL);
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
    if (!status) {
        int rc = gen_open_model(g, str_field(body, "model"), &err);
        if (rc == BW_OK)
            rc = gen_acquire(g, &err);
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
    struct gen *g = status ? NULL : gen_new(a, req, "/v1/embeddings", NULL);
    struct bw_err err;
    if (g) {
        g->keep_alive = SCHED_KEEP_ALIVE_DEFAULT;
        int rc = gen_open_model(g, str_field(body, "model"), &err);
        if (rc == BW_OK)
            rc = gen_acquire(g, &err);
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
