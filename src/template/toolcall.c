/* toolcall.c -- see toolcall.h for the contract. The formats' table, detection and the
 * streaming driver. Reading order: the formats, detection, where a call ends,
 * handing calls on, the streaming state machine. What a call's text means is read by
 * toolcall_formats.c; the grammar for one call is toolcall_grammar.c's. */
#define _GNU_SOURCE
#include "template/toolcall_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- formats ------------------------------------------------------------------------- */

const struct format_def toolcall__formats[] = {
    [TOOLCALL_NONE] = {.name = "none"},
    [TOOLCALL_HERMES] = {.name = "hermes",
                         .markers = {{"<tool_call>", "</tool_call>", B_TAGGED}},
                         .tokens = {"<tool_call>", "</tool_call>"}},
    [TOOLCALL_QWEN3_CODER] = {.name = "qwen3-coder",
                              .markers = {{"<tool_call>", "</tool_call>", B_TAGGED},
                                          {"<function=", "</function>", B_XML_FUNCTION}},
                              .strays = {"</tool_call>"},
                              .tokens = {"<tool_call>", "</tool_call>"}},
    [TOOLCALL_GLM] = {.name = "glm",
                      .markers = {{"<tool_call>", "</tool_call>", B_TAGGED}},
                      .tokens = {"<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>",
                                 "</arg_value>"}},
    [TOOLCALL_LLAMA3] = {.name = "llama3",
                         .markers = {{"<|python_tag|>", NULL, B_PYTHON_TAG},
                                     {"<function=", "</function>", B_XML_FUNCTION}},
                         .json_answer = true,
                         .separators = ";",
                         .tokens = {"<|python_tag|>"}},
    [TOOLCALL_MISTRAL] = {.name = "mistral",
                          .markers = {{"[TOOL_CALLS]", NULL, B_MISTRAL}},
                          .tokens = {"[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"}},
    [TOOLCALL_HARMONY] = {.name = "harmony",
                          .markers = {{REASONING_CALL_OPEN, REASONING_CALL_CLOSE, B_HARMONY}}},
    [TOOLCALL_DEEPSEEK] = {.name = "deepseek",
                           .markers = {{DS_CALLS_BEGIN, DS_CALLS_END, B_DEEPSEEK},
                                       {DS_CALL_BEGIN, DS_CALL_END, B_DEEPSEEK}},
                           .strays = {DS_CALLS_END},
                           .tokens = {DS_CALLS_BEGIN, DS_CALLS_END, DS_CALL_BEGIN, DS_CALL_END, DS_SEP}},
    [TOOLCALL_GEMMA4] = {.name = "gemma4",
                         .markers = {{"<|tool_call>", "<tool_call|>", B_GEMMA4}},
                         .tokens = {"<|tool_call>", "<tool_call|>", GEMMA_STR}},
    [TOOLCALL_KIMI] = {.name = "kimi",
                       .markers = {{KIMI_SECTION_BEGIN, KIMI_SECTION_END, B_KIMI},
                                   {KIMI_CALL_BEGIN, KIMI_CALL_END, B_KIMI}},
                       .strays = {KIMI_SECTION_END},
                       .tokens = {KIMI_SECTION_BEGIN, KIMI_SECTION_END, KIMI_CALL_BEGIN, KIMI_ARGS,
                                  KIMI_CALL_END}},
    [TOOLCALL_COMMAND_R] = {.name = "command-r",
                            .markers = {{"<|START_ACTION|>", "<|END_ACTION|>", B_COMMAND_R}},
                            .tokens = {"<|START_ACTION|>", "<|END_ACTION|>"}},
    [TOOLCALL_MINIMAX] = {.name = "minimax",
                          .markers = {{MINIMAX_BEGIN, MINIMAX_END, B_INVOKE}},
                          .tokens = {MINIMAX_BEGIN, MINIMAX_END}},
    [TOOLCALL_MINIMAX_M3] = {.name = "minimax-m3",
                             .markers = {{MM3_NS "<tool_call>", MM3_NS "</tool_call>", B_INVOKE_M3}},
                             .tokens = {MM3_NS "<tool_call>", MM3_NS "</tool_call>", MM3_NS "<invoke", MM3_NS "</invoke>"}},
    [TOOLCALL_DSML] = {.name = "dsml",
                       .markers = {{DSML_CALLS_BEGIN, DSML_CALLS_END, B_INVOKE}},
                       .tokens = {DSML_CALLS_BEGIN, DSML_CALLS_END, "<" DSML "invoke", "</" DSML "invoke>",
                                  "<" DSML "parameter", "</" DSML "parameter>"}},
    [TOOLCALL_SEED_OSS] = {.name = "seed-oss",
                           .markers = {{SEED_BEGIN, SEED_END, B_TAGGED}},
                           .tokens = {SEED_BEGIN, SEED_END}},
    [TOOLCALL_LFM2] = {.name = "lfm2",
                       .markers = {{LFM2_BEGIN, LFM2_END, B_PYTHONIC}},
                       .tokens = {LFM2_BEGIN, LFM2_END}},
    [TOOLCALL_GRANITE] = {.name = "granite",
                          .markers = {{"<|tool_call|>", NULL, B_JSON_VALUE}},
                          .tokens = {"<|tool_call|>"}},
    [TOOLCALL_TOOL_CALLS] = {.name = "tool-calls",
                             .markers = {{"<tool_calls>", "</tool_calls>", B_JSON_LIST}},
                             .tokens = {"<tool_calls>", "</tool_calls>"}},
    [TOOLCALL_NEMOTRON] = {.name = "nemotron",
                           .markers = {{"<TOOLCALL>", "</TOOLCALL>", B_JSON_LIST}},
                           .tokens = {"<TOOLCALL>", "</TOOLCALL>"}},
    [TOOLCALL_FUNCTIONARY] = {.name = "functionary", .markers = {{">>>", NULL, B_FUNCTIONARY}}},
    [TOOLCALL_FIREFUNCTION] = {.name = "firefunction", .markers = {{"functools", NULL, B_JSON_VALUE}}},
    [TOOLCALL_APERTUS] = {.name = "apertus",
                          .markers = {{"<|tools_prefix|>", "<|tools_suffix|>", B_JSON_KEYED}},
                          .tokens = {"<|tools_prefix|>", "<|tools_suffix|>"}},
    [TOOLCALL_JSON] = {.name = "json", .json_answer = true},
};

