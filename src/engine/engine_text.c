/* engine_text.c -- a job's generated text as events (see engine_int.h): split into
 * thinking and answer (template/reasoning.h) for thinking templates, the answer split into
 * content and tool calls (template/toolcall.h) for requests with tools; and, when asked,
 * each token's log-probability next to its text (logprobs.h). */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "engine/callgate.h"
#include "engine/sampling.h"
#include "grammar/gbnf_compose.h"
#include "util/log.h"

/* ---- reasoning: a job's text, split into thinking and answer ---------------------------- */

/* Decides once per request, from the template that rendered the prompt and the prompt
 * itself, whether its text is split (template/reasoning.h). Raw prompts never are. */
void engine__job_reasoning_init(struct engine *e, struct job *j, const struct engine_request *r, const char *rendered)
{
    if (r->kind == ENGINE_EMBED || (r->kind == ENGINE_GENERATE && r->raw))
        return;
    /* The same choice as pick_template(): a Modelfile TEMPLATE replaces the GGUF's. */
    const char *tmpl = r->chat_template && *r->chat_template ? r->chat_template : e->tmpl;
    reasoning_detect(tmpl, rendered, r->think, &j->think_cfg);
    j->think_cfg.calls = j->calls; /* Harmony: function calls go on to the call parser */
    j->split = j->think_cfg.format != REASONING_NONE;
    if (j->split)
        reasoning_init(&j->think, &j->think_cfg);
}

struct text_sink {
    struct engine *e;
    struct job *j;
};

static void emit_answer(struct engine *e, struct job *j, const char *text, size_t len);

static void emit_split_piece(void *ud, bool thinking, const char *text, size_t len)
{
    struct text_sink *k = ud;
    if (!thinking) {
        emit_answer(k->e, k->j, text, len);
        return;
    }
    struct engine_event ev = {.req_id = k->j->req_id, .type = ENGINE_EV_TEXT, .text = text, .len = len,
                              .thinking = true};
    k->e->emit(k->e->emit_ud, &ev);
}

/* ---- tool calls: a job's answer, split into content and calls ---------------------------- */

/* Decides once per request whether its answer is parsed for tool calls: only with tools,
 * in the format of the template that rendered the prompt (the tool_use variant when it
 * was picked). Must run before engine__job_reasoning_init (Harmony's calls come through it). */
void engine__job_toolcall_init(struct engine *e, struct job *j, const struct engine_request *r)
{
    if (!r->tools_json || r->kind == ENGINE_EMBED || (r->kind == ENGINE_GENERATE && r->raw) ||
        (r->tool_choice && !strcmp(r->tool_choice, "none")))
        return;
    const char *tmpl = r->chat_template && *r->chat_template ? r->chat_template
                       : e->jt_tools                         ? chat_template_text(e->jt_tools)
                                                             : e->tmpl;
    toolcall_detect(tmpl, &j->tc_cfg);
    toolcall_init(&j->tc, &j->tc_cfg, r->tools_json);
    j->calls = true;
    LOG_REQ(LOG_DEBUG, r->req_id, "engine", "tool calls: format=%s tool_choice=%s%s%s", j->tc_cfg.name,
            r->tool_choice ? r->tool_choice : "auto", r->tool_name ? " name=" : "", r->tool_name ? r->tool_name : "");
}

/* The grammar a job's sampler gets besides the request's own (j->call_grammar):
 * - tool_choice "required" / "function": calls in the template's format (one for a named
 *   function or parallel_tool_calls false, else one to TOOLCALL_MAX_CALLS), their arguments
 *   held to the tool's schema (toolcall_grammar), unless the request brings its own grammar
 *   (JSON mode, a schema). A thinking model reasons first where callgate_forced_grammar
 *   admits it (a block the prompt opened, a Harmony analysis message), bounded as a format's.
 * - tool_choice "auto" (or none given) with tools and no grammar of the request's: the same
 *   calls as a lazy grammar that starts when the model opens a call in its answer
 *   (toolcall_trigger; never in its reasoning: callgate.h), so that an opened call is valid
 *   for its schema; one call only when parallel_tool_calls is false.
 * - a request grammar (format / response_format) on a prompt that opened a reasoning
 *   block: the reasoning first, up to its close marker, then the request's grammar
 *   (gbnf_after_marker), so a thinking model thinks before it answers.
 * Formats the call grammar does not write leave the model to decide. Runs after
 * engine__job_reasoning_init. */
