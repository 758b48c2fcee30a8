/*
 * Evaluating table policies: every table the host lists, against every
 * unpaused policy that applies to it, by the figures the host reports.
 * A job a policy calls for is created with the key
 * "policy:<kind>:<namespace>.<table>": while one such job is waiting or
 * running, another is refused by the key's unique index (JM_ECONFLICT),
 * so a busy table never has two queued, whichever managers evaluate.
 * Periodic kinds (retention, stream eviction) also skip a table whose last
 * job under the key was created less than every_ms ago.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "jobmgr/host.h"
#include "log.h"
#include "policy.h"

static const char *const kind_names[] = {"flush", "compact", "retention", "stream_eviction"};
static const char *const kind_types[] = {"FL", "CO", "RT", "SE"};

typedef struct table_ref {
    char *ns, *name;
    jm_table_type type;
} table_ref;

typedef struct table_walk {
    table_ref *t;
    size_t n, cap;
    int oom;
} table_walk;

static int each_table(void *arg, const char *ns, const char *table, jm_table_type type)
{
    table_walk *w = arg;
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 32;
        table_ref *grown = jm__realloc(w->t, w->cap * sizeof *w->t, ncap * sizeof *w->t);
        if (!grown) {
            w->oom = 1;
            return 1;
        }
        w->t = grown;
        w->cap = ncap;
    }
    table_ref *r = &w->t[w->n];
    r->ns = jm__strdup(ns);
    r->name = jm__strdup(table);
    r->type = type;
    if (!r->ns || !r->name) {
        jm__free(r->ns);
        jm__free(r->name);
        w->oom = 1;
        return 1;
    }
    w->n++;
    return 0;
}

static void walk_free(table_walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        jm__free(w->t[i].ns);
        jm__free(w->t[i].name);
    }
    jm__free(w->t);
}

static int applies(const jm_policy_spec *p, const table_ref *t)
{
    if (p->ns && strcmp(p->ns, t->ns) != 0)
        return 0;
    if (p->table)
        return strcmp(p->table, t->name) == 0;
    if (p->kind == JM_POLICY_STREAM_EVICTION && t->type != JM_TABLE_STREAM)
        return 0;
    return p->table_type < 0 || p->table_type == (int)t->type;
}

/* Whether the figures call for the policy's job. */
static int called_for(const jm_policy_spec *p, const jm_host_figures *f, int64_t now)
{
    switch (p->kind) {
    case JM_POLICY_FLUSH:
        return f->buffered_rows > 0 &&
               ((p->rows && f->buffered_rows >= p->rows) ||
                (p->max_age_ms && f->oldest_buffered_at &&
                 now - f->oldest_buffered_at >= p->max_age_ms));
    case JM_POLICY_COMPACT:
        return (p->segments && f->segments >= p->segments) ||
               (p->small_files && f->small_segments > p->small_files);
    case JM_POLICY_RETENTION:
        return f->deleted_rows > 0;
    case JM_POLICY_STREAM_EVICTION:
        return f->ttl_seconds > 0 && f->expired_rows > 0;
    }
    return 0;
}

static int params_of(const jm_policy_spec *p, const table_ref *t, const jm_host_figures *f,
                     char *buf, size_t len)
{
    int n;
    const char *type = jm_table_type_name(t->type);
    switch (p->kind) {
    case JM_POLICY_FLUSH:
        n = snprintf(buf, len,
                     "{\"namespace_id\":\"%s\",\"table_name\":\"%s\",\"table_type\":\"%s\","
                     "\"flush_threshold\":1}",
                     t->ns, t->name, type);
        break;
    case JM_POLICY_COMPACT: {
        int64_t small = p->small_bytes ? p->small_bytes : JM_POLICY_SMALL_BYTES_DEFAULT;
        int64_t mb = (small + (1 << 20) - 1) >> 20;
        n = snprintf(buf, len,
                     "{\"namespace_id\":\"%s\",\"table_name\":\"%s\",\"table_type\":\"%s\","
                     "\"target_file_size_mb\":%lld}",
                     t->ns, t->name, type, (long long)(mb < 1 ? 1 : mb));
        break;
    }
    case JM_POLICY_RETENTION:
        n = snprintf(buf, len,
                     "{\"namespace_id\":\"%s\",\"table_name\":\"%s\",\"table_type\":\"%s\","
                     "\"retention_hours\":%d}",
                     t->ns, t->name, type, p->retention_hours);
        break;
    default:
        n = snprintf(buf, len,
                     "{\"namespace_id\":\"%s\",\"table_name\":\"%s\",\"table_type\":\"%s\","
                     "\"ttl_seconds\":%lld}",
                     t->ns, t->name, type, (long long)f->ttl_seconds);
        break;
    }
    return n > 0 && (size_t)n < len ? JM_OK : jm__seterr(JM_ETOOBIG, "policy parameters");
}

