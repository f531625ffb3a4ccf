/* proto.h -- the server <-> runner protocol: frames and the messages inside them.
 *
 * A frame is a 4-byte big-endian length N (1..PROTO_MAX_FRAME) followed by N bytes of one
 * JSON object. Every message has "type" and, except "ready", an "id" (the request id), so
 * one runner serves many requests at once and events interleave. docs/runner-protocol.md
 * describes every message field by field.
 *
 * This module is pure: it turns structs into frame bytes and bytes into structs. Reading
 * and writing sockets is the caller's job (runner.c, client.c). jansson is used inside;
 * decoded messages own their strings and are released with the matching _free().
 * Thread-safe: no shared state. */
#ifndef BELLOWS_PROTO_H
#define BELLOWS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/err.h"

#define PROTO_MAX_FRAME (64u << 20)

/* ---- framing ---------------------------------------------------------------------- */

/* Looks for one complete frame at the start of buf[0..len). Returns 1 and sets *payload,
 * *payload_len and *consumed (header + payload) when there is one; 0 when more bytes are
 * needed; BW_EINVAL when the length is 0 or over PROTO_MAX_FRAME (the stream is unusable). */
int proto_frame_next(const uint8_t *buf, size_t len, const uint8_t **payload, uint32_t *payload_len,
                     size_t *consumed);

/* Writes the 4-byte header for a payload of len bytes. */
void proto_frame_header(uint32_t len, uint8_t out[4]);

/* ---- requests: server -> runner --------------------------------------------------- */

enum proto_req_type {
    PROTO_REQ_CHAT,
    PROTO_REQ_GENERATE,
    PROTO_REQ_EMBED,
    PROTO_REQ_TOKENIZE,
    PROTO_REQ_DETOKENIZE,
    PROTO_REQ_CANCEL,
    PROTO_REQ_STATUS,
    PROTO_REQ_PAUSE,  /* the request's consumer stopped reading: stop stepping it (id only) */
    PROTO_REQ_RESUME, /* it reads again */
};

struct proto_request {
    enum proto_req_type type;
    uint64_t id;
    /* CHAT / GENERATE / EMBED: the engine request (req_id == id). Its strings, messages and
     * stop list are owned by this struct. */
    struct engine_request req;
    /* TOKENIZE: req.prompt is the text; add_special adds BOS etc. as the model wants. */
    bool add_special;
    /* DETOKENIZE */
    int32_t *tokens;
    int n_tokens;
    void *priv; /* decoded document; owned */
};

/* Parses one request payload. Returns BW_OK and fills *out, or BW_EINVAL with a message naming the bad field ("option
 * 'temperature' must be a number"); when the id could be read it is set in *out->id even
 * on error, so the runner can answer that request. Release *out with proto_request_free()
 * after success and after failure alike. */
int proto_request_decode(const uint8_t *json, size_t len, struct proto_request *out, struct bw_err *err);
void proto_request_free(struct proto_request *r);

/* Serializes a request into a new frame (header included). Returns BW_OK with a malloc'd
 * buffer in *frame (caller frees) and its size in *frame_len, or BW_ENOMEM / BW_EINVAL. */
int proto_request_encode(const struct proto_request *r, uint8_t **frame, size_t *frame_len);

/* ---- events: runner -> server ----------------------------------------------------- */

enum proto_ev_type {
    PROTO_EV_READY,     /* first frame: model loaded */
    PROTO_EV_TOKEN,     /* text: a piece of the answer, or of the reasoning when thinking */
    PROTO_EV_RENDERED,  /* text: the rendered prompt (render_only) */
    PROTO_EV_EMBEDDING, /* embd[n_embd] */
    PROTO_EV_TOKENS,    /* tokens[n_tokens] (tokenize) */
    PROTO_EV_TEXT,      /* text (detokenize) */
    PROTO_EV_STATUS,    /* status */
    PROTO_EV_DONE,      /* stats; last event of the request */
    PROTO_EV_ERROR,     /* err_code + text; last event of the request (id 0: the runner itself) */
    PROTO_EV_TOOL_CALL, /* text: one tool call, {"name":…,"arguments":{…}[,"id":…]}; call_index */
    PROTO_EV_LOGPROBS,  /* text: a JSON array of token entries (engine/logprobs.h), sent before
                           the text they belong to */
};

struct proto_ready {
    int pid;
    int n_ctx_train;
    int context_max;
    int n_embd;
    int n_parallel;
    int64_t load_ns;
    uint64_t kv_bytes_per_cell;
    const char *model;         /* path */
    const char *chat_template; /* may be NULL */
};

struct proto_event {
    enum proto_ev_type type;
    uint64_t id;
    const char *text;
    size_t len;
    bool thinking;               /* TOKEN: text is reasoning, not answer */
    int call_index;              /* TOOL_CALL: 0, 1, … in the order the answer made them */
    int err_code;
    struct engine_stats stats;   /* DONE (done_reason points into the event) */
    const float *embd;
    int n_embd;
    const int32_t *tokens;       /* TOKENS; DONE: the context (prompt + answer) when asked */
    int n_tokens;
    struct engine_status status; /* STATUS */
    struct proto_ready ready;    /* READY */
    void *priv;                  /* decoded document / arrays; owned */
};

/* Serializes an event into a new frame (header included); *frame is malloc'd, caller frees. */
int proto_event_encode(const struct proto_event *ev, uint8_t **frame, size_t *frame_len);

/* Parses one event payload into *out; BW_EINVAL when malformed. Release *out with
 * proto_event_free() after success and after failure alike. */
int proto_event_decode(const uint8_t *json, size_t len, struct proto_event *out, struct bw_err *err);
void proto_event_free(struct proto_event *ev);

const char *proto_req_type_name(enum proto_req_type t);
const char *proto_ev_type_name(enum proto_ev_type t);

#endif
