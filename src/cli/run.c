/* run.c -- `bellows run MODEL [PROMPT...]`: one answer, or the interactive session
 * (repl.c), through the server's /api/chat. The whole conversation goes with every turn;
 * the server's prefix cache makes that cheap, and --verbose shows how much it reused.
 *
 * One-shot: the prompt is the arguments joined by spaces, after the standard input when
 * that is not a terminal (`cat notes.txt | bellows run demo "Summarize:"`). The answer
 * streams to stdout, statistics go to stderr. Ctrl-C stops the answer (the connection is
 * closed, the server cancels the request) and exits 130.
 *
 * Thinking, as Ollama's CLI: `think` is sent when --think[=V] or /set think|nothink set it,
 * else true when the model's capabilities include "thinking" (run_infer_think); the
 * reasoning streamed in message.thinking is shown before the answer between "Thinking..."
 * and "...done thinking." (dimmed on a terminal, format.c), or not at all with
 * --hidethinking. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/clock.h"
#include "cli/cli_int.h"
#include "cli/format.h"

volatile sig_atomic_t run_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

void run_install_sigint(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked poll/read wakes with EINTR */
    sigaction(SIGINT, &sa, NULL);
}

void run_turn_fini(struct run_turn *t)
{
    free(t->content);
    free(t->thinking);
    json_decref(t->final);
    memset(t, 0, sizeof *t);
}

/* ---- one turn ------------------------------------------------------------------------------ */

struct turn_ctx {
    struct run_turn *t;
    size_t cap, thinking_cap;
    struct fmt_thinking view; /* the "Thinking..." block on stdout */
    int64_t t0;
    char err[512];
    bool failed;
};

/* Appends s[0..n) to the NUL-terminated *buf (*len bytes, *cap allocated). -1: no memory. */
static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *p = realloc(*buf, c);
        if (!p)
            return -1;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int on_line(void *ud, char *line, size_t len)
{
    struct turn_ctx *c = ud;
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!json_is_object(o)) {
        snprintf(c->err, sizeof c->err, "the server sent a line that is not JSON: %.80s", line);
        c->failed = true;
        json_decref(o);
        return 1;
    }
    const char *e = json_string_value(json_object_get(o, "error"));
    if (e) {
        snprintf(c->err, sizeof c->err, "%s", e);
        c->failed = true;
        json_decref(o);
        return 1;
    }
    const json_t *msg = json_object_get(o, "message");
    const char *thought = cli_json_str(msg, "thinking", "");
    const char *piece = cli_json_str(msg, "content", "");
    size_t n_thought = strlen(thought), n = strlen(piece);
    struct run_turn *t = c->t;
    if ((n || n_thought) && t->ttft_ns < 0)
        t->ttft_ns = clock_mono_ns() - c->t0; /* thinking is the model's first output too */
    if (n_thought && !c->view.hide) {
        fmt_thinking_piece(&c->view, thought, n_thought, stdout);
        fflush(stdout);
        if (append(&t->thinking, &t->thinking_len, &c->thinking_cap, thought, n_thought)) {
            snprintf(c->err, sizeof c->err, "out of memory");
            c->failed = true;
            json_decref(o);
            return 1;
        }
    }
    if (n || json_array_size(json_object_get(msg, "tool_calls")))
        fmt_thinking_close(&c->view, stdout);
    if (n) {
        fwrite(piece, 1, n, stdout);
        fflush(stdout);
        if (append(&t->content, &t->len, &c->cap, piece, n)) {
            snprintf(c->err, sizeof c->err, "out of memory");
            c->failed = true;
            json_decref(o);
            return 1;
        }
    }
    if (json_is_true(json_object_get(o, "done"))) {
        json_decref(c->t->final);
        c->t->final = o;
        return 0;
    }
    json_decref(o);
    return 0;
}

static json_t *message(const char *role, const char *content)
{
    return json_pack("{s:s, s:s}", "role", role, "content", content);
}