static size_t n_markers(const struct format_def *d)
{
    size_t n = 0;
    while (n < MAX_MARKERS && d->markers[n].open)
        n++;
    return n;
}

/* ---- detection ------------------------------------------------------------------------- */

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

void toolcall_detect(const char *t, struct toolcall_cfg *out)
{
    enum toolcall_format f = TOOLCALL_JSON;
    if (!t)
        f = TOOLCALL_JSON;
    else if (has(t, "<|channel|>") && has(t, "<|message|>"))
        f = TOOLCALL_HARMONY;
    else if (has(t, KIMI_SECTION_BEGIN) || has(t, KIMI_CALL_BEGIN))
        f = TOOLCALL_KIMI;
    else if (has(t, "<|tool_call>"))
        f = TOOLCALL_GEMMA4;
    else if (has(t, "tool\xe2\x96\x81" "calls\xe2\x96\x81" "begin") || has(t, "tool\xe2\x96\x81" "call\xe2\x96\x81" "begin"))
        f = TOOLCALL_DEEPSEEK;
    else if (has(t, "[TOOL_CALLS]"))
        f = TOOLCALL_MISTRAL;
    else if (has(t, "<|START_ACTION|>"))
        f = TOOLCALL_COMMAND_R;
    else if (has(t, DSML) && has(t, "function_calls"))
        f = TOOLCALL_DSML;
    else if (has(t, MINIMAX_BEGIN))
        f = TOOLCALL_MINIMAX;
    else if (has(t, MM3_NS) && has(t, "<invoke name="))
        f = TOOLCALL_MINIMAX_M3;
    else if (has(t, SEED_BEGIN))
        f = TOOLCALL_SEED_OSS;
    else if (has(t, LFM2_BEGIN) || has(t, "<|tool_list_start|>") || has(t, "List of tools: ["))
        f = TOOLCALL_LFM2;
    else if (has(t, "<|tool_call|>"))
        f = TOOLCALL_GRANITE;
    else if (has(t, "<TOOLCALL>"))
        f = TOOLCALL_NEMOTRON;
    else if (has(t, "<tool_calls>[") || (has(t, "<tool_calls>") && !has(t, "<tool_call>")))
        f = TOOLCALL_TOOL_CALLS; /* Apriel 1.5 names <tool_call> in its prose, writes <tool_calls>[ */
    else if (has(t, ">>>all") && has(t, ">>>${recipient}"))
        f = TOOLCALL_FUNCTIONARY;
    else if (has(t, "functools["))
        f = TOOLCALL_FIREFUNCTION;
    else if (has(t, "<|tools_prefix|>"))
        f = TOOLCALL_APERTUS;
    else if (has(t, "<tool_call>") && has(t, "<function=") && has(t, "<parameter="))
        f = TOOLCALL_QWEN3_CODER;
    else if (has(t, "<tool_call>") && has(t, "<arg_key>"))
        f = TOOLCALL_GLM;
    else if (has(t, "<tool_call>"))
        f = TOOLCALL_HERMES;
    else if (has(t, "<|python_tag|>") || (has(t, "<|start_header_id|>") && has(t, "\"parameters\"")))
        f = TOOLCALL_LLAMA3;
    *out = (struct toolcall_cfg){.format = f, .name = toolcall__formats[f].name,
                                 .name_args = (f == TOOLCALL_MISTRAL && has(t, "[ARGS]")) ||
                                              (f == TOOLCALL_DEEPSEEK && has(t, DS_SEP) && !has(t, "```json"))};
}

