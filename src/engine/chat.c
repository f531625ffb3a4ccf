/* chat.c -- see chat.h. */
#include "engine/chat.h"

#include <stdlib.h>
#include <string.h>

#include "llama.h"
#include "util/err.h"

/* llama_chat_apply_template() returns the length it needed and does not NUL-terminate
 * when the buffer is short: size from the message text, then retry once with the exact size. */
static int apply(const char *tmpl, const struct llama_chat_message *chat, size_t n, bool add_assistant,
                 char **out, size_t *out_len)
{
    size_t text = 0;
    for (size_t i = 0; i < n; i++)
        text += strlen(chat[i].content) + strlen(chat[i].role);
    int32_t cap = (int32_t)(text * 2 + 256);
    char *buf = malloc((size_t)cap + 1);
    if (!buf)
        return BW_ENOMEM;
    int32_t len = llama_chat_apply_template(tmpl, chat, n, add_assistant, buf, cap);
    if (len > cap) {
        char *bigger = realloc(buf, (size_t)len + 1);
        if (!bigger) {
            free(buf);
            return BW_ENOMEM;
        }
        buf = bigger;
        len = llama_chat_apply_template(tmpl, chat, n, add_assistant, buf, len);
    }
    if (len < 0) {
        free(buf);
        return BW_EINVAL; /* template not recognised */
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = (size_t)len;
    return BW_OK;
}

int chat_render(const char *tmpl, const struct policy_msg *msgs, size_t n_msgs, bool add_assistant,
                char **out, size_t *out_len, bool *used_fallback)
{
    struct llama_chat_message *chat = malloc((n_msgs ? n_msgs : 1) * sizeof *chat);
    if (!chat)
        return BW_ENOMEM;
    for (size_t i = 0; i < n_msgs; i++)
        chat[i] = (struct llama_chat_message){.role = msgs[i].role, .content = msgs[i].content ? msgs[i].content : ""};
    int rc = tmpl ? apply(tmpl, chat, n_msgs, add_assistant, out, out_len) : BW_EINVAL;
    bool fallback = rc == BW_EINVAL;
    if (fallback)
        rc = apply("chatml", chat, n_msgs, add_assistant, out, out_len);
    free(chat);
    if (used_fallback)
        *used_fallback = fallback;
    return rc;
}
