/* policy.c -- see policy.h. Pure: no I/O, no allocation. */
#include "policy/policy.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { POLICY_MIN_RESERVATION = 4096, POLICY_BLOCK = 1024, POLICY_MAX_ROOM = 1024,
       POLICY_DEFAULT_NUM_KEEP = 4 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- sizing ---------------------------------------------------------------------- */

int policy_cmax(int n_ctx_train, int operator_cap)
{
    if (operator_cap <= 0)
        return n_ctx_train > 0 ? n_ctx_train : 0;
    if (n_ctx_train <= 0)
        return operator_cap;
    return n_ctx_train < operator_cap ? n_ctx_train : operator_cap;
}

int policy_response_budget(int n_prompt, int num_predict)
{
    return num_predict > 0 ? num_predict : n_prompt;
}

int policy_reservation(int n_prompt, int num_predict, int cmax)
{
    int64_t need = (int64_t)n_prompt + policy_response_budget(n_prompt, num_predict);
    int64_t rounded = (need + POLICY_BLOCK - 1) / POLICY_BLOCK * POLICY_BLOCK;
    return (int)min64(cmax, max64(POLICY_MIN_RESERVATION, rounded));
}

int policy_room(int n_prompt, int num_predict, int cmax)
{
    int64_t r = policy_response_budget(n_prompt, num_predict);
    return (int)min64(min64(r, POLICY_MAX_ROOM), cmax / 4);
}

bool policy_must_cut(int n_prompt, int room, int cmax)
{
    return (int64_t)n_prompt + room > cmax;
}

int policy_prompt_budget(int cmax, int room)
{
    return cmax - room;
}

/* ---- chat cut ---------------------------------------------------------------------- */

static const struct policy_msg marker_msg = {
    .role = POLICY_CUT_MARKER_ROLE, .content = POLICY_CUT_MARKER, .n_images = 0,
};

static bool is_system(const struct policy_msg *m)
{
    return m->role && strcmp(m->role, "system") == 0;
}

/* One candidate list. `from` is the input index where the kept suffix of the middle
 * starts: a non-system middle message i is kept iff i >= from (from == last keeps none). */
struct shape {
    bool keep_first; /* M1 kept */
    bool marker;     /* something dropped: marker after M1 (or in M1's place) */
    size_t from;
};

/* Write the shape's list into out->msgs/idx in input order; returns its length. */
static size_t emit(const struct policy_msg *msgs, size_t n, size_t first, struct shape s,
                   struct policy_chat_cut *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = is_system(&msgs[i]) || i == n - 1 || (i == first && s.keep_first) ||
                    (i > first && i >= s.from);
        if (keep) {
            out->msgs[k] = msgs[i];
            out->idx[k++] = (int)i;
        }
        if (i == first && s.marker) {
            out->msgs[k] = marker_msg;
            out->idx[k++] = POLICY_CUT_MARKER_IDX;
        }
    }
    return k;
}

/* Input index where a suffix of the middle's last k non-system messages starts. O(n); a
 * probe renders and tokenizes the whole list anyway, so a lookup table would save nothing. */
static size_t suffix_start(const struct policy_msg *msgs, size_t first, size_t last, size_t k)
{
    size_t from = last;
    while (k > 0 && from > first + 1) {
        from--;
        if (!is_system(&msgs[from]))
            k--;
    }
    return from;
}

/* Measure one shape. Returns the count (>= 0) or the counter's negative code. */
static int measure(const struct policy_msg *msgs, size_t n, size_t first, struct shape s,
                   policy_count_fn count, void *ud, struct policy_chat_cut *out)
{
    size_t k = emit(msgs, n, first, s, out);
    return count(ud, out->msgs, k);
}

static int count_failed(struct bw_err *err, int rc)
{
    return bw_errf(err, rc, "counting the rendered prompt failed: %s", bw_strerror(rc));
}

