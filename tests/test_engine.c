/*
 * The reference engine's public API (include/jobmgr/engine.h): namespaces,
 * tables, rows in the buffer and in segments, soft deletes, counts, scans,
 * users, ACL entries and live queries, persistence across reopen, and bad
 * input everywhere (NULLs, malformed names, SQL and path injection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "jobmgr.h"
#include "jobmgr/engine.h"
#include "test_util.h"

typedef struct fx {
    char *dir;
    jm_engine *e;
    const jm_host *h;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    if (!f->dir || jm_engine_open(f->dir, &f->e) != JM_OK)
        return -1;
    f->h = jm_engine_host(f->e);
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

static void reopen(fx *f)
{
    jm_engine_close(f->e);
    f->e = NULL;
    assert_int_equal(jm_engine_open(f->dir, &f->e), JM_OK);
    f->h = jm_engine_host(f->e);
}

static int64_t count(fx *f, const char *table, int include_deleted)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_count(f->e, "ns", table, include_deleted, &n), JM_OK);
    return n;
}

static void flush(fx *f, const char *table)
{
    jm_host_flush out;
    assert_int_equal(f->h->flush(f->h->self, "ns", table, &out), JM_OK);
}

static void expect_doc(fx *f, const char *table, int64_t key, const char *want)
{
    char *doc = NULL;
    assert_int_equal(jm_engine_get(f->e, "ns", table, key, &doc), JM_OK);
    assert_string_equal(doc, want);
    jm_free(doc);
}

/* Names that must be refused everywhere. */
static const char *bad_names[] = {
    "",
    ".",
    "..",
    "../etc",
    "a/b",
    "x\"; DROP TABLE rows; --",
    "x'; DROP TABLE tables; --",
    "a b",
    "tab\tle",
    "caf\xc3\xa9",
    "nul\x01",
};

static char long_name[JM_HOST_NAME_MAX + 2];

static void test_open_bad_input(void **state)
{
    (void)state;
    jm_engine *e = (jm_engine *)1;
    assert_int_equal(jm_engine_open(NULL, &e), JM_EINVAL);
    assert_null(e);
    assert_int_equal(jm_engine_open("", &e), JM_EINVAL);
    assert_int_equal(jm_engine_open("/tmp", NULL), JM_EINVAL);
    jm_engine_close(NULL);
    assert_null(jm_engine_host(NULL));

    /* A missing directory and its parents are created. */
    char *base = tu_tmpdir();
    char *nested = tu_path(base, "a/b/c");
    assert_int_equal(jm_engine_open(nested, &e), JM_OK);
    assert_non_null(jm_engine_host(e));
    assert_int_equal(jm_engine_host(e)->version, JM_HOST_VERSION);
    assert_ptr_equal(jm_engine_host(e)->self, e);
    /* One engine per directory at a time. */
    jm_engine *second = NULL;
    assert_int_equal(jm_engine_open(nested, &second), JM_EBUSY);
    assert_null(second);
    jm_engine_close(e);
    assert_int_equal(jm_engine_open(nested, &second), JM_OK);
    jm_engine_close(second);

    /* A file where the directory should be. */
    char *file = tu_path(base, "plain");
    FILE *fp = fopen(file, "w");
    fclose(fp);
    assert_int_equal(jm_engine_open(file, &e), JM_EIO);
    free(file);
    free(nested);
    tu_rmdir(base);
}

