/*
 * Power cuts, simulated: what jm_config.durability promises.
 *
 * The power-cut shim (support/powercut_vfs.h) keeps every write to the
 * database's files in the writing process's memory until that file is
 * synced, so SIGKILL of that process loses exactly what a power cut loses.
 * First the shim itself: the process sees its own pending writes through
 * every connection, and a kill keeps synced data and loses the rest (with
 * the default VFS as the control: a process crash loses nothing).
 *
 * Then jobmgr. A forked child opens a manager on a fresh database and
 * loops: jm_create (some with idempotency keys), jm_run_once (the job
 * completes) and jm_cancel. After every call that returned JM_OK it appends
 * "C <id>", "D <id>" or "X <id>" to a ledger, a plain file written with
 * write() outside SQLite, which the kernel keeps when the child dies. The
 * parent kills the child with SIGKILL once the ledger holds a random
 * number of lines, then checks the database with the default VFS:
 *
 *  - it passes PRAGMA integrity_check and jm_open; every job has a
 *    well-formed id; no idempotency key has two active jobs; at most one
 *    job exists that was never acknowledged (the create the kill cut
 *    short), and it is still queued, so every completed or cancelled job
 *    was acknowledged as created;
 *  - JM_DURABLE_SYNC under power cuts, and both settings under plain
 *    process crashes: every acknowledged create exists, every acknowledged
 *    completion is completed, every acknowledged cancel is cancelled;
 *  - JM_DURABLE_PROCESS under power cuts: what survives is a prefix of the
 *    acknowledged history (only the last moments before the cut are lost,
 *    never something older while something newer survives), and across the
 *    rounds something acknowledged was in fact lost: the simulation bites.
 *    Short rounds end before the log is first checkpointed (they lose all
 *    they did), long ones after (a checkpoint's sync keeps what came before).
 *
 * The figures (acknowledged writes, lost writes) are printed per round and
 * per scenario; JM_POWERCUT_SEED=N replays a seed's cut points (the child's
 * timing still varies).
 */
#define _POSIX_C_SOURCE 200809L /* fork, kill */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "jobmgr.h"
#include "jobmgr/sqlite.h"
#include "powercut_vfs.h"
#include "test_util.h"

#define JOB_TYPE "PC"
#define NKEYS 8          /* idempotency keys, reused: some creates conflict */
#define MAX_IDS 100000   /* jobs one child may create */
#define CHILD_MAX_MS 120000 /* a child never killed gives up */
#define LINE_MAX_BYTES 128
/* Short rounds under JM_DURABLE_PROCESS: a job's create or outcome adds a
 * few pages to the log, so this many stay far below the 1000 pages at
 * which a checkpoint syncs it, and a power cut loses them all. */
#define SHORT_LINES 100

/* The child that a failing test left behind: the teardown kills it. */
static pid_t live_child;

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static void rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : UINT64_C(0x9e3779b97f4a7c15);
}

static int teardown(void **state)
{
    (void)state;
    if (live_child > 0) {
        kill(live_child, SIGKILL);
        waitpid(live_child, NULL, 0);
        live_child = 0;
    }
    return 0;
}

static pid_t spawn(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0)
        live_child = pid;
#ifdef __linux__
    else
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan if the test dies */
#endif
    return pid;
}

/* SIGKILL, the power cut. Returns 1 if the child was alive until then
 * (it never exits on its own while the test waits), else 0. */
