/* engine_prompt.c -- from a request to a queued job (see engine.h, engine_int.h): the chat
 * template it renders with, rendering (once per request, and per candidate of the chat
 * cut), tokenizing, sizing with the cuts of spec/context.md, and engine_submit; also
 * engine_tokenize / engine_detokenize, and the GGUF's templates, parsed at engine_new. */
#define _GNU_SOURCE
#include "engine/engine_int.h"
#include "util/clock.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/chat.h"
#include "util/log.h"

/* ---- tokenizing and rendering ------------------------------------------------------ */

#define NO_TOKENIZER "this model has no tokenizer: send the prompt as token ids (`context` with an empty " \
                     "prompt, or a token-id prompt for /v1/completions)"

int engine_tokenize(struct engine *e, const char *text, bool add_special, int32_t **out, int *n_out)
{
    if (e->no_vocab)
        return BW_EINVAL; /* libllama asserts (aborts the runner) on a vocabulary of type NONE */
    int len = (int)strlen(text);
    int cap = len + 8;
    llama_token *toks = malloc((size_t)cap * sizeof *toks);
    if (!toks)
        return BW_ENOMEM;
    int n = llama_tokenize(e->vocab, text, len, toks, cap, add_special, true);
    if (n < 0) {
        cap = -n;
        llama_token *bigger = realloc(toks, (size_t)cap * sizeof *toks);
        if (!bigger) {
            free(toks);
            return BW_ENOMEM;
        }
        toks = bigger;
        n = llama_tokenize(e->vocab, text, len, toks, cap, add_special, true);
    }
    if (n < 0) {
        free(toks);
        return BW_EINVAL;
    }
    *out = toks;
    *n_out = n;
    return BW_OK;
}

int engine_detokenize(struct engine *e, const int32_t *tokens, int n, char **out, size_t *len)
{
    /* libllama looks ids up with bounds-checked C++ accessors: an id out of range would
     * throw through C and end the process. */
    if (e->no_vocab)
        return BW_EINVAL; /* no token texts */
    int n_vocab = llama_vocab_n_tokens(e->vocab);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return BW_EINVAL;
    int cap = n * 8 + 16;
    char *s = malloc((size_t)cap + 1);
    if (!s)
        return BW_ENOMEM;
    int got = llama_detokenize(e->vocab, tokens, n, s, cap, false, true);
    if (got < 0) {
        cap = -got;
        char *b = realloc(s, (size_t)cap + 1);
        if (!b) {
            free(s);
            return BW_ENOMEM;
        }
        s = b;
        got = llama_detokenize(e->vocab, tokens, n, s, cap, false, true);
    }
    if (got < 0) {
        free(s);
        return BW_EINVAL;
    }
    s[got] = '\0';
    *out = s;
    *len = (size_t)got;
    return BW_OK;
}

/* ---- chat templates ---------------------------------------------------------------- */

/* The template a request renders with: the Modelfile's Jinja override (parsed once and
 * kept in a small cache), the GGUF's tool_use variant when the request has tools, or the
 * GGUF's own. *out NULL means the model has no template at all: only then does
 * llama_chat_apply_template() (ChatML) render. A GGUF template that does not parse fails
 * every chat with its parse error rather than silently rendering something else. */
static int pick_template(struct engine *e, const struct engine_request *r, const struct chat_template **out,
                         struct bw_err *err)
{
    *out = NULL;
    if (r->chat_template && *r->chat_template) {
        size_t oldest = 0;
        for (size_t i = 0; i < ENGINE_TEMPLATE_CACHE; i++) {
            struct template_slot *c = &e->overrides[i];
            if (c->t && !strcmp(chat_template_text(c->t), r->chat_template)) {
                c->used = ++e->tick;
                *out = c->t;
                return BW_OK;
            }
            if (!c->t || c->used < e->overrides[oldest].used)
                oldest = i;
        }
        struct chat_template *t;
        int rc = chat_template_parse(r->chat_template, &t, err);
        if (rc)
            return rc;
        chat_template_free(e->overrides[oldest].t);
        e->overrides[oldest] = (struct template_slot){t, ++e->tick};
        *out = t;
        return BW_OK;
    }
    if (e->tmpl_error[0])
        return bw_errf(err, BW_EINVAL, "%s", e->tmpl_error);
    *out = r->tools_json && e->jt_tools ? e->jt_tools : e->jt;
    return BW_OK;
}

