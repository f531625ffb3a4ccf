/* toolcall.h -- the tool calls a model writes, parsed out of its answer, streamed.
 *
 * A model given tools answers either with text or with calls written in its template's own
 * format (`<tool_call>{…}</tool_call>`, `[TOOL_CALLS]…`, …). This module finds which format
 * a template uses (toolcall_detect) and turns the stream of answer text into content pieces
 * and complete calls (toolcall_feed / toolcall_finish). It does not render anything, does
 * not decide whether a request may call tools (the api does), and never sees reasoning: the
 * engine feeds it the answer only, after template/reasoning.h split the thinking off.
 *
 * PURE: no I/O, no libllama; jansson for the calls' JSON. Not thread-safe: one struct
 * toolcall_parser per sequence, used by the thread that owns it (the runner's engine loop).
 *
 * DESIGN
 * Formats (the families whose templates ship in the pinned llama.cpp's models/templates/;
 * llama.cpp's common/chat*.cpp parsers are the behavioural reference):
 *     hermes       <tool_call>{"name":…,"arguments":{…}}</tool_call>   Hermes 2/3, Qwen2.5,
 *                  Qwen3, QwQ, Granite 4, MiMo, …; the same tags around a Qwen3-Coder XML
 *                  body or a GLM body are understood too
 *     qwen3-coder  <tool_call><function=NAME><parameter=X>…</parameter></function></tool_call>
 *                  (Qwen3-Coder, Qwen3.5, Nemotron 3, StepFun); a bare <function=NAME>…
 *                  </function> without the outer tags is a call as well
 *     glm          <tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>
 *     llama3       {"name":…,"parameters":{…}} as the answer itself (Llama 3.1–3.3), or after
 *                  <|python_tag|> (also NAME.call(k="v") and plain code, as a "python" call),
 *                  or <function=NAME>{…}</function> (Llama 3.1's custom format, Functionary)
 *     mistral      [TOOL_CALLS][{"name":…,"arguments":{…},"id":…}] (Nemo) or
 *                  [TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{…} / [TOOL_CALLS]NAME[ARGS]{…}
 *                  (Small 3.2, Devstral, Ministral 3), one [TOOL_CALLS] per call
 *     harmony      gpt-oss: a message whose header says to=functions.NAME. reasoning.c
 *                  reads Harmony's headers; with reasoning_cfg.calls set it passes such a
 *                  message on as answer text REASONING_CALL_OPEN RECIPIENT <|message|>
 *                  ARGS <|call|> (reasoning.h), which this parser reads
 *     deepseek     <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
 *                  ```json {…} ```<｜tool▁call▁end｜>…<｜tool▁calls▁end｜> (R1, V3), and
 *                  V3.1's <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{…}<｜tool▁call▁end｜>
 *     gemma4       <|tool_call>call:NAME{key:<|"|>text<|"|>,n:1}<tool_call|>
 *     kimi         <|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:0
 *                  <|tool_call_argument_begin|>{…}<|tool_call_end|><|tool_calls_section_end|>
 *     command-r    <|START_ACTION|>[{"tool_name":…,"parameters":{…}}]<|END_ACTION|>
 *     minimax      <minimax:tool_call><invoke name="NAME"><parameter name="K">V</parameter>…
 *                  </invoke>…</minimax:tool_call> (MiniMax M2)
 *     minimax-m3   NS<tool_call>\nNS<invoke name="NAME">NS<K>V NS</K>…NS</invoke>\nNS</tool_call>,
 *                  NS the token ]<]minimax[>[; V nested as NS<k>… (objects), NS<item>… (arrays)
 *     dsml         <｜DSML｜function_calls><｜DSML｜invoke name="NAME"><｜DSML｜parameter
 *                  name="K" string="true|false">V</｜DSML｜parameter>…</｜DSML｜invoke>…
 *                  </｜DSML｜function_calls> (DeepSeek V3.2): string="false" values are JSON
 *     seed-oss     <seed:tool_call><function=NAME><parameter=K>V</parameter></function>
 *                  </seed:tool_call> (ByteDance Seed-OSS; Qwen3-Coder's body)
 *     lfm2         <|tool_call_start|>[NAME(k="v", n=1), …]<|tool_call_end|> (LFM2, LFM2.5):
 *                  Python literals (and JSON's true/false/null, lists, objects)
 *     granite      <|tool_call|>[{"name":…,"arguments":{…}}, …] (Granite 3.x)
 *     tool-calls   <tool_calls>[{…}, …]</tool_calls> or one {…} a line (Apriel, MiniMax M1)
 *     nemotron     <TOOLCALL>[{…}, …]</TOOLCALL> (Nemotron Nano v2)
 *     functionary  >>>NAME\n{…} (Functionary v3.2); >>>all\nTEXT is content. The prompt
 *                  ends with >>>, so the answer starts with the first recipient
 *     firefunction functools[{"name":…,"arguments":{…}}, …] (FireFunction v2)
 *     apertus      <|tools_prefix|>[{"NAME": {…}}, …]<|tools_suffix|> (Apertus)
 *     json         any other template with tools: the whole answer is {"name":…,
 *                  "arguments":{…}}, {"tool_calls":[…]} or {"tool_call":{…}} naming one of
 *                  the request's tools
 *
 * Streaming: content is handed on as it comes; only bytes that could still be the start
 * of a call marker are held (at most the longest marker), and an incomplete UTF-8 sequence
 * at the end of a piece. For llama3 and json, whose calls have no marker, leading
 * whitespace and an answer that starts with `{` are held until the JSON value is complete.
 * Once a marker is seen the call is held whole until it is complete, then parsed. Calls
 * are numbered 0, 1, … in the order written; whitespace between and after calls is dropped.
 *
 * Nothing is lost: a call that does not parse (bad JSON, unknown shape, a call still open
 * when the stream ends, more than TOOLCALL_MAX_CALL bytes) is content, as written. A call
 * whose closing marker is missing at the end of the stream but whose body is complete (the
 * JSON closed) is a call: a stop string or the token limit may eat the marker (or its end).
 *
 * Argument values of the XML formats (qwen3-coder, glm, minimax, minimax-m3, dsml, seed-oss) are
 * text; they are given as JSON
 * values (numbers, booleans, objects) when the tool's parameter schema says the parameter
 * is not a string, or, without a schema, when the text is valid JSON other than a string. */
