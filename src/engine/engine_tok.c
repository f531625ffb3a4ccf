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
 * first piece only; a vocabulary that adds EOS is tokenized whole.
 *
 * The next turn (issue 17): a chat's next prompt is its last one up to the generation
 * prompt, then the answer and the new message. Tokenizing the whole history again costs
 * ~1 us a token (25 ms at 25,000 tokens, about as much as evaluating a one-line message at
 * that depth). So the last few long texts are kept with their tokens and the token count
 * at their last safe cuts (marks); a text that shares a head with one up to a mark, where
 * the cut is still safe in the new text, takes the head's tokens from it and tokenizes
 * only the rest -- the same tokens, by the argument above: the mark is a fragment boundary
 * of the new text, and the old text's pieces up to it were cut at boundaries too. */
#define _GNU_SOURCE
#include "engine/engine_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (32 * 1024)  /* bytes per piece, about */
#define SEARCH (64 * 1024) /* how far past CHUNK a cut is looked for before giving up */

#define MEMOS 4                  /* texts kept: about one per conversation in flight */
#define MEMO_MIN (8 * 1024)      /* shorter texts are tokenized in one call, as before: ~1 ms */
#define MEMO_MAX (2u << 20)      /* longer ones (~500k tokens) are not kept: copied per request */
#define MEMO_TAIL 4096           /* a text's last bytes, where the next turn's head ends */
#define TAIL_CUTS 4              /* safe cuts made there (one llama_tokenize call each) */
#define MEMO_MARKS 16            /* safe cuts a memo remembers: the last ones */

struct tok_mark {
    size_t a, b; /* a special token's occurrence [a, b) a piece ended with */
    int sp;      /* which one (e->specials) */
    int n;       /* tokens up to b */
};

struct tok_memo {
    char *text;
    size_t len;
    bool add_special;
    llama_token *toks;
    int n;
    struct tok_mark marks[MEMO_MARKS];
    int n_marks;
    uint64_t used;
};

struct tok_memos {
    pthread_mutex_t lock; /* the loop and the preparation thread both tokenize */
    uint64_t clock;
    struct tok_memo m[MEMOS];
};

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
    e->memos = calloc(1, sizeof *e->memos);
    if (e->memos)
        pthread_mutex_init(&e->memos->lock, NULL);
}

void engine__tok_free(struct engine *e)
{
    if (e->memos) {
        for (int i = 0; i < MEMOS; i++) {
            free(e->memos->m[i].text);
            free(e->memos->m[i].toks);
        }
        pthread_mutex_destroy(&e->memos->lock);
        free(e->memos);
        e->memos = NULL;
    }
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

/* May a piece end right after special token t, found at a (see the top)? */
static bool safe_cut(const struct engine *e, const struct special_tok *t, const char *text, size_t len, size_t a)
{
    size_t b = a + t->len;
    return b < len && !isspace((unsigned char)t->s[0]) && !isspace((unsigned char)t->s[t->len - 1]) &&
           !(t->rstrip && isspace((unsigned char)text[b])) && !overlapped(e, text, len, a, b);
}

/* A cut at or after `from` (see the top), before `limit`: its special token's place in *m;
 * false when there is none. */
static bool find_cut(const struct engine *e, const char *text, size_t len, size_t from, size_t limit,
                     struct tok_mark *m)
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
                return false;
            window *= 2; /* (occurrences cut at stop are found again: the next window starts at from) */
            continue;
        }
        if (safe_cut(e, &e->specials[which], text, len, best)) {
            *m = (struct tok_mark){.a = best, .b = best + e->specials[which].len, .sp = which};
            return true;
        }
        from = best + 1;
    }
    return false;
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

/* The text being tokenized: its tokens so far and the marks of its pieces' ends. */
struct tok_run {
    llama_token *toks;
    int n, cap;
    struct tok_mark marks[MEMO_MARKS];
    int n_marks;
};

static void add_mark(struct tok_run *r, struct tok_mark m)
{
    if (r->n_marks == MEMO_MARKS) { /* the oldest goes: a next turn picks up near the end */
        memmove(r->marks, r->marks + 1, (MEMO_MARKS - 1) * sizeof *r->marks);
        r->n_marks--;
    }
    r->marks[r->n_marks++] = m;
}

