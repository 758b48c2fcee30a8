/* Policy snapshots: allocation, copying a spec in, freeing. */
#include "policy_snapshot.h"

#include "alloc.h"
#include "error.h"
#include "schedule_snapshot.h"

jm_policy *jm__policy_new(void)
{
    return jm__calloc(1, sizeof(jm_policy));
}

int jm__policy_set_spec(jm_policy *p, const jm_policy_spec *spec)
{
    jm_policy_spec *d = &p->spec;
    const char *name = d->name, *ns = d->ns, *table = d->table;
    *d = *spec;
    d->name = name;
    d->ns = ns;
    d->table = table;
    int rc = jm__schedule_set_str(&d->name, spec->name);
    if (!rc)
        rc = jm__schedule_set_str(&d->ns, spec->ns);
    if (!rc)
        rc = jm__schedule_set_str(&d->table, spec->table);
    return rc;
}

void jm_policy_free(jm_policy *p)
{
    if (!p)
        return;
    jm__free((void *)p->spec.name);
    jm__free((void *)p->spec.ns);
    jm__free((void *)p->spec.table);
    jm__free(p);
}

void jm_policy_list_free(jm_policy **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        jm_policy_free(list[i]);
    jm__free(list);
}
