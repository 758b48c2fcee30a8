/*
 * make_engine: a helper of the CLI test (test_cli.sh). It creates a
 * reference engine in DIR with a namespace "app", a user table "orders" and
 * ROWS buffered rows, so `jobmgr run --engine DIR` has a table to flush.
 * The tool itself cannot create tables: that is the host's business.
 *
 *   cli_make_engine DIR [ROWS]        (default 50 rows)
 */
#include <stdio.h>
#include <stdlib.h>

#include <jobmgr.h>
#include <jobmgr/engine.h>

#define DEFAULT_ROWS 50

static int check(int rc, const char *what)
{
    if (rc != JM_OK)
        fprintf(stderr, "make_engine: %s: %s\n", what, jm_last_error());
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: cli_make_engine DIR [ROWS]\n");
        return 2;
    }
    long rows = argc == 3 ? strtol(argv[2], NULL, 10) : DEFAULT_ROWS;
    jm_engine *e = NULL;
    int rc = check(jm_engine_open(argv[1], &e), "open");
    if (!rc)
        rc = check(jm_engine_create_namespace(e, "app"), "create namespace");
    if (!rc)
        rc = check(jm_engine_create_table(e, "app", "orders", JM_TABLE_USER, NULL),
                   "create table");
    for (long i = 0; !rc && i < rows; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"order\": %ld}", i);
        rc = check(jm_engine_insert(e, "app", "orders", doc, 0, NULL), "insert");
    }
    jm_engine_close(e);
    return rc ? 1 : 0;
}
