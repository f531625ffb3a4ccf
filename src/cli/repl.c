/* repl.c -- the interactive session of `bellows run MODEL`, on libedit (histedit.h).
 *
 * Like Ollama's: ">>> " prompt, "..." for continuation lines, `"""` around multi-line
 * input, slash commands (/set, /show, /load, /clear, /bye, /?), persistent history in the
 * state directory (BELLOWS_NOHISTORY=1 turns it off).
 *
 * Ctrl-C: at the prompt, the terminal's signal keys are off while libedit edits (setty
 * -isig), so ^C arrives as a key bound to `interrupt`: the line is dropped and a hint
 * printed. During an answer the terminal is back in its normal mode, so ^C is a SIGINT:
 * run.c's handler sets run_interrupted, the client closes the connection (the server
 * cancels the request) and the session goes on. Ctrl-D on an empty line leaves. */
#define _GNU_SOURCE
#include <histedit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli_int.h"
#include "cli/format.h"
#include "cli/modelfile.h"

struct repl {
    struct run_session *s;
    EditLine *el;
    History *hist;
    HistEvent ev;
    char hist_path[PATH_MAX];
    bool use_history;
    bool continuation; /* the prompt shows "... " */
    bool interrupted;  /* ^C at the prompt */
};

static char *prompt_fn(EditLine *el)
{
    struct repl *r;
    el_get(el, EL_CLIENTDATA, &r);
    return r->continuation ? "... " : ">>> ";
}

static unsigned char interrupt_fn(EditLine *el, int ch)
{
    (void)ch;
    struct repl *r;
    el_get(el, EL_CLIENTDATA, &r);
    r->interrupted = true;
    return CC_EOF;
}

/* One physical line, without its newline, in a malloc'd buffer. NULL at Ctrl-D; with
 * r->interrupted set at Ctrl-C. */
static char *read_line(struct repl *r)
{
    int n = 0;
    r->interrupted = false;
    const char *l = el_gets(r->el, &n);
    if (!l || n <= 0)
        return NULL;
    char *line = strndup(l, (size_t)n);
    if (!line)
        return NULL;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (r->use_history && *line) {
        history(r->hist, &r->ev, H_ENTER, line);
        history(r->hist, &r->ev, H_SAVE, r->hist_path);
    }
    return line;
}

/* Text that began with `"""` on the first line (first = what followed it): reads lines
 * until one ends with `"""`. Returns the joined text (malloc'd), or NULL at Ctrl-C/Ctrl-D
 * (*eof set at Ctrl-D). */
static char *read_multiline(struct repl *r, const char *first, bool *eof)
{
    size_t cap = strlen(first) + 256, len = 0;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    text[0] = '\0';
    const char *line = first;
    char *owned = NULL;
    *eof = false;
    for (;;) {
        size_t n = strlen(line);
        bool closing = n >= 3 && !strcmp(line + n - 3, "\"\"\"");
        if (closing)
            n -= 3;
        if (len + n + 2 > cap) {
            cap = (len + n + 2) * 2;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                free(owned);
                return NULL;
            }
            text = t;
        }
        memcpy(text + len, line, n);
        len += n;
        text[len] = '\0';
        free(owned);
        owned = NULL;
        if (closing)
            break;
        text[len++] = '\n';
        text[len] = '\0';
        r->continuation = true;
        owned = read_line(r);
        r->continuation = false;
        if (!owned) {
            *eof = !r->interrupted;
            if (r->interrupted)
                fputs("\n", stdout);
            free(text);
            return NULL;
        }
        line = owned;
    }
    return text;
}

/* ---- commands ---------------------------------------------------------------------------- */

static void help(void)
{
    printf("Available Commands:\n"
           "  /set            Set session variables\n"
           "  /show           Show model information\n"
           "  /load <model>   Load a different model (starts a new conversation)\n"
           "  /clear          Clear session context\n"
           "  /bye            Exit\n"
           "  /?, /help       Help for a command\n"
           "  /? shortcuts    Help for keyboard shortcuts\n\n"
           "Use \"\"\" to begin a multi-line message.\n\n");
}

static void help_set(void)
{
    printf("Available Commands:\n"
           "  /set parameter ...     Set a parameter\n"
           "  /set system <string>   Set system message\n"
           "  /set history           Enable history\n"
           "  /set nohistory         Disable history\n"
           "  /set wordwrap          Enable wordwrap\n"
           "  /set nowordwrap        Disable wordwrap\n"
           "  /set verbose           Show LLM stats\n"
           "  /set quiet             Disable LLM stats\n"
           "  /set think [LEVEL]     Enable thinking (LEVEL: low, medium, high)\n"
           "  /set nothink           Disable thinking\n\n");
}

