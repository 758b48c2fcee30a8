#!/usr/bin/env bash
# test_cli.sh: end-to-end test of the `jobmgr` command-line tool. It runs
# the real binary and checks outputs and exit codes of every command:
# help, usage errors (2), not found (3), conflicts (4), refused transitions
# (5), JSON output (parsed with python3), ISO and relative times, `run` on a
# real reference engine stopped with SIGINT, and `watch` both as plain lines
# and on a terminal (driven through tmux).
#
#   test_cli.sh JOBMGR WORKDIR MAKE_ENGINE SLOW_JOB
#
# JOBMGR is the tool, WORKDIR a scratch directory (emptied first),
# MAKE_ENGINE and SLOW_JOB the helper programs beside this script. Exits 0
# when every check passed, 1 when one failed, and 77 (ctest: skipped) when
# everything passed but tmux is missing, so the terminal check could not run.

# The wait conditions are functions called through wait_for, and cleanup
# through the EXIT trap: shellcheck cannot see those calls.
# shellcheck disable=SC2317
set -u

if [ $# -ne 4 ]; then
    echo "usage: test_cli.sh JOBMGR WORKDIR MAKE_ENGINE SLOW_JOB" >&2
    exit 2
fi
J=$1
T=$2
MAKE_ENGINE=$3
SLOW_JOB=$4

# How long to wait for something the test started (a job to finish, a
# process to exit) before calling it a failure; polls every POLL seconds.
WAIT_LIMIT=20
POLL=0.1

rm -rf "$T"
mkdir -p "$T"
# A fixed zone without tzdata (POSIX TZ: nine hours east of UTC), so local
# times are known; the colour rule is tested explicitly below.
export TZ=JST-9
unset JOBMGR_DB NO_COLOR

if ! command -v python3 >/dev/null 2>&1; then
    echo "test_cli: python3 is needed to parse --json output (scripts/deps.sh installs it)" >&2
    exit 1
fi

failures=0
checks=0
bg_pids=()
tmux_socket="jobmgr-cli-test-$$"

cleanup() {
    for pid in "${bg_pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    if command -v tmux >/dev/null 2>&1; then
        tmux -L "$tmux_socket" kill-server 2>/dev/null
    fi
}
trap cleanup EXIT

fail() {
    failures=$((failures + 1))
    echo "FAIL: $*" >&2
}

# run EXPECTED_RC CMD...: runs CMD, leaving stdout in $OUT and stderr in $ERR.
run() {
    local want=$1
    shift
    checks=$((checks + 1))
    OUT=$("$@" 2>"$T/stderr")
    RC=$?
    ERR=$(cat "$T/stderr")
    if [ "$RC" -ne "$want" ]; then
        fail "exit $RC (want $want): $*"$'\n'"  stdout: ${OUT:0:400}"$'\n'"  stderr: ${ERR:0:400}"
        return 1
    fi
    return 0
}

# expect TEXT PATTERN WHAT: TEXT matches the extended regex PATTERN.
expect() {
    checks=$((checks + 1))
    if ! grep -Eq -- "$2" <<<"$1"; then
        fail "$3: no match for /$2/ in:"$'\n'"${1:0:600}"
    fi
}

expect_not() {
    checks=$((checks + 1))
    if grep -Eq -- "$2" <<<"$1"; then
        fail "$3: unexpected match for /$2/ in:"$'\n'"${1:0:600}"
    fi
}

# jq_py JSON EXPR: prints EXPR evaluated on the parsed JSON (bound to d).
jq_py() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"
}

# json_is JSON EXPR WANT WHAT
json_is() {
    checks=$((checks + 1))
    local got
    if ! got=$(jq_py "$1" "$2" 2>"$T/pyerr"); then
        fail "$4: JSON did not parse or $2 failed: $(cat "$T/pyerr")"$'\n'"${1:0:400}"
        return
    fi
    if [ "$got" != "$3" ]; then
        fail "$4: $2 is '$got', want '$3'"
    fi
}

# wait_for SECONDS CMD...: polls CMD until it succeeds or time runs out.
wait_for() {
    local limit=$1
    shift
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep "$POLL"
    done
    return 0
}

# wait_exit PID: waits up to WAIT_LIMIT for PID to end, sets $RC to its status.
wait_exit() {
    local pid=$1
    if ! wait_for "$WAIT_LIMIT" bash -c "! kill -0 $pid 2>/dev/null"; then
        RC=124
        return 1
    fi
    wait "$pid"
    RC=$?
    return 0
}

ID_RE='^[A-Z]{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
DB=$T/jobs.db
FL_PARAMS='{"namespace_id":"app","table_name":"orders","table_type":"User"}'
RT_PARAMS='{"namespace_id":"app","table_name":"orders","table_type":"User","retention_hours":1}'

# ---- help -------------------------------------------------------------------

run 0 "$J" --help
for section in NAME SYNOPSIS COMMANDS OPTIONS "EXIT STATUS" ENVIRONMENT EXAMPLES; do
    expect "$OUT" "^$section\$" "--help has $section"
done
expect "$OUT" "JOBMGR_DB" "--help documents JOBMGR_DB"
expect "$OUT" "^    6  database error" "--help documents exit 6"
run 0 "$J" --version
expect "$OUT" "^jobmgr [0-9]+\.[0-9]+\.[0-9]+ \(SQLite 3\.[0-9]+\.[0-9]+, (bundled|system)\)$" "--version"
run 0 "$J" help
expect "$OUT" "^COMMANDS" "help alone is the manual page"
for cmd in list show create cancel retry prune stats run watch schedule policy pause-job \
    resume-job pause resume paused conflict limit conflicts limits; do
    run 0 "$J" help "$cmd"
    expect "$OUT" "^Usage: jobmgr $cmd" "help $cmd"
    run 0 "$J" "$cmd" --help
    expect "$OUT" "^Usage: jobmgr $cmd" "$cmd --help"
done

# ---- usage errors: exit 2 -----------------------------------------------------

run 2 "$J"
expect "$ERR" "^jobmgr: no command given" "no command"
run 2 "$J" frobnicate
expect "$ERR" "unknown command 'frobnicate'" "unknown command"
run 2 "$J" help frobnicate
run 2 "$J" --bogus list
run 2 "$J" list                                  # no database anywhere
expect "$ERR" "^jobmgr: list: no jobs database" "missing --db"
run 2 "$J" --db "$DB" list --bogus
expect "$ERR" "unknown option '--bogus'" "unknown option"
run 2 "$J" --db "$DB" list --limit
expect "$ERR" "needs a value" "option without its value"
run 2 "$J" --db "$DB" list --limit 0
run 2 "$J" --db "$DB" list --limit 10001
run 2 "$J" --db "$DB" list --status running,sleeping
run 2 "$J" --db "$DB" list --type fl
run 2 "$J" --db "$DB" list --since yesterday
run 2 "$J" --db "$DB" list --until 2026-13-01T00:00:00Z
run 2 "$J" --db "$DB" list --since 2026-02-30
run 2 "$J" --db "$DB" list --cursor nonsense
run 2 "$J" --db "$DB" list extra
run 2 "$J" --db "$DB" show
run 2 "$J" --db "$DB" show not-an-id
run 2 "$J" --db "$DB" create FL
expect "$ERR" "--params JSON is required" "create without params"
run 2 "$J" --db "$DB" create --params '{}'
run 2 "$J" --db "$DB" create FL --params '{"namespace_id": "app",'
expect "$ERR" "not a JSON object" "bad JSON params"
run 2 "$J" --db "$DB" create FL --params '[1, 2]'
run 2 "$J" --db "$DB" create FL --params "$FL_PARAMS" --max-retries 1001
run 2 "$J" --db "$DB" create FL --params "$FL_PARAMS" --run-at tomorrow
run 2 "$J" --db "$DB" create FL --params "$FL_PARAMS" --priority high
run 2 "$J" --db "$DB" cancel
run 2 "$J" --db "$DB" retry FL-123
run 2 "$J" --db "$DB" prune
run 2 "$J" --db "$DB" prune --older-than 7 days
run 2 "$J" --db "$DB" prune --older-than 7       # a relative time needs its unit
run 2 "$J" --db "$DB" prune --older-than 1h30
run 2 "$J" --db "$DB" stats extra
run 2 "$J" --db "$DB" run
expect "$ERR" "--engine DIR is required" "run without --engine"
run 2 "$J" --db "$DB" run --engine "$T/engine" --workers 0
for bad in soon 0s 2d; do
    run 2 "$J" --db "$DB" run --engine "$T/engine" --policy-interval "$bad"
done
for bad in fast=1M high high=-1 high=10X "high=1M," =5M high=M high=99999999999G ""; do
    run 2 "$J" --db "$DB" run --engine "$T/engine" --io-limit "$bad"
    expect "$ERR" "bad --io-limit" "run --io-limit '$bad'"
done
run 2 "$J" --db "$DB" watch --interval 5
for bad in "--high-workers 4" "--high-workers -1" "--high-workers some"; do
    # shellcheck disable=SC2086 # the option and its value are two words
    run 2 "$J" --db "$DB" run --engine "$T/engine" --workers 4 $bad
    expect "$ERR" "--high-workers" "run $bad"
done
[ -e "$DB" ] && fail "usage errors must not create the database"

# ---- create ---------------------------------------------------------------------

run 0 "$J" --db "$DB" create FL --params "$FL_PARAMS" --key flush:orders --namespace app
FL1=$OUT
expect "$FL1" "$ID_RE" "create prints the id"
expect "$FL1" "^FL-" "the id has the type's prefix"

# The same key while the job is active: exit 4 and the holder's id.
run 4 "$J" --db "$DB" create FL --params "$FL_PARAMS" --key flush:orders
[ "$OUT" = "$FL1" ] || fail "conflict prints the existing id: '$OUT' vs '$FL1'"
expect "$ERR" "^jobmgr: create: .*flush:orders" "conflict message"
run 4 "$J" --db "$DB" --json create FL --params "$FL_PARAMS" --key flush:orders
json_is "$OUT" 'd["id"]' "$FL1" "conflict --json id"
json_is "$OUT" 'd["created"]' "false" "conflict --json created"

# JOBMGR_DB instead of --db, and global options after the command.
run 0 env JOBMGR_DB="$DB" "$J" create RT --params "$RT_PARAMS" --priority 7 --max-retries 5 --json
json_is "$OUT" 'd["created"]' "true" "create --json"
RT1=$(jq_py "$OUT" 'd["id"]')

# Parameters the executor refuses, and a type nobody registered: exit 1.
run 1 "$J" --db "$DB" create FL --params '{"namespace_id": "app"}'
expect "$ERR" "^jobmgr: create: .*table_name" "validate refusal names the field"
run 1 "$J" --db "$DB" create ZZ --params '{}'
expect "$ERR" "^jobmgr: create: " "unknown type message"

# ---- times: ISO 8601 and relative ------------------------------------------------

EPOCH_2030=1893456000000 # 2030-01-01T00:00:00Z in ms
# The same instant written five ways (the last two in local time, JST).
for t in 2030-01-01T00:00:00Z 2030-01-01T02:00:00+02:00 2029-12-31T19:00:00-0500 \
    2030-01-01T09:00:00 "2030-01-01 09:00:00.000"; do
    run 0 "$J" --db "$DB" --json create FL --params "$FL_PARAMS" --run-at "$t" --namespace times
    id=$(jq_py "$OUT" 'd["id"]')
    run 0 "$J" --db "$DB" show "$id" --json
    json_is "$OUT" 'd["run_at_ms"]' "$EPOCH_2030" "--run-at $t"
    json_is "$OUT" 'd["status"]' "new" "a job due later is new"
