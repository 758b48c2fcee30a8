/* Group commit of callers' writes (write_queue.c). */
#ifndef JM_WRITE_QUEUE_H
#define JM_WRITE_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store.h"

/* The longest a group stays open for writers it expects, in µs, whatever
 * the last commit took. */
#define JM_WRITE_GATHER_MAX_US 1000

typedef struct jm__queued_write jm__queued_write;

typedef struct jm__write_queue {
    pthread_mutex_t lock;
    jm__queued_write *head, *tail;
    _Atomic uint32_t epoch; /* moved on at each group's end (a futex word) */
    size_t queued;          /* writes in the queue, the leader's included */
    size_t expect;          /* writers active at the end of the last group */
    int64_t last_end_us;    /* when the last group was done (monotonic) */
    int64_t last_commit_us; /* how long its write and commit took */
} jm__write_queue;

int jm__write_queue_init(jm__write_queue *q);
void jm__write_queue_destroy(jm__write_queue *q);

/* Applies `w`, in one transaction with the writes other threads submit
 * meanwhile. Returns w->rc, with this thread's jm_last_error() set when it
 * failed. */
int jm__write_submit(jm_manager *m, jm__write *w);

#endif
