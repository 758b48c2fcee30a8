/* The in-memory fake host for executor tests; see fake_host.h. Simple
 * arrays and linear scans: it holds thousands of rows, not millions. */
#define _GNU_SOURCE
#include "fake_host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The buffer's pseudo segment id. */
#define FH_BUFFER 0

#define NAME_SIZE (JM_HOST_NAME_MAX + 1)

typedef struct fh_row {
    int64_t key;
    int64_t created_at;
    int64_t deleted_at;
    int64_t bytes;
    int64_t segment; /* FH_BUFFER or a segment id */
    char *doc;
    size_t doc_len;
} fh_row;

typedef struct fh_table {
    char ns[NAME_SIZE];
    char name[NAME_SIZE];
    char owner[NAME_SIZE];
    jm_table_type type;
    int64_t ttl_seconds;
    fh_row *rows; /* sorted by key */
    size_t nrows, cap;
    int64_t *segs; /* segment ids, oldest first */
    size_t nsegs, segcap;
    int64_t next_key;
} fh_table;

typedef struct fh_user {
    char id[NAME_SIZE];
    char username[NAME_SIZE];
    int64_t deleted_at;
} fh_user;

/* An ACL entry or a live query: who, on which table. */
typedef struct fh_grant {
    char user[NAME_SIZE];
    char ns[NAME_SIZE];
    char table[NAME_SIZE];
} fh_grant;

typedef struct fh_import {
    fh_table *staging;
    int overwrite;
    struct fh_import *next;
} fh_import;

typedef struct fh_fault {
    int skip;
    int times;
    int code;
} fh_fault;

struct fh_host {
    jm_host vt;
    pthread_mutex_t mu; /* recursive: callbacks may call operations */
    fh_table **tables;
    size_t ntables, tcap;
    fh_user *users;
    size_t nusers, ucap;
    fh_grant *acl;
    size_t nacl, acap;
    fh_grant *lq;
    size_t nlq, lqcap;
    fh_import *imports;
    int64_t next_segment;
    int calls[FH_OP_COUNT];
    fh_fault faults[FH_OP_COUNT];
    fh_hook_fn hook;
    void *hook_arg;
    fh_purge_args last_purge;
    int64_t *last_merge;
    size_t nlast_merge;
};

static const char *const op_names[FH_OP_COUNT] = {
    "table_info",    "flush",       "purge",
    "list_segments", "merge_segments", "drop_table",
    "user_info",     "user_tables", "remove_user_acl",
    "remove_user_live_queries", "delete_user", "export_table",
    "import_begin",  "import_rows", "import_commit",
    "import_abort",
};

const char *fh_op_name(fh_op op)
{
    return (unsigned)op < FH_OP_COUNT ? op_names[op] : "unknown";
}

