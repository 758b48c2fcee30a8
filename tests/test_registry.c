/*
 * The executor registry (src/core/registry.c), through the internal
 * jm__registry_* functions and the public jm_register() on an open
 * manager: what is refused, the claimable-types list, lookups, and
 * registering a type while the worker pool already runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"
#include "test_util.h"

static _Atomic int runs;

static jm_decision exec_ok(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    atomic_fetch_add(&runs, 1);
    return jm_decision_completed("ok", NULL);
}

static jm_decision exec_other(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed("other", NULL);
}

static jm_executor make_ex(const char *type)
{
    jm_executor ex = {0};
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = type;
    ex.name = "test";
    ex.cancellable = 1;
    ex.execute = exec_ok;
    return ex;
}

/* ------------------------------------------------------------------------
 * Internal registry
 * ------------------------------------------------------------------------ */

static void registry_refuses_malformed(void **state)
{
    (void)state;
    jm__registry r;
    assert_int_equal(jm__registry_init(&r), JM_OK);

    assert_int_equal(jm__registry_add(&r, NULL, NULL), JM_EINVAL);

    const char *bad_types[] = {"fl", "Fl", "F", "FLX", "F1", "", "1A", "@A", "A[", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++) {
        jm_executor ex = make_ex(bad_types[i]);
        if (jm__registry_add(&r, &ex, NULL) != JM_EINVAL)
            fail_msg("type '%s' was accepted", bad_types[i]);
    }
    jm_executor ex = make_ex(NULL);
    assert_int_equal(jm__registry_add(&r, &ex, NULL), JM_EINVAL);

    ex = make_ex("FL");
    ex.version = 0;
    assert_int_equal(jm__registry_add(&r, &ex, NULL), JM_EINVAL);
    ex.version = JM_EXECUTOR_VERSION + 1;
    assert_int_equal(jm__registry_add(&r, &ex, NULL), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "version"));

    ex = make_ex("FL");
    ex.execute = NULL;
    assert_int_equal(jm__registry_add(&r, &ex, NULL), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "execute"));

    /* Nothing refused left a trace. */
    char types[JM_TYPE_SLOTS * 3 + 1];
    jm__registry_types(&r, types);
    assert_string_equal(types, "");
    jm__executor_entry e;
    assert_int_equal(jm__registry_find(&r, "FL", &e), 0);

    /* The refused type can still be registered properly. */
    ex = make_ex("FL");
    assert_int_equal(jm__registry_add(&r, &ex, NULL), JM_OK);
    assert_int_equal(jm__registry_find(&r, "FL", &e), 1);
    jm__registry_destroy(&r);
}

static void registry_duplicates_conflict(void **state)
{
    (void)state;
    jm__registry r;
    assert_int_equal(jm__registry_init(&r), JM_OK);
    int a = 1, b = 2;
    jm_executor ex = make_ex("FL");
    assert_int_equal(jm__registry_add(&r, &ex, &a), JM_OK);
    jm_executor ex2 = make_ex("FL");
    ex2.execute = exec_other;
    assert_int_equal(jm__registry_add(&r, &ex2, &b), JM_ECONFLICT);
    assert_non_null(strstr(jm_last_error(), "FL"));
    /* The first registration stands. */
    jm__executor_entry e;
    assert_int_equal(jm__registry_find(&r, "FL", &e), 1);
    assert_ptr_equal(e.self, &a);
    assert_ptr_equal(e.ex.execute, exec_ok);
    /* And the type is listed once. */
    char types[JM_TYPE_SLOTS * 3 + 1];
    jm__registry_types(&r, types);
    assert_string_equal(types, "FL");
    jm__registry_destroy(&r);
}

