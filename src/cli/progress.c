/* progress.c -- pull progress lines (see progress.h). Pure. */
#include "cli/progress.h"

#include <stdio.h>
#include <string.h>

#include "cli/format.h"

#define NS 1000000000LL
#define REDRAW_NS (100LL * 1000000)

void cli_rate_reset(struct cli_rate *r, int64_t now_ns, int64_t bytes)
{
    r->n = 1;
    r->t_ns[0] = now_ns;
    r->bytes[0] = bytes;
}

void cli_rate_add(struct cli_rate *r, int64_t now_ns, int64_t bytes)
{
    if (r->n == 0) {
        cli_rate_reset(r, now_ns, bytes);
        return;
    }
    if (now_ns - r->t_ns[r->n - 1] < NS && r->n > 1) {
        r->bytes[r->n - 1] = bytes; /* within the second: the newest sample moves */
        r->t_ns[r->n - 1] = now_ns;
        return;
    }
    if (r->n == CLI_RATE_SAMPLES) {
        memmove(r->t_ns, r->t_ns + 1, (CLI_RATE_SAMPLES - 1) * sizeof r->t_ns[0]);
        memmove(r->bytes, r->bytes + 1, (CLI_RATE_SAMPLES - 1) * sizeof r->bytes[0]);
        r->n--;
    }
    r->t_ns[r->n] = now_ns;
    r->bytes[r->n] = bytes;
    r->n++;
}

double cli_rate_bps(const struct cli_rate *r)
{
    if (r->n < 2)
        return 0;
    int64_t dt = r->t_ns[r->n - 1] - r->t_ns[0];
    int64_t db = r->bytes[r->n - 1] - r->bytes[0];
    if (dt < NS || db <= 0)
        return 0;
    return (double)db * 1e9 / (double)dt;
}

void cli_fmt_eta(int64_t s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    if (s >= 100 * 3600)
        snprintf(buf, len, "99h+");
    else if (s >= 3600)
        snprintf(buf, len, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(buf, len, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, len, "%llds", (long long)s);
}

static void append(char *buf, size_t len, size_t *used, const char *s)
{
    size_t n = strlen(s);
    if (*used + n >= len)
        n = len - 1 - *used;
    memcpy(buf + *used, s, n);
    *used += n;
    buf[*used] = '\0';
}

void cli_progress_line(const char *label, int64_t done, int64_t total, double bps, int width, char *buf,
                       size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    if (total < 0)
        total = 0;
    if (done > total)
        done = total;
    bool finished = done >= total;
    int pct = total > 0 ? (int)(done * 100 / total) : 100;
    char pre[128], suf[160], a[32], b[32], rate[48] = "", eta[48] = "";
    snprintf(pre, sizeof pre, "%s %3d%%", label, pct);
    fmt_bytes(total, b, sizeof b);
    if (finished) {
        snprintf(suf, sizeof suf, "%6s%*s", b, 7 + 10 + 8, "");
    } else {
        fmt_bytes(done, a, sizeof a);
        if (bps > 0) {
            char r[32];
            fmt_bytes((int64_t)bps, r, sizeof r);
            snprintf(rate, sizeof rate, "  %6s/s", r);
            char e[32];
            cli_fmt_eta((int64_t)((double)(total - done) / bps + 0.5), e, sizeof e);
            snprintf(eta, sizeof eta, "  %6s", e);
        }
        snprintf(suf, sizeof suf, "%6s/%6s%-10s%-8s", a, b, rate, eta);
    }
    size_t used = 0;
    append(buf, len, &used, pre);
    if (width > 0) {
        /* the bar takes what is left: " ▕" + cells + "▏ " */
        int cells = width - (int)fmt_width(pre) - (int)strlen(suf) - 5;
        if (cells < 10)
            cells = 10;
        int fill = cells * pct / 100;
        append(buf, len, &used, " ▕");
        for (int i = 0; i < cells; i++)
            append(buf, len, &used, i < fill ? "█" : " ");
        append(buf, len, &used, "▏ ");
        append(buf, len, &used, suf);
    } else {
        append(buf, len, &used, " ");
        append(buf, len, &used, finished ? b : a);
        if (!finished) {
            append(buf, len, &used, "/");
            append(buf, len, &used, b);
        }
    }
    while (used > 0 && buf[used - 1] == ' ')
        buf[--used] = '\0';
}

/* ---- the view ---------------------------------------------------------------------------------- */

static void draw_layer(struct cli_pull_view *v, FILE *f)
{
    char label[96], line[1024];
    snprintf(label, sizeof label, "pulling %.12s:", v->digest + (strncmp(v->digest, "sha256:", 7) ? 0 : 7));
    cli_progress_line(label, v->done, v->total, cli_rate_bps(&v->rate), v->tty ? v->width : 0, line, sizeof line);
    if (v->tty) {
        fprintf(f, "\r\033[K%s", line);
        v->line_open = true;
    } else {
        fprintf(f, "%s\n", line);
    }
    fflush(f);
}

/* The current layer's line is finished: a newline on a terminal, the line itself on a log
 * when it was not written yet (an interrupted layer). */
static void close_layer(struct cli_pull_view *v, FILE *f)
{
    if (v->tty && v->line_open) {
        fputc('\n', f);
        v->line_open = false;
    } else if (!v->tty && v->digest[0] && !v->layer_done_shown) {
        draw_layer(v, f);
        v->layer_done_shown = true;
    }
    v->digest[0] = '\0';
}

void cli_pull_view_feed(struct cli_pull_view *v, const char *status, const char *digest, int64_t total,
                        int64_t completed, const char *error, int64_t now_ns, FILE *f)
{
    if (error) {
        close_layer(v, f);
        snprintf(v->error, sizeof v->error, "%s", error);
        return;
    }
    if (!status)
        return;
    if (digest) {
        if (strcmp(digest, v->digest)) {
            close_layer(v, f);
            snprintf(v->digest, sizeof v->digest, "%s", digest);
            v->layer_done_shown = false;
            cli_rate_reset(&v->rate, now_ns, completed);
            v->last_draw_ns = 0;
        }
        v->done = completed;
        v->total = total;
        cli_rate_add(&v->rate, now_ns, completed);
        bool complete = total > 0 && completed >= total;
        if (v->tty) {
            if (complete || !v->line_open || now_ns - v->last_draw_ns >= REDRAW_NS) {
                draw_layer(v, f);
                v->last_draw_ns = now_ns;
            }
        } else if (complete && !v->layer_done_shown) {
            draw_layer(v, f);
            v->layer_done_shown = true;
        }
        return;
    }
    close_layer(v, f);
    if (strcmp(status, v->status)) {
        fprintf(f, "%s\n", status);
        fflush(f);
        snprintf(v->status, sizeof v->status, "%s", status);
    }
    if (!strcmp(status, "success"))
        v->success = true;
}

void cli_pull_view_end(struct cli_pull_view *v, FILE *f)
{
    close_layer(v, f);
    fflush(f);
}
