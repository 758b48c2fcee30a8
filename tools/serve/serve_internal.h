/*
 * serve_internal.h: what the files of the dashboard server share: the
 * server, one request, one response, and the route handlers.
 */
#ifndef JOBMGR_SERVE_INTERNAL_H
#define JOBMGR_SERVE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <jobmgr.h>

#include "dashboard.h"

/* Request bounds: bodies, paths and queries beyond them are refused. */
#define DASH_BODY_MAX (64 * 1024)
#define DASH_PATH_MAX 512
/* Snapshots older than this (or ten times what the last one took) are
 * replaced in the background; a request finding none, or one older than
 * DASH_SNAPSHOT_STALE_MS (nobody looked for a minute), waits for a fresh
 * one. */
#define DASH_SNAPSHOT_MAX_AGE_MS 2000
#define DASH_SNAPSHOT_STALE_MS 60000

struct MHD_Daemon;
struct MHD_Connection;

/* The overview and /metrics, computed by a background thread while
 * someone looks. */
typedef struct dash_overview {
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* the refresher waits here */
    pthread_cond_t fresh;   /* a request with no snapshot waits here */
    pthread_t thread;
    int started, stopping, wanted;
    uint64_t generation;    /* refreshes finished, successful or not */
    char *json;             /* the last snapshot's overview, or NULL */
    char *metrics;          /* its Prometheus text */
    int64_t taken_ms;       /* when it was taken (wall clock) */
    int64_t max_age_ms;     /* when to replace it */
    int last_rc;            /* the last refresh's error, JM_OK if none */
    char last_err[256];
} dash_overview;

struct dash_server {
    jm_manager *m;
    jm_manager *reader;     /* the snapshots' manager */
    struct MHD_Daemon *daemon;
    unsigned port;
    int loopback;
    int read_only;
    char token[DASH_TOKEN_MAX + 1];
    char csrf[65];
    char cookie_name[32];   /* "jm_token_<port>" */
    char *index_html;       /* the page with its CSRF token filled in */
    size_t index_len;
    dash_overview ov;
};

/* What the handler knows of a request. */
typedef struct dash_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *body;       /* NUL-terminated; "" when none */
    size_t body_len;
} dash_req;

/* What a handler answers. body is malloc'd and freed after sending. */
typedef struct dash_resp {
    unsigned status;
    char *body;
    size_t len;
    const char *type;       /* Content-Type */
    const char *cookie;     /* a Set-Cookie value (static or thread-local), or NULL */
    int is_static;          /* body points at static memory: don't free */
} dash_resp;

/* ---- Responses (respond.c) ------------------------------------------------ */

/* Answers `text` (taken; allocated with cJSON_malloc) as `type`. */
void dash_text(dash_resp *r, unsigned status, char *text, const char *type);
/* Answers `json` (taken, even on failure) with `status`. */
void dash_json(dash_resp *r, unsigned status, cJSON *json);
/* Answers {"error":{"code":code,"message":...}}. */
void dash_error(dash_resp *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers a library error with its name and jm_last_error(). */
void dash_lib_error(dash_resp *r, int rc);
/* Out of memory while building an answer. */
void dash_nomem(dash_resp *r);

/* ---- Requests (request.c) ------------------------------------------------- */

/* A query argument, or NULL. */
const char *dash_arg(const dash_req *rq, const char *name);
/* Parses the body as a JSON object; answers 400 and returns NULL if not. */
cJSON *dash_body_object(const dash_req *rq, dash_resp *r);
/* A string member of `o`: *out is NULL when absent or null; -1 (after a
 * 400 answer) when present but not a string. */
int dash_member_text(const cJSON *o, const char *name, const char **out, dash_resp *r);
/* An integer member in [min, max]: *out untouched when absent or null. */
int dash_member_int(const cJSON *o, const char *name, int64_t min, int64_t max, int64_t *out,
                    dash_resp *r);
/* Parses a whole decimal integer in [min, max]: 0, or -1. */
int dash_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Whether `s` may name a job or schedule in a path: 1..128 bytes, no
 * control character, no slash. Everything else is refused before the
 * library sees it. */
int dash_valid_name(const char *s);

/* ---- Job JSON (job_json.c) -------------------------------------------------- */

/* Every field of a job, for the job page. */
cJSON *dash_job_full(const jm_job *j);
/* The fields a list row shows. */
cJSON *dash_job_summary(const jm_job *j);
/* The wall clock, ms since the epoch. */
int64_t dash_now_ms(void);

/* ---- Routes --------------------------------------------------------------- */

void dash_route_jobs(dash_server *s, const dash_req *rq, const char *rest, dash_resp *r);
void dash_route_schedules(dash_server *s, const dash_req *rq, const char *rest, dash_resp *r);
void dash_route_policies(dash_server *s, const dash_req *rq, dash_resp *r);
void dash_route_pauses(dash_server *s, const dash_req *rq, const char *rest, dash_resp *r);
void dash_route_metrics(dash_server *s, const dash_req *rq, dash_resp *r);
void dash_route_overview(dash_server *s, const dash_req *rq, dash_resp *r);

/* The standing pauses as a JSON array; NULL with *rc set on failure. */
cJSON *dash_pauses_json(jm_manager *m, int *rc);

/* ---- The overview's refresher (overview.c) ---------------------------------- */

int dash_overview_start(dash_server *s);
void dash_overview_stop(dash_server *s);

/* ---- Embedded assets (generated: assets.c) --------------------------------- */

typedef struct dash_asset {
    const char *path;       /* "/app.js" */
    const char *type;       /* Content-Type */
    const unsigned char *data;
    size_t len;
} dash_asset;

extern const dash_asset dash_assets[];
extern const size_t dash_nassets;

#endif
