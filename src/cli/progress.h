/* progress.h -- how `bellows pull` (and `bellows run` of a missing model) shows a pull:
 * /api/pull's NDJSON progress turned into Ollama-style lines.
 *
 * On a terminal each layer gets one line, redrawn in place while it downloads:
 *   pulling 9d388e74ece1:  45% ▕██████████▌            ▏  12 MB/ 27 MB  5.1 MB/s     3s
 * and, once complete, the same line with the size alone (the speed and time go). Status
 * steps ("pulling manifest", "verifying sha256 digest", ...) are lines of their own. Not on
 * a terminal (a log, a pipe) every status and each finished layer is one plain line, with
 * no redraws and no escape codes.
 *
 * Pure: no clock and no I/O except the FILE passed in; times come in as arguments, so
 * every function is testable. */
#ifndef BELLOWS_CLI_PROGRESS_H
#define BELLOWS_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The download speed over the last ~10 s: one sample a second at most. */
#define CLI_RATE_SAMPLES 10
struct cli_rate {
    int64_t t_ns[CLI_RATE_SAMPLES];
    int64_t bytes[CLI_RATE_SAMPLES];
    int n;                        /* samples held, oldest first */
};
/* Start afresh at BYTES (bytes already there, e.g. a resumed download, are no speed). */
void cli_rate_reset(struct cli_rate *r, int64_t now_ns, int64_t bytes);
void cli_rate_add(struct cli_rate *r, int64_t now_ns, int64_t bytes);
/* Bytes per second between the oldest and newest sample; 0 before a second has passed. */
double cli_rate_bps(const struct cli_rate *r);

/* Go's Duration rounded to seconds, at most two units: "3s", "1m15s", "2h5m", "99h+". */
void cli_fmt_eta(int64_t seconds, char *buf, size_t len);

/* One progress line (no newline) into buf: LABEL, the percentage, a bar filling WIDTH
 * columns in all, then "done/total  rate  eta" while running (rate and eta blank when
 * bps is 0), or the total alone once done >= total. */
void cli_progress_line(const char *label, int64_t done, int64_t total, double bps, int width, char *buf,
                       size_t len);

/* The view of one pull; zero-initialise, then set tty and width (terminal columns). */
struct cli_pull_view {
    bool tty;
    int width;
    char status[64];              /* the last status step shown */
    char digest[80];              /* the layer on the current line */
    bool line_open;               /* tty: a layer line is drawn without its newline */
    bool layer_done_shown;        /* plain: the current layer's line went out */
    int64_t done, total;
    struct cli_rate rate;
    int64_t last_draw_ns;
    char error[512];              /* an {"error": ...} line */
    bool success;                 /* the "success" step came */
};

/* Feed one progress object's fields (STATUS required; DIGEST NULL for a status step;
 * TOTAL/COMPLETED 0 when absent) or, with ERROR set, an error line; writes to f. */
void cli_pull_view_feed(struct cli_pull_view *v, const char *status, const char *digest, int64_t total,
                        int64_t completed, const char *error, int64_t now_ns, FILE *f);
/* The stream ended: finish an open line. */
void cli_pull_view_end(struct cli_pull_view *v, FILE *f);

#endif
