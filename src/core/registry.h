/* Executors keyed by their two-letter type: a direct-indexed table. */
#ifndef JM_REGISTRY_H
#define JM_REGISTRY_H

#include <pthread.h>

#include "jobmgr.h"

#define JM_TYPE_SLOTS (26 * 26)

typedef struct jm__executor_entry {
    jm_executor ex;
    void *self;
    int present;
} jm__executor_entry;

typedef struct jm__registry {
    pthread_mutex_t lock;
    jm__executor_entry slots[JM_TYPE_SLOTS];
    /* "FL,CL,…": what this manager may claim; 3 bytes a type. */
    char types[JM_TYPE_SLOTS * 3 + 1];
    /* ... of them, those of JM_CLASS_HIGH. */
    char high_types[JM_TYPE_SLOTS * 3 + 1];
} jm__registry;

int jm__registry_init(jm__registry *r);
void jm__registry_destroy(jm__registry *r);
int jm__registry_add(jm__registry *r, const jm_executor *ex, void *self);
/* Copies the entry for `type` into *out; 0 if none is registered. */
int jm__registry_find(jm__registry *r, const char *type, jm__executor_entry *out);
/* The slot (0 .. JM_TYPE_SLOTS - 1) of a well-formed type; -1 otherwise. */
int jm__type_slot(const char *type);

/* Copies the claimable types list into buf (JM_TYPE_SLOTS * 3 + 1 bytes). */
void jm__registry_types(jm__registry *r, char *buf);
/* ... and the JM_CLASS_HIGH ones among them. */
void jm__registry_high_types(jm__registry *r, char *buf);
/* Whether a types list ("FL,CL") holds `type`. */
int jm__types_have(const char *list, const char *type);

#endif
