#!/usr/bin/env bash
# Drives the web dashboard (`jobmgr serve`) in a real browser: seeds a jobs
# database with the CLI, starts the server on a free loopback port with a
# token file, and runs tests/browser/dashboard.test.mjs (playwright-core on
# Debian's Chromium), which checks the overview's counts against
# `jobmgr stats`, the job list's filters, sign-in and cancel, that a hostile
# job message renders as text, that a POST needs the token and the CSRF
# header, and the create form. The server is stopped on every exit.
#
#   dashboard_browser.sh [--screenshot PATH]   also saves the overview as PATH
#
#   JM_DASH_BUILD     the build directory holding tools/jobmgr (default build)
#   CHROMIUM          the browser (default /usr/bin/chromium)
#   JM_SKIP_BROWSER=1 skip (exit 0) when Chromium, node or npm is missing;
#                     without it a missing one fails the check
# scripts/test.sh runs it after the plain build; scripts/deps.sh installs
# chromium and npm. With the CLI test's helper beside the tool
# (tools/cli_slow_job, built with the tests) a job is running throughout.
set -euo pipefail

screenshot=
while [ $# -gt 0 ]; do
    case $1 in
        --screenshot)
            [ $# -ge 2 ] || { echo "dashboard_browser.sh: --screenshot needs a path" >&2; exit 2; }
            screenshot=$(realpath -m -- "$2")
            shift 2 ;;
        *)
            echo "usage: dashboard_browser.sh [--screenshot PATH]" >&2
            exit 2 ;;
    esac
done

cd "$(dirname "$0")/../.."
src=$PWD
build=${JM_DASH_BUILD:-build}
jobmgr=$(realpath -m -- "$build/tools/jobmgr")
browser=${CHROMIUM:-/usr/bin/chromium}

# How long the server may take to answer, and the seeded jobs to run.
wait_limit=30

fail() {
    echo "dashboard_browser.sh: FAIL: $*" >&2
    exit 1
}

missing=
[ -x "$browser" ] || missing="$missing chromium ($browser)"
command -v node >/dev/null 2>&1 || missing="$missing node"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    if [ "${JM_SKIP_BROWSER:-0}" = 1 ]; then
        echo "dashboard_browser.sh: skipped (JM_SKIP_BROWSER=1): missing$missing"
        exit 0
    fi
    fail "missing$missing (scripts/deps.sh installs them; JM_SKIP_BROWSER=1 skips this check)"
fi
[ -x "$jobmgr" ] || fail "$jobmgr not found; build $build first (or set JM_DASH_BUILD)"

echo "=== dashboard: npm ci in tests/browser"
(cd tests/browser && npm ci --no-audit --no-fund --prefer-offline --loglevel=error) ||
    fail "npm ci in tests/browser failed"

work=$(mktemp -d "${TMPDIR:-/tmp}/jmdash-XXXXXX")
run_pid=
server_pid=
slow_pid=
cleanup() {
    for pid in $run_pid $server_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ -n "$slow_pid" ]; then
        touch "$work/gate"
        wait "$slow_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

db=$work/jobs.db
j() { "$jobmgr" --db "$db" "$@"; }

# wait_for WHAT CMD...: polls CMD every 0.1 s for up to wait_limit seconds.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + wait_limit))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
        sleep 0.1
    done
}

count_running() {
    j --json stats | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).running))'
}
one_running() {
    [ "$(count_running)" = 1 ]
}

no_active_jobs() {
    [ "$(j --json list --status queued,running,retrying --limit 1 |
         node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).jobs.length))')" = 0 ]
}

echo "=== dashboard: seeding $db"
user='{"namespace_id":"app","table_name":"orders","table_type":"User"}'
shared='{"namespace_id":"app","table_name":"orders","table_type":"Shared","target_file_size_mb":64}'
retention='{"namespace_id":"app","table_name":"orders","table_type":"User","retention_hours":168}'
drop='{"table_id":"app:gone","table_type":"User","operation":"drop_table"}'
# The restore's message names its backup directory, so a directory named
# after markup gives a job whose message holds that markup (the test
# checks that the page shows it as text).
hostile='<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
restore=$(node -e 'console.log(JSON.stringify({backup_location: "/nonexistent/" + process.argv[1],
    target_namespace: "app", target_table_name: "restored"}))' "$hostile")

# Jobs that end now: on an empty reference engine every table is missing,
# so flushes, retentions and the restore fail and cleanups complete.
for _ in 1 2; do j create FL --params "$user" --namespace app >/dev/null; done
j create RT --params "$retention" --namespace app >/dev/null
for _ in 1 2 3; do j create CL --params "$drop" --namespace ops >/dev/null; done
j create RS --params "$restore" --namespace ops >/dev/null
mkdir "$work/engine"
# Not through j(): a backgrounded function is a subshell, and $! its pid.
"$jobmgr" --db "$db" run --engine "$work/engine" --workers 2 >"$work/run.log" 2>&1 &
run_pid=$!
wait_for "the seeded jobs to run" no_active_jobs
kill -TERM "$run_pid"
wait "$run_pid" || { rc=$?; cat "$work/run.log" >&2; fail "jobmgr run exited $rc"; }
run_pid=

# Jobs that wait: queued ones of two types, one due later, one paused.
for ns in app app billing; do j create FL --params "$user" --namespace "$ns" >/dev/null; done
for _ in 1 2; do j create RT --params "$retention" --namespace app >/dev/null; done
j create CO --params "$shared" --run-at 1h --key compact:app.orders >/dev/null
paused=$(j create CO --params "$shared" --namespace app)
j pause-job "$paused" >/dev/null
j schedule add nightly-compact --type CO --params "$shared" --cron '0 3 * * *' --tz UTC >/dev/null
j schedule add orders-retention --type RT --params "$retention" --every 6h --paused >/dev/null
j policy add flush-app --kind flush --namespace app --rows 1000 --max-age 10m >/dev/null
j pause type BK >/dev/null

# A running job with a progress bar, when the build has the CLI test's
# helper (builds with JM_BUILD_TESTS): an "SL" job at 50 % that runs until
# the file gate exists.
slow=$(dirname "$jobmgr")/cli_slow_job
if [ -x "$slow" ]; then
    "$slow" "$db" "$work/gate" >"$work/slow.out" 2>"$work/slow.err" &
    slow_pid=$!
    wait_for "the slow job to start" one_running
fi

token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$work/token"
chmod 600 "$work/token"

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url=http://127.0.0.1:$port
echo "=== dashboard: jobmgr serve on $url"
"$jobmgr" serve --db "$db" --listen "127.0.0.1:$port" --token-file "$work/token" >"$work/serve.log" 2>&1 &
server_pid=$!
answers() {
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "jobmgr serve exited"; }
    node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
        "$url/api/session"
}
wait_for "jobmgr serve to answer on $url" answers

echo "=== dashboard: browser test ($("$browser" --version 2>/dev/null | head -n 1))"
status=0
JM_DASH_URL=$url JM_DASH_TOKEN=$token JM_DASH_DB=$db JM_CLI=$jobmgr \
    JM_DASH_SCREENSHOT=$screenshot CHROMIUM=$browser \
    node "$src/tests/browser/dashboard.test.mjs" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- jobmgr serve's log:" >&2
    cat "$work/serve.log" >&2
    fail "the browser test failed (exit $status)"
fi
[ -z "$screenshot" ] || echo "dashboard: overview screenshot in $screenshot"
echo "dashboard: all browser checks passed"
