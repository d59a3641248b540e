#!/usr/bin/env bash
# Beam search and DVTS (`ponder solve`, N=16, M=4) measured two ways, side by side in one run;
# prints Markdown tables (see BENCHMARKS.md, "Search (issue 3)"):
#
#  1. PRM tokens: what ponder's PRM computed (each step once, incrementally on forked KV) against
#     what a PRM that re-scores every candidate's whole text each round would compute (the
#     reference implementation's way, HF search-and-learn), on stories260K, for a few seeds.
#  2. Wall time: the search's generator time (usage.seconds - usage.verifier_seconds) against
#     llama.cpp's llama-batched-bench generating the same number of tokens on the same model at
#     the same parallelism (-npl 16, -npp = the prompt, -ntg = completion tokens / 16, shared
#     prompt), split and unified (-kvu) KV; also `ponder generate` of the same tokens (no search).
#
#   bench/search_bench.sh [REPEATS]        (after scripts/setup.sh; REPEATS: median of, default 3)
#
# Environment: THREADS (default: nproc; passed to both ponder and llama.cpp), SEEDS (table 1,
# default "1 2 3"), WALL_SEEDS (table 2, default "1"; with several, a row per seed and their sums:
# the shape of a search's tree, and so how full its batch runs, varies from seed to seed),
# LLAMA_UNIFIED (default 1; 0 skips llama-batched-bench -kvu, slower than split streams at 16
# rows on every model measured, to save time), MODELS (table 2: "stories smol smoldot smoldotq4
# toy", default "stories smol toy"), STRATEGIES
# (table 2: "beam" (round by round, solve's default), "beam-sure" (--speculate sure: sampling
# ahead for candidates sure to be kept), "beam-ahead" (--speculate all: sampling ahead
# on idle rows), "dvts"; default all three), KV_LAYOUTS (ponder's --kv for table 2, default
# "auto"; solve's auto is unified; "split" also measures split streams), PONDER_SHARED_DIR
# (default ../shared), QUIET_WAIT (seconds to wait before each timed run for other heavy
# processes, e.g. a compiler, to finish; default 600).
#
# Models: ../shared/models/stories260K.gguf (its steps are sentences: --delimiter .; trained on
# 512 tokens, so prompt + --max-tokens stays under that), and a random-weight model of
# SmolLM2-135M's shape made as bench/generate_bench.sh makes it (on random weights "." is rare,
# so its steps are long: the table's rounds and steps say how long). PRM: the random-weight
# build/test-models/prm-llama3-tiny.gguf (Llama 3 vocabulary and chat template, RLHFlow format).
# And the toy reasoner of issue 7 with its own trained PRM (models/toy: "\n\n" steps of a few
# tokens), on a level-5 problem of its test set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
repeats=${1:-3}
threads=${THREADS:-$(nproc)}
seeds=${SEEDS:-1 2 3}
wall_seeds=${WALL_SEEDS:-1}
llama_unified=${LLAMA_UNIFIED:-1}
models=${MODELS:-stories smol toy}
kv_layouts=${KV_LAYOUTS:-auto}
strategies=${STRATEGIES:-beam beam-ahead dvts}
quiet_wait=${QUIET_WAIT:-600}
shared=${PONDER_SHARED_DIR:-$root/../shared}
n=16
m=4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stories=$shared/models/stories260K.gguf
prm=$build/test-models/prm-llama3-tiny.gguf
smol=$build/bench-models/smollm2-135m-shape.gguf
# The same shape, untied, with the "." row of the output (GPT-2 token 13) scaled by 2: the random
# model then ends a sentence every 50 tokens or so, which gives a search step-like structure.
smoldot=$build/bench-models/smollm2-135m-shape-dot.gguf
[ -s "$prm" ] || "$root/tests/make_test_models.sh" "$build" "$root/third_party/llama.cpp" >/dev/null
if [[ " $models " == *" smol "* ]] && [ ! -s "$smol" ]; then
  mkdir -p "$build/bench-models"
  "$build/ponder-make-test-model" --arch llama --shape smollm2-135m \
    --vocab "$root/third_party/llama.cpp/models/ggml-vocab-gpt-2.gguf" --seed 7 --out "$smol" >/dev/null
