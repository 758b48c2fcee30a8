/*
 * The allocator hook. It holds one process-wide allocator, installed before
 * managers are opened; it does not try to make switching allocators safe
 * while memory from the old one is still alive.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jobmgr.h"

static jm_allocator current;
static int custom;

static void *cjson_malloc(size_t size)
{
    return jm__malloc(size);
}

static void cjson_free(void *p)
{
    jm__free(p);
}

int jm_set_allocator(const jm_allocator *a)
{
    if (!a) {
        custom = 0;
        memset(&current, 0, sizeof current);
        cJSON_InitHooks(NULL);
        return JM_OK;
    }
    if (a->version != JM_ALLOCATOR_VERSION)
        return jm__seterr(JM_EINVAL, "unknown jm_allocator version %u", a->version);
    if (!a->malloc_fn || !a->free_fn)
        return jm__seterr(JM_EINVAL, "jm_allocator needs malloc_fn and free_fn");
    current = *a;
    custom = 1;
    cJSON_Hooks hooks = {cjson_malloc, cjson_free};
    cJSON_InitHooks(&hooks);
    return JM_OK;
}

void *jm__malloc(size_t size)
{
    if (size == 0)
        size = 1;
    return custom ? current.malloc_fn(current.user, size) : malloc(size);
}

void *jm__calloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        return NULL;
    void *p = jm__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void jm__free(void *ptr)
{
    if (!ptr)
        return;
    if (custom)
        current.free_fn(current.user, ptr);
    else
        free(ptr);
}

void *jm__realloc(void *ptr, size_t old_size, size_t new_size)
{
    if (new_size == 0)
        new_size = 1;
    if (!custom)
        return realloc(ptr, new_size);
    void *p = jm__malloc(new_size);
    if (!p)
        return NULL;
    if (ptr)
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
    jm__free(ptr);
    return p;
}

char *jm__strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = jm__malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *jm__strdup(const char *s)
{
    return s ? jm__strndup(s, strlen(s)) : NULL;
}

void jm_free(void *p)
{
    jm__free(p);
}
