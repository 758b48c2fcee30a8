#!/usr/bin/env bash
# Runs a test program against a private PostgreSQL server whose data
# directory has a small filesystem to itself (scripts/pg_server.sh
# start-small), for the tests of a full disk:
#   scripts/pg_disk_full.sh PROGRAM [ARGS...]
# PROGRAM gets JM_TEST_PG_DISKFULL_URL, the server's URL, and
# JM_TEST_PG_DISKFULL_FILLER, a path on that filesystem for the file that
# fills it. Whatever PROGRAM does, the server is stopped and the
# filesystem unmounted and removed. Exits with PROGRAM's status, or 77
# (one line on stderr) where such a server cannot be had: not root, no
# permission to mount, no PostgreSQL installed.
set -euo pipefail

# Room for the server's databases (about 25 MB) and the jobs before the
# test fills the rest.
size_mb=48

[ $# -ge 1 ] || { echo "usage: pg_disk_full.sh PROGRAM [ARGS...]" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/jm-pg-full-XXXXXX")
trap 'bash "$here/pg_server.sh" stop "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Its 77, where it cannot mount or has no server, is this script's too.
rc=0
url=$(bash "$here/pg_server.sh" start-small "$dir" "$size_mb") || rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
JM_TEST_PG_DISKFULL_URL=$url JM_TEST_PG_DISKFULL_FILLER=$dir/data-fs/filler "$@" || rc=$?
exit "$rc"
