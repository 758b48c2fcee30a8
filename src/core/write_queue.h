/* Group commit of callers' writes (write_queue.c). */
#ifndef JM_WRITE_QUEUE_H
#define JM_WRITE_QUEUE_H

#include <pthread.h>

#include "store.h"

/* The most writes one transaction takes. */
#define JM_WRITE_GROUP_MAX 128

typedef struct jm__queued_write jm__queued_write;

typedef struct jm__write_queue {
    pthread_mutex_t lock;
    pthread_cond_t turn; /* a write was done, or a new leader may go */
    jm__queued_write *head, *tail;
} jm__write_queue;

int jm__write_queue_init(jm__write_queue *q);
void jm__write_queue_destroy(jm__write_queue *q);

/* Applies `w`, in one transaction with the writes other threads submit
 * meanwhile. Returns w->rc, with this thread's jm_last_error() set when it
 * failed. */
int jm__write_submit(jm_manager *m, jm__write *w);

#endif
