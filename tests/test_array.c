/*
 * The growable array and resizing (src/base/array.c, jm__realloc in
 * src/base/alloc.c): growth keeps every element, doubles from 16, refuses
 * sizes that overflow, leaves the array untouched when memory runs out, and
 * goes through a host allocator (which has no realloc) by copying.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "array.h"
#include "jobmgr.h"

/* A host allocator that counts its calls and can refuse them all. */
static long host_mallocs, host_frees;
static int host_refuse;

static void *host_malloc(void *user, size_t size)
{
    (void)user;
    if (host_refuse)
        return NULL;
    host_mallocs++;
    return malloc(size);
}

static void host_free(void *user, void *p)
{
    (void)user;
    host_frees++;
    free(p);
}

static void push_many(void **state)
{
    (void)state;
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (int64_t i = 0; i < 1000; i++) {
        int64_t *nv = jm__array_grow(v, n, &cap, sizeof *v);
        assert_non_null(nv);
        v = nv;
        v[n++] = i * 7;
        assert_true(cap >= n);
    }
    for (int64_t i = 0; i < 1000; i++)
        assert_int_equal(v[i], i * 7);
    /* 16, 32, ... 1024: doubling, not one element at a time. */
    assert_int_equal(cap, 1024);
    jm__free(v);
}

static void room_left_is_no_copy(void **state)
{
    (void)state;
    size_t cap = 0;
    int *v = jm__array_grow(NULL, 0, &cap, sizeof *v);
    assert_non_null(v);
    assert_int_equal(cap, 16);
    assert_ptr_equal(jm__array_grow(v, 15, &cap, sizeof *v), v);
    assert_int_equal(cap, 16);
    jm__free(v);
}

static void overflow_refused(void **state)
{
    (void)state;
    size_t cap = SIZE_MAX / 8 + 1;
    char *v = malloc(1);
    assert_non_null(v);
    /* Doubling would pass SIZE_MAX bytes: NULL, and nothing changes. */
    assert_null(jm__array_grow(v, cap, &cap, 8));
    assert_int_equal(cap, SIZE_MAX / 8 + 1);
    free(v);
}

static void host_allocator_copies_and_keeps_on_failure(void **state)
{
    (void)state;
    jm_allocator a = {JM_ALLOCATOR_VERSION, host_malloc, host_free, NULL};
    assert_int_equal(jm_set_allocator(&a), JM_OK);
    host_mallocs = host_frees = 0;
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 40; i++) {
        int *nv = jm__array_grow(v, n, &cap, sizeof *v);
        assert_non_null(nv);
        v = nv;
        v[n++] = i;
    }
    /* 16, 32, 64: three blocks from the host, two returned to it. */
    assert_int_equal(host_mallocs, 3);
    assert_int_equal(host_frees, 2);
    for (int i = 0; i < 40; i++)
        assert_int_equal(v[i], i);

    host_refuse = 1;
    size_t before = cap;
    n = cap;
    assert_null(jm__array_grow(v, n, &cap, sizeof *v));
    host_refuse = 0;
    assert_int_equal(cap, before);
    for (int i = 0; i < 40; i++)
        assert_int_equal(v[i], i); /* untouched */
    jm__free(v);
    assert_int_equal(host_frees, 3);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
}

static void realloc_shrinks_and_grows(void **state)
{
    (void)state;
    char *p = jm__realloc(NULL, 0, 8);
    assert_non_null(p);
    memcpy(p, "abcdefg", 8);
    p = jm__realloc(p, 8, 4096);
    assert_non_null(p);
    assert_string_equal(p, "abcdefg");
    p = jm__realloc(p, 4096, 4);
    assert_non_null(p);
    assert_memory_equal(p, "abcd", 4);
    jm__free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(push_many),
        cmocka_unit_test(room_left_is_no_copy),
        cmocka_unit_test(overflow_refused),
        cmocka_unit_test(host_allocator_copies_and_keeps_on_failure),
        cmocka_unit_test(realloc_shrinks_and_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
