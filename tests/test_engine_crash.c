/*
 * Flush and compact crash safety. A forked child works on an engine
 * (inserts, flushes, soft deletes, purges of both kinds, merges) and is
 * killed with SIGKILL at a random point; it reports to the parent, through
 * a pipe, each operation as it begins and as it ends. The parent then
 * reopens the engine and checks that every row committed before the
 * interrupted operation is there exactly once with the same document and
 * times, that the interrupted operation happened entirely or not at all,
 * that no orphan files remain, and that every segment file decodes and
 * agrees with the catalog. The seed is printed; JM_CRASH_SEED replays it.
 */
#define _POSIX_C_SOURCE 200809L /* kill, fdopen */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "segment.h"
#include "jobmgr.h"
#include "jobmgr/engine.h"
#include "test_util.h"

#define ROUNDS 20
#define MIN_ROUNDS 5
#define BUDGET_MS 20000 /* stop early (after MIN_ROUNDS) past this */
#define MAX_KEYS 65536
#define MAX_OPS_BEFORE_KILL 20
/* Longest busy wait between an operation's start and the kill: about
 * the time a flush or merge takes with its fsyncs. */
#define MAX_DELAY_US 20000
/* The operations a kill aims at; crash-prone ones more often. */
static const int aims[] = {'F', 'F', 'M', 'M', 'P', 'C', 'I', 'D'};
#define MAX_INSERT_BATCH 8

typedef enum { K_ABSENT, K_LIVE, K_DELETED, K_GONE } key_state;

/* What the parent knows: the state and creation time of every key. */
typedef struct model {
    key_state state[MAX_KEYS];
    int64_t created[MAX_KEYS];
    int64_t max_key;
    int64_t next_created;
} model;

/* One pipe record. Ops begin with an upper-case kind, end with lower case. */
typedef struct rec {
    int32_t kind;
    int32_t pad;
    int64_t arg;
} rec;

static model M;
static model observed;

static void doc_for(int64_t created, char *buf, size_t len)
{
    snprintf(buf, len, "{\"c\":%lld,\"pad\":\"%0*d\"}", (long long)created,
             (int)(created % 53), 7);
}

/* --- the child ---------------------------------------------------------- */

static void say(int fd, int kind, int64_t arg)
{
    rec r = {kind, 0, arg};
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
}

static void fail_child(int fd, int code)
{
    say(fd, 'E', code);
    fprintf(stderr, "crash child: %s (%s)\n", jm_last_error(), jm_err_name(code));
    _exit(2);
}

/* The child's own view, to choose sensible operations. */
static int64_t live_keys[MAX_KEYS];
static int64_t live_created[MAX_KEYS];
static size_t nlive;