/* What one request renders with; also the ud of the cut's token counter. */
struct parsed_msg {
    const char *json; /* the policy_msg's json text: the key (the cut copies messages, not texts) */
    json_t *obj;      /* parsed once per request, role and content set */
};

struct render_ctx {
    struct engine *e;
    const struct engine_request *r;
    const struct chat_template *tmpl; /* NULL: no template (ChatML through libllama) */
    int64_t now_unix;
    int32_t utc_offset_s;
    struct bw_err *err;
    struct prep_ctl *ctl;             /* off the loop: its stop conditions (NULL on the loop) */
    struct parsed_msg *parsed;        /* the request's messages, sorted by key: the cut renders
                                         many subsets, and parsing each message's JSON again
                                         was most of a render's cost */
    size_t n_parsed;
};

static int cmp_parsed(const void *a, const void *b)
{
    const char *x = ((const struct parsed_msg *)a)->json, *y = ((const struct parsed_msg *)b)->json;
    return (x > y) - (x < y);
}

static void render_ctx_parse(struct render_ctx *rc, const struct policy_msg *msgs, size_t n)
{
    rc->parsed = calloc(n ? n : 1, sizeof *rc->parsed);
    if (!rc->parsed)
        return; /* renders parse each message then: slower, not wrong */
    for (size_t i = 0; i < n; i++) {
        if (i % 1024 == 0 && engine__prep_stop(rc->ctl))
            break; /* the caller sees the stop next */
        if (!msgs[i].json)
            continue;
        json_t *o = json_loads(msgs[i].json, 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        json_object_set_new(o, "role", json_string(msgs[i].role));
        json_object_set_new(o, "content", json_string(msgs[i].content ? msgs[i].content : ""));
        rc->parsed[rc->n_parsed++] = (struct parsed_msg){msgs[i].json, o};
    }
    qsort(rc->parsed, rc->n_parsed, sizeof *rc->parsed, cmp_parsed);
}

static void render_ctx_fini(struct render_ctx *rc)
{
    for (size_t i = 0; i < rc->n_parsed; i++)
        json_decref(rc->parsed[i].obj);
    free(rc->parsed);
}

static json_t *parsed_for(const struct render_ctx *rc, const struct policy_msg *m)
{
    if (!m->json || !rc->n_parsed)
        return NULL;
    struct parsed_msg key = {m->json, NULL};
    const struct parsed_msg *hit = bsearch(&key, rc->parsed, rc->n_parsed, sizeof key, cmp_parsed);
    return hit ? hit->obj : NULL;
}

static void render_ctx_init(struct render_ctx *rc, struct engine *e, const struct engine_request *r,
                            const struct chat_template *t, struct prep_ctl *ctl, struct bw_err *err)
{
    time_t now = (time_t)(clock_real_ns() / 1000000000);
    struct tm tm;
    localtime_r(&now, &tm);
    *rc = (struct render_ctx){.e = e, .r = r, .tmpl = t, .now_unix = (int64_t)now,
                              .utc_offset_s = (int32_t)tm.tm_gmtoff, .err = err, .ctl = ctl};
    if (t && r->kind == ENGINE_CHAT)
        render_ctx_parse(rc, r->msgs, r->n_msgs);
}

static bool is_cut_marker(const struct policy_msg *m)
{
    return !m->json && m->content && !strcmp(m->content, POLICY_CUT_MARKER);
}

static int render(struct render_ctx *rc, const struct policy_msg *msgs, size_t n, char **out, size_t *len)
{
    struct engine *e = rc->e;
    if (!rc->tmpl) {
        /* (engine__submit_begin logged the fallback: this may run off the loop) */
        bool fallback = false;
        int code = chat_render(NULL, msgs, n, true, out, len, &fallback);
        return code ? bw_errf(rc->err, code, "could not render the chat") : BW_OK;
    }
    json_t **parsed = rc->n_parsed ? malloc((n ? n : 1) * sizeof *parsed) : NULL;
    for (size_t i = 0; parsed && i < n; i++)
        parsed[i] = parsed_for(rc, &msgs[i]);
    struct chat_render_in in = {.msgs = msgs, .n_msgs = n, .parsed = parsed, .tools_json = rc->r->tools_json,
                                .think = rc->r->think,
                                .add_generation_prompt = true, .bos_token = e->bos_text, .eos_token = e->eos_text,
                                .now_unix = rc->now_unix, .utc_offset_s = rc->utc_offset_s};
    struct bw_err why;
    int code = chat_template_render(rc->tmpl, &in, out, len, &why);
    if (code == BW_EINVAL) {
        /* A cut chat carries the marker as a system message; a template that refuses system
         * messages (Gemma 2) or one in the middle renders the cut chat without it. */
        struct policy_msg *kept = malloc((n ? n : 1) * sizeof *kept);
        size_t k = 0;
        for (size_t i = 0; kept && i < n; i++)
            if (!is_cut_marker(&msgs[i]))
                kept[k++] = msgs[i];
        if (kept && k < n) {
            in.msgs = kept;
            in.n_msgs = k;
            in.parsed = NULL; /* parallel to msgs: rare path, parse again */
            struct bw_err again;
            if (chat_template_render(rc->tmpl, &in, out, len, &again) == BW_OK)
                code = BW_OK;
        }
        free(kept);
    }
    free(parsed);
    if (code)
        return bw_errf(rc->err, code, "chat template error: %s", why.msg);
    return BW_OK;
}

/* Tokenizes a rendered chat. A template that prints bos_token itself must not get a second
 * BOS from the tokenizer: when both are there, the tokenizer's goes. */
static int tokenize_rendered(struct engine *e, struct prep_ctl *ctl, const char *text, int32_t **toks, int *n)
{
    int rc = engine__tokenize_long(e, text, true, ctl, toks, n);
    llama_token bos = llama_vocab_bos(e->vocab);
    if (rc == BW_OK && *n >= 2 && bos != LLAMA_TOKEN_NULL && (*toks)[0] == bos && (*toks)[1] == bos) {
        memmove(*toks, *toks + 1, (size_t)(*n - 1) * sizeof **toks);
        (*n)--;
    }
    return rc;
}

/* Rendered + tokenized, with images priced: the counter policy_chat_cut() measures with. */
#define IMAGE_TOKENS 768 /* the token estimate of one image (no vision encoder yet) */

static int count_rendered(void *ud, const struct policy_msg *msgs, size_t n)
{
    struct render_ctx *rc = ud;
    if (engine__prep_stop(rc->ctl))
        return BW_EBUSY; /* cancelled or out of time: the cut ends, its caller says why */
    char *text;
    size_t len;
    int code = render(rc, msgs, n, &text, &len);
    if (code == BW_EINVAL)
        for (size_t i = 0; i < n; i++)
            if (is_cut_marker(&msgs[i]))
                return INT_MAX / 4; /* the template refuses this cut (roles must alternate...): too
                                       big, so the cut's search tries another one */
    if (code)
        return code;
    int32_t *toks;
    int n_tok;
    code = tokenize_rendered(rc->e, rc->ctl, text, &toks, &n_tok);
    free(text);
    if (code)
        return code;
    free(toks);
    for (size_t i = 0; i < n; i++)
        n_tok += msgs[i].n_images * IMAGE_TOKENS;
    return n_tok;
}

/* Each message's tokens on its own (content and images), for policy_chat_cut_est: one
 * pass over the chat's text, so that the cut's probes are lists of about the budget's size
 * instead of renders of half the chat (issue 13: a 10 MB chat is cut in seconds). NULL when
 * out of memory (the cut then bisects). */
static int *message_estimates(struct engine *e, const struct policy_msg *msgs, size_t n, struct prep_ctl *ctl)
{
    int *est = malloc((n ? n : 1) * sizeof *est);
    if (!est)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i % 512 == 0 && engine__prep_stop(ctl)) {
            free(est);
            return NULL; /* the cut's first count sees the stop */
        }
        const char *c = msgs[i].content ? msgs[i].content : "";
        size_t len = strlen(c);
        /* With no room for tokens libllama returns minus the count it needs. */
        int t = len && len < INT_MAX ? llama_tokenize(e->vocab, c, (int32_t)len, NULL, 0, false, false) : 0;
        est[i] = (t < 0 ? -t : t) + msgs[i].n_images * IMAGE_TOKENS;
    }
    return est;
}