static void registry_types_and_find(void **state)
{
    (void)state;
    jm__registry r;
    assert_int_equal(jm__registry_init(&r), JM_OK);
    char types[JM_TYPE_SLOTS * 3 + 1];
    jm__registry_types(&r, types);
    assert_string_equal(types, "");

    int self_fl = 0, self_cl = 0;
    jm_executor fl = make_ex("FL");
    fl.name = "flush";
    fl.cancellable = 1;
    assert_int_equal(jm__registry_add(&r, &fl, &self_fl), JM_OK);
    jm__registry_types(&r, types);
    assert_string_equal(types, "FL");

    jm_executor cl = make_ex("CL");
    cl.name = "cleanup";
    cl.cancellable = 0;
    assert_int_equal(jm__registry_add(&r, &cl, &self_cl), JM_OK);
    jm__registry_types(&r, types);
    assert_string_equal(types, "FL,CL");

    /* The executor struct is copied: changing the caller's copy later
     * does not change what is registered. */
    fl.cancellable = 0;
    fl.execute = exec_other;

    jm__executor_entry e;
    assert_int_equal(jm__registry_find(&r, "FL", &e), 1);
    assert_true(e.present);
    assert_ptr_equal(e.self, &self_fl);
    assert_string_equal(e.ex.name, "flush");
    assert_int_equal(e.ex.cancellable, 1);
    assert_ptr_equal(e.ex.execute, exec_ok);
    assert_int_equal(jm__registry_find(&r, "CL", &e), 1);
    assert_ptr_equal(e.self, &self_cl);
    assert_int_equal(e.ex.cancellable, 0);

    /* Unknown and malformed types are not found. */
    assert_int_equal(jm__registry_find(&r, "RT", &e), 0);
    assert_int_equal(jm__registry_find(&r, "LF", &e), 0);
    assert_int_equal(jm__registry_find(&r, "fl", &e), 0);
    assert_int_equal(jm__registry_find(&r, "F", &e), 0);
    assert_int_equal(jm__registry_find(&r, NULL, &e), 0);

    /* The corners of the 26x26 table. */
    jm_executor aa = make_ex("AA"), zz = make_ex("ZZ");
    assert_int_equal(jm__registry_add(&r, &aa, NULL), JM_OK);
    assert_int_equal(jm__registry_add(&r, &zz, NULL), JM_OK);
    assert_int_equal(jm__registry_find(&r, "AA", &e), 1);
    assert_int_equal(jm__registry_find(&r, "ZZ", &e), 1);
    assert_int_equal(jm__registry_find(&r, "AZ", &e), 0);
    jm__registry_types(&r, types);
    assert_string_equal(types, "FL,CL,AA,ZZ");
    jm__registry_destroy(&r);
}

static void registry_holds_every_type(void **state)
{
    (void)state;
    jm__registry *r = malloc(sizeof *r);
    assert_int_equal(jm__registry_init(r), JM_OK);
    static char names[JM_TYPE_SLOTS][3];
    for (int i = 0; i < JM_TYPE_SLOTS; i++) {
        names[i][0] = (char)('A' + i / 26);
        names[i][1] = (char)('A' + i % 26);
        names[i][2] = '\0';
        jm_executor ex = make_ex(names[i]);
        assert_int_equal(jm__registry_add(r, &ex, NULL), JM_OK);
    }
    char types[JM_TYPE_SLOTS * 3 + 1];
    jm__registry_types(r, types);
    assert_int_equal(strlen(types), JM_TYPE_SLOTS * 3 - 1);
    assert_memory_equal(types, "AA,AB,", 6);
    assert_string_equal(types + strlen(types) - 5, "ZY,ZZ");
    jm__registry_destroy(r);
    free(r);
}

/* ------------------------------------------------------------------------
 * Public jm_register on an open manager
 * ------------------------------------------------------------------------ */

typedef struct fx {
    char *dir;
    char *db;
    jm_config cfg;
    jm_manager *m;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    f->cfg = tu_config(f->db);
    f->cfg.node_id = "registry-node";
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    atomic_store(&runs, 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void register_refusals(void **state)
{
    fx *f = *state;
    jm_executor ex = make_ex("FL");
    assert_int_equal(jm_register(NULL, &ex, NULL), JM_EINVAL);
    assert_int_equal(jm_register(f->m, NULL, NULL), JM_EINVAL);
    ex.version = 7;
    assert_int_equal(jm_register(f->m, &ex, NULL), JM_EINVAL);
    ex = make_ex("fl");
    assert_int_equal(jm_register(f->m, &ex, NULL), JM_EINVAL);
    ex = make_ex("FLU");
    assert_int_equal(jm_register(f->m, &ex, NULL), JM_EINVAL);
    ex = make_ex("FL");
    ex.execute = NULL;
    assert_int_equal(jm_register(f->m, &ex, NULL), JM_EINVAL);

    /* None of those registered FL: creating one has no executor. */
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, id), JM_ENOEXEC);

    ex = make_ex("FL");
    assert_int_equal(jm_register(f->m, &ex, NULL), JM_OK);
    assert_int_equal(jm_register(f->m, &ex, NULL), JM_ECONFLICT);
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, id), JM_OK);
    /* An unknown type still has none. */
    assert_int_equal(jm_create(f->m, "CL", NULL, NULL, id), JM_ENOEXEC);
}

