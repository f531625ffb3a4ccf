/* gbnf_int.h -- what the files of the JSON-Schema-to-GBNF converter share (json_schema.c,
 * schema_object.c, schema_merge.c, schema_pattern.c + regex_parse.c (regex_int.h),
 * schema_numbers.c, gbnf_rules.c, gbnf_check.c). Private to src/grammar/.
 *
 * One conversion is one struct gconv: the rule table being built, the $ref table, the
 * first error. Every function that can fail records the error in the gconv (the first one
 * wins) and returns NULL or a negative code; callers only check and unwind. */
#ifndef BELLOWS_GRAMMAR_GBNF_INT_H
#define BELLOWS_GRAMMAR_GBNF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "grammar/json_schema.h"
#include "util/err.h"
#include "util/textbuf.h"

/* ---- one conversion -------------------------------------------------------------------- */

struct grule {
    char *name;
    char *body; /* NULL: reserved for a $ref being resolved */
};

struct gref {
    char *ref;   /* the $ref text */
    char *name;  /* the rule it became (or is reserved as) */
    bool busy;   /* being resolved: a use now is a recursion */
    bool used;   /* used while busy */
};

struct gconv {
    const json_t *doc; /* the whole schema, for $ref */
    struct grule *rules;
    size_t n_rules, cap_rules;
    struct gref *refs;
    size_t n_refs, cap_refs;
    size_t n_bytes;   /* grammar text so far (names + bodies) */
    int depth;        /* nesting of visit() */
    json_t *keep;     /* schemas built during the conversion (allOf merges), freed at the end */
    char path[160];   /* JSON pointer of the schema being visited, for messages */
    int code;         /* BW_OK, or the first error */
    struct bw_err *err;
};

