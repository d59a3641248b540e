// Opening llama.cpp engines for a command: the flags every model-running command shares, and a
// KV cache sized for the work at hand.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/batching_engine.h"
#include "engine/llama_engine.h"
#include "search/search.h"

namespace ponder::cli {

struct EngineFlags {
  int ctx = 0;              // 0: sized from the work
  int threads = 0;          // 0: all
  std::string kv = "auto";  // auto, unified, split
  bool reproducible = false;
  bool verbose = false;
};

// --ctx, --threads, --kv, --reproducible, --verbose.
void add_engine_flags(CLI::App* cmd, EngineFlags& flags);

// The model's vocabulary and chat template only (fast): for sizing prompts before opening.
std::unique_ptr<Engine> open_vocab(const std::string& model, const EngineFlags& flags);

// Opens `model` for `branches` live branches that share a prompt of `prompt_tokens` and each add
// up to `new_tokens`: the KV layout (unless --kv names one) and the cache size (unless --ctx
// gives one) follow from that. Returns the layout chosen in `layout`.
std::unique_ptr<LlamaEngine> open_sized(const std::string& model, const EngineFlags& flags, int64_t prompt_tokens,
                                   int32_t branches, int64_t new_tokens, KvLayout* layout = nullptr);

// One model for `workers` concurrent users: with one, the engine itself; with more, a
// BatchingEngine and a client for each (their work shares the decode steps). Members are
// declared so that clients go before the BatchingEngine.
class SharedModel {
 public:
  SharedModel(std::unique_ptr<LlamaEngine> engine, int32_t workers);
  Engine& for_worker(int32_t w) { return clients_.empty() ? *engine_ : *clients_.at(static_cast<size_t>(w)); }
  int32_t workers() const { return clients_.empty() ? 1 : static_cast<int32_t>(clients_.size()); }

 private:
  std::unique_ptr<LlamaEngine> engine_;
  std::unique_ptr<BatchingEngine> batching_;
  std::vector<std::unique_ptr<Engine>> clients_;
};

// KV cells a PRM needs per branch for searches with these options: the problem and a whole
// solution in the PRM's own vocabulary (allow twice the generator's tokens), plus the format's
// tokens around each step (a chat template's turn headers run to about a dozen tokens; allow
// 32). Step-wise searches take at most max_rounds steps; a sampled solution is split
// afterwards, into at most one step per few tokens.
int64_t prm_tokens_per_branch(int64_t problem_tokens, const SearchOptions& search, bool step_wise);

}  // namespace ponder::cli
