/*
 * The reference engine as a host (jm_engine_host()): every operation of
 * the vtable the built-in executors call, with its metrics checked against
 * the data and the files on disk, its bad input, and the collection of
 * orphan files at open.
 */
#define _POSIX_C_SOURCE 200809L /* popen, strndup */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobmgr.h"
#include "jobmgr/engine.h"
#include "test_util.h"

typedef struct fx {
    char *dir;
    jm_engine *e;
    const jm_host *h;
    void *self;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    if (!f->dir || jm_engine_open(f->dir, &f->e) != JM_OK)
        return -1;
    f->h = jm_engine_host(f->e);
    f->self = f->h->self;
    if (jm_engine_create_namespace(f->e, "ns") != JM_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    jm_engine_close(f->e);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void make_table(fx *f, const char *name, jm_table_type type)
{
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    if (type == JM_TABLE_STREAM)
        o.ttl_seconds = 60;
    assert_int_equal(jm_engine_create_table(f->e, "ns", name, type, &o), JM_OK);
}

static void doc_for(int64_t i, char *buf, size_t len)
{
    snprintf(buf, len, "{\"i\":%lld,\"pad\":\"%0*d\"}", (long long)i, (int)(i % 17), 0);
}

/* Inserts rows first..last with created_at = 1000 * key. */
static void insert_range(fx *f, const char *table, int64_t first, int64_t last)
{
    char doc[96];
    for (int64_t i = first; i <= last; i++) {
        doc_for(i, doc, sizeof doc);
        int64_t key = 0;
        assert_int_equal(jm_engine_insert(f->e, "ns", table, doc, 1000 * i, &key), JM_OK);
        assert_int_equal(key, i);
    }
}

static jm_host_flush flush(fx *f, const char *table)
{
    jm_host_flush out;
    assert_int_equal(f->h->flush(f->self, "ns", table, &out), JM_OK);
    return out;
}

static int64_t count(fx *f, const char *table, int include_deleted)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_count(f->e, "ns", table, include_deleted, &n), JM_OK);
    return n;
}

static void expect_row(fx *f, const char *table, int64_t key)
{
    char want[96], *doc = NULL;
    doc_for(key, want, sizeof want);
    assert_int_equal(jm_engine_get(f->e, "ns", table, key, &doc), JM_OK);
    assert_string_equal(doc, want);
    jm_free(doc);
}

static void expect_gone(fx *f, const char *table, int64_t key)
{
    char *doc = NULL;
    assert_int_equal(jm_engine_get(f->e, "ns", table, key, &doc), JM_ENOTFOUND);
}

static int file_exists(fx *f, const char *name)
{
    char *p = tu_path(f->dir, name);
    struct stat sb;
    int r = stat(p, &sb) == 0;
    free(p);
    return r;
}

static int64_t file_size(fx *f, int64_t seg)
{
    char name[64];
    snprintf(name, sizeof name, "seg-%lld.jms", (long long)seg);
    char *p = tu_path(f->dir, name);
    struct stat sb;
    int64_t r = stat(p, &sb) == 0 ? (int64_t)sb.st_size : -1;
    free(p);
    return r;
}

/* The segment files in the directory. */
static int count_files(fx *f, const char *suffix)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '%s$'", f->dir, suffix);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

static size_t segments(fx *f, const char *table, jm_host_segment **out)
{
    size_t n = 0;
    assert_int_equal(f->h->list_segments(f->self, "ns", table, out, &n), JM_OK);
    return n;
}

static int64_t catalog_scalar(fx *f, const char *sql)
{
    char *path = tu_path(f->dir, "catalog.db");
    int64_t v = tu_sql_int(path, sql);
    free(path);
    return v;
}

/* ------------------------------------------------------------------------ */

static void test_table_info(void **state)
{
    fx *f = *state;
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->self, "ns", "t", &info), JM_ENOTFOUND);
    assert_int_equal(f->h->table_info(f->self, "ns", "../t", &info), JM_EINVAL);
    assert_int_equal(f->h->table_info(f->self, "ns", "t", NULL), JM_EINVAL);
    assert_int_equal(f->h->table_info(NULL, "ns", "t", &info), JM_EINVAL);
    make_table(f, "t", JM_TABLE_SHARED);
    insert_range(f, "t", 1, 5);
    assert_int_equal(f->h->table_info(f->self, "ns", "t", &info), JM_OK);
    assert_int_equal(info.type, JM_TABLE_SHARED);
    assert_int_equal(info.ttl_seconds, 0);
    assert_string_equal(info.owner_user_id, "");
    assert_int_equal(info.buffered_rows, 5);
    assert_int_equal(info.segments, 0);
    assert_int_equal(info.segment_bytes, 0);
}

static void test_flush_moves_rows(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    jm_host_flush out = flush(f, "t");
    assert_int_equal(out.rows, 0);
    assert_int_equal(out.bytes, 0);
    assert_int_equal(count_files(f, ".jms"), 0);

    insert_range(f, "t", 1, 10);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 3, 0), JM_OK);
    out = flush(f, "t");
    assert_int_equal(out.rows, 10);
    jm_host_segment *segs = NULL;
    assert_int_equal(segments(f, "t", &segs), 1);
    assert_int_equal(out.bytes, segs[0].bytes);
    assert_int_equal(segs[0].rows, 10);
    assert_int_equal(file_size(f, segs[0].id), out.bytes);
    f->h->free_segments(f->self, segs);
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->self, "ns", "t", &info), JM_OK);
    assert_int_equal(info.buffered_rows, 0);
    assert_int_equal(info.segments, 1);
    assert_int_equal(info.segment_bytes, out.bytes);
    assert_int_equal(count_files(f, ".jms"), 1);
    assert_int_equal(count_files(f, ".tmp"), 0);
    assert_int_equal(count(f, "t", 1), 10);
    assert_int_equal(count(f, "t", 0), 9);
    for (int64_t k = 1; k <= 10; k++)
        expect_row(f, "t", k);

    insert_range(f, "t", 11, 12);
    out = flush(f, "t");
    assert_int_equal(out.rows, 2);
    assert_int_equal(count_files(f, ".jms"), 2);
    assert_int_equal(count(f, "t", 1), 12);

    jm_host_flush o2;
    assert_int_equal(f->h->flush(f->self, "ns", "nope", &o2), JM_ENOTFOUND);
    assert_int_equal(f->h->flush(f->self, "ns", "a b", &o2), JM_EINVAL);
    assert_int_equal(f->h->flush(f->self, "ns", "t", NULL), JM_EINVAL);
}

