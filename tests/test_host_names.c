/*
 * The names hosts and executors share (src/base/host_names.c): table types
 * both ways, and jm_host_name_check, the one rule for namespace, table and
 * user names, with the reason of each refusal in jm_last_error().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jobmgr.h"
#include "jobmgr/host.h"

static void table_types_round_trip(void **state)
{
    (void)state;
    const jm_table_type all[] = {JM_TABLE_USER, JM_TABLE_SHARED, JM_TABLE_STREAM};
    for (size_t i = 0; i < 3; i++) {
        jm_table_type t;
        assert_int_equal(jm_table_type_parse(jm_table_type_name(all[i]), &t), JM_OK);
        assert_int_equal(t, all[i]);
    }
    assert_string_equal(jm_table_type_name((jm_table_type)3), "unknown");
    jm_table_type t = JM_TABLE_SHARED;
    assert_int_equal(jm_table_type_parse("user", &t), JM_EINVAL); /* case-sensitive */
    assert_non_null(strstr(jm_last_error(), "unknown table type"));
    assert_int_equal(t, JM_TABLE_SHARED);
    assert_int_equal(jm_table_type_parse(NULL, &t), JM_EINVAL);
    assert_int_equal(jm_table_type_parse("User", NULL), JM_EINVAL);
}

static void good_names_pass(void **state)
{
    (void)state;
    char longest[JM_HOST_NAME_MAX + 1];
    memset(longest, 'a', JM_HOST_NAME_MAX);
    longest[JM_HOST_NAME_MAX] = '\0';
    const char *good[] = {"a", "orders", "A-Z_0.9", "...", ".hidden", longest};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(jm_host_name_check("table", good[i]), JM_OK);
}

static void bad_names_refused_with_reason(void **state)
{
    (void)state;
    char too_long[JM_HOST_NAME_MAX + 2];
    memset(too_long, 'a', JM_HOST_NAME_MAX + 1);
    too_long[JM_HOST_NAME_MAX + 1] = '\0';
    const struct {
        const char *name;
        const char *reason;
    } bad[] = {
        {NULL, "table is NULL"},
        {"", "table must be 1..128 bytes"},
        {too_long, "table must be 1..128 bytes"},
        {"a/b", "byte 1 is 0x2f"},
        {"a b", "byte 1 is 0x20"},
        {"'; DROP", "byte 0 is 0x27"},
        {"caf\xc3\xa9", "byte 3 is 0xc3"},
        {".", "may not be \".\" or \"..\""},
        {"..", "may not be \".\" or \"..\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(jm_host_name_check("table", bad[i].name), JM_EINVAL);
        assert_non_null(strstr(jm_last_error(), bad[i].reason));
    }
    /* A NULL `what` still gives a message. */
    assert_int_equal(jm_host_name_check(NULL, ""), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "name must be"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_types_round_trip),
        cmocka_unit_test(good_names_pass),
        cmocka_unit_test(bad_names_refused_with_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
