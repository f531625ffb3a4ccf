/* toolcall_int.h -- what the files of the tool-call parser share; not a public interface
 * (toolcall.h is). toolcall.c: the formats' table, detection, the streaming driver;
 * toolcall_formats.c: one call's text to calls, per format; toolcall_json.c: calls as
 * JSON; toolcall_text.c: bytes and spans; toolcall_grammar.c: the grammar for one call. */
#ifndef BELLOWS_TOOLCALL_INT_H
#define BELLOWS_TOOLCALL_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "template/bytes_int.h"
#include "template/reasoning.h"
#include "template/toolcall.h"

/* ---- formats ------------------------------------------------------------------------- */

/* How the text of one call is read. */
enum body {
    B_TAGGED,       /* <tool_call>…</tool_call>: JSON, a Qwen3-Coder <function=…> or a GLM body */
    B_XML_FUNCTION, /* a bare <function=NAME>…</function> */
    B_PYTHON_TAG,   /* <|python_tag|> to the end of the stream */
    B_MISTRAL,      /* [TOOL_CALLS] then [{…}] or NAME[CALL_ID]ID[ARGS]{…} */
    B_HARMONY,      /* reasoning.c's REASONING_CALL_OPEN RECIPIENT <|message|> ARGS <|call|> */
    B_DEEPSEEK,     /* <｜tool▁call▁begin｜>…<｜tool▁sep｜>…<｜tool▁call▁end｜>, one or more */
    B_GEMMA4,       /* call:NAME{gemma value} */
    B_KIMI,         /* <|tool_call_begin|>ID<|tool_call_argument_begin|>{…}<|tool_call_end|> */
    B_COMMAND_R,    /* [{"tool_call_id","tool_name","parameters"}] */
};

struct marker {
    const char *open;
    const char *close; /* NULL: the call ends where its body does (B_MISTRAL, B_PYTHON_TAG) */
    enum body body;
};

#define MAX_MARKERS 2

struct format_def {
    const char *name;
    struct marker markers[MAX_MARKERS];
    bool json_answer;        /* an answer that is one JSON value may be a call (llama3, json) */
    const char *separators;  /* dropped between calls, besides whitespace */
    const char *strays[2];   /* closers dropped between and after calls */
    const char *tokens[10];  /* control-token texts the engine must render */
};

#define DS_CALLS_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_CALLS_END "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_CALL_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_CALL_END "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_SEP "<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>"
#define KIMI_SECTION_BEGIN "<|tool_calls_section_begin|>"
#define KIMI_SECTION_END "<|tool_calls_section_end|>"
#define KIMI_CALL_BEGIN "<|tool_call_begin|>"
#define KIMI_ARGS "<|tool_call_argument_begin|>"
#define KIMI_CALL_END "<|tool_call_end|>"
#define GEMMA_STR "<|\"|>"

extern const struct format_def toolcall__formats[]; /* by enum toolcall_format (toolcall.c) */

static inline const struct format_def *toolcall__def_of(const struct toolcall_parser *p) { return &toolcall__formats[p->cfg.format]; }

/* ---- bytes and spans (toolcall_text.c) ------------------------------------------------ */

/* A span of text, trimmed of whitespace at both ends. */
struct span {
    const char *s;
    size_t n;
};

bool toolcall__name_char(char c);    /* a letter, digit, _, - or . */
struct span toolcall__trim(const char *s, size_t n);
const char *toolcall__find(struct span sp, const char *m);  /* the first m in sp, or NULL */
struct span toolcall__after(struct span sp, const char *m); /* sp after its first m, or {NULL, 0} */
bool toolcall__span_starts(struct span sp, const char *m);

/* ---- calls as JSON (toolcall_json.c) ----------------------------------------------------
 * Parsed calls are collected as a JSON array of {"name", "arguments" (object), "id"?}. */

json_t *toolcall__load(struct span sp, size_t flags); /* any JSON value, or NULL */
bool toolcall__add_call(json_t *out, struct span name, json_t *args, const char *id, size_t id_len);
bool toolcall__add_object_call(json_t *out, const json_t *o, bool need_args);
bool toolcall__add_json_calls(json_t *out, const json_t *v, bool need_args);

/* ---- one call's text to calls (toolcall_formats.c) ---------------------------------------- */

/* One call as read, p->buf[0..len), to a JSON array of calls; NULL when it is none. */
json_t *toolcall__parse_call(const struct toolcall_parser *p, size_t len);

#endif
