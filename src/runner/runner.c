/* runner.c -- `bellows runner`: one model, served over an inherited socket.
 *
 * The server starts it with fork+exec over a socketpair (client.c). The runner loads the
 * model, sends "ready" (or an "error" and exits 1), then loops:
 *     read frames -> handle requests -> one engine step -> write events
 * It reads without blocking while the engine has work, so a cancel or a new request is
 * seen within one decode step, and sleeps in poll() when idle. A large request is prepared
 * (rendered, tokenized, cut) on the engine's own thread meanwhile (engine_prep.h); the loop
 * polls the engine's wake-up descriptor beside the socket to pick it up. When the pool has been
 * idle for --idle-shrink seconds it gives memory back (engine_shrink_idle). EOF on the
 * socket means the server is gone: the runner exits. A malformed or unknown message gets
 * an "error" event and the runner keeps serving the others. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/clock.h"
#include "engine/engine.h"
#include "engine/engine_prep.h"
#include "proto/proto.h"
#include "util/log.h"

struct runner {
    int fd;
    struct engine *engine;
    uint8_t *in;
    size_t in_len, in_cap;
    bool write_failed;
};

static void write_all(struct runner *rn, const uint8_t *buf, size_t len)
{
    while (len && !rn->write_failed) {
        ssize_t n = send(rn->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = rn->fd, .events = POLLOUT};
            poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0) {
            rn->write_failed = true; /* the server is gone; the loop ends */
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void send_event(struct runner *rn, const struct proto_event *ev)
{
    uint8_t *frame;
    size_t len;
    if (proto_event_encode(ev, &frame, &len) != BW_OK) {
        LOG_REQ(LOG_ERROR, ev->id, "runner", "could not encode a %s event", proto_ev_type_name(ev->type));
        return;
    }
    write_all(rn, frame, len);
    free(frame);
}

static void send_error(struct runner *rn, uint64_t id, int code, const char *msg)
{
    struct proto_event ev = {.type = PROTO_EV_ERROR, .id = id, .err_code = code, .text = msg, .len = strlen(msg)};
    send_event(rn, &ev);
}

/* The engine's events become frames as they happen. */
static void on_engine_event(void *ud, const struct engine_event *e)
{
    struct runner *rn = ud;
    struct proto_event ev = {.id = e->req_id, .text = e->text, .len = e->len, .err_code = e->err_code};
    switch (e->type) {
    case ENGINE_EV_TEXT:
        ev.type = PROTO_EV_TOKEN;
        ev.thinking = e->thinking;
        break;
    case ENGINE_EV_RENDERED: ev.type = PROTO_EV_RENDERED; break;
    case ENGINE_EV_ERROR: ev.type = PROTO_EV_ERROR; break;
    case ENGINE_EV_LOGPROBS: ev.type = PROTO_EV_LOGPROBS; break;
    case ENGINE_EV_TOOL_CALL:
        ev.type = PROTO_EV_TOOL_CALL;
        ev.call_index = e->call_index;
        break;
    case ENGINE_EV_EMBEDDING:
        ev.type = PROTO_EV_EMBEDDING;
        ev.embd = e->embd;
        ev.n_embd = e->n_embd;
        break;
    case ENGINE_EV_DONE:
        ev.type = PROTO_EV_DONE;
        ev.stats = *e->stats;
        ev.tokens = e->tokens; /* the context, when the request asked for it */
        ev.n_tokens = e->n_tokens;
        break;
    }
    send_event(rn, &ev);
}

/* A generation request's memory, handed to the engine (engine_submit_owned): a large one is
 * prepared off the loop and needs its strings until then. */
static void release_request(void *ud)
{
    proto_request_free(ud);
    free(ud);
}