int run_chat_turn(struct run_session *s, const char *user, struct run_turn *t, struct bw_err *err)
{
    memset(t, 0, sizeof *t);
    t->ttft_ns = -1;
    json_t *msgs = json_array();
    if (s->system)
        json_array_append_new(msgs, message("system", s->system));
    json_array_extend(msgs, s->messages);
    json_array_append_new(msgs, message("user", user));
    json_t *body = json_pack("{s:s, s:o, s:b}", "model", s->model, "messages", msgs, "stream", 1);
    if (json_object_size(s->options))
        json_object_set(body, "options", s->options);
    if (s->keep_alive)
        json_object_set(body, "keep_alive", s->keep_alive);
    if (s->json_format)
        json_object_set_new(body, "format", json_string("json"));
    if (s->think)
        json_object_set(body, "think", s->think);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return bw_errf(err, BW_ENOMEM, "out of memory");

    struct turn_ctx c = {.t = t, .t0 = clock_mono_ns()};
    c.view.color = isatty(STDOUT_FILENO);
    c.view.hide = s->hide_thinking;
    struct client_opts o = {.idle_timeout_ms = -1, .cancel = &run_interrupted};
    struct client_response res;
    int rc = client_request(s->url, "POST", "/api/chat", text, strlen(text), &o, on_line, &c, &res, err);
    free(text);
    fmt_thinking_close(&c.view, stdout); /* an answer that was all thinking, or stopped in it */
    if (rc == BW_OK && res.status != 200) {
        cli_reply_error(&res, err);
        rc = err ? err->code : BW_EIO;
    } else if (rc == BW_OK && c.failed) {
        rc = bw_errf(err, BW_EIO, "%s", c.err);
    } else if (rc == BW_OK && res.cancelled) {
        t->cancelled = true;
    } else if (rc == BW_OK && !t->final) {
        rc = bw_errf(err, BW_EIO, "the answer from %s ended before it was done", s->url);
    }
    client_response_fini(&res);
    if (rc != BW_OK) {
        run_turn_fini(t);
        return rc;
    }
    if (!t->content) {
        t->content = strdup("");
        if (!t->content) {
            run_turn_fini(t);
            return bw_errf(err, BW_ENOMEM, "out of memory");
        }
    }
    /* A stopped answer stays in the conversation when it said something; the question
     * alone would leave two user turns in a row. */
    if (!t->cancelled || t->len) {
        json_array_append_new(s->messages, message("user", user));
        json_t *answer = message("assistant", t->content);
        if (t->thinking_len) /* as Ollama's CLI keeps it: templates drop or keep old thinking */
            json_object_set_new(answer, "thinking", json_string(t->thinking));
        json_array_append_new(s->messages, answer);
    }
    return BW_OK;
}

int run_load_model(struct run_session *s, struct bw_err *err)
{
    json_t *body = json_pack("{s:s, s:[]}", "model", s->model, "messages");
    if (s->keep_alive)
        json_object_set(body, "keep_alive", s->keep_alive);
    if (s->think) /* a model that cannot think fails here, before the first prompt */
        json_object_set(body, "think", s->think);
    int rc = cli_api(s->url, "POST", "/api/chat", body, NULL, err);
    json_decref(body);
    return rc;
}

void run_infer_think(struct run_session *s)
{
    if (s->think_explicit)
        return;
    json_decref(s->think);
    s->think = NULL;
    json_t *body = json_pack("{s:s}", "model", s->model), *show = NULL;
    if (cli_api(s->url, "POST", "/api/show", body, &show, NULL) == BW_OK) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(show, "capabilities"), i, c) {
            if (json_string_value(c) && !strcmp(json_string_value(c), "thinking") && !s->think)
                s->think = json_true();
        }
    }
    json_decref(show);
    json_decref(body);
}

/* ---- statistics ------------------------------------------------------------------------------- */

static void rate(FILE *f, const char *label, int64_t count, int64_t ns)
{
    if (ns > 0)
        fprintf(f, "%-22s%.2f tokens/s\n", label, (double)count * 1e9 / (double)ns);
    else
        fprintf(f, "%-22s-\n", label);
}

