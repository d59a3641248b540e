#!/usr/bin/env bash
# Throughput of `ponder generate -n N` (one shared prompt, 128 new tokens per completion) against
# llama.cpp's llama-batched-bench at the same parallelism, on the same model, side by side in one
# run. Prints a Markdown table; see BENCHMARKS.md.
#
#   bench/generate_bench.sh [REPEATS]     (after scripts/setup.sh)
#
# Models: ../shared/models/stories260K.gguf, and a random-weight model of SmolLM2-135M's shape
# (llama, 30 layers, 576 wide, GQA 9/3, tied embeddings, f16) with GPT-2's 50257-token
# vocabulary, close to SmolLM2's 49152, made here by ponder-make-test-model.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
repeats=${1:-3}
ntg=128
out=$root/bench/out
mkdir -p "$out" "$build/bench-models"

smol=$build/bench-models/smollm2-135m-shape.gguf
[ -s "$smol" ] || "$build/ponder-make-test-model" --arch llama --shape smollm2-135m \
  --vocab "$root/third_party/llama.cpp/models/ggml-vocab-gpt-2.gguf" --seed 7 --out "$smol" >/dev/null
stories=${PONDER_SHARED_DIR:-$root/../shared}/models/stories260K.gguf

prompt="$(printf 'Once upon a time there was a little dog named Max. %.0s' $(seq 1 20))"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# ponder: generated tokens per second of wall time, prompt included (computed once).
ponder_tps() {  # model n extra-flags...
  local model=$1 n=$2; shift 2
  "$build/ponder" generate -m "$model" -p "$prompt" -n "$n" --max-tokens $ntg --ignore-eos --seed 1 --json "$@" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["usage"]["completion_tokens"]/(d["timing"]["generate_ms"]/1000), d["usage"]["prompt_tokens"], d["kv_layout"])'
}

# llama-batched-bench with the prompt shared (-pps): the same tokens over its total time T.
# Its table goes through llama.cpp's asynchronous logger, which now and then loses the last row
# at exit: then run it again.
llama_tps() {  # model n npp extra-flags...
  local model=$1 n=$2 npp=$3; shift 3
  local tps=""
  for attempt in 1 2 3 4 5; do
    tps=$("$build/bin/llama-batched-bench" -m "$model" -c $(( (npp + ntg) * n + 512 )) -b 2048 -ub 512 \
      -npp "$npp" -ntg $ntg -npl "$n" -pps "$@" 2>/dev/null \
      | awk -F'|' -v n="$n" -v ntg=$ntg '$2 ~ /^ *[0-9]+ *$/ && $4+0 == n { t = $10 + 0 } END { if (t > 0) printf "%.1f\n", n * ntg / t }')
    [ -n "$tps" ] && break
  done
  [ -n "$tps" ] || { echo "llama-batched-bench gave no result" >&2; exit 1; }
  echo "$tps"
}

echo "| model | N | ponder tok/s (layout) | batched-bench split tok/s | batched-bench unified (-kvu) tok/s | ponder / best of llama |"
echo "|---|---|---|---|---|---|"
for model in "$stories" "$smol"; do
  name=$(basename "$model" .gguf)
  for n in 16 64; do
    ours=(); split=(); unified=(); layout=""
    for r in $(seq 1 "$repeats"); do
      read -r tps npp layout < <(ponder_tps "$model" "$n")
      ours+=("$tps")
      split+=("$(llama_tps "$model" "$n" "$npp")")
      unified+=("$(llama_tps "$model" "$n" "$npp" -kvu)")
    done
    o=$(printf '%s\n' "${ours[@]}" | median)
    s=$(printf '%s\n' "${split[@]}" | median)
    u=$(printf '%s\n' "${unified[@]}" | median)
    ratio=$(python3 -c "print(f'{$o / max($s, $u):.2f}')")
    printf "| %s | %d | %.0f (%s) | %.0f | %.0f | %s |\n" "$name" "$n" "$o" "$layout" "$s" "$u" "$ratio"
  done
done
