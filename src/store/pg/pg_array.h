/*
 * Array literals ("{1,\"a b\",NULL}") for statements that take a column
 * of values as one text parameter ($1::bigint[], unnest(...)): a batch of
 * rows in one statement and one round trip.
 */
#ifndef JM_PG_ARRAY_H
#define JM_PG_ARRAY_H

#include <stddef.h>
#include <stdint.h>

/* A growing literal; `failed` once memory ran out (later puts do
 * nothing). Zeroed it is empty; jm__pg_arr_end closes it. */
typedef struct jm__pg_arr {
    char *p;
    size_t len, cap;
    int failed;
} jm__pg_arr;

/* A text element, quoted, '"' and '\\' escaped, at most max bytes of v;
 * NULL is SQL NULL. */
void jm__pg_arr_text(jm__pg_arr *a, const char *v, size_t max);
void jm__pg_arr_i64(jm__pg_arr *a, int64_t v);
void jm__pg_arr_dbl(jm__pg_arr *a, double v);
void jm__pg_arr_null(jm__pg_arr *a);
/* Closes the literal ("{}" when empty): 0, or -1 when memory ran out. */
int jm__pg_arr_end(jm__pg_arr *a);
void jm__pg_arr_free(jm__pg_arr *a);

#endif
