#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang in build-fuzz/ and
# runs each for a bounded time on a scratch copy of its checked-in seed
# corpus (tests/fuzz/corpus/<target>/), so CI never grows the corpus.
# Fails on any crash, leak, sanitizer report or failed property check, and
# prints the executions of every target.
#   JM_FUZZ_SECONDS   seconds per target (default 20)
#   JM_FUZZ_TARGETS   space-separated subset of targets (default: all)
#   JM_FUZZ_KEEP=1    keep the grown scratch corpora (their directory is printed)
# Crash inputs are kept in build-fuzz/artifacts/ for replay:
#   build-fuzz/tests/fuzz/<target> build-fuzz/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${JM_FUZZ_SECONDS:-20}
targets=${JM_FUZZ_TARGETS:-"fuzz_job_id fuzz_params fuzz_filter fuzz_manifest fuzz_segment"}
build=build-fuzz

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang is required (scripts/deps.sh installs it)" >&2
    exit 1
fi

echo "=== $build: configure and build (clang, libFuzzer, ASan+UBSan)"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DJM_BUILD_FUZZERS=ON -DJM_BUILD_TESTS=OFF -DJM_BUILD_EXAMPLES=OFF \
    -DJM_BUILD_TOOLS=OFF -DJM_BUILD_BENCH=OFF \
    -DJM_SANITIZE=fuzzer-no-link,address,undefined >/dev/null
cmake --build "$build" --parallel 2 >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/jm-fuzz-XXXXXX")
if [ "${JM_FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz.sh: scratch corpora kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for t in $targets; do
    corpus="$work/$t"
    mkdir -p "$corpus" "$build/artifacts/$t"
    cp tests/fuzz/corpus/"$t"/* "$corpus"/
    log="$work/$t.log"
    echo "=== fuzz: $t for ${seconds}s"
    if "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" "$corpus" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed=1
        tail -n 60 "$log" >&2
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    summary+=("$(printf '%-14s %-6s %12s executions' "$t" "$status" "${runs:-?}")")
done

echo "=== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
