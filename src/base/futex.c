/* Futex waits and wakes (futex.h). */
#define _GNU_SOURCE /* syscall(SYS_futex) */
#include "futex.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void jm__futex_wait(_Atomic uint32_t *word, uint32_t expect, const struct timespec *timeout,
                    int shared)
{
    syscall(SYS_futex, (uint32_t *)word, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, expect,
            timeout, NULL, 0);
}

void jm__futex_wake_all(_Atomic uint32_t *word, int shared)
{
    syscall(SYS_futex, (uint32_t *)word, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
            NULL, 0);
}
