/* The one growable array: callers keep (items, count, capacity) in their
 * own types and ask for room before each push. */
#ifndef JM_ARRAY_H
#define JM_ARRAY_H

#include <stddef.h>

/* Returns `items` with room for at least one more element than `count`,
 * doubling *cap (from 16) when it is full; elements are elem_size bytes.
 * NULL when out of memory or the size overflows, with `items` untouched
 * and no message set: the caller says what it was doing. */
void *jm__array_grow(void *items, size_t count, size_t *cap, size_t elem_size);

#endif
