/* format.c -- see format.h. The rules follow Ollama's format package (HumanBytes,
 * HumanTime) and Go's Duration.String, so output reads the same to Ollama users. */
#define _GNU_SOURCE
#include "cli/format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fmt_bytes(int64_t b, char *buf, size_t len)
{
    static const struct {
        double size;
        const char *unit;
    } units[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if ((double)b < units[i].size)
            continue;
        double v = (double)b / units[i].size;
        if (v >= 9.95)
            snprintf(buf, len, "%.0f %s", v, units[i].unit);
        else if (fabs(v - round(v)) < 0.05)
            snprintf(buf, len, "%.0f %s", v, units[i].unit);
        else
            snprintf(buf, len, "%.1f %s", v, units[i].unit);
        return;
    }
    snprintf(buf, len, "%lld B", (long long)b);
}

void fmt_human_duration(int64_t d_ns, char *buf, size_t len)
{
    int64_t seconds = d_ns / 1000000000;
    if (seconds < 1) {
        snprintf(buf, len, "Less than a second");
        return;
    }
    if (seconds == 1) {
        snprintf(buf, len, "1 second");
        return;
    }
    if (seconds < 60) {
        snprintf(buf, len, "%lld seconds", (long long)seconds);
        return;
    }
    int64_t minutes = seconds / 60;
    if (minutes == 1) {
        snprintf(buf, len, "About a minute");
        return;
    }
    if (minutes < 60) {
        snprintf(buf, len, "%lld minutes", (long long)minutes);
        return;
    }
    long long hours = llround((double)d_ns / 3.6e12);
    if (hours == 1)
        snprintf(buf, len, "About an hour");
    else if (hours < 48)
        snprintf(buf, len, "%lld hours", hours);
    else if (hours < 24 * 7 * 2)
        snprintf(buf, len, "%lld days", hours / 24);
    else if (hours < 24 * 30 * 2)
        snprintf(buf, len, "%lld weeks", hours / 24 / 7);
    else if (hours < 24 * 365 * 2)
        snprintf(buf, len, "%lld months", hours / 24 / 30);
    else
        snprintf(buf, len, "%lld years", (long long)(d_ns / 3.6e12 / 24 / 365));
}

void fmt_human_time(int64_t t, int64_t now, char *buf, size_t len)
{
    char d[64];
    const int64_t twenty_years = (int64_t)20 * 365 * 24 * 3600 * 1000000000LL;
    if (t - now > twenty_years) {
        snprintf(buf, len, "Forever");
    } else if (t > now) {
        fmt_human_duration(t - now, d, sizeof d);
        snprintf(buf, len, "%s from now", d);
    } else {
        fmt_human_duration(now - t, d, sizeof d);
        snprintf(buf, len, "%s ago", d);
    }
}

/* whole.frac with trailing zeros of frac (digits wide) removed */
static int fixed(char *buf, size_t len, int64_t whole, int64_t frac, int digits, const char *unit)
{
    char f[16] = "";
    if (frac) {
        snprintf(f, sizeof f, ".%0*lld", digits, (long long)frac);
        size_t n = strlen(f);
        while (n > 1 && f[n - 1] == '0')
            f[--n] = '\0';
    }
    return snprintf(buf, len, "%lld%s%s", (long long)whole, f, unit);
}

void fmt_go_duration(int64_t d, char *buf, size_t len)
{
    const char *sign = "";
    if (d < 0) {
        sign = "-";
        d = -d;
    }
    char b[64];
    if (d == 0) {
        snprintf(b, sizeof b, "0s");
    } else if (d < 1000) {
        snprintf(b, sizeof b, "%lldns", (long long)d);
    } else if (d < 1000000) {
        fixed(b, sizeof b, d / 1000, d % 1000, 3, "µs");
    } else if (d < 1000000000) {
        fixed(b, sizeof b, d / 1000000, d % 1000000, 6, "ms");
    } else {
        int64_t s = d / 1000000000, frac = d % 1000000000;
        int64_t h = s / 3600, m = (s / 60) % 60;
        int n = 0;
        if (h)
            n += snprintf(b + n, sizeof b - (size_t)n, "%lldh", (long long)h);
        if (h || m)
            n += snprintf(b + n, sizeof b - (size_t)n, "%lldm", (long long)m);
        fixed(b + n, sizeof b - (size_t)n, s % 60, frac, 9, "s");
    }
    snprintf(buf, len, "%s%s", sign, b);
}

int fmt_parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t ns = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 9)
                ns = ns * 10 + (*p - '0');
        for (; digits < 9; digits++)
            ns *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    int64_t secs = (int64_t)timegm(&tm) - offset;
    /* past 2262 the nanoseconds overflow: Ollama's "forever" is in 2318 */
    *out = secs >= INT64_MAX / 1000000000LL ? INT64_MAX : secs * 1000000000LL + ns;
    return 0;
}

size_t fmt_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
    size_t width[CLI_TABLE_MAX_COLS] = {0};
    int rows = t->n_rows < CLI_TABLE_MAX_ROWS ? t->n_rows : CLI_TABLE_MAX_ROWS;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < t->n_cols; c++) {
            size_t w = fmt_width(t->cells[r][c] ? t->cells[r][c] : "");
            if (w > width[c])
                width[c] = w;
        }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = t->cells[r][c] ? t->cells[r][c] : "";
            fputs(s, f);
            if (c + 1 < t->n_cols)
                fprintf(f, "%*s", (int)(width[c] - fmt_width(s) + 4), "");
        }
        fputc('\n', f);
    }
}

/* ---- thinking -------------------------------------------------------------------------------- */

const char *fmt_think_value(const char *v)
{
    static const char *const words[] = {"true", "false", "low", "medium", "high"};
    if (!v)
        return NULL;
    if (!*v)
        return "true"; /* --think alone */
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(v, words[i]))
            return words[i];
    return NULL;
}

#define FMT_FAINT "\033[2m"
#define FMT_RESET "\033[0m"

void fmt_thinking_piece(struct fmt_thinking *t, const char *text, size_t len, FILE *f)
{
    if (t->hide || !len)
        return;
    if (!t->open) {
        fputs(t->color ? FMT_FAINT "Thinking...\n" : "Thinking...\n", f);
        t->open = true;
        t->at_bol = true;
    }
    fwrite(text, 1, len, f);
    t->at_bol = text[len - 1] == '\n';
}

void fmt_thinking_close(struct fmt_thinking *t, FILE *f)
{
    if (!t->open)
        return;
    if (!t->at_bol)
        fputc('\n', f);
    fputs(t->color ? "...done thinking.\n\n" FMT_RESET : "...done thinking.\n\n", f);
    t->open = false;
}
