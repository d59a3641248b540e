#!/usr/bin/env bash
# Installs what ponder needs on Debian 12 (as root, or with sudo), fetches the pinned llama.cpp
# and builds everything into build/. Safe to run again: each step skips what is done.
#
#   PONDER_LLAMA_DIR=/path/to/llama.cpp   build against your own llama.cpp checkout instead
#   PONDER_CUDA=ON|OFF|AUTO               CUDA build (AUTO: when nvcc and a GPU are present)
#   PONDER_BUILD_TYPE=Release             CMake build type
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Libraries by Debian package; tools by command, since they may come from elsewhere (Node.js
# from NodeSource, for one, conflicts with Debian's npm package).
libraries=(build-essential pkg-config ca-certificates
           nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev libgmock-dev
           libsqlite3-dev gnuplot-nox libginac-dev libicu-dev libcpp-httplib-dev
           chromium)
tools=(cmake:cmake git:git ccache:ccache openssl:openssl npm:npm python3:python3)
missing=()
for p in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for t in "${tools[@]}"; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

llama_dir=${PONDER_LLAMA_DIR:-}
if [ -z "$llama_dir" ]; then
  "$root/scripts/fetch-llama.sh"
  llama_dir="$root/third_party/llama.cpp"
fi

# ccache keeps rebuilds of llama.cpp (the bulk of the build) to seconds.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Paths relative to the checkout, so that a fresh clone elsewhere (as in CI) still hits the cache.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE="${PONDER_BUILD_TYPE:-Release}" \
  -DPONDER_LLAMA_DIR="$llama_dir" -DPONDER_CUDA="${PONDER_CUDA:-AUTO}" >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
cmake --build "$root/build" -j"$jobs" --target ponder ponder_tests llama-simple llama-batched-bench llama-server ponder-make-test-model
# The clients the tests drive `ponder serve` with (the OpenAI client, playwright-core), pinned by
# tests/node/package-lock.json; npm checks each package's integrity hash.
if [ ! -d "$root/tests/node/node_modules" ] || [ "$root/tests/node/package-lock.json" -nt "$root/tests/node/node_modules" ]; then
  (cd "$root/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$root/tests/node/node_modules"
fi
echo "built $root/build/ponder"