/* ---- small helpers ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static int name_ok(const char *s)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, NAME_SIZE);
    if (n == 0 || n >= NAME_SIZE || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static void lock(fh_host *h)
{
    pthread_mutex_lock(&h->mu);
}

static void unlock(fh_host *h)
{
    pthread_mutex_unlock(&h->mu);
}

static fh_table *table_new(const char *ns, const char *name, jm_table_type type, int64_t ttl,
                           const char *owner)
{
    fh_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->ns, sizeof t->ns, "%s", ns);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->owner, sizeof t->owner, "%s", owner ? owner : "");
    t->type = type;
    t->ttl_seconds = ttl;
    t->next_key = 1;
    return t;
}

static void table_free(fh_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows; i++)
        free(t->rows[i].doc);
    free(t->rows);
    free(t->segs);
    free(t);
}

static size_t table_index(fh_host *h, const char *ns, const char *name)
{
    for (size_t i = 0; i < h->ntables; i++)
        if (!strcmp(h->tables[i]->ns, ns) && !strcmp(h->tables[i]->name, name))
            return i;
    return (size_t)-1;
}

static fh_table *find_table(fh_host *h, const char *ns, const char *name)
{
    if (!ns || !name)
        return NULL;
    size_t i = table_index(h, ns, name);
    return i == (size_t)-1 ? NULL : h->tables[i];
}

static fh_user *find_user(fh_host *h, const char *id)
{
    for (size_t i = 0; id && i < h->nusers; i++)
        if (!strcmp(h->users[i].id, id))
            return &h->users[i];
    return NULL;
}

static fh_row *find_row(fh_table *t, int64_t key)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].key == key)
            return &t->rows[i];
    return NULL;
}

static int append_row(fh_table *t, const char *doc, size_t doc_len, int64_t key,
                      int64_t created_at, int64_t deleted_at, int64_t bytes, int64_t segment)
{
    if (grow((void **)&t->rows, &t->cap, t->nrows + 1, sizeof *t->rows))
        return JM_ENOMEM;
    char *copy = malloc(doc_len + 1);
    if (!copy)
        return JM_ENOMEM;
    memcpy(copy, doc, doc_len);
    copy[doc_len] = '\0';
    t->rows[t->nrows++] =
        (fh_row){key, created_at, deleted_at, bytes, segment, copy, doc_len};
    if (key >= t->next_key)
        t->next_key = key + 1;
    return JM_OK;
}

static int add_segment_id(fh_table *t, int64_t id)
{
    if (grow((void **)&t->segs, &t->segcap, t->nsegs + 1, sizeof *t->segs))
        return JM_ENOMEM;
    t->segs[t->nsegs++] = id;
    return JM_OK;
}

static void segment_shape(const fh_table *t, int64_t id, int64_t *rows, int64_t *bytes)
{
    *rows = 0;
    *bytes = FH_SEGMENT_OVERHEAD;
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].segment == id) {
            (*rows)++;
            *bytes += t->rows[i].bytes;
        }
}

static int64_t segment_bytes_total(const fh_table *t)
{
    int64_t total = 0, rows, bytes;
    for (size_t i = 0; i < t->nsegs; i++) {
        segment_shape(t, t->segs[i], &rows, &bytes);
        total += bytes;
    }
    return total;
}

/* Drops segment ids that no longer hold a row. */
static void prune_empty_segments(fh_table *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        int64_t rows, bytes;
        segment_shape(t, t->segs[i], &rows, &bytes);
        if (rows > 0)
            t->segs[w++] = t->segs[i];
    }
    t->nsegs = w;
}

static void remove_grants(fh_grant *g, size_t *n, const char *user, const char *ns,
                          const char *table, int64_t *removed)
{
    size_t w = 0;
    int64_t count = 0;
    for (size_t i = 0; i < *n; i++) {
        int match = user ? !strcmp(g[i].user, user)
                         : !strcmp(g[i].ns, ns) && !strcmp(g[i].table, table);
        if (match)
            count++;
        else
            g[w++] = g[i];
    }
    *n = w;
    if (removed)
        *removed = count;
}

/* Counts the call, runs the hook, and applies an injected fault. Returns
 * JM_OK with the lock held, or the injected code with it released. */
static int enter(fh_host *h, fh_op op)
{
    int can_fail = op != FH_IMPORT_ABORT;
    lock(h);
    fh_hook_fn hook = h->hook;
    void *arg = h->hook_arg;
    unlock(h);
    if (hook)
        hook(arg, op);
    lock(h);
    h->calls[op]++;
    fh_fault *f = &h->faults[op];
    if (!can_fail) {
        return JM_OK;
    } else if (f->skip > 0) {
        f->skip--;
    } else if (f->times > 0) {
        f->times--;
        int code = f->code;
        unlock(h);
        return jm_host_error(code, "fake host: injected %s failure (%s)", fh_op_name(op),
                             jm_err_name(code));
    }
    return JM_OK;
}

static int leave(fh_host *h, int rc)
{
    unlock(h);
    return rc;
}

#define SELF(self) ((fh_host *)(self))

static int no_table(const char *ns, const char *table)
{
    return jm_host_error(JM_ENOTFOUND, "fake host: table %s.%s not found", ns ? ns : "(null)",
                         table ? table : "(null)");
}

/* ---- the vtable ---- */

static int op_table_info(void *self, const char *ns, const char *table, jm_host_table *out)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_TABLE_INFO);
    if (rc)
        return rc;
    fh_table *t = find_table(h, ns, table);
    if (!t || !out)
        return leave(h, out ? no_table(ns, table) : JM_EINVAL);
    memset(out, 0, sizeof *out);
    out->type = t->type;
    out->ttl_seconds = t->ttl_seconds;
    snprintf(out->owner_user_id, sizeof out->owner_user_id, "%s", t->owner);
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].segment == FH_BUFFER)
            out->buffered_rows++;
    out->segments = (int64_t)t->nsegs;
    out->segment_bytes = segment_bytes_total(t);
    return leave(h, JM_OK);
}

