/* chat.h -- the prompt of a model that carries no chat template at all.
 *
 * Every model with a template renders through its own Jinja template (template/
 * chat_template.h). This is the rest: llama_chat_apply_template(), which knows a fixed list
 * of formats by name ("llama3", "chatml", ...); an unknown name or NULL renders as ChatML
 * and sets *used_fallback, so the caller can log a warning once. Pure apart from
 * libllama's template code. */
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
