/*
 * json_out.c: JSON for scripts (--json) and pretty-printed JSON values in
 * human output, built with cJSON.
 *
 * Jobs, schedules and policies are written with every field. Times appear twice: as
 * ms since the epoch ("created_at_ms", for arithmetic) and as local ISO
 * 8601 text ("created_at", for people); both are null when unset. The
 * pretty printer indents by two spaces; cJSON_Print's tabs would not line
 * up with the surrounding text.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <jobmgr/host.h>

#include "cli.h"

/* Embeds `text` as a JSON value, or as a string if it does not parse, or
 * null if unset. */
static cJSON *embedded(const char *text)
{
    if (!text)
        return cJSON_CreateNull();
    cJSON *v = cJSON_Parse(text);
    return v ? v : cJSON_CreateString(text);
}

static cJSON *text_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static int add_time(cJSON *o, const char *name, int64_t ms)
{
    char key[64], buf[CLI_TIME_BUF];
    snprintf(key, sizeof key, "%s_ms", name);
    cJSON *num = ms > 0 ? cJSON_CreateNumber((double)ms) : cJSON_CreateNull();
    cJSON *iso = ms > 0 ? cJSON_CreateString(cli_format_time(ms, buf, sizeof buf))
                        : cJSON_CreateNull();
    int ok = num && iso && cJSON_AddItemToObject(o, name, iso) &&
             cJSON_AddItemToObject(o, key, num);
    if (!ok) {
        /* cJSON_AddItemToObject does not take the item on failure. */
        if (!cJSON_GetObjectItemCaseSensitive(o, name))
            cJSON_Delete(iso);
        cJSON_Delete(num);
    }
    return ok ? 0 : -1;
}

static int add_item(cJSON *o, const char *name, cJSON *v)
{
    if (!v)
        return -1;
    if (!cJSON_AddItemToObject(o, name, v)) {
        cJSON_Delete(v);
        return -1;
    }
    return 0;
}