static int op_flush(void *self, const char *ns, const char *table, jm_host_flush *out)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_FLUSH);
    if (rc)
        return rc;
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, no_table(ns, table));
    out->rows = 0;
    out->bytes = 0;
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].segment == FH_BUFFER)
            out->rows++;
    if (out->rows == 0)
        return leave(h, JM_OK);
    int64_t id = ++h->next_segment;
    if (add_segment_id(t, id)) {
        out->rows = 0;
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    }
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].segment == FH_BUFFER)
            t->rows[i].segment = id;
    int64_t rows;
    segment_shape(t, id, &rows, &out->bytes);
    return leave(h, JM_OK);
}

static int purge_match(const fh_row *r, jm_purge_kind kind, int64_t cutoff)
{
    if (kind == JM_PURGE_DELETED_BEFORE)
        return r->deleted_at != 0 && r->deleted_at < cutoff;
    return r->created_at < cutoff;
}

static int op_purge(void *self, const char *ns, const char *table, jm_purge_kind kind,
                    int64_t cutoff_ms, int64_t after_key, int64_t limit, jm_host_purge *out)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_PURGE);
    if (rc)
        return rc;
    h->last_purge = (fh_purge_args){kind, cutoff_ms, after_key, limit};
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, no_table(ns, table));
    if (limit < 1 || !out)
        return leave(h, jm_host_error(JM_EINVAL, "fake host: purge limit must be >= 1"));
    memset(out, 0, sizeof *out);
    out->last_key = after_key;
    int64_t *touched = calloc(t->nsegs + 1, sizeof *touched);
    if (!touched)
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    size_t ntouched = 0, w = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        fh_row *r = &t->rows[i];
        int examine = r->key > after_key && out->rows < limit;
        if (examine) {
            out->last_key = r->key;
            if (purge_match(r, kind, cutoff_ms)) {
                out->rows++;
                out->bytes_freed += r->bytes;
                if (r->segment != FH_BUFFER) {
                    size_t k = 0;
                    while (k < ntouched && touched[k] != r->segment)
                        k++;
                    if (k == ntouched)
                        touched[ntouched++] = r->segment;
                }
                free(r->doc);
                continue;
            }
        }
        t->rows[w++] = *r;
    }
    t->nrows = w;
    out->files_rewritten = (int64_t)ntouched;
    free(touched);
    prune_empty_segments(t);
    return leave(h, JM_OK);
}

static int op_list_segments(void *self, const char *ns, const char *table,
                            jm_host_segment **out, size_t *n)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_LIST_SEGMENTS);
    if (rc)
        return rc;
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, no_table(ns, table));
    *out = NULL;
    *n = 0;
    if (t->nsegs == 0)
        return leave(h, JM_OK);
    jm_host_segment *s = calloc(t->nsegs, sizeof *s);
    if (!s)
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    for (size_t i = 0; i < t->nsegs; i++) {
        s[i].id = t->segs[i];
        segment_shape(t, t->segs[i], &s[i].rows, &s[i].bytes);
    }
    *out = s;
    *n = t->nsegs;
    return leave(h, JM_OK);
}

static void op_free_segments(void *self, jm_host_segment *segments)
{
    (void)self;
    free(segments);
}

