/* Growth by doubling, so pushing n elements costs O(n) copies in all. */
#include "array.h"

#include <stdint.h>

#include "alloc.h"

#define ARRAY_INITIAL 16

void *jm__array_grow(void *items, size_t count, size_t *cap, size_t elem_size)
{
    if (count < *cap && items)
        return items;
    size_t ncap = *cap ? *cap * 2 : ARRAY_INITIAL;
    if (ncap < *cap || elem_size == 0 || ncap > SIZE_MAX / elem_size)
        return NULL;
    void *nv = jm__realloc(items, *cap * elem_size, ncap * elem_size);
    if (!nv)
        return NULL;
    *cap = ncap;
    return nv;
}
