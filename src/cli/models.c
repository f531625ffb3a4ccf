/* models.c -- `bellows list`, `ps`, `show`, `create`, `rm`, `cp`, `stop`: model management
 * through the server's API, printed the way Ollama prints it. `ps` adds what Bellows
 * does differently: the CONTEXT column (tokens in use / the elastic pool's size) and the
 * runner's pid. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/clock.h"
#include "cli/cli_int.h"
#include "cli/format.h"
#include "cli/modelfile.h"
#include "version.h"

#define HINT_LIST "`bellows list` shows the installed ones"
#define HINT_PS "`bellows ps` shows the loaded ones"

static bool help_flag(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return true;
        }
    return false;
}

/* Connects (starting a server when allowed); prints the error and returns false. */
static bool connect_server(char *url, bool autostart, int *status)
{
    struct bw_err err;
    if (cli_server(url, CLI_URL_MAX, autostart, &err) == BW_OK)
        return true;
    *status = cli_fail_err(&err, NULL);
    return false;
}

static void short_id(const char *digest, char *buf, size_t len)
{
    if (!strncmp(digest, "sha256:", 7))
        digest += 7;
    snprintf(buf, len, "%.12s", digest);
}

/* ---- list ---------------------------------------------------------------------------------- */

int cli_list(int argc, char **argv)
{
    if (help_flag(argc, argv, "usage: bellows list\nLists the models in the store: NAME ID SIZE MODIFIED.\n"))
        return 0;
    if (argc > 1) {
        fprintf(stderr, "usage: bellows list\n");
        return 2;
    }
    char url[CLI_URL_MAX];
    int status = 0;
    if (!connect_server(url, true, &status))
        return status;
    json_t *reply = NULL;
    struct bw_err err;
    if (cli_api(url, "GET", "/api/tags", NULL, &reply, &err) != BW_OK)
        return cli_fail_err(&err, NULL);
    json_t *models = json_object_get(reply, "models");
    size_t n = json_array_size(models);
    struct cli_table *t = calloc(1, sizeof *t);
    char(*cells)[3][64] = calloc(n ? n : 1, sizeof *cells);
    if (!t || !cells) {
        free(t);
        free(cells);
        json_decref(reply);
        return cli_fail("out of memory");
    }
    t->n_cols = 4;
    t->n_rows = 1;
    const char *head[] = {"NAME", "ID", "SIZE", "MODIFIED"};
    memcpy(t->cells[0], head, sizeof head);
    int64_t now = clock_real_ns();
    for (size_t i = 0; i < n && t->n_rows < CLI_TABLE_MAX_ROWS; i++) {
        const json_t *m = json_array_get(models, i);
        int64_t when = 0;
        short_id(cli_json_str(m, "digest", ""), cells[i][0], sizeof cells[i][0]);
        fmt_bytes(cli_json_int(m, "size", 0), cells[i][1], sizeof cells[i][1]);
        if (fmt_parse_rfc3339(cli_json_str(m, "modified_at", ""), &when) == 0)
            fmt_human_time(when, now, cells[i][2], sizeof cells[i][2]);
        const char **row = t->cells[t->n_rows++];
        row[0] = cli_json_str(m, "name", "?");
        row[1] = cells[i][0];
        row[2] = cells[i][1];
        row[3] = cells[i][2];
    }
    cli_table_print(t, stdout);
    free(t);
    free(cells);
    json_decref(reply);
    return 0;
}

/* ---- ps ------------------------------------------------------------------------------------ */

/* PROCESSOR from /api/ps "devices" (layers per device): "100% CPU", "25%/75% CPU/GPU",
 * "9%/91% CPU/RPC" (layers on RPC servers), or all three. False without that field. */
