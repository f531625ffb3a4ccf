/* toolcall_int.h -- what the files of the tool-call parser share; not a public interface
 * (toolcall.h is). toolcall.c: the formats' table, detection, the streaming driver;
 * toolcall_formats.c: one call's text to calls, per format (toolcall_invoke.c: MiniMax's
 * and DSML's <invoke>; toolcall_pythonic.c: LFM2's NAME(k=v)); toolcall_json.c: calls as
 * JSON; toolcall_text.c: bytes and spans; toolcall_grammar.c: the grammar for one call. */
#ifndef BELLOWS_TOOLCALL_INT_H
#define BELLOWS_TOOLCALL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

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
    B_INVOKE,       /* <invoke name="N"><parameter name="K">V</parameter></invoke>, one or more
                       (MiniMax M2; DeepSeek V3.2 with its ｜DSML｜ prefix on every tag) */
    B_INVOKE_M3,    /* MiniMax M3: ]<]minimax[>[<invoke name="N">]<]minimax[>[<K>V…</invoke> */
    B_PYTHONIC,     /* [NAME(k=v, …), …] (LFM2) */
    B_JSON_VALUE,   /* one JSON value, [{…}, …] or {…}, ending where it does (Granite 3.x) */
    B_JSON_LIST,    /* a JSON array of calls, or call objects one after another (<tool_calls>) */
    B_JSON_KEYED,   /* [{"NAME": {…}}, …]: each call an object whose one key is the name (Apertus) */
    B_FUNCTIONARY,  /* NAME\n{…}, or all\nTEXT: content (Functionary v3.2's >>>) */
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
#define DSML "\xef\xbd\x9c" "DSML" "\xef\xbd\x9c" /* ｜DSML｜ */
#define DSML_CALLS_BEGIN "<" DSML "function_calls>"
#define DSML_CALLS_END "</" DSML "function_calls>"
#define MINIMAX_BEGIN "<minimax:tool_call>"
#define MINIMAX_END "</minimax:tool_call>"
#define SEED_BEGIN "<seed:tool_call>"
#define SEED_END "</seed:tool_call>"
#define MM3_NS "]<]minimax[>[" /* MiniMax M3's prefix of every tag */
#define LFM2_BEGIN "<|tool_call_start|>"
#define LFM2_END "<|tool_call_end|>"

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
/* A JSON array of calls, or call objects one after another (blanks between). */
bool toolcall__add_json_list(json_t *out, struct span sp);
/* [{"NAME": {…}}, …] (or one such object): calls keyed by their name. */
bool toolcall__add_keyed_calls(json_t *out, struct span sp);

/* ---- one call's text to calls (toolcall_formats.c) ---------------------------------------- */

/* One call as read, p->buf[0..len), to a JSON array of calls; NULL when it is none. */
json_t *toolcall__parse_call(const struct toolcall_parser *p, size_t len);

/* An XML argument's text v of parameter key of tool fn as a JSON value: text when the
 * tool's schema says the parameter is a string, else JSON when it parses (with no schema:
 * JSON other than a string), else text. NULL when out of memory or v is not UTF-8. */
json_t *toolcall__arg_value(const struct toolcall_parser *p, const char *fn, const char *key, struct span v);

/* ---- the invoke and pythonic formats (toolcall_invoke.c, toolcall_pythonic.c) ------------ */

/* The calls of a MiniMax / DSML block's inside: <PREFIXinvoke name="N">…</PREFIXinvoke>… */
bool toolcall__parse_invoke(const struct toolcall_parser *p, json_t *out, struct span sp, const char *prefix);
/* The same for MiniMax M3: NS<invoke name="N">NS<K>V NS</K>…NS</invoke>…, V nested as
 * NS<k>… (an object) or NS<item>… (an array). */
bool toolcall__parse_invoke_m3(const struct toolcall_parser *p, json_t *out, struct span sp);
/* [NAME(k=v, …), …]: LFM2's Python-style calls. */
bool toolcall__parse_pythonic(json_t *out, struct span sp);

/* A cursor over a call's value text, for the syntaxes that are not JSON (Gemma 4's
 * {key:VALUE}, LFM2's NAME(k=VALUE)): the text, its length, the position, the nesting. */
struct vscan {
    const char *s;
    size_t n, i;
    int depth;
};
static inline void vscan_ws(struct vscan *g)
{
    while (g->i < g->n && bytes_is_ws(g->s[g->i]))
        g->i++;
}
/* Steps over m when the text goes on with it (no blanks skipped). */
static inline bool vscan_lit(struct vscan *g, const char *m)
{
    if (bytes_starts_with(g->s + g->i, g->n - g->i, m) != MATCH_FULL)
        return false;
    g->i += strlen(m);
    return true;
}

#endif
