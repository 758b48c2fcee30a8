/*
 * Backup and restore at the table level: export_table streams a consistent
 * snapshot (metadata JSON, then rows in key order), and import_begin /
 * import_rows / import_commit / import_abort rebuild a table from such a
 * stream. Imported rows are staged in the catalog's import tables and only
 * become a visible table in import_commit's single transaction. Files,
 * manifests, compression and checksums of a backup are the backup and
 * restore executors' business.
 *
 * Metadata (format 1): {"format":1, "type":"Stream", "ttl_seconds":3600,
 * "owner_user_id":"u1" or null, "acl":["u2"], "rows":N}. On import, "rows"
 * and unknown members are ignored; an owner that does not exist becomes no
 * owner, and ACL users that do not exist are skipped, because a restore
 * into another engine should not fail over users it never had. A missing
 * namespace is created.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "json_check.h"
#include "engine_internal.h"

/* --- export --------------------------------------------------------------- */

static int add_acl_user(void *arg, const char *user)
{
    cJSON *s = cJSON_CreateString(user);
    if (!s || !cJSON_AddItemToArray(arg, s)) {
        cJSON_Delete(s);
        return jm_host_error(JM_ENOMEM, "out of memory building export metadata");
    }
    return JM_OK;
}

static int build_meta(jm__eng_snap *s, const jm__eng_table *t, char **out)
{
    *out = NULL;
    int64_t rows = 0;
    int rc = jm__eng_snap_count(s, &rows);
    if (rc)
        return rc;
    cJSON *m = cJSON_CreateObject();
    cJSON *acl = cJSON_CreateArray();
    int ok = m && acl && cJSON_AddNumberToObject(m, "format", JM_ENG_META_FORMAT) &&
             cJSON_AddStringToObject(m, "type", jm_table_type_name(t->type)) &&
             cJSON_AddNumberToObject(m, "ttl_seconds", (double)t->ttl_seconds) &&
             (t->owner[0] ? cJSON_AddStringToObject(m, "owner_user_id", t->owner) != NULL
                          : cJSON_AddNullToObject(m, "owner_user_id") != NULL) &&
             cJSON_AddNumberToObject(m, "rows", (double)rows);
    if (!ok) {
        rc = jm_host_error(JM_ENOMEM, "out of memory building export metadata");
        goto done;
    }
    if ((rc = jm__eng_snap_acl(s, add_acl_user, acl)))
        goto done;
    cJSON_AddItemToObject(m, "acl", acl);
    acl = NULL;
    if (!(*out = cJSON_PrintUnformatted(m)))
        rc = jm_host_error(JM_ENOMEM, "out of memory building export metadata");
done:
    cJSON_Delete(acl);
    cJSON_Delete(m);
    return rc;
}

/* Rows collected for one callback, with documents copied: the snapshot's
 * own pointers last only until its next row. */
typedef struct batch {
    jm_host_row *rows;
    size_t n;
} batch;

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        jm__free((void *)b->rows[i].doc);
    b->n = 0;
}

static int batch_add(batch *b, const jm_host_row *row)
{
    char *doc = jm__malloc(row->doc_len ? row->doc_len : 1);
    if (!doc)
        return jm_host_error(JM_ENOMEM, "out of memory exporting rows");
    if (row->doc_len)
        memcpy(doc, row->doc, row->doc_len);
    b->rows[b->n] = *row;
    b->rows[b->n].doc = doc;
    b->n++;
    return JM_OK;
}

int jm__eng_host_export_table(void *self, const char *ns, const char *table,
                              const jm_host_export_cb *cb)
{
    jm_engine *e = self;
    if (!e || !cb || !cb->meta || !cb->rows)
        return jm_host_error(JM_EINVAL, "export_table: NULL argument or callback");
    jm__eng_snap *s = NULL;
    jm__eng_table t;
    char *meta = NULL;
    batch b = {0};
    int rc = jm__eng_snap_open(e, ns, table, &s, &t);
    if (rc)
        return rc;
    if ((rc = build_meta(s, &t, &meta)) || (rc = cb->meta(cb->arg, meta)))
        goto done;
    if (!(b.rows = jm__calloc(JM_ENG_EXPORT_BATCH, sizeof *b.rows))) {
        rc = jm_host_error(JM_ENOMEM, "out of memory exporting rows");
        goto done;
    }
    jm_host_row row;
    while ((rc = jm__eng_snap_next(s, &row)) == 1) {
        if ((rc = batch_add(&b, &row)))
            goto done;
        if (b.n == JM_ENG_EXPORT_BATCH) {
            if ((rc = cb->rows(cb->arg, b.rows, b.n)))
                goto done;
            batch_clear(&b);
        }
    }
    if (rc == 0 && b.n > 0)
        rc = cb->rows(cb->arg, b.rows, b.n);
done:
    batch_clear(&b);
    jm__free(b.rows);
    cJSON_free(meta);
    jm__eng_snap_close(s);
    return rc;
}