static void test_purge_deleted_before_with_continuation(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    /* Rows 1..10 in segment A, 11..20 in segment B, 21..30 buffered. */
    insert_range(f, "t", 1, 10);
    flush(f, "t");
    insert_range(f, "t", 11, 20);
    flush(f, "t");
    insert_range(f, "t", 21, 30);
    jm_host_segment *before = NULL;
    assert_int_equal(segments(f, "t", &before), 2);
    /* Soft-delete every odd key at time 5000, key 2 at 9000 (after the cut-off). */
    for (int64_t k = 1; k <= 30; k += 2)
        assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", k, 5000), JM_OK);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 2, 9000), JM_OK);

    jm_host_purge p;
    /* First batch: 4 rows (1, 3, 5, 7), all in segment A. */
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 6000, 0, 4, &p),
                     JM_OK);
    assert_int_equal(p.rows, 4);
    assert_int_equal(p.last_key, 7);
    assert_int_equal(p.files_rewritten, 1);
    assert_true(p.bytes_freed > 0);
    /* Segment A was replaced by a smaller file; the old one is gone. */
    jm_host_segment *after = NULL;
    assert_int_equal(segments(f, "t", &after), 2);
    assert_int_equal(after[0].id, before[1].id);
    assert_int_equal(after[1].rows, 6);
    assert_true(after[1].bytes < before[0].bytes);
    assert_int_equal(before[0].bytes - after[1].bytes, p.bytes_freed);
    assert_int_equal(file_size(f, before[0].id), -1);
    assert_int_equal(file_size(f, after[1].id), after[1].bytes);
    f->h->free_segments(f->self, after);

    /* Continue: 9, 11..19 odd (segment B), 21..29 odd (buffer) = 11 rows. */
    assert_int_equal(
        f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 6000, p.last_key, 100, &p),
        JM_OK);
    assert_int_equal(p.rows, 11);
    assert_int_equal(p.last_key, 29);
    assert_int_equal(p.files_rewritten, 2);
    /* Nothing left after the last key. */
    assert_int_equal(
        f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 6000, p.last_key, 100, &p),
        JM_OK);
    assert_int_equal(p.rows, 0);
    assert_int_equal(p.last_key, 29);

    assert_int_equal(count(f, "t", 1), 15);
    for (int64_t k = 1; k <= 30; k++) {
        if (k % 2 == 1)
            expect_gone(f, "t", k);
        else
            expect_row(f, "t", k);
    }
    /* Key 2 was deleted after the cut-off: kept until a later cut-off. */
    assert_int_equal(count(f, "t", 0), 14);
    assert_int_equal(count_files(f, ".jms"), 2);
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 10000, 0, 100, &p),
                     JM_OK);
    assert_int_equal(p.rows, 1);
    expect_gone(f, "t", 2);
    f->h->free_segments(f->self, before);
}

static void test_purge_created_before_empties_segments(void **state)
{
    fx *f = *state;
    make_table(f, "s", JM_TABLE_STREAM);
    insert_range(f, "s", 1, 5); /* created 1000..5000 */
    flush(f, "s");
    insert_range(f, "s", 6, 10);
    flush(f, "s");
    insert_range(f, "s", 11, 12);
    int64_t total_bytes = 0;
    jm_host_segment *segs = NULL;
    size_t n = segments(f, "s", &segs);
    for (size_t i = 0; i < n; i++)
        total_bytes += segs[i].bytes;
    f->h->free_segments(f->self, segs);
    /* Deleted or not, everything created before 7500 goes: 1..7. */
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "s", 2, 0), JM_OK);
    jm_host_purge p;
    assert_int_equal(f->h->purge(f->self, "ns", "s", JM_PURGE_CREATED_BEFORE, 7500, 0, 1000, &p),
                     JM_OK);
    assert_int_equal(p.rows, 7);
    assert_int_equal(p.last_key, 7);
    assert_int_equal(p.files_rewritten, 2);
    /* The first segment emptied and vanished; the second shrank. */
    assert_int_equal(segments(f, "s", &segs), 1);
    assert_int_equal(segs[0].rows, 3);
    assert_int_equal(p.bytes_freed, total_bytes - segs[0].bytes);
    f->h->free_segments(f->self, segs);
    assert_int_equal(count_files(f, ".jms"), 1);
    assert_int_equal(count(f, "s", 1), 5);
    for (int64_t k = 8; k <= 12; k++)
        expect_row(f, "s", k);
    /* Buffered rows go too, and a purge of nothing is fine. */
    assert_int_equal(f->h->purge(f->self, "ns", "s", JM_PURGE_CREATED_BEFORE, 1000000, 0, 1000, &p),
                     JM_OK);
    assert_int_equal(p.rows, 5);
    assert_int_equal(count(f, "s", 1), 0);
    assert_int_equal(count_files(f, ".jms"), 0);
    assert_int_equal(f->h->purge(f->self, "ns", "s", JM_PURGE_CREATED_BEFORE, 1000000, 0, 1000, &p),
                     JM_OK);
    assert_int_equal(p.rows, 0);
}

static void test_purge_bad_input(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    jm_host_purge p;
    assert_int_equal(f->h->purge(f->self, "ns", "t", (jm_purge_kind)9, 1, 0, 1, &p), JM_EINVAL);
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 1, 0, 0, &p),
                     JM_EINVAL);
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, -1, 0, 1, &p),
                     JM_EINVAL);
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 1, -1, 1, &p),
                     JM_EINVAL);
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 1, 0, 1, NULL),
                     JM_EINVAL);
    assert_int_equal(f->h->purge(f->self, "ns", "x\"; DROP TABLE rows; --",
                                 JM_PURGE_DELETED_BEFORE, 1, 0, 1, &p),
                     JM_EINVAL);
    assert_int_equal(f->h->purge(f->self, "ns", "gone", JM_PURGE_DELETED_BEFORE, 1, 0, 1, &p),
                     JM_ENOTFOUND);
}

