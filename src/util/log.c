/* log.c -- see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level) { min_level = level; }

void log_init_from_env(void)
{
    const char *d = getenv("BELLOWS_DEBUG");
    if (d && *d && strcmp(d, "0") != 0 && strcmp(d, "false") != 0)
        min_level = LOG_DEBUG;
}

int log_enabled(enum log_level level) { return level >= min_level; }

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG: return "DEBUG";
    case LOG_INFO: return "INFO";
    case LOG_WARN: return "WARN";
    default: return "ERROR";
    }
}

void log_write(enum log_level level, uint64_t req_id, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000,
                  level_name(level), module);
    if (req_id)
        n += snprintf(line + n, sizeof line - n, "req=%llu ", (unsigned long long)req_id);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    n = (m < 0 || n + m >= (int)sizeof line - 1) ? (int)sizeof line - 2 : n + m;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