static bool processor_from_devices(const json_t *devices, char *buf, size_t len)
{
    int cpu = 0, gpu = 0, rpc = 0;
    size_t i;
    const json_t *d;
    if (!json_is_array(devices) || json_array_size(devices) == 0)
        return false;
    json_array_foreach(devices, i, d) {
        int layers = (int)cli_json_int(d, "layers", 0);
        if (!strcmp(cli_json_str(d, "name", ""), "CPU"))
            cpu += layers;
        else if (json_object_get(d, "endpoint"))
            rpc += layers;
        else
            gpu += layers;
    }
    int total = cpu + gpu + rpc;
    if (total <= 0 || cpu == total) {
        snprintf(buf, len, "100%% CPU");
        return true;
    }
    int pg = gpu * 100 / total, pr = rpc * 100 / total, pc = 100 - pg - pr;
    if (gpu && rpc)
        snprintf(buf, len, "%d%%/%d%%/%d%% CPU/GPU/RPC", pc, pg, pr);
    else if (cpu == 0)
        snprintf(buf, len, "100%% %s", gpu ? "GPU" : "RPC");
    else
        snprintf(buf, len, "%d%%/%d%% CPU/%s", pc, gpu ? pg : pr, gpu ? "GPU" : "RPC");
    return true;
}

int cli_ps(int argc, char **argv)
{
    if (help_flag(argc, argv,
                  "usage: bellows ps\nLists the loaded models: NAME ID SIZE PROCESSOR CONTEXT PID UNTIL.\n"
                  "CONTEXT is the tokens in use / the size of the model's KV pool, which grows and shrinks\n"
                  "with the requests; PID is the model's runner process.\n"))
        return 0;
    if (argc > 1) {
        fprintf(stderr, "usage: bellows ps\n");
        return 2;
    }
    char url[CLI_URL_MAX];
    int status = 0;
    /* no server means nothing is loaded: do not start one to say so */
    if (!connect_server(url, false, &status))
        return status;
    json_t *models;
    struct bw_err err;
    if (cli_loaded_models(url, &models, &err) != BW_OK)
        return cli_fail_err(&err, NULL);
    size_t n = json_array_size(models);
    struct cli_table *t = calloc(1, sizeof *t);
    char(*cells)[6][64] = calloc(n ? n : 1, sizeof *cells);
    if (!t || !cells) {
        free(t);
        free(cells);
        json_decref(models);
        return cli_fail("out of memory");
    }
    t->n_cols = 7;
    t->n_rows = 1;
    const char *head[] = {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "PID", "UNTIL"};
    memcpy(t->cells[0], head, sizeof head);
    int64_t now = clock_real_ns();
    for (size_t i = 0; i < n && t->n_rows < CLI_TABLE_MAX_ROWS; i++) {
        const json_t *m = json_array_get(models, i), *ctx = json_object_get(m, "context");
        int64_t size = cli_json_int(m, "size", 0), vram = cli_json_int(m, "size_vram", 0), until = 0;
        short_id(cli_json_str(m, "digest", ""), cells[i][0], sizeof cells[i][0]);
        fmt_bytes(size, cells[i][1], sizeof cells[i][1]);
        if (processor_from_devices(json_object_get(m, "devices"), cells[i][2], sizeof cells[i][2]))
            ;
        else if (vram <= 0 || size <= 0)
            snprintf(cells[i][2], sizeof cells[i][2], "100%% CPU");
        else if (vram >= size)
            snprintf(cells[i][2], sizeof cells[i][2], "100%% GPU");
        else {
            int gpu = (int)(vram * 100 / size);
            snprintf(cells[i][2], sizeof cells[i][2], "%d%%/%d%% CPU/GPU", 100 - gpu, gpu);
        }
        snprintf(cells[i][3], sizeof cells[i][3], "%lld/%lld", (long long)cli_json_int(ctx, "used_tokens", 0),
                 (long long)cli_json_int(ctx, "pool_tokens", 0));
        snprintf(cells[i][4], sizeof cells[i][4], "%lld", (long long)cli_json_int(m, "runner_pid", 0));
        if (fmt_parse_rfc3339(cli_json_str(m, "expires_at", ""), &until) == 0) {
            if (until <= now)
                snprintf(cells[i][5], sizeof cells[i][5], "Stopping...");
            else
                fmt_human_time(until, now, cells[i][5], sizeof cells[i][5]);
        }
        const char **row = t->cells[t->n_rows++];
        row[0] = cli_json_str(m, "name", "?");
        for (int k = 0; k < 6; k++)
            row[k + 1] = cells[i][k];
    }
    cli_table_print(t, stdout);
    free(t);
    free(cells);
    json_decref(models);
    return 0;
}

