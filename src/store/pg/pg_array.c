/* Array literals for batched statements (pg_array.h). */
#include "pg_array.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

static void put(jm__pg_arr *a, const char *v, size_t n)
{
    if (a->failed)
        return;
    if (a->len + n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (a->len + n + 2 > cap)
            cap *= 2;
        char *grown = jm__realloc(a->p, a->cap, cap);
        if (!grown) {
            a->failed = 1;
            return;
        }
        a->p = grown;
        a->cap = cap;
    }
    memcpy(a->p + a->len, v, n);
    a->len += n;
    a->p[a->len] = '\0';
}

static void put_sep(jm__pg_arr *a)
{
    put(a, a->len ? "," : "{", 1);
}

void jm__pg_arr_null(jm__pg_arr *a)
{
    put_sep(a);
    put(a, "NULL", 4);
}

void jm__pg_arr_text(jm__pg_arr *a, const char *v, size_t max)
{
    if (!v) {
        jm__pg_arr_null(a);
        return;
    }
    put_sep(a);
    const char *end = v + strnlen(v, max);
    put(a, "\"", 1);
    while (v < end) {
        size_t run = strcspn(v, "\"\\");
        if (run > (size_t)(end - v))
            run = (size_t)(end - v);
        put(a, v, run);
        v += run;
        if (v < end) {
            put(a, "\\", 1);
            put(a, v++, 1);
        }
    }
    put(a, "\"", 1);
}

void jm__pg_arr_i64(jm__pg_arr *a, int64_t v)
{
    char num[32];
    put_sep(a);
    put(a, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)v));
}

void jm__pg_arr_dbl(jm__pg_arr *a, double v)
{
    char num[40];
    put_sep(a);
    put(a, num, (size_t)snprintf(num, sizeof num, "%.17g", v));
}

int jm__pg_arr_end(jm__pg_arr *a)
{
    if (!a->len)
        put(a, "{", 1);
    put(a, "}", 1);
    return a->failed ? -1 : 0;
}

void jm__pg_arr_free(jm__pg_arr *a)
{
    jm__free(a->p);
    a->p = NULL;
    a->len = a->cap = 0;
    a->failed = 0;
}