/* --- import --------------------------------------------------------------- */

typedef char eng_name[JM_HOST_NAME_MAX + 1];

typedef struct eng_import {
    int64_t id; /* the staging id in the imports table */
    eng_name ns, table;
    int overwrite;
    jm_table_type type;
    int64_t ttl_seconds;
    eng_name owner; /* "" = none */
    eng_name *acl;
    size_t nacl;
} eng_import;

static void import_free(eng_import *imp)
{
    if (!imp)
        return;
    jm__free(imp->acl);
    jm__free(imp);
}

/* An integral JSON number in [0, 2^53] (exact in a double). */
static int json_count(const cJSON *v, const char *what, int64_t *out)
{
    const double max_exact = 9007199254740992.0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= max_exact) ||
        (double)(int64_t)v->valuedouble != v->valuedouble)
        return jm_host_error(JM_EINVAL, "import metadata: %s must be a non-negative integer", what);
    *out = (int64_t)v->valuedouble;
    return JM_OK;
}

static int parse_acl(const cJSON *acl, eng_import *imp)
{
    if (!acl || cJSON_IsNull(acl))
        return JM_OK;
    if (!cJSON_IsArray(acl))
        return jm_host_error(JM_EINVAL, "import metadata: acl must be an array of user ids");
    int n = cJSON_GetArraySize(acl);
    if (n > 0 && imp->type != JM_TABLE_SHARED)
        return jm_host_error(JM_EINVAL, "import metadata: acl on a %s table (Shared only)",
                             jm_table_type_name(imp->type));
    if (n == 0)
        return JM_OK;
    if (!(imp->acl = jm__calloc((size_t)n, sizeof *imp->acl)))
        return jm_host_error(JM_ENOMEM, "out of memory reading import metadata");
    const cJSON *u;
    cJSON_ArrayForEach(u, acl)
    {
        int rc;
        if (!cJSON_IsString(u))
            return jm_host_error(JM_EINVAL, "import metadata: acl entries must be strings");
        if ((rc = jm_host_name_check("acl user id", u->valuestring)))
            return rc;
        snprintf(imp->acl[imp->nacl++], sizeof(eng_name), "%s", u->valuestring);
    }
    return JM_OK;
}