static int cut(pid_t pid)
{
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    live_child = 0;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static void check_integrity(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0)
        fail_msg("integrity_check of %s: %s", path, res ? res : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- the shim on its own ---- */

typedef struct vfile {
    sqlite3_file *f;
    char *name;
} vfile;

static vfile vopen(sqlite3_vfs *vfs, const char *path)
{
    vfile v = {calloc(1, (size_t)vfs->szOsFile), NULL};
    assert_non_null(v.f);
    /* A database name is followed by its URI parameters: none here. */
    size_t len = strlen(path);
    char *name = calloc(1, len + 2);
    assert_non_null(name);
    memcpy(name, path, len);
    int out = 0;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB;
    assert_int_equal(vfs->xOpen(vfs, name, v.f, flags, &out), SQLITE_OK);
    v.name = name; /* SQLite keeps the name valid until the close */
    return v;
}

static void vclose(vfile v)
{
    assert_int_equal(v.f->pMethods->xClose(v.f), SQLITE_OK);
    free(v.f);
    free(v.name);
}

static sqlite3_int64 vsize(vfile v)
{
    sqlite3_int64 n = -1;
    assert_int_equal(v.f->pMethods->xFileSize(v.f, &n), SQLITE_OK);
    return n;
}

static void vwrite(vfile v, int byte, int n, sqlite3_int64 off)
{
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    memset(buf, byte, (size_t)n);
    assert_int_equal(v.f->pMethods->xWrite(v.f, buf, n, off), SQLITE_OK);
    free(buf);
}

/* Asserts bytes [off, off + n) read as `byte` through v. */
static void vexpect(vfile v, int byte, int n, sqlite3_int64 off)
{
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(v.f->pMethods->xRead(v.f, buf, n, off), SQLITE_OK);
    for (int i = 0; i < n; i++)
        if (buf[i] != (char)byte)
            fail_msg("byte %lld reads %d, not %d", (long long)(off + i), buf[i], byte);
    free(buf);
}

static off_t disk_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

/* Asserts bytes [off, off + n) of the real file hold `byte`. */
static void disk_expect(const char *path, int byte, int n, off_t off)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)n, off), n);
    for (int i = 0; i < n; i++)
        if (buf[i] != (char)byte)
            fail_msg("byte %lld on disk is %d, not %d", (long long)(off + i), buf[i], byte);
    free(buf);
    close(fd);
}

/* Writes stay in memory until a sync, seen by every file object of the
 * path; a truncation too; unsynced writes outlive a close; delete drops
 * them. */