done
# A date alone is local midnight: nine hours before midnight UTC.
run 0 "$J" --db "$DB" --json create FL --params "$FL_PARAMS" --run-at 2030-01-01 --namespace times
run 0 "$J" --db "$DB" show "$(jq_py "$OUT" 'd["id"]')" --json
json_is "$OUT" 'd["run_at_ms"]' "$((EPOCH_2030 - 9 * 3600 * 1000))" "--run-at a date"
# Shown in local time (TZ=JST-9) with the offset.
run 0 "$J" --db "$DB" show "$id"
expect "$OUT" "^run at: +2030-01-01T09:00:00\+09:00$" "show prints local time with offset"

run 0 "$J" --db "$DB" --json create FL --params "$FL_PARAMS" --run-at 2h --namespace times
REL=$(jq_py "$OUT" 'd["id"]')
run 0 "$J" --db "$DB" show "$REL" --json
json_is "$OUT" 'abs(d["run_at_ms"] - d["created_at_ms"] - 2*3600*1000) < 60000' "true" \
    "--run-at 2h is two hours from now"
json_is "$OUT" 'd["run_at"].endswith("+09:00")' "true" "JSON times are local ISO with offset"

# ---- show -------------------------------------------------------------------------

run 0 "$J" --db "$DB" show "$FL1"
for field in id type status namespace resource "blocked by" key priority retries attempts \
    progress node schedule "fire time" created updated "run at" started finished message params \
    result checkpoint trace; do
    expect "$OUT" "^$field: " "show has $field"
done
expect "$OUT" "^status: +queued$" "show status"
expect "$OUT" "^resource: +app\.orders$" "show: the resource flush derives from its params"
expect "$OUT" "^blocked by: +-$" "show: nothing holds a job no claim passed"
expect "$OUT" '^params: +\{$' "params pretty-printed"
expect "$OUT" '^  "table_name": "orders",?$' "params indented by two spaces"
expect_not "$OUT" $'\033' "no colour when stdout is not a terminal"
run 0 "$J" --db "$DB" show "$FL1" --json
json_is "$OUT" 'd["params"]["table_type"]' "User" "show --json embeds params as JSON"
json_is "$OUT" '[d["schedule_id"], d["fire_time"], d["fire_time_ms"]]' '[null, null, null]' \
    "a job no schedule created"
json_is "$OUT" 'd["idempotency_key"]' "flush:orders" "show --json key"
json_is "$OUT" '[d["resource"], d["blocked_by"], d["pause_requested"]]' '["app.orders", null, false]' \
    "show --json: resource, blocked_by, pause_requested"
json_is "$OUT" 'sorted(d)' \
    '["attempts", "blocked_by", "cancel_requested", "checkpoint", "created_at", "created_at_ms", "exception_trace", "finished_at", "finished_at_ms", "fire_time", "fire_time_ms", "id", "idempotency_key", "max_retries", "message", "namespace", "node_id", "params", "pause_requested", "priority", "progress", "resource", "result", "retry_count", "run_at", "run_at_ms", "schedule_id", "started_at", "started_at_ms", "status", "type", "updated_at", "updated_at_ms"]' \
    "show --json has every field"
run 0 "$J" --db "$DB" show "$RT1" --json
json_is "$OUT" 'd["priority"]' "7" "create --priority"
json_is "$OUT" 'd["max_retries"]' "5" "create --max-retries"

MISSING=FL-00000000-0000-7000-8000-000000000000
run 3 "$J" --db "$DB" show "$MISSING"
expect "$ERR" "^jobmgr: show $MISSING: " "not found message"
run 3 "$J" --db "$DB" show "$MISSING" --json

# ---- list -------------------------------------------------------------------------

run 0 "$J" --db "$DB" list
expect "$OUT" "^ID +STATUS +NAMESPACE +RESOURCE +KEY +PRI +RETRIES +CREATED +MESSAGE$" "list header"
expect "$OUT" "^$FL1 +queued +app +app\.orders +flush:orders " "list row aligned"
run 0 "$J" --db "$DB" list --json
json_is "$OUT" 'len(d["jobs"])' "9" "list --json has every job"
json_is "$OUT" 'd["next_cursor"]' "null" "no next cursor on the last page"
json_is "$OUT" 'd["jobs"][0]["id"]' "$FL1" "oldest first"
run 0 "$J" --db "$DB" list --newest --json
json_is "$OUT" 'd["jobs"][-1]["id"]' "$FL1" "--newest: newest first"
run 0 "$J" --db "$DB" list --type RT --json
json_is "$OUT" '[j["id"] for j in d["jobs"]]' "[\"$RT1\"]" "--type"
run 0 "$J" --db "$DB" list --status queued --json
json_is "$OUT" 'sorted(j["id"] for j in d["jobs"])' "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "$FL1" "$RT1")" "--status queued"
run 0 "$J" --db "$DB" list --status new,queued --json
json_is "$OUT" 'len(d["jobs"])' "9" "--status with two statuses"
run 0 "$J" --db "$DB" list --namespace times --json
json_is "$OUT" 'len(d["jobs"])' "7" "--namespace"
run 0 "$J" --db "$DB" list --key flush:orders --json
json_is "$OUT" '[j["id"] for j in d["jobs"]]' "[\"$FL1\"]" "--key"
run 0 "$J" --db "$DB" list --since 10m --json
json_is "$OUT" 'len(d["jobs"])' "9" "--since 10m (relative)"
run 0 "$J" --db "$DB" list --until 10m --json
json_is "$OUT" 'len(d["jobs"])' "0" "--until 10m (relative)"
run 0 "$J" --db "$DB" list --since 2001-01-01T00:00:00Z --until 2100-01-01T09:00:00+09:00 --json
json_is "$OUT" 'len(d["jobs"])' "9" "--since/--until ISO"
run 0 "$J" --db "$DB" list --until 2001-01-01 --json
json_is "$OUT" 'len(d["jobs"])' "0" "--until an ISO date"
run 0 "$J" --db "$DB" list --status failed
expect "$OUT" "^no jobs$" "empty list"

# Pages: the hint names the cursor, and the cursor gives the next page.
run 0 "$J" --db "$DB" list --limit 4
expect "$OUT" "^more jobs: jobmgr list --cursor [A-Z]{2}-" "next-cursor hint"
run 0 "$J" --db "$DB" list --limit 4 --json
CURSOR=$(jq_py "$OUT" 'd["next_cursor"]')
FIRST_PAGE=$(jq_py "$OUT" '[j["id"] for j in d["jobs"]]')
json_is "$OUT" 'd["jobs"][-1]["id"]' "$CURSOR" "the cursor is the page's last id"
run 0 "$J" --db "$DB" list --limit 4 --cursor "$CURSOR" --json
json_is "$OUT" 'len(d["jobs"])' "4" "second page"
json_is "$OUT" "len(set(j['id'] for j in d['jobs']) & set($FIRST_PAGE))" "0" "pages do not overlap"
run 0 "$J" --db "$DB" list --limit 4 --cursor "$(jq_py "$OUT" 'd["next_cursor"]')" --json
json_is "$OUT" 'len(d["jobs"])' "1" "last page"
json_is "$OUT" 'd["next_cursor"]' "null" "last page has no cursor"
run 3 "$J" --db "$DB" list --cursor "$MISSING"

# ---- database errors: exit 6 -------------------------------------------------------

echo "not a database, just text" >"$T/garbage.db"
run 6 "$J" --db "$T/garbage.db" list
expect "$ERR" "^jobmgr: opening $T/garbage.db: " "not a jobs database"
run 6 "$J" --db "$T/no/such/dir/jobs.db" stats

# ---- cancel and retry ------------------------------------------------------------

run 0 "$J" --db "$DB" cancel "$REL"
expect "$OUT" "^cancelled $REL \(cancelled\)$" "cancel a new job"
run 5 "$J" --db "$DB" cancel "$REL"
expect "$ERR" "^jobmgr: cancel $REL: " "cancel of a finished job"
run 3 "$J" --db "$DB" cancel "$MISSING"
run 0 "$J" --db "$DB" retry "$REL" --json
json_is "$OUT" 'd["status"]' "queued" "retry requeues"
run 5 "$J" --db "$DB" retry "$REL"
expect "$ERR" "^jobmgr: retry $REL: " "retry of a queued job"
run 3 "$J" --db "$DB" retry "$MISSING"

# A retry that would take a key another active job now holds: exit 4.
run 0 "$J" --db "$DB" create RT --params "$RT_PARAMS" --key shared-key
OLD=$OUT
run 0 "$J" --db "$DB" cancel "$OLD"
run 0 "$J" --db "$DB" create RT --params "$RT_PARAMS" --key shared-key
run 4 "$J" --db "$DB" retry "$OLD"

# ---- stats ----------------------------------------------------------------------

run 0 "$J" --db "$DB" stats
expect "$OUT" "^TYPE +new +queued +running +retrying +completed +failed +cancelled +paused +total$" "stats header"
expect "$OUT" "^FL +6 +2 +- +- +- +- +- +- +8$" "stats FL row"
expect "$OUT" "^all " "stats total row"
expect "$OUT" "^queue depth: +[0-9]+$" "stats queue depth"
expect "$OUT" "^oldest queued age: " "stats oldest age"
expect "$OUT" "^failed last hour: +0$" "stats failures"
run 0 "$J" --db "$DB" stats --json
json_is "$OUT" 'd["types"]["FL"]["by_status"]["new"]' "6" "stats --json by type"
json_is "$OUT" 'd["by_status"]["cancelled"]' "1" "stats --json by status"
json_is "$OUT" 'd["queue_depth"]' "4" "stats --json queue depth"
json_is "$OUT" 'd["failed_last_hour"]' "0" "stats --json failures"

# ---- prune ------------------------------------------------------------------------

run 0 "$J" --db "$DB" prune --older-than 7d
expect "$OUT" "^pruned 0 jobs finished before " "prune: nothing that old"
run 0 "$J" --db "$DB" prune --older-than 2100-01-01T00:00:00Z --json
json_is "$OUT" 'd["deleted"]' "1" "prune deletes the finished job"
run 3 "$J" --db "$DB" show "$OLD"

# ---- pauses, conflicts and limits ------------------------------------------------

