/* limits.c -- see limits.h. */
#include "proto/limits.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/options.h"
#include "store/names.h"

/* ---- the counts --------------------------------------------------------------------------- */

const struct limits_count_def limits_counts[LIMITS_N_COUNTS] = {
    [LIMITS_MESSAGES] = {"messages", "messages", "BELLOWS_MAX_MESSAGES", 10000, 1000000,
                         "messages in one chat request"},
    [LIMITS_TOOLS] = {"tools", "tools", "BELLOWS_MAX_TOOLS", 512, 100000, "tools in one request"},
    [LIMITS_INPUTS] = {"input", "inputs", "BELLOWS_MAX_INPUTS", 2048, 1000000,
                       "embedding inputs (or /v1/completions prompts) in one request"},
    [LIMITS_STOP] = {"options.stop", "strings", NULL, OPTIONS_MAX_STOP, OPTIONS_MAX_STOP, "stop strings"},
    [LIMITS_STOP_BYTES] = {"options.stop", "bytes", NULL, 1024, 1024, "bytes of one stop string"},
    [LIMITS_MODEL_NAME] = {"model", "bytes", NULL, NAMES_FULL_MAX, NAMES_FULL_MAX, "bytes of a model name"},
};

void limits_defaults(struct limits *l)
{
    for (int i = 0; i < LIMITS_N_COUNTS; i++)
        l->max[i] = limits_counts[i].def;
}

int limits_from_env(struct limits *l, const char *(*lookup)(const char *name), struct bw_err *err)
{
    struct limits next = *l;
    for (int i = 0; i < LIMITS_N_COUNTS; i++) {
        const struct limits_count_def *d = &limits_counts[i];
        const char *v = d->env ? lookup(d->env) : NULL;
        if (!v || !*v)
            continue;
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || *end || x < 1 || x > d->max_config)
            return bw_errf(err, BW_EINVAL, "%s=%s: expected an integer from 1 to %" PRId64, d->env, v, d->max_config);
        next.max[i] = x;
    }
    *l = next;
    return BW_OK;
}

int limits_check_count(const struct limits *l, enum limits_count id, size_t n, struct bw_err *err)
{
    const struct limits_count_def *d = &limits_counts[id];
    if ((uint64_t)n <= (uint64_t)l->max[id])
        return BW_OK;
    if (d->env)
        return bw_errf(err, BW_EINVAL, "%s: %zu %s, at most %" PRId64 " (%s raises the limit)", d->field, n, d->unit,
                       l->max[id], d->env);
    return bw_errf(err, BW_EINVAL, "%s: %zu %s, at most %" PRId64, d->field, n, d->unit, l->max[id]);
}

int limits_check_body(const struct limits *l, const json_t *body, struct bw_err *err)
{
    static const struct {
        const char *key;
        enum limits_count id;
    } arrays[] = {{"messages", LIMITS_MESSAGES}, {"tools", LIMITS_TOOLS}, {"input", LIMITS_INPUTS},
                  {"prompt", LIMITS_INPUTS}};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        const json_t *v = json_object_get(body, arrays[i].key);
        if (!json_is_array(v))
            continue;
        size_t n = json_array_size(v);
        const json_t *first = json_array_get(v, 0);
        /* input / prompt: an array of token ids is one input, an array of arrays is many. */
        if (arrays[i].id == LIMITS_INPUTS && json_is_integer(first))
            continue;
        int rc = limits_check_count(l, arrays[i].id, n, err);
        if (rc) {
            if (arrays[i].id == LIMITS_INPUTS && err) /* say which field it was */
                bw_errf(err, BW_EINVAL, "%s: %zu inputs, at most %" PRId64 " (%s raises the limit)", arrays[i].key, n,
                        l->max[LIMITS_INPUTS], limits_counts[LIMITS_INPUTS].env);
            return rc;
        }
    }
    return BW_OK;
}

/* ---- the option ranges ----------------------------------------------------------------------- */

#define CMAX_UNKNOWN (1 << 24)

enum range_kind { RANGE_INT, RANGE_FLOAT };
enum range_max { MAX_FIXED, MAX_CMAX };

struct option_range {
    const char *name;
    enum range_kind kind;
    double min, max;     /* inclusive */
    enum range_max max_kind;
    const char *note;    /* what the bounds mean, or NULL */
};

/* Floats: anything a float holds (JSON has no inf/NaN, but 1e39 becomes inf as a float).
 * Integers: anything an int holds, tighter where a value costs memory or has a meaning. */
