/* A recursive-descent JSON validator over a bounded buffer; it never
 * allocates and stops at JM_JSON_MAX_DEPTH levels of nesting. */
#include "json_check.h"

#include <string.h>

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

#define BAD_HEX 0x10000u

/* Reads four hex digits at c->p; BAD_HEX if they are not there. */
static unsigned hex4(cursor *c)
{
    if (c->end - c->p < 4)
        return BAD_HEX;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = c->p[i];
        if (!is_hex(ch))
            return BAD_HEX;
        v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    c->p += 4;
    return v;
}

static int string(cursor *c)
{
    c->p++; /* opening quote */
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 1;
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
            if (c->p >= c->end)
                return 0;
            char e = *c->p++;
            if (e == 'u') {
                /* Surrogates must pair up, as cJSON insists. */
                unsigned u = hex4(c);
                if (u == BAD_HEX || (u >= 0xDC00 && u <= 0xDFFF))
                    return 0;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
                        return 0;
                    c->p += 2;
                    unsigned lo = hex4(c);
                    if (lo == BAD_HEX || lo < 0xDC00 || lo > 0xDFFF)
                        return 0;
                }
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return 0;
            }
        }
    }
    return 0;
}

static int digits(cursor *c)
{
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

static int number(cursor *c)
{
    if (*c->p == '-')
        c->p++;
    if (c->p >= c->end)
        return 0;
    if (*c->p == '0')
        c->p++;
    else if (!digits(c))
        return 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return 0;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return 0;
    }
    return 1;
}

static int literal(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int value(cursor *c, int depth);

static int container(cursor *c, int depth, char close, int object)
{
    if (depth >= JM_JSON_MAX_DEPTH)
        return 0;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 1;
    }
    for (;;) {
        skip_ws(c);
        if (object) {
            if (c->p >= c->end || *c->p != '"' || !string(c))
                return 0;
            skip_ws(c);
            if (c->p >= c->end || *c->p++ != ':')
                return 0;
            skip_ws(c);
        }
        if (!value(c, depth + 1))
            return 0;
        skip_ws(c);
        if (c->p >= c->end)
            return 0;
        char ch = *c->p++;
        if (ch == close)
            return 1;
        if (ch != ',')
            return 0;
    }
}

static int value(cursor *c, int depth)
{
    if (c->p >= c->end)
        return 0;
    switch (*c->p) {
    case '{':
        return container(c, depth, '}', 1);
    case '[':
        return container(c, depth, ']', 0);
    case '"':
        return string(c);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        return (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) && number(c);
    }
}

jm__json_kind jm__json_check(const char *s, size_t len)
{
    if (!s)
        return JM_JSON_INVALID;
    cursor c = {s, s + len};
    skip_ws(&c);
    int object = c.p < c.end && *c.p == '{';
    if (!value(&c, 0))
        return JM_JSON_INVALID;
    skip_ws(&c);
    if (c.p != c.end)
        return JM_JSON_INVALID;
    return object ? JM_JSON_OBJECT : JM_JSON_OTHER;
}