static int op_merge_segments(void *self, const char *ns, const char *table, const int64_t *ids,
                             size_t n, jm_host_segment *merged)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_MERGE_SEGMENTS);
    if (rc)
        return rc;
    int64_t *copy = n ? malloc(n * sizeof *copy) : NULL;
    if (n && !copy)
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    if (n)
        memcpy(copy, ids, n * sizeof *copy);
    free(h->last_merge);
    h->last_merge = copy;
    h->nlast_merge = n;
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, no_table(ns, table));
    if (n == 0 || !merged)
        return leave(h, jm_host_error(JM_EINVAL, "fake host: merge of no segments"));
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t k = 0; k < t->nsegs; k++)
            found |= t->segs[k] == ids[i];
        for (size_t k = 0; k < i; k++)
            found &= ids[k] != ids[i];
        if (!found)
            return leave(h, jm_host_error(JM_ENOTFOUND,
                                          "fake host: segment %lld is not one of %s.%s's",
                                          (long long)ids[i], ns, table));
    }
    int64_t id = ++h->next_segment;
    if (add_segment_id(t, id))
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    for (size_t i = 0; i < t->nrows; i++)
        for (size_t k = 0; k < n; k++)
            if (t->rows[i].segment == ids[k])
                t->rows[i].segment = id;
    prune_empty_segments(t);
    merged->id = id;
    segment_shape(t, id, &merged->rows, &merged->bytes);
    if (merged->rows == 0)
        *merged = (jm_host_segment){0, 0, 0};
    return leave(h, JM_OK);
}

static void drop_locked(fh_host *h, size_t index, jm_host_drop *out)
{
    fh_table *t = h->tables[index];
    if (out) {
        out->rows = (int64_t)t->nrows;
        out->files = (int64_t)t->nsegs;
        out->bytes = segment_bytes_total(t);
    }
    remove_grants(h->acl, &h->nacl, NULL, t->ns, t->name, NULL);
    remove_grants(h->lq, &h->nlq, NULL, t->ns, t->name, NULL);
    table_free(t);
    h->tables[index] = h->tables[--h->ntables];
}

static int op_drop_table(void *self, const char *ns, const char *table, jm_host_drop *out)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_DROP_TABLE);
    if (rc)
        return rc;
    size_t i = ns && table ? table_index(h, ns, table) : (size_t)-1;
    if (i == (size_t)-1)
        return leave(h, no_table(ns, table));
    drop_locked(h, i, out);
    return leave(h, JM_OK);
}

static int op_user_info(void *self, const char *user_id, jm_host_user *out)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_USER_INFO);
    if (rc)
        return rc;
    fh_user *u = find_user(h, user_id);
    if (!u)
        return leave(h, jm_host_error(JM_ENOTFOUND, "fake host: user %s not found",
                                      user_id ? user_id : "(null)"));
    memset(out, 0, sizeof *out);
    snprintf(out->username, sizeof out->username, "%s", u->username);
    out->deleted_at = u->deleted_at;
    return leave(h, JM_OK);
}

static int op_user_tables(void *self, const char *user_id,
                          int (*each)(void *arg, const char *ns, const char *table,
                                      jm_table_type type),
                          void *arg)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_USER_TABLES);
    if (rc)
        return rc;
    if (!find_user(h, user_id))
        return leave(h, jm_host_error(JM_ENOTFOUND, "fake host: user %s not found",
                                      user_id ? user_id : "(null)"));
    for (size_t i = 0; i < h->ntables; i++) {
        fh_table *t = h->tables[i];
        if (strcmp(t->owner, user_id) != 0)
            continue;
        int stop = each(arg, t->ns, t->name, t->type);
        if (stop)
            return leave(h, stop);
    }
    return leave(h, JM_OK);
}

static int op_remove_user_acl(void *self, const char *user_id, int64_t *removed)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_REMOVE_USER_ACL);
    if (rc)
        return rc;
    if (!user_id)
        return leave(h, jm_host_error(JM_EINVAL, "fake host: NULL user"));
    remove_grants(h->acl, &h->nacl, user_id, NULL, NULL, removed);
    return leave(h, JM_OK);
}

static int op_remove_user_live_queries(void *self, const char *user_id, int64_t *removed)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_REMOVE_USER_LIVE_QUERIES);
    if (rc)
        return rc;
    if (!user_id)
        return leave(h, jm_host_error(JM_EINVAL, "fake host: NULL user"));
    remove_grants(h->lq, &h->nlq, user_id, NULL, NULL, removed);
    return leave(h, JM_OK);
}

static int op_delete_user(void *self, const char *user_id)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_DELETE_USER);
    if (rc)
        return rc;
    fh_user *u = find_user(h, user_id);
    if (!u)
        return leave(h, jm_host_error(JM_ENOTFOUND, "fake host: user %s not found",
                                      user_id ? user_id : "(null)"));
    if (u->deleted_at == 0)
        return leave(h, jm_host_error(JM_ESTATE, "fake host: user %s is not soft-deleted",
                                      user_id));
    *u = h->users[--h->nusers];
    return leave(h, JM_OK);
}

