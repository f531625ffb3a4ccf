/* reasoning.c -- see reasoning.h for the contract. Reading order: the formats, detection,
 * Harmony headers, the state machine (run), the streaming wrappers. */
#define _GNU_SOURCE
#include "template/reasoning.h"
#include "template/bytes_int.h"

#include <assert.h>
#include <string.h>

/* ---- formats ------------------------------------------------------------------------ */

struct tag_format {
    const char *name, *open, *close;
};

/* Most specific first: "<think>" would also match inside none of the others, but a
 * template may mention several (a Seed template never says "<think>", a Gemma 4 one never
 * says "<|channel|>"), so the first one found wins. */
static const struct tag_format tag_formats[] = {
    {"seed", "<seed:think>", "</seed:think>"},
    {"minimax", "<mm:think>", "</mm:think>"},
    {"mistral", "[THINK]", "[/THINK]"},
    {"command-r", "<|START_THINKING|>", "<|END_THINKING|>"},
    {"gemma4", "<|channel>thought", "<channel|>"},
    {"think", "<think>", "</think>"},
};

#define H_CHANNEL "<|channel|>"
#define H_MESSAGE "<|message|>"
#define H_START "<|start|>"
static const char *const harmony_ends[] = {"<|end|>", "<|return|>", "<|call|>"};
static const char *const harmony_markers[] = {H_CHANNEL, H_MESSAGE, H_START, "<|end|>",
                                              "<|return|>", "<|call|>", "<|constrain|>"};

#define START_HOLD_MAX 128 /* leading whitespace + a partial open marker */
#define HEADER_MAX 200     /* a Harmony header longer than this is not one */
#define FEED_CHUNK 1024

/* s ends with m, once trailing whitespace is ignored. */
static bool ends_with_trimmed(const char *s, const char *m)
{
    size_t n = strlen(s), k = strlen(m);
    while (n > 0 && bytes_is_ws(s[n - 1]))
        n--;
    return n >= k && !memcmp(s + n - k, m, k);
}

/* The Harmony channel named by the end of a rendered prompt that stops inside a message
 * header's <|message|>: true for analysis. */
static bool prompt_opens_analysis(const char *s)
{
    return ends_with_trimmed(s, H_CHANNEL "analysis" H_MESSAGE);
}

void reasoning_detect(const char *template_text, const char *rendered_prompt, const char *think,
                      struct reasoning_cfg *out)
{
    memset(out, 0, sizeof *out);
    out->name = "none";
    if (!template_text)
        return;
    if (strstr(template_text, H_CHANNEL) && strstr(template_text, H_MESSAGE)) {
        out->format = REASONING_HARMONY;
        out->name = "harmony";
        out->starts_inside = rendered_prompt && prompt_opens_analysis(rendered_prompt);
        return;
    }
    bool off = think && !strcmp(think, "false");
    for (size_t i = 0; i < sizeof tag_formats / sizeof tag_formats[0]; i++) {
        const struct tag_format *f = &tag_formats[i];
        if (!strstr(template_text, f->open) && !strstr(template_text, f->close))
            continue;
        bool inside = rendered_prompt && ends_with_trimmed(rendered_prompt, f->open);
        if (off && !inside)
            return; /* think:false and the prompt did not open a block: no splitting */
        *out = (struct reasoning_cfg){.format = REASONING_TAGS, .name = f->name, .open = f->open,
                                      .close = f->close, .starts_inside = inside};
        return;
    }
}

bool reasoning_marker_token(const struct reasoning_cfg *cfg, const char *text, size_t len)
{
    if (len < 2)
        return false;
    const char *const *m = NULL;
    size_t n = 0;
    const char *pair[2];
    if (cfg->format == REASONING_TAGS) {
        pair[0] = cfg->open;
        pair[1] = cfg->close;
        m = pair;
        n = 2;
    } else if (cfg->format == REASONING_HARMONY) {
        m = harmony_markers;
        n = sizeof harmony_markers / sizeof harmony_markers[0];
    }
    for (size_t i = 0; i < n; i++)
        if (memmem(m[i], strlen(m[i]), text, len))
            return true;
    return false;
}

/* ---- Harmony headers --------------------------------------------------------------- */

/* Is b[0..n) the start of a Harmony header? */
static bool header_plausible(const char *b, size_t n)
{
    return bytes_starts_with(b, n, H_CHANNEL) != MATCH_NONE || bytes_starts_with(b, n, H_START) != MATCH_NONE;
}

