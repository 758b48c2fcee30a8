#!/usr/bin/env bash
# Installs the Debian packages jobmgr needs to build and test (with --test,
# also those only the tests need), skipping those
# already installed. Runs `apt-get update` at most once, and only when
# something is missing; uses sudo only when not root.
set -euo pipefail

packages=(
    build-essential   # gcc, make, libc headers
    pkg-config
    cmake
    libsqlite3-dev    # JM_SQLITE=system, and the check that a host's own SQLite works beside ours
    libcjson-dev      # job parameters and metrics
    uuid-dev          # job ids
    libzstd-dev       # compressed backups
    libcmocka-dev     # the tests
    clang             # the fuzz targets (scripts/checks/fuzz.sh): libFuzzer
    libclang-rt-14-dev # libFuzzer and the sanitizer runtimes of clang 14 (Debian 12)
    valgrind          # scripts/checks/valgrind.sh: memcheck over the examples
    python3           # the CLI test parses --json output
    tzdata            # the zones schedules read (/usr/share/zoneinfo); Debian marks it required
    python3-croniter  # tests/cron/compare_croniter.py: an independent cron implementation to compare with
    tmux              # the CLI test drives `jobmgr watch` on a terminal
    doxygen           # scripts/checks/docs.sh: the API reference, warnings as errors
    libpq-dev         # the PostgreSQL store
    postgresql        # scripts/pg_server.sh: the tests' private server
    libmicrohttpd-dev # `jobmgr serve`: the dashboard's HTTP server
)

# --test: also what the browser test of the dashboard needs
# (scripts/checks/dashboard_browser.sh): Debian's Chromium, and Node.js
# with npm unless a Node.js is already on PATH.
if [ "${1:-}" = "--test" ]; then
    packages+=(chromium curl)
    if ! command -v npm >/dev/null 2>&1; then
        packages+=(nodejs npm)
    fi
fi

missing=()
for p in "${packages[@]}"; do
    # dpkg -s also answers for removed packages whose config files remain, so
    # ask for the status itself.
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "deps.sh: missing packages (${missing[*]}) and neither root nor sudo" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