#ifndef BELLOWS_TOOLCALL_H
#define BELLOWS_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum toolcall_format {
    TOOLCALL_NONE = 0, /* no parsing: everything is content */
    TOOLCALL_HERMES,
    TOOLCALL_QWEN3_CODER,
    TOOLCALL_GLM,
    TOOLCALL_LLAMA3,
    TOOLCALL_MISTRAL,
    TOOLCALL_HARMONY,
    TOOLCALL_DEEPSEEK,
    TOOLCALL_GEMMA4,
    TOOLCALL_KIMI,
    TOOLCALL_COMMAND_R,
    TOOLCALL_MINIMAX,
    TOOLCALL_MINIMAX_M3,
    TOOLCALL_DSML,
    TOOLCALL_SEED_OSS,
    TOOLCALL_LFM2,
    TOOLCALL_GRANITE,
    TOOLCALL_TOOL_CALLS,
    TOOLCALL_NEMOTRON,
    TOOLCALL_FUNCTIONARY,
    TOOLCALL_FIREFUNCTION,
    TOOLCALL_APERTUS,
    TOOLCALL_JSON,
};

struct toolcall_cfg {
    enum toolcall_format format;
    const char *name; /* "none", "hermes", "qwen3-coder", "glm", "llama3", "mistral", "harmony",
                         "deepseek", "gemma4", "kimi", "command-r", "minimax", "minimax-m3", "dsml", "seed-oss",
                         "lfm2", "granite", "tool-calls", "nemotron", "functionary",
                         "firefunction", "apertus", "json"
                         (static strings) */
    bool name_args;   /* the template writes the name, then the JSON arguments: mistral's
                         NAME[ARGS]{…} (Small 3.2, Devstral, Ministral), not Nemo's JSON array;
                         deepseek's NAME<｜tool▁sep｜>{…} (V3.1), not R1's fenced JSON; how
                         toolcall_grammar writes a call */
};

