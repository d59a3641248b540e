#!/usr/bin/env bash
# `ponder eval` of beam search and DVTS over several MATH-500 problems, one search at a time
# against --parallel K (K searches sharing one model through BatchingEngine), side by side in one
# run, and both against llama.cpp's llama-batched-bench generating the same number of tokens T at
# the parallelism of K searches (npl = N x K, -ntg = T / npl, the mean prompt shared; split streams
# and unified cache), and in tokens per second against --parallel 1; prints a Markdown table
# (BENCHMARKS.md, "Eval throughput"). Without --reproducible, parallel searches sample other
# tokens than sequential ones (batching moves log-probabilities), so T differs between rows.
#
#   bench/eval_bench.sh [REPEATS]     (after scripts/setup.sh; REPEATS: median of, default 1)
#
# Environment: MODEL (default: the SmolLM2-135M-shape model with sentence steps that
# bench/search_bench.sh makes), PROBLEMS (default 4), PARALLEL (default 4), N (default 16),
# MAX_TOKENS (default 128), THREADS (default nproc), PONDER_SHARED_DIR (default ../shared).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
repeats=${1:-1}
shared=${PONDER_SHARED_DIR:-$root/../shared}
problems=${PROBLEMS:-4}
parallel=${PARALLEL:-4}
n=${N:-16}
m=4
max_tokens=${MAX_TOKENS:-128}
threads=${THREADS:-$(nproc)}
model=${MODEL:-$build/bench-models/smollm2-135m-shape-dot.gguf}
prm=$build/test-models/prm-llama3-tiny.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -s "$prm" ] || "$root/tests/make_test_models.sh" "$build" "$root/third_party/llama.cpp" >/dev/null
if [ ! -s "$model" ]; then
  mkdir -p "$(dirname "$model")"
  "$build/ponder-make-test-model" --arch llama --shape smollm2-135m --untied --token-logit-scale 13:2 \
    --vocab "$root/third_party/llama.cpp/models/ggml-vocab-gpt-2.gguf" --seed 7 --out "$model" >/dev/null
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# One eval; prints: seconds of searching, completion tokens, mean prompt tokens, searches. The
# seconds are the eval's wall time less that of the same command run again with nothing left
# to do (loading the models, reading the dataset).
eval_run() {  # strategy parallel db
  local t0 t1 t2
  rm -f "$3"*
  local cmd=("$build/ponder" eval --dataset "$shared/data/math500.jsonl" --limit "$problems" -m "$model" --prm "$prm"
             --strategies "$1" --budgets "$n" --beam-width $m --delimiter . --max-tokens "$max_tokens" --max-rounds 60
             --threads "$threads" --parallel "$2" --db "$3")
  t0=$(date +%s.%N)
  "${cmd[@]}" 2>/dev/null
  t1=$(date +%s.%N)
  "${cmd[@]}" 2>/dev/null
  t2=$(date +%s.%N)
  python3 - "$3" "$t0" "$t1" "$t2" <<'PY'
import sqlite3, sys
t, p, c = sqlite3.connect(sys.argv[1]).execute(
    "SELECT SUM(completion_tokens), AVG(prompt_tokens), COUNT(*) FROM searches").fetchone()
t0, t1, t2 = map(float, sys.argv[2:5])
print((t1 - t0) - (t2 - t1), t, p, c)
PY
}

# llama-batched-bench: its total time for npl sequences of ntg tokens after a shared prompt, with
# split streams, or one unified cache with -kvu.
llama_s() {  # npp ntg npl [-kvu]
  local t=""
  for attempt in 1 2 3 4 5; do
    t=$("$build/bin/llama-batched-bench" -m "$model" -c $((($1 + $2) * $3 + 512)) -b 2048 -ub 512 \
      -npp "$1" -ntg "$2" -npl "$3" -pps ${4:-} -t "$threads" -tb "$threads" 2>/dev/null \
      | awk -F'|' -v n="$3" '$2 ~ /^ *[0-9]+ *$/ && $4+0 == n { t = $10 + 0 } END { if (t > 0) print t }')
    [ -n "$t" ] && break
  done
  [ -n "$t" ] || { echo "llama-batched-bench gave no result" >&2; exit 1; }
  echo "$t"
}

echo "Threads: $threads (nproc $(nproc)); CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "Model: $(basename "$model"); PRM: $(basename "$prm"); $problems MATH-500 problems, N=$n M=$m, --max-tokens $max_tokens"
echo
echo "| strategy | --parallel K | searches | completion tokens T | eval s (searching) | llama split s | llama -kvu s | eval / best llama - 1 | tokens/s vs --parallel 1 |"
echo "|---|---|---|---|---|---|---|---|---|"
for strategy in beam dvts; do
  base=""
  for k in 1 "$parallel"; do
    walls=()
    for _ in $(seq "$repeats"); do
      read -r wall tokens npp searches < <(eval_run "$strategy" "$k" "$tmp/e.sqlite")
      walls+=("$wall")
    done
    wall=$(printf '%s\n' "${walls[@]}" | median)
    npl=$((n * k))
    ntg=$(( (tokens + npl - 1) / npl ))
    split=$(llama_s "$(printf '%.0f' "$npp")" "$ntg" "$npl")
    unified=$(llama_s "$(printf '%.0f' "$npp")" "$ntg" "$npl" -kvu)
    rate=$(awk -v t="$tokens" -v w="$wall" 'BEGIN { print t / w }')
    [ -n "$base" ] || base=$rate
    awk -v s="$strategy" -v k="$k" -v c="$searches" -v t="$tokens" -v w="$wall" -v sp="$split" -v u="$unified" \
      -v r="$rate" -v b="$base" 'BEGIN { l = sp < u ? sp : u
        printf "| %s | %d | %d | %d | %.2f | %.2f | %.2f | %+.0f%% | %.2fx |\n", s, k, c, t, w, sp, u, (w / l - 1) * 100, r / b }'
  done
done
