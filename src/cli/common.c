/* common.c -- see cli_int.h: the server connection, its auto-start, JSON calls, errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_int.h"
#include "util/clock.h"

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_fail_err(const struct bw_err *err, const char *hint)
{
    if (err->code == BW_ENOTFOUND && hint)
        return cli_fail("%s — %s", err->msg, hint);
    return cli_fail("%s", err->msg);
}

int64_t cli_json_int(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v) && fabs(json_real_value(v)) < 9e18) /* beyond int64_t the cast is undefined */
        return (int64_t)json_real_value(v);
    return dflt;
}

const char *cli_json_str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* ---- the state directory ---------------------------------------------------------------- */

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int cli_state_dir(char *buf, size_t len, struct bw_err *err)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/bellows", xdg);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.local/state/bellows", home);
    else
        return bw_errf(err, BW_EIO, "neither XDG_STATE_HOME nor HOME is set: no place for Bellows' state");
    if (n < 0 || (size_t)n >= len)
        return bw_errf(err, BW_EINVAL, "the state directory path is too long");
    if (mkdirs(buf) != 0)
        return bw_errf(err, BW_EIO, "cannot create %s: %s", buf, strerror(errno));
    return BW_OK;
}

/* ---- JSON calls ------------------------------------------------------------------------- */

void cli_reply_error(const struct client_response *res, struct bw_err *err)
{
    int code = res->status == 404 ? BW_ENOTFOUND
               : res->status == 400 ? BW_EINVAL
               : res->status == 503 ? BW_EBUSY
                                    : BW_EIO;
    json_t *doc = res->body ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    const json_t *e = json_object_get(doc, "error");
    if (json_is_object(e))
        e = json_object_get(e, "message"); /* the OpenAI shape */
    if (json_is_string(e))
        bw_errf(err, code, "%s", json_string_value(e));
    else if (res->body && res->body_len)
        bw_errf(err, code, "the server answered %d: %.200s", res->status, res->body);
    else
        bw_errf(err, code, "the server answered %d", res->status);
    json_decref(doc);
}

int cli_api(const char *url, const char *method, const char *path, json_t *body, json_t **out, struct bw_err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    struct client_response res;
    struct client_opts o = {.idle_timeout_ms = 600000}; /* loading a big model takes a while */
    int rc = client_request(url, method, path, text, text ? strlen(text) : 0, &o, NULL, NULL, &res, err);
    free(text);
    if (rc == BW_OK && (res.status < 200 || res.status >= 300)) {
        cli_reply_error(&res, err);
        rc = err ? err->code : BW_EIO;
    } else if (rc == BW_OK && out) {
        *out = NULL;
        if (res.body_len) {
            json_error_t je;
            *out = json_loadb(res.body, res.body_len, 0, &je);
            if (!*out)
                rc = bw_errf(err, BW_EIO, "the server's answer to %s is not JSON: %s", path, je.text);
        }
    }
    client_response_fini(&res);
    return rc;
}

/* ---- model names -------------------------------------------------------------------------- */

void cli_model_key(const char *name, char *buf, size_t len)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    snprintf(buf, len, "%s%s", name, strchr(base, ':') ? "" : ":latest");
}

bool cli_same_model(const char *a, const char *b)
{
    char ka[512], kb[512];
    cli_model_key(a, ka, sizeof ka);
    cli_model_key(b, kb, sizeof kb);
    return strcasecmp(ka, kb) == 0;
}

int cli_loaded_models(const char *url, json_t **out, struct bw_err *err)
{
    json_t *reply = NULL;
    int rc = cli_api(url, "GET", "/api/ps", NULL, &reply, err);
    if (rc)
        return rc;
    json_t *models = json_object_get(reply, "models");
    if (!json_is_array(models)) {
        json_decref(reply);
        return bw_errf(err, BW_EIO, "the server's /api/ps answer has no models list");
    }
    *out = json_incref(models);
    json_decref(reply);
    return BW_OK;
}