# Usage errors: exit 2 with a message.
run 2 "$J" --db "$DB" pause-job
expect "$ERR" "^jobmgr: pause-job: needs exactly one job id" "pause-job without an id"
run 2 "$J" --db "$DB" resume-job not-an-id
expect "$ERR" "'not-an-id' is not a job id" "resume-job with a bad id"
run 2 "$J" --db "$DB" pause-job "$FL1" "$RT1"
run 2 "$J" --db "$DB" pause
expect "$ERR" "^jobmgr: pause: needs what to pause: all, type TYPE or resource RES" "pause without a scope"
run 2 "$J" --db "$DB" resume everything
expect "$ERR" "^jobmgr: resume: unknown scope 'everything'" "resume: unknown scope"
run 2 "$J" --db "$DB" pause type xx
expect "$ERR" "^jobmgr: pause: bad type 'xx'" "pause: bad type"
run 2 "$J" --db "$DB" pause type
expect "$ERR" "type needs exactly one job type" "pause type without the type"
run 2 "$J" --db "$DB" pause resource
expect "$ERR" "resource needs exactly one resource" "pause resource without the resource"
run 2 "$J" --db "$DB" pause all FL
run 2 "$J" --db "$DB" resume type FL CO
run 2 "$J" --db "$DB" pause resource ''
run 2 "$J" --db "$DB" paused extra
run 2 "$J" --db "$DB" conflict CO BK
expect "$ERR" "^jobmgr: conflict: needs TYPE_A TYPE_B on.off" "conflict without the state"
run 2 "$J" --db "$DB" conflict xx BK on
expect "$ERR" "^jobmgr: conflict: bad type 'xx'" "conflict: bad type"
run 2 "$J" --db "$DB" conflict CO BK maybe
expect "$ERR" "bad state 'maybe'" "conflict: bad state"
run 2 "$J" --db "$DB" conflict '*' '*' on
expect "$ERR" "at most one of the types may be" "conflict: '*' twice"
run 2 "$J" --db "$DB" limit
expect "$ERR" "^jobmgr: limit: needs exactly one number" "limit without a number"
for bad in "--type xx 1" "-1" "many" "1 2" "--bogus 1" "--resource"; do
    # shellcheck disable=SC2086 # the options and values are words
    run 2 "$J" --db "$DB" limit $bad
done
run 2 "$J" --db "$DB" limit --resource '' 1
# '*' is no resource a pause can name: the library's refusal, exit 1.
run 1 "$J" --db "$DB" pause resource '*'
expect "$ERR" "^jobmgr: pause: .*reserved" "pause resource '*'"

# pause-job and resume-job: a waiting job is paused at once, keeps its key
# and its retries, and goes back to queued.
run 0 "$J" --db "$DB" pause-job "$FL1"
expect "$OUT" "^paused $FL1 \(paused\)$" "pause-job of a queued job"
run 0 "$J" --db "$DB" show "$FL1" --json
json_is "$OUT" '[d["status"], d["pause_requested"], d["retry_count"]]' '["paused", false, 0]' \
    "a paused job"
run 0 "$J" --db "$DB" list --status paused --json
json_is "$OUT" '[j["id"] for j in d["jobs"]]' "[\"$FL1\"]" "list --status paused"
run 0 "$J" --db "$DB" stats --json
json_is "$OUT" 'd["by_status"]["paused"]' "1" "stats counts paused jobs"
run 5 "$J" --db "$DB" pause-job "$FL1"
expect "$ERR" "^jobmgr: pause-job $FL1: .*is paused" "pause-job of a paused job"
run 4 "$J" --db "$DB" create FL --params "$FL_PARAMS" --key flush:orders
[ "$OUT" = "$FL1" ] || fail "a paused job keeps its key: '$OUT' vs '$FL1'"
run 0 "$J" --db "$DB" resume-job "$FL1" --json
json_is "$OUT" 'd' "{\"id\": \"$FL1\", \"status\": \"queued\", \"pause_requested\": false}" \
    "resume-job --json"
run 5 "$J" --db "$DB" resume-job "$FL1"
expect "$ERR" "^jobmgr: resume-job $FL1: .*not asked to pause" "resume-job of a queued job"
run 3 "$J" --db "$DB" pause-job "$MISSING"
run 3 "$J" --db "$DB" resume-job "$MISSING"
# A job due later waits for its run_at again once resumed.
run 0 "$J" --db "$DB" create FL --params "$FL_PARAMS" --run-at 2h --namespace pauses
LATE=$OUT
run 0 "$J" --db "$DB" pause-job "$LATE" --json
json_is "$OUT" 'd["status"]' "paused" "pause-job --json"
run 0 "$J" --db "$DB" resume-job "$LATE"
expect "$OUT" "^resumed $LATE \(new\)$" "resume-job of a job due later"
# A cancel wins over a pause; a finished job cannot be paused.
run 0 "$J" --db "$DB" pause-job "$LATE"
run 0 "$J" --db "$DB" cancel "$LATE"
expect "$OUT" "^cancelled $LATE \(cancelled\)$" "cancel of a paused job"
run 5 "$J" --db "$DB" pause-job "$LATE"
expect "$ERR" "is cancelled" "pause-job of a finished job"
run 5 "$J" --db "$DB" resume-job "$LATE"

# create --resource names what the job acts on instead of the derived one.
run 0 "$J" --db "$DB" create FL --params "$FL_PARAMS" --resource disk-1 --namespace pauses --json
run 0 "$J" --db "$DB" show "$(jq_py "$OUT" 'd["id"]')" --json
json_is "$OUT" 'd["resource"]' "disk-1" "create --resource"
run 1 "$J" --db "$DB" create FL --params "$FL_PARAMS" --resource '*'
expect "$ERR" "^jobmgr: create: .*reserved" "create --resource '*'"

# Scopes: pause, paused, resume.
run 0 "$J" --db "$DB" paused
expect "$OUT" "^no pauses$" "no pauses"
run 0 "$J" --db "$DB" paused --json
json_is "$OUT" 'd' "[]" "paused --json: none"
run 0 "$J" --db "$DB" pause type CO
expect "$OUT" "^paused type CO$" "pause type"
run 0 "$J" --db "$DB" pause type CO                  # paused already: nothing changes
run 0 "$J" --db "$DB" pause resource app.orders --json
json_is "$OUT" 'd' '{"scope": "resource", "what": "app.orders", "paused": true}' "pause resource --json"
run 0 "$J" --db "$DB" pause all
expect "$OUT" "^paused all work$" "pause all"
run 0 "$J" --db "$DB" paused
expect "$OUT" "^SCOPE +WHAT +SINCE$" "paused header"
expect "$OUT" "^all +- +[0-9T:-]+\+09:00 \([0-9ms.]+ ago\)$" "paused: all"
expect "$OUT" "^type +CO +[0-9T:-]+\+09:00 " "paused: a type"
expect "$OUT" "^resource +app\.orders +[0-9T:-]+\+09:00 " "paused: a resource"
run 0 "$J" --db "$DB" paused --json
json_is "$OUT" '[(p["scope"], p["what"]) for p in d]' \
    '[["all", null], ["type", "CO"], ["resource", "app.orders"]]' "paused --json"
json_is "$OUT" 'sorted(d[1])' '["scope", "since", "since_ms", "what"]' "paused --json fields"
json_is "$OUT" 'd[1]["since"].endswith("+09:00")' "true" "paused --json: local time"
run 0 "$J" --db "$DB" resume all
expect "$OUT" "^resumed all work$" "resume all"
run 0 "$J" --db "$DB" resume type CO --json
json_is "$OUT" 'd' '{"scope": "type", "what": "CO", "paused": false}' "resume type --json"
run 0 "$J" --db "$DB" resume resource app.orders
expect "$OUT" "^resumed resource app\.orders$" "resume resource"
run 3 "$J" --db "$DB" resume type CO
expect "$ERR" "^jobmgr: resume: no such pause: type CO" "resume of no pause"
run 0 "$J" --db "$DB" paused --json
json_is "$OUT" 'd' "[]" "every pause resumed"

# Conflicts: on and off, a pair or one type against every type.
run 0 "$J" --db "$DB" conflict FL CO on
expect "$OUT" "^conflict FL CO: on \(never together on one resource\)$" "conflict on"
run 0 "$J" --db "$DB" conflict FL CO off --json
json_is "$OUT" 'd' '{"type_a": "FL", "type_b": "CO", "exclusive": false}' "conflict off --json"
run 0 "$J" --db "$DB" conflict '*' UC on
run 0 "$J" --db "$DB" conflicts
expect "$OUT" "^TYPE A +TYPE B +TOGETHER ON ONE RESOURCE$" "conflicts header"
expect "$OUT" "^\* +UC +never$" "conflicts lists a rule just set"
expect "$OUT" "^BK +CO +never$" "conflicts lists the defaults"
run 0 "$J" --db "$DB" conflict '*' UC off
expect "$OUT" "^conflict \* UC: off \(may run together\)$" "conflict of every type"
run 0 "$J" --db "$DB" conflicts --json
json_is "$OUT" '[c for c in d if c["type_b"] == "UC"]' '[{"type_a": "*", "type_b": "UC", "exclusive": false}]' \
    "conflicts --json"
json_is "$OUT" '[c for c in d if "CO" in (c["type_a"], c["type_b"])]' \
    '[{"type_a": "BK", "type_b": "CO", "exclusive": true}, {"type_a": "CO", "type_b": "CO", "exclusive": true}, {"type_a": "CO", "type_b": "FL", "exclusive": false}]' \
    "conflicts --json in order"
run 2 "$J" --db "$DB" conflicts extra
expect "$ERR" "^jobmgr: conflicts: unexpected argument 'extra'" "conflicts takes no argument"

# Limits: the four forms, set and removed.
run 0 "$J" --db "$DB" limit 8
expect "$OUT" "^limit: at most 8 running jobs of any type in all$" "limit on every job"
run 0 "$J" --db "$DB" limit --type BK 2
expect "$OUT" "^limit: at most 2 running jobs of type BK in all$" "limit on a type"
run 0 "$J" --db "$DB" limit --resource app.orders 1 --json
json_is "$OUT" 'd' '{"type": null, "resource": "app.orders", "max_running": 1}' "limit on a resource --json"
run 0 "$J" --db "$DB" limit --type CO --resource app.orders 1
expect "$OUT" "^limit: at most 1 running job of type CO on resource app\.orders$" \
    "limit on a type on a resource"
run 0 "$J" --db "$DB" limit --type CO --resource '*' 1
expect "$OUT" "^limit: at most 1 running job of type CO on each resource$" "limit on each resource"
run 0 "$J" --db "$DB" limits
expect "$OUT" "^TYPE +RESOURCE +MAX RUNNING$" "limits header"
expect "$OUT" "^any +any +8$" "limits: every job"
expect "$OUT" "^CO +each +1$" "limits: each resource"
expect "$OUT" "^CO +app\.orders +1$" "limits: a type on a resource"
run 0 "$J" --db "$DB" limits --json
json_is "$OUT" 'len(d)' "5" "limits --json has the five"
json_is "$OUT" 'd[0]' '{"type": null, "resource": null, "max_running": 8}' "limits --json first"
run 2 "$J" --db "$DB" limits --type CO
for form in "" "--type BK" "--resource app.orders" "--type CO --resource app.orders"; do
    # shellcheck disable=SC2086 # the options and values are words
    run 0 "$J" --db "$DB" limit $form 0
    expect "$OUT" "^limit removed: jobs " "limit $form 0 removes it"
done
run 0 "$J" --db "$DB" limit --type CO --resource '*' 0
expect "$OUT" "^limit removed: jobs of type CO on each resource$" "limit on each resource removed"
run 0 "$J" --db "$DB" limits
expect "$OUT" "^no limits$" "limits after every one is removed"

# ---- schedule: interval schedules -------------------------------------------------

SC_DB=$T/sched.db
SC_RE='^SC-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
S=("$J" --db "$SC_DB" schedule)