static void handle(struct runner *rn, const uint8_t *payload, size_t len)
{
    struct proto_request r;
    struct bw_err err;
    if (proto_request_decode(payload, len, &r, &err) != BW_OK) {
        LOG_REQ(LOG_WARN, r.id, "runner", "bad message: %s", err.msg);
        send_error(rn, r.id, err.code, err.msg);
        proto_request_free(&r);
        return;
    }
    LOG_REQ(LOG_DEBUG, r.id, "runner", "received %s", proto_req_type_name(r.type));
    struct proto_event ev = {.id = r.id};
    switch (r.type) {
    case PROTO_REQ_CHAT:
    case PROTO_REQ_GENERATE:
    case PROTO_REQ_EMBED: {
        struct proto_request *owned = malloc(sizeof *owned);
        if (!owned) {
            send_error(rn, r.id, BW_ENOMEM, "out of memory");
            break;
        }
        *owned = r; /* the engine releases it (release_request), now or once prepared */
        if (engine_submit_owned(rn->engine, &owned->req, release_request, owned, &err) != BW_OK)
            send_error(rn, r.id, err.code, err.msg);
        return;
    }
    case PROTO_REQ_CANCEL:
        engine_cancel(rn->engine, r.id); /* unknown: it finished already; nothing to say */
        break;
    case PROTO_REQ_PAUSE:
    case PROTO_REQ_RESUME:
        engine_pause(rn->engine, r.id, r.type == PROTO_REQ_PAUSE); /* unknown: finished; nothing to say */
        break;
    case PROTO_REQ_STATUS:
        ev.type = PROTO_EV_STATUS;
        engine_status(rn->engine, &ev.status);
        send_event(rn, &ev);
        break;
    case PROTO_REQ_TOKENIZE: {
        int32_t *toks;
        int n;
        if (engine_tokenize(rn->engine, r.req.prompt, r.add_special, &toks, &n) != BW_OK) {
            send_error(rn, r.id, BW_EINVAL,
                       engine_has_vocab(rn->engine) ? "could not tokenize the content" : "this model has no tokenizer");
            break;
        }
        ev.type = PROTO_EV_TOKENS;
        ev.tokens = toks;
        ev.n_tokens = n;
        send_event(rn, &ev);
        free(toks);
        break;
    }
    case PROTO_REQ_DETOKENIZE: {
        char *text;
        size_t n;
        if (engine_detokenize(rn->engine, r.tokens, r.n_tokens, &text, &n) != BW_OK) {
            send_error(rn, r.id, BW_EINVAL, engine_has_vocab(rn->engine)
                                                ? "could not detokenize (a token id out of range?)"
                                                : "this model has no tokenizer");
            break;
        }
        ev.type = PROTO_EV_TEXT;
        ev.text = text;
        ev.len = n;
        send_event(rn, &ev);
        free(text);
        break;
    }
    }
    proto_request_free(&r);
}

/* Reads what is available (never blocks) and handles every complete frame.
 * Returns false when the socket reached EOF or the stream is corrupt. */
static bool read_frames(struct runner *rn)
{
    for (;;) {
        if (rn->in_cap - rn->in_len < 65536) {
            size_t cap = rn->in_cap ? rn->in_cap * 2 : 131072;
            uint8_t *p = realloc(rn->in, cap);
            if (!p)
                return false;
            rn->in = p;
            rn->in_cap = cap;
        }
        ssize_t n = recv(rn->fd, rn->in + rn->in_len, rn->in_cap - rn->in_len, MSG_DONTWAIT);
        if (n == 0)
            return false;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return false;
        }
        rn->in_len += (size_t)n;
    }
    size_t off = 0;
    for (;;) {
        const uint8_t *payload;
        uint32_t plen;
        size_t used;
        int got = proto_frame_next(rn->in + off, rn->in_len - off, &payload, &plen, &used);
        if (got < 0) {
            LOG(LOG_ERROR, "runner", "corrupt frame length from the server; exiting");
            return false;
        }
        if (got == 0)
            break;
        handle(rn, payload, plen);
        off += used;
    }
    memmove(rn->in, rn->in + off, rn->in_len - off);
    rn->in_len -= off;
    return true;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows runner --model PATH [--fd N] [options]\n"
               "Internal: serves one model over the socket inherited as fd N (default 3),\n"
               "speaking the protocol of docs/runner-protocol.md. Started by `bellows serve`.\n\n"
               "  --parallel N        sequences in the KV pool at once (default 4)\n"
               "  --threads N         CPU threads (default: all cores)\n"
               "  --ctx-cap N         operator cap on the context (BELLOWS_CONTEXT_LENGTH)\n"
               "  --kv-budget N       most KV cells the pool may grow to (default: parallel x Cmax)\n"
               "  --flash-attn on|off (default on)\n"
               "  --kv-type T         KV cache type: f16 (default), q8_0, q4_0 (quantized: flash attention)\n"
               "  --gpu-layers N      layers to offload to GPUs (default 0)\n"
               "  --tensor-split A,B  layers per device (local GPUs, then RPC devices)\n"
               "  --rpc H:P[,H:P]     RPC servers whose devices take layers (bellows rpc-server)\n"
               "  --no-mmap           read the model instead of mapping it\n"
               "  --idle-shrink S     give the pool back after S idle seconds (default 60)\n"
               "  --kv-disk DIR       save cached sequences' KV in DIR and restore them by prefix\n"
               "  --kv-disk-budget B  bytes DIR's saved states may take in all (0: off)\n");
}