static size_t common_prefix(const char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na < nb ? na : nb, i = 0;
    while (i + 8 <= n && !memcmp(a + i, b + i, 8))
        i += 8;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Starts r with the longest head of text a memo holds the tokens of, up to a mark still
 * safe in text. Returns where the rest begins (0: nothing taken) and in *src the memo. */
static size_t take_head(struct engine *e, const char *text, size_t len, bool add_special, struct tok_run *r,
                        int *src)
{
    struct tok_memos *ms = e->memos;
    size_t best = 0;
    *src = -1;
    pthread_mutex_lock(&ms->lock);
    for (int i = 0; i < MEMOS; i++) {
        const struct tok_memo *m = &ms->m[i];
        if (!m->text || m->add_special != add_special)
            continue;
        size_t common = common_prefix(m->text, m->len, text, len);
        for (int k = m->n_marks - 1; k >= 0; k--) {
            const struct tok_mark *mk = &m->marks[k];
            if (mk->b <= best)
                break;
            if (mk->b <= common && safe_cut(e, &e->specials[mk->sp], text, len, mk->a)) {
                best = mk->b;
                *src = i;
                break;
            }
        }
    }
    if (*src >= 0) {
        struct tok_memo *m = &ms->m[*src];
        int n = 0;
        for (int k = 0; k < m->n_marks; k++)
            if (m->marks[k].b <= best) {
                n = m->marks[k].n;
                add_mark(r, m->marks[k]);
            }
        r->cap = n + (int)(len - best) + 8;
        r->toks = malloc((size_t)r->cap * sizeof *r->toks);
        if (r->toks) {
            memcpy(r->toks, m->toks, (size_t)n * sizeof *r->toks);
            r->n = n;
            m->used = ++ms->clock;
            e->tok_reused += n;
        } else {
            r->cap = 0;
            r->n_marks = 0;
            best = 0;
            *src = -1;
        }
    }
    pthread_mutex_unlock(&ms->lock);
    return best;
}

/* Keeps text and r's tokens for the next turn, in place of the memo it began from (the
 * conversation moved on) or of the least recently used one. */
static void keep_memo(struct engine *e, const char *text, size_t len, bool add_special, const struct tok_run *r,
                      int src)
{
    struct tok_memo nm = {.len = len, .add_special = add_special, .n = r->n, .n_marks = r->n_marks};
    nm.text = malloc(len + 1);
    nm.toks = malloc((size_t)(r->n ? r->n : 1) * sizeof *nm.toks);
    if (!nm.text || !nm.toks) {
        free(nm.text);
        free(nm.toks);
        return; /* out of memory: the next turn tokenizes all of it */
    }
    memcpy(nm.text, text, len + 1);
    memcpy(nm.toks, r->toks, (size_t)r->n * sizeof *nm.toks);
    memcpy(nm.marks, r->marks, (size_t)r->n_marks * sizeof *nm.marks);
    struct tok_memos *ms = e->memos;
    pthread_mutex_lock(&ms->lock);
    int slot = src;
    if (slot < 0)
        for (int i = 0; i < MEMOS; i++)
            if (slot < 0 || ms->m[i].used < ms->m[slot].used)
                slot = i;
    struct tok_memo old = ms->m[slot];
    nm.used = ++ms->clock;
    ms->m[slot] = nm;
    pthread_mutex_unlock(&ms->lock);
    free(old.text);
    free(old.toks);
}

int engine__tokenize_long(struct engine *e, const char *text, bool add_special, struct prep_ctl *ctl, int32_t **out,
                          int *n_out)
{
    size_t len = strlen(text);
    if (!e->tok_chunked || len <= MEMO_MIN)
        return engine_tokenize(e, text, add_special, out, n_out);
    bool memo = e->memos && len <= MEMO_MAX;
    struct tok_run r = {0};
    int src = -1, rc = BW_OK;
    size_t pos = memo ? take_head(e, text, len, add_special, &r, &src) : 0;
    /* The last safe cuts of the text (up to TAIL_CUTS in its last MEMO_TAIL bytes): its
     * pieces end there too, so the next turn finds its tokens counted near the end. */
    struct tok_mark tail[TAIL_CUTS];
    int n_tail = 0, next_tail = 0;
    for (size_t w = 256; memo && n_tail < TAIL_CUTS && w <= MEMO_TAIL; w *= 4) {
        /* Looked for in the last 256 bytes first: a template ends a message and starts the
         * next with special tokens, and each look costs a search for every special token. */
        struct tok_mark m;
        size_t from = len - w > pos ? len - w : pos;
        n_tail = 0;
        while (find_cut(e, text, len, from, len, &m)) {
            if (n_tail == TAIL_CUTS) {
                memmove(tail, tail + 1, (TAIL_CUTS - 1) * sizeof *tail);
                n_tail--;
            }
            tail[n_tail++] = m;
            from = m.a + 1;
        }
        if (len - w <= pos)
            break; /* the whole rest was searched */
    }
    while (rc == BW_OK && pos < len) {
        if (engine__prep_stop(ctl)) {
            rc = BW_EBUSY;
            break;
        }
        struct tok_mark m;
        bool cut = false;
        if (len - pos > 2 * CHUNK) {
            size_t limit = pos + CHUNK + SEARCH < len ? pos + CHUNK + SEARCH : len;
            cut = find_cut(e, text, len, pos + CHUNK, limit, &m); /* else: the rest in one call */
        }
        while (!cut && next_tail < n_tail) {
            m = tail[next_tail++];
            cut = m.b > pos;
        }
        size_t end = cut ? m.b : len;
        rc = tokenize_piece(e, text + pos, end - pos, add_special && pos == 0, &r.toks, &r.n, &r.cap);
        if (rc == BW_OK && cut) {
            m.n = r.n;
            add_mark(&r, m);
        }
        pos = end;
    }
    if (rc) {
        free(r.toks);
        return rc;
    }
    if (memo)
        keep_memo(e, text, len, add_special, &r, src);
    *out = r.toks;
    *n_out = r.n;
    return BW_OK;
}
