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
for cmd in list show create cancel retry prune stats run watch; do
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
run 2 "$J" --db "$DB" watch --interval 5
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
for field in id type status namespace key priority retries attempts progress node created \
    updated "run at" started finished message params result checkpoint trace; do
    expect "$OUT" "^$field: " "show has $field"
done
expect "$OUT" "^status: +queued$" "show status"
expect "$OUT" '^params: +\{$' "params pretty-printed"
expect "$OUT" '^  "table_name": "orders",?$' "params indented by two spaces"
expect_not "$OUT" $'\033' "no colour when stdout is not a terminal"
run 0 "$J" --db "$DB" show "$FL1" --json
json_is "$OUT" 'd["params"]["table_type"]' "User" "show --json embeds params as JSON"
json_is "$OUT" 'd["idempotency_key"]' "flush:orders" "show --json key"
json_is "$OUT" 'sorted(d)' \
    '["attempts", "cancel_requested", "checkpoint", "created_at", "created_at_ms", "exception_trace", "finished_at", "finished_at_ms", "id", "idempotency_key", "max_retries", "message", "namespace", "node_id", "params", "priority", "progress", "result", "retry_count", "run_at", "run_at_ms", "started_at", "started_at_ms", "status", "type", "updated_at", "updated_at_ms"]' \
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
expect "$OUT" "^ID +STATUS +NAMESPACE +KEY +PRI +RETRIES +CREATED +MESSAGE$" "list header"
expect "$OUT" "^$FL1 +queued +app +flush:orders " "list row aligned"
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
expect "$OUT" "^TYPE +new +queued +running +retrying +completed +failed +cancelled +total$" "stats header"
expect "$OUT" "^FL +6 +2 +- +- +- +- +- +8$" "stats FL row"
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

"$J" --db "$RUN_DB" run --workers 2 --engine "$ENGINE" >"$T/run.out" 2>"$T/run.err" &
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
kill -INT "$RUN_PID"
checks=$((checks + 1))
if wait_exit "$RUN_PID"; then
    [ "$RC" -eq 0 ] || fail "jobmgr run exited $RC after SIGINT: $(cat "$T/run.err")"
else
    fail "jobmgr run did not stop within ${WAIT_LIMIT}s of SIGINT"
    kill -KILL "$RUN_PID" 2>/dev/null
fi
expect "$(cat "$T/run.err")" "SIGINT: stopping" "run reports the stop"
run 0 "$J" --db "$RUN_DB" stats --json
json_is "$OUT" 'd["types"]["FL"]["by_status"]["completed"]' "1" "stats after run"

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

run 0 "$J" --db "$WATCH_DB" watch --once
expect "$OUT" "^[0-9T:+-]+ $SLOW running \[#{10}\.{10}\]  50% elapsed " "watch --once plain line"
run 0 "$J" --db "$WATCH_DB" watch --once --json
json_is "$OUT" 'd["running"][0]["id"]' "$SLOW" "watch --json"
run 0 "$J" --db "$DB" watch --once
expect "$OUT" "no running jobs" "watch with nothing running"
run 0 "$J" --db "$WATCH_DB" list --status running
expect "$OUT" "^$SLOW +running " "list shows the running job"
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