bool toolcall_marker_token(const struct toolcall_cfg *cfg, const char *text, size_t len)
{
    if (len < 2)
        return false;
    const struct format_def *d = &toolcall__formats[cfg->format];
    for (size_t i = 0; i < sizeof d->tokens / sizeof d->tokens[0] && d->tokens[i]; i++)
        if (memmem(d->tokens[i], strlen(d->tokens[i]), text, len))
            return true;
    return false;
}

int toolcall_count(const struct toolcall_parser *p) { return p->n_calls; }

size_t toolcall_openers(const struct toolcall_cfg *cfg, const char **out, size_t max, bool *bare_json)
{
    const struct format_def *d = &toolcall__formats[cfg->format];
    size_t n = 0;
    for (size_t i = 0; i < n_markers(d) && n < max; i++)
        out[n++] = d->markers[i].open;
    if (bare_json)
        *bare_json = d->json_answer;
    return n;
}

/* ---- where a call ends ------------------------------------------------------------------- */

enum end {
    END_MORE,
    END_DONE,
    END_NOT,
    END_SKIP, /* *len bytes are no call and no content (functionary's >>>all\n) */
};

static void scan_reset(struct toolcall_parser *p)
{
    p->scanned = p->json_at = 0;
    p->json_depth = 0;
    p->json_in_str = p->json_esc = false;
}

/* Scans buf for the end of the JSON value that starts at json_at (an object or array),
 * from where the last call stopped. Sets *end (one past the value) when it is complete. */
static bool json_end(struct toolcall_parser *p, size_t *end)
{
    if (p->scanned < p->json_at)
        p->scanned = p->json_at;
    for (size_t i = p->scanned; i < p->n_buf; i++) {
        char c = p->buf[i];
        if (p->json_in_str) {
            if (p->json_esc)
                p->json_esc = false;
            else if (c == '\\')
                p->json_esc = true;
            else if (c == '"')
                p->json_in_str = false;
            continue;
        }
        if (c == '"') {
            p->json_in_str = true;
        } else if (c == '{' || c == '[') {
            p->json_depth++;
        } else if (c == '}' || c == ']') {
            if (--p->json_depth <= 0) {
                *end = p->scanned = i + 1;
                return true;
            }
        }
    }
    p->scanned = p->n_buf;
    return false;
}

/* Mistral: where the JSON value of the call starts, once [TOOL_CALLS] and, in the newer
 * form, NAME[CALL_ID]ID[ARGS] were read. Returns END_DONE with json_at set, END_MORE or
 * END_NOT. */
