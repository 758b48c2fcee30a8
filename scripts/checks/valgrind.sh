#!/usr/bin/env bash
# Runs the quickstart and the engine demo from the plain build (build/)
# under valgrind memcheck: any memory error, or any definite or indirect
# leak, fails the check. scripts/test.sh calls it from the repository root
# after the sanitizer stage; the examples exist after its first build.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${JM_VALGRIND_BUILD:-build}
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/jmvalgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT

status=0
for example in quickstart engine_demo; do
    exe="$PWD/$build/examples/$example"
    if [ ! -x "$exe" ]; then
        echo "valgrind.sh: $exe not found; build $build first" >&2
        exit 1
    fi
    echo "=== valgrind: $example"
    # The examples write their files into the current directory.
    mkdir -p "$work/$example"
    if ! (cd "$work/$example" &&
          valgrind --tool=memcheck --leak-check=full \
                   --errors-for-leak-kinds=definite,indirect \
                   --show-leak-kinds=definite,indirect \
                   --error-exitcode=1 --quiet \
                   "$exe" >"$work/$example.out" 2>"$work/$example.err"); then
        echo "valgrind.sh: $example failed under memcheck:" >&2
        cat "$work/$example.err" >&2
        tail -n 20 "$work/$example.out" >&2
        status=1
    else
        echo "valgrind: $example: no errors, no leaks"
    fi
done
exit $status
