/* jm_pg_create_in: a job created through the host's own connection. */
#include <string.h>

#include "alloc.h"
#include "create.h"
#include "error.h"
#include "job_id.h"
#include "jobmgr/pg.h"
#include "manager.h"
#include "store.h"

int jm_pg_create_in(struct pg_conn *conn, jm_manager *m, const char *type,
                    const char *params_json, const jm_create_opts *o,
                    char id_out[JM_JOB_ID_SIZE])
{
    if (!conn || !m || !id_out)
        return jm__seterr(JM_EINVAL, "jm_pg_create_in: conn, manager or id_out is NULL");
    if (!m->ops->insert_in)
        return jm__seterr(JM_EINVAL, "jm_pg_create_in: the manager is not on PostgreSQL "
                                     "(jm_config.db_url)");
    jm_new_job j = {type, params_json, JM_CREATE_OPTS_INIT};
    if (o)
        j.opts = *o;
    jm__new_row row;
    memset(&row, 0, sizeof row);
    int64_t now = jm__now(m);
    int rc = jm__create_prepare(m, &j, now, &row);
    char id[JM_JOB_ID_SIZE];
    if (rc == JM_OK) {
        jm__job_id_new(row.type, id);
        row.id = id;
        row.created_at = now;
        char holder[JM_JOB_ID_SIZE] = "";
        /* The caller's connection is the caller's: the store's lock is not
         * needed to use it. */
        rc = m->ops->insert_in(m->store, conn, &row, holder);
        if (rc == JM_OK)
            memcpy(id_out, id, JM_JOB_ID_SIZE);
        else if (rc == JM_ECONFLICT)
            memcpy(id_out, holder, JM_JOB_ID_SIZE);
    }
    jm__free(row.resource_owned);
    return rc;
}
