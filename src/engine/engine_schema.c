/*
 * Creates the engine's catalog schema or migrates an older one, in one
 * transaction. A catalog newer than this library is refused rather than
 * guessed at. The `rows` table is the authoritative index of every row:
 * its key, times and where its document lives (doc while buffered,
 * segment_id once flushed).
 */
#include <stdio.h>

#include "engine_internal.h"

#define ENGINE_SCHEMA_VERSION 1

/* Version 1. Table types are stored as jm_table_type integers; deleted_at
 * is NULL for a live row. Segment ids come from AUTOINCREMENT so a file
 * name is not reused for different content once committed. `rows` and
 * `import_rows` keep rowids: a buffered document can be up to 1 MiB, too
 * large for a WITHOUT ROWID b-tree to hold well. */
static const char *const schema_v1[] = {
    "CREATE TABLE namespaces (name TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE users ("
    " user_id TEXT PRIMARY KEY,"
    " username TEXT NOT NULL,"
    " deleted_at INTEGER) WITHOUT ROWID",
    "CREATE TABLE tables ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ns TEXT NOT NULL REFERENCES namespaces(name),"
    " name TEXT NOT NULL,"
    " type INTEGER NOT NULL CHECK (type BETWEEN 0 AND 2),"
    " ttl_seconds INTEGER NOT NULL DEFAULT 0,"
    " owner_user_id TEXT REFERENCES users(user_id) ON DELETE SET NULL,"
    " next_key INTEGER NOT NULL DEFAULT 1,"
    " UNIQUE (ns, name))",
    "CREATE INDEX tables_owner ON tables(owner_user_id) WHERE owner_user_id IS NOT NULL",
    "CREATE TABLE acl ("
    " table_id INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,"
    " user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
    " PRIMARY KEY (table_id, user_id)) WITHOUT ROWID",
    "CREATE INDEX acl_user ON acl(user_id)",
    "CREATE TABLE live_queries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
    " table_id INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE)",
    "CREATE INDEX live_queries_user ON live_queries(user_id)",
    "CREATE INDEX live_queries_table ON live_queries(table_id)",
    "CREATE TABLE segments ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " table_id INTEGER NOT NULL REFERENCES tables(id),"
    " rows INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " crc INTEGER NOT NULL)",
    "CREATE INDEX segments_table ON segments(table_id)",
    "CREATE TABLE rows ("
    " table_id INTEGER NOT NULL REFERENCES tables(id),"
    " key INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " deleted_at INTEGER,"
    " segment_id INTEGER REFERENCES segments(id),"
    " doc TEXT,"
    " PRIMARY KEY (table_id, key),"
    " CHECK ((segment_id IS NULL) = (doc IS NOT NULL)))",
    /* Retention: soft-deleted rows by deletion time. */
    "CREATE INDEX rows_deleted ON rows(table_id, deleted_at) WHERE deleted_at IS NOT NULL",
    /* Stream eviction: rows by creation time. */
    "CREATE INDEX rows_created ON rows(table_id, created_at)",
    /* Flush (the buffer) and segment rewrites (a segment's rows). */
    "CREATE INDEX rows_segment ON rows(table_id, segment_id)",
    /* Restore staging: rows of an import not yet committed. */
    "CREATE TABLE imports (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at INTEGER NOT NULL)",
    "CREATE TABLE import_rows ("
    " import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,"
    " key INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " deleted_at INTEGER,"
    " doc TEXT NOT NULL,"
    " PRIMARY KEY (import_id, key))",
    NULL,
};

/* steps[v] brings a catalog from version v to v + 1. */
static const char *const *const steps[ENGINE_SCHEMA_VERSION] = {schema_v1};

static int exec_all(jm_engine *e, const char *const *sql)
{
    for (; *sql; sql++) {
        int rc = sqlite3_exec(e->db, *sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return jm__eng_sqlite_err(e->db, rc, "creating the engine catalog");
    }
    return JM_OK;
}

/* The stored version: 0 for a database without our tables. */
static int read_version(jm_engine *e, int *version)
{
    sqlite3_stmt *st = NULL;
    *version = 0;
    int rc = sqlite3_prepare_v2(e->db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                "AND name = 'engine_schema_version'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return jm__eng_sqlite_err(e->db, rc, "reading the catalog schema");
    rc = sqlite3_step(st);
    int exists = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return jm__eng_sqlite_err(e->db, rc, "reading the catalog schema");
    if (!exists)
        return JM_OK;
    rc = sqlite3_prepare_v2(e->db, "SELECT max(version) FROM engine_schema_version", -1, &st,
                            NULL);
    if (rc != SQLITE_OK)
        return jm__eng_sqlite_err(e->db, rc, "reading the catalog schema version");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? JM_OK
                            : jm__eng_sqlite_err(e->db, rc, "reading the catalog schema version");
}

int jm__eng_schema(jm_engine *e)
{
    int rc = jm__eng_begin(e);
    if (rc)
        return rc;
    int version = 0;
    if ((rc = read_version(e, &version)))
        goto fail;
    if (version > ENGINE_SCHEMA_VERSION) {
        rc = jm_host_error(JM_EDB,
                           "the engine catalog has schema version %d, newer than this "
                           "library's %d",
                           version, ENGINE_SCHEMA_VERSION);
        goto fail;
    }
    if (version == ENGINE_SCHEMA_VERSION) {
        jm__eng_rollback(e);
        return JM_OK;
    }
    if (version == 0) {
        rc = sqlite3_exec(e->db, "CREATE TABLE engine_schema_version (version INTEGER NOT NULL)",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            rc = jm__eng_sqlite_err(e->db, rc, "creating the engine catalog");
            goto fail;
        }
    }
    for (int v = version; v < ENGINE_SCHEMA_VERSION; v++)
        if ((rc = exec_all(e, steps[v])))
            goto fail;
    char sql[128];
    snprintf(sql, sizeof sql,
             "DELETE FROM engine_schema_version; "
             "INSERT INTO engine_schema_version VALUES (%d)",
             ENGINE_SCHEMA_VERSION);
    rc = sqlite3_exec(e->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = jm__eng_sqlite_err(e->db, rc, "recording the catalog schema version");
        goto fail;
    }
    return jm__eng_commit(e);
fail:
    jm__eng_rollback(e);
    return rc;
}