static const struct option_range ranges[] = {
    {"temperature", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    {"top_p", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    {"min_p", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    {"typical_p", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    {"repeat_penalty", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    {"presence_penalty", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    {"frequency_penalty", RANGE_FLOAT, -FLT_MAX, FLT_MAX, MAX_FIXED, NULL},
    /* -1: the whole context (Ollama); the sampler keeps a ring of that many tokens. */
    {"repeat_last_n", RANGE_INT, -1, 0, MAX_CMAX, "the model's context"},
    {"num_keep", RANGE_INT, -1, 0, MAX_CMAX, "the model's context"},
    /* -1: until the end of the text, -2: until the context is full (Ollama). */
    {"num_predict", RANGE_INT, -2, INT_MAX, MAX_FIXED, NULL},
    /* 0 or -1: off. No vocabulary is larger. */
    {"top_k", RANGE_INT, -1, 1 << 20, MAX_FIXED, "0 or -1: off"},
    {"seed", RANGE_INT, -9.3e18, 9.3e18, MAX_FIXED, "any 64-bit integer; -1: random"},
    {"num_ctx", RANGE_INT, INT_MIN, INT_MAX, MAX_FIXED, NULL},
    {"num_batch", RANGE_INT, INT_MIN, INT_MAX, MAX_FIXED, NULL},
    {"num_gpu", RANGE_INT, INT_MIN, INT_MAX, MAX_FIXED, NULL},
    {"main_gpu", RANGE_INT, INT_MIN, INT_MAX, MAX_FIXED, NULL},
    {"num_thread", RANGE_INT, INT_MIN, INT_MAX, MAX_FIXED, NULL},
};

static bool integral(const json_t *v)
{
    return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
}

static int check_stop(const struct limits *l, const json_t *v, struct bw_err *err)
{
    if (!json_is_string(v) && !json_is_array(v))
        return BW_OK; /* options_apply names the type */
    if (json_is_array(v)) {
        int rc = limits_check_count(l, LIMITS_STOP, json_array_size(v), err);
        if (rc)
            return rc;
    }
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        size_t len = json_string_length(s);
        if (json_is_string(s) && (int64_t)len > l->max[LIMITS_STOP_BYTES])
            return bw_errf(err, BW_EINVAL, "options.stop[%zu] is %zu bytes, at most %" PRId64, i, len,
                           l->max[LIMITS_STOP_BYTES]);
    }
    return BW_OK;
}

int limits_check_options(const struct limits *l, const json_t *options, int cmax, struct bw_err *err)
{
    if (!json_is_object(options))
        return BW_OK;
    if (cmax <= 0)
        cmax = CMAX_UNKNOWN;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)options, key, v) {
        if (!strcmp(key, "stop")) {
            int rc = check_stop(l, v, err);
            if (rc)
                return rc;
            continue;
        }
        const struct option_range *r = NULL;
        for (size_t i = 0; i < sizeof ranges / sizeof ranges[0] && !r; i++)
            if (!strcmp(ranges[i].name, key))
                r = &ranges[i];
        if (!r || !json_is_number(v) || (r->kind == RANGE_INT && !integral(v)))
            continue; /* unknown keys are ignored; wrong types are options_apply's to name */
        double x = json_number_value(v);
        double max = r->max_kind == MAX_CMAX ? (double)cmax : r->max;
        if (r->kind == RANGE_FLOAT && !(x >= r->min && x <= max))
            return bw_errf(err, BW_EINVAL, "options.%s must be a finite number a float holds (at most %g in magnitude)",
                           key, (double)FLT_MAX);
        /* An int64 past 2^53 is not exact as a double, but anything that far is out anyway. */
        if (r->kind == RANGE_INT && json_is_integer(v))
            x = (double)json_integer_value(v);
        if (r->kind == RANGE_INT && !(x >= r->min && x <= max)) {
            if (r->max_kind == MAX_CMAX)
                return bw_errf(err, BW_EINVAL, "options.%s must be between %.0f and %d (%s)", key, r->min, cmax,
                               r->note);
            return bw_errf(err, BW_EINVAL, "options.%s must be between %.0f and %.0f%s%s%s", key, r->min, max,
                           r->note ? " (" : "", r->note ? r->note : "", r->note ? ")" : "");
        }
    }
    return BW_OK;
}

/* ---- durations -------------------------------------------------------------------------------- */

int64_t limits_keep_alive(int64_t ns)
{
    return ns < 0 || ns > LIMITS_KEEP_ALIVE_FOREVER_NS ? -1 : ns;
}

void limits_print_env_help(FILE *f)
{
    for (int i = 0; i < LIMITS_N_COUNTS; i++) {
        const struct limits_count_def *d = &limits_counts[i];
        if (d->env)
            fprintf(f, "  %-25s %s (default %" PRId64 ")\n", d->env, d->help, d->def);
    }
}