static void help_parameters(void)
{
    printf("Available Parameters:\n"
           "  /set parameter seed <int>             Random number seed\n"
           "  /set parameter num_predict <int>      Max number of tokens to predict\n"
           "  /set parameter top_k <int>            Pick from top k num of tokens\n"
           "  /set parameter top_p <float>          Pick token based on sum of probabilities\n"
           "  /set parameter min_p <float>          Pick token based on top token probability * min_p\n"
           "  /set parameter num_ctx <int>          Accepted; Bellows sizes the context itself\n"
           "  /set parameter temperature <float>    Set creativity level\n"
           "  /set parameter repeat_penalty <float> How strongly to penalize repetitions\n"
           "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n"
           "  /set parameter num_keep <int>         Tokens kept from the start when the context is cut\n"
           "  /set parameter stop <string> ...      Set the stop parameters (each adds to the list)\n\n");
}

static void help_shortcuts(void)
{
    printf("Available keyboard shortcuts:\n"
           "  Ctrl + a            Move to the beginning of the line (Home)\n"
           "  Ctrl + e            Move to the end of the line (End)\n"
           "  Alt + b             Move back (left) one word\n"
           "  Alt + f             Move forward (right) one word\n"
           "  Ctrl + k            Delete the sentence after the cursor\n"
           "  Ctrl + u            Delete the sentence before the cursor\n"
           "  Ctrl + w            Delete the word before the cursor\n\n"
           "  Ctrl + l            Clear the screen\n"
           "  Ctrl + c            Stop the model from responding\n"
           "  Ctrl + d            Exit bellows (/bye)\n\n");
}

static void help_show(void)
{
    printf("Available Commands:\n"
           "  /show info         Show details for this model\n"
           "  /show license      Show model license\n"
           "  /show modelfile    Show Modelfile for this model\n"
           "  /show parameters   Show parameters for this model\n"
           "  /show system       Show system message\n"
           "  /show template     Show prompt template\n\n");
}

/* Splits line into at most max words (in place); returns the count. The last word keeps
 * the rest of the line when rest is true. */
static int split(char *line, char **words, int max, bool rest)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        words[n++] = p;
        if (rest && n == max)
            break;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

static int show_cmd(struct repl *r, const char *what)
{
    struct run_session *s = r->s;
    json_t *body = json_pack("{s:s}", "model", s->model), *show = NULL;
    struct bw_err err;
    int rc = cli_api(s->url, "POST", "/api/show", body, &show, &err);
    json_decref(body);
    if (rc) {
        cli_fail_err(&err, NULL);
        return 0;
    }
    if (!strcmp(what, "info")) {
        cli_show_summary(show, stdout);
    } else if (!strcmp(what, "license")) {
        const char *l = cli_json_str(show, "license", "");
        printf("%s\n", *l ? l : "No license was specified for this model.");
    } else if (!strcmp(what, "modelfile")) {
        printf("%s\n", cli_json_str(show, "modelfile", ""));
    } else if (!strcmp(what, "parameters")) {
        const char *p = cli_json_str(show, "parameters", "");
        printf("Model defined parameters:\n%s", *p ? p : "No parameters were specified for this model.\n");
        if (json_object_size(s->options)) {
            printf("\nUser defined parameters:\n");
            const char *k;
            json_t *v;
            json_object_foreach(s->options, k, v) {
                char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                printf("%-30s %s\n", k, t ? t : "");
                free(t);
            }
        }
        printf("\n");
    } else if (!strcmp(what, "system")) {
        const char *sys = s->system ? s->system : cli_json_str(show, "system", "");
        printf("%s\n\n", *sys ? sys : "No system message was specified for this model.");
    } else if (!strcmp(what, "template")) {
        const char *t = cli_json_str(show, "template", "");
        printf("%s\n\n", *t ? t : "No prompt template was specified for this model.");
    } else {
        printf("Unknown command '/show %s'. Type /? for help\n", what);
    }
    json_decref(show);
    return 0;
}

static void set_parameter(struct repl *r, char *args)
{
    char *w[2];
    int n = split(args, w, 2, true);
    if (n < 2) {
        help_parameters();
        return;
    }
    struct bw_err err;
    if (!strcmp(w[0], "stop")) {
        /* every word is a stop string: /set parameter stop a b c */
        char *words[32];
        int k = split(w[1], words, 32, false);
        for (int i = 0; i < k; i++)
            if (modelfile_param_set(r->s->options, "stop", words[i], &err) != BW_OK) {
                cli_fail("%s", err.msg);
                return;
            }
        char *t = json_dumps(json_object_get(r->s->options, "stop"), JSON_ENCODE_ANY | JSON_COMPACT);
        printf("Set parameter 'stop' to '%s'\n", t ? t : "");
        free(t);
        return;
    }
    if (modelfile_param_set(r->s->options, w[0], w[1], &err) != BW_OK) {
        cli_fail("%s", err.msg);
        return;
    }
    printf("Set parameter '%s' to '%s'\n", w[0], w[1]);
}