/* Guess tokens of the cut marker's own rendering (its text and framing); only steers probes. */
#define MARKER_EST 16
/* Probes guided by the estimates before plain bisection takes over. */
#define INTERP_PROBES 4

/* Estimated tokens of the list keeping the middle's last k non-system messages:
 * ratio x (base + suf[k]), the ratio calibrated by the exact counts seen so far. Returns
 * the largest k in [a, b] predicted to fit the budget, or a when none is. */
static ptrdiff_t interpolate(const int64_t *suf, int64_t base, double ratio, int budget, ptrdiff_t a, ptrdiff_t b)
{
    ptrdiff_t best = a;
    while (a <= b) {
        ptrdiff_t m = a + (b - a) / 2;
        if (ratio * (double)(base + suf[m]) <= (double)budget) {
            best = m;
            a = m + 1;
        } else {
            b = m - 1;
        }
    }
    return best;
}

/* Suffix sums of the middle's non-system messages' estimates, newest first: suf[k] is the
 * sum over the last k. *base: the estimate of everything always kept (system messages, M1,
 * M_last, the marker). NULL when out of memory (the caller bisects). */
static int64_t *suffix_sums(const struct policy_msg *msgs, size_t n, size_t first, size_t n_middle, const int *est,
                            int64_t *base, int64_t *all)
{
    int64_t *suf = malloc((n_middle + 1) * sizeof *suf);
    if (!suf)
        return NULL;
    suf[0] = 0;
    size_t k = 0;
    for (size_t i = n - 1; i-- > first + 1;)
        if (!is_system(&msgs[i])) {
            suf[k + 1] = suf[k] + (est[i] > 0 ? est[i] : 0);
            k++;
        }
    *all = 0;
    for (size_t i = 0; i < n; i++)
        *all += est[i] > 0 ? est[i] : 0;
    *base = *all - suf[n_middle] + MARKER_EST;
    return suf;
}

int policy_chat_cut(const struct policy_msg *msgs, size_t n, int cmax, int room,
                    policy_count_fn count, void *ud, struct policy_chat_cut *out,
                    struct bw_err *err)
{
    return policy_chat_cut_est(msgs, n, cmax, room, NULL, -1, count, ud, out, err);
}

