#!/usr/bin/env bash
# Builds jobmgr (without tests) into build/ and runs the quickstart example.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJM_BUILD_TESTS=OFF -DJM_SANITIZE=
cmake --build build --parallel 2

# The example writes its database into the current directory; keep it in build/.
cd build
./examples/quickstart
