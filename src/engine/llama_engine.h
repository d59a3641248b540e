// The in-process engine: a GGUF model run by llama.cpp, with one KV cache shared by all branches.
#pragma once

#include <memory>
#include <string>

#include "engine/engine.h"

namespace ponder {

// How branches are laid out in llama.cpp's KV cache.
enum class KvLayout {
  // One cache for all branches: a fork shares its parent's cells without copying (cheapest in
  // memory and prefill), but each branch's attention spans the cells of every branch.
  kUnified,
  // One stream per branch, n_ctx / max_branches cells each: a fork copies the parent's stream,
  // attention spans only the branch's own cells (faster when branches are long).
  kSplit,
};
const char* to_string(KvLayout layout);

struct LlamaEngineOptions {
  std::string model_path;
  // KV cells: shared by all branches (kUnified) or divided evenly among them (kSplit). At least
  // 256 cells per stream (llama.cpp's own minimum).
  int32_t n_ctx = 4096;
  // Live branches at once. llama.cpp allows at most 256 sequences (LLAMA_MAX_SEQ); each live
  // branch is one sequence, so this is capped at 256.
  int32_t max_branches = 256;
  int32_t n_batch = 2048;   // tokens per llama_decode call; larger work is split
  int32_t n_ubatch = 512;   // tokens per compute step inside llama_decode
  int32_t n_threads = 0;    // 0: every hardware thread
  int32_t n_gpu_layers = -1;  // -1: all layers on the GPU when llama.cpp was built with one
  KvLayout kv_layout = KvLayout::kUnified;
  // Off (the default, as in llama.cpp and vLLM): flash attention and an F16 KV cache. Then a
  // branch's log-probabilities depend on what else shares its batch at the level of float
  // rounding (~1e-4), so a sampled token can differ, rarely, from a run of that branch alone.
  // On: the plain attention path and an F32 KV cache, with which N forked branches give the
  // tokens of N separate runs with the same seeds. Slower with many branches in a unified
  // cache (see BENCHMARKS.md), twice the KV memory.
  bool reproducible = false;
  bool verbose = false;     // pass llama.cpp's own log through to stderr
  // Load only the vocabulary and chat template (fast, no weights, no context): for tokenizing
  // and rendering prompts, e.g. to size a context before opening the real engine. Branch and
  // work calls then throw EngineError.
  bool vocab_only = false;
};

inline constexpr int32_t kMaxBranches = 256;

// The layout for n branches that share a prompt of prompt_tokens and each add up to new_tokens:
// split streams attend over their own cells only (measured faster, BENCHMARKS.md), as long as
// copying the prompt into every stream costs at most 4x the cells of the unified cache.
KvLayout choose_kv_layout(int64_t prompt_tokens, int64_t n_branches, int64_t new_tokens);

// Opens the model. Throws EngineError with a one-line reason for a missing, unreadable,
// truncated or non-GGUF file, or when llama.cpp cannot create the context.
std::unique_ptr<Engine> open_llama_engine(const LlamaEngineOptions& options);

// "v0.5.0 (de3ff81)": the llama.cpp this binary was built with.
const char* llama_cpp_version();

}  // namespace ponder
