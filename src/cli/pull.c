/* pull.c -- `bellows pull [--insecure] NAME`, and the pull `bellows run` makes of a model
 * that is not in the store (as `ollama run` does): /api/pull streamed, shown by
 * progress.h (bars on a terminal, plain lines otherwise), on stderr. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "cli/progress.h"
#include "util/clock.h"

static int on_line(void *ud, char *line, size_t len)
{
    struct cli_pull_view *v = ud;
    json_t *o = json_loadb(line, len, 0, NULL);
    if (o)
        cli_pull_view_feed(v, cli_json_str(o, "status", NULL), cli_json_str(o, "digest", NULL),
                           cli_json_int(o, "total", 0), cli_json_int(o, "completed", 0),
                           cli_json_str(o, "error", NULL), clock_mono_ns(), stderr);
    json_decref(o);
    return 0;
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
}

int cli_pull_model(const char *url, const char *name, bool insecure, struct bw_err *err)
{
    json_t *body = json_pack("{s:s, s:b, s:b}", "model", name, "insecure", insecure, "stream", 1);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    struct cli_pull_view v = {.tty = isatty(2), .width = term_width()};
    /* A stalled download sends nothing for a while; Ctrl-C stops the pull (the server
     * cancels it once nobody waits, and keeps the bytes for the next pull). */
    struct client_opts o = {.idle_timeout_ms = 600000, .cancel = &run_interrupted};
    struct client_response res;
    int rc = client_request(url, "POST", "/api/pull", text, strlen(text), &o, on_line, &v, &res, err);
    free(text);
    cli_pull_view_end(&v, stderr);
    if (rc == BW_OK && res.status != 200) {
        cli_reply_error(&res, err);
        rc = err ? err->code : BW_EIO;
    } else if (rc == BW_OK && res.cancelled) {
        rc = bw_errf(err, BW_EIO, "pull interrupted: run it again to resume");
    } else if (rc == BW_OK && v.error[0]) {
        rc = bw_errf(err, BW_EIO, "%s", v.error);
    } else if (rc == BW_OK && !v.success) {
        rc = bw_errf(err, BW_EIO, "the server stopped before it said 'success': see its log");
    }
    client_response_fini(&res);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bellows pull [--insecure] MODEL\n"
               "Downloads MODEL from a registry into the store, as `ollama pull` does:\n"
               "  llama3.2, llama3.2:1b, library/qwen2.5:0.5b   Ollama's registry (registry.ollama.ai)\n"
               "  hf.co/USER/REPO[:QUANT]                       Hugging Face (a GGUF repository)\n"
               "  HOST[:PORT]/NAMESPACE/MODEL[:TAG]             another registry\n"
               "An interrupted pull resumes where it stopped when run again.\n\n"
               "Flags:\n"
               "  --insecure   allow plain HTTP (a registry on your own network)\n"
               "  -h, --help   this help\n");
}

int cli_pull(int argc, char **argv)
{
    const char *name = NULL;
    bool insecure = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--insecure")) {
            insecure = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bellows pull: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        } else if (!name) {
            name = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!name) {
        usage(stderr);
        return 2;
    }
    char url[CLI_URL_MAX];
    struct bw_err err;
    if (cli_server(url, sizeof url, true, &err) != BW_OK)
        return cli_fail_err(&err, NULL);
    run_install_sigint();
    if (cli_pull_model(url, name, insecure, &err) != BW_OK)
        return run_interrupted ? (cli_fail_err(&err, NULL), 130) : cli_fail_err(&err, NULL);
    return 0;
}
