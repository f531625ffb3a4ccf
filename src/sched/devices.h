/* devices.h -- the GPUs ggml can use, and their free memory (the I/O edge of placement;
 * the decision itself is estimate_place_layers, pure). A CPU-only build has none. RPC
 * servers' devices are not here: the server process never registers them (placement.h). */
#ifndef BELLOWS_DEVICES_H
#define BELLOWS_DEVICES_H

#include <stddef.h>

#include "sched/estimate.h"

/* Fills up to max GPU devices with their free memory, in ggml's order (the order llama.cpp
 * splits layers in), and, when names is not NULL, ggml's name of each ("CUDA0"). Returns
 * how many there are. Initializes ggml's backends on first use. */
size_t devices_list_gpus(struct estimate_device *out, char (*names)[64], size_t max);

#endif
