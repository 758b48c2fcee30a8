/*
 * Group commit for callers' writes (creates, cancels, retries,
 * checkpoints). Writers queue up; the one at the head is the leader: it
 * takes the database, has the store open a transaction for every write
 * queued behind it, commits and syncs once, then hands each writer its
 * result and the head to the next leader. N threads pay about one sync per
 * group instead of N.
 *
 * A leader that went with only those queued when it took over would miss
 * the writers the last sync just released, still on their way back:
 * groups alternate between two halves of the writers (8 threads made
 * groups of about 4). So when the last group ended no longer ago than its
 * commit took, the group stays open, its writes already applied, until as
 * many writers as were active at that group's end have joined, or for at
 * most half that commit. A writer alone, or one arriving after a pause,
 * commits at once and waits for no company.
 *
 * Syncing a group apart from its commit, so that the next group writes
 * meanwhile, was measured and left out: with writers that wait for their
 * answer, the writers of the group syncing cannot be in the next one, so
 * groups halved and the rate fell by a fifth.
 */
#include "write_queue.h"

#include <time.h>

#include "error.h"
#include "manager.h"

/* Each waiter has its own condition, so a group's end wakes the writers
 * it finished and the next leader, not every writer still queued. */
struct jm__queued_write {
    jm__write *w;
    jm__queued_write *next;
    int done;
    pthread_cond_t wake;
};

/* The group a leader has open: its members in queue order. */
typedef struct group {
    jm__write_queue *q;
    jm__queued_write *member[JM__WRITE_GROUP_MAX];
    size_t n;
    size_t want;      /* members to wait for */
    struct timespec until; /* ... at the longest (CLOCK_MONOTONIC) */
} group;

int jm__write_queue_init(jm__write_queue *q)
{
    *q = (jm__write_queue){0};
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return jm__seterr(JM_ENOMEM, "cannot create the write queue's lock");
    pthread_condattr_t attr;
    int ok = pthread_condattr_init(&attr) == 0;
    if (ok) {
        ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&q->arrive, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    if (!ok) {
        pthread_mutex_destroy(&q->lock);
        return jm__seterr(JM_ENOMEM, "cannot create the write queue's condition");
    }
    return JM_OK;
}

void jm__write_queue_destroy(jm__write_queue *q)
{
    pthread_cond_destroy(&q->arrive);
    pthread_mutex_destroy(&q->lock);
}

/* With q->lock held: how many members the group should wait for, and
 * until when; 0 if it should not wait. */
static size_t plan_wait(const jm__write_queue *q, struct timespec *until)
{
    if (q->expect <= 1 || q->queued >= q->expect)
        return 0;
    int64_t now = jm__mono_us();
    int64_t wait = q->last_commit_us / 2;
    if (wait > JM_WRITE_GATHER_MAX_US)
        wait = JM_WRITE_GATHER_MAX_US;
    if (now - q->last_end_us > q->last_commit_us || wait <= 0)
        return 0;
    int64_t deadline = now + wait;
    *until = (struct timespec){(time_t)(deadline / 1000000), (long)(deadline % 1000000) * 1000};
    return q->expect < JM__WRITE_GROUP_MAX ? q->expect : JM__WRITE_GROUP_MAX;
}

/* The store's `more`: the next queued write, waiting for it while the
 * group is short of what it expects. */
static jm__write *next_member(void *ctx)
{
    group *g = ctx;
    jm__write_queue *q = g->q;
    jm__write *w = NULL;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        jm__queued_write *p = g->member[g->n - 1]->next;
        if (p && g->n < JM__WRITE_GROUP_MAX) {
            g->member[g->n++] = p;
            w = p->w;
            break;
        }
        if (g->n >= g->want)
            break;
        q->gathering = 1;
        int rc = pthread_cond_timedwait(&q->arrive, &q->lock, &g->until);
        q->gathering = 0;
        if (rc != 0)
            g->want = 0; /* timed out: take what has come, then commit */
    }
    pthread_mutex_unlock(&q->lock);
    return w;
}

/* The leader's part: writes the group headed by `me`. Called and returns
 * with q->lock held. */
static void lead(jm_manager *m, jm__queued_write *me)
{
    jm__write_queue *q = &m->writes;
    pthread_mutex_unlock(&q->lock);
    jm__db_lock(m);
    /* The group is taken once the database is ours: whoever queued while
     * the lock was busy goes in it too. */
    group g = {.q = q};
    jm__write *first[JM__WRITE_GROUP_MAX];
    pthread_mutex_lock(&q->lock);
    for (jm__queued_write *p = me; p && g.n < JM__WRITE_GROUP_MAX; p = p->next) {
        g.member[g.n] = p;
        first[g.n++] = p->w;
    }
    g.want = plan_wait(q, &g.until);
    pthread_mutex_unlock(&q->lock);
    size_t nfirst = g.n;
    int64_t began = jm__mono_us();
    m->ops->write_group(m->store, first, nfirst, g.want > g.n ? next_member : NULL, &g);
    int64_t ended = jm__mono_us();
    jm__db_unlock(m);

    pthread_mutex_lock(&q->lock);
    q->head = g.member[g.n - 1]->next;
    if (q->head)
        pthread_cond_signal(&q->head->wake);
    else
        q->tail = NULL;
    q->queued -= g.n;
    q->expect = g.n + q->queued;
    q->last_end_us = ended;
    q->last_commit_us = ended - began;
    for (size_t i = 0; i < g.n; i++) {
        g.member[i]->done = 1;
        if (g.member[i] != me)
            pthread_cond_signal(&g.member[i]->wake);
    }
}

int jm__write_submit(jm_manager *m, jm__write *w)
{
    jm__write_queue *q = &m->writes;
    jm__queued_write me = {w, NULL, 0, PTHREAD_COND_INITIALIZER};
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = &me;
    else
        q->head = &me;
    q->tail = &me;
    q->queued++;
    if (q->gathering)
        pthread_cond_signal(&q->arrive);
    while (!me.done && q->head != &me)
        pthread_cond_wait(&me.wake, &q->lock);
    int led = !me.done;
    if (led)
        lead(m, &me);
    pthread_mutex_unlock(&q->lock);
    pthread_cond_destroy(&me.wake);
    /* Alone, the store set this thread's error itself; in a group it ran
     * for everyone on this thread, so the leader too takes its own. */
    if (w->rc && (!led || w->err[0]))
        return jm__seterr(w->rc, "%s", w->err);
    return w->rc;
}
