/*
 * Opening and closing a manager: validating and copying the configuration,
 * opening the store and the run journal, registering executors, and the
 * first recovery. Running jobs is in pool.c and run_once.c; job operations
 * in create.c, query.c and control.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "alloc.h"
#include "cron.h"
#include "error.h"
#include "log.h"
#include "manager.h"
#include "runner.h"
#include "text.h"
#include "wake.h"

static int check_config(const jm_config *c)
{
    if (!c)
        return jm__seterr(JM_EINVAL, "jm_open: config is NULL");
    if (c->version < 1 || c->version > JM_CONFIG_VERSION)
        return jm__seterr(JM_EINVAL, "jm_open: unknown config version %u (expected 1..%u)",
                          c->version, JM_CONFIG_VERSION);
    const char *url = c->version >= 3 ? c->db_url : NULL;
    if (!!c->db_path == !!url)
        return jm__seterr(JM_EINVAL, "jm_open: set exactly one of db_path (SQLite) and db_url "
                                     "(PostgreSQL)");
    if ((c->db_path && !*c->db_path) || (url && !*url))
        return jm__seterr(JM_EINVAL, "jm_open: %s is empty", url ? "db_url" : "db_path");
#ifndef JM_WITH_PG
    if (url)
        return jm__seterr(JM_EINVAL, "jm_open: this jobmgr was built without PostgreSQL "
                                      "(JM_WITH_PG=OFF)");
#endif
    if (c->node_id && (strlen(c->node_id) > JM_MAX_KEY_BYTES ||
                       !jm__text_valid(c->node_id, strlen(c->node_id))))
        return jm__seterr(JM_EINVAL, "jm_open: node_id must be 1..%d bytes of printable UTF-8",
                          JM_MAX_KEY_BYTES);
    if (c->max_retries < 0 || c->max_retries > JM_MAX_RETRIES_LIMIT)
        return jm__seterr(JM_EINVAL, "jm_open: max_retries must be 0..%d", JM_MAX_RETRIES_LIMIT);
    if (c->backoff_base_ms < 0 || c->backoff_max_ms < c->backoff_base_ms)
        return jm__seterr(JM_EINVAL,
                          "jm_open: need 0 <= backoff_base_ms <= backoff_max_ms");
    if (!(c->backoff_jitter >= 0 && c->backoff_jitter <= 1))
        return jm__seterr(JM_EINVAL, "jm_open: backoff_jitter must be within 0..1");
    if (c->lease_ms < 30 || c->lease_ms > 86400000)
        return jm__seterr(JM_EINVAL, "jm_open: lease_ms must be 30..86400000");
    if (c->poll_interval_ms < 1 || c->poll_interval_ms > 86400000)
        return jm__seterr(JM_EINVAL, "jm_open: poll_interval_ms must be 1..86400000");
    if (c->recovery != JM_RECOVER_RETRY && c->recovery != JM_RECOVER_FAIL)
        return jm__seterr(JM_EINVAL, "jm_open: unknown recovery policy %d", (int)c->recovery);
    if ((int)c->log_level < JM_LOG_DEBUG || c->log_level > JM_LOG_OFF)
        return jm__seterr(JM_EINVAL, "jm_open: unknown log level %d", (int)c->log_level);
    if (c->busy_timeout_ms < 0)
        return jm__seterr(JM_EINVAL, "jm_open: busy_timeout_ms must not be negative");
    if (c->durability != JM_DURABLE_SYNC && c->durability != JM_DURABLE_PROCESS)
        return jm__seterr(JM_EINVAL, "jm_open: unknown durability %d", (int)c->durability);
    if (c->policy_interval_ms < 1 || c->policy_interval_ms > 86400000)
        return jm__seterr(JM_EINVAL, "jm_open: policy_interval_ms must be 1..86400000");
    return JM_OK;
}

/* The fields version 2 added, once the config is whole. */
static int check_config_v2(const jm_config *c)
{
    if (c->high_workers < 0 || c->high_workers >= JM_MAX_WORKERS)
        return jm__seterr(JM_EINVAL, "jm_open: high_workers must be 0..%d", JM_MAX_WORKERS - 1);
    return JM_OK;
}

static int64_t new_instance(void)
{
    uuid_t u;
    uuid_generate_random(u);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | u[i];
    v &= 0x7fffffffffffffffull; /* positive: SQLite integers are signed */
    return v ? (int64_t)v : 1;
}

static void free_manager(jm_manager *m)
{
    jm__wake_close(m);
    jm__journal_close(m->journal);
    if (m->reader)
        m->ops->close(m->reader);
    if (m->store)
        m->ops->close(m->store);
    jm__pool_destroy(m);
    jm__registry_destroy(&m->registry);
    pthread_mutex_destroy(&m->db_lock);
    pthread_cond_destroy(&m->db_turn);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->reader_lock);
    pthread_mutex_destroy(&m->clock_lock);
    for (int i = 0; i < m->ntz; i++)
        jm__tz_free(m->tz_cache[i]);
    pthread_mutex_destroy(&m->tz_lock);
    jm__write_queue_destroy(&m->writes);
    jm__stats_destroy(&m->stats);
    jm__throttle_destroy(&m->throttle);
    jm__free(m->db_file);
    jm__free(m->db_path);
    jm__free(m->node_id);
    jm__free(m->vfs);
    jm__free(m->pg_schema);
    jm__free(m);
}

