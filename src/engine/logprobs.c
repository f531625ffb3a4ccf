/* logprobs.c -- see logprobs.h. */
#include "engine/logprobs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/textout.h"

/* ---- the distribution ------------------------------------------------------------------ */

/* a ranks before b: a larger logit, or the same and a lower id (a stable order clients can
 * compare across runs). */
static bool ranks_before(float la, int32_t a, float lb, int32_t b)
{
    return la > lb || (la == lb && a < b);
}

/* A log-probability as entries carry it: at most 0, at least LOGPROBS_FLOOR (-inf, NaN). */
static float clamp_logprob(double lp)
{
    return isfinite(lp) && lp > LOGPROBS_FLOOR ? (float)(lp < 0.0 ? lp : 0.0) : LOGPROBS_FLOOR;
}

float logprobs_compute(const float *logits, int n_vocab, int32_t chosen, int n_top, struct logprob_alt *top,
                       int *n_out)
{
    if (n_top < 0)
        n_top = 0;
    if (n_top > LOGPROBS_TOP_MAX)
        n_top = LOGPROBS_TOP_MAX;
    if (n_top > n_vocab)
        n_top = n_vocab;

    /* One pass for the maximum and, when asked, the k best so far (kept sorted; a candidate
     * is compared with the last one first, so that costs about one comparison a token); one
     * for the sum. Without alternatives the pass is the maximum alone, which vectorizes. */
    float max = -INFINITY;
    int k = 0;
    float kl[LOGPROBS_TOP_MAX + 1];
    for (int i = 0; i < n_vocab && n_top == 0; i++)
        if (isfinite(logits[i]) && logits[i] > max)
            max = logits[i];
    for (int i = 0; i < n_vocab && n_top > 0; i++) {
        float l = isfinite(logits[i]) ? logits[i] : -INFINITY;
        if (l > max)
            max = l;
        if (k == n_top && !ranks_before(l, i, kl[k - 1], top[k - 1].tok))
            continue;
        int at = k < n_top ? k++ : k - 1;
        while (at > 0 && ranks_before(l, i, kl[at - 1], top[at - 1].tok)) {
            kl[at] = kl[at - 1];
            top[at] = top[at - 1];
            at--;
        }
        kl[at] = l;
        top[at].tok = i;
    }
    /* The sum in double: 150k terms of float would lose the small ones. */
    double sum = 0.0;
    if (isfinite(max))
        for (int i = 0; i < n_vocab; i++)
            if (isfinite(logits[i]))
                sum += exp((double)logits[i] - max);
    double log_z = isfinite(max) && sum > 0.0 ? max + log(sum) : INFINITY;

    for (int i = 0; i < k; i++)
        top[i].logprob = clamp_logprob(kl[i] - log_z);
    *n_out = k;
    return clamp_logprob((isfinite(logits[chosen]) ? logits[chosen] : -INFINITY) - log_z);
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* s[0..n) as a JSON string: valid UTF-8 (textout's replacement rule), escaped. */
static void add_string(struct textbuf *b, const char *s, size_t n)
{
    char small[256];
    char *clean = 3 * n <= sizeof small ? small : malloc(3 * n);
    if (!clean) {
        b->oom = true;
        return;
    }
    size_t m = textout_utf8_sanitize(clean, s, n);
    textbuf_add(b, "\"");
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)clean[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        textbuf_addn(b, clean + run, i - run);
        run = i + 1;
        char esc[8];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t" : NULL;
        if (!e) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            e = esc;
        }
        textbuf_add(b, e);
    }
    textbuf_addn(b, clean + run, m - run);
    textbuf_add(b, "\"");
    if (clean != small)
        free(clean);
}

static void add_token(struct textbuf *b, const struct logprob_token *t)
{
    textbuf_add(b, "{\"token\":");
    add_string(b, t->text, t->len);
    /* 9 significant digits read back as the same float. */
    textbuf_addf(b, ",\"logprob\":%.9g", (double)t->logprob);
    textbuf_add(b, ",\"bytes\":[");
    for (size_t i = 0; i < t->len; i++)
        textbuf_addf(b, i ? ",%u" : "%u", (unsigned char)t->text[i]);
    textbuf_add(b, "]");
}

void logprobs_entry_json(struct textbuf *b, const struct logprob_token *tok, bool with_top,
                         const struct logprob_token *top, int n_top)
{
    add_token(b, tok);
    if (with_top) {
        textbuf_add(b, ",\"top_logprobs\":[");
        for (int i = 0; i < n_top; i++) {
            if (i)
                textbuf_add(b, ",");
            add_token(b, &top[i]);
            textbuf_add(b, "}");
        }
        textbuf_add(b, "]");
    }
    textbuf_add(b, "}");
}

/* ---- the queue --------------------------------------------------------------------------- */

bool logprob_queue_push(struct logprob_queue *q, const char *json, size_t len, uint64_t start, uint64_t end)
{
    if (q->head == q->n) /* empty: start over at the front */
        q->head = q->n = 0;
    if (q->n == q->cap) {
        if (q->head > 0) { /* room at the front: move the live entries down */
            memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
            q->n -= q->head;
            q->head = 0;
        } else {
            size_t cap = q->cap ? 2 * q->cap : 16;
            struct logprob_entry *v = realloc(q->v, cap * sizeof *v);
            if (!v)
                return false;
            q->v = v;
            q->cap = cap;
        }
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, json, len);
    copy[len] = '\0';
    q->v[q->n++] = (struct logprob_entry){.json = copy, .len = len, .start = start, .end = end};
    return true;
}

size_t logprob_queue_take(struct logprob_queue *q, uint64_t released, struct textbuf *b)
{
    size_t k = 0;
    while (q->head < q->n) {
        struct logprob_entry *e = &q->v[q->head];
        bool reached = e->start < released || (e->start == e->end && e->end <= released);
        if (!reached)
            break;
        textbuf_add(b, k ? "," : "[");
        textbuf_addn(b, e->json, e->len);
        free(e->json);
        q->head++;
        k++;
    }
    if (k)
        textbuf_add(b, "]");
    return k;
}

void logprob_queue_clear(struct logprob_queue *q)
{
    for (size_t i = q->head; i < q->n; i++)
        free(q->v[i].json);
    free(q->v);
    *q = (struct logprob_queue){0};
}
