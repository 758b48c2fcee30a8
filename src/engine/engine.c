/*
 * The reference engine's handle: opening and closing it, the catalog
 * connection with its statement cache and error mapping, and the small
 * checks every operation shares (names, times, documents, table lookup).
 * The operations themselves live in engine_rows.c, engine_flush.c,
 * engine_purge.c, engine_compact.c, engine_tables.c, engine_users.c,
 * engine_backup.c and engine_figures.c.
 */
#define _DEFAULT_SOURCE /* flock() */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "array.h"
#include "json_check.h"
#include "engine_internal.h"
#include "sqlite_error.h"

#define NS_PER_MS 1000000

/* --- small lists --------------------------------------------------------- */

int jm__eng_ids_push(jm__eng_ids *l, int64_t id)
{
    int64_t *v = jm__array_grow(l->v, l->n, &l->cap, sizeof *l->v);
    if (!v)
        return jm_host_error(JM_ENOMEM, "out of memory growing an id list");
    l->v = v;
    l->v[l->n++] = id;
    return JM_OK;
}

void jm__eng_ids_free(jm__eng_ids *l)
{
    jm__free(l->v);
    memset(l, 0, sizeof *l);
}

/* --- locking, errors, statements, transactions ---------------------------- */

void jm__eng_lock(jm_engine *e)
{
    pthread_mutex_lock(&e->mu);
}

void jm__eng_unlock(jm_engine *e)
{
    pthread_mutex_unlock(&e->mu);
}

int jm__eng_sqlite_err(sqlite3 *db, int rc, const char *what)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return jm_host_error(jm__sqlite_code(rc), "%s: %s", what, msg);
}

int jm__eng_stmt(jm_engine *e, const char *sql, sqlite3_stmt **out)
{
    for (size_t i = 0; i < e->nstmts; i++) {
        if (e->stmts[i].sql == sql) {
            sqlite3_reset(e->stmts[i].st);
            sqlite3_clear_bindings(e->stmts[i].st);
            *out = e->stmts[i].st;
            return JM_OK;
        }
    }
    if (e->nstmts == JM_ENG_STMT_CACHE)
        return jm_host_error(JM_EDB, "engine statement cache full (%d)", JM_ENG_STMT_CACHE);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(e->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return jm__eng_sqlite_err(e->db, rc, "preparing a catalog statement");
    e->stmts[e->nstmts].sql = sql;
    e->stmts[e->nstmts].st = st;
    e->nstmts++;
    *out = st;
    return JM_OK;
}

int jm__eng_exec(jm_engine *e, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return jm__eng_sqlite_err(e->db, rc, what);
    return JM_OK;
}

static int exec_sql(jm_engine *e, const char *sql, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql, &st);
    return rc ? rc : jm__eng_exec(e, st, what);
}

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";

int jm__eng_begin(jm_engine *e)
{
    return exec_sql(e, sql_begin, "beginning a catalog transaction");
}

int jm__eng_commit(jm_engine *e)
{
    int rc = exec_sql(e, sql_commit, "committing the catalog");
    /* A failed COMMIT may leave the transaction open (SQLITE_BUSY): roll it
     * back so nothing half-done stays and the connection stays usable. */
    if (rc != JM_OK)
        jm__eng_rollback(e);
    return rc;
}

void jm__eng_rollback(jm_engine *e)
{
    if (sqlite3_get_autocommit(e->db))
        return;
    if (exec_sql(e, sql_rollback, "rolling back") != JM_OK)
        sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
}

/* --- checks --------------------------------------------------------------- */

int64_t jm__eng_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * JM_ENG_MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

int jm__eng_time(const char *what, int64_t t, int64_t *out)
{
    if (t < 0)
        return jm_host_error(JM_EINVAL, "%s must not be negative (0 means now)", what);
    *out = t ? t : jm__eng_now_ms();
    return JM_OK;
}

int jm__eng_check_doc(const char *doc, size_t len)
{
    if (!doc)
        return jm_host_error(JM_EINVAL, "document is NULL");
    if (len > JM_ENG_DOC_MAX)
        return jm_host_error(JM_ETOOBIG, "document of %zu bytes exceeds %d", len,
                             JM_ENG_DOC_MAX);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(doc, len, &end, 0);
    /* cJSON's NULL is also its answer to a memory shortage. */
    if (!j && jm__json_check(doc, len) != JM_JSON_INVALID)
        return jm_host_error(JM_ENOMEM, "out of memory checking a document");
    if (!j)
        return jm_host_error(JM_EJSON, "document is not valid JSON");
    cJSON_Delete(j);
    /* cJSON stops after the first value; only white space may follow. */
    for (; end && end < doc + len; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')
            return jm_host_error(JM_EJSON, "document has trailing bytes after its JSON value");
    return JM_OK;
}

/* --- table lookup --------------------------------------------------------- */

static const char sql_table[] =
    "SELECT id, type, ttl_seconds, owner_user_id FROM tables WHERE ns = ?1 AND name = ?2";

int jm__eng_table_locked(jm_engine *e, const char *ns, const char *table, jm__eng_table *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_table, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(st, 0);
        out->type = (jm_table_type)sqlite3_column_int(st, 1);
        out->ttl_seconds = sqlite3_column_int64(st, 2);
        const unsigned char *owner = sqlite3_column_text(st, 3);
        if (owner)
            snprintf(out->owner, sizeof out->owner, "%s", (const char *)owner);
        rc = JM_OK;
    } else if (rc == SQLITE_DONE) {
        rc = jm_host_error(JM_ENOTFOUND, "table %s:%s not found", ns, table);
    } else {
        rc = jm__eng_sqlite_err(e->db, rc, "looking up a table");
    }
    sqlite3_reset(st);
    return rc;
}