/* ---- show ---------------------------------------------------------------------------------- */

/* The lines of text, each indented. */
static void indented(FILE *f, const char *text, const char *indent)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "%s%.*s\n", indent, (int)n, p);
        p = nl ? nl + 1 : p + n;
    }
}

void cli_show_summary(const json_t *show, FILE *f)
{
    const json_t *info = json_object_get(show, "model_info"), *details = json_object_get(show, "details");
    const char *arch = cli_json_str(info, "general.architecture", cli_json_str(details, "family", ""));
    char key[160];
    char ctx[32] = "", emb[32] = "";
    snprintf(key, sizeof key, "%s.context_length", arch);
    int64_t n_ctx = cli_json_int(info, key, cli_json_int(show, "context_max", 0));
    if (n_ctx > 0)
        snprintf(ctx, sizeof ctx, "%lld", (long long)n_ctx);
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    int64_t n_emb = cli_json_int(info, key, 0);
    if (n_emb > 0)
        snprintf(emb, sizeof emb, "%lld", (long long)n_emb);
    const char *rows[][2] = {
        {"architecture", arch},
        {"parameters", cli_json_str(details, "parameter_size", "")},
        {"context length", ctx},
        {"embedding length", emb},
        {"quantization", cli_json_str(details, "quantization_level", "")},
    };
    fprintf(f, "  Model\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (*rows[i][1])
            fprintf(f, "    %-20s%s\n", rows[i][0], rows[i][1]);
    fprintf(f, "\n");

    const json_t *caps = json_object_get(show, "capabilities");
    if (json_array_size(caps)) {
        fprintf(f, "  Capabilities\n");
        size_t i;
        json_t *c;
        json_array_foreach(caps, i, c) fprintf(f, "    %s\n", json_string_value(c) ? json_string_value(c) : "");
        fprintf(f, "\n");
    }
    const char *params = cli_json_str(show, "parameters", "");
    if (*params) {
        fprintf(f, "  Parameters\n");
        indented(f, params, "    ");
        fprintf(f, "\n");
    }
    const char *sys = cli_json_str(show, "system", "");
    if (*sys) {
        fprintf(f, "  System\n");
        indented(f, sys, "    ");
        fprintf(f, "\n");
    }
    const char *lic = cli_json_str(show, "license", "");
    if (*lic) {
        /* the first lines only, as Ollama does; --license prints it all */
        fprintf(f, "  License\n");
        const char *p = lic;
        for (int k = 0; k < 2 && *p; k++) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            fprintf(f, "    %.*s\n", (int)len, p);
            p = nl ? nl + 1 : p + len;
        }
        if (*p)
            fprintf(f, "    ...\n");
        fprintf(f, "\n");
    }
}