/* Decides the format from the chat template that rendered the prompt (Jinja source).
 * NULL (no template) gives json. Always fills *out. */
void toolcall_detect(const char *template_text, struct toolcall_cfg *out);

/* True when a control token whose text is text[0..len) belongs to cfg's call markers, so the
 * engine must render it as text ([TOOL_CALLS], <|python_tag|>, <|tool_call>, …). */
bool toolcall_marker_token(const struct toolcall_cfg *cfg, const char *text, size_t len);

/* One complete call; its strings are borrowed for the callback only. */
struct toolcall {
    int index;             /* 0, 1, … within the stream */
    const char *name;
    const char *arguments; /* a JSON object, compact text ("{}" when the model gave none) */
    const char *id;        /* the call id the model wrote (mistral, kimi, command-r), or NULL */
};

struct toolcall_sink {
    /* A piece of content: len > 0, valid UTF-8 when the input was. */
    void (*content)(void *ud, const char *text, size_t len);
    void (*call)(void *ud, const struct toolcall *call);
    void *ud;
};

#define TOOLCALL_MAX_CALL (1u << 20) /* a "call" longer than this is content */

/* Caller-provided storage; the fields are private to toolcall*.c. */
struct toolcall_parser {
    struct toolcall_cfg cfg;
    int state;
    char *buf;        /* undecided bytes: a partial marker, or the call being read */
    size_t n_buf, cap_buf;
    int opener;       /* which marker opened the call being read (-1: a bare JSON answer) */
    size_t scanned;   /* bytes of buf the end-of-call search has looked at */
    size_t json_at;   /* where the JSON value of the call starts in buf (0: not found yet) */
    int json_depth;
    bool json_in_str, json_esc;
    bool json_seen;   /* the answer's first value was tried as a call (llama3, json) */
    bool implied;     /* functionary: buf starts with a ">>>" the prompt wrote, not the model */
    int n_calls;
    void *tools;      /* the request's tools (json_t *), for schemas and names; may be NULL */
};

/* Starts a stream. tools_json is the request's OpenAI function list (JSON array text) or
 * NULL; it is read for the parameter types of the XML formats and the names the json
 * format accepts. Cannot fail (a tools text that does not parse is ignored). Release with
 * toolcall_fini(). */
void toolcall_init(struct toolcall_parser *p, const struct toolcall_cfg *cfg, const char *tools_json);
void toolcall_fini(struct toolcall_parser *p);

/* Feeds the next answer bytes; calls sink for what can no longer change. Cannot fail: when
 * memory runs out, the held bytes are handed on as content. */
void toolcall_feed(struct toolcall_parser *p, const char *text, size_t len, const struct toolcall_sink *sink);

/* The stream ended: what is held becomes a call when it is one, else content. Feeding
 * after finish is not supported. */
void toolcall_finish(struct toolcall_parser *p, const struct toolcall_sink *sink);

/* The markers that open a call in cfg's format (static strings), at most max of them, for
 * a lazy grammar's triggers; returns how many. *bare_json is set when a call may also be a
 * bare JSON answer with no marker (llama3, json). */
size_t toolcall_openers(const struct toolcall_cfg *cfg, const char **out, size_t max, bool *bare_json);

#define TOOLCALL_MAX_GRAMMAR (4u << 20) /* a call grammar longer than this is not made */

