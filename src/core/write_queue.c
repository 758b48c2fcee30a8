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
 * While it waits for them the leader yields its core instead of sleeping:
 * they arrive microseconds apart, and a sleep and wake-up per arrival cost
 * more than their inserts. On a 2-core virtual machine, 8 writers went
 * from about 18k to 22-24k creates/s, and from 35 to 27 us of CPU per
 * create. The yielding is bounded by the wait above: at most a third of
 * one core while groups commit back to back, none for a writer alone.
 *
 * Syncing a group apart from its commit, so that the next group writes
 * meanwhile, was measured and left out: with writers that wait for their
 * answer, the writers of the group syncing cannot be in the next one, so
 * groups halved and the rate fell by a fifth.
 */
#include "write_queue.h"

#include <sched.h>
#include <stdatomic.h>

#include "error.h"
#include "futex.h"
#include "manager.h"

/* What a queued writer waits for: its write done, or its turn to lead. */
enum { W_WAIT, W_DONE, W_LEAD };

/* A waiter's state is set by the leader, after the queue's lock is
 * released: a writer woken by its group's end returns without taking that
 * lock again, where a condition variable would make every writer of the
 * group queue on it behind the leader. */
struct jm__queued_write {
    jm__write *w;
    jm__queued_write *next;
    _Atomic uint32_t state;
};

/* Sleeps until a leader has set this writer's state. The leader sets the
 * states of its whole group, then moves the queue's epoch on and wakes
 * every sleeper with one call: one system call instead of one per writer
 * (7 took 46 us on a virtual machine, on the path to the next group).
 * Writers queued behind the group wake too and sleep again; they are few,
 * as a group takes everyone queued up to JM__WRITE_GROUP_MAX. */
static void state_wait(jm__write_queue *q, _Atomic uint32_t *state)
{
    for (;;) {
        uint32_t e = atomic_load(&q->epoch);
        if (atomic_load(state) != W_WAIT)
            return;
        jm__futex_wait(&q->epoch, e, NULL, 0);
    }
}

static void wake_all(jm__write_queue *q)
{
    atomic_fetch_add(&q->epoch, 1);
    jm__futex_wake_all(&q->epoch, 0);
}

/* The group a leader has open: its members in queue order. */
typedef struct group {
    jm__write_queue *q;
    jm__queued_write *member[JM__WRITE_GROUP_MAX];
    size_t n;
    size_t want;       /* members to wait for */
    int64_t until_us;  /* ... at the longest (monotonic) */
} group;

int jm__write_queue_init(jm__write_queue *q)
{
    *q = (jm__write_queue){0};
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return jm__seterr(JM_ENOMEM, "cannot create the write queue's lock");
    return JM_OK;
}

void jm__write_queue_destroy(jm__write_queue *q)
{
    pthread_mutex_destroy(&q->lock);
}

/* With q->lock held: how many members the group should wait for, and
 * until when; 0 if it should not wait. */
static size_t plan_wait(const jm__write_queue *q, int64_t *until_us)
{
    if (q->expect <= 1 || q->queued >= q->expect)
        return 0;
    int64_t now = jm__mono_us();
    int64_t wait = q->last_commit_us / 2;
    if (wait > JM_WRITE_GATHER_MAX_US)
        wait = JM_WRITE_GATHER_MAX_US;
    if (now - q->last_end_us > q->last_commit_us || wait <= 0)
        return 0;
    *until_us = now + wait;
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
        if (jm__mono_us() >= g->until_us) {
            g->want = 0; /* out of time: take what has come, then commit */
            continue;
        }
        pthread_mutex_unlock(&q->lock);
        sched_yield();
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return w;
}

/* The leader's part: writes the group headed by `me`. Called with q->lock
 * held, returns without it. */
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
    g.want = plan_wait(q, &g.until_us);
    pthread_mutex_unlock(&q->lock);
    size_t nfirst = g.n;
    int64_t began = jm__mono_us();
    m->ops->write_group(m->store, first, nfirst, g.want > g.n ? next_member : NULL, &g);
    int64_t ended = jm__mono_us();
    jm__db_unlock(m);

    pthread_mutex_lock(&q->lock);
    jm__queued_write *next = q->head = g.member[g.n - 1]->next;
    if (!next)
        q->tail = NULL;
    q->queued -= g.n;
    q->expect = g.n + q->queued;
    q->last_end_us = ended;
    q->last_commit_us = ended - began;
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; i < g.n; i++)
        if (g.member[i] != me)
            atomic_store(&g.member[i]->state, W_DONE);
    if (next)
        atomic_store(&next->state, W_LEAD);
    if (g.n > 1 || next) /* a writer alone makes no system call */
        wake_all(q);
}

int jm__write_submit(jm_manager *m, jm__write *w)
{
    jm__write_queue *q = &m->writes;
    jm__queued_write me = {w, NULL, W_WAIT};
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = &me;
    else
        q->head = &me;
    q->tail = &me;
    q->queued++;
    int led = q->head == &me;
    if (!led) {
        pthread_mutex_unlock(&q->lock);
        state_wait(q, &me.state);
        led = atomic_load_explicit(&me.state, memory_order_acquire) == W_LEAD;
        if (led)
            pthread_mutex_lock(&q->lock);
    }
    if (led)
        lead(m, &me);
    /* Alone, the store set this thread's error itself; in a group it ran
     * for everyone on this thread, so the leader too takes its own. */
    if (w->rc && (!led || w->err[0]))
        return jm__seterr(w->rc, "%s", w->err);
    return w->rc;
}
