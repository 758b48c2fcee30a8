/*
 * Schedules (list, run now, pause, resume), policies and standing pauses.
 */
#include <stdlib.h>
#include <string.h>

#include "../cli.h"
#include "serve_internal.h"

static void list_schedules(dash_server *s, dash_resp *r)
{
    jm_schedule **list = NULL;
    size_t n = 0;
    int rc = jm_schedule_list(s->m, &list, &n);
    if (rc) {
        dash_lib_error(r, rc);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "schedules") : NULL;
    int bad = !arr;
    for (size_t i = 0; i < n && !bad; i++) {
        cJSON *row = cli_schedule_json(list[i]);
        bad = !row || !cJSON_AddItemToArray(arr, row);
    }
    jm_schedule_list_free(list, n);
    if (bad) {
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, 200, o);
}

/* A job now with the schedule's type, params and options; it is not one of
 * the schedule's fires, so overlap and misfire rules do not apply. */
static void run_schedule(dash_server *s, const jm_schedule *sc, dash_resp *r)
{
    char id[JM_JOB_ID_SIZE] = "";
    int rc = jm_create(s->m, sc->spec.type, sc->spec.params_json, &sc->spec.opts, id);
    if (rc && rc != JM_ECONFLICT) {
        dash_lib_error(r, rc);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "id", id) ||
        !cJSON_AddBoolToObject(o, "created", rc == JM_OK)) {
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, rc == JM_OK ? 201 : 200, o);
}

void dash_route_schedules(dash_server *s, const dash_req *rq, const char *rest, dash_resp *r)
{
    int post = strcmp(rq->method, "POST") == 0;
    if (*rest == '\0') {
        if (post)
            dash_error(r, 405, "method_not_allowed", "schedules are made with `jobmgr schedule add`");
        else
            list_schedules(s, r);
        return;
    }
    /* "/ID-OR-NAME/ACTION" */
    const char *slash = rest[0] == '/' ? strchr(rest + 1, '/') : NULL;
    char name[129];
    size_t n = slash ? (size_t)(slash - rest - 1) : 0;
    if (!slash || n == 0 || n >= sizeof name) {
        dash_error(r, 404, "not_found", "no such schedule action");
        return;
    }
    memcpy(name, rest + 1, n);
    name[n] = '\0';
    const char *action = slash + 1;
    if (!dash_valid_name(name) ||
        (strcmp(action, "run") && strcmp(action, "pause") && strcmp(action, "resume"))) {
        dash_error(r, 404, "not_found", "no such schedule action");
        return;
    }
    if (!post) {
        dash_error(r, 405, "method_not_allowed", "%s takes POST", action);
        return;
    }
    jm_schedule *sc = NULL;
    int rc = jm_schedule_get(s->m, name, &sc);
    if (rc == JM_OK && strcmp(action, "run") == 0) {
        run_schedule(s, sc, r);
        jm_schedule_free(sc);
        return;
    }
    if (rc == JM_OK) {
        rc = action[0] == 'p' ? jm_schedule_pause(s->m, sc->id) : jm_schedule_resume(s->m, sc->id);
        char id[sizeof sc->id];
        memcpy(id, sc->id, sizeof id);
        jm_schedule_free(sc);
        sc = NULL;
        if (rc == JM_OK)
            rc = jm_schedule_get(s->m, id, &sc);
    }
    if (rc) {
        dash_lib_error(r, rc);
        return;
    }
    cJSON *o = cli_schedule_json(sc);
    jm_schedule_free(sc);
    if (!o)
        dash_nomem(r);
    else
        dash_json(r, 200, o);
}

