/* callgate.h -- the tool-call grammar and the reasoning block (issue 11).
 *
 * A thinking model writes its reasoning first (template/reasoning.h), and a reasoning may
 * well mention the call it is about to make ("I will use <tool_call> with ..."). The
 * tool-call grammar must hold the call, never the reasoning:
 *
 * - tool_choice "auto": the lazy grammar (llama_sampler_init_grammar_lazy_patterns, its
 *   trigger from toolcall_trigger) must not see the reasoning, or it fires on a marker
 *   written there and then holds the rest of the reasoning to a call. A struct callgate
 *   follows the generated text token by token and says which tokens the grammar is fed
 *   (sampling.c feeds it only those): none of the reasoning, every token of the answer,
 *   with the blanks that follow the close marker dropped as the splitter drops them, so
 *   the grammar's trigger buffer holds the answer as the call parser sees it (a bare JSON
 *   trigger anchored at its start then works after a reasoning too).
 * - tool_choice "required" / a named function: the grammar holds every token, so it must
 *   itself let the reasoning come first (callgate_forced_grammar).
 *
 * Which text is reasoning follows reasoning.c's rules: tag formats reason from the start
 * of the generation (after blanks) when it opens with the open marker, or from the first
 * token when the prompt opened the block (starts_inside), up to the close marker; Harmony
 * reasons in the body of each analysis message (a header naming channel "analysis" and no
 * function recipient), up to <|end|>. A token that holds both reasoning and answer text
 * (the close marker and a word after it) is fed.
 *
 * PURE: no I/O, no libllama, no allocation (callgate_forced_grammar allocates its result).
 * One struct callgate per sequence, used by the thread that owns it. */
#ifndef BELLOWS_CALLGATE_H
#define BELLOWS_CALLGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "template/reasoning.h"

/* Tokens that may be held while the start of the generation may still be the open marker
 * (blanks and a proper prefix of it); past this many they are taken as answer. */
#define CALLGATE_HOLD 32
#define CALLGATE_TAIL 32 /* bytes kept to find a marker split across tokens */

/* Caller-provided storage; fields are private to callgate.c. */
struct callgate {
    int mode;   /* none (every token), tags, harmony */
    int state;
    const char *open, *close;
    char tail[CALLGATE_TAIL]; /* the last bytes seen in the current state */
    size_t n_tail;
    size_t n_lead;            /* tags: bytes of the open marker written so far (blanks first
                                 skipped) while the generation may still open with it */
    char hdr[64];             /* harmony: the header so far (after <|channel|>) */
    size_t n_hdr;
    int32_t held[CALLGATE_HOLD];
    size_t n_held;
};

/* Starts a sequence. cfg: the request's reasoning markers (what reasoning_detect gave);
 * NULL or REASONING_NONE: no reasoning, every token is fed. cfg's marker strings must
 * outlive g (they are static in reasoning.c). Cannot fail. */
void callgate_init(struct callgate *g, const struct reasoning_cfg *cfg);

/* The next generated token: tok, whose text (control tokens with their text) is
 * piece[0..len). Writes to out the tokens the grammar must now be fed, in order (tokens
 * held earlier first), and returns how many (0 .. CALLGATE_HOLD + 1). */
size_t callgate_feed(struct callgate *g, int32_t tok, const char *piece, size_t len, int32_t *out);

/* A forced call grammar CALLS (GBNF, root "root") made to admit the reasoning first:
 *   tags, the prompt opened the block: the reasoning (at most max_pieces pieces, see
 *     gbnf_after_marker) up to the close marker, then the calls;
 *   harmony: an analysis message first, if the model wants one
 *     (<|channel|>analysis<|message|> TEXT <|end|><|start|>assistant, TEXT at most
 *     max_pieces pieces; only TEXT <|end|><|start|>assistant when the prompt opened it),
 *     then the calls.
 * NULL when there is nothing to admit (no reasoning; a tag format whose block the model
 * would have to open itself: its call comes first) or out of memory: the caller keeps
 * CALLS. Otherwise a malloc'd grammar. */
char *callgate_forced_grammar(const char *calls, const struct reasoning_cfg *cfg, int max_pieces);

#endif