static void test_merge_segments(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    make_table(f, "other", JM_TABLE_USER);
    insert_range(f, "other", 1, 2);
    flush(f, "other");
    for (int i = 0; i < 4; i++) {
        insert_range(f, "t", 1 + i * 5, 5 + i * 5);
        flush(f, "t");
    }
    insert_range(f, "t", 21, 22); /* stays buffered */
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 4, 0), JM_OK);
    jm_host_segment *segs = NULL, *theirs = NULL;
    assert_int_equal(segments(f, "t", &segs), 4);
    assert_int_equal(segments(f, "other", &theirs), 1);

    jm_host_segment m;
    int64_t ids[4] = {segs[0].id, segs[2].id, segs[3].id, theirs[0].id};
    /* A segment of another table, an unknown one, a repeat: refused. */
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", ids, 4, &m), JM_ENOTFOUND);
    int64_t unknown[1] = {9999};
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", unknown, 1, &m), JM_ENOTFOUND);
    int64_t twice[2] = {segs[0].id, segs[0].id};
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", twice, 2, &m), JM_EINVAL);
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", ids, 0, &m), JM_EINVAL);
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", NULL, 1, &m), JM_EINVAL);
    assert_int_equal(count_files(f, ".jms"), 5);

    /* Merge segments 1, 3 and 4 (not adjacent: their key ranges interleave
     * with segment 2's). */
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", ids, 3, &m), JM_OK);
    assert_int_equal(m.rows, 15);
    assert_true(m.id > segs[3].id);
    assert_int_equal(file_size(f, m.id), m.bytes);
    for (int i = 0; i < 3; i++)
        assert_int_equal(file_size(f, ids[i]), -1);
    jm_host_segment *now = NULL;
    assert_int_equal(segments(f, "t", &now), 2);
    assert_int_equal(now[0].id, segs[1].id);
    assert_int_equal(now[1].id, m.id);
    f->h->free_segments(f->self, now);
    for (int64_t k = 1; k <= 22; k++)
        expect_row(f, "t", k);
    assert_int_equal(count(f, "t", 1), 22);
    assert_int_equal(count(f, "t", 0), 21);
    /* The soft delete survived the rewrite. */
    jm_host_purge p;
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, INT64_MAX, 0, 10, &p),
                     JM_OK);
    assert_int_equal(p.rows, 1);
    assert_int_equal(p.last_key, 4);

    /* The purge rewrote the merged segment; merge what is there now. */
    assert_int_equal(segments(f, "t", &now), 2);
    assert_int_equal(now[0].id, segs[1].id);
    assert_true(now[1].id > m.id);
    int64_t all[2] = {now[0].id, now[1].id};
    f->h->free_segments(f->self, now);
    jm_host_segment m2;
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", all, 2, &m2), JM_OK);
    assert_int_equal(m2.rows, 19);
    int64_t n = 0;
    assert_int_equal(jm_engine_segment_count(f->e, "ns", "t", &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(count_files(f, ".jms"), 2); /* t's one, other's one */
    f->h->free_segments(f->self, segs);
    f->h->free_segments(f->self, theirs);
    f->h->free_segments(f->self, NULL);
}

static void test_drop_table(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_SHARED);
    make_table(f, "keep", JM_TABLE_USER);
    assert_int_equal(jm_engine_create_user(f->e, "u1", "alice"), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns", "t", "u1"), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "t", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "keep", NULL), JM_OK);
    insert_range(f, "t", 1, 4);
    jm_host_flush a = flush(f, "t");
    insert_range(f, "t", 5, 7);
    jm_host_flush b = flush(f, "t");
    insert_range(f, "t", 8, 9);
    insert_range(f, "keep", 1, 3);
    flush(f, "keep");

    jm_host_drop d;
    assert_int_equal(f->h->drop_table(f->self, "ns", "t", &d), JM_OK);
    assert_int_equal(d.rows, 9);
    assert_int_equal(d.files, 2);
    assert_int_equal(d.bytes, a.bytes + b.bytes);
    assert_int_equal(f->h->drop_table(f->self, "ns", "t", &d), JM_ENOTFOUND);
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->self, "ns", "t", &info), JM_ENOTFOUND);
    assert_int_equal(count_files(f, ".jms"), 1);
    int64_t n = -1;
    assert_int_equal(jm_engine_count_acl(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(jm_engine_count_live_queries(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(count(f, "keep", 1), 3);
    assert_int_equal(f->h->drop_table(f->self, "ns", "..", &d), JM_EINVAL);
    /* The name can be used again, from key 1. */
    make_table(f, "t", JM_TABLE_USER);
    insert_range(f, "t", 1, 1);
}

typedef struct owned {
    char names[8][64];
    jm_table_type types[8];
    int n;
    int stop;
} owned;

static int collect_owned(void *arg, const char *ns, const char *table, jm_table_type type)
{
    owned *o = arg;
    snprintf(o->names[o->n], sizeof o->names[0], "%s:%s", ns, table);
    o->types[o->n++] = type;
    return o->stop;
}

static void test_user_operations(void **state)
{
    fx *f = *state;
    jm_host_user u;
    assert_int_equal(f->h->user_info(f->self, "u1", &u), JM_ENOTFOUND);
    assert_int_equal(f->h->user_info(f->self, "u 1", &u), JM_EINVAL);
    assert_int_equal(f->h->user_info(f->self, "u1", NULL), JM_EINVAL);
    assert_int_equal(jm_engine_create_user(f->e, "u1", "alice"), JM_OK);
    assert_int_equal(jm_engine_create_user(f->e, "u2", "bob"), JM_OK);
    assert_int_equal(f->h->user_info(f->self, "u1", &u), JM_OK);
    assert_string_equal(u.username, "alice");
    assert_int_equal(u.deleted_at, 0);

    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.owner_user_id = "u1";
    assert_int_equal(jm_engine_create_table(f->e, "ns", "a", JM_TABLE_USER, &o), JM_OK);
    assert_int_equal(jm_engine_create_namespace(f->e, "ns2"), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "ns2", "b", JM_TABLE_SHARED, &o), JM_OK);
    make_table(f, "c", JM_TABLE_SHARED);
    owned got = {0};
    assert_int_equal(f->h->user_tables(f->self, "u1", collect_owned, &got), JM_OK);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.names[0], "ns:a");
    assert_int_equal(got.types[0], JM_TABLE_USER);
    assert_string_equal(got.names[1], "ns2:b");
    assert_int_equal(got.types[1], JM_TABLE_SHARED);
    owned stop = {.stop = 7};
    assert_int_equal(f->h->user_tables(f->self, "u1", collect_owned, &stop), 7);
    assert_int_equal(stop.n, 1);
    owned none = {0};
    assert_int_equal(f->h->user_tables(f->self, "u2", collect_owned, &none), JM_OK);
    assert_int_equal(none.n, 0);
    assert_int_equal(f->h->user_tables(f->self, "u1", NULL, NULL), JM_EINVAL);

    assert_int_equal(jm_engine_grant(f->e, "ns", "c", "u1"), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns2", "b", "u1"), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns", "c", "u2"), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "a", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "c", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "c", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u2", "ns", "c", NULL), JM_OK);

    /* A live user cannot be deleted for good. */
    assert_int_equal(f->h->delete_user(f->self, "u1"), JM_ESTATE);
    assert_int_equal(f->h->delete_user(f->self, "nobody"), JM_ENOTFOUND);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    assert_int_equal(f->h->user_info(f->self, "u1", &u), JM_OK);
    assert_true(u.deleted_at > 0);

    int64_t removed = -1;
    assert_int_equal(f->h->remove_user_acl(f->self, "u1", &removed), JM_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(f->h->remove_user_acl(f->self, "u1", &removed), JM_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(f->h->remove_user_live_queries(f->self, "u1", &removed), JM_OK);
    assert_int_equal(removed, 3);
    assert_int_equal(f->h->remove_user_acl(f->self, "../u", &removed), JM_EINVAL);
    assert_int_equal(f->h->remove_user_live_queries(NULL, "u1", &removed), JM_EINVAL);
    assert_int_equal(f->h->delete_user(f->self, "u1"), JM_OK);
    assert_int_equal(f->h->user_info(f->self, "u1", &u), JM_ENOTFOUND);
    assert_int_equal(f->h->delete_user(f->self, "u1"), JM_ENOTFOUND);
    /* Another user's entries are untouched; the tables lost their owner. */
    int64_t n = 0;
    assert_int_equal(jm_engine_count_acl(f->e, "u2", &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jm_engine_count_live_queries(f->e, "u2", &n), JM_OK);
    assert_int_equal(n, 1);
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->self, "ns", "a", &info), JM_OK);
    assert_string_equal(info.owner_user_id, "");
}

/* --- export and import ---------------------------------------------------- */

typedef struct dump {
    char meta[1024];
    int meta_calls;
    int row_calls;
    size_t n;
    jm_host_row rows[3000];
    char *docs[3000];
    int stop_rows; /* return this from the rows callback */
    fx *f;         /* if set, the meta callback rewrites the table meanwhile */
} dump;

static int dump_meta(void *arg, const char *meta)
{
    dump *d = arg;
    snprintf(d->meta, sizeof d->meta, "%s", meta);
    d->meta_calls++;
    if (d->f) {
        /* Writers go on during an export: purge, merge, flush and insert
         * must not disturb the snapshot being read. */
        fx *f = d->f;
        jm_host_purge p;
        if (f->h->purge(f->self, "ns", "t", JM_PURGE_CREATED_BEFORE, 4000, 0, 100, &p) != JM_OK)
            return -1;
        jm_host_segment *segs = NULL;
        size_t n = 0;
        if (f->h->list_segments(f->self, "ns", "t", &segs, &n) != JM_OK || n < 2)
            return -2;
        int64_t ids[2] = {segs[0].id, segs[1].id};
        f->h->free_segments(f->self, segs);
        jm_host_segment m;
        if (f->h->merge_segments(f->self, "ns", "t", ids, 2, &m) != JM_OK)
            return -3;
        if (jm_engine_insert(f->e, "ns", "t", "{\"late\":1}", 0, NULL) != JM_OK)
            return -4;
    }
    return 0;
}

static int dump_rows(void *arg, const jm_host_row *rows, size_t n)
{
    dump *d = arg;
    d->row_calls++;
    for (size_t i = 0; i < n && d->n < 3000; i++) {
        d->rows[d->n] = rows[i];
        d->docs[d->n] = strndup(rows[i].doc, rows[i].doc_len);
        d->rows[d->n].doc = d->docs[d->n];
        d->n++;
    }
    return d->stop_rows;
}

static void dump_free(dump *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->docs[i]);
    free(d);
}

static dump *export_table(fx *f, const char *ns, const char *table, int expect)
{
    dump *d = calloc(1, sizeof *d);
    jm_host_export_cb cb = {dump_meta, dump_rows, d};
    assert_int_equal(f->h->export_table(f->self, ns, table, &cb), expect);
    return d;
}

static void import_dump(fx *f, const dump *d, const char *ns, const char *table, int overwrite)
{
    void *imp = NULL;
    assert_int_equal(f->h->import_begin(f->self, ns, table, d->meta, overwrite, &imp), JM_OK);
    for (size_t i = 0; i < d->n; i += 700) {
        size_t n = d->n - i < 700 ? d->n - i : 700;
        assert_int_equal(f->h->import_rows(f->self, imp, d->rows + i, n), JM_OK);
    }
    assert_int_equal(f->h->import_commit(f->self, imp), JM_OK);
}

static void expect_same_rows(const dump *a, const dump *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->rows[i].key, b->rows[i].key);
        assert_int_equal(a->rows[i].created_at, b->rows[i].created_at);
        assert_int_equal(a->rows[i].deleted_at, b->rows[i].deleted_at);
        assert_int_equal(a->rows[i].doc_len, b->rows[i].doc_len);
        assert_memory_equal(a->rows[i].doc, b->rows[i].doc, a->rows[i].doc_len);
    }
}

