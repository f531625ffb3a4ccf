/* format.h -- how the CLI writes numbers, times and tables, in Ollama's style.
 *
 * Pure: no clock, no I/O except cli_table_print's FILE. Times are passed in (now_ns), so
 * every function is testable. Output goes into caller buffers, always NUL-terminated and
 * truncated to their length. */
#ifndef BELLOWS_CLI_FORMAT_H
#define BELLOWS_CLI_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Decimal units like Ollama's format.HumanBytes, rounded: 26674570 -> "27 MB",
 * 1500000 -> "1.5 MB", 999 -> "999 B". */
void fmt_bytes(int64_t bytes, char *buf, size_t len);

/* "Less than a second", "1 second", "12 seconds", "About a minute", "5 minutes",
 * "About an hour", "3 hours", "4 days", "2 weeks", "3 months", "2 years". d_ns >= 0. */
void fmt_human_duration(int64_t d_ns, char *buf, size_t len);

/* A point in time relative to now: "2 minutes ago", "4 minutes from now", or "Forever"
 * when it lies more than 20 years ahead (a model kept loaded for good). */
void fmt_human_time(int64_t t_unix_ns, int64_t now_unix_ns, char *buf, size_t len);

/* Go's time.Duration.String(): "1.868306209s", "129.503ms", "12.5µs", "830ns", "1m2.5s". */
void fmt_go_duration(int64_t d_ns, char *buf, size_t len);

/* Parses RFC 3339 ("2026-11-27T12:27:18.547447742Z", offsets "+02:00" too) to Unix ns;
 * times past 2262 (out of int64 range) become INT64_MAX. Returns 0, or -1 when s is not
 * such a time (*out untouched). */
int fmt_parse_rfc3339(const char *s, int64_t *out);

/* A borderless table like Ollama's: columns left-aligned, separated by at least 4 spaces,
 * header row first. The caller fills cells; the table copies nothing and the strings must
 * live until cli_table_print. Rows beyond CLI_TABLE_MAX_ROWS are dropped. */
#define CLI_TABLE_MAX_COLS 8
#define CLI_TABLE_MAX_ROWS 512
struct cli_table {
    int n_cols, n_rows;
    const char *cells[CLI_TABLE_MAX_ROWS][CLI_TABLE_MAX_COLS]; /* row 0: the header */
};
void cli_table_print(const struct cli_table *t, FILE *f);

/* The display width of UTF-8 text in columns (one per code point; good enough for names). */
size_t fmt_width(const char *s);

/* ---- thinking (`bellows run`) ---------------------------------------------------------------- */

/* The values `--think=V` and `/set think V` take, as Ollama's CLI: "" and "true" (think),
 * "false", and the efforts "low", "medium", "high". Returns the canonical word ("true",
 * "false", "low", ...), or NULL for anything else. */
const char *fmt_think_value(const char *v);

/* How `bellows run` shows thinking streamed from /api/chat's message.thinking, as Ollama's
 * CLI does: "Thinking...\n", the thinking as it arrives, then "...done thinking.\n\n" before
 * the first piece of the answer (a newline first when the thinking did not end with one).
 * With color (stdout is a terminal) the block is dimmed (ANSI faint, reset after the
 * footer); plain text otherwise. With hide (--hidethinking) nothing of it is written.
 * Zero-initialise, set color and hide. */
struct fmt_thinking {
    bool color, hide;
    bool open;   /* the header went out, the footer not yet */
    bool at_bol; /* the last thinking byte written was '\n' */
};
/* Writes a piece of thinking (the header first when the block is not open yet). */
void fmt_thinking_piece(struct fmt_thinking *t, const char *text, size_t len, FILE *f);
/* Closes an open block (the footer): call before writing answer text, and when the answer
 * ends, so a block with no answer after it still ends and the terminal's color is reset. */
void fmt_thinking_close(struct fmt_thinking *t, FILE *f);

#endif
