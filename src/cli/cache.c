/* cache.c -- `bellows cache` (list) and `bellows cache clear [MODEL...]`: the KV states the
 * server saved to disk (docs/kvcache.md), through GET / DELETE /api/cache (api_cache.c).
 * The list prints like `bellows ps`: a borderless table, then one line of totals. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "cli/format.h"
#include "util/clock.h"

#define USAGE "usage: bellows cache [list]\n       bellows cache clear [MODEL...]\n"

static const char help[] =
    USAGE "Lists or removes the conversations' KV states the server saved to disk, so that a long\n"
          "conversation resumes without re-reading its history after an unload or a restart.\n"
          "list (the default): NAME ID KV TOKENS SIZE MODIFIED, most recently used first, then the\n"
          "total against the disk budget (BELLOWS_KV_CACHE_DISK). NAME is every model using the\n"
          "same weights (they share their states); '-' when the weights are no longer installed.\n"
          "clear: removes the states of the models named (all of them when none is named).\n"
          "A conversation still in a loaded model's memory is saved again when the model unloads:\n"
          "`bellows stop MODEL` first to be rid of it too.\n";

static int cache_list(const char *url)
{
    json_t *reply = NULL;
    struct bw_err err;
    if (cli_api(url, "GET", "/api/cache", NULL, &reply, &err) != BW_OK)
        return cli_fail_err(&err, NULL);
    const json_t *states = json_object_get(reply, "states");
    size_t n = json_array_size(states);
    struct cli_table *t = calloc(1, sizeof *t);
    char(*cells)[6][160] = calloc(n ? n : 1, sizeof *cells);
    if (!t || !cells) {
        free(t);
        free(cells);
        json_decref(reply);
        return cli_fail("out of memory");
    }
    t->n_cols = 6;
    t->n_rows = 1;
    const char *head[] = {"NAME", "ID", "KV", "TOKENS", "SIZE", "MODIFIED"};
    memcpy(t->cells[0], head, sizeof head);
    int64_t now = clock_real_ns();
    for (size_t i = 0; i < n && t->n_rows < CLI_TABLE_MAX_ROWS; i++) {
        const json_t *s = json_array_get(states, i), *names = json_object_get(s, "models");
        char *c = cells[i][0];
        size_t len = sizeof cells[i][0], used = 0;
        c[0] = '\0';
        for (size_t k = 0; k < json_array_size(names) && used < len; k++)
            used += (size_t)snprintf(c + used, len - used, "%s%s", k ? "," : "",
                                     json_string_value(json_array_get(names, k)) ?: "");
        if (!c[0])
            snprintf(c, len, "-");
        const char *digest = cli_json_str(s, "digest", "");
        snprintf(cells[i][1], sizeof cells[i][1], "%.12s", !strncmp(digest, "sha256:", 7) ? digest + 7 : digest);
        snprintf(cells[i][2], sizeof cells[i][2], "%s", cli_json_str(s, "kv_type", "-"));
        snprintf(cells[i][3], sizeof cells[i][3], "%lld", (long long)cli_json_int(s, "tokens", 0));
        fmt_bytes(cli_json_int(s, "bytes", 0), cells[i][4], sizeof cells[i][4]);
        int64_t when;
        if (fmt_parse_rfc3339(cli_json_str(s, "modified_at", ""), &when) == 0)
            fmt_human_time(when, now, cells[i][5], sizeof cells[i][5]);
        const char **row = t->cells[t->n_rows++];
        for (int k = 0; k < 6; k++)
            row[k] = cells[i][k];
    }
    cli_table_print(t, stdout);
    char total[32], budget[32];
    fmt_bytes(cli_json_int(reply, "total_bytes", 0), total, sizeof total);
    int64_t b = cli_json_int(reply, "budget_bytes", 0);
    fmt_bytes(b, budget, sizeof budget);
    const char *dir = cli_json_str(reply, "dir", NULL);
    if (!dir || b <= 0)
        printf("\nsaving KV states to disk is off (BELLOWS_KV_CACHE_DISK=0)%s%zu state%s, %s\n",
               n ? "; still on disk: " : "; ", n, n == 1 ? "" : "s", total);
    else
        printf("\n%zu state%s, %s of %s in %s\n", n, n == 1 ? "" : "s", total, budget, dir);
    free(t);
    free(cells);
    json_decref(reply);
    return 0;
}

/* Removes one model's states (model NULL: every model's) and says how many went. */
static int cache_clear(const char *url, const char *model)
{
    json_t *body = model ? json_pack("{s:s}", "model", model) : NULL, *reply = NULL;
    struct bw_err err;
    int rc = cli_api(url, "DELETE", "/api/cache", body, &reply, &err);
    json_decref(body);
    if (rc)
        return cli_fail_err(&err, "`bellows list` shows the installed ones");
    int64_t removed = cli_json_int(reply, "removed", 0);
    char freed[32];
    fmt_bytes(cli_json_int(reply, "freed_bytes", 0), freed, sizeof freed);
    if (model)
        printf("removed %lld saved state%s of '%s' (%s)\n", (long long)removed, removed == 1 ? "" : "s", model, freed);
    else
        printf("removed %lld saved state%s (%s)\n", (long long)removed, removed == 1 ? "" : "s", freed);
    json_decref(reply);
    return 0;
}

int cli_cache(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(help, stdout);
            return 0;
        }
    bool clear = argc > 1 && !strcmp(argv[1], "clear");
    if (argc > 1 && !clear && (strcmp(argv[1], "list") || argc > 2)) {
        fputs(USAGE, stderr);
        return 2;
    }
    char url[CLI_URL_MAX];
    struct bw_err err;
    /* The states are on disk whether or not a server runs, but where and how much is the
     * server's configuration: start one, as `bellows list` does. */
    if (cli_server(url, sizeof url, true, &err) != BW_OK)
        return cli_fail_err(&err, NULL);
    if (!clear)
        return cache_list(url);
    if (argc == 2)
        return cache_clear(url, NULL);
    int status = 0;
    for (int i = 2; i < argc; i++)
        if (cache_clear(url, argv[i]))
            status = 1;
    return status;
}
