/* api_int.h -- what the files of src/api/ share (request.h adds the request model).
 * Private to src/api/. */
#ifndef BELLOWS_API_INT_H
#define BELLOWS_API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api/api.h"
#include "proto/options.h"
#include "store/gguf_info.h"
#include "util/clock.h"

/* A string member of a JSON object, or NULL (missing or not a string). */
static inline const char *str_field(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* A token id as clients send one: an integer from 0 that fits llama_token. Whether it is in
 * the model's vocabulary is the runner's check. */
static inline bool api__is_token_id(const json_t *t)
{
    return json_is_integer(t) && json_integer_value(t) >= 0 && json_integer_value(t) <= INT32_MAX;
}
/* A non-empty array of token ids (gen.c). */
bool api__is_token_array(const json_t *a);

/* ---- metrics (metrics.c) ------------------------------------------------------------- */

#define METRICS_BUCKETS 12
struct histogram {
    _Atomic uint64_t le[METRICS_BUCKETS]; /* cumulative counts at the bounds of metrics.c */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

/* More than the route table's labels (each route, "other", the 405/404 labels): the last slot is
 * "other", where any label past the others is counted, never under a real route's name. */
#define METRICS_ROUTES 48
struct metrics {
    const char *route[METRICS_ROUTES]; /* registered at first use (owned copies), under mu */
    _Atomic uint64_t by_status[METRICS_ROUTES][6]; /* 1xx..5xx, other */
    _Atomic uint64_t tokens_in, tokens_out, tokens_cached;
    _Atomic uint64_t truncations, truncated_tokens, pool_growths;
    struct histogram ttft, per_token;
    pthread_mutex_t mu; /* route registration */
};

void metrics_init(struct metrics *m);
void metrics_fini(struct metrics *m);
void metrics_request(struct metrics *m, const char *route, int status);
void metrics_generation(struct metrics *m, const struct engine_stats *st);
/* Prometheus text exposition of everything, plus the scheduler's gauges. */
char *metrics_render(struct metrics *m, struct sched *sched, size_t *len);

/* ---- the api --------------------------------------------------------------------------- */

/* The running registry pulls (api_pull.c). */
struct api_pulls;
int api__pulls_new(struct store *st, struct api_pulls **out);
/* Cancels every pull and waits for their threads. NULL is fine. */
void api__pulls_free(struct api_pulls *p);

#define API_INFO_CACHE 64
struct api {
    struct api_config cfg;
    pthread_mutex_t info_mu; /* guards info_cache */
    struct {
        char *path;
        struct gguf_info *info;
        int64_t mtime_ns;
    } info_cache[API_INFO_CACHE];
    struct metrics metrics;
    struct api_pulls *pulls;
};

/* ---- replies --------------------------------------------------------------------------- */

/* Sends body (stolen) as JSON with status. */
void api__reply_json(struct http_request *req, int status, json_t *body);
/* Native error shape {"error": "..."}. */
void api__reply_error(struct http_request *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* OpenAI error shape {"error": {"message", "type", "param", "code"}}. */
void api__reply_openai_error(struct http_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses the body as a JSON object. On failure fills msg ("invalid JSON at line 3 column
 * 7: ...", "missing request body") and returns NULL. */
json_t *api__parse_body(const struct http_request *req, char *msg, size_t len);

/* RFC 3339 UTC time with nanoseconds, as Ollama writes created_at. */
void api__time_rfc3339(int64_t unix_ns, char *buf, size_t len);

/* keep_alive from a request body (string duration or number of seconds); absent ->
 * SCHED_KEEP_ALIVE_DEFAULT. BW_EINVAL for a bad value. */
int api__keep_alive(const json_t *body, int64_t *out);

/* The `think` switch of a request (native `think`; /v1 `reasoning_effort` maps onto it):
 * absent or null -> NULL (unset); true / false -> "true" / "false"; "low" | "medium" |
 * "high" -> the same. Static strings. BW_EINVAL for any other value (*out NULL). */
int api__think_value(const json_t *v, const char **out);

/* Images (native `images`, /v1 `image_url` parts) reach no model: Bellows has no vision
 * encoder yet, so a request that carries any is refused, never answered as if the images
 * were not there. Returns 0 when n_images is 0, else 400 with the message in msg. */
int api__refuse_images(const char *model, int n_images, char *msg, size_t len);

/* GBNF for JSON mode: one JSON object (api.c). */
extern const char api__json_grammar[];

/* ---- models --------------------------------------------------------------------------- */

struct api_model {
    struct store_model *sm;        /* owned */
    const struct gguf_info *info;  /* borrowed from the cache (valid while the api lives), */
    bool info_owned;               /* or owned when the cache was full */
    struct sched_model sched;      /* points into sm/info */
    const struct limits *limits;   /* the api's request limits (borrowed), set by api__model_open */
};

/* Resolves a model name for a request. Returns BW_OK, or BW_EINVAL (invalid name / not a
 * GGUF), BW_ENOTFOUND "model 'x' not found" with the message in err. */
int api__model_open(struct api *a, const char *name, struct api_model *out, struct bw_err *err);
void api__model_close(struct api_model *m);

/* Which template renders a model's chats (issue 10 item 3). A TEMPLATE layer (Modelfile or
 * /api/create `template`) written in Jinja replaces the GGUF's tokenizer.chat_template; one
 * in Ollama's Go-template syntax (as pulled from Ollama's registry) is kept in the store, so
 * an Ollama reading the same store still works, but Bellows does not render it: the GGUF's
 * Jinja template renders instead. With neither, llama_chat_apply_template's fallback does. */
enum api_template_source {
    API_TEMPLATE_NONE,      /* no Jinja template at all */
    API_TEMPLATE_MODELFILE, /* the model's TEMPLATE layer, in Jinja */
    API_TEMPLATE_GGUF,      /* the GGUF's tokenizer.chat_template */
};
/* The Jinja TEMPLATE layer that replaces the GGUF's template (pass it as the request's
 * chat template), or NULL when the layer is absent, empty or a Go template. Borrowed from
 * m->sm: valid until api__model_close(). */
const char *api__render_template(const struct api_model *m);
/* Where the template that renders comes from; *text (may be NULL) gets it, borrowed from m,
 * or NULL for API_TEMPLATE_NONE. */
enum api_template_source api__template(const struct api_model *m, const char **text);
/* "modelfile", "gguf" or "none", as /api/show's template_source says. */
const char *api__template_source_name(enum api_template_source src);
/* The line /api/create streams and /api/show's template_note says when the TEMPLATE layer
 * is a Go template; SRC is where the template that renders instead comes from. */
void api__go_template_note(enum api_template_source src, char *buf, size_t len);
/* TEMPLATE_CAP_* (template/caps.h) of the template that renders; 0 with none. */
unsigned api__model_caps(const struct api_model *m);

/* The request-level counts of a body (messages, tools, input, prompt arrays) against the
 * api's limits (proto/limits.h). Returns 0, or 400 with the message in msg. */
int api__check_limits(const struct api *a, const json_t *body, char *msg, size_t len);

/* Checks both option objects against the limits (ranges, repeat_last_n <= the model's
 * context), then applies the model's PARAMETER layer, then the request's options object, onto r (and
 * the load-time ones, use_mmap, onto m->sched).
 * stop_storage needs 2 x OPTIONS_MAX_STOP entries. Stop strings point into the two JSON
 * documents: *params_doc is returned (caller decrefs after the request was sent). */
int api__apply_options(struct api_model *m, const json_t *options, struct engine_request *r,
                       const char **stop_storage, json_t **params_doc, struct bw_err *err);

/* ---- generation (gen.c) -------------------------------------------------------------------- */

struct gen;

struct gen_format {
    const char *stream_content_type;
    /* Appends the wire bytes for one piece of text (streaming): answer text, or reasoning
     * when thinking (template/reasoning.h splits them in the runner). */
    void (*piece)(struct gen *g, const char *text, size_t len, bool thinking);
    /* Appends the final object: the last chunk when streaming, the whole reply otherwise. */
    void (*final)(struct gen *g);
    /* Appends an error after the headers went out. */
    void (*stream_error)(struct gen *g, const char *msg);
    /* Answers an error before any byte went out. */
    void (*reply_error)(struct http_request *req, int status, const char *msg);
    /* Appends the wire bytes for one tool call (streaming; NULL: calls only in the final
     * object). call is {"name","arguments":{…}[,"id"]}; id is the call's id for the client
     * (gen_call_id). */
    void (*tool_call)(struct gen *g, int index, const json_t *call, const char *id);
};

struct strbuf {
    char *s;
    size_t len, cap;
};
void strbuf_add(struct strbuf *b, const char *s, size_t n);
/* Dumps obj (stolen) + "\n", with numbers as short as they read back (toolcall_json_dump):
 * the arguments a model wrote keep their look (48.85, not 48.850000000000001), and so do
 * log-probabilities (-0.773874938). */
void strbuf_add_json(struct strbuf *b, json_t *obj);
void strbuf_free(struct strbuf *b);

struct gen {
    struct api *api;
    struct http_request *req;
    const struct gen_format *fmt;
    void *fmt_ud;                 /* the format's own state */
    struct api_model model;       /* owned by gen once gen_run is called */
    char model_name[NAMES_FULL_MAX + 1]; /* as the client wrote it (longer: 400, api__model_open) */
    int64_t keep_alive;
    bool stream;
    const char *route;            /* for metrics */

    /* filled while running */
    struct sched_runner *runner;
    struct sched_call *call;
    int64_t t_start, t_acquired;  /* monotonic ns */
    int64_t t_gone_check;         /* last look at the client's connection */
    struct strbuf out;            /* bytes for the client not yet sent */
    size_t out_off;
    struct strbuf text;           /* the whole answer (non-streaming) */
    struct strbuf thinking;       /* the whole reasoning (non-streaming) */
    char *rendered;               /* render_only: the prompt */
    float *embd;                  /* embedding */
    int n_embd;
    struct engine_stats st;
    bool finished, failed;
    int status;                   /* HTTP status of the reply */
    int32_t *context;             /* generate with want_context: prompt + answer tokens (DONE) */
    int n_context;
    json_t *tool_calls;           /* the answer's tool calls, [{"name","arguments"[,"id"]}], or NULL */
    bool logprobs;                /* the request asked for logprobs (set by the route) */
    json_t *logprobs_pending;     /* entries (engine/logprobs.h) not yet in a reply, or NULL */
};

/* The log-probability entries received since the last call, in order (a new array the
 * caller owns), or NULL when there are none. A streamed chunk takes those that came before
 * it; the non-streamed reply takes them all at the end. */
json_t *gen_take_logprobs(struct gen *g);

/* The id a client sees for call `index` of g's answer: the model's own when it wrote one
 * (Mistral, Kimi), else "call_" and 8 characters derived from the request id, so the same
 * call has the same id in the streamed and the final object. Writes into buf. */
const char *gen_call_id(const struct gen *g, int index, char *buf, size_t len);

/* Runs pr (chat / generate / embed) for g and answers the HTTP request: a stream (when
 * g->stream) or one reply. Takes ownership of g (freed when the reply is finished). The
 * request's own strings (pr's messages, prompt) must live until this returns: the request
 * is encoded and sent before the first reply byte. */
void gen_run(struct gen *g, struct proto_request *pr);

/* For callers that need a result, not a reply (embed batches): runs pr to completion on
 * an acquired runner. Returns BW_OK with g->text / g->embd / g->st filled, or an error. */
int gen_collect(struct gen *g, struct proto_request *pr, struct bw_err *err);

/* How gen_embed_inputs reads its input and shapes the vectors. */
struct gen_embed_opts {
    bool truncate;   /* cut an input longer than Cmax (spec/context.md rule 7) or fail */
    bool base64;     /* little-endian float32 as base64 text (the openai SDKs' default) */
    bool normalize;  /* L2-normalize, as Ollama's /api/embed, OpenAI and llama-server do */
    int dimensions;  /* > 0: keep the first N values and normalize again (Ollama's rule) */
    bool tokens;     /* token ids are inputs too: an array of integers is one input, an
                        array of such arrays several (OpenAI's embeddings input) */
};

/* Checks an embeddings `input`: a string, an array of strings, or with tokens_ok an array
 * of token ids / an array of arrays of token ids. Returns 0, or 400 with msg ("input must be
 * ..."). */
int gen_embed_check_input(const json_t *input, bool tokens_ok, char *msg, size_t len);

/* `dimensions` of an embeddings request: absent, null or 0 -> 0 (the whole vector), a
 * positive integer -> itself; anything else 400 with msg. */
int gen_embed_dimensions(const json_t *v, int *out, char *msg, size_t len);

/* Keeps the first `dimensions` values (when > 0 and fewer than n) and L2-normalizes v in
 * place. Returns the new length, or -1 when v holds NaN or infinity. Pure. */
int gen_embed_normalize(float *v, int n, int dimensions);

/* Embeds input (checked by gen_embed_check_input) on g's acquired runner, appending one
 * vector per input to `vectors` (float arrays, or base64 float32 strings). */
int gen_embed_inputs(struct gen *g, const json_t *input, const struct gen_embed_opts *o, json_t *vectors,
                     int *prompt_tokens, struct bw_err *err);

/* Resolves the model a request names into g->model (and g->model_name). Returns BW_OK or
 * the error (api__model_open's). */
int gen_open_model(struct gen *g, const char *name, struct bw_err *err);

/* The edge of every generation route: answers err before any byte went out, in g's format,
 * with the status its code maps to (api_status_for), counts it, and frees g. */
void gen_fail(struct gen *g, const struct bw_err *err);

/* A new session for route, answering in fmt (NULL: the caller answers itself, as the
 * embedding routes do). NULL when out of memory. */
struct gen *gen_new(struct api *a, struct http_request *req, const char *route, const struct gen_format *fmt);

/* Acquires the runner for g->model (load time counted). */
int gen_acquire(struct gen *g, struct bw_err *err);
void gen_free(struct gen *g);

/* Adds Bellows' context fields (spec/api.md) of st to obj. */
void api__context_fields(json_t *obj, const struct engine_stats *st, const char *request_id);

/* ---- tools (api_tools.c) -------------------------------------------------------------------- */

/* A request's tool_choice and parallel_tool_calls. */
struct api_tool_choice {
    const char *choice;  /* NULL (absent: the model decides), "auto", "none", "required",
                            "function" (static strings) */
    const char *name;    /* "function": the function's name, borrowed from the body */
    bool parallel;       /* parallel_tool_calls (default true): false holds the model to one call */
};
/* tools (both APIs): an array of {"type":"function","function":{"name",…}}, parameters an
 * object when given. Returns 0 (absent or null too), or 400 with msg naming the entry. */
int api__check_tools(const json_t *tools, char *msg, size_t len);
/* Reads tool_choice (OpenAI's shapes: "auto", "none", "required", or {"type":"function",
 * "function":{"name":…}}) and parallel_tool_calls from body, against the request's tools
 * (an array, or NULL). Returns 0, or 400 with msg: an unknown shape, a function not in
 * tools, "required" without tools. */
int api__tool_choice(const json_t *body, const json_t *tools, struct api_tool_choice *out, char *msg, size_t len);
/* One parsed call ({"name","arguments"}) in Ollama's shape {"id","function":{"index","name",
 * "arguments":{…}}} / OpenAI's {"id","type":"function","function":{"name","arguments":
 * "<json text>"}} (with "index" as a stream delta). New objects. */
json_t *api__ollama_tool_call(const json_t *call, int index, const char *id);
json_t *api__openai_tool_call(const json_t *call, int index, const char *id, bool delta);

/* ---- handlers ---------------------------------------------------------------------------- */

void ollama_generate(struct api *a, struct http_request *req);
void ollama_chat(struct api *a, struct http_request *req);
void ollama_embed(struct api *a, struct http_request *req);
void ollama_embeddings(struct api *a, struct http_request *req);
void ollama_tags(struct api *a, struct http_request *req);
void ollama_show(struct api *a, struct http_request *req);
void ollama_ps(struct api *a, struct http_request *req);
void ollama_create(struct api *a, struct http_request *req);
void ollama_blob(struct api *a, struct http_request *req);
/* The begin hook of POST /api/blobs/:digest (api_begin): opts into a streamed body. */
void ollama_blob_begin(struct api *a, struct http_request *req);
void ollama_copy(struct api *a, struct http_request *req);
void ollama_delete(struct api *a, struct http_request *req);
void ollama_pull(struct api *a, struct http_request *req); /* api_pull.c */
void ollama_push(struct api *a, struct http_request *req);
void ollama_cache(struct api *a, struct http_request *req); /* api_cache.c: GET / DELETE /api/cache */

void openai_chat(struct api *a, struct http_request *req);
void openai_completions(struct api *a, struct http_request *req);
void openai_embeddings(struct api *a, struct http_request *req);
void openai_models(struct api *a, struct http_request *req);
void openai_model(struct api *a, struct http_request *req);

#endif
