/*
 * The library's SQLite through the public API: its version, and a VFS shim
 * registered with it and named in jm_config.sqlite_vfs, which the jobs
 * database then goes through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "jobmgr.h"
#include "jobmgr/sqlite.h"
#include "test_util.h"

static void test_version_is_the_library_copy(void **state)
{
    (void)state;
    int bundled = -1;
    const char *v = jm_sqlite_version(&bundled);
    assert_non_null(v);
    /* Tests link the library's own copy: its header is the one they see. */
    assert_string_equal(v, SQLITE_VERSION);
#ifdef JM_SQLITE_BUNDLED
    assert_int_equal(bundled, 1);
    assert_true(sqlite3_libversion_number() >= 3051003);
#else
    assert_int_equal(bundled, 0);
#endif
    assert_string_equal(jm_sqlite_version(NULL), v);
}

/* A counting shim over the default VFS. */
static sqlite3_vfs counting;
static sqlite3_vfs *base;
static _Atomic int opens;

static int counting_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                         int *out_flags)
{
    (void)vfs;
    atomic_fetch_add(&opens, 1);
    return base->xOpen(base, name, f, flags, out_flags);
}

static void test_vfs_shim_through_the_public_api(void **state)
{
    (void)state;
    base = jm_sqlite_vfs_find(NULL);
    assert_non_null(base);
    counting = *base;
    counting.zName = "jm-counting";
    counting.pNext = NULL;
    counting.xOpen = counting_open;
    assert_null(jm_sqlite_vfs_find("jm-counting"));
    assert_int_equal(jm_sqlite_vfs_register(&counting, 0), JM_OK);
    assert_ptr_equal(jm_sqlite_vfs_find("jm-counting"), &counting);
    assert_ptr_equal(jm_sqlite_vfs_find(NULL), base); /* not made the default */

    char *dir = tu_tmpdir();
    char *db = tu_path(dir, "jobs.db");
    jm_config cfg = tu_config(db);
    cfg.sqlite_vfs = "jm-counting";
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "XX", NULL, NULL, id), JM_ENOEXEC);
    jm_close(m);
    assert_true(atomic_load(&opens) >= 2); /* the database and its log */

    assert_int_equal(jm_sqlite_vfs_unregister(&counting), JM_OK);
    assert_null(jm_sqlite_vfs_find("jm-counting"));
    cfg.sqlite_vfs = "jm-counting";
    assert_int_not_equal(jm_open(&cfg, &m), JM_OK);
    free(db);
    tu_rmdir(dir);
}

static void test_vfs_bad_input(void **state)
{
    (void)state;
    assert_int_equal(jm_sqlite_vfs_register(NULL, 0), JM_EINVAL);
    sqlite3_vfs nameless = *jm_sqlite_vfs_find(NULL);
    nameless.zName = NULL;
    assert_int_equal(jm_sqlite_vfs_register(&nameless, 0), JM_EINVAL);
    nameless.zName = "";
    assert_int_equal(jm_sqlite_vfs_register(&nameless, 0), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "name"));
    assert_int_equal(jm_sqlite_vfs_unregister(NULL), JM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_is_the_library_copy),
        cmocka_unit_test(test_vfs_shim_through_the_public_api),
        cmocka_unit_test(test_vfs_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
