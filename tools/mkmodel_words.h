/* mkmodel_words.h -- the demo model's words: a bigram model of a text, written into the
 * weights of the qwen2 model that bellows-mkmodel generates.
 *
 * The text (tools/demo-corpus.txt: sentences from the project's own docs) is cut into
 * units -- words and the punctuation . , ! ? -- and each unit is tokenized alone with the
 * model's vocabulary (" word", with its leading space, as inside a sentence). The most
 * frequent units that are a single token form the word set W. Each word of W owns one
 * dimension of the embedding (a one-hot direction), one more dimension is the start
 * state, which every token outside W maps to (the prompt, the chat template's tokens), and
 * the last dimension carries a constant ("bias") shared by every token. output.weight then
 * gives, for each next token n, logit(n | state s) = log P(n | s) of the bigram, smoothed
 * with the unigram; tokens outside W and end-of-turn get a logit far below (-40), except
 * end-of-turn after a sentence end (. ! ?), which gets a share of the most likely next
 * word's probability below 1 -- sampling ends answers, greedy decoding never does (tests
 * that want an endless answer ask for temperature 0). An answer's first word comes
 * without its leading space: that bare token (when it is one) shares its word's state and
 * is the one written after the start state, the spaced one everywhere else.
 *
 * The arithmetic: the embedding row of a token is AMP * (e_s + e_bias); qwen2's RMS norm
 * maps it to sqrt(n_embd / 2) * (e_s + e_bias) whatever AMP is (the output norm's weight
 * is 1), so output row n holds (log P(n | s) - u_n) / sqrt(n_embd / 2) in dimension s and
 * u_n / sqrt(n_embd / 2) in the bias dimension (u_n: the mean over states, so that the
 * per-state entries stay small and the random attention and feed-forward layers, whose
 * output adds to the residual stream, perturb the logits by a fraction of one). AMP sets
 * how much those layers perturb: their output has a fixed size, the embedding's grows
 * with AMP. */
#ifndef BELLOWS_MKMODEL_WORDS_H
#define BELLOWS_MKMODEL_WORDS_H

#include <stddef.h>
#include <stdint.h>

#define WORDS_OOV (-1)      /* a unit that is not one token, or not a word */
#define WORDS_SENTENCE (-2) /* a sentence begins */

struct words_model {
    int n_words;      /* |W|: states 0..n_words-1 are the words, state n_words the start state */
    int32_t *tok;     /* [n_words]: the token of each word, most frequent first */
    int32_t *bare;    /* [n_words]: the word without its leading space, one token, or -1: an
                       * answer's first word (after the start state) is written bare, the
                       * others with their space; a bare token shares its word's state */
    int32_t eot;      /* the end-of-turn token (<|im_end|>) */
    float *logp;      /* [(n_words + 1) rows: states] x [(n_words + 1) columns: the words, then
                       * end-of-turn]: log P(next | state); each row sums to 1 */
};

/* Pure: builds the bigram from a sequence of units (token ids, WORDS_OOV, WORDS_SENTENCE).
 * W is the max_words most frequent token ids (ties: the lower id); END holds the tokens
 * after which end-of-turn may come (n_end of them), EOT_SHARE (0 < share < 1) its
 * probability there relative to the most likely next word. A unit outside W breaks the
 * chain: no pair with it is counted. bare[] is all -1 (words_model_from_corpus fills
 * it). Returns 0, or -1 when out of memory or no word. */
int words_model_from_units(const int32_t *units, size_t n, int max_words, const int32_t *end, int n_end,
                           int32_t eot, float eot_share, struct words_model *out);

/* Reads CORPUS (one sentence a line; lines that begin with '#' are comments) and
 * tokenizes its units with the vocabulary at VOCAB_PATH (through libllama, vocab only),
 * then builds the bigram as above. Returns 0, or -1 with a message on stderr. */
int words_model_from_corpus(const char *corpus, const char *vocab_path, int max_words, struct words_model *out);

/* Pure: the n_vocab x n_embd rows of token_embd.weight and of output.weight described
 * above (n_embd >= n_words + 2). words_fill_embd adds to what OUT holds (the caller puts a
 * little noise there, so that tokens outside W, which share the start state, still differ
 * for attention and in embeddings); words_fill_output overwrites. */
void words_fill_embd(const struct words_model *m, int n_embd, int64_t n_vocab, float amp, float *out);
void words_fill_output(const struct words_model *m, int n_embd, int64_t n_vocab, float *out);

void words_model_free(struct words_model *m);

#endif
