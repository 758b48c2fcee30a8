/*
 * The run journal: its lock tells a live owner from a dead one (whatever
 * became of the pid), its slots which claimed runs had started, and it is
 * removed when nothing in it is still needed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal.h"
#include "test_util.h"

#define INSTANCE 0x1234abcdLL

typedef struct fixture {
    char *dir;
    char *db;
    char path[4200];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    assert_int_equal(jm__journal_path(f->db, INSTANCE, f->path, sizeof f->path), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_live_owner_is_alive(void **state)
{
    fixture *f = *state;
    jm__journal *j = NULL;
    assert_int_equal(jm__journal_create(f->db, INSTANCE, &j), 0);
    assert_true(exists(f->path));
    /* Another open file description of this very process cannot take the
     * lock either: the owner lives. */
    jm__journal_probe p;
    assert_int_equal(jm__journal_look(f->db, INSTANCE, &p), 0);
    assert_int_equal(p.state, JM__JOURNAL_ALIVE);
    jm__journal_probe_done(&p, 1);
    assert_true(exists(f->path));
    /* A second manager cannot take the same instance's journal. */
    jm__journal *twin = NULL;
    assert_int_not_equal(jm__journal_create(f->db, INSTANCE, &twin), 0);
    assert_null(twin);
    jm__journal_close(j);
    assert_false(exists(f->path)); /* nothing was left marked */
}

static void test_closed_with_marks_is_read(void **state)
{
    fixture *f = *state;
    jm__journal *j = NULL;
    assert_int_equal(jm__journal_create(f->db, INSTANCE, &j), 0);
    int a = jm__journal_mark(j, 41, 1);
    int b = jm__journal_mark(j, 42, 3);
    assert_true(a >= 0 && b >= 0 && a != b);
    jm__journal_clear(j, a); /* its outcome was recorded */
    jm__journal_close(j);
    /* A started run without a recorded outcome keeps the file. */
    assert_true(exists(f->path));

    jm__journal_probe p;
    assert_int_equal(jm__journal_look(f->db, INSTANCE, &p), 0);
    assert_int_equal(p.state, JM__JOURNAL_DEAD);
    assert_int_equal(p.nstarted, 1);
    assert_int_equal(p.started[0].seq, 42);
    assert_int_equal(p.started[0].attempt, 3);
    jm__journal_probe_done(&p, 1);
    assert_false(exists(f->path));

    assert_int_equal(jm__journal_look(f->db, INSTANCE, &p), 0);
    assert_int_equal(p.state, JM__JOURNAL_NONE);
    jm__journal_probe_done(&p, 1);
}

/* The kernel drops the lock of a process that dies without closing. */
static void test_killed_owner_is_dead(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        jm__journal *j = NULL;
        if (jm__journal_create(f->db, INSTANCE, &j) != 0)
            _exit(1);
        if (jm__journal_mark(j, 7, 2) < 0 || jm__journal_mark(j, 9, 1) < 0)
            _exit(2);
        _exit(0); /* no close: as a crash leaves it */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    jm__journal_probe p;
    assert_int_equal(jm__journal_look(f->db, INSTANCE, &p), 0);
    assert_int_equal(p.state, JM__JOURNAL_DEAD);
    assert_int_equal(p.nstarted, 2);
    int64_t sum = 0;
    for (size_t i = 0; i < p.nstarted; i++)
        sum += p.started[i].seq * 10 + p.started[i].attempt;
    assert_int_equal(sum, 72 + 91);
    /* Recovery failed: the file stays for the next try. */
    jm__journal_probe_done(&p, 0);
    assert_true(exists(f->path));
    assert_int_equal(jm__journal_look(f->db, INSTANCE, &p), 0);
    assert_int_equal(p.state, JM__JOURNAL_DEAD);
    jm__journal_probe_done(&p, 1);
    assert_false(exists(f->path));
}

static void test_slots_run_out_and_come_back(void **state)
{
    fixture *f = *state;
    jm__journal *j = NULL;
    assert_int_equal(jm__journal_create(f->db, INSTANCE, &j), 0);
    int last = -1;
    for (int i = 0; i < JM_JOURNAL_SLOTS; i++) {
        last = jm__journal_mark(j, i + 1, 1);
        assert_true(last >= 0);
    }
    assert_int_equal(jm__journal_mark(j, 99999, 1), -1);
    jm__journal_clear(j, last);
    assert_int_equal(jm__journal_mark(j, 99999, 1), last);
    for (int i = 0; i < JM_JOURNAL_SLOTS; i++)
        jm__journal_clear(j, i);
    jm__journal_close(j);
    assert_false(exists(f->path));
    /* NULL journals (none could be made) are accepted everywhere. */
    assert_int_equal(jm__journal_mark(NULL, 1, 1), -1);
    jm__journal_clear(NULL, 0);
    jm__journal_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_live_owner_is_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_with_marks_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_owner_is_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_run_out_and_come_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
