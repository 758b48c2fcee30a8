/*
 * What every part of the core shares through the manager: its clocks (the
 * host's wall clock, the monotonic one for timers) and the store
 * connection's ticket lock. Opening and closing is in lifecycle.c.
 */
#include "manager.h"

#include <time.h>

int64_t jm__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jm__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t system_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jm__now(const jm_manager *m)
{
    return m->cfg.now_ms ? m->cfg.now_ms(m->cfg.now_user) : system_now();
}

void jm__db_lock(jm_manager *m)
{
    pthread_mutex_lock(&m->db_lock);
    uint64_t ticket = m->db_next_ticket++;
    while (ticket != m->db_serving)
        pthread_cond_wait(&m->db_turn, &m->db_lock);
    pthread_mutex_unlock(&m->db_lock);
}

void jm__db_unlock(jm_manager *m)
{
    pthread_mutex_lock(&m->db_lock);
    m->db_serving++;
    if (m->db_next_ticket != m->db_serving)
        pthread_cond_broadcast(&m->db_turn);
    pthread_mutex_unlock(&m->db_lock);
}
