/* err.c -- see err.h. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

int bw_errf(struct bw_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *bw_strerror(int code)
{
    switch (code) {
    case BW_OK: return "ok";
    case BW_EINVAL: return "invalid argument";
    case BW_ENOTFOUND: return "not found";
    case BW_EBUSY: return "busy";
    case BW_ENOMEM: return "out of memory";
    case BW_EIO: return "i/o error";
    case BW_ERUNNER: return "runner error";
    case BW_ETOOLONG: return "prompt too long";
    case BW_ENOSPC: return "no space left on device";
    default: return "unknown error";
    }
}
