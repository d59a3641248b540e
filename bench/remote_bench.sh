#!/usr/bin/env bash
# The same beam search (N=16, M=4, a PRM) three ways, side by side in one run (issue 6); prints a
# Markdown table of search seconds (usage.seconds: without loading models or opening engines):
#
#  1. in-process: `ponder solve -m MODEL --prm PRM` (one process, forked KV, batched decode);
#  2. remote: `ponder solve --remote GEN --prm-remote PRM` against two llama-server processes
#     serving the same files (token-id prompts, the servers' prefix caches);
#  3. naive: bench/naive_beam.py, an orchestrator that re-sends every beam's whole text each step
#     and the PRM's whole conversation for each score (text prompts; same servers, caches on).
# Rows 1 and 2 sample different tokens (the servers' random streams are not ponder's), so their
# completion tokens differ; the table gives them.
#
#   bench/remote_bench.sh [REPEATS]   (after scripts/setup.sh; REPEATS: median of, default 3)
#
# Environment: MODEL (default ../shared/models/stories260K.gguf), PRM (default
# build/test-models/prm-llama3-tiny.gguf, RLHFlow format), PROBLEM (default "Once upon a time"),
# DELIMITER (the step delimiter, default "." : stories260K's steps are sentences), MAX_TOKENS (default
# 128), THREADS (default nproc, for ponder and each server), SEED (default 1), BUILD (default build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
repeats=${1:-3}
shared=${PONDER_SHARED_DIR:-$root/../shared}
model=${MODEL:-$shared/models/stories260K.gguf}
prm=${PRM:-$build/test-models/prm-llama3-tiny.gguf}
max_tokens=${MAX_TOKENS:-128}
threads=${THREADS:-$(nproc)}
seed=${SEED:-1}
n=16
m=4
problem=${PROBLEM:-Once upon a time}
delimiter=${DELIMITER:-.}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

[ -s "$prm" ] || "$root/tests/make_test_models.sh" "$build" "$root/third_party/llama.cpp" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

serve() {  # model port log: a llama-server with a slot per beam, the context split among them
  "$build/bin/llama-server" -m "$1" --host 127.0.0.1 --port "$2" -np $n -c $((n * 1024)) -t "$threads" \
    --no-warmup --no-webui >"$3" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$2/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "llama-server did not start: $(tail -5 "$3")" >&2
  exit 1
}

gen_port=$(free_port)
serve "$model" "$gen_port" "$tmp/gen.log"
prm_port=$(free_port)
serve "$prm" "$prm_port" "$tmp/prm.log"
gen_url=http://127.0.0.1:$gen_port
prm_url=http://127.0.0.1:$prm_port

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
common=(--strategy beam -n $n --beam-width $m --delimiter "$delimiter" --max-tokens "$max_tokens" --seed "$seed" --json)

run() {  # name: prints "seconds completion_tokens"
  case $1 in
    in-process)
      "$build/ponder" solve "$problem" -m "$model" --prm "$prm" --threads "$threads" "${common[@]}" 2>/dev/null |
        python3 -c 'import json,sys; u=json.load(sys.stdin)["usage"]; print(u["seconds"], u["completion_tokens"])' ;;
    remote)
      "$build/ponder" solve "$problem" --remote "$gen_url" --prm-remote "$prm_url" --remote-parallel $n \
        "${common[@]}" 2>/dev/null |
        python3 -c 'import json,sys; u=json.load(sys.stdin)["usage"]; print(u["seconds"], u["completion_tokens"])' ;;
    naive)
      python3 "$root/bench/naive_beam.py" "$gen_url" "$prm_url" "$problem" $n $m "$max_tokens" "$delimiter" "$seed" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["seconds"], r["completion_tokens"])' ;;
  esac
}

echo "beam search N=$n M=$m, max $max_tokens tokens, $(basename "$model") + $(basename "$prm"), $threads threads, median of $repeats"
echo
echo "| orchestration | search s | completion tokens | tokens/s |"
echo "|---|---:|---:|---:|"
for name in in-process remote naive; do
  : >"$tmp/$name"
  for _ in $(seq "$repeats"); do run "$name" >>"$tmp/$name"; done
  s=$(cut -d' ' -f1 "$tmp/$name" | median)
  t=$(cut -d' ' -f2 "$tmp/$name" | median)
  printf '| %s | %.3f | %s | %.0f |\n' "$name" "$s" "$t" "$(echo "$t / $s" | bc -l)"
done