int jm__eng_find_table_locked(jm_engine *e, const char *ns, const char *table,
                              jm__eng_table *out)
{
    int rc = jm_host_name_check("namespace", ns);
    if (!rc)
        rc = jm_host_name_check("table name", table);
    return rc ? rc : jm__eng_table_locked(e, ns, table, out);
}

/* --- open and close -------------------------------------------------------- */

/* mkdir -p: creates `dir` and its missing parents. */
static int make_dirs(const char *dir)
{
    char path[JM_ENG_PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof path)
        return jm_host_error(JM_EINVAL, "engine directory path too long");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, JM_ENG_DIR_MODE) != 0 && errno != EEXIST)
            return jm_host_error(JM_EIO, "creating %s: %s", path, strerror(errno));
        path[i] = saved;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return jm_host_error(JM_EIO, "%s is not a directory", dir);
    return JM_OK;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = jm__malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Only one engine may use a directory at a time: opening collects orphan
 * files, which would destroy another engine's segment in the making. */
static int take_lock(jm_engine *e)
{
    char *path = join(e->dir, JM_ENG_LOCKFILE);
    if (!path)
        return jm_host_error(JM_ENOMEM, "out of memory opening the engine");
    int rc = JM_OK;
    e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, JM_ENG_FILE_MODE);
    if (e->lock_fd < 0) {
        rc = jm_host_error(JM_EIO, "opening %s: %s", path, strerror(errno));
        goto done;
    }
    if (flock(e->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? jm_host_error(JM_EBUSY, "%s is in use by another open engine", e->dir)
                 : jm_host_error(JM_EIO, "locking %s: %s", path, strerror(errno));
        goto done;
    }
done:
    jm__free(path);
    return rc;
}

static int pragma(jm_engine *e, const char *sql)
{
    int rc = sqlite3_exec(e->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? JM_OK : jm__eng_sqlite_err(e->db, rc, sql);
}

static int open_catalog(jm_engine *e)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(e->catalog_path, &e->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (!e->db)
            return jm_host_error(JM_ENOMEM, "out of memory opening %s", e->catalog_path);
        return jm__eng_sqlite_err(e->db, rc, e->catalog_path);
    }
    sqlite3_extended_result_codes(e->db, 1);
    sqlite3_busy_timeout(e->db, JM_ENG_BUSY_TIMEOUT_MS);
    /* WAL lets the snapshot readers (scan, export) run beside the writer;
     * FULL sync makes a committed flush durable before its old state goes. */
    if ((rc = pragma(e, "PRAGMA journal_mode=WAL")) ||
        (rc = pragma(e, "PRAGMA synchronous=FULL")) ||
        (rc = pragma(e, "PRAGMA foreign_keys=ON")))
        return rc;
    return jm__eng_schema(e);
}

/* Import staging left by a crash can never be committed: its handle died
 * with the process. */
static const char sql_clear_staging[] = "DELETE FROM imports";

int jm_engine_open(const char *dir, jm_engine **out)
{
    if (out)
        *out = NULL;
    if (!dir || !out || !*dir)
        return jm_host_error(JM_EINVAL, "jm_engine_open: NULL or empty argument");
    if (strlen(dir) > JM_ENG_PATH_MAX / 2)
        return jm_host_error(JM_EINVAL, "jm_engine_open: directory path too long");
    int rc = make_dirs(dir);
    if (rc)
        return rc;
    jm_engine *e = jm__calloc(1, sizeof *e);
    if (!e)
        return jm_host_error(JM_ENOMEM, "out of memory opening the engine");
    e->lock_fd = -1;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        jm__free(e);
        return jm_host_error(JM_ENOMEM, "cannot create the engine mutex");
    }
    e->dir = jm__strdup(dir);
    e->catalog_path = e->dir ? join(dir, JM_ENG_CATALOG) : NULL;
    if (!e->dir || !e->catalog_path) {
        rc = jm_host_error(JM_ENOMEM, "out of memory opening the engine");
        goto fail;
    }
    if ((rc = take_lock(e)) || (rc = open_catalog(e)) ||
        (rc = exec_sql(e, sql_clear_staging, "clearing import staging")) ||
        (rc = jm__eng_collect_orphans(e)))
        goto fail;
    jm__eng_host_init(e);
    *out = e;
    return JM_OK;
fail:
    jm_engine_close(e);
    return rc;
}

void jm_engine_close(jm_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nstmts; i++)
        sqlite3_finalize(e->stmts[i].st);
    if (e->db)
        sqlite3_close(e->db);
    if (e->lock_fd >= 0)
        close(e->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&e->mu);
    jm__free(e->catalog_path);
    jm__free(e->dir);
    jm__free(e);
}

const jm_host *jm_engine_host(jm_engine *e)
{
    return e ? &e->host : NULL;
}
