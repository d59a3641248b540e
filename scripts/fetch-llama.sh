#!/usr/bin/env bash
# Fetches the pinned llama.cpp into third_party/llama.cpp.
#
# The source comes from the npm package node-llama-cpp, which carries a git bundle of upstream
# llama.cpp. The tarball is checked against the integrity hash pinned below (the one the npm
# registry publishes) before anything in it is used. Nothing from llama.cpp is committed here.
set -euo pipefail

NLC_VERSION="3.22.1"
NLC_INTEGRITY="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/llama.cpp"
stamp="$dest/.ponder-source"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "node-llama-cpp@$NLC_VERSION" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching llama.cpp from node-llama-cpp@$NLC_VERSION (npm)"
(cd "$work" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null 2>&1) || {
  echo "error: 'npm pack node-llama-cpp@$NLC_VERSION' failed (is npm installed and the registry reachable?)" >&2
  exit 1
}
tgz="$work/node-llama-cpp-$NLC_VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$actual" != "$NLC_INTEGRITY" ]; then
  echo "error: integrity mismatch for node-llama-cpp@$NLC_VERSION" >&2
  echo "  expected $NLC_INTEGRITY" >&2
  echo "  got      $actual" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$work/package/llama/llama.cpp.info.json")

rm -rf "$dest"
mkdir -p "$root/third_party"
git -c advice.detachedHead=false clone --quiet "$work/package/llama/gitRelease.bundle" "$dest"
echo "$tag" > "$dest/.ponder-tag"
echo "node-llama-cpp@$NLC_VERSION" > "$stamp"
echo "llama.cpp $tag at $dest"
