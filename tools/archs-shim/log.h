// log.h -- see common.h in this directory: the logging subset test-llama-archs.cpp uses.
#pragma once
#include "ggml.h"
#include <cstdio>

#define LOG_LEVEL_DEBUG  5
#define LOG_LEVEL_TRACE  4
#define LOG_LEVEL_INFO   3
#define LOG_LEVEL_WARN   2
#define LOG_LEVEL_ERROR  1
#define LOG_LEVEL_OUTPUT 0

struct common_log;
static inline struct common_log * common_log_main(void) { return nullptr; }
static inline void common_log_flush(struct common_log *) { fflush(stdout); fflush(stderr); }
static inline void common_log_set_verbosity_thold(int) {}
static inline int common_log_get_verbosity(enum ggml_log_level level) {
    switch (level) {
        case GGML_LOG_LEVEL_DEBUG: return LOG_LEVEL_DEBUG;
        case GGML_LOG_LEVEL_INFO:  return LOG_LEVEL_TRACE;
        case GGML_LOG_LEVEL_WARN:  return LOG_LEVEL_WARN;
        case GGML_LOG_LEVEL_ERROR: return LOG_LEVEL_ERROR;
        case GGML_LOG_LEVEL_CONT:  return LOG_LEVEL_TRACE;
        default:                   return LOG_LEVEL_OUTPUT;
    }
}
#define LOG_INF(...) do { } while (0)
#define LOG_ERR(...) fprintf(stderr, __VA_ARGS__)
