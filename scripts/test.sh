#!/usr/bin/env bash
# The whole test suite: set up and build, then every test through CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root/build"
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
