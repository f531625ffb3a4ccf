/* chat_template.h -- a chat rendered by the model's own Jinja template: what the template
 * is given, in transformers' conventions, and the messages of both API dialects brought
 * to those conventions.
 *
 * PURE: no I/O, no clock (the time strftime_now() shows comes in), no libllama.
 *
 * The context a template gets (transformers' apply_chat_template):
 *   messages               [{role, content, ...}]: content is text; an assistant's tool calls
 *                          are [{"type":"function","id"?,"function":{"name","arguments":{...}}}]
 *                          with arguments an object; a tool result is {"role":"tool",
 *                          "content", "name"?, "tool_call_id"?}; reasoning of an earlier
 *                          assistant turn is both `reasoning_content` and `thinking`
 *   tools                  the OpenAI function list, only when the request has tools
 *   add_generation_prompt  true for a chat that the model answers
 *   bos_token, eos_token   the vocabulary's token texts
 *   think switches         only when the request says `think`: true/false set
 *                          enable_thinking and thinking; "low"|"medium"|"high" set
 *                          reasoning_effort (and enable_thinking/thinking true) */
#ifndef BELLOWS_CHAT_TEMPLATE_H
#define BELLOWS_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy/policy.h"
#include "util/err.h"

struct chat_template;

/* Parses a Jinja chat template once. BW_EINVAL with the parse error (line) in err. */
int chat_template_parse(const char *text, struct chat_template **out, struct bw_err *err);
void chat_template_free(struct chat_template *t);
const char *chat_template_text(const struct chat_template *t);

struct chat_render_in {
    const struct policy_msg *msgs; /* role/content, and json (the whole message) when set */
    size_t n_msgs;
    json_t *const *parsed;         /* optional, parallel to msgs: msgs[i] already as an object with
                                      role and content set (NULL entries: made from msgs[i]) */
    const char *tools_json;        /* JSON array text, or NULL */
    const char *think;             /* NULL, "true", "false", "low", "medium", "high" */
    bool add_generation_prompt;
    const char *bos_token, *eos_token; /* NULL: "" */
    int64_t now_unix;
    int32_t utc_offset_s;
};

/* The template's globals for in (a new JSON object, caller decrefs), or NULL with err. */
json_t *chat_template_context(const struct chat_render_in *in, struct bw_err *err);

/* Renders. BW_OK and a malloc'd string in *out (caller frees) with its length; a template
 * error is BW_EINVAL with the template's message in err ("System role not supported"). */
int chat_template_render(const struct chat_template *t, const struct chat_render_in *in, char **out,
                         size_t *out_len, struct bw_err *err);

/* One API message (Ollama's or OpenAI's shape) brought to the template's conventions:
 * role lower-cased; content text (OpenAI's list of parts joined: text parts only, images
 * counted in *n_images); tool_calls with arguments as objects (JSON text parsed) and
 * "type":"function"; Ollama's tool_name also as name; thinking and reasoning_content
 * both set from either. Returns a new object, or NULL with a message naming the field
 * ("messages[3].tool_calls[0].function.name must be a string") in err. index is the
 * message's position, for messages. */
json_t *chat_message_normalize(const json_t *msg, size_t index, int *n_images, struct bw_err *err);

#endif
