#!/usr/bin/env bash
# Checks every fenced code block of README.md, CHANGELOG.md and docs/*.md,
# so that no documented program or command can rot. Each block is handled
# by its info string (docs/README.md, "Code blocks", tells the writers):
#  - c: a block with main() is a complete program: compiled with warnings
#    as errors, linked against the installed library (pkg-config) and run
#    in an empty directory; it must exit 0. A block whose first line is
#    `/* fragment */` or `/* fragment: PARAMS */` holds statements: it is
#    compiled as the body of `int f(PARAMS)` with every public header
#    included. Any other C block is a file of declarations, compiled alone.
#    `#line` makes the compiler name the Markdown file and line.
#  - sh: `bash -n`, and every command it names must exist: scripts in the
#    tree (and `bash -n` on them), `jobmgr` commands and their options
#    (`jobmgr help CMD`), `jm-bench` and crash-harness options, CMake
#    options (-DJM_*) and targets, other programs on the PATH. A block made
#    only of `jobmgr`, `cc` and `pkg-config` commands (and shell built-ins)
#    is also run: the blocks of one page in order, in one scratch directory
#    holding a copy of the engine demo's data (engine_demo_data/) and
#    myapp.c (tests/install/consumer.c), with the installed `jobmgr` on the
#    PATH and the install on PKG_CONFIG_PATH. The README's set-up, tour and
#    build blocks are run by scripts/checks/readme.sh; they are only
#    checked here. Other blocks (builds, installs, long runs) are checked,
#    not run, and listed with the reason.
#  - cmake: appended to a small project (add_executable(myapp myapp.c)),
#    configured and built against the install (CMAKE_PREFIX_PATH); a block
#    with its own project() is used alone.
#  - text: output, diagrams, formulas: not checked.
# Any other info string, an empty one included, is an error.
#
# The library is built (Release, no tests) in build-docblocks/ and installed
# into a temporary prefix.
#   JM_DOCBLOCKS_BUILD  the build directory (default build-docblocks)
#   JM_DOCBLOCKS_JOBS   build parallelism (default 2)
# Fails at the first bad block, naming its file and line; prints a count of
# the blocks checked per kind. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD

build=${JM_DOCBLOCKS_BUILD:-$src/build-docblocks}
jobs=${JM_DOCBLOCKS_JOBS:-2}

work=$(mktemp -d "${TMPDIR:-/tmp}/jmdocblocks-XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
    echo "doc_blocks.sh: FAIL: $*" >&2
    exit 1
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

command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/deps.sh installs it)"

# --- The library, installed --------------------------------------------------

echo "=== doc_blocks: Release build in ${build#"$src"/}, install into a temporary prefix"
quiet "$work/configure.log" cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DJM_BUILD_TESTS=OFF -DJM_BUILD_EXAMPLES=ON -DJM_BUILD_TOOLS=ON -DJM_BUILD_BENCH=ON
quiet "$work/build.log" cmake --build "$build" --parallel "$jobs"
quiet "$work/install.log" cmake --install "$build" --prefix "$prefix"

so=$(find "$prefix" -name 'libjobmgr.so.*' -print -quit)
[ -n "$so" ] || fail "the install has no libjobmgr.so"
libdir=$(dirname "$so")
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
jobmgr_bin=$prefix/bin/jobmgr
bench_bin=$build/bench/jm-bench
[ -x "$jobmgr_bin" ] || fail "the install has no bin/jobmgr"
[ -x "$bench_bin" ] || fail "the build has no bench/jm-bench"

# The engine demo's data, as `bash scripts/demo.sh` leaves it in build/.
mkdir -p "$work/demo"
(cd "$work/demo" && "$build/examples/engine_demo") >"$work/demo.log" 2>&1 || {
    tail -n 40 "$work/demo.log" >&2
    fail "the engine demo failed"
}
[ -d "$work/demo/engine_demo_data" ] || fail "the engine demo left no engine_demo_data/"

# --- Extract the blocks --------------------------------------------------------

