#!/usr/bin/env bash
# Builds the API reference from the public headers with doxygen (Doxyfile at
# the top of the tree) into build-docs/html. Every warning is an error: an
# undocumented public declaration or parameter, or a malformed doc comment,
# fails the check. scripts/deps.sh installs doxygen.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v doxygen >/dev/null 2>&1; then
    echo "docs.sh: doxygen is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi

rm -rf build-docs
echo "=== docs: doxygen $(doxygen --version), warnings as errors"
if ! doxygen Doxyfile; then
    echo "docs.sh: doxygen reported warnings (above); every public declaration" \
         "needs a complete doc comment" >&2
    exit 1
fi
[ -f build-docs/html/index.html ] || {
    echo "docs.sh: doxygen wrote no build-docs/html/index.html" >&2
    exit 1
}
for page in jobmgr_8h.html host_8h.html engine_8h.html; do
    [ -f "build-docs/html/$page" ] || {
        echo "docs.sh: build-docs/html/$page missing: a header has no @file comment" >&2
        exit 1
    }
done
echo "docs: API reference in build-docs/html/index.html, no warnings"
