/* chat.h -- turn chat messages into one prompt string with the model's chat template.
 *
 * Uses llama_chat_apply_template(), which knows a fixed list of templates (it is not a
 * Jinja engine: no tools, no thinking). When the model's template is not one it knows,
 * or the model has none, the prompt is rendered as ChatML and *used_fallback is set so
 * the caller can log a warning once. Pure apart from libllama's template code. */
#ifndef BELLOWS_CHAT_H
#define BELLOWS_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

/* Renders msgs (role/content; images are not part of the text) with tmpl (the model's
 * template text, or NULL), appending the assistant prefix when add_assistant.
 * Returns BW_OK and a malloc'd NUL-terminated string in *out (caller frees) with its
 * length in *out_len; BW_ENOMEM on allocation failure, *out untouched. */
int chat_render(const char *tmpl, const struct policy_msg *msgs, size_t n_msgs, bool add_assistant,
                char **out, size_t *out_len, bool *used_fallback);

#endif
