/*
 * An allocation-free JSON syntax check. cJSON reports "out of memory" and
 * "not JSON" the same way (NULL); checking the text first tells the two
 * apart, so a passing memory shortage is never mistaken for bad input.
 */
#ifndef JM_JSON_CHECK_H
#define JM_JSON_CHECK_H

#include <stddef.h>

/* The same nesting limit as cJSON's default, so both agree on what parses. */
#define JM_JSON_MAX_DEPTH 1000

typedef enum {
    JM_JSON_INVALID,
    JM_JSON_OBJECT,
    JM_JSON_OTHER /* valid JSON whose top-level value is not an object */
} jm__json_kind;

/* Checks that s[0..len) is exactly one JSON value (surrounding white space
 * allowed) and says whether it is an object. */
jm__json_kind jm__json_check(const char *s, size_t len);

#endif
