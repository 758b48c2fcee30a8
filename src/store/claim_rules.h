/*
 * The claim rules of docs/conflicts.md held in memory, and the judgement
 * every store makes with them: what, if anything, holds a job back. A
 * store reads the rules and the running jobs with its own SQL and adds
 * them here; how it caches and locks them is its own (sqlite_gate.c,
 * pg_gate.c).
 */
#ifndef JM_CLAIM_RULES_H
#define JM_CLAIM_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"

typedef struct jm__rule_conflict {
    char a[3], b[3]; /* a <= b; "*" for every type */
    int exclusive;
} jm__rule_conflict;

typedef struct jm__rule_limit {
    char type[3];   /* "" for any */
    char *resource; /* "" for any, "*" for each */
    int max;
} jm__rule_limit;

typedef struct jm__rule_pause {
    jm_pause_scope scope;
    char *what;    /* "" for JM_PAUSE_ALL */
    int64_t since; /* ms */
} jm__rule_pause;

/* A running job, or one the current claim took. */
typedef struct jm__rule_run {
    char id[JM_JOB_ID_SIZE];
    char type[3];
    char *resource;
} jm__rule_run;

typedef struct jm__rules {
    jm__rule_conflict *conflicts;
    size_t nconflicts, cap_conflicts;
    jm__rule_limit *limits;
    size_t nlimits, cap_limits;
    jm__rule_pause *pauses;
    size_t npauses, cap_pauses;
    int pause_all;
    /* Per claim. */
    jm__rule_run *runs;
    size_t nruns, cap_runs;
    int runs_read; /* runs holds every running job */
} jm__rules;

/* Forgets the conflicts, limits and pauses (their arrays are kept). */
void jm__rules_clear(jm__rules *r);
/* Forgets the running jobs. */
void jm__rules_runs_clear(jm__rules *r);
/* Frees everything r holds; r itself is the caller's. */
void jm__rules_free(jm__rules *r);

/* Each adds one rule or running job read by the store: JM_ENOMEM or
 * JM_OK. A NULL text counts as "". */
int jm__rules_add_conflict(jm__rules *r, const char *a, const char *b, int exclusive);
int jm__rules_add_limit(jm__rules *r, const char *type, const char *resource, int max);
int jm__rules_add_pause(jm__rules *r, jm_pause_scope scope, const char *what, int64_t since);
int jm__rules_add_run(jm__rules *r, const char *id, const char *type, const char *resource);

/* Whether the running jobs could hold a job of `type` on `resource` back
 * (or it could hold one of theirs: a take counts for later judgements).
 * Errs on the side of yes: a type named by any exclusive conflict. */
int jm__rules_needs_runs(const jm__rules *r, const char *type, const char *resource);
/* Writes into key what holds a job of `type` on `resource` back, or
 * returns 0 if nothing does: a pause, an exclusive running job on its
 * resource, a full limit, in that order. */
int jm__rules_held_by(const jm__rules *r, const char *type, const char *resource, char *key,
                      size_t keylen);

#endif
