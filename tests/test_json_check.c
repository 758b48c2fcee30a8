/* The allocation-free JSON check: what it accepts and refuses, and that it
 * never accepts text cJSON refuses (that would turn bad input into a false
 * "out of memory"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_check.h"
#include "jobmgr.h"

typedef struct {
    const char *text;
    jm__json_kind want;
} json_case;

static const json_case cases[] = {
    {"{}", JM_JSON_OBJECT},
    {"  {\"a\": 1}\n", JM_JSON_OBJECT},
    {"{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}", JM_JSON_OBJECT},
    {"{\"n\": -0.5e+10}", JM_JSON_OBJECT},
    {"{\"s\": \"\\u00e9\\n\\t\\\"\"}", JM_JSON_OBJECT},
    {"{\"pair\": \"\\ud83d\\ude00\"}", JM_JSON_OBJECT},
    {"[1]", JM_JSON_OTHER},
    {"3", JM_JSON_OTHER},
    {"\"s\"", JM_JSON_OTHER},
    {"null", JM_JSON_OTHER},
    {"", JM_JSON_INVALID},
    {"   ", JM_JSON_INVALID},
    {"{", JM_JSON_INVALID},
    {"}", JM_JSON_INVALID},
    {"{\"a\"}", JM_JSON_INVALID},
    {"{\"a\":}", JM_JSON_INVALID},
    {"{\"a\":1,}", JM_JSON_INVALID},
    {"{a:1}", JM_JSON_INVALID},
    {"{} {}", JM_JSON_INVALID},
    {"{\"a\":1} x", JM_JSON_INVALID},
    {"nope", JM_JSON_INVALID},
    {"tru", JM_JSON_INVALID},
    {"-", JM_JSON_INVALID},
    {"1.", JM_JSON_INVALID},
    {"{\"s\": \"\\x\"}", JM_JSON_INVALID},
    {"{\"s\": \"\\u12\"}", JM_JSON_INVALID},
    {"{\"s\": \"unterminated}", JM_JSON_INVALID},
    {"{\"lone\": \"\\ud800\"}", JM_JSON_INVALID},
    {"{\"low\": \"\\udc00\"}", JM_JSON_INVALID},
    {"{\"bad pair\": \"\\ud800\\u0041\"}", JM_JSON_INVALID},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jm__json_kind got = jm__json_check(cases[i].text, strlen(cases[i].text));
        if (got != cases[i].want)
            fail_msg("case %zu '%s': got %d, want %d", i, cases[i].text, got, cases[i].want);
    }
}

/* Whatever the checker accepts, cJSON parses: otherwise valid input whose
 * parse failed would be reported as out of memory. */
static void test_never_looser_than_cjson(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = cases[i].text;
        if (jm__json_check(t, strlen(t)) == JM_JSON_INVALID)
            continue;
        cJSON *v = cJSON_ParseWithOpts(t, NULL, 1);
        if (!v)
            fail_msg("checker accepts '%s' but cJSON does not", t);
        cJSON_Delete(v);
    }
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

/* The nesting limit matches cJSON's, on both sides of it. */
static void test_depth_limit(void **state)
{
    (void)state;
    char *ok = nested(JM_JSON_MAX_DEPTH);
    char *deep = nested(JM_JSON_MAX_DEPTH + 1);
    assert_int_equal(jm__json_check(ok, strlen(ok)), JM_JSON_OTHER);
    assert_int_equal(jm__json_check(deep, strlen(deep)), JM_JSON_INVALID);
    cJSON *v = cJSON_ParseWithOpts(ok, NULL, 1);
    assert_non_null(v);
    cJSON_Delete(v);
    assert_null(cJSON_ParseWithOpts(deep, NULL, 1));
    free(ok);
    free(deep);
}

/* Only `len` bytes are read: a valid prefix followed by garbage the caller
 * excluded is fine, and a value cut short by len is not. */
static void test_bounded_length(void **state)
{
    (void)state;
    const char *t = "{\"a\":1}GARBAGE";
    assert_int_equal(jm__json_check(t, 7), JM_JSON_OBJECT);
    assert_int_equal(jm__json_check(t, 6), JM_JSON_INVALID);
    assert_int_equal(jm__json_check(NULL, 0), JM_JSON_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_never_looser_than_cjson),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_bounded_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
