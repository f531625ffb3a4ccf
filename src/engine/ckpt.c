/* ckpt.c -- see ckpt.h. Pure: no I/O, no allocation. */
#include "engine/ckpt.h"

int ckpt_next_stop(int n_prompt, int n_done)
{
    int first = n_prompt - CKPT_TAIL;
    return first > n_done ? first : n_prompt;
}

int ckpt_is_stop(int n_prompt, int n_done, int reused)
{
    if (n_done <= reused || n_done <= 0)
        return 0;
    return n_done == n_prompt || n_done == n_prompt - CKPT_TAIL;
}

int ckpt_pick(const struct ckpt *ck, int n_ck, int limit)
{
    int best = -1;
    for (int i = 0; i < n_ck; i++)
        if (ck[i].n > 0 && ck[i].n <= limit && (best < 0 || ck[i].n > ck[best].n))
            best = i;
    return best;
}

int ckpt_oldest(const struct ckpt *ck, int n_ck)
{
    int best = -1;
    for (int i = 0; i < n_ck; i++)
        if (best < 0 || ck[i].used < ck[best].used || (ck[i].used == ck[best].used && ck[i].n < ck[best].n))
            best = i;
    return best;
}
