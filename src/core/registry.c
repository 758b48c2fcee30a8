/* The executor registry. Types are two uppercase letters, so a 676-slot
 * table indexed by them replaces any hashing; entries are copied out under
 * a lock so registration may happen while jobs run. */
#include "registry.h"

#include <stddef.h>
#include <string.h>

#include "error.h"
#include "job_id.h"

int jm__type_slot(const char *type)
{
    if (!type || type[0] < 'A' || type[0] > 'Z' || type[1] < 'A' || type[1] > 'Z' || type[2])
        return -1;
    return (type[0] - 'A') * 26 + (type[1] - 'A');
}

int jm__registry_init(jm__registry *r)
{
    memset(r, 0, sizeof *r);
    if (pthread_mutex_init(&r->lock, NULL) != 0)
        return jm__seterr(JM_ENOMEM, "cannot create the registry lock");
    return JM_OK;
}

void jm__registry_destroy(jm__registry *r)
{
    pthread_mutex_destroy(&r->lock);
}

int jm__registry_add(jm__registry *r, const jm_executor *ex, void *self)
{
    if (!ex)
        return jm__seterr(JM_EINVAL, "jm_register: executor is NULL");
    if (ex->version < 1 || ex->version > JM_EXECUTOR_VERSION)
        return jm__seterr(JM_EINVAL, "jm_register: unknown executor version %u (expected 1..%u)",
                          ex->version, JM_EXECUTOR_VERSION);
    /* A version 1 executor ends before priority_class: read no further. */
    jm_executor v = {0};
    memcpy(&v, ex, ex->version == 1 ? offsetof(jm_executor, priority_class) : sizeof v);
    v.version = JM_EXECUTOR_VERSION;
    ex = &v;
    if (ex->priority_class != JM_CLASS_NORMAL && ex->priority_class != JM_CLASS_HIGH)
        return jm__seterr(JM_EINVAL, "jm_register: unknown priority class %d",
                          (int)ex->priority_class);
    if (!jm__type_valid(ex->type))
        return jm__seterr(JM_EINVAL,
                          "jm_register: type must be two uppercase letters (got '%.8s')",
                          ex->type ? ex->type : "(null)");
    if (!ex->execute)
        return jm__seterr(JM_EINVAL, "jm_register: executor %s has no execute function",
                          ex->type);
    pthread_mutex_lock(&r->lock);
    jm__executor_entry *e = &r->slots[jm__type_slot(ex->type)];
    if (e->present) {
        pthread_mutex_unlock(&r->lock);
        return jm__seterr(JM_ECONFLICT, "jm_register: type %s is already registered", ex->type);
    }
    e->ex = *ex;
    e->self = self;
    e->present = 1;
    size_t n = strlen(r->types);
    if (n)
        r->types[n++] = ',';
    memcpy(r->types + n, ex->type, 2);
    r->types[n + 2] = '\0';
    if (ex->priority_class == JM_CLASS_HIGH) {
        n = strlen(r->high_types);
        if (n)
            r->high_types[n++] = ',';
        memcpy(r->high_types + n, ex->type, 2);
        r->high_types[n + 2] = '\0';
    }
    pthread_mutex_unlock(&r->lock);
    return JM_OK;
}

int jm__registry_find(jm__registry *r, const char *type, jm__executor_entry *out)
{
    if (!jm__type_valid(type))
        return 0;
    pthread_mutex_lock(&r->lock);
    *out = r->slots[jm__type_slot(type)];
    pthread_mutex_unlock(&r->lock);
    return out->present;
}

void jm__registry_types(jm__registry *r, char *buf)
{
    pthread_mutex_lock(&r->lock);
    memcpy(buf, r->types, sizeof r->types);
    pthread_mutex_unlock(&r->lock);
}

int jm__types_have(const char *list, const char *type)
{
    for (const char *t = list; t[0] && t[1]; t += t[2] ? 3 : 2)
        if (t[0] == type[0] && t[1] == type[1])
            return 1;
    return 0;
}

void jm__registry_high_types(jm__registry *r, char *buf)
{
    pthread_mutex_lock(&r->lock);
    memcpy(buf, r->high_types, sizeof r->high_types);
    pthread_mutex_unlock(&r->lock);
}