static volatile sig_atomic_t stop_requested;
static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int cli_runner(int argc, char **argv)
{
    struct engine_params ep;
    engine_params_default(&ep);
    int fd = 3;
    double idle_shrink_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-mmap")) {
            ep.use_mmap = false;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bellows runner: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model")) ep.model_path = v;
        else if (!strcmp(a, "--fd")) fd = atoi(v);
        else if (!strcmp(a, "--parallel")) ep.n_parallel = atoi(v);
        else if (!strcmp(a, "--threads")) ep.n_threads = atoi(v);
        else if (!strcmp(a, "--ctx-cap")) ep.context_cap = atoi(v);
        else if (!strcmp(a, "--kv-budget")) ep.max_pool_cells = atoll(v);
        else if (!strcmp(a, "--idle-shrink")) idle_shrink_s = atof(v);
        else if (!strcmp(a, "--kv-disk")) ep.kv_disk_dir = v;
        else if (!strcmp(a, "--kv-disk-budget")) ep.kv_disk_budget = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--flash-attn")) ep.flash_attn = strcmp(v, "off") != 0;
        else if (!strcmp(a, "--kv-type")) ep.kv_type = v; /* engine_new rejects a bad one */
        else if (!strcmp(a, "--gpu-layers")) ep.n_gpu_layers = atoi(v);
        else if (!strcmp(a, "--rpc")) ep.rpc_servers = v; /* engine_new rejects a bad list */
        else if (!strcmp(a, "--tensor-split")) {
            char *copy = strdup(v), *save = NULL;
            int k = 0;
            for (char *t = strtok_r(copy, ",", &save); t && k < 16; t = strtok_r(NULL, ",", &save))
                ep.tensor_split[k++] = (float)atof(t);
            free(copy);
        }
        else {
            fprintf(stderr, "bellows runner: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!ep.model_path) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM/SIGINT end the loop like EOF, so engine_free saves what is cached (a second
     * one, during that, kills: the handler is reset by SA_RESETHAND). No SA_RESTART: poll
     * returns EINTR and the loop sees the flag. */
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct runner rn = {.fd = fd};
    struct bw_err err;
    int64_t t0 = clock_mono_ns();
    if (engine_new(&ep, on_engine_event, &rn, &rn.engine, &err) != BW_OK) {
        LOG(LOG_ERROR, "runner", "%s", err.msg);
        send_error(&rn, 0, err.code, err.msg);
        return 1;
    }
    struct engine_status st;
    engine_status(rn.engine, &st);
    struct proto_event ready = {.type = PROTO_EV_READY};
    ready.ready = (struct proto_ready){.pid = getpid(),
                                       .n_ctx_train = st.n_ctx_train,
                                       .context_max = st.context_max,
                                       .n_embd = engine_n_embd(rn.engine),
                                       .n_parallel = st.n_parallel,
                                       .load_ns = clock_mono_ns() - t0,
                                       .kv_bytes_per_cell = st.kv_bytes_per_cell,
                                       .model = ep.model_path,
                                       .chat_template = engine_chat_template(rn.engine)};
    send_event(&rn, &ready);
    LOG(LOG_INFO, "runner", "serving %s (pid %d, %d sequences, Cmax %d, loaded in %.0f ms)", ep.model_path,
        getpid(), st.n_parallel, st.context_max, ready.ready.load_ns / 1e6);

    int64_t idle_since = clock_mono_ns();
    int rc = 0;
    while (!rn.write_failed && !stop_requested) {
        bool busy = engine_has_work(rn.engine);
        int timeout = -1;
        if (!busy && engine_grow_ahead(rn.engine)) /* room for the next turn, before it comes */
            continue;
        if (!busy) {
            engine_status(rn.engine, &st);
            if (st.pool_cells > 0) {
                int64_t left = (int64_t)(idle_shrink_s * 1e9) - (clock_mono_ns() - idle_since);
                timeout = left > 0 ? (int)(left / 1000000) + 1 : 0;
            }
        }
        /* The second descriptor: a request prepared off the loop is ready (engine_prep.h;
         * -1, ignored by poll, until one was). engine_has_work() then says so. */
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = engine_wake_fd(rn.engine), .events = POLLIN}};
        int ready_n = poll(p, 2, busy ? 0 : timeout);
        if ((ready_n < 0 && errno != EINTR) || stop_requested)
            break;
        if (ready_n > 0 && p[0].revents && !read_frames(&rn))
            break; /* EOF: the server is gone */
        if (engine_has_work(rn.engine)) {
            if (engine_step(rn.engine) != BW_OK) {
                rc = 1; /* libllama failed beyond one request; the server starts a new runner */
                break;
            }
            idle_since = clock_mono_ns();
        } else if (clock_mono_ns() - idle_since >= (int64_t)(idle_shrink_s * 1e9)) {
            engine_shrink_idle(rn.engine);
            idle_since = clock_mono_ns();
        }
    }
    engine_free(rn.engine);
    free(rn.in);
    return rc;
}