void engine__job_call_grammar(struct job *j, const struct engine_request *r)
{
    const struct reasoning_cfg *t = &j->think_cfg;
    const char *close = j->split && t->format == REASONING_TAGS && t->starts_inside ? t->close : NULL;
    if (r->grammar) {
        if (close && *close) {
            j->call_grammar = gbnf_after_marker(r->grammar, close, ENGINE_THINK_PIECES);
            LOG_REQ(LOG_DEBUG, r->req_id, "engine", "grammar: %s", j->call_grammar ? "after the reasoning block"
                                                                             : "from the first token");
        }
        return;
    }
    if (!j->calls)
        return;
    if (!r->tool_choice || !strcmp(r->tool_choice, "auto")) {
        j->call_grammar = toolcall_grammar_auto(&j->tc_cfg, r->tools_json, r->single_call ? 1 : TOOLCALL_MAX_CALLS);
        LOG_REQ(LOG_DEBUG, r->req_id, "engine", "tool_choice auto: %s",
                j->call_grammar ? "a lazy grammar holds an opened call" : "this format has no call grammar yet");
        return;
    }
    bool function = !strcmp(r->tool_choice, "function");
    if (!function && strcmp(r->tool_choice, "required"))
        return;
    /* A named function is one call; "required" with parallel calls allowed, one or more.
     * A thinking model may reason first (callgate_forced_grammar); where that cannot be
     * composed, a block the prompt opened is closed at once. */
    j->call_grammar = toolcall_grammar(&j->tc_cfg, r->tools_json, function ? r->tool_name : NULL, NULL,
                                       function || r->single_call ? 1 : TOOLCALL_MAX_CALLS);
    char *first = j->split && j->call_grammar ? callgate_forced_grammar(j->call_grammar, t, ENGINE_THINK_PIECES) : NULL;
    if (first) {
        free(j->call_grammar);
        j->call_grammar = first;
    } else if (close && *close && j->call_grammar) {
        free(j->call_grammar);
        j->call_grammar = toolcall_grammar(&j->tc_cfg, r->tools_json, function ? r->tool_name : NULL, close,
                                           function || r->single_call ? 1 : TOOLCALL_MAX_CALLS);
    }
    LOG_REQ(LOG_DEBUG, r->req_id, "engine", "tool_choice %s: %s", r->tool_choice,
            j->call_grammar ? "a grammar holds the model to a call" : "this format has no call grammar yet");
}

/* The job's sampler chain: with j->call_grammar when there is one (and a vocabulary), else
 * the request's grammar; lazily for tool_choice "auto". NULL when it cannot be made. */
struct llama_sampler *engine__job_sampler(struct engine *e, struct job *j, const struct engine_request *r,
                                          uint32_t seed)
{
    const char *grammar = !e->no_vocab && j->call_grammar ? j->call_grammar : r->grammar;
    bool lazy = grammar && grammar == j->call_grammar && !r->grammar &&
                (!r->tool_choice || !strcmp(r->tool_choice, "auto"));
    if (!lazy)
        return sampling_chain_new(&r->sampling, e->vocab, seed, e->cmax, grammar);
    const char *word = NULL;
    char *pattern = toolcall_trigger(&j->tc_cfg, &word);
    llama_token tok[2];
    size_t n_tok = 0;
    if (word) { /* a marker that is one control token of the vocabulary triggers as that token */
        int n = llama_tokenize(e->vocab, word, (int32_t)strlen(word), tok, 2, false, true);
        if (n == 1 && llama_vocab_get_attr(e->vocab, tok[0]) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED))
            n_tok = 1;
    }
    const char *pats[1] = {pattern};
    /* The grammar is fed the answer only: a marker the model writes in its reasoning does
     * not fire it (callgate.h). */
    struct llama_sampler *chain =
        pattern ? sampling_chain_new_gated(&r->sampling, e->vocab, seed, e->cmax, grammar, pats, 1, tok, n_tok,
                                           j->split ? &j->think_cfg : NULL)
                : NULL;
    free(pattern);
    if (!chain) { /* the lazy grammar is ours: without it the model still decides */
        LOG_REQ(LOG_WARN, r->req_id, "engine", "tool_choice auto: the lazy call grammar was not taken");
        chain = sampling_chain_new(&r->sampling, e->vocab, seed, e->cmax, NULL);
    }
    return chain;
}

static void emit_call_content(void *ud, const char *text, size_t len)
{
    struct text_sink *k = ud;
    engine__emit_simple(k->e, k->j->req_id, ENGINE_EV_TEXT, text, len, NULL);
}

