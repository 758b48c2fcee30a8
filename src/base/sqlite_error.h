/* How a SQLite result code reads as a jobmgr error code: one table for the
 * jobs store and the reference engine. */
#ifndef JM_SQLITE_ERROR_H
#define JM_SQLITE_ERROR_H

/* JM_EBUSY (busy, locked), JM_ENOMEM, JM_EIO (I/O, full, cannot open,
 * read-only, permission), JM_ECONFLICT (a constraint), else JM_EDB. Takes
 * primary or extended codes. */
int jm__sqlite_code(int rc);

#endif
