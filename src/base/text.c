/* UTF-8 validation and truncation on character boundaries. */
#include "text.h"

#include <string.h>

#include "alloc.h"

/* Length of the well-formed sequence at s (at most n bytes), or 0. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

int jm__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t l = seq_len(p + i, len - i);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

int jm__text_valid(const char *s, size_t len)
{
    if (!s || len == 0 || !jm__utf8_valid(s, len))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

char *jm__truncate_utf8(const char *s, size_t max_bytes)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (len <= max_bytes)
        return jm__strndup(s, len);
    size_t mark = sizeof JM_TRUNCATED_MARK - 1;
    size_t cut = max_bytes > mark ? max_bytes - mark : 0;
    /* Back off continuation bytes so no character is split. */
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char *out = jm__malloc(cut + mark + 1);
    if (!out)
        return NULL;
    memcpy(out, s, cut);
    if (max_bytes >= mark)
        memcpy(out + cut, JM_TRUNCATED_MARK, mark + 1);
    else
        out[cut] = '\0';
    return out;
}
