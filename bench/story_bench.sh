#!/usr/bin/env bash
# `ponder story` (issue 5) measured side by side with llama.cpp in one run; prints a Markdown
# table (see BENCHMARKS.md, "Story"):
#
#  - Time per story round: the search's generator time per round (usage.seconds -
#    usage.scorer_seconds, over usage.rounds) against llama-batched-bench generating the same
#    number of tokens on the same model at the same parallelism (-npl K x M, -npp = the opening,
#    -ntg = completion tokens / (K x M), shared prompt), split and unified (-kvu) KV, per round.
#  - Scorer cost per candidate: the scorers' time over the candidates fluency scored, and how many
#    forward passes (evaluate calls) fluency made for how many candidates. The reference
#    implementation spends one forward pass per token of every candidate on fluency.
#
#   bench/story_bench.sh [REPEATS]        (after scripts/setup.sh; REPEATS: median of, default 3)
#
# Environment: THREADS (default: nproc), SEEDS (default "1 2 3"), PONDER_SHARED_DIR (default
# ../shared), QUIET_WAIT (seconds to wait for other heavy processes before each timed run,
# default 600).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
repeats=${1:-3}
threads=${THREADS:-$(nproc)}
seeds=${SEEDS:-1 2 3}
quiet_wait=${QUIET_WAIT:-600}
shared=${PONDER_SHARED_DIR:-$root/../shared}
model=$shared/models/stories260K.gguf
opening="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
stories=4
width=4
steps=8
max_tokens=128
n=$((stories * width))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

wait_quiet() {
  local waited=0
  while pgrep -f 'cc1plus|ponder (solve|generate|story)|llama-batched-bench|ponder_tests|ctest' >/dev/null; do
    if [ "$waited" -ge "$quiet_wait" ]; then
      echo "story_bench: other heavy processes still running after ${quiet_wait}s; measuring anyway" >&2
      return
    fi
    sleep 2
    waited=$((waited + 2))
  done
}

# llama-batched-bench, shared prompt: its total time (prompt once, then ntg steps of n rows).
# Its table goes through llama.cpp's asynchronous logger, which now and then loses the last row
# at exit: then run it again.
llama_s() {  # npp ntg extra-flags...
  local npp=$1 ntg=$2; shift 2
  local t=""
  for attempt in 1 2 3 4 5; do
    t=$("$build/bin/llama-batched-bench" -m "$model" -c $(((npp + ntg) * n + 512)) -b 2048 -ub 512 \
      -npp "$npp" -ntg "$ntg" -npl $n -pps -t "$threads" -tb "$threads" "$@" 2>/dev/null \
      | awk -F'|' -v n=$n '$2 ~ /^ *[0-9]+ *$/ && $4+0 == n { t = $10 + 0 } END { if (t > 0) print t }')
    [ -n "$t" ] && break
  done
  [ -n "$t" ] || { echo "llama-batched-bench gave no result" >&2; exit 1; }
  echo "$t"
}

npp=$("$build/ponder" generate -m "$model" -p "$opening" --max-tokens 1 --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["usage"]["prompt_tokens"])')

echo "Threads: $threads (nproc $(nproc)); CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "Opening: $npp tokens; $stories stories x width $width = $n branches, at most $steps sentence rounds, $max_tokens tokens each"
echo
echo "| strategy | seed | rounds | completion tokens | story s | scorers s | generator s | generator s / round | llama split s / round | llama -kvu s / round | generator / best llama - 1 | candidates scored | fluency passes | fluency tokens / candidate | scorer ms / candidate |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for strategy in dvts beam; do
  for seed in $seeds; do
    : > "$tmp/runs"
    for r in $(seq "$repeats"); do
      wait_quiet
      "$build/ponder" story -m "$model" --genre adventure --stories $stories --beam-width $width \
        --strategy $strategy --steps $steps --max-tokens $max_tokens --seed "$seed" --threads "$threads" \
        --json "$opening" > "$tmp/story.json"
      python3 - "$tmp/story.json" >> "$tmp/runs" <<'EOF'
import json, sys
u = json.load(open(sys.argv[1]))["usage"]
print(u["seconds"], u["scorer_seconds"], u["rounds"], u["completion_tokens"], u["fluency_texts"],
      u["fluency_passes"], u["fluency_tokens"])
EOF
    done
    # The median run by story time.
    read -r secs ssecs rounds ct texts passes ftokens < <(sort -g "$tmp/runs" | awk -v k=$(((repeats + 1) / 2)) 'NR == k')
    ntg=$(((ct + n - 1) / n))
    split_s=$(for r in $(seq "$repeats"); do wait_quiet; llama_s "$npp" "$ntg"; done | median)
    kvu_s=$(for r in $(seq "$repeats"); do wait_quiet; llama_s "$npp" "$ntg" -kvu; done | median)
    python3 - "$strategy" "$seed" "$secs" "$ssecs" "$rounds" "$ct" "$texts" "$passes" "$ftokens" "$split_s" "$kvu_s" <<'EOF'
import sys
strategy, seed = sys.argv[1], sys.argv[2]
secs, ssecs = float(sys.argv[3]), float(sys.argv[4])
rounds, ct, texts, passes, ftokens = (int(x) for x in sys.argv[5:10])
split_s, kvu_s = float(sys.argv[10]), float(sys.argv[11])
gen = secs - ssecs
best = min(split_s, kvu_s)
print(f"| {strategy} | {seed} | {rounds} | {ct} | {secs:.2f} | {ssecs:.2f} | {gen:.2f} | {gen / rounds:.3f} | "
      f"{split_s / rounds:.3f} | {kvu_s / rounds:.3f} | {100 * (gen / best - 1):+.0f}% | {texts} | {passes} | "
      f"{ftokens / texts:.1f} | {1000 * ssecs / texts:.2f} |")
EOF
  done
done
