/* Reading jobs: get, list (keyset pages) and count, with filter checks so
 * nothing malformed reaches the store. */
#include <string.h>

#include "error.h"
#include "job_id.h"
#include "manager.h"
#include "text.h"

static int check_opt_text(const char *v, const char *what)
{
    if (!v)
        return JM_OK;
    size_t len = strnlen(v, JM_MAX_KEY_BYTES + 1);
    if (len > JM_MAX_KEY_BYTES)
        return jm__seterr(JM_ETOOBIG, "filter %s longer than %d bytes", what, JM_MAX_KEY_BYTES);
    if (!jm__utf8_valid(v, len))
        return jm__seterr(JM_EINVAL, "filter %s is not valid UTF-8", what);
    return JM_OK;
}

static int check_filter(const jm_filter *f, int listing)
{
    if (f->version != JM_FILTER_VERSION)
        return jm__seterr(JM_EINVAL, "unknown jm_filter version %u", f->version);
    if (f->statuses >> JM_STATUS_COUNT)
        return jm__seterr(JM_EINVAL, "filter statuses has bits for unknown statuses");
    if (f->type && !jm__type_valid(f->type))
        return jm__seterr(JM_EINVAL, "filter type must be two uppercase letters");
    int rc;
    if ((rc = check_opt_text(f->namespace_id, "namespace_id")) ||
        (rc = check_opt_text(f->idempotency_key, "idempotency_key")))
        return rc;
    if (f->created_after_ms < 0 || f->created_before_ms < 0)
        return jm__seterr(JM_EINVAL, "filter times must not be negative");
    if (listing) {
        if (f->limit < 0 || f->limit > JM_LIST_MAX_LIMIT)
            return jm__seterr(JM_EINVAL, "filter limit must be 0..%d", JM_LIST_MAX_LIMIT);
        if (f->after_id && jm_job_id_parse(f->after_id, NULL) != JM_OK)
            return jm__seterr(JM_EINVAL, "filter after_id is not a job id");
    }
    return JM_OK;
}

int jm_get(jm_manager *m, const char *id, jm_job **out)
{
    if (!m || !out)
        return jm__seterr(JM_EINVAL, "jm_get: NULL argument");
    *out = NULL;
    int rc = jm_job_id_parse(id, NULL);
    if (rc)
        return rc;
    jm__db_lock(m);
    rc = m->ops->get(m->store, id, out);
    jm__db_unlock(m);
    return rc;
}

int jm_list(jm_manager *m, const jm_filter *f, jm_job_list **out)
{
    if (!m || !out)
        return jm__seterr(JM_EINVAL, "jm_list: NULL argument");
    *out = NULL;
    jm_filter all = JM_FILTER_INIT;
    if (!f)
        f = &all;
    int rc = check_filter(f, 1);
    if (rc)
        return rc;
    jm__db_lock(m);
    rc = m->ops->list(m->store, f, out);
    jm__db_unlock(m);
    return rc;
}

int jm_count(jm_manager *m, const jm_filter *f, int64_t *out)
{
    if (!m || !out)
        return jm__seterr(JM_EINVAL, "jm_count: NULL argument");
    jm_filter all = JM_FILTER_INIT;
    if (!f)
        f = &all;
    int rc = check_filter(f, 0);
    if (rc)
        return rc;
    jm__db_lock(m);
    rc = m->ops->count(m->store, f, out);
    jm__db_unlock(m);
    return rc;
}