/* Evaluates one policy on one table; *created is bumped by a job made. */
static int evaluate_one(jm_manager *m, const jm_host *h, const jm_policy *pol, const table_ref *t,
                        int64_t now, int *created)
{
    const jm_policy_spec *p = &pol->spec;
    jm_host_figures f;
    memset(&f, 0, sizeof f);
    int64_t small = p->small_bytes ? p->small_bytes : JM_POLICY_SMALL_BYTES_DEFAULT;
    /* Retention asks only for rows deleted before its cut-off. */
    int64_t deleted_before = 0;
    if (p->kind == JM_POLICY_RETENTION)
        deleted_before = now - (int64_t)p->retention_hours * 3600000;
    if (deleted_before < 0)
        deleted_before = 0;
    int rc = h->table_figures(h->self, t->ns, t->name, now, small, deleted_before, &f);
    if (rc == JM_ENOTFOUND)
        return JM_OK; /* dropped since it was listed */
    if (rc)
        return rc;
    if (!called_for(p, &f, now))
        return JM_OK;
    char key[JM_MAX_KEY_BYTES + 1];
    int n = snprintf(key, sizeof key, "policy:%s:%s.%s", kind_names[p->kind], t->ns, t->name);
    if (n < 0 || (size_t)n >= sizeof key)
        return jm__seterr(JM_ETOOBIG, "policy key for %s.%s is too long", t->ns, t->name);
    if (p->kind == JM_POLICY_RETENTION || p->kind == JM_POLICY_STREAM_EVICTION) {
        int64_t last = 0;
        jm__db_lock(m);
        rc = m->ops->keyed_job_created(m->store, key, &last);
        jm__db_unlock(m);
        if (rc)
            return rc;
        if (last && now - last < p->every_ms)
            return JM_OK;
    }
    char params[3 * JM_HOST_NAME_MAX + 200];
    if ((rc = params_of(p, t, &f, params, sizeof params)))
        return rc;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = key;
    o.namespace_id = t->ns;
    o.priority = p->priority;
    char id[JM_JOB_ID_SIZE];
    rc = jm_create(m, kind_types[p->kind], params, &o, id);
    if (rc == JM_ECONFLICT)
        return JM_OK; /* one is waiting or running already */
    if (rc == JM_OK) {
        (*created)++;
        jm__log(m, JM_LOG_INFO, id, "policy %s created it for %s.%s", p->name, t->ns, t->name);
    }
    return rc;
}

int jm_policy_evaluate(jm_manager *m, int *created)
{
    int made = 0;
    if (created)
        *created = 0;
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_policy_evaluate: manager is NULL");
    const jm_host *h = m->cfg.host;
    if (!h || h->version < 2 || !h->list_tables || !h->table_figures)
        return jm__seterr(JM_EINVAL, "policies need a host (cfg.host) of version 2 or later "
                                     "that lists tables and reports their figures");
    jm_policy **pols = NULL;
    size_t npol = 0;
    jm__db_lock(m);
    int rc = m->ops->policy_list(m->store, &pols, &npol);
    jm__db_unlock(m);
    if (rc)
        return rc;
    size_t live = 0;
    for (size_t i = 0; i < npol; i++)
        live += !pols[i]->spec.paused;
    if (live == 0) {
        jm_policy_list_free(pols, npol);
        return JM_OK;
    }
    table_walk w = {NULL, 0, 0, 0};
    rc = h->list_tables(h->self, each_table, &w);
    if (w.oom)
        rc = jm__seterr(JM_ENOMEM, "out of memory listing tables for policies");
    int64_t now = jm__now(m);
    int first_err = JM_OK;
    char first_msg[JM_ERRMSG_SIZE] = "";
    for (size_t i = 0; rc == JM_OK && i < w.n; i++) {
        for (size_t k = 0; k < npol; k++) {
            if (pols[k]->spec.paused || !applies(&pols[k]->spec, &w.t[i]))
                continue;
            int erc = evaluate_one(m, h, pols[k], &w.t[i], now, &made);
            if (erc && !first_err) {
                /* One table's trouble does not stop the others. */
                first_err = erc;
                snprintf(first_msg, sizeof first_msg, "policy %s on %s.%s: %s",
                         pols[k]->spec.name, w.t[i].ns, w.t[i].name, jm_last_error());
                jm__log(m, JM_LOG_WARN, NULL, "%s", first_msg);
            }
        }
    }
    walk_free(&w);
    jm_policy_list_free(pols, npol);
    if (created)
        *created = made;
    if (rc)
        return rc;
    return first_err ? jm__seterr(first_err, "%s", first_msg) : JM_OK;
}

int jm__policies_supported(const jm_manager *m)
{
    const jm_host *h = m->cfg.host;
    return h && h->version >= 2 && h->list_tables && h->table_figures;
}
