/*
 * Every allocation the library makes goes through these, so a host's
 * allocator (jm_set_allocator) and the out-of-memory tests see all of them.
 */
#ifndef JM_ALLOC_H
#define JM_ALLOC_H

#include <stddef.h>

void *jm__malloc(size_t size);
void *jm__calloc(size_t n, size_t size);
void jm__free(void *ptr);
/* Resizes ptr (old_size bytes, NULL: 0) to new_size bytes; the host's
 * allocator has no realloc, so with one installed this copies. NULL when
 * out of memory, with ptr untouched. */
void *jm__realloc(void *ptr, size_t old_size, size_t new_size);
/* NULL in, NULL out; NULL also when out of memory (check the input). */
char *jm__strdup(const char *s);
char *jm__strndup(const char *s, size_t n);

#endif
