/*
 * I/O budgets (throttle.c): one token bucket per priority class, shared by
 * every worker of a manager, spent by executors through jm_ctx_throttle().
 */
#ifndef JM_THROTTLE_H
#define JM_THROTTLE_H

#include <pthread.h>
#include <stdint.h>

#include "jobmgr.h"

typedef struct jm__throttle_waiter jm__throttle_waiter;

/* One class's bucket. `tokens` may go negative: a request larger than the
 * bucket leaves a debt the next requests wait off. */
typedef struct jm__bucket {
    int64_t rate;          /* bytes per second; 0: unlimited */
    double tokens;         /* bytes that may pass now, at most the burst */
    int64_t refilled_us;   /* monotonic µs tokens were last brought up to */
    jm__throttle_waiter *head, *tail; /* requests waiting, served in order */
    int64_t spent_bytes;   /* granted since the manager opened (metrics) */
    int64_t waited_us;     /* time callers spent waiting (metrics) */
} jm__bucket;

typedef struct jm__throttle {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* CLOCK_MONOTONIC; broadcast on any change */
    jm__bucket buckets[JM_CLASS_COUNT];
} jm__throttle;

/* JM_OK or JM_ENOMEM. Every class starts unlimited. */
int jm__throttle_init(jm__throttle *t);
/* No caller may be waiting. */
void jm__throttle_destroy(jm__throttle *t);

/* Wakes every jm_ctx_throttle() waiter of the manager to look at its
 * context again. Call it after setting a context's cancelled, shutdown,
 * lost or paused flag, so a waiting job returns at once. Takes the
 * throttle's own lock: safe with m->lock held (which is taken before it,
 * never after). */
void jm__throttle_wake(jm_manager *m);

/* The metrics: bytes granted and µs waited, by class. */
void jm__throttle_totals(jm_manager *m, int64_t bytes[JM_CLASS_COUNT],
                         int64_t wait_us[JM_CLASS_COUNT]);

#endif