# Usage errors: exit 2, and no database is created.
run 2 "${S[@]}"
expect "$ERR" "^jobmgr: schedule: needs a subcommand" "schedule without a subcommand"
run 2 "${S[@]}" frobnicate
expect "$ERR" "unknown subcommand 'frobnicate'" "unknown subcommand"
run 2 "${S[@]}" add
run 2 "${S[@]}" add one two --type FL --every 5m
run 2 "${S[@]}" add nightly --every 5m
expect "$ERR" "--type T is required" "add without --type"
run 2 "${S[@]}" add nightly --type FL
expect "$ERR" "give one of --cron EXPR and --every SPAN" "add without a trigger"
run 2 "${S[@]}" add nightly --type FL --every 5m --cron '0 3 * * *'
expect "$ERR" "give one of --cron EXPR and --every SPAN" "add with two triggers"
run 2 "${S[@]}" add nightly --type fl --every 5m
run 2 "${S[@]}" add nightly --type FL --every 5m --params '[1, 2]'
expect "$ERR" "not a JSON object" "add with bad --params"
for bad in "--every soon" "--every 0s" "--every 1h30" "--anchor tomorrow" "--jitter a-bit" \
    "--overlap never" "--misfire catch-up" "--misfire catch-up:0" "--misfire catch-up:1001" \
    "--misfire sometimes" "--pause-after-failures -1" "--priority high" "--max-retries 1001" \
    "--name other" "--count 3" "--bogus"; do
    # shellcheck disable=SC2086 # the option and its value are two words
    run 2 "${S[@]}" add nightly --type FL --every 5m $bad
done
run 2 "${S[@]}" add nightly --type FL --every
expect "$ERR" "needs a value" "add option without its value"
run 2 "${S[@]}" list extra
run 2 "${S[@]}" list --every 5m
for sub in show pause resume rm; do
    run 2 "${S[@]}" "$sub"
    expect "$ERR" "needs exactly one schedule id or name" "$sub without a schedule"
    run 2 "${S[@]}" "$sub" one two
done
run 2 "${S[@]}" update nightly --type FL
run 2 "${S[@]}" update --type FL --every 5m
run 2 "${S[@]}" next
run 2 "${S[@]}" next '* * * * *' --count 0
run 2 "${S[@]}" next '* * * * *' --count 101
run 2 "${S[@]}" next '* * * * *' --from yesterday
run 2 "${S[@]}" next '* * * * *' --every 5m
run 2 "$J" schedule list                             # no database anywhere
expect "$ERR" "^jobmgr: schedule: no jobs database" "schedule list without --db"
[ -e "$SC_DB" ] && fail "schedule usage errors must not create the database"
run 0 "$J" schedule --help
expect "$OUT" "^Usage: jobmgr schedule add NAME" "schedule --help"
run 0 "$J" schedule add --help
expect "$OUT" "^       jobmgr schedule next EXPR" "schedule add --help shows every subcommand"

# `next` needs no database; a bad expression is the library's error, exit 1.
run 1 "$J" schedule next 'not a cron expression'
expect "$ERR" "^jobmgr: schedule next: " "next with a bad expression"
expect_not "$ERR" "no jobs database" "next opens no database"
run 1 "$J" schedule next '61 * * * *' --json

run 0 "${S[@]}" list
expect "$OUT" "^no schedules$" "empty schedule list"
run 0 "${S[@]}" list --json
json_is "$OUT" 'd' "[]" "empty schedule list --json"

# add, with every option an interval schedule takes.
run 0 "${S[@]}" add nightly --type FL --params "$FL_PARAMS" --every 5m --jitter 30s \
    --overlap queue-one --misfire catch-up:3 --pause-after-failures 2 --namespace app \
    --priority 3 --max-retries 2
NIGHTLY=$OUT
expect "$NIGHTLY" "$SC_RE" "schedule add prints the id"
run 0 "${S[@]}" add later --type FL --params "$FL_PARAMS" --every 1d \
    --anchor 2030-01-01T00:00:00Z --overlap allow --misfire run-once --json
json_is "$OUT" 'sorted(d)' '["id"]' "schedule add --json"
LATER=$(jq_py "$OUT" 'd["id"]')
run 0 "${S[@]}" add soon --type RT --params "$RT_PARAMS" --every 2h --anchor 10m --json
run 0 "${S[@]}" add resting --type FL --params "$FL_PARAMS" --every 30s --paused

# Refused by the library: exit 1 with its reason; a taken name: exit 4.
run 4 "${S[@]}" add nightly --type FL --params "$FL_PARAMS" --every 1h
expect "$ERR" "^jobmgr: schedule add: .*'nightly' exists already" "duplicate schedule name"
run 1 "${S[@]}" add yearly --type FL --params "$FL_PARAMS" --every 400d
expect "$ERR" "^jobmgr: schedule add: interval_ms must be" "interval too long"
run 1 "${S[@]}" add zoned --type FL --params "$FL_PARAMS" --every 5m --tz UTC
expect "$ERR" "^jobmgr: schedule add: tz applies to a cron expression" "tz with an interval"
run 1 "${S[@]}" add jittery --type FL --params "$FL_PARAMS" --every 5m --jitter 2d
expect "$ERR" "^jobmgr: schedule add: jitter_ms must be" "jitter too long"
run 1 "${S[@]}" add halfway --type FL --params '{"namespace_id": "app"}' --every 5m
expect "$ERR" "^jobmgr: schedule add: .*table_name" "params the executor refuses"
run 1 "${S[@]}" add alien --type ZZ --every 5m
expect "$ERR" "^jobmgr: schedule add: " "a type nobody registered"

# show: every field, the next five fire times, the last job.
run 0 "${S[@]}" show nightly --json
json_is "$OUT" 'sorted(d)' \
    '["anchor", "anchor_ms", "catch_up_max", "consecutive_failures", "created_at", "created_at_ms", "cron", "id", "interval", "interval_ms", "jitter_ms", "last_fire", "last_fire_ms", "last_job", "last_job_id", "max_retries", "misfire", "name", "namespace", "next_fire", "next_fire_ms", "overlap", "params", "pause_after_failures", "paused", "priority", "type", "tz", "upcoming", "updated_at", "updated_at_ms"]' \
    "schedule show --json has every field"
json_is "$OUT" 'd["id"]' "$NIGHTLY" "show by name"
json_is "$OUT" '[d["name"], d["type"], d["namespace"], d["priority"], d["max_retries"]]' \
    '["nightly", "FL", "app", 3, 2]' "the job template"
json_is "$OUT" 'd["params"]["table_name"]' "orders" "params embedded as JSON"
json_is "$OUT" '[d["cron"], d["tz"], d["interval_ms"], d["interval"], d["jitter_ms"]]' \
    '[null, null, 300000, "5m", 30000]' "the interval trigger"
json_is "$OUT" '[d["overlap"], d["misfire"], d["catch_up_max"], d["pause_after_failures"], d["paused"]]' \
    '["queue-one", "catch-up", 3, 2, false]' "the policies"
json_is "$OUT" '[d["consecutive_failures"], d["last_fire"], d["last_job_id"], d["last_job"]]' \
    '[0, null, null, null]' "nothing fired yet"
json_is "$OUT" 'd["anchor_ms"] == d["created_at_ms"] and d["next_fire_ms"] - d["anchor_ms"]' \
    "300000" "an interval counts from creation"
json_is "$OUT" '[t["fire_at_ms"] - d["next_fire_ms"] for t in d["upcoming"]]' \
    "[0, 300000, 600000, 900000, 1200000]" "show --json: the next five fire times"
json_is "$OUT" 'd["upcoming"][0]["fire_at"] == d["next_fire"] and d["next_fire"].endswith("+09:00")' \
    "true" "fire times in local ISO"
run 0 "${S[@]}" show "$LATER" --json
json_is "$OUT" '[d["name"], d["anchor_ms"], d["next_fire_ms"], d["interval"]]' \
    "[\"later\", $EPOCH_2030, $EPOCH_2030, \"1d\"]" "show by id; --anchor in the future fires first then"
json_is "$OUT" '[d["overlap"], d["misfire"], d["catch_up_max"]]' '["allow", "run-once", 0]' \
    "--overlap allow --misfire run-once"
json_is "$OUT" 'd["upcoming"][4]["fire_at_ms"]' "$((EPOCH_2030 + 4 * 86400000))" "daily fire times"
run 0 "${S[@]}" show soon --json
json_is "$OUT" 'abs(d["next_fire_ms"] - d["created_at_ms"] - 600000) < 60000' "true" \
    "--anchor 10m: first fire ten minutes from now"
json_is "$OUT" 'd["interval"]' "2h" "interval shown as a span"
run 0 "${S[@]}" show resting --json
json_is "$OUT" 'd["paused"]' "true" "--paused"

run 0 "${S[@]}" show nightly
for field in id name type params namespace priority "max retries" trigger anchor jitter overlap \
    misfire "pause after" paused failures "next fire" "last fire" created updated "last job"; do
    expect "$OUT" "^$field: " "schedule show has $field"
done
expect "$OUT" "^trigger: +every 5m$" "show: the trigger"
expect "$OUT" "^misfire: +catch-up:3$" "show: the misfire policy"
expect "$OUT" "^pause after: +2 failures in a row$" "show: pause after failures"
expect "$OUT" "^next fire: +[0-9T:-]+\+09:00 \(in [0-4]m[0-9]{2}s\)$" "show: next fire, local and relative"
expect "$OUT" '^  "table_name": "orders",?$' "show: params pretty-printed"
expect "$OUT" "^last job: +-$" "show: no job yet"
checks=$((checks + 1))
[ "$(sed -n '/^upcoming:$/,/^last job:/p' <<<"$OUT" | grep -c '^  [0-9]')" -eq 5 ] ||
    fail "schedule show lists five upcoming fire times:"$'\n'"$OUT"

run 3 "${S[@]}" show nosuch
expect "$ERR" "^jobmgr: schedule show nosuch: no schedule 'nosuch'" "unknown schedule"
run 3 "${S[@]}" show SC-00000000-0000-8000-8000-000000000000 --json
for sub in pause resume rm; do
    run 3 "${S[@]}" "$sub" nosuch
    expect "$ERR" "^jobmgr: schedule $sub nosuch: " "$sub of an unknown schedule"
done
run 3 "${S[@]}" update nosuch --type FL --params "$FL_PARAMS" --every 5m

# list: by name, a row each.
run 0 "${S[@]}" list
expect "$OUT" "^NAME +ID +TRIGGER +NEXT FIRE +LAST FIRE +POLICIES +PAUSED +FAILURES$" "schedule list header"
expect "$OUT" "^nightly +$NIGHTLY +every 5m +[0-9T:-]+\+09:00 \(in [0-9ms.]+\) +- +overlap queue-one, misfire catch-up:3, jitter 30s, pause after 2 +no +0$" \
    "schedule list row"
expect "$OUT" "^later +$LATER +every 1d +2030-01-01T09:00:00\+09:00 \(in [0-9dh]+\) +- +overlap allow, misfire run-once +no +0$" \
    "schedule list: a later anchor"
expect "$OUT" "^resting .* yes +0$" "schedule list: paused"
run 0 "${S[@]}" list --json
json_is "$OUT" '[s["name"] for s in d]' '["later", "nightly", "resting", "soon"]' "schedule list --json by name"
json_is "$OUT" 'sorted(d[1])' \
    '["anchor", "anchor_ms", "catch_up_max", "consecutive_failures", "created_at", "created_at_ms", "cron", "id", "interval", "interval_ms", "jitter_ms", "last_fire", "last_fire_ms", "last_job_id", "max_retries", "misfire", "name", "namespace", "next_fire", "next_fire_ms", "overlap", "params", "pause_after_failures", "paused", "priority", "type", "tz", "updated_at", "updated_at_ms"]' \
    "schedule list --json: every field"