fi
# ... quantized as the GGUF files users download most often are (Q4_K_M; a 576-wide model falls
# back to q5_0 for most of its matrices, as the published SmolLM2-135M Q4_K_M files do).
smoldotq4=$build/bench-models/smollm2-135m-shape-dot-Q4_K_M.gguf
if [[ " $models " == *" smoldot"* ]] && [ ! -s "$smoldot" ]; then
  mkdir -p "$build/bench-models"
  "$build/ponder-make-test-model" --arch llama --shape smollm2-135m --untied --token-logit-scale 13:2 \
    --vocab "$root/third_party/llama.cpp/models/ggml-vocab-gpt-2.gguf" --seed 7 --out "$smoldot" >/dev/null
fi
if [[ " $models " == *" smoldotq4 "* ]] && [ ! -s "$smoldotq4" ]; then
  [ -x "$build/bin/llama-quantize" ] || cmake --build "$build" --target llama-quantize >/dev/null
  "$build/bin/llama-quantize" "$smoldot" "$smoldotq4" Q4_K_M >/dev/null 2>&1
fi

balloons="Lily has 12 red balloons and 7 blue balloons. She gives 5 balloons to her friend Tom. Then her mom buys her 3 more. How many balloons does Lily have now?"
toy_problem="Start with 33, add 80, multiply by 4, subtract 88, subtract 59, add 50. What is the result?"

model_path() { case $1 in stories) echo "$stories" ;; smol) echo "$smol" ;; smoldot) echo "$smoldot" ;; smoldotq4) echo "$smoldotq4" ;; toy) echo "$root/models/toy/toy-generator.gguf" ;; esac; }
model_name() { case $1 in stories) echo stories260K ;; smol) echo smollm2-135m-shape ;; smoldot) echo smollm2-135m-shape-dot ;; smoldotq4) echo smollm2-135m-shape-dot-Q4_K_M ;; toy) echo toy-reasoner ;; esac; }
prm_path() { case $1 in toy) echo "$root/models/toy/toy-prm.gguf" ;; *) echo "$prm" ;; esac; }
problem_of() { case $1 in toy) echo "$toy_problem" ;; *) echo "$balloons" ;; esac; }
# stories260K and the random models write sentences; the toy reasoner's steps end at solve's
# default delimiter, a blank line.
delimiter_flags() { case $1 in toy) ;; *) echo "--delimiter ." ;; esac; }
# Tokens per solution: stories260K's prompt (78 tokens) + 400 stays under its 512; the toy
# task's eval uses 192.
max_tokens() { case $1 in stories) echo 400 ;; smol | smoldot | smoldotq4) echo 256 ;; toy) echo 192 ;; esac; }
max_rounds=60  # a cap: the searches end by solution length first

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
med() { printf '%s\n' "$@" | median; }  # of its arguments

# The machine is shared: before a timed run, wait (up to QUIET_WAIT s) while another heavy
# process (compiler, test run, another benchmark) is running.
wait_quiet() {
  local waited=0
  while pgrep -f 'cc1plus|ponder[^ ]* (solve|generate|eval|train-toy)|llama-batched-bench|llama-bench|ponder_tests|ctest' >/dev/null; do
    if [ "$waited" -ge "$quiet_wait" ]; then
      echo "search_bench: other heavy processes still running after ${quiet_wait}s; measuring anyway" >&2
      return
    fi
    sleep 2
    waited=$((waited + 2))
  done
}

