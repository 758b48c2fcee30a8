#!/usr/bin/env bash
# Builds jobmgr and runs every test in several configurations:
#   build/       plain build (gcc, RelWithDebInfo, bundled SQLite), all tests
#   build-clang/ clang, Debug, on the system's SQLite, all tests
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, all tests
#   scripts/checks/*.sh  further checks (install, fuzzing, the README's
#                commands with a Release build by gcc, the documentation's
#                code blocks, ...)
#   build-tsan/  ThreadSanitizer, the worker-pool tests
# Stops at the first failure. Warnings are errors in every build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --test

jobs=2

# A private PostgreSQL server for the tests that run on both stores (their
# "_pg" twins) and the PostgreSQL-only ones; stopped and removed on exit.
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/jm-pg-XXXXXX")
trap 'bash scripts/pg_server.sh stop "$pg_dir"' EXIT
JM_TEST_PG_URL=$(bash scripts/pg_server.sh start "$pg_dir")
export JM_TEST_PG_URL
# test_pg_nodes restarts the server under a working node.
export JM_TEST_PG_RESTART="bash $PWD/scripts/pg_server.sh restart $pg_dir"
echo "=== PostgreSQL: $JM_TEST_PG_URL"

# configure_and_build DIR [CMAKE OPTIONS...]
configure_and_build() {
    local dir=$1
    shift
    echo "=== $dir: configure and build"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJM_BUILD_TESTS=ON "$@"
    cmake --build "$dir" --parallel "$jobs"
}

# run_ctest DIR [WRAPPER...]: runs DIR's tests, under WRAPPER if given.
run_ctest() {
    local dir=$1
    shift
    echo "=== $dir: ctest"
    (cd "$dir" && "$@" ctest --output-on-failure --no-tests=error --parallel "$jobs")
}

# ThreadSanitizer maps its shadow memory at fixed addresses and aborts with
# "unexpected memory mapping" when the kernel randomises mmap with more bits
# than it expects (vm.mmap_rnd_bits > 28 on some kernels). Running the tests
# with address-space randomisation off for those processes avoids it without
# changing the machine's settings.
tsan_wrapper=()
if command -v setarch >/dev/null 2>&1 && setarch "$(uname -m)" -R true 2>/dev/null; then
    tsan_wrapper=(setarch "$(uname -m)" -R)
else
    bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
    if [ "$bits" -gt 28 ]; then
        echo "test.sh: vm.mmap_rnd_bits is $bits and setarch -R is unavailable;" \
             "ThreadSanitizer may fail (sysctl vm.mmap_rnd_bits=28 fixes it)" >&2
    fi
fi

configure_and_build build -DJM_SANITIZE= -DJM_ONLY_THREADED_TESTS=OFF
run_ctest build

# The other compiler, the other end of the build types, and the other SQLite.
# The PostgreSQL twins of the tests ran in the plain build; test_pg runs in
# every build.
CC=clang configure_and_build build-clang -DCMAKE_BUILD_TYPE=Debug -DJM_SANITIZE= \
    -DJM_ONLY_THREADED_TESTS=OFF -DJM_SQLITE=system -DJM_PG_TESTS=
run_ctest build-clang

# Instrumented code runs several times slower: test_fault_io (hundreds of
# fault-injected opens and recoveries) and the CLI scenario take 4-5
# minutes alone under ASan on a loaded 2-core machine, so the hang guard is
# longer there.
# On PostgreSQL, ASan takes the tests that reach every store operation.
configure_and_build build-asan -DJM_SANITIZE=address,undefined -DJM_ONLY_THREADED_TESTS=OFF \
    -DJM_TEST_TIMEOUT=900 \
    "-DJM_PG_TESTS=test_store;test_acceptance;test_conflicts;test_recovery;test_schedule;test_policy"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan

# Further checks, one script each (install and build against it, fuzzing,
# the crash harness, valgrind, documentation): each exits non-zero on failure.
for check in scripts/checks/*.sh; do
    [ -e "$check" ] || continue
    echo "=== check: $check"
    bash "$check"
done

configure_and_build build-tsan -DJM_SANITIZE=thread -DJM_ONLY_THREADED_TESTS=ON -DJM_PG_TESTS=
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    run_ctest build-tsan "${tsan_wrapper[@]}"
