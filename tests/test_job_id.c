/*
 * Job ids: "<type>-<uuid>", two upper-case letters, a lower-case libuuid,
 * 39 characters. jm_job_id_parse() accepts what the library generates and
 * rejects anything else with JM_EINVAL.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "job_id.h"
#include "test_util.h"

#define T0 INT64_C(1700000000000)

typedef struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_manager *m;
} fx;

static jm_decision noop_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static void reg(jm_manager *m, const char *type)
{
    jm_executor ex = {0};
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = type;
    ex.name = "noop";
    ex.execute = noop_execute;
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    jm_config cfg = tu_config(f->db);
    cfg.now_ms = tu_fake_now;
    cfg.now_user = &f->clock;
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    reg(f->m, "FL");
    reg(f->m, "RS");
    reg(f->m, "ZQ");
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

/* The exact shape: AA-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, lower-case hex. */
static void assert_id_shape(const char *id, const char *type)
{
    assert_int_equal(strlen(id), 39);
    assert_memory_equal(id, type, 2);
    assert_int_equal(id[2], '-');
    for (size_t i = 3; i < 39; i++) {
        size_t k = i - 3;
        if (k == 8 || k == 13 || k == 18 || k == 23) {
            assert_int_equal(id[i], '-');
        } else if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
            fail_msg("id %s: character %zu '%c' is not lower-case hex", id, i, id[i]);
        }
    }
}

static void test_parse_generated_ids(void **state)
{
    fx *f = *state;
    static const char *const types[] = {"FL", "RS", "ZQ"};
    for (size_t i = 0; i < 3; i++) {
        char id[JM_JOB_ID_SIZE];
        memset(id, 'X', sizeof id);
        assert_int_equal(jm_create(f->m, types[i], "{}", NULL, id), JM_OK);
        assert_id_shape(id, types[i]);
        /* uuid version 8, RFC variant, the last group the job's seq. */
        assert_int_equal(id[17], '8');
        assert_non_null(strchr("89ab", id[22]));
        char seq[16];
        snprintf(seq, sizeof seq, "%012zx", i + 1);
        assert_string_equal(id + 27, seq);
        char t[3] = {'?', '?', '?'};
        assert_int_equal(jm_job_id_parse(id, t), JM_OK);
        assert_string_equal(t, types[i]);
        assert_int_equal(jm_job_id_parse(id, NULL), JM_OK);
        jm_job *j = NULL;
        assert_int_equal(jm_get(f->m, id, &j), JM_OK);
        assert_string_equal(jm_job_id(j), id);
        assert_string_equal(jm_job_type(j), types[i]);
        jm_job_free(j);
    }
}

static void test_parse_handmade_ids(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        const char *type;
    } good[] = {
        {"FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f", "FL"},
        {"ZZ-00000000-0000-0000-0000-000000000000", "ZZ"},
        {"AB-ffffffff-ffff-ffff-ffff-ffffffffffff", "AB"},
        {"UC-01234567-89ab-cdef-0123-456789abcdef", "UC"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char t[3] = {0};
        int rc = jm_job_id_parse(good[i].id, t);
        if (rc != JM_OK)
            fail_msg("'%s' refused: %s", good[i].id, jm_last_error());
        assert_string_equal(t, good[i].type);
    }
}

