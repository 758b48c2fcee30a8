/*
 * Private to the PostgreSQL store's claim (pg_claim.c) and gate
 * (pg_gate.c, pg_rules.c): the advisory locks that make the rules hold
 * across nodes, and the gate's side of a claim.
 *
 * Two locks, both per schema (the two-key form, keyed by the schema's
 * hash, so applications sharing a database never hold each other up):
 *  - the rules lock: every claim holds it shared from its first statement,
 *    every change of the rules exclusively. A rule change thus waits for
 *    the claims in flight, and the claims after it read the new rules:
 *    no claim judges by rules older than a rule change committed before it
 *    took jobs.
 *  - the gate lock: taken, exclusively, by a claim about to judge a job
 *    that running jobs could hold back (pg_gate.c says when).
 * Advisory locks need no table and vanish with the transaction.
 */
#ifndef JM_PG_GATE_H
#define JM_PG_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "pg_internal.h"

#define JM_PG_LOCK_KEY "hashtext(current_schema()::text)"
#define JM_PG_RULES_LOCK_CLASS "701234101"
#define JM_PG_GATE_LOCK_CLASS "701234102"
/* As SQL expressions. */
#define JM_PG_RULES_LOCK_SHARED \
    "pg_advisory_xact_lock_shared(" JM_PG_RULES_LOCK_CLASS ", " JM_PG_LOCK_KEY ")"
#define JM_PG_RULES_LOCK "pg_advisory_xact_lock(" JM_PG_RULES_LOCK_CLASS ", " JM_PG_LOCK_KEY ")"
#define JM_PG_GATE_LOCK "pg_advisory_xact_lock(" JM_PG_GATE_LOCK_CLASS ", " JM_PG_LOCK_KEY ")"

/* A due job a claim read, to be judged before it is taken. */
typedef struct jm__pg_cand {
    int64_t seq;
    char id[JM_JOB_ID_SIZE];
    char type[3];
    const char *resource; /* NULL: none; borrowed from the claim's result */
} jm__pg_cand;

/* Starts a claim's judging, inside its transaction, with the rules version
 * a statement read after the rules lock was taken: rereads the rules if
 * it moved. *closed is set while a pause of everything stands: the claim
 * takes nothing. */
int jm__pg_gate_open(jm__store *s, int64_t version, int *closed);
/* Returns jobs to the due index whose reason no longer holds them back
 * (up to a bound per reason, best first); *returned is set if any came
 * back. */
int jm__pg_gate_sweep(jm__store *s, size_t want, int *returned);
/* Judges the candidates in order: take[i] is set for each that may start
 * (it then counts as running for those after it), and each held back gets
 * its reason in blocked_by; *blocked is set if any was. */
int jm__pg_gate_judge(jm__store *s, const jm__pg_cand *c, size_t n, unsigned char *take,
                      int *blocked);

#endif