/* A GBNF grammar (root "root") that makes the model write a call in cfg's format (then up
 * to max_calls - 1 more, blanks between: parallel_tool_calls; max_calls <= 1 is one, at
 * most TOOLCALL_MAX_CALLS), each to one
 * of the functions of tools_json (JSON array text), or to `only` when set (tool_choice
 * "function"): tool_choice "required" held by the sampler. Each function's arguments are
 * held to its `parameters` JSON schema (grammar/json_schema.h, the rules of tool I named
 * "toolI-..."); a function without parameters gets exactly {}, one whose schema the
 * converter refuses any JSON object (the api refuses such tools first). Blanks may go
 * where the format's own text has them. close, when set, is written first: the reasoning
 * block the prompt opened is closed before the call. Returns a malloc'd string, or NULL
 * (out of memory, no function, a grammar over TOOLCALL_MAX_GRAMMAR, TOOLCALL_NONE). Every
 * format's calls are written (llama3's as its JSON call, not <|python_tag|> code).
 * The formats whose arguments are not one JSON object -- qwen3-coder's and seed-oss's
 * <parameter=K> texts, minimax's and dsml's <parameter name="K">, minimax-m3's NS<K>…NS</K>
 * (its objects and arrays as JSON), glm's <arg_key>/<arg_value>
 * pairs, gemma4's {key:value} syntax, lfm2's k=value -- write the schema's properties (the
 * required ones always), each value held to its property's schema as far as the syntax
 * allows: strings as text (at most 4096 characters, within minLength/maxLength, or one of
 * their enum), other types as the JSON their schema allows (gemma4: numbers, booleans and
 * null; its objects and arrays are any value of its syntax; lfm2: every value as the JSON
 * its schema allows, which its Python reader takes; dsml: string="true" before text,
 * string="false" before JSON). Text holds only code points valid UTF-8 writes.
 * granite, tool-calls and nemotron write the JSON call in their list; functionary writes
 * NAME\n{…} (the prompt wrote the first ">>>"; further calls ">>>" NAME…, and the "auto"
 * grammar starts at a ">>>" the model writes).
 * harmony writes the message gpt-oss writes after <|start|>assistant, <|channel|>commentary to=functions.NAME
 * <|constrain|>json<|message|>{…}, and leaves <|call|> (its end of generation) to the
 * sampler; deepseek writes R1/V3's fenced JSON call (V3.1's NAME<｜tool▁sep｜>{…} when
 * cfg->name_args) in a <｜tool▁calls▁begin｜> block. */
#define TOOLCALL_MAX_CALLS 8 /* calls in a row a call grammar admits at most */

char *toolcall_grammar(const struct toolcall_cfg *cfg, const char *tools_json, const char *only, const char *close,
                       int max_calls);

/* tool_choice "auto": the same calls, one to max_calls in a row (blanks between), for a lazy
 * grammar that starts where toolcall_trigger() says. NULL as for toolcall_grammar. */
char *toolcall_grammar_auto(const struct toolcall_cfg *cfg, const char *tools_json, int max_calls);

/* The trigger of toolcall_grammar_auto's grammar, for
 * llama_sampler_init_grammar_lazy_patterns: a regex (ECMAScript) matched against the text
 * generated so far; the grammar is fed the text from the match (or its first group) on, so
 * the text it matches always fits the grammar's start. With a marker (hermes and
 * qwen3-coder <tool_call>, mistral [TOOL_CALLS], kimi, command-r, deepseek, and the markers
 * of minimax, minimax-m3, dsml, seed-oss, lfm2, granite, tool-calls, nemotron and functionary's
 * >>>;
 * harmony's <|channel|>commentary to=): the marker at the end of the text, *word set to it (static:
 * a caller whose vocabulary has it as one token adds that token as a trigger token). Bare
 * JSON (llama3, json): the whole text so far is blanks and the start of
 * {"name": ", *word NULL. A malloc'd string, or NULL (no grammar for the format, out of
 * memory). */
char *toolcall_trigger(const struct toolcall_cfg *cfg, const char **word);

/* Calls handed on so far. */
int toolcall_count(const struct toolcall_parser *p);

/* v as compact JSON text whose numbers read as the model wrote them: reals as short as
 * they round-trip (jansson's default precision writes 48.85 as 48.850000000000001). A
 * malloc'd string (caller frees), or NULL when out of memory. For the api's replies too. */
char *toolcall_json_dump(const json_t *v);

#endif
