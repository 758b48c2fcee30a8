/*
 * What the eight built-in executors tell the manager about their jobs: the
 * priority class of each type (flush and stream eviction high, the rest
 * normal) and the resource each derives from its parameters when the
 * creator names none ("<namespace>.<table>", a restore's target, a
 * cleanup's "namespace:table" as "namespace.table", "user:<id>"), checked
 * through the path jm_create() takes (jm__create_prepare); a resource the
 * creator names wins, and one too long for a resource is shortened to its
 * digest, so two tables never share one.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "builtin.h"
#include "create.h"
#include "exec_harness.h"
#include "registry.h"
#include "sha256.h"

static int setup(void **state)
{
    xh *x = calloc(1, sizeof *x);
    assert_int_equal(xh_open(x, NULL), JM_OK);
    assert_int_equal(jm_register_builtin(x->m), JM_OK);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    xh *x = *state;
    xh_close(x);
    free(x);
    return 0;
}

/* The resource jm_create() would store for a job of `type` with `params`
 * and the given option (NULL: none); a copy the caller frees, or NULL. */
static char *resource_of(xh *x, const char *type, const char *params, const char *given)
{
    jm_new_job j = {type, params, JM_CREATE_OPTS_INIT};
    j.opts.resource = given;
    jm__new_row row;
    memset(&row, 0, sizeof row);
    int rc = jm__create_prepare(x->m, &j, XH_T0, &row);
    if (rc != JM_OK)
        fail_msg("%s %s: %s (%s)", type, params, jm_err_name(rc), jm_last_error());
    char *out = row.resource ? strdup(row.resource) : NULL;
    jm__free(row.resource_owned);
    return out;
}

static void assert_resource(xh *x, const char *type, const char *params, const char *expect)
{
    char *got = resource_of(x, type, params, NULL);
    if (!got || strcmp(got, expect) != 0)
        fail_msg("%s: resource \"%s\", expected \"%s\"", type, got ? got : "(none)", expect);
    free(got);
}

static void classes(void **state)
{
    xh *x = *state;
    static const struct {
        const char *type;
        jm_class cls;
    } want[] = {
        {JM_FLUSH, JM_CLASS_HIGH},       {JM_STREAM_EVICTION, JM_CLASS_HIGH},
        {JM_CLEANUP, JM_CLASS_NORMAL},   {JM_RETENTION, JM_CLASS_NORMAL},
        {JM_USER_CLEANUP, JM_CLASS_NORMAL}, {JM_COMPACT, JM_CLASS_NORMAL},
        {JM_BACKUP, JM_CLASS_NORMAL},    {JM_RESTORE, JM_CLASS_NORMAL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        jm__executor_entry e;
        assert_true(jm__registry_find(&x->m->registry, want[i].type, &e));
        if (e.ex.priority_class != want[i].cls)
            fail_msg("%s: class %d, expected %d", want[i].type, (int)e.ex.priority_class,
                     (int)want[i].cls);
        assert_non_null(e.ex.resource);
    }
}

#define TABLE_PARAMS "\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"Shared\""

static void derived_resources(void **state)
{
    xh *x = *state;
    assert_resource(x, JM_FLUSH, "{" TABLE_PARAMS "}", "app.orders");
    assert_resource(x, JM_COMPACT, "{" TABLE_PARAMS ",\"target_file_size_mb\":64}", "app.orders");
    assert_resource(x, JM_BACKUP,
                    "{" TABLE_PARAMS ",\"backup_location\":\"/backups\",\"compression\":\"zstd\"}",
                    "app.orders");
    assert_resource(x, JM_RETENTION, "{" TABLE_PARAMS ",\"retention_hours\":24}", "app.orders");
    assert_resource(x, JM_STREAM_EVICTION,
                    "{\"namespace_id\":\"app\",\"table_name\":\"clicks\",\"table_type\":"
                    "\"Stream\",\"ttl_seconds\":60}",
                    "app.clicks");
    assert_resource(x, JM_CLEANUP,
                    "{\"table_id\":\"app:orders\",\"table_type\":\"Shared\","
                    "\"operation\":\"drop_table\"}",
                    "app.orders");
    assert_resource(x, JM_RESTORE,
                    "{\"backup_location\":\"/backups/app/orders/BK-1\",\"target_namespace\":"
                    "\"app2\",\"target_table_name\":\"orders_copy\"}",
                    "app2.orders_copy");
    assert_resource(x, JM_USER_CLEANUP,
                    "{\"user_id\":\"u-42\",\"username\":\"ann\",\"cascade\":true}", "user:u-42");
}

static void given_resource_wins(void **state)
{
    xh *x = *state;
    char *r = resource_of(x, JM_FLUSH, "{" TABLE_PARAMS "}", "disk-1");
    assert_string_equal(r, "disk-1");
    free(r);
}

/* Two names of 128 bytes make 257: longer than a resource may be. */
static void long_names_give_a_digest(void **state)
{
    xh *x = *state;
    char ns[JM_HOST_NAME_MAX + 1], table[JM_HOST_NAME_MAX + 1];
    memset(ns, 'n', JM_HOST_NAME_MAX);
    ns[JM_HOST_NAME_MAX] = '\0';
    memset(table, 't', JM_HOST_NAME_MAX);
    table[JM_HOST_NAME_MAX] = '\0';
    char params[1024], full[2 * JM_HOST_NAME_MAX + 2], expect[128], hex[JM_SHA256_HEX_SIZE];
    snprintf(params, sizeof params,
             "{\"namespace_id\":\"%s\",\"table_name\":\"%s\",\"table_type\":\"User\"}", ns,
             table);
    snprintf(full, sizeof full, "%s.%s", ns, table);
    jm__sha256_hex(full, strlen(full), hex);
    snprintf(expect, sizeof expect, "sha256:%s", hex);
    assert_resource(x, JM_FLUSH, params, expect);
    /* At exactly JM_MAX_RESOURCE_BYTES it stays as it is. */
    table[JM_HOST_NAME_MAX - 2] = '\0';
    snprintf(params, sizeof params,
             "{\"namespace_id\":\"%s\",\"table_name\":\"%s\",\"table_type\":\"User\"}", ns,
             table);
    snprintf(full, sizeof full, "%s.%s", ns, table);
    assert_int_equal(strlen(full), JM_MAX_RESOURCE_BYTES);
    assert_resource(x, JM_FLUSH, params, full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(classes, setup, teardown),
        cmocka_unit_test_setup_teardown(derived_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(given_resource_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(long_names_give_a_digest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