static void test_export_import_round_trip(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_user(f->e, "owner", "o"), JM_OK);
    assert_int_equal(jm_engine_create_user(f->e, "reader", "r"), JM_OK);
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.owner_user_id = "owner";
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_SHARED, &o), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns", "t", "reader"), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns", "t", "owner"), JM_OK);
    /* 2500 rows: two segments and a buffer, some soft-deleted; purge a few
     * so keys have gaps. */
    insert_range(f, "t", 1, 1000);
    flush(f, "t");
    insert_range(f, "t", 1001, 2000);
    flush(f, "t");
    insert_range(f, "t", 2001, 2500);
    for (int64_t k = 5; k <= 2500; k += 97)
        assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", k, 123456), JM_OK);
    jm_host_purge p;
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_CREATED_BEFORE, 3000, 0, 100, &p),
                     JM_OK);
    assert_int_equal(p.rows, 2);

    dump *a = export_table(f, "ns", "t", JM_OK);
    assert_int_equal(a->meta_calls, 1);
    assert_int_equal(a->n, 2498);
    assert_int_equal(a->row_calls, 3); /* 1000, 1000, 498 */
    assert_non_null(strstr(a->meta, "\"format\":1"));
    assert_non_null(strstr(a->meta, "\"type\":\"Shared\""));
    assert_non_null(strstr(a->meta, "\"owner_user_id\":\"owner\""));
    assert_non_null(strstr(a->meta, "\"acl\":[\"owner\",\"reader\"]"));
    for (size_t i = 1; i < a->n; i++)
        assert_true(a->rows[i].key > a->rows[i - 1].key);
    assert_int_equal(a->rows[0].key, 3);
    assert_int_equal(a->rows[2].key, 5);
    assert_int_equal(a->rows[2].deleted_at, 123456);
    assert_int_equal(a->rows[0].created_at, 3000);

    /* Into a namespace that does not exist yet: it is created. */
    import_dump(f, a, "restored", "t2", 0);
    dump *b = export_table(f, "restored", "t2", JM_OK);
    expect_same_rows(a, b);
    assert_string_equal(a->meta, b->meta);
    /* Restored rows land in the buffer; keys continue after the highest. */
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->self, "restored", "t2", &info), JM_OK);
    assert_int_equal(info.buffered_rows, 2498);
    assert_int_equal(info.segments, 0);
    int64_t key = 0;
    assert_int_equal(jm_engine_insert(f->e, "restored", "t2", "{}", 0, &key), JM_OK);
    assert_int_equal(key, 2501);
    int64_t n = 0;
    assert_int_equal(jm_engine_count_acl(f->e, "reader", &n), JM_OK);
    assert_int_equal(n, 2);
    dump_free(b);

    /* An existing target needs overwrite. */
    void *imp = NULL;
    assert_int_equal(f->h->import_begin(f->self, "restored", "t2", a->meta, 0, &imp),
                     JM_ECONFLICT);
    assert_null(imp);
    /* Overwrite replaces it: the extra row and its segment file go. */
    jm_host_flush fl;
    assert_int_equal(f->h->flush(f->self, "restored", "t2", &fl), JM_OK);
    assert_int_equal(fl.rows, 2499);
    assert_int_equal(count_files(f, ".jms"), 3);
    import_dump(f, a, "restored", "t2", 1);
    assert_int_equal(count_files(f, ".jms"), 2);
    b = export_table(f, "restored", "t2", JM_OK);
    expect_same_rows(a, b);
    dump_free(b);
    /* Staging is empty after commits. */
    assert_int_equal(catalog_scalar(f, "SELECT count(*) FROM import_rows"), 0);
    assert_int_equal(catalog_scalar(f, "SELECT count(*) FROM imports"), 0);
    dump_free(a);
}

