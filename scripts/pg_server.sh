#!/usr/bin/env bash
# A private PostgreSQL server for the tests, from Debian's packages:
#   scripts/pg_server.sh start DIR   initdb into DIR/data, listen on a Unix
#                                    socket in DIR only, print the URL
#   scripts/pg_server.sh start-small DIR MB
#                                    as start, with the data directory on a
#                                    tmpfs of MB megabytes of its own
#                                    (DIR/data-fs, root only) and the WAL
#                                    outside it (DIR/wal): filling that
#                                    filesystem fails the writes of tables
#                                    and indexes, never the WAL's, so the
#                                    server answers with errors instead of
#                                    stopping
#   scripts/pg_server.sh restart DIR restart it (fast shutdown: connections end)
#   scripts/pg_server.sh stop DIR    stop it, unmount DIR/data-fs if mounted,
#                                    and remove DIR
# The server runs as an unprivileged user: the invoking one, or `postgres`
# when invoked as root (PostgreSQL refuses to run as root).
# Exits 77, with one line on stderr, where the server cannot be had here:
# no server installed, or for start-small not root or mounting refused.
set -euo pipefail

usage="usage: pg_server.sh start|start-small|restart|stop DIR [MB]"
cmd=${1:?$usage}
dir=${2:?$usage}

unavailable() {
    echo "pg_server.sh: $*" >&2
    exit 77
}

# Without a server, stop still unmounts and removes what a start left.
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ "$cmd" != stop ] && { [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; }; then
    unavailable "no PostgreSQL server found (apt-get install postgresql)"
fi

if [ "$(id -u)" -eq 0 ]; then
    user=postgres
    as_user() { runuser -u "$user" -- "$@"; }
else
    user=$(id -un)
    as_user() { "$@"; }
fi

# The data directory: inside the small filesystem once start-small made it.
data=$dir/data
if [ -d "$dir/data-fs/data" ]; then
    data=$dir/data-fs/data
fi
server_opts="-k $dir -c listen_addresses= -c max_connections=300 -c shared_buffers=128MB"

# start_server [INITDB OPTIONS...]: initdb into $data, start, create the
# tests' database and print its URL.
start_server() {
    as_user "$bin/initdb" -D "$data" -U jobmgr -A trust -E UTF8 --no-sync "$@" >"$dir/initdb.log"
    # fsync stays on: the tests measure and rely on real commits.
    as_user "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 -o "$server_opts" \
        start >/dev/null
    as_user "$bin/createdb" -h "$dir" -U jobmgr jobmgr_test
    echo "postgresql:///jobmgr_test?host=$dir&user=jobmgr"
}

case $cmd in
start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$user" "$dir"
    start_server
    ;;
start-small)
    mb=${3:?$usage}
    [ "$(id -u)" -eq 0 ] || unavailable "start-small mounts a filesystem: it needs root"
    mkdir -p "$dir/data-fs"
    mount -t tmpfs -o "size=${mb}m,mode=0755" jm-pg-small "$dir/data-fs" 2>/dev/null ||
        unavailable "start-small: mounting a tmpfs on $dir/data-fs was refused"
    chown "$user" "$dir"
    data=$dir/data-fs/data
    mkdir "$data" "$dir/wal"
    chown "$user" "$data" "$dir/wal"
    start_server --waldir="$dir/wal"
    ;;
restart)
    # For the tests of a server restart under a running manager.
    as_user "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -m fast -w -t 60 \
        -o "$server_opts" restart >/dev/null
    ;;
stop)
    # Whatever state the server is in, the filesystem is unmounted: a
    # server that will not stop is stopped at once, and a mount still busy
    # is detached.
    if [ -d "$data" ] && [ -x "$bin/pg_ctl" ]; then
        as_user "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_user "$bin/pg_ctl" -D "$data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    fi
    if mountpoint -q "$dir/data-fs" 2>/dev/null; then
        umount "$dir/data-fs" 2>/dev/null || umount -l "$dir/data-fs"
    fi
    rm -rf "$dir"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