static void test_vfs_pending_state(void **state)
{
    (void)state;
    assert_int_equal(pc_register(), SQLITE_OK);
    sqlite3_vfs *vfs = jm_sqlite_vfs_find(PC_NAME);
    assert_non_null(vfs);
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char *path = tu_path(dir, "file");
    int64_t before = pc_pending_bytes();

    vfile a = vopen(vfs, path);
    vfile b = vopen(vfs, path);
    vwrite(a, 'a', 5000, 0);
    assert_int_equal(disk_size(path), 0);
    assert_true(pc_pending_bytes() > before);
    assert_int_equal(vsize(b), 5000);
    vexpect(b, 'a', 5000, 0);

    /* Shrunk and grown again: the cut-off bytes read as zeros. */
    assert_int_equal(b.f->pMethods->xTruncate(b.f, 100), SQLITE_OK);
    vwrite(a, 'b', 10, 200);
    assert_int_equal(vsize(a), 210);
    vexpect(a, 'a', 100, 0);
    vexpect(a, 0, 100, 100);
    vexpect(a, 'b', 10, 200);
    char tail[20];
    assert_int_equal(a.f->pMethods->xRead(a.f, tail, 20, 200), SQLITE_IOERR_SHORT_READ);
    for (int i = 10; i < 20; i++)
        assert_int_equal(tail[i], 0);
    assert_int_equal(disk_size(path), 0);

    /* The sync of either object writes what both wrote. */
    assert_int_equal(b.f->pMethods->xSync(b.f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    assert_int_equal(pc_pending_bytes(), before);
    assert_int_equal(disk_size(path), 210);
    disk_expect(path, 'a', 100, 0);
    disk_expect(path, 0, 100, 100);
    disk_expect(path, 'b', 10, 200);

    /* A truncation below what is on disk, then growth: zeros, at the sync
     * too; until then the disk keeps its bytes. */
    assert_int_equal(a.f->pMethods->xTruncate(a.f, 50), SQLITE_OK);
    assert_int_equal(a.f->pMethods->xTruncate(a.f, 300), SQLITE_OK);
    vexpect(b, 'a', 50, 0);
    vexpect(b, 0, 250, 50);
    assert_int_equal(disk_size(path), 210);
    assert_int_equal(a.f->pMethods->xSync(a.f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    assert_int_equal(disk_size(path), 300);
    disk_expect(path, 'a', 50, 0);
    disk_expect(path, 0, 250, 50);

    /* Unsynced writes outlive the last close, as in a page cache. */
    vwrite(a, 'c', 8192, 4096);
    vclose(a);
    vclose(b);
    assert_true(pc_pending_bytes() > before);
    vfile c = vopen(vfs, path);
    assert_int_equal(vsize(c), 4096 + 8192);
    vexpect(c, 'c', 8192, 4096);
    vclose(c);
    assert_int_equal(disk_size(path), 300);
    int exists = 0;
    assert_int_equal(vfs->xAccess(vfs, path, SQLITE_ACCESS_EXISTS, &exists), SQLITE_OK);
    assert_int_equal(exists, 1);

    assert_int_equal(vfs->xDelete(vfs, path, 0), SQLITE_OK);
    assert_int_equal(pc_pending_bytes(), before);
    assert_int_equal(disk_size(path), -1);
    assert_int_equal(vfs->xAccess(vfs, path, SQLITE_ACCESS_EXISTS, &exists), SQLITE_OK);
    assert_int_equal(exists, 0);

    free(path);
    tu_rmdir(dir);
}

static void child_sql(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        _exit(2);
}

static int64_t child_count(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        _exit(2);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A child commits one row synced and one not, sees both through a second
 * connection, reports, and is killed. Returns what survived: the number
 * of rows, and whether the unsynced one is among them. */
static void commit_and_kill(const char *vfs, int64_t *rows, int64_t *unsynced)
{
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char *db = tu_path(dir, "t.db");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = spawn();
    if (pid == 0) {
        close(fds[0]);
        sqlite3 *h = NULL, *h2 = NULL;
        int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        if (sqlite3_open_v2(db, &h, flags, vfs) != SQLITE_OK)
            _exit(2);
        child_sql(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE t(x TEXT); INSERT INTO t VALUES('synced')");
        /* OFF: the commit is not synced at all. */
        child_sql(h, "PRAGMA synchronous=OFF; INSERT INTO t VALUES('unsynced')");
        if (sqlite3_open_v2(db, &h2, SQLITE_OPEN_READWRITE, vfs) != SQLITE_OK ||
            child_count(h2) != 2)
            _exit(3);
        char ok = 'R';
        if (write(fds[1], &ok, 1) != 1)
            _exit(4);
        for (;;)
            pause(); /* until the cut */
    }
    close(fds[1]);
    char got = 0;
    ssize_t r;
    while ((r = read(fds[0], &got, 1)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    if (r != 1) {
        int status = 0;
        waitpid(pid, &status, 0);
        live_child = 0;
        fail_msg("the child failed before the cut (status %d)", status);
    }
    assert_int_equal(got, 'R');
    assert_true(cut(pid));
    check_integrity(db);
    *rows = tu_sql_int(db, "SELECT count(*) FROM t");
    *unsynced = tu_sql_int(db, "SELECT count(*) FROM t WHERE x = 'unsynced'");
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM t WHERE x = 'synced'"), 1);
    free(db);
    tu_rmdir(dir);
}

static void test_vfs_kill_loses_unsynced(void **state)
{
    (void)state;
    assert_int_equal(pc_register(), SQLITE_OK);
    int64_t rows = 0, unsynced = 0;
    commit_and_kill(PC_NAME, &rows, &unsynced);
    assert_int_equal(rows, 1);
    assert_int_equal(unsynced, 0);
    /* The control: without the shim the kernel keeps the unsynced row. */
    commit_and_kill(NULL, &rows, &unsynced);
    assert_int_equal(rows, 2);
    assert_int_equal(unsynced, 1);
}

/* ---- jobmgr under cuts ---- */

/* The cut comes once the ledger holds a random number of lines: up to
 * short_lines in odd rounds, up to long_lines in even ones. Work, not time,
 * so that a loaded machine cuts at the same points as an idle one. */
typedef struct scenario {
    const char *label;
    jm_durability durability;
    int power; /* the child writes through the power-cut shim */
    int rounds;
    int short_lines;
    int long_lines;
} scenario;

static char ran_id[JM_JOB_ID_SIZE]; /* the child's last run job */

static jm_decision pc_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    snprintf(ran_id, sizeof ran_id, "%s", jm_job_id(jm_ctx_job(ctx)));
    return jm_decision_completed("done", NULL);
}

static const jm_executor pc_executor = {
    JM_EXECUTOR_VERSION, JOB_TYPE, "power cut test", 1, NULL, pc_execute, NULL, JM_CLASS_NORMAL, NULL,
};

static void ledger_line(int fd, const char *line)
{
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n)
        _exit(5);
}

/* Acknowledged: one line, one write(), after the call returned JM_OK. */
static void ledger_ack(int fd, char what, const char *id)
{
    char line[LINE_MAX_BYTES];
    snprintf(line, sizeof line, "%c %s\n", what, id);
    ledger_line(fd, line);
}

/* An error the loop does not expect: said in the ledger, for the parent. */
static _Noreturn void child_fail(int fd, const char *what, int rc)
{
    char line[LINE_MAX_BYTES * 4];
    snprintf(line, sizeof line, "E %s: %s (%s)\n", what, jm_strerror(rc), jm_last_error());
    ledger_line(fd, line);
    _exit(3);
}

static _Noreturn void child_main(const scenario *sc, const char *db, const char *ledger,
                                 uint64_t seed)
{
    int fd = open(ledger, O_WRONLY | O_APPEND);
    if (fd < 0)
        _exit(2);
    rng_seed(seed);
    jm_config cfg = tu_config(db);
    cfg.sqlite_vfs = sc->power ? PC_NAME : NULL;
    cfg.durability = sc->durability;
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc)
        child_fail(fd, "jm_open", rc);
    if ((rc = jm_register(m, &pc_executor, NULL)))
        child_fail(fd, "jm_register", rc);
    /* Jobs created and not finished, as far as this child knows. */
    char (*open_ids)[JM_JOB_ID_SIZE] = malloc(sizeof *open_ids * MAX_IDS);
    if (!open_ids)
        _exit(2);
    int nopen = 0, created = 0;
    int64_t give_up = tu_mono_ms() + CHILD_MAX_MS;
    while (tu_mono_ms() < give_up) {
        unsigned r = (unsigned)(rng() % 10);
        if (r < 5 && created < MAX_IDS) {
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            char key[16];
            if (r == 0) {
                snprintf(key, sizeof key, "k%u", (unsigned)(rng() % NKEYS));
                o.idempotency_key = key;
            }
            char id[JM_JOB_ID_SIZE];
            rc = jm_create(m, JOB_TYPE, "{\"n\": 1}", &o, id);
            if (rc == JM_OK) {
                ledger_ack(fd, 'C', id);
                memcpy(open_ids[nopen++], id, JM_JOB_ID_SIZE);
                created++;
            } else if (!(rc == JM_ECONFLICT && o.idempotency_key)) {
                child_fail(fd, "jm_create", rc);
            }
        } else if (r < 8) {
            int ran = 0;
            ran_id[0] = '\0';
            if ((rc = jm_run_once(m, 1, &ran)))
                child_fail(fd, "jm_run_once", rc);
            if (ran == 1) {
                ledger_ack(fd, 'D', ran_id);
                for (int i = 0; i < nopen; i++) {
                    if (strcmp(open_ids[i], ran_id) == 0) {
                        memmove(open_ids[i], open_ids[--nopen], JM_JOB_ID_SIZE);
                        break;
                    }
                }
            }
        } else if (nopen > 0) {
            int i = (int)(rng() % (uint64_t)nopen);
            if ((rc = jm_cancel(m, open_ids[i])))
                child_fail(fd, "jm_cancel", rc);
            ledger_ack(fd, 'X', open_ids[i]);
            memmove(open_ids[i], open_ids[--nopen], JM_JOB_ID_SIZE);
        }
    }
    ledger_line(fd, "E never cut\n");
    _exit(4);
}

/* The parent's view of a running child's ledger. */
typedef struct watch {
    const char *path;
    off_t off;
    int lines;
    int target;
    int failed; /* an "E" line: the child gave up */
    char last;  /* the last byte read */
} watch;

static int ledger_reached(void *arg)
{
    watch *w = arg;
    int fd = open(w->path, O_RDONLY);
    if (fd < 0)
        return 0;
    char buf[4096];
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf, w->off)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            int line_start = w->off + i == 0 || (i > 0 ? buf[i - 1] : w->last) == '\n';
            if (line_start && buf[i] == 'E')
                w->failed = 1;
            if (buf[i] == '\n')
                w->lines++;
        }
        w->last = buf[n - 1];
        w->off += n;
    }
    close(fd);
    return w->failed || w->lines >= w->target;
}

typedef struct op {
    char what; /* 'C', 'D', 'X' */
    char id[JM_JOB_ID_SIZE];
} op;

typedef struct seen_job {
    char id[JM_JOB_ID_SIZE];
    jm_status status;
} seen_job;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const seen_job *)a)->id, ((const seen_job *)b)->id);
}