# One file per block in $work/blocks/, and an index line per block:
# number, Markdown file, line of its first content line, info string, and
# the "## " heading it stands under, separated by \x1f (an empty info
# string must stay a field of its own).
mkdir -p "$work/blocks"
files=(README.md CHANGELOG.md docs/*.md)
awk -v out="$work/blocks" '
    function unclosed() {
        printf "doc_blocks.sh: FAIL: %s:%d: a code block is never closed\n", file, start - 1 > "/dev/stderr"
        bad = 1
        exit 1
    }
    FNR == 1 {
        if (inside) unclosed()
        heading = ""
    }
    !inside && /^## / { heading = substr($0, 4) }
    !inside && /^[ \t]+```/ {
        printf "doc_blocks.sh: FAIL: %s:%d: an indented code block fence; put fences at the start of the line\n", FILENAME, FNR > "/dev/stderr"
        bad = 1
        exit 1
    }
    !inside && /^```/ {
        inside = 1
        n++
        file = FILENAME
        start = FNR + 1
        info = substr($0, 4)
        sub(/[ \t]+$/, "", info)
        body = sprintf("%s/%03d", out, n)
        printf "" > body
        printf "%03d\037%s\037%d\037%s\037%s\n", n, FILENAME, start, info, heading > (out "/index")
        next
    }
    inside && /^```[ \t]*$/ {
        inside = 0
        close(body)
        next
    }
    inside { print > body }
    END {
        if (!bad && inside) unclosed()
    }
' "${files[@]}"
[ -s "$work/blocks/index" ] || fail "no code blocks found"

# --- Checks per kind -------------------------------------------------------------

cflags=(-std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -pedantic -Werror)
# Fragments and declaration files define what their page goes on to use.
cflags_partial=(-Wno-unused-function -Wno-unused-variable -Wno-unused-const-variable
    -Wno-unused-parameter -Wno-unused-but-set-variable)
read -r -a pc_cflags <<<"$(pkg-config --cflags jobmgr)"
read -r -a pc_libs <<<"$(pkg-config --libs jobmgr)"

n_program=0 n_fragment=0 n_decls=0 n_sh_run=0 n_sh_checked=0 n_sh_readme=0 n_cmake=0 n_text=0
not_run=()

check_c() {
    local block=$1 file=$2 line=$3 dir=$4
    local first params kind
    first=$(head -n 1 "$block")
    if [[ $first =~ ^/\*\ fragment(:\ (.*))?\ \*/[[:space:]]*$ ]]; then
        kind=fragment
        params=${BASH_REMATCH[2]:-void}
        {
            echo '#define _POSIX_C_SOURCE 200809L'
            echo '#include <stdint.h>'
            echo '#include <stdio.h>'
            echo '#include <stdlib.h>'
            echo '#include <string.h>'
            echo '#include <jobmgr.h>'
            echo '#include <jobmgr/host.h>'
            echo '#include <jobmgr/engine.h>'
            echo '#include <jobmgr/sqlite.h>'
            echo '#include <jobmgr/pg.h>'
            echo "int jm_doc_fragment($params);"
            echo "int jm_doc_fragment($params)"
            echo '{'
            echo "#line $line \"$file\""
            cat "$block"
            echo '    return 0;'
            echo '}'
        } >"$dir/block.c"
    elif grep -qE '(^|[^A-Za-z0-9_])main[[:space:]]*\(' "$block"; then
        kind=program
        { echo "#line $line \"$file\""; cat "$block"; } >"$dir/block.c"
    else
        kind=declarations
        { echo "#line $line \"$file\""; cat "$block"; } >"$dir/block.c"
    fi

    if [ "$kind" = program ]; then
        if ! cc "${cflags[@]}" -o "$dir/program" "$dir/block.c" "${pc_cflags[@]}" \
            "${pc_libs[@]}" -Wl,-rpath,"$libdir" >"$dir/cc.log" 2>&1; then
            cat "$dir/cc.log" >&2
            fail "$file:$line: this C program does not compile or link"
        fi
        mkdir -p "$dir/run"
        if ! (cd "$dir/run" && timeout 60 "$dir/program") >"$dir/run.log" 2>&1; then
            cat "$dir/run.log" >&2
            fail "$file:$line: this C program did not exit 0"
        fi
        n_program=$((n_program + 1))
    else
        if ! cc "${cflags[@]}" "${cflags_partial[@]}" -c -o "$dir/block.o" "$dir/block.c" \
            "${pc_cflags[@]}" >"$dir/cc.log" 2>&1; then
            cat "$dir/cc.log" >&2
            if [ "$kind" = fragment ]; then
                fail "$file:$line: this C fragment does not compile"
            fi
            fail "$file:$line: this C block does not compile (no main(), so it is taken as a file of declarations; statements need /* fragment */ as their first line)"
        fi
        if [ "$kind" = fragment ]; then
            n_fragment=$((n_fragment + 1))
        else
            n_decls=$((n_decls + 1))
        fi
    fi
}