static void test_parse_rejects_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "FL",
        "FL-",
        "FL-xyz",
        "-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "fl-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "fL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "FLX-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "F-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "F1-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "\xc3\x89L-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6",
        "FL-0B6C2F3E-8A1D-4C5E-9F70-1A2B3C4D5E6F",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6F",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f0",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f-",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6g",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6 ",
        "FL-{b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6}",
        "FL_0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "FL-0b6c2f3e08a1d-4c5e-9f70-1a2b3c4d5e6f",
        "FL-0b6c2f3-e8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "FL-0b6c2f3e-8a1d-4c5e-9f701-a2b3c4d5e6f",
        "FL-0b6c2f3e08a1d04c5e09f7001a2b3c4d5e6f",
        "FL--b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e\xc3\xa9",
        " FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f\n",
        "0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
        "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f' OR '1'='1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[3] = {0};
        int rc = jm_job_id_parse(bad[i], t);
        if (rc != JM_EINVAL)
            fail_msg("'%s' (row %zu): %s, expected EINVAL", bad[i], i, jm_err_name(rc));
        assert_non_null(jm_last_error());
        assert_true(jm_last_error()[0] != '\0');
        assert_int_equal(jm_job_id_parse(bad[i], NULL), JM_EINVAL);
    }
    assert_int_equal(jm_job_id_parse(NULL, NULL), JM_EINVAL);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

#define N_IDS 10000

static void test_10000_ids_unique(void **state)
{
    fx *f = *state;
    jm_new_job *jobs = calloc(N_IDS, sizeof *jobs);
    char(*ids)[JM_JOB_ID_SIZE] = calloc(N_IDS, JM_JOB_ID_SIZE);
    assert_non_null(jobs);
    assert_non_null(ids);
    for (size_t i = 0; i < N_IDS; i++) {
        jobs[i].type = (i % 2) ? "FL" : "RS";
        jobs[i].params_json = NULL;
        jobs[i].opts = (jm_create_opts)JM_CREATE_OPTS_INIT;
    }
    /* Half in one batch, half one by one. */
    assert_int_equal(jm_create_many(f->m, jobs, N_IDS / 2, ids), JM_OK);
    for (size_t i = N_IDS / 2; i < N_IDS; i++)
        assert_int_equal(jm_create(f->m, jobs[i].type, NULL, NULL, ids[i]), JM_OK);
    for (size_t i = 0; i < N_IDS; i++) {
        assert_id_shape(ids[i], jobs[i].type);
        char t[3];
        assert_int_equal(jm_job_id_parse(ids[i], t), JM_OK);
        assert_string_equal(t, jobs[i].type);
    }
    qsort(ids, N_IDS, JM_JOB_ID_SIZE, cmp_id);
    for (size_t i = 1; i < N_IDS; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    int64_t n = 0;
    assert_int_equal(jm_count(f->m, NULL, &n), JM_OK);
    assert_true(n == N_IDS);
    free(jobs);
    free(ids);
}

/* The random part of an id: the uuid's bytes 6 to 9 (chars 17 to 25). */
static void random_part(const char *id, char out[10])
{
    memcpy(out, id + 17, 9);
    out[9] = '\0';
}

/* A fork's child never draws the random bytes its parent draws: the pool
 * of random bytes the ids come from is emptied in the child. */
static void test_fork_child_draws_its_own_bytes(void **state)
{
    (void)state;
    for (int round = 0; round < 4; round++) {
        char parent_id[JM_JOB_ID_SIZE], child_id[JM_JOB_ID_SIZE] = "";
        /* A pool partly used before the fork. */
        jm__job_id_new("FL", parent_id);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            jm__job_id_new("FL", child_id);
            ssize_t w = write(fds[1], child_id, JM_JOB_ID_SIZE);
            _exit(w == JM_JOB_ID_SIZE ? 0 : 1);
        }
        close(fds[1]);
        jm__job_id_new("FL", parent_id);
        assert_int_equal(read(fds[0], child_id, JM_JOB_ID_SIZE), JM_JOB_ID_SIZE);
        close(fds[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        char a[10], b[10];
        random_part(parent_id, a);
        random_part(child_id, b);
        if (strcmp(a, b) == 0)
            fail_msg("round %d: parent %s and child %s drew the same bytes", round, parent_id,
                     child_id);
    }
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parse_generated_ids),
        cmocka_unit_test(test_parse_handmade_ids),
        cmocka_unit_test(test_parse_rejects_malformed),
        T(test_10000_ids_unique),
        cmocka_unit_test(test_fork_child_draws_its_own_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