static void test_export_reads_a_snapshot_while_writers_go_on(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    insert_range(f, "t", 1, 5);
    flush(f, "t");
    insert_range(f, "t", 6, 10);
    flush(f, "t");
    insert_range(f, "t", 11, 12);
    dump *d = calloc(1, sizeof *d);
    d->f = f;
    jm_host_export_cb cb = {dump_meta, dump_rows, d};
    assert_int_equal(f->h->export_table(f->self, "ns", "t", &cb), JM_OK);
    /* The export saw the table as it was when it began. */
    assert_int_equal(d->n, 12);
    for (size_t i = 0; i < d->n; i++) {
        char want[96];
        doc_for((int64_t)i + 1, want, sizeof want);
        assert_int_equal(d->rows[i].key, (int64_t)i + 1);
        assert_string_equal(d->rows[i].doc, want);
    }
    /* ... and the writers' work is there afterwards. */
    assert_int_equal(count(f, "t", 1), 10);
    int64_t segs = 0;
    assert_int_equal(jm_engine_segment_count(f->e, "ns", "t", &segs), JM_OK);
    assert_int_equal(segs, 1);
    assert_int_equal(count_files(f, ".jms"), 1);
    dump_free(d);
}

static void test_export_stops_and_bad_input(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_STREAM);
    insert_range(f, "t", 1, 3);
    dump *d = calloc(1, sizeof *d);
    d->stop_rows = 5;
    jm_host_export_cb cb = {dump_meta, dump_rows, d};
    assert_int_equal(f->h->export_table(f->self, "ns", "t", &cb), 5);
    assert_non_null(strstr(d->meta, "\"ttl_seconds\":60"));
    assert_non_null(strstr(d->meta, "\"owner_user_id\":null"));
    jm_host_export_cb half = {dump_meta, NULL, d};
    assert_int_equal(f->h->export_table(f->self, "ns", "t", &half), JM_EINVAL);
    assert_int_equal(f->h->export_table(f->self, "ns", "t", NULL), JM_EINVAL);
    assert_int_equal(f->h->export_table(f->self, "ns", "gone", &cb), JM_ENOTFOUND);
    assert_int_equal(f->h->export_table(f->self, "ns/..", "t", &cb), JM_EINVAL);
    dump_free(d);
}