check_cmake() {
    local block=$1 file=$2 line=$3 dir=$4
    mkdir -p "$dir/project"
    cp "$src/tests/install/consumer.c" "$dir/project/myapp.c"
    if grep -qE '^[[:space:]]*project[[:space:]]*\(' "$block"; then
        cp "$block" "$dir/project/CMakeLists.txt"
    else
        {
            echo 'cmake_minimum_required(VERSION 3.25)'
            echo 'project(doc_block LANGUAGES C)'
            echo 'add_executable(myapp myapp.c)'
            cat "$block"
        } >"$dir/project/CMakeLists.txt"
    fi
    if ! cmake -S "$dir/project" -B "$dir/project/build" -DCMAKE_PREFIX_PATH="$prefix" \
        >"$dir/cmake.log" 2>&1 ||
        ! cmake --build "$dir/project/build" >>"$dir/cmake.log" 2>&1; then
        head -n 100 "$dir/cmake.log" >&2
        fail "$file:$line: this CMake block does not configure and build against the install" \
            "(in the project around it, CMakeLists.txt line 4 is the block's first line)"
    fi
    n_cmake=$((n_cmake + 1))
}

# sh_commands BLOCK: one line per simple command of a shell block: its line
# within the block, then its words, separated by \x1f. Quotes are removed,
# comments, redirections and the "$" of "$(" dropped; the inside of a
# command substitution is a command of its own.
sh_commands() {
    python3 - "$1" <<'PY'
import shlex, sys

punct = set(';&|()<>')
lines = open(sys.argv[1], encoding='utf-8').read().split('\n')
i = 0
while i < len(lines):
    number, text = i + 1, lines[i]
    while text.endswith('\\') and i + 1 < len(lines):
        i += 1
        text = text[:-1] + ' ' + lines[i]
    i += 1
    lex = shlex.shlex(text, posix=True, punctuation_chars=';&|()<>')
    lex.whitespace_split = True
    try:
        tokens = list(lex)
    except ValueError as e:
        print(f"{number}\x1f!error\x1f{e}")
        continue
    words, skip_next = [], False
    def flush():
        if words:
            print('\x1f'.join([str(number)] + words))
        words.clear()
    for t in tokens:
        if skip_next:
            skip_next = False
            continue
        if t and set(t) <= punct:
            if '<' in t or '>' in t:
                if words and words[-1].isdigit():
                    words.pop()
                skip_next = True
                continue
            flush()
            continue
        if t == '$':
            continue
        if t.endswith('$') and '=' in t:
            t = t[:-1]
        words.append(t)
    flush()
PY
}

# runnable: set by check_command to the first program of a block that the
# check cannot run.
runnable_programs=" jobmgr cc pkg-config export echo true kill wait sleep "
not_runnable=""