/* ---- submit: sizing once per request ----------------------------------------------- */

static uint32_t pick_seed(struct engine *e, int64_t seed)
{
    if (seed >= 0)
        return (uint32_t)seed;
    e->seed_state = e->seed_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(e->seed_state >> 33);
}

static void cut_raw(struct engine *e, struct job *j, int num_keep, int num_predict);

/* Token ids from a client (a `context`, an embedding input) must be in the vocabulary:
 * libllama would read out of bounds, or throw through C, on any other id. */
static int check_tokens(struct engine *e, const int32_t *toks, int n, const char *what, struct bw_err *err)
{
    int n_vocab = llama_vocab_n_tokens(e->vocab);
    for (int i = 0; i < n; i++)
        if (toks[i] < 0 || toks[i] >= n_vocab)
            return bw_errf(err, BW_EINVAL, "%s[%d]: token id %d is outside the model's vocabulary (%d tokens)", what,
                           i, (int)toks[i], n_vocab);
    return BW_OK;
}

/* Puts r->context in front of j->prompt (a generate request's rendered, tokenized prompt).
 * The prompt is a continuation, not the start of a sequence: its leading BOS goes, as when
 * Ollama detokenizes the context in front of the prompt and tokenizes the whole once. The
 * tokens are the client's own, unchanged, so the prefix cache finds the sequence that
 * produced them (its KV holds exactly these tokens). */
