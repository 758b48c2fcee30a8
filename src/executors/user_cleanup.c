/*
 * User cleanup (UC): removes a soft-deleted user for good.
 *
 * With `cascade`, the tables the user owns are dropped first, each by its
 * own cleanup (CL) job with an idempotency key per user and table, so a
 * rerun after a crash finds the same jobs instead of making new ones. The
 * job then waits for them by `continue` decisions (a short named delay, no
 * retry spent); their ids are in the checkpoint. When all completed, the
 * user's ACL entries and live queries are removed and then the user.
 * Counts removed so far are kept in the checkpoint too, so a run retried
 * after JM_EBUSY reports totals over all runs.
 *
 * Not cancellable: stopping half way would leave a user without tables but
 * with grants. It does not delete a live user ("User must be soft-deleted
 * first"), and a user already gone completes at once (idempotent).
 */
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "exec_util.h"
#include "sha256.h"

/* How soon to look at the cleanup jobs again: they are usually quick. */
#define UC_POLL_DELAY_MS 200
/* The checkpoint keeps one job id per table and is at most
 * JM_MAX_PARAMS_BYTES; this many ids fit with room to spare. */
#define UC_MAX_TABLES 10000
/* The usernames we accept, as seeds spell them: any short string. */
#define UC_USERNAME_MAX JM_HOST_NAME_MAX
/* Idempotency key prefix of the cleanup jobs this executor creates. */
#define UC_KEY_PREFIX "uc:"
/* The prefix of a user cleanup's resource. */
#define UC_RESOURCE_PREFIX "user:"

static int uc_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    int cascade = 0;
    return jm__param_name(p, "user_id", &s, err, errlen) ||
                   jm__param_string(p, "username", 1, UC_USERNAME_MAX, &s, err, errlen) ||
                   jm__param_bool(p, "cascade", 1, &cascade, err, errlen)
               ? -1
               : 0;
}

/* "uc:<user>:<ns>:<table>", or, when that would exceed an idempotency
 * key's limit, "uc:sha256:<hex of the same text>" (still one key per user
 * and table). */
static const char *cleanup_key(jm_ctx *ctx, const char *user, const char *ns, const char *table)
{
    const char *key = jm_ctx_strf(ctx, UC_KEY_PREFIX "%s:%s:%s", user, ns, table);
    if (strlen(key) <= JM_MAX_KEY_BYTES)
        return key;
    char hex[JM_SHA256_HEX_SIZE];
    jm__sha256_hex(key, strlen(key), hex);
    return jm_ctx_strf(ctx, UC_KEY_PREFIX "sha256:%s", hex);
}

typedef struct spawn {
    jm_ctx *ctx;
    const char *user;
    cJSON *ids;   /* job ids, for the checkpoint */
    int rc;       /* the failed jm_ctx_create_job's code */
    const char *what;
} spawn;

static int spawn_one(void *arg, const char *ns, const char *table, jm_table_type type)
{
    spawn *s = arg;
    if (cJSON_GetArraySize(s->ids) >= UC_MAX_TABLES) {
        s->rc = JM_ETOOBIG;
        s->what = jm_ctx_strf(s->ctx, "the user owns more than %d tables", UC_MAX_TABLES);
        return 1;
    }
    /* jm_ctx_strf gives "" when memory is short: never a table id or key. */
    const char *table_id = jm_ctx_strf(s->ctx, "%s:%s", ns, table);
    const char *key = cleanup_key(s->ctx, s->user, ns, table);
    if (!*table_id || !*key) {
        s->rc = JM_ENOMEM;
        s->what = "out of memory";
        return 1;
    }
    cJSON *p = cJSON_CreateObject();
    char *params = NULL;
    if (p && cJSON_AddStringToObject(p, "table_id", table_id) &&
        cJSON_AddStringToObject(p, "table_type", jm_table_type_name(type)) &&
        cJSON_AddStringToObject(p, "operation", "drop_table"))
        params = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    if (!params) {
        s->rc = JM_ENOMEM;
        s->what = "out of memory";
        return 1;
    }
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.namespace_id = ns;
    o.idempotency_key = key;
    char id[JM_JOB_ID_SIZE] = "";
    int rc = jm_ctx_create_job(s->ctx, JM_CLEANUP, params, &o, id);
    cJSON_free(params);
    /* A conflict means the job from an earlier run is still active: wait
     * for that one. */
    if (rc != JM_OK && rc != JM_ECONFLICT) {
        s->rc = rc;
        s->what = jm_ctx_strf(s->ctx, "creating the cleanup job for %s.%s", ns, table);
        return 1;
    }
    cJSON *v = cJSON_CreateString(id);
    if (!v) {
        s->rc = JM_ENOMEM;
        s->what = "out of memory";
        return 1;
    }
    cJSON_AddItemToArray(s->ids, v);
    jm_ctx_log(s->ctx, JM_LOG_INFO, "%s %s to drop %s.%s", rc == JM_ECONFLICT ? "found" : "created",
               id, ns, table);
    return 0;
}