void run_print_stats(const struct run_turn *t, FILE *f)
{
    const json_t *d = t->final;
    if (!d)
        return;
    char b[64];
    int64_t pec = cli_json_int(d, "prompt_eval_count", 0), cached = cli_json_int(d, "prompt_cache_tokens", 0);
    int64_t pe_ns = cli_json_int(d, "prompt_eval_duration", 0), ec = cli_json_int(d, "eval_count", 0);
    int64_t e_ns = cli_json_int(d, "eval_duration", 0);
    fmt_go_duration(cli_json_int(d, "total_duration", 0), b, sizeof b);
    fprintf(f, "%-22s%s\n", "total duration:", b);
    fmt_go_duration(cli_json_int(d, "load_duration", 0), b, sizeof b);
    fprintf(f, "%-22s%s\n", "load duration:", b);
    if (cached > 0)
        fprintf(f, "%-22s%lld token(s) (%lld reused from cache)\n", "prompt eval count:", (long long)pec,
                (long long)cached);
    else
        fprintf(f, "%-22s%lld token(s)\n", "prompt eval count:", (long long)pec);
    fmt_go_duration(pe_ns, b, sizeof b);
    fprintf(f, "%-22s%s\n", "prompt eval duration:", b);
    /* the duration covers the tokens actually evaluated, not the reused ones */
    rate(f, "prompt eval rate:", pec - cached, pe_ns);
    fprintf(f, "%-22s%lld token(s)\n", "eval count:", (long long)ec);
    fmt_go_duration(e_ns, b, sizeof b);
    fprintf(f, "%-22s%s\n", "eval duration:", b);
    rate(f, "eval rate:", ec, e_ns);
    if (t->ttft_ns >= 0) {
        fmt_go_duration(t->ttft_ns, b, sizeof b);
        fprintf(f, "%-22s%s\n", "time to first token:", b);
    } else {
        fprintf(f, "%-22s-\n", "time to first token:");
    }
    int64_t reserved = cli_json_int(d, "context_length", 0), max = cli_json_int(d, "context_max", 0);
    if (reserved > 0)
        fprintf(f, "%-22s%lld / %lld tokens (model maximum %lld)\n", "context:", (long long)(pec + ec),
                (long long)reserved, (long long)max);
    int64_t tm = cli_json_int(d, "truncated_messages", 0), tt = cli_json_int(d, "truncated_tokens", 0);
    if (tm > 0)
        fprintf(f, "%-22s%lld earlier message%s omitted to fit %lld tokens\n", "truncated:", (long long)tm,
                tm == 1 ? "" : "s", (long long)reserved);
    else if (tt > 0)
        fprintf(f, "%-22s%lld earlier token%s omitted to fit %lld tokens\n", "truncated:", (long long)tt,
                tt == 1 ? "" : "s", (long long)reserved);
    fflush(f);
}

/* ---- the command -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows run MODEL [PROMPT...] [flags]\n"
               "Chats with a model; with a prompt (or piped input), answers once and exits.\n\n"
               "Flags:\n"
               "  --verbose         show timings, token counts and the context after each answer\n"
               "  --keepalive D     how long the model stays loaded after the last request (5m, 1h, 0, -1)\n"
               "  --format json     answer with one JSON object (JSON mode)\n"
               "  --nowordwrap      print the answer as it comes (the default: Bellows does not wrap)\n"
               "  --think[=V]       thinking: true, false, or an effort (low, medium, high); the default is\n"
               "                    on for models whose template can think\n"
               "  --hidethinking    think (when on) but show only the answer\n"
               "  --insecure        allow plain HTTP when a missing model is pulled\n"
               "  -h, --help        this help\n\n"
               "Without a prompt, an interactive session starts; type /? there for its commands.\n"
               "A model that is not in the store is pulled first (as `bellows pull` does).\n"
               "When no server answers at BELLOWS_HOST, one is started in the background.\n");
}

static char *read_all(FILE *in)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    while (s) {
        size_t n = fread(s + len, 1, cap - len - 1, in);
        len += n;
        if (n == 0)
            break;
        if (cap - len < 2) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
            cap *= 2;
        }
    }
    if (s)
        s[len] = '\0';
    return s;
}

static json_t *keep_alive_json(const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*v && !*end && !errno)
        return json_real(x); /* a plain number is seconds */
    return json_string(v);
}

/* A model the store does not have is pulled first, as `ollama run` does. Any other error
 * of /api/show is left to the chat request to report. */
static int ensure_model(struct run_session *s, bool insecure, struct bw_err *err)
{
    json_t *body = json_pack("{s:s}", "model", s->model);
    struct bw_err e;
    int rc = cli_api(s->url, "POST", "/api/show", body, NULL, &e);
    json_decref(body);
    if (rc != BW_ENOTFOUND)
        return BW_OK;
    rc = cli_pull_model(s->url, s->model, insecure, err);
    if (rc == BW_OK || run_interrupted || !err)
        return rc;
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    if (rc == BW_ENOTFOUND)
        return bw_errf(err, rc, "model '%.80s' not found, here or in the registry (%.120s) — `bellows list` shows the installed ones",
                       s->model, why);
    return bw_errf(err, rc, "model '%.80s' not found — pulling it failed: %s", s->model, why);
}

static void session_fini(struct run_session *s)
{
    json_decref(s->messages);
    json_decref(s->options);
    json_decref(s->keep_alive);
    json_decref(s->think);
    free(s->system);
}

