// The in-process engine: a GGUF model run by llama.cpp, with one KV cache shared by all branches.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

// How branches are laid out in llama.cpp's KV cache.
enum class KvLayout {
  // One cache for all branches: a fork shares its parent's cells without copying (cheapest in
  // memory and prefill), but each branch's attention spans the cells of every branch.
  kUnified,
  // One stream per branch, n_ctx / max_branches cells each (and one spare stream): a fork
  // copies the parent's stream, attention spans only the branch's own cells (faster when
  // branches are long). A decode step's rows are kept in consecutive streams by moving
  // branches (EngineStats::stream_moves): llama.cpp computes each run separately.
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
  // On: the plain attention path and an F32 KV cache: batching then moves log-probabilities only
  // in their last bits (~1e-6), and N forked branches give the tokens of N separate runs with the
  // same seeds unless a draw lands that close to a boundary between two tokens (rare, not
  // never). Slower with many branches in a unified cache (see BENCHMARKS.md), twice the KV
  // memory.
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

// The in-process engine: the Engine interface, plus a form of generate() for a caller that keeps
// one generation running while work arrives from outside it (BatchingEngine's worker thread).
//
// Threading: as any Engine, one thread drives it. Two reads are safe from other threads while
// it works, because they touch only state that never changes after opening or that belongs to
// the branch asked about: the text calls (tokenize, token_to_piece, apply_chat_template,
// has_chat_template, eos_token, is_end_of_generation, vocab_size: llama.cpp's tokenizer and
// template code only read the const model and vocabulary, each call with its own scratch
// state), and branch_tokens(b) while nothing is done to branch b itself (b's token list
// changes only by new_branch/append/fork/free_branch on b or by generating on b).
class LlamaEngine : public Engine {
 public:
  struct StepHooks {
    // As each request finishes: its index and its completion, which the callee may take (the
    // generation keeps no copy, so a generation that runs for long holds no finished work).
    // Returns requests to start, under the rules of Engine::OnFinish. Required.
    std::function<std::vector<GenerateRequest>(size_t index, Completion&& completion)> on_finish;
    // Asked once per decode step: is there work for between_steps? Must be cheap. Optional.
    std::function<bool()> pending;
    // Runs when pending() said so, between two decode steps, after the logits of the branches
    // still generating were set aside. It may do what on_finish may, and also evaluate() on
    // this engine (nothing of the running generation is in llama.cpp's batch then). Returns
    // requests to start, under on_finish's rules; they take the indices that follow.
    std::function<std::vector<GenerateRequest>()> between_steps;
  };
  // generate(requests, on_finish) with completions handed only to hooks.on_finish (none are
  // returned) and work admitted between steps by hooks.between_steps. Returns when no request
  // is left generating. Errors as generate(); a throwing hook propagates out of the call.
  virtual void generate_streaming(const std::vector<GenerateRequest>& requests, const StepHooks& hooks) = 0;
};

// Opens the model. Throws EngineError with a one-line reason for a missing, unreadable,
// truncated or non-GGUF file, or when llama.cpp cannot create the context.
std::unique_ptr<LlamaEngine> open_llama_engine(const LlamaEngineOptions& options);

// "v0.5.0 (de3ff81)": the llama.cpp this binary was built with.
const char* llama_cpp_version();

}  // namespace ponder
