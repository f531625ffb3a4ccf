/* request.c -- a gen_input and its model into the proto_request (request.h), once for both
 * dialects, and the helpers the two parsers share. */
#define _GNU_SOURCE
#include "api/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grammar/json_schema.h"
#include "template/caps.h"
#include "template/chat_template.h"


int request_status_err(int status, const char *msg, struct bw_err *err)
{
    if (!status)
        return BW_OK;
    return bw_errf(err, status == 500 ? BW_ENOMEM : BW_EINVAL, "%s", msg);
}

int request_begin(const struct api *a, json_t *body, enum gen_input_kind kind, struct gen_input *in,
                  struct bw_err *err)
{
    char msg[512];
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->body = body;
    return request_status_err(api__check_limits(a, body, msg, sizeof msg), msg, err);
}

void gen_input_fini(struct gen_input *in)
{
    json_decref(in->body);
    json_decref(in->messages);
    json_decref(in->prompts);
    json_decref(in->options);
    free(in->context);
    free(in->tools_json);
    free(in->grammar_owned);
    memset(in, 0, sizeof *in);
}

void gen_prepared_fini(struct gen_prepared *p)
{
    for (size_t i = 0; i < p->n_msg_json; i++)
        free(p->msg_json[i]);
    free(p->msg_json);
    free(p->msgs);
    free(p->ids);
    json_decref(p->seed);
    json_decref(p->params_doc);
    memset(p, 0, sizeof *p);
}

/* ---- the parsers' shared parts -------------------------------------------------------------- */

int request_tools(struct gen_input *in, const json_t *tools, struct bw_err *err)
{
    char msg[512];
    struct api_tool_choice tc;
    int status = api__check_tools(tools, msg, sizeof msg);
    if (!status)
        status = api__tool_choice(in->body, json_is_array(tools) ? tools : NULL, &tc, msg, sizeof msg);
    if (status)
        return request_status_err(status, msg, err);
    /* "none" leaves the tools out of the template and the answer unparsed. */
    if (json_array_size(tools) && !(tc.choice && !strcmp(tc.choice, "none")) &&
        !(in->tools_json = json_dumps(tools, JSON_COMPACT)))
        return bw_errf(err, BW_ENOMEM, "out of memory");
    in->tool_choice = tc.choice;
    in->tool_name = tc.name; /* borrowed from body */
    in->single_call = !tc.parallel;
    return BW_OK;
}

int request_logprobs(struct gen_input *in, bool top_needs_logprobs, struct bw_err *err)
{
    const json_t *lp = json_object_get(in->body, "logprobs"), *top = json_object_get(in->body, "top_logprobs");
    if (lp && !json_is_boolean(lp) && !json_is_null(lp))
        return bw_errf(err, BW_EINVAL, "logprobs must be a boolean");
    if (top && !json_is_null(top) &&
        (!json_is_integer(top) || json_integer_value(top) < 0 || json_integer_value(top) > LOGPROBS_TOP_MAX))
        return bw_errf(err, BW_EINVAL, "top_logprobs must be between 0 and %d", LOGPROBS_TOP_MAX);
    in->logprobs = json_is_true(lp);
    int n_top = (int)json_integer_value(top);
    if (n_top > 0 && !in->logprobs && top_needs_logprobs)
        return bw_errf(err, BW_EINVAL, "top_logprobs requires logprobs to be true");
    in->top_logprobs = in->logprobs ? n_top : 0;
    return BW_OK;
}

int request_schema(struct gen_input *in, const json_t *schema, const char *what, struct bw_err *err)
{
    struct bw_err serr;
    if (json_schema_to_gbnf(schema, &in->grammar_owned, &serr) != BW_OK)
        return bw_errf(err, serr.code == BW_ENOMEM ? BW_ENOMEM : BW_EINVAL, "%s: %s", what, serr.msg);
    in->grammar = in->grammar_owned;
    return BW_OK;
}

json_t *request_add_message(struct gen_input *in, const json_t *msg, size_t i, struct bw_err *err)
{
    int n_images = 0;
    json_t *o = chat_message_normalize(msg, i, &n_images, err);
    if (!o)
        return NULL;
    json_array_append_new(in->messages, o);
    in->n_images += n_images;
    return o;
}

