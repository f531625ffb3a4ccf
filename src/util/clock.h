/* clock.h -- the clocks every module reads: monotonic for durations and deadlines, real
 * time for timestamps. One definition instead of a copy per file. Thread-safe. */
#ifndef BELLOWS_CLOCK_H
#define BELLOWS_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);
/* Unix time in nanoseconds. */
int64_t clock_real_ns(void);
/* CLOCK_REALTIME now + ms, as pthread_cond_timedwait wants it. */
struct timespec clock_deadline(int64_t ms);

#endif
