/*
 * Futex waits and wakes (src/base/futex.c): a wait on a word that no
 * longer holds the expected value returns at once, a wait with a timeout
 * ends, and wake_all ends the sleep of a thread waiting on the word, in a
 * private word and in a shared one.
 */
#define _GNU_SOURCE /* syscall(SYS_gettid) */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "futex.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wait_on_another_value_returns_at_once(void **state)
{
    (void)state;
    _Atomic uint32_t word = 5;
    struct timespec long_wait = {600, 0};
    double t0 = now_s();
    jm__futex_wait(&word, 4, &long_wait, 0);
    jm__futex_wait(&word, 4, &long_wait, 1);
    assert_true(now_s() - t0 < 300); /* far below the 600 s it would sleep */
}

static void wait_ends_at_its_timeout(void **state)
{
    (void)state;
    _Atomic uint32_t word = 0;
    struct timespec short_wait = {0, 20 * 1000 * 1000};
    jm__futex_wait(&word, 0, &short_wait, 0);
    jm__futex_wait(&word, 0, &short_wait, 1);
    assert_int_equal(atomic_load(&word), 0);
}

typedef struct sleeper {
    _Atomic uint32_t word;
    int shared;
    int woke;
    _Atomic long tid;
} sleeper;

static void *sleep_until_changed(void *arg)
{
    sleeper *s = arg;
    atomic_store(&s->tid, (long)syscall(SYS_gettid));
    while (atomic_load(&s->word) == 0)
        jm__futex_wait(&s->word, 0, NULL, s->shared);
    s->woke = 1;
    return NULL;
}

/* Whether thread `tid` of this process is asleep (state S). */
static int asleep(long tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *end = strrchr(buf, ')'); /* the name may hold spaces */
    return end && end[1] == ' ' && end[2] == 'S';
}

/* The sleeper is asleep on the word before it changes, so without the
 * wake its wait, which has no timeout, never returns and the join hangs
 * until the test's time limit. */
static void wake_all_ends_a_sleep(void **state)
{
    (void)state;
    for (int shared = 0; shared <= 1; shared++) {
        sleeper s = {0, shared, 0, 0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, sleep_until_changed, &s), 0);
        while (atomic_load(&s.tid) == 0 || !asleep(atomic_load(&s.tid)))
            sched_yield();
        atomic_store(&s.word, 1);
        jm__futex_wake_all(&s.word, shared);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(s.woke, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wait_on_another_value_returns_at_once),
        cmocka_unit_test(wait_ends_at_its_timeout),
        cmocka_unit_test(wake_all_ends_a_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