/* Records the first error (message ends with " (at PATH)"); returns code. */
int gconv_fail(struct gconv *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Path segments, for messages: gconv_push() returns the length to restore with gconv_pop(). */
size_t gconv_push(struct gconv *c, const char *seg);
size_t gconv_push_index(struct gconv *c, const char *seg, size_t i);
void gconv_pop(struct gconv *c, size_t len);
/* A JSON value the conversion keeps until it ends (stolen; NULL on failure). */
json_t *gconv_keep(struct gconv *c, json_t *v);

/* ---- rules (gbnf_rules.c) -------------------------------------------------------------- */

/* Adds rule NAME ::= BODY; NAME is cleaned as llama.cpp's converter does (every run of
 * characters outside [a-zA-Z0-9-] becomes one '-'). When that name holds another body, the
 * first free NAME0, NAME1, ... is used; a same body is shared. Returns the rule's name
 * (owned by the table, valid until the conversion ends) or NULL (error recorded). */
const char *grule_add(struct gconv *c, const char *name, const char *body);
/* Reserves a rule name for a $ref being resolved (the name as grule_add would pick it). */
const char *grule_reserve(struct gconv *c, const char *name);
/* Drops a reserved rule that got no body. */
void grule_unreserve(struct gconv *c, const char *name);
struct grule *grule_find(struct gconv *c, const char *name);

/* Built-in rules (gbnf_rules.c's table; every name is reserved): "space", "char",
 * "key-char", "string", "number", "integer", "integral-part", "decimal-part", "boolean",
 * "null", "value", "object", "array", "dot", "uuid", "date", "time", "date-time",
 * "hostname-label", "hostname", "email", "ipv4-octet", "ipv4", "ipv6-h16", "ipv6", "uri",
 * and the "-string" forms of the formats.
 * gprim_add(c, NAME, KIND) adds KIND's body under NAME (KIND's dependencies under their own
 * names) and returns the rule's name, or NULL. */
const char *gprim_add(struct gconv *c, const char *name, const char *kind);
bool gprim_is_reserved(const char *name);
/* A string format llama.cpp's converter (or ours) knows: its "-string" primitive, or NULL.
 * *min_len / *max_len: the lengths of its strings (without quotes). */
const char *gprim_format(const char *format, int *min_len, int *max_len);

/* One code point inside a GBNF character class: ASCII letters and digits as they are,
 * anything else as \xHH, \uHHHH or \UHHHHHHHH. */
void gbnf_class_char(struct textbuf *b, uint32_t cp);
/* Repetition counts above this are not written (libllama's parser refuses counts over
 * 2000, and reads a larger maximum as "no maximum"): a larger maximum is lowered to it (the
 * grammar then allows fewer, never more), a larger minimum is an error. */
#define GBNF_MAX_REPEAT 1000

/* The characters a JSON string holds as they are (not '"', '\\', controls or DEL), and only
 * code points valid UTF-8 can write: libllama decodes a token's bytes without checking
 * them, so ED A0 80 reads as U+D800 and F4 90 80 80 as U+110000; a class that took them
 * would count one character where the UTF-8 repair of the output (one U+FFFD per
 * ill-formed part) writes three or four, past maxLength, and the text sent would not be
 * the text the grammar held. Positive ranges, not a negated class: libllama refuses a token
 * that ends inside a sequence when the code points it could still become touch a range a
 * negated class leaves out, so [^…\uD800-\uDFFF] would refuse ED alone and with it
 * U+D000-U+D7FF written a byte a token. (Overlong forms decode to real code points and
 * cannot be told apart here.) */
#define GBNF_RAW_RANGES JSON_SCHEMA_STRING_RANGES
#define GBNF_RAW_CHAR "[" GBNF_RAW_RANGES "]"

/* A class of GBNF_RAW_CHAR's characters but cps[0..n) (ascending), brackets included. */
void gbnf_raw_class_except(struct textbuf *b, const uint32_t *cps, size_t n);

/* BODY for a GBNF literal matching TEXT exactly (quotes included), appended to b. */
void gbnf_literal(struct textbuf *b, const char *text, size_t len);
/* "a b c" -> "(a b c)"-style repetition of ITEM (a rule name or a parenthesized
 * expression), min..max times (max < 0: no maximum), SEP between items (NULL: none), as
 * llama.cpp's build_repetition writes it. Appended to b. */
void gbnf_repeat(struct textbuf *b, const char *item, int min, int max, const char *sep);

/* The rules sorted by name, "name ::= body\n" each, checked (gbnf_check). Returns the
 * text (malloc'd) or NULL (error recorded). */
char *grules_format(struct gconv *c);
void grules_free(struct gconv *c);

/* ---- checks on the finished rules (gbnf_check.c) ---------------------------------------- */

/* BW_OK, or BW_EINVAL when a rule can never end (no finite text: a required property
 * that contains itself) or a rule starts with itself without reading anything (a $ref
 * cycle with nothing between: left recursion, which libllama refuses). */
int gbnf_check(struct gconv *c);

/* ---- the visitor (json_schema.c) ----------------------------------------------------------- */

/* Visits SCHEMA, naming its rules after NAME ("" for the root). Returns the name of the
 * rule that matches it, or NULL. */
const char *schema_visit(struct gconv *c, const json_t *schema, const char *name);
/* The subschema $ref points to (borrowed from the document), or NULL (error recorded). */
const json_t *schema_resolve(struct gconv *c, const char *ref);
/* min..max of a pair of count keywords (minLength/maxLength, minItems/maxItems), checked;
 * max -1: none; a maximum over GBNF_MAX_REPEAT is lowered to it. BW_OK or the error. */
int schema_length_range(struct gconv *c, const json_t *s, const char *kmin, const char *kmax, int *min, int *max);
/* Objects and arrays (schema_object.c): the rule for S, its rules named after NAME. */
const char *schema_object(struct gconv *c, const json_t *s, const char *name, const char *rule_name);
const char *schema_array(struct gconv *c, const json_t *s, const char *name, const char *rule_name);
/* true for keywords that only describe (title, description, $defs, ...). */
bool schema_is_annotation(const char *key);

/* ---- allOf and keywords next to $ref / anyOf (schema_merge.c) ------------------------------- */

/* One schema equal to allOf(SCHEMA's allOf branches, SCHEMA's other keywords), kept by c;
 * anyOf/oneOf inside a branch is distributed ({"anyOf": [allOf(.., alt1), ...]}). */
const json_t *schema_merge_allof(struct gconv *c, const json_t *schema);
/* {"allOf": [{"$ref": R}, rest]} for a $ref with constraining siblings, or
 * {"anyOf": [allOf(rest, alt_i), ...]} for anyOf/oneOf with constraining siblings; NULL when
 * the siblings only describe (then *none is true) or on error. */
const json_t *schema_distribute(struct gconv *c, const json_t *schema, bool *none);

/* ---- strings with a pattern (schema_pattern.c) ---------------------------------------------- */

/* The rule for a JSON string matching the ECMA-262 regex PATTERN (anchored or not) whose
 * length (in characters) lies in min_len..max_len (max_len < 0: no maximum). */
const char *schema_pattern(struct gconv *c, const char *pattern, int min_len, int max_len, const char *name);

/* ---- numeric ranges (schema_numbers.c) ------------------------------------------------------ */

struct num_bounds {
    bool has_min, has_max;
    double min, max;
    bool min_excl, max_excl;
};
/* Reads minimum / maximum / exclusiveMinimum / exclusiveMaximum (numbers, or draft-4
 * booleans) from SCHEMA. Returns false when none is there; -1 with an error recorded. */
int num_bounds_read(struct gconv *c, const json_t *schema, struct num_bounds *out);
/* Bodies for an integer / a number within the bounds, appended to b. Return BW_OK or an
 * error code (recorded). */
int num_integer_range(struct gconv *c, const struct num_bounds *nb, struct textbuf *b);
int num_number_range(struct gconv *c, const struct num_bounds *nb, struct textbuf *b);

#endif