static void test_import_validation_and_abort(void **state)
{
    fx *f = *state;
    void *imp = NULL;
    static const char *const bad_meta[] = {
        "not json",
        "[]",
        "{}",
        "{\"format\":2,\"type\":\"User\"}",
        "{\"format\":\"1\",\"type\":\"User\"}",
        "{\"format\":1}",
        "{\"format\":1,\"type\":\"Table\"}",
        "{\"format\":1,\"type\":\"Stream\"}",
        "{\"format\":1,\"type\":\"Stream\",\"ttl_seconds\":0}",
        "{\"format\":1,\"type\":\"Stream\",\"ttl_seconds\":-5}",
        "{\"format\":1,\"type\":\"Stream\",\"ttl_seconds\":1.5}",
        "{\"format\":1,\"type\":\"User\",\"ttl_seconds\":10}",
        "{\"format\":1,\"type\":\"User\",\"owner_user_id\":\"../x\"}",
        "{\"format\":1,\"type\":\"User\",\"owner_user_id\":5}",
        "{\"format\":1,\"type\":\"User\",\"acl\":[\"u\"]}",
        "{\"format\":1,\"type\":\"Shared\",\"acl\":\"u\"}",
        "{\"format\":1,\"type\":\"Shared\",\"acl\":[1]}",
        "{\"format\":1,\"type\":\"Shared\",\"acl\":[\"a;b\"]}",
    };
    for (size_t i = 0; i < sizeof bad_meta / sizeof *bad_meta; i++) {
        assert_int_equal(f->h->import_begin(f->self, "ns", "t", bad_meta[i], 0, &imp), JM_EINVAL);
        assert_null(imp);
    }
    const char *meta = "{\"format\":1,\"type\":\"Shared\",\"owner_user_id\":\"ghost\","
                       "\"acl\":[\"ghost\",\"u1\"],\"extra\":true}";
    assert_int_equal(f->h->import_begin(f->self, "ns", "x y", meta, 0, &imp), JM_EINVAL);
    assert_int_equal(f->h->import_begin(f->self, "ns", "t", NULL, 0, &imp), JM_EINVAL);
    assert_int_equal(f->h->import_begin(f->self, "ns", "t", meta, 0, NULL), JM_EINVAL);

    /* Abort leaves nothing behind. */
    assert_int_equal(f->h->import_begin(f->self, "ns", "t", meta, 0, &imp), JM_OK);
    jm_host_row rows[3] = {
        {1, 10, 0, "{\"a\":1}", 7},
        {2, 20, 25, "[]", 2},
        {2, 20, 0, "{}", 2},
    };
    assert_int_equal(f->h->import_rows(f->self, imp, rows, 2), JM_OK);
    assert_int_equal(f->h->import_rows(f->self, imp, rows + 2, 1), JM_EINVAL); /* key 2 again */
    jm_host_row bad[5] = {
        {0, 10, 0, "{}", 2},
        {5, -1, 0, "{}", 2},
        {6, 1, 0, "{", 1},
        {7, 1, 0, NULL, 0},
        {INT64_MAX, 1, 0, "{}", 2},
    };
    assert_int_equal(f->h->import_rows(f->self, imp, bad, 1), JM_EINVAL);
    assert_int_equal(f->h->import_rows(f->self, imp, bad + 1, 1), JM_EINVAL);
    assert_int_equal(f->h->import_rows(f->self, imp, bad + 2, 1), JM_EJSON);
    assert_int_equal(f->h->import_rows(f->self, imp, bad + 3, 1), JM_EINVAL);
    assert_int_equal(f->h->import_rows(f->self, imp, bad + 4, 1), JM_EINVAL);
    assert_int_equal(f->h->import_rows(f->self, imp, NULL, 1), JM_EINVAL);
    assert_int_equal(f->h->import_rows(f->self, imp, NULL, 0), JM_OK);
    int yes = 1;
    assert_int_equal(jm_engine_table_exists(f->e, "ns", "t", &yes), JM_OK);
    assert_int_equal(yes, 0); /* nothing visible before commit */
    f->h->import_abort(f->self, imp);
    f->h->import_abort(f->self, NULL);
    assert_int_equal(jm_engine_table_exists(f->e, "ns", "t", &yes), JM_OK);
    assert_int_equal(yes, 0);
    assert_int_equal(catalog_scalar(f, "SELECT count(*) FROM import_rows"), 0);
    assert_int_equal(catalog_scalar(f, "SELECT count(*) FROM imports"), 0);

    /* An unknown owner is dropped and unknown ACL users skipped. */
    assert_int_equal(jm_engine_create_user(f->e, "u1", "one"), JM_OK);
    assert_int_equal(f->h->import_begin(f->self, "ns", "t", meta, 0, &imp), JM_OK);
    assert_int_equal(f->h->import_rows(f->self, imp, rows, 2), JM_OK);
    /* A table created meanwhile wins over an import without overwrite. */
    make_table(f, "t", JM_TABLE_USER);
    assert_int_equal(f->h->import_commit(f->self, imp), JM_ECONFLICT);
    assert_int_equal(catalog_scalar(f, "SELECT count(*) FROM import_rows"), 0);
    assert_int_equal(jm_engine_drop_table(f->e, "ns", "t"), JM_OK);
    assert_int_equal(f->h->import_begin(f->self, "ns", "t", meta, 0, &imp), JM_OK);
    assert_int_equal(f->h->import_rows(f->self, imp, rows, 2), JM_OK);
    assert_int_equal(f->h->import_commit(f->self, imp), JM_OK);
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->self, "ns", "t", &info), JM_OK);
    assert_int_equal(info.type, JM_TABLE_SHARED);
    assert_string_equal(info.owner_user_id, "");
    int64_t n = 0;
    assert_int_equal(jm_engine_count_acl(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jm_engine_count(f->e, "ns", "t", 1, &n), JM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(jm_engine_count(f->e, "ns", "t", 0, &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(f->h->import_commit(f->self, NULL), JM_EINVAL);
}

static void test_orphans_removed_at_open(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    insert_range(f, "t", 1, 3);
    jm_host_flush fl = flush(f, "t");
    jm_host_segment *segs = NULL;
    assert_int_equal(segments(f, "t", &segs), 1);
    int64_t live = segs[0].id;
    f->h->free_segments(f->self, segs);
    jm_engine_close(f->e);
    f->e = NULL;
    /* Leftovers of crashes: an unfinished write, a file never committed, a
     * replaced file never unlinked; plus files that are not the engine's. */
    static const char *const junk[] = {"seg-1.jms.tmp", "seg-77.jms.tmp", "seg-999.jms",
                                       "seg-0.jms"};
    static const char *const foreign[] = {"notes.txt", "seg-abc.jms", "seg-5.jmsx"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        char *p = tu_path(f->dir, junk[i]);
        FILE *fp = fopen(p, "w");
        fputs("junk", fp);
        fclose(fp);
        free(p);
    }
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        char *p = tu_path(f->dir, foreign[i]);
        FILE *fp = fopen(p, "w");
        fclose(fp);
        free(p);
    }
    assert_int_equal(jm_engine_open(f->dir, &f->e), JM_OK);
    f->h = jm_engine_host(f->e);
    f->self = f->h->self;
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        assert_false(file_exists(f, junk[i]));
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
        assert_true(file_exists(f, foreign[i]));
    assert_int_equal(file_size(f, live), fl.bytes);
    for (int64_t k = 1; k <= 3; k++)
        expect_row(f, "t", k);
}

/* --- version 2: figures for policies ---------------------------------- */

/* A table's figures; fails the test if the engine lacks the operation. */
static jm_host_figures figures(fx *f, const char *table, int64_t now_ms, int64_t small_bytes)
{
    jm_host_figures out;
    assert_true(f->h->version >= 2);
    assert_non_null(f->h->table_figures);
    memset(&out, 0xa5, sizeof out);
    assert_int_equal(f->h->table_figures(f->self, "ns", table, now_ms, small_bytes, 0, &out),
                     JM_OK);
    return out;
}

static void test_figures_buffer_and_flush(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    jm_host_figures fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.type, JM_TABLE_USER);
    assert_int_equal(fg.buffered_rows, 0);
    assert_int_equal(fg.oldest_buffered_at, 0);
    assert_int_equal(fg.segments, 0);
    assert_int_equal(fg.small_segments, 0);
    assert_int_equal(fg.segment_bytes, 0);
    assert_int_equal(fg.deleted_rows, 0);
    assert_int_equal(fg.expired_rows, 0);
    assert_int_equal(fg.ttl_seconds, 0);

    /* The oldest buffered row is not the first key: created_at is the
     * caller's. */
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", 5000, NULL), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", 3000, NULL), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", 4000, NULL), JM_OK);
    fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.buffered_rows, 3);
    assert_int_equal(fg.oldest_buffered_at, 3000);
    assert_int_equal(fg.segments, 0);

    jm_host_flush fl = flush(f, "t");
    fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.buffered_rows, 0);
    assert_int_equal(fg.oldest_buffered_at, 0);
    assert_int_equal(fg.segments, 1);
    assert_int_equal(fg.segment_bytes, fl.bytes);

    /* Rows written after the flush are the buffer's; the segment stays. */
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", 9000, NULL), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", 8000, NULL), JM_OK);
    fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.buffered_rows, 2);
    assert_int_equal(fg.oldest_buffered_at, 8000);
    assert_int_equal(fg.segments, 1);
    assert_int_equal(fg.segment_bytes, fl.bytes);
}

