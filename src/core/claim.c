/*
 * Claiming: what to ask the store for, and asking. Both run modes claim
 * through jm__claim_req_init; the run loop first plans how many jobs to
 * take (jm__claim_plan), jm_run_once takes one at a time (jm__claim).
 *
 * How far ahead the loop claims adapts to the jobs: it keeps about
 * JM_PREFETCH_AHEAD_US of work per worker claimed (at most
 * JM_PREFETCH_PER_WORKER jobs), so short jobs travel many to a transaction
 * while long ones are claimed only for idle workers, and one process does
 * not hoard work other processes could run.
 */
#include "claim.h"

#include <string.h>

#include "job.h"
#include "journal.h"

void jm__claim_req_init(jm_manager *m, jm__claim_req *req, char *types, size_t max)
{
    jm__registry_types(&m->registry, types);
    int64_t now = jm__now(m);
    jm__claim_req r = {&m->owner, types, now, now + m->cfg.lease_ms, max, NULL, 0};
    *req = r;
}

int jm__claim(jm_manager *m, size_t max, jm_job ***jobs, size_t *n)
{
    char types[JM_TYPE_SLOTS * 3 + 1];
    jm__claim_req req;
    jm__claim_req_init(m, &req, types, max);
    uint64_t cancels = jm__journal_cancels(m->journal);
    jm__db_lock(m);
    int rc = m->ops->claim(m->store, &req, jobs, n);
    jm__db_unlock(m);
    for (size_t i = 0; rc == JM_OK && i < *n; i++)
        (*jobs)[i]->claim_cancels = cancels;
    return rc;
}

/* What the next claim asks for: `now` jobs of any type, one per idle
 * worker, and `ahead` more of the types known to run short (at most half
 * of JM_PREFETCH_AHEAD_US on average), enough to hold about
 * JM_PREFETCH_AHEAD_US of work per worker. A type that has not run here
 * yet counts as long: a burst of long jobs after short ones is claimed
 * only as workers free up. */
void jm__claim_plan(jm_manager *m, jm__claim_plan_t *c)
{
    jm__pool *p = &m->pool;
    size_t have = p->npending + (size_t)p->executing, workers = (size_t)p->nworkers;
    c->now = workers > have ? workers - have : 0;
    c->ahead = 0;
    c->ahead_types[0] = '\0';
    c->now_types[0] = '\0';
    char all[JM_TYPE_SLOTS * 3 + 1];
    jm__registry_types(&m->registry, all);
    if (p->high_workers) {
        /* Normal-class jobs up to the workers they may have; past that,
         * only high-class ones, for the workers kept for them. */
        size_t room = jm__pool_normal_room(p);
        if (c->now > room) {
            if (room == 0) {
                jm__registry_high_types(&m->registry, c->now_types);
                memcpy(all, c->now_types, sizeof all);
                if (!all[0])
                    c->now = 0;
            } else {
                c->now = room;
            }
        }
    }
    int64_t longest = 0;
    size_t len = 0;
    for (const char *t = all; t[0] && t[1]; t += t[2] ? 3 : 2) {
        char type[3] = {t[0], t[1], '\0'};
        int slot = jm__type_slot(type);
        int64_t us = slot >= 0 ? p->type_run_us[slot] : 0;
        if (us <= 0 || us > JM_PREFETCH_AHEAD_US / 2)
            continue;
        memcpy(c->ahead_types + len, t, 2);
        c->ahead_types[len + 2] = ',';
        len += 3;
        if (us > longest)
            longest = us;
    }
    if (!len)
        return;
    c->ahead_types[len - 1] = '\0';
    size_t per = (size_t)(JM_PREFETCH_AHEAD_US / longest);
    if (per > JM_PREFETCH_PER_WORKER)
        per = JM_PREFETCH_PER_WORKER;
    size_t target = per * workers;
    if (target > p->pending_cap)
        target = p->pending_cap;
    size_t total = target > have ? target - have : 0;
    c->ahead = total > c->now ? total - c->now : 0;
}