static enum end mistral_locate(struct toolcall_parser *p, size_t open_len)
{
    const char *b = p->buf;
    size_t n = p->n_buf, q = open_len;
    while (q < n && bytes_is_ws(b[q]))
        q++;
    if (q == n)
        return END_MORE;
    if (b[q] == '[' || b[q] == '{') {
        p->json_at = q;
        return END_DONE;
    }
    size_t name = q;
    while (q < n && toolcall__name_char(b[q]))
        q++;
    if (q - name > 256)
        return END_NOT;
    if (q == n)
        return END_MORE;
    if (q == name || b[q] != '[')
        return END_NOT;
    enum match m = bytes_starts_with(b + q, n - q, "[CALL_ID]");
    if (m == MATCH_PARTIAL)
        return END_MORE;
    if (m == MATCH_FULL) {
        q += strlen("[CALL_ID]");
        size_t id = q;
        while (q < n && toolcall__name_char(b[q]))
            q++;
        if (q - id > 64)
            return END_NOT;
        if (q == n)
            return END_MORE;
    }
    m = bytes_starts_with(b + q, n - q, "[ARGS]");
    if (m == MATCH_NONE)
        return END_NOT;
    if (m == MATCH_PARTIAL)
        return END_MORE;
    q += strlen("[ARGS]");
    while (q < n && bytes_is_ws(b[q]))
        q++;
    if (q == n)
        return END_MORE;
    if (b[q] != '{')
        return END_NOT;
    p->json_at = q;
    return END_DONE;
}

/* Functionary v3.2: >>>RECIPIENT\n, then the JSON arguments of a call, or for "all" the
 * content that follows (END_SKIP drops the header). */
static enum end functionary_end(struct toolcall_parser *p, size_t open_len, bool final, size_t *len)
{
    if (!p->json_at) {
        size_t q = open_len;
        while (q < p->n_buf && toolcall__name_char(p->buf[q]) && q - open_len <= 256)
            q++;
        if (q == p->n_buf)
            return final ? END_NOT : END_MORE;
        if (q == open_len || q - open_len > 256 || p->buf[q] != '\n')
            return END_NOT;
        if (q - open_len == 3 && !memcmp(p->buf + open_len, "all", 3)) {
            *len = q + 1;
            return END_SKIP;
        }
        while (q < p->n_buf && bytes_is_ws(p->buf[q]))
            q++;
        if (q == p->n_buf)
            return final ? END_NOT : END_MORE;
        if (p->buf[q] != '{')
            return END_NOT;
        p->json_at = q;
    }
    if (json_end(p, len))
        return END_DONE;
    return final ? END_NOT : END_MORE;
}

/* Where the call being read (buf starts with its marker, or with the JSON answer) ends.
 * END_DONE sets *len to the call's bytes; at the end of the stream (final) a call whose
 * closing marker is missing ends at the end of the text and its parser decides. */
static enum end call_end(struct toolcall_parser *p, bool final, size_t *len)
{
    const struct format_def *d = toolcall__def_of(p);
    if (p->n_buf > TOOLCALL_MAX_CALL)
        return END_NOT;
    if (p->opener < 0) { /* a JSON answer: json_at is its first '{' */
        if (json_end(p, len))
            return END_DONE;
        return final ? END_NOT : END_MORE;
    }
    const struct marker *mk = &d->markers[p->opener];
    size_t open_len = strlen(mk->open);
    if (mk->body == B_MISTRAL) {
        if (!p->json_at) {
            enum end r = mistral_locate(p, open_len);
            if (r != END_DONE)
                return r == END_MORE && final ? END_NOT : r;
        }
        if (json_end(p, len))
            return END_DONE;
        return final ? END_NOT : END_MORE;
    }
    if (mk->body == B_JSON_VALUE) { /* the marker, blanks, then [ or { */
        if (!p->json_at) {
            size_t q = open_len;
            while (q < p->n_buf && bytes_is_ws(p->buf[q]))
                q++;
            if (q == p->n_buf)
                return final ? END_NOT : END_MORE;
            if (p->buf[q] != '[' && p->buf[q] != '{')
                return END_NOT;
            p->json_at = q;
        }
        if (json_end(p, len))
            return END_DONE;
        return final ? END_NOT : END_MORE;
    }
    if (mk->body == B_FUNCTIONARY)
        return functionary_end(p, open_len, final, len);
    if (!mk->close) { /* to the end of the stream */
        if (!final)
            return END_MORE;
        *len = p->n_buf;
        return END_DONE;
    }
    size_t cl = strlen(mk->close);
    size_t from = p->scanned + 1 > cl ? p->scanned + 1 - cl : 0;
    if (from < open_len)
        from = open_len;
    const char *c = from < p->n_buf ? memmem(p->buf + from, p->n_buf - from, mk->close, cl) : NULL;
    if (c) {
        *len = (size_t)(c - p->buf) + cl;
        return END_DONE;
    }
    p->scanned = p->n_buf;
    if (!final)
        return END_MORE;
    *len = p->n_buf;
    return END_DONE;
}

