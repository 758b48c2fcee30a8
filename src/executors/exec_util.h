/*
 * Shared by the built-in executors: reading and checking parameters,
 * reading and writing checkpoints, and turning host errors into decisions.
 * Executors see the public API (jobmgr.h, jobmgr/host.h) and the base
 * layer, nothing of the core, the store or the engine.
 */
#ifndef JM_EXEC_UTIL_H
#define JM_EXEC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"
#include "jobmgr/host.h"

/* Non-zero if s passes jm_host_name_check(). */
int jm__name_valid(const char *s);

/* Parameter readers for validate(): each returns 0 when the value is fine
 * (or absent and optional, leaving *out untouched) and otherwise writes a
 * message naming the field to err and returns -1. */
int jm__param_name(const cJSON *p, const char *field, const char **out, char *err,
                   size_t errlen);
int jm__param_string(const cJSON *p, const char *field, int required, size_t max_len,
                     const char **out, char *err, size_t errlen);
int jm__param_int(const cJSON *p, const char *field, int required, int64_t min, int64_t max,
                  int64_t *out, char *err, size_t errlen);
int jm__param_bool(const cJSON *p, const char *field, int required, int *out, char *err,
                   size_t errlen);
int jm__param_table_type(const cJSON *p, const char *field, jm_table_type *out, char *err,
                         size_t errlen);

/* The longest local directory path a parameter may name. */
#define JM_PARAM_PATH_MAX 4096

/* A local directory path for validate(): required, an absolute path of at
 * most JM_PARAM_PATH_MAX bytes with no ".." component. A URL ("s3://…",
 * anything with "://") is refused with "only local directories are
 * supported: <scheme> is not". */
int jm__param_local_dir(const cJSON *p, const char *field, const char **out, char *err,
                        size_t errlen);

/* In execute(): the parameters were validated at create time, so these
 * read them without checks (absent optional fields give `def`). */
const char *jm__get_str(jm_ctx *ctx, const char *field);
int64_t jm__get_int(jm_ctx *ctx, const char *field, int64_t def);
int jm__get_bool(jm_ctx *ctx, const char *field, int def);

/* The job's checkpoint as parsed JSON (NULL if none or unreadable); the
 * caller frees it with cJSON_Delete. */
cJSON *jm__checkpoint_load(jm_ctx *ctx);
/* An integer field of a parsed checkpoint, or def. */
int64_t jm__checkpoint_int(const cJSON *cp, const char *field, int64_t def);
/* Saves `cp` as the checkpoint. */
int jm__checkpoint_save(jm_ctx *ctx, const cJSON *cp);

/* cfg.host, or NULL after filling *fail with a failed decision explaining
 * that the manager has no (or too old a) host. */
const jm_host *jm__exec_host(jm_ctx *ctx, jm_decision *fail);

/* The decision for a host operation that returned rc (≠ JM_OK): a retry
 * after `busy_backoff_ms` (< 0: the manager's policy) for JM_EBUSY, a
 * failure naming `what` and jm_last_error() otherwise. */
jm_decision jm__host_failure(jm_ctx *ctx, int rc, const char *what, int64_t busy_backoff_ms);

/* ---- Added for the data executors (flush, retention, eviction, compact);
 * usable by any executor. ---- */

/* The largest integer a JSON number (a double) holds exactly: the bound for
 * integer parameters that have no natural maximum, so jm__param_int never
 * converts a double outside int64_t's range. */
#define JM__JSON_INT_MAX (INT64_C(1) << 53)

/* The backoff for jm_decision_retry() meaning "the manager's exponential
 * policy". */
#define JM__BACKOFF_POLICY (-1)

/* An integer field of a JSON object: 0 and *out set when present and an
 * exact integer within ±JM__JSON_INT_MAX, else -1 (*out untouched). Safe on
 * untrusted JSON (a checkpoint read back from the database). */
int jm__json_int(const cJSON *obj, const char *field, int64_t *out);

/* Metrics JSON {"names[0]": values[0], ...} as a string that lives until the
 * job's run ends (jm_ctx_strf), ready for a decision. NULL if out of memory:
 * a decision without metrics is still a decision. */
const char *jm__metrics_json(jm_ctx *ctx, const char *const names[], const int64_t values[],
                             size_t n);

/* Describes table ns.table through h->table_info into *info and checks that
 * it is of type `expected`. Returns 0, or -1 after filling *fail: failed
 * "table ns.table not found" (JM_ENOTFOUND), failed naming both types (a
 * mismatch), a retry by the manager's policy (JM_EBUSY), failed otherwise. */
int jm__exec_table(jm_ctx *ctx, const jm_host *h, const char *ns, const char *table,
                   jm_table_type expected, jm_host_table *info, jm_decision *fail);

/* ---- Added for conflicts, limits, pauses and I/O budgets. ---- */

/* Writes `text` to buf as a job's resource (the executors' resource()
 * hooks): the text itself, or "sha256:<its 64 hex digits>" when it is
 * longer than JM_MAX_RESOURCE_BYTES (two names near JM_HOST_NAME_MAX), so
 * that different tables never share a resource. 0, or -1 if buf is too
 * small. */
int jm__resource_text(const char *text, char *buf, size_t buflen);

/* The resource of a job on one table: "<ns>.<table>" from the string
 * parameters `ns_field` and `table_field` (through jm__resource_text).
 * 0, or -1 if either is missing. */
int jm__table_resource(const cJSON *p, const char *ns_field, const char *table_field, char *buf,
                       size_t buflen);

/* Whether the job should stop at this batch boundary for a pause (and not
 * for a cancel or a stop, which each executor handles as it did): then it
 * saves its checkpoint and returns jm_decision_continue(). */
int jm__exec_should_pause(jm_ctx *ctx);

#endif