static const seen_job *find_job(const seen_job *jobs, size_t n, const char *id)
{
    seen_job key;
    snprintf(key.id, sizeof key.id, "%s", id);
    return bsearch(&key, jobs, n, sizeof *jobs, by_id);
}

/* The acknowledged operations, in order; a child's error fails the test.
 * A last line without its newline was being written at the cut: not
 * acknowledged. */
static op *read_ledger(const char *path, size_t *nops)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1024, n = 0;
    op *ops = malloc(cap * sizeof *ops);
    assert_non_null(ops);
    char line[LINE_MAX_BYTES * 4];
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break;
        line[--len] = '\0';
        if (line[0] == 'E')
            fail_msg("the child failed: %s", line + 2);
        if (len != 2 + JM_JOB_ID_SIZE - 1 || !strchr("CDX", line[0]) || line[1] != ' ')
            fail_msg("ledger line %zu is malformed: %s", n + 1, line);
        if (n == cap) {
            cap *= 2;
            ops = realloc(ops, cap * sizeof *ops);
            assert_non_null(ops);
        }
        ops[n].what = line[0];
        memcpy(ops[n].id, line + 2, JM_JOB_ID_SIZE);
        n++;
    }
    fclose(f);
    *nops = n;
    return ops;
}

/* Every job in the database, sorted by id. */
static seen_job *read_jobs(jm_manager *m, size_t *njobs)
{
    int64_t total = -1;
    assert_int_equal(jm_count(m, NULL, &total), JM_OK);
    seen_job *jobs = malloc(((size_t)total + 1) * sizeof *jobs);
    assert_non_null(jobs);
    size_t n = 0;
    char after[JM_JOB_ID_SIZE] = "";
    for (;;) {
        jm_filter f = JM_FILTER_INIT;
        f.limit = JM_LIST_MAX_LIMIT;
        f.after_id = after[0] ? after : NULL;
        jm_job_list *page = NULL;
        assert_int_equal(jm_list(m, &f, &page), JM_OK);
        size_t k = jm_job_list_count(page);
        for (size_t i = 0; i < k; i++) {
            const jm_job *j = jm_job_list_at(page, i);
            assert_true(n < (size_t)total);
            snprintf(jobs[n].id, sizeof jobs[n].id, "%s", jm_job_id(j));
            jobs[n].status = jm_job_status(j);
            n++;
        }
        int more = jm_job_list_has_more(page);
        if (k > 0)
            snprintf(after, sizeof after, "%s", jm_job_id(jm_job_list_at(page, k - 1)));
        jm_job_list_free(page);
        if (!more || k == 0)
            break;
    }
    assert_int_equal((int64_t)n, total);
    qsort(jobs, n, sizeof *jobs, by_id);
    *njobs = n;
    return jobs;
}