static bool emit_calls(struct toolcall_parser *p, const json_t *calls, const struct toolcall_sink *k)
{
    size_t n = json_array_size(calls);
    char **args = calloc(n ? n : 1, sizeof *args);
    bool ok = args != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = (args[i] = toolcall_json_dump(json_object_get(json_array_get(calls, i), "arguments"))) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *c = json_array_get(calls, i);
        struct toolcall tc = {.index = p->n_calls++,
                              .name = json_string_value(json_object_get(c, "name")),
                              .arguments = args[i],
                              .id = json_string_value(json_object_get(c, "id"))};
        k->call(k->ud, &tc);
    }
    for (size_t i = 0; args && i < n; i++)
        free(args[i]);
    free(args);
    return ok;
}

/* ---- the state machine ------------------------------------------------------------------------ */

enum state {
    ST_START,   /* the start of the answer: for llama3/json a `{` may open a call */
    ST_CONTENT, /* content, watching for a call marker */
    ST_CALL,    /* reading a call (buf starts with it) */
    ST_AFTER,   /* after a call: whitespace, separators and stray closers are dropped */
};

#define START_WS_MAX 256

static void consume(struct toolcall_parser *p, size_t k)
{
    if (!p->buf) /* nothing held yet: no arithmetic on NULL (UB) */
        return;
    memmove(p->buf, p->buf + k, p->n_buf - k);
    p->n_buf -= k;
}

static void emit_content(struct toolcall_parser *p, size_t k, const struct toolcall_sink *sink)
{
    if (k)
        sink->content(sink->ud, p->buf, k);
    consume(p, k);
}

static void start_call(struct toolcall_parser *p, int opener, size_t json_at)
{
    p->state = ST_CALL;
    p->opener = opener;
    scan_reset(p);
    p->json_at = json_at;
}

/* Runs the held bytes through the states; returns with what must wait for more text still
 * in buf (nothing when final). */