# check_command LOC WORD...: the named command exists.
check_command() {
    local loc=$1
    shift
    while [ $# -gt 0 ] && [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
        shift
    done
    [ $# -gt 0 ] || return 0
    local prog=$1
    shift
    if [[ $runnable_programs != *" $prog "* ]] && [ "$prog" != timeout ] && [ -z "$not_runnable" ]; then
        not_runnable=$prog
    fi
    case $prog in
    export | echo | cd | kill | wait | sleep | true | set | printf)
        ;;
    timeout)
        # timeout [OPTIONS] DURATION COMMAND...
        while [ $# -gt 0 ] && [[ $1 == -* ]]; do
            case $1 in -s | -k | --signal | --kill-after) shift ;; esac
            shift
        done
        [ $# -ge 2 ] || fail "$loc: timeout without a command"
        shift
        check_command "$loc" "$@"
        ;;
    sudo | exec)
        check_command "$loc" "$@"
        ;;
    valgrind)
        while [ $# -gt 0 ] && [[ $1 == -* ]]; do shift; done
        command -v valgrind >/dev/null 2>&1 || fail "$loc: valgrind is not installed (scripts/deps.sh installs it)"
        check_command "$loc" "$@"
        ;;
    bash | sh)
        while [ $# -gt 0 ] && [[ $1 == -* ]]; do shift; done
        [ $# -gt 0 ] || fail "$loc: '$prog' without a script"
        [ -f "$src/$1" ] || fail "$loc: no script $1 in the tree"
        bash -n "$src/$1" || fail "$loc: $1 does not parse (bash -n)"
        ;;
    jobmgr | */jobmgr)
        check_jobmgr "$loc" "$@"
        ;;
    */jm-bench)
        check_bench "$loc" "$@"
        ;;
    */crash_harness)
        local w
        for w in "$@"; do
            if [[ $w == --* ]]; then
                grep -qF -- "[$w" "$src/tests/crash/crash_harness.c" ||
                    fail "$loc: crash_harness has no option $w"
            fi
        done
        ;;
    cmake)
        check_cmake_command "$loc" "$@"
        ;;
    ctest | cc | gcc | clang | pkg-config | doxygen | apt-get | make | curl)
        command -v "$prog" >/dev/null 2>&1 ||
            fail "$loc: $prog is not installed (scripts/deps.sh installs it)"
        ;;
    *)
        fail "$loc: unknown command '$prog': make it a real one, or teach scripts/checks/doc_blocks.sh how to check it"
        ;;
    esac
}

check_jobmgr() {
    local loc=$1
    shift
    while [ $# -gt 0 ]; do
        case $1 in
        --db) shift 2 ;;
        --db=* | --json | --no-color) shift ;;
        *) break ;;
        esac
    done
    [ $# -gt 0 ] || fail "$loc: jobmgr without a command"
    case $1 in --help | --version) return 0 ;; esac
    local cmd=$1 usage w name
    shift
    usage=$("$jobmgr_bin" help "$cmd" 2>&1 </dev/null) || fail "$loc: '$cmd' is not a jobmgr command"
    for w in "$@"; do
        [[ $w == --* ]] || continue
        name=${w%%=*}
        case $name in --db | --json | --no-color | --help) continue ;; esac
        grep -qE -- "(^|[^-a-z])${name}([^-a-z]|$)" <<<"$usage" ||
            fail "$loc: jobmgr $cmd has no option $name ('jobmgr help $cmd')"
    done
}

