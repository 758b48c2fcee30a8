/**
 * @file jobmgr/pg.h
 * @brief The PostgreSQL store's own call: transactional enqueue.
 *
 * A manager opened with jm_config.db_url keeps its jobs in PostgreSQL.
 * jm_pg_create_in() creates a job through a connection of the host's own,
 * inside the transaction the host has open there, so the job commits or
 * vanishes with the host's own change: a table created and its first flush
 * scheduled, or neither. Managers of every node learn of a job due now
 * when that transaction commits (LISTEN/NOTIFY).
 *
 * `struct pg_conn` is libpq's PGconn; a host that calls this includes its
 * own <libpq-fe.h>.
 */
#ifndef JOBMGR_PG_H
#define JOBMGR_PG_H

#include "jobmgr.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pg_conn;

/**
 * @brief Creates a job as jm_create() does, through @p conn, in the
 * transaction open there (or on its own if none is).
 *
 * The job is checked as jm_create() checks it (type, parameters, the
 * executor's validate() and resource()), then inserted into the schema of
 * @p m's database; @p conn must reach the same database. A key held by an
 * active job is reported without raising an error on @p conn, so the
 * caller's transaction stays usable.
 * @param conn         an open libpq connection of the caller's
 * @param m            a manager opened on PostgreSQL (jm_config.db_url)
 * @param type         a registered job type ("FL")
 * @param params_json  a JSON object, NULL = "{}"
 * @param o            may be NULL for defaults
 * @param id_out       required; the new id, or the key holder's on JM_ECONFLICT
 * @return JM_OK, or errors as jm_create(); JM_EINVAL too when @p m is not
 *         on PostgreSQL, JM_EIO when @p conn is not open. On any error the
 *         caller's transaction may have failed with it: roll it back.
 */
JM_EXTERN int jm_pg_create_in(struct pg_conn *conn, jm_manager *m, const char *type,
                              const char *params_json, const jm_create_opts *o,
                              char id_out[JM_JOB_ID_SIZE]);

#ifdef __cplusplus
}
#endif

#endif
