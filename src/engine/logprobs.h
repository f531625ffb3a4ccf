/* logprobs.h -- the log-probabilities of the generated tokens, for the clients that ask
 * for them (OpenAI's `logprobs` / `top_logprobs`, Ollama's, llama-server's `n_probs`).
 *
 * Three pieces, all pure (no I/O, no libllama; the caller brings the logits and the
 * tokens' texts):
 *   - logprobs_compute: the chosen token's log-probability under the model's own
 *     distribution -- the log-softmax of the raw logits, before any sampler (temperature,
 *     penalties, grammar), as OpenAI and llama-server report it -- and the n most likely
 *     tokens of that distribution;
 *   - logprobs_entry_json: one token's entry as the JSON object both APIs use,
 *     {"token", "logprob", "bytes"[, "top_logprobs": [{"token", "logprob", "bytes"}]]};
 *   - struct logprob_queue: the entries of the tokens sampled but whose text the client has
 *     not been sent yet. A token's text may be held back (a stop string could be starting,
 *     a UTF-8 character is incomplete) and may never be sent (it is part of the stop): an
 *     entry carries the input positions of its token's text in textout's byte stream
 *     (textout_pushed_len before and after its piece) and leaves the queue once some of
 *     that text was released (textout_released_len), so the entries a client gets are
 *     those of the text it got, in order. Entries still queued when the generation ends
 *     belong to text that was cut (the stop string): they are dropped.
 *
 * Not thread-safe: one queue per sequence, used by the thread that owns the sequence. */
#ifndef BELLOWS_LOGPROBS_H
#define BELLOWS_LOGPROBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/textbuf.h"

/* The most alternatives a request may ask for (OpenAI's and Ollama's bound). */
#define LOGPROBS_TOP_MAX 20

struct logprob_alt {
    int32_t tok;
    float logprob;
};

/* logits[0..n_vocab) are one output row. Returns the log-probability of `chosen` (which
 * must be in range) and fills top[0..k) with the k = min(n_top, n_vocab) most likely
 * tokens, most likely first (equal logits: the lower id first); returns k in *n_out.
 * n_top is clamped to 0..LOGPROBS_TOP_MAX. A logit that is not finite counts as -inf (no
 * probability); values are finite, at least LOGPROBS_FLOOR. */
#define LOGPROBS_FLOOR (-9999.0f)
float logprobs_compute(const float *logits, int n_vocab, int32_t chosen, int n_top, struct logprob_alt *top,
                       int *n_out);


/* A token as an entry shows it: its text (any bytes: "token" gets them as valid UTF-8,
 * ill-formed parts as U+FFFD; "bytes" gets them exactly) and its log-probability. */
struct logprob_token {
    const char *text;
    size_t len;
    float logprob;
};

/* Appends one entry to b. with_top: the "top_logprobs" array (of n_top alternatives; it
 * is written even when n_top is 0). */
void logprobs_entry_json(struct textbuf *b, const struct logprob_token *tok, bool with_top,
                         const struct logprob_token *top, int n_top);

struct logprob_entry {
    char *json;      /* one object (owned) */
    size_t len;
    uint64_t start;  /* the token's text in the textout input: [start, end) */
    uint64_t end;
};

struct logprob_queue {
    struct logprob_entry *v;
    size_t head, n, cap; /* live entries are v[head .. n) */
};

/* Queues one entry (json[0..len) is copied). Returns false when out of memory (the entry
 * is lost; the generation goes on). */
bool logprob_queue_push(struct logprob_queue *q, const char *json, size_t len, uint64_t start, uint64_t end);

/* The entries whose text has reached the client: those, from the head, that start before
 * `released`, or hold no text and sit at or before it (a control token that prints
 * nothing). Appends them to b as the elements of a JSON array -- "[e1,e2]" -- and drops
 * them; returns how many (0: b untouched). */
size_t logprob_queue_take(struct logprob_queue *q, uint64_t released, struct textbuf *b);

/* Drops every entry and frees the storage; the queue can be used again. */
void logprob_queue_clear(struct logprob_queue *q);

#endif
