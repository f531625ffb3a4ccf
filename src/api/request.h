/* request.h -- one request model for the generation routes. /api/generate, /api/chat,
 * /v1/completions and /v1/chat/completions each parse their body (request_ollama.c,
 * request_openai.c) into the same plain struct gen_input; one function (request.c) then
 * turns a gen_input and the opened model into the proto_request the runner is sent: the
 * model's SYSTEM and MESSAGE layers, its Jinja TEMPLATE override, its PARAMETER layer under
 * the request's options, limits, grammar. Written once, so both dialects behave alike.
 *
 * Errors are bw_err (BW_EINVAL for a bad body, BW_ENOMEM, ...) with a message for the
 * client; the handler maps the code to a status once (api_status_for, through gen_fail).
 *
 * Ownership: a gen_input owns the parsed body and everything it made (normalized messages,
 * tools text, grammar, options, token ids); its borrowed strings point into those. It must
 * outlive the gen_prepared built from it, which borrows from it and from the model. Private
 * to src/api/. */
#ifndef BELLOWS_API_REQUEST_H
#define BELLOWS_API_REQUEST_H

#include "api/api_int.h"
#include "engine/logprobs.h"

enum gen_input_kind {
    GEN_INPUT_GENERATE, /* a prompt: /api/generate, /v1/completions */
    GEN_INPUT_CHAT,     /* messages: /api/chat, /v1/chat/completions */
};

struct gen_input {
    enum gen_input_kind kind;
    json_t *body;              /* the parsed body (owned); borrowed strings point into it */
    const char *model;         /* the name as the client wrote it */

    /* chat: the request's messages in the template's conventions (chat_message_normalize;
     * /v1's "developer" already "system"), a JSON array (owned). */
    json_t *messages;
    int n_images;              /* images the request carries (refused: no vision encoder) */

    /* generate */
    const char *prompt;        /* NULL or "": nothing to run (a load, unless render_only) */
    const char *system;        /* the request's system, or NULL: the model's SYSTEM layer */
    bool suffix;               /* a non-empty suffix was given (insert: refused) */
    bool raw;                  /* no template, no system */
    int32_t *context;          /* token ids before the prompt (owned), or NULL */
    int n_context;
    bool want_context;         /* the final object carries the tokens (native, not raw) */
    json_t *prompts;           /* /v1/completions: every prompt, each a string or a token array
                                  (owned); prompt/context/raw hold the first one */

    /* tools */
    char *tools_json;          /* the function list as JSON text (owned), NULL for none and
                                  for tool_choice "none" (the template never sees them) */
    const char *tool_choice;   /* NULL, "auto", "none", "required", "function" (static) */
    const char *tool_name;     /* "function": its name (borrowed from body) */
    bool single_call;          /* parallel_tool_calls false */

    /* output */
    char *grammar_owned;       /* a JSON schema's grammar (owned), or NULL */
    const char *grammar;       /* grammar_owned, api__json_grammar (JSON mode), or NULL */

    /* sampling and the rest */
    json_t *options;           /* Ollama options (native `options`; /v1's fields mapped onto
                                  them), a new reference or NULL */
    const char *think;         /* NULL, "true", "false", "low", "medium", "high" (static) */
    int64_t keep_alive;
    bool stream;
    bool render_only;          /* _debug_render_only (native) */
    bool include_usage;        /* /v1 stream_options.include_usage */
    bool logprobs;             /* each answer token's log-probability (engine/logprobs.h) */
    int top_logprobs;          /* and its n most likely alternatives, 0..LOGPROBS_TOP_MAX */
};

/* The native bodies (body is stolen, also on failure): kind GENERATE reads /api/generate's
 * fields, CHAT /api/chat's. Returns BW_OK or the error (in->... released by the caller
 * either way with gen_input_fini). */
int request_ollama_parse(const struct api *a, json_t *body, enum gen_input_kind kind, struct gen_input *in,
                         struct bw_err *err);
/* The /v1 bodies: GENERATE reads /v1/completions', CHAT /v1/chat/completions'. As above. */
int request_openai_parse(const struct api *a, json_t *body, enum gen_input_kind kind, struct gen_input *in,
                         struct bw_err *err);
void gen_input_fini(struct gen_input *in);

/* What request_prepare builds, owned until the request was sent to the runner. */
struct gen_prepared {
    struct proto_request pr;
    struct policy_msg *msgs;
    char **msg_json;           /* each message as JSON text for the runner */
    size_t n_msg_json;
    json_t *seed;              /* the model's MESSAGE layer, normalized */
    json_t *params_doc;        /* the PARAMETER layer's options (stop strings point into it) */
    const char *stops[2 * OPTIONS_MAX_STOP];
    const char *system;        /* generate: the request's system, else the model's SYSTEM */
    int32_t *ids;              /* a token-array prompt (request_set_prompt) */
};

/* Builds p from in and the opened model m: the capability checks (think, images, insert),
 * the model's PARAMETER layer then the request's options (api__apply_options), the Modelfile
 * TEMPLATE, grammar and tools; chat: the SYSTEM layer (unless the request has a system
 * message), the MESSAGE layer, then the request's messages, each of a known role; generate:
 * the first prompt. Returns BW_OK or the error; p is released with gen_prepared_fini either
 * way. */
int request_prepare(const struct gen_input *in, struct api_model *m, struct gen_prepared *p, struct bw_err *err);
/* Points p at one prompt of in->prompts (a string, templated; token ids, raw). */
int request_set_prompt(const struct gen_input *in, struct gen_prepared *p, const json_t *prompt, struct bw_err *err);
void gen_prepared_fini(struct gen_prepared *p);

/* Helpers the parsers share (request.c). */
/* tools and tool_choice / parallel_tool_calls (api_tools.c) into in. */
int request_tools(struct gen_input *in, const json_t *tools, struct bw_err *err);
/* A JSON schema's grammar into in->grammar_owned; `what` names the field in the message. */
int request_schema(struct gen_input *in, const json_t *schema, const char *what, struct bw_err *err);
/* One message of the request: normalized (chat_message_normalize), appended to in->messages,
 * its images counted in in->n_images. Returns the new object (borrowed from in->messages), or
 * NULL with BW_EINVAL (a bad field, named) or BW_ENOMEM in err. */
json_t *request_add_message(struct gen_input *in, const json_t *msg, size_t i, struct bw_err *err);
/* logprobs (a boolean) and top_logprobs (an integer 0..20) of a chat body, or a native
 * generate's, into in. top_needs_logprobs: top_logprobs above 0 without logprobs true is a
 * 400, as OpenAI and llama-server answer (Ollama's native API ignores it instead). */
int request_logprobs(struct gen_input *in, bool top_needs_logprobs, struct bw_err *err);
/* A status and message from the api's helpers (400, 500) as a bw_err. */
int request_status_err(int status, const char *msg, struct bw_err *err);
/* What every parser does first: *in cleared and bound to body (owned from here) and kind,
 * then the body's counts checked against the limits table before any work on them. */
int request_begin(const struct api *a, json_t *body, enum gen_input_kind kind, struct gen_input *in,
                  struct bw_err *err);

#endif