static int prepend_context(struct engine *e, const struct engine_request *r, struct job *j, struct bw_err *err)
{
    int rc = check_tokens(e, r->context, r->n_context, "context", err);
    if (rc)
        return rc;
    llama_token bos = llama_vocab_bos(e->vocab);
    int skip = j->n_prompt > 0 && bos != LLAMA_TOKEN_NULL && j->prompt[0] == bos ? 1 : 0;
    int n = r->n_context + j->n_prompt - skip;
    llama_token *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    if (!p)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    memcpy(p, r->context, (size_t)r->n_context * sizeof *p);
    memcpy(p + r->n_context, j->prompt + skip, (size_t)(j->n_prompt - skip) * sizeof *p);
    free(j->prompt);
    j->prompt = p;
    j->n_prompt = n;
    return BW_OK;
}

/* Tokenizes a chat into j->prompt, cutting it at Cmax when needed: by the chat rule, or
 * for a templated generate (raw_cut) by the raw-prompt rule, as for any generate request
 * (spec/context.md rules 5 and 6). */
static int size_chat_rendered(struct engine *e, struct render_ctx *rctx, const struct engine_request *r,
                              const struct policy_msg *msgs, size_t n, struct job *j, int num_predict,
                              int raw_cut_keep, bool raw_cut, char **rendered, struct bw_err *err);

