// common.h -- the few pieces of llama.cpp's `common` library that tests/test-llama-archs.cpp
// uses, so Bellows builds that program (a generator of random models of every
// architecture, `-o DIR`) against its own `llama` target without building `common`.
#pragma once
#include "llama.h"
#include "log.h"
#include <vector>

static inline void common_init(void) {}

static inline void common_batch_add(struct llama_batch & batch, llama_token id, llama_pos pos,
                                    const std::vector<llama_seq_id> & seq_ids, bool logits) {
    batch.token[batch.n_tokens] = id;
    batch.pos[batch.n_tokens] = pos;
    batch.n_seq_id[batch.n_tokens] = (int32_t)seq_ids.size();
    for (size_t i = 0; i < seq_ids.size(); i++)
        batch.seq_id[batch.n_tokens][i] = seq_ids[i];
    batch.logits[batch.n_tokens] = logits;
    batch.n_tokens++;
}
