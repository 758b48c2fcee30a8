/* Schedule snapshots: allocation, copying a spec in, freeing. */
#include "schedule_snapshot.h"

#include "alloc.h"
#include "error.h"

jm_schedule *jm__schedule_new(void)
{
    return jm__calloc(1, sizeof(jm_schedule));
}

int jm__schedule_set_str(const char **slot, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = jm__strdup(s)))
        return jm__seterr(JM_ENOMEM, "out of memory copying a schedule");
    jm__free((void *)*slot);
    *slot = copy;
    return JM_OK;
}

int jm__schedule_set_spec(jm_schedule *sc, const jm_schedule_spec *spec)
{
    jm_schedule_spec *d = &sc->spec;
    const char *name = d->name, *type = d->type, *params = d->params_json, *cron = d->cron,
               *tz = d->tz, *ns = d->opts.namespace_id;
    *d = *spec;
    /* The old strings, back in place to be replaced (and freed). */
    d->name = name;
    d->type = type;
    d->params_json = params;
    d->cron = cron;
    d->tz = tz;
    d->opts.namespace_id = ns;
    d->opts.idempotency_key = NULL;
    int rc = jm__schedule_set_str(&d->name, spec->name);
    if (!rc)
        rc = jm__schedule_set_str(&d->type, spec->type);
    if (!rc)
        rc = jm__schedule_set_str(&d->params_json, spec->params_json ? spec->params_json : "{}");
    if (!rc)
        rc = jm__schedule_set_str(&d->cron, spec->cron);
    if (!rc)
        rc = jm__schedule_set_str(&d->tz, spec->tz);
    if (!rc)
        rc = jm__schedule_set_str(&d->opts.namespace_id, spec->opts.namespace_id);
    return rc;
}

void jm_schedule_free(jm_schedule *sc)
{
    if (!sc)
        return;
    jm_schedule_spec *d = &sc->spec;
    const char *strs[] = {d->name, d->type, d->params_json, d->cron, d->tz, d->opts.namespace_id};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        jm__free((void *)strs[i]);
    jm__free(sc);
}

void jm_schedule_list_free(jm_schedule **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        jm_schedule_free(list[i]);
    jm__free(list);
}
