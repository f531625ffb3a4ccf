/* textout.h -- turn a sequence's decoded token pieces into text that is safe to stream.
 *
 * The engine decodes one token at a time into a byte piece. A piece may be part of a UTF-8
 * character, and a stop string may span several pieces. Each piece goes through
 * textout_push(), which says which bytes may be sent to the client now and whether a stop
 * string was found; textout_flush() releases what is still held when generation ends.
 *
 * Pure logic: no I/O, no clock, no libllama. Not thread-safe: one struct textout per
 * sequence, used only by the thread that owns the sequence (the runner's engine loop).
 *
 * DESIGN
 * The struct keeps only the pending bytes (decoded but not yet emitted). A push appends the
 * piece and emits the longest prefix of pending bytes that can no longer change:
 *   - Text is held from the earliest position where a suffix of the pending bytes is a
 *     proper prefix of some stop string (it could still become one across pieces), and
 *   - a trailing incomplete UTF-8 sequence is held (a character is never split).
 * Everything before the hold point is emitted and dropped from the buffer, so the pending
 * bytes stay shorter than the longest stop string plus 3, and each push costs
 * O((pending + piece) x n_stops x longest stop), whatever the length of the generation.
 *
 * Stops. Matching is on raw bytes. The result is the text before the EARLIEST-STARTING
 * occurrence of any stop string in the whole stream, whatever the piece boundaries: a
 * complete stop ends the stream at once unless a longer stop could still complete at an
 * earlier position (stops "bc" and "abcd", pending "abc": held until the next byte
 * decides). When two stops start at the same position the cut is the same either way.
 * The stop string and everything after it are discarded.
 *
 * Invalid UTF-8. Emitted text is always valid UTF-8 (it goes into JSON strings). Bytes that
 * can never become valid UTF-8 are not held: each maximal ill-formed subpart (a stray
 * continuation byte, a byte that is never valid such as 0xC0/0xF5..0xFF, an overlong or
 * surrogate start, a lead byte whose sequence is cut short by a non-continuation byte) is
 * replaced by one U+FFFD (EF BF BD), as Unicode recommends and Python's
 * decode("utf-8", "replace") does. A sequence still incomplete when the stream ends (flush,
 * or the bytes just before a stop string) becomes one U+FFFD as well. So for valid UTF-8
 * input the emitted bytes are exactly the input bytes up to the stop.
 */
#ifndef BELLOWS_TEXTOUT_H
#define BELLOWS_TEXTOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct textout_stop {
    char *str;  /* owned copy, NUL-terminated */
    size_t len; /* > 0 */
};

/* Caller-provided storage; fields are private to textout.c. */
struct textout {
    struct textout_stop *stops; /* owned array of n_stops copies */
    size_t n_stops;
    size_t stop_max_len;        /* longest stop string, 0 when there are none */

    char *pending;              /* bytes decoded but not yet emitted (owned) */
    size_t pending_len, pending_cap;

    char *emit;                 /* text handed out by the last call (owned, NUL-terminated) */
    size_t emit_cap;

    uint64_t emitted_len;       /* total bytes handed out so far */
    uint64_t pushed_in;         /* total input bytes pushed */
    uint64_t released_in;       /* of those, the ones emitted (or replaced); a stop and what
                                   follows it are never released */
    size_t stop_idx;            /* which stop matched, when stopped */
    bool stopped;               /* a stop string was found */
    bool done;                  /* stopped or flushed: later calls emit nothing */
};

/* What one push or flush releases. */
struct textout_emit {
    const char *text; /* borrowed from t, never NULL, NUL-terminated (the bytes may contain NULs);
                       * valid until the next call on t (push, flush or fini) */
    size_t len;       /* bytes in text, may be 0 */
    bool stopped;     /* a stop string ended the stream; text is everything before it */
    size_t stop_idx;  /* index into the stops given to textout_init(), valid when stopped */
};

/* Set up t with a copy of the n_stops stop strings (each NUL-terminated and non-empty;
 * duplicates are fine). stops may be NULL when n_stops is 0. The caller keeps ownership of
 * stops; t owns its copies and textout_fini() frees them.
 * Returns BW_OK, BW_EINVAL (stops NULL with n_stops > 0, a NULL or empty stop string) or
 * BW_ENOMEM. On error nothing stays allocated and *t is zeroed, so textout_fini(t) is
 * harmless. */
int textout_init(struct textout *t, const char *const *stops, size_t n_stops);

/* Free what t owns and zero it. Safe on a zeroed struct and when called twice.
 * Pointers handed out in a struct textout_emit become invalid. Can't fail. */
void textout_fini(struct textout *t);

/* Append len bytes of piece (piece may be NULL when len is 0) and fill *out with the text
 * now safe to send and whether a stop string was found (see DESIGN).
 * Once t is done (a stop was found, or textout_flush() was called) a push is a no-op: it
 * returns BW_OK with empty text and out->stopped repeating whether a stop was found.
 * Returns BW_OK, BW_EINVAL (piece NULL with len > 0) or BW_ENOMEM; on error t and *out are
 * unchanged (the text from the previous call is still valid). */
int textout_push(struct textout *t, const char *piece, size_t len, struct textout_emit *out);

/* End of generation (EOS, length limit, cancel): release everything still held and mark t
 * done. A stop string complete in the held bytes still cuts the text there (out->stopped is
 * then true); a trailing incomplete UTF-8 sequence is emitted as one U+FFFD. Later pushes
 * and flushes are no-ops as described at textout_push(). Returns BW_OK; can't fail. */
int textout_flush(struct textout *t, struct textout_emit *out);

/* Total bytes handed out through struct textout_emit since textout_init() (after U+FFFD
 * replacement, so this counts what the client receives). */
uint64_t textout_emitted_len(const struct textout *t);

/* Input bytes pushed since textout_init(), and the first of them that have been handed
 * out (before U+FFFD replacement: input positions). Once a stop string was found, released
 * stays at the stop's start: the stop and everything after it are never released. So an
 * input byte at position p has reached the client when p < textout_released_len(). What
 * the engine aligns each token's log-probability with (logprobs.h). */
uint64_t textout_pushed_len(const struct textout *t);
uint64_t textout_released_len(const struct textout *t);

/* Copy src[0..n) to dst, replacing each maximal ill-formed subpart, and an incomplete
 * sequence at the very end, by U+FFFD (the rule of DESIGN above). dst needs room for 3 * n
 * bytes. Returns the bytes written. Pure; no state. */
size_t textout_utf8_sanitize(char *dst, const char *src, size_t n);

/* Bytes currently held back (pushed but not yet emitted). 0 once t is done. */
size_t textout_pending_len(const struct textout *t);

#endif
