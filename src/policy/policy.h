/* policy.h -- the context policy of spec/context.md: how big a request's window is and,
 * at the model's real maximum, how its prompt is cut.
 *
 * PURE: no I/O, no clock, no libllama, no allocation, no global state. Everything it needs
 * comes in as arguments: token counts, and for the chat cut a callback that renders and
 * tokenizes a message list. Safe from any thread. The runner calls it after tokenizing
 * a request (sizing and truncation live there, rule 1); the API layer may use the same
 * functions for reporting. It does not log: the caller logs each cut (rule 8).
 *
 * Terms (spec/context.md): L = tokens of the whole untruncated prompt, Cmax = the most one
 * request may hold, R = response budget, D = reservation, room = tokens kept free for the
 * answer when deciding truncation. A client's options.num_ctx is NOT an input to any
 * function here: it is accepted and ignored by design (stale client values must not bring
 * silent truncation back; the response's context_max tells the client its real window).
 *
 * Counts are int, like llama.h's token counts; intermediate sums are done in 64 bits. */
#ifndef BELLOWS_POLICY_H
#define BELLOWS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* ---- sizing ---------------------------------------------------------------------- */

/* Cmax: the model's trained context (llama_model_n_ctx_train) lowered, never raised, by
 * the operator's BELLOWS_CONTEXT_LENGTH. operator_cap <= 0 means unset. n_ctx_train <= 0
 * means unknown: the cap is returned if set, else 0 (the caller must refuse the model). */
int policy_cmax(int n_ctx_train, int operator_cap);

/* R: num_predict when > 0; otherwise (0, -1 "until EOS", -2 "until full") the prompt
 * length L, so a request reserves as much for the answer as its prompt takes. */
int policy_response_budget(int n_prompt, int num_predict);

/* D = min(Cmax, max(4096, ceil1024(L + R))), R from policy_response_budget(). The
 * request is admitted when the KV pool has D free cells; generation may outgrow D up to
 * Cmax (rule 3). Returns cmax itself when cmax < 4096. */
int policy_reservation(int n_prompt, int num_predict, int cmax);

/* room = min(R, 1024, Cmax / 4): tokens kept free for the answer when deciding whether
 * to cut. Small on purpose: it only decides truncation, the answer may still run to Cmax. */
int policy_room(int n_prompt, int num_predict, int cmax);

/* Rule 4: the prompt is cut only when L + room > Cmax ... */
bool policy_must_cut(int n_prompt, int room, int cmax);
/* ... and then down to this many tokens: Cmax - room. */
int policy_prompt_budget(int cmax, int room);

/* ---- chat cut (rule 5) ------------------------------------------------------------- */

/* The marker message put where history was dropped (role "system"). It exists only
 * inside the prompt and is never returned to the client. 9 words. */
#define POLICY_CUT_MARKER "[Earlier messages were omitted to fit the context window.]"
#define POLICY_CUT_MARKER_ROLE "system"
/* The value of policy_chat_cut.idx[i] that stands for the marker. */
#define POLICY_CUT_MARKER_IDX (-1)

/* A borrowed view of one chat message. role is "system", "user", "assistant" or "tool";
 * only "system" is special here. Strings are not copied: they must outlive the cut's
 * output. n_images is passed through to the counter, which prices images. */
struct policy_msg {
    const char *role;
    const char *content;
    int n_images;
    /* The whole message as a JSON object text for the chat template (tool_calls, thinking,
     * tool_name, ...; role and content as above), or NULL: the template then sees
     * {role, content}. Borrowed like the rest. */
    const char *json;
};

/* Tokens of the prompt RENDERED from exactly msgs[0..n_msgs) (chat template applied,
 * tokenized with the model's vocabulary, images included), or a negative BW_E* code.
 * Must grow when messages are added (true of any template); policy_chat_cut() only
 * trusts lists it has measured, so a non-monotone counter costs optimality, not safety. */
typedef int (*policy_count_fn)(void *ud, const struct policy_msg *msgs, size_t n_msgs);

/* Result of policy_chat_cut(). The caller points msgs and idx at its own storage, each
 * with room for n_msgs + 1 entries (every input message plus the marker), before the
 * call; policy_chat_cut() fills the rest. */
struct policy_chat_cut {
    struct policy_msg *msgs; /* out: the kept list in order, marker included: render this */
    int *idx;                /* out: idx[i] = input index of msgs[i], or POLICY_CUT_MARKER_IDX */
    size_t n_kept;           /* entries written to msgs and idx */
    size_t n_dropped;        /* input messages not kept; > 0 exactly when a marker is present */
    int n_tokens_before;     /* L: the whole input list, rendered */
    int n_tokens_after;      /* the kept list, marker included, rendered (== L when not cut) */
};

