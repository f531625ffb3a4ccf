/* bellows-jinja -- render a chat template file with a JSON context, as the runner does.
 *
 *   bellows-jinja --template FILE [--context FILE.json] [--now UNIX_SECONDS]
 *
 * Prints the rendered text to stdout exactly (nothing added); on a template error prints
 * `bellows-jinja: <message>` to stderr and exits 1. The context (default: stdin) is a JSON
 * object whose members become the template's globals; strftime_now() and
 * raise_exception() are built in, and --now fixes the clock strftime_now() reads (UTC).
 * Used by the template tests to compare our renderer with a reference one, and by people
 * checking what a model would be shown. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "template/jinja.h"

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
        }
    }
    *len = n;
    return buf;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bellows-jinja: cannot open %s\n", path);
        return NULL;
    }
    char *s = slurp(f, len);
    fclose(f);
    return s;
}

int main(int argc, char **argv)
{
    const char *tpath = NULL, *cpath = NULL;
    long long now = (long long)time(NULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--template") && i + 1 < argc) tpath = argv[++i];
        else if (!strcmp(argv[i], "--context") && i + 1 < argc) cpath = argv[++i];
        else if (!strcmp(argv[i], "--now") && i + 1 < argc) now = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bellows-jinja --template FILE [--context FILE.json] [--now UNIX_SECONDS]\n");
            return 2;
        }
    }
    if (!tpath) {
        fprintf(stderr, "usage: bellows-jinja --template FILE [--context FILE.json] [--now UNIX_SECONDS]\n");
        return 2;
    }
    size_t tlen, clen;
    char *tsrc = read_file(tpath, &tlen);
    char *csrc = cpath ? read_file(cpath, &clen) : slurp(stdin, &clen);
    /* Every path frees what it made: the template corpus runs this under LeakSanitizer. */
    int rc = 2;
    json_t *ctx = NULL;
    struct jinja_tmpl *t = NULL;
    if (!tsrc || !csrc)
        goto done;
    json_error_t je;
    ctx = json_loadb(csrc, clen, 0, &je);
    if (!json_is_object(ctx)) {
        fprintf(stderr, "bellows-jinja: the context must be a JSON object (%s)\n", ctx ? "not an object" : je.text);
        goto done;
    }
    struct bw_err err;
    rc = 1;
    if (jinja_parse(tsrc, tlen, &t, &err) != BW_OK) {
        t = NULL;
        fprintf(stderr, "bellows-jinja: %s\n", err.msg);
        goto done;
    }
    struct jinja_opts o = {.now_unix = now};
    char *out;
    size_t out_len;
    if (jinja_render(t, ctx, &o, &out, &out_len, &err) != BW_OK) {
        fprintf(stderr, "bellows-jinja: %s\n", err.msg);
        goto done;
    }
    fwrite(out, 1, out_len, stdout);
    free(out);
    rc = 0;
done:
    if (t)
        jinja_free(t);
    json_decref(ctx);
    free(tsrc);
    free(csrc);
    return rc;
}
