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
# A PRM in RLHFlow's shape: the Llama 3 vocabulary with Meta's Llama 3 chat template (the vocab
# file carries none; llama.cpp renders it as its built-in "llama3").
llama3_template="{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
make prm-llama3-tiny.gguf --arch llama --vocab "$vocab_dir/ggml-vocab-llama-bpe.gguf" --seed 4 --chat-template "$llama3_template"
