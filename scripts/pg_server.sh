#!/usr/bin/env bash
# A private PostgreSQL server for the tests, from Debian's packages:
#   scripts/pg_server.sh start DIR   initdb into DIR/data, listen on a Unix
#                                    socket in DIR only, print the URL
#   scripts/pg_server.sh restart DIR restart it (fast shutdown: connections end)
#   scripts/pg_server.sh stop DIR    stop it and remove DIR
# The server runs as an unprivileged user: the invoking one, or `postgres`
# when invoked as root (PostgreSQL refuses to run as root).
set -euo pipefail

cmd=${1:?usage: pg_server.sh start|restart|stop DIR}
dir=${2:?usage: pg_server.sh start|restart|stop DIR}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "pg_server.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    user=postgres
    as_user() { runuser -u "$user" -- "$@"; }
else
    user=$(id -un)
    as_user() { "$@"; }
fi

case $cmd in
start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$user" "$dir"
    as_user "$bin/initdb" -D "$dir/data" -U jobmgr -A trust -E UTF8 --no-sync >"$dir/initdb.log"
    # fsync stays on: the tests measure and rely on real commits.
    as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses= -c max_connections=300 -c shared_buffers=128MB" \
        start >/dev/null
    as_user "$bin/createdb" -h "$dir" -U jobmgr jobmgr_test
    echo "postgresql:///jobmgr_test?host=$dir&user=jobmgr"
    ;;
restart)
    # For the tests of a server restart under a running manager.
    as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 \
        -o "-k $dir -c listen_addresses= -c max_connections=300 -c shared_buffers=128MB" \
        restart >/dev/null
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg_server.sh start|restart|stop DIR" >&2
    exit 2
    ;;
esac
