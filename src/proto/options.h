/* options.h -- Ollama's `options` object <-> the generation fields of an engine request.
 *
 * One mapping for everyone who reads options: the HTTP API (request bodies, Modelfile
 * PARAMETER layers) and the runner protocol. Keys and defaults are Ollama's
 * (anchors.md §1.4). Type rules: numbers must be JSON numbers (integers where Ollama
 * wants an int), `stop` a string or an array of strings; a wrong type is BW_EINVAL with
 * a message naming the option. Load-time and unknown options are accepted and ignored
 * (num_ctx among them: Bellows sizes the context itself, spec/context.md). */
#ifndef BELLOWS_OPTIONS_H
#define BELLOWS_OPTIONS_H

#include <jansson.h>

#include "engine/engine.h"
#include "util/err.h"

/* Applies the keys of `options` (a JSON object; NULL or null is fine) onto r's sampling
 * fields, num_predict, num_keep and stop. Stop strings are borrowed from `options`: it
 * must outlive r. `stop_storage` must have room for OPTIONS_MAX_STOP pointers; r->stop
 * points into it. Returns BW_OK, or BW_EINVAL with err naming the option (r may be
 * partly updated then; discard it). */
#define OPTIONS_MAX_STOP 16
int options_apply(const json_t *options, struct engine_request *r, const char **stop_storage, struct bw_err *err);

/* Writes r's generation fields as an options object (all keys, defaults included).
 * Returns a new reference, or NULL when out of memory. */
json_t *options_to_json(const struct engine_request *r);

#endif