static const char *metrics(jm_ctx *ctx, int64_t tables, int64_t acl, int64_t lq)
{
    return jm_ctx_strf(ctx,
                       "{\"tables_deleted\":%lld,\"acl_entries_removed\":%lld,"
                       "\"live_queries_deleted\":%lld}",
                       (long long)tables, (long long)acl, (long long)lq);
}

/* 1 if every job in `ids` completed, 0 if some are still active; -1 with
 * *d set if one failed or was cancelled or cannot be read. */
static int jobs_done(jm_ctx *ctx, const cJSON *ids, int *active, jm_decision *d)
{
    jm_manager *m = jm_ctx_manager(ctx);
    *active = 0;
    for (const cJSON *v = ids ? ids->child : NULL; v; v = v->next) {
        if (!cJSON_IsString(v))
            continue;
        jm_job *job = NULL;
        int rc = jm_get(m, v->valuestring, &job);
        if (rc == JM_ENOTFOUND)
            continue; /* pruned, so finished; the table check below decides */
        if (rc == JM_EBUSY) {
            *d = jm_decision_retry(jm_ctx_strf(ctx, "reading %s: busy", v->valuestring), NULL,
                                   -1);
            return -1;
        }
        if (rc) {
            *d = jm_decision_failed(
                jm_ctx_strf(ctx, "cannot read cleanup job %s: %s", v->valuestring,
                            jm_last_error()),
                NULL);
            return -1;
        }
        jm_status st = jm_job_status(job);
        if (st == JM_STATUS_FAILED || st == JM_STATUS_CANCELLED) {
            const char *msg = jm_job_message(job);
            *d = jm_decision_failed(
                jm_ctx_strf(ctx, "cleanup job %s %s: %s; the user was not removed",
                            v->valuestring, st == JM_STATUS_FAILED ? "failed" : "was cancelled",
                            msg ? msg : "(no message)"),
                NULL);
            jm_job_free(job);
            return -1;
        }
        if (st != JM_STATUS_COMPLETED)
            (*active)++;
        jm_job_free(job);
    }
    return *active == 0;
}

static int first_table(void *arg, const char *ns, const char *table, jm_table_type type)
{
    (void)type;
    snprintf(arg, 2 * JM_HOST_NAME_MAX + 2, "%s.%s", ns, table);
    return 1;
}

/* The last step: ACL entries, live queries, the user. */
static jm_decision finish(jm_ctx *ctx, const jm_host *h, cJSON *cp, const char *user, int cascade)
{
    int64_t tables = jm__checkpoint_int(cp, "tables", 0);
    int64_t acl = jm__checkpoint_int(cp, "acl", 0);
    int64_t lq = jm__checkpoint_int(cp, "live_queries", 0);
    int64_t n = 0;
    if (cascade) {
        /* Every cleanup job ended well; make sure no table of the user is
         * left (one created meanwhile, or a pruned job's table). */
        char left[2 * JM_HOST_NAME_MAX + 2] = "";
        int rc = h->user_tables(h->self, user, first_table, left);
        if (rc < 0)
            return jm__host_failure(ctx, rc, "user_tables", -1);
        if (left[0])
            return jm_decision_failed(
                jm_ctx_strf(ctx, "table %s of user %s still exists after its cleanup", left,
                            user),
                NULL);
    }
    int rc = h->remove_user_acl(h->self, user, &n);
    if (rc)
        return jm__host_failure(ctx, rc, "remove_user_acl", -1);
    acl += n;
    n = 0;
    rc = h->remove_user_live_queries(h->self, user, &n);
    if (rc == JM_OK) {
        lq += n;
        cJSON_DeleteItemFromObjectCaseSensitive(cp, "acl");
        cJSON_DeleteItemFromObjectCaseSensitive(cp, "live_queries");
        cJSON_AddNumberToObject(cp, "acl", (double)acl);
        cJSON_AddNumberToObject(cp, "live_queries", (double)lq);
        rc = jm__checkpoint_save(ctx, cp);
        if (rc == JM_OK)
            rc = h->delete_user(h->self, user);
        if (rc == JM_ENOTFOUND)
            rc = JM_OK;
        if (rc == JM_ESTATE)
            return jm_decision_failed("User must be soft-deleted first", NULL);
    } else {
        /* Keep what was removed so far for the retried run. */
        cJSON_DeleteItemFromObjectCaseSensitive(cp, "acl");
        cJSON_AddNumberToObject(cp, "acl", (double)acl);
        jm__checkpoint_save(ctx, cp);
    }
    if (rc)
        return jm__host_failure(ctx, rc, "removing the user", -1);
    jm_ctx_log(ctx, JM_LOG_INFO, "user %s removed: %lld tables, %lld ACL entries, %lld live queries",
               user, (long long)tables, (long long)acl, (long long)lq);
    return jm_decision_completed(jm_ctx_strf(ctx, "user %s removed", user),
                                 metrics(ctx, tables, acl, lq));
}

