#!/usr/bin/env bash
# Runs the fuzz targets for longer, by hand: scripts/fuzz-long.sh [SECONDS]
# (default 600 per target). Same build and checks as scripts/checks/fuzz.sh;
# the corpus grows only in a scratch copy, kept and printed here: copy
# interesting new inputs from it into tests/fuzz/corpus/ by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
JM_FUZZ_KEEP=1 JM_FUZZ_SECONDS=${1:-600} exec bash scripts/checks/fuzz.sh