static void test_figures_small_segments(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    insert_range(f, "t", 1, 1);
    jm_host_flush small = flush(f, "t");
    insert_range(f, "t", 2, 60);
    jm_host_flush large = flush(f, "t");
    assert_true(small.bytes < large.bytes);
    /* The recorded sizes are the files' sizes. */
    jm_host_segment *segs = NULL;
    assert_int_equal(segments(f, "t", &segs), 2);
    assert_int_equal(file_size(f, segs[0].id), small.bytes);
    assert_int_equal(file_size(f, segs[1].id), large.bytes);
    f->h->free_segments(f->self, segs);

    jm_host_figures fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.segments, 2);
    assert_int_equal(fg.small_segments, 0);
    assert_int_equal(fg.segment_bytes, small.bytes + large.bytes);
    /* "Smaller than": a file of exactly the threshold is not small. */
    assert_int_equal(figures(f, "t", 0, small.bytes).small_segments, 0);
    assert_int_equal(figures(f, "t", 0, small.bytes + 1).small_segments, 1);
    assert_int_equal(figures(f, "t", 0, large.bytes).small_segments, 1);
    assert_int_equal(figures(f, "t", 0, large.bytes + 1).small_segments, 2);
    assert_int_equal(figures(f, "t", 0, INT64_MAX).small_segments, 2);

    /* A merge leaves one segment, no longer small at the same threshold. */
    int64_t ids[2];
    assert_int_equal(segments(f, "t", &segs), 2);
    ids[0] = segs[0].id;
    ids[1] = segs[1].id;
    f->h->free_segments(f->self, segs);
    jm_host_segment merged;
    assert_int_equal(f->h->merge_segments(f->self, "ns", "t", ids, 2, &merged), JM_OK);
    fg = figures(f, "t", 0, large.bytes + 1);
    assert_int_equal(fg.segments, 1);
    assert_int_equal(fg.small_segments, 0);
    assert_int_equal(fg.segment_bytes, merged.bytes);
}

static void test_figures_deleted_rows(void **state)
{
    fx *f = *state;
    make_table(f, "t", JM_TABLE_USER);
    insert_range(f, "t", 1, 10);
    flush(f, "t");
    insert_range(f, "t", 11, 15);
    /* Two in the segment, one in the buffer. */
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 2, 5000), JM_OK);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 3, 5000), JM_OK);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 12, 7000), JM_OK);
    jm_host_figures fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.deleted_rows, 3);
    assert_int_equal(fg.buffered_rows, 5);
    /* With a cut-off, only rows deleted before it. */
    jm_host_figures cut;
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, 0, 6000, &cut), JM_OK);
    assert_int_equal(cut.deleted_rows, 2);
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, 0, 5000, &cut), JM_OK);
    assert_int_equal(cut.deleted_rows, 0);
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, 0, -1, &cut), JM_EINVAL);

    /* Flushing moves a deleted row; it stays counted. */
    flush(f, "t");
    fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.deleted_rows, 3);
    assert_int_equal(fg.buffered_rows, 0);

    /* Purged rows are gone for good; those deleted after the cut-off stay. */
    jm_host_purge p;
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 6000, 0, 100, &p),
                     JM_OK);
    assert_int_equal(p.rows, 2);
    assert_int_equal(figures(f, "t", 0, 0).deleted_rows, 1);
    assert_int_equal(f->h->purge(f->self, "ns", "t", JM_PURGE_DELETED_BEFORE, 8000, 0, 100, &p),
                     JM_OK);
    assert_int_equal(p.rows, 1);
    fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.deleted_rows, 0);
    assert_int_equal(fg.segments, 2);
    assert_int_equal(count(f, "t", 1), 12);
}

static void test_figures_stream_expired_rows(void **state)
{
    fx *f = *state;
    make_table(f, "s", JM_TABLE_STREAM); /* TTL 60 s */
    /* Rows created at 1 s .. 100 s, half in a segment, half buffered. */
    insert_range(f, "s", 1, 50);
    flush(f, "s");
    insert_range(f, "s", 51, 100);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "s", 10, 0), JM_OK);

    /* At 100 s the cut-off is 40 s: rows 1..39 (the deleted one too). */
    jm_host_figures fg = figures(f, "s", 100000, 0);
    assert_int_equal(fg.type, JM_TABLE_STREAM);
    assert_int_equal(fg.ttl_seconds, 60);
    assert_int_equal(fg.expired_rows, 39);
    /* Strictly older: the row created at 40 s, exactly the cut-off, is
     * not expired at 100 s but is one millisecond later. */
    assert_int_equal(figures(f, "s", 100000 + 1, 0).expired_rows, 40);
    assert_int_equal(figures(f, "s", 100000 + 999, 0).expired_rows, 40);
    /* Buffered rows expire too: at 160 s, 1..99 are older than 100 s. */
    assert_int_equal(figures(f, "s", 160000, 0).expired_rows, 99);
    /* Before any row outlived the TTL, and before the TTL could reach
     * back to the epoch. */
    assert_int_equal(figures(f, "s", 61000, 0).expired_rows, 0);
    assert_int_equal(figures(f, "s", 30000, 0).expired_rows, 0);
    assert_int_equal(figures(f, "s", 0, 0).expired_rows, 0);

    /* Eviction removes them. */
    jm_host_purge p;
    assert_int_equal(f->h->purge(f->self, "ns", "s", JM_PURGE_CREATED_BEFORE, 40000, 0, 1000, &p),
                     JM_OK);
    assert_int_equal(p.rows, 39);
    fg = figures(f, "s", 100000, 0);
    assert_int_equal(fg.expired_rows, 0);
    assert_int_equal(fg.deleted_rows, 0);

    /* Old rows of a table without a TTL never expire. */
    make_table(f, "u", JM_TABLE_USER);
    insert_range(f, "u", 1, 5);
    fg = figures(f, "u", 1000000, 0);
    assert_int_equal(fg.expired_rows, 0);
    assert_int_equal(fg.ttl_seconds, 0);
}

typedef struct seen_tables {
    fx *f;
    int calls;
    int stop_after; /* 0: never stop */
    char names[8][2 * JM_HOST_NAME_MAX + 2];
    jm_table_type types[8];
    int64_t buffered[8]; /* read from inside the walk */
} seen_tables;

static int see_table(void *arg, const char *ns, const char *table, jm_table_type type)
{
    seen_tables *s = arg;
    if (s->calls >= 8)
        return -1;
    snprintf(s->names[s->calls], sizeof s->names[s->calls], "%s:%s", ns, table);
    s->types[s->calls] = type;
    /* The walk lets the callback call the engine. */
    jm_host_figures fg;
    if (s->f->h->table_figures(s->f->self, ns, table, 0, 0, 0, &fg) != JM_OK)
        return -2;
    s->buffered[s->calls] = fg.buffered_rows;
    s->calls++;
    return s->stop_after && s->calls == s->stop_after ? 7 : 0;
}

static int find_seen(const seen_tables *s, const char *name)
{
    for (int i = 0; i < s->calls; i++)
        if (strcmp(s->names[i], name) == 0)
            return i;
    return -1;
}

