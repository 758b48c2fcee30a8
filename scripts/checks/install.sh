#!/usr/bin/env bash
# Installs jobmgr into a temporary prefix, as a user would, and checks what
# landed there:
#  - the shared library's SONAME is libjobmgr.so.<major> and it exports
#    nothing but jm_* symbols;
#  - bin/jobmgr runs from the prefix (`jobmgr --version`);
#  - a program built out of tree against the installed files works, once
#    through CMake (find_package(jobmgr) + jobmgr::jobmgr, found through
#    CMAKE_PREFIX_PATH) and once through pkg-config (PKG_CONFIG_PATH): each
#    opens a database, registers an executor, runs one job with
#    jm_run_once() and checks that it completed (tests/install/consumer.c).
#  - SQLite is inside (bundled): neither jobmgr.pc nor the CMake package asks
#    for the system's, and a host that links its own SQLite uses both at once
#    on different files, with the shared and the static library
#    (tests/install/coexist.c).
# Everything happens in a temporary directory, removed at the end; the
# source tree and its build directories are left alone. Exits non-zero at
# the first failure. scripts/test.sh runs it with the other checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD

soname_major=0   # PROJECT_VERSION_MAJOR in CMakeLists.txt

work=$(mktemp -d "${TMPDIR:-/tmp}/jminstall-XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
    echo "install.sh: FAIL: $*" >&2
    exit 1
}
ok() {
    echo "install: ok: $*"
}

# quiet LOG CMD...: runs CMD with its output in LOG, shown only on failure.
quiet() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        fail "$*"
    fi
}

echo "=== install: Release build into $prefix"
quiet "$work/configure.log" cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DJM_BUILD_TESTS=OFF -DJM_BUILD_EXAMPLES=OFF -DJM_BUILD_BENCH=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix"
quiet "$work/build.log" cmake --build "$work/build" --parallel 2
quiet "$work/install.log" cmake --install "$work/build"
ok "cmake --install into a temporary prefix"

# --- What was installed ------------------------------------------------------

for header in include/jobmgr.h include/jobmgr/host.h include/jobmgr/engine.h \
    include/jobmgr/sqlite.h; do
    [ -f "$prefix/$header" ] || fail "$header not installed"
done
ok "headers: jobmgr.h, jobmgr/host.h, jobmgr/engine.h, jobmgr/sqlite.h"

so=$(find "$prefix" -name "libjobmgr.so.$soname_major" -print -quit)
[ -n "$so" ] || fail "libjobmgr.so.$soname_major not installed"
libdir=$(dirname "$so")
[ -L "$libdir/libjobmgr.so" ] || fail "the libjobmgr.so development link is missing"
[ -f "$libdir/libjobmgr.a" ] || fail "libjobmgr.a not installed"
[ -f "$libdir/cmake/jobmgr/jobmgrConfig.cmake" ] || fail "the CMake package is missing"
[ -f "$libdir/cmake/jobmgr/jobmgrConfigVersion.cmake" ] || fail "the CMake package version file is missing"
[ -f "$libdir/pkgconfig/jobmgr.pc" ] || fail "jobmgr.pc not installed"
ok "libraries, CMake package and pkg-config file in ${libdir#"$prefix"/}"

soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = "libjobmgr.so.$soname_major" ] ||
    fail "SONAME of the installed library is '$soname', not libjobmgr.so.$soname_major"
ok "SONAME $soname"