static int size_chat(struct engine *e, const struct engine_request *r, const struct chat_template *t,
                     struct prep_ctl *ctl, const struct policy_msg *msgs, size_t n, struct job *j, int num_predict,
                     int raw_cut_keep, bool raw_cut, char **rendered, struct bw_err *err)
{
    struct render_ctx rctx;
    render_ctx_init(&rctx, e, r, t, ctl, err);
    int rc = size_chat_rendered(e, &rctx, r, msgs, n, j, num_predict, raw_cut_keep, raw_cut, rendered, err);
    render_ctx_fini(&rctx);
    return rc;
}

static int size_chat_rendered(struct engine *e, struct render_ctx *rctx, const struct engine_request *r,
                              const struct policy_msg *msgs, size_t n, struct job *j, int num_predict,
                              int raw_cut_keep, bool raw_cut, char **rendered, struct bw_err *err)
{
    size_t len;
    if (engine__prep_stop(rctx->ctl))
        return bw_errf(err, BW_EBUSY, "preparation stopped");
    int rc = render(rctx, msgs, n, rendered, &len);
    if (rc)
        return rc;
    if (engine__prep_stop(rctx->ctl))
        return bw_errf(err, BW_EBUSY, "preparation stopped");
    rc = tokenize_rendered(e, rctx->ctl, *rendered, &j->prompt, &j->n_prompt);
    if (rc)
        return bw_errf(err, rc, "could not tokenize the prompt");
    if (r->kind == ENGINE_GENERATE && r->n_context > 0 && (rc = prepend_context(e, r, j, err)))
        return rc;
    int L = j->n_prompt;
    for (size_t i = 0; i < n; i++)
        L += msgs[i].n_images * IMAGE_TOKENS;
    int room = policy_room(L, num_predict, e->cmax);
    j->st.prompt_tokens = L;
    j->n_reserved = policy_reservation(L, num_predict, e->cmax);
    if (!policy_must_cut(L, room, e->cmax))
        return BW_OK;
    if (raw_cut) {
        cut_raw(e, j, raw_cut_keep, num_predict);
        return BW_OK;
    }

    struct policy_msg *kept = malloc((n + 1) * sizeof *kept);
    int *idx = malloc((n + 1) * sizeof *idx);
    struct policy_chat_cut cut = {.msgs = kept, .idx = idx};
    int *est = kept && idx ? message_estimates(e, msgs, n, rctx->ctl) : NULL;
    rc = kept && idx ? policy_chat_cut_est(msgs, n, e->cmax, room, est, L, count_rendered, rctx, &cut, err)
                     : bw_errf(err, BW_ENOMEM, "out of memory");
    free(est);
    if (rc == BW_OK) {
        free(*rendered);
        free(j->prompt);
        j->prompt = NULL;
        *rendered = NULL;
        rc = render(rctx, cut.msgs, cut.n_kept, rendered, &len);
        if (rc == BW_OK && (rc = tokenize_rendered(e, rctx->ctl, *rendered, &j->prompt, &j->n_prompt)))
            bw_errf(err, rc, "could not tokenize the cut chat");
        j->st.truncated_messages = (int)cut.n_dropped;
        j->st.truncated_tokens = L - cut.n_tokens_after;
    }
    free(kept);
    free(idx);
    return rc;
}

/* The raw-prompt cut: keep num_keep head tokens and the newest ones. */
static void cut_raw(struct engine *e, struct job *j, int num_keep, int num_predict)
{
    int L = j->n_prompt;
    int room = policy_room(L, num_predict, e->cmax);
    if (!policy_must_cut(L, room, e->cmax))
        return;
    struct policy_raw_cut cut;
    if (policy_raw_cut(L, num_keep, policy_prompt_budget(e->cmax, room), &cut, NULL) != BW_OK)
        return;
    memmove(j->prompt + cut.n_head, j->prompt + cut.tail_start, (size_t)(L - cut.tail_start) * sizeof *j->prompt);
    j->n_prompt = L - cut.n_dropped;
    j->st.truncated_tokens = cut.n_dropped;
}