int cli_show(int argc, char **argv)
{
    static const char usage[] = "usage: bellows show MODEL [--modelfile | --parameters | --template | --system | "
                                "--license]\n"
                                "Shows a model's details, or just one part of them.\n";
    if (help_flag(argc, argv, usage))
        return 0;
    const char *model = NULL, *field = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--modelfile") || !strcmp(a, "--parameters") || !strcmp(a, "--template") ||
            !strcmp(a, "--system") || !strcmp(a, "--license")) {
            if (field) {
                fprintf(stderr, "bellows show: only one of --modelfile, --parameters, --template, --system, "
                                "--license at a time\n");
                return 2;
            }
            field = a + 2;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            /* the summary is the same; model_info is in --modelfile's FROM file */
        } else if (a[0] == '-') {
            fprintf(stderr, "bellows show: unknown flag %s\n%s", a, usage);
            return 2;
        } else if (!model) {
            model = a;
        } else {
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    char url[CLI_URL_MAX];
    int status = 0;
    if (!connect_server(url, true, &status))
        return status;
    json_t *body = json_pack("{s:s}", "model", model), *show = NULL;
    struct bw_err err;
    int rc = cli_api(url, "POST", "/api/show", body, &show, &err);
    json_decref(body);
    if (rc)
        return cli_fail_err(&err, HINT_LIST);
    if (!field) {
        cli_show_summary(show, stdout);
    } else {
        const char *v = cli_json_str(show, field, "");
        if (!*v && strcmp(field, "modelfile") != 0) {
            const char *what = !strcmp(field, "parameters") ? "parameters were"
                               : !strcmp(field, "template") ? "prompt template was"
                               : !strcmp(field, "system")   ? "system message was"
                                                            : "license was";
            printf("No %s specified for this model.\n", what);
        } else {
            fputs(v, stdout);
            if (*v && v[strlen(v) - 1] != '\n')
                fputc('\n', stdout);
        }
    }
    json_decref(show);
    return 0;
}

/* ---- create -------------------------------------------------------------------------------- */

struct progress {
    bool tty;
    char status[128];
    bool bar_open;      /* a bar line is drawn without its newline */
    int last_pct;
    char error[512];
    bool success;
};

static void draw_bar(struct progress *p, int64_t done, int64_t total)
{
    int pct = total > 0 ? (int)(done * 100 / total) : 0;
    if (!p->tty && pct != 100 && p->bar_open)
        return; /* not a terminal: one line per status, and the final 100% */
    if (!p->tty && pct == p->last_pct)
        return;
    char a[32], b[32], bar[3 * 25 + 1];
    fmt_bytes(done, a, sizeof a);
    fmt_bytes(total, b, sizeof b);
    int fill = pct / 4, k = 0;
    for (int i = 0; i < 25; i++) {
        const char *c = i < fill ? "█" : " ";
        size_t n = strlen(c);
        memcpy(bar + k, c, n);
        k += (int)n;
    }
    bar[k] = '\0';
    if (p->tty)
        fprintf(stderr, "\r\033[K");
    else if (p->bar_open)
        fputc('\n', stderr);
    fprintf(stderr, "%s %3d%% ▕%s▏ %s/%s", p->status, pct, bar, a, b);
    p->bar_open = true;
    p->last_pct = pct;
    fflush(stderr);
}

static int on_progress(void *ud, char *line, size_t len)
{
    struct progress *p = ud;
    json_t *o = json_loadb(line, len, 0, NULL);
    const char *e = cli_json_str(o, "error", NULL), *st = cli_json_str(o, "status", NULL);
    if (e) {
        snprintf(p->error, sizeof p->error, "%s", e);
    } else if (st) {
        int64_t total = cli_json_int(o, "total", -1), done = cli_json_int(o, "completed", 0);
        bool same = !strcmp(st, p->status);
        if (!same || total < 0) {
            if (p->bar_open)
                fputc('\n', stderr);
            p->bar_open = false;
            p->last_pct = -1;
            snprintf(p->status, sizeof p->status, "%s", st);
        }
        if (total >= 0)
            draw_bar(p, done, total);
        else if (!same || strcmp(st, "success") == 0)
            fprintf(stderr, "%s\n", st);
        if (!strcmp(st, "success"))
            p->success = true;
    }
    fflush(stderr);
    json_decref(o);
    return 0;
}

