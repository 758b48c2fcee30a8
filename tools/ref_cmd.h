/*
 * ref_cmd.h: the subcommands `schedule` and `policy` share over a row
 * named by id or name: the checks of their arguments, the skeleton of
 * `show`, and `pause`, `resume` and `rm`.
 *
 * Each command describes its kind once (cli_ref_kind: the library calls
 * and the id and name of a snapshot); the flows here are written once for
 * both, so their messages and output cannot drift apart. What a command
 * shows of its row stays in its own file.
 */
#ifndef JOBMGR_CLI_REF_CMD_H
#define JOBMGR_CLI_REF_CMD_H

#include "cli.h"

/* A kind of row named by id or name, as the shared flows see it. The
 * snapshot is the library's (a jm_schedule, a jm_policy), passed as a
 * pointer to void. */
typedef struct cli_ref_kind {
    /* The command ("schedule", "policy"): in usage errors, error labels
     * ("schedule pause nightly") and "needs exactly one schedule id or
     * name". */
    const char *command;
    /* jm_schedule_get() and jm_schedule_free(), or the policy's. */
    int (*get)(jm_manager *m, const char *id_or_name, void **out);
    void (*free)(void *snapshot);
    /* jm_schedule_pause(), _resume() and _delete(), or the policy's; the
     * shared flow passes the id of the snapshot it read. */
    int (*pause)(jm_manager *m, const char *id_or_name);
    int (*resume)(jm_manager *m, const char *id_or_name);
    int (*remove)(jm_manager *m, const char *id_or_name);
    /* The snapshot's id and name. */
    const char *(*id)(const void *snapshot);
    const char *(*name)(const void *snapshot);
    /* `show` of one snapshot, as JSON if g->json, else as text; `label`
     * names it in messages ("schedule show nightly"). Returns an exit
     * code. */
    int (*show)(const cli_global *g, jm_manager *m, const void *snapshot, const char *label);
} cli_ref_kind;

/* What `pause`, `resume` and `rm` do to the row. */
typedef enum { CLI_REF_PAUSE, CLI_REF_RESUME, CLI_REF_DELETE } cli_ref_action;

/* Parses the options of a subcommand that takes only the global ones;
 * `command` names it in usage errors. Returns -1 to go on, or an exit
 * code. */
int cli_ref_global_options(cli_global *g, const char *command, int argc, char **argv);

/* Room for a label: the words and a ref as long as the longest name. A
 * longer ref (not a name, then) is cut. */
#define CLI_REF_LABEL_SIZE (64 + JM_SCHEDULE_NAME_MAX)

/* "schedule add", "policy show nosuch": the label of a library error of
 * subcommand `sub` on `ref` (NULL: none) into buf. Returns buf. */
const char *cli_ref_label(const char *command, const char *sub, const char *ref, char *buf,
                          size_t len);

/* Prints {"id": ID} with --json, else the id alone. Returns an exit code. */
int cli_ref_print_id(const cli_global *g, const char *id);

/* `show ID|NAME`: reads the row and hands it to k->show. Returns an exit
 * code. */
int cli_ref_show(const cli_ref_kind *k, cli_global *g, int argc, char **argv);

/* `pause`, `resume` or `rm ID|NAME`: reads the row, acts on its id and
 * prints "paused NAME (ID)", or {"id", "name", "paused"} with --json
 * ({"id", "name", "deleted"} for rm). Returns an exit code. */
int cli_ref_act(const cli_ref_kind *k, cli_ref_action act, cli_global *g, int argc,
                char **argv);

#endif /* JOBMGR_CLI_REF_CMD_H */
