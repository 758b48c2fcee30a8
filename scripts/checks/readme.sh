#!/usr/bin/env bash
# Runs the README's command blocks as a user would, so that a documented
# command cannot rot. In a fresh copy of the tree (the files git tracks):
#  - "Building and installing": its four lines as written (a Release build
#    with gcc and every test on, ctest, install), except that the install
#    prefix is a temporary directory instead of /usr/local;
#  - "Set-up in two commands": `bash scripts/demo.sh` (the test command is
#    what runs this script);
#  - "Five-minute tour": each line in order, from build/, against the
#    demo's data. The FL-… placeholder becomes the id `create` printed, and
#    `run`, which runs until Ctrl-C, gets SIGINT once that job has ended.
# Exits non-zero at the first failure. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD

work=$(mktemp -d "${TMPDIR:-/tmp}/jmreadme-XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "readme.sh: FAIL: $*" >&2
    exit 1
}

# block HEADING: the first ```sh block after the line "## HEADING".
block() {
    awk -v h="## $1" '
        $0 == h { inside = 1; next }
        inside && /^## / { exit }
        inside && /^```sh$/ { grab = 1; next }
        grab && /^```$/ { exit }
        grab { print }
    ' "$src/README.md"
}

echo "=== readme: a fresh copy of the tree"
mkdir -p "$work/src"
git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$work/src")
cd "$work/src"

echo "=== readme: Building and installing"
build=$(block "Building and installing")
[ -n "$build" ] || fail "no sh block under 'Building and installing'"
grep -q -- "--prefix /usr/local" <<<"$build" || fail "the install line changed: update this check"
build=${build//--prefix \/usr\/local/--prefix $work/prefix}
echo "$build"
CC=gcc bash -euo pipefail -c "$build"
[ -x "$work/prefix/bin/jobmgr" ] || fail "the install put no bin/jobmgr under the prefix"

echo "=== readme: Set-up in two commands (the demo)"
setup=$(block "Set-up in two commands")
grep -q "^bash scripts/demo.sh" <<<"$setup" || fail "the set-up block no longer runs scripts/demo.sh"
bash scripts/demo.sh >"$work/demo.log" 2>&1 || {
    tail -n 40 "$work/demo.log" >&2
    fail "bash scripts/demo.sh"
}

echo "=== readme: Five-minute tour"
tour=$(block "Five-minute tour")
[ -n "$tour" ] || fail "no sh block under 'Five-minute tour'"
cd build
id=""
while IFS= read -r line; do
    cmd=${line%%#*}
    [[ $cmd =~ [^[:space:]] ]] || continue
    if [ -n "$id" ]; then
        cmd=${cmd//FL-…/$id}
    fi
    echo "\$ $cmd"
    case $cmd in
    export\ *)
        eval "$cmd"
        ;;
    *" create FL "*)
        out=$(eval "$cmd")
        echo "$out"
        id=$(grep -oE 'FL-[0-9a-f-]{36}' <<<"$out" | head -n 1)
        [ -n "$id" ] || fail "create printed no id"
        ;;
    *" run "*)
        # exec: the signal must reach jobmgr, not a subshell around it.
        eval "exec $cmd" &
        runner=$!
        for _ in $(seq 600); do
            status=$(./tools/jobmgr show "$id" | awk '$1 == "status:" { print $2 }')
            case $status in completed | failed | cancelled) break ;; esac
            sleep 0.1
        done
        kill -INT "$runner"
        wait "$runner" || fail "run did not stop cleanly on SIGINT"
        [ "$status" = completed ] || fail "the tour's job ended '$status'"
        ;;
    *)
        eval "$cmd" || fail "$cmd"
        ;;
    esac
done <<<"$tour"
[ -n "$id" ] || fail "the tour created no job"
echo "readme: all documented commands ran"