cJSON *cli_job_json(const jm_job *j)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= add_item(o, "id", text_or_null(jm_job_id(j)));
    bad |= add_item(o, "type", text_or_null(jm_job_type(j)));
    bad |= add_item(o, "status", cJSON_CreateString(jm_status_name(jm_job_status(j))));
    bad |= add_item(o, "namespace", text_or_null(jm_job_namespace(j)));
    bad |= add_item(o, "idempotency_key", text_or_null(jm_job_idempotency_key(j)));
    bad |= add_item(o, "priority", cJSON_CreateNumber(jm_job_priority(j)));
    bad |= add_item(o, "params", embedded(jm_job_params(j)));
    bad |= add_item(o, "message", text_or_null(jm_job_message(j)));
    bad |= add_item(o, "exception_trace", text_or_null(jm_job_exception_trace(j)));
    bad |= add_item(o, "result", embedded(jm_job_result(j)));
    bad |= add_item(o, "checkpoint", embedded(jm_job_checkpoint(j)));
    bad |= add_item(o, "progress", cJSON_CreateNumber(jm_job_progress(j)));
    bad |= add_item(o, "retry_count", cJSON_CreateNumber(jm_job_retry_count(j)));
    bad |= add_item(o, "max_retries", cJSON_CreateNumber(jm_job_max_retries(j)));
    bad |= add_item(o, "attempts", cJSON_CreateNumber(jm_job_attempts(j)));
    bad |= add_item(o, "cancel_requested", cJSON_CreateBool(jm_job_cancel_requested(j)));
    bad |= add_item(o, "pause_requested", cJSON_CreateBool(jm_job_pause_requested(j)));
    bad |= add_item(o, "resource", text_or_null(jm_job_resource(j)));
    bad |= add_item(o, "blocked_by", text_or_null(jm_job_blocked_by(j)));
    bad |= add_item(o, "node_id", text_or_null(jm_job_node_id(j)));
    bad |= add_item(o, "schedule_id", text_or_null(jm_job_schedule_id(j)));
    bad |= add_time(o, "fire_time", jm_job_fire_time(j));
    bad |= add_time(o, "created_at", jm_job_created_at(j));
    bad |= add_time(o, "updated_at", jm_job_updated_at(j));
    bad |= add_time(o, "run_at", jm_job_run_at(j));
    bad |= add_time(o, "started_at", jm_job_started_at(j));
    bad |= add_time(o, "finished_at", jm_job_finished_at(j));
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *cli_schedule_json(const jm_schedule *sc)
{
    const jm_schedule_spec *sp = &sc->spec;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char every[32];
    int bad = 0;
    bad |= add_item(o, "id", cJSON_CreateString(sc->id));
    bad |= add_item(o, "name", text_or_null(sp->name));
    bad |= add_item(o, "type", text_or_null(sp->type));
    bad |= add_item(o, "params", sp->params_json ? embedded(sp->params_json)
                                                 : cJSON_CreateObject());
    bad |= add_item(o, "namespace", text_or_null(sp->opts.namespace_id));
    bad |= add_item(o, "priority", cJSON_CreateNumber(sp->opts.priority));
    bad |= add_item(o, "max_retries", cJSON_CreateNumber(sp->opts.max_retries));
    bad |= add_item(o, "cron", text_or_null(sp->cron));
    bad |= add_item(o, "tz", text_or_null(sp->tz));
    bad |= add_item(o, "interval_ms", sp->interval_ms > 0
                                          ? cJSON_CreateNumber((double)sp->interval_ms)
                                          : cJSON_CreateNull());
    bad |= add_item(o, "interval",
                    text_or_null(sp->interval_ms > 0
                                     ? cli_format_every(sp->interval_ms, every, sizeof every)
                                     : NULL));
    bad |= add_time(o, "anchor", sp->anchor_ms);
    bad |= add_item(o, "jitter_ms", cJSON_CreateNumber((double)sp->jitter_ms));
    bad |= add_item(o, "overlap", cJSON_CreateString(cli_overlap_name(sp->overlap)));
    bad |= add_item(o, "misfire", cJSON_CreateString(cli_misfire_name(sp->misfire)));
    bad |= add_item(o, "catch_up_max", cJSON_CreateNumber(sp->catch_up_max));
    bad |= add_item(o, "pause_after_failures", cJSON_CreateNumber(sp->pause_after_failures));
    bad |= add_item(o, "paused", cJSON_CreateBool(sp->paused));
    bad |= add_item(o, "consecutive_failures", cJSON_CreateNumber(sc->consecutive_failures));
    bad |= add_time(o, "next_fire", sc->next_fire_ms);
    bad |= add_time(o, "last_fire", sc->last_fire_ms);
    bad |= add_item(o, "last_job_id", text_or_null(sc->last_job_id[0] ? sc->last_job_id : NULL));
    bad |= add_time(o, "created_at", sc->created_at);
    bad |= add_time(o, "updated_at", sc->updated_at);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A span as a number of ms and as text ("1m"), both null when 0 (unset). */
static int add_span(cJSON *o, const char *name, int64_t ms)
{
    char key[64], buf[32];
    snprintf(key, sizeof key, "%s_ms", name);
    int bad = add_item(o, key, ms > 0 ? cJSON_CreateNumber((double)ms) : cJSON_CreateNull());
    bad |= add_item(o, name, text_or_null(ms > 0 ? cli_format_every(ms, buf, sizeof buf) : NULL));
    return bad;
}

cJSON *cli_policy_json(const jm_policy *p)
{
    const jm_policy_spec *sp = &p->spec;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= add_item(o, "id", cJSON_CreateString(p->id));
    bad |= add_item(o, "name", text_or_null(sp->name));
    bad |= add_item(o, "kind", cJSON_CreateString(cli_policy_kind_name(sp->kind)));
    bad |= add_item(o, "job_type", cJSON_CreateString(cli_policy_job_type(sp->kind)));
    bad |= add_item(o, "namespace", text_or_null(sp->ns));
    bad |= add_item(o, "table", text_or_null(sp->table));
    bad |= add_item(o, "table_type",
                    text_or_null(sp->table_type >= 0
                                     ? jm_table_type_name((jm_table_type)sp->table_type)
                                     : NULL));
    bad |= add_item(o, "rows", cJSON_CreateNumber((double)sp->rows));
    bad |= add_span(o, "max_age", sp->max_age_ms);
    bad |= add_item(o, "segments", cJSON_CreateNumber((double)sp->segments));
    bad |= add_item(o, "small_files", cJSON_CreateNumber((double)sp->small_files));
    /* A compact policy's 0 stands for the default size: show the size used. */
    int64_t small = sp->kind == JM_POLICY_COMPACT && sp->small_bytes == 0
                        ? JM_POLICY_SMALL_BYTES_DEFAULT
                        : sp->small_bytes;
    bad |= add_item(o, "small_bytes", cJSON_CreateNumber((double)small));
    bad |= add_span(o, "every", sp->every_ms);
    bad |= add_item(o, "retention_hours", cJSON_CreateNumber(sp->retention_hours));
    bad |= add_item(o, "priority", cJSON_CreateNumber(sp->priority));
    bad |= add_item(o, "paused", cJSON_CreateBool(sp->paused));
    bad |= add_time(o, "created_at", p->created_at);
    bad |= add_time(o, "updated_at", p->updated_at);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void put_indent(FILE *out, int level)
{
    fprintf(out, "%*s", level * 2, "");
}

/* Prints `v` without a trailing newline; the first line is not indented
 * (the caller is mid-line), the following ones are indented from `level`. */
static void print_value(FILE *out, const cJSON *v, int level)
{
    int is_obj = cJSON_IsObject(v);
    if ((is_obj || cJSON_IsArray(v)) && v->child) {
        fputc(is_obj ? '{' : '[', out);
        for (const cJSON *c = v->child; c; c = c->next) {
            fputc('\n', out);
            put_indent(out, level + 1);
            if (is_obj) {
                cJSON *key = cJSON_CreateString(c->string ? c->string : "");
                char *k = key ? cJSON_PrintUnformatted(key) : NULL;
                fprintf(out, "%s: ", k ? k : "\"\"");
                cJSON_free(k);
                cJSON_Delete(key);
            }
            print_value(out, c, level + 1);
            if (c->next)
                fputc(',', out);
        }
        fputc('\n', out);
        put_indent(out, level);
        fputc(is_obj ? '}' : ']', out);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    fputs(s ? s : "null", out);
    cJSON_free(s);
}

void cli_json_print(FILE *out, const cJSON *v, int indent)
{
    print_value(out, v, indent);
    fputc('\n', out);
}

void cli_json_print_text(FILE *out, const char *text, int indent)
{
    cJSON *v = cJSON_Parse(text);
    if (!v) {
        fprintf(out, "%s\n", text);
        return;
    }
    cli_json_print(out, v, indent);
    cJSON_Delete(v);
}

int cli_json_emit(cJSON *v)
{
    if (!v) {
        fprintf(stderr, "jobmgr: out of memory building JSON output\n");
        return CLI_EXIT_FAILURE;
    }
    cli_json_print(stdout, v, 0);
    cJSON_Delete(v);
    return CLI_EXIT_OK;
}

cJSON *cli_status_counts_json(const int64_t *by_status)
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; o && s < JM_STATUS_COUNT; s++) {
        if (!cJSON_AddNumberToObject(o, jm_status_name((jm_status)s), (double)by_status[s])) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}