# pause and resume, by name and by id.
run 0 "${S[@]}" pause nightly
expect "$OUT" "^paused nightly \($NIGHTLY\)$" "schedule pause"
run 0 "${S[@]}" show "$NIGHTLY" --json
json_is "$OUT" 'd["paused"]' "true" "paused"
run 0 "${S[@]}" resume "$NIGHTLY" --json
json_is "$OUT" 'd' "{\"id\": \"$NIGHTLY\", \"name\": \"nightly\", \"paused\": false}" "schedule resume --json"
run 0 "${S[@]}" pause nightly --json
json_is "$OUT" 'd["paused"]' "true" "schedule pause --json"
run 0 "${S[@]}" resume nightly
expect "$OUT" "^resumed nightly \($NIGHTLY\)$" "schedule resume"

# watch names the schedules that fire next, soonest first, not the paused one.
run 0 "$J" --db "$SC_DB" watch --once
expect "$OUT" "^[0-9T:+-]+ next fires: nightly [0-9T:-]+\+09:00 \(in [0-9ms.]+\), soon [0-9T:-]+\+09:00 \(in [0-9ms.]+\), later 2030-01-01T09:00:00\+09:00 \(in [0-9dh]+\)$" \
    "watch --once: next fires"
run 0 "$J" --db "$SC_DB" watch --once --json
json_is "$OUT" '[f["name"] for f in d["next_fires"]]' '["nightly", "soon", "later"]' "watch --json next_fires"
json_is "$OUT" 'sorted(d["next_fires"][0])' '["id", "name", "next_fire", "next_fire_ms"]' "watch --json next fire fields"
for i in 1 2 3; do
    run 0 "${S[@]}" add "extra$i" --type FL --params "$FL_PARAMS" --every "${i}h"
done
run 0 "$J" --db "$SC_DB" watch --once --json
json_is "$OUT" 'len(d["next_fires"])' "5" "watch shows at most five schedules"
run 0 "$J" --db "$SC_DB" watch --once --json --type RT
json_is "$OUT" '[f["name"] for f in d["next_fires"]]' '["soon"]' "watch --type: its schedules only"
json_is "$OUT" '[f["next_fire_ms"] for f in d["next_fires"]] == sorted(f["next_fire_ms"] for f in d["next_fires"])' \
    "true" "watch: soonest first"

# update replaces the spec: what is not given again goes back to its default.
run 0 "${S[@]}" pause nightly
run 0 "${S[@]}" update nightly --type RT --params "$RT_PARAMS" --every 10m --name renamed --json
json_is "$OUT" 'd["id"]' "$NIGHTLY" "schedule update --json"
run 0 "${S[@]}" show "$NIGHTLY" --json
json_is "$OUT" '[d["name"], d["type"], d["interval"], d["params"]["retention_hours"]]' \
    '["renamed", "RT", "10m", 1]' "update: the new spec and --name"
json_is "$OUT" '[d["overlap"], d["misfire"], d["jitter_ms"], d["pause_after_failures"], d["namespace"], d["priority"], d["paused"]]' \
    '["skip", "skip", 0, 0, null, 0, false]' "update: options left out go back to their defaults"
json_is "$OUT" 'abs(d["next_fire_ms"] - d["updated_at_ms"] - 600000) < 60000' "true" \
    "update: a new trigger fires first after now"
NEXT_FIRE=$(jq_py "$OUT" 'd["next_fire_ms"]')
run 0 "${S[@]}" update renamed --type RT --params "$RT_PARAMS" --every 10m --paused --priority 4
expect "$OUT" "^$NIGHTLY$" "schedule update prints the id"
run 0 "${S[@]}" show renamed --json
json_is "$OUT" '[d["paused"], d["priority"], d["next_fire_ms"]]' "[true, 4, $NEXT_FIRE]" \
    "update: --paused, and the same trigger keeps its next fire time"
run 4 "${S[@]}" update renamed --type RT --params "$RT_PARAMS" --every 10m --name later
expect "$ERR" "^jobmgr: schedule update renamed: .*'later' exists already" "update to a taken name"
run 1 "${S[@]}" update renamed --type RT --params "$RT_PARAMS" --every 10m --jitter 2d
expect "$ERR" "^jobmgr: schedule update renamed: jitter_ms must be" "update with a bad spec"
run 2 "${S[@]}" update renamed --type RT --every 10m --misfire catch-up:0

# rm: the schedule goes, its jobs would stay.
run 0 "${S[@]}" rm renamed
expect "$OUT" "^deleted renamed \($NIGHTLY\)$" "schedule rm"
run 3 "${S[@]}" show "$NIGHTLY"
run 0 "${S[@]}" rm "$LATER" --json
json_is "$OUT" 'd' "{\"id\": \"$LATER\", \"name\": \"later\", \"deleted\": true}" "schedule rm --json"
run 0 "${S[@]}" list --json
json_is "$OUT" '[s["name"] for s in d]' '["extra1", "extra2", "extra3", "resting", "soon"]' "schedule list after rm"
run 0 "$J" --db "$SC_DB" list --json
json_is "$OUT" 'len(d["jobs"])' "0" "no manager ran: no schedule fired"

# ---- schedule: cron expressions --------------------------------------------------

# These need the cron module; without it (a build where cron expressions
# are refused) they are skipped with a note, and the interval checks above
# still ran.
cron_ran=0
if "$J" schedule next '* * * * *' >/dev/null 2>&1; then
    cron_ran=1
    # Previews need no database; times are shown in local time (JST).
    run 0 "$J" schedule next '0 3 * * *' --tz UTC --from 2030-01-01T00:00:00Z --count 3 --json
    json_is "$OUT" '[t["fire_at_ms"] for t in d["fire_times"]]' \
        "[$((EPOCH_2030 + 3 * 3600000)), $((EPOCH_2030 + 27 * 3600000)), $((EPOCH_2030 + 51 * 3600000))]" \
        "schedule next --json"
    json_is "$OUT" '[d["expr"], d["tz"], d["from_ms"]]' "[\"0 3 * * *\", \"UTC\", $EPOCH_2030]" \
        "schedule next --json echoes its input"
    run 0 "$J" schedule next '0 3 * * *' --from 2030-01-01T00:00:00Z --count 2
    [ "$OUT" = $'2030-01-01T12:00:00+09:00\n2030-01-02T12:00:00+09:00' ] ||
        fail "schedule next prints local ISO times, one a line: '$OUT'"
    run 0 "$J" schedule next '@hourly'
    checks=$((checks + 1))
    [ "$(wc -l <<<"$OUT")" -eq 5 ] || fail "schedule next prints five times by default: '$OUT'"
    run 0 "$J" schedule next '*/15 9-17 * * mon-fri' --count 100 --json
    json_is "$OUT" 'len(d["fire_times"])' "100" "schedule next --count 100"
    run 0 "$J" schedule next '0 0 * * *' --from 10m --count 1 --json
    json_is "$OUT" 'd["fire_times"][0]["fire_at_ms"] > d["from_ms"]' "true" "--from relative"
    run 3 "$J" schedule next '0 0 30 2 *'
    expect "$ERR" "^jobmgr: schedule next: " "an expression that never fires"
    run 1 "$J" schedule next '0 3 * * *' --tz Mars/Olympus_Mons
    expect "$ERR" "^jobmgr: schedule next: " "an unknown zone"
    if [ -e /usr/share/zoneinfo/Europe/Berlin ]; then
        run 0 "$J" schedule next '0 3 * * *' --tz Europe/Berlin --from 2030-01-01T00:00:00Z --count 1 --json
        json_is "$OUT" 'd["fire_times"][0]["fire_at_ms"]' "$((EPOCH_2030 + 2 * 3600000))" \
            "--tz Europe/Berlin: 03:00 CET is 02:00 UTC"
    fi

    run 0 "${S[@]}" add every5 --type FL --params "$FL_PARAMS" --cron '*/5 * * * *' --tz UTC --json
    CRON5=$(jq_py "$OUT" 'd["id"]')
    run 0 "${S[@]}" show every5 --json
    json_is "$OUT" '[d["cron"], d["tz"], d["interval_ms"], d["anchor_ms"]]' \
        '["*/5 * * * *", "UTC", null, null]' "a cron schedule"
    json_is "$OUT" '[t["fire_at_ms"] % 300000 for t in d["upcoming"]]' "[0, 0, 0, 0, 0]" \
        "cron upcoming on the five minutes"
    json_is "$OUT" '[b["fire_at_ms"] - a["fire_at_ms"] for a, b in zip(d["upcoming"], d["upcoming"][1:])]' \
        "[300000, 300000, 300000, 300000]" "cron upcoming from jm_schedule_next"
    run 0 "${S[@]}" show every5
    expect "$OUT" "^trigger: +\*/5 \* \* \* \* \(UTC\)$" "show: a cron trigger"
    expect_not "$OUT" "^anchor: " "no anchor for a cron trigger"
    run 0 "${S[@]}" list
    expect "$OUT" "^every5 +$CRON5 +\*/5 \* \* \* \* \(UTC\) " "list: a cron trigger with its zone"
    run 0 "${S[@]}" add daily --type FL --params "$FL_PARAMS" --cron '@daily'
    run 0 "${S[@]}" show daily --json
    json_is "$OUT" 'd["tz"]' "null" "no --tz: UTC"
    # Leap days: each comes within eight years of the one before, so five
    # span sixteen years.
    run 0 "${S[@]}" add leap --type FL --params "$FL_PARAMS" --cron '0 0 29 2 *'
    run 0 "${S[@]}" show leap --json
    json_is "$OUT" 'len(d["upcoming"]) == 5 and d["upcoming"][0]["fire_at_ms"] == d["next_fire_ms"]' \
        "true" "show: a rare expression lists its fire times years apart"
    run 0 "${S[@]}" rm leap
    run 1 "${S[@]}" add badcron --type FL --params "$FL_PARAMS" --cron '61 * * * *'
    expect "$ERR" "^jobmgr: schedule add: " "add with a bad cron expression"
    run 1 "${S[@]}" add anchored --type FL --params "$FL_PARAMS" --cron '@hourly' --anchor 1h
    expect "$ERR" "anchor_ms applies to an interval" "--anchor with --cron"
    run 1 "${S[@]}" add nowhere --type FL --params "$FL_PARAMS" --cron '@hourly' --tz Mars/Olympus_Mons
    # An interval becomes a cron schedule.
    run 0 "${S[@]}" update soon --type RT --params "$RT_PARAMS" --cron '30 2 * * 1-5' --tz UTC \
        --misfire run-once --pause-after-failures 3
    run 0 "${S[@]}" show soon --json
    json_is "$OUT" '[d["cron"], d["interval_ms"], d["next_fire_ms"] % 86400000]' \
        '["30 2 * * 1-5", null, 9000000]' "update: an interval becomes cron"
    json_is "$OUT" '[d["misfire"], d["pause_after_failures"]]' '["run-once", 3]' \
        "update: the policies with a cron trigger"
    run 0 "$J" --db "$SC_DB" watch --once --json
    json_is "$OUT" '"every5" in [f["name"] for f in d["next_fires"]]' "true" "watch: cron schedules too"
    run 0 "${S[@]}" rm every5
    run 0 "${S[@]}" rm daily