int jm_open(const jm_config *cfg, jm_manager **out)
{
    if (!out)
        return jm__seterr(JM_EINVAL, "jm_open: out is NULL");
    *out = NULL;
    int rc = check_config(cfg);
    if (rc)
        return rc;
    /* A version 1 config ends before high_workers: read no further, and
     * give what it lacks its default. */
    jm_config full = JM_CONFIG_INIT;
    memcpy(&full, cfg,
           cfg->version == 1   ? offsetof(jm_config, high_workers)
           : cfg->version == 2 ? offsetof(jm_config, db_url)
                               : sizeof full);
    full.version = JM_CONFIG_VERSION;
    cfg = &full;
    if ((rc = check_config_v2(cfg)))
        return rc;
    jm_manager *m = jm__calloc(1, sizeof *m);
    if (!m)
        return jm__seterr(JM_ENOMEM, "out of memory opening the manager");
    char host[256] = "localhost";
    if (!cfg->node_id && gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    m->cfg = *cfg;
#ifdef JM_WITH_PG
    m->ops = cfg->db_url ? &jm__pg_store : &jm__sqlite_store;
#else
    m->ops = &jm__sqlite_store;
#endif
    m->db_path = jm__strdup(cfg->db_url ? cfg->db_url : cfg->db_path);
    m->pg_schema = cfg->pg_schema ? jm__strdup(cfg->pg_schema) : NULL;
    m->node_id = jm__strdup(cfg->node_id ? cfg->node_id : host);
    m->vfs = cfg->sqlite_vfs ? jm__strdup(cfg->sqlite_vfs) : NULL;
    int locks = pthread_mutex_init(&m->db_lock, NULL) == 0;
    locks &= pthread_cond_init(&m->db_turn, NULL) == 0;
    locks &= pthread_mutex_init(&m->lock, NULL) == 0;
    locks &= pthread_mutex_init(&m->reader_lock, NULL) == 0;
    locks &= pthread_mutex_init(&m->clock_lock, NULL) == 0;
    locks &= pthread_mutex_init(&m->tz_lock, NULL) == 0;
    locks &= jm__stats_init(&m->stats) == 0;
    locks &= jm__throttle_init(&m->throttle) == JM_OK;
    locks &= jm__write_queue_init(&m->writes) == JM_OK;
    if (!m->db_path || !m->node_id || (cfg->sqlite_vfs && !m->vfs) ||
        (cfg->pg_schema && !m->pg_schema) || !locks) {
        free_manager(m);
        return jm__seterr(JM_ENOMEM, "out of memory opening the manager");
    }
    if (cfg->db_url)
        m->cfg.db_url = m->db_path;
    else
        m->cfg.db_path = m->db_path;
    m->cfg.pg_schema = m->pg_schema;
    m->cfg.node_id = m->node_id;
    m->cfg.sqlite_vfs = m->vfs;
    if ((rc = jm__registry_init(&m->registry)) || (rc = jm__pool_init(m))) {
        free_manager(m);
        return rc;
    }
    m->owner.node_id = m->node_id;
    m->owner.pid = (int64_t)getpid();
    m->owner.instance = new_instance();
    jm__store_config sc = {m->db_path, m->vfs, cfg->busy_timeout_ms, 0,
                           cfg->durability == JM_DURABLE_SYNC, m->cfg.db_url, m->pg_schema};
    if ((rc = m->ops->open(&sc, &m->store))) {
        m->store = NULL;
        free_manager(m);
        return rc;
    }
    static atomic_flag caveat_told = ATOMIC_FLAG_INIT;
    const char *caveat = m->ops->caveat();
    if (caveat && !atomic_flag_test_and_set(&caveat_told))
        jm__log(m, JM_LOG_WARN, NULL, "%s", caveat);
    const char *file = m->ops->file_path(m->store);
    char base[4096];
    if (!file && m->cfg.db_url) {
        /* The journals of a database without a file live in a folder of
         * this machine's, under a name the URL and schema make. */
        char name[8192];
        snprintf(name, sizeof name, "%s\n%s", m->cfg.db_url,
                 m->pg_schema ? m->pg_schema : "");
        if (jm__journal_base(name, base, sizeof base) == 0)
            file = base;
    }
    if (file && !(m->db_file = jm__strdup(file))) {
        free_manager(m);
        return jm__seterr(JM_ENOMEM, "out of memory opening the manager");
    }
    m->clock_wall = jm__now(m);
    m->clock_mono = jm__mono_ms();
    /* Without a journal this manager still works; a crash then counts all
     * its claimed jobs as started. */
    if (m->db_file && jm__journal_create(m->db_file, m->owner.instance, &m->journal) != JM_OK)
        jm__log(m, JM_LOG_WARN, NULL, "running without a run journal: %s", jm_last_error());
    jm__wake_open(m);
    jm__instance_add(m->owner.instance);
    int recovered = 0;
    if ((rc = jm__recover_all(m, &recovered))) {
        jm__instance_remove(m->owner.instance);
        free_manager(m);
        return rc;
    }
    if (recovered) {
        jm__log(m, JM_LOG_WARN, NULL, "recovered %d job(s) left running by lost workers",
                recovered);
        jm__wake_post(m);
    }
    *out = m;
    return JM_OK;
}

void jm_close(jm_manager *m)
{
    if (!m)
        return;
    jm_stop(m, 0);
    if (jm__flush_unrecorded(m) != JM_OK) {
        /* Their jobs stay running under an instance that is gone: the next
         * recovery on this node requeues them at once. */
        jm__log(m, JM_LOG_ERROR, NULL, "closing with unrecorded outcomes: %s", jm_last_error());
        jm__outcome_free_list(m->unrecorded);
        m->unrecorded = NULL;
    }
    jm__instance_remove(m->owner.instance);
    free_manager(m);
}

int jm_register(jm_manager *m, const jm_executor *ex, void *self)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_register: manager is NULL");
    return jm__registry_add(&m->registry, ex, self);
}

int jm_is_registered(jm_manager *m, const char *type)
{
    jm__executor_entry e;
    return m && jm__registry_find(&m->registry, type, &e);
}