static void run(struct toolcall_parser *p, bool final, const struct toolcall_sink *sink)
{
    const struct format_def *d = toolcall__def_of(p);
    size_t nm = n_markers(d);
    for (;;) {
        const char *b = p->buf;
        size_t n = p->n_buf;
        switch ((enum state)p->state) {
        case ST_START: {
            if (!d->json_answer || p->json_seen) {
                p->state = ST_CONTENT;
                continue;
            }
            size_t q = 0;
            while (q < n && bytes_is_ws(b[q]))
                q++;
            if (q == n && !final && q <= START_WS_MAX)
                return;
            p->json_seen = true;
            if (q < n && b[q] == '{') {
                start_call(p, -1, q);
                continue;
            }
            p->state = ST_CONTENT;
            continue;
        }
        case ST_CONTENT: {
            size_t best = n;
            int which = -1;
            for (size_t i = 0; i < nm; i++) {
                /* b is NULL before the first byte: memmem's arguments must not be */
                const char *c = n ? memmem(b, n, d->markers[i].open, strlen(d->markers[i].open)) : NULL;
                if (c && (size_t)(c - b) < best)
                    best = (size_t)(c - b), which = (int)i;
            }
            if (which >= 0) {
                emit_content(p, best, sink);
                start_call(p, which, 0);
                continue;
            }
            if (final) {
                emit_content(p, n, sink);
                return;
            }
            size_t hold = 0;
            for (size_t i = 0; i < nm; i++) {
                size_t t = bytes_partial_tail(b, n, d->markers[i].open);
                hold = t > hold ? t : hold;
            }
            if (!hold)
                hold = bytes_utf8_tail(b, n);
            emit_content(p, n - hold, sink);
            return;
        }
        case ST_CALL: {
            size_t len = 0;
            enum end r = call_end(p, final, &len);
            if (r == END_MORE)
                return;
            size_t implied = p->implied ? 3 : 0; /* the prompt's ">>>" is not the model's text */
            p->implied = false;
            if (r == END_SKIP) {
                consume(p, len);
                p->state = ST_CONTENT;
                continue;
            }
            if (r == END_NOT) { /* the marker (or the JSON answer) is text after all */
                consume(p, implied);
                emit_content(p, p->opener >= 0 ? strlen(d->markers[p->opener].open) - implied : n - implied, sink);
                p->state = ST_CONTENT;
                continue;
            }
            json_t *calls = toolcall__parse_call(p, len);
            if (calls && emit_calls(p, calls, sink)) {
                consume(p, len);
                p->state = ST_AFTER;
            } else {
                consume(p, implied);
                emit_content(p, len - implied, sink);
                p->state = ST_CONTENT;
            }
            json_decref(calls);
            continue;
        }
        case ST_AFTER: {
            size_t q = 0;
            bool more = true;
            while (more) {
                more = false;
                while (q < n && (bytes_is_ws(b[q]) || (d->separators && strchr(d->separators, b[q]))))
                    q++;
                for (size_t i = 0; i < 2 && d->strays[i]; i++)
                    if (bytes_starts_with(b + q, n - q, d->strays[i]) == MATCH_FULL) {
                        q += strlen(d->strays[i]);
                        more = true;
                    }
            }
            consume(p, q);
            b = p->buf;
            n = p->n_buf;
            if (!n)
                return;
            if (d->json_answer && b[0] == '{') {
                start_call(p, -1, 0);
                continue;
            }
            bool partial = false;
            for (size_t i = 0; i < nm; i++) {
                enum match m = bytes_starts_with(b, n, d->markers[i].open);
                if (m == MATCH_FULL) {
                    start_call(p, (int)i, 0);
                    break;
                }
                partial |= m == MATCH_PARTIAL;
            }
            if (p->state == ST_CALL)
                continue;
            for (size_t i = 0; i < 2 && d->strays[i]; i++)
                partial |= bytes_starts_with(b, n, d->strays[i]) == MATCH_PARTIAL;
            if (partial && !final)
                return;
            p->state = ST_CONTENT;
            continue;
        }
        }
        assert(0 && "unknown state");
        return;
    }
}

/* ---- streaming ------------------------------------------------------------------------------- */

static bool hold(struct toolcall_parser *p, const char *text, size_t len);

void toolcall_init(struct toolcall_parser *p, const struct toolcall_cfg *cfg, const char *tools_json)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->opener = -1;
    p->state = ST_START;
    if (cfg->format == TOOLCALL_FUNCTIONARY && hold(p, ">>>", 3)) {
        p->implied = true; /* the answer starts with the recipient the prompt's >>> asks for */
        p->state = ST_CALL;
        p->opener = 0;
    }
    if (tools_json) {
        json_t *t = json_loads(tools_json, 0, NULL);
        if (json_is_array(t))
            p->tools = t;
        else
            json_decref(t);
    }
}

void toolcall_fini(struct toolcall_parser *p)
{
    json_decref(p->tools);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

/* Appends text to buf; false when memory ran out. */
static bool hold(struct toolcall_parser *p, const char *text, size_t len)
{
    if (p->n_buf + len > p->cap_buf) {
        size_t cap = p->cap_buf ? p->cap_buf : 256;
        while (cap < p->n_buf + len)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b)
            return false;
        p->buf = b;
        p->cap_buf = cap;
    }
    memcpy(p->buf + p->n_buf, text, len);
    p->n_buf += len;
    return true;
}

void toolcall_feed(struct toolcall_parser *p, const char *text, size_t len, const struct toolcall_sink *sink)
{
    if (!len)
        return;
    if (p->cfg.format == TOOLCALL_NONE) {
        sink->content(sink->ud, text, len);
        return;
    }
    if (!hold(p, text, len)) { /* out of memory: what is held, and this, are content */
        if (p->n_buf)
            emit_content(p, p->n_buf, sink);
        sink->content(sink->ud, text, len);
        p->state = ST_CONTENT;
        return;
    }
    run(p, false, sink);
}

void toolcall_finish(struct toolcall_parser *p, const struct toolcall_sink *sink)
{
    if (p->cfg.format != TOOLCALL_NONE)
        run(p, true, sink);
    if (p->n_buf) /* only an out-of-memory path can leave bytes here */
        emit_content(p, p->n_buf, sink);
}
