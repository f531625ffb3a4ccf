/* fuzz_options.c -- Ollama's options object onto an engine request (src/proto/options.c),
 * with the limits' checks of the same object (src/proto/limits.c).
 *
 * The input is JSON text. Whatever options_apply accepts, options_to_json writes back, and
 * that object must be accepted again and give the same fields (the mapping is one table
 * both ways). */
#include <jansson.h>

#include "engine/sampling.h"
#include "fuzz.h"
#include "proto/limits.h"
#include "proto/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!doc)
        return 0;
    struct limits lim;
    limits_defaults(&lim);
    struct bw_err err = {0};
    (void)limits_check_options(&lim, doc, 4096, &err);
    (void)limits_check_options(&lim, doc, 0, &err);

    struct engine_request r;
    memset(&r, 0, sizeof r);
    sampling_params_default(&r.sampling);
    const char *stops[OPTIONS_MAX_STOP];
    if (options_apply(doc, &r, stops, &err) == BW_OK) {
        json_t *back = options_to_json(&r);
        if (back) {
            struct engine_request r2;
            memset(&r2, 0, sizeof r2);
            sampling_params_default(&r2.sampling);
            const char *stops2[OPTIONS_MAX_STOP];
            int rc = options_apply(back, &r2, stops2, &err);
            if (rc != BW_OK)
                fprintf(stderr, "options_to_json's object refused: %s\n", err.msg);
            FUZZ_CHECK(rc == BW_OK);
            FUZZ_CHECK(r2.num_predict == r.num_predict && r2.num_keep == r.num_keep);
            FUZZ_CHECK(r2.n_stop == r.n_stop);
            for (size_t i = 0; i < r.n_stop; i++)
                FUZZ_CHECK(!strcmp(r2.stop[i], r.stop[i]));
            json_decref(back);
        }
    }
    json_decref(doc);
    return 0;
}
