/* options.c -- see options.h. */
#include "proto/options.h"

#include <limits.h>
#include <math.h>
#include <string.h>

enum opt_kind { OPT_INT, OPT_FLOAT };

struct opt {
    const char *name;
    enum opt_kind kind;
    size_t offset; /* into struct engine_request */
};

#define SP(field) offsetof(struct engine_request, sampling) + offsetof(struct sampling_params, field)
static const struct opt table[] = {
    {"temperature", OPT_FLOAT, SP(temperature)},
    {"top_k", OPT_INT, SP(top_k)},
    {"top_p", OPT_FLOAT, SP(top_p)},
    {"min_p", OPT_FLOAT, SP(min_p)},
    {"typical_p", OPT_FLOAT, SP(typical_p)},
    {"repeat_last_n", OPT_INT, SP(repeat_last_n)},
    {"repeat_penalty", OPT_FLOAT, SP(repeat_penalty)},
    {"presence_penalty", OPT_FLOAT, SP(presence_penalty)},
    {"frequency_penalty", OPT_FLOAT, SP(frequency_penalty)},
    {"num_predict", OPT_INT, offsetof(struct engine_request, num_predict)},
    {"num_keep", OPT_INT, offsetof(struct engine_request, num_keep)},
};
#undef SP

/* Accepted, type-checked, and not used for sampling: load-time options (Bellows picks its
 * own), and num_ctx, which is ignored for sizing by design. */
static const char *const ignored_ints[] = {"num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread"};

static bool is_int_value(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    /* JSON has one number type: 40.0 is an integer to a JavaScript client. */
    return json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15;
}

int options_apply(const json_t *options, struct engine_request *r, const char **stop_storage, struct bw_err *err)
{
    if (!options || json_is_null(options))
        return BW_OK;
    if (!json_is_object(options))
        return bw_errf(err, BW_EINVAL, "options must be an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)options, key, v) {
        if (json_is_null(v))
            continue; /* null means "the default" to several clients */
        const struct opt *o = NULL;
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
            if (!strcmp(table[i].name, key))
                o = &table[i];
        if (o) {
            void *field = (char *)r + o->offset;
            if (o->kind == OPT_INT) {
                if (!is_int_value(v))
                    return bw_errf(err, BW_EINVAL, "option '%s' must be an integer", key);
                if (json_number_value(v) < INT_MIN || json_number_value(v) > INT_MAX) /* no overflow into int */
                    return bw_errf(err, BW_EINVAL, "options.%s must be between %d and %d", key, INT_MIN, INT_MAX);
                *(int *)field = (int)json_number_value(v);
            } else {
                if (!json_is_number(v))
                    return bw_errf(err, BW_EINVAL, "option '%s' must be a number", key);
                *(float *)field = (float)json_number_value(v);
            }
        } else if (!strcmp(key, "seed")) {
            if (!is_int_value(v))
                return bw_errf(err, BW_EINVAL, "option 'seed' must be an integer");
            r->sampling.seed = (int64_t)json_number_value(v);
        } else if (!strcmp(key, "stop")) {
            size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : (size_t)-1;
            if (n == (size_t)-1)
                return bw_errf(err, BW_EINVAL, "option 'stop' must be a string or an array of strings");
            if (n > OPTIONS_MAX_STOP)
                return bw_errf(err, BW_EINVAL, "option 'stop' has %zu strings; at most %d", n, OPTIONS_MAX_STOP);
            for (size_t i = 0; i < n; i++) {
                const json_t *s = json_is_string(v) ? v : json_array_get(v, i);
                if (!json_is_string(s) || json_string_length(s) == 0)
                    return bw_errf(err, BW_EINVAL, "option 'stop' must hold non-empty strings");
                stop_storage[i] = json_string_value(s);
            }
            r->stop = stop_storage;
            r->n_stop = n;
        } else {
            for (size_t i = 0; i < sizeof ignored_ints / sizeof ignored_ints[0]; i++)
                if (!strcmp(ignored_ints[i], key) && !is_int_value(v))
                    return bw_errf(err, BW_EINVAL, "option '%s' must be an integer", key);
            /* Unknown and load-time keys are ignored, as Ollama does. */
        }
    }
    return BW_OK;
}

json_t *options_to_json(const struct engine_request *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const void *field = (const char *)r + table[i].offset;
        json_object_set_new(o, table[i].name,
                            table[i].kind == OPT_INT ? json_integer(*(const int *)field)
                                                     : json_real(*(const float *)field));
    }
    json_object_set_new(o, "seed", json_integer(r->sampling.seed));
    json_t *stop = json_array();
    for (size_t i = 0; i < r->n_stop; i++)
        json_array_append_new(stop, json_string(r->stop[i]));
    json_object_set_new(o, "stop", stop);
    return o;
}