/* Whether an acknowledged operation's effect is in the database. */
static int present(const op *o, const seen_job *jobs, size_t njobs)
{
    const seen_job *j = find_job(jobs, njobs, o->id);
    if (!j)
        return 0;
    switch (o->what) {
    case 'D':
        return j->status == JM_STATUS_COMPLETED;
    case 'X':
        return j->status == JM_STATUS_CANCELLED;
    default:
        return 1;
    }
}

static int acknowledged_create(const op *ops, size_t nops, const char *id)
{
    for (size_t i = 0; i < nops; i++)
        if (ops[i].what == 'C' && strcmp(ops[i].id, id) == 0)
            return 1;
    return 0;
}

/* Checks one round's database against its ledger; returns the number of
 * acknowledged operations lost. */
static size_t check_round(const scenario *sc, int round, const char *db, const char *ledger,
                          size_t *acked)
{
    check_integrity(db);
    jm_config cfg = tu_config(db);
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK)
        fail_msg("%s, round %d: jm_open after the cut: %s", sc->label, round, jm_last_error());

    size_t nops = 0, njobs = 0;
    op *ops = read_ledger(ledger, &nops);
    seen_job *jobs = read_jobs(m, &njobs);

    /* Whatever exists is well-formed and was acknowledged, but for the
     * one create the cut may have caught between commit and ledger. */
    int unacked = 0;
    for (size_t i = 0; i < njobs; i++) {
        char type[3];
        if (jm_job_id_parse(jobs[i].id, type) != JM_OK || strcmp(type, JOB_TYPE) != 0)
            fail_msg("%s, round %d: malformed job %s", sc->label, round, jobs[i].id);
        if (acknowledged_create(ops, nops, jobs[i].id))
            continue;
        unacked++;
        if (jobs[i].status != JM_STATUS_QUEUED)
            fail_msg("%s, round %d: job %s was never acknowledged yet is %s", sc->label, round,
                     jobs[i].id, jm_status_name(jobs[i].status));
    }
    if (unacked > 1)
        fail_msg("%s, round %d: %d jobs were never acknowledged", sc->label, round, unacked);

    /* One active job per idempotency key, whatever was lost. */
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        jm_filter f = JM_FILTER_INIT;
        f.idempotency_key = key;
        f.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                     JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING);
        int64_t active = -1;
        assert_int_equal(jm_count(m, &f, &active), JM_OK);
        if (active > 1)
            fail_msg("%s, round %d: key %s has %lld active jobs", sc->label, round, key,
                     (long long)active);
    }

    /* What survived is a prefix of what was acknowledged; with the promise
     * of survival, all of it. */
    int must_all = sc->durability == JM_DURABLE_SYNC || !sc->power;
    size_t lost = 0;
    for (size_t i = 0; i < nops; i++) {
        if (present(&ops[i], jobs, njobs)) {
            if (lost > 0)
                fail_msg("%s, round %d: acknowledged %c %s (#%zu) survived, %zu older ones "
                         "did not", sc->label, round, ops[i].what, ops[i].id, i + 1, lost);
            continue;
        }
        if (must_all)
            fail_msg("%s, round %d: acknowledged %c %s (#%zu of %zu) was lost", sc->label,
                     round, ops[i].what, ops[i].id, i + 1, nops);
        lost++;
    }

    jm_close(m);
    free(jobs);
    free(ops);
    *acked = nops;
    return lost;
}