static int op_export_table(void *self, const char *ns, const char *table,
                           const jm_host_export_cb *cb)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_EXPORT_TABLE);
    if (rc)
        return rc;
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, no_table(ns, table));
    char meta[3 * NAME_SIZE];
    snprintf(meta, sizeof meta, "{\"type\":\"%s\",\"ttl_seconds\":%lld,\"owner_user_id\":\"%s\"}",
             jm_table_type_name(t->type), (long long)t->ttl_seconds, t->owner);
    if (cb->meta && (rc = cb->meta(cb->arg, meta)) != 0)
        return leave(h, rc);
    jm_host_row batch[FH_EXPORT_BATCH];
    size_t nb = 0;
    for (size_t i = 0; i <= t->nrows; i++) {
        if (i < t->nrows) {
            const fh_row *r = &t->rows[i];
            batch[nb++] = (jm_host_row){r->key, r->created_at, r->deleted_at, r->doc, r->doc_len};
        }
        if ((nb == FH_EXPORT_BATCH || (i == t->nrows && nb > 0)) && cb->rows) {
            if ((rc = cb->rows(cb->arg, batch, nb)) != 0)
                return leave(h, rc);
            nb = 0;
        }
    }
    return leave(h, JM_OK);
}

static int op_import_begin(void *self, const char *ns, const char *table, const char *meta_json,
                           int overwrite, void **import)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_IMPORT_BEGIN);
    if (rc)
        return rc;
    if (!name_ok(ns) || !name_ok(table) || !meta_json || !import)
        return leave(h, jm_host_error(JM_EINVAL, "fake host: bad import arguments"));
    if (find_table(h, ns, table) && !overwrite)
        return leave(h, jm_host_error(JM_ECONFLICT, "fake host: table %s.%s exists", ns, table));
    cJSON *meta = cJSON_Parse(meta_json);
    const cJSON *type_v = cJSON_GetObjectItemCaseSensitive(meta, "type");
    const cJSON *ttl_v = cJSON_GetObjectItemCaseSensitive(meta, "ttl_seconds");
    const cJSON *owner_v = cJSON_GetObjectItemCaseSensitive(meta, "owner_user_id");
    jm_table_type type;
    if (!cJSON_IsObject(meta) || !cJSON_IsString(type_v) ||
        jm_table_type_parse(type_v->valuestring, &type) != JM_OK ||
        (ttl_v && !cJSON_IsNumber(ttl_v)) || (owner_v && !cJSON_IsString(owner_v))) {
        cJSON_Delete(meta);
        return leave(h, jm_host_error(JM_EINVAL, "fake host: unusable table metadata"));
    }
    fh_import *im = calloc(1, sizeof *im);
    if (im)
        im->staging = table_new(ns, table, type, ttl_v ? (int64_t)ttl_v->valuedouble : 0,
                                owner_v ? owner_v->valuestring : NULL);
    cJSON_Delete(meta);
    if (!im || !im->staging) {
        free(im);
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    }
    im->overwrite = overwrite;
    im->next = h->imports;
    h->imports = im;
    *import = im;
    return leave(h, JM_OK);
}

static int op_import_rows(void *self, void *import, const jm_host_row *rows, size_t n)
{
    fh_host *h = SELF(self);
    int rc = enter(h, FH_IMPORT_ROWS);
    if (rc)
        return rc;
    fh_table *t = ((fh_import *)import)->staging;
    for (size_t i = 0; i < n; i++) {
        if (t->nrows && rows[i].key <= t->rows[t->nrows - 1].key)
            return leave(h, jm_host_error(JM_EINVAL, "fake host: import keys must increase"));
        rc = append_row(t, rows[i].doc, rows[i].doc_len, rows[i].key, rows[i].created_at,
                        rows[i].deleted_at, (int64_t)rows[i].doc_len + FH_ROW_OVERHEAD,
                        FH_BUFFER);
        if (rc)
            return leave(h, jm_host_error(rc, "fake host: out of memory"));
    }
    return leave(h, JM_OK);
}

