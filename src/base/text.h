/* UTF-8 checks and the size limits applied to messages and traces. */
#ifndef JM_TEXT_H
#define JM_TEXT_H

#include <stddef.h>

#define JM_TRUNCATED_MARK "...[truncated]"

/* Non-zero if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
int jm__utf8_valid(const char *s, size_t len);

/* A copy of s of at most max_bytes: if s is longer, it is cut on a UTF-8
 * boundary and JM_TRUNCATED_MARK appended within the limit. NULL in, NULL
 * out; NULL when out of memory. */
char *jm__truncate_utf8(const char *s, size_t max_bytes);

/* Non-zero if s is a valid identifier-like value: non-empty, UTF-8, no
 * control characters. */
int jm__text_valid(const char *s, size_t len);

#endif