else
    echo "test_cli: cron expressions are refused by this build (no cron module):" \
        "the cron checks of 'schedule' did not run" >&2
fi

# ---- policy: rows of the jobs database -------------------------------------------

PO_DB=$T/policy.db
PO_RE='^PO-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
P=("$J" --db "$PO_DB" policy)

# Usage errors: exit 2, and no database is created.
run 2 "${P[@]}"
expect "$ERR" "^jobmgr: policy: needs a subcommand" "policy without a subcommand"
run 2 "${P[@]}" frobnicate
expect "$ERR" "unknown subcommand 'frobnicate'" "policy: unknown subcommand"
run 2 "${P[@]}" add --kind flush --rows 10
expect "$ERR" "needs exactly one policy name" "policy add without a name"
run 2 "${P[@]}" add one two --kind flush --rows 10
run 2 "${P[@]}" add flusher --rows 10
expect "$ERR" "--kind K is required" "policy add without --kind"
run 2 "${P[@]}" add flusher --kind flush --rows
expect "$ERR" "needs a value" "policy add option without its value"
for bad in "--kind vacuum" "--kind Flush" "--table-type user" "--rows -1" "--rows many" \
    "--max-age soon" "--max-age 1h30" "--priority high" "--bogus" "--engine $T"; do
    # shellcheck disable=SC2086 # the option and its value are two words
    run 2 "${P[@]}" add flusher --kind flush --rows 10 $bad
done
for bad in "--segments -1" "--small-files x" "--small-bytes 1M" "--small-bytes 2T"; do
    # shellcheck disable=SC2086 # the option and its value are two words
    run 2 "${P[@]}" add compactor --kind compact --segments 2 $bad
done
for bad in "--every 1h30" "--every 0.5s" "--retention-hours -1" "--retention-hours 2147483648"; do
    # shellcheck disable=SC2086 # the option and its value are two words
    run 2 "${P[@]}" add rt --kind retention --every 1h --retention-hours 1 $bad
done
# A threshold the kind does not use would be kept and never read.
run 2 "${P[@]}" add compactor --kind compact --segments 4 --rows 10
expect "$ERR" "--rows applies to --kind flush, not compact" "policy add: a threshold of another kind"
run 2 "${P[@]}" add flusher --kind flush --rows 10 --every 1h
expect "$ERR" "--every applies to --kind retention or stream-eviction, not flush" \
    "policy add: --every with flush"
run 2 "${P[@]}" add evictor --kind stream-eviction --every 1h --retention-hours 1
run 2 "${P[@]}" list extra
run 2 "${P[@]}" list --rows 10
for sub in show pause resume rm; do
    run 2 "${P[@]}" "$sub"
    expect "$ERR" "needs exactly one policy id or name" "policy $sub without a policy"
    run 2 "${P[@]}" "$sub" one two
done
run 2 "${P[@]}" eval
expect "$ERR" "eval: --engine DIR is required" "policy eval without --engine"
run 2 "${P[@]}" eval --engine "$T/engine" extra
run 2 "${P[@]}" eval --engine "$T/engine" --rows 10
run 2 "$J" policy list                               # no database anywhere
expect "$ERR" "^jobmgr: policy: no jobs database" "policy list without --db"
[ -e "$PO_DB" ] && fail "policy usage errors must not create the database"
run 0 "$J" policy --help
expect "$OUT" "^Usage: jobmgr policy add NAME --kind" "policy --help"
run 0 "$J" policy eval --help
expect "$OUT" "^       jobmgr policy eval --engine DIR" "policy eval --help shows every subcommand"

run 0 "${P[@]}" list
expect "$OUT" "^no policies$" "empty policy list"
run 0 "${P[@]}" list --json
json_is "$OUT" 'd' "[]" "empty policy list --json"

# add: each kind, with every option it takes.
run 0 "${P[@]}" add flush-orders --kind flush --namespace app --table orders --rows 10000 \
    --max-age 1m --priority 5
FLUSH_POLICY=$OUT
expect "$FLUSH_POLICY" "$PO_RE" "policy add prints the id"
run 0 "${P[@]}" add compact-users --kind compact --table-type User --segments 8 \
    --small-files 4 --small-bytes 65536 --json
json_is "$OUT" 'sorted(d)' '["id"]' "policy add --json"
COMPACT_POLICY=$(jq_py "$OUT" 'd["id"]')
run 0 "${P[@]}" add retention-app --kind retention --namespace app --every 1d \
    --retention-hours 720
run 0 "${P[@]}" add evict-streams --kind stream-eviction --namespace app --every 5m --paused
run 0 "${P[@]}" add flush-old --kind flush --max-age 90s

# Refused by the library: exit 1 with its reason; a taken name: exit 4.
run 4 "${P[@]}" add flush-orders --kind flush --rows 5
expect "$ERR" "^jobmgr: policy add: .*'flush-orders' exists already" "duplicate policy name"
run 1 "${P[@]}" add flusher --kind flush
expect "$ERR" "^jobmgr: policy add: a flush policy needs rows or max_age_ms" "flush without a threshold"
run 1 "${P[@]}" add flusher --kind flush --rows 10 --table orders
expect "$ERR" "^jobmgr: policy add: a policy on one table needs its namespace" "--table without --namespace"
run 1 "${P[@]}" add compactor --kind compact
expect "$ERR" "^jobmgr: policy add: a compact policy needs segments or small_files" "compact without a threshold"
run 1 "${P[@]}" add rt --kind retention --retention-hours 24
expect "$ERR" "^jobmgr: policy add: a retention policy needs every_ms" "retention without --every"
run 1 "${P[@]}" add rt --kind retention --every 1h
expect "$ERR" "^jobmgr: policy add: a retention policy needs retention_hours" "retention without hours"
run 1 "${P[@]}" add evictor --kind stream-eviction --every 1h --table-type User
expect "$ERR" "^jobmgr: policy add: stream eviction applies to stream tables only" "eviction of user tables"
run 1 "${P[@]}" add flusher --kind flush --rows 10 --namespace 'no/slash'
expect "$ERR" "^jobmgr: policy add: " "a namespace the library refuses"

# show: every field, by name and by id.
run 0 "${P[@]}" show flush-orders --json
json_is "$OUT" 'sorted(d)' \
    '["created_at", "created_at_ms", "every", "every_ms", "id", "job_type", "kind", "max_age", "max_age_ms", "name", "namespace", "paused", "priority", "retention_hours", "rows", "segments", "small_bytes", "small_files", "table", "table_type", "updated_at", "updated_at_ms"]' \
    "policy show --json has every field"
json_is "$OUT" '[d["id"], d["name"], d["kind"], d["job_type"], d["namespace"], d["table"], d["table_type"]]' \
    "[\"$FLUSH_POLICY\", \"flush-orders\", \"flush\", \"FL\", \"app\", \"orders\", null]" \
    "policy show --json: the target"
json_is "$OUT" '[d["rows"], d["max_age_ms"], d["max_age"], d["every_ms"], d["priority"], d["paused"]]' \
    '[10000, 60000, "1m", null, 5, false]' "policy show --json: the flush rule"
json_is "$OUT" 'd["created_at"].endswith("+09:00")' "true" "policy times in local ISO"
run 0 "${P[@]}" show "$COMPACT_POLICY" --json
json_is "$OUT" '[d["name"], d["kind"], d["job_type"], d["namespace"], d["table_type"], d["segments"], d["small_files"], d["small_bytes"]]' \
    '["compact-users", "compact", "CO", null, "User", 8, 4, 65536]' "policy show by id: a compact policy"
run 0 "${P[@]}" show retention-app --json
json_is "$OUT" '[d["kind"], d["job_type"], d["every_ms"], d["every"], d["retention_hours"]]' \
    '["retention", "RT", 86400000, "1d", 720]' "a retention policy"
run 0 "${P[@]}" show evict-streams --json
json_is "$OUT" '[d["kind"], d["job_type"], d["every"], d["paused"]]' \
    '["stream-eviction", "SE", "5m", true]' "--paused, and a stream eviction policy"
run 0 "${P[@]}" show flush-orders
for field in id name kind "job type" target namespace table "table type" rule rows "max age" \
    priority paused created updated; do
    expect "$OUT" "^$field: " "policy show has $field"
done
expect "$OUT" "^target: +app\.orders$" "policy show: one table"
expect "$OUT" "^rule: +rows>=10000 or age>=1m$" "policy show: the rule"
expect "$OUT" "^created: +[0-9T:-]+\+09:00$" "policy show: local time"
run 0 "${P[@]}" show compact-users
expect "$OUT" "^small bytes: +64KiB$" "policy show: small bytes"

run 3 "${P[@]}" show nosuch
expect "$ERR" "^jobmgr: policy show nosuch: no policy 'nosuch'" "unknown policy"
run 3 "${P[@]}" show PO-00000000-0000-8000-8000-000000000000 --json
for sub in pause resume rm; do
    run 3 "${P[@]}" "$sub" nosuch
    expect "$ERR" "^jobmgr: policy $sub nosuch: " "policy $sub of an unknown policy"
done

# list: by name, a row each, with its target and rule in words.
run 0 "${P[@]}" list
expect "$OUT" "^NAME +ID +KIND +TARGET +RULE +PAUSED$" "policy list header"
expect "$OUT" "^flush-orders +$FLUSH_POLICY +flush +app\.orders +rows>=10000 or age>=1m +no$" \
    "policy list: a flush policy on one table"
expect "$OUT" "^compact-users +$COMPACT_POLICY +compact +all User tables +segments>=8 or small files>4 \(<64KiB\) +no$" \
    "policy list: a compact policy on a table type"
expect "$OUT" "^retention-app +PO-[0-9a-f-]+ +retention +all tables in app +deleted>720h, every 1d +no$" \
    "policy list: a retention policy on a namespace"
expect "$OUT" "^evict-streams +PO-[0-9a-f-]+ +stream-eviction +all Stream tables in app +past TTL, every 5m +yes$" \
    "policy list: stream eviction looks at stream tables"
expect "$OUT" "^flush-old +PO-[0-9a-f-]+ +flush +all tables +age>=1m30s +no$" \
    "policy list: every table"
run 0 "${P[@]}" list --json
json_is "$OUT" '[p["name"] for p in d]' \
    '["compact-users", "evict-streams", "flush-old", "flush-orders", "retention-app"]' \
    "policy list --json by name"
json_is "$OUT" 'sorted(d[0]) == sorted(["created_at", "created_at_ms", "every", "every_ms", "id", "job_type", "kind", "max_age", "max_age_ms", "name", "namespace", "paused", "priority", "retention_hours", "rows", "segments", "small_bytes", "small_files", "table", "table_type", "updated_at", "updated_at_ms"])' \
    "true" "policy list --json: every field"

# pause, resume and rm, by name and by id.
run 0 "${P[@]}" pause flush-orders
expect "$OUT" "^paused flush-orders \($FLUSH_POLICY\)$" "policy pause"
run 0 "${P[@]}" show "$FLUSH_POLICY" --json
json_is "$OUT" 'd["paused"]' "true" "policy paused"
run 0 "${P[@]}" resume "$FLUSH_POLICY" --json
json_is "$OUT" 'd' "{\"id\": \"$FLUSH_POLICY\", \"name\": \"flush-orders\", \"paused\": false}" \
    "policy resume --json"
