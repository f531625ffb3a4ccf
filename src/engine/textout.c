/* textout.c -- see textout.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "engine/textout.h"

#include "util/err.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX

static const char empty_text[] = "";

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* Classify the bytes at s[0..n), n >= 1 (well-formedness per Unicode table 3-7).
 * Returns L > 0: a complete, valid sequence of L bytes starts at s.
 * Returns 0: s[0..n) is a valid but incomplete start of a sequence (more bytes may fix it).
 * Returns -k (k >= 1): ill-formed; s[0..k) is a maximal ill-formed subpart (one U+FFFD). */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    size_t need;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlongs */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return -1; /* continuation byte, C0, C1, F5..FF */
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n)
            return 0;
        if (s[i] < lo || s[i] > hi)
            return -(int)i;
        lo = 0x80;
        hi = 0xBF;
    }
    return (int)need;
}

/* Where the trailing incomplete (but still possibly valid) sequence of s[0..n) starts, or n
 * when there is none. Only the last 3 bytes can start one. */
static size_t utf8_tail_start(const unsigned char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (utf8_seq(s + n - k, k) == 0)
            return n - k;
    return n;
}

size_t textout_utf8_sanitize(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0;

    while (i < n) {
        if (s[i] < 0x80) {
            dst[o++] = (char)s[i++];
            continue;
        }
        int r = utf8_seq(s + i, n - i);
        if (r > 0) {
            memcpy(dst + o, s + i, (size_t)r);
            o += (size_t)r;
            i += (size_t)r;
        } else {
            memcpy(dst + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i = r == 0 ? n : i + (size_t)-r;
        }
    }
    return o;
}

/* ---- stop strings --------------------------------------------------------------------- */

/* Earliest start of a complete stop string in s[0..n); NONE if none. *idx gets its index
 * (the first listed among stops starting there). */
static size_t find_full(const struct textout *t, const char *s, size_t n, size_t *idx)
{
    size_t best = NONE;

    for (size_t i = 0; i < t->n_stops; i++) {
        const struct textout_stop *st = &t->stops[i];
        if (st->len > n)
            continue;
        /* Only a match starting before best matters. */
        size_t hay = best == NONE ? n : best - 1 + st->len;
        if (hay > n)
            hay = n;
        const char *m = memmem(s, hay, st->str, st->len);
        if (m && (size_t)(m - s) < best) {
            best = (size_t)(m - s);
            *idx = i;
        }
    }
    return best;
}

/* Earliest q such that s[q..n) is a non-empty proper prefix of some stop string; n if none. */
static size_t find_partial(const struct textout *t, const char *s, size_t n)
{
    if (t->stop_max_len < 2)
        return n;
    size_t q = n > t->stop_max_len - 1 ? n - (t->stop_max_len - 1) : 0;
    for (; q < n; q++) {
        size_t tail = n - q;
        for (size_t i = 0; i < t->n_stops; i++) {
            const struct textout_stop *st = &t->stops[i];
            if (st->len > tail && memcmp(s + q, st->str, tail) == 0)
                return q;
        }
    }
    return n;
}

/* ---- emitting ------------------------------------------------------------------------- */

static void emit_nothing(const struct textout *t, struct textout_emit *out)
{
    out->text = empty_text;
    out->len = 0;
    out->stopped = t->stopped;
    out->stop_idx = t->stopped ? t->stop_idx : 0;
}

/* Emit pending[0..n) into t->emit (room ensured by textout_push) and drop it from pending.
 * When drop_rest, everything after it is discarded too. */
static void emit_prefix(struct textout *t, size_t n, bool drop_rest, struct textout_emit *out)
{
    size_t len = 0;

    if (t->emit) {
        len = textout_utf8_sanitize(t->emit, t->pending, n);
        t->emit[len] = '\0';
        out->text = t->emit;
    } else {
        assert(n == 0);
        out->text = empty_text;
    }
    out->len = len;
    t->emitted_len += len;
    t->released_in += n;

    size_t rest = drop_rest ? 0 : t->pending_len - n;
    if (rest)
        memmove(t->pending, t->pending + n, rest);
    t->pending_len = rest;
    out->stopped = t->stopped;
    out->stop_idx = t->stopped ? t->stop_idx : 0;
}

/* Decide what the pending bytes release. final: no more bytes will come. */
static void scan(struct textout *t, bool final, struct textout_emit *out)
{
    size_t n = t->pending_len, idx = 0;
    size_t p = find_full(t, t->pending, n, &idx);
    size_t q = final ? n : find_partial(t, t->pending, n);

    if (p != NONE && p <= q) {
        /* Nothing can start earlier than p any more: cut there. */
        t->stopped = true;
        t->stop_idx = idx;
        t->done = true;
        emit_prefix(t, p, true, out);
        return;
    }
    if (final) {
        t->done = true;
        emit_prefix(t, n, true, out);
        return;
    }
    /* Hold from the earliest possible stop start, then never split a character. */
    emit_prefix(t, utf8_tail_start((const unsigned char *)t->pending, q), false, out);
}

/* Grow *buf to hold at least need bytes. Returns BW_OK or BW_ENOMEM (buf unchanged). */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return BW_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    char *nb = realloc(*buf, c);
    if (!nb)
        return BW_ENOMEM;
    *buf = nb;
    *cap = c;
    return BW_OK;
}

