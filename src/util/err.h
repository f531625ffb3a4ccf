/* err.h -- project-wide error codes and the caller-owned error message.
 *
 * Functions that can fail return an int: BW_OK (0) or a negative BW_E* code, and fill a
 * `struct bw_err` the caller provides (on its stack; the pointer may be NULL when the
 * caller does not want the text). The error path allocates nothing. The mapping from
 * code to HTTP status lives in the API layer, not here. */
#ifndef BELLOWS_ERR_H
#define BELLOWS_ERR_H

enum {
    BW_OK = 0,
    BW_EINVAL = -1,    /* bad input from the caller (400) */
    BW_ENOTFOUND = -2, /* no such model / file / request (404) */
    BW_EBUSY = -3,     /* no room now: queue full, pool at its budget (503 or wait) */
    BW_ENOMEM = -4,    /* allocation failed */
    BW_EIO = -5,       /* file or socket I/O failed */
    BW_ERUNNER = -6,   /* the runner or libllama failed */
    BW_ETOOLONG = -7,  /* prompt does not fit the model's context even after the cut (400) */
    BW_ENOSPC = -8,    /* the disk is full, or too full for what was announced (507) */
};

struct bw_err {
    int code;
    char msg[256];
};

/* Fill e (when not NULL) with code and a printf-formatted message; returns code. */
int bw_errf(struct bw_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A short constant name for a code ("invalid argument", ...). Never NULL. */
const char *bw_strerror(int code);

#endif