/* Does the complete header b[0..n) (without <|message|>) name the analysis channel? */
static bool header_is_analysis(const char *b, size_t n)
{
    const char *c = memmem(b, n, H_CHANNEL, strlen(H_CHANNEL));
    if (!c)
        return false;
    c += strlen(H_CHANNEL);
    size_t rest = (size_t)(b + n - c), l = 0;
    while (l < rest && c[l] != ' ' && c[l] != '<')
        l++;
    return l == 8 && !memcmp(c, "analysis", 8);
}

/* Does the complete header b[0..n) (without <|message|>) address a function
 * (`to=functions.NAME`)? Sets the recipient text ("functions.NAME") when it does. */
static bool header_function(const char *b, size_t n, const char **rcp, size_t *rcp_len)
{
    const char *t = memmem(b, n, "to=", 3);
    if (!t)
        return false;
    t += 3;
    size_t rest = (size_t)(b + n - t), l = 0;
    while (l < rest && t[l] != ' ' && t[l] != '<')
        l++;
    if (l <= 10 || memcmp(t, "functions.", 10))
        return false;
    *rcp = t;
    *rcp_len = l;
    return true;
}

/* ---- output --------------------------------------------------------------------------- */

static void flush(struct reasoning_split *s)
{
    if (s->n_out)
        s->emit(s->ud, s->out_thinking, s->out, s->n_out);
    s->n_out = 0;
}

/* Queues text of one kind; pieces of the same kind within one call are coalesced. */
static void put(struct reasoning_split *s, bool thinking, const char *p, size_t n)
{
    if (!n)
        return;
    if (s->n_out && (s->out_thinking != thinking || s->n_out + n > sizeof s->out))
        flush(s);
    if (n > sizeof s->out) {
        s->emit(s->ud, thinking, p, n);
        return;
    }
    memcpy(s->out + s->n_out, p, n);
    s->n_out += n;
    s->out_thinking = thinking;
}

/* ---- the state machine ------------------------------------------------------------------- */

enum state {
    ST_START,        /* tags: before anything but whitespace; an open marker may come */
    ST_INSIDE_START, /* tags: the prompt opened the block; a repeated open marker may come */
    ST_THINK_LEAD,   /* after an open marker: whitespace is dropped */
    ST_THINK,        /* reasoning, up to the close marker */
    ST_ANSWER_LEAD,  /* after the close marker: whitespace is dropped */
    ST_ANSWER,       /* answer text to the end */
    ST_H_HEADER,     /* Harmony: reading a message header */
    ST_H_MSG,        /* Harmony: a message's text, up to its end marker */
};

/* Consumes b[0..n) from the current state, emitting through put(). Returns how many bytes
 * at the end of b must be held for the next call (0 when final). */