/* ---- API ------------------------------------------------------------------------------ */

int textout_init(struct textout *t, const char *const *stops, size_t n_stops)
{
    assert(t);
    memset(t, 0, sizeof *t);
    if (n_stops == 0)
        return BW_OK;
    if (!stops)
        return BW_EINVAL;
    for (size_t i = 0; i < n_stops; i++)
        if (!stops[i] || !stops[i][0])
            return BW_EINVAL;

    t->stops = calloc(n_stops, sizeof *t->stops);
    if (!t->stops)
        return BW_ENOMEM;
    for (size_t i = 0; i < n_stops; i++) {
        size_t len = strlen(stops[i]);
        t->stops[i].str = malloc(len + 1);
        if (!t->stops[i].str) {
            t->n_stops = i;
            textout_fini(t);
            return BW_ENOMEM;
        }
        memcpy(t->stops[i].str, stops[i], len + 1);
        t->stops[i].len = len;
        if (len > t->stop_max_len)
            t->stop_max_len = len;
    }
    t->n_stops = n_stops;
    return BW_OK;
}

void textout_fini(struct textout *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_stops; i++)
        free(t->stops[i].str);
    free(t->stops);
    free(t->pending);
    free(t->emit);
    memset(t, 0, sizeof *t);
}

int textout_push(struct textout *t, const char *piece, size_t len, struct textout_emit *out)
{
    assert(t && out);
    if (!piece && len)
        return BW_EINVAL;
    if (t->done) {
        emit_nothing(t, out);
        return BW_OK;
    }

    size_t n = t->pending_len + len;
    if (n < len || n > (SIZE_MAX - 1) / 3)
        return BW_ENOMEM;
    /* Reserve both buffers before changing anything; emit holds up to 3 bytes per input
     * byte (U+FFFD for one invalid byte) plus the NUL. Neither keeps live data the caller
     * could lose: pending is copied by realloc, and emit's old text is dead after this call. */
    if (reserve(&t->pending, &t->pending_cap, n ? n : 1) != BW_OK ||
        reserve(&t->emit, &t->emit_cap, 3 * n + 1) != BW_OK)
        return BW_ENOMEM;

    if (len)
        memcpy(t->pending + t->pending_len, piece, len);
    t->pending_len = n;
    t->pushed_in += len;
    scan(t, false, out);
    return BW_OK;
}

int textout_flush(struct textout *t, struct textout_emit *out)
{
    assert(t && out);
    if (t->done) {
        emit_nothing(t, out);
        return BW_OK;
    }
    /* The last push reserved room for 3 * (its pending + piece) >= 3 * pending_len. */
    scan(t, true, out);
    return BW_OK;
}

uint64_t textout_emitted_len(const struct textout *t)
{
    return t->emitted_len;
}

uint64_t textout_pushed_len(const struct textout *t)
{
    return t->pushed_in;
}

uint64_t textout_released_len(const struct textout *t)
{
    return t->released_in;
}

size_t textout_pending_len(const struct textout *t)
{
    return t->done ? 0 : t->pending_len;
}