/* ---- messages ---------------------------------------------------------------------------- */

static const char *canon_role(const char *role)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    for (size_t k = 0; role && k < 4; k++)
        if (!strcmp(role, roles[k]))
            return roles[k];
    return NULL;
}

/* One normalized message into p's arrays. */
static int add_message(struct gen_prepared *p, size_t *n, const json_t *o, size_t i, int n_images,
                       struct bw_err *err)
{
    const char *role = str_field(o, "role");
    const char *canon = canon_role(role);
    if (!canon)
        return bw_errf(err, BW_EINVAL, "messages[%zu].role '%s' is not one of system, user, assistant, tool", i,
                       role ? role : "");
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    p->msg_json[p->n_msg_json++] = text;
    p->msgs[(*n)++] = (struct policy_msg){.role = canon, .content = str_field(o, "content"), .n_images = n_images,
                                          .json = text};
    return BW_OK;
}

/* A tool result must answer a call made before it, as OpenAI's API insists: a `tool`
 * message needs an earlier assistant message with tool_calls, and its tool_call_id, when
 * it has one and the calls carried ids, must be one of them. (Ollama's clients send calls
 * without ids and results by tool_name: those pass.) */
static int check_tool_results(const json_t *messages, struct bw_err *err)
{
    bool any_call = false, calls_have_ids = false;
    for (size_t i = 0; i < json_array_size(messages); i++) {
        const json_t *m = json_array_get(messages, i);
        const char *role = str_field(m, "role");
        const json_t *calls = json_object_get(m, "tool_calls");
        if (role && !strcmp(role, "assistant") && json_array_size(calls)) {
            any_call = true;
            for (size_t k = 0; k < json_array_size(calls); k++)
                calls_have_ids |= json_is_string(json_object_get(json_array_get(calls, k), "id"));
            continue;
        }
        if (!role || strcmp(role, "tool"))
            continue;
        if (!any_call)
            return bw_errf(err, BW_EINVAL, "messages[%zu]: a message with role 'tool' must answer an earlier "
                                           "assistant message with 'tool_calls'", i);
        const char *id = str_field(m, "tool_call_id");
        if (!id || !*id || !calls_have_ids)
            continue;
        bool found = false;
        for (size_t j = 0; j < i && !found; j++) {
            const json_t *cs = json_object_get(json_array_get(messages, j), "tool_calls");
            for (size_t k = 0; k < json_array_size(cs) && !found; k++)
                found = !strcmp(str_field(json_array_get(cs, k), "id") ?: "", id);
        }
        if (!found)
            return bw_errf(err, BW_EINVAL, "messages[%zu].tool_call_id '%.64s' matches no earlier tool call", i, id);
    }
    return BW_OK;
}

/* The model's SYSTEM layer first when the request has no system message, then its MESSAGE
 * layer, then the request's messages; each travels to the runner whole, as JSON text. */
