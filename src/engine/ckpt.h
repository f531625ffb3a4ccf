/* ckpt.h -- the pure decisions of state checkpoints (issue 18): where a prompt's prefill
 * stops to take one, which one a new request restores, which one goes when the bounds
 * are reached. No libllama, no I/O: engine_reuse.c does the state calls.
 *
 * Why checkpoints: a recurrent state (Mamba, gated delta nets, short convolutions) is the
 * state after all of a sequence's tokens and cannot be trimmed back to a shorter prefix;
 * a sliding-window cache forgets positions behind its window. Either way a request that
 * shares only part of a cached sequence cannot start from that sequence's memory. A
 * checkpoint is a copy of the parts that cannot be rolled back (llama_state_seq_get_data_ext
 * with LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY: the recurrent state, or the SWA cells), taken
 * when the sequence held exactly n tokens; the parts that can be trimmed (full-attention
 * KV) stay in the pool. Restoring one and trimming the rest to n gives the memory of the
 * first n tokens: bit-exact, the same as a cold run of them. */
#ifndef BELLOWS_CKPT_H
#define BELLOWS_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_PER_SLOT 8 /* checkpoints kept per cached sequence (llama-server keeps 8-32) */
#define CKPT_TAIL 4     /* the second stop, this many tokens before the prompt's end: a request
                           with the same prompt again must evaluate at least one token, and a
                           re-rendered chat often differs in the last few (the generation prompt) */

struct ckpt {
    int n;           /* tokens the state covers: positions 0 .. n-1 */
    uint8_t *data;   /* malloc'd partial state */
    size_t size;
    uint64_t used;   /* engine tick of creation or last restore: the oldest goes first */
};

/* Where the prefill of an n_prompt-token prompt, n_done tokens in, must next stop so that
 * a checkpoint can be taken there: n_prompt - CKPT_TAIL, then n_prompt. Returns n_prompt
 * when no stop comes before the end (the last chunk ends there anyway). */
int ckpt_next_stop(int n_prompt, int n_done);

/* True when a prefill that has just reached n_done tokens of n_prompt should take a
 * checkpoint: at either stop, once past `reused` (the tokens the request started from,
 * whose checkpoints exist or are not needed). */
int ckpt_is_stop(int n_prompt, int n_done, int reused);

/* The newest checkpoint (largest n) with 0 < n <= limit, or -1. */
int ckpt_pick(const struct ckpt *ck, int n_ck, int limit);

/* The index among n_ck of the one with the lowest `used` (ties: the smallest n), or -1. */
int ckpt_oldest(const struct ckpt *ck, int n_ck);

#endif