static void test_names_are_validated_everywhere(void **state)
{
    fx *f = *state;
    memset(long_name, 'n', JM_HOST_NAME_MAX + 1);
    long_name[JM_HOST_NAME_MAX + 1] = '\0';
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    assert_int_equal(jm_engine_create_user(f->e, "u1", "alice"), JM_OK);
    int64_t n = 0, key = 0;
    int yes = 0;
    char *doc = NULL;
    for (size_t i = 0; i <= sizeof bad_names / sizeof *bad_names; i++) {
        const char *bad = i < sizeof bad_names / sizeof *bad_names ? bad_names[i] : long_name;
        assert_int_equal(jm_engine_create_namespace(f->e, bad), JM_EINVAL);
        assert_int_equal(jm_engine_create_table(f->e, bad, "t", JM_TABLE_USER, NULL), JM_EINVAL);
        assert_int_equal(jm_engine_create_table(f->e, "ns", bad, JM_TABLE_USER, NULL), JM_EINVAL);
        assert_int_equal(jm_engine_insert(f->e, "ns", bad, "{}", 0, &key), JM_EINVAL);
        assert_int_equal(jm_engine_insert(f->e, bad, "t", "{}", 0, &key), JM_EINVAL);
        assert_int_equal(jm_engine_soft_delete(f->e, "ns", bad, 1, 0), JM_EINVAL);
        assert_int_equal(jm_engine_get(f->e, bad, "t", 1, &doc), JM_EINVAL);
        assert_int_equal(jm_engine_count(f->e, "ns", bad, 1, &n), JM_EINVAL);
        assert_int_equal(jm_engine_segment_count(f->e, bad, "t", &n), JM_EINVAL);
        assert_int_equal(jm_engine_table_exists(f->e, "ns", bad, &yes), JM_EINVAL);
        assert_int_equal(jm_engine_drop_table(f->e, "ns", bad), JM_EINVAL);
        assert_int_equal(jm_engine_create_user(f->e, bad, "x"), JM_EINVAL);
        assert_int_equal(jm_engine_create_user(f->e, "u9", bad), JM_EINVAL);
        assert_int_equal(jm_engine_soft_delete_user(f->e, bad), JM_EINVAL);
        assert_int_equal(jm_engine_user_exists(f->e, bad, &yes), JM_EINVAL);
        assert_int_equal(jm_engine_grant(f->e, "ns", "t", bad), JM_EINVAL);
        assert_int_equal(jm_engine_add_live_query(f->e, bad, "ns", "t", &n), JM_EINVAL);
        assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", bad, &n), JM_EINVAL);
        assert_int_equal(jm_engine_count_acl(f->e, bad, &n), JM_EINVAL);
        assert_int_equal(jm_engine_count_live_queries(f->e, bad, &n), JM_EINVAL);
        jm_table_opts o = JM_TABLE_OPTS_INIT;
        o.owner_user_id = bad;
        assert_int_equal(jm_engine_create_table(f->e, "ns", "t2", JM_TABLE_USER, &o), JM_EINVAL);
    }
    /* The exact limit is fine; the catalog survived every attempt. */
    long_name[JM_HOST_NAME_MAX] = '\0';
    assert_int_equal(jm_engine_create_table(f->e, "ns", long_name, JM_TABLE_USER, NULL), JM_OK);
    assert_int_equal(jm_engine_create_namespace(f->e, "A-z_0.9"), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{\"x\":1}", 0, &key), JM_OK);
    assert_int_equal(count(f, "t", 1), 1);
    assert_null(doc);
}