int policy_chat_cut_est(const struct policy_msg *msgs, size_t n, int cmax, int room, const int *est, int total_known,
                        policy_count_fn count, void *ud, struct policy_chat_cut *out, struct bw_err *err)
{
    if (!msgs || n == 0 || n > INT_MAX || !count || !out || !out->msgs || !out->idx)
        return bw_errf(err, BW_EINVAL, "chat cut: no messages or no output storage");
    if (cmax <= 0 || room < 0 || room >= cmax)
        return bw_errf(err, BW_EINVAL, "chat cut: bad context %d or room %d", cmax, room);
    const int budget = policy_prompt_budget(cmax, room);
    const size_t last = n - 1;

    size_t first = n; /* M1; n when every message is a system message */
    for (size_t i = 0; i < n && first == n; i++)
        if (!is_system(&msgs[i]))
            first = i;
    size_t n_middle = 0; /* non-system messages strictly between M1 and M_last */
    for (size_t i = first + 1; i < last; i++)
        n_middle += !is_system(&msgs[i]);

    /* 1. The whole list; `from` = first + 1 keeps every middle message. */
    struct shape best = { .keep_first = true, .marker = false, .from = first + 1 };
    const int total = est && total_known >= 0 ? total_known : measure(msgs, n, first, best, count, ud, out);
    if (total < 0)
        return count_failed(err, total);
    int best_tokens = total;

    if (total > budget) {
        /* Nothing to drop when there is no M1 or M1 is the message being answered. */
        if (first >= last)
            goto too_long;

        /* 2. Largest k in [0, n_middle) whose list fits. Invariant: k <= lo fits (lo == -1:
         * none measured yet), k >= hi does not (hi == n_middle is the whole list, known too
         * long). Only measured lists are accepted, so the result fits whatever the counter.
         * With estimates the first probes go where the estimates say the answer is (lists
         * of about the budget's size, whatever the chat's length), then bisection. */
        int64_t base = 0, all = 0;
        int64_t *suf = est ? suffix_sums(msgs, n, first, n_middle, est, &base, &all) : NULL;
        double ratio = all > 0 ? (double)total / (double)all : 1.0;
        ptrdiff_t lo = -1, hi = (ptrdiff_t)n_middle;
        for (int probe = 0; hi - lo > 1; probe++) {
            ptrdiff_t mid = suf && probe < INTERP_PROBES ? interpolate(suf, base, ratio, budget, lo + 1, hi - 1)
                                                         : lo + (hi - lo) / 2;
            struct shape s = { true, true, suffix_start(msgs, first, last, (size_t)mid) };
            int c = measure(msgs, n, first, s, count, ud, out);
            if (c < 0) {
                free(suf);
                return count_failed(err, c);
            }
            /* Calibrate on real counts only: a counter that refuses a list (a template that
             * needs alternating roles) answers a huge count, which says nothing of sizes. */
            if (suf && base + suf[mid] > 0 && c < INT_MAX / 8)
                ratio = (double)c / (double)(base + suf[mid]);
            if (c <= budget) {
                lo = mid;
                best = s;
                best_tokens = c;
            } else {
                hi = mid;
            }
        }
        free(suf);

        if (lo < 0) {
            /* 3. Not even system + M1 + marker + M_last: drop M1 and the whole middle. */
            struct shape s = { .keep_first = false, .marker = true, .from = last };
            int c = measure(msgs, n, first, s, count, ud, out);
            if (c < 0)
                return count_failed(err, c);
            if (c > budget)
                goto too_long;
            best = s;
            best_tokens = c;
        }
    }

    /* The last list measured may be a rejected probe: write the chosen one again. */
    out->n_kept = emit(msgs, n, first, best, out);
    out->n_dropped = n - (out->n_kept - (best.marker ? 1 : 0));
    out->n_tokens_before = total;
    out->n_tokens_after = best_tokens;
    return BW_OK;

too_long: /* 4. */
    return bw_errf(err, BW_ETOOLONG, "prompt is %d tokens, the model's context is %d",
                   total, cmax);
}

/* ---- raw prompt cut ---------------------------------------------------------------- */

int policy_raw_cut(int n_tokens, int num_keep, int budget, struct policy_raw_cut *out,
                   struct bw_err *err)
{
    if (n_tokens < 0 || budget < 1 || !out)
        return bw_errf(err, BW_EINVAL, "raw cut: bad token count %d or budget %d",
                       n_tokens, budget);
    if (n_tokens <= budget) {
        *out = (struct policy_raw_cut){ n_tokens, n_tokens, 0 };
        return BW_OK;
    }
    int keep = num_keep < 0 ? POLICY_DEFAULT_NUM_KEEP : num_keep;
    if (keep > budget - 1)
        keep = budget - 1; /* the newest token always survives */
    int tail_start = n_tokens - (budget - keep);
    *out = (struct policy_raw_cut){ keep, tail_start, tail_start - keep };
    return BW_OK;
}

/* ---- embeddings -------------------------------------------------------------------- */

int policy_embed_cut(int n_tokens, int cmax, bool truncate, int *n_keep, struct bw_err *err)
{
    if (n_tokens < 0 || cmax <= 0 || !n_keep)
        return bw_errf(err, BW_EINVAL, "embed cut: bad token count %d or context %d",
                       n_tokens, cmax);
    if (n_tokens > cmax && !truncate)
        return bw_errf(err, BW_ETOOLONG, "input is %d tokens, the model's context is %d",
                       n_tokens, cmax);
    *n_keep = n_tokens < cmax ? n_tokens : cmax;
    return BW_OK;
}
