/*
 * I/O budgets: a token bucket per priority class, in bytes per second,
 * shared by every worker of one manager (each manager has its own: the
 * budget is not coordinated across processes). jm_ctx_throttle() waits on
 * a condition variable until its class's bucket allows the bytes, serving
 * the callers of a class in the order they came, so a large request is
 * never starved by a stream of small ones. It returns early when the job
 * is told to stop (cancel, pause, lost lease, shutdown): whoever sets one
 * of those flags calls jm__throttle_wake().
 *
 * It does no I/O and does not know what the bytes are: executors say how
 * many they are about to read or write.
 */
#include "throttle.h"

#include <string.h>
#include <time.h>

#include "ctx.h"
#include "error.h"
#include "lease.h"
#include "manager.h"

#define US_PER_SEC 1000000
#define MS_PER_SEC 1000

/* One caller waiting for its bytes; lives on the caller's stack. */
struct jm__throttle_waiter {
    jm__throttle_waiter *next;
};

int jm__throttle_init(jm__throttle *t)
{
    memset(t, 0, sizeof *t);
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        return jm__seterr(JM_ENOMEM, "cannot create the throttle's lock");
    pthread_condattr_t attr;
    int ok = pthread_condattr_init(&attr) == 0;
    if (ok) {
        ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&t->changed, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    if (!ok) {
        pthread_mutex_destroy(&t->lock);
        return jm__seterr(JM_ENOMEM, "cannot create the throttle's condition");
    }
    return JM_OK;
}

void jm__throttle_destroy(jm__throttle *t)
{
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
}

void jm__throttle_wake(jm_manager *m)
{
    /* Under the lock: a waiter checks the flags and starts waiting
     * atomically with respect to this broadcast, so it cannot miss it. */
    pthread_mutex_lock(&m->throttle.lock);
    pthread_cond_broadcast(&m->throttle.changed);
    pthread_mutex_unlock(&m->throttle.lock);
}

void jm__throttle_totals(jm_manager *m, int64_t bytes[JM_CLASS_COUNT],
                         int64_t wait_us[JM_CLASS_COUNT])
{
    pthread_mutex_lock(&m->throttle.lock);
    for (int i = 0; i < JM_CLASS_COUNT; i++) {
        bytes[i] = m->throttle.buckets[i].spent_bytes;
        wait_us[i] = m->throttle.buckets[i].waited_us;
    }
    pthread_mutex_unlock(&m->throttle.lock);
}

/* The most an idle bucket holds: JM_RATE_LIMIT_BURST_MS of its rate. It is
 * small, so a class that was idle cannot burst far past its rate; a request
 * larger than that still passes, into debt. */
static double burst_of(int64_t rate)
{
    double burst = (double)rate * JM_RATE_LIMIT_BURST_MS / MS_PER_SEC;
    return burst < 1 ? 1 : burst;
}

/* Adds what the rate earned since the last refill. */
static void refill(jm__bucket *b, int64_t now_us)
{
    if (now_us <= b->refilled_us)
        return;
    if (b->rate > 0) {
        b->tokens += (double)b->rate * (double)(now_us - b->refilled_us) / US_PER_SEC;
        double burst = burst_of(b->rate);
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->refilled_us = now_us;
}

int jm_set_rate_limit(jm_manager *m, jm_class cls, int64_t bytes_per_sec)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_set_rate_limit: manager is NULL");
    if ((int)cls < 0 || (int)cls >= JM_CLASS_COUNT)
        return jm__seterr(JM_EINVAL,
                          "jm_set_rate_limit: unknown priority class %d (expected "
                          "JM_CLASS_NORMAL or JM_CLASS_HIGH)",
                          (int)cls);
    if (bytes_per_sec < 0)
        return jm__seterr(JM_EINVAL,
                          "jm_set_rate_limit: bytes_per_sec must be 0 (unlimited) or more, "
                          "not %lld",
                          (long long)bytes_per_sec);
    jm__throttle *t = &m->throttle;
    pthread_mutex_lock(&t->lock);
    jm__bucket *b = &t->buckets[cls];
    refill(b, jm__mono_us());
    if (bytes_per_sec == 0) {
        b->tokens = 0; /* unlimited: no debt to carry over */
    } else if (b->rate == 0) {
        b->tokens = burst_of(bytes_per_sec); /* a new budget starts full */
    } else if (b->tokens > burst_of(bytes_per_sec)) {
        b->tokens = burst_of(bytes_per_sec); /* a debt stays, savings shrink */
    }
    b->rate = bytes_per_sec;
    /* Waiters compute their wait again at the new rate. */
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
    return JM_OK;
}

static int told_to_stop(jm_ctx *ctx)
{
    return atomic_load(&ctx->cancelled) || atomic_load(&ctx->shutdown) ||
           atomic_load(&ctx->lost) || atomic_load(&ctx->paused);
}

static void enqueue(jm__bucket *b, jm__throttle_waiter *w)
{
    w->next = NULL;
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
}

static void dequeue(jm__bucket *b, jm__throttle_waiter *w)
{
    jm__throttle_waiter *prev = NULL;
    for (jm__throttle_waiter *it = b->head; it; prev = it, it = it->next) {
        if (it != w)
            continue;
        if (prev)
            prev->next = w->next;
        else
            b->head = w->next;
        if (b->tail == w)
            b->tail = prev;
        return;
    }
}

/* Waits on the condition until monotonic µs `until_us` at the latest. */
static void wait_until(jm__throttle *t, int64_t until_us)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(until_us / US_PER_SEC);
    ts.tv_nsec = (long)(until_us % US_PER_SEC) * 1000L;
    pthread_cond_timedwait(&t->changed, &t->lock, &ts);
}