static void test_null_arguments(void **state)
{
    fx *f = *state;
    int64_t n;
    char *doc;
    assert_int_equal(jm_engine_create_namespace(NULL, "x"), JM_EINVAL);
    assert_int_equal(jm_engine_create_namespace(f->e, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_create_table(NULL, "ns", "t", JM_TABLE_USER, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_insert(NULL, "ns", "t", "{}", 0, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", NULL, 0, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_soft_delete(NULL, "ns", "t", 1, 0), JM_EINVAL);
    assert_int_equal(jm_engine_get(NULL, "ns", "t", 1, &doc), JM_EINVAL);
    assert_int_equal(jm_engine_get(f->e, "ns", "t", 1, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_count(NULL, "ns", "t", 0, &n), JM_EINVAL);
    assert_int_equal(jm_engine_count(f->e, "ns", "t", 0, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_segment_count(f->e, "ns", "t", NULL), JM_EINVAL);
    assert_int_equal(jm_engine_table_exists(f->e, "ns", "t", NULL), JM_EINVAL);
    assert_int_equal(jm_engine_scan(f->e, "ns", "t", 0, NULL, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_drop_table(NULL, "ns", "t"), JM_EINVAL);
    assert_int_equal(jm_engine_create_user(NULL, "u", "u"), JM_EINVAL);
    assert_int_equal(jm_engine_soft_delete_user(NULL, "u"), JM_EINVAL);
    assert_int_equal(jm_engine_user_exists(f->e, "u", NULL), JM_EINVAL);
    assert_int_equal(jm_engine_grant(NULL, "ns", "t", "u"), JM_EINVAL);
    assert_int_equal(jm_engine_add_live_query(NULL, "u", "ns", "t", &n), JM_EINVAL);
    assert_int_equal(jm_engine_count_acl(f->e, "u", NULL), JM_EINVAL);
    assert_int_equal(jm_engine_count_live_queries(NULL, "u", &n), JM_EINVAL);
}

static void test_namespaces_and_tables(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_namespace(f->e, "ns"), JM_ECONFLICT);
    assert_int_equal(jm_engine_create_table(f->e, "nope", "t", JM_TABLE_USER, NULL),
                     JM_ENOTFOUND);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_SHARED, NULL),
                     JM_ECONFLICT);
    /* Stream tables need a TTL; others may not have one. */
    assert_int_equal(jm_engine_create_table(f->e, "ns", "s", JM_TABLE_STREAM, NULL), JM_EINVAL);
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.ttl_seconds = -1;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "s", JM_TABLE_STREAM, &o), JM_EINVAL);
    o.ttl_seconds = 60;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "u", JM_TABLE_USER, &o), JM_EINVAL);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "s", JM_TABLE_STREAM, &o), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "x", (jm_table_type)7, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "x", (jm_table_type)-1, NULL), JM_EINVAL);
    o.version = 99;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "x", JM_TABLE_STREAM, &o), JM_EINVAL);
    /* An owner must exist. */
    jm_table_opts owned = JM_TABLE_OPTS_INIT;
    owned.owner_user_id = "ghost";
    assert_int_equal(jm_engine_create_table(f->e, "ns", "o", JM_TABLE_USER, &owned),
                     JM_ENOTFOUND);
    assert_int_equal(jm_engine_create_user(f->e, "ghost", "casper"), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "o", JM_TABLE_USER, &owned), JM_OK);
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->h->self, "ns", "o", &info), JM_OK);
    assert_string_equal(info.owner_user_id, "ghost");

    int yes = -1;
    assert_int_equal(jm_engine_table_exists(f->e, "ns", "t", &yes), JM_OK);
    assert_int_equal(yes, 1);
    assert_int_equal(jm_engine_table_exists(f->e, "ns", "zz", &yes), JM_OK);
    assert_int_equal(yes, 0);
    assert_int_equal(jm_engine_table_exists(f->e, "other", "t", &yes), JM_OK);
    assert_int_equal(yes, 0);

    assert_int_equal(jm_engine_drop_table(f->e, "ns", "t"), JM_OK);
    assert_int_equal(jm_engine_table_exists(f->e, "ns", "t", &yes), JM_OK);
    assert_int_equal(yes, 0);
    assert_int_equal(jm_engine_drop_table(f->e, "ns", "t"), JM_ENOTFOUND);
    int64_t n;
    assert_int_equal(jm_engine_count(f->e, "ns", "t", 1, &n), JM_ENOTFOUND);
}

static void test_insert_documents(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    int64_t k1 = 0, k2 = 0;
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{\"a\":1}", 0, &k1), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", " [1, 2] ", 5, &k2), JM_OK);
    assert_true(k2 > k1 && k1 > 0);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "3", 0, NULL), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{", 0, NULL), JM_EJSON);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{} x", 0, NULL), JM_EJSON);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "", 0, NULL), JM_EJSON);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", -1, NULL), JM_EINVAL);
    assert_int_equal(jm_engine_insert(f->e, "ns", "missing", "{}", 0, NULL), JM_ENOTFOUND);
    assert_int_equal(jm_engine_insert(f->e, "nons", "t", "{}", 0, NULL), JM_ENOTFOUND);

    /* 1 MiB of JSON is accepted, a byte more is too big. */
    size_t max = 1024 * 1024;
    char *big = malloc(max + 2);
    memset(big, 'a', max + 1);
    big[0] = '"';
    big[max - 1] = '"';
    big[max] = '\0';
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", big, 0, NULL), JM_OK);
    big[max - 1] = 'a';
    big[max] = '"';
    big[max + 1] = '\0';
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", big, 0, NULL), JM_ETOOBIG);
    free(big);
    assert_int_equal(count(f, "t", 1), 4);
    expect_doc(f, "t", k2, " [1, 2] ");
}