int cli_unload(const char *url, const char *model, bool *was_loaded, struct bw_err *err)
{
    json_t *models;
    *was_loaded = false;
    int rc = cli_loaded_models(url, &models, err);
    if (rc)
        return rc;
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        if (cli_same_model(cli_json_str(m, "name", ""), model))
            *was_loaded = true;
    }
    json_decref(models);
    if (!*was_loaded)
        return BW_OK;
    json_t *body = json_pack("{s:s, s:i}", "model", model, "keep_alive", 0);
    rc = cli_api(url, "POST", "/api/generate", body, NULL, err);
    json_decref(body);
    return rc;
}

/* ---- finding and starting the server ------------------------------------------------------ */

/* BW_OK when /health answers 200; BW_ENOTFOUND when nothing listens; else the failure. */
static int probe(const char *url, int timeout_ms, struct bw_err *err)
{
    struct client_response res;
    struct client_opts o = {.connect_timeout_ms = timeout_ms, .idle_timeout_ms = timeout_ms};
    int rc = client_request(url, "GET", "/health", NULL, 0, &o, NULL, NULL, &res, err);
    if (rc == BW_OK && res.status != 200) {
        if (res.status == 401 || res.status == 403)
            rc = bw_errf(err, BW_EIO, "the server at %s refused the CLI (%d): set BELLOWS_API_KEY or check the "
                                      "Host it expects", url, res.status);
        else
            rc = bw_errf(err, BW_EIO, "something at %s answers /health with %d: is it a Bellows server?", url,
                         res.status);
    }
    client_response_fini(&res);
    return rc;
}

static bool is_local(const char *url)
{
    char host[256];
    int port;
    if (client_parse_url(url, host, sizeof host, &port, NULL) != BW_OK)
        return false;
    return !strncmp(host, "127.", 4) || !strcasecmp(host, "localhost") || !strcmp(host, "::1") ||
           !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

/* The last few lines of the log, for a server that died at once. */
static void print_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[2048];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "--- the end of %s ---\n%s%s", path, buf, n && buf[n - 1] != '\n' ? "\n" : "");
}

static int start_server(const char *url, struct bw_err *err)
{
    char dir[PATH_MAX], log[PATH_MAX + 16], exe[PATH_MAX];
    int rc = cli_state_dir(dir, sizeof dir, err);
    if (rc)
        return rc;
    snprintf(log, sizeof log, "%s/serve.log", dir);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return bw_errf(err, BW_EIO, "cannot find the bellows binary to start a server: %s", strerror(errno));
    exe[n] = '\0';
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return bw_errf(err, BW_EIO, "cannot open %s: %s", log, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return bw_errf(err, BW_EIO, "cannot start a server: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* its own session: it outlives this command and ignores the terminal's Ctrl-C */
        setsid();
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execl(exe, "bellows", "serve", (char *)NULL);
        dprintf(2, "bellows: cannot run %s serve: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(fd);
    fprintf(stderr, "Started a Bellows server in the background (pid %d, log: %s)\n", (int)pid, log);
    int64_t deadline = clock_mono_ms() + 30000;
    while (clock_mono_ms() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            print_log_tail(log);
            return bw_errf(err, BW_EIO, "the server exited at once (status %d): see %s", WIFEXITED(status) ?
                           WEXITSTATUS(status) : 128 + WTERMSIG(status), log);
        }
        struct bw_err perr;
        if (probe(url, 1000, &perr) == BW_OK)
            return BW_OK;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    return bw_errf(err, BW_EIO, "the server started in the background (pid %d) did not answer within 30 s: see %s",
                   (int)pid, log);
}

int cli_server(char *url, size_t len, bool autostart, struct bw_err *err)
{
    cli_server_url(url, len);
    struct bw_err perr;
    int rc = probe(url, 3000, &perr);
    if (rc == BW_OK)
        return BW_OK;
    if (rc != BW_ENOTFOUND) {
        if (err)
            *err = perr;
        return rc;
    }
    const char *no = getenv("BELLOWS_NO_AUTOSTART");
    if (!autostart || (no && *no && strcmp(no, "0") != 0) || !is_local(url))
        return bw_errf(err, BW_EIO, "no Bellows server answers at %s — start one with `bellows serve` (or set "
                                          "BELLOWS_HOST)", url);
    return start_server(url, err);
}
