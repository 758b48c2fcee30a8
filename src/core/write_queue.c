/*
 * Group commit for callers' writes (creates, cancels, retries,
 * checkpoints). Writers queue up; the one at the head is the leader: it
 * takes every write queued behind it, has the store apply them in one
 * transaction and one sync, then hands each its result and the head to
 * the next leader. While one group syncs, the next one gathers, so N
 * threads pay about one sync per group instead of N; a writer alone is
 * the leader at once and waits for no company.
 */
#include "write_queue.h"

#include "error.h"
#include "manager.h"

struct jm__queued_write {
    jm__write *w;
    jm__queued_write *next;
    int done;
};

int jm__write_queue_init(jm__write_queue *q)
{
    q->head = q->tail = NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return jm__seterr(JM_ENOMEM, "cannot create the write queue's lock");
    if (pthread_cond_init(&q->turn, NULL) != 0) {
        pthread_mutex_destroy(&q->lock);
        return jm__seterr(JM_ENOMEM, "cannot create the write queue's condition");
    }
    return JM_OK;
}

void jm__write_queue_destroy(jm__write_queue *q)
{
    pthread_cond_destroy(&q->turn);
    pthread_mutex_destroy(&q->lock);
}

int jm__write_submit(jm_manager *m, jm__write *w)
{
    jm__write_queue *q = &m->writes;
    jm__queued_write me = {w, NULL, 0};
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = &me;
    else
        q->head = &me;
    q->tail = &me;
    while (!me.done && q->head != &me)
        pthread_cond_wait(&q->turn, &q->lock);
    if (me.done) {
        pthread_mutex_unlock(&q->lock);
        return w->rc ? jm__seterr(w->rc, "%s", w->err) : JM_OK;
    }
    /* The leader: everything queued so far goes in this group. */
    jm__write *group[JM_WRITE_GROUP_MAX];
    size_t n = 0;
    for (jm__queued_write *p = &me; p && n < JM_WRITE_GROUP_MAX; p = p->next)
        group[n++] = p->w;
    pthread_mutex_unlock(&q->lock);

    jm__db_lock(m);
    m->ops->write_group(m->store, group, n);
    jm__db_unlock(m);
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++) {
        jm__queued_write *p = q->head;
        q->head = p->next;
        p->done = 1;
    }
    if (!q->head)
        q->tail = NULL;
    pthread_cond_broadcast(&q->turn);
    pthread_mutex_unlock(&q->lock);
    /* Alone, the store set this thread's error itself; in a group it ran
     * for everyone on this thread, so the leader too takes its own. */
    if (n > 1 && w->rc)
        return jm__seterr(w->rc, "%s", w->err);
    return w->rc;
}