static int parse_meta(const char *meta_json, eng_import *imp)
{
    cJSON *m = cJSON_Parse(meta_json);
    int64_t format = 0;
    int rc = JM_OK;
    /* cJSON's NULL is also its answer to a memory shortage. */
    if (!m && jm__json_check(meta_json, strlen(meta_json)) != JM_JSON_INVALID) {
        rc = jm_host_error(JM_ENOMEM, "out of memory reading the import metadata");
        goto done;
    }
    if (!m || !cJSON_IsObject(m)) {
        rc = jm_host_error(JM_EINVAL, "import metadata is not a JSON object");
        goto done;
    }
    if ((rc = json_count(cJSON_GetObjectItemCaseSensitive(m, "format"), "format", &format)))
        goto done;
    if (format != JM_ENG_META_FORMAT) {
        rc = jm_host_error(JM_EINVAL, "import metadata format %lld (this engine reads %d)",
                           (long long)format, JM_ENG_META_FORMAT);
        goto done;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
    if (!cJSON_IsString(type) || jm_table_type_parse(type->valuestring, &imp->type) != JM_OK) {
        rc = jm_host_error(JM_EINVAL, "import metadata: type must be User, Shared or Stream");
        goto done;
    }
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(m, "ttl_seconds");
    if (ttl && (rc = json_count(ttl, "ttl_seconds", &imp->ttl_seconds)))
        goto done;
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(m, "owner_user_id");
    if (owner && !cJSON_IsNull(owner)) {
        if (!cJSON_IsString(owner)) {
            rc = jm_host_error(JM_EINVAL, "import metadata: owner_user_id must be a string");
            goto done;
        }
        snprintf(imp->owner, sizeof imp->owner, "%s", owner->valuestring);
    }
    if ((rc = jm__eng_check_definition(imp->type, imp->ttl_seconds,
                                       imp->owner[0] ? owner->valuestring : NULL)) ||
        (rc = parse_acl(cJSON_GetObjectItemCaseSensitive(m, "acl"), imp)))
        goto done;
done:
    cJSON_Delete(m);
    return rc;
}

static const char sql_begin_import[] = "INSERT INTO imports (started_at) VALUES (?1)";

int jm__eng_host_import_begin(void *self, const char *ns, const char *table,
                              const char *meta_json, int overwrite, void **import)
{
    jm_engine *e = self;
    if (!e || !meta_json || !import)
        return jm_host_error(JM_EINVAL, "import_begin: NULL argument");
    *import = NULL;
    int rc;
    if ((rc = jm_host_name_check("namespace", ns)) ||
        (rc = jm_host_name_check("table name", table)))
        return rc;
    eng_import *imp = jm__calloc(1, sizeof *imp);
    if (!imp)
        return jm_host_error(JM_ENOMEM, "out of memory starting an import");
    snprintf(imp->ns, sizeof imp->ns, "%s", ns);
    snprintf(imp->table, sizeof imp->table, "%s", table);
    imp->overwrite = overwrite != 0;
    if ((rc = parse_meta(meta_json, imp))) {
        import_free(imp);
        return rc;
    }
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    rc = jm__eng_table_locked(e, ns, table, &t);
    if (rc == JM_OK && !overwrite) {
        rc = jm_host_error(JM_ECONFLICT, "table %s:%s exists (overwrite not set)", ns, table);
        goto done;
    }
    if (rc != JM_OK && rc != JM_ENOTFOUND)
        goto done;
    if ((rc = jm__eng_stmt(e, sql_begin_import, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, jm__eng_now_ms());
    if ((rc = jm__eng_exec(e, st, "starting an import")))
        goto done;
    imp->id = sqlite3_last_insert_rowid(e->db);
done:
    jm__eng_unlock(e);
    if (rc) {
        import_free(imp);
        return rc;
    }
    *import = imp;
    return JM_OK;
}

static const char sql_stage_row[] =
    "INSERT INTO import_rows (import_id, key, created_at, deleted_at, doc) "
    "VALUES (?1, ?2, ?3, NULLIF(?4, 0), ?5)";

int jm__eng_host_import_rows(void *self, void *import, const jm_host_row *rows, size_t n)
{
    jm_engine *e = self;
    eng_import *imp = import;
    if (!e || !imp || (n && !rows))
        return jm_host_error(JM_EINVAL, "import_rows: NULL argument");
    int rc;
    /* Check everything before taking the lock: parsing is the slow part. */
    for (size_t i = 0; i < n; i++) {
        const jm_host_row *r = &rows[i];
        /* The table's next key follows the highest one: it must fit. */
        if (r->key < 1 || r->key == INT64_MAX || r->created_at < 0 || r->deleted_at < 0)
            return jm_host_error(JM_EINVAL,
                                 "import_rows: row %zu has a key out of range or a negative "
                                 "time", i);
        if (r->doc_len > INT32_MAX)
            return jm_host_error(JM_ETOOBIG, "import_rows: row %zu is too large", i);
        if ((rc = jm__eng_check_doc(r->doc, r->doc_len)))
            return rc;
    }
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_begin(e)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        if ((rc = jm__eng_stmt(e, sql_stage_row, &st)))
            goto fail;
        sqlite3_bind_int64(st, 1, imp->id);
        sqlite3_bind_int64(st, 2, rows[i].key);
        sqlite3_bind_int64(st, 3, rows[i].created_at);
        sqlite3_bind_int64(st, 4, rows[i].deleted_at);
        sqlite3_bind_text(st, 5, rows[i].doc, (int)rows[i].doc_len, SQLITE_STATIC);
        if ((rc = jm__eng_exec(e, st, "staging an imported row"))) {
            if (rc == JM_ECONFLICT)
                rc = jm_host_error(JM_EINVAL, "import_rows: key %lld imported twice",
                                   (long long)rows[i].key);
            goto fail;
        }
    }
    rc = jm__eng_commit(e);
    goto done;
fail:
    jm__eng_rollback(e);
done:
    jm__eng_unlock(e);
    return rc;
}

static const char sql_end_import[] = "DELETE FROM imports WHERE id = ?1";
static const char sql_ensure_ns[] =
    "INSERT INTO namespaces (name) VALUES (?1) ON CONFLICT DO NOTHING";
static const char sql_import_table[] =
    "INSERT INTO tables (ns, name, type, ttl_seconds, owner_user_id, next_key) "
    "VALUES (?1, ?2, ?3, ?4, (SELECT user_id FROM users WHERE user_id = ?5), "
    "(SELECT coalesce(max(key), 0) + 1 FROM import_rows WHERE import_id = ?6))";
static const char sql_import_move[] =
    "INSERT INTO rows (table_id, key, created_at, deleted_at, segment_id, doc) "
    "SELECT ?1, key, created_at, deleted_at, NULL, doc FROM import_rows WHERE import_id = ?2";
static const char sql_import_acl[] =
    "INSERT INTO acl (table_id, user_id) SELECT ?1, user_id FROM users WHERE user_id = ?2 "
    "ON CONFLICT DO NOTHING";

static int end_staging(jm_engine *e, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_end_import, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return jm__eng_exec(e, st, "clearing import staging");
}

/* Inside the commit transaction: the table, its rows and its ACL. */
static int publish(jm_engine *e, const eng_import *imp, jm__eng_ids *obsolete)
{
    jm__eng_table t;
    jm_host_drop dropped;
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_table_locked(e, imp->ns, imp->table, &t);
    if (rc == JM_OK) {
        /* It may have appeared since import_begin. */
        if (!imp->overwrite)
            return jm_host_error(JM_ECONFLICT, "table %s:%s exists (overwrite not set)", imp->ns,
                                 imp->table);
        if ((rc = jm__eng_drop_locked(e, t.id, obsolete, &dropped)))
            return rc;
    } else if (rc != JM_ENOTFOUND) {
        return rc;
    }
    if ((rc = jm__eng_stmt(e, sql_ensure_ns, &st)))
        return rc;
    sqlite3_bind_text(st, 1, imp->ns, -1, SQLITE_STATIC);
    if ((rc = jm__eng_exec(e, st, "creating a namespace")))
        return rc;
    if ((rc = jm__eng_stmt(e, sql_import_table, &st)))
        return rc;
    sqlite3_bind_text(st, 1, imp->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, imp->table, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)imp->type);
    sqlite3_bind_int64(st, 4, imp->ttl_seconds);
    sqlite3_bind_text(st, 5, imp->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, imp->id);
    if ((rc = jm__eng_exec(e, st, "creating the imported table")))
        return rc;
    int64_t table_id = sqlite3_last_insert_rowid(e->db);
    if ((rc = jm__eng_stmt(e, sql_import_move, &st)))
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    sqlite3_bind_int64(st, 2, imp->id);
    if ((rc = jm__eng_exec(e, st, "moving imported rows")))
        return rc;
    for (size_t i = 0; i < imp->nacl; i++) {
        if ((rc = jm__eng_stmt(e, sql_import_acl, &st)))
            return rc;
        sqlite3_bind_int64(st, 1, table_id);
        sqlite3_bind_text(st, 2, imp->acl[i], -1, SQLITE_STATIC);
        if ((rc = jm__eng_exec(e, st, "restoring the ACL")))
            return rc;
    }
    return end_staging(e, imp->id);
}

int jm__eng_host_import_commit(void *self, void *import)
{
    jm_engine *e = self;
    eng_import *imp = import;
    if (!e || !imp) {
        import_free(imp);
        return jm_host_error(JM_EINVAL, "import_commit: NULL argument");
    }
    jm__eng_ids obsolete = {0};
    jm__eng_lock(e);
    int rc = jm__eng_begin(e);
    if (rc == JM_OK && ((rc = publish(e, imp, &obsolete)) || (rc = jm__eng_commit(e))))
        jm__eng_rollback(e);
    if (rc == JM_OK) {
        jm__eng_unlink_segments(e, &obsolete);
    } else {
        /* The handle ends here either way: drop what it staged, keeping the
         * first error for the caller. */
        char why[512];
        snprintf(why, sizeof why, "%s", jm_last_error());
        end_staging(e, imp->id);
        jm_host_error(rc, "%s", why);
    }
    jm__eng_unlock(e);
    jm__eng_ids_free(&obsolete);
    import_free(imp);
    return rc;
}

void jm__eng_host_import_abort(void *self, void *import)
{
    jm_engine *e = self;
    eng_import *imp = import;
    if (e && imp) {
        jm__eng_lock(e);
        end_staging(e, imp->id);
        jm__eng_unlock(e);
    }
    import_free(imp);
}