static void only_registered_types_are_claimed(void **state)
{
    fx *f = *state;
    /* A second manager on the same database knows XY and creates a job of
     * it; this manager knows only FL. */
    jm_manager *other = NULL;
    assert_int_equal(jm_open(&f->cfg, &other), JM_OK);
    jm_executor xy = make_ex("XY");
    xy.execute = exec_other;
    assert_int_equal(jm_register(other, &xy, NULL), JM_OK);
    char xy_id[JM_JOB_ID_SIZE], fl_id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(other, "XY", NULL, NULL, xy_id), JM_OK);

    jm_executor fl = make_ex("FL");
    assert_int_equal(jm_register(f->m, &fl, NULL), JM_OK);
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, fl_id), JM_OK);
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 10, &ran), JM_OK);
    /* The XY job was first in claim order, yet only FL ran. */
    assert_int_equal(ran, 1);
    assert_int_equal(tu_status(f->m, fl_id), JM_STATUS_COMPLETED);
    assert_int_equal(tu_status(f->m, xy_id), JM_STATUS_QUEUED);
    jm_close(other);
}

typedef struct done_arg {
    jm_manager *m;
    const char *id;
} done_arg;

static int is_completed(void *arg)
{
    done_arg *a = arg;
    return tu_status(a->m, a->id) == JM_STATUS_COMPLETED;
}

static void register_while_running(void **state)
{
    fx *f = *state;
    jm_executor fl = make_ex("FL");
    assert_int_equal(jm_register(f->m, &fl, NULL), JM_OK);
    assert_int_equal(jm_start(f->m, 2), JM_OK);

    /* Another process (here: manager) queues an XY job; the running pool
     * cannot take it yet. */
    jm_manager *other = NULL;
    assert_int_equal(jm_open(&f->cfg, &other), JM_OK);
    jm_executor xy_other = make_ex("XY");
    assert_int_equal(jm_register(other, &xy_other, NULL), JM_OK);
    char xy_id[JM_JOB_ID_SIZE], fl_id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(other, "XY", NULL, NULL, xy_id), JM_OK);
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, fl_id), JM_OK);
    done_arg fa = {f->m, fl_id};
    assert_true(tu_wait_until(is_completed, &fa, TU_TIMEOUT_MS));
    /* The FL job ran after the XY one was due: XY was skipped, not late. */
    assert_int_equal(tu_status(f->m, xy_id), JM_STATUS_QUEUED);

    /* Register XY on the running manager: its job runs there, and new
     * XY jobs created locally run too. */
    jm_executor xy = make_ex("XY");
    assert_int_equal(jm_register(f->m, &xy, NULL), JM_OK);
    done_arg xa = {f->m, xy_id};
    assert_true(tu_wait_until(is_completed, &xa, TU_TIMEOUT_MS));
    char xy2[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "XY", NULL, NULL, xy2), JM_OK);
    done_arg xa2 = {f->m, xy2};
    assert_true(tu_wait_until(is_completed, &xa2, TU_TIMEOUT_MS));
    /* They ran on this manager's pool (exec_ok counts), not elsewhere. */
    assert_int_equal(atomic_load(&runs), 3);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->m, xy_id, &j), JM_OK);
    assert_string_equal(jm_job_message(j), "ok");
    jm_job_free(j);
    assert_int_equal(jm_stop(f->m, 1000), JM_OK);
    jm_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_refuses_malformed),
        cmocka_unit_test(registry_duplicates_conflict),
        cmocka_unit_test(registry_types_and_find),
        cmocka_unit_test(registry_holds_every_type),
        cmocka_unit_test_setup_teardown(register_refusals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(only_registered_types_are_claimed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(register_while_running, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