static void child(const char *dir, int fd, unsigned seed)
{
    srand(seed);
    jm_engine *e = NULL;
    int rc = jm_engine_open(dir, &e);
    if (rc)
        fail_child(fd, rc);
    const jm_host *h = jm_engine_host(e);
    nlive = 0;
    for (int64_t k = 1; k <= M.max_key; k++) {
        if (M.state[k] == K_LIVE) {
            live_keys[nlive] = k;
            live_created[nlive++] = M.created[k];
        }
    }
    int64_t created = M.next_created;
    int64_t max_key = M.max_key;
    char doc[128];
    for (;;) {
        int op = rand() % 10;
        if (op < 4) {
            int n = 1 + rand() % MAX_INSERT_BATCH;
            for (int i = 0; i < n; i++) {
                if (max_key + 1 >= MAX_KEYS)
                    _exit(0);
                doc_for(created, doc, sizeof doc);
                say(fd, 'I', created);
                int64_t key = 0;
                if ((rc = jm_engine_insert(e, "ns", "t", doc, created, &key)))
                    fail_child(fd, rc);
                say(fd, 'i', key);
                live_keys[nlive] = key;
                live_created[nlive++] = created;
                max_key = key;
                created++;
            }
        } else if (op < 6) {
            jm_host_flush out;
            say(fd, 'F', 0);
            if ((rc = h->flush(h->self, "ns", "t", &out)))
                fail_child(fd, rc);
            say(fd, 'f', out.rows);
        } else if (op == 6 && nlive > 0) {
            size_t i = (size_t)rand() % nlive;
            int64_t key = live_keys[i];
            nlive--;
            live_keys[i] = live_keys[nlive];
            live_created[i] = live_created[nlive];
            say(fd, 'D', key);
            if ((rc = jm_engine_soft_delete(e, "ns", "t", key, 0)))
                fail_child(fd, rc);
            say(fd, 'd', key);
        } else if (op == 7) {
            jm_host_purge p;
            say(fd, 'P', 0);
            if ((rc = h->purge(h->self, "ns", "t", JM_PURGE_DELETED_BEFORE, INT64_MAX, 0,
                               INT64_MAX, &p)))
                fail_child(fd, rc);
            say(fd, 'p', p.rows);
        } else if (op == 8 && nlive > 0) {
            /* Evict the oldest few live rows (and deleted ones as old). */
            int64_t oldest = INT64_MAX;
            for (size_t i = 0; i < nlive; i++)
                if (live_created[i] < oldest)
                    oldest = live_created[i];
            int64_t cutoff = oldest + 1 + rand() % 4;
            say(fd, 'C', cutoff);
            jm_host_purge p;
            if ((rc = h->purge(h->self, "ns", "t", JM_PURGE_CREATED_BEFORE, cutoff, 0,
                               INT64_MAX, &p)))
                fail_child(fd, rc);
            say(fd, 'c', p.rows);
            size_t w = 0;
            for (size_t i = 0; i < nlive; i++) {
                if (live_created[i] >= cutoff) {
                    live_keys[w] = live_keys[i];
                    live_created[w++] = live_created[i];
                }
            }
            nlive = w;
        } else if (op == 9) {
            jm_host_segment *segs = NULL;
            size_t n = 0;
            if ((rc = h->list_segments(h->self, "ns", "t", &segs, &n)))
                fail_child(fd, rc);
            if (n >= 2) {
                int64_t ids[64];
                size_t take = n < 64 ? n : 64;
                size_t first = take > 2 ? (size_t)rand() % (take - 1) : 0;
                size_t m = 0;
                for (size_t i = first; i < take; i++)
                    ids[m++] = segs[i].id;
                jm_host_segment merged;
                say(fd, 'M', (int64_t)m);
                if ((rc = h->merge_segments(h->self, "ns", "t", ids, m, &merged)))
                    fail_child(fd, rc);
                say(fd, 'm', merged.rows);
            }
            h->free_segments(h->self, segs);
        }
    }
}

/* --- the parent's checks -------------------------------------------------- */

typedef struct inflight {
    int kind;       /* 0: none */
    int64_t arg;    /* created_at (insert), key (delete), cutoff (purge C) */
} inflight;

static int scan_row(void *arg, const jm_host_row *row)
{
    (void)arg;
    char want[128];
    if (row->key <= 0 || row->key >= MAX_KEYS || observed.state[row->key] != K_ABSENT)
        return -1000; /* out of range or seen twice */
    doc_for(row->created_at, want, sizeof want);
    if (row->doc_len != strlen(want) || memcmp(row->doc, want, row->doc_len) != 0)
        return -1001;
    observed.state[row->key] = row->deleted_at ? K_DELETED : K_LIVE;
    observed.created[row->key] = row->created_at;
    if (row->key > observed.max_key)
        observed.max_key = row->key;
    return 0;
}

/* Checks the reopened engine against the model and the interrupted op,
 * then adopts what it found as the new model. */