run 0 "${P[@]}" pause flush-orders --json
json_is "$OUT" 'd["paused"]' "true" "policy pause --json"
run 0 "${P[@]}" resume flush-orders
expect "$OUT" "^resumed flush-orders \($FLUSH_POLICY\)$" "policy resume"
run 0 "${P[@]}" rm flush-old
expect "$OUT" "^deleted flush-old \(PO-[0-9a-f-]+\)$" "policy rm"
run 0 "${P[@]}" rm "$COMPACT_POLICY" --json
json_is "$OUT" 'd' "{\"id\": \"$COMPACT_POLICY\", \"name\": \"compact-users\", \"deleted\": true}" \
    "policy rm --json"
run 3 "${P[@]}" show compact-users
run 0 "${P[@]}" list --json
json_is "$OUT" '[p["name"] for p in d]' '["evict-streams", "flush-orders", "retention-app"]' \
    "policy list after rm"
run 0 "$J" --db "$PO_DB" list --json
json_is "$OUT" 'len(d["jobs"])' "0" "no manager ran: no policy created a job"

# ---- run: the built-in executors on a real engine ---------------------------------

ENGINE=$T/engine
RUN_DB=$T/run.db
run 0 "$MAKE_ENGINE" "$ENGINE" 50
run 0 "$J" --db "$RUN_DB" create FL --params "$FL_PARAMS"
FLUSH=$OUT
# An engine directory that cannot be one (a file): the tool reports it.
checks=$((checks + 1))
"$J" --db "$RUN_DB" run --engine "$DB" --workers 1 >/dev/null 2>"$T/stderr" &&
    fail "run on a file as engine directory succeeded"
expect "$(cat "$T/stderr")" "^jobmgr: opening engine " "run on a bad engine directory"

"$J" --db "$RUN_DB" run --workers 2 --engine "$ENGINE" --io-limit high=10M,normal=5M,normal=4K \
    >"$T/run.out" 2>"$T/run.err" &
RUN_PID=$!
bg_pids+=("$RUN_PID")
job_done() {
    "$J" --db "$RUN_DB" show "$FLUSH" --json 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "completed")'
}
checks=$((checks + 1))
if wait_for "$WAIT_LIMIT" job_done; then
    run 0 "$J" --db "$RUN_DB" show "$FLUSH" --json
    json_is "$OUT" 'd["result"]["rows_flushed"]' "50" "the flush job flushed the rows"
    json_is "$OUT" 'd["progress"] == 1' "true" "a finished job's progress is 1"
    run 0 "$J" --db "$RUN_DB" show "$FLUSH"
    expect "$OUT" '^  "rows_flushed": 50,?$' "show pretty-prints the result"
else
    fail "the flush job did not complete under jobmgr run: $(cat "$T/run.err")"
fi
# A schedule added while `run` runs: its manager fires it, and the jobs
# carry the schedule's id and fire time.
run 0 "$J" --db "$RUN_DB" schedule add retention --type RT --params "$RT_PARAMS" --every 1s
TICK=$OUT
scheduled_job_done() {
    "$J" --db "$RUN_DB" list --type RT --status completed --json 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(not json.load(sys.stdin)["jobs"])'
}
checks=$((checks + 1))
if wait_for "$WAIT_LIMIT" scheduled_job_done; then
    run 0 "$J" --db "$RUN_DB" list --type RT --status completed --json
    TICK_JOB=$(jq_py "$OUT" 'd["jobs"][0]["id"]')
    json_is "$OUT" 'd["jobs"][0]["schedule_id"]' "$TICK" "list --json: the job's schedule"
    json_is "$OUT" 'd["jobs"][0]["fire_time_ms"] == d["jobs"][0]["run_at_ms"]' "true" \
        "list --json: the job's fire time, when it was due (no jitter)"
    run 0 "$J" --db "$RUN_DB" show "$TICK_JOB"
    expect "$OUT" "^schedule: +$TICK$" "show: the job's schedule"
    expect "$OUT" "^fire time: +[0-9T:-]+\+09:00$" "show: the job's fire time"
    run 0 "$J" --db "$RUN_DB" schedule pause retention
    run 0 "$J" --db "$RUN_DB" schedule show retention --json
    json_is "$OUT" 'd["last_fire_ms"] is not None and d["last_job"]["schedule_id"] == d["id"]' "true" \
        "schedule show: the last fire and its job"
    json_is "$OUT" 'd["last_job"]["id"] == d["last_job_id"]' "true" "schedule show --json: last_job"
    run 0 "$J" --db "$RUN_DB" schedule show retention
    expect "$OUT" "^last job: +RT-[0-9a-f-]+ [a-z]+$" "schedule show: the last job and its status"
    expect "$OUT" "^last fire: +[0-9T:-]+\+09:00 \([0-9ms.]+ ago\)$" "schedule show: the last fire"
else
    fail "the schedule fired no job under jobmgr run: $(cat "$T/run.err")"
fi
run 0 "$J" --db "$RUN_DB" schedule rm retention
kill -INT "$RUN_PID"
checks=$((checks + 1))
if wait_exit "$RUN_PID"; then
    [ "$RC" -eq 0 ] || fail "jobmgr run exited $RC after SIGINT: $(cat "$T/run.err")"
else
    fail "jobmgr run did not stop within ${WAIT_LIMIT}s of SIGINT"
    kill -KILL "$RUN_PID" 2>/dev/null
fi
expect "$(cat "$T/run.err")" "SIGINT: stopping" "run reports the stop"
expect "$(cat "$T/run.err")" "^jobmgr: I/O budget of the high class: 10485760 bytes/s$" \
    "run --io-limit: the high class's budget"
expect "$(cat "$T/run.err")" "^jobmgr: I/O budget of the normal class: 4096 bytes/s$" \
    "run --io-limit: the last rate given for a class stands"
run 0 "$J" --db "$RUN_DB" stats --json
json_is "$OUT" 'd["types"]["FL"]["by_status"]["completed"]' "1" "stats after run"

# ---- policy eval and run: policies on a real engine ---------------------------------

# A table with 50 buffered rows and a flush policy that asks for 10: one
# evaluation creates one flush job, keyed to the table; while it waits, a
# second creates none; `run` then flushes the table.
PO_ENGINE=$T/policy-engine
run 0 "$MAKE_ENGINE" "$PO_ENGINE" 50
PE=("$J" --db "$PO_ENGINE/jobs.db")             # eval's default database, named
run 0 "${PE[@]}" policy add flush-orders --kind flush --namespace app --table orders --rows 10
run 0 "${PE[@]}" policy add idle --kind flush --namespace app --rows 1000
run 0 "${PE[@]}" policy add resting --kind flush --rows 1 --paused
run 0 "$J" policy eval --engine "$PO_ENGINE" --json # no --db: DIR/jobs.db
json_is "$OUT" 'd' '{"created": 1}' "policy eval --json: one job for the table over its threshold"
run 0 "${PE[@]}" list --json
json_is "$OUT" '[(j["type"], j["idempotency_key"], j["namespace"], j["status"]) for j in d["jobs"]]' \
    '[["FL", "policy:flush:app.orders", "app", "queued"]]' "the policy's job and its key"
json_is "$OUT" 'd["jobs"][0]["params"]["table_name"]' "orders" "the policy's job flushes the table"
POLICY_JOB=$(jq_py "$OUT" 'd["jobs"][0]["id"]')
run 0 "$J" policy eval --engine "$PO_ENGINE"
expect "$OUT" "^created 0 jobs$" "policy eval: none while the table's job waits"
# An engine directory that cannot be one (a file): the tool reports it.
checks=$((checks + 1))
"$J" --db "$T/other.db" policy eval --engine "$DB" >/dev/null 2>"$T/stderr" &&
    fail "policy eval on a file as engine directory succeeded"
expect "$(cat "$T/stderr")" "^jobmgr: opening engine " "policy eval on a bad engine directory"

# --policy-interval: the loop evaluates again every second; the job runs.
"${PE[@]}" run --workers 1 --engine "$PO_ENGINE" --policy-interval 1s \
    >"$T/policy-run.out" 2>"$T/policy-run.err" &
PO_RUN_PID=$!
bg_pids+=("$PO_RUN_PID")
policy_job_done() {
    "${PE[@]}" show "$POLICY_JOB" --json 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "completed")'
}
checks=$((checks + 1))
if wait_for "$WAIT_LIMIT" policy_job_done; then
    # The engine is open in one process at a time.
    run 6 "$J" policy eval --engine "$PO_ENGINE"
    expect "$ERR" "^jobmgr: opening engine .*in use" "policy eval beside run on the engine"
else
    fail "the policy's flush job did not complete under jobmgr run: $(cat "$T/policy-run.err")"
fi
kill -INT "$PO_RUN_PID"
checks=$((checks + 1))
if wait_exit "$PO_RUN_PID"; then
    [ "$RC" -eq 0 ] || fail "jobmgr run --policy-interval exited $RC: $(cat "$T/policy-run.err")"
else
    fail "jobmgr run --policy-interval did not stop within ${WAIT_LIMIT}s of SIGINT"
    kill -KILL "$PO_RUN_PID" 2>/dev/null
fi
run 0 "${PE[@]}" list --type FL --json
json_is "$OUT" '[(j["id"], j["status"], j["result"]["rows_flushed"]) for j in d["jobs"]]' \
    "[[\"$POLICY_JOB\", \"completed\", 50]]" "run flushed the table once, by the policy's job"
run 0 "$J" policy eval --engine "$PO_ENGINE" --json
json_is "$OUT" 'd["created"]' "0" "policy eval: nothing buffered, nothing to flush"

# ---- watch: plain lines -----------------------------------------------------------

WATCH_DB=$T/watch.db
GATE=$T/gate
"$SLOW_JOB" "$WATCH_DB" "$GATE" >"$T/slow.out" 2>"$T/slow.err" &
SLOW_PID=$!
bg_pids+=("$SLOW_PID")
slow_running() {
    [ -s "$T/slow.out" ] || return 1
    "$J" --db "$WATCH_DB" show "$(head -n1 "$T/slow.out")" --json 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (d["status"] == "running" and d["progress"] == 0.5))'
}
checks=$((checks + 1))
if ! wait_for "$WAIT_LIMIT" slow_running; then
    fail "the slow job did not start running with progress 0.5: $(cat "$T/slow.err")"
fi
SLOW=$(head -n1 "$T/slow.out")
run 0 "$J" --db "$WATCH_DB" schedule add hourly --type FL --params "$FL_PARAMS" --every 1h

run 0 "$J" --db "$WATCH_DB" watch --once
expect "$OUT" "^[0-9T:+-]+ $SLOW running \[#{10}\.{10}\]  50% elapsed " "watch --once plain line"
run 0 "$J" --db "$WATCH_DB" watch --once --json
json_is "$OUT" 'd["running"][0]["id"]' "$SLOW" "watch --json"
run 0 "$J" --db "$DB" watch --once
expect "$OUT" "no running jobs" "watch with nothing running"
run 0 "$J" --db "$WATCH_DB" list --status running
expect "$OUT" "^$SLOW +running " "list shows the running job"
expect_not "$OUT" "RESOURCE|BLOCKED BY" "list: no resource column when no job has one"
# Its type is not registered in the tool, so the tool cannot judge a cancel.
run 1 "$J" --db "$WATCH_DB" cancel "$SLOW"