int64_t jm_ctx_throttle(jm_ctx *ctx, int64_t bytes)
{
    if (!ctx || bytes <= 0)
        return 0;
    jm_manager *m = ctx->m;
    jm__throttle *t = &m->throttle;
    /* The registry accepts only the classes there are. */
    jm__bucket *b = &t->buckets[ctx->entry.ex.priority_class];
    /* Every heartbeat interval the wait looks at the job's row: that
     * renews the lease of a job run by jm_run_once (no loop thread does)
     * and sees a cancel made by another process on this host. */
    int64_t slice_us = jm__heartbeat_interval_ms(m) * (US_PER_SEC / MS_PER_SEC);
    pthread_mutex_lock(&t->lock);
    int64_t start = jm__mono_us();
    if (b->rate == 0) {
        b->spent_bytes += bytes;
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    jm__throttle_waiter me;
    enqueue(b, &me);
    int granted = 0;
    int64_t look_at = start + slice_us;
    for (;;) {
        if (told_to_stop(ctx))
            break;
        if (b->rate == 0) { /* made unlimited while we waited */
            granted = 1;
            break;
        }
        int64_t now = jm__mono_us();
        refill(b, now);
        int64_t until = look_at;
        if (b->head == &me) {
            /* More than the bucket holds passes once it is full, leaving
             * a debt: large writes still go at the rate. */
            double burst = burst_of(b->rate);
            double need = (double)bytes < burst ? (double)bytes : burst;
            if (b->tokens >= need) {
                b->tokens -= (double)bytes;
                granted = 1;
                break;
            }
            int64_t due = now + (int64_t)((need - b->tokens) * US_PER_SEC / (double)b->rate) + 1;
            if (due < until)
                until = due;
        }
        if (now >= look_at) {
            pthread_mutex_unlock(&t->lock);
            int stop = jm_ctx_is_cancelled(ctx);
            pthread_mutex_lock(&t->lock);
            if (stop)
                break;
            look_at = jm__mono_us() + slice_us;
            continue;
        }
        wait_until(t, until);
    }
    dequeue(b, &me);
    int64_t waited = jm__mono_us() - start;
    if (granted)
        b->spent_bytes += bytes;
    b->waited_us += waited;
    /* The next in line may go now (or compute its wait). */
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
    return waited;
}