# One search. Prints: kv_layout prompt_tokens completion_tokens rounds verifier_tokens
# verifier_tokens_if_rescored seconds verifier_seconds solutions mean_step_tokens gen_steps
# discarded_tokens. gen_steps: generation steps the search takes round by round (per round, the
# longest completion of the round, summed over rounds), read from --trace; completion_tokens /
# (n * gen_steps) is how full the batch is on average without sampling ahead
# (llama-batched-bench runs n sequences of equal length: always full). discarded_tokens: sampled
# ahead and dropped (not in completion_tokens).
solve() {  # model strategy seed kv   (strategy: beam, beam-sure, beam-ahead or dvts)
  local model=$1 strategy=$2 seed=$3 kv=$4 flags=()
  [ "$strategy" = beam-sure ] && { strategy=beam; flags=(--speculate sure); }
  [ "$strategy" = beam-ahead ] && { strategy=beam; flags=(--speculate all); }
  "$build/ponder" solve -m "$(model_path "$model")" --prm "$(prm_path "$model")" --prm-format rlhflow \
    --strategy "$strategy" "${flags[@]}" --n $n --beam-width $m $(delimiter_flags "$model") \
    --max-tokens "$(max_tokens "$model")" --max-rounds $max_rounds --seed "$seed" --threads "$threads" --kv "$kv" \
    --json --trace "$tmp/trace.json" "$(problem_of "$model")" >"$tmp/solve.json"
  python3 - "$tmp/solve.json" "$tmp/trace.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
nodes = {x["id"]: x for x in json.load(open(sys.argv[2]))["nodes"]}
u = d["usage"]
# A completion sampled in round r is a chain of nodes of round r (one node, except in the final
# round, which generates to the end); its head's parent is of an earlier round, or the root.
longest = {}
for x in nodes.values():
    if x["depth"] == 0:
        continue
    at, length = x, 0  # x and its ancestors of the same round: a completion up to x
    while at["depth"] > 0 and at["round"] == x["round"]:
        length += at["tokens"]
        at = nodes[at["parent"]]
    longest[x["round"]] = max(longest.get(x["round"], 0), length)
sols = d["solutions"]
steps = sum(len(s["steps"]) for s in sols)
mean_step = sum(s["tokens"] for s in sols) / steps if steps else 0
print(d["kv_layout"], u["prompt_tokens"], u["completion_tokens"], u["rounds"], u["verifier_tokens"],
      u["verifier_tokens_if_rescored"], u["seconds"], u["verifier_seconds"], len(sols), f"{mean_step:.1f}",
      sum(longest.values()), u["discarded_tokens"])
EOF
}

# `ponder generate` of the same shape (no search): seconds of generation, prompt included.
generate_s() {  # model ntg
  "$build/ponder" generate -m "$(model_path "$1")" -p "$(problem_of "$1")" -n $n --max-tokens "$2" --ignore-eos --seed 1 \
    --threads "$threads" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["timing"]["generate_ms"]/1000, d["usage"]["prompt_tokens"])'
}

# llama-batched-bench, shared prompt (-pps): its total time T (prompt once, then ntg steps of n).
# Its table goes through llama.cpp's asynchronous logger, which now and then loses the last row
# at exit: then run it again.
llama_s() {  # model npp ntg extra-flags...
  local model=$1 npp=$2 ntg=$3; shift 3
  local t=""
  for attempt in 1 2 3 4 5; do
    t=$("$build/bin/llama-batched-bench" -m "$(model_path "$model")" -c $(((npp + ntg) * n + 512)) -b 2048 -ub 512 \
      -npp "$npp" -ntg "$ntg" -npl $n -pps -t "$threads" -tb "$threads" "$@" 2>/dev/null \
      | awk -F'|' -v n=$n '$2 ~ /^ *[0-9]+ *$/ && $4+0 == n { t = $10 + 0 } END { if (t > 0) print t }')
    [ -n "$t" ] && break
  done
  [ -n "$t" ] || { echo "llama-batched-bench gave no result" >&2; exit 1; }
  echo "$t"
}

echo "Threads: $threads (nproc $(nproc)); CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo

# --- 1. PRM tokens ----------------------------------------------------------------------------
echo "PRM tokens, stories260K, N=$n M=$m, --delimiter . --max-tokens $(max_tokens stories) (--kv auto):"
echo
echo "| strategy | seed | rounds | solutions | tokens/step | completion tokens | PRM tokens (ponder) | PRM tokens if re-scored | re-scored / ponder |"
echo "|---|---|---|---|---|---|---|---|---|"
for strategy in beam dvts; do
  for seed in $seeds; do
    read -r _ _ ct rounds vt vr _ _ nsol step _ < <(solve stories "$strategy" "$seed" auto)
    printf "| %s | %s | %d | %d | %s | %d | %d | %d | %.1fx |\n" "$strategy" "$seed" "$rounds" "$nsol" "$step" \
      "$ct" "$vt" "$vr" "$(python3 -c "print($vr / $vt)")"
  done