static size_t run(struct reasoning_split *s, const char *b, size_t n, bool final)
{
    const char *open = s->cfg.open, *close = s->cfg.close;
    size_t p = 0;
    for (;;) {
        switch ((enum state)s->state) {
        case ST_START: {
            size_t q = p;
            while (q < n && bytes_is_ws(b[q]))
                q++;
            enum match m = bytes_starts_with(b + q, n - q, open);
            if (m == MATCH_FULL) {
                p = q + strlen(open);
                s->state = ST_THINK_LEAD;
                continue;
            }
            if (m == MATCH_PARTIAL && !final && n - p <= START_HOLD_MAX)
                return n - p;
            s->state = ST_ANSWER; /* no reasoning: the whitespace is answer text */
            continue;
        }
        case ST_INSIDE_START: {
            while (p < n && bytes_is_ws(b[p]))
                p++;
            enum match m = bytes_starts_with(b + p, n - p, open);
            if (m == MATCH_FULL) {
                p += strlen(open);
                s->state = ST_THINK_LEAD;
                continue;
            }
            if (m == MATCH_PARTIAL && !final)
                return n - p;
            s->state = ST_THINK;
            continue;
        }
        case ST_THINK_LEAD:
        case ST_ANSWER_LEAD:
            while (p < n && bytes_is_ws(b[p]))
                p++;
            if (p == n)
                return 0;
            s->state = s->state == ST_THINK_LEAD ? ST_THINK : ST_ANSWER;
            continue;
        case ST_THINK: {
            size_t cl = strlen(close);
            const char *c = memmem(b + p, n - p, close, cl);
            if (c) {
                put(s, true, b + p, (size_t)(c - (b + p)));
                p = (size_t)(c - b) + cl;
                s->state = ST_ANSWER_LEAD;
                continue;
            }
            size_t k = final ? 0 : bytes_partial_tail(b + p, n - p, close);
            if (!k && !final)
                k = bytes_utf8_tail(b + p, n - p);
            put(s, true, b + p, n - p - k);
            return k;
        }
        case ST_ANSWER: {
            size_t k = final ? 0 : bytes_utf8_tail(b + p, n - p);
            put(s, false, b + p, n - p - k);
            return k;
        }
        case ST_H_HEADER: {
            const char *m = memmem(b + p, n - p, H_MESSAGE, strlen(H_MESSAGE));
            if (m) {
                const char *rcp;
                size_t rcp_len;
                s->msg_call = s->cfg.calls && header_function(b + p, (size_t)(m - (b + p)), &rcp, &rcp_len);
                s->msg_thinking = !s->msg_call && header_is_analysis(b + p, (size_t)(m - (b + p)));
                if (s->msg_call) {
                    put(s, false, REASONING_CALL_OPEN, strlen(REASONING_CALL_OPEN));
                    put(s, false, rcp, rcp_len);
                    put(s, false, REASONING_CALL_ARGS, strlen(REASONING_CALL_ARGS));
                }
                p = (size_t)(m - b) + strlen(H_MESSAGE);
                s->state = ST_H_MSG;
                continue;
            }
            if (header_plausible(b + p, n - p)) {
                if (final)
                    return 0; /* an unfinished header: protocol, not text */
                if (n - p <= HEADER_MAX)
                    return n - p;
            }
            s->state = ST_ANSWER; /* not a header: the model left the format */
            continue;
        }
        case ST_H_MSG: {
            const char *first = NULL;
            size_t first_len = 0, k = 0;
            for (size_t i = 0; i < sizeof harmony_ends / sizeof harmony_ends[0]; i++) {
                size_t l = strlen(harmony_ends[i]);
                const char *c = memmem(b + p, n - p, harmony_ends[i], l);
                if (c && (!first || c < first))
                    first = c, first_len = l;
                size_t t = bytes_partial_tail(b + p, n - p, harmony_ends[i]);
                if (t > k)
                    k = t;
            }
            if (first) {
                put(s, s->msg_thinking, b + p, (size_t)(first - (b + p)));
                if (s->msg_call)
                    put(s, false, REASONING_CALL_CLOSE, strlen(REASONING_CALL_CLOSE));
                s->msg_call = false;
                p = (size_t)(first - b) + first_len;
                s->state = ST_H_HEADER;
                continue;
            }
            if (final)
                k = 0;
            else if (!k)
                k = bytes_utf8_tail(b + p, n - p);
            put(s, s->msg_thinking, b + p, n - p - k);
            if (final && s->msg_call) /* <|call|> ends the generation: it is never rendered */
                put(s, false, REASONING_CALL_CLOSE, strlen(REASONING_CALL_CLOSE));
            return k;
        }
        }
        assert(0 && "unknown state");
        return 0;
    }
}

/* ---- streaming ----------------------------------------------------------------------------- */

void reasoning_init(struct reasoning_split *s, const struct reasoning_cfg *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    switch (cfg->format) {
    case REASONING_TAGS:
        s->state = cfg->starts_inside ? ST_INSIDE_START : ST_START;
        break;
    case REASONING_HARMONY:
        s->state = cfg->starts_inside ? ST_H_MSG : ST_H_HEADER;
        s->msg_thinking = cfg->starts_inside;
        break;
    case REASONING_NONE:
        s->state = ST_ANSWER;
        break;
    }
}

void reasoning_feed(struct reasoning_split *s, const char *text, size_t len, reasoning_emit_fn emit, void *ud)
{
    char buf[REASONING_HOLD_MAX + FEED_CHUNK];
    s->emit = emit;
    s->ud = ud;
    while (len > 0) {
        size_t take = len < FEED_CHUNK ? len : FEED_CHUNK;
        memcpy(buf, s->hold, s->n_hold);
        memcpy(buf + s->n_hold, text, take);
        size_t n = s->n_hold + take;
        size_t k = run(s, buf, n, false);
        assert(k <= REASONING_HOLD_MAX);
        memcpy(s->hold, buf + n - k, k);
        s->n_hold = k;
        text += take;
        len -= take;
    }
    flush(s);
}

void reasoning_finish(struct reasoning_split *s, reasoning_emit_fn emit, void *ud)
{
    char buf[REASONING_HOLD_MAX];
    s->emit = emit;
    s->ud = ud;
    size_t n = s->n_hold;
    memcpy(buf, s->hold, n);
    s->n_hold = 0;
    run(s, buf, n, true);
    flush(s);
}