/* Unlinks and frees an import (lock held). */
static void import_drop(fh_host *h, fh_import *im)
{
    for (fh_import **p = &h->imports; *p; p = &(*p)->next)
        if (*p == im) {
            *p = im->next;
            break;
        }
    table_free(im->staging);
    free(im);
}

static int op_import_commit(void *self, void *import)
{
    fh_host *h = SELF(self);
    fh_import *im = import;
    int rc = enter(h, FH_IMPORT_COMMIT);
    if (rc) {
        /* The import is consumed either way: the caller calls no abort. */
        lock(h);
        import_drop(h, im);
        return leave(h, rc);
    }
    fh_table *t = im->staging;
    size_t i = table_index(h, t->ns, t->name);
    if (i != (size_t)-1 && !im->overwrite) {
        import_drop(h, im);
        return leave(h, jm_host_error(JM_ECONFLICT, "fake host: table %s.%s appeared meanwhile",
                                      t->ns, t->name));
    }
    if (grow((void **)&h->tables, &h->tcap, h->ntables + 1, sizeof *h->tables)) {
        import_drop(h, im);
        return leave(h, jm_host_error(JM_ENOMEM, "fake host: out of memory"));
    }
    if (i != (size_t)-1)
        drop_locked(h, i, NULL);
    h->tables[h->ntables++] = t;
    im->staging = NULL;
    import_drop(h, im);
    return leave(h, JM_OK);
}

static void op_import_abort(void *self, void *import)
{
    fh_host *h = SELF(self);
    enter(h, FH_IMPORT_ABORT); /* never injected: abort cannot fail */
    import_drop(h, import);
    unlock(h);
}

/* ---- lifecycle ---- */

fh_host *fh_new(void)
{
    fh_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    h->vt = (jm_host){
        .version = JM_HOST_VERSION,
        .self = h,
        .table_info = op_table_info,
        .flush = op_flush,
        .purge = op_purge,
        .list_segments = op_list_segments,
        .free_segments = op_free_segments,
        .merge_segments = op_merge_segments,
        .drop_table = op_drop_table,
        .user_info = op_user_info,
        .user_tables = op_user_tables,
        .remove_user_acl = op_remove_user_acl,
        .remove_user_live_queries = op_remove_user_live_queries,
        .delete_user = op_delete_user,
        .export_table = op_export_table,
        .import_begin = op_import_begin,
        .import_rows = op_import_rows,
        .import_commit = op_import_commit,
        .import_abort = op_import_abort,
    };
    return h;
}

void fh_free(fh_host *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->ntables; i++)
        table_free(h->tables[i]);
    free(h->tables);
    while (h->imports)
        import_drop(h, h->imports);
    free(h->users);
    free(h->acl);
    free(h->lq);
    free(h->last_merge);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const jm_host *fh_jm_host(fh_host *h)
{
    return h ? &h->vt : NULL;
}

/* ---- setup and inspection ---- */

int fh_add_table(fh_host *h, const char *ns, const char *table, jm_table_type type,
                 int64_t ttl_seconds, const char *owner_user_id)
{
    if (!h || !name_ok(ns) || !name_ok(table) || (owner_user_id && !name_ok(owner_user_id)))
        return JM_EINVAL;
    lock(h);
    if (find_table(h, ns, table))
        return leave(h, JM_ECONFLICT);
    fh_table *t = table_new(ns, table, type, ttl_seconds, owner_user_id);
    if (!t || grow((void **)&h->tables, &h->tcap, h->ntables + 1, sizeof *h->tables)) {
        table_free(t);
        return leave(h, JM_ENOMEM);
    }
    h->tables[h->ntables++] = t;
    return leave(h, JM_OK);
}

int fh_insert(fh_host *h, const char *ns, const char *table, const char *doc,
              int64_t created_at, int64_t *key_out)
{
    if (!h || !doc)
        return JM_EINVAL;
    lock(h);
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, JM_ENOTFOUND);
    size_t len = strlen(doc);
    int64_t key = t->next_key;
    int rc = append_row(t, doc, len, key, created_at, 0, (int64_t)len + FH_ROW_OVERHEAD,
                        FH_BUFFER);
    if (rc == JM_OK && key_out)
        *key_out = key;
    return leave(h, rc);
}

