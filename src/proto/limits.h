/* limits.h -- every bound a request is held to, as data (issue 13 item 1).
 *
 * One table of counts (messages, tools, embedding inputs, stop strings, name length) and one
 * of option ranges (repeat_last_n up to the model's context, integers that fit an int,
 * floats that fit a float). The API checks a request against them at the edge, before
 * anything is allocated for it, and answers a violation with a 400 naming the field and
 * the limit: "options.repeat_last_n must be between -1 and 32768 (the model's context)".
 * Counts a user could reasonably need more of are configurable (BELLOWS_MAX_MESSAGES, ...);
 * `bellows serve --help` lists them (limits_print_env_help).
 *
 * Durations: keep_alive values past LIMITS_KEEP_ALIVE_FOREVER_NS mean forever, as negative
 * ones do (limits_keep_alive), so no expiry time can overflow.
 *
 * Pure: no I/O (the environment comes in as a lookup function; limits_print_env_help writes
 * only to the FILE it is given), no state; thread-safe. */
#ifndef BELLOWS_LIMITS_H
#define BELLOWS_LIMITS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

enum limits_count {
    LIMITS_MESSAGES,   /* messages[] of a chat (native and /v1) */
    LIMITS_TOOLS,      /* tools[] */
    LIMITS_INPUTS,     /* embedding input[] and /v1/completions prompt[] */
    LIMITS_STOP,       /* stop strings of one request (the storage is fixed: not configurable) */
    LIMITS_STOP_BYTES, /* bytes of one stop string */
    LIMITS_MODEL_NAME, /* bytes of a model name (the longest valid one: store/names.h) */
    LIMITS_N_COUNTS
};

struct limits_count_def {
    const char *field;   /* as the client spells it: "messages" */
    const char *unit;    /* "messages", "bytes" */
    const char *env;     /* BELLOWS_* variable that changes it, or NULL */
    int64_t def;         /* default */
    int64_t max_config;  /* the most the variable may ask for */
    const char *help;    /* for --help */
};
extern const struct limits_count_def limits_counts[LIMITS_N_COUNTS];

/* The counts in force (defaults, or the environment's). Plain value. */
struct limits {
    int64_t max[LIMITS_N_COUNTS];
};

void limits_defaults(struct limits *l);

/* Reads each configurable count from lookup(name) (getenv, or a test's table): NULL or
 * empty leaves the default. BW_EINVAL names the variable and the accepted range; *l is
 * untouched then. */
int limits_from_env(struct limits *l, const char *(*lookup)(const char *name), struct bw_err *err);

/* Is n within limit id? BW_OK, or BW_EINVAL: "messages: 300000 messages, at most 10000
 * (BELLOWS_MAX_MESSAGES raises it)". */
int limits_check_count(const struct limits *l, enum limits_count id, size_t n, struct bw_err *err);

/* Checks the request-level arrays of a body: messages, tools, input (arrays only), prompt
 * (arrays only: /v1/completions). Other fields are not looked at. */
int limits_check_body(const struct limits *l, const json_t *body, struct bw_err *err);

/* Checks the values of an `options` object (NULL / null / non-object: nothing to check; the
 * mapping in options.c reports wrong types) against the option ranges and the stop limits.
 * cmax: the model's context (n_ctx_train), the bound of repeat_last_n and num_keep; <= 0
 * when unknown (then 1 << 24). Values of the wrong type are left to options_apply. */
int limits_check_options(const struct limits *l, const json_t *options, int cmax, struct bw_err *err);

/* keep_alive above this means forever (100 years). */
#define LIMITS_KEEP_ALIVE_FOREVER_NS ((int64_t)100 * 365 * 24 * 3600 * 1000000000LL)
/* A keep_alive in ns (as parsed): negative or past LIMITS_KEEP_ALIVE_FOREVER_NS -> -1
 * (forever); others unchanged. */
int64_t limits_keep_alive(int64_t ns);

/* The BELLOWS_* lines of the configurable counts, for `bellows serve --help`. */
void limits_print_env_help(FILE *f);

#endif