static void check_rows(jm_engine *e, const inflight *x, unsigned seed)
{
    memset(&observed, 0, sizeof observed);
    int rc = jm_engine_scan(e, "ns", "t", 1, scan_row, NULL);
    if (rc)
        fail_msg("seed %u: scan failed %d (%s)", seed, rc, jm_last_error());
    int64_t all = 0, live = 0, seen_all = 0, seen_live = 0;
    assert_int_equal(jm_engine_count(e, "ns", "t", 1, &all), JM_OK);
    assert_int_equal(jm_engine_count(e, "ns", "t", 0, &live), JM_OK);
    int64_t affected = 0, affected_gone = 0, extra = 0;
    int64_t top = observed.max_key > M.max_key ? observed.max_key : M.max_key;
    for (int64_t k = 1; k <= top; k++) {
        key_state m = M.state[k], o = observed.state[k];
        if (o != K_ABSENT) {
            seen_all++;
            seen_live += o == K_LIVE;
        }
        if (o != K_ABSENT && m != K_ABSENT && observed.created[k] != M.created[k])
            fail_msg("seed %u: key %lld created_at changed", seed, (long long)k);
        int in_purge = (x->kind == 'P' && m == K_DELETED) ||
                       (x->kind == 'C' && (m == K_LIVE || m == K_DELETED) &&
                        M.created[k] < x->arg);
        if (in_purge) {
            affected++;
            affected_gone += o == K_ABSENT;
        }
        switch (m) {
        case K_ABSENT:
        case K_GONE:
            if (o == K_ABSENT)
                break;
            /* Only the interrupted insert may have added a row. */
            if (m == K_ABSENT && x->kind == 'I' && k > M.max_key && o == K_LIVE &&
                observed.created[k] == x->arg && extra == 0) {
                extra++;
                break;
            }
            fail_msg("seed %u: key %lld present but never committed (or purged)", seed,
                     (long long)k);
            break;
        case K_LIVE:
            if (o == K_LIVE || (in_purge && o == K_ABSENT) ||
                (x->kind == 'D' && x->arg == k && o == K_DELETED))
                break;
            fail_msg("seed %u: committed live key %lld is %s", seed, (long long)k,
                     o == K_ABSENT ? "missing" : "deleted");
            break;
        case K_DELETED:
            if (o == K_DELETED || (in_purge && o == K_ABSENT))
                break;
            fail_msg("seed %u: soft-deleted key %lld is %s", seed, (long long)k,
                     o == K_ABSENT ? "missing" : "live again");
            break;
        }
    }
    /* A purge is one transaction: all of its rows went, or none. */
    if (affected_gone != 0 && affected_gone != affected)
        fail_msg("seed %u: interrupted purge removed %lld of %lld rows", seed,
                 (long long)affected_gone, (long long)affected);
    assert_int_equal(all, seen_all);
    assert_int_equal(live, seen_live);
    /* Adopt what is there. */
    for (int64_t k = 1; k <= top; k++) {
        if (observed.state[k] != K_ABSENT) {
            M.state[k] = observed.state[k];
            M.created[k] = observed.created[k];
        } else if (M.state[k] != K_ABSENT) {
            M.state[k] = K_GONE;
        }
    }
    if (observed.max_key > M.max_key)
        M.max_key = observed.max_key;
}

/* Every segment file is recorded, decodes, and holds exactly the rows the
 * catalog places in it; nothing else is in the directory. */
static void check_files(const char *dir, unsigned seed)
{
    char *path = tu_path(dir, "catalog.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    free(path);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *ent;
    int64_t files = 0;
    while ((ent = readdir(d)) != NULL) {
        const char *name = ent->d_name;
        if (strstr(name, ".tmp"))
            fail_msg("seed %u: temporary file %s left behind", seed, name);
        long long id = 0;
        char tail[8] = "";
        if (sscanf(name, "seg-%lld%7s", &id, tail) != 2 || strcmp(tail, ".jms") != 0)
            continue;
        files++;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT rows, (SELECT count(*) FROM rows WHERE "
                                            "segment_id = ?1) FROM segments WHERE id = ?1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW)
            fail_msg("seed %u: orphan segment file %s", seed, name);
        int64_t rows = sqlite3_column_int64(st, 0), placed = sqlite3_column_int64(st, 1);
        sqlite3_finalize(st);
        char *fp = tu_path(dir, name);
        FILE *f = fopen(fp, "rb");
        assert_non_null(f);
        static uint8_t buf[8 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        free(fp);
        jm__segment *seg = NULL;
        if (jm__segment_decode(buf, len, &seg) != JM_OK)
            fail_msg("seed %u: %s does not decode: %s", seed, name, jm_last_error());
        assert_int_equal((int64_t)seg->n, rows);
        assert_int_equal(placed, rows);
        /* Each row of the file is placed in this very segment. */
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM rows WHERE key = ?1 AND "
                                            "segment_id = ?2",
                                            -1, &st, NULL),
                         SQLITE_OK);
        for (size_t i = 0; i < seg->n; i++) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, seg->rows[i].key);
            sqlite3_bind_int64(st, 2, id);
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            if (sqlite3_column_int64(st, 0) != 1)
                fail_msg("seed %u: %s holds key %lld the catalog places elsewhere", seed, name,
                         (long long)seg->rows[i].key);
        }
        sqlite3_finalize(st);
        jm__segment_free(seg);
    }
    closedir(d);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM segments", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    if (sqlite3_column_int64(st, 0) != files)
        fail_msg("seed %u: %lld segments recorded, %lld files", seed,
                 (long long)sqlite3_column_int64(st, 0), (long long)files);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Applies one finished record to the model; returns the op it ends. */