void dash_route_policies(dash_server *s, const dash_req *rq, dash_resp *r)
{
    if (strcmp(rq->method, "POST") == 0) {
        dash_error(r, 405, "method_not_allowed", "policies are made with `jobmgr policy add`");
        return;
    }
    jm_policy **list = NULL;
    size_t n = 0;
    int rc = jm_policy_list(s->m, &list, &n);
    if (rc) {
        dash_lib_error(r, rc);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "policies") : NULL;
    int bad = !arr;
    for (size_t i = 0; i < n && !bad; i++) {
        cJSON *row = cli_policy_json(list[i]);
        bad = !row || !cJSON_AddItemToArray(arr, row);
    }
    jm_policy_list_free(list, n);
    if (bad) {
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, 200, o);
}

static const char *const scope_names[] = {"all", "type", "resource"};

/* The standing pauses as a JSON array (shared with the overview). */
cJSON *dash_pauses_json(jm_manager *m, int *rc)
{
    jm_pause_entry *list = NULL;
    size_t n = 0;
    if ((*rc = jm_paused_list(m, &list, &n)))
        return NULL;
    cJSON *arr = cJSON_CreateArray();
    int bad = !arr;
    char when[CLI_TIME_BUF];
    for (size_t i = 0; i < n && !bad; i++) {
        cJSON *e = cJSON_CreateObject();
        unsigned sc = (unsigned)list[i].scope;
        bad = !e || !cJSON_AddItemToArray(arr, e) ||
              !cJSON_AddStringToObject(e, "scope", sc < 3 ? scope_names[sc] : "?") ||
              !(list[i].what ? cJSON_AddStringToObject(e, "what", list[i].what)
                             : cJSON_AddNullToObject(e, "what")) ||
              !cJSON_AddNumberToObject(e, "since_ms", (double)list[i].since_ms) ||
              !cJSON_AddStringToObject(e, "since", cli_format_time(list[i].since_ms, when,
                                                                    sizeof when));
    }
    jm_paused_list_free(list, n);
    if (bad) {
        cJSON_Delete(arr);
        *rc = JM_ENOMEM;
        return NULL;
    }
    return arr;
}

static void answer_pauses(dash_server *s, dash_resp *r)
{
    int rc;
    cJSON *arr = dash_pauses_json(s->m, &rc);
    if (!arr) {
        if (rc == JM_ENOMEM)
            dash_nomem(r);
        else
            dash_lib_error(r, rc);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToObject(o, "pauses", arr)) {
        cJSON_Delete(arr);
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, 200, o);
}

/* POST /api/pauses and /api/pauses/resume: {"scope": ..., "what": ...}. */
static void change_pause(dash_server *s, const dash_req *rq, int resume, dash_resp *r)
{
    cJSON *body = dash_body_object(rq, r);
    if (!body)
        return;
    const char *scope = NULL, *what = NULL;
    if (dash_member_text(body, "scope", &scope, r) || dash_member_text(body, "what", &what, r))
        goto done;
    int sc = -1;
    for (int i = 0; i < 3 && scope; i++)
        if (strcmp(scope, scope_names[i]) == 0)
            sc = i;
    if (sc < 0) {
        dash_error(r, 400, "JM_EINVAL", "\"scope\" must be all, type or resource");
        goto done;
    }
    if ((sc == JM_PAUSE_ALL) != (what == NULL)) {
        dash_error(r, 400, "JM_EINVAL", "\"what\" names the type or resource, and only then");
        goto done;
    }
    int rc = resume ? jm_resume(s->m, (jm_pause_scope)sc, what)
                    : jm_pause(s->m, (jm_pause_scope)sc, what);
    if (rc)
        dash_lib_error(r, rc);
    else
        answer_pauses(s, r);
done:
    cJSON_Delete(body);
}

void dash_route_pauses(dash_server *s, const dash_req *rq, const char *rest, dash_resp *r)
{
    int post = strcmp(rq->method, "POST") == 0;
    if (strcmp(rest, "") == 0 && !post)
        answer_pauses(s, r);
    else if (strcmp(rest, "") == 0)
        change_pause(s, rq, 0, r);
    else if (strcmp(rest, "/resume") == 0 && post)
        change_pause(s, rq, 1, r);
    else
        dash_error(r, 404, "not_found", "no such path");
}
