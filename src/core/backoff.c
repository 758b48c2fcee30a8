/* Exponential backoff with jitter. Retries are timestamps in the job row,
 * never sleeping workers; this only computes how far ahead. */
#include "core/backoff.h"

#include <stdatomic.h>
#include <time.h>

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

/* splitmix64 over an atomic counter: cheap, lock-free, good enough for
 * spreading retries; not for anything secret. */
double jm__random_unit(void)
{
    static _Atomic uint64_t state;
    uint64_t s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ 0x9E3779B97F4A7C15ull;
        atomic_compare_exchange_strong(&state, &s, seed);
    }
    uint64_t z = atomic_fetch_add_explicit(&state, 0x9E3779B97F4A7C15ull, memory_order_relaxed);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