static void apply(const rec *r, inflight *x, unsigned seed)
{
    switch (r->kind) {
    case 'I':
    case 'D':
    case 'P':
    case 'C':
    case 'F':
    case 'M':
        x->kind = r->kind;
        x->arg = r->arg;
        return;
    case 'i':
        M.state[r->arg] = K_LIVE;
        M.created[r->arg] = x->arg;
        if (r->arg > M.max_key)
            M.max_key = r->arg;
        M.next_created = x->arg + 1;
        break;
    case 'd':
        M.state[r->arg] = K_DELETED;
        break;
    case 'p':
        for (int64_t k = 1; k <= M.max_key; k++)
            if (M.state[k] == K_DELETED)
                M.state[k] = K_GONE;
        break;
    case 'c':
        for (int64_t k = 1; k <= M.max_key; k++)
            if ((M.state[k] == K_LIVE || M.state[k] == K_DELETED) && M.created[k] < x->arg)
                M.state[k] = K_GONE;
        break;
    case 'f':
    case 'm':
        break;
    case 'E':
        fail_msg("seed %u: the child failed with %lld", seed, (long long)r->arg);
        break;
    default:
        fail_msg("seed %u: bad record %d", seed, r->kind);
    }
    x->kind = 0;
}

/* Spins rather than sleeps: the point is to land anywhere in the child's
 * operation, at microsecond resolution. */
static void busy_wait_us(int64_t us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static int read_rec(int fd, rec *r)
{
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t n = read(fd, (char *)r + got, sizeof *r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}

static void test_crash_during_flush_purge_and_merge(void **state)
{
    (void)state;
    const char *env = getenv("JM_CRASH_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10)
                        : (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("crash test seed %u (replay with JM_CRASH_SEED=%u)\n", seed, seed);
    fflush(stdout);
    srand(seed);
    char *dir = tu_tmpdir();
    jm_engine *e = NULL;
    assert_int_equal(jm_engine_open(dir, &e), JM_OK);
    assert_int_equal(jm_engine_create_namespace(e, "ns"), JM_OK);
    assert_int_equal(jm_engine_create_table(e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    jm_engine_close(e);
    memset(&M, 0, sizeof M);
    M.next_created = 1000;

    int64_t start = tu_mono_ms();
    int rounds = 0, interrupted[128] = {0};
    for (; rounds < ROUNDS; rounds++) {
        if (rounds >= MIN_ROUNDS && tu_mono_ms() - start > BUDGET_MS)
            break;
        unsigned child_seed = (unsigned)rand();
        /* Aim at an operation: after warming up for a few operations, wait
         * for one of the chosen kind to begin, then let it run a random
         * while before the kill. */
        int warmup = 1 + rand() % MAX_OPS_BEFORE_KILL;
        int aim = aims[rand() % (int)(sizeof aims / sizeof *aims)];
        int64_t delay_us = rand() % MAX_DELAY_US;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, fds[1], child_seed);
            _exit(0);
        }
        close(fds[1]);
        inflight x = {0, 0};
        rec r;
        int ended = 0;
        while (read_rec(fds[0], &r)) {
            apply(&r, &x, seed);
            if (r.kind >= 'a' && r.kind <= 'z')
                ended++;
            if (ended >= warmup && r.kind == aim)
                break;
        }
        busy_wait_us(delay_us);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        while (read_rec(fds[0], &r))
            apply(&r, &x, seed);
        close(fds[0]);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            fail_msg("seed %u: child exited with %d", seed, WEXITSTATUS(status));
        interrupted[x.kind & 127]++;

        assert_int_equal(jm_engine_open(dir, &e), JM_OK);
        check_rows(e, &x, seed);
        jm_engine_close(e);
        check_files(dir, seed);
        int64_t max_created = 0;
        for (int64_t k = 1; k <= M.max_key; k++)
            if (M.state[k] != K_ABSENT && M.created[k] > max_created)
                max_created = M.created[k];
        if (max_created >= M.next_created)
            M.next_created = max_created + 1;
    }
    printf("%d rounds; interrupted: insert %d, flush %d, delete %d, purge %d, evict %d, "
           "merge %d, between ops %d; %lld keys\n",
           rounds, interrupted['I'], interrupted['F'], interrupted['D'], interrupted['P'],
           interrupted['C'], interrupted['M'], interrupted[0], (long long)M.max_key);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_during_flush_purge_and_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
