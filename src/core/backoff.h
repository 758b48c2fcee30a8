/* The retry delay policy, a pure function so it can be tested alone. */
#ifndef JM_BACKOFF_H
#define JM_BACKOFF_H

#include <stdint.h>

/* min(max_ms, base_ms * 2^(retry_count-1)), cut by up to `jitter` (0..1)
 * times `unit_random` (0..1). retry_count counts from 1. */
int64_t jm__backoff_delay(int64_t base_ms, int64_t max_ms, double jitter, int retry_count,
                          double unit_random);

#endif
