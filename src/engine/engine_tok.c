/* engine_tok.c -- tokenizing a long text in pieces, with the same tokens as in one call.
 *
 * Why: libllama's special-token partition (llama_vocab::impl::tokenizer_st_partition) walks
 * its fragment list from the start for every special token it finds, so one call costs the
 * square of the special tokens in the text: a rendered chat of 30,000 short messages took
 * 8 s, one of 300,000 minutes -- and a single call cannot be interrupted. In pieces of
 * about CHUNK bytes the cost is linear, and a preparation can stop between pieces.
 *
 * Why the tokens are the same: libllama first cuts the text into raw fragments and special
 * tokens, then tokenizes every raw fragment on its own (SPM and BPE vocabularies; the others
 * are tokenized whole here). A piece ends right after an occurrence S of a special token
 * such that no occurrence of any special token other than S itself overlaps S: the
 * partition then matches S there in the whole text too (whatever the order it tries tokens
 * in), so the cut is a fragment boundary, and no match crosses it. S must not begin or end
 * with white space (a neighbour's lstrip/rstrip could eat into it), nor be followed by white
 * space when it strips to its right. The next piece then starts a raw fragment exactly as
 * in the whole text (SPM's space prefix after a special token included). BOS comes with the
 * first piece only; a vocabulary that adds EOS is tokenized whole. */
#define _GNU_SOURCE
#include "engine/engine_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (32 * 1024)  /* bytes per piece, about */
#define SEARCH (64 * 1024) /* how far past CHUNK a cut is looked for before giving up */

void engine__tok_init(struct engine *e)
{
    if (e->no_vocab || llama_vocab_get_add_eos(e->vocab))
        return;
    enum llama_vocab_type t = llama_vocab_type(e->vocab);
    if (t != LLAMA_VOCAB_TYPE_SPM && t != LLAMA_VOCAB_TYPE_BPE)
        return;
    int n = llama_vocab_n_tokens(e->vocab), k = 0;
    for (int id = 0; id < n; id++)
        k += (llama_vocab_get_attr(e->vocab, id) &
              (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN)) != 0;
    e->specials = calloc((size_t)(k ? k : 1), sizeof *e->specials);
    if (!e->specials)
        return;
    for (int id = 0; id < n; id++) {
        enum llama_token_attr a = llama_vocab_get_attr(e->vocab, id);
        if (!(a & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN)))
            continue;
        const char *s = llama_vocab_get_text(e->vocab, id);
        size_t len = s ? strlen(s) : 0;
        if (len == 0) {
            free(e->specials); /* an empty special token would match anywhere: no pieces */
            e->n_specials = 0;
            e->specials = NULL;
            return;
        }
        e->specials[e->n_specials++] = (struct special_tok){s, len, (a & LLAMA_TOKEN_ATTR_RSTRIP) != 0};
    }
    e->tok_chunked = true;
}

void engine__tok_free(struct engine *e)
{
    free(e->specials);
    e->specials = NULL;
    e->n_specials = 0;
    e->tok_chunked = false;
}

/* Does an occurrence of a special token other than [a, b) itself overlap [a, b)? */
static bool overlapped(const struct engine *e, const char *text, size_t len, size_t a, size_t b)
{
    for (int i = 0; i < e->n_specials; i++) {
        const struct special_tok *t = &e->specials[i];
        size_t from = a + 1 > t->len ? a + 1 - t->len : 0;
        for (size_t x = from; x < b && x + t->len <= len; x++)
            if (!(x == a && t->len == b - a) && !memcmp(text + x, t->s, t->len))
                return true;
    }
    return false;
}

/* A cut at or after `from` (see the top), before `limit`; 0 when there is none. */
static size_t find_cut(const struct engine *e, const char *text, size_t len, size_t from, size_t limit)
{
    size_t window = 1024; /* searched first: chat templates put a special token every few bytes */
    while (from < limit) {
        /* The earliest occurrence of any special token in [from, stop). */
        size_t stop = from + window < limit ? from + window : limit;
        size_t best = SIZE_MAX;
        int which = -1;
        for (int i = 0; i < e->n_specials; i++) {
            const struct special_tok *t = &e->specials[i];
            size_t end = best == SIZE_MAX ? stop : best + t->len < len ? best + t->len : len;
            const char *hit = end > from ? memmem(text + from, end - from, t->s, t->len) : NULL;
            if (hit && (size_t)(hit - text) < best) {
                best = (size_t)(hit - text);
                which = i;
            }
        }
        if (which < 0) {
            if (stop == limit)
                return 0;
            window *= 2; /* (occurrences cut at stop are found again: the next window starts at from) */
            continue;
        }
        const struct special_tok *t = &e->specials[which];
        size_t a = best, b = best + t->len;
        bool ok = b < len && !isspace((unsigned char)t->s[0]) && !isspace((unsigned char)t->s[t->len - 1]) &&
                  !(t->rstrip && isspace((unsigned char)text[b])) && !overlapped(e, text, len, a, b);
        if (ok)
            return b;
        from = a + 1;
    }
    return 0;
}

static int tokenize_piece(const struct engine *e, const char *text, size_t len, bool add_special, llama_token **toks,
                          int *n, int *cap)
{
    if (len > INT32_MAX / 2)
        return BW_EINVAL;
    int need = (int)len + 8; /* a token takes at least one byte; BOS */
    if (*cap - *n < need) {
        int c = *cap * 2 > *n + need ? *cap * 2 : *n + need;
        llama_token *p = realloc(*toks, (size_t)c * sizeof *p);
        if (!p)
            return BW_ENOMEM;
        *toks = p;
        *cap = c;
    }
    int got = llama_tokenize(e->vocab, text, (int32_t)len, *toks + *n, *cap - *n, add_special, true);
    if (got < 0)
        return BW_EINVAL;
    *n += got;
    return BW_OK;
}

int engine__tokenize_long(struct engine *e, const char *text, bool add_special, struct prep_ctl *ctl, int32_t **out,
                          int *n_out)
{
    size_t len = strlen(text);
    if (!e->tok_chunked || len <= 2 * CHUNK)
        return engine_tokenize(e, text, add_special, out, n_out);
    llama_token *toks = NULL;
    int n = 0, cap = 0, rc = BW_OK;
    size_t pos = 0;
    bool first = true;
    while (rc == BW_OK && pos < len) {
        if (engine__prep_stop(ctl)) {
            rc = BW_EBUSY;
            break;
        }
        size_t end = len;
        if (len - pos > 2 * CHUNK) {
            size_t limit = pos + CHUNK + SEARCH < len ? pos + CHUNK + SEARCH : len;
            size_t cut = find_cut(e, text, len, pos + CHUNK, limit);
            if (cut)
                end = cut; /* else: no safe cut near; the rest in one call (what it costs) */
        }
        rc = tokenize_piece(e, text + pos, end - pos, add_special && first, &toks, &n, &cap);
        first = false;
        pos = end;
    }
    if (rc) {
        free(toks);
        return rc;
    }
    *out = toks;
    *n_out = n;
    return BW_OK;
}