/* A token prompt: the tokens in `context`, no text. Raw: used as they are (what rendering
 * "" and dropping its BOS gave). A model without a vocabulary takes only these (and
 * embedding token inputs): any text would need its tokenizer. */
static bool is_token_prompt(const struct engine *e, const struct engine_request *r)
{
    bool no_text = (!r->prompt || !*r->prompt) && (!r->system || !*r->system);
    return r->kind == ENGINE_GENERATE && r->n_context > 0 && no_text && (r->raw || e->no_vocab);
}

/* Whether the request renders through a chat template (size_chat). */
static bool renders_chat(const struct engine *e, const struct engine_request *r)
{
    return !is_token_prompt(e, r) && (r->kind == ENGINE_CHAT || (r->kind == ENGINE_GENERATE && !r->raw));
}

int engine__submit_begin(struct engine *e, const struct engine_request *r, bool private_template,
                         struct job **out, const struct chat_template **tmpl, struct chat_template **own,
                         struct bw_err *err)
{
    *out = NULL;
    *tmpl = NULL;
    *own = NULL;
    if (engine__find_job(e, r->req_id) || engine__prep_has(e, r->req_id))
        return bw_errf(err, BW_EBUSY, "request %llu is already in flight", (unsigned long long)r->req_id);
    bool token_prompt = is_token_prompt(e, r);
    if (e->no_vocab && !token_prompt && !(r->kind == ENGINE_EMBED && r->n_input_tokens > 0))
        return bw_errf(err, BW_EINVAL, NO_TOKENIZER);
    if (e->no_vocab && r->grammar)
        return bw_errf(err, BW_EINVAL, "this model has no tokenizer: a grammar needs one");
    if (!token_prompt && r->kind == ENGINE_CHAT && r->n_msgs == 0)
        return bw_errf(err, BW_EINVAL, "messages are empty");
    if (renders_chat(e, r)) {
        int rc;
        if (private_template && r->chat_template && *r->chat_template) {
            /* Off the loop the cache's entry could be evicted by the next request: this one
             * parses its own (milliseconds, against the seconds such a request takes). */
            if ((rc = chat_template_parse(r->chat_template, own, err)))
                return rc;
            *tmpl = *own;
        } else if ((rc = pick_template(e, r, tmpl, err))) {
            return rc;
        }
        if (!*tmpl && !e->warned_fallback) {
            LOG(LOG_WARN, "engine", "the model has no chat template; rendering chats as ChatML");
            e->warned_fallback = true;
        }
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        chat_template_free(*own);
        *own = NULL;
        return bw_errf(err, BW_ENOMEM, "out of memory");
    }
    j->req_id = r->req_id;
    j->kind = r->kind;
    j->slot = -1;
    j->out_idx = -1;
    j->num_predict = r->num_predict > 0 ? r->num_predict : 0;
    j->truncate = r->truncate;
    j->want_context = r->want_context && r->kind == ENGINE_GENERATE;
    j->t_submit = clock_mono_ns();
    j->st.context_max = e->cmax;
    *out = j;
    return BW_OK;
}

/* An embedding's prompt, cut to Cmax when it may be (policy_embed_cut). */
static int size_embed(struct engine *e, const struct engine_request *r, struct job *j, struct bw_err *err)
{
    int keep;
    j->st.prompt_tokens = j->n_prompt;
    int rc = policy_embed_cut(j->n_prompt, e->cmax, r->truncate, &keep, err);
    if (rc == BW_OK) {
        j->st.truncated_tokens = j->n_prompt - keep;
        j->n_prompt = keep;
        j->n_reserved = keep;
    }
    return rc;
}

