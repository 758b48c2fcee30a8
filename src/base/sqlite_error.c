/* SQLite result codes as jobmgr error codes. */
#include "sqlite_error.h"

#include <sqlite3.h>

#include "jobmgr.h"

int jm__sqlite_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return JM_EBUSY;
    case SQLITE_NOMEM:
        return JM_ENOMEM;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return JM_EIO;
    case SQLITE_CONSTRAINT:
        return JM_ECONFLICT;
    default:
        return JM_EDB;
    }
}
