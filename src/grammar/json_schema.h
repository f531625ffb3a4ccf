/* json_schema.h -- JSON Schema to GBNF: the grammar that holds a model's output to a schema
 * (structured output: the native API's `format: {schema}`, /v1's `response_format`
 * json_schema; the tools' argument schemas could use it too).
 *
 * Pure: no I/O, no libllama, no global state. The schema is a jansson document the caller
 * keeps; nothing of it is kept after the call, but reference counts of its values are
 * touched while it runs, so no other thread may use the same document meanwhile.
 *
 * DESIGN
 * llama.cpp's converter (common/json-schema-to-grammar.cpp at the pinned commit) is the
 * behavioural reference: the same visiting order ($ref, allOf, anyOf/oneOf, type lists,
 * const, enum, objects, arrays, strings, numbers), the same rule names ("root", "a-kv",
 * "a-rest", "ref-defs-x", "alternative-0", "item", "tuple-0", ...), the same object shape
 * (properties in their listed order, required ones first, each optional one after the
 * ones before it; no additional property unless additionalProperties says so), the same
 * whitespace rule `space` between tokens, rules sorted by name. The grammars are not the
 * reference's text: where its grammar admits a text that is not valid for the schema (or
 * not JSON), ours admits fewer texts, never other ones:
 *   - strings: a character is anything but '"', '\', controls and DEL, or an escape;
 *     \u escapes of lone surrogate halves are left out. Numbers: at most 16 integer and
 *     16 fraction digits, an exponent of at most two digits (a double every reader takes).
 *   - additionalProperties next to declared names: an additional name is written without
 *     escapes and is none of them; required names that `properties` does not list are generated
 *     (with the additionalProperties schema, else any value; an error when it is false).
 *   - patterns (schema_pattern.c has the exact subset): the regex's '"' and '\' are
 *     written as JSON escapes, '.' and negated classes never produce a raw '"', '\' or
 *     control character; \d \w \s \D \W \S, (?<name>...), lazy quantifiers work; an
 *     unanchored side may carry any characters (JSON Schema's "matches anywhere").
 *     Lookaround, backreferences, \b, \p{...} and anchors inside are errors, not "any
 *     string". A pattern wins over format. minLength/maxLength next to a pattern: the
 *     pattern's quantifiers are lowered until its longest match fits; an error when its
 *     shortest match is under minLength or its fixed part over maxLength.
 *   - formats: date (the day fits the month; 29 February left out), time and date-time
 *     (with a time zone), uuid (uuid1..5), and, beyond the reference, email, hostname,
 *     ipv4, ipv6 (eight groups), uri (https://host/path): bounded subsets of each. Other
 *     formats are plain strings (format is an annotation). minLength/maxLength next to a
 *     format are an error unless the format's own lengths fit.
 *   - integer minimum/maximum/exclusive*: exact, within 16 digits; bounds that are reals
 *     round inward (minimum 1.5 is 2); draft-4 boolean exclusiveMinimum/Maximum. number
 *     with bounds (the reference ignores them): no exponent, integer bounds exact, real
 *     ones rounded inward.
 *   - allOf: one schema of all branches (nested allOf and $ref targets included, the
 *     schema's own keywords as one more branch): types intersected, enum/const values
 *     intersected, bounds and lengths tightened, items and each property's schemas
 *     combined, required united; a property listed by one branch is held by the other
 *     branches' additionalProperties. A branch with anyOf/oneOf is distributed over the
 *     rest. Two different pattern / format / prefixItems (or any other keyword with two
 *     values) are an error.
 *   - keywords next to $ref are an allOf with its target; next to anyOf/oneOf, they go
 *     into every alternative. oneOf is generated as anyOf (a text valid for two
 *     overlapping branches can come out).
 *   - enum/const values that the schema's `type` excludes are dropped (other keywords next
 *     to enum/const are not applied to the values).
 *   - a schema without `type` whose keywords belong to one type (properties, items,
 *     minLength, minimum, ...) is generated as that type; {} is an object (as in the
 *     reference), true and a schema of annotations only are any value.
 *   - arrays: prefixItems (or draft-4 items lists) are all generated, then as many
 *     `items` (additionalItems) as minItems/maxItems allow.
 *   - repetition counts: a minLength/minItems over 1000 is an error; a larger maximum is
 *     lowered to 1000 (libllama refuses counts over 2000 and reads a larger maximum as
 *     "no maximum").
 * Keywords that change what is valid and that no grammar here holds are errors naming
 * the keyword: not, if/then/else, multipleOf, maxProperties, contains, minContains,
 * maxContains, dependentSchemas, $dynamicRef, $recursiveRef, minProperties (unless 0), patternProperties / dependentRequired / dependencies
 * (unless {}), propertyNames / unevaluatedProperties / unevaluatedItems (unless true or
 * {}). Annotations and unknown keywords are ignored, and so is uniqueItems (as llama.cpp
 * and Ollama do: Pydantic writes it for sets; a grammar cannot hold it).
 * Limits, so that a hostile schema costs little: nesting depth JSON_SCHEMA_MAX_DEPTH,
 * JSON_SCHEMA_MAX_RULES rules, JSON_SCHEMA_MAX_BYTES of grammar, 64 allOf branches
 * (allOf/$ref inside allOf 16 deep), 64 nested regex groups. The finished grammar is checked (gbnf_check.c): a $ref cycle
 * that reads nothing (left recursion, which libllama refuses) and a rule that can never
 * end (a required property that contains itself: a model would be held forever) are
 * errors. */
#ifndef BELLOWS_GRAMMAR_JSON_SCHEMA_H
#define BELLOWS_GRAMMAR_JSON_SCHEMA_H

#include <jansson.h>

#include "util/err.h"

#define JSON_SCHEMA_MAX_DEPTH 64          /* nested subschemas (properties, items, $ref, ...) */
#define JSON_SCHEMA_MAX_RULES 4096        /* rules in the grammar */
#define JSON_SCHEMA_MAX_BYTES (1u << 20)  /* bytes of grammar text */

/* The characters a JSON string holds as they are, as GBNF class ranges (put them between
 * brackets): not '"', '\\', controls or DEL, and only code points valid UTF-8 can write
 * (gbnf_int.h says why), for grammars written by hand such as the API's JSON mode. */
#define JSON_SCHEMA_STRING_RANGES "\\x20\\x21\\x23-\\x5B\\x5D-\\x7E\\x80-\\uD7FF\\uE000-\\U0010FFFF"

/* Converts SCHEMA (a JSON Schema document: an object, or true for "any value") into a
 * GBNF grammar whose start rule is `root`, for llama_sampler_init_grammar(vocab, text,
 * "root"). $ref may point anywhere inside the document ("#/$defs/x", "#/definitions/x",
 * "#/properties/a", "#"); any other reference is an error.
 * Returns BW_OK and sets *out (NUL-terminated; caller frees with free()), or BW_EINVAL
 * (the schema: err says what and where, e.g. "JSON schema keyword 'not' is not
 * supported (at #/properties/a)") or BW_ENOMEM; *out is untouched on error. */
int json_schema_to_gbnf(const json_t *schema, char **out, struct bw_err *err);

/* The same grammar with every rule named PREFIX NAME (gbnf_compose.h), to be put into a
 * larger grammar: its start rule is PREFIX "root" (the tool-call grammar holds each
 * tool's arguments to its parameters schema this way, PREFIX "tool0-", "tool1-", ...).
 * PREFIX is made of [a-zA-Z0-9-]. Same returns as json_schema_to_gbnf. */
int json_schema_rules(const json_t *schema, const char *prefix, char **out, struct bw_err *err);

#endif
