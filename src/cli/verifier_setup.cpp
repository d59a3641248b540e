#include "cli/verifier_setup.h"

#include <algorithm>
#include <functional>

#include "verify/confidence.h"
#include "verify/judge.h"
#include "verify/prm.h"

namespace ponder::cli {
namespace {

int64_t longest_in_tokens(const Engine& vocab, const std::vector<std::string>& texts) {
  int64_t most = 0;
  for (const std::string& t : texts) most = std::max(most, static_cast<int64_t>(vocab.tokenize(t, true, true).size()));
  return most;
}

}  // namespace

void add_verifier_flags(CLI::App* cmd, VerifierFlags& flags) {
  cmd->add_option("--prm", flags.prm, "process reward model GGUF (scores each step)");
  cmd->add_option("--prm-format", flags.prm_format,
                  "PRM input format: rlhflow, math-shepherd, or a JSON file of PrmFormat fields")
      ->capture_default_str();
  cmd->add_option("--judge", flags.judge, "LLM-as-judge GGUF (scores finished solutions by P(yes))");
  cmd->add_option("--confidence", flags.confidence,
                  "score finished solutions by the generator's own confidence: mean (geometric-mean "
                  "token probability) or lowest-group (DeepConf); without a PRM, mean also guides "
                  "beam search and DVTS (each step scored by the partial solution's mean)")
      ->check(CLI::IsMember({"mean", "lowest-group"}));
  cmd->add_option("--verifier-kv", flags.kv, "KV cache layout of the PRM's or judge's engine: unified or split")
      ->check(CLI::IsMember({"unified", "split"}))
      ->capture_default_str();
}

bool gives_step_verifier(const VerifierFlags& f) {
  return !f.prm.empty() || !split_endpoints(f.prm_remote).empty() || f.confidence == "mean";
}

void check_verifier_flags(const VerifierFlags& f, const std::vector<Strategy>& strategies) {
  const bool remote_prm = !split_endpoints(f.prm_remote).empty();
  if (!f.prm.empty() && remote_prm) throw EngineError("give --prm or --prm-remote, not both");
  const bool prm = !f.prm.empty() || remote_prm;
  if (prm && !f.judge.empty()) throw EngineError("give --prm or --judge, not both");
  if (!f.judge.empty() && !f.confidence.empty()) throw EngineError("give --judge or --confidence, not both");
  for (Strategy s : strategies) {
    if (is_step_wise(s) && !gives_step_verifier(f)) {
      throw EngineError(std::string(to_string(s)) + " needs a PRM (--prm or --prm-remote) or --confidence mean");
    }
    if ((s == Strategy::kBestOfN || s == Strategy::kWeightedBestOfN) && !prm && f.judge.empty() &&
        f.confidence.empty()) {
      throw EngineError(std::string(to_string(s)) + " needs a verifier (--prm, --judge or --confidence)");
    }
  }
  if (prm) PrmFormat::named(f.prm_format);  // a bad format fails here, before loading
}

namespace {

// problem_tokens(model): the longest problem's length in that model's tokens.
OpenVerifiers open_verifiers_for(const VerifierFlags& f, const EngineFlags& engine_flags,
                                 const std::function<int64_t(const std::string& model)>& problem_tokens_in,
                                 int32_t branches, bool step_wise, SearchOptions& search, int32_t workers) {
  OpenVerifiers v;
  EngineFlags verifier_engine = engine_flags;
  verifier_engine.kv = f.kv;
  if (!split_endpoints(f.prm_remote).empty()) {
    // Branches live in memory here, so nothing is sized; an engine per worker, as each drives
    // its own.
    const PrmFormat format = PrmFormat::named(f.prm_format);
    for (int32_t w = 0; w < workers; ++w) {
      v.remote.push_back(open_remote(f.prm_remote, f.remote));
      v.step.push_back(std::make_unique<ProcessRewardModel>(*v.remote.back(), format));
    }
  } else if (!f.prm.empty()) {
    const PrmFormat format = PrmFormat::named(f.prm_format);
    const int64_t problem_tokens = problem_tokens_in(f.prm);
    // A state per live branch and the root's, for each worker.
    v.model = std::make_unique<SharedModel>(
        open_sized(f.prm, verifier_engine, 0, std::min((branches + 1) * workers, kMaxBranches),
                   prm_tokens_per_branch(problem_tokens, search, step_wise)),
        workers);
    for (int32_t w = 0; w < workers; ++w) v.step.push_back(std::make_unique<ProcessRewardModel>(v.model->for_worker(w), format));
  } else if (!f.judge.empty()) {
    const int64_t problem_tokens = problem_tokens_in(f.judge);
    v.model = std::make_unique<SharedModel>(
        open_sized(f.judge, verifier_engine, (problem_tokens + 128) * workers, std::min(branches * workers, kMaxBranches),
                   search.max_tokens + 64),
        workers);
    for (int32_t w = 0; w < workers; ++w) v.outcome.push_back(std::make_unique<LlmJudge>(v.model->for_worker(w)));
  }
  if (f.confidence == "lowest-group" && search.top_logprobs == 0) search.top_logprobs = 5;
  // Without a PRM the mean confidence, step by step, also guides the step-wise searches.
  const bool step_confidence = step_wise && v.step.empty() && f.confidence == "mean";
  for (int32_t w = 0; w < workers && !f.confidence.empty(); ++w) {
    if (f.confidence == "mean") {
      v.outcome.push_back(std::make_unique<MeanLogprobConfidence>());
      if (step_confidence) v.step.push_back(std::make_unique<MeanLogprobStepConfidence>());
    } else {
      v.outcome.push_back(std::make_unique<LowestGroupConfidence>());
    }
  }
  return v;
}

}  // namespace

OpenVerifiers open_verifiers(const VerifierFlags& f, const EngineFlags& engine_flags,
                             const std::vector<std::string>& problems, int32_t branches, bool step_wise,
                             SearchOptions& search, int32_t workers) {
  return open_verifiers_for(
      f, engine_flags,
      [&](const std::string& model) { return longest_in_tokens(*open_vocab(model, engine_flags), problems); },
      branches, step_wise, search, workers);
}

OpenVerifiers open_verifiers(const VerifierFlags& f, const EngineFlags& engine_flags, int64_t problem_tokens,
                             int32_t branches, bool step_wise, SearchOptions& search, int32_t workers) {
  return open_verifiers_for(f, engine_flags, [&](const std::string&) { return problem_tokens; }, branches, step_wise,
                            search, workers);
}

}  // namespace ponder::cli