/* "user:<user_id>": what the job acts on is the user, not one table. */
static int uc_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(p, "user_id");
    if (!cJSON_IsString(user) || !user->valuestring)
        return -1;
    char text[sizeof UC_RESOURCE_PREFIX + JM_HOST_NAME_MAX];
    snprintf(text, sizeof text, UC_RESOURCE_PREFIX "%s", user->valuestring);
    return jm__resource_text(text, buf, buflen);
}

static jm_decision uc_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    jm_decision d;
    const jm_host *h = jm__exec_host(ctx, &d);
    if (!h)
        return d;
    const char *user = jm__get_str(ctx, "user_id");
    const char *username = jm__get_str(ctx, "username");
    int cascade = jm__get_bool(ctx, "cascade", 0);
    cJSON *cp = jm__checkpoint_load(ctx);
    cJSON *ids = cp ? cJSON_GetObjectItemCaseSensitive(cp, "jobs") : NULL;

    if (!cp) {
        /* First run (or a rerun before anything was saved). */
        jm_host_user u;
        int rc = h->user_info(h->self, user, &u);
        if (rc == JM_ENOTFOUND) {
            d = jm_decision_completed("user already removed", metrics(ctx, 0, 0, 0));
            goto done;
        }
        if (rc) {
            d = jm__host_failure(ctx, rc, "user_info", -1);
            goto done;
        }
        if (u.deleted_at == 0) {
            d = jm_decision_failed("User must be soft-deleted first", NULL);
            goto done;
        }
        if (strcmp(u.username, username) != 0)
            jm_ctx_log(ctx, JM_LOG_WARN, "user %s is named \"%s\", the job says \"%s\"", user,
                       u.username, username);
        cp = cJSON_CreateObject();
        ids = cJSON_CreateArray();
        /* Adding to an object copies the key, which can fail too; then
         * the array is not cp's and must be freed here. */
        if (!cp || !ids || !cJSON_AddItemToObject(cp, "jobs", ids)) {
            cJSON_Delete(ids);
            d = jm_decision_retry("out of memory", NULL, -1);
            goto done;
        }
        if (cascade) {
            spawn s = {ctx, user, ids, JM_OK, NULL};
            rc = h->user_tables(h->self, user, spawn_one, &s);
            if (s.rc == JM_ETOOBIG) {
                d = jm_decision_failed(s.what, NULL);
                goto done;
            }
            if (s.rc) {
                d = jm__host_failure(ctx, s.rc, s.what, -1);
                goto done;
            }
            if (rc) {
                d = jm__host_failure(ctx, rc, "user_tables", -1);
                goto done;
            }
        }
        cJSON_AddNumberToObject(cp, "tables", cJSON_GetArraySize(ids));
        rc = jm__checkpoint_save(ctx, cp);
        if (rc) {
            d = jm__host_failure(ctx, rc, "saving the checkpoint", -1);
            goto done;
        }
    }

    int active = 0;
    int done_rc = jobs_done(ctx, ids, &active, &d);
    if (done_rc < 0)
        goto done;
    if (done_rc == 0) {
        d = jm_decision_continue(jm_ctx_strf(ctx, "waiting for %d cleanup jobs", active),
                                 UC_POLL_DELAY_MS);
        goto done;
    }
    d = finish(ctx, h, cp, user, cascade);
done:
    cJSON_Delete(cp);
    return d;
}

const jm_executor jm__user_cleanup_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_USER_CLEANUP,
    .name = "user cleanup",
    .cancellable = 0,
    .validate = uc_validate,
    .execute = uc_execute,
    .cancel = NULL,
    .priority_class = JM_CLASS_NORMAL,
    .resource = uc_resource,
};