# Only the public API leaves the shared library (the linker's own markers
# aside).
nm -D --defined-only "$so" >"$work/exports.txt"
stray=$(awk 'NF >= 3 { print $3 }' "$work/exports.txt" |
        grep -Ev '^(jm_|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
[ -z "$stray" ] || fail "exported symbols outside the public API:"$'\n'"$stray"
public=$(awk 'NF >= 3 && $3 ~ /^jm_/' "$work/exports.txt" | wc -l)
[ "$public" -gt 0 ] || fail "no jm_ symbol exported"
ok "$public exported symbols, all jm_*"

"$prefix/bin/jobmgr" --version >"$work/version.txt" 2>&1 || {
    cat "$work/version.txt" >&2
    fail "bin/jobmgr --version failed"
}
ok "bin/jobmgr --version: $(head -n 1 "$work/version.txt")"

# --- Build against it out of tree ----------------------------------------------

# run_consumer NAME EXE: runs a consumer in its own directory and checks that
# it loads the installed library, not some other copy.
run_consumer() {
    local name=$1 exe=$2
    local loaded
    loaded=$(ldd "$exe" | awk '$1 ~ /^libjobmgr\.so/ { print $3 }')
    [ "$(readlink -f "$loaded")" = "$(readlink -f "$so")" ] ||
        fail "$name: loads '$loaded', not the installed $so"
    mkdir -p "$work/run-$name"
    "$exe" "$work/run-$name" >"$work/run-$name.log" 2>&1 || {
        cat "$work/run-$name.log" >&2
        fail "$name: the consumer failed"
    }
    ok "$name: $(cat "$work/run-$name.log")"
}

echo "=== install: out-of-tree build with find_package(jobmgr)"
quiet "$work/consumer-cmake-configure.log" cmake -S "$src/tests/install" \
    -B "$work/consumer-cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
quiet "$work/consumer-cmake-build.log" cmake --build "$work/consumer-cmake"
run_consumer cmake "$work/consumer-cmake/consumer"

echo "=== install: out-of-tree build with pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_flags=$(pkg-config --cflags --libs jobmgr) || fail "pkg-config --cflags --libs jobmgr"
pc_libdir=$(pkg-config --variable=libdir jobmgr)
[ "$(readlink -f "$pc_libdir")" = "$(readlink -f "$libdir")" ] ||
    fail "jobmgr.pc's libdir is $pc_libdir, not $libdir"
# shellcheck disable=SC2086  # pkg-config's output is a list of flags
quiet "$work/consumer-pc-build.log" cc -std=c11 -Wall -Wextra -Werror \
    -o "$work/consumer-pkgconfig" "$src/tests/install/consumer.c" $pc_flags \
    -Wl,-rpath,"$pc_libdir"
run_consumer pkg-config "$work/consumer-pkgconfig"

# The static library links too, with pkg-config --static's private flags.
pc_static=$(pkg-config --static --cflags --libs jobmgr) || fail "pkg-config --static jobmgr"
# shellcheck disable=SC2086
quiet "$work/consumer-static-build.log" cc -std=c11 -Wall -Wextra -Werror \
    -o "$work/consumer-static" "$src/tests/install/consumer.c" \
    $(pkg-config --cflags jobmgr) "$libdir/libjobmgr.a" \
    $(echo " $pc_static " | sed 's/ -ljobmgr / /')
mkdir -p "$work/run-static"
"$work/consumer-static" "$work/run-static" >"$work/run-static.log" 2>&1 || {
    cat "$work/run-static.log" >&2
    fail "static: the consumer failed"
}
ok "static (libjobmgr.a, pkg-config --static): $(cat "$work/run-static.log")"

# The SQLite inside is bundled: nothing asks for the system's.
if pkg-config --print-requires-private jobmgr | grep -q sqlite3; then
    fail "jobmgr.pc requires sqlite3 although SQLite is bundled"
fi
grep -q sqlite3 "$libdir/cmake/jobmgr/jobmgrConfig.cmake" &&
    fail "the CMake package looks for sqlite3 although SQLite is bundled"
ok "neither jobmgr.pc nor the CMake package requires sqlite3"

# A host with its own (the system's) SQLite, using it beside jobmgr, with
# the shared and with the static library.
echo "=== install: a host linking its own SQLite"
sqlite_flags=$(pkg-config --cflags --libs sqlite3) || fail "pkg-config sqlite3"
# shellcheck disable=SC2086
quiet "$work/coexist-shared-build.log" cc -std=c11 -Wall -Wextra -Werror \
    -o "$work/coexist-shared" "$src/tests/install/coexist.c" $pc_flags $sqlite_flags \
    -Wl,-rpath,"$pc_libdir"
mkdir -p "$work/run-coexist-shared"
"$work/coexist-shared" "$work/run-coexist-shared" >"$work/coexist-shared.log" 2>&1 || {
    cat "$work/coexist-shared.log" >&2
    fail "coexist (shared) failed"
}
ok "shared: $(cat "$work/coexist-shared.log")"
# shellcheck disable=SC2086
quiet "$work/coexist-static-build.log" cc -std=c11 -Wall -Wextra -Werror \
    -o "$work/coexist-static" "$src/tests/install/coexist.c" \
    $(pkg-config --cflags jobmgr) "$libdir/libjobmgr.a" \
    $(echo " $pc_static " | sed 's/ -ljobmgr / /') $sqlite_flags
mkdir -p "$work/run-coexist-static"
"$work/coexist-static" "$work/run-coexist-static" >"$work/coexist-static.log" 2>&1 || {
    cat "$work/coexist-static.log" >&2
    fail "coexist (static) failed"
}
ok "static: $(cat "$work/coexist-static.log")"

echo "install: all checks passed"