static void test_list_tables(void **state)
{
    fx *f = *state;
    assert_true(f->h->version >= 2);
    assert_non_null(f->h->list_tables);
    seen_tables s = {.f = f};
    assert_int_equal(f->h->list_tables(f->self, see_table, &s), JM_OK);
    assert_int_equal(s.calls, 0);

    assert_int_equal(jm_engine_create_namespace(f->e, "other"), JM_OK);
    make_table(f, "u", JM_TABLE_USER);
    make_table(f, "sh", JM_TABLE_SHARED);
    make_table(f, "st", JM_TABLE_STREAM);
    assert_int_equal(jm_engine_create_table(f->e, "other", "u", JM_TABLE_USER, NULL), JM_OK);
    insert_range(f, "sh", 1, 3);
    assert_int_equal(f->h->list_tables(f->self, see_table, &s), JM_OK);
    assert_int_equal(s.calls, 4);
    static const struct {
        const char *name;
        jm_table_type type;
        int64_t buffered;
    } want[] = {
        {"ns:u", JM_TABLE_USER, 0},
        {"ns:sh", JM_TABLE_SHARED, 3},
        {"ns:st", JM_TABLE_STREAM, 0},
        {"other:u", JM_TABLE_USER, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int at = find_seen(&s, want[i].name);
        assert_true(at >= 0);
        assert_int_equal(s.types[at], want[i].type);
        assert_int_equal(s.buffered[at], want[i].buffered);
    }

    /* A non-zero return stops the walk and is returned. */
    seen_tables stop = {.f = f, .stop_after = 2};
    assert_int_equal(f->h->list_tables(f->self, see_table, &stop), 7);
    assert_int_equal(stop.calls, 2);

    /* A dropped table is no longer listed. */
    assert_int_equal(jm_engine_drop_table(f->e, "ns", "sh"), JM_OK);
    seen_tables after = {.f = f};
    assert_int_equal(f->h->list_tables(f->self, see_table, &after), JM_OK);
    assert_int_equal(after.calls, 3);
    assert_int_equal(find_seen(&after, "ns:sh"), -1);

    assert_int_equal(f->h->list_tables(f->self, NULL, &s), JM_EINVAL);
    assert_int_equal(f->h->list_tables(NULL, see_table, &s), JM_EINVAL);
}

static void test_figures_bad_input(void **state)
{
    fx *f = *state;
    assert_non_null(f->h->table_figures);
    jm_host_figures fg;
    assert_int_equal(f->h->table_figures(f->self, "ns", "gone", 0, 0, 0, &fg), JM_ENOTFOUND);
    assert_non_null(strstr(jm_last_error(), "not found"));
    assert_int_equal(f->h->table_figures(f->self, "nope", "gone", 0, 0, 0, &fg), JM_ENOTFOUND);
    static const char *const bad[] = {"", "..", "../t", "a b", "x\"; DROP TABLE rows; --"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(f->h->table_figures(f->self, "ns", bad[i], 0, 0, 0, &fg), JM_EINVAL);
        assert_int_equal(f->h->table_figures(f->self, bad[i], "t", 0, 0, 0, &fg), JM_EINVAL);
    }
    assert_int_equal(f->h->table_figures(f->self, NULL, "t", 0, 0, 0, &fg), JM_EINVAL);
    assert_int_equal(f->h->table_figures(f->self, "ns", NULL, 0, 0, 0, &fg), JM_EINVAL);
    make_table(f, "t", JM_TABLE_USER);
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, 0, 0, NULL), JM_EINVAL);
    assert_int_equal(f->h->table_figures(NULL, "ns", "t", 0, 0, 0, &fg), JM_EINVAL);
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", -1, 0, 0, &fg), JM_EINVAL);
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, -1, 0, &fg), JM_EINVAL);
    assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, 0, 0, &fg), JM_OK);
}

/* Figures read beside a writer that inserts FIG_BATCH rows and then flushes
 * them, over and over: every reading is one state, so the rows the reader
 * sees (FIG_BATCH per segment plus the buffer) never run backwards and the
 * buffer never holds a whole flushed batch again. */
#define FIG_BATCH 5
#define FIG_ROUNDS 40

typedef struct fig_writer_arg {
    fx *f;
    atomic_int done;
} fig_writer_arg;

static void *fig_writer(void *arg)
{
    fig_writer_arg *w = arg;
    fx *f = w->f;
    const char *failed = NULL;
    for (int r = 0; !failed && r < FIG_ROUNDS; r++) {
        for (int i = 0; !failed && i < FIG_BATCH; i++)
            if (jm_engine_insert(f->e, "ns", "t", "{}", 1000 + r, NULL) != JM_OK)
                failed = "insert";
        jm_host_flush out;
        if (!failed &&
            (f->h->flush(f->self, "ns", "t", &out) != JM_OK || out.rows != FIG_BATCH))
            failed = "flush";
    }
    atomic_store(&w->done, 1);
    return (void *)failed;
}

static void test_figures_beside_a_writer(void **state)
{
    fx *f = *state;
    assert_non_null(f->h->table_figures);
    make_table(f, "t", JM_TABLE_USER);
    fig_writer_arg w = {.f = f};
    atomic_init(&w.done, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fig_writer, &w), 0);
    int64_t last = 0;
    int done;
    do {
        done = atomic_load(&w.done);
        jm_host_figures fg;
        assert_int_equal(f->h->table_figures(f->self, "ns", "t", 0, 0, 0, &fg), JM_OK);
        int64_t seen = fg.segments * FIG_BATCH + fg.buffered_rows;
        assert_true(seen >= last);
        assert_true(fg.buffered_rows <= FIG_BATCH);
        assert_true(fg.buffered_rows == 0 || fg.oldest_buffered_at == 1000 + fg.segments);
        last = seen;
    } while (!done);
    void *ret = NULL;
    pthread_join(th, &ret);
    assert_null(ret);
    jm_host_figures fg = figures(f, "t", 0, 0);
    assert_int_equal(fg.segments, FIG_ROUNDS);
    assert_int_equal(fg.buffered_rows, 0);
    assert_int_equal(last, FIG_ROUNDS * FIG_BATCH);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_table_info),
        T(test_flush_moves_rows),
        T(test_purge_deleted_before_with_continuation),
        T(test_purge_created_before_empties_segments),
        T(test_purge_bad_input),
        T(test_merge_segments),
        T(test_drop_table),
        T(test_user_operations),
        T(test_export_import_round_trip),
        T(test_export_reads_a_snapshot_while_writers_go_on),
        T(test_export_stops_and_bad_input),
        T(test_import_validation_and_abort),
        T(test_orphans_removed_at_open),
        T(test_figures_buffer_and_flush),
        T(test_figures_small_segments),
        T(test_figures_deleted_rows),
        T(test_figures_stream_expired_rows),
        T(test_list_tables),
        T(test_figures_bad_input),
        T(test_figures_beside_a_writer),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