static void test_get_soft_delete_and_counts(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    int64_t keys[6];
    char doc[64];
    for (int i = 0; i < 6; i++) {
        snprintf(doc, sizeof doc, "{\"i\":%d}", i);
        assert_int_equal(jm_engine_insert(f->e, "ns", "t", doc, 1000 + i, &keys[i]), JM_OK);
        if (i == 2)
            flush(f, "t"); /* rows 0..2 in a segment, 3..5 buffered */
    }
    int64_t segs = -1;
    assert_int_equal(jm_engine_segment_count(f->e, "ns", "t", &segs), JM_OK);
    assert_int_equal(segs, 1);
    assert_int_equal(count(f, "t", 0), 6);
    expect_doc(f, "t", keys[1], "{\"i\":1}"); /* from the segment */
    expect_doc(f, "t", keys[4], "{\"i\":4}"); /* from the buffer */

    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", keys[1], 0), JM_OK);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", keys[4], 2000), JM_OK);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", keys[4], 0), JM_ESTATE);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 999, 0), JM_ENOTFOUND);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", keys[0], -5), JM_EINVAL);
    assert_int_equal(count(f, "t", 0), 4);
    assert_int_equal(count(f, "t", 1), 6);
    /* Soft-deleted rows are still found by key. */
    expect_doc(f, "t", keys[1], "{\"i\":1}");
    expect_doc(f, "t", keys[4], "{\"i\":4}");
    char *out = (char *)1;
    assert_int_equal(jm_engine_get(f->e, "ns", "t", 999, &out), JM_ENOTFOUND);
    assert_null(out);
    assert_int_equal(jm_engine_get(f->e, "ns", "t", -1, &out), JM_ENOTFOUND);
}

typedef struct scan_log {
    int64_t keys[64];
    int64_t deleted[64];
    char docs[64][32];
    int n;
    int stop_after;
    jm_engine *e;
} scan_log;

static int scan_collect(void *arg, const jm_host_row *row)
{
    scan_log *l = arg;
    l->keys[l->n] = row->key;
    l->deleted[l->n] = row->deleted_at;
    snprintf(l->docs[l->n], sizeof l->docs[0], "%.*s", (int)row->doc_len, row->doc);
    l->n++;
    /* The callback may use the engine: the scan holds no lock. */
    int64_t c = 0;
    if (jm_engine_count(l->e, "ns", "t", 1, &c) != JM_OK)
        return -100;
    return l->stop_after && l->n == l->stop_after ? 42 : 0;
}

static void test_scan_buffer_and_segments_in_key_order(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    char doc[32];
    for (int i = 0; i < 9; i++) {
        snprintf(doc, sizeof doc, "{\"i\":%d}", i);
        assert_int_equal(jm_engine_insert(f->e, "ns", "t", doc, 0, NULL), JM_OK);
        if (i % 3 == 2 && i < 8)
            flush(f, "t");
    }
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", 2, 0), JM_OK);
    scan_log l = {.e = f->e};
    assert_int_equal(jm_engine_scan(f->e, "ns", "t", 1, scan_collect, &l), JM_OK);
    assert_int_equal(l.n, 9);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(l.keys[i], i + 1);
        snprintf(doc, sizeof doc, "{\"i\":%d}", i);
        assert_string_equal(l.docs[i], doc);
        assert_int_equal(l.deleted[i] != 0, i == 1);
    }
    memset(&l, 0, sizeof l);
    l.e = f->e;
    assert_int_equal(jm_engine_scan(f->e, "ns", "t", 0, scan_collect, &l), JM_OK);
    assert_int_equal(l.n, 8);
    memset(&l, 0, sizeof l);
    l.e = f->e;
    l.stop_after = 4;
    assert_int_equal(jm_engine_scan(f->e, "ns", "t", 1, scan_collect, &l), 42);
    assert_int_equal(l.n, 4);
    assert_int_equal(jm_engine_scan(f->e, "ns", "nope", 1, scan_collect, &l), JM_ENOTFOUND);
}

