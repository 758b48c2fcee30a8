/* The claim rules in memory and the judgement made with them
 * (claim_rules.h). */
#include "claim_rules.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "error.h"

static int oom(void)
{
    return jm__seterr(JM_ENOMEM, "out of memory reading the claim rules");
}

static void copy_type(char dst[3], const char *src)
{
    snprintf(dst, 3, "%s", src ? src : "");
}

void jm__rules_clear(jm__rules *r)
{
    for (size_t i = 0; i < r->nlimits; i++)
        jm__free(r->limits[i].resource);
    for (size_t i = 0; i < r->npauses; i++)
        jm__free(r->pauses[i].what);
    r->nconflicts = r->nlimits = r->npauses = 0;
    r->pause_all = 0;
}

void jm__rules_runs_clear(jm__rules *r)
{
    for (size_t i = 0; i < r->nruns; i++)
        jm__free(r->runs[i].resource);
    r->nruns = 0;
    r->runs_read = 0;
}

void jm__rules_free(jm__rules *r)
{
    jm__rules_clear(r);
    jm__rules_runs_clear(r);
    jm__free(r->conflicts);
    jm__free(r->limits);
    jm__free(r->pauses);
    jm__free(r->runs);
    *r = (jm__rules){0};
}

int jm__rules_add_conflict(jm__rules *r, const char *a, const char *b, int exclusive)
{
    jm__rule_conflict *v = jm__array_grow(r->conflicts, r->nconflicts, &r->cap_conflicts,
                                          sizeof *v);
    if (!v)
        return oom();
    r->conflicts = v;
    jm__rule_conflict *c = &v[r->nconflicts++];
    copy_type(c->a, a);
    copy_type(c->b, b);
    c->exclusive = exclusive != 0;
    return JM_OK;
}

int jm__rules_add_limit(jm__rules *r, const char *type, const char *resource, int max)
{
    jm__rule_limit *v = jm__array_grow(r->limits, r->nlimits, &r->cap_limits, sizeof *v);
    if (!v)
        return oom();
    r->limits = v;
    jm__rule_limit *l = &v[r->nlimits];
    copy_type(l->type, type);
    if (!(l->resource = jm__strdup(resource ? resource : "")))
        return oom();
    l->max = max;
    r->nlimits++;
    return JM_OK;
}

int jm__rules_add_pause(jm__rules *r, jm_pause_scope scope, const char *what, int64_t since)
{
    jm__rule_pause *v = jm__array_grow(r->pauses, r->npauses, &r->cap_pauses, sizeof *v);
    if (!v)
        return oom();
    r->pauses = v;
    jm__rule_pause *p = &v[r->npauses];
    p->scope = scope;
    p->since = since;
    if (!(p->what = jm__strdup(what ? what : "")))
        return oom();
    if (scope == JM_PAUSE_ALL)
        r->pause_all = 1;
    r->npauses++;
    return JM_OK;
}

int jm__rules_add_run(jm__rules *r, const char *id, const char *type, const char *resource)
{
    jm__rule_run *v = jm__array_grow(r->runs, r->nruns, &r->cap_runs, sizeof *v);
    if (!v)
        return oom();
    r->runs = v;
    jm__rule_run *run = &v[r->nruns];
    snprintf(run->id, sizeof run->id, "%s", id);
    copy_type(run->type, type);
    run->resource = NULL;
    if (resource && !(run->resource = jm__strdup(resource)))
        return oom();
    r->nruns++;
    return JM_OK;
}

/* Whether a conflict makes types x and y exclusive on one resource. */
static int exclusive(const jm__rules *r, const char *x, const char *y)
{
    const char *lo = strcmp(x, y) <= 0 ? x : y, *hi = lo == x ? y : x;
    for (size_t i = 0; i < r->nconflicts; i++)
        if (strcmp(r->conflicts[i].a, lo) == 0 && strcmp(r->conflicts[i].b, hi) == 0)
            return r->conflicts[i].exclusive;
    for (size_t i = 0; i < r->nconflicts; i++) {
        const jm__rule_conflict *c = &r->conflicts[i];
        if (c->exclusive && strcmp(c->a, "*") == 0 &&
            (strcmp(c->b, "*") == 0 || strcmp(c->b, x) == 0 || strcmp(c->b, y) == 0))
            return 1;
    }
    return 0;
}

static int same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Whether limit `l` counts a job of `type` on `resource`. */
static int counts(const jm__rule_limit *l, const char *type, const char *resource)
{
    if (*l->type && strcmp(l->type, type) != 0)
        return 0;
    if (!*l->resource)
        return 1;
    return strcmp(l->resource, "*") == 0 ? resource != NULL : same(l->resource, resource);
}

int jm__rules_needs_runs(const jm__rules *r, const char *type, const char *resource)
{
    for (size_t i = 0; i < r->nlimits; i++)
        if (counts(&r->limits[i], type, resource))
            return 1;
    if (!resource)
        return 0;
    for (size_t i = 0; i < r->nconflicts; i++) {
        const jm__rule_conflict *c = &r->conflicts[i];
        if (c->exclusive && (strcmp(c->a, "*") == 0 || strcmp(c->a, type) == 0 ||
                             strcmp(c->b, "*") == 0 || strcmp(c->b, type) == 0))
            return 1;
    }
    return 0;
}

int jm__rules_held_by(const jm__rules *r, const char *type, const char *resource, char *key,
                      size_t keylen)
{
    for (size_t i = 0; i < r->npauses; i++) {
        const jm__rule_pause *p = &r->pauses[i];
        if ((p->scope == JM_PAUSE_TYPE && same(p->what, type)) ||
            (p->scope == JM_PAUSE_RESOURCE && same(p->what, resource))) {
            snprintf(key, keylen, "paused:%s:%s", p->scope == JM_PAUSE_TYPE ? "type" : "resource",
                     p->what);
            return 1;
        }
    }
    if (resource)
        for (size_t i = 0; i < r->nruns; i++)
            if (same(r->runs[i].resource, resource) && exclusive(r, type, r->runs[i].type)) {
                snprintf(key, keylen, "%s", r->runs[i].id);
                return 1;
            }
    for (size_t i = 0; i < r->nlimits; i++) {
        const jm__rule_limit *l = &r->limits[i];
        if (!counts(l, type, resource))
            continue;
        const char *on = *l->resource ? resource : NULL; /* counted on this resource */
        int count = 0;
        for (size_t j = 0; j < r->nruns; j++)
            if ((!*l->type || strcmp(r->runs[j].type, l->type) == 0) &&
                (!on || same(r->runs[j].resource, on)))
                count++;
        if (count >= l->max) {
            snprintf(key, keylen, "limit:%s@%s", *l->type ? l->type : "*", on ? on : "*");
            return 1;
        }
    }
    return 0;
}
