#!/usr/bin/env bash
# Builds jobmgr (without tests) into build/ and runs the engine demo: every
# built-in executor at work on the reference engine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJM_BUILD_TESTS=OFF -DJM_SANITIZE=
cmake --build build --parallel 2

# The demo writes its data into the current directory; keep it in build/.
cd build
./examples/engine_demo