static void set_system(struct repl *r, const char *text)
{
    bool eof;
    char *sys;
    if (!strncmp(text, "\"\"\"", 3))
        sys = read_multiline(r, text + 3, &eof);
    else
        sys = strdup(text);
    if (!sys)
        return;
    size_t n = strlen(sys);
    if (n >= 2 && sys[0] == '"' && sys[n - 1] == '"') {
        memmove(sys, sys + 1, n - 2);
        sys[n - 2] = '\0';
    }
    free(r->s->system);
    r->s->system = sys;
    printf("Set system message.\n");
}

/* As Ollama's CLI: a warning, not an error, when the model cannot think (the next
 * request says so with the server's 400). */
static void warn_no_thinking(struct run_session *s)
{
    json_t *body = json_pack("{s:s}", "model", s->model), *show = NULL;
    if (cli_api(s->url, "POST", "/api/show", body, &show, NULL) == BW_OK) {
        bool thinks = false;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(show, "capabilities"), i, c) {
            thinks |= json_string_value(c) && !strcmp(json_string_value(c), "thinking");
        }
        if (!thinks)
            fprintf(stderr, "warning: model \"%s\" does not support thinking output\n", s->model);
    }
    json_decref(show);
    json_decref(body);
}

/* /set think [LEVEL], /set nothink */
static void set_think(struct repl *r, bool on, const char *level)
{
    struct run_session *s = r->s;
    const char *v = on ? fmt_think_value(level) : "false";
    if (v && !strcmp(v, "false"))
        on = false; /* /set think false */
    if (!v) {
        printf("Unknown thinking level '%s': use /set think, /set think low|medium|high, or /set nothink\n", level);
        return;
    }
    json_decref(s->think);
    s->think = !strcmp(v, "true") ? json_true() : !strcmp(v, "false") ? json_false() : json_string(v);
    s->think_explicit = true;
    warn_no_thinking(s);
    if (!on)
        printf("Set 'nothink' mode.\n");
    else if (*level)
        printf("Set 'think' mode to '%s'.\n", v);
    else
        printf("Set 'think' mode.\n");
}

static void set_cmd(struct repl *r, char *args)
{
    char *w[2];
    int n = split(args, w, 2, true);
    if (n == 0) {
        help_set();
        return;
    }
    if (!strcmp(w[0], "parameter")) {
        set_parameter(r, n > 1 ? w[1] : (char *)"");
    } else if (!strcmp(w[0], "system")) {
        if (n < 2)
            printf("Usage: /set system <message> or /set system \"\"\"<message>\"\"\"\n");
        else
            set_system(r, w[1]);
    } else if (!strcmp(w[0], "verbose")) {
        r->s->verbose = true;
        printf("Set 'verbose' mode.\n");
    } else if (!strcmp(w[0], "quiet")) {
        r->s->verbose = false;
        printf("Set 'quiet' mode.\n");
    } else if (!strcmp(w[0], "wordwrap")) {
        r->s->wordwrap = true;
        printf("Set 'wordwrap' mode.\n");
    } else if (!strcmp(w[0], "nowordwrap")) {
        r->s->wordwrap = false;
        printf("Set 'nowordwrap' mode.\n");
    } else if (!strcmp(w[0], "history")) {
        r->use_history = r->hist_path[0] != '\0';
        printf("Set 'history' mode.\n");
    } else if (!strcmp(w[0], "nohistory")) {
        r->use_history = false;
        printf("Set 'nohistory' mode.\n");
    } else if (!strcmp(w[0], "think")) {
        set_think(r, true, n > 1 ? w[1] : "");
    } else if (!strcmp(w[0], "nothink")) {
        set_think(r, false, "");
    } else {
        printf("Unknown command '/set %s'. Type /? for help\n", w[0]);
    }
}

