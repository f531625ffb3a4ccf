/* cli_int.h -- what the client-side commands (run, list, ps, show, create, rm, cp, stop)
 * share. Private to src/cli/.
 *
 * common.c: finding (and starting) the server, JSON calls, errors in one style.
 * run.c/repl.c: the chat session. models.c: model management and `show`.
 * All of it runs on the main thread of a short-lived process; exit statuses are 0 (ok),
 * 1 (an error, printed as "Error: ..." on stderr), 2 (bad usage), 130 (interrupted). */
#ifndef BELLOWS_CLI_INT_H
#define BELLOWS_CLI_INT_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/client.h"
#include "util/err.h"

#define CLI_URL_MAX 300

/* ---- common.c ---------------------------------------------------------------------------- */

/* Prints "Error: <message>" on stderr; returns 1, the exit status for errors. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints err as "Error: <message>", adding " — <hint>" when the error is BW_ENOTFOUND and a
 * hint is given (e.g. "`bellows list` shows the installed ones"). Returns 1. */
int cli_fail_err(const struct bw_err *err, const char *hint);

/* The user's state directory, $XDG_STATE_HOME/bellows or ~/.local/state/bellows, made if
 * missing (history, the auto-started server's log). BW_EIO when it cannot be made. */
int cli_state_dir(char *buf, size_t len, struct bw_err *err);

/* Finds the server at BELLOWS_HOST and writes its URL into url. When nothing answers
 * there, the address is on this machine and autostart is true (and BELLOWS_NO_AUTOSTART
 * is not set), starts `bellows serve` in the background (its own session, output appended
 * to <state dir>/serve.log), says so on stderr, and waits up to 30 s for /health.
 * Returns BW_OK, or BW_EIO with err saying what failed and the fix. */
int cli_server(char *url, size_t len, bool autostart, struct bw_err *err);

/* One JSON call: body (borrowed; NULL: no body) goes out, a 2xx reply's JSON comes back in
 * *out (caller decrefs; NULL when the reply is empty or out is NULL). A non-2xx reply
 * becomes the server's own error text in err, with the code from its status: 404
 * BW_ENOTFOUND, 400 BW_EINVAL, 503 BW_EBUSY, others BW_EIO. Transport errors as
 * client_request. */
int cli_api(const char *url, const char *method, const char *path, json_t *body, json_t **out, struct bw_err *err);

/* The error text of a non-2xx reply body ({"error": "..."} or the raw text). */
void cli_reply_error(const struct client_response *res, struct bw_err *err);

/* "demo" -> "demo:latest": the name /api/ps and /api/tags report for a model. */
void cli_model_key(const char *name, char *buf, size_t len);

/* True when `a` and `b` name the same model (tags defaulting to latest). */
bool cli_same_model(const char *a, const char *b);

/* The loaded models (/api/ps "models" array, a new reference in *out). */
int cli_loaded_models(const char *url, json_t **out, struct bw_err *err);

/* Unloads MODEL when it is loaded (generate with keep_alive 0). *was_loaded says whether
 * it was. A model that is not loaded is left alone (nothing is loaded to unload it). */
int cli_unload(const char *url, const char *model, bool *was_loaded, struct bw_err *err);

/* A number from a JSON object field (integer or real), or dflt. */
int64_t cli_json_int(const json_t *o, const char *key, int64_t dflt);
const char *cli_json_str(const json_t *o, const char *key, const char *dflt);

/* ---- pull.c ---------------------------------------------------------------------------------- */

/* Pulls NAME through the server's /api/pull (insecure: allow plain HTTP), showing the
 * progress on stderr (cli/progress.h). Ctrl-C stops it (run_install_sigint() first).
 * Returns BW_OK after "success", or the server's error ("pull model manifest: file does
 * not exist", ...) with BW_ENOTFOUND for a 404. */
int cli_pull_model(const char *url, const char *name, bool insecure, struct bw_err *err);

/* ---- models.c ------------------------------------------------------------------------------- */

/* Prints `bellows show`'s summary of a model from its /api/show reply. */
void cli_show_summary(const json_t *show, FILE *f);

/* ---- run.c / repl.c -------------------------------------------------------------------------- */

struct run_session {
    char url[CLI_URL_MAX];
    char model[256];
    json_t *messages;   /* the conversation so far (user/assistant turns), owned */
    json_t *options;    /* /set parameter values and flags, owned */
    char *system;       /* /set system; NULL: the model's own; owned */
    json_t *keep_alive; /* --keepalive as JSON (string or number); NULL: the server's default; owned */
    bool json_format;   /* --format json: answers are one JSON object (the server's JSON mode) */
    bool verbose;
    bool wordwrap;
    /* think as sent to /api/chat: true, false or an effort string; NULL: not sent. Set by
     * --think / /set think / /set nothink (think_explicit), else by run_infer_think(). Owned. */
    json_t *think;
    bool think_explicit;
    bool hide_thinking; /* --hidethinking: thinking is asked for (when on) but not shown */
};

/* One answer, streamed to stdout while it arrives. */
struct run_turn {
    char *content;      /* the answer text (malloc'd), "" when none */
    size_t len;
    char *thinking;     /* the thinking shown (malloc'd), NULL when none or hidden */
    size_t thinking_len;
    json_t *final;      /* the done object (metrics, context fields); NULL when cancelled */
    int64_t ttft_ns;    /* request sent -> first piece of text; -1 when none came */
    bool cancelled;     /* stopped by *cancel (Ctrl-C): the connection was closed */
};
void run_turn_fini(struct run_turn *t);

/* Set by the SIGINT handler run_install_sigint() installs (no SA_RESTART, so waits wake). */
extern volatile sig_atomic_t run_interrupted;
void run_install_sigint(void);

/* Sends the session's conversation plus a new user message to /api/chat (stream) and
 * prints the answer. On success or cancel (with text) the user message and the answer join
 * s->messages. Returns BW_OK (t filled, also when cancelled) or an error (t empty). */
int run_chat_turn(struct run_session *s, const char *user, struct run_turn *t, struct bw_err *err);

/* The --verbose block after an answer, on f (stderr). */
void run_print_stats(const struct run_turn *t, FILE *f);

/* When think was not set by the user: think:true if the model's /api/show capabilities
 * include "thinking", as Ollama's CLI does; otherwise not sent. An unreachable /api/show
 * leaves it unset (the chat request then reports the error). */
void run_infer_think(struct run_session *s);

/* Loads the model (an empty chat request), so errors show before the prompt. */
int run_load_model(struct run_session *s, struct bw_err *err);

/* The interactive session on libedit; returns the exit status. stdin must be a terminal. */
int run_repl(struct run_session *s);

#endif