int fh_soft_delete(fh_host *h, const char *ns, const char *table, int64_t key,
                   int64_t deleted_at)
{
    if (!h || deleted_at <= 0)
        return JM_EINVAL;
    lock(h);
    fh_table *t = find_table(h, ns, table);
    fh_row *r = t ? find_row(t, key) : NULL;
    if (!r)
        return leave(h, JM_ENOTFOUND);
    if (r->deleted_at)
        return leave(h, JM_ESTATE);
    r->deleted_at = deleted_at;
    return leave(h, JM_OK);
}

int fh_add_segment(fh_host *h, const char *ns, const char *table, int64_t rows, int64_t bytes,
                   int64_t created_at, int64_t *id_out)
{
    if (!h || rows < 1 || bytes - FH_SEGMENT_OVERHEAD < rows)
        return JM_EINVAL;
    lock(h);
    fh_table *t = find_table(h, ns, table);
    if (!t)
        return leave(h, JM_ENOTFOUND);
    int64_t id = ++h->next_segment;
    int rc = add_segment_id(t, id);
    int64_t payload = bytes - FH_SEGMENT_OVERHEAD;
    for (int64_t i = 0; rc == JM_OK && i < rows; i++) {
        int64_t weight = payload / rows + (i == 0 ? payload % rows : 0);
        rc = append_row(t, "{}", 2, t->next_key, created_at, 0, weight, id);
    }
    if (rc == JM_OK && id_out)
        *id_out = id;
    return leave(h, rc);
}

int fh_table_exists(fh_host *h, const char *ns, const char *table)
{
    lock(h);
    int found = find_table(h, ns, table) != NULL;
    return leave(h, found);
}

int64_t fh_row_count(fh_host *h, const char *ns, const char *table, int include_deleted)
{
    lock(h);
    fh_table *t = find_table(h, ns, table);
    int64_t n = t ? 0 : -1;
    for (size_t i = 0; t && i < t->nrows; i++)
        if (include_deleted || t->rows[i].deleted_at == 0)
            n++;
    unlock(h);
    return n;
}

int64_t fh_buffered_rows(fh_host *h, const char *ns, const char *table)
{
    lock(h);
    fh_table *t = find_table(h, ns, table);
    int64_t n = t ? 0 : -1;
    for (size_t i = 0; t && i < t->nrows; i++)
        if (t->rows[i].segment == FH_BUFFER)
            n++;
    unlock(h);
    return n;
}

int fh_row_exists(fh_host *h, const char *ns, const char *table, int64_t key)
{
    lock(h);
    fh_table *t = find_table(h, ns, table);
    int found = t && find_row(t, key);
    return leave(h, found);
}

int fh_row_doc(fh_host *h, const char *ns, const char *table, int64_t key, char *buf,
               size_t len)
{
    lock(h);
    fh_table *t = find_table(h, ns, table);
    fh_row *r = t ? find_row(t, key) : NULL;
    if (!r || !buf || len == 0)
        return leave(h, r ? JM_EINVAL : JM_ENOTFOUND);
    snprintf(buf, len, "%s", r->doc);
    return leave(h, JM_OK);
}

int64_t fh_segments(fh_host *h, const char *ns, const char *table, jm_host_segment *out,
                    size_t max)
{
    lock(h);
    fh_table *t = find_table(h, ns, table);
    if (!t) {
        unlock(h);
        return -1;
    }
    for (size_t i = 0; out && i < t->nsegs && i < max; i++) {
        out[i].id = t->segs[i];
        segment_shape(t, t->segs[i], &out[i].rows, &out[i].bytes);
    }
    int64_t n = (int64_t)t->nsegs;
    unlock(h);
    return n;
}

int fh_add_user(fh_host *h, const char *user_id, const char *username)
{
    if (!h || !name_ok(user_id) || !username || strlen(username) >= NAME_SIZE)
        return JM_EINVAL;
    lock(h);
    if (find_user(h, user_id))
        return leave(h, JM_ECONFLICT);
    if (grow((void **)&h->users, &h->ucap, h->nusers + 1, sizeof *h->users))
        return leave(h, JM_ENOMEM);
    fh_user *u = &h->users[h->nusers++];
    memset(u, 0, sizeof *u);
    snprintf(u->id, sizeof u->id, "%s", user_id);
    snprintf(u->username, sizeof u->username, "%s", username);
    return leave(h, JM_OK);
}

