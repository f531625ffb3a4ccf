/* log.h -- leveled logging to stderr, one line per event, with request ids.
 *
 * Lines look like `2026-11-27T12:00:00.123Z INFO engine req=42 message key=value`.
 * The level is checked before anything is formatted (cheap when filtered out).
 * Thread-safe: each line is written with one write(2) call. The level comes from
 * BELLOWS_DEBUG (1 = debug) or log_set_level(); the default is info. */
#ifndef BELLOWS_LOG_H
#define BELLOWS_LOG_H

#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
/* Reads BELLOWS_DEBUG once; call early in main(). */
void log_init_from_env(void);
int log_enabled(enum log_level level);

/* req_id 0 means "not about a request". */
void log_write(enum log_level level, uint64_t req_id, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_REQ(level, req_id, module, ...) \
    do { if (log_enabled(level)) log_write(level, req_id, module, __VA_ARGS__); } while (0)
#define LOG(level, module, ...) LOG_REQ(level, 0, module, __VA_ARGS__)

#endif
