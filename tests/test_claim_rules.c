/*
 * The claim rules in memory (src/store/claim_rules.c), which both stores
 * judge with: what holds a job back and in what order (a pause, then an
 * exclusive running job on its resource, then a full limit), wildcard
 * conflicts, limits per resource and for each resource, and when the
 * running jobs must be read at all. The stores' own tests (test_conflicts
 * on both) cover reading the rules and the claims around them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "claim_rules.h"

#define KEY_SIZE 96

static const char *const ID_A = "FL-00000000-0000-8000-8000-000000000001";
static const char *const ID_B = "CO-00000000-0000-8000-8000-000000000002";

static int fx_setup(void **state)
{
    jm__rules *r = calloc(1, sizeof *r);
    *state = r;
    return r ? 0 : -1;
}

static int fx_teardown(void **state)
{
    jm__rules *r = *state;
    jm__rules_free(r);
    free(r);
    return 0;
}

/* The reason that holds a job back, or "" if nothing does. */
static const char *held(const jm__rules *r, const char *type, const char *resource)
{
    static char key[KEY_SIZE];
    if (!jm__rules_held_by(r, type, resource, key, sizeof key))
        key[0] = '\0';
    return key;
}

static void nothing_holds_without_rules(void **state)
{
    jm__rules *r = *state;
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_string_equal(held(r, "FL", "db.t"), "");
    assert_false(jm__rules_needs_runs(r, "FL", "db.t"));
    assert_false(jm__rules_needs_runs(r, "FL", NULL));
}

static void exclusive_conflict_holds_on_the_same_resource_only(void **state)
{
    jm__rules *r = *state;
    assert_int_equal(jm__rules_add_conflict(r, "CO", "FL", 1), JM_OK);
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_string_equal(held(r, "CO", "db.t"), ID_A);
    assert_string_equal(held(r, "CO", "db.u"), "");
    assert_string_equal(held(r, "CO", NULL), "");
    /* A type the conflict does not name runs beside it. */
    assert_string_equal(held(r, "SE", "db.t"), "");
    assert_true(jm__rules_needs_runs(r, "CO", "db.t"));
    assert_false(jm__rules_needs_runs(r, "SE", "db.t"));
    assert_false(jm__rules_needs_runs(r, "CO", NULL));
}

static void shared_conflict_holds_nothing(void **state)
{
    jm__rules *r = *state;
    assert_int_equal(jm__rules_add_conflict(r, "CO", "FL", 0), JM_OK);
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_string_equal(held(r, "CO", "db.t"), "");
}

static void wildcard_conflicts(void **state)
{
    jm__rules *r = *state;
    /* "*" with CO: CO excludes every type on its resource, itself too. */
    assert_int_equal(jm__rules_add_conflict(r, "*", "CO", 1), JM_OK);
    assert_int_equal(jm__rules_add_run(r, ID_B, "CO", "db.t"), JM_OK);
    assert_string_equal(held(r, "FL", "db.t"), ID_B);
    assert_string_equal(held(r, "CO", "db.t"), ID_B);
    assert_true(jm__rules_needs_runs(r, "SE", "db.t"));
    jm__rules_clear(r);
    jm__rules_runs_clear(r);
    /* "*" with "*": one job per resource. */
    assert_int_equal(jm__rules_add_conflict(r, "*", "*", 1), JM_OK);
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_string_equal(held(r, "SE", "db.t"), ID_A);
    assert_string_equal(held(r, "SE", "db.u"), "");
}

static void an_exact_pair_overrides_a_wildcard(void **state)
{
    jm__rules *r = *state;
    assert_int_equal(jm__rules_add_conflict(r, "*", "*", 1), JM_OK);
    assert_int_equal(jm__rules_add_conflict(r, "CO", "FL", 0), JM_OK);
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_string_equal(held(r, "CO", "db.t"), "");
    assert_string_equal(held(r, "SE", "db.t"), ID_A);
}

static void limits_count_by_type_and_resource(void **state)
{
    jm__rules *r = *state;
    assert_int_equal(jm__rules_add_limit(r, "FL", "", 2), JM_OK);   /* FL anywhere */
    assert_int_equal(jm__rules_add_limit(r, "", "db.t", 3), JM_OK); /* any type on db.t */
    assert_int_equal(jm__rules_add_limit(r, "CO", "*", 1), JM_OK);  /* CO per resource */
    assert_true(jm__rules_needs_runs(r, "FL", NULL));
    assert_false(jm__rules_needs_runs(r, "CO", NULL)); /* "each" needs a resource */
    assert_true(jm__rules_needs_runs(r, "CO", "db.u"));
    assert_false(jm__rules_needs_runs(r, "SE", "db.u"));

    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_string_equal(held(r, "FL", "db.x"), "");
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", NULL), JM_OK);
    assert_string_equal(held(r, "FL", "db.x"), "limit:FL@*");

    assert_int_equal(jm__rules_add_run(r, ID_B, "CO", "db.t"), JM_OK);
    assert_string_equal(held(r, "SE", "db.t"), ""); /* 2 of 3 on db.t */
    assert_int_equal(jm__rules_add_run(r, ID_B, "SE", "db.t"), JM_OK);
    assert_string_equal(held(r, "SE", "db.t"), "limit:*@db.t");
    assert_string_equal(held(r, "SE", "db.u"), "");
    assert_string_equal(held(r, "CO", "db.u"), "");
    assert_int_equal(jm__rules_add_run(r, ID_B, "CO", "db.u"), JM_OK);
    assert_string_equal(held(r, "CO", "db.u"), "limit:CO@db.u");
    assert_string_equal(held(r, "CO", NULL), "");
}

static void a_pause_comes_first(void **state)
{
    jm__rules *r = *state;
    assert_int_equal(jm__rules_add_conflict(r, "CO", "FL", 1), JM_OK);
    assert_int_equal(jm__rules_add_run(r, ID_A, "FL", "db.t"), JM_OK);
    assert_int_equal(jm__rules_add_pause(r, JM_PAUSE_RESOURCE, "db.t", 5), JM_OK);
    assert_string_equal(held(r, "CO", "db.t"), "paused:resource:db.t");
    assert_int_equal(jm__rules_add_pause(r, JM_PAUSE_TYPE, "SE", 6), JM_OK);
    assert_string_equal(held(r, "SE", NULL), "paused:type:SE");
    assert_false(r->pause_all);
    /* Pausing everything is the store's to act on: it claims nothing. */
    assert_int_equal(jm__rules_add_pause(r, JM_PAUSE_ALL, NULL, 7), JM_OK);
    assert_true(r->pause_all);
    assert_int_equal(r->npauses, 3);
    assert_int_equal(r->pauses[2].since, 7);
    assert_string_equal(r->pauses[2].what, "");
    jm__rules_clear(r);
    assert_false(r->pause_all);
    assert_int_equal(r->npauses, 0);
    /* The running jobs are kept apart from the rules. */
    assert_int_equal(r->nruns, 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(nothing_holds_without_rules),
        T(exclusive_conflict_holds_on_the_same_resource_only),
        T(shared_conflict_holds_nothing),
        T(wildcard_conflicts),
        T(an_exact_pair_overrides_a_wildcard),
        T(limits_count_by_type_and_resource),
        T(a_pause_comes_first),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
