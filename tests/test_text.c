/*
 * UTF-8 checks and truncation (src/base/text.c): well-formed sequences of
 * every length, the ill-formed ones a lax decoder accepts (overlongs,
 * surrogates, code points past U+10FFFF, truncated sequences), identifier
 * checks, and cutting long messages on a character boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "text.h"

#define MARK_LEN (sizeof JM_TRUNCATED_MARK - 1)

static int valid(const char *s)
{
    return jm__utf8_valid(s, strlen(s));
}

static int validn(const char *s, size_t n)
{
    return jm__utf8_valid(s, n);
}

static void utf8_well_formed(void **state)
{
    (void)state;
    assert_true(valid(""));
    assert_true(valid("plain ascii 0123 ~"));
    assert_true(validn("\x00\x7f", 2)); /* NUL and DEL are UTF-8 */
    assert_true(valid("\xc2\x80"));     /* U+0080, smallest 2-byte */
    assert_true(valid("caf\xc3\xa9"));  /* é */
    assert_true(valid("\xdf\xbf"));     /* U+07FF */
    assert_true(valid("\xe0\xa0\x80")); /* U+0800, smallest 3-byte */
    assert_true(valid("\xe2\x82\xac")); /* € */
    assert_true(valid("\xed\x9f\xbf")); /* U+D7FF, just below the surrogates */
    assert_true(valid("\xee\x80\x80")); /* U+E000, just above */
    assert_true(valid("\xef\xbf\xbf")); /* U+FFFF */
    assert_true(valid("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
    assert_true(valid("\xf0\x9f\x98\x80")); /* 😀 */
    assert_true(valid("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the last code point */
    assert_true(valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"));
}

static void utf8_ill_formed(void **state)
{
    (void)state;
    /* Overlong encodings. */
    assert_false(valid("\xc0\x80"));
    assert_false(valid("\xc1\xbf"));
    assert_false(valid("\xe0\x80\x80"));
    assert_false(valid("\xe0\x9f\xbf"));
    assert_false(valid("\xf0\x80\x80\x80"));
    assert_false(valid("\xf0\x8f\xbf\xbf"));
    /* UTF-16 surrogates U+D800..U+DFFF. */
    assert_false(valid("\xed\xa0\x80"));
    assert_false(valid("\xed\xbf\xbf"));
    assert_false(valid("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair */
    /* Past U+10FFFF. */
    assert_false(valid("\xf4\x90\x80\x80"));
    assert_false(valid("\xf5\x80\x80\x80"));
    assert_false(valid("\xf7\xbf\xbf\xbf"));
    assert_false(valid("\xf8\x88\x80\x80\x80"));
    assert_false(valid("\xff"));
    assert_false(valid("\xfe"));
    /* Lone continuation bytes. */
    assert_false(valid("\x80"));
    assert_false(valid("a\xbf"));
    /* Truncated sequences: at the end, and followed by ASCII. */
    assert_false(valid("\xc3"));
    assert_false(valid("\xe2\x82"));
    assert_false(valid("\xf0\x9f\x98"));
    assert_false(valid("\xc3z"));
    assert_false(valid("\xe2\x82z"));
    assert_false(valid("\xf0\x9f\x98z"));
    assert_false(valid("ok\xe2"));
    /* A bad byte in the middle of a long valid string. */
    char buf[300];
    memset(buf, 'a', sizeof buf);
    buf[150] = (char)0xc0;
    assert_false(validn(buf, sizeof buf));
    buf[150] = 'a';
    assert_true(validn(buf, sizeof buf));
}

static void utf8_length_is_respected(void **state)
{
    (void)state;
    /* Only [0, len) is read: a sequence cut by len is incomplete. */
    const char *euro = "\xe2\x82\xac";
    assert_true(validn(euro, 3));
    assert_false(validn(euro, 2));
    assert_false(validn(euro, 1));
    assert_true(validn(euro, 0));
    /* Bytes past len do not matter. */
    assert_true(validn("ab\xff", 2));
}

static void text_valid(void **state)
{
    (void)state;
    assert_true(jm__text_valid("tenant-42", 9));
    assert_true(jm__text_valid("caf\xc3\xa9 key", 9));
    assert_true(jm__text_valid("with space", 10));
    assert_false(jm__text_valid("", 0));
    assert_false(jm__text_valid(NULL, 0));
    assert_false(jm__text_valid("a\tb", 3));
    assert_false(jm__text_valid("a\nb", 3));
    assert_false(jm__text_valid("a\rb", 3));
    assert_false(jm__text_valid("\x1f", 1));
    assert_false(jm__text_valid("a\x7f", 2));
    assert_false(jm__text_valid("a\0b", 3));
    assert_false(jm__text_valid("\xed\xa0\x80", 3));
    assert_false(jm__text_valid("\xc0\x80", 2));
}

static void truncate_short_copied(void **state)
{
    (void)state;
    assert_null(jm__truncate_utf8(NULL, 10));
    const char *cases[] = {"", "short", "caf\xc3\xa9", "exactly10!"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *c = jm__truncate_utf8(cases[i], 10);
        assert_non_null(c);
        assert_string_equal(c, cases[i]);
        assert_ptr_not_equal(c, cases[i]); /* a copy */
        jm__free(c);
    }
}

/* Checks a truncation of `s` to `max`: within the limit, valid UTF-8,
 * ending with the mark, and a prefix of s before it. */
static void check_cut(const char *s, size_t max)
{
    char *c = jm__truncate_utf8(s, max);
    assert_non_null(c);
    size_t len = strlen(c);
    if (len > max)
        fail_msg("truncated to %zu bytes, limit %zu", len, max);
    if (!valid(c))
        fail_msg("truncation to %zu split a character", max);
    if (max >= MARK_LEN) {
        assert_true(len >= MARK_LEN);
        assert_string_equal(c + len - MARK_LEN, JM_TRUNCATED_MARK);
        size_t kept = len - MARK_LEN;
        assert_memory_equal(c, s, kept);
        /* Only a split character may be dropped: at most 3 bytes lost. */
        assert_true(kept + 3 >= max - MARK_LEN);
    }
    jm__free(c);
}

static void truncate_long_ascii(void **state)
{
    (void)state;
    char *s = malloc(5001);
    memset(s, 'x', 5000);
    s[5000] = '\0';
    char *c = jm__truncate_utf8(s, 1000);
    assert_non_null(c);
    assert_int_equal(strlen(c), 1000);
    assert_string_equal(c + 1000 - MARK_LEN, JM_TRUNCATED_MARK);
    for (size_t i = 0; i < 1000 - MARK_LEN; i++)
        assert_int_equal(c[i], 'x');
    jm__free(c);
    /* One byte over the limit is truncated too. */
    s[1001] = '\0';
    c = jm__truncate_utf8(s, 1000);
    assert_int_equal(strlen(c), 1000);
    assert_string_equal(c + 1000 - MARK_LEN, JM_TRUNCATED_MARK);
    jm__free(c);
    free(s);
}

static void truncate_never_splits_a_character(void **state)
{
    (void)state;
    const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t k = 0; k < 3; k++) {
        /* A leading ASCII prefix of 0..3 bytes shifts the boundaries so
         * every cut position lands inside a character at least once. */
        for (int pre = 0; pre < 4; pre++) {
            char s[512];
            size_t n = 0;
            for (int i = 0; i < pre; i++)
                s[n++] = 'a';
            while (n + 4 < sizeof s - 1) {
                size_t cl = strlen(chars[k]);
                memcpy(s + n, chars[k], cl);
                n += cl;
            }
            s[n] = '\0';
            assert_true(valid(s));
            for (size_t max = MARK_LEN; max < 80; max++)
                check_cut(s, max);
            check_cut(s, n - 1);
        }
    }
}

static void truncate_limit_smaller_than_mark(void **state)
{
    (void)state;
    const char *s = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                    "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
    for (size_t max = 0; max < MARK_LEN; max++) {
        char *c = jm__truncate_utf8(s, max);
        assert_non_null(c);
        assert_true(strlen(c) <= max);
        assert_true(valid(c));
        jm__free(c);
    }
    /* Exactly the mark's size: only the mark fits. */
    char *c = jm__truncate_utf8("this text is well over fourteen bytes", MARK_LEN);
    assert_string_equal(c, JM_TRUNCATED_MARK);
    jm__free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_well_formed),
        cmocka_unit_test(utf8_ill_formed),
        cmocka_unit_test(utf8_length_is_respected),
        cmocka_unit_test(text_valid),
        cmocka_unit_test(truncate_short_copied),
        cmocka_unit_test(truncate_long_ascii),
        cmocka_unit_test(truncate_never_splits_a_character),
        cmocka_unit_test(truncate_limit_smaller_than_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
