/* jinja.h -- a Jinja renderer for chat templates, with the semantics of Python's jinja2 as
 * Hugging Face transformers' apply_chat_template uses it.
 *
 * PURE: no I/O, no clock, no global state; the time strftime_now() prints comes in through
 * the options. Safe from any thread; a parsed template is read-only while rendering, so one
 * template may be rendered by several threads at once.
 *
 * What "jinja2 as transformers uses it" means here:
 *   - trim_blocks and lstrip_blocks on, keep_trailing_newline off (one trailing newline of
 *     the template source is dropped), `{%-`/`-%}` and `{%+`/`+%}` whitespace control;
 *   - Python semantics for values: truthiness, `and`/`or` returning an operand, int vs
 *     float, str() and repr() of lists and dicts, ordered dicts, negative indexes, slices;
 *   - jinja2's default Undefined: a missing variable or key prints as "", is false,
 *     iterates as nothing, has length 0; using it further (an attribute of it, arithmetic,
 *     tojson) is an error naming it;
 *   - statements if/elif/else, for (tuple targets, `if` filter, else, loop.*), set (names,
 *     tuples, namespace attributes, set blocks), macro (defaults, caller), call blocks,
 *     filter blocks, break/continue (loopcontrols), raw, {% generation %} blocks;
 *   - the filters, tests, globals (range, namespace, dict, raise_exception, strftime_now)
 *     and the str/list/dict methods real chat templates use; `tojson` formats like
 *     transformers' override of it: json.dumps(x, ensure_ascii=False, indent=...,
 *     separators=..., sort_keys=...).
 *
 * Limits keep any template from hanging or exhausting the caller: nesting depth (parse
 * and macro calls), work steps (statements, loop iterations, calls), memory and output
 * size. Exceeding one is an error like any other.
 *
 * Errors: every failure returns BW_EINVAL (BW_ENOMEM when malloc fails) with a message in
 * err: a parse error names its line, a raise_exception() gives the template's own message
 * verbatim, other runtime errors name what failed ("'x' is undefined"). */
#ifndef BELLOWS_JINJA_H
#define BELLOWS_JINJA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

struct jinja_tmpl;

/* Parses src[0..len) (need not be NUL-terminated). Returns BW_OK and *out (release with
 * jinja_free), or BW_EINVAL with the line of the error in err. */
int jinja_parse(const char *src, size_t len, struct jinja_tmpl **out, struct bw_err *err);
void jinja_free(struct jinja_tmpl *t);

struct jinja_opts {
    int64_t now_unix;      /* strftime_now()'s clock, in seconds (UTC) ... */
    int32_t utc_offset_s;  /* ... shown in this time zone (seconds east of UTC) */
    size_t max_output;     /* bytes; 0: 64 MiB */
    size_t max_memory;     /* bytes of values made while rendering; 0: 256 MiB */
    int64_t max_steps;     /* statements + loop iterations + calls; 0: 20 million */
    int max_depth;         /* nested macro calls and expression depth; 0: 200 */
};

/* Renders t with the members of ctx (a JSON object: messages, tools, bos_token, ...) as
 * the template's globals. JSON integers stay ints, reals floats, objects keep their order.
 * Returns BW_OK and a malloc'd NUL-terminated string in *out (caller frees; the text may
 * itself hold NUL bytes only if the context did) with its length in *out_len. */
int jinja_render(const struct jinja_tmpl *t, const json_t *ctx, const struct jinja_opts *opts, char **out,
                 size_t *out_len, struct bw_err *err);

#endif