/* Cut a chat so that its rendered prompt fits Cmax - room (spec/context.md rule 5).
 *
 * Names: M1 is the first non-system message, M_last the last message (the one being
 * answered), the middle is the messages strictly between them.
 *   1. The whole list is measured; when L <= Cmax - room nothing is cut and no marker is
 *      added. A caller may therefore call this for every chat: it costs one count.
 *   2. Otherwise every system message, M1 and M_last are kept, plus the LONGEST SUFFIX of
 *      the middle's non-system messages that fits, found by binary search on the suffix
 *      length: about log2(middle) + 1 counts. The marker is inserted right after M1.
 *   3. If not even system + M1 + marker + M_last fit, M1 is dropped too (with the whole
 *      middle) and the marker takes M1's place: system + marker + M_last.
 *   4. If that does not fit either: BW_ETOOLONG, "prompt is L tokens, the model's context
 *      is Cmax". An over-limit prompt is never produced.
 * With no middle (one or two non-system messages) step 2 has nothing to drop, so such a
 * chat is either kept whole or goes straight to steps 3-4 (step 3 only when M1 is not
 * M_last); a chat with no non-system message, or whose only one is M_last, cannot be cut.
 *
 * System messages "in place": every system message is kept and the relative order of all
 * kept messages is the input order. A system message inside the kept suffix stays between
 * its neighbours; one inside the dropped part of the middle stays after M1 and the marker
 * and before the kept suffix; ones before M1 stay before it. E.g. with the middle cut to
 * its last message:  S0 U1 A2 S3 U4 A5 U6  ->  S0 U1 [marker] S3 A5 U6.
 *
 * Returns BW_OK with *out filled. Errors: BW_EINVAL (n_msgs == 0, NULL pointers, cmax <= 0,
 * room outside [0, cmax)), BW_ETOOLONG (step 4), or the counter's own negative code,
 * returned as-is with a generic message (a counter that wants its own text keeps it in
 * ud); the counter is never called again after it fails. On error n_kept, n_dropped and
 * the token counts are untouched; msgs/idx served as scratch and hold garbage. */
int policy_chat_cut(const struct policy_msg *msgs, size_t n_msgs, int cmax, int room,
                    policy_count_fn count, void *ud, struct policy_chat_cut *out,
                    struct bw_err *err);

/* policy_chat_cut for long chats, with the same result rules (the answer is a list the
 * counter measured to fit, the longest such suffix for a counter that grows with the list)
 * but probes that cost about the budget, not the chat: est[i] >= 0 estimates message i's
 * tokens on its own (e.g. its content, tokenized once), and total_known >= 0 is the whole
 * list's count when the caller already has it (else it is counted here). The first probes
 * go where the estimates, calibrated by each exact count, put the answer; bisection
 * finishes. A bad estimate costs probes, never a wrong answer. est NULL: policy_chat_cut. */
int policy_chat_cut_est(const struct policy_msg *msgs, size_t n_msgs, int cmax, int room, const int *est,
                        int total_known, policy_count_fn count, void *ud, struct policy_chat_cut *out,
                        struct bw_err *err);

/* ---- raw prompt cut (rule 6) ------------------------------------------------------ */

/* Keep tokens [0, n_head) and [tail_start, n_tokens); drop [n_head, tail_start). */
struct policy_raw_cut {
    int n_head;
    int tail_start;
    int n_dropped; /* tail_start - n_head */
};

/* For /api/generate and /v1/completions: when n_tokens > budget keep the first num_keep
 * tokens (BOS included; < 0 means the default 4) and the newest budget - num_keep ones,
 * so exactly budget tokens remain. num_keep is clamped to budget - 1 so the newest token,
 * the one generation continues from, always survives (num_keep >= budget would otherwise
 * keep only the head). When n_tokens <= budget nothing is cut: n_head = tail_start =
 * n_tokens. Returns BW_OK, or BW_EINVAL (n_tokens < 0, budget < 1) leaving *out untouched. */
int policy_raw_cut(int n_tokens, int num_keep, int budget, struct policy_raw_cut *out,
                   struct bw_err *err);

/* ---- embeddings (rule 7) ------------------------------------------------------------ */

/* An input of n_tokens > Cmax is cut to its first Cmax tokens when truncate is true (the
 * API default), otherwise BW_ETOOLONG "input is N tokens, the model's context is Cmax".
 * Returns BW_OK and sets *n_keep (= min(n_tokens, cmax)); BW_EINVAL for n_tokens < 0 or
 * cmax <= 0. *n_keep is untouched on error. */
int policy_embed_cut(int n_tokens, int cmax, bool truncate, int *n_keep, struct bw_err *err);

#endif