int engine__prepare(struct engine *e, const struct engine_request *r, const struct chat_template *tmpl,
                    struct job *j, struct prep_ctl *ctl, char **rendered, struct bw_err *err)
{
    *rendered = NULL;
    int rc;
    if (is_token_prompt(e, r)) {
        *rendered = strdup("");
        j->prompt = malloc((size_t)r->n_context * sizeof *j->prompt);
        rc = !*rendered || !j->prompt ? bw_errf(err, BW_ENOMEM, "out of memory")
                                      : check_tokens(e, r->context, r->n_context, "context", err);
        if (rc == BW_OK) {
            memcpy(j->prompt, r->context, (size_t)r->n_context * sizeof *j->prompt);
            j->n_prompt = r->n_context;
            j->st.prompt_tokens = j->n_prompt;
            j->n_reserved = policy_reservation(j->n_prompt, r->num_predict, e->cmax);
            cut_raw(e, j, r->num_keep, r->num_predict);
        }
    } else if (r->kind == ENGINE_CHAT) {
        rc = size_chat(e, r, tmpl, ctl, r->msgs, r->n_msgs, j, r->num_predict, 0, false, rendered, err);
    } else if (r->kind == ENGINE_GENERATE && !r->raw) {
        struct policy_msg m[2];
        size_t n = 0;
        if (r->system && *r->system)
            m[n++] = (struct policy_msg){.role = "system", .content = r->system};
        m[n++] = (struct policy_msg){.role = "user", .content = r->prompt ? r->prompt : ""};
        rc = size_chat(e, r, tmpl, ctl, m, n, j, r->num_predict, r->num_keep, true, rendered, err);
    } else if (r->kind == ENGINE_EMBED && r->n_input_tokens > 0) {
        /* Token ids (OpenAI's embeddings input): used as they are. */
        *rendered = strdup("");
        j->prompt = malloc((size_t)r->n_input_tokens * sizeof *j->prompt);
        rc = !*rendered || !j->prompt ? bw_errf(err, BW_ENOMEM, "out of memory")
                                      : check_tokens(e, r->input_tokens, r->n_input_tokens, "input", err);
        if (rc == BW_OK) {
            memcpy(j->prompt, r->input_tokens, (size_t)r->n_input_tokens * sizeof *j->prompt);
            j->n_prompt = r->n_input_tokens;
            rc = size_embed(e, r, j, err);
        }
    } else {
        *rendered = strdup(r->prompt ? r->prompt : "");
        rc = *rendered ? engine__tokenize_long(e, *rendered, true, ctl, &j->prompt, &j->n_prompt) : BW_ENOMEM;
        if (rc) {
            bw_errf(err, rc, "could not tokenize the prompt");
        } else if (r->kind == ENGINE_GENERATE && r->n_context > 0 &&
                   (rc = prepend_context(e, r, j, err)) != BW_OK) {
            /* err says why */
        } else if (r->kind == ENGINE_EMBED) {
            rc = size_embed(e, r, j, err);
        } else {
            j->st.prompt_tokens = j->n_prompt;
            j->n_reserved = policy_reservation(j->n_prompt, r->num_predict, e->cmax);
            cut_raw(e, j, r->num_keep, r->num_predict);
        }
    }
    if (rc == BW_OK && j->n_prompt == 0)
        rc = bw_errf(err, BW_EINVAL, "the prompt is empty");
    if (rc) {
        free(*rendered);
        *rendered = NULL;
    }
    return rc;
}

int engine__submit_finish(struct engine *e, const struct engine_request *r, struct job *j, char *rendered,
                          struct bw_err *err)
{
    int rc;
    j->st.context_length = j->n_reserved;
    j->st.prompt_eval_count = j->n_prompt;
    LOG_REQ(LOG_DEBUG, r->req_id, "engine", "sized L=%d D=%d Cmax=%d pool=%d prompt=%d cut_messages=%d cut_tokens=%d",
            j->st.prompt_tokens, j->n_reserved, e->cmax, e->pool_cells, j->n_prompt, j->st.truncated_messages,
            j->st.truncated_tokens);