static void run_scenario(const scenario *sc)
{
    assert_int_equal(pc_register(), SQLITE_OK);
    const char *env = getenv("JM_POWERCUT_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10)
                        : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) ^
                              ((uint64_t)sc->power << 40) ^ ((uint64_t)sc->durability << 41);
    printf("%s: seed %llu (replay with JM_POWERCUT_SEED=%llu)\n", sc->label,
           (unsigned long long)seed, (unsigned long long)seed);
    rng_seed(seed);
    size_t acked_total = 0, lost_total = 0;
    int rounds_losing = 0;
    int64_t t0 = tu_mono_ms();
    for (int round = 1; round <= sc->rounds; round++) {
        char *dir = tu_tmpdir();
        assert_non_null(dir);
        char *db = tu_path(dir, "jobs.db");
        char *ledger = tu_path(dir, "ledger");
        int fd = open(ledger, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        close(fd);
        watch w = {ledger, 0, 0, 0, 0, 0};
        int most = round % 2 ? sc->short_lines : sc->long_lines;
        w.target = 1 + (int)(rng() % (uint64_t)most);
        uint64_t child_seed = rng();
        pid_t pid = spawn();
        if (pid == 0)
            child_main(sc, db, ledger, child_seed);
        /* Generous: creating the schema and the first syncs on a loaded
         * machine. */
        if (!tu_wait_until(ledger_reached, &w, 4 * TU_TIMEOUT_MS))
            fail_msg("%s, round %d: the ledger reached %d of %d lines", sc->label, round,
                     w.lines, w.target);
        if (!cut(pid)) {
            size_t n = 0;
            free(read_ledger(ledger, &n)); /* fails with the child's error, if it said one */
            fail_msg("%s, round %d: the child ended before the cut", sc->label, round);
        }
        size_t acked = 0;
        size_t lost = check_round(sc, round, db, ledger, &acked);
        acked_total += acked;
        lost_total += lost;
        rounds_losing += lost > 0;
        printf("  round %d: cut after %d lines, %zu acknowledged, %zu lost\n", round, w.target,
               acked, lost);
        free(db);
        free(ledger);
        tu_rmdir(dir);
    }
    printf("%s: %d rounds, %zu acknowledged writes, %zu lost (in %d rounds), %lld ms\n",
           sc->label, sc->rounds, acked_total, lost_total, rounds_losing,
           (long long)(tu_mono_ms() - t0));
    if (sc->durability == JM_DURABLE_PROCESS && sc->power && lost_total == 0)
        fail_msg("%s: no acknowledged write was lost in %d rounds: the power cut did not "
                 "bite", sc->label, sc->rounds);
}

static void test_sync_power_cut(void **state)
{
    (void)state;
    static const scenario sc = {"JM_DURABLE_SYNC, power cut", JM_DURABLE_SYNC, 1, 12, 30, 150};
    run_scenario(&sc);
}

static void test_process_power_cut(void **state)
{
    (void)state;
    static const scenario sc = {"JM_DURABLE_PROCESS, power cut", JM_DURABLE_PROCESS, 1, 12,
                                SHORT_LINES, 1500};
    run_scenario(&sc);
}

static void test_process_crash(void **state)
{
    (void)state;
    static const scenario sc = {"JM_DURABLE_PROCESS, process crash", JM_DURABLE_PROCESS, 0, 6,
                                SHORT_LINES, 1500};
    run_scenario(&sc);
}

static void test_sync_crash(void **state)
{
    (void)state;
    static const scenario sc = {"JM_DURABLE_SYNC, process crash", JM_DURABLE_SYNC, 0, 4, 30,
                                100};
    run_scenario(&sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_vfs_pending_state, teardown),
        cmocka_unit_test_teardown(test_vfs_kill_loses_unsynced, teardown),
        cmocka_unit_test_teardown(test_sync_power_cut, teardown),
        cmocka_unit_test_teardown(test_process_power_cut, teardown),
        cmocka_unit_test_teardown(test_process_crash, teardown),
        cmocka_unit_test_teardown(test_sync_crash, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