done
echo

# --- 2. Wall time -----------------------------------------------------------------------------
echo "Wall time, N=$n M=$m, median of $repeats per seed (seconds; generator = search seconds - PRM seconds):"
echo
echo "| model | strategy | ponder --kv (layout) | seed | rounds | tokens/step | completion tokens T | batch fill round by round | discarded tokens | search s | PRM s (share) | ponder generator s | ponder generate, same tokens s | llama split s | llama -kvu s | generator / best llama - 1 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for model in $models; do
  for strategy in $strategies; do
    for kv in $kv_layouts; do
      rows=()
      for seed in $wall_seeds; do
        total=(); ver=(); gen=(); plain=(); split=(); unified=(); cts=(); dis=()
        for r in $(seq 1 "$repeats"); do
          wait_quiet
          read -r layout npp ct rounds _ _ secs vsecs _ step steps discarded < <(solve "$model" "$strategy" "$seed" "$kv")
          ntg=$(((ct + n / 2) / n))
          total+=("$secs"); ver+=("$vsecs"); cts+=("$ct"); dis+=("$discarded")
          gen+=("$(python3 -c "print($secs - $vsecs)")")
          wait_quiet
          read -r g gnpp < <(generate_s "$model" "$ntg")
          [ "$gnpp" = "$npp" ] || echo "search_bench: prompt tokens differ: solve $npp, generate $gnpp" >&2
          plain+=("$g")
          wait_quiet
          split+=("$(llama_s "$model" "$npp" "$ntg")")
          wait_quiet
          if [ "$llama_unified" = 1 ]; then unified+=("$(llama_s "$model" "$npp" "$ntg" -kvu)"); else unified+=(inf); fi
        done
        [ "$(printf '%s\n' "${cts[@]}" | sort -u | wc -l)" = 1 ] ||
          echo "search_bench: $model $strategy --kv $kv seed $seed: completion tokens differ between repeats: ${cts[*]}" >&2
        rows+=("$seed $layout $rounds $step $(med "${cts[@]}") $steps $(med "${dis[@]}") $(med "${total[@]}") \
$(med "${ver[@]}") $(med "${gen[@]}") $(med "${plain[@]}") $(med "${split[@]}") $(med "${unified[@]}")")
      done
      # A row per seed, then (with several seeds) their sums: tree shapes vary from seed to seed.
      printf '%s\n' "${rows[@]}" | python3 -c '
import sys
name, strategy, kv, n = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
label = {"beam": "beam (round by round)", "beam-sure": "beam (--speculate sure)",
         "beam-ahead": "beam (--speculate all)"}.get(strategy, strategy)
rows = [line.split() for line in sys.stdin if line.strip()]
def row(seed, layout, rounds, step, ct, steps, dm, tm, vm, gm, pm, sm, um, best, bold=""):
    line = (f"| {name} | {label} | {kv} ({layout}) | {bold}{seed}{bold} | {rounds} | {step} | {ct:.0f} | "
            f"{ct / (n * steps):.2f} | {dm:.0f} | {tm:.2f} | {vm:.2f} ({vm / tm:.0%}) | {gm:.2f} | {pm:.2f} | "
            f"{sm:.2f} | {um:.2f} | {bold}{round(100 * (gm / best - 1)):+d}%{bold} |")
    print(line.replace("| inf |", "| - |"))
sums, best_sum = [0.0] * 9, 0.0
for seed, layout, rounds, step, *v in rows:
    v = list(map(float, v))
    best = min(v[7], v[8])
    row(seed, layout, rounds, step, *v, best)
    sums = [a + b for a, b in zip(sums, v)]
    best_sum += best  # each seed against its faster llama layout
if len(rows) > 1:
    row(f"all {len(rows)}", rows[0][1], "", "", *sums, best_sum, bold="**")
' "$(model_name "$model")" "$strategy" "$kv" $n
    done
  done
done