/* Returns true when the session should end. */
static bool command(struct repl *r, char *line)
{
    char *w[2];
    int n = split(line, w, 2, true);
    const char *cmd = w[0];
    char *rest = n > 1 ? w[1] : (char *)"";
    if (!strcmp(cmd, "/bye") || !strcmp(cmd, "/exit"))
        return true;
    if (!strcmp(cmd, "/?") || !strcmp(cmd, "/help")) {
        if (!strcmp(rest, "shortcuts") || !strcmp(rest, "shortcut"))
            help_shortcuts();
        else if (!strcmp(rest, "set") || !strcmp(rest, "/set"))
            help_set();
        else if (!strcmp(rest, "show") || !strcmp(rest, "/show"))
            help_show();
        else
            help();
    } else if (!strcmp(cmd, "/set")) {
        set_cmd(r, rest);
    } else if (!strcmp(cmd, "/show")) {
        if (!*rest)
            help_show();
        else
            show_cmd(r, rest);
    } else if (!strcmp(cmd, "/clear")) {
        json_array_clear(r->s->messages);
        printf("Cleared session context\n");
    } else if (!strcmp(cmd, "/load")) {
        if (!*rest) {
            printf("Usage:\n  /load <modelname>\n");
            return false;
        }
        char old[sizeof r->s->model];
        snprintf(old, sizeof old, "%s", r->s->model);
        snprintf(r->s->model, sizeof r->s->model, "%s", rest);
        printf("Loading model '%s'\n", rest);
        struct bw_err err;
        run_interrupted = 0;
        json_t *think = json_incref(r->s->think);
        run_infer_think(r->s); /* the new model's default, unless think was set by the user */
        if (run_load_model(r->s, &err) != BW_OK) {
            cli_fail_err(&err, "`bellows list` shows the installed ones");
            snprintf(r->s->model, sizeof r->s->model, "%s", old);
            json_decref(r->s->think);
            r->s->think = think;
        } else {
            json_array_clear(r->s->messages);
            json_decref(think);
        }
    } else {
        printf("Unknown command '%s'. Type /? for help\n", cmd);
    }
    return false;
}

/* ---- the loop ------------------------------------------------------------------------------- */

static void chat(struct repl *r, const char *text)
{
    struct run_turn t;
    struct bw_err err;
    run_interrupted = 0;
    int rc = run_chat_turn(r->s, text, &t, &err);
    if (rc) {
        cli_fail_err(&err, "`bellows list` shows the installed ones");
        return;
    }
    if (t.len && t.content[t.len - 1] != '\n')
        fputc('\n', stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (!t.cancelled && r->s->verbose)
        run_print_stats(&t, stderr);
    run_turn_fini(&t);
    run_interrupted = 0;
}

static void setup_history(struct repl *r)
{
    struct bw_err err;
    char dir[PATH_MAX - 16];
    const char *no = getenv("BELLOWS_NOHISTORY");
    r->hist = history_init();
    if (!r->hist)
        return;
    history(r->hist, &r->ev, H_SETSIZE, 1000);
    history(r->hist, &r->ev, H_SETUNIQUE, 1);
    el_set(r->el, EL_HIST, history, r->hist);
    if (cli_state_dir(dir, sizeof dir, &err) != BW_OK)
        return;
    snprintf(r->hist_path, sizeof r->hist_path, "%s/history", dir);
    r->use_history = !(no && *no && strcmp(no, "0") != 0);
    if (r->use_history)
        history(r->hist, &r->ev, H_LOAD, r->hist_path);
}

int run_repl(struct run_session *s)
{
    struct bw_err err;
    run_interrupted = 0;
    if (run_load_model(s, &err) != BW_OK) {
        if (run_interrupted)
            return 130;
        return cli_fail_err(&err, "`bellows list` shows the installed ones");
    }
    struct repl r = {.s = s};
    r.el = el_init("bellows", stdin, stdout, stderr);
    if (!r.el)
        return cli_fail("cannot set up line editing on this terminal");
    el_set(r.el, EL_CLIENTDATA, &r);
    el_set(r.el, EL_EDITOR, "emacs");
    el_set(r.el, EL_PROMPT, prompt_fn);
    el_set(r.el, EL_SIGNAL, 1);
    el_set(r.el, EL_ADDFN, "bellows-interrupt", "Drop the line (Ctrl-C)", interrupt_fn);
    el_set(r.el, EL_BIND, "^C", "bellows-interrupt", NULL);
    el_set(r.el, EL_SETTY, "-d", "-isig", NULL);
    setup_history(&r);
    el_source(r.el, NULL); /* ~/.editrc, as other libedit programs */

    int status = 0;
    for (;;) {
        char *line = read_line(&r);
        if (!line) {
            if (r.interrupted) {
                printf("\nUse Ctrl + d or /bye to exit.\n\n");
                continue;
            }
            printf("\n");
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) {
            free(line);
            continue;
        }
        if (!strncmp(p, "\"\"\"", 3)) {
            bool eof;
            char *text = read_multiline(&r, p + 3, &eof);
            free(line);
            if (!text) {
                if (eof) {
                    printf("\n");
                    break;
                }
                continue;
            }
            chat(&r, text);
            free(text);
            continue;
        }
        if (p[0] == '/') {
            /* "/set system \"\"\"..." reads more lines inside */
            bool bye = command(&r, p);
            free(line);
            if (bye)
                break;
            continue;
        }
        chat(&r, p);
        free(line);
    }
    if (r.hist)
        history_end(r.hist);
    el_end(r.el);
    return status;
}