static void test_users_acl_and_live_queries(void **state)
{
    fx *f = *state;
    int yes = -1;
    int64_t n = -1, lq = 0;
    assert_int_equal(jm_engine_user_exists(f->e, "u1", &yes), JM_OK);
    assert_int_equal(yes, 0);
    assert_int_equal(jm_engine_create_user(f->e, "u1", "alice"), JM_OK);
    assert_int_equal(jm_engine_create_user(f->e, "u1", "again"), JM_ECONFLICT);
    assert_int_equal(jm_engine_user_exists(f->e, "u1", &yes), JM_OK);
    assert_int_equal(yes, 1);

    assert_int_equal(jm_engine_create_table(f->e, "ns", "sh", JM_TABLE_SHARED, NULL), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "ns", "us", JM_TABLE_USER, NULL), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns", "sh", "u1"), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, "ns", "sh", "u1"), JM_OK); /* idempotent */
    assert_int_equal(jm_engine_grant(f->e, "ns", "us", "u1"), JM_EINVAL);
    assert_int_equal(jm_engine_grant(f->e, "ns", "sh", "nobody"), JM_ENOTFOUND);
    assert_int_equal(jm_engine_grant(f->e, "ns", "gone", "u1"), JM_ENOTFOUND);
    assert_int_equal(jm_engine_count_acl(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 1);

    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "sh", &lq), JM_OK);
    assert_true(lq > 0);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "us", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "nobody", "ns", "us", NULL), JM_ENOTFOUND);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", "ns", "gone", NULL), JM_ENOTFOUND);
    assert_int_equal(jm_engine_count_live_queries(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(jm_engine_count_live_queries(f->e, "nobody", &n), JM_OK);
    assert_int_equal(n, 0);

    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_ESTATE);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "nobody"), JM_ENOTFOUND);
    assert_int_equal(jm_engine_user_exists(f->e, "u1", &yes), JM_OK);
    assert_int_equal(yes, 1); /* soft-deleted users still exist */

    /* Dropping a table takes its ACL entries and live queries with it. */
    assert_int_equal(jm_engine_drop_table(f->e, "ns", "sh"), JM_OK);
    assert_int_equal(jm_engine_count_acl(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(jm_engine_count_live_queries(f->e, "u1", &n), JM_OK);
    assert_int_equal(n, 1);
}

static void test_reopen_persists(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_user(f->e, "u1", "alice"), JM_OK);
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.owner_user_id = "u1";
    o.ttl_seconds = 3600;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_STREAM, &o), JM_OK);
    int64_t k = 0;
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{\"seg\":true}", 0, &k), JM_OK);
    flush(f, "t");
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{\"buf\":true}", 0, NULL), JM_OK);
    assert_int_equal(jm_engine_soft_delete(f->e, "ns", "t", k, 0), JM_OK);
    reopen(f);
    assert_int_equal(count(f, "t", 1), 2);
    assert_int_equal(count(f, "t", 0), 1);
    expect_doc(f, "t", 1, "{\"seg\":true}");
    expect_doc(f, "t", 2, "{\"buf\":true}");
    jm_host_table info;
    assert_int_equal(f->h->table_info(f->h->self, "ns", "t", &info), JM_OK);
    assert_int_equal(info.type, JM_TABLE_STREAM);
    assert_int_equal(info.ttl_seconds, 3600);
    assert_string_equal(info.owner_user_id, "u1");
    assert_int_equal(info.segments, 1);
    assert_int_equal(info.buffered_rows, 1);
    int yes = 0;
    assert_int_equal(jm_engine_user_exists(f->e, "u1", &yes), JM_OK);
    assert_int_equal(yes, 1);
    /* Keys continue after the last one. */
    int64_t k3 = 0;
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{}", 0, &k3), JM_OK);
    assert_int_equal(k3, 3);
}

static void test_corrupt_segment_is_an_io_error(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    assert_int_equal(jm_engine_insert(f->e, "ns", "t", "{\"v\":12345}", 0, NULL), JM_OK);
    flush(f, "t");
    jm_host_segment *segs = NULL;
    size_t n = 0;
    assert_int_equal(f->h->list_segments(f->h->self, "ns", "t", &segs, &n), JM_OK);
    assert_int_equal(n, 1);
    char name[64];
    snprintf(name, sizeof name, "seg-%lld.jms", (long long)segs[0].id);
    f->h->free_segments(f->h->self, segs);
    char *path = tu_path(f->dir, name);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 40, SEEK_SET);
    fputc('X', fp);
    fclose(fp);
    char *doc = NULL;
    assert_int_equal(jm_engine_get(f->e, "ns", "t", 1, &doc), JM_EIO);
    assert_non_null(strstr(jm_last_error(), "checksum"));
    scan_log l = {.e = f->e};
    assert_int_equal(jm_engine_scan(f->e, "ns", "t", 1, scan_collect, &l), JM_EIO);
    /* A missing file too. */
    remove(path);
    assert_int_equal(jm_engine_get(f->e, "ns", "t", 1, &doc), JM_EIO);
    free(path);
    /* Counting needs only the catalog. */
    assert_int_equal(count(f, "t", 1), 1);
}

#define THREADS 4
#define PER_THREAD 50

static void *insert_many(void *arg)
{
    jm_engine *e = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (jm_engine_insert(e, "ns", "t", "{\"t\":1}", 0, NULL) != JM_OK)
            return (void *)1;
    return NULL;
}

static void test_concurrent_inserts(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_engine_create_table(f->e, "ns", "t", JM_TABLE_USER, NULL), JM_OK);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, insert_many, f->e), 0);
    flush(f, "t");
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(count(f, "t", 1), THREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_bad_input),
        cmocka_unit_test_setup_teardown(test_names_are_validated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_and_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_soft_delete_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_buffer_and_segments_in_key_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_users_acl_and_live_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_segment_is_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_inserts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