"$J" --db "$WATCH_DB" watch --interval 100 >"$T/watch.out" 2>"$T/watch.err" &
WATCH_PID=$!
bg_pids+=("$WATCH_PID")
three_snapshots() { [ "$(grep -c " $SLOW running " "$T/watch.out")" -ge 3 ]; }
checks=$((checks + 1))
wait_for "$WAIT_LIMIT" three_snapshots || fail "watch printed no snapshots every interval"
kill -INT "$WATCH_PID"
checks=$((checks + 1))
if wait_exit "$WATCH_PID"; then
    [ "$RC" -eq 0 ] || fail "watch exited $RC after SIGINT"
else
    fail "watch did not stop on SIGINT"
fi
expect_not "$(cat "$T/watch.out")" $'\033' "plain watch output has no escape codes"

# ---- watch: on a terminal, through tmux -------------------------------------------

tmux_ran=0
if command -v tmux >/dev/null 2>&1; then
    tmux_ran=1
    TM=(tmux -L "$tmux_socket" -f /dev/null)
    # A session that lives until cleanup: when the watch session ends, the
    # server must not exit (it would, with no session left) while the next
    # new-session is connecting to it.
    "${TM[@]}" new-session -d -s keep "sleep 3600"
    "${TM[@]}" new-session -d -s watch -x 100 -y 20 \
        "env -u NO_COLOR TZ=$TZ '$J' --db '$WATCH_DB' watch --interval 200 2>'$T/watch.err'; echo \$? >'$T/tmux.rc'"
    pane() { "${TM[@]}" capture-pane -p -t watch "$@" 2>/dev/null; }
    shows_job() { pane | grep -q "$SLOW" && pane | grep -Eq '\[#{10}\.{10}\]  50%'; }
    checks=$((checks + 1))
    if wait_for "$WAIT_LIMIT" shows_job; then
        FIRST=$(pane)
        changed() { [ "$(pane)" != "$FIRST" ]; }
        checks=$((checks + 1))
        wait_for "$WAIT_LIMIT" changed || fail "watch did not refresh on the terminal"
        SCREEN=$(pane -S - -E -)
        expect "$SCREEN" "^ID +PROGRESS +ELAPSED +NODE +MESSAGE" "watch table header"
        expect "$SCREEN" "^next fires: hourly in [0-9]+m[0-9]+s$" "watch: the next fires on a terminal"
        checks=$((checks + 1))
        [ "$(grep -c 'jobmgr watch' <<<"$SCREEN")" -eq 1 ] ||
            fail "watch scrolled instead of redrawing in place:"$'\n'"$SCREEN"
        checks=$((checks + 1))
        [ "$(grep -c '^ID ' <<<"$SCREEN")" -eq 1 ] || fail "duplicate headers on the terminal"
        checks=$((checks + 1))
        hist=$("${TM[@]}" display-message -p -t watch '#{history_size}')
        [ "$hist" = "0" ] || fail "watch pushed $hist lines into the scrollback"
        expect "$(pane -e)" $'\033\\[[0-9;]*36m\\[#' "progress bar coloured on a terminal"
    else
        fail "watch on a terminal never showed the job and its bar:"$'\n'"$(pane)"
    fi
    "${TM[@]}" send-keys -t watch q

    # Colours on a terminal, unless NO_COLOR is set (or --no-color).
    "${TM[@]}" new-session -d -s colour -x 160 -y 10 \
        "env -u NO_COLOR '$J' --db '$WATCH_DB' list; echo list-done; sleep 60"
    "${TM[@]}" new-session -d -s nocolour -x 160 -y 10 \
        "NO_COLOR=1 '$J' --db '$WATCH_DB' list; '$J' --db '$WATCH_DB' list --no-color; echo list-done; sleep 60"
    listed() { "${TM[@]}" capture-pane -p -t "$1" 2>/dev/null | grep -q list-done; }
    checks=$((checks + 1))
    if wait_for "$WAIT_LIMIT" listed colour && wait_for "$WAIT_LIMIT" listed nocolour; then
        expect "$("${TM[@]}" capture-pane -p -e -t colour)" $'\033\\[[0-9;]*36mrunning' \
            "list colours the status on a terminal"
        expect_not "$("${TM[@]}" capture-pane -p -e -t nocolour)" $'\033\\[[0-9;]*3[0-9]m' \
            "NO_COLOR and --no-color turn colours off"
    else
        fail "list in a terminal did not finish"
    fi
    checks=$((checks + 1))
    if wait_for "$WAIT_LIMIT" test -s "$T/tmux.rc"; then
        [ "$(cat "$T/tmux.rc")" = "0" ] || fail "watch exited $(cat "$T/tmux.rc") after q"
    else
        fail "watch did not quit on q"
    fi
fi

# ---- pauses and limits under a running manager ------------------------------------

# The slow job runs (in its own process): pause-job only asks it to yield,
# and resume-job withdraws the request.
run 0 "$J" --db "$WATCH_DB" pause-job "$SLOW"
expect "$OUT" "^pause requested for $SLOW \(running\)$" "pause-job of a running job"
run 0 "$J" --db "$WATCH_DB" show "$SLOW"
expect "$OUT" "^status: +running \(pause requested\)$" "show: a pause requested"
run 5 "$J" --db "$WATCH_DB" pause-job "$SLOW"
expect "$ERR" "pause already requested" "pause-job twice"
run 0 "$J" --db "$WATCH_DB" resume-job "$SLOW"
expect "$OUT" "^pause request withdrawn for $SLOW \(running\)$" "resume-job of a running job"

# One running job in all: while the slow job runs, a flush waits, and
# `list` and `show` say what holds it; then a pause of its type does; once
# that ends, it runs. The manager keeps one of its two workers for flushes.
run 0 "$J" --db "$WATCH_DB" limit 1
run 0 "$J" --db "$WATCH_DB" create FL --params "$FL_PARAMS"
HELD=$OUT
"$J" --db "$WATCH_DB" run --engine "$ENGINE" --workers 2 --high-workers 1 \
    >"$T/held-run.out" 2>"$T/held-run.err" &
HELD_PID=$!
bg_pids+=("$HELD_PID")
blocked_by() {
    "$J" --db "$WATCH_DB" show "$HELD" --json 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["blocked_by"] != sys.argv[1])' "$1"
}
checks=$((checks + 1))
if wait_for "$WAIT_LIMIT" blocked_by 'limit:*@*'; then
    run 0 "$J" --db "$WATCH_DB" list --status queued
    expect "$OUT" "^ID +STATUS +NAMESPACE +RESOURCE +KEY +PRI +RETRIES +CREATED +BLOCKED BY +MESSAGE$" \
        "list: the resource and blocked-by columns"
    expect "$OUT" "^$HELD +queued +- +app\.orders +- .* limit:\*@\* " "list: what holds the job"
    run 0 "$J" --db "$WATCH_DB" show "$HELD"
    expect "$OUT" "^blocked by: +limit:\*@\*$" "show: blocked by a limit"
else
    fail "the flush was not held back by the limit: $(cat "$T/held-run.err")"
fi
run 0 "$J" --db "$WATCH_DB" pause type FL
run 0 "$J" --db "$WATCH_DB" limit 0
checks=$((checks + 1))
wait_for "$WAIT_LIMIT" blocked_by 'paused:type:FL' ||
    fail "the flush was not held back by the pause of its type: $(cat "$T/held-run.err")"
run 0 "$J" --db "$WATCH_DB" resume type FL
held_done() {
    "$J" --db "$WATCH_DB" show "$HELD" --json 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["status"] != "completed" or d["blocked_by"] is not None)'
}
checks=$((checks + 1))
wait_for "$WAIT_LIMIT" held_done || fail "the flush did not run once resumed: $(cat "$T/held-run.err")"
kill -INT "$HELD_PID"
checks=$((checks + 1))
if wait_exit "$HELD_PID"; then
    [ "$RC" -eq 0 ] || fail "jobmgr run --high-workers exited $RC: $(cat "$T/held-run.err")"
else
    fail "jobmgr run --high-workers did not stop within ${WAIT_LIMIT}s of SIGINT"
    kill -KILL "$HELD_PID" 2>/dev/null
fi
expect "$(cat "$T/held-run.err")" "^jobmgr: 1 of them kept for high-class jobs$" "run --high-workers"

# The same tool on PostgreSQL (JM_TEST_PG_URL: scripts/test.sh starts a
# private server): --db takes the URL, JOBMGR_PG_SCHEMA the schema, and a
# flush created there runs on the engine.
if [ -n "${JM_TEST_PG_URL:-}" ]; then
    PG_DB=$JM_TEST_PG_URL
    export JOBMGR_PG_SCHEMA="cli_$$"
    run 0 "$J" --db "$PG_DB" create FL --params "$FL_PARAMS" --key pg:flush
    PG_ID=$OUT
    run 4 "$J" --db "$PG_DB" create FL --params "$FL_PARAMS" --key pg:flush
    expect "$OUT" "^$PG_ID$" "PostgreSQL: create prints the key's holder"
    run 0 "$J" --db "$PG_DB" --json list --status queued
    json_is "$OUT" "[j['id'] for j in d['jobs']]" "[\"$PG_ID\"]" "PostgreSQL: list"
    run 0 "$J" --db "$PG_DB" pause type FL
    run 0 "$J" --db "$PG_DB" paused
    expect "$OUT" "type +FL" "PostgreSQL: paused"
    run 0 "$J" --db "$PG_DB" resume type FL
    "$J" --db "$PG_DB" run --engine "$ENGINE" --workers 2 >"$T/pg-run.out" 2>"$T/pg-run.err" &
    PG_PID=$!
    bg_pids+=("$PG_PID")
    pg_done() {
        "$J" --db "$PG_DB" show "$PG_ID" --json 2>/dev/null |
            python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "completed")'
    }
    checks=$((checks + 1))
    wait_for "$WAIT_LIMIT" pg_done || fail "PostgreSQL: the flush did not run: $(cat "$T/pg-run.err")"
    kill -INT "$PG_PID"
    checks=$((checks + 1))
    if wait_exit "$PG_PID"; then
        [ "$RC" -eq 0 ] || fail "PostgreSQL: jobmgr run exited $RC: $(cat "$T/pg-run.err")"
    else
        fail "PostgreSQL: jobmgr run did not stop within ${WAIT_LIMIT}s of SIGINT"
        kill -KILL "$PG_PID" 2>/dev/null
    fi
    run 0 "$J" --db "$PG_DB" --json stats
    json_is "$OUT" "d['by_status']['completed']" "1" "PostgreSQL: stats"
    run 6 "$J" --db "postgresql:///nothing?host=/nonexistent-dir" list
    expect "$ERR" "PostgreSQL" "PostgreSQL: an unreachable server is a database error"
    unset JOBMGR_PG_SCHEMA
fi

# Let the slow job finish, so its helper exits cleanly.
touch "$GATE"
checks=$((checks + 1))
if wait_exit "$SLOW_PID"; then
    [ "$RC" -eq 0 ] || fail "the slow job helper exited $RC: $(cat "$T/slow.err")"
else
    fail "the slow job did not finish after the gate opened"
fi

echo "test_cli: $checks checks, $failures failed"
if [ "$failures" -ne 0 ]; then
    exit 1
fi
if [ "$tmux_ran" -eq 0 ]; then
    echo "test_cli: SKIPPED the terminal check of watch: tmux is not installed" \
        "(scripts/deps.sh installs it)" >&2
    exit 77
fi
exit 0
