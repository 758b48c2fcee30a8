# Which SQLite jobmgr runs on, as one INTERFACE target, jm_sqlite, that the
# library, the tests and the benchmark link: whatever links it opens the
# jobs database through the same copy as the library.
#
# bundled (default): third_party/sqlite, compiled into libjobmgr. Every
#   public SQLite symbol is renamed jm__sqlite3_* (a generated header,
#   forced into every file that links jm_sqlite), and hidden in the shared
#   library, so a host may link its own SQLite, shared or static, beside
#   ours without either replacing the other.
# system: the system's libsqlite3 through pkg-config, for distributions.
#   Versions with the WAL-reset bug are warned about here and at run time.

set(JM_SQLITE "bundled" CACHE STRING "SQLite to build on: bundled (third_party/sqlite) or system")
set_property(CACHE JM_SQLITE PROPERTY STRINGS bundled system)
set(JM_SQLITE_BUNDLED_VERSION 3.53.2)

add_library(jm_sqlite INTERFACE)

if(JM_SQLITE STREQUAL "bundled")
    set(jm_sqlite_dir ${PROJECT_SOURCE_DIR}/third_party/sqlite)
    set(jm_sqlite_gen ${PROJECT_BINARY_DIR}/sqlite)
    set(jm_sqlite_rename ${jm_sqlite_gen}/jm_sqlite_rename.h)

    # The renaming: one #define per SQLITE_API declaration of sqlite3.h.
    file(STRINGS ${jm_sqlite_dir}/sqlite3.h jm_api_lines REGEX "^SQLITE_API ")
    set(jm_names)
    foreach(line IN LISTS jm_api_lines)
        if(line MATCHES "(sqlite3_[A-Za-z0-9_]+)[ \t]*[\\(\\[;]")
            list(APPEND jm_names ${CMAKE_MATCH_1})
        endif()
    endforeach()
    list(REMOVE_DUPLICATES jm_names)
    list(SORT jm_names)
    set(jm_rename "/* Generated from third_party/sqlite/sqlite3.h by cmake/sqlite.cmake:\n * the bundled SQLite's public names, renamed so they never meet another\n * copy of SQLite linked into the same program. */\n#ifndef JM_SQLITE_RENAME_H\n#define JM_SQLITE_RENAME_H\n")
    foreach(name IN LISTS jm_names)
        string(APPEND jm_rename "#define ${name} jm__${name}\n")
    endforeach()
    string(APPEND jm_rename "#endif\n")
    file(CONFIGURE OUTPUT ${jm_sqlite_rename} CONTENT "${jm_rename}")

    # SQLite's recommended options for an embedded library
    # (sqlite.org/compile.html#recommended_compile_time_options), each with
    # why it fits here.
    set(jm_sqlite_options
        SQLITE_THREADSAFE=1          # the pool uses connections from several threads (opened NOMUTEX, serialised by us); hosts may register VFSes from any thread
        SQLITE_DQS=0                 # "x" is an identifier, never a string: a typo cannot turn a column into a literal
        SQLITE_OMIT_DEPRECATED       # nothing here uses the deprecated API
        SQLITE_DEFAULT_MEMSTATUS=0   # no global memory statistics: one mutex less on every allocation
        SQLITE_LIKE_DOESNT_MATCH_BLOBS # LIKE never scans blobs
        SQLITE_MAX_EXPR_DEPTH=0      # no expression-depth bookkeeping (our statements are fixed)
        SQLITE_OMIT_DECLTYPE         # nothing reads declared column types
        SQLITE_OMIT_PROGRESS_CALLBACK # no progress handler is used
        SQLITE_OMIT_SHARED_CACHE     # shared cache is discouraged and unused
        SQLITE_OMIT_LOAD_EXTENSION   # no extensions are loaded: no dlopen, less to attack
        SQLITE_USE_ALLOCA            # small temporary buffers on the stack
        SQLITE_STRICT_SUBTYPE=1      # functions must declare the subtypes they use
        HAVE_USLEEP=1                # sub-second sleeps when SQLite itself waits (else whole seconds)
        HAVE_FDATASYNC=1             # sync data without needless metadata writes
        HAVE_LOCALTIME_R=1           # thread-safe time conversions
        HAVE_GMTIME_R=1)
    # Left out on purpose: SQLITE_OMIT_AUTOINIT (a host may call into the
    # bundled copy through jm_sqlite_vfs_* before any jobs database is
    # opened) and SQLITE_DEFAULT_WAL_SYNCHRONOUS (durability is set per
    # connection by the store).

    add_library(jm_sqlite_objects OBJECT ${jm_sqlite_dir}/sqlite3.c)
    set_target_properties(jm_sqlite_objects PROPERTIES
        POSITION_INDEPENDENT_CODE ON
        C_VISIBILITY_PRESET hidden
        C_EXTENSIONS ON) # SQLite's unix layer needs the POSIX and GNU declarations
    target_compile_definitions(jm_sqlite_objects PRIVATE ${jm_sqlite_options})
    # Upstream's code, unmodified: its warnings are not ours to fix.
    target_compile_options(jm_sqlite_objects PRIVATE -w "SHELL:-include ${jm_sqlite_rename}")

    target_include_directories(jm_sqlite INTERFACE ${jm_sqlite_dir})
    target_compile_options(jm_sqlite INTERFACE "SHELL:-include ${jm_sqlite_rename}")
    target_compile_definitions(jm_sqlite INTERFACE JM_SQLITE_BUNDLED=1)
    target_link_libraries(jm_sqlite INTERFACE Threads::Threads m)
    set(JM_SQLITE_DESCRIPTION "bundled ${JM_SQLITE_BUNDLED_VERSION}")
elseif(JM_SQLITE STREQUAL "system")
    pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3>=3.35)
    # The WAL-reset race: fixed in 3.51.3, backported to 3.44.6 and 3.50.7.
    set(jm_sqlite_fixed FALSE)
    if(SQLITE3_VERSION VERSION_GREATER_EQUAL 3.51.3)
        set(jm_sqlite_fixed TRUE)
    elseif(SQLITE3_VERSION VERSION_GREATER_EQUAL 3.50.7 AND SQLITE3_VERSION VERSION_LESS 3.51)
        set(jm_sqlite_fixed TRUE)
    elseif(SQLITE3_VERSION VERSION_GREATER_EQUAL 3.44.6 AND SQLITE3_VERSION VERSION_LESS 3.45)
        set(jm_sqlite_fixed TRUE)
    endif()
    if(NOT jm_sqlite_fixed)
        message(WARNING "JM_SQLITE=system: SQLite ${SQLITE3_VERSION} has the WAL-reset bug "
                        "(fixed in 3.51.3, 3.50.7, 3.44.6). jobmgr then checkpoints on its "
                        "writer connection only, but other processes on the same file can "
                        "still hit it. JM_SQLITE=bundled avoids it.")
    endif()
    target_link_libraries(jm_sqlite INTERFACE PkgConfig::SQLITE3)
    set(JM_SQLITE_DESCRIPTION "system ${SQLITE3_VERSION}")
else()
    message(FATAL_ERROR "JM_SQLITE must be bundled or system, not '${JM_SQLITE}'")
endif()
message(STATUS "jobmgr: SQLite ${JM_SQLITE_DESCRIPTION}")
