/*
 * The run journal: a small file beside the jobs database, one per open
 * manager, that says which claimed jobs this manager has started and that
 * it is alive.
 *
 * A claim does not start a job: jobs claimed ahead wait in memory. Before
 * an executor runs, its (seq, attempt) is written into a slot of the
 * journal's shared mapping; the slot is cleared once the run's outcome is
 * committed. A store to a shared mapping survives the death of the process
 * (it lives in the page cache), so recovery of a crashed manager knows
 * exactly which of its running rows started: those are handled by the
 * recovery policy, the rest go back without spending a retry.
 *
 * A cancel accepted for a running row bumps a counter in its owner's
 * journal, after the cancel committed. A worker reads the counter before a
 * claim and again right before a claimed job starts: only if it moved does
 * the job's row need a look, so a cancel accepted while the job waited in
 * memory, in any process of this host, stops it from starting.
 *
 * The owner holds an exclusive flock on the file for as long as it is
 * open. The kernel drops the lock when the process dies, so "the lock can
 * be taken" means "the owner is gone", whatever became of its pid: a
 * reused pid or a stopped process cannot fool it.
 */
#ifndef JM_JOURNAL_H
#define JM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct jm__journal jm__journal;

/* Slots in one journal: more than a manager can have started and not yet
 * recorded (twice the claim-ahead queue plus every worker), with room to
 * spare. 16 bytes each; the file is sparse until used. */
#define JM_JOURNAL_SLOTS 8192

/* The journal's file name for a database file and a manager instance:
 * "<db>-jm-<instance in hex>". Returns 0, or -1 if it does not fit. */
int jm__journal_path(const char *db_file, int64_t instance, char *out, size_t outlen);

/* For a database without a file of its own (PostgreSQL): the base path of
 * its journals on this machine, "<TMPDIR>/jobmgr-<uid>/pg-<hash of what
 * names the database>", the folder made if missing. Managers of this
 * machine that name the database alike find each other's journals; -1
 * when the folder cannot be made (the manager then runs without one). */
int jm__journal_base(const char *name, char *out, size_t outlen);

/* Creates and locks the journal of `instance`. JM_EIO with a message if
 * the file cannot be made. */
int jm__journal_create(const char *db_file, int64_t instance, jm__journal **out);
/* Releases the lock and closes. The file is removed unless a slot is still
 * marked (a started run whose outcome was never recorded): then it stays
 * for recovery to read. NULL does nothing. */
void jm__journal_close(jm__journal *j);

/* Marks a run started; returns its slot, or -1 if every slot is taken (the
 * run then counts as never started should this process die). */
int jm__journal_mark(jm__journal *j, int64_t seq, int64_t attempt);
/* Clears a slot once its run's outcome is recorded; slot < 0 does nothing. */
void jm__journal_clear(jm__journal *j, int slot);

/* The journal's cancel counter (0 for a NULL journal). */
uint64_t jm__journal_cancels(const jm__journal *j);
/* Bumps the cancel counter of `instance`'s journal: `own` if it is that
 * one, else the file beside db_file, if there is one. */
void jm__journal_bump(jm__journal *own, int64_t own_instance, const char *db_file,
                      int64_t instance);

typedef enum {
    JM__JOURNAL_NONE,  /* no journal: the owner had none, or it was recovered */
    JM__JOURNAL_ALIVE, /* the owner holds it */
    JM__JOURNAL_DEAD   /* the owner is gone; its started runs were read */
} jm__journal_state;

/* A dead owner's journal, held locked while its jobs are recovered. */
typedef struct jm__journal_probe {
    jm__journal_state state;
    int fd;
    jm__run_ref *started; /* DEAD: the runs it had started (jm__free) */
    size_t nstarted;
    char path[4096];
} jm__journal_probe;

/* Looks at another manager's journal. On DEAD the caller recovers the
 * owner's jobs, then calls jm__journal_probe_done(p, 1) to remove the file
 * (or 0 to leave it, if recovery failed). A journal that cannot be opened
 * counts as none, one that cannot be locked as alive. JM_ENOMEM on failure. */
int jm__journal_look(const char *db_file, int64_t instance, jm__journal_probe *p);
void jm__journal_probe_done(jm__journal_probe *p, int remove_file);

#endif
