/* A process-wide source of uniform doubles for jitter and back-off naps. */
#include "random.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

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