int fh_soft_delete_user(fh_host *h, const char *user_id, int64_t deleted_at)
{
    if (!h || deleted_at <= 0)
        return JM_EINVAL;
    lock(h);
    fh_user *u = find_user(h, user_id);
    if (!u)
        return leave(h, JM_ENOTFOUND);
    if (u->deleted_at)
        return leave(h, JM_ESTATE);
    u->deleted_at = deleted_at;
    return leave(h, JM_OK);
}

int fh_user_exists(fh_host *h, const char *user_id)
{
    lock(h);
    int found = find_user(h, user_id) != NULL;
    return leave(h, found);
}

static int add_grant(fh_host *h, fh_grant **arr, size_t *n, size_t *cap, const char *user_id,
                     const char *ns, const char *table)
{
    if (!h || !name_ok(user_id) || !name_ok(ns) || !name_ok(table))
        return JM_EINVAL;
    lock(h);
    if (!find_user(h, user_id) || !find_table(h, ns, table))
        return leave(h, JM_ENOTFOUND);
    if (grow((void **)arr, cap, *n + 1, sizeof **arr))
        return leave(h, JM_ENOMEM);
    fh_grant *g = &(*arr)[(*n)++];
    snprintf(g->user, sizeof g->user, "%s", user_id);
    snprintf(g->ns, sizeof g->ns, "%s", ns);
    snprintf(g->table, sizeof g->table, "%s", table);
    return leave(h, JM_OK);
}

int fh_add_acl(fh_host *h, const char *user_id, const char *ns, const char *table)
{
    return add_grant(h, &h->acl, &h->nacl, &h->acap, user_id, ns, table);
}

int fh_add_live_query(fh_host *h, const char *user_id, const char *ns, const char *table)
{
    return add_grant(h, &h->lq, &h->nlq, &h->lqcap, user_id, ns, table);
}

static int64_t count_grants(fh_host *h, const fh_grant *g, size_t n, const char *user_id)
{
    int64_t c = 0;
    lock(h);
    for (size_t i = 0; i < n; i++)
        if (!user_id || !strcmp(g[i].user, user_id))
            c++;
    unlock(h);
    return c;
}

int64_t fh_acl_count(fh_host *h, const char *user_id)
{
    return count_grants(h, h->acl, h->nacl, user_id);
}

int64_t fh_live_query_count(fh_host *h, const char *user_id)
{
    return count_grants(h, h->lq, h->nlq, user_id);
}

/* ---- faults, counters, hook ---- */

void fh_fail(fh_host *h, fh_op op, int code, int times)
{
    fh_fail_after(h, op, 0, code, times);
}

void fh_fail_after(fh_host *h, fh_op op, int skip, int code, int times)
{
    if (!h || (unsigned)op >= FH_OP_COUNT)
        return;
    lock(h);
    h->faults[op] = (fh_fault){skip > 0 ? skip : 0, times > 0 ? times : 0, code};
    unlock(h);
}

void fh_clear_faults(fh_host *h)
{
    lock(h);
    memset(h->faults, 0, sizeof h->faults);
    unlock(h);
}

int fh_calls(fh_host *h, fh_op op)
{
    if (!h || (unsigned)op >= FH_OP_COUNT)
        return 0;
    lock(h);
    int n = h->calls[op];
    unlock(h);
    return n;
}

void fh_reset_calls(fh_host *h)
{
    lock(h);
    memset(h->calls, 0, sizeof h->calls);
    unlock(h);
}

void fh_set_hook(fh_host *h, fh_hook_fn fn, void *arg)
{
    lock(h);
    h->hook = fn;
    h->hook_arg = arg;
    unlock(h);
}

fh_purge_args fh_last_purge(fh_host *h)
{
    lock(h);
    fh_purge_args a = h->last_purge;
    unlock(h);
    return a;
}

size_t fh_last_merge(fh_host *h, int64_t *ids, size_t max)
{
    lock(h);
    size_t n = h->nlast_merge;
    for (size_t i = 0; ids && i < n && i < max; i++)
        ids[i] = h->last_merge[i];
    unlock(h);
    return n;
}