int cli_run(int argc, char **argv)
{
    struct run_session s = {.messages = json_array(), .options = json_object(), .wordwrap = true};
    const char *model = NULL;
    char *prompt = NULL;
    size_t prompt_len = 0;
    int status = 0;
    bool flags_done = false, insecure = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && a[0] == '-' && a[1]) {
            if (!strcmp(a, "--")) {
                flags_done = true;
            } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                usage(stdout);
                goto out;
            } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
                s.verbose = true;
            } else if (!strcmp(a, "--nowordwrap")) {
                s.wordwrap = false;
            } else if (!strcmp(a, "--keepalive") || !strncmp(a, "--keepalive=", 12)) {
                const char *v = a[11] == '=' ? a + 12 : i + 1 < argc ? argv[++i] : NULL;
                if (!v) {
                    status = cli_fail("--keepalive needs a duration (5m, 1h, 0, -1)");
                    goto out;
                }
                json_decref(s.keep_alive);
                s.keep_alive = keep_alive_json(v);
            } else if (!strcmp(a, "--insecure")) {
                insecure = true; /* for the pull of a missing model */
            } else if (!strcmp(a, "--format") || !strncmp(a, "--format=", 9)) {
                const char *v = a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
                if (!v || strcmp(v, "json") != 0) {
                    status = cli_fail("--format takes \"json\" (JSON mode)");
                    goto out;
                }
                s.json_format = true;
            } else if (!strcmp(a, "--think") || !strncmp(a, "--think=", 8)) {
                /* as Ollama's flag: a value only after '=' (`--think false` is a prompt word) */
                const char *v = fmt_think_value(a[7] == '=' ? a + 8 : "");
                if (!v) {
                    status = cli_fail("invalid value for --think: \"%s\" (must be true, false, high, medium or low)",
                                      a + 8);
                    goto out;
                }
                json_decref(s.think);
                s.think = !strcmp(v, "true") ? json_true() : !strcmp(v, "false") ? json_false() : json_string(v);
                s.think_explicit = true;
            } else if (!strcmp(a, "--hidethinking")) {
                s.hide_thinking = true;
            } else {
                fprintf(stderr, "bellows run: unknown flag %s\n", a);
                usage(stderr);
                status = 2;
                goto out;
            }
            continue;
        }
        if (!model) {
            model = a;
            continue;
        }
        size_t n = strlen(a);
        char *p = realloc(prompt, prompt_len + n + 2);
        if (!p) {
            status = cli_fail("out of memory");
            goto out;
        }
        prompt = p;
        if (prompt_len)
            prompt[prompt_len++] = ' ';
        memcpy(prompt + prompt_len, a, n + 1);
        prompt_len += n;
    }
    if (!model) {
        fprintf(stderr, "bellows run: which model? (`bellows list` shows the installed ones)\n");
        usage(stderr);
        status = 2;
        goto out;
    }
    snprintf(s.model, sizeof s.model, "%s", model);

    bool interactive = !prompt && isatty(0);
    if (!isatty(0)) {
        char *in = read_all(stdin);
        if (!in) {
            status = cli_fail("cannot read the standard input: %s", strerror(errno));
            goto out;
        }
        if (prompt) {
            char *joined;
            if (asprintf(&joined, "%s%s%s", in, *in ? " " : "", prompt) < 0) {
                free(in);
                status = cli_fail("out of memory");
                goto out;
            }
            free(in);
            free(prompt);
            prompt = joined;
        } else {
            prompt = in;
        }
    }

    struct bw_err err;
    if (cli_server(s.url, sizeof s.url, true, &err) != BW_OK) {
        status = cli_fail_err(&err, NULL);
        goto out;
    }
    run_install_sigint();
    if (ensure_model(&s, insecure, &err) != BW_OK) {
        status = run_interrupted ? (cli_fail_err(&err, NULL), 130) : cli_fail_err(&err, NULL);
        goto out;
    }
    run_infer_think(&s);
    if (interactive) {
        status = run_repl(&s);
        goto out;
    }
    if (!prompt || !*prompt) {
        status = cli_fail("nothing to send: give a prompt after the model name or pipe one in");
        goto out;
    }
    struct run_turn t;
    int rc = run_chat_turn(&s, prompt, &t, &err);
    if (rc) {
        status = cli_fail_err(&err, "`bellows list` shows the installed ones");
        goto out;
    }
    if (t.len && t.content[t.len - 1] != '\n')
        fputc('\n', stdout);
    fflush(stdout);
    if (t.cancelled) {
        status = 130;
    } else if (s.verbose) {
        fputc('\n', stderr);
        run_print_stats(&t, stderr);
    }
    run_turn_fini(&t);
out:
    free(prompt);
    session_fini(&s);
    return status;
}