/* One parsed call as the event's JSON object {"name","arguments"[,"id"]}. */
static void emit_call(void *ud, const struct toolcall *c)
{
    struct text_sink *k = ud;
    json_t *o = json_object();
    json_t *args = json_loads(c->arguments, 0, NULL);
    json_object_set_new(o, "name", json_string(c->name));
    json_object_set_new(o, "arguments", args ? args : json_object());
    char minted[10];
    const char *id = c->id;
    if (!id && k->j->tc_cfg.format == TOOLCALL_MISTRAL) {
        /* Mistral's templates refuse a call id that is not 9 alphanumerics when the call is
         * fed back: a call the model wrote without one gets such an id here. */
        uint64_t h = (k->j->req_id ^ 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull + (uint64_t)c->index;
        for (int i = 0; i < 9; i++, h = h * 6364136223846793005ull + 1442695040888963407ull)
            minted[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(h >> 33) % 62];
        minted[9] = '\0';
        id = minted;
    }
    if (id)
        json_object_set_new(o, "id", json_string(id));
    char *text = toolcall_json_dump(o);
    json_decref(o);
    if (!text) { /* out of memory: the call is lost, the request goes on */
        LOG_REQ(LOG_WARN, k->j->req_id, "engine", "out of memory: tool call %d dropped", c->index);
        return;
    }
    k->j->st.tool_calls++;
    struct engine_event ev = {.req_id = k->j->req_id, .type = ENGINE_EV_TOOL_CALL, .text = text,
                              .len = strlen(text), .call_index = c->index};
    k->e->emit(k->e->emit_ud, &ev);
    free(text);
}

/* The answer (after stop strings and the reasoning split): as it is, or through the
 * job's call parser. */
static void emit_answer(struct engine *e, struct job *j, const char *text, size_t len)
{
    if (!j->calls) {
        engine__emit_simple(e, j->req_id, ENGINE_EV_TEXT, text, len, NULL);
        return;
    }
    struct text_sink k = {e, j};
    struct toolcall_sink sink = {emit_call_content, emit_call, &k};
    toolcall_feed(&j->tc, text, len, &sink);
}

static void emit_answer_end(struct engine *e, struct job *j)
{
    struct text_sink k = {e, j};
    struct toolcall_sink sink = {emit_call_content, emit_call, &k};
    if (j->calls)
        toolcall_finish(&j->tc, &sink);
}

/* ---- a job's text ------------------------------------------------------------------------ */

/* Emits generated text (after stop strings): through the job's splitter when it thinks,
 * its answer part through the call parser when it has tools. */
void engine__emit_text(struct engine *e, struct job *j, const char *text, size_t len)
{
    if (!j->split) {
        emit_answer(e, j, text, len);
        return;
    }
    struct text_sink k = {e, j};
    reasoning_feed(&j->think, text, len, emit_split_piece, &k);
}

/* The job's text ended: releases what the splitter and the call parser still hold. */
void engine__emit_text_end(struct engine *e, struct job *j)
{
    struct text_sink k = {e, j};
    if (j->split)
        reasoning_finish(&j->think, emit_split_piece, &k);
    emit_answer_end(e, j);
}

/* ---- log-probabilities ---------------------------------------------------------------- */

/* A token's text as an entry shows it: special tokens printed (an alternative may be
 * <|im_end|>). Into buf, or *heap when longer. */
static size_t entry_piece(struct engine *e, llama_token tok, char *buf, int cap, char **heap)
{
    *heap = NULL;
    int n = llama_token_to_piece(e->vocab, tok, buf, cap, 0, true);
    if (n >= 0)
        return (size_t)n;
    if (!(*heap = malloc((size_t)-n)))
        return 0;
    n = llama_token_to_piece(e->vocab, tok, *heap, -n, 0, true);
    return n > 0 ? (size_t)n : 0;
}

void engine__job_logprob(struct engine *e, struct job *j, llama_token tok, int n_piece)
{
    const float *logits = llama_get_logits_ith(e->ctx, j->out_idx);
    int n_vocab = llama_vocab_n_tokens(e->vocab);
    if (!logits || tok < 0 || tok >= n_vocab)
        return;
    struct logprob_alt alt[LOGPROBS_TOP_MAX];
    int n_alt = 0;
    float lp = logprobs_compute(logits, n_vocab, tok, j->top_logprobs, alt, &n_alt);

    char buf[LOGPROBS_TOP_MAX + 1][64];
    char *heap[LOGPROBS_TOP_MAX + 1];
    struct logprob_token t[LOGPROBS_TOP_MAX + 1];
    for (int i = 0; i <= n_alt; i++) {
        llama_token id = i == 0 ? tok : alt[i - 1].tok;
        size_t len = entry_piece(e, id, buf[i], sizeof buf[i], &heap[i]);
        t[i] = (struct logprob_token){heap[i] ? heap[i] : buf[i], len, i == 0 ? lp : alt[i - 1].logprob};
    }
    struct textbuf json = {0};
    logprobs_entry_json(&json, &t[0], j->top_logprobs > 0, t + 1, n_alt);
    uint64_t start = textout_pushed_len(&j->out);
    if (!json.oom && json.s)
        logprob_queue_push(&j->lpq, json.s, json.len, start, start + (uint64_t)n_piece);
    textbuf_fini(&json);
    for (int i = 0; i <= n_alt; i++)
        free(heap[i]);
}

void engine__emit_logprobs(struct engine *e, struct job *j)
{
    struct textbuf json = {0};
    if (logprob_queue_take(&j->lpq, textout_released_len(&j->out), &json) && !json.oom)
        engine__emit_simple(e, j->req_id, ENGINE_EV_LOGPROBS, json.s, json.len, NULL);
    textbuf_fini(&json);
}