    if (r->render_only) {
        if ((j->st.truncated_tokens && !j->st.truncated_messages) || r->n_context > 0) {
            /* A raw cut happened on tokens, or a context came first: show what the model
             * would really see. */
            char *text;
            size_t len;
            if (engine_detokenize(e, j->prompt, j->n_prompt, &text, &len) == BW_OK) {
                free(rendered);
                rendered = text;
            }
        }
        j->st.done_reason = "render";
        engine__emit_simple(e, j->req_id, ENGINE_EV_RENDERED, rendered, strlen(rendered), &j->st);
        engine__emit_simple(e, j->req_id, ENGINE_EV_DONE, NULL, 0, &j->st);
        free(rendered);
        engine__job_free(j);
        return BW_OK;
    }
    engine__job_toolcall_init(e, j, r);
    engine__job_reasoning_init(e, j, r, rendered);
    engine__job_call_grammar(j, r);
    free(rendered);
    rendered = NULL;

    if (r->kind != ENGINE_EMBED) {
        const char *grammar = r->grammar ? r->grammar : e->no_vocab ? NULL : j->call_grammar;
        j->chain = engine__job_sampler(e, j, r, pick_seed(e, r->sampling.seed));
        if (!j->chain) {
            rc = grammar ? bw_errf(err, BW_EINVAL, "the grammar does not parse")
                            : bw_errf(err, BW_ENOMEM, "could not create the sampler");
            goto fail;
        }
    }
    if ((rc = textout_init(&j->out, r->stop, r->n_stop)) != BW_OK) {
        bw_errf(err, rc, "invalid stop strings");
        goto fail;
    }
    j->logprobs = r->logprobs && r->kind != ENGINE_EMBED && !e->no_vocab;
    j->top_logprobs = r->top_logprobs; /* logprobs_compute clamps it to 0..LOGPROBS_TOP_MAX */
    if (e->queue_tail)
        e->queue_tail->next = j;
    else
        e->queue_head = j;
    e->queue_tail = j;
    return BW_OK;

fail:
    engine__job_free(j);
    return rc;
}

int engine_submit(struct engine *e, const struct engine_request *r, struct bw_err *err)
{
    struct job *j;
    const struct chat_template *t;
    struct chat_template *own;
    int rc = engine__submit_begin(e, r, false, &j, &t, &own, err);
    if (rc)
        return rc;
    char *rendered;
    rc = engine__prepare(e, r, t, j, NULL, &rendered, err);
    if (rc) {
        engine__job_free(j);
        return rc;
    }
    return engine__submit_finish(e, r, j, rendered, err);
}

/* The GGUF's templates, parsed once for the life of the runner. */
void engine__load_templates(struct engine *e)
{
    e->tmpl = llama_model_chat_template(e->model, NULL);
    struct bw_err err;
    if (e->tmpl && chat_template_parse(e->tmpl, &e->jt, &err) != BW_OK) {
        snprintf(e->tmpl_error, sizeof e->tmpl_error, "the model's chat template does not parse: %.200s", err.msg);
        LOG(LOG_WARN, "engine", "%s", e->tmpl_error);
    }
    const char *tools = llama_model_chat_template(e->model, "tool_use");
    if (tools && chat_template_parse(tools, &e->jt_tools, &err) != BW_OK)
        LOG(LOG_WARN, "engine", "the model's tool_use chat template does not parse (%s); using its default one",
            err.msg);
    llama_token bos = llama_vocab_bos(e->vocab), eos = llama_vocab_eos(e->vocab);
    int n_vocab = llama_vocab_n_tokens(e->vocab);
    if (e->no_vocab || bos >= n_vocab)
        bos = LLAMA_TOKEN_NULL; /* llama_vocab_get_text asserts / throws on these */
    if (e->no_vocab || eos >= n_vocab)
        eos = LLAMA_TOKEN_NULL;
    e->bos_text = bos != LLAMA_TOKEN_NULL ? llama_vocab_get_text(e->vocab, bos) : "";
    e->eos_text = eos != LLAMA_TOKEN_NULL ? llama_vocab_get_text(e->vocab, eos) : "";
    engine__tok_init(e);
}
