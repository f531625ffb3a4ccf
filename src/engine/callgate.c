/* callgate.c -- see callgate.h. */
#define _GNU_SOURCE
#include "engine/callgate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/gbnf_compose.h"

enum { MODE_NONE, MODE_TAGS, MODE_HARMONY };

enum {
    T_LEAD,   /* tags: the generation may still open with the open marker */
    T_THINK,  /* tags: inside the reasoning */
    T_BLANKS, /* tags: right after the close marker (its blanks are not answer) */
    T_ANSWER, /* tags: the answer, for good */
    H_OUT,    /* harmony: between messages, or in a message that is not analysis */
    H_HEADER, /* harmony: after <|channel|>, before <|message|> */
    H_THINK,  /* harmony: the body of an analysis message */
};

#define H_CHANNEL "<|channel|>"
#define H_MESSAGE "<|message|>"
#define H_END "<|end|>"
#define H_START_ASSISTANT "<|start|>assistant"

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void callgate_init(struct callgate *g, const struct reasoning_cfg *cfg)
{
    memset(g, 0, sizeof *g);
    if (!cfg || cfg->format == REASONING_NONE ||
        (cfg->format == REASONING_TAGS && (!cfg->open || !cfg->close || !*cfg->close ||
                                           strlen(cfg->open) >= CALLGATE_TAIL || strlen(cfg->close) >= CALLGATE_TAIL))) {
        g->mode = MODE_NONE;
        return;
    }
    if (cfg->format == REASONING_HARMONY) {
        g->mode = MODE_HARMONY;
        g->state = cfg->starts_inside ? H_THINK : H_OUT;
        return;
    }
    g->mode = MODE_TAGS;
    g->open = cfg->open;
    g->close = cfg->close;
    g->state = cfg->starts_inside || !*cfg->open ? T_THINK : T_LEAD;
}

/* Looks for marker m in the bytes kept from earlier tokens followed by p[0..n). Returns
 * the offset in p just past the first match (and forgets the kept bytes), or -1 (and keeps
 * the last strlen(m) - 1 bytes seen). */
static long find_marker(struct callgate *g, const char *p, size_t n, const char *m)
{
    size_t ml = strlen(m);
    /* A match that starts in the kept bytes: they and at most ml - 1 bytes of p. */
    char buf[2 * CALLGATE_TAIL];
    size_t take = n < ml - 1 ? n : ml - 1;
    memcpy(buf, g->tail, g->n_tail);
    memcpy(buf + g->n_tail, p, take);
    const char *q = memmem(buf, g->n_tail + take, m, ml);
    if (q) {
        long end = (long)((size_t)(q - buf) + ml - g->n_tail);
        g->n_tail = 0;
        return end;
    }
    q = memmem(p, n, m, ml);
    if (q) {
        g->n_tail = 0;
        return (long)((size_t)(q - p) + ml);
    }
    /* keep the last ml - 1 bytes of (tail, p) */
    size_t total = g->n_tail + n, keep = total < ml - 1 ? total : ml - 1;
    if (n >= keep) {
        memcpy(g->tail, p + n - keep, keep);
    } else {
        size_t from_tail = keep - n;
        memmove(g->tail, g->tail + g->n_tail - from_tail, from_tail);
        memcpy(g->tail + from_tail, p, n);
    }
    g->n_tail = keep;
    return -1;
}

/* Tags, at the start: takes p[*off..n) into the lead. Returns 1 when the lead opened the
 * reasoning (*off just past the open marker), 0 while it may still, -1 when it cannot
 * (the generation is answer). */
static int lead_take(struct callgate *g, const char *p, size_t n, size_t *off)
{
    size_t ol = strlen(g->open);
    for (size_t i = *off; i < n; i++) {
        if (!g->n_lead && is_blank(p[i]))
            continue;
        if (p[i] != g->open[g->n_lead])
            return -1;
        if (++g->n_lead == ol) {
            *off = i + 1;
            return 1;
        }
    }
    *off = n;
    return 0;
}

/* Harmony: does the header h[0..n) (the text after <|channel|>, without <|message|>) make
 * its message reasoning? Channel "analysis", and no function recipient (reasoning.c
 * passes a call on whatever its channel). */
static bool header_thinks(const char *h, size_t n)
{
    if (n < 8 || memcmp(h, "analysis", 8) || (n > 8 && h[8] != ' ' && h[8] != '<'))
        return false;
    return !memmem(h, n, "to=", 3);
}