static int build_messages(const struct gen_input *in, const struct api_model *m, struct gen_prepared *p,
                          int *n_images, struct bw_err *err)
{
    json_t *seed_raw = m->sm->messages ? json_loads(m->sm->messages, 0, NULL) : NULL;
    size_t n_seed = json_is_array(seed_raw) ? json_array_size(seed_raw) : 0, n_req = json_array_size(in->messages);
    p->seed = json_array();
    p->msgs = calloc(n_req + n_seed + 2, sizeof *p->msgs);
    p->msg_json = calloc(n_req + n_seed + 2, sizeof *p->msg_json);
    if (!p->seed || !p->msgs || !p->msg_json) {
        json_decref(seed_raw);
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    size_t n = 0;
    bool has_system = false;
    for (size_t i = 0; i < n_req; i++)
        has_system |= !strcasecmp(str_field(json_array_get(in->messages, i), "role") ?: "", "system");
    if (!has_system && m->sm->system && *m->sm->system)
        p->msgs[n++] = (struct policy_msg){.role = "system", .content = m->sm->system};
    int rc = BW_OK;
    for (size_t i = 0; rc == BW_OK && i < n_seed; i++) {
        int imgs = 0;
        json_t *o = chat_message_normalize(json_array_get(seed_raw, i), i, &imgs, err);
        if (!o) {
            rc = err->code; /* BW_EINVAL or BW_ENOMEM */
            break;
        }
        json_array_append_new(p->seed, o);
        *n_images += imgs;
        rc = add_message(p, &n, o, i, imgs, err);
    }
    json_decref(seed_raw);
    if (rc == BW_OK)
        rc = check_tool_results(in->messages, err);
    for (size_t i = 0; rc == BW_OK && i < n_req; i++) {
        /* the request's images were counted by its parser (in->n_images): any is a 400 below */
        rc = add_message(p, &n, json_array_get(in->messages, i), i, 0, err);
    }
    p->pr.req.msgs = p->msgs;
    p->pr.req.n_msgs = n;
    return rc;
}

/* ---- prompts ----------------------------------------------------------------------------- */

int request_set_prompt(const struct gen_input *in, struct gen_prepared *p, const json_t *prompt, struct bw_err *err)
{
    struct engine_request *r = &p->pr.req;
    free(p->ids);
    p->ids = NULL;
    if (!prompt || json_is_string(prompt)) { /* the native prompt, or one of /v1's strings */
        r->prompt = prompt ? json_string_value(prompt) : in->prompt ? in->prompt : "";
        r->raw = in->raw;
        r->context = in->context;
        r->n_context = in->n_context;
    } else { /* token ids: the model's own, sent as they are (raw), before an empty prompt */
        size_t n = json_array_size(prompt);
        if (!(p->ids = malloc((n ? n : 1) * sizeof *p->ids)))
            return bw_errf(err, BW_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            p->ids[i] = (int32_t)json_integer_value(json_array_get(prompt, i));
        r->prompt = "";
        r->raw = true;
        r->context = p->ids;
        r->n_context = (int)n;
    }
    /* The request's system wins over the model's SYSTEM layer; raw prompts have none. */
    r->system = r->raw ? NULL : p->system;
    r->want_context = in->want_context && !r->raw; /* Ollama returns no context for raw prompts */
    return BW_OK;
}

/* ---- the proto_request -------------------------------------------------------------------- */

int request_prepare(const struct gen_input *in, struct api_model *m, struct gen_prepared *p, struct bw_err *err)
{
    struct engine_request *r = &p->pr.req;
    /* think true or an effort on a model whose template cannot think: Ollama's 400
     * (think:false is accepted on any model, as in Ollama). */
    if (in->think && strcmp(in->think, "false") && !(api__model_caps(m) & TEMPLATE_CAP_THINKING))
        return bw_errf(err, BW_EINVAL, "\"%.400s\" does not support thinking", in->model);
    if (in->kind == GEN_INPUT_GENERATE && in->suffix)
        return bw_errf(err, BW_EINVAL, "\"%.400s\" does not support insert", in->model);
    r->num_keep = -1;
    r->truncate = true;
    sampling_params_default(&r->sampling);
    if (api__apply_options(m, in->options, r, p->stops, &p->params_doc, err) != BW_OK) {
        err->code = err->code == BW_ENOMEM ? BW_ENOMEM : BW_EINVAL;
        return err->code;
    }
    r->render_only = in->render_only;
    r->grammar = in->grammar;
    r->think = in->think;
    r->chat_template = api__render_template(m); /* a Jinja TEMPLATE layer replaces the GGUF's */
    r->tools_json = in->tools_json;
    r->tool_choice = in->tool_choice;
    r->tool_name = in->tool_name;
    r->single_call = in->single_call;
    r->logprobs = in->logprobs;
    r->top_logprobs = in->top_logprobs;
    int n_images = in->n_images, rc;
    if (in->kind == GEN_INPUT_CHAT) {
        p->pr.type = PROTO_REQ_CHAT;
        r->kind = ENGINE_CHAT;
        rc = build_messages(in, m, p, &n_images, err);
    } else {
        p->pr.type = PROTO_REQ_GENERATE;
        r->kind = ENGINE_GENERATE;
        p->system = in->system ? in->system : m->sm->system;
        rc = request_set_prompt(in, p, in->prompts ? json_array_get(in->prompts, 0) : NULL, err);
    }
    if (rc)
        return rc;
    char msg[512];
    return request_status_err(api__refuse_images(in->model, n_images, msg, sizeof msg), msg, err);
}
