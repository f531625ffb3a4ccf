/* modelfile.h -- Ollama's Modelfile, parsed on the client, and the typing of model
 * parameters (shared with the REPL's `/set parameter`).
 *
 * Pure: parses text it is given; resolving FROM against the file system is the caller's
 * job (cli/models.c). Grammar (Ollama's docs/modelfile.md): one instruction per line,
 * case-insensitive, in any order; `#` starts a comment line; a value is the rest of the
 * line, a "quoted string" (with \" and \\ escapes), or a """multi-line string""".
 * Instructions: FROM (required), PARAMETER key value, SYSTEM, TEMPLATE, LICENSE
 * (repeatable; joined by blank lines), MESSAGE role text. ADAPTER is refused (Bellows has
 * no LoRA support yet). */
#ifndef BELLOWS_CLI_MODELFILE_H
#define BELLOWS_CLI_MODELFILE_H

#include <jansson.h>

#include "util/err.h"

struct modelfile {
    char *from;        /* as written (a model name or a path); NULL when missing */
    char *system;      /* NULL when absent */
    char *template_;   /* NULL when absent */
    char *license;     /* NULL when absent */
    json_t *parameters; /* object: typed values, "stop" an array; never NULL after a parse */
    json_t *messages;   /* array of {role, content}; never NULL after a parse */
};

/* Parses text (len bytes, need not be NUL-terminated) into *out, which the caller frees
 * with modelfile_fini (only after BW_OK). Returns BW_OK, BW_EINVAL with "line N: ..." in
 * err (out untouched), or BW_ENOMEM. */
int modelfile_parse(const char *text, size_t len, struct modelfile *out, struct bw_err *err);
void modelfile_fini(struct modelfile *mf);

/* Adds parameter KEY with the text VALUE to the object params, typed the way the server
 * expects it (Ollama's option types): integers (num_predict, top_k, seed, num_ctx, ...),
 * numbers (temperature, top_p, ...), booleans (true/false), and `stop`, which appends to
 * an array (so repeated stops accumulate). A value in double quotes is unquoted first.
 * Returns BW_OK, or BW_EINVAL naming the key ("unknown parameter 'x'", "temperature
 * must be a number, not 'hot'"); params is unchanged on error. */
int modelfile_param_set(json_t *params, const char *key, const char *value, struct bw_err *err);

#endif
