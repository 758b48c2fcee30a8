/* Exponential backoff with jitter. Retries are timestamps in the job row,
 * never sleeping workers; this only computes how far ahead. */
#include "backoff.h"

int64_t jm__backoff_delay(int64_t base_ms, int64_t max_ms, double jitter, int retry_count,
                          double unit_random)
{
    if (base_ms < 0)
        base_ms = 0;
    if (retry_count < 1)
        retry_count = 1;
    int64_t d = base_ms;
    for (int i = 1; i < retry_count && d > 0 && d < max_ms; i++)
        d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
    if (d > max_ms)
        d = max_ms;
    if (jitter > 0 && unit_random > 0)
        d -= (int64_t)((double)d * jitter * unit_random);
    return d < 0 ? 0 : d;
}
