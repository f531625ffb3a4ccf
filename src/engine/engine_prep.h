/* engine_prep.h -- large requests prepared off the runner's loop (issue 13 item 2).
 *
 * Rendering a chat through its template, tokenizing it and cutting it to Cmax costs time
 * in proportion to the request: seconds for a chat of many megabytes. On the loop that
 * would stall every other request of the model. engine_submit_owned() sends a request past
 * a size threshold to the engine's preparation thread (one, started on first use) and
 * returns at once; the loop goes on decoding the others. When the preparation ends, the
 * engine's wake-up descriptor becomes readable and engine_has_work() true; the next
 * engine_step() picks the prepared job up on the loop -- samplers, stop strings, the
 * queue -- exactly as engine_submit() would have, and only then is it admitted.
 *
 * What the thread shares with the loop: the vocabulary (llama_tokenize is const in
 * libllama, no caches: llama-server tokenizes on its HTTP threads while decoding too), the
 * GGUF's parsed templates (read-only while rendering: jinja.h) and fields set at
 * engine_new. A Modelfile TEMPLATE is parsed for the request itself, not shared through the
 * loop's cache; the seed, the sampler and the queue are the loop's, after preparation.
 *
 * Events: as for engine_submit, exactly one DONE or ERROR ends each request. An error
 * found while preparing comes as an ERROR event (engine_submit would have returned it). A
 * request cancelled while preparing stops at the next check (between messages, between the
 * cut's probes) and ends with DONE, done_reason "cancel". A preparation that runs past the
 * timeout (default 30 s) ends with ERROR BW_ETOOLONG "preparing the prompt took longer than
 * N s ...". Small requests are prepared on the loop as before: same tokens, same events. */
#ifndef BELLOWS_ENGINE_PREP_H
#define BELLOWS_ENGINE_PREP_H

#include "engine/engine.h"

/* Called once the engine no longer needs the memory behind a request (see below). */
typedef void (*engine_release_fn)(void *ud);

/* engine_submit, for a request whose memory (r and everything it points to) the caller
 * hands over: it stays valid until the engine calls release(ud) -- before this returns when
 * the request was prepared on the loop (whatever the result), or later, from the loop
 * thread (inside engine_step or engine_free), when it went to the preparation thread.
 * Returns what engine_submit returns; BW_OK when queued for preparation. */
int engine_submit_owned(struct engine *e, const struct engine_request *r, engine_release_fn release, void *ud,
                        struct bw_err *err);

/* A descriptor that becomes readable when a preparation has ended (the loop polls it with
 * its socket; engine_step drains it), or -1 while none was ever started (poll ignores it). */
int engine_wake_fd(const struct engine *e);

/* async_bytes: a request of at least this many bytes of text (messages count 16 each on
 * top) is prepared off the loop; 0: 256 KiB; < 0: never (everything on the loop).
 * timeout_ms: a preparation running longer is refused; 0: 30 s. */
void engine_prep_config(struct engine *e, int64_t async_bytes, int64_t timeout_ms);

#endif
