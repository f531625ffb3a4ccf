/* devices.c -- see devices.h. */
#include "sched/devices.h"

#include <stdio.h>

#include "ggml-backend.h"

size_t devices_list_gpus(struct estimate_device *out, char (*names)[64], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ggml_backend_dev_count() && n < max; i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_GPU)
            continue;
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        if (names)
            snprintf(names[n], 64, "%s", ggml_backend_dev_name(dev));
        out[n++] = (struct estimate_device){.free_bytes = free};
    }
    return n;
}
