/*
 * Table policies: checking a spec, and the public calls that create, read,
 * pause and delete them. Evaluating them is policy_eval.c.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job_id.h"
#include "jobmgr/host.h"
#include "manager.h"
#include "policy_snapshot.h"
#include "random.h"
#include "ref_check.h"
#include "text.h"

/* The shortest period of a retention or eviction policy: a second. */
#define JM_POLICY_EVERY_MIN_MS 1000

static int check_spec(const jm_policy_spec *sp)
{
    if (!sp)
        return jm__seterr(JM_EINVAL, "policy spec is NULL");
    if (sp->version != JM_POLICY_SPEC_VERSION)
        return jm__seterr(JM_EINVAL, "unknown jm_policy_spec version %u", sp->version);
    if (!sp->name)
        return jm__seterr(JM_EINVAL, "policy name is NULL");
    size_t len = strnlen(sp->name, JM_SCHEDULE_NAME_MAX + 1);
    if (len > JM_SCHEDULE_NAME_MAX || !jm__text_valid(sp->name, len))
        return jm__seterr(JM_EINVAL, "policy name must be 1..%d bytes of printable UTF-8",
                          JM_SCHEDULE_NAME_MAX);
    int rc;
    if (sp->ns && (rc = jm_host_name_check("policy namespace", sp->ns)))
        return rc;
    if (sp->table && (rc = jm_host_name_check("policy table", sp->table)))
        return rc;
    if (sp->table && !sp->ns)
        return jm__seterr(JM_EINVAL, "a policy on one table needs its namespace (ns)");
    if (sp->table_type < -1 || sp->table_type > JM_TABLE_STREAM)
        return jm__seterr(JM_EINVAL, "table_type must be a jm_table_type or -1 (got %d)",
                          sp->table_type);
    if (sp->rows < 0 || sp->max_age_ms < 0 || sp->segments < 0 || sp->small_files < 0 ||
        sp->small_bytes < 0 || sp->every_ms < 0 || sp->retention_hours < 0)
        return jm__seterr(JM_EINVAL, "a policy's thresholds must not be negative");
    switch (sp->kind) {
    case JM_POLICY_FLUSH:
        if (!sp->rows && !sp->max_age_ms)
            return jm__seterr(JM_EINVAL, "a flush policy needs rows or max_age_ms");
        break;
    case JM_POLICY_COMPACT:
        if (!sp->segments && !sp->small_files)
            return jm__seterr(JM_EINVAL, "a compact policy needs segments or small_files");
        break;
    case JM_POLICY_RETENTION:
        if (sp->every_ms < JM_POLICY_EVERY_MIN_MS)
            return jm__seterr(JM_EINVAL, "a retention policy needs every_ms of at least %d",
                              JM_POLICY_EVERY_MIN_MS);
        if (sp->retention_hours < 1)
            return jm__seterr(JM_EINVAL, "a retention policy needs retention_hours of at "
                                         "least 1");
        break;
    case JM_POLICY_STREAM_EVICTION:
        if (sp->every_ms < JM_POLICY_EVERY_MIN_MS)
            return jm__seterr(JM_EINVAL, "a stream eviction policy needs every_ms of at "
                                         "least %d",
                              JM_POLICY_EVERY_MIN_MS);
        if (sp->table_type != -1 && sp->table_type != JM_TABLE_STREAM)
            return jm__seterr(JM_EINVAL, "stream eviction applies to stream tables only");
        break;
    default:
        return jm__seterr(JM_EINVAL, "unknown policy kind %d", (int)sp->kind);
    }
    return JM_OK;
}

int jm_policy_create(jm_manager *m, const jm_policy_spec *spec,
                     char id_out[JM_SCHEDULE_ID_SIZE])
{
    if (!m || !id_out)
        return jm__seterr(JM_EINVAL, "jm_policy_create: manager or id_out is NULL");
    int rc = check_spec(spec);
    if (rc)
        return rc;
    jm_policy *p = jm__policy_new();
    if (!p || jm__policy_set_spec(p, spec)) {
        jm_policy_free(p);
        return jm__seterr(JM_ENOMEM, "out of memory creating a policy");
    }
    jm__job_id_new("PO", p->id);
    jm__job_id_set_seq(p->id, (int64_t)(jm__random_unit() * (double)(JM__ID_SEQ_LIMIT - 1)));
    p->created_at = p->updated_at = jm__now(m);
    jm__db_lock(m);
    rc = m->ops->policy_insert(m->store, p);
    jm__db_unlock(m);
    if (rc == JM_OK)
        memcpy(id_out, p->id, JM_SCHEDULE_ID_SIZE);
    jm_policy_free(p);
    return rc;
}

int jm_policy_get(jm_manager *m, const char *id_or_name, jm_policy **out)
{
    if (out)
        *out = NULL;
    int rc = jm__ref_check(m, id_or_name, "policy", "jm_policy_get");
    if (rc)
        return rc;
    if (!out)
        return jm__seterr(JM_EINVAL, "jm_policy_get: out is NULL");
    jm__db_lock(m);
    rc = m->ops->policy_get(m->store, id_or_name, out);
    jm__db_unlock(m);
    return rc;
}

int jm_policy_list(jm_manager *m, jm_policy ***out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!m || !out || !n)
        return jm__seterr(JM_EINVAL, "jm_policy_list: manager, out or n is NULL");
    jm__db_lock(m);
    int rc = m->ops->policy_list(m->store, out, n);
    jm__db_unlock(m);
    return rc;
}

/* Runs `op` on the policy named or identified by `ref`. */
static int on_policy(jm_manager *m, const char *ref, const char *fn, int pause_to)
{
    int rc = jm__ref_check(m, ref, "policy", fn);
    if (rc)
        return rc;
    jm_policy *p = NULL;
    jm__db_lock(m);
    if ((rc = m->ops->policy_get(m->store, ref, &p)) == JM_OK)
        rc = pause_to < 0 ? m->ops->policy_delete(m->store, p->id)
                          : m->ops->policy_pause(m->store, p->id, pause_to, jm__now(m));
    jm__db_unlock(m);
    jm_policy_free(p);
    return rc;
}

int jm_policy_delete(jm_manager *m, const char *id_or_name)
{
    return on_policy(m, id_or_name, "jm_policy_delete", -1);
}

int jm_policy_pause(jm_manager *m, const char *id_or_name)
{
    return on_policy(m, id_or_name, "jm_policy_pause", 1);
}

int jm_policy_resume(jm_manager *m, const char *id_or_name)
{
    return on_policy(m, id_or_name, "jm_policy_resume", 0);
}
