/*
 * For the store-level tests: the store this run tests (test_store.h) and
 * how to open it on a database path, which on PostgreSQL names a schema.
 */
#ifndef JM_STORE_PICK_H
#define JM_STORE_PICK_H

#include "store.h"
#include "test_store.h"

static inline const jm__store_ops *tu_store_ops(void)
{
#ifdef JM_WITH_PG
    if (tu_store_pg())
        return &jm__pg_store;
#endif
    return &jm__sqlite_store;
}

static inline jm__store_config tu_store_config(const char *path, int64_t busy_timeout_ms)
{
    tu_skip_without_pg_server();
    jm__store_config c = {path, NULL, busy_timeout_ms, 0, 1, NULL, NULL};
    if (tu_store_pg()) {
        c.path = NULL;
        c.url = tu_pg_url();
        c.schema = tu_pg_schema(path);
    }
    return c;
}

#endif