check_bench() {
    local loc=$1
    shift
    local usage scenario=""
    usage=$("$bench_bin" --help </dev/null)
    "$bench_bin" "$@" --help </dev/null >/dev/null 2>"$work/bench.err" || {
        cat "$work/bench.err" >&2
        fail "$loc: jm-bench does not take these options: $*"
    }
    while [ $# -gt 0 ]; do
        case $1 in
        --scenario) scenario=${2:-}; shift ;;
        --scenario=*) scenario=${1#--scenario=} ;;
        esac
        shift
    done
    local s
    for s in ${scenario//,/ }; do
        grep -qw -- "$s" <<<"$usage" || fail "$loc: jm-bench has no scenario '$s'"
    done
}

check_cmake_command() {
    local loc=$1
    shift
    local name
    while [ $# -gt 0 ]; do
        case $1 in
        -S)
            [ -d "$src/${2:-}" ] || fail "$loc: cmake -S ${2:-}: no such directory in the tree"
            shift
            ;;
        -D)
            shift
            set -- "-D${1:-}" "${@:2}"
            continue
            ;;
        -DJM_*)
            name=${1#-D}
            name=${name%%[:=]*}
            grep -qE "(option\(${name}[[:space:]]|set\(${name}[[:space:]].*CACHE)" \
                "$src/CMakeLists.txt" "$src"/cmake/*.cmake ||
                fail "$loc: cmake: $name is not an option of this project"
            ;;
        --target)
            grep -rqE "add_(executable|library|custom_target)\(${2:-}[[:space:]]" \
                --include=CMakeLists.txt "$src/src" "$src/tools" "$src/bench" \
                "$src/examples" "$src/tests" "$src/CMakeLists.txt" 2>/dev/null ||
                fail "$loc: cmake: no target '${2:-}'"
            shift
            ;;
        esac
        shift
    done
}

# The README blocks that scripts/checks/readme.sh runs, by heading.
readme_run_headings="|Set-up in two commands|Five-minute tour|Building and installing|"

declare -A scratch=()

check_sh() {
    local block=$1 file=$2 line=$3 dir=$4 heading=$5
    bash -n "$block" 2>"$dir/bash-n.log" || {
        local msg
        while IFS= read -r msg; do
            if [[ $msg =~ ^"$block: line "([0-9]+)": "(.*)$ ]]; then
                msg="$file:$((line + BASH_REMATCH[1] - 1)): ${BASH_REMATCH[2]}"
            fi
            echo "$msg" >&2
        done <"$dir/bash-n.log"
        fail "$file:$line: this sh block does not parse (bash -n)"
    }
    not_runnable=""
    local n words
    while IFS=$'\x1f' read -r -a words; do
        n=${words[0]}
        [ "${words[1]:-}" != '!error' ] || fail "$file:$((line + n - 1)): ${words[2]}"
        check_command "$file:$((line + n - 1))" "${words[@]:1}"
    done < <(sh_commands "$block")

    if [ "$file" = README.md ] && [[ $readme_run_headings == *"|$heading|"* ]]; then
        n_sh_readme=$((n_sh_readme + 1))
        return
    fi
    if [ -n "$not_runnable" ]; then
        not_run+=("$file:$line ($not_runnable)")
        n_sh_checked=$((n_sh_checked + 1))
        return
    fi

    # Run it in the page's scratch directory.
    local here=${scratch[$file]:-}
    if [ -z "$here" ]; then
        here=$work/scratch-$(echo "$file" | tr '/.' '__')
        mkdir -p "$here"
        cp -a "$work/demo/engine_demo_data" "$here/"
        cp "$src/tests/install/consumer.c" "$here/myapp.c"
        scratch[$file]=$here
    fi
    if ! (cd "$here" && env -u JOBMGR_DB PATH="$prefix/bin:$PATH" NO_COLOR=1 \
        timeout 120 bash -e -o pipefail "$block") >"$dir/run.log" 2>&1; then
        tail -n 40 "$dir/run.log" >&2
        fail "$file:$line: this sh block failed when run (in a copy of the demo's data)"
    fi
    n_sh_run=$((n_sh_run + 1))
}

echo "=== doc_blocks: checking the blocks of ${files[*]}"
total=0
while IFS=$'\x1f' read -r num file line info heading; do
    block=$work/blocks/$num
    dir=$work/check-$num
    mkdir -p "$dir"
    total=$((total + 1))
    case $info in
    c) check_c "$block" "$file" "$line" "$dir" ;;
    sh) check_sh "$block" "$file" "$line" "$dir" "$heading" ;;
    cmake) check_cmake "$block" "$file" "$line" "$dir" ;;
    text) n_text=$((n_text + 1)) ;;
    *) fail "$file:$((line - 1)): code block with info string '$info': use c, sh, cmake or text" ;;
    esac
done <"$work/blocks/index"

echo "doc_blocks: $total blocks in ${#files[@]} files"
echo "  c      $n_program compiled, linked and run; $n_fragment fragments and $n_decls declaration blocks compiled"
echo "  sh     $n_sh_run run; $n_sh_readme run by readme.sh; $n_sh_checked checked only (bash -n, the commands they name)"
echo "  cmake  $n_cmake configured and built against the install"
echo "  text   $n_text not checked (output, diagrams)"
for b in "${not_run[@]}"; do
    echo "  checked, not run: $b"
done
echo "doc_blocks: every code block compiles, runs or names real commands"