size_t callgate_feed(struct callgate *g, int32_t tok, const char *piece, size_t len, int32_t *out)
{
    bool feed = false;
    size_t off = 0;
    if (g->mode == MODE_NONE) {
        out[0] = tok;
        return 1;
    }
    for (;;) {
        long r;
        switch (g->state) {
        case T_LEAD: {
            int k = lead_take(g, piece, len, &off);
            if (k > 0) {
                g->n_held = 0; /* blanks and the open marker: reasoning */
                g->state = T_THINK;
                continue;
            }
            if (k == 0 && g->n_held < CALLGATE_HOLD) {
                g->held[g->n_held++] = tok;
                return 0;
            }
            /* not the open marker (or too long to be it): all of it is answer */
            size_t n = 0;
            for (size_t i = 0; i < g->n_held; i++)
                out[n++] = g->held[i];
            out[n++] = tok;
            g->n_held = 0;
            g->state = T_ANSWER;
            return n;
        }
        case T_THINK:
            r = find_marker(g, piece + off, len - off, g->close);
            if (r < 0)
                break;
            off += (size_t)r;
            g->state = T_BLANKS;
            continue;
        case T_BLANKS:
            while (off < len && is_blank(piece[off]))
                off++;
            if (off < len) {
                g->state = T_ANSWER;
                feed = true;
            }
            break;
        case T_ANSWER:
            feed = true;
            break;
        case H_OUT:
            if (off < len)
                feed = true;
            r = find_marker(g, piece + off, len - off, H_CHANNEL);
            if (r < 0)
                break;
            off += (size_t)r;
            g->n_hdr = 0;
            g->state = H_HEADER;
            continue;
        case H_HEADER: {
            feed = true;
            r = find_marker(g, piece + off, len - off, H_MESSAGE);
            size_t upto = r < 0 ? len : off + (size_t)r;
            for (size_t i = off; i < upto && g->n_hdr < sizeof g->hdr; i++)
                g->hdr[g->n_hdr++] = piece[i];
            if (r < 0)
                break;
            /* hdr ends with the marker, unless the header was longer than hdr: then it is
             * no analysis header ("analysis", maybe a recipient) anyway */
            size_t ml = strlen(H_MESSAGE), hn = g->n_hdr;
            bool thinks = hn >= ml && !memcmp(g->hdr + hn - ml, H_MESSAGE, ml) && header_thinks(g->hdr, hn - ml);
            off = upto;
            g->state = thinks ? H_THINK : H_OUT;
            continue;
        }
        case H_THINK:
            r = find_marker(g, piece + off, len - off, H_END);
            if (r < 0)
                break;
            off += (size_t)r;
            g->state = H_OUT;
            continue;
        }
        break;
    }
    if (!feed)
        return 0;
    out[0] = tok;
    return 1;
}

/* A piece of an analysis message's text: a character, or a proper prefix of <|end|> and a
 * character that does not go on with it (the construction of gbnf_after_marker, which
 * cannot be used here: it lets blanks follow the marker, and Harmony's splitter takes a
 * blank between messages for the model leaving the format). */
static const char harmony_piece[] =
    "pre-piece ::= [^<] | \"<\" ( [^|<] | \"|\" ( [^e<] | \"e\" ( [^n<] | \"n\" ( [^d<] | \"d\" ( [^|<] | \"|\" [^><] ) ) ) ) )\n";

char *callgate_forced_grammar(const char *calls, const struct reasoning_cfg *cfg, int max_pieces)
{
    if (!calls || !cfg)
        return NULL;
    if (cfg->format == REASONING_TAGS)
        return cfg->starts_inside && cfg->close && *cfg->close ? gbnf_after_marker(calls, cfg->close, max_pieces) : NULL;
    if (cfg->format != REASONING_HARMONY)
        return NULL;
    if (max_pieces < 1)
        max_pieces = 1;
    if (max_pieces > 1000)
        max_pieces = 1000;
    char *c = gbnf_prefix_rules(calls, "call-");
    if (!c)
        return NULL;
    /* The analysis text, <|end|>, the next message's start, then the calls. */
    char *out = NULL;
    if (asprintf(&out, "root ::= %spre-piece{0,%d} \"" H_END H_START_ASSISTANT "\"%s call-root\n%s%s",
                 cfg->starts_inside ? "" : "( \"" H_CHANNEL "analysis" H_MESSAGE "\" ", max_pieces,
                 cfg->starts_inside ? "" : " )?", harmony_piece, c) < 0)
        out = NULL;
    free(c);
    return out;
}
