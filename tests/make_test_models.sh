#!/usr/bin/env bash
# Makes the random-weight GGUF models the tests use (idempotent): tiny llama and qwen2 shapes
# with the real vocabularies from llama.cpp's models/ folder.
set -euo pipefail
build=$1
vocab_dir=$2/models
out=$build/test-models
mkdir -p "$out"
make() {  # name, then ponder-make-test-model arguments
  local name=$1; shift
  [ -s "$out/$name" ] || "$build/ponder-make-test-model" --out "$out/$name" "$@"
}
make llama-bpe-tiny.gguf --arch llama --vocab "$vocab_dir/ggml-vocab-llama-bpe.gguf" --seed 1
make qwen2-tiny.gguf --arch qwen2 --vocab "$vocab_dir/ggml-vocab-qwen2.gguf" --seed 2
make llama-eos.gguf --arch llama --vocab "$vocab_dir/ggml-vocab-llama-spm.gguf" --seed 3 --eos-logit-scale 2