static char *read_file(const char *path, size_t *len, struct bw_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        bw_errf(err, BW_ENOTFOUND, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *s = malloc(cap);
    while (s) {
        size_t r = fread(s + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
        if (cap > (64u << 20)) {
            free(s);
            fclose(f);
            bw_errf(err, BW_EINVAL, "%s is larger than 64 MiB: is it a Modelfile? (FROM points at the GGUF)", path);
            return NULL;
        }
    }
    fclose(f);
    if (!s)
        bw_errf(err, BW_ENOMEM, "out of memory");
    *len = n;
    return s;
}

/* FROM: a path (absolute, ~/, ./, ../, or an existing file next to the Modelfile) becomes
 * an absolute path; anything else is a model name. */
static char *resolve_from(const char *from, const char *mf_path, bool *is_path, struct bw_err *err)
{
    char joined[PATH_MAX * 2], dir[PATH_MAX];
    *is_path = false;
    if (!strncmp(from, "~/", 2) && getenv("HOME")) {
        snprintf(joined, sizeof joined, "%s/%s", getenv("HOME"), from + 2);
    } else if (from[0] == '/') {
        snprintf(joined, sizeof joined, "%s", from);
    } else {
        snprintf(dir, sizeof dir, "%s", mf_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        snprintf(joined, sizeof joined, "%s/%s", dir, from);
        struct stat sb;
        bool explicit_path = !strncmp(from, "./", 2) || !strncmp(from, "../", 3);
        if (!explicit_path && stat(joined, &sb) != 0) {
            size_t n = strlen(from);
            if (n > 5 && !strcasecmp(from + n - 5, ".gguf")) {
                bw_errf(err, BW_ENOTFOUND, "FROM %s: no such file next to the Modelfile (%s)", from, joined);
                return NULL;
            }
            return strdup(from); /* a model name */
        }
    }
    char *abs = realpath(joined, NULL);
    if (!abs) {
        bw_errf(err, BW_ENOTFOUND, "FROM %s: %s (%s)", from, strerror(errno), joined);
        return NULL;
    }
    *is_path = true;
    return abs;
}

int cli_create(int argc, char **argv)
{
    static const char usage[] = "usage: bellows create MODEL [-f Modelfile]\n"
                                "Creates MODEL from a Modelfile (default: ./Modelfile): FROM a GGUF file or a "
                                "model,\nwith PARAMETER, SYSTEM, TEMPLATE, LICENSE and MESSAGE.\n";
    if (help_flag(argc, argv, usage))
        return 0;
    const char *name = NULL, *file = "Modelfile";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bellows create: -f needs a file\n");
                return 2;
            }
            file = argv[++i];
        } else if (!strncmp(a, "--file=", 7)) {
            file = a + 7;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quantize")) {
            return cli_fail("quantizing is not supported by Bellows yet: quantize the GGUF with llama.cpp's "
                            "llama-quantize first");
        } else if (a[0] == '-') {
            fprintf(stderr, "bellows create: unknown flag %s\n%s", a, usage);
            return 2;
        } else if (!name) {
            name = a;
        } else {
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    struct bw_err err;
    size_t len;
    char *text = read_file(file, &len, &err);
    if (!text) {
        if (err.code == BW_ENOTFOUND)
            return cli_fail("%s — write a Modelfile (FROM ./model.gguf) or name one with -f", err.msg);
        return cli_fail_err(&err, NULL);
    }
    struct modelfile mf;
    int rc = modelfile_parse(text, len, &mf, &err);
    free(text);
    if (rc)
        return cli_fail("%s: %s", file, err.msg);
    bool is_path;
    char *from = resolve_from(mf.from, file, &is_path, &err);
    if (!from) {
        modelfile_fini(&mf);
        return cli_fail_err(&err, NULL);
    }
    char url[CLI_URL_MAX];
    int status = 0;
    if (!connect_server(url, true, &status)) {
        free(from);
        modelfile_fini(&mf);
        return status;
    }
    json_t *body = json_pack("{s:s, s:s, s:b}", "model", name, "from", from, "stream", 1);
    if (json_object_size(mf.parameters))
        json_object_set(body, "parameters", mf.parameters);
    if (json_array_size(mf.messages))
        json_object_set(body, "messages", mf.messages);
    if (mf.system)
        json_object_set_new(body, "system", json_string(mf.system));
    if (mf.template_)
        json_object_set_new(body, "template", json_string(mf.template_));
    if (mf.license)
        json_object_set_new(body, "license", json_string(mf.license));
    char *req = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    free(from);
    modelfile_fini(&mf);
    if (!req)
        return cli_fail("out of memory");

    fprintf(stderr, "gathering model components\n");
    struct progress p = {.tty = isatty(2), .last_pct = -1};
    struct client_response res;
    struct client_opts o = {.idle_timeout_ms = 600000};
    rc = client_request(url, "POST", "/api/create", req, strlen(req), &o, on_progress, &p, &res, &err);
    free(req);
    if (p.bar_open)
        fputc('\n', stderr);
    if (rc == BW_OK && res.status != 200) {
        cli_reply_error(&res, &err);
        rc = err.code;
    } else if (rc == BW_OK && p.error[0]) {
        rc = bw_errf(&err, BW_EIO, "%s", p.error);
    } else if (rc == BW_OK && !p.success) {
        rc = bw_errf(&err, BW_EIO, "the server stopped before it said 'success': see its log");
    }
    client_response_fini(&res);
    if (rc)
        return cli_fail_err(&err, is_path ? NULL : "FROM names a model: `bellows list` shows the installed ones");
    return 0;
}

/* ---- rm, cp, stop ---------------------------------------------------------------------------- */

int cli_rm(int argc, char **argv)
{
    if (help_flag(argc, argv, "usage: bellows rm MODEL [MODEL...]\nRemoves models (unloading them first).\n"))
        return 0;
    if (argc < 2) {
        fprintf(stderr, "usage: bellows rm MODEL [MODEL...]\n");
        return 2;
    }
    char url[CLI_URL_MAX];
    int status = 0;
    if (!connect_server(url, true, &status))
        return status;
    for (int i = 1; i < argc; i++) {
        struct bw_err err;
        bool loaded;
        if (cli_unload(url, argv[i], &loaded, &err) != BW_OK && err.code != BW_ENOTFOUND) {
            status = cli_fail_err(&err, NULL);
            continue;
        }
        json_t *body = json_pack("{s:s}", "model", argv[i]);
        int rc = cli_api(url, "DELETE", "/api/delete", body, NULL, &err);
        json_decref(body);
        if (rc) {
            status = cli_fail_err(&err, HINT_LIST);
            continue;
        }
        printf("deleted '%s'\n", argv[i]);
    }
    return status;
}

int cli_cp(int argc, char **argv)
{
    if (help_flag(argc, argv, "usage: bellows cp SOURCE DESTINATION\nCopies a model under a new name.\n"))
        return 0;
    if (argc != 3) {
        fprintf(stderr, "usage: bellows cp SOURCE DESTINATION\n");
        return 2;
    }
    char url[CLI_URL_MAX];
    int status = 0;
    if (!connect_server(url, true, &status))
        return status;
    json_t *body = json_pack("{s:s, s:s}", "source", argv[1], "destination", argv[2]);
    struct bw_err err;
    int rc = cli_api(url, "POST", "/api/copy", body, NULL, &err);
    json_decref(body);
    if (rc)
        return cli_fail_err(&err, HINT_LIST);
    printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    return 0;
}

int cli_stop(int argc, char **argv)
{
    if (help_flag(argc, argv, "usage: bellows stop MODEL\nUnloads a running model.\n"))
        return 0;
    if (argc != 2) {
        fprintf(stderr, "usage: bellows stop MODEL\n");
        return 2;
    }
    char url[CLI_URL_MAX];
    int status = 0;
    if (!connect_server(url, false, &status))
        return status;
    struct bw_err err;
    bool loaded;
    if (cli_unload(url, argv[1], &loaded, &err) != BW_OK)
        return cli_fail_err(&err, HINT_PS);
    if (!loaded)
        return cli_fail("model '%s' is not running — %s", argv[1], HINT_PS);
    return 0;
}

int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("bellows version %s (llama.cpp %.7s)\n", BELLOWS_VERSION, BELLOWS_LLAMA_COMMIT);
    return 0;
}
