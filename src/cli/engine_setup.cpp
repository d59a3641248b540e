#include "cli/engine_setup.h"

#include <algorithm>

namespace ponder::cli {

void add_engine_flags(CLI::App* cmd, EngineFlags& f) {
  cmd->add_option("--ctx", f.ctx, "KV cache cells (default: enough for the work asked)")
      ->check(CLI::Range(16, 1 << 24));
  cmd->add_option("--threads", f.threads, "CPU threads (default: all)")->check(CLI::Range(0, 1024));
  cmd->add_option("--kv", f.kv,
                  "KV cache layout of the model's engine (a PRM's or judge's: --verifier-kv): unified (branches "
                  "share prefix cells), split (a stream per branch) or auto (chosen for the command's work)")
      ->check(CLI::IsMember({"auto", "unified", "split"}))
      ->capture_default_str();
  cmd->add_flag("--reproducible", f.reproducible,
                "results independent of batching: F32 KV cache, no flash attention (slower)");
  cmd->add_flag("--verbose", f.verbose, "show llama.cpp's log");
}

namespace {

LlamaEngineOptions base_options(const std::string& model, const EngineFlags& f) {
  LlamaEngineOptions eo;
  eo.model_path = model;
  eo.n_threads = f.threads;
  eo.verbose = f.verbose;
  eo.reproducible = f.reproducible;
  return eo;
}

}  // namespace

std::unique_ptr<Engine> open_vocab(const std::string& model, const EngineFlags& flags) {
  LlamaEngineOptions eo = base_options(model, flags);
  eo.vocab_only = true;
  return open_llama_engine(eo);
}

std::unique_ptr<LlamaEngine> open_sized(const std::string& model, const EngineFlags& flags, int64_t prompt_tokens,
                                   int32_t branches, int64_t new_tokens, KvLayout* layout) {
  LlamaEngineOptions eo = base_options(model, flags);
  if (branches > kMaxBranches) {
    throw EngineError("the work needs " + std::to_string(branches) + " live branches; at most " +
                      std::to_string(kMaxBranches) + " are possible");
  }
  eo.max_branches = branches;
  if (flags.kv == "auto") {
    eo.kv_layout = choose_kv_layout(prompt_tokens, branches, new_tokens);
  } else {
    eo.kv_layout = flags.kv == "split" ? KvLayout::kSplit : KvLayout::kUnified;
  }
  // Enough cells for the prompt and every branch at full length.
  const int64_t cells = eo.kv_layout == KvLayout::kSplit ? branches * (prompt_tokens + new_tokens)
                                                         : prompt_tokens + int64_t{branches} * new_tokens;
  if (flags.ctx > 0) {
    eo.n_ctx = flags.ctx;
  } else if (cells > (1 << 24)) {
    throw EngineError("the work needs " + std::to_string(cells) +
                      " KV cells; use fewer branches or fewer tokens per branch");
  } else {
    eo.n_ctx = static_cast<int32_t>(cells);
  }
  if (layout) *layout = eo.kv_layout;
  return open_llama_engine(eo);
}

SharedModel::SharedModel(std::unique_ptr<LlamaEngine> engine, int32_t workers) {
  if (workers <= 1) {
    engine_ = std::move(engine);
    return;
  }
  batching_ = std::make_unique<BatchingEngine>(std::move(engine));
  for (int32_t w = 0; w < workers; ++w) clients_.push_back(batching_->client());
}

int64_t prm_tokens_per_branch(int64_t problem_tokens, const SearchOptions& s, bool step_wise) {
  const int64_t steps = step_wise ? s.max_rounds : std::max<int64_t>(1, s.max_tokens / 4);
  return problem_tokens + 2 * int64_t{s.max_tokens} + 32 * steps + 64;
}

}  // namespace ponder::cli
